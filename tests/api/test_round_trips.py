"""What a request costs the database: the hot routes each run in one transaction."""

from __future__ import annotations

import httpx

from assetvault.services import Services
from tests.api.adobe.conftest import adobe
from tests.conftest import Tokens
from tests.factories import bearer, make_assets, make_folder


async def transactions(services: Services, request: object) -> int:
    before = services.db.transactions
    response = await request  # type: ignore[misc]
    assert response.status_code == 200, response.text
    return services.db.transactions - before


async def test_hot_routes_run_in_one_transaction(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    await make_folder(client, tokens.write, "lib")
    assets = await make_assets(
        services,
        [(f"a{i:02}.jpg", {"dc:title": f"t{i}"}) for i in range(20)],
        folder="/content/dam/lib",
    )
    asset = assets[0]
    read, write = adobe(tokens.read), adobe(tokens.write)
    metadata = f"/adobe/assets/{asset.urn}/metadata"
    # A token is checked against the database once, then remembered for a few seconds.
    await client.get(metadata, headers=read)
    await client.get("/api/assets/lib.json", headers=bearer(tokens.write))

    assert await transactions(services, client.get(metadata, headers=read)) == 1
    assert await transactions(services, client.head(metadata, headers=read)) == 1
    listing = client.get("/api/assets/lib.json", headers=bearer(tokens.read))
    assert await transactions(services, listing) == 1
    one = client.get("/api/assets/lib/a00.jpg.json", headers=bearer(tokens.read))
    assert await transactions(services, one) == 1
    search = client.post(
        "/adobe/assets/search?allowUnsafeSearch=true",
        json={
            "query": [{"match": {"text": "*"}}],
            "sort": [{"field": "repositoryMetadata.repo:name"}],
        },
        headers=read,
    )
    assert await transactions(services, search) == 1
    patch = client.patch(
        metadata,
        json=[{"op": "add", "path": "/dc:title", "value": "new"}],
        headers={**write, "Content-Type": "application/json-patch+json", "If-Match": "*"},
    )
    assert await transactions(services, patch) == 1
