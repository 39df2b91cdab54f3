"""The six relations operations."""

from __future__ import annotations

import uuid

import httpx
import pytest

from assetvault.services import Services
from assetvault.tree.models import Node
from tests.api.adobe.conftest import adobe
from tests.api.adobe.test_assets import is_problem
from tests.conftest import Tokens
from tests.factories import make_asset, snapshot


@pytest.fixture
async def assets(services: Services) -> list[Node]:
    return [
        await make_asset(services, f"a{i}.txt", f"{i}".encode(), "text/plain") for i in range(4)
    ]


async def relate(client: httpx.AsyncClient, token: str, node: Node, items: list) -> httpx.Response:
    return await client.post(
        f"/adobe/assets/{node.urn}/relations", json={"items": items}, headers=adobe(token)
    )


def item(rtype: str, node: Node) -> dict[str, str]:
    return {"relationType": rtype, "relatedAssetId": node.urn}


async def listing(client: httpx.AsyncClient, token: str, node: Node, query: str = "") -> dict:
    r = await client.get(f"/adobe/assets/{node.urn}/relations{query}", headers=adobe(token))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_create_list_filter_and_others_is_two_way(
    client: httpx.AsyncClient, tokens: Tokens, assets: list[Node]
) -> None:
    a, b, c, d = assets
    r = await relate(
        client, tokens.write, a, [item("sources", b), item("derived", c), item("others", d)]
    )
    assert r.status_code == 204
    body = await listing(client, tokens.read, a)
    assert sorted((i["relationType"], i["relatedAssetId"]) for i in body["items"]) == sorted(
        [("sources", b.urn), ("derived", c.urn), ("others", d.urn)]
    )
    assert "cursor" not in body
    assert (await listing(client, tokens.read, d))["items"] == [item("others", a)]
    assert (await listing(client, tokens.read, b))["items"] == []  # sources is one-way
    only = await listing(client, tokens.read, a, "?relationTypes=sources,others")
    assert {i["relationType"] for i in only["items"]} == {"sources", "others"}
    r = await client.get(f"/adobe/assets/{a.urn}/relations/derived", headers=adobe(tokens.read))
    assert r.json() == {"items": [item("derived", c)]}
    r = await client.get(f"/adobe/assets/{a.urn}/relationTypes", headers=adobe(tokens.read))
    assert r.json() == {"items": ["derived", "others", "sources"]}
    # Adding an existing relation again changes nothing (idempotent).
    assert (await relate(client, tokens.write, a, [item("sources", b)])).status_code == 204
    assert len((await listing(client, tokens.read, a))["items"]) == 3


async def test_pagination_with_cursor(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    hub = await make_asset(services, "hub.txt", b"hub", "text/plain")
    others = [
        await make_asset(services, f"o{i}.txt", f"o{i}".encode(), "text/plain") for i in range(7)
    ]
    assert (
        await relate(client, tokens.write, hub, [item("derived", o) for o in others])
    ).status_code == 204
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = await listing(client, tokens.read, hub, query)
        seen += [i["relatedAssetId"] for i in body["items"]]
        pages += 1
        cursor = body.get("cursor")
        if not cursor:
            break
    assert pages == 3 and sorted(seen) == sorted(o.urn for o in others) and len(set(seen)) == 7
    body = await listing(client, tokens.read, hub)
    assert len(body["items"]) == 7  # default limit 50
    r = await client.get(
        f"/adobe/assets/{hub.urn}/relationTypes?limit=1", headers=adobe(tokens.read)
    )
    assert r.json() == {"items": ["derived"]}


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("?limit=0", "limit"),
        ("?limit=51", "limit"),
        ("?cursor=%%%", "cursor"),
        ("?cursor=bm90LWpzb24", "cursor"),
        ("?relationTypes=sources,bogus", "bogus"),
        ("?relationTypes=sources,sources", "distinct"),
        ("?limit=x", "limit"),
    ],
)
async def test_bad_list_queries(
    client: httpx.AsyncClient, tokens: Tokens, assets: list[Node], query: str, fragment: str
) -> None:
    r = await client.get(
        f"/adobe/assets/{assets[0].urn}/relations{query}", headers=adobe(tokens.read)
    )
    assert is_problem(r, 400) and fragment in r.json()["detail"].lower()


