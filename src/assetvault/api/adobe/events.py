"""/adobe/events/registrations: the admin API of event registrations (shaped as Adobe
I/O Events' registration API), at Assetvault's paths and at Adobe's own
(/events/{org}/{project}/{workspace}/registrations). Publishing, whose state the
published and unpublished events announce, is api/adobe/publish.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import jsonpatch
import jsonpointer
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from assetvault.api.adobe.common import (
    PATCH_TYPE,
    json_object,
    json_request,
    json_response,
    problems,
)
from assetvault.api.body import json_body
from assetvault.api.deps import base_url, content_type, require, services
from assetvault.api.negotiation import negotiate
from assetvault.api.responses import FastJSONResponse
from assetvault.auth.models import Principal
from assetvault.errors import InvalidInput, UnsupportedMediaType
from assetvault.events.models import Attempt, Registration
from assetvault.events.service import RegistrationSpec
from assetvault.metadata.service import iso

router = APIRouter(prefix="/adobe/events", tags=["Events"])
# Adobe I/O Events' own paths for the same registrations (see below).
adobe_paths = APIRouter(prefix="/events", tags=["Events"])
admin = require("admin", api_key=True)
write = require("write", api_key=True)
PROVIDER_ID = "aem-assets"
HAL_JSON = "application/hal+json"


def hal(status: int) -> dict[int | str, dict[str, Any]]:
    """The success answer of Adobe's paths in the OpenAPI document: HAL, as they answer."""
    return {status: {"content": {HAL_JSON: {"schema": {"type": "object"}}}}}


# Our paths answer JSON unless HAL is asked for (Adobe's SDK asks for it); Adobe's paths
# answer HAL, as its API description says, unless only JSON is acceptable.
OURS = ["application/json", HAL_JSON]
ADOBE = [HAL_JSON, "application/json"]
PATCH_OPS = ("add", "remove", "replace", "move", "copy", "test")


def _iso(value: datetime | None) -> str | None:
    """Times as the metadata API writes them (milliseconds, Z)."""
    return iso(value) if value is not None else None


def attempt_view(attempt: Attempt) -> dict[str, Any]:
    return {
        "delivery_id": attempt.delivery_id,
        "events": attempt.events,
        "retry_count": attempt.retry_count,
        "at": _iso(attempt.at),
        "ok": attempt.ok,
        "status": attempt.status,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
    }


def registration_view(
    request: Request, registration: Registration, attempts: list[Attempt] | None = None
) -> dict[str, Any]:
    journal = services(request).events.journal_path(registration)
    body: dict[str, Any] = {
        "id": registration.id,
        "registration_id": registration.id,
        "name": registration.name,
        "description": registration.description,
        "client_id": registration.client_id,
        "delivery_type": registration.delivery_type,
        "webhook_url": registration.webhook_url,
        "events_of_interest": [
            {"provider_id": PROVIDER_ID, "event_code": t} for t in registration.event_types
        ],
        "enabled": registration.enabled,
        "webhook_status": registration.webhook_status,
        "state": registration.state.upper(),
        "validation_expires": _iso(registration.validation_expires_at),
        "created_by": registration.created_by,
        "created_date": _iso(registration.created_at),
        "updated_date": _iso(registration.updated_at),
        "events_url": base_url(request) + journal,
        "_links": {
            "self": {"href": f"/adobe/events/registrations/{registration.id}"},
            "rel:events": {"href": base_url(request) + journal},
        },
    }
    if attempts is not None:
        body["attempts"] = [attempt_view(a) for a in attempts]
    return body


@dataclass(frozen=True)
class Workspace:
    """Where an Adobe path names a registration: Assetvault is one organization with one
    workspace, so these are echoed as given, never checked (docs/events.md)."""

    org: str
    project: str | None = None
    workspace: str | None = None

    def registrations(self, request: Request) -> str:
        parts = [self.org, self.project, self.workspace] if self.project else [self.org]
        path = "/".join(quote(p or "", safe="@") for p in parts)
        return f"{base_url(request)}/events/{path}/registrations"


