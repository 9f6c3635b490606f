r"""Truth vs answer: the one rule for placing an answer on the map and judging each level.

The evaluation (``eval.metrics`` hierarchy accuracy, ``eval.runner`` distances), the
rewards (GLOBE accuracy, hierarchy, GeoScore) and the distillation filter all call
this module, so a metric and the reward trained for it never disagree on an answer.

**Does a level match** (:func:`judge`), for each level the truth has (a level the truth
lacks is ``None``: not scored):

- *continent*: the stated continent, or — when none is stated — the continent of the
  named country, equals the true continent (GeoNames codes).
- *country*: when both sides read as a country (ISO code, name, alias, endonym) the ISO
  codes are equal; otherwise the normalised names are equal. Never a substring test.
- *admin1* and *city*: the names denote the same place (:func:`georeason.geo.names_match`:
  accents, GeoNames alternate names) **inside the true country**. The country gates the
  levels below it: under a named, wrong country a city of the right name is another
  place, so it is wrong. An answer that names *no* country is judged on its lower
  levels alone, in the true country ("City: Paris" for Paris, France is the right
  city; the missing country is counted wrong at its own level). The admin1 does not
  gate the city: regional names differ too much between gazetteers to veto a city.
- A level the answer does not name is wrong (a miss), never ``None``.

**Where does an answer lie** (:func:`place_answer`): its stated coordinates; failing
that, by offline forward geocoding of its names, first hit wins:

1. the city (with the admin1 as a hint) in the named country;
2. the city anywhere, when a country is named but the city is not found in it (an
   unrecognised country name, or a city the gazetteer files under a territory:
   "China / Hong Kong");
3. the admin1 in the named country;
4. the country (its most populous place, as GLOBE's country-level answers imply).

``Placement.level`` says which rule placed it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from georeason import geo
from georeason.types import CONTINENT_NAMES, Place, Prediction

logger = logging.getLogger("georeason.match")

__all__ = [
    "LEVELS",
    "Named",
    "Placement",
    "Truth",
    "admin1_matches",
    "chain_consistency",
    "cities_match",
    "clear_caches",
    "continent_code",
    "continent_of_code",
    "countries_match",
    "country_code_named",
    "country_code_of",
    "judge",
    "names_match",
    "place_answer",
    "place_by_names",
    "place_names",
    "predicted_coordinates",
]

LEVELS = ("continent", "country", "admin1", "city")
"""The place levels, coarse to fine."""


class Named(Protocol):
    """Anything that names places level by level: a ``Prediction``, a ``Place``, a :class:`Truth`."""

    @property
    def continent(self) -> str | None: ...
    @property
    def country_code(self) -> str | None: ...
    @property
    def country(self) -> str | None: ...
    @property
    def admin1(self) -> str | None: ...
    @property
    def city(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Truth:
    r"""One sample's true place names (None where unknown); ``country_code`` is ISO alpha-2."""

    continent: str | None = None
    country_code: str | None = None
    country: str | None = None
    admin1: str | None = None
    city: str | None = None

    @property
    def has_country(self) -> bool:
        return self.country_code is not None or self.country is not None

    def has(self, level: str) -> bool:
        """Whether the truth has ``level`` (a continent is implied by a known country)."""
        if level == "country":
            return self.has_country
        if level == "continent":
            return self.continent_code is not None
        return bool(getattr(self, level))

    @property
    def continent_code(self) -> str | None:
        code = country_code_named(self)
        return continent_code(_text(self.continent)) or (continent_of_code(code) if code else None)


# --------------------------------------------------------------------------- names


@lru_cache(maxsize=65_536)
def country_code_of(name: str | None) -> str | None:
    r"""ISO alpha-2 code of a country name, alias or code (cached :func:`geo.normalize_country`)."""
    return geo.normalize_country(name) if name else None


@lru_cache(maxsize=1024)
def continent_of_code(code: str) -> str | None:
    r"""GeoNames continent code of an ISO alpha-2 country code (cached :func:`geo.continent_of`)."""
    return geo.continent_of(code)


