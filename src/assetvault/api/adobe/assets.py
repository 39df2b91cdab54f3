"""/adobe/assets/{assetId}: the asset itself: its web-optimized binary, its original, and
its deletion."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from assetvault import mediatypes
from assetvault.api.adobe.common import (
    READ_ERRORS,
    asset_node,
    bool_param,
    problems,
    read,
    read_binary,
    write,
)
from assetvault.api.adobe.renditions import serve_rendition
from assetvault.api.adobe.schemas import JobState
from assetvault.api.binary import original_response
from assetvault.api.deps import services
from assetvault.api.downloads import counted
from assetvault.api.negotiation import JSON_TYPES, negotiate
from assetvault.auth.models import Principal
from assetvault.errors import NotFound
from assetvault.relations.service import parse_urn

router = APIRouter(prefix="/adobe/assets", tags=["Assets"])

WEB_RENDITIONS = {
    "image/webp": "cq5dam.web.1280.1280.webp",
    "image/jpeg": "cq5dam.web.1280.1280.jpeg",
}


@router.get(
    "/{assetId}",
    operation_id="getAsset",
    summary="Get the web-optimized binary of an asset",
    responses={
        200: {
            "content": {"image/webp": {}, "image/jpeg": {}},
            "description": "Web-optimized version of the asset",
        },
        304: {"description": "Not Modified"},
        **READ_ERRORS,
    },
)
async def get_asset(
    request: Request,
    assetId: str,
    _: Principal = Depends(read),
) -> Response:
    node = await asset_node(request, assetId)
    svc = services(request)
    available = {r.name: r for r in await svc.tree.renditions(node)}
    offered = [mime for mime, name in WEB_RENDITIONS.items() if name in available]
    if not offered:
        raise NotFound(f"asset {assetId} has no web-optimized rendition (it is {node.asset_state})")
    rendition = available[WEB_RENDITIONS[negotiate(request, offered)]]
    return await counted(request, await serve_rendition(request, rendition), node, rendition.name)


@router.delete(
    "/{assetId}",
    operation_id="deleteAsset",
    summary="Delete an asset",
    status_code=204,
    responses={
        202: {"model": JobState, "description": "Deletion continues as a job"},
        **problems(409),
        **READ_ERRORS,
    },
)
async def delete_asset(
    request: Request,
    assetId: str,
    force: str | None = Query(default=None, description="delete even if referenced"),
    principal: Principal = Depends(write),
) -> Response:
    node_id = parse_urn(assetId)
    negotiate(request, JSON_TYPES)  # a 202 answers with a JSON job document
    job_id = await services(request).assets.delete(
        node_id, force=bool_param(force, "force"), user=principal.name
    )
    if job_id is None:
        return Response(status_code=204)
    return JSONResponse(
        {"jobId": job_id, "state": "PROCESSING"},
        status_code=202,
        headers={"Location": f"/adobe/assets/jobs/{job_id}/status", "Retry-After": "1"},
    )


@router.get(
    "/{assetId}/original/as/{seoName}",
    operation_id="getAssetOriginal",
    summary="Get the original binary of an asset",
    responses={
        200: {
            "content": {"application/octet-stream": {}},
            "description": "The original, as uploaded",
        },
        304: {"description": "Not Modified"},
        **READ_ERRORS,
    },
)
async def get_original(
    request: Request,
    assetId: str,
    seoName: str,
    _: Principal = Depends(read_binary),
) -> Response:
    node = await asset_node(request, assetId)
    negotiate(request, [mediatypes.servable(node.mime_type)])
    response = await original_response(request, services(request).blobs, node, filename=seoName)
    return await counted(request, response, node, "original")
