"""The hottest routes, answered before the general routing and dependency machinery.

GET and HEAD /adobe/assets/{assetId}/metadata are what AEM clients poll most, PATCH on the
same path is how they write, and GET /api/assets/<path>.json is the classic API's listing
and asset view. Matching FastAPI's route table (the classic API's catch-all route comes
last, after every other) and solving its dependencies cost a third of such a request
(profiled under load), so this ASGI middleware recognises these paths first and calls the
very same endpoint functions with the same authentication; anything else, and every
other method on these paths, goes to the router as before. Domain errors are answered by
the same error responder the app's exception handlers use; anything else is raised to
the same handlers as from the router (a full disk is still a 507, a defect a 500).
"""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from assetvault.api.adobe import metadata
from assetvault.api.classic import routes as classic
from assetvault.api.classic.siren import API_ROOT
from assetvault.api.deps import authenticate
from assetvault.api.errors import error_response, http_error_response
from assetvault.errors import AssetvaultError

# As the router matches {assetId}: one decoded path segment, anything but "/".
METADATA = re.compile(r"^/adobe/assets/([^/]+)/metadata$")


async def _metadata(request: Request, method: str, asset_id: str) -> Response:
    if method == "PATCH":
        principal = await authenticate(request, "write", api_key=True)
        if_match = request.headers.get("if-match")
        return await metadata.patch_metadata(request, asset_id, if_match, principal)
    principal = await authenticate(request, "read", api_key=True)
    if method == "GET":
        return await metadata.get_metadata(request, asset_id, principal)
    return await metadata.head_metadata(request, asset_id, principal)


class HotRoutes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        found = METADATA.match(path) if method in ("GET", "HEAD", "PATCH") else None
        # The classic API's JSON views (binaries and writes go through the router).
        listing = (
            found is None
            and method in ("GET", "HEAD")
            and path.startswith(API_ROOT)
            and path.endswith(".json")
        )
        if found is None and not listing:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            if found is not None:
                response = await _metadata(request, method, found.group(1))
            else:
                response = await classic.classic(request)
        except AssetvaultError as exc:
            response = error_response(request, exc.status, exc.detail)
        except HTTPException as exc:
            response = http_error_response(request, exc)
        await response(scope, receive, send)