_CONTINENT_KEYS: dict[str, str] = {
    **{code.lower(): code for code in CONTINENT_NAMES},
    **{name.lower(): code for code, name in CONTINENT_NAMES.items()},
    "australia": "OC",
    "australia and oceania": "OC",
    "oceania and australia": "OC",
    "north and central america": "NA",
    "central america": "NA",
    "the americas north": "NA",
    "antarctic": "AN",
}


def continent_code(name: str | None) -> str | None:
    r"""GeoNames continent code of a continent name or code ("Europe"/"eu" -> "EU"); None if unknown.

    >>> continent_code("South America"), continent_code("oc"), continent_code("Atlantis")
    ('SA', 'OC', None)
    """
    if not name:
        return None
    key = " ".join(geo.normalize_name(name).split())
    return _CONTINENT_KEYS.get(key)


@lru_cache(maxsize=65_536)
def names_match(a: str, b: str, level: str, country_code: str | None) -> bool:
    r"""Cached :func:`georeason.geo.names_match` (answers repeat across a GRPO group)."""
    return geo.names_match(a, b, level=level, country_code=country_code)


def _text(value: object) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    return s or None


def country_code_named(named: Named) -> str | None:
    r"""The country an answer or a truth names, as an ISO code: its ``country_code`` if that
    reads as one, else its ``country`` name's."""
    return country_code_of(_text(named.country_code)) or country_code_of(_text(named.country))


def countries_match(answer: Named, truth: Truth) -> bool:
    r"""Whether the answer names the true country: by ISO code where both read as a country,
    else by normalised name (never by substring). An answer naming no country: False.

    >>> countries_match(Truth(country="Ivory Coast"), Truth(country_code="CI"))
    True
    """
    acc = country_code_named(answer)
    tcc = country_code_named(truth)
    if acc is not None and tcc is not None:
        return acc == tcc
    aname = _text(answer.country) or _text(answer.country_code)
    tname = _text(truth.country)
    if aname and tname:
        return names_match(aname, tname, "country", None)
    return False


def cities_match(answer_city: str | None, true_city: str | None, country_code: str | None) -> bool:
    r"""Whether two city names denote the same place (gazetteer aliases, within ``country_code``)."""
    a, b = _text(answer_city), _text(true_city)
    if not a or not b:
        return False
    return names_match(a, b, "city", country_code)


def admin1_matches(answer_admin1: str | None, true_admin1: str | None, country_code: str | None) -> bool:
    r"""Whether two admin1 (state / province) names denote the same region."""
    a, b = _text(answer_admin1), _text(true_admin1)
    if not a or not b:
        return False
    return names_match(a, b, "admin1", country_code)


def judge(answer: Named, truth: Truth, levels: tuple[str, ...] = LEVELS) -> dict[str, bool | None]:
    r"""Per-level verdict of ``answer`` against ``truth``: True / False, None where the truth
    lacks the level. The rule is the module's (country gates the levels below it).

    >>> from georeason.types import Prediction
    >>> truth = Truth(continent="EU", country="France", admin1="Île-de-France", city="Paris")
    >>> judge(Prediction(city="Paris"), truth)
    {'continent': False, 'country': False, 'admin1': False, 'city': True}
    >>> judge(Prediction(country="USA", city="Paris"), truth)["city"]
    False
    """
    unknown = set(levels) - set(LEVELS)
    if unknown:
        raise ValueError(f"unknown levels {sorted(unknown)}; the levels are {list(LEVELS)}")
    tcc = country_code_named(truth)
    country_named = _text(answer.country) is not None or _text(answer.country_code) is not None
    country_ok = countries_match(answer, truth) if truth.has_country else None
    # A named, wrong country makes the lower names other places; no country named leaves
    # them to be judged alone, inside the true country.
    below_ok = not (country_named and country_ok is False)
    out: dict[str, bool | None] = {}
    for level in levels:
        if not truth.has(level):
            out[level] = None
        elif level == "continent":
            acc = country_code_named(answer)
            stated = continent_code(_text(answer.continent))
            out[level] = (stated or (continent_of_code(acc) if acc else None)) == truth.continent_code
        elif level == "country":
            out[level] = country_ok
        elif level == "admin1":
            out[level] = below_ok and admin1_matches(answer.admin1, truth.admin1, tcc)
        else:
            out[level] = below_ok and cities_match(answer.city, truth.city, tcc)
    return out


