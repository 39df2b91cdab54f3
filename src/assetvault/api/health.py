"""GET /health: 200 once the server can answer (database reachable)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from assetvault.api.deps import services

router = APIRouter()


@router.get("/health", include_in_schema=False)
async def health(request: Request) -> JSONResponse:
    async with services(request).db.read() as conn:
        await conn.execute(text("SELECT 1"))
    return JSONResponse({"status": "ok"})
