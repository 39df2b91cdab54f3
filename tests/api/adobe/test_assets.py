"""GET/DELETE /adobe/assets/{assetId}, originals, renditions and job status."""

from __future__ import annotations

import hashlib
import uuid

import httpx
import pytest

from assetvault.services import Services
from assetvault.tree.models import Node
from tests.api.adobe.conftest import adobe
from tests.conftest import Tokens
from tests.factories import make_asset, process_all, snapshot
from tests.s3 import ON_S3_TOO

# Fixed, so that every pytest-xdist worker collects the same test ids.
UNKNOWN = "urn:aaid:aem:6f1c0e52-3b8a-4d2e-9c47-5a0b8e1d2f93"


def is_problem(r: httpx.Response, status: int) -> bool:
    body = r.json()
    return (
        r.status_code == status
        and r.headers["content-type"] == "application/problem+json"
        and body["status"] == status
        and bool(body["detail"])
    )


async def test_web_optimized_binary_negotiates(
    client: httpx.AsyncClient, tokens: Tokens, photo: Node
) -> None:
    url = f"/adobe/assets/{photo.urn}"
    r = await client.get(url, headers=adobe(tokens.read))
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    assert r.content[:4] == b"RIFF" and r.headers["etag"]
    r = await client.get(url, headers={**adobe(tokens.read), "Accept": "image/jpeg"})
    assert r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    r = await client.get(
        url, headers={**adobe(tokens.read), "Accept": "image/webp;q=0.5, image/jpeg"}
    )
    assert r.headers["content-type"] == "image/jpeg"
    assert is_problem(
        await client.get(url, headers={**adobe(tokens.read), "Accept": "application/pdf"}), 406
    )
    etag = r.headers["etag"]
    r = await client.get(
        url, headers={**adobe(tokens.read), "Accept": "image/jpeg", "If-None-Match": etag}
    )
    assert r.status_code == 304
    r = await client.get(url, headers={**adobe(tokens.read), "X-Adobe-Accept-Experimental": "1"})
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("asset_id", "status"),
    [("not-a-urn", 400), ("urn:aaid:aem:not-a-uuid", 400), (UNKNOWN, 404)],
)
async def test_bad_and_unknown_ids(
    client: httpx.AsyncClient, tokens: Tokens, asset_id: str, status: int
) -> None:
    for path in (
        "",
        "/metadata",
        "/renditions",
        "/relations",
        "/relationTypes",
        "/original/as/x.jpg",
        "/renditions/original/as/x.jpg",
    ):
        r = await client.get(f"/adobe/assets/{asset_id}{path}", headers=adobe(tokens.read))
        assert is_problem(r, status), (path, r.status_code, r.text)


