"""Snapshots and reset of the embedded default (docs/ci.md, "Snapshots and reset").

A snapshot is a directory (``<data dir>/snapshots/<NAME>``) or one tar file holding it:

- ``manifest.json``: the format and its version, the schema (Alembic) revisions, counts;
- ``assetvault.db``: a point-in-time copy of the database (SQLite's online backup, one
  read transaction): the tree, tokens, event registrations, the journal, the outbox and
  every consumer's position, the jobs;
- ``search/<index>``: the embedded search index, built from that copy when the snapshot
  is made, so a restore needs no rebuild and the index matches the copy exactly;
- ``blobs/``: the binaries the copy refers to, hard links of the live store's files
  (content-addressed files never change, so a link is a copy that costs nothing; across
  file systems they are copied); a snapshot file carries them as bytes;
- ``keys/``: the upload-token secret and the event signing keys.

A restore prepares everything it can while the server serves (a copy of the snapshot's
database brought to this version's schema, the live tokens added, the index copied in
under a new name), then closes the restore gate (runtime/gate.py), links the blobs in,
loads the database into the live file in one step and puts the keys back, and opens the
gate: no request sees a mix. Reset is a restore of a freshly migrated database.

Neither writes the tree through the write path, and that is on purpose: they replace the
whole state, they do not change it. No outbox row is appended (a reset of a test server
does not send its webhooks a delete event per asset); consumers start from the restored
positions.

On PostgreSQL there are no snapshots (501, with the reason); a reset there empties the
database in one transaction and the blob store through its port (``_reset_shared``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import delete, update

from assetvault.adapters.blobs.base import BlobStore
from assetvault.adapters.database.engine import Database, head_revisions, known_revision
from assetvault.adapters.database.reset import reset_database
from assetvault.adapters.database.tables import event_state, jobs, search_index_state
from assetvault.adapters.snapshots import files
from assetvault.errors import AssetvaultError, Conflict, InvalidInput, NotFound
from assetvault.runtime.gate import Gate
from assetvault.runtime.wake import SocketWakeups
from assetvault.search.indexer import STATE, Indexer
from assetvault.search.ports import DocumentIndexes
from assetvault.settings import Settings
from assetvault.tree import repository as tree_repo

log = logging.getLogger("assetvault.snapshots")


def _version() -> str:
    try:
        return metadata.version("assetvault")
    except metadata.PackageNotFoundError:
        return "unknown"


__version__ = _version()

FORMAT = "assetvault-snapshot"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "assetvault.db"
FILE_SUFFIXES = (".tar", ".avsnap")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
LEASE_KEY = "dispatcher_lease"  # events/repository.py: a live dispatcher's, not the copy's
# How long a restore waits for the requests in flight to finish before it gives up.
DRAIN_SECONDS = 10.0


class Unsupported(AssetvaultError):
    """Snapshots and reset need the embedded default's storage."""

    status = 501
    title = "Not Implemented"


class SnapshotFailed(AssetvaultError):
    status = 500
    title = "Internal Server Error"


@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    created_at: str
    format_version: int
    schema_revisions: list[str]
    assets: int
    blobs: int
    bytes: int

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "createdAt": self.created_at,
            "formatVersion": self.format_version,
            "schemaRevisions": self.schema_revisions,
            "assets": self.assets,
            "blobs": self.blobs,
            "bytes": self.bytes,
        }


@dataclass(frozen=True)
class Outcome:
    """What a save, restore or reset did, and how long it took."""

    name: str
    seconds: float
    assets: int
    blobs: int
    migrated: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": round(self.seconds, 3),
            "assets": self.assets,
            "blobs": self.blobs,
            "migrated": self.migrated,
        }


def is_file_target(target: str) -> bool:
    """A target that names a file (a path ending in .tar or .avsnap) rather than a
    snapshot kept in the data directory. Only those suffixes: a save over the admin API
    writes the file on the server, and must not be able to overwrite any other file."""
    return target.endswith(FILE_SUFFIXES)


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise InvalidInput(
            f"{name!r} is no snapshot name: 1-64 letters, digits, '.', '_' or '-', "
            "not starting with '.' (a snapshot file is a path ending in .tar or .avsnap)"
        )
    return name


def _sqlite_path(url: str) -> Path:
    return Path(url.split("///", 1)[1])


def _url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


