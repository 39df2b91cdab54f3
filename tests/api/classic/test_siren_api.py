"""The classic Assets HTTP API beyond folder creation: listings, metadata, renditions,
comments, COPY, MOVE, DELETE, On/Off time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from tests import media
from tests.conftest import Tokens
from tests.factories import bearer, make_asset, make_folder, process_all, snapshot

from assetvault.services import Services
from assetvault.tree.models import Node

BASE = "http://assetvault.test"


def status_of(r: httpx.Response) -> int:
    body = r.json()
    assert body["class"] == "core/response", body
    return int(body["properties"]["status.code"])


@pytest.fixture
async def tree(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, tmp_path: object
) -> dict[str, Node]:
    await make_folder(client, tokens.write, "lib")
    await make_folder(client, tokens.write, "lib/sub")
    data = media.jpeg_with_metadata(tmp_path / "p.jpg").read_bytes()  # type: ignore[operator]
    photo = await make_asset(services, "photo.jpg", data, "image/jpeg", folder="/content/dam/lib")
    doc = await make_asset(
        services, "doc.txt", b"hello", "text/plain", folder="/content/dam/lib/sub"
    )
    await process_all(services)
    return {"photo": photo, "doc": doc}


async def test_service_document_and_listing(
    client: httpx.AsyncClient, tokens: Tokens, tree: dict[str, Node]
) -> None:
    r = await client.get("/api.json", headers=bearer(tokens.read))
    assert r.status_code == 200
    assert {"rel": ["assets"], "href": f"{BASE}/api/assets.json"} in r.json()["links"]
    root = (await client.get("/api/assets.json", headers=bearer(tokens.read))).json()
    assert root["class"] == ["assets/folder"]
    assert [e["properties"]["name"] for e in root["entities"]] == ["lib"]
    lib = (await client.get("/api/assets/lib.json", headers=bearer(tokens.read))).json()
    assert lib["properties"]["name"] == "lib" and lib["properties"]["dc:title"] == "lib"
    assert lib["properties"]["srn:paging"] == {"total": 2, "offset": 0, "limit": 20}
    kinds = {e["properties"]["name"]: e["class"] for e in lib["entities"]}
    assert kinds == {"photo.jpg": ["assets/asset"], "sub": ["assets/folder"]}
    photo = next(e for e in lib["entities"] if e["properties"]["name"] == "photo.jpg")
    assert photo["properties"]["metadata"] == {"dc:format": "image/jpeg"}
    assert photo["links"] == [{"rel": ["self"], "href": f"{BASE}/api/assets/lib/photo.jpg.json"}]
    assert {"rel": ["parent"], "href": f"{BASE}/api/assets.json"} in lib["links"]
    page = (
        await client.get("/api/assets/lib.json?offset=1&limit=1", headers=bearer(tokens.read))
    ).json()
    assert [e["properties"]["name"] for e in page["entities"]] == ["sub"]
    assert page["properties"]["srn:paging"] == {"total": 2, "offset": 1, "limit": 1}
    shown = (
        await client.get("/api/assets/lib.json?showProperty=jcr:title", headers=bearer(tokens.read))
    ).json()
    assert shown["properties"]["jcr:title"] == "lib"
    head = await client.head("/api/assets/lib.json", headers=bearer(tokens.read))
    assert head.status_code == 200
    missing = await client.get("/api/assets/nope.json", headers=bearer(tokens.read))
    assert missing.status_code == 404 and status_of(missing) == 404
    assert (
        await client.head("/api/assets/nope.json", headers=bearer(tokens.read))
    ).status_code == 404
    bad = await client.get("/api/assets/lib.json?limit=abc", headers=bearer(tokens.read))
    assert bad.status_code == 400 and status_of(bad) == 400


async def test_asset_representation(
    client: httpx.AsyncClient, tokens: Tokens, tree: dict[str, Node]
) -> None:
    body = (await client.get("/api/assets/lib/photo.jpg.json", headers=bearer(tokens.read))).json()
    assert body["class"] == ["assets/asset"]
    props = body["properties"]
    assert props["name"] == "photo.jpg" and props["dc:title"] == "Sunset over the bay"
    assert props["metadata"]["dc:format"] == "image/jpeg"
    assert not any(k.startswith(("exif:", "tiff:")) for k in props["metadata"])
    names = {
        e["properties"]["name"] for e in body["entities"] if e["class"] == ["assets/rendition"]
    }
    assert "cq5dam.thumbnail.319.319.png" in names and len(names) == 5
    links = {link["rel"][0]: link["href"] for link in body["links"]}
    assert links["content"] == f"{BASE}/content/dam/lib/photo.jpg"
    assert links["thumbnail"].endswith(
        "/api/assets/lib/photo.jpg/renditions/cq5dam.thumbnail.319.319.png"
    )
    thumb = await client.get(links["thumbnail"].removeprefix(BASE), headers=bearer(tokens.read))
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"


async def test_metadata_put_writes_jcr_twins_and_shows_in_author_api(
    client: httpx.AsyncClient, tokens: Tokens, tree: dict[str, Node], services: Services
) -> None:
    r = await client.put(
        "/api/assets/lib/photo.jpg",
        json={
            "class": "asset",
            "properties": {"dc:title": "Renamed", "jcr:description": "D", "dc:subject": ["a", "b"]},
        },
        headers=bearer(tokens.write),
    )
    assert r.status_code == 200 and status_of(r) == 200
    node = await services.tree.get("/content/dam/lib/photo.jpg")
    assert node.properties["jcr:title"] == "Renamed"
    assert node.asset_metadata["dc:title"] == "Renamed"
    body = (await client.get("/api/assets/lib/photo.jpg.json", headers=bearer(tokens.read))).json()
    assert body["properties"]["dc:description"] == "D"
    envelope = await services.metadata.envelope(node)
    assert envelope["assetMetadata"]["dc:subject"] == ["a", "b"]


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"json": {"class": "asset", "properties": {"dc:title": {"nested": 1}}}}, 400),
        ({"json": {"class": "asset"}}, 400),
        ({"content": b"binary", "headers": {"Content-Type": "image/png"}}, 400),
        ({"json": {"class": "asset", "properties": {"name": "x"}}}, 400),
        ({"json": {"class": "asset", "properties": {"dc:ti\u0000tle": "x"}}}, 400),
        ({"json": {"class": "asset", "properties": {"k" * 257: "x"}}}, 400),
        ({"json": {"class": "asset", "properties": {"big": "a" * 300_000}}}, 400),
    ],
)
async def test_bad_metadata_puts(
    client: httpx.AsyncClient,
    tokens: Tokens,
    tree: dict[str, Node],
    services: Services,
    kwargs: dict,
    status: int,
) -> None:
    before = await snapshot(services)
    kwargs = dict(kwargs)
    headers = {**bearer(tokens.write), **kwargs.pop("headers", {})}
    r = await client.put("/api/assets/lib/photo.jpg", headers=headers, **kwargs)
    assert r.status_code == status and status_of(r) == status
    assert await snapshot(services) == before
    r = await client.put(
        "/api/assets/lib/none.jpg", json={"properties": {}}, headers=bearer(tokens.write)
    )
    assert r.status_code == 404


async def test_renditions_create_replace_delete(
    client: httpx.AsyncClient, tokens: Tokens, tree: dict[str, Node], services: Services
) -> None:
    url = "/api/assets/lib/photo.jpg/renditions"
    r = await client.post(
        f"{url}/web-rendition",
        content=b"PNGDATA",
        headers={**bearer(tokens.write), "Content-Type": "image/png"},
    )
    assert r.status_code == 201 and status_of(r) == 201
    r = await client.post(
        f"{url}/web-rendition",
        content=b"again",
        headers={**bearer(tokens.write), "Content-Type": "image/png"},
    )
    assert r.status_code == 409
    r = await client.post(
        f"{url}/*",
        files={"file": ("custom.bin", b"FILE", "application/x-a")},
        headers=bearer(tokens.write),
    )
    assert r.status_code == 201
    r = await client.post(
        f"{url}/*",
        data={"name": "named"},
        files={"file": ("x.bin", b"N", "application/x-b")},
        headers=bearer(tokens.write),
    )
    assert r.status_code == 201
    r = await client.put(
        f"{url}/web-rendition",
        content=b"NEW",
        headers={**bearer(tokens.write), "Content-Type": "image/png"},
    )
    assert r.status_code == 200
    got = await client.get(f"{url}/web-rendition", headers=bearer(tokens.read))
    assert got.content == b"NEW" and got.headers["content-type"] == "image/png"
    assert (await client.get(f"{url}/custom.bin", headers=bearer(tokens.read))).content == b"FILE"
    assert (
        await client.put(f"{url}/nope", content=b"x", headers=bearer(tokens.write))
    ).status_code == 404
    node = await services.tree.get("/content/dam/lib/photo.jpg")
    uploaded = {r.name for r in await services.tree.renditions(node) if r.origin == "uploaded"}
    assert uploaded == {"web-rendition", "custom.bin", "named"}
    # Reprocessing keeps uploaded renditions.
    await services.processing.reprocess(node.path, user="t")
    await process_all(services)
    assert uploaded <= {r.name for r in await services.tree.renditions(node)}
    r = await client.delete(f"{url}/web-rendition", headers=bearer(tokens.write))
    assert r.status_code == 200
    assert (
        await client.get(f"{url}/web-rendition", headers=bearer(tokens.read))
    ).status_code == 404
    r = await client.delete(f"{url}/original", headers=bearer(tokens.write))
    assert r.status_code == 200
    assert (
        await client.get("/content/dam/lib/photo.jpg", headers=bearer(tokens.read))
    ).status_code == 404
    author = await client.get(
        f"/adobe/assets/{node.urn}/original/as/x.jpg",
        headers={**bearer(tokens.read), "X-Api-Key": "k"},
    )
    assert author.status_code == 404
    for missing in ("/api/assets/lib/none.jpg/renditions/x", "/api/assets/no/a.jpg/comments/*"):
        r = await client.post(missing, content=b"x", headers=bearer(tokens.write))
        assert r.status_code == 404, r.text
        assert status_of(r) == 404


async def test_comments(client: httpx.AsyncClient, tokens: Tokens, tree: dict[str, Node]) -> None:
    url = "/api/assets/lib/photo.jpg/comments/*"
    r = await client.post(
        url,
        data={"message": "Hello World.", "annotationData": '{"x": 1}'},
        headers=bearer(tokens.write),
    )
    assert r.status_code == 201
    for data in (
        {"message": ""},
        {"message": "m", "annotationData": "{nope"},
        {"message": "m", "annotationData": "[1]"},
    ):
        r = await client.post(url, data=data, headers=bearer(tokens.write))
        assert r.status_code == 400 and status_of(r) == 400
    body = (await client.get("/api/assets/lib/photo.jpg.json", headers=bearer(tokens.read))).json()
    comments = [e["properties"] for e in body["entities"] if e["class"] == ["assets/comment"]]
    assert len(comments) == 1 and comments[0]["message"] == "Hello World."
    assert comments[0]["annotationData"] == {"x": 1} and comments[0]["createdBy"] == "writer"


async def listing(client: httpx.AsyncClient, token: str, path: str) -> list:
    """A whole subtree's listing: names, classes, titles, recursively."""
    body = (await client.get(f"/api/assets/{path}.json?limit=1000", headers=bearer(token))).json()
    out = []
    for e in body["entities"]:
        name = e["properties"]["name"]
        out.append((name, e["class"], e["properties"].get("dc:title")))
        if e["class"] == ["assets/folder"]:
            out.append(await listing(client, token, f"{path}/{name}"))
    return out


