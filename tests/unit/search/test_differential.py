"""The search index against a plain Python filter over the same assets: random queries
(hypothesis) must give the same ids, in the same order when sorted, with the same total
and facet counts, on every database backend."""

from __future__ import annotations

import functools
import json
import operator
import random
from collections import Counter
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from assetvault.adapters.database.tables import nodes
from assetvault.search.query import parse_request, words
from assetvault.services import Services
from assetvault.tree.models import Node
from tests.factories import make_assets

VOCABULARY = ["amber", "birch", "cobalt", "delta", "ember", "fjord", "gale", "harbor", "iris"]
FORMATS = ["image/jpeg", "image/png", "application/pdf"]
STATUSES = ["approved", "rejected"]
STRING_POOL = [*VOCABULARY, "Amber", "amber birch", "", "zz"]
NUMBER_POOL = [0, 1, 2, 2.5, 3, 10, -1]


def _metadata(rng: random.Random) -> dict[str, Any]:
    meta: dict[str, Any] = {"dc:title": " ".join(rng.sample(VOCABULARY, rng.randint(1, 3)))}
    if rng.random() < 0.6:
        meta["dc:description"] = " ".join(rng.choices(VOCABULARY, k=rng.randint(1, 5)))
    roll = rng.random()
    if roll < 0.4:
        meta["dc:subject"] = rng.sample(VOCABULARY, rng.randint(0, 3))
    elif roll < 0.6:
        meta["dc:subject"] = rng.choice(VOCABULARY)
    if rng.random() < 0.7:
        meta["dam:assetStatus"] = rng.choice(STATUSES)
    roll = rng.random()
    if roll < 0.5:
        meta["rating"] = rng.choice(NUMBER_POOL)
    elif roll < 0.65:
        meta["rating"] = rng.choice(["1", "10", "b", "Amber"])
    elif roll < 0.7:
        meta["rating"] = rng.choice([True, False])
    if rng.random() < 0.3:
        meta["scores"] = rng.sample(NUMBER_POOL, rng.randint(1, 3))
    return meta


async def build_corpus(services: Services) -> list[Node]:
    """~40 assets in two folders; some carry extracted metadata that users' values
    override or remove (a null in the users' layer)."""
    rng = random.Random(7)
    await services.tree.create_folder("/content/dam", "sub", user="writer")
    created: list[Node] = []
    for i in range(40):
        word = rng.choice(VOCABULARY)
        folder = "/content/dam/sub" if i % 3 == 0 else "/content/dam"
        created += await make_assets(
            services,
            [(f"{word}-{i:02}.{['jpg', 'png', 'pdf'][i % 3]}", _metadata(rng))],
            mime=FORMATS[i % 3] if i % 5 else FORMATS[0],
            folder=folder,
        )
    async with services.db.write() as conn:
        for node in created[::4]:
            extracted = {"dc:title": "extracted " + rng.choice(VOCABULARY), "rating": 7}
            properties = dict(node.properties)
            if rng.random() < 0.5:
                properties["rating"] = None  # the user removed the extracted value
            if rng.random() < 0.5:
                properties.pop("dc:title", None)  # the extracted title shows
            await conn.execute(
                update(nodes)
                .where(nodes.c.id == node.id)
                .values(extracted=extracted, properties=properties)
            )
    fresh = [await services.tree.find_by_id(n.id) for n in created]
    return [n for n in fresh if n is not None]


# -- the reference: plain Python over the nodes ---------------------------------------


