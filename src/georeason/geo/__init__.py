"""Coordinates <-> places, fully offline.

Public API (all of it importable without torch):

- :func:`haversine_km` — the one distance function of the project.
- :func:`reverse_geocode` / :func:`reverse_geocode_batch` — (lat, lon) -> :class:`~georeason.types.Place`.
- :func:`forward_geocode` — (city?, admin1?, country?) -> Place | None.
- :func:`normalize_country`, :func:`country_name`, :func:`continent_of`, :func:`normalize_name`,
  :func:`names_match` — name helpers shared with the rewards.
"""

from georeason.geo.distance import EARTH_RADIUS_KM, haversine_km

__all__ = ["EARTH_RADIUS_KM", "haversine_km"]
