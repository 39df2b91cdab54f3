"""The client commands' only way to touch local files.

Downloads: every file the CLI creates goes through :class:`SafeDest`. A name from the
server is untrusted: it is checked (:func:`safe_parts`), its directories are opened one
component at a time below DEST without following a symlink (a symlink already under
DEST is followed only when it resolves inside DEST, by walking again along what it
resolves to), and the file is written into ``<name>.part`` opened with ``O_NOFOLLOW``
in that directory, then renamed in place. So no name and no planted symlink can make
the CLI write outside DEST.

Uploads: :func:`open_regular` opens a file only when the descriptor it got is a regular
file (``O_NOFOLLOW | O_NONBLOCK``, then ``fstat``), so a FIFO, a device or a symlink
swapped in after the plan is refused instead of read or waited on.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from assetvault.client.http import ClientError

PART = ".part"
NAME_MAX = 255 - len(PART)  # bytes of one component, so that "<name>.part" still fits
PATH_MAX = 4000  # bytes of a whole relative name
SYMLINK_HOPS = 40  # as the kernel's own bound on symlinks in one lookup
CHUNK = 1024 * 1024
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsafeName(ClientError):
    """A name from the server, or a path on disk, that the CLI refuses to write to."""


def shown(name: str) -> str:
    """``name`` as it may be printed: control characters escaped, never interpreted."""
    return "".join(
        c if c.isprintable() and c not in _BIDI else c.encode("unicode_escape").decode()
        for c in name
    )


def safe_parts(relative: str) -> tuple[str, ...]:
    """The components of a relative name from the server, or :class:`UnsafeName`."""
    why = _unsafe(relative)
    if why:
        raise UnsafeName(f"refused the name {shown(relative)!r}: {why}")
    return tuple(relative.split("/"))


def _unsafe(relative: str) -> str | None:
    if not relative:
        return "it is empty"
    if any(unicodedata.category(c) == "Cc" or c in _BIDI for c in relative):
        return "it holds a control character"
    if relative.startswith("/"):
        return "it is absolute"
    if "\\" in relative:
        return "it holds a backslash"
    if len(relative.encode()) > PATH_MAX:
        return f"it is longer than {PATH_MAX} bytes"
    for part in relative.split("/"):
        if part == "":
            return "it has an empty component"
        if part in (".", ".."):
            return f"it has a {part!r} component"
        if _DRIVE.match(part):
            return "it names a drive"
        if len(part.encode()) > NAME_MAX:
            return f"a component is longer than {NAME_MAX} bytes"
    return None


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


@dataclass(frozen=True)
class _Found:
    dir_fd: int
    name: str


class SafeDest:
    """DEST, the one directory a download writes below. The directory itself is the
    user's choice: it is created when missing and may be a symlink."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real = os.path.realpath(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise ClientError(
                f"{root}: not a directory the download can write to ({exc})"
            ) from None

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> SafeDest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def display(self, relative: str) -> Path:
        """Where a name goes, for messages (a refused name shows as DEST itself)."""
        return self.root / relative if _unsafe(relative) is None else self.root

    @contextmanager
    def file(self, relative: str) -> Iterator[LocalFile]:
        """The place of ``relative`` below DEST, its directories made; refuses a name
        or a path that would leave DEST."""
        parts = safe_parts(relative)
        for _ in range(SYMLINK_HOPS):
            walked = self._walk(parts)
            if isinstance(walked, _Found):
                break
            parts = walked
        else:
            raise UnsafeName(f"{shown(relative)}: too many symlinks below {self.root}")
        fd, name = walked.dir_fd, walked.name
        try:
            yield LocalFile(fd, name, self.root.joinpath(*parts))
        finally:
            os.close(fd)

    def _walk(self, parts: tuple[str, ...]) -> _Found | tuple[str, ...]:
        """Opens the directory of ``parts`` without following symlinks: its descriptor
        and the file's name, or, when a symlink inside DEST stands in the way, the parts
        it resolves to (to walk again)."""
        fd = os.dup(self._fd)
        try:
            for i, part in enumerate(parts[:-1]):
                try:
                    step = os.open(part, _DIR, dir_fd=fd)
                except FileNotFoundError:
                    # Made meanwhile, perhaps: opened below, still without following.
                    with suppress(FileExistsError):
                        os.mkdir(part, 0o777, dir_fd=fd)
                    try:
                        step = os.open(part, _DIR, dir_fd=fd)
                    except OSError as exc:
                        return self._around(parts, i, fd, exc)
                except OSError as exc:
                    return self._around(parts, i, fd, exc)
                os.close(fd)
                fd = step
            try:
                if stat.S_ISLNK(os.lstat(parts[-1], dir_fd=fd).st_mode):
                    return self._resolved(parts, len(parts) - 1)
            except FileNotFoundError:
                pass
            found, fd = fd, -1
            return _Found(found, parts[-1])
        finally:
            if fd != -1:
                os.close(fd)

    def _around(self, parts: tuple[str, ...], i: int, fd: int, exc: OSError) -> tuple[str, ...]:
        try:
            mode = os.lstat(parts[i], dir_fd=fd).st_mode
        except OSError:
            raise exc from None
        if stat.S_ISLNK(mode):
            return self._resolved(parts, i)
        if exc.errno in (errno.ENOTDIR, errno.ELOOP):
            shown_at = "/".join(parts[: i + 1])
            raise UnsafeName(f"{shown(shown_at)} is a file, not a folder") from None
        raise exc

    def _resolved(self, parts: tuple[str, ...], i: int) -> tuple[str, ...]:
        """The parts that ``parts[: i + 1]`` (a symlink) resolves to, when inside DEST."""
        real = os.path.realpath(os.path.join(self.real, *parts[: i + 1]))
        if not _inside(real, self.real):
            link = "/".join(parts[: i + 1])
            raise UnsafeName(
                f"{shown('/'.join(parts))}: the symlink {shown(link)} leads out of {self.root}"
            )
        if real == self.real:
            raise UnsafeName(f"{shown('/'.join(parts))}: a symlink there leads to DEST itself")
        return (*Path(real).relative_to(self.real).parts, *parts[i + 1 :])


