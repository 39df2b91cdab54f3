"""Event registrations (with the webhook handshake) and the journal, as Adobe I/O
Events offers them. Deliveries are the dispatcher's (events/dispatcher.py)."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson

from assetvault.adapters.database.engine import Database
from assetvault.errors import AssetvaultError, InvalidInput, NotFound
from assetvault.events import models
from assetvault.events import repository as repo
from assetvault.events.envelope import for_registration
from assetvault.events.ports import Signer, WebhookSender
from assetvault.settings import Settings

DEFAULT_CLIENT_ID = "assetvault"
JOURNAL_DEFAULT_LIMIT = 100
JOURNAL_MAX_LIMIT = 10_000
JOURNAL_MAX_BYTES = 1_500_000  # Adobe caps a journal response at 1.5 MB
# Every parser of outside input is bounded and ASCII-only (a Unicode digit is no digit
# here): a value outside these shapes is a 400, never an overflow.
POSITION = re.compile(r"av:([0-9]{1,18})")
LIMIT = re.compile(r"[0-9]{1,9}")
DURATION = re.compile(
    r"(?P<sign>[-+]?)P(?:(?P<weeks>[0-9]{1,9})W)?(?:(?P<days>[0-9]{1,9})D)?"
    r"(?:T(?:(?P<hours>[0-9]{1,9})H)?(?:(?P<minutes>[0-9]{1,9})M)?"
    r"(?:(?P<seconds>[0-9]{1,9}(?:\.[0-9]{1,9})?)S)?)?"
)
REGISTRATION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
VALIDATION_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class Gone(AssetvaultError):
    status = 410
    title = "Gone"


def position(seq: int) -> str:
    """Journal positions: opaque to clients, URL-safe, increasing."""
    return f"av:{seq}"


def parse_position(text: str) -> int:
    found = POSITION.fullmatch(text)
    if found is None:
        raise InvalidInput(f"since: {text[:100]!r} is no position of this journal")
    return int(found.group(1))


def parse_limit(text: str) -> int:
    if LIMIT.fullmatch(text) is None or not 0 < int(text) <= JOURNAL_MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer from 1 to {JOURNAL_MAX_LIMIT}")
    return int(text)


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration such as -PT2H, -P1D or -P5DT2H (each part at most 9 digits)."""
    found = DURATION.fullmatch(text)
    if found is None or text.rstrip("T").endswith(("P", "-P", "+P")) or text.endswith("T"):
        raise InvalidInput(f"seek: {text[:100]!r} is no ISO 8601 duration (e.g. -PT2H)")
    parts = {k: float(v) for k, v in found.groupdict().items() if v and k != "sign"}
    try:
        delta = timedelta(
            weeks=parts.get("weeks", 0),
            days=parts.get("days", 0),
            hours=parts.get("hours", 0),
            minutes=parts.get("minutes", 0),
            seconds=parts.get("seconds", 0),
        )
    except OverflowError:
        raise InvalidInput(f"seek: {text[:100]!r} is a longer time than any journal") from None
    return -delta if found.group("sign") == "-" else delta


def seek_time(text: str, now: datetime) -> datetime:
    """The time ``seek`` names, counted from ``now``."""
    try:
        return now + parse_duration(text)
    except OverflowError:
        raise InvalidInput(f"seek: {text[:100]!r} is a longer time than any journal") from None


def challenge_answered(body: bytes, challenge: str) -> bool:
    """The three answers Adobe's handshake accepts: the raw value, the value as a JSON
    string, or a JSON object whose ``challenge`` holds it."""
    text = body.decode("utf-8", "replace").strip()
    if text == challenge:
        return True
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    if isinstance(parsed, str):
        return parsed == challenge
    return isinstance(parsed, dict) and parsed.get("challenge") == challenge


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


@dataclass(frozen=True)
class RegistrationSpec:
    """What a client asks for; checked by ``EventService`` (400 naming the field).
    ``client_id`` None: not given, so a new registration takes ``DEFAULT_CLIENT_ID`` and
    an update keeps the registration's own (as Adobe's registration API does)."""

    name: str
    delivery_type: str
    event_types: list[str]
    webhook_url: str | None = None
    client_id: str | None = None
    description: str = ""
    enabled: bool = True

    def columns(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "client_id": self.client_id,
            "delivery_type": self.delivery_type,
            "webhook_url": self.webhook_url,
            "event_types": self.event_types,
        }