class SnapshotService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        blob_root: Path | None,
        gate: Gate,
        indexes: DocumentIndexes | None,
        on_restored: Callable[[], None] | None = None,
        blobs: BlobStore | None = None,
    ) -> None:
        self.settings = settings
        self.blobs = blobs  # the blob port (a reset on PostgreSQL empties the store)
        self.db = db
        self.blob_root = blob_root
        self.gate = gate
        self.indexes = indexes  # the embedded index's opener (None: search in the database)
        self.on_restored = on_restored
        self.root = settings.data_dir / "snapshots"
        self.work = settings.data_dir / "run"

    # -- where ---------------------------------------------------------------------------

    def _supported(self) -> Path:
        """The live database's file; Unsupported where snapshots cannot be consistent."""
        if not self.db.is_sqlite:
            raise Unsupported(
                "snapshots and reset need the embedded SQLite database: on PostgreSQL use "
                "pg_dump / pg_restore (a copy of the database alone would miss the blobs "
                "and keys, and a restore under running machines cannot be made atomic here)"
            )
        if self.blob_root is None:
            raise Unsupported(
                "snapshots and reset need the local blob store: an S3 bucket's objects are "
                "neither shared by hard links nor removed atomically with a restore; use "
                "the object store's own versioning or replication"
            )
        return _sqlite_path(self.db.url)

    def _dir_of(self, name: str) -> Path:
        return self.root / check_name(name)

    # -- list, delete --------------------------------------------------------------------

    def list(self) -> list[SnapshotInfo]:
        self._supported()
        found = []
        if self.root.is_dir():
            for entry in sorted(self.root.iterdir()):
                if entry.name.startswith(".") or not (entry / MANIFEST).is_file():
                    continue
                with contextlib.suppress(ValueError, OSError, KeyError):
                    found.append(self._info(entry.name, _read_manifest(entry)))
        return found

    def delete(self, name: str) -> None:
        self._supported()
        where = self._dir_of(name)
        if not (where / MANIFEST).is_file():
            raise NotFound(f"no snapshot named {name!r}")
        trash = self.root / f".trash-{uuid.uuid4().hex[:12]}"
        where.rename(trash)
        files.remove_tree(trash)

    # -- export, import ------------------------------------------------------------------

    def archive(self, name: str) -> files.Archive:
        """The snapshot ``name`` as one tar file, to be sent as it is read (the file a
        save to a path writes): how a client on another machine gets a portable copy."""
        self._supported()
        where = self._dir_of(name)
        if not (where / MANIFEST).is_file():
            raise NotFound(f"no snapshot named {name!r}")
        return files.Archive(where)

    async def receive(self, name: str, chunks: AsyncIterable[bytes]) -> SnapshotInfo:
        """A snapshot file sent as ``chunks`` kept as the snapshot ``name`` (replacing one
        of that name), once it is known to be one this version can restore: a file that
        is none, or one of a newer or unknown version, is refused and nothing is kept."""
        self._supported()
        check_name(name)
        self.root.mkdir(parents=True, exist_ok=True)
        tag = uuid.uuid4().hex[:12]
        incoming = self.root / f".incoming-{tag}.tar"
        staging = self.root / f".new-{tag}"
        try:
            await _write(incoming, chunks)
            try:
                await asyncio.to_thread(files.unpack, incoming, staging)
            except files.BadArchive as exc:
                raise InvalidInput(str(exc)) from exc
            incoming.unlink()
            manifest = self._compatible(staging)
            final = self._dir_of(name)
            trash = self.root / f".trash-{tag}"
            if final.exists():
                final.rename(trash)
            staging.rename(final)
            await asyncio.to_thread(files.remove_tree, trash)
        finally:
            incoming.unlink(missing_ok=True)
            if staging.exists():
                await asyncio.to_thread(files.remove_tree, staging)
        log.info("snapshot %s received", name)
        return self._info(name, manifest)

    @staticmethod
    def _info(name: str, manifest: dict[str, Any]) -> SnapshotInfo:
        return SnapshotInfo(
            name=name,
            created_at=str(manifest["createdAt"]),
            format_version=int(manifest["formatVersion"]),
            schema_revisions=[str(r) for r in manifest["schemaRevisions"]],
            assets=int(manifest.get("assets", 0)),
            blobs=int(manifest.get("blobs", 0)),
            bytes=int(manifest.get("bytes", 0)),
        )

    # -- save ----------------------------------------------------------------------------

    async def save(self, target: str) -> Outcome:
        """Save the live state as the snapshot ``target``: a name (kept in the data
        directory, replacing one of that name) or a file path (.tar / .avsnap)."""
        live = self._supported()
        started = asyncio.get_running_loop().time()
        as_file = is_file_target(target)
        if as_file:
            dest_file = await asyncio.to_thread(_resolved, target)
            if not dest_file.parent.is_dir():
                raise InvalidInput(f"{dest_file.parent} is no directory")
            name = dest_file.name
        else:
            name = check_name(target)
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".new-{uuid.uuid4().hex[:12]}"
        staging.mkdir()
        try:
            # Inside the gate, as a request is: no restore or reset runs meanwhile.
            async with self.gate.held(DRAIN_SECONDS):
                assets, blobs = await self._fill(live, staging)
            if as_file:
                await asyncio.to_thread(files.pack, staging, dest_file)
            else:
                final = self._dir_of(name)
                trash = self.root / f".trash-{uuid.uuid4().hex[:12]}"
                if final.exists():
                    final.rename(trash)
                staging.rename(final)
                files.remove_tree(trash)
        finally:
            if staging.exists():
                await asyncio.to_thread(files.remove_tree, staging)
        seconds = asyncio.get_running_loop().time() - started
        log.info("snapshot %s saved: %d asset(s), %d blob(s), %.2f s", name, assets, blobs, seconds)
        return Outcome(name=name, seconds=seconds, assets=assets, blobs=blobs)

    async def _fill(self, live: Path, staging: Path) -> tuple[int, int]:
        copy = staging / DATABASE
        await asyncio.to_thread(files.copy_database, live, copy)
        db = Database(_url(copy))
        try:
            async with db.reader() as r:
                keys = await tree_repo.referenced_blob_keys(r)
                revisions = sorted(
                    row[0] for row in await r.fetch_all("SELECT version_num FROM alembic_version")
                )
                count = await r.fetch_one("SELECT count(*) FROM nodes WHERE kind = 'asset'")
            async with db.write() as conn:
                # What belonged to the running processes, not to the state: a job claimed
                # by a worker runs again after a restore; the dispatcher's lease is free.
                await conn.execute(
                    update(jobs)
                    .where(jobs.c.state == "running")
                    .values(state="queued", worker=None, lease_until=None)
                )
                await conn.execute(delete(event_state).where(event_state.c.key == LEASE_KEY))
                await conn.execute(delete(search_index_state))
            if self.indexes is not None:
                # The index of exactly this copy, as the search indexer builds one.
                indexer = Indexer(
                    db,
                    staging / "search",
                    self.indexes,
                    SocketWakeups(staging / ".wake"),
                    safety_seconds=self.settings.wake_safety_seconds,
                )
                (staging / "search").mkdir()
                await indexer.rebuild()
        finally:
            await db.dispose()
        files.remove_tree(Path(f"{copy}-turn"))
        size = await asyncio.to_thread(self._link_blobs, keys, staging / "blobs")
        await asyncio.to_thread(self._copy_keys, staging / "keys")
        assets = int(count[0]) if count else 0
        manifest = {
            "format": FORMAT,
            "formatVersion": FORMAT_VERSION,
            "assetvault": __version__,
            "schemaRevisions": revisions,
            "createdAt": datetime.now(UTC).isoformat(),
            "assets": assets,
            "blobs": len(keys),
            "bytes": size,
            "search": "embedded" if self.indexes is not None else "database",
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        return assets, len(keys)

    def _link_blobs(self, keys: set[str], dest: Path) -> int:
        assert self.blob_root is not None
        size = 0
        for key in sorted(keys):
            relative = Path(key[:2]) / key[2:4] / key
            source = self.blob_root / relative
            try:
                size += source.stat().st_size
                files.link_or_copy(source, dest / relative)
            except FileNotFoundError as exc:
                raise SnapshotFailed(
                    f"blob {key} went missing while the snapshot was made (a sweep removed "
                    "it meanwhile); save again"
                ) from exc
        return size

    def _copy_keys(self, dest: Path) -> None:
        dest.mkdir()
        secret = self.settings.data_dir / "secret.key"
        _ = self.settings.secret_key  # made if it was not yet
        if secret.is_file():  # else ASSETVAULT_INSTALLATION_SECRET is the secret
            files.replace_file(secret, dest / "secret.key")
        ring = self.settings.data_dir / "event-keys"
        if ring.is_dir():
            (dest / "event-keys").mkdir()
            for entry in ring.iterdir():
                if entry.is_file() and not entry.name.startswith("."):
                    files.replace_file(entry, dest / "event-keys" / entry.name)

    # -- restore -------------------------------------------------------------------------

    async def restore(self, source: str) -> Outcome:
        """Bring the live state back to the snapshot ``source`` (a name or a file)."""
        live = self._supported()
        started = asyncio.get_running_loop().time()
        unpacked: Path | None = None
        if is_file_target(source):
            path = await asyncio.to_thread(_resolved, source)
            if not path.is_file():
                raise NotFound(f"no snapshot file {path}")
            self.root.mkdir(parents=True, exist_ok=True)
            unpacked = self.root / f".unpacked-{uuid.uuid4().hex[:12]}"
            try:
                await asyncio.to_thread(files.unpack, path, unpacked)
            except files.BadArchive as exc:
                files.remove_tree(unpacked)
                raise InvalidInput(str(exc)) from exc
            where, name = unpacked, path.name
        else:
            where, name = self._dir_of(source), source
            if not (where / MANIFEST).is_file():
                raise NotFound(f"no snapshot named {source!r}")
        try:
            manifest = self._compatible(where)
            info = self._info(name, manifest)
            migrated = set(info.schema_revisions) != head_revisions()
            await self._load(
                live,
                where / DATABASE,
                blobs=where / "blobs",
                keys=where / "keys",
                index=where / "search",
                migrate=migrated,
                keep_tokens=True,
                keep_registrations=False,
            )
        finally:
            if unpacked is not None:
                await asyncio.to_thread(files.remove_tree, unpacked)
        seconds = asyncio.get_running_loop().time() - started
        log.info("snapshot %s restored in %.2f s", name, seconds)
        return Outcome(name, seconds, info.assets, info.blobs, migrated=migrated)

    def _compatible(self, where: Path) -> dict[str, Any]:
        """The manifest, if this version can restore the snapshot; else Conflict with
        the reason."""
        try:
            manifest = _read_manifest(where)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"not an Assetvault snapshot (no readable manifest: {exc})") from exc
        if manifest.get("format") != FORMAT:
            raise InvalidInput("not an Assetvault snapshot (its manifest names another format)")
        version = manifest.get("formatVersion")
        if not isinstance(version, int) or version < 1:
            raise InvalidInput("not an Assetvault snapshot (no format version)")
        if version > FORMAT_VERSION:
            raise Conflict(
                f"the snapshot is of format version {version}, made by a newer Assetvault "
                f"({manifest.get('assetvault', 'unknown')}); this one ({__version__}) reads "
                f"format versions up to {FORMAT_VERSION}"
            )
        revisions = manifest.get("schemaRevisions")
        if not isinstance(revisions, list) or not revisions:
            raise InvalidInput("not an Assetvault snapshot (no schema revision)")
        unknown = [r for r in revisions if not (isinstance(r, str) and known_revision(r))]
        if unknown:
            raise Conflict(
                f"the snapshot's database is at schema revision {', '.join(map(str, unknown))}, "
                f"which this Assetvault ({__version__}, schema "
                f"{', '.join(sorted(head_revisions()))}) does not know: it was made by a "
                "newer or another version"
            )
        if not (where / DATABASE).is_file():
            raise InvalidInput("not an Assetvault snapshot (no database)")
        return manifest

    async def _load(
        self,
        live: Path,
        database: Path,
        *,
        blobs: Path | None,
        keys: Path | None,
        index: Path | None,
        migrate: bool,
        keep_tokens: bool,
        keep_registrations: bool,
    ) -> None:
        """The common part of restore and reset: prepare a copy of ``database`` while
        the server serves, then swap it in behind the closed gate."""
        self.work.mkdir(parents=True, exist_ok=True)
        staged = self.work / f"restore-{uuid.uuid4().hex[:12]}.db"
        search_root = self.settings.data_dir / "search"
        new_index: str | None = None
        try:
            await asyncio.to_thread(files.copy_database, database, staged)
            db = Database(_url(staged))
            try:
                if migrate:
                    await db.migrate()
                await self._merge_live(db, live, keep_tokens, keep_registrations)
                if self.indexes is not None:
                    new_index = await self._stage_index(db, index, search_root)
                else:
                    async with db.write() as conn:
                        await conn.execute(delete(search_index_state))
            finally:
                await db.dispose()
                files.remove_tree(Path(f"{staged}-turn"))

            def swap() -> None:
                with self.gate.closed_for_restore(DRAIN_SECONDS):
                    if blobs is not None and blobs.is_dir() and self.blob_root is not None:
                        files.link_tree(blobs, self.blob_root)
                    files.load_database(staged, live)
                    if keys is not None and keys.is_dir():
                        self._put_keys(keys)

            await asyncio.to_thread(swap)
        except BaseException:
            if new_index is not None:
                files.remove_tree(search_root / new_index)
            raise
        finally:
            await asyncio.to_thread(_remove_database, staged)
        if self.on_restored is not None:
            self.on_restored()
        if new_index is not None and search_root.is_dir():
            # The indexes of before: readers that still map their files keep them (POSIX).
            for entry in search_root.iterdir():
                if entry.is_dir() and entry.name.startswith("index-") and entry.name != new_index:
                    await asyncio.to_thread(files.remove_tree, entry)

    async def _merge_live(
        self, db: Database, live: Path, keep_tokens: bool, keep_registrations: bool
    ) -> None:
        """The live tokens (and registrations) the staged copy lacks, added to it: a token
        made after the snapshot keeps working, so a test harness never locks itself out."""
        tables = (["api_tokens"] if keep_tokens else []) + (
            ["event_registrations"] if keep_registrations else []
        )
        if not tables:
            return
        await db.dispose()  # the rows go in on a connection of their own
        await asyncio.to_thread(files.add_missing_rows, _sqlite_path(db.url), live, tables)

    async def _stage_index(self, db: Database, index: Path | None, search_root: Path) -> str:
        """The snapshot's index copied under a new name beside the live one, and named by
        the staged database; or, where the snapshot has none, a new index built from the
        staged database (an empty one for a reset)."""
        await asyncio.to_thread(search_root.mkdir, parents=True, exist_ok=True)
        async with db.reader() as r:
            row = await r.fetch_one(
                "SELECT directory FROM search_index_state WHERE name = ?", (STATE,)
            )
        if index is not None and row is not None and (index / row[0]).is_dir():
            name = f"index-{uuid.uuid4().hex[:12]}"
            await asyncio.to_thread(files.copy_tree, index / row[0], search_root / name)
            async with db.write() as conn:
                await conn.execute(
                    update(search_index_state)
                    .where(search_index_state.c.name == STATE)
                    .values(directory=name, updated_at=datetime.now(UTC))
                )
            return name
        assert self.indexes is not None
        async with db.write() as conn:
            await conn.execute(delete(search_index_state))
        indexer = Indexer(
            db,
            search_root,
            self.indexes,
            SocketWakeups(self.work / f"wake-{uuid.uuid4().hex[:8]}"),
            safety_seconds=self.settings.wake_safety_seconds,
        )
        await indexer.rebuild()
        async with db.reader() as r:
            made = await r.fetch_one(
                "SELECT directory FROM search_index_state WHERE name = ?", (STATE,)
            )
        assert made is not None
        return str(made[0])

    def _put_keys(self, keys: Path) -> None:
        secret = keys / "secret.key"
        if secret.is_file():
            files.replace_file(secret, self.settings.data_dir / "secret.key")
        ring = keys / "event-keys"
        if ring.is_dir():
            live_ring = self.settings.data_dir / "event-keys"
            live_ring.mkdir(parents=True, exist_ok=True)
            names = sorted(e.name for e in ring.iterdir() if e.is_file())
            # The index last: a process that reloads on it finds the pairs it names.
            for name in [n for n in names if n != "keys.json"] + ["keys.json"]:
                if (ring / name).is_file():
                    files.replace_file(ring / name, live_ring / name)

    # -- reset ---------------------------------------------------------------------------

    async def reset(self, *, keep_tokens: bool = True, keep_registrations: bool = False) -> Outcome:
        """An empty DAM, as on a fresh start: the root folder alone, an empty index, no
        jobs, no outbox, no journal; the tokens kept unless ``keep_tokens`` is off, the
        event registrations dropped unless ``keep_registrations``. The binaries are left
        to the sweep (a snapshot may share them); on PostgreSQL, where there are no
        snapshots, the blob store is emptied (``_reset_shared``)."""
        if not self.db.is_sqlite:
            return await self._reset_shared(keep_tokens, keep_registrations)
        live = self._supported()
        started = asyncio.get_running_loop().time()
        fresh = await self._fresh_database()
        await self._load(
            live,
            fresh,
            blobs=None,
            keys=None,
            index=None,
            migrate=False,
            keep_tokens=keep_tokens,
            keep_registrations=keep_registrations,
        )
        seconds = asyncio.get_running_loop().time() - started
        log.info("data reset in %.2f s", seconds)
        return Outcome("reset", seconds, 0, 0)

    async def _reset_shared(self, keep_tokens: bool, keep_registrations: bool) -> Outcome:
        """Reset on PostgreSQL: behind this data directory's closed gate, the database
        emptied in one transaction (adapters/database/reset.py: every table but the
        schema's version, the shared secrets and what is kept; the seed rows put back;
        the search, which lives in the tables, with it), then every blob removed through
        the blob port. Other machines' statements see the state before or after, never a
        mix (the transaction's locks); docs/ci.md says what a multi-machine reset holds."""
        if self.indexes is not None:
            raise Unsupported(
                "reset on PostgreSQL needs the database search backend (search_backend "
                "'database', the default there): an embedded index on each machine cannot "
                "be emptied with the database's transaction"
            )
        started = asyncio.get_running_loop().time()
        url = self.db.url
        blobs = self.blobs

        def swap() -> tuple[int, int, float, float]:
            clock = time.monotonic
            asked = clock()
            with self.gate.closed_for_restore(DRAIN_SECONDS):
                drained = clock()
                assets = reset_database(
                    url, keep_tokens=keep_tokens, keep_registrations=keep_registrations
                )
                emptied = clock()
                removed = asyncio.run(blobs.clear()) if blobs is not None else 0
                return assets, removed, drained - asked, emptied - drained

        assets, removed, drain, database = await asyncio.to_thread(swap)
        if self.on_restored is not None:
            self.on_restored()
        seconds = asyncio.get_running_loop().time() - started
        log.info(
            "data reset in %.2f s (%.2f s draining requests, %.2f s the database): "
            "%d asset(s), %d blob(s) removed",
            seconds,
            drain,
            database,
            assets,
            removed,
        )
        return Outcome("reset", seconds, 0, 0)  # what there is now, as on SQLite

    async def _fresh_database(self) -> Path:
        """A database as migrations make it on a fresh start, made once per schema and
        kept (``run/fresh-<revision>.db``): a reset copies it rather than migrate."""
        self.work.mkdir(parents=True, exist_ok=True)
        template = self.work / f"fresh-{'-'.join(sorted(head_revisions()))}.db"
        if template.is_file():
            return template
        staged = self.work / f".fresh-{uuid.uuid4().hex[:12]}.db"
        db = Database(_url(staged))
        try:
            await db.migrate()
        finally:
            await db.dispose()
            files.remove_tree(Path(f"{staged}-turn"))
        await asyncio.to_thread(files.copy_database, staged, template)
        await asyncio.to_thread(_remove_database, staged)
        return template

    async def prepare_reset(self) -> None:
        """Make the fresh database ahead of the first reset (the background role does)."""
        with contextlib.suppress(Unsupported):
            self._supported()
            await self._fresh_database()

    async def counts(self) -> dict[str, int]:
        async with self.db.reader() as r:
            row = await r.fetch_one("SELECT count(*) FROM nodes WHERE kind = 'asset'")
        return {"assets": int(row[0]) if row else 0}


def _resolved(path: str) -> Path:
    return Path(path).expanduser().resolve()


async def _write(path: Path, chunks: AsyncIterable[bytes], batch: int = 1024 * 1024) -> None:
    """``chunks`` into the new file ``path``, written on a thread a batch at a time."""
    pending: list[bytes] = []
    size = 0
    with path.open("xb") as fh:
        async for chunk in chunks:
            pending.append(chunk)
            size += len(chunk)
            if size >= batch:
                await asyncio.to_thread(fh.write, b"".join(pending))
                pending, size = [], 0
        if pending:
            await asyncio.to_thread(fh.write, b"".join(pending))


def _remove_database(path: Path) -> None:
    """A database file and whatever SQLite and the write turn keep beside it."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    files.remove_tree(Path(f"{path}-turn"))


def _read_manifest(where: Path) -> dict[str, Any]:
    data = json.loads((where / MANIFEST).read_text())
    if not isinstance(data, dict):
        raise ValueError("the manifest is no JSON object")
    return data


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Outcome",
    "SnapshotFailed",
    "SnapshotInfo",
    "SnapshotService",
    "Unsupported",
    "check_name",
    "is_file_target",
]
