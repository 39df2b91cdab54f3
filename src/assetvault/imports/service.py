"""Import jobs: URL imports (both interfaces) and imports from a source share one store.

A request is checked, its folder resolved (missing folders of a path are created), and
the job, one row per file and a queued worker job are committed in one transaction
before the 202 answers. A worker runs the job: it fetches several files at a time,
each streamed straight into the blob store, and commits each imported file in the
change that creates its asset, together with the file's new state; so after a crash
(kill -9 included) the job's next run skips what is in and fetches only what is not,
and no file is imported twice. A file that fails (404 at the source, timeout, too
large, refused address, bad content) fails alone, with its reason in the result. The
job's terminal state and its ``import.completed`` outbox row commit together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from assetvault import cursors, mediatypes
from assetvault.adapters.blobs.base import BlobStore
from assetvault.adapters.database.engine import Database
from assetvault.adapters.database.tables import import_files, import_jobs
from assetvault.adapters.queue.base import Job, JobQueue
from assetvault.errors import InvalidInput, NotFound
from assetvault.imports import repository as imports_repo
from assetvault.imports.models import (
    COMPLETED,
    COMPLETED_WITH_ERRORS,
    FAILED,
    FILE_FAILED,
    FROM_URL,
    IMPORTED,
    IMPORTING,
    OPERATIONS,
    PENDING,
    QUEUED,
    TERMINAL,
    ImportFile,
    ImportJob,
    NewFile,
)
from assetvault.imports.ports import Download, Downloaded, Downloader, DownloadLimits, FetchFailed
from assetvault.imports.requests import Target, UrlImport
from assetvault.metadata import limits
from assetvault.processing.metadata import from_exiftool
from assetvault.processing.ports import MediaTools
from assetvault.settings import Settings
from assetvault.tree import events
from assetvault.tree import repository as tree_repo
from assetvault.tree.models import Node
from assetvault.tree.paths import ROOT, check_name, join, urn
from assetvault.tree.writes import Change, Original, Writes

log = logging.getLogger("assetvault.imports")

IMPORT_RUN = "import.run"  # the worker job that runs an import job
COMMIT_ATTEMPTS = 3
# How many levels below /content/dam an import may make folders down to: a source's
# folder tree nested deeper (a hostile or runaway provider) fails its files one by one.
MAX_FOLDER_DEPTH = 64

# Types the content shows when it shows nothing particular: then a given type stands.
GENERIC_TYPES = {
    "application/octet-stream",
    "text/plain",
    "application/x-empty",
    "inode/x-empty",
}

# The download of one file of a source import (the sources service supplies it).
SourceDownloads = Callable[[ImportJob, ImportFile], Awaitable[Download]]
Apply = Callable[[Change], Awaitable[None]]


def _now() -> datetime:
    return datetime.now(UTC)


def problem(status: int, detail: str, title: str | None = None) -> dict[str, Any]:
    from http import HTTPStatus

    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {"type": "about:blank", "title": title or phrase, "status": status, "detail": detail}


class _Taken(Exception):
    """The file was imported by another run meanwhile: this run's change rolls back."""


def guess_type(name: str) -> str | None:
    import mimetypes

    return mimetypes.guess_type(name)[0]


def choose_type(file: ImportFile, got: Downloaded) -> tuple[str, list[str]]:
    """The stored type comes from the content; a given type that contradicts it is a
    warning, not what is stored. Only media types are candidates: the source's
    Content-Type (or a row stored before the request's type was checked) that is none
    is passed over."""
    warnings: list[str] = []
    given = mediatypes.or_none(file.mime_type)
    sniffed = mediatypes.or_none(got.sniffed)
    if sniffed is not None and sniffed not in GENERIC_TYPES:
        if given and given != sniffed:
            warnings.append(
                f"{file.file_name}: the given mimeType {given} does not match the content, "
                f"which is {sniffed}; it was stored as {sniffed}"
            )
        return sniffed, warnings
    for candidate in (given, mediatypes.or_none(got.declared), guess_type(file.file_name)):
        if candidate and candidate not in GENERIC_TYPES:
            return candidate, warnings
    return (given or sniffed or mediatypes.OCTET_STREAM), warnings


