"""The two search indexes' own behaviour: accents and case folded alike on both (the
Tantivy index on SQLite, PostgreSQL full text on PostgreSQL); PostgreSQL's full text and
metadata terms answered through its GIN indexes; the Tantivy index's typed metadata
terms and id halves, its combined facet code and its packed relevance ranking."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from assetvault.adapters.search import tantivy as tantivy_adapter
from assetvault.adapters.search.tantivy import (
    KeyBounds,
    PreparedTantivy,
    TantivyIndex,
    _id_halves,
    _id_of,
    canonical_number,
    facet_code,
    meta_terms,
    micros,
)
from assetvault.search.models import IndexedAsset
from assetvault.search.query import And, FacetRequest, parse_request
from assetvault.services import Services
from tests.factories import make_assets


async def names(services: Services, query: list[dict[str, Any]]) -> list[str]:
    result = await services.search.search(parse_request({"query": query, "limit": 50}))
    return sorted(h["repositoryMetadata"]["repo:name"] for h in result["hits"]["results"])


async def test_accents_and_case_fold_alike(services: Services) -> None:
    await make_assets(
        services,
        [
            ("a.jpg", {"dc:title": "Crème Brûlée"}),
            ("b.jpg", {"dc:description": "ÉCOLE façade"}),
            ("Ünïcode-naïve.png", {}),
        ],
    )
    assert await names(services, [{"match": {"text": "creme brulee"}}]) == ["a.jpg"]
    assert await names(services, [{"match": {"text": "CRÈME"}}]) == ["a.jpg"]
    assert await names(services, [{"match": {"text": "ecole facade"}}]) == ["b.jpg"]
    assert await names(
        services, [{"match": {"text": "unicode", "fields": ["repositoryMetadata.repo:name"]}}]
    ) == ["Ünïcode-naïve.png"]
    assert await names(services, [{"match": {"text": "naï", "operator": "startsWith"}}]) == [
        "Ünïcode-naïve.png"
    ]
    # Restricted to the title, a word of the description is no hit.
    assert (
        await names(services, [{"match": {"text": "ecole", "fields": ["assetMetadata.dc:title"]}}])
        == []
    )


async def test_postgres_answers_through_its_gin_indexes(services: Services) -> None:
    if services.db.is_sqlite:
        return  # the embedded index is Tantivy's (see test_indexer.py)
    await make_assets(
        services, [(f"g{i}.jpg", {"dc:title": f"word{i}", "rating": i}) for i in range(30)]
    )
    assert await names(services, [{"match": {"text": "word7"}}]) == ["g7.jpg"]
    assert await names(services, [{"term": {"assetMetadata.rating": [7]}}]) == ["g7.jpg"]
    async with services.db.read() as conn:
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            r[0]
            for r in await conn.execute(
                text(
                    "EXPLAIN SELECT id FROM nodes n "
                    "WHERE n.search_tsv @@ to_tsquery('simple', 'word7')"
                )
            )
        )
        assert "ix_nodes_search_tsv" in plan, plan
        plan = "\n".join(
            r[0]
            for r in await conn.execute(
                text(
                    "EXPLAIN SELECT id FROM nodes n WHERE CAST(n.properties AS jsonb) @> "
                    "CAST('{\"rating\": 7}' AS jsonb)"
                )
            )
        )
        assert "ix_nodes_properties_jsonb" in plan, plan


async def test_counted_ranked_is_the_count_and_the_ranking(services: Services) -> None:
    # The port's one-pass first page, on either index: the total and the best ids.
    titles = ["lamp", "lamp lamp", "lamp brass", "brass"]
    await make_assets(services, [(f"r{i}.jpg", {"dc:title": titles[i % 4]}) for i in range(12)])
    async with services.search._session() as (_, prepare):
        prepared = await prepare(_match("lamp"), ())
        counted, _ = await prepared.summary((), 100)
        assert counted == 9
        assert await prepared.counted_ranked(4, 100) == (9, await prepared.ranked(4))


def test_metadata_terms_keep_types_apart() -> None:
    terms = set(meta_terms({"r": [2.0, "2", True, None], "e": [], "n": None, "ab": "c", "a": "bc"}))
    assert terms == {"n1:r2", "s1:r2", "b1:r1", "p1:r", "s2:abc", "p2:ab", "s1:abc", "p1:a"}
    assert canonical_number(2) == canonical_number(2.0) == "2"
    assert canonical_number(2.5) == "2.5"


def test_id_halves_order_as_the_ids_do() -> None:
    ids = sorted(
        [
            "00000000-0000-4000-8000-000000000000",
            "7fffffff-ffff-4fff-bfff-ffffffffffff",
            "80000000-0000-4000-8000-000000000001",
            "ffffffff-ffff-4fff-bfff-ffffffffffff",
        ]
    )
    halves = [_id_halves(i) for i in ids]
    assert halves == sorted(halves)
    assert [_id_of(*h) for h in halves] == ids


def _asset(number: int, mime: str, status: object, title: str) -> IndexedAsset:
    moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=number)
    metadata: dict[str, Any] = {"dc:title": title}
    if status is not None:
        metadata["dam:assetStatus"] = status
    return IndexedAsset(
        id=str(uuid.UUID(int=random.Random(number).getrandbits(128))),  # uniform, as uuid4s
        name=f"a{number}.jpg",
        path=f"/content/dam/a{number}.jpg",
        parent_id=None,
        ancestor_ids=(),
        created_at=moment,
        modified_at=moment,
        created_by="u",
        modified_by="u",
        mime_type=mime,
        size=number,
        metadata=metadata,
    )


def _match(words: str) -> And:
    return parse_request({"query": [{"match": {"text": words}}]}).query


async def _facets(index: TantivyIndex, words: str) -> tuple[int, list[list[tuple[Any, int]]]]:
    facets = tuple(
        FacetRequest(id=name, field=field, size=10, values=None, scope=None)
        for name, field in (
            ("f", "repositoryMetadata.dc:format"),
            ("s", "assetMetadata.dam:assetStatus"),
        )
    )
    prepared = await index.prepare(None, _match(words))
    return await prepared.summary(facets, 10_001)


def _build(tmp_path: Path, assets: list[IndexedAsset]) -> TantivyIndex:
    index = TantivyIndex(tmp_path / "index", create=True)
    writer = index.writer(bulk=True)
    writer.upsert(assets)
    writer.commit()
    writer.close()
    index.reload()
    return index


async def test_a_reader_opens_its_index_afresh_now_and_then(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tantivy's directory remembers every file an Index object ever opened: a reader
    # that reloads after each commit takes a new Index object every so many reloads.
    monkeypatch.setattr(tantivy_adapter, "RENEW_AFTER_RELOADS", 3)
    index = _build(tmp_path, [_asset(0, "image/jpeg", None, "lamp")])
    writer_side = TantivyIndex(tmp_path / "index", create=False)
    writer = writer_side.writer()
    opened = [index.index]
    for i in range(1, 7):
        writer.upsert([_asset(i, "image/jpeg", None, "lamp")])
        writer.commit()
        index.reload()
        if index.index is not opened[-1]:
            opened.append(index.index)
        # Every reload sees every commit, on the old Index object or a new one.
        assert index.count() == i + 1
        assert len(await (await index.prepare(None, _match("lamp"))).ranked(50)) == i + 1
    writer.close()
    assert len(opened) == 3  # renewed at the 3rd and the 6th reload since the build's


async def test_facets_from_the_combined_code_are_exact(tmp_path: Path) -> None:
    mimes = ["image/jpeg", "image/png", "application/pdf"]
    statuses: list[object] = ["approved", "pending", None, 3]  # 3: not a status value
    assets = [
        _asset(i, mimes[i % 3], statuses[i % 4], "lamp" if i % 5 else "lamp shade")
        for i in range(60)
    ]
    index = _build(tmp_path, assets)
    assert index.codes is not None
    total, (formats, states) = await _facets(index, "lamp")
    assert total == 60
    assert dict(formats) == {m: 20 for m in mimes}
    assert dict(states) == {"approved": 15, "pending": 15}
    total, (formats, _) = await _facets(index, "shade")
    assert total == 12 and sum(n for _, n in formats) == 12


async def test_facets_fall_back_when_two_values_share_a_code(tmp_path: Path) -> None:
    # Two formats whose 31-bit CRCs are equal: the combined code cannot tell them apart.
    one, two = "image/x-3985819", "image/x-4420602"
    assert facet_code(one, None) == facet_code(two, None)
    index = _build(tmp_path, [_asset(i, (one, two, two)[i % 3], "ok", "lamp") for i in range(9)])
    assert index.codes is None
    total, (formats, states) = await _facets(index, "lamp")
    assert (total, formats, states) == (9, [(two, 6), (one, 3)], [("ok", 9)])


async def test_packed_ranking_is_the_ranking(tmp_path: Path) -> None:
    # Many equal scores (one title for most assets): ties go by id in both.
    titles = ["lamp"] * 40 + ["lamp lamp brass"] * 10 + ["lamp brass"] * 10
    index = _build(tmp_path, [_asset(i, "image/jpeg", None, t) for i, t in enumerate(titles)])
    prepared = await index.prepare(None, _match("lamp"))
    packed = await prepared.ranked_uuids(100)
    ids = [str(uuid.UUID(bytes=packed[i : i + 16])) for i in range(0, len(packed), 16)]
    assert ids == await prepared.ranked(100) and len(ids) == 60
    # A short ranking keeps the best (ties at its edge as Tantivy's collector picks).
    assert await prepared.counted_ranked(7, 10) == (60, await prepared.ranked(7))


async def test_unsorted_pages_by_id_through_windows(tmp_path: Path) -> None:
    # Enough assets that a page's first id window holds only part of the index.
    titles = ["lamp" if i % 7 == 0 else "shade" for i in range(3000)]
    assets = [_asset(i, "image/jpeg", None, t) for i, t in enumerate(titles)]
    index = _build(tmp_path, assets)
    for words, expected in (("lamp", 429), ("shade", 2571)):
        query = parse_request({"query": [{"match": {"text": words}}], "sort": []}).query
        prepared = await index.prepare(None, query)
        seen: list[str] = []
        after: list[Any] | None = None
        while True:
            rows = await prepared.page((), after, 50, large=False)
            seen += [node_id for node_id, _ in rows]
            if len(rows) < 50:
                break
            after = rows[-1][1]
        wanted = sorted(a.id for a in assets if a.metadata["dc:title"] == words)
        assert seen == wanted and len(seen) == expected


async def _all_pages(prepared: Any, sort: tuple[Any, ...], limit: int) -> list[str]:
    seen: list[str] = []
    after: list[Any] | None = None
    while True:
        rows = await prepared.page(sort, after, limit, large=False)
        seen += [node_id for node_id, _ in rows]
        if len(rows) < limit:
            return seen
        after = rows[-1][1]


def _sorted_by(field: str, order: str, mime: str) -> tuple[And, tuple[Any, ...]]:
    # A filter (windows are for broad filters; a query with words orders its hits whole).
    request = parse_request(
        {
            "query": [{"term": {"repositoryMetadata.dc:format": [mime]}}],
            "sort": [{"field": field, "order": order}],
        }
    )
    return request.query, request.sort


async def test_sorted_pages_by_integer_keys_through_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Enough assets that a page's first window of modified times (or sizes) holds only
    # part of the hits; the pages must be those of ordering every hit at once.
    assets = [
        _asset(i, "image/jpeg" if i % 7 == 0 else "image/png", None, "x") for i in range(3000)
    ]
    assets += [_asset(5000, "image/jpeg", None, "x")]  # a gap in the values
    index = _build(tmp_path, assets)
    windows: list[str] = []
    int_range = PreparedTantivy._int_range

    def counted(self: PreparedTantivy, field: str, lo: Any, hi: Any) -> Any:
        windows.append(field)
        return int_range(self, field, lo, hi)

    monkeypatch.setattr(PreparedTantivy, "_int_range", counted)
    for field in ("repositoryMetadata.repo:modifyDate", "repositoryMetadata.repo:size"):
        for order in ("DESC", "ASC"):
            for mime in ("image/jpeg", "image/png"):
                query, sort = _sorted_by(field, order, mime)
                windows.clear()
                windowed = await _all_pages(await index.prepare(None, query), sort, 20)
                assert windows, "no window was tried"
                with monkeypatch.context() as whole:
                    whole.setattr(KeyBounds, "of", lambda *_: None)
                    reference = await _all_pages(await index.prepare(None, query), sort, 20)
                expected = sum(1 for a in assets if a.mime_type == mime)
                assert windowed == reference and len(windowed) == expected, (field, order)


async def test_windows_take_in_values_past_a_stale_estimate(tmp_path: Path) -> None:
    index = _build(tmp_path, [_asset(i, "image/jpeg", None, "x") for i in range(1000, 2000)])
    firsts = {}
    for order in ("DESC", "ASC"):
        query, sort = _sorted_by("repositoryMetadata.repo:modifyDate", order, "image/jpeg")
        firsts[order] = await _all_pages(await index.prepare(None, query), sort, 10)
        assert len(firsts[order]) == 1000
    # Newer and older assets after the estimate was made (it is kept across reloads).
    writer = index.writer()
    writer.upsert([_asset(i, "image/jpeg", None, "x") for i in (5, 6, 3000, 3001)])
    writer.commit()
    writer.close()
    index.reload()
    newest = [str(uuid.UUID(int=random.Random(i).getrandbits(128))) for i in (3001, 3000)]
    oldest = [str(uuid.UUID(int=random.Random(i).getrandbits(128))) for i in (6, 5)]
    for order, expected in (
        ("DESC", newest + firsts["DESC"] + oldest),
        ("ASC", oldest[::-1] + firsts["ASC"] + newest[::-1]),
    ):
        query, sort = _sorted_by("repositoryMetadata.repo:modifyDate", order, "image/jpeg")
        assert await _all_pages(await index.prepare(None, query), sort, 10) == expected, order


async def test_windows_start_within_the_querys_own_range_of_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A date range over the middle of the span, sorted by date: the first window lies
    # inside the range (not at the index's newest value, where no hit can be).
    assets = [_asset(i, "image/jpeg", None, "lamp") for i in range(3000)]
    index = _build(tmp_path, assets)
    calls: list[tuple[str, Any, Any]] = []
    int_range = PreparedTantivy._int_range

    def recorded(self: PreparedTantivy, field: str, lo: Any, hi: Any) -> Any:
        calls.append((field, lo, hi))
        return int_range(self, field, lo, hi)

    monkeypatch.setattr(PreparedTantivy, "_int_range", recorded)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    since, until = start + timedelta(seconds=1000), start + timedelta(seconds=1999)
    for order in ("DESC", "ASC"):
        request = parse_request(
            {
                "query": [
                    {"term": {"repositoryMetadata.dc:format": ["image/jpeg"]}},
                    {
                        "range": {
                            "repositoryMetadata.repo:modifyDate": {
                                "gte": since.isoformat(),
                                "lte": until.isoformat(),
                            }
                        }
                    },
                ],
                "sort": [{"field": "repositoryMetadata.repo:modifyDate", "order": order}],
            }
        )
        prepared = await index.prepare(None, request.query)
        calls.clear()
        await prepared.page(request.sort, None, 20, large=False)
        # The probe past the estimate first, then the first window: closed, in range.
        _, lo, hi = [c for c in calls if c[0] == "modified"][1]
        assert lo is not None and hi is not None
        assert micros(since) <= lo <= hi <= micros(until), (order, lo, hi)
        windowed = await _all_pages(prepared, request.sort, 20)
        with monkeypatch.context() as whole:
            whole.setattr(KeyBounds, "of", lambda *_: None)
            reference = await _all_pages(await index.prepare(None, request.query), request.sort, 20)
        assert windowed == reference and len(windowed) == 1000


async def test_a_query_with_words_orders_its_hits_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its hits are few as a rule: one pass over them beats even one empty window.
    index = _build(tmp_path, [_asset(i, "image/jpeg", None, "lamp") for i in range(3000)])
    tried: list[Any] = []
    monkeypatch.setattr(KeyBounds, "of", lambda *args: tried.append(args))
    request = parse_request(
        {
            "query": [{"match": {"text": "lamp"}}],
            "sort": [{"field": "repositoryMetadata.repo:modifyDate", "order": "DESC"}],
        }
    )
    prepared = await index.prepare(None, request.query)
    rows = await prepared.page(request.sort, None, 20, large=False)
    assert len(rows) == 20 and tried == []
