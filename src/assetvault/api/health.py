"""GET /health: 200 once the server can answer (database reachable)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from assetvault.api.deps import services

router = APIRouter()


@router.get("/health", include_in_schema=False)
async def health(request: Request) -> JSONResponse:
    await services(request).db.ping()
    return JSONResponse({"status": "ok"})


# Constant: the process answers, whatever the database does (a liveness probe; also the
# reference the benchmarks measure the other routes against).
LIVE = b'{"status":"live"}'


@router.get("/health/live", include_in_schema=False)
async def live() -> Response:
    return Response(LIVE, media_type="application/json")
