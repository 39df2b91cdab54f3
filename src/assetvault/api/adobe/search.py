"""POST /adobe/assets/search: asset search of the Author API. A JSON body is a search
request; a multipart body carries a PDF whose text becomes the full-text query
("enhanced search"), with an optional ``request`` part holding the rest as JSON."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from assetvault.api.adobe.common import bool_param, problems, read
from assetvault.api.body import json_body, parse_json, read_body, replayed
from assetvault.api.deps import content_type, services
from assetvault.api.negotiation import JSON_TYPES, negotiate
from assetvault.api.responses import FastJSONResponse
from assetvault.auth.models import Principal
from assetvault.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from assetvault.search.query import And, parse_request

router = APIRouter(prefix="/adobe/assets", tags=["Search"])

FORM_OVERHEAD = 1 << 20  # room for the request part and multipart framing

_NODE = {"type": "object", "minProperties": 1, "maxProperties": 1}
REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["query"],
    "properties": {
        "query": {"type": "array", "minItems": 1, "maxItems": 5, "items": _NODE},
        "sort": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field"],
                "properties": {
                    "field": {"type": "string"},
                    "order": {"type": "string", "enum": ["ASC", "DESC"]},
                },
            },
        },
        "orderBy": {"type": "string"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 50},
        "cursor": {"type": "string", "minLength": 1},
        "projectedFields": {
            "type": "object",
            "properties": {
                "includes": {"type": "array", "items": {"type": "string"}},
                "excludes": {"type": "array", "items": {"type": "string"}},
            },
        },
        "facets": {"type": "array", "maxItems": 2, "items": {"type": "object"}},
    },
}


async def _multipart(request: Request) -> tuple[Any, bytes]:
    """The JSON request (if a ``request`` part is sent) and the PDF's bytes."""
    limit = services(request).settings.search_pdf_max_bytes
    body = await read_body(request, limit + FORM_OVERHEAD)
    try:
        form = await replayed(request, body).form(max_files=1, max_fields=4)
    except Exception as exc:  # the multipart parser's own errors: a malformed body
        raise InvalidInput(f"the multipart body could not be read: {exc}") from exc
    files = [v for v in form.values() if isinstance(v, UploadFile)]
    if not files:
        raise InvalidInput("send the PDF as a file part of the multipart body")
    data = await files[0].read()
    if len(data) > limit:
        raise PayloadTooLarge(f"the PDF is larger than {limit} bytes")
    part = form.get("request")
    if part is None:
        return {"query": [{"match": {"text": "*"}}]}, data
    if not isinstance(part, str):
        raise InvalidInput("the request part must be JSON text, not a file")
    return await parse_json(request, part, "the request part"), data


@router.post(
    "/search",
    operation_id="search",
    summary="Search for assets based on specified criteria",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": REQUEST_SCHEMA},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "request": {"type": "string"},
                        },
                    }
                },
            },
        }
    },
    responses={
        200: {"description": "Asset Search Response"},
        **problems(400, 401, 403, 406, 413, 415),
    },
)
async def search(
    request: Request,
    allow_unsafe: str | None = Query(default=None, alias="allowUnsafeSearch"),
    allow_unindexed: str | None = Query(default=None, alias="allowUnindexedSearch"),
    _: Principal = Depends(read),
) -> Response:
    negotiate(request, JSON_TYPES)
    if allow_unindexed is not None:
        allowed = bool_param(allow_unindexed, "allowUnindexedSearch")
    else:
        allowed = bool_param(allow_unsafe, "allowUnsafeSearch")
    if not allowed:
        raise InvalidInput(
            "allowUnsafeSearch=true is required (or allowUnindexedSearch=true): "
            "properties are not checked for being indexed"
        )
    svc = services(request)
    ctype = content_type(request)
    if ctype == "multipart/form-data":
        body, pdf = await _multipart(request)
        parsed = parse_request(body)
        match = await svc.search.pdf_query(pdf)
        parsed = replace(parsed, query=And((*parsed.query.children, match)))
    elif ctype in ("application/json", ""):
        parsed = parse_request(await json_body(request))
    else:
        raise UnsupportedMediaType(
            f"send application/json, or multipart/form-data with a PDF; not {ctype}"
        )
    return FastJSONResponse(await svc.search.search(parsed))
