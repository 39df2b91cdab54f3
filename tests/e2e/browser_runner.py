"""What the web UI's browser tests share (tests/e2e/test_web_ui*.py): each database
backend, tokens and processing through the CLI, assets uploaded as the AEM clients do,
and one run of a script in tests/e2e/browser/ (playwright-core and Debian's chromium,
see harness.mjs) whose JSON report is checked for what every script must hold: every
step passed, no request left 127.0.0.1 or failed unless a step caused it on purpose, no
console error, and axe-core found no serious or critical violation on any screen shot
(each one is checked), and none at all on the screens a script checks strictly (/docs).
Screenshots go to tests/artifacts/ui/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyvips

from tests.live import ASSETVAULT, LiveServer

# The marks of a browser test: it seeds, processes, then runs a script (up to 600 s, see
# run_script); on two shared cores under load that takes longer than the suite's 300 s.
BROWSER_MARKS = [pytest.mark.e2e, pytest.mark.timeout(900)]

HERE = Path(__file__).parent / "browser"
ARTIFACTS = Path(__file__).parents[1] / "artifacts" / "ui"
CHROMIUM = "/usr/bin/chromium"


def require_browser() -> None:
    """Fails (with the way to fix it) when chromium or the node packages are missing."""
    wanted = (
        CHROMIUM,
        HERE / "node_modules" / "playwright-core",
        HERE / "node_modules" / "axe-core",
    )
    missing = [p for p in wanted if not Path(p).exists()]
    assert not missing, f"run make install (scripts/bootstrap.sh): missing {missing}"


def serve(tmp_path: Path, database_env: dict[str, str], workers: int = 0) -> Iterator[LiveServer]:
    """A started server on the backend, stopped after the test. With no worker (the
    default) the test decides when processing ends (process)."""
    require_browser()
    live = LiveServer(
        data_dir=tmp_path / "data", env=database_env, extra_args=["--workers", str(workers)]
    )
    live.start(timeout=240)  # two cores shared: a loaded machine starts slowly
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def server(tmp_path: Path, database_env: dict[str, str]) -> Iterator[LiveServer]:
    """A started server without a worker."""
    yield from serve(tmp_path, database_env)


def backend(database_env: dict[str, str]) -> str:
    """The backend's name, for artifact directories."""
    return "postgresql" if database_env else "sqlite"


def make_token(server: LiveServer, env: dict[str, str], name: str, scope: str = "write") -> str:
    """A token made with the CLI in the server's database (tests.live.create_token knows
    only the data directory's SQLite)."""
    argv = ["token", "create", "--data-dir", str(server.data_dir), "--name", name]
    made = subprocess.run(
        [ASSETVAULT, *argv, "--scope", scope],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    return made.stdout.strip().splitlines()[-1]


def worker_argv(server: LiveServer) -> list[str]:
    """A worker run that processes what is queued, then exits."""
    return [ASSETVAULT, "worker", "--burst", "--data-dir", str(server.data_dir)]


def process(server: LiveServer, env: dict[str, str], timeout: float = 300) -> None:
    """Processes every queued job (the servers under test run no worker)."""
    subprocess.run(
        worker_argv(server),
        check=True,
        capture_output=True,
        timeout=timeout,
        env={**os.environ, **env},
    )


def image_file(path: Path, width: int, height: int, rgb: tuple[int, int, int]) -> Path:
    """An image of one colour, written in the format its name says."""
    image = (pyvips.Image.black(width, height, bands=3) + list(rgb)).cast("uchar")
    image.write_to_file(str(path))
    return path


def upload(
    server: LiveServer, token: str, folder: str, name: str, data: bytes, **fields: str
) -> str:
    """Direct binary upload, as the AEM clients do it (the UI's own upload is under
    test); returns the asset id."""
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=60) as c:
        started = c.post(
            f"{folder}.initiateUpload.json", data={"fileName": name, "fileSize": len(data)}
        )
        started.raise_for_status()
        entry = started.json()["files"][0]
        httpx.put(entry["uploadURIs"][0], content=data, timeout=60).raise_for_status()
        done = c.post(
            started.json()["completeURI"],
            data={
                "fileName": name,
                "fileSize": len(data),
                "uploadToken": entry["uploadToken"],
                **fields,
            },
        )
        done.raise_for_status()
        return str(done.json()["assetId"])


def run_script(
    script: str,
    server: LiveServer,
    token: str,
    artifacts: Path,
    profiles: Path,
    env: dict[str, str] | None = None,
    *,
    timeout: float = 600,
    min_shot_bytes: int = 5_000,
) -> dict[str, Any]:
    """Runs tests/e2e/browser/`script` against `server` and returns its report, once the
    checks every script must pass have passed. `env`: the database's and the script's own
    inputs (UI_*); `artifacts` is emptied first."""
    if artifacts.exists():
        shutil.rmtree(artifacts)
    done = subprocess.run(
        ["node", str(HERE / script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={
            **os.environ,
            **(env or {}),
            "ASSETVAULT_URL": server.url,
            "ASSETVAULT_TOKEN": token,
            "UI_ARTIFACTS": str(artifacts),
            "UI_PROFILES": str(profiles),
        },
    )
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"{script} printed no report: {done.stdout}\n{done.stderr}")
    (artifacts / "report.json").write_text(json.dumps(report, indent=1))  # beside the shots
    failed = [s for s in report["steps"] if not s["ok"]]
    assert not failed and "error" not in report, json.dumps(report, indent=1) + done.stderr
    assert report["foreign"] == [], "requests that left 127.0.0.1"
    assert report["failedRequests"] == [], f"requests that failed: {report['failedRequests']}"
    assert report["consoleErrors"] == [], f"console or page errors: {report['consoleErrors']}"
    shots = [Path(p) for p in report["screenshots"]]
    assert all(p.stat().st_size > min_shot_bytes for p in shots)
    checked = {a["screen"] for a in report["axe"]}
    assert {p.stem for p in shots} <= checked, "axe checks every screen shot"
    # Serious or critical ones anywhere; any at all on a screen checked strictly (/docs).
    failing = [a for a in report["axe"] if a["serious"] or (a.get("strict") and a["violations"])]
    assert not failing, "axe: violations that fail the run\n" + json.dumps(failing, indent=1)
    assert done.returncode == 0, done.stderr
    return report