@pytest.mark.parametrize(
    ("make_items", "fragment"),
    [
        (lambda a, b: [item("sources", a)], "itself"),
        (lambda a, b: [item("cousins", b)], "unknown relation type"),
        (lambda a, b: [item("sources", b), item("sources", b)], "repeats"),
        (
            lambda a, b: [
                {"relationType": "sources", "relatedAssetId": f"urn:aaid:aem:{uuid.uuid4()}"}
            ],
            "not an existing",
        ),
        (lambda a, b: [{"relationType": "sources", "relatedAssetId": "nope"}], "urn:aaid:aem"),
        (lambda a, b: [{"relationType": "sources"}], "relatedAssetId"),
        (lambda a, b: [{**item("sources", b), "extra": 1}], "unknown fields"),
        (lambda a, b: [], "non-empty"),
        (lambda a, b: [item("sources", b), item("others", a)], "itself"),
    ],
)
async def test_bad_items_refuse_the_whole_request(
    client: httpx.AsyncClient,
    tokens: Tokens,
    assets: list[Node],
    services: Services,
    make_items: object,
    fragment: str,
) -> None:
    a, b = assets[0], assets[1]
    before = await snapshot(services)
    r = await relate(client, tokens.write, a, make_items(a, b))  # type: ignore[operator]
    assert is_problem(r, 400) and fragment in r.json()["detail"], r.text
    assert await snapshot(services) == before
    assert (await listing(client, tokens.read, a))["items"] == []


async def test_bad_bodies(client: httpx.AsyncClient, tokens: Tokens, assets: list[Node]) -> None:
    url = f"/adobe/assets/{assets[0].urn}/relations"
    r = await client.post(
        url, content=b"{}", headers={**adobe(tokens.write), "Content-Type": "text/plain"}
    )
    assert is_problem(r, 415)
    r = await client.post(
        url, content=b"{oops", headers={**adobe(tokens.write), "Content-Type": "application/json"}
    )
    assert is_problem(r, 400)
    r = await client.post(url, json=[], headers=adobe(tokens.write))
    assert is_problem(r, 400)
    r = await client.post(url, json={"items": []}, headers=adobe(tokens.read))
    assert is_problem(r, 403)
    r = await client.post(
        f"/adobe/assets/urn:aaid:aem:{uuid.uuid4()}/relations",
        json={"items": [item("sources", assets[1])]},
        headers=adobe(tokens.write),
    )
    assert is_problem(r, 404)


async def test_deletes(client: httpx.AsyncClient, tokens: Tokens, assets: list[Node]) -> None:
    a, b, c, d = assets
    await relate(
        client, tokens.write, a, [item("others", b), item("others", c), item("derived", d)]
    )
    r = await client.delete(
        f"/adobe/assets/{a.urn}/relations/others/{b.urn}", headers=adobe(tokens.write)
    )
    assert r.status_code == 204
    assert (await listing(client, tokens.read, b))["items"] == []  # both directions
    r = await client.delete(
        f"/adobe/assets/{a.urn}/relations/others/{b.urn}", headers=adobe(tokens.write)
    )
    assert is_problem(r, 404)
    r = await client.delete(f"/adobe/assets/{a.urn}/relations/others", headers=adobe(tokens.write))
    assert r.status_code == 204
    assert (await listing(client, tokens.read, c))["items"] == []
    assert (await listing(client, tokens.read, a))["items"] == [item("derived", d)]
    r = await client.delete(f"/adobe/assets/{a.urn}/relations/bogus", headers=adobe(tokens.write))
    assert is_problem(r, 400)
    r = await client.delete(
        f"/adobe/assets/{a.urn}/relations/derived/not-a-urn", headers=adobe(tokens.write)
    )
    assert is_problem(r, 400)
    r = await client.delete(f"/adobe/assets/{a.urn}/relations/derived", headers=adobe(tokens.read))
    assert is_problem(r, 403)


async def test_list_etag(client: httpx.AsyncClient, tokens: Tokens, assets: list[Node]) -> None:
    a, b = assets[0], assets[1]
    url = f"/adobe/assets/{a.urn}/relations"
    first = await client.get(url, headers=adobe(tokens.read))
    same = await client.get(
        url, headers={**adobe(tokens.read), "If-None-Match": first.headers["etag"]}
    )
    assert same.status_code == 304
    await relate(client, tokens.write, a, [item("sources", b)])
    changed = await client.get(
        url, headers={**adobe(tokens.read), "If-None-Match": first.headers["etag"]}
    )
    assert changed.status_code == 200
