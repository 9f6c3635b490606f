"""A synthetic world that a tiny VLM can learn: procedural photos of real places.

Each image is drawn (PIL + numpy, no torch) for a real GeoNames city with clues
that follow the place hierarchy; docs/synthetic_world.md explains the design,
the split and the ceilings. In short:

=============  =====================================  =====================================
clue           what it shows                          what it encodes
=============  =====================================  =====================================
palette        sky and ground colours (background)    continent (its "climate")
banner         flag with three stripes, on a pole     country (unique in the world)
sign           coloured shape on a pole               admin1 (unique only within its country)
landmark       dark silhouette on the horizon         city (unique only within its admin1)
road tint      colour of the road in the foreground   where the photo is inside its country,
                                                      continuously (red = north, blue = east)
=============  =====================================  =====================================

Signs and landmarks are reused across countries and regions, so reading them
needs the coarser levels first: the clues follow the hierarchy continent ->
country -> admin1 -> city. The road tint is the one *continuous* clue: its colour
varies linearly with the photo's latitude and longitude inside the country's
bounding box, so a model can place a photo of a city it has never seen, and a
distance reward has a gradient beyond exact class matching.

The split is BY PLACE: in every admin1 region some cities are held out for the
test split; their regions (banner, sign, palette) are all seen in training, but
their landmark and name never are. Coarse levels therefore generalise, while the
coordinates of a held-out city can only be inferred from the road tint. A model
that imitates training answers names a seen city and copies its coordinates
(error: the distance between cities of the region, ~100 km); a model optimised
for distance can read the tint and do better. :func:`oracle_predict` computes
its bounds ("namer", "centre", "snap", "reader") on every generated image.

Determinism: the places and their codebook (which banner is France's, which
sign is Bavaria's) depend only on the gazetteer and the world-size arguments;
``seed`` draws the train/test split of cities and every photo. The same
arguments give byte-identical PNGs and identical rows.
"""

from __future__ import annotations

import io
import json
import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw

from georeason.types import CONTINENT_NAMES, GeoSample

if TYPE_CHECKING:  # `datasets` is imported inside functions (heavy)
    from datasets import DatasetDict

__all__ = [
    "BANNER_COLOURS",
    "CONTINENT_PRIORITY",
    "GLYPHS",
    "ORACLE_MODES",
    "PALETTES",
    "SIGN_COLOURS",
    "SIGN_SHAPES",
    "ClueRates",
    "Clues",
    "SyntheticData",
    "SyntheticWorld",
    "WorldPlace",
    "build_world",
    "ceiling_report",
    "generate_world",
    "make_world",
    "oracle_predict",
    "render_image",
    "save_world",
]

RGB = tuple[int, int, int]

# --------------------------------------------------------------------------------------
# The visual vocabulary
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Palette:
    """Background colours of a continent ("climate"): sky above the horizon, ground below."""

    name: str  # phrase used in the reasoning text and as a visual entity
    sky: RGB
    ground: RGB


# Chosen far apart in RGB (ground and sky both differ between any two continents),
# so the continent is readable from the mean colour of any 14x14 patch.
PALETTES: dict[str, Palette] = {
    "AF": Palette("ochre savanna", (236, 214, 160), (196, 140, 64)),
    "AS": Palette("olive paddy", (196, 204, 214), (142, 160, 58)),
    "EU": Palette("green meadow", (150, 172, 204), (72, 132, 62)),
    "NA": Palette("brown prairie", (100, 156, 226), (150, 112, 84)),
    "SA": Palette("deep jungle", (168, 206, 186), (28, 96, 48)),
    "OC": Palette("red outback", (64, 136, 224), (186, 84, 42)),
}

BANNER_COLOURS: dict[str, RGB] = {
    "red": (200, 30, 40),
    "white": (240, 240, 240),
    "blue": (30, 60, 170),
    "green": (20, 130, 60),
    "yellow": (245, 200, 30),
    "black": (25, 25, 25),
    "orange": (240, 120, 20),
}
BANNER_ORIENTATIONS = ("vertical", "horizontal")

SIGN_COLOURS: dict[str, RGB] = {
    "red": (210, 40, 40),
    "blue": (40, 80, 200),
    "green": (40, 150, 70),
    "yellow": (240, 210, 40),
    "white": (245, 245, 245),
    "purple": (130, 50, 160),
}
SIGN_SHAPES = ("circle", "triangle", "square", "diamond", "cross")

GLYPHS = ("tower", "dome", "arch", "pyramid", "twin towers", "spire", "bridge", "pagoda")

# Road tint: red channel = how far north, blue channel = how far east in the country's box.
# 176 levels per axis; green is fixed and low (every palette's ground and sky has green
# >= 84), so a road of any tint never looks like bare ground.
TINT_LOW, TINT_SPAN, TINT_GREEN = 40, 175, 30
# The road fills the bottom quarter, full width and at a fixed height: for sides that are
# multiples of 56 it is whole rows of 14-pixel patches, so a patch embedding reads its
# colour without mixing it with the ground (the tint is the one clue read as a number).
ROAD_TOP = 0.75

