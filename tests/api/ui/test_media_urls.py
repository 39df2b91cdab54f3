"""Media URLs (POST /media-urls): a short-lived, signed URL of one binary for a browser's
<video>, <img> or download, answered by the binary's own route with ranges and the same
sandboxing; refused after expiry, for another path, when tampered with, when its token
is revoked, and for anything but reading."""

from __future__ import annotations

import io
import secrets
import time
import zipfile
from urllib.parse import quote

import httpx
import pytest

from assetvault.services import Services
from assetvault.tree.models import Node
from tests.api.adobe.conftest import adobe
from tests.conftest import Tokens
from tests.factories import bearer, make_asset, one_chunk

VIDEO = "cq5dam.video.fullhd-bp.mp4"
MOVIE = bytes(range(256)) * 40  # 10,240 bytes standing in for an MP4


async def _video(services: Services) -> Node:
    node = await make_asset(services, "clip.avi", b"RIFF-avi", "video/x-msvideo")
    blob = await services.blobs.put(one_chunk(MOVIE))
    await services.changes.put_rendition(
        node.path, VIDEO, blob, "video/mp4", replace_only=False, create_only=True, user="writer"
    )
    return node


def _rendition_path(node: Node, name: str = VIDEO, seo: str = "video.mp4") -> str:
    return f"/adobe/assets/{quote(node.urn, safe='')}/renditions/{quote(name)}/as/{seo}"


