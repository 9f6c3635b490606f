r"""Self-consistency for geolocation: sample several reasoning chains, agree on one place.

Neither Geo-R nor GLOBE uses test-time compute: each answers once, greedily, with no
confidence. Here K sampled answers to the same photo are reduced to one, and their
spread becomes a confidence:

- ``medoid``: the sampled answer with the least summed haversine distance to the
  others. Robust to outliers, and always a real answer with its own reasoning chain.
- ``geomedian``: the spherical geometric median of the answers' points (Weiszfeld's
  iteration on 3-D unit vectors, projected back to the sphere). Its point need not be
  any sample's; the chain reported is that of the sample nearest to it.
- ``vote``: hierarchical majority — the country most samples name, then within it the
  most named admin1, then city — and the medoid of the answers that agree with every
  voted level. Names are compared by :mod:`georeason.match` (aliases, ISO codes).

Every answer is placed by :func:`georeason.match.place_answer` (its coordinates, else its
names), so GLOBE's name-only answers take part too. Answers that place nowhere are
counted (``n_samples`` vs ``n_located``), never used.

Confidence, per photo (shares are over all ``n_samples``, so a model that often fails
to answer is less sure): ``agreement_25km`` — the share of samples within 25 km of the
chosen point; ``country_agreement`` — the share whose country (the one named, else the one the
point lies in) is the chosen answer's;
``radius_km`` — the median distance of the located samples to the chosen point.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from georeason.geo import admin1_key, haversine_km, normalize_name, reverse_geocode_batch
from georeason.match import country_code_named, place_answer
from georeason.types import Prediction

__all__ = ["AGGREGATORS", "AGREEMENT_KM", "Consensus", "aggregate", "geometric_median"]

AGGREGATORS = ("medoid", "geomedian", "vote")
"""The ways to reduce K sampled answers to one."""

AGREEMENT_KM = 25.0
"""Samples within this distance of the chosen point agree with it (IM2GPS's city scale)."""


@dataclass(slots=True)
class Consensus:
    r"""The answer K samples agree on, and how much they agree.

    ``index`` is the sample whose answer (and reasoning chain) is reported, None when no
    sample placed anywhere; ``lat``/``lon`` the chosen point (the geometric median's own
    point for ``geomedian``, else the chosen sample's).
    """

    method: str
    n_samples: int
    n_located: int
    index: int | None = None
    lat: float | None = None
    lon: float | None = None
    agreement_25km: float | None = None
    country_agreement: float | None = None
    radius_km: float | None = None
    sample_points: list[tuple[float, float] | None] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "n_samples": self.n_samples,
            "n_located": self.n_located,
            "index": self.index,
            "lat": self.lat,
            "lon": self.lon,
            "agreement_25km": self.agreement_25km,
            "country_agreement": self.country_agreement,
            "radius_km": self.radius_km,
        }


def _unit(lat: NDArray[np.float64], lon: NDArray[np.float64]) -> NDArray[np.float64]:
    la, lo = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def geometric_median(
    lat: ArrayLike, lon: ArrayLike, *, iters: int = 200, tol_km: float = 1e-3
) -> tuple[float, float]:
    r"""Spherical geometric median of points: the point minimising the summed distance to them.

    Weiszfeld's iteration on the sphere (Fletcher, Venkatasubramanian & Joshi 2009): at
    the current point y, each point's tangent vector log_y(x) is weighted by the inverse of
    its great-circle distance, and y moves along the weighted mean by the exponential map.
    A step landing on a data point stops there when no direction improves (the iteration
    is undefined at a data point). Points spread over a hemisphere or more may have
    several minimisers: the result is then one of them.

    >>> [round(v, 3) for v in geometric_median([10.0, 10.0, 10.0, 50.0], [20.0, 20.0, 20.0, -100.0])]
    [10.0, 20.0]
    """
    la, lo = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    if la.size == 0:
        raise ValueError("geometric_median needs at least one point")
    x = _unit(la, lo)
    y = x.mean(axis=0)
    norm = np.linalg.norm(y)
    y = x[0] if norm < 1e-12 else y / norm
    tol = tol_km / 6371.0
    for _ in range(iters):
        cos = np.clip(x @ y, -1.0, 1.0)
        theta = np.arccos(cos)  # great-circle distances (radians)
        far = theta > 1e-12
        if not far.any():
            break
        # log map: tangent vectors at y pointing to each x, of length theta
        t = x[far] - cos[far, None] * y
        t *= (theta[far] / np.maximum(np.linalg.norm(t, axis=1), 1e-300))[:, None]
        w = 1.0 / theta[far]
        step = (w[:, None] * t).sum(axis=0) / w.sum()
        if (~far).any() and np.linalg.norm((w[:, None] * t).sum(axis=0)) <= (~far).sum():
            break  # sitting on a data point that is already optimal
        length = float(np.linalg.norm(step))
        if length < tol:
            break
        y = np.cos(length) * y + np.sin(length) * step / length  # exponential map
        y /= np.linalg.norm(y)
    return float(np.degrees(np.arcsin(np.clip(y[2], -1.0, 1.0)))), float(np.degrees(np.arctan2(y[1], y[0])))


