r"""Rewards beyond Geo-R and GLOBE: hierarchy, chain consistency, GeoScore.

- ``hierarchy`` rewards each level of the Chain of Region that is right
  (continent → country → admin1 → city), so an answer with the right country but a
  wrong city earns partial credit by level rather than by distance alone.
- ``consistency`` rewards an answer whose named places agree with its own
  coordinates (a model that writes "France" then coordinates in Spain is
  incoherent, whatever the truth): it needs no ground truth.
- ``geoscore`` is PIGEON's GeoGuessr score ``exp(−d/1492.7)`` as a reward.

Completions are parsed with the ``geor`` protocol by default; every factory takes
``protocol=`` to score another answer format.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from georeason.geo import haversine_km
from georeason.match import Truth, chain_consistency, judge, place_answer, predicted_coordinates
from georeason.rewards.batch import (
    log_coordinates,
    parse_completions,
    true_coordinates,
    true_places,
)
from georeason.rewards.formulas import (
    HIERARCHY_LEVELS,
    HIERARCHY_WEIGHTS,
    geoscore_from_km,
    hierarchy_from_matches,
)
from georeason.types import Prediction

logger = logging.getLogger("georeason.rewards")

__all__ = [
    "ConsistencyReward",
    "GeoScoreReward",
    "HierarchyReward",
    "consistency",
    "geoscore",
    "hierarchy",
    "make_consistency",
    "make_geoscore",
    "make_hierarchy",
]


def _check_protocol(protocol: str) -> None:
    from georeason.protocols import get_protocol

    get_protocol(protocol)


# --------------------------------------------------------------------------- hierarchy


class HierarchyReward:
    r"""Per-level match of the answer's place hierarchy against the truth, TRL signature.

    .. math:: R_{hier} = \frac{\sum_{l \in L} w_l\,m_l}{\sum_{l \in L} w_l}, \quad
              l \in \{\text{continent}, \text{country}, \text{admin1}, \text{city}\}

    ``L`` holds the levels the row has ground truth for (columns ``continent``,
    ``country_code``/``country``, ``admin1``, ``city``; missing ones reverse-geocoded from
    ``lat``/``lon`` when ``fill_from_coordinates``), so the reward stays in [0, 1].
    ``m_l`` is :func:`georeason.match.judge`, the rule the evaluation's hierarchy accuracy
    uses too: the continent stated or implied by the country; countries by ISO code through
    aliases; admin1 and city by gazetteer names and aliases inside the true country, and
    wrong under a named, wrong country ("Paris" in the USA is not Paris, France). Default
    weights 0.1 / 0.3 / 0.3 / 0.3; no truth at all -> None.

    >>> h = HierarchyReward(weights={"country": 1.0, "city": 1.0}, name="country_city")
    >>> h(["<answer>Country: Italy\nCity: Milan\nCoordinates: (45.46, 9.19)</answer>"], country=["Italy"], city=["Rome"])
    [0.5]
    """

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        *,
        protocol: str = "geor",
        fill_from_coordinates: bool = True,
        name: str = "hierarchy",
    ) -> None:
        w = dict(HIERARCHY_WEIGHTS if weights is None else weights)
        unknown = set(w) - set(HIERARCHY_LEVELS)
        if unknown:
            raise ValueError(
                f"unknown hierarchy levels {sorted(unknown)}; the levels are {list(HIERARCHY_LEVELS)}"
            )
        if any(not np.isfinite(v) or v < 0 for v in w.values()) or sum(w.values()) <= 0:
            raise ValueError(f"hierarchy weights must be finite, >= 0 and not all 0, got {w}")
        _check_protocol(protocol)
        self.weights = {k: float(v) for k, v in w.items() if v > 0}
        self.protocol = protocol
        self.fill_from_coordinates = fill_from_coordinates
        self.__name__ = name

    def __repr__(self) -> str:
        return f"HierarchyReward(weights={self.weights}, protocol={self.protocol!r}, name={self.__name__!r})"

    def matches(self, pred: Prediction, truth: Truth) -> dict[str, bool | None]:
        r"""Per-level match (None where the truth lacks the level): :func:`georeason.match.judge`."""
        return judge(pred, truth, tuple(self.weights))

    def __call__(self, completions: Sequence[Any], **columns: Any) -> list[float | None]:
        n = len(completions)
        preds = parse_completions(completions, self.protocol)
        truths = true_places(
            columns,
            n,
            self.__name__,
            fill_from_coordinates=self.fill_from_coordinates,
            levels=tuple(self.weights),
        )
        return [
            hierarchy_from_matches(self.matches(p, t), self.weights)
            for p, t in zip(preds, truths, strict=True)
        ]


# --------------------------------------------------------------------------- consistency


class ConsistencyReward:
    r"""Whether the places an answer names agree with the coordinates it states (no truth needed).

    The checks are :func:`georeason.match.chain_consistency` (the evaluation report's
    chain consistency is the same function): the stated (lat, lon) is reverse geocoded
    to a place P; a named country must be P's country, a named city must match P's city
    or lie within ``city_radius_km`` (default 50) of the stated coordinates.

    .. math:: R_{cons} = \prod_{c \in \text{checks}} \mathbb{1}[c \text{ passes}]

    1 when every check made passes, else 0. ``None`` when the answer states no valid
    coordinates or names neither a country nor a city (nothing to compare). Range {0, 1}.

    >>> c = ConsistencyReward(city_radius_km=25.0, name="consistency_25km")
    >>> c(["<answer>Country: France\nCity: Paris\nCoordinates: (40.42, -3.70)</answer>"])  # Madrid's coordinates
    [0.0]
    """

    def __init__(
        self, *, protocol: str = "geor", city_radius_km: float = 50.0, name: str = "consistency"
    ) -> None:
        if not (np.isfinite(city_radius_km) and city_radius_km > 0):
            raise ValueError(f"city_radius_km must be a positive number of km, got {city_radius_km!r}")
        _check_protocol(protocol)
        self.protocol = protocol
        self.city_radius_km = float(city_radius_km)
        self.__name__ = name

    def __repr__(self) -> str:
        return (
            f"ConsistencyReward(protocol={self.protocol!r}, city_radius_km={self.city_radius_km}, "
            f"name={self.__name__!r})"
        )

    def __call__(self, completions: Sequence[Any], **columns: Any) -> list[float | None]:
        preds = parse_completions(completions, self.protocol)
        return [None if c is None else float(c) for c in chain_consistency(preds, self.city_radius_km)]


# --------------------------------------------------------------------------- geoscore


class GeoScoreReward:
    r"""GeoScore as a reward: ``exp(−d/1492.7)`` (PIGEON's ``5000·exp(−d/1492.7)`` / 5000).

    ``d`` is the haversine distance (km) from the answer's coordinates to the true
    ``lat``/``lon``. With ``geocode_names`` (default: on for the ``globe`` protocol, whose
    answers name places without coordinates) an answer without coordinates is placed by
    :func:`georeason.match.place_answer`, as the evaluation places it. Under a trainer,
    logs the coordinates it scored and their error (:func:`~georeason.rewards.batch.log_coordinates`). No location -> 0; no truth ->
    None. Range [0, 1].

    >>> gs = GeoScoreReward(protocol="globe")
    >>> [round(x, 3) for x in gs(["<think>.</think><answer>country: France\ncity: Paris</answer>"],
    ...                          lat=[45.76], lon=[4.84])]  # truth: Lyon, ~390 km away
    [0.769]
    """

    def __init__(
        self, *, protocol: str = "geor", geocode_names: bool | None = None, name: str = "geoscore"
    ) -> None:
        _check_protocol(protocol)
        self.protocol = protocol
        self.geocode_names = protocol == "globe" if geocode_names is None else bool(geocode_names)
        self.__name__ = name

    def __repr__(self) -> str:
        return f"GeoScoreReward(protocol={self.protocol!r}, geocode_names={self.geocode_names}, name={self.__name__!r})"

    def __call__(self, completions: Sequence[Any], **columns: Any) -> list[float | None]:
        n = len(completions)
        preds = parse_completions(completions, self.protocol)
        tlat, tlon = true_coordinates(columns, n, self.__name__)
        plat, plon = predicted_coordinates(preds)
        if self.geocode_names:
            for i in np.flatnonzero(np.isnan(plat)).tolist():
                place = place_answer(preds[i])
                if place is not None:
                    plat[i], plon[i] = place.lat, place.lon
        r = geoscore_from_km(haversine_km(plat, plon, tlat, tlon))
        r[np.isnan(plat)] = 0.0  # no location stated: score 0
        r[np.isnan(tlat)] = np.nan  # no truth: nothing to score
        log_coordinates(columns, self.__name__, plat, plon, tlat, tlon)
        return [None if np.isnan(x) else float(x) for x in r]


# --------------------------------------------------------------------------- defaults

_HIERARCHY = HierarchyReward()
_CONSISTENCY = ConsistencyReward()
_GEOSCORE = GeoScoreReward()


def hierarchy(completions: Sequence[Any], **columns: Any) -> list[float | None]:
    r"""Weighted share of hierarchy levels right (continent 0.1, country 0.3, admin1 0.3, city 0.3).

    .. math:: R_{hier} = \sum_{l \in L} w_l\,m_l \,/\, \sum_{l \in L} w_l

    over the levels ``L`` the row has truth for; admin1 and city count only when the
    country is right. No truth -> None. Range [0, 1]. See :class:`HierarchyReward`.

    >>> ans = "<answer>Country: Germany\nState: Bavaria\nCity: Munich\nCoordinates: (48.14, 11.58)</answer>"
    >>> hierarchy([ans, ans], continent=["EU", "EU"], country=["Germany", "Austria"],
    ...           admin1=["Bavaria", "Salzburg"], city=["München", "Salzburg"])
    [1.0, 0.1]
    """
    return _HIERARCHY(completions, **columns)


def consistency(completions: Sequence[Any], **columns: Any) -> list[float | None]:
    r"""1 if the answer's named country/city agree with its own coordinates, else 0 (no truth needed).

    The coordinates are reverse geocoded; the named country must be that country and the
    named city must be the nearest place or lie within 50 km. No coordinates or no names
    -> None. Range {0, 1}. See :class:`ConsistencyReward` for the exact checks.

    >>> ok = "<answer>Country: Japan\nCity: Kyoto\nCoordinates: (35.01, 135.77)</answer>"
    >>> off = "<answer>Country: Japan\nCity: Sapporo\nCoordinates: (35.01, 135.77)</answer>"
    >>> consistency([ok, off, "<answer>Coordinates: (35.01, 135.77)</answer>"])
    [1.0, 0.0, None]
    """
    return _CONSISTENCY(completions, **columns)


def geoscore(completions: Sequence[Any], **columns: Any) -> list[float | None]:
    r"""GeoScore reward ``exp(−d/1492.7)`` for the answer's coordinates vs. the true ``lat``/``lon``.

    No coordinates -> 0; no truth -> None. Range [0, 1].

    >>> geoscore(["<answer>Coordinates: (48.8566, 2.3522)</answer>", "no idea"], lat=[48.8566, 0.0], lon=[2.3522, 0.0])
    [1.0, 0.0]
    """
    return _GEOSCORE(completions, **columns)


def make_hierarchy(
    weights: Mapping[str, float] | None = None,
    *,
    protocol: str = "geor",
    fill_from_coordinates: bool = True,
    name: str = "hierarchy",
) -> HierarchyReward:
    r"""Hierarchy reward with per-level ``weights`` (keys among continent, country, admin1, city).

    >>> make_hierarchy({"country": 1, "city": 3}, name="city_heavy").weights
    {'country': 1.0, 'city': 3.0}
    """
    return HierarchyReward(weights, protocol=protocol, fill_from_coordinates=fill_from_coordinates, name=name)


def make_consistency(
    *, protocol: str = "geor", city_radius_km: float = 50.0, name: str = "consistency"
) -> ConsistencyReward:
    r"""Consistency reward accepting a named city within ``city_radius_km`` of the stated coordinates.

    >>> make_consistency(city_radius_km=10).city_radius_km
    10.0
    """
    return ConsistencyReward(protocol=protocol, city_radius_km=city_radius_km, name=name)


def make_geoscore(
    *, protocol: str = "geor", geocode_names: bool | None = None, name: str = "geoscore"
) -> GeoScoreReward:
    r"""GeoScore reward for ``protocol`` answers (``geocode_names`` places coordinate-free answers).

    >>> make_geoscore(protocol="globe").geocode_names
    True
    """
    return GeoScoreReward(protocol=protocol, geocode_names=geocode_names, name=name)
