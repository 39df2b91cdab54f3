"""Media work that runs inside the sandbox (see sandbox.py): renditions with libvips,
PDF text with pdfium, video posters with ffmpeg. Pure functions of files: everything
they make is written into ``out_dir`` and described in the returned dict. Which
renditions to make comes in as specs (processing/renditions.py holds AEM's)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assetvault.adapters.media import formats
from assetvault.processing.ports import Limits, RenditionSpec

os.environ.setdefault("VIPS_CONCURRENCY", "1")  # one job per core; parallelism is in workers

import pyvips

pyvips.cache_set_max(0)  # each job reads its file once; a cache only holds memory


MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "mp4": "video/mp4"}

# MIME types libvips decodes here (kept beside the tools, which need them without pyvips).
IMAGE_TYPES = formats.IMAGE_TYPES


class Refused(Exception):
    """The file is not processed, on purpose (over a limit); the reason is shown."""


def _to_srgb8(image: pyvips.Image) -> pyvips.Image:
    if image.interpretation not in ("srgb", "b-w") or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return image


def _plain_srgb(header: pyvips.Image) -> bool:
    """8-bit sRGB or grey without an embedded profile: already what renditions are."""
    return bool(
        header.interpretation in ("srgb", "b-w")
        and header.format == "uchar"
        and header.get_typeof("icc-profile-data") == 0
    )


def _save(image: pyvips.Image, spec: RenditionSpec, out_dir: Path) -> dict[str, Any]:
    path = out_dir / spec.name
    if spec.format == "png":
        image.pngsave(str(path), compression=6, strip=True)
    elif spec.format == "jpeg":
        if image.hasalpha():
            image = image.flatten(background=[255, 255, 255])
        image.jpegsave(str(path), Q=85, strip=True, optimize_coding=True)
    else:
        # effort 1: a third of the default's time, and no larger on photographs
        image.webpsave(str(path), Q=80, strip=True, effort=1)
    return {
        "name": spec.name,
        "path": str(path),
        "mime_type": MIME[spec.format],
        "width": image.width,
        "height": image.height,
    }


Specs = Sequence[RenditionSpec]


def _box(specs: Specs) -> tuple[int, int]:
    """The largest box of the specs: the source is shrunk into it once, on load."""
    return max(s.width for s in specs), max(s.height for s in specs)


def _renditions_from(source: pyvips.Image, specs: Specs, out_dir: Path) -> list[dict[str, Any]]:
    """Each spec from ``source`` (already shrunk into the largest box): the specs of that
    box are saved as they are, the smaller ones shrunk from it, each from the smallest
    one made so far that gives the very size shrinking ``source`` would (a 319 thumbnail
    is a sixteenth of a 1280 one to shrink from)."""
    base = _to_srgb8(source).copy_memory()
    box = _box(specs)
    made: dict[int, dict[str, Any]] = {}
    smaller: list[pyvips.Image] = []  # thumbnails made, in memory, the smallest last
    for i in sorted(range(len(specs)), key=lambda i: -specs[i].width * specs[i].height):
        spec = specs[i]
        if (spec.width, spec.height) == box:
            made[i] = _save(base, spec, out_dir)
            continue
        # Lazy: the size is known without computing a pixel.
        thumb = base.thumbnail_image(spec.width, height=spec.height, size="down")
        for start in reversed(smaller):
            quick = start.thumbnail_image(spec.width, height=spec.height, size="down")
            if (quick.width, quick.height) == (thumb.width, thumb.height):
                thumb = quick
                break
        thumb = thumb.copy_memory()
        smaller.append(thumb)
        made[i] = _save(thumb, spec, out_dir)
    return [made[i] for i in range(len(specs))]


def image(
    src: str, out_dir: str, specs: Specs, limits: Limits, *, loader_options: str = ""
) -> dict[str, Any]:
    """Renditions of a still image (first page/frame), with EXIF orientation applied and
    colour converted to sRGB; shrink-on-load keeps memory bounded for large JPEGs."""
    header = pyvips.Image.new_from_file(src + loader_options, access="sequential")
    width, height = header.width, header.height
    pages = header.get("n-pages") if "n-pages" in header.get_fields() else 1
    if header.get_typeof("page-height"):
        height = header.get("page-height")
    if width * height > limits.max_pixels:
        raise Refused(
            f"the image has {width}x{height} pixels, more than the limit of "
            f"{limits.max_pixels} pixels"
        )
    result: dict[str, Any] = {"width": width, "height": height, "pages": pages, "renditions": []}
    if specs:
        box_width, box_height = _box(specs)
        # A colour transform only where there is something to transform: an untagged
        # sRGB or grey image would go through lcms from sRGB to sRGB (a fifth of the
        # work on a 12 MP JPEG); anything else (a profile, CMYK, 16 bits) still does.
        plain = _plain_srgb(header)
        managed = {} if plain else {"export_profile": "srgb"}
        # Lazy: only the header is read until its pixels are asked for.
        web = pyvips.Image.thumbnail(
            src + loader_options,
            box_width,
            height=box_height,
            size="down",
            fail_on="truncated",
            **managed,
        )
        if plain and not loader_options and header.get("vips-loader") == "jpegload":
            web = _jpeg_shrunk_on_load(src, header, web)
        result["renditions"] = _renditions_from(web, specs, Path(out_dir))
    return result


_TURNED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def _jpeg_shrunk_on_load(src: str, header: pyvips.Image, web: pyvips.Image) -> pyvips.Image:
    """``web`` (libvips's thumbnail) made from a JPEG decoded at the largest scale that
    still covers it. The thumbnail keeps a factor of two for its final resize, so a 12 MP
    photo fitted into 1280 is decoded in full; libjpeg's scaled decode (an IDCT at 1/2,
    1/4, 1/8, not a block average) then a Lanczos resize gives the same size and kind of
    picture for a third less work. Anything else keeps the thumbnail as it is."""
    orientation = header.get("orientation") if header.get_typeof("orientation") else 1
    turned = orientation in _TURNED
    width, height = (web.height, web.width) if turned else (web.width, web.height)
    shrink = next(
        (s for s in (8, 4, 2) if header.width / s >= width and header.height / s >= height), 1
    )
    if shrink == 1:
        return web
    load = pyvips.Image.new_from_file(src, shrink=shrink, access="sequential", fail_on="truncated")
    made = load.resize(width / load.width, vscale=height / load.height)
    if orientation != 1:
        # Turning or flipping reads out of order: from memory, not the sequential decode.
        made = made.copy_memory().autorot()
    if (made.width, made.height) != (web.width, web.height):
        return web
    return made


def pdf_text(src: str, max_pages: int, max_chars: int) -> tuple[str, int, tuple[int, int]]:
    """A PDF's text (its first pages, up to ``max_chars``), page count and first page's
    size in points."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(src)
    try:
        page_count = len(document)
        texts: list[str] = []
        size = 0
        for i in range(min(page_count, max_pages)):
            page = document[i]
            textpage = page.get_textpage()
            text = textpage.get_text_bounded()
            textpage.close()
            page.close()
            texts.append(text)
            size += len(text)
            if size >= max_chars:
                break
        width, height = (round(v) for v in document[0].get_size()) if page_count else (0, 0)
    finally:
        document.close()
    return "\n".join(texts)[:max_chars], page_count, (width, height)


