"""``assetvault upload`` of a tree of files against the real @adobe/aem-upload client
(tests/e2e/upload.js) uploading the same tree to the same server in the same run.

Both send the same bytes through the same direct binary upload to one server. The ratio
(CLI time / aem-upload time) shows whether the client commands cost more than the
client AEM users already have. Runs alternate (the reference first in even pairs), each
into a new folder, so neither finds its files already there. The server runs no worker,
so processing does not compete for the cores. A last CLI run over the same tree,
skipping every file by SHA-1, is reported too.

Environment: BENCH_CLI_FILES (small files, default 200), BENCH_CLI_LARGE (64 MiB files,
default 2), BENCH_CLI_PAIRS (default 3). BENCH_CLI_QUICK=1: 40 files, 1 large, 1 pair.
"""

from __future__ import annotations

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
if str(ROOT) not in sys.path:  # also runnable as ``python bench/cli_upload.py``
    sys.path.insert(0, str(ROOT))

from tests.live import ASSETVAULT, LiveServer, create_token  # noqa: E402

from bench.common import write_result  # noqa: E402

QUICK = os.environ.get("BENCH_CLI_QUICK") == "1"
FILES = int(os.environ.get("BENCH_CLI_FILES", "40" if QUICK else "200"))
LARGE = int(os.environ.get("BENCH_CLI_LARGE", "1" if QUICK else "2"))
PAIRS = int(os.environ.get("BENCH_CLI_PAIRS", "1" if QUICK else "3"))
MiB = 2**20
CLIENT = ROOT / "tests" / "e2e" / "upload.js"


def make_tree(root: Path) -> int:
    for i in range(FILES):
        sub = root / f"d{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:04}.bin").write_bytes(os.urandom(64 * 1024 + i * 997))
    for i in range(LARGE):
        (root / f"large{i}.bin").write_bytes(os.urandom(64 * MiB))
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed: {done.stderr[-2000:]}")
    return elapsed


def measure(work: Path) -> dict[str, Any]:
    tree = work / "tree"
    total = make_tree(tree)
    server = LiveServer(data_dir=work / "data", extra_args=["--workers", "0"]).start()
    try:
        token = create_token(server.data_dir, "bench", "write")
        env = {
            **os.environ,
            "ASSETVAULT_URL": server.url,
            "ASSETVAULT_TOKEN": token,
            "ASSETVAULT_UPLOAD_JOURNAL": str(work / "journal"),
        }
        cli: list[float] = []
        ref: list[float] = []
        for pair in range(PAIRS):
            reference = ["node", str(CLIENT), server.url, token, str(tree)]
            reference.append(f"/content/dam/ref{pair}")
            ours = [ASSETVAULT, "upload", str(tree), "--folder", f"/content/dam/cli{pair}"]
            runs = [(ref, reference), (cli, ours)]
            for into, argv in runs if pair % 2 == 0 else reversed(runs):
                into.append(timed(argv, env))
        last = f"/content/dam/cli{PAIRS - 1}"
        skip = timed([ASSETVAULT, "upload", str(tree), "--folder", last], env)
    finally:
        server.stop()
    return {
        "files": FILES + LARGE,
        "bytes": total,
        "pairs": PAIRS,
        "cli_seconds": cli,
        "aem_upload_seconds": ref,
        "ratio_cli_over_aem_upload": statistics.median(cli) / statistics.median(ref),
        "cli_rerun_all_skipped_seconds": skip,
    }


def report(r: dict[str, Any]) -> None:
    mb = r["bytes"] / 1e6
    c, a = statistics.median(r["cli_seconds"]), statistics.median(r["aem_upload_seconds"])
    print(f"  {r['files']} files, {mb:.0f} MB, {r['pairs']} pair(s)")
    print(f"  assetvault upload    {c:6.2f} s  ({mb / c:6.1f} MB/s)")
    print(f"  @adobe/aem-upload    {a:6.2f} s  ({mb / a:6.1f} MB/s)  (reference)")
    print(f"  ratio cli / aem-upload: {r['ratio_cli_over_aem_upload']:.2f} (lower is faster)")
    print(f"  re-run, every file skipped by SHA-1: {r['cli_rerun_all_skipped_seconds']:.2f} s")


def main() -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="assetvault-bench-cli-", dir=os.environ.get("TMPDIR")))
    try:
        result = measure(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    path = write_result("cli_upload", result)
    report(result)
    print(f"  written to {path.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
