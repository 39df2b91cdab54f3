"""The metadata route answered ahead of the router answers exactly as the router does."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from assetvault.app import create_app
from assetvault.services import Services
from assetvault.tree.models import Node
from tests.api.adobe.conftest import adobe
from tests.conftest import Tokens


def comparable(r: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted((k, v) for k, v in r.headers.items() if k.lower() != "date")
    return r.status_code, headers, r.content


async def test_fast_path_and_router_give_the_same_answers(
    services: Services, tokens: Tokens, photo: Node
) -> None:
    url = f"/adobe/assets/{photo.urn}/metadata"
    folder = await services.tree.get("/content/dam")
    etag = photo.etag
    cases: list[tuple[str, str, dict[str, str]]] = [
        ("GET", url, adobe(tokens.read)),
        ("HEAD", url, adobe(tokens.read)),
        ("GET", url, {**adobe(tokens.read), "If-None-Match": etag}),
        ("HEAD", url, {**adobe(tokens.read), "If-None-Match": etag}),
        ("GET", url, {**adobe(tokens.read), "If-None-Match": '"other"'}),
        ("GET", url, {**adobe(tokens.read), "Accept": "text/html"}),
        ("GET", url, {**adobe(tokens.read), "Accept": "application/json"}),
        ("GET", url, {"Authorization": f"Bearer {tokens.read}"}),  # no X-Api-Key
        ("GET", url, {"X-Api-Key": "k"}),  # no credentials
        ("GET", url, {"Authorization": "Bearer nope", "X-Api-Key": "k"}),
        ("GET", "/adobe/assets/not-a-urn/metadata", adobe(tokens.read)),
        ("GET", f"/adobe/assets/{folder.urn}/metadata", adobe(tokens.read)),
        (
            "GET",
            "/adobe/assets/urn:aaid:aem:00000000-0000-0000-0000-000000000000/metadata",
            adobe(tokens.read),
        ),
        ("HEAD", "/adobe/assets/not-a-urn/metadata", adobe(tokens.read)),
        ("GET", f"/adobe/assets/{photo.urn}%2Fx/metadata", adobe(tokens.read)),
    ]
    answers = []
    for hot in (True, False):
        app = create_app(services=services, hot_routes=hot)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answers.append([comparable(await client.request(m, u, headers=h)) for m, u, h in cases])
    fast, routed = answers
    for case, a, b in zip(cases, fast, routed, strict=True):
        assert a == b, case
    assert {a[0] for a in fast} >= {200, 304, 400, 401, 403, 404, 406}


async def _name_after_request(app: FastAPI, url: str, token: str) -> str:
    """The name of the task a request ran in, which was named "unnamed" before it."""

    async def run() -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get(url, headers=adobe(token))).status_code == 200
        task = asyncio.current_task()
        assert task is not None
        return task.get_name()

    return await asyncio.create_task(run(), name="unnamed")


async def test_measuring_names_each_request_after_its_route(
    services: Services, tokens: Tokens, photo: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    # asyncio's slow-callback log names a callback by its task: under measurement, the
    # task of a request is named after it, so the log says which request held the loop.
    url = f"/adobe/assets/{photo.urn}/metadata"
    plain = create_app(services=services)
    assert await _name_after_request(plain, url, tokens.read) == "unnamed"
    monkeypatch.setenv("ASSETVAULT_SLOW_CALLBACK_MS", "10")
    measured = create_app(services=services)
    assert await _name_after_request(measured, url, tokens.read) == f"GET {url}"


def _without_revision(r: httpx.Response) -> tuple[int, list[str], dict[str, object]]:
    """A successful PATCH's answer, less what each PATCH changes (ETag, revision, time)."""
    body = r.json()
    for key in ("repo:etag", "repo:version", "repo:modifyDate"):
        body["repositoryMetadata"].pop(key, None)
    return r.status_code, sorted(k for k in r.headers if k.lower() != "date"), body


