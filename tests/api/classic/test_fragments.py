"""Content Fragments through /api/assets, in the order of the reference's checklist:
create from a model, read (the shape of AEM 6.5's captured response), typing, listing,
a taken name, AEM's 500s (no model, unknown model, unknown element, a bad value),
updates of title, elements and variations, delete; the Author API's and search's view
of a fragment; the outbox rows of each change."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from tests.api.adobe.conftest import adobe
from tests.api.events.conftest import dispatch_all, journal_headers, register
from tests.conftest import Tokens
from tests.factories import bearer, make_folder, outbox_events, snapshot

from assetvault.events import models
from assetvault.services import Services

MODEL_PATH = "/conf/wknd/settings/dam/cfm/models/adventure"
MODEL: dict[str, Any] = {
    "name": "adventure",
    "title": "Adventure",
    "fields": [
        {"name": "headline", "label": "Headline", "type": "text-single", "required": True},
        {"name": "body", "label": "Body", "type": "text-multi"},
        {"name": "groupSize", "label": "Group size", "type": "number", "valueType": "long"},
        {"name": "price", "type": "number", "valueType": "double", "default": 9.5},
        {"name": "featured", "type": "boolean", "default": False},
        {"name": "startDate", "label": "Start", "type": "date"},
        {"name": "activities", "type": "text-single", "multiple": True},
        {"name": "extra", "type": "json"},
        {"name": "level", "type": "enumeration", "options": ["easy", "hard"]},
        {"name": "hero", "type": "content-reference"},
    ],
}
# 2024-05-01T09:00:00.000+02:00
START_MS = 1714546800000


@pytest.fixture
async def model(services: Services) -> str:
    await services.fragments.load_model("wknd", MODEL, user="admin")
    return MODEL_PATH


@pytest.fixture
async def folder(client: httpx.AsyncClient, tokens: Tokens) -> str:
    r = await make_folder(client, tokens.write, "adventures")
    assert r.status_code == 201, r.text
    return "adventures"


def create_body(**elements: Any) -> dict[str, Any]:
    return {
        "properties": {
            "cq:model": MODEL_PATH,
            "title": "Surf Camp",
            "description": "Week-long camp",
            "elements": elements,
        }
    }


async def create(
    client: httpx.AsyncClient, tokens: Tokens, name: str = "surf", body: Any = None
) -> httpx.Response:
    return await client.post(
        f"/api/assets/adventures/{name}",
        json=body if body is not None else create_body(headline={"value": "Surf"}),
        headers=bearer(tokens.write),
    )


async def read(client: httpx.AsyncClient, tokens: Tokens, name: str = "surf") -> dict[str, Any]:
    r = await client.get(f"/api/assets/adventures/{name}.json", headers=bearer(tokens.read))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def message(r: httpx.Response) -> str:
    text: str = r.json()["properties"]["status.message"]
    return text


async def test_create_answers_201_with_core_response(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, model: str, folder: str
) -> None:
    start = (await outbox_events(services))[-1].seq
    r = await create(client, tokens)
    assert r.status_code == 201, r.text
    assert r.json() == {
        "class": ["core/response"],
        "properties": {
            "path": "/api/assets/adventures/surf",
            "location": "/api/assets/adventures/surf.json",
            "parentLocation": "/api/assets/adventures.json",
            "status.code": 201,
            "status.message": "Created",
            "referer": "",
            "isCreate": True,
            "title": "Content created /api/assets/adventures/surf",
            "changes": [],
        },
    }
    assert r.headers["location"] == "http://assetvault.test/api/assets/adventures/surf.json"
    node = await services.tree.get("/content/dam/adventures/surf")
    assert node.is_fragment and node.blob_key is None
    made = await outbox_events(services, after=start)
    assert [(e.type, e.path) for e in made] == [("asset.created", node.path)]
    assert made[0].data["mimeType"] == "application/vnd.adobe.contentfragment"


async def test_read_has_the_shape_of_aem(
    client: httpx.AsyncClient, tokens: Tokens, model: str, folder: str
) -> None:
    before = int(time.time() * 1000) - 1000
    assert (await create(client, tokens)).status_code == 201
    doc = await read(client, tokens)
    base = "http://assetvault.test/api/assets/adventures"
    assert doc["class"] == ["assets/asset"]
    assert "entities" not in doc  # as in AEM's captured response
    assert doc["links"] == [
        {"rel": ["self"], "href": f"{base}/surf.json"},
        {"rel": ["parent"], "href": f"{base}.json"},
    ]
    assert doc["actions"] == [
        {"method": "DELETE", "name": "delete", "href": f"{base}/surf", "title": "Delete"},
        {
            "method": "PUT",
            "name": "update-fragment",
            "href": f"{base}/surf",
            "type": "application/json",
            "title": "Update Content Fragment",
        },
    ]
    props = doc["properties"]
    assert set(props) == {
        "metadata",
        "created",
        "description",
        "title",
        "contentFragment",
        "createdBy",
        "elementsOrder",
        "elements",
        "name",
        "modified",
        "modifiedBy",
        "cq:model",
        "srn:paging",
    }
    assert props["contentFragment"] is True
    assert props["cq:model"] == {"path": MODEL_PATH}
    assert (props["name"], props["title"], props["description"]) == (
        "surf",
        "Surf Camp",
        "Week-long camp",
    )
    assert props["metadata"] == {}
    assert isinstance(props["created"], int) and props["created"] >= before
    assert isinstance(props["modified"], int) and props["modified"] >= props["created"]
    assert props["createdBy"] == props["modifiedBy"] == "writer"
    assert props["srn:paging"] == {"total": 0, "offset": 0, "limit": 20}
    assert props["elementsOrder"] == [f["name"] for f in MODEL["fields"]]
    assert props["elements"]["headline"] == {
        "variationsOrder": [],
        "translatable": True,
        ":type": "string",
        "variations": {},
        "dataType": "string",
        "title": "Headline",
        "multiValue": False,
        "value": "Surf",
    }
    # Defaults from the model; elements not given and without a default are null.
    assert props["elements"]["price"]["value"] == 9.5
    assert props["elements"]["featured"]["value"] is False
    assert props["elements"]["groupSize"]["value"] is None
    assert props["elements"]["groupSize"]["translatable"] is False


async def test_values_are_coerced_to_the_model_types(
    client: httpx.AsyncClient, tokens: Tokens, model: str, folder: str
) -> None:
    body = create_body(
        headline={"value": 42},
        body={"value": "<p>Waves.</p>", ":type": "text/html"},
        groupSize={"value": "8"},
        price={"value": "12.25"},
        featured={"value": "true"},
        startDate={"value": "2024-05-01T09:00:00.000+02:00"},
        activities={"value": ["surf", "swim"]},
        extra={"value": {"a": [1, 2]}},
        hero={"value": "/content/dam/adventures/surf.jpg"},
    )
    assert (await create(client, tokens, body=body)).status_code == 201
    elements = (await read(client, tokens))["properties"]["elements"]
    shown = {
        n: (e["value"], e["dataType"], e[":type"], e["multiValue"]) for n, e in elements.items()
    }
    assert shown == {
        "headline": ("42", "string", "string", False),
        "body": ("<p>Waves.</p>", "string", "text/html", False),
        "groupSize": (8, "long", "long", False),
        "price": (12.25, "double", "double", False),
        "featured": (True, "boolean", "boolean", False),
        "startDate": (START_MS, "calendar", "calendar", False),
        "activities": (["surf", "swim"], "string", "string", True),
        "extra": ('{"a":[1,2]}', "string", "string", False),
        "level": (None, "string", "string", False),
        "hero": ("/content/dam/adventures/surf.jpg", "string", "string", False),
    }


async def test_plain_multi_line_text_and_a_calendar_aem_cannot_read(
    client: httpx.AsyncClient, tokens: Tokens, model: str, folder: str
) -> None:
    body = create_body(body={"value": "plain"}, startDate={"value": "2024-05-01T09:00"})
    assert (await create(client, tokens, body=body)).status_code == 201
    elements = (await read(client, tokens))["properties"]["elements"]
    assert elements["body"][":type"] == "text/plain"
    assert elements["startDate"]["value"] is None
    r = await client.put(
        "/api/assets/adventures/surf",
        json={"properties": {"elements": {"startDate": {"value": START_MS}}}},
        headers=bearer(tokens.write),
    )
    assert r.status_code == 200, r.text
    r = await client.put(
        "/api/assets/adventures/surf",
        json={"properties": {"elements": {"startDate": {"value": "1 May 2024"}}}},
        headers=bearer(tokens.write),
    )
    assert r.status_code == 200, r.text  # accepted, and the date stays as it was
    elements = (await read(client, tokens))["properties"]["elements"]
    assert elements["startDate"]["value"] == START_MS


async def test_fragments_are_listed_in_their_folder(
    client: httpx.AsyncClient, tokens: Tokens, model: str, folder: str
) -> None:
    assert (await create(client, tokens)).status_code == 201
    assert (await create(client, tokens, "kayak")).status_code == 201
    r = await client.get("/api/assets/adventures.json", headers=bearer(tokens.read))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["properties"]["srn:paging"] == {"total": 2, "offset": 0, "limit": 20}
    kayak = doc["entities"][0]
    assert kayak == {
        "class": ["assets/asset"],
        "rel": ["child"],
        "properties": {
            "name": "kayak",
            "metadata": {"dc:format": "application/vnd.adobe.contentfragment"},
            "title": "Surf Camp",
            "contentFragment": True,
        },
        "links": [
            {"rel": ["self"], "href": "http://assetvault.test/api/assets/adventures/kayak.json"}
        ],
    }
    r = await client.get(
        "/api/assets/adventures.json?offset=0&limit=1", headers=bearer(tokens.read)
    )
    assert len(r.json()["entities"]) == 1
    assert r.json()["properties"]["srn:paging"] == {"total": 2, "offset": 0, "limit": 1}


async def test_a_taken_name_gets_a_suffix(
    client: httpx.AsyncClient, tokens: Tokens, model: str, folder: str
) -> None:
    assert (await create(client, tokens)).status_code == 201
    r = await create(client, tokens)
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["location"] == "/api/assets/adventures/surf-1.json"
    assert (await read(client, tokens, "surf-1"))["properties"]["name"] == "surf-1"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"properties": {"title": "T", "elements": {"headline": {"value": "x"}}}},
            "No content fragment model specified",
        ),
        (
            {"class": "contentFragment", "properties": {"title": "T"}},
            "No content fragment model specified",
        ),
        (
            {"properties": {"cq:model": "/conf/wknd/settings/dam/cfm/models/nope", "title": "T"}},
            "Cannot create a resource of given model '/conf/wknd/settings/dam/cfm/models/nope'",
        ),
        (
            {"properties": {"cq:model": "/content/dam/adventures", "elements": {}}},
            "Cannot create a resource of given model '/content/dam/adventures'",
        ),
        (create_body(nope={"value": "x"}), "Could not update content element"),
        (create_body(groupSize={"value": "eight"}), "Could not update content element"),
        (create_body(headline={"value": ["a", "b"]}), "Could not update content element"),
        (create_body(featured={"value": 1}), "Could not update content element"),
        (create_body(price={"value": "NaN"}), "Could not update content element"),
    ],
)
async def test_aem_s_500s_change_nothing(
    client: httpx.AsyncClient,
    tokens: Tokens,
    services: Services,
    model: str,
    folder: str,
    body: dict[str, Any],
    expected: str,
) -> None:
    before = await snapshot(services)
    r = await create(client, tokens, body=body)
    assert r.status_code == 500, r.text
    assert r.json()["class"] == "core/response"
    assert message(r).startswith(expected), message(r)
    assert await snapshot(services) == before


async def test_a_disabled_model_and_a_missing_parent_are_500s(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, model: str, folder: str
) -> None:
    r = await client.post(
        "/api/assets/missing/surf", json=create_body(), headers=bearer(tokens.write)
    )
    assert r.status_code == 500 and message(r).startswith("Could not create content fragment")
    await services.fragments.load_model("wknd", {**MODEL, "status": "disabled"}, user="admin")
    r = await create(client, tokens)
    assert r.status_code == 500 and message(r).startswith("Cannot create a resource")


async def test_a_required_field_is_not_enforced(
    client: httpx.AsyncClient, tokens: Tokens, model: str, folder: str
) -> None:
    r = await create(client, tokens, body=create_body(groupSize={"value": 3}))
    assert r.status_code == 201, r.text
    assert (await read(client, tokens))["properties"]["elements"]["headline"]["value"] is None


async def test_update_title_changes_only_the_title(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, model: str, folder: str
) -> None:
    assert (await create(client, tokens)).status_code == 201
    first = await read(client, tokens)
    start = (await outbox_events(services))[-1].seq
    r = await client.put(
        "/api/assets/adventures/surf",
        json={"properties": {"title": "T2", "cq:model": "/ignored", "contentFragment": True}},
        headers=bearer(tokens.write),
    )
    assert r.status_code == 200, r.text
    assert r.json()["class"] == ["core/response"]
    assert r.json()["properties"]["status.code"] == 200
    assert r.json()["properties"]["status.message"] == "OK"
    assert r.json()["properties"]["isCreate"] is False
    now = await read(client, tokens)
    assert now["properties"]["title"] == "T2"
    assert now["properties"]["elements"] == first["properties"]["elements"]
    assert now["properties"]["cq:model"] == {"path": MODEL_PATH}
    made = await outbox_events(services, after=start)
    assert [e.type for e in made] == ["asset.metadata_updated"]
    assert made[0].data["previous"] == {"dc:title": "Surf Camp"}


async def test_update_one_element(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, model: str, folder: str
) -> None:
    body = create_body(headline={"value": "Surf"}, groupSize={"value": 8})
    assert (await create(client, tokens, body=body)).status_code == 201
    first = (await read(client, tokens))["properties"]
    start = (await outbox_events(services))[-1].seq
    time.sleep(0.002)
    r = await client.put(
        "/api/assets/adventures/surf",
        json={"properties": {"elements": {"groupSize": {"value": "12"}}}},
        headers=bearer(tokens.write),
    )
    assert r.status_code == 200, r.text
    now = (await read(client, tokens))["properties"]
    assert now["elements"]["groupSize"]["value"] == 12
    assert {k: v for k, v in now["elements"].items() if k != "groupSize"} == {
        k: v for k, v in first["elements"].items() if k != "groupSize"
    }
    assert now["modified"] > first["modified"]
    made = await outbox_events(services, after=start)
    assert [(e.type, e.data["elements"]) for e in made] == [
        ("asset.fragment_updated", ["groupSize"])
    ]


async def test_update_a_variation(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, model: str, folder: str
) -> None:
    body = create_body(headline={"value": "Surf", "variations": {"short": {"value": "S"}}})
    assert (await create(client, tokens, body=body)).status_code == 201
    headline = (await read(client, tokens))["properties"]["elements"]["headline"]
    assert headline["variationsOrder"] == ["short"]
    assert headline["variations"]["short"] == {
        ":type": "string",
        "dataType": "string",
        "description": "",
        "title": "Short",
        "multiValue": False,
        "value": "S",
    }
    start = (await outbox_events(services))[-1].seq
    r = await client.put(
        "/api/assets/adventures/surf",
        json={
            "properties": {
                "elements": {
                    "headline": {"variations": {"short": {"value": "S2"}}},
                    "groupSize": {"variations": {"short": {"value": "3"}}},
                }
            }
        },
        headers=bearer(tokens.write),
    )
    assert r.status_code == 200, r.text
    elements = (await read(client, tokens))["properties"]["elements"]
    assert elements["headline"]["value"] == "Surf"  # the master stays
    assert elements["headline"]["variations"]["short"]["value"] == "S2"
    assert elements["groupSize"]["variations"]["short"]["value"] == 3
    assert elements["groupSize"]["value"] is None
    # Every element shares the variations; one not written holds the master's value.
    assert elements["price"]["variations"]["short"]["value"] == 9.5
    made = await outbox_events(services, after=start)
    assert [(e.type, e.data["variations"]) for e in made] == [("asset.fragment_updated", ["short"])]


async def test_update_errors(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, model: str, folder: str
) -> None:
    assert (await create(client, tokens)).status_code == 201
    before = await snapshot(services)
    r = await client.put(
        "/api/assets/adventures/surf",
        json={"properties": {"elements": {"nope": {"value": 1}}}},
        headers=bearer(tokens.write),
    )
    assert r.status_code == 500 and message(r).startswith("Could not update content element")
    r = await client.put(
        "/api/assets/adventures/surf",
        json={"properties": {"elements": {"groupSize": {"value": 2.5}}}},
        headers=bearer(tokens.write),
    )
    assert r.status_code == 500 and message(r).startswith("Could not update content element")
    r = await client.put(
        "/api/assets/adventures/surf",
        json={"properties": {"elements": {"headline": {"value": "x" * 300_000}}}},
        headers=bearer(tokens.write),
    )
    assert r.status_code == 400, r.text  # the limits of stored values
    r = await client.put(
        "/api/assets/adventures/surf",
        json={"properties": {"metadata": {"bad\nkey": "v"}}},
        headers=bearer(tokens.write),
    )
    assert r.status_code == 400, r.text
    assert await snapshot(services) == before
    r = await client.put(
        "/api/assets/adventures/missing",
        json={"properties": {"title": "x"}},
        headers=bearer(tokens.write),
    )
    assert r.status_code == 404


async def test_delete(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, model: str, folder: str
) -> None:
    assert (await create(client, tokens)).status_code == 201
    node = await services.tree.get("/content/dam/adventures/surf")
    start = (await outbox_events(services))[-1].seq
    r = await client.delete("/api/assets/adventures/surf", headers=bearer(tokens.write))
    assert r.status_code == 200, r.text
    assert [(e.type, e.node_id) for e in await outbox_events(services, after=start)] == [
        ("asset.deleted", node.id)
    ]
    r = await client.get("/api/assets/adventures/surf.json", headers=bearer(tokens.read))
    assert r.status_code == 404
    r = await client.delete("/api/assets/adventures/surf", headers=bearer(tokens.write))
    assert r.status_code == 404
    async with services.db.reader() as rd:
        assert await rd.fetch_all("SELECT node_id FROM fragment_data") == []


async def test_a_copy_keeps_the_content(
    client: httpx.AsyncClient, tokens: Tokens, model: str, folder: str
) -> None:
    assert (await create(client, tokens)).status_code == 201
    r = await client.request(
        "COPY",
        "/api/assets/adventures/surf",
        headers={**bearer(tokens.write), "X-Destination": "/api/assets/adventures/copy"},
    )
    assert r.status_code == 201, r.text
    copied = await read(client, tokens, "copy")
    assert copied["properties"]["elements"]["headline"]["value"] == "Surf"


async def test_the_author_api_and_search_see_a_fragment(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, model: str, folder: str
) -> None:
    body = create_body(headline={"value": "Barrelling waves"})
    assert (await create(client, tokens, body=body)).status_code == 201
    node = await services.tree.get("/content/dam/adventures/surf")
    r = await client.get(f"/adobe/assets/{node.urn}/metadata", headers=adobe(tokens.read))
    assert r.status_code == 200, r.text
    repo_meta = r.json()["repositoryMetadata"]
    assert repo_meta["repo:assetClass"] == "contentFragment"
    assert repo_meta["dc:format"] == "application/vnd.adobe.contentfragment"
    assert r.json()["assetMetadata"]["dc:title"] == "Surf Camp"
    r = await client.post(
        "/adobe/assets/search?allowUnsafeSearch=true",
        json={"query": [{"match": {"text": "barrelling"}}]},
        headers=adobe(tokens.read),
    )
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]["results"]
    assert [h["repositoryMetadata"]["repo:name"] for h in hits] == ["surf"]


async def test_the_asset_events_a_fragment_s_changes_announce(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, model: str, folder: str
) -> None:
    """What a receiver of AEM's asset events hears of a fragment, read from a journal:
    a change of its title, description or metadata is ``aem.assets.asset.metadata_updated``
    naming the keys as for any asset, the fragment described as one (``repo:assetClass``
    ``contentFragment``); a change of elements or variations announces nothing (AEM's
    asset events cover metadata; it stays in the outbox for search); a delete is
    ``aem.assets.asset.deleted``."""
    made = await register(client, tokens.admin, types=[models.METADATA_UPDATED, models.DELETED])
    journal = made.json()["_links"]["rel:events"]["href"].removeprefix("http://assetvault.test")
    assert (await create(client, tokens)).status_code == 201
    node = await services.tree.get("/content/dam/adventures/surf")
    variation = {"s": {"value": "S"}}
    changes = [
        {"title": "Surf Camp 2024", "metadata": {"dc:subject": ["surf"]}},
        {"elements": {"groupSize": {"value": 8}, "headline": {"variations": variation}}},
    ]
    for change in changes:
        r = await client.put(
            "/api/assets/adventures/surf",
            json={"properties": change},
            headers=bearer(tokens.write),
        )
        assert r.status_code == 200, r.text
    await dispatch_all(services)  # the events describe the fragment as the dispatcher finds it
    r = await client.delete("/api/assets/adventures/surf", headers=bearer(tokens.write))
    assert r.status_code == 200, r.text
    await dispatch_all(services)
    r = await client.get(journal, headers=journal_headers(tokens.read))
    assert r.status_code == 200, r.text
    events = [e["event"] for e in r.json()["events"]]
    assert [e["type"] for e in events] == [models.METADATA_UPDATED, models.DELETED]
    updated = events[0]["data"]
    assert updated["assetId"] == node.urn
    assert updated["assetMetadata"] == {
        "dc:title": "Surf Camp 2024",
        "dc:subject": ["surf"],
        "event:created": ["dc:subject"],
        "event:updated": {"dc:title": "Surf Camp"},
    }
    repository = updated["repositoryMetadata"]
    assert repository["repo:assetClass"] == "contentFragment"
    assert repository["dc:format"] == "application/vnd.adobe.contentfragment"
    assert repository["repo:path"] == "/content/dam/adventures/surf"
    assert repository["repo:state"] == "ACTIVE"
    # No binary, so no size: never a null where AEM's events give a string.
    assert "repo:size" not in repository
    assert updated["user"]["principalId"] == "writer"
    assert events[1]["data"]["assetId"] == node.urn
