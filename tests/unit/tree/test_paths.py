from __future__ import annotations

import pytest

from assetvault.errors import InvalidInput
from assetvault.tree.paths import check_name, decode_segments


@pytest.mark.parametrize(
    "name", ["a.jpg", "Ünïcödé 文件", "with space", "v1.2", "a" * 255, "-_~!$'()+,;=@"]
)
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        " ",
        ".",
        "..",
        "a/b",
        "a\\b",
        "a:b",
        "a[1]",
        "{x}",
        "a&b",
        "a?b",
        "a#b",
        "a|b",
        "a*b",
        "100%",
        "tab\there",
        "nul\x00",
        "é" * 200,
    ],
)
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidInput):
        check_name(name)


@pytest.mark.parametrize(
    ("raw", "segments"),
    [
        ("", []),
        ("/", []),
        ("/a/b", ["a", "b"]),
        ("/a%20b/c%C3%A9", ["a b", "cé"]),
        ("/a%252Fb", ["a%2Fb"]),  # decoded exactly once
        ("/%2e%2e%2e", ["..."]),
    ],
)
def test_decode_segments(raw: str, segments: list[str]) -> None:
    assert decode_segments(raw) == segments


@pytest.mark.parametrize(
    "raw",
    ["/a/../b", "/a/./b", "/a/%2e%2e/b", "/a%2Fb", "/a%2fb", "/a%5Cb", "/a//b", "/a/", "/%ff"],
)
def test_decode_segments_refuses_escapes_and_aliases(raw: str) -> None:
    with pytest.raises(InvalidInput):
        decode_segments(raw)