# Countries tried for the world, best first per continent: countries with several
# admin1 regions that each hold well-separated cities (>= 15k inhabitants). The
# world takes them round-robin over continents so every inhabited continent is in.
CONTINENT_PRIORITY: dict[str, tuple[str, ...]] = {
    "EU": ("FR", "DE", "ES", "IT", "PL", "GB", "UA", "RO", "SE"),
    "AS": ("IN", "CN", "JP", "ID", "IR", "PK", "SA", "TR", "PH"),
    "AF": ("ZA", "MA", "NG", "ET", "TZ", "DZ", "KE", "EG"),
    "NA": ("US", "MX", "CA", "CU", "GT"),
    "SA": ("BR", "AR", "CO", "VE", "CL", "PE"),
    "OC": ("AU", "NZ", "PG"),
}

# Fixed seed of the codebook (banner/sign/glyph assignment): the world's "rules" do not
# change with the split seed, so models trained on different seeds see the same world.
_CODEBOOK_SALT = 20260101
_KM_PER_DEG = 111.19508  # mean-radius degree of latitude (R = 6371.0088 km)


# --------------------------------------------------------------------------------------
# The world: places and their codebook
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorldPlace:
    """One city of the world with its clue codebook."""

    index: int
    continent: str
    country_code: str
    country: str
    admin1: str
    city: str
    lat: float
    lon: float
    population: int
    split: str  # "train" or "test" (held-out city)
    banner: tuple[str, str, str, str]  # (orientation, colour1, colour2, colour3): the country's
    sign: tuple[str, str]  # (colour, shape): the admin1's, unique within the country
    glyph: str  # the city's landmark, unique within the admin1

    @property
    def banner_phrase(self) -> str:
        return f"{self.banner[0]} {'-'.join(self.banner[1:])} banner"

    @property
    def sign_phrase(self) -> str:
        return f"{self.sign[0]} {self.sign[1]} sign"

    @property
    def landmark_phrase(self) -> str:
        return f"{self.glyph} landmark"


@dataclass
class SyntheticWorld:
    """The places of the world, their split and codebook, and each country's tint box."""

    places: list[WorldPlace]
    # country code -> (lat_min, lat_max, lon_min, lon_max) of the road-tint encoding
    tint_boxes: dict[str, tuple[float, float, float, float]]
    seed: int
    jitter_km: float

    def split_places(self, split: str) -> list[WorldPlace]:
        return [p for p in self.places if p.split == split]

    @property
    def countries(self) -> list[str]:
        return sorted({p.country_code for p in self.places})

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "jitter_km": self.jitter_km,
            "tint_boxes": {k: list(v) for k, v in self.tint_boxes.items()},
            "places": [asdict(p) for p in self.places],
        }


def _stable_rng(*keys: object) -> np.random.Generator:
    """A generator seeded by stable hashes of ``keys`` (Python's hash() is salted per process)."""
    return np.random.default_rng([_CODEBOOK_SALT, *(zlib.crc32(str(k).encode()) for k in keys)])


def _round_robin(countries: Sequence[str] | None) -> list[str]:
    if countries is not None:
        return [c.upper() for c in countries]
    order: list[str] = []
    lists = list(CONTINENT_PRIORITY.values())
    for i in range(max(len(v) for v in lists)):
        order.extend(v[i] for v in lists if i < len(v))
    return order


