"""Ingest of N generated 12-megapixel JPEGs end to end: upload through the direct binary
upload protocol, then processing to ``processed`` by the server's workers. Reported as
assets/s and as a ratio to running ``vipsthumbnail`` for the same four renditions on the
same files with the same number of processes, in the same run.

Two columns, each in every pair: the embedded default (SQLite and a blob directory) and
the scale-out engines (PostgreSQL and Ceph RGW, started here as the tests start them);
BENCH_INGEST_COLUMNS=embedded leaves the second out.

Then the peak memory of a worker (and its sandbox child) on a 10000x10000 JPEG.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pyvips
from tests.live import ASSETVAULT, LiveServer, create_token
from tests.s3 import S3Server

from bench.common import summary, write_result

COUNT = int(os.environ.get("BENCH_INGEST_COUNT", "500"))
PROCESSES = int(os.environ.get("BENCH_INGEST_PROCESSES", str(os.cpu_count() or 1)))
# Reference and Assetvault run in turns, this many times each (the first of a pair
# alternates), so load that comes and goes on a shared machine falls on both alike.
PAIRS = int(os.environ.get("BENCH_INGEST_PAIRS", "3"))
RENDITIONS = ["48x48", "140x100", "319x319", "1280x1280"]
COLUMNS = os.environ.get("BENCH_INGEST_COLUMNS", "embedded,scaleout").split(",")


@dataclass
class Column:
    """The engines of one column: none for the embedded default; a PostgreSQL server's
    admin URL and an S3 server for the scale-out one (each run gets a fresh database and
    a fresh prefix in the bucket)."""

    name: str
    postgres_admin: str | None = None
    s3: S3Server | None = None


@contextlib.contextmanager
def columns() -> Iterator[list[Column]]:
    """The columns asked for, their engines running for the whole benchmark."""
    with contextlib.ExitStack() as stack:
        found = [Column("embedded")] if "embedded" in COLUMNS else []
        if "scaleout" in COLUMNS:
            from tests.pg import postgres_server
            from tests.s3 import rgw_server

            admin = stack.enter_context(postgres_server())
            found.append(Column("scaleout", admin, stack.enter_context(rgw_server())))
        yield found


def photo_like(width: int, height: int) -> pyvips.Image:
    """Noise over a gradient: compresses like a photograph (about 3 bits a pixel)."""
    x = pyvips.Image.xyz(width, height)
    base = (x[0] / width * 200 + x[1] / height * 55).cast("uchar")
    noise = pyvips.Image.gaussnoise(width, height, sigma=18, mean=0)
    bands = [(base + noise * k).cast("uchar") for k in (1.0, 0.8, 0.6)]
    return bands[0].bandjoin(bands[1:]).copy(interpretation="srgb")


def make_files(directory: Path, count: int) -> list[Path]:
    """One 12 MP JPEG; each file is it plus a distinct trailer after the end marker, so
    every file decodes the same but has its own content hash (no deduplication)."""
    base = directory / "base.jpg"
    photo_like(4000, 3000).jpegsave(str(base), Q=90)
    data = base.read_bytes()
    files = []
    for i in range(count):
        path = directory / f"img{i:04d}.jpg"
        path.write_bytes(data + i.to_bytes(4, "big"))
        files.append(path)
    base.unlink()
    return files


def reference(files: list[Path], out: Path) -> float:
    """vipsthumbnail for the four renditions, the files split over PROCESSES processes."""
    out.mkdir(exist_ok=True)
    shards = [files[i::PROCESSES] for i in range(PROCESSES)]

    def run(shard: list[Path]) -> None:
        for size in RENDITIONS:
            fmt = "jpg[Q=85]" if size == "1280x1280" else "png"
            subprocess.run(
                [
                    "vipsthumbnail",
                    "-s",
                    size + ">",
                    "-o",
                    f"{out}/%s_{size}.{fmt}",
                    "--vips-concurrency=1",
                    *map(str, shard),
                ],
                check=True,
            )

    start = time.perf_counter()
    with ThreadPoolExecutor(PROCESSES) as pool:
        list(pool.map(run, shards))
    return time.perf_counter() - start


def upload(http: httpx.Client, path: Path) -> None:
    data = path.read_bytes()
    init = http.post(
        "/content/dam/ingest.initiateUpload.json",
        data={"fileName": path.name, "fileSize": str(len(data))},
    ).json()["files"][0]
    size = max(-(-len(data) // len(init["uploadURIs"])), init["minPartSize"])
    for i, uri in enumerate(init["uploadURIs"]):
        chunk = data[i * size : (i + 1) * size]
        if chunk:
            httpx.put(uri, content=chunk, timeout=120).raise_for_status()
    http.post(
        "/content/dam/ingest.completeUpload.json",
        data={
            "fileName": path.name,
            "fileSize": str(len(data)),
            "uploadToken": init["uploadToken"],
        },
    ).raise_for_status()


def states(data_dir: Path) -> dict[str, int]:
    db = sqlite3.connect(f"file:{data_dir / 'assetvault.db'}?mode=ro", uri=True, timeout=30)
    try:
        return dict(
            db.execute(
                "SELECT asset_state, count(*) FROM nodes WHERE kind='asset' GROUP BY 1"
            ).fetchall()
        )
    finally:
        db.close()


@contextlib.contextmanager
def engines(
    column: Column, work: Path
) -> Iterator[tuple[dict[str, str], Callable[[], dict[str, int]]]]:
    """A server's environment for one run of ``column`` on fresh storage, and how to
    count its assets by state."""
    if column.postgres_admin is None or column.s3 is None:
        yield {}, lambda: states(work / "data")
        return
    from tests.pg import with_database

    name = f"assetvault_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_sql(column.postgres_admin, f'CREATE DATABASE "{name}"'))
    url = with_database(column.postgres_admin, name)
    env = {
        **column.s3.env(),
        "ASSETVAULT_DATABASE_URL": url.replace("postgresql://", "postgresql+asyncpg://"),
        "ASSETVAULT_BLOBS_URL": column.s3.blobs_url(column.s3.bucket, f"bench-{name}"),
    }
    try:
        yield env, lambda: asyncio.run(_pg_states(url))
    finally:
        asyncio.run(_sql(column.postgres_admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _sql(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _pg_states(url: str) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT asset_state, count(*) FROM nodes WHERE kind='asset' GROUP BY 1"
        )
    finally:
        await conn.close()
    return {r[0]: int(r[1]) for r in rows}


def ours(files: list[Path], work: Path, column: Column) -> float:
    with engines(column, work) as (env, count_states):
        return _ours(files, work, env, count_states)


def _ours(
    files: list[Path],
    work: Path,
    env: dict[str, str],
    count_states: Callable[[], dict[str, int]],
) -> float:
    server = LiveServer(data_dir=work / "data", extra_args=["--workers", str(PROCESSES)], env=env)
    server.start()
    try:
        token = create_token(server.data_dir, "bench", env=env)
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=120) as http:
            http.post("/api/assets/ingest", json={"class": "assetFolder"}).raise_for_status()
            start = time.perf_counter()
            # A few uploads at once, as the upload client does; processing starts at once.
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda p: upload(http, p), files))
            while True:
                counts = count_states()
                if counts.get("processing", 0) == 0:
                    break
                time.sleep(0.1)
            elapsed = time.perf_counter() - start
        assert counts == {"processed": len(files)}, counts
        return elapsed
    finally:
        server.stop()


def tree_rss(proc: psutil.Process) -> tuple[int, int]:
    """RSS of the process, and the largest RSS among its descendants."""
    try:
        own = proc.memory_info().rss
        kids = [c.memory_info().rss for c in proc.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    return own, max(kids, default=0)


def worker_peak_rss(work: Path) -> dict[str, float]:
    """One 10000x10000 JPEG through a burst worker, sampling memory every 10 ms."""
    server = LiveServer(data_dir=work / "rss", extra_args=["--workers", "0"]).start()
    try:
        token = create_token(server.data_dir, "bench")
        big = work / "huge.jpg"
        photo_like(10000, 10000).jpegsave(str(big), Q=90)
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=300
        ) as http:
            http.post("/api/assets/ingest", json={"class": "assetFolder"}).raise_for_status()
            upload(http, big)
        worker = subprocess.Popen(
            [ASSETVAULT, "worker", "--burst", "--data-dir", str(server.data_dir)]
        )
        proc = psutil.Process(worker.pid)
        peak_worker = peak_child = 0
        while worker.poll() is None:
            own, child = tree_rss(proc)
            peak_worker, peak_child = max(peak_worker, own), max(peak_child, child)
            time.sleep(0.01)
        assert states(server.data_dir) == {"processed": 1}
        return {
            "worker_peak_rss_MB": peak_worker / 2**20,
            "sandbox_child_peak_rss_MB": peak_child / 2**20,
            "file_MB": big.stat().st_size / 2**20,
        }
    finally:
        server.stop()


def pairs(files: list[Path], work: Path, cols: list[Column]) -> list[dict[str, float]]:
    """Each pair: the reference's seconds and each column's, the reference first in even
    pairs and last in odd ones, so load that comes and goes falls on all alike."""
    timed = []
    for i in range(PAIRS):
        run = work / f"pair{i}"
        run.mkdir()
        seconds: dict[str, float] = {}
        if i % 2 == 0:
            seconds["reference"] = reference(files, run / "ref")
        for col in cols:
            seconds[col.name] = ours(files, run / col.name, col)
        if i % 2 == 1:
            seconds["reference"] = reference(files, run / "ref")
        shutil.rmtree(run, ignore_errors=True)
        ref = seconds["reference"]
        print(
            f"pair {i + 1}: vipsthumbnail {ref:.2f} s, "
            + ", ".join(
                f"{c.name} {seconds[c.name]:.2f} s (ratio {ref / seconds[c.name]:.2f})"
                for c in cols
            ),
            flush=True,
        )
        timed.append(seconds)
    return timed


def main() -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="assetvault-bench-ingest-"))
    try:
        files = make_files(work, COUNT)
        with columns() as cols:
            timed = pairs(files, work, cols)
        rss = worker_peak_rss(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result: dict[str, Any] = {
        "assets": COUNT,
        "processes": PROCESSES,
        "pairs": timed,
        "reference_assets_per_s": summary([COUNT / t["reference"] for t in timed]),
        **rss,
        "loadavg_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "targets": {"ratio": ">= 1.2 (median of pairs)", "worker_peak_rss_MB": "<= 150"},
    }
    lines = []
    for col in cols:
        ratio = summary([t["reference"] / t[col.name] for t in timed])
        speed = summary([COUNT / t[col.name] for t in timed])
        # The embedded default's figures keep their old keys (the target is on it).
        prefix = "" if col.name == "embedded" else f"{col.name}_"
        result[f"{prefix}assetvault_assets_per_s"] = speed
        result[f"{prefix}ratio"] = ratio
        lines.append(
            f"{col.name} {speed['median']:.2f} assets/s, ratio {ratio['median']:.2f} "
            f"(pairs {ratio['min']:.2f}-{ratio['max']:.2f})"
        )
    write_result("ingest", result)
    print(
        f"ingest {COUNT} x 12 MP JPEG with {PROCESSES} processes, {PAIRS} pairs: "
        f"vipsthumbnail {result['reference_assets_per_s']['median']:.2f} assets/s; "
        + "; ".join(lines)
        + " (target >= 1.2 on the embedded default); "
        f"10000x10000 JPEG: worker {rss['worker_peak_rss_MB']:.0f} MB, "
        f"sandbox child {rss['sandbox_child_peak_rss_MB']:.0f} MB (target <= 150); "
        f"1-minute load {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    return result


if __name__ == "__main__":
    main()
