"""Memory tracing of the soak's server processes, loaded by Python at start from
PYTHONPATH (the soak puts this directory first when ASSETVAULT_SOAK_TRACEMALLOC names
the roles to trace, e.g. ``background``): tracemalloc runs in each process of those
roles, and a snapshot is dumped every ASSETVAULT_SOAK_TRACEMALLOC_SECONDS into
ASSETVAULT_SOAK_TRACEMALLOC_DIR as ``<role>-<pid>-<n>.snap`` for the soak's report to
compare. No product code knows of it."""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from pathlib import Path

MARKS = {
    "background": "assetvault.cli background",
    "worker": "assetvault.cli worker",
    "api": "spawn_main",
}


def _role() -> str | None:
    try:
        line = Path("/proc/self/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    wanted = os.environ.get("ASSETVAULT_SOAK_TRACEMALLOC", "").split(",")
    return next((r for r in wanted if r in MARKS and MARKS[r] in line), None)


def _start(role: str) -> None:
    out = Path(os.environ["ASSETVAULT_SOAK_TRACEMALLOC_DIR"])
    every = float(os.environ.get("ASSETVAULT_SOAK_TRACEMALLOC_SECONDS", "60"))
    tracemalloc.start(12)

    def dump() -> None:
        n = 0
        while True:
            time.sleep(every)
            snapshot = tracemalloc.take_snapshot()
            snapshot.dump(str(out / f"{role}-{os.getpid()}-{n:03d}.snap"))
            n += 1

    threading.Thread(target=dump, name="soak-tracemalloc", daemon=True).start()


if os.environ.get("ASSETVAULT_SOAK_TRACEMALLOC") and os.environ.get(
    "ASSETVAULT_SOAK_TRACEMALLOC_DIR"
):
    found = _role()
    if found:
        _start(found)
