"""The dispatcher: turns the outbox's domain events into AEM's CloudEvents (the
journal) and delivers them to webhooks as Adobe I/O Events does.

One dispatcher runs at a time (a lease in the database). It reads the outbox after its
recorded position; in one transaction it appends the journal entries, queues one
delivery per (webhook registration, event) and moves its position, so a crash or kill -9
anywhere loses nothing and doubles nothing in the journal. A delivery is sent at least
once: one whose answer was not recorded before a crash is sent again after it, under the
same event id. Deliveries run concurrently and never hold the loop; the due deliveries
are taken registration by registration, each with at most a quarter of the requests in
flight while others have deliveries due (``share``), so a slow or failing receiver
delays only its own events.

Retries: 2xx is success; 429, 5xx except 505, timeouts, connection errors and any other
failure to get an answer are retried per event after 1, 2, 4, 8, then every 15 units (a
minute each, by default) until the retry window (24 hours) ends; other answers (a 3xx
included: redirects are not followed) are final. Every request, whatever became of it,
is an attempt written down (``_send`` is the one place where a failure of any kind
becomes one). The health rule: over the last window, at least 10 attempts of which at
least 80 % failed make an active registration unstable; still so one window later, it
is disabled (it keeps journaling).

Idle, the dispatcher sleeps: a commit that appends outbox rows wakes it (the ``outbox``
topic of runtime/wake.py), a request in flight wakes it when its answer is in, and
otherwise it waits for its next timer only: the lease's renewal, housekeeping, the next
retry due, or the safety net (``wake_safety_seconds``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from assetvault.adapters.database.connection import Connection
from assetvault.adapters.database.engine import Database
from assetvault.adapters.database.reader import Reader
from assetvault.events import models
from assetvault.events import repository as repo
from assetvault.events.envelope import (
    cloud_event,
    compact,
    event_data,
    for_registration,
    source_of,
)
from assetvault.events.ports import Signer, WebhookSender
from assetvault.metadata.service import MetadataService
from assetvault.runtime.wake import OUTBOX, Listener, Wakeups
from assetvault.settings import Settings
from assetvault.tree import repository as tree_repo
from assetvault.tree.models import OutboxEvent

log = logging.getLogger("assetvault.events")

LEASE_SECONDS = 15.0
HOUSEKEEPING_SECONDS = 10.0  # retention, expired validations, the health rule
CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"


def retry_wait(attempts: int, unit: float) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: 1, 2, 4, 8, 15, 15... units."""
    return unit * (2 ** (attempts - 1) if attempts <= 4 else 15)


def traceparent() -> str:
    return f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"


@dataclass
class Batch:
    registration: models.Registration
    deliveries: list[dict[str, Any]]


@dataclass
class _Sent:
    """A request's answer, to be written down by ``Dispatcher.record``."""

    registration_id: str
    deliveries: list[dict[str, Any]]
    attempt: models.Attempt
    outcome: models.Outcome
    active: bool = True  # the registration's state when the request was sent


