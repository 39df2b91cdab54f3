"""URL import of N files of S MB (default 300 x 5 MB, the Author API's largest job) from
nginx on loopback, end to end: POST fromUrl until the job is COMPLETED. Reported as a
ratio to ``curl --parallel`` fetching the same files from the same server into a
directory with the same parallelism, in alternating pairs in the same run (reference
first in even pairs, Assetvault first in odd ones; ratio = curl time / Assetvault time,
the median of the pairs and their spread; the target is 0.7 or more), and the peak RSS
of the server's processes (API and worker) during the imports.

Assetvault fsyncs every blob and records every file in the database; curl only writes
the files. Each pair imports into a fresh data directory. Quick run:
BENCH_IMPORT_COUNT=30 BENCH_IMPORT_SIZE_MB=1 BENCH_IMPORT_PAIRS=3. BENCH_PROFILE=1 records
the last Assetvault import with py-spy (bench/profile.py).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from tests.live import LiveServer, create_token

from bench.common import summary, write_result
from bench.profile import Profile
from bench.upload import Nginx

COUNT = int(os.environ.get("BENCH_IMPORT_COUNT", "300"))
SIZE_MB = float(os.environ.get("BENCH_IMPORT_SIZE_MB", "5"))
PARALLEL = int(os.environ.get("BENCH_IMPORT_PARALLEL", "8"))  # curl's and Assetvault's
PAIRS = int(os.environ.get("BENCH_IMPORT_PAIRS", "3"))
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


def assetvault_import(
    base: str, names: list[str], data_dir: Path, *, profile: bool = False
) -> dict[str, Any]:
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
        with Profile("url_import", server.process.pid, enabled=profile):
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


def main() -> dict[str, Any]:
    from bench.profile import ENABLED

    load_before = os.getloadavg()[0]
    ref: list[float] = []
    ours: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="assetvault-bench-import-") as tmp:
        work = Path(tmp)
        nginx = Nginx(work / "nginx")
        try:
            names = make_files(nginx.root)
            for n in range(PAIRS):
                profile = ENABLED and n == PAIRS - 1

                def run_ours(n: int = n, profile: bool = profile) -> None:
                    ours.append(
                        assetvault_import(nginx.url, names, work / f"data-{n}", profile=profile)
                    )
                    shutil.rmtree(work / f"data-{n}", ignore_errors=True)

                if n % 2 == 0:
                    ref.append(curl_parallel(nginx.url, names, work / "curl-out"))
                    run_ours()
                else:
                    run_ours()
                    ref.append(curl_parallel(nginx.url, names, work / "curl-out"))
                print(
                    f"  pair {n + 1}/{PAIRS}: curl {ref[-1]:.2f} s, Assetvault "
                    f"{ours[-1]['seconds']:.2f} s (ratio {ref[-1] / ours[-1]['seconds']:.2f})",
                    flush=True,
                )
        finally:
            nginx.stop()
    total_mb = COUNT * SIZE_MB
    seconds = [o["seconds"] for o in ours]
    ratios = [r / o for r, o in zip(ref, seconds, strict=True)]
    result = {
        "files": COUNT,
        "file_mb": SIZE_MB,
        "parallel": PARALLEL,
        "worker_processes": SHARDS,
        "pairs": PAIRS,
        "curl_parallel_seconds": summary(ref),
        "assetvault_seconds": summary(seconds),
        "ratio_per_pair": [round(r, 3) for r in ratios],
        "ratio_median_of_pairs": round(statistics.median(ratios), 3),
        "ratio_spread": [round(min(ratios), 3), round(max(ratios), 3)],
        "assetvault_mb_per_s_median": round(total_mb / statistics.median(seconds), 1),
        "curl_mb_per_s_median": round(total_mb / statistics.median(ref), 1),
        "server_rss_baseline_mib": round(min(o["rss_baseline_mib"] for o in ours), 1),
        "server_rss_peak_mib": round(max(o["rss_peak_mib"] for o in ours), 1),
        "loadavg_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "target_ratio": 0.7,
    }
    write_result("url_import", result)
    ok = "meets" if result["ratio_median_of_pairs"] >= 0.7 else "BELOW"
    print(
        f"  import of {COUNT} x {SIZE_MB:g} MB, {PARALLEL} at a time: curl "
        f"{result['curl_mb_per_s_median']} MB/s, Assetvault "
        f"{result['assetvault_mb_per_s_median']} MB/s (medians)"
    )
    print(
        f"  ratio curl/Assetvault: pairs {', '.join(f'{x:.2f}' for x in ratios)}; median of "
        f"pairs {result['ratio_median_of_pairs']:.2f} ({ok} target >= 0.7)"
    )
    print(
        f"  server RSS: baseline {result['server_rss_baseline_mib']} MiB, peak "
        f"{result['server_rss_peak_mib']} MiB; 1-minute load {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after"
    )
    return result


if __name__ == "__main__":
    main()
