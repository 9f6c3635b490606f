"""Evaluation: metrics (light, no torch) and, in later modules, the runner and reports.

Only :mod:`georeason.eval.metrics` is imported here, so ``import georeason.eval``
stays free of torch / transformers.
"""

from georeason.eval.metrics import (
    DEFAULT_THRESHOLDS_KM,
    Estimate,
    GeoMetrics,
    LevelAccuracy,
    Summary,
    compute_metrics,
    geoscore,
    valid_coordinates,
)

__all__ = [
    "DEFAULT_THRESHOLDS_KM",
    "Estimate",
    "GeoMetrics",
    "LevelAccuracy",
    "Summary",
    "compute_metrics",
    "geoscore",
    "valid_coordinates",
]
