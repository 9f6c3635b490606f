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
  :func:`_bootstrap` for how it stays exact yet fast on millions of rows.
  Per-group intervals resample within the group.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from georeason.geo import haversine_km
from georeason.geo.distance import GEOSCORE_SCALE_KM
from georeason.types import CONTINENT_NAMES, PLACE_LEVELS

DEFAULT_THRESHOLDS_KM: tuple[float, ...] = (1.0, 25.0, 200.0, 750.0, 2500.0)
"""IM2GPS thresholds: street, city, region, country, continent."""

GEOSCORE_MAX = 5000.0
"""PIGEON's GeoScore: 5000 * exp(-d / 1492.7) (Haas et al., CVPR 2024)."""

DEFAULT_N_BOOTSTRAP = 1000
DEFAULT_BINS = 256
HIERARCHY_LEVELS: tuple[str, ...] = ("continent", "country", "admin1", "city")

_CONVENTIONS = {
    "accuracy": "acc@t = #(distance <= t km) / n over all scored rows; a missing prediction is a miss",
    "median_km": "median haversine distance over the predictions made (n_predicted rows); see n_missing",
    "mean_km": "mean haversine distance over the predictions made (n_predicted rows); see n_missing",
    "geoscore": "mean of 5000*exp(-d/1492.7) over all scored rows (PIGEON); a missing prediction scores 0",
    "missing": "predicted lat/lon NaN, infinite, unparseable or out of range",
    "invalid_truth": "rows with NaN/infinite/out-of-range true coordinates are excluded (n_invalid_truth)",
    "distance": "haversine, mean Earth radius 6371.0088 km",
    "ci": "percentile bootstrap over rows (per group: within the group), seeded",
    "hierarchy": (
        "georeason.match.judge, the rule the rewards use: continent stated or implied by the country; "
        "country by ISO code through aliases; admin1/city by gazetteer names inside the true country, "
        "wrong under a named, wrong country; a missing predicted label is a miss; rows without a "
        "true label are not counted"
    ),
}


# --------------------------------------------------------------------------- result types


def _json_float(x: float | None) -> float | None:
    """NaN/inf are not JSON: write them as null."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate with an optional percentile-bootstrap interval."""

    value: float
    ci_low: float | None = None
    ci_high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"value": _json_float(self.value)}
        if self.ci_low is not None or self.ci_high is not None:
            d["ci"] = [_json_float(self.ci_low), _json_float(self.ci_high)]
        return d


@dataclass(slots=True)
class Summary:
    """Distance metrics of one set of rows (all rows, or one continent)."""

    n: int
    """Scored rows (valid true coordinates)."""
    n_missing: int
    """Scored rows without a usable prediction (a miss at every threshold)."""
    n_out_of_range_pred: int
    """Of ``n_missing``: predictions that were numbers outside |lat| <= 90, |lon| <= 180."""
    accuracy: dict[float, Estimate]
    """Threshold in km -> share of the n rows within it."""
    median_km: Estimate
    """Over the ``n_predicted`` predictions made."""
    mean_km: Estimate
    """Over the ``n_predicted`` predictions made."""
    geoscore: Estimate
    """Over all n rows; missing scores 0."""

    @property
    def n_predicted(self) -> int:
        return self.n - self.n_missing

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "n_predicted": self.n_predicted,
            "n_missing": self.n_missing,
            "n_out_of_range_pred": self.n_out_of_range_pred,
            "accuracy": {_acc_key(t): e.to_dict() for t, e in self.accuracy.items()},
            "median_km": self.median_km.to_dict(),
            "mean_km": self.mean_km.to_dict(),
            "geoscore": self.geoscore.to_dict(),
        }


@dataclass(slots=True)
class LevelAccuracy:
    """Accuracy of one hierarchy level (continent, country, admin1 or city)."""

    n: int
    """Rows with a usable true label at this level."""
    correct: int
    n_missing: int
    """Of ``n``: rows without a predicted label (counted wrong)."""
    accuracy: Estimate

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "correct": self.correct,
            "n_missing": self.n_missing,
            "accuracy": self.accuracy.to_dict(),
        }


