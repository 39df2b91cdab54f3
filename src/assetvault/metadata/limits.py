"""The limits of stored metadata, named once and held by every writer.

Every writer of an asset's ``assetMetadata`` or a folder's properties checks what it
stores here: the Author API's PATCH, the classic API's metadata PUT and folder create,
imports (the request's and each file's ``assetMetadata``, when the request arrives) and
seeding (``TreeService.import_originals``); the write path (``tree/writes.py``) checks
again whatever it is handed, so a writer added later cannot store past them.

- a property name, at any depth of a value, is a string of 1 to ``MAX_KEY_CHARS``
  characters with no control characters (U+0000-U+001F, U+007F-U+009F: no NUL, CR, LF);
- a value is JSON: objects, arrays, strings, finite numbers, booleans and null, with
  well-formed Unicode, nesting at most ``MAX_DEPTH`` levels;
- one property's value takes at most ``MAX_VALUE_BYTES`` as JSON, and the whole group
  at most ``MAX_METADATA_BYTES``;
- ``dc:format`` is a media type (``assetvault.mediatypes``);
- an import request gives its files at most ``MAX_IMPORT_METADATA_BYTES`` in all (the
  request's own ``assetMetadata`` counts once per file it is given to).

A write is judged on what it adds or changes: properties it leaves as they were (say,
extracted from a file) are not, so no asset becomes unwritable, and a group already
over the total accepts writes that shrink it.

Metadata extracted from a file (exiftool's reading of its XMP, IPTC, EXIF) is the
file's author's, not the client's: ``fit_extracted`` holds it to the same limits by
dropping what breaks them (a string value over ``MAX_VALUE_BYTES`` is cut to fit)
rather than failing the asset, as AEM's extraction, which is best effort, keeps
processing an asset whose embedded metadata it cannot take. A hostile file's 1 MB value
or 10,000 properties cost at most ``MAX_METADATA_BYTES`` of the database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from assetvault import jsontext, mediatypes
from assetvault.errors import InvalidInput

MAX_KEY_CHARS = 256
MAX_VALUE_BYTES = 256 * 1024
MAX_METADATA_BYTES = 1024 * 1024
MAX_DEPTH = 16
MAX_IMPORT_METADATA_BYTES = 4 * 1024 * 1024

MEDIA_TYPE_KEYS = frozenset({"dc:format"})
# Extracted metadata over the total keeps these namespaces' properties first.
STANDARD_NAMESPACES = frozenset(
    {
        "dc",
        "xmp",
        "xmpRights",
        "tiff",
        "exif",
        "photoshop",
        "Iptc4xmpCore",
        "pdf",
        "xmpDM",
        "xmpTPg",
    }
)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_SCALARS = (str, int, float, bool, type(None))


def json_size(value: Any) -> int:
    """How many bytes ``value`` takes as compact JSON."""
    try:
        return len(orjson.dumps(value))
    except TypeError:  # an integer beyond 64 bits, say: the standard library writes it
        return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def check_key(key: Any, where: str = "") -> None:
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"{where}property names must be non-empty strings")
    if len(key) > MAX_KEY_CHARS:
        raise InvalidInput(
            f"{where}the property name {key[:40]!r}... is longer than {MAX_KEY_CHARS} characters"
        )
    if _CONTROL.search(key):
        raise InvalidInput(f"{where}the property name {key!r} has control characters")


def check_value(key: str, value: Any, where: str = "") -> None:
    """One property: its name, every name and value inside it, its depth and size."""
    check_key(key, where)
    stack: list[tuple[str, Any, int]] = [(key, value, 0)]
    while stack:  # not recursive: the depth is what is being checked
        here, item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise InvalidInput(f"{where}{here}: a value may nest at most {MAX_DEPTH} levels")
            if isinstance(item, dict):
                for inner, child in item.items():
                    check_key(inner, f"{where}{here}: ")
                    stack.append((f"{here}/{inner}", child, depth + 1))
            else:
                stack.extend((f"{here}/{i}", c, depth + 1) for i, c in enumerate(item))
        elif not isinstance(item, _SCALARS):
            raise InvalidInput(
                f"{where}{here}: a {type(item).__name__} is no JSON value; values are "
                "objects, arrays, strings, numbers, booleans or null"
            )
    for pointer, problem in jsontext.faults({key: value}):
        raise InvalidInput(f"{where}{pointer[1:]}: {problem}")
    if key in MEDIA_TYPE_KEYS:
        mediatypes.check(value, f"{where}{key}")
    if json_size(value) > MAX_VALUE_BYTES:
        raise InvalidInput(
            f"{where}{key}: a value may take at most {MAX_VALUE_BYTES} bytes as JSON"
        )


def check_changes(before: Mapping[str, Any], after: Mapping[str, Any], where: str = "") -> None:
    """Refuse properties that ``after`` adds or changes over ``before`` and that break the
    limits, and an ``after`` over the total that is larger than ``before``."""
    for key, value in after.items():
        if key in before and before[key] == value:
            continue
        check_value(key, value, where)
    total = json_size(dict(after))
    if total > MAX_METADATA_BYTES and total > json_size(dict(before)):
        raise InvalidInput(
            f"{where}the metadata would take {total} bytes as JSON; at most {MAX_METADATA_BYTES}"
        )


def check_new(metadata: Mapping[str, Any], where: str = "") -> None:
    """Metadata a new asset or folder is created with: every property is judged."""
    check_changes({}, metadata, where)


def check_import(common: Mapping[str, Any], files: Iterable[Mapping[str, Any]]) -> None:
    """The metadata one import request gives its files: each file's (the request's
    overlaid by the file's own) within the total of one asset, and all of them together
    within ``MAX_IMPORT_METADATA_BYTES``."""
    shared = json_size(dict(common))
    total = 0
    for i, own in enumerate(files):
        size = json_size({**common, **own}) if own else shared
        if size > MAX_METADATA_BYTES:
            raise InvalidInput(
                f"files[{i}]: its assetMetadata and the request's would take {size} bytes "
                f"as JSON; at most {MAX_METADATA_BYTES}"
            )
        total += size
        if total > MAX_IMPORT_METADATA_BYTES:
            raise InvalidInput(
                f"the request gives its files more than {MAX_IMPORT_METADATA_BYTES} bytes of "
                "assetMetadata in all (the request's assetMetadata counts once per file); "
                "import fewer files at once or give them less metadata"
            )


def _fits(key: str, value: Any) -> bool:
    try:
        check_value(key, value)
    except InvalidInput:
        return False
    return True


def _well_formed(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _cut(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` as a JSON string (quotes and escapes
    counted), on a character boundary."""
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits; JSON escapes make size non-linear
        mid = (low + high + 1) // 2
        if json_size(text[:mid]) <= max_bytes:
            low = mid
        else:
            high = mid - 1
    return text[:low]


def fit_extracted(extracted: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Metadata read from a file, held to the limits: each property that breaks one is
    dropped, except a string over ``MAX_VALUE_BYTES``, which is cut to fit; properties
    are then kept while the total stays within ``MAX_METADATA_BYTES``, those of the
    standard namespaces (``STANDARD_NAMESPACES``) first, each group in the file's order.
    Returns what is kept and the names of what was dropped or cut."""
    kept: dict[str, Any] = {}
    changed: list[str] = []
    total = 2  # the braces
    ordered = sorted(
        extracted.items(),
        key=lambda kv: str(kv[0]).partition(":")[0] not in STANDARD_NAMESPACES,
    )
    for key, value in ordered:
        if not _fits(key, value):
            changed.append(str(key)[:MAX_KEY_CHARS])
            if not (isinstance(value, str) and _well_formed(value)):
                continue
            value = _cut(value, MAX_VALUE_BYTES)
            if not _fits(key, value):
                continue
        size = json_size({key: value}) - 1  # the pair and its comma
        if total + size > MAX_METADATA_BYTES:
            if not changed or changed[-1] != key:
                changed.append(key)
            continue
        kept[key] = value
        total += size
    return kept, changed
