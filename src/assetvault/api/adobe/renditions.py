"""/adobe/assets/{assetId}/renditions: the list of an asset's renditions and each
rendition's binary."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from assetvault import mediatypes
from assetvault.api.adobe.common import (
    READ_ERRORS,
    asset_node,
    bool_param,
    json_response,
    read_bearer,
    read_binary,
)
from assetvault.api.adobe.schemas import RenditionList
from assetvault.api.binary import original_response, rendition_response
from assetvault.api.deps import services
from assetvault.api.downloads import counted
from assetvault.api.negotiation import negotiate
from assetvault.auth.models import Principal
from assetvault.errors import NotFound
from assetvault.tree.models import Rendition

router = APIRouter(prefix="/adobe/assets", tags=["Assets"])


async def serve_rendition(
    request: Request,
    rendition: Rendition,
    *,
    filename: str | None = None,
    attachment: bool = False,
) -> Response:
    negotiate(request, [mediatypes.servable(rendition.mime_type)])
    return await rendition_response(
        request, services(request).blobs, rendition, filename=filename, attachment=attachment
    )


@router.get(
    "/{assetId}/renditions",
    operation_id="getAssetRenditions",
    summary="List the renditions of an asset",
    response_model=RenditionList,
    responses={304: {"description": "Not Modified"}, **READ_ERRORS},
)
async def list_renditions(
    request: Request,
    assetId: str,
    _: Principal = Depends(read_bearer),
) -> Response:
    node = await asset_node(request, assetId)
    items = [
        {
            "name": "original",
            "format": node.mime_type,
            "size": node.size,
            "dimensions": _dimensions(
                node.extracted.get("tiff:ImageWidth"), node.extracted.get("tiff:ImageLength")
            ),
        }
    ]
    for r in await services(request).tree.renditions(node):
        items.append(
            {
                "name": r.name,
                "format": r.mime_type,
                "size": r.size,
                "dimensions": _dimensions(r.width, r.height),
            }
        )
    return json_response(
        request, {"assetId": node.urn, "repo:name": node.name, "items": items}, etag=node.etag
    )


def _dimensions(width: Any, height: Any) -> dict[str, int] | None:
    if isinstance(width, int) and isinstance(height, int):
        return {"width": width, "height": height}
    return None


@router.get(
    "/{assetId}/renditions/{renditionName}/as/{seoName}",
    operation_id="getAssetRendition",
    summary="Get a rendition of an asset",
    responses={
        200: {
            "content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}},
            "description": "The rendition",
        },
        304: {"description": "Not Modified"},
        **READ_ERRORS,
    },
)
async def get_rendition(
    request: Request,
    assetId: str,
    renditionName: str,
    seoName: str,
    attachment: str | None = Query(default=None, pattern="^(true|false|1|0)$"),
    _: Principal = Depends(read_binary),
) -> Response:
    node = await asset_node(request, assetId)
    as_attachment = bool_param(attachment, "attachment")
    if renditionName == "original":
        negotiate(request, [mediatypes.servable(node.mime_type)])
        response = await original_response(
            request, services(request).blobs, node, filename=seoName, attachment=as_attachment
        )
        return await counted(request, response, node, "original")
    found = {r.name: r for r in await services(request).tree.renditions(node)}
    if renditionName not in found:
        raise NotFound(f"asset {assetId} has no rendition {renditionName!r}")
    response = await serve_rendition(
        request, found[renditionName], filename=seoName, attachment=as_attachment
    )
    return await counted(request, response, node, renditionName)
