"""The request journal: the last N requests of every API process of a server (method,
path, query, status, timing, a few allow-listed headers, body sizes), in one SQLite file,
for a test to assert on ("exactly one completeUpload for this folder")."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assetvault.harness.files import connect

FILE_NAME = "journal.db"
TRIM_EVERY = 64

# The only headers kept. Credentials never are: no Authorization, Cookie, X-Api-Key,
# upload tokens (they travel in the query of part URIs, which is kept without them).
REQUEST_HEADERS = (
    "accept",
    "content-type",
    "content-length",
    "if-match",
    "if-none-match",
    "range",
    "user-agent",
    "x-request-id",
    "x-adobe-accept-experimental",
)
RESPONSE_HEADERS = ("content-type", "location", "etag", "retry-after")
# Query parameters whose values are credentials, kept as "[hidden]".
SECRET_PARAMETERS = frozenset({"token", "access_token", "code", "state"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    query TEXT NOT NULL,
    status INTEGER NOT NULL,
    ms REAL NOT NULL,
    request_bytes INTEGER NOT NULL,
    response_bytes INTEGER NOT NULL,
    request_headers TEXT NOT NULL,
    response_headers TEXT NOT NULL,
    fault INTEGER,
    dropped INTEGER NOT NULL DEFAULT 0
);
"""
_COLUMNS = (
    "id, at, method, path, query, status, ms, request_bytes, response_bytes, "
    "request_headers, response_headers, fault, dropped"
)


@dataclass
class Entry:
    at: float
    method: str
    path: str
    query: str
    status: int
    ms: float
    request_bytes: int
    response_bytes: int
    request_headers: dict[str, str]
    response_headers: dict[str, str]
    fault: int | None = None
    dropped: bool = False


@dataclass(frozen=True)
class Filter:
    method: str | None = None
    path: str | None = None  # a glob, as SQLite's GLOB (case-sensitive; * crosses /)
    status: int | None = None  # an exact status, or 1..5 for a class (5: 5xx)
    since: float | None = None  # entries at or after this Unix time
    after: int | None = None  # entries with a larger id
    limit: int = 1000


class JournalStore:
    """The journal of one server, in ``<data dir>/journal.db``, keeping ``size`` entries."""

    def __init__(self, data_dir: Path, size: int) -> None:
        self.path = data_dir / FILE_NAME
        self.size = size
        self._conn = connect(self.path, _SCHEMA)

    def close(self) -> None:
        self._conn.close()

    def record(self, e: Entry) -> None:
        cur = self._conn.execute(
            f"INSERT INTO entries ({_COLUMNS.removeprefix('id, ')}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                e.at,
                e.method,
                e.path,
                e.query,
                e.status,
                e.ms,
                e.request_bytes,
                e.response_bytes,
                json.dumps(e.request_headers),
                json.dumps(e.response_headers),
                e.fault,
                int(e.dropped),
            ),
        )
        last = cur.lastrowid
        assert last is not None
        # Bounded: what fell out of the last ``size`` is removed every TRIM_EVERY
        # inserts (one statement each, no transaction around two); readers see only the
        # last ``size`` in between.
        if last % TRIM_EVERY == 0:
            self._conn.execute("DELETE FROM entries WHERE id <= ?", (last - self.size,))

    def entries(self, f: Filter) -> list[dict[str, Any]]:
        where = ["id > (SELECT coalesce(max(id), 0) FROM entries) - ?"]
        args: list[Any] = [self.size]
        if f.method is not None:
            where.append("method = ?")
            args.append(f.method.upper())
        if f.path is not None:
            where.append("path GLOB ?")
            args.append(f.path)
        if f.status is not None:
            if f.status < 10:
                where.append("status BETWEEN ? AND ?")
                args += [f.status * 100, f.status * 100 + 99]
            else:
                where.append("status = ?")
                args.append(f.status)
        if f.since is not None:
            where.append("at >= ?")
            args.append(f.since)
        if f.after is not None:
            where.append("id > ?")
            args.append(f.after)
        sql = f"SELECT {_COLUMNS} FROM entries WHERE " + " AND ".join(where)
        # The newest ``limit`` of those that match, oldest first.
        sql = f"SELECT * FROM ({sql} ORDER BY id DESC LIMIT ?) ORDER BY id"
        rows = self._conn.execute(sql, (*args, f.limit)).fetchall()
        return [_listed(row) for row in rows]

    def clear(self) -> int:
        return self._conn.execute("DELETE FROM entries").rowcount


def _listed(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    (
        entry_id,
        at,
        method,
        path,
        query,
        status,
        ms,
        request_bytes,
        response_bytes,
        request_headers,
        response_headers,
        fault,
        dropped,
    ) = row
    return {
        "id": entry_id,
        "at": at,
        "method": method,
        "path": path,
        "query": query,
        "status": status,
        "ms": round(ms, 3),
        "requestBytes": request_bytes,
        "responseBytes": response_bytes,
        "requestHeaders": json.loads(request_headers),
        "responseHeaders": json.loads(response_headers),
        "fault": fault,
        "dropped": bool(dropped),
    }
