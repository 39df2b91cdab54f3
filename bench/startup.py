"""Start-up and footprint of ``assetvault serve`` (issue 23): time to ``/health`` on an
empty data directory and on one holding N assets (N = BENCH_STARTUP_ASSETS, 100,000 by
default, loaded by the search benchmark's bulk path and cached there), then, once the
server has settled, the process count, the PSS of its whole process tree (the sum of
each process's /proc/<pid>/smaps_rollup Pss) and the CPU seconds the tree spends over
BENCH_STARTUP_IDLE seconds (60 by default) of idleness.

References measured in the same run: the start of ``python -c pass`` and the time a bare
uvicorn app (one process, no framework) takes to answer its first request. The sources
are byte-compiled first, as an installed package's are. BENCH_STARTUP_ASSETS=10000 (or
less) and BENCH_STARTUP_IDLE=20 make a quick run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from tests.live import ASSETVAULT, free_port

from bench.common import write_result

ASSETS = int(os.environ.get("BENCH_STARTUP_ASSETS", "100000"))
IDLE_SECONDS = float(os.environ.get("BENCH_STARTUP_IDLE", "60"))
SETTLE_SECONDS = float(os.environ.get("BENCH_STARTUP_SETTLE", "10"))
RUNS = int(os.environ.get("BENCH_STARTUP_RUNS", "3"))
SETTLE_MAX = float(os.environ.get("BENCH_STARTUP_SETTLE_MAX", "120"))
QUIET_WINDOW = 5.0

BARE_APP = textwrap.dedent(
    """
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
    """
)


def wait_answer(url: str, started: float, process: subprocess.Popen[bytes]) -> float:
    """Seconds from ``started`` until ``url`` answers 200."""
    deadline = started + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"{url} did not answer in 300 s")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds the process tree of ``pid`` has spent so far, its exited (and waited
    for) children included: on a shared machine, what a start costs regardless of how
    long other work kept it waiting for a core."""
    try:
        root = psutil.Process(pid)
        t = root.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                c = child.cpu_times()
                total += c.user + c.system + c.children_user + c.children_system
    except psutil.Error:
        return float("nan")
    return total


def python_start() -> float:
    times = []
    for _ in range(5):
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.monotonic() - t0)
    return statistics.median(times)


def bare_uvicorn(directory: Path) -> tuple[float, float]:
    """The median seconds and CPU seconds a bare uvicorn app takes to answer."""
    (directory / "bare_app.py").write_text(BARE_APP)
    times, cpu = [], []
    for _ in range(RUNS):
        port = free_port()
        t0 = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port)],
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            times.append(wait_answer(f"http://127.0.0.1:{port}/", t0, process))
            cpu.append(tree_cpu_seconds(process.pid))
        finally:
            process.terminate()
            process.wait(10)
    return statistics.median(times), statistics.median(cpu)


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def pss_of(pid: int) -> int:
    """One process's PSS in bytes (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass  # gone meanwhile
    return 0


def pss_bytes(processes: list[psutil.Process]) -> int:
    return sum(pss_of(p.pid) for p in processes)


def role_of(process: psutil.Process, root: int) -> str:
    """What a process of the tree is: serve, an API process, a role, or a helper."""
    try:
        if process.pid == root:
            return "serve"
        if process.name() == "assetvault-api" or any("spawn_main" in a for a in process.cmdline()):
            return "api"
        line = process.cmdline()
    except psutil.Error:
        return "gone"
    for role in ("worker", "background"):
        if role in line:
            return role
    joined = " ".join(line)
    for helper in ("forkserver", "resource_tracker", "sandbox"):
        if helper in joined:
            return helper
    return "other"


def pss_by_process(processes: list[psutil.Process], root: int) -> list[dict[str, Any]]:
    return [
        {"pid": p.pid, "role": role_of(p, root), "pss_mib": round(pss_of(p.pid) / 2**20, 1)}
        for p in processes
    ]


def cpu_seconds(processes: list[psutil.Process]) -> dict[int, float]:
    spent = {}
    for p in processes:
        try:
            t = p.cpu_times()
            spent[p.pid] = t.user + t.system
        except psutil.Error:
            pass
    return spent


def settle(pid: int) -> float:
    """Wait for the work after ready (the start-up sweep, the index check, the workers'
    sandbox warm-up) to be done: at least SETTLE_SECONDS, then until the tree spends
    under 2 % of a core over QUIET_WINDOW seconds (on a loaded machine that work takes
    several times longer than on a quiet one), at most SETTLE_MAX seconds. Returns the
    seconds waited."""
    started = time.monotonic()
    time.sleep(SETTLE_SECONDS)
    while time.monotonic() - started < SETTLE_MAX:
        before = tree_cpu_seconds(pid)
        time.sleep(QUIET_WINDOW)
        if tree_cpu_seconds(pid) - before < 0.02 * QUIET_WINDOW:
            break
    return time.monotonic() - started


def serve(data_dir: Path, *, idle: bool) -> dict[str, Any]:
    """One start of serve over ``data_dir``: its time to /health, and (``idle``) its
    settled footprint."""
    port = free_port()
    log = open(data_dir.parent / f"serve-{port}.log", "wb")  # noqa: SIM115 - the child's
    t0 = time.monotonic()
    process = subprocess.Popen(
        [ASSETVAULT, "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        found: dict[str, Any] = {
            "health_seconds": wait_answer(f"http://127.0.0.1:{port}/health", t0, process),
            "health_cpu_seconds": tree_cpu_seconds(process.pid),
        }
        if idle:
            found["settle_seconds"] = settle(process.pid)
            processes = tree(process.pid)
            found["processes"] = len(processes)
            found["pss_bytes"] = pss_bytes(processes)
            found["pss_by_process"] = pss_by_process(processes, process.pid)
            before = cpu_seconds(processes)
            time.sleep(IDLE_SECONDS)
            after = cpu_seconds(tree(process.pid))
            found["idle_seconds"] = IDLE_SECONDS
            found["idle_cpu_seconds"] = sum(
                after[pid] - before.get(pid, 0.0) for pid in after if pid in before
            ) + sum(after[pid] for pid in after if pid not in before)
            found["idle_core_percent"] = 100 * found["idle_cpu_seconds"] / IDLE_SECONDS
        return found
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def assets_data_dir(work: Path) -> Path:
    """A copy of the search benchmark's loaded data directory (serve writes to it)."""
    from bench.search import prepared_data

    source, _, _ = prepared_data(ASSETS)
    target = work / f"assets-{ASSETS}"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.lock", "run"))
    return target


