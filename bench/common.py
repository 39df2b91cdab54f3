"""Helpers the benchmarks share: a live server, RSS sampling, statistics, result files."""

from __future__ import annotations

import json
import statistics
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class RssSampler:
    """Samples a process's resident memory every ``interval`` seconds in a thread."""

    pid: int
    interval: float = 0.02
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self.peak = rss_bytes(self.pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except FileNotFoundError:
                return

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()


def api_processes(server_pid: int, marker: str = "multiprocessing.spawn") -> list[int]:
    """The API processes under a ``serve`` process (uvicorn's spawned workers), or the
    serve process itself when it runs a single API process in its own; with another
    ``marker``, the children whose command line holds it (nginx's workers)."""
    import psutil

    children = psutil.Process(server_pid).children(recursive=True)
    api = [c.pid for c in children if marker in " ".join(c.cmdline())]
    return api or [server_pid]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (all their threads); one
    that is gone counts nothing."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def summary(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path