class ImportService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        writes: Writes,
        queue: JobQueue,
        blobs: BlobStore,
        media: MediaTools,
        downloader: Downloader,
    ) -> None:
        self.settings = settings
        self.db = db
        self.writes = writes
        self.queue = queue
        self.blobs = blobs
        self.media = media
        self.downloader = downloader
        self.source_downloads: SourceDownloads | None = None

    # -- submitting -----------------------------------------------------------------------

    async def submit_urls(self, request: UrlImport, *, user: str) -> ImportJob:
        config: dict[str, Any] = {
            "assetMetadata": request.metadata,
            "items": [f.url for f in request.files],
        }
        if request.source_name is not None:
            config["sourceName"] = request.source_name
        return await self.submit(FROM_URL, request.target, config, request.files, user=user)

    async def submit(
        self,
        operation: str,
        target: Target,
        config: dict[str, Any],
        files: list[NewFile],
        *,
        user: str,
    ) -> ImportJob:
        """Commit the job, its files and its worker job; the folder is created first if
        it is a path that does not exist yet. The metadata the request gives its files
        is bounded in all before anything is written."""
        limits.check_import(config.get("assetMetadata", {}), [f.metadata for f in files])
        job_id = str(uuid.uuid4())
        now = _now()
        try:
            async with self.writes.change(user) as ch:
                folder = await self._folder(ch, target)
                await ch.conn.execute(
                    insert(import_jobs).values(
                        id=job_id,
                        operation=operation,
                        user=user,
                        folder_id=folder.id,
                        folder_path=folder.path,
                        config={**config, "folder": folder.urn},
                        step=QUEUED,
                        total=len(files),
                        created_at=now,
                        updated_at=now,
                    )
                )
                await ch.conn.execute(
                    insert(import_files),
                    [
                        {
                            "job_id": job_id,
                            "idx": i,
                            "file_name": f.file_name,
                            "url": f.url,
                            "item_id": f.item_id,
                            "rel_path": f.rel_path,
                            "mime_type": f.mime_type,
                            "file_size": f.file_size,
                            "metadata": f.metadata,
                            "state": PENDING,
                            "warnings": [],
                            "updated_at": now,
                        }
                        for i, f in enumerate(files)
                    ],
                )
                # Several worker jobs share the files (index modulo their count), so
                # several worker processes fetch and hash one import at once.
                shards = max(1, min(self.settings.import_shards, len(files)))
                for shard in range(shards):
                    await ch.enqueue(
                        IMPORT_RUN,
                        {"importId": job_id, "user": user, "shard": shard, "shards": shards},
                        max_attempts=self.settings.import_max_attempts,
                    )
        except IntegrityError as exc:  # a concurrent request made the same folder
            raise InvalidInput(f"folder: {target.path} was created concurrently; retry") from exc
        return await self.job(job_id)

    async def _folder(self, ch: Change, target: Target) -> Node:
        if target.node_id is not None:
            node = await tree_repo.by_id(ch.reader, target.node_id)
            if node is None or node.kind != "folder":
                raise InvalidInput(f"folder: no folder has the id {urn(target.node_id)}")
            return node
        assert target.path is not None
        return await self._folder_path(ch, target.path)

    @staticmethod
    async def _folder_path(ch: Change, path: str) -> Node:
        """The folder at ``path``, made (with every missing parent) if it does not exist."""
        node = await tree_repo.by_path(ch.reader, ROOT)
        assert node is not None, "the root folder exists"
        for name in path[len(ROOT) :].split("/")[1:]:
            child = await tree_repo.by_path(ch.reader, join(node.path, name))
            if child is None:
                child = await ch.create_folder(node, name)
            elif child.kind != "folder":
                raise InvalidInput(f"folder: {child.path} is an asset, not a folder")
            node = child
        return node

    # -- reading --------------------------------------------------------------------------

    async def forget_finished(self, before: datetime, most: int) -> int:
        """Remove at most ``most`` import jobs that ended before ``before``, with their
        files (the sweep's retention of finished jobs); returns how many jobs went."""
        async with self.db.write() as conn:
            return await imports_repo.forget_finished(conn, before, most)

    async def job(self, job_id: str) -> ImportJob:
        async with self.db.read() as conn:
            found = await imports_repo.job(conn, job_id)
            if found is None:
                raise NotFound(f"import job {job_id} does not exist")
            counts = (await imports_repo.counts(conn, [job_id]))[job_id]
            errors, warnings = await imports_repo.problems(conn, job_id)
        return replace(found, counts=counts, errors=tuple(errors), warnings=tuple(warnings))

    async def result(
        self, job_id: str, *, limit: int, cursor: str | None
    ) -> tuple[ImportJob, list[ImportFile], str | None]:
        after = -1
        if cursor is not None:
            try:
                value = cursors.unpack(cursor)
            except ValueError:
                value = None
            if not (isinstance(value, list) and len(value) == 2 and value[0] == job_id):
                raise InvalidInput("cursor: not a cursor of this job's result")
            after = int(value[1])
        job = await self.job(job_id)
        async with self.db.read() as conn:
            page = await imports_repo.files(conn, job_id, after=after, limit=limit + 1)
        more = len(page) > limit
        page = page[:limit]
        return job, page, cursors.pack([job_id, page[-1].idx]) if more else None

    async def jobs(
        self, *, operation: str | None, limit: int, cursor: str | None
    ) -> tuple[list[ImportJob], str | None]:
        if operation is not None and operation not in OPERATIONS:
            raise InvalidInput(f"operation must be one of {', '.join(OPERATIONS)}")
        before = None
        if cursor is not None:
            try:
                value = cursors.unpack(cursor)
                before = (datetime.fromisoformat(value[0]), str(value[1]))
            except (ValueError, TypeError, IndexError, KeyError):
                raise InvalidInput("cursor: not a cursor of this listing") from None
        async with self.db.read() as conn:
            page = await imports_repo.jobs_page(
                conn, operation=operation, before=before, limit=limit + 1
            )
            more = len(page) > limit
            page = page[:limit]
            counts = await imports_repo.counts(conn, [j.id for j in page]) if page else {}
        listed = [replace(j, counts=counts[j.id]) for j in page]
        next_cursor = cursors.pack([page[-1].created_at.isoformat(), page[-1].id]) if more else None
        return listed, next_cursor

    # -- running (in a worker) ------------------------------------------------------------

    async def run(self, queued: Job) -> Apply:
        """Import every file not yet in, several at a time; return the change that
        marks the job terminal (the worker commits it with the worker job)."""
        job_id = queued.payload["importId"]
        shard = _shard(queued)
        async with self.db.read() as snapshot:
            job = await imports_repo.job(snapshot, job_id)
            pending = (
                await imports_repo.files(snapshot, job_id, state=PENDING, shard=shard)
                if job
                else []
            )
        if job is None or job.step in TERMINAL:
            return _nothing
        started = job.started_at or _now()
        async with self.db.write() as conn:
            await conn.execute(
                update(import_jobs)
                .where(import_jobs.c.id == job_id)
                .values(step=IMPORTING, started_at=started, updated_at=_now())
            )
        # The deadline counts from the job's first start, across restarts.
        elapsed = (_now() - started).total_seconds()
        deadline = time.monotonic() + self.settings.import_deadline_seconds - elapsed
        gate = asyncio.Semaphore(max(1, self.settings.import_concurrency))
        committer = _Committer(self, job)

        async def one(file: ImportFile) -> None:
            await self._import_file(job, file, deadline, gate, committer)

        try:
            await asyncio.gather(*(one(f) for f in pending))
        finally:
            await committer.close()

        async def finish(ch: Change) -> None:
            await self._finish(ch, job_id, shard, None)

        return finish

    async def failed(self, ch: Change, queued: Job, reason: str) -> None:
        """The worker job is finally failed (it stopped during every attempt): its files
        not yet in fail with that reason, and the job ends if no other part runs."""
        await self._finish(ch, queued.payload["importId"], _shard(queued), reason)

    async def _finish(
        self, ch: Change, job_id: str, shard: tuple[int, int], reason: str | None
    ) -> None:
        # The row lock makes the parts' endings take turns: one of them ends the job.
        query = select(import_jobs).where(import_jobs.c.id == job_id).with_for_update()
        row = (await ch.conn.execute(query)).first()
        job = imports_repo.job_from(row) if row else None
        if job is None or job.step in TERMINAL:
            return
        now = _now()
        mine = imports_repo.in_shard(*shard)
        if reason is not None:
            await ch.conn.execute(
                update(import_files)
                .where(import_files.c.job_id == job_id, import_files.c.state == PENDING, mine)
                .values(
                    state=FILE_FAILED,
                    error=problem(500, f"the import stopped: {reason}"),
                    updated_at=now,
                )
            )
        elif await imports_repo.files(ch.conn, job_id, state=PENDING, shard=shard, limit=1):
            # Every file of a run ends imported or failed; one still pending means the
            # run was cut short: raising leaves the worker job to run again.
            raise RuntimeError(f"import {job_id} still has pending files")
        counts = (await imports_repo.counts(ch.conn, [job_id]))[job_id]
        if counts.pending:
            return  # another part of the job is still fetching: it ends the job
        step = (
            COMPLETED
            if counts.failed == 0
            else FAILED
            if counts.imported == 0
            else COMPLETED_WITH_ERRORS
        )
        await ch.conn.execute(
            update(import_jobs)
            .where(import_jobs.c.id == job_id)
            .values(step=step, updated_at=now, finished_at=now, error=reason)
        )
        imported = await imports_repo.files(ch.conn, job_id, state=IMPORTED)
        ch.record(
            events.IMPORT_COMPLETED,
            None,
            {
                "jobId": job_id,
                "operation": job.operation,
                "status": step,
                "folder": urn(job.folder_id),
                "folderPath": job.folder_path,
                "counts": {
                    "imported": counts.imported,
                    "failed": counts.failed,
                    "total": counts.total,
                },
                "assetIds": [urn(f.asset_id) for f in imported if f.asset_id],
            },
        )

    def _limits(self, job: ImportJob, deadline: float) -> DownloadLimits:
        # The Range probe is the URL import's rule; a source's own API serves its files.
        probe = self.settings.import_range_probe_bytes if job.operation == FROM_URL else 2**63
        return DownloadLimits(
            max_bytes=self.settings.import_max_file_size, range_probe_bytes=probe, deadline=deadline
        )

    async def _import_file(
        self,
        job: ImportJob,
        file: ImportFile,
        deadline: float,
        gate: asyncio.Semaphore,
        committer: _Committer,
    ) -> None:
        try:
            check_name(file.file_name)  # a source's names may hold what AEM refuses
            segments = file.rel_path.split("/") if file.rel_path else []
            for segment in segments:
                check_name(segment)
            depth = job.folder_path.removeprefix(ROOT).count("/") + len(segments)
            if segments and depth > MAX_FOLDER_DEPTH:
                raise InvalidInput(
                    f"{file.file_name}: its folders would nest {depth} levels below {ROOT}; "
                    f"an import makes folders at most {MAX_FOLDER_DEPTH} levels deep"
                )
            # The gate holds the fetch only: while a file waits for its commit, the
            # next one is already coming in.
            async with gate:
                if job.operation == FROM_URL:
                    assert file.url is not None
                    where = Download(file.url)
                else:
                    if self.source_downloads is None:
                        raise FetchFailed("import sources are not available", 500)
                    where = await self.source_downloads(job, file)
                got = await self.downloader.download(
                    where.url,
                    self.writes.store_stream,
                    self._limits(job, deadline),
                    headers=where.headers,
                    declared_size=file.file_size,
                    method=where.method,
                )
                if got.blob.size == 0:
                    # AEM takes no empty binaries (its upload clients refuse them too).
                    raise FetchFailed("the source sent an empty file", 400)
                mime, warnings = choose_type(file, got)
                metadata = await self._metadata(job, file, got)
                # Checked when the request came; again here for a job queued before that
                # check, so such a file fails alone instead of failing its batch's commit.
                limits.check_new(metadata, "assetMetadata.")
            await committer.commit(_Ready(file, got, mime, metadata, warnings))
        except FetchFailed as exc:
            await self._fail(job, file, problem(exc.status, exc.reason))
        except _Taken:
            return
        except InvalidInput as exc:
            await self._fail(job, file, problem(400, exc.detail))
        except Exception as exc:  # one file's surprise must not end the other files
            log.exception("import %s: file %d (%s) failed", job.id, file.idx, file.file_name)
            await self._fail(job, file, problem(500, f"{type(exc).__name__}: {exc}"))

    async def _metadata(self, job: ImportJob, file: ImportFile, got: Downloaded) -> dict[str, Any]:
        """The request's assetMetadata overlaid by the file's own; metadata embedded in
        the file (XMP, IPTC, EXIF) wins on collision, as AEM's import does."""
        given = {**job.config.get("assetMetadata", {}), **file.metadata}
        if not given:
            return {}
        try:
            async with self.blobs.local_copy(got.blob.key) as path:
                embedded = from_exiftool(await self.media.read_tags(path))
        except Exception:
            embedded = {}  # unreadable tags: the file still imports with the given metadata
        return {k: v for k, v in given.items() if k not in embedded}

    async def _commit(
        self,
        job: ImportJob,
        file: ImportFile,
        got: Downloaded,
        mime: str,
        metadata: dict[str, Any],
        warnings: list[str],
    ) -> None:
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                await self._commit_once(job, file, got, mime, metadata, warnings)
                return
            except IntegrityError:
                # Files of one job run at once: two of them may make the same missing
                # folder. The loser tries again and finds the folder made.
                if attempt == COMMIT_ATTEMPTS - 1:
                    raise FetchFailed(
                        f"{join(job.folder_path, file.file_name)} was created concurrently", 409
                    ) from None

    async def commit_batch(
        self, job: ImportJob, batch: list[_Ready]
    ) -> dict[int, Exception | None]:
        """Commit the fetched files in one change (one transaction, one fsync, where a
        commit per file would make the database the bottleneck); each file's outcome by
        its index. A batch a concurrent writer conflicts with is committed file by file."""
        try:
            return await self._commit_together(job, batch)
        except IntegrityError:
            pass
        except FetchFailed as exc:  # the target folder is gone: for all of them
            return {r.file.idx: exc for r in batch}
        outcomes: dict[int, Exception | None] = {}
        for r in batch:
            try:
                await self._commit(job, r.file, r.got, r.mime, r.metadata, r.warnings)
                outcomes[r.file.idx] = None
            except Exception as exc:
                outcomes[r.file.idx] = exc
        return outcomes

    async def _commit_together(
        self, job: ImportJob, batch: list[_Ready]
    ) -> dict[int, Exception | None]:
        outcomes: dict[int, Exception | None] = {}
        async with self.writes.change(job.user) as ch:
            folder = await tree_repo.by_id(ch.reader, job.folder_id)
            if folder is None or folder.kind != "folder":
                raise FetchFailed("the target folder no longer exists", 404)
            # Another run of the job (a lost lease) may have imported some meanwhile.
            query = select(import_files.c.idx, import_files.c.state).where(
                import_files.c.job_id == job.id,
                import_files.c.idx.in_([r.file.idx for r in batch]),
            )
            states: dict[int, str] = {
                idx: state for idx, state in (await ch.conn.execute(query.with_for_update())).all()
            }
            groups: dict[str, list[_Ready]] = {}
            for r in batch:
                if states.get(r.file.idx) != PENDING:
                    outcomes[r.file.idx] = _Taken()
                else:
                    groups.setdefault(r.file.rel_path or "", []).append(r)
            done: list[dict[str, Any]] = []
            for rel_path, ready in groups.items():
                target = (
                    await self._folder_path(ch, join(folder.path, rel_path)) if rel_path else folder
                )
                names = [r.file.file_name for r in ready]
                taken = await tree_repo.child_names(ch.reader, target.id, names)
                chosen: list[_Ready] = []
                for r in ready:
                    name = r.file.file_name
                    if name in taken:
                        outcomes[r.file.idx] = FetchFailed(
                            f"{join(target.path, name)} already exists", 409
                        )
                        continue
                    taken.add(name)
                    chosen.append(r)
                nodes = await ch.create_assets(
                    target,
                    [(r.file.file_name, Original(r.got.blob, r.mime), r.metadata) for r in chosen],
                )
                for r, node in zip(chosen, nodes, strict=True):
                    outcomes[r.file.idx] = None
                    done.append(
                        {
                            "k_idx": r.file.idx,
                            "asset_id": node.id,
                            "asset_path": node.path,
                            "size": r.got.blob.size,
                            "warnings": r.warnings,
                        }
                    )
            now = _now()
            if done:
                await ch.conn.execute(
                    update(import_files)
                    .where(
                        import_files.c.job_id == job.id,
                        import_files.c.idx == bindparam("k_idx"),
                        import_files.c.state == PENDING,
                    )
                    .values(state=IMPORTED, updated_at=now),
                    done,
                )
            await ch.conn.execute(
                update(import_jobs).where(import_jobs.c.id == job.id).values(updated_at=now)
            )
        return outcomes

    async def _commit_once(
        self,
        job: ImportJob,
        file: ImportFile,
        got: Downloaded,
        mime: str,
        metadata: dict[str, Any],
        warnings: list[str],
    ) -> None:
        async with self.writes.change(job.user) as ch:
            folder = await tree_repo.by_id(ch.reader, job.folder_id)
            if folder is None or folder.kind != "folder":
                raise FetchFailed("the target folder no longer exists", 404)
            if file.rel_path:
                folder = await self._folder_path(ch, join(folder.path, file.rel_path))
            if await tree_repo.child_names(ch.reader, folder.id, [file.file_name]):
                raise FetchFailed(f"{join(folder.path, file.file_name)} already exists", 409)
            (node,) = await ch.create_assets(
                folder, [(file.file_name, Original(got.blob, mime), metadata)]
            )
            done = await ch.conn.execute(
                update(import_files)
                .where(
                    import_files.c.job_id == job.id,
                    import_files.c.idx == file.idx,
                    import_files.c.state == PENDING,
                )
                .values(
                    state=IMPORTED,
                    asset_id=node.id,
                    asset_path=node.path,
                    size=got.blob.size,
                    warnings=warnings,
                    updated_at=_now(),
                )
            )
            if not done.rowcount:
                raise _Taken()
            await ch.conn.execute(
                update(import_jobs).where(import_jobs.c.id == job.id).values(updated_at=_now())
            )

    async def _fail(self, job: ImportJob, file: ImportFile, error: dict[str, Any]) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(import_files)
                .where(
                    import_files.c.job_id == job.id,
                    import_files.c.idx == file.idx,
                    import_files.c.state == PENDING,
                )
                .values(state=FILE_FAILED, error=error, updated_at=_now())
            )
            await conn.execute(
                update(import_jobs).where(import_jobs.c.id == job.id).values(updated_at=_now())
            )


