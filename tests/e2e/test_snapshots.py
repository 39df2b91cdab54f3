"""Snapshots and reset against a real ``assetvault serve`` (two API processes, the
worker and the background role), driven by the CLI and read back through the Author
API, the classic API and search: the state of the save comes back whole, requests that
arrive during a restore wait or are answered 503 with Retry-After (never a mix), a
snapshot of a newer format is refused, and a reset empties the DAM within a second."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import ASSETVAULT, LiveServer

pytestmark = pytest.mark.e2e


def cli(server: LiveServer, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ASSETVAULT, *args, "--url", server.url, "--token", token],
        capture_output=True,
        text=True,
        timeout=300,
    )


def names(http: httpx.Client) -> list[str]:
    r = http.get("/api/assets.json")
    assert r.status_code == 200, r.text
    return sorted(e["properties"]["name"] for e in r.json().get("entities", []))


def upload(http: httpx.Client, name: str, data: bytes) -> str:
    r = http.post(
        "/content/dam.initiateUpload.json", data={"fileName": name, "fileSize": str(len(data))}
    )
    assert r.status_code == 201, r.text
    file = r.json()["files"][0]
    assert httpx.put(file["uploadURIs"][0], content=data).status_code == 201
    r = http.post(
        "/content/dam.completeUpload.json",
        data={
            "fileName": name,
            "fileSize": str(len(data)),
            "mimeType": "text/plain",
            "uploadToken": file["uploadToken"],
        },
    )
    assert r.status_code == 200, r.text
    return name


def asset_id(http: httpx.Client, name: str) -> str:
    r = http.post(
        "/adobe/assets/search?allowUnsafeSearch=true",
        json={"query": [{"match": {"text": name}}]},
    )
    assert r.status_code == 200, r.text
    hits = [h for h in r.json()["hits"]["results"] if h["repositoryMetadata"]["repo:name"] == name]
    assert hits, r.text
    return str(hits[0]["assetId"])


def title(http: httpx.Client, node: str) -> Any:
    r = http.get(f"/adobe/assets/{node}/metadata")
    assert r.status_code == 200, r.text
    return r.json()["assetMetadata"].get("dc:title")


def set_title(http: httpx.Client, node: str, value: str) -> None:
    r = http.patch(
        f"/adobe/assets/{node}/metadata",
        content=json.dumps([{"op": "add", "path": "/dc:title", "value": value}]),
        headers={"Content-Type": "application/json-patch+json", "If-Match": "*"},
    )
    assert r.status_code == 200, r.text


def found(http: httpx.Client, text: str) -> list[str]:
    r = http.post(
        "/adobe/assets/search?allowUnsafeSearch=true",
        json={"query": [{"match": {"text": text}}]},
    )
    assert r.status_code == 200, r.text
    return sorted(h["repositoryMetadata"]["repo:name"] for h in r.json()["hits"]["results"])


def test_save_change_restore_and_reset(
    live_server: LiveServer, admin_token: str, tmp_path: Path
) -> None:
    http = httpx.Client(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {admin_token}", "X-Api-Key": "e2e"},
        timeout=60,
    )
    upload(http, "granite.txt", b"granite " * 1000)
    upload(http, "basalt.txt", b"basalt " * 1000)
    granite = asset_id(http, "granite.txt")
    set_title(http, granite, "Granite")
    saved = cli(live_server, admin_token, "snapshot", "save", "start")
    assert saved.returncode == 0, saved.stderr
    exported = cli(live_server, admin_token, "snapshot", "save", str(tmp_path / "start.tar"))
    assert exported.returncode == 0, exported.stderr

    # Changes after the save: through the classic API, direct upload and the Author API.
    upload(http, "marble.txt", b"marble " * 1000)
    assert http.delete("/api/assets/basalt.txt").status_code == 200
    set_title(http, granite, "Granite, changed")
    assert names(http) == ["granite.txt", "marble.txt"]
    assert found(http, "marble.txt") == ["marble.txt"]

    # Requests all through the restore: each sees the state before or after, or waits
    # and is answered 503 with Retry-After; none sees a mix.
    answers: list[tuple[int, list[str] | None, str | None]] = []
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(
            base_url=live_server.url,
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=60,
        ) as c:
            while not stop.is_set():
                r = c.get("/api/assets.json")
                listed = (
                    sorted(e["properties"]["name"] for e in r.json().get("entities", []))
                    if r.status_code == 200
                    else None
                )
                answers.append((r.status_code, listed, r.headers.get("retry-after")))

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        time.sleep(0.3)
        restored = cli(live_server, admin_token, "snapshot", "restore", "start")
        time.sleep(0.3)
    finally:
        stop.set()
        poller.join()
    assert restored.returncode == 0, restored.stderr
    assert answers
    for status, listed, retry_after in answers:
        assert status in (200, 503), status
        if status == 503:
            assert retry_after is not None
        else:
            assert listed in (["granite.txt", "marble.txt"], ["basalt.txt", "granite.txt"])
    assert answers[-1][1] == ["basalt.txt", "granite.txt"]

    # The state of the save, through every interface.
    assert names(http) == ["basalt.txt", "granite.txt"]
    assert title(http, granite) == "Granite"
    assert found(http, "marble.txt") == []
    assert found(http, "basalt.txt") == ["basalt.txt"]
    r = http.get(f"/adobe/assets/{asset_id(http, 'basalt.txt')}/original/as/basalt.txt")
    assert r.status_code == 200 and r.content == b"basalt " * 1000
    # Life goes on after it: a new upload is found by search (the background role,
    # started again after the restore, indexes it).
    upload(http, "slate.txt", b"slate")
    deadline = time.monotonic() + 60
    while found(http, "slate.txt") != ["slate.txt"]:
        assert time.monotonic() < deadline, "the upload after the restore is never indexed"
        time.sleep(0.5)

    # A snapshot of a newer format is refused, with the reason, and changes nothing.
    snapshots = live_server.data_dir / "snapshots"
    shutil.copytree(snapshots / "start", snapshots / "future")
    manifest = json.loads((snapshots / "future" / "manifest.json").read_text())
    manifest["formatVersion"] += 1
    (snapshots / "future" / "manifest.json").write_text(json.dumps(manifest))
    refused = cli(live_server, admin_token, "snapshot", "restore", "future")
    assert refused.returncode == 2
    assert "newer Assetvault" in refused.stderr
    assert names(http) == ["basalt.txt", "granite.txt", "slate.txt"]

    listed = cli(live_server, admin_token, "snapshot", "list", "--json")
    assert sorted(s["name"] for s in json.loads(listed.stdout)) == ["future", "start"]

    # Reset: an empty DAM within a second; the admin token still works.
    started = time.monotonic()
    r = http.post("/_assetvault/reset")
    took = time.monotonic() - started
    assert r.status_code == 200, r.text
    assert r.json()["seconds"] < 1.0, r.json()
    assert took < 3.0, took  # the HTTP round trip on a loaded machine included
    assert names(http) == []
    assert found(http, "granite.txt") == []
    reset = cli(live_server, admin_token, "reset", "--yes")
    assert reset.returncode == 0, reset.stderr

    # The exported file starts another server on an empty data directory, with the
    # state of the save (its tokens included: the admin token was made before it).
    other = LiveServer(
        data_dir=tmp_path / "other", extra_args=["--snapshot", str(tmp_path / "start.tar")]
    ).start()
    try:
        with httpx.Client(
            base_url=other.url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=60
        ) as elsewhere:
            assert names(elsewhere) == ["basalt.txt", "granite.txt"]
    finally:
        other.stop()


def test_the_commands_find_a_running_server_in_the_environment(
    live_server: LiveServer, admin_token: str, tmp_path: Path
) -> None:
    """ASSETVAULT_URL/ASSETVAULT_TOKEN instead of --url/--token; a snapshot file saved
    from and restored to the running server (sent over HTTP); --data-dir refused while it
    runs; reset asks first."""
    import os

    env = {**os.environ, "ASSETVAULT_URL": live_server.url, "ASSETVAULT_TOKEN": admin_token}

    def av(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [ASSETVAULT, *args], capture_output=True, text=True, timeout=300, env=env
        )

    http = httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=60
    )
    upload(http, "granite.txt", b"granite")
    file = tmp_path / "state.tar"
    saved = av("snapshot", "save", str(file))
    assert saved.returncode == 0, saved.stderr
    assert "saved state.tar: 1 asset(s)" in saved.stdout
    assert file.is_file()
    by_name = av("snapshot", "save", "named")
    assert by_name.returncode == 0, by_name.stderr

    upload(http, "marble.txt", b"marble")
    restored = av("snapshot", "restore", str(file))
    assert restored.returncode == 0, restored.stderr
    assert names(http) == ["granite.txt"]

    upload(http, "slate.txt", b"slate")
    restored = av("snapshot", "restore", "named")
    assert restored.returncode == 0, restored.stderr
    assert names(http) == ["granite.txt"]
    # The file went over HTTP both ways: nothing of the transfer stays on the server.
    listed = av("snapshot", "list", "--json")
    assert [s["name"] for s in json.loads(listed.stdout)] == ["named"]
    missing = av("snapshot", "restore", str(tmp_path / "missing.tar"))
    assert missing.returncode == 2 and "no snapshot file" in missing.stderr

    # The running server's data directory is not for --data-dir (nor is any change made).
    local = av("snapshot", "restore", "named", "--data-dir", str(live_server.data_dir))
    assert local.returncode == 2 and "reach it with --url/--token" in local.stderr
    local = av("reset", "--yes", "--data-dir", str(live_server.data_dir))
    assert local.returncode == 2 and "reach it with --url/--token" in local.stderr
    assert names(http) == ["granite.txt"]

    # reset asks first: with no terminal to ask on, nothing happens without --yes.
    asked = av("reset")
    assert asked.returncode == 2 and "pass --yes" in asked.stderr
    assert names(http) == ["granite.txt"]
    reset = av("reset", "--yes")
    assert reset.returncode == 0, reset.stderr
    assert names(http) == []

    # A wrong token is refused with the server's reason, and changes nothing.
    upload(http, "basalt.txt", b"basalt")
    env["ASSETVAULT_TOKEN"] = "av_not_a_token"
    refused = av("reset", "--yes")
    assert refused.returncode == 2 and "401" in refused.stderr
    assert names(http) == ["basalt.txt"]


def _private_mounts() -> bool:
    """Whether this machine lets a process have mounts of its own (root, or user
    namespaces): how a test shows a file system the server does not see."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs none /mnt"], capture_output=True
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _private_mounts(), reason="needs unshare -m (mounts of its own)")
def test_a_snapshot_file_is_where_the_command_runs_not_where_the_server_runs(
    live_server: LiveServer, admin_token: str, tmp_path: Path
) -> None:
    """The CLI runs with a directory of its own (a tmpfs mounted in its own mount
    namespace, which the server cannot see, as on another machine or outside the
    server's container): the file it saves lands there, and the file it restores is
    read from there."""
    import os

    http = httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=60
    )
    upload(http, "granite.txt", b"granite")
    own, out = tmp_path / "own", tmp_path / "out"
    own.mkdir()
    out.mkdir()
    env = {**os.environ, "ASSETVAULT_URL": live_server.url, "ASSETVAULT_TOKEN": admin_token}

    def in_own_directory(script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "unshare",
                "-m",
                "sh",
                "-ec",
                'mount -t tmpfs none "$1"\n' + script,
                "sh",
                str(own),
                str(out),
                ASSETVAULT,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )

    saved = in_own_directory('"$3" snapshot save "$1/state.tar"\ncp "$1/state.tar" "$2/"')
    assert saved.returncode == 0, saved.stdout + saved.stderr
    assert (out / "state.tar").is_file()
    assert list(own.iterdir()) == []  # nothing was written on the server's side

    upload(http, "marble.txt", b"marble")
    restored = in_own_directory('cp "$2/state.tar" "$1/"\n"$3" snapshot restore "$1/state.tar"')
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert names(http) == ["granite.txt"]
