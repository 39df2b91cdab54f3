"""Fault injection and the request journal on a real ``assetvault serve`` with two API
processes: exact counts across them, the real @adobe/aem-upload client retrying part
PUTs answered 503 and still uploading every byte, latency on searches, a response cut
off mid-body, and the journal's "exactly one completeUpload for this folder"."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import ASSETVAULT, LiveServer, create_token

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
MiB = 2**20
FAULTS = "/_assetvault/faults"
JOURNAL = "/_assetvault/journal"


@pytest.fixture(scope="module")
def server_with_harness(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LiveServer, str]]:
    """One server for the module's tests (a start is slow on a loaded machine)."""
    server = LiveServer(
        data_dir=tmp_path_factory.mktemp("harness") / "data",
        extra_args=["--faults", "--journal", "1000"],
        # 1 MiB parts: a 5 MiB file goes up in five part PUTs.
        env={"ASSETVAULT_UPLOAD_PREFERRED_PART_SIZE": str(MiB)},
    ).start()
    yield server, create_token(server.data_dir, "harness", "admin")
    server.stop()


@pytest.fixture
def harnessed(server_with_harness: tuple[LiveServer, str]) -> tuple[LiveServer, str]:
    """The module's server, without the last test's rules and journal."""
    server, token = server_with_harness
    auth = {"Authorization": f"Bearer {token}"}
    for path in (FAULTS, JOURNAL):
        assert httpx.delete(server.url + path, headers=auth).status_code == 200
    return server_with_harness


def cli(server: LiveServer, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ASSETVAULT, *args, "--url", server.url, "--token", token],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_counts_are_exact_across_api_processes(harnessed: tuple[LiveServer, str]) -> None:
    server, token = harnessed
    auth = {"Authorization": f"Bearer {token}"}
    r = httpx.post(
        server.url + FAULTS,
        json={"path": "/api.json", "count": 7, "status": 503},
        headers=auth,
    )
    assert r.status_code == 201, r.text

    def one(_: int) -> int:
        # A connection of its own each: the kernel hands them to both processes.
        return httpx.get(server.url + "/api.json", headers=auth, timeout=60).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(one, range(80)))
    assert statuses.count(503) == 7 and statuses.count(200) == 73
    (rule,) = httpx.get(server.url + FAULTS, headers=auth).json()["faults"]
    assert (rule["remaining"], rule["matched"], rule["fired"]) == (0, 7, 7)
    # Each answer is in the journal, the 503s with their rule.
    found = httpx.get(server.url + JOURNAL, params={"path": "/api.json"}, headers=auth).json()
    assert sorted(e["status"] for e in found["entries"]) == sorted(statuses)
    assert {e["fault"] for e in found["entries"] if e["status"] == 503} == {rule["id"]}


@pytest.mark.skipif(
    not (HERE / "node_modules" / "@adobe" / "aem-upload").is_dir(),
    reason="needs node and `npm install` in tests/e2e",
)
def test_aem_upload_survives_503_part_puts_by_its_own_retries(
    harnessed: tuple[LiveServer, str], tmp_path: Path
) -> None:
    from tests.e2e.test_aem_upload import part_puts, run_client

    server, token = harnessed
    auth = {"Authorization": f"Bearer {token}"}
    # Through the CLI, as a CI script would.
    added = cli(
        server,
        token,
        "faults",
        "add",
        "--method",
        "PUT",
        "--path",
        "/binary-upload/*",
        "--count",
        "2",
        "--status",
        "503",
        "--json",
    )
    assert added.returncode == 0, added.stderr
    rule = json.loads(added.stdout)
    local = tmp_path / "faulty"
    local.mkdir()
    data = {"big.bin": os.urandom(5 * MiB + 123), "small.txt": b"small file\n" * 10}
    for name, content in data.items():
        (local / name).write_bytes(content)

    summary = run_client(server, token, local, "/content/dam/faults", retryCount=4)
    assert summary["totalFiles"] == summary["completedFiles"] == 2
    puts = [e for e in summary["http"] if e["method"] == "PUT"]
    assert [e["status"] for e in puts].count(503) == 2, puts
    assert len(puts) == sum(len(p) for p in part_puts(summary).values())
    assert max(len(p) for p in part_puts(summary).values()) >= 5  # the big one: 5+ parts
    for name, content in data.items():
        r = httpx.get(f"{server.url}/content/dam/faults/faulty/{name}", headers=auth, timeout=60)
        assert r.status_code == 200, r.text[:300]
        assert hashlib.sha256(r.content).digest() == hashlib.sha256(content).digest(), name

    listed = json.loads(cli(server, token, "faults", "list", "--json").stdout)
    assert [(x["id"], x["fired"], x["remaining"]) for x in listed] == [(rule["id"], 2, 0)]

    # The journal: exactly one completeUpload per file of this folder, all answered 200;
    # the two 503s were the rule's, and every part that answered 201 is there.
    entries = json.loads(
        cli(
            server,
            token,
            "journal",
            "list",
            "--method",
            "POST",
            "--path",
            "/content/dam/faults/faulty.completeUpload.json",
            "--json",
        ).stdout
    )
    assert len(entries) == 2 and {e["status"] for e in entries} == {200}
    failed = json.loads(cli(server, token, "journal", "list", "--status", "503", "--json").stdout)
    assert [(e["method"], e["fault"]) for e in failed] == [("PUT", rule["id"])] * 2
    assert cli(server, token, "journal", "clear").returncode == 0
    assert json.loads(cli(server, token, "journal", "list", "--json").stdout) == []


