"""Dropbox, as an import source: its HTTP API v2.

Wire format as Dropbox documents it (developers.dropbox.com/documentation/http/
documentation; the OAuth guide developers.dropbox.com/oauth-guide; "Using OAuth 2.0
with offline access", dropbox.tech, 2022):
- authorize: ``{auth}/oauth2/authorize?client_id&response_type=code&
  token_access_type=offline&state&redirect_uri&code_challenge&code_challenge_method=S256``;
- tokens: ``POST {api}/oauth2/token`` (form: grant_type=authorization_code, code,
  redirect_uri, code_verifier, client_id[, client_secret]; refresh: grant_type=
  refresh_token, refresh_token, client_id) -> access_token, expires_in, refresh_token;
- ``POST {api}/2/files/list_folder`` {path ("" is the root, or "id:..."), recursive,
  limit} and ``/2/files/list_folder/continue`` {cursor} -> entries (".tag" file|folder,
  id, name, path_display, size, server_modified), cursor, has_more;
- ``POST {api}/2/files/get_metadata`` {path};
- ``POST {content}/2/files/download`` and ``/2/files/get_thumbnail_v2`` with the
  argument in the ``Dropbox-API-Arg`` header, the bytes in the body;
- errors: 409 with ``error_summary`` (e.g. ``path/not_found/..``), 401 for a bad token.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar
from urllib.parse import urlencode

from pydantic import BaseModel, Field, StrictBool

from assetvault.adapters.fetch.client import GuardedClient
from assetvault.adapters.fetch.oauth import (
    Answer,
    CodeFlowClient,
    ProviderError,
    Secret,
    Short,
    Size,
    Text,
    call,
    parse,
    parse_or_none,
    snippet,
)
from assetvault.imports.ports import Download, SourceItem, SourcePage, Thumbnail

MAX_THUMBNAIL_BYTES = 8 * 1024 * 1024
MAX_ENTRIES = 100_000  # per page; Dropbox sends at most 2,000

_M = TypeVar("_M", bound=BaseModel)


class Metadata(Answer):
    """A file's, folder's or deleted entry's metadata (``files/Metadata``)."""

    tag: Short = Field(alias=".tag")
    id: Text | None = None
    name: Text = ""
    path_display: Text | None = None
    path_lower: Text | None = None
    size: Size | None = None
    server_modified: Short | None = None


class Listing(Answer):
    """``files/ListFolderResult``."""

    entries: list[Metadata] = Field(max_length=MAX_ENTRIES)
    cursor: Secret | None = None
    has_more: StrictBool = False


class ErrorAnswer(Answer):
    error_summary: Text = ""


def _arg(value: dict[str, Any]) -> str:
    # The header must be ASCII: Dropbox asks for non-ASCII characters as \uXXXX escapes.
    return json.dumps(value, ensure_ascii=True)


class DropboxClient(CodeFlowClient):
    provider = "Dropbox"

    def __init__(
        self,
        client: GuardedClient,
        *,
        client_id: str,
        client_secret: str,
        auth_url: str,
        api_url: str,
        content_url: str,
    ) -> None:
        self.client = client
        self.client_id = client_id
        self.client_secret = client_secret
        self.auth_url = auth_url.rstrip("/")
        self.api_url = api_url.rstrip("/")
        self.content_url = content_url.rstrip("/")
        self.token_url = f"{self.api_url}/oauth2/token"

    def authorize_url(self, state: str, code_challenge: str, redirect_uri: str) -> str:
        query = {
            "client_id": self.client_id,
            "response_type": "code",
            "token_access_type": "offline",
            "state": state,
            "redirect_uri": redirect_uri,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        return f"{self.auth_url}?{urlencode(query)}"

    async def _rpc(self, token: str, endpoint: str, arg: dict[str, Any], model: type[_M]) -> _M:
        what = f"Dropbox {endpoint}"
        status, body, _ = await call(
            self.client,
            "POST",
            f"{self.api_url}/2/{endpoint}",
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
            content=json.dumps(arg).encode(),
            what=what,
        )
        if status == 200:
            return parse(body, what, model)
        raise _error(status, body, what)

    @staticmethod
    def _path(item_id: str | None) -> str:
        return "" if item_id in (None, "", "/") else str(item_id)

    async def list(
        self, token: str, item_id: str | None, *, recursive: bool, cursor: str | None, limit: int
    ) -> SourcePage:
        if cursor:
            answer = await self._rpc(
                token, "files/list_folder/continue", {"cursor": cursor}, Listing
            )
        else:
            answer = await self._rpc(
                token,
                "files/list_folder",
                {"path": self._path(item_id), "recursive": recursive, "limit": limit},
                Listing,
            )
        items = [_item(e) for e in answer.entries if e.tag in ("file", "folder")]
        if recursive and item_id not in (None, "", "/"):
            # A recursive listing includes the folder itself; the caller asked below it.
            items = [i for i in items if i.id != item_id]
        if answer.has_more and not answer.cursor:
            raise ProviderError("Dropbox files/list_folder: has_more without a cursor", 502)
        return SourcePage(items, answer.cursor if answer.has_more else None)

    async def item(self, token: str, item_id: str) -> SourceItem:
        return _item(await self._rpc(token, "files/get_metadata", {"path": item_id}, Metadata))

    def download(self, token: str, item: SourceItem) -> Download:
        return Download(
            f"{self.content_url}/2/files/download",
            {"authorization": f"Bearer {token}", "dropbox-api-arg": _arg({"path": item.id})},
            method="POST",
        )

    async def thumbnail(self, token: str, item_id: str) -> Thumbnail:
        what = "Dropbox files/get_thumbnail_v2"
        arg = {
            "resource": {".tag": "path", "path": item_id},
            "format": "jpeg",
            "size": "w256h256",
            "mode": "fitone_bestfit",
        }
        status, body, _ = await call(
            self.client,
            "POST",
            f"{self.content_url}/2/files/get_thumbnail_v2",
            headers={"authorization": f"Bearer {token}", "dropbox-api-arg": _arg(arg)},
            what=what,
            limit=MAX_THUMBNAIL_BYTES,
        )
        if status != 200:
            raise _error(status, body, what)
        return Thumbnail(body, "image/jpeg")


def _item(entry: Metadata) -> SourceItem:
    if entry.tag not in ("file", "folder") or not entry.id:
        raise ProviderError("Dropbox answered an entry that is neither file nor folder", 502)
    return SourceItem(
        id=entry.id,
        name=entry.name,
        type=entry.tag,
        path=entry.path_display or entry.path_lower or "",
        size=entry.size if entry.tag == "file" else None,
        modified=entry.server_modified,
    )


def _error(status: int, body: bytes, what: str) -> ProviderError:
    answer = parse_or_none(body, ErrorAnswer)
    summary = answer.error_summary if answer is not None else snippet(body)
    if status == 409 and "not_found" in summary:
        return ProviderError(f"{what}: no such item ({summary})", 404)
    if status == 401:
        return ProviderError(f"{what}: Dropbox refused the authorisation ({summary})", 403)
    return ProviderError(f"{what}: Dropbox answered {status} ({summary or 'no reason'})", 502)
