"""URL import of N files of S MB (default 300 x 5 MB, the Author API's largest job) from
nginx on loopback, end to end: POST fromUrl until the job is COMPLETED. Reported as
wall time and as a ratio to ``curl --parallel`` fetching the same files from the same
server into a directory, in the same run (ratio = curl time / Assetvault time; the
target is 0.8 or more), and the peak RSS of the server's processes (API and worker)
during the import.

Assetvault fsyncs every blob and records every file in the database; curl only writes
the files. Quick run: BENCH_IMPORT_COUNT=30 BENCH_IMPORT_SIZE_MB=1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from tests.live import LiveServer, create_token

from bench.common import write_result
from bench.upload import Nginx

COUNT = int(os.environ.get("BENCH_IMPORT_COUNT", "300"))
SIZE_MB = float(os.environ.get("BENCH_IMPORT_SIZE_MB", "5"))
PARALLEL = int(os.environ.get("BENCH_IMPORT_PARALLEL", "8"))  # curl's and Assetvault's
SHARDS = 2  # worker processes fetching the job


def make_files(root: Path) -> list[str]:
    """COUNT files of random bytes (nothing to deduplicate, nothing to compress)."""
    size = int(SIZE_MB * 1024 * 1024)
    block = os.urandom(size)
    names = []
    for i in range(COUNT):
        name = f"f{i:04d}.bin"
        # Each file differs in its first bytes, so every one has its own content hash.
        (root / name).write_bytes(i.to_bytes(8, "big") + block[8:])
        names.append(name)
    return names


def curl_parallel(base: str, names: list[str], out: Path) -> float:
    out.mkdir()
    config = out.parent / "curl.cfg"
    config.write_text("".join(f'url = "{base}/{n}"\noutput = "{out / n}"\n' for n in names))
    os.sync()
    start = time.perf_counter()
    subprocess.run(
        [
            "curl",
            "-sS",
            "--no-progress-meter",
            "--fail",
            "--parallel",
            "--parallel-max",
            str(PARALLEL),
            "-K",
            str(config),
        ],
        check=True,
    )
    elapsed = time.perf_counter() - start
    if sum((out / n).stat().st_size for n in names) != COUNT * int(SIZE_MB * 1024 * 1024):
        raise RuntimeError("curl fetched different sizes")
    shutil.rmtree(out)
    return elapsed


def tree_rss(pid: int) -> int:
    root = psutil.Process(pid)
    total = 0
    for p in [root, *root.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def assetvault_import(base: str, names: list[str], data_dir: Path) -> dict[str, Any]:
    # Two parts of the job in two worker processes, PARALLEL files at a time in all (as
    # curl); the processing of what they import waits until the import is done.
    env = {
        "ASSETVAULT_FETCH_ALLOW": "127.0.0.1",
        "ASSETVAULT_IMPORT_SHARDS": str(SHARDS),
        "ASSETVAULT_IMPORT_CONCURRENCY": str(max(1, PARALLEL // SHARDS)),
    }
    server = LiveServer(data_dir=data_dir, env=env, extra_args=["--workers", str(SHARDS)]).start()
    try:
        token = create_token(data_dir, "bench")
        http = httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {token}", "X-Api-Key": "bench"},
            timeout=60,
        )
        assert server.process is not None
        time.sleep(2)
        baseline = tree_rss(server.process.pid)
        peak = [baseline]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.05):
                peak[0] = max(peak[0], tree_rss(server.process.pid))  # type: ignore[union-attr]

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        os.sync()
        start = time.perf_counter()
        r = http.post(
            "/adobe/assets/import/fromUrl",
            json={
                "folder": "/content/dam/bench",
                "files": [{"fileName": n, "url": f"{base}/{n}"} for n in names],
            },
        )
        r.raise_for_status()
        while (doc := http.get(r.headers["location"]).json())["state"] == "PROCESSING":
            time.sleep(0.2)  # polling faster would load the server being measured
        elapsed = time.perf_counter() - start
        stop.set()
        sampler.join()
        if doc["progress"]["imported"] != COUNT:
            raise RuntimeError(f"the import did not import every file: {doc}")
        return {
            "seconds": elapsed,
            "rss_baseline_mib": baseline / 2**20,
            "rss_peak_mib": peak[0] / 2**20,
        }
    finally:
        server.stop()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="assetvault-bench-import-") as tmp:
        work = Path(tmp)
        nginx = Nginx(work / "nginx")
        try:
            names = make_files(nginx.root)
            reference = curl_parallel(nginx.url, names, work / "curl-out")
            measured = assetvault_import(nginx.url, names, work / "data")
        finally:
            nginx.stop()
    total_mb = COUNT * SIZE_MB
    result = {
        "files": COUNT,
        "file_mb": SIZE_MB,
        "parallel": PARALLEL,
        "worker_processes": SHARDS,
        "curl_parallel_seconds": round(reference, 3),
        "assetvault_seconds": round(measured["seconds"], 3),
        "ratio_curl_over_assetvault": round(reference / measured["seconds"], 3),
        "assetvault_mb_per_s": round(total_mb / measured["seconds"], 1),
        "curl_mb_per_s": round(total_mb / reference, 1),
        "server_rss_baseline_mib": round(measured["rss_baseline_mib"], 1),
        "server_rss_peak_mib": round(measured["rss_peak_mib"], 1),
        "target_ratio": 0.8,
    }
    for key, value in result.items():
        print(f"  {key}: {value}")
    write_result("url_import", result)


if __name__ == "__main__":
    main()
