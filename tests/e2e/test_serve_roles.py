"""`assetvault serve`'s processes (docs/runtime.md, "Roles"): ready before the work that
can wait, one worker and one background process beside the API processes, and import
jobs that never hold the capacity processing needs."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests import media
from tests.e2e.test_worker_crash import states, upload
from tests.live import ASSETVAULT, LiveServer, create_token, free_port, is_api_process
from tests.receivers import Received, Reply, receiver

pytestmark = pytest.mark.e2e

PLANTED = 3000


def plant_blobs(data_dir: Path, n: int) -> list[Path]:
    """Unreferenced blobs, as a crash between storing and committing leaves them."""
    root = data_dir / "blobs"
    planted = []
    for i in range(n):
        key = f"{i:064x}"
        path = root / key[:2] / key[2:4] / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"left by a crash")
        planted.append(path)
    return planted


def test_serve_is_ready_before_the_start_up_sweep_and_sweeps_after(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    LiveServer(data_dir=data_dir, extra_args=["--workers", "0"]).start(
        timeout=90
    ).stop()  # a schema
    planted = plant_blobs(data_dir, PLANTED)
    server = LiveServer(data_dir=data_dir, extra_args=["--workers", "0"]).start(timeout=90)
    try:
        # /health answered 200 just now: the sweep had not yet removed what it will.
        left = sum(p.exists() for p in planted)
        assert left > 0, "serve swept before it was ready"
        deadline = time.monotonic() + 120
        while any(p.exists() for p in planted):
            assert time.monotonic() < deadline, "the start-up sweep did not run after ready"
            time.sleep(0.2)
        # Requests succeeded meanwhile and after.
        token = create_token(data_dir, "t")
        r = httpx.get(server.url + "/api/assets.json", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
    finally:
        server.stop()


def role_processes(server: LiveServer) -> dict[str, int]:
    """Serve's long-lived children by what they run."""
    assert server.process is not None
    found: dict[str, int] = {}
    for child in psutil.Process(server.process.pid).children():
        try:
            line = child.cmdline()
        except psutil.Error:
            continue
        if "assetvault.cli" in line:
            role = " ".join(line[line.index("assetvault.cli") + 1 :][:2])
        elif is_api_process(child):
            role = "api"
        else:
            continue
        found[role.split(" --")[0]] = found.get(role.split(" --")[0], 0) + 1
    return found


def role_priorities(server: LiveServer) -> dict[str, set[tuple[int, int]]]:
    """The niceness and scheduling policy of serve's children, by role."""
    assert server.process is not None
    found: dict[str, set[tuple[int, int]]] = {}
    for child in psutil.Process(server.process.pid).children():
        try:
            line = child.cmdline()
            seen = (os.getpriority(os.PRIO_PROCESS, child.pid), os.sched_getscheduler(child.pid))
        except (psutil.Error, OSError):
            continue
        if "assetvault.cli" in line:
            role = line[line.index("assetvault.cli") + 1]
        elif is_api_process(child):
            role = "api"
        else:
            continue
        found.setdefault(role, set()).add(seen)
    return found


@pytest.mark.parametrize("nice", [None, "10"])
def test_serve_runs_one_worker_and_one_background_process(tmp_path: Path, nice: str | None) -> None:
    """At the API processes' CPU priority by default; with ASSETVAULT_ROLES_NICE=10 both
    below it (nice 10 more, SCHED_BATCH), so the requests win the cores."""
    env = {} if nice is None else {"ASSETVAULT_ROLES_NICE": nice}
    server = LiveServer(data_dir=tmp_path / "data", extra_args=["--workers", "2"], env=env)
    server.start(timeout=90)
    try:
        deadline = time.monotonic() + 60
        while (found := role_processes(server)) != {
            "api": 2,
            "worker": 1,
            "background": 1,
        }:
            assert time.monotonic() < deadline, found
            time.sleep(0.2)
        time.sleep(2)  # and it stays so: nothing else is started later
        assert role_processes(server) == {"api": 2, "worker": 1, "background": 1}
        assert server.process is not None
        pid = server.process.pid
        serve = (os.getpriority(os.PRIO_PROCESS, pid), os.sched_getscheduler(pid))
        lowered = serve if nice is None else (min(19, serve[0] + 10), os.SCHED_BATCH)
        assert role_priorities(server) == {
            "api": {serve},
            "worker": {lowered},
            "background": {lowered},
        }
    finally:
        server.stop()