def pdf(src: str, out_dir: str, specs: Specs, limits: Limits) -> dict[str, Any]:
    """First page as renditions (poppler through libvips), the later pages the specs ask
    for as one rendition each, all text through pdfium."""
    text, page_count, (width, height) = pdf_text(
        src, limits.pdf_max_pages_text, limits.text_max_chars
    )
    first = [s for s in specs if s.page == 0]
    result = (
        image(src, out_dir, first, limits, loader_options="[page=0,dpi=150]") if page_count else {}
    )
    for spec in specs:
        if 0 < spec.page < page_count:
            # At 150 dpi, then fitted: an A4 page is 1240 x 1754 before the fit.
            source = f"{src}[page={spec.page},dpi=150]"
            header = pyvips.Image.new_from_file(source, access="sequential")
            if header.width * header.height > limits.max_pixels:
                raise Refused(
                    f"page {spec.page + 1} is over the limit of {limits.max_pixels} pixels"
                )
            page = pyvips.Image.thumbnail(source, spec.width, height=spec.height, size="down")
            result["renditions"].append(_save(_to_srgb8(page), spec, Path(out_dir)))
    result.update(
        {
            "page_width_pt": width,
            "page_height_pt": height,
            "pages": page_count,
            "text": text,
        }
    )
    return result


