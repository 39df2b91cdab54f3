"""Ingest of N generated 12-megapixel JPEGs end to end: upload through the direct binary
upload protocol, then processing to ``processed`` by the server's workers. Reported as
assets/s and as a ratio to running ``vipsthumbnail`` for the same four renditions on the
same files with the same number of processes, in the same run.

Then the peak memory of a worker (and its sandbox child) on a 10000x10000 JPEG.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pyvips
from tests.live import ASSETVAULT, LiveServer, create_token

from bench.common import summary, write_result

COUNT = int(os.environ.get("BENCH_INGEST_COUNT", "500"))
PROCESSES = int(os.environ.get("BENCH_INGEST_PROCESSES", str(os.cpu_count() or 1)))
# Reference and Assetvault run in turns, this many times each (the first of a pair
# alternates), so load that comes and goes on a shared machine falls on both alike.
PAIRS = int(os.environ.get("BENCH_INGEST_PAIRS", "3"))
RENDITIONS = ["48x48", "140x100", "319x319", "1280x1280"]


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


def ours(files: list[Path], work: Path) -> float:
    server = LiveServer(data_dir=work / "data", extra_args=["--workers", str(PROCESSES)])
    server.start()
    try:
        token = create_token(server.data_dir, "bench")
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=120) as http:
            http.post("/api/assets/ingest", json={"class": "assetFolder"}).raise_for_status()
            start = time.perf_counter()
            # A few uploads at once, as the upload client does; processing starts at once.
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda p: upload(http, p), files))
            while True:
                counts = states(server.data_dir)
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


def pairs(files: list[Path], work: Path) -> list[tuple[float, float]]:
    """(reference seconds, Assetvault seconds) for each pair, the order alternating."""
    timed = []
    for i in range(PAIRS):
        run = work / f"pair{i}"
        run.mkdir()
        if i % 2 == 0:
            ref = reference(files, run / "ref")
            mine = ours(files, run)
        else:
            mine = ours(files, run)
            ref = reference(files, run / "ref")
        shutil.rmtree(run, ignore_errors=True)
        print(
            f"pair {i + 1}: vipsthumbnail {ref:.2f} s, Assetvault {mine:.2f} s, "
            f"ratio {ref / mine:.2f}",
            flush=True,
        )
        timed.append((ref, mine))
    return timed


def main() -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="assetvault-bench-ingest-"))
    try:
        files = make_files(work, COUNT)
        timed = pairs(files, work)
        rss = worker_peak_rss(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratios = [ref / mine for ref, mine in timed]
    result = {
        "assets": COUNT,
        "processes": PROCESSES,
        "pairs": [{"reference_s": ref, "assetvault_s": mine} for ref, mine in timed],
        "reference_assets_per_s": summary([COUNT / ref for ref, _ in timed]),
        "assetvault_assets_per_s": summary([COUNT / mine for _, mine in timed]),
        "ratio": summary(ratios),
        **rss,
        "targets": {"ratio": ">= 1.2 (median of pairs)", "worker_peak_rss_MB": "<= 150"},
    }
    write_result("ingest", result)
    ratio = result["ratio"]
    print(
        f"ingest {COUNT} x 12 MP JPEG with {PROCESSES} processes, {PAIRS} pairs: "
        f"vipsthumbnail {result['reference_assets_per_s']['median']:.2f} assets/s, Assetvault "
        f"end to end {result['assetvault_assets_per_s']['median']:.2f} assets/s, ratio "
        f"{ratio['median']:.2f} (pairs {ratio['min']:.2f}-{ratio['max']:.2f}; target >= 1.2); "
        f"10000x10000 JPEG: worker {rss['worker_peak_rss_MB']:.0f} MB, "
        f"sandbox child {rss['sandbox_child_peak_rss_MB']:.0f} MB (target <= 150)"
    )
    return result


if __name__ == "__main__":
    main()
