"""/adobe/assets/{assetId}/metadata: read an asset's metadata (GET, HEAD) and change it
with a JSON Patch under If-Match."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response

from assetvault.api.adobe.common import (
    PATCH_TYPE,
    READ_ERRORS,
    asset_node,
    json_response,
    problems,
    read,
    write,
)
from assetvault.api.adobe.schemas import MetadataEnvelope
from assetvault.api.body import json_body
from assetvault.api.deps import content_type, services
from assetvault.api.negotiation import JSON_TYPES, negotiate
from assetvault.api.responses import FastJSONResponse
from assetvault.auth.models import Principal
from assetvault.errors import PreconditionRequired, UnsupportedMediaType
from assetvault.relations.service import parse_urn

router = APIRouter(prefix="/adobe/assets", tags=["Assets"])


@router.get(
    "/{assetId}/metadata",
    operation_id="getAssetMetadata",
    summary="Get the metadata of an asset",
    response_model=MetadataEnvelope,
    responses={304: {"description": "Not Modified"}, **READ_ERRORS},
)
async def get_metadata(request: Request, assetId: str, _: Principal = Depends(read)) -> Response:
    node, body = await services(request).metadata.asset_envelope(parse_urn(assetId))
    return json_response(request, body, etag=node.etag)


@router.head(
    "/{assetId}/metadata",
    operation_id="headAssetMetadata",
    summary="Check an asset's metadata and get its ETag",
    responses={
        200: {"description": "The metadata exists; its ETag is in the headers"},
        304: {"description": "Not Modified"},
        **READ_ERRORS,
    },
)
async def head_metadata(request: Request, assetId: str, _: Principal = Depends(read)) -> Response:
    node = await asset_node(request, assetId)
    return json_response(request, {}, etag=node.etag)


@router.patch(
    "/{assetId}/metadata",
    operation_id="patchAssetMetadata",
    summary="Update the assetMetadata of an asset with a JSON Patch",
    response_model=MetadataEnvelope,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                PATCH_TYPE: {
                    "schema": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["op", "path"],
                            "properties": {
                                "op": {"type": "string"},
                                "path": {"type": "string"},
                                "from": {"type": "string"},
                                "value": {},
                            },
                        },
                    }
                }
            },
        }
    },
    responses=problems(400, 401, 403, 404, 406, 409, 412, 413, 415, 428),
)
async def patch_metadata(
    request: Request,
    assetId: str,
    if_match: str | None = Header(default=None, alias="If-Match"),
    principal: Principal = Depends(write),
) -> Response:
    node_id = parse_urn(assetId)
    ctype = content_type(request)
    if ctype != PATCH_TYPE:
        raise UnsupportedMediaType(f"send the patch as {PATCH_TYPE}, not {ctype or 'nothing'}")
    negotiate(request, JSON_TYPES)
    if not if_match:
        raise PreconditionRequired("If-Match is required: send the ETag you read, or *")
    operations = await json_body(request)
    node, body = await services(request).metadata.patch(
        node_id, operations, if_match=if_match, user=principal.name
    )
    return FastJSONResponse(body, headers={"ETag": node.etag})
