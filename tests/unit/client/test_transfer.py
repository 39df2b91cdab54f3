"""The client commands' planning: how files map to folders and parts, what a download
writes where, the journal that lets an interrupted upload resume, and path checks."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from assetvault.client.http import ClientError, RemoteAsset, below, dam_path
from assetvault.client.transfer import (
    Journal,
    Planned,
    folder_name,
    free_name,
    part_ranges,
    plan_download,
    plan_upload,
)
from assetvault.errors import InvalidInput
from assetvault.tree.paths import check_name

MiB = 2**20


def test_parts_cover_the_file_exactly_in_order() -> None:
    spans = part_ranges(5 * MiB + 3, 6, MiB, 16 * MiB)
    assert spans[0] == (0, MiB) and spans[-1][1] == 5 * MiB + 3
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert len(spans) == 6


def test_parts_are_never_smaller_than_the_minimum_nor_larger_than_the_maximum() -> None:
    # Ten URIs for 3 MiB: three parts of 1 MiB, not ten of 300 KiB.
    assert part_ranges(3 * MiB, 10, MiB, 16 * MiB) == [(0, MiB), (MiB, 2 * MiB), (2 * MiB, 3 * MiB)]
    with pytest.raises(ClientError, match="upload URIs"):
        part_ranges(40 * MiB, 2, MiB, 16 * MiB)  # 16 MiB parts need three URIs


def test_an_empty_file_is_one_empty_part() -> None:
    assert part_ranges(0, 1, MiB, 16 * MiB) == [(0, 0)]


def test_directories_go_in_as_folders_of_their_name(tmp_path: Path) -> None:
    (tmp_path / "photos" / "trip").mkdir(parents=True)
    (tmp_path / "photos" / "trip" / "b.jpg").write_bytes(b"b")
    (tmp_path / "photos" / "a.jpg").write_bytes(b"aa")
    (tmp_path / "loose.txt").write_bytes(b"")
    planned = plan_upload([tmp_path / "photos", tmp_path / "loose.txt"], "/content/dam/x").items
    assert [(p.remote, p.size) for p in planned] == [
        ("/content/dam/x/photos/a.jpg", 2),
        ("/content/dam/x/photos/trip/b.jpg", 1),
        ("/content/dam/x/loose.txt", 0),
    ]
    with pytest.raises(ClientError, match="no such file"):
        plan_upload([tmp_path / "missing"], "/content/dam/x")


def test_every_directory_name_becomes_a_folder_name_the_server_accepts(tmp_path: Path) -> None:
    # Every character a local directory name can hold: the ones the server (as AEM)
    # refuses in names become "-", the others stay as they are.
    for code in range(1, 0x80):
        char = chr(code)
        if char == "/":
            continue
        name = folder_name(f"A{char}B")
        check_name(name)
        try:
            check_name(f"A{char}B")
            allowed = True
        except InvalidInput:
            allowed = False
        assert name == (f"A{char}B" if allowed else "A-B"), repr(char)
    for whole in (".", ".."):
        check_name(folder_name(whole))


def test_a_directory_aem_would_refuse_goes_in_under_a_valid_name_and_keeps_its_title(
    tmp_path: Path,
) -> None:
    (tmp_path / "Sales & Marketing" / "Q1 #2").mkdir(parents=True)
    (tmp_path / "Sales & Marketing" / "Q1 #2" / "deck.pdf").write_bytes(b"d")
    (tmp_path / "Sales & Marketing" / "a+b;c.txt").write_bytes(b"a")
    planned = plan_upload([tmp_path / "Sales & Marketing"], "/content/dam/x").items
    assert [p.remote for p in planned] == [
        "/content/dam/x/Sales - Marketing/Q1 -2/deck.pdf",
        "/content/dam/x/Sales - Marketing/a+b;c.txt",
    ]
    assert planned[0].folder_titles == (
        ("/content/dam/x/Sales - Marketing", "Sales & Marketing"),
        ("/content/dam/x/Sales - Marketing/Q1 -2", "Q1 #2"),
    )


def test_keep_both_numbers_the_name_before_its_extension() -> None:
    assert free_name("photo.jpg", {"photo.jpg"}) == "photo1.jpg"
    assert free_name("photo.jpg", {"photo.jpg", "photo1.jpg", "photo2.jpg"}) == "photo3.jpg"
    assert free_name("a.tar.gz", {"a.tar.gz"}) == "a.tar1.gz"
    assert free_name("README", {"README"}) == "README1"
    assert free_name(".env", {".env"}) == ".env1"


def test_a_download_of_a_folder_keeps_relative_paths_and_of_an_asset_its_name(
    tmp_path: Path,
) -> None:
    found = {
        "/content/dam/x/a.jpg": RemoteAsset("/content/dam/x/a.jpg", 1, "s"),
        "/content/dam/x/sub/b.jpg": RemoteAsset("/content/dam/x/sub/b.jpg", 1, "s"),
    }
    planned = plan_download("/content/dam/x", found, tmp_path)
    assert planned.root == tmp_path
    assert sorted(str(n) for _, n in planned.entries) == ["a.jpg", "sub/b.jpg"]
    one = {"/content/dam/x/a.jpg": found["/content/dam/x/a.jpg"]}
    single = plan_download("/content/dam/x/a.jpg", one, tmp_path)
    assert (single.root, single.entries[0][1]) == (tmp_path, "a.jpg")
    file_dest = tmp_path / "renamed.jpg"
    renamed = plan_download("/content/dam/x/a.jpg", one, file_dest)
    assert (renamed.root, renamed.entries[0][1]) == (tmp_path, "renamed.jpg")
    # Listed, but not below the folder asked for (a sibling, or elsewhere): no name.
    odd = {
        p: RemoteAsset(p, 1, None)
        for p in ("/content/dam/x-other/a.jpg", "/content/dam/y/../x/a.jpg", "/etc/passwd")
    }
    assert [n for _, n in plan_download("/content/dam/x", odd, tmp_path).entries] == [None] * 3


def test_the_journal_belongs_to_one_file_version(tmp_path: Path) -> None:
    local = tmp_path / "f.bin"
    local.write_bytes(b"12345")
    item = Planned(local, "/content/dam/x", 5)
    journal = Journal(tmp_path / "j", "http://h", item)
    assert journal.load() is None
    journal.save({"entry": {"uploadToken": "t"}, "done": [0]})
    assert Journal(tmp_path / "j", "http://h", item).load() == {
        "entry": {"uploadToken": "t"},
        "done": [0],
    }
    # Another server, or the file changed since: not the same upload.
    assert Journal(tmp_path / "j", "http://other", item).load() is None
    local.write_bytes(b"123456")
    assert Journal(tmp_path / "j", "http://h", Planned(local, "/content/dam/x", 6)).load() is None
    journal.path.write_text("{not json")
    assert journal.load() is None
    journal.forget()
    assert not journal.path.exists()


def test_paths_must_stay_under_content_dam() -> None:
    assert dam_path("/content/dam/x/") == "/content/dam/x"
    for bad in ("/etc", "/content/damx", "/content/dam/../etc", "/content/dam/a/./b"):
        with pytest.raises(ClientError):
            dam_path(bad)


def test_below_a_folder_means_the_folder_itself_or_anything_under_its_slash() -> None:
    node = below("/content/dam/x")
    ranges = node["or"][1]["range"]["repositoryMetadata.repo:path"]
    # "/content/dam/x-other" sorts outside [x/, x0): '-' < '/' < '0'.
    assert ranges == {"gte": "/content/dam/x/", "lt": "/content/dam/x0"}
    assert not (ranges["gte"] <= "/content/dam/x-other" < ranges["lt"])
    assert ranges["gte"] <= "/content/dam/x/deep/er" < ranges["lt"]
    assert below("/content/dam") == {"match": {"text": "*"}}


def _tree_with_links(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    top = tmp_path / "top"
    (top / "real").mkdir(parents=True)
    (top / "real" / "a.txt").write_bytes(b"a")
    (top / "inside-file").symlink_to("real/a.txt")
    (top / "inside-dir").symlink_to("real")
    (top / "out-file").symlink_to(outside / "secret")
    (top / "out-dir").symlink_to(outside)
    (top / "loop").symlink_to(".")
    (top / "dangling").symlink_to("nowhere")
    (top / "null").symlink_to("/dev/null")
    os.mkfifo(top / "fifo")
    return top


def test_a_directory_upload_never_follows_a_symlink_out_of_it_nor_opens_special_files(
    tmp_path: Path,
) -> None:
    top = _tree_with_links(tmp_path)
    plan = plan_upload([top], "/content/dam/x")
    assert sorted(p.remote for p in plan.items) == [
        "/content/dam/x/top/inside-dir/a.txt",
        "/content/dam/x/top/inside-file",
        "/content/dam/x/top/real/a.txt",
    ]
    assert all(str(p.opened).startswith(str(top.resolve())) for p in plan.items)
    refused = {o.local.name: o.status for o in plan.refused}
    assert refused == {
        "out-file": "failed",
        "out-dir": "failed",
        "loop": "failed",
        "dangling": "failed",
        "null": "failed",  # /dev/null is out of the directory too
        "fifo": "skipped",
    }
    assert "--follow-symlinks" in next(o.detail for o in plan.refused if o.local.name == "out-dir")


def test_follow_symlinks_takes_what_they_lead_to_but_still_no_special_files(
    tmp_path: Path,
) -> None:
    top = _tree_with_links(tmp_path)
    plan = plan_upload([top], "/content/dam/x", follow_symlinks=True)
    remotes = sorted(p.remote for p in plan.items)
    assert "/content/dam/x/top/out-file" in remotes
    assert "/content/dam/x/top/out-dir/secret" in remotes
    refused = {o.local.name: o.status for o in plan.refused}
    assert refused == {"loop": "failed", "dangling": "failed", "null": "skipped", "fifo": "skipped"}


def test_a_special_file_named_on_the_command_line_stops_the_command(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    for path in (tmp_path / "fifo", Path("/dev/null")):
        with pytest.raises(ClientError, match="not a regular file"):
            plan_upload([path], "/content/dam/x")
