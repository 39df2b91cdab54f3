"""Opaque cursors of paged listings: a JSON value, base64url-encoded without padding."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from assetvault import jsontext

MAX_DEPTH = 4  # what pack writes nests two levels at most


def pack(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unpack(cursor: str) -> Any:
    """The value ``pack`` made; ValueError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return jsontext.loads(raw, max_depth=MAX_DEPTH)
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("not a cursor") from exc
