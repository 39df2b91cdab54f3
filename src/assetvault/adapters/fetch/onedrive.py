"""OneDrive, as an import source: Microsoft Graph v1.0 and the Microsoft identity
platform's OAuth 2 code flow.

Wire format as Microsoft documents it (learn.microsoft.com: "Microsoft identity platform
and OAuth 2.0 authorization code flow"; Graph "List the contents of a folder",
"Get driveItem", "Download the contents of a DriveItem", "List thumbnails for a
DriveItem", "Paging Microsoft Graph data in your app"):
- authorize: ``{login}/authorize?client_id&response_type=code&redirect_uri&
  response_mode=query&scope&state&code_challenge&code_challenge_method=S256``;
- tokens: ``POST {login}/token`` (form: client_id, scope, code, redirect_uri,
  grant_type=authorization_code, code_verifier[, client_secret]; refresh:
  grant_type=refresh_token, refresh_token) -> access_token, expires_in, refresh_token;
- ``GET {graph}/me/drive/root/children`` and ``/me/drive/items/{id}/children`` with
  ``$top`` -> ``value`` (driveItems: id, name, size, file.mimeType | folder,
  lastModifiedDateTime, parentReference.path "/drive/root:/..."), ``@odata.nextLink``
  (the whole URL of the next page) while more remain;
- ``GET {graph}/me/drive/items/{id}``; ``GET .../{id}/content`` answers 302 to a
  pre-authenticated download URL; ``GET .../{id}/thumbnails/0/medium/content`` the
  thumbnail (also by a redirect);
- errors: ``{"error": {"code": "itemNotFound", "message": ...}}`` with 404, 401 for a
  bad token.
There is no recursive listing in Graph: a recursive listing walks the folders, its
cursor holding the folders still to visit and the page under way.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlencode

import magic
from pydantic import BaseModel, Field, StrictStr

from assetvault import cursors
from assetvault.adapters.fetch.client import GuardedClient
from assetvault.adapters.fetch.oauth import (
    Answer,
    CodeFlowClient,
    ProviderError,
    Short,
    Size,
    Text,
    call,
    parse,
    parse_or_none,
    snippet,
)
from assetvault.imports.ports import Download, SourceItem, SourcePage, Thumbnail

SCOPES = "offline_access Files.Read.All"
ROOT_PREFIX = "/drive/root:"
MAX_THUMBNAIL_BYTES = 8 * 1024 * 1024
MAX_ITEMS = 100_000  # per page; Graph sends at most a few hundred
# Pages one listing call reads at most (Graph may answer pages of nothing with a next
# link): past them the call returns what it has, with a cursor to go on from.
PAGES_PER_CALL = 20

_M = TypeVar("_M", bound=BaseModel)


class FileFacet(Answer):
    mimeType: Short | None = None


class ItemReference(Answer):
    path: Text | None = None


class DriveItem(Answer):
    id: Annotated[StrictStr, Field(min_length=1, max_length=4096)]
    name: Text = ""
    size: Size | None = None
    file: FileFacet | None = None
    folder: dict[str, Any] | None = None
    parentReference: ItemReference | None = None
    lastModifiedDateTime: Short | None = None


class Children(Answer):
    value: list[DriveItem] = Field(max_length=MAX_ITEMS)
    next_link: Annotated[StrictStr, Field(max_length=8192)] | None = Field(
        None, alias="@odata.nextLink"
    )


class GraphError(Answer):
    code: Short = ""
    message: Text = ""


class ErrorAnswer(Answer):
    error: GraphError


class OneDriveClient(CodeFlowClient):
    provider = "OneDrive"
    token_form = {"scope": SCOPES}  # noqa: RUF012

    def __init__(
        self,
        client: GuardedClient,
        *,
        client_id: str,
        client_secret: str,
        login_url: str,
        graph_url: str,
    ) -> None:
        self.client = client
        self.client_id = client_id
        self.client_secret = client_secret
        self.login_url = login_url.rstrip("/")
        self.graph_url = graph_url.rstrip("/")
        self.token_url = f"{self.login_url}/token"

    def authorize_url(self, state: str, code_challenge: str, redirect_uri: str) -> str:
        query = {
            "client_id": self.client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "response_mode": "query",
            "scope": SCOPES,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        return f"{self.login_url}/authorize?{urlencode(query)}"

    async def _get(self, token: str, url: str, what: str, model: type[_M]) -> _M:
        status, body, _ = await call(
            self.client,
            "GET",
            url,
            headers={"authorization": f"Bearer {token}", "accept": "application/json"},
            what=what,
        )
        if status == 200:
            return parse(body, what, model)
        raise _error(status, body, what)

    def _children_url(self, item_id: str | None, limit: int) -> str:
        where = (
            "me/drive/root"
            if item_id in (None, "", "/")
            else f"me/drive/items/{quote(str(item_id), safe='')}"
        )
        return f"{self.graph_url}/{where}/children?$top={limit}"

    async def list(
        self, token: str, item_id: str | None, *, recursive: bool, cursor: str | None, limit: int
    ) -> SourcePage:
        if cursor:
            state = self._state(cursor)
            url, queue = state["next"], list(state["queue"])
        else:
            url, queue = self._children_url(item_id, limit), []
        items: list[SourceItem] = []
        asked: set[str] = set()
        while True:
            if url in asked:
                raise ProviderError("OneDrive children: the @odata.nextLink repeats a page", 502)
            asked.add(url)
            answer = await self._get(token, url, "OneDrive children", Children)
            page = [_item(v) for v in answer.value]
            items.extend(page)
            if recursive:
                queue.extend(i.id for i in page if i.type == "folder")
            if answer.next_link is not None:
                if not self._in_graph(answer.next_link):
                    # The next page gets the user's token: it must be Graph's.
                    raise ProviderError(
                        "OneDrive children: the @odata.nextLink points outside Graph", 502
                    )
                url = answer.next_link
            elif recursive and queue:
                url = self._children_url(queue.pop(0), limit)
            else:
                return SourcePage(items, None)
            if len(items) >= limit or len(asked) >= PAGES_PER_CALL:
                # Pages of nothing do not hold the caller: it gets a cursor and decides.
                return SourcePage(items, cursors.pack({"next": url, "queue": queue}))

    def _state(self, cursor: str) -> dict[str, Any]:
        try:
            state = cursors.unpack(cursor)
        except ValueError:
            state = None
        # The next page's URL comes back from the caller: it must be Graph's, or a forged
        # cursor would send the user's token elsewhere.
        if (
            not isinstance(state, dict)
            or not isinstance(state.get("next"), str)
            or not self._in_graph(state["next"])
            or not isinstance(state.get("queue"), list)
            or not all(isinstance(q, str) for q in state["queue"])
        ):
            raise ProviderError("cursor: not a cursor of this source's listing", 400)
        return state

    def _in_graph(self, url: str) -> bool:
        return url.startswith(self.graph_url + "/")

    async def item(self, token: str, item_id: str) -> SourceItem:
        url = f"{self.graph_url}/me/drive/items/{quote(item_id, safe='')}"
        return _item(await self._get(token, url, "OneDrive item", DriveItem))

    def download(self, token: str, item: SourceItem) -> Download:
        return Download(
            f"{self.graph_url}/me/drive/items/{quote(item.id, safe='')}/content",
            {"authorization": f"Bearer {token}"},
        )

    async def thumbnail(self, token: str, item_id: str) -> Thumbnail:
        what = "OneDrive thumbnail"
        item = quote(item_id, safe="")
        status, body, headers = await call(
            self.client,
            "GET",
            f"{self.graph_url}/me/drive/items/{item}/thumbnails/0/medium/content",
            headers={"authorization": f"Bearer {token}"},
            what=what,
            limit=MAX_THUMBNAIL_BYTES,
        )
        if status != 200:
            raise _error(status, body, what)
        mime = headers.get("content-type", "").split(";")[0].strip().lower()
        if not mime.startswith("image/"):
            mime = str(magic.from_buffer(body[:4096], mime=True))  # a CDN's generic type
        if not mime.startswith("image/"):
            raise ProviderError(f"{what}: OneDrive answered no image ({mime})", 502)
        return Thumbnail(body, mime)


def _item(value: DriveItem) -> SourceItem:
    parent = (value.parentReference and value.parentReference.path) or ROOT_PREFIX
    parent = parent.split(":", 1)[1] if ":" in parent else ""
    is_folder = value.folder is not None
    return SourceItem(
        id=value.id,
        name=value.name,
        type="folder" if is_folder else "file",
        path=f"{parent.rstrip('/')}/{value.name}",
        size=None if is_folder else value.size,
        mime_type=None if is_folder or value.file is None else value.file.mimeType,
        modified=value.lastModifiedDateTime,
    )


def _error(status: int, body: bytes, what: str) -> ProviderError:
    answer = parse_or_none(body, ErrorAnswer)
    code = answer.error.code if answer is not None else ""
    message = answer.error.message if answer is not None else snippet(body)
    if status == 404:
        return ProviderError(f"{what}: no such item ({code or message})", 404)
    if status == 401:
        return ProviderError(f"{what}: OneDrive refused the authorisation ({code})", 403)
    return ProviderError(f"{what}: OneDrive answered {status} ({code}: {message})", 502)
