"""HEAD/GET/PATCH /adobe/assets/{assetId}/metadata."""

from __future__ import annotations

import asyncio
import copy
import json

import httpx
import jsonpatch
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assetvault.errors import InvalidInput
from assetvault.metadata import patch as metadata_patch
from assetvault.services import Services
from assetvault.tree.models import Node
from tests.api.adobe.conftest import adobe
from tests.api.adobe.test_assets import is_problem
from tests.conftest import Tokens
from tests.factories import snapshot

PATCH = "application/json-patch+json"


def patch_headers(token: str, etag: str | None = "*", ctype: str = PATCH) -> dict[str, str]:
    headers = {**adobe(token), "Content-Type": ctype}
    if etag is not None:
        headers["If-Match"] = etag
    return headers


async def test_envelope(
    client: httpx.AsyncClient, tokens: Tokens, photo: Node, services: Services
) -> None:
    r = await client.get(f"/adobe/assets/{photo.urn}/metadata", headers=adobe(tokens.read))
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"assetId", "assetMetadata", "repositoryMetadata"}
    assert body["assetId"] == photo.urn
    assert body["assetMetadata"]["dc:title"] == "Sunset over the bay"
    assert body["assetMetadata"]["dc:subject"] == ["sunset", "bay"]
    repo = body["repositoryMetadata"]
    root = await services.tree.get("/content/dam")
    assert repo["repo:name"] == "photo.jpg"
    assert repo["repo:path"] == "/content/dam/photo.jpg"
    assert repo["repo:assetId"] == photo.urn
    assert repo["repo:assetClass"] == "file"
    assert repo["repo:parent"] == root.urn
    assert repo["repo:ancestors"] == [root.urn]
    assert repo["dc:format"] == "image/jpeg"
    assert repo["repo:size"] == photo.size
    assert repo["dam:sha1"] == photo.sha1
    assert (repo["tiff:imageWidth"], repo["tiff:imageLength"]) == (600, 400)
    assert repo["aem:assetState"] == "processed"
    assert repo["repo:createdBy"] == "writer"
    assert repo["repo:createDate"].endswith("Z") and repo["repo:modifyDate"].endswith("Z")
    assert repo["repo:etag"] == r.headers["etag"]
    assert repo["isPublishedToAemPublish"] is False
    head = await client.head(f"/adobe/assets/{photo.urn}/metadata", headers=adobe(tokens.read))
    assert head.status_code == 200 and head.headers["etag"] == r.headers["etag"]
    assert head.content == b""
    for value in (r.headers["etag"], "*"):
        for method in ("GET", "HEAD"):
            again = await client.request(
                method,
                f"/adobe/assets/{photo.urn}/metadata",
                headers={**adobe(tokens.read), "If-None-Match": value},
            )
            assert again.status_code == 304
    r = await client.get(
        f"/adobe/assets/{photo.urn}/metadata", headers={**adobe(tokens.read), "Accept": "text/xml"}
    )
    assert is_problem(r, 406)


