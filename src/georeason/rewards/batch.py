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
from georeason.match import (
    Truth,
    answer_country_code,
    cities_match,
    continent_code,
    continent_of_code,
    countries_match,
    country_code_of,
)
from georeason.protocols import completion_text, get_protocol
from georeason.types import Prediction

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
    "mentions",
    "parse_completions",
    "pred_country_code",
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
    import georeason.rewards.ours as ours  # import here: ours imports this module

    for cached_fn in (
        _parse_text,
        match.country_code_of,
        match.names_match,
        match.continent_of_code,
        match.place_names,
        _entity_patterns,
        ours._city_rows,
    ):
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
    except (TypeError, ValueError):
        pass
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        with contextlib.suppress(TypeError, ValueError):  # unreadable truth: that row scores None
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


def predicted_coordinates(preds: Sequence[Prediction]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Predicted coordinates as float arrays, NaN where the completion stated none."""
    lat = np.array([p.lat if p.lat is not None else np.nan for p in preds], dtype=np.float64)
    lon = np.array([p.lon if p.lon is not None else np.nan for p in preds], dtype=np.float64)
    # Parsers reject out-of-range values; guard anyway so a parser bug cannot reach a reward.
    bad = ~(np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90.0) & (np.abs(lon) <= 180.0))
    lat[bad] = lon[bad] = np.nan
    return lat, lon


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
        value = str(value)
    return value.strip() or None


# --------------------------------------------------------------------------- names
# Judging names lives in georeason.match (one rule for metrics, rewards and pipelines);
# these names are re-exported for the rewards' own use.

pred_country_code = answer_country_code


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
    cols = {k: column(columns, k, n) for k in ("continent", "country_code", "country", "admin1", "city")}
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


@lru_cache(maxsize=65_536)
def _entity_patterns(entities: tuple[str, ...]) -> tuple[str, ...]:
    """Distinct search patterns of a row's entities: ``" key "`` (word boundaries) or ``key``.

    Cached: the 16 generations of a prompt share its entities.
    """
    keys = dict.fromkeys(k for k in (text_key(e) for e in entities) if k)
    return tuple(k if _UNSPACED_SCRIPT.search(k) else f" {k} " for k in keys)


def entity_list(value: Any) -> list[str]:
    r"""The entity strings of one row of the ``entities`` column.

    Accepts a list of strings, a list of dicts holding the entity under ``text`` (GLOBE's
    MP16-Reason), ``name`` or ``entity``, or a JSON string of either. A bare string that
    is not JSON is one entity.
    """
    if value is None:
        return []
    if isinstance(value, str):
        s = value.strip()
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
    except TypeError:
        return []
    for item in items:
        if isinstance(item, Mapping):
            item = item.get("text", item.get("name", item.get("entity")))
        if isinstance(item, str) and item.strip():
            out.append(item.strip())
    return out


def mentions(entities: Sequence[str], text: str) -> tuple[int, int]:
    """(how many distinct entities ``text`` mentions, how many distinct entities there are).

    Matching is on :func:`text_key` forms at word boundaries ("bus" is not found in
    "business"); entities in scripts without spaces (Chinese, Japanese, Thai) match as
    substrings.

    >>> mentions(["Eiffel Tower", "café", "bus", "Eiffel tower"], "A CAFE near the eiffel  tower; business")
    (2, 3)
    """
    patterns = _entity_patterns(tuple(entities))
    if not patterns:
        return 0, 0
    padded = f" {text_key(text)} "
    return sum(1 for p in patterns if p in padded), len(patterns)
