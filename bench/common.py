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


API_PROCESS_NAME = "assetvault-api"  # runtime/api.py names the processes it forks so


def api_processes(server_pid: int, marker: str | None = None) -> list[int]:
    """The API processes under a ``serve`` process (forked and named by runtime/api.py),
    or the serve process itself when it has none of its own; with a ``marker``, the
    children whose command line holds it (nginx's workers)."""
    import psutil

    children = psutil.Process(server_pid).children(recursive=True)
    if marker is None:
        api = [c.pid for c in children if c.name() == API_PROCESS_NAME]
    else:
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


class UploadServer:
    """A server for the upload benchmarks: processing workers off (they measure the upload
    path alone), a client with an admin token, and the folder the files go to."""

    FOLDER = "/content/dam/bench"

    def __init__(
        self,
        work: Path,
        size: int,
        *,
        env: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        import httpx
        from tests.live import LiveServer, create_token

        self.size = size
        self.env = dict(env or {})
        self.server = LiveServer(
            data_dir=work / "data", env=self.env, extra_args=["--workers", "0", *extra_args]
        ).start()
        assert self.server.process is not None
        self.pids = api_processes(self.server.process.pid)
        token = create_token(self.server.data_dir, "bench", env=self.env)
        self.http = httpx.Client(
            base_url=self.server.url, headers={"Authorization": f"Bearer {token}"}, timeout=600
        )
        self.http.post(
            "/api/assets/bench",
            json={"class": "assetFolder", "properties": {"jcr:title": "bench"}},
        ).raise_for_status()

    def initiate(self, name: str) -> dict[str, Any]:
        r = self.http.post(
            self.FOLDER + ".initiateUpload.json",
            data={"fileName": name, "fileSize": str(self.size)},
        )
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body

    def part_size(self) -> tuple[int, int]:
        """(parts, part size) for the file, as a client works it out from initiate's answer."""
        f = self.initiate("probe.bin")["files"][0]
        count = len(f["uploadURIs"])
        size = min(max(-(-self.size // count), f["minPartSize"]), f["maxPartSize"])
        return count, size