def registration_number(registration_id: str) -> int:
    """Adobe's integer ``id`` (its Console's URLs use it; Adobe's Java client reads it as
    a Long): the first 48 bits of the registration id, random in a UUID4, so stable and
    distinct among a server's registrations. Nothing looks a registration up by it."""
    return int(registration_id.replace("-", "")[:12], 16)


def adobe_view(request: Request, registration: Registration, where: Workspace) -> dict[str, Any]:
    """A registration as Adobe I/O Events' API gives it (RegistrationHalModel)."""
    body = registration_view(request, registration)
    body["id"] = registration_number(registration.id)
    body["consumer_id"] = where.org
    body["project_id"] = where.project
    body["workspace_id"] = where.workspace
    if where.project:
        self_href = f"{where.registrations(request)}/{registration.id}"
    else:  # listed for an organization: no workspace to name, so our own path
        self_href = f"{base_url(request)}/adobe/events/registrations/{registration.id}"
    body["_links"] = {"self": {"href": self_href}, "rel:events": body["_links"]["rel:events"]}
    return body


# Fields of Adobe's create and update models for what Assetvault does not deliver to
# (I/O Runtime actions, Amazon EventBridge) or does not filter by: accepted when empty,
# as Adobe's clients send them so, and refused otherwise.
UNSUPPORTED_EMPTY = {
    "runtime_action": "Assetvault delivers to webhooks and journals, not to I/O Runtime actions",
    "runtimeWebhook": "Assetvault delivers to webhooks and journals, not to I/O Runtime actions",
    "destination_metadata": "it is for aws_eventbridge, which Assetvault does not deliver to",
    "subscriber_filters": "Assetvault has no subscriber-defined filters",
}
KNOWN_FIELDS = {
    "name",
    "description",
    "client_id",
    "delivery_type",
    "webhook_url",
    "events_of_interest",
    "enabled",
    *UNSUPPORTED_EMPTY,
}


def _spec(body: Any) -> RegistrationSpec:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    extra = sorted(set(body) - KNOWN_FIELDS)
    if extra:
        raise InvalidInput(
            f"{extra[0]}: no such field; the fields are {', '.join(sorted(KNOWN_FIELDS))}"
        )
    for name, why in UNSUPPORTED_EMPTY.items():
        if body.get(name) not in (None, "", [], {}, False):
            raise InvalidInput(f"{name} must be empty: {why}")
    for name in ("name", "delivery_type"):
        if not isinstance(body.get(name), str):
            raise InvalidInput(f"{name} is required (a string)")
    for name in ("description", "client_id", "webhook_url"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise InvalidInput(f"{name} must be a string")
    if "enabled" in body and not isinstance(body["enabled"], bool):
        raise InvalidInput("enabled must be true or false")
    wanted = body.get("events_of_interest")
    if not isinstance(wanted, list) or not wanted:
        raise InvalidInput("events_of_interest: a non-empty array is required")
    types: list[str] = []
    for item in wanted:
        code = item.get("event_code") if isinstance(item, dict) else item
        if not isinstance(code, str):
            raise InvalidInput(
                'events_of_interest: each item is an event type or {"event_code": <type>}'
            )
        types.append(code)
    return RegistrationSpec(
        name=body["name"],
        delivery_type=body["delivery_type"],
        event_types=types,
        webhook_url=body.get("webhook_url"),
        # Left out (or empty): a new registration takes the default, an update keeps its own.
        client_id=body.get("client_id") or None,
        description=body.get("description") or "",
        enabled=body.get("enabled", True),
    )


def _editable(registration: Registration) -> dict[str, Any]:
    """What a JSON Patch of a registration applies to: Adobe's update model."""
    doc: dict[str, Any] = {
        "name": registration.name,
        "description": registration.description,
        "delivery_type": registration.delivery_type,
        "events_of_interest": [
            {"provider_id": PROVIDER_ID, "event_code": t} for t in registration.event_types
        ],
        "enabled": registration.enabled,
    }
    if registration.webhook_url:
        doc["webhook_url"] = registration.webhook_url
    return doc


def _patched(registration: Registration, operations: Any) -> RegistrationSpec:
    if not isinstance(operations, list) or not operations:
        raise InvalidInput("the body must be a non-empty JSON Patch array")
    for index, op in enumerate(operations):
        if not isinstance(op, dict) or op.get("op") not in PATCH_OPS:
            raise InvalidInput(f"operation {index}: op must be one of {', '.join(PATCH_OPS)}")
        for key in ("path", "from") if op["op"] in ("move", "copy") else ("path",):
            if not isinstance(op.get(key), str):
                raise InvalidInput(f"operation {index}: {key} must be a JSON pointer string")
        if op["op"] in ("add", "replace", "test") and "value" not in op:
            raise InvalidInput(f"operation {index}: {op['op']} needs a value")
    try:
        doc = jsonpatch.JsonPatch(operations).apply(_editable(registration))
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise InvalidInput(f"the patch does not apply: {exc}") from exc
    return _spec(doc)


async def _patch_body(request: Request) -> Any:
    ctype = content_type(request)
    if ctype != PATCH_TYPE:
        raise UnsupportedMediaType(f"send the patch as {PATCH_TYPE}, not {ctype or 'nothing'}")
    return await json_body(request)


REGISTRATION_ERRORS = problems(400, 401, 403, 406, 413, 415)


PATCH_REQUEST: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            PATCH_TYPE: {
                "schema": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["op", "path"],
                        "properties": {
                            "op": {"type": "string", "enum": list(PATCH_OPS)},
                            "path": {"type": "string"},
                            "from": {"type": "string"},
                            "value": {},
                        },
                    },
                }
            }
        },
    }
}