class LocalFile:
    """One file below DEST: its directory (an open descriptor) and name. Data goes to
    ``<name>.part`` (never through a symlink) and is renamed over the name when done."""

    def __init__(self, dir_fd: int, name: str, path: Path) -> None:
        self.dir_fd = dir_fd
        self.name = name
        self.part = name + PART
        self.path = path

    def _open_regular(self, name: str) -> int | None:
        try:
            fd = os.open(name, _READ, dir_fd=self.dir_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
        return fd

    def sha1_if_size(self, size: int) -> str | None:
        """The SHA-1 of the file already at the name, when it is a regular file of
        ``size`` bytes; else None."""
        fd = self._open_regular(self.name)
        if fd is None:
            return None
        with os.fdopen(fd, "rb") as fh:
            if os.fstat(fh.fileno()).st_size != size:
                return None
            return _sha1(fh)

    def part_size(self) -> int:
        """The bytes of a ``.part`` left by an earlier run that may be resumed; 0 (and
        the ``.part`` removed) when it is not a plain file of its own."""
        fd = self._open_regular(self.part)
        if fd is None:
            self.discard()
            return 0
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        if st.st_nlink != 1:  # a hard link to a file elsewhere: never append to it
            self.discard()
            return 0
        return st.st_size

    def open_part(self, append: bool) -> BinaryIO:
        """The ``.part`` for writing: appended to, or made afresh (``O_EXCL``)."""
        flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        if append:
            fd = os.open(self.part, flags | os.O_APPEND, dir_fd=self.dir_fd)
        else:
            self.discard()
            fd = os.open(self.part, flags | os.O_CREAT | os.O_EXCL, 0o666, dir_fd=self.dir_fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UnsafeName(f"{self.path}{PART} is not a plain file")
        return os.fdopen(fd, "ab" if append else "wb")

    def part_sha1(self) -> str:
        fd = self._open_regular(self.part)
        if fd is None:
            raise UnsafeName(f"{self.path}{PART} went away")
        with os.fdopen(fd, "rb") as fh:
            return _sha1(fh)

    def discard(self) -> None:
        with suppress(FileNotFoundError):
            os.unlink(self.part, dir_fd=self.dir_fd)

    def commit(self) -> None:
        """Renames the ``.part`` over the name (a symlink there is replaced, not
        followed)."""
        os.replace(self.part, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)


def _sha1(fh: BinaryIO) -> str:
    h = hashlib.sha1()
    while block := fh.read(CHUNK):
        h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Regular:
    """A regular file opened for reading, with its size at the time it was opened."""

    fh: BinaryIO
    size: int


def open_regular(path: Path) -> Regular:
    """Opens ``path`` for reading only when it is a regular file: never through a
    symlink at its last component, never blocking on a FIFO, never a device."""
    try:
        fd = os.open(path, _READ)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeName(f"{path} is a symlink") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UnsafeName(f"{path} is not a regular file")
    os.set_blocking(fd, True)
    return Regular(os.fdopen(fd, "rb"), st.st_size)
