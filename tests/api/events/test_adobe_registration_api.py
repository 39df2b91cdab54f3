"""Registrations at the paths and in the shapes of Adobe I/O Events' API description
(AdobeDocs/adobe-io-events, static/events-api-reference.yaml): the workspace paths,
the organization's paged listing, JSON Patch, HAL media types and links, the fields of
Adobe's models that Assetvault takes only empty, and the journal's validate path."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from assetvault.events import models
from assetvault.services import Services
from tests.api.adobe.conftest import adobe
from tests.api.events.conftest import journal_headers, register
from tests.api.events.test_journal import deleted_assets, links
from tests.conftest import Tokens

HAL = "application/hal+json"
BASE = "http://assetvault.test"
WORKSPACE = "/events/53444/4566206088344794932/4566206088344811234/registrations"


def hal(token: str) -> dict[str, str]:
    # What Adobe's SDK sends on every registration call.
    return {**adobe(token), "Accept": HAL, "Content-Type": "application/json"}


def body(name: str = "sdk registration", **extra: Any) -> dict[str, Any]:
    return {
        "client_id": "sdk-client",
        "name": name,
        "description": "from Adobe's SDK",
        "delivery_type": "journal",
        "events_of_interest": [
            {"provider_id": "aem-assets", "event_code": "aem.assets.asset.metadata_updated"}
        ],
        **extra,
    }


async def count(client: httpx.AsyncClient, token: str) -> int:
    r = await client.get("/adobe/events/registrations", headers=adobe(token))
    return int(r.json()["count"])


async def test_our_paths_answer_hal_to_a_client_that_asks_for_it(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    made = await client.post("/adobe/events/registrations", json=body(), headers=hal(tokens.admin))
    assert made.status_code == 201, made.text
    assert made.headers["content-type"] == HAL
    listed = await client.get("/adobe/events/registrations", headers=hal(tokens.admin))
    assert listed.status_code == 200 and listed.headers["content-type"] == HAL
    plain = await client.get("/adobe/events/registrations", headers=adobe(tokens.admin))
    assert plain.headers["content-type"] == "application/json"
    xml = await client.get(
        "/adobe/events/registrations", headers={**adobe(tokens.admin), "Accept": "text/xml"}
    )
    assert xml.status_code == 406


async def test_a_registration_through_adobe_s_workspace_paths(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    made = await client.post(WORKSPACE, json=body(), headers=hal(tokens.admin))
    assert made.status_code == 201, made.text
    assert made.headers["content-type"] == HAL
    view = made.json()
    rid = view["registration_id"]
    assert isinstance(view["id"], int) and view["id"] == int(rid.replace("-", "")[:12], 16)
    assert view["consumer_id"] == "53444"
    assert view["project_id"] == "4566206088344794932"
    assert view["workspace_id"] == "4566206088344811234"
    self_href = f"{BASE}{WORKSPACE}/{rid}"
    assert view["_links"]["self"] == {"href": self_href}
    assert made.headers["location"] == self_href
    journal = f"{BASE}/events/organizations/ASSETVAULT@AdobeOrg/integrations/sdk-client/{rid}"
    assert view["_links"]["rel:events"] == {"href": journal}
    assert view["webhook_status"] == "not_applicable" and view["enabled"] is True

    got = await client.get(f"{WORKSPACE}/{rid}", headers=hal(tokens.admin))
    assert got.status_code == 200 and got.headers["content-type"] == HAL
    assert got.json()["id"] == view["id"] and got.json()["_links"] == view["_links"]

    listed = await client.get(WORKSPACE, headers=hal(tokens.admin))
    assert listed.status_code == 200 and listed.headers["content-type"] == HAL
    assert listed.json()["_links"] == {"self": {"href": BASE + WORKSPACE}}
    assert [r["registration_id"] for r in listed.json()["_embedded"]["registrations"]] == [rid]

    # Adobe's update model has no client_id: the registration keeps its client.
    update = body("renamed")
    del update["client_id"]
    put = await client.put(f"{WORKSPACE}/{rid}", json=update, headers=hal(tokens.admin))
    assert put.status_code == 200, put.text
    assert put.json()["name"] == "renamed" and put.json()["client_id"] == "sdk-client"
    assert put.json()["_links"]["rel:events"] == {"href": journal}

    gone = await client.delete(f"{WORKSPACE}/{rid}", headers=hal(tokens.admin))
    assert gone.status_code == 204
    missing = await client.get(f"{WORKSPACE}/{rid}", headers=hal(tokens.admin))
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    # The same registration is also at our own path, and the other way round.
    ours = await register(client, tokens.admin)
    mirrored = await client.get(f"{WORKSPACE}/{ours.json()['id']}", headers=hal(tokens.admin))
    assert mirrored.status_code == 200 and mirrored.json()["name"] == "test registration"


async def test_the_organization_s_registrations_page_by_page(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    empty = await client.get("/events/53444/registrations", headers=hal(tokens.admin))
    assert empty.status_code == 200, empty.text
    assert empty.json()["page"] == {
        "size": 10,
        "number": 0,
        "numberOfElements": 0,
        "totalElements": 0,
        "totalPages": 0,
    }
    for i in range(5):
        assert (
            await client.post(WORKSPACE, json=body(f"r{i}"), headers=hal(tokens.admin))
        ).is_success
    seen: list[str] = []
    url: str | None = "/events/53444/registrations?size=2"
    while url:
        r = await client.get(url, headers=hal(tokens.admin))
        assert r.status_code == 200 and r.headers["content-type"] == HAL
        page = r.json()
        seen += [item["name"] for item in page["_embedded"]["registrations"]]
        assert page["page"]["totalElements"] == 5 and page["page"]["totalPages"] == 3
        assert page["_links"]["first"]["href"] == f"{BASE}/events/53444/registrations?page=0&size=2"
        assert page["_links"]["last"]["href"] == f"{BASE}/events/53444/registrations?page=2&size=2"
        assert ("prev" in page["_links"]) == (page["page"]["number"] > 0)
        nxt = page["_links"].get("next")
        url = nxt["href"].removeprefix(BASE) if nxt else None
    assert seen == ["r0", "r1", "r2", "r3", "r4"]
    middle = (
        await client.get(
            url or "/events/53444/registrations?page=1&size=2", headers=hal(tokens.admin)
        )
    ).json()
    assert middle["page"]["numberOfElements"] == 2
    item = middle["_embedded"]["registrations"][0]
    assert item["consumer_id"] == "53444" and item["project_id"] is None
    assert item["_links"]["self"]["href"] == (
        f"{BASE}/adobe/events/registrations/{item['registration_id']}"
    )


@pytest.mark.parametrize(
    "query", ["page=3&size=2", "size=0", "size=101", "size=ten", "page=-1", "page=%EF%BC%91"]
)
async def test_a_page_out_of_bounds_is_a_400(
    client: httpx.AsyncClient, tokens: Tokens, query: str
) -> None:
    for i in range(3):
        await client.post(WORKSPACE, json=body(f"r{i}"), headers=hal(tokens.admin))
    r = await client.get(f"/events/53444/registrations?{query}", headers=hal(tokens.admin))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"


async def test_a_json_patch_changes_a_registration_and_keeps_its_client(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    rid = (await client.post(WORKSPACE, json=body(), headers=hal(tokens.admin))).json()[
        "registration_id"
    ]
    patch = [
        {"op": "replace", "path": "/name", "value": "patched"},
        {
            "op": "add",
            "path": "/events_of_interest/-",
            "value": {"provider_id": "aem-assets", "event_code": models.DELETED},
        },
    ]
    headers = {**hal(tokens.admin), "Content-Type": "application/json-patch+json"}
    r = await client.patch(f"{WORKSPACE}/{rid}", json=patch, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == HAL
    assert r.json()["name"] == "patched" and r.json()["client_id"] == "sdk-client"
    assert [e["event_code"] for e in r.json()["events_of_interest"]] == [
        models.METADATA_UPDATED,
        models.DELETED,
    ]
    ours = await client.patch(
        f"/adobe/events/registrations/{rid}",
        json=[{"op": "replace", "path": "/enabled", "value": False}],
        headers={**adobe(tokens.admin), "Content-Type": "application/json-patch+json"},
    )
    assert ours.status_code == 200 and ours.json()["enabled"] is False
    assert ours.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("patch", "status"),
    [
        ([{"op": "test", "path": "/name", "value": "not it"}], 400),
        ([{"op": "replace", "path": "/nothing/there", "value": 1}], 400),
        ([{"op": "replace", "path": "/name"}], 400),
        ([{"op": "jump", "path": "/name"}], 400),
        ([{"op": "add", "path": "/runtime_action", "value": "ns/act"}], 400),
        ([{"op": "replace", "path": "/delivery_type", "value": "aws_eventbridge"}], 400),
        ([{"op": "remove", "path": "/events_of_interest/0"}], 400),
        ({"op": "replace"}, 400),
        ([], 400),
        ("junk", 400),
    ],
)
async def test_a_bad_json_patch_changes_nothing(
    client: httpx.AsyncClient, tokens: Tokens, patch: Any, status: int
) -> None:
    made = (await client.post(WORKSPACE, json=body(), headers=hal(tokens.admin))).json()
    headers = {**hal(tokens.admin), "Content-Type": "application/json-patch+json"}
    r = await client.patch(f"{WORKSPACE}/{made['registration_id']}", json=patch, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    after = await client.get(f"{WORKSPACE}/{made['registration_id']}", headers=hal(tokens.admin))
    assert after.json()["name"] == made["name"]
    assert after.json()["events_of_interest"] == made["events_of_interest"]
    assert after.json()["updated_date"] == made["updated_date"]


async def test_a_patch_sent_as_plain_json_is_a_415(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    rid = (await client.post(WORKSPACE, json=body(), headers=hal(tokens.admin))).json()[
        "registration_id"
    ]
    r = await client.patch(
        f"{WORKSPACE}/{rid}",
        json=[{"op": "replace", "path": "/name", "value": "x"}],
        headers=hal(tokens.admin),
    )
    assert r.status_code == 415


async def test_adobe_s_fields_for_what_assetvault_lacks_are_taken_empty(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    empty = body(
        runtime_action="", subscriber_filters=[], destination_metadata={}, runtimeWebhook=False
    )
    r = await client.post(WORKSPACE, json=empty, headers=hal(tokens.admin))
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    "extra",
    [
        {"runtime_action": "my-namespace/my-action"},
        {"runtimeWebhook": True},
        {"subscriber_filters": [{"name": "only jpegs", "subscriber_filter": "{}"}]},
        {"destination_metadata": {"aws_region": "us-east-1", "aws_account_id": "123456789012"}},
        {"delivery_type": "aws_eventbridge"},
        {"runtime_action": 7},
    ],
)
async def test_what_assetvault_cannot_deliver_to_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, tokens: Tokens, extra: dict[str, Any]
) -> None:
    r = await client.post(WORKSPACE, json=body(**extra), headers=hal(tokens.admin))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert await count(client, tokens.admin) == 0


async def test_the_journal_s_validate_path_and_link(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    made = await register(client, tokens.admin, types=[models.DELETED])
    journal = made.json()["_links"]["rel:events"]["href"].removeprefix(BASE)
    await deleted_assets(services, client, tokens.write, 3)
    headers = journal_headers(tokens.read)
    first = await client.get(journal + "?limit=1", headers=headers)
    assert first.status_code == 200
    validate = links(first)["validate"]
    assert validate.startswith(journal + "/validate?since=") and "limit=1" in validate
    batch = await client.get(validate, headers=headers)
    assert batch.status_code == 200, batch.text
    assert batch.json()["events"][0]["position"] != first.json()["_page"]["last"]
    assert links(batch)["next"].startswith(journal + "/validate?since=")
    assert (await client.get(journal + "/validate", headers=headers)).status_code == 400
    assert (await client.get(journal + "/validate?since=junk", headers=headers)).status_code == 400
    assert (
        await client.get(journal + "/validate?since=av:1", headers=adobe(tokens.read))
    ).status_code == 403
