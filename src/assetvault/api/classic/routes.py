"""/api/assets and /api.json: the classic Assets HTTP API (Siren JSON), a view over the
same tree as the Author API. Folders (listing, create), asset metadata, renditions,
comments, COPY, MOVE, DELETE; On/Off time hides assets here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from assetvault import mediatypes
from assetvault.api.binary import original_response, rendition_response
from assetvault.api.body import capped_form, json_body, parse_json
from assetvault.api.classic import fragments, siren
from assetvault.api.deps import authenticate, base_url, content_type, raw_path, services
from assetvault.api.downloads import counted
from assetvault.api.errors import siren_core_response
from assetvault.api.responses import FastJSONResponse
from assetvault.api.strict import ANY, takes_query
from assetvault.errors import AssetvaultError, InvalidInput, NotFound, PreconditionFailed
from assetvault.metadata.limits import check_changes
from assetvault.metadata.service import JCR_TWINS
from assetvault.tree.models import Node
from assetvault.tree.paths import ROOT, decode_segments

router = APIRouter()

API_ROOT = "/api/assets"
FOLDER_CLASSES = {"assetFolder", "assets/folder", "folder", "sling:OrderedFolder"}
TITLE_KEYS = ("jcr:title", "dc:title", "title")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Siren bodies: plain JSON, or Siren's own media type (which the update action names).
JSON_TYPES = ("application/json", siren.SIREN_TYPE)
# AEM as a Cloud Service: "Asset creation is not supported via this HTTP API".
ASSET_CREATE_REFUSED = (
    "assets are not created through /api/assets (as on AEM as a Cloud Service): upload "
    "them with direct binary upload, POST /content/dam/<folder>.initiateUpload.json, "
    "then the parts, then <folder>.completeUpload.json"
)


class ParentMissing(AssetvaultError):
    """AEM answers a folder create under a missing parent with 500, and clients rely on
    that status; it is still a clear error, never an unhandled one."""

    status = 500
    title = "Internal Server Error"


def _class_ok(value: Any) -> bool:
    classes = value if isinstance(value, list) else [value]
    return any(c in FOLDER_CLASSES for c in classes if isinstance(c, str))


async def _folder_request(request: Request) -> tuple[dict[str, Any], str | None]:
    """Properties and the optional ``name`` parameter, from a Siren JSON body, form
    fields or query parameters (AEM accepts all three)."""
    props: dict[str, Any] = {k: v for k, v in request.query_params.items() if k != "name"}
    name = request.query_params.get("name")
    ctype = content_type(request)
    if ctype in JSON_TYPES:
        doc = await json_body(request, if_empty=b"{}")
        if not isinstance(doc, dict):
            raise InvalidInput("the body must be a Siren entity object")
        if "class" in doc and not _class_ok(doc["class"]):
            raise InvalidInput(
                "only folders (class assetFolder) are created here; " + ASSET_CREATE_REFUSED
            )
        given = doc.get("properties", {})
        if not isinstance(given, dict):
            raise InvalidInput("properties must be an object")
        props.update(given)
        if isinstance(given.get("name"), str):
            name = given["name"]
    elif ctype in FORM_TYPES:
        form = await capped_form(
            request,
            services(request).settings.form_max_bytes,
            files_refused=ASSET_CREATE_REFUSED,
        )
        for key, value in form.multi_items():
            if not isinstance(value, str):  # refused above; kept for the type
                raise InvalidInput(ASSET_CREATE_REFUSED)
            if key == "name":
                name = value
            elif key not in ("_charset_",):
                props[key] = value
    elif _has_body(request):
        # Raw bytes (AEM 6.5's POST /api/assets/<folder>/<file>): an asset create.
        raise InvalidInput(ASSET_CREATE_REFUSED)
    return props, name


def _has_body(request: Request) -> bool:
    declared = request.headers.get("content-length")
    if declared is not None:
        return declared.strip() not in ("", "0")
    return "transfer-encoding" in request.headers


async def create_folder(request: Request, segments: list[str]) -> Response:
    principal = await authenticate(request, "write", api_key=False)
    svc = services(request)
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
    check_changes({}, stored)
    try:
        node = await svc.tree.create_folder(parent, name, user=principal.name, properties=stored)
    except NotFound as exc:
        raise ParentMissing(f"the parent folder {parent} does not exist") from exc
    api_path = siren.api_path(node.path)
    # Header values are Latin-1 on the wire: the path goes percent-encoded.
    location = base_url(request) + quote(api_path + ".json", safe="/")
    return siren_core_response(api_path, 201, "Created", {"Location": location})


# -- the rest of the classic API: one dispatcher, since the verbs and sub-resources share
# a path space (/api/assets/<folder>/<asset>/renditions/<name>, .../comments/*).

DEFAULT_LIMIT = 20
READ_QUERY = ("offset", "limit", "showProperty")
MAX_LIMIT = 1000
SUBRESOURCES = ("renditions", "comments")
TWINS = JCR_TWINS


def core_response(status: int, message: str, node_path: str) -> Response:
    return siren_core_response(siren.api_path(node_path), status, message)


def _node_path(segments: list[str]) -> str:
    return "/".join([ROOT, *segments])


async def _visible(request: Request, path: str) -> Node:
    node = await services(request).tree.find(path)
    if node is None or not node.is_live():
        raise NotFound(f"{siren.api_path(path)} does not exist")
    return node


async def _split_subresource(request: Request, segments: list[str]) -> tuple[str, str, str] | None:
    """(asset path, "renditions"|"comments", name) when the path addresses one."""
    for i in range(1, len(segments) - 1):
        if segments[i] in SUBRESOURCES and i + 2 == len(segments):
            node = await services(request).tree.find(_node_path(segments[:i]))
            if node is not None and node.kind == "asset":
                return node.path, segments[i], segments[i + 1]
    return None


async def _refuse_missing_asset(request: Request, segments: list[str]) -> None:
    """A POST to .../<name>/renditions/<r> or .../comments/* whose asset does not exist is
    a 404, not a folder create under a missing parent (which AEM answers 500). A real
    folder named renditions or comments still takes new folders."""
    if len(segments) >= 3 and segments[-2] in SUBRESOURCES:
        tree = services(request).tree
        if await tree.find(_node_path(segments[:-1])) is None:
            raise NotFound(f"{siren.api_path(_node_path(segments[:-2]))} is not an asset")


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}")
    return int(value)


async def read(request: Request, raw: str) -> Response:
    await authenticate(request, "read", api_key=False)
    svc = services(request)
    base = base_url(request)
    if raw.endswith(".json"):
        path = _node_path(decode_segments(raw[: -len(".json")]))
        show = request.query_params.getlist("showProperty")
        bad_paging: InvalidInput | None = None
        try:  # paging parameters matter for folders only
            offset = _int_param(request, "offset", 0, 0, 10**9)
            limit = _int_param(request, "limit", DEFAULT_LIMIT, 0, MAX_LIMIT)
        except InvalidInput as exc:
            offset, limit, bad_paging = 0, DEFAULT_LIMIT, exc
        view = await svc.tree.view(path, offset=offset, limit=limit)  # one transaction
        if view is None or not view.node.is_live():
            raise NotFound(f"{siren.api_path(path)} does not exist")
        node = view.node
        if node.is_fragment:
            return await fragments.read(request, node)
        if node.kind == "folder" and bad_paging is not None:
            raise bad_paging
        if node.kind == "folder":
            body = siren.folder(base, node, view.children, view.total, offset, limit, show)
        else:
            body = siren.asset(base, node, view.renditions, view.comments, show)
        if request.method == "HEAD":
            return Response(status_code=200, media_type="application/json")
        return FastJSONResponse(body)
    sub = await _split_subresource(request, decode_segments(raw))
    if sub is None or sub[1] != "renditions":
        raise NotFound(f"{request.url.path} does not exist; listings end in .json")
    node = await _visible(request, sub[0])
    if sub[2] == "original":
        return await counted(
            request, await original_response(request, svc.blobs, node), node, "original"
        )
    found = {r.name: r for r in await svc.tree.renditions(node)}.get(sub[2])
    if found is None:
        raise NotFound(f"{node.path} has no rendition {sub[2]!r}")
    return await counted(
        request, await rendition_response(request, svc.blobs, found), node, found.name
    )


async def _file_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(1024 * 1024):
        yield chunk


async def write_rendition(
    request: Request, asset_path: str, name: str, *, replace: bool
) -> Response:
    principal = await authenticate(request, "write", api_key=False)
    svc = services(request)
    await _visible(request, asset_path)
    ctype = content_type(request)
    if name == "*":
        if ctype != "multipart/form-data":
            raise InvalidInput("POST .../renditions/* takes multipart/form-data: name, file")
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("the form needs a file part named file")
        given = form.get("name")
        name = given if isinstance(given, str) and given else (upload.filename or "")
        mime = mediatypes.check(
            upload.content_type or "application/octet-stream", "the file part's Content-Type"
        )
        blob = await svc.writes.store_stream(_file_chunks(upload))
    else:
        mime = mediatypes.check(ctype or "application/octet-stream", "Content-Type")
        blob = await svc.writes.store_stream(request.stream())
    new = await svc.changes.put_rendition(
        asset_path,
        name,
        blob,
        mime,
        replace_only=replace,
        create_only=not replace,
        user=principal.name,
    )
    status = 201 if new else 200
    return core_response(status, "Created" if new else "OK", f"{asset_path}/renditions/{name}")


async def add_comment(request: Request, asset_path: str) -> Response:
    principal = await authenticate(request, "write", api_key=False)
    await _visible(request, asset_path)
    form = await capped_form(request, services(request).settings.form_max_bytes)
    message = form.get("message")
    if not isinstance(message, str) or not message.strip():
        raise InvalidInput("message is required")
    annotation: Any = None
    raw_annotation = form.get("annotationData")
    if isinstance(raw_annotation, str) and raw_annotation.strip():
        annotation = await parse_json(request, raw_annotation, "annotationData")
        if not isinstance(annotation, dict):
            raise InvalidInput("annotationData must be a JSON object")
    await services(request).changes.add_comment(
        asset_path, message, annotation, user=principal.name
    )
    return core_response(201, "Created", f"{asset_path}/comments")


def _check_value(key: str, value: Any) -> None:
    scalar = (str, int, float, bool)
    if value is None or isinstance(value, scalar):
        return
    if isinstance(value, list) and all(isinstance(v, scalar) for v in value):
        return
    raise InvalidInput(f"{key}: values are strings, numbers, booleans or lists of them")


async def update_metadata(request: Request, segments: list[str]) -> Response:
    principal = await authenticate(request, "write", api_key=False)
    path = _node_path(segments)
    # Not _visible(): a hidden asset must stay reachable for the write that shows it again.
    node = await services(request).tree.get(path)
    ctype = content_type(request)
    if ctype not in JSON_TYPES:
        raise InvalidInput(
            "send metadata as application/json Siren; binaries go through direct binary upload"
        )
    doc = await json_body(request)
    if not isinstance(doc, dict) or not isinstance(doc.get("properties"), dict):
        raise InvalidInput('the body must be {"class": "asset", "properties": {...}}')
    changes: dict[str, Any] = {}
    for key, value in doc["properties"].items():
        _check_value(key, value)
        if key in ("name", "metadata", "srn:paging"):
            raise InvalidInput(f"{key} cannot be written here")
        changes[key] = value
        if key in TWINS:  # writing dc:* writes its jcr:* twin
            changes[TWINS[key]] = value
    check_changes(node.properties, {**node.properties, **changes})
    await services(request).changes.set_properties(node.path, changes, user=principal.name)
    return core_response(200, "OK", node.path)


def _destination(request: Request) -> str:
    header = request.headers.get("x-destination")
    if not header:
        raise PreconditionFailed("X-Destination is required")
    parts = urlsplit(header)
    raw = parts.path
    if not raw.startswith(API_ROOT + "/"):
        raise PreconditionFailed("X-Destination must be an /api/assets/... URI")
    segments = decode_segments(raw[len(API_ROOT) :].removesuffix(".json"))
    if not segments:
        raise PreconditionFailed("X-Destination cannot be the root folder")
    return _node_path(segments)


async def copy_or_move(request: Request, segments: list[str]) -> Response:
    principal = await authenticate(request, "write", api_key=False)
    dest = _destination(request)
    depth = request.headers.get("x-depth", "infinity").lower()
    if depth not in ("infinity", "0"):
        raise PreconditionFailed("X-Depth must be infinity or 0")
    overwrite_header = request.headers.get("x-overwrite", "T").upper()
    if overwrite_header not in ("T", "F"):
        raise PreconditionFailed("X-Overwrite must be T or F")
    source = await _visible(request, _node_path(segments))
    verb = (
        services(request).changes.move
        if request.method == "MOVE"
        else (services(request).changes.copy)
    )
    try:
        replaced = await verb(
            source.path, dest, overwrite=overwrite_header == "T", user=principal.name, depth=depth
        )
    except NotFound as exc:
        if exc.detail.startswith("the destination folder"):
            # AEM's answer (the seeds list only 201, 204, 412 and 500 here), with the
            # reason in the core/response body, which the web UI shows as it is.
            raise ParentMissing(exc.detail) from exc
        raise
    if replaced:
        return Response(status_code=204)
    return core_response(201, "Created", dest)


async def delete(request: Request, segments: list[str]) -> Response:
    principal = await authenticate(request, "write", api_key=False)
    svc = services(request)
    sub = await _split_subresource(request, segments)
    if sub is not None and sub[1] == "renditions":
        await _visible(request, sub[0])
        await svc.changes.delete_rendition(sub[0], sub[2], user=principal.name)
        return core_response(200, "OK", f"{sub[0]}/renditions/{sub[2]}")
    path = _node_path(segments)
    await _visible(request, path)
    await svc.changes.delete(path, user=principal.name)
    return core_response(200, "OK", path)


@router.get("/api.json", include_in_schema=False)
async def service_document(request: Request) -> Response:
    await authenticate(request, "read", api_key=False)
    return JSONResponse(siren.service_document(base_url(request)))


@router.api_route(
    "/api/assets{rest:path}",
    methods=["GET", "HEAD", "POST", "PUT", "DELETE", "COPY", "MOVE"],
    include_in_schema=False,
)
# A folder create takes its properties as query parameters too (AEM does).
@takes_query(get=READ_QUERY, head=READ_QUERY, post=ANY)
async def classic(request: Request) -> Response:
    raw = raw_path(request)
    if not (raw == API_ROOT or raw.startswith((API_ROOT + "/", API_ROOT + "."))):
        raise NotFound(f"{request.url.path} does not exist")
    rest = raw[len(API_ROOT) :]
    if request.method in ("GET", "HEAD"):
        return await read(request, rest)
    segments = decode_segments(rest)
    sub = await _split_subresource(request, segments)
    if request.method == "POST":
        if sub and sub[1] == "comments":
            if sub[2] != "*":
                raise InvalidInput("POST comments to .../comments/*")
            return await add_comment(request, sub[0])
        if sub and sub[1] == "renditions":
            return await write_rendition(request, sub[0], sub[2], replace=False)
        await _refuse_missing_asset(request, segments)
        fragment, request = await fragments.creation(request)
        if fragment is not None:
            return await fragments.create(request, segments, fragment)
        return await create_folder(request, segments)
    if request.method == "PUT":
        if sub and sub[1] == "renditions":
            return await write_rendition(request, sub[0], sub[2], replace=True)
        fragment_node = await fragments.fragment_at(request, _node_path(segments))
        if fragment_node is not None:
            return await fragments.update(request, fragment_node)
        return await update_metadata(request, segments)
    if request.method == "DELETE":
        return await delete(request, segments)
    return await copy_or_move(request, segments)
