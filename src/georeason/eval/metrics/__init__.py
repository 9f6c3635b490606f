"""Geolocation metrics: accuracy at distance thresholds, median / mean error,
GeoScore, bootstrap confidence intervals, per-continent breakdown and
hierarchy (continent / country / admin1 / city) accuracy.

Imports without torch (numpy + pandas only). All distances come from
:func:`georeason.geo.haversine_km`, the one distance function of the project.

Conventions (also written into every result's ``to_dict()["conventions"]``):

* **Rows.** A row whose *true* coordinates are NaN, infinite or out of range
  (|lat| > 90, |lon| > 180) cannot be scored: it is excluded and counted in
  ``n_invalid_truth``. Every other row is *scored*; ``n`` counts them.
* **Missing predictions.** A predicted coordinate that is NaN, infinite or out
  of range is *missing*: it is a miss at every threshold, scores 0 GeoScore,
  and is counted in ``n_missing`` (``n_out_of_range_pred`` says how many of them
  were numbers outside the valid range rather than absent).
* **Accuracy at t km** = #(d <= t) / n, so missing predictions lower it
  (IM2GPS protocol: 1 / 25 / 200 / 750 / 2500 km = street / city / region /
  country / continent).
* **Median and mean error** are over the predictions made (``n_predicted``
  rows), *not* over all rows; read them together with ``n_missing``. (Counting
  a missing prediction as some worst-case distance would make the median depend
  on an arbitrary constant; we report coverage instead.)
* **GeoScore** (PIGEON, Haas et al., CVPR 2024, the GeoGuessr score):
  ``mean_i 5000 * exp(-d_i / 1492.7)`` over all n rows, a missing prediction
  scoring 0.
* **Confidence intervals**: percentile bootstrap over rows (resampling n rows
  with replacement), ``n_bootstrap`` replicates, seeded; see
  :func:`bootstrap_replicates` for how it stays exact yet fast on millions of rows.
  Per-group intervals resample within the group.

Modules by role: :mod:`.results` (definitions, result types), :mod:`.bootstrap` (intervals),
:mod:`.hierarchy` (named places); this module checks the input and puts them together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from georeason.eval.metrics.bootstrap import group_rng, summarise
from georeason.eval.metrics.hierarchy import (
    continent_label,
    country_codes,
    hierarchy_accuracy,
    labels_to_frame,
    true_continents,
)
from georeason.eval.metrics.results import (
    DEFAULT_BINS,
    DEFAULT_N_BOOTSTRAP,
    DEFAULT_THRESHOLDS_KM,
    GEOSCORE_MAX,
    HIERARCHY_LEVELS,
    Estimate,
    GeoMetrics,
    LevelAccuracy,
    Summary,
    geoscore,
    valid_coordinates,
)
from georeason.geo import haversine_km
from georeason.geo.distance import GEOSCORE_SCALE_KM
from georeason.types import CONTINENT_NAMES


def _as_float_array(x: ArrayLike, name: str) -> NDArray[np.float64]:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"{name} must be numbers (NaN for no prediction); could not convert: {e}. "
            "Parse text first, e.g. pandas.to_numeric(col, errors='coerce')."
        ) from e
    if a.ndim != 1:
        a = a.reshape(-1) if a.ndim == 0 else a
        if a.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    return a


def compute_metrics(
    true_lat: ArrayLike,
    true_lon: ArrayLike,
    pred_lat: ArrayLike,
    pred_lon: ArrayLike,
    *,
    thresholds_km: Sequence[float] = DEFAULT_THRESHOLDS_KM,
    n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
    confidence: float = 0.95,
    seed: int = 0,
    continents: ArrayLike | None = None,
    per_continent: bool = True,
    per_continent_ci: bool = True,
    true_labels: Mapping[str, ArrayLike] | pd.DataFrame | None = None,
    pred_labels: Mapping[str, ArrayLike] | pd.DataFrame | None = None,
    bins: int = DEFAULT_BINS,
) -> GeoMetrics:
    """Score predicted coordinates against true ones.

    Args:
        true_lat, true_lon, pred_lat, pred_lon: equal-length 1-D arrays in
            decimal degrees. NaN (or inf / out of range) in a prediction means
            "no prediction": a miss that is counted in ``n_missing``. Rows with
            unusable truth are excluded and counted in ``n_invalid_truth``.
        thresholds_km: accuracy thresholds; a hit is ``d <= t``.
        n_bootstrap: bootstrap replicates for the confidence intervals (0: none).
        confidence: interval coverage, e.g. 0.95 -> 2.5th / 97.5th percentiles.
        seed: seeds the bootstrap; same seed, same intervals.
        continents: continent of each row's TRUE location (codes like "EU" or
            names like "Europe"). If None and ``per_continent``, they come from
            ``true_labels`` (its continent, else its country's continent), else
            from ``georeason.geo.reverse_geocode_batch(true_lat, true_lon)``.
        per_continent: compute the per-continent breakdown.
        per_continent_ci: bootstrap intervals per continent too (resampling
            within the continent).
        true_labels, pred_labels: optional place labels for hierarchy accuracy
            (computed when both are given): a DataFrame or mapping with any of
            ``continent``, ``country_code``, ``country``, ``admin1``, ``city``;
            blank / None = no label. ``true_labels`` alone still supplies the
            continents of the per-continent breakdown.
        bins: resolution of the fast bootstrap (see :func:`bootstrap_replicates`); with
            n <= bins the bootstrap is the classic one.

    Returns:
        :class:`GeoMetrics`.

    Raises:
        ValueError: arrays of different lengths or not numeric, bad thresholds
            or options, or no row with valid true coordinates.

    >>> m = compute_metrics([0, 0], [0, 0], [0, float("nan")], [0.1, float("nan")],
    ...                     n_bootstrap=0, per_continent=False)
    >>> m.accuracy[25.0], m.n_missing, round(m.median_km, 2), round(m.geoscore, 1)
    (0.5, 1, 11.12, 2481.4)
    """
    tla = _as_float_array(true_lat, "true_lat")
    tlo = _as_float_array(true_lon, "true_lon")
    pla = _as_float_array(pred_lat, "pred_lat")
    plo = _as_float_array(pred_lon, "pred_lon")
    n_total = tla.size
    if not (tlo.size == pla.size == plo.size == n_total):
        raise ValueError(
            f"coordinate arrays differ in length: true_lat {tla.size}, true_lon {tlo.size}, "
            f"pred_lat {pla.size}, pred_lon {plo.size}"
        )
    thresholds = tuple(float(t) for t in thresholds_km)
    if not thresholds or any(not math.isfinite(t) or t < 0 for t in thresholds):
        raise ValueError(f"thresholds_km must be non-empty, finite and >= 0, got {list(thresholds_km)}")
    if len(set(thresholds)) != len(thresholds):
        raise ValueError(f"thresholds_km has duplicates: {list(thresholds_km)}")
    thresholds = tuple(sorted(thresholds))
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be >= 0, got {n_bootstrap}")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")

    keep = valid_coordinates(tla, tlo)
    n_invalid_truth = int(n_total - keep.sum())
    if not keep.any():
        raise ValueError(
            f"no row has valid true coordinates ({n_total} rows; need finite |lat| <= 90, |lon| <= 180)"
        )
    tla, tlo, pla, plo = tla[keep], tlo[keep], pla[keep], plo[keep]
    pred_ok = valid_coordinates(pla, plo)
    # Out of range but numeric: a model answered with an impossible coordinate.
    out_of_range = ~pred_ok & np.isfinite(pla) & np.isfinite(plo)
    pla = np.where(pred_ok, pla, np.nan)
    plo = np.where(pred_ok, plo, np.nan)
    d = haversine_km(tla, tlo, pla, plo)  # NaN where no prediction

    rng = np.random.default_rng(seed) if n_bootstrap > 0 else None
    overall = summarise(d, int(out_of_range.sum()), thresholds, n_bootstrap, confidence, rng, bins)

    per: dict[str, Summary] = {}
    source: str | None = None
    if per_continent:
        from_labels = (
            true_continents(labels_to_frame(true_labels, n_total, "true_labels"))
            if continents is None and true_labels is not None
            else None
        )
        if continents is not None:
            raw = np.asarray(continents, dtype=object).reshape(-1)
            if raw.size != n_total:
                raise ValueError(f"continents has {raw.size} rows, the coordinates have {n_total}")
            raw = raw[keep]
            source = "labels"
        elif from_labels is not None:  # the truth's own continent / country labels
            raw = from_labels[keep]
            source = "labels"
        else:
            from georeason.geo import reverse_geocode_batch

            raw = np.asarray(reverse_geocode_batch(tla, tlo).continent, dtype=object)
            source = "reverse_geocode"
        # Normalise each distinct label once: a million rows hold a handful of labels.
        # (factorize on the numpy object array: a pandas Series would first convert
        # a million strings to an Arrow string column.)
        idx, uniq = pd.factorize(raw, use_na_sentinel=False)
        codes: list[str] = []
        lut = np.empty(len(uniq), dtype=np.int64)
        for j, u in enumerate(uniq):
            code = continent_label(u) or "unknown"  # "" = the geocoder could not place it
            if code not in codes:
                codes.append(code)
            lut[j] = codes.index(code)
        group = lut[idx]
        for gi in sorted(range(len(codes)), key=lambda i: (codes[i] not in CONTINENT_NAMES, codes[i])):
            sel = group == gi
            code = codes[gi]
            grng = group_rng(seed, code) if (per_continent_ci and n_bootstrap > 0) else None
            per[code] = summarise(
                d[sel], int(out_of_range[sel].sum()), thresholds, n_bootstrap, confidence, grng, bins
            )

    hier: dict[str, LevelAccuracy] = {}
    if pred_labels is not None and true_labels is None:
        raise ValueError("pred_labels need true_labels to compare with (hierarchy accuracy)")
    if true_labels is not None and pred_labels is not None:
        t_df = labels_to_frame(true_labels, n_total, "true_labels")
        p_df = labels_to_frame(pred_labels, n_total, "pred_labels")
        hier = hierarchy_accuracy(t_df, p_df, keep, n_bootstrap, confidence, seed)

    return GeoMetrics(
        overall=overall,
        n_total=n_total,
        n_invalid_truth=n_invalid_truth,
        thresholds_km=thresholds,
        per_continent=per,
        hierarchy=hier,
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        seed=seed,
        continent_source=source,
    )


def confidence_curves(
    distance_km: ArrayLike, confidence: ArrayLike, *, threshold_km: float = 25.0, bins: int = 10
) -> dict[str, Any]:
    """How accuracy follows a per-image confidence: by confidence bin and by coverage.

    ``deciles``: the images sorted by confidence (ties keep their order) and cut into
    ``bins`` equal groups (least to most confident), each with its mean confidence and
    acc@``threshold_km`` — a calibrated confidence lies on the diagonal. ``coverage``: acc@``threshold_km`` over the
    most confident X % of images, X = 10, 20, … 100 — what answering only when sure buys.
    Images without a prediction count as misses; without a confidence, as the least sure.

    >>> c = confidence_curves([5, 10, 900, 1000], [1.0, 0.75, 0.5, 0.25], bins=2)
    >>> [(b["confidence"], b["accuracy"]) for b in c["deciles"]], c["coverage"][4]
    ([(0.375, 0.0), (0.875, 1.0)], {'coverage': 0.5, 'n': 2, 'accuracy': 1.0})
    """
    d = np.asarray(distance_km, dtype=np.float64).reshape(-1)
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
    if d.shape != conf.shape:
        raise ValueError(f"distance_km has {d.size} values, confidence {conf.size}")
    hit = np.nan_to_num(d, nan=np.inf) <= threshold_km
    order = np.argsort(-np.nan_to_num(conf, nan=-np.inf), kind="stable")
    deciles = []
    for part in np.array_split(order, min(bins, len(order))) if len(order) else []:
        c = conf[part]
        deciles.append(
            {
                "n": len(part),
                "confidence": float(np.nanmean(c)) if np.isfinite(c).any() else None,
                "accuracy": float(hit[part].mean()),
            }
        )
    coverage = []
    for k in range(1, 11):
        n = math.ceil(len(order) * k / 10)
        top = order[:n]
        coverage.append({"coverage": k / 10, "n": int(n), "accuracy": float(hit[top].mean()) if n else None})
    return {"threshold_km": float(threshold_km), "deciles": deciles[::-1], "coverage": coverage}


__all__ = [
    "DEFAULT_N_BOOTSTRAP",
    "DEFAULT_THRESHOLDS_KM",
    "GEOSCORE_MAX",
    "GEOSCORE_SCALE_KM",
    "HIERARCHY_LEVELS",
    "Estimate",
    "GeoMetrics",
    "LevelAccuracy",
    "Summary",
    "compute_metrics",
    "confidence_curves",
    "country_codes",
    "geoscore",
    "true_continents",
    "valid_coordinates",
]
