"""A folder's view as the classic API lists it: a page of its children as a listing shows
them (no asset's metadata read), and their total, counted only when the page does not
tell it (a page that ends before its limit is the last)."""

from __future__ import annotations

import pytest

from assetvault.services import Services
from assetvault.tree import repository
from tests.factories import make_assets


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    counted: list[str] = []
    real = repository.count_children

    async def count_children(r: repository.Reader, parent_id: str) -> int:
        counted.append(parent_id)
        return await real(r, parent_id)

    monkeypatch.setattr(repository, "count_children", count_children)
    return counted


@pytest.mark.parametrize(
    ("offset", "limit", "page", "total", "counted"),
    [
        (0, 20, 5, 5, False),  # the page ends before its limit: the last one
        (0, 5, 5, 5, False),  # exactly full: the one more asked for is not there
        (0, 3, 3, 5, True),
        (3, 3, 2, 5, False),
        (5, 3, 0, 5, True),  # past the end: nothing says how many came before
        (9, 3, 0, 5, True),
        (0, 0, 0, 5, True),
        (2, None, 3, 5, False),  # no limit: everything after the offset
    ],
)
async def test_a_folder_page_and_its_total(
    services: Services,
    counts: list[str],
    offset: int,
    limit: int | None,
    page: int,
    total: int,
    counted: bool,
) -> None:
    await services.tree.create_folder("/content/dam", "box", user="u")
    await make_assets(
        services,
        [(f"a{i}.jpg", {"dc:title": f"t{i}"}) for i in range(4)],
        folder="/content/dam/box",
    )
    await services.tree.create_folder(
        "/content/dam/box", "b-sub", user="u", properties={"jcr:title": "Sub"}
    )
    view = await services.tree.view("/content/dam/box", offset=offset, limit=limit)
    assert view is not None
    names = ["a0.jpg", "a1.jpg", "a2.jpg", "a3.jpg", "b-sub"]
    end = len(names) if limit is None else offset + limit
    assert [c.name for c in view.children] == names[offset:end]
    assert len(view.children) == page
    assert view.total == total
    assert bool(counts) == counted


async def test_a_listed_child_carries_a_folder_s_title_not_an_asset_s_metadata(
    services: Services,
) -> None:
    await make_assets(services, [("lamp.jpg", {"dc:title": "brass", "jcr:title": "x"})])
    await services.tree.create_folder(
        "/content/dam", "sub", user="u", properties={"jcr:title": "A folder"}
    )
    view = await services.tree.view("/content/dam")
    assert view is not None
    by_name = {c.name: c for c in view.children}
    assert by_name["sub"].title == "A folder"
    assert by_name["sub"].path == "/content/dam/sub" and by_name["sub"].kind == "folder"
    lamp = by_name["lamp.jpg"]
    assert (lamp.kind, lamp.mime_type, lamp.properties, lamp.title) == (
        "asset",
        "image/jpeg",
        {},
        None,
    )
