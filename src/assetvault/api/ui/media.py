"""``POST /media-urls``: a short-lived, signed URL of one binary, for what a browser loads
by URL and cannot send a token with: a ``<video src>`` (which seeks with byte ranges),
an ``<img src>``, a download by navigation (an Assetvault extension; docs/ui.md, "Media
URLs"; the threat model is in docs/hostile-input.md). The ZIP of a selection gets one
too: ``GET /adobe/assets/archive`` with a grant that carries the paths.

The URL is the binary's own API path with a ``media`` grant (auth/media_urls.py), so
it is answered by the same route and the one download code as with a token: ranges and
206, conditional requests, ``nosniff``, inline only for the passive types, ``sandbox``
and an attachment for the rest, and the ``asset.downloaded`` event with the token's name.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from assetvault.api.adobe.common import problems
from assetvault.api.body import json_body
from assetvault.api.deps import base_url, require, services
from assetvault.auth.media_urls import ARCHIVE_PATH
from assetvault.auth.models import Principal
from assetvault.errors import InvalidInput
from assetvault.metadata.service import iso
from assetvault.tree import archive
from assetvault.tree.paths import decode_segments

router = APIRouter(prefix="/media-urls", tags=["Media URLs"])

# The binaries a media URL may name: an asset's original, a rendition, a kept version.
# The path is kept raw (percent-encoded, as the browser will send it) and signed as such.
BINARY_PATH = re.compile(
    r"^/adobe/assets/[^/?#]+/(original/as/[^/?#]+|(renditions|versions)/[^/?#]+/as/[^/?#]+)$"
)
MAX_PATH = 2000


class MediaUrlRequest(BaseModel):
    path: str | None = Field(
        default=None,
        description="the binary's path, percent-encoded as it will be requested: "
        "/adobe/assets/{assetId}/original/as/{seoName}, "
        "/adobe/assets/{assetId}/renditions/{renditionName}/as/{seoName} or "
        "/adobe/assets/{assetId}/versions/{versionName}/as/{seoName}",
    )
    archive: list[str] | None = Field(
        default=None,
        description="instead of path: the asset and folder paths of a ZIP, as "
        "POST /adobe/assets/archive takes them; the URL is GET /adobe/assets/archive",
    )
    fileName: str | None = Field(
        default=None, description="with archive: the name to save the ZIP as (….zip)"
    )


class MediaUrl(BaseModel):
    url: str = Field(description="the path with its media grant: opens it, read only")
    expiresAt: str


def _binary_path(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_PATH:
        raise InvalidInput("path must be the path of a binary below /adobe/assets")
    if not BINARY_PATH.match(value):
        raise InvalidInput(
            "path must be an asset's original, rendition or version binary: "
            "/adobe/assets/{assetId}/original/as/{seoName}, "
            ".../renditions/{name}/as/{seoName} or .../versions/{name}/as/{seoName}"
        )
    decode_segments(value)  # no encoded slash, no '.' or '..', valid UTF-8
    return value


def _zip_name(value: Any) -> str | None:
    """The ZIP's file name, made safe as a name inside a ZIP is (no slash, no control
    character, no leading dot), ending in .zip."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise InvalidInput("fileName must be a file name of at most 200 characters")
    name = archive.safe_component(value.strip())
    return name if name.lower().endswith(".zip") else name + ".zip"


@router.post(
    "",
    operation_id="createMediaUrl",
    summary="Make a short-lived URL of one binary that needs no token "
    "(for <video>, <img> and downloads; an Assetvault extension)",
    response_model=MediaUrl,
    responses=problems(400, 401, 403, 404, 413, 415),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": MediaUrlRequest.model_json_schema()}},
        }
    },
)
async def create_media_url(
    request: Request, principal: Principal = Depends(require("read"))
) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    unknown = set(body) - {"path", "archive", "fileName"}
    if unknown:
        raise InvalidInput(f"unknown fields: {', '.join(sorted(unknown))}")
    if ("path" in body) == ("archive" in body):
        raise InvalidInput("send either path (one binary) or archive (the paths of a ZIP)")
    svc = services(request)
    if "archive" in body:
        paths = archive.parse_paths(body["archive"])
        # Checked now, so a missing path or too many files is this answer, not a
        # download that fails in the browser's list.
        await archive.plan(svc.tree, paths)
        path = ARCHIVE_PATH
        name = _zip_name(body.get("fileName"))
        grant, expires = await svc.media_urls.mint_archive(principal, paths, name)
    else:
        if "fileName" in body:
            raise InvalidInput("fileName goes with archive: a binary's name is in its path")
        path = _binary_path(body.get("path"))
        grant, expires = await svc.media_urls.mint(principal, path)
    item = {
        "url": f"{base_url(request)}{path}?media={grant}",
        "expiresAt": iso(datetime.fromtimestamp(expires, UTC)),
    }
    return JSONResponse(item, headers={"Cache-Control": "no-store"})
