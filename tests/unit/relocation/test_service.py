"""Moving an embedded installation (SQLite + a blob directory) to PostgreSQL and another
blob store: everything arrives, the copy is compared, a cut-off run is finished by the
next one, a target of another installation is refused, and the moved installation
serves what the old one did (relocation/service.py)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from assetvault.adapters.database.engine import Database
from assetvault.adapters.database.tables import asset_versions, comments, nodes, outbox
from assetvault.app import create_app
from assetvault.commands.migrate_storage import file_secrets
from assetvault.relocation.service import Relocation, RelocationRefused
from assetvault.services import Services, blob_store_from_url, build_services
from tests.api.adobe.conftest import adobe
from tests.api.events.conftest import register
from tests.databases import SQLITE_FILE
from tests.factories import bearer, make_folder, make_settings, process_all, upload
from tests.media import jpeg_with_metadata
from tests.s3 import ON_S3_TOO


@dataclass
class Installation:
    services: Services
    writer: str
    admin: str
    asset_urn: str


@pytest.fixture
async def source(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Installation]:
    """An embedded installation with a bit of everything: folders, an asset with a
    version, renditions, a comment, a relation, tokens, a journal registration with
    events waiting in it."""
    data_dir = tmp_path / "source"
    data_dir.mkdir()
    shutil.copyfile(sqlite_template, data_dir / SQLITE_FILE)
    svc = build_services(make_settings(data_dir))
    writer = await svc.auth.create_token("writer", "write")
    admin = await svc.auth.create_token("admin", "admin")
    app = create_app(services=svc)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await register(c, admin)).status_code == 201
        assert (await make_folder(c, writer, "photos")).status_code == 201
        first = jpeg_with_metadata(tmp_path / "a.jpg", 640, 480).read_bytes()
        second = jpeg_with_metadata(tmp_path / "b.jpg", 320, 200).read_bytes()
        done = await upload(c, writer, "/content/dam/photos", "a.jpg", first, mimeType="image/jpeg")
        assert done.status_code == 200, done.text
        again = await upload(
            c,
            writer,
            "/content/dam/photos",
            "a.jpg",
            second,
            mimeType="image/jpeg",
            createVersion="true",
        )
        assert again.status_code == 200, again.text
        note = await upload(c, writer, "/content/dam", "note.txt", b"hello", mimeType="text/plain")
        assert note.status_code == 200, note.text
        titled = await c.put(
            "/api/assets/photos/a.jpg",
            json={"class": "asset", "properties": {"dc:title": "harbour sunset"}},
            headers=bearer(writer),
        )
        assert titled.status_code == 200, titled.text
        await process_all(svc)
        await svc.changes.add_comment(
            "/content/dam/photos/a.jpg", "looks good", None, user="writer"
        )
        asset = await svc.tree.get("/content/dam/photos/a.jpg")
        other = await svc.tree.get("/content/dam/note.txt")
        r = await c.post(
            f"/adobe/assets/{asset.urn}/relations",
            json={"items": [{"relationType": "derived", "relatedAssetId": other.urn}]},
            headers=adobe(writer),
        )
        assert r.status_code == 204, r.text
    assert len(svc.signer.paths()) == 2  # the event signing pairs, made on first use
    try:
        yield Installation(svc, writer, admin, asset.urn)
    finally:
        await svc.close()


@pytest.fixture
async def target_url(postgres_admin_url: str) -> AsyncIterator[str]:
    from tests.pg import create_test_database, drop_database

    url = await create_test_database(postgres_admin_url)
    try:
        yield url
    finally:
        await drop_database(postgres_admin_url, url)


@pytest.fixture
def target_blobs_url(tmp_path: Path, blobs_backend: str, request: pytest.FixtureRequest) -> str:
    if blobs_backend == "s3":
        return str(request.getfixturevalue("s3_server").fresh_url())
    return f"file://{tmp_path / 'target-blobs'}"


def _move(src: Installation, target: Database, blobs_url: str, **kwargs: Any) -> Relocation:
    return Relocation(
        src.services.db,
        src.services.blobs,
        target,
        blob_store_from_url(blobs_url),
        secrets=file_secrets(src.services.settings),
        **kwargs,
    )


async def _count(db: Database, table: Any) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


@ON_S3_TOO
async def test_everything_arrives_and_the_moved_installation_serves_it(
    source: Installation, target_url: str, target_blobs_url: str, tmp_path: Path
) -> None:
    target = Database(target_url)
    try:
        report = await _move(source, target, target_blobs_url).run(verify_content=True)
    finally:
        await target.dispose()
    assert report.verified, report.as_json()
    by_name = {t.name: t for t in report.tables}
    for table in ("nodes", "asset_versions", "renditions", "comments", "relations", "outbox"):
        assert by_name[table].source_rows > 0, table
        assert by_name[table].target_rows == by_name[table].source_rows
    assert "search_index_state" not in by_name
    assert report.blobs.copied == report.blobs.named > 3  # originals, a version, renditions

    moved = build_services(
        make_settings(tmp_path / "elsewhere", database_url=target_url, blobs_url=target_blobs_url)
    )
    try:
        app = create_app(services=moved)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            listing = await c.get("/api/assets/photos.json", headers=bearer(source.writer))
            assert listing.status_code == 200, listing.text
            assert [e["properties"]["name"] for e in listing.json()["entities"]] == ["a.jpg"]
            original = await c.get(
                f"/adobe/assets/{source.asset_urn}/original/as/a.jpg",
                headers=adobe(source.writer),
                follow_redirects=False,
            )
            expected = (tmp_path / "b.jpg").read_bytes()
            if original.status_code == 302:  # an object store: the client fetches from it
                async with httpx.AsyncClient() as direct:
                    original = await direct.get(original.headers["location"])
            assert original.status_code == 200
            assert original.content == expected
            versions = await c.get(
                f"/adobe/assets/{source.asset_urn}/versions", headers=adobe(source.writer)
            )
            assert versions.status_code == 200 and len(versions.json()["items"]) >= 1
            found = await c.post(
                "/adobe/assets/search?allowUnsafeSearch=true",
                json={"query": [{"match": {"text": "harbour"}}]},
                headers=adobe(source.writer),
            )
            assert found.status_code == 200, found.text
            assert [h["assetId"] for h in found.json()["hits"]["results"]] == [source.asset_urn]
            # The admin token of the old installation works here; the journal keeps its
            # registration and the events that were waiting in it.
            regs = await c.get("/adobe/events/registrations", headers=adobe(source.admin))
            assert regs.status_code == 200 and regs.json()
        async with moved.db.read() as conn:
            assert (await conn.execute(select(func.count()).select_from(comments))).scalar() == 1
        # Every machine of the new installation signs and verifies as the old one did.
        assert moved.settings.secret_key == source.services.settings.secret_key
        assert moved.signer.paths() == source.services.signer.paths()
        old = source.services.signer.sign(b"body")
        assert [path for _, path in moved.signer.sign(b"body")] == [path for _, path in old]
    finally:
        await moved.close()


async def test_a_cut_off_run_is_finished_by_the_next(
    source: Installation, target_url: str, target_blobs_url: str
) -> None:
    target = Database(target_url)
    lines: list[str] = []

    def cut_after_nodes(line: str) -> None:
        lines.append(line)
        if line.startswith("nodes:"):
            raise KeyboardInterrupt  # as a ^C between two tables

    try:
        with pytest.raises(KeyboardInterrupt):
            await _move(source, target, target_blobs_url, progress=cut_after_nodes).run()
        assert await _count(target, nodes) == await _count(source.services.db, nodes)
        assert await _count(target, asset_versions) == 0
        half = await _move(source, target, target_blobs_url).verify()
        assert not half.verified
        report = await _move(source, target, target_blobs_url).run()
        assert report.verified, report.as_json()
        assert report.blobs.already_there == report.blobs.named
        assert report.blobs.copied == 0
    finally:
        await target.dispose()


async def test_a_target_holding_another_installation_is_refused_before_any_write(
    source: Installation, target_url: str, target_blobs_url: str, tmp_path: Path
) -> None:
    other = build_services(make_settings(tmp_path / "other", database_url=target_url))
    try:
        await other.tree.create_folder("/content/dam", "theirs", user="someone")
    finally:
        await other.close()
    target = Database(target_url)
    try:
        before = await _count(target, nodes)
        with pytest.raises(RelocationRefused, match="another installation"):
            await _move(source, target, target_blobs_url).run()
        assert await _count(target, nodes) == before
        assert await _count(target, outbox) == 1  # theirs alone
    finally:
        await target.dispose()


async def test_a_damaged_source_blob_is_reported_not_copied_under_its_key(
    source: Installation, target_url: str, target_blobs_url: str
) -> None:
    root = Path(source.services.settings.resolved_blobs_url.removeprefix("file://"))
    victim = sorted(p for p in root.rglob("*") if p.is_file() and p.stat().st_size > 100)[0]
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[50] ^= 0xFF
    victim.write_bytes(bytes(data))
    target = Database(target_url)
    try:
        report = await _move(source, target, target_blobs_url).run()
    finally:
        await target.dispose()
    assert not report.verified
    assert any("damaged" in p and victim.name in p for p in report.blobs.problems), report.blobs


async def test_new_events_continue_after_every_number_the_source_handed_out(
    source: Installation, target_url: str, target_blobs_url: str, tmp_path: Path
) -> None:
    """Even when the source's outbox was pruned to nothing: a consumer's position must
    never be ahead of the next new event."""
    async with source.services.db.read() as conn:
        last = (await conn.execute(select(func.max(outbox.c.seq)))).scalar_one()
    async with source.services.db.write() as conn:
        await conn.execute(text("DELETE FROM outbox"))
    target = Database(target_url)
    try:
        assert (await _move(source, target, target_blobs_url).run()).verified
    finally:
        await target.dispose()
    moved = build_services(
        make_settings(tmp_path / "elsewhere", database_url=target_url, blobs_url=target_blobs_url)
    )
    try:
        await moved.tree.create_folder("/content/dam", "after", user="writer")
        async with moved.db.read() as conn:
            seqs = [r[0] for r in await conn.execute(select(outbox.c.seq))]
        assert seqs and min(seqs) > last
    finally:
        await moved.close()


async def test_a_target_with_secrets_of_its_own_is_refused(
    source: Installation, target_url: str, target_blobs_url: str, tmp_path: Path
) -> None:
    """A server already started on the target made its own upload-token secret: moving
    this installation there would mix two installations' secrets."""
    other = build_services(make_settings(tmp_path / "other", database_url=target_url))
    try:
        assert other.settings.secret_key  # made in the target's shared_secrets
    finally:
        await other.close()
    target = Database(target_url)
    try:
        with pytest.raises(RelocationRefused, match="secrets of another installation"):
            await _move(source, target, target_blobs_url).run()
        assert await _count(target, asset_versions) == 0
    finally:
        await target.dispose()
