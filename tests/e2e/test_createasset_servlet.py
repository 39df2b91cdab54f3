"""@adobe/httptransfer's own create-asset servlet e2e suite (e2e/createassetservletupload
.test.js, as its npm package ships it) against a server started with direct binary
upload off, on each database: the client finds no completeURI in the initiate answer,
falls back to ``<folder>.createasset.html`` by itself, and sends a 282,584-byte JPEG in
one request and two more in 200,000-byte chunks. The suite is run unchanged with mocha;
what the client sent is then checked from outside (its HTTP exchanges, the stored
bytes)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live import LiveServer, create_token

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
PACKAGE = HERE / "node_modules" / "@adobe" / "httptransfer"
SUITE = PACKAGE / "e2e" / "createassetservletupload.test.js"
IMAGE = PACKAGE / "e2e" / "images" / "freeride-siberia.jpg"
MOCHA = HERE / "node_modules" / "mocha" / "bin" / "mocha.js"

if shutil.which("node") is None or not SUITE.is_file() or not MOCHA.is_file():
    pytest.skip(
        "needs node and `npm install` in tests/e2e (scripts/bootstrap.sh)",
        allow_module_level=True,
    )


@pytest.fixture
def server(tmp_path: Path, database_env: dict[str, str]) -> Iterator[LiveServer]:
    live = LiveServer(
        data_dir=tmp_path / "data", env=database_env, extra_args=["--no-direct-binary-upload"]
    )
    live.start()
    yield live
    live.stop()


def test_httptransfers_own_servlet_suite_passes(server: LiveServer, tmp_path: Path) -> None:
    token = create_token(server.data_dir, "httptransfer-e2e", "write", env=server.env)
    exchanges_file = tmp_path / "exchanges.jsonl"
    env = {
        **os.environ,
        "AEM_ENDPOINT_NO_DIRECT_BINARY": server.url,
        # Basic, as the suite sends it; the token is the password.
        "BASIC_AUTH_NO_DIRECT_BINARY": f"e2e:{token}",
        "EXCHANGES_FILE": str(exchanges_file),
    }
    proc = subprocess.run(
        [
            "node",
            "--require",
            str(HERE / "exchanges.js"),
            str(MOCHA),
            "--timeout",
            "120000",
            str(SUITE),
        ],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "2 passing" in output, output
    assert "failing" not in output, output

    exchanges = [json.loads(line) for line in exchanges_file.read_text().splitlines()]
    initiates = [e for e in exchanges if e["path"].endswith(".initiateUpload.json")]
    servlet = [e for e in exchanges if e["path"] == "/content/dam.createasset.html"]
    # One probe initiate per upload call, answered 2xx without completeURI.
    assert len(initiates) == 2 and all(e["status"] == 201 for e in initiates), exchanges
    # One request for the single file, two chunks each for the two others.
    assert [e["status"] for e in servlet] == [201, 200, 201, 200, 201], exchanges
    assert not [e for e in exchanges if "completeUpload" in e["path"] or e["status"] >= 400]

    # Three assets, each the suite's image byte for byte.
    expected = hashlib.sha1(IMAGE.read_bytes()).hexdigest()
    auth = {"Authorization": f"Bearer {token}"}
    listing = httpx.get(f"{server.url}/api/assets.json", headers=auth, timeout=30).json()
    names = sorted(
        e["properties"]["name"]
        for e in listing.get("entities", [])
        if e["properties"]["name"].startswith("node-httptransfer_aem-e2e_")
    )
    assert len(names) == 3, names
    for name in names:
        got = httpx.get(f"{server.url}/content/dam/{name}", headers=auth, timeout=30)
        assert got.status_code == 200
        assert got.headers["content-type"] == "image/jpeg"
        assert hashlib.sha1(got.content).hexdigest() == expected, name


def test_aem_upload_falls_back_by_itself(server: LiveServer, tmp_path: Path) -> None:
    """@adobe/aem-upload's FileSystemUpload (folders created first, then the files) on the
    same server: a file larger than the client's 10 MiB part goes in two chunks."""
    token = create_token(server.data_dir, "aem-upload-e2e", "write", env=server.env)
    local = tmp_path / "shoot"
    local.mkdir()
    files = {"big.bin": os.urandom(12 * 2**20 + 7), "small.txt": b"hello" * 100}
    for name, data in files.items():
        (local / name).write_bytes(data)
    proc = subprocess.run(
        ["node", str(HERE / "upload.js"), server.url, token, str(local), "/content/dam/in"],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["completedFiles"] == 2, summary
    servlet = [e for e in summary["http"] if e["path"] == "/content/dam/in/shoot.createasset.html"]
    assert sorted(e["status"] for e in servlet) == [200, 201, 201], summary["http"]
    auth = {"Authorization": f"Bearer {token}"}
    for name, data in files.items():
        got = httpx.get(f"{server.url}/content/dam/in/shoot/{name}", headers=auth, timeout=60)
        assert got.status_code == 200 and got.content == data, name
