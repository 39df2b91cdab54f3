"""Every public write, on every interface, leaves exactly its outbox rows (and a refused
one leaves none); every binary sent is a download event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from assetvault.services import Services
from tests import media
from tests.api.adobe.conftest import adobe
from tests.conftest import Tokens
from tests.factories import bearer, make_folder, outbox_events, process_all, upload

Seen = list[tuple[str, str | None, str | None]]


class Outbox:
    """Reads the rows each step appended."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.position = 0

    async def after(self, action: Callable[[], Awaitable[httpx.Response]], status: int) -> Seen:
        found = await outbox_events(self.services, self.position)
        self.position = found[-1].seq if found else self.position
        r = await action()
        assert r.status_code == status, r.text
        found = await outbox_events(self.services, self.position)
        if found:
            self.position = found[-1].seq
        return [(e.type, e.path, e.user) for e in found]


async def test_direct_upload_and_classic_api_writes(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, tmp_path: Path
) -> None:
    box = Outbox(services)
    w = bearer(tokens.write)
    lib = "/content/dam/lib"
    photo = f"{lib}/p.jpg"
    jpeg = media.jpeg_with_metadata(tmp_path / "p.jpg").read_bytes()

    assert await box.after(lambda: make_folder(client, tokens.write, "lib"), 201) == [
        ("folder.created", lib, "writer")
    ]
    assert await box.after(lambda: upload(client, tokens.write, lib, "p.jpg", jpeg), 200) == [
        ("asset.created", photo, "writer")
    ]
    assert await process_all(services) == 1
    done = await outbox_events(services, box.position)
    assert [(e.type, e.path, e.user) for e in done] == [("asset.processing_completed", photo, None)]
    assert "cq5dam.web.1280.1280.jpeg" in done[0].data["renditions"]
    box.position = done[-1].seq

    versioned = await box.after(
        lambda: upload(
            client, tokens.write, lib, "p.jpg", jpeg[:-2] + b"\xff\xd9", createVersion="true"
        ),
        200,
    )
    assert versioned == [("asset.original_replaced", photo, "writer")]
    replaced = await box.after(
        lambda: upload(client, tokens.write, lib, "p.jpg", jpeg, replace="true"), 200
    )
    assert replaced == [("asset.deleted", photo, "writer"), ("asset.created", photo, "writer")]
    await process_all(services)
    box.position = (await outbox_events(services))[-1].seq

    metadata = {"class": "asset", "properties": {"dc:title": "New"}}
    assert await box.after(
        lambda: client.put("/api/assets/lib/p.jpg", json=metadata, headers=w), 200
    ) == [("asset.metadata_updated", photo, "writer")]
    comment = {"message": "Nice"}
    assert await box.after(
        lambda: client.post("/api/assets/lib/p.jpg/comments/*", data=comment, headers=w), 201
    ) == [("asset.comment_added", photo, "writer")]
    rendition = "/api/assets/lib/p.jpg/renditions/custom.txt"
    assert await box.after(
        lambda: client.post(
            rendition, content=b"mine", headers={**w, "Content-Type": "text/plain"}
        ),
        201,
    ) == [("asset.rendition_stored", photo, "writer")]
    assert await box.after(lambda: client.get(rendition, headers=w), 200) == [
        ("asset.downloaded", photo, "writer")
    ]
    assert await box.after(lambda: client.delete(rendition, headers=w), 200) == [
        ("asset.rendition_deleted", photo, "writer")
    ]

    copy = {**w, "X-Destination": "/api/assets/copy"}
    assert await box.after(
        lambda: client.request("COPY", "/api/assets/lib", headers=copy), 201
    ) == [
        ("folder.copied", "/content/dam/copy", "writer"),
        ("asset.copied", "/content/dam/copy/p.jpg", "writer"),
    ]
    move = {**w, "X-Destination": "/api/assets/copy/q.jpg"}
    assert await box.after(
        lambda: client.request("MOVE", "/api/assets/copy/p.jpg", headers=move), 201
    ) == [("asset.moved", "/content/dam/copy/q.jpg", "writer")]
    assert await box.after(lambda: client.delete("/api/assets/copy", headers=w), 200) == [
        ("asset.deleted", "/content/dam/copy/q.jpg", "writer"),
        ("folder.deleted", "/content/dam/copy", "writer"),
    ]

    # Reads that send bytes are events; those that send none are not.
    r = bearer(tokens.read)
    assert await box.after(lambda: client.get(photo, headers=r), 200) == [
        ("asset.downloaded", photo, "reader")
    ]
    assert await box.after(lambda: client.get(photo, headers={**r, "Range": "bytes=0-9"}), 206) == [
        ("asset.downloaded", photo, "reader")
    ]
    assert await box.after(lambda: client.head(photo, headers=r), 200) == []
    etag = (await client.head(photo, headers=r)).headers["etag"]
    assert (
        await box.after(lambda: client.get(photo, headers={**r, "If-None-Match": etag}), 304) == []
    )
    assert await box.after(lambda: client.get("/api/assets/lib.json", headers=r), 200) == []

    # Refused writes leave nothing.
    assert await box.after(lambda: client.delete("/api/assets/nope", headers=w), 404) == []
    assert await box.after(lambda: make_folder(client, tokens.write, "lib"), 409) == []
    assert await box.after(lambda: client.delete("/api/assets/lib", headers=r), 403) == []


