"""Asset events: delivery throughput and what registrations cost a PATCH.

1. Events/s delivered to a local receiver (uvicorn, its own process) by the dispatcher of
   a real ``serve``: BENCH_EVENTS (default 2,000) downloaded events are raised while the
   bench holds the dispatcher's lease, then the lease is let go and the time from the
   dispatcher taking the lease to the last event received is measured (outbox -> journal
   -> signed POSTs -> attempts written down). Reference, same run: the same number of
   event-sized POSTs sent straight to the same receiver by httpx with as many requests in
   flight as the dispatcher (16). BENCH_EVENTS_PAIRS (default 3) alternating pairs
   (reference first in even pairs); the median of the pairs' ratios (reference time /
   delivery time; target >= 0.8) and their spread. BENCH_PROFILE=1 records the last
   delivery with py-spy (bench/profile.py).
2. PATCH metadata under wrk (BENCH_PATCH_CONNECTIONS, default 4) with no registration
   and with 3 active webhook registrations for metadata_updated, in alternating rounds
   (BENCH_WRK_ROUNDS, default 3, 0 leaves this part out; BENCH_WRK_DURATION, default 8s):
   the ratio of p50 and of p99 latency with three to with none (target: <= 1.1).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tests import media
from tests.live import LiveServer, create_token, free_port

from bench.common import ROOT, summary, write_result
from bench.metadata import _median, _upload, wrk
from bench.profile import ENABLED as PROFILE
from bench.profile import Profile

EVENTS = int(os.environ.get("BENCH_EVENTS", "2000"))
PAIRS = int(os.environ.get("BENCH_EVENTS_PAIRS", "3"))
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


def lease_holder(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT value FROM event_state WHERE key = 'dispatcher_lease'"
        ).fetchone()
    return str(row[0]) if row else ""


def wait_for(check: Any, seconds: float = 300, pace: float = 0.02) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(pace)


def delivery(server: LiveServer, hook: Receiver, writer: str, profile: bool) -> float:
    """Seconds from the dispatcher taking its lease to the receiver having EVENTS more
    events, for a backlog of EVENTS raised while the bench held the lease."""
    db = server.data_dir / "assetvault.db"
    hold_lease(db, time.time() + 3600)
    # The dispatcher looks at its lease every 5 s (a third of 15) and then backs off.
    time.sleep(6)
    settle(hook)
    baseline = hook.count()
    asyncio.run(raise_downloads(f"{server.url}/content/dam/p.jpg", writer, EVENTS))
    time.sleep(1)
    assert hook.count() == baseline, "the dispatcher delivered while the lease was held"
    hold_lease(db, 0)
    # It waits out what it saw of the lease (up to 15 s), then takes it: the clock starts.
    wait_for(lambda: not lease_holder(db).startswith("bench"), 60, 0.005)
    started = time.monotonic()
    assert server.process is not None
    with Profile("events", server.process.pid, enabled=profile):
        wait_for(lambda: hook.count() >= baseline + EVENTS, 600)
    return time.monotonic() - started


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
    load_before = os.getloadavg()[0]
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
            asyncio.run(raise_downloads(f"{server.url}/content/dam/p.jpg", writer, 1))
            wait_for(lambda: hook.count() >= 1)
            with sqlite3.connect(db) as conn:
                body = conn.execute("SELECT event FROM event_journal LIMIT 1").fetchone()[0]
            ref: list[float] = []
            ours: list[float] = []
            for n in range(PAIRS):
                profile = PROFILE and n == PAIRS - 1
                if n % 2 == 0:
                    ref.append(asyncio.run(straight_posts(hook.url, body.encode(), EVENTS)))
                    ours.append(delivery(server, hook, writer, profile))
                else:
                    ours.append(delivery(server, hook, writer, profile))
                    ref.append(asyncio.run(straight_posts(hook.url, body.encode(), EVENTS)))
                print(
                    f"  pair {n + 1}/{PAIRS}: straight POSTs {EVENTS / ref[-1]:.0f}/s, "
                    f"delivery {EVENTS / ours[-1]:.0f} events/s (ratio {ref[-1] / ours[-1]:.2f})",
                    flush=True,
                )
            ratios = [r / o for r, o in zip(ref, ours, strict=True)]
            delivery_result = {
                "events": EVENTS,
                "pairs": PAIRS,
                "seconds": summary(ours),
                "reference_seconds": summary(ref),
                "events_per_s_median": EVENTS / statistics.median(ours),
                "reference_posts_per_s_median": EVENTS / statistics.median(ref),
                "ratio_per_pair": ratios,
                "ratio": statistics.median(ratios),
                "ratio_spread": [min(ratios), max(ratios)],
                "target_ratio": 0.8,
                "loadavg_1min": {"before": load_before, "after": os.getloadavg()[0]},
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
            rounds: list[dict[str, Any]] = []
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
    p50 = _median([r["three"]["p50_ms"] / r["none"]["p50_ms"] for r in rounds]) if rounds else 0
    p99 = _median([r["three"]["p99_ms"] / r["none"]["p99_ms"] for r in rounds]) if rounds else 0
    rps = _median([r["three"]["rps"] / r["none"]["rps"] for r in rounds]) if rounds else 0
    result = {
        "delivery": delivery_result,
        "patch_rounds": rounds,
        "patch_latency_ratio_p50": p50,
        "patch_latency_ratio_p99": p99,
        "patch_rps_ratio": rps,
        "patch_connections": int(CONNECTIONS),
    }
    write_result("events", result)
    d = delivery_result
    ok = "meets" if d["ratio"] >= 0.8 else "BELOW"
    print(
        f"delivery of {EVENTS} events, median of {PAIRS} pairs: "
        f"{d['events_per_s_median']:.0f} events/s; straight POSTs "
        f"{d['reference_posts_per_s_median']:.0f}/s; ratio per pair "
        f"{', '.join(f'{x:.2f}' for x in d['ratio_per_pair'])}, median {d['ratio']:.2f} "
        f"({ok} target >= 0.8); spread {d['ratio_spread'][0]:.2f}-{d['ratio_spread'][1]:.2f}; "
        f"1-minute load {d['loadavg_1min']['before']:.1f} before, "
        f"{d['loadavg_1min']['after']:.1f} after"
    )
    if rounds:
        print(
            f"PATCH, wrk -c {CONNECTIONS}, median of {ROUNDS} rounds: 3 registrations / none = "
            f"p50 {p50:.2f}, p99 {p99:.2f}, req/s {rps:.2f}   (target: latency ratio <= 1.1)"
        )
    return result


if __name__ == "__main__":
    main()
