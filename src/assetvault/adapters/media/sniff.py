"""Content type from the bytes (libmagic), not from the name."""

from __future__ import annotations

import magic

_SNIFF_BYTES = 64 * 1024

# libmagic names some types differently from the registered media types clients expect.
_CANONICAL = {
    "image/x-ms-bmp": "image/bmp",
    "image/heic-sequence": "image/heic",
    "image/heif-sequence": "image/heif",
    "application/x-pdf": "application/pdf",
}


def sniff(path: str) -> str:
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    mime = magic.from_buffer(head, mime=True) or "application/octet-stream"
    return _CANONICAL.get(mime, mime)
