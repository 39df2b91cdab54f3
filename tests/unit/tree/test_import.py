"""TreeService.import_originals: a batch of new assets is created whole or not at all."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from assetvault.adapters.database.tables import jobs
from assetvault.errors import AlreadyExists, InvalidInput, NotFound
from assetvault.services import Services
from assetvault.tree.service import NewAsset
from tests.factories import make_assets, one_chunk, snapshot


async def test_a_batch_lands_with_its_metadata_and_a_processing_job(services: Services) -> None:
    created = await make_assets(services, [("a.jpg", {"dc:title": "A"}), ("b.jpg", {})])
    assert [n.path for n in created] == ["/content/dam/a.jpg", "/content/dam/b.jpg"]
    assert created[0].asset_metadata == {"dc:title": "A"} and created[0].size == 5
    assert all(n.asset_state == "processing" for n in created)
    async with services.db.read() as conn:
        payloads = (
            await conn.execute(select(jobs.c.payload).where(jobs.c.kind == "process-asset"))
        ).scalars()
        queued = sorted(p["node_id"] for p in payloads)
    assert queued == sorted(n.id for n in created)


@pytest.mark.parametrize(
    ("items", "error"),
    [
        ([("new.jpg", {}), ("new.jpg", {})], InvalidInput),  # a name twice
        ([("new.jpg", {}), ("taken.jpg", {})], AlreadyExists),  # one name exists
        ([("new.jpg", {"dc:title": None})], InvalidInput),  # a null value
        ([("new.jpg", {}), ("bad/name.jpg", {})], InvalidInput),  # not a name
    ],
)
async def test_one_bad_asset_fails_the_whole_batch(
    services: Services, items: list[tuple[str, dict[str, object]]], error: type[Exception]
) -> None:
    await make_assets(services, [("taken.jpg", {})])
    before = await snapshot(services)
    with pytest.raises(error):
        await make_assets(services, items)
    after = await snapshot(services)
    assert after["nodes"] == before["nodes"]


async def test_the_folder_must_exist(services: Services) -> None:
    blob = await services.blobs.put(one_chunk(b"x"))
    with pytest.raises(NotFound):
        await services.tree.import_originals(
            "/content/dam/nowhere", [NewAsset("x.jpg", blob, "image/jpeg")], user="u"
        )