def _medoid(lat: NDArray[np.float64], lon: NDArray[np.float64]) -> int:
    d = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    return int(np.argmin(np.asarray(d).sum(axis=1)))  # ties: the earliest sample


def _majority(keys: Sequence[str | None]) -> str | None:
    """The most frequent non-empty key; ties go to the one named first."""
    counts = Counter(k for k in keys if k)
    if not counts:
        return None
    best = max(counts.values())
    return next(k for k in keys if k and counts[k] == best)


def _vote(preds: Sequence[Prediction], located: list[int]) -> list[int]:
    """Indices (among ``located``) of the answers agreeing with the hierarchical majority."""
    group = located
    country = _majority([country_code_named(preds[i]) for i in group])
    if country is None:
        return group
    group = [i for i in group if country_code_named(preds[i]) == country]
    for level, key in (("admin1", admin1_key), ("city", normalize_name)):
        names = [key(str(getattr(preds[i], level))) if getattr(preds[i], level) else None for i in group]
        winner = _majority(names)
        if winner is not None:
            group = [i for i, name in zip(group, names, strict=True) if name == winner]
    return group


def aggregate(
    preds: Sequence[Prediction], method: str = "medoid", *, geocode_names: bool = True
) -> Consensus:
    r"""Reduce K parsed sampled answers to one, with the samples' agreement as confidence.

    ``geocode_names=False`` uses only the coordinates answers state (as the evaluation
    does for protocols whose answers carry coordinates); names still vote.

    >>> from georeason.types import Prediction
    >>> samples = [Prediction(country="France", lat=48.85, lon=2.35), Prediction(country="France", lat=48.9, lon=2.3),
    ...            Prediction(country="Spain", lat=40.4, lon=-3.7), Prediction()]
    >>> c = aggregate(samples, "medoid")
    >>> c.index, c.n_located, c.agreement_25km, c.country_agreement
    (0, 3, 0.5, 0.5)
    """
    if method not in AGGREGATORS:
        raise ValueError(f"unknown aggregation {method!r}; choose one of {', '.join(AGGREGATORS)}")
    points = [place_answer(p) if geocode_names or p.has_coordinates else None for p in preds]
    sample_points = [(pl.lat, pl.lon) if pl is not None else None for pl in points]
    located = [i for i, pl in enumerate(points) if pl is not None]
    out = Consensus(method=method, n_samples=len(preds), n_located=len(located), sample_points=sample_points)
    if not located:
        return out
    lat = np.array([sample_points[i][0] for i in located])  # type: ignore[index]
    lon = np.array([sample_points[i][1] for i in located])  # type: ignore[index]
    if method == "medoid":
        out.index = located[_medoid(lat, lon)]
        out.lat, out.lon = sample_points[out.index]  # type: ignore[misc]
    elif method == "geomedian":
        out.lat, out.lon = geometric_median(lat, lon)
        near = np.asarray(haversine_km(lat, lon, out.lat, out.lon))
        out.index = located[int(np.argmin(near))]
    else:
        agree = _vote(preds, located)
        pos = [located.index(i) for i in agree]
        out.index = agree[_medoid(lat[pos], lon[pos])]
        out.lat, out.lon = sample_points[out.index]  # type: ignore[misc]
    d = np.asarray(haversine_km(lat, lon, out.lat, out.lon))
    out.agreement_25km = float((d <= AGREEMENT_KM).sum() / len(preds))
    out.radius_km = float(np.median(d))
    countries = _countries(preds, sample_points)
    chosen = countries[out.index]
    out.country_agreement = float(sum(1 for c in countries if c == chosen) / len(preds)) if chosen else None
    return out


def _countries(preds: Sequence[Prediction], points: Sequence[tuple[float, float] | None]) -> list[str | None]:
    """Each sample's country: the one it names, else the one its point lies in."""
    out = [country_code_named(p) for p in preds]
    todo = [i for i, c in enumerate(out) if c is None and points[i] is not None]
    if todo:
        table = reverse_geocode_batch([points[i][0] for i in todo], [points[i][1] for i in todo])  # type: ignore[index]
        for j, i in enumerate(todo):
            out[i] = str(table.country_code[j]) or None if table.valid[j] else None
    return out
