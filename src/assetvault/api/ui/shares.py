"""Share links: ``/share-links`` to make, list and revoke them (with a token), and
``/s/{secret}`` where a link is used (without one).

The link's secret is its only credential, and it is in the URL: every answer under
``/s/`` says ``Referrer-Policy: no-referrer`` (no page or binary hands the URL on to
another site), ``Cache-Control: no-store`` and ``X-Robots-Tag: noindex``. What a link
grants is read-only and narrow (docs/hostile-input.md, "Share links"): the shared asset's
original, web preview and thumbnail, or a shared folder's names, sizes and types and
the same three binaries of the assets below it. Binaries go out through the one download
path of every interface (api/binary.py, api/downloads.py): the same inline allow-list,
``Content-Security-Policy: sandbox`` attachments and ``nosniff``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from assetvault.api.adobe.common import problems
from assetvault.api.binary import original_response, rendition_response
from assetvault.api.body import json_body
from assetvault.api.deps import base_url, raw_path, require, services
from assetvault.api.downloads import counted
from assetvault.api.ui.routes import page
from assetvault.auth.models import Principal
from assetvault.errors import InvalidInput, NotFound
from assetvault.metadata.service import iso
from assetvault.shares.models import SharedTarget, ShareLink
from assetvault.tree.models import Node
from assetvault.tree.paths import decode_segments

# The renditions a link serves besides the original, by the names processing gives them.
THUMBNAIL = "cq5dam.thumbnail.319.319.png"
PREVIEWS = ("cq5dam.web.1280.1280.jpeg", "cq5dam.web.1280.1280.webp")
# A shared folder's page lists at most this many entries of one folder.
LIST_LIMIT = 1000
SHARE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}

manage = APIRouter(prefix="/share-links", tags=["Share links"])
public = APIRouter(prefix="/s", include_in_schema=False)


class ShareLinkRequest(BaseModel):
    target: str = Field(
        description="the path of an asset or folder below /content/dam, or an asset's URN"
    )
    expiresIn: int | None = Field(
        default=None,
        description="seconds until the link expires (default and most: the server's settings)",
    )


class ShareLinkItem(BaseModel):
    id: str
    kind: str | None = Field(description="asset or folder; null when it was deleted")
    path: str | None
    assetId: str | None = Field(description="the asset's URN, for a link to an asset")
    createdBy: str
    createdAt: str
    expiresAt: str
    revokedAt: str | None
    state: str = Field(description="active, expired or revoked")


class NewShareLinkItem(ShareLinkItem):
    url: str = Field(description="the link; its secret is shown this once and never again")


class ShareLinkList(BaseModel):
    items: list[ShareLinkItem]


def _item(link: ShareLink, node: Node | None) -> dict[str, Any]:
    return {
        "id": link.id,
        "kind": node.kind if node else None,
        "path": node.path if node else None,
        "assetId": node.urn if node and node.kind == "asset" else None,
        "createdBy": link.created_by,
        "createdAt": iso(link.created_at),
        "expiresAt": iso(link.expires_at),
        "revokedAt": iso(link.revoked_at) if link.revoked_at else None,
        "state": link.state(datetime.now(UTC)),
    }


write = require("write")


@manage.post(
    "",
    operation_id="createShareLink",
    summary="Create a read-only share link to an asset or a folder (an Assetvault extension)",
    status_code=201,
    response_model=NewShareLinkItem,
    responses=problems(400, 401, 403, 404, 413, 415),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ShareLinkRequest.model_json_schema()}},
        }
    },
)
async def create_share_link(request: Request, principal: Principal = Depends(write)) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    unknown = set(body) - {"target", "expiresIn"}
    if unknown:
        raise InvalidInput(f"unknown fields: {', '.join(sorted(unknown))}")
    target, expires_in = body.get("target"), body.get("expiresIn")
    if not isinstance(target, str) or not target:
        raise InvalidInput("target must be a path or an asset URN")
    if expires_in is not None and (isinstance(expires_in, bool) or not isinstance(expires_in, int)):
        raise InvalidInput("expiresIn must be a whole number of seconds")
    made = await services(request).shares.create(principal, target, expires_in=expires_in)
    item = {**_item(made.link, made.node), "url": f"{base_url(request)}/s/{made.secret}"}
    return JSONResponse(item, status_code=201, headers={"Cache-Control": "no-store"})


@manage.get(
    "",
    operation_id="listShareLinks",
    summary="List your share links (an admin's list holds everyone's)",
    response_model=ShareLinkList,
    responses=problems(401, 403),
)
async def list_share_links(request: Request, principal: Principal = Depends(write)) -> Response:
    found = await services(request).shares.list_links(principal)
    return JSONResponse({"items": [_item(link, node) for link, node in found]})


@manage.delete(
    "/{linkId}",
    operation_id="revokeShareLink",
    summary="Revoke a share link: it stops working at once, in every API process",
    status_code=204,
    responses=problems(401, 403, 404),
)
async def revoke_share_link(
    request: Request, linkId: str, principal: Principal = Depends(write)
) -> Response:
    await services(request).shares.revoke(principal, linkId)
    return Response(status_code=204)


# -- using a link ------------------------------------------------------------------------


def _segments(request: Request, secret: str, kind: str) -> list[str]:
    """The path below the shared folder, decoded once from the raw path (so ``%2e%2e``,
    an encoded slash or an empty segment is refused, never resolved)."""
    prefix = f"/s/{secret}/{kind}"
    raw = raw_path(request)
    rest = raw[len(prefix) :]
    if not raw.startswith(prefix) or (rest and not rest.startswith("/")):
        raise NotFound("no such page of a share link")
    return decode_segments(rest)


async def _open(request: Request, secret: str, kind: str) -> tuple[SharedTarget, Node]:
    shares = services(request).shares
    shared = await shares.open(secret)
    return shared, await shares.item(shared, _segments(request, secret, kind))


def _with_share_headers(response: Response) -> Response:
    response.headers.update(SHARE_HEADERS)
    return response


async def _counted(
    request: Request, response: Response, shared: SharedTarget, node: Node, rendition: str
) -> Response:
    # Downloads through a link are counted as the link's, not as anyone's account.
    request.state.principal = Principal(name=f"share-link {shared.link.id}", scope="read")
    return _with_share_headers(await counted(request, response, node, rendition))


@public.get("/{secret}")
async def share_page(request: Request, secret: str) -> HTMLResponse:
    # The page holds no data, whatever the secret: it asks /s/{secret}/info.
    response = await page(request, "share.html")
    response.headers.update(SHARE_HEADERS)
    return response


def _entry(node: Node) -> dict[str, Any]:
    title = node.properties.get("dc:title")
    return {
        "name": node.name,
        "kind": node.kind,
        "title": title if isinstance(title, str) else None,
        "size": node.size,
        "mimeType": node.mime_type,
        "modified": iso(node.modified_at),
        "processed": node.asset_state == "processed",
    }


@public.get("/{secret}/info{rest:path}")
async def share_info(request: Request, secret: str, rest: str) -> Response:
    shared, node = await _open(request, secret, "info")
    body: dict[str, Any] = {
        "kind": shared.node.kind,
        "expiresAt": iso(shared.link.expires_at),
        "name": shared.node.name,
        "item": _entry(node),
    }
    if node.kind == "folder":
        children, total = await services(request).shares.children(node, limit=LIST_LIMIT)
        body["children"] = [_entry(child) for child in children]
        body["total"] = total
    return _with_share_headers(JSONResponse(body))


async def _asset(request: Request, secret: str, kind: str) -> tuple[SharedTarget, Node]:
    shared, node = await _open(request, secret, kind)
    if node.kind != "asset":
        raise NotFound("a folder has no binary")
    return shared, node


@public.get("/{secret}/original{rest:path}")
async def share_original(request: Request, secret: str, rest: str) -> Response:
    shared, node = await _asset(request, secret, "original")
    # Always an attachment: a link's page offers downloads, it never shows the original.
    response = await original_response(
        request, services(request).blobs, node, filename=node.name, attachment=True
    )
    return await _counted(request, response, shared, node, "original")


async def _rendition(request: Request, secret: str, kind: str, names: tuple[str, ...]) -> Response:
    shared, node = await _asset(request, secret, kind)
    available = {r.name: r for r in await services(request).tree.renditions(node)}
    for name in names:
        if name in available:
            response = await rendition_response(request, services(request).blobs, available[name])
            return await _counted(request, response, shared, node, name)
    raise NotFound(f"{node.name} has no such rendition (it is {node.asset_state})")


@public.get("/{secret}/thumbnail{rest:path}")
async def share_thumbnail(request: Request, secret: str, rest: str) -> Response:
    return await _rendition(request, secret, "thumbnail", (THUMBNAIL,))


@public.get("/{secret}/preview{rest:path}")
async def share_preview(request: Request, secret: str, rest: str) -> Response:
    return await _rendition(request, secret, "preview", PREVIEWS)
