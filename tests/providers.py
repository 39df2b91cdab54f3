"""Local stand-ins of the import sources' providers, following each one's documented
wire format (the sources are named in adapters/fetch/dropbox.py and onedrive.py), so
the real clients run against them unchanged: the OAuth 2 code flow with PKCE (the code
is exchanged only with the verifier of the challenge it was issued for), token expiry
and refresh, folder listings with their paging, downloads and thumbnails."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from tests.receivers import Received, Receiver, Reply, receiver


@dataclass
class Entry:
    id: str
    name: str
    parent: str | None  # the parent's id; None at the root
    content: bytes | None = None  # None: a folder

    @property
    def is_folder(self) -> bool:
        return self.content is None


@dataclass
class OAuthState:
    client_id: str
    expires_in: int = 14400
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # code -> challenge, uri
    access: set[str] = field(default_factory=set)
    refresh: set[str] = field(default_factory=set)
    grants: list[str] = field(default_factory=list)  # grant types received, in order
    lock: threading.Lock = field(default_factory=threading.Lock)

    def authorize(self, query: dict[str, str]) -> Reply:
        assert query["response_type"] == "code" and query["client_id"] == self.client_id
        assert query["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(8)
        with self.lock:
            self.codes[code] = (query["code_challenge"], query["redirect_uri"])
        back = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
        return Reply(302, headers={"location": back})

    def token(self, form: dict[str, str]) -> Reply:
        with self.lock:
            self.grants.append(form.get("grant_type", ""))
            if form.get("client_id") != self.client_id:
                return _json(400, {"error": "invalid_client"})
            if form.get("grant_type") == "authorization_code":
                challenge, uri = self.codes.pop(form.get("code", ""), ("", ""))
                verifier = form.get("code_verifier", "")
                expected = (
                    base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                    .decode()
                    .rstrip("=")
                )
                if not challenge or expected != challenge or form.get("redirect_uri") != uri:
                    return _json(400, {"error": "invalid_grant"})
                refresh = "R" + secrets.token_urlsafe(8)
                self.refresh.add(refresh)
            elif form.get("grant_type") == "refresh_token":
                if form.get("refresh_token") not in self.refresh:
                    return _json(400, {"error": "invalid_grant"})
                refresh = None
            else:
                return _json(400, {"error": "unsupported_grant_type"})
            access = "A" + secrets.token_urlsafe(8)
            self.access = {access}  # earlier access tokens stop working
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": self.expires_in,
        }
        if refresh:
            answer["refresh_token"] = refresh
        return _json(200, answer)

    def authorised(self, r: Received) -> bool:
        value = r.headers.get("authorization", "")
        return value.startswith("Bearer ") and value[7:] in self.access


# Hostile answers of a provider, shared by the tests of the clients and of the routes.
# Whole answers that are no JSON object of the documented shape.
WHOLE_ANSWERS = [
    b"",
    b"not json",
    b'"a string"',
    b"[1, 2]",
    b"NaN",
    b"Infinity",
    b"1e400",
    b"1" * 5000,
    b"null",
    b"true",
    b"[" * 10_000,
    b"\xff\xfe{}",
    b'{"a": 1',
]
# Values (as JSON text) put in place of one field of a valid answer.
HOSTILE_VALUES = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "1" + "0" * 30,
    "1" * 5000,
    "-1",
    "1.5",
    '"a string"',
    "[]",
    "{}",
    "null",
    "true",
    '"' + "x" * 100_000 + '"',
]

MALFORMED_LOCATIONS = [
    "http://[::1",
    "http://exa mple.com/",
    "http://example.com:99999/",
    "http://example.com:-1/",
    "http://127.0.0.1:99999/",
    "http://127.0.0.1:0/",
    "http://127.0.0.1:" + "9" * 5000 + "/",
    "//",
    "ht!tp://x/",
    "http://%zz/",
    "http:// /",
    "\x00",
]


def with_value(doc: dict[str, Any], path: tuple[str | int, ...], value: str) -> bytes:
    """``doc`` as JSON text with the field at ``path`` replaced by the raw JSON ``value``."""
    marker = "@@HOSTILE@@"
    changed = copy.deepcopy(doc)
    at: Any = changed
    for key in path[:-1]:
        at = at[key]
    at[path[-1]] = marker
    return json.dumps(changed).replace(json.dumps(marker), value).encode()


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status, json.dumps(body).encode(), {"content-type": "application/json", **(headers or {})}
    )


def _split(path: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(path)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


class Tree:
    def __init__(self, entries: list[Entry]) -> None:
        self.by_id = {e.id: e for e in entries}

    def children(self, parent: str | None) -> list[Entry]:
        return sorted((e for e in self.by_id.values() if e.parent == parent), key=lambda e: e.name)

    def below(self, parent: str | None) -> list[Entry]:
        found: list[Entry] = []
        for child in self.children(parent):
            found.append(child)
            if child.is_folder:
                found.extend(self.below(child.id))
        return found

    def path(self, entry: Entry) -> str:
        names = []
        at: Entry | None = entry
        while at is not None:
            names.append(at.name)
            at = self.by_id.get(at.parent) if at.parent else None
        return "/" + "/".join(reversed(names))


JPEG_THUMBNAIL = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")
PNG_THUMBNAIL = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@contextmanager
def dropbox(
    entries: list[Entry], client_id: str = "dbx-app"
) -> Iterator[tuple[Receiver, OAuthState]]:
    """api.dropboxapi.com, content.dropboxapi.com and www.dropbox.com on one server."""
    oauth = OAuthState(client_id)
    tree = Tree(entries)

    def meta(e: Entry) -> dict[str, Any]:
        doc: dict[str, Any] = {
            ".tag": "folder" if e.is_folder else "file",
            "name": e.name,
            "id": e.id,
            "path_lower": tree.path(e).lower(),
            "path_display": tree.path(e),
        }
        if not e.is_folder:
            doc.update(size=len(e.content or b""), server_modified="2026-11-30T10:00:00Z")
        return doc

    def not_found() -> Reply:
        return _json(
            409,
            {
                "error_summary": "path/not_found/..",
                "error": {".tag": "path", "path": {".tag": "not_found"}},
            },
        )

    def lookup(path: str) -> Entry | bool | None:
        if path == "":
            return None
        found = tree.by_id.get(path)
        return found if found is not None else False

    def page(listing: list[Entry], start: int, limit: int, key: dict[str, Any]) -> Reply:
        chunk = listing[start : start + limit]
        more = start + limit < len(listing)
        cursor = base64.urlsafe_b64encode(
            json.dumps({**key, "at": start + limit}).encode()
        ).decode()
        return _json(200, {"entries": [meta(e) for e in chunk], "cursor": cursor, "has_more": more})

    def listing_of(key: dict[str, Any]) -> list[Entry] | None:
        at = lookup(key["path"])
        if at is False:
            return None
        parent = None if at is None else at.id  # type: ignore[union-attr]
        if key["recursive"]:
            # A recursive listing of a folder starts with the folder itself.
            return ([at] if at else []) + tree.below(parent)  # type: ignore[list-item]
        return tree.children(parent)

    def handle(r: Received) -> Reply:
        path, query = _split(r.path)
        if path == "/oauth2/authorize":
            return oauth.authorize(query)
        if path == "/oauth2/token":
            return oauth.token({k: v[0] for k, v in parse_qs(r.body.decode()).items()})
        if not oauth.authorised(r):
            return _json(
                401,
                {
                    "error_summary": "expired_access_token/..",
                    "error": {".tag": "expired_access_token"},
                },
            )
        if path == "/2/files/list_folder":
            arg = json.loads(r.body)
            key = {"path": arg.get("path", ""), "recursive": bool(arg.get("recursive"))}
            listing = listing_of(key)
            return (
                not_found()
                if listing is None
                else page(
                    listing,
                    0,
                    int(arg.get("limit", 2000)),
                    {**key, "limit": int(arg.get("limit", 2000))},
                )
            )
        if path == "/2/files/list_folder/continue":
            key = json.loads(base64.urlsafe_b64decode(json.loads(r.body)["cursor"]))
            listing = listing_of(key) or []
            return page(listing, key.pop("at"), key["limit"], key)
        if path == "/2/files/get_metadata":
            found = tree.by_id.get(json.loads(r.body)["path"])
            return not_found() if found is None else _json(200, meta(found))
        if path == "/2/files/download" and r.method == "POST":
            found = tree.by_id.get(json.loads(r.headers["dropbox-api-arg"])["path"])
            if found is None or found.is_folder:
                return not_found()
            return Reply(
                200,
                found.content or b"",
                {
                    "content-type": "application/octet-stream",
                    "dropbox-api-result": json.dumps(meta(found)),
                },
            )
        if path == "/2/files/get_thumbnail_v2" and r.method == "POST":
            arg = json.loads(r.headers["dropbox-api-arg"])
            found = tree.by_id.get(arg["resource"]["path"])
            if found is None:
                return not_found()
            return Reply(200, JPEG_THUMBNAIL, {"content-type": "application/octet-stream"})
        return _json(400, {"error_summary": f"unknown endpoint {path}"})

    with receiver(handle) as server:
        yield server, oauth


@contextmanager
def onedrive(
    entries: list[Entry], client_id: str = "graph-app"
) -> Iterator[tuple[Receiver, Receiver, OAuthState]]:
    """login.microsoftonline.com and graph.microsoft.com on one server; the
    pre-authenticated download host (where content redirects) on another."""
    oauth = OAuthState(client_id, expires_in=3599)
    tree = Tree(entries)
    downloads: dict[str, bytes] = {}

    def cdn(r: Received) -> Reply:
        path, _ = _split(r.path)
        if "authorization" in r.headers:
            return Reply(400, b"a pre-authenticated URL takes no Authorization header")
        found = downloads.get(path)
        if found is None:
            return Reply(404)
        kind = "image/png" if path.startswith("/thumb/") else "application/octet-stream"
        return Reply(200, found, {"content-type": kind})

    with receiver(cdn) as cdn_server:

        def item(e: Entry) -> dict[str, Any]:
            parent = tree.path(tree.by_id[e.parent]) if e.parent else ""
            doc: dict[str, Any] = {
                "id": e.id,
                "name": e.name,
                "lastModifiedDateTime": "2026-11-30T10:00:00Z",
                "parentReference": {"driveId": "b!drive", "path": f"/drive/root:{parent}"},
            }
            if e.is_folder:
                doc["folder"] = {"childCount": len(tree.children(e.id))}
            else:
                doc["size"] = len(e.content or b"")
                doc["file"] = {"mimeType": "application/octet-stream"}
            return doc

        def not_found() -> Reply:
            return _json(
                404,
                {"error": {"code": "itemNotFound", "message": "The resource could not be found."}},
            )

        base: list[str] = [""]

        def handle(r: Received) -> Reply:
            path, query = _split(r.path)
            if path == "/login/authorize":
                assert query.get("response_mode") == "query" and "offline_access" in query["scope"]
                return oauth.authorize(query)
            if path == "/login/token":
                form = {k: v[0] for k, v in parse_qs(r.body.decode()).items()}
                assert "offline_access" in form.get("scope", "")
                return oauth.token(form)
            if not oauth.authorised(r):
                return _json(
                    401,
                    {
                        "error": {
                            "code": "InvalidAuthenticationToken",
                            "message": "Access token has expired.",
                        }
                    },
                )
            parts = [unquote(p) for p in path.removeprefix("/v1.0/me/drive/").split("/")]
            if parts[0] == "root" and parts[1:] == ["children"]:
                parent: str | None = None
            elif parts[0] == "items" and len(parts) >= 2:
                found = tree.by_id.get(parts[1])
                if found is None:
                    return not_found()
                if len(parts) == 2:
                    return _json(200, item(found))
                if parts[2:] == ["content"]:
                    if found.is_folder:
                        return not_found()
                    where = f"/dl/{found.id}"
                    downloads[where] = found.content or b""
                    return Reply(302, headers={"location": f"{cdn_server.url}{where}?tempauth=x"})
                if parts[2:] == ["thumbnails", "0", "medium", "content"]:
                    downloads[f"/thumb/{found.id}"] = PNG_THUMBNAIL
                    return Reply(302, headers={"location": f"{cdn_server.url}/thumb/{found.id}"})
                if parts[2:] != ["children"]:
                    return not_found()
                parent = found.id
            else:
                return not_found()
            children = tree.children(parent)
            top = int(query.get("$top", "200"))
            skip = int(query.get("$skiptoken", "0"))
            body: dict[str, Any] = {"value": [item(e) for e in children[skip : skip + top]]}
            if skip + top < len(children):
                body["@odata.nextLink"] = (
                    f"{base[0]}{path}?{urlencode({'$top': top, '$skiptoken': skip + top})}"
                )
            return _json(200, body)

        with receiver(handle) as server:
            base[0] = server.url
            yield server, cdn_server, oauth
