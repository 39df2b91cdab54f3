"""What must hold of a data directory after any amount of load and kills: every job
terminal, no blob or staged upload without an owner once the sweep has run, every
journal event delivered to a healthy webhook."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

import psutil

from tests.live import ASSETVAULT, LiveServer, is_api_process


def query(data_dir: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    db = sqlite3.connect(f"file:{data_dir / 'assetvault.db'}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def wait_until(check, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.25)


def jobs_terminal(data_dir: Path) -> bool:
    busy = query(data_dir, "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')")
    imports = query(
        data_dir, "SELECT count(*) FROM import_jobs WHERE step IN ('QUEUED', 'IMPORTING')"
    )
    return busy[0][0] == 0 and imports[0][0] == 0


def busy_jobs(data_dir: Path) -> list[tuple[object, ...]]:
    """The jobs and import jobs not yet terminal (what ``jobs_terminal`` waits for), to
    say which when it waits too long."""
    jobs = query(
        data_dir,
        "SELECT kind, state, attempts, run_after, lease_until, last_error FROM jobs "
        "WHERE state IN ('queued', 'running') LIMIT 20",
    )
    imports = query(
        data_dir,
        "SELECT 'import', step, id, NULL, NULL, NULL FROM import_jobs "
        "WHERE step IN ('QUEUED', 'IMPORTING') LIMIT 20",
    )
    return jobs + imports


def undelivered(data_dir: Path, registration: str, received: dict[str, int]) -> list[str]:
    """The journal's events of the registration's types that its webhook has not had, and
    its deliveries still pending."""
    types, start = query(
        data_dir,
        "SELECT event_types, journal_start FROM event_registrations WHERE id = ?",
        registration,
    )[0]
    wanted = set(json.loads(str(types)))
    journal = query(data_dir, "SELECT id, type FROM event_journal WHERE seq > ?", start)
    missed = [f"{i} {t}" for i, t in journal if t in wanted and i not in received]
    pending = query(
        data_dir,
        "SELECT count(*) FROM event_deliveries WHERE registration_id = ? AND state = 'pending'",
        registration,
    )[0][0]
    return missed + ([f"{pending} deliveries pending"] if pending else [])


def sweep(data_dir: Path) -> None:
    """The maintenance sweep, as an operator runs it, with no age grace: whatever no row
    owns is removed now."""
    subprocess.run(
        [ASSETVAULT, "sweep", "--data-dir", str(data_dir), "--grace", "0"],
        check=True,
        capture_output=True,
        timeout=120,
    )


def orphans(data_dir: Path) -> list[str]:
    """Blobs that neither a row nor a pending upload references, temporary files, and
    rows whose owner is gone."""
    stored = {p.name for p in (data_dir / "blobs").glob("??/??/*") if p.is_file()}
    referenced = {
        str(k)
        for sql in (
            "SELECT blob_key FROM nodes WHERE blob_key IS NOT NULL",
            "SELECT blob_key FROM asset_versions",
            "SELECT blob_key FROM renditions",
        )
        for (k,) in query(data_dir, sql)
    }
    # An upload assembled but not completed (its complete cut off by a kill) owns its blob
    # for as long as its token lets the client complete it: not an orphan.
    staged = {
        json.loads(p.read_text())["key"]
        for p in (data_dir / "blobs" / ".uploads").glob("*/assembled.json")
    }
    found = [f"blob {k}" for k in sorted(stored - referenced - staged)]
    tmp = data_dir / "blobs" / ".tmp"
    found += [f"temporary {p.name}" for p in tmp.iterdir()] if tmp.exists() else []
    for table, column in (
        ("asset_versions", "node_id"),
        ("renditions", "node_id"),
        ("relations", "asset_id"),
        ("relations", "related_id"),
        ("comments", "node_id"),
    ):
        rows = query(
            data_dir,
            f"SELECT count(*) FROM {table} WHERE {column} NOT IN (SELECT id FROM nodes)",
        )
        if rows[0][0]:
            found.append(f"{rows[0][0]} {table} rows without their node")
    parentless = query(
        data_dir,
        "SELECT path FROM nodes WHERE parent_id IS NOT NULL "
        "AND parent_id NOT IN (SELECT id FROM nodes)",
    )
    found += [f"node without parent {p}" for (p,) in parentless]
    return found


def children(server: LiveServer, role: str) -> list[psutil.Process]:
    """The server's child processes of a role: 'worker', 'background' or 'api'."""
    assert server.process is not None
    out = []
    for child in psutil.Process(server.process.pid).children(recursive=True):
        try:
            line = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        if is_api_process(child) if role == "api" else f"assetvault.cli {role}" in line:
            out.append(child)
    return out


def registration_row(data_dir: Path, name: str) -> dict[str, object]:
    rows = query(
        data_dir, "SELECT id, state, webhook_status FROM event_registrations WHERE name = ?", name
    )
    assert rows, name
    return json.loads(
        json.dumps(dict(zip(("id", "state", "webhook_status"), rows[0], strict=True)))
    )
