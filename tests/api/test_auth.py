"""Every route needs credentials: Bearer or Basic (token as password) on /content/dam and
/api/assets; the signed URI itself on part PUTs."""

from __future__ import annotations

import base64

import httpx
import pytest
from fastapi import APIRouter, Depends

from assetvault.api.deps import require
from assetvault.app import create_app
from assetvault.services import Services
from tests.conftest import Tokens
from tests.factories import bearer, make_folder, snapshot


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/content/dam/a.jpg"),
        ("HEAD", "/content/dam/a.jpg"),
        ("POST", "/content/dam.initiateUpload.json"),
        ("POST", "/content/dam.completeUpload.json"),
        ("POST", "/api/assets/folder"),
    ],
)
async def test_no_credentials_is_401_in_siren_form(
    client: httpx.AsyncClient, method: str, path: str, services: Services
) -> None:
    before = await snapshot(services)
    r = await client.request(method, path)
    assert r.status_code == 401
    assert "Bearer" in r.headers["www-authenticate"]
    if method != "HEAD":
        assert r.json()["properties"]["status.code"] == 401
    assert await snapshot(services) == before


@pytest.mark.parametrize(
    "header",
    [
        "Bearer nope",
        "Bearer ",
        "Basic !!!",
        "Digest abc",
        "Basic " + base64.b64encode(b"u").decode(),
    ],
)
async def test_bad_credentials_are_401(client: httpx.AsyncClient, header: str) -> None:
    r = await client.post("/api/assets/x", headers={"Authorization": header}, json={})
    assert r.status_code == 401


async def test_basic_auth_with_token_as_password(client: httpx.AsyncClient, tokens: Tokens) -> None:
    r = await make_folder(client, tokens.write, "viabearer")
    assert r.status_code == 201
    r = await client.post(
        "/api/assets/viabasic",
        json={"class": "assetFolder"},
        headers=basic("anyone", tokens.write),
    )
    assert r.status_code == 201


async def test_read_scope_cannot_write(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    before = await snapshot(services)
    r = await make_folder(client, tokens.read, "nope")
    assert r.status_code == 403
    assert "write is needed" in r.json()["properties"]["status.message"]
    r = await client.post(
        "/content/dam.initiateUpload.json",
        data={"fileName": "a", "fileSize": "1"},
        headers=bearer(tokens.read),
    )
    assert r.status_code == 403
    assert await snapshot(services) == before


async def test_revoked_token_stops_working(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    assert (await make_folder(client, tokens.write, "before")).status_code == 201
    await services.auth.revoke("writer")
    assert (await make_folder(client, tokens.write, "after")).status_code == 401


async def test_tokens_are_stored_hashed(services: Services, tokens: Tokens) -> None:
    from sqlalchemy import select

    from assetvault.adapters.database.tables import api_tokens

    async with services.db.read() as conn:
        stored = [r.token_hash for r in await conn.execute(select(api_tokens))]
    assert tokens.admin not in stored and len(stored) == 3
    assert all(len(h) == 64 for h in stored)


async def test_adobe_routes_need_an_api_key_too(services: Services, tokens: Tokens) -> None:
    """/adobe/* follows AEM: Bearer token and X-Api-Key; errors are problem+json."""
    app = create_app(services=services)
    probe = APIRouter()

    @probe.get("/adobe/probe")
    async def _probe(principal: object = Depends(require("read", api_key=True))) -> dict[str, str]:
        return {"ok": "yes"}

    app.include_router(probe)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/adobe/probe")
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 401
        r = await c.get("/adobe/probe", headers=bearer(tokens.read))
        assert r.status_code == 403 and "X-Api-Key" in r.json()["detail"]
        ok = await c.get("/adobe/probe", headers={**bearer(tokens.read), "X-Api-Key": "k"})
        assert ok.status_code == 200
        services.settings.api_keys = ["allowed"]
        r = await c.get("/adobe/probe", headers={**bearer(tokens.read), "X-Api-Key": "k"})
        assert r.status_code == 403 and r.json()["detail"] == "Api Key is invalid"
