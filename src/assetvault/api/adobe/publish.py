"""/adobe/assets/publish and /adobe/assets/unpublish: the publish state of assets (target
AEM_PUBLISH), which the published and unpublished events announce (docs/events.md,
"Publishing")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from assetvault.api.adobe.common import json_object, json_request, problems, write
from assetvault.api.deps import services
from assetvault.api.negotiation import JSON_TYPES, negotiate
from assetvault.api.responses import FastJSONResponse
from assetvault.auth.models import Principal
from assetvault.errors import InvalidInput
from assetvault.metadata.service import iso
from assetvault.relations.service import parse_urn
from assetvault.tree.models import Node

router = APIRouter(prefix="/adobe/assets", tags=["Assets"])


def _iso(value: datetime | None) -> str | None:
    return iso(value) if value is not None else None


def _published_view(node: Node) -> dict[str, Any]:
    return {
        "assetId": node.urn,
        "isPublishedToAemPublish": node.published,
        "lastPublishedToAemPublish": _iso(node.published_at),
    }


async def _publish(request: Request, principal: Principal, publish: bool) -> Response:
    negotiate(request, JSON_TYPES)
    body = await json_object(request)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    extra = sorted(set(body) - {"assets", "target"})
    if extra:
        raise InvalidInput(f"{extra[0]}: no such field; the fields are assets and target")
    assets = body.get("assets")
    if not isinstance(assets, list):
        raise InvalidInput("assets: an array of asset ids (urn:aaid:aem:...) is required")
    target = body.get("target", "AEM_PUBLISH")
    if not isinstance(target, str):
        raise InvalidInput("target must be AEM_PUBLISH or DYNAMIC_MEDIA")
    ids = [parse_urn(a, "assets: asset id") for a in assets]
    done = await services(request).assets.publish(
        ids, target=target, user=principal.name, publish=publish
    )
    return FastJSONResponse(
        {
            "target": target,
            "state": "COMPLETED",
            "assets": [_published_view(n) for n in done],
        }
    )


PUBLISH_ERRORS = problems(400, 401, 403, 404, 406, 413, 415)


@router.post(
    "/publish",
    operation_id="publishAssets",
    summary="Publish up to 10 assets to AEM_PUBLISH",
    responses=PUBLISH_ERRORS,
    openapi_extra=json_request("PublishRequest"),
)
async def publish_assets(request: Request, principal: Principal = Depends(write)) -> Response:
    return await _publish(request, principal, True)


@router.post(
    "/unpublish",
    operation_id="unpublishAssets",
    summary="Unpublish up to 10 assets from AEM_PUBLISH",
    responses=PUBLISH_ERRORS,
    openapi_extra=json_request("PublishRequest"),
)
async def unpublish_assets(request: Request, principal: Principal = Depends(write)) -> Response:
    return await _publish(request, principal, False)
