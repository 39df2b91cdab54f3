"""Share links, /docs' Authorize control and the dark theme in Debian's chromium driven by
playwright-core (tests/e2e/browser/share_docs_theme.mjs), on each database backend: a
link made in the UI opens in a fresh browser without a token and downloads byte for
byte, and once revoked says so; /docs never shows the token and "Try it out" works after
Authorize; the dark theme follows the system setting; axe-core finds no serious or
critical violation on these screens, light and dark. Screenshots go to
tests/artifacts/ui/<backend>-share/."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from tests.e2e.browser_runner import (
    ARTIFACTS,
    BROWSER_MARKS,
    backend,
    make_token,
    run_script,
    serve,
    upload,
)
from tests.live import LiveServer

pytestmark = BROWSER_MARKS

FOLDER = "/content/dam/shared-e2e"


@pytest.fixture
def server(tmp_path: Path, database_env: dict[str, str]) -> Iterator[LiveServer]:
    # A worker: the seeded images are processed while the test waits for them.
    yield from serve(tmp_path, database_env, workers=1)


def test_share_links_docs_authorize_and_dark_theme(
    server: LiveServer, database_env: dict[str, str], tmp_path: Path
) -> None:
    token = make_token(server, database_env, "sharer")
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
            upload(server, token, FOLDER, name, data)
            files[name] = hashlib.sha1(data).hexdigest()
        # Thumbnails and previews first: the page shows them.
        deadline = time.monotonic() + 120
        for name in files:
            rendition = f"/api/assets/shared-e2e/{name}/renditions/cq5dam.web.1280.1280.jpeg"
            while c.get(rendition).status_code != 200:
                assert time.monotonic() < deadline, f"processing of {name} did not end"
                time.sleep(0.5)

    report = run_script(
        "share_docs_theme.mjs",
        server,
        token,
        ARTIFACTS / f"{backend(database_env)}-share",
        tmp_path / "profiles",
        {"UI_FOLDER": FOLDER, "UI_FILES": json.dumps(files)},
    )
    # The one refusal was the revoked link's, on purpose.
    assert {(a["method"], a["status"]) for a in report["allowed"]} == {("GET", 410)}
    assert len(report["steps"]) == 10 and len(report["screenshots"]) == 14
    # Each screen shot, and four more: the Share links page before the revocation,
    # /docs before and in Authorize, the revoked link in the dark.
    assert len({a["screen"] for a in report["axe"]}) == 19
    # /docs (light, dark, at phone width, before and after Authorize and Try it out):
    # no violation of any impact.
    docs = [a for a in report["axe"] if "docs" in a["screen"]]
    assert len(docs) == 6 and all(a["strict"] and a["violations"] == 0 for a in docs), docs

    # Seen from outside the browser: the revoked link is refused in every process.
    listed = httpx.get(f"{server.url}/share-links", headers=auth).json()["items"]
    states = sorted((i["kind"], i["state"]) for i in listed)
    assert states == [("asset", "active"), ("asset", "active"), ("folder", "revoked")]
