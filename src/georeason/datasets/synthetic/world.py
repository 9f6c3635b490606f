"""The world: real places, their clue codebook and the train/test split of cities.

:meth:`SyntheticWorld.from_gazetteer` picks the cities (GeoNames, through
:func:`georeason.geo.gazetteer`), gives each country a banner, each admin1 a sign and
each city a landmark, holds some cities of every admin1 out for the test split, and
fixes each country's road-tint box. No photo is drawn here (:mod:`.dataset` does).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

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
KM_PER_DEG = 111.19508  # mean-radius degree of latitude (R = 6371.0088 km)


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

    @classmethod
    def from_gazetteer(
        cls,
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
                glyphs = [
                    GLYPHS[j] for j in _stable_rng("glyph", cc, a).permutation(len(GLYPHS))[: len(region)]
                ]
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
        return cls(places=places, tint_boxes=tint_boxes, seed=seed, jitter_km=jitter_km)


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
    dlat = radius_km * np.cos(ang) / KM_PER_DEG
    dlon = radius_km * np.sin(ang) / (KM_PER_DEG * max(math.cos(math.radians(lat)), 1e-6))
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
