"""Siren representations of folders and assets for /api/assets, as AEM sends them:
``class`` and ``rel`` are arrays, hrefs are absolute, sub-entities are ``rel: ["child"]``
with their ``self`` link, documents carry AEM's ``actions``, and a page of a folder's
children links its ``next`` and ``prev`` pages."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode

from assetvault.tree.models import Listed, Node, Rendition
from assetvault.tree.paths import ROOT

API_ROOT = "/api/assets"
# jcr:* properties shown under their dc:* names, as AEM does.
JCR_TO_DC = {
    "jcr:title": "dc:title",
    "jcr:description": "dc:description",
    "jcr:language": "dc:language",
}
SHOWN_NAMESPACES = ("dc:",)
THUMBNAIL = "cq5dam.thumbnail.319.319.png"
SIREN_TYPE = "application/vnd.siren+json"
CHILD = ["child"]


def api_path(node_path: str) -> str:
    return API_ROOT + node_path[len(ROOT) :]


@lru_cache(maxsize=16384)
def _quoted(path: str) -> str:
    # The same paths are listed again and again; quote() is pure Python.
    return quote(path, safe="/:*")


def href(base: str, node_path: str, suffix: str = ".json") -> str:
    return base + _quoted(api_path(node_path) + suffix)


def link(rel: str, url: str) -> dict[str, Any]:
    return {"rel": [rel], "href": url}


def page_href(base: str, node_path: str, offset: int, limit: int, show: list[str]) -> str:
    """A page of a folder's children, keeping the request's ``showProperty``."""
    query = [("offset", str(offset)), ("limit", str(limit))]
    query += [("showProperty", name) for name in show]
    return href(base, node_path) + "?" + urlencode(query)


def paging_links(
    base: str, node_path: str, total: int, offset: int, limit: int, show: list[str]
) -> list[dict[str, Any]]:
    """``next`` while children remain after this page, ``prev`` while some come before
    it (the page ending where this one starts, or the last page when this one starts
    past the end). A page of ``limit=0`` links neither: following it would not move."""
    if limit == 0:
        return []
    links = []
    if offset > 0 and total > 0:
        before = max(0, min(offset, total) - limit)
        links.append(link("prev", page_href(base, node_path, before, limit, show)))
    if offset + limit < total:
        links.append(link("next", page_href(base, node_path, offset + limit, limit, show)))
    return links


def actions(base: str, node: Node) -> list[dict[str, Any]]:
    """The Siren ``actions`` AEM lists: on a folder ``add-folder``, ``update``,
    ``delete`` and ``add-asset``; on an asset ``update`` and ``delete``. (``add-asset``
    is listed as AEM lists it; Assetvault answers it, as AEM as a Cloud Service does,
    by pointing at direct binary upload.)"""
    target = href(base, node.path, "")
    update = {
        "name": "update",
        "title": "Update",
        "method": "PUT",
        "href": target,
        "type": SIREN_TYPE,
        "fields": [{"name": "data", "type": "text"}],
    }
    delete = {"name": "delete", "title": "Delete", "method": "DELETE", "href": target}
    if node.kind != "folder":
        return [update, delete]
    add = href(base, node.path, "/*")
    return [
        {
            "name": "add-folder",
            "title": "Add Folder",
            "method": "POST",
            "href": add,
            "fields": [{"name": "name", "type": "text"}],
        },
        update,
        delete,
        {
            "name": "add-asset",
            "title": "Add Asset",
            "method": "POST",
            "href": add,
            "fields": [{"name": "name", "type": "text"}, {"name": "file", "type": "file"}],
        },
    ]


def visible_metadata(node: Node) -> dict[str, Any]:
    """The subset of metadata this API shows: dc:* (with jcr:* under their dc names)."""
    source = node.asset_metadata if node.kind == "asset" else dict(node.properties)
    shown = {k: v for k, v in source.items() if k.startswith(SHOWN_NAMESPACES)}
    for jcr, dc in JCR_TO_DC.items():
        if jcr in source:
            shown[dc] = source[jcr]
    return shown


def properties(node: Node, show: list[str]) -> dict[str, Any]:
    props: dict[str, Any] = {"name": node.name}
    meta = visible_metadata(node)
    for key in ("dc:title", "dc:description", "dc:language"):
        if key in meta:
            props[key] = meta[key]
    raw = {**node.extracted, **node.properties} if node.kind == "asset" else node.properties
    for name in show:
        if name in raw and raw[name] is not None:
            props[name] = raw[name]
    return props


def child_entity(base: str, node: Listed) -> dict[str, Any]:
    if node.kind == "folder":
        props = {"name": node.name}
        if node.title:
            props["dc:title"] = node.title
        return {
            "class": ["assets/folder"],
            "rel": CHILD,
            "properties": props,
            "links": [link("self", href(base, node.path))],
        }
    shown: dict[str, Any] = {"name": node.name, "metadata": {"dc:format": node.mime_type}}
    if node.is_fragment:  # a content fragment says so, with its title
        shown["title"] = node.properties.get("dc:title") or node.name
        shown["contentFragment"] = True
    return {
        "class": ["assets/asset"],
        "rel": CHILD,
        "properties": shown,
        "links": [link("self", href(base, node.path))],
    }


def folder(
    base: str,
    node: Node,
    children: list[Listed],
    total: int,
    offset: int,
    limit: int,
    show: list[str],
) -> dict[str, Any]:
    props = properties(node, show)
    props["srn:paging"] = {"total": total, "offset": offset, "limit": limit}
    links = [link("self", href(base, node.path))]
    if node.path != ROOT:
        links.append(link("parent", href(base, node.path.rsplit("/", 1)[0])))
    links += paging_links(base, node.path, total, offset, limit, show)
    return {
        "class": ["assets/folder"],
        "properties": props,
        "entities": [child_entity(base, c) for c in children],
        "links": links,
        "actions": actions(base, node),
    }


def asset(
    base: str,
    node: Node,
    renditions: list[Rendition],
    comments: list[dict[str, Any]],
    show: list[str],
) -> dict[str, Any]:
    props = properties(node, show)
    props["metadata"] = visible_metadata(node)
    props["contentFragment"] = False
    entities: list[dict[str, Any]] = [
        {
            "class": ["assets/rendition"],
            "rel": CHILD,
            "properties": {"name": r.name, "dc:format": r.mime_type, "size": r.size},
            "links": [link("self", href(base, node.path, f"/renditions/{r.name}"))],
        }
        for r in renditions
    ]
    entities += [
        {
            "class": ["assets/comment"],
            "rel": CHILD,
            "properties": {
                "message": c["message"],
                "annotationData": c["annotation_data"],
                "created": _iso(c["created_at"]),
                "createdBy": c["created_by"],
            },
        }
        for c in comments
    ]
    links = [
        link("self", href(base, node.path)),
        link("parent", href(base, node.path.rsplit("/", 1)[0])),
    ]
    if node.blob_key:
        links.append(link("content", base + quote(node.path, safe="/")))
    if any(r.name == THUMBNAIL for r in renditions):
        links.append(link("thumbnail", href(base, node.path, f"/renditions/{THUMBNAIL}")))
    return {
        "class": ["assets/asset"],
        "properties": props,
        "entities": entities,
        "links": links,
        "actions": actions(base, node),
    }


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def service_document(base: str) -> dict[str, Any]:
    return {
        "class": ["core/services"],
        "properties": {},
        "entities": [
            {
                "class": ["assets/service"],
                "properties": {"name": "assets"},
                "links": [link("self", base + "/api/assets.json")],
            }
        ],
        "links": [link("self", base + "/api.json"), link("assets", base + "/api/assets.json")],
    }
