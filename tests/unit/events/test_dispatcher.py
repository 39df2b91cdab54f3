"""The dispatcher on each database backend: a position below the pruned outbox's floor
is reported and moved to the floor, never left to skip rows in silence; a failure of
any kind while sending is a failed attempt written down and retried on the schedule;
idle, it sleeps until a commit wakes it or a retry becomes due."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from assetvault.events import repository as events_repo
from assetvault.events.dispatcher import Dispatcher
from assetvault.events.models import ACTIVE, AEM_TYPES, METADATA_UPDATED, VERIFIED, Outcome
from assetvault.services import Services
from assetvault.tree.repository import instant
from tests.factories import make_assets, outbox_events


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Far away: whatever a test sees sooner, a wake-up or a timer explains.
    return {"wake_safety_seconds": 60.0, "events_retry_unit_seconds": 0.3}


async def position(services: Services) -> int:
    async with services.db.reader() as r:
        return await events_repo.dispatch_position(r)


async def journaled_outbox_seqs(services: Services) -> list[int]:
    async with services.db.reader() as r:
        rows = await r.fetch_all("SELECT outbox_seq FROM event_journal ORDER BY seq")
    return [int(row[0]) for row in rows]


async def test_a_position_below_the_floor_is_reported_and_moved_to_it(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    await make_assets(services, [("gone.jpg", {})])
    head = (await outbox_events(services))[-1].seq
    # Pruned past a dispatcher that never read them (as after its position was reset).
    future = datetime.now(UTC) + timedelta(seconds=5)
    assert await services.writes.prune_outbox(head, future) > 0
    dispatcher = services.dispatcher()

    with caplog.at_level("WARNING", logger="assetvault.events"):
        assert await dispatcher.materialize() == 0
    assert "the events between are lost" in caplog.text
    assert await position(services) == head
    caplog.clear()

    # After the floor, every row is journaled as usual, and nothing more is reported.
    (kept,) = await make_assets(services, [("kept.jpg", {})])
    await services.changes.set_properties(kept.path, {"dc:title": "kept"}, user="u")
    later = [e.seq for e in await outbox_events(services)]
    with caplog.at_level("WARNING", logger="assetvault.events"):
        assert await dispatcher.materialize() == len(later)
    assert "lost" not in caplog.text
    assert await position(services) == later[-1]
    assert (
        await journaled_outbox_seqs(services)
        == [e.seq for e in await outbox_events(services) if e.type in AEM_TYPES]
        != []
    )


class BrokenSender:
    """A sender that breaks its port's promise (an exception instead of an outcome), as a
    bug in it or in the HTTP library under it would; or, for ``slow`` URLs, answers only
    once ``gate`` opens."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.calls: list[str] = []
        self.gate = asyncio.Event()

    async def send(
        self, method: str, url: str, *, headers: dict[str, str], body: bytes | None = None
    ) -> Outcome:
        self.calls.append(url)
        if self.error is not None:
            raise self.error
        if "slow" in url:
            await self.gate.wait()
            return Outcome(500)
        return Outcome(200)

    async def vet(self, url: str) -> str | None:
        return None


async def webhook_registration(services: Services, url: str) -> str:
    registration_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    async with services.db.write() as conn:
        await events_repo.insert_registration(
            conn,
            {
                "id": registration_id,
                "name": url,
                "client_id": "receiver",
                "delivery_type": "webhook",
                "webhook_url": url,
                "event_types": [METADATA_UPDATED],
                "journal_start": 0,
                "created_by": "admin",
                "created_at": now,
                "updated_at": now,
                "webhook_status": VERIFIED,
                "enabled": True,
                "state": ACTIVE,
            },
        )
    return registration_id


async def an_event(services: Services) -> None:
    (node,) = await make_assets(services, [(f"{uuid.uuid4().hex}.jpg", {})])
    await services.changes.set_properties(node.path, {"dc:title": "new"}, user="u")


