"""Parsing search requests: what is accepted, and a 400 naming the fault for the rest."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assetvault.errors import InvalidInput
from assetvault.search.query import (
    And,
    Exists,
    Match,
    Not,
    Or,
    Range,
    Term,
    parse_request,
    positive_matches,
    words,
)

TITLE = {"match": {"text": "alpha"}}


def parse(**body: Any) -> Any:
    return parse_request({"query": [TITLE], **body})


def test_every_node_kind_nests() -> None:
    request = parse_request(
        {
            "query": [
                {
                    "and": [
                        {"or": [{"term": {"assetMetadata.dc:subject": ["a", 2, True]}}]},
                        {"not": [{"exists": {"field": "assetMetadata.dam:assetStatus"}}]},
                        {"range": {"repositoryMetadata.repo:size": {"gte": 1, "lt": 2.5}}},
                        {"match": {"text": "Déjà vu", "fields": ["assetMetadata.dc:title"]}},
                    ]
                }
            ]
        }
    )
    (top,) = request.query.children
    assert isinstance(top, And)
    either, negated, ranged, matched = top.children
    assert isinstance(either, Or) and isinstance(either.children[0], Term)
    assert either.children[0].values == ("a", 2, True)
    assert isinstance(negated, Not) and isinstance(negated.children[0], Exists)
    assert isinstance(ranged, Range) and ranged.bounds == (("gte", 1), ("lt", 2.5))
    assert isinstance(matched, Match)
    assert matched.tokens == ("deja", "vu") and matched.columns == ("title",)
    assert positive_matches(request.query) == [matched]


def test_defaults_and_sort_forms() -> None:
    request = parse()
    assert request.limit == 20 and request.sort == () and request.cursor is None
    by_list = parse(
        sort=[{"field": "repositoryMetadata.repo:name"}, {"field": "assetId", "order": "DESC"}]
    )
    by_string = parse(orderBy="repositoryMetadata.repo:name, assetId desc")
    assert by_list.sort == by_string.sort
    assert [k.descending for k in by_list.sort] == [False, True]
    assert parse(orderBy="repositoryMetadata.repo:modifyDate dec").sort[0].descending


def test_match_all_and_prefix() -> None:
    for text in ("", "*", "  "):
        node = parse_request({"query": [{"match": {"text": text}}]}).query.children[0]
        assert isinstance(node, Match) and node.match_all
    node = parse_request({"query": [{"match": {"text": "ab cd", "operator": "startsWith"}}]})
    assert node.query.children[0] == Match(
        ("ab", "cd"), ("name", "title", "description", "subject", "body"), prefix=True
    )


def test_dates_in_ranges_are_instants() -> None:
    node = parse_request(
        {"query": [{"range": {"repositoryMetadata.repo:createDate": {"gt": "2026-01-02"}}}]}
    ).query.children[0]
    assert isinstance(node, Range)
    assert node.bounds == (("gt", datetime(2026, 1, 2, tzinfo=UTC)),)


def test_words_fold_case_and_accents_and_split_on_punctuation() -> None:
    assert words("Crème_brûlée, NAÏVE-café 42") == ["creme", "brulee", "naive", "cafe", "42"]


BAD: list[tuple[dict[str, Any], str]] = [
    ({}, "query is required"),
    ({"query": []}, "1 to 5 items, not 0"),
    ({"query": [TITLE] * 6}, "1 to 5 items, not 6"),
    ({"query": {"match": {"text": "x"}}}, "must be an array"),
    ({"query": [{"fuzzy": {"text": "x"}}]}, "unknown query kind 'fuzzy'"),
    ({"query": [{"match": {"text": "x"}, "term": {}}]}, "exactly one key"),
    ({"query": [{"and": {"match": {"text": "x"}}}]}, "query[0].and must be an array"),
    ({"query": [{"or": [TITLE] * 6}]}, "query[0].or must hold 1 to 5 items"),
    ({"query": [{"match": {"text": 3}}]}, "text must be a string"),
    (
        {"query": [{"match": {"text": "x", "mode": "HYBRID", "fields": ["assetId"]}}]},
        "only allowed with mode FULLTEXT",
    ),
    (
        {"query": [{"match": {"text": "x", "fields": ["repositoryMetadata.repo:path"]}}]},
        "not full-text searchable",
    ),
    ({"query": [{"term": {"assetMetadata.dc:title": "x"}}]}, "array of 1 to 100 values"),
    ({"query": [{"term": {"assetMetadata.dc:title": [None]}}]}, "strings, numbers or booleans"),
    ({"query": [{"term": {"title": ["x"]}}]}, "dotted group path"),
    ({"query": [{"term": {"fooMetadata.x": ["x"]}}]}, "unknown field group 'fooMetadata'"),
    (
        {"query": [{"term": {"repositoryMetadata.repo:color": ["x"]}}]},
        "unknown field 'repositoryMetadata.repo:color'",
    ),
    (
        {"query": [{"range": {"repositoryMetadata.repo:size": {"gte": "big"}}}]},
        "'big' is not a number",
    ),
    (
        {"query": [{"range": {"repositoryMetadata.repo:createDate": {"gte": "yesterday"}}}]},
        "'yesterday' is not an ISO 8601 date",
    ),
    (
        {"query": [{"range": {"repositoryMetadata.repo:size": {"near": 1}}}]},
        "gt, gte, lt and/or lte",
    ),
    (
        {"query": [{"range": {"assetMetadata.x": {"gt": 1, "lt": "z"}}}]},
        "all numbers or all strings",
    ),
    ({"query": [{"exists": {"name": "x"}}]}, '{"field": "<field>"}'),
    ({"query": [TITLE], "limit": 0}, "limit must be an integer from 1 to 50, not 0"),
    ({"query": [TITLE], "limit": 51}, "not 51"),
    ({"query": [TITLE], "limit": "5"}, "limit must be an integer"),
    (
        {"query": [TITLE], "sort": [{"field": "repositoryMetadata.repo:colour"}]},
        "sort[0]: unknown field",
    ),
    (
        {"query": [TITLE], "sort": [{"field": "assetId", "order": "UP"}]},
        "sort[0].order must be ASC or DESC",
    ),
    (
        {"query": [TITLE], "orderBy": "repositoryMetadata.repo:name sideways"},
        "order must be asc or desc",
    ),
    ({"query": [TITLE], "sort": [], "orderBy": "assetId"}, "not both"),
    ({"query": [TITLE], "cursor": ""}, "cursor must be a non-empty string"),
    ({"query": [TITLE], "facets": [{"field": "dc:format"}] * 3}, "at most 2 facet"),
    ({"query": [TITLE], "facets": [{"field": "dc:creator"}]}, "dc:format or dam:assetStatus"),
    ({"query": [TITLE], "facets": [{"field": ["dc:format"]}]}, "assetStatus, not ['dc:format']"),
    (
        {"query": [TITLE], "facets": [{"field": "dc:format", "type": "STAT"}]},
        "type must be CATEGORY",
    ),
    ({"query": [TITLE], "facets": [{"field": "dc:format", "size": 0}]}, "size must be an integer"),
    ({"query": [TITLE], "projectedFields": {"only": []}}, "projectedFields must be"),
    ({"query": [TITLE], "sortBy": "x"}, "unknown request field(s) sortBy"),
    ([], "must be a JSON object"),
]


@pytest.mark.parametrize(("body", "fault"), BAD, ids=[f for _, f in BAD])
def test_malformed_requests_name_their_fault(body: Any, fault: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_request(body)
    assert fault in str(caught.value)


def test_deep_nesting_is_refused() -> None:
    node: dict[str, Any] = TITLE
    for _ in range(10):
        node = {"and": [node]}
    with pytest.raises(InvalidInput, match="nest at most"):
        parse_request({"query": [node]})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
keys = st.sampled_from(
    [
        "and",
        "or",
        "not",
        "match",
        "term",
        "range",
        "exists",
        "text",
        "fields",
        "field",
        "gt",
        "lte",
        "assetMetadata.x",
        "repositoryMetadata.repo:size",
        "query",
        "sort",
        "limit",
    ]
)
near_requests = st.recursive(
    json_values,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=2),
    max_leaves=15,
)


@settings(max_examples=400, deadline=None)
@given(body=st.fixed_dictionaries({"query": near_requests}) | near_requests)
def test_any_json_is_parsed_or_refused_with_a_400(body: Any) -> None:
    try:
        parse_request(body)
    except InvalidInput as exc:
        assert str(exc)