async def test_patch_ahead_of_the_router_answers_as_the_router_does(
    services: Services, tokens: Tokens, photo: Node
) -> None:
    url = f"/adobe/assets/{photo.urn}/metadata"
    write = {**adobe(tokens.write), "Content-Type": "application/json-patch+json"}
    ok = b'[{"op":"add","path":"/dc:title","value":"t"}]'
    folder = await services.tree.get("/content/dam")
    refused: list[tuple[str, dict[str, str], bytes]] = [
        (url, {**write, "If-Match": '"stale"'}, ok),  # 412
        (url, write, ok),  # no If-Match: 428
        (url, {**write, "If-Match": "*", "Content-Type": "application/json"}, ok),  # 415
        (url, {**write, "If-Match": "*", "Accept": "text/html"}, ok),  # 406
        (url, {**write, "If-Match": "*"}, b"[{"),  # 400
        (url, {**write, "If-Match": "*"}, b'[{"op":"nope","path":"/a"}]'),  # 400
        (url, {**write, "If-Match": "*"}, b"[" + b'"x",' * 400_000 + b'"x"]'),  # 413
        (url, {**adobe(tokens.read), "If-Match": "*"}, ok),  # 403: a read token
        (url, {"Authorization": f"Bearer {tokens.write}", "If-Match": "*"}, ok),  # 403
        (url, {"If-Match": "*"}, ok),  # 401
        ("/adobe/assets/not-a-urn/metadata", {**write, "If-Match": "*"}, ok),  # 400
        (f"/adobe/assets/{folder.urn}/metadata", {**write, "If-Match": "*"}, ok),  # 404
    ]
    answers = []
    done = []
    apps = [create_app(services=services, hot_routes=hot) for hot in (True, False)]
    for app in apps:  # the refused ones first: they change nothing
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answers.append(
                [comparable(await client.patch(u, headers=h, content=b)) for u, h, b in refused]
            )
    for app in apps:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            done.append(await client.patch(url, headers={**write, "If-Match": "*"}, content=ok))
    fast, routed = answers
    for case, a, b in zip(refused, fast, routed, strict=True):
        assert a == b, case[:2]
    assert {a[0] for a in fast} >= {400, 401, 403, 404, 406, 412, 413, 415, 428}
    assert _without_revision(done[0]) == _without_revision(done[1])
    assert done[0].status_code == 200
    assert int(done[1].json()["repositoryMetadata"]["repo:version"]) == (
        int(done[0].json()["repositoryMetadata"]["repo:version"]) + 1
    )


async def test_classic_views_ahead_of_the_router_answer_as_the_router_does(
    services: Services, tokens: Tokens, photo: Node
) -> None:
    name = photo.path.rsplit("/", 1)[1]
    read = {"Authorization": f"Bearer {tokens.read}"}
    cases: list[tuple[str, str, dict[str, str]]] = [
        ("GET", "/api/assets.json", read),
        ("HEAD", "/api/assets.json", read),
        ("GET", f"/api/assets/{name}.json", read),
        ("GET", f"/api/assets/{name}.json?showProperty=dc:title", read),
        ("GET", "/api/assets.json?limit=1&offset=0", read),
        ("GET", "/api/assets.json?limit=x", read),
        ("GET", "/api/assets/missing.json", read),
        ("GET", "/api/assets/a%2Fb.json", read),
        ("GET", "/api/assets.json", {}),
        ("GET", "/api/assets.json", {"Authorization": "Bearer nope"}),
        ("GET", "/api/assets.json", {**read, "Accept": "text/html"}),
    ]
    answers = []
    for hot in (True, False):
        app = create_app(services=services, hot_routes=hot)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answers.append([comparable(await client.request(m, u, headers=h)) for m, u, h in cases])
    fast, routed = answers
    for case, a, b in zip(cases, fast, routed, strict=True):
        assert a == b, case
    assert {a[0] for a in fast} >= {200, 400, 401, 404}
