"""Publishing: POST /adobe/assets/publish and /unpublish set the publish state shown in
repositoryMetadata and raise the events; moving a published asset unpublishes it at
its old path and publishes it at the new one, deleting one unpublishes it first."""

from __future__ import annotations

import uuid

import httpx
import pytest

from assetvault.services import Services
from assetvault.tree import events
from tests.api.adobe.conftest import adobe
from tests.conftest import Tokens
from tests.factories import make_asset, make_folder, outbox_events, snapshot


async def publish(
    client: httpx.AsyncClient, token: str, ids: list[str], action: str = "publish", **extra: object
) -> httpx.Response:
    return await client.post(
        f"/adobe/assets/{action}", json={"assets": ids, **extra}, headers=adobe(token)
    )


async def repository(client: httpx.AsyncClient, token: str, urn: str) -> dict[str, object]:
    r = await client.get(f"/adobe/assets/{urn}/metadata", headers=adobe(token))
    return dict(r.json()["repositoryMetadata"])


async def test_publish_and_unpublish(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    a = await make_asset(services, "a.jpg", b"\xff\xd8\xff", "image/jpeg")
    b = await make_asset(services, "b.jpg", b"\xff\xd8\xff", "image/jpeg")
    before = await repository(client, tokens.read, a.urn)
    assert before["isPublishedToAemPublish"] is False and before["aem:published"] is False
    assert "lastPublishedToAemPublish" not in before
    mark = (await outbox_events(services))[-1].seq

    r = await publish(client, tokens.write, [a.urn, b.urn], target="AEM_PUBLISH")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "COMPLETED"
    assert [x["assetId"] for x in r.json()["assets"]] == [a.urn, b.urn]
    after = await repository(client, tokens.read, a.urn)
    assert after["isPublishedToAemPublish"] is True and after["aem:published"] is True
    assert after["lastPublishedToAemPublish"] == r.json()["assets"][0]["lastPublishedToAemPublish"]
    assert after["repo:etag"] != before["repo:etag"]  # a new representation
    seen = [(e.type, e.node_id, e.user) for e in await outbox_events(services, mark)]
    assert seen == [(events.PUBLISHED, a.id, "writer"), (events.PUBLISHED, b.id, "writer")]

    mark = (await outbox_events(services))[-1].seq
    r = await publish(client, tokens.write, [a.urn], "unpublish")
    assert r.status_code == 200
    off = await repository(client, tokens.read, a.urn)
    assert off["isPublishedToAemPublish"] is False
    assert off["lastPublishedToAemPublish"] == after["lastPublishedToAemPublish"]  # kept
    r = await publish(client, tokens.write, [a.urn], "unpublish")  # not published: no event
    assert [e.type for e in await outbox_events(services, mark)] == [events.UNPUBLISHED]


async def test_moving_a_published_asset_republishes_it_and_deleting_unpublishes_it(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    assert (await make_folder(client, tokens.write, "f")).status_code == 201
    a = await make_asset(services, "a.jpg", b"\xff\xd8\xff", "image/jpeg", folder="/content/dam/f")
    quiet = await make_asset(
        services, "q.jpg", b"\xff\xd8\xff", "image/jpeg", folder="/content/dam/f"
    )
    assert (await publish(client, tokens.write, [a.urn])).status_code == 200
    mark = (await outbox_events(services))[-1].seq
    await services.changes.move(
        "/content/dam/f", "/content/dam/g", overwrite=False, user="writer", depth="infinity"
    )
    seen = [(e.type, e.path) for e in await outbox_events(services, mark)]
    assert (events.UNPUBLISHED, "/content/dam/f/a.jpg") in seen
    assert (events.PUBLISHED, "/content/dam/g/a.jpg") in seen
    assert seen.index((events.UNPUBLISHED, "/content/dam/f/a.jpg")) < seen.index(
        (events.PUBLISHED, "/content/dam/g/a.jpg")
    )
    assert not [s for s in seen if s[1] and "q.jpg" in s[1] and "publish" in s[0]]
    assert (await repository(client, tokens.read, a.urn))["isPublishedToAemPublish"] is True

    mark = (await outbox_events(services))[-1].seq
    await services.changes.delete("/content/dam/g", user="writer")
    seen = [(e.type, e.node_id) for e in await outbox_events(services, mark)]
    assert seen.index((events.UNPUBLISHED, a.id)) < seen.index((events.DELETED["asset"], a.id))
    assert (events.UNPUBLISHED, quiet.id) not in seen


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"assets": []}, 400, "1 to 10"),
        ({"assets": [f"urn:aaid:aem:{uuid.uuid4()}" for _ in range(11)]}, 400, "1 to 10"),
        ({"assets": "urn:aaid:aem:x"}, 400, "array"),
        ({"assets": ["not-a-urn"]}, 400, "urn:aaid:aem"),
        ({"target": "AEM_PUBLISH"}, 400, "assets"),
        ({"assets": ["A"], "target": "MOON"}, 400, "target"),
        ({"assets": ["A"], "target": "DYNAMIC_MEDIA"}, 400, "Dynamic Media"),
        ({"assets": ["A", "A"]}, 400, "twice"),
        ({"assets": ["A"], "extra": 1}, 400, "extra"),
        ({"assets": ["A", f"urn:aaid:aem:{uuid.uuid4()}"]}, 404, "does not exist"),
        ({"assets": ["F"]}, 404, "does not exist"),  # a folder
    ],
)
async def test_bad_publish_requests_change_nothing(
    client: httpx.AsyncClient,
    tokens: Tokens,
    services: Services,
    body: dict[str, object],
    status: int,
    says: str,
) -> None:
    a = await make_asset(services, "a.jpg", b"\xff\xd8\xff", "image/jpeg")
    folder = await services.tree.find("/content/dam")
    assert folder is not None
    ids = {"A": a.urn, "F": folder.urn}
    if isinstance(body.get("assets"), list):
        body = {**body, "assets": [ids.get(x, x) for x in body["assets"]]}  # type: ignore[union-attr]
    before = await snapshot(services)
    r = await client.post("/adobe/assets/publish", json=body, headers=adobe(tokens.write))
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert says in r.json()["detail"]
    assert await snapshot(services) == before


async def test_publishing_needs_the_write_scope(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    a = await make_asset(services, "a.jpg", b"\xff\xd8\xff", "image/jpeg")
    assert (await publish(client, tokens.read, [a.urn])).status_code == 403
