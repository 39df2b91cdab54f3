"""What ``serve`` does before it forks its API processes (runtime/api.py): the app's
imports once, the schema brought up to date beside them, and nothing an API process
does not need (Alembic, the media tools, Tantivy, aiohttp, boto3, cryptography) imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# serve's steps before its first fork, then one API process's app answering /health.
BEFORE_THE_FORK = """
import json, os, sys
os.environ["ASSETVAULT_SEARCH_INDEX_HERE"] = "false"  # as serve tells its API processes
from pathlib import Path
from assetvault.cli import _migrate_beside
from assetvault.runtime import api
from assetvault.settings import load_settings

settings = load_settings(data_dir=Path(sys.argv[1]))
migrated = _migrate_beside(settings)
api.preload()
migrated()
from assetvault.app import create_app
from starlette.testclient import TestClient

with TestClient(create_app(settings, migrate=False)) as client:
    status = client.get("/health").status_code
heavy = ["alembic", "pyvips", "tantivy", "aiohttp", "yarl", "boto3", "stream_zip", "mako"]
heavy.append("cryptography")
print(json.dumps({"status": status, "loaded": [m for m in heavy if m in sys.modules]}))
"""


def before_the_fork(data_dir: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", BEFORE_THE_FORK, str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    found: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("start", ["fresh", "at head"])
def test_an_api_process_imports_no_heavy_module(tmp_path: Path, start: str) -> None:
    data_dir = tmp_path / "data"
    if start == "at head":
        before_the_fork(data_dir)
    assert before_the_fork(data_dir) == {"status": 200, "loaded": []}


def test_the_migration_beside_the_imports_reaches_head(tmp_path: Path) -> None:
    from assetvault.adapters.database.engine import sqlite_schema_current

    data_dir = tmp_path / "data"
    assert not sqlite_schema_current(data_dir / "assetvault.db")
    before_the_fork(data_dir)
    assert sqlite_schema_current(data_dir / "assetvault.db")


def test_the_tests_know_the_api_processes_name() -> None:
    from assetvault.runtime.api import API_PROCESS_NAME
    from tests import live

    assert live.API_PROCESS_NAME == API_PROCESS_NAME