# --------------------------------------------------------------------------- placing


@dataclass(frozen=True, slots=True)
class Placement:
    r"""Where an answer lies: ``level`` is ``"answer"`` (its own coordinates), ``"city"``,
    ``"city (country ignored)"``, ``"admin1"`` or ``"country"`` (the name that placed it)."""

    lat: float
    lon: float
    level: str
    place: Place | None = field(default=None, compare=False, repr=False)
    """The gazetteer's place that placed a named answer (None for stated coordinates)."""


@lru_cache(maxsize=65_536)
def place_names(city: str | None, admin1: str | None, country: str | None) -> Placement | None:
    r"""Coordinates of the place named by ``city`` / ``admin1`` / ``country``, offline, by the
    module's rule (city in country, city anywhere, admin1, country); None if none resolves.

    >>> p = place_names("Kyoto", None, "Japan")
    >>> p.level, round(p.lat, 1), round(p.lon, 1)
    ('city', 35.0, 135.8)
    """
    city, admin1, country = _text(city), _text(admin1), _text(country)
    attempts: list[tuple[str, str | None, str | None, str | None]] = []
    if city:
        attempts.append(("city", city, admin1, country))
        if country:
            attempts.append(("city (country ignored)", city, admin1, None))
    if admin1:
        attempts.append(("admin1", None, admin1, country))
    if country:
        attempts.append(("country", None, None, country))
    for level, c, a, k in attempts:
        try:
            place = geo.forward_geocode(city=c, admin1=a, country=k)
        except Exception as e:  # a gazetteer bug costs this answer, not the run
            logger.error("forward_geocode(%r, %r, %r) raised %r", c, a, k, e)
            place = None
        if place is not None:
            return Placement(place.city_lat, place.city_lon, level, place)
    return None


def place_by_names(answer: Named) -> Placement | None:
    r"""Where the places an answer names lie, its coordinates ignored (:func:`place_names` on
    its city, admin1 and country — the ISO code where given); None when none resolves.

    >>> from georeason.types import Prediction
    >>> place_by_names(Prediction(country="Japan", city="Kyoto", lat=0.0, lon=0.0)).level
    'city'
    """
    country = _text(answer.country_code) or _text(answer.country)
    city, admin1 = _text(answer.city), _text(answer.admin1)
    if not (city or admin1 or country):
        return None
    return place_names(city, admin1, country)


def place_answer(answer: Named) -> Placement | None:
    r"""Where an answer lies: its stated ``lat``/``lon`` (a ``Prediction``'s), else where its
    names lie (:func:`place_by_names`); None when it names no place that resolves.

    >>> from georeason.types import Prediction
    >>> place_answer(Prediction(country="France", city="Paris", lat=48.85, lon=2.35))
    Placement(lat=48.85, lon=2.35, level='answer')
    >>> place_answer(Prediction(country="Atlantis", city="Lyon")).level
    'city (country ignored)'
    """
    lat, lon = getattr(answer, "lat", None), getattr(answer, "lon", None)
    if lat is not None and lon is not None:
        return Placement(float(lat), float(lon), "answer")
    return place_by_names(answer)


# --------------------------------------------------------------------------- consistency


