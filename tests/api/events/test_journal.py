"""The journal of a registration, walked as Adobe's clients walk it: since (exclusive),
limit (exact), latest, seek, 204 with retry-after at the end, 410 past retention, and
separate root-relative Link headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import update

from assetvault.adapters.database.tables import event_journal
from assetvault.events import models
from assetvault.services import Services
from tests.api.adobe.conftest import adobe
from tests.api.events.conftest import ORG, dispatch_all, journal_headers, register
from tests.conftest import Tokens
from tests.factories import make_asset


def links(r: httpx.Response) -> dict[str, str]:
    found = {}
    for value in r.headers.get_list("link"):
        href, rel = value.split(">; rel=")
        found[rel.strip('"')] = href.lstrip("<")
    return found


async def deleted_assets(services: Services, client: httpx.AsyncClient, token: str, n: int) -> None:
    for i in range(n):
        node = await make_asset(services, f"j{i}.jpg", b"\xff\xd8\xff", "image/jpeg")
        r = await client.delete(f"/adobe/assets/{node.urn}", headers=adobe(token))
        assert r.status_code == 204
    await dispatch_all(services)


@pytest.fixture
async def journal(client: httpx.AsyncClient, tokens: Tokens) -> str:
    r = await register(client, tokens.admin, types=[models.DELETED])
    return str(r.json()["_links"]["rel:events"]["href"]).removeprefix("http://assetvault.test")


async def test_walking_the_journal(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, journal: str
) -> None:
    headers = journal_headers(tokens.read)
    empty = await client.get(journal, headers=headers)
    assert empty.status_code == 204 and empty.content == b""
    assert empty.headers["retry-after"] == "10"
    assert links(empty)["next"] == journal  # the same request again
    assert len(empty.headers.get_list("link")) >= 2  # one header per link

    await deleted_assets(services, client, tokens.write, 5)
    first = await client.get(journal + "?limit=2", headers=headers)
    assert first.status_code == 200
    page = first.json()
    assert page["_page"]["count"] == 2 and len(page["events"]) == 2
    assert page["_page"]["last"] == page["events"][-1]["position"]
    event = page["events"][0]["event"]
    assert event["type"] == models.DELETED
    assert event["recipient_client_id"] == event["recipientclientid"] == "receiver-client"
    assert event["event_id"] == event["eventid"]
    nxt = links(first)["next"]
    assert nxt.startswith("/events/organizations/") and "limit=2" in nxt
    assert f"since={page['_page']['last']}".replace(":", "%3A") in nxt

    seen = [e["position"] for e in page["events"]]
    url = nxt
    while True:
        r = await client.get(url, headers=headers)
        if r.status_code == 204:
            assert links(r)["next"] == url  # stays put at the end
            break
        assert r.status_code == 200 and r.json()["events"]  # never 200 with nothing
        assert len(r.json()["events"]) <= 2
        seen += [e["position"] for e in r.json()["events"]]
        url = links(r)["next"]
    assert len(seen) == len(set(seen)) == 5
    # since is exclusive; limit is exact.
    r = await client.get(journal, params={"since": seen[1], "limit": "3"}, headers=headers)
    assert [e["position"] for e in r.json()["events"]] == seen[2:5]
    # The same event, with the same ids, when read again.
    again = await client.get(journal + "?limit=1", headers=headers)
    assert again.json()["events"][0] == page["events"][0]


async def test_latest_jumps_to_the_end_and_seek_goes_back_in_time(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, journal: str
) -> None:
    headers = journal_headers(tokens.read)
    await deleted_assets(services, client, tokens.write, 3)
    latest = await client.get(journal + "?latest=true", headers=headers)
    assert latest.status_code == 204
    follow = links(latest)["next"]
    assert "latest" not in follow and "since=" in follow
    assert (await client.get(follow, headers=headers)).status_code == 204
    await deleted_assets(services, client, tokens.write, 1)
    r = await client.get(follow, headers=headers)
    assert r.status_code == 200 and len(r.json()["events"]) == 1

    # Make the first three events two hours old: seek=-PT1H skips them.
    async with services.db.write() as conn:
        await conn.execute(
            update(event_journal)
            .where(event_journal.c.seq <= 3)
            .values(time=datetime.now(UTC) - timedelta(hours=2))
        )
    recent = await client.get(journal + "?seek=-PT1H", headers=headers)
    assert len(recent.json()["events"]) == 1
    everything = await client.get(journal + "?seek=-P1DT2H", headers=headers)
    assert len(everything.json()["events"]) == 4


async def test_a_position_past_retention_is_410(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, journal: str
) -> None:
    headers = journal_headers(tokens.read)
    await deleted_assets(services, client, tokens.write, 3)
    first = (await client.get(journal + "?limit=1", headers=headers)).json()
    position = first["events"][0]["position"]
    async with services.db.write() as conn:
        await conn.execute(
            update(event_journal)
            .where(event_journal.c.seq <= 2)
            .values(time=datetime.now(UTC) - timedelta(days=8))
        )
    await services.dispatcher().housekeeping()
    r = await client.get(journal, params={"since": position}, headers=headers)
    assert r.status_code == 410
    assert r.text == f"Events at position {position} have expired."
    # Without a position: the oldest still kept.
    oldest = await client.get(journal, headers=headers)
    assert len(oldest.json()["events"]) == 1


async def test_a_registration_sees_only_events_after_it_was_made(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    await deleted_assets(services, client, tokens.write, 2)
    r = await register(client, tokens.admin, types=[models.DELETED])
    url = str(r.json()["events_url"]).removeprefix("http://assetvault.test")
    assert (await client.get(url, headers=journal_headers(tokens.read))).status_code == 204
    await deleted_assets(services, client, tokens.write, 1)
    assert len((await client.get(url, headers=journal_headers(tokens.read))).json()["events"]) == 1


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"since": "nonsense"}, 400),
        ({"since": "av:1", "seek": "-PT1H"}, 400),
        ({"limit": "0"}, 400),
        ({"limit": "x"}, 400),
        ({"seek": "yesterday"}, 400),
        ({"seek": "P"}, 400),
        ({"latest": "maybe"}, 400),
    ],
)
async def test_bad_parameters_are_400(
    client: httpx.AsyncClient, tokens: Tokens, journal: str, params: dict[str, str], status: int
) -> None:
    r = await client.get(journal, params=params, headers=journal_headers(tokens.read))
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"


HUGE = "9" * 10_000


@pytest.mark.parametrize(
    "params",
    [
        {"seek": "-P999999999D"},  # a valid duration, but before the year 1
        {"seek": "-P999999999W"},  # past what a timedelta holds
        {"seek": "+P999999999D"},
        {"seek": "-PT999999999999H"},
        {"seek": f"-P{HUGE}D"},
        {"seek": f"-PT{HUGE}S"},
        {"seek": f"-PT1.{HUGE}S"},
        {"seek": "-P\u0661D"},  # an Arabic-Indic digit
        {"seek": "-PT1H\n"},
        {"seek": "-PT1H\x00"},
        {"seek": "-" * 10_000},
        {"since": f"av:{HUGE}"},
        {"since": "av:9999999999999999999"},  # past a 64-bit integer
        {"since": "av:\u0661"},
        {"since": "av:1\n"},
        {"since": "av:-1"},
        {"since": "\x00"},
        {"limit": HUGE},
        {"limit": "\u00b2"},  # a superscript two: a digit to str.isdigit, no int
        {"limit": "\u0661"},
        {"limit": "-1"},
        {"limit": "1e3"},
        {"latest": "\x00"},
    ],
    ids=lambda p: f"{next(iter(p))}={next(iter(p.values()))[:24]!r}",
)
async def test_hostile_parameters_are_400_and_never_500(
    client: httpx.AsyncClient, tokens: Tokens, journal: str, params: dict[str, str]
) -> None:
    r = await client.get(journal, params=params, headers=journal_headers(tokens.read))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 400 and next(iter(params)) in r.json()["detail"]


@pytest.mark.parametrize(
    "registration",
    ["\x00", "a" * 5000, "\u00e9t\u00e9", "00000000-0000-0000-0000-00000000000\x00", "%00"],
)
async def test_a_hostile_registration_id_is_404(
    client: httpx.AsyncClient, tokens: Tokens, journal: str, registration: str
) -> None:
    url = journal.rsplit("/", 1)[0] + "/" + quote(registration, safe="")
    r = await client.get(url, headers=journal_headers(tokens.read))
    assert r.status_code == 404, r.text
    assert r.headers["content-type"] == "application/problem+json"


async def test_journal_credentials(client: httpx.AsyncClient, tokens: Tokens, journal: str) -> None:
    both = {**adobe(tokens.read), "x-gw-ims-org-id": ORG}
    assert (await client.get(journal, headers=both)).status_code == 204  # either org header
    assert (await client.get(journal, headers=adobe(tokens.read))).status_code == 403
    wrong = {**adobe(tokens.read), "x-ims-org-id": "OTHER@AdobeOrg"}
    assert (await client.get(journal, headers=wrong)).status_code == 403
    no_key = {"Authorization": f"Bearer {tokens.read}", "x-ims-org-id": ORG}
    assert (await client.get(journal, headers=no_key)).status_code == 403
    assert (await client.get(journal, headers={"x-ims-org-id": ORG})).status_code == 401
    other_credential = journal.replace("/receiver-client/", "/someone-else/")
    r = await client.get(other_credential, headers=journal_headers(tokens.read))
    assert r.status_code == 404
