"""Media types from outside: an import's ``mimeType``, an upload's, a rendition upload's
``Content-Type``, an import source's listing or response header, what sniffing says.

A media type is stored only if it has RFC 6838's syntax, ``type/subtype`` (each a
restricted name: a letter or digit, then up to 126 of ``A-Z a-z 0-9 ! # $ & ^ _ . + -``),
optionally followed by RFC 9110 parameters (``; name=value``, the value a token or a
quoted string of visible ASCII), and at most ``MAX_CHARS`` long. So it holds no CR, LF,
NUL, other control character or non-ASCII letter, and can always be a header value.

Whatever is served as ``Content-Type`` goes through ``servable`` as well, so a value
stored before these checks (or planted in the database) is never put into a header: it
is served as ``application/octet-stream``.
"""

from __future__ import annotations

import re

from assetvault.errors import InvalidInput

OCTET_STREAM = "application/octet-stream"
MAX_CHARS = 255  # the width of the database's mime_type columns

_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t !#-\[\]-~]|\\[\t -~])*"'
_MEDIA_TYPE = re.compile(
    rf"{_NAME}/{_NAME}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))*", re.ASCII
)


def is_media_type(value: object) -> bool:
    """Whether ``value`` is a media type Assetvault stores and serves."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_CHARS
        and _MEDIA_TYPE.fullmatch(value) is not None
    )


def check(value: object, field: str) -> str:
    """``value`` if it is a media type; InvalidInput naming ``field`` otherwise."""
    if not is_media_type(value):
        shown = repr(value[:80]) if isinstance(value, str) else type(value).__name__
        raise InvalidInput(
            f"{field} must be a media type such as image/jpeg (type/subtype, optionally "
            f"; name=value parameters, in ASCII, at most {MAX_CHARS} characters), not {shown}"
        )
    assert isinstance(value, str)
    return value


def or_none(value: object) -> str | None:
    """``value`` if it is a media type, None otherwise (for what a hostile party says
    about a file and the file's content decides anyway)."""
    return value if isinstance(value, str) and is_media_type(value) else None


def servable(value: str | None) -> str:
    """The ``Content-Type`` to serve for a stored type: the type itself if it is a media
    type, ``application/octet-stream`` otherwise."""
    return value if value is not None and is_media_type(value) else OCTET_STREAM


# Types a browser shows as a document that can run scripts (HTML, XHTML, SVG, XML with
# XSLT) rather than in a media viewer or as a download.
_DOCUMENTS = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml", "text/xsl"})


def is_document(media_type: str) -> bool:
    """Whether a browser would render the type as a scripted document: HTML, XHTML, SVG
    and any XML (``*/xml``, ``*+xml``). The binary responses never hand these to a
    server that cannot add ``Content-Security-Policy: sandbox`` (docs/deploy.md)."""
    essence = media_type.split(";", 1)[0].strip().lower()
    return essence in _DOCUMENTS or essence.endswith(("/xml", "+xml"))
