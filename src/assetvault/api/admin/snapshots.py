"""``/_assetvault/snapshots``: save, list, restore and delete snapshots of a running
server, and send or receive one as a tar file (docs/ci.md, "Snapshots and reset").
Admin scope."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ConfigDict, Field

from assetvault.api.admin.wire import Wire, parsed
from assetvault.api.adobe.common import problems
from assetvault.api.deps import require, services

router = APIRouter(
    prefix="/_assetvault/snapshots",
    tags=["admin"],
    dependencies=[Depends(require("admin"))],
)


class SaveRequest(Wire):
    model_config = ConfigDict(extra="forbid")

    # A name (kept in the data directory) or a file path on the server (.tar / .avsnap).
    name: Annotated[str, Field(min_length=1, max_length=4096)]


class RestoreRequest(Wire):
    model_config = ConfigDict(extra="forbid")

    # A snapshot file on the server to restore instead of a named one ("file" as name).
    file: Annotated[str | None, Field(default=None, min_length=1, max_length=4096)] = None


@router.get("", responses=problems(401, 403, 501))
async def list_snapshots(request: Request) -> JSONResponse:
    found = [info.as_json() for info in services(request).snapshots.list()]
    return JSONResponse({"snapshots": found})


@router.post(
    "",
    status_code=201,
    openapi_extra=SaveRequest.openapi(),
    responses=problems(400, 401, 403, 409, 413, 415, 501, 503),
)
async def save(request: Request) -> JSONResponse:
    body = await parsed(request, SaveRequest, required=True)
    outcome = await services(request).snapshots.save(body.name)
    return JSONResponse(outcome.as_json(), status_code=201)


@router.post(
    "/{name}/restore",
    openapi_extra=RestoreRequest.openapi(),
    responses=problems(400, 401, 403, 404, 409, 413, 415, 501, 503),
)
async def restore(request: Request, name: str) -> JSONResponse:
    body = await parsed(request, RestoreRequest)
    source = body.file or name
    outcome = await services(request).snapshots.restore(source)
    return JSONResponse(outcome.as_json())


@router.get(
    "/{name}/archive",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/x-tar": {}}, "description": "the snapshot as a tar file"},
        **problems(400, 401, 403, 404, 501),
    },
)
async def download(request: Request, name: str) -> StreamingResponse:
    """The snapshot as one portable tar file (what a save to a file path writes)."""
    archive = await asyncio.to_thread(services(request).snapshots.archive, name)
    return StreamingResponse(
        iter(archive),
        media_type="application/x-tar",
        headers={
            "Content-Length": str(archive.size),
            "Content-Disposition": f'attachment; filename="{name}.tar"',
        },
    )


@router.put(
    "/{name}/archive",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            # A tar file; any Content-Type is taken (the CLI sends application/x-tar).
            "description": "a snapshot file (tar), as GET .../archive sends it",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
    responses=problems(400, 401, 403, 404, 409, 501),
)
async def upload(request: Request, name: str) -> JSONResponse:
    """A snapshot file sent as the body, kept as the snapshot ``name`` (201 and its
    description); refused (400, 409) if it is none this version can restore."""
    info = await services(request).snapshots.receive(name, request.stream())
    return JSONResponse(info.as_json(), status_code=201)


@router.delete("/{name}", status_code=204, responses=problems(400, 401, 403, 404, 501))
async def delete(request: Request, name: str) -> Response:
    services(request).snapshots.delete(name)
    return Response(status_code=204)
