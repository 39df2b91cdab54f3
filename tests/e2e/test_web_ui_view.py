"""Viewing assets in the web UI (tests/e2e/browser/view.mjs), at desktop and phone width,
on each database backend: the lightbox's zoom, fullscreen and keyboard navigation, from
the asset page and from the grid, a video played (and seeked, by byte ranges) from its
web rendition through a media URL, a PDF's second page, safe text previews, the
metadata form, relations by name, and a version previewed, downloaded and restored.
Screenshots go to tests/artifacts/ui/<backend>-view/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests import media
from tests.e2e.test_web_ui import ARTIFACTS, CHROMIUM, HERE, _image, _upload
from tests.e2e.test_web_ui import database_env as database_env  # the fixture, re-exported
from tests.live import ASSETVAULT, LiveServer

pytestmark = pytest.mark.e2e

NOTES = (
    "Launch notes\n<script>window.__pwned = 1</script>\n"
    '<img src=x onerror="window.__pwned = 2">\n& more'
)
FIRST = "First draft of the <b>notes</b>\n"


def _avi_with_sound(path: Path) -> Path:
    """MPEG-4 part 2 and MP2 in AVI: a video no browser plays as it is."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
         "-c:v", "mpeg4", "-c:a", "mp2", str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture
def server(tmp_path: Path, database_env: dict[str, str]) -> LiveServer:
    return LiveServer(data_dir=tmp_path / "data", env=database_env, extra_args=["--workers", "0"])


def test_a_person_views_assets_edits_metadata_and_restores_a_version(
    server: LiveServer, database_env: dict[str, str], tmp_path: Path
) -> None:
    assert Path(CHROMIUM).exists() and (HERE / "node_modules" / "playwright-core").exists()
    server.start(timeout=120)
    try:
        env = {**os.environ, **database_env}
        argv = ["token", "create", "--data-dir", str(server.data_dir), "--name", "viewer"]
        made = subprocess.run(
            [ASSETVAULT, *argv, "--scope", "write"],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        token = made.stdout.strip().splitlines()[-1]
        auth = {"Authorization": f"Bearer {token}", "X-Api-Key": "seed"}
        files: dict[str, tuple[bytes, str]] = {
            "a-red.png": (_image(tmp_path / "a.png", 800, 600, (220, 30, 30)).read_bytes(), ""),
            "b-green.jpg": (_image(tmp_path / "b.jpg", 640, 240, (30, 180, 60)).read_bytes(), ""),
            "c-blue.png": (_image(tmp_path / "c.png", 200, 500, (40, 60, 220)).read_bytes(), ""),
            "clip.avi": (_avi_with_sound(tmp_path / "clip.avi").read_bytes(), "video/x-msvideo"),
            "report.pdf": (
                media.pdf_with_pages(tmp_path / "r.pdf", ["One", "Two", "Three"]).read_bytes(),
                "application/pdf",
            ),
            "notes.txt": (FIRST.encode(), "text/plain"),
            "data.json": (b'{"title":"Spring launch","tags":["a","b"]}', "application/json"),
            "table.csv": (b"name,size\nhero.jpg,1200\n", "text/csv"),
            "big.txt": (b"x" * (300 * 1024), "text/plain"),
        }
        view: dict[str, object] = {"texts": {"notes.txt": NOTES, "first": FIRST}}
        for width in ("desktop", "phone"):
            folder = f"/content/dam/view-{width}"
            r = httpx.post(
                f"{server.url}/api/assets/view-{width}",
                json={"class": "assetFolder", "properties": {"title": width}},
                headers=auth,
            )
            assert r.status_code == 201, r.text
            ids = {}
            for name, (data, mime) in files.items():
                fields = {"mimeType": mime} if mime else {}
                ids[name] = _upload(server, token, folder, name, data, **fields)
            # notes.txt replaced with its first draft kept as version 1.0.
            again = _upload(
                server,
                token,
                folder,
                "notes.txt",
                NOTES.encode(),
                mimeType="text/plain",
                createVersion="true",
            )
            assert again == ids["notes.txt"]
            related = httpx.post(
                f"{server.url}/adobe/assets/{ids['a-red.png']}/relations",
                json={"items": [{"relationType": "derived", "relatedAssetId": ids["b-green.jpg"]}]},
                headers=auth,
            )
            assert related.status_code in (200, 201, 204), related.text
            view[width] = ids
        worker = [ASSETVAULT, "worker", "--burst", "--data-dir", str(server.data_dir)]
        subprocess.run(worker, check=True, capture_output=True, timeout=300, env=env)

        artifacts = ARTIFACTS / ("postgresql-view" if database_env else "sqlite-view")
        if artifacts.exists():
            shutil.rmtree(artifacts)
        done = subprocess.run(
            ["node", str(HERE / "view.mjs")],
            capture_output=True,
            text=True,
            timeout=300,
            env={
                **os.environ,
                "ASSETVAULT_URL": server.url,
                "ASSETVAULT_TOKEN": token,
                "UI_ARTIFACTS": str(artifacts),
                "UI_PROFILES": str(tmp_path / "profiles"),
                "UI_VIEW": json.dumps(view),
            },
        )
        try:
            report = json.loads(done.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"view.mjs printed no report: {done.stdout}\n{done.stderr}")
        failed = [s for s in report["steps"] if not s["ok"]]
        assert not failed and "error" not in report, json.dumps(report, indent=1) + done.stderr
        assert report["foreign"] == [] and report["failedRequests"] == []
        assert report["consoleErrors"] == []
        assert done.returncode == 0, done.stderr
        assert len(report["steps"]) == 18 and len(report["screenshots"]) == 18
        assert all(Path(p).stat().st_size > 5_000 for p in report["screenshots"])

        # Seen from outside the browser: what the person saved and restored.
        for width in ("desktop", "phone"):
            ids = view[width]
            assert isinstance(ids, dict)
            meta = httpx.get(
                f"{server.url}/adobe/assets/{ids['a-red.png']}/metadata", headers=auth
            ).json()
            assert meta["assetMetadata"]["dc:title"] == "Red hero"
            assert meta["assetMetadata"]["dam:assetStatus"] == "approved"
            got = httpx.get(f"{server.url}/content/dam/view-{width}/notes.txt", headers=auth)
            assert got.content == FIRST.encode()
    finally:
        server.stop()
