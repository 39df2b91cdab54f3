"""The client's one way to write local files: names from the server are refused when
they would leave DEST, in any spelling, and a symlink planted under DEST never
redirects a write; files to upload are opened only when they are regular files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from assetvault.client.localfs import SafeDest, UnsafeName, open_regular, safe_parts, shown

from .test_hostile_server import HOSTILE_NAMES


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()}


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
def test_every_kind_of_hostile_name_is_refused_and_nothing_is_written(
    tmp_path: Path, name: str
) -> None:
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    with pytest.raises(UnsafeName):
        safe_parts(name)
    with SafeDest(dest) as root, pytest.raises(UnsafeName), root.file(name) as place:
        with place.open_part(append=False) as fh:
            fh.write(b"x")
        place.commit()
    assert _files(tmp_path) == set()
    assert list(dest.iterdir()) == []


def test_ordinary_names_are_written_below_dest(tmp_path: Path) -> None:
    for name in ("a.jpg", "sub/deeper/b.txt", "été 2024/c d.png", "..hidden", "a..b", "ab:c"):
        with SafeDest(tmp_path) as root, root.file(name) as place:
            with place.open_part(append=False) as fh:
                fh.write(name.encode())
            place.commit()
        assert (tmp_path / name).read_bytes() == name.encode()
    assert not any(p.name.endswith(".part") for p in tmp_path.rglob("*"))


def test_a_symlink_planted_under_dest_that_leads_out_is_never_written_through(
    tmp_path: Path,
) -> None:
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (outside / "victim").write_bytes(b"keep")
    (dest / "sibling").symlink_to(outside)  # a folder that is not below DEST
    (dest / "file").symlink_to(outside / "victim")  # the file itself
    (dest / "b.part").symlink_to(outside / "victim")  # the partial file of "b"
    (dest / "up").symlink_to("..")
    with SafeDest(dest) as root:
        for name in ("sibling/x", "sibling/new/x", "file", "up/outside/x", "up/x"):
            with pytest.raises(UnsafeName, match="leads out"), root.file(name):
                pass
        with root.file("b") as place:
            assert place.part_size() == 0  # the symlink is removed, not resumed
            with place.open_part(append=False) as fh:
                fh.write(b"new")
            place.commit()
    assert (outside / "victim").read_bytes() == b"keep"
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (dest / "b").read_bytes() == b"new" and not (dest / "b").is_symlink()


def test_a_symlink_under_dest_that_stays_inside_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real" / "photos").mkdir(parents=True)
    (tmp_path / "photos").symlink_to("real/photos")
    with SafeDest(tmp_path) as root, root.file("photos/a/b.jpg") as place:
        with place.open_part(append=False) as fh:
            fh.write(b"b")
        place.commit()
    assert (tmp_path / "real" / "photos" / "a" / "b.jpg").read_bytes() == b"b"


def test_a_symlink_loop_under_dest_ends_with_an_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with SafeDest(tmp_path) as root, pytest.raises(UnsafeName), root.file("a/x"):
        pass


def test_a_hard_linked_partial_file_is_never_appended_to(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (tmp_path / "victim").write_bytes(b"keep")
    os.link(tmp_path / "victim", dest / "b.part")
    with SafeDest(dest) as root, root.file("b") as place:
        assert place.part_size() == 0
    assert (tmp_path / "victim").read_bytes() == b"keep"


def test_names_are_printed_with_control_characters_escaped() -> None:
    assert shown("a\x1b[2Jb\x00\u202e") == "a\\x1b[2Jb\\x00\\u202e"
    assert shown("été.jpg") == "été.jpg"


def test_only_regular_files_are_opened_for_upload(tmp_path: Path) -> None:
    regular = tmp_path / "f"
    regular.write_bytes(b"abc")
    opened = open_regular(regular)
    with opened.fh as fh:
        assert (opened.size, fh.read()) == (3, b"abc")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(regular)
    started = time.monotonic()
    for path in (fifo, Path("/dev/null"), link, tmp_path):
        with pytest.raises((UnsafeName, IsADirectoryError)):
            open_regular(path)
    assert time.monotonic() - started < 5  # a FIFO with no writer is not waited on