async def test_folder_ids_are_not_assets(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    root = await services.tree.get("/content/dam")
    r = await client.get(f"/adobe/assets/{root.urn}/metadata", headers=adobe(tokens.read))
    assert is_problem(r, 404)


async def test_auth(client: httpx.AsyncClient, tokens: Tokens, photo: Node) -> None:
    url = f"/adobe/assets/{photo.urn}/metadata"
    assert is_problem(await client.get(url), 401)
    assert is_problem(
        await client.get(url, headers={"Authorization": f"Bearer {tokens.read}"}), 403
    )  # no X-Api-Key
    r = await client.delete(f"/adobe/assets/{photo.urn}", headers=adobe(tokens.read))
    assert is_problem(r, 403)


async def test_unprocessed_asset_has_no_web_rendition(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    node = await make_asset(services, "raw.bin", b"\x00\x01", "application/octet-stream")
    r = await client.get(f"/adobe/assets/{node.urn}", headers=adobe(tokens.read))
    assert is_problem(r, 404) and "processing" in r.json()["detail"]


@ON_S3_TOO
async def test_original_with_range_and_disposition(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, blobs_backend: str
) -> None:
    data = bytes(range(256)) * 40
    node = await make_asset(services, "data.bin", data, "application/octet-stream")
    url = f"/adobe/assets/{node.urn}/original/as/my-file.bin"
    r = await client.get(url, headers=adobe(tokens.read))
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-length"] == str(len(data))
    # application/octet-stream is not a passive type: an attachment (docs/hostile-input.md)
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''my-file.bin"
    etag = f'"{hashlib.sha1(data).hexdigest()}"'
    if blobs_backend == "local":  # a GET redirected to S3 has the store's ETag (docs/deploy.md)
        assert r.headers["etag"] == etag
    r = await client.get(url, headers={**adobe(tokens.read), "If-None-Match": etag})
    assert r.status_code == 304 and r.headers["etag"] == etag
    r = await client.get(url, headers={**adobe(tokens.read), "Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == data[100:200]
    r = await client.get(url, headers={**adobe(tokens.read), "Range": "bytes=99999-"})
    assert is_problem(r, 416)
    r = await client.get(url, headers={**adobe(tokens.read), "Accept": "text/html"})
    assert is_problem(r, 406)


@ON_S3_TOO
async def test_renditions_list_and_binary(
    client: httpx.AsyncClient, tokens: Tokens, photo: Node
) -> None:
    r = await client.get(
        f"/adobe/assets/{photo.urn}/renditions", headers={"Authorization": f"Bearer {tokens.read}"}
    )
    assert r.status_code == 200 and r.headers["etag"]
    body = r.json()
    assert body["assetId"] == photo.urn and body["repo:name"] == "photo.jpg"
    items = {i["name"]: i for i in body["items"]}
    assert items["original"] == {
        "name": "original",
        "format": "image/jpeg",
        "size": photo.size,
        "dimensions": {"width": 600, "height": 400},
    }
    assert items["cq5dam.thumbnail.319.319.png"]["dimensions"] == {"width": 213, "height": 319}
    assert items["cq5dam.web.1280.1280.jpeg"]["format"] == "image/jpeg"
    assert len(items) == 6
    r = await client.get(
        f"/adobe/assets/{photo.urn}/renditions",
        headers={"Authorization": f"Bearer {tokens.read}", "If-None-Match": r.headers["etag"]},
    )
    assert r.status_code == 304

    base = f"/adobe/assets/{photo.urn}/renditions/cq5dam.thumbnail.48.48.png/as/thumb.png"
    r = await client.get(base, headers=adobe(tokens.read))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"].startswith("inline;")
    assert int(r.headers["content-length"]) == items["cq5dam.thumbnail.48.48.png"]["size"]
    for value, kind in (
        ("true", "attachment"),
        ("1", "attachment"),
        ("false", "inline"),
        ("0", "inline"),
    ):
        r = await client.get(f"{base}?attachment={value}", headers=adobe(tokens.read))
        assert r.headers["content-disposition"].startswith(kind + ";"), value
    assert is_problem(await client.get(f"{base}?attachment=yes", headers=adobe(tokens.read)), 400)
    r = await client.get(f"{base}", headers={**adobe(tokens.read), "Range": "bytes=0-9"})
    assert r.status_code == 206 and len(r.content) == 10
    missing = f"/adobe/assets/{photo.urn}/renditions/nope.png/as/x.png"
    assert is_problem(await client.get(missing, headers=adobe(tokens.read)), 404)
    original = f"/adobe/assets/{photo.urn}/renditions/original/as/x.jpg?attachment=1"
    r = await client.get(original, headers=adobe(tokens.read))
    assert r.status_code == 200 and len(r.content) == photo.size
    assert r.headers["content-disposition"].startswith("attachment;")


@ON_S3_TOO
async def test_delete_unreferenced_asset_is_204(
    client: httpx.AsyncClient, tokens: Tokens, photo: Node, services: Services
) -> None:
    r = await client.delete(f"/adobe/assets/{photo.urn}", headers=adobe(tokens.write))
    assert r.status_code == 204
    assert await services.tree.find_by_id(photo.id) is None
    r = await client.delete(f"/adobe/assets/{photo.urn}", headers=adobe(tokens.write))
    assert is_problem(r, 404)


@ON_S3_TOO
async def test_delete_referenced_asset_needs_force_and_runs_as_a_job(
    client: httpx.AsyncClient, tokens: Tokens, photo: Node, services: Services
) -> None:
    other = await make_asset(services, "other.txt", b"other", "text/plain")
    r = await client.post(
        f"/adobe/assets/{other.urn}/relations",
        json={"items": [{"relationType": "sources", "relatedAssetId": photo.urn}]},
        headers=adobe(tokens.write),
    )
    assert r.status_code == 204
    before = await snapshot(services)
    r = await client.delete(f"/adobe/assets/{photo.urn}", headers=adobe(tokens.write))
    assert is_problem(r, 409) and "force=true" in r.json()["detail"]
    assert await snapshot(services) == before
    assert is_problem(
        await client.delete(f"/adobe/assets/{photo.urn}?force=maybe", headers=adobe(tokens.write)),
        400,
    )

    r = await client.delete(f"/adobe/assets/{photo.urn}?force=true", headers=adobe(tokens.write))
    assert r.status_code == 202
    job = r.json()
    assert job["state"] == "PROCESSING" and r.headers["location"].endswith("/status")
    status_url = f"/adobe/assets/jobs/{job['jobId']}/status"
    r = await client.get(status_url, headers=adobe(tokens.read))
    assert r.status_code == 200 and r.json() == {"jobId": job["jobId"], "state": "PROCESSING"}
    assert is_problem(
        await client.get(f"/adobe/assets/jobs/{job['jobId']}/result", headers=adobe(tokens.read)),
        404,
    )
    await process_all(services)
    r = await client.get(status_url, headers=adobe(tokens.read), follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/adobe/assets/jobs/{job['jobId']}/result"
    r = await client.get(r.headers["location"], headers=adobe(tokens.read))
    assert r.status_code == 200 and r.json()["state"] == "COMPLETED"
    assert await services.tree.find_by_id(photo.id) is None
    r = await client.get(f"/adobe/assets/{other.urn}/relations", headers=adobe(tokens.read))
    assert r.json() == {"items": []}


async def test_unknown_job_is_404(client: httpx.AsyncClient, tokens: Tokens) -> None:
    r = await client.get(f"/adobe/assets/jobs/{uuid.uuid4()}/status", headers=adobe(tokens.read))
    assert is_problem(r, 404)
