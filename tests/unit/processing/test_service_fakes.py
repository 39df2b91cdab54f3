"""ProcessingService against in-memory fakes of the blob store and the media tools
(tests/fakes.py): what it asks of the tools and what it commits, in milliseconds. The
same service on the real tools: test_service.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from assetvault.adapters.database.tables import jobs
from assetvault.metadata import limits
from assetvault.processing.renditions import renditions_for
from tests.factories import make_asset, one_chunk
from tests.factories import process_all as drain
from tests.fakes import Faked, faked_services

PHOTO = b"photo bytes"
SECOND = b"second photo bytes"


@pytest.fixture(params=["sqlite", "postgresql"])
async def faked(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Faked]:
    async with faked_services(request, tmp_path, request.param) as f:
        yield f


def photo(f: Faked, content: bytes = PHOTO, title: str = "Sunset") -> bytes:
    return f.media.file(
        content,
        mime="image/jpeg",
        tags={"XMP-dc:Title": title, "IFD0:Make": "Canon"},
        width=600,
        height=400,
    )


async def job_states(f: Faked) -> list[str]:
    async with f.services.db.read() as conn:
        return sorted(r.state for r in await conn.execute(select(jobs.c.state)))


async def test_success_commits_metadata_and_renditions(faked: Faked) -> None:
    f = faked
    node = await make_asset(f.services, "photo.jpg", photo(f), "application/octet-stream")
    assert node.asset_state == "processing"
    assert await drain(f.services) == 1
    node = await f.services.tree.get("/content/dam/photo.jpg")
    assert (node.asset_state, node.processing_error) == ("processed", None)
    assert node.mime_type == "image/jpeg"  # sniffed, not the declared octet-stream
    meta = node.asset_metadata
    assert (meta["dc:title"], meta["tiff:Make"], meta["dc:format"]) == (
        "Sunset",
        "Canon",
        "image/jpeg",
    )
    assert (meta["tiff:ImageWidth"], meta["tiff:ImageLength"]) == (600, 400)
    [call] = f.media.renders
    assert (call.kind, call.content, call.label) == ("image", PHOTO, "jpg")
    assert call.specs == renditions_for("image")  # the policy, handed over as specs
    assert call.limits.max_pixels == f.services.settings.processing_max_pixels
    assert call.limits.memory_bytes == f.services.settings.processing_memory_limit_mb * 2**20
    renditions = {r.name: r for r in await f.services.tree.renditions(node)}
    assert {n: (r.width, r.height, r.mime_type) for n, r in renditions.items()} == {
        "cq5dam.web.1280.1280.jpeg": (600, 400, "image/jpeg"),
        "cq5dam.web.1280.1280.webp": (600, 400, "image/webp"),
        "cq5dam.thumbnail.48.48.png": (48, 32, "image/png"),
        "cq5dam.thumbnail.140.100.png": (140, 93, "image/png"),
        "cq5dam.thumbnail.319.319.png": (319, 213, "image/png"),
    }
    for r in renditions.values():  # stored through the write path, in the blob store
        assert f.blobs.blobs[r.blob_key].startswith(r.name.encode())
    # The original was lent as a temporary copy, and every file was cleaned up.
    assert f.blobs.copies_out == 0
    assert f.blobs.scratch_dirs and not any(d.exists() for d in f.blobs.scratch_dirs)
    assert await job_states(f) == ["succeeded"]


async def test_a_tool_failure_fails_the_asset_with_the_reason(faked: Faked) -> None:
    f = faked
    bad = f.media.file(b"broken", mime="image/jpeg", error="Premature end of JPEG file")
    await make_asset(f.services, "bad.jpg", bad, "image/jpeg")
    await make_asset(f.services, "ok.jpg", photo(f), "image/jpeg")
    assert await drain(f.services) == 2
    node = await f.services.tree.get("/content/dam/bad.jpg")
    assert node.asset_state == "failed"
    assert node.processing_error == "Premature end of JPEG file"
    assert await f.services.tree.renditions(node) == []
    assert (await f.services.tree.get("/content/dam/ok.jpg")).asset_state == "processed"
    assert await job_states(f) == ["failed", "succeeded"]  # failed for good: no retry
    assert f.blobs.copies_out == 0


async def test_a_limit_comes_from_the_settings_at_run_time(faked: Faked) -> None:
    f = faked
    await make_asset(f.services, "big.jpg", photo(f), "image/jpeg")
    f.services.settings.processing_max_pixels = 1000
    await drain(f.services)
    node = await f.services.tree.get("/content/dam/big.jpg")
    assert node.asset_state == "failed"
    assert "limit of 1000 pixels" in (node.processing_error or "")
    f.services.settings.processing_max_pixels = 10**8
    await f.services.processing.reprocess("/content/dam/big.jpg", user="admin")
    await drain(f.services)
    node = await f.services.tree.get("/content/dam/big.jpg")
    assert (node.asset_state, node.processing_error) == ("processed", None)


async def test_a_newer_original_arriving_meanwhile_wins(faked: Faked) -> None:
    f = faked
    await make_asset(f.services, "pic.jpg", photo(f), "image/jpeg")
    photo(f, SECOND, title="Second")

    async def replace_once() -> None:
        f.media.before_render = None
        await f.services.tree.store_original(
            "/content/dam",
            "pic.jpg",
            await f.services.blobs.put(one_chunk(SECOND)),
            mime_type="image/jpeg",
            user="tester",
            create_version=True,
        )

    f.media.before_render = replace_once
    assert await drain(f.services) == 2  # the stale job commits nothing; the new one runs
    assert [c.content for c in f.media.renders] == [PHOTO, SECOND]
    node = await f.services.tree.get("/content/dam/pic.jpg")
    assert node.asset_state == "processed"
    assert node.asset_metadata["dc:title"] == "Second"
    second_key = await f.services.blobs.put(one_chunk(SECOND))
    assert node.blob_key == second_key.key
    renditions = await f.services.tree.renditions(node)
    assert len(renditions) == 5
    for r in renditions:  # all made from the newer original
        assert f.blobs.blobs[r.blob_key].endswith(second_key.key.encode())
    assert await job_states(f) == ["succeeded", "succeeded"]


async def test_a_missing_binary_fails_the_asset(faked: Faked) -> None:
    f = faked
    node = await make_asset(f.services, "gone.jpg", photo(f), "image/jpeg")
    assert node.blob_key is not None
    del f.blobs.blobs[node.blob_key]
    await drain(f.services)
    node = await f.services.tree.get("/content/dam/gone.jpg")
    assert node.asset_state == "failed"
    assert node.processing_error == "the original's binary is missing from the blob store"
    assert f.media.renders == []
    assert await job_states(f) == ["failed"]


async def test_unknown_types_keep_the_declared_type_and_get_an_icon(faked: Faked) -> None:
    f = faked
    csv = f.media.file(b"a,b\n1,2\n", mime="text/plain")
    await make_asset(f.services, "notes.csv", csv, "text/csv")
    await drain(f.services)
    node = await f.services.tree.get("/content/dam/notes.csv")
    assert (node.asset_state, node.mime_type) == ("processed", "text/csv")
    [call] = f.media.renders
    assert (call.kind, call.label, call.specs) == ("other", "csv", renditions_for("other"))
    assert sorted(r.name for r in await f.services.tree.renditions(node)) == [
        "cq5dam.thumbnail.140.100.png",
        "cq5dam.thumbnail.319.319.png",
        "cq5dam.thumbnail.48.48.png",
    ]


async def test_unreadable_tags_do_not_fail_the_asset(faked: Faked) -> None:
    f = faked
    f.media.tag_errors = True
    await make_asset(f.services, "photo.jpg", photo(f), "image/jpeg")
    await drain(f.services)
    node = await f.services.tree.get("/content/dam/photo.jpg")
    assert node.asset_state == "processed"
    assert "dc:title" not in node.asset_metadata
    assert node.asset_metadata["tiff:ImageWidth"] == 600  # from the renditions' source


async def test_pdf_and_video_facts(faked: Faked) -> None:
    f = faked
    pdf = f.media.file(b"%PDF-fake", mime="application/pdf", pages=2, text="Alpha\nBeta")
    clip = f.media.file(b"fake video", mime="video/mp4", width=320, height=240, duration=2.0004)
    await make_asset(f.services, "d.pdf", pdf, "application/pdf")
    await make_asset(f.services, "v.mp4", clip, "video/mp4")
    assert await drain(f.services) == 2
    doc = await f.services.tree.get("/content/dam/d.pdf")
    assert (doc.extracted_text, doc.asset_metadata["xmpTPg:NPages"]) == ("Alpha\nBeta", 2)
    video = await f.services.tree.get("/content/dam/v.mp4")
    assert video.asset_metadata["xmpDM:duration"] == 2.0
    assert [c.kind for c in f.media.renders] == ["pdf", "video"]


async def test_closing_the_services_closes_the_tools(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    async with faked_services(request, tmp_path, "sqlite") as f:
        assert not f.media.closed
    assert f.media.closed


async def test_a_files_hostile_metadata_is_stored_within_the_limits(faked: Faked) -> None:
    """A file whose XMP carries a 1 MB value and 10,000 properties is processed; what is
    stored of them is cut and dropped to the metadata limits, not the database's cost."""
    f = faked
    tags: dict[str, object] = {f"XMP-h:P{i}": f"value {i} " * 20 for i in range(10_000)}
    tags["XMP-dc:Description"] = "A" * 2**20
    tags["XMP-dc:Title"] = "Sunset"
    content = f.media.file(b"hostile", mime="image/jpeg", tags=tags, width=60, height=40)
    await make_asset(f.services, "hostile.jpg", content, "image/jpeg")
    assert await drain(f.services) == 1
    node = await f.services.tree.get("/content/dam/hostile.jpg")
    assert (node.asset_state, node.processing_error) == ("processed", None)
    assert limits.json_size(node.extracted) <= limits.MAX_METADATA_BYTES
    assert node.extracted["dc:title"] == "Sunset"
    assert 0 < limits.json_size(node.extracted["dc:description"]) <= limits.MAX_VALUE_BYTES
    assert node.extracted["dc:format"] == "image/jpeg"
