"""Factories for real media files the processing tests feed through the pipeline; each
is made on the spot with the tools the pipeline itself uses (libvips, exiftool, ffmpeg,
Pillow), so the tests ship no binaries.

Each file is made once per test process and written again from memory after that (the
tools' output does not depend on the file's name, only on the arguments and the suffix):
the tests that feed the same photo through the pipeline do not pay exiftool and ffmpeg
every time.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import struct
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyvips

from assetvault.processing.ports import Limits, MediaTools, Rendered, RenditionSpec, SourceKind

_Maker = TypeVar("_Maker", bound=Callable[..., Any])
_made: dict[tuple[object, ...], bytes | None] = {}


def made_once(make: _Maker) -> _Maker:
    """``make(path, *args)`` writes a file at ``path`` (returning it, or None when it
    cannot): run once per process for each arguments and suffix, then copied."""

    @functools.wraps(make)
    def cached(path: Path, *args: Any, **kwargs: Any) -> Path | None:
        key = (make.__name__, path.suffix, args, tuple(sorted(kwargs.items())))
        if key not in _made:
            made = make(path, *args, **kwargs)
            _made[key] = None if made is None else path.read_bytes()
            return made  # type: ignore[no-any-return]
        data = _made[key]
        if data is None:
            return None
        path.write_bytes(data)
        return path

    return cached  # type: ignore[return-value]


def _gradient(width: int, height: int) -> pyvips.Image:
    x = pyvips.Image.xyz(width, height)
    r = (x[0] * (255 / max(1, width - 1))).cast("uchar")
    g = (x[1] * (255 / max(1, height - 1))).cast("uchar")
    b = (r / 2 + 64).cast("uchar")
    return r.bandjoin([g, b]).copy(interpretation="srgb")


@made_once
def jpeg_with_metadata(path: Path, width: int = 600, height: int = 400) -> Path:
    """A JPEG with EXIF (orientation 6: shown rotated 90 degrees), IPTC and XMP."""
    _gradient(width, height).jpegsave(str(path), Q=90)
    subprocess.run(
        [
            "exiftool",
            "-q",
            "-overwrite_original",
            "-n",
            "-EXIF:Orientation=6",
            "-EXIF:Make=Canon",
            "-EXIF:Model=EOS R5",
            "-EXIF:DateTimeOriginal=2024:05:06 07:08:09",
            "-EXIF:ExposureTime=0.004",
            "-EXIF:FNumber=2.8",
            "-EXIF:ISO=200",
            "-XMP-dc:Title=Sunset over the bay",
            "-XMP-dc:Description=Evening light",
            "-XMP-dc:Subject=sunset",
            "-XMP-dc:Subject=bay",
            "-XMP-dc:Creator=Jane Doe",
            "-XMP-xmp:Rating=4",
            "-IPTC:City=Marseille",
            "-IPTC:ObjectName=IPTC title that XMP overrides",
            str(path),
        ],
        check=True,
    )
    return path


@made_once
def cmyk_jpeg(path: Path, width: int = 300, height: int = 200) -> Path:
    _gradient(width, height).colourspace("cmyk").jpegsave(str(path), Q=90)
    return path


@made_once
def png16_with_alpha(path: Path, width: int = 500, height: int = 250) -> Path:
    rgb = (_gradient(width, height).cast("ushort") * 257).copy(interpretation="rgb16")
    alpha = (pyvips.Image.xyz(width, height)[0] * (65535 / width)).cast("ushort")
    rgb.bandjoin(alpha).pngsave(str(path), bitdepth=16)
    return path


def pdf_with_pages(path: Path, texts: list[str]) -> Path:
    """A small, valid PDF: one page per text, Helvetica, US Letter."""
    objects: list[bytes] = []
    page_ids = [3 + 2 * i for i in range(len(texts))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{i} 0 R" for i in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(texts)} >>".encode())
    font_id = 3 + 2 * len(texts)
    for i, text in enumerate(texts):
        content = f"BT /F1 24 Tf 72 700 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font "
            f"<< /F1 {font_id} 0 R >> >> /Contents {page_ids[i] + 1} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    path.write_bytes(bytes(out))
    return path


@made_once
def video(path: Path, seconds: int = 2, width: int = 320, height: int = 240) -> Path:
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-nostdin",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc=duration={seconds}:size={width}x{height}:rate=25",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )
    return path


@made_once
def heic(path: Path, width: int = 400, height: int = 300) -> Path | None:
    """A HEIC made with pillow-heif, or None when its encoder is not available."""
    try:
        import pillow_heif
        from PIL import Image

        pillow_heif.register_heif_opener()
        Image.new("RGB", (width, height), (200, 80, 40)).save(path, format="HEIF", quality=80)
    except Exception:
        return None
    return path


def png_bomb(path: Path, width: int = 50_000, height: int = 50_000) -> Path:
    """A PNG of a few KB whose header claims 50000x50000 pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" + b"\x00" * width, 9)  # one row only
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )
    return path


