"""kill -9 a worker in the middle of a batch: after a restart every asset reaches
processed or failed and every job a final state; none is left stuck."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests import media
from tests.live import ASSETVAULT, LiveServer, create_token

pytestmark = pytest.mark.e2e


def upload(http: httpx.Client, name: str, data: bytes) -> None:
    init = http.post(
        "/content/dam.initiateUpload.json", data={"fileName": name, "fileSize": str(len(data))}
    ).json()["files"][0]
    assert httpx.put(init["uploadURIs"][0], content=data).status_code == 201
    done = http.post(
        "/content/dam.completeUpload.json",
        data={"fileName": name, "fileSize": str(len(data)), "uploadToken": init["uploadToken"]},
    )
    assert done.status_code == 200, done.text


def states(data_dir: Path) -> tuple[dict[str, int], dict[str, int]]:
    db = sqlite3.connect(f"file:{data_dir / 'assetvault.db'}?mode=ro", uri=True)
    try:
        assets = dict(
            db.execute(
                "SELECT asset_state, count(*) FROM nodes WHERE kind='asset' GROUP BY 1"
            ).fetchall()
        )
        jobs = dict(db.execute("SELECT state, count(*) FROM jobs GROUP BY 1").fetchall())
        return assets, jobs
    finally:
        db.close()


def start_worker(data_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [ASSETVAULT, "worker", "--data-dir", str(data_dir)],
        env={**os.environ, "ASSETVAULT_JOB_LEASE_SECONDS": "3"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_kill_worker_mid_batch(tmp_path: Path) -> None:
    server = LiveServer(data_dir=tmp_path / "data", extra_args=["--workers", "0"]).start()
    try:
        token = create_token(server.data_dir, "crash")
        http = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        photo = media.jpeg_with_metadata(tmp_path / "p.jpg", 3000, 2000).read_bytes()
        bomb = media.png_bomb(tmp_path / "b.png").read_bytes()
        count = 24
        for i in range(count):
            # Distinct content per asset: a byte appended after the JPEG's end marker.
            upload(http, f"p{i}.jpg", photo + bytes([i]))
        upload(http, "bomb.png", bomb)
        assert states(server.data_dir)[0] == {"processing": count + 1}

        worker = start_worker(server.data_dir)
        deadline = time.monotonic() + 60
        while states(server.data_dir)[0].get("processed", 0) < 3:
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.05)
        worker.kill()  # kill -9, mid-batch
        worker.wait()
        assets, jobs = states(server.data_dir)
        assert assets.get("processing", 0) > 0, "the kill came too late to test anything"

        worker = start_worker(server.data_dir)
        try:
            deadline = time.monotonic() + 180
            while True:
                assets, jobs = states(server.data_dir)
                if jobs.get("queued", 0) == 0 and jobs.get("running", 0) == 0:
                    break
                assert time.monotonic() < deadline, f"stuck: {assets} {jobs}"
                time.sleep(0.2)
        finally:
            worker.terminate()
            worker.wait(30)
        assert assets == {"processed": count, "failed": 1}
        assert set(jobs) <= {"succeeded", "failed"}
    finally:
        server.stop()


def test_serve_restarts_a_dead_worker(tmp_path: Path) -> None:
    import psutil

    server = LiveServer(data_dir=tmp_path / "data", extra_args=["--workers", "1"]).start()
    try:
        assert server.process is not None
        parent = psutil.Process(server.process.pid)

        def workers() -> list[psutil.Process]:
            found = []
            for child in parent.children():
                try:
                    if child.status() != psutil.STATUS_ZOMBIE and "worker" in child.cmdline():
                        found.append(child)
                except psutil.Error:
                    pass  # exited meanwhile
            return found

        deadline = time.monotonic() + 30
        while not workers():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        [first] = workers()
        first.kill()
        deadline = time.monotonic() + 30
        while True:
            alive = [w for w in workers() if w.pid != first.pid]
            if alive:
                break
            assert time.monotonic() < deadline, "no new worker"
            time.sleep(0.1)
        token = create_token(server.data_dir, "t")
        http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})
        upload(http, "after.jpg", media.cmyk_jpeg(tmp_path / "c.jpg").read_bytes())
        deadline = time.monotonic() + 60
        while states(server.data_dir)[0] != {"processed": 1}:
            assert time.monotonic() < deadline, states(server.data_dir)
            time.sleep(0.1)
    finally:
        server.stop()
    # Gone with the server.
    time.sleep(0.5)
    assert not [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(server.data_dir) in " ".join(p.info["cmdline"] or [])
    ]
