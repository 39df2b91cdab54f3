"""The harness's SQLite files: one per feature under the data directory, shared by every
API process of a server on the machine."""

from __future__ import annotations

import sqlite3
from pathlib import Path

# A lost tail after a power cut costs a test run nothing; an fsync per request would.
_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=OFF")


def connect(path: Path, schema: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are opened explicitly), the schema
    made if missing. Transactions on these files hold the lock for microseconds, so the
    busy timeout is a bound that is never reached, not a wait that happens."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    for pragma in _PRAGMAS:
        conn.execute(pragma)
    conn.executescript(schema)
    return conn


def remove(path: Path) -> None:
    """Removes a harness file and its WAL companions (serve starts each run without the
    previous run's rules and journal)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
