"""THE write path of the content tree.

Every change to the tree's tables (nodes, versions, renditions, relations, comments) and
every binary stored for the tree goes through here: ``async with writes.change(user) as
ch:`` opens one write transaction; the methods of ``ch`` load nothing behind the
caller's back, bump the revision of each node they change, touch the parents whose
children changed, run the hooks of a new original (the processing job) and append one
outbox row per domain event. The rows are written when the block exits cleanly, in the
same transaction, so a change that rolls back leaves no event and a committed one never
misses its own. ``scripts/check_write_path.py`` (run by ``make lint``) fails if any
other module writes these tables or stores blobs. Pruning the outbox is a write too
(``Writes.prune_outbox``); how far every consumer has read is the caller's to say.

What is stored is held to the limits of stored values whoever calls: metadata and folder
properties to ``metadata/limits.py`` (callers check first, for errors that name their
own fields), media types to ``assetvault.mediatypes``.

Jobs are queued (and re-queued for a retry) through the change too (``Change.enqueue``,
``Change.fail_job``), so the change knows what it appended: once it has committed, it
wakes the consumers of its outbox rows and of its jobs (runtime/wake.py); nothing else
has to remember to.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, text, update

from assetvault import mediatypes
from assetvault.adapters.blobs.base import BlobInfo, BlobStore
from assetvault.adapters.database.connection import Connection, LoopConnection, sqlite_value
from assetvault.adapters.database.engine import Database
from assetvault.adapters.database.reader import Reader
from assetvault.adapters.database.tables import (
    asset_versions,
    comments,
    fragment_data,
    nodes,
    outbox,
    outbox_floor,
    relations,
    renditions,
)
from assetvault.adapters.queue.base import Job, JobQueue
from assetvault.errors import InvalidInput, PreconditionFailed
from assetvault.metadata import limits
from assetvault.runtime.wake import JOBS, OUTBOX, Wakeups
from assetvault.tree import events
from assetvault.tree import repository as repo
from assetvault.tree.models import FRAGMENT_TYPE, Node
from assetvault.tree.paths import ROOT, join

log = logging.getLogger("assetvault.tree")

# Called inside the transaction that gave an asset a new original, so whatever it
# writes (a processing job) commits or rolls back with the change itself.
OriginalHook = Callable[["Change", Node], Awaitable[None]]

# Any constant serves: every transaction that appends outbox rows on PostgreSQL holds
# this lock from the append to its commit, so sequence order is commit order.
OUTBOX_LOCK_KEY = 0x61737365  # "asse"


@dataclass(frozen=True)
class Original:
    """A stored binary about to become an asset's original."""

    blob: BlobInfo
    mime_type: str

    def __post_init__(self) -> None:
        mediatypes.check(self.mime_type, "mimeType")

    def columns(self) -> dict[str, Any]:
        """The node's columns of its original, which processing will read."""
        return {
            "blob_key": self.blob.key,
            "size": self.blob.size,
            # Recorded by processing when the server has not read the bytes yet.
            "sha1": self.blob.sha1 if self.blob.verified else None,
            "mime_type": self.mime_type,
            "asset_state": "processing",
            "processing_error": None,
        }


@dataclass(frozen=True)
class VersionNote:
    """Keep the current original as a version, with this label and comment."""

    label: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class NewRendition:
    name: str
    blob: BlobInfo
    mime_type: str
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        mediatypes.check(self.mime_type, f"the rendition {self.name}'s type")


@dataclass
class _Pending:
    type: str
    node_id: str | None
    path: str | None
    data: dict[str, Any]
    user: str | None  # who acted
    at: datetime  # when


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def _view(node: Node) -> dict[str, Any]:
    """What the metadata APIs show as the node's writable metadata."""
    return node.asset_metadata if node.kind == "asset" else dict(node.properties)


