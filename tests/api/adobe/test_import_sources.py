"""Import sources of the Import API 2025.04 with the real Dropbox and OneDrive clients
against local servers that follow each provider's wire format (tests/providers.py):
the OAuth code flow with PKCE, listings with their paging, thumbnails, imports."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select

from assetvault.adapters.database.tables import import_sources
from assetvault.imports import sources
from assetvault.services import Services
from tests import media, providers
from tests.conftest import Tokens
from tests.imports import adobe, all_results, import_services, run_imports
from tests.providers import MALFORMED_LOCATIONS, WHOLE_ANSWERS, Entry, OAuthState
from tests.receivers import Handler, Received, Receiver, Reply

SOURCES = "/adobe/import/sources"


@dataclass
class Provider:
    type: str
    oauth: OAuthState
    ids: dict[str, str]  # short name -> the provider's id of the item
    settings: dict[str, Any]
    server: Receiver
    handle: Handler  # the provider's own answers (``misbehave`` replaces some)


def entries(prefix: str, photo: bytes) -> list[Entry]:
    return [
        Entry(f"{prefix}F1", "Photos", None),
        Entry(f"{prefix}A", "a.jpg", f"{prefix}F1", photo),
        Entry(f"{prefix}F2", "2024", f"{prefix}F1"),
        Entry(f"{prefix}B", "b.txt", f"{prefix}F2", b"bee"),
        Entry(f"{prefix}T", "top.txt", None, b"top"),
        Entry(f"{prefix}U", "up.txt", None, b"up"),
    ]


@pytest.fixture(params=["dropbox", "onedrive"])
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Provider]:
    photo = media.jpeg_with_metadata(tmp_path / "src.jpg", 64, 48).read_bytes()
    if request.param == "dropbox":
        prefix = "id:"
        with providers.dropbox(entries(prefix, photo)) as (server, oauth):
            yield Provider(
                "dropbox",
                oauth,
                {k: f"{prefix}{k}" for k in ("F1", "A", "F2", "B", "T", "U")},
                {
                    "dropbox_client_id": "dbx-app",
                    "dropbox_auth_url": f"{server.url}/oauth2/authorize",
                    "dropbox_api_url": server.url,
                    "dropbox_content_url": server.url,
                },
                server,
                server.handler[0],
            )
    else:
        prefix = "01BYE5RZ!"
        with providers.onedrive(entries(prefix, photo)) as (server, _cdn, oauth):
            yield Provider(
                "onedrive",
                oauth,
                {k: f"{prefix}{k}" for k in ("F1", "A", "F2", "B", "T", "U")},
                {
                    "onedrive_client_id": "graph-app",
                    "onedrive_login_url": f"{server.url}/login",
                    "onedrive_graph_url": f"{server.url}/v1.0",
                },
                server,
                server.handler[0],
            )


@pytest.fixture(params=["sqlite", "postgresql"])
async def services(
    request: pytest.FixtureRequest, tmp_path: Path, provider: Provider
) -> AsyncIterator[Services]:
    async for svc in import_services(request, tmp_path, **provider.settings):
        yield svc


async def create(client: Any, token: str, provider: Provider, name: str = "mine") -> httpx.Response:
    return await client.post(
        SOURCES,
        json={"name": name, "title": f"My {provider.type}", "type": provider.type},
        headers=adobe(token),
    )


async def authorise(client: Any, token: str, name: str = "mine") -> httpx.Response:
    """The user's round trip: Assetvault's OAuth URL, the provider's consent (granted at
    once), the provider's redirect back to Assetvault's callback."""
    r = await client.get(f"{SOURCES}/{name}/authentication/oauth", headers=adobe(token))
    assert r.status_code == 200, r.text
    consent = httpx.get(r.json()["url"], follow_redirects=False)
    assert consent.status_code == 302
    back = consent.headers["location"]
    assert back.startswith("http://assetvault.test/adobe/import/sources/authentication/callback?")
    return await client.get(back)


async def ready(client: Any, tokens: Tokens, provider: Provider) -> None:
    assert (await create(client, tokens.write, provider)).status_code == 201
    done = await authorise(client, tokens.write)
    assert done.status_code == 200, done.text


async def test_sources_are_created_read_listed_and_deleted(
    client: Any, tokens: Tokens, services: Services, provider: Provider
) -> None:
    r = await create(client, tokens.write, provider)
    assert r.status_code == 201, r.text
    assert r.json() == {
        "authenticated": False,
        "title": f"My {provider.type}",
        "name": "mine",
        "type": provider.type,
    }
    assert (await create(client, tokens.write, provider)).status_code == 409
    assert (await create(client, tokens.write, provider, "second")).status_code == 201
    got = await client.get(f"{SOURCES}/mine", headers=adobe(tokens.write))
    assert got.status_code == 200 and got.json()["name"] == "mine"
    first = await client.get(SOURCES, params={"limit": 1}, headers=adobe(tokens.write))
    assert [s["name"] for s in first.json()["items"]] == ["mine"]
    rest = await client.get(
        SOURCES, params={"limit": 1, "cursor": first.json()["cursor"]}, headers=adobe(tokens.write)
    )
    assert [s["name"] for s in rest.json()["items"]] == ["second"] and "cursor" not in rest.json()
    # A source belongs to its user: another user sees none of them.
    assert (await client.get(SOURCES, headers=adobe(tokens.admin))).json()["items"] == []
    assert (await client.get(f"{SOURCES}/mine", headers=adobe(tokens.admin))).status_code == 404
    assert (await client.delete(f"{SOURCES}/mine", headers=adobe(tokens.write))).status_code == 204
    assert (await client.get(f"{SOURCES}/mine", headers=adobe(tokens.write))).status_code == 404
    assert (await client.delete(f"{SOURCES}/mine", headers=adobe(tokens.write))).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "t", "type": "dropbox"}, "name"),
        ({"name": "", "title": "t", "type": "dropbox"}, "name"),
        ({"name": "items-x", "title": "t", "type": "dropbox"}, "name"),
        ({"name": "authentication", "title": "t", "type": "dropbox"}, "name"),
        ({"name": "importer", "title": "t", "type": "dropbox"}, "name"),
        ({"name": "a/b", "title": "t", "type": "dropbox"}, "name"),
        ({"name": "ok", "type": "dropbox"}, "title"),
        ({"name": "ok", "title": "t", "type": "gdrive"}, "type"),
        ({"name": "ok", "title": "t"}, "type"),
        ({"name": "ok", "title": "t", "type": "dropbox", "x": 1}, "x"),
    ],
)
async def test_bad_sources_are_400_naming_the_field(
    client: Any, tokens: Tokens, services: Services, body: dict[str, Any], field: str
) -> None:
    r = await client.post(SOURCES, json=body, headers=adobe(tokens.write))
    assert r.status_code == 400, r.text
    assert field in r.json()["detail"]
    assert (await client.get(SOURCES, headers=adobe(tokens.write))).json()["items"] == []


async def test_the_oauth_flow_authenticates_the_source_with_encrypted_tokens(
    client: Any, tokens: Tokens, services: Services, provider: Provider
) -> None:
    await create(client, tokens.write, provider)
    before = await client.get(f"{SOURCES}/mine/items", headers=adobe(tokens.write))
    assert before.status_code == 403 and "not authenticated" in before.json()["detail"]
    done = await authorise(client, tokens.write)
    assert done.status_code == 200 and "text/html" in done.headers["content-type"]
    got = await client.get(f"{SOURCES}/mine", headers=adobe(tokens.write))
    assert got.json()["authenticated"] is True
    assert provider.oauth.grants == ["authorization_code"]
    async with services.db.read() as conn:
        row = (await conn.execute(select(import_sources))).one()._mapping
    (access,) = provider.oauth.access
    (refresh,) = provider.oauth.refresh
    assert row["access_token"] and access not in row["access_token"]
    assert row["refresh_token"] and refresh not in row["refresh_token"]
    assert row["oauth_state"] is None and row["code_verifier"] is None
    # The state was used once: replaying the callback is refused.
    again = await client.get(str(done.request.url))
    assert again.status_code == 400 and "state" in again.json()["detail"]


async def test_a_callback_with_an_unknown_state_or_a_refusal_is_refused(
    client: Any, tokens: Tokens, services: Services, provider: Provider
) -> None:
    callback = f"{SOURCES}/authentication/callback"
    r = await client.get(callback, params={"state": "forged", "code": "x"})
    assert r.status_code == 400 and "state" in r.json()["detail"]
    await create(client, tokens.write, provider)
    url = (
        await client.get(f"{SOURCES}/mine/authentication/oauth", headers=adobe(tokens.write))
    ).json()["url"]
    state = httpx.URL(url).params["state"]
    denied = await client.get(callback, params={"state": state, "error": "access_denied"})
    assert denied.status_code == 403 and "access_denied" in denied.json()["detail"]
    wrong_code = await client.get(callback, params={"state": state, "code": "not-issued"})
    assert wrong_code.status_code == 400 and "invalid_grant" in wrong_code.json()["detail"]
    got = await client.get(f"{SOURCES}/mine", headers=adobe(tokens.write))
    assert got.json()["authenticated"] is False


async def test_items_are_listed_by_folder_recursively_and_in_pages(
    client: Any, tokens: Tokens, services: Services, provider: Provider
) -> None:
    await ready(client, tokens, provider)
    items_url = f"{SOURCES}/mine/items"
    root = await client.get(items_url, headers=adobe(tokens.write))
    assert root.status_code == 200, root.text
    assert [i["name"] for i in root.json()["items"]] == ["Photos", "top.txt", "up.txt"]
    assert root.json()["hasMore"] is False
    photos = next(i for i in root.json()["items"] if i["name"] == "Photos")
    assert photos["type"] == "folder" and photos["id"] == provider.ids["F1"]
    inside = await client.get(
        items_url, params={"id": provider.ids["F1"]}, headers=adobe(tokens.write)
    )
    assert [(i["name"], i["type"]) for i in inside.json()["items"]] == [
        ("2024", "folder"),
        ("a.jpg", "file"),
    ]
    below = await client.get(
        items_url,
        params={"id": provider.ids["F1"], "recursive": "true"},
        headers=adobe(tokens.write),
    )
    assert sorted(i["path"] for i in below.json()["items"]) == [
        "/Photos/2024",
        "/Photos/2024/b.txt",
        "/Photos/a.jpg",
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = await client.get(items_url, params=params, headers=adobe(tokens.write))
        assert page.status_code == 200, page.text
        seen.extend(i["name"] for i in page.json()["items"])
        cursor = page.json().get("cursor")
        assert page.json()["hasMore"] is (cursor is not None)
        if not cursor:
            break
    assert seen == ["Photos", "top.txt", "up.txt"]
    missing = await client.get(
        items_url, params={"id": provider.ids["F1"] + "x"}, headers=adobe(tokens.write)
    )
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_a_thumbnail_comes_from_the_source_with_an_etag(
    client: Any, tokens: Tokens, services: Services, provider: Provider
) -> None:
    await ready(client, tokens, provider)
    url = f"{SOURCES}/mine/items/{provider.ids['A']}/thumbnail"
    r = await client.get(url, headers=adobe(tokens.write))
    assert r.status_code == 200, r.text
    expected = providers.JPEG_THUMBNAIL if provider.type == "dropbox" else providers.PNG_THUMBNAIL
    assert r.content == expected and r.headers["content-type"].startswith("image/")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in r.headers
    cached = await client.get(
        url, headers={**adobe(tokens.write), "If-None-Match": r.headers["etag"]}
    )
    assert cached.status_code == 304


async def test_importing_items_keeps_the_folders_of_a_folder_item(
    client: Any, tokens: Tokens, services: Services, provider: Provider
) -> None:
    await ready(client, tokens, provider)
    r = await client.post(
        f"{SOURCES}/mine/start",
        json={
            "folder": "/content/dam/from-source",
            "items": [provider.ids["T"], {"id": provider.ids["F1"]}],
            "assetMetadata": {"dc:rights": "Ours"},
        },
        headers=adobe(tokens.write),
    )
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["operation"] == "aem.assets.import.fromsource" and job["progress"]["total"] == 3
    assert r.headers["location"] == f"/adobe/import/jobs/{job['id']}/status"
    await run_imports(services)
    status = (await client.get(r.headers["location"], headers=adobe(tokens.write))).json()
    assert status["progress"]["step"] == "COMPLETED", status
    for path, size in [
        ("/content/dam/from-source/top.txt", 3),
        ("/content/dam/from-source/Photos/2024/b.txt", 3),
    ]:
        node = await services.tree.find(path)
        assert node is not None and node.size == size
        assert node.asset_metadata["dc:rights"] == "Ours"
    photo = await services.tree.find("/content/dam/from-source/Photos/a.jpg")
    assert photo is not None and photo.mime_type == "image/jpeg"
    listed = await client.get(
        "/adobe/import/jobs",
        params={"operation": "aem.assets.import.fromsource"},
        headers=adobe(tokens.write),
    )
    assert [j["id"] for j in listed.json()["items"]] == [job["id"]]


async def test_one_item_is_imported_by_its_own_start(
    client: Any, tokens: Tokens, services: Services, provider: Provider
) -> None:
    await ready(client, tokens, provider)
    r = await client.post(
        f"{SOURCES}/mine/{provider.ids['U']}/start",
        json={"folder": "/content/dam/one"},
        headers=adobe(tokens.write),
    )
    assert r.status_code == 202, r.text
    await run_imports(services)
    items = await all_results(
        client, tokens.write, r.headers["location"].replace("status", "result")
    )
    assert items == [
        {
            "fileName": "up.txt",
            "status": "imported",
            "assetId": items[0]["assetId"],
            "assetPath": "/content/dam/one/up.txt",
        }
    ]


async def test_an_expired_token_is_refreshed_before_use(
    client: Any, tokens: Tokens, services: Services, provider: Provider
) -> None:
    provider.oauth.expires_in = 0  # every access token is already expired when issued
    await ready(client, tokens, provider)
    first = await client.get(f"{SOURCES}/mine/items", headers=adobe(tokens.write))
    assert first.status_code == 200, first.text
    assert provider.oauth.grants == ["authorization_code", "refresh_token"]
    r = await client.post(
        f"{SOURCES}/mine/{provider.ids['T']}/start",
        json={"folder": "/content/dam"},
        headers=adobe(tokens.write),
    )
    await run_imports(services)
    doc = (await client.get(r.headers["location"], headers=adobe(tokens.write))).json()
    assert doc["progress"]["step"] == "COMPLETED", doc
    assert provider.oauth.grants.count("refresh_token") >= 3  # start, and the job's fetch


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": ["x"]}, "folder"),
        ({"folder": "/content/dam", "items": []}, "items"),
        ({"folder": "/content/dam", "items": ["x"] * 1001}, "items"),
        ({"folder": "/content/dam", "items": [3]}, "items[0]"),
        ({"folder": "/content/dam", "items": ["x", "x"]}, "items[1]"),
        ({"folder": "/content/dam"}, "items"),
        ({"folder": "/elsewhere", "items": ["x"]}, "folder"),
    ],
)
async def test_bad_start_requests_are_400(
    client: Any, tokens: Tokens, services: Services, provider: Provider, body: Any, field: str
) -> None:
    await ready(client, tokens, provider)
    r = await client.post(f"{SOURCES}/mine/start", json=body, headers=adobe(tokens.write))
    assert r.status_code == 400, r.text
    assert field in r.json()["detail"]
    assert await run_imports(services) == 0


async def test_an_unknown_item_to_start_is_404_and_nothing_is_queued(
    client: Any, tokens: Tokens, services: Services, provider: Provider
) -> None:
    await ready(client, tokens, provider)
    r = await client.post(
        f"{SOURCES}/mine/start",
        json={"folder": "/content/dam", "items": [provider.ids["T"] + "nope"]},
        headers=adobe(tokens.write),
    )
    assert r.status_code == 404, r.text
    assert await run_imports(services) == 0


async def test_an_unknown_source_is_404_everywhere(
    client: Any, tokens: Tokens, services: Services, provider: Provider
) -> None:
    h = adobe(tokens.write)
    for method, path, body in [
        ("GET", f"{SOURCES}/nope", None),
        ("DELETE", f"{SOURCES}/nope", None),
        ("GET", f"{SOURCES}/nope/authentication/oauth", None),
        ("GET", f"{SOURCES}/nope/items", None),
        ("GET", f"{SOURCES}/nope/items/x/thumbnail", None),
        ("POST", f"{SOURCES}/nope/start", {"folder": "/content/dam", "items": ["x"]}),
        ("POST", f"{SOURCES}/nope/x/start", {"folder": "/content/dam"}),
    ]:
        r = await client.request(method, path, json=body, headers=h)
        assert r.status_code == 404, (method, path, r.text)
        assert r.headers["content-type"] == "application/problem+json"


async def test_listing_parameters_are_checked(
    client: Any, tokens: Tokens, services: Services, provider: Provider
) -> None:
    await ready(client, tokens, provider)
    h = adobe(tokens.write)
    for params, field in [
        ({"limit": 0}, "limit"),
        ({"limit": 51}, "limit"),
        ({"recursive": "maybe"}, "recursive"),
        ({"id": ""}, "id"),
    ]:
        r = await client.get(f"{SOURCES}/mine/items", params=params, headers=h)
        assert r.status_code == 400 and field in r.json()["detail"], (params, r.text)
    bad = await client.get(SOURCES, params={"cursor": "%%%"}, headers=h)
    assert bad.status_code == 400 and "cursor" in bad.json()["detail"]


async def test_a_name_of_any_characters_is_percent_encoded_in_location(
    client: Any, tokens: Tokens, provider: Provider
) -> None:
    name = "Ünïcødé 𝄞 folder 2"  # beyond Latin-1, a header's own charset
    r = await create(client, tokens.write, provider, name)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == SOURCES + "/" + quote(name, safe="")
    got = await client.get(r.headers["location"], headers=adobe(tokens.write))
    assert got.status_code == 200 and got.json()["name"] == name


# -- hostile providers ----------------------------------------------------------------

# Which of a provider's endpoints each kind of call reaches (by the request's path).
ENDPOINTS: dict[str, dict[str, Callable[[str], bool]]] = {
    "token": {
        "dropbox": lambda p: p == "/oauth2/token",
        "onedrive": lambda p: p == "/login/token",
    },
    "listing": {
        "dropbox": lambda p: p.startswith("/2/files/list_folder"),
        "onedrive": lambda p: p.endswith("/children"),
    },
    "thumbnail": {
        "dropbox": lambda p: p == "/2/files/get_thumbnail_v2",
        "onedrive": lambda p: "/thumbnails/" in p,
    },
}


def misbehave(provider: Provider, endpoint: str, reply: Callable[[Received], Reply]) -> None:
    """The provider answers ``reply`` at one kind of endpoint, as itself elsewhere."""
    reached = ENDPOINTS[endpoint][provider.type]
    provider.server.answer(
        lambda r: reply(r) if reached(r.path.split("?")[0]) else provider.handle(r)
    )


def junk_replies() -> list[Reply]:
    """The shared hostile answers: junk bodies under a success and an error status,
    and malformed redirects."""
    found = [
        Reply(status, body, {"content-type": "application/json"})
        for body in WHOLE_ANSWERS
        for status in (200, 500)
    ]
    return found + [Reply(302, b"", {"location": where}) for where in MALFORMED_LOCATIONS]


def refused(r: httpx.Response, allowed: tuple[int, ...] = (400, 403, 404, 502)) -> bool:
    return r.status_code in allowed and r.headers["content-type"] == "application/problem+json"


async def test_a_junk_token_answer_fails_the_callback_and_changes_nothing(
    client: Any, tokens: Tokens, services: Services, provider: Provider
) -> None:
    assert (await create(client, tokens.write, provider)).status_code == 201
    for reply in junk_replies():
        misbehave(provider, "token", lambda _r, reply=reply: reply)  # type: ignore[misc]
        back = await authorise(client, tokens.write)
        assert refused(back, (400,)), (reply, back.status_code, back.text)
        got = await client.get(f"{SOURCES}/mine", headers=adobe(tokens.write))
        assert got.json()["authenticated"] is False
    provider.server.answer(provider.handle)
    assert (await authorise(client, tokens.write)).status_code == 200


async def test_a_junk_listing_is_a_problem_for_the_items_and_the_start(
    client: Any, tokens: Tokens, services: Services, provider: Provider
) -> None:
    await ready(client, tokens, provider)
    h = adobe(tokens.write)
    start = {"folder": "/content/dam/junk", "items": [provider.ids["F1"]]}
    for reply in junk_replies():
        misbehave(provider, "listing", lambda _r, reply=reply: reply)  # type: ignore[misc]
        listed = await client.get(f"{SOURCES}/mine/items", headers=h)
        assert refused(listed), (reply, listed.status_code, listed.text)
        started = await client.post(f"{SOURCES}/mine/start", json=start, headers=h)
        assert refused(started), (reply, started.status_code, started.text)
    assert await run_imports(services) == 0
    assert await services.tree.find("/content/dam/junk") is None


async def test_a_junk_thumbnail_answer_is_a_problem(
    client: Any, tokens: Tokens, services: Services, provider: Provider
) -> None:
    await ready(client, tokens, provider)
    url = f"{SOURCES}/mine/items/{provider.ids['A']}/thumbnail"
    failing = [r for r in junk_replies() if r.status != 200]
    for reply in failing:
        misbehave(provider, "thumbnail", lambda _r, reply=reply: reply)  # type: ignore[misc]
        r = await client.get(url, headers=adobe(tokens.write))
        assert refused(r), (reply, r.status_code, r.text)


def endless_page(provider: Provider, kind: str, n: int) -> Reply:
    """One page of a listing that never ends: the same cursor again (``same``), empty
    pages with a new cursor each time (``empty``), or a new folder on every page
    (``folders``)."""
    cursor = "again" if kind == "same" else f"page{n}"
    folder = kind == "folders"
    if provider.type == "dropbox":
        entries = [
            {".tag": "folder", "id": f"id:x{n}", "name": f"x{n}", "path_display": f"/Photos/x{n}"}
        ]
        page = {"entries": entries if folder else [], "cursor": cursor, "has_more": True}
    else:
        items = [
            {
                "id": f"x{n}",
                "name": f"x{n}",
                "folder": {"childCount": 1},
                "parentReference": {"path": "/drive/root:/Photos"},
            }
        ]
        link = f"{provider.server.url}/v1.0/me/drive/items/x/children?$skiptoken={cursor}"
        page = {"value": items if folder else [], "@odata.nextLink": link}
    return Reply(200, json.dumps(page).encode(), {"content-type": "application/json"})


@pytest.mark.parametrize("kind", ["same", "empty", "folders"])
async def test_a_listing_that_never_ends_fails_the_start(
    client: Any,
    tokens: Tokens,
    services: Services,
    provider: Provider,
    kind: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sources, "MAX_LIST_PAGES", 40, raising=False)
    monkeypatch.setattr(sources, "MAX_LISTED_ENTRIES", 30, raising=False)
    await ready(client, tokens, provider)
    counter = itertools.count()
    misbehave(provider, "listing", lambda _r: endless_page(provider, kind, next(counter)))
    r = await client.post(
        f"{SOURCES}/mine/start",
        json={"folder": "/content/dam/endless", "items": [provider.ids["F1"]]},
        headers=adobe(tokens.write),
    )
    assert refused(r, (502,)), r.text
    reasons = {
        "same": ("already given", "repeats a page"),
        "empty": ("40 pages",),
        "folders": ("30 entries",),
    }[kind]
    assert any(reason in r.json()["detail"] for reason in reasons), r.text
    assert next(counter) <= 40 * 20  # not read on past the bound (of pages per call)
    assert await run_imports(services) == 0


@pytest.mark.parametrize("provider", ["dropbox"], indirect=True)
@pytest.mark.parametrize("path", ["", "a.jpg", "Photos/a.jpg"])
async def test_a_listed_file_without_an_absolute_path_fails_the_start(
    client: Any, tokens: Tokens, services: Services, provider: Provider, path: str
) -> None:
    """Paths that begin elsewhere (``..``, another folder) stay below the target and
    names AEM refuses fail their file in the job; a path that is not absolute at all
    was queued, its folders reckoned from the server's own working directory. Dropbox
    only: OneDrive's items carry no path of their own, only their parent's, which its
    client always makes absolute."""
    await ready(client, tokens, provider)
    entry = {".tag": "file", "id": "id:Z", "name": "a.jpg", "path_display": path, "size": 3}
    page = {"entries": [entry], "cursor": "c", "has_more": False}
    misbehave(
        provider,
        "listing",
        lambda _r: Reply(200, json.dumps(page).encode(), {"content-type": "application/json"}),
    )
    r = await client.post(
        f"{SOURCES}/mine/start",
        json={"folder": "/content/dam/pathless", "items": [provider.ids["F1"]]},
        headers=adobe(tokens.write),
    )
    assert refused(r, (502,)), r.text
    assert "absolute path" in r.json()["detail"]
    assert await run_imports(services) == 0


def deep_chain(prefix: str, levels: int) -> list[Entry]:
    """Folders d0/d1/.../d<levels-1> with a file at three depths: 11 levels down,
    63 levels down (the deepest an import into a folder one level down may fill) and at
    the bottom."""
    chain = [Entry(f"{prefix}D0", "d0", None)]
    chain += [Entry(f"{prefix}D{n}", f"d{n}", f"{prefix}D{n - 1}") for n in range(1, levels)]
    return [
        *chain,
        Entry(f"{prefix}S", "shallow.txt", f"{prefix}D10", b"s"),
        Entry(f"{prefix}E", "edge.txt", f"{prefix}D62", b"e"),
        Entry(f"{prefix}Z", "deep.txt", f"{prefix}D{levels - 1}", b"z"),
    ]


@pytest.fixture
def deep_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """The providers also hold a folder tree 200 levels deep."""
    shallow = entries
    monkeypatch.setattr(
        sys.modules[__name__],
        "entries",
        lambda prefix, photo: shallow(prefix, photo) + deep_chain(prefix, 200),
    )


async def test_a_source_folder_tree_deeper_than_the_bound_fails_its_files_one_by_one(
    deep_source: None, client: Any, tokens: Tokens, services: Services, provider: Provider
) -> None:
    """A source may list folders nested to any depth: an import makes folders down to
    MAX_FOLDER_DEPTH levels below /content/dam, and a file deeper fails alone (400,
    saying why) while the others are imported."""
    from assetvault.imports.service import MAX_FOLDER_DEPTH

    await ready(client, tokens, provider)
    prefix = provider.ids["F1"].removesuffix("F1")
    r = await client.post(
        f"{SOURCES}/mine/start",
        json={"folder": "/content/dam/deep", "items": [f"{prefix}D0"]},
        headers=adobe(tokens.write),
    )
    assert r.status_code == 202, r.text
    await run_imports(services)
    items = await all_results(
        client, tokens.write, r.headers["location"].replace("status", "result")
    )
    by_name = {i["fileName"]: i for i in items}
    assert {n: i["status"] for n, i in by_name.items()} == {
        "shallow.txt": "imported",
        "edge.txt": "imported",
        "deep.txt": "failed",
    }
    assert by_name["deep.txt"]["error"]["status"] == 400
    assert f"at most {MAX_FOLDER_DEPTH} levels" in by_name["deep.txt"]["error"]["detail"]
    edge = by_name["edge.txt"]["assetPath"]
    assert edge.removeprefix("/content/dam").count("/") - 1 == MAX_FOLDER_DEPTH
    deepest = "/content/dam/deep/" + "/".join(f"d{n}" for n in range(MAX_FOLDER_DEPTH))
    assert await services.tree.find(deepest) is None  # no folder past the bound was made