async def test_move_keeps_ids_and_move_back_restores_the_listing(
    client: httpx.AsyncClient, tokens: Tokens, tree: dict[str, Node], services: Services
) -> None:
    await make_folder(client, tokens.write, "dest")
    before = await listing(client, tokens.write, "lib")
    r = await client.request(
        "MOVE",
        "/api/assets/lib",
        headers={**bearer(tokens.write), "X-Destination": "/api/assets/dest/lib2"},
    )
    assert r.status_code == 201
    moved = await services.tree.get("/content/dam/dest/lib2/photo.jpg")
    assert moved.id == tree["photo"].id
    assert (await services.tree.get("/content/dam/dest/lib2/sub/doc.txt")).id == tree["doc"].id
    assert await services.tree.find("/content/dam/lib") is None
    envelope = await services.metadata.envelope(moved)
    assert envelope["repositoryMetadata"]["repo:path"] == "/content/dam/dest/lib2/photo.jpg"
    r = await client.request(
        "MOVE",
        "/api/assets/dest/lib2",
        headers={**bearer(tokens.write), "X-Destination": f"{BASE}/api/assets/lib"},
    )
    assert r.status_code == 201
    assert await listing(client, tokens.write, "lib") == before
    got = await client.get("/content/dam/lib/sub/doc.txt", headers=bearer(tokens.read))
    assert got.content == b"hello"


