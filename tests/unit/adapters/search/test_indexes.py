"""The two search indexes' own behaviour: accents and case folded alike on both (the
Tantivy index on SQLite, PostgreSQL full text on PostgreSQL); PostgreSQL's full text and
metadata terms answered through its GIN indexes; the Tantivy index's typed metadata
terms and id halves."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from assetvault.adapters.search.tantivy import _id_halves, _id_of, canonical_number, meta_terms
from assetvault.search.query import parse_request
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
