"""What the metrics are: the constants and conventions, the per-row definitions (a usable
coordinate, GeoScore) and the result types (:class:`Estimate`, :class:`Summary`,
:class:`LevelAccuracy`, :class:`GeoMetrics`, JSON-safe through ``to_dict``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from georeason.geo.distance import GEOSCORE_SCALE_KM
from georeason.types import CONTINENT_NAMES

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
            "accuracy": {acc_key(t): e.to_dict() for t, e in self.accuracy.items()},
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
            rows.append([f"acc@{t:g}km", fmt_pct(e.value), fmt_ci(e, fmt_pct)])
        rows.append(["median km (predicted)", fmt_km(o.median_km.value), fmt_ci(o.median_km, fmt_km)])
        rows.append(["mean km (predicted)", fmt_km(o.mean_km.value), fmt_ci(o.mean_km, fmt_km)])
        rows.append(["GeoScore", f"{o.geoscore.value:.1f}", fmt_ci(o.geoscore, lambda v: f"{v:.1f}")])
        rows.append(["n scored", str(o.n), ""])
        rows.append(["missing predictions", str(o.n_missing), ""])
        if self.n_invalid_truth:
            rows.append(["excluded (bad truth)", str(self.n_invalid_truth), ""])
        for level, la in self.hierarchy.items() if hierarchy else ():
            rows.append([f"{level} accuracy", fmt_pct(la.accuracy.value), fmt_ci(la.accuracy, fmt_pct)])
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
                    *[fmt_pct(e.value) for e in s.accuracy.values()],
                    fmt_km(s.median_km.value),
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
                    fmt_pct(la.accuracy.value),
                    fmt_ci(la.accuracy, fmt_pct),
                    str(la.correct),
                    str(la.n),
                    str(la.n_missing),
                ]
            )
        return rows


def acc_key(t: float) -> str:
    return f"acc@{t:g}km"


def fmt_pct(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{100 * v:.1f}%"


def fmt_km(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:,.1f}"


def fmt_ci(e: Estimate, fmt: Any) -> str:
    if e.ci_low is None or e.ci_high is None:
        return ""
    return f"[{fmt(e.ci_low)}, {fmt(e.ci_high)}]"
