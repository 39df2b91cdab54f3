"""Processing from a stored original to ``processed`` (or ``failed``), run by a worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from assetvault.adapters.database.tables import jobs
from assetvault.services import Services
from assetvault.tree.models import Node
from tests import media
from tests.factories import make_asset
from tests.factories import process_all as drain


async def chunks(path: Path) -> AsyncIterator[bytes]:
    yield path.read_bytes()


async def store(services: Services, path: Path, name: str, mime: str) -> Node:
    node = await make_asset(services, name, path.read_bytes(), mime)
    assert node.asset_state == "processing"
    return node


async def test_jpeg_metadata_and_renditions(services: Services, tmp_path: Path) -> None:
    src = media.jpeg_with_metadata(tmp_path / "photo.jpg", 600, 400)
    node = await store(services, src, "photo.jpg", "application/octet-stream")
    assert await drain(services) == 1
    node = await services.tree.get("/content/dam/photo.jpg")
    assert node.asset_state == "processed" and node.processing_error is None
    assert node.mime_type == "image/jpeg"  # sniffed, not the declared octet-stream
    meta = node.asset_metadata
    expected = {
        "dc:title": "Sunset over the bay",
        "dc:description": "Evening light",
        "dc:subject": ["sunset", "bay"],
        "dc:creator": ["Jane Doe"],
        "xmp:Rating": 4,
        "photoshop:City": "Marseille",
        "tiff:Make": "Canon",
        "tiff:Model": "EOS R5",
        "tiff:Orientation": 6,
        "tiff:ImageWidth": 600,
        "tiff:ImageLength": 400,
        "exif:DateTimeOriginal": "2024-05-06T07:08:09",
        "exif:ExposureTime": 0.004,
        "exif:FNumber": 2.8,
        "exif:ISO": 200,
        "dc:format": "image/jpeg",
    }
    assert {k: meta.get(k) for k in expected} == expected
    renditions = {r.name: r for r in await services.tree.renditions(node)}
    assert {n: (r.width, r.height, r.mime_type, r.origin) for n, r in renditions.items()} == {
        "cq5dam.thumbnail.48.48.png": (32, 48, "image/png", "generated"),
        "cq5dam.thumbnail.140.100.png": (67, 100, "image/png", "generated"),
        "cq5dam.thumbnail.319.319.png": (213, 319, "image/png", "generated"),
        "cq5dam.web.1280.1280.jpeg": (400, 600, "image/jpeg", "generated"),
        "cq5dam.web.1280.1280.webp": (400, 600, "image/webp", "generated"),
    }
    for r in renditions.values():
        assert await services.blobs.size(r.blob_key) == r.size > 0


async def test_pdf_text_and_video_facts(services: Services, tmp_path: Path) -> None:
    pdf = media.pdf_with_pages(tmp_path / "d.pdf", ["Alpha page", "Beta page"])
    mp4 = media.video(tmp_path / "v.mp4", seconds=2)
    await store(services, pdf, "d.pdf", "application/pdf")
    await store(services, mp4, "v.mp4", "video/mp4")
    assert await drain(services) == 2
    doc = await services.tree.get("/content/dam/d.pdf")
    assert doc.asset_state == "processed"
    assert doc.extracted_text == "Alpha page\nBeta page"
    assert doc.asset_metadata["xmpTPg:NPages"] == 2
    clip = await services.tree.get("/content/dam/v.mp4")
    assert clip.asset_state == "processed"
    assert clip.asset_metadata["xmpDM:duration"] == pytest.approx(2.0, abs=0.05)
    assert (clip.asset_metadata["tiff:ImageWidth"], clip.asset_metadata["tiff:ImageLength"]) == (
        320,
        240,
    )
    made = {r.name: r for r in await services.tree.renditions(clip)}
    assert len(made) == 6
    web = made["cq5dam.video.fullhd-bp.mp4"]
    assert (web.mime_type, web.width, web.height) == ("video/mp4", 320, 240)
    assert await services.blobs.size(web.blob_key) == web.size > 0
    pages = {r.name: r for r in await services.tree.renditions(doc)}
    assert len(pages) == 6 and pages["cq5dam.page.2.1280.1280.jpeg"].mime_type == "image/jpeg"


async def test_unknown_types_are_processed_with_a_generic_thumbnail(
    services: Services, tmp_path: Path
) -> None:
    src = tmp_path / "notes.csv"
    src.write_text("a,b\n1,2\n")
    await store(services, src, "notes.csv", "text/csv")
    await drain(services)
    node = await services.tree.get("/content/dam/notes.csv")
    assert node.asset_state == "processed"
    assert node.mime_type == "text/csv"  # libmagic says text/plain; the declared type is kept
    names = sorted(r.name for r in await services.tree.renditions(node))
    assert names == [
        "cq5dam.thumbnail.140.100.png",
        "cq5dam.thumbnail.319.319.png",
        "cq5dam.thumbnail.48.48.png",
    ]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (media.png_bomb, "50000x50000 pixels"),
        (media.truncated_jpeg, "Premature end"),
    ],
)
async def test_bad_files_end_failed_with_a_reason(
    services: Services, tmp_path: Path, make: object, reason: str
) -> None:
    src = make(tmp_path / "bad.img")  # type: ignore[operator]
    await store(services, src, "bad.img", "application/octet-stream")
    ok = media.cmyk_jpeg(tmp_path / "ok.jpg")
    await store(services, ok, "ok.jpg", "image/jpeg")
    assert await drain(services) == 2  # the worker lives on
    bad = await services.tree.get("/content/dam/bad.img")
    assert bad.asset_state == "failed"
    assert reason in (bad.processing_error or "")
    assert (await services.tree.get("/content/dam/ok.jpg")).asset_state == "processed"
    async with services.db.read() as conn:
        states = sorted(r.state for r in await conn.execute(select(jobs.c.state)))
    assert states == ["failed", "succeeded"]


async def test_new_version_is_processed_again_and_stale_jobs_do_nothing(
    services: Services, tmp_path: Path
) -> None:
    first = media.cmyk_jpeg(tmp_path / "a.jpg", 300, 200)
    second = media.jpeg_with_metadata(tmp_path / "b.jpg", 600, 400)
    await store(services, first, "pic.jpg", "image/jpeg")
    await services.tree.store_original(
        "/content/dam",
        "pic.jpg",
        await services.blobs.put(chunks(second)),
        mime_type="image/jpeg",
        user="tester",
        create_version=True,
    )
    assert await drain(services) == 2
    node = await services.tree.get("/content/dam/pic.jpg")
    assert node.asset_state == "processed"
    assert node.asset_metadata["dc:title"] == "Sunset over the bay"  # from the new original
    web = {r.name: r for r in await services.tree.renditions(node)}["cq5dam.web.1280.1280.jpeg"]
    assert (web.width, web.height) == (400, 600)


async def test_reprocess_and_user_metadata_survives(services: Services, tmp_path: Path) -> None:
    src = media.jpeg_with_metadata(tmp_path / "a.jpg")
    node = await store(services, src, "a.jpg", "image/jpeg")
    await drain(services)
    async with services.writes.change("admin") as ch:  # a user's edits: a title, a removal
        await ch.set_properties(node, {"dc:title": "Mine", "dc:description": None})
    node = await services.processing.reprocess("/content/dam/a.jpg", user="admin")
    assert node.asset_state == "processing"
    await drain(services)
    node = await services.tree.get("/content/dam/a.jpg")
    assert node.asset_state == "processed"
    assert node.asset_metadata["dc:title"] == "Mine"
    assert "dc:description" not in node.asset_metadata
    assert node.asset_metadata["dc:creator"] == ["Jane Doe"]


async def test_failed_asset_can_be_reprocessed_after_a_limit_change(
    services: Services, tmp_path: Path
) -> None:
    services.settings.processing_max_pixels = 1000
    src = media.cmyk_jpeg(tmp_path / "c.jpg", 300, 200)
    await store(services, src, "c.jpg", "image/jpeg")
    await drain(services)
    assert (await services.tree.get("/content/dam/c.jpg")).asset_state == "failed"
    services.settings.processing_max_pixels = 10**8
    await services.processing.reprocess("/content/dam/c.jpg", user="admin")
    await drain(services)
    node = await services.tree.get("/content/dam/c.jpg")
    assert node.asset_state == "processed" and node.processing_error is None
