"""The admin API of snapshots and reset: admin scope only, problem+json refusals, the
state of the save back after a restore, an empty DAM after a reset, and the restore gate
at the door (503 with Retry-After while it is closed) on SQLite; on PostgreSQL a reset
that empties the database and the blob store, and a clear refusal of snapshots."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from assetvault.services import Services
from tests.conftest import Tokens
from tests.factories import bearer, make_assets


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"gate_wait_seconds": 0.0}


def sqlite_only(services: Services) -> None:
    if not services.db.is_sqlite:
        pytest.skip("snapshots are of the embedded default")


async def paths(client: httpx.AsyncClient, token: str) -> list[str]:
    r = await client.get("/api/assets.json", headers=bearer(token))
    assert r.status_code == 200, r.text
    return sorted(e["properties"]["name"] for e in r.json().get("entities", []))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_assetvault/snapshots"),
        ("POST", "/_assetvault/snapshots"),
        ("POST", "/_assetvault/snapshots/x/restore"),
        ("DELETE", "/_assetvault/snapshots/x"),
        ("GET", "/_assetvault/snapshots/x/archive"),
        ("PUT", "/_assetvault/snapshots/x/archive"),
        ("POST", "/_assetvault/reset"),
    ],
)
async def test_admin_scope_only(
    client: httpx.AsyncClient, tokens: Tokens, method: str, path: str
) -> None:
    assert (await client.request(method, path)).status_code == 401
    for token in (tokens.read, tokens.write):
        r = await client.request(method, path, headers=bearer(token), json={"name": "x"})
        assert r.status_code == 403, r.text


async def test_save_change_restore(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    sqlite_only(services)
    admin = bearer(tokens.admin)
    await make_assets(services, [("granite.jpg", {"dc:title": "granite"})])
    r = await client.post("/_assetvault/snapshots", json={"name": "start"}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["assets"] == 1
    listed = (await client.get("/_assetvault/snapshots", headers=admin)).json()["snapshots"]
    assert [s["name"] for s in listed] == ["start"]
    await make_assets(services, [("marble.jpg", {"dc:title": "marble"})])
    assert await paths(client, tokens.read) == ["granite.jpg", "marble.jpg"]

    r = await client.post("/_assetvault/snapshots/start/restore", headers=admin)
    assert r.status_code == 200, r.text
    assert await paths(client, tokens.read) == ["granite.jpg"]
    r = await client.post(
        "/adobe/assets/search?allowUnsafeSearch=true",
        json={"query": [{"match": {"text": "marble"}}]},
        headers={**bearer(tokens.read), "X-Api-Key": "k"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["hits"]["results"] == []

    r = await client.delete("/_assetvault/snapshots/start", headers=admin)
    assert r.status_code == 204
    r = await client.post("/_assetvault/snapshots/start/restore", headers=admin)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


async def test_a_snapshot_travels_as_one_tar_file(
    client: httpx.AsyncClient, services: Services, tokens: Tokens, tmp_path: Path
) -> None:
    """GET .../archive sends a snapshot as one tar file (its length said first), and PUT
    .../archive takes one back under a name, ready to restore, on this server or another."""
    sqlite_only(services)
    admin = bearer(tokens.admin)
    await make_assets(services, [("granite.jpg", {"dc:title": "granite"})])
    assert (
        await client.post("/_assetvault/snapshots", json={"name": "start"}, headers=admin)
    ).status_code == 201
    r = await client.get("/_assetvault/snapshots/start/archive", headers=admin)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-tar"
    assert int(r.headers["content-length"]) == len(r.content)
    archive = r.content
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = tar.getnames()
        assert {"manifest.json", "assetvault.db", "keys"} <= set(names)
        blobs = [m for m in tar.getmembers() if m.name.startswith("blobs/") and m.isfile()]
        (blob,) = blobs
        assert tar.extractfile(blob).read() == b"granite.jpg"
    # The same bytes as a save to a file path on the server would write, once unpacked.
    saved = tmp_path / "start.tar"
    r = await client.post("/_assetvault/snapshots", json={"name": str(saved)}, headers=admin)
    assert r.status_code == 201, r.text
    with tarfile.open(saved) as tar:  # (each save builds its index under a name of its own)
        assert [n for n in sorted(tar.getnames()) if not n.startswith("search/")] == [
            n for n in sorted(names) if not n.startswith("search/")
        ]

    await make_assets(services, [("marble.jpg", {"dc:title": "marble"})])
    r = await client.put(
        "/_assetvault/snapshots/sent/archive",
        content=archive,
        headers={**admin, "Content-Type": "application/x-tar"},
    )
    assert r.status_code == 201, r.text
    assert (r.json()["name"], r.json()["assets"]) == ("sent", 1)
    r = await client.post("/_assetvault/snapshots/sent/restore", headers=admin)
    assert r.status_code == 200, r.text
    assert await paths(client, tokens.read) == ["granite.jpg"]
    listed = (await client.get("/_assetvault/snapshots", headers=admin)).json()["snapshots"]
    assert sorted(s["name"] for s in listed) == ["sent", "start"]
    # Nothing of the transfer is left beside the snapshots.
    kept = services.settings.data_dir / "snapshots"
    assert sorted(p.name for p in kept.iterdir()) == ["sent", "start"]


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


async def test_a_sent_file_that_is_no_snapshot_for_this_version_is_refused(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    sqlite_only(services)
    admin = {**bearer(tokens.admin), "Content-Type": "application/x-tar"}
    assert (
        await client.post("/_assetvault/snapshots", json={"name": "start"}, headers=admin)
    ).status_code == 201
    good = (await client.get("/_assetvault/snapshots/start/archive", headers=admin)).content
    with tarfile.open(fileobj=io.BytesIO(good)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    manifest = json.loads(files["manifest.json"])
    newer = {**files, "manifest.json": json.dumps({**manifest, "formatVersion": 99}).encode()}
    unknown = {
        **files,
        "manifest.json": json.dumps({**manifest, "schemaRevisions": ["9999_later"]}).encode(),
    }
    cases = [
        (b"not a tar file at all", 400, "not a snapshot archive"),
        (_tar({"readme.txt": b"hello"}), 400, "not an Assetvault snapshot"),
        (_tar(newer), 409, "newer Assetvault"),
        (_tar(unknown), 409, "does not know"),
    ]
    for body, status, reason in cases:
        r = await client.put("/_assetvault/snapshots/sent/archive", content=body, headers=admin)
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert reason in r.json()["detail"]
    r = await client.put("/_assetvault/snapshots/bad%20name/archive", content=good, headers=admin)
    assert r.status_code == 400, r.text
    assert "no snapshot name" in r.json()["detail"]
    r = await client.get("/_assetvault/snapshots/missing/archive", headers=admin)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    # Nothing was kept of the refused files.
    kept = services.settings.data_dir / "snapshots"
    assert sorted(p.name for p in kept.iterdir()) == ["start"]


async def test_bad_input_is_refused(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    sqlite_only(services)
    admin = bearer(tokens.admin)
    for body in ({"name": "../x"}, {"name": ""}, {"nom": "x"}, {"name": "/etc/passwd"}):
        r = await client.post("/_assetvault/snapshots", json=body, headers=admin)
        assert r.status_code == 400, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    r = await client.post("/_assetvault/reset", json={"keepTokens": "maybe"}, headers=admin)
    assert r.status_code == 400


async def test_reset(client: httpx.AsyncClient, services: Services, tokens: Tokens) -> None:
    made = await make_assets(services, [("granite.jpg", {}), ("basalt.jpg", {})])
    r = await client.post("/_assetvault/reset", headers=bearer(tokens.admin))
    assert r.status_code == 200, r.text
    assert r.json()["assets"] == 0
    assert await paths(client, tokens.read) == []
    r = await client.get("/api/assets.json", headers=bearer(tokens.read))
    assert r.status_code == 200  # the root folder, as on a fresh start, the tokens kept
    if not services.db.is_sqlite:
        # On PostgreSQL the binaries go with the rows (there are no snapshots to share
        # them); on SQLite they are left to the sweep.
        for asset in made:
            assert await services.blobs.size(asset.blob_key) is None

    r = await client.post(
        "/_assetvault/reset", json={"keepTokens": False}, headers=bearer(tokens.admin)
    )
    assert r.status_code == 200
    assert (await client.get("/api/assets.json", headers=bearer(tokens.read))).status_code == 401
    assert (await client.get("/api/assets.json", headers=bearer(tokens.admin))).status_code == 401


async def test_a_closed_gate_answers_503_with_retry_after(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    with services.gate.closed_for_restore(1.0):
        r = await client.get("/api/assets.json", headers=bearer(tokens.read))
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        r = await client.get(
            "/adobe/assets/urn:aaid:aem:x", headers={**bearer(tokens.read), "X-Api-Key": "k"}
        )
        assert r.status_code == 503
        assert r.headers["content-type"] == "application/problem+json"
        # The admin API and the health check are not behind the gate.
        assert (await client.get("/health")).status_code == 200
    assert (await client.get("/api/assets.json", headers=bearer(tokens.read))).status_code == 200


async def test_postgresql_refuses_snapshots_with_the_reason(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    if services.db.is_sqlite:
        pytest.skip("the refusal is PostgreSQL's")
    r = await client.post(
        "/_assetvault/snapshots", json={"name": "x"}, headers=bearer(tokens.admin)
    )
    assert r.status_code == 501
    assert "pg_dump" in r.json()["detail"]
    r = await client.get("/_assetvault/snapshots/x/archive", headers=bearer(tokens.admin))
    assert r.status_code == 501
    r = await client.put(
        "/_assetvault/snapshots/x/archive", content=b"x", headers=bearer(tokens.admin)
    )
    assert r.status_code == 501
