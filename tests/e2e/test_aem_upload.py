"""The real @adobe/aem-upload client (FileSystemUpload, deep upload) against a running
server: folders and files with Unicode and spaces, a multi-part 64 MiB file, byte-exact
round trips, and a second upload with createVersion that makes versions, not copies."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.live import LiveServer

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
CLIENT = HERE / "upload.js"
MiB = 2**20
BIG = 64 * MiB

if shutil.which("node") is None or not (HERE / "node_modules" / "@adobe" / "aem-upload").is_dir():
    pytest.skip(
        "needs node and `npm install` in tests/e2e (scripts/bootstrap.sh)",
        allow_module_level=True,
    )

# The client's default node names (src/constants.js, src/filesystem-upload-options.js,
# src/filesystem-upload-utils.js): folders lose . % ; # + ? ^ { } " & and whitespace and
# are lower-cased; assets lose # % { } ? &; both always lose / : [ ] | * \.
FOLDER_CHARS = re.compile(r"[.%;#+?^{}\s\"&]")
ASSET_CHARS = re.compile(r"[#%{}?&]")
ALWAYS = re.compile(r"[/:\[\]|*\\]")


def folder_node(name: str) -> str:
    return ALWAYS.sub("-", FOLDER_CHARS.sub("-", name).lower())


def asset_node(name: str) -> str:
    return ALWAYS.sub("-", ASSET_CHARS.sub("-", name))


BIG_FILE = "Ünïcödé 文件/level two/naïve café/big file.bin"
TREE: dict[str, bytes | None] = {
    "one byte.txt": b"x",
    "readme.md": b"# hello\n" * 100,
    "Ünïcödé 文件/naïve café.txt": "déjà vu 文字 ".encode() * 50,
    "Ünïcödé 文件/level two/data 01.bin": None,  # random, below
    "Ünïcödé 文件/level two/naïve café/deep.json": json.dumps({"a": [1, 2, 3]}).encode(),
    "Ünïcödé 文件/level two/naïve café/Ωμέγα 2.txt": "ωμέγα".encode() * 7,
    BIG_FILE: None,
    "another dir/photo (1).jpg": None,
}


def make_tree(root: Path) -> dict[str, Path]:
    """Writes TREE under root; returns the remote path (relative to the uploaded folder,
    as the client names nodes) of each local file."""
    out: dict[str, Path] = {}
    for rel, data in TREE.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            if rel == BIG_FILE:
                for _ in range(BIG // MiB):
                    fh.write(os.urandom(MiB))
            else:
                fh.write(data if data is not None else os.urandom(300_001))
        parts = rel.split("/")
        remote = "/".join([*(folder_node(p) for p in parts[:-1]), asset_node(parts[-1])])
        out[remote] = path
    return out


def run_client(
    server: LiveServer, token: str, local: Path, target: str, **options: object
) -> dict[str, Any]:
    proc = subprocess.run(
        ["node", str(CLIENT), server.url, token, str(local), target, json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=HERE,
    )
    try:
        summary: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        summary = {"stdout": proc.stdout[-4000:]}
    assert proc.returncode == 0, (
        f"the client failed ({proc.returncode}): {json.dumps(summary, ensure_ascii=False)[:8000]}"
        f"\nstderr: {proc.stderr[-3000:]}\nserver log: {server_log(server)}"
    )
    return summary


def server_log(server: LiveServer) -> str:
    return server.log_path.read_text(errors="replace")[-3000:] if server.log_path else ""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def url_of(path: str) -> str:
    return quote(path, safe="/")


def part_puts(summary: dict[str, Any]) -> dict[str, list[int]]:
    """Upload id -> part numbers the client PUT, from its HTTP log."""
    parts: dict[str, list[int]] = defaultdict(list)
    for e in summary["http"]:
        m = re.fullmatch(r"/binary-upload/([0-9a-f]{32})/(\d+)", e["path"])
        if m and e["method"] == "PUT":
            parts[m[1]].append(int(m[2]))
    return {k: sorted(v) for k, v in parts.items()}


def check_traffic(server: LiveServer, summary: dict[str, Any], *, folders_exist: bool) -> None:
    """Only the direct binary upload protocol, each request answered as AEM would at the
    first try. The client's exit status alone would hide failures: it retries a 5xx and
    takes the 409 that follows as "already exists", and it falls back to .createasset.html
    if it dislikes an initiate response."""
    for e in summary["http"]:
        path, status = e["path"], e["status"]
        if path.startswith("/api/assets/"):
            expected = ("POST", 409 if folders_exist else 201)
        elif path.endswith(".initiateUpload.json"):
            expected = ("POST", 201)
        elif path.endswith(".completeUpload.json"):
            expected = ("POST", 200)
        elif path.startswith("/binary-upload/"):
            expected = ("PUT", 201)
        else:
            expected = ("no such request", 0)
        assert (e["method"], status) == expected, (
            f"{e['method']} {path} answered {status}, expected {expected}"
            f"\nserver log: {server_log(server)}"
        )


def test_filesystem_upload_round_trip_and_versions(
    live_server: LiveServer, admin_token: str, tmp_path: Path
) -> None:
    local = tmp_path / "upload me"
    files = make_tree(local)
    auth = {"Authorization": f"Bearer {admin_token}"}
    http = httpx.Client(base_url=live_server.url, headers=auth, timeout=120)
    # Neither level exists yet: the client creates the target and its parent itself.
    target = "/content/dam/e2e aem-upload/run ünï"
    base = f"{target}/{folder_node(local.name)}"  # the client uploads the folder itself

    summary = run_client(live_server, admin_token, local, target)
    check_traffic(live_server, summary, folders_exist=False)
    assert summary["totalFiles"] == summary["completedFiles"] == len(files)
    assert summary["failedFiles"] == 0 and summary["events"]["fileerror"] == []
    folders = {"/content/dam/e2e aem-upload", target, base} | {
        f"{base}/" + "/".join(remote.split("/")[: i + 1])
        for remote in files
        for i in range(remote.count("/"))
    }
    assert {f["folderPath"] for f in summary["createdFolders"]} == folders
    assert sorted(summary["events"]["fileend"]) == sorted(f"{base}/{r}" for r in files)

    # The 64 MiB file went up in several parts, one per upload URI; the others in one.
    big_remote = "/".join(
        [*(folder_node(p) for p in BIG_FILE.split("/")[:-1]), asset_node("big file.bin")]
    )
    probe = http.post(
        url_of(f"{base}/{big_remote.rsplit('/', 1)[0]}") + ".initiateUpload.json",
        data={"fileName": "probe.bin", "fileSize": str(BIG)},
    )
    assert probe.status_code == 201, probe.text
    uris = probe.json()["files"][0]["uploadURIs"]
    assert len(uris) > 1
    puts = part_puts(summary)
    multi = [p for p in puts.values() if len(p) > 1]
    assert multi == [list(range(1, len(uris) + 1))], puts
    assert len(puts) == len(files)

    # Every file comes back byte for byte.
    for remote, path in files.items():
        r = http.get(url_of(f"{base}/{remote}"))
        assert r.status_code == 200, (remote, r.status_code, r.text[:300])
        assert hashlib.sha256(r.content).hexdigest() == sha256_file(path), remote
        assert int(r.headers["content-length"]) == path.stat().st_size, remote

    # A range of the big file, across a part boundary.
    start = BIG // len(uris) - 50
    part = http.get(
        url_of(f"{base}/{big_remote}"), headers={"Range": f"bytes={start}-{start + 99}"}
    )
    with open(files[big_remote], "rb") as fh:
        fh.seek(start)
        expected = fh.read(100)
    assert part.status_code == 206, part.text[:300]
    assert part.headers["content-range"] == f"bytes {start}-{start + 99}/{BIG}"
    assert part.content == expected

    # Every folder exists: an initiate creates nothing, and answers 404 for a missing one.
    for folder in folders:
        r = http.post(
            url_of(folder) + ".initiateUpload.json", data={"fileName": "x", "fileSize": "1"}
        )
        assert r.status_code == 201, (folder, r.status_code, r.text[:300])
    missing = http.post(
        url_of(base + "/not-there") + ".initiateUpload.json",
        data={"fileName": "x", "fileSize": "1"},
    )
    assert missing.status_code == 404, missing.text[:300]

    db_path = live_server.data_dir / "assetvault.db"

    def query(sql: str, *args: object) -> list[tuple[Any, ...]]:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def assets() -> dict[str, tuple[str, str]]:
        rows = query("SELECT path, id, sha1 FROM nodes WHERE kind = 'asset'")
        return {path: (node_id, sha1) for path, node_id, sha1 in rows}

    before = assets()
    assert set(before) == {f"{base}/{r}" for r in files}
    assert query("SELECT count(*) FROM asset_versions") == [(0,)]
    # The folder's title is its name on disk; its node name is the client's.
    unicode_dir = f"{base}/{folder_node('Ünïcödé 文件')}"
    assert query(
        "SELECT json_extract(properties, '$.\"jcr:title\"') FROM nodes WHERE path = ?",
        unicode_dir,
    ) == [("Ünïcödé 文件",)]
    folder_count = query("SELECT count(*) FROM nodes WHERE kind = 'folder'")

    # Again, with createVersion: versions, not duplicates.
    summary = run_client(
        live_server,
        admin_token,
        local,
        target,
        createVersion=True,
        versionLabel="second",
        versionComment="uploaded twice",
    )
    check_traffic(live_server, summary, folders_exist=True)
    assert summary["totalFiles"] == summary["completedFiles"] == len(files)
    assert {f["error"]["code"] for f in summary["createdFolders"]} == {"EALREADYEXISTS"}
    after = assets()
    assert after == before  # same nodes, same ids, same (identical) content
    assert query("SELECT count(*) FROM nodes WHERE kind = 'folder'") == folder_count
    versions = query(
        "SELECT node_id, count(*), min(label), min(comment), min(sha1) "
        "FROM asset_versions GROUP BY node_id"
    )
    assert sorted(versions) == sorted(
        (node_id, 1, "second", "uploaded twice", sha1) for node_id, sha1 in before.values()
    )
    for remote, path in files.items():
        r = http.get(url_of(f"{base}/{remote}"))
        assert r.status_code == 200, remote
        assert hashlib.sha256(r.content).hexdigest() == sha256_file(path), remote
