"""AEM's rendition policy, which processing hands to the media tools."""

from __future__ import annotations

from assetvault.processing.renditions import icon_label, renditions_for


def test_drawable_sources_get_the_web_renditions_and_thumbnails() -> None:
    expected = [
        ("cq5dam.web.1280.1280.jpeg", 1280, 1280, "jpeg"),
        ("cq5dam.web.1280.1280.webp", 1280, 1280, "webp"),
        ("cq5dam.thumbnail.48.48.png", 48, 48, "png"),
        ("cq5dam.thumbnail.140.100.png", 140, 100, "png"),
        ("cq5dam.thumbnail.319.319.png", 319, 319, "png"),
    ]
    for kind in ("image", "pdf", "video"):
        got = [(s.name, s.width, s.height, s.format) for s in renditions_for(kind)]
        assert got[:5] == expected, kind
    assert len(renditions_for("image")) == 5


def test_a_video_also_gets_a_web_playable_rendition() -> None:
    extra = renditions_for("video")[5:]
    assert [(s.name, s.width, s.height, s.format) for s in extra] == [
        ("cq5dam.video.fullhd-bp.mp4", 1920, 1080, "mp4")
    ]


def test_a_pdf_also_gets_its_pages_2_to_20() -> None:
    extra = renditions_for("pdf")[5:]
    assert [(s.name, s.page, s.format) for s in extra] == [
        (f"cq5dam.page.{n}.1280.1280.jpeg", n - 1, "jpeg") for n in range(2, 21)
    ]
    assert all(s.page == 0 for s in renditions_for("pdf")[:5])


def test_other_types_get_the_thumbnails_of_an_icon() -> None:
    assert [s.name for s in renditions_for("other")] == [
        "cq5dam.thumbnail.48.48.png",
        "cq5dam.thumbnail.140.100.png",
        "cq5dam.thumbnail.319.319.png",
    ]
    assert icon_label("notes.csv", "text/csv") == "csv"
    assert icon_label("README", "text/plain") == "plain"
