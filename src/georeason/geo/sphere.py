"""Geometry on the sphere: unit vectors, chord radii, radius search and equal-area cells.

- :func:`unit_vectors`: (lat, lon) -> 3-D unit vectors. Nearest neighbours on these
  are nearest on the sphere (the chord is monotone in the great-circle distance),
  unlike nearest neighbours on raw degrees; the gazetteer, reverse geocoding and the
  selection's hard set all build their KD-trees on them.
- :func:`chord_radius` and :func:`near_any`: an exact "within r km of any hotspot"
  test, a KD-tree query bounded by the chord followed by a haversine check.
- :func:`geocell_ids`, :func:`geocell_grid`, :func:`geocell_center`: an equal-area
  grid (uniform in longitude and in ``z = sin(lat)``, Archimedes' hat-box theorem),
  so every cell covers the same area and per-cell caps do not favour the poles.

The specification (the chord bound, the geocells) is docs/select.md.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from georeason.geo.distance import EARTH_RADIUS_KM, haversine_km


def unit_vectors(lat: ArrayLike, lon: ArrayLike) -> NDArray[np.float64]:
    """3-D unit vectors of points in decimal degrees, shape ``(..., 3)``.

    >>> unit_vectors([0.0, 90.0], [0.0, 0.0]).round(12).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    phi, lmb = np.radians(lat), np.radians(lon)
    cos_phi = np.cos(phi)
    return np.stack([cos_phi * np.cos(lmb), cos_phi * np.sin(lmb), np.sin(phi)], axis=-1)


def chord_radius(radius_km: float) -> float:
    """Chord length on the unit sphere equivalent to a great-circle radius in km.

    ``2·sin(min(r/R, π)/2)``: exact, because the chord is strictly increasing in the
    central angle on [0, π]; radii of half the circumference or more cover the sphere.

    >>> round(chord_radius(200.0), 9)
    0.031390914
    >>> chord_radius(30_000.0)
    2.0
    """
    if not radius_km >= 0:
        raise ValueError(f"radius must be >= 0 km, got {radius_km}")
    theta = min(radius_km / EARTH_RADIUS_KM, math.pi)
    return 2.0 * math.sin(theta / 2.0)


def near_any(
    lat: ArrayLike,
    lon: ArrayLike,
    hot_lat: ArrayLike,
    hot_lon: ArrayLike,
    radius_km: float,
    *,
    workers: int = -1,
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """For each point: is some hotspot within ``radius_km`` (great circle, inclusive)?

    Returns ``(mask, nearest_km)``; ``nearest_km`` is the haversine distance to the
    nearest hotspot for masked points and NaN elsewhere. Points with NaN
    coordinates are never near. See :func:`chord_radius` for why the chord bound
    loses no point.

    >>> m, d = near_any([48.85, 40.71], [2.35, -74.0], [48.86], [2.29], 10.0)
    >>> m.tolist(), round(float(d[0]), 2)
    ([True, False], 4.53)
    """
    from scipy.spatial import cKDTree

    la = np.asarray(lat, dtype=np.float64).ravel()
    lo = np.asarray(lon, dtype=np.float64).ravel()
    hla = np.asarray(hot_lat, dtype=np.float64).ravel()
    hlo = np.asarray(hot_lon, dtype=np.float64).ravel()
    mask = np.zeros(la.size, dtype=bool)
    nearest = np.full(la.size, np.nan)
    hok = np.isfinite(hla) & np.isfinite(hlo)
    hla, hlo = hla[hok], hlo[hok]
    ok = np.flatnonzero(np.isfinite(la) & np.isfinite(lo))
    if not hla.size or not ok.size:
        return mask, nearest
    tree = cKDTree(unit_vectors(hla, hlo))
    chord = chord_radius(radius_km)
    # A hair over the chord so no boundary point is lost to rounding; the exact test follows.
    bound = chord * (1 + 1e-9) + 1e-12
    dist, idx = tree.query(unit_vectors(la[ok], lo[ok]), k=1, distance_upper_bound=bound, workers=workers)
    cand = np.flatnonzero(np.isfinite(dist))
    if cand.size:
        rows, hot = ok[cand], idx[cand]
        d = haversine_km(la[rows], lo[rows], hla[hot], hlo[hot])
        hit = d <= radius_km
        mask[rows[hit]] = True
        nearest[rows[hit]] = d[hit]
    return mask, nearest


def geocell_ids(lat: ArrayLike, lon: ArrayLike, cell_km: float = 100.0) -> NDArray[np.int64]:
    """Equal-area geocell of each point (-1 for invalid coordinates); see the module docstring.

    >>> geocell_ids([0.0, 0.0, 89.99], [0.0, 0.5, 0.0], 100.0).tolist()
    [25400, 25400, 50600]
    """
    if not cell_km > 0:
        raise ValueError(f"cell_km must be > 0, got {cell_km}")
    n_lon, n_z = geocell_grid(cell_km)
    la = np.asarray(lat, dtype=np.float64).ravel()
    lo = np.asarray(lon, dtype=np.float64).ravel()
    ok = np.isfinite(la) & np.isfinite(lo) & (np.abs(la) <= 90) & (np.abs(lo) <= 180)
    z = np.sin(np.radians(np.where(ok, la, 0.0)))
    row = np.clip(np.floor((z + 1.0) / 2.0 * n_z), 0, n_z - 1).astype(np.int64)
    col = np.clip(np.floor((np.where(ok, lo, 0.0) + 180.0) / 360.0 * n_lon), 0, n_lon - 1).astype(np.int64)
    return np.where(ok, row * n_lon + col, -1)


def geocell_grid(cell_km: float) -> tuple[int, int]:
    """``(n_lon, n_z)`` of the equal-area grid for a cell side of ``cell_km`` at the equator."""
    n_lon = max(1, round(2 * math.pi * EARTH_RADIUS_KM / cell_km))
    n_z = max(1, round(2 * EARTH_RADIUS_KM / cell_km))
    return n_lon, n_z


def geocell_center(cell: int, cell_km: float) -> tuple[float, float]:
    """(lat, lon) of a geocell's centre."""
    n_lon, n_z = geocell_grid(cell_km)
    row, col = divmod(int(cell), n_lon)
    z = (row + 0.5) / n_z * 2.0 - 1.0
    return math.degrees(math.asin(z)), (col + 0.5) / n_lon * 360.0 - 180.0


__all__ = ["chord_radius", "geocell_center", "geocell_grid", "geocell_ids", "near_any", "unit_vectors"]
