"""Reads of the content tree: plain SQL over a ``Reader`` (adapters/database/reader.py),
so the same function answers a point read on the driver itself and a read inside a
write transaction; rows come back as frozen dataclasses. The writes are the write
path's (tree/writes.py). SQL is written once with ``?`` placeholders for both databases.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from assetvault.adapters.database.reader import Reader, Row
from assetvault.tree.models import FRAGMENT_TYPE, AssetVersion, Listed, Node, OutboxEvent, Rendition
from assetvault.tree.paths import ROOT

PARAMETER_BATCH = 500  # bound the number of SQL parameters per statement

NODE_COLUMNS = (
    "id, parent_id, name, path, kind, revision, created_at, created_by, modified_at, "
    "modified_by, properties, blob_key, size, sha1, mime_type, asset_state, extracted, "
    "extracted_text, processing_error, published, published_at"
)
# Listings leave the extracted text (which can be large) behind.
NODE_COLUMNS_NO_TEXT = NODE_COLUMNS.replace("extracted_text", "NULL")
RENDITION_COLUMNS = (
    "id, node_id, name, origin, blob_key, size, mime_type, width, height, created_at"
)
VERSION_COLUMNS = (
    "id, node_id, number, label, comment, blob_key, size, sha1, mime_type, created_at, created_by"
)


@lru_cache(maxsize=8192)
def _instant_text(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def instant(value: Any) -> datetime:
    """A stored timestamp: a datetime from PostgreSQL, ISO text from SQLite (the same
    texts come back read after read: parsed once, the datetimes are immutable)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return _instant_text(value)


def document(value: Any) -> Any:
    """A stored JSON column: text from either driver (or already decoded)."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


_new_node = object.__new__


def node_from(row: Row) -> Node:
    # Node is a frozen dataclass, whose __init__ sets each of its 21 fields through
    # object.__setattr__: for listings of many nodes that was a third of a row's cost.
    # Its fields are filled directly instead, every one of them (the same values).
    node = _new_node(Node)
    node.__dict__.update(
        id=row[0],
        parent_id=row[1],
        name=row[2],
        path=row[3],
        kind=row[4],
        revision=row[5],
        created_at=instant(row[6]),
        created_by=row[7],
        modified_at=instant(row[8]),
        modified_by=row[9],
        properties=dict(document(row[10]) or {}),
        blob_key=row[11],
        size=row[12],
        sha1=row[13],
        mime_type=row[14],
        asset_state=row[15],
        extracted=dict(document(row[16]) or {}),
        extracted_text=row[17],
        processing_error=row[18],
        published=bool(row[19]),
        published_at=instant(row[20]) if row[20] is not None else None,
    )
    return node


def node_with(node: Node, **changes: Any) -> Node:
    """``node`` with some of its fields changed: ``dataclasses.replace`` without the frozen
    dataclass's ``__init__``, as ``node_from`` (on the hot write path of a PATCH)."""
    changed = _new_node(Node)
    changed.__dict__.update(node.__dict__, **changes)
    return changed


def _created_at_10th(row: Row) -> list[Any]:
    """A version's or rendition's row (both have created_at as their 10th column)."""
    values = list(row)
    values[9] = instant(values[9])
    return values


def _batches(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(values), PARAMETER_BATCH):
        yield values[i : i + PARAMETER_BATCH]


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _locking(r: Reader, lock: bool) -> str:
    # SQLite's write transactions are serialised (BEGIN IMMEDIATE): no row locks there.
    return " FOR UPDATE" if lock and r.dialect == "postgresql" else ""


async def by_path(r: Reader, path: str, *, lock: bool = False) -> Node | None:
    """The node at ``path``; ``lock`` holds its row until the transaction ends, so a
    concurrent writer waits instead of working from a stale read (PostgreSQL; SQLite's
    write transactions are serialised anyway)."""
    sql = f"SELECT {NODE_COLUMNS} FROM nodes WHERE path = ?" + _locking(r, lock)
    row = await r.fetch_one(sql, (path,))
    return node_from(row) if row else None


