"""/adobe/assets: the Assets Author API (2025.04 and 2026.04), except search and import.

Asset ids are URNs used raw in the path (``/adobe/assets/urn:aaid:aem:<uuid>/metadata``).
Errors are application/problem+json. ETags on every GET/HEAD; PATCH needs If-Match.
"""

from __future__ import annotations

import hashlib
import json
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from assetvault import mediatypes
from assetvault.api.adobe.schemas import (
    JobResult,
    JobState,
    MetadataEnvelope,
    Problem,
    PublishRequest,
    RegistrationRequest,
    RelationList,
    RelationsCreate,
    RelationTypeList,
    RenditionList,
    VersionList,
)
from assetvault.api.binary import (
    binary_response,
    etag_matches,
    original_response,
    rendition_response,
)
from assetvault.api.body import json_body
from assetvault.api.deps import content_type, require, services
from assetvault.api.downloads import counted
from assetvault.api.negotiation import JSON_TYPES, negotiate
from assetvault.api.responses import FastJSONResponse
from assetvault.auth.models import Principal
from assetvault.errors import (
    InvalidInput,
    NotFound,
    PreconditionRequired,
    UnsupportedMediaType,
)
from assetvault.metadata.service import iso
from assetvault.relations.service import parse_urn
from assetvault.tree.models import AssetVersion, Node, Rendition
from assetvault.tree.paths import urn

router = APIRouter(prefix="/adobe/assets", tags=["Assets"])

WEB_RENDITIONS = {
    "image/webp": "cq5dam.web.1280.1280.webp",
    "image/jpeg": "cq5dam.web.1280.1280.jpeg",
}
PATCH_TYPE = "application/json-patch+json"


PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {
            "description": HTTPStatus(code).phrase,
            "content": {"application/problem+json": {"schema": PROBLEM_REF}},
        }
        for code in codes
    }


# Models the OpenAPI document refers to by name without a route declaring them.
EXTRA_SCHEMAS: list[type[BaseModel]] = [
    Problem,
    RelationsCreate,
    PublishRequest,
    RegistrationRequest,
]


READ_ERRORS = problems(400, 401, 403, 404, 406)
read = require("read", api_key=True)
write = require("write", api_key=True)
read_bearer = require("read")
write_bearer = require("write")


def json_response(
    request: Request, body: dict[str, Any], *, etag: str | None = None, status: int = 200
) -> Response:
    """A JSON body with a strong ETag (the node's, or a digest of the body), answering
    If-None-Match with 304."""
    negotiate(request, JSON_TYPES)
    if etag is None:
        digest = hashlib.sha1(json.dumps(body, sort_keys=True).encode(), usedforsecurity=False)
        etag = f'"{digest.hexdigest()[:20]}"'
    if request.method in ("GET", "HEAD") and etag_matches(
        request.headers.get("if-none-match"), etag
    ):
        return Response(status_code=304, headers={"ETag": etag})
    if request.method == "HEAD":
        return Response(status_code=status, headers={"ETag": etag}, media_type="application/json")
    return FastJSONResponse(body, status_code=status, headers={"ETag": etag})


async def asset_node(request: Request, asset_id: str) -> Node:
    node = await services(request).tree.find_by_id(parse_urn(asset_id))
    if node is None or node.kind != "asset":
        raise NotFound(f"asset {asset_id} does not exist")
    return node


def bool_param(value: str | None, name: str) -> bool:
    if value is None:
        return False
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise InvalidInput(f"{name} must be true, 1, false or 0")


# -- jobs ------------------------------------------------------------------------------


@router.get(
    "/jobs/{jobId}/status",
    operation_id="getJobStatus",
    summary="Get the status of an asynchronous job",
    response_model=JobState,
    responses={303: {"description": "Done; the result is at Location"}, **READ_ERRORS},
)
async def job_status(
    request: Request,
    jobId: str,
    _: Principal = Depends(read),
) -> Response:
    status = await services(request).assets.job_status(jobId)
    if status.done:
        negotiate(request, JSON_TYPES)
        return Response(status_code=303, headers={"Location": f"/adobe/assets/jobs/{jobId}/result"})
    response = json_response(request, {"jobId": jobId, "state": status.state})
    response.headers["Retry-After"] = "1"
    return response


@router.get(
    "/jobs/{jobId}/result",
    operation_id="getJobResult",
    summary="Get the result of a finished asynchronous job",
    response_model=JobResult,
    responses=READ_ERRORS,
)
async def job_result(
    request: Request,
    jobId: str,
    _: Principal = Depends(read),
) -> Response:
    status = await services(request).assets.job_status(jobId)
    if not status.done:
        raise NotFound(f"job {jobId} has no result yet; it is {status.state}")
    errors = []
    if status.error:
        errors.append(
            {
                "type": "about:blank",
                "title": "Job failed",
                "status": 500,
                "detail": status.error,
                "instance": f"/adobe/assets/jobs/{jobId}",
            }
        )
    return json_response(request, {"jobId": jobId, "state": status.state, "errors": errors})


# -- the asset ----------------------------------------------------------------------------


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
    return await counted(request, _rendition_response(request, rendition), node, rendition.name)


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


def _rendition_response(
    request: Request,
    rendition: Rendition,
    *,
    filename: str | None = None,
    attachment: bool = False,
) -> Response:
    negotiate(request, [mediatypes.servable(rendition.mime_type)])
    return rendition_response(
        request, services(request).blobs, rendition, filename=filename, attachment=attachment
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
    _: Principal = Depends(read),
) -> Response:
    node = await asset_node(request, assetId)
    negotiate(request, [mediatypes.servable(node.mime_type)])
    response = original_response(request, services(request).blobs, node, filename=seoName)
    return await counted(request, response, node, "original")


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
    _: Principal = Depends(read),
) -> Response:
    node = await asset_node(request, assetId)
    version = await services(request).tree.version(node, versionName)
    media_type = mediatypes.servable(version.mime_type)
    negotiate(request, [media_type])
    response = binary_response(
        request,
        services(request).blobs,
        key=version.blob_key,
        size=version.size,
        media_type=media_type,
        etag=f'"{version.sha1}"',
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
    _: Principal = Depends(read),
) -> Response:
    node = await asset_node(request, assetId)
    as_attachment = bool_param(attachment, "attachment")
    if renditionName == "original":
        negotiate(request, [mediatypes.servable(node.mime_type)])
        response = original_response(
            request, services(request).blobs, node, filename=seoName, attachment=as_attachment
        )
        return await counted(request, response, node, "original")
    found = {r.name: r for r in await services(request).tree.renditions(node)}
    if renditionName not in found:
        raise NotFound(f"asset {assetId} has no rendition {renditionName!r}")
    response = _rendition_response(
        request, found[renditionName], filename=seoName, attachment=as_attachment
    )
    return await counted(request, response, node, renditionName)


# -- metadata ---------------------------------------------------------------------------


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


# -- relations --------------------------------------------------------------------------


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
