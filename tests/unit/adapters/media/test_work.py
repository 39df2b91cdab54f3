"""Renditions and media facts from real files, asserted exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from assetvault.adapters.media import work
from assetvault.processing.ports import Limits
from assetvault.processing.renditions import renditions_for
from tests import media

LIMITS = Limits(max_pixels=200_000_000)
SPECS = renditions_for("image")  # AEM's renditions, as processing asks for them


def sizes(result: dict) -> dict[str, tuple[int, int]]:
    return {r["name"]: (r["width"], r["height"]) for r in result["renditions"]}


def loaded(result: dict, name: str) -> pyvips.Image:
    path = next(r["path"] for r in result["renditions"] if r["name"] == name)
    return pyvips.Image.new_from_file(path)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


def test_jpeg_orientation_is_applied(tmp_path: Path, out: Path) -> None:
    src = media.jpeg_with_metadata(tmp_path / "a.jpg", 600, 400)
    result = work.image(str(src), str(out), SPECS, LIMITS)
    assert (result["width"], result["height"]) == (600, 400)  # as stored
    assert sizes(result) == {  # as shown: orientation 6 turns it upright, 400 wide
        "cq5dam.web.1280.1280.jpeg": (400, 600),
        "cq5dam.web.1280.1280.webp": (400, 600),
        "cq5dam.thumbnail.48.48.png": (32, 48),
        "cq5dam.thumbnail.140.100.png": (67, 100),
        "cq5dam.thumbnail.319.319.png": (213, 319),
    }
    assert {r["mime_type"] for r in result["renditions"]} == {
        "image/jpeg",
        "image/webp",
        "image/png",
    }
    assert loaded(result, "cq5dam.web.1280.1280.jpeg").get("vips-loader") == "jpegload"
    assert loaded(result, "cq5dam.web.1280.1280.webp").get("vips-loader") == "webpload"


def test_large_images_shrink_to_the_box(tmp_path: Path, out: Path) -> None:
    src = tmp_path / "big.jpg"
    pyvips.Image.black(4000, 3000).jpegsave(str(src))
    result = work.image(str(src), str(out), SPECS, LIMITS)
    assert sizes(result)["cq5dam.web.1280.1280.jpeg"] == (1280, 960)


def test_a_large_jpeg_is_decoded_once_at_a_reduced_scale(
    tmp_path: Path, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 4000x2700 shown upright as 2700x4000 (orientation 6): libjpeg decodes it at half
    # scale, which still covers the 1280 box, and every rendition is made from that.
    src = media.jpeg_with_metadata(tmp_path / "big.jpg", 4000, 2700)
    decodes: list[int] = []
    new_from_file = pyvips.Image.new_from_file

    def spy(name: str, **kwargs: object) -> pyvips.Image:
        decodes.append(int(kwargs.get("shrink", 1)))  # type: ignore[call-overload]
        return new_from_file(name, **kwargs)

    monkeypatch.setattr(pyvips.Image, "new_from_file", staticmethod(spy))
    result = work.image(str(src), str(out), SPECS, LIMITS)
    assert 2 in decodes
    assert sizes(result) == {
        "cq5dam.web.1280.1280.jpeg": (864, 1280),
        "cq5dam.web.1280.1280.webp": (864, 1280),
        "cq5dam.thumbnail.48.48.png": (32, 48),
        "cq5dam.thumbnail.140.100.png": (68, 100),
        "cq5dam.thumbnail.319.319.png": (215, 319),
    }
    web = loaded(result, "cq5dam.web.1280.1280.jpeg")
    # The gradient runs along the stored width, which is the shown height once turned.
    assert abs(web.getpoint(432, 10)[0] - web.getpoint(432, 1270)[0]) > 100


def test_cmyk_becomes_srgb(tmp_path: Path, out: Path) -> None:
    src = media.cmyk_jpeg(tmp_path / "c.jpg", 300, 200)
    assert pyvips.Image.new_from_file(str(src)).interpretation == "cmyk"
    result = work.image(str(src), str(out), SPECS, LIMITS)
    for name in sizes(result):
        image = loaded(result, name)
        assert (image.bands, image.interpretation, image.format) == (3, "srgb", "uchar"), name


def test_an_embedded_profile_is_converted_to_srgb(tmp_path: Path, out: Path) -> None:
    # Pure sRGB red stored in Display P3 (its numbers there are about 234, 51, 35):
    # the renditions show it as sRGB red again, while untagged images skip the transform.
    red = pyvips.Image.black(64, 64, bands=3).new_from_image([255, 0, 0])
    src = tmp_path / "p3.jpg"
    red.copy(interpretation="srgb").icc_transform("p3", input_profile="srgb").jpegsave(
        str(src), Q=95
    )
    result = work.image(str(src), str(out), SPECS, LIMITS)
    for name in sizes(result):
        r, g, b = loaded(result, name).getpoint(10, 10)[:3]
        assert r >= 250 and g <= 8 and b <= 8, (name, r, g, b)


def test_png16_alpha_is_kept_in_pngs(tmp_path: Path, out: Path) -> None:
    src = media.png16_with_alpha(tmp_path / "p.png", 500, 250)
    assert pyvips.Image.new_from_file(str(src)).format == "ushort"
    result = work.image(str(src), str(out), SPECS, LIMITS)
    assert sizes(result)["cq5dam.thumbnail.319.319.png"] == (319, 160)
    thumb = loaded(result, "cq5dam.thumbnail.319.319.png")
    assert (thumb.bands, thumb.format) == (4, "uchar")
    web = loaded(result, "cq5dam.web.1280.1280.jpeg")
    assert web.bands == 3  # JPEG has no alpha: flattened onto white


def test_heic(tmp_path: Path, out: Path) -> None:
    src = media.heic(tmp_path / "h.heic", 400, 300)
    if src is None:
        pytest.skip("pillow-heif has no HEIF encoder in this build")
    result = work.image(str(src), str(out), SPECS, LIMITS)
    assert (result["width"], result["height"]) == (400, 300)
    assert sizes(result)["cq5dam.thumbnail.140.100.png"] == (133, 100)


def test_pdf_first_page_and_all_text(tmp_path: Path, out: Path) -> None:
    src = media.pdf_with_pages(tmp_path / "d.pdf", ["Hello first page", "Second page", "Third"])
    result = work.pdf(str(src), str(out), SPECS, LIMITS)
    assert result["pages"] == 3
    assert result["text"].split("\n") == ["Hello first page", "Second page", "Third"]
    assert (result["page_width_pt"], result["page_height_pt"]) == (612, 792)
    # Letter at 150 dpi is 1275x1650; fit into 1280x1280.
    assert sizes(result)["cq5dam.web.1280.1280.jpeg"] == (989, 1280)
    assert sizes(result)["cq5dam.thumbnail.48.48.png"] == (37, 48)


def test_video_poster_duration_and_size(tmp_path: Path, out: Path) -> None:
    src = media.video(tmp_path / "v.mp4", seconds=2, width=320, height=240)
    result = work.video(str(src), str(out), SPECS, LIMITS)
    assert result["duration"] == pytest.approx(2.0, abs=0.05)
    assert (result["width"], result["height"], result["codec"]) == (320, 240, "h264")
    assert sizes(result)["cq5dam.web.1280.1280.jpeg"] == (320, 240)
    assert sizes(result)["cq5dam.thumbnail.319.319.png"] == (319, 239)
    assert not (out / "poster.png").exists()


def test_other_types_get_a_generic_thumbnail(out: Path) -> None:
    result = work.generic(str(out), renditions_for("other"), "docx")
    assert sizes(result) == {
        "cq5dam.thumbnail.48.48.png": (48, 48),
        "cq5dam.thumbnail.140.100.png": (100, 100),
        "cq5dam.thumbnail.319.319.png": (319, 319),
    }


def test_decompression_bomb_is_refused_from_its_header(tmp_path: Path, out: Path) -> None:
    src = media.png_bomb(tmp_path / "bomb.png")
    assert src.stat().st_size < 4096
    with pytest.raises(work.Refused, match="50000x50000 pixels"):
        work.image(str(src), str(out), SPECS, LIMITS)


def test_pixel_limit_is_configurable(tmp_path: Path, out: Path) -> None:
    src = media.cmyk_jpeg(tmp_path / "c.jpg", 300, 200)
    with pytest.raises(work.Refused, match="limit of 59999 pixels"):
        work.image(str(src), str(out), SPECS, Limits(max_pixels=59_999))


def test_truncated_jpeg_fails(tmp_path: Path, out: Path) -> None:
    src = media.truncated_jpeg(tmp_path / "t.jpg")
    with pytest.raises(pyvips.Error, match="Premature end"):
        work.image(str(src), str(out), SPECS, LIMITS)


@pytest.mark.parametrize(
    ("suffix", "loader"),
    [(".gif", "gifload"), (".tif", "tiffload"), (".webp", "webpload"), (".png", "pngload")],
)
def test_other_image_formats(tmp_path: Path, out: Path, suffix: str, loader: str) -> None:
    src = tmp_path / f"image{suffix}"
    pyvips.Image.black(300, 150, bands=3).new_from_image([10, 120, 200]).write_to_file(str(src))
    assert pyvips.Image.new_from_file(str(src)).get("vips-loader") == loader
    result = work.image(str(src), str(out), SPECS, LIMITS)
    assert (result["width"], result["height"]) == (300, 150)
    assert sizes(result)["cq5dam.thumbnail.140.100.png"] == (140, 70)


def _probe(path: str) -> dict:
    import json
    import subprocess

    done = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path],
        capture_output=True,
        check=True,
    )
    return json.loads(done.stdout)


def _clip_with_sound(path: Path, seconds: int, width: int, height: int) -> Path:
    import subprocess

    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={width}x{height}:rate=25",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         "-c:v", "mpeg4", "-c:a", "mp2", "-metadata", "location=+48.85+002.35/",
         str(path)],
        check=True,
    )  # fmt: skip
    return path


def test_a_video_gets_a_web_playable_rendition(tmp_path: Path, out: Path) -> None:
    """MPEG-4 part 2 and MP2 in AVI (no browser plays them) become H.264 baseline and
    AAC in MP4, moov first, fitted into the box with even sides, without the tags."""
    src = _clip_with_sound(tmp_path / "v.avi", 2, 643, 362)
    specs = (*renditions_for("video")[:2], work.RenditionSpec("web.mp4", 320, 320, "mp4"))
    result = work.video(str(src), str(out), specs, LIMITS)
    made = next(r for r in result["renditions"] if r["name"] == "web.mp4")
    assert made["mime_type"] == "video/mp4" and (made["width"], made["height"]) == (320, 180)
    info = _probe(made["path"])
    video, audio = sorted(info["streams"], key=lambda s: s["codec_type"] != "video")
    assert (video["codec_name"], video["profile"], video["pix_fmt"]) == (
        "h264",
        "Constrained Baseline",
        "yuv420p",
    )
    assert audio["codec_name"] == "aac"
    assert float(info["format"]["duration"]) == pytest.approx(2.0, abs=0.1)
    assert "location" not in info["format"].get("tags", {})
    head = Path(made["path"]).read_bytes()[:64]
    assert head.index(b"moov") < 64 or b"mdat" not in head  # faststart: moov before mdat
    assert sizes(result)["cq5dam.web.1280.1280.jpeg"] == (643, 362)


def test_the_web_video_is_bounded_in_time(tmp_path: Path, out: Path) -> None:
    src = media.video(tmp_path / "long.mp4", seconds=6, width=320, height=240)
    spec = renditions_for("video")[-1]
    assert (spec.name, spec.format) == ("cq5dam.video.fullhd-bp.mp4", "mp4")
    short = Limits(max_pixels=200_000_000, video_max_seconds=1.5)
    result = work.video(str(src), str(out), (spec,), short)
    [made] = result["renditions"]
    assert (made["width"], made["height"]) == (320, 240)  # never enlarged
    assert float(_probe(made["path"])["format"]["duration"]) == pytest.approx(1.5, abs=0.1)
    assert result["duration"] == pytest.approx(6.0, abs=0.05)  # the original's, unchanged


def test_the_web_video_is_bounded_in_size(tmp_path: Path, out: Path) -> None:
    import subprocess

    # Noise does not compress: about 4.5 MB as the web video when unbounded.
    src = tmp_path / "noisy.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi",
         "-i", "testsrc=duration=12:size=320x240:rate=25,noise=alls=60:allf=t",
         "-pix_fmt", "yuv420p", "-c:v", "libx264", "-crf", "10", str(src)],
        check=True,
    )  # fmt: skip
    spec = renditions_for("video")[-1]
    small = Limits(max_pixels=200_000_000, video_max_bytes=5 * 2**20)
    result = work.video(str(src), str(out), (spec,), small)
    [made] = result["renditions"]
    assert 0 < Path(made["path"]).stat().st_size <= 5 * 2**20
    assert 0 < float(_probe(made["path"])["format"]["duration"]) < 11


def test_a_pdf_gets_a_rendition_per_later_page(tmp_path: Path, out: Path) -> None:
    src = media.pdf_with_pages(tmp_path / "d.pdf", ["One", "Two", "Three"])
    specs = renditions_for("pdf")
    assert [s.name for s in specs if s.page][:2] == [
        "cq5dam.page.2.1280.1280.jpeg",
        "cq5dam.page.3.1280.1280.jpeg",
    ]
    result = work.pdf(str(src), str(out), specs, LIMITS)
    got = sizes(result)
    # Pages 2 and 3 exist, 4 to 20 do not, so they are not made.
    assert got["cq5dam.page.2.1280.1280.jpeg"] == got["cq5dam.page.3.1280.1280.jpeg"] == (989, 1280)
    assert "cq5dam.page.4.1280.1280.jpeg" not in got
    assert len(got) == 5 + 2
    # Each page is its own: page 2 differs from page 1 and page 3.
    first, second, third = (
        loaded(result, n)
        for n in (
            "cq5dam.web.1280.1280.jpeg",
            "cq5dam.page.2.1280.1280.jpeg",
            "cq5dam.page.3.1280.1280.jpeg",
        )
    )
    assert (first - second).abs().max() > 0 and (second - third).abs().max() > 0