async def test_ancestors_end_with_the_direct_parent(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    from tests.factories import make_asset

    a = await services.tree.create_folder("/content/dam", "a", user="u")
    b = await services.tree.create_folder("/content/dam/a", "b", user="u")
    node = await make_asset(services, "x.txt", b"x", "text/plain", folder="/content/dam/a/b")
    root = await services.tree.get("/content/dam")
    r = await client.get(f"/adobe/assets/{node.urn}/metadata", headers=adobe(tokens.read))
    assert r.json()["repositoryMetadata"]["repo:ancestors"] == [root.urn, a.urn, b.urn]


async def test_patch_with_aem_operations_and_etags(
    client: httpx.AsyncClient, tokens: Tokens, photo: Node
) -> None:
    url = f"/adobe/assets/{photo.urn}/metadata"
    etag = (await client.get(url, headers=adobe(tokens.read))).headers["etag"]
    ops = [
        {"op": "replace", "path": "/assetMetadata/dc:title", "value": "New title"},
        {"op": "add", "path": "/dc:description", "value": "short path"},
        {"op": "set", "path": "myorg:code", "value": 7},
        {"op": "addUnique", "path": "/dc:subject", "value": ["bay", "sea"]},
        {"op": "removeFirst", "path": "/dc:subject", "value": "sunset"},
        {"op": "removeIfExists", "path": "/nothing:here"},
        {"op": "remove", "path": "/xmp:Rating"},
    ]
    r = await client.patch(url, content=json.dumps(ops), headers=patch_headers(tokens.write, etag))
    assert r.status_code == 200, r.text
    meta = r.json()["assetMetadata"]
    assert meta["dc:title"] == "New title" and meta["dc:description"] == "short path"
    assert meta["myorg:code"] == 7 and meta["dc:subject"] == ["bay", "sea"]
    assert "xmp:Rating" not in meta
    new_etag = r.headers["etag"]
    assert new_etag != etag
    # The old ETag is stale now.
    r = await client.patch(
        url, content=json.dumps(ops[:1]), headers=patch_headers(tokens.write, etag)
    )
    assert is_problem(r, 412)
    r = await client.patch(
        url,
        content=json.dumps([{"op": "removeAll", "path": "/dc:subject", "value": "sea"}]),
        headers=patch_headers(tokens.write, new_etag),
    )
    assert r.status_code == 200 and r.json()["assetMetadata"]["dc:subject"] == ["bay"]
    got = await client.get(url, headers=adobe(tokens.read))
    assert got.json()["assetMetadata"]["dc:subject"] == ["bay"]
    assert got.json()["repositoryMetadata"]["repo:modifiedBy"] == "writer"


@pytest.mark.parametrize(
    ("ops", "headers_kw", "status"),
    [
        ([{"op": "replace", "path": "/dc:title", "value": "x"}], {"etag": None}, 428),
        ([{"op": "replace", "path": "/dc:title", "value": "x"}], {"etag": '"nope-1"'}, 412),
        (
            [{"op": "replace", "path": "/dc:title", "value": "x"}],
            {"ctype": "application/json"},
            415,
        ),
        ([{"op": "replace", "path": "/repositoryMetadata/repo:name", "value": "x"}], {}, 400),
        ([{"op": "add", "path": "/repositoryMetadata/dc:format", "value": "x"}], {}, 400),
        ([{"op": "replace", "path": "/folderMetadata/dc:title", "value": "x"}], {}, 400),
        (
            [
                {"op": "replace", "path": "/dc:title", "value": "ok"},
                {"op": "replace", "path": "/missing:prop", "value": 1},
            ],
            {},
            400,
        ),
        ([{"op": "test", "path": "/dc:title", "value": "wrong"}], {}, 400),
        ([{"op": "explode", "path": "/dc:title"}], {}, 400),
        ([{"op": "replace", "path": "", "value": 1}], {}, 400),
        ([{"op": "add", "path": "/dc:title"}], {}, 400),
        ([{"op": "set", "path": "/dc:title", "value": None}], {}, 400),
        ({"op": "replace"}, {}, 400),
        ("not json at all", {}, 400),
        ([{"op": "add", "path": "/bad\u0000key", "value": "v"}], {}, 400),
        ([{"op": "add", "path": "/dc:x", "value": {"in\u001fner": 1}}], {}, 400),
        ([{"op": "add", "path": "/" + "k" * 100_000, "value": "v"}], {}, 400),
        ([{"op": "add", "path": "/dc:description", "value": "a" * 300_000}], {}, 400),
        ([{"op": "add", "path": "/dc:description", "value": "a" * 2_000_000}], {}, 413),
    ],
)
async def test_bad_patches_change_nothing(
    client: httpx.AsyncClient,
    tokens: Tokens,
    photo: Node,
    services: Services,
    ops: object,
    headers_kw: dict,
    status: int,
) -> None:
    before = await snapshot(services)
    body = ops if isinstance(ops, str) else json.dumps(ops)
    r = await client.patch(
        f"/adobe/assets/{photo.urn}/metadata",
        content=body,
        headers=patch_headers(tokens.write, **headers_kw),
    )
    assert is_problem(r, status), r.text
    assert await snapshot(services) == before


async def test_patch_needs_write_scope(
    client: httpx.AsyncClient, tokens: Tokens, photo: Node
) -> None:
    r = await client.patch(
        f"/adobe/assets/{photo.urn}/metadata", content="[]", headers=patch_headers(tokens.read)
    )
    assert is_problem(r, 403)


async def test_fifty_concurrent_patches_with_one_etag_one_wins(
    client: httpx.AsyncClient, tokens: Tokens, photo: Node
) -> None:
    url = f"/adobe/assets/{photo.urn}/metadata"
    etag = (await client.get(url, headers=adobe(tokens.read))).headers["etag"]

    async def one(i: int) -> int:
        r = await client.patch(
            url,
            content=json.dumps([{"op": "set", "path": "/dc:title", "value": f"by {i}"}]),
            headers=patch_headers(tokens.write, etag),
        )
        return r.status_code

    codes = await asyncio.gather(*(one(i) for i in range(50)))
    assert sorted(codes) == [200] + [412] * 49
    title = (await client.get(url, headers=adobe(tokens.read))).json()["assetMetadata"]["dc:title"]
    assert title == f"by {codes.index(200)}"


# -- property: the RFC part applies exactly as the jsonpatch library would, or not at all --

keys = st.sampled_from(["dc:title", "dc:subject", "xmp:Rating", "my:obj", "new:key"])
scalars = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.booleans())
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.sampled_from(["a", "b"]), scalars, max_size=2),
)


