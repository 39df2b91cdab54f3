"""The command-line contract outside checks and users' scripts rely on."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.live import ASSETVAULT, LiveServer, create_token

pytestmark = pytest.mark.e2e


def test_token_create_prints_the_token_alone_on_the_last_line(tmp_path: Path) -> None:
    argv = [ASSETVAULT, "token", "create", "--data-dir", str(tmp_path), "--name", "n"]
    argv += ["--scope", "read"]
    out = subprocess.run(
        argv,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    last = out.rstrip("\n").splitlines()[-1]
    assert last.startswith("av_") and " " not in last
    bad = subprocess.run(
        argv,
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "exists" in bad.stderr


def test_serve_uses_the_data_dir_from_the_environment(tmp_path: Path) -> None:
    data = tmp_path / "from-env"
    server = LiveServer(data_dir=data, env={"ASSETVAULT_DATA_DIR": str(data)}, pass_data_dir=False)
    server.start()
    try:
        assert (data / "assetvault.db").exists() and (data / "blobs").is_dir()
        token = create_token(data, "env")
        r = httpx.post(
            server.url + "/api/assets/fromenv",
            json={"class": "assetFolder"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201
    finally:
        server.stop()


def test_one_server_per_data_dir(tmp_path: Path) -> None:
    first = LiveServer(data_dir=tmp_path / "d").start()
    try:
        second = subprocess.run(
            [ASSETVAULT, "serve", "--port", "1", "--data-dir", str(tmp_path / "d")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0 and "another server" in second.stderr
    finally:
        first.stop()


def test_reprocess_queues_the_asset_again(tmp_path: Path) -> None:
    import sqlite3

    server = LiveServer(data_dir=tmp_path / "d", extra_args=["--workers", "0"]).start()
    try:
        token = create_token(server.data_dir, "t")
        http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})
        init = http.post(
            "/content/dam.initiateUpload.json", data={"fileName": "a.txt", "fileSize": "2"}
        ).json()["files"][0]
        httpx.put(init["uploadURIs"][0], content=b"hi").raise_for_status()
        http.post(
            "/content/dam.completeUpload.json",
            data={"fileName": "a.txt", "fileSize": "2", "uploadToken": init["uploadToken"]},
        ).raise_for_status()
        subprocess.run(
            [ASSETVAULT, "worker", "--burst", "--data-dir", str(server.data_dir)],
            check=True,
            capture_output=True,
        )
        out = subprocess.run(
            [ASSETVAULT, "reprocess", "--data-dir", str(server.data_dir), "/content/dam/a.txt"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert "queued /content/dam/a.txt" in out
        db = sqlite3.connect(f"file:{server.data_dir / 'assetvault.db'}?mode=ro", uri=True)
        states = db.execute("SELECT state FROM jobs ORDER BY created_at").fetchall()
        asset = db.execute("SELECT asset_state FROM nodes WHERE name='a.txt'").fetchone()
        db.close()
        assert states == [("succeeded",), ("queued",)] and asset == ("processing",)
        missing = subprocess.run(
            [ASSETVAULT, "reprocess", "--data-dir", str(server.data_dir), "/content/dam/no"],
            capture_output=True,
            text=True,
        )
        assert missing.returncode == 2 and "does not exist" in missing.stderr
    finally:
        server.stop()
