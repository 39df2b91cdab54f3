"""Names inside a ZIP (tree/archive.py): whatever the stored names, nothing an unzip
tool would write outside its directory, and no two that a case-blind disk would merge."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from assetvault.tree.archive import Names, numbered, safe_component


def test_dot_segments_separators_drives_and_controls_are_made_harmless() -> None:
    assert safe_component("..") == "_"
    assert safe_component(".") == "_"
    assert safe_component("") == "_"
    assert safe_component("  ") == "_"
    assert safe_component("/etc/passwd") == "_etc_passwd"
    assert safe_component("C:\\Windows") == "C__Windows"
    assert safe_component("a\x00b\x1fc\x7f") == "a_b_c_"


def test_numbers_go_before_the_extension() -> None:
    assert numbered("a.jpg", 1) == "a1.jpg"
    assert numbered("a.tar.gz", 2) == "a.tar2.gz"
    assert numbered("README", 3) == "README3"
    assert numbered(".profile", 1) == ".profile1"


def test_duplicates_and_case_variants_are_numbered_and_files_never_hide_directories() -> None:
    names = Names()
    assert names.file("", ["a.txt"]) == "a.txt"
    assert names.file("", ["A.TXT"]) == "A1.TXT"
    assert names.file("", ["a.txt"]) == "a2.txt"
    top = names.new_dir("a.txt")  # a directory cannot take a file's name
    assert top == "a3.txt"
    assert names.file(top, ["sub", "x"]) == "a3.txt/sub/x"
    assert names.file(top, ["SUB", "x"]) == "a3.txt/sub/x1"  # the same directory on disk
    assert names.new_dir("d") == "d"
    assert names.new_dir("D") == "D1"  # a second folder given is a directory of its own
    assert names.file("", ["d"]) == "d2"


@given(st.lists(st.lists(st.text(min_size=0, max_size=6), min_size=1, max_size=4), max_size=30))
def test_any_names_come_out_relative_unique_and_without_dot_segments(
    paths: list[list[str]],
) -> None:
    names = Names()
    out = [names.file("", p) for p in paths]
    assert len({n.casefold() for n in out}) == len(out)
    dirs = {"/".join(n.casefold().split("/")[:i]) for n in out for i in range(1, n.count("/") + 1)}
    assert not dirs & {n.casefold() for n in out}, "a file where a directory must be"
    for n in out:
        assert not n.startswith("/") and "\\" not in n and ":" not in n
        assert all(part not in ("", ".", "..") for part in n.split("/"))
        assert all(ord(c) >= 32 for c in n)
