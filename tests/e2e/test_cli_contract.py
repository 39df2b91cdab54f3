"""The command-line contract outside checks and users' scripts rely on."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.live import ASSETVAULT, LiveServer, create_token

pytestmark = pytest.mark.e2e


def test_token_create_prints_the_token_alone_on_the_last_line(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            ASSETVAULT,
            "token",
            "create",
            "--data-dir",
            str(tmp_path),
            "--name",
            "n",
            "--scope",
            "read",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    last = out.rstrip("\n").splitlines()[-1]
    assert last.startswith("av_") and " " not in last
    bad = subprocess.run(
        [
            ASSETVAULT,
            "token",
            "create",
            "--data-dir",
            str(tmp_path),
            "--name",
            "n",
            "--scope",
            "read",
        ],
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
