"""georeason.images: orientation, modes, bombs, truncated and non-image files, EXIF GPS, data URLs."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from georeason.images import (
    ImageError,
    decode_data_url,
    exif_gps,
    gps_exif,
    load_image,
    to_data_url,
)

RED, BLUE = (220, 20, 20), (20, 20, 220)


def _two_halves(w: int = 40, h: int = 20) -> Image.Image:
    """Left half red, right half blue: orientation mistakes show up as colour mistakes."""
    img = Image.new("RGB", (w, h), BLUE)
    img.paste(RED, (0, 0, w // 2, h))
    return img


def _jpeg(img: Image.Image, exif: bytes | Image.Exif | None = None, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, **({"exif": exif} if exif is not None else {}))
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels but holds one tiny, truncated IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))


def _close(a: tuple[int, ...], b: tuple[int, ...], tol: int = 40) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


# --- orientation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("orientation", "size", "probe", "colour"),
    [
        (1, (40, 20), (2, 10), RED),  # as stored
        (3, (40, 20), (2, 10), BLUE),  # rotated 180: red moves right
        (6, (20, 40), (10, 2), RED),  # rotate 90 CW to display: left edge becomes the top
        (8, (20, 40), (10, 2), BLUE),  # rotate 90 CCW: right edge becomes the top
    ],
)
def test_exif_orientation_is_applied(
    orientation: int, size: tuple[int, int], probe: tuple[int, int], colour: tuple[int, int, int]
) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    img = load_image(_jpeg(_two_halves(), exif))
    assert img.size == size
    assert _close(img.getpixel(probe), colour)


def test_orientation_then_resize_keeps_upright_aspect(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "portrait.jpg"
    path.write_bytes(_jpeg(_two_halves(400, 200), exif))
    img = load_image(path, max_pixels=5000)
    w, h = img.size
    assert w * h <= 5000 and h > w  # portrait after rotation
    assert abs(h / w - 2.0) < 0.1


# --- modes -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "L", "1", "P", "CMYK", "YCbCr", "I", "F", "I;16"])
def test_any_mode_becomes_rgb(mode: str) -> None:
    img = load_image(Image.new(mode, (12, 8)))
    assert img.mode == "RGB" and img.size == (12, 8)


def test_transparent_pixels_become_white_not_black() -> None:
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    assert load_image(rgba).getpixel((0, 0)) == (255, 255, 255)
    half = Image.new("RGBA", (4, 4), (0, 0, 0, 128))  # half-transparent black over white -> grey
    assert _close(load_image(half).getpixel((0, 0)), (127, 127, 127), tol=2)


def test_palette_with_transparency_is_composited() -> None:
    p = Image.new("P", (4, 4), 0)
    p.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    p.putpixel((1, 1), 1)
    p.info["transparency"] = 0
    out = load_image(p)
    assert out.getpixel((0, 0)) == (255, 255, 255)
    assert out.getpixel((1, 1)) == (200, 10, 10)


def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    # A 16-bit PNG using the full range: clipping would turn everything above 255 white.
    arr = np.linspace(0, 65535, 64 * 4).astype(np.uint16).reshape(4, 64)
    path = tmp_path / "depth.png"
    Image.fromarray(arr).save(path)
    with Image.open(path) as raw:
        assert raw.mode.startswith("I")
    out = np.asarray(load_image(path))[:, :, 0]
    assert out[0, 0] == 0 and out[-1, -1] == 255
    assert 100 < out[2, 0] < 160  # the middle of the ramp stays mid-grey
    assert len(np.unique(out)) > 100


def test_cmyk_jpeg_colours_survive() -> None:
    cmyk = Image.new("RGB", (16, 16), RED).convert("CMYK")
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG", quality=95)
    assert _close(load_image(buf.getvalue()).getpixel((8, 8)), RED)


# --- resizing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "max_pixels"), [((4000, 3000), 10_000), ((1, 5000), 100), ((333, 777), 999)]
)
def test_resize_respects_max_pixels_and_aspect(size: tuple[int, int], max_pixels: int) -> None:
    img = load_image(Image.new("RGB", size), max_pixels=max_pixels)
    w, h = img.size
    assert w * h <= max_pixels
    assert w >= 1 and h >= 1
    if min(size) > 10:
        assert abs((w / h) - size[0] / size[1]) < 0.05 * size[0] / size[1]


def test_small_images_are_not_upscaled() -> None:
    assert load_image(Image.new("RGB", (30, 20)), max_pixels=10_000).size == (30, 20)


def test_large_jpeg_uses_reduced_decoding_and_keeps_content() -> None:
    data = _jpeg(_two_halves(2400, 1600), quality=80)
    img = load_image(data, max_pixels=24 * 16 * 4)
    assert img.size[0] * img.size[1] <= 24 * 16 * 4
    w, h = img.size
    assert _close(img.getpixel((1, h // 2)), RED) and _close(img.getpixel((w - 2, h // 2)), BLUE)


# --- bad input -------------------------------------------------------------------------


def test_truncated_jpeg_is_an_image_error(tmp_path: Path) -> None:
    data = _jpeg(Image.effect_noise((64, 64), 50).convert("RGB"))
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated") as info:
        load_image(path)
    assert "cut.jpg" in str(info.value)


def test_truncated_png_is_an_image_error() -> None:
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 50).save(buf, "PNG")
    with pytest.raises(ImageError):
        load_image(buf.getvalue()[:300])


def test_text_file_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a photo\n")
    with pytest.raises(ImageError, match="not an image"):
        load_image(path)


def test_missing_empty_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(empty)


def test_empty_bytes_and_wrong_type() -> None:
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")
    with pytest.raises(ImageError, match="unsupported image source"):
        load_image(12345)  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bomb_refused_before_decoding() -> None:
    # Claims 12,000 x 12,000 (144 Mpx, under Pillow's own hard limit) with almost no data:
    # refused by the size check, not by a decode error -- so decoding never started.
    bomb = _png_header_only(12_000, 12_000)
    with pytest.raises(ImageError, match="too large") as info:
        load_image(bomb, max_image_pixels=100_000_000)
    assert "truncated" not in str(info.value)
    # Over Pillow's hard limit: still our ImageError, not Pillow's DecompressionBombError.
    with pytest.raises(ImageError, match="too large"):
        load_image(_png_header_only(100_000, 100_000))


def test_small_max_image_pixels_refuses_a_real_image() -> None:
    data = _jpeg(Image.new("RGB", (200, 100)))
    with pytest.raises(ImageError, match="20,000 pixels > max_image_pixels=10,000"):
        load_image(data, max_image_pixels=10_000)
    assert load_image(data, max_image_pixels=20_000).size == (200, 100)


def test_bad_max_pixels() -> None:
    with pytest.raises(ValueError, match="max_pixels"):
        load_image(Image.new("RGB", (2, 2)), max_pixels=0)


# --- EXIF GPS ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lat", "lon"), [(35.6812, 139.7671), (-33.8568, 151.2153), (40.6892, -74.0445), (-22.95, -43.21)]
)
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_gps_round_trip(tmp_path: Path, lat: float, lon: float, fmt: str) -> None:
    path = tmp_path / f"gps.{fmt.lower()}"
    Image.new("RGB", (32, 32)).save(path, fmt, exif=gps_exif(lat, lon))  # PNG lost the fix once
    got = exif_gps(path)
    assert got is not None
    assert got[0] == pytest.approx(lat, abs=1e-5) and got[1] == pytest.approx(lon, abs=1e-5)
    assert exif_gps(path.read_bytes()) == got


def test_exif_gps_absent_or_null_island() -> None:
    assert exif_gps(_jpeg(Image.new("RGB", (8, 8)))) is None
    assert exif_gps(_jpeg(Image.new("RGB", (8, 8)), gps_exif(0.0, 0.0))) is None
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    assert exif_gps(buf.getvalue()) is None


def test_exif_gps_on_a_non_image_raises_image_error(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("hello")
    with pytest.raises(ImageError):
        exif_gps(path)


# --- data URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_data_url_round_trip(fmt: str) -> None:
    img = _two_halves()
    url = to_data_url(img, fmt)
    assert url.startswith(f"data:image/{fmt.lower()};base64,")
    back = load_image(decode_data_url(url))
    assert back.size == img.size
    if fmt == "PNG":
        assert np.array_equal(np.asarray(back), np.asarray(img))


def test_decode_data_url_errors() -> None:
    with pytest.raises(ImageError, match="data: URL"):
        decode_data_url("https://example.com/a.jpg")
    with pytest.raises(ImageError, match="base64"):
        decode_data_url("data:image/png;base64,abc")  # bad padding
    assert decode_data_url("data:,hello%20world") == b"hello world"
