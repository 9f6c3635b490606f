r"""Batch plumbing shared by the rewards: parse once, read columns, resolve the truth.

TRL calls every reward function on the same batch (one GRPO step: e.g. 256 prompts
× 16 generations), so a completion is parsed once per protocol and the parse is
shared through a small LRU cache keyed on ``(protocol, text)``. Distances are
computed with one vectorised :func:`georeason.geo.haversine_km` call per batch.

Cached :class:`~georeason.types.Prediction` objects are shared between rewards:
treat them as read-only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from georeason import geo
from georeason.geo import haversine_km
from georeason.match import (
    Truth,
    cities_match,
    continent_code,
    continent_of_code,
    countries_match,
    country_code_of,
)
from georeason.protocols import completion_text, get_protocol
from georeason.types import PLACE_LEVELS, Prediction

logger = logging.getLogger("georeason.rewards")

# Large enough for several rewards to share one GRPO batch (4,096 completions) and for the
# rewards of the next batch not to evict the current one mid-step.
PARSE_CACHE_SIZE = 16_384

__all__ = [
    "PARSE_CACHE_SIZE",
    "Truth",
    "cities_match",
    "column",
    "continent_code",
    "countries_match",
    "country_code_of",
    "entity_list",
    "log_coordinates",
    "mentions",
    "parse_completions",
    "text_key",
    "true_coordinates",
    "true_places",
]


# --------------------------------------------------------------------------- parsing


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parse_text(protocol: str, text: str) -> Prediction:
    return get_protocol(protocol).parse(text)


def parse_completions(completions: Sequence[Any], protocol: str) -> list[Prediction]:
    r"""Parse each completion (plain string or TRL conversational list) with ``protocol``.

    Never raises for a bad completion: one that cannot be read or parsed gives a
    ``Prediction`` with ``format_ok=False`` and the reason in ``errors`` (and a log line,
    since a parser exception is a bug worth reporting).
    """
    get_protocol(protocol)  # an unknown protocol is a configuration error: raise now, not per row
    out: list[Prediction] = []
    for completion in completions:
        try:
            text = completion_text(completion)
        except Exception as exc:  # a malformed message list must not crash a GRPO step
            out.append(Prediction(errors=[f"unreadable completion: {type(exc).__name__}: {exc}"]))
            continue
        try:
            out.append(_parse_text(protocol, text))
        except Exception as exc:
            logger.error("the %s parser raised on a completion (a bug): %r", protocol, exc)
            out.append(Prediction(raw=text, errors=[f"parser error: {type(exc).__name__}: {exc}"]))
    return out


def clear_parse_cache() -> None:
    r"""Forget cached parses (e.g. after changing a protocol's parser in a notebook)."""
    _parse_text.cache_clear()


def clear_caches() -> None:
    """Forget every cache the rewards keep: parses, name matches, geocoded names, entity keys."""
    import georeason.match as match

    match.clear_caches()
    for cached_fn in (_parse_text, _entity_patterns):
        cached_fn.cache_clear()


# --------------------------------------------------------------------------- columns


def column(columns: Mapping[str, Any], name: str, n: int) -> Sequence[Any] | None:
    r"""The column ``name`` as a sequence aligned with the ``n`` completions, or None if absent.

    TRL passes each dataset column as a list with one entry per completion; a column
    of another length is a wiring error and raises ``ValueError``.
    """
    values = columns.get(name)
    if values is None:
        return None
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(
            f"column {name!r} must be a list with one value per completion (TRL's convention), "
            f"got {type(values).__name__}"
        )
    if len(values) != n:
        raise ValueError(f"column {name!r} has {len(values)} values for {n} completions")
    return values


def _float_column(values: Sequence[Any]) -> NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim == 1:
            return arr
    # OverflowError: an int past the float range (JSON digits for 1e400).
    except (TypeError, ValueError, OverflowError):
        pass
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        # Unreadable truth (whatever a column holds): that row scores None.
        with contextlib.suppress(Exception):
            out[i] = float(v)
    return out


def true_coordinates(
    columns: Mapping[str, Any], n: int, reward: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""True ``lat``/``lon`` columns as float arrays; NaN where missing or out of range.

    Raises ``KeyError`` with a fix-it message when the batch has no such columns.
    """
    lat, lon = column(columns, "lat", n), column(columns, "lon", n)
    if lat is None or lon is None:
        raise KeyError(
            f"{reward} needs the true coordinates in dataset columns 'lat' and 'lon'; "
            f"the batch has columns {sorted(k for k in columns if k not in _TRL_EXTRAS)}"
        )
    la, lo = _float_column(lat), _float_column(lon)
    bad = ~(np.isfinite(la) & np.isfinite(lo) & (np.abs(la) <= 90.0) & (np.abs(lo) <= 180.0))
    if bad.any():
        la, lo = la.copy(), lo.copy()
        la[bad] = lo[bad] = np.nan
    return la, lo


# Keyword arguments TRL adds beside the dataset columns (not columns themselves).
_TRL_EXTRAS = frozenset(
    {"prompts", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}
)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is not str:
        if isinstance(value, float) and math.isnan(value):  # pandas' missing value
            return None
        try:
            value = str.__str__(value) if isinstance(value, str) else str(value)
        except Exception:  # a value without a text (an int past Python's digit limit): no truth
            return None
    return value.strip() or None


# --------------------------------------------------------------------------- logging


def _cells(values: NDArray[np.float64]) -> list[float | None]:
    return [float(x) if np.isfinite(x) else None for x in values.tolist()]


def log_coordinates(
    columns: Mapping[str, Any],
    name: str,
    plat: NDArray[np.float64],
    plon: NDArray[np.float64],
    tlat: NDArray[np.float64] | None = None,
    tlon: NDArray[np.float64] | None = None,
) -> None:
    r"""Log, per completion, the coordinates a reward scored and their error, through TRL.

    TRL's ``GRPOTrainer`` passes reward functions ``log_extra(column, values)`` (a column
    of its completions table, one value per completion) and ``log_metric(name, value)``
    (a scalar averaged over the logging step), as its own ``accuracy_reward`` uses them.
    This logs the columns ``<name>/lat``, ``<name>/lon`` (None where the answer gave no
    coordinates) and, with the truth, ``<name>/error_km`` (haversine, None where either
    side is missing), and the metrics ``<name>/coordinates_rate`` (share of completions
    with coordinates) and ``<name>/median_error_km`` (over those with an error). Columns
    are prefixed with the reward's name so that two rewards never write one column. Does
    nothing when the callables are absent (a reward called outside a trainer).

    >>> seen = {}
    >>> log_coordinates({"log_extra": seen.__setitem__}, "geor", np.array([35.0, np.nan]), np.array([139.0, np.nan]))
    >>> seen
    {'geor/lat': [35.0, None], 'geor/lon': [139.0, None]}
    """
    log_extra, log_metric = columns.get("log_extra"), columns.get("log_metric")
    if not callable(log_extra) and not callable(log_metric):
        return
    err = (
        None
        if tlat is None or tlon is None
        else np.asarray(haversine_km(plat, plon, tlat, tlon), dtype=float)
    )
    if callable(log_extra):
        log_extra(f"{name}/lat", _cells(plat))
        log_extra(f"{name}/lon", _cells(plon))
        if err is not None:
            log_extra(f"{name}/error_km", _cells(err))
    if callable(log_metric) and len(plat):
        log_metric(f"{name}/coordinates_rate", float(np.mean(np.isfinite(plat) & np.isfinite(plon))))
        if err is not None and np.isfinite(err).any():
            log_metric(f"{name}/median_error_km", float(np.median(err[np.isfinite(err)])))


# --------------------------------------------------------------------------- names
# Judging names lives in georeason.match (one rule for metrics, rewards and pipelines);
# the names imported from it above are re-exported for the rewards' own use.


# --------------------------------------------------------------------------- truth


def true_places(
    columns: Mapping[str, Any],
    n: int,
    reward: str,
    *,
    fill_from_coordinates: bool = True,
    levels: Collection[str] = ("continent", "country", "admin1", "city"),
) -> list[Truth]:
    r"""Ground-truth place names per row from the columns ``continent``, ``country_code``,
    ``country``, ``admin1``, ``city``.

    Where ``fill_from_coordinates`` and the row has true ``lat``/``lon``, missing levels
    among ``levels`` (the ones the caller scores) are filled by reverse geocoding them
    (datasets like IM2GPS3K label coordinates only); lower levels are filled only where the
    labelled country agrees with the reverse-geocoded one, so a row never mixes two
    countries. Raises ``KeyError`` when the batch has neither names nor coordinates.
    """
    cols = {k: column(columns, k, n) for k in PLACE_LEVELS}
    has_coords = column(columns, "lat", n) is not None and column(columns, "lon", n) is not None
    if all(v is None for v in cols.values()) and not (fill_from_coordinates and has_coords):
        raise KeyError(
            f"{reward} needs ground-truth place columns (country_code or country, and city / admin1 / "
            f"continent where scored) or true 'lat'/'lon' to label them; the batch has columns "
            f"{sorted(k for k in columns if k not in _TRL_EXTRAS)}"
        )

    def texts(name: str) -> list[str | None]:
        col = cols[name]
        return [_text(v) for v in col] if col is not None else [None] * n

    continent = [continent_code(c) for c in texts("continent")]
    country = texts("country")
    code = [
        country_code_of(a) or country_code_of(b) for a, b in zip(texts("country_code"), country, strict=True)
    ]
    admin1, city = texts("admin1"), texts("city")
    fill = [k for k in ("admin1", "city") if k in levels]
    if fill_from_coordinates and has_coords:
        need = [
            i
            for i in range(n)
            if code[i] is None
            or (admin1[i] is None and "admin1" in fill)
            or (city[i] is None and "city" in fill)
        ]
        if need:
            lat, lon = true_coordinates(columns, n, reward)
            idx = np.array(need)
            idx = idx[np.isfinite(lat[idx]) & np.isfinite(lon[idx])]
            if len(idx):
                table = geo.reverse_geocode_batch(lat[idx], lon[idx])
                for j, i in enumerate(idx.tolist()):
                    if not table.valid[j]:
                        continue
                    rcc = str(table.country_code[j]) or None
                    if code[i] is None and country[i] is None:
                        code[i] = rcc
                    if code[i] != rcc:
                        continue  # the label names another country: do not mix in the other's levels
                    if admin1[i] is None and "admin1" in fill:
                        admin1[i] = str(table.admin1[j]) or None
                    if city[i] is None and "city" in fill:
                        city[i] = str(table.city[j]) or None
    return [
        Truth(
            continent[i] or (continent_of_code(code[i]) if code[i] else None),
            code[i],
            country[i],
            admin1[i],
            city[i],
        )
        for i in range(n)
    ]


# --------------------------------------------------------------------------- entities


_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
_NON_WORD = re.compile(r"[\W_]+")
_ASCII_NON_ALNUM = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isalnum()})


def text_key(text: str) -> str:
    r"""Case-, accent- and punctuation-insensitive form of free text, words split by one space.

    >>> text_key("Le  Café-Bar, near the Tour Eiffel!")
    'le cafe bar near the tour eiffel'
    """
    if text.isascii():  # the common case, without the regex engine (about 1.6x faster)
        return " ".join(text.lower().translate(_ASCII_NON_ALNUM).split())
    text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    return _NON_WORD.sub(" ", text.casefold()).strip()


# CJK, Thai, Lao and similar scripts do not separate words with spaces: no word boundaries there.
_UNSPACED_SCRIPT = re.compile("[\u0e00-\u0eff\u2e80-\U0010ffff]")
_INFLECTABLE = re.compile(r"[a-z]{3,}")  # English plural rules apply to Latin-script words only

# Plurals that no suffix rule gives (singular -> plural), for the last word of an entity.
_IRREGULAR_PLURALS: dict[str, str] = {
    "man": "men", "woman": "women", "person": "people", "child": "children", "foot": "feet",
    "tooth": "teeth", "mouse": "mice", "goose": "geese", "leaf": "leaves", "knife": "knives",
    "wife": "wives", "life": "lives", "shelf": "shelves", "wolf": "wolves", "calf": "calves",
}  # fmt: skip
_IRREGULAR_SINGULARS = {v: k for k, v in _IRREGULAR_PLURALS.items()}
# Words ending in "s" that are not plurals of a shorter word ("news" is not "new"s).
_NOT_PLURAL = frozenset(
    {"news", "gas", "lens", "series", "species", "means", "alps", "mars", "texas", "paris", "christmas"}
)


def _singulars(word: str) -> set[str]:
    """Words ``word`` may be the regular plural of (a plural entity matches its singular)."""
    if word in _IRREGULAR_SINGULARS:
        return {_IRREGULAR_SINGULARS[word]}
    if not word.endswith("s") or word.endswith(("ss", "us", "is")) or word in _NOT_PLURAL:
        return set()
    out = {word[:-1]}  # trees -> tree, houses -> house
    if word.endswith("ies") and len(word) > 4:
        out.add(word[:-3] + "y")  # cities -> city
    elif word.endswith("es") and word[:-2].endswith(("s", "x", "z", "ch", "sh", "o")):
        out.add(word[:-2])  # buses -> bus, churches -> church
    return {w for w in out if len(w) >= 3}


def _plurals(word: str) -> set[str]:
    """Regular English plurals of ``word`` (over-generation is harmless: a match is a whole word)."""
    out = set()
    if word[-1] == "y" and word[-2] not in "aeiou":
        return {word[:-1] + "ies"}  # city -> cities
    out.add(word + "s")  # tree -> trees
    if word.endswith(("s", "x", "z", "ch", "sh", "o")):
        out.add(word + "es")  # bus -> buses, church -> churches, tomato -> tomatoes
    if word.endswith("s"):
        out.add(word + "ses")  # bus -> busses
    if word in _IRREGULAR_PLURALS:
        out.add(_IRREGULAR_PLURALS[word])
    return out


def _inflections(word: str) -> list[str]:
    """``word`` and its singular/plural forms: the last word of an entity may take any."""
    forms = {word}
    if _INFLECTABLE.fullmatch(word):
        singulars = _singulars(word)
        forms |= singulars
        for w in singulars or {word}:  # a plural's plurals are its singular's
            forms |= _plurals(w)
    return sorted(forms)


# Inner word boundaries of an entity that may be written joined ("tuk tuk" = "tuktuk");
# beyond this many, only the spaced form is accepted (2**n variants per form).
_MAX_JOINS = 3

# One entity's search in a padded text_key form: (the exact " key " form, a literal every
# accepted form starts with, the other accepted forms).
_EntityPattern = tuple[str, str, tuple[str, ...]]


@lru_cache(maxsize=65_536)
def _entity_patterns(entities: tuple[str, ...]) -> tuple[_EntityPattern, ...]:
    """Distinct search patterns of a row's entities, for :func:`mentions`.

    An entity in a script without spaces (Chinese, Japanese, Thai) is a plain substring.
    Any other matches at word boundaries (a space on each side), each word boundary
    inside it optional ("tuk tuk" = "tuk-tuk" = "tuktuk"), its last word in any singular
    or regular plural form ("palm tree" = "palm trees", "bus" = "buses", "city" =
    "cities"). Entities with the same singular form count once. Every accepted form is a
    literal string (``in`` runs at C speed and needs no regex compilation, which costs
    more than the search for entities seen once).

    Cached: the 16 generations of a prompt share its entities.
    """
    seen: dict[str, _EntityPattern] = {}
    for entity in entities:
        key = text_key(entity)
        if not key:
            continue
        if _UNSPACED_SCRIPT.search(key):
            seen.setdefault(key, (key, key, ()))
            continue
        *head, last = key.split(" ")
        forms = _inflections(last)
        stem = min(forms, key=lambda f: (len(f), f))
        canonical = " ".join([*head, stem])  # "palm trees" and "palm tree" are one entity
        if canonical in seen:
            continue
        variants = [""]  # the entity's words before the last, each followed by " " or not
        for i, word in enumerate(head):
            joins = (" ", "") if i >= len(head) - _MAX_JOINS else (" ",)
            variants = [v + word + j for v in variants for j in joins]
        exact = f" {key} "
        alts = {f" {v}{form} " for v in variants for form in forms} - {exact}
        while not all(f.startswith(stem) for f in forms):  # the part every form of the last word shares
            stem = stem[:-1]
        seen[canonical] = (exact, " " + (head[0] if head else stem), tuple(sorted(alts)))
    return tuple(seen.values())


def entity_list(value: Any) -> list[str]:
    r"""The entity strings of one row of the ``entities`` column.

    Accepts a list of strings, a list of dicts holding the entity under ``text`` (GLOBE's
    MP16-Reason), ``name`` or ``entity``, or a JSON string of either. A bare string that
    is not JSON is one entity.
    """
    if value is None:
        return []
    if isinstance(value, str):
        s = str.__str__(value).strip()  # a str subclass's own methods are not called
        if s.startswith("["):
            try:
                return entity_list(json.loads(s))
            except (json.JSONDecodeError, RecursionError):
                pass
        return [s] if s else []
    if isinstance(value, Mapping):
        value = [value]
    out: list[str] = []
    try:
        items = list(value)
    except Exception:  # not iterable, or an iterator that fails: no entities
        return []
    for item in items:
        try:
            if isinstance(item, Mapping):
                item = item.get("text", item.get("name", item.get("entity")))
            if isinstance(item, str) and (text := str.__str__(item).strip()):
                out.append(text)
        except Exception:  # a mapping whose lookup fails: that entity is unreadable
            continue
    return out


def mentions(entities: Sequence[str], text: str) -> tuple[int, int]:
    """(how many distinct entities ``text`` mentions, how many distinct entities there are).

    Matching is on :func:`text_key` forms (case, accents and punctuation ignored) at word
    boundaries, so "bus" is not found in "business" nor "tree" in "street"; the last word
    of an entity may be singular or plural ("Tall buildings, two buses" mentions
    "building" and "bus"), and a hyphen or space inside it may be either or missing
    ("tuk tuk" = "tuk-tuk"). Entities in scripts without spaces (Chinese, Japanese, Thai)
    match as substrings.

    >>> mentions(["Eiffel Tower", "café", "bus", "Eiffel tower"], "A CAFE near the eiffel  tower; business")
    (2, 3)
    >>> mentions(["building", "palm tree", "bus", "tuk-tuk", "street"], "Tall buildings, palm trees, two buses, a tuk tuk")
    (4, 5)
    """
    patterns = _entity_patterns(tuple(entities))
    if not patterns:
        return 0, 0
    padded = f" {text_key(text)} "
    hits = 0
    for exact, prefix, alts in patterns:
        # The form as annotated first; the other forms only where the text holds the
        # literal they all start with (the entity's first word, or a lone word's stem).
        if exact in padded or (prefix in padded and any(a in padded for a in alts)):
            hits += 1
    return hits, len(patterns)
