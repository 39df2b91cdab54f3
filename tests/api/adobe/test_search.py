"""POST /adobe/assets/search: request forms, response shape, cursors, facets,
projections, the PDF path, and a problem for every malformed request."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from assetvault.adapters.database.tables import search_snapshots
from assetvault.services import Services
from tests import media
from tests.api.adobe.conftest import adobe
from tests.api.adobe.test_assets import is_problem
from tests.conftest import Tokens
from tests.factories import make_assets, process_all, snapshot, upload

SEARCH = "/adobe/assets/search?allowUnsafeSearch=true"
ALL = [{"match": {"text": "*"}}]


async def search(client: httpx.AsyncClient, token: str, **body: Any) -> httpx.Response:
    return await client.post(SEARCH, json={"query": ALL, **body}, headers=adobe(token))


def names(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [h["repositoryMetadata"]["repo:name"] for h in r.json()["hits"]["results"]]


async def all_pages(
    client: httpx.AsyncClient,
    token: str,
    between: Any = None,
    pages: list[list[str]] | None = None,
    **body: Any,
) -> list[str]:
    """Every page's names, following cursors; ``between(page)`` runs after each page."""
    seen: list[str] = []
    cursor = None
    page = 0
    while True:
        r = await search(client, token, **body, **({"cursor": cursor} if cursor else {}))
        seen += names(r)
        if pages is not None:
            pages.append(names(r))
        cursor = r.json().get("cursor")
        page += 1
        if between is not None:
            await between(page)
        if cursor is None:
            return seen


@pytest.fixture
async def fruit(services: Services) -> list[Any]:
    jpegs = await make_assets(
        services,
        [
            ("apple.jpg", {"dc:title": "Red apple", "dam:assetStatus": "approved", "rank": 3}),
            ("pear.jpg", {"dc:title": "Green pear", "dam:assetStatus": "approved", "rank": 1}),
        ],
    )
    (png,) = await make_assets(
        services,
        [("plum.png", {"dc:title": "Purple plum", "dc:subject": ["fruit", "stone"]})],
        mime="image/png",
    )
    (fig,) = await make_assets(
        services, [("fig.jpg", {"dc:title": "Fig", "dam:assetStatus": "rejected", "rank": 2})]
    )
    return [*jpegs, png, fig]


async def test_the_flag_is_required(client: httpx.AsyncClient, tokens: Tokens, fruit: Any) -> None:
    body = {"query": ALL}
    for query in ("", "?allowUnsafeSearch=false", "?allowUnindexedSearch=false"):
        r = await client.post(f"/adobe/assets/search{query}", json=body, headers=adobe(tokens.read))
        assert is_problem(r, 400) and "allowUnsafeSearch=true" in r.json()["detail"]
    r = await client.post(
        "/adobe/assets/search?allowUnsafeSearch=maybe", json=body, headers=adobe(tokens.read)
    )
    assert is_problem(r, 400)
    for query in ("?allowUnsafeSearch=true", "?allowUnindexedSearch=true"):
        r = await client.post(f"/adobe/assets/search{query}", json=body, headers=adobe(tokens.read))
        assert r.status_code == 200 and len(r.json()["hits"]["results"]) == 4


async def test_needs_credentials(client: httpx.AsyncClient, tokens: Tokens) -> None:
    r = await client.post(SEARCH, json={"query": ALL}, headers={"X-Api-Key": "k"})
    assert is_problem(r, 401)


async def test_response_shape(client: httpx.AsyncClient, tokens: Tokens, fruit: Any) -> None:
    r = await search(client, tokens.read, query=[{"match": {"text": "apple"}}])
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"hits", "search_metadata"}  # no cursor on the last page
    assert body["search_metadata"] == {"totalCount": {"total": 1, "relation": "eq"}}
    (hit,) = body["hits"]["results"]
    assert hit["assetId"] == fruit[0].urn
    assert hit["assetMetadata"]["dc:title"] == "Red apple"
    repository = hit["repositoryMetadata"]
    assert repository["repo:path"] == "/content/dam/apple.jpg"
    assert repository["dc:format"] == "image/jpeg" and repository["repo:size"] == 9
    assert repository["repo:ancestors"][-1].startswith("urn:aaid:aem:")


