"""Hostile answers of an import source's provider (its OAuth token endpoint, its
listings and item metadata, its redirects), served by a loopback server to the real
Dropbox and OneDrive clients: each call either returns values of the documented types
or fails with ProviderError and a reason; no other exception ever escapes."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from assetvault.adapters.fetch.client import GuardedClient
from assetvault.adapters.fetch.dropbox import DropboxClient
from assetvault.adapters.fetch.guard import AllowList, Guard
from assetvault.adapters.fetch.oauth import ProviderError
from assetvault.adapters.fetch.onedrive import OneDriveClient
from assetvault.imports.ports import SourceItem, SourcePage, Tokens
from tests.providers import HOSTILE_VALUES, MALFORMED_LOCATIONS, WHOLE_ANSWERS, with_value
from tests.receivers import Receiver, Reply, receiver

TOKEN = {"access_token": "A1", "token_type": "bearer", "expires_in": 3600, "refresh_token": "R1"}
DROPBOX_ENTRY = {
    ".tag": "file",
    "id": "id:A",
    "name": "a.jpg",
    "path_display": "/Photos/a.jpg",
    "size": 10,
    "server_modified": "2026-11-30T10:00:00Z",
}
DROPBOX_LISTING = {"entries": [DROPBOX_ENTRY], "cursor": "c1", "has_more": False}
DRIVE_ITEM = {
    "id": "01A",
    "name": "a.jpg",
    "size": 10,
    "file": {"mimeType": "image/jpeg"},
    "parentReference": {"path": "/drive/root:/Photos"},
    "lastModifiedDateTime": "2026-11-30T10:00:00Z",
}
DRIVE_CHILDREN = {"value": [DRIVE_ITEM]}


@pytest.fixture(scope="module")
def server() -> Iterator[Receiver]:  # one for the module: each test scripts its answer
    with receiver() as found:
        yield found


def guarded() -> GuardedClient:
    return GuardedClient(Guard(AllowList.parse("127.0.0.1")), timeout=5.0)


def dropbox(server: Receiver) -> DropboxClient:
    return DropboxClient(
        guarded(),
        client_id="dbx",
        client_secret="",
        auth_url=f"{server.url}/oauth2/authorize",
        api_url=server.url,
        content_url=server.url,
    )


def onedrive(server: Receiver) -> OneDriveClient:
    return OneDriveClient(
        guarded(),
        client_id="graph",
        client_secret="",
        login_url=f"{server.url}/login",
        graph_url=f"{server.url}/v1.0",
    )


Call = Callable[[Receiver], Awaitable[object]]

# Each call of a client that parses a provider's JSON answer, with a valid answer to it.
CALLS: dict[str, tuple[Call, dict[str, Any]]] = {
    "dropbox exchange": (
        lambda s: dropbox(s).exchange("code", "verifier", "http://av/cb"),
        TOKEN,
    ),
    "dropbox refresh": (lambda s: dropbox(s).refresh("R0"), TOKEN),
    "dropbox list": (
        lambda s: dropbox(s).list("T", None, recursive=False, cursor=None, limit=10),
        DROPBOX_LISTING,
    ),
    "dropbox list continued": (
        lambda s: dropbox(s).list("T", None, recursive=True, cursor="c0", limit=10),
        DROPBOX_LISTING,
    ),
    "dropbox item": (lambda s: dropbox(s).item("T", "id:A"), DROPBOX_ENTRY),
    "onedrive exchange": (
        lambda s: onedrive(s).exchange("code", "verifier", "http://av/cb"),
        TOKEN,
    ),
    "onedrive refresh": (lambda s: onedrive(s).refresh("R0"), TOKEN),
    "onedrive list": (
        lambda s: onedrive(s).list("T", None, recursive=True, cursor=None, limit=10),
        DRIVE_CHILDREN,
    ),
    "onedrive item": (lambda s: onedrive(s).item("T", "01A"), DRIVE_ITEM),
}

# The fields of each valid answer a hostile value goes into.
FIELDS: dict[str, list[tuple[str | int, ...]]] = {
    "token": [("access_token",), ("expires_in",), ("refresh_token",)],
    "dropbox listing": [
        ("entries",),
        ("entries", 0),
        ("entries", 0, ".tag"),
        ("entries", 0, "id"),
        ("entries", 0, "name"),
        ("entries", 0, "size"),
        ("entries", 0, "path_display"),
        ("entries", 0, "server_modified"),
        ("cursor",),
        ("has_more",),
    ],
    "dropbox entry": [(".tag",), ("id",), ("name",), ("size",), ("path_display",)],
    "drive children": [
        ("value",),
        ("value", 0),
        ("value", 0, "id"),
        ("value", 0, "name"),
        ("value", 0, "size"),
        ("value", 0, "file"),
        ("value", 0, "parentReference"),
        ("value", 0, "lastModifiedDateTime"),
        ("@odata.nextLink",),
    ],
    "drive item": [("id",), ("name",), ("size",), ("file",), ("folder",), ("parentReference",)],
}


def fields_of(call: str) -> list[tuple[str | int, ...]]:
    if "exchange" in call or "refresh" in call:
        return FIELDS["token"]
    if call.startswith("dropbox"):
        return FIELDS["dropbox listing" if "list" in call else "dropbox entry"]
    return FIELDS["drive children" if "list" in call else "drive item"]


def typed(result: object) -> None:
    """What a client returns holds only values of the types its port promises."""
    if isinstance(result, Tokens):
        assert isinstance(result.access_token, str) and result.access_token
        assert result.refresh_token is None or isinstance(result.refresh_token, str)
        return
    items = result.items if isinstance(result, SourcePage) else [result]
    if isinstance(result, SourcePage):
        assert result.cursor is None or isinstance(result.cursor, str)
    for item in items:
        assert isinstance(item, SourceItem)
        assert isinstance(item.id, str) and item.id and isinstance(item.name, str)
        assert item.type in ("file", "folder") and isinstance(item.path, str)
        assert item.size is None or (type(item.size) is int and 0 <= item.size < 2**63)
        assert item.modified is None or isinstance(item.modified, str)
        assert item.mime_type is None or isinstance(item.mime_type, str)


async def outcome(server: Receiver, call: str, reply: Reply) -> None:
    server.answer(lambda _r: reply)
    try:
        typed(await CALLS[call][0](server))
    except ProviderError as exc:
        assert exc.reason and exc.status in (400, 403, 404, 502), exc.reason


def json_reply(status: int, body: bytes) -> Reply:
    return Reply(status, body, {"content-type": "application/json"})


@pytest.mark.parametrize("body", WHOLE_ANSWERS, ids=lambda b: repr(b[:12]))
@pytest.mark.parametrize("status", [200, 400, 401, 404, 409, 500])
@pytest.mark.parametrize("call", sorted(CALLS))
async def test_a_junk_answer_fails_the_call_with_a_reason(
    server: Receiver, call: str, status: int, body: bytes
) -> None:
    server.answer(lambda _r: json_reply(status, body))
    with pytest.raises(ProviderError) as caught:
        await CALLS[call][0](server)
    assert caught.value.reason and caught.value.status in (400, 403, 404, 502)


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=lambda v: v[:12])
@pytest.mark.parametrize("call", sorted(CALLS))
async def test_a_hostile_field_is_refused_or_typed(server: Receiver, call: str, value: str) -> None:
    valid = CALLS[call][1]
    for path in fields_of(call):
        await outcome(server, call, json_reply(200, with_value(valid, path, value)))


@pytest.mark.parametrize("call", sorted(CALLS))
async def test_the_valid_answers_are_taken(server: Receiver, call: str) -> None:
    server.answer(lambda _r: json_reply(200, json.dumps(CALLS[call][1]).encode()))
    result = await CALLS[call][0](server)
    typed(result)


@pytest.mark.parametrize("location", MALFORMED_LOCATIONS)
@pytest.mark.parametrize("call", ["dropbox list", "onedrive item", "dropbox refresh"])
async def test_a_malformed_redirect_fails_the_call_with_a_reason(
    server: Receiver, call: str, location: str
) -> None:
    server.answer(lambda _r: Reply(302, b"", {"location": location}))
    with pytest.raises(ProviderError) as caught:
        await CALLS[call][0](server)
    assert caught.value.status == 502


async def test_a_next_page_elsewhere_is_refused_and_not_asked(server: Receiver) -> None:
    """Graph's @odata.nextLink gets the user's token: it must point into Graph."""
    with receiver() as elsewhere:
        page = {**DRIVE_CHILDREN, "@odata.nextLink": f"{elsewhere.url}/v1.0/steal"}
        server.answer(lambda _r: json_reply(200, json.dumps(page).encode()))
        with pytest.raises(ProviderError, match="nextLink"):
            await onedrive(server).list("T", None, recursive=False, cursor=None, limit=1)
        assert elsewhere.received == []