async def _nothing(ch: Change) -> None:
    return None


def _shard(queued: Job) -> tuple[int, int]:
    """Which part of its import's files a worker job fetches: (index, of how many)."""
    return int(queued.payload.get("shard", 0)), int(queued.payload.get("shards", 1))


@dataclass
class _Ready:
    """A file fetched into the blob store, waiting for its commit."""

    file: ImportFile
    got: Downloaded
    mime: str
    metadata: dict[str, Any]
    warnings: list[str]


MAX_BATCH = 64


class _Committer:
    """Commits a job's fetched files in batches: whatever is ready when the previous
    commit ends goes into the next one, so files are never kept waiting for a batch to
    fill, and under load one transaction serves many files."""

    def __init__(self, service: ImportService, job: ImportJob) -> None:
        self.service = service
        self.job = job
        self.queue: asyncio.Queue[tuple[_Ready, asyncio.Future[None]]] = asyncio.Queue()
        self.task = asyncio.create_task(self._loop())

    async def commit(self, ready: _Ready) -> None:
        """Returns once the file is committed; raises the file's failure."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self.queue.put((ready, done))
        await done

    async def _loop(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < MAX_BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                outcomes = await self.service.commit_batch(self.job, [r for r, _ in batch])
            except Exception as exc:  # the database failed: every file of the batch fails
                outcomes = {r.file.idx: exc for r, _ in batch}
            for ready, done in batch:
                error = outcomes.get(ready.file.idx)
                if done.done():
                    continue
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(error)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
