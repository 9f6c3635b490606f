"""Clues of one image: which are legible, the road-tint encoding, and the reasoning text."""

from __future__ import annotations

from dataclasses import dataclass

from georeason.datasets.synthetic.world import PALETTES, SyntheticWorld
from georeason.types import CONTINENT_NAMES

# Road tint: red channel = how far north, blue channel = how far east in the country's box.
# 176 levels per axis; green is fixed and low (every palette's ground and sky has green
# >= 84), so a road of any tint never looks like bare ground.
TINT_LOW, TINT_SPAN, TINT_GREEN = 40, 175, 30


@dataclass(frozen=True)
class ClueRates:
    """How often each clue is legible in a locatable image.

    ``visible``: probability that the clue is drawn at all. ``occluded``: of the
    drawn ones, the share hidden entirely behind an occluder (illegible).
    ``partial``: of the legible ones, the share partly (<= 25%) covered but still
    legible (robustness). The palette is always visible in a locatable image.
    """

    banner: float = 0.85
    sign: float = 0.85
    landmark: float = 0.85
    tint: float = 0.85
    occluded: float = 0.05
    partial: float = 0.10

    def __post_init__(self) -> None:
        for name in ("banner", "sign", "landmark", "tint", "occluded", "partial"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"ClueRates.{name} must be a probability in [0, 1], got {v}")


@dataclass(frozen=True)
class Clues:
    """What one image shows: the place, the photo's coordinates and which clues are legible."""

    place: int  # WorldPlace.index
    lat: float
    lon: float
    locatable: bool
    banner: bool = False
    sign: bool = False
    landmark: bool = False
    tint: bool = False
    tint_level: tuple[int, int] | None = None  # (red = north, blue = east) colour levels

    @property
    def legible(self) -> list[str]:
        return [c for c in ("banner", "sign", "landmark", "tint") if getattr(self, c)]


def tint_of(world: SyntheticWorld, cc: str, lat: float, lon: float) -> tuple[int, int]:
    """Road colour levels (red, blue) of a photo at (lat, lon) in country ``cc``."""
    lat0, lat1, lon0, lon1 = world.tint_boxes[cc]
    un = min(max((lat - lat0) / (lat1 - lat0), 0.0), 1.0)
    ue = min(max((lon - lon0) / (lon1 - lon0), 0.0), 1.0)
    return TINT_LOW + round(un * TINT_SPAN), TINT_LOW + round(ue * TINT_SPAN)


def decode_tint(world: SyntheticWorld, cc: str, level: tuple[int, int]) -> tuple[float, float]:
    """Inverse of :func:`tint_of`: the centre of the colour level's cell (quantisation error only)."""
    lat0, lat1, lon0, lon1 = world.tint_boxes[cc]
    un = (level[0] - TINT_LOW) / TINT_SPAN
    ue = (level[1] - TINT_LOW) / TINT_SPAN
    return lat0 + un * (lat1 - lat0), lon0 + ue * (lon1 - lon0)


def tint_direction(world: SyntheticWorld, cc: str, lat: float, lon: float) -> str:
    """Coarse words for the tint, in thirds of the country's box: "north-east", "west", "central"."""
    lat0, lat1, lon0, lon1 = world.tint_boxes[cc]
    un = (lat - lat0) / (lat1 - lat0)
    ue = (lon - lon0) / (lon1 - lon0)
    ns = "south" if un < 1 / 3 else ("north" if un > 2 / 3 else "")
    ew = "west" if ue < 1 / 3 else ("east" if ue > 2 / 3 else "")
    return "-".join(w for w in (ns, ew) if w) or "central"


def describe(world: SyntheticWorld, clues: Clues) -> tuple[str, list[str]]:
    """The deterministic reasoning text and visual-entity list of an image.

    Each legible clue is named by its phrase (which is also its entity, so
    GLOBE's R_vis can check that the reasoning mentions it) followed by the
    level it encodes. Example::

        green meadow: Europe. vertical blue-white-red banner: France.
        red circle sign: Occitanie. dome landmark: Toulouse. south-west road tint.
    """
    if not clues.locatable:
        return "no geographic clue: grey overcast sky and bare ground.", []
    p = world.places[clues.place]
    pal = PALETTES[p.continent].name
    parts = [f"{pal}: {CONTINENT_NAMES[p.continent]}."]
    entities = [pal]
    if clues.banner:
        parts.append(f"{p.banner_phrase}: {p.country}.")
        entities.append(p.banner_phrase)
    if clues.sign:
        parts.append(f"{p.sign_phrase}: {p.admin1}.")
        entities.append(p.sign_phrase)
    if clues.landmark:
        parts.append(f"{p.landmark_phrase}: {p.city}.")
        entities.append(p.landmark_phrase)
    if clues.tint:
        phrase = f"{tint_direction(world, p.country_code, clues.lat, clues.lon)} road tint"
        parts.append(phrase + ".")
        entities.append(phrase)
    return " ".join(parts), entities