def _elements(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


REPOSITORY = {
    "repositoryMetadata.repo:name": lambda n: n.name,
    "repositoryMetadata.dc:format": lambda n: n.mime_type,
    "repositoryMetadata.repo:size": lambda n: n.size,
    "repositoryMetadata.repo:path": lambda n: n.path,
}
COLUMNS = {
    "name": lambda n: n.name,
    "title": lambda n: _text(n.asset_metadata.get("dc:title")),
    "description": lambda n: _text(n.asset_metadata.get("dc:description")),
    "subject": lambda n: _text(n.asset_metadata.get("dc:subject")),
    "body": lambda n: "",
}
MATCH_FIELDS = {
    "repositoryMetadata.repo:name": "name",
    "assetMetadata.dc:title": "title",
    "assetMetadata.dc:description": "description",
    "assetMetadata.dc:subject": "subject",
}


def field_value(node: Node, name: str) -> Any:
    if name in REPOSITORY:
        return REPOSITORY[name](node)
    return node.asset_metadata.get(name.split(".", 1)[1])


def _term_hit(e: Any, values: list[Any]) -> bool:
    if isinstance(e, bool):
        return any(isinstance(v, bool) and v == e for v in values)
    if _is_number(e):
        return any(_is_number(v) and v == e for v in values)
    return isinstance(e, str) and any(isinstance(v, str) and v == e for v in values)


COMPARE = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


def _in_range(e: Any, bounds: dict[str, Any]) -> bool:
    numeric = _is_number(next(iter(bounds.values())))
    if (numeric and not _is_number(e)) or (not numeric and not isinstance(e, str)):
        return False
    return all(COMPARE[op](e, v) for op, v in bounds.items())


def matches(node: Node, query: dict[str, Any]) -> bool:
    ((kind, arg),) = query.items()
    if kind == "and":
        return all(matches(node, q) for q in arg)
    if kind == "or":
        return any(matches(node, q) for q in arg)
    if kind == "not":
        return not any(matches(node, q) for q in arg)
    if kind == "match":
        if arg["text"].strip() in ("", "*"):
            return True
        columns = [MATCH_FIELDS[f] for f in arg.get("fields", [])] or list(COLUMNS)
        have = set(words(" ".join(COLUMNS[c](node) for c in columns)))
        wanted = words(arg["text"])
        if arg.get("operator") == "startsWith":
            return bool(wanted) and all(any(h.startswith(w) for h in have) for w in wanted)
        return bool(wanted) and all(w in have for w in wanted)
    if kind == "exists":
        return any(e is not None for e in _elements(field_value(node, arg["field"])))
    ((name, spec),) = arg.items()
    elements = _elements(field_value(node, name))
    if kind == "term":
        return any(_term_hit(e, spec) for e in elements)
    return any(_in_range(e, spec) for e in elements)


def _sort_value(node: Node, name: str) -> tuple[int, Any]:
    value = field_value(node, name)
    if value is None:
        return (1, None)
    if isinstance(value, bool):
        return (0, (0, int(value)))
    if _is_number(value):
        return (0, (0, value))
    return (0, (1, value))


def reference_order(hits: list[Node], sort: list[dict[str, str]]) -> list[str]:
    def compare(a: Node, b: Node) -> int:
        for key in sort:
            (fa, va), (fb, vb) = _sort_value(a, key["field"]), _sort_value(b, key["field"])
            if fa != fb:
                return fa - fb  # missing values last, in either direction
            if va != vb:
                sign = -1 if key.get("order") == "DESC" else 1
                return sign * (-1 if va < vb else 1)
        return -1 if a.id < b.id else (a.id > b.id)

    return [n.id for n in sorted(hits, key=functools.cmp_to_key(compare))]


# -- random queries -------------------------------------------------------------------

METADATA_FIELDS = ["assetMetadata.dc:title", "assetMetadata.rating", "assetMetadata.scores"]
scalars = st.one_of(st.sampled_from(STRING_POOL), st.sampled_from(NUMBER_POOL), st.booleans())
terms = st.one_of(
    st.builds(
        lambda f, v: {"term": {f: v}},
        st.sampled_from(
            [
                *METADATA_FIELDS,
                "assetMetadata.dc:subject",
                "assetMetadata.dam:assetStatus",
                "repositoryMetadata.repo:size",
            ]
        ),
        st.lists(st.one_of(scalars, st.sampled_from(STATUSES)), min_size=1, max_size=3),
    ),
    st.builds(
        lambda v: {"term": {"repositoryMetadata.dc:format": v}},
        st.lists(st.sampled_from(FORMATS), min_size=1, max_size=2),
    ),
)
number_bounds = st.dictionaries(
    st.sampled_from(["gt", "gte", "lt", "lte"]), st.sampled_from(NUMBER_POOL), min_size=1
)
string_bounds = st.dictionaries(
    st.sampled_from(["gt", "gte", "lt", "lte"]), st.sampled_from(STRING_POOL), min_size=1
)
ranges = st.one_of(
    st.builds(
        lambda f, b: {"range": {f: b}},
        st.sampled_from([*METADATA_FIELDS, "repositoryMetadata.repo:size"]),
        number_bounds,
    ),
    st.builds(
        lambda f, b: {"range": {f: b}},
        st.sampled_from(
            ["assetMetadata.dc:title", "assetMetadata.rating", "repositoryMetadata.repo:name"]
        ),
        string_bounds,
    ),
)
exists = st.builds(
    lambda f: {"exists": {"field": f}},
    st.sampled_from([*METADATA_FIELDS, "assetMetadata.dam:assetStatus", "assetMetadata.nope"]),
)


@st.composite
def match_queries(draw: st.DrawFn) -> dict[str, Any]:
    text = " ".join(
        draw(st.lists(st.sampled_from([*VOCABULARY, "Ember", "zzz", "har"]), max_size=2))
    )
    arg: dict[str, Any] = {"text": draw(st.sampled_from([text, text, "*"]))}
    if draw(st.booleans()):
        arg["fields"] = draw(
            st.lists(st.sampled_from(sorted(MATCH_FIELDS)), min_size=1, max_size=2, unique=True)
        )
    if draw(st.booleans()):
        arg["operator"] = "startsWith"
    return {"match": arg}


leaves = st.one_of(terms, ranges, exists, match_queries())
query_nodes = st.recursive(
    leaves,
    lambda children: st.builds(
        lambda kind, items: {kind: items},
        st.sampled_from(["and", "or", "not"]),
        st.lists(children, min_size=1, max_size=3),
    ),
    max_leaves=6,
)
SORT_FIELDS = [
    "repositoryMetadata.repo:name",
    "repositoryMetadata.dc:format",
    "repositoryMetadata.repo:size",
    "assetMetadata.rating",
    "assetMetadata.dc:title",
    "assetMetadata.dam:assetStatus",
]
sorts = st.lists(
    st.builds(
        lambda f, o: {"field": f, "order": o},
        st.sampled_from(SORT_FIELDS),
        st.sampled_from(["ASC", "DESC"]),
    ),
    max_size=2,
)
requests = st.fixed_dictionaries(
    {
        "query": st.lists(query_nodes, min_size=1, max_size=3),
        "sort": sorts,
        "limit": st.sampled_from([1, 4, 50]),
    }
)


async def run_all_pages(services: Services, body: dict[str, Any]) -> tuple[list[str], Any]:
    facets = [{"id": "f", "field": "dc:format"}, {"id": "s", "field": "dam:assetStatus"}]
    ids: list[str] = []
    first = None
    cursor = None
    for _ in range(100):
        request = {**body, "facets": facets, **({"cursor": cursor} if cursor else {})}
        page = await services.search.search(parse_request(request))
        first = first or page
        ids += [h["assetId"].rsplit(":", 1)[1] for h in page["hits"]["results"]]
        cursor = page.get("cursor")
        if cursor is None:
            return ids, first
    raise AssertionError("paging did not end")


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=requests)
async def test_index_agrees_with_a_python_filter(services: Services, body: dict[str, Any]) -> None:
    corpus = getattr(services, "_corpus", None)
    if corpus is None:
        corpus = await build_corpus(services)
        services._corpus = corpus  # type: ignore[attr-defined]
    hits = [n for n in corpus if all(matches(n, q) for q in body["query"])]
    ids, first = await run_all_pages(services, body)
    if body["sort"]:
        assert ids == reference_order(hits, body["sort"]), body
    else:
        assert sorted(ids) == sorted(n.id for n in hits) and len(ids) == len(set(ids)), body
    assert first["search_metadata"]["totalCount"] == {"total": len(hits), "relation": "eq"}
    formats = Counter(n.mime_type for n in hits)
    statuses = Counter(
        s for n in hits if isinstance(s := n.asset_metadata.get("dam:assetStatus"), str)
    )
    got = {f["id"]: {v["value"]: v["count"] for v in f["values"]} for f in first["facets"]}
    assert got == {"f": dict(formats), "s": dict(statuses)}


async def test_date_ranges_compare_instants(services: Services) -> None:
    corpus = await make_assets(services, [(f"d{i}.jpg", {}) for i in range(3)])
    first, last = corpus[0].created_at, corpus[-1].created_at
    assert first < last
    for spec, expected in (
        ({"gte": first.isoformat()}, 3),
        ({"gt": last.isoformat()}, 0),
        ({"gt": (last - timedelta(microseconds=1)).isoformat().replace("+00:00", "Z")}, 1),
        ({"lt": first.isoformat()}, 0),
        ({"lte": first.isoformat(), "gt": "2020-01-01"}, 1),
        ({"gte": (first + timedelta(hours=1)).isoformat()}, 0),
    ):
        body = {"query": [{"range": {"repositoryMetadata.repo:createDate": spec}}]}
        result = await services.search.search(parse_request(body))
        assert result["search_metadata"]["totalCount"]["total"] == expected, spec
