"""The content tree: folders and assets under /content/dam.

Reads run in read transactions; every change goes through the write path
(tree/writes.py), one transaction each, which bumps revisions, touches parents and
appends the change's outbox rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError

from assetvault.adapters.blobs.base import BlobInfo
from assetvault.adapters.database.engine import Database
from assetvault.errors import AlreadyExists, Conflict, InvalidInput, NotFound, PreconditionFailed
from assetvault.metadata import limits
from assetvault.tree import repository as repo
from assetvault.tree.downloads import DownloadRecorder
from assetvault.tree.models import AssetVersion, Listed, Node, Rendition
from assetvault.tree.paths import ROOT, check_name, join
from assetvault.tree.writes import Change, NewRendition, Original, VersionNote, Writes


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


@dataclass(frozen=True)
class NodeView:
    """A node with what a listing shows of it, read in one transaction: a folder's page
    of children (as a listing shows them: ``Listed``) and their total, or an asset's
    renditions and comments."""

    node: Node
    children: list[Listed] = field(default_factory=list)
    total: int = 0
    renditions: list[Rendition] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)


async def folder_for_write(ch: Change, path: str) -> Node:
    folder = await repo.by_path(ch.reader, path)
    if folder is None or folder.kind != "folder":
        raise NotFound(f"folder {path} does not exist")
    return folder


async def asset_for_write(ch: Change, path: str) -> Node:
    node = await repo.by_path(ch.reader, path, lock=True)
    if node is None or node.kind != "asset":
        raise NotFound(f"asset {path} does not exist")
    return node


class TreeService:
    def __init__(self, db: Database, writes: Writes) -> None:
        self.db = db
        self.writes = writes
        # Downloads served by the API: their events are written beside the responses.
        self.downloads = DownloadRecorder(writes)

    # -- reads ---------------------------------------------------------------------------

    async def find(self, path: str) -> Node | None:
        async with self.db.reader() as r:
            return await repo.by_path(r, path)

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
        async with self.db.reader() as r:
            items = await repo.children(r, folder.id, offset=offset, limit=limit)
            total = await repo.count_children(r, folder.id)
        return items, total

    async def view(
        self, path: str, *, offset: int = 0, limit: int | None = None
    ) -> NodeView | None:
        async with self.db.reader() as r:
            node = await repo.by_path(r, path)
            if node is None:
                return None
            if node.kind == "folder":
                # One child more than the page: when it is not there, the page is the
                # last and the total is known without counting (most folders fit).
                more = None if limit is None else limit + 1
                children = await repo.listed_children(r, node.id, offset=offset, limit=more)
                if more is not None and len(children) == more:
                    children.pop()
                elif children or offset == 0:
                    return NodeView(node, children, offset + len(children))
                return NodeView(node, children, await repo.count_children(r, node.id))
            return NodeView(
                node,
                renditions=await repo.list_renditions(r, node.id),
                comments=await repo.comments_of(r, node.id),
            )

    async def versions(self, node: Node) -> list[AssetVersion]:
        async with self.db.reader() as r:
            return await repo.versions(r, node.id)

    async def version(self, node: Node, name: str) -> AssetVersion:
        """One kept version of an asset, by its name (``1.0``, ``1.1``, ...)."""
        for version in await self.versions(node):
            if version.name == name:
                return version
        raise NotFound(f"{node.path} has no version {name!r}")

    async def renditions(self, node: Node) -> list[Rendition]:
        async with self.db.reader() as r:
            return await repo.list_renditions(r, node.id)

    async def find_by_id(self, node_id: str) -> Node | None:
        async with self.db.reader() as r:
            return await repo.by_id(r, node_id)

    # -- writes --------------------------------------------------------------------------

    async def create_folder(
        self, parent_path: str, name: str, *, user: str, properties: dict[str, Any] | None = None
    ) -> Node:
        check_name(name)
        path = join(parent_path, name)
        try:
            async with self.writes.change(user) as ch:
                parent = await folder_for_write(ch, parent_path)
                if await repo.by_path(ch.reader, path) is not None:
                    raise AlreadyExists(f"{path} already exists")
                return await ch.create_folder(parent, name, properties)
        except IntegrityError as exc:  # a concurrent create of the same path won
            raise AlreadyExists(f"{path} already exists") from exc

    async def restore_version(
        self, node_id: str, name: str, *, user: str, if_match: str | None = None
    ) -> Node:
        """Make a kept version the asset's current original again.

        Nothing is lost: the current original is kept as a new version first (with a
        comment saying so), then the version's binary (shared by content, not copied)
        becomes the original. The asset keeps its id, is processed again, and the change
        leaves its ``asset.original_replaced`` outbox row with ``restoredFrom``.
        ``if_match``, when given, must be the asset's current ETag (or ``*``).
        """
        async with self.writes.change(user) as ch:
            node = await repo.by_id(ch.reader, node_id, lock=True)
            if node is None or node.kind != "asset":
                raise NotFound(f"asset {node_id} does not exist")
            wanted = [t.strip() for t in (if_match or "*").split(",")]
            if "*" not in wanted and node.etag not in wanted:
                raise PreconditionFailed(
                    f"the asset has changed: its ETag is now {node.etag}, not {if_match}"
                )
            kept = await repo.versions(ch.reader, node.id)
            version = next((v for v in kept if v.name == name), None)
            if version is None:
                raise NotFound(f"{node.path} has no version {name!r}")
            original = Original(
                BlobInfo(
                    key=version.blob_key,
                    size=version.size,
                    sha1=version.sha1 or "",
                    verified=version.sha1 is not None,
                ),
                version.mime_type,
            )
            note = VersionNote(comment=f"kept when version {name} was restored")
            return await ch.replace_original(
                node, original, keep_as_version=note, restored_from=name
            )

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
        try:
            async with self.writes.change(user) as ch:
                return await self.store_original_in(
                    ch,
                    folder_path,
                    name,
                    Original(blob, mime_type),
                    version=VersionNote(version_label, version_comment) if create_version else None,
                    replace=replace,
                )
        except IntegrityError as exc:
            raise Conflict(f"{path} was changed concurrently; try again") from exc

    @staticmethod
    async def store_original_in(
        ch: Change,
        folder_path: str,
        name: str,
        original: Original,
        *,
        version: VersionNote | None,
        replace: bool,
    ) -> StoredOriginal:
        """store_original's work, inside a change the caller holds (so it can write rows
        of its own in the same transaction)."""
        check_name(name)
        path = join(folder_path, name)
        folder = await folder_for_write(ch, folder_path)
        existing = await repo.by_path(ch.reader, path, lock=True)
        if existing is not None and existing.kind != "asset":
            raise Conflict(f"{path} is a folder")
        if existing is not None and replace:
            await ch.delete(existing)
            existing = None
        if existing is None:
            (node,) = await ch.create_assets(folder, [(name, original, {})])
            return StoredOriginal(node=node, created=True)
        node = await ch.replace_original(existing, original, keep_as_version=version)
        return StoredOriginal(node=node, created=False)

    async def import_originals(
        self, folder_path: str, assets: list[NewAsset], *, user: str
    ) -> list[Node]:
        """New assets in one folder, all in one transaction: every one is created, or
        none (a name that exists, or repeats, fails the whole batch)."""
        names = [a.name for a in assets]
        for asset in assets:
            check_name(asset.name)
            if any(v is None for v in asset.metadata.values()):
                raise InvalidInput(f"{asset.name}: metadata needs non-null values")
            limits.check_new(asset.metadata, f"{asset.name}: ")
        if len(set(names)) != len(names):
            raise InvalidInput("each asset of an import needs its own name")
        try:
            async with self.writes.change(user) as ch:
                folder = await folder_for_write(ch, folder_path)
                taken = await repo.child_names(ch.reader, folder.id, names)
                if taken:
                    raise AlreadyExists(f"{join(folder_path, sorted(taken)[0])} already exists")
                return await ch.create_assets(
                    folder,
                    [(a.name, Original(a.blob, a.mime_type), a.metadata) for a in assets],
                )
        except IntegrityError as exc:
            raise Conflict(f"{folder_path} was changed concurrently; try again") from exc

    async def record_download(self, node: Node, rendition: str, *, user: str | None) -> None:
        """An original or rendition binary is being sent: an event of its own, committed
        before this returns (the API's downloads go through ``downloads.note``)."""
        async with self.writes.change(user) as ch:
            ch.downloaded(node, rendition)

    async def record_downloads(self, nodes: list[Node], *, user: str | None) -> None:
        """Many originals are being sent at once (a ZIP): one event each, one commit."""
        async with self.writes.change(user) as ch:
            for node in nodes:
                ch.downloaded(node, "original")

    async def assets_below(self, folder: Node, limit: int) -> list[Node]:
        async with self.db.reader() as r:
            return await repo.assets_below(r, folder.path, limit)


class TreeChanges:
    """Deletion, move, copy and property writes of the tree (the classic API's verbs)."""

    def __init__(self, db: Database, writes: Writes) -> None:
        self.db = db
        self.writes = writes

    async def delete(self, path: str, *, user: str) -> None:
        """Delete a node and everything below it (versions, renditions, relations and
        comments go with it through the schema's cascades)."""
        if path == ROOT:
            raise InvalidInput("the root folder cannot be deleted")
        async with self.writes.change(user) as ch:
            node = await repo.by_path(ch.reader, path)
            if node is None:
                raise NotFound(f"{path} does not exist")
            await ch.delete(node)

    @staticmethod
    async def _prepare_target(
        ch: Change, source: Node, dest: str, overwrite: bool
    ) -> tuple[Node, str, bool]:
        """The destination's parent and name, and whether something was there (and is
        now gone)."""
        if dest == source.path or dest.startswith(source.path + "/"):
            raise PreconditionFailed("a node cannot be copied or moved into itself")
        parent_path, name = dest.rsplit("/", 1)
        check_name(name)
        parent = await repo.by_path(ch.reader, parent_path)
        if parent is None or parent.kind != "folder":
            raise NotFound(f"the destination folder {parent_path} does not exist")
        existing = await repo.by_path(ch.reader, dest)
        if existing is not None:
            if not overwrite:
                raise PreconditionFailed(f"{dest} exists and X-Overwrite is F")
            if existing.id == source.id:
                raise PreconditionFailed("the destination is the source")
            await ch.delete(existing)
            parent = await ch.reload(parent.id)
        return parent, name, existing is not None

    async def move(self, path: str, dest: str, *, overwrite: bool, user: str, depth: str) -> bool:
        """Move a node (ids stay); True if it replaced something at the destination."""
        async with self.writes.change(user) as ch:
            node = await repo.by_path(ch.reader, path)
            if node is None or path == ROOT:
                raise NotFound(f"{path} does not exist")
            if depth == "0" and await repo.count_children(ch.reader, node.id):
                raise PreconditionFailed(
                    "X-Depth 0 would leave the children behind; move with X-Depth infinity"
                )
            parent, name, replaced = await self._prepare_target(ch, node, dest, overwrite)
            await ch.move(node, parent, name)
        return replaced

    async def copy(self, path: str, dest: str, *, overwrite: bool, user: str, depth: str) -> bool:
        """Copy a node (and, at depth infinity, all below it) with new ids; originals,
        versions' blobs and renditions are shared by content, not duplicated."""
        async with self.writes.change(user) as ch:
            node = await repo.by_path(ch.reader, path)
            if node is None or path == ROOT:
                raise NotFound(f"{path} does not exist")
            parent, name, replaced = await self._prepare_target(ch, node, dest, overwrite)
            await ch.copy(node, parent, name, deep=depth != "0")
        return replaced

    async def set_properties(self, path: str, changes: dict[str, Any], *, user: str) -> Node:
        """Merge properties into a node's users' layer (None removes)."""
        async with self.writes.change(user) as ch:
            node = await repo.by_path(ch.reader, path, lock=True)
            if node is None:
                raise NotFound(f"{path} does not exist")
            return await ch.set_properties(node, {**node.properties, **changes})

    async def put_rendition(
        self,
        path: str,
        name: str,
        blob: BlobInfo,
        mime_type: str,
        *,
        replace_only: bool,
        create_only: bool,
        user: str,
    ) -> bool:
        """Store an uploaded rendition; True if it is new."""
        check_name(name)
        if name == "original":
            raise InvalidInput("the original is replaced through direct binary upload")
        async with self.writes.change(user) as ch:
            node = await asset_for_write(ch, path)
            present = name in {r.name for r in await repo.list_renditions(ch.reader, node.id)}
            if replace_only and not present:
                raise NotFound(f"{path} has no rendition {name!r}")
            if create_only and present:
                raise AlreadyExists(f"{path} already has a rendition {name!r}")
            return await ch.put_rendition(
                node, NewRendition(name, blob, mime_type), origin="uploaded"
            )

    async def delete_rendition(self, path: str, name: str, *, user: str) -> None:
        async with self.writes.change(user) as ch:
            node = await asset_for_write(ch, path)
            if name == "original":
                if node.blob_key is None:
                    raise NotFound(f"{path} has no original")
                await ch.remove_original(node)
            elif not await ch.delete_rendition(node, name):
                raise NotFound(f"{path} has no rendition {name!r}")

    async def add_comment(
        self, path: str, message: str, annotation: Any, *, user: str
    ) -> dict[str, Any]:
        if not message.strip():
            raise InvalidInput("message is required")
        async with self.writes.change(user) as ch:
            return await ch.add_comment(await asset_for_write(ch, path), message, annotation)
