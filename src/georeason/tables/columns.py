"""The column vocabulary of user tables and how a column is found: the names each column
may go by (compared case-insensitively, first match wins), the file formats by name,
:func:`detect_column` and friends with errors that name the file, the names tried and the
columns found, and the swapped-header check (:func:`fix_swapped_coordinates`)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from georeason.types import PLACE_LEVELS

# ---------------------------------------------------------------------------
# the vocabulary
# ---------------------------------------------------------------------------

#: names of an id column (also tried, after the image names, as the image column:
#: MP-16 and IM2GPS3K name each photo's file by its ``IMG_ID``)
ID_COLUMNS: tuple[str, ...] = ("id", "img_id", "image_id", "imgid", "photo_id", "key")

#: (latitude, longitude) name pairs; a truth column may carry ``true_`` or ``gt_``
_BASE_PAIRS: tuple[tuple[str, str], ...] = (
    ("lat", "lon"),
    ("lat", "lng"),
    ("lat", "long"),
    ("latitude", "longitude"),
    ("gps_lat", "gps_lon"),
    ("gpslatitude", "gpslongitude"),  # EXIF's GPSLatitude / GPSLongitude
    ("lat_deg", "lon_deg"),
)
TRUTH_PREFIXES: tuple[str, ...] = ("true_", "gt_")
PREDICTION_PREFIXES: tuple[str, ...] = ("pred_", "predicted_", "prediction_")
COORDINATE_PAIRS: tuple[tuple[str, str], ...] = _BASE_PAIRS + tuple(
    (p + a, p + b) for p in TRUTH_PREFIXES for a, b in (("lat", "lon"), ("latitude", "longitude"))
)
LAT_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(a for a, _ in COORDINATE_PAIRS))
LON_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(b for _, b in COORDINATE_PAIRS))

IMAGE_COLUMNS: tuple[str, ...] = (
    "image",
    "image_path",
    "img_path",
    "path",
    "file",
    "filename",
    "file_name",
    "img_id",
    "image_id",
)

#: names of the column holding the text a locatability judge reads (``data locatability``)
REASONING_COLUMNS: tuple[str, ...] = ("reasoning", "text", "completion", "rationale")
#: names of a yes/no locatability label column (``data locatability``)
LOCATABLE_COLUMNS: tuple[str, ...] = ("label", "locatable", "answer")

#: names of each place level's column (see :data:`georeason.types.PLACE_LEVELS`)
PLACE_COLUMNS: dict[str, tuple[str, ...]] = {
    "continent": ("continent",),
    "country_code": ("country_code", "iso", "iso2", "country_iso"),
    "country": ("country", "country_name"),
    "admin1": ("admin1", "state", "province", "region"),
    "city": ("city", "city_name", "locality"),
}
assert tuple(PLACE_COLUMNS) == PLACE_LEVELS

#: file formats by name ending (``.gz`` is read through for the text formats)
FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}
# option names per thing looked for, for the "name it with ..." hint
_KEYS = {"id": "id_col", "latitude": "lat_col", "longitude": "lon_col", "image": "image_col"}
CLI_FLAG = "--{flag}"


class TableError(ValueError):
    """A table cannot be read as asked: unknown format, unreadable file, missing or clashing columns."""


class SwappedCoordinatesWarning(UserWarning):
    """The latitude and longitude columns were swapped in the file and have been read the right way."""


def prefixed(prefixes: Sequence[str], names: Sequence[str]) -> tuple[str, ...]:
    """Every name with every prefix, prefix-major: ``prefixed(("pred_",), ("lat",)) == ("pred_lat",)``."""
    return tuple(p + n for p in prefixes for n in names)


# ---------------------------------------------------------------------------
# formats and columns
# ---------------------------------------------------------------------------


def table_format(path: str | os.PathLike[str], formats: Sequence[str] | None = None) -> str:
    """The format of ``path`` from its name (``csv``, ``tsv``, ``parquet``, ``jsonl``, ``json``),
    one of ``formats`` when given; :class:`TableError` otherwise."""
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] == ".gz" and FORMATS.get(suffixes[-2]) not in (None, "parquet"):
        suffixes = suffixes[:-1]
    fmt = FORMATS.get(suffixes[-1] if suffixes else "")
    allowed = tuple(formats) if formats is not None else tuple(dict.fromkeys(FORMATS.values()))
    if fmt is None or fmt not in allowed:
        names = [s for s, f in FORMATS.items() if f in allowed]
        raise TableError(
            f"{path}: cannot tell the format from the name (unsupported file type {p.suffix or '(none)'!r}); "
            f"use {', '.join(names)}"
        )
    return fmt


def _how(what: str, how: str) -> str:
    key = _KEYS.get(what, what.replace(" ", "_") + "_col")
    return how.format(key=key, flag=key.replace("_", "-"))


def _hits(names: Sequence[str], wanted: str) -> list[str]:
    w = wanted.strip().lower()
    return [n for n in names if str(n).strip().lower() == w]


def detect_column(
    names: Sequence[str],
    explicit: str | None,
    candidates: Sequence[str],
    what: str,
    *,
    required: bool = True,
    source: str | os.PathLike[str] | None = None,
    how: str = CLI_FLAG,
) -> str | None:
    """The column holding ``what``: ``explicit`` if given (it must exist; matched exactly,
    else case-insensitively), else the first of ``candidates`` present (case-insensitive).

    Two columns that differ only in case (``lat`` and ``LAT``) are an error, never a guess.
    Raises :class:`TableError` naming ``source``, the names tried and the table's columns
    when nothing is found and ``required``; ``how`` says how to name the column (a format
    string with ``{flag}`` (``lat-col``) and ``{key}`` (``lat_col``); default the CLI flag).
    """
    pre = f"{source}: " if source is not None else ""
    cols = ", ".join(map(str, names))
    if explicit is not None:
        if explicit in names:
            return explicit
        hits = _hits(names, explicit)
        if len(hits) == 1:
            return hits[0]
        raise TableError(
            f"{pre}no {what} column {explicit!r}: the table has no column {explicit!r}; its columns: {cols}"
        )
    for c in candidates:
        hits = _hits(names, c)
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise TableError(
                f"{pre}several columns could hold the {what} ({', '.join(hits)}); name one with {_how(what, how)}"
            )
    if required:
        raise TableError(
            f"{pre}no {what} column found (tried {', '.join(candidates)}); the table has: {cols}. "
            f"Name it with {_how(what, how)}."
        )
    return None


def coordinate_columns(
    names: Sequence[str],
    lat_col: str | None = None,
    lon_col: str | None = None,
    *,
    source: str | os.PathLike[str] | None = None,
    how: str = CLI_FLAG,
) -> tuple[str, str]:
    """``(latitude column, longitude column)``: the given ones or from :data:`LAT_COLUMNS` /
    :data:`LON_COLUMNS`; :class:`TableError` ("no latitude/longitude columns: ...") otherwise."""
    pre = f"{source}: " if source is not None else ""
    found = []
    for given, cands, what in ((lat_col, LAT_COLUMNS, "latitude"), (lon_col, LON_COLUMNS, "longitude")):
        col = detect_column(names, given, cands, what, required=False, source=source, how=how)
        if col is None:
            cols = ", ".join(map(str, names))
            raise TableError(
                f"{pre}no latitude/longitude columns: no {what} column found (tried {', '.join(cands)}); "
                f"the table has: {cols}. Name it with {_how(what, how)}."
            )
        found.append(col)
    lat, lon = found
    if lat == lon:
        raise TableError(f"{pre}latitude and longitude cannot both be column {lat!r}")
    return lat, lon


def place_columns(
    names: Sequence[str],
    given: Mapping[str, str | None] | None = None,
    *,
    levels: Mapping[str, Sequence[str]] = PLACE_COLUMNS,
    exclude: Sequence[str] = (),
    source: str | os.PathLike[str] | None = None,
) -> dict[str, str]:
    """Level -> column for the place labels a table has: the ``given`` ones (which must
    exist), else the first candidate of ``levels`` present and not in ``exclude``."""
    out: dict[str, str] = {}
    taken = set(exclude)
    for level, cands in levels.items():
        wanted = (given or {}).get(level)
        if wanted is not None:
            col = detect_column(names, wanted, cands, level, source=source)
            assert col is not None
            out[level] = col
            continue
        for c in cands:
            hits = [h for h in _hits(names, c) if h not in taken]
            if hits:
                out[level] = hits[0]
                break
    return out


def to_float(values: Any) -> np.ndarray:
    """Floats from a column of numbers or text; blanks and text that is not a number give NaN."""
    s = pd.Series(values)
    if s.dtype == object:
        s = s.map(lambda v: v.strip() if isinstance(v, str) else v).replace("", np.nan)
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)


def fix_swapped_coordinates(
    lat: np.ndarray,
    lon: np.ndarray,
    *,
    source: str,
    lat_name: str = "lat",
    lon_name: str = "lon",
    swap: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Detect latitude/longitude columns swapped in a file, by range, and swap them back.

    The rule: the column read as *longitude* never leaves [-90, 90] while the
    column read as *latitude* does (some |value| > 90, which no latitude can
    be). Then the header is wrong, not the values: the two arrays are swapped
    and a :class:`SwappedCoordinatesWarning` is issued. With no value beyond
    ±90 in either column the orientation cannot be told from the values and the
    header is trusted. ``swap`` True / False forces / forbids the swap instead.

    Returns ``(lat, lon, swapped)``.
    """
    if swap is not None:
        return (lon, lat, True) if swap else (lat, lon, False)
    fin_lat = lat[np.isfinite(lat)]
    fin_lon = lon[np.isfinite(lon)]
    if fin_lat.size and fin_lon.size and (np.abs(fin_lat) > 90).any() and (np.abs(fin_lon) <= 90).all():
        n_out = int((np.abs(fin_lat) > 90).sum())
        msg = (
            f"{source}: the columns {lat_name!r} and {lon_name!r} are swapped ({n_out} values of "
            f"{lat_name!r} are beyond ±90, impossible for a latitude, while {lon_name!r} stays within "
            f"±90); reading {lon_name!r} as latitude and {lat_name!r} as longitude. Old copies of "
            "im2gps3k_places365.csv have this header (LON,LAT over lat,lon values)."
        )
        warnings.warn(msg, SwappedCoordinatesWarning, stacklevel=3)
        return lon, lat, True
    return lat, lon, False
