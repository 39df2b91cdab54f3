"""/adobe/assets/{assetId}/versions: the kept versions of an asset (an Assetvault
extension of the Author API)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from assetvault.api.adobe.common import READ_ERRORS, asset_node, json_response, read
from assetvault.api.adobe.schemas import VersionList
from assetvault.api.deps import services
from assetvault.auth.models import Principal
from assetvault.metadata.service import iso
from assetvault.tree.models import AssetVersion

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
    return json_response(request, {"assetId": node.urn, "items": items})


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
