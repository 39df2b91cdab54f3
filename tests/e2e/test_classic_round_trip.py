"""A folder tree made with the classic API, filled by the real @adobe/aem-upload client,
copied and moved with the classic API and read back through the Author API."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests import media
from tests.e2e.test_aem_upload import run_client
from tests.live import LiveServer

pytestmark = pytest.mark.e2e


def ids_by_path(data_dir: Path, prefix: str) -> dict[str, str]:
    db = sqlite3.connect(f"file:{data_dir / 'assetvault.db'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT path, id FROM nodes WHERE kind='asset' AND path LIKE ?", (prefix + "/%",)
        ).fetchall()
    finally:
        db.close()
    return {path[len(prefix) :]: node_id for path, node_id in rows}


def test_classic_copy_and_move_seen_through_the_author_api(
    live_server: LiveServer, admin_token: str, tmp_path: Path
) -> None:
    auth = {"Authorization": f"Bearer {admin_token}"}
    adobe = {**auth, "X-Api-Key": "e2e"}
    http = httpx.Client(base_url=live_server.url, headers=auth, timeout=60)
    for folder in ("rt", "rt/in"):
        r = http.post(
            f"/api/assets/{folder}", json={"class": "assetFolder", "properties": {"title": folder}}
        )
        assert r.status_code == 201, r.text

    local = tmp_path / "pictures"
    (local / "nested").mkdir(parents=True)
    media.jpeg_with_metadata(local / "one.jpg")
    media.cmyk_jpeg(local / "nested" / "two.jpg")
    (local / "nested" / "notes.txt").write_text("notes")
    run_client(live_server, admin_token, local, "/content/dam/rt/in")
    base = "/content/dam/rt/in/pictures"
    before_ids = ids_by_path(live_server.data_dir, base)
    assert set(before_ids) == {"/one.jpg", "/nested/two.jpg", "/nested/notes.txt"}

    def metadata(node_id: str) -> dict:
        r = http.get(f"/adobe/assets/urn:aaid:aem:{node_id}/metadata", headers=adobe)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    deadline = time.monotonic() + 120
    while any(
        metadata(i)["repositoryMetadata"]["aem:assetState"] == "processing"
        for i in before_ids.values()
    ):
        assert time.monotonic() < deadline, "processing did not finish"
        time.sleep(0.3)
    before = {rel: metadata(i)["assetMetadata"] for rel, i in before_ids.items()}
    assert before["/one.jpg"]["dc:title"] == "Sunset over the bay"

    r = http.request("COPY", "/api/assets/rt/in", headers={"X-Destination": "/api/assets/rt/copy"})
    assert r.status_code == 201, r.text
    r = http.request(
        "MOVE",
        "/api/assets/rt/in",
        headers={"X-Destination": f"{live_server.url}/api/assets/rt/moved"},
    )
    assert r.status_code == 201, r.text

    moved = ids_by_path(live_server.data_dir, "/content/dam/rt/moved/pictures")
    copied = ids_by_path(live_server.data_dir, "/content/dam/rt/copy/pictures")
    assert moved == before_ids  # ids survive a move
    assert set(copied) == set(before_ids)
    assert not set(copied.values()) & set(before_ids.values())  # a copy has new ids
    for rel, node_id in moved.items():
        envelope = metadata(node_id)
        assert envelope["repositoryMetadata"]["repo:path"] == f"/content/dam/rt/moved/pictures{rel}"
        assert envelope["assetMetadata"] == before[rel]
    for rel, node_id in copied.items():
        envelope = metadata(node_id)
        assert envelope["repositoryMetadata"]["repo:path"] == f"/content/dam/rt/copy/pictures{rel}"
        assert envelope["assetMetadata"] == before[rel]
        original = http.get(f"/adobe/assets/urn:aaid:aem:{node_id}/original/as/x", headers=adobe)
        assert original.status_code == 200
    assert http.get("/api/assets/rt/in.json").status_code == 404