def test_a_slow_import_source_does_not_hold_processing(tmp_path: Path) -> None:
    """Issue 27, class 6: two URLs trickling in one import job, an upload beside it is
    processed within seconds, with a single processing slot."""
    release = threading.Event()

    def stall(got: Received) -> Reply:
        release.wait(60)  # a source that answers only when the test ends
        return Reply(200, b"late")

    env = {"ASSETVAULT_FETCH_ALLOW": "127.0.0.1"}
    with receiver(stall) as slow:
        server = LiveServer(data_dir=tmp_path / "data", env=env, extra_args=["--workers", "1"])
        server.start(timeout=90)
        try:
            token = create_token(server.data_dir, "t")
            http = httpx.Client(
                base_url=server.url,
                headers={"Authorization": f"Bearer {token}", "X-Api-Key": "e2e"},
                timeout=30,
            )
            files = [{"fileName": f"s{i}", "url": f"{slow.url}/s{i}"} for i in range(2)]
            r = http.post(
                "/adobe/assets/import/fromUrl", json={"folder": "/content/dam/in", "files": files}
            )
            assert r.status_code == 202, r.text
            deadline = time.monotonic() + 60
            while not slow.received:  # the job is fetching
                assert time.monotonic() < deadline, "the import did not start"
                time.sleep(0.05)
            upload(http, "beside.jpg", media.cmyk_jpeg(tmp_path / "c.jpg").read_bytes())
            deadline = time.monotonic() + 30
            while states(server.data_dir)[0] != {"processed": 1}:
                assert time.monotonic() < deadline, states(server.data_dir)
                time.sleep(0.1)
            assert http.get(r.headers["location"]).json()["state"] == "PROCESSING"
        finally:
            release.set()
            server.stop()


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps_rollup"), reason="Linux only")
def test_the_api_processes_do_not_load_the_media_tools(tmp_path: Path) -> None:
    server = LiveServer(data_dir=tmp_path / "data", extra_args=["--workers", "0"]).start(timeout=90)
    try:
        assert server.process is not None
        apis = [c for c in psutil.Process(server.process.pid).children() if is_api_process(c)]
        assert len(apis) == 2
        for api in apis:
            maps = Path(f"/proc/{api.pid}/maps").read_text()
            assert "libvips" not in maps, "an API process loaded libvips"
    finally:
        server.stop()


def children_running(server: LiveServer, role: str) -> list[psutil.Process]:
    assert server.process is not None
    found = []
    for child in psutil.Process(server.process.pid).children():
        try:
            line = child.cmdline()
            if child.status() != psutil.STATUS_ZOMBIE and role in line:
                found.append(child)
        except psutil.Error:
            pass  # exited meanwhile
    return found


