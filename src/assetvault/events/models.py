"""What the events domain keeps and hands out: AEM's event types, registrations and
the attempts made to deliver to them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from assetvault.tree import events as tree_events

PROCESSING_COMPLETED = "aem.assets.asset.processing_completed"
DELETED = "aem.assets.asset.deleted"
DOWNLOADED = "aem.assets.asset.downloaded"
METADATA_UPDATED = "aem.assets.asset.metadata_updated"
PUBLISHED = "aem.assets.asset.published"
UNPUBLISHED = "aem.assets.asset.unpublished"
IMPORT_COMPLETED = "aem.assets.import.completed"

# The outbox's domain events that AEM announces, and the AEM type each becomes. Every
# other domain event (created, moved, copied, renditions, folders...) AEM does not send.
AEM_TYPES: dict[str, str] = {
    tree_events.PROCESSING_COMPLETED: PROCESSING_COMPLETED,
    tree_events.DELETED["asset"]: DELETED,
    tree_events.DOWNLOADED: DOWNLOADED,
    tree_events.METADATA_UPDATED["asset"]: METADATA_UPDATED,
    tree_events.PUBLISHED: PUBLISHED,
    tree_events.UNPUBLISHED: UNPUBLISHED,
    tree_events.IMPORT_COMPLETED: IMPORT_COMPLETED,
}
EVENT_TYPES: tuple[str, ...] = tuple(AEM_TYPES.values())

DeliveryType = Literal["webhook", "webhook_batch", "journal"]
DELIVERY_TYPES: tuple[DeliveryType, ...] = ("webhook", "webhook_batch", "journal")

# webhook_status, as Adobe's registration API shows it.
VERIFIED = "verified"
PENDING_VALIDATION = "pending_validation"  # failed the challenge; waits for validationUrl
UNREACHABLE = "hook_unreachable"
NOT_APPLICABLE = "not_applicable"  # a journal registration has no webhook

# state: the 24-hour health rule.
ACTIVE = "active"
UNSTABLE = "unstable"
DISABLED = "disabled"


@dataclass(frozen=True)
class Registration:
    id: str
    name: str
    description: str
    client_id: str
    delivery_type: DeliveryType
    webhook_url: str | None
    event_types: tuple[str, ...]
    enabled: bool
    webhook_status: str
    state: str
    unstable_since: datetime | None
    validation_token: str | None
    validation_expires_at: datetime | None
    journal_start: int
    created_by: str
    created_at: datetime
    updated_at: datetime

    @property
    def is_webhook(self) -> bool:
        return self.delivery_type in ("webhook", "webhook_batch")

    @property
    def receives_deliveries(self) -> bool:
        """Whether new events are queued for its webhook (a disabled or unverified one
        only journals them)."""
        return (
            self.is_webhook
            and self.enabled
            and self.webhook_status == VERIFIED
            and self.state != DISABLED
        )

    def wants(self, aem_type: str) -> bool:
        return aem_type in self.event_types


@dataclass(frozen=True)
class Attempt:
    """One request sent to a webhook (one event, or a batch)."""

    delivery_id: str
    events: list[str]
    retry_count: int
    at: datetime
    ok: bool
    status: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    id: str
    type: str
    time: datetime
    event: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What a webhook answered: a status, or the error that stood for one."""

    status: int | None
    body: bytes = b""
    error: str | None = None
    blocked: bool = False  # the SSRF guard refused the address: nothing was sent
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """As Adobe I/O Events: 429, 5xx but 505, timeouts and connection errors."""
        if self.blocked:
            return False
        if self.status is None:
            return True
        return self.status == 429 or (500 <= self.status < 600 and self.status != 505)
