"""The content tree: folders and assets under /content/dam.

This is the one write path for the tree. Each public method that changes something runs
in a single database transaction and bumps the revision of every node it touches.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from assetvault.adapters.blobs.base import BlobInfo
from assetvault.adapters.database.engine import Database
from assetvault.adapters.database.tables import comments
from assetvault.errors import AlreadyExists, Conflict, InvalidInput, NotFound, PreconditionFailed
from assetvault.tree import repository as repo
from assetvault.tree.models import AssetVersion, Node, Rendition
from assetvault.tree.paths import ROOT, check_name, join


@dataclass(frozen=True)
class NewAsset:
    """An asset to import: its name, stored binary, type and initial assetMetadata."""

    name: str
    blob: BlobInfo
    mime_type: str
    metadata: dict[str, Any] = field(default_factory=dict)


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
        original = self._original(blob, mime_type)
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

    async def import_originals(
        self, folder_path: str, assets: list[NewAsset], *, user: str
    ) -> list[Node]:
        """New assets in one folder, all in one transaction: every one is created, or
        none (a name that exists, or repeats, fails the whole batch)."""
        names = [a.name for a in assets]
        for asset in assets:
            check_name(asset.name)
            if any(not isinstance(k, str) or v is None for k, v in asset.metadata.items()):
                raise InvalidInput(f"{asset.name}: metadata needs string keys and non-null values")
        if len(set(names)) != len(names):
            raise InvalidInput("each asset of an import needs its own name")
        try:
            async with self.db.write() as conn:
                folder = await self._folder_for_write(conn, folder_path)
                taken = await repo.child_names(conn, folder.id, names)
                if taken:
                    raise AlreadyExists(f"{join(folder_path, sorted(taken)[0])} already exists")
                rows = [
                    {
                        **self._new_node(
                            str(uuid.uuid4()), folder, a.name, "asset", user, dict(a.metadata)
                        ),
                        **self._original(a.blob, a.mime_type),
                    }
                    for a in assets
                ]
                if rows:
                    await repo.insert_nodes(conn, rows)
                    await self._touch(conn, folder, user)
                found = await repo.by_ids(conn, [r["id"] for r in rows])
                created = [found[r["id"]] for r in rows]
                for node in created:
                    for hook in self._original_hooks:
                        await hook(conn, node)
        except IntegrityError as exc:
            raise Conflict(f"{folder_path} was changed concurrently; try again") from exc
        return created

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
    def _original(blob: BlobInfo, mime_type: str) -> dict[str, Any]:
        """Columns of an asset's new original, which processing will read."""
        return {
            "blob_key": blob.key,
            "size": blob.size,
            "sha1": blob.sha1,
            "mime_type": mime_type,
            "asset_state": "processing",
            "processing_error": None,
        }

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


