"""Asset events: delivery throughput and what registrations cost a PATCH.

1. Events/s delivered to a local receiver (uvicorn, its own process) by the dispatcher of
   a real ``serve``: BENCH_EVENTS (default 2,000) downloaded events are raised while the
   bench holds the dispatcher's lease, then the lease is let go and the time to deliver
   the backlog is measured (outbox -> journal -> signed POSTs). Reference, same run: the
   same number of event-sized POSTs sent straight to the same receiver by httpx with as
   many requests in flight as the dispatcher (16). Reported as the ratio.
2. PATCH metadata under wrk (BENCH_PATCH_CONNECTIONS, default 4) with no registration
   and with 3 active webhook registrations for metadata_updated, in alternating rounds
   (BENCH_WRK_ROUNDS, default 3; BENCH_WRK_DURATION, default 8s): the ratio of p50 and
   of p99 latency with three to with none (target: <= 1.1).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tests import media
from tests.live import LiveServer, create_token, free_port

from bench.common import ROOT, write_result
from bench.metadata import _median, _upload, wrk

EVENTS = int(os.environ.get("BENCH_EVENTS", "2000"))
CONNECTIONS = os.environ.get("BENCH_PATCH_CONNECTIONS", "4")
ROUNDS = int(os.environ.get("BENCH_WRK_ROUNDS", "3"))
IN_FLIGHT = 16
ENV = {"ASSETVAULT_FETCH_ALLOW": "127.0.0.1"}


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Receiver:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.event_receiver:app",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=ROOT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/count", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the receiver did not start")

    def count(self) -> int:
        return int(httpx.get(self.url + "/count", timeout=5).text)

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait()


def register(server: LiveServer, admin: str, url: str) -> str:
    r = httpx.post(
        server.url + "/adobe/events/registrations",
        json={
            "name": "bench",
            "delivery_type": "webhook",
            "webhook_url": url,
            "events_of_interest": [
                "aem.assets.asset.downloaded",
                "aem.assets.asset.metadata_updated",
            ],
        },
        headers={"Authorization": f"Bearer {admin}", "X-Api-Key": "bench"},
        timeout=30,
    )
    r.raise_for_status()
    assert r.json()["webhook_status"] == "verified", r.text
    return str(r.json()["id"])


def unregister(server: LiveServer, admin: str, registration: str) -> None:
    httpx.delete(
        f"{server.url}/adobe/events/registrations/{registration}",
        headers={"Authorization": f"Bearer {admin}", "X-Api-Key": "bench"},
    ).raise_for_status()


def hold_lease(db: Path, until: float) -> None:
    """Keep serve's dispatcher waiting (its lease is a row of the database)."""
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO event_state (key, value) VALUES ('dispatcher_lease', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (f"bench {until}",),
        )


def wait_for(check: Any, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.02)


def settle(hook: Receiver) -> None:
    """Wait until the receiver's count stops moving for a second."""
    last = -1
    while (now := hook.count()) != last:
        last = now
        time.sleep(1)


async def raise_downloads(url: str, token: str, n: int) -> None:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
        queue = iter(range(n))

        async def worker() -> None:
            for _ in queue:
                (await http.get(url)).raise_for_status()

        await asyncio.gather(*(worker() for _ in range(8)))


async def straight_posts(url: str, body: bytes, n: int) -> float:
    """Seconds to POST ``n`` event-sized bodies to the receiver, IN_FLIGHT at a time."""
    headers = {"content-type": "application/cloudevents+json; charset=UTF-8"}
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=IN_FLIGHT)) as http:
        queue = iter(range(n))
        started = time.monotonic()

        async def worker() -> None:
            for _ in queue:
                (await http.post(url, content=body, headers=headers)).raise_for_status()

        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        return time.monotonic() - started