async def _create(request: Request, principal: Principal) -> Registration:
    spec = _spec(await json_object(request))
    return await services(request).events.create(
        spec, user=principal.name, base_url=base_url(request)
    )


async def _ours(request: Request, registration: Registration, media_type: str) -> Response:
    """A registration in Assetvault's own shape, with its delivery attempts."""
    attempts = await services(request).events.attempts(registration.id)
    return FastJSONResponse(
        registration_view(request, registration, attempts), media_type=media_type
    )


async def _update(request: Request, registration_id: str, spec: RegistrationSpec) -> Registration:
    return await services(request).events.update(registration_id, spec, base_url=base_url(request))


async def _patch(request: Request, registration_id: str) -> Registration:
    body = await _patch_body(request)  # bounded and well-formed first, as on every route
    current = await services(request).events.get(registration_id)
    spec = _patched(current, body)
    return await _update(request, registration_id, spec)


@router.post(
    "/registrations",
    operation_id="createEventRegistration",
    summary="Register a webhook or a journal for asset events",
    status_code=201,
    responses=REGISTRATION_ERRORS,
    openapi_extra=json_request("RegistrationRequest"),
)
async def create_registration(request: Request, principal: Principal = Depends(admin)) -> Response:
    media_type = negotiate(request, OURS)
    registration = await _create(request, principal)
    view = registration_view(request, registration, [])
    return FastJSONResponse(
        view,
        status_code=201,
        headers={"Location": view["_links"]["self"]["href"]},
        media_type=media_type,
    )


@router.get(
    "/registrations",
    operation_id="listEventRegistrations",
    summary="List event registrations",
    responses=problems(401, 403, 406),
)
async def list_registrations(request: Request, _: Principal = Depends(admin)) -> Response:
    found = await services(request).events.all()
    items = [registration_view(request, r) for r in found]
    body = {"_embedded": {"registrations": items}, "count": len(items)}
    return json_response(request, body, types=OURS)


@router.get(
    "/registrations/{registrationId}",
    operation_id="getEventRegistration",
    summary="Get an event registration, its state and its latest delivery attempts",
    responses=problems(401, 403, 404, 406),
)
async def get_registration(
    request: Request, registrationId: str, _: Principal = Depends(admin)
) -> Response:
    events = services(request).events
    registration = await events.get(registrationId)
    attempts = await events.attempts(registrationId)
    return json_response(request, registration_view(request, registration, attempts), types=OURS)


