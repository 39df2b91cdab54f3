"""Moving an installation to other engines: every row of its database and every blob its
rows name, copied to a new database and blob store, then compared side by side
(``assetvault migrate-storage``, docs/deploy.md "Moving an embedded installation").

The source is a stopped installation (the command holds its serve lock throughout), so
this copies it as it is, outbox and journal positions included: it is not a change to
the tree and does not go through the write path, which would append events of its own.

- Blobs first, then rows, so the target's rows never name a blob it lacks. A blob is
  copied through the target store's own ``put``, which keys it by the SHA-256 of what it
  received: a source blob whose content no longer matches its key is reported, not
  copied under its old key.
- Rows in the schema's dependency order, folders before what they hold (by path), each
  batch an upsert on the primary key: a run that was cut off is simply run again, and
  converges on the source. The target may hold nothing but an earlier run's rows (and
  the empty root folder its own migration made): anything else is refused before a
  write.
- The position counters (the outbox's sequence, which consumers remember positions in)
  continue past the highest number the source ever handed out, pruned ones included.
- The embedded search index is not copied: its state row is left out and the target
  searches with its own backend (PostgreSQL's reads the nodes themselves).
- Secrets that the embedded default keeps as files (the upload-token secret, the event
  signing pairs) are written to the target's ``shared_secrets``, where every machine of
  a PostgreSQL installation reads them: upload tokens in flight stay valid, receivers
  keep verifying with the keys they know. The command reads them from the data
  directory and hands them in as ``secrets``.
- Verification reads both sides again: each table's row count and a digest of its rows
  in key order (values normalised: instants in UTC, JSON with sorted keys), and every
  named blob's size in the target store (its content too with ``verify_content``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Table, func, select, text, union
from sqlalchemy.dialects import postgresql, sqlite

from assetvault.adapters.blobs.base import BlobMissing, BlobStore
from assetvault.adapters.database.engine import Database
from assetvault.adapters.database.tables import (
    asset_versions,
    metadata,
    nodes,
    renditions,
    search_index_state,
    shared_secrets,
)
from assetvault.errors import InvalidInput

ROOT = "/content/dam"
# Left behind on purpose: where the embedded search index stood (the target's search
# backend works from the rows).
SKIPPED_TABLES = frozenset({search_index_state.name})
# Written from the files the embedded default keeps instead (``secrets``).
FROM_FILES = frozenset({shared_secrets.name})
BATCH_ROWS = 500
BLOB_COPIES_AT_ONCE = 4


class RelocationRefused(InvalidInput):
    """The target holds data that is not an earlier run's copy of this installation."""


@dataclass
class TableOutcome:
    name: str
    source_rows: int
    target_rows: int = 0
    same: bool = False
    difference: str | None = None


@dataclass
class BlobOutcome:
    named: int = 0
    copied: int = 0
    already_there: int = 0
    bytes_copied: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class RelocationReport:
    tables: list[TableOutcome]
    blobs: BlobOutcome
    seconds: float

    @property
    def verified(self) -> bool:
        return all(t.same for t in self.tables) and not self.blobs.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "seconds": round(self.seconds, 3),
            "tables": [t.__dict__ for t in self.tables],
            "blobs": self.blobs.__dict__,
        }


def copied_tables() -> list[Table]:
    """Every table of the schema, in an order that inserts what a row refers to first."""
    return [t for t in metadata.sorted_tables if t.name not in SKIPPED_TABLES | FROM_FILES]


def _writable(table: Table) -> list[Column[Any]]:
    return [c for c in table.columns if c.computed is None]


def _order(table: Table) -> list[Any]:
    # Folders before their children: a path sorts after every one of its prefixes.
    return [nodes.c.path] if table is nodes else list(table.primary_key.columns)