def main() -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="assetvault-bench-events-"))
    server = LiveServer(data_dir=work / "data", env=ENV, extra_args=["--workers", "1"])
    with Receiver() as hook:
        server.start()
        try:
            admin = create_token(server.data_dir, "bench-admin", "admin")
            writer = create_token(server.data_dir, "bench-writer", "write")
            http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {writer}"})
            photo = media.jpeg_with_metadata(work / "p.jpg").read_bytes()
            asset = _upload(http, "/content/dam", "p.jpg", photo)
            registration = register(server, admin, hook.url)

            # 1. throughput: a backlog of EVENTS events, delivered once the lease is free
            db = server.data_dir / "assetvault.db"
            hold_lease(db, time.time() + 3600)
            time.sleep(16)  # the running dispatcher's own lease (15 s) runs out
            baseline = hook.count()
            asyncio.run(raise_downloads(f"{server.url}/content/dam/p.jpg", writer, EVENTS))
            with sqlite3.connect(db) as conn:
                journal_sample = conn.execute(
                    "SELECT count(*) FROM outbox WHERE type = 'asset.downloaded'"
                ).fetchone()[0]
            assert journal_sample >= EVENTS
            time.sleep(1)
            assert hook.count() == baseline, "the dispatcher delivered while the lease was held"
            started = time.monotonic()
            hold_lease(db, 0)
            wait_for(lambda: hook.count() >= baseline + EVENTS)
            delivered_s = time.monotonic() - started
            with sqlite3.connect(db) as conn:
                body = conn.execute("SELECT event FROM event_journal LIMIT 1").fetchone()[0]
            reference_s = asyncio.run(straight_posts(hook.url, body.encode(), EVENTS))
            delivery = {
                "events": EVENTS,
                "seconds": delivered_s,
                "events_per_s": EVENTS / delivered_s,
                "reference_posts_per_s": EVENTS / reference_s,
                "ratio": reference_s / delivered_s,
            }
            unregister(server, admin, registration)

            # 2. PATCH latency with no registration and with three
            script = work / "patch.lua"
            script.write_text(
                'wrk.method = "PATCH"\n'
                'wrk.body = \'[{"op":"add","path":"/bench:counter","value":1}]\'\n'
                'wrk.headers["Content-Type"] = "application/json-patch+json"\n'
                'wrk.headers["If-Match"] = "*"\n'
            )
            target = f"{server.url}/adobe/assets/{asset}/metadata"
            headers = {"Authorization": f"Bearer {writer}", "X-Api-Key": "bench"}
            import bench.metadata as metadata_bench

            metadata_bench.CONNECTIONS = CONNECTIONS
            rounds = []
            for _ in range(ROUNDS):
                none = wrk(target, headers, script, CONNECTIONS)
                ids = [register(server, admin, hook.url) for _ in range(3)]
                three = wrk(target, headers, script, CONNECTIONS)
                settle(hook)  # the next round starts with nothing left to deliver
                for i in ids:
                    unregister(server, admin, i)
                rounds.append({"none": none, "three": three})
        finally:
            server.stop()
    p50 = _median([r["three"]["p50_ms"] / r["none"]["p50_ms"] for r in rounds])
    p99 = _median([r["three"]["p99_ms"] / r["none"]["p99_ms"] for r in rounds])
    rps = _median([r["three"]["rps"] / r["none"]["rps"] for r in rounds])
    result = {
        "delivery": delivery,
        "patch_rounds": rounds,
        "patch_latency_ratio_p50": p50,
        "patch_latency_ratio_p99": p99,
        "patch_rps_ratio": rps,
        "patch_connections": int(CONNECTIONS),
    }
    write_result("events", result)
    print(
        f"delivery: {EVENTS} events in {delivered_s:.2f} s = "
        f"{delivery['events_per_s']:.0f} events/s; "
        f"straight POSTs {delivery['reference_posts_per_s']:.0f}/s; ratio {delivery['ratio']:.2f}"
    )
    print(
        f"PATCH, wrk -c {CONNECTIONS}, median of {ROUNDS} rounds: 3 registrations / none = "
        f"p50 {p50:.2f}, p99 {p99:.2f}, req/s {rps:.2f}   (target: latency ratio <= 1.1)"
    )
    return result


if __name__ == "__main__":
    main()
