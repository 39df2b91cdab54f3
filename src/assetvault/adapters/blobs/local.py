"""Blob store on the local file system.

Blobs live at ``<root>/<aa>/<bb>/<sha256>``: written to a temporary file, fsynced,
then renamed into place, so a reader never sees a partial blob and equal content is
stored once. Memory use is constant: bytes move in bounded buffers on a worker thread
while the event loop receives the next ones.

Upload parts gather in ``<root>/.uploads/<upload id>/``. A part that arrives in order
is appended straight to ``data`` (hashed on the way), so completing an upload is an
fsync and a rename rather than a second copy of the file; a part that arrives early
waits in its own file and is folded in when its turn comes. ``state.json`` records
what ``data`` holds, so a crash mid-append is cut back to the last whole part.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypedDict

from assetvault.adapters.blobs.base import (
    BlobInfo,
    BlobMissing,
    PartConflict,
    PartsIncomplete,
    PartTooLarge,
)
from assetvault.adapters.blobs.hashing import (
    FLUSH_BYTES,
    Digests,
    Hashes,
    HashingWriter,
    StreamTooLarge,
    pump,
)

DIGESTS = "digests.json"
READ_BYTES = 1024 * 1024

# Linux's flag for a read that only takes what the page cache holds (None elsewhere).
_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)


class _UploadState(TypedDict):
    """``state.json`` of a staged upload."""

    sizes: list[int]  # the sizes of the parts folded into ``data``, in order


async def _pump(
    chunks: AsyncIterable[bytes], sink: HashingWriter, max_size: int | None = None
) -> int:
    try:
        return await pump(chunks, sink, max_size)
    except StreamTooLarge as exc:
        raise PartTooLarge(str(exc)) from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _flock(path: Path, *, wait: bool) -> int | None:
    """An exclusive lock on ``path`` shared by every process of this data directory (the
    file descriptor to close), or None when ``wait`` is False and another holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