@made_once
def truncated_jpeg(path: Path) -> Path:
    whole = path.with_suffix(".whole.jpg")
    _gradient(800, 600).jpegsave(str(whole), Q=95)
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    whole.unlink()
    return path


_RENDER_CACHE_MAX_BYTES = 16 * 2**20  # larger sources are rendered every time


@dataclass
class _Remembered:
    rendered: Rendered
    files: dict[str, bytes]  # file name in the output directory -> its bytes


class RememberedMediaTools:
    """The real media tools, except that what ``render`` and ``pdf_text`` made of a given
    source (its bytes, the specs, the limits, the label) is remembered in ``memory`` and
    handed out again: the API tests, which process the same photos over and over, pay
    the sandboxed work once per process. Failures are never remembered (each is met
    again), sniffing and tags always run. The processing tests (tests/unit/processing)
    use the tools as they are."""

    def __init__(
        self, real: MediaTools, memory: dict[tuple[object, ...], Any], *, close_real: bool = True
    ) -> None:
        self.real = real
        self.memory = memory
        self.close_real = close_real  # False: the real tools outlive this container

    def source_kind(self, mime: str) -> SourceKind:
        return self.real.source_kind(mime)

    async def sniff(self, path: Path) -> str:
        return await self.real.sniff(path)

    async def read_tags(self, path: Path) -> dict[str, Any]:
        return await self.real.read_tags(path)

    @staticmethod
    def _digest(path: Path) -> str | None:
        if path.stat().st_size > _RENDER_CACHE_MAX_BYTES:
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()

    async def render(
        self,
        kind: SourceKind,
        src: Path,
        out_dir: Path,
        specs: tuple[RenditionSpec, ...],
        limits: Limits,
        label: str,
    ) -> Rendered:
        digest = self._digest(src)
        key = ("render", kind, digest, specs, limits, label)
        if digest is None:
            return await self.real.render(kind, src, out_dir, specs, limits, label)
        seen = self.memory.get(key)
        if seen is None:
            rendered = await self.real.render(kind, src, out_dir, specs, limits, label)
            files = {r.path.name: r.path.read_bytes() for r in rendered.renditions}
            self.memory[key] = _Remembered(rendered, files)
            return rendered
        for name, data in seen.files.items():
            (out_dir / name).write_bytes(data)
        return dataclasses.replace(
            seen.rendered,
            renditions=tuple(
                dataclasses.replace(r, path=out_dir / r.path.name) for r in seen.rendered.renditions
            ),
            facts=copy.deepcopy(seen.rendered.facts),
        )

    async def pdf_text(self, src: Path, limits: Limits) -> str:
        digest = self._digest(src)
        if digest is None:
            return await self.real.pdf_text(src, limits)
        key = ("pdf_text", digest, limits)
        if key not in self.memory:
            self.memory[key] = await self.real.pdf_text(src, limits)
        return str(self.memory[key])

    def close(self) -> None:
        if self.close_real:
            self.real.close()