def pointers() -> st.SearchStrategy[str]:
    return st.one_of(
        keys.map(lambda k: f"/assetMetadata/{k}"),
        st.tuples(keys, st.sampled_from(["0", "1", "-", "a", "b"])).map(
            lambda t: f"/assetMetadata/{t[0]}/{t[1]}"
        ),
    )


operations = st.one_of(
    st.builds(lambda p, v: {"op": "add", "path": p, "value": v}, pointers(), values),
    st.builds(lambda p, v: {"op": "replace", "path": p, "value": v}, pointers(), values),
    st.builds(lambda p: {"op": "remove", "path": p}, pointers()),
    st.builds(lambda p, v: {"op": "test", "path": p, "value": v}, pointers(), values),
    st.builds(lambda f, p: {"op": "move", "from": f, "path": p}, pointers(), pointers()),
    st.builds(lambda f, p: {"op": "copy", "from": f, "path": p}, pointers(), pointers()),
)
START = {"dc:title": "t", "dc:subject": ["a", "b"], "xmp:Rating": 3, "my:obj": {"a": 1}}


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(operations, min_size=1, max_size=5))
def test_rfc6902_matches_jsonpatch_or_changes_nothing(ops: list[dict]) -> None:
    doc = {"assetMetadata": copy.deepcopy(START)}
    try:
        expected = jsonpatch.apply_patch(doc, ops, in_place=False)
        expected_ok = isinstance(expected.get("assetMetadata"), dict) and set(expected) == {
            "assetMetadata"
        }
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException):
        expected_ok = False
    before = copy.deepcopy(START)
    try:
        got = metadata_patch.apply(START, ops)
    except InvalidInput:
        assert not expected_ok, f"refused a patch jsonpatch applies: {ops}"
    else:
        assert expected_ok, f"applied a patch jsonpatch refuses: {ops}"
        assert got == expected["assetMetadata"]
    assert before == START  # the input is never changed in place


async def test_hostile_metadata_and_formats_are_refused(
    client: httpx.AsyncClient, tokens: Tokens, photo: Node, services: Services
) -> None:
    """The class of tests/unit/metadata/test_limits.py, and dc:format that is no media
    type, through PATCH: a problem, nothing changed."""
    from tests.unit.metadata.test_limits import HOSTILE
    from tests.unit.test_mediatypes import HOSTILE as HOSTILE_TYPES

    cases = [(name, metadata) for name, metadata in HOSTILE]
    cases += [(repr(mime), {"dc:format": mime}) for mime in HOSTILE_TYPES]
    before = await snapshot(services)
    for name, metadata in cases:
        ops = [
            {"op": "add", "path": f"/{k.replace('~', '~0').replace('/', '~1')}", "value": v}
            for k, v in metadata.items()
        ]
        r = await client.patch(
            f"/adobe/assets/{photo.urn}/metadata",
            content=json.dumps(ops),
            headers=patch_headers(tokens.write),
        )
        assert is_problem(r, 413 if len(r.request.content) > 2**20 else 400), (name, r.text[:300])
        assert await snapshot(services) == before, name
