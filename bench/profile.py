"""py-spy profiles of a server's processes during one measured part of a benchmark.

``BENCH_PROFILE=1`` makes bench/url_import.py and bench/events.py record their last
Assetvault measurement with ``py-spy record --subprocesses`` (raw collapsed stacks,
written to bench/results/<name>.profile.txt) and print where the samples went: the
functions that were on the CPU themselves (self) and the ones under which most samples
fell (total). py-spy must be installed (it is a dev dependency) and allowed to trace the
server's processes (its own children, on most systems).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path
from types import TracebackType

from bench.common import RESULTS

ENABLED = os.environ.get("BENCH_PROFILE", "") not in ("", "0")


class Profile:
    """``with Profile(name, pid):`` records while the block runs (nothing if disabled)."""

    def __init__(self, name: str, pid: int, *, enabled: bool = ENABLED) -> None:
        self.path = RESULTS / f"{name}.profile.txt"
        self.pid = pid
        self.enabled = enabled and shutil.which("py-spy") is not None
        if enabled and not self.enabled:
            print("  (BENCH_PROFILE: py-spy is not installed; no profile)")
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profile:
        if self.enabled:
            RESULTS.mkdir(parents=True, exist_ok=True)
            self.process = subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--subprocesses",
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "--output",
                    str(self.path),
                    "--pid",
                    str(self.pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.path.exists():
            print(summarize(self.path))


def _frame(frame: str) -> str:
    # py-spy's raw frames read "function (file.py:line)"; the line is left out.
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return f"{name} ({file})" if file else name[:60]


# Leaves that are a thread waiting for work, not doing any.
IDLE = (
    "_worker (thread.py)",
    "_connection_worker_thread (core.py)",
    "Condition.wait (threading.py)",
    "_Futex.wait (turn.py)",
)
# Frames every sample of a process has (its start, the event loop): left out of "total".
FRAME = tuple(
    f"({f})"
    for f in ("<frozen runpy>", "runners.py", "base_events.py", "events.py", "cli.py", "roles.py")
)


def summarize(path: Path, top: int = 15) -> str:
    """The busiest functions of a raw py-spy profile: self and total, in % of the
    samples that were not waiting (a blocked selector or an idle thread)."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    busy = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";") if f]
        if not frames or frames[-1] in IDLE or "select (selectors.py)" in frames[-1]:
            continue
        n = int(count)
        busy += n
        own[frames[-1]] += n
        for frame in set(frames):
            if not frame.startswith(("process ", "Thread.")) and not frame.endswith(FRAME):
                total[frame] += n
    if not busy:
        return f"  profile {path.name}: no busy samples"
    lines = [f"  profile {path.name}: {busy} busy samples (200/s per process)"]
    lines.append("    self %   function")
    lines += [f"    {100 * n / busy:6.1f}   {f}" for f, n in own.most_common(top)]
    lines.append("    total %  function")
    lines += [f"    {100 * n / busy:6.1f}   {f}" for f, n in total.most_common(top)]
    return "\n".join(lines)
