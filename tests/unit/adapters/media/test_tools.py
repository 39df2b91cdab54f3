"""The media tools port on the real tools: what processing and search receive."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from assetvault.adapters.media.tools import SandboxedMediaTools
from assetvault.processing.ports import Limits, MediaError, RenditionSpec
from assetvault.processing.renditions import renditions_for
from tests import media

LIMITS = Limits(max_pixels=200_000_000, tool_timeout=60, memory_bytes=2 * 2**30)


@pytest.fixture
async def tools() -> AsyncIterator[SandboxedMediaTools]:
    # Async, so exiftool is stopped before the test's loop ends its worker threads (the
    # thread that started exiftool ending would end exiftool too).
    t = SandboxedMediaTools()
    yield t
    t.close()


@pytest.fixture
def out(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


async def test_sniff_tags_and_renditions_of_a_photo(
    tools: SandboxedMediaTools, tmp_path: Path, out: Path
) -> None:
    src = media.jpeg_with_metadata(tmp_path / "a.bin", 600, 400)
    mime = await tools.sniff(src)
    assert (mime, tools.source_kind(mime)) == ("image/jpeg", "image")
    tags = await tools.read_tags(src)
    assert tags["IFD0:Make"] == "Canon"
    rendered = await tools.render("image", src, out, renditions_for("image"), LIMITS, "jpg")
    assert (rendered.width, rendered.height, rendered.pages) == (600, 400, 1)
    assert {r.name: (r.width, r.height, r.mime_type) for r in rendered.renditions} == {
        "cq5dam.web.1280.1280.jpeg": (400, 600, "image/jpeg"),
        "cq5dam.web.1280.1280.webp": (400, 600, "image/webp"),
        "cq5dam.thumbnail.48.48.png": (32, 48, "image/png"),
        "cq5dam.thumbnail.140.100.png": (67, 100, "image/png"),
        "cq5dam.thumbnail.319.319.png": (213, 319, "image/png"),
    }
    assert all(r.path.parent == out and r.path.stat().st_size > 0 for r in rendered.renditions)


async def test_only_the_specs_asked_for_are_made(
    tools: SandboxedMediaTools, tmp_path: Path, out: Path
) -> None:
    src = media.cmyk_jpeg(tmp_path / "c.jpg", 300, 200)
    specs = (RenditionSpec("custom.100.100.webp", 100, 100, "webp"),)
    rendered = await tools.render("image", src, out, specs, LIMITS, "jpg")
    assert [(r.name, r.width, r.height) for r in rendered.renditions] == [
        ("custom.100.100.webp", 100, 67)
    ]
    assert [p.name for p in out.iterdir()] == ["custom.100.100.webp"]


def test_source_kinds() -> None:
    tools = SandboxedMediaTools()
    assert [
        tools.source_kind(m)
        for m in ("image/png", "application/pdf", "video/mp4", "text/csv", "image/x-unknown")
    ] == ["image", "pdf", "video", "other", "other"]


async def test_refusals_and_crashes_are_media_errors(
    tools: SandboxedMediaTools, tmp_path: Path, out: Path
) -> None:
    bomb = media.png_bomb(tmp_path / "bomb.png")
    with pytest.raises(MediaError, match="50000x50000 pixels"):
        await tools.render("image", bomb, out, renditions_for("image"), LIMITS, "png")
    broken = media.truncated_jpeg(tmp_path / "t.jpg")
    with pytest.raises(MediaError, match="Premature end"):
        await tools.render("image", broken, out, renditions_for("image"), LIMITS, "jpg")


async def test_pdf_text_and_facts(tools: SandboxedMediaTools, tmp_path: Path, out: Path) -> None:
    src = media.pdf_with_pages(tmp_path / "d.pdf", ["One", "Two", "Three"])
    assert await tools.pdf_text(src, Limits(max_pixels=10**8, pdf_max_pages_text=2)) == "One\nTwo"
    rendered = await tools.render("pdf", src, out, renditions_for("pdf"), LIMITS, "pdf")
    assert (rendered.pages, rendered.text) == (3, "One\nTwo\nThree")
    assert rendered.facts == {"page_width_pt": 612, "page_height_pt": 792}
    not_pdf = tmp_path / "x.pdf"
    not_pdf.write_bytes(b"%PDF-1.4 nothing else")
    with pytest.raises(MediaError):
        await tools.pdf_text(not_pdf, LIMITS)
