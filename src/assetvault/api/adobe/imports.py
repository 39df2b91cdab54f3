"""The import interfaces: the Author API's ``/adobe/assets/import/...`` (fromUrl, job
status and result) and the Import API 2025.04 under ``/adobe/import/...`` (from-url,
sources, jobs). Both read and write the one job store of imports/service.py; the
shapes are in docs/import.md.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from assetvault import mediatypes
from assetvault.api.adobe.common import bool_param, json_response, problems
from assetvault.api.binary import etag_matches, is_passive
from assetvault.api.body import json_body
from assetvault.api.deps import base_url, content_type, require, services
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
    ImportSource,
)
from assetvault.imports.ports import SourceItem
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


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    """The request body a route reads itself (api/body.py), for the OpenAPI document."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_METADATA = {"type": "object", "additionalProperties": True}
URL_IMPORT = _body(
    {
        "type": "object",
        "required": ["folder", "files"],
        "properties": {
            "folder": {"type": "string", "description": "a /content/dam path or a folder URN"},
            "assetMetadata": _METADATA,
            "sourceName": {"type": "string"},
            "files": {
                "type": "array",
                "minItems": 1,
                "maxItems": 300,
                "items": {
                    "type": "object",
                    "required": ["fileName", "url"],
                    "properties": {
                        "fileName": {"type": "string"},
                        "url": {"type": "string"},
                        "mimeType": {"type": "string"},
                        "fileSize": {"type": "integer", "minimum": 0},
                        "assetMetadata": _METADATA,
                    },
                },
            },
        },
    }
)
NEW_SOURCE = _body(
    {
        "type": "object",
        "required": ["name", "type"],
        "properties": {
            "name": {"type": "string"},
            "title": {"type": "string"},
            "type": {"type": "string", "enum": ["dropbox", "onedrive"]},
        },
    }
)


@author.post(
    "/fromUrl",
    operation_id="importFromUrl",
    summary="Import assets from URLs",
    status_code=202,
    responses=SUBMIT_ERRORS,
    openapi_extra=URL_IMPORT,
)
async def author_from_url(request: Request, principal: Principal = Depends(write)) -> Response:
    parsed = requests.url_import(await _json(request))
    job = await services(request).imports.submit_urls(parsed, user=principal.name)
    return accepted(job, f"/adobe/assets/import/jobs/{job.id}/status")


READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not Modified"},
    **READ_ERRORS,
}
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def read_route(
    router: APIRouter, path: str, operation: str, summary: str
) -> Callable[[Endpoint], Endpoint]:
    """GET and HEAD of one read, each with its own operation id (get…, head…)."""

    def register(endpoint: Endpoint) -> Endpoint:
        for method in ("get", "head"):
            getattr(router, method)(
                path,
                operation_id=f"{method}{operation}",
                summary=summary,
                responses=READ_RESPONSES,
            )(endpoint)
        return endpoint

    return register


# One job store serves both families: the same endpoints under both prefixes.
STATUS = "The status of an import job"
RESULT = "The result of an import job, one page of its files"


@read_route(author, "/jobs/{importJobId}/status", "ImportJobStatus", STATUS)
@read_route(importer, "/jobs/{importJobId}/status", "ImportJobStatus2025", STATUS)
async def job_status(request: Request, importJobId: str, _: Principal = Depends(read)) -> Response:
    return await status_response(request, importJobId)


