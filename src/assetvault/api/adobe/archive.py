"""POST /adobe/assets/archive: many originals as one ZIP, streamed (an Assetvault
extension; AEM's public APIs have no such call). docs/author-api.md describes it.

Auth is a download's: a token of read scope, no X-Api-Key needed; or, for a browser's
own download (GET), a media URL's grant that carries the paths (auth/media_urls.py).
The answer is an attachment with the headers every binary carries (nosniff, and
``sandbox`` as its CSP), so nothing in it can run in Assetvault's origin. Every path is
checked before the first byte: a bad one is a 400, a missing one a 404, too many files a
413, in problem+json.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from assetvault.api.adobe.common import json_request, problems, read_bearer
from assetvault.api.body import json_body
from assetvault.api.deps import content_type, services
from assetvault.auth.media_urls import ARCHIVE_PATH, MAX_ARCHIVE_GRANT
from assetvault.auth.models import Principal
from assetvault.errors import InvalidInput, Unauthorized, UnsupportedMediaType
from assetvault.tree import archive
from assetvault.tree.archive import safe_component
from assetvault.tree.paths import ROOT

router = APIRouter(prefix="/adobe/assets", tags=["Assets"])


@router.post(
    "/archive",
    operation_id="downloadArchive",
    summary="Download assets and folders as one ZIP, streamed (an Assetvault extension)",
    description="The originals of the assets named, and of every asset below the folders "
    "named (under the folder's name), as a ZIP streamed as it is made (ZIP64 past 4 GiB). "
    "Names inside are made safe and unique without regard to case. Read scope.",
    responses={
        200: {"description": "The ZIP", "content": {"application/zip": {}}},
        **problems(400, 401, 403, 404, 413, 415),
    },
    openapi_extra=json_request("ArchiveRequest"),
)
async def download_archive(
    request: Request, principal: Principal = Depends(read_bearer)
) -> Response:
    if content_type(request) != "application/json":
        raise UnsupportedMediaType(
            f"send application/json, not {content_type(request) or 'nothing'}"
        )
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    extra = sorted(set(body) - {"paths"})
    if extra:
        raise InvalidInput(f"{extra[0]}: no such field; the only field is paths")
    return await _archive(request, principal, archive.parse_paths(body.get("paths")))


@router.get(
    "/archive",
    operation_id="downloadArchiveByUrl",
    summary="Download assets and folders as one ZIP through a media URL (an Assetvault extension)",
    description="The ZIP of POST /adobe/assets/archive, for a browser's own download: "
    'POST /media-urls with {"archive": [paths]} makes the URL, whose media grant '
    "carries the paths, signed, for a few minutes. No token.",
    responses={
        200: {"description": "The ZIP", "content": {"application/zip": {}}},
        **problems(400, 401, 403, 404, 413),
    },
)
async def download_archive_by_url(
    request: Request,
    media: str | None = Query(
        None, max_length=MAX_ARCHIVE_GRANT, description="the grant POST /media-urls made"
    ),
) -> Response:
    if media is None:  # no grant is no credential: as every route without one answers
        raise Unauthorized("this download needs the media grant of a URL POST /media-urls made")
    principal, grant = await services(request).media_urls.open(media, ARCHIVE_PATH)
    request.state.principal = principal
    paths = archive.parse_paths(list(grant.paths))
    response = await _archive(request, principal, paths, name=grant.name)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def _archive(
    request: Request, principal: Principal, paths: list[str], *, name: str | None = None
) -> Response:
    svc = services(request)
    members = await archive.plan(svc.tree, paths)
    # Downloads are events (api/downloads.py): committed before the first byte goes out.
    await svc.tree.record_downloads([m.node for m in members], user=principal.name)
    single = paths[0] if len(paths) == 1 and paths[0] != ROOT else None
    stem = safe_component(single.rsplit("/", 1)[1]) if single else "assets"
    headers = {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name or stem + '.zip')}",
        "Content-Security-Policy": "sandbox",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }
    return StreamingResponse(
        archive.stream(svc.blobs, members), media_type="application/zip", headers=headers
    )
