"""Upload of a 1 GiB file through the direct binary upload protocol, against curl PUTting
the same file to nginx (WebDAV PUT) on loopback in the same run; and the server's RSS.

Both sides send the bytes with curl from files in the page cache over one kept-alive
connection: the reference as one PUT of the whole file, Assetvault as initiate, the
part PUTs in order (one curl, one ``-T part-file URI`` per part, as @adobe/aem-upload
sends a file's parts one after another) and complete. The part files are cut from the
payload once, before any timing, at the part size the server hands out.

Measurements alternate (reference first in even pairs, Assetvault first in odd ones),
and ``sync`` runs before each one, so neither side pays for writing back what the other
left dirty. By default both sides remove what they stored after each measurement (nginx
its file; Assetvault its asset, and its blob with ``assetvault sweep --grace 0``), so
every measurement writes into page cache that was in use before, as on a server whose
memory is long warm. On these virtual machines memory never touched yet is several
times slower to write into (dd without fsync: ~300 MB/s into it, ~2 GB/s into recycled
page cache); BENCH_UPLOAD_MEMORY=keep keeps everything instead, so both sides pay that.

Each pair uploads a new variant of the file (its first bytes changed in the
payload and in part 1), so the content-addressed store cannot skip work; the sha1 the
complete answers with is checked against the variant's, computed outside the timing.

Context, not compared: the disk's sequential write + fsync speed (as ``dd bs=16M
count=64 conv=fsync``). nginx does not fsync; Assetvault fsyncs every part.

Server RSS is sampled in every API process (the one that receives a part is not known
beforehand); growth is the largest rise of any of them over its idle figure.

Environment: BENCH_UPLOAD_PAIRS (default 5), BENCH_UPLOAD_MEMORY (recycle or keep),
BENCH_UPLOAD_MIB (the file's size, default 1024, for quicker runs). BENCH_PROFILE=1
records the last Assetvault upload with py-spy (bench/profile.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # also runnable as ``python bench/upload.py``
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from tests.live import ASSETVAULT, free_port  # noqa: E402

from bench.common import (  # noqa: E402
    RssSampler,
    UploadServer,
    api_processes,
    cpu_seconds,
    rss_bytes,
    summary,
    write_result,
)
from bench.profile import ENABLED, Profile  # noqa: E402

SIZE = int(os.environ.get("BENCH_UPLOAD_MIB", "1024")) * 1024 * 1024
CHUNK = 16 * 1024 * 1024
if SIZE <= 0 or SIZE % CHUNK:
    raise SystemExit("BENCH_UPLOAD_MIB must be a positive multiple of 16")
PAIRS = int(os.environ.get("BENCH_UPLOAD_PAIRS", "5"))
# recycle: both sides remove what they stored after each measurement (the next one
# reuses that page cache); keep: both keep it (each upload writes into memory not used
# before).
MEMORY = os.environ.get("BENCH_UPLOAD_MEMORY", "recycle")
if MEMORY not in ("recycle", "keep"):
    raise SystemExit(f"BENCH_UPLOAD_MEMORY must be recycle or keep, not {MEMORY!r}")
HEAD = 64  # bytes rewritten at the start of the file for each pair
MB = 1e6
MiB = 2**20
FOLDER = "/content/dam/bench"


def make_file(path: Path) -> None:
    with open(path, "wb") as fh:
        for _ in range(SIZE // CHUNK):
            fh.write(os.urandom(CHUNK))


def sha1_of(path: Path) -> str:
    h = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def split(file: Path, part_size: int, out: Path) -> list[Path]:
    out.mkdir()
    parts = []
    with open(file, "rb") as src:
        n = 0
        while data := src.read(part_size):
            n += 1
            part = out / f"part-{n:05d}"
            part.write_bytes(data)
            parts.append(part)
    return parts


def vary(file: Path, first_part: Path, n: int) -> str:
    """A new variant of the file (and of its first part): returns its sha1."""
    head = f"pair {n} {time.time_ns()} ".encode().ljust(HEAD, b".")
    for path in (file, first_part):
        with open(path, "r+b") as fh:
            fh.write(head)
    return sha1_of(file)


def disk_write_fsync(directory: Path) -> float:
    """Seconds to write 1 GiB sequentially and fsync it, as ``dd conv=fsync`` does."""
    target = directory / "dd.bin"
    os.sync()
    start = time.perf_counter()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=16M", "count=64", "conv=fsync"],
        check=True,
        capture_output=True,
    )
    elapsed = time.perf_counter() - start
    target.unlink()
    return elapsed


class Nginx:
    """Debian's nginx with its own configuration, files and temp paths under ``work``."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_port()
        self.root = work / "root"
        self.root.mkdir(parents=True)
        (work / "body").mkdir()
        conf = work / "nginx.conf"
        # As root, nginx's workers would drop to nobody and could not write here.
        user = "user root root;" if os.geteuid() == 0 else ""
        temp_paths = " ".join(
            f"{kind}_temp_path {work}/body;"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        conf.write_text(
            f"daemon off; {user} worker_processes 1; pid {work}/nginx.pid;\n"
            f"error_log {work}/error.log;\n"
            "events { worker_connections 64; }\n"
            f"http {{ access_log off; {temp_paths}\n"
            f"  server {{ listen 127.0.0.1:{self.port}; client_max_body_size 0;\n"
            f"    location / {{ root {self.root}; dav_methods PUT; create_full_put_path on; }}\n"
            "  }\n"
            "}\n"
        )
        self.process = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(work), "-e", str(work / "error.log")]
        )
        self.cpu: list[float] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(work / 'error.log').read_text()}")
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/", timeout=0.5)
                self.workers = api_processes(self.process.pid, "nginx: worker")
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def put(self, file: Path, name: str) -> float:
        os.sync()
        cpu = cpu_seconds(self.workers)
        start = time.perf_counter()
        subprocess.run(
            ["curl", "-sS", "--fail", "-o", "/dev/null", "-T", str(file), f"{self.url}/{name}"],
            check=True,
        )
        elapsed = time.perf_counter() - start
        self.cpu.append(cpu_seconds(self.workers) - cpu)
        if (self.root / name).stat().st_size != SIZE:
            raise RuntimeError("nginx stored a different size")
        if MEMORY == "recycle":
            (self.root / name).unlink()
        return elapsed

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


