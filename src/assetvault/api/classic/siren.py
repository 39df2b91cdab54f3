"""Siren representations of folders and assets for /api/assets (``class`` and ``rel``
are arrays; hrefs are absolute)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from assetvault.tree.models import Node, Rendition
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


def api_path(node_path: str) -> str:
    return API_ROOT + node_path[len(ROOT) :]


def href(base: str, node_path: str, suffix: str = ".json") -> str:
    return base + quote(api_path(node_path) + suffix, safe="/:*")


def link(rel: str, url: str) -> dict[str, Any]:
    return {"rel": [rel], "href": url}


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


def child_entity(base: str, node: Node) -> dict[str, Any]:
    if node.kind == "folder":
        props = {"name": node.name}
        if node.title:
            props["dc:title"] = node.title
        return {
            "class": ["assets/folder"],
            "properties": props,
            "links": [link("self", href(base, node.path))],
        }
    return {
        "class": ["assets/asset"],
        "properties": {"name": node.name, "metadata": {"dc:format": node.mime_type}},
        "links": [link("self", href(base, node.path))],
    }


def folder(
    base: str,
    node: Node,
    children: list[Node],
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
    return {
        "class": ["assets/folder"],
        "properties": props,
        "entities": [child_entity(base, c) for c in children],
        "links": links,
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
            "properties": {"name": r.name, "dc:format": r.mime_type, "size": r.size},
            "links": [link("self", href(base, node.path, f"/renditions/{r.name}"))],
        }
        for r in renditions
    ]
    entities += [
        {
            "class": ["assets/comment"],
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
    return {"class": ["assets/asset"], "properties": props, "entities": entities, "links": links}


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
