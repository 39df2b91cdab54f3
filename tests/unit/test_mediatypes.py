"""Media types from outside are stored only with RFC 6838 syntax; a stored value that is
none is served as application/octet-stream."""

from __future__ import annotations

import pytest

from assetvault import mediatypes
from assetvault.errors import InvalidInput

VALID = [
    "image/jpeg",
    "IMAGE/JPEG",
    "application/vnd.adobe.photoshop",
    "image/svg+xml",
    "application/x-www-form-urlencoded",
    "text/plain; charset=utf-8",
    "text/plain;charset=UTF-8",
    'multipart/form-data; boundary="a b;c"',
    "application/prs.x_y-z.1+json",
    "a/" + "b" * 127,
]

# Every kind of value that must never become a header: line breaks and header
# injection, NUL and other controls, non-ASCII, no subtype, too long, stray syntax.
HOSTILE = [
    "x/y\r\nSet-Cookie: a",
    "image/jpeg\r\n",
    "image/jpeg\n",
    "image/jpeg\r",
    "image/jp\x00eg",
    "image/jpeg\x00",
    "image/jp\x0beg",
    "image/jp\x7feg",
    "image/jpég",
    "image/jpeg\u2028",
    'text/plain; charset="\u00e9"',
    "imagejpeg",
    "image/",
    "/jpeg",
    "image",
    "",
    " image/jpeg",
    "image/jpeg ",
    "image /jpeg",
    "image/jpeg/x",
    "image/jpeg;",
    "image/jpeg; charset",
    "image/jpeg; charset=",
    'image/jpeg; a="unterminated',
    "image/jpeg, text/html",
    "a/" + "b" * 128,
    "image/jpeg; p=" + "v" * 300,
    "*/*",
    "image/*",
]


@pytest.mark.parametrize("value", VALID)
def test_media_types_pass(value: str) -> None:
    assert mediatypes.check(value, "mimeType") == value
    assert mediatypes.servable(value) == value
    assert mediatypes.or_none(value) == value


@pytest.mark.parametrize("value", HOSTILE, ids=[repr(v)[:40] for v in HOSTILE])
def test_hostile_values_are_refused_and_never_served(value: str) -> None:
    with pytest.raises(InvalidInput, match=r"^files\[0\]\.mimeType must be a media type"):
        mediatypes.check(value, "files[0].mimeType")
    assert mediatypes.servable(value) == "application/octet-stream"
    assert mediatypes.or_none(value) is None


@pytest.mark.parametrize("value", [None, 3, ["image/jpeg"], b"image/jpeg"])
def test_values_that_are_no_strings_are_refused(value: object) -> None:
    with pytest.raises(InvalidInput, match="must be a media type"):
        mediatypes.check(value, "mimeType")
    assert mediatypes.or_none(value) is None


@pytest.mark.parametrize(
    ("value", "document"),
    [
        ("text/html", True),
        ("TEXT/HTML; charset=utf-8", True),
        ("application/xhtml+xml", True),
        ("image/svg+xml", True),
        ("image/svg+xml; charset=utf-8", True),
        ("text/xml", True),
        ("application/xml", True),
        ("application/rss+xml", True),
        ("text/xsl", True),
        ("image/jpeg", False),
        ("application/pdf", False),
        ("application/octet-stream", False),
        ("text/plain", False),
        ("application/javascript", False),
        ("video/mp4+html", False),  # not HTML: shown (if at all) as a video
    ],
)
def test_documents_are_the_types_a_browser_runs_as_a_page(value: str, document: bool) -> None:
    assert mediatypes.is_document(value) is document
