"""Content Fragments in /api/assets, in the wire format of AEM's Assets HTTP API (Adobe's
"Content Fragments" API reference and a captured AEM 6.5 response): create with
``POST <folder>/<name>`` and a JSON body naming ``cq:model``, read with
``GET <folder>/<name>.json``, update with ``PUT``; DELETE, listings and COPY/MOVE are the
classic API's own. Writes answer ``core/response`` bodies."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response

from assetvault.api.body import parse_json, read_body, replayed
from assetvault.api.classic import siren
from assetvault.api.deps import authenticate, base_url, content_type, services
from assetvault.api.responses import FastJSONResponse
from assetvault.errors import InvalidInput
from assetvault.fragments.models import ModelField
from assetvault.fragments.service import DESCRIPTION, TITLE, FragmentView
from assetvault.tree.models import Node
from assetvault.tree.paths import ROOT

JSON_TYPES = ("application/json", siren.SIREN_TYPE)
FOLDER_CLASSES = {"assetFolder", "assets/folder", "folder", "sling:OrderedFolder"}
FRAGMENT_KEYS = ("cq:model", "elements")
DEFAULT_LIMIT = 20
HIDDEN_METADATA = (TITLE, DESCRIPTION)


def _classes(doc: dict[str, Any]) -> list[str]:
    value = doc.get("class")
    items = value if isinstance(value, list) else [value]
    return [c for c in items if isinstance(c, str)]


def _is_fragment_create(doc: Any) -> bool:
    """A create body names a model or elements (AEM's body has no ``class``), or a class
    of fragment; a folder's class keeps it a folder create."""
    if not isinstance(doc, dict):
        return False
    classes = _classes(doc)
    if any(c in FOLDER_CLASSES for c in classes):
        return False
    if any("fragment" in c.lower() for c in classes):
        return True
    props = doc.get("properties")
    if not isinstance(props, dict):
        return False
    return any(k in props for k in FRAGMENT_KEYS) or props.get("contentFragment") is True


async def creation(request: Request) -> tuple[dict[str, Any] | None, Request]:
    """The create body when a POST makes a fragment, else None; and the request to go
    on with (its body, read here, replayed for the folder create)."""
    if content_type(request) not in JSON_TYPES:
        return None, request
    await authenticate(request, "write", api_key=False)  # before the body is read
    body = await read_body(request, services(request).settings.json_max_bytes, "the JSON body")
    again = replayed(request, body)
    if not body.strip():
        return None, again
    doc = await parse_json(request, body)
    return (doc if _is_fragment_create(doc) else None), again


def _properties(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get("properties"), dict):
        raise InvalidInput('the body must be {"properties": {...}}')
    props: dict[str, Any] = doc["properties"]
    return props


def _core(request: Request, status: int, message: str, api_path: str, create: bool) -> Response:
    """AEM's answer to a fragment write (Sling's ``core/response``)."""
    location = api_path + ".json"
    parent = api_path.rsplit("/", 1)[0] + ".json"
    body = {
        "class": ["core/response"],
        "properties": {
            "path": api_path,
            "location": location,
            "parentLocation": parent,
            "status.code": status,
            "status.message": message,
            "referer": request.headers.get("referer", ""),
            "isCreate": create,
            "title": f"Content {'created' if create else 'modified'} {api_path}",
            "changes": [],
        },
    }
    headers = {"Location": base_url(request) + quote(location, safe="/")} if create else None
    return FastJSONResponse(body, status_code=status, headers=headers)


async def create(request: Request, segments: list[str], doc: dict[str, Any]) -> Response:
    principal = await authenticate(request, "write", api_key=False)
    if not segments:
        raise InvalidInput("name the fragment to create: POST /api/assets/<folder>/<name>")
    props = _properties(doc)
    parent = "/".join([ROOT, *segments[:-1]])
    node = await services(request).fragments.create(
        parent, segments[-1], props, user=principal.name
    )
    return _core(request, 201, "Created", siren.api_path(node.path), create=True)


async def fragment_at(request: Request, path: str) -> Node | None:
    node = await services(request).tree.find(path)
    return node if node is not None and node.is_fragment else None


async def update(request: Request, node: Node) -> Response:
    principal = await authenticate(request, "write", api_key=False)
    if content_type(request) not in JSON_TYPES:
        raise InvalidInput("send the fragment's changes as application/json")
    body = await read_body(request, services(request).settings.json_max_bytes, "the JSON body")
    props = _properties(await parse_json(request, body))
    await services(request).fragments.update(node.path, props, user=principal.name)
    return _core(request, 200, "OK", siren.api_path(node.path), create=False)


def _millis(node_time: Any) -> int:
    return int(node_time.timestamp() * 1000)


def _element(field: ModelField, view: FragmentView) -> dict[str, Any]:
    data = view.fragment.data
    variations = {
        v.name: {
            ":type": field.type_of(v.content_types.get(field.name)),
            "dataType": field.data_type,
            "description": v.description,
            "title": v.title,
            "multiValue": field.multiple,
            "value": v.values.get(field.name),
        }
        for v in data.variations.values()
    }
    return {
        "variationsOrder": list(data.variations),
        "translatable": field.translatable,
        ":type": field.type_of(data.content_types.get(field.name)),
        "variations": variations,
        "dataType": field.data_type,
        "title": field.label,
        "multiValue": field.multiple,
        "value": data.master.get(field.name),
    }


def entity(request: Request, view: FragmentView) -> dict[str, Any]:
    """A fragment's Siren entity, in the shape of AEM 6.5's captured response."""
    base = base_url(request)
    node = view.node
    target = siren.href(base, node.path, "")
    meta = node.properties
    props: dict[str, Any] = {
        "metadata": {k: v for k, v in meta.items() if k not in HIDDEN_METADATA and v is not None},
        "created": _millis(node.created_at),
        "description": meta.get(DESCRIPTION) or "",
        "title": meta.get(TITLE) or node.name,
        "contentFragment": True,
        "createdBy": node.created_by,
        "elementsOrder": [f.name for f in view.model.fields],
        "elements": {f.name: _element(f, view) for f in view.model.fields},
        "name": node.name,
        "modified": _millis(node.modified_at),
        "modifiedBy": node.modified_by,
        "cq:model": {"path": view.fragment.model},
        "srn:paging": {"total": 0, "offset": 0, "limit": DEFAULT_LIMIT},
    }
    return {
        "links": [
            siren.link("self", siren.href(base, node.path)),
            siren.link("parent", siren.href(base, node.path.rsplit("/", 1)[0])),
        ],
        "class": ["assets/asset"],
        "actions": [
            {"method": "DELETE", "name": "delete", "href": target, "title": "Delete"},
            {
                "method": "PUT",
                "name": "update-fragment",
                "href": target,
                "type": "application/json",
                "title": "Update Content Fragment",
            },
        ],
        "properties": props,
    }


async def read(request: Request, node: Node) -> Response:
    view = await services(request).fragments.view(node)
    if request.method == "HEAD":
        return Response(status_code=200, media_type="application/json")
    return FastJSONResponse(entity(request, view))
