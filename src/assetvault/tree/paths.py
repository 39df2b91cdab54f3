"""Names and paths of the content tree. Every path a request names is checked here, so
nothing can leave /content/dam or alias another node."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from assetvault.errors import InvalidInput

ROOT = "/content/dam"
URN_PREFIX = "urn:aaid:aem:"

# Characters AEM refuses in asset and folder names (the upload clients refuse the same
# set before sending), plus the separators and controls no file system name may hold.
FORBIDDEN_NAME_CHARS = frozenset('/\\:[]{}&?#|*%"<>') | frozenset(chr(c) for c in range(32))
MAX_NAME_BYTES = 255


def check_name(name: str) -> str:
    if not name or not name.strip():
        raise InvalidInput("the name is empty")
    if name in (".", ".."):
        raise InvalidInput(f"{name!r} is not a valid name")
    bad = sorted({c for c in name if c in FORBIDDEN_NAME_CHARS or c == "\x7f"})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise InvalidInput(f"the name {name!r} contains characters that are not allowed: {shown}")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise InvalidInput(f"the name is longer than {MAX_NAME_BYTES} bytes")
    return name


def decode_segments(raw: str) -> list[str]:
    """Split a raw (still percent-encoded) path into segments, decoding each exactly once.

    An encoded slash or backslash, an empty, ``.`` or ``..`` segment, or bytes that are
    not UTF-8 are refused, so no spelling of a path reaches a node other than its own.
    """
    segments: list[str] = []
    raw = raw.removeprefix("/")
    if not raw:
        return segments
    for part in raw.split("/"):
        if part == "":
            raise InvalidInput("the path contains an empty segment")
        try:
            text = unquote_to_bytes(part).decode("utf-8", errors="strict")
        except UnicodeDecodeError as exc:
            raise InvalidInput("the path is not valid UTF-8") from exc
        if "/" in text or "\\" in text:
            raise InvalidInput("the path contains an encoded slash")
        if text in (".", ".."):
            raise InvalidInput("the path contains a '.' or '..' segment")
        segments.append(text)
    return segments


def join(parent: str, name: str) -> str:
    return f"{parent.rstrip('/')}/{name}"


def parent_of(path: str) -> str:
    return path.rsplit("/", 1)[0]


def urn(node_id: str) -> str:
    return URN_PREFIX + node_id