def test_a_kill_9_of_the_background_process_loses_nothing(tmp_path: Path) -> None:
    """Its tasks (here the indexer) start again in a new process and go on from where
    they stood: a change made while it was dead is found by a search afterwards."""
    server = LiveServer(data_dir=tmp_path / "data", extra_args=["--workers", "0"])
    server.start(timeout=90)
    try:
        token = create_token(server.data_dir, "t")
        http = httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {token}", "X-Api-Key": "e2e"},
            timeout=30,
        )
        deadline = time.monotonic() + 60
        while not children_running(server, "background"):
            assert time.monotonic() < deadline, "no background process"
            time.sleep(0.1)
        [first] = children_running(server, "background")
        first.kill()
        first.wait(10)
        upload(http, "granite.jpg", b"made while the indexer was dead")
        deadline = time.monotonic() + 60
        while not [p for p in children_running(server, "background") if p.pid != first.pid]:
            assert time.monotonic() < deadline, "the background process was not restarted"
            time.sleep(0.1)
        deadline = time.monotonic() + 60
        while True:
            found = http.post(
                "/adobe/assets/search?allowUnsafeSearch=true",
                json={"query": [{"match": {"text": "granite"}}]},
            )
            if found.status_code == 200 and found.json()["hits"]["results"]:
                break
            assert time.monotonic() < deadline, found.text
            time.sleep(0.2)
    finally:
        server.stop()


def test_health_means_ready_the_requests_right_after_it_succeed(tmp_path: Path) -> None:
    """The first 200 of /health on a fresh data directory (--ephemeral: the ready line is
    written on it) means any request from then on is served, whichever API process
    accepts it."""
    from assetvault.runtime.ephemeral import start_ephemeral

    with (tmp_path / "serve.log").open("wb") as log:
        server = start_ephemeral(["--processes", "2", "--workers", "0"], stderr=log)
        try:
            failures: list[str] = []

            def ask() -> None:
                try:
                    r = httpx.get(
                        server.url + "/api/assets.json",
                        headers={**server.headers, "Connection": "close"},
                        timeout=30,
                    )
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

            askers = [threading.Thread(target=ask) for _ in range(16)]
            for t in askers:
                t.start()
            for t in askers:
                t.join()
            assert failures == []
        finally:
            server.stop()


def test_a_kill_9_of_an_api_process_is_followed_by_another(tmp_path: Path) -> None:
    """serve forks its API processes (runtime/api.py) and starts another when one dies;
    requests are answered meanwhile by the other and afterwards by both."""
    server = LiveServer(data_dir=tmp_path / "data", extra_args=["--workers", "0"]).start(timeout=90)
    try:
        assert server.process is not None
        apis = [c for c in psutil.Process(server.process.pid).children() if is_api_process(c)]
        assert len(apis) == 2
        apis[0].kill()
        apis[0].wait(10)
        deadline = time.monotonic() + 60
        while True:
            now = [c for c in psutil.Process(server.process.pid).children() if is_api_process(c)]
            alive = [c for c in now if c.status() != psutil.STATUS_ZOMBIE]
            if len(alive) == 2 and apis[0].pid not in {c.pid for c in alive}:
                break
            assert time.monotonic() < deadline, "no API process was started in its place"
            time.sleep(0.1)
        for _ in range(10):
            r = httpx.get(server.url + "/health", headers={"Connection": "close"}, timeout=30)
            assert r.status_code == 200
    finally:
        server.stop()


def test_a_client_that_connects_during_the_start_waits_and_is_answered_once_ready(
    tmp_path: Path,
) -> None:
    """serve listens before its imports and its API processes' start: a client that
    connects meanwhile is not refused, and its request is answered by the first API
    process that can serve it (200), never before."""
    port = free_port()
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [
                ASSETVAULT,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "data"),
                "--workers",
                "0",
                "--log-level",
                "warning",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, (tmp_path / "serve.log").read_text()
                # Looked at before each attempt: API processes never go away meanwhile.
                apis = [c for c in psutil.Process(process.pid).children() if is_api_process(c)]
                try:
                    client = socket.create_connection(("127.0.0.1", port), timeout=1)
                    break
                except OSError:
                    assert time.monotonic() < deadline, "serve never listened"
                    time.sleep(0.002)
            with client:
                client.settimeout(120)
                client.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                answer = b""
                while chunk := client.recv(65536):
                    answer += chunk
            assert apis == [], "the connection was refused until an API process listened"
            assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        finally:
            process.terminate()
            process.wait(30)
