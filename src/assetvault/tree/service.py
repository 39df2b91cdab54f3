"""The content tree: folders and assets under /content/dam.

This is the one write path for the tree. Each public method that changes something runs
in a single database transaction and bumps the revision of every node it touches.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from assetvault.adapters.blobs.base import BlobInfo
from assetvault.adapters.database.engine import Database
from assetvault.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from assetvault.tree import repository as repo
from assetvault.tree.models import AssetVersion, Node, Rendition
from assetvault.tree.paths import ROOT, check_name, join


@dataclass(frozen=True)
class StoredOriginal:
    node: Node
    created: bool  # False when an existing asset received a new original


# Called inside the transaction that gave an asset a new original, so whatever it
# writes (a processing job, an event) commits or rolls back with the change itself.
OriginalHook = Callable[[AsyncConnection, Node], Awaitable[None]]


class TreeService:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._original_hooks: list[OriginalHook] = []

    def on_new_original(self, hook: OriginalHook) -> None:
        self._original_hooks.append(hook)

    # -- reads ---------------------------------------------------------------------------

    async def find(self, path: str) -> Node | None:
        async with self.db.read() as conn:
            return await repo.by_path(conn, path)

    async def get(self, path: str) -> Node:
        node = await self.find(path)
        if node is None:
            raise NotFound(f"{path} does not exist")
        return node

    async def get_folder(self, path: str) -> Node:
        node = await self.find(path)
        if node is None or node.kind != "folder":
            raise NotFound(f"folder {path} does not exist")
        return node

    async def list_children(
        self, folder: Node, *, offset: int = 0, limit: int | None = None
    ) -> tuple[list[Node], int]:
        async with self.db.read() as conn:
            items = await repo.children(conn, folder.id, offset=offset, limit=limit)
            total = await repo.count_children(conn, folder.id)
        return items, total

    async def versions(self, node: Node) -> list[AssetVersion]:
        async with self.db.read() as conn:
            return await repo.versions(conn, node.id)

    async def renditions(self, node: Node) -> list[Rendition]:
        async with self.db.read() as conn:
            return await repo.list_renditions(conn, node.id)

    async def find_by_id(self, node_id: str) -> Node | None:
        async with self.db.read() as conn:
            return await repo.by_id(conn, node_id)

    # -- writes --------------------------------------------------------------------------

    async def create_folder(
        self, parent_path: str, name: str, *, user: str, properties: dict[str, Any] | None = None
    ) -> Node:
        check_name(name)
        path = join(parent_path, name)
        try:
            async with self.db.write() as conn:
                parent = await self._folder_for_write(conn, parent_path)
                if await repo.by_path(conn, path) is not None:
                    raise AlreadyExists(f"{path} already exists")
                node_id = str(uuid.uuid4())
                await repo.insert_node(
                    conn,
                    self._new_node(node_id, parent, name, "folder", user, properties or {}),
                )
                await self._touch(conn, parent, user)
                node = await repo.by_id(conn, node_id)
        except IntegrityError as exc:  # a concurrent create of the same path won
            raise AlreadyExists(f"{path} already exists") from exc
        assert node is not None
        return node

    async def store_original(
        self,
        folder_path: str,
        name: str,
        blob: BlobInfo,
        *,
        mime_type: str,
        user: str,
        create_version: bool = False,
        version_label: str | None = None,
        version_comment: str | None = None,
        replace: bool = False,
    ) -> StoredOriginal:
        """Make ``blob`` the original of the asset ``name`` in the folder.

        New name: a new asset. Existing asset: ``replace`` deletes it and makes a new one
        (new id, no history); ``create_version`` keeps the current original as a version;
        neither overwrites the current original in place.
        """
        check_name(name)
        path = join(folder_path, name)
        now = datetime.now(UTC)
        original = {
            "blob_key": blob.key,
            "size": blob.size,
            "sha1": blob.sha1,
            "mime_type": mime_type,
            "asset_state": "processing",
            "processing_error": None,
        }
        try:
            async with self.db.write() as conn:
                folder = await self._folder_for_write(conn, folder_path)
                existing = await repo.by_path(conn, path)
                if existing is not None and existing.kind != "asset":
                    raise Conflict(f"{path} is a folder")
                if existing is not None and replace:
                    await repo.delete_node(conn, existing.id)
                    existing = None
                if existing is None:
                    node_id = str(uuid.uuid4())
                    values = self._new_node(node_id, folder, name, "asset", user, {})
                    await repo.insert_node(conn, {**values, **original})
                    await self._touch(conn, folder, user)
                    created = True
                else:
                    node_id = existing.id
                    if create_version:
                        await repo.insert_version(
                            conn,
                            {
                                "id": str(uuid.uuid4()),
                                "node_id": node_id,
                                "number": await repo.next_version_number(conn, node_id),
                                "label": version_label,
                                "comment": version_comment,
                                "blob_key": existing.blob_key,
                                "size": existing.size,
                                "sha1": existing.sha1,
                                "mime_type": existing.mime_type,
                                "created_at": now,
                                "created_by": user,
                            },
                        )
                    await repo.update_node(
                        conn, node_id, {**original, "modified_at": now, "modified_by": user}
                    )
                    created = False
                node = await repo.by_id(conn, node_id)
                assert node is not None
                for hook in self._original_hooks:
                    await hook(conn, node)
        except IntegrityError as exc:
            raise Conflict(f"{path} was changed concurrently; try again") from exc
        assert node is not None
        return StoredOriginal(node=node, created=created)

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    async def _folder_for_write(conn: AsyncConnection, path: str) -> Node:
        folder = await repo.by_path(conn, path)
        if folder is None or folder.kind != "folder":
            raise NotFound(f"folder {path} does not exist")
        return folder

    @staticmethod
    async def _touch(conn: AsyncConnection, node: Node, user: str) -> None:
        await repo.update_node(
            conn, node.id, {"modified_at": datetime.now(UTC), "modified_by": user}
        )

    @staticmethod
    def _new_node(
        node_id: str, parent: Node, name: str, kind: str, user: str, properties: dict[str, Any]
    ) -> dict[str, Any]:
        if not parent.path.startswith(ROOT):
            raise InvalidInput("nodes live under /content/dam")
        now = datetime.now(UTC)
        return {
            "id": node_id,
            "parent_id": parent.id,
            "name": name,
            "path": join(parent.path, name),
            "kind": kind,
            "revision": 1,
            "created_at": now,
            "created_by": user,
            "modified_at": now,
            "modified_by": user,
            "properties": properties,
        }
