"""The web UI as a person uses it, in Debian's chromium driven by playwright-core
(tests/e2e/browser/journey.mjs): sign in, make folders (one from the keyboard), drop three
images and wait for their thumbnails while one part fails and is retried, sort the list,
upload a PDF and a video with the button and watch the asset page update when processing
ends, open an asset, edit its title, meet a 412 from a second browser and see the current
values, search with a facet, page with the cursor, move the asset, rename, copy and delete
folders (deleting asks first), comment, see the versions of an asset whose original was
replaced with versions kept, read /docs, and do it again at phone width, where revoking
the token signs the tab out; on each database backend. Screenshots go to
tests/artifacts/ui/."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from tests import media
from tests.live import ASSETVAULT, LiveServer
from tests.pg import create_test_database, drop_database

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent / "browser"
ARTIFACTS = Path(__file__).parents[1] / "artifacts" / "ui"
CHROMIUM = "/usr/bin/chromium"


def _image(path: Path, width: int, height: int, rgb: tuple[int, int, int]) -> Path:
    image = (pyvips.Image.black(width, height, bands=3) + list(rgb)).cast("uchar")
    image.write_to_file(str(path))
    return path


def _upload(
    server: LiveServer, token: str, folder: str, name: str, data: bytes, **fields: str
) -> str:
    """Direct binary upload, as the AEM clients do it (the UI's own upload is under test);
    returns the asset id."""
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=30) as c:
        started = c.post(
            f"{folder}.initiateUpload.json", data={"fileName": name, "fileSize": len(data)}
        )
        started.raise_for_status()
        entry = started.json()["files"][0]
        httpx.put(entry["uploadURIs"][0], content=data, timeout=30).raise_for_status()
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


@pytest.fixture(params=["sqlite", "postgresql"])
def database_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The journey on each database backend (search, facets and cursors differ most)."""
    if request.param == "sqlite":
        yield {}
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    url = asyncio.run(create_test_database(admin_url))
    yield {"ASSETVAULT_DATABASE_URL": url}
    asyncio.run(drop_database(admin_url, url))


@pytest.fixture
def server(tmp_path: Path, database_env: dict[str, str]) -> LiveServer:
    # No worker: the journey runs one when it wants processing to end.
    return LiveServer(data_dir=tmp_path / "data", env=database_env, extra_args=["--workers", "0"])


def test_a_person_browses_uploads_edits_searches_and_moves(
    server: LiveServer, database_env: dict[str, str], tmp_path: Path
) -> None:
    missing = [
        p for p in (CHROMIUM, HERE / "node_modules" / "playwright-core") if not Path(p).exists()
    ]
    assert not missing, f"run make install (scripts/bootstrap.sh): missing {missing}"
    server.start()
    try:
        worker_env = {**os.environ, **database_env}

        def make_token(name: str, scope: str) -> str:
            # Into the server's database (tests.live.create_token knows only the data
            # directory's SQLite).
            argv = ["token", "create", "--data-dir", str(server.data_dir), "--name", name]
            made = subprocess.run(
                [ASSETVAULT, *argv, "--scope", scope],
                check=True,
                capture_output=True,
                text=True,
                env=worker_env,
            )
            return made.stdout.strip().splitlines()[-1]

        token = make_token("p", "write")
        checker = make_token("checker", "read")  # the journey revokes the first
        # Other assets, so that search has more than one page of 12.
        seeded = "/content/dam/seeded"
        r = httpx.post(
            f"{server.url}/api/assets/seeded",
            json={"class": "assetFolder", "properties": {"title": "seeded"}},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201, r.text
        for i in range(12):
            png = _image(tmp_path / f"seed-{i:02}.png", 40 + i, 30, (i * 20, 90, 200))
            _upload(server, token, seeded, png.name, png.read_bytes())
        # One of them replaced twice with a version kept: the asset page lists both.
        versioned = tmp_path / "seed-00.png"
        sizes = [versioned.stat().st_size]
        for i, note in enumerate([{"versionLabel": "first", "versionComment": "as seeded"}, {}]):
            png = _image(tmp_path / f"again-{i}.png", 60 + i, 30, (200, 90, i * 50))
            sizes.append(png.stat().st_size)
            versioned_id = _upload(
                server,
                token,
                seeded,
                versioned.name,
                png.read_bytes(),
                createVersion="true",
                **note,
            )
        assert max(sizes) < 1024, "the page shows these sizes in bytes"
        version_rows = [
            ["1.0", "first — as seeded", sizes[0]],
            ["1.1", "—", sizes[1]],
            ["Current", "—", sizes[2]],
        ]
        worker = [ASSETVAULT, "worker", "--burst", "--data-dir", str(server.data_dir)]
        subprocess.run(worker, check=True, capture_output=True, timeout=120, env=worker_env)
        images = [
            _image(tmp_path / "red-square.png", 300, 300, (220, 30, 30)),
            _image(tmp_path / "green-wide.jpg", 640, 240, (30, 180, 60)),
            _image(tmp_path / "blue-tall.png", 200, 500, (40, 60, 220)),
        ]
        documents = [
            media.pdf_with_pages(tmp_path / "report.pdf", ["Quarterly report", "Page two"]),
            media.video(tmp_path / "clip.mp4"),
        ]
        artifacts = ARTIFACTS / ("postgresql" if database_env else "sqlite")
        if artifacts.exists():
            shutil.rmtree(artifacts)
        done = subprocess.run(
            ["node", str(HERE / "journey.mjs")],
            capture_output=True,
            text=True,
            timeout=240,
            env={
                **worker_env,  # the journey runs the worker too
                "ASSETVAULT_URL": server.url,
                "ASSETVAULT_TOKEN": token,
                "UI_IMAGES": json.dumps([str(p) for p in images]),
                "UI_ARTIFACTS": str(artifacts),
                "UI_PROFILES": str(tmp_path / "profiles"),
                "UI_DOCUMENTS": json.dumps([str(p) for p in documents]),
                "UI_WORKER": json.dumps(worker),
                "UI_VERSIONED": json.dumps({"assetId": versioned_id, "rows": version_rows}),
                "UI_REVOKE": json.dumps(
                    [
                        ASSETVAULT,
                        "token",
                        "revoke",
                        "--data-dir",
                        str(server.data_dir),
                        "--name",
                        "p",
                    ]
                ),
            },
        )
        try:
            report = json.loads(done.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"journey printed no report: {done.stdout}\n{done.stderr}")
        failed = [s for s in report["steps"] if not s["ok"]]
        assert not failed and "error" not in report, json.dumps(report, indent=1) + done.stderr
        assert report["foreign"] == [], "requests that left 127.0.0.1"
        assert report["failedRequests"] == [], "requests that failed"
        assert report["consoleErrors"] == [], "console or page errors"
        assert done.returncode == 0, done.stderr
        # The only failures were the ones caused on purpose: the 503 part and the 412.
        allowed = {(a["method"], a["status"]) for a in report["allowed"]}
        assert {("PUT", 503), ("PATCH", 412)} <= allowed
        assert allowed - {("PUT", 503), ("PATCH", 412)} <= {("GET", 401), ("POST", 401)}
        assert allowed & {("GET", 401), ("POST", 401)}, "the revoked token was refused"
        assert len(report["screenshots"]) == 13
        assert all(Path(p).stat().st_size > 10_000 for p in report["screenshots"])

        # What the person did is what the server holds.
        auth = {"Authorization": f"Bearer {checker}", "X-Api-Key": "check"}
        asset_id = next(s for s in report["steps"] if "assetId" in s.get("detail", {}))["detail"][
            "assetId"
        ]
        meta = httpx.get(f"{server.url}/adobe/assets/{asset_id}/metadata", headers=auth).json()
        assert meta["assetMetadata"]["dc:title"] == "Title from the other tab"
        moved_then_renamed = "/content/dam/journey/kept/red-square.png"
        assert meta["repositoryMetadata"]["repo:path"] == moved_then_renamed
        listing = httpx.get(f"{server.url}/api/assets/journey.json", headers=auth).json()
        names = sorted(e["properties"]["name"] for e in listing["entities"])
        assert names == ["blue-tall.png", "clip.mp4", "green-wide.jpg", "kept", "report.pdf"]
        for image in [*images[1:], *documents]:
            got = httpx.get(f"{server.url}/content/dam/journey/{image.name}", headers=auth)
            assert got.content == image.read_bytes(), f"{image.name} arrived byte for byte"
    finally:
        server.stop()


def test_uploads_never_overwrite_silently_and_fail_file_by_file(
    server: LiveServer, database_env: dict[str, str], tmp_path: Path
) -> None:
    """tests/e2e/browser/upload_safety.mjs, at desktop and phone width: names that exist
    ask (new version, keep both, skip; "apply to all"), a bad name fails alone and is
    renamed and retried, and a file is cancelled and retried."""
    assert Path(CHROMIUM).exists() and (HERE / "node_modules" / "playwright-core").exists()
    server.start(timeout=120)  # two cores shared: a loaded machine starts slowly
    try:
        argv = ["token", "create", "--data-dir", str(server.data_dir), "--name", "up"]
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
        # Beside the journey's directory, which the journey empties when it starts.
        artifacts = ARTIFACTS / ("postgresql-upload" if database_env else "sqlite-upload")
        if artifacts.exists():
            shutil.rmtree(artifacts)
        done = subprocess.run(
            ["node", str(HERE / "upload_safety.mjs")],
            capture_output=True,
            text=True,
            timeout=240,
            env={
                **os.environ,
                "ASSETVAULT_URL": server.url,
                "ASSETVAULT_TOKEN": token,
                "UI_ARTIFACTS": str(artifacts),
                "UI_PROFILES": str(tmp_path / "profiles"),
            },
        )
        try:
            report = json.loads(done.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"upload_safety.mjs printed no report: {done.stdout}\n{done.stderr}")
        failed = [s for s in report["steps"] if not s["ok"]]
        assert not failed and "error" not in report, json.dumps(report, indent=1) + done.stderr
        assert report["foreign"] == [] and report["failedRequests"] == []
        assert report["consoleErrors"] == []
        assert {(a["method"], a["status"]) for a in report["allowed"]} == {("POST", 400)}
        assert done.returncode == 0, done.stderr
        assert len(report["steps"]) == 10 and len(report["screenshots"]) == 4

        # Seen from outside the browser too: the overwritten original is a version.
        auth = {"Authorization": f"Bearer {token}", "X-Api-Key": "check"}
        for width in ("desktop", "phone"):
            asset_id = report[width]["versioned"]
            got = httpx.get(f"{server.url}/adobe/assets/{asset_id}/versions", headers=auth)
            kept, current = got.json()["items"]
            old = f"old a at {width} width".encode()
            assert (kept["name"], kept["size"], kept["current"]) == ("1.0", len(old), False)
            assert kept["sha1"] == hashlib.sha1(old).hexdigest()
            assert current["current"] and current["sha1"] == hashlib.sha1(b"new a").hexdigest()
    finally:
        server.stop()


def test_many_assets_are_selected_and_acted_on_at_once(
    server: LiveServer, database_env: dict[str, str], tmp_path: Path
) -> None:
    """tests/e2e/browser/bulk.mjs, at desktop and phone width: click, shift-click and
    ctrl-click select; bulk set-field, publish, move (one taken name fails alone), copy,
    delete and ZIP download; the folder picker; a folder gone meanwhile refused with its
    reason (AEM's 500); file names and titles on cards; the sort menu; scroll kept on back;
    tab titles."""
    assert Path(CHROMIUM).exists() and (HERE / "node_modules" / "playwright-core").exists()
    server.start(timeout=120)
    try:
        env = {**os.environ, **database_env}
        argv = ["token", "create", "--data-dir", str(server.data_dir), "--name", "bulk"]
        token = (
            subprocess.run(
                [ASSETVAULT, *argv, "--scope", "write"],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        artifacts = ARTIFACTS / ("postgresql-bulk" if database_env else "sqlite-bulk")
        if artifacts.exists():
            shutil.rmtree(artifacts)
        worker = [ASSETVAULT, "worker", "--burst", "--data-dir", str(server.data_dir)]
        done = subprocess.run(
            ["node", str(HERE / "bulk.mjs")],
            capture_output=True,
            text=True,
            timeout=300,
            env={
                **env,
                "ASSETVAULT_URL": server.url,
                "ASSETVAULT_TOKEN": token,
                "UI_ARTIFACTS": str(artifacts),
                "UI_PROFILES": str(tmp_path / "profiles"),
                "UI_WORKER": json.dumps(worker),
            },
        )
        try:
            report = json.loads(done.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"bulk.mjs printed no report: {done.stdout}\n{done.stderr}")
        failed = [s for s in report["steps"] if not s["ok"]]
        assert not failed and "error" not in report, json.dumps(report, indent=1) + done.stderr
        assert report["foreign"] == [] and report["failedRequests"] == []
        assert report["consoleErrors"] == []
        # Only what was caused on purpose: the taken name (412) and the folder gone (500,
        # AEM's status for a missing destination folder).
        assert {(a["method"], a["status"]) for a in report["allowed"]} == {
            ("MOVE", 412),
            ("MOVE", 500),
        }
        assert done.returncode == 0, done.stderr
        assert len(report["steps"]) == 18 and len(report["screenshots"]) == 10
        assert all(Path(p).stat().st_size > 5_000 for p in report["screenshots"])

        # The ZIP the browser saved holds exactly the three assets, byte for byte.
        for width in ("desktop", "phone"):
            saved = report[width]["zip"]
            assert saved["name"] == f"bulk-{width}-3.zip"
            with zipfile.ZipFile(saved["path"]) as z:
                assert z.testzip() is None
                got = {i.filename: z.read(i).decode() for i in z.infolist()}
            assert got == saved["expected"]
    finally:
        server.stop()
