"""``make bench``: every benchmark in bench/, each a module with a ``main()`` that prints
its figures and writes bench/results/<name>.json. ``python bench/run.py upload`` runs one."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BENCHMARKS = [
    "upload",
    "upload_s3",
    "download",
    "ingest",
    "metadata",
    "search",
    "events",
    "url_import",
    "cli_upload",
    "startup",
    "snapshot",
    "ephemeral",
]


def main(names: list[str]) -> int:
    for name in names or BENCHMARKS:
        print(f"== {name}", flush=True)
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
