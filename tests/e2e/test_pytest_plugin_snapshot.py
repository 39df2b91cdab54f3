"""The pytest plugin's session server started from a snapshot file
(``--assetvault-snapshot``), as a user's suite would: the file made from a folder on a
stopped data directory with the CLI (``assetvault seed``, then ``assetvault snapshot
save FILE --data-dir``), every test starting from its state whatever the test before did,
and the client carrying the ephemeral server's token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live import ASSETVAULT

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]

SUITE = """
import httpx


def names(client):
    r = client.get("/api/assets/campaign.json")
    assert r.status_code == 200, r.text
    return sorted(e["properties"]["name"] for e in r.json().get("entities", []))


def test_first_deletes(assetvault, assetvault_client):
    assert names(assetvault_client) == ["poster.txt"]
    meta = assetvault_client.get("/api/assets/campaign/poster.txt.json").json()
    assert meta["properties"]["metadata"]["dc:title"] == "The poster"
    assert assetvault_client.delete("/api/assets/campaign/poster.txt").status_code == 200
    assert names(assetvault_client) == []
    assert httpx.get(assetvault.url + "/api/assets.json").status_code == 401


def test_second_finds_the_snapshot_again(assetvault_client):
    assert names(assetvault_client) == ["poster.txt"]
"""


def test_a_session_server_from_a_snapshot_file(tmp_path: Path) -> None:
    folder = tmp_path / "dam" / "campaign"
    folder.mkdir(parents=True)
    (folder / "poster.txt").write_text("a poster\n")
    (folder / "poster.txt.metadata.json").write_text(
        '{"assetMetadata": {"dc:title": "The poster"}}'
    )
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSETVAULT_")}
    for command in (
        ["seed", str(tmp_path / "dam"), "--data-dir", str(data)],
        ["snapshot", "save", str(tmp_path / "start.tar"), "--data-dir", str(data)],
    ):
        done = subprocess.run(
            [ASSETVAULT, *command], capture_output=True, text=True, timeout=300, env=env
        )
        assert done.returncode == 0, done.stderr

    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_from_snapshot.py").write_text(SUITE)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "assetvault.testing.pytest_plugin",
            "--basetemp",
            str(suite / "tmp"),
            "--assetvault-snapshot",
            str(tmp_path / "start.tar"),
        ],
        cwd=suite,
        capture_output=True,
        text=True,
        timeout=900,
        env={
            **env,
            "PYTHONPATH": str(ROOT / "src"),
            "PYTEST_ADDOPTS": "",
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        },
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "2 passed" in proc.stdout
    # The ephemeral server removed its data directory; the snapshot file is untouched.
    assert (tmp_path / "start.tar").is_file()
