"""/_assetvault/journal: admin scope only, refused on a server started without it, and
what it keeps of each request (never credentials)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from assetvault.app import create_app
from assetvault.services import Services
from tests.conftest import Tokens
from tests.factories import bearer, make_folder, upload

JOURNAL = "/_assetvault/journal"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"journal_size": 50}


async def entries(client: httpx.AsyncClient, tokens: Tokens, **params: str) -> list[dict[str, Any]]:
    r = await client.get(JOURNAL, params=params, headers=bearer(tokens.admin))
    assert r.status_code == 200, r.text
    assert r.json()["size"] == 50
    found: list[dict[str, Any]] = r.json()["entries"]
    return found


async def test_only_an_admin_token_reaches_the_journal(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    for method in ("GET", "DELETE"):
        assert (await client.request(method, JOURNAL)).status_code == 401
        for token in (tokens.read, tokens.write):
            r = await client.request(method, JOURNAL, headers=bearer(token))
            assert r.status_code == 403, r.text


async def test_refused_on_a_server_started_without_a_journal(
    services: Services, tokens: Tokens
) -> None:
    services.settings.journal_size = 0
    app = create_app(services=services)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://assetvault.test"
    ) as client:
        assert (await client.get("/api.json", headers=bearer(tokens.admin))).status_code == 200
        for method in ("GET", "DELETE"):
            r = await client.request(method, JOURNAL, headers=bearer(tokens.admin))
            assert r.status_code == 409, r.text
            assert "serve --journal" in r.json()["detail"]
    assert not (services.settings.data_dir / "journal.db").exists()


async def test_an_upload_is_journaled_without_credentials(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await make_folder(client, tokens.admin, "journaled")
    data = b"x" * 3000
    done = await upload(client, tokens.admin, "/content/dam/journaled", "a.bin", data)
    assert done.status_code == 200, done.text
    found = await entries(client, tokens)
    assert [(e["method"], e["status"]) for e in found] == [
        ("POST", 201),  # the folder
        ("POST", 201),  # initiate
        ("PUT", 201),  # the part
        ("POST", 200),  # complete
    ]
    folder, initiate, part, complete = found
    assert folder["path"] == "/api/assets/journaled"
    assert part["requestBytes"] == 3000 and part["responseBytes"] == 0
    assert "token=%5Bhidden%5D" in part["query"] and tokens.admin not in str(found)
    assert complete["path"] == "/content/dam/journaled.completeUpload.json"
    assert complete["responseBytes"] > 0 and complete["ms"] > 0
    assert complete["requestHeaders"]["content-type"] == "application/x-www-form-urlencoded"
    assert complete["responseHeaders"]["content-type"].startswith("application/json")
    for e in found:
        assert not {"authorization", "cookie", "x-api-key"} & set(e["requestHeaders"])
        assert e["fault"] is None and e["dropped"] is False

    # "Exactly one completeUpload for this folder."
    one = await entries(
        client, tokens, method="POST", path="/content/dam/journaled.completeUpload.json"
    )
    assert len(one) == 1
    assert len(await entries(client, tokens, status="2xx")) == 4
    assert [e["method"] for e in await entries(client, tokens, status="201", method="put")] == [
        "PUT"
    ]
    assert len(await entries(client, tokens, after=str(initiate["id"]))) == 2
    assert len(await entries(client, tokens, since=str(complete["at"]))) == 1
    assert len(await entries(client, tokens, since="2000-01-01T00:00:00Z")) == 4
    assert len(await entries(client, tokens, limit="1")) == 1
    # Reading the journal does not fill it.
    assert len(await entries(client, tokens)) == 4


async def test_bad_filters_are_refused_and_clear_empties(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    auth = bearer(tokens.admin)
    assert (await client.get("/api.json", headers=auth)).status_code == 200
    for params in [
        {"status": "abc"},
        {"status": "700"},
        {"limit": "0"},
        {"limit": "-1"},
        {"since": "yesterday"},
        {"since": "2026-01-01T00:00:00"},
        {"method": "GE T"},
        {"after": "x"},
    ]:
        r = await client.get(JOURNAL, params=params, headers=auth)
        assert r.status_code == 400, (params, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert len(await entries(client, tokens)) == 1
    assert (await client.delete(JOURNAL, headers=auth)).json() == {"removed": 1}
    assert await entries(client, tokens) == []


async def test_the_journal_is_bounded(client: httpx.AsyncClient, tokens: Tokens) -> None:
    auth = bearer(tokens.admin)
    for _ in range(60):
        await client.get("/api.json", headers=auth)
    found = await entries(client, tokens, limit="100")
    assert len(found) == 50 and found[-1]["id"] - found[0]["id"] == 49