@dataclass
class _Expired:
    deliveries: list[dict[str, Any]]


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        metadata: MetadataService,
        sender: WebhookSender,
        signer: Signer,
        wakeups: Wakeups,
    ) -> None:
        self.settings = settings
        self.wakeups = wakeups
        self.db = db
        self.metadata = metadata
        self.sender = sender
        self.signer = signer
        self.source = source_of(settings.aem_program_id, settings.aem_environment_id)
        self.provider = f"aemassets_{settings.ims_org_id}_{self.source.removeprefix('acct:')}"
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._in_flight: set[int] = set()
        self._busy: dict[str, int] = {}  # requests in flight, by registration
        self._tasks: set[asyncio.Task[None]] = set()
        self._records: list[_Sent | _Expired] = []
        # The answers being written down meanwhile (``_record_behind``), if any.
        self._recording: asyncio.Task[int] | None = None
        self._last_housekeeping = 0.0
        self._lease_expires = 0.0  # another holder's lease, as last seen (time.time())
        self._listener: Listener | None = None  # the running loop's, woken by answers
        # Rounds run by ``run_forever`` (what a test counts).
        self.rounds = 0

    # -- one dispatcher at a time ----------------------------------------------------------

    async def acquire_lease(self) -> bool:
        """Take (or renew) the lease; False while another dispatcher holds it."""
        now = time.time()
        async with self.db.write() as conn:
            # The row locked (PostgreSQL; SQLite's write transaction excludes the others
            # already): two dispatchers that both found the lease expired would
            # otherwise both take it, on machines of their own.
            current = await repo.get_state(conn, repo.LEASE, lock=True)
            if current:
                holder, _, expires = current.rpartition(" ")
                if holder != self.holder and float(expires) > now:
                    self._lease_expires = float(expires)
                    return False
            await repo.set_state(conn, repo.LEASE, f"{self.holder} {now + LEASE_SECONDS}")
        return True

    async def release_lease(self) -> None:
        async with self.db.write() as conn:
            current = await repo.get_state(conn, repo.LEASE)
            if current and current.rpartition(" ")[0] == self.holder:
                await repo.set_state(conn, repo.LEASE, "")

    # -- outbox -> journal + deliveries ----------------------------------------------------

    async def materialize(self, batch: int = 200) -> int:
        """Turn the next outbox rows into journal entries and deliveries; returns how
        many outbox rows were consumed.

        The events (each with its asset's envelope: the costly part) are built from a
        read transaction; the write transaction only checks that the position is still
        where the read found it, and appends them. Built inside it, a batch held the
        database's write lock for tens of milliseconds of Python while every API
        request's change waited in line behind it."""
        now = datetime.now(UTC)
        # Most rounds find nothing: no write lock then. Read on the driver itself (in
        # the loop on SQLite, asyncpg on PostgreSQL): no thread hop per statement.
        async with self.db.reader() as r:
            after = await repo.dispatch_position(r)
            # The head counts the pruned floor: past it, rows wait or some were pruned.
            if await tree_repo.outbox_head(r) <= after:
                return 0
            built = None
            if after >= await tree_repo.outbox_floor(r):
                built = await self._events_after(r, after, batch)
        async with self.db.write() as conn:
            if built is None or await repo.int_state(conn, repo.POSITION) != after:
                # Below the floor, or the position moved meanwhile: all of it here.
                built = await self._materialize_position(conn, batch)
            if built is None or not built[0]:
                return 0
            rows, events = built
            receivers = [reg for reg in await repo.registrations(conn) if reg.receives_deliveries]
            # One insert for the whole batch of entries (a statement each would be a
            # round each on the dispatcher's loop).
            seqs = await repo.append_journal_many(conn, events)
            deliveries: list[dict[str, Any]] = []
            for (_, event, _), seq in zip(events, seqs, strict=True):
                deliveries.extend(
                    {
                        "registration_id": reg.id,
                        "journal_seq": seq,
                        "state": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for reg in receivers
                    if reg.wants(event["type"])
                )
            await repo.add_deliveries(conn, deliveries)
            await repo.set_state(conn, repo.POSITION, str(rows[-1].seq))
        return len(rows)

    async def _materialize_position(
        self, conn: Connection, batch: int
    ) -> tuple[list[OutboxEvent], list[tuple[int, dict[str, Any], datetime]]] | None:
        """The position and the events after it, read in the write transaction."""
        r = self.db.reader_of(conn)
        after = await repo.int_state(conn, repo.POSITION)
        floor = await tree_repo.outbox_floor(r)
        if after < floor:
            # The outbox rows after this position are gone (the sweep prunes only
            # what the dispatcher has read, so its position was reset or the
            # database restored from an older copy): their events cannot be made
            # any more. Said loudly, and the dispatcher goes on from the floor
            # rather than stop every later event.
            log.warning(
                "event dispatcher at outbox position %d, but the outbox is pruned up "
                "to %d: the events between are lost; going on from %d",
                after,
                floor,
                floor,
            )
            after = floor
            await repo.set_state(conn, repo.POSITION, str(floor))
        return await self._events_after(r, after, batch)

    async def _events_after(
        self, r: Reader, after: int, batch: int
    ) -> tuple[list[OutboxEvent], list[tuple[int, dict[str, Any], datetime]]]:
        """The next outbox rows after ``after`` and the events they announce."""
        rows = await tree_repo.outbox_after(r, after, batch)
        if not rows:
            return [], []
        announced = [row for row in rows if row.type in models.AEM_TYPES]
        nodes = await tree_repo.by_ids(r, sorted({row.node_id for row in announced if row.node_id}))
        envelopes = dict(
            zip(nodes, await self.metadata.envelopes(r, list(nodes.values())), strict=True)
        )
        events = []
        for row in announced:
            node = nodes.get(row.node_id or "")
            data = event_data(row, node, envelopes.get(row.node_id or ""))
            events.append((row.seq, cloud_event(row, data, self.source), row.created_at))
        return rows, events

    # -- deliveries ------------------------------------------------------------------------

    @property
    def share(self) -> int:
        """How many requests one registration may have in flight while others have
        deliveries due too (alone, it may have all but one share)."""
        return max(1, self.settings.events_concurrency // 4)

    async def deliver_due(self) -> int:
        """Start sending what is due (without waiting for the answers); returns how many
        requests were started. Registrations take turns, the one waiting longest first,
        each within its share of the requests."""
        capacity = self.settings.events_concurrency - len(self._tasks)
        if capacity <= 0:
            return 0
        per_request = self.settings.events_batch_max_events
        now = datetime.now(UTC)
        batches: list[Batch] = []
        # What is in flight as of before the read: a record that commits while the read
        # is under way (it runs on its own task) leaves its deliveries due in the read's
        # snapshot, so they must stay left out even once that record lets them go.
        in_flight = sorted(self._in_flight)
        # One read on the driver (no thread hop per statement): a busy dispatcher runs a
        # round per answer, and these reads were most of a round.
        async with self.db.reader() as r:
            waiting = await repo.due_registrations(r, now)
            if not waiting:
                return 0
            registrations = {reg.id: reg for reg in await repo.registrations_read(r)}
            senders = [w for w in waiting if w in registrations and registrations[w].is_webhook]
            most = self.share if len(senders) > 1 else self.settings.events_concurrency - self.share
            for registration_id in waiting:
                registration = registrations.get(registration_id)
                slots = min(
                    max(most, self.share) - self._busy.get(registration_id, 0),
                    capacity - len(batches),
                )
                if registration is None or not registration.is_webhook or slots <= 0:
                    continue
                size = per_request if registration.delivery_type == "webhook_batch" else 1
                # Each with its journal entry, in the same statement.
                due = await repo.due_deliveries(r, now, slots * size, in_flight, registration_id)
                batches.extend(
                    Batch(registration, due[i : i + size]) for i in range(0, len(due), size)
                )
                if len(batches) >= capacity:
                    break
        if not batches:
            return 0
        for one in batches:
            for delivery in one.deliveries:
                self._in_flight.add(delivery["id"])
            registration_id = one.registration.id
            self._busy[registration_id] = self._busy.get(registration_id, 0) + 1
            task = asyncio.create_task(self._send(one))
            self._tasks.add(task)
            task.add_done_callback(self._sent)
        return len(batches)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._listener is not None:
            self._listener.kick()  # its answer is to be recorded

    def _bodies(self, batch: Batch) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The deliveries that can be sent (and their events), within the batch limit of
        bytes; the rest wait for the next request."""
        sendable: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        size = 2
        for delivery in batch.deliveries:
            entry = delivery["entry"]
            if entry is None:
                continue
            event = for_registration(entry.event, batch.registration)
            size += len(compact(event)) + 1
            if events and size > self.settings.events_batch_max_bytes:
                break
            sendable.append(delivery)
            events.append(event)
        return sendable, events

    async def _send(self, batch: Batch) -> None:
        """Send one request and queue its record. The one boundary of failures: whatever
        goes wrong here (the sender's port promises outcomes, but a broken event or a
        bug is no exception to this) is a failed attempt, retried on the schedule and
        counted by the health rule; never a delivery let go to be sent again at once."""
        registration = batch.registration
        settled: set[int] = set()
        try:
            expired = [d for d in batch.deliveries if d["entry"] is None]
            if expired:  # its journal entry is past retention: nothing left to send
                self._records.append(_Expired(expired))
                settled.update(d["id"] for d in expired)
            sendable, events = self._bodies(batch)
            if sendable:
                # Awaited first: ``record`` swaps the list while requests are out, and an
                # answer appended to the list it already took would never be written down
                # (its deliveries held as in flight for good).
                sent = await self._post(registration, sendable, events)
                self._records.append(sent)
                settled.update(d["id"] for d in sendable)
        except Exception as exc:
            error = _describe(exc)
            log.warning(
                "delivery to registration %s failed before an answer: %s", registration.id, error
            )
            failed = [d for d in batch.deliveries if d["id"] not in settled and d["entry"]]
            if failed:
                self._records.append(_failure(registration.id, failed, error))
                settled.update(d["id"] for d in failed)
        finally:
            # Past the batch's bytes (the next request takes them), or cancelled.
            for delivery in batch.deliveries:
                if delivery["id"] not in settled:
                    self._in_flight.discard(delivery["id"])
            left = self._busy.get(registration.id, 1) - 1
            if left > 0:
                self._busy[registration.id] = left
            else:
                self._busy.pop(registration.id, None)

    def headers_for(
        self,
        registration: models.Registration,
        events: list[dict[str, Any]],
        body: bytes,
        retry_count: int,
        signatures: list[tuple[str, str]] | None = None,
    ) -> dict[str, str]:
        """A delivery's headers as AEM sends them; ``signatures`` of the body when they
        were made already (off the loop), else they are made here."""
        first = events[0]
        headers = {
            "content-type": CONTENT_TYPE,
            "user-agent": "Adobe/1.0",
            "accept-encoding": "deflate,compress,identity",
            "x-adobe-event-code": first["type"],
            "x-adobe-event-id": first["event_id"],
            "x-adobe-delivery-id": str(uuid.uuid4()),
            "x-request-id": str(uuid.uuid4()),
            "x-adobe-provider": self.provider,
            "traceparent": traceparent(),
        }
        if signatures is None:
            signatures = self.signer.sign(body)
        for number, (signature, key_path) in enumerate(signatures, start=1):
            headers[f"x-adobe-digital-signature-{number}"] = signature
            headers[f"x-adobe-public-key{number}-path"] = key_path
        if retry_count:
            headers["x-adobe-retry-count"] = str(retry_count)
        return headers

    async def _post(
        self,
        registration: models.Registration,
        deliveries: list[dict[str, Any]],
        events: list[dict[str, Any]],
    ) -> _Sent:
        assert registration.webhook_url is not None
        batched = registration.delivery_type == "webhook_batch"
        body = compact(events if batched else events[0])
        retry_count = max(int(d["attempts"]) for d in deliveries)
        # Both signatures on threads (OpenSSL releases the GIL): the loop sends and
        # reads answers meanwhile.
        signatures = await self.signer.signatures(body)
        headers = self.headers_for(registration, events, body, retry_count, signatures)
        outcome = await self.sender.send(
            "POST", registration.webhook_url, headers=headers, body=body
        )
        now = datetime.now(UTC)
        attempt = models.Attempt(
            delivery_id=headers["x-adobe-delivery-id"],
            events=[e["event_id"] for e in events],
            retry_count=retry_count,
            at=now,
            ok=outcome.ok,
            status=outcome.status,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
        if not outcome.ok:
            log.info(
                "delivery %s to %s: %s",
                attempt.delivery_id,
                registration.webhook_url,
                outcome.status or outcome.error,
            )
        return _Sent(
            registration.id,
            deliveries,
            attempt,
            outcome,
            active=registration.state == models.ACTIVE,
        )

    async def record(self) -> int:
        """Write down the answers received since the last call, all in one transaction
        (one commit for many deliveries); returns how many requests it recorded."""
        if not self._records:
            return 0
        records, self._records = self._records, []
        window = timedelta(seconds=self.settings.events_retry_window_seconds)
        unit = self.settings.events_retry_unit_seconds
        attempts: list[tuple[str, models.Attempt]] = []
        changes: list[tuple[int, dict[str, Any]]] = []
        judged: set[str] = set()
        for record in records:
            if isinstance(record, _Expired):
                changes.extend(
                    (d["id"], {"state": "expired", "last_error": "expired"})
                    for d in record.deliveries
                )
                continue
            outcome, now = record.outcome, record.attempt.at
            attempts.append((record.registration_id, record.attempt))
            for delivery in record.deliveries:
                count = int(delivery["attempts"]) + 1
                values: dict[str, Any] = {
                    "attempts": count,
                    "last_status": outcome.status,
                    "last_error": outcome.error,
                }
                if outcome.ok:
                    values["state"] = "delivered"
                elif not outcome.retryable:
                    values["state"] = "failed"
                else:
                    wait = timedelta(seconds=retry_wait(count, unit))
                    created = tree_repo.instant(delivery["created_at"])
                    if now + wait > created + window:
                        values["state"] = "expired"
                    else:
                        values["next_attempt_at"] = now + wait
                changes.append((delivery["id"], values))
            # The health rule can only turn against an active registration after a
            # failed attempt; one not active is judged after every answer (housekeeping
            # judges them all every few seconds besides).
            if not outcome.ok or not record.active:
                judged.add(record.registration_id)
        try:
            # The whole group in one transaction and a few statements: the attempts in
            # one insert, the deliveries in one update per kind of change.
            async with self.db.write() as conn:
                await repo.add_attempts(conn, attempts)
                await repo.update_deliveries(conn, changes)
                now = datetime.now(UTC)
                for registration_id in sorted(judged):
                    await self._judge(conn, registration_id, now)
        finally:
            # Recorded or not (a failed commit sends them again: at least once).
            for record in records:
                for delivery in record.deliveries:
                    self._in_flight.discard(delivery["id"])
        return len(records)

    def _record_behind(self) -> bool:
        """Start writing down the answers in hand on a task of its own, one such task at
        a time; True when one started. The round goes on meanwhile: while that commit is
        on its way to the disk, the next requests are already out (awaited in the round,
        each commit held every new request back for its fsync). The deliveries stay in
        flight until their record has committed, so none is taken again before; a
        record that failed is raised by the next round, which backs off as a failed
        round does, and its deliveries are sent again (at least once)."""
        recording = self._recording
        if recording is not None:
            if not recording.done():
                return False
            self._recording = None
            if not recording.cancelled():
                recording.result()
        if not self._records:
            return False
        self._recording = asyncio.create_task(self.record())
        self._recording.add_done_callback(self._recorded)
        return True

    def _recorded(self, task: asyncio.Task[int]) -> None:
        # Recorded deliveries are no longer in flight: a retry among them may be the
        # next timer, which the round after this one works out.
        if self._listener is not None:
            self._listener.kick()

    # -- health, retention, validation -----------------------------------------------------

    async def _judge(self, conn: Connection, registration_id: str, now: datetime) -> None:
        """Apply the 24-hour rule to one registration."""
        registration = await repo.registration(conn, registration_id)
        if registration is None or not registration.is_webhook:
            return
        window = timedelta(seconds=self.settings.events_health_window_seconds)
        total, failed = await repo.attempt_counts(conn, registration_id, now - window)
        failing = total >= 10 and failed >= 0.8 * total
        if registration.state == models.ACTIVE and failing:
            await repo.update_registration(
                conn, registration_id, {"state": models.UNSTABLE, "unstable_since": now}
            )
        elif (
            registration.state == models.UNSTABLE
            and registration.unstable_since is not None
            and now - registration.unstable_since >= window
        ):
            values: dict[str, Any] = {"unstable_since": None}
            values.update(
                {"state": models.DISABLED, "enabled": False}
                if failing
                else {"state": models.ACTIVE}
            )
            await repo.update_registration(conn, registration_id, values)

    async def housekeeping(self) -> None:
        now = datetime.now(UTC)
        retention = timedelta(seconds=self.settings.events_journal_retention_seconds)
        window = timedelta(seconds=self.settings.events_retry_window_seconds)
        health = timedelta(seconds=self.settings.events_health_window_seconds)
        async with self.db.write() as conn:
            floor = await repo.purge_journal_before(conn, now - retention)
            if floor:
                await repo.set_state(conn, repo.FLOOR, str(floor))
            await repo.forget_deliveries_before(conn, now - max(window, retention))
            await repo.forget_attempts_before(conn, now - 2 * max(health, window))
            for registration in await repo.registrations(conn):
                await self._judge(conn, registration.id, now)
                expires = registration.validation_expires_at
                if (
                    registration.webhook_status == models.PENDING_VALIDATION
                    and expires is not None
                    and expires <= now
                ):
                    await repo.expire_validation(conn, registration.id)

    # -- the loop --------------------------------------------------------------------------

    async def run_once(self) -> bool:
        """One round: consume the outbox, start due deliveries, housekeeping now and
        then. True when it found work."""
        recorded = self._record_behind()
        moved = await self.materialize()
        started = await self.deliver_due()
        if time.monotonic() - self._last_housekeeping >= HOUSEKEEPING_SECONDS:
            self._last_housekeeping = time.monotonic()
            await self.housekeeping()
        return bool(moved or started or recorded)

    async def drain(self, seconds: float = 30.0) -> None:
        """Wait for the requests in flight and record their answers (tests, and a clean
        stop)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=seconds)
        if self._recording is not None:
            recording, self._recording = self._recording, None
            await recording
        await self.record()

    async def idle_seconds(self, renewed: float) -> float:
        """How long an idle dispatcher may sleep: until its next timer (the lease's
        renewal, housekeeping, the next delivery due that can start) or the safety net;
        a commit or an answer wakes it sooner."""
        now = time.monotonic()
        timers = [
            self.settings.wake_safety_seconds,
            renewed + LEASE_SECONDS / 3 - now,
            self._last_housekeeping + HOUSEKEEPING_SECONDS - now,
        ]
        if len(self._tasks) < self.settings.events_concurrency:
            async with self.db.reader() as r:
                due = await repo.next_due(r, sorted(self._in_flight))
            if due is not None:
                timers.append((due - datetime.now(UTC)).total_seconds())
        # Never shorter than the busy pace (a timer already due was just served).
        return max(min(timers), self.settings.events_poll_seconds)

    async def run_forever(self, stop: asyncio.Event) -> None:
        holding = False
        renewed = 0.0
        # Listening before the first look at the outbox: a commit after it wakes the wait.
        listener = self._listener = await self.wakeups.listen(OUTBOX)
        try:
            while not stop.is_set():
                if not holding or time.monotonic() - renewed > LEASE_SECONDS / 3:
                    holding = await self.acquire_lease()
                    renewed = time.monotonic()
                    if not holding:
                        # Another dispatcher holds it: look again when its lease ends.
                        left = self._lease_expires - time.time()
                        await _wait(stop, min(max(left, 0.1), LEASE_SECONDS))
                        continue
                self.rounds += 1
                try:
                    busy = await self.run_once()
                    if not busy:
                        await listener.wait(await self.idle_seconds(renewed), stop=stop)
                except Exception:
                    log.exception("event dispatch round failed; trying again")
                    await _wait(stop, 1.0)
        finally:
            self._listener = None
            await self.drain(self.settings.events_timeout_seconds + 1)
            if holding:
                await self.release_lease()


def _describe(exc: BaseException) -> str:
    """One line for a log and an attempt's error: the exception's type and message,
    printable and bounded."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
    return "".join(c if c.isprintable() else "?" for c in text)


def _failure(registration_id: str, deliveries: list[dict[str, Any]], error: str) -> _Sent:
    """The record of a request that got no answer: retried, as a connection error is."""
    events = [d["entry"].event for d in deliveries]
    attempt = models.Attempt(
        delivery_id=str(uuid.uuid4()),
        events=[str(e.get("event_id", "")) if isinstance(e, dict) else "" for e in events],
        retry_count=max(int(d["attempts"]) for d in deliveries),
        at=datetime.now(UTC),
        ok=False,
        status=None,
        error=error,
        duration_ms=0,
    )
    return _Sent(registration_id, deliveries, attempt, models.Outcome(None, error=error))


async def _wait(stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None) -> None:
    """Wait ``seconds``, or less when ``stop`` (or ``wake``) is set."""
    events = [stop] if wake is None else [stop, wake]
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
