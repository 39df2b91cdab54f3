"""The import interfaces: the Author API's ``/adobe/assets/import/...`` (fromUrl, job
status and result) and the Import API 2025.04 under ``/adobe/import/...`` (from-url,
sources, jobs). Both read and write the one job store of imports/service.py; the
shapes are in docs/import.md.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from assetvault.api.adobe.routes import json_response, problems
from assetvault.api.body import json_body
from assetvault.api.deps import content_type, require, services
from assetvault.api.negotiation import JSON_TYPES, negotiate
from assetvault.api.responses import FastJSONResponse
from assetvault.auth.models import Principal
from assetvault.errors import UnsupportedMediaType
from assetvault.imports import requests
from assetvault.imports.models import (
    COMPLETED,
    COMPLETED_WITH_ERRORS,
    FAILED,
    IMPORTED,
    OPERATIONS,
    PENDING,
    ImportFile,
    ImportJob,
)
from assetvault.metadata.service import iso
from assetvault.tree.paths import urn

author = APIRouter(prefix="/adobe/assets/import", tags=["Import"])
importer = APIRouter(prefix="/adobe/import", tags=["Import"])

read = require("read", api_key=True)
write = require("write", api_key=True)

RETRY_AFTER_SECONDS = "2"
DESCRIPTIONS = {
    COMPLETED: "Completed",
    COMPLETED_WITH_ERRORS: "Completed with errors",
    FAILED: "Failed",
}
FILE_STATUS = {IMPORTED: "imported", PENDING: "processing"}
SUBMIT_ERRORS = problems(400, 401, 403, 406, 413, 415)
READ_ERRORS = problems(400, 401, 403, 404, 406)


def job_document(job: ImportJob) -> dict[str, Any]:
    """The job as the 202, the status and the job listing show it."""
    c = job.counts
    progress = {
        "imported": c.imported,
        "failed": c.failed,
        "skipped": 0,
        "total": job.total,
        "started": iso(job.started_at or job.created_at),
        "lastUpdated": iso(job.updated_at),
        "size": c.transferred,
        "transferred": c.transferred,
        "step": job.step,
    }
    return {
        "id": job.id,
        "operation": job.operation,
        "description": DESCRIPTIONS.get(job.step, "OK"),
        "status": 200 if job.done else 202,
        "state": job.state,
        "progress": progress,
        "data": {"id": job.id, "config": job.config, "progress": progress},
        "errors": list(job.errors),
        "warnings": list(job.warnings),
    }


def result_item(file: ImportFile) -> dict[str, Any]:
    item: dict[str, Any] = {
        "fileName": file.file_name,
        "status": FILE_STATUS.get(file.state, "failed"),
    }
    if file.asset_id:
        item["assetId"] = urn(file.asset_id)
        item["assetPath"] = file.asset_path
    if file.error:
        item["error"] = file.error
    if file.warnings:
        item["warnings"] = file.warnings
    return item


async def _json(request: Request) -> Any:
    negotiate(request, JSON_TYPES)
    ctype = content_type(request)
    if ctype != "application/json":
        raise UnsupportedMediaType(
            f"send the request as application/json, not {ctype or 'nothing'}"
        )
    return await json_body(request)


def accepted(job: ImportJob, status_url: str) -> Response:
    return FastJSONResponse(
        job_document(job),
        status_code=202,
        headers={"Location": status_url, "Retry-After": RETRY_AFTER_SECONDS},
    )


async def status_response(request: Request, job_id: str) -> Response:
    job = await services(request).imports.job(job_id)
    response = json_response(request, job_document(job))
    if not job.done:
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response


async def result_response(
    request: Request, job_id: str, limit: int, cursor: str | None
) -> Response:
    _, files, more = await services(request).imports.result(job_id, limit=limit, cursor=cursor)
    body: dict[str, Any] = {"items": [result_item(f) for f in files]}
    if more:
        body["cursor"] = more
    return json_response(request, body)


LIMIT = Query(default=50, ge=1, le=50, description="items per page")
CURSOR = Query(default=None, min_length=1, description="the cursor of the previous page")


# -- the Author API ---------------------------------------------------------------------


@author.post(
    "/fromUrl",
    operation_id="importFromUrl",
    summary="Import assets from URLs",
    status_code=202,
    responses=SUBMIT_ERRORS,
)
async def author_from_url(request: Request, principal: Principal = Depends(write)) -> Response:
    parsed = requests.url_import(await _json(request))
    job = await services(request).imports.submit_urls(parsed, user=principal.name)
    return accepted(job, f"/adobe/assets/import/jobs/{job.id}/status")


@author.api_route(
    "/jobs/{importJobId}/status",
    methods=["GET", "HEAD"],
    operation_id="getImportJobStatus",
    summary="The status of an import job",
    responses={304: {"description": "Not Modified"}, **READ_ERRORS},
)
async def author_status(
    request: Request, importJobId: str, _: Principal = Depends(read)
) -> Response:
    return await status_response(request, importJobId)


@author.api_route(
    "/jobs/{importJobId}/result",
    methods=["GET", "HEAD"],
    operation_id="getImportJobResult",
    summary="The result of an import job, one page of its files",
    responses={304: {"description": "Not Modified"}, **READ_ERRORS},
)
async def author_result(
    request: Request,
    importJobId: str,
    limit: int = LIMIT,
    cursor: str | None = CURSOR,
    _: Principal = Depends(read),
) -> Response:
    return await result_response(request, importJobId, limit, cursor)


# -- the Import API 2025.04 ---------------------------------------------------------------


@importer.post(
    "/from-url",
    operation_id="importFromUrl2025",
    summary="Import assets from URLs",
    status_code=202,
    responses=SUBMIT_ERRORS,
)
async def from_url(request: Request, principal: Principal = Depends(write)) -> Response:
    parsed = requests.url_import(await _json(request))
    job = await services(request).imports.submit_urls(parsed, user=principal.name)
    return accepted(job, f"/adobe/import/jobs/{job.id}/status")


@importer.get(
    "/jobs",
    operation_id="listImportJobs",
    summary="List the import jobs, newest first",
    responses=READ_ERRORS,
)
async def list_jobs(
    request: Request,
    limit: int = LIMIT,
    cursor: str | None = CURSOR,
    operation: str | None = Query(
        default=None, description=f"only jobs of this operation: {', '.join(OPERATIONS)}"
    ),
    _: Principal = Depends(read),
) -> Response:
    jobs, more = await services(request).imports.jobs(
        operation=operation, limit=limit, cursor=cursor
    )
    body: dict[str, Any] = {"items": [job_document(j) for j in jobs]}
    if more:
        body["cursor"] = more
    return json_response(request, body)


@importer.api_route(
    "/jobs/{importJobId}/status",
    methods=["GET", "HEAD"],
    operation_id="getImportJobStatus2025",
    summary="The status of an import job",
    responses={304: {"description": "Not Modified"}, **READ_ERRORS},
)
async def status(request: Request, importJobId: str, _: Principal = Depends(read)) -> Response:
    return await status_response(request, importJobId)


@importer.api_route(
    "/jobs/{importJobId}/result",
    methods=["GET", "HEAD"],
    operation_id="getImportJobResult2025",
    summary="The result of an import job, one page of its files",
    responses={304: {"description": "Not Modified"}, **READ_ERRORS},
)
async def result(
    request: Request,
    importJobId: str,
    limit: int = LIMIT,
    cursor: str | None = CURSOR,
    _: Principal = Depends(read),
) -> Response:
    return await result_response(request, importJobId, limit, cursor)