def _normalised(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(timespec="microseconds")
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if isinstance(value, bool):
        return int(value)
    return value


def _for_insert(row: dict[str, Any]) -> dict[str, Any]:
    # SQLite keeps instants without their offset; they were written in UTC.
    return {
        k: v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v
        for k, v in row.items()
    }


class Relocation:
    """One move of the installation on ``source`` + ``source_blobs`` to ``target`` +
    ``target_blobs``. ``progress`` hears a line per step (the command prints them)."""

    def __init__(
        self,
        source: Database,
        source_blobs: BlobStore,
        target: Database,
        target_blobs: BlobStore,
        *,
        progress: Callable[[str], None] | None = None,
        batch_rows: int = BATCH_ROWS,
        secrets: Mapping[str, str] | None = None,
    ) -> None:
        if source.url == target.url:
            raise InvalidInput("the target database is the source database")
        self.source = source
        self.source_blobs = source_blobs
        self.target = target
        self.target_blobs = target_blobs
        self.progress = progress or (lambda _line: None)
        self.batch_rows = batch_rows
        self.secrets = dict(secrets or {})

    async def run(self, *, verify_content: bool = False) -> RelocationReport:
        started = asyncio.get_running_loop().time()
        await self.target.migrate()
        await self.check_target()
        blobs = await self.copy_blobs()
        for table in copied_tables():
            await self.copy_table(table)
        await self.carry_secrets()
        await self.continue_counters()
        report = await self.verify(verify_content=verify_content, blobs=blobs)
        report.seconds = asyncio.get_running_loop().time() - started
        return report

    # -- the target's state before a write --------------------------------------------

    async def check_target(self) -> None:
        """Refuse a target holding rows or secrets this installation does not have, before
        any write; then remove the empty root folder a fresh target's migration made (the
        source's own root replaces it)."""
        await self._check_secrets()
        fresh_root: list[Any] = []
        for table in copied_tables():
            foreign = await self._keys(self.target, table) - await self._keys(self.source, table)
            if not foreign:
                continue
            if table is nodes and await self._is_fresh_root(foreign):
                fresh_root = [key[0] for key in foreign]
                continue
            raise RelocationRefused(
                f"the target database already holds data of another installation "
                f"({len(foreign)} row(s) of {table.name} that the source does not have): "
                "migrate into an empty database"
            )
        if fresh_root:
            async with self.target.write() as conn:
                await conn.execute(nodes.delete().where(nodes.c.id.in_(fresh_root)))

    async def _check_secrets(self) -> None:
        """Only this installation's secrets (an earlier run's) may be there already."""
        async with self.target.read() as conn:
            stored = {r[0]: r[1] for r in await conn.execute(select(shared_secrets))}
        foreign = sorted(n for n, v in stored.items() if self.secrets.get(n) != v)
        if foreign:
            raise RelocationRefused(
                "the target database already holds secrets of another installation "
                f"({', '.join(foreign[:3])}): migrate into an empty database"
            )

    async def carry_secrets(self) -> None:
        if not self.secrets:
            return
        stmt = (postgresql if not self.target.is_sqlite else sqlite).insert(shared_secrets)
        stmt = stmt.on_conflict_do_update(
            index_elements=[shared_secrets.c.name], set_={"value": stmt.excluded.value}
        )
        now = datetime.now(UTC)
        rows = [{"name": k, "value": v, "created_at": now} for k, v in self.secrets.items()]
        async with self.target.write() as conn:
            await conn.execute(stmt, rows)
        self.progress(f"secrets: {len(rows)} carried over from the data directory")

    async def _is_fresh_root(self, foreign: set[tuple[Any, ...]]) -> bool:
        if len(foreign) != 1:
            return False
        async with self.target.read() as conn:
            count = (await conn.execute(select(func.count()).select_from(nodes))).scalar_one()
            path = (
                await conn.execute(select(nodes.c.path).where(nodes.c.id == next(iter(foreign))[0]))
            ).scalar_one()
        return bool(count == 1 and path == ROOT)

    async def _keys(self, db: Database, table: Table) -> set[tuple[Any, ...]]:
        async with db.read() as conn:
            result = await conn.execute(select(*table.primary_key.columns))
            return {tuple(r) for r in result}

    # -- blobs ------------------------------------------------------------------------

    async def named_blobs(self) -> dict[str, int]:
        """Every blob a row of the source names, with the size the row gives it."""
        found: dict[str, int] = {}
        query = union(
            select(nodes.c.blob_key, nodes.c.size).where(nodes.c.blob_key.is_not(None)),
            select(asset_versions.c.blob_key, asset_versions.c.size),
            select(renditions.c.blob_key, renditions.c.size),
        )
        async with self.source.read() as conn:
            for key, size in await conn.execute(query):
                found[key] = int(size) if size is not None else -1
        return found

    async def copy_blobs(self) -> BlobOutcome:
        named = await self.named_blobs()
        outcome = BlobOutcome(named=len(named))
        self.progress(f"blobs: {len(named)} named by the source's rows")
        limit = asyncio.Semaphore(BLOB_COPIES_AT_ONCE)

        async def one(key: str) -> None:
            async with limit:
                await self._copy_blob(key, outcome)

        await asyncio.gather(*(one(k) for k in sorted(named)))
        self.progress(
            f"blobs: {outcome.copied} copied ({outcome.bytes_copied} bytes), "
            f"{outcome.already_there} already there, {len(outcome.problems)} problem(s)"
        )
        return outcome

    async def _copy_blob(self, key: str, outcome: BlobOutcome) -> None:
        size = await self.source_blobs.size(key)
        if size is None:
            outcome.problems.append(f"blob {key}: missing in the source store")
            return
        if await self.target_blobs.size(key) == size:
            outcome.already_there += 1
            return
        stored = await self.target_blobs.put(self._read(key))
        if stored.key != key:
            outcome.problems.append(
                f"blob {key}: its content in the source hashes to {stored.key} (damaged)"
            )
            return
        outcome.copied += 1
        outcome.bytes_copied += stored.size

    async def _read(self, key: str) -> AsyncIterator[bytes]:
        async for chunk in self.source_blobs.read(key):
            yield chunk

    # -- rows -------------------------------------------------------------------------

    async def copy_table(self, table: Table) -> int:
        columns = _writable(table)
        names = [c.name for c in columns]
        copied = 0
        async with self.source.read() as conn:
            result = await conn.stream(select(*columns).order_by(*_order(table)))
            batch: list[dict[str, Any]] = []
            async for row in result:
                batch.append(_for_insert(dict(zip(names, row, strict=True))))
                if len(batch) >= self.batch_rows:
                    copied += await self._upsert(table, batch)
                    batch = []
            if batch:
                copied += await self._upsert(table, batch)
        self.progress(f"{table.name}: {copied} row(s)")
        return copied

    async def _upsert(self, table: Table, rows: Sequence[dict[str, Any]]) -> int:
        dialect = postgresql if not self.target.is_sqlite else sqlite
        stmt = dialect.insert(table)
        keys = [c.name for c in table.primary_key.columns]
        rest = {c.name: stmt.excluded[c.name] for c in _writable(table) if c.name not in keys}
        stmt = (
            stmt.on_conflict_do_update(index_elements=keys, set_=rest)
            if rest
            else stmt.on_conflict_do_nothing(index_elements=keys)
        )
        async with self.target.write() as conn:
            await conn.execute(stmt, list(rows))
        return len(rows)

    async def continue_counters(self) -> None:
        """Counters continue past every number the source handed out: a consumer's
        remembered position must never be above the next new row's."""
        if self.target.is_sqlite:
            return
        for table in copied_tables():
            pk = list(table.primary_key.columns)
            if len(pk) != 1 or pk[0].autoincrement is False or not _is_integer(pk[0]):
                continue
            highest = await self._highest_handed_out(table, pk[0])
            async with self.target.write() as conn:
                sequence = (
                    await conn.execute(
                        text("SELECT pg_get_serial_sequence(:t, :c)"),
                        {"t": table.name, "c": pk[0].name},
                    )
                ).scalar_one()
                if sequence is None:
                    continue
                await conn.execute(
                    text("SELECT setval(CAST(:s AS regclass), :v, :called)"),
                    {"s": sequence, "v": max(highest, 1), "called": highest > 0},
                )

    async def _highest_handed_out(self, table: Table, column: Column[Any]) -> int:
        async with self.source.read() as conn:
            highest = (await conn.execute(select(func.max(column)))).scalar_one() or 0
            if self.source.is_sqlite:
                given = (
                    await conn.execute(
                        text("SELECT seq FROM sqlite_sequence WHERE name = :t"), {"t": table.name}
                    )
                ).scalar_one_or_none()
                highest = max(highest, given or 0)
        return int(highest)

    # -- verification -----------------------------------------------------------------

    async def verify(
        self, *, verify_content: bool = False, blobs: BlobOutcome | None = None
    ) -> RelocationReport:
        tables = [await self._compare(t) for t in copied_tables()]
        tables.append(await self._compare_secrets())
        checked = BlobOutcome() if blobs is None else blobs
        named = await self.named_blobs()
        checked.named = len(named)
        for key, size in named.items():
            problem = await self._check_blob(key, size, verify_content)
            if problem and problem not in checked.problems:
                checked.problems.append(problem)
        return RelocationReport(tables=tables, blobs=checked, seconds=0.0)

    async def _compare(self, table: Table) -> TableOutcome:
        source_count, source_digest, source_rows = await self._digest(self.source, table)
        target_count, target_digest, target_rows = await self._digest(self.target, table)
        outcome = TableOutcome(table.name, source_count, target_count)
        outcome.same = source_count == target_count and source_digest == target_digest
        if not outcome.same:
            outcome.difference = _first_difference(table, source_rows, target_rows)
        return outcome

    async def _compare_secrets(self) -> TableOutcome:
        async with self.target.read() as conn:
            found = dict(
                (r[0], r[1])
                for r in await conn.execute(select(shared_secrets.c.name, shared_secrets.c.value))
            )
        outcome = TableOutcome(shared_secrets.name, len(self.secrets), len(found))
        missing = [n for n, v in self.secrets.items() if found.get(n) != v]
        outcome.same = not missing and set(found) <= set(self.secrets)
        if missing:
            outcome.difference = f"secret {sorted(missing)[0]} is not the data directory's"
        elif not outcome.same:
            outcome.difference = "the target holds secrets the data directory does not"
        return outcome

    async def _digest(
        self, db: Database, table: Table
    ) -> tuple[int, str, dict[tuple[Any, ...], tuple[Any, ...]]]:
        columns = list(table.columns)
        keys = [i for i, c in enumerate(columns) if c.primary_key]
        digest = hashlib.sha256()
        rows: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        async with db.read() as conn:
            result = await conn.stream(select(*columns).order_by(*table.primary_key.columns))
            async for row in result:
                values = tuple(_normalised(v) for v in row)
                rows[tuple(values[i] for i in keys)] = values
                digest.update(json.dumps(values, default=str).encode())
        return len(rows), digest.hexdigest(), rows

    async def _check_blob(self, key: str, size: int, verify_content: bool) -> str | None:
        stored = await self.target_blobs.size(key)
        if stored is None:
            return f"blob {key}: missing in the target store"
        if size >= 0 and stored != size:
            return f"blob {key}: {stored} bytes in the target store, the rows say {size}"
        if verify_content:
            digest = hashlib.sha256()
            try:
                async for chunk in self.target_blobs.read(key):
                    digest.update(chunk)
            except BlobMissing:
                return f"blob {key}: missing in the target store"
            if digest.hexdigest() != key:
                return f"blob {key}: its content in the target store hashes otherwise"
        return None


def _is_integer(column: Column[Any]) -> bool:
    try:
        return column.type.python_type is int
    except NotImplementedError:
        return False


def _first_difference(
    table: Table,
    source: dict[tuple[Any, ...], tuple[Any, ...]],
    target: dict[tuple[Any, ...], tuple[Any, ...]],
) -> str:
    for key in sorted(source.keys() | target.keys(), key=repr):
        if key not in target:
            return f"row {key} is missing in the target"
        if key not in source:
            return f"row {key} is only in the target"
        if source[key] != target[key]:
            names = [c.name for c in table.columns]
            changed = [n for n, a, b in zip(names, source[key], target[key], strict=True) if a != b]
            return f"row {key} differs in {', '.join(changed)}"
    return "the rows differ in order"