async def by_id(r: Reader, node_id: str, *, lock: bool = False, text: bool = True) -> Node | None:
    """The node with this id; ``text=False`` leaves its extracted text (a document's
    words, megabytes of them at times) unread."""
    columns = NODE_COLUMNS if text else NODE_COLUMNS_NO_TEXT
    sql = f"SELECT {columns} FROM nodes WHERE id = ?" + _locking(r, lock)
    row = await r.fetch_one(sql, (node_id,))
    return node_from(row) if row else None


async def by_ids(r: Reader, node_ids: list[str]) -> dict[str, Node]:
    """The nodes with these ids, without their extracted text."""
    found: dict[str, Node] = {}
    for batch in _batches(node_ids):
        sql = f"SELECT {NODE_COLUMNS_NO_TEXT} FROM nodes WHERE id IN ({_marks(batch)})"
        found.update((row[0], node_from(row)) for row in await r.fetch_all(sql, batch))
    return found


async def ids_at(r: Reader, paths: list[str]) -> dict[str, str]:
    """Path -> id of the nodes at these paths (those that exist)."""
    found: dict[str, str] = {}
    for batch in _batches(paths):
        sql = f"SELECT path, id FROM nodes WHERE path IN ({_marks(batch)})"
        found.update((path, node_id) for path, node_id in await r.fetch_all(sql, batch))
    return found


# A page of a folder's children as the classic API lists them: the users' layer only of
# folders and content fragments (their titles). Neither the extracted layer (a photo's is
# kilobytes of JSON) nor an asset's own is read and parsed for each child.
LISTED_SQL = (
    "SELECT name, path, kind, mime_type, CASE WHEN kind = 'folder' OR mime_type = ? "
    "THEN properties END FROM nodes WHERE parent_id = ? ORDER BY name LIMIT ? OFFSET ?"
)


async def listed_children(
    r: Reader, parent_id: str, *, offset: int = 0, limit: int | None = None
) -> list[Listed]:
    """A page of a folder's children by name, as a listing shows them."""
    no_limit = -1 if r.dialect == "sqlite" else None
    rows = await r.fetch_all(
        LISTED_SQL, (FRAGMENT_TYPE, parent_id, limit if limit is not None else no_limit, offset)
    )
    return [Listed(a, b, c, d, dict(document(e) or {})) for a, b, c, d, e in rows]


async def children(
    r: Reader, parent_id: str, *, offset: int = 0, limit: int | None = None
) -> list[Node]:
    """A page of a folder's children by name, without their extracted text."""
    sql = f"SELECT {NODE_COLUMNS_NO_TEXT} FROM nodes WHERE parent_id = ? ORDER BY name"
    params: list[Any] = [parent_id]
    # SQLite wants a LIMIT before an OFFSET; -1 / NULL mean no limit in either database.
    sql += " LIMIT ? OFFSET ?"
    params += [limit if limit is not None else (-1 if r.dialect == "sqlite" else None), offset]
    return [node_from(row) for row in await r.fetch_all(sql, params)]


async def count_children(r: Reader, parent_id: str) -> int:
    row = await r.fetch_one("SELECT count(*) FROM nodes WHERE parent_id = ?", (parent_id,))
    return int(row[0]) if row else 0


async def child_names(r: Reader, parent_id: str, names: list[str]) -> set[str]:
    """Which of ``names`` the folder already holds."""
    taken: set[str] = set()
    for batch in _batches(names):
        sql = f"SELECT name FROM nodes WHERE parent_id = ? AND name IN ({_marks(batch)})"
        taken.update(name for (name,) in await r.fetch_all(sql, [parent_id, *batch]))
    return taken


async def versions(r: Reader, node_id: str) -> list[AssetVersion]:
    sql = f"SELECT {VERSION_COLUMNS} FROM asset_versions WHERE node_id = ? ORDER BY number"
    return [AssetVersion(*_created_at_10th(row)) for row in await r.fetch_all(sql, (node_id,))]


