"""The snapshot service on the embedded default (SQLite, local blobs, Tantivy): a
restore brings back the tree, the metadata, the search index, the binaries and the keys
of the moment of the save; blobs are shared by hard links; a snapshot of a newer format
or an unknown schema is refused and changes nothing; an older schema is migrated; reset
empties; PostgreSQL is refused with the reason."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from assetvault.errors import Conflict, InvalidInput, NotFound, Unauthorized
from assetvault.search.query import parse_request
from assetvault.services import Services, build_services
from assetvault.snapshots.service import FORMAT_VERSION, Unsupported
from assetvault.tree.repository import outbox_head
from tests.factories import make_assets, make_settings


def embedded(data_dir: Path, **overrides: Any) -> Services:
    return build_services(make_settings(data_dir, search_backend="tantivy", **overrides))


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Services]:
    services = embedded(tmp_path / "data")
    await services.db.migrate()
    yield services
    await services.close()


async def names(svc: Services) -> list[str]:
    async with svc.db.reader() as r:
        rows = await r.fetch_all("SELECT path FROM nodes ORDER BY path")
    return [row[0] for row in rows]


async def found(svc: Services, text: str) -> list[str]:
    body = {"query": [{"match": {"text": text}}], "limit": 50}
    result = await svc.search.search(parse_request(body))
    return sorted(h["assetMetadata"].get("dc:title", "") for h in result["hits"]["results"])


async def title_of(svc: Services, path: str) -> Any:
    node = await svc.tree.get(path)
    return node.asset_metadata.get("dc:title")


async def seeded(svc: Services) -> None:
    await make_assets(svc, [("granite.jpg", {"dc:title": "granite"})])
    await make_assets(svc, [("basalt.jpg", {"dc:title": "basalt"})])


async def test_restore_brings_back_tree_metadata_search_and_blobs(svc: Services) -> None:
    await seeded(svc)
    assert await found(svc, "granite") == ["granite"]
    saved = await svc.snapshots.save("before")
    assert (saved.assets, saved.blobs) == (2, 2)
    before = await names(svc)
    granite = await svc.tree.get("/content/dam/granite.jpg")

    # Changes after the save: an asset added, one deleted, metadata patched, a token made.
    await make_assets(svc, [("marble.jpg", {"dc:title": "marble"})])
    await svc.changes.delete("/content/dam/basalt.jpg", user="t")
    await svc.metadata.patch(
        granite.id,
        [{"op": "replace", "path": "/dc:title", "value": "granite changed"}],
        if_match="*",
        user="t",
    )
    later = await svc.auth.create_token("made-later", "admin")
    assert await found(svc, "marble") == ["marble"]

    done = await svc.snapshots.restore("before")
    assert done.assets == 2 and not done.migrated
    await svc.reopen()
    assert await names(svc) == before
    assert await title_of(svc, "/content/dam/granite.jpg") == "granite"
    assert await found(svc, "granite") == ["granite"]
    assert await found(svc, "basalt") == ["basalt"]
    assert await found(svc, "marble") == []
    basalt = await svc.tree.get("/content/dam/basalt.jpg")
    assert basalt.blob_key is not None
    data = b"".join([c async for c in svc.blobs.read(basalt.blob_key)])
    assert data == b"basalt.jpg"
    # A token made after the save still works: a harness never locks itself out.
    assert await svc.auth.verify(later) is not None
    # The search index goes on from the restored outbox position.
    await make_assets(svc, [("slate.jpg", {"dc:title": "slate"})])
    assert await found(svc, "slate") == ["slate"]


async def test_blobs_are_hard_links_of_the_live_store(svc: Services) -> None:
    await seeded(svc)
    await svc.snapshots.save("linked")
    node = await svc.tree.get("/content/dam/granite.jpg")
    assert node.blob_key is not None
    key = node.blob_key
    live = svc.settings.data_dir / "blobs" / key[:2] / key[2:4] / key
    kept = svc.settings.data_dir / "snapshots" / "linked" / "blobs" / key[:2] / key[2:4] / key
    assert live.stat().st_ino == kept.stat().st_ino


async def test_a_file_snapshot_restores_into_another_data_directory(
    svc: Services, tmp_path: Path
) -> None:
    await seeded(svc)
    secret = svc.settings.secret_key
    file = tmp_path / "state.tar"
    await svc.snapshots.save(str(file))
    with tarfile.open(file) as tar:
        assert "manifest.json" in tar.getnames()
    other = embedded(tmp_path / "other")
    try:
        await other.db.migrate()
        await other.snapshots.restore(str(file))
        await other.reopen()
        assert await names(other) == await names(svc)
        assert await found(other, "basalt") == ["basalt"]
        node = await other.tree.get("/content/dam/basalt.jpg")
        assert node.blob_key is not None
        assert b"".join([c async for c in other.blobs.read(node.blob_key)]) == b"basalt.jpg"
        assert other.settings.secret_key == secret  # the upload tokens' key came along
    finally:
        await other.close()


def _edit_manifest(where: Path, **changes: Any) -> None:
    manifest = json.loads((where / "manifest.json").read_text())
    manifest.update(changes)
    (where / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"formatVersion": FORMAT_VERSION + 1}, "newer Assetvault"),
        ({"schemaRevisions": ["9999_from_the_future"]}, "does not know"),
    ],
)
async def test_a_newer_snapshot_is_refused_and_nothing_changes(
    svc: Services, changes: dict[str, Any], reason: str
) -> None:
    await seeded(svc)
    await svc.snapshots.save("future")
    _edit_manifest(svc.settings.data_dir / "snapshots" / "future", **changes)
    await make_assets(svc, [("marble.jpg", {})])
    before = await names(svc)
    generation = svc.gate.generation
    with pytest.raises(Conflict, match=reason):
        await svc.snapshots.restore("future")
    assert await names(svc) == before
    assert svc.gate.generation == generation


async def test_not_a_snapshot_and_bad_names_are_refused(svc: Services, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        await svc.snapshots.restore("absent")
    with pytest.raises(InvalidInput):
        await svc.snapshots.save("../escape")
    with pytest.raises(InvalidInput):
        await svc.snapshots.restore(".hidden")
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(InvalidInput, match="not a snapshot archive"):
        await svc.snapshots.restore(str(junk))
    # An archive with a link out of the snapshot is refused before anything is written.
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("blobs")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc"
        tar.addfile(info)
    with pytest.raises(InvalidInput, match="neither a file nor a directory"):
        await svc.snapshots.restore(str(evil))


async def test_an_older_schema_is_migrated_after_restore(svc: Services) -> None:
    await seeded(svc)
    await svc.snapshots.save("old")
    where = svc.settings.data_dir / "snapshots" / "old"
    # As if made by the version before the newest migration: that migration undone.
    from alembic import command

    from assetvault.adapters.database.engine import alembic_config

    cfg = alembic_config(f"sqlite:///{where / 'assetvault.db'}")
    await asyncio.to_thread(command.downgrade, cfg, "-1")
    conn = sqlite3.connect(where / "assetvault.db")
    older = [row[0] for row in conn.execute("SELECT version_num FROM alembic_version")]
    conn.close()
    _edit_manifest(where, schemaRevisions=older)
    done = await svc.snapshots.restore("old")
    assert done.migrated
    await svc.reopen()
    assert "/content/dam/granite.jpg" in await names(svc)
    await make_assets(svc, [("slate.jpg", {"dc:title": "slate"})])
    assert await found(svc, "slate") == ["slate"]


async def test_list_and_delete(svc: Services) -> None:
    await svc.snapshots.save("one")
    await svc.snapshots.save("two")
    await svc.snapshots.save("two")  # a save under a taken name replaces it
    assert [s.name for s in svc.snapshots.list()] == ["one", "two"]
    svc.snapshots.delete("one")
    assert [s.name for s in svc.snapshots.list()] == ["two"]
    with pytest.raises(NotFound):
        svc.snapshots.delete("one")


async def test_reset_empties_and_keeps_tokens_by_default(svc: Services) -> None:
    token = await svc.auth.create_token("keeper", "admin")
    await seeded(svc)
    done = await svc.snapshots.reset()
    await svc.reopen()
    assert done.seconds < 5
    assert await names(svc) == ["/content/dam"]
    assert await found(svc, "granite") == []
    async with svc.db.reader() as r:
        assert await outbox_head(r) == 0
        jobs = await r.fetch_one("SELECT count(*) FROM jobs")
    assert jobs == (0,)
    assert await svc.auth.verify(token) is not None
    await make_assets(svc, [("fresh.jpg", {"dc:title": "fresh"})])
    assert await found(svc, "fresh") == ["fresh"]

    await svc.snapshots.reset(keep_tokens=False)
    await svc.reopen()
    assert await svc.auth.verify(token) is None
    assert await names(svc) == ["/content/dam"]


async def test_a_restore_waits_for_work_inside_the_gate_and_gives_up(svc: Services) -> None:
    await seeded(svc)
    await svc.snapshots.save("s")
    await make_assets(svc, [("marble.jpg", {})])
    before = await names(svc)
    from assetvault.runtime.gate import GateClosed
    from assetvault.snapshots import service

    original = service.DRAIN_SECONDS
    service.DRAIN_SECONDS = 0.3
    try:
        async with svc.gate.held(1.0):  # a request in flight that does not end
            with pytest.raises(GateClosed, match="did not finish"):
                await svc.snapshots.restore("s")
    finally:
        service.DRAIN_SECONDS = original
    assert await names(svc) == before
    assert not svc.gate.closed


async def test_postgresql_is_refused_with_the_reason(
    tmp_path: Path, postgres_admin_url: str
) -> None:
    from tests.pg import create_test_database, drop_database

    url = await create_test_database(postgres_admin_url)
    svc = build_services(make_settings(tmp_path / "pg", database_url=url))
    try:
        with pytest.raises(Unsupported, match="pg_dump"):
            await svc.snapshots.save("x")
        with pytest.raises(Unsupported, match="pg_dump"):
            await svc.snapshots.restore("x")
    finally:
        await svc.close()
        await drop_database(postgres_admin_url, url)


def test_unauthorized_is_not_what_a_refusal_raises() -> None:
    assert not issubclass(Unsupported, Unauthorized)


async def test_a_snapshot_is_saved_when_the_secret_comes_from_the_settings(
    tmp_path: Path,
) -> None:
    svc = embedded(tmp_path / "data", installation_secret="s" * 40)
    try:
        await svc.db.migrate()
        await seeded(svc)
        await svc.snapshots.save("with-setting")
        assert await names(svc)
        assert not (svc.settings.data_dir / "secret.key").exists()
    finally:
        await svc.close()
