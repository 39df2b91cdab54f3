"""What the media tools decode, known without importing them (an API process has no
use for libvips)."""

from __future__ import annotations

# MIME types libvips decodes here (Debian's build: poppler, libheif, magick, ...).
IMAGE_TYPES = {
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/tiff",
    "image/webp",
    "image/heic",
    "image/heif",
    "image/avif",
    "image/bmp",
    "image/x-ms-bmp",
    "image/vnd.adobe.photoshop",
    "image/jp2",
    "image/jxl",
    "image/svg+xml",
    "image/x-portable-pixmap",
}