def compile_sources() -> None:
    """Byte-compile the server's sources first, as installing the package does: a
    checkout run with PYTHONDONTWRITEBYTECODE would otherwise compile every module in
    every process at every start, which no installed server does."""
    import compileall

    import assetvault

    compileall.compile_dir(Path(assetvault.__file__).parent, quiet=1)


def main() -> None:
    compile_sources()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        work = Path(tmp)
        python_s = python_start()
        bare_s, bare_cpu = bare_uvicorn(work)
        print(
            f"python -c pass: {python_s * 1000:.0f} ms; bare uvicorn app: {bare_s:.2f} s "
            f"({bare_cpu:.2f} s of CPU)"
        )

        empty_runs = []
        for i in range(RUNS):
            data_dir = work / f"empty-{i}"
            data_dir.mkdir()
            empty_runs.append(serve(data_dir, idle=i == RUNS - 1))
        empty = {
            "health_seconds": [r["health_seconds"] for r in empty_runs],
            "health_cpu_seconds": [r["health_cpu_seconds"] for r in empty_runs],
            **{k: v for k, v in empty_runs[-1].items() if not k.startswith("health_")},
        }
        print(
            f"empty data directory: /health after "
            f"{', '.join(f'{s:.2f}' for s in empty['health_seconds'])} s "
            f"({', '.join(f'{s:.2f}' for s in empty['health_cpu_seconds'])} s of CPU); "
            f"{empty['processes']} processes, {empty['pss_bytes'] / 2**20:.0f} MiB PSS, "
            f"{empty['idle_core_percent']:.2f} % of a core over {IDLE_SECONDS:g} s idle "
            f"(settled after {empty['settle_seconds']:.0f} s)"
        )
        print(
            "  PSS by process: "
            + ", ".join(f"{p['role']} {p['pss_mib']:.0f}" for p in empty["pss_by_process"])
            + " MiB"
        )
        full_dir = assets_data_dir(work)
        full_runs = [serve(full_dir, idle=False) for _ in range(RUNS)]
        full = {
            "health_seconds": [r["health_seconds"] for r in full_runs],
            "health_cpu_seconds": [r["health_cpu_seconds"] for r in full_runs],
        }
        print(
            f"{ASSETS:,} assets: /health after "
            f"{', '.join(f'{s:.2f}' for s in full['health_seconds'])} s "
            f"({', '.join(f'{s:.2f}' for s in full['health_cpu_seconds'])} s of CPU)"
        )
        median_empty = statistics.median(empty["health_seconds"])
        path = write_result(
            "startup",
            {
                "reference_python_start_seconds": python_s,
                "reference_bare_uvicorn_seconds": bare_s,
                "reference_bare_uvicorn_cpu_seconds": bare_cpu,
                "empty": empty,
                "assets": ASSETS,
                "with_assets": full,
                "health_vs_bare_uvicorn": median_empty / bare_s,
                "health_with_assets_vs_bare_uvicorn": statistics.median(full["health_seconds"])
                / bare_s,
            },
        )
        print(f"written to {path}")


if __name__ == "__main__":
    main()
