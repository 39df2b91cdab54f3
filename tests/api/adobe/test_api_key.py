"""X-Api-Key on every /adobe route that requires it: a valid token without the header is
403 in problem+json, before anything is looked up (so an unknown id is 403 too, never
404). The routes are enumerated from the app, so a new route cannot slip through."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from assetvault.app import create_app
from assetvault.settings import Settings
from tests.api.adobe.test_assets import is_problem
from tests.conftest import Tokens

# What the seeds document as needing no X-Api-Key: "SecurityBearer" alone (relations, in
# the Author API 2026.04) or "SecurityBearer or ApiKeyAuth" (listing renditions).
BEARER_ONLY = {
    ("GET", "/adobe/assets/{assetId}/renditions"),
    ("GET", "/adobe/assets/{assetId}/relationTypes"),
    ("GET", "/adobe/assets/{assetId}/relations"),
    ("POST", "/adobe/assets/{assetId}/relations"),
    ("GET", "/adobe/assets/{assetId}/relations/{relationType}"),
    ("DELETE", "/adobe/assets/{assetId}/relations/{relationType}"),
    ("DELETE", "/adobe/assets/{assetId}/relations/{relationType}/{relatedAssetId}"),
    # Assetvault's ZIP of many originals is a download: a download's auth (docs/author-api.md).
    ("POST", "/adobe/assets/archive"),
}
# The provider's redirect back to Assetvault comes from the user's browser: its state
# names the source, no credentials are sent.
NO_CREDENTIALS = {("GET", "/adobe/import/sources/authentication/callback")}
# A browser's download of a selection's ZIP: a signed media URL authorizes it, no token
# (api/ui/media.py); without one it is refused (tests/api/ui/test_media_urls.py).
MEDIA_URL_ONLY = {("GET", "/adobe/assets/archive")}


def routes_of(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)  # an included router
        if included is not None:
            yield from routes_of(included.routes)


def adobe_operations(app: FastAPI) -> list[tuple[str, str]]:
    found = {
        (method, route.path)
        for route in routes_of(app.routes)
        if route.path.startswith("/adobe/")
        for method in route.methods - {"HEAD", "OPTIONS"}
    }
    assert len(found) > 30  # the walk found the routers
    return sorted(found)


OPERATIONS = adobe_operations(create_app(Settings(data_dir=Path("/nonexistent/assetvault"))))


def filled(template: str) -> str:
    urn = f"urn:aaid:aem:{uuid.uuid4()}"
    return re.sub(r"\{[^}]+\}", lambda m: urn if "Id" in m.group() else "x", template)


@pytest.mark.parametrize(
    ("method", "template"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS]
)
async def test_a_token_without_api_key_is_403(
    client: httpx.AsyncClient, tokens: Tokens, method: str, template: str
) -> None:
    r = await client.request(
        method, filled(template), headers={"Authorization": f"Bearer {tokens.admin}"}
    )
    if (method, template) in NO_CREDENTIALS | MEDIA_URL_ONLY:
        return
    if (method, template) in BEARER_ONLY:
        assert r.status_code != 403, r.text
    else:
        assert is_problem(r, 403), (r.status_code, r.text)
        assert "X-Api-Key" in r.json()["detail"]
