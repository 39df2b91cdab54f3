"""Opaque cursors of paged listings: a JSON value, base64url-encoded without padding."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def pack(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unpack(cursor: str) -> Any:
    """The value ``pack`` made; ValueError for anything else."""
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("not a cursor") from exc
