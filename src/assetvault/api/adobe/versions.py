"""/adobe/assets/{assetId}/versions: the kept versions of an asset (an Assetvault
extension of the Author API)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from assetvault import mediatypes
from assetvault.api.adobe.common import (
    READ_ERRORS,
    asset_node,
    bool_param,
    json_response,
    problems,
    read,
    read_binary,
    write,
)
from assetvault.api.adobe.schemas import VersionList
from assetvault.api.binary import binary_response
from assetvault.api.deps import services
from assetvault.api.downloads import counted
from assetvault.api.negotiation import JSON_TYPES, negotiate
from assetvault.auth.models import Principal
from assetvault.metadata.service import iso
from assetvault.relations.service import parse_urn
from assetvault.tree.models import AssetVersion, Node

router = APIRouter(prefix="/adobe/assets", tags=["Assets"])


@router.get(
    "/{assetId}/versions",
    operation_id="getAssetVersions",
    summary="List the versions of an asset (an Assetvault extension)",
    description="The kept versions, oldest first, then the current original marked "
    '"current": true. Not an AEM operation; see docs/author-api.md.',
    response_model=VersionList,
    responses={304: {"description": "Not Modified"}, **READ_ERRORS},
)
async def list_versions(
    request: Request,
    assetId: str,
    _: Principal = Depends(read),
) -> Response:
    node = await asset_node(request, assetId)
    return json_response(request, await _versions_body(request, node))


async def _versions_body(request: Request, node: Node) -> dict[str, Any]:
    items = [_version_item(v) for v in await services(request).tree.versions(node)]
    # The current original is no version row; Assetvault does not record when the
    # original alone changed, so its date and user are the asset's last modification.
    items.append(
        {
            "name": "current",
            "label": None,
            "comment": None,
            "size": node.size,
            "sha1": node.sha1,
            "mimeType": node.mime_type,
            "created": iso(node.modified_at),
            "createdBy": node.modified_by,
            "current": True,
        }
    )
    return {"assetId": node.urn, "items": items}


@router.get(
    "/{assetId}/versions/{versionName}/as/{seoName}",
    operation_id="getAssetVersionBinary",
    summary="Get the binary of a kept version (an Assetvault extension)",
    description="The original as it was when the version was kept, with byte ranges and "
    "the same sandboxing as the original. Not an AEM operation; see docs/author-api.md.",
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The binary"},
        206: {"description": "Partial Content"},
        304: {"description": "Not Modified"},
        **READ_ERRORS,
    },
)
async def get_version_binary(
    request: Request,
    assetId: str,
    versionName: str,
    seoName: str,
    attachment: str | None = Query(default=None, pattern="^(true|false|1|0)$"),
    _: Principal = Depends(read_binary),
) -> Response:
    node = await asset_node(request, assetId)
    version = await services(request).tree.version(node, versionName)
    media_type = mediatypes.servable(version.mime_type)
    negotiate(request, [media_type])
    response = await binary_response(
        request,
        services(request).blobs,
        key=version.blob_key,
        size=version.size,
        media_type=media_type,
        etag=f'"{version.sha1 or version.blob_key}"',
        last_modified=version.created_at,
        filename=seoName,
        attachment=bool_param(attachment, "attachment"),
    )
    return await counted(request, response, node, f"version/{version.name}")


@router.post(
    "/{assetId}/versions/{versionName}/restore",
    operation_id="restoreAssetVersion",
    summary="Make a kept version the current original (an Assetvault extension)",
    description="The current original is kept as a new version first, so no history is "
    "lost; the asset keeps its id and is processed again. An optional If-Match must be "
    "the asset's ETag. Answers the versions after the restore. Not an AEM operation; see "
    "docs/author-api.md.",
    response_model=VersionList,
    responses={**problems(412), **READ_ERRORS},
)
async def restore_version(
    request: Request,
    assetId: str,
    versionName: str,
    if_match: str | None = Header(default=None, alias="If-Match"),
    principal: Principal = Depends(write),
) -> Response:
    negotiate(request, JSON_TYPES)
    node_id = parse_urn(assetId)
    node = await services(request).tree.restore_version(
        node_id, versionName, user=principal.name, if_match=if_match
    )
    return json_response(request, await _versions_body(request, node))


def _version_item(version: AssetVersion) -> dict[str, Any]:
    return {
        "name": version.name,
        "label": version.label,
        "comment": version.comment,
        "size": version.size,
        "sha1": version.sha1,
        "mimeType": version.mime_type,
        "created": iso(version.created_at),
        "createdBy": version.created_by,
        "current": False,
    }
