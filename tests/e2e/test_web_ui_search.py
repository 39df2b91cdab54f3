"""Search that helps, and saves that merge, in Debian's chromium driven by playwright-core,
at desktop and at phone width, on each database backend (the embedded index on SQLite,
full text on PostgreSQL):

- tests/e2e/browser/search.mjs: "sprin" typed finds "spring" (words match from their
  start, as the text is typed); "jpeg" typed finds the JPEGs; format and status are
  choices drawn from the facets; a reversed date range is an error in the form and is
  never sent; totals and page counts; an empty state that says what was searched and
  offers to clear the filters; on a phone the results come first and the filters open
  behind a button.
- tests/e2e/browser/merge.mjs: two browsers edit one asset. Different fields: both are
  saved (the 412 is merged: re-read, re-apply, retry once). The same field: the conflict
  is shown and nothing is overwritten. A retry that meets yet another change is not
  retried again.

Screenshots go to tests/artifacts/ui/<backend>-search/ and <backend>-merge/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pyvips

from tests.e2e.browser_runner import (
    ARTIFACTS,
    BROWSER_MARKS,
    backend,
    make_token,
    process,
    run_script,
)
from tests.e2e.browser_runner import server as server
from tests.live import LiveServer

pytestmark = BROWSER_MARKS


def _encoded(name: str, rgb: tuple[int, int, int]) -> bytes:
    image = (pyvips.Image.black(48, 32, bands=3) + list(rgb)).cast("uchar")
    return bytes(image.write_to_buffer("." + name.rsplit(".", 1)[1]))


class Seeder:
    """Folders and assets made as the AEM clients make them (classic folders, direct
    binary upload), and metadata through the Author API."""

    def __init__(self, server: LiveServer, token: str) -> None:
        auth = {"Authorization": f"Bearer {token}", "X-Api-Key": "seed"}
        self.c = httpx.Client(base_url=server.url, headers=auth, timeout=60)

    def folder(self, name: str) -> str:
        r = self.c.post(
            f"/api/assets/{name}", json={"class": "assetFolder", "properties": {"title": name}}
        )
        assert r.status_code == 201, r.text
        return f"/content/dam/{name}"

    def asset(self, folder: str, name: str, data: bytes, **metadata: str) -> str:
        started = self.c.post(
            f"{folder}.initiateUpload.json", data={"fileName": name, "fileSize": len(data)}
        )
        started.raise_for_status()
        entry = started.json()["files"][0]
        httpx.put(entry["uploadURIs"][0], content=data, timeout=60).raise_for_status()
        done = self.c.post(
            started.json()["completeURI"],
            data={"fileName": name, "fileSize": len(data), "uploadToken": entry["uploadToken"]},
        )
        done.raise_for_status()
        asset_id = str(done.json()["assetId"])
        if metadata:
            self.set(asset_id, metadata)
        return asset_id

    def set(self, asset_id: str, metadata: dict[str, Any]) -> None:
        ops = [
            {"op": "add", "path": f"/assetMetadata/{k}", "value": v} for k, v in metadata.items()
        ]
        r = self.c.patch(
            f"/adobe/assets/{asset_id}/metadata",
            json=ops,
            headers={"Content-Type": "application/json-patch+json", "If-Match": "*"},
        )
        assert r.status_code == 200, r.text


def test_search_finds_prefixes_and_formats_checks_ranges_and_shows_results_first(
    server: LiveServer, database_env: dict[str, str], tmp_path: Path
) -> None:
    token = make_token(server, database_env, "ui")
    seed = Seeder(server, token)
    campaign = seed.folder("campaign")
    made = {
        "spring-hero.jpg": ("Spring launch hero shot", "approved", (90, 160, 60)),
        "spring-banner.png": ("Spring banner", "rejected", (200, 200, 60)),
        "autumn.jpg": ("Autumn leaves", "approved", (180, 90, 30)),
        "harbour.jpg": ("Harbour at dusk", "rejected", (30, 60, 120)),
    }
    for name, (title, status, rgb) in made.items():
        seed.asset(
            campaign, name, _encoded(name, rgb), **{"dc:title": title, "dam:assetStatus": status}
        )
    seed.asset(campaign, "notes.txt", b"plain words", **{"dc:title": "Springfield notes"})
    # Fillers: more than one page of 12 in all.
    fillers = seed.folder("fillers")
    for i in range(14):
        seed.asset(fillers, f"filler-{i:02}.png", _encoded("x.png", (i * 15, 40, 90)))
    process(server, database_env)

    report = run_script(
        "search.mjs", server, token, ARTIFACTS / f"{backend(database_env)}-search", tmp_path
    )
    # Nothing failed on purpose here: every request answered 2xx or 3xx.
    assert report["allowed"] == []
    assert len(report["steps"]) == 14 and len(report["screenshots"]) == 12
    # The reversed range never reached the server.
    assert report["reversedRangesSent"] == 0


def test_saves_of_different_fields_merge_and_of_the_same_field_conflict(
    server: LiveServer, database_env: dict[str, str], tmp_path: Path
) -> None:
    token = make_token(server, database_env, "ui")
    seed = Seeder(server, token)
    folder = seed.folder("edits")
    ids = {
        width: seed.asset(
            folder,
            f"{width}.txt",
            f"an asset edited at {width} width".encode(),
            **{"dc:title": "Original title", "dc:description": "Original description"},
        )
        for width in ("desktop", "phone")
    }
    # Processed, so that the pages do not poll: each tab sees the other's change only
    # through its own saves.
    process(server, database_env)
    report = run_script(
        "merge.mjs",
        server,
        token,
        ARTIFACTS / f"{backend(database_env)}-merge",
        tmp_path,
        {"UI_ASSETS": json.dumps(ids)},
    )
    assert len(report["steps"]) == 6 and len(report["screenshots"]) == 6
    # The only failures were the 412s met on purpose, per width: tab A's merged save, tab
    # B's (A's description came in between), A's conflict, and A's retry that met another
    # change (two).
    assert [(a["method"], a["status"]) for a in report["allowed"]] == [("PATCH", 412)] * 10

    # What the server holds is what each person saved.
    auth = {"Authorization": f"Bearer {token}", "X-Api-Key": "check"}
    for width, asset_id in ids.items():
        meta = httpx.get(f"{server.url}/adobe/assets/{asset_id}/metadata", headers=auth).json()
        am = meta["assetMetadata"]
        assert am["dc:title"] == f"Title from tab B ({width}), again", am
        assert am["dc:description"] == f"Description from tab A ({width})", am
        assert am["dc:rights"] == f"Rights changed meanwhile ({width})", am
