"""Registrations: the admin API, the webhook challenge in its three answer forms, the
asynchronous validationUrl, and every refusal (nothing stored)."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from assetvault.services import Services
from tests.api.adobe.conftest import adobe
from tests.api.events.conftest import dispatch_until, journal_headers, register
from tests.conftest import Tokens
from tests.factories import make_asset, process_all
from tests.receivers import Received, Reply, receiver


def echo_challenge(form: str):
    def answer(r: Received) -> Reply:
        challenge = parse_qs(urlsplit(r.path).query).get("challenge", [""])[0]
        if r.method != "GET" or not challenge:
            return Reply(200)
        if form == "raw":
            return Reply(200, challenge.encode(), {"content-type": "text/plain"})
        if form == "quoted":
            return Reply(200, json.dumps(challenge).encode(), {"content-type": "application/json"})
        body = json.dumps({"challenge": challenge}).encode()
        return Reply(200, body, {"content-type": "application/json"})

    return answer


async def count_registrations(client: httpx.AsyncClient, token: str) -> int:
    r = await client.get("/adobe/events/registrations", headers=adobe(token))
    assert r.status_code == 200
    return int(r.json()["count"])


@pytest.mark.parametrize("form", ["raw", "quoted", "object"])
async def test_a_webhook_answering_the_challenge_is_verified(
    client: httpx.AsyncClient, tokens: Tokens, form: str
) -> None:
    with receiver(echo_challenge(form)) as hook:
        r = await register(client, tokens.admin, url=hook.url + "/hook?x=1")
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["webhook_status"] == "verified"
        assert body["enabled"] is True and body["state"] == "ACTIVE"
        first = hook.received[0]
        assert first.method == "GET" and first.path.startswith("/hook?x=1&challenge=")
        assert r.headers["location"] == f"/adobe/events/registrations/{body['id']}"
        assert body["events_url"].endswith(
            f"/events/organizations/ASSETVAULT@AdobeOrg/integrations/receiver-client/{body['id']}"
        )
        assert body["events_of_interest"] == [
            {"provider_id": "aem-assets", "event_code": "aem.assets.asset.metadata_updated"}
        ]


async def test_a_wrong_answer_gets_the_validation_url_which_verifies_it(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    with receiver(lambda r: Reply(200, b"not the challenge")) as hook:
        r = await register(client, tokens.admin, url=hook.url + "/hook")
        assert r.status_code == 201, r.text
        pending = r.json()
        assert pending["webhook_status"] == "pending_validation"
        get, post = hook.received
        assert get.method == "GET" and post.method == "POST"
        assert post.headers["content-type"] == "application/json"
        validation_url = json.loads(post.body)["validationUrl"]
    parts = urlsplit(validation_url)
    assert parts.path == "/events/validate"
    # The link needs no token: it is its own credential.
    v = await client.get(parts.path + "?" + parts.query)
    assert v.status_code == 200, v.text
    assert v.json()["webhook_status"] == "verified"
    got = await client.get(pending["_links"]["self"]["href"], headers=adobe(tokens.admin))
    assert got.json()["webhook_status"] == "verified" and got.json()["state"] == "ACTIVE"
    again = await client.get(parts.path + "?" + parts.query)
    assert again.status_code == 404  # single use


async def test_a_validation_link_not_used_in_time_disables_the_registration(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    services.settings.events_validation_seconds = 0.2
    with receiver(lambda r: Reply(200)) as hook:
        r = await register(client, tokens.admin, url=hook.url)
        validation_url = json.loads(hook.received[1].body)["validationUrl"]
    assert r.json()["webhook_status"] == "pending_validation"
    time.sleep(0.3)
    got = await client.get(r.json()["_links"]["self"]["href"], headers=adobe(tokens.admin))
    assert got.json()["webhook_status"] == "hook_unreachable"
    assert got.json()["enabled"] is False and got.json()["state"] == "DISABLED"
    parts = urlsplit(validation_url)
    assert (await client.get(parts.path + "?" + parts.query)).status_code == 404


async def test_a_receiver_failing_both_is_unreachable_and_disabled(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    with receiver(lambda r: Reply(500)) as hook:
        r = await register(client, tokens.admin, url=hook.url)
    assert r.status_code == 201
    assert r.json()["webhook_status"] == "hook_unreachable"
    assert r.json()["enabled"] is False and r.json()["state"] == "DISABLED"


async def test_editing_a_webhook_challenges_it_again(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    with receiver(echo_challenge("raw")) as hook:
        made = (await register(client, tokens.admin, url=hook.url)).json()
        body = {
            "name": "renamed",
            "client_id": "receiver-client",
            "delivery_type": "webhook_batch",
            "webhook_url": hook.url + "/other",
            "events_of_interest": ["aem.assets.asset.deleted"],
        }
        r = await client.put(
            f"/adobe/events/registrations/{made['id']}", json=body, headers=adobe(tokens.admin)
        )
        assert r.status_code == 200, r.text
        assert [x.path.split("?")[0] for x in hook.received] == ["/", "/other"]
    assert r.json()["name"] == "renamed" and r.json()["delivery_type"] == "webhook_batch"
    assert r.json()["webhook_status"] == "verified"


@pytest.mark.parametrize("left_out", ["absent", "null", "empty"])
async def test_an_update_without_client_id_keeps_the_registrations_client(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, left_out: str
) -> None:
    """Adobe's registration API keeps the client of a registration an update does not
    name: its journal URL stays valid and its deliveries still carry its client id, which
    receivers (Adobe's SDK among them) check."""
    with receiver(echo_challenge("raw")) as hook:
        made = (
            await register(
                client, tokens.admin, url=hook.url, types=["aem.assets.asset.processing_completed"]
            )
        ).json()
        body: dict[str, object] = {
            "name": "renamed",
            "delivery_type": "webhook",
            "webhook_url": hook.url,
            "events_of_interest": ["aem.assets.asset.processing_completed"],
        }
        if left_out != "absent":
            body["client_id"] = None if left_out == "null" else ""
        r = await client.put(
            f"/adobe/events/registrations/{made['id']}", json=body, headers=adobe(tokens.admin)
        )
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "renamed"
        assert r.json()["client_id"] == "receiver-client"
        assert r.json()["events_url"] == made["events_url"]
        journal = await client.get(made["events_url"], headers=journal_headers(tokens.read))
        assert journal.status_code == 204, journal.text
        await make_asset(services, "a.txt", b"hello", "text/plain")
        await process_all(services)
        await dispatch_until(services, lambda: any(x.method == "POST" for x in hook.received))
        delivered = next(x for x in hook.received if x.method == "POST")
    event = json.loads(delivered.body)
    assert event["recipient_client_id"] == event["recipientclientid"] == "receiver-client"
    # Naming a client still moves the registration to it.
    body["client_id"] = "other-client"
    with receiver(echo_challenge("raw")) as hook:
        body["webhook_url"] = hook.url
        moved = await client.put(
            f"/adobe/events/registrations/{made['id']}", json=body, headers=adobe(tokens.admin)
        )
    assert moved.status_code == 200 and moved.json()["client_id"] == "other-client"


async def test_a_journal_registration_needs_no_url(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    r = await register(client, tokens.admin, types=["aem.assets.asset.deleted"])
    assert r.status_code == 201, r.text
    assert r.json()["delivery_type"] == "journal"
    assert r.json()["webhook_status"] == "not_applicable" and r.json()["webhook_url"] is None
    rid = r.json()["id"]
    assert (
        await client.delete(f"/adobe/events/registrations/{rid}", headers=adobe(tokens.admin))
    ).status_code == 204
    gone = await client.get(f"/adobe/events/registrations/{rid}", headers=adobe(tokens.admin))
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"delivery_type": "carrier-pigeon"}, "delivery_type"),
        ({"events_of_interest": []}, "events_of_interest"),
        ({"events_of_interest": ["aem.assets.asset.exploded"]}, "events_of_interest"),
        ({"events_of_interest": [{"code": 1}]}, "events_of_interest"),
        ({"name": ""}, "name"),
        ({"name": 7}, "name"),
        ({"client_id": "has spaces"}, "client_id"),
        ({"enabled": "yes"}, "enabled"),
        ({"colour": "red"}, "colour"),
        ({"delivery_type": "webhook"}, "webhook_url"),
        ({"delivery_type": "webhook", "webhook_url": "ftp://example.com/x"}, "webhook_url"),
        ({"webhook_url": "http://127.0.0.1:9/x"}, "webhook_url"),  # journal with a URL
    ],
)
async def test_bad_registrations_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, tokens: Tokens, change: dict[str, object], field: str
) -> None:
    body: dict[str, object] = {
        "name": "n",
        "delivery_type": "journal",
        "events_of_interest": ["aem.assets.asset.deleted"],
        **change,
    }
    r = await client.post("/adobe/events/registrations", json=body, headers=adobe(tokens.admin))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in r.json()["detail"]
    assert await count_registrations(client, tokens.admin) == 0