async def test_copy_gives_new_ids_and_keeps_metadata(
    client: httpx.AsyncClient, tokens: Tokens, tree: dict[str, Node], services: Services
) -> None:
    r = await client.request(
        "COPY",
        "/api/assets/lib",
        headers={**bearer(tokens.write), "X-Destination": "/api/assets/copy"},
    )
    assert r.status_code == 201
    copy = await services.tree.get("/content/dam/copy/photo.jpg")
    assert copy.id != tree["photo"].id
    assert (
        copy.asset_metadata == tree["photo"].asset_metadata
        or copy.asset_metadata["dc:title"] == "Sunset over the bay"
    )
    assert len(await services.tree.renditions(copy)) == 5
    got = await client.get("/content/dam/copy/sub/doc.txt", headers=bearer(tokens.read))
    assert got.content == b"hello"
    r = await client.request(
        "COPY",
        "/api/assets/lib",
        headers={**bearer(tokens.write), "X-Destination": "/api/assets/flat", "X-Depth": "0"},
    )
    assert r.status_code == 201
    assert (await services.tree.list_children(await services.tree.get("/content/dam/flat")))[1] == 0
    # Onto an existing destination: 204 with overwrite, 412 without.
    r = await client.request(
        "COPY",
        "/api/assets/lib/photo.jpg",
        headers={**bearer(tokens.write), "X-Destination": "/api/assets/copy/photo.jpg"},
    )
    assert r.status_code == 204
    r = await client.request(
        "COPY",
        "/api/assets/lib/photo.jpg",
        headers={
            **bearer(tokens.write),
            "X-Overwrite": "F",
            "X-Destination": "/api/assets/copy/photo.jpg",
        },
    )
    assert r.status_code == 412 and status_of(r) == 412


