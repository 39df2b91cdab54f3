"""A small asynchronous client of Assetvault's public APIs, for the CLI's bulk commands."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

ROOT = "/content/dam"
DEFAULT_URL = "http://127.0.0.1:4502"
MAX_ANSWER = 32 * 2**20  # bytes of one JSON answer the client reads
MAX_PAGES = 100_000  # pages of one search (5 million hits at 50 a page)
MAX_EMPTY_PAGES = 20  # pages in a row with no hit but a cursor


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


class Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class SearchHits(Wire):
    results: list[dict[str, Any]]


class SearchPage(Wire):
    """What the parts of an Author API search answer this client reads."""

    hits: SearchHits
    cursor: StrictStr | None = None


class _Listed(Wire):
    path: StrictStr = Field(alias="repo:path")
    size: Annotated[StrictInt, Field(ge=0)] | None = Field(None, alias="repo:size")
    sha1: Annotated[StrictStr, Field(pattern="^[0-9a-fA-F]{40}$")] | None = Field(
        None, alias="dam:sha1"
    )


class _ListedHit(Wire):
    repository: _Listed = Field(alias="repositoryMetadata")


W = TypeVar("W", bound=BaseModel)


def parsed(model: type[W], data: object, what: str) -> W:
    """``data`` as ``model``, or a ClientError naming the first fields that are wrong
    (never the values: they are the server's and may be anything)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        wrong = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'the answer'}: {e['msg']}"
            for e in exc.errors()[:3]
        )
        raise ClientError(f"the server's {what} is malformed ({wrong})") from None


def body_json(response: httpx.Response, what: str) -> object:
    """The JSON of an answer already read, or a ClientError."""
    try:
        return response.json()
    except (ValueError, RecursionError):
        raise ClientError(f"the server's {what} is not JSON") from None


async def json_answer(response: httpx.Response, what: str) -> object:
    """The JSON of a streamed answer, read up to :data:`MAX_ANSWER` bytes."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_ANSWER:
        raise ClientError(f"the server's {what} is larger than {MAX_ANSWER} bytes")
    body = bytearray()
    async for block in response.aiter_bytes():
        body += block
        if len(body) > MAX_ANSWER:
            raise ClientError(f"the server's {what} is larger than {MAX_ANSWER} bytes")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise ClientError(f"the server's {what} is not JSON") from None


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
    async with client.stream(
        "POST", "/adobe/assets/search", params={"allowUnsafeSearch": "true"}, json=body
    ) as r:
        if r.is_error:
            await r.aread()
            check(r)
        return parsed(SearchPage, await json_answer(r, "search answer"), "search answer")


async def search_all(
    client: httpx.AsyncClient,
    body: dict[str, Any],
    limit: int | None = None,
    max_pages: int = MAX_PAGES,
) -> AsyncIterator[dict[str, Any]]:
    """Every hit of a search, page after page by cursor (at most ``limit``). A listing
    that does not end (a cursor seen before, more than ``max_pages`` pages, or
    :data:`MAX_EMPTY_PAGES` empty pages in a row) is a ClientError, never a hang."""
    cursor: str | None = None
    cursors: set[str] = set()
    seen = empty = 0
    for _ in range(max_pages):
        page = await search(client, {**body, **({"cursor": cursor} if cursor else {})})
        for hit in page.hits.results:
            if limit is not None and seen >= limit:
                return
            seen += 1
            yield hit
        cursor = page.cursor
        if not cursor:
            return
        if cursor in cursors:
            raise ClientError("the server's search listing repeats a cursor: it would never end")
        cursors.add(cursor)
        empty = 0 if page.hits.results else empty + 1
        if empty >= MAX_EMPTY_PAGES:
            raise ClientError(
                f"the server's search listing gave {empty} empty pages in a row: it would never end"
            )
    raise ClientError(f"the server's search listing goes on past {max_pages} pages")


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
        repo = parsed(_ListedHit, hit, "search listing").repository
        found[repo.path] = RemoteAsset(
            repo.path, repo.size, repo.sha1.lower() if repo.sha1 else None
        )
    return found