@pytest.mark.parametrize(
    "error",
    [UnicodeError("label empty or too long"), KeyError("location"), RuntimeError("bug")],
    ids=lambda e: type(e).__name__,
)
async def test_an_exception_of_any_type_while_sending_is_a_failed_attempt_retried_later(
    services: Services, error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    registration_id = await webhook_registration(services, "https://hooks.example/a")
    await an_event(services)
    sender = BrokenSender(error)
    dispatcher = Dispatcher(
        services.settings,
        services.db,
        services.metadata,
        sender,
        services.signer,
        services.wakeups,
    )
    with caplog.at_level("INFO", logger="assetvault.events"):
        await dispatcher.run_once()
        await dispatcher.drain()
    assert len(sender.calls) == 1
    assert "Traceback" not in caplog.text and type(error).__name__ in caplog.text
    async with services.db.read() as conn:
        (delivery,) = await events_repo.deliveries_of(conn, registration_id)
        (attempt,) = await events_repo.attempts_of(conn, registration_id)
    assert delivery["state"] == "pending" and delivery["attempts"] == 1
    assert instant(delivery["next_attempt_at"]) > datetime.now(UTC)  # backoff: not at once
    assert not attempt.ok and type(error).__name__ in (attempt.error or "")
    for _ in range(5):  # not due yet: nothing is sent again
        await dispatcher.run_once()
        await dispatcher.drain()
    assert len(sender.calls) == 1


async def test_an_answer_that_comes_while_others_are_written_down_is_not_lost(
    services: Services,
) -> None:
    fast = await webhook_registration(services, "https://hooks.example/fast")
    slow = await webhook_registration(services, "https://hooks.example/slow")
    await an_event(services)
    sender = BrokenSender()
    dispatcher = Dispatcher(
        services.settings,
        services.db,
        services.metadata,
        sender,
        services.signer,
        services.wakeups,
    )
    await dispatcher.run_once()  # both requests out; the slow one waits for the gate
    while len(sender.calls) < 2:
        await asyncio.sleep(0.01)
    assert await dispatcher.record() == 1  # the fast answer, while the slow one is out
    sender.gate.set()
    await dispatcher.drain()
    async with services.db.read() as conn:
        for registration_id in (fast, slow):
            assert len(await events_repo.attempts_of(conn, registration_id)) == 1
        (delivery,) = await events_repo.deliveries_of(conn, slow)
    assert delivery["attempts"] == 1 and dispatcher._in_flight == set()


class Answers:
    """A webhook that answers 503 to its first request, then 200; it notes the time of
    each request."""

    def __init__(self) -> None:
        self.at: list[float] = []

    async def send(
        self, method: str, url: str, *, headers: dict[str, str], body: bytes | None = None
    ) -> Outcome:
        self.at.append(time.monotonic())
        return Outcome(status=503 if len(self.at) == 1 else 200)

    async def vet(self, url: str) -> str | None:
        return None


@pytest.fixture
async def running(
    services: Services,
) -> AsyncIterator[tuple[Dispatcher, Answers]]:
    """The dispatcher's own loop in a task, delivering to ``Answers``."""
    answers = Answers()
    dispatcher = Dispatcher(
        services.settings,
        services.db,
        services.metadata,
        answers,
        services.signer,
        services.wakeups,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run_forever(stop))
    try:
        await until(lambda: asyncio.sleep(0, dispatcher.rounds > 0))
        yield dispatcher, answers
    finally:
        stop.set()
        await task


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> float:
    """Seconds until ``check()`` holds (looked at every few milliseconds)."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < seconds, "not in time"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


async def caught_up(services: Services) -> bool:
    return await position(services) == (await outbox_events(services))[-1].seq


async def test_the_dispatcher_sleeps_until_a_commit_wakes_it(
    services: Services, running: tuple[Dispatcher, Answers]
) -> None:
    dispatcher, _ = running
    await asyncio.sleep(0.5)  # its first rounds (lease, housekeeping) are done
    rounds, looks = dispatcher.rounds, services.db.transactions
    await asyncio.sleep(2.0)
    # It used to look at the outbox every 0.4 s when idle (two reads a round).
    assert dispatcher.rounds - rounds <= 1
    assert services.db.transactions - looks <= 2
    for i in range(3):
        await make_assets(services, [(f"w{i}.jpg", {})])
        assert await until(lambda: caught_up(services)) < 1.0


async def test_a_retry_is_sent_when_it_is_due(
    services: Services, running: tuple[Dispatcher, Answers]
) -> None:
    """A failed delivery waits for its retry time (a timer, not a poll), then goes."""
    await webhook_registration(services, "https://hooks.example/in")
    _, answers = running
    (asset,) = await make_assets(services, [("hooked.jpg", {})])
    await services.changes.set_properties(asset.path, {"dc:title": "hooked"}, user="u")
    await until(lambda: asyncio.sleep(0, len(answers.at) >= 2))
    waited = answers.at[1] - answers.at[0]
    unit = services.settings.events_retry_unit_seconds
    assert unit * 0.9 <= waited < unit + 1.0


class Recorder:
    """A webhook that answers 200 and keeps each request's headers and body."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def send(
        self, method: str, url: str, *, headers: dict[str, str], body: bytes | None = None
    ) -> Outcome:
        self.requests.append((headers, body or b""))
        return Outcome(200)

    async def vet(self, url: str) -> str | None:
        return None


