"""A small asynchronous client of Assetvault's public APIs, for the CLI's bulk commands."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict
from urllib.parse import quote

import httpx

ROOT = "/content/dam"
DEFAULT_URL = "http://127.0.0.1:4502"


class ClientError(Exception):
    """A request the server refused or could not answer; ``status`` 0 when unreachable."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.reason_phrase}"
    if isinstance(body, dict):
        props = body.get("properties")
        detail = body.get("detail") or (
            props.get("status.message") if isinstance(props, dict) else None
        )
        if detail:
            return f"{response.status_code}: {detail}"
    return f"{response.status_code} {response.reason_phrase}"


def check(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise ClientError(
            f"{response.request.method} {response.request.url.path}: {_message(response)}",
            response.status_code,
        )
    return response


def dam_path(path: str) -> str:
    """A /content/dam path without a trailing slash; refuses anything outside it."""
    path = "/" + path.strip("/")
    if path != ROOT and not path.startswith(ROOT + "/"):
        raise ClientError(f"{path} is not under {ROOT}")
    if any(part in (".", "..") for part in path.split("/")):
        raise ClientError(f"{path} may not contain . or .. segments")
    return path


def classic(path: str) -> str:
    return "/api/assets" + quote(path[len(ROOT) :])


@dataclass(frozen=True)
class RemoteAsset:
    path: str
    size: int | None
    sha1: str | None


class SearchHits(TypedDict):
    results: list[dict[str, Any]]


class SearchPage(TypedDict):
    """What the parts of an Author API search answer this client reads."""

    hits: SearchHits
    cursor: NotRequired[str | None]


@dataclass(frozen=True)
class Connection:
    url: str
    token: str

    @classmethod
    def from_options(cls, url: str | None, token: str | None) -> Connection:
        url = url or os.environ.get("ASSETVAULT_URL") or DEFAULT_URL
        token = token or os.environ.get("ASSETVAULT_TOKEN")
        if not token:
            raise ClientError("a token is needed: --token or ASSETVAULT_TOKEN")
        return cls(url.rstrip("/"), token)

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}", "X-Api-Key": "assetvault-cli"},
            timeout=httpx.Timeout(60.0, connect=10.0),
            **kwargs,
        )


async def ensure_folder(client: httpx.AsyncClient, path: str, title: str | None = None) -> None:
    """Creates the folder (titled ``title``, else its name) and its missing parents
    (classic API); existing ones are kept."""
    if path == ROOT:
        return
    found = await client.get(classic(path) + ".json", params={"limit": 0})
    if found.status_code == 200:
        return
    if found.status_code != 404:
        check(found)
    await ensure_folder(client, path.rsplit("/", 1)[0])
    made = await client.post(
        classic(path),
        json={"class": "assetFolder", "properties": {"title": title or path.rsplit("/", 1)[1]}},
    )
    if made.status_code != 409:  # made by someone else meanwhile: just as good
        check(made)


async def search(client: httpx.AsyncClient, body: dict[str, Any]) -> SearchPage:
    r = await client.post("/adobe/assets/search", params={"allowUnsafeSearch": "true"}, json=body)
    page: SearchPage = check(r).json()
    return page


async def search_all(
    client: httpx.AsyncClient, body: dict[str, Any], limit: int | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Every hit of a search, page after page by cursor (at most ``limit``)."""
    cursor: str | None = None
    seen = 0
    while True:
        page = await search(client, {**body, **({"cursor": cursor} if cursor else {})})
        for hit in page["hits"]["results"]:
            if limit is not None and seen >= limit:
                return
            seen += 1
            yield hit
        cursor = page.get("cursor")
        if not cursor:
            return


def below(path: str) -> dict[str, Any]:
    """A query node for everything at or below ``path``: the path itself, or paths from
    "<path>/" up to, not including, "<path>0" ("0" follows "/" in code-point order)."""
    if path == ROOT:
        return {"match": {"text": "*"}}
    return {
        "or": [
            {"term": {"repositoryMetadata.repo:path": [path]}},
            {"range": {"repositoryMetadata.repo:path": {"gte": path + "/", "lt": path + "0"}}},
        ]
    }


async def assets_below(client: httpx.AsyncClient, path: str) -> dict[str, RemoteAsset]:
    """The assets at or below ``path``, by path, with their size and SHA-1."""
    body = {
        "query": [below(path)],
        "limit": 50,
        "sort": [{"field": "repositoryMetadata.repo:path", "order": "ASC"}],
        "projectedFields": {
            "includes": [
                "repositoryMetadata.repo:path",
                "repositoryMetadata.repo:size",
                "repositoryMetadata.dam:sha1",
            ]
        },
    }
    found: dict[str, RemoteAsset] = {}
    async for hit in search_all(client, body):
        repo = hit.get("repositoryMetadata", {})
        found[repo["repo:path"]] = RemoteAsset(
            repo["repo:path"], repo.get("repo:size"), repo.get("dam:sha1")
        )
    return found
