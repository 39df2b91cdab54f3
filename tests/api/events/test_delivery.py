"""Webhook deliveries against a real loopback receiver: every AEM event type, the
envelope and headers of Adobe I/O Events, signatures checked with the public key served
by Assetvault, retries, final failures, batches, and nothing for a rolled-back change."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from assetvault.events import models
from assetvault.events import repository as events_repo
from assetvault.events.dispatcher import retry_wait
from assetvault.services import Services
from assetvault.tree import events as tree_events
from tests import media
from tests.api.adobe.conftest import adobe
from tests.api.events.conftest import dispatch_all, dispatch_until, register
from tests.conftest import Tokens
from tests.factories import make_asset, process_all
from tests.receivers import Received, Reply, receiver

SOURCE = "acct:aem-p12345-e67890@adobe.com"


def webhook(then: Callable[[Received], Reply] | None = None) -> Callable[[Received], Reply]:
    """Answers the challenge, then each POST as ``then`` says (default 200)."""

    def answer(r: Received) -> Reply:
        if r.method == "GET":
            challenge = parse_qs(urlsplit(r.path).query).get("challenge", [""])[0]
            return Reply(200, challenge.encode())
        return (then or (lambda _r: Reply(200)))(r)

    return answer


def posts(hook) -> list[Received]:  # type: ignore[no-untyped-def]
    return [r for r in hook.received if r.method == "POST"]


async def verify_signature(client: httpx.AsyncClient, delivery: Received) -> None:
    """As a receiver does: fetch each public key by its path (no credentials) and check
    either signature over the raw body; here both must verify."""
    for n in (1, 2):
        path = delivery.headers[f"x-adobe-public-key{n}-path"]
        assert re.fullmatch(r"/prod/keys/pub-key-[A-Za-z0-9_-]{10}\.pem", path)
        r = await client.get(path)
        assert r.status_code == 200
        assert b"\r\n" not in r.content and r.content.startswith(b"-----BEGIN PUBLIC KEY-----")
        key = serialization.load_pem_public_key(r.content)
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
        signature = base64.b64decode(delivery.headers[f"x-adobe-digital-signature-{n}"])
        key.verify(signature, delivery.body, padding.PKCS1v15(), hashes.SHA256())


def check_envelope(delivery: Received, client_id: str = "receiver-client") -> dict:  # type: ignore[type-arg]
    event = json.loads(delivery.body)
    assert delivery.body == orjson.dumps(event)  # compact JSON
    assert event["specversion"] == "1.0" and event["source"] == SOURCE
    assert event["datacontenttype"] == "application/json"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", event["time"])
    assert event["eventid"] == event["event_id"] == delivery.headers["x-adobe-event-id"]
    assert event["recipientclientid"] == event["recipient_client_id"] == client_id
    assert delivery.headers["x-adobe-event-code"] == event["type"]
    assert delivery.headers["content-type"] == "application/cloudevents+json; charset=UTF-8"
    assert delivery.headers["user-agent"] == "Adobe/1.0"
    assert delivery.headers["x-adobe-provider"].endswith("_aem-p12345-e67890@adobe.com")
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", delivery.headers["traceparent"])
    # A valid CloudEvent once Adobe's deprecated snake_case twins are set aside.
    plain = {k: v for k, v in event.items() if k not in ("event_id", "recipient_client_id")}
    parsed = from_http_event(
        HTTPMessage({"content-type": "application/cloudevents+json"}, orjson.dumps(plain))
    )
    assert parsed.get_id() == event["id"] and parsed.get_type() == event["type"]
    assert isinstance(parsed.get_time(), datetime)
    return event


async def test_every_event_type_reaches_the_webhook_signed(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    with receiver(webhook()) as hook:
        made = await register(client, tokens.admin, url=hook.url, types=list(models.EVENT_TYPES))
        assert made.json()["webhook_status"] == "verified"
        data = media.jpeg_with_metadata(tmp_path / "p.jpg", 64, 48).read_bytes()
        node = await make_asset(services, "p.jpg", data, "image/jpeg")
        await process_all(services)
        # The running dispatcher reads each event within moments of its commit; here
        # it is run after each step, so each event describes the asset of that moment.
        await dispatch_all(services)
        meta = await client.get(f"/adobe/assets/{node.urn}/metadata", headers=adobe(tokens.write))
        patch = await client.patch(
            f"/adobe/assets/{node.urn}/metadata",
            content=b'[{"op": "add", "path": "/assetMetadata/dc:title", "value": "New"}]',
            headers={
                **adobe(tokens.write),
                "If-Match": meta.headers["etag"],
                "Content-Type": "application/json-patch+json",
            },
        )
        assert patch.status_code == 200, patch.text
        await dispatch_all(services)
        got = await client.get(
            f"/adobe/assets/{node.urn}/original/as/p.jpg", headers=adobe(tokens.read)
        )
        assert got.status_code == 200
        for action in ("publish", "unpublish"):
            r = await client.post(
                f"/adobe/assets/{action}", json={"assets": [node.urn]}, headers=adobe(tokens.write)
            )
            assert r.status_code == 200, r.text
            await dispatch_all(services)
        async with services.writes.change("importer") as ch:
            ch.record(
                tree_events.IMPORT_COMPLETED,
                None,
                {"jobId": "job-1", "status": "COMPLETED", "folder": "/content/dam"},
            )
        deleted = await client.delete(f"/adobe/assets/{node.urn}", headers=adobe(tokens.write))
        assert deleted.status_code == 204
        await dispatch_until(services, lambda: len(posts(hook)) >= 7)
        deliveries = posts(hook)
    events = {}
    for delivery in deliveries:
        await verify_signature(client, delivery)
        event = check_envelope(delivery)
        assert "x-adobe-retry-count" not in delivery.headers
        events[event["type"]] = event
    assert sorted(events) == sorted(models.EVENT_TYPES)
    assert len({e["id"] for e in events.values()}) == 7
    assert len({d.headers["x-adobe-delivery-id"] for d in deliveries}) == 7

    done = events[models.PROCESSING_COMPLETED]["data"]
    assert done["assetId"] == node.urn
    assert done["repositoryMetadata"]["aem:assetState"] == "processed"
    assert done["repositoryMetadata"]["repo:path"] == "/content/dam/p.jpg"
    assert done["repositoryMetadata"]["dc:format"] == "image/jpeg"
    assert "user" not in done  # processing is the system's
    updated = events[models.METADATA_UPDATED]["data"]
    assert updated["user"] == {
        "imsUserId": "writer",
        "principalId": "writer",
        "displayName": "writer",
    }
    assert updated["assetMetadata"]["dc:title"] == "New"
    assert updated["assetMetadata"]["event:updated"] == {"dc:title": "Sunset over the bay"}
    assert events[models.DOWNLOADED]["data"]["rendition"] == "original"
    assert events[models.DOWNLOADED]["data"]["user"]["principalId"] == "reader"
    assert events[models.PUBLISHED]["data"]["tier"] == "publish"
    assert events[models.UNPUBLISHED]["data"]["assetId"] == node.urn
    assert events[models.DELETED]["data"] == {
        "assetId": node.urn,
        "repositoryMetadata": {
            "repo:assetId": node.urn,
            "repo:path": "/content/dam/p.jpg",
            "repo:name": "p.jpg",
        },
        "user": {"imsUserId": "writer", "principalId": "writer", "displayName": "writer"},
    }
    assert events[models.IMPORT_COMPLETED]["data"]["jobId"] == "job-1"
    # Every event that describes a live asset does so as AEM's captured events do.
    for kind in set(models.EVENT_TYPES) - {models.DELETED, models.IMPORT_COMPLETED}:
        repository = events[kind]["data"]["repositoryMetadata"]
        assert repository["repo:size"] == str(len(data)), kind
        assert repository["repo:state"] == "ACTIVE", kind


async def test_metadata_updated_names_created_and_updated_keys_as_captured_on_aem(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """As AEM as a Cloud Service's captured events: a key set for the first time is
    listed in ``event:created`` (never ``event:updated: {key: null}``), a changed or
    removed key's previous value is in ``event:updated``, and ``assetMetadata`` holds
    only what the change set (plus the markers); ``repo:size`` is a string and
    ``repo:state`` ``ACTIVE`` in every event that describes the asset."""
    types = [models.PROCESSING_COMPLETED, models.METADATA_UPDATED]
    with receiver(webhook()) as hook:
        await register(client, tokens.admin, url=hook.url, types=types)
        data = media.jpeg_with_metadata(tmp_path / "p.jpg", 64, 48).read_bytes()
        node = await make_asset(services, "p.jpg", data, "image/jpeg")
        await process_all(services)
        await dispatch_all(services)
        ops = [
            {"op": "add", "path": "/assetMetadata/dc:rights", "value": "CC-BY"},
            {"op": "add", "path": "/assetMetadata/xmp:Label", "value": "Red"},
            {"op": "replace", "path": "/assetMetadata/dc:title", "value": "New"},
            {"op": "remove", "path": "/assetMetadata/photoshop:City"},
        ]
        meta = await client.get(f"/adobe/assets/{node.urn}/metadata", headers=adobe(tokens.write))
        assert meta.json()["assetMetadata"]["photoshop:City"] == "Marseille"
        patch = await client.patch(
            f"/adobe/assets/{node.urn}/metadata",
            content=json.dumps(ops).encode(),
            headers={
                **adobe(tokens.write),
                "If-Match": meta.headers["etag"],
                "Content-Type": "application/json-patch+json",
            },
        )
        assert patch.status_code == 200, patch.text
        await dispatch_until(services, lambda: len(posts(hook)) >= 2)
        events = {e["type"]: e["data"] for e in (json.loads(d.body) for d in posts(hook))}
    assert events[models.METADATA_UPDATED]["assetMetadata"] == {
        "dc:rights": "CC-BY",
        "xmp:Label": "Red",
        "dc:title": "New",
        "event:created": ["dc:rights", "xmp:Label"],
        "event:updated": {"dc:title": "Sunset over the bay", "photoshop:City": "Marseille"},
    }
    for data in events.values():
        repository = data["repositoryMetadata"]
        assert isinstance(repository["repo:size"], str) and repository["repo:size"].isdigit()
        assert repository["repo:state"] == "ACTIVE"
    assert events[models.METADATA_UPDATED]["repositoryMetadata"]["repo:size"] == str(node.size)


async def test_only_the_registered_types_are_sent(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    with receiver(webhook()) as hook:
        await register(client, tokens.admin, url=hook.url, types=[models.DELETED])
        node = await make_asset(services, "a.jpg", b"\xff\xd8\xff", "image/jpeg")
        await process_all(services)
        await client.delete(f"/adobe/assets/{node.urn}", headers=adobe(tokens.write))
        await dispatch_all(services)
        sent = [json.loads(d.body)["type"] for d in posts(hook)]
    assert sent == [models.DELETED]


async def test_a_503_is_retried_with_the_same_event_id_until_it_succeeds(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    failures = 3

    def flaky(r: Received) -> Reply:
        return Reply(503) if len(posts(hook)) <= failures else Reply(200)

    with receiver(webhook(flaky)) as hook:
        await register(client, tokens.admin, url=hook.url, types=[models.DELETED])
        node = await make_asset(services, "a.jpg", b"\xff\xd8\xff", "image/jpeg")
        started = time.monotonic()
        await client.delete(f"/adobe/assets/{node.urn}", headers=adobe(tokens.write))
        await dispatch_until(services, lambda: len(posts(hook)) == failures + 1)
        took = time.monotonic() - started
        await dispatch_all(services)
        deliveries = posts(hook)
    assert len(deliveries) == failures + 1  # delivered once it succeeded, never again
    ids = {d.headers["x-adobe-event-id"] for d in deliveries}
    assert len(ids) == 1 and {json.loads(d.body)["event_id"] for d in deliveries} == ids
    assert [d.headers.get("x-adobe-retry-count") for d in deliveries] == [None, "1", "2", "3"]
    assert len({d.headers["x-adobe-delivery-id"] for d in deliveries}) == 4
    assert took >= 0.05 * (1 + 2 + 4)  # waited 1, 2 and 4 units
    got = await client.get("/adobe/events/registrations", headers=adobe(tokens.admin))
    registration = got.json()["_embedded"]["registrations"][0]
    detail = await client.get(registration["_links"]["self"]["href"], headers=adobe(tokens.admin))
    statuses = [a["status"] for a in reversed(detail.json()["attempts"])]
    assert statuses == [503, 503, 503, 200]


@pytest.mark.parametrize("status", [400, 404, 410, 505])
async def test_other_answers_are_final(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, status: int
) -> None:
    with receiver(webhook(lambda r: Reply(status))) as hook:
        await register(client, tokens.admin, url=hook.url, types=[models.DELETED])
        node = await make_asset(services, "a.jpg", b"\xff\xd8\xff", "image/jpeg")
        await client.delete(f"/adobe/assets/{node.urn}", headers=adobe(tokens.write))
        await dispatch_until(services, lambda: len(posts(hook)) == 1)
        time.sleep(0.3)  # longer than several retry waits
        await dispatch_all(services)
        assert len(posts(hook)) == 1


async def test_a_receiver_that_is_down_gets_the_event_when_it_is_back(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    with receiver(webhook()) as hook:
        await register(client, tokens.admin, url=hook.url, types=[models.DELETED])
        port = hook.port
    node = await make_asset(services, "a.jpg", b"\xff\xd8\xff", "image/jpeg")
    await client.delete(f"/adobe/assets/{node.urn}", headers=adobe(tokens.write))
    dispatcher = services.dispatcher()
    await dispatcher.run_once()
    await dispatcher.drain()  # connection refused: a retry is scheduled
    from tests.receivers import receiver_on

    with receiver_on(port, webhook()) as back:
        await dispatch_until(services, lambda: len(posts(back)) == 1)
        assert posts(back)[0].headers["x-adobe-retry-count"] == "1"


async def test_a_batch_registration_gets_arrays_of_at_most_20(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    with receiver(webhook()) as hook:
        await register(
            client,
            tokens.admin,
            url=hook.url,
            types=[models.DELETED],
            delivery_type="webhook_batch",
        )
        nodes = [
            await make_asset(services, f"a{i}.jpg", b"\xff\xd8\xff", "image/jpeg")
            for i in range(25)
        ]
        for node in nodes:
            await client.delete(f"/adobe/assets/{node.urn}", headers=adobe(tokens.write))
        await dispatch_until(
            services, lambda: sum(len(json.loads(d.body)) for d in posts(hook)) == 25
        )
        deliveries = posts(hook)
    # two requests in flight at once: either may arrive first
    assert sorted(len(json.loads(d.body)) for d in deliveries) == [5, 20]
    for delivery in deliveries:
        await verify_signature(client, delivery)
        batch = json.loads(delivery.body)
        assert delivery.body == orjson.dumps(batch)
        assert all(e["recipient_client_id"] == "receiver-client" for e in batch)
        assert delivery.headers["x-adobe-event-id"] == batch[0]["event_id"]
    assert {json.loads(d.body)[0]["data"]["assetId"] for d in deliveries} <= {n.urn for n in nodes}


async def test_a_rolled_back_change_raises_no_event(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    with receiver(webhook()) as hook:
        await register(client, tokens.admin, url=hook.url, types=list(models.EVENT_TYPES))
        node = await make_asset(services, "a.jpg", b"\xff\xd8\xff", "image/jpeg")
        with pytest.raises(RuntimeError):
            async with services.writes.change("writer") as ch:
                await ch.publish(node)
                raise RuntimeError("the change fails after the event was recorded")
        await dispatch_all(services)
        assert posts(hook) == []
        found = await services.tree.find_by_id(node.id)
        assert found is not None and not found.published


async def test_a_disabled_registration_journals_but_gets_no_deliveries(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    with receiver(webhook()) as hook:
        made = (await register(client, tokens.admin, url=hook.url, types=[models.DELETED])).json()
        body = {
            "name": "off",
            "client_id": "receiver-client",
            "delivery_type": "webhook",
            "webhook_url": hook.url,
            "events_of_interest": [models.DELETED],
            "enabled": False,
        }
        r = await client.put(made["_links"]["self"]["href"], json=body, headers=adobe(tokens.admin))
        assert r.json()["enabled"] is False
        node = await make_asset(services, "a.jpg", b"\xff\xd8\xff", "image/jpeg")
        await client.delete(f"/adobe/assets/{node.urn}", headers=adobe(tokens.write))
        await dispatch_all(services)
        assert posts(hook) == []
    from tests.api.events.conftest import journal_headers

    journal = await client.get(made["events_url"], headers=journal_headers(tokens.read))
    assert journal.status_code == 200
    assert [e["event"]["type"] for e in journal.json()["events"]] == [models.DELETED]


async def test_a_failing_webhook_becomes_unstable_then_disabled(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    from assetvault.events import repository as events_repo

    # A window long enough for a loaded machine to make its 10 failed attempts within it;
    # the test moves the start of the unstable period back instead of waiting it out.
    window = 30.0
    services.settings.events_health_window_seconds = window
    burst = [
        await make_asset(services, f"more{i}.jpg", b"\xff\xd8\xff", "image/jpeg") for i in range(10)
    ]
    with receiver(webhook(lambda r: Reply(500))) as hook:
        made = (await register(client, tokens.admin, url=hook.url, types=[models.DELETED])).json()
        for i in range(10):
            node = await make_asset(services, f"a{i}.jpg", b"\xff\xd8\xff", "image/jpeg")
            await client.delete(f"/adobe/assets/{node.urn}", headers=adobe(tokens.write))
        await dispatch_until(services, lambda: len(posts(hook)) >= 10)

        async def state() -> str:
            r = await client.get(made["_links"]["self"]["href"], headers=adobe(tokens.admin))
            return str(r.json()["state"])

        assert await state() == "UNSTABLE"
        # Still failing a window after it became unstable: disabled.
        async with services.db.write() as conn:
            await events_repo.update_registration(
                conn,
                made["id"],
                {"unstable_since": datetime.now(UTC) - timedelta(seconds=window + 1)},
            )
        sent = len(posts(hook))
        for node in burst:
            await client.delete(f"/adobe/assets/{node.urn}", headers=adobe(tokens.write))
        await dispatch_until(services, lambda: len(posts(hook)) >= sent + 10)
        await services.dispatcher().housekeeping()
        assert await state() == "DISABLED"
        # Disabled: new events are no longer sent.
        node = await make_asset(services, "late.jpg", b"\xff\xd8\xff", "image/jpeg")
        await client.delete(f"/adobe/assets/{node.urn}", headers=adobe(tokens.write))
        await services.dispatcher().materialize()
        async with services.db.read() as conn:
            queued = await events_repo.deliveries_of(conn, made["id"])
        assert len(queued) == 20  # none for the late event


async def test_a_batch_stays_within_its_byte_limit(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    with receiver(webhook()) as hook:
        await register(
            client,
            tokens.admin,
            url=hook.url,
            types=[models.DELETED],
            delivery_type="webhook_batch",
        )
        for i in range(5):
            node = await make_asset(services, f"b{i}.jpg", b"\xff\xd8\xff", "image/jpeg")
            await client.delete(f"/adobe/assets/{node.urn}", headers=adobe(tokens.write))
        await services.dispatcher().materialize()
        async with services.db.read() as conn:
            from assetvault.events import repository as events_repo

            (one,) = (await events_repo.journal_entries(conn, [1])).values()
        size = len(orjson.dumps(one.event)) + 200  # with the registration's four fields
        services.settings.events_batch_max_bytes = 2 * size + 10
        await dispatch_until(
            services, lambda: sum(len(json.loads(d.body)) for d in posts(hook)) == 5
        )
        deliveries = posts(hook)
    assert all(len(d.body) <= 2 * size + 10 for d in deliveries)
    assert sorted(len(json.loads(d.body)) for d in deliveries) == [1, 2, 2]


async def deleted(client: httpx.AsyncClient, services: Services, token: str, n: int) -> None:
    for i in range(n):
        node = await make_asset(services, f"d{i}.jpg", b"\xff\xd8\xff", "image/jpeg")
        r = await client.delete(f"/adobe/assets/{node.urn}", headers=adobe(token))
        assert r.status_code == 204


async def run_dispatcher(
    services: Services, seconds: float, done: Callable[[], bool] = lambda: False
) -> float | None:
    """The dispatcher's own loop for ``seconds``; returns when ``done()`` first held
    (None: never). Requests still in flight at the stop are waited for and written down
    (a loaded machine may take longer than the loop's own wait at a stop)."""
    dispatcher = services.dispatcher()
    stop = asyncio.Event()
    loop = asyncio.create_task(dispatcher.run_forever(stop))
    started = time.monotonic()
    took = None
    while time.monotonic() - started < seconds:
        if took is None and done():
            took = time.monotonic() - started
        await asyncio.sleep(0.02)
    stop.set()
    await loop
    await dispatcher.drain()
    return took


def most_attempts(seconds: float, unit: float) -> int:
    """How many attempts the retry schedule allows one event within ``seconds``."""
    attempts, at = 1, retry_wait(1, unit)
    while at <= seconds:
        attempts += 1
        at += retry_wait(attempts, unit)
    return attempts


async def attempts_recorded(services: Services, registration_id: str) -> tuple[int, int]:
    async with services.db.read() as conn:
        return await events_repo.attempt_counts(
            conn, registration_id, datetime.now(UTC) - timedelta(hours=1)
        )


CUT_SHORT = b"HTTP/1.1 503 No\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"
FAILING = {  # what a hostile receiver answers each POST, and whether it is retried
    "a redirect to a malformed IDNA name": (
        Reply(302, headers={"location": "http://xn--/"}),
        False,
    ),
    "a redirect to a malformed port": (Reply(307, headers={"location": "http://[::1"}), False),
    "a redirect": (Reply(302, headers={"location": "https://elsewhere.example/"}), False),
    "junk instead of HTTP": (Reply(raw=b"garbage\r\n\r\n"), True),
    "a closed connection": (Reply(raw=b""), True),
    "a 503 cut short": (Reply(raw=CUT_SHORT), True),
    "a 500": (Reply(500), True),
}


@pytest.mark.parametrize("answer", list(FAILING), ids=str)
async def test_a_failing_receiver_gets_its_schedule_and_a_healthy_one_all_its_events(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, answer: str
) -> None:
    """Each failed request, of whatever kind, is an attempt written down, retried on the
    schedule (or final) and counted by the health rule; the dispatcher never spins on
    it, and a healthy receiver beside it gets every event at once."""
    reply, retried = FAILING[answer]
    events, seconds, unit = 20, 6.0, 0.5
    services.settings.events_retry_unit_seconds = unit
    with receiver(webhook(lambda r: reply)) as hostile, receiver(webhook()) as healthy:
        bad = (await register(client, tokens.admin, url=hostile.url, types=[models.DELETED])).json()
        await register(client, tokens.admin, url=healthy.url, types=[models.DELETED])
        assert bad["webhook_status"] == "verified"
        await deleted(client, services, tokens.write, events)
        took = await run_dispatcher(services, seconds, lambda: len(posts(healthy)) == events)
        sent = len(posts(hostile))
    assert took is not None  # the healthy one got all its events meanwhile
    # Spinning sent hundreds a second; the schedule allows a few attempts per event.
    assert events <= sent <= events * (most_attempts(seconds, unit) if retried else 1)
    assert await attempts_recorded(services, bad["id"]) == (sent, sent)  # every one, failed
    got = await client.get(bad["_links"]["self"]["href"], headers=adobe(tokens.admin))
    assert got.json()["state"] == "UNSTABLE"  # the health rule counted them
    assert all(a["ok"] is False for a in got.json()["attempts"])


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "fetch_allow": "127.0.0.1",
            "events_retry_unit_seconds": 0.05,
            "events_timeout_seconds": 8.0,
            "events_poll_seconds": 0.01,
            "aem_program_id": "12345",
            "aem_environment_id": "67890",
        }
    ],
)
async def test_a_receiver_that_never_answers_holds_only_its_share_of_the_requests(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    events = 20
    with (
        receiver(webhook(lambda r: Reply(200, delay=9.0))) as hanging,
        receiver(webhook()) as healthy,
    ):
        await register(client, tokens.admin, url=hanging.url, types=[models.DELETED])
        await register(client, tokens.admin, url=healthy.url, types=[models.DELETED])
        await deleted(client, services, tokens.write, events)
        # Before its share was bounded, it held every request until they timed out.
        assert await run_dispatcher(services, 7.0, lambda: len(posts(healthy)) == events)
        # Alone once the healthy one is served, it may take all but one share.
        share = services.settings.events_concurrency // 4
        assert len(posts(hanging)) <= services.settings.events_concurrency - share