@dataclass(slots=True)
class GeoMetrics:
    """Everything :func:`compute_metrics` measured. ``to_dict()`` is JSON-safe."""

    overall: Summary
    n_total: int
    """Rows given, including those with invalid truth."""
    n_invalid_truth: int
    """Rows excluded because their true coordinates were NaN/inf/out of range."""
    thresholds_km: tuple[float, ...]
    per_continent: dict[str, Summary] = field(default_factory=dict)
    """Continent code (AF AN AS EU NA OC SA, or a given label) -> metrics of the rows whose TRUE location is there."""
    hierarchy: dict[str, LevelAccuracy] = field(default_factory=dict)
    n_bootstrap: int = DEFAULT_N_BOOTSTRAP
    confidence: float = 0.95
    seed: int = 0
    continent_source: str | None = None
    """"labels" (given), "reverse_geocode" (from the true coordinates) or None (no breakdown)."""

    # Convenience accessors for the headline numbers.
    @property
    def n(self) -> int:
        return self.overall.n

    @property
    def n_missing(self) -> int:
        return self.overall.n_missing

    @property
    def accuracy(self) -> dict[float, float]:
        return {t: e.value for t, e in self.overall.accuracy.items()}

    @property
    def median_km(self) -> float:
        return self.overall.median_km.value

    @property
    def mean_km(self) -> float:
        return self.overall.mean_km.value

    @property
    def geoscore(self) -> float:
        return self.overall.geoscore.value

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN -> null, threshold keys like ``"acc@25km"``)."""
        return {
            "n_total": self.n_total,
            "n_invalid_truth": self.n_invalid_truth,
            **self.overall.to_dict(),
            "thresholds_km": [float(t) for t in self.thresholds_km],
            "per_continent": {k: v.to_dict() for k, v in self.per_continent.items()},
            "continent_source": self.continent_source,
            "hierarchy": {k: v.to_dict() for k, v in self.hierarchy.items()},
            "bootstrap": {
                "n": self.n_bootstrap,
                "confidence": self.confidence,
                "seed": self.seed,
                "method": "percentile bootstrap over rows",
            },
            "conventions": dict(_CONVENTIONS),
        }

    def table(self, hierarchy: bool = True) -> list[list[str]]:
        """Headline metrics as printable rows; the first row is the header
        ``[metric, value, CI]``. ``hierarchy=False`` leaves out the hierarchy
        accuracies (see :meth:`hierarchy_table` for their detail)."""
        pct = f"{self.confidence * 100:g}"
        rows = [["metric", "value", f"{pct}% CI"]]
        o = self.overall
        for t, e in o.accuracy.items():
            rows.append([f"acc@{t:g}km", _fmt_pct(e.value), _fmt_ci(e, _fmt_pct)])
        rows.append(["median km (predicted)", _fmt_km(o.median_km.value), _fmt_ci(o.median_km, _fmt_km)])
        rows.append(["mean km (predicted)", _fmt_km(o.mean_km.value), _fmt_ci(o.mean_km, _fmt_km)])
        rows.append(["GeoScore", f"{o.geoscore.value:.1f}", _fmt_ci(o.geoscore, lambda v: f"{v:.1f}")])
        rows.append(["n scored", str(o.n), ""])
        rows.append(["missing predictions", str(o.n_missing), ""])
        if self.n_invalid_truth:
            rows.append(["excluded (bad truth)", str(self.n_invalid_truth), ""])
        for level, la in self.hierarchy.items() if hierarchy else ():
            rows.append([f"{level} accuracy", _fmt_pct(la.accuracy.value), _fmt_ci(la.accuracy, _fmt_pct)])
        return rows

    def continent_table(self) -> list[list[str]]:
        """Per-continent rows; the first row is the header (``1km`` = accuracy at 1 km)."""
        header = ["continent", "n", "miss", *[f"{t:g}km" for t in self.thresholds_km]]
        header += ["med. km", "GeoScore"]
        rows = [header]
        for code, s in self.per_continent.items():
            name = CONTINENT_NAMES.get(code, code)
            rows.append(
                [
                    name,
                    str(s.n),
                    str(s.n_missing),
                    *[_fmt_pct(e.value) for e in s.accuracy.values()],
                    _fmt_km(s.median_km.value),
                    f"{s.geoscore.value:.1f}",
                ]
            )
        return rows

    def hierarchy_table(self) -> list[list[str]]:
        """Hierarchy accuracy rows; the first row is the header."""
        pct = f"{self.confidence * 100:g}"
        rows = [["level", "accuracy", f"{pct}% CI", "correct", "n", "missing"]]
        for level, la in self.hierarchy.items():
            rows.append(
                [
                    level,
                    _fmt_pct(la.accuracy.value),
                    _fmt_ci(la.accuracy, _fmt_pct),
                    str(la.correct),
                    str(la.n),
                    str(la.n_missing),
                ]
            )
        return rows


def _acc_key(t: float) -> str:
    return f"acc@{t:g}km"


def _fmt_pct(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{100 * v:.1f}%"


def _fmt_km(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:,.1f}"


def _fmt_ci(e: Estimate, fmt: Any) -> str:
    if e.ci_low is None or e.ci_high is None:
        return ""
    return f"[{fmt(e.ci_low)}, {fmt(e.ci_high)}]"


# --------------------------------------------------------------------------- input checks


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


def valid_coordinates(lat: ArrayLike, lon: ArrayLike) -> NDArray[np.bool_]:
    """True where (lat, lon) is a usable coordinate: finite, |lat| <= 90, |lon| <= 180."""
    la = np.asarray(lat, dtype=np.float64)
    lo = np.asarray(lon, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(la) & np.isfinite(lo) & (np.abs(la) <= 90.0) & (np.abs(lo) <= 180.0)


def geoscore(distance_km: ArrayLike) -> NDArray[np.float64]:
    """Per-row GeoScore ``5000 * exp(-d / 1492.7)`` (PIGEON); NaN (no prediction) scores 0.

    >>> [round(float(s), 1) for s in geoscore([0.0, 1492.7, float("nan")])]
    [5000.0, 1839.4, 0.0]
    """
    d = np.asarray(distance_km, dtype=np.float64)
    s = GEOSCORE_MAX * np.exp(-d / GEOSCORE_SCALE_KM)
    return np.where(np.isnan(d), 0.0, s)


# --------------------------------------------------------------------------- the bootstrap


def _bootstrap(
    d_sorted: NDArray[np.float64],
    n_missing: int,
    thresholds: Sequence[float],
    n_bootstrap: int,
    rng: np.random.Generator,
    bins: int,
) -> dict[str, NDArray[np.float64]]:
    """Bootstrap replicates of accuracy@t, median, mean and GeoScore.

    Statistically this is the ordinary nonparametric bootstrap: each replicate
    draws n = len(d_sorted) + n_missing rows with replacement. Drawing n*B row
    indices is too slow for a million rows (1e9 draws), so each replicate is
    drawn in two exact stages:

    1. Cut the sorted distances into at most ``bins`` contiguous bins, with a
       bin edge at every threshold, plus one bin for the missing predictions.
       How many of the n draws land in each bin is exactly
       Multinomial(n, bin_size / n) -- one ``rng.multinomial`` call per replicate.
    2. Within a bin the draws are uniform over its rows, so
       * accuracy@t is exact from the counts (no bin straddles a threshold);
       * the median is exact: the r-th smallest of c uniform draws over a bin's
         m sorted rows is row floor(m * U) with U ~ Beta(r, c - r + 1) (order
         statistics of uniforms, mapped through a monotone step);
       * the sums behind GeoScore and the mean error have the exact conditional
         mean and variance, with a normal shape for the within-bin part. Bins
         are quantile bins, so that within-bin part is tiny.
    With n <= bins every bin is one row and the whole procedure *is* the
    classic bootstrap. Cost: O(n_bootstrap * bins) instead of O(n_bootstrap * n).
    """
    n_pred = int(d_sorted.size)
    n = n_pred + n_missing
    B = n_bootstrap
    out: dict[str, NDArray[np.float64]] = {}

    # Bin edges (positions in d_sorted): quantile cuts + threshold cuts.
    thr_pos = np.searchsorted(d_sorted, np.asarray(thresholds, dtype=np.float64), side="right")
    k_base = min(bins, n_pred)
    base = np.round(np.linspace(0, n_pred, k_base + 1)).astype(np.int64) if n_pred else np.zeros(1, np.int64)
    edges = np.unique(np.concatenate([base, thr_pos, [0, n_pred]]))
    starts = edges[:-1]
    sizes = np.diff(edges)
    K = sizes.size  # predicted bins (all non-empty)

    probs = np.append(sizes, n_missing).astype(np.float64) / n
    counts = rng.multinomial(n, probs, size=B)  # (B, K+1); last column = missing draws
    C = counts[:, :K]
    cum = np.cumsum(C, axis=1) if K else np.zeros((B, 0), dtype=np.int64)
    n_pred_rep = cum[:, -1] if K else np.zeros(B, dtype=np.int64)

    # Accuracy at each threshold: draws in the bins below the threshold's edge.
    bin_of_edge = {int(e): i for i, e in enumerate(edges)}
    for t, pos in zip(thresholds, thr_pos, strict=True):
        j = bin_of_edge[int(pos)]  # number of bins entirely <= t
        hits = cum[:, j - 1] if j > 0 else np.zeros(B, dtype=np.int64)
        out[_acc_key(t)] = hits / n

    if K == 0:
        out["median_km"] = np.full(B, np.nan)
        out["mean_km"] = np.full(B, np.nan)
        out["geoscore"] = np.zeros(B)
        return out

    # Per-bin sums and within-bin variances (population) of distance and score.
    s_sorted = geoscore(d_sorted)
    mean_d = np.add.reduceat(d_sorted, starts) / sizes
    mean_s = np.add.reduceat(s_sorted, starts) / sizes
    var_d = np.maximum(np.add.reduceat(d_sorted**2, starts) / sizes - mean_d**2, 0.0)
    var_s = np.maximum(np.add.reduceat(s_sorted**2, starts) / sizes - mean_s**2, 0.0)
    Cf = C.astype(np.float64)
    # A sum of normals is normal: one N(0,1) per replicate carries the within-bin part.
    sum_s = Cf @ mean_s + np.sqrt(Cf @ var_s) * rng.standard_normal(B)
    sum_d = Cf @ mean_d + np.sqrt(Cf @ var_d) * rng.standard_normal(B)
    out["geoscore"] = sum_s / n
    with np.errstate(invalid="ignore", divide="ignore"):
        out["mean_km"] = np.where(n_pred_rep > 0, sum_d / np.maximum(n_pred_rep, 1), np.nan)

    # Median over the predicted draws: ranks r_lo, r_hi (1-based; equal when odd).
    has = n_pred_rep > 0
    r_lo = (n_pred_rep + 1) // 2
    r_hi = n_pred_rep // 2 + 1
    rows = np.arange(B)

    def locate(r: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        k = np.minimum((cum < r[:, None]).sum(axis=1), K - 1)
        before = np.where(k > 0, cum[rows, np.maximum(k - 1, 0)], 0)
        return k, r - before, C[rows, k]  # bin, rank inside the bin's draws, draws in the bin

    k_lo, p_lo, c_lo = locate(r_lo)
    k_hi, p_hi, c_hi = locate(r_hi)
    a = np.where(has, p_lo, 1).astype(np.float64)
    b = np.where(has, c_lo - p_lo + 1, 1).astype(np.float64)
    u_lo = rng.beta(a, np.maximum(b, 1.0))
    same = (k_hi == k_lo) & (r_hi > r_lo)
    # Next order statistic in the same bin: the c - p draws above U_(p) are
    # uniform on (U_(p), 1), their minimum is U_(p) + (1 - U_(p)) * Beta(1, c - p).
    step = rng.beta(1.0, np.maximum(c_lo - p_lo, 1).astype(np.float64))
    u_hi_other = rng.beta(
        np.maximum(p_hi, 1).astype(np.float64), np.maximum(c_hi - p_hi + 1, 1).astype(np.float64)
    )
    u_hi = np.where(r_hi == r_lo, u_lo, np.where(same, u_lo + (1.0 - u_lo) * step, u_hi_other))

    def value(k: NDArray[np.int64], u: NDArray[np.float64]) -> NDArray[np.float64]:
        off = np.minimum((u * sizes[k]).astype(np.int64), sizes[k] - 1)
        return d_sorted[starts[k] + off]

    med = 0.5 * (value(k_lo, u_lo) + value(k_hi, u_hi))
    out["median_km"] = np.where(has, med, np.nan)
    return out


def _ci(reps: NDArray[np.float64], confidence: float) -> tuple[float | None, float | None]:
    finite = reps[np.isfinite(reps)]
    if finite.size == 0:
        return None, None
    alpha = 1.0 - confidence
    lo, hi = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _group_rng(seed: int, group: str) -> np.random.Generator:
    # Seed per group by name: a continent's interval does not depend on which
    # other continents are present or on their order.
    return np.random.default_rng([seed, zlib.crc32(group.encode("utf-8"))])


def _summarise(
    d: NDArray[np.float64],
    n_out_of_range: int,
    thresholds: Sequence[float],
    n_bootstrap: int,
    confidence: float,
    rng: np.random.Generator | None,
    bins: int,
) -> Summary:
    """Metrics of one group; ``d`` holds NaN for missing predictions."""
    n = int(d.size)
    missing = np.isnan(d)
    n_missing = int(missing.sum())
    d_pred = np.sort(d[~missing])
    n_pred = d_pred.size
    # Point estimates (exact, not from the bootstrap).
    hits = np.searchsorted(d_pred, np.asarray(thresholds, dtype=np.float64), side="right")
    acc_pt = {t: float(h) / n for t, h in zip(thresholds, hits, strict=True)}
    med_pt = float(np.median(d_pred)) if n_pred else float("nan")
    mean_pt = float(d_pred.mean()) if n_pred else float("nan")
    gs_pt = float(geoscore(d_pred).sum() / n)

    if rng is not None and n_bootstrap > 0:
        reps = _bootstrap(d_pred, n_missing, thresholds, n_bootstrap, rng, bins)

        def est(key: str, v: float) -> Estimate:
            lo, hi = _ci(reps[key], confidence)
            return Estimate(v, lo, hi)
    else:

        def est(key: str, v: float) -> Estimate:
            return Estimate(v)

    return Summary(
        n=n,
        n_missing=n_missing,
        n_out_of_range_pred=n_out_of_range,
        accuracy={t: est(_acc_key(t), acc_pt[t]) for t in thresholds},
        median_km=est("median_km", med_pt),
        mean_km=est("mean_km", mean_pt),
        geoscore=est("geoscore", gs_pt),
    )


# --------------------------------------------------------------------------- labels


_CONTINENT_BY_NAME = {v.lower(): k for k, v in CONTINENT_NAMES.items()}


def _continent_code(x: Any) -> str:
    """'EU' / 'eu' / 'Europe' -> 'EU'; unknown text is kept (stripped) as its own group; blank -> ''."""
    s = _clean_one(x)
    if not s:
        return ""
    if s.upper() in CONTINENT_NAMES:
        return s.upper()
    return _CONTINENT_BY_NAME.get(" ".join(s.lower().split()), s)


def _labels_to_frame(labels: Mapping[str, ArrayLike] | pd.DataFrame, n: int, name: str) -> pd.DataFrame:
    if isinstance(labels, pd.DataFrame):
        df = labels.reset_index(drop=True)
    else:
        df = pd.DataFrame({k: pd.Series(np.asarray(v, dtype=object)) for k, v in labels.items()})
    if len(df) != n:
        raise ValueError(f"{name} has {len(df)} rows, the coordinates have {n}")
    unknown = set(df.columns) - set(PLACE_LEVELS)
    if unknown:
        raise ValueError(f"{name}: unknown label keys {sorted(unknown)}; use {', '.join(PLACE_LEVELS)}")
    return df


def _clean_one(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    return str(v).strip()


def _map_distinct(values: Any, fn: Any) -> NDArray[np.object_]:
    """``fn`` applied to each distinct value once (labels repeat a lot), as an object array."""
    idx, uniq = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
    mapped = np.empty(len(uniq), dtype=object)
    mapped[:] = [fn(u) for u in uniq]
    return mapped[idx]


def _clean_text(col: Any) -> NDArray[np.object_]:
    """Object array of stripped strings, '' where blank / NaN / None."""
    return _map_distinct(col, _clean_one)


def country_codes(df: pd.DataFrame) -> NDArray[np.object_] | None:
    """ISO alpha-2 per row from ``country_code`` (preferred) or ``country`` names; '' where unknown."""
    from georeason.geo import normalize_country

    cols = [c for c in ("country_code", "country") if c in df.columns]
    if not cols:
        return None
    out = np.full(len(df), "", dtype=object)
    for c in cols:
        codes = _map_distinct(df[c], lambda v: normalize_country(_clean_one(v)) or "")
        out = np.where(out == "", codes, out)
    return out


def true_continents(df: pd.DataFrame) -> NDArray[np.object_] | None:
    """Continent codes of the truth from its labels: the continent column, else
    the continent of the country; None when the labels have neither."""
    from georeason.geo import continent_of

    if "continent" in df.columns:
        return _map_distinct(df["continent"], _continent_code)
    cc = country_codes(df)
    if cc is None:
        return None
    return _map_distinct(cc, lambda c: (continent_of(c) or "") if c else "")


_LABEL_KEYS = PLACE_LEVELS


def _hierarchy(
    true_df: pd.DataFrame,
    pred_df: pd.DataFrame,
    keep: NDArray[np.bool_],
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> dict[str, LevelAccuracy]:
    """Per-level accuracy by :func:`georeason.match.judge`, the rule the rewards use.

    A level is evaluated when the truth has it and the predictions have a column for it
    (continent may be derived from country). Each distinct (truth, answer) combination
    is judged once: labels repeat a lot.
    """
    from georeason.match import Truth, continent_code, country_code_named, judge

    t_df = true_df.loc[keep].reset_index(drop=True)
    p_df = pred_df.loc[keep].reset_index(drop=True)
    n = len(t_df)

    def cols(df: pd.DataFrame) -> dict[str, NDArray[np.object_] | None]:
        return {k: _clean_text(df[k]) if k in df.columns else None for k in _LABEL_KEYS}

    tc, pc = cols(t_df), cols(p_df)
    t_country = tc["country_code"] is not None or tc["country"] is not None
    p_country = pc["country_code"] is not None or pc["country"] is not None
    levels: list[str] = []
    if (tc["continent"] is not None or t_country) and (pc["continent"] is not None or p_country):
        levels.append("continent")
    if t_country and p_country:
        levels.append("country")
    levels += [k for k in ("admin1", "city") if tc[k] is not None and pc[k] is not None]
    if not levels or n == 0:
        return {}

    # Factorise every label column, then judge each distinct row of codes once.
    codes = np.zeros((n, 2 * len(_LABEL_KEYS)), dtype=np.int64)
    uniques: list[NDArray[np.object_]] = []
    for j, arr in enumerate([tc[k] for k in _LABEL_KEYS] + [pc[k] for k in _LABEL_KEYS]):
        if arr is None:
            uniques.append(np.array([""], dtype=object))
            continue
        idx, uniq = pd.factorize(arr, use_na_sentinel=False)
        codes[:, j] = idx
        uniques.append(np.asarray(uniq, dtype=object))
    combos, inverse = np.unique(codes, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    k = len(_LABEL_KEYS)
    verdict = {level: np.empty(len(combos), dtype=object) for level in levels}
    given = {level: np.zeros(len(combos), dtype=bool) for level in levels}
    for u, row in enumerate(combos):
        vals = [str(uniques[j][c]) or None for j, c in enumerate(row)]
        truth, answer = Truth(*vals[:k]), Truth(*vals[k:])
        for level, ok_u in judge(answer, truth, tuple(levels)).items():
            verdict[level][u] = ok_u
        for level in levels:
            if level == "continent":
                given[level][u] = bool(continent_code(answer.continent) or country_code_named(answer))
            elif level == "country":
                given[level][u] = answer.has_country
            else:
                given[level][u] = getattr(answer, level) is not None

    result: dict[str, LevelAccuracy] = {}
    for level in levels:
        v = verdict[level][inverse]
        truth_ok = np.array([x is not None for x in v], dtype=bool)
        ok = np.array([x is True for x in v], dtype=bool)
        g = given[level][inverse]
        m = int(truth_ok.sum())
        correct = int(ok.sum())
        acc = correct / m if m else float("nan")
        lo = hi = None
        if m and n_bootstrap > 0:
            # Bootstrap of a proportion: the resampled count is exactly Binomial(n, acc).
            reps = _group_rng(seed, "hierarchy:" + level).binomial(m, acc, size=n_bootstrap) / m
            lo, hi = _ci(reps, confidence)
        result[level] = LevelAccuracy(
            n=m, correct=correct, n_missing=int((truth_ok & ~g).sum()), accuracy=Estimate(acc, lo, hi)
        )
    return result


# --------------------------------------------------------------------------- entry point


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
        bins: resolution of the fast bootstrap (see :func:`_bootstrap`); with
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
    overall = _summarise(d, int(out_of_range.sum()), thresholds, n_bootstrap, confidence, rng, bins)

    per: dict[str, Summary] = {}
    source: str | None = None
    if per_continent:
        from_labels = (
            true_continents(_labels_to_frame(true_labels, n_total, "true_labels"))
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
            code = _continent_code(u) or "unknown"  # "" = the geocoder could not place it
            if code not in codes:
                codes.append(code)
            lut[j] = codes.index(code)
        group = lut[idx]
        for gi in sorted(range(len(codes)), key=lambda i: (codes[i] not in CONTINENT_NAMES, codes[i])):
            sel = group == gi
            code = codes[gi]
            grng = _group_rng(seed, code) if (per_continent_ci and n_bootstrap > 0) else None
            per[code] = _summarise(
                d[sel], int(out_of_range[sel].sum()), thresholds, n_bootstrap, confidence, grng, bins
            )

    hier: dict[str, LevelAccuracy] = {}
    if pred_labels is not None and true_labels is None:
        raise ValueError("pred_labels need true_labels to compare with (hierarchy accuracy)")
    if true_labels is not None and pred_labels is not None:
        t_df = _labels_to_frame(true_labels, n_total, "true_labels")
        p_df = _labels_to_frame(pred_labels, n_total, "pred_labels")
        hier = _hierarchy(t_df, p_df, keep, n_bootstrap, confidence, seed)

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
