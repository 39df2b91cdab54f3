"""/content/dam: direct binary upload (Sling selectors on folders) and the originals.

POST /content/dam/<folder>.initiateUpload.json   form: fileName, fileSize (repeated)
PUT  /binary-upload/<upload id>/<part>?token=     raw part bytes, no Authorization
POST /content/dam/<folder>.completeUpload.json   form: uploadToken, fileName, ...
POST /content/dam/<folder>.createasset.html      multipart: the servlet upload (createasset.py)
GET|HEAD /content/dam/<path to asset>            the original, with Range
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import anyio.to_thread
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData

from assetvault.api.binary import original_response
from assetvault.api.body import capped_form
from assetvault.api.content.createasset import CREATEASSET, create_asset
from assetvault.api.deps import authenticate, base_url, raw_path, services
from assetvault.api.downloads import counted
from assetvault.errors import InvalidInput, NotFound
from assetvault.tree.paths import ROOT, decode_segments
from assetvault.uploads.service import (
    MAX_FILES_PER_INITIATE,
    SIGN_INLINE_UP_TO,
    CompleteRequest,
    guess_mime,
)

DIRECT_OFF = (
    "direct binary upload is turned off on this server; upload with POST <folder>.createasset.html"
)

router = APIRouter()

INITIATE = ".initiateUpload.json"
COMPLETE = ".completeUpload.json"
MAX_FORM_FIELDS = 2 * MAX_FILES_PER_INITIATE + 20


def dam_path(request: Request, *, suffix: str = "") -> str:
    """The tree path a /content/dam URL names, with an expected Sling suffix removed."""
    raw = raw_path(request)
    if not (raw == ROOT or raw.startswith((ROOT + "/", ROOT + "."))):
        raise NotFound(f"{request.url.path} is not under {ROOT}")
    rest = raw[len(ROOT) :]
    if rest.startswith("."):  # a selector on the root folder itself
        if rest != suffix:
            raise NotFound(f"{request.url.path} does not exist")
        return ROOT
    segments = decode_segments(rest)
    if suffix:
        if not segments or not segments[-1].endswith(suffix) or segments[-1] == suffix:
            raise NotFound(f"{request.url.path} does not exist")
        segments[-1] = segments[-1][: -len(suffix)]
    return "/".join([ROOT, *segments])


def _url(request: Request, path: str) -> str:
    return base_url(request) + quote(path, safe="/")


def _one(form: FormData, name: str, *, required: bool = True) -> str | None:
    values = form.getlist(name)
    if len(values) > 1:
        raise InvalidInput(f"{name} is given more than once")
    if not values:
        if required:
            raise InvalidInput(f"{name} is required")
        return None
    value = values[0]
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a form value, not a file")
    return value


def _int(value: str | None, name: str) -> int:
    try:
        return int(value or "")
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a whole number, not {value!r}") from exc


def _bool(value: str | None, name: str) -> bool:
    if value is None or value == "":
        return False
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise InvalidInput(f"{name} must be true or false, not {value!r}")
    return lowered == "true"


async def _form(request: Request) -> FormData:
    limit = services(request).settings.form_max_bytes
    return await capped_form(request, limit, max_fields=MAX_FORM_FIELDS)


@router.post("/content/{rest:path}", include_in_schema=False)
async def content_post(request: Request) -> Response:
    raw = raw_path(request)
    if raw.endswith(INITIATE):
        return await initiate_upload(request)
    if raw.endswith(COMPLETE):
        return await complete_upload(request)
    if raw.endswith(CREATEASSET):
        return await create_asset(request, dam_path(request, suffix=CREATEASSET))
    raise NotFound(f"{request.url.path} does not accept POST")


async def initiate_upload(request: Request) -> Response:
    principal = await authenticate(request, "write", api_key=False)
    svc = services(request)
    folder_path = dam_path(request, suffix=INITIATE)
    form = await _form(request)
    names = form.getlist("fileName")
    sizes = form.getlist("fileSize")
    if not names:
        raise InvalidInput("fileName is required")
    if len(names) != len(sizes):
        raise InvalidInput("each fileName needs a fileSize, in the same order")
    files = [
        (str(n), _int(s if isinstance(s, str) else None, "fileSize"))
        for n, s in zip(names, sizes, strict=True)
    ]
    if not svc.settings.direct_binary_upload:
        # As an AEM 6.5 without direct binary access answers: no completeURI and no
        # upload URIs, which is what makes the AEM upload clients fall back to the
        # create-asset servlet by themselves.
        await svc.uploads.check_initiate(folder_path, files)
        return JSONResponse(
            {
                "folderPath": folder_path,
                "files": [{"fileName": n, "mimeType": guess_mime(n)} for n, _ in files],
            },
            status_code=201,
        )
    planned = await svc.uploads.initiate(folder_path, files, user=principal.name)
    base = base_url(request)
    complete_uri = _url(request, folder_path + COMPLETE)

    def render() -> bytes:
        body: dict[str, Any] = {
            "completeURI": complete_uri,
            "folderPath": folder_path,
            "files": [
                {
                    "fileName": p.ticket.file_name,
                    "mimeType": p.ticket.mime_type,
                    "uploadToken": p.upload_token,
                    "uploadURIs": p.part_urls
                    if p.part_urls is not None
                    else [
                        f"{base}/binary-upload/{p.ticket.upload_id}/{n}?token={t}"
                        for n, t in enumerate(p.part_tokens, start=1)
                    ],
                    "minPartSize": p.min_part_size,
                    "maxPartSize": p.max_part_size,
                }
                for p in planned
            ],
        }
        return orjson.dumps(body)

    uris = sum(p.ticket.part_count for p in planned)
    content = render() if uris <= SIGN_INLINE_UP_TO else await anyio.to_thread.run_sync(render)
    return Response(content, status_code=201, media_type="application/json")


async def complete_upload(request: Request) -> Response:
    principal = await authenticate(request, "write", api_key=False)
    svc = services(request)
    folder_path = dam_path(request, suffix=COMPLETE)
    if not svc.settings.direct_binary_upload:
        raise NotFound(DIRECT_OFF)
    form = await _form(request)
    req = CompleteRequest(
        upload_token=_one(form, "uploadToken") or "",
        file_name=_one(form, "fileName") or "",
        file_size=_int(_one(form, "fileSize"), "fileSize"),
        mime_type=_one(form, "mimeType", required=False),
        create_version=_bool(_one(form, "createVersion", required=False), "createVersion"),
        version_label=_one(form, "versionLabel", required=False),
        version_comment=_one(form, "versionComment", required=False),
        replace=_bool(_one(form, "replace", required=False), "replace"),
    )
    stored = await svc.uploads.complete(folder_path, req, user=principal.name)
    node = stored.node
    return JSONResponse(
        {
            "path": node.path,
            "assetId": node.urn,
            "fileName": node.name,
            "fileSize": node.size,
            "mimeType": node.mime_type,
            "sha1": node.sha1,
            "created": stored.created,
            "status": "created" if stored.created else "updated",
        },
        status_code=200,
    )


@router.put("/binary-upload/{upload_id}/{number}", include_in_schema=False)
async def upload_part(request: Request, upload_id: str, number: int, token: str = "") -> Response:
    if number < 1:
        raise NotFound("part numbers start at 1")
    if not upload_id.isalnum() or len(upload_id) != 32:
        raise NotFound("no such upload")
    length = request.headers.get("content-length")
    svc = services(request)
    if not svc.settings.direct_binary_upload:
        raise NotFound(DIRECT_OFF)
    await svc.uploads.receive_part(
        upload_id,
        number,
        token,
        request.stream(),
        int(length) if length and length.isdigit() else None,
    )
    return Response(status_code=201)


@router.api_route("/content/{rest:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def content_get(request: Request) -> Response:
    await authenticate(request, "read", api_key=False)
    svc = services(request)
    node = await svc.tree.get(dam_path(request))
    if not node.is_live():
        raise NotFound(f"{node.path} does not exist")
    if node.kind != "asset":
        raise NotFound(f"{node.path} is a folder; only assets have a binary")
    return await counted(
        request, await original_response(request, svc.blobs, node), node, "original"
    )