@pytest.mark.parametrize(
    ("method", "headers", "status"),
    [
        ("COPY", {}, 412),
        ("MOVE", {}, 412),
        ("MOVE", {"X-Destination": "/content/dam/elsewhere"}, 412),
        ("MOVE", {"X-Destination": "/api/assets/lib/sub/inside"}, 412),
        ("MOVE", {"X-Destination": "/api/assets/x", "X-Depth": "1"}, 412),
        ("MOVE", {"X-Destination": "/api/assets/x", "X-Overwrite": "maybe"}, 412),
        ("MOVE", {"X-Destination": "/api/assets/x", "X-Depth": "0"}, 412),
        ("MOVE", {"X-Destination": "/api/assets/no/such/x"}, 500),
        ("COPY", {"X-Destination": "/api/assets/no such/x"}, 500),
        ("MOVE", {"X-Destination": "/api/assets/a%2Fb"}, 400),
        ("MOVE", {"X-Destination": "/api/assets/../x"}, 400),
    ],
)
async def test_copy_move_refusals_change_nothing(
    client: httpx.AsyncClient,
    tokens: Tokens,
    tree: dict[str, Node],
    services: Services,
    method: str,
    headers: dict,
    status: int,
) -> None:
    before = await snapshot(services)
    r = await client.request(method, "/api/assets/lib", headers={**bearer(tokens.write), **headers})
    assert r.status_code == status, r.text
    assert status_of(r) == status
    assert await snapshot(services) == before


async def test_delete_trees_and_assets(
    client: httpx.AsyncClient, tokens: Tokens, tree: dict[str, Node], services: Services
) -> None:
    r = await client.delete("/api/assets/lib/sub/doc.txt", headers=bearer(tokens.write))
    assert r.status_code == 200 and status_of(r) == 200
    assert await services.tree.find("/content/dam/lib/sub/doc.txt") is None
    r = await client.delete("/api/assets/lib", headers=bearer(tokens.write))
    assert r.status_code == 200
    assert await services.tree.find("/content/dam/lib/photo.jpg") is None
    assert await services.tree.find_by_id(tree["photo"].id) is None
    assert (await client.delete("/api/assets/lib", headers=bearer(tokens.write))).status_code == 404
    assert (await client.delete("/api/assets", headers=bearer(tokens.write))).status_code == 400
    assert (await client.delete("/api/assets/x", headers=bearer(tokens.read))).status_code == 403


