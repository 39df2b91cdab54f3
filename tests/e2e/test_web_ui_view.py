"""Viewing assets in the web UI (tests/e2e/browser/view.mjs), at desktop and phone width,
on each database backend: the lightbox's zoom, fullscreen and keyboard navigation, from
the asset page and from the grid, a video played (and seeked, by byte ranges) from its
web rendition through a media URL, a PDF's second page, safe text previews, the
metadata form, relations by name, and a version previewed, downloaded and restored.
Screenshots go to tests/artifacts/ui/<backend>-view/."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from tests import media
from tests.e2e.browser_runner import (
    ARTIFACTS,
    BROWSER_MARKS,
    backend,
    image_file,
    make_token,
    process,
    run_script,
    upload,
)
from tests.e2e.browser_runner import server as server
from tests.live import LiveServer

pytestmark = BROWSER_MARKS

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


def test_a_person_views_assets_edits_metadata_and_restores_a_version(
    server: LiveServer, database_env: dict[str, str], tmp_path: Path
) -> None:
    token = make_token(server, database_env, "viewer")
    auth = {"Authorization": f"Bearer {token}", "X-Api-Key": "seed"}
    files: dict[str, tuple[bytes, str]] = {
        "a-red.png": (image_file(tmp_path / "a.png", 800, 600, (220, 30, 30)).read_bytes(), ""),
        "b-green.jpg": (
            image_file(tmp_path / "b.jpg", 640, 240, (30, 180, 60)).read_bytes(),
            "",
        ),
        "c-blue.png": (
            image_file(tmp_path / "c.png", 200, 500, (40, 60, 220)).read_bytes(),
            "",
        ),
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
            ids[name] = upload(server, token, folder, name, data, **fields)
        # notes.txt replaced with its first draft kept as version 1.0.
        again = upload(
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
    process(server, database_env)
    report = run_script(
        "view.mjs",
        server,
        token,
        ARTIFACTS / f"{backend(database_env)}-view",
        tmp_path / "profiles",
        {"UI_VIEW": json.dumps(view)},
    )
    assert len(report["steps"]) == 18 and len(report["screenshots"]) == 18

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