async def test_a_body_is_signed_off_the_event_loop_by_both_pairs(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two RSA signatures (a millisecond of CPU each) are made on threads, so the
    dispatcher's loop goes on sending and recording meanwhile; both still verify."""
    import threading

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from assetvault.adapters.signing import keys

    signed_on: list[int] = []
    real = keys._signature

    def recording(pair: Any, body: bytes) -> str:
        signed_on.append(threading.get_ident())
        return real(pair, body)

    monkeypatch.setattr(keys, "_signature", recording)
    await webhook_registration(services, "https://hooks.example/a")
    await an_event(services)
    sender = Recorder()
    dispatcher = Dispatcher(
        services.settings,
        services.db,
        services.metadata,
        sender,
        services.signer,
        services.wakeups,
    )
    await dispatcher.run_once()
    await dispatcher.drain()
    ((headers, body),) = sender.requests
    assert len(signed_on) == 2 and threading.get_ident() not in signed_on
    for number in (1, 2):
        name = headers[f"x-adobe-public-key{number}-path"].rsplit("/", 1)[1]
        pem = services.signer.public_key(name)
        assert pem is not None
        public = serialization.load_pem_public_key(pem)
        assert isinstance(public, rsa.RSAPublicKey)
        signature = base64.b64decode(headers[f"x-adobe-digital-signature-{number}"])
        public.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())


async def test_the_next_requests_go_out_while_the_answers_before_are_written_down(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round does not wait for the answers it writes down to be committed: it starts
    the next requests meanwhile (each commit's fsync held every new request back)."""
    registration_id = await webhook_registration(services, "https://hooks.example/a")
    sender = Recorder()
    one_at_a_time = services.settings.model_copy(update={"events_concurrency": 1})
    dispatcher = Dispatcher(
        one_at_a_time,
        services.db,
        services.metadata,
        sender,
        services.signer,
        services.wakeups,
    )
    gate = asyncio.Event()
    real = events_repo.update_deliveries

    async def held(conn: Any, changes: Any) -> None:
        await gate.wait()  # a record that takes its time
        await real(conn, changes)

    monkeypatch.setattr(events_repo, "update_deliveries", held)
    await an_event(services)
    await an_event(services)
    await dispatcher.run_once()  # both journaled; one request out (one at a time)
    await until(lambda: asyncio.sleep(0, len(sender.requests) == 1 and not dispatcher._tasks))
    # The first answer's record waits at the gate; the second event goes out anyway.
    await asyncio.wait_for(dispatcher.run_once(), 5)
    await until(lambda: asyncio.sleep(0, len(sender.requests) == 2))
    assert not gate.is_set() and dispatcher._recording is not None
    assert sender.requests[0][1] != sender.requests[1][1]
    gate.set()
    await dispatcher.drain()
    async with services.db.read() as conn:
        deliveries = await events_repo.deliveries_of(conn, registration_id)
        attempts = await events_repo.attempts_of(conn, registration_id)
    assert [d["state"] for d in deliveries] == ["delivered", "delivered"]
    assert len(attempts) == 2 and dispatcher._in_flight == set()


async def test_a_record_that_failed_fails_the_next_round_and_its_events_go_again(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written down on its own task, a record that fails still fails a round (which
    backs off), and its deliveries are sent again: at least once."""
    registration_id = await webhook_registration(services, "https://hooks.example/a")
    sender = Recorder()
    dispatcher = Dispatcher(
        services.settings,
        services.db,
        services.metadata,
        sender,
        services.signer,
        services.wakeups,
    )
    real = events_repo.add_attempts
    failures = [RuntimeError("the disk is full")]

    async def failing_once(conn: Any, attempts: Any) -> None:
        if failures:
            raise failures.pop()
        await real(conn, attempts)

    monkeypatch.setattr(events_repo, "add_attempts", failing_once)
    await an_event(services)
    await dispatcher.run_once()
    await until(lambda: asyncio.sleep(0, len(sender.requests) == 1 and not dispatcher._tasks))
    await dispatcher.run_once()  # the record starts on its task, and fails
    recording = dispatcher._recording
    assert recording is not None
    await asyncio.wait({recording})
    with pytest.raises(RuntimeError, match="the disk is full"):
        await dispatcher.run_once()
    await dispatcher.run_once()  # not recorded: sent again
    await dispatcher.drain()
    assert len(sender.requests) == 2
    assert sender.requests[0][1] == sender.requests[1][1]  # the same event, the same body
    async with services.db.read() as conn:
        (delivery,) = await events_repo.deliveries_of(conn, registration_id)
    assert delivery["state"] == "delivered"
