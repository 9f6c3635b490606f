"""Reverse geocoding: (lat, lon) -> continent, country, admin1, city.

Country is exact (point-in-polygon, :mod:`georeason.geo.countries`); admin1 and
city come from the nearest GeoNames populated place *in that country*, found
with a KD-tree on 3-D unit vectors, so a point near a border gets the city of
its own country, not the closer town across the border.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from georeason.geo.countries import country_index
from georeason.geo.gazetteer import continent_of, country_name, gazetteer
from georeason.geo.sphere import unit_vectors
from georeason.types import PLACE_LEVELS, Place


@dataclass
class PlaceTable:
    """Columnar result of :func:`reverse_geocode_batch`; invalid rows hold "" / NaN."""

    continent: NDArray[np.object_]
    country_code: NDArray[np.object_]
    country: NDArray[np.object_]
    admin1: NDArray[np.object_]
    city: NDArray[np.object_]
    city_lat: NDArray[np.float64]
    city_lon: NDArray[np.float64]
    on_land: NDArray[np.bool_]  # False: in the sea / off the coastline; nearest country given
    valid: NDArray[np.bool_]
    errors: NDArray[np.object_]  # None, or why the row is invalid

    def __len__(self) -> int:
        return len(self.valid)

    def __getitem__(self, i: int) -> Place | None:
        if not self.valid[i]:
            return None
        return Place(
            continent=self.continent[i],
            country_code=self.country_code[i],
            country=self.country[i],
            admin1=self.admin1[i],
            city=self.city[i],
            city_lat=float(self.city_lat[i]),
            city_lon=float(self.city_lon[i]),
        )

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({k: getattr(self, k) for k in self.__dataclass_fields__})


def _check_scalar(name: str, value: Any, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if abs(v) > limit:
        raise ValueError(f"{name} {value!r} is out of range [-{limit:g}, {limit:g}]")
    return v


def _coerce(values: ArrayLike, name: str) -> tuple[NDArray[np.float64], NDArray[np.object_]]:
    """Float array plus a per-row error for entries that are not numbers."""
    arr = np.asarray(values, dtype=object).ravel() if not isinstance(values, np.ndarray) else values.ravel()
    errors = np.full(len(arr), None, dtype=object)
    if arr.dtype.kind in "fiu":
        return arr.astype(np.float64), errors
    out = np.full(len(arr), np.nan)
    for i, v in enumerate(arr):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            errors[i] = f"{name} must be a number, got {v!r}"
        else:
            out[i] = float(v)
    return out, errors


def validate(
    lat: ArrayLike, lon: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.object_]]:
    """Coerce coordinates to float arrays; ``errors[i]`` says why row i is invalid."""
    la, err_la = _coerce(lat, "latitude")
    lo, err_lo = _coerce(lon, "longitude")
    if len(la) != len(lo):
        raise ValueError(f"got {len(la)} latitudes but {len(lo)} longitudes")
    errors = np.where(err_la != None, err_la, err_lo)  # noqa: E711  (elementwise on object arrays)
    with np.errstate(invalid="ignore"):
        bad_lat = ~np.isfinite(la) | (np.abs(la) > 90)
        bad_lon = ~np.isfinite(lo) | (np.abs(lo) > 180)
    for i in np.flatnonzero((bad_lat | bad_lon) & (errors == None)):  # noqa: E711
        if bad_lat[i]:
            errors[i] = f"latitude {float(la[i])!r} is not finite or out of range [-90, 90]"
        else:
            errors[i] = f"longitude {float(lo[i])!r} is not finite or out of range [-180, 180]"
    return la, lo, errors


@lru_cache(maxsize=1)
def _place_tree() -> Any:
    from scipy.spatial import cKDTree

    return cKDTree(gazetteer().unit_vectors())


@lru_cache(maxsize=512)
def _country_tree(code: str) -> tuple[Any, NDArray[np.intp]] | None:
    from scipy.spatial import cKDTree

    g = gazetteer()
    rows = np.flatnonzero(g.country_code == code)
    if not len(rows):
        return None
    return cKDTree(unit_vectors(g.lat[rows], g.lon[rows])), rows


def _nearest_places(
    lat: NDArray[np.float64], lon: NDArray[np.float64], codes: NDArray[np.object_]
) -> NDArray[np.intp]:
    """Row of the nearest gazetteer place in the point's own country (-1: country has none)."""
    g = gazetteer()
    xyz = unit_vectors(lat, lon)
    _, rows = _place_tree().query(xyz, k=1, workers=-1)
    rows = np.asarray(rows, dtype=np.intp)
    # Most points' nearest place is in their own country; re-query only the others.
    other = np.flatnonzero(g.country_code[rows] != codes)
    if len(other):
        # Group the others by country with one sort (sea points give many countries).
        uniq, inv = np.unique(codes[other].astype(str), return_inverse=True)
        order = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[order], np.arange(len(uniq) + 1))
        for j, code in enumerate(uniq.tolist()):
            sel = other[order[bounds[j] : bounds[j + 1]]]
            tree = _country_tree(code)
            if tree is None:
                rows[sel] = -1
                continue
            _, local = tree[0].query(xyz[sel], k=1)
            rows[sel] = tree[1][local]
    return rows


