"""JSON text from outside (request bodies, form fields, cursors), read with bounds.

Before anything parses, a linear scan of the raw bytes measures how deep the text nests
(brackets outside strings), so a document nested past ``max_depth`` is refused without
any parser recursing into it. orjson then parses; it refuses what cannot be stored:
NaN, Infinity, numbers outside the double range (``1e999``) and lone surrogates
(``"\\ud800"``). When it refuses, the standard library's more lenient parser (safe: the
depth is already bounded) finds the value at fault so the error can name its place as a
JSON pointer (``/0/value``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

import orjson

# A string token, escapes included; the closing quote is optional so an unterminated
# string ends the scan instead of making the engine retry from every later quote.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_BRACKETS = b"[]{}"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)
_STEPS = bytes.maketrans(_BRACKETS, b"\x01\xff\x01\xff")  # +1 opens, -1 closes


class JSONTextError(ValueError):
    """The text is not JSON Assetvault accepts; the message says why and where."""


def nesting_depth(raw: bytes) -> int:
    """How deep the text nests: the most brackets open at once outside strings. Linear,
    and every step runs in C (a regex, a translate, an accumulate over signed bytes)."""
    steps = _STRING.sub(b"", raw).translate(_STEPS, _NOT_BRACKETS)
    return max(accumulate(memoryview(steps).cast("b")), default=0)


def pointer_token(key: str) -> str:
    """One JSON pointer reference token (RFC 6901), printable even with lone surrogates."""
    token = key.replace("~", "~0").replace("/", "~1")
    return token.encode("utf-8", "backslashreplace").decode("utf-8")


def _well_formed(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def faults(value: Any) -> Iterator[tuple[str, str]]:
    """(JSON pointer, what is wrong) for every value that cannot be stored, in document
    order: non-finite numbers, and strings or keys with lone surrogates. Not recursive."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        pointer, item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                yield pointer, "the number is not finite (NaN, Infinity or beyond ±1.8e308)"
        elif isinstance(item, str):
            if not _well_formed(item):
                yield pointer, "the string has a lone surrogate; send well-formed Unicode"
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                here = f"{pointer}/{pointer_token(key)}"
                if not _well_formed(key):
                    yield here, "the key has a lone surrogate; send well-formed Unicode"
                children.append((here, child))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend(reversed([(f"{pointer}/{i}", c) for i, c in enumerate(item)]))


def _explain(raw: bytes) -> str | None:
    try:
        lenient = json.loads(raw)  # accepts NaN, 1e999 and lone surrogates: finds them
    except (ValueError, RecursionError):
        return None
    for pointer, problem in faults(lenient):
        return f"{pointer or '/'}: {problem}"
    return None


def loads(text: bytes | str, *, max_depth: int) -> Any:
    """The parsed value, or JSONTextError naming the fault (and its place when known)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    depth = nesting_depth(raw)
    if depth > max_depth:
        raise JSONTextError(f"it nests {depth} levels deep; at most {max_depth} are accepted")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise JSONTextError(_explain(raw) or f"it is not valid JSON: {exc}") from exc
