"""The real @adobe/aem-upload client (FileSystemUpload) against a running server."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.live import LiveServer

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
MiB = 2**20

# The client's default node-name rules (filesystem-upload-options.js, constants.js).
FOLDER_CHARS = re.compile(r"[.%;#+?^{}\s\"&]")
ASSET_CHARS = re.compile(r"[#%{}?&]")
ALWAYS = re.compile(r"[/:\[\]|*\\]")


def folder_node(name: str) -> str:
    return ALWAYS.sub("-", FOLDER_CHARS.sub("-", name).lower())


def asset_node(name: str) -> str:
    return ALWAYS.sub("-", ASSET_CHARS.sub("-", name))


def make_tree(root: Path) -> dict[str, Path]:
    """A nested folder of varied names and sizes; returns remote relative path -> file."""
    files = {
        "one byte.txt": b"x",
        "readme.md": b"# hello\n" * 100,
        "Ünïcödé 文件/naïve café.txt": "déjà vu 文字".encode() * 50,
        "Ünïcödé 文件/level two/data 01.bin": os.urandom(300_000),
        "Ünïcödé 文件/level two/level three/deep.json": json.dumps({"a": [1, 2, 3]}).encode(),
        "Ünïcödé 文件/level two/level three/big file.bin": None,  # 64 MiB, written below
        "another dir/photo (1).jpg": os.urandom(50_000),
    }
    out: dict[str, Path] = {}
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            with open(path, "wb") as fh:
                for _ in range(64):
                    fh.write(os.urandom(MiB))
        else:
            path.write_bytes(data)
        parts = rel.split("/")
        remote = "/".join([*(folder_node(p) for p in parts[:-1]), asset_node(parts[-1])])
        out[remote] = path
    return out


def run_client(server: LiveServer, token: str, local: Path, target: str, **options: object) -> dict:
    summary_file = local.parent / "summary.json"
    proc = subprocess.run(
        [
            "node",
            str(HERE / "upload.js"),
            server.url,
            token,
            str(local),
            target,
            str(summary_file),
            json.dumps(options),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=HERE,
    )
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    assert proc.returncode == 0, (
        f"client failed: {json.dumps(summary)[:4000]} {proc.stderr[-2000:]}"
    )
    return summary  # type: ignore[no-any-return]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def url_of(path: str) -> str:
    return quote(path, safe="/")


def test_filesystem_upload_round_trip_and_versions(
    live_server: LiveServer, admin_token: str, tmp_path: Path
) -> None:
    local = tmp_path / "upload me"
    files = make_tree(local)
    auth = {"Authorization": f"Bearer {admin_token}"}
    http = httpx.Client(base_url=live_server.url, headers=auth, timeout=120)
    target = "/content/dam/e2e target"
    assert (
        http.post("/api/assets/" + url_of("e2e target"), json={"class": "assetFolder"}).status_code
        == 201
    )

    # The big file really goes up in several parts.
    probe = http.post(
        url_of(target) + ".initiateUpload.json",
        data={"fileName": "probe.bin", "fileSize": str(64 * MiB)},
    )
    assert probe.status_code == 201 and len(probe.json()["files"][0]["uploadURIs"]) == 4

    summary = run_client(live_server, admin_token, local, target)
    assert summary["totalFiles"] == len(files) == summary["completedFiles"]

    # The client uploads the folder itself into the target, under its own node name.
    base = f"{target}/{folder_node(local.name)}"
    for remote, path in files.items():
        r = http.get(url_of(f"{base}/{remote}"))
        assert r.status_code == 200, (remote, r.text[:300])
        assert hashlib.sha256(r.content).hexdigest() == sha256_file(path), remote

    big = url_of(f"{base}/{folder_node('Ünïcödé 文件')}/level-two/level-three/big file.bin")
    part = http.get(big, headers={"Range": f"bytes={30 * MiB}-{30 * MiB + 99}"})
    with open(files[next(k for k in files if k.endswith("big file.bin"))], "rb") as fh:
        fh.seek(30 * MiB)
        assert part.status_code == 206 and part.content == fh.read(100)

    # Every folder exists (an initiate creates nothing and answers 404 for a missing one).
    folders = {base} | {
        f"{base}/" + "/".join(remote.split("/")[: i + 1])
        for remote in files
        for i in range(remote.count("/"))
    }
    for folder in folders:
        r = http.post(
            url_of(folder) + ".initiateUpload.json", data={"fileName": "x", "fileSize": "1"}
        )
        assert r.status_code == 201, folder
    missing = http.post(
        url_of(base + "/not-there") + ".initiateUpload.json",
        data={"fileName": "x", "fileSize": "1"},
    )
    assert missing.status_code == 404

    db_path = live_server.data_dir / "assetvault.db"

    def counts() -> tuple[int, int, int]:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            assets = db.execute("SELECT count(*) FROM nodes WHERE kind='asset'").fetchone()[0]
            versions = db.execute("SELECT count(*) FROM asset_versions").fetchone()[0]
            per_asset = db.execute("SELECT count(DISTINCT node_id) FROM asset_versions").fetchone()[
                0
            ]
            return assets, versions, per_asset
        finally:
            db.close()

    assert counts() == (len(files), 0, 0)
    titles = (
        sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        .execute(
            "SELECT json_extract(properties, '$.\"jcr:title\"') FROM nodes WHERE name = ?",
            (folder_node("Ünïcödé 文件"),),
        )
        .fetchone()
    )
    assert titles == ("Ünïcödé 文件",)

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
    assert summary["completedFiles"] == len(files)
    assert counts() == (len(files), len(files), len(files))
    for remote, path in files.items():
        r = http.get(url_of(f"{base}/{remote}"))
        assert hashlib.sha256(r.content).hexdigest() == sha256_file(path), remote