def video(src: str, out_dir: str, specs: Specs, limits: Limits) -> dict[str, Any]:
    """Duration and dimensions from ffprobe; a poster frame from ffmpeg, then renditions."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", src],
        capture_output=True,
        timeout=limits.tool_timeout,
        check=False,
    )
    if probe.returncode != 0:
        raise RuntimeError("ffprobe could not read the video: " + probe.stderr.decode()[:200])
    info = json.loads(probe.stdout or b"{}")
    stream = next((s for s in info.get("streams", []) if s.get("codec_type") == "video"), None)
    if stream is None:
        raise RuntimeError("the file has no video stream")
    duration = float(info.get("format", {}).get("duration") or stream.get("duration") or 0)
    width, height = int(stream.get("width", 0)), int(stream.get("height", 0))
    if width * height > limits.max_pixels:
        raise Refused(f"the video frame of {width}x{height} pixels is over the limit")
    stills = [s for s in specs if s.format != "mp4"]
    playable = [s for s in specs if s.format == "mp4"]
    poster = Path(out_dir) / "poster.png"
    at = min(1.0, duration / 2) if duration else 0
    grab = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-nostdin",
            "-y",
            "-ss",
            f"{at:.3f}",
            "-i",
            src,
            "-frames:v",
            "1",
            str(poster),
        ],
        capture_output=True,
        timeout=limits.tool_timeout,
        check=False,
    )
    if grab.returncode != 0 or not poster.exists():
        raise RuntimeError("ffmpeg could not take a poster frame: " + grab.stderr.decode()[:200])
    renditions = []
    if stills:
        box_width, box_height = _box(stills)
        web = pyvips.Image.thumbnail(str(poster), box_width, height=box_height, size="down")
        renditions = _renditions_from(web, stills, Path(out_dir))
    poster.unlink()
    for spec in playable:
        renditions.append(_transcode(src, spec, Path(out_dir), limits))
    return {
        "width": width,
        "height": height,
        "duration": duration,
        "codec": stream.get("codec_name"),
        "frame_rate": stream.get("avg_frame_rate"),
        "renditions": renditions,
    }


def _transcode(src: str, spec: RenditionSpec, out_dir: Path, limits: Limits) -> dict[str, Any]:
    """A rendition every browser plays: H.264 baseline and AAC in MP4, fitted within the
    spec's box (never enlarged, even sides as H.264 wants), moov first so playback starts
    before the whole file is read. Bounded: at most ``video_max_seconds`` of the video,
    at most ``video_max_bytes`` of output, the sandbox's deadline and memory limit, and a
    CPU-time limit of its own. The source's tags (places, names) are not copied."""
    path = out_dir / spec.name
    fit = (
        f"scale='min({spec.width},iw)':'min({spec.height},ih)'"
        ":force_original_aspect_ratio=decrease:force_divisible_by=2"
    )
    # ffmpeg stops at its -fs cap only after the frames the encoder holds back (its
    # lookahead) and the moov box: room for them, so the file stays within the limit.
    cap = max(1, limits.video_max_bytes - max(limits.video_max_bytes // 10, 4 * 2**20))
    argv = [
        "ffmpeg", "-v", "error", "-nostdin", "-y", "-i", src,
        "-t", f"{limits.video_max_seconds:g}",
        "-map", "0:v:0", "-map", "0:a:0?", "-sn", "-dn", "-map_metadata", "-1",
        "-vf", fit,
        "-c:v", "libx264", "-profile:v", "baseline", "-preset", "veryfast", "-crf", "23",
        "-pix_fmt", "yuv420p", "-threads", "2",
        "-c:a", "aac", "-b:a", "128k", "-ac", "2",
        "-movflags", "+faststart", "-fs", str(cap),
        str(path),
    ]  # fmt: skip
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as ffmpeg:
        # A CPU-time limit on ffmpeg itself (two threads encode), set from outside rather
        # than in a preexec_fn (unsafe in a process with threads): it ends ffmpeg even
        # if the sandbox child that started it is killed first.
        cpu = int(limits.tool_timeout * 2) + 1
        resource.prlimit(ffmpeg.pid, resource.RLIMIT_CPU, (cpu, cpu))
        try:
            _, errors = ffmpeg.communicate(timeout=limits.tool_timeout)
        except subprocess.TimeoutExpired:
            ffmpeg.kill()
            raise
    if ffmpeg.returncode != 0 or not path.exists():
        raise RuntimeError("ffmpeg could not make the web video: " + errors.decode()[:200])
    if path.stat().st_size > limits.video_max_bytes:
        raise Refused(f"the web video is over the limit of {limits.video_max_bytes} bytes")
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "json", str(path)],
        capture_output=True,
        timeout=limits.tool_timeout,
        check=False,
    )  # fmt: skip
    stream = (json.loads(probe.stdout or b"{}").get("streams") or [{}])[0]
    return {
        "name": spec.name,
        "path": str(path),
        "mime_type": MIME["mp4"],
        "width": int(stream.get("width", 0)),
        "height": int(stream.get("height", 0)),
    }


def generic(out_dir: str, specs: Specs, label: str) -> dict[str, Any]:
    """A plain document icon with the file's extension, for types without a preview."""
    side = 319
    page = pyvips.Image.black(side, side, bands=3).new_from_image([245, 245, 245])
    sheet = pyvips.Image.black(200, 260, bands=3).new_from_image([255, 255, 255])
    page = page.insert(sheet, (side - 200) // 2, (side - 260) // 2)
    text = (label or "file").upper()[:6]
    try:
        mask = pyvips.Image.text(text, font="sans bold 40", width=180)
        ink = mask.new_from_image([90, 90, 90]).bandjoin(mask)
        page = page.composite2(
            ink, "over", x=(side - mask.width) // 2, y=(side - mask.height) // 2
        ).flatten()
    except pyvips.Error:
        pass  # no font available: the plain sheet still marks the asset as a document
    page = _to_srgb8(page)
    made = [
        _save(
            page.thumbnail_image(spec.width, height=spec.height, size="down"), spec, Path(out_dir)
        )
        for spec in specs
    ]
    return {"renditions": made}


def process(
    kind: str, src: str, out_dir: str, specs: Specs, limits: Limits, label: str
) -> dict[str, Any]:
    """Entry point called in the sandbox."""
    if kind == "image":
        return image(src, out_dir, specs, limits)
    if kind == "pdf":
        return pdf(src, out_dir, specs, limits)
    if kind == "video":
        return video(src, out_dir, specs, limits)
    return generic(out_dir, specs, label)
