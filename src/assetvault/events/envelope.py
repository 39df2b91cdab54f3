"""AEM's CloudEvents, made from the outbox's domain events.

The envelope is what AEM as a Cloud Service sends (specversion 1.0, ``source``
``acct:aem-p<program>-e<environment>@adobe.com``, ``datacontenttype``
application/json, RFC 3339 ``time``), built and validated with the cloudevents
library; ``data`` carries assetId, repositoryMetadata, assetMetadata and the ``user``
who acted, as AEM's captured events do. Adobe I/O Events adds per registration the
event id it delivers under (``eventid`` and its deprecated twin ``event_id``, stable
across retries and equal in webhook and journal) and the receiver's client id
(``recipientclientid`` / ``recipient_client_id``): ``for_registration``.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from cloudevents.core.v1.event import CloudEvent

from assetvault.events import models
from assetvault.tree.models import Node, OutboxEvent
from assetvault.tree.paths import urn

ACTIVE_STATE = "ACTIVE"
# Shown in every metadata_updated event's assetMetadata that has them, changed or not,
# as in the captured events.
ALWAYS_SHOWN = ("xcm:machineKeywords",)


def source_of(program_id: str, environment_id: str) -> str:
    return f"acct:aem-p{program_id}-e{environment_id}@adobe.com"


def user_of(name: str | None) -> dict[str, str] | None:
    """AEM's user object; Assetvault's users are its token names."""
    if not name or name == "system":
        return None
    return {"imsUserId": name, "principalId": name, "displayName": name}


def _where(row: OutboxEvent) -> dict[str, Any]:
    """What the row itself says of its node (all that is left of a deleted one)."""
    meta: dict[str, Any] = {}
    if row.node_id:
        meta["repo:assetId"] = urn(row.node_id)
    if row.path:
        meta["repo:path"] = row.path
        meta["repo:name"] = row.path.rsplit("/", 1)[-1]
    return meta


def _repository(row: OutboxEvent, shown: dict[str, Any]) -> dict[str, Any]:
    """``repositoryMetadata`` as AEM's events carry it: ``repo:size`` a string, left out
    when there is no size (a content fragment has no binary), and ``repo:state``
    ``ACTIVE`` (the Author API's envelope has a number, or null, and leaves an active
    state out), at the path the event speaks of (a move's unpublish)."""
    repository = dict(shown)
    repository.update(_where(row))
    size = repository.get("repo:size")
    if isinstance(size, int) and not isinstance(size, bool):
        repository["repo:size"] = str(size)
    elif size is None:
        repository.pop("repo:size", None)
    repository.setdefault("repo:state", ACTIVE_STATE)
    return repository


def _changed_metadata(current: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """A metadata_updated event's ``assetMetadata``, as captured on AEM as a Cloud
    Service: the keys the change set (their values now) and ``xcm:machineKeywords``,
    then the markers: ``event:created`` lists the keys set for the first time,
    ``event:updated`` holds the previous value of the others (a removed key among them).
    ``previous`` is the outbox row's: None for a key that had no value."""
    created = sorted(k for k, v in previous.items() if v is None)
    updated = {k: v for k, v in previous.items() if v is not None}
    shown = {k: current[k] for k in sorted(previous) if k in current}
    shown.update({k: current[k] for k in ALWAYS_SHOWN if k in current})
    if created:
        shown["event:created"] = created
    if updated:
        shown["event:updated"] = updated
    return shown


def event_data(
    row: OutboxEvent, node: Node | None, envelope: dict[str, Any] | None
) -> dict[str, Any]:
    """The ``data`` of the AEM event of ``row``; ``envelope`` is the node's metadata
    envelope now (None when the node is gone)."""
    aem_type = models.AEM_TYPES[row.type]
    if aem_type == models.IMPORT_COMPLETED:
        data: dict[str, Any] = dict(row.data)
    else:
        data = {"assetId": urn(row.node_id) if row.node_id else None}
        if envelope is not None and aem_type != models.DELETED:
            data["repositoryMetadata"] = _repository(row, envelope["repositoryMetadata"])
            data["assetMetadata"] = dict(envelope.get("assetMetadata") or {})
        else:
            data["repositoryMetadata"] = _where(row)
        if aem_type == models.METADATA_UPDATED:
            data["assetMetadata"] = _changed_metadata(
                data.get("assetMetadata") or {}, row.data.get("previous") or {}
            )
        elif aem_type in (models.PUBLISHED, models.UNPUBLISHED):
            data["tier"] = "publish"
        elif aem_type == models.DOWNLOADED:
            data["rendition"] = row.data.get("rendition")
    user = user_of(row.user)
    if user is not None:
        data["user"] = user
    return data


def cloud_event(row: OutboxEvent, data: dict[str, Any], source: str) -> dict[str, Any]:
    """The CloudEvent of an outbox row, validated by the cloudevents library, as the
    plain object both the webhooks and the journal send."""
    event = CloudEvent(
        {
            "id": row.id,
            "source": source,
            "specversion": "1.0",
            "type": models.AEM_TYPES[row.type],
            "datacontenttype": "application/json",
            "time": row.created_at,
        },
        data,
    )
    attributes = event.get_attributes()
    body: dict[str, Any] = {
        "specversion": attributes["specversion"],
        "type": attributes["type"],
        "source": attributes["source"],
        "id": attributes["id"],
        "time": rfc3339(row),
        "datacontenttype": attributes["datacontenttype"],
        "data": event.get_data(),
    }
    return body


def rfc3339(row: OutboxEvent) -> str:
    return row.created_at.isoformat(timespec="microseconds").replace("+00:00", "Z")


def delivery_event_id(registration_id: str, event_id: str) -> str:
    """The id Adobe I/O Events delivers an event under for one registration: the same
    on every retry and in the journal, different for each registration."""
    return str(uuid.uuid5(uuid.UUID(registration_id), event_id))


def for_registration(event: dict[str, Any], registration: models.Registration) -> dict[str, Any]:
    event_id = delivery_event_id(registration.id, event["id"])
    return {
        **event,
        "eventid": event_id,
        "event_id": event_id,
        "recipientclientid": registration.client_id,
        "recipient_client_id": registration.client_id,
    }


def compact(value: Any) -> bytes:
    """Compact JSON, as Adobe sends (no whitespace)."""
    return orjson.dumps(value)
