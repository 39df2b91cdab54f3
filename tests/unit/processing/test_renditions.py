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
        assert got == expected, kind


def test_other_types_get_the_thumbnails_of_an_icon() -> None:
    assert [s.name for s in renditions_for("other")] == [
        "cq5dam.thumbnail.48.48.png",
        "cq5dam.thumbnail.140.100.png",
        "cq5dam.thumbnail.319.319.png",
    ]
    assert icon_label("notes.csv", "text/csv") == "csv"
    assert icon_label("README", "text/plain") == "plain"
