r"""Geo-R's rewards (arXiv 2601.00388): distance, format, and their product.

The paper trains with ``r = r_dist(d) × r_format``. Where the released Geo-R code
differs we follow the paper, not the code: the code *sums* the two rewards (two
separate TRL reward functions), places the distance breakpoints at 750/3000/20000 km
instead of 750/2500/20000 km and rounds to 4 decimals, uses R = 6371 km, and its
format regex asks for a bounding box ``[x1, y1, x2, y2]`` inside JSON (a leftover of
the grounding code it was forked from) rather than a coordinate pair.

Completions are parsed with the ``geor`` protocol (Chain of Region) by default; pass
another protocol to the factories to score, e.g., ``plain`` or ``cot`` answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from georeason.geo import haversine_km
from georeason.rewards.batch import parse_completions, predicted_coordinates, true_coordinates
from georeason.rewards.formulas import geor_distance_from_km

__all__ = ["GeoRReward", "geor", "geor_distance", "geor_format", "make_geor"]

_KINDS = ("distance", "format", "product")


class GeoRReward:
    r"""A Geo-R reward with TRL's signature ``f(completions, **columns) -> list[float | None]``.

    ``kind``:

    - ``"distance"`` — ``r_dist(d)`` (see :func:`~georeason.rewards.formulas.geor_distance_from_km`),
      ``d`` the haversine distance from the stated coordinates to the true ``lat``/``lon``.
      A completion with no valid coordinates scores **0.0**: the model gave no location,
      which is a legitimate zero for a distance reward, not a failure to score.
    - ``"format"`` — ``r_format`` = 1 iff the answer holds exactly one valid (lat, lon) pair
      (``Prediction.n_coordinates == 1`` from the parser, which read the whole answer:
      ``Prediction.truncated`` False), else 0. This is the paper's
      condition; the ``geor`` protocol's own ``format_ok`` also asks for every level of the
      chain and is not used here.
    - ``"product"`` — ``r_dist × r_format``, the paper's reward.

    Rows whose true coordinates are missing or invalid score ``None`` (nothing to compare
    with) for the distance and the product; the format reward needs no truth.

    The instance is picklable (TRL's async GRPO sends reward functions to a worker process)
    and carries ``__name__`` so TRL logs it by name.

    >>> r = GeoRReward("product", name="geor_strict")
    >>> r.__name__
    'geor_strict'
    >>> r(["<answer>Coordinates: (35.68, 139.69)</answer>"], lat=[35.68], lon=[139.69])
    [1.0]
    """

    def __init__(self, kind: str = "product", *, protocol: str = "geor", name: str | None = None) -> None:
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        from georeason.protocols import get_protocol

        get_protocol(protocol)  # fail at construction on an unknown protocol
        self.kind = kind
        self.protocol = protocol
        self.__name__ = (
            name or {"distance": "geor_distance", "format": "geor_format", "product": "geor"}[kind]
        )

    def __repr__(self) -> str:
        return f"GeoRReward(kind={self.kind!r}, protocol={self.protocol!r}, name={self.__name__!r})"

    def __call__(self, completions: Sequence[Any], **columns: Any) -> list[float | None]:
        n = len(completions)
        preds = parse_completions(completions, self.protocol)
        # A capped parse counted only part of the answer: "exactly one pair" is unknown, so 0.
        fmt = np.array([1.0 if p.n_coordinates == 1 and not p.truncated else 0.0 for p in preds])
        if self.kind == "format":
            return fmt.tolist()
        tlat, tlon = true_coordinates(columns, n, self.__name__)
        plat, plon = predicted_coordinates(preds)
        r = geor_distance_from_km(haversine_km(plat, plon, tlat, tlon))
        r[np.isnan(plat) | np.isnan(plon)] = 0.0  # no stated location: r_dist = 0
        if self.kind == "product":
            r = r * fmt
        r[np.isnan(tlat)] = np.nan  # no truth: nothing to score
        return [None if np.isnan(x) else float(x) for x in r]


_GEOR_DISTANCE = GeoRReward("distance")
_GEOR_FORMAT = GeoRReward("format")
_GEOR = GeoRReward("product")


def geor_distance(completions: Sequence[Any], **columns: Any) -> list[float | None]:
    r"""Geo-R distance reward ``r_dist(d)`` on Chain-of-Region answers (arXiv 2601.00388).

    .. math::

        r_{dist}(d) = \begin{cases}
          1 - 0.5\,d/750 & d \le 750 \text{ km} \\
          0.5 - 0.3\,(d - 750)/1750 & 750 < d \le 2500 \\
          \max(0,\ 0.2 - 0.2\,(d - 2500)/17500) & d > 2500
        \end{cases}

    ``d`` is the haversine distance (km) from the answer's coordinates to the columns
    ``lat``/``lon``. No valid coordinates in the answer -> 0.0 (no location given);
    missing truth -> None. Range [0, 1].

    >>> done = "<think>Kanji signs.</think><answer>Country: Japan\nCity: Tokyo\nCoordinates: (35.68, 139.69)</answer>"
    >>> geor_distance([done, "I cannot tell."], lat=[35.68, 35.68], lon=[139.69, 139.69])
    [1.0, 0.0]
    >>> round(geor_distance([done], lat=[34.69], lon=[135.50])[0], 3)  # Osaka, ~400 km away
    0.736
    """
    return _GEOR_DISTANCE(completions, **columns)


def geor_format(completions: Sequence[Any], **columns: Any) -> list[float | None]:
    r"""Geo-R format reward ``r_format``: 1 iff the answer holds exactly one valid (lat, lon) pair.

    Valid means parsed by the ``geor`` protocol and within [-90, 90] × [-180, 180]; two
    candidate pairs (a hedged answer) or none give 0. Range {0, 1}; never None.

    >>> one = "<answer>City: Tokyo\nCoordinates: (35.68, 139.69)</answer>"
    >>> two = "<answer>Coordinates: (35.68, 139.69) or (34.69, 135.50)</answer>"
    >>> geor_format([one, two, "no idea"])
    [1.0, 0.0, 0.0]
    """
    return _GEOR_FORMAT(completions, **columns)


def geor(completions: Sequence[Any], **columns: Any) -> list[float | None]:
    r"""Geo-R's training reward: ``r_dist(d) × r_format`` (the paper's product, not the code's sum).

    A hedged answer with two coordinate pairs scores 0 however close the first one is.
    Missing truth -> None. Range [0, 1].

    >>> one = "<answer>City: Tokyo\nCoordinates: (35.68, 139.69)</answer>"
    >>> two = "<answer>Coordinates: (35.68, 139.69) or (34.69, 135.50)</answer>"
    >>> geor([one, two, one], lat=[35.68, 35.68, None], lon=[139.69, 139.69, None])
    [1.0, 0.0, None]
    """
    return _GEOR(completions, **columns)


def make_geor(kind: str = "product", *, protocol: str = "geor", name: str | None = None) -> GeoRReward:
    r"""A Geo-R reward (``kind`` = "distance", "format" or "product") parsing ``protocol`` answers.

    >>> plain_geor = make_geor("distance", protocol="plain", name="plain_distance")
    >>> plain_geor(["48.8566, 2.3522"], lat=[48.8566], lon=[2.3522])
    [1.0]
    """
    return GeoRReward(kind, protocol=protocol, name=name)
