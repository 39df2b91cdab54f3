"""The file work of snapshots: blobs shared by hard links, by reflinks where links are
refused, copied only where neither works; a snapshot directory streamed as one tar file
of the length said first, which unpacks to the same files."""

from __future__ import annotations

import errno
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from assetvault.adapters.snapshots import files


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "store" / "ab" / "cd" / "abcd1234"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"a blob's bytes\n" * 1000)
    return path


def no_links(monkeypatch: pytest.MonkeyPatch) -> None:
    """os.link as across two devices."""

    def refuse(src: Any, dst: Any) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(files.os, "link", refuse)


def test_a_hard_link_where_the_file_system_allows(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "snap" / "ab" / "cd" / "abcd1234"
    assert files.link_or_copy(source, dest) is True
    assert dest.stat().st_ino == source.stat().st_ino
    assert files.link_or_copy(source, dest) is True  # there already: nothing to do


def test_a_reflink_where_links_are_refused(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_links(monkeypatch)
    cloned: list[int] = []

    def ioctl(fd: int, request: int, arg: int) -> int:
        cloned.append(request)
        os.write(fd, os.pread(arg, 1 << 20, 0))  # what the kernel's clone would show
        return 0

    def no_copy(*args: Any) -> None:
        raise AssertionError("copied although a reflink was made")

    monkeypatch.setattr(files.fcntl, "ioctl", ioctl)
    monkeypatch.setattr(files.shutil, "copyfile", no_copy)
    dest = tmp_path / "snap" / "abcd1234"
    assert files.link_or_copy(source, dest) is True
    assert cloned == [files._FICLONE]
    assert dest.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["abcd1234"]


def test_a_copy_where_neither_works(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_links(monkeypatch)

    def ioctl(fd: int, request: int, arg: int) -> int:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(files.fcntl, "ioctl", ioctl)
    dest = tmp_path / "snap" / "abcd1234"
    assert files.link_or_copy(source, dest) is False
    assert dest.read_bytes() == source.read_bytes()
    assert dest.stat().st_ino != source.stat().st_ino
    assert sorted(p.name for p in dest.parent.iterdir()) == ["abcd1234"]


def test_an_archive_is_the_tar_file_of_the_directory(tmp_path: Path) -> None:
    snap = tmp_path / "snap"
    (snap / "blobs" / "ab").mkdir(parents=True)
    (snap / "keys").mkdir()
    (snap / "manifest.json").write_text('{"format": "assetvault-snapshot"}')
    (snap / "blobs" / "ab" / "ab12").write_bytes(os.urandom(70_000))  # not a block multiple
    (snap / "blobs" / "ab" / "empty").write_bytes(b"")
    archive = files.Archive(snap)
    data = b"".join(archive)
    assert len(data) == archive.size
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert sorted(tar.getnames()) == [
            "blobs",
            "blobs/ab",
            "blobs/ab/ab12",
            "blobs/ab/empty",
            "keys",
            "manifest.json",
        ]
    file = tmp_path / "snap.tar"
    file.write_bytes(data)
    files.unpack(file, tmp_path / "back")
    for path in ("manifest.json", "blobs/ab/ab12", "blobs/ab/empty"):
        assert (tmp_path / "back" / path).read_bytes() == (snap / path).read_bytes()
    assert (tmp_path / "back" / "keys").is_dir()


def test_an_archive_whose_file_shrank_fails_rather_than_lies(tmp_path: Path) -> None:
    snap = tmp_path / "snap"
    snap.mkdir()
    (snap / "blob").write_bytes(b"x" * 5000)
    archive = files.Archive(snap)
    (snap / "blob").write_bytes(b"x" * 10)
    with pytest.raises(OSError, match="shorter"):
        b"".join(archive)
