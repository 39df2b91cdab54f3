"""The media tools port (processing/ports.py) on the tools of this machine: libmagic
sniffs, exiftool reads tags (kept running), and libvips, pdfium and ffmpeg do their
work in the sandbox, one child process per file with a deadline and a memory limit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, TypeVarTuple

from assetvault.adapters.media import formats, sandbox
from assetvault.adapters.media.exif import ExifReader
from assetvault.adapters.media.sniff import sniff
from assetvault.processing.ports import (
    Limits,
    MadeRendition,
    MediaError,
    Rendered,
    RenditionSpec,
    SourceKind,
)

_R = TypeVar("_R")
_Ts = TypeVarTuple("_Ts")

_FACTS = ("codec", "frame_rate", "page_width_pt", "page_height_pt")


class SandboxedMediaTools:
    def __init__(self) -> None:
        self._exif: ExifReader | None = None

    def source_kind(self, mime: str) -> SourceKind:
        if mime in formats.IMAGE_TYPES:
            return "image"
        if mime == "application/pdf":
            return "pdf"
        if mime.startswith("video/"):
            return "video"
        return "other"

    async def sniff(self, path: Path) -> str:
        return await asyncio.to_thread(sniff, str(path))

    @property
    def exif(self) -> ExifReader:
        if self._exif is None:
            self._exif = ExifReader()
        return self._exif

    async def read_tags(self, path: Path) -> dict[str, Any]:
        return await asyncio.to_thread(self.exif.read, str(path))

    async def render(
        self,
        kind: SourceKind,
        src: Path,
        out_dir: Path,
        specs: tuple[RenditionSpec, ...],
        limits: Limits,
        label: str,
    ) -> Rendered:
        from assetvault.adapters.media import work  # pyvips: only where media is processed

        result = await self._sandboxed(
            limits, work.process, kind, str(src), str(out_dir), specs, limits, label
        )
        return Rendered(
            renditions=tuple(
                MadeRendition(
                    name=r["name"],
                    path=Path(r["path"]),
                    mime_type=r["mime_type"],
                    width=r["width"],
                    height=r["height"],
                )
                for r in result.get("renditions", [])
            ),
            width=result.get("width"),
            height=result.get("height"),
            pages=result.get("pages"),
            duration=result.get("duration"),
            text=result.get("text"),
            facts={k: result[k] for k in _FACTS if k in result},
        )

    async def pdf_text(self, src: Path, limits: Limits) -> str:
        from assetvault.adapters.media import work

        text, _, _ = await self._sandboxed(
            limits, work.pdf_text, str(src), limits.pdf_max_pages_text, limits.text_max_chars
        )
        return str(text)

    @staticmethod
    async def _sandboxed(limits: Limits, fn: Callable[[*_Ts], _R], *args: *_Ts) -> _R:
        try:
            return await asyncio.to_thread(
                lambda: sandbox.run(
                    fn, *args, timeout=limits.tool_timeout, memory_bytes=limits.memory_bytes
                )
            )
        except sandbox.SandboxError as exc:
            raise MediaError(str(exc)) from exc

    def close(self) -> None:
        if self._exif is not None:
            self._exif.close()
            self._exif = None
