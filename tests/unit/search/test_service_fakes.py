"""SearchService against the fake search index and media tools (tests/fakes.py): the
paging and the answer's shape, apart from any query language or index."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from assetvault.errors import InvalidInput
from assetvault.search.query import parse_request
from tests.factories import make_assets
from tests.fakes import Faked, FakeSearchIndex, faked_services


@pytest.fixture(params=["sqlite", "postgresql"])
async def faked(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Faked]:
    async with faked_services(request, tmp_path, request.param, fake_index=True) as f:
        yield f


def index(f: Faked) -> FakeSearchIndex:
    assert f.index is not None
    return f.index


async def names(f: Faked, body: dict[str, Any]) -> tuple[list[str], str | None]:
    result = await f.services.search.search(parse_request(body))
    hits = [h["repositoryMetadata"]["repo:name"] for h in result["hits"]["results"]]
    return hits, result.get("cursor")


async def test_relevance_pages_walk_a_frozen_ranking(faked: Faked) -> None:
    f = faked
    made = await make_assets(f.services, [(f"a{i}.jpg", {}) for i in range(5)])
    by_name = {n.name: n.id for n in made}
    ranking = ["a3.jpg", "a1.jpg", "a4.jpg", "a0.jpg", "a2.jpg"]
    index(f).matching = [by_name[n] for n in ranking]
    body: dict[str, Any] = {"query": [{"match": {"text": "lamp"}}], "limit": 2}
    first, cursor = await names(f, body)
    assert first == ["a3.jpg", "a1.jpg"] and cursor
    # a4 stops matching: the next page walks the snapshot, skipping it.
    index(f).matching = [by_name[n] for n in ranking if n != "a4.jpg"]
    second, cursor = await names(f, {**body, "cursor": cursor})
    assert second == ["a0.jpg", "a2.jpg"]
    assert cursor is None


async def test_sorted_pages_continue_after_the_last_keys(faked: Faked) -> None:
    f = faked
    made = await make_assets(f.services, [(f"b{i}.jpg", {}) for i in range(3)])
    index(f).matching = [n.id for n in made]
    body: dict[str, Any] = {
        "query": [{"match": {"text": "lamp"}}],
        "sort": [{"field": "repositoryMetadata.repo:name"}],
        "limit": 2,
    }
    first, cursor = await names(f, body)
    second, end = await names(f, {**body, "cursor": cursor})
    ordered = [n.name for n in sorted(made, key=lambda n: n.id)]
    assert (first, second, end) == (ordered[:2], ordered[2:], None)
    [(_, after, _), (_, after2, _)] = index(f).pages
    assert after is None and after2 == [sorted(n.id for n in made)[1]]


async def test_totals_over_the_cap_and_facets(faked: Faked) -> None:
    f = faked
    [one] = await make_assets(f.services, [("c.jpg", {})])
    index(f).matching = [one.id] + [f"{i:032x}" for i in range(10_001)]
    index(f).buckets = {"formats": [("image/jpeg", 7), ("image/png", 2)]}
    result = await f.services.search.search(
        parse_request(
            {
                "query": [{"match": {"text": "x"}}],
                "limit": 1,
                "facets": [{"id": "formats", "field": "repositoryMetadata.dc:format"}],
            }
        )
    )
    assert result["search_metadata"]["totalCount"] == {"total": 10_000, "relation": "gte"}
    assert result["facets"] == [
        {
            "id": "formats",
            "type": "CATEGORY",
            "values": [{"value": "image/jpeg", "count": 7}, {"value": "image/png", "count": 2}],
        }
    ]
    assert [h["repositoryMetadata"]["repo:name"] for h in result["hits"]["results"]] == ["c.jpg"]


async def test_a_pdf_query_reads_the_text_through_the_media_port(faked: Faked) -> None:
    f = faked
    pdf = f.media.file(b"%PDF-1.7 fake", text="Brass lamp, brass hinge. 2024")
    query = await f.services.search.pdf_query(pdf)
    assert (query.tokens, query.any_word) == (("brass", "hinge", "lamp"), True)
    broken = f.media.file(b"%PDF-1.7 broken", error="pdfium could not open it")
    with pytest.raises(InvalidInput, match="could not be read: pdfium could not open it"):
        await f.services.search.pdf_query(broken)
