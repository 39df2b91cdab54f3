"""A folder tree as deep as a client may make it is deleted through the classic API like
any other: one event per node, deepest first, and nothing of it left. (The schema's
cascade on the parent would delete it by recursion, which SQLite stops at 1,000
levels.)"""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import func, select
from tests.conftest import Tokens
from tests.factories import bearer, outbox_events

from assetvault.adapters.database.tables import nodes
from assetvault.services import Services


async def chain(services: Services, depth: int) -> list[str]:
    """``depth`` nested folders under /content/dam/deep, made in one change."""
    parent = await services.tree.get("/content/dam")
    made: list[str] = []
    async with services.writes.change("writer") as ch:
        for _ in range(depth):
            parent = await ch.create_folder(parent, "d" if made else "deep")
            made.append(parent.path)
    return made


@pytest.mark.parametrize("depth", [1000, 2000])
async def test_a_deep_folder_tree_is_deleted_with_one_event_per_folder(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, depth: int
) -> None:
    made = await chain(services, depth)
    start = (await outbox_events(services))[-1].seq
    began = time.monotonic()
    r = await client.delete("/api/assets/deep", headers=bearer(tokens.write))
    took = time.monotonic() - began
    assert r.status_code == 200, r.text
    gone = await outbox_events(services, after=start)
    assert [(e.type, e.path) for e in gone] == [("folder.deleted", p) for p in reversed(made)]
    async with services.db.read() as conn:
        left = (await conn.execute(select(func.count()).select_from(nodes))).scalar_one()
    assert left == 1  # the root
    assert await services.tree.find(made[-1]) is None
    assert took < 10, f"deleting {depth} levels took {took:.1f} s"
