"""Checking the import requests as the seeds define them. Every fault is InvalidInput
naming the field (``files[3].url``), so nothing of a bad request is stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from assetvault import mediatypes
from assetvault.errors import InvalidInput
from assetvault.imports.models import NewFile
from assetvault.metadata import limits
from assetvault.tree.paths import ROOT, URN_PREFIX, check_name

MAX_URL_FILES = 300
MAX_SOURCE_ITEMS = 1000
MAX_URL_LENGTH = 8192


@dataclass(frozen=True)
class Target:
    """The folder of a request: a path (missing folders are created) or a URN."""

    path: str | None = None
    node_id: str | None = None


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    return body


def _only(body: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        known = ", ".join(sorted(allowed))
        raise InvalidInput(f"{where}{extra[0]}: unknown field (allowed: {known})")


def metadata(value: Any, field: str) -> dict[str, Any]:
    """An ``assetMetadata`` of the request or of one file, held to the limits of stored
    metadata (``metadata/limits.py``) as a PATCH is."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} must be an object of metadata properties")
    for key, item in value.items():
        if not key or key.startswith("repo:") or key.startswith("jcr:uuid"):
            raise InvalidInput(
                f"{field}.{key}: not a writable assetMetadata property"
                if key
                else f"{field}: a property needs a name"
            )
        if item is None:
            raise InvalidInput(f"{field}.{key}: null is no value; leave the property out")
    limits.check_new(value, f"{field}.")
    return dict(value)


def target(value: Any) -> Target:
    if not isinstance(value, str) or not value:
        raise InvalidInput("folder is required: a /content/dam path or a folder's URN")
    if value.startswith(URN_PREFIX):
        node_id = value[len(URN_PREFIX) :]
        if not node_id or "/" in node_id:
            raise InvalidInput(f"folder: {value!r} is no folder URN")
        return Target(node_id=node_id)
    path = value.rstrip("/") if value != "/" else value
    if path != ROOT and not path.startswith(ROOT + "/"):
        raise InvalidInput(
            f"folder: {value!r} is neither a path under {ROOT} nor a folder URN ({URN_PREFIX}...)"
        )
    for segment in path[len(ROOT) :].split("/")[1:]:
        try:
            check_name(segment)
        except InvalidInput as exc:
            raise InvalidInput(f"folder: {exc.detail}") from None
    return Target(path=path)


def http_url(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{field} is required: an http or https URL")
    if len(value) > MAX_URL_LENGTH:
        raise InvalidInput(f"{field} is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise InvalidInput(f"{field}: {value[:200]!r} is no URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{field}: {value[:200]!r} is no absolute http or https URL")
    return value


@dataclass(frozen=True)
class UrlImport:
    target: Target
    metadata: dict[str, Any]
    files: list[NewFile]
    source_name: str | None


def url_import(body: Any) -> UrlImport:
    body = _object(body, "the body")
    _only(body, {"assetMetadata", "folder", "files", "sourceName"}, "")
    where = target(body.get("folder"))
    common = metadata(body.get("assetMetadata"), "assetMetadata")
    source_name = body.get("sourceName")
    if source_name is not None and not isinstance(source_name, str):
        raise InvalidInput("sourceName must be a string")
    raw = body.get("files")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_URL_FILES:
        raise InvalidInput(f"files is required: an array of 1 to {MAX_URL_FILES} files")
    files: list[NewFile] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        at = f"files[{i}]"
        item = _object(item, at)
        _only(item, {"fileName", "url", "mimeType", "fileSize", "assetMetadata"}, f"{at}.")
        name = item.get("fileName")
        if not isinstance(name, str):
            raise InvalidInput(f"{at}.fileName is required: the new asset's name")
        try:
            check_name(name)
        except InvalidInput as exc:
            raise InvalidInput(f"{at}.fileName: {exc.detail}") from None
        if name in names:
            raise InvalidInput(f"{at}.fileName: {name!r} is in the request twice")
        names.add(name)
        mime = item.get("mimeType")
        if mime is not None:
            mediatypes.check(mime, f"{at}.mimeType")
        size = item.get("fileSize")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise InvalidInput(f"{at}.fileSize must be a whole number of bytes")
        files.append(
            NewFile(
                file_name=name,
                url=http_url(item.get("url"), f"{at}.url"),
                mime_type=mime.lower() if mime else None,
                file_size=size,
                metadata=metadata(item.get("assetMetadata"), f"{at}.assetMetadata"),
            )
        )
    return UrlImport(where, common, files, source_name)


@dataclass(frozen=True)
class SourceImport:
    target: Target
    metadata: dict[str, Any]
    item_ids: list[str]


def source_import(body: Any, *, item_id: str | None = None) -> SourceImport:
    """The body of /import/sources/{name}/start (items) or .../{itemId}/start (none)."""
    body = _object(body, "the body")
    allowed = {"assetMetadata", "folder"} | (set() if item_id else {"items"})
    _only(body, allowed, "")
    where = target(body.get("folder"))
    common = metadata(body.get("assetMetadata"), "assetMetadata")
    if item_id is not None:
        return SourceImport(where, common, [item_id])
    raw = body.get("items")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_SOURCE_ITEMS:
        raise InvalidInput(f"items is required: an array of 1 to {MAX_SOURCE_ITEMS} items")
    ids: list[str] = []
    for i, item in enumerate(raw):
        if isinstance(item, dict):
            _only(item, {"id", "name", "path", "type", "size", "mimeType"}, f"items[{i}].")
            item = item.get("id")
        if not isinstance(item, str) or not item:
            raise InvalidInput(f"items[{i}] must be an item id, or an item with its id")
        if item in ids:
            raise InvalidInput(f"items[{i}]: {item!r} is in the request twice")
        ids.append(item)
    return SourceImport(where, common, ids)
