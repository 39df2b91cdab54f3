"""Every documented error status of every Author API operation, in problem+json."""

from __future__ import annotations

import uuid

import httpx
import pytest

from assetvault.tree.models import Node
from tests.api.adobe.conftest import adobe
from tests.api.adobe.test_assets import is_problem
from tests.conftest import Tokens

# (method, path template, needs write scope, needs X-Api-Key, accepts a JSON Accept)
OPERATIONS = [
    ("GET", "/adobe/assets/{id}", False, True),
    ("DELETE", "/adobe/assets/{id}", True, True),
    ("GET", "/adobe/assets/{id}/original/as/x.jpg", False, True),
    ("GET", "/adobe/assets/{id}/renditions", False, False),
    ("GET", "/adobe/assets/{id}/renditions/cq5dam.thumbnail.48.48.png/as/t.png", False, True),
    ("HEAD", "/adobe/assets/{id}/metadata", False, True),
    ("GET", "/adobe/assets/{id}/metadata", False, True),
    ("PATCH", "/adobe/assets/{id}/metadata", True, True),
    ("GET", "/adobe/assets/{id}/relations", False, False),
    ("POST", "/adobe/assets/{id}/relations", True, False),
    ("GET", "/adobe/assets/{id}/relations/sources", False, False),
    ("DELETE", "/adobe/assets/{id}/relations/sources", True, False),
    ("DELETE", "/adobe/assets/{id}/relations/sources/{id}", True, False),
    ("GET", "/adobe/assets/{id}/relationTypes", False, False),
    ("GET", "/adobe/assets/{id}/versions", False, True),  # an Assetvault extension
    # Another: the version binary's statuses are in tests/api/adobe/test_version_restore.py
    # (this photo has no version to serve).
    ("POST", "/adobe/assets/{id}/versions/1.0/restore", True, True),
]
IDS = [f"{m} {p}" for m, p, _, _ in OPERATIONS]


def request_kwargs(method: str) -> dict[str, object]:
    if method == "PATCH":
        return {
            "content": b"[]",
            "headers": {"Content-Type": "application/json-patch+json", "If-Match": "*"},
        }
    if method == "POST":
        return {
            "json": {
                "items": [
                    {"relationType": "sources", "relatedAssetId": f"urn:aaid:aem:{uuid.uuid4()}"}
                ]
            }
        }
    return {}


async def call(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    kwargs = request_kwargs(method)
    merged = {**kwargs.pop("headers", {}), **headers}  # type: ignore[dict-item]
    return await client.request(method, path, headers=merged, **kwargs)  # type: ignore[arg-type]


def problem_or_head(r: httpx.Response, status: int, method: str) -> bool:
    return r.status_code == status if method == "HEAD" else is_problem(r, status)


@pytest.mark.parametrize(("method", "template", "writes", "api_key"), OPERATIONS, ids=IDS)
async def test_401_403_400_404(
    client: httpx.AsyncClient,
    tokens: Tokens,
    photo: Node,
    method: str,
    template: str,
    writes: bool,
    api_key: bool,
) -> None:
    path = template.replace("{id}", photo.urn)
    assert problem_or_head(await call(client, method, path, {}), 401, method)
    bad = {"Authorization": "Bearer not-a-token", "X-Api-Key": "k"}
    assert problem_or_head(await call(client, method, path, bad), 401, method)
    if writes:
        r = await call(client, method, path, adobe(tokens.read))
        assert problem_or_head(r, 403, method)
    if api_key:
        r = await call(client, method, path, {"Authorization": f"Bearer {tokens.admin}"})
        assert problem_or_head(r, 403, method)
    token = tokens.admin
    malformed = template.replace("{id}", "urn:aaid:aem:nope", 1).replace("{id}", photo.urn)
    assert problem_or_head(await call(client, method, malformed, adobe(token)), 400, method)
    unknown = template.replace("{id}", f"urn:aaid:aem:{uuid.uuid4()}", 1).replace("{id}", photo.urn)
    assert problem_or_head(await call(client, method, unknown, adobe(token)), 404, method)


@pytest.mark.parametrize(("method", "template", "writes", "api_key"), OPERATIONS, ids=IDS)
async def test_406_when_the_accept_header_cannot_be_met(
    client: httpx.AsyncClient,
    tokens: Tokens,
    photo: Node,
    method: str,
    template: str,
    writes: bool,
    api_key: bool,
) -> None:
    path = template.replace("{id}", photo.urn)
    r = await call(client, method, path, {**adobe(tokens.admin), "Accept": "text/x-nothing"})
    assert problem_or_head(r, 406, method), (r.status_code, r.text)