def predicted_coordinates(preds: Sequence[Prediction]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Stated coordinates of parsed answers as float arrays, NaN where an answer states none.

    >>> lat, lon = predicted_coordinates([Prediction(lat=1.0, lon=2.0), Prediction(lat=95.0, lon=0.0)])
    >>> lat.tolist(), lon.tolist()
    ([1.0, nan], [2.0, nan])
    """
    lat = np.array([p.lat if p.lat is not None else np.nan for p in preds], dtype=np.float64)
    lon = np.array([p.lon if p.lon is not None else np.nan for p in preds], dtype=np.float64)
    # Parsers reject out-of-range values; guard anyway so a parser bug cannot reach a reward.
    bad = ~(np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90.0) & (np.abs(lon) <= 180.0))
    lat[bad] = lon[bad] = np.nan
    return lat, lon


def chain_consistency(preds: Sequence[Prediction], city_radius_km: float = 50.0) -> list[bool | None]:
    r"""Whether the places each answer names agree with the coordinates it states (no truth needed).

    The stated (lat, lon) is reverse geocoded to a place P (country by polygon, city the
    nearest gazetteer place). Then

    - country check (if a country is named): the named country's ISO code equals P's;
      a name that reads as no country fails;
    - city check (if a city is named): the name matches P's city (aliases included), or a
      gazetteer place of that name lies within ``city_radius_km`` of the stated
      coordinates — the nearest populated place to a point in a suburb is often the
      suburb, not the city named.

    True when every check made passes, else False; ``None`` when the answer states no
    valid coordinates, names neither a country nor a city (nothing to compare), or
    cannot be reverse geocoded. The ``consistency`` reward
    (:class:`georeason.rewards.ConsistencyReward`) and the evaluation report's chain
    consistency are both this function.

    >>> chain_consistency([Prediction(country="France", city="Paris", lat=40.42, lon=-3.70)])  # Madrid
    [False]
    """
    plat, plon = predicted_coordinates(preds)
    todo = [
        i for i, p in enumerate(preds) if np.isfinite(plat[i]) and (p.country or p.country_code or p.city)
    ]
    out: list[bool | None] = [None] * len(preds)
    if not todo:
        return out
    idx = np.asarray(todo)
    table = geo.reverse_geocode_batch(plat[idx], plon[idx])
    # City check, vectorised over the batch: is a gazetteer place of the named city within
    # the radius (one haversine call over every candidate of every row)? Rows that fail
    # get the slower alias comparison with the nearest place (a remote village's name).
    pending: list[tuple[int, int, str]] = []  # (row, table row, named city)
    candidates: list[Any] = []
    for j, i in enumerate(todo):
        if not table.valid[j]:
            logger.warning("chain consistency: reverse geocoding failed for #%d: %s", i, table.errors[j])
            continue
        p = preds[i]
        ok = True
        if p.country or p.country_code:
            ok = country_code_named(p) == table.country_code[j]
        if ok and p.city:
            pending.append((i, j, p.city))
            candidates.append(_city_rows(p.city))
            ok = False  # until the city check passes
        out[i] = ok
    if pending:
        g = geo.gazetteer()
        counts = np.array([len(r) for r in candidates])
        rows = np.concatenate(candidates) if counts.sum() else np.empty(0, dtype=np.int64)
        owner = np.repeat(np.asarray([i for i, _, _ in pending]), counts)
        near = geo.haversine_km(plat[owner], plon[owner], g.lat[rows], g.lon[rows]) <= city_radius_km
        passed = set(np.unique(owner[near]).tolist())
        for i, j, city in pending:
            place_city, rcc = str(table.city[j]), str(table.country_code[j])
            if i in passed or (place_city and names_match(city, place_city, "city", rcc or None)):
                out[i] = True
    return out


@lru_cache(maxsize=65_536)
def _city_rows(city: str) -> Any:
    # every gazetteer place of that name or alternate name, in any country (read-only array)
    from georeason.geo.gazetteer import city_candidates

    return city_candidates(city)


def clear_caches() -> None:
    """Forget this module's caches: country codes, name matches, placed names, city candidates."""
    for cached_fn in (country_code_of, names_match, continent_of_code, place_names, _city_rows):
        cached_fn.cache_clear()
