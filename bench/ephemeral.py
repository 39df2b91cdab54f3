"""``serve --ephemeral --port 0`` (issue 24): seconds from the start of the process to
its ready line (what a CI script waits for), and from SIGTERM until the process, its
children and its data directory are gone; ``python -c pass`` beside each run, as the
machine's load. BENCH_EPHEMERAL_RUNS runs (5 by default)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from assetvault.runtime.ephemeral import start_ephemeral
from bench.common import summary, write_result

RUNS = int(os.environ.get("BENCH_EPHEMERAL_RUNS", "5"))


def main() -> None:
    ready: list[float] = []
    stop: list[float] = []
    bare: list[float] = []
    for i in range(RUNS):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.monotonic() - started)
        started = time.monotonic()
        server = start_ephemeral(["--log-level", "warning"], stderr=subprocess.DEVNULL)
        ready.append(time.monotonic() - started)
        started = time.monotonic()
        status = server.stop()
        stop.append(time.monotonic() - started)
        assert status == 0 and not server.data_dir.exists()
        print(
            f"run {i}: ready line {ready[-1]:.2f} s, stopped and removed {stop[-1]:.2f} s, "
            f"python -c pass {bare[-1] * 1000:.0f} ms, load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    write_result(
        "ephemeral",
        {
            "ready_line_seconds": summary(ready),
            "stop_seconds": summary(stop),
            "python_c_pass_seconds": summary(bare),
            # The machine's speed and load at the time, measured beside each run.
            "ready_over_python_c_pass": min(ready) / min(bare),
            "runs": RUNS,
        },
    )


if __name__ == "__main__":
    main()