async def test_sort_and_order_by(client: httpx.AsyncClient, tokens: Tokens, fruit: Any) -> None:
    by_title = [{"field": "assetMetadata.dc:title", "order": "DESC"}]
    assert names(await search(client, tokens.read, sort=by_title)) == [
        "apple.jpg",
        "plum.png",
        "pear.jpg",
        "fig.jpg",
    ]
    # Missing values sort last in both directions; numbers sort as numbers.
    for order, expected in (("asc", ["pear", "fig", "apple"]), ("desc", ["apple", "fig", "pear"])):
        r = await search(client, tokens.read, orderBy=f"assetMetadata.rank {order}")
        assert [n.split(".")[0] for n in names(r)] == [*expected, "plum"]
    multi = [{"field": "repositoryMetadata.dc:format"}, {"field": "repositoryMetadata.repo:name"}]
    assert names(await search(client, tokens.read, sort=multi)) == [
        "apple.jpg",
        "fig.jpg",
        "pear.jpg",
        "plum.png",
    ]


async def test_sort_ties_page_without_duplicates_or_gaps(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    created = await make_assets(
        services, [(f"a{i:02}.jpg", {"dc:title": "same", "group": i % 3}) for i in range(25)]
    )
    sort = [{"field": "assetMetadata.group"}, {"field": "assetMetadata.dc:title"}]
    seen = await all_pages(client, tokens.read, sort=sort, limit=4)
    assert sorted(seen) == sorted(n.name for n in created) and len(seen) == 25
    # Ties on every sort key fall back to the asset id.
    expected = [
        n.name
        for g in range(3)
        for n in sorted((n for n in created if n.properties["group"] == g), key=lambda n: n.id)
    ]
    assert seen == expected


async def test_facets_count_the_whole_result(
    client: httpx.AsyncClient, tokens: Tokens, fruit: Any
) -> None:
    facets = [
        {"id": "formats", "type": "CATEGORY", "field": "dc:format"},
        {"id": "status", "field": "assetMetadata.dam:assetStatus", "size": 1},
    ]
    r = await search(client, tokens.read, limit=1, facets=facets)
    body = r.json()
    assert len(body["hits"]["results"]) == 1 and "cursor" in body
    assert body["facets"] == [
        {
            "id": "formats",
            "type": "CATEGORY",
            "values": [{"value": "image/jpeg", "count": 3}, {"value": "image/png", "count": 1}],
        },
        {"id": "status", "type": "CATEGORY", "values": [{"value": "approved", "count": 2}]},
    ]
    only = [{"id": "s", "field": "dam:assetStatus", "includes": {"values": ["rejected"]}}]
    r = await search(client, tokens.read, facets=only)
    assert r.json()["facets"][0]["values"] == [{"value": "rejected", "count": 1}]
    scoped = [{"id": "s", "field": "dc:format", "scope": {"match": {"text": "plum"}}}]
    r = await search(client, tokens.read, facets=scoped)
    assert r.json()["facets"][0]["values"] == [{"value": "image/png", "count": 1}]


async def test_projections(client: httpx.AsyncClient, tokens: Tokens, fruit: Any) -> None:
    query = [{"term": {"repositoryMetadata.repo:name": ["apple.jpg"]}}]
    r = await search(
        client,
        tokens.read,
        query=query,
        projectedFields={"includes": ["assetMetadata.dc:title", "repositoryMetadata"]},
    )
    (hit,) = r.json()["hits"]["results"]
    assert set(hit) == {"assetId", "assetMetadata", "repositoryMetadata"}
    assert hit["assetMetadata"] == {"dc:title": "Red apple"}
    assert hit["repositoryMetadata"]["repo:name"] == "apple.jpg"
    r = await search(
        client,
        tokens.read,
        query=query,
        projectedFields={"excludes": ["repositoryMetadata", "assetMetadata.rank", "assetId"]},
    )
    (hit,) = r.json()["hits"]["results"]
    assert hit == {
        "assetId": fruit[0].urn,
        "assetMetadata": {"dc:title": "Red apple", "dam:assetStatus": "approved"},
    }
    both = {"includes": ["assetMetadata.rank"], "excludes": ["assetMetadata"]}
    (hit,) = (await search(client, tokens.read, query=query, projectedFields=both)).json()["hits"][
        "results"
    ]
    assert hit == {"assetId": fruit[0].urn, "assetMetadata": {"rank": 3}}


@pytest.mark.parametrize("relevance", [False, True], ids=["sorted", "relevance"])
async def test_cursor_is_stable_while_assets_come_and_go(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, relevance: bool
) -> None:
    """Assets added or deleted between pages: no asset is seen twice, and every asset that
    stayed unchanged is seen."""
    items = [(f"n{i:03}.jpg", {"dc:title": f"common {'word ' * (i % 4)}t{i}"}) for i in range(40)]
    created = await make_assets(services, items)
    deleted_after: dict[str, int] = {}  # name -> the page after which it was deleted
    pages: list[list[str]] = []
    added = 0

    async def churn(page: int) -> None:
        nonlocal added
        # New assets that sort anywhere (before, among and after the ones seen)...
        fresh = [(f"{p}{page:03}.jpg", {"dc:title": "common word"}) for p in ("a", "m", "z")]
        await make_assets(services, fresh)
        added += len(fresh)
        # ...and deletions of one asset already seen and one not yet seen.
        for node in (created[page], created[-page]):
            if node.name not in deleted_after:
                await services.changes.delete(node.path, user="t")
                deleted_after[node.name] = page

    body: dict[str, Any] = {"query": [{"match": {"text": "common"}}], "limit": 7}
    if not relevance:
        body["sort"] = [{"field": "repositoryMetadata.repo:name", "order": "DESC"}]
    seen = await all_pages(client, tokens.read, between=churn, pages=pages, **body)
    assert len(seen) == len(set(seen)), "an asset came twice"
    unchanged = {n.name for n in created} - set(deleted_after)
    assert unchanged <= set(seen), f"skipped: {sorted(unchanged - set(seen))}"
    for number, page in enumerate(pages, start=1):
        assert not [n for n in page if deleted_after.get(n, number) < number], "a deleted hit"
    assert added > 0 and len(pages) > 3


async def test_relevance_ranks_better_matches_first(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    await make_assets(
        services,
        [
            ("weak.jpg", {"dc:description": "a long text that mentions harbour once among many"}),
            ("strong.jpg", {"dc:title": "Harbour", "dc:subject": ["harbour"]}),
            ("none.jpg", {"dc:title": "Mountain"}),
        ],
    )
    r = await search(client, tokens.read, query=[{"match": {"text": "harbour"}}])
    assert names(r) == ["strong.jpg", "weak.jpg"]


async def test_search_sees_every_change_at_once(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, fruit: Any
) -> None:
    """The index is the tree: a 2xx change is in the next search."""

    async def titled(word: str) -> list[str]:
        return names(await search(client, tokens.read, query=[{"match": {"text": word}}]))

    apple = fruit[0]
    r = await client.patch(
        f"/adobe/assets/{apple.urn}/metadata",
        json=[{"op": "replace", "path": "/dc:title", "value": "Golden delicious"}],
        headers={
            **adobe(tokens.write),
            "Content-Type": "application/json-patch+json",
            "If-Match": "*",
        },
    )
    assert r.status_code == 200, r.text
    assert await titled("golden") == ["apple.jpg"] and await titled("red") == []
    # Upload through the direct binary protocol.
    r = await upload(client, tokens.write, "/content/dam", "kiwi.jpg", b"kiwi")
    assert r.status_code == 200, r.text
    assert await titled("kiwi") == ["kiwi.jpg"]
    # Move (rename) through the classic API.
    r = await client.request(
        "MOVE",
        "/api/assets/kiwi.jpg",
        headers={
            "Authorization": f"Bearer {tokens.write}",
            "X-Destination": "/api/assets/gooseberry.jpg",
        },
    )
    assert r.status_code == 201, r.text
    assert await titled("kiwi") == [] and await titled("gooseberry") == ["gooseberry.jpg"]
    # Delete through the Author API.
    r = await client.delete(f"/adobe/assets/{fruit[1].urn}", headers=adobe(tokens.write))
    assert r.status_code == 204, r.text
    assert await titled("pear") == []


async def test_ancestors_follow_a_folder_move(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    folder = await services.tree.create_folder("/content/dam", "orchard", user="writer")
    await services.tree.create_folder("/content/dam/orchard", "north", user="writer")
    await make_assets(services, [("tree.jpg", {})], folder="/content/dam/orchard/north")
    await make_assets(services, [("outside.jpg", {})])
    query = [{"term": {"repositoryMetadata.repo:ancestors": [folder.urn]}}]
    assert names(await search(client, tokens.read, query=query)) == ["tree.jpg"]
    await services.changes.move(
        "/content/dam/orchard",
        "/content/dam/grove",
        overwrite=False,
        user="writer",
        depth="infinity",
    )
    r = await search(client, tokens.read, query=query)
    assert names(r) == ["tree.jpg"]
    assert r.json()["hits"]["results"][0]["repositoryMetadata"]["repo:path"] == (
        "/content/dam/grove/north/tree.jpg"
    )
    by_path = [
        {
            "range": {
                "repositoryMetadata.repo:path": {
                    "gt": "/content/dam/grove/",
                    "lt": "/content/dam/grove0",
                }
            }
        }
    ]
    assert names(await search(client, tokens.read, query=by_path)) == ["tree.jpg"]


async def test_values_never_reach_sql_as_text(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, fruit: Any
) -> None:
    before = await snapshot(services)
    hostile = "x') OR 1=1; DROP TABLE nodes; --"
    for query in (
        [{"term": {"assetMetadata.dc:title": [hostile]}}],
        [{"term": {"assetMetadata.x' OR '1'='1": ["a"]}}],
        [{"match": {"text": hostile + ' "} OR * NEAR(a b)'}}],
        [{"range": {"assetMetadata.dc:title": {"gt": hostile}}}],
        [{"term": {"repositoryMetadata.repo:ancestors": ["urn:aaid:aem:' OR 1=1 --"]}}],
    ):
        r = await search(client, tokens.read, query=query)
        assert r.status_code in (200, 400), r.text
        if r.status_code == 200:
            assert r.json()["hits"]["results"] == []
    # Compared as a value: every title sorts before "x') OR ...", none after it.
    below = [{"range": {"assetMetadata.dc:title": {"lt": hostile}}}]
    found = names(await search(client, tokens.read, query=below, limit=50))
    assert sorted(found) == ["apple.jpg", "fig.jpg", "pear.jpg", "plum.png"]
    assert await snapshot(services) == before


async def test_pdf_text_is_the_query(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, tmp_path: Path
) -> None:
    manual = media.pdf_with_pages(tmp_path / "manual.pdf", ["Turbine maintenance schedule"])
    await make_assets(services, [("poster.jpg", {"dc:title": "Harbour at dusk"})])
    stored = await make_assets(
        services, [("manual.pdf", {})], mime="application/pdf"
    )  # its text comes from processing
    from tests.factories import make_asset

    pdf_asset = await make_asset(services, "turbines.pdf", manual.read_bytes(), "application/pdf")
    await process_all(services)
    query_pdf = media.pdf_with_pages(tmp_path / "q.pdf", ["turbine maintenance checklist"])
    files = {"file": ("q.pdf", query_pdf.read_bytes(), "application/pdf")}
    r = await client.post(SEARCH, files=files, headers=adobe(tokens.read))
    assert r.status_code == 200, r.text
    assert [h["assetId"] for h in r.json()["hits"]["results"]] == [pdf_asset.urn]
    # The rest of the request rides along as JSON in a "request" part.
    rest = {"query": [{"term": {"repositoryMetadata.dc:format": ["image/jpeg"]}}]}
    r = await client.post(
        SEARCH, files=files, data={"request": json.dumps(rest)}, headers=adobe(tokens.read)
    )
    assert r.status_code == 200 and r.json()["hits"]["results"] == []
    assert stored  # an asset without text is never a hit


async def test_pdf_limits(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, tmp_path: Path
) -> None:
    png = media.png16_with_alpha(tmp_path / "a.png").read_bytes()
    r = await client.post(
        SEARCH, files={"file": ("a.png", png, "image/png")}, headers=adobe(tokens.read)
    )
    assert is_problem(r, 415)
    services.settings.search_pdf_max_bytes = 1000
    big = b"%PDF-1.4\n" + b"0" * 5000
    r = await client.post(
        SEARCH, files={"file": ("a.pdf", big, "application/pdf")}, headers=adobe(tokens.read)
    )
    assert is_problem(r, 413)
    r = await client.post(
        SEARCH,
        content=b'--x\r\nContent-Disposition: form-data; name="file"\r\n\r\nbroken',
        headers={**adobe(tokens.read), "Content-Type": "multipart/form-data; boundary=x"},
    )
    assert r.status_code in (400, 415) and r.headers["content-type"] == "application/problem+json"
    r = await client.post(
        SEARCH, content=b"query", headers={**adobe(tokens.read), "Content-Type": "text/plain"}
    )
    assert is_problem(r, 415)


def _cursor(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")


async def test_every_malformed_request_is_a_400_problem(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, fruit: Any
) -> None:
    first = await search(client, tokens.read, limit=1, sort=[{"field": "assetId"}])
    cursor = first.json()["cursor"]
    relevance = await search(
        client, tokens.read, limit=1, query=[{"match": {"text": "fig OR pear"}}]
    )
    cases: list[tuple[dict[str, Any], str]] = [
        ({"query": [{"nearby": {"x": 1}}]}, "unknown query kind"),
        ({"query": ALL * 6}, "not 6"),
        ({"query": ALL, "limit": 0}, "limit"),
        ({"query": ALL, "limit": 51}, "limit"),
        ({"query": [{"range": {"repositoryMetadata.repo:size": {"gt": "ten"}}}]}, "not a number"),
        ({"query": ALL, "sort": [{"field": "repositoryMetadata.nope"}]}, "unknown field"),
        ({"query": ALL, "cursor": "not-a-cursor"}, "cursor is not valid"),
        ({"query": ALL, "cursor": _cursor({"f": "x", "k": [{"zz": 1}]})}, "cursor is not valid"),
        ({"query": ALL, "cursor": cursor}, "different query"),  # sort differs
        (
            {"query": ALL, "sort": [{"field": "assetId"}], "cursor": _cursor({"f": "0", "k": []})},
            "different query",
        ),
        (
            {"query": [{"match": {"text": "x"}}], "cursor": _cursor({"f": "x", "s": "y", "o": -1})},
            "cursor is not valid",
        ),
        (
            {"query": [{"term": {"repositoryMetadata.repo:createDate": ["soon"]}}]},
            "not an ISO 8601 date",
        ),
        ({"query": [{"term": {'assetMetadata.a"b': ["x"]}}]}, "double quote"),
    ]
    if "cursor" in relevance.json():
        fingerprint = json.loads(base64.urlsafe_b64decode(relevance.json()["cursor"] + "=="))["f"]
        cases.append(
            (
                {
                    "query": [{"match": {"text": "fig OR pear"}}],
                    "limit": 1,
                    "cursor": _cursor({"f": fingerprint, "s": "gone", "o": 1}),
                },
                "expired",
            )
        )
    before = await snapshot(services)
    for body, fault in cases:
        r = await client.post(SEARCH, json=body, headers=adobe(tokens.read))
        assert is_problem(r, 400), (body, r.text)
        assert fault in r.json()["detail"], (body, r.json()["detail"])
    r = await client.post(SEARCH, content=b"{not json", headers=adobe(tokens.read))
    assert is_problem(r, 400)
    assert await snapshot(services) == before


async def test_relevance_cursors_expire(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    await make_assets(services, [(f"s{i}.jpg", {"dc:title": "shared"}) for i in range(3)])
    body = {"query": [{"match": {"text": "shared"}}], "limit": 1}
    first = await search(client, tokens.read, **body)
    cursor = first.json()["cursor"]
    assert names(await search(client, tokens.read, **body, cursor=cursor))
    assert await services.search.forget_expired() == 0
    async with services.db.write() as conn:
        await conn.execute(
            update(search_snapshots).values(expires_at=datetime(2000, 1, 1, tzinfo=UTC))
        )
    assert await services.search.forget_expired() == 1
    r = await search(client, tokens.read, **body, cursor=cursor)
    assert is_problem(r, 400) and "expired" in r.json()["detail"]


@pytest.mark.parametrize("text", ["!!!", "_", "\u0301", " -- ", "\u200b"])
async def test_text_without_words_matches_nothing(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, text: str
) -> None:
    await make_assets(services, [("a.jpg", {"dc:title": "!!! _"})])
    for operator in ("matches", "startsWith"):
        query = [{"match": {"text": text, "operator": operator}}]
        r = await search(client, tokens.read, query=query)
        assert r.status_code == 200, r.text
        assert names(r) == []
        r = await search(client, tokens.read, query=[{"match": {"text": "a"}}, *query])
        assert r.status_code == 200 and names(r) == []


async def test_starts_with_matches_words_from_their_start(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    """The prefix form the web UI sends while a person types ("sprin" finds "spring"),
    on each backend; without it, a match wants whole words, as the seed says."""
    await make_assets(
        services,
        [
            ("hero.jpg", {"dc:title": "Spring launch hero shot"}),
            ("notes.jpg", {"dc:description": "Springfield meeting"}),
            ("leaves.jpg", {"dc:title": "Autumn leaves"}),
        ],
    )

    def match(text: str, **more: Any) -> list[dict[str, Any]]:
        return [{"match": {"text": text, **more}}]

    prefix = {"operator": "startsWith"}
    r = await search(client, tokens.read, query=match("sprin", **prefix))
    assert sorted(names(r)) == ["hero.jpg", "notes.jpg"]
    assert names(await search(client, tokens.read, query=match("sprin"))) == []
    r = await search(client, tokens.read, query=match("SPRIN", operator="matches"))
    assert names(r) == []
    r = await search(client, tokens.read, query=match("spring laun", **prefix))
    assert names(r) == ["hero.jpg"]
    title = {"fields": ["assetMetadata.dc:title"], **prefix}
    assert names(await search(client, tokens.read, query=match("sprin", **title))) == ["hero.jpg"]
    # Beside a format family as the web UI asks for it ("image/" up to "image0").
    family = {"range": {"repositoryMetadata.dc:format": {"gte": "image/", "lt": "image0"}}}
    r = await search(client, tokens.read, query=[*match("au", **prefix), family])
    assert names(r) == ["leaves.jpg"]


async def test_a_reversed_range_is_a_query_that_matches_nothing(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    """As AEM's index answers it (200, no hits): the web UI refuses it in its form."""
    await make_assets(services, [("a.jpg", {})])
    field = "repositoryMetadata.repo:modifyDate"
    reversed_range = {"gte": "2030-01-02T00:00:00Z", "lte": "2030-01-01T23:59:59Z"}
    r = await search(client, tokens.read, query=[{"range": {field: reversed_range}}])
    assert r.status_code == 200 and names(r) == []
    assert r.json()["search_metadata"]["totalCount"]["total"] == 0
