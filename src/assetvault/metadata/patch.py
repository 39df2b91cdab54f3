"""JSON Patch for asset metadata: RFC 6902 (through the jsonpatch library) plus the AEM
operations ``set``, ``addUnique``, ``removeIfExists``, ``removeFirst`` and ``removeAll``.

Paths may be full (``/assetMetadata/dc:title``) or short (``/dc:title``, or ``dc:title``
without a slash, as some clients send). Any path into ``repositoryMetadata``, or into a
group that does not exist, fails the whole patch: it applies completely or not at all.

What a write adds or changes is held to limits (``check_changes``): property names are
at most ``MAX_KEY_CHARS`` long with no control characters, one value is at most
``MAX_VALUE_BYTES`` as JSON, and the whole group at most ``MAX_METADATA_BYTES``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import jsonpatch
import jsonpointer
import orjson

from assetvault import jsontext
from assetvault.errors import InvalidInput

GROUP = "assetMetadata"
RFC_OPS = {"add", "remove", "replace", "move", "copy", "test"}
AEM_OPS = {"set", "addUnique", "removeIfExists", "removeFirst", "removeAll"}
READ_ONLY_GROUPS = {"repositoryMetadata"}

MAX_KEY_CHARS = 256
MAX_VALUE_BYTES = 256 * 1024
MAX_METADATA_BYTES = 1024 * 1024
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _json_size(value: Any) -> int:
    try:
        return len(orjson.dumps(value))
    except TypeError:  # an integer beyond 64 bits, say: the standard library writes it
        return len(json.dumps(value, ensure_ascii=False).encode())


def _keys(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """(key, where) of every object key inside a value, without recursing."""
    stack = [(where, value)]
    while stack:
        here, item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                yield key, here
                stack.append((f"{here}/{key}", child))
        elif isinstance(item, list):
            stack.extend((f"{here}/{i}", child) for i, child in enumerate(item))


def check_key(key: Any, where: str = "") -> None:
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"{where}property names must be non-empty strings")
    if len(key) > MAX_KEY_CHARS:
        raise InvalidInput(
            f"{where}the property name {key[:40]!r}... is longer than {MAX_KEY_CHARS} characters"
        )
    if _CONTROL.search(key):
        raise InvalidInput(f"{where}the property name {key!r} has control characters")


def check_changes(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Refuse properties that ``after`` adds or changes over ``before`` and that break the
    limits. What is left as it was stays acceptable, so no asset becomes unwritable."""
    for key, value in after.items():
        if key in before and before[key] == value:
            continue
        check_key(key)
        for pointer, problem in jsontext.faults({key: value}):
            raise InvalidInput(f"{pointer[1:]}: {problem}")
        for inner, where in _keys(value, key):
            check_key(inner, f"{where}: ")
        if _json_size(value) > MAX_VALUE_BYTES:
            raise InvalidInput(f"{key}: a value may take at most {MAX_VALUE_BYTES} bytes as JSON")
    total = _json_size(after)
    if total > MAX_METADATA_BYTES and total > _json_size(before):
        raise InvalidInput(
            f"the metadata would take {total} bytes as JSON; at most {MAX_METADATA_BYTES}"
        )


def normalise_path(path: Any, field: str = "path") -> str:
    if not isinstance(path, str) or not path.strip("/"):
        raise InvalidInput(f"{field} must be a non-empty JSON pointer string")
    pointer = path if path.startswith("/") else "/" + path
    first = pointer.split("/")[1]
    if first in READ_ONLY_GROUPS:
        raise InvalidInput(f"{path!r}: repositoryMetadata is read-only")
    if first == GROUP:
        return pointer
    if first in ("folderMetadata", "collectionMetadata") or (
        first.endswith("Metadata") and ":" not in first
    ):
        raise InvalidInput(f"{path!r}: {first} is not a metadata group of an asset")
    return "/" + GROUP + pointer


def _resolve_parent(doc: dict[str, Any], pointer: str) -> tuple[Any, str]:
    parts = jsonpointer.JsonPointer(pointer).parts
    parent: Any = doc
    for part in parts[:-1]:
        try:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise InvalidInput(f"{pointer!r} does not exist") from exc
    return parent, parts[-1]


def _values(op: dict[str, Any]) -> list[Any]:
    if "value" not in op:
        raise InvalidInput(f"the {op['op']} operation needs a value")
    value = op["value"]
    return value if isinstance(value, list) else [value]


def _apply_aem(doc: dict[str, Any], op: dict[str, Any]) -> None:
    name = op["op"]
    parent, key = _resolve_parent(doc, op["path"])
    if isinstance(parent, list):
        raise InvalidInput(f"{name} addresses properties, not positions in a list")
    if not isinstance(parent, dict):
        raise InvalidInput(f"{op['path']!r} is not inside an object")
    if name == "set":
        if "value" not in op:
            raise InvalidInput("the set operation needs a value")
        parent[key] = copy.deepcopy(op["value"])
    elif name == "removeIfExists":
        parent.pop(key, None)
    elif name == "addUnique":
        current = parent.get(key, [])
        if not isinstance(current, list):
            current = [current]
        for value in _values(op):
            if value not in current:
                current.append(copy.deepcopy(value))
        parent[key] = current
    else:  # removeFirst / removeAll
        current = parent.get(key)
        if current is None:
            return
        if not isinstance(current, list):
            raise InvalidInput(f"{name} needs {op['path']!r} to be a list")
        for value in _values(op):
            if name == "removeFirst":
                if value in current:
                    current.remove(value)
            else:
                current[:] = [v for v in current if v != value]


def apply(asset_metadata: dict[str, Any], operations: Any) -> dict[str, Any]:
    """The metadata after the patch; raises InvalidInput (nothing applied) on any fault."""
    if not isinstance(operations, list):
        raise InvalidInput("the body must be a JSON Patch array")
    doc: dict[str, Any] = {GROUP: copy.deepcopy(asset_metadata)}
    for index, raw in enumerate(operations):
        if not isinstance(raw, dict):
            raise InvalidInput(f"operation {index} is not an object")
        name = raw.get("op")
        if not isinstance(name, str) or name not in RFC_OPS | AEM_OPS:
            raise InvalidInput(f"operation {index}: unknown op {name!r}")
        op = dict(raw)
        op["path"] = normalise_path(raw.get("path"))
        if name in ("move", "copy"):
            op["from"] = normalise_path(raw.get("from"), "from")
        try:
            if name in AEM_OPS:
                _apply_aem(doc, op)
            else:
                doc = jsonpatch.apply_patch(doc, [op], in_place=False)
        except InvalidInput as exc:
            raise InvalidInput(f"operation {index} ({name}): {exc.detail}") from exc
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise InvalidInput(f"operation {index} ({name}) on {raw.get('path')!r}: {exc}") from exc
        if not isinstance(doc.get(GROUP), dict) or set(doc) != {GROUP}:
            raise InvalidInput(f"operation {index} ({name}) would replace the metadata group")
    patched: dict[str, Any] = doc[GROUP]  # an object: checked after every operation
    check_changes(asset_metadata, patched)
    return patched
