"""The search indexer: keeps an index that lives apart from the database (the embedded
Tantivy index) current from the outbox, and lets searches wait for it.

One writer per index, whatever the number of API processes: under ``serve`` it is a
process of its own (``assetvault search indexer``, started and restarted by the
supervisor); a process that runs alone (tests, one API process) indexes itself when it
can take the writer's lock. It reads the outbox in commit order, in batches of at most
``BATCH`` events, indexes the *current* state of every asset the events name (so a
replay after a crash changes nothing), commits, and then records the applied position
in ``search_index_state``. API processes open the index read-only and reload it when
that position moves.

The position also goes, right after each commit, into a small file in the index's own
directory (``PUBLISHED``), which is what readers reload on: recording it in the database
takes the write lock, which the tree's writers hold for their fsyncs, so under a busy
ingest the record alone took up to a tenth of a second at p99 (measured at 1M assets).
The file is only ever ahead of the database row, never behind it, and a reader takes
the greater of the two for the directory the row names; lost, it costs a replay from the
row (harmless). The record is still made for every commit, overlapping the next batch.

A search waits, within a bound, until the index has applied every outbox row committed
before it began (read-your-writes for every caller): searches then see what the
database sees, as they did when the index lived in the database.

Nobody polls: the indexer sleeps until a commit that appended outbox rows wakes it
(the ``outbox`` topic of runtime/wake.py), and a waiting search until the indexer has
published a position (``indexed``); a slow safety net (``wake_safety_seconds``) covers a
wake-up lost to a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select, update

from assetvault.adapters.database.connection import Connection
from assetvault.adapters.database.engine import Database
from assetvault.adapters.database.reader import Reader
from assetvault.adapters.database.tables import search_index_state
from assetvault.errors import Unavailable
from assetvault.runtime.wake import INDEXED, OUTBOX, Listener, Wakeups
from assetvault.search.models import IndexedAsset
from assetvault.search.ports import (
    DocumentIndex,
    DocumentIndexes,
    IndexBroken,
    IndexBusy,
    IndexWriter,
    PreparedSearch,
)
from assetvault.search.query import And, QueryNode
from assetvault.tree import events
from assetvault.tree import repository as tree_repo
from assetvault.tree.models import Node
from assetvault.tree.paths import ROOT

log = logging.getLogger("assetvault.search.indexer")

STATE = "embedded"
BATCH = 1000  # outbox events per commit at most
REBUILD_CHUNK = 2000
# The indexer opens its index afresh after this many commits. Tantivy's directory keeps
# a path and a pointer for every file it ever opened, for as long as its Index object
# lives, and each commit writes new segment files: over a day of steady changes that
# grew the background process by some 0.3 MiB a minute (the soak, tests/soak). A new
# Index object (and writer) starts with none; it costs a few milliseconds.
RENEW_AFTER_COMMITS = 1000
PUBLISHED = "assetvault-position"  # in an index's directory: the position it committed
# Events that change nothing a search reads.
IGNORED = {events.DOWNLOADED, events.COMMENT_ADDED, events.RELATION_ADDED}
IGNORED |= {events.RELATION_REMOVED}
FOLDER_SUBTREE = {events.MOVED["folder"], events.COPIED["folder"], events.DELETED["folder"]}


@dataclass(frozen=True)
class IndexState:
    directory: str
    position: int


async def read_state(r: Reader) -> IndexState | None:
    row = await r.fetch_one(
        "SELECT directory, position FROM search_index_state WHERE name = ?", (STATE,)
    )
    return IndexState(row[0], int(row[1])) if row else None


def published_position(directory: Path) -> int:
    """The outbox position the index in ``directory`` has committed, as its writer
    published it right after the commit (0 if it has published none)."""
    try:
        return int((directory / PUBLISHED).read_bytes())
    except (OSError, ValueError):
        return 0


def applied_position(root: Path, state: IndexState) -> int:
    """How far the index the state names has applied the outbox: what readers see
    after a reload (the published position may be ahead of the recorded one)."""
    return max(state.position, published_position(root / state.directory))


def _publish(directory: Path, position: int) -> None:
    # Written beside, then renamed over: a reader sees the old number or the new one.
    # No fsync: the commit before it is durable, and a lost file only replays.
    staged = directory / f"{PUBLISHED}.new"
    staged.write_bytes(str(position).encode())
    os.replace(staged, directory / PUBLISHED)


async def embedded_position(r: Reader) -> int:
    """How far the embedded index has applied the outbox (0 before its first build):
    what the outbox must keep for it is everything after."""
    state = await read_state(r)
    return state.position if state is not None else 0


# What a search waits for the index to reach (the floor when pruning emptied the outbox,
# so an index below it is caught up, which rebuilds it).
outbox_head = tree_repo.outbox_head


def indexed(node: Node, ancestors: dict[str, str]) -> IndexedAsset:
    """What the index holds of an asset: its state now, as searches read it."""
    above = []
    path = node.path
    while "/" in path and path != ROOT:
        path = path.rsplit("/", 1)[0]
        if path in ancestors:
            above.append(ancestors[path])
    return IndexedAsset(
        id=node.id,
        name=node.name,
        path=node.path,
        parent_id=node.parent_id,
        ancestor_ids=tuple(above),
        created_at=node.created_at,
        modified_at=node.modified_at,
        created_by=node.created_by,
        modified_by=node.modified_by,
        mime_type=node.mime_type,
        size=node.size,
        asset_state=node.asset_state,
        sha1=node.sha1,
        metadata=node.asset_metadata,
        text=node.extracted_text,
    )


def _folders_above(paths: list[str]) -> list[str]:
    found: set[str] = set()
    for path in paths:
        while "/" in path and path != ROOT:
            path = path.rsplit("/", 1)[0]
            if path in found:
                break
            found.add(path)
    return sorted(found)


async def load_assets(r: Reader, ids: list[str]) -> tuple[list[IndexedAsset], list[str]]:
    """The current state of these assets, and the ids among them that are gone."""
    found: dict[str, Node] = {}
    for start in range(0, len(ids), 500):
        batch = ids[start : start + 500]
        marks = ", ".join("?" for _ in batch)
        # By primary key alone: with "kind = 'asset'" SQLite may walk an index on kind.
        sql = f"SELECT {tree_repo.NODE_COLUMNS} FROM nodes WHERE id IN ({marks})"
        for row in await r.fetch_all(sql, batch):
            if row[4] == "asset":
                found[row[0]] = tree_repo.node_from(row)
    return await _indexed(r, list(found.values())), [i for i in ids if i not in found]


async def _indexed(r: Reader, nodes: list[Node]) -> list[IndexedAsset]:
    ancestors = await tree_repo.ids_at(r, _folders_above([n.path for n in nodes]))
    return [indexed(n, ancestors) for n in nodes]


async def assets_below(r: Reader, path: str) -> list[str]:
    like = tree_repo.like_prefix(path)
    rows = await r.fetch_all(
        "SELECT id FROM nodes WHERE kind = 'asset' AND path LIKE ? ESCAPE '\\'", (like,)
    )
    return [row[0] for row in rows]


class Indexer:
    """The one writer of the embedded index (see the module's docstring)."""

    def __init__(
        self,
        db: Database,
        root: Path,
        indexes: DocumentIndexes,
        wakeups: Wakeups,
        *,
        safety_seconds: float,
    ) -> None:
        self.db = db
        self.root = root  # the data directory's search/ folder
        self.indexes = indexes
        self.wakeups = wakeups
        self.safety_seconds = safety_seconds
        # Looks at the outbox by ``run`` (what a test counts).
        self.rounds = 0
        self.index: DocumentIndex | None = None
        self.directory: str | None = None
        self._writer: IndexWriter | None = None
        self._recording: asyncio.Future[bool] | None = None  # the last position's record
        self.commits = 0  # since the index was opened

    async def close(self) -> None:
        await self._settle_record()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                await asyncio.to_thread(writer.close)
            except Exception:  # its directory may be gone (swapped out): nothing to keep
                log.warning("closing the search index writer failed", exc_info=True)

    async def _open(self, directory: str) -> None:
        await self.close()
        index = await asyncio.to_thread(self.indexes, self.root / directory, create=False)
        self._writer = await asyncio.to_thread(index.writer)
        self.index, self.directory = index, directory
        self.commits = 0

    async def catch_up(self) -> int:
        """Apply the outbox up to its head; the position reached. Builds the index
        first when there is none (or it cannot be opened)."""
        async with self.db.reader() as r:
            state = await read_state(r)
            floor = await tree_repo.outbox_floor(r)
        if state is None:
            return await self.rebuild()
        if state.position < floor:
            # The rows after its position were pruned while it was not counted (e.g. the
            # deployment searched on the database backend meanwhile): applying what is
            # left would miss changes, so it is built again from the database.
            log.warning(
                "search index at outbox position %d, but the outbox is pruned up to %d; "
                "rebuilding it from the database",
                state.position,
                floor,
            )
            return await self.rebuild()
        renew = self.commits >= RENEW_AFTER_COMMITS
        if self.directory != state.directory or self._writer is None or renew:
            try:
                await self._open(state.directory)
            except IndexBroken as exc:
                log.warning("search index unusable (%s); rebuilding it", exc)
                return await self.rebuild()
        position = applied_position(self.root, state)
        while True:
            ids: set[str] = set()
            under: list[str] = []
            async with self.db.reader() as r:
                batch = await tree_repo.outbox_after(r, position, BATCH)
                for event in batch:
                    if event.type in IGNORED or event.node_id is None:
                        continue
                    if event.type in FOLDER_SUBTREE:
                        under.append(event.node_id)
                        folder = await tree_repo.by_id(r, event.node_id)
                        if folder is not None:  # below it now: indexed afresh
                            ids.update(await assets_below(r, folder.path))
                    elif event.type.startswith("asset."):
                        ids.add(event.node_id)
                assets, gone = await load_assets(r, sorted(ids)) if ids else ([], [])
            if not batch:
                # Recorded before it returns: whoever asked finds the row current.
                await self._settle_record()
                return position
            position = batch[-1].seq
            await asyncio.to_thread(self._apply, under, assets, gone, position)
            self.commits += 1
            self.wakeups.notify([INDEXED])
            if not await self._settle_record():
                return position  # another build swapped the index in: reopen next time
            self._recording = asyncio.ensure_future(self._record(position))

    def _apply(
        self, under: list[str], assets: list[IndexedAsset], gone: list[str], position: int
    ) -> None:
        assert self._writer is not None and self.directory is not None
        for folder_id in under:
            self._writer.delete_under(folder_id)
        self._writer.delete(gone)
        self._writer.upsert(assets)
        self._writer.commit()
        _publish(self.root / self.directory, position)

    async def _settle_record(self) -> bool:
        """Wait for the last position's record; False (and the index let go) if another
        build swapped its index in meanwhile."""
        recording, self._recording = self._recording, None
        if recording is None or await recording:
            return True
        await self.close()
        self.directory = None
        return False

    async def _record(self, position: int) -> bool:
        """Record the applied position, if the index is still the current one."""
        async with self.db.write() as conn:
            result = await conn.execute(
                update(search_index_state)
                .where(
                    search_index_state.c.name == STATE,
                    search_index_state.c.directory == self.directory,
                )
                .values(position=position, updated_at=datetime.now(UTC))
            )
        return bool(result.rowcount)

    async def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Build a new index from the database while the current one keeps serving,
        then swap it in; the position it starts from."""

        async def from_database(writer: IndexWriter) -> int:
            # One snapshot: the assets as of the outbox head read with them.
            async with self.db.reader() as r:
                head = await outbox_head(r)
                total_row = await r.fetch_one("SELECT count(*) FROM nodes WHERE kind = 'asset'")
                total = int(total_row[0]) if total_row else 0
                done, last = 0, ""
                pending: asyncio.Future[None] | None = None
                while True:
                    # The primary key's order, every node (folders are few, skipped here).
                    rows = await r.fetch_all(
                        f"SELECT {tree_repo.NODE_COLUMNS} FROM nodes WHERE id > ? "
                        "ORDER BY id LIMIT ?",
                        (last, REBUILD_CHUNK),
                    )
                    if not rows:
                        break
                    last = rows[-1][0]
                    nodes = [tree_repo.node_from(row) for row in rows if row[4] == "asset"]
                    assets = await _indexed(r, nodes)
                    if pending is not None:
                        await pending
                    # Indexing this chunk on a thread while the next one is read.
                    pending = asyncio.ensure_future(asyncio.to_thread(writer.upsert, assets))
                    done += len(nodes)
                    if progress is not None:
                        progress(done, total)
                if pending is not None:
                    await pending
            return head

        return await self.build(from_database)

    async def build(self, fill: Callable[[IndexWriter], Awaitable[int]]) -> int:
        """A new index, filled by ``fill`` through a bulk writer (each asset once), then
        swapped in at the outbox position ``fill`` returns: the position whose state
        it indexed. The current index keeps serving until then."""
        directory = f"index-{uuid.uuid4().hex[:12]}"
        index = await asyncio.to_thread(self.indexes, self.root / directory, create=True)
        writer = await asyncio.to_thread(index.writer, bulk=True)
        try:
            head = await fill(writer)
            await asyncio.to_thread(writer.commit)
        finally:
            await asyncio.to_thread(writer.close)
        previous = await self._swap(directory, head)
        # Readers waiting for an index (the first one, after a start) load it now.
        self.wakeups.notify([INDEXED])
        await self.close()
        self.directory = None
        if previous and previous != directory:
            # Readers that still map its files keep them until they reload (POSIX).
            shutil.rmtree(self.root / previous, ignore_errors=True)
        return head

    async def _swap(self, directory: str, position: int) -> str | None:
        now = datetime.now(UTC)
        async with self.db.write() as conn:
            previous = (
                await conn.execute(
                    select(search_index_state.c.directory).where(search_index_state.c.name == STATE)
                )
            ).scalar()
            if previous is None:
                await conn.execute(
                    insert(search_index_state).values(
                        name=STATE, directory=directory, position=position, updated_at=now
                    )
                )
            else:
                await conn.execute(
                    update(search_index_state)
                    .where(search_index_state.c.name == STATE)
                    .values(directory=directory, position=position, updated_at=now)
                )
        return previous

    async def run(self, stop: asyncio.Event) -> None:
        """Index until ``stop`` is set: a batch as soon as there is one, else asleep
        until a commit appends outbox rows (or the safety net's time passes)."""
        # Listening before the first look: a commit after it wakes the wait below.
        outbox = await self.wakeups.listen(OUTBOX)
        try:
            while not stop.is_set():
                try:
                    before = self.directory
                    self.rounds += 1
                    await self.catch_up()
                    if before is not None and self.directory == before:
                        await outbox.wait(self.safety_seconds, stop=stop)
                except IndexBusy:
                    log.warning("another process writes the search index; waiting")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 1.0)
                except Exception:
                    # E.g. the directory removed under it by a rebuild's swap: start over
                    # from the recorded state (a replay is harmless).
                    log.exception("search indexing failed; reopening the index")
                    await self.close()
                    self.directory = None
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 1.0)
        finally:
            await self.close()


