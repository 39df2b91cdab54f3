"""The web UI as a person uses it, in Debian's chromium driven by playwright-core
(tests/e2e/browser/journey.mjs): sign in, make folders (one from the keyboard), drop three
images and wait for their thumbnails while one part fails and is retried, sort the list,
upload a PDF and a video with the button and watch the asset page update when processing
ends, open an asset, edit its title, meet a 412 from a second browser and see the current
values, search with a facet, page with the cursor, move the asset, copy it and delete the
copy while its page still reads it (no request about it answers 404; back on its page, it
says it was deleted), open the page of an asset deleted elsewhere (not found, after one
request), rename, copy and delete folders (deleting asks first), comment, see the
versions of an asset whose original was replaced with versions kept, read /docs, and do
it again at phone width, where revoking the token signs the tab out; on each database
backend. Screenshots go to tests/artifacts/ui/."""

from __future__ import annotations

import hashlib
import json
import zipfile
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
    worker_argv,
)
from tests.e2e.browser_runner import server as server
from tests.live import ASSETVAULT, LiveServer

pytestmark = BROWSER_MARKS


def test_a_person_browses_uploads_edits_searches_and_moves(
    server: LiveServer, database_env: dict[str, str], tmp_path: Path
) -> None:
    token = make_token(server, database_env, "p")
    checker = make_token(server, database_env, "checker", "read")  # the journey revokes the first
    # Other assets, so that search has more than one page of 12.
    seeded = "/content/dam/seeded"
    r = httpx.post(
        f"{server.url}/api/assets/seeded",
        json={"class": "assetFolder", "properties": {"title": "seeded"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text
    for i in range(12):
        png = image_file(tmp_path / f"seed-{i:02}.png", 40 + i, 30, (i * 20, 90, 200))
        upload(server, token, seeded, png.name, png.read_bytes())
    # One of them replaced twice with a version kept: the asset page lists both.
    versioned = tmp_path / "seed-00.png"
    sizes = [versioned.stat().st_size]
    for i, note in enumerate([{"versionLabel": "first", "versionComment": "as seeded"}, {}]):
        png = image_file(tmp_path / f"again-{i}.png", 60 + i, 30, (200, 90, i * 50))
        sizes.append(png.stat().st_size)
        versioned_id = upload(
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
    process(server, database_env, timeout=120)
    images = [
        image_file(tmp_path / "red-square.png", 300, 300, (220, 30, 30)),
        image_file(tmp_path / "green-wide.jpg", 640, 240, (30, 180, 60)),
        image_file(tmp_path / "blue-tall.png", 200, 500, (40, 60, 220)),
    ]
    documents = [
        media.pdf_with_pages(tmp_path / "report.pdf", ["Quarterly report", "Page two"]),
        media.video(tmp_path / "clip.mp4"),
    ]
    report = run_script(
        "journey.mjs",
        server,
        token,
        ARTIFACTS / backend(database_env),
        tmp_path / "profiles",
        {
            **database_env,  # the journey runs the worker too
            "UI_IMAGES": json.dumps([str(p) for p in images]),
            "UI_DOCUMENTS": json.dumps([str(p) for p in documents]),
            "UI_WORKER": json.dumps(worker_argv(server)),
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
        min_shot_bytes=10_000,
    )
    # The only failures were the ones caused on purpose: the 503 part, the 412, and the
    # one read that finds an asset deleted elsewhere (nothing about the asset deleted in
    # the tab answers 404: its page waits for its reads, then asks nothing more).
    allowed = {(a["method"], a["status"]) for a in report["allowed"]}
    assert {("PUT", 503), ("PATCH", 412), ("GET", 404)} <= allowed
    expected = {("PUT", 503), ("PATCH", 412), ("GET", 404)}
    assert allowed - expected <= {("GET", 401), ("POST", 401)}
    assert allowed & {("GET", 401), ("POST", 401)}, "the revoked token was refused"
    not_found = [a["url"] for a in report["allowed"] if a["status"] == 404]
    assert len(not_found) == 1 and not_found[0].endswith("/metadata"), not_found
    assert len(report["screenshots"]) == 15

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


def test_uploads_never_overwrite_silently_and_fail_file_by_file(
    server: LiveServer, database_env: dict[str, str], tmp_path: Path
) -> None:
    """tests/e2e/browser/upload_safety.mjs, at desktop and phone width: names that exist
    ask (new version, keep both, skip; "apply to all"), a bad name fails alone and is
    renamed and retried, and a file is cancelled and retried."""
    token = make_token(server, database_env, "up")
    # Beside the journey's directory, which the journey empties when it starts.
    artifacts = ARTIFACTS / f"{backend(database_env)}-upload"
    report = run_script("upload_safety.mjs", server, token, artifacts, tmp_path / "profiles")
    assert {(a["method"], a["status"]) for a in report["allowed"]} == {("POST", 400)}
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


def test_many_assets_are_selected_and_acted_on_at_once(
    server: LiveServer, database_env: dict[str, str], tmp_path: Path
) -> None:
    """tests/e2e/browser/bulk.mjs, at desktop and phone width: click, shift-click and
    ctrl-click select; bulk set-field, publish, move (one taken name fails alone), copy,
    delete and ZIP download; the folder picker; a folder gone meanwhile refused with its
    reason (AEM's 500); file names and titles on cards; the sort menu; scroll kept on back;
    tab titles."""
    token = make_token(server, database_env, "bulk")
    report = run_script(
        "bulk.mjs",
        server,
        token,
        ARTIFACTS / f"{backend(database_env)}-bulk",
        tmp_path / "profiles",
        {**database_env, "UI_WORKER": json.dumps(worker_argv(server))},
    )
    # Only what was caused on purpose: the taken name (412) and the folder gone (500,
    # AEM's status for a missing destination folder).
    assert {(a["method"], a["status"]) for a in report["allowed"]} == {
        ("MOVE", 412),
        ("MOVE", 500),
    }
    assert len(report["steps"]) == 18 and len(report["screenshots"]) == 10

    # The ZIP the browser saved holds exactly the three assets, byte for byte.
    for width in ("desktop", "phone"):
        saved = report[width]["zip"]
        assert saved["name"] == f"bulk-{width}-3.zip"
        with zipfile.ZipFile(saved["path"]) as z:
            assert z.testzip() is None
            got = {i.filename: z.read(i).decode() for i in z.infolist()}
        assert got == saved["expected"]
