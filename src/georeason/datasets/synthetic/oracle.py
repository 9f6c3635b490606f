"""Ceilings: what an ideal reader of the clues could score (:func:`oracle_predict`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from georeason.datasets.synthetic.clues import TINT_SPAN, Clues, decode_tint
from georeason.datasets.synthetic.world import KM_PER_DEG, SyntheticWorld, WorldPlace


def _medoid(places: list[WorldPlace]) -> WorldPlace:
    """The place minimising the summed distance to the others (the best single known answer)."""
    from georeason.geo import haversine_km

    lat = np.array([p.lat for p in places])
    lon = np.array([p.lon for p in places])
    d = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    return places[int(np.argmin(d.sum(axis=1)))]


@dataclass(frozen=True)
class OraclePrediction:
    lat: float
    lon: float
    country_code: str
    admin1: str
    city: str


ORACLE_MODES = ("namer", "centre", "snap", "reader")


def oracle_predict(world: SyntheticWorld, clues: Clues, mode: str = "reader") -> OraclePrediction:
    """What an ideal reader of the legible clues answers, knowing only the TRAINING places.

    It keeps the training cities consistent with the legible clues (continent
    palette, then banner, sign, landmark; a clue that matches no training city
    belongs to a place never seen in training — a held-out city's landmark — and
    is ignored). Then, by ``mode``:

    - ``"namer"``: the medoid of the candidates (the seen city with the least
      summed distance to the others): the best answer that ignores the road
      tint and copies a training target (a seen city and its coordinates);
    - ``"centre"``: the geometric median of the candidates' coordinates (names
      of their medoid): the answer that minimises the summed distance to the
      seen cities without the tint, usually a point no city stands on. It is
      what a distance reward favours when the tint is not read, and what
      imitating training answers (always a city's coordinates) cannot give;
    - ``"snap"``: if the country is certain and the tint legible, the candidate
      city nearest to the position the tint encodes: still a seen city, but
      chosen with the continuous clue; otherwise as ``namer``;
    - ``"reader"``: if the country is certain and the tint legible, the
      position the tint encodes (error: colour quantisation only, a few km),
      pulled within ``jitter_km`` of the city when the landmark names a seen
      city; otherwise as ``namer``. This is the ceiling.

    Clue-less images get the medoid of all training cities (in every mode).
    """
    if mode not in ORACLE_MODES:
        raise ValueError(f"mode must be one of {ORACLE_MODES}, got {mode!r}")
    known = world.split_places("train")
    if not clues.locatable:
        m = _medoid(known)
        return OraclePrediction(m.lat, m.lon, m.country_code, m.admin1, m.city)
    p = world.places[clues.place]
    cand = [q for q in known if q.continent == p.continent]
    for attr, legible in (("banner", clues.banner), ("sign", clues.sign), ("glyph", clues.landmark)):
        if legible:
            narrowed = [q for q in cand if getattr(q, attr) == getattr(p, attr)]
            cand = narrowed or cand  # no match: a clue of a place never seen in training
    countries = {q.country_code for q in cand}
    if mode in ("snap", "reader") and clues.tint and clues.tint_level is not None and len(countries) == 1:
        from georeason.geo import haversine_km

        cc = next(iter(countries))
        lat, lon = decode_tint(world, cc, clues.tint_level)
        d = haversine_km(lat, lon, np.array([q.lat for q in cand]), np.array([q.lon for q in cand]))
        near = cand[int(np.argmin(d))]
        if mode == "snap":
            return OraclePrediction(near.lat, near.lon, cc, near.admin1, near.city)
        lat0, lat1, lon0, lon1 = world.tint_boxes[cc]
        half_cell_km = (
            0.5
            * KM_PER_DEG
            * math.hypot((lat1 - lat0) / TINT_SPAN, (lon1 - lon0) / TINT_SPAN * math.cos(math.radians(lat)))
        )
        if len(cand) == 1 and world.jitter_km < d[0] <= world.jitter_km + half_cell_km + 1.0:
            # the landmark names a seen city and the tint agrees with it: the photo lies within
            # jitter_km of that city, so pull the decoded point onto its disk (the tint cell can
            # be wider). A tint that disagrees means the landmark match was a coincidence (a
            # glyph reused by another city): trust the tint.
            f = world.jitter_km / float(d[0])
            lat, lon = near.lat + f * (lat - near.lat), near.lon + f * (lon - near.lon)
        return OraclePrediction(lat, lon, cc, near.admin1, near.city)
    m = _medoid(cand)
    if mode == "centre":
        lat, lon = _geometric_median(cand)
        return OraclePrediction(lat, lon, m.country_code, m.admin1, m.city)
    return OraclePrediction(m.lat, m.lon, m.country_code, m.admin1, m.city)


def _geometric_median(places: list[WorldPlace], iters: int = 100) -> tuple[float, float]:
    """The point minimising the summed haversine distance to ``places`` (Weiszfeld's
    iteration on lat/lon; candidates share a country or continent, so no antimeridian)."""
    from georeason.geo import haversine_km

    pts = np.array([(p.lat, p.lon) for p in places])
    x = pts.mean(axis=0)
    for _ in range(iters):
        w = 1.0 / np.maximum(haversine_km(x[0], x[1], pts[:, 0], pts[:, 1]), 1e-6)
        x = (pts * w[:, None]).sum(axis=0) / w.sum()
    return float(x[0]), float(x[1])


ACC_THRESHOLDS_KM = (1.0, 25.0, 200.0, 750.0, 2500.0)


def ceiling_report(world: SyntheticWorld, clues: Sequence[Clues], mode: str = "reader") -> dict[str, float]:
    """acc@km, median km, country/admin1/city accuracy of :func:`oracle_predict` on ``clues``."""
    from georeason.geo import haversine_km

    if not clues:
        return {}
    preds = [oracle_predict(world, c, mode) for c in clues]
    truth = [world.places[c.place] for c in clues]
    d = haversine_km(
        np.array([c.lat for c in clues]),
        np.array([c.lon for c in clues]),
        np.array([q.lat for q in preds]),
        np.array([q.lon for q in preds]),
    )
    out: dict[str, float] = {f"acc@{t:g}km": float(np.mean(d <= t)) for t in ACC_THRESHOLDS_KM}
    out["median_km"] = float(np.median(d))
    out["country_acc"] = float(
        np.mean([q.country_code == t.country_code for q, t in zip(preds, truth, strict=True)])
    )
    out["admin1_acc"] = float(
        np.mean(
            [
                (q.country_code, q.admin1) == (t.country_code, t.admin1)
                for q, t in zip(preds, truth, strict=True)
            ]
        )
    )
    out["city_acc"] = float(np.mean([q.city == t.city for q, t in zip(preds, truth, strict=True)]))
    return out
