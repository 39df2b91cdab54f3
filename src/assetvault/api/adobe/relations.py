"""/adobe/assets/{assetId}/relations and /relationTypes: an asset's relations to other
assets, listed, made and removed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from assetvault.api.adobe.common import json_response, problems, read_bearer, write_bearer
from assetvault.api.adobe.schemas import RelationList, RelationTypeList
from assetvault.api.body import json_body
from assetvault.api.deps import content_type, services
from assetvault.api.negotiation import JSON_TYPES, negotiate
from assetvault.auth.models import Principal
from assetvault.errors import InvalidInput, UnsupportedMediaType
from assetvault.relations.service import parse_urn
from assetvault.tree.paths import urn

router = APIRouter(prefix="/adobe/assets", tags=["Assets"])


def _relations_body(items: list[Any], cursor: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "items": [
            {"relationType": r.relation_type, "relatedAssetId": urn(r.related_id)} for r in items
        ]
    }
    if cursor:
        body["cursor"] = cursor
    return body


def _types_param(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names or len(set(names)) != len(names):
        raise InvalidInput("relationTypes must be a comma-separated list of distinct names")
    return names


@router.get(
    "/{assetId}/relations",
    operation_id="getAssetRelations",
    summary="List the relations of an asset",
    response_model=RelationList,
    response_model_exclude_none=True,
    responses={304: {"description": "Not Modified"}, **problems(400, 401, 404, 406)},
)
async def list_relations(
    request: Request,
    assetId: str,
    limit: int | None = Query(default=None, ge=1, le=50),
    cursor: str | None = Query(default=None, min_length=1),
    relationTypes: str | None = Query(default=None),
    _: Principal = Depends(read_bearer),
) -> Response:
    items, more = await services(request).relations.list(
        parse_urn(assetId), types=_types_param(relationTypes), limit=limit, cursor=cursor
    )
    return json_response(request, _relations_body(items, more))


@router.post(
    "/{assetId}/relations",
    operation_id="createAssetRelations",
    summary="Relate an asset to other assets",
    status_code=204,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/RelationsCreate"}}
            },
        }
    },
    responses=problems(400, 401, 403, 404, 406, 413, 415),
)
async def create_relations(
    request: Request,
    assetId: str,
    principal: Principal = Depends(write_bearer),
) -> Response:
    node_id = parse_urn(assetId)
    negotiate(request, JSON_TYPES)
    ctype = content_type(request)
    if ctype != "application/json":
        raise UnsupportedMediaType(
            f"send the relations as application/json, not {ctype or 'nothing'}"
        )
    body = await json_body(request)
    if not isinstance(body, dict) or set(body) != {"items"}:
        raise InvalidInput('the body must be an object with only "items"')
    await services(request).relations.add(node_id, body["items"], user=principal.name)
    return Response(status_code=204)


@router.get(
    "/{assetId}/relations/{relationType}",
    operation_id="getAssetRelationsByType",
    summary="List the relations of an asset of one type",
    response_model=RelationList,
    response_model_exclude_none=True,
    responses={304: {"description": "Not Modified"}, **problems(400, 401, 404, 406)},
)
async def list_relations_of_type(
    request: Request,
    assetId: str,
    relationType: str,
    limit: int | None = Query(default=None, ge=1, le=50),
    cursor: str | None = Query(default=None, min_length=1),
    _: Principal = Depends(read_bearer),
) -> Response:
    items, more = await services(request).relations.list(
        parse_urn(assetId), types=[relationType], limit=limit, cursor=cursor
    )
    return json_response(request, _relations_body(items, more))


@router.delete(
    "/{assetId}/relations/{relationType}",
    operation_id="deleteAssetRelationsByType",
    summary="Delete all relations of one type",
    status_code=204,
    responses=problems(400, 401, 403, 404, 406),
)
async def delete_relations_of_type(
    request: Request,
    assetId: str,
    relationType: str,
    principal: Principal = Depends(write_bearer),
) -> Response:
    negotiate(request, JSON_TYPES)
    await services(request).relations.remove(parse_urn(assetId), relationType, user=principal.name)
    return Response(status_code=204)


@router.delete(
    "/{assetId}/relations/{relationType}/{relatedAssetId}",
    operation_id="deleteAssetRelation",
    summary="Delete one relation",
    status_code=204,
    responses=problems(400, 401, 403, 404, 406),
)
async def delete_relation(
    request: Request,
    assetId: str,
    relationType: str,
    relatedAssetId: str,
    principal: Principal = Depends(write_bearer),
) -> Response:
    negotiate(request, JSON_TYPES)
    await services(request).relations.remove(
        parse_urn(assetId),
        relationType,
        parse_urn(relatedAssetId, "relatedAssetId"),
        user=principal.name,
    )
    return Response(status_code=204)


@router.get(
    "/{assetId}/relationTypes",
    operation_id="getAssetRelationTypes",
    summary="List the relation types an asset has",
    response_model=RelationTypeList,
    response_model_exclude_none=True,
    responses={304: {"description": "Not Modified"}, **problems(400, 401, 404, 406)},
)
async def relation_types(
    request: Request,
    assetId: str,
    limit: int | None = Query(default=None, ge=1, le=50),
    cursor: str | None = Query(default=None, min_length=1),
    _: Principal = Depends(read_bearer),
) -> Response:
    names, more = await services(request).relations.types(
        parse_urn(assetId), limit=limit, cursor=cursor
    )
    body: dict[str, Any] = {"items": names}
    if more:
        body["cursor"] = more
    return json_response(request, body)
