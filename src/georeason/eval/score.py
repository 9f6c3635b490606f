"""Score a file of predicted coordinates against the truth (``georeason score``).

Reads CSV, Parquet or JSONL through :func:`georeason.tables.read_table`, finds the
true and predicted coordinate columns (and place labels, when the file has them) by
the vocabulary of :mod:`georeason.tables`, and computes the metrics of
:func:`georeason.eval.metrics.compute_metrics`: acc@km with bootstrap CIs, median /
mean km, GeoScore, per-continent and hierarchy accuracy.

A blank or unparseable prediction counts as a miss (and is counted); rows whose true
coordinates are missing or out of range are excluded (and listed).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from georeason.tables import (
    COORDINATE_PAIRS,
    FORMATS,
    PLACE_COLUMNS,
    PREDICTION_PREFIXES,
    TRUTH_PREFIXES,
    Table,
    TableError,
    prefixed,
    read_table,
)

if TYPE_CHECKING:
    import pandas as pd

    from georeason.eval.metrics import GeoMetrics

# Candidate (lat, lon) pairs, first match wins (case-insensitive): the truth's prefixed names
# (true_lat, gt_lat, ...) before the bare ones (lat, LAT, latitude, ...), which a
# predictions file holds for the truth.
_PAIR_NAMES = (("lat", "lon"), ("latitude", "longitude"))
TRUE_COORD_CANDIDATES: tuple[tuple[str, str], ...] = tuple(
    (p + a, p + b) for p in TRUTH_PREFIXES for a, b in _PAIR_NAMES
) + tuple(pair for pair in COORDINATE_PAIRS if not pair[0].startswith(TRUTH_PREFIXES))
PRED_COORD_CANDIDATES: tuple[tuple[str, str], ...] = tuple(
    (p + a, p + b) for p in PREDICTION_PREFIXES for a, b in _PAIR_NAMES
)

# Score judges four levels; "country" is a code or a name (match.country_code_named reads both).
_SCORE_LEVELS: dict[str, tuple[str, ...]] = {
    "continent": PLACE_COLUMNS["continent"],
    "country": PLACE_COLUMNS["country_code"] + PLACE_COLUMNS["country"],
    "admin1": PLACE_COLUMNS["admin1"],
    "city": PLACE_COLUMNS["city"],
}
TRUE_LABEL_CANDIDATES: dict[str, tuple[str, ...]] = {
    level: prefixed(TRUTH_PREFIXES, names) + names for level, names in _SCORE_LEVELS.items()
}
PRED_LABEL_CANDIDATES: dict[str, tuple[str, ...]] = {
    level: prefixed(PREDICTION_PREFIXES, names) for level, names in _SCORE_LEVELS.items()
}


class ScoreError(ValueError):
    """The file cannot be scored as asked; ``param`` names the option at fault (or None)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def example_path() -> Path:
    """The example predictions shipped in the package (see scripts/make_example_predictions.py)."""
    from importlib.resources import files

    return Path(str(files("georeason.eval").joinpath("example", "predictions.csv")))


def default_out(path: Path) -> Path:
    """``preds.csv`` -> ``preds.scores.json`` next to it (``.csv.gz`` too)."""
    name = path.name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    stem, dot, suffix = name.rpartition(".")
    if dot and "." + suffix.lower() in FORMATS:
        name = stem
    return path.with_name(name + ".scores.json")


def _find(columns: Sequence[str], name: str) -> str | None:
    hits = [c for c in columns if c.lower() == name.lower()]
    return hits[0] if hits else None


def resolve_coordinate_columns(
    columns: list[str],
    true_lat: str | None,
    true_lon: str | None,
    pred_lat: str | None,
    pred_lon: str | None,
) -> tuple[str, str, str, str]:
    """Column names of true and predicted lat/lon: the given ones (which must
    exist) or the first auto-detected pair."""

    def pick(
        given: tuple[str | None, str | None], candidates: tuple[tuple[str, str], ...], what: str, opts: str
    ) -> tuple[str, str]:
        found: list[str] = []
        auto = next(
            ((a, b) for a, b in ((_find(columns, x), _find(columns, y)) for x, y in candidates) if a and b),
            None,
        )
        for value, i in ((given[0], 0), (given[1], 1)):
            if value is not None:
                col = _find(columns, value)
                if col is None:
                    raise ScoreError(f"no column {value!r} in the file; columns: {', '.join(columns)}")
                found.append(col)
            elif auto is not None:
                found.append(auto[i])
            else:
                names = ", ".join(f"{a}/{b}" for a, b in candidates)
                raise ScoreError(
                    f"could not find the {what} columns (looked for {names}); columns: "
                    f"{', '.join(columns)}. Name them with {opts}."
                )
        return found[0], found[1]

    t = pick((true_lat, true_lon), TRUE_COORD_CANDIDATES, "true latitude/longitude", "--true-lat/--true-lon")
    p = pick(
        (pred_lat, pred_lon), PRED_COORD_CANDIDATES, "predicted latitude/longitude", "--pred-lat/--pred-lon"
    )
    if set(t) & set(p):
        raise ScoreError(f"the same column is used for truth and prediction: truth {t}, prediction {p}")
    return t[0], t[1], p[0], p[1]


def resolve_label_columns(
    columns: list[str],
    given: Mapping[str, str | None],
    candidates: Mapping[str, tuple[str, ...]],
    exclude: set[str],
) -> dict[str, str]:
    """Level -> column for place labels: the given ones (which must exist) or auto-detected."""
    out: dict[str, str] = {}
    for level, cands in candidates.items():
        value = given.get(level)
        if value is not None:
            col = _find(columns, value)
            if col is None:
                raise ScoreError(f"no column {value!r} in the file; columns: {', '.join(columns)}")
            out[level] = col
            continue
        for c in cands:
            col = _find(columns, c)
            if col is not None and col not in exclude:
                out[level] = col
                break
    return out