@read_route(author, "/jobs/{importJobId}/result", "ImportJobResult", RESULT)
@read_route(importer, "/jobs/{importJobId}/result", "ImportJobResult2025", RESULT)
async def job_result(
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
    openapi_extra=URL_IMPORT,
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


# -- import sources (Import API 2025.04) ----------------------------------------------------

CALLBACK_PATH = "/adobe/import/sources/authentication/callback"
SOURCE_ERRORS = problems(400, 401, 403, 404, 406)


def source_document(source: ImportSource) -> dict[str, Any]:
    return {
        "authenticated": source.authenticated,
        "title": source.title,
        "name": source.name,
        "type": source.type,
    }


def item_document(item: SourceItem) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": item.id, "name": item.name, "type": item.type, "path": item.path}
    if item.size is not None:
        doc["size"] = item.size
    if item.mime_type:
        doc["mimeType"] = item.mime_type
    if item.modified:
        doc["modified"] = item.modified
    return doc


def callback_url(request: Request) -> str:
    return base_url(request) + CALLBACK_PATH


@importer.get(
    "/sources",
    operation_id="listImportSources",
    summary="List the caller's import sources",
    responses=problems(400, 401, 403, 406),
)
async def list_sources(
    request: Request,
    limit: int = LIMIT,
    cursor: str | None = CURSOR,
    principal: Principal = Depends(read),
) -> Response:
    found, more = await services(request).sources.list(principal.name, limit=limit, cursor=cursor)
    body: dict[str, Any] = {"items": [source_document(s) for s in found]}
    if more:
        body["cursor"] = more
    return json_response(request, body)


@importer.post(
    "/sources",
    operation_id="createImportSource",
    summary="Create an import source (Dropbox or OneDrive)",
    status_code=201,
    responses=problems(400, 401, 403, 406, 409, 413, 415),
    openapi_extra=NEW_SOURCE,
)
async def create_source(request: Request, principal: Principal = Depends(write)) -> Response:
    source = await services(request).sources.create(principal.name, await _json(request))
    return FastJSONResponse(
        source_document(source),
        status_code=201,
        # A source name may hold any character: the header carries it percent-encoded.
        headers={"Location": f"/adobe/import/sources/{quote(source.name, safe='')}"},
    )


# Before /sources/{importSourceName}: a source name may not begin with "authentication".
@importer.get(
    "/sources/authentication/callback",
    operation_id="completeImportSourceOAuth",
    summary="Where the provider sends the user back after granting access",
    responses=problems(400, 403),
)
async def oauth_callback(
    request: Request,
    state: str | None = Query(default=None),
    code: str | None = Query(default=None),
    error: str | None = Query(default=None),
    error_description: str | None = Query(default=None),
) -> Response:
    # The browser comes back without Assetvault's token: the unguessable state, handed
    # out to the source's owner only, is the credential here.
    source = await services(request).sources.complete_authorization(
        state, code, error_description or error, callback_url(request)
    )
    page = (
        "<!doctype html><meta charset=utf-8><title>Assetvault</title>"
        f"<p>Assetvault may now import from {html.escape(source.title)}. "
        "You can close this window.</p>"
    )
    return HTMLResponse(page)


@importer.get(
    "/sources/{importSourceName}",
    operation_id="getImportSource",
    summary="Get an import source",
    responses=SOURCE_ERRORS,
)
async def get_source(
    request: Request, importSourceName: str, principal: Principal = Depends(read)
) -> Response:
    source = await services(request).sources.get(principal.name, importSourceName)
    return json_response(request, source_document(source))


@importer.delete(
    "/sources/{importSourceName}",
    operation_id="deleteImportSource",
    summary="Delete an import source and its authorisation",
    status_code=204,
    responses=SOURCE_ERRORS,
)
async def delete_source(
    request: Request, importSourceName: str, principal: Principal = Depends(write)
) -> Response:
    await services(request).sources.delete(principal.name, importSourceName)
    return Response(status_code=204)


@importer.get(
    "/sources/{importSourceName}/authentication/oauth",
    operation_id="getImportSourceOAuthUrl",
    summary="The provider's URL to take the user to, to grant access",
    responses=SOURCE_ERRORS,
)
async def oauth_url(
    request: Request, importSourceName: str, principal: Principal = Depends(write)
) -> Response:
    negotiate(request, JSON_TYPES)
    url = await services(request).sources.authorization_url(
        principal.name, importSourceName, callback_url(request)
    )
    return FastJSONResponse({"url": url}, headers={"Cache-Control": "no-store"})


@importer.get(
    "/sources/{importSourceName}/items",
    operation_id="listImportSourceItems",
    summary="One page of the folders and files of a source",
    responses={**SOURCE_ERRORS, **problems(502)},
)
async def source_items(
    request: Request,
    importSourceName: str,
    id: str | None = Query(default=None, min_length=1, description="the folder to list"),
    recursive: str | None = Query(default=None, description="list everything below"),
    cursor: str | None = CURSOR,
    limit: int = LIMIT,
    principal: Principal = Depends(read),
) -> Response:
    page = await services(request).sources.items(
        principal.name,
        importSourceName,
        item_id=id,
        recursive=bool_param(recursive, "recursive"),
        cursor=cursor,
        limit=limit,
    )
    body: dict[str, Any] = {
        "hasMore": page.cursor is not None,
        "items": [item_document(i) for i in page.items],
    }
    if page.cursor:
        body["cursor"] = page.cursor
    return json_response(request, body)


@importer.get(
    "/sources/{importSourceName}/items/{itemId}/thumbnail",
    operation_id="getImportSourceItemThumbnail",
    summary="The source's thumbnail of an item",
    responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "The thumbnail"},
        304: {"description": "Not Modified"},
        **SOURCE_ERRORS,
        **problems(502),
    },
)
async def source_thumbnail(
    request: Request, importSourceName: str, itemId: str, principal: Principal = Depends(read)
) -> Response:
    thumbnail = await services(request).sources.thumbnail(principal.name, importSourceName, itemId)
    media_type = mediatypes.servable(thumbnail.mime_type)  # a provider's word: checked
    negotiate(request, [media_type])
    digest = hashlib.sha256(thumbnail.content).hexdigest()[:32]
    etag = f'"{digest}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, max-age=300",
        "X-Content-Type-Options": "nosniff",
    }
    if not is_passive(request, media_type):
        # A provider's "image" may be a scripted SVG: it never runs in this origin.
        headers["Content-Disposition"] = "attachment"
        headers["Content-Security-Policy"] = "sandbox"
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(thumbnail.content, media_type=media_type, headers=headers)


@importer.post(
    "/sources/{importSourceName}/start",
    operation_id="startImportFromSource",
    summary="Import items of a source",
    status_code=202,
    responses={**SUBMIT_ERRORS, **problems(404, 502)},
)
async def start_source_import(
    request: Request, importSourceName: str, principal: Principal = Depends(write)
) -> Response:
    parsed = requests.source_import(await _json(request))
    job = await services(request).sources.start(principal.name, importSourceName, parsed)
    return accepted(job, f"/adobe/import/jobs/{job.id}/status")


@importer.post(
    "/sources/{importSourceName}/{itemId}/start",
    operation_id="startImportOfSourceItem",
    summary="Import one item of a source (a folder with everything below it)",
    status_code=202,
    responses={**SUBMIT_ERRORS, **problems(404, 502)},
)
async def start_item_import(
    request: Request, importSourceName: str, itemId: str, principal: Principal = Depends(write)
) -> Response:
    parsed = requests.source_import(await _json(request), item_id=itemId)
    job = await services(request).sources.start(principal.name, importSourceName, parsed)
    return accepted(job, f"/adobe/import/jobs/{job.id}/status")