class TreeChanges:
    """Deletion, move, copy and property writes of the tree (the classic API's verbs)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def delete(self, path: str) -> None:
        """Delete a node and everything below it (versions, renditions, relations and
        comments go with it through the schema's cascades)."""
        if path == ROOT:
            raise InvalidInput("the root folder cannot be deleted")
        async with self.db.write() as conn:
            node = await repo.by_path(conn, path)
            if node is None:
                raise NotFound(f"{path} does not exist")
            await repo.delete_node(conn, node.id)

    async def _prepare_target(
        self, conn: AsyncConnection, source: Node, dest: str, overwrite: bool
    ) -> tuple[Node, bool]:
        """The destination's parent, and whether something was there (and is now gone)."""
        if dest == source.path or dest.startswith(source.path + "/"):
            raise PreconditionFailed("a node cannot be copied or moved into itself")
        parent_path, name = dest.rsplit("/", 1)
        check_name(name)
        parent = await repo.by_path(conn, parent_path)
        if parent is None or parent.kind != "folder":
            raise NotFound(f"the destination folder {parent_path} does not exist")
        existing = await repo.by_path(conn, dest)
        if existing is not None:
            if not overwrite:
                raise PreconditionFailed(f"{dest} exists and X-Overwrite is F")
            if existing.id == source.id:
                raise PreconditionFailed("the destination is the source")
            await repo.delete_node(conn, existing.id)
        return parent, existing is not None

    async def move(self, path: str, dest: str, *, overwrite: bool, user: str, depth: str) -> bool:
        """Move a node (ids stay); True if it replaced something at the destination."""
        now = datetime.now(UTC)
        async with self.db.write() as conn:
            node = await repo.by_path(conn, path)
            if node is None or path == ROOT:
                raise NotFound(f"{path} does not exist")
            if depth == "0" and await repo.count_children(conn, node.id):
                raise PreconditionFailed(
                    "X-Depth 0 would leave the children behind; move with X-Depth infinity"
                )
            parent, replaced = await self._prepare_target(conn, node, dest, overwrite)
            await repo.repath_subtree(conn, node.path, dest)
            await repo.update_node(
                conn,
                node.id,
                {
                    "parent_id": parent.id,
                    "name": dest.rsplit("/", 1)[1],
                    "path": dest,
                    "modified_at": now,
                    "modified_by": user,
                },
            )
            for folder_id in {node.parent_id, parent.id} - {None}:
                await repo.update_node(conn, str(folder_id), {"modified_at": now})
        return replaced

    async def copy(self, path: str, dest: str, *, overwrite: bool, user: str, depth: str) -> bool:
        """Copy a node (and, at depth infinity, all below it) with new ids; originals,
        versions' blobs and renditions are shared by content, not duplicated."""
        now = datetime.now(UTC)
        async with self.db.write() as conn:
            node = await repo.by_path(conn, path)
            if node is None or path == ROOT:
                raise NotFound(f"{path} does not exist")
            parent, replaced = await self._prepare_target(conn, node, dest, overwrite)
            nodes_to_copy = await repo.subtree(conn, node) if depth != "0" else [node]
            new_ids: dict[str, str] = {}
            for original in nodes_to_copy:
                new_id = str(uuid.uuid4())
                new_ids[original.id] = new_id
                new_parent = (
                    parent.id if original.id == node.id else new_ids[original.parent_id or ""]
                )
                values = {
                    "id": new_id,
                    "parent_id": new_parent,
                    "name": dest.rsplit("/", 1)[1] if original.id == node.id else original.name,
                    "path": dest + original.path[len(node.path) :],
                    "kind": original.kind,
                    "revision": 1,
                    "created_at": now,
                    "created_by": user,
                    "modified_at": now,
                    "modified_by": user,
                    "properties": original.properties,
                    "blob_key": original.blob_key,
                    "size": original.size,
                    "sha1": original.sha1,
                    "mime_type": original.mime_type,
                    "asset_state": original.asset_state,
                    "extracted": original.extracted,
                    "extracted_text": original.extracted_text,
                    "processing_error": original.processing_error,
                }
                await repo.insert_node(conn, values)
                for r in await repo.list_renditions(conn, original.id):
                    await repo.upsert_rendition(
                        conn,
                        {
                            "id": str(uuid.uuid4()),
                            "node_id": new_id,
                            "name": r.name,
                            "origin": r.origin,
                            "blob_key": r.blob_key,
                            "size": r.size,
                            "mime_type": r.mime_type,
                            "width": r.width,
                            "height": r.height,
                            "created_at": now,
                        },
                    )
            await repo.update_node(conn, parent.id, {"modified_at": now})
        return replaced

    async def set_properties(self, path: str, changes: dict[str, Any], *, user: str) -> Node:
        """Merge properties into a node's users' layer (None removes)."""
        async with self.db.write() as conn:
            node = await repo.by_path(conn, path)
            if node is None:
                raise NotFound(f"{path} does not exist")
            merged = {**node.properties, **changes}
            await repo.update_node(
                conn,
                node.id,
                {"properties": merged, "modified_at": datetime.now(UTC), "modified_by": user},
            )
            updated = await repo.by_id(conn, node.id)
        assert updated is not None
        return updated

    async def put_rendition(
        self,
        path: str,
        name: str,
        blob: BlobInfo,
        mime_type: str,
        *,
        replace_only: bool,
        create_only: bool,
    ) -> bool:
        """Store an uploaded rendition; True if it is new."""
        check_name(name)
        if name == "original":
            raise InvalidInput("the original is replaced through direct binary upload")
        async with self.db.write() as conn:
            node = await repo.by_path(conn, path)
            if node is None or node.kind != "asset":
                raise NotFound(f"asset {path} does not exist")
            present = name in {r.name for r in await repo.list_renditions(conn, node.id)}
            if replace_only and not present:
                raise NotFound(f"{path} has no rendition {name!r}")
            if create_only and present:
                raise AlreadyExists(f"{path} already has a rendition {name!r}")
            new = await repo.upsert_rendition(
                conn,
                {
                    "id": str(uuid.uuid4()),
                    "node_id": node.id,
                    "name": name,
                    "origin": "uploaded",
                    "blob_key": blob.key,
                    "size": blob.size,
                    "mime_type": mime_type,
                    "width": None,
                    "height": None,
                    "created_at": datetime.now(UTC),
                },
            )
            await repo.update_node(conn, node.id, {"modified_at": datetime.now(UTC)})
        return new

    async def delete_rendition(self, path: str, name: str) -> None:
        async with self.db.write() as conn:
            node = await repo.by_path(conn, path)
            if node is None or node.kind != "asset":
                raise NotFound(f"asset {path} does not exist")
            if name == "original":
                if node.blob_key is None:
                    raise NotFound(f"{path} has no original")
                # As AEM does: the asset stays, without its original binary.
                await repo.update_node(
                    conn, node.id, {"blob_key": None, "size": None, "sha1": None}
                )
            elif not await repo.delete_rendition(conn, node.id, name):
                raise NotFound(f"{path} has no rendition {name!r}")
            else:
                await repo.update_node(conn, node.id, {"modified_at": datetime.now(UTC)})

    async def add_comment(
        self, path: str, message: str, annotation: Any, *, user: str
    ) -> dict[str, Any]:
        if not message.strip():
            raise InvalidInput("message is required")
        comment = {
            "id": str(uuid.uuid4()),
            "message": message,
            "annotation_data": annotation,
            "created_at": datetime.now(UTC),
            "created_by": user,
        }
        async with self.db.write() as conn:
            node = await repo.by_path(conn, path)
            if node is None or node.kind != "asset":
                raise NotFound(f"asset {path} does not exist")
            await conn.execute(comments.insert().values(node_id=node.id, **comment))
        return comment

    async def comments(self, node: Node) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(comments)
                .where(comments.c.node_id == node.id)
                .order_by(comments.c.created_at, comments.c.id)
            )
            return [dict(r._mapping) for r in rows]
