"""Share links, /docs' Authorize control and the dark theme in Debian's chromium driven by
playwright-core (tests/e2e/browser/share_docs_theme.mjs), on each database backend: a
link made in the UI opens in a fresh browser without a token and downloads byte for
byte, and once revoked says so; /docs never shows the token and "Try it out" works after
Authorize; the dark theme follows the system setting; axe-core finds no serious or
critical violation on these screens, light and dark. Screenshots go to
tests/artifacts/ui/<backend>-share/."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from tests.live import ASSETVAULT, LiveServer
from tests.pg import create_test_database, drop_database

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent / "browser"
ARTIFACTS = Path(__file__).parents[1] / "artifacts" / "ui"
CHROMIUM = "/usr/bin/chromium"
FOLDER = "/content/dam/shared-e2e"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield {}
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    url = asyncio.run(create_test_database(admin_url))
    yield {"ASSETVAULT_DATABASE_URL": url}
    asyncio.run(drop_database(admin_url, url))


@pytest.fixture
def server(tmp_path: Path, database_env: dict[str, str]) -> LiveServer:
    return LiveServer(data_dir=tmp_path / "data", env=database_env, extra_args=["--workers", "1"])


def _upload(c: httpx.Client, folder: str, name: str, data: bytes) -> None:
    """Direct binary upload, as the AEM clients do it."""
    started = c.post(
        f"{folder}.initiateUpload.json", data={"fileName": name, "fileSize": len(data)}
    )
    started.raise_for_status()
    entry = started.json()["files"][0]
    httpx.put(entry["uploadURIs"][0], content=data, timeout=30).raise_for_status()
    done = c.post(
        started.json()["completeURI"],
        data={"fileName": name, "fileSize": len(data), "uploadToken": entry["uploadToken"]},
    )
    done.raise_for_status()


def test_share_links_docs_authorize_and_dark_theme(
    server: LiveServer, database_env: dict[str, str], tmp_path: Path
) -> None:
    missing = [
        p
        for p in (
            CHROMIUM,
            HERE / "node_modules" / "playwright-core",
            HERE / "node_modules" / "axe-core",
        )
        if not Path(p).exists()
    ]
    assert not missing, f"run make install (scripts/bootstrap.sh): missing {missing}"
    server.start()
    try:
        argv = ["token", "create", "--data-dir", str(server.data_dir), "--name", "sharer"]
        token = (
            subprocess.run(
                [ASSETVAULT, *argv, "--scope", "write"],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, **database_env},
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        files: dict[str, str] = {}
        auth = {"Authorization": f"Bearer {token}", "X-Api-Key": "share-e2e"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as c:
            made = c.post(
                "/api/assets/shared-e2e",
                json={"class": "assetFolder", "properties": {"title": "shared-e2e"}},
            )
            assert made.status_code == 201, made.text
            for name, size, rgb in (
                ("coral.png", (320, 200), (240, 110, 90)),
                ("teal.png", (200, 320), (30, 150, 160)),
            ):
                image = (pyvips.Image.black(*size, bands=3) + list(rgb)).cast("uchar")
                data = image.write_to_buffer(".png")
                _upload(c, FOLDER, name, data)
                files[name] = hashlib.sha1(data).hexdigest()
            # Thumbnails and previews first: the page shows them.
            deadline = time.monotonic() + 120
            for name in files:
                rendition = f"/api/assets/shared-e2e/{name}/renditions/cq5dam.web.1280.1280.jpeg"
                while c.get(rendition).status_code != 200:
                    assert time.monotonic() < deadline, f"processing of {name} did not end"
                    time.sleep(0.5)

        artifacts = ARTIFACTS / ("postgresql-share" if database_env else "sqlite-share")
        if artifacts.exists():
            shutil.rmtree(artifacts)
        done = subprocess.run(
            ["node", str(HERE / "share_docs_theme.mjs")],
            capture_output=True,
            text=True,
            timeout=300,
            env={
                **os.environ,
                "ASSETVAULT_URL": server.url,
                "ASSETVAULT_TOKEN": token,
                "UI_FOLDER": FOLDER,
                "UI_FILES": json.dumps(files),
                "UI_ARTIFACTS": str(artifacts),
                "UI_PROFILES": str(tmp_path / "profiles"),
            },
        )
        try:
            report = json.loads(done.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"share_docs_theme.mjs printed no report: {done.stdout}\n{done.stderr}")
        failed = [s for s in report["steps"] if not s["ok"]]
        assert not failed and "error" not in report, json.dumps(report, indent=1) + done.stderr
        assert report["foreign"] == [] and report["failedRequests"] == []
        assert report["consoleErrors"] == []
        # The one refusal was the revoked link's, on purpose.
        assert {(a["method"], a["status"]) for a in report["allowed"]} == {("GET", 410)}
        assert done.returncode == 0, done.stderr
        assert len(report["steps"]) == 9 and len(report["screenshots"]) == 13
        assert all(Path(p).stat().st_size > 5_000 for p in report["screenshots"])
        screens = {a["screen"] for a in report["axe"]}
        assert len(screens) == 15 and all(a["serious"] == 0 for a in report["axe"])

        # Seen from outside the browser: the revoked link is refused in every process.
        listed = httpx.get(f"{server.url}/share-links", headers=auth).json()["items"]
        states = sorted((i["kind"], i["state"]) for i in listed)
        assert states == [("asset", "active"), ("asset", "active"), ("folder", "revoked")]
    finally:
        server.stop()
