"""GET /health: 200 once the server can answer (database reachable)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from assetvault.api.deps import services

router = APIRouter()


@router.get("/health", include_in_schema=False)
async def health(request: Request) -> JSONResponse:
    await services(request).db.ping()
    return JSONResponse({"status": "ok"})
