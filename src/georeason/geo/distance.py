"""Great-circle distance: the one distance function of the project."""

from __future__ import annotations

from typing import overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

EARTH_RADIUS_KM = 6371.0088  # IUGG mean Earth radius R1
# PIGEON (Haas et al., CVPR 2024) GeoScore 5000·exp(−d/1492.7): the one copy of the
# scale, shared by the metric (eval.metrics.geoscore) and the reward (rewards.geoscore).
GEOSCORE_SCALE_KM = 1492.7


@overload
def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float: ...
@overload
def haversine_km(
    lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike
) -> NDArray[np.float64]: ...


def haversine_km(lat1, lon1, lat2, lon2):
    """Haversine distance in km between points given in decimal degrees.

    Vectorised over numpy broadcasting; scalars in give a Python float out.
    NaN in any coordinate gives NaN (no prediction), never an exception.

    >>> round(haversine_km(48.8566, 2.3522, 51.5074, -0.1278), 1)
    343.6
    >>> round(haversine_km(0, 0, 0, 180))
    20015
    """
    scalar = all(np.ndim(x) == 0 for x in (lat1, lon1, lat2, lon2))
    p1 = np.radians(np.asarray(lat1, dtype=np.float64))
    p2 = np.radians(np.asarray(lat2, dtype=np.float64))
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    a = np.sin(dphi / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2.0) ** 2
    d = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return float(d) if scalar else d
