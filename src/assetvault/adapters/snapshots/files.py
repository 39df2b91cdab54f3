"""The file work of snapshots: copying a live SQLite database, loading one into a live
database, sharing files by hard links, and packing a snapshot into one portable file.

Nothing here knows what a snapshot holds; snapshots/service.py decides that.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import sqlite3
import stat
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

# Errors of os.link that mean "not here" rather than "something is wrong": another file
# system (EXDEV), one without hard links (EPERM, EOPNOTSUPP, EMLINK at the link limit).
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOTSUP}


def copy_database(live: Path, dest: Path) -> None:
    """A consistent copy of the live database ``live`` at ``dest`` (SQLite's online
    backup: one read transaction, so one point in time, while writers go on), in
    rollback-journal mode so that it is one file."""
    dest.unlink(missing_ok=True)
    source = sqlite3.connect(f"{live.as_uri()}?mode=ro", uri=True)
    try:
        target = sqlite3.connect(dest)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
    finally:
        source.close()


def load_database(source: Path, live: Path) -> None:
    """Replace the content of the live database ``live`` by that of ``source``, in one
    step: SQLite's backup into the live file takes its write lock for the copy, so every
    other connection sees the old content or the new, never a mix, and keeps working
    (they need not be closed for the file to stay sound)."""
    src = sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True)
    try:
        target = sqlite3.connect(live, timeout=60)
        try:
            src.backup(target)  # every page at once: one transaction on the target
            target.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            target.close()
    finally:
        src.close()


def link_or_copy(source: Path, dest: Path) -> bool:
    """``dest`` as a hard link of ``source``; where the file system allows no link
    (another device, a btrfs subvolume), a reflink (a clone sharing the data blocks, on
    btrfs, XFS, bcachefs); True for either, as no data was copied. Else a copy (False).
    A clone or copy is written beside and renamed, so ``dest`` is never a half-written
    file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, dest)
        return True
    except FileExistsError:
        return True
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
    staged = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}")
    try:
        shared = _clone(source, staged)
        if not shared:
            shutil.copyfile(source, staged)
        os.replace(staged, dest)
    finally:
        staged.unlink(missing_ok=True)
    return shared


# linux/fs.h: FICLONE, the whole file as a reflink of another.
_FICLONE = 0x40049409


def _clone(source: Path, dest: Path) -> bool:
    """``dest`` (new) as a reflink of ``source``, where the file system has them."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with source.open("rb") as src, dest.open("wb") as dst:
            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
        return True
    except OSError:  # no reflinks here (EOPNOTSUPP, EINVAL) or across devices (EXDEV)
        return False


def link_tree(source: Path, dest: Path) -> tuple[int, int]:
    """Every file below ``source`` at the same place below ``dest``, linked where the file
    system allows (else copied); returns (linked, copied)."""
    linked = copied = 0
    for root, _dirs, files in os.walk(source):
        where = dest / Path(root).relative_to(source)
        for name in files:
            if link_or_copy(Path(root) / name, where / name):
                linked += 1
            else:
                copied += 1
    return linked, copied


def copy_tree(source: Path, dest: Path) -> None:
    """A plain copy of a directory (small ones: a search index of the size a snapshot
    carries is a few megabytes)."""
    shutil.copytree(source, dest)


def replace_file(source: Path, dest: Path) -> None:
    """``dest`` becomes a copy of ``source``, atomically (written beside, renamed)."""
    staged = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}")
    try:
        shutil.copyfile(source, staged)
        os.chmod(staged, 0o600)
        os.replace(staged, dest)
    finally:
        staged.unlink(missing_ok=True)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def tree_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total


def pack(directory: Path, file: Path) -> None:
    """The snapshot in ``directory`` as one tar file at ``file`` (uncompressed: the
    binaries of a DAM are compressed already), written beside and renamed."""
    staged = file.with_name(f".{file.name}.{uuid.uuid4().hex[:8]}")
    try:
        with tarfile.open(staged, "w", format=tarfile.PAX_FORMAT) as tar:
            for entry in sorted(directory.iterdir()):
                tar.add(entry, arcname=entry.name)
        os.replace(staged, file)
    finally:
        staged.unlink(missing_ok=True)


_BLOCK = 512
_CHUNK = 1024 * 1024


class Archive:
    """A snapshot directory as the bytes of one tar file, made while they are sent (no
    file of its own on the disk): what ``pack`` writes, read by ``unpack``. ``size`` is
    known before the first byte, so a receiver can tell a cut-off transfer. The files
    are a snapshot's, which never change once it is made; one that does is an error
    (OSError) rather than a wrong archive."""

    def __init__(self, directory: Path) -> None:
        self._entries: list[tuple[Path, bytes, int]] = []
        for path, arcname in _walk(directory, ""):
            st = path.lstat()
            info = tarfile.TarInfo(arcname)
            info.mtime = int(st.st_mtime)
            info.mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
            elif stat.S_ISREG(st.st_mode):
                info.size = st.st_size
            else:
                continue  # a snapshot holds files and directories only
            self._entries.append((path, info.tobuf(tarfile.PAX_FORMAT), info.size))
        self.size = sum(len(h) + n + (-n % _BLOCK) for _, h, n in self._entries) + 2 * _BLOCK

    def __iter__(self) -> Iterator[bytes]:
        for path, header, size in self._entries:
            yield header
            if not size:  # a directory, or an empty file
                continue
            with path.open("rb") as fh:
                left = size
                while left:
                    chunk = fh.read(min(_CHUNK, left))
                    if not chunk:
                        raise OSError(f"{path} became shorter while it was sent")
                    left -= len(chunk)
                    yield chunk
            if size % _BLOCK:
                yield bytes(_BLOCK - size % _BLOCK)
        yield bytes(2 * _BLOCK)  # the end of the archive


def _walk(directory: Path, prefix: str) -> Iterator[tuple[Path, str]]:
    for entry in sorted(directory.iterdir()):
        arcname = prefix + entry.name
        yield entry, arcname
        if entry.is_dir() and not entry.is_symlink():
            yield from _walk(entry, arcname + "/")


class BadArchive(ValueError):
    """The file is no snapshot archive Assetvault can read."""


def unpack(file: Path, directory: Path) -> None:
    """A snapshot file unpacked into ``directory`` (which must not exist). The archive is
    outside input: only regular files and directories, nothing that leads out of
    ``directory`` (tarfile's ``data`` filter refuses links out, absolute paths, devices)."""
    try:
        with tarfile.open(file, "r:") as tar:
            members = tar.getmembers()
            for member in members:
                if not (member.isfile() or member.isdir()):
                    raise BadArchive(f"{member.name!r} is neither a file nor a directory")
            directory.mkdir(parents=True)
            tar.extractall(directory, members=members, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise BadArchive(f"{file.name} is not a snapshot archive: {exc}") from exc


def add_missing_rows(target: Path, source: Path, tables: list[str]) -> None:
    """The rows of ``tables`` in the database ``source`` that ``target`` lacks (by its
    keys and unique columns), added to ``target``: both are at the same schema."""
    conn = sqlite3.connect(target, isolation_level=None)
    try:
        conn.execute("ATTACH DATABASE ? AS other", (str(source),))
        conn.execute("BEGIN IMMEDIATE")
        for table in tables:
            conn.execute(f'INSERT OR IGNORE INTO main."{table}" SELECT * FROM other."{table}"')
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE other")
    finally:
        conn.close()
