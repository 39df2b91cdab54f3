"""/_assetvault/faults: admin scope only, refused on a server started without fault
injection, and the rules it adds answer, delay and count requests as they say."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from assetvault.app import create_app
from assetvault.services import Services
from tests.conftest import Tokens
from tests.factories import bearer, initiate, make_folder, snapshot

FAULTS = "/_assetvault/faults"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"faults": True}


async def add(client: httpx.AsyncClient, tokens: Tokens, **rule: Any) -> dict[str, Any]:
    r = await client.post(FAULTS, json=rule, headers=bearer(tokens.admin))
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{FAULTS}/{r.json()['id']}"
    body: dict[str, Any] = r.json()
    return body


async def test_only_an_admin_token_reaches_the_rules(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    for method, path in [
        ("GET", FAULTS),
        ("POST", FAULTS),
        ("DELETE", FAULTS),
        ("DELETE", FAULTS + "/1"),
    ]:
        r = await client.request(method, path, json={"status": 503})
        assert r.status_code == 401, (method, path)
        for token in (tokens.read, tokens.write):
            r = await client.request(method, path, json={"status": 503}, headers=bearer(token))
            assert r.status_code == 403, (method, path, r.text)
    r = await client.get(FAULTS, headers=bearer(tokens.admin))
    assert r.json() == {"faults": []}


async def test_refused_on_a_server_started_without_faults(
    services: Services, tokens: Tokens
) -> None:
    services.settings.faults = False
    app = create_app(services=services)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://assetvault.test"
    ) as client:
        for method in ("GET", "POST", "DELETE"):
            r = await client.request(
                method, FAULTS, json={"status": 503}, headers=bearer(tokens.admin)
            )
            assert r.status_code == 409, r.text
            assert r.headers["content-type"] == "application/problem+json"
            assert "serve --faults" in r.json()["detail"]
        # Not even a rules file is made.
        assert not (services.settings.data_dir / "faults.db").exists()
        r = await client.get("/api/assets/x.json", headers=bearer(tokens.admin))
        assert r.status_code == 404


async def test_the_next_two_answer_503_in_each_interface_s_format(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    auth = bearer(tokens.admin)
    rule = await add(
        client,
        tokens,
        path="/api/assets/*",
        method="GET",
        count=2,
        status=503,
        headers={"Retry-After": "3"},
    )
    assert (rule["remaining"], rule["matched"], rule["fired"]) == (2, 0, 0)
    answers = [await client.get("/api/assets/missing.json", headers=auth) for _ in range(3)]
    assert [r.status_code for r in answers] == [503, 503, 404]
    siren = answers[0].json()
    assert siren["class"] == "core/response"
    assert siren["properties"]["status.code"] == 503
    assert f"rule {rule['id']}" in siren["properties"]["status.message"]
    assert answers[0].headers["retry-after"] == "3"
    (listed,) = (await client.get(FAULTS, headers=auth)).json()["faults"]
    assert (listed["remaining"], listed["matched"], listed["fired"]) == (0, 2, 2)

    # The Author API: problem+json; a part PUT: problem+json, as the server's own refusals.
    await add(client, tokens, path="/adobe/assets/search", status=429, message="slow down")
    r = await client.post("/adobe/assets/search", json={}, headers={**auth, "X-Api-Key": "t"})
    assert r.status_code == 429
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "slow down"
    await make_folder(client, tokens.admin, "faults")
    started = await initiate(client, tokens.admin, "/content/dam/faults", [("a.bin", 10)])
    uri = started.json()["files"][0]["uploadURIs"][0]
    await add(client, tokens, path="/binary-upload/*", method="PUT", count=1, status=503)
    r = await client.put(uri, content=b"0123456789")
    assert r.status_code == 503 and r.json()["status"] == 503
    assert (await client.put(uri, content=b"0123456789")).status_code == 201

    # Plain text, where the client should not parse a body.
    await add(client, tokens, path="/api.json", status=500, format="plain", message="boom")
    r = await client.get("/api.json", headers=auth)
    assert (r.status_code, r.text) == (500, "boom")
    assert r.headers["content-type"].startswith("text/plain")


async def test_latency_is_added_before_the_request_is_handled(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    auth = {**bearer(tokens.admin), "X-Api-Key": "t"}
    await add(client, tokens, path="/adobe/assets/search", method="POST", delay=0.4)
    began = time.monotonic()
    r = await client.post(
        "/adobe/assets/search?allowUnsafeSearch=true",
        json={"query": [{"match": {"text": "*"}}]},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert time.monotonic() - began >= 0.4
    began = time.monotonic()
    assert (await client.get("/api.json", headers=auth)).status_code == 200
    assert time.monotonic() - began < 0.4  # other routes as fast as ever


async def test_a_bad_rule_is_refused_and_nothing_is_added(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    auth = bearer(tokens.admin)
    before = await snapshot(services)
    for rule in [
        {},
        {"path": "/a"},
        {"status": 99},
        {"status": 503, "regex": "("},
        {"status": 503, "probability": 2},
        [1, 2],
        {"status": "x"},
    ]:
        r = await client.post(FAULTS, json=rule, headers=auth)
        assert r.status_code == 400, (rule, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["detail"].startswith("the fault rule is refused")
    r = await client.post(FAULTS, content=b"{not json", headers=auth)
    assert r.status_code == 400
    assert (await client.get(FAULTS, headers=auth)).json() == {"faults": []}
    assert await snapshot(services) == before


async def test_delete_one_and_all_and_admin_routes_are_never_faulted(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    auth = bearer(tokens.admin)
    everything = await add(client, tokens, path="*", status=500)
    other = await add(client, tokens, path="/health", delay=0.1)
    # A rule on every path leaves the admin API answering: it can always be cleared.
    assert (await client.get(f"{FAULTS}/{everything['id']}", headers=auth)).json()[
        "id"
    ] == everything["id"]
    assert (await client.get("/api.json", headers=auth)).status_code == 500
    assert (await client.delete(f"{FAULTS}/{everything['id']}", headers=auth)).status_code == 204
    assert (await client.delete(f"{FAULTS}/{everything['id']}", headers=auth)).status_code == 404
    assert (await client.get(f"{FAULTS}/nope", headers=auth)).status_code == 404
    assert (await client.get("/api.json", headers=auth)).status_code == 200
    assert [r["id"] for r in (await client.get(FAULTS, headers=auth)).json()["faults"]] == [
        other["id"]
    ]
    assert (await client.delete(FAULTS, headers=auth)).json() == {"removed": 1}
    assert (await client.get(FAULTS, headers=auth)).json() == {"faults": []}
