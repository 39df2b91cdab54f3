"""/api/assets (classic Assets HTTP API, Siren). Folder creation, as the upload clients
use it to build a folder tree before uploading into it."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from assetvault.api.deps import authenticate, base_url, raw_path, services
from assetvault.api.errors import siren_location
from assetvault.errors import AssetvaultError, InvalidInput, NotFound
from assetvault.tree.paths import ROOT, decode_segments

router = APIRouter()

API_ROOT = "/api/assets"
FOLDER_CLASSES = {"assetFolder", "assets/folder", "folder", "sling:OrderedFolder"}
TITLE_KEYS = ("jcr:title", "dc:title", "title")
MAX_JSON_BODY = 1024 * 1024


class ParentMissing(AssetvaultError):
    """AEM answers a folder create under a missing parent with 500, and clients rely on
    that status; it is still a clear error, never an unhandled one."""

    status = 500
    title = "Internal Server Error"


def tree_path(request: Request) -> list[str]:
    """Segments below /content/dam that an /api/assets URL names."""
    raw = raw_path(request)
    if not (raw == API_ROOT or raw.startswith(API_ROOT + "/")):
        raise NotFound(f"{request.url.path} is not under {API_ROOT}")
    return decode_segments(raw[len(API_ROOT) :])


def _class_ok(value: Any) -> bool:
    classes = value if isinstance(value, list) else [value]
    return any(c in FOLDER_CLASSES for c in classes if isinstance(c, str))


async def _folder_request(request: Request) -> tuple[dict[str, Any], str | None]:
    """Properties and the optional ``name`` parameter, from a Siren JSON body, form
    fields or query parameters (AEM accepts all three)."""
    props: dict[str, Any] = {k: v for k, v in request.query_params.items() if k != "name"}
    name = request.query_params.get("name")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        body = await request.body()
        if len(body) > MAX_JSON_BODY:
            raise InvalidInput("the JSON body is too large")
        try:
            doc = json.loads(body or b"{}")
        except ValueError as exc:
            raise InvalidInput(f"the body is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise InvalidInput("the body must be a Siren entity object")
        if "class" in doc and not _class_ok(doc["class"]):
            raise InvalidInput(
                "only folders (class assetFolder) are created here; "
                "upload assets with direct binary upload"
            )
        given = doc.get("properties", {})
        if not isinstance(given, dict):
            raise InvalidInput("properties must be an object")
        props.update(given)
        if isinstance(given.get("name"), str):
            name = given["name"]
    elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.form(max_files=0)
        except Exception as exc:
            raise InvalidInput(f"the form body could not be read: {exc}") from exc
        for key, value in form.multi_items():
            if not isinstance(value, str):
                raise InvalidInput("folder creation takes no files")
            if key == "name":
                name = value
            elif key not in ("_charset_",):
                props[key] = value
    return props, name


@router.post("/api/assets/{rest:path}", include_in_schema=False)
@router.post("/api/assets", include_in_schema=False)
async def create_folder(request: Request) -> Response:
    principal = await authenticate(request, "write", api_key=False)
    svc = services(request)
    segments = tree_path(request)
    props, name_param = await _folder_request(request)
    if segments and segments[-1] == "*":
        if not name_param:
            raise InvalidInput("POST to /* needs a name parameter")
        segments[-1] = name_param
    if not segments:
        raise InvalidInput("name the folder to create: POST /api/assets/<path>")
    parent = "/".join([ROOT, *segments[:-1]])
    name = segments[-1]
    title = next((props[k] for k in TITLE_KEYS if isinstance(props.get(k), str)), None)
    stored: dict[str, Any] = {k: v for k, v in props.items() if k not in TITLE_KEYS}
    stored = {k: v for k, v in stored.items() if isinstance(v, str | int | float | bool)}
    if title is not None:
        stored["jcr:title"] = title
    try:
        node = await svc.tree.create_folder(parent, name, user=principal.name, properties=stored)
    except NotFound as exc:
        raise ParentMissing(f"the parent folder {parent} does not exist") from exc
    api_path = API_ROOT + node.path[len(ROOT) :]
    location, parent_location = siren_location(api_path)
    return JSONResponse(
        {
            "class": "core/response",
            "properties": {
                "path": api_path,
                "location": location,
                "parentLocation": parent_location,
                "status.code": 201,
                "status.message": "Created",
            },
        },
        status_code=201,
        headers={"Location": base_url(request) + location},
    )
