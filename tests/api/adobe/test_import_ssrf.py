"""URL imports never reach a refused address: not directly, not through a redirect,
not through a name resolving there. The refused servers are real loopback servers on
127.0.0.2 (the allow-list opens only 127.0.0.1), so each test also proves that no
request reached them; a refused non-loopback address is only ever a resolver's answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from assetvault.services import Services
from tests.conftest import Tokens
from tests.imports import adobe, all_results, import_services, run_imports
from tests.receivers import Reply, receiver


@pytest.fixture(params=["sqlite", "postgresql"])
async def services(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Services]:
    async for svc in import_services(request, tmp_path):
        yield svc


@pytest.fixture
def forbidden() -> Any:
    """A server the guard must never let an import reach."""
    with receiver(lambda r: Reply(200, b"secret"), host="127.0.0.2") as r:
        yield r


async def import_one(client: Any, token: str, services: Services, url: str) -> dict[str, Any]:
    r = await client.post(
        "/adobe/assets/import/fromUrl",
        json={"folder": "/content/dam", "files": [{"fileName": "f", "url": url}]},
        headers=adobe(token),
    )
    assert r.status_code == 202, r.text
    await run_imports(services)
    (item,) = await all_results(client, token, r.headers["location"].replace("status", "result"))
    return item


async def test_a_loopback_address_outside_the_allow_list_is_refused(
    client: Any, tokens: Tokens, services: Services, forbidden: Any
) -> None:
    item = await import_one(client, tokens.write, services, f"{forbidden.url}/x")
    assert item["status"] == "failed" and item["error"]["status"] == 403
    assert "loopback" in item["error"]["detail"]
    assert forbidden.received == []
    assert await services.tree.find("/content/dam/f") is None


async def test_a_redirect_to_a_refused_address_is_not_followed(
    client: Any, tokens: Tokens, services: Services, forbidden: Any
) -> None:
    with receiver(lambda r: Reply(302, headers={"location": f"{forbidden.url}/x"})) as hop:
        item = await import_one(client, tokens.write, services, f"{hop.url}/start")
        assert len(hop.received) == 1
    assert item["status"] == "failed" and "loopback" in item["error"]["detail"]
    assert forbidden.received == []


async def test_a_name_resolving_to_loopback_is_refused(
    client: Any, tokens: Tokens, services: Services, forbidden: Any
) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.2"] if host == "assets.example.com" else []

    services.fetch_client.guard.resolver = resolve
    item = await import_one(
        client, tokens.write, services, f"http://assets.example.com:{forbidden.port}/x"
    )
    assert (
        item["status"] == "failed" and "assets.example.com (127.0.0.2)" in item["error"]["detail"]
    )
    assert forbidden.received == []


async def test_localhost_by_name_is_refused_when_only_an_address_port_is_allowed() -> None:
    """The system resolver: localhost is loopback, and an allow-list entry for
    127.0.0.1:<port> names that address and port, not the name."""
    from assetvault.adapters.fetch.guard import AllowList, FetchBlocked, Guard

    guard = Guard(AllowList.parse("127.0.0.1:8080"))
    with pytest.raises(FetchBlocked, match="loopback"):
        await guard.vet("http://localhost:8080/x")
    assert (await guard.vet("http://127.0.0.1:8080/x")).address == "127.0.0.1"


async def test_the_cloud_metadata_address_is_refused_without_a_connection(
    client: Any, tokens: Tokens, services: Services
) -> None:
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["169.254.169.254"]

    services.fetch_client.guard.resolver = resolve
    item = await import_one(
        client, tokens.write, services, "http://metadata.example.com/latest/meta-data/"
    )
    assert asked == ["metadata.example.com"]
    assert item["status"] == "failed" and "link-local" in item["error"]["detail"]
    literal = await import_one(
        client, tokens.write, services, "http://169.254.169.254/latest/meta-data/"
    )
    assert literal["status"] == "failed" and "link-local" in literal["error"]["detail"]
