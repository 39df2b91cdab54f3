"""The ports of processing: what it asks of the media tools, in plain types.

The tools (libvips, exiftool, pdfium, ffmpeg in the sandbox: adapters/media) know how
to read a file and draw into a box; which renditions an asset gets, with which names,
boxes and formats, is processing's decision (processing/renditions.py), handed to the
tools as ``RenditionSpec``s. An adapter imports this module and nothing else of
processing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

# How the tools read a source: a still image, the first page of a PDF, a frame of a
# video, or not at all (then an icon stands for it).
SourceKind = Literal["image", "pdf", "video", "other"]


@dataclass(frozen=True)
class RenditionSpec:
    """One rendition to make: fitted within ``width`` x ``height``, never enlarged."""

    name: str
    width: int
    height: int
    format: str  # png | jpeg | webp, or mp4 (H.264/AAC, from a video)
    page: int = 0  # the PDF page to draw, from 0; a page the document lacks is not made


@dataclass(frozen=True)
class Limits:
    max_pixels: int  # larger images (or video frames) are refused, not decoded
    pdf_max_pages_text: int = 500
    text_max_chars: int = 1_000_000
    tool_timeout: float = 120.0  # seconds for the work on one file
    memory_bytes: int = 0  # address space the work on one file may use; 0: unlimited
    video_max_seconds: float = 600.0  # a longer video's web rendition holds its start
    video_max_bytes: int = 256 * 2**20  # the web rendition of a video stops at this size


@dataclass(frozen=True)
class MadeRendition:
    name: str
    path: Path  # in the output directory the caller gave
    mime_type: str
    width: int
    height: int


@dataclass(frozen=True)
class Rendered:
    """What the tools made of one file, and the facts they found on the way."""

    renditions: tuple[MadeRendition, ...] = ()
    width: int | None = None
    height: int | None = None
    pages: int | None = None
    duration: float | None = None  # seconds
    text: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # tool-specific extras (codec, ...)


class MediaError(Exception):
    """The tools could not finish with this file: it was refused (over a limit), is
    malformed, or the work crashed or ran out of time. The message is the reason shown."""


class MediaTools(Protocol):
    def source_kind(self, mime: str) -> SourceKind:
        """How the tools can read content of this type."""
        ...

    async def sniff(self, path: Path) -> str:
        """The content type from the bytes, not from the name."""
        ...

    async def read_tags(self, path: Path) -> dict[str, Any]:
        """Every metadata tag of the file, keyed ``<group>:<tag>`` as exiftool names
        them (-G1), numbers unformatted."""
        ...

    async def render(
        self,
        kind: SourceKind,
        src: Path,
        out_dir: Path,
        specs: tuple[RenditionSpec, ...],
        limits: Limits,
        label: str,
    ) -> Rendered:
        """Make ``specs`` from ``src`` into ``out_dir``; for kind ``other``, from an icon
        showing ``label``. Raises MediaError."""
        ...

    async def pdf_text(self, src: Path, limits: Limits) -> str:
        """The text of a PDF's first ``limits.pdf_max_pages_text`` pages, up to
        ``limits.text_max_chars``. Raises MediaError."""
        ...

    def close(self) -> None:
        """Stop whatever the tools keep running between files."""
        ...