async def test_a_webhook_on_a_refused_address_is_400_and_never_contacted(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    services.webhooks.guard.allow = type(services.webhooks.guard.allow)()  # type: ignore[attr-defined]
    with receiver() as hook:
        r = await register(client, tokens.admin, url=hook.url)
        assert r.status_code == 400
        assert "loopback" in r.json()["detail"]
        assert hook.received == []
    assert await count_registrations(client, tokens.admin) == 0


async def test_registrations_need_the_admin_scope(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    r = await register(client, tokens.write)
    assert r.status_code == 403
    assert (
        await client.get("/adobe/events/registrations", headers=adobe(tokens.read))
    ).status_code == 403
    assert (await client.get("/adobe/events/registrations")).status_code == 401


REDIRECT = b"HTTP/1.1 302 Found\r\ncontent-length: 0\r\nconnection: close\r\n"
HOSTILE_ANSWERS = {
    "a redirect": Reply(302, headers={"location": "https://elsewhere.example/hook"}),
    "a redirect to a malformed IDNA name": Reply(302, headers={"location": "http://xn--/"}),
    "a redirect to a malformed port": Reply(307, headers={"location": "http://[::1"}),
    "a redirect to a non-ASCII name": Reply(
        raw=REDIRECT + "location: http://\u00e9x\u2028.com/\r\n\r\n".encode()
    ),
    "junk instead of HTTP": Reply(raw=b"garbage\r\n\r\n"),
    "a body cut short": Reply(raw=b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc"),
    "a body that is no gzip": Reply(200, b"not gzip", {"content-encoding": "gzip"}),
    "a non-ASCII body": Reply(200, "\u00e9\u2028\x00\udcff".encode("utf-8", "surrogatepass")),
    "a huge body": Reply(200, b"{" * 3_000_000),
    "a deeply nested body": Reply(200, b"[" * 100_000),
    "no answer in time": Reply(200, delay=3.0),
}


@pytest.mark.parametrize("answer", list(HOSTILE_ANSWERS), ids=str)
async def test_a_hostile_challenge_answer_is_a_failed_challenge_never_a_500(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, answer: str
) -> None:
    """Whatever a receiver answers the challenge and the validationUrl POST with, the
    registration is made (and edited) as after any failed challenge: waiting for its
    validationUrl when the POST's status was 200 (the status is what counts), else
    unreachable and disabled."""
    status = HOSTILE_ANSWERS[answer].status if HOSTILE_ANSWERS[answer].raw is None else None
    expected = (
        "pending_validation" if status == 200 or "cut short" in answer else "hook_unreachable"
    )
    if answer == "no answer in time":
        expected = "hook_unreachable"
    with receiver(lambda r: HOSTILE_ANSWERS[answer]) as hook:
        made = await register(client, tokens.admin, url=hook.url + "/hook")
        assert made.status_code == 201, made.text
        assert made.json()["webhook_status"] == expected
        if expected == "hook_unreachable":
            assert made.json()["enabled"] is False and made.json()["state"] == "DISABLED"
        assert [r.method for r in hook.received] == ["GET", "POST"]
        body = {
            "name": "again",
            "client_id": "receiver-client",
            "delivery_type": "webhook",
            "webhook_url": hook.url + "/other",
            "events_of_interest": ["aem.assets.asset.deleted"],
        }
        edited = await client.put(made.headers["location"], json=body, headers=adobe(tokens.admin))
        assert edited.status_code == 200, edited.text
        assert edited.json()["webhook_status"] == expected
        assert edited.json()["name"] == "again"
    assert await count_registrations(client, tokens.admin) == 1


@pytest.mark.parametrize(
    "query",
    [
        {"id": "x", "challenge": "\u00e9t\u00e9"},
        {"challenge": "\u00e9t\u00e9\u2028"},
        {"challenge": "\x00"},
        {"challenge": "a" * 60_000},
        {"challenge": "\udcff"},
        {"id": "\x00"},
        {"id": "\u00e9" * 36},
        {"id": "a" * 60_000},
    ],
    ids=lambda q: repr(q)[:40],
)
async def test_an_odd_validation_link_is_400_and_changes_nothing(
    client: httpx.AsyncClient, tokens: Tokens, query: dict[str, str]
) -> None:
    with receiver(lambda r: Reply(200)) as hook:  # no challenge echo: pending validation
        made = await register(client, tokens.admin, url=hook.url)
        validation_url = json.loads(hook.received[1].body)["validationUrl"]
    assert made.json()["webhook_status"] == "pending_validation"
    real = parse_qs(urlsplit(validation_url).query)
    params = {"id": real["id"][0], "challenge": real["challenge"][0], **query}
    url = "/events/validate?" + "&".join(
        f"{k}={quote(v, safe='', errors='surrogatepass')}" for k, v in params.items()
    )
    r = await client.get(url)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    got = await client.get(made.headers["location"], headers=adobe(tokens.admin))
    assert got.json()["webhook_status"] == "pending_validation"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("registration", ["\x00", "%00", "\u00e9" * 36, "a" * 5000])
async def test_a_hostile_registration_id_is_404(
    client: httpx.AsyncClient, tokens: Tokens, method: str, registration: str
) -> None:
    body = {
        "name": "n",
        "delivery_type": "journal",
        "events_of_interest": ["aem.assets.asset.deleted"],
    }
    r = await client.request(
        method,
        "/adobe/events/registrations/" + quote(registration, safe=""),
        json=body if method == "PUT" else None,
        headers=adobe(tokens.admin),
    )
    assert r.status_code == 404, r.text
    assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "change",
    [
        {"name": "a\x00b"},
        {"description": "a\x00b"},
        {"name": "\udcff"},
        {"webhook_url": "http://xn--/", "delivery_type": "webhook"},
        {"webhook_url": "http://127.0.0.1:9/\x00", "delivery_type": "webhook"},
        {"webhook_url": "http://\u00e9x\u2028.com/", "delivery_type": "webhook"},
    ],
    ids=lambda c: repr(c)[:40],
)
async def test_unstorable_or_malformed_fields_are_400(
    client: httpx.AsyncClient, tokens: Tokens, change: dict[str, str]
) -> None:
    body = {
        "name": "n",
        "delivery_type": "journal",
        "events_of_interest": ["aem.assets.asset.deleted"],
        **change,
    }
    raw = json.dumps(body).encode()  # lone surrogates as JSON escapes, as a client may send
    r = await client.post(
        "/adobe/events/registrations",
        content=raw,
        headers={**adobe(tokens.admin), "content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert await count_registrations(client, tokens.admin) == 0
