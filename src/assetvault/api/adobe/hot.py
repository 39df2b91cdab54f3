"""The hottest route, answered before the general routing and dependency machinery.

GET and HEAD /adobe/assets/{assetId}/metadata are what AEM clients poll most. Matching
FastAPI's route table and solving its dependencies cost about a third of such a request
(profiled under load), so this ASGI middleware recognises the path first and calls the
very same endpoint functions with the same authentication; anything else, and every
other method on the path, goes to the router as before. Errors are answered by the same
error responder the app's exception handlers use.
"""

from __future__ import annotations

import logging
import re

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from assetvault.api.adobe import metadata
from assetvault.api.deps import authenticate
from assetvault.api.errors import error_response
from assetvault.errors import AssetvaultError

log = logging.getLogger("assetvault")

# As the router matches {assetId}: one decoded path segment, anything but "/".
METADATA = re.compile(r"^/adobe/assets/([^/]+)/metadata$")


class HotRoutes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        found = (
            METADATA.match(scope["path"])
            if scope["type"] == "http" and method in ("GET", "HEAD")
            else None
        )
        if found is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        asset_id = found.group(1)
        try:
            principal = await authenticate(request, "read", api_key=True)
            if method == "GET":
                response = await metadata.get_metadata(request, asset_id, principal)
            else:
                response = await metadata.head_metadata(request, asset_id, principal)
        except AssetvaultError as exc:
            response = error_response(request, exc.status, exc.detail)
        except Exception:
            log.exception("unhandled error on %s %s", method, request.url.path)
            response = error_response(request, 500, "the server failed to handle the request")
        await response(scope, receive, send)
