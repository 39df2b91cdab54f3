"""JSON Patch for asset metadata: RFC 6902 (through the jsonpatch library) plus the AEM
operations ``set``, ``addUnique``, ``removeIfExists``, ``removeFirst`` and ``removeAll``.

Paths may be full (``/assetMetadata/dc:title``) or short (``/dc:title``, or ``dc:title``
without a slash, as some clients send). Any path into ``repositoryMetadata``, or into a
group that does not exist, fails the whole patch: it applies completely or not at all.

What a patch adds or changes is held to the limits of stored metadata
(``metadata/limits.py``), as every other writer's is.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer
import orjson

from assetvault.errors import InvalidInput
from assetvault.metadata import limits

GROUP = "assetMetadata"
RFC_OPS = {"add", "remove", "replace", "move", "copy", "test"}
AEM_OPS = {"set", "addUnique", "removeIfExists", "removeFirst", "removeAll"}
READ_ONLY_GROUPS = {"repositoryMetadata"}


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


def _copy(value: dict[str, Any]) -> dict[str, Any]:
    try:
        copied: dict[str, Any] = orjson.loads(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):  # not plain JSON after all
        return copy.deepcopy(value)
    return copied if copied == value else copy.deepcopy(value)


def apply(asset_metadata: dict[str, Any], operations: Any) -> dict[str, Any]:
    """The metadata after the patch; raises InvalidInput (nothing applied) on any fault."""
    if not isinstance(operations, list):
        raise InvalidInput("the body must be a JSON Patch array")
    # The patch works on a copy of its own (read from the database as JSON, so a JSON
    # round trip copies it, several times faster than deepcopy), changed in place: an
    # operation that fails fails the whole patch, and the copy is dropped.
    doc: dict[str, Any] = {GROUP: _copy(asset_metadata)}
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
                doc = jsonpatch.apply_patch(doc, [op], in_place=True)
        except InvalidInput as exc:
            raise InvalidInput(f"operation {index} ({name}): {exc.detail}") from exc
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise InvalidInput(f"operation {index} ({name}) on {raw.get('path')!r}: {exc}") from exc
        if not isinstance(doc.get(GROUP), dict) or set(doc) != {GROUP}:
            raise InvalidInput(f"operation {index} ({name}) would replace the metadata group")
    patched: dict[str, Any] = doc[GROUP]  # an object: checked after every operation
    limits.check_changes(asset_metadata, patched)
    return patched
