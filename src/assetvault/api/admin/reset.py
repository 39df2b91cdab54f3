"""``POST /_assetvault/reset``: back to an empty DAM (docs/ci.md, "Snapshots and
reset"). Admin scope."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, StrictBool

from assetvault.api.admin.wire import Wire, parsed
from assetvault.api.adobe.common import problems
from assetvault.api.deps import require, services

router = APIRouter(prefix="/_assetvault", tags=["admin"], dependencies=[Depends(require("admin"))])


class ResetRequest(Wire):
    model_config = ConfigDict(extra="forbid")

    keepTokens: StrictBool = True
    keepRegistrations: StrictBool = False


@router.post(
    "/reset",
    openapi_extra=ResetRequest.openapi(),
    responses=problems(400, 401, 403, 413, 415, 501, 503),
)
async def reset(request: Request) -> JSONResponse:
    wanted = await parsed(request, ResetRequest)
    outcome = await services(request).snapshots.reset(
        keep_tokens=wanted.keepTokens, keep_registrations=wanted.keepRegistrations
    )
    return JSONResponse(outcome.as_json())