def _ring_points(lat: float, lon: float, radius_km: float, n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The point and ``n`` points on a circle of ``radius_km`` around it."""
    ang = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    dlat = radius_km * np.cos(ang) / _KM_PER_DEG
    dlon = radius_km * np.sin(ang) / (_KM_PER_DEG * max(math.cos(math.radians(lat)), 1e-6))
    return np.concatenate([[lat], lat + dlat]), np.concatenate([[lon], lon + dlon])


@lru_cache(maxsize=16)
def _select_places(
    countries: tuple[str, ...],
    n_countries: int,
    admin1_per_country: int,
    cities_per_admin1: int,
    min_population: int,
    min_separation_km: float,
    ring_km: float,
    strict: bool,
) -> tuple[tuple[str, str, str, int], ...]:
    """Pick (country, admin1, city index in the gazetteer) deterministically.

    Per country, admin1 regions are ranked by the population of their
    ``cities_per_admin1`` largest well-separated cities; within a region cities
    are taken greedily by population, keeping every pair of world cities at least
    ``min_separation_km`` apart (so a 25 km hit can only mean one city) and
    keeping only cities whose whole ``ring_km`` neighbourhood reverse-geocodes to
    the same country and admin1, with the city point itself on land (so jittered
    photos keep their labels).
    """
    from georeason.geo import gazetteer, haversine_km, reverse_geocode_batch

    g = gazetteer()
    chosen: list[int] = []  # gazetteer rows, whole world
    out: list[tuple[str, str, str, int]] = []
    n_done = 0

    def far_enough(i: int, others: list[int]) -> bool:
        if not others:
            return True
        d = haversine_km(g.lat[i], g.lon[i], g.lat[others], g.lon[others])
        return bool(np.min(d) >= min_separation_km)

    def labels_stable(i: int) -> bool:
        lats, lons = _ring_points(float(g.lat[i]), float(g.lon[i]), ring_km)
        t = reverse_geocode_batch(lats, lons)
        return bool(
            np.all(t.valid)
            and t.on_land[0]  # the city's own point: the fallback photo position
            and np.all(t.country_code == g.country_code[i])
            and np.all(t.admin1 == g.admin1[i])
        )

    for cc in countries:
        if n_done == n_countries:
            break
        rows = np.flatnonzero((g.country_code == cc) & (g.population >= min_population) & (g.admin1 != ""))
        by_admin: dict[str, list[int]] = {}
        for i in rows[np.argsort(-g.population[rows], kind="stable")]:
            by_admin.setdefault(str(g.admin1[i]), []).append(int(i))
        # cheap ranking first (separation only), the reverse-geocoding check only on the way down
        ranked: list[tuple[int, str]] = []
        for a, idx in by_admin.items():
            picked: list[int] = []
            for i in idx:
                if far_enough(i, picked):
                    picked.append(i)
                if len(picked) == cities_per_admin1:
                    ranked.append((int(sum(g.population[picked])), a))
                    break
        ranked.sort(key=lambda t: (-t[0], t[1]))
        country_rows: list[tuple[str, list[int]]] = []
        for _, a in ranked:
            picked = []
            for i in by_admin[a]:
                if far_enough(i, chosen + [j for _, r in country_rows for j in r] + picked) and labels_stable(
                    i
                ):
                    picked.append(i)
                if len(picked) == cities_per_admin1:
                    break
            if len(picked) == cities_per_admin1:
                country_rows.append((a, picked))
            if len(country_rows) == admin1_per_country:
                break
        if len(country_rows) < admin1_per_country:
            if strict:
                raise ValueError(
                    f"country {cc!r} has fewer than {admin1_per_country} admin1 regions with "
                    f"{cities_per_admin1} cities of >= {min_population} inhabitants at least "
                    f"{min_separation_km} km apart; lower cities_per_admin1 or min_population, or drop it"
                )
            continue
        for a, picked in country_rows:
            chosen.extend(picked)
            out.extend((cc, a, str(g.name[i]), i) for i in picked)
        n_done += 1
    if n_done < n_countries:
        raise ValueError(
            f"only {n_done} countries can supply {admin1_per_country} admin1 regions x "
            f"{cities_per_admin1} cities (asked for {n_countries}); pass countries=[...] or lower the sizes"
        )
    return tuple(out)


def build_world(
    *,
    seed: int = 0,
    n_places: int = 192,
    n_countries: int = 24,
    admin1_per_country: int = 2,
    test_share: float = 0.25,
    countries: Sequence[str] | None = None,
    min_population: int = 15_000,
    min_separation_km: float = 50.0,
    jitter_km: float = 5.0,
) -> SyntheticWorld:
    """Choose the world's cities, their codebook and the train/test split of cities.

    ``n_places`` cities = ``n_countries`` x ``admin1_per_country`` x cities per
    admin1 (so it must divide evenly). In every admin1, ``round(test_share x
    cities)`` cities (at least one, and at least one left for training) are held
    out for the test split; the rest are training cities. The split is drawn
    from ``seed``; places and codebook do not depend on it.
    """
    if n_countries < 1 or admin1_per_country < 1:
        raise ValueError("n_countries and admin1_per_country must be >= 1")
    per_region = n_countries * admin1_per_country
    if n_places % per_region:
        raise ValueError(
            f"n_places={n_places} must be a multiple of n_countries x admin1_per_country = {per_region}"
        )
    k = n_places // per_region
    if not 2 <= k <= len(GLYPHS):
        raise ValueError(
            f"n_places / (n_countries x admin1_per_country) = {k} cities per admin1; it must be in "
            f"[2, {len(GLYPHS)}] (one landmark glyph per city of a region, >= 1 train and >= 1 test city)"
        )
    if admin1_per_country > len(SIGN_COLOURS) * len(SIGN_SHAPES):
        raise ValueError(
            f"admin1_per_country must be <= {len(SIGN_COLOURS) * len(SIGN_SHAPES)} (distinct signs)"
        )
    if not 0.0 < test_share < 1.0:
        raise ValueError(f"test_share must be in (0, 1), got {test_share}")
    if jitter_km < 0 or 2 * jitter_km >= min_separation_km:
        raise ValueError("jitter_km must be >= 0 and < min_separation_km / 2")

    order = _round_robin(countries)
    for cc in order:
        if len(cc) != 2 or not cc.isalpha():
            raise ValueError(f"not an ISO 3166-1 alpha-2 country code: {cc!r}")
    rows = _select_places(
        tuple(order),
        n_countries,
        admin1_per_country,
        k,
        min_population,
        float(min_separation_km),
        float(jitter_km),
        countries is not None,
    )

    from georeason.geo import continent_of, country_name, gazetteer

    g = gazetteer()
    n_test = min(k - 1, max(1, round(test_share * k)))
    split_rng = np.random.default_rng([seed, 1])

    # codebook: banners unique in the world, signs unique in a country, glyphs unique in an admin1
    all_banners = [
        (o, a, b, c)
        for o in BANNER_ORIENTATIONS
        for a in BANNER_COLOURS
        for b in BANNER_COLOURS
        for c in BANNER_COLOURS
        if len({a, b, c}) == 3
    ]
    all_signs = [(c, s) for c in SIGN_COLOURS for s in SIGN_SHAPES]
    used_banners: set[tuple[str, str, str, str]] = set()
    places: list[WorldPlace] = []
    country_codes = sorted({r[0] for r in rows}, key=[r[0] for r in rows].index)
    for cc in country_codes:
        continent = continent_of(cc)
        if continent not in PALETTES:
            raise ValueError(f"country {cc!r} is on continent {continent!r}, which has no palette")
        # each entity's codebook entry comes from its own stable hash, so adding a country
        # to the world does not reshuffle the others (collisions take the next free entry)
        banner = next(
            all_banners[j]
            for j in _stable_rng("banner", cc).permutation(len(all_banners))
            if all_banners[j] not in used_banners
        )
        used_banners.add(banner)
        admins = [a for a in dict.fromkeys(r[1] for r in rows if r[0] == cc)]
        used_signs: set[tuple[str, str]] = set()
        for a in admins:
            sign = next(
                all_signs[j]
                for j in _stable_rng("sign", cc, a).permutation(len(all_signs))
                if all_signs[j] not in used_signs
            )
            used_signs.add(sign)
            region = [r for r in rows if r[0] == cc and r[1] == a]
            glyphs = [GLYPHS[j] for j in _stable_rng("glyph", cc, a).permutation(len(GLYPHS))[: len(region)]]
            test_idx = set(split_rng.permutation(len(region))[:n_test].tolist())
            for j, (_, _, city, gi) in enumerate(region):
                places.append(
                    WorldPlace(
                        index=len(places),
                        continent=str(continent),
                        country_code=cc,
                        country=country_name(cc),
                        admin1=a,
                        city=city,
                        lat=float(g.lat[gi]),
                        lon=float(g.lon[gi]),
                        population=int(g.population[gi]),
                        split="test" if j in test_idx else "train",
                        banner=banner,
                        sign=sign,
                        glyph=glyphs[j],
                    )
                )

    tint_boxes: dict[str, tuple[float, float, float, float]] = {}
    for cc in country_codes:
        lat = np.array([p.lat for p in places if p.country_code == cc])
        lon = np.array([p.lon for p in places if p.country_code == cc])
        if lon.max() - lon.min() > 180:
            raise ValueError(f"country {cc!r} spans the antimeridian; the road tint cannot encode it")
        # pad 10% (and at least 0.5 deg) so jittered photos stay inside the box
        plat = max(0.1 * (lat.max() - lat.min()), 0.5)
        plon = max(0.1 * (lon.max() - lon.min()), 0.5)
        tint_boxes[cc] = (
            float(lat.min() - plat),
            float(lat.max() + plat),
            float(lon.min() - plon),
            float(lon.max() + plon),
        )
    return SyntheticWorld(places=places, tint_boxes=tint_boxes, seed=seed, jitter_km=jitter_km)


# --------------------------------------------------------------------------------------
# Clues of one image
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------

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


def _png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(
        buf, format="PNG", compress_level=1
    )  # deterministic (no timestamps); level 1: noisy pixels barely compress anyway, 3x faster
    return buf.getvalue()


# --------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------


def _photo_coordinates(
    world: SyntheticWorld,
    places: list[WorldPlace],
    rng: np.random.Generator,
    *,
    radius_km: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Photo coordinates uniform in a disk of ``radius_km`` (default: the world's
    ``jitter_km``) around each city.

    A position is redrawn (up to 5 times, then the city's own point, which is on
    land) where reverse geocoding puts it in the sea (~4% of draws: coastal and
    river cities) or in another country or admin1 (rare: places were chosen with
    a ring of ``jitter_km`` that geocodes to their own country and admin1; more
    often for a wide ``radius_km``).
    """
    from georeason.geo import reverse_geocode_batch

    radius = world.jitter_km if radius_km is None else radius_km
    n = len(places)
    clat = np.array([p.lat for p in places])
    clon = np.array([p.lon for p in places])
    lat, lon = clat.copy(), clon.copy()
    todo = np.arange(n)
    for _ in range(5 if radius <= world.jitter_km else 10):
        if not len(todo) or radius == 0:
            break
        r = radius * np.sqrt(rng.random(len(todo)))
        th = rng.uniform(0, 2 * np.pi, len(todo))
        lat[todo] = clat[todo] + r * np.cos(th) / _KM_PER_DEG
        lon[todo] = clon[todo] + r * np.sin(th) / (_KM_PER_DEG * np.cos(np.radians(clat[todo])))
        t = reverse_geocode_batch(lat[todo], lon[todo])
        want_cc = np.array([places[i].country_code for i in todo], dtype=object)
        want_a1 = np.array([places[i].admin1 for i in todo], dtype=object)
        ok = t.valid & t.on_land & (t.country_code == want_cc) & (t.admin1 == want_a1)
        todo = todo[~ok]
    lat[todo], lon[todo] = clat[todo], clon[todo]
    return lat, lon


def _balanced_places(places: list[WorldPlace], n: int, rng: np.random.Generator) -> list[WorldPlace]:
    """``n`` draws cycling through all cities: every city gets n/len or n/len + 1 images.

    Each cycle interleaves regions (one city of every admin1 region, in shuffled
    order, then a second city of each, ...), so even a short prefix covers every
    region: with n >= number of regions, every region is in the split.
    """
    regions: dict[tuple[str, str], list[WorldPlace]] = {}
    for p in places:
        regions.setdefault((p.country_code, p.admin1), []).append(p)
    keys = list(regions)
    out: list[WorldPlace] = []
    while len(out) < n:
        shuffled = [
            [regions[keys[k]][i] for i in rng.permutation(len(regions[keys[k]]))]
            for k in rng.permutation(len(keys))
        ]
        for j in range(max(len(r) for r in shuffled)):
            out.extend(r[j] for r in shuffled if j < len(r))
    return out[:n]


# Random streams of the splits; "spread" is the geotagged-only pool of draw_spread_photos.
_SPLIT_KEYS = {"train": 0, "test": 1, "spread": 2}


def _make_split(
    world: SyntheticWorld,
    split: str,
    n: int,
    *,
    image_size: int,
    no_clue_share: float,
    rates: ClueRates,
    radius_km: float | None = None,
) -> tuple[list[dict[str, Any]], list[Clues]]:
    split_key = _SPLIT_KEYS[split]
    places = world.split_places("train" if split == "spread" else split)
    if n and not places:
        raise ValueError(f"the world has no {split} places")
    rng = np.random.default_rng([world.seed, 2, split_key])
    chosen = _balanced_places(places, n, rng)
    lat, lon = _photo_coordinates(world, chosen, rng, radius_km=radius_km)
    # an exact number of clue-less images, so the share is what was asked (not a binomial draw)
    no_clue = np.zeros(n, dtype=bool)
    no_clue[rng.permutation(n)[: round(no_clue_share * n)]] = True

    rows: list[dict[str, Any]] = []
    all_clues: list[Clues] = []
    for i, p in enumerate(chosen):
        r = np.random.default_rng([world.seed, 3, split_key, i])  # per image: order-independent
        occluded: list[str] = []
        partial: list[str] = []
        if no_clue[i]:
            clues = Clues(place=p.index, lat=float(lat[i]), lon=float(lon[i]), locatable=False)
        else:
            legible: dict[str, bool] = {}
            for c in ("banner", "sign", "landmark", "tint"):
                shown = bool(r.random() < getattr(rates, c))
                if shown and c != "tint" and r.random() < rates.occluded:
                    occluded.append(c)
                    shown = False
                legible[c] = shown
                if shown and r.random() < rates.partial:
                    partial.append(c)
            level = tint_of(world, p.country_code, float(lat[i]), float(lon[i])) if legible["tint"] else None
            clues = Clues(
                place=p.index,
                lat=float(lat[i]),
                lon=float(lon[i]),
                locatable=True,
                tint_level=level,
                **legible,
            )
        im = render_image(world, clues, r, image_size, occluded=occluded, partial=partial)
        reasoning, entities = describe(world, clues)
        sample = GeoSample(
            id=f"synth{world.seed}-{split}-{i:06d}",
            image={"bytes": _png_bytes(im), "path": None},
            lat=clues.lat,
            lon=clues.lon,
            continent=p.continent,
            country_code=p.country_code,
            country=p.country,
            admin1=p.admin1,
            city=p.city,
            locatable=clues.locatable,
            reasoning=reasoning,
            entities=entities,
        )
        rows.append(sample.to_dict())
        all_clues.append(clues)
    return rows, all_clues


# --------------------------------------------------------------------------------------
# Ceilings: what an ideal reader of the clues could score
# --------------------------------------------------------------------------------------


def _medoid(places: list[WorldPlace]) -> WorldPlace:
    """The place minimising the summed distance to the others (the best single known answer)."""
    from georeason.geo import haversine_km

    lat = np.array([p.lat for p in places])
    lon = np.array([p.lon for p in places])
    d = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    return places[int(np.argmin(d.sum(axis=1)))]


@dataclass(frozen=True)
class OraclePrediction:
    lat: float
    lon: float
    country_code: str
    admin1: str
    city: str


ORACLE_MODES = ("namer", "centre", "snap", "reader")


def oracle_predict(world: SyntheticWorld, clues: Clues, mode: str = "reader") -> OraclePrediction:
    """What an ideal reader of the legible clues answers, knowing only the TRAINING places.

    It keeps the training cities consistent with the legible clues (continent
    palette, then banner, sign, landmark; a clue that matches no training city
    belongs to a place never seen in training — a held-out city's landmark — and
    is ignored). Then, by ``mode``:

    - ``"namer"``: the medoid of the candidates (the seen city with the least
      summed distance to the others): the best answer that ignores the road
      tint and copies a training target (a seen city and its coordinates);
    - ``"centre"``: the geometric median of the candidates' coordinates (names
      of their medoid): the answer that minimises the summed distance to the
      seen cities without the tint, usually a point no city stands on. It is
      what a distance reward favours when the tint is not read, and what
      imitating training answers (always a city's coordinates) cannot give;
    - ``"snap"``: if the country is certain and the tint legible, the candidate
      city nearest to the position the tint encodes: still a seen city, but
      chosen with the continuous clue; otherwise as ``namer``;
    - ``"reader"``: if the country is certain and the tint legible, the
      position the tint encodes (error: colour quantisation only, a few km),
      pulled within ``jitter_km`` of the city when the landmark names a seen
      city; otherwise as ``namer``. This is the ceiling.

    Clue-less images get the medoid of all training cities (in every mode).
    """
    if mode not in ORACLE_MODES:
        raise ValueError(f"mode must be one of {ORACLE_MODES}, got {mode!r}")
    known = world.split_places("train")
    if not clues.locatable:
        m = _medoid(known)
        return OraclePrediction(m.lat, m.lon, m.country_code, m.admin1, m.city)
    p = world.places[clues.place]
    cand = [q for q in known if q.continent == p.continent]
    for attr, legible in (("banner", clues.banner), ("sign", clues.sign), ("glyph", clues.landmark)):
        if legible:
            narrowed = [q for q in cand if getattr(q, attr) == getattr(p, attr)]
            cand = narrowed or cand  # no match: a clue of a place never seen in training
    countries = {q.country_code for q in cand}
    if mode in ("snap", "reader") and clues.tint and clues.tint_level is not None and len(countries) == 1:
        from georeason.geo import haversine_km

        cc = next(iter(countries))
        lat, lon = decode_tint(world, cc, clues.tint_level)
        d = haversine_km(lat, lon, np.array([q.lat for q in cand]), np.array([q.lon for q in cand]))
        near = cand[int(np.argmin(d))]
        if mode == "snap":
            return OraclePrediction(near.lat, near.lon, cc, near.admin1, near.city)
        lat0, lat1, lon0, lon1 = world.tint_boxes[cc]
        half_cell_km = (
            0.5
            * _KM_PER_DEG
            * math.hypot((lat1 - lat0) / TINT_SPAN, (lon1 - lon0) / TINT_SPAN * math.cos(math.radians(lat)))
        )
        if len(cand) == 1 and world.jitter_km < d[0] <= world.jitter_km + half_cell_km + 1.0:
            # the landmark names a seen city and the tint agrees with it: the photo lies within
            # jitter_km of that city, so pull the decoded point onto its disk (the tint cell can
            # be wider). A tint that disagrees means the landmark match was a coincidence (a
            # glyph reused by another city): trust the tint.
            f = world.jitter_km / float(d[0])
            lat, lon = near.lat + f * (lat - near.lat), near.lon + f * (lon - near.lon)
        return OraclePrediction(lat, lon, cc, near.admin1, near.city)
    m = _medoid(cand)
    if mode == "centre":
        lat, lon = _geometric_median(cand)
        return OraclePrediction(lat, lon, m.country_code, m.admin1, m.city)
    return OraclePrediction(m.lat, m.lon, m.country_code, m.admin1, m.city)


def _geometric_median(places: list[WorldPlace], iters: int = 100) -> tuple[float, float]:
    """The point minimising the summed haversine distance to ``places`` (Weiszfeld's
    iteration on lat/lon; candidates share a country or continent, so no antimeridian)."""
    from georeason.geo import haversine_km

    pts = np.array([(p.lat, p.lon) for p in places])
    x = pts.mean(axis=0)
    for _ in range(iters):
        w = 1.0 / np.maximum(haversine_km(x[0], x[1], pts[:, 0], pts[:, 1]), 1e-6)
        x = (pts * w[:, None]).sum(axis=0) / w.sum()
    return float(x[0]), float(x[1])


ACC_THRESHOLDS_KM = (1.0, 25.0, 200.0, 750.0, 2500.0)


def ceiling_report(world: SyntheticWorld, clues: Sequence[Clues], mode: str = "reader") -> dict[str, float]:
    """acc@km, median km, country/admin1/city accuracy of :func:`oracle_predict` on ``clues``."""
    from georeason.geo import haversine_km

    if not clues:
        return {}
    preds = [oracle_predict(world, c, mode) for c in clues]
    truth = [world.places[c.place] for c in clues]
    d = haversine_km(
        np.array([c.lat for c in clues]),
        np.array([c.lon for c in clues]),
        np.array([q.lat for q in preds]),
        np.array([q.lon for q in preds]),
    )
    out: dict[str, float] = {f"acc@{t:g}km": float(np.mean(d <= t)) for t in ACC_THRESHOLDS_KM}
    out["median_km"] = float(np.median(d))
    out["country_acc"] = float(
        np.mean([q.country_code == t.country_code for q, t in zip(preds, truth, strict=True)])
    )
    out["admin1_acc"] = float(
        np.mean(
            [
                (q.country_code, q.admin1) == (t.country_code, t.admin1)
                for q, t in zip(preds, truth, strict=True)
            ]
        )
    )
    out["city_acc"] = float(np.mean([q.city == t.city for q, t in zip(preds, truth, strict=True)]))
    return out


# --------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------


def _features() -> Any:
    from datasets import Features, List, Value
    from datasets import Image as ImageFeature

    return Features(
        {
            "id": Value("string"),
            "image": ImageFeature(),
            "lat": Value("float64"),
            "lon": Value("float64"),
            "continent": Value("string"),
            "country_code": Value("string"),
            "country": Value("string"),
            "admin1": Value("string"),
            "city": Value("string"),
            "locatable": Value("bool"),
            "reasoning": Value("string"),
            "entities": List(Value("string")),
        }
    )


def _rows_dataset(rows: list[dict[str, Any]]) -> Any:
    """GeoSample rows -> a ``datasets.Dataset`` with the world's features (images as PNG)."""
    from datasets import Dataset

    features = _features()
    return Dataset.from_dict({k: [r[k] for r in rows] for k in features}, features=features)


@dataclass
class SyntheticData:
    """A generated world: the datasets plus what is needed to analyse them."""

    world: SyntheticWorld
    datasets: DatasetDict
    clues: dict[str, list[Clues]]
    params: dict[str, Any]
    ceilings: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def clue_shares(self, split: str) -> dict[str, float]:
        cs = self.clues[split]
        if not cs:
            return {}
        out = {"locatable": float(np.mean([c.locatable for c in cs]))}
        for c in ("banner", "sign", "landmark", "tint"):
            out[c] = float(np.mean([getattr(x, c) for x in cs]))
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-able description: parameters, place counts, clue shares and ceilings per split."""
        return {
            "params": self.params,
            "n_countries": len(self.world.countries),
            "n_places": {s: len(self.world.split_places(s)) for s in ("train", "test")},
            "n_images": {s: len(self.clues[s]) for s in self.clues},
            "clue_shares": {s: self.clue_shares(s) for s in self.clues},
            "ceilings": self.ceilings,
        }


def generate_world(
    n_train: int,
    n_test: int,
    *,
    seed: int = 0,
    image_size: int = 112,
    n_places: int = 192,
    n_countries: int = 24,
    admin1_per_country: int = 2,
    test_share: float = 0.25,
    no_clue_share: float = 0.1,
    clue_rates: ClueRates | None = None,
    countries: Sequence[str] | None = None,
    jitter_km: float = 5.0,
    compute_ceilings: bool = True,
) -> SyntheticData:
    """Build the world and draw ``n_train`` training and ``n_test`` held-out-city images.

    See :func:`make_world` for the arguments; this returns the world, the
    per-image clue records and the ceilings alongside the datasets.
    """
    if n_train < 1 or n_test < 0:
        raise ValueError(f"need n_train >= 1 and n_test >= 0, got {n_train}, {n_test}")
    if not 0.0 <= no_clue_share <= 1.0:
        raise ValueError(f"no_clue_share must be in [0, 1], got {no_clue_share}")
    if image_size < 28:
        raise ValueError(f"image_size must be >= 28 pixels (two 14-pixel patches), got {image_size}")
    from datasets import DatasetDict

    rates = clue_rates or ClueRates()
    world = build_world(
        seed=seed,
        n_places=n_places,
        n_countries=n_countries,
        admin1_per_country=admin1_per_country,
        test_share=test_share,
        countries=countries,
        jitter_km=jitter_km,
    )
    splits: dict[str, Any] = {}
    clues: dict[str, list[Clues]] = {}
    for split, n in (("train", n_train), ("test", n_test)):
        rows, cl = _make_split(
            world, split, n, image_size=image_size, no_clue_share=no_clue_share, rates=rates
        )
        splits[split] = _rows_dataset(rows)
        clues[split] = cl
    params = {
        "n_train": n_train,
        "n_test": n_test,
        "seed": seed,
        "image_size": image_size,
        "n_places": n_places,
        "n_countries": n_countries,
        "admin1_per_country": admin1_per_country,
        "test_share": test_share,
        "no_clue_share": no_clue_share,
        "clue_rates": asdict(rates),
        "countries": list(countries) if countries is not None else None,
        "jitter_km": jitter_km,
    }
    data = SyntheticData(world=world, datasets=DatasetDict(splits), clues=clues, params=params)
    if compute_ceilings:
        data.ceilings = {
            s: {m: ceiling_report(world, clues[s], m) for m in ORACLE_MODES} for s in clues if clues[s]
        }
    return data


def draw_spread_photos(
    world: SyntheticWorld,
    n: int,
    *,
    radius_km: float = 75.0,
    image_size: int = 112,
    no_clue_share: float = 0.1,
    clue_rates: ClueRates | None = None,
) -> Any:
    """Geotagged photos taken *anywhere* within ``radius_km`` of the training cities.

    The world's ``train`` and ``test`` photos sit in small disks (``jitter_km``)
    around their cities, so no photo shows the road tint of the land *between*
    cities, where the held-out cities lie. This pool fills that land: photos
    uniform in a disk of ``radius_km`` around each training city (cycled as in
    the splits), redrawn until they fall on land in the city's own country and
    admin1, with palette, banner, sign and road tint drawn as usual for their
    true position and **no landmark** (a photo tens of km away does not show the
    city's). Labels are complete (``city`` is the city it was drawn around), but
    what such a pool models is MP-16's abundant GPS-only photos: a reward that
    needs only ``lat``/``lon`` can learn from it. No held-out city's photo is in
    it; the land around a held-out city is, as it is around any city in MP-16.

    Deterministic by the world's seed (its own random stream, ``spread``); returns
    a ``datasets.Dataset`` with the GeoSample columns (ids ``synth{seed}-spread-{i}``).
    """
    if n < 1:
        raise ValueError(f"need n >= 1 spread photos, got {n}")
    if radius_km <= 0:
        raise ValueError(f"radius_km must be > 0, got {radius_km}")
    rates = replace(clue_rates or ClueRates(), landmark=0.0)
    rows, _ = _make_split(
        world,
        "spread",
        n,
        image_size=image_size,
        no_clue_share=no_clue_share,
        rates=rates,
        radius_km=radius_km,
    )
    return _rows_dataset(rows)


def make_world(
    n_train: int,
    n_test: int,
    *,
    seed: int = 0,
    image_size: int = 112,
    n_places: int = 192,
    no_clue_share: float = 0.1,
    out_dir: str | Path | None = None,
    **kwargs: Any,
) -> DatasetDict:
    """The synthetic world as a ``datasets.DatasetDict`` with ``train`` and ``test`` splits.

    Args:
        n_train: images of training cities.
        n_test: images of held-out cities (none of them appears in ``train``).
        seed: draws the split of cities and every photo; same seed -> byte-identical data.
        image_size: side of the square RGB images, in pixels (a multiple of 28 suits
            Qwen2.5-VL: 14-pixel patches merged 2x2).
        n_places: cities in the world = n_countries (24) x admin1_per_country (2) x cities per admin1.
        no_clue_share: exact share of images with no clue at all (``locatable=False``).
        out_dir: if given, also :func:`save_world` there.
        **kwargs: passed to :func:`generate_world` (n_countries, admin1_per_country,
            test_share, clue_rates, countries, jitter_km).

    Columns are the :class:`~georeason.types.GeoSample` fields; ``image`` is the
    ``datasets`` Image feature (PNG bytes, decoded to ``PIL.Image`` on access, as
    TRL's VLM trainers take it).

    >>> dd = make_world(8, 4, image_size=56)  # doctest: +SKIP
    >>> dd["train"][0]["reasoning"]  # doctest: +SKIP
    'green meadow: Europe. vertical blue-white-red banner: France. ...'
    """
    data = generate_world(
        n_train,
        n_test,
        seed=seed,
        image_size=image_size,
        n_places=n_places,
        no_clue_share=no_clue_share,
        **kwargs,
    )
    if out_dir is not None:
        save_world(data, out_dir)
    return data.datasets


def save_world(data: SyntheticData, out_dir: str | Path) -> Path:
    """Write the datasets (``save_to_disk``) and ``world.json`` (places, codebook,
    split, tint boxes, per-image clue records, clue shares, ceilings) to ``out_dir``.

    Load the datasets back with ``datasets.load_from_disk(out_dir)``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data.datasets.save_to_disk(str(out))
    meta = {
        "generator": "georeason.datasets.synthetic",
        **data.summary(),
        "world": data.world.to_dict(),
        "clues": {s: [asdict(c) for c in cs] for s, cs in data.clues.items()},
    }
    (out / "world.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    return out


def iter_samples(dataset: Any) -> Iterator[GeoSample]:
    """Rows of a synthetic split as :class:`GeoSample` (images decoded to PIL)."""
    for row in dataset:
        yield GeoSample(**{f.name: row[f.name] for f in fields(GeoSample)})
