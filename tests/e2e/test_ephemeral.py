"""The real ``assetvault serve --ephemeral --port 0`` and ``serve --seed DIR`` processes,
as a CI script drives them (docs/ci.md): the ready line read from stdout, its url and
token used, the server stopped, its data directory and children gone."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from assetvault.runtime.ephemeral import start_ephemeral, start_serve
from tests import media
from tests.live import ASSETVAULT, create_token, is_api_process

pytestmark = pytest.mark.e2e


def adobe(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Api-Key": "e2e"}


def children_of(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_ephemeral_server_prints_one_ready_line_and_leaves_nothing(
    tmp_path: Path, sig: signal.Signals
) -> None:
    log = (tmp_path / "serve.log").open("wb")
    started = time.monotonic()
    server = start_ephemeral(["--log-level", "warning"], stderr=log)
    took = time.monotonic() - started
    print(f"ready line after {took:.2f} s")
    try:
        assert server.token and server.token.startswith("av_")
        assert server.data_dir.is_dir()
        assert server.url.startswith("http://127.0.0.1:") and not server.url.endswith(":0")
        # Ready means requests succeed, at once: no polling.
        assert httpx.get(server.url + "/health").status_code == 200
        made = httpx.post(
            server.url + "/api/assets/ci",
            json={"class": "assetFolder", "properties": {"title": "CI"}},
            headers=server.headers,
        )
        assert made.status_code == 201, made.text
        listed = httpx.get(server.url + "/api/assets/ci.json", headers=server.headers)
        assert listed.status_code == 200
        assert httpx.get(server.url + "/api/assets.json").status_code == 401
        # Stdout holds the ready line alone: after it, the stream has ended.
        assert server.process.stdout is not None
        assert server.process.stdout.read() == b""
        # The worker and background roles come up after ready; wait for them so the stop
        # below has them to end.
        deadline = time.monotonic() + 120
        while len(children_of(server.process.pid)) < 3:
            assert time.monotonic() < deadline, "the roles never started"
            time.sleep(0.2)
        children = children_of(server.process.pid)
    finally:
        server.process.send_signal(sig)
        status = server.process.wait(90)
        log.close()
    assert status == 0, (tmp_path / "serve.log").read_text()
    assert not server.data_dir.exists()
    # The API processes and the roles were ended and waited for before the data directory
    # went; multiprocessing's resource tracker ends on its own once its parent is gone.
    _, left = psutil.wait_procs(children, timeout=15)
    assert not left, [(c.pid, c.cmdline()) for c in left]


def test_port_zero_is_one_port_shared_by_every_api_process(tmp_path: Path) -> None:
    with (tmp_path / "serve.log").open("wb") as log:
        server = start_ephemeral(["--processes", "2", "--workers", "0"], stderr=log)
        try:
            port = int(server.url.rsplit(":", 1)[1])
            api = [c for c in children_of(server.process.pid) if is_api_process(c)]
            assert len(api) == 2
            # Every request is answered, whichever API process accepts it.
            with httpx.Client(headers=server.headers) as http:
                for _ in range(20):
                    r = http.get(server.url + "/api/assets.json", headers={"Connection": "close"})
                    assert r.status_code == 200
            listening = {
                c.laddr.port
                for p in [psutil.Process(server.process.pid), *api]
                for c in p.net_connections(kind="tcp")
                if c.status == psutil.CONN_LISTEN
            }
            assert listening == {port}
        finally:
            assert server.stop() == 0


def test_an_api_process_that_hangs_is_killed_and_replaced(tmp_path: Path) -> None:
    """A process stopped (SIGSTOP: no exit, no answer, as a loop blocked forever) is
    seen silent by serve within its hang bound, killed and replaced; requests go on."""
    with (tmp_path / "serve.log").open("wb") as log:
        server = start_ephemeral(
            ["--processes", "2", "--workers", "0"],
            stderr=log,
            env={**os.environ, "ASSETVAULT_API_HANG_SECONDS": "8"},
        )
        try:
            api = [c for c in children_of(server.process.pid) if is_api_process(c)]
            assert len(api) == 2
            hung = api[0]
            hung.send_signal(signal.SIGSTOP)
            stopped = time.monotonic()
            replaced: list[psutil.Process] = []
            while time.monotonic() - stopped < 40:
                alive = [c for c in children_of(server.process.pid) if is_api_process(c)]
                replaced = [c for c in alive if c.pid not in {p.pid for p in api}]
                if replaced and not hung.is_running():
                    break
                time.sleep(0.2)
            took = time.monotonic() - stopped
            assert replaced and not hung.is_running(), "the stopped process was left in place"
            assert 8 <= took < 30, took  # not before its bound, and soon after it
            with httpx.Client(headers=server.headers) as http:
                for _ in range(20):
                    r = http.get(server.url + "/api/assets.json", headers={"Connection": "close"})
                    assert r.status_code == 200
        finally:
            with contextlib.suppress(psutil.Error):
                hung.send_signal(signal.SIGCONT)
            assert server.stop() == 0
    assert "has not turned its loop" in (tmp_path / "serve.log").read_text()


def test_ready_line_without_ephemeral_has_no_token_and_keeps_the_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    token = create_token(data_dir, "mine")
    with (tmp_path / "serve.log").open("wb") as log:
        server = start_serve(["--data-dir", str(data_dir), "--workers", "0"], stderr=log)
        try:
            assert server.token is None and server.data_dir == data_dir.resolve()
            r = httpx.get(server.url + "/api/assets.json", headers=adobe(token))
            assert r.status_code == 200
        finally:
            assert server.stop() == 0
    assert (data_dir / "assetvault.db").exists()


def test_ephemeral_refuses_a_data_dir(tmp_path: Path) -> None:
    out = subprocess.run(
        [ASSETVAULT, "serve", "--ephemeral", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "--ephemeral" in out.stderr
    assert out.stdout == ""


def seed_tree(root: Path) -> Path:
    photos = root / "Photos: 2024"
    (photos / "raw").mkdir(parents=True)
    (root / "empty").mkdir()
    media.jpeg_with_metadata(photos / "sunset.jpg", 600, 400)
    media.png16_with_alpha(photos / "raw" / "sunset.png", 500, 250)
    (photos / "sunset.jpg.metadata.json").write_text(
        json.dumps(
            {
                "assetMetadata": {"dc:title": "Sunset", "dc:subject": ["beach", "evening"]},
                "relations": [{"relationType": "derived", "path": "raw/sunset.png"}],
            }
        )
    )
    return root


def asset_ids(http: httpx.Client, url: str, count: int) -> dict[str, str]:
    """The assets' ids by path, from a search (the index catches up after ready)."""
    deadline = time.monotonic() + 120
    while True:
        r = http.post(
            url + "/adobe/assets/search",
            params={"allowUnsafeSearch": "true"},
            json={"query": [{"match": {"text": "*"}}], "limit": 10},
        )
        assert r.status_code in (200, 503), r.text  # 503: the index is being built
        hits = r.json()["hits"]["results"] if r.status_code == 200 else []
        if len(hits) >= count:
            return {h["repositoryMetadata"]["repo:path"]: h["assetId"] for h in hits}
        assert time.monotonic() < deadline, hits
        time.sleep(0.3)


