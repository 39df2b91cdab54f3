"""``POST /_assetvault/reset``: back to an empty DAM (docs/ci.md, "Snapshots and
reset"). Admin scope."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from assetvault.api.deps import require, services

router = APIRouter(prefix="/_assetvault", tags=["admin"], dependencies=[Depends(require("admin"))])


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keepTokens: bool = True
    keepRegistrations: bool = False


@router.post("/reset")
async def reset(request: Request, body: ResetRequest | None = None) -> JSONResponse:
    wanted = body or ResetRequest()
    outcome = await services(request).snapshots.reset(
        keep_tokens=wanted.keepTokens, keep_registrations=wanted.keepRegistrations
    )
    return JSONResponse(outcome.as_json())