def _fragment_groups(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A fragment's stored content as groups of element values: the master's and each
    variation's, each held to the limits of stored metadata."""
    groups = {"master": dict(data.get("master") or {})}
    for variation in data.get("variations") or []:
        groups[f"variation {variation.get('name')}"] = dict(variation.get("values") or {})
    return groups


def _check_fragment(before: dict[str, Any], after: dict[str, Any]) -> None:
    old = _fragment_groups(before)
    for group, values in _fragment_groups(after).items():
        limits.check_changes(old.get(group, {}), values, f"{group}: ")
    if limits.json_size(after) > limits.MAX_METADATA_BYTES * 4:
        raise InvalidInput(
            f"the fragment's content would take more than {limits.MAX_METADATA_BYTES * 4} "
            "bytes as JSON"
        )


def metadata_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The previous value (None where there was none) of every key whose value changed."""
    keys = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    return {k: before.get(k) for k in sorted(keys)}


class Writes:
    def __init__(self, db: Database, blobs: BlobStore, queue: JobQueue, wakeups: Wakeups) -> None:
        self.db = db
        self.blobs = blobs
        self.queue = queue
        self.wakeups = wakeups
        self._original_hooks: list[OriginalHook] = []

    def on_new_original(self, hook: OriginalHook) -> None:
        self._original_hooks.append(hook)

    @asynccontextmanager
    async def change(self, user: str | None) -> AsyncIterator[Change]:
        """One change of the tree: one transaction, committed with its outbox rows when
        the block exits cleanly, rolled back with none of them otherwise. ``user`` is
        who acted (None for the system, e.g. processing)."""
        async with self.db.write() as conn:
            ch = Change(
                conn,
                self.db.reader_of(conn),
                user,
                self._original_hooks,
                self.queue,
                lock_outbox=not self.db.is_sqlite,
            )
            yield ch
            await ch.flush()
            if ch.wakes:
                await self.wakeups.before_commit(conn, ch.wakes)
        if ch.wakes:
            self.wakeups.after_commit(ch.wakes)

    async def prune_outbox(self, up_to: int, older_than: datetime, *, most: int = 5000) -> int:
        """Remove the outbox rows every consumer has read (``seq`` up to ``up_to``, the
        smallest of their positions) that were written before ``older_than``, and raise
        the floor to the highest seq removed; returns how many rows went.

        Only a prefix goes: pruning stops before the first row younger than
        ``older_than`` (on PostgreSQL a row's time is its transaction's start, not its
        commit, so times need not follow seq), so every row up to the floor is gone and
        a consumer below it knows it has missed some. At most ``most`` rows go per call
        (one short transaction: the write lock is the tree's writers' too); the caller
        calls again while rows go."""
        async with self.db.write() as conn:
            first_young = (
                await conn.execute(
                    select(outbox.c.seq)
                    .where(outbox.c.seq <= up_to, outbox.c.created_at >= older_than)
                    .order_by(outbox.c.seq)
                    .limit(1)
                )
            ).scalar()
            limit = up_to if first_young is None else min(up_to, int(first_young) - 1)
            highest = (
                await conn.execute(
                    select(outbox.c.seq)
                    .where(outbox.c.seq <= limit)
                    .order_by(outbox.c.seq)
                    .limit(1)
                    .offset(most - 1)
                )
            ).scalar()
            if highest is None:  # fewer than ``most`` rows to go: all of them
                highest = (
                    await conn.execute(select(func.max(outbox.c.seq)).where(outbox.c.seq <= limit))
                ).scalar()
            if highest is None:
                return 0
            removed = await conn.execute(delete(outbox).where(outbox.c.seq <= int(highest)))
            # Rows up to the old floor were gone already, so this only raises it.
            await conn.execute(
                update(outbox_floor)
                .where(outbox_floor.c.id == 1, outbox_floor.c.seq < int(highest))
                .values(seq=int(highest))
            )
            return int(removed.rowcount or 0)

    # Binaries are stored before the transaction that references them (a stream of
    # gigabytes cannot sit inside a transaction); content addressing makes a blob that
    # no change ends up referencing harmless, and the sweep removes it.
    async def store_stream(self, chunks: AsyncIterable[bytes]) -> BlobInfo:
        return await self.blobs.put(chunks)

    async def store_file(self, path: Path) -> BlobInfo:
        return await self.blobs.put_file(path)


class Change:
    """The operations of one write transaction. Nodes passed in were read through
    ``conn`` in this same transaction."""

    def __init__(
        self,
        conn: Connection,
        reader: Reader,
        user: str | None,
        original_hooks: list[OriginalHook],
        queue: JobQueue,
        *,
        lock_outbox: bool,
    ) -> None:
        self.conn = conn
        self.reader = reader  # the repositories' reads, inside this transaction
        self.user = user
        self.now = _now()
        self._hooks = original_hooks
        self._queue = queue
        self._lock_outbox = lock_outbox
        self._sqlite = reader.dialect == "sqlite"
        self._pending: list[_Pending] = []
        # The wake-up topics of what this change appended (runtime/wake.py).
        self.wakes: set[str] = set()

    # -- the outbox ---------------------------------------------------------------------

    def record(self, type_: str, node: Node | None, data: dict[str, Any] | None = None) -> None:
        """Append a domain event to this change (written when it commits)."""
        self._pending.append(
            _Pending(
                type_,
                node.id if node else None,
                node.path if node else None,
                dict(data or {}),
                self.user,
                self.now,
            )
        )

    async def flush(self) -> None:
        if not self._pending:
            return
        self.wakes.add(OUTBOX)
        if isinstance(self.conn, LoopConnection):  # on the driver: a few microseconds a row
            await self.conn.execute_many(
                'INSERT INTO outbox (id, type, node_id, path, "user", data, created_at) '
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        str(uuid.uuid4()),
                        p.type,
                        p.node_id,
                        p.path,
                        p.user,
                        sqlite_value(p.data),
                        sqlite_value(p.at),
                    )
                    for p in self._pending
                ],
            )
            self._pending.clear()
            return
        if self._lock_outbox:
            await self.conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": OUTBOX_LOCK_KEY}
            )
        await self.conn.execute(
            insert(outbox),
            [
                {
                    "id": str(uuid.uuid4()),
                    "type": p.type,
                    "node_id": p.node_id,
                    "path": p.path,
                    "user": p.user,
                    "data": p.data,
                    "created_at": p.at,
                }
                for p in self._pending
            ],
        )
        self._pending.clear()

    # -- jobs -----------------------------------------------------------------------------

    async def enqueue(self, kind: str, payload: dict[str, Any], *, max_attempts: int = 3) -> str:
        """Queue a job in this change: it runs once the change commits (the workers
        are woken then)."""
        job_id = await self._queue.enqueue(self.conn, kind, payload, max_attempts=max_attempts)
        self.wakes.add(JOBS)
        return job_id

    async def fail_job(self, job: Job, worker: str, error: str, *, retry: bool) -> bool:
        """Record a job's failure in this change (see ``JobQueue.fail``); a job queued
        again for a retry wakes the workers, which wait until it is due. True when the
        job is now finally failed."""
        final = await self._queue.fail(self.conn, job, worker, error, retry=retry)
        if not final:
            self.wakes.add(JOBS)
        return final

    # -- reads inside the transaction ---------------------------------------------------

    async def reload(self, node_id: str) -> Node:
        node = await repo.by_id(self.reader, node_id)
        assert node is not None, node_id
        return node

    # -- low-level helpers --------------------------------------------------------------

    def _value(self, value: Any) -> Any:
        """A value for SQL run on the driver (``self.reader``), as the column's SQLAlchemy
        type would have written it: JSON text, and on SQLite times as text too."""
        if self._sqlite:
            return sqlite_value(value)
        return json.dumps(value) if isinstance(value, dict | list) else value

    def _who(self) -> dict[str, Any]:
        """modified_at, and modified_by when a user acted."""
        values: dict[str, Any] = {"modified_at": self.now}
        if self.user is not None:
            values["modified_by"] = self.user
        return values

    async def _update(self, node_id: str, values: dict[str, Any]) -> None:
        """Update columns and bump the revision (the source of the node's ETag)."""
        await self.conn.execute(
            update(nodes)
            .where(nodes.c.id == node_id)
            .values(revision=nodes.c.revision + 1, **values)
        )

    async def _touch(self, node_id: str) -> None:
        """A folder whose children changed is itself modified."""
        await self._update(node_id, self._who())

    def _new_node(
        self, parent: Node, name: str, kind: str, properties: dict[str, Any]
    ) -> dict[str, Any]:
        if not parent.path.startswith(ROOT):
            raise InvalidInput("nodes live under /content/dam")
        user = self.user or "system"
        now = _now()  # each node its own instant, even within one batch
        return {
            "id": str(uuid.uuid4()),
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

    async def _new_original(self, node: Node) -> None:
        for hook in self._hooks:
            await hook(self, node)

    # -- folders and assets -------------------------------------------------------------

    async def create_folder(
        self, parent: Node, name: str, properties: dict[str, Any] | None = None
    ) -> Node:
        limits.check_new(properties or {})
        values = self._new_node(parent, name, "folder", dict(properties or {}))
        await self.conn.execute(insert(nodes).values(**values))
        await self._touch(parent.id)
        node = await self.reload(values["id"])
        self.record(events.FOLDER_CREATED, node)
        return node

    async def create_assets(
        self, folder: Node, items: list[tuple[str, Original, dict[str, Any]]]
    ) -> list[Node]:
        """New assets in ``folder``: (name, original, initial assetMetadata) each."""
        if not items:
            return []
        for name, _, metadata in items:
            limits.check_new(metadata, f"{name}: ")
        rows = [
            {**self._new_node(folder, name, "asset", dict(metadata)), **original.columns()}
            for name, original, metadata in items
        ]
        await self.conn.execute(insert(nodes), rows)
        await self._touch(folder.id)
        found = await repo.by_ids(self.reader, [r["id"] for r in rows])
        created = [found[r["id"]] for r in rows]
        for node in created:
            self.record(
                events.ASSET_CREATED,
                node,
                {"size": node.size, "mimeType": node.mime_type, "sha1": node.sha1},
            )
            await self._new_original(node)
        return created

    async def create_fragment(
        self,
        folder: Node,
        name: str,
        metadata: dict[str, Any],
        model: str,
        data: dict[str, Any],
        text_content: str | None,
    ) -> Node:
        """A new content fragment in ``folder``: an asset without an original, of the
        fragment type, with its model's path and its content (``data``, as
        fragments/models.py stores it); ``text_content`` is what search reads of it."""
        limits.check_new(metadata, f"{name}: ")
        _check_fragment({}, data)
        row = {
            **self._new_node(folder, name, "asset", dict(metadata)),
            "mime_type": FRAGMENT_TYPE,
            "asset_state": "processed",
            "extracted": {},
            "extracted_text": text_content,
        }
        await self.conn.execute(insert(nodes).values(**row))
        await self.conn.execute(
            insert(fragment_data).values(node_id=row["id"], model=model, data=data)
        )
        await self._touch(folder.id)
        node = await self.reload(row["id"])
        self.record(
            events.ASSET_CREATED, node, {"size": None, "mimeType": FRAGMENT_TYPE, "sha1": None}
        )
        return node

    async def set_fragment(
        self,
        node: Node,
        metadata: dict[str, Any],
        before: dict[str, Any],
        after: dict[str, Any],
        text_content: str | None,
    ) -> Node:
        """Replace a fragment's metadata (title, description, ...) and content
        (``before`` is its content as read in this transaction). A change of metadata
        raises metadata_updated; a change of elements or variations fragment_updated."""
        limits.check_changes(node.properties, metadata)
        _check_fragment(before, after)
        await self.conn.execute(
            update(fragment_data).where(fragment_data.c.node_id == node.id).values(data=after)
        )
        await self._update(
            node.id, {"properties": metadata, "extracted_text": text_content, **self._who()}
        )
        updated = await self.reload(node.id)
        changed = metadata_changes(_view(node), _view(updated))
        if changed:
            self.record(
                events.METADATA_UPDATED[node.kind],
                updated,
                {"previous": changed, "revision": updated.revision},
            )
        old, new = _fragment_groups(before), _fragment_groups(after)
        elements = sorted(
            set(metadata_changes(old["master"], new["master"]))
            | set(
                metadata_changes(before.get("contentTypes") or {}, after.get("contentTypes") or {})
            )
        )
        variations = sorted(
            key.removeprefix("variation ")
            for key in new
            if key != "master" and old.get(key) != new[key]
        )
        if elements or variations or before.get("variations") != after.get("variations"):
            self.record(
                events.FRAGMENT_UPDATED,
                updated,
                {"elements": elements, "variations": variations, "revision": updated.revision},
            )
        return updated

    async def replace_original(
        self,
        node: Node,
        original: Original,
        *,
        keep_as_version: VersionNote | None,
        restored_from: str | None = None,
    ) -> Node:
        """Give an existing asset a new original, keeping the old one as a version when
        asked; the asset keeps its id. ``restored_from`` names the kept version whose
        binary this is, when a version is restored."""
        if keep_as_version is not None and node.blob_key is not None:
            number = await repo.next_version_number(self.reader, node.id)
            await self.conn.execute(
                insert(asset_versions).values(
                    id=str(uuid.uuid4()),
                    node_id=node.id,
                    number=number,
                    label=keep_as_version.label,
                    comment=keep_as_version.comment,
                    blob_key=node.blob_key,
                    size=node.size,
                    sha1=node.sha1,
                    mime_type=node.mime_type,
                    created_at=self.now,
                    created_by=self.user or "system",
                )
            )
        await self._update(node.id, {**original.columns(), **self._who()})
        updated = await self.reload(node.id)
        self.record(
            events.ORIGINAL_REPLACED,
            updated,
            {
                "size": updated.size,
                "mimeType": updated.mime_type,
                "sha1": updated.sha1,
                "previousSha1": node.sha1,
                "versionKept": keep_as_version is not None and node.blob_key is not None,
                **({"restoredFrom": restored_from} if restored_from else {}),
            },
        )
        await self._new_original(updated)
        return updated

    async def delete(self, node: Node) -> None:
        """Delete a node and everything below it; versions, renditions, relations and
        comments go with them (the schema's cascades). One event per node, the deepest
        first."""
        if node.path == ROOT:
            raise InvalidInput("the root folder cannot be deleted")
        below = await repo.subtree(self.reader, node)
        for gone in sorted(below, key=lambda n: n.path.count("/"), reverse=True):
            if gone.published:
                self.record(events.UNPUBLISHED, gone, {"reason": "deleted"})
            self.record(events.DELETED[gone.kind], gone)
        await self.conn.execute(
            delete(relations).where(
                or_(relations.c.asset_id == node.id, relations.c.related_id == node.id)
            )
        )
        await self.conn.execute(delete(asset_versions).where(asset_versions.c.node_id == node.id))
        await self.conn.execute(delete(renditions).where(renditions.c.node_id == node.id))
        if len(below) > 1:
            # Detach everything below from its parent first: the cascade on parent_id
            # would delete the tree by recursion, one level deeper per folder, which
            # SQLite refuses past 1,000 levels. Then the rows go in one statement; the
            # cascades left (versions, renditions, relations, comments) are one level.
            under = nodes.c.path.like(repo.like_prefix(node.path), escape="\\")
            await self.conn.execute(update(nodes).where(under).values(parent_id=None))
            await self.conn.execute(delete(nodes).where(under))
        await self.conn.execute(delete(nodes).where(nodes.c.id == node.id))
        if node.parent_id is not None:
            await self._touch(node.parent_id)

    async def move(self, node: Node, parent: Node, name: str) -> Node:
        """Move or rename a node (its id stays); everything below follows. Each moved
        node gets a new revision: a new path is a new representation."""
        dest = join(parent.path, name)
        below = [n for n in await repo.subtree(self.reader, node) if n.id != node.id]
        for child in below:
            await self.conn.execute(
                update(nodes)
                .where(nodes.c.id == child.id)
                .values(path=dest + child.path[len(node.path) :], revision=nodes.c.revision + 1)
            )
        await self._update(
            node.id, {"parent_id": parent.id, "name": name, "path": dest, **self._who()}
        )
        for folder_id in {node.parent_id, parent.id} - {None}:
            await self._touch(str(folder_id))
        moved = await self.reload(node.id)
        self.record(events.MOVED[node.kind], moved, {"from": node.path, "to": dest})
        self._republish(node, moved)
        for child in below:
            there = replace(child, path=dest + child.path[len(node.path) :])
            self.record(events.MOVED[child.kind], there, {"from": child.path, "to": there.path})
            self._republish(child, there)
        return moved

    def _republish(self, before: Node, after: Node) -> None:
        """A published asset that moved is unpublished at its old path and published at
        its new one (as AEM's Assets API does); it stays published."""
        if before.published:
            self.record(events.UNPUBLISHED, before, {"reason": "moved"})
            self.record(
                events.PUBLISHED,
                after,
                {"reason": "moved", "publishedAt": _iso(before.published_at)},
            )

    # -- publishing ---------------------------------------------------------------------

    async def publish(self, node: Node) -> Node:
        """Publish an asset to AEM_PUBLISH (again, if it already is: a new publish time)."""
        if node.kind != "asset":
            raise InvalidInput(f"{node.path} is a folder; only assets are published")
        await self._update(node.id, {"published": True, "published_at": self.now})
        published = await self.reload(node.id)
        self.record(
            events.PUBLISHED,
            published,
            {"reason": "request", "publishedAt": _iso(published.published_at)},
        )
        return published

    async def unpublish(self, node: Node) -> Node:
        """Take an asset off AEM_PUBLISH; one that is not published is left as it is and
        raises no event."""
        if node.kind != "asset":
            raise InvalidInput(f"{node.path} is a folder; only assets are published")
        if not node.published:
            return node
        await self._update(node.id, {"published": False})
        self.record(events.UNPUBLISHED, node, {"reason": "request"})
        return await self.reload(node.id)

    async def copy(self, node: Node, parent: Node, name: str, *, deep: bool) -> Node:
        """Copy a node (and, when ``deep``, all below it) with new ids; originals,
        versions' blobs and renditions are shared by content, not duplicated."""
        dest = join(parent.path, name)
        to_copy = await repo.subtree(self.reader, node) if deep else [node]
        new_ids: dict[str, str] = {}
        user = self.user or "system"
        for source in to_copy:
            new_id = str(uuid.uuid4())
            new_ids[source.id] = new_id
            is_top = source.id == node.id
            path = dest + source.path[len(node.path) :]
            await self.conn.execute(
                insert(nodes).values(
                    id=new_id,
                    parent_id=parent.id if is_top else new_ids[source.parent_id or ""],
                    name=name if is_top else source.name,
                    path=path,
                    kind=source.kind,
                    revision=1,
                    created_at=self.now,
                    created_by=user,
                    modified_at=self.now,
                    modified_by=user,
                    properties=source.properties,
                    blob_key=source.blob_key,
                    size=source.size,
                    sha1=source.sha1,
                    mime_type=source.mime_type,
                    asset_state=source.asset_state,
                    extracted=source.extracted,
                    extracted_text=source.extracted_text,
                    processing_error=source.processing_error,
                )
            )
            content = await self.reader.fetch_one(
                "SELECT model, data FROM fragment_data WHERE node_id = ?", (source.id,)
            )
            if content is not None:  # a content fragment's content goes with its copy
                await self.conn.execute(
                    insert(fragment_data).values(
                        node_id=new_id, model=content[0], data=repo.document(content[1])
                    )
                )
            made = await repo.list_renditions(self.reader, source.id)
            if made:
                await self.conn.execute(
                    insert(renditions),
                    [
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
                            "created_at": self.now,
                        }
                        for r in made
                    ],
                )
            self.record(
                events.COPIED[source.kind],
                replace(source, id=new_id, path=path),
                {"sourceId": source.id, "sourcePath": source.path},
            )
        await self._touch(parent.id)
        return await self.reload(new_ids[node.id])

    # -- metadata -----------------------------------------------------------------------

    async def set_properties(
        self, node: Node, properties: dict[str, Any], *, expected_revision: int | None = None
    ) -> Node:
        """Replace the users' layer of a node's metadata. With ``expected_revision``, the
        revision is compared in the same UPDATE that writes (safe against a concurrent
        writer between the caller's read and this write). The UPDATE returns the revision
        it wrote: one statement, no read after it.

        The node written is ``node`` with its new layer, revision and modifier: every
        change of a node's row moves its revision on, so a row found at ``node``'s
        revision when written holds ``node``'s other columns, and its metadata (a photo's
        extracted layer, a document's text) is neither returned nor parsed again. Only a
        ``node`` read before another change of the row is read again."""
        limits.check_changes(node.properties, properties)
        who = self._who()
        sql = (
            "UPDATE nodes SET properties = ?, revision = revision + 1, modified_at = ?"
            + (", modified_by = ?" if "modified_by" in who else "")
            + " WHERE id = ?"
            + (" AND revision = ?" if expected_revision is not None else "")
            + " RETURNING revision"
        )
        stored = self._value(properties)
        params: list[Any] = [stored, self._value(who["modified_at"])]
        if "modified_by" in who:
            params.append(who["modified_by"])
        params.append(node.id)
        if expected_revision is not None:
            params.append(expected_revision)
        rows = await self.reader.fetch_all(sql, params)
        if len(rows) != 1:
            raise PreconditionFailed("the asset was changed by another request")
        (revision,) = rows[0]
        if revision == node.revision + 1:
            updated = repo.node_with(
                node,
                # As read back: the stored JSON text's own value, not the caller's dict.
                properties=dict(repo.document(stored) or {}),
                revision=revision,
                **who,
            )
        else:  # ``node`` was read before another change of the row
            updated = await self.reload(node.id)
        changed = metadata_changes(_view(node), _view(updated))
        if changed:
            self.record(
                events.METADATA_UPDATED[node.kind],
                updated,
                {"previous": changed, "revision": updated.revision},
            )
        return updated

    # -- processing ---------------------------------------------------------------------

    async def restart_processing(self, node: Node) -> Node:
        """Process the asset's current original again."""
        await self._update(
            node.id, {"asset_state": "processing", "processing_error": None, **self._who()}
        )
        updated = await self.reload(node.id)
        self.record(events.PROCESSING_RESTARTED, updated)
        await self._new_original(updated)
        return updated

    async def processing_completed(
        self,
        node: Node,
        *,
        made: list[NewRendition],
        extracted: dict[str, Any],
        text_content: str | None,
        mime_type: str,
        sha1: str | None = None,
    ) -> None:
        """Swap the renditions processing made for new ones (uploaded ones stay) and store
        what it read from the original (its SHA-1 too, when the server had not read it
        before: a direct upload to an object store), held to the metadata limits (what
        breaks them is dropped, not refused: the file's author, not the caller, wrote it)."""
        mediatypes.check(mime_type, "the sniffed type")
        if sha1 is not None and node.blob_key is not None:
            await self.original_verified(node.blob_key, sha1)
        extracted, dropped = limits.fit_extracted(extracted)
        if dropped:
            log.warning(
                "%s: %d extracted metadata properties over the limits dropped or cut: %s",
                node.path,
                len(dropped),
                ", ".join(d[:80] for d in dropped[:5]) + (", ..." if len(dropped) > 5 else ""),
            )
        await self.conn.execute(
            delete(renditions).where(
                renditions.c.node_id == node.id, renditions.c.origin == "generated"
            )
        )
        taken = {r.name for r in await repo.list_renditions(self.reader, node.id)}
        rows = [
            {
                "id": str(uuid.uuid4()),
                "node_id": node.id,
                "name": r.name,
                "origin": "generated",
                "blob_key": r.blob.key,
                "size": r.blob.size,
                "mime_type": r.mime_type,
                "width": r.width,
                "height": r.height,
                "created_at": self.now,
            }
            for r in made
            if r.name not in taken
        ]
        if rows:
            await self.conn.execute(insert(renditions), rows)
        await self._update(
            node.id,
            {
                "extracted": extracted,
                "extracted_text": text_content,
                "mime_type": mime_type,
                "asset_state": "processed",
                "processing_error": None,
            },
        )
        self.record(
            events.PROCESSING_COMPLETED,
            await self.reload(node.id),
            {
                "renditions": sorted(r["name"] for r in rows),
                "mimeType": mime_type,
                **({"sha1": sha1} if sha1 is not None else {}),
            },
        )

    async def original_verified(self, blob_key: str, sha1: str) -> None:
        """Record the SHA-1 processing computed of a binary the server had not read (a
        direct upload to an object store) on the asset and the versions that have it and
        none yet. The asset's revision moves on and its processing event tells of it."""
        await self.conn.execute(
            update(nodes)
            .where(nodes.c.blob_key == blob_key, nodes.c.sha1.is_(None))
            .values(sha1=sha1, revision=nodes.c.revision + 1)
        )
        await self.conn.execute(
            update(asset_versions)
            .where(asset_versions.c.blob_key == blob_key, asset_versions.c.sha1.is_(None))
            .values(sha1=sha1)
        )

    async def processing_failed(self, node: Node, reason: str, sha1: str | None = None) -> None:
        """The asset is ``failed``; ``sha1`` when processing read the original all the same
        and was the first to (a direct upload to S3)."""
        if sha1 is not None and node.blob_key is not None:
            await self.original_verified(node.blob_key, sha1)
        await self._update(node.id, {"asset_state": "failed", "processing_error": reason[:2000]})
        self.record(
            events.PROCESSING_FAILED,
            await self.reload(node.id),
            {"reason": reason[:2000], **({"sha1": sha1} if sha1 is not None else {})},
        )

    # -- renditions and the original's binary --------------------------------------------

    async def put_rendition(self, node: Node, rendition: NewRendition, *, origin: str) -> bool:
        """Insert or replace a rendition by name; True if it is new."""
        existing = (
            await self.conn.execute(
                select(renditions.c.id).where(
                    renditions.c.node_id == node.id, renditions.c.name == rendition.name
                )
            )
        ).first()
        values = {
            "origin": origin,
            "blob_key": rendition.blob.key,
            "size": rendition.blob.size,
            "mime_type": rendition.mime_type,
            "width": rendition.width,
            "height": rendition.height,
            "created_at": self.now,
        }
        if existing is None:
            await self.conn.execute(
                insert(renditions).values(
                    id=str(uuid.uuid4()), node_id=node.id, name=rendition.name, **values
                )
            )
        else:
            await self.conn.execute(
                update(renditions).where(renditions.c.id == existing.id).values(**values)
            )
        await self._update(node.id, self._who())
        self.record(
            events.RENDITION_STORED,
            node,
            {"name": rendition.name, "size": rendition.blob.size, "new": existing is None},
        )
        return existing is None

    async def delete_rendition(self, node: Node, name: str) -> bool:
        result = await self.conn.execute(
            delete(renditions).where(renditions.c.node_id == node.id, renditions.c.name == name)
        )
        if not result.rowcount:
            return False
        await self._update(node.id, self._who())
        self.record(events.RENDITION_DELETED, node, {"name": name})
        return True

    async def remove_original(self, node: Node) -> None:
        """As AEM does: the asset stays, without its original binary."""
        await self._update(node.id, {"blob_key": None, "size": None, "sha1": None, **self._who()})
        self.record(events.RENDITION_DELETED, node, {"name": "original"})

    # -- relations and comments -----------------------------------------------------------

    async def add_relations(self, node: Node, wanted: list[tuple[str, str]]) -> int:
        """Add (relation type, related id) pairs from ``node``; a two-way type is stored
        from both ends. Existing ones stay as they are. Returns how many were new."""
        added = 0
        for relation_type, related_id in wanted:
            pairs = [(node.id, related_id)]
            if relation_type in events.TWO_WAY_RELATIONS:
                pairs.append((related_id, node.id))
            for source, target in pairs:
                exists = (
                    await self.conn.execute(
                        select(relations.c.id).where(
                            relations.c.asset_id == source,
                            relations.c.relation_type == relation_type,
                            relations.c.related_id == target,
                        )
                    )
                ).first()
                if exists is not None:
                    continue
                await self.conn.execute(
                    insert(relations).values(
                        id=str(uuid.uuid4()),
                        asset_id=source,
                        relation_type=relation_type,
                        related_id=target,
                        created_at=self.now,
                        created_by=self.user or "system",
                    )
                )
                added += source == node.id
                # Each end of a two-way relation hears of it.
                self.record(
                    events.RELATION_ADDED,
                    node if source == node.id else await self.reload(source),
                    {"relationType": relation_type, "relatedId": target},
                )
        return added

    async def remove_relations(
        self, node: Node, relation_type: str, related_id: str | None = None
    ) -> list[str]:
        """Remove one relation of ``node``, or all of a type; returns the related ids."""
        mine = and_(relations.c.asset_id == node.id, relations.c.relation_type == relation_type)
        if related_id is not None:
            mine = and_(mine, relations.c.related_id == related_id)
        found = await self.conn.execute(select(relations.c.related_id).where(mine))
        targets = [r[0] for r in found]
        if not targets:
            return []
        await self.conn.execute(delete(relations).where(mine))
        if relation_type in events.TWO_WAY_RELATIONS:
            await self.conn.execute(
                delete(relations).where(
                    relations.c.relation_type == relation_type,
                    relations.c.related_id == node.id,
                    relations.c.asset_id.in_(targets),
                )
            )
        for target in targets:
            self.record(
                events.RELATION_REMOVED, node, {"relationType": relation_type, "relatedId": target}
            )
            if relation_type in events.TWO_WAY_RELATIONS:
                self.record(
                    events.RELATION_REMOVED,
                    await self.reload(target),
                    {"relationType": relation_type, "relatedId": node.id},
                )
        return targets

    async def add_comment(self, node: Node, message: str, annotation: Any) -> dict[str, Any]:
        comment = {
            "id": str(uuid.uuid4()),
            "message": message,
            "annotation_data": annotation,
            "created_at": self.now,
            "created_by": self.user or "system",
        }
        await self.conn.execute(insert(comments).values(node_id=node.id, **comment))
        self.record(events.COMMENT_ADDED, node, {"commentId": comment["id"]})
        return comment

    # -- reads that are events --------------------------------------------------------------

    def downloaded(self, node: Node, rendition: str) -> None:
        """An original or rendition binary was read (a GET that sends its bytes)."""
        self.record(events.DOWNLOADED, node, {"rendition": rendition})

    def downloaded_earlier(
        self, node: Node, rendition: str, user: str | None, at: datetime
    ) -> None:
        """A download by ``user`` at ``at``, written now with others (tree/downloads.py):
        the row names who downloaded and when, not this change's user and time."""
        self._pending.append(
            _Pending(events.DOWNLOADED, node.id, node.path, {"rendition": rendition}, user, at)
        )
