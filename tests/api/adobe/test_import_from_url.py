"""The Author API's URL import (POST /adobe/assets/import/fromUrl, the job's status and
result) against a real loopback file server, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from assetvault.services import Services
from tests import media
from tests.conftest import Tokens
from tests.factories import outbox_events, snapshot
from tests.imports import adobe, all_results, files_handler, import_services, run_imports
from tests.receivers import Receiver, Reply, receiver

FROM_URL = "/adobe/assets/import/fromUrl"


@pytest.fixture
def served() -> dict[str, Any]:
    return {}


@pytest.fixture
def server(served: dict[str, Any]) -> Any:
    with receiver(files_handler(served)) as r:
        yield r


@pytest.fixture(params=["sqlite", "postgresql"])
async def services(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Services]:
    marker = request.node.get_closest_marker("import_settings")
    async for svc in import_services(request, tmp_path, **(marker.kwargs if marker else {})):
        yield svc


def jpeg(tmp_path: Path, name: str = "p.jpg", w: int = 64, h: int = 48) -> bytes:
    return media.jpeg_with_metadata(tmp_path / name, w, h).read_bytes()


async def submit(client: Any, token: str, body: dict[str, Any], path: str = FROM_URL) -> Any:
    return await client.post(path, json=body, headers=adobe(token))


async def test_an_import_of_a_few_files_reports_each_and_creates_the_folder(
    client: Any,
    tokens: Tokens,
    services: Services,
    server: Receiver,
    served: dict[str, Any],
    tmp_path: Path,
) -> None:
    served["/a.jpg"] = jpeg(tmp_path)
    served["/b.bin"] = b"\x00\x01" * 500
    body = {
        "folder": "/content/dam/imports/new",
        "files": [
            {"fileName": "a.jpg", "url": f"{server.url}/a.jpg"},
            {"fileName": "b.bin", "url": f"{server.url}/b.bin", "fileSize": 1000},
            {"fileName": "gone.jpg", "url": f"{server.url}/gone.jpg"},
        ],
    }
    r = await submit(client, tokens.write, body)
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/adobe/assets/import/jobs/{job['id']}/status"
    assert job["operation"] == "aem.assets.import.fromurl"
    assert job["state"] == "PROCESSING" and job["progress"]["step"] == "QUEUED"
    assert job["progress"]["total"] == 3
    folder = await services.tree.find("/content/dam/imports/new")
    assert folder is not None and folder.kind == "folder"
    assert job["data"]["config"]["folder"] == folder.urn

    running = await client.get(r.headers["location"], headers=adobe(tokens.read))
    assert running.status_code == 200 and running.headers["retry-after"]
    await run_imports(services)

    status = await client.get(r.headers["location"], headers=adobe(tokens.read))
    doc = status.json()
    assert status.status_code == 200 and "retry-after" not in status.headers
    assert doc["state"] == "COMPLETED" and doc["progress"]["step"] == "COMPLETED_WITH_ERRORS"
    assert (doc["progress"]["imported"], doc["progress"]["failed"]) == (2, 1)
    assert doc["errors"][0]["status"] == 404 and "404" in doc["errors"][0]["detail"]
    items = await all_results(client, tokens.read, f"/adobe/assets/import/jobs/{job['id']}/result")
    by_name = {i["fileName"]: i for i in items}
    assert by_name["a.jpg"]["status"] == "imported"
    assert by_name["a.jpg"]["assetPath"] == "/content/dam/imports/new/a.jpg"
    assert by_name["gone.jpg"]["status"] == "failed" and "assetId" not in by_name["gone.jpg"]
    node = await services.tree.find("/content/dam/imports/new/a.jpg")
    assert node is not None and node.urn == by_name["a.jpg"]["assetId"]
    assert node.mime_type == "image/jpeg" and node.size == len(served["/a.jpg"])
    stored = await services.tree.find("/content/dam/imports/new/b.bin")
    assert stored is not None and stored.size == 1000

    done = [e for e in await outbox_events(services) if e.type == "import.completed"]
    assert len(done) == 1 and done[0].node_id is None and done[0].user == "writer"
    assert done[0].data["jobId"] == job["id"]
    assert done[0].data["status"] == "COMPLETED_WITH_ERRORS"
    assert done[0].data["counts"] == {"imported": 2, "failed": 1, "total": 3}
    assert done[0].data["folder"] == folder.urn


async def test_all_files_failing_fail_the_job(
    client: Any, tokens: Tokens, services: Services, server: Receiver
) -> None:
    r = await submit(
        client,
        tokens.write,
        {"folder": "/content/dam", "files": [{"fileName": "x", "url": f"{server.url}/none"}]},
    )
    await run_imports(services)
    doc = (await client.get(r.headers["location"], headers=adobe(tokens.read))).json()
    assert doc["state"] == "FAILED" and doc["progress"]["step"] == "FAILED"
    done = [e for e in await outbox_events(services) if e.type == "import.completed"]
    assert done[0].data["status"] == "FAILED"


async def test_the_folder_may_be_a_urn(
    client: Any, tokens: Tokens, services: Services, server: Receiver, served: dict[str, Any]
) -> None:
    folder = await services.tree.create_folder("/content/dam", "target", user="writer")
    served["/t.txt"] = b"hello"
    r = await submit(
        client,
        tokens.write,
        {"folder": folder.urn, "files": [{"fileName": "t.txt", "url": f"{server.url}/t.txt"}]},
    )
    assert r.status_code == 202, r.text
    await run_imports(services)
    node = await services.tree.find("/content/dam/target/t.txt")
    assert node is not None and node.mime_type == "text/plain"


async def test_status_and_result_have_etags_and_answer_304(
    client: Any, tokens: Tokens, services: Services, server: Receiver, served: dict[str, Any]
) -> None:
    served["/t.txt"] = b"hello"
    r = await submit(
        client,
        tokens.write,
        {"folder": "/content/dam", "files": [{"fileName": "t.txt", "url": f"{server.url}/t.txt"}]},
    )
    status_url = r.headers["location"]
    first = await client.get(status_url, headers=adobe(tokens.read))
    etag = first.headers["etag"]
    head = await client.head(status_url, headers=adobe(tokens.read))
    assert head.status_code == 200 and head.headers["etag"] == etag and not head.content
    again = await client.get(status_url, headers={**adobe(tokens.read), "If-None-Match": etag})
    assert again.status_code == 304
    await run_imports(services)
    changed = await client.get(status_url, headers={**adobe(tokens.read), "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    result_url = status_url.replace("/status", "/result")
    res = await client.get(result_url, headers=adobe(tokens.read))
    cached = await client.get(
        result_url, headers={**adobe(tokens.read), "If-None-Match": res.headers["etag"]}
    )
    assert cached.status_code == 304
    assert (await client.head(result_url, headers=adobe(tokens.read))).status_code == 200


async def test_the_result_pages_with_limit_and_cursor(
    client: Any, tokens: Tokens, services: Services, server: Receiver, served: dict[str, Any]
) -> None:
    files = []
    for i in range(7):
        served[f"/f{i}.txt"] = f"file {i}".encode()
        files.append({"fileName": f"f{i}.txt", "url": f"{server.url}/f{i}.txt"})
    r = await submit(client, tokens.write, {"folder": "/content/dam/paged", "files": files})
    await run_imports(services)
    result_url = r.headers["location"].replace("/status", "/result")
    items = await all_results(client, tokens.read, result_url, limit=3)
    assert [i["fileName"] for i in items] == [f"f{i}.txt" for i in range(7)]
    assert all(i["status"] == "imported" for i in items)
    bad = await client.get(result_url, params={"cursor": "nonsense"}, headers=adobe(tokens.read))
    assert bad.status_code == 400 and "cursor" in bad.json()["detail"]
    over = await client.get(result_url, params={"limit": 51}, headers=adobe(tokens.read))
    assert over.status_code == 400 and "limit" in over.json()["detail"]


async def test_an_unknown_job_is_404(client: Any, tokens: Tokens) -> None:
    for suffix in ("status", "result"):
        r = await client.get(
            f"/adobe/assets/import/jobs/B79F5F05-06E2-4D12-A5AE-AD9BC308FCCF/{suffix}",
            headers=adobe(tokens.read),
        )
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"


GOOD_FILE = {"fileName": "a.jpg", "url": "http://127.0.0.1:9/a.jpg"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"files": [GOOD_FILE]}, "folder"),
        ({"folder": "", "files": [GOOD_FILE]}, "folder"),
        ({"folder": "/elsewhere/x", "files": [GOOD_FILE]}, "folder"),
        ({"folder": "/content/dam/a/../b", "files": [GOOD_FILE]}, "folder"),
        (
            {"folder": "urn:aaid:aem:00000000-0000-0000-0000-000000000000", "files": [GOOD_FILE]},
            "folder",
        ),
        ({"folder": "/content/dam"}, "files"),
        ({"folder": "/content/dam", "files": []}, "files"),
        ({"folder": "/content/dam", "files": [GOOD_FILE] * 301}, "files"),
        ({"folder": "/content/dam", "files": [{"url": GOOD_FILE["url"]}]}, "files[0].fileName"),
        (
            {"folder": "/content/dam", "files": [{"fileName": "a/b", "url": GOOD_FILE["url"]}]},
            "files[0].fileName",
        ),
        ({"folder": "/content/dam", "files": [GOOD_FILE, GOOD_FILE]}, "files[1].fileName"),
        ({"folder": "/content/dam", "files": [{"fileName": "a"}]}, "files[0].url"),
        (
            {"folder": "/content/dam", "files": [{"fileName": "a", "url": "file:///etc/passwd"}]},
            "files[0].url",
        ),
        ({"folder": "/content/dam", "files": [{**GOOD_FILE, "fileSize": -1}]}, "files[0].fileSize"),
        ({"folder": "/content/dam", "files": [{**GOOD_FILE, "mimeType": 3}]}, "files[0].mimeType"),
        (
            {"folder": "/content/dam", "files": [{**GOOD_FILE, "assetMetadata": []}]},
            "files[0].assetMetadata",
        ),
        ({"folder": "/content/dam", "files": [{**GOOD_FILE, "extra": 1}]}, "files[0].extra"),
        (
            {"folder": "/content/dam", "files": [GOOD_FILE], "assetMetadata": {"dc:title": None}},
            "assetMetadata.dc:title",
        ),
        (
            {"folder": "/content/dam", "files": [GOOD_FILE], "assetMetadata": {"repo:id": "x"}},
            "assetMetadata.repo:id",
        ),
        ({"folder": "/content/dam", "files": [GOOD_FILE], "surprise": True}, "surprise"),
    ],
)
async def test_bad_requests_are_400_naming_the_field_and_change_nothing(
    client: Any, tokens: Tokens, services: Services, body: Any, field: str
) -> None:
    before = await snapshot(services)
    r = await submit(client, tokens.write, body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in r.json()["detail"]
    assert await snapshot(services) == before
    assert await run_imports(services) == 0


async def test_submitting_needs_json_a_write_token_and_an_api_key(
    client: Any, tokens: Tokens
) -> None:
    body = {"folder": "/content/dam", "files": [GOOD_FILE]}
    r = await client.post(
        FROM_URL,
        content=b"folder=x",
        headers={**adobe(tokens.write), "content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415
    assert (await client.post(FROM_URL, json=body)).status_code == 401
    assert (await submit(client, tokens.read, body)).status_code == 403
    no_key = await client.post(
        FROM_URL, json=body, headers={"Authorization": f"Bearer {tokens.write}"}
    )
    assert no_key.status_code == 403
    bad_json = await client.post(
        FROM_URL, content=b"{", headers={**adobe(tokens.write), "content-type": "application/json"}
    )
    assert bad_json.status_code == 400


async def test_a_given_mime_type_contradicting_the_content_is_a_warning(
    client: Any,
    tokens: Tokens,
    services: Services,
    server: Receiver,
    served: dict[str, Any],
    tmp_path: Path,
) -> None:
    served["/photo"] = jpeg(tmp_path)
    r = await submit(
        client,
        tokens.write,
        {
            "folder": "/content/dam",
            "files": [
                {"fileName": "photo.png", "url": f"{server.url}/photo", "mimeType": "image/png"}
            ],
        },
    )
    await run_imports(services)
    doc = (await client.get(r.headers["location"], headers=adobe(tokens.read))).json()
    assert doc["progress"]["step"] == "COMPLETED"
    assert any("image/png" in w and "image/jpeg" in w for w in doc["warnings"])
    node = await services.tree.find("/content/dam/photo.png")
    assert node is not None and node.mime_type == "image/jpeg"


async def test_metadata_of_the_request_and_of_each_file_is_applied_embedded_xmp_wins(
    client: Any,
    tokens: Tokens,
    services: Services,
    server: Receiver,
    served: dict[str, Any],
    tmp_path: Path,
) -> None:
    served["/photo.jpg"] = jpeg(tmp_path)  # carries an embedded dc:title
    served["/plain.txt"] = b"no metadata inside"
    r = await submit(
        client,
        tokens.write,
        {
            "folder": "/content/dam",
            "assetMetadata": {"dc:title": "From the request", "dc:rights": "All"},
            "files": [
                {"fileName": "photo.jpg", "url": f"{server.url}/photo.jpg"},
                {
                    "fileName": "plain.txt",
                    "url": f"{server.url}/plain.txt",
                    "assetMetadata": {"dc:rights": "Mine"},
                },
            ],
        },
    )
    assert r.status_code == 202
    await run_imports(services, processing=True)
    photo = await services.tree.find("/content/dam/photo.jpg")
    plain = await services.tree.find("/content/dam/plain.txt")
    assert photo is not None and plain is not None
    assert plain.asset_metadata["dc:title"] == "From the request"
    assert plain.asset_metadata["dc:rights"] == "Mine"
    assert photo.asset_metadata["dc:rights"] == "All"
    embedded = photo.extracted.get("dc:title")
    assert embedded and embedded != "From the request"
    assert photo.asset_metadata["dc:title"] == embedded


async def test_an_existing_name_fails_that_file_only(
    client: Any, tokens: Tokens, services: Services, server: Receiver, served: dict[str, Any]
) -> None:
    served["/one.txt"] = b"1"
    served["/two.txt"] = b"2"
    files = [
        {"fileName": "one.txt", "url": f"{server.url}/one.txt"},
        {"fileName": "two.txt", "url": f"{server.url}/two.txt"},
    ]
    await submit(client, tokens.write, {"folder": "/content/dam/d", "files": files[:1]})
    await run_imports(services)
    r = await submit(client, tokens.write, {"folder": "/content/dam/d", "files": files})
    await run_imports(services)
    items = await all_results(
        client, tokens.read, r.headers["location"].replace("/status", "/result")
    )
    assert [i["status"] for i in items] == ["failed", "imported"]
    assert items[0]["error"]["status"] == 409


@pytest.mark.import_settings(import_max_file_size=100)
async def test_a_file_over_the_size_limit_fails_alone(
    client: Any, tokens: Tokens, services: Services, server: Receiver, served: dict[str, Any]
) -> None:
    served["/big"] = b"x" * 101
    served["/small"] = b"x" * 100
    r = await submit(
        client,
        tokens.write,
        {
            "folder": "/content/dam",
            "files": [
                {"fileName": "big", "url": f"{server.url}/big"},
                {"fileName": "small", "url": f"{server.url}/small"},
            ],
        },
    )
    await run_imports(services)
    items = await all_results(
        client, tokens.read, r.headers["location"].replace("/status", "/result")
    )
    assert items[0]["status"] == "failed" and items[0]["error"]["status"] == 413
    assert items[1]["status"] == "imported"
    assert await services.tree.find("/content/dam/big") is None


@pytest.mark.import_settings(import_range_probe_bytes=1000)
async def test_large_files_need_a_range_probe_answered_with_206(
    client: Any, tokens: Tokens, services: Services, server: Receiver, served: dict[str, Any]
) -> None:
    served["/ranged"] = b"r" * 2000
    # This one answers the probe with 200 and the whole file: no Range support.
    served["/unranged"] = Reply(200, b"u" * 2000)
    r = await submit(
        client,
        tokens.write,
        {
            "folder": "/content/dam",
            "files": [
                {"fileName": "ranged", "url": f"{server.url}/ranged"},
                {"fileName": "unranged", "url": f"{server.url}/unranged"},
                {"fileName": "declared", "url": f"{server.url}/unranged", "fileSize": 5000},
            ],
        },
    )
    await run_imports(services)
    items = await all_results(
        client, tokens.read, r.headers["location"].replace("/status", "/result")
    )
    assert items[0]["status"] == "imported"
    for failed in items[1:]:
        assert failed["status"] == "failed"
        assert "Range: bytes=0-0" in failed["error"]["detail"]
    probes = [x for x in server.received if x.headers.get("range") == "bytes=0-0"]
    assert {p.method for p in probes} == {"HEAD"} and len(probes) == 3


async def test_5xx_is_retried_then_imported(
    client: Any, tokens: Tokens, services: Services, server: Receiver, served: dict[str, Any]
) -> None:
    answers = iter([Reply(503, b"busy")])

    def flaky(got: Any) -> Reply:
        return next(answers, Reply(200, b"finally"))

    with receiver(flaky) as other:
        r = await submit(
            client,
            tokens.write,
            {"folder": "/content/dam", "files": [{"fileName": "f", "url": f"{other.url}/f"}]},
        )
        await run_imports(services)
        assert len(other.received) == 2
    node = await services.tree.find("/content/dam/f")
    assert node is not None and node.size == len(b"finally")
    assert r.status_code == 202


async def test_a_source_that_never_answers_times_out(
    client: Any, tokens: Tokens, services: Services
) -> None:
    import threading

    release = threading.Event()

    def stall(got: Any) -> Reply:
        release.wait(10)
        return Reply(200, b"late")

    with receiver(stall) as slow:
        r = await submit(
            client,
            tokens.write,
            {"folder": "/content/dam", "files": [{"fileName": "s", "url": f"{slow.url}/s"}]},
        )
        try:
            await run_imports(services)
        finally:
            release.set()
    items = await all_results(
        client, tokens.read, r.headers["location"].replace("/status", "/result")
    )
    assert items[0]["status"] == "failed" and "timed out" in items[0]["error"]["detail"]


async def test_bad_content_fails_the_file_with_its_reason(
    client: Any, tokens: Tokens, services: Services, served: dict[str, Any], server: Receiver
) -> None:
    served["/empty"] = b""
    served["/fine"] = b"fine"

    def cut(got: Any) -> Reply:
        # Promises more than it sends, every time: the connection ends short.
        return Reply(200, b"short", {"content-length": "100", "connection": "close"})

    with receiver(cut) as broken:
        r = await submit(
            client,
            tokens.write,
            {
                "folder": "/content/dam/bad",
                "files": [
                    {"fileName": "empty", "url": f"{server.url}/empty"},
                    {"fileName": "cut", "url": f"{broken.url}/cut"},
                    {"fileName": "fine", "url": f"{server.url}/fine"},
                ],
            },
        )
        await run_imports(services)
    items = await all_results(
        client, tokens.read, r.headers["location"].replace("/status", "/result")
    )
    assert [i["status"] for i in items] == ["failed", "failed", "imported"]
    assert "empty" in items[0]["error"]["detail"] and items[0]["error"]["status"] == 400
    assert "attempts" in items[1]["error"]["detail"]
    assert await services.tree.find("/content/dam/bad/cut") is None


async def test_an_ended_import_is_an_aem_import_completed_event(
    client: Any, tokens: Tokens, services: Services, server: Receiver, served: dict[str, Any]
) -> None:
    from tests.api.events.conftest import dispatch_all, journal_headers, register

    made = await register(client, tokens.admin, types=["aem.assets.import.completed"])
    served["/a.bin"] = b"\x00\x01" * 100
    files = [{"fileName": "a.bin", "url": f"{server.url}/a.bin"}]
    r = await submit(client, tokens.write, {"folder": "/content/dam/in", "files": files})
    await run_imports(services)
    await dispatch_all(services)
    url = str(made.json()["events_url"]).removeprefix("http://assetvault.test")
    journal = await client.get(url, headers=journal_headers(tokens.read))
    (entry,) = journal.json()["events"]
    event = entry["event"]
    assert event["type"] == "aem.assets.import.completed"
    assert event["data"]["jobId"] == r.json()["id"] and event["data"]["status"] == "COMPLETED"
    assert event["data"]["counts"] == {"imported": 1, "failed": 0, "total": 1}
    assert event["data"]["user"]["principalId"] == "writer"


async def test_hostile_metadata_and_media_types_are_400_and_create_nothing(
    client: Any, tokens: Tokens, services: Services
) -> None:
    """The request's and each file's assetMetadata are held to the limits a PATCH is
    (tests/unit/metadata/test_limits.py), and mimeType is a media type, when the request
    arrives: 400 in problem form, no folder, no job."""
    from tests.unit.metadata.test_limits import HOSTILE
    from tests.unit.test_mediatypes import HOSTILE as HOSTILE_TYPES

    folder = "/content/dam/new"
    cases: list[tuple[str, dict[str, Any]]] = []
    for name, metadata in HOSTILE:
        cases.append((name, {"folder": folder, "assetMetadata": metadata, "files": [GOOD_FILE]}))
        own = {**GOOD_FILE, "assetMetadata": metadata}
        cases.append((f"{name} (a file's)", {"folder": folder, "files": [own]}))
    for mime in HOSTILE_TYPES:
        cases.append((repr(mime), {"folder": folder, "files": [{**GOOD_FILE, "mimeType": mime}]}))
    before = await snapshot(services)
    for name, body in cases:
        r = await submit(client, tokens.write, body)
        # A body over the JSON reader's megabyte is refused before it is read.
        assert r.status_code in (400, 413), (name, r.status_code, r.text[:300])
        assert r.headers["content-type"] == "application/problem+json", name
        assert await snapshot(services) == before, name
    assert await run_imports(services) == 0


async def test_one_value_given_to_300_files_is_bounded_in_all(
    client: Any, tokens: Tokens, services: Services
) -> None:
    """A value within the per-value limit, given to every file of the request: the
    database would hold it 300 times."""
    files = [{"fileName": f"f{i}.jpg", "url": f"http://127.0.0.1:9/{i}"} for i in range(300)]
    body = {"folder": "/content/dam", "assetMetadata": {"v": "a" * 200_000}, "files": files}
    before = await snapshot(services)
    r = await submit(client, tokens.write, body)
    assert r.status_code == 400, r.text[:300]
    assert "in all" in r.json()["detail"]
    assert await snapshot(services) == before
    assert await run_imports(services) == 0


@pytest.mark.parametrize(
    "declared", ["image/" + "a" * 300, "image/", "image /x", "image/x,text/html"]
)
async def test_a_source_declaring_no_media_type_is_not_believed(
    client: Any,
    tokens: Tokens,
    services: Services,
    server: Receiver,
    served: dict[str, Any],
    declared: str,
) -> None:
    """The Content-Type a source answers with is a candidate only if it is a media type;
    the file imports with its content's type and downloads with a well-formed answer."""
    from tests.api.wire import assert_well_formed

    served["/data.unknownext"] = Reply(200, b"some plain words", {"content-type": declared})
    r = await submit(
        client,
        tokens.write,
        {
            "folder": "/content/dam",
            "files": [{"fileName": "data.unknownext", "url": f"{server.url}/data.unknownext"}],
        },
    )
    assert r.status_code == 202, r.text
    await run_imports(services)
    node = await services.tree.find("/content/dam/data.unknownext")
    assert node is not None and node.mime_type == "text/plain", node
    got = await client.get("/content/dam/data.unknownext", headers=adobe(tokens.read))
    assert got.status_code == 200
    assert_well_formed(got)
