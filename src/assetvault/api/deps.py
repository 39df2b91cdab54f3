"""Dependencies shared by the interfaces: the service container and authentication."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Query, Request

from assetvault.auth.models import Principal, Scope
from assetvault.errors import Forbidden, Unauthorized
from assetvault.services import Services


def services(request: Request) -> Services:
    svc: Services = request.app.state.services  # set by create_app
    return svc


def _token_from(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer" and value:
        return value
    if scheme == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        # The token is the password; the user name is free (scripts put their own).
        return decoded.partition(":")[2] or None
    return None


async def authenticate(request: Request, needed: Scope, *, api_key: bool) -> Principal:
    svc = services(request)
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("credentials are required: Authorization: Bearer <token>")
    token = _token_from(header)
    principal = await svc.auth.verify(token) if token else None
    if principal is None:
        raise Unauthorized("the credentials are not valid")
    if api_key:
        key = request.headers.get("x-api-key", "")
        if not key:
            raise Forbidden("an X-Api-Key header is required")
        if svc.settings.api_keys and key not in svc.settings.api_keys:
            raise Forbidden("Api Key is invalid")
    if not principal.allows(needed):
        raise Forbidden(f"this token has the {principal.scope} scope; {needed} is needed")
    request.state.principal = principal
    return principal


def require(needed: Scope, *, api_key: bool = False) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that lets a request through with a token of at least ``needed``."""

    async def dependency(request: Request) -> Principal:
        return await authenticate(request, needed, api_key=api_key)

    return dependency


MEDIA_PARAM = Query(
    default=None,
    max_length=200,
    description="A media URL's grant, in place of the Authorization and X-Api-Key headers "
    "(POST /media-urls makes it; an Assetvault extension, docs/ui.md). It opens this path "
    "only, for reading, for a few minutes.",
)


def require_or_media(
    needed: Scope, *, api_key: bool = False
) -> Callable[..., Awaitable[Principal]]:
    """The dependency of the routes that send a binary: a token of at least ``needed``,
    or a ``media`` grant signed for this very raw path (auth/media_urls.py), which a
    ``<video>`` or ``<img>`` can carry where it cannot carry a header. A grant only ever
    reads (GET, HEAD); a request with both is judged by its grant."""

    async def dependency(request: Request, media: str | None = MEDIA_PARAM) -> Principal:
        if media is None:
            return await authenticate(request, needed, api_key=api_key)
        if needed != "read" or request.method not in ("GET", "HEAD"):
            raise Forbidden("a media URL only reads")
        principal, _ = await services(request).media_urls.open(media, raw_path(request))
        request.state.principal = principal
        request.state.media_url = True
        return principal

    return dependency


# Base URLs by what they are made of (scheme, the Host header, the server's address, the
# root path): Starlette builds a URL object for each request's (a twentieth of a classic
# listing's time), while a server answers under a handful of names. Bounded, since the
# Host header is the client's to choose.
_BASE_URLS: dict[tuple[Any, ...], str] = {}
_BASE_URLS_MAX = 256


def base_url(request: Request) -> str:
    configured = services(request).settings.public_url
    if configured:
        return configured.rstrip("/")
    scope = request.scope
    host = next((v for k, v in scope["headers"] if k == b"host"), None)
    key = (
        scope.get("scheme"),
        host,
        scope.get("server"),
        scope.get("app_root_path", scope.get("root_path", "")),
    )
    found = _BASE_URLS.get(key)
    if found is None:
        if len(_BASE_URLS) >= _BASE_URLS_MAX:
            _BASE_URLS.clear()
        found = _BASE_URLS[key] = str(request.base_url).rstrip("/")
    return found


def raw_path(request: Request) -> str:
    """The request path exactly as sent, still percent-encoded."""
    raw = request.scope.get("raw_path")
    text = raw.decode("latin-1") if raw else request.url.path
    return text.split("?", 1)[0]


def content_type(request: Request) -> str:
    """The request's media type, without parameters, lower-case ('' when absent)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()
