"""The soak: a steady mixed load (uploads, metadata writes, moves, deletes, reads, URL
imports, webhook deliveries) for ASSETVAULT_SOAK_SECONDS (30 minutes by default), with
zero errors, and the p99 latency and the server's memory flat: their least-squares
slopes over the run after its first fifth (warm-up) are reported and bounded.

Run by `make soak` only (marker ``soak``). The report is printed and written to
tests/artifacts/soak/report.json."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.live import LiveServer, create_token
from tests.receivers import receiver
from tests.soak import checks
from tests.soak.load import (
    ENV,
    Lane,
    Stats,
    files_handler,
    make_images,
    run_lanes,
    slope,
    watch,
    webhook_handler,
)

pytestmark = [pytest.mark.soak, pytest.mark.e2e, pytest.mark.timeout(0)]

SECONDS = float(os.environ.get("ASSETVAULT_SOAK_SECONDS", "1800"))
RATE = float(os.environ.get("ASSETVAULT_SOAK_RATE", "20"))  # operations a second, all lanes
LANES = 8
SAMPLE_SECONDS = 10.0
# Flat: over the run after warm-up, p99 may not grow by more than 1 ms a minute, nor the
# server's memory by more than 1 MiB a minute (30 MiB over the default half hour).
MAX_P99_SLOPE_MS_PER_MIN = 1.0
MAX_PSS_SLOPE_MIB_PER_MIN = 1.0
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "soak"


def tree_pss_mib(pid: int) -> float:
    """Proportional memory of the server and every process under it (shared pages split
    between them, so the sum is what the tree costs)."""
    root = psutil.Process(pid)
    total = 0
    for p in [root, *root.children(recursive=True)]:
        try:
            total += p.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total / 2**20


def summary(
    stats: Stats, samples: list[dict[str, float]], events: dict[str, int]
) -> dict[str, object]:
    settled = samples[len(samples) // 5 :]
    return {
        "seconds": SECONDS,
        "rate": RATE,
        "operations": stats.operations,
        "operations_per_kind": {op: len(v) for op, v in sorted(stats.latencies.items())},
        "errors": len(stats.errors),
        "first_errors": stats.errors[:20],
        "unanswered": stats.unanswered,
        "events_delivered": len(events),
        "p99_ms": stats.p99() * 1000,
        "p99_slope_ms_per_min": slope([(s["minute"], s["p99_ms"]) for s in settled]),
        "pss_mib_first": settled[0]["pss_mib"] if settled else 0,
        "pss_mib_last": settled[-1]["pss_mib"] if settled else 0,
        "pss_slope_mib_per_min": slope([(s["minute"], s["pss_mib"]) for s in settled]),
        "samples": samples,
    }


def save(report: dict[str, object]) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "report.json").write_text(json.dumps(report, indent=2))


def test_a_steady_mixed_load_runs_without_errors_and_stays_flat(tmp_path: Path) -> None:
    images = make_images(8)
    events: dict[str, int] = {}
    stats = Stats()
    samples: list[dict[str, float]] = []
    with receiver(files_handler) as files, receiver(webhook_handler(events)) as hook:
        server = LiveServer(data_dir=tmp_path / "data", env=ENV).start()
        assert server.process is not None
        try:
            token = create_token(server.data_dir, "soak")
            watch(server.url, token, hook.url)
            pid = server.process.pid

            async def main() -> list[str]:
                async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                    lanes = [
                        Lane(n, http, token, images, random.Random(n), files.url, stats)
                        for n in range(LANES)
                    ]
                    for lane in lanes:
                        await lane.setup()
                    start = time.monotonic()
                    stop = asyncio.Event()
                    load = asyncio.create_task(run_lanes(lanes, SECONDS, RATE, stop))
                    while not load.done():
                        await asyncio.sleep(SAMPLE_SECONDS)
                        now = time.monotonic()
                        samples.append(
                            {
                                "minute": (now - start) / 60,
                                "p99_ms": stats.p99(now - SAMPLE_SECONDS, now) * 1000,
                                "pss_mib": await asyncio.to_thread(tree_pss_mib, pid),
                                "operations": stats.operations,
                            }
                        )
                    await load
                    # The figures of the load are kept before anything is checked.
                    save(summary(stats, samples, events))
                    # The checks read every asset once more: a loaded machine may answer
                    # slowly, which is no error of the server's.
                    async with httpx.AsyncClient(base_url=server.url, timeout=120) as patient:
                        for lane in lanes:
                            lane.http = patient
                        return [w for lane in lanes for w in await lane.check()]

            wrong = asyncio.run(main())
            checks.wait_until(lambda: checks.jobs_terminal(server.data_dir), 300, "jobs terminal")
            reg_id = str(checks.registration_row(server.data_dir, "soak")["id"])
            checks.wait_until(
                lambda: not checks.undelivered(server.data_dir, reg_id, events), 300, "delivery"
            )
        finally:
            server.stop()
    checks.sweep(server.data_dir)
    left = checks.orphans(server.data_dir)

    report = {**summary(stats, samples, events), "wrong": len(wrong), "orphans": len(left)}
    save(report)
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=2))

    assert not stats.errors, "\n".join(stats.errors[:20])
    assert not stats.unanswered
    assert not wrong, "\n".join(wrong[:20])
    assert not left, "\n".join(left[:20])
    assert float(report["p99_slope_ms_per_min"]) <= MAX_P99_SLOPE_MS_PER_MIN, report  # type: ignore[arg-type]
    assert float(report["pss_slope_mib_per_min"]) <= MAX_PSS_SLOPE_MIB_PER_MIN, report  # type: ignore[arg-type]