async def next_version_number(r: Reader, node_id: str) -> int:
    row = await r.fetch_one("SELECT max(number) FROM asset_versions WHERE node_id = ?", (node_id,))
    return int(row[0] or 0) + 1 if row else 1


async def list_renditions(r: Reader, node_id: str) -> list[Rendition]:
    sql = f"SELECT {RENDITION_COLUMNS} FROM renditions WHERE node_id = ? ORDER BY name"
    return [Rendition(*_created_at_10th(row)) for row in await r.fetch_all(sql, (node_id,))]


async def referenced_blob_keys(r: Reader) -> set[str]:
    keys: set[str] = set()
    for table in ("nodes", "asset_versions", "renditions"):
        sql = f"SELECT DISTINCT blob_key FROM {table} WHERE blob_key IS NOT NULL"
        keys.update(key for (key,) in await r.fetch_all(sql))
    return keys


def like_prefix(path: str) -> str:
    """A LIKE pattern for everything below ``path`` (wildcards in names escaped)."""
    escaped = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "/%"


async def subtree(r: Reader, node: Node) -> list[Node]:
    """The node and everything below it, parents before children."""
    sql = f"SELECT {NODE_COLUMNS} FROM nodes WHERE id = ? OR path LIKE ? ESCAPE '\\' ORDER BY path"
    found = [node_from(row) for row in await r.fetch_all(sql, (node.id, like_prefix(node.path)))]
    return sorted(found, key=lambda n: n.path.count("/"))


async def assets_below(r: Reader, path: str, limit: int) -> list[Node]:
    """The assets below ``path`` (every depth), by path, at most ``limit``; without their
    extracted text. The root's assets are all assets."""
    if path == ROOT:
        sql = f"SELECT {NODE_COLUMNS_NO_TEXT} FROM nodes WHERE kind = 'asset' ORDER BY path LIMIT ?"
        rows = await r.fetch_all(sql, (limit,))
    else:
        sql = (
            f"SELECT {NODE_COLUMNS_NO_TEXT} FROM nodes WHERE kind = 'asset' "
            "AND path LIKE ? ESCAPE '\\' ORDER BY path LIMIT ?"
        )
        rows = await r.fetch_all(sql, (like_prefix(path), limit))
    return [node_from(row) for row in rows]


async def outbox_after(r: Reader, after: int = 0, limit: int = 1000) -> list[OutboxEvent]:
    """Outbox rows past position ``after``, in commit order."""
    sql = (
        'SELECT seq, id, type, node_id, path, "user", data, created_at FROM outbox '
        "WHERE seq > ? ORDER BY seq LIMIT ?"
    )
    found = []
    for row in await r.fetch_all(sql, (after, limit)):
        seq, event_id, type_, node_id, path, user, data, created_at = row
        found.append(
            OutboxEvent(
                seq, event_id, type_, node_id, path, user, dict(document(data)), instant(created_at)
            )
        )
    return found


async def outbox_head(r: Reader) -> int:
    """The outbox's last seq: its newest row's, or, once pruning has removed every row,
    the floor (a consumer there has read everything)."""
    row = await r.fetch_one(
        "SELECT (SELECT max(seq) FROM outbox), (SELECT seq FROM outbox_floor WHERE id = 1)"
    )
    return max(int(value or 0) for value in row) if row else 0


async def outbox_floor(r: Reader) -> int:
    """The highest outbox seq pruned so far (0: none); every row up to it is gone."""
    row = await r.fetch_one("SELECT seq FROM outbox_floor WHERE id = 1")
    return int(row[0]) if row else 0


async def comments_of(r: Reader, node_id: str) -> list[dict[str, Any]]:
    sql = (
        "SELECT id, node_id, message, annotation_data, created_at, created_by FROM comments "
        "WHERE node_id = ? ORDER BY created_at, id"
    )
    return [
        {
            "id": row[0],
            "node_id": row[1],
            "message": row[2],
            "annotation_data": document(row[3]),
            "created_at": instant(row[4]),
            "created_by": row[5],
        }
        for row in await r.fetch_all(sql, (node_id,))
    ]