async def test_on_and_off_time_hide_assets(
    client: httpx.AsyncClient, tokens: Tokens, tree: dict[str, Node]
) -> None:
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    for props in ({"onTime": future}, {"onTime": None, "offTime": past}):
        r = await client.put(
            "/api/assets/lib/photo.jpg", json={"properties": props}, headers=bearer(tokens.write)
        )
        assert r.status_code == 200
        for url in (
            "/api/assets/lib/photo.jpg.json",
            "/api/assets/lib/photo.jpg/renditions/cq5dam.thumbnail.48.48.png",
            "/content/dam/lib/photo.jpg",
        ):
            assert (await client.get(url, headers=bearer(tokens.read))).status_code == 404, url
    r = await client.put(
        "/api/assets/lib/photo.jpg",
        json={"properties": {"offTime": None}},
        headers=bearer(tokens.write),
    )
    assert (
        await client.get("/api/assets/lib/photo.jpg.json", headers=bearer(tokens.read))
    ).status_code == 200


async def test_hostile_metadata_is_refused_by_put_and_folder_create(
    client: httpx.AsyncClient, tokens: Tokens, tree: dict[str, Node], services: Services
) -> None:
    """The class of tests/unit/metadata/test_limits.py through the classic API's two
    writers of metadata: 400 in Siren form, nothing changed."""
    from tests.unit.metadata.test_limits import HOSTILE

    before = await snapshot(services)
    scalar = (str, int, float, bool)
    for name, metadata in HOSTILE:
        writes = [("/api/assets/lib/photo.jpg", {"class": "asset", "properties": metadata})]
        if all(isinstance(v, scalar) for v in metadata.values()):  # a folder keeps no others
            writes.append(("/api/assets/lib/new", {"class": "assetFolder", "properties": metadata}))
        for url, body in writes:
            r = await client.request(
                "PUT" if "photo" in url else "POST", url, json=body, headers=bearer(tokens.write)
            )
            status = 413 if len(r.request.content) > 2**20 else 400
            assert r.status_code == status and status_of(r) == status, (url, name, r.text[:300])
            assert await snapshot(services) == before, (url, name)


async def test_a_rendition_whose_type_is_no_media_type_is_refused(
    client: httpx.AsyncClient, tokens: Tokens, tree: dict[str, Node], services: Services
) -> None:
    before = await snapshot(services)
    url = "/api/assets/lib/photo.jpg/renditions"
    for mime in ["image/", "imagepng", "image/pn\u00e9", "image/" + "a" * 300, "x/y, text/html"]:
        r = await client.post(
            f"{url}/*",
            files={"file": ("r.png", b"PNGDATA", mime)},
            data={"name": "r.png"},
            headers=bearer(tokens.write),
        )
        assert r.status_code == 400 and status_of(r) == 400, (mime, r.text)
        assert await snapshot(services) == before, mime


# -- Siren as AEM sends it: child entities, actions, paging links -------------------------


def link_of(doc: dict, rel: str) -> str | None:  # type: ignore[type-arg]
    """As aem-cmd reads a listing: the first link whose first rel is ``rel``."""
    return next((x["href"] for x in doc["links"] if x["rel"][0] == rel), None)


async def many_children(services: Services, n_folders: int, n_assets: int) -> list[str]:
    await services.tree.create_folder(
        "/content/dam", "big", user="writer", properties={"jcr:title": "big"}
    )
    for i in range(n_folders):
        await services.tree.create_folder("/content/dam/big", f"f{i:02}", user="writer")
    for i in range(n_assets):
        await make_asset(services, f"a{i:02}.txt", b"x", "text/plain", folder="/content/dam/big")
    return sorted(
        [f"f{i:02}" for i in range(n_folders)] + [f"a{i:02}.txt" for i in range(n_assets)]
    )