async def _mint(client: httpx.AsyncClient, token: str, path: str) -> str:
    r = await client.post("/media-urls", json={"path": path}, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    url = r.json()["url"]
    assert url.startswith("http://assetvault.test" + path + "?media=")
    return url.removeprefix("http://assetvault.test")


async def test_a_media_url_plays_a_video_with_ranges_and_no_token(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    node = await _video(services)
    url = await _mint(client, tokens.read, _rendition_path(node))
    assert tokens.read not in url and "reader" not in url  # neither the token nor its name

    whole = await client.get(url)
    assert whole.status_code == 200 and whole.content == MOVIE
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["x-content-type-options"] == "nosniff"
    assert whole.headers["referrer-policy"] == "no-referrer"
    assert whole.headers["cache-control"] == "private, no-store"
    assert whole.headers["content-disposition"].startswith("inline;")

    # Seeking to the middle: a range from there on, as a <video> asks for it.
    middle = await client.get(url, headers={"Range": f"bytes={len(MOVIE) // 2}-"})
    assert middle.status_code == 206
    assert middle.headers["content-range"] == f"bytes 5120-10239/{len(MOVIE)}"
    assert middle.content == MOVIE[5120:]
    some = await client.get(url, headers={"Range": "bytes=100-199"})
    assert some.status_code == 206 and some.content == MOVIE[100:200]
    beyond = await client.get(url, headers={"Range": f"bytes={len(MOVIE)}-"})
    assert beyond.status_code == 416


async def test_the_original_and_a_version_through_media_urls_are_sandboxed(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    page = b"<html><script>alert(document.domain)</script></html>"
    node = await make_asset(services, "page.html", page, "text/html")
    blob = await services.blobs.put(one_chunk(page + b"2"))
    await services.tree.store_original(
        "/content/dam", "page.html", blob, mime_type="text/html", user="writer", create_version=True
    )
    urn = quote(node.urn, safe="")
    for path, body in (
        (f"/adobe/assets/{urn}/original/as/page.html", page + b"2"),
        (f"/adobe/assets/{urn}/versions/1.0/as/page.html", page),
    ):
        got = await client.get(await _mint(client, tokens.read, path))
        assert got.status_code == 200 and got.content == body, path
        assert got.headers["content-security-policy"] == "sandbox"
        assert got.headers["content-disposition"].startswith("attachment")
        assert got.headers["x-content-type-options"] == "nosniff"


async def test_a_media_url_opens_its_own_path_only(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    node = await _video(services)
    other = await make_asset(services, "other.txt", b"another asset", "text/plain")
    url = await _mint(client, tokens.read, _rendition_path(node))
    path, _, grant = url.partition("?media=")
    for elsewhere in (
        f"/adobe/assets/{quote(node.urn, safe='')}/original/as/clip.avi",
        _rendition_path(node, seo="other-name.mp4"),
        f"/adobe/assets/{quote(other.urn, safe='')}/original/as/other.txt",
        _rendition_path(node).replace("%3A", ":"),  # the same path spelt otherwise
    ):
        r = await client.get(f"{elsewhere}?media={grant}")
        assert r.status_code in (403, 404), (elsewhere, r.status_code)
        assert r.status_code == 403 or "urn" not in elsewhere
        assert b"another asset" not in r.content and MOVIE[:64] not in r.content

    # Not a token anywhere else: the metadata, a listing, a write.
    urn = quote(node.urn, safe="")
    assert (await client.get(f"/adobe/assets/{urn}/metadata?media={grant}")).status_code == 401
    assert (await client.delete(f"/adobe/assets/{urn}?media={grant}")).status_code == 401
    assert (await client.get(f"/content/dam/clip.avi?media={grant}")).status_code == 401
    # ... nor as a bearer token.
    r = await client.get(path, headers={**adobe(grant)})
    assert r.status_code == 401


@pytest.mark.parametrize(
    "change",
    [
        lambda g: g[:-2] + ("AA" if not g.endswith("AA") else "BB"),  # the signature
        lambda g: str(int(g.split(".")[0]) + 3600) + g[g.index(".") :],  # a later expiry
        lambda g: g.split(".")[0] + ".00000000-0000-0000-0000-000000000000." + g.split(".")[2],
        lambda g: g.split(".", 1)[1],  # a field less
        lambda g: "",
        lambda g: "x" * 500,
    ],
)
async def test_a_tampered_media_url_is_refused(
    client: httpx.AsyncClient, services: Services, tokens: Tokens, change: object
) -> None:
    node = await _video(services)
    url = await _mint(client, tokens.read, _rendition_path(node))
    path, _, grant = url.partition("?media=")
    assert callable(change)
    r = await client.get(f"{path}?media={change(grant)}")
    assert r.status_code in (400, 403), r.text
    assert MOVIE[:64] not in r.content


async def test_a_media_url_expires(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    node = await _video(services)
    path = _rendition_path(node)
    services.settings.media_url_seconds = 10
    url = await _mint(client, tokens.read, path)
    assert (await client.get(url, headers={"Range": "bytes=0-9"})).status_code == 206
    grant = url.partition("?media=")[2]
    expires = int(grant.split(".")[0])
    assert time.time() + 9 <= expires <= time.time() + 11
    # A moment after its expiry (the clock moved on, as seen by the service).
    urls = services.media_urls.urls
    with pytest.raises(Exception, match="expired"):
        urls.check(grant, path, now=expires)
    assert urls.check(grant, path, now=expires - 1).path == path
    # An expired grant on the wire: signed alike, its time in the past.
    token_id = grant.split(".")[1]
    stale = urls.sign(token_id, path, int(time.time()) - 1)
    r = await client.get(f"{path}?media={stale}")
    assert r.status_code == 403 and "expired" in r.json()["detail"]


async def test_revoking_the_token_revokes_its_media_urls_at_once(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    node = await _video(services)
    url = await _mint(client, tokens.write, _rendition_path(node))
    assert (await client.get(url)).status_code == 200
    await services.auth.revoke("writer")
    r = await client.get(url)
    assert r.status_code == 403 and "no longer active" in r.json()["detail"]


async def test_only_binary_paths_get_media_urls(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    node = await _video(services)
    urn = quote(node.urn, safe="")
    for path in (
        f"/adobe/assets/{urn}",
        f"/adobe/assets/{urn}/metadata",
        f"/adobe/assets/{urn}/renditions",
        "/content/dam/clip.avi",
        f"http://elsewhere.example/adobe/assets/{urn}/original/as/x",
        f"/adobe/assets/{urn}/original/as/%2e%2e",
        f"/adobe/assets/{urn}/original/as/a%2Fb",
        f"/adobe/assets/{urn}/original/as/x?attachment=true",
        f"/adobe/assets/{urn}/original/as/x#y",
        "",
        None,
        42,
    ):
        r = await client.post("/media-urls", json={"path": path}, headers=bearer(tokens.read))
        assert r.status_code == 400, (path, r.text)
    r = await client.post(
        "/media-urls", json={"path": _rendition_path(node), "more": 1}, headers=bearer(tokens.read)
    )
    assert r.status_code == 400
    # A token is needed to make one.
    r = await client.post("/media-urls", json={"path": _rendition_path(node)})
    assert r.status_code == 401


async def test_the_zip_of_a_selection_through_a_media_url(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    await services.tree.create_folder("/content/dam", "pick", user="writer")
    await make_asset(services, "a.txt", b"alpha", "text/plain", "/content/dam/pick")
    await make_asset(services, "b.html", b"<script>1</script>", "text/html", "/content/dam/pick")
    await make_asset(services, "c.txt", b"not chosen", "text/plain", "/content/dam/pick")
    chosen = ["/content/dam/pick/a.txt", "/content/dam/pick/b.html"]
    body = {"archive": chosen, "fileName": "pick-2.zip"}
    r = await client.post("/media-urls", json=body, headers=bearer(tokens.read))
    assert r.status_code == 200, r.text
    url = r.json()["url"].removeprefix("http://assetvault.test")
    assert url.startswith("/adobe/assets/archive?media=") and tokens.read not in url
    got = await client.get(url)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/zip"
    assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''pick-2.zip"
    assert got.headers["content-security-policy"] == "sandbox"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["referrer-policy"] == "no-referrer"
    assert got.headers["cache-control"] == "no-store"
    with zipfile.ZipFile(io.BytesIO(got.content)) as z:
        assert sorted(z.namelist()) == ["a.txt", "b.html"]
        assert z.read("a.txt") == b"alpha"

    # The paths travel in the grant, signed with it: changed paths, or a grant for one
    # binary, open no ZIP; nor does the ZIP's grant open a binary.
    grant = url.partition("?media=")[2]
    expires, token_id, signature, _ = grant.split(".")
    other = services.media_urls.urls.sign_archive(token_id, ["/content/dam/pick"], int(expires))
    forged = ".".join([expires, token_id, signature, other.split(".")[3]])
    for bad in (forged, f"{expires}.{token_id}.{signature}", grant + "x", grant[:-8]):
        r = await client.get(f"/adobe/assets/archive?media={bad}")
        assert r.status_code == 403, (bad, r.text)
    c = await services.tree.get("/content/dam/pick/c.txt")
    path = f"/adobe/assets/{quote(c.urn, safe='')}/original/as/c.txt"
    assert (await client.get(f"{path}?media={grant}")).status_code == 403
    # No grant is no credential: 401, as every route answers without one.
    assert (await client.get("/adobe/assets/archive")).status_code == 401
    # Expired and revoked as any grant.
    stale = services.media_urls.urls.sign_archive(token_id, chosen, int(time.time()) - 1)
    r = await client.get(f"/adobe/assets/archive?media={stale}")
    assert r.status_code == 403 and "expired" in r.json()["detail"]
    await services.auth.revoke("reader")
    assert (await client.get(url)).status_code == 403


async def test_a_zip_media_url_is_checked_when_it_is_made(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    await make_asset(services, "a.txt", b"alpha", "text/plain")
    post = lambda body: client.post("/media-urls", json=body, headers=bearer(tokens.read))  # noqa: E731
    assert (await post({"archive": ["/content/dam/missing.txt"]})).status_code == 404
    assert (await post({"archive": ["/etc/passwd"]})).status_code == 400
    assert (await post({"archive": []})).status_code == 400
    assert (await post({"archive": ["/content/dam/a.txt"], "path": "/x"})).status_code == 400
    assert (await post({})).status_code == 400
    assert (await post({"path": "/x", "fileName": "a.zip"})).status_code == 400
    assert (await post({"archive": ["/content/dam/a.txt"], "fileName": 7})).status_code == 400
    # A file name is made safe: no separator, no control character; it ends in .zip.
    made = await post({"archive": ["/content/dam/a.txt"], "fileName": "../x\\y\r\n"})
    got = await client.get(made.json()["url"].removeprefix("http://assetvault.test"))
    assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''.._x_y.zip"
    # Paths that do not fit in a URL: the answer says to POST them instead.
    many = [f"/content/dam/{secrets.token_hex(20)}.txt" for _ in range(300)]
    for name in many:
        await make_asset(services, name.rsplit("/", 1)[1], b"z", "text/plain")
    r = await post({"archive": many})
    assert r.status_code == 413 and "POST them" in r.json()["detail"]