@router.put(
    "/registrations/{registrationId}",
    operation_id="updateEventRegistration",
    summary="Replace an event registration (a webhook is challenged again)",
    responses=problems(400, 401, 403, 404, 406, 413, 415),
    openapi_extra=json_request("RegistrationRequest"),
)
async def update_registration(
    request: Request, registrationId: str, _: Principal = Depends(admin)
) -> Response:
    media_type = negotiate(request, OURS)
    registration = await _update(request, registrationId, _spec(await json_object(request)))
    return await _ours(request, registration, media_type)


@router.patch(
    "/registrations/{registrationId}",
    operation_id="patchEventRegistration",
    summary="Change an event registration with a JSON Patch (a webhook is challenged again)",
    responses=problems(400, 401, 403, 404, 406, 413, 415),
    openapi_extra=PATCH_REQUEST,
)
async def patch_registration(
    request: Request, registrationId: str, _: Principal = Depends(admin)
) -> Response:
    media_type = negotiate(request, OURS)
    registration = await _patch(request, registrationId)
    return await _ours(request, registration, media_type)


@router.delete(
    "/registrations/{registrationId}",
    operation_id="deleteEventRegistration",
    summary="Delete an event registration (its pending deliveries go with it)",
    status_code=204,
    responses=problems(401, 403, 404),
)
async def delete_registration(
    request: Request, registrationId: str, _: Principal = Depends(admin)
) -> Response:
    await services(request).events.delete(registrationId)
    return Response(status_code=204)


# -- Adobe I/O Events' own paths ---------------------------------------------------------
# The same operations at the paths of Adobe's API description (static/events-api-
# reference.yaml), answering its HAL shapes, so Adobe's SDKs work with eventsBaseURL set
# to an Assetvault server. app.py includes this router after the journal's, whose path
# has as many segments.

WORKSPACE = "/{consumerOrgId}/{projectId}/{workspaceId}/registrations"


def _workspace(consumerOrgId: str, projectId: str, workspaceId: str) -> Workspace:
    """The workspace a path names (its three segments are path parameters)."""
    return Workspace(consumerOrgId, projectId, workspaceId)


def _hal(
    request: Request, registration: Registration, where: Workspace, media_type: str
) -> Response:
    """A registration in Adobe's HAL shape."""
    return FastJSONResponse(adobe_view(request, registration, where), media_type=media_type)


@adobe_paths.post(
    WORKSPACE,
    operation_id="createRegistration",
    summary="Create an event registration (Adobe I/O Events' path)",
    status_code=201,
    responses={**hal(201), **REGISTRATION_ERRORS},
    openapi_extra=json_request("RegistrationRequest"),
)
async def adobe_create(
    request: Request,
    where: Workspace = Depends(_workspace),
    principal: Principal = Depends(admin),
) -> Response:
    media_type = negotiate(request, ADOBE)
    view = adobe_view(request, await _create(request, principal), where)
    return FastJSONResponse(
        view,
        status_code=201,
        headers={"Location": view["_links"]["self"]["href"]},
        media_type=media_type,
    )


@adobe_paths.get(
    WORKSPACE,
    operation_id="getRegistrations",
    summary="List the event registrations of a workspace (Adobe I/O Events' path)",
    responses={**hal(200), **problems(401, 403, 406)},
)
async def adobe_list(
    request: Request,
    where: Workspace = Depends(_workspace),
    _: Principal = Depends(admin),
) -> Response:
    found = await services(request).events.all()
    body = {
        "_links": {"self": {"href": where.registrations(request)}},
        "_embedded": {"registrations": [adobe_view(request, r, where) for r in found]},
    }
    return json_response(request, body, types=ADOBE)


@adobe_paths.get(
    WORKSPACE + "/{registrationId}",
    operation_id="getRegistrationById",
    summary="Get an event registration (Adobe I/O Events' path)",
    responses={**hal(200), **problems(401, 403, 404, 406)},
)
async def adobe_get(
    request: Request,
    registrationId: str,
    where: Workspace = Depends(_workspace),
    _: Principal = Depends(admin),
) -> Response:
    registration = await services(request).events.get(registrationId)
    return json_response(request, adobe_view(request, registration, where), types=ADOBE)


