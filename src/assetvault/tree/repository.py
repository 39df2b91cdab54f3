"""Reads of the content tree. Functions take an open connection, so a service composes
several of them inside one transaction; the writes are the write path's (tree/writes.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from assetvault.adapters.database.tables import asset_versions, nodes, outbox, renditions
from assetvault.tree.models import AssetVersion, Node, OutboxEvent, Rendition


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _node(row: Row[Any]) -> Node:
    m = row._mapping
    return Node(
        id=m["id"],
        parent_id=m["parent_id"],
        name=m["name"],
        path=m["path"],
        kind=m["kind"],
        revision=m["revision"],
        created_at=_utc(m["created_at"]),
        created_by=m["created_by"],
        modified_at=_utc(m["modified_at"]),
        modified_by=m["modified_by"],
        properties=dict(m["properties"] or {}),
        blob_key=m["blob_key"],
        size=m["size"],
        sha1=m["sha1"],
        mime_type=m["mime_type"],
        asset_state=m["asset_state"],
        extracted=dict(m["extracted"] or {}),
        extracted_text=m.get("extracted_text"),
        processing_error=m["processing_error"],
    )


def _version(row: Row[Any]) -> AssetVersion:
    m = dict(row._mapping)
    m["created_at"] = _utc(m["created_at"])
    return AssetVersion(**m)


async def by_path(conn: AsyncConnection, path: str, *, lock: bool = False) -> Node | None:
    """The node at ``path``; ``lock`` holds its row until the transaction ends, so a
    concurrent writer waits instead of working from a stale read (PostgreSQL; SQLite's
    write transactions are serialised anyway)."""
    q = select(nodes).where(nodes.c.path == path)
    row = (await conn.execute(q.with_for_update() if lock else q)).first()
    return _node(row) if row else None


async def by_id(conn: AsyncConnection, node_id: str, *, lock: bool = False) -> Node | None:
    q = select(nodes).where(nodes.c.id == node_id)
    row = (await conn.execute(q.with_for_update() if lock else q)).first()
    return _node(row) if row else None


async def by_ids(conn: AsyncConnection, node_ids: list[str]) -> dict[str, Node]:
    """The nodes with these ids, without their extracted text (which can be large)."""
    columns = [c for c in nodes.c if c.name != "extracted_text"]
    found: dict[str, Node] = {}
    for i in range(0, len(node_ids), 500):  # bound the number of SQL parameters
        q = select(*columns).where(nodes.c.id.in_(node_ids[i : i + 500]))
        found.update((row.id, _node(row)) for row in await conn.execute(q))
    return found


async def children(
    conn: AsyncConnection, parent_id: str, *, offset: int = 0, limit: int | None = None
) -> list[Node]:
    q = select(nodes).where(nodes.c.parent_id == parent_id).order_by(nodes.c.name)
    q = q.offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return [_node(r) for r in await conn.execute(q)]


async def count_children(conn: AsyncConnection, parent_id: str) -> int:
    q = select(func.count()).select_from(nodes).where(nodes.c.parent_id == parent_id)
    return int((await conn.execute(q)).scalar_one())


async def child_names(conn: AsyncConnection, parent_id: str, names: list[str]) -> set[str]:
    """Which of ``names`` the folder already holds."""
    taken: set[str] = set()
    for i in range(0, len(names), 500):  # bound the number of SQL parameters
        q = select(nodes.c.name).where(
            nodes.c.parent_id == parent_id, nodes.c.name.in_(names[i : i + 500])
        )
        taken.update((await conn.execute(q)).scalars())
    return taken


async def versions(conn: AsyncConnection, node_id: str) -> list[AssetVersion]:
    q = (
        select(asset_versions)
        .where(asset_versions.c.node_id == node_id)
        .order_by(asset_versions.c.number)
    )
    return [_version(r) for r in await conn.execute(q)]


async def next_version_number(conn: AsyncConnection, node_id: str) -> int:
    q = select(func.max(asset_versions.c.number)).where(asset_versions.c.node_id == node_id)
    return int((await conn.execute(q)).scalar() or 0) + 1


async def list_renditions(conn: AsyncConnection, node_id: str) -> list[Rendition]:
    q = select(renditions).where(renditions.c.node_id == node_id).order_by(renditions.c.name)
    out = []
    for row in await conn.execute(q):
        m = dict(row._mapping)
        m["created_at"] = _utc(m["created_at"])
        out.append(Rendition(**m))
    return out


async def referenced_blob_keys(conn: AsyncConnection) -> set[str]:
    keys = {k for (k,) in await conn.execute(select(nodes.c.blob_key).distinct()) if k}
    keys |= {k for (k,) in await conn.execute(select(asset_versions.c.blob_key).distinct())}
    keys |= {k for (k,) in await conn.execute(select(renditions.c.blob_key).distinct())}
    return keys


def _like_prefix(path: str) -> str:
    """A LIKE pattern for everything below ``path`` (wildcards in names escaped)."""
    escaped = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "/%"


async def subtree(conn: AsyncConnection, node: Node) -> list[Node]:
    """The node and everything below it, parents before children."""
    q = (
        select(nodes)
        .where((nodes.c.id == node.id) | nodes.c.path.like(_like_prefix(node.path), escape="\\"))
        .order_by(nodes.c.path)
    )
    found = [_node(r) for r in await conn.execute(q)]
    return sorted(found, key=lambda n: n.path.count("/"))


async def outbox_after(
    conn: AsyncConnection, after: int = 0, limit: int = 1000
) -> list[OutboxEvent]:
    """Outbox rows past position ``after``, in commit order."""
    q = select(outbox).where(outbox.c.seq > after).order_by(outbox.c.seq).limit(limit)
    found = []
    for row in await conn.execute(q):
        m = dict(row._mapping)
        m["created_at"] = _utc(m["created_at"])
        found.append(OutboxEvent(**m))
    return found
