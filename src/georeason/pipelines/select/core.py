"""The selection itself: :func:`select_table` runs the stages over a loaded table,
:func:`run_select` loads, selects and writes the selection and its report."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from georeason.geo.sphere import geocell_ids, near_any
from georeason.jsonsafe import dumps
from georeason.pipelines.select.config import REASONS, SelectConfig, SelectError
from georeason.pipelines.select.report import build_report, plot_selection_map, render_markdown, report_paths
from georeason.pipelines.select.rollouts import load_correctness, load_rollouts, pick_hotspots
from georeason.pipelines.select.stats import balanced_sample, cap_groups
from georeason.pipelines.select.table_io import LoadedTable, load_table, write_selected

logger = logging.getLogger("georeason.pipelines")


@dataclass
class SelectResult:
    """What :func:`select_table` chose: row indices, a reason per dropped row, and the report."""

    rows: NDArray[np.int64]
    reason: NDArray[np.object_]  # "" for kept rows
    report: dict[str, Any]
    hotspots: pd.DataFrame | None = None


def _labels(
    table: LoadedTable, prefix: str, lat: NDArray[np.float64], lon: NDArray[np.float64]
) -> pd.DataFrame:
    """continent / country_code / admin1 of every row: the table's columns when it has
    them (``georeason data label`` output), else reverse-geocoded now."""
    names = table.column_names
    want = ("continent", "country_code", "country", "admin1")
    if all(prefix + k in names for k in want):
        return pd.DataFrame({k: table.column(prefix + k).to_pandas().fillna("").astype(str) for k in want})
    from georeason.geo import reverse_geocode_batch

    logger.info("no %s columns: reverse-geocoding %d rows", "/".join(prefix + k for k in want), len(lat))
    t = reverse_geocode_batch(lat, lon)
    return pd.DataFrame({k: getattr(t, k) for k in want})


def _group_codes(labels: pd.DataFrame, key: str) -> NDArray[np.int64]:
    """Integer group of every row for ``key`` (factorised: sorting ints beats sorting 4.7M strings).

    admin1 names repeat across countries ("Limburg" is Dutch and Belgian): admin1 groups
    are keyed on country and admin1 together.
    """
    col = labels[key]
    if key == "admin1":
        col = labels["country_code"].astype(str) + "|" + labels["admin1"].astype(str)
    codes, _ = pd.factorize(col, use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64)


def select_table(
    table: LoadedTable, config: SelectConfig, *, log: Callable[[str], None] = logger.info
) -> SelectResult:
    """Run the selection stages on ``table`` (see the module docstring); nothing is written."""
    from georeason.pipelines.label import coordinates_from_arrow

    t0 = time.perf_counter()
    n = len(table)
    rng = np.random.default_rng(config.seed)
    lat, lat_bad = coordinates_from_arrow(table.column(table.lat_col), table.lat_col)
    lon, lon_bad = coordinates_from_arrow(table.column(table.lon_col), table.lon_col)
    valid = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    # why[i]: 0 = still selected, k = dropped for REASONS[k - 1] (small ints: fast masks at 4.7M rows)
    why = np.zeros(n, dtype=np.int8)
    why[~valid] = 1
    labels = _labels(table, config.label_prefix, np.where(valid, lat, np.nan), np.where(valid, lon, np.nan))
    labels["cell"] = geocell_ids(lat, lon, config.cell_km)
    stages: dict[str, Any] = {"input rows": n, "invalid coordinates": int((~valid).sum())}
    if table.malformed:
        stages["malformed CSV lines (left out)"] = len(table.malformed)
    timings: dict[str, float] = {}

    # 1. difficulty
    if config.rollouts:
        if table.id_col is None:
            raise SelectError(
                "the difficulty filter matches rollout logs by id, and the table has no id column"
            )
        t = time.perf_counter()
        ids = table.column(table.id_col).to_pandas().astype(str)
        groups = load_rollouts(config.rollouts)
        flat = groups.flat(config.std_eps, config.difficulty_mode)
        state = ids.map(flat)  # True: flat, False: spread, NaN: not in the log
        logged = state.notna().to_numpy()
        drop = (state == True).to_numpy() & (why == 0)  # noqa: E712  (elementwise)
        why[drop] = 2
        stages["difficulty"] = {
            "log lines": groups.n_lines,
            "ids in log": len(flat),
            "rows found in log": int(logged.sum()),
            "rows not in log (kept)": int((~logged & valid).sum()),
            "dropped (flat groups)": int(drop.sum()),
            "std_eps": config.std_eps,
            "mode": config.difficulty_mode,
        }
        timings["difficulty_s"] = time.perf_counter() - t

    # 2. Geo-R hard set
    hotspots = None
    if config.correctness:
        t = time.perf_counter()
        corr = load_correctness(config.correctness, config.threshold_km)
        hotspots = pick_hotspots(corr, config.n_hotspots, config.seed)
        cand = why == 0
        mask, _ = near_any(
            np.where(cand, lat, np.nan),
            np.where(cand, lon, np.nan),
            hotspots["lat"],
            hotspots["lon"],
            config.radius_km,
        )
        why[mask] = 3
        stages["hard set"] = {
            "evaluated images": len(corr),
            "correct (<= threshold)": int(corr["correct"].sum()),
            "threshold_km": config.threshold_km,
            "hotspots used": len(hotspots),
            "radius_km": config.radius_km,
            "dropped (near a hotspot)": int(mask.sum()),
        }
        timings["hard_set_s"] = time.perf_counter() - t

    # 3. caps
    for key, cap, code in (
        ("country_code", config.max_per_country, 4),
        ("admin1", config.max_per_admin1, 5),
        ("cell", config.max_per_cell, 6),
    ):
        if cap is None:
            continue
        over = cap_groups(_group_codes(labels, key), cap, rng, why == 0)
        why[over] = code
        stages[REASONS[code - 1]] = int(over.sum())

    # 4. fill to the target size
    if config.target is not None:
        cand = np.flatnonzero(why == 0)
        if config.target < cand.size:
            levels = [_group_codes(labels, key)[cand] for key in config.balance_by]
            chosen = cand[balanced_sample(levels, config.target, rng)]
            not_drawn = np.setdiff1d(cand, chosen, assume_unique=True)
            why[not_drawn] = 7
            stages[REASONS[6]] = int(not_drawn.size)
        else:
            stages[REASONS[6]] = 0
            if config.target > cand.size:
                log(f"target {config.target} > {cand.size} rows left after filtering: all are kept")

    rows = np.flatnonzero(why == 0).astype(np.int64)
    stages["selected rows"] = int(rows.size)
    report = build_report(labels, valid, rows, stages, config, hotspots)
    report["timings"] = {**timings, "total_s": time.perf_counter() - t0}
    report["coordinate problems"] = len(lat_bad) + len(lon_bad)
    reason = np.array(["", *REASONS], dtype=object)[why]
    return SelectResult(rows=rows, reason=reason, report=report, hotspots=hotspots)


def run_select(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: SelectConfig,
    *,
    id_col: str | None = None,
    lat_col: str | None = None,
    lon_col: str | None = None,
    split: str = "train",
    plot: bool = True,
    log: Callable[[str], None] = logger.info,
) -> SelectResult:
    """Load ``src``, select, write the selection to ``out`` (same format) and the report beside it."""
    from georeason.pipelines.label import coordinates_from_arrow

    src_p, out_p = Path(src).expanduser(), Path(out).expanduser()
    if out_p.resolve() == src_p.resolve():
        raise SelectError("the output must differ from the input")
    table = load_table(src_p, id_col=id_col, lat_col=lat_col, lon_col=lon_col, split=split)
    log(f"loaded {len(table):,} rows from {src_p} ({table.kind})")
    result = select_table(table, config, log=log)
    write_selected(table, result.rows, out_p)
    paths = report_paths(out_p)
    report = dict(result.report)
    report["input"], report["output"] = str(src_p), str(out_p)
    map_name = None
    if plot:
        lat, _ = coordinates_from_arrow(table.column(table.lat_col), table.lat_col)
        lon, _ = coordinates_from_arrow(table.column(table.lon_col), table.lon_col)
        plot_selection_map(
            lat,
            lon,
            result.rows,
            paths["map"],
            hotspots=result.hotspots,
            radius_km=config.radius_km,
            seed=config.seed,
        )
        map_name = paths["map"].name
    paths["json"].write_text(dumps(report, indent=2) + "\n", encoding="utf-8")  # NaN -> null
    paths["md"].write_text(render_markdown(report, map_png=map_name), encoding="utf-8")
    result.report = report
    return result
