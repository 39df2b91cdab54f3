"""Download of a 1 GiB original from Assetvault against nginx serving the very same file
(a hard link to the stored blob, so both read one inode from the page cache), and 200
concurrent small downloads.

Large: curl GETs the whole file to /dev/null, from Assetvault (``/content/dam/...``,
through authentication, the tree lookup, the download event and the sandboxing headers)
and from nginx (``sendfile on``, as Debian ships it), alternating which goes first in
each pair; then the same for one range of half the file (``Range: bytes=N/4-3N/4``).
Each pair's ratio is reference time / Assetvault time; the median of pairs is reported
with the spread.

Small: wrk with 200 connections GETs 20 small originals (16 KiB each, in turn) for a
few seconds from Assetvault, and the same files from nginx; latency percentiles as wrk
reports them, and Assetvault's p99 against the 50 ms target. Alternating, PAIRS rounds.

Context, not compared: server CPU seconds (user + system) each side used.

Environment: BENCH_DOWNLOAD_PAIRS (default 5), BENCH_DOWNLOAD_MIB (default 1024),
BENCH_DOWNLOAD_SMALL_SECONDS (wrk's duration, default 5), BENCH_DOWNLOAD_CONNECTIONS
(default 200).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # also runnable as ``python bench/download.py``
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
from tests.live import LiveServer, create_token, free_port  # noqa: E402

from bench.common import api_processes, cpu_seconds, summary, write_result  # noqa: E402

MiB = 2**20
MB = 1e6
SIZE = int(os.environ.get("BENCH_DOWNLOAD_MIB", "1024")) * MiB
PAIRS = int(os.environ.get("BENCH_DOWNLOAD_PAIRS", "5"))
SMALL_SECONDS = os.environ.get("BENCH_DOWNLOAD_SMALL_SECONDS", "5")
CONNECTIONS = os.environ.get("BENCH_DOWNLOAD_CONNECTIONS", "200")
SMALL_FILES = 20
SMALL_BYTES = 16 * 1024
PART = 16 * MiB
FOLDER = "/content/dam/bench"


class Nginx:
    """Debian's nginx serving ``root`` read-only, with its shipped ``sendfile on``."""

    def __init__(self, work: Path, root: Path) -> None:
        self.port = free_port()
        work.mkdir(parents=True)
        temp_paths = " ".join(
            f"{kind}_temp_path {work};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = "user root root;" if os.geteuid() == 0 else ""
        conf = work / "nginx.conf"
        conf.write_text(
            f"daemon off; {user} worker_processes 1; pid {work}/nginx.pid;\n"
            f"error_log {work}/error.log;\n"
            "events { worker_connections 1024; }\n"
            f"http {{ access_log off; sendfile on; tcp_nopush on; {temp_paths}\n"
            f"  server {{ listen 127.0.0.1:{self.port}; location / {{ root {root}; }} }}\n"
            "}\n"
        )
        self.process = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(work), "-e", str(work / "error.log")]
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(work / 'error.log').read_text()}")
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/", timeout=0.5)
                self.pids = api_processes(self.process.pid, "nginx: worker")
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def upload(http: httpx.Client, name: str, file: Path, size: int) -> dict[str, Any]:
    """Through the direct binary upload protocol, the parts sent by curl."""
    r = http.post(FOLDER + ".initiateUpload.json", data={"fileName": name, "fileSize": str(size)})
    r.raise_for_status()
    f = r.json()["files"][0]
    uris = f["uploadURIs"]
    part = max(-(-size // len(uris)), f["minPartSize"]) if size else 0
    with open(file, "rb") as src:
        for uri in uris:
            httpx.put(uri, content=src.read(part), timeout=600).raise_for_status()
    done = http.post(
        r.json()["completeURI"],
        data={"fileName": name, "fileSize": str(size), "uploadToken": f["uploadToken"]},
    )
    done.raise_for_status()
    body: dict[str, Any] = done.json()
    return body


def curl_get(url: str, headers: dict[str, str], expect: int) -> float:
    args = ["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{size_download}"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    start = time.perf_counter()
    out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    elapsed = time.perf_counter() - start
    if int(out) != expect:
        raise RuntimeError(f"{url} sent {out} bytes, not {expect}")
    return elapsed


def _ms(text: str) -> float:
    value = float(re.sub(r"[a-z]+$", "", text))
    unit = re.search(r"[a-z]+$", text)
    return value * {"us": 0.001, "ms": 1, "s": 1000}[unit.group(0) if unit else "s"]


def wrk(url: str, headers: dict[str, str], script: Path) -> dict[str, float]:
    args = ["wrk", "-t", "2", "-c", CONNECTIONS, "-d", f"{SMALL_SECONDS}s", "--latency"]
    args += ["--timeout", "10s", "-s", str(script)]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    found = [
        re.search(p, out, re.MULTILINE)
        for p in (r"Requests/sec:\s+([\d.]+)", r"^\s+50%\s+(\S+)", r"^\s+99%\s+(\S+)")
    ]
    if not all(found):
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    if bad:
        raise RuntimeError(f"wrk saw failures from {url}: {bad.group(0)}")
    if float(found[0].group(1)) == 0:  # type: ignore[union-attr]
        # Nothing finished in the time: no latency to read, and none met the target.
        return {"rps": 0.0, "p50_ms": float("inf"), "p99_ms": float("inf")}
    return {
        "rps": float(found[0].group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(found[1].group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(found[2].group(1)),  # type: ignore[union-attr]
    }


def pairs(
    ref: Any, ours: Any, label: str, unit: float
) -> tuple[list[float], list[float], list[float]]:
    """PAIRS alternating measurements of two callables returning seconds."""
    r: list[float] = []
    o: list[float] = []
    for n in range(PAIRS):
        if n % 2 == 0:
            r.append(ref())
            o.append(ours())
        else:
            o.append(ours())
            r.append(ref())
        print(
            f"  {label} pair {n + 1}/{PAIRS}: reference {unit / r[-1] / MB:.0f} MB/s, "
            f"Assetvault {unit / o[-1] / MB:.0f} MB/s (ratio {r[-1] / o[-1]:.2f})",
            flush=True,
        )
    return r, o, [a / b for a, b in zip(r, o, strict=True)]


def side(seconds: list[float], nbytes: int, cpu: list[float]) -> dict[str, Any]:
    s = summary(seconds)
    return {
        "seconds": s,
        "MBps": {"best": nbytes / s["min"] / MB, "median": nbytes / s["median"] / MB},
        "server_cpu_seconds": summary(cpu),
    }


def measure(work: Path) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    payload = work / "payload.bin"
    with open(payload, "wb") as fh:
        for _ in range(SIZE // PART):
            fh.write(os.urandom(PART))
        fh.write(os.urandom(SIZE % PART))
    key = hashlib.sha256(payload.read_bytes()).hexdigest() if 64 * MiB >= SIZE else None
    server = LiveServer(data_dir=work / "data", extra_args=["--workers", "0"]).start()
    www = work / "www"
    www.mkdir()
    nginx: Nginx | None = None
    try:
        assert server.process is not None
        pids = api_processes(server.process.pid)

        def server_log() -> str:
            assert server.log_path is not None
            return server.log_path.read_text()[-4000:]

        token = create_token(server.data_dir, "bench")
        auth = {"Authorization": f"Bearer {token}"}
        http = httpx.Client(base_url=server.url, headers=auth, timeout=600)
        http.post("/api/assets/bench", json={"class": "assetFolder"}).raise_for_status()
        upload(http, "big.bin", payload, SIZE)
        small = os.urandom(SMALL_BYTES)
        small_file = work / "small.bin"
        small_file.write_bytes(small)
        for i in range(SMALL_FILES):
            upload(http, f"s{i:02}.bin", small_file, SMALL_BYTES)
            (www / f"s{i:02}.bin").write_bytes(small)
        # The very file Assetvault stores, under nginx's root: one inode, one page cache.
        blobs = list((server.data_dir / "blobs").glob("??/??/*"))
        big = next(b for b in blobs if b.stat().st_size == SIZE)
        if key is not None and big.name != key:
            raise RuntimeError("the stored blob is not the payload")
        os.link(big, www / "big.bin")
        payload.unlink()
        nginx = Nginx(work / "nginx", www)

        def timed(
            url: str, headers: dict[str, str], expect: int, pids: list[int], cpu: list[float]
        ) -> Callable[[], float]:
            def run() -> float:
                before = cpu_seconds(pids)
                t = curl_get(url, headers, expect)
                cpu.append(cpu_seconds(pids) - before)
                if not all(psutil.pid_exists(p) for p in pids):
                    raise RuntimeError(f"a server process died: {server_log()}")
                return t

            return run

        # Warm: both read the file once, so neither pays for the disk.
        curl_get(f"{nginx.url}/big.bin", {}, SIZE)
        curl_get(f"{server.url}{FOLDER}/big.bin", auth, SIZE)

        whole_cpu: tuple[list[float], list[float]] = ([], [])
        ref, ours, ratios = pairs(
            timed(f"{nginx.url}/big.bin", {}, SIZE, nginx.pids, whole_cpu[0]),
            timed(f"{server.url}{FOLDER}/big.bin", auth, SIZE, pids, whole_cpu[1]),
            "whole file",
            SIZE,
        )
        first, last = SIZE // 4, 3 * SIZE // 4 - 1
        rng = {"Range": f"bytes={first}-{last}"}
        range_cpu: tuple[list[float], list[float]] = ([], [])
        rref, rours, rratios = pairs(
            timed(f"{nginx.url}/big.bin", rng, last - first + 1, nginx.pids, range_cpu[0]),
            timed(
                f"{server.url}{FOLDER}/big.bin", auth | rng, last - first + 1, pids, range_cpu[1]
            ),
            "range",
            last - first + 1,
        )

        script = work / "small.lua"
        names = ", ".join(f'"s{i:02}.bin"' for i in range(SMALL_FILES))
        script.write_text(
            f"local names = {{{names}}}\nlocal n = 0\n"
            "request = function()\n  n = n + 1\n"
            "  return wrk.format(nil, wrk.path .. names[(n % #names) + 1])\nend\n"
        )
        small_ref: list[dict[str, float]] = []
        small_ours: list[dict[str, float]] = []
        for n in range(PAIRS):
            runs = [
                (small_ref, lambda: wrk(f"{nginx.url}/", {}, script)),
                (small_ours, lambda: wrk(f"{server.url}{FOLDER}/", auth, script)),
            ]
            for into, run in runs if n % 2 == 0 else runs[::-1]:
                into.append(run())
            print(
                f"  small pair {n + 1}/{PAIRS}: reference {small_ref[-1]['rps']:.0f} req/s "
                f"p99 {small_ref[-1]['p99_ms']:.1f} ms, Assetvault {small_ours[-1]['rps']:.0f} "
                f"req/s p99 {small_ours[-1]['p99_ms']:.1f} ms",
                flush=True,
            )
        http.close()
    finally:
        if nginx is not None:
            nginx.stop()
        server.stop()

    def med(runs: list[dict[str, float]]) -> dict[str, float]:
        return {k: statistics.median(r[k] for r in runs) for k in runs[0]}

    half = last - first + 1
    return {
        "file_bytes": SIZE,
        "pairs": PAIRS,
        "whole": {
            "reference": side(ref, SIZE, whole_cpu[0]),
            "assetvault": side(ours, SIZE, whole_cpu[1]),
            "ratio_per_pair": ratios,
            "ratio_median_of_pairs": statistics.median(ratios),
        },
        "range": {
            "bytes": half,
            "reference": side(rref, half, range_cpu[0]),
            "assetvault": side(rours, half, range_cpu[1]),
            "ratio_per_pair": rratios,
            "ratio_median_of_pairs": statistics.median(rratios),
        },
        "small": {
            "connections": int(CONNECTIONS),
            "file_bytes": SMALL_BYTES,
            "seconds_each": float(SMALL_SECONDS),
            "reference": small_ref,
            "assetvault": small_ours,
            "reference_median": med(small_ref),
            "assetvault_median": med(small_ours),
            "assetvault_p99_ms_per_round": [r["p99_ms"] for r in small_ours],
        },
        "loadavg_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "cpus": os.cpu_count(),
        "targets": {"ratio": ">= 0.8", "small_p99_ms": "<= 50"},
        "what": {
            "reference": "nginx sendfile on, curl -o /dev/null",
            "assetvault": "GET /content/dam/bench/big.bin with a bearer token, curl -o /dev/null",
        },
    }


def report(r: dict[str, Any]) -> None:
    print(f"download of {r['file_bytes'] / MiB:.0f} MiB, {r['pairs']} pairs, MB/s = 10^6 bytes/s")
    for part in ("whole", "range"):
        m = r[part]
        ref, av = m["reference"], m["assetvault"]
        ok = "meets" if m["ratio_median_of_pairs"] >= 0.8 else "BELOW"
        print(
            f"  {part}: nginx median {ref['MBps']['median']:.0f} MB/s (CPU "
            f"{ref['server_cpu_seconds']['median']:.2f} s), Assetvault median "
            f"{av['MBps']['median']:.0f} MB/s (CPU {av['server_cpu_seconds']['median']:.2f} s); "
            f"ratio pairs {', '.join(f'{x:.2f}' for x in m['ratio_per_pair'])}; median of pairs "
            f"{m['ratio_median_of_pairs']:.2f} ({ok} target >= 0.8)"
        )
    s = r["small"]
    ref, av = s["reference_median"], s["assetvault_median"]
    p99s = s["assetvault_p99_ms_per_round"]
    ok = "meets" if statistics.median(p99s) <= 50 else "ABOVE"
    print(
        f"  small ({s['connections']} connections, {s['file_bytes'] // 1024} KiB files, "
        f"medians of rounds): nginx {ref['rps']:.0f} req/s p50 {ref['p50_ms']:.1f} ms p99 "
        f"{ref['p99_ms']:.1f} ms; Assetvault {av['rps']:.0f} req/s p50 {av['p50_ms']:.1f} ms "
        f"p99 {av['p99_ms']:.1f} ms (rounds {', '.join(f'{x:.0f}' for x in p99s)}; {ok} "
        "target <= 50 ms)"
    )
    la = r["loadavg_1min"]
    print(
        f"  context: {r['cpus']} CPUs, 1-minute load average {la['before']:.1f} before, "
        f"{la['after']:.1f} after (others' work on this machine skews the figures)"
    )


def main() -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="assetvault-bench-download-", dir=os.environ.get("TMPDIR")))
    try:
        result = measure(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    path = write_result("download", result)
    report(result)
    print(f"  written to {path.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