@dataclass(frozen=True)
class JournalPage:
    entries: list[dict[str, Any]]  # {"position", "event"}
    next_query: dict[str, str]
    last: str | None = None
    retry_after: int | None = None
    links: dict[str, str] = field(default_factory=dict)


class EventService:
    def __init__(
        self, settings: Settings, db: Database, sender: WebhookSender, signer: Signer
    ) -> None:
        self.settings = settings
        self.db = db
        self.sender = sender
        self.signer = signer

    # -- registrations -------------------------------------------------------------------

    async def _checked(
        self, spec: RegistrationSpec, current: models.Registration | None = None
    ) -> RegistrationSpec:
        """The spec checked, its client id resolved: the one given, else the current
        registration's (an update), else ``DEFAULT_CLIENT_ID`` (a new one)."""
        if not isinstance(spec.name, str) or not 0 < len(spec.name.strip()) <= 255:
            raise InvalidInput("name: 1 to 255 characters are required")
        client_id = spec.client_id
        if client_id is None:
            client_id = current.client_id if current is not None else DEFAULT_CLIENT_ID
        if not isinstance(client_id, str) or not 0 < len(client_id) <= 255:
            raise InvalidInput("client_id: 1 to 255 characters are required")
        if not re.fullmatch(r"[A-Za-z0-9._@-]+", client_id):
            raise InvalidInput("client_id: letters, digits and . _ @ - only")
        if spec.delivery_type not in models.DELIVERY_TYPES:
            raise InvalidInput(
                f"delivery_type: {spec.delivery_type!r} is not one of "
                + ", ".join(models.DELIVERY_TYPES)
            )
        if not spec.event_types:
            raise InvalidInput("events_of_interest: at least one event type is required")
        unknown = [t for t in spec.event_types if t not in models.EVENT_TYPES]
        if unknown:
            raise InvalidInput(
                f"events_of_interest: {unknown[0]!r} is not an event type; known: "
                + ", ".join(models.EVENT_TYPES)
            )
        if not isinstance(spec.description, str) or len(spec.description) > 4096:
            raise InvalidInput("description: at most 4096 characters")
        for name, text in (("name", spec.name), ("description", spec.description)):
            if UNSTORABLE.search(text):  # a database keeps no NUL, and no lone surrogate
                raise InvalidInput(f"{name}: NUL characters and lone surrogates are not allowed")
        url = spec.webhook_url
        if spec.delivery_type == "journal":
            if url:
                raise InvalidInput("webhook_url: a journal registration has no webhook")
        else:
            if not url or not isinstance(url, str):
                raise InvalidInput(
                    f"webhook_url is required for delivery_type {spec.delivery_type}"
                )
            if len(url) > 2048:
                raise InvalidInput("webhook_url: at most 2048 characters")
            refusal = await self.sender.vet(url)
            if refusal is not None:
                raise InvalidInput(f"webhook_url is refused: {refusal}")
        types = list(dict.fromkeys(spec.event_types))
        return RegistrationSpec(
            spec.name.strip(),
            spec.delivery_type,
            types,
            url or None,
            client_id,
            spec.description,
            bool(spec.enabled),
        )

    async def _handshake(
        self, registration_id: str, url: str, base_url: str
    ) -> tuple[str, str | None, datetime | None]:
        """(webhook_status, validation token, its expiry): the challenge GET, then, if it
        failed, the validationUrl POST."""
        challenge = str(uuid.uuid4())
        headers = {"user-agent": "Adobe/1.0"}
        answer = await self.sender.send(
            "GET", with_query(url, challenge=challenge), headers=headers
        )
        if answer.ok and challenge_answered(answer.body, challenge):
            return models.VERIFIED, None, None
        token = secrets.token_urlsafe(24)
        validation_url = f"{base_url}/events/validate?" + urlencode(
            {"id": registration_id, "challenge": token}
        )
        posted = await self.sender.send(
            "POST",
            url,
            headers={**headers, "content-type": "application/json"},
            body=orjson.dumps({"validationUrl": validation_url}),
        )
        if posted.ok:
            expires = datetime.now(UTC) + timedelta(seconds=self.settings.events_validation_seconds)
            return models.PENDING_VALIDATION, token, expires
        return models.UNREACHABLE, None, None

    def _verification(
        self, status: str, token: str | None, expires: datetime | None, enabled: bool
    ) -> dict[str, Any]:
        return {
            "webhook_status": status,
            "validation_token": token,
            "validation_expires_at": expires,
            "enabled": enabled and status != models.UNREACHABLE,
            "state": models.DISABLED if status == models.UNREACHABLE else models.ACTIVE,
            "unstable_since": None,
        }

    async def create(
        self, spec: RegistrationSpec, *, user: str, base_url: str
    ) -> models.Registration:
        spec = await self._checked(spec)
        registration_id = str(uuid.uuid4())
        if spec.delivery_type == "journal":
            verification = self._verification(models.NOT_APPLICABLE, None, None, spec.enabled)
        else:
            assert spec.webhook_url is not None
            found = await self._handshake(registration_id, spec.webhook_url, base_url)
            verification = self._verification(*found, spec.enabled)
        now = datetime.now(UTC)
        async with self.db.write() as conn:
            await repo.insert_registration(
                conn,
                {
                    "id": registration_id,
                    **spec.columns(),
                    "journal_start": await repo.last_journal_seq(conn),
                    "created_by": user,
                    "created_at": now,
                    "updated_at": now,
                    **verification,
                },
            )
        return await self.get(registration_id)

    async def update(
        self, registration_id: str, spec: RegistrationSpec, *, base_url: str
    ) -> models.Registration:
        """Replace a registration's settings; editing a webhook (or enabling one again)
        runs the handshake again, as Adobe's does."""
        current = await self.get(registration_id)
        spec = await self._checked(spec, current)
        values: dict[str, Any] = {**spec.columns(), "updated_at": datetime.now(UTC)}
        if spec.delivery_type == "journal":
            values.update(self._verification(models.NOT_APPLICABLE, None, None, spec.enabled))
        elif spec.enabled:
            assert spec.webhook_url is not None
            found = await self._handshake(registration_id, spec.webhook_url, base_url)
            values.update(self._verification(*found, True))
        else:
            values["enabled"] = False
        async with self.db.write() as conn:
            await repo.update_registration(conn, registration_id, values)
        return await self.get(registration_id)

    async def _settle(self, registration: models.Registration) -> models.Registration:
        """A validation that ran out disables its registration (Adobe: after 5 minutes)."""
        expires = registration.validation_expires_at
        if (
            registration.webhook_status == models.PENDING_VALIDATION
            and expires is not None
            and expires <= datetime.now(UTC)
        ):
            async with self.db.write() as conn:
                await repo.expire_validation(conn, registration.id)
                found = await repo.registration(conn, registration.id)
            assert found is not None
            return found
        return registration

    async def get(self, registration_id: str) -> models.Registration:
        if REGISTRATION_ID.fullmatch(registration_id) is None:  # never sent to the database
            raise NotFound(f"event registration {registration_id[:100]!r} does not exist")
        async with self.db.read() as conn:
            found = await repo.registration(conn, registration_id)
        if found is None:
            raise NotFound(f"event registration {registration_id} does not exist")
        return await self._settle(found)

    async def all(self) -> list[models.Registration]:
        async with self.db.read() as conn:
            found = await repo.registrations(conn)
        return [await self._settle(r) for r in found]

    async def delete(self, registration_id: str) -> None:
        await self.get(registration_id)
        async with self.db.write() as conn:
            if not await repo.delete_registration(conn, registration_id):
                raise NotFound(f"event registration {registration_id} does not exist")

    async def attempts(self, registration_id: str, limit: int = 50) -> list[models.Attempt]:
        async with self.db.read() as conn:
            return await repo.attempts_of(conn, registration_id, limit=limit)

    async def validate(self, registration_id: str, token: str) -> models.Registration:
        """The GET on a validationUrl: makes the registration verified and active."""
        if REGISTRATION_ID.fullmatch(registration_id) is None or not VALIDATION_TOKEN.fullmatch(
            token
        ):
            raise InvalidInput("id and challenge: this is no validation link of this server")
        try:
            registration = await self.get(registration_id)
        except NotFound:
            registration = None
        if (
            registration is None
            or registration.webhook_status != models.PENDING_VALIDATION
            or not registration.validation_token
            or not secrets.compare_digest(registration.validation_token.encode(), token.encode())
        ):
            raise NotFound("this validation link is not valid (or no longer: it lasts 5 minutes)")
        async with self.db.write() as conn:
            await repo.update_registration(
                conn,
                registration_id,
                {
                    "webhook_status": models.VERIFIED,
                    "enabled": True,
                    "state": models.ACTIVE,
                    "unstable_since": None,
                    "validation_token": None,
                    "validation_expires_at": None,
                    "updated_at": datetime.now(UTC),
                },
            )
        return await self.get(registration_id)

    # -- journal -------------------------------------------------------------------------

    def journal_path(self, registration: models.Registration) -> str:
        return (
            f"/events/organizations/{self.settings.ims_org_id}/integrations/"
            f"{registration.client_id}/{registration.id}"
        )

    async def journal(
        self,
        org: str,
        credential: str,
        registration_id: str,
        *,
        since: str | None = None,
        limit: str | None = None,
        latest: str | None = None,
        seek: str | None = None,
    ) -> JournalPage:
        if org != self.settings.ims_org_id:
            raise NotFound(f"organization {org} has no journal here")
        try:
            registration = await self.get(registration_id)
        except NotFound:
            registration = None
        if registration is None or registration.client_id != credential:
            raise NotFound(f"no journal {registration_id} for integration {credential}")
        if since is not None and seek is not None:
            raise InvalidInput("seek and since cannot be combined")
        count = JOURNAL_DEFAULT_LIMIT
        if limit is not None:
            count = parse_limit(limit)
        keep = {"limit": limit} if limit is not None else {}
        if latest is not None and latest.lower() not in ("true", "false"):
            raise InvalidInput("latest must be true or false")
        async with self.db.read() as conn:
            purged = await repo.int_state(conn, repo.FLOOR)
            floor = max(purged, registration.journal_start)
            if latest is not None and latest.lower() == "true":
                end = max(await repo.last_journal_seq(conn), registration.journal_start)
                return self._empty(registration, {"since": position(end), **keep})
            since_time = None
            if since is not None:
                after = parse_position(since)
                if purged > max(after, registration.journal_start):
                    raise Gone(f"Events at position {since} have expired.")
                after = max(after, registration.journal_start)
            else:
                after = floor
                if seek is not None:
                    since_time = seek_time(seek, datetime.now(UTC))
            found = await repo.journal_page(
                conn,
                after=after,
                types=registration.event_types,
                limit=count,
                since_time=since_time,
            )
            end = max(await repo.last_journal_seq(conn), after)
        entries: list[dict[str, Any]] = []
        size = 0
        for entry in found:
            item = {
                "position": position(entry.seq),
                "event": for_registration(entry.event, registration),
            }
            size += len(orjson.dumps(item))
            if entries and size > JOURNAL_MAX_BYTES:
                break
            entries.append(item)
        if not entries:
            if seek is None:  # the same request again, as Adobe's 204 says
                query = {k: v for k, v in (("since", since), ("limit", limit)) if v is not None}
            else:  # after a seek, follow on from where the journal ends now
                query = {"since": position(end), **keep}
            return self._empty(registration, query)
        last = entries[-1]["position"]
        return JournalPage(
            entries,
            {"since": last, **keep},
            last=last,
            links=self._links(registration),
        )

    def _empty(self, registration: models.Registration, query: dict[str, str]) -> JournalPage:
        return JournalPage(
            [],
            query,
            retry_after=self.settings.events_journal_retry_after_seconds,
            links=self._links(registration),
        )

    def _links(self, registration: models.Registration) -> dict[str, str]:
        base = self.journal_path(registration)
        return {"events": base, "latest": f"{base}?latest=true"}
