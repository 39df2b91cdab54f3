"""The import tables (import_jobs, import_files, import_sources): SQL written once for
SQLite and PostgreSQL, over the caller's connection."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, overload

from sqlalchemy import ColumnElement, Row, and_, delete, func, select

from assetvault.adapters.database.connection import Connection
from assetvault.adapters.database.tables import import_files, import_jobs
from assetvault.imports.models import (
    FILE_FAILED,
    IMPORTED,
    PENDING,
    TERMINAL,
    Counts,
    ImportFile,
    ImportJob,
)

ERRORS_SHOWN = 20  # failed files' problems a status document lists (the result has all)


@overload
def aware(value: datetime) -> datetime: ...
@overload
def aware(value: None) -> None: ...
def aware(value: datetime | None) -> datetime | None:
    """A stored timestamp with its zone (SQLite gives it back naive, in UTC)."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def job_from(row: Row[Any]) -> ImportJob:
    m = row._mapping
    return ImportJob(
        id=m["id"],
        operation=m["operation"],
        user=m["user"],
        folder_id=m["folder_id"],
        folder_path=m["folder_path"],
        config=dict(m["config"]),
        step=m["step"],
        total=m["total"],
        created_at=aware(m["created_at"]),
        started_at=aware(m["started_at"]),
        updated_at=aware(m["updated_at"]),
        finished_at=aware(m["finished_at"]),
        error=m["error"],
    )


def file_from(row: Any) -> ImportFile:
    m = row._mapping
    return ImportFile(
        job_id=m["job_id"],
        idx=m["idx"],
        file_name=m["file_name"],
        url=m["url"],
        item_id=m["item_id"],
        rel_path=m["rel_path"],
        mime_type=m["mime_type"],
        file_size=m["file_size"],
        metadata=dict(m["metadata"] or {}),
        state=m["state"],
        asset_id=m["asset_id"],
        asset_path=m["asset_path"],
        size=m["size"],
        error=m["error"],
        warnings=list(m["warnings"] or []),
    )


async def job(conn: Connection, job_id: str) -> ImportJob | None:
    row = (await conn.execute(select(import_jobs).where(import_jobs.c.id == job_id))).first()
    return job_from(row) if row else None


async def counts(conn: Connection, job_ids: Sequence[str]) -> dict[str, Counts]:
    rows = await conn.execute(
        select(
            import_files.c.job_id,
            import_files.c.state,
            func.count(),
            func.coalesce(func.sum(import_files.c.size), 0),
        )
        .where(import_files.c.job_id.in_(list(job_ids)))
        .group_by(import_files.c.job_id, import_files.c.state)
    )
    found: dict[str, dict[str, int]] = {j: {} for j in job_ids}
    for job_id, state, n, size in rows:
        found[job_id][state] = int(n)
        if state == IMPORTED:
            found[job_id]["transferred"] = int(size)
    return {
        j: Counts(
            imported=c.get(IMPORTED, 0),
            failed=c.get(FILE_FAILED, 0),
            pending=c.get(PENDING, 0),
            transferred=c.get("transferred", 0),
        )
        for j, c in found.items()
    }


async def problems(conn: Connection, job_id: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The first failed files' problems and every warning of the job's files."""
    errors = [
        r.error
        for r in await conn.execute(
            select(import_files.c.error)
            .where(import_files.c.job_id == job_id, import_files.c.state == FILE_FAILED)
            .order_by(import_files.c.idx)
            .limit(ERRORS_SHOWN)
        )
        if r.error
    ]
    warnings: list[str] = []
    for r in await conn.execute(
        select(import_files.c.warnings)
        .where(import_files.c.job_id == job_id)
        .order_by(import_files.c.idx)
    ):
        warnings.extend(r.warnings or [])
    return errors, warnings


def in_shard(index: int, count: int) -> ColumnElement[bool]:
    """The files of one part of a job: their index modulo the number of parts."""
    return import_files.c.idx % count == index


async def files(
    conn: Connection,
    job_id: str,
    *,
    after: int = -1,
    limit: int | None = None,
    state: str | None = None,
    shard: tuple[int, int] | None = None,
) -> list[ImportFile]:
    query = (
        select(import_files)
        .where(import_files.c.job_id == job_id, import_files.c.idx > after)
        .order_by(import_files.c.idx)
    )
    if shard is not None:
        query = query.where(in_shard(*shard))
    if state is not None:
        query = query.where(import_files.c.state == state)
    if limit is not None:
        query = query.limit(limit)
    return [file_from(r) for r in await conn.execute(query)]


async def jobs_page(
    conn: Connection,
    *,
    operation: str | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[ImportJob]:
    """Newest first; ``before`` is the (created_at, id) the previous page ended with."""
    query = select(import_jobs).order_by(import_jobs.c.created_at.desc(), import_jobs.c.id.desc())
    if operation is not None:
        query = query.where(import_jobs.c.operation == operation)
    if before is not None:
        at, last_id = before
        query = query.where(
            (import_jobs.c.created_at < at)
            | and_(import_jobs.c.created_at == at, import_jobs.c.id < last_id)
        )
    return [job_from(r) for r in await conn.execute(query.limit(limit))]


async def forget_finished(conn: Connection, before: datetime, most: int) -> int:
    """Remove at most ``most`` import jobs that ended before ``before``, with their
    files; returns how many jobs went. A job not yet terminal is never touched."""
    ids = [
        str(r[0])
        for r in await conn.execute(
            select(import_jobs.c.id)
            .where(import_jobs.c.step.in_(TERMINAL), import_jobs.c.finished_at < before)
            .limit(most)
        )
    ]
    if not ids:
        return 0
    # The files first (the foreign key cascades too, where it is enforced).
    await conn.execute(delete(import_files).where(import_files.c.job_id.in_(ids)))
    await conn.execute(delete(import_jobs).where(import_jobs.c.id.in_(ids)))
    return len(ids)
