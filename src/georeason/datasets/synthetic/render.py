"""Drawing one photo: background, distractors, the legible clues, occluders, pixel noise (PIL)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from georeason.datasets.synthetic.clues import TINT_GREEN, Clues, tint_of
from georeason.datasets.synthetic.world import BANNER_COLOURS, PALETTES, RGB, SIGN_COLOURS, SyntheticWorld

# The road fills the bottom quarter, full width and at a fixed height: for sides that are
# multiples of 56 it is whole rows of 14-pixel patches, so a patch embedding reads its
# colour without mixing it with the ground (the tint is the one clue read as a number).
ROAD_TOP = 0.75

_SS = 2  # supersampling factor: draw at 2x, downsample with a box filter (anti-aliasing)


def _jitter_rgb(rng: np.random.Generator, c: RGB, amount: int) -> RGB:
    v = np.clip(np.asarray(c) + rng.integers(-amount, amount + 1, size=3), 0, 255)
    return (int(v[0]), int(v[1]), int(v[2]))


class _Canvas:
    """Draws in unit coordinates (0..1 across the image) on a supersampled canvas."""

    def __init__(self, size: int) -> None:
        self.n = size * _SS
        self.im = Image.new("RGB", (self.n, self.n))
        self.d = ImageDraw.Draw(self.im)

    def px(self, x: float, y: float) -> tuple[float, float]:
        return x * self.n, y * self.n

    def rect(self, box: tuple[float, float, float, float], fill: RGB) -> None:
        x0, y0, x1, y1 = box
        self.d.rectangle([*self.px(min(x0, x1), min(y0, y1)), *self.px(max(x0, x1), max(y0, y1))], fill=fill)

    def ellipse(self, box: tuple[float, float, float, float], fill: RGB) -> None:
        self.d.ellipse([*self.px(box[0], box[1]), *self.px(box[2], box[3])], fill=fill)

    def poly(self, pts: Sequence[tuple[float, float]], fill: RGB) -> None:
        self.d.polygon([self.px(x, y) for x, y in pts], fill=fill)

    def line(self, pts: Sequence[tuple[float, float]], fill: RGB, width: float) -> None:
        self.d.line([self.px(x, y) for x, y in pts], fill=fill, width=max(1, round(width * self.n)))


def _glyph_parts(name: str) -> list[tuple[str, Any]]:
    """Landmark silhouettes in a unit box (x right, y down, base at y = 1)."""
    if name == "tower":  # TV tower: shaft, bulb, antenna
        return [
            ("rect", (0.44, 0.3, 0.56, 1.0)),
            ("ellipse", (0.28, 0.12, 0.72, 0.4)),
            ("rect", (0.48, 0.0, 0.52, 0.14)),
        ]
    if name == "dome":
        return [
            ("ellipse", (0.18, 0.25, 0.82, 0.95)),
            ("rect", (0.12, 0.6, 0.88, 1.0)),
            ("rect", (0.47, 0.1, 0.53, 0.3)),
        ]
    if name == "arch":
        return [
            (
                "poly",
                [(0.08, 1), (0.08, 0.2), (0.92, 0.2), (0.92, 1), (0.7, 1), (0.7, 0.5), (0.3, 0.5), (0.3, 1)],
            )
        ]
    if name == "pyramid":
        return [("poly", [(0.0, 1.0), (0.5, 0.4), (1.0, 1.0)])]
    if name == "twin towers":
        return [("rect", (0.18, 0.05, 0.4, 1.0)), ("rect", (0.6, 0.05, 0.82, 1.0))]
    if name == "spire":
        return [("poly", [(0.3, 1.0), (0.5, 0.0), (0.7, 1.0)])]
    if name == "bridge":
        return [
            ("rect", (0.0, 0.68, 1.0, 0.8)),
            ("rect", (0.2, 0.25, 0.28, 1.0)),
            ("rect", (0.72, 0.25, 0.8, 1.0)),
            ("line", [(0.24, 0.27), (0.0, 0.7)]),
            ("line", [(0.24, 0.27), (0.5, 0.7)]),
            ("line", [(0.76, 0.27), (0.5, 0.7)]),
            ("line", [(0.76, 0.27), (1.0, 0.7)]),
        ]
    if name == "pagoda":
        return [
            ("poly", [(0.1, 1.0), (0.9, 1.0), (0.75, 0.72), (0.25, 0.72)]),
            ("poly", [(0.15, 0.72), (0.85, 0.72), (0.7, 0.45), (0.3, 0.45)]),
            ("poly", [(0.22, 0.45), (0.78, 0.45), (0.5, 0.12)]),
        ]
    raise ValueError(f"unknown glyph {name!r}")


def _draw_parts(
    cv: _Canvas, parts: list[tuple[str, Any]], box: tuple[float, float, float, float], fill: RGB
) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0

    def tr(x: float, y: float) -> tuple[float, float]:
        return x0 + x * w, y0 + y * h

    for kind, spec in parts:
        if kind == "rect":
            cv.rect((*tr(spec[0], spec[1]), *tr(spec[2], spec[3])), fill)
        elif kind == "ellipse":
            cv.ellipse((*tr(spec[0], spec[1]), *tr(spec[2], spec[3])), fill)
        elif kind == "poly":
            cv.poly([tr(x, y) for x, y in spec], fill)
        elif kind == "line":
            cv.line([tr(x, y) for x, y in spec], fill, 0.035 * w)


def _draw_sign(cv: _Canvas, shape: str, colour: RGB, cx: float, cy: float, r: float) -> None:
    outline = (30, 30, 30)
    if shape == "circle":
        cv.ellipse((cx - r * 1.08, cy - r * 1.08, cx + r * 1.08, cy + r * 1.08), outline)
        cv.ellipse((cx - r, cy - r, cx + r, cy + r), colour)
    elif shape == "square":
        cv.rect((cx - r * 1.08, cy - r * 1.08, cx + r * 1.08, cy + r * 1.08), outline)
        cv.rect((cx - r * 0.95, cy - r * 0.95, cx + r * 0.95, cy + r * 0.95), colour)
    elif shape == "triangle":
        cv.poly([(cx, cy - r * 1.2), (cx + r * 1.2, cy + r * 1.0), (cx - r * 1.2, cy + r * 1.0)], outline)
        cv.poly([(cx, cy - r * 1.02), (cx + r * 1.03, cy + r * 0.9), (cx - r * 1.03, cy + r * 0.9)], colour)
    elif shape == "diamond":
        cv.poly([(cx, cy - r * 1.25), (cx + r * 1.25, cy), (cx, cy + r * 1.25), (cx - r * 1.25, cy)], outline)
        cv.poly([(cx, cy - r * 1.1), (cx + r * 1.1, cy), (cx, cy + r * 1.1), (cx - r * 1.1, cy)], colour)
    elif shape == "cross":
        a, b = r * 1.1, r * 0.4
        cv.rect((cx - a - 0.01, cy - b - 0.01, cx + a + 0.01, cy + b + 0.01), outline)
        cv.rect((cx - b - 0.01, cy - a - 0.01, cx + b + 0.01, cy + a + 0.01), outline)
        cv.rect((cx - a, cy - b, cx + a, cy + b), colour)
        cv.rect((cx - b, cy - a, cx + b, cy + a), colour)
    else:
        raise ValueError(f"unknown sign shape {shape!r}")


def _overlaps(
    a: tuple[float, float, float, float], b: tuple[float, float, float, float], margin: float = 0.01
) -> bool:
    return not (a[2] + margin < b[0] or b[2] + margin < a[0] or a[3] + margin < b[1] or b[3] + margin < a[1])


def _draw_distractor(
    cv: _Canvas, rng: np.random.Generator, horizon: float, avoid: list[tuple[float, float, float, float]]
) -> None:
    """Clouds, birds, trees, houses and cars: nuisance shapes outside the clue boxes."""
    kind = ("cloud", "bird", "tree", "house", "car")[int(rng.integers(5))]
    for _ in range(6):  # rejection sampling: a few tries to keep clear of the clues
        if kind in ("cloud", "bird"):
            w = float(rng.uniform(0.12, 0.25)) if kind == "cloud" else float(rng.uniform(0.04, 0.07))
            h = w * (0.45 if kind == "cloud" else 0.4)
            x, y = float(rng.uniform(0.0, 1.0 - w)), float(rng.uniform(0.02, max(0.03, horizon - h - 0.05)))
        else:
            w = float(rng.uniform(0.07, 0.14))
            h = w * (1.6 if kind == "tree" else 0.8 if kind == "house" else 0.45)
            top = float(rng.uniform(horizon + 0.01, max(horizon + 0.011, ROAD_TOP - 0.01 - h)))
            x, y = float(rng.uniform(0.0, 1.0 - w)), top
        box = (x, y, x + w, y + h)
        if not any(_overlaps(box, b) for b in avoid):
            break
    else:
        return
    if kind == "cloud":
        g = int(rng.integers(215, 250))
        for _ in range(3):
            cx, cy = float(rng.uniform(x, x + w * 0.6)), float(rng.uniform(y, y + h * 0.4))
            cv.ellipse((cx, cy, cx + w * 0.45, cy + h * 0.6), (g, g, g))
    elif kind == "bird":
        c = (40, 40, 40)
        cv.line([(x, y), (x + w / 2, y + h), (x + w, y)], c, 0.008)
    elif kind == "tree":
        cv.rect((x + w * 0.42, y + h * 0.5, x + w * 0.58, y + h), (90, 60, 30))
        cv.ellipse((x, y, x + w, y + h * 0.65), _jitter_rgb(rng, (40, 100, 40), 30))
    elif kind == "house":
        wall = _jitter_rgb(rng, (200, 190, 170), 40)
        cv.rect((x, y + h * 0.4, x + w, y + h), wall)
        cv.poly(
            [(x - w * 0.05, y + h * 0.42), (x + w / 2, y), (x + w * 1.05, y + h * 0.42)],
            _jitter_rgb(rng, (120, 60, 50), 40),
        )
    else:  # car
        body = tuple(int(v) for v in rng.integers(30, 230, size=3))
        cv.rect((x, y, x + w, y + h * 0.75), body)  # type: ignore[arg-type]
        cv.ellipse((x + w * 0.1, y + h * 0.55, x + w * 0.35, y + h), (20, 20, 20))
        cv.ellipse((x + w * 0.65, y + h * 0.55, x + w * 0.9, y + h), (20, 20, 20))


def _occlude(
    cv: _Canvas, rng: np.random.Generator, box: tuple[float, float, float, float], full: bool
) -> None:
    """A truck-like block in front of a clue: all of it (``full``) or <= 25% from one side."""
    x0, y0, x1, y1 = box
    colour = _jitter_rgb(rng, (110, 105, 100), 40)
    if full:
        m = 0.015
        cv.rect((x0 - m, y0 - m, x1 + m, y1 + m), colour)
        return
    f = float(rng.uniform(0.1, 0.25))
    side = int(rng.integers(4))
    if side == 0:
        cv.rect((x0 - 0.01, y0 - 0.01, x0 + f * (x1 - x0), y1 + 0.01), colour)
    elif side == 1:
        cv.rect((x1 - f * (x1 - x0), y0 - 0.01, x1 + 0.01, y1 + 0.01), colour)
    elif side == 2:
        cv.rect((x0 - 0.01, y0 - 0.01, x1 + 0.01, y0 + f * (y1 - y0)), colour)
    else:
        cv.rect((x0 - 0.01, y1 - f * (y1 - y0), x1 + 0.01, y1 + 0.01), colour)


def render_image(
    world: SyntheticWorld,
    clues: Clues,
    rng: np.random.Generator,
    image_size: int = 112,
    *,
    occluded: Sequence[str] = (),
    partial: Sequence[str] = (),
    noise_std: float = 4.0,
) -> Image.Image:
    """Draw one photo: background, distractors, the legible clues, occluders, pixel noise.

    Layout (fractions of the side; each clue jitters a little): banner top-left
    in the sky, landmark on the horizon right of centre, sign on a pole at the
    left of the ground, road filling the bottom quarter (fixed height).
    ``occluded`` clues are drawn and then hidden entirely (they are not in
    ``clues``' legible set); ``partial`` ones get a <= 25% occluder and stay legible.
    """
    if image_size < 28:
        raise ValueError(f"image_size must be >= 28 pixels, got {image_size}")
    p = world.places[clues.place]
    cv = _Canvas(image_size)
    horizon = float(rng.uniform(0.43, 0.49))
    if clues.locatable:
        pal = PALETTES[p.continent]
        sky, ground = _jitter_rgb(rng, pal.sky, 8), _jitter_rgb(rng, pal.ground, 8)
    else:  # overcast grey and bare concrete: no continent
        gs, gg = int(rng.integers(150, 200)), int(rng.integers(95, 135))
        sky, ground = (gs, gs, gs + 4), (gg, gg, gg - 4)
    # sky lightens towards the horizon (4 bands); ground is flat
    for b in range(4):
        band = (min(255, sky[0] + 6 * b), min(255, sky[1] + 6 * b), min(255, sky[2] + 6 * b))
        cv.rect((0, horizon * b / 4, 1, horizon * (b + 1) / 4), band)
    cv.rect((0, horizon, 1, 1), ground)

    # clue boxes (unit coordinates), drawn only if legible or to be occluded
    bx, by = float(rng.uniform(0.03, 0.09)), float(rng.uniform(0.04, 0.1))
    banner_box = (bx, by, bx + float(rng.uniform(0.3, 0.34)), by + float(rng.uniform(0.19, 0.23)))
    lw, lh = float(rng.uniform(0.28, 0.32)), float(rng.uniform(0.32, 0.38))
    lx = float(rng.uniform(0.62, 0.7)) - lw / 2
    landmark_box = (lx, horizon - lh, lx + lw, horizon + 0.005)
    sr = float(rng.uniform(0.075, 0.09))
    scx, scy = float(rng.uniform(0.17, 0.23)), float(rng.uniform(horizon + 0.1, horizon + 0.14))
    sign_box = (scx - sr * 1.25, scy - sr * 1.25, scx + sr * 1.25, scy + sr * 1.25)
    road_top = ROAD_TOP

    drawn = set(clues.legible) | set(occluded)
    avoid = [
        box
        for name, box in (("banner", banner_box), ("landmark", landmark_box), ("sign", sign_box))
        if name in drawn
    ]
    avoid.append((0.0, road_top - 0.01, 1.0, 1.0))  # distractors stay off the road area
    for _ in range(int(rng.integers(2, 7))):
        _draw_distractor(cv, rng, horizon, avoid)

    if "tint" in drawn:
        lvl = clues.tint_level or tint_of(world, p.country_code, clues.lat, clues.lon)
        cv.rect((0.0, road_top, 1.0, 1.0), (lvl[0], TINT_GREEN, lvl[1]))
        cv.rect((0.0, road_top, 1.0, road_top + 0.012), (215, 215, 215))  # kerb: "a road is here"
    if "landmark" in drawn:
        _draw_parts(cv, _glyph_parts(p.glyph), landmark_box, _jitter_rgb(rng, (52, 52, 62), 6))
    if "banner" in drawn:
        x0, y0, x1, y1 = banner_box
        cv.rect((x0 - 0.012, y0 - 0.02, x0, horizon + 0.04), (60, 60, 60))  # pole
        orientation, *stripes = p.banner
        for j, colour in enumerate(stripes):
            if orientation == "vertical":
                cv.rect(
                    (x0 + (x1 - x0) * j / 3, y0, x0 + (x1 - x0) * (j + 1) / 3, y1), BANNER_COLOURS[colour]
                )
            else:
                cv.rect(
                    (x0, y0 + (y1 - y0) * j / 3, x1, y0 + (y1 - y0) * (j + 1) / 3), BANNER_COLOURS[colour]
                )
    if "sign" in drawn:
        cv.rect((scx - 0.008, scy, scx + 0.008, min(road_top, scy + 0.2)), (90, 90, 90))  # pole
        _draw_sign(cv, p.sign[1], SIGN_COLOURS[p.sign[0]], scx, scy, sr)

    boxes = {
        "banner": banner_box,
        "landmark": landmark_box,
        "sign": sign_box,
        "tint": (0.3, road_top, 0.7, 1.0),
    }
    for name in occluded:
        _occlude(cv, rng, boxes[name], full=True)
    for name in partial:
        _occlude(cv, rng, boxes[name], full=False)

    im = cv.im.resize((image_size, image_size), Image.Resampling.BOX)
    if noise_std > 0:
        a = np.asarray(im, dtype=np.float32) + rng.normal(0.0, noise_std, size=(image_size, image_size, 3))
        im = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "RGB")
    return im


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(
        buf, format="PNG", compress_level=1
    )  # deterministic (no timestamps); level 1: noisy pixels barely compress anyway, 3x faster
    return buf.getvalue()
