"""Coordinates <-> places, fully offline.

Public API (all of it importable without torch):

- :func:`haversine_km` — the one distance function of the project.
- :func:`reverse_geocode` / :func:`reverse_geocode_batch` — (lat, lon) -> :class:`~georeason.types.Place`.
- :func:`forward_geocode` — (city?, admin1?, country?) -> Place | None.
- :func:`normalize_country`, :func:`country_name`, :func:`continent_of`, :func:`normalize_name`,
  :func:`names_match` — name helpers shared with the metrics and rewards.
- :func:`gazetteer` — the compiled GeoNames places (numpy columns).

Heavy data loads happen on first use, not at import.
"""

from georeason.geo.distance import EARTH_RADIUS_KM, haversine_km
from georeason.geo.gazetteer import (
    Gazetteer,
    continent_of,
    country_name,
    forward_geocode,
    gazetteer,
    names_match,
    normalize_country,
)
from georeason.geo.names import admin1_key, normalize_name
from georeason.geo.reverse import PlaceTable, reverse_geocode, reverse_geocode_batch
from georeason.types import CONTINENT_NAMES, Place

__all__ = [
    "CONTINENT_NAMES",
    "EARTH_RADIUS_KM",
    "Gazetteer",
    "Place",
    "PlaceTable",
    "admin1_key",
    "continent_of",
    "country_name",
    "forward_geocode",
    "gazetteer",
    "haversine_km",
    "names_match",
    "normalize_country",
    "normalize_name",
    "reverse_geocode",
    "reverse_geocode_batch",
]