def outbox_rows(data_dir: Path) -> int:
    db = sqlite3.connect(f"file:{data_dir / 'assetvault.db'}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
    finally:
        db.close()


def test_serve_seed_then_seed_again_changes_nothing(tmp_path: Path) -> None:
    source = seed_tree(tmp_path / "seed")
    data_dir = tmp_path / "data"
    token = create_token(data_dir, "ci")
    http = httpx.Client(headers=adobe(token), timeout=30)
    with (tmp_path / "serve.log").open("wb") as log:
        server = start_serve(["--data-dir", str(data_dir), "--seed", str(source)], stderr=log)
        try:
            url = server.url
            # Folders, names mapped as the CLI upload maps them, titled with the originals.
            folder = http.get(url + "/api/assets/Photos-%202024.json")
            assert folder.status_code == 200, folder.text
            assert folder.json()["properties"]["dc:title"] == "Photos: 2024"
            assert http.get(url + "/api/assets/empty.json").status_code == 200
            raw = http.get(url + "/api/assets/Photos-%202024/raw.json")
            assert [e["properties"]["name"] for e in raw.json()["entities"]] == ["sunset.png"]
            # The metadata of the sidecar and the relation it names.
            ids = asset_ids(http, url, 2)
            jpeg = ids["/content/dam/Photos- 2024/sunset.jpg"]
            png = ids["/content/dam/Photos- 2024/raw/sunset.png"]
            meta = http.get(f"{url}/adobe/assets/{jpeg}/metadata").json()
            assert meta["assetMetadata"]["dc:title"] == "Sunset"
            assert meta["assetMetadata"]["dc:subject"] == ["beach", "evening"]
            relations = http.get(f"{url}/adobe/assets/{jpeg}/relations").json()["items"]
            assert relations == [{"relationType": "derived", "relatedAssetId": png}]
            # Processed as any upload is: renditions made by the worker.
            deadline = time.monotonic() + 180
            while True:
                meta = http.get(f"{url}/adobe/assets/{jpeg}/metadata").json()
                if meta["repositoryMetadata"]["aem:assetState"] == "processed":
                    break
                assert time.monotonic() < deadline, meta["repositoryMetadata"]
                time.sleep(0.5)
            renditions = http.get(f"{url}/adobe/assets/{jpeg}/renditions").json()["items"]
            assert len(renditions) > 1, renditions
            # Extraction did not undo what the sidecar set.
            assert meta["assetMetadata"]["dc:title"] == "Sunset"
            png_state = http.get(f"{url}/adobe/assets/{png}/metadata").json()
            while png_state["repositoryMetadata"]["aem:assetState"] != "processed":
                assert time.monotonic() < deadline
                time.sleep(0.5)
                png_state = http.get(f"{url}/adobe/assets/{png}/metadata").json()
        finally:
            assert server.stop() == 0
    rows = outbox_rows(data_dir)
    again = subprocess.run(
        [ASSETVAULT, "seed", str(source), "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert "2 file(s) unchanged" in again.stderr and "0 failed" in again.stderr
    assert outbox_rows(data_dir) == rows
    http.close()


def test_seed_refuses_a_data_dir_a_server_uses(tmp_path: Path) -> None:
    source = tmp_path / "seed"
    source.mkdir()
    (source / "a.txt").write_text("a")
    with (tmp_path / "serve.log").open("wb") as log:
        server = start_serve(["--data-dir", str(tmp_path / "data"), "--workers", "0"], stderr=log)
        try:
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "assetvault.cli",
                    "seed",
                    str(source),
                    "--data-dir",
                    str(tmp_path / "data"),
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert out.returncode == 2 and "stop it first" in out.stderr
        finally:
            server.stop()