def to_numbers(series: pd.Series) -> tuple[Any, Any]:
    """Float array from a column, and a mask of the cells that held something
    that is not a number.

    Blank / null cells are NaN without comment; text such as "n/a" or "12,5" is
    NaN too and flagged, so the report can say how many values were unparseable.
    """
    import pandas as pd

    num = pd.to_numeric(series, errors="coerce").astype(np.float64).to_numpy()
    raw = series.astype(object)
    blank = raw.isna().to_numpy() | np.array([isinstance(v, str) and not v.strip() for v in raw], dtype=bool)
    return num, np.isnan(num) & ~blank


@dataclass
class Scored:
    """What :func:`score_file` found: the metrics, the JSON result, and what was left out."""

    metrics: GeoMetrics
    result: dict[str, Any]
    table: Table
    n_unparseable_pred: int
    bad_truth: list[int] = field(default_factory=list)  # 0-based rows without valid true coordinates
    true_labels: dict[str, str] = field(default_factory=dict)
    pred_labels: dict[str, str] = field(default_factory=dict)


def score_file(
    path: str | os.PathLike[str],
    *,
    true_lat: str | None = None,
    true_lon: str | None = None,
    pred_lat: str | None = None,
    pred_lon: str | None = None,
    true_labels: Mapping[str, str | None] | None = None,
    pred_labels: Mapping[str, str | None] | None = None,
    thresholds_km: Sequence[float] = (1, 25, 200, 750, 2500),
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    per_continent: bool = True,
    display_name: str | None = None,
) -> Scored:
    """Score the predictions in ``path``; column names are auto-detected unless given.

    ``true_labels`` / ``pred_labels`` name the place-label columns by level
    (``continent``, ``country`` (code or name), ``admin1``, ``city``). Raises
    :class:`ScoreError` (``param`` "FILE" for an unreadable file) or FileNotFoundError.
    """
    from georeason.eval.metrics import compute_metrics, valid_coordinates

    p = Path(path)
    try:
        table = read_table(p)
    except (TableError, FileNotFoundError) as e:
        raise ScoreError(str(e), param="FILE") from e
    df = table.frame
    columns = table.columns
    t_lat, t_lon, p_lat, p_lon = resolve_coordinate_columns(columns, true_lat, true_lon, pred_lat, pred_lon)
    coord_cols = {t_lat, t_lon, p_lat, p_lon}
    t_labels = resolve_label_columns(columns, true_labels or {}, TRUE_LABEL_CANDIDATES, coord_cols)
    p_labels = resolve_label_columns(
        columns, pred_labels or {}, PRED_LABEL_CANDIDATES, coord_cols | set(t_labels.values())
    )

    tla, _ = to_numbers(df[t_lat])  # unparseable truth is invalid truth: excluded and counted below
    tlo, _ = to_numbers(df[t_lon])
    pla, bad_plat = to_numbers(df[p_lat])
    plo, bad_plon = to_numbers(df[p_lon])
    p_unparseable = int((bad_plat | bad_plon).sum())  # rows, not cells

    bad_truth = np.flatnonzero(~valid_coordinates(tla, tlo))
    if len(bad_truth) == len(df):
        raise ScoreError(
            f"no row of {p.name} has valid true coordinates in columns {t_lat}/{t_lon} "
            f"(need numbers with |lat| <= 90, |lon| <= 180); name the columns with --true-lat/--true-lon"
        )

    true_lab = {k: df[c].to_numpy(dtype=object) for k, c in t_labels.items()} if t_labels else None
    pred_lab = {k: df[c].to_numpy(dtype=object) for k, c in p_labels.items()} if p_labels else None
    try:
        metrics = compute_metrics(
            tla,
            tlo,
            pla,
            plo,
            thresholds_km=list(thresholds_km),
            n_bootstrap=n_bootstrap,
            confidence=confidence,
            seed=seed,
            per_continent=per_continent,  # from the truth labels if any, else reverse-geocoded
            true_labels=true_lab,
            pred_labels=pred_lab if true_lab is not None else None,
        )
    except ValueError as e:
        raise ScoreError(str(e)) from e

    result = metrics.to_dict()
    result["input"] = {
        "file": display_name or str(p),
        "format": table.format,
        "n_rows": len(df),
        "n_unreadable_lines": len(table.bad_lines),
        "unreadable_lines": table.bad_lines[:100],
        "n_unparseable_pred": p_unparseable,
        "bad_truth_rows": [int(i) for i in bad_truth[:100]],
        "columns": {
            "true_lat": t_lat,
            "true_lon": t_lon,
            "pred_lat": p_lat,
            "pred_lon": p_lon,
            "true_labels": t_labels,
            "pred_labels": p_labels,
        },
    }
    return Scored(
        metrics=metrics,
        result=result,
        table=table,
        n_unparseable_pred=p_unparseable,
        bad_truth=[int(i) for i in bad_truth],
        true_labels=t_labels,
        pred_labels=p_labels,
    )


__all__ = [
    "PRED_COORD_CANDIDATES",
    "PRED_LABEL_CANDIDATES",
    "TRUE_COORD_CANDIDATES",
    "TRUE_LABEL_CANDIDATES",
    "ScoreError",
    "Scored",
    "default_out",
    "example_path",
    "resolve_coordinate_columns",
    "resolve_label_columns",
    "score_file",
    "to_numbers",
]
