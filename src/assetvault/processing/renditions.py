"""AEM's rendition policy: which renditions an asset gets, named as AEM names them.

Every asset the tools can draw (an image, a PDF's first page, a video's poster frame)
gets the web rendition in JPEG and WebP within 1280 x 1280 and three thumbnails; any
other type gets the three thumbnails of an icon labelled with its extension. Boxes are
fitted within, never enlarged, so the name says the box, not the size.

A video also gets a rendition a browser plays: H.264 (baseline profile) and AAC in MP4
within 1920 x 1080, named as AEM's ``fullhd-bp`` video profile names it. A PDF also gets
its pages 2 to ``PDF_PAGES`` as JPEGs within 1280 x 1280 (page 1 is the web rendition),
named ``cq5dam.page.<n>.1280.1280.jpeg`` after AEM's pattern (AEM makes sub-assets for
pages instead, which no AEM client needs to read).
"""

from __future__ import annotations

from pathlib import Path

from assetvault.processing.ports import RenditionSpec, SourceKind

THUMBNAILS = (
    RenditionSpec("cq5dam.thumbnail.48.48.png", 48, 48, "png"),
    RenditionSpec("cq5dam.thumbnail.140.100.png", 140, 100, "png"),
    RenditionSpec("cq5dam.thumbnail.319.319.png", 319, 319, "png"),
)
WEB = RenditionSpec("cq5dam.web.1280.1280.jpeg", 1280, 1280, "jpeg")
WEB_WEBP = RenditionSpec("cq5dam.web.1280.1280.webp", 1280, 1280, "webp")
VIDEO = RenditionSpec("cq5dam.video.fullhd-bp.mp4", 1920, 1080, "mp4")
PDF_PAGES = 20  # pages with a rendition each; a longer document's others are not drawn
PAGES = tuple(
    RenditionSpec(f"cq5dam.page.{n}.1280.1280.jpeg", 1280, 1280, "jpeg", page=n - 1)
    for n in range(2, PDF_PAGES + 1)
)


def renditions_for(kind: SourceKind) -> tuple[RenditionSpec, ...]:
    if kind == "other":
        return THUMBNAILS
    if kind == "video":
        return (WEB, WEB_WEBP, *THUMBNAILS, VIDEO)
    if kind == "pdf":
        return (WEB, WEB_WEBP, *THUMBNAILS, *PAGES)
    return (WEB, WEB_WEBP, *THUMBNAILS)


def icon_label(name: str, mime: str) -> str:
    """What the icon of a type without a preview shows: the extension, else the subtype."""
    return Path(name).suffix.lstrip(".") or mime.rsplit("/", 1)[-1]