class EmbeddedSearch:
    """The SearchIndex port over a DocumentIndex fed by the indexer: a search first
    waits (up to ``wait_seconds``) until the index has applied the outbox as its own
    transaction sees it, then runs on the index's last reload. While there is no index
    at all (another process builds the first one after serve is ready) it waits up to
    ``first_wait_seconds`` for it before answering Unavailable.

    ``index_here``: this process may be the writer (it indexes when it takes the lock);
    under ``serve`` the API processes only read."""

    def __init__(
        self,
        db: Database,
        root: Path,
        indexes: DocumentIndexes,
        *,
        index_here: bool,
        wait_seconds: float,
        wakeups: Wakeups,
        safety_seconds: float,
        first_wait_seconds: float = 0.0,
    ) -> None:
        self.db = db
        # Its own connections for its bookkeeping (and for indexing, when it indexes
        # here): the indexer's work is not the request's, as under serve, where it
        # runs in a process of its own.
        # Not durable commit by commit: the indexer's position, lost to a power cut,
        # only replays a few outbox rows (harmless, see Indexer); an fsync per commit
        # would add to every change's way into the index.
        self.own_db = Database(db.url, durable=False)
        self.root = root
        self.indexes = indexes
        self.wait_seconds = wait_seconds
        self.first_wait_seconds = max(first_wait_seconds, wait_seconds)
        self.wakeups = wakeups
        self.safety_seconds = safety_seconds
        self.indexer: Indexer | None = self.new_indexer() if index_here else None
        self._indexed: Listener | None = None  # taken before the first look
        self.index: DocumentIndex | None = None
        self.directory: str | None = None
        self.position = -1  # what the loaded searcher has applied, at least
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        if self.indexer is not None:
            await self.indexer.close()
        await self.own_db.dispose()

    async def forget(self) -> None:
        """After a restore: the index loaded here belongs to the state before; the next
        search loads the one the database names (its position may be lower)."""
        async with self._lock:
            if self.indexer is not None:
                await self.indexer.close()
                self.indexer.directory = None
            self.index, self.directory, self.position = None, None, -1
            await self.own_db.reopen()

    def new_indexer(self) -> Indexer:
        """An indexer of this index for a process of its own (or a rebuild)."""
        return Indexer(
            self.own_db, self.root, self.indexes, self.wakeups, safety_seconds=self.safety_seconds
        )

    async def prepare(
        self, conn: Connection, query: And, scopes: tuple[QueryNode, ...] = ()
    ) -> PreparedSearch:
        return await self._prepared(await outbox_head(self.db.reader_of(conn)), query, scopes)

    async def prepare_read(
        self, r: Reader, query: And, scopes: tuple[QueryNode, ...] = ()
    ) -> PreparedSearch:
        """As ``prepare``, in a read transaction of the driver's own reader (the index
        needs nothing of the database but the outbox head)."""
        return await self._prepared(await outbox_head(r), query, scopes)

    async def _prepared(
        self, head: int, query: And, scopes: tuple[QueryNode, ...]
    ) -> PreparedSearch:
        await self.wait_for(head)
        assert self.index is not None
        return await self.index.prepare(None, query, scopes)

    async def wait_for(self, head: int) -> None:
        """Until the loaded index has applied outbox position ``head`` (or the bound
        passes: then the last loaded state answers). Unavailable if there is none."""
        if self.index is not None and self.position >= head:
            return
        started = time.monotonic()
        deadline = started + self.wait_seconds
        async with self._lock:
            if self._indexed is None:
                self._indexed = await self.wakeups.listen(INDEXED)
            while True:
                if self.indexer is not None:
                    try:
                        await self.indexer.catch_up()
                    except IndexBusy:
                        self.indexer = None  # another process writes: read only
                await self._load()
                if self.index is not None and self.position >= head:
                    return
                # No index yet: building it is the indexer's first work after a start,
                # which a search made right after ready waits for rather than failing.
                end = started + self.first_wait_seconds if self.index is None else deadline
                left = end - time.monotonic()
                if left <= 0:
                    break
                # Until the indexer publishes a position (then the position is read again).
                await self._indexed.wait(min(left, self.safety_seconds))
        if self.index is None:
            raise Unavailable("the search index is being built; try again shortly")
        log.warning("search index at %d, outbox at %d: answering from it", self.position, head)

    async def _load(self) -> None:
        """Reload the reader when the recorded position moved (or open the index the
        state row names, after a rebuild)."""
        async with self.own_db.reader() as r:
            state = await read_state(r)
        if state is None:
            return
        position = applied_position(self.root, state)
        if state.directory != self.directory:
            try:
                self.index = await asyncio.to_thread(
                    self.indexes, self.root / state.directory, create=False
                )
            except IndexBroken:
                return
            self.directory = state.directory
        elif position == self.position:
            return
        if self.index is not None:
            await asyncio.to_thread(self.index.reload)
            self.position = position
