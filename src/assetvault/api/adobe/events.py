"""/adobe/events/registrations: the admin API of event registrations (shaped as Adobe
I/O Events' registration API), and /adobe/assets/publish|unpublish, which set the
publish state that the published and unpublished events announce."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from assetvault.api.adobe.common import json_response, problems
from assetvault.api.body import json_body
from assetvault.api.deps import base_url, content_type, require, services
from assetvault.api.negotiation import JSON_TYPES, negotiate
from assetvault.api.responses import FastJSONResponse
from assetvault.auth.models import Principal
from assetvault.errors import InvalidInput, UnsupportedMediaType
from assetvault.events.models import Attempt, Registration
from assetvault.events.service import RegistrationSpec
from assetvault.metadata.service import iso
from assetvault.relations.service import parse_urn
from assetvault.tree.models import Node

router = APIRouter(prefix="/adobe/events", tags=["Events"])
publishing = APIRouter(prefix="/adobe/assets", tags=["Assets"])
admin = require("admin", api_key=True)
write = require("write", api_key=True)
PROVIDER_ID = "aem-assets"


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


def _spec(body: Any) -> RegistrationSpec:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    known = {
        "name",
        "description",
        "client_id",
        "delivery_type",
        "webhook_url",
        "events_of_interest",
        "enabled",
    }
    extra = sorted(set(body) - known)
    if extra:
        raise InvalidInput(f"{extra[0]}: no such field; the fields are {', '.join(sorted(known))}")
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


async def _json_object(request: Request) -> Any:
    ctype = content_type(request)
    if ctype != "application/json":
        raise UnsupportedMediaType(f"send application/json, not {ctype or 'nothing'}")
    return await json_body(request)


REGISTRATION_ERRORS = problems(400, 401, 403, 406, 413, 415)


def json_request(schema: str) -> dict[str, Any]:
    """The request body of a route that reads its JSON itself (api/body.py)."""
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


@router.post(
    "/registrations",
    operation_id="createEventRegistration",
    summary="Register a webhook or a journal for asset events",
    status_code=201,
    responses=REGISTRATION_ERRORS,
    openapi_extra=json_request("RegistrationRequest"),
)
async def create_registration(request: Request, principal: Principal = Depends(admin)) -> Response:
    negotiate(request, JSON_TYPES)
    spec = _spec(await _json_object(request))
    registration = await services(request).events.create(
        spec, user=principal.name, base_url=base_url(request)
    )
    view = registration_view(request, registration, [])
    return FastJSONResponse(
        view, status_code=201, headers={"Location": view["_links"]["self"]["href"]}
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
    return json_response(request, {"_embedded": {"registrations": items}, "count": len(items)})


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
    return json_response(request, registration_view(request, registration, attempts))


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
    negotiate(request, JSON_TYPES)
    events = services(request).events
    spec = _spec(await _json_object(request))
    registration = await events.update(registrationId, spec, base_url=base_url(request))
    attempts = await events.attempts(registrationId)
    return FastJSONResponse(registration_view(request, registration, attempts))


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


# -- publishing ----------------------------------------------------------------------------


def _published_view(node: Node) -> dict[str, Any]:
    return {
        "assetId": node.urn,
        "isPublishedToAemPublish": node.published,
        "lastPublishedToAemPublish": _iso(node.published_at),
    }


async def _publish(request: Request, principal: Principal, publish: bool) -> Response:
    negotiate(request, JSON_TYPES)
    body = await _json_object(request)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    extra = sorted(set(body) - {"assets", "target"})
    if extra:
        raise InvalidInput(f"{extra[0]}: no such field; the fields are assets and target")
    assets = body.get("assets")
    if not isinstance(assets, list):
        raise InvalidInput("assets: an array of asset ids (urn:aaid:aem:...) is required")
    target = body.get("target", "AEM_PUBLISH")
    if not isinstance(target, str):
        raise InvalidInput("target must be AEM_PUBLISH or DYNAMIC_MEDIA")
    ids = [parse_urn(a, "assets: asset id") for a in assets]
    done = await services(request).assets.publish(
        ids, target=target, user=principal.name, publish=publish
    )
    return FastJSONResponse(
        {
            "target": target,
            "state": "COMPLETED",
            "assets": [_published_view(n) for n in done],
        }
    )


PUBLISH_ERRORS = problems(400, 401, 403, 404, 406, 413, 415)


@publishing.post(
    "/publish",
    operation_id="publishAssets",
    summary="Publish up to 10 assets to AEM_PUBLISH",
    responses=PUBLISH_ERRORS,
    openapi_extra=json_request("PublishRequest"),
)
async def publish_assets(request: Request, principal: Principal = Depends(write)) -> Response:
    return await _publish(request, principal, True)


@publishing.post(
    "/unpublish",
    operation_id="unpublishAssets",
    summary="Unpublish up to 10 assets from AEM_PUBLISH",
    responses=PUBLISH_ERRORS,
    openapi_extra=json_request("PublishRequest"),
)
async def unpublish_assets(request: Request, principal: Principal = Depends(write)) -> Response:
    return await _publish(request, principal, False)