class Assetvault(UploadServer):
    def __init__(self, work: Path) -> None:
        super().__init__(work, SIZE)

    def upload(self, parts: list[Path], name: str) -> tuple[dict[str, float], dict[str, Any]]:
        """The whole protocol, timed: initiate, the part PUTs in order, complete."""
        os.sync()
        cpu = cpu_seconds(self.pids)
        t0 = time.perf_counter()
        init = self.initiate(name)
        f = init["files"][0]
        if len(f["uploadURIs"]) != len(parts):
            raise RuntimeError(f"{len(f['uploadURIs'])} upload URIs for {len(parts)} parts")
        t1 = time.perf_counter()
        args = ["curl", "-sS", "--fail", "-o", "/dev/null"]
        for part, uri in zip(parts, f["uploadURIs"], strict=True):
            args += ["-T", str(part), uri]
        subprocess.run(args, check=True)
        t2 = time.perf_counter()
        done = self.http.post(
            init["completeURI"],
            data={
                "fileName": name,
                "fileSize": str(SIZE),
                "uploadToken": f["uploadToken"],
                "mimeType": "application/octet-stream",
                "createVersion": "false",
                "replace": "false",
            },
        )
        t3 = time.perf_counter()
        done.raise_for_status()
        phases = {
            "initiate": t1 - t0,
            "parts": t2 - t1,
            "complete": t3 - t2,
            "total": t3 - t0,
            "cpu": cpu_seconds(self.pids) - cpu,
        }
        if MEMORY == "recycle":
            self.remove(name)
        return phases, done.json()

    def remove(self, name: str) -> None:
        """Delete the asset and sweep its blob away (the server runs no sweep this soon)."""
        self.http.delete(f"/api/assets/bench/{name}").raise_for_status()
        out = subprocess.run(
            [ASSETVAULT, "sweep", "--grace", "0", "--data-dir", str(self.server.data_dir)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        if "removed 1 blob" not in out:
            raise RuntimeError(f"the blob of {name} was not swept: {out}")

    def stop(self) -> None:
        self.http.close()
        self.server.stop()


def vm_hwm(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def throughput(seconds: list[float]) -> dict[str, float]:
    s = summary(seconds)
    return {"best": SIZE / s["min"] / MB, "median": SIZE / s["median"] / MB}


def measure(work: Path) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    file = work / "payload.bin"
    make_file(file)
    dd_before = [disk_write_fsync(work) for _ in range(2)]
    nginx = Nginx(work / "nginx")
    av = Assetvault(work)
    try:
        count, part_size = av.part_size()
        parts = split(file, part_size, work / "parts")
        if len(parts) != count:
            raise RuntimeError(f"{len(parts)} part files for {count} upload URIs")
        time.sleep(1)
        idle = {pid: rss_bytes(pid) for pid in av.pids}
        ref: list[float] = []
        ours: list[dict[str, float]] = []
        growths: list[int] = []
        peaks: list[int] = []
        for n in range(PAIRS):
            sha1 = vary(file, parts[0], n)

            def run_ours(n: int = n, sha1: str = sha1) -> None:
                samplers = [RssSampler(pid) for pid in av.pids]
                for sampler in samplers:
                    sampler.__enter__()
                assert av.server.process is not None
                profile = Profile(
                    "upload", av.server.process.pid, enabled=ENABLED and n == PAIRS - 1
                )
                try:
                    with profile:
                        phases, body = av.upload(parts, f"f{n}.bin")
                finally:
                    for sampler in samplers:
                        sampler.__exit__()
                if body["sha1"] != sha1 or body["fileSize"] != SIZE:
                    raise RuntimeError(f"the stored asset differs from the file: {body}")
                ours.append(phases)
                growths.append(max(s.peak - idle[s.pid] for s in samplers))
                peaks.append(max(s.peak for s in samplers))

            if n % 2 == 0:
                ref.append(nginx.put(file, f"f{n}.bin"))
                run_ours()
            else:
                run_ours()
                ref.append(nginx.put(file, f"f{n}.bin"))
            print(
                f"  pair {n + 1}/{PAIRS}: reference {SIZE / ref[-1] / MB:.0f} MB/s, "
                f"Assetvault {SIZE / ours[-1]['total'] / MB:.0f} MB/s "
                f"(ratio {ref[-1] / ours[-1]['total']:.2f}); server CPU s: reference "
                f"{nginx.cpu[-1]:.2f}, Assetvault {ours[-1]['cpu']:.2f}",
                flush=True,
            )
        hwm = max(vm_hwm(pid) for pid in av.pids)
    finally:
        av.stop()
        nginx.stop()
    dd_after = [disk_write_fsync(work) for _ in range(2)]

    totals = [o["total"] for o in ours]
    ratios = [r / o for r, o in zip(ref, totals, strict=True)]
    return {
        "file_bytes": SIZE,
        "parts": count,
        "part_bytes": part_size,
        "pairs": PAIRS,
        "memory": MEMORY,
        "reference": {
            "what": "curl -T file, one PUT to nginx dav_methods PUT (no fsync)",
            "seconds": summary(ref),
            "MBps": throughput(ref),
            "server_cpu_seconds": summary(nginx.cpu),
        },
        "assetvault": {
            "what": "initiate + curl part PUTs in order on one connection + complete",
            "seconds": summary(totals),
            "MBps": throughput(totals),
            "server_cpu_seconds": summary([o["cpu"] for o in ours]),
            "phase_seconds_median": {
                k: statistics.median(o[k] for o in ours) for k in ("initiate", "parts", "complete")
            },
        },
        "ratio_per_pair": ratios,
        "ratio_median_of_pairs": statistics.median(ratios),
        "ratio_of_medians": statistics.median(ref) / statistics.median(totals),
        "server_rss_MB": {
            "api_processes": len(idle),
            "idle": max(idle.values()) / MiB,
            "peak": max(peaks) / MiB,
            "growth": max(growths) / MiB,
            "vm_hwm": hwm / MiB,
        },
        "disk_write_fsync_MBps": {
            "before": [SIZE / t / MB for t in dd_before],
            "after": [SIZE / t / MB for t in dd_after],
        },
        "loadavg_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "cpus": os.cpu_count(),
        "targets": {"ratio": ">= 0.7", "rss_growth_MB": "< 100"},
        "units": "MB = 10^6 bytes (throughput), MB = 2^20 bytes (RSS)",
    }


def report(r: dict[str, Any]) -> None:
    ref, av = r["reference"], r["assetvault"]
    rows = [("nginx PUT (reference)", ref), ("Assetvault protocol", av)]
    print(
        f"upload of {r['file_bytes'] / MiB:.0f} MiB ({r['parts']} parts of "
        f"{r['part_bytes'] // MiB} MiB), "
        f"{r['pairs']} pairs, stored files: {r['memory']}, MB/s = 10^6 bytes/s"
    )
    print(f"  {'':24}{'min s':>8}{'median s':>10}{'max s':>8}{'best MB/s':>11}{'median MB/s':>13}")
    for label, side in rows:
        s, t = side["seconds"], side["MBps"]
        print(
            f"  {label:24}{s['min']:8.2f}{s['median']:10.2f}{s['max']:8.2f}"
            f"{t['best']:11.0f}{t['median']:13.0f}"
        )
    print(
        f"  server CPU seconds (user + system, median): nginx "
        f"{ref['server_cpu_seconds']['median']:.2f}, Assetvault "
        f"{av['server_cpu_seconds']['median']:.2f}"
    )
    p = av["phase_seconds_median"]
    print(
        f"  Assetvault phases (median s): initiate {p['initiate']:.3f}, parts {p['parts']:.2f}, "
        f"complete {p['complete']:.3f}"
    )
    ok = "meets" if r["ratio_median_of_pairs"] >= 0.7 else "BELOW"
    print(
        f"  ratio Assetvault/reference: pairs {', '.join(f'{x:.2f}' for x in r['ratio_per_pair'])}"
        f"; median of pairs {r['ratio_median_of_pairs']:.2f}, ratio of medians "
        f"{r['ratio_of_medians']:.2f} ({ok} target >= 0.7)"
    )
    m = r["server_rss_MB"]
    ok = "meets" if m["growth"] < 100 else "ABOVE"
    print(
        f"  server RSS (largest of {m['api_processes']} API processes): idle {m['idle']:.0f} MiB, "
        f"peak during uploads {m['peak']:.0f} MiB, growth {m['growth']:.0f} MiB ({ok} target "
        f"< 100); VmHWM {m['vm_hwm']:.0f} MiB"
    )
    d = r["disk_write_fsync_MBps"]
    runs = ", ".join(f"{x:.0f}" for x in d["before"] + d["after"])
    print(f"  context: disk write + fsync of 1 GiB (dd bs=16M count=64 conv=fsync), MB/s: {runs}")
    la = r["loadavg_1min"]
    print(
        f"  context: {r['cpus']} CPUs, 1-minute load average {la['before']:.1f} before, "
        f"{la['after']:.1f} after (others' work on this machine skews the figures)"
    )


def main() -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="assetvault-bench-upload-", dir=os.environ.get("TMPDIR")))
    try:
        result = measure(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    path = write_result("upload", result)
    report(result)
    print(f"  written to {path.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
