"""What the Author API's resource modules share: the problem responses of the OpenAPI
document, the guards, JSON request bodies read by a route itself, JSON answers with
ETags, and the parsing of an asset id and of a boolean parameter."""

from __future__ import annotations

import hashlib
import json
from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from assetvault.api.binary import etag_matches
from assetvault.api.body import json_body
from assetvault.api.deps import content_type, require, require_or_media, services
from assetvault.api.negotiation import JSON_TYPES, negotiate
from assetvault.api.responses import FastJSONResponse
from assetvault.errors import InvalidInput, NotFound, UnsupportedMediaType
from assetvault.relations.service import parse_urn
from assetvault.tree.models import Node

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


READ_ERRORS = problems(400, 401, 403, 404, 406)
read = require("read", api_key=True)
write = require("write", api_key=True)
read_bearer = require("read")
# The routes that send a binary: a token, or a media URL's grant for the path.
read_binary = require_or_media("read", api_key=True)
write_bearer = require("write")


def json_request(schema: str, media_type: str = "application/json") -> dict[str, Any]:
    """The request body of a route that reads its JSON itself (api/body.py), for the
    OpenAPI document."""
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"requestBody": {"required": True, "content": {media_type: {"schema": ref}}}}


async def json_object(request: Request) -> Any:
    """The request's JSON body, read through the one bounded reader; 415 unless it is
    sent as application/json."""
    ctype = content_type(request)
    if ctype != "application/json":
        raise UnsupportedMediaType(f"send application/json, not {ctype or 'nothing'}")
    return await json_body(request)


def json_response(
    request: Request,
    body: dict[str, Any],
    *,
    etag: str | None = None,
    status: int = 200,
    types: list[str] = JSON_TYPES,
) -> Response:
    """A JSON body with a strong ETag (the node's, or a digest of the body), answering
    If-None-Match with 304; ``types``: the JSON media types offered, the first preferred."""
    media_type = negotiate(request, types)
    if etag is None:
        digest = hashlib.sha1(json.dumps(body, sort_keys=True).encode(), usedforsecurity=False)
        etag = f'"{digest.hexdigest()[:20]}"'
    if request.method in ("GET", "HEAD") and etag_matches(
        request.headers.get("if-none-match"), etag
    ):
        return Response(status_code=304, headers={"ETag": etag})
    if request.method == "HEAD":
        return Response(status_code=status, headers={"ETag": etag}, media_type=media_type)
    return FastJSONResponse(body, status_code=status, headers={"ETag": etag}, media_type=media_type)


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