@dataclass
class _Upload:
    """In-process knowledge of one staged upload; rebuilt from disk when missing."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    hashes: Hashes | None = None  # valid only while it covers exactly ``data``

    def take_hashes(self, offset: int) -> Hashes | None:
        """The running hashes to continue at ``offset``, or None when they do not cover
        exactly the bytes before it (then the whole file is hashed at the end)."""
        hashes, self.hashes = self.hashes, None
        if offset == 0:
            return Hashes()
        return hashes if hashes is not None and hashes.size == offset else None


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / ".tmp"
        self.uploads_dir = root / ".uploads"
        for d in (self.root, self.tmp_dir, self.uploads_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._uploads: dict[str, _Upload] = {}

    # -- blobs ---------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"not a blob key: {key!r}")
        return self.root / key[:2] / key[2:4] / key

    def local_path(self, key: str) -> Path | None:
        """Where the blob lies, if stored (this store only; not part of the port)."""
        path = self._path(key)
        return path if path.exists() else None

    @contextlib.asynccontextmanager
    async def local_copy(self, key: str) -> AsyncIterator[Path]:
        """The blob's own file: content-addressed files never change, so no copy."""
        path = await asyncio.to_thread(self.local_path, key)
        if path is None:
            raise BlobMissing(f"no blob {key}")
        yield path

    @contextlib.asynccontextmanager
    async def scratch(self) -> AsyncIterator[Path]:
        """A directory under ``tmp_dir``, on the store's file system: put_file renames."""
        d = self.tmp_dir / f"scratch-{uuid.uuid4().hex}"
        await asyncio.to_thread(d.mkdir)
        try:
            yield d
        finally:
            await asyncio.to_thread(shutil.rmtree, d, True)

    async def served_file(self, key: str) -> Path | None:
        """The blob's own file (content-addressed files never change)."""
        return await asyncio.to_thread(self.local_path, key)

    async def download_url(
        self,
        key: str,
        *,
        expires_seconds: int,
        content_type: str,
        content_disposition: str | None,
        cache_control: str,
    ) -> str | None:
        """None: the API serves the files of this machine itself (sendfile)."""
        return None

    def cached_bytes(self, key: str, start: int, length: int) -> bytes | None:
        """Read with ``RWF_NOWAIT``: the kernel answers from the page cache or refuses
        (EAGAIN, or a short read) rather than going to the disk, so this never waits on
        the disk's data. The open is a lookup of two directory levels that any server
        serving downloads holds in the dentry cache (the same cost as the statements
        SQLite runs in the loop)."""
        if _NOWAIT is None:
            return None
        try:
            fd = os.open(self._path(key), os.O_RDONLY)
        except (OSError, ValueError):
            return None
        try:
            buf = bytearray(length)
            got = os.preadv(fd, [buf], start, _NOWAIT)
        except OSError:  # EAGAIN: not cached; EOPNOTSUPP: a file system without it
            return None
        finally:
            os.close(fd)
        return bytes(buf) if got == length else None

    async def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    async def put(self, chunks: AsyncIterable[bytes]) -> BlobInfo:
        tmp = self.tmp_dir / uuid.uuid4().hex
        hashes = Hashes()
        fh = await asyncio.to_thread(open, tmp, "wb", buffering=0)
        stored = False
        try:
            await _pump(chunks, HashingWriter(fh.fileno(), hashes))
            digests = hashes.digests()

            def finish() -> BlobInfo:
                self._flush_close(fh)
                return self._adopt(tmp, digests)

            info = await asyncio.to_thread(finish)  # one hop: the fsync, then the rename
            stored = True
            return info
        finally:
            fh.close()
            if not stored:  # renamed into place when stored: nothing to remove then
                tmp.unlink(missing_ok=True)

    async def put_file(self, path: Path) -> BlobInfo:
        """Adopt a finished file (moved, not copied): it must be on this file system,
        e.g. made in a ``scratch()`` directory."""

        def adopt() -> BlobInfo:
            with open(path, "rb+") as fh:
                os.fsync(fh.fileno())
            return self._adopt(path, self._hash_file(path).digests())

        return await asyncio.to_thread(adopt)

    @staticmethod
    def _flush_close(fh: IO[bytes]) -> None:
        fh.flush()
        os.fdatasync(fh.fileno())
        fh.close()

    def _adopt(self, file: Path, digests: Digests) -> BlobInfo:
        """Move a complete, fsynced file into its content address (blocking)."""
        key = digests.sha256
        target = self._path(key)
        if target.exists():
            os.utime(target)  # freshly referenced: keeps a concurrent sweep off it
            file.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(file, target)
            _fsync_dir(target.parent)
        return BlobInfo(key=key, size=digests.size, sha1=digests.sha1)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self._path(key)
        fh = await asyncio.to_thread(open, path, "rb")
        try:
            await asyncio.to_thread(fh.seek, start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                n = READ_BYTES if remaining is None else min(READ_BYTES, remaining)
                data = await asyncio.to_thread(fh.read, n)
                if not data:
                    break
                if remaining is not None:
                    remaining -= len(data)
                yield data
        finally:
            fh.close()

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    async def touch(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.utime(self._path(key))

    async def keys_older_than(self, seconds: float) -> AsyncIterator[str]:
        cutoff = time.time() - seconds
        for first in sorted(self.root.iterdir()):
            if first.name.startswith(".") or not first.is_dir():
                continue
            for second in sorted(first.iterdir()):
                for blob in sorted(second.iterdir()):
                    with contextlib.suppress(FileNotFoundError):
                        if blob.stat().st_mtime <= cutoff:
                            yield blob.name
        # Leftovers of puts that died before their rename, and of scratch directories
        # whose process died.
        for tmp in self.tmp_dir.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if tmp.stat().st_mtime <= cutoff:
                    if tmp.is_dir():
                        shutil.rmtree(tmp, ignore_errors=True)
                    else:
                        tmp.unlink()

    async def clear(self) -> int:
        """Every shard directory and staged upload moved into one trash directory under
        ``.tmp`` (a rename each: the store is empty when this returns), then the trash
        removed on a thread of its own, after the caller has gone on; what a crash leaves
        of it the sweep removes with the rest of ``.tmp``."""

        def move() -> tuple[int, Path]:
            trash = self.tmp_dir / f"cleared-{uuid.uuid4().hex[:12]}"
            trash.mkdir()
            removed = 0
            for first in self.root.iterdir():
                if first.name.startswith(".") or not first.is_dir():
                    continue
                removed += sum(len(os.listdir(second)) for second in first.iterdir())
                first.rename(trash / first.name)
            for entry in self.uploads_dir.iterdir():
                entry.rename(trash / f"upload-{entry.name}")
            self._uploads.clear()
            return removed, trash

        removed, trash = await asyncio.to_thread(move)
        threading.Thread(
            target=shutil.rmtree, args=(trash,), kwargs={"ignore_errors": True}, daemon=True
        ).start()
        return removed

    # -- upload staging ------------------------------------------------------------------

    def _upload_dir(self, upload_id: str) -> Path:
        if not upload_id or not all(c in "0123456789abcdef" for c in upload_id):
            raise ValueError(f"not an upload id: {upload_id!r}")
        return self.uploads_dir / upload_id

    def _state(self, d: Path) -> _UploadState:
        try:
            state: _UploadState = json.loads((d / "state.json").read_text())
        except FileNotFoundError:
            state = {"sizes": []}
        return state

    def _save_state(self, d: Path, state: _UploadState) -> None:
        self._write_json(d / "state.json", state)

    def _upload(self, upload_id: str) -> _Upload:
        return self._uploads.setdefault(upload_id, _Upload())

    # Parts of one upload may reach several API processes at once: the in-process lock
    # orders this process's requests, the file lock orders the processes.
    @contextlib.asynccontextmanager
    async def _exclusive(self, d: Path, up: _Upload) -> AsyncIterator[None]:
        async with up.lock:
            try:
                fd = await asyncio.to_thread(_flock, d / ".lock", wait=True)
            except FileNotFoundError as exc:
                # A racing complete committed and discarded the upload meanwhile.
                raise PartsIncomplete("the staged upload is gone: it was completed") from exc
            assert fd is not None
            try:
                yield
            finally:
                os.close(fd)

    async def _try_exclusive(self, d: Path, up: _Upload) -> int | None:
        """Both locks if both are free right now (the caller releases ``up.lock`` and
        closes the returned descriptor), else None without waiting."""
        if up.lock.locked():
            return None
        await up.lock.acquire()  # free: does not yield, so the check cannot go stale
        fd = await asyncio.to_thread(_flock, d / ".lock", wait=False)
        if fd is None:
            up.lock.release()
        return fd

    async def write_part(
        self, upload_id: str, number: int, chunks: AsyncIterable[bytes], max_size: int
    ) -> int:
        d = self._upload_dir(upload_id)
        if await asyncio.to_thread(self._make_staging, d):
            raise PartConflict("this upload has already been completed")
        try:
            return await self._write_part(d, upload_id, number, chunks, max_size)
        except BaseException:
            # A refused first part leaves no empty staging area behind.
            if await asyncio.to_thread(self._is_empty, d):
                await self.discard(upload_id)
            raise

    @staticmethod
    def _make_staging(d: Path) -> bool:
        """Make the upload's staging directory if missing; whether it was completed."""
        d.mkdir(exist_ok=True)
        return (d / "assembled.json").exists()

    @staticmethod
    def _is_empty(d: Path) -> bool:
        """Nothing received and nothing on its way (other parts stream into .tmp files)."""
        try:
            entries = list(d.iterdir())
        except FileNotFoundError:
            return False
        return all(
            e.name == ".lock" or (e.name == "data" and e.stat().st_size == 0) for e in entries
        )

    async def _write_part(
        self, d: Path, upload_id: str, number: int, chunks: AsyncIterable[bytes], max_size: int
    ) -> int:
        up = self._upload(upload_id)
        # Appending in order needs the locks for the whole part; take them only if free.
        fd = await self._try_exclusive(d, up)
        if fd is not None:
            try:
                state, fh = await asyncio.to_thread(self._open_in_order, d, number)
                if fh is not None:
                    return await self._append(d, up, state, fh, chunks, max_size)
            finally:
                os.close(fd)
                up.lock.release()
        size = await self._write_part_file(d, number, chunks, max_size)
        async with self._exclusive(d, up):
            await self._fold(d, up)
        return size

    def _open_in_order(self, d: Path, number: int) -> tuple[_UploadState, IO[bytes] | None]:
        """The upload's state and, if part ``number`` is next in line, ``data`` open to
        append it, cut back to the whole parts the state records (whatever a crash left
        after them goes). One thread hop for what a part needs before its bytes."""
        state = self._state(d)
        if number != len(state["sizes"]) + 1:
            return state, None
        fh = open(d / "data", "ab", buffering=0)  # noqa: SIM115 (closed by _append)
        try:
            fh.truncate(sum(state["sizes"]))
        except BaseException:
            fh.close()
            raise
        return state, fh

    async def _append(
        self,
        d: Path,
        up: _Upload,
        state: _UploadState,
        fh: IO[bytes],
        chunks: AsyncIterable[bytes],
        max_size: int,
    ) -> int:
        """Append the next part to ``data`` (open, from ``_open_in_order``; closed here),
        then make it durable and record it, and fold in parts waiting after it."""
        start = sum(state["sizes"])
        try:
            hashes = up.take_hashes(start)
            try:
                size = await _pump(chunks, HashingWriter(fh.fileno(), hashes), max_size)
            except BaseException:
                await asyncio.to_thread(fh.truncate, start)
                raise
            state["sizes"].append(size)
            digests = hashes.digests() if hashes is not None else None

            def finish() -> None:
                # One thread hop after the bytes: the fsync, the state that counts the
                # part (only then is it acknowledged), the digests, the parts waiting.
                self._flush_close(fh)
                self._save_state(d, state)
                up.hashes = hashes
                if digests is not None:
                    self._save_digests(d, digests)
                self._fold_waiting(d, up)

            await asyncio.to_thread(finish)
        finally:
            fh.close()
        return size

    async def _write_part_file(
        self, d: Path, number: int, chunks: AsyncIterable[bytes], max_size: int
    ) -> int:
        tmp = d / f"part-{number}.{uuid.uuid4().hex}.tmp"
        fh = await asyncio.to_thread(open, tmp, "wb", buffering=0)
        try:
            size = await _pump(chunks, HashingWriter(fh.fileno()), max_size)
            await asyncio.to_thread(self._flush_close, fh)
            state = await asyncio.to_thread(self._state, d)
            sizes: list[int] = state["sizes"]
            if number <= len(sizes):
                # A retry of a part already joined: same length replaces it in place.
                if sizes[number - 1] != size:
                    raise PartConflict(
                        f"part {number} was already received with {sizes[number - 1]} bytes"
                    )
                await asyncio.to_thread(self._overwrite, d, sum(sizes[: number - 1]), tmp)
                self._upload(d.name).hashes = None
                # Bytes already hashed changed: no process may trust earlier digests.
                await asyncio.to_thread((d / DIGESTS).unlink, True)
            else:
                await asyncio.to_thread(os.replace, tmp, d / f"part-{number}")
            return size
        finally:
            fh.close()
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _overwrite(d: Path, offset: int, part: Path) -> None:
        with open(d / "data", "r+b") as out, open(part, "rb") as src:
            out.seek(offset)
            shutil.copyfileobj(src, out, READ_BYTES)
            out.flush()
            os.fsync(out.fileno())

    async def _fold(self, d: Path, up: _Upload) -> None:
        """Append waiting part files that are next in line (caller holds the lock)."""
        await asyncio.to_thread(self._fold_waiting, d, up)

    def _fold_waiting(self, d: Path, up: _Upload) -> None:
        """``_fold`` on the calling thread."""
        state = self._state(d)
        while True:
            nxt = d / f"part-{len(state['sizes']) + 1}"
            if not nxt.exists():
                return
            start = sum(state["sizes"])
            hashes = up.take_hashes(start)
            with open(d / "data", "ab") as out, open(nxt, "rb") as src:
                out.truncate(start)
                while data := src.read(READ_BYTES):
                    out.write(data)
                    if hashes is not None:
                        hashes.update(data)
                out.flush()
                os.fsync(out.fileno())
                size = out.tell() - start
            state["sizes"].append(size)
            self._save_state(d, state)
            up.hashes = hashes
            if hashes is not None:
                self._save_digests(d, hashes.digests())
            nxt.unlink()

    async def received(self, upload_id: str) -> dict[int, int]:
        d = self._upload_dir(upload_id)
        if not d.exists():
            return {}
        state = await asyncio.to_thread(self._state, d)
        parts = {i + 1: s for i, s in enumerate(state["sizes"])}
        for f in d.glob("part-*"):
            if f.name.endswith(".tmp"):
                continue
            with contextlib.suppress(ValueError, FileNotFoundError):
                parts[int(f.name[5:])] = f.stat().st_size
        return parts

    async def assemble(self, upload_id: str, expected_size: int) -> BlobInfo:
        try:
            return await self._assemble(upload_id, expected_size)
        except FileNotFoundError as exc:
            # A racing complete committed and discarded the staging area under us (its
            # discard does not wait for our lock): the upload is no longer here.
            raise PartsIncomplete("the staged upload is gone: it was completed") from exc

    async def _assemble(self, upload_id: str, expected_size: int) -> BlobInfo:
        d = self._upload_dir(upload_id)
        up = self._upload(upload_id)
        await asyncio.to_thread(d.mkdir, exist_ok=True)
        async with self._exclusive(d, up):
            await self._fold(d, up)
            state = await asyncio.to_thread(self._state, d)
            have = sum(state["sizes"])
            waiting = [f for f in d.glob("part-*") if not f.name.endswith(".tmp")]
            if have != expected_size or waiting:
                gap = f"; {len(waiting)} part(s) wait after a missing one" if waiting else ""
                raise PartsIncomplete(
                    f"received {len(state['sizes'])} contiguous part(s) with {have} bytes "
                    f"of {expected_size}{gap}"
                )
            data = d / "data"
            done = d / "assembled.json"
            if await asyncio.to_thread(done.exists):
                # A complete that got this far before and died, or whose row was not
                # committed: its blob is stored, or its data is still here to adopt.
                info = BlobInfo(**json.loads(await asyncio.to_thread(done.read_text)))
                if await self.size(info.key) == info.size:
                    await self.touch(info.key)
                    return info
                if await asyncio.to_thread(self._has_size, data, info.size):
                    recorded = Digests(info.size, info.key, info.sha1)
                    return await asyncio.to_thread(self._adopt, data, recorded)
                raise PartsIncomplete("the assembled upload is gone; upload the file again")
            if not await asyncio.to_thread(self._has_size, data, have, at_least=True):
                raise PartsIncomplete("the staged data is gone; upload the file again")
            await asyncio.to_thread(self._cut, data, have)
            digests = (
                up.hashes.digests()
                if up.hashes is not None and up.hashes.size == have
                else await asyncio.to_thread(self._saved_digests, d, have)
            )
            if digests is None:
                digests = (await asyncio.to_thread(self._hash_file, data)).digests()
            # Recorded before the data moves to its content address, so a crash between
            # the two leaves a record a retried complete can finish from (never a data
            # file it would have to recreate). Kept until the caller has committed the
            # asset and discards the upload.
            record = {"key": digests.sha256, "size": digests.size, "sha1": digests.sha1}
            await asyncio.to_thread(self._write_json, done, record)
            info = await asyncio.to_thread(self._adopt, data, digests)
        return info

    @staticmethod
    def _has_size(path: Path, size: int, *, at_least: bool = False) -> bool:
        try:
            actual = path.stat().st_size
        except FileNotFoundError:
            return size == 0 and at_least  # an empty upload may have no data file yet
        return actual >= size if at_least else actual == size

    # The parts of one upload may reach one API process and its complete another: the
    # process that appended last leaves the digests of what it appended, so the complete
    # need not read the whole file again. No fsync: after a crash they are missing or
    # stale by size, and the file is hashed again.
    @staticmethod
    def _save_digests(d: Path, digests: Digests) -> None:
        tmp = d / f"{DIGESTS}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(digests.__dict__))
        os.replace(tmp, d / DIGESTS)

    @staticmethod
    def _saved_digests(d: Path, size: int) -> Digests | None:
        try:
            found = Digests(**json.loads((d / DIGESTS).read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None
        return found if found.size == size else None

    @staticmethod
    def _write_json(path: Path, value: Any) -> None:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump(value, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    @staticmethod
    def _cut(data: Path, size: int) -> None:
        """Drop whatever a crash left after the last whole part (or make an empty file)."""
        with open(data, "ab") as fh:
            fh.truncate(size)

    @staticmethod
    def _hash_file(path: Path) -> Hashes:
        hashes = Hashes()
        with open(path, "rb") as fh:
            while data := fh.read(FLUSH_BYTES):
                hashes.start_batch([data])()  # the two digests side by side
        return hashes

    async def discard(self, upload_id: str) -> None:
        d = self._upload_dir(upload_id)
        self._uploads.pop(upload_id, None)
        await asyncio.to_thread(shutil.rmtree, d, True)

    async def staged_blob_keys(self) -> set[str]:
        """Blobs assembled for uploads whose rows are not committed yet: a retried
        complete will refer to them."""

        def scan() -> set[str]:
            keys = set()
            for done in self.uploads_dir.glob("*/assembled.json"):
                with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
                    keys.add(json.loads(done.read_text())["key"])
            return keys

        return await asyncio.to_thread(scan)

    async def sweep(self, older_than_seconds: float) -> int:
        cutoff = time.time() - older_than_seconds
        removed = 0
        for d in list(self.uploads_dir.iterdir()):
            try:
                newest = max([d.stat().st_mtime] + [f.stat().st_mtime for f in d.iterdir()])
            except FileNotFoundError:
                continue
            up = self._uploads.get(d.name)
            if newest <= cutoff and (up is None or not up.lock.locked()):
                await self.discard(d.name)
                removed += 1
        return removed
