"""What Adobe I/O Events serves beside the webhooks: the journal of each registration
(/events/organizations/{org}/integrations/{credential}/{registration}), the public keys
that verify delivery signatures (/prod/keys/pub-key-<id>.pem: no auth, as receivers
fetch them), and the validationUrl of a webhook that failed its challenge."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response

from assetvault.api.adobe.common import problems
from assetvault.api.deps import authenticate, services
from assetvault.api.responses import FastJSONResponse
from assetvault.auth.models import Principal
from assetvault.errors import Forbidden, InvalidInput, NotFound
from assetvault.events.service import Gone

router = APIRouter(tags=["Events"])


async def journal_reader(request: Request) -> Principal:
    """Bearer token and x-api-key, as the journaling API asks, and the organization in
    x-ims-org-id or x-gw-ims-org-id (both are sent by Adobe's own clients)."""
    principal = await authenticate(request, "read", api_key=True)
    org = request.headers.get("x-ims-org-id") or request.headers.get("x-gw-ims-org-id")
    if not org:
        raise Forbidden("an x-ims-org-id (or x-gw-ims-org-id) header is required")
    if org != services(request).settings.ims_org_id:
        raise Forbidden(f"organization {org} is not this server's")
    return principal


JOURNAL = "/events/organizations/{org}/integrations/{credential}/{registrationId}"
JOURNAL_RESPONSES: dict[int | str, dict[str, Any]] = {
    204: {"description": "No events after this position (retry later)"},
    410: {
        "description": "The position asked for has expired (plain text, as Adobe answers)",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    **problems(400, 401, 403, 404),
}


async def _journal(
    request: Request,
    org: str,
    credential: str,
    registration_id: str,
    since: str | None,
    limit: str | None,
    latest: str | None,
    seek: str | None,
) -> Response:
    try:
        page = await services(request).events.journal(
            org, credential, registration_id, since=since, limit=limit, latest=latest, seek=seek
        )
    except Gone as exc:  # Adobe answers this one in plain text
        return PlainTextResponse(exc.detail, status_code=410)
    base = request.url.path
    query = "?" + urlencode(page.next_query) if page.next_query else ""
    links = [f'<{base}{query}>; rel="next"'] + [
        f'<{href}>; rel="{rel}"' for rel, href in page.links.items()
    ]
    if "since" in page.next_query:  # Adobe's validate link: the same batch, checked first
        journal = base.removesuffix("/validate")
        links.append(f'<{journal}/validate{query}>; rel="validate"')
    if not page.entries:
        response: Response = Response(status_code=204)
        response.headers["retry-after"] = str(page.retry_after or 10)
    else:
        response = FastJSONResponse(
            {"events": page.entries, "_page": {"last": page.last, "count": len(page.entries)}}
        )
    for link in links:  # one header per link: Adobe's Java client reads only the first
        response.headers.append("link", link)
    return response


@router.get(
    JOURNAL,
    operation_id="getJournal",
    summary="Read a registration's journal of events",
    responses=JOURNAL_RESPONSES,
)
async def journal(
    request: Request,
    org: str,
    credential: str,
    registrationId: str,
    since: str | None = Query(None),
    limit: str | None = Query(None),
    latest: str | None = Query(None),
    seek: str | None = Query(None),
    _: Principal = Depends(journal_reader),
) -> Response:
    return await _journal(request, org, credential, registrationId, since, limit, latest, seek)


@router.get(
    JOURNAL + "/validate",
    operation_id="validateAndGetEventsFromJournal",
    summary="Read a batch of a journal from a position that must be given (Adobe's validate)",
    responses=JOURNAL_RESPONSES,
)
async def journal_validate(
    request: Request,
    org: str,
    credential: str,
    registrationId: str,
    since: str | None = Query(None),
    limit: str | None = Query(None),
    _: Principal = Depends(journal_reader),
) -> Response:
    # Adobe's description: `since` required, no `latest` or `seek`; an unknown or expired
    # position answers as on the journal's own path (400, 410).
    if since is None:
        raise InvalidInput("since is required: the position to validate and read from")
    return await _journal(request, org, credential, registrationId, since, limit, None, None)


@router.get(
    "/prod/keys/{name}",
    operation_id="getEventPublicKey",
    summary="A public key (PEM, SPKI) that verifies event delivery signatures",
    response_class=PlainTextResponse,
    responses=problems(404),
)
async def public_key(request: Request, name: str) -> Response:
    # Off the loop: on PostgreSQL a key not seen yet is read from the database.
    pem = await asyncio.to_thread(services(request).signer.public_key, name)
    if pem is None:
        raise NotFound(f"no public key {name}")
    return Response(pem, media_type="application/x-pem-file")


@router.get(
    "/events/validate",
    operation_id="validateWebhook",
    summary="Complete a webhook's asynchronous validation (the validationUrl it was sent)",
    responses=problems(400, 404),
)
async def validate(
    request: Request, id: str | None = Query(None), challenge: str | None = Query(None)
) -> Response:
    # No token: the link itself is the credential (random, single-use, valid 5 minutes).
    if not id or not challenge:
        raise InvalidInput("id and challenge are required")
    registration = await services(request).events.validate(id, challenge)
    return FastJSONResponse(
        {
            "registration_id": registration.id,
            "webhook_status": registration.webhook_status,
            "enabled": registration.enabled,
        }
    )
