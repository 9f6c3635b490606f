r"""Geo-R's rewards (arXiv 2601.00388): distance, format, and their product.

The paper trains with ``r = r_dist(d) × r_format``, ``r_format`` = 1 iff the output holds
"exactly one valid (lat, lon) pair, comma-separated within parentheses". Where the
released Geo-R code differs we follow the paper, not the code: the code *sums* the two
rewards (two separate TRL reward functions), places the distance breakpoints at
750/3000/20000 km instead of 750/2500/20000 km and rounds to 4 decimals, uses R = 6371
km, and its format regex asks for a bounding box ``[x1, y1, x2, y2]`` inside JSON (a
leftover of the grounding code it was forked from) rather than a coordinate pair; its
answers carry the coordinates as ``{'LOC': [lat, lon]}``, which the parser reads (for
the distance and the evaluation) but which earns the format reward only under
``strict_format=False``.

Like TRL's own ``accuracy_reward``, the rewards log what they saw when the trainer
passes its ``log_extra`` / ``log_metric`` callables
(see :func:`georeason.rewards.batch.log_coordinates`).

Completions are parsed with the ``geor`` protocol (Chain of Region) by default; pass
another protocol to the factories to score, e.g., ``plain`` or ``cot`` answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from georeason.geo import haversine_km
from georeason.match import predicted_coordinates
from georeason.protocols.parsing import PAREN
from georeason.rewards.batch import (
    column,
    log_coordinates,
    parse_completions,
    true_coordinates,
)
from georeason.rewards.formulas import geor_distance_from_km
from georeason.types import Prediction

__all__ = [
    "GeoRReward",
    "format_reward",
    "geor",
    "geor_distance",
    "geor_format",
    "make_geor",
]

_KINDS = ("distance", "format", "product")


def format_reward(pred: Prediction, strict: bool = True) -> float:
    r"""Geo-R's ``r_format`` of one parsed answer: 1.0 or 0.0.

    1 iff the answer region holds exactly one valid (lat, lon) pair and the parser read
    all of it (``not pred.truncated``); with ``strict`` (the paper's letter) that pair
    must also be written ``(lat, lon)`` in decimals (``pred.coordinate_forms ==
    ["paren"]``). Lenient, any notation the parser reads counts (DMS, hemispheres, keys,
    brackets, bare ``lat, lon``).

    >>> from georeason.protocols import get_protocol
    >>> dms = get_protocol("geor").parse("<answer>Coordinates: 35°41'N, 139°41'E</answer>")
    >>> format_reward(dms), format_reward(dms, strict=False)
    (0.0, 1.0)
    """
    if pred.n_coordinates != 1 or pred.truncated:
        return 0.0
    return 1.0 if not strict or pred.coordinate_forms == [PAREN] else 0.0


class GeoRReward:
    r"""A Geo-R reward with TRL's signature ``f(completions, **columns) -> list[float | None]``.

    ``kind``:

    - ``"distance"`` — ``r_dist(d)`` (see :func:`~georeason.rewards.formulas.geor_distance_from_km`),
      ``d`` the haversine distance from the stated coordinates to the true ``lat``/``lon``.
      A completion with no valid coordinates scores **0.0**: the model gave no location,
      which is a legitimate zero for a distance reward, not a failure to score. The
      coordinates are whatever the parser reads, in any notation.
    - ``"format"`` — ``r_format`` (:func:`format_reward`). The paper: 1 iff the output holds
      "exactly one valid (lat, lon) pair, comma-separated within parentheses". With
      ``strict_format=True`` (default) that is the letter: exactly one pair in the answer,
      written ``(lat, lon)`` in decimal degrees; DMS, hemisphere letters, ``lat:``/``lon:``
      keys, brackets (the released code's ``{'LOC': [lat, lon]}``) and a bare ``lat, lon``
      are read by the parser but score 0. ``strict_format=False`` accepts any one pair the
      parser reads. Either way the parser must have read the whole answer
      (``Prediction.truncated`` False) and a pair cut off inside a number
      (``"(43.452002, 14"``) is no pair. The ``geor`` protocol's own ``format_ok`` also asks
      for every level of the chain and is not used here.
    - ``"product"`` — ``r_dist × r_format``, the paper's reward.

    Which part of the output counts: the answer region only (inside ``<answer>``, else after
    ``</think>``). Pairs inside ``<think>`` are reasoning — a model weighing "(48.85, 2.35)
    or (45.76, 4.83)?" before answering — and neither add to the count nor earn the reward;
    the paper's prompt puts the coordinates in the answer, and counting the reasoning would
    punish exactly the step-by-step narrowing the method asks for.

    Rows whose true coordinates are missing or invalid score ``None`` (nothing to compare
    with) for the distance and the product; the format reward needs no truth.

    When TRL passes ``log_extra`` / ``log_metric`` (its ``GRPOTrainer`` does), the parsed
    coordinates and their error in km are logged per completion (:func:`log_coordinates`).

    The instance is picklable (TRL's async GRPO sends reward functions to a worker process)
    and carries ``__name__`` so TRL logs it by name.

    >>> r = GeoRReward("product", name="geor_strict")
    >>> r.__name__
    'geor_strict'
    >>> r(["<answer>Coordinates: (35.68, 139.69)</answer>"], lat=[35.68], lon=[139.69])
    [1.0]
    >>> dms = "<answer>Coordinates: 35°40'48\"N, 139°41'24\"E</answer>"
    >>> r([dms], lat=[35.68], lon=[139.69]), GeoRReward("product", strict_format=False)([dms], lat=[35.68], lon=[139.69])
    ([0.0], [1.0])
    """

    def __init__(
        self,
        kind: str = "product",
        *,
        protocol: str = "geor",
        strict_format: bool = True,
        name: str | None = None,
    ) -> None:
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        from georeason.protocols import get_protocol

        get_protocol(protocol)  # fail at construction on an unknown protocol
        self.kind = kind
        self.protocol = protocol
        self.strict_format = bool(strict_format)
        self.__name__ = (
            name or {"distance": "geor_distance", "format": "geor_format", "product": "geor"}[kind]
        )

    def __repr__(self) -> str:
        return (
            f"GeoRReward(kind={self.kind!r}, protocol={self.protocol!r}, strict_format={self.strict_format}, "
            f"name={self.__name__!r})"
        )

    def __call__(self, completions: Sequence[Any], **columns: Any) -> list[float | None]:
        n = len(completions)
        preds = parse_completions(completions, self.protocol)
        fmt = np.array([format_reward(p, self.strict_format) for p in preds])
        plat, plon = predicted_coordinates(preds)
        if self.kind == "format":  # needs no truth; logs the error where the batch has it
            if callable(columns.get("log_extra")) or callable(columns.get("log_metric")):
                has_truth = column(columns, "lat", n) is not None and column(columns, "lon", n) is not None
                truth = true_coordinates(columns, n, self.__name__) if has_truth else (None, None)
                log_coordinates(columns, self.__name__, plat, plon, *truth)
            return fmt.tolist()
        tlat, tlon = true_coordinates(columns, n, self.__name__)
        r = geor_distance_from_km(haversine_km(plat, plon, tlat, tlon))
        r[np.isnan(plat) | np.isnan(plon)] = 0.0  # no stated location: r_dist = 0
        if self.kind == "product":
            r = r * fmt
        r[np.isnan(tlat)] = np.nan  # no truth: nothing to score
        log_coordinates(columns, self.__name__, plat, plon, tlat, tlon)
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
    r"""Geo-R format reward ``r_format``: 1 iff the answer holds exactly one valid ``(lat, lon)`` pair.

    The paper's letter: one pair, "comma-separated within parentheses", in decimal degrees,
    within [-90, 90] × [-180, 180], in the answer region (pairs in ``<think>`` do not
    count). Two candidate pairs (a hedged answer), none, one in another notation (DMS,
    ``N``/``E``, ``lat:``/``lon:``, ``[lat, lon]``) or one cut off (``"(43.45, 14"``) give
    0. Range {0, 1}; never None. ``make_geor("format", strict_format=False)`` accepts any
    notation the parser reads.

    >>> one = "<answer>City: Tokyo\nCoordinates: (35.68, 139.69)</answer>"
    >>> two = "<answer>Coordinates: (35.68, 139.69) or (34.69, 135.50)</answer>"
    >>> cut = "<answer>City: Tokyo\nCoordinates: (35.68, 13"
    >>> geor_format([one, two, "no idea", "<answer>35.68 N, 139.69 E</answer>", cut])
    [1.0, 0.0, 0.0, 0.0, 0.0]
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


def make_geor(
    kind: str = "product", *, protocol: str = "geor", strict_format: bool = True, name: str | None = None
) -> GeoRReward:
    r"""A Geo-R reward (``kind`` = "distance", "format" or "product") parsing ``protocol`` answers.

    ``strict_format`` (default True, the paper's letter) gives ``r_format`` = 1 only to one
    pair written ``(lat, lon)``; False accepts any one pair the parser reads (DMS,
    hemispheres, keys, brackets, bare). From a recipe: ``reward_options: {geor:
    {strict_format: false}}``.

    >>> plain_geor = make_geor("distance", protocol="plain", name="plain_distance")
    >>> plain_geor(["48.8566, 2.3522"], lat=[48.8566], lon=[2.3522])
    [1.0]
    >>> make_geor("format", strict_format=False)(["48.8566, 2.3522"]), geor_format(["48.8566, 2.3522"])
    ([1.0], [0.0])
    """
    return GeoRReward(kind, protocol=protocol, strict_format=strict_format, name=name)