def test_searches_take_two_seconds(harnessed: tuple[LiveServer, str]) -> None:
    server, token = harnessed
    headers = {"Authorization": f"Bearer {token}", "X-Api-Key": "e2e"}
    added = cli(
        server,
        token,
        "faults",
        "add",
        "--method",
        "POST",
        "--path",
        "/adobe/assets/search",
        "--delay",
        "2",
    )
    assert added.returncode == 0, added.stderr

    def timed(method: str, path: str, **kw: Any) -> tuple[int, float]:
        began = time.monotonic()
        r = httpx.request(method, server.url + path, headers=headers, timeout=30, **kw)
        return r.status_code, time.monotonic() - began

    search = {"query": [{"match": {"text": "*"}}]}
    for _ in range(2):  # whichever process answers
        status, took = timed("POST", "/adobe/assets/search?allowUnsafeSearch=true", json=search)
        assert status == 200 and took >= 2.0, (status, took)
    status, took = timed("GET", "/api.json")
    assert status == 200 and took < 2.0
    listed = cli(server, token, "faults", "list")
    assert "POST /adobe/assets/search" in listed.stdout and "+2.0 s" in listed.stdout
    cleared = cli(server, token, "faults", "clear")
    assert cleared.returncode == 0 and "removed 1 rule" in cleared.stdout
    status, took = timed("POST", "/adobe/assets/search?allowUnsafeSearch=true", json=search)
    assert status == 200 and took < 2.0


def test_a_response_cut_off_mid_body(harnessed: tuple[LiveServer, str]) -> None:
    server, token = harnessed
    auth = {"Authorization": f"Bearer {token}"}
    whole = httpx.get(server.url + "/api.json", headers=auth)
    assert whole.status_code == 200
    r = httpx.post(
        server.url + FAULTS,
        json={"path": "/api.json", "method": "GET", "count": 1, "drop": True},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    received = bytearray()
    with (
        pytest.raises(httpx.RemoteProtocolError, match=r"incomplete|closed"),
        httpx.stream("GET", server.url + "/api.json", headers=auth) as cut,
    ):
        assert cut.status_code == 200  # the status line and headers came
        assert int(cut.headers["content-length"]) == len(whole.content)
        for chunk in cut.iter_raw():
            received += chunk
    assert 0 < len(received) < len(whole.content)
    assert whole.content.startswith(bytes(received))
    # The next request is whole again, and the server is none the worse.
    assert httpx.get(server.url + "/api.json", headers=auth).content == whole.content
    found = httpx.get(server.url + JOURNAL, params={"path": "/api.json"}, headers=auth).json()[
        "entries"
    ]
    assert [(e["dropped"], e["responseBytes"]) for e in found] == [
        (False, len(whole.content)),
        (True, len(received)),
        (False, len(whole.content)),
    ]
    assert "Traceback" not in (server.log_path.read_text() if server.log_path else "")


def test_refused_without_faults_at_start(live_server: LiveServer, admin_token: str) -> None:
    listed = cli(live_server, admin_token, "faults", "list")
    assert listed.returncode == 2
    assert "serve --faults" in listed.stderr
    journal = cli(live_server, admin_token, "journal", "list")
    assert journal.returncode == 2 and "serve --journal" in journal.stderr
    assert not (live_server.data_dir / "faults.db").exists()
