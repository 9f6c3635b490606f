"""The reward formulas as pure functions of numbers (no parsing, no columns).

Each reward in :mod:`georeason.rewards` turns completions into these numbers
(distances, per-level matches, log-probabilities) and calls one function here,
so the formula a paper prints is the code that runs, and it can be tested on
its own at every breakpoint.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from georeason.geo.distance import GEOSCORE_SCALE_KM  # PIGEON's scale; the reward drops the 5000

__all__ = [
    "GEOR_BREAKPOINTS_KM",
    "GEOSCORE_SCALE_KM",
    "GLOBE_ALPHA",
    "GLOBE_NO_TOKENS",
    "GLOBE_YES_TOKENS",
    "HIERARCHY_LEVELS",
    "HIERARCHY_WEIGHTS",
    "JudgeError",
    "geor_distance_from_km",
    "geoscore_from_km",
    "globe_accuracy_from_matches",
    "hierarchy_from_matches",
    "locatability_from_logprobs",
]

# Geo-R (arXiv 2601.00388), piecewise-linear distance reward:
#   1 at 0 km, 0.5 at 750 km, 0.2 at 2500 km, 0 at 2500 + 17500 = 20000 km.
GEOR_BREAKPOINTS_KM: tuple[float, float, float] = (750.0, 2500.0, 17500.0)
GLOBE_ALPHA = 0.8  # GLOBE (arXiv 2506.14674): weight of the city term in R_geo
HIERARCHY_LEVELS: tuple[str, ...] = ("continent", "country", "admin1", "city")
HIERARCHY_WEIGHTS: dict[str, float] = {"continent": 0.1, "country": 0.3, "admin1": 0.3, "city": 0.3}
# GLOBE's released plugin sums the probabilities of these spellings among the top log-probs.
GLOBE_YES_TOKENS: tuple[str, ...] = ("yes", "Yes", "YES")
GLOBE_NO_TOKENS: tuple[str, ...] = ("no", "No", "NO")


class JudgeError(RuntimeError):
    """A locatability judge could not give a probability (backend error, no yes/no token, bad value)."""


@overload
def geor_distance_from_km(d_km: float) -> float: ...
@overload
def geor_distance_from_km(d_km: ArrayLike) -> NDArray[np.float64]: ...


def geor_distance_from_km(d_km):
    r"""Geo-R's distance reward ``r_dist(d)`` (arXiv 2601.00388), ``d`` in km.

    .. math::

        r_{dist}(d) = \begin{cases}
          1 - 0.5\,d/750 & d \le 750 \\
          0.5 - 0.3\,(d - 750)/1750 & 750 < d \le 2500 \\
          \max(0,\ 0.2 - 0.2\,(d - 2500)/17500) & d > 2500
        \end{cases}

    Continuous: 1 → 0.5 at 750 km → 0.2 at 2500 km → 0 at 20000 km (and 0 beyond).
    The released Geo-R code uses 750/3000/20000 km breakpoints and rounds to 4 decimals;
    this is the paper's formula. Scalars give a float; arrays are mapped elementwise and
    NaN (no distance) stays NaN. A negative or NaN scalar raises ``ValueError``.

    >>> geor_distance_from_km(0.0), geor_distance_from_km(750.0), geor_distance_from_km(2500.0)
    (1.0, 0.5, 0.2)
    >>> round(geor_distance_from_km(11250.0), 6), geor_distance_from_km(20015.0)
    (0.1, 0.0)
    >>> geor_distance_from_km([0.0, 375.0, float("nan")]).tolist()
    [1.0, 0.75, nan]
    """
    b1, b2, tail = GEOR_BREAKPOINTS_KM
    if np.ndim(d_km) == 0:
        d = _check_scalar_km(d_km)
        if d <= b1:
            return 1.0 - 0.5 * d / b1
        if d <= b2:
            return 0.5 - 0.3 * (d - b1) / (b2 - b1)
        return max(0.0, 0.2 - 0.2 * (d - b2) / tail)
    arr = np.asarray(d_km, dtype=np.float64)
    near = 1.0 - 0.5 * arr / b1
    mid = 0.5 - 0.3 * (arr - b1) / (b2 - b1)
    far = np.maximum(0.0, 0.2 - 0.2 * (arr - b2) / tail)
    out = np.where(arr <= b1, near, np.where(arr <= b2, mid, far))
    out[np.isnan(arr)] = np.nan  # comparisons with NaN are False: keep "no distance" visible
    return out


@overload
def geoscore_from_km(d_km: float) -> float: ...
@overload
def geoscore_from_km(d_km: ArrayLike) -> NDArray[np.float64]: ...


def geoscore_from_km(d_km):
    r"""GeoScore as a reward in [0, 1]: ``exp(−d / 1492.7)``, ``d`` in km.

    PIGEON's GeoGuessr-style score is ``5000·exp(−d/1492.7)``; the reward drops the
    factor 5000 so it shares the [0, 1] range of the other rewards.

    >>> geoscore_from_km(0.0)
    1.0
    >>> round(geoscore_from_km(1492.7), 6)
    0.367879
    >>> geoscore_from_km([0.0, float("nan")]).tolist()
    [1.0, nan]
    """
    if np.ndim(d_km) == 0:
        return math.exp(-_check_scalar_km(d_km) / GEOSCORE_SCALE_KM)
    return np.exp(-np.asarray(d_km, dtype=np.float64) / GEOSCORE_SCALE_KM)


def globe_accuracy_from_matches(country_ok: bool, city_ok: bool, alpha: float = GLOBE_ALPHA) -> float:
    r"""GLOBE's accuracy reward (arXiv 2506.14674):

    .. math:: R_{geo} = \mathbb{1}[\text{country ok}]\cdot(\alpha\,\mathbb{1}[\text{city ok}] + 1 - \alpha)

    With α = 0.8: 1 (country and city), 0.2 (country only), 0 (wrong country, whatever
    the city: a right city name in a wrong country is not credited).

    >>> [globe_accuracy_from_matches(c, t) for c, t in [(True, True), (True, False), (False, True)]]
    [1.0, 0.2, 0.0]
    """
    _check_unit("alpha", alpha)
    # Rounded so that 1 − 0.8 reads 0.2, not 0.19999999999999996, in logs and tables.
    return round(float(country_ok) * (alpha * float(city_ok) + 1.0 - alpha), 12)


def hierarchy_from_matches(
    matches: Mapping[str, bool | None], weights: Mapping[str, float] = HIERARCHY_WEIGHTS
) -> float | None:
    r"""Weighted share of hierarchy levels matched, normalised over the levels that can be scored.

    .. math:: R_{hier} = \frac{\sum_{l \in L} w_l\,\mathbb{1}[\text{level } l \text{ ok}]}{\sum_{l \in L} w_l}

    where ``L`` holds the levels whose match is known (``True``/``False``); a level given as
    ``None`` (no ground truth for it) leaves both sums. No scorable level gives ``None``.

    >>> hierarchy_from_matches({"continent": True, "country": True, "admin1": False, "city": False})
    0.4
    >>> hierarchy_from_matches({"continent": True, "country": True, "admin1": None, "city": True})
    1.0
    >>> hierarchy_from_matches({"continent": None, "country": None}) is None
    True
    """
    num = den = 0.0
    for level, ok in matches.items():
        if ok is None:
            continue
        w = weights.get(level, 0.0)
        num += w * float(ok)
        den += w
    if den <= 0.0:
        return None
    return min(1.0, max(0.0, num / den))


def locatability_from_logprobs(
    top_logprobs: Mapping[str, float] | Iterable[tuple[str, float]],
    yes_tokens: Iterable[str] = GLOBE_YES_TOKENS,
    no_tokens: Iterable[str] = GLOBE_NO_TOKENS,
) -> float:
    r"""GLOBE's locatability reward from a judge's next-token log-probabilities:

    .. math:: R_{loc} = \frac{P(\text{yes})}{P(\text{yes}) + P(\text{no})}

    ``P(yes)`` sums ``exp(logprob)`` over the tokens that read as yes (``yes_tokens``,
    compared after stripping surrounding whitespace, so ``" yes"`` counts), likewise
    ``P(no)``. When neither appears among the top log-probs the judge gave no answer:
    :class:`JudgeError` is raised (GLOBE's plugin divides by ``+1e-19`` and scores that 0).

    >>> import math
    >>> round(locatability_from_logprobs({"yes": math.log(0.6), "no": math.log(0.2), "maybe": -1.0}), 6)
    0.75
    >>> locatability_from_logprobs([(" Yes", 0.0)])
    1.0
    """
    yes, no = set(yes_tokens), set(no_tokens)
    items = top_logprobs.items() if isinstance(top_logprobs, Mapping) else top_logprobs
    p_yes = p_no = 0.0
    for token, logprob in items:
        lp = float(logprob)
        if not math.isfinite(lp) and lp != -math.inf:
            raise JudgeError(f"judge returned a non-finite log-probability {logprob!r} for token {token!r}")
        tok = str(token).strip()
        if tok in yes:
            p_yes += math.exp(min(lp, 0.0))
        elif tok in no:
            p_no += math.exp(min(lp, 0.0))
    if p_yes + p_no <= 0.0:
        raise JudgeError("no yes/no token among the judge's top log-probabilities")
    return p_yes / (p_yes + p_no)


def _check_scalar_km(d_km: object) -> float:
    d = float(d_km)  # type: ignore[arg-type]
    if math.isnan(d) or d < 0.0:
        raise ValueError(f"distance must be a non-negative number of km, got {d_km!r}")
    return d


def _check_unit(name: str, value: float) -> None:
    if not (0.0 <= float(value) <= 1.0):
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