@adobe_paths.put(
    WORKSPACE + "/{registrationId}",
    operation_id="updateRegistrationById",
    summary="Replace an event registration (Adobe I/O Events' path)",
    responses={**hal(200), **problems(400, 401, 403, 404, 406, 413, 415)},
    openapi_extra=json_request("RegistrationRequest"),
)
async def adobe_update(
    request: Request,
    registrationId: str,
    where: Workspace = Depends(_workspace),
    _: Principal = Depends(admin),
) -> Response:
    media_type = negotiate(request, ADOBE)
    registration = await _update(request, registrationId, _spec(await json_object(request)))
    return _hal(request, registration, where, media_type)


@adobe_paths.patch(
    WORKSPACE + "/{registrationId}",
    operation_id="patchRegistrationById",
    summary="Change an event registration with a JSON Patch (Adobe I/O Events' path)",
    responses={**hal(200), **problems(400, 401, 403, 404, 406, 413, 415)},
    openapi_extra=PATCH_REQUEST,
)
async def adobe_patch(
    request: Request,
    registrationId: str,
    where: Workspace = Depends(_workspace),
    _: Principal = Depends(admin),
) -> Response:
    media_type = negotiate(request, ADOBE)
    registration = await _patch(request, registrationId)
    return _hal(request, registration, where, media_type)


@adobe_paths.delete(
    WORKSPACE + "/{registrationId}",
    operation_id="deleteRegistration",
    summary="Delete an event registration (Adobe I/O Events' path)",
    status_code=204,
    responses=problems(401, 403, 404),
)
async def adobe_delete(
    request: Request,
    registrationId: str,
    where: Workspace = Depends(_workspace),
    _: Principal = Depends(admin),
) -> Response:
    await services(request).events.delete(registrationId)
    return Response(status_code=204)


PAGE_SIZE, MAX_PAGE_SIZE = 10, 100


def _page_param(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise InvalidInput(f"{name} must be a whole number")
    return int(value)


@adobe_paths.get(
    "/{consumerOrgId}/registrations",
    operation_id="getRegistrationByConsumerOrgId",
    summary="List an organization's event registrations, a page at a time (Adobe's path)",
    responses={**hal(200), **problems(400, 401, 403, 406)},
)
async def adobe_list_for_org(
    request: Request,
    consumerOrgId: str,
    page: str | None = Query(None, description="the page number, from 0"),
    size: str | None = Query(None, description="registrations per page, 1 to 100 (10)"),
    _: Principal = Depends(admin),
) -> Response:
    number = _page_param(page, "page", 0)
    per_page = _page_param(size, "size", PAGE_SIZE)
    if not 1 <= per_page <= MAX_PAGE_SIZE:
        raise InvalidInput(f"size must be 1 to {MAX_PAGE_SIZE}")
    found = await services(request).events.all()
    pages = -(-len(found) // per_page)
    if number > 0 and number >= pages:
        raise InvalidInput(f"page {number} is past the last page ({max(pages - 1, 0)})")
    where = Workspace(consumerOrgId)
    items = found[number * per_page : (number + 1) * per_page]
    href = where.registrations(request)

    def link(n: int) -> dict[str, str]:
        return {"href": f"{href}?page={n}&size={per_page}"}

    links = {"first": link(0), "last": link(max(pages - 1, 0)), "self": link(number)}
    if number + 1 < pages:
        links["next"] = link(number + 1)
    if number > 0:
        links["prev"] = link(number - 1)
    body = {
        "page": {
            "size": per_page,
            "number": number,
            "numberOfElements": len(items),
            "totalElements": len(found),
            "totalPages": pages,
        },
        "_links": links,
        "_embedded": {"registrations": [adobe_view(request, r, where) for r in items]},
    }
    return json_response(request, body, types=ADOBE)
