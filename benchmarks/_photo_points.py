"""Coordinates sampled like photos: near populated places, weighted by population."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def photo_like_points(
    n: int, seed: int = 0, spread_km: float = 5.0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``n`` points around GeoNames places drawn with probability ∝ sqrt(population),
    offset by an exponential distance (mean ``spread_km``) in a uniform direction."""
    from georeason.geo import EARTH_RADIUS_KM, gazetteer

    g = gazetteer()
    rng = np.random.default_rng(seed)
    w = np.sqrt(np.maximum(g.population, 1).astype(np.float64))
    idx = rng.choice(len(g), size=n, p=w / w.sum())
    dist = rng.exponential(spread_km, n) / EARTH_RADIUS_KM
    bearing = rng.uniform(0, 2 * np.pi, n)
    lat1, lon1 = np.radians(g.lat[idx]), np.radians(g.lon[idx])
    lat2 = np.arcsin(np.sin(lat1) * np.cos(dist) + np.cos(lat1) * np.sin(dist) * np.cos(bearing))
    lon2 = lon1 + np.arctan2(
        np.sin(bearing) * np.sin(dist) * np.cos(lat1), np.cos(dist) - np.sin(lat1) * np.sin(lat2)
    )
    lon_deg = (np.degrees(lon2) + 180.0) % 360.0 - 180.0
    return np.degrees(lat2), lon_deg


# Issue 12 §5: a box of mostly sea (about two thirds of its points are on no polygon).
UNIFORM_BOX = (-50.0, 65.0, -170.0, 175.0)  # lat_min, lat_max, lon_min, lon_max


def uniform_box_points(
    n: int, seed: int = 0, box: tuple[float, float, float, float] = UNIFORM_BOX
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``n`` points uniform in (lat, lon) degrees over ``box``: mostly sea, the
    worst case for a reverse geocoder whose sea points need a nearest-coast search."""
    lat0, lat1, lon0, lon1 = box
    rng = np.random.default_rng(seed)
    return rng.uniform(lat0, lat1, n), rng.uniform(lon0, lon1, n)
