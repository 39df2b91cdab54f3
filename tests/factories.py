"""Factories the tests share: settings, service containers, clients and uploads."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx

from assetvault.settings import Settings


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=data_dir, **overrides)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def initiate(
    client: httpx.AsyncClient, token: str, folder: str, files: list[tuple[str, int]]
) -> httpx.Response:
    data = [
        (k, v) for name, size in files for k, v in (("fileName", name), ("fileSize", str(size)))
    ]
    return await client.post(
        f"{folder}.initiateUpload.json",
        content=httpx.QueryParams(data).__str__(),
        headers={**bearer(token), "Content-Type": "application/x-www-form-urlencoded"},
    )


async def put_parts(
    client: httpx.AsyncClient, file: dict[str, Any], data: bytes
) -> list[httpx.Response]:
    """PUT the parts the way @adobe/aem-upload splits them, without Authorization."""
    uris = file["uploadURIs"]
    size = max(math.ceil(len(data) / len(uris)), file["minPartSize"]) if data else 1
    responses = []
    for i, uri in enumerate(uris):
        chunk = data[i * size : (i + 1) * size]
        if not chunk and i > 0:
            break
        responses.append(await client.put(uri, content=chunk))
    return responses


async def complete(
    client: httpx.AsyncClient,
    token: str,
    folder: str,
    file: dict[str, Any],
    size: int,
    **fields: str,
) -> httpx.Response:
    form = {
        "fileName": file["fileName"],
        "fileSize": str(size),
        "mimeType": file.get("mimeType", "application/octet-stream"),
        "createVersion": "false",
        "replace": "false",
        "uploadToken": file["uploadToken"],
        "uploadDuration": "12",
        **fields,
    }
    return await client.post(f"{folder}.completeUpload.json", data=form, headers=bearer(token))


async def upload(
    client: httpx.AsyncClient, token: str, folder: str, name: str, data: bytes, **fields: str
) -> httpx.Response:
    """The whole protocol for one file; returns the complete response."""
    r = await initiate(client, token, folder, [(name, len(data))])
    assert r.status_code == 201, r.text
    file = r.json()["files"][0]
    for part in await put_parts(client, file, data):
        # 201 from Assetvault's part URIs, 200 from an object store's presigned ones.
        assert part.status_code in (200, 201), part.text
    return await complete(client, token, folder, file, len(data), **fields)


async def make_folder(client: httpx.AsyncClient, token: str, path: str) -> httpx.Response:
    """POST /api/assets/<path> as the upload client does; path is below /content/dam."""
    return await client.post(
        f"/api/assets/{path.strip('/')}",
        json={"class": "assetFolder", "properties": {"jcr:title": path.rsplit("/", 1)[-1]}},
        headers=bearer(token),
    )


async def snapshot(services: Any) -> dict[str, Any]:
    """Everything a bad request must leave as it was: every node with its revision, every
    version, every stored blob and every staged upload part."""
    from sqlalchemy import select

    from assetvault.adapters.database.tables import asset_versions, nodes

    async with services.db.read() as conn:
        node_rows = sorted(tuple(r) for r in await conn.execute(select(nodes)))
        version_rows = sorted(tuple(r) for r in await conn.execute(select(asset_versions)))
    root: Path | None = getattr(services.blobs, "root", None)
    if root is None:  # on S3
        files = await services.blobs.objects()
    else:
        files = sorted(
            (str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*") if p.is_file()
        )
    return {"nodes": node_rows, "versions": version_rows, "files": files}


async def one_chunk(data: bytes) -> Any:
    yield data


async def make_asset(
    services: Any, name: str, data: bytes, mime: str, folder: str = "/content/dam"
) -> Any:
    """An asset stored through the tree service, as a completed upload would store it."""
    blob = await services.blobs.put(one_chunk(data))
    stored = await services.tree.store_original(folder, name, blob, mime_type=mime, user="writer")
    return stored.node


async def process_all(services: Any) -> int:
    """Run every due job (processing, deletions) with an in-process worker."""
    from assetvault.jobs.worker import Worker

    worker = Worker(services, name="test-worker")
    n = 0
    while await worker.run_once():
        n += 1
    return n


def tampered(token: str) -> str:
    """The token with one character of its signature changed (a middle one: the last
    character of base64 may carry only padding bits, so changing it can change nothing)."""
    at = token.rindex(".") + 5
    return token[:at] + ("x" if token[at] != "x" else "y") + token[at + 1 :]


async def make_assets(
    services: Any,
    items: list[tuple[str, dict[str, Any]]],
    *,
    mime: str = "image/jpeg",
    folder: str = "/content/dam",
) -> list[Any]:
    """Assets imported in one transaction, each (name, assetMetadata); the binary of each
    is its name, so sizes differ with the names."""
    from assetvault.tree.service import NewAsset

    batch = [
        NewAsset(name, await services.blobs.put(one_chunk(name.encode())), mime, metadata)
        for name, metadata in items
    ]
    return await services.tree.import_originals(folder, batch, user="writer")


async def backdate_outbox(services: Any, seqs: list[int] | None, when: Any) -> None:
    """As if these outbox rows (None: every row) had been written at ``when``."""
    from sqlalchemy import update

    from assetvault.adapters.database.tables import outbox

    q = update(outbox).values(created_at=when)
    if seqs is not None:
        q = q.where(outbox.c.seq.in_(seqs))
    async with services.db.write() as conn:
        await conn.execute(q)


async def migrate_down_and_up(services: Any, down_to: str) -> None:
    """Downgrade the schema to ``down_to`` and upgrade it to the newest revision again."""
    from alembic import command

    from assetvault.adapters.database.engine import alembic_config

    def cycle(conn: Any) -> None:
        cfg = alembic_config(services.db.url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, down_to)
        command.upgrade(cfg, "head")

    async with services.db.engine.connect() as conn:
        await conn.run_sync(cycle)
        await conn.commit()


async def outbox_events(services: Any, after: int = 0) -> list[Any]:
    """The outbox rows past ``after``, in commit order (the download events noted so
    far written first: they follow their responses, tree/downloads.py)."""
    from assetvault.tree import repository

    await services.tree.downloads.flush()
    found: list[Any] = []
    async with services.db.reader() as r:
        while batch := await repository.outbox_after(r, after):
            found.extend(batch)
            after = batch[-1].seq
    return found
