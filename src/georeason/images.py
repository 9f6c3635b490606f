"""Loading photos safely: one function that every path (eval, locate, serve, train) uses.

:func:`load_image` returns an upright RGB image of at most ``max_pixels`` pixels,
or raises :class:`ImageError` with the reason (missing file, not an image,
truncated, too large). Benchmarks hold the odd file of every kind — CMYK JPEGs,
16-bit PNGs, palette GIFs, phone photos stored sideways with an EXIF
orientation tag, the occasional 0-byte download — and one of them must cost one
image, never a run.

Also: :func:`exif_gps` (the camera's GPS fix, to score ``georeason locate`` on
your own photos) and base64 data-URL helpers used by the OpenAI-compatible
client and server.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import math
import os
import re
from pathlib import Path
from typing import Any

from PIL import Image

#: Pillow's own hard limit (2 x ``Image.MAX_IMAGE_PIXELS``): ~179 Mpx, a 13,377 x 13,377 image.
DEFAULT_MAX_IMAGE_PIXELS = 178_956_970

ImageSource = str | os.PathLike[str] | bytes | bytearray | memoryview | Image.Image

_GPS_IFD = 0x8825


class ImageError(ValueError):
    """An image could not be used; the message says why (and which file)."""


def _describe(source: Any) -> str:
    if isinstance(source, bytes | bytearray | memoryview):
        return f"<{len(source)} bytes>"
    if isinstance(source, Image.Image):
        return f"<PIL image {source.mode} {source.size[0]}x{source.size[1]}>"
    return str(source)


def _open(source: ImageSource) -> Image.Image:
    """Open lazily (header only: nothing is decoded yet)."""
    what = _describe(source)
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise ImageError("empty image data (0 bytes)")
        fp: Any = io.BytesIO(bytes(source))
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.exists():
            raise ImageError(f"image file not found: {what}")
        if path.is_dir():
            raise ImageError(f"expected an image file, got a directory: {what}")
        if path.stat().st_size == 0:
            raise ImageError(f"empty image file (0 bytes): {what}")
        fp = path
    else:
        raise ImageError(f"unsupported image source type {type(source).__name__}")
    try:
        return Image.open(fp)
    except Image.DecompressionBombError as e:
        raise ImageError(f"image too large to decode safely: {what} ({e})") from e
    except Image.UnidentifiedImageError as e:
        raise ImageError(f"not an image (unknown or unsupported format): {what}") from e
    except Exception as e:  # any decoder failure is this image's problem
        raise ImageError(f"cannot open image {what}: {type(e).__name__}: {e}") from e


def fit_image(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """Largest (w, h) with the same aspect ratio and w * h <= max_pixels (each >= 1)."""
    w, h = size
    if w * h <= max_pixels:
        return w, h
    scale = math.sqrt(max_pixels / (w * h))
    nw, nh = max(1, int(w * scale)), max(1, int(h * scale))
    # int() floors, but float error can still leave us one pixel over: shave.
    while nw * nh > max_pixels and (nw > 1 or nh > 1):
        if nw >= nh:
            nw -= 1
        else:
            nh -= 1
    return nw, nh


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB, keeping what the mode means.

    - alpha (RGBA, LA, PA, P with transparency) is composited on white, not
      dropped (dropping shows the hidden colour under transparent pixels,
      usually black);
    - 16/32-bit integer and float greyscale (I;16*, I, F) are scaled to 8 bits
      (Pillow's ``convert("RGB")`` clips them, which turns most 16-bit photos white);
    - CMYK, YCbCr, LAB, HSV, 1, L, P go through Pillow's converters.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16") or mode in ("I", "F"):
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            arr = arr / 257.0  # 0..65535 -> 0..255
        else:
            finite = arr[np.isfinite(arr)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            if lo >= 0 and hi <= 255:
                lo, hi = 0.0, 255.0  # already 8-bit range: keep levels
            arr = (arr - lo) / ((hi - lo) or 1.0) * 255.0
        arr = np.nan_to_num(arr, nan=0.0, posinf=255.0, neginf=0.0)
        return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), mode="L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


_ORIENTATION = 0x0112
# EXIF orientation -> the transpose that makes the image upright (what PIL.ImageOps.exif_transpose does,
# without the full-size copy it makes of an image that needs no turn).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Modes Image.reduce() handles (box averaging in the image's own mode).
_REDUCIBLE = frozenset({"L", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX", "I", "F", "CMYK", "YCbCr"})


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(_ORIENTATION) or 1)
    except Exception:  # a broken EXIF block must not cost the image
        return 1


def load_image(
    source: ImageSource,
    *,
    max_pixels: int | None = None,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    draft_pixels: int | None = None,
) -> Image.Image:
    """Load an image as upright RGB, at most ``max_pixels`` pixels.

    Steps, in the order that keeps a bad file cheap:

    1. open lazily and read the header (nothing is decoded yet);
    2. for JPEG, ask the decoder for a reduced-size draft when the target
       (``max_pixels``, or ``draft_pixels`` when the caller's model resizes
       anyway) is much smaller: DCT scaling decodes at 1/2, 1/4 or 1/8 per side,
       the smallest scale still at least the target (a 48 Mpx phone photo at
       1/8 is ~20x faster and bit-for-bit what a resize would give at that scale);
    3. refuse when the pixels that would be decoded (the header's ``width *
       height``, or the JPEG draft's) exceed ``max_image_pixels``, *before*
       decoding (decompression-bomb guard: a 164 kB PNG can claim 13,000 x 13,000
       pixels and take 2 GB to decode);
    4. decode; truncated or corrupt data raises here -> :class:`ImageError`;
    5. when still >= 4x the target per side, shrink by an integer factor in the
       decoded mode (``Image.reduce``, box averaging) before any conversion, so
       no full-size RGB copy is ever made;
    6. apply the EXIF orientation (phones store portrait photos sideways);
    7. convert any mode to RGB (see :func:`_to_rgb`);
    8. resize with the aspect ratio kept so ``width * height <= max_pixels``
       (Lanczos; the model's own processor then snaps to its patch grid).

    ``source`` is a path, raw bytes, or a PIL image (re-checked and converted;
    no draft or reduce, it is decoded already).

    >>> img = load_image(_example_png(), max_pixels=100)
    >>> img.mode, img.size
    ('RGB', (10, 10))
    """
    if max_pixels is not None and max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
    if draft_pixels is not None and draft_pixels < 1:
        raise ValueError(f"draft_pixels must be >= 1, got {draft_pixels}")
    targets = [p for p in (max_pixels, draft_pixels) if p is not None]
    target = min(targets) if targets else None  # the most pixels anyone downstream will use
    what = _describe(source)
    if isinstance(source, Image.Image):
        img = source
        owned = False
    else:
        img = _open(source)
        owned = True
    try:
        w, h = img.size
        if w < 1 or h < 1:
            raise ImageError(f"image has no pixels ({w}x{h}): {what}")
        if owned and target is not None and img.format == "JPEG" and w * h > 4 * target:
            # draft() picks the smallest DCT scale whose result is still >= the requested size,
            # so the final resize below still has enough pixels to work with.
            with contextlib.suppress(Exception):  # draft is an optimisation only
                img.draft("RGB", fit_image((w, h), target))
        dw, dh = img.size  # what decoding will allocate (the draft's size for a JPEG)
        if dw * dh > max_image_pixels:
            scaled = f" (decoded at {dw}x{dh})" if (dw, dh) != (w, h) else ""
            raise ImageError(
                f"image too large: {w}x{h}{scaled} = {dw * dh:,} pixels > max_image_pixels={max_image_pixels:,} "
                f"(decompression-bomb guard; raise max_image_pixels if the file is trusted): {what}"
            )
        orientation = _orientation(img)
        try:
            img.load()
        except Exception as e:
            reason = str(e) or type(e).__name__
            if "truncated" in reason.lower() or isinstance(e, EOFError | SyntaxError):
                raise ImageError(f"truncated or corrupt image ({reason}): {what}") from e
            raise ImageError(f"cannot decode image ({type(e).__name__}: {reason}): {what}") from e
        out = img
        if owned and target is not None:
            out = _reduce(out, target)
        if orientation in _TRANSPOSE:
            out = out.transpose(_TRANSPOSE[orientation])
        out = _to_rgb(out)
        if max_pixels is not None and out.size[0] * out.size[1] > max_pixels:
            out = out.resize(fit_image(out.size, max_pixels), Image.Resampling.LANCZOS)
        if out is img:
            out = img.copy()  # never hand back the object tied to an open file
        return out
    except ImageError:
        raise
    except MemoryError as e:
        raise ImageError(f"out of memory decoding image: {what}") from e
    except Exception as e:
        raise ImageError(f"cannot load image {what}: {type(e).__name__}: {e}") from e
    finally:
        if owned:
            img.close()


def _reduce(img: Image.Image, target: int) -> Image.Image:
    """Shrink by the integer factor that keeps >= 2x the target's width and height (Pillow's
    ``reducing_gap=2`` rule: the resize that follows then sees no aliasing), in the decoded mode.
    Bilevel images go to ``L`` first (same memory: Pillow stores ``1`` one byte per pixel)."""
    w, h = img.size
    factor = int(math.sqrt(w * h / target) / 2)
    if factor < 2:
        return img
    if img.mode == "1":
        img = img.convert("L")
    if img.mode not in _REDUCIBLE:
        return img
    return img.reduce(factor)


def _rational(value: Any) -> float:
    if isinstance(value, tuple) and len(value) == 2:  # (num, den) from old EXIF writers
        num, den = value
        return float(num) / float(den)
    return float(value)


def _dms(value: Any) -> float:
    if isinstance(value, list | tuple) and len(value) == 3:
        d, m, s = (_rational(v) for v in value)
        return d + m / 60.0 + s / 3600.0
    return _rational(value)  # some writers store decimal degrees in one rational


def exif_gps(source: ImageSource) -> tuple[float, float] | None:
    """GPS ``(lat, lon)`` in decimal degrees from the EXIF GPS IFD, or None.

    None when the file has no EXIF, no GPS block, a void fix (``GPSStatus ==
    'V'``), values out of range, or exactly (0, 0) — what many cameras write
    when they had no fix. Never raises for a readable image; a file that cannot
    be opened raises :class:`ImageError`.
    """
    if isinstance(source, Image.Image):
        return _gps_from_exif(source.getexif())
    img = _open(source)
    try:
        return _gps_from_exif(img.getexif())
    except Exception:  # a corrupt EXIF block means: no usable GPS
        return None
    finally:
        img.close()


def _gps_from_exif(exif: Image.Exif) -> tuple[float, float] | None:
    try:
        gps = exif.get_ifd(_GPS_IFD)
    except Exception:
        return None
    if not gps or 2 not in gps or 4 not in gps:
        return None
    status = gps.get(9)
    if isinstance(status, bytes):
        status = status.decode("ascii", "ignore")
    if isinstance(status, str) and status.strip().upper().startswith("V"):
        return None
    try:
        lat, lon = _dms(gps[2]), _dms(gps[4])
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    lat_ref, lon_ref = gps.get(1, "N"), gps.get(3, "E")
    if isinstance(lat_ref, bytes):
        lat_ref = lat_ref.decode("ascii", "ignore")
    if isinstance(lon_ref, bytes):
        lon_ref = lon_ref.decode("ascii", "ignore")
    if str(lat_ref).strip().upper().startswith("S"):
        lat = -abs(lat)
    if str(lon_ref).strip().upper().startswith("W"):
        lon = -abs(lon)
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
        return None
    if lat == 0.0 and lon == 0.0:
        return None
    return lat, lon


def gps_exif(lat: float, lon: float) -> bytes:
    """An EXIF block holding a GPS fix, as bytes for ``img.save(..., exif=...)``.

    Bytes, not a :class:`PIL.Image.Exif`: Pillow's PNG writer drops the GPS block of an
    ``Exif`` object but keeps raw bytes (JPEG and WebP take either). Used to make test
    fixtures and demo photos without piexif.
    """
    exif = Image.Exif()

    def dms(x: float) -> tuple[float, float, float]:
        x = abs(x)
        d = int(x)
        m = int((x - d) * 60)
        s = round((x - d - m / 60) * 3600, 4)
        return (float(d), float(m), s)

    exif.get_ifd(_GPS_IFD).update(
        {
            0: b"\x02\x03\x00\x00",
            1: "N" if lat >= 0 else "S",
            2: dms(lat),
            3: "E" if lon >= 0 else "W",
            4: dms(lon),
        }
    )
    return exif.tobytes()


# ---------------------------------------------------------------------------
# Encoding: images <-> bytes <-> data URLs (the OpenAI image_url content part)
# ---------------------------------------------------------------------------


def encode_image(img: Image.Image, fmt: str = "PNG", *, quality: int = 90) -> bytes:
    """Encode an RGB image as PNG (lossless, default) or JPEG bytes."""
    fmt = fmt.upper()
    if fmt == "JPG":
        fmt = "JPEG"
    if fmt not in ("PNG", "JPEG", "WEBP"):
        raise ValueError(f"image format must be PNG, JPEG or WEBP, got {fmt!r}")
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.convert("RGB").save(buf, "JPEG", quality=quality)
    else:
        img.save(buf, fmt)
    return buf.getvalue()


def to_data_url(img: Image.Image, fmt: str = "PNG", *, quality: int = 90) -> str:
    """``data:image/png;base64,...`` for an OpenAI ``image_url`` content part."""
    fmt = "JPEG" if fmt.upper() == "JPG" else fmt.upper()
    data = base64.b64encode(encode_image(img, fmt, quality=quality)).decode("ascii")
    return f"data:image/{fmt.lower()};base64,{data}"


_DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[^;,]*)*)(?P<b64>;base64)?,", re.I
)


def decode_data_url(url: str) -> bytes:
    """The bytes of a ``data:`` URL (base64 or percent-encoded); ImageError if malformed."""
    if not isinstance(url, str):
        raise ImageError(f"image_url must be a string, got {type(url).__name__}")
    m = _DATA_URL.match(url)
    if m is None:
        head = url[:40] + ("..." if len(url) > 40 else "")
        raise ImageError(f"image_url must be a data: URL (data:image/png;base64,...), got {head!r}")
    payload = url[m.end() :]
    if m.group("b64"):
        # Strict: characters outside the base64 alphabet are an error (the lenient decoder drops
        # them, and "!!!!" would become 0 bytes, reported as an empty image). Line breaks are
        # tolerated (MIME encoders wrap at 76 columns).
        text = re.sub(r"\s+", "", payload)
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as e:
            bad = re.search(r"[^A-Za-z0-9+/=]", text)
            where = f" (character {bad.group()!r} at {bad.start()})" if bad else ""
            raise ImageError(f"image_url holds invalid base64{where}: {e}") from e
    from urllib.parse import unquote_to_bytes

    return unquote_to_bytes(payload)


def _example_png() -> bytes:
    """A 20x20 PNG (for doctests)."""
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), (10, 120, 200)).save(buf, "PNG")
    return buf.getvalue()
