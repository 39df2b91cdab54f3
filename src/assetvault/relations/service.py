"""Relations between assets: ``sources``, ``derived`` and ``others``.

``others`` is two-way: relating A to B also relates B to A (two rows, kept in step).
A request naming the same relation twice, an asset related to itself, an unknown type
or a related asset that does not exist is refused whole; relations that already exist
are left as they are (adding is idempotent).
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, tuple_

from assetvault import cursors
from assetvault.adapters.database.connection import Connection
from assetvault.adapters.database.engine import Database
from assetvault.adapters.database.tables import nodes, relations
from assetvault.errors import InvalidInput, NotFound
from assetvault.tree import repository as tree_repo
from assetvault.tree.models import Node
from assetvault.tree.paths import URN_PREFIX, urn
from assetvault.tree.writes import Change, Writes

TYPES = ("sources", "derived", "others")
MAX_LIMIT = 50


@dataclass(frozen=True)
class Relation:
    relation_type: str
    related_id: str


def parse_urn(value: Any, what: str = "asset id") -> str:
    """The node id inside ``urn:aaid:aem:<uuid>``; InvalidInput if malformed."""
    if not isinstance(value, str) or not value.startswith(URN_PREFIX):
        raise InvalidInput(f"{what} {value!r} is not of the form urn:aaid:aem:<uuid>")
    try:
        return str(uuid.UUID(value[len(URN_PREFIX) :]))
    except ValueError as exc:
        raise InvalidInput(f"{what} {value!r} does not end in a UUID") from exc


def check_type(value: str) -> str:
    if value not in TYPES:
        raise InvalidInput(f"unknown relation type {value!r}; known: {', '.join(TYPES)}")
    return value


def encode_cursor(values: list[str]) -> str:
    return cursors.pack(values)


def decode_cursor(cursor: str, size: int) -> list[str]:
    try:
        values = cursors.unpack(cursor)
    except ValueError as exc:
        raise InvalidInput("the cursor is not valid") from exc
    if (
        not isinstance(values, list)
        or len(values) != size
        or not all(isinstance(v, str) for v in values)
    ):
        raise InvalidInput("the cursor is not valid")
    return values


def check_limit(limit: int | None) -> int:
    if limit is None:
        return MAX_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


class RelationService:
    def __init__(self, db: Database, writes: Writes) -> None:
        self.db = db
        self.writes = writes

    @staticmethod
    async def _asset_for_write(ch: Change, node_id: str) -> Node:
        node = await tree_repo.by_id(ch.reader, node_id)
        if node is None or node.kind != "asset":
            raise NotFound(f"asset {urn(node_id)} does not exist")
        return node

    @staticmethod
    async def _asset(conn: Connection, node_id: str) -> None:
        kind = (await conn.execute(select(nodes.c.kind).where(nodes.c.id == node_id))).scalar()
        if kind != "asset":
            raise NotFound(f"asset {urn(node_id)} does not exist")

    async def require_asset(self, node_id: str) -> None:
        async with self.db.read() as conn:
            await self._asset(conn, node_id)

    async def add(self, node_id: str, items: Any, *, user: str) -> int:
        """Add relations; returns how many were new."""
        if not isinstance(items, list) or not items:
            raise InvalidInput("items must be a non-empty array of relations")
        wanted: list[Relation] = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise InvalidInput(f"items[{i}] must be an object")
            unknown = set(item) - {"relationType", "relatedAssetId"}
            if unknown:
                raise InvalidInput(f"items[{i}] has unknown fields: {', '.join(sorted(unknown))}")
            rtype = item.get("relationType")
            if not isinstance(rtype, str):
                raise InvalidInput(f"items[{i}].relationType is required")
            check_type(rtype)
            related = parse_urn(item.get("relatedAssetId"), f"items[{i}].relatedAssetId")
            if related == node_id:
                raise InvalidInput(f"items[{i}]: an asset cannot be related to itself")
            relation = Relation(rtype, related)
            if relation in wanted:
                raise InvalidInput(f"items[{i}] repeats an earlier item")
            wanted.append(relation)
        async with self.writes.change(user) as ch:
            node = await self._asset_for_write(ch, node_id)
            for i, rel in enumerate(wanted):
                kind = (
                    await ch.conn.execute(select(nodes.c.kind).where(nodes.c.id == rel.related_id))
                ).scalar()
                if kind != "asset":
                    raise InvalidInput(
                        f"items[{i}].relatedAssetId {urn(rel.related_id)} is not an existing asset"
                    )
            return await ch.add_relations(node, [(r.relation_type, r.related_id) for r in wanted])

    async def list(
        self,
        node_id: str,
        *,
        types: list[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> tuple[list[Relation], str | None]:
        limit = check_limit(limit)
        q = select(relations.c.relation_type, relations.c.related_id).where(
            relations.c.asset_id == node_id
        )
        if types:
            q = q.where(relations.c.relation_type.in_([check_type(t) for t in types]))
        if cursor:
            after = decode_cursor(cursor, 2)
            q = q.where(tuple_(relations.c.relation_type, relations.c.related_id) > tuple_(*after))
        q = q.order_by(relations.c.relation_type, relations.c.related_id).limit(limit + 1)
        async with self.db.read() as conn:
            await self._asset(conn, node_id)
            rows = (await conn.execute(q)).all()
        page = [Relation(r.relation_type, r.related_id) for r in rows[:limit]]
        more = (
            encode_cursor([page[-1].relation_type, page[-1].related_id])
            if len(rows) > limit
            else None
        )
        return page, more

    async def types(
        self, node_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> tuple[builtins.list[str], str | None]:  # `list` here is the method above
        limit = check_limit(limit)
        q = select(relations.c.relation_type).where(relations.c.asset_id == node_id).distinct()
        if cursor:
            q = q.where(relations.c.relation_type > decode_cursor(cursor, 1)[0])
        q = q.order_by(relations.c.relation_type).limit(limit + 1)
        async with self.db.read() as conn:
            await self._asset(conn, node_id)
            names = [r[0] for r in (await conn.execute(q)).all()]
        page = names[:limit]
        return page, encode_cursor([page[-1]]) if len(names) > limit else None

    async def remove(
        self, node_id: str, relation_type: str, related_id: str | None = None, *, user: str
    ) -> int:
        """Remove one relation, or all of a type; returns how many of this asset's went."""
        check_type(relation_type)
        async with self.writes.change(user) as ch:
            node = await self._asset_for_write(ch, node_id)
            targets = await ch.remove_relations(node, relation_type, related_id)
            if related_id is not None and not targets:
                raise NotFound(
                    f"{urn(node_id)} has no {relation_type} relation to {urn(related_id)}"
                )
        return len(targets)

    async def referrers(self, conn: Connection, node_id: str) -> int:
        """How many relations of other assets point at this one."""
        q = select(func.count()).select_from(relations).where(relations.c.related_id == node_id)
        return int((await conn.execute(q)).scalar_one())