def reverse_geocode_batch(lat: ArrayLike, lon: ArrayLike) -> PlaceTable:
    """Places of many coordinates at once.

    Rows with NaN, inf, out-of-range or non-numeric coordinates are marked
    invalid (``valid[i]`` False, ``errors[i]`` says why) and the rest finish.

    >>> t = reverse_geocode_batch([48.8566, float("nan")], [2.3522, 0.0])
    >>> t.country_code[0], t.city[0], bool(t.valid[1]), t.errors[1]
    ('FR', 'Paris', False, 'latitude nan is not finite or out of range [-90, 90]')
    """
    la, lo, errors = validate(lat, lon)
    n = len(la)
    valid = errors == None  # noqa: E711
    cols = {k: np.full(n, "", dtype=object) for k in PLACE_LEVELS}
    city_lat, city_lon = np.full(n, np.nan), np.full(n, np.nan)
    on_land = np.zeros(n, dtype=bool)
    idx = np.flatnonzero(valid)
    if len(idx):
        g = gazetteer()
        codes, land = country_index().lookup(la[idx], lo[idx])
        rows = _nearest_places(la[idx], lo[idx], codes)
        has = rows >= 0
        cols["country_code"][idx] = codes
        uniq, inv = np.unique(codes.astype(str), return_inverse=True)
        cols["country"][idx] = np.array([country_name(c) for c in uniq], dtype=object)[inv]
        cols["continent"][idx] = np.array([continent_of(c) or "" for c in uniq], dtype=object)[inv]
        cols["admin1"][idx[has]] = g.admin1[rows[has]]
        cols["city"][idx[has]] = g.name[rows[has]]
        city_lat[idx[has]] = g.lat[rows[has]]
        city_lon[idx[has]] = g.lon[rows[has]]
        on_land[idx] = land
    return PlaceTable(
        **cols, city_lat=city_lat, city_lon=city_lon, on_land=on_land, valid=valid, errors=errors
    )


def reverse_geocode(lat: float, lon: float) -> Place:
    """Place of one coordinate; raises ``ValueError`` naming a bad value.

    >>> p = reverse_geocode(35.6895, 139.6917)
    >>> p.continent, p.country_code, p.city
    ('AS', 'JP', 'Tokyo')
    """
    la = _check_scalar("latitude", lat, 90.0)
    lo = _check_scalar("longitude", lon, 180.0)
    place = reverse_geocode_batch(np.array([la]), np.array([lo]))[0]
    assert place is not None  # validated above
    return place
