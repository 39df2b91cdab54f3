"""A small suite written as Assetvault's users would write theirs, with the pytest plugin:
one server for the session, the baseline (the seeded folder) restored before each test,
fault rules that the real @adobe/aem-upload client survives by its own retries, and
assertions on the request journal."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from assetvault.testing.server import TestServer

pytestmark = pytest.mark.e2e

E2E = Path(__file__).parent.parent / "e2e"
MiB = 2**20


def upload(client: httpx.Client, name: str, data: bytes) -> None:
    """A direct binary upload to /content/dam, in its three requests."""
    r = client.post(
        "/content/dam.initiateUpload.json", data={"fileName": name, "fileSize": str(len(data))}
    )
    assert r.status_code == 201, r.text
    file = r.json()["files"][0]
    assert httpx.put(file["uploadURIs"][0], content=data).status_code == 201
    r = client.post(
        "/content/dam.completeUpload.json",
        data={
            "fileName": name,
            "fileSize": str(len(data)),
            "mimeType": "text/plain",
            "uploadToken": file["uploadToken"],
        },
    )
    assert r.status_code == 200, r.text


def names(client: httpx.Client, folder: str = "") -> list[str]:
    r = client.get(f"/api/assets{folder}.json")
    assert r.status_code == 200, r.text
    return sorted(e["properties"]["name"] for e in r.json().get("entities", []))


@pytest.mark.parametrize("turn", [1, 2])
def test_each_test_starts_from_the_baseline(assetvault: TestServer, turn: int) -> None:
    """Both turns find the seeded state alone, then leave an asset, a changed title, a
    fault rule and journal entries behind: the turn after sees none of them."""
    client = assetvault.client
    assert assetvault.journal.list() == []  # the harness's own requests are not journaled
    assert assetvault.faults.list() == []
    assert names(client) == ["brand", "readme.txt"]
    assert client.get("/api/assets/brand.json").json()["properties"]["dc:title"] == "brand"

    upload(client, "left-behind.txt", b"a test's leftovers\n")
    r = client.put(
        "/api/assets/brand",
        json={"class": "assetFolder", "properties": {"dc:title": f"changed in turn {turn}"}},
    )
    assert r.status_code == 200, r.text
    assetvault.faults.add(method="GET", path="/api/assets/brand.json", status=500)
    assert names(client) == ["brand", "left-behind.txt", "readme.txt"]
    assert client.get("/api/assets/brand.json").status_code == 500
    assert len(assetvault.journal.list(method="POST", path="*.completeUpload.json")) == 1


@pytest.mark.assetvault_fresh
def test_the_marker_restores_for_the_session_fixture(assetvault_server: TestServer) -> None:
    assert names(assetvault_server.client) == ["brand", "readme.txt"]
    assetvault_server.reset()
    assert names(assetvault_server.client) == []


def test_the_client_carries_the_token(assetvault_client: httpx.Client) -> None:
    # An Author API route: it needs the bearer token and an X-Api-Key.
    r = assetvault_client.post(
        "/adobe/assets/search",
        params={"allowUnsafeSearch": "true"},
        json={"query": [{"match": {"text": "guidelines"}}]},
    )
    assert r.status_code == 200, r.text
    (hit,) = r.json()["hits"]["results"]
    assert hit["repositoryMetadata"]["repo:path"] == "/content/dam/brand/guidelines.txt"
    assert hit["assetMetadata"]["dc:title"] == "Brand guidelines"
    # Processing of the seeded assets was over before the baseline was saved.
    assert hit["repositoryMetadata"]["aem:assetState"] == "processed"
    assert httpx.get(assetvault_client.base_url.join("/api/assets.json")).status_code == 401


def run_aem_upload(server: TestServer, local: Path, target: str) -> dict[str, Any]:
    """tests/e2e/upload.js: the real @adobe/aem-upload client, with 4 retries."""
    proc = subprocess.run(
        ["node", "upload.js", server.url, server.token, str(local), target],
        input=None,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=E2E,
        env={**os.environ},
    )
    if proc.returncode != 0:
        pytest.fail(f"aem-upload failed ({proc.returncode}): {proc.stdout[-4000:]}\n{proc.stderr}")
    summary: dict[str, Any] = json.loads(proc.stdout)
    return summary


@pytest.mark.skipif(
    shutil.which("node") is None or not (E2E / "node_modules" / "@adobe" / "aem-upload").is_dir(),
    reason="needs node and `npm install` in tests/e2e",
)
def test_aem_upload_retries_503_part_puts_and_succeeds(
    assetvault: TestServer, tmp_path: Path
) -> None:
    rule = assetvault.faults.add(method="PUT", path="/binary-upload/*", count=2, status=503)
    local = tmp_path / "campaign"
    local.mkdir()
    data = os.urandom(3 * MiB + 17)  # three 1 MiB parts and a bit
    (local / "poster.bin").write_bytes(data)

    summary = run_aem_upload(assetvault, local, "/content/dam/campaign-2026")
    assert summary["completedFiles"] == summary["totalFiles"] == 1
    puts = [e["status"] for e in summary["http"] if e["method"] == "PUT"]
    assert puts.count(503) == 2 and puts.count(201) >= 4, puts

    got = assetvault.client.get("/content/dam/campaign-2026/campaign/poster.bin")
    assert got.status_code == 200
    assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
    (listed,) = assetvault.faults.list()
    assert (listed["id"], listed["fired"], listed["remaining"]) == (rule["id"], 2, 0)

    # The journal: exactly one completeUpload for this folder, answered 200, and the two
    # part PUTs the rule answered 503.
    completes = assetvault.journal.list(
        method="POST", path="/content/dam/campaign-2026/campaign.completeUpload.json"
    )
    assert [e["status"] for e in completes] == [200]
    failed = assetvault.journal.list(status="5xx")
    assert [(e["method"], e["status"], e["fault"]) for e in failed] == [
        ("PUT", 503, rule["id"])
    ] * 2