async def test_a_listing_of_25_children_is_paged_to_the_end_by_its_next_links(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    """As aem-cmd lists a folder: GET the listing, then follow ``links[rel=next]`` (its
    absolute href, as given) until there is none; every child is seen exactly once."""
    names = await many_children(services, 20, 5)
    url: str | None = f"{BASE}/api/assets/big.json"
    pages = []
    while url is not None and len(pages) < 10:
        r = await client.get(url, headers=bearer(tokens.read))
        assert r.status_code == 200, r.text
        pages.append(r.json())
        url = link_of(pages[-1], "next")
    assert [p["properties"]["srn:paging"] for p in pages] == [
        {"total": 25, "offset": 0, "limit": 20},
        {"total": 25, "offset": 20, "limit": 20},
    ]
    seen = [e["properties"]["name"] for p in pages for e in p["entities"]]
    assert sorted(seen) == names and len(seen) == 25
    assert link_of(pages[0], "prev") is None
    assert link_of(pages[1], "prev") == f"{BASE}/api/assets/big.json?offset=0&limit=20"


@pytest.mark.parametrize("limit", [1, 7, 25])
async def test_next_and_prev_links_walk_every_page_both_ways(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, limit: int
) -> None:
    names = await many_children(services, 20, 5)
    url: str | None = f"/api/assets/big.json?limit={limit}&showProperty=jcr:title"
    forward = []
    while url is not None:
        doc = (await client.get(url, headers=bearer(tokens.read))).json()
        forward.append([e["properties"]["name"] for e in doc["entities"]])
        assert doc["properties"]["jcr:title"] == "big"  # showProperty is kept
        url = link_of(doc, "next")
    assert len(forward) == -(-25 // limit)
    assert sorted(n for page in forward for n in page) == names
    url, backward = link_of(doc, "prev"), [forward[-1]]
    while url is not None:
        doc = (await client.get(url, headers=bearer(tokens.read))).json()
        backward.append([e["properties"]["name"] for e in doc["entities"]])
        url = link_of(doc, "prev")
    assert backward[::-1] == forward


async def test_paging_links_at_the_edges(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    await many_children(services, 3, 0)
    past = (
        await client.get("/api/assets/big.json?offset=10&limit=2", headers=bearer(tokens.read))
    ).json()
    assert past["entities"] == [] and link_of(past, "next") is None
    assert link_of(past, "prev") == f"{BASE}/api/assets/big.json?offset=1&limit=2"
    empty = (await client.get("/api/assets/big.json?limit=0", headers=bearer(tokens.read))).json()
    # limit=0 pages would never move: no links to follow.
    assert link_of(empty, "next") is None and link_of(empty, "prev") is None
    whole = (await client.get("/api/assets/big.json", headers=bearer(tokens.read))).json()
    assert [x["rel"] for x in whole["links"]] == [["self"], ["parent"]]


async def test_sub_entities_are_children_with_self_links_and_documents_carry_actions(
    client: httpx.AsyncClient, tokens: Tokens, tree: dict[str, Node], services: Services
) -> None:
    lib = (await client.get("/api/assets/lib.json", headers=bearer(tokens.read))).json()
    for entity in lib["entities"]:
        assert entity["rel"] == ["child"]
        assert (
            link_of(entity, "self") == f"{BASE}/api/assets/lib/{entity['properties']['name']}.json"
        )
    assert lib["actions"] == [
        {
            "name": "add-folder",
            "title": "Add Folder",
            "method": "POST",
            "href": f"{BASE}/api/assets/lib/*",
            "fields": [{"name": "name", "type": "text"}],
        },
        {
            "name": "update",
            "title": "Update",
            "method": "PUT",
            "href": f"{BASE}/api/assets/lib",
            "type": "application/vnd.siren+json",
            "fields": [{"name": "data", "type": "text"}],
        },
        {"name": "delete", "title": "Delete", "method": "DELETE", "href": f"{BASE}/api/assets/lib"},
        {
            "name": "add-asset",
            "title": "Add Asset",
            "method": "POST",
            "href": f"{BASE}/api/assets/lib/*",
            "fields": [{"name": "name", "type": "text"}, {"name": "file", "type": "file"}],
        },
    ]
    root = (await client.get("/api/assets.json", headers=bearer(tokens.read))).json()
    assert [a["href"] for a in root["actions"]] == [
        f"{BASE}/api/assets/*",
        f"{BASE}/api/assets",
        f"{BASE}/api/assets",
        f"{BASE}/api/assets/*",
    ]
    r = await client.post(
        "/api/assets/lib/photo.jpg/comments/*", data={"message": "hi"}, headers=bearer(tokens.write)
    )
    assert r.status_code == 201
    photo = (await client.get("/api/assets/lib/photo.jpg.json", headers=bearer(tokens.read))).json()
    assert photo["entities"] and all(e["rel"] == ["child"] for e in photo["entities"])
    for rendition in (e for e in photo["entities"] if e["class"] == ["assets/rendition"]):
        assert link_of(
            rendition,
            "self",
        ).startswith(f"{BASE}/api/assets/lib/photo.jpg/renditions/")  # type: ignore[union-attr]
    assert [(a["name"], a["method"], a["href"]) for a in photo["actions"]] == [
        ("update", "PUT", f"{BASE}/api/assets/lib/photo.jpg"),
        ("delete", "DELETE", f"{BASE}/api/assets/lib/photo.jpg"),
    ]


async def test_the_actions_do_what_they_announce(
    client: httpx.AsyncClient, tokens: Tokens, tree: dict[str, Node], services: Services
) -> None:
    """A client driven by the actions: each one's method, href, type and fields work."""
    lib = (await client.get("/api/assets/lib.json", headers=bearer(tokens.read))).json()
    act = {a["name"]: a for a in lib["actions"]}
    made = await client.request(
        act["add-folder"]["method"],
        act["add-folder"]["href"],
        data={"name": "made"},
        headers=bearer(tokens.write),
    )
    assert made.status_code == 201, made.text
    photo = (await client.get("/api/assets/lib/photo.jpg.json", headers=bearer(tokens.read))).json()
    update = next(a for a in photo["actions"] if a["name"] == "update")
    r = await client.request(
        update["method"],
        update["href"],
        content=b'{"class": "asset", "properties": {"dc:title": "Renamed"}}',
        headers={**bearer(tokens.write), "Content-Type": update["type"]},
    )
    assert r.status_code == 200, r.text
    assert (await services.tree.get("/content/dam/lib/photo.jpg")).properties[
        "dc:title"
    ] == "Renamed"
    before = await snapshot(services)
    refused = await client.request(
        act["add-asset"]["method"],
        act["add-asset"]["href"],
        data={"name": "new.jpg"},
        files={"file": ("new.jpg", b"\xff\xd8\xff" * 100, "image/jpeg")},
        headers=bearer(tokens.write),
    )
    assert refused.status_code == 400 and status_of(refused) == 400
    assert "direct binary upload" in refused.json()["properties"]["status.message"]
    assert await snapshot(services) == before
    delete = next(a for a in photo["actions"] if a["name"] == "delete")
    gone = await client.request(delete["method"], delete["href"], headers=bearer(tokens.write))
    assert gone.status_code == 200
    assert await services.tree.find("/content/dam/lib/photo.jpg") is None


async def test_a_title_patched_through_the_author_api_is_the_title_shown_here(
    client: httpx.AsyncClient, tokens: Tokens, tree: dict[str, Node], services: Services
) -> None:
    """The classic PUT wrote dc:title and its jcr:title twin; a later JSON Patch of
    dc:title (or its removal) carries the twin along, so this API shows no stale title."""
    put = await client.put(
        "/api/assets/lib/photo.jpg",
        json={"class": "asset", "properties": {"dc:title": "Classic", "dc:description": "D"}},
        headers=bearer(tokens.write),
    )
    assert put.status_code == 200, put.text
    author = {"Authorization": f"Bearer {tokens.write}", "X-Api-Key": "test-client"}
    patched = await client.patch(
        f"/adobe/assets/{tree['photo'].urn}/metadata",
        json=[
            {"op": "add", "path": "/dc:title", "value": "Author"},
            {"op": "remove", "path": "/dc:description"},
        ],
        headers={**author, "Content-Type": "application/json-patch+json", "If-Match": "*"},
    )
    assert patched.status_code == 200, patched.text
    shown = (await client.get("/api/assets/lib/photo.jpg.json", headers=bearer(tokens.read))).json()
    assert shown["properties"]["dc:title"] == "Author"
    assert "dc:description" not in shown["properties"]
    node = await services.tree.get("/content/dam/lib/photo.jpg")
    assert node.properties["jcr:title"] == "Author"
    assert "jcr:description" not in node.asset_metadata