async def test_author_api_writes(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    box = Outbox(services)
    await upload(client, tokens.write, "/content/dam", "a.txt", b"alpha")
    await upload(client, tokens.write, "/content/dam", "b.txt", b"beta")
    a = await services.tree.get("/content/dam/a.txt")
    b = await services.tree.get("/content/dam/b.txt")
    w = adobe(tokens.write)
    patch = [{"op": "add", "path": "/dc:title", "value": "Alpha"}]
    patched = await box.after(
        lambda: client.patch(
            f"/adobe/assets/{a.urn}/metadata",
            json=patch,
            headers={**w, "Content-Type": "application/json-patch+json", "If-Match": "*"},
        ),
        200,
    )
    assert patched == [("asset.metadata_updated", a.path, "writer")]
    assert (await outbox_events(services, box.position - 1))[0].data["previous"] == {
        "dc:title": None
    }
    stale = {**w, "Content-Type": "application/json-patch+json", "If-Match": a.etag}
    assert (
        await box.after(
            lambda: client.patch(f"/adobe/assets/{a.urn}/metadata", json=patch, headers=stale), 412
        )
        == []
    )

    items = {"items": [{"relationType": "others", "relatedAssetId": b.urn}]}
    assert await box.after(
        lambda: client.post(f"/adobe/assets/{a.urn}/relations", json=items, headers=w), 204
    ) == [("asset.relation_added", a.path, "writer"), ("asset.relation_added", b.path, "writer")]
    assert await box.after(
        lambda: client.delete(f"/adobe/assets/{a.urn}/relations/others/{b.urn}", headers=w), 204
    ) == [
        ("asset.relation_removed", a.path, "writer"),
        ("asset.relation_removed", b.path, "writer"),
    ]
    original = f"/adobe/assets/{b.urn}/original/as/b.txt"
    assert await box.after(lambda: client.get(original, headers=adobe(tokens.read)), 200) == [
        ("asset.downloaded", b.path, "reader")
    ]
    assert await box.after(lambda: client.delete(f"/adobe/assets/{b.urn}", headers=w), 204) == [
        ("asset.deleted", b.path, "writer")
    ]


async def test_a_download_is_sent_without_waiting_for_its_event_to_be_written(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    assert (await make_folder(client, tokens.write, "lib")).status_code == 201
    assert (await upload(client, tokens.write, "/content/dam/lib", "a.txt", b"abc")).is_success
    start = (await outbox_events(services))[-1].seq
    writes = services.tree.downloads._writes
    held = asyncio.Event()

    class Held:
        @asynccontextmanager
        async def change(self, user: str | None) -> AsyncIterator[Any]:
            await held.wait()  # the write path is slow (a long commit, the write turn)
            async with writes.change(user) as ch:
                yield ch

    services.tree.downloads._writes = Held()  # type: ignore[assignment]
    try:
        r = await asyncio.wait_for(
            client.get("/content/dam/lib/a.txt", headers=bearer(tokens.read)), 30
        )
        assert r.status_code == 200 and r.content == b"abc"
    finally:
        held.set()
        services.tree.downloads._writes = writes
    rows = await outbox_events(services, start)
    assert [(e.type, e.path, e.user) for e in rows] == [
        ("asset.downloaded", "/content/dam/lib/a.txt", "reader")
    ]
