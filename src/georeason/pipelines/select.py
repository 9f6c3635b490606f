"""Training-set selection at MP-16 scale: Geo-R's hard set, diversity, difficulty.

:func:`select_table` runs up to four stages over a labelled table (missing place
labels are reverse-geocoded); every dropped row gets exactly one reason, counted in
the report:

1. **Difficulty** (``rollouts``): drop samples whose GRPO group rewards are flat
   (std <= ``std_eps``: zero advantage, nothing to learn); see :func:`load_rollouts`
   and :func:`convert_trl_completions`.
2. **Geo-R hard set** (``correctness``): drop every row within ``radius_km`` (exact
   great-circle distance; a KD-tree on unit vectors) of an image the base model
   already gets right.
3. **Caps** per country / admin1 / equal-area geocell.
4. **Fill** to ``target`` rows by water-filling quotas along ``balance_by``,
   favouring under-represented regions.

The report gives counts per stage, continent and country, and the entropy and Gini
coefficient over countries and geocells before and after. The specification (the
rollout log format, the chord bound, geocells, water-filling) is docs/select.md.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from georeason.geo.sphere import geocell_ids, near_any
from georeason.jsonsafe import dumps

logger = logging.getLogger("georeason.pipelines")

#: stage reasons, in the order the stages run
REASONS = (
    "invalid coordinates",
    "flat rollout rewards",
    "near a hotspot",
    "over the country cap",
    "over the admin1 cap",
    "over the cell cap",
    "not drawn (target size)",
)
BALANCE_KEYS = ("continent", "country_code", "admin1", "cell")


class SelectError(ValueError):
    """The selection cannot run as asked (bad settings, missing columns, unreadable logs)."""


# ---------------------------------------------------------------------------
# distribution statistics
# ---------------------------------------------------------------------------


def entropy_bits(counts: ArrayLike) -> float:
    """Shannon entropy (bits) of a distribution given by counts (zeros ignored).

    >>> entropy_bits([5, 5]), entropy_bits([10, 0]), round(entropy_bits([1, 1, 2]), 3)
    (1.0, 0.0, 1.5)
    """
    c = np.asarray(counts, dtype=np.float64)
    c = c[c > 0]
    if not c.size:
        return 0.0
    p = c / c.sum()
    return float(max(0.0, -(p * np.log2(p)).sum()))  # max: no "-0.0" for one group


def gini(counts: ArrayLike) -> float:
    """Gini coefficient of counts over groups (0: all equal, -> 1: one group holds all).

    ``G = Σ_i (2i − n − 1)·x_(i) / (n·Σx)`` over the counts sorted ascending
    (``i`` = 1..n); groups with zero count are part of ``n`` (a group emptied by
    the selection raises the inequality).

    >>> gini([3, 3, 3]), gini([0, 0, 9]), gini([])
    (0.0, 0.6666666666666666, 0.0)
    """
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n = x.size
    if n == 0 or x.sum() == 0:
        return 0.0
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (n * x.sum()))


def _value_counts(keys: Any) -> pd.Series:
    """Counts per key (vectorised), leaving out empty keys: "", None, NaN and the cell -1."""
    ser = keys if isinstance(keys, pd.Series) else pd.Series(np.asarray(keys))
    ser = ser[ser.notna()]
    ser = ser[ser >= 0] if ser.dtype.kind in "iuf" else ser[ser.astype(str) != ""]
    return ser.value_counts(sort=False)


def distribution(
    keys: Sequence[Any] | NDArray[Any] | pd.Series, groups: Sequence[Any] | None = None
) -> dict[str, Any]:
    """Entropy, normalised entropy and Gini of ``keys`` over ``groups`` (default: the keys present)."""
    counts = _value_counts(keys)
    universe = list(groups) if groups is not None else list(counts.index)
    vec = counts.reindex(universe, fill_value=0).to_numpy(dtype=np.float64) if universe else np.zeros(0)
    h = entropy_bits(vec)
    return {
        "n_groups": int((vec > 0).sum()),
        "n_groups_universe": len(universe),
        "entropy_bits": h,
        "normalized_entropy": h / math.log2(len(universe)) if len(universe) > 1 else 1.0,
        "gini": gini(vec),
    }


# ---------------------------------------------------------------------------
# sampling helpers
# ---------------------------------------------------------------------------


def water_fill(
    sizes: Sequence[int] | NDArray[np.int64], target: int, rng: np.random.Generator
) -> NDArray[np.int64]:
    """Quotas per group summing to ``min(target, Σ sizes)``: ``min(size, q)`` with the largest
    common ``q`` that fits, the remainder one each to randomly chosen groups still above ``q``.

    >>> water_fill([1, 10, 10], 11, np.random.default_rng(0)).tolist()
    [1, 5, 5]
    """
    s = np.asarray(sizes, dtype=np.int64)
    if target >= s.sum():
        return s.copy()
    if target <= 0 or not s.size:
        return np.zeros_like(s)
    # Largest q with Σ min(s, q) <= target: binary search over q in [0, max(s)].
    lo, hi = 0, int(s.max())
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if int(np.minimum(s, mid).sum()) <= target:
            lo = mid
        else:
            hi = mid - 1
    quota = np.minimum(s, lo)
    rest = target - int(quota.sum())
    if rest:
        open_groups = np.flatnonzero(s > quota)
        quota[rng.choice(open_groups, size=rest, replace=False)] += 1
    return quota


def balanced_sample(
    levels: Sequence[NDArray[Any]], target: int, rng: np.random.Generator
) -> NDArray[np.int64]:
    """Indices (sorted) of ``target`` rows drawn by water-filling along ``levels``
    (each an array of group keys, one per row; coarse to fine)."""
    n = len(levels[0]) if levels else 0
    out: list[NDArray[np.int64]] = []

    def recurse(rows: NDArray[np.int64], depth: int, quota: int) -> None:
        if quota >= rows.size:
            out.append(rows)
            return
        if quota <= 0:
            return
        if depth == len(levels):
            out.append(np.sort(rng.choice(rows, size=quota, replace=False)))
            return
        keys = levels[depth][rows]
        uniq, inv = np.unique(_sortable(keys), return_inverse=True)
        order = np.argsort(inv, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(inv, minlength=uniq.size))])
        quotas = water_fill(np.diff(bounds), quota, rng)
        for g in range(uniq.size):
            recurse(rows[order[bounds[g] : bounds[g + 1]]], depth + 1, int(quotas[g]))

    recurse(np.arange(n, dtype=np.int64), 0, int(target))
    return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)


def _sortable(keys: NDArray[Any]) -> NDArray[Any]:
    if keys.dtype == object:
        return np.array(["" if k is None else str(k) for k in keys], dtype=object)
    return keys


def cap_groups(
    keys: NDArray[Any], cap: int, rng: np.random.Generator, candidates: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """Mask of the candidate rows beyond ``cap`` in their group (which rows stay is drawn
    uniformly inside each group). Rows with an empty key form one group ``""``.

    >>> over = cap_groups(np.array(["FR"] * 5 + ["JP"]), 2, np.random.default_rng(0), np.ones(6, bool))
    >>> int(over[:5].sum()), bool(over[5])
    (3, False)
    """
    if cap < 0:
        raise SelectError(f"caps must be >= 0, got {cap}")
    rows = np.flatnonzero(candidates)
    over = np.zeros(len(keys), dtype=bool)
    if not rows.size:
        return over
    _, inv = np.unique(_sortable(np.asarray(keys)[rows]), return_inverse=True)
    # Shuffle, then a stable sort by group: inside each group the order is random, and a
    # row's rank in it decides whether it stays (vectorised: no Python loop over groups).
    perm = rng.permutation(rows.size)
    order = perm[np.argsort(inv[perm], kind="stable")]
    g = inv[order]
    starts = np.flatnonzero(np.concatenate([[True], g[1:] != g[:-1]]))
    rank = np.arange(order.size) - np.repeat(starts, np.diff(np.concatenate([starts, [order.size]])))
    over[rows[order[rank >= cap]]] = True
    return over


# ---------------------------------------------------------------------------
# base-model correctness (Geo-R hotspots)
# ---------------------------------------------------------------------------


def load_correctness(path: str | os.PathLike[str], threshold_km: float = 25.0) -> pd.DataFrame:
    """Per-image correctness from an eval run's ``predictions.jsonl`` (or its folder).

    Columns ``id, lat, lon, distance_km, correct``; ``correct`` is
    ``distance_km <= threshold_km`` and False for failed images (no distance), as in
    every metric of :mod:`georeason.eval`. A truncated last line is ignored (what a
    killed run leaves); repeated ids keep their first line.
    """
    from georeason.runs import PREDICTIONS_FILE, read_records

    p = Path(path).expanduser()
    if p.is_dir():
        p = p / PREDICTIONS_FILE
    if not p.is_file():
        raise SelectError(f"no predictions file at {p} (the output of `georeason eval`)")
    if not threshold_km >= 0:
        raise SelectError(f"threshold_km must be >= 0, got {threshold_km}")
    records, stats = read_records(p)
    if stats.bad_lines:
        logger.warning("%s: %d unreadable lines skipped", p, len(stats.bad_lines))
    missing = [i for i, r in enumerate(records[:1000]) if "true_lat" not in r or "true_lon" not in r]
    if missing:
        raise SelectError(
            f"{p}: lines lack true_lat / true_lon (e.g. line {missing[0] + 1}); expected `georeason eval` output"
        )

    def num(x: Any) -> float:
        try:
            return float(x) if x is not None else math.nan
        except (TypeError, ValueError):
            return math.nan

    df = pd.DataFrame(
        {
            "id": [str(r["id"]) for r in records],
            "lat": [num(r.get("true_lat")) for r in records],
            "lon": [num(r.get("true_lon")) for r in records],
            "distance_km": [num(r.get("distance_km")) for r in records],
        }
    )
    df["correct"] = (df["distance_km"] <= threshold_km).to_numpy() & np.isfinite(df["distance_km"].to_numpy())
    return df


def pick_hotspots(correctness: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """Up to ``n`` correct rows with valid coordinates, drawn uniformly with ``seed``
    from the rows sorted by id (so the eval file's line order does not matter)."""
    if n < 0:
        raise SelectError(f"n_hotspots must be >= 0, got {n}")
    ok = correctness[
        correctness["correct"].to_numpy()
        & np.isfinite(correctness["lat"].to_numpy())
        & np.isfinite(correctness["lon"].to_numpy())
        & (np.abs(correctness["lat"].to_numpy()) <= 90)
        & (np.abs(correctness["lon"].to_numpy()) <= 180)
    ]
    ok = ok.sort_values("id", kind="stable").reset_index(drop=True)
    if len(ok) <= n:
        return ok
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(ok), size=n, replace=False))
    return ok.iloc[take].reset_index(drop=True)


# ---------------------------------------------------------------------------
# GRPO rollout logs (difficulty)
# ---------------------------------------------------------------------------


@dataclass
class RolloutGroups:
    """Reward groups per sample id, in log order (or by ``step`` when given)."""

    groups: dict[str, list[tuple[float, list[float]]]] = field(
        default_factory=dict
    )  # id -> [(step, rewards)]
    n_lines: int = 0
    bad_lines: list[int] = field(default_factory=list)

    def flat(self, std_eps: float = 1e-6, mode: str = "last") -> dict[str, bool]:
        """id -> whether the sample's group rewards are flat (std <= ``std_eps``).

        ``mode="last"``: the group of the largest step (the last line when steps tie
        or are absent); ``"all"``: flat only when every group is. NaN rewards
        (unscorable completions, as TRL logs them) are left out of the std; a group
        with fewer than two finite rewards counts as flat (no spread to learn from).
        """
        if mode not in ("last", "all"):
            raise SelectError(f"difficulty mode must be 'last' or 'all', got {mode!r}")
        out: dict[str, bool] = {}
        for sid, gs in self.groups.items():
            chosen = [max(enumerate(gs), key=lambda t: (t[1][0], t[0]))[1]] if mode == "last" else gs
            out[sid] = all(_is_flat(r, std_eps) for _, r in chosen)
        return out


def _is_flat(rewards: Sequence[float], eps: float) -> bool:
    r = np.asarray(rewards, dtype=np.float64)
    r = r[np.isfinite(r)]
    return bool(r.size < 2 or float(r.std()) <= eps)


def load_rollouts(path: str | os.PathLike[str]) -> RolloutGroups:
    """Read a rollout log: JSONL, one group per line: ``{"id": str, "rewards": [float, ...], "step": int?}``.

    ``rewards`` are the group's total rewards (one per completion; ``null`` = not
    scored). A truncated last line is skipped; other malformed lines are an error
    naming the line (a log that half parses should not silently select data).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise SelectError(f"no rollout log at {p}")
    out = RolloutGroups()
    lines = p.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for k, line in enumerate(lines):
        out.n_lines += 1
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            sid = rec["id"]
            rewards = [math.nan if r is None else float(r) for r in rec["rewards"]]
            step = float(rec.get("step", k)) if rec.get("step") is not None else float(k)
        except (ValueError, KeyError, TypeError) as e:
            if k == len(lines) - 1:
                out.bad_lines.append(k + 1)
                continue
            raise SelectError(
                f'{p}, line {k + 1}: expected {{"id": ..., "rewards": [numbers], "step": int?}} ({e})'
            ) from None
        if sid is None:
            raise SelectError(f"{p}, line {k + 1}: id is null")
        out.groups.setdefault(str(sid), []).append((step, rewards))
    return out


def convert_trl_completions(
    src: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    id_column: str = "id",
    reward_columns: Sequence[str] | None = None,
    reward_weights: Sequence[float] | None = None,
) -> int:
    """Turn TRL's GRPO completion logs into the rollout log format; returns the groups written.

    TRL (``GRPOConfig(log_completions=True)``) writes
    ``output_dir/completions/completions_{step:05d}.parquet`` with columns
    ``step, prompt, completion, <one per reward function>, <extra columns>,
    advantage``. It logs no sample id by itself: wrap one reward function with
    :func:`georeason.train.rewards.with_id_logging` so the id arrives as an extra column. Each row's total
    reward is ``Σ_k w_k · r_k`` over the reward columns with NaN taken as 0 (TRL's
    ``nansum``; weights default to 1, TRL's default ``reward_weights``; rows whose
    every reward is NaN stay NaN). Rows are grouped by ``(step, id)``.

    ``src``: the ``completions`` folder, one parquet file, or a list of files.
    ``reward_columns``: default: every numeric column except ``step`` and ``advantage``.
    """
    files: list[Path]
    if isinstance(src, (str, os.PathLike)):
        p = Path(src).expanduser()
        files = sorted(p.glob("completions_*.parquet")) if p.is_dir() else [p]
    else:
        files = [Path(f).expanduser() for f in src]
    if not files or not all(f.is_file() for f in files):
        raise SelectError(f"no TRL completion tables (completions_*.parquet) at {src}")
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    if id_column not in df.columns:
        raise SelectError(
            f"the completion logs have no {id_column!r} column (columns: {', '.join(map(str, df.columns))}). "
            "TRL does not log sample ids: wrap a reward function with "
            "georeason.train.rewards.with_id_logging so it logs them through TRL's log_extra."
        )
    if "step" not in df.columns:
        raise SelectError("the completion logs have no 'step' column; are these TRL completion tables?")
    if reward_columns is None:
        reward_columns = [
            c
            for c in df.columns
            if c not in ("step", "advantage", id_column) and pd.api.types.is_numeric_dtype(df[c])
        ]
    if not reward_columns:
        raise SelectError("no reward columns found in the completion logs; name them with reward_columns")
    missing = [c for c in reward_columns if c not in df.columns]
    if missing:
        raise SelectError(f"reward columns not in the logs: {', '.join(missing)}")
    w = (
        np.ones(len(reward_columns))
        if reward_weights is None
        else np.asarray(reward_weights, dtype=np.float64)
    )
    if w.size != len(reward_columns):
        raise SelectError(f"{len(reward_columns)} reward columns but {w.size} weights")
    r = df[list(reward_columns)].to_numpy(dtype=np.float64)
    total = np.where(np.isnan(r), 0.0, r * w).sum(axis=1)
    total[np.isnan(r).all(axis=1)] = np.nan
    df = df.assign(_total=total, _id=df[id_column].astype(str))
    out_p = Path(out).expanduser()
    out_p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    tmp = out_p.with_name(out_p.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for key, g in df.groupby(["step", "_id"], sort=True):
            step, sid = cast(tuple[Any, str], key)
            vals = [None if not math.isfinite(v) else float(v) for v in g["_total"]]
            f.write(json.dumps({"id": sid, "step": int(step), "rewards": vals}) + "\n")
            n += 1
    os.replace(tmp, out_p)
    return n


# ---------------------------------------------------------------------------
# tables in and out
# ---------------------------------------------------------------------------


@dataclass
class LoadedTable:
    """A table to select from: the Arrow data (or a ``datasets`` Dataset) and its key columns."""

    kind: str  # "csv" | "parquet" | "datasets"
    data: Any  # pyarrow.Table, or datasets.Dataset
    id_col: str | None
    lat_col: str
    lon_col: str
    split: str | None = None
    malformed: list[str] = field(default_factory=list)  # CSV lines with the wrong number of fields (left out)
    root: Path | None = None  # the datasets folder (relative image paths are relative to it)

    def __len__(self) -> int:
        return int(self.data.num_rows)

    def column(self, name: str) -> Any:
        if self.kind == "datasets":
            return self.data.data.column(name)  # the Arrow table under the Dataset (no image decoding)
        return self.data.column(name)

    @property
    def column_names(self) -> list[str]:
        return list(self.data.column_names)


def load_table(
    path: str | os.PathLike[str],
    *,
    id_col: str | None = None,
    lat_col: str | None = None,
    lon_col: str | None = None,
    split: str = "train",
) -> LoadedTable:
    """A CSV / Parquet file (CSV columns as text; lines with the wrong number of fields or
    bytes that are not UTF-8 left out and counted) or a ``datasets`` folder (``save_to_disk``;
    a DatasetDict gives ``split``), read by :mod:`georeason.tables`."""
    from georeason.tables import (
        ID_COLUMNS,
        coordinate_columns,
        detect_column,
        open_dataset,
        read_arrow,
        table_format,
    )

    p = Path(path).expanduser()
    split_name: str | None = None
    malformed: list[str] = []
    if p.is_dir():
        data, _, split_name = open_dataset(p, split)
        kind = "datasets"
    elif p.is_file():
        kind = table_format(p, ("csv", "parquet"))
        data = read_arrow(p, malformed)
        if malformed:
            logger.warning("%s: %d malformed CSV lines left out, e.g. %r", p, len(malformed), malformed[0])
    else:
        raise FileNotFoundError(f"no such table or datasets folder: {p}")
    names = list(data.column_names)
    idc = detect_column(names, id_col, ID_COLUMNS, "id", required=False, source=p)
    lac, loc = coordinate_columns(names, lat_col, lon_col, source=p)
    return LoadedTable(
        kind=kind,
        data=data,
        id_col=idc,
        lat_col=lac,
        lon_col=loc,
        split=split_name,
        malformed=malformed,
        root=p if kind == "datasets" else None,
    )


def write_selected(table: LoadedTable, rows: NDArray[np.int64], out: str | os.PathLike[str]) -> Path:
    """Write ``rows`` of ``table`` in the input's format (a ``datasets`` folder for one)."""
    import pyarrow as pa

    out_p = Path(out).expanduser()
    out_p.parent.mkdir(parents=True, exist_ok=True)
    idx = np.asarray(rows, dtype=np.int64)
    if table.kind == "datasets":
        import shutil

        import datasets

        sel = table.data.select(idx.tolist())
        if (
            table.root is not None
            and "image" in sel.column_names
            and not isinstance(sel.features["image"], datasets.Image)
        ):
            # Image paths relative to the input folder would break in the output folder
            # (train's loader resolves them against the dataset's own folder): make them absolute.
            root = table.root

            def absolute(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
                return {
                    "image": [
                        p
                        if not isinstance(p, str) or not p or Path(p).is_absolute()
                        else str((root / p).resolve())
                        for p in batch["image"]
                    ]
                }

            sel = sel.map(absolute, batched=True)
        tmp = out_p.with_name(out_p.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        if table.split is not None:
            datasets.DatasetDict({table.split: sel}).save_to_disk(str(tmp))
        else:
            sel.save_to_disk(str(tmp))
        if out_p.exists():
            shutil.rmtree(out_p)
        os.replace(tmp, out_p)
        return out_p
    from georeason.tables import TableError, table_format

    try:
        fmt = table_format(out_p, ("csv", "parquet")) if not out_p.is_dir() else "?"
    except TableError:
        fmt = "?"
    if fmt != table.kind:
        raise SelectError(f"write the selection in the input's format ({table.kind}): got {out_p}")
    sel_t = table.data.take(pa.array(idx))
    tmp = out_p.with_name(out_p.name + ".tmp")
    if fmt == "csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(sel_t, str(tmp))
    else:
        import pyarrow.parquet as pq

        pq.write_table(sel_t, str(tmp))
    os.replace(tmp, out_p)
    return out_p


# ---------------------------------------------------------------------------
# the selection
# ---------------------------------------------------------------------------


@dataclass
class SelectConfig:
    """Settings of :func:`select_table` (each stage runs only when its inputs are given)."""

    correctness: str | None = field(
        default=None,
        metadata={"help": "Base-model eval run (predictions.jsonl or its folder): Geo-R hard set."},
    )
    threshold_km: float = field(default=25.0, metadata={"help": "Correct = error <= this (km)."})
    n_hotspots: int = field(
        default=100_000, metadata={"help": "Correct samples used as hotspots.", "aliases": ["--hotspots"]}
    )
    radius_km: float = field(default=200.0, metadata={"help": "Drop rows within this of a hotspot (km)."})
    rollouts: str | None = field(
        default=None,
        metadata={"help": 'GRPO rollout log (JSONL {"id", "rewards": [...], "step"}): difficulty.'},
    )
    std_eps: float = field(default=1e-6, metadata={"help": "Flat group: reward std <= this."})
    difficulty_mode: str = field(
        default="last", metadata={"help": "last: judge each id's latest group; all: every group flat."}
    )
    max_per_country: int | None = field(
        default=None, metadata={"help": "Keep at most this many rows per country."}
    )
    max_per_admin1: int | None = field(
        default=None, metadata={"help": "Keep at most this many rows per admin1."}
    )
    max_per_cell: int | None = field(
        default=None, metadata={"help": "Keep at most this many rows per equal-area geocell."}
    )
    cell_km: float = field(default=100.0, metadata={"help": "Equal-area geocell side at the equator, km."})
    target: int | None = field(
        default=None, metadata={"help": "Rows to keep, favouring under-represented regions."}
    )
    balance_by: tuple[str, ...] = field(
        default=("country_code", "cell"),
        metadata={
            "help": "Levels of the balanced fill, coarse to fine (continent, country_code, admin1, cell)."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of the hotspot draw and the fill."})
    label_prefix: str = field(
        default="", metadata={"help": "Prefix of the label columns (`data label --prefix`)."}
    )

    def __post_init__(self) -> None:
        for name in ("threshold_km", "radius_km", "std_eps", "cell_km"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise SelectError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.cell_km <= 0:
            raise SelectError(f"cell_km must be > 0, got {self.cell_km}")
        if self.n_hotspots < 0:
            raise SelectError(f"n_hotspots must be >= 0, got {self.n_hotspots}")
        for name in ("max_per_country", "max_per_admin1", "max_per_cell", "target"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise SelectError(f"{name} must be >= 0, got {v}")
        if self.difficulty_mode not in ("last", "all"):
            raise SelectError(f"difficulty_mode must be 'last' or 'all', got {self.difficulty_mode!r}")
        self.balance_by = tuple(self.balance_by)
        bad = [k for k in self.balance_by if k not in BALANCE_KEYS]
        if bad or not self.balance_by:
            raise SelectError(
                f"balance_by takes a list of {', '.join(BALANCE_KEYS)}; got {self.balance_by!r}"
            )


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


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------


def _counts(values: pd.Series) -> dict[str, int]:
    c = _value_counts(values)
    return dict(sorted(((str(k), int(v)) for k, v in c.items()), key=lambda kv: (-kv[1], kv[0])))


def build_report(
    labels: pd.DataFrame,
    valid: NDArray[np.bool_],
    rows: NDArray[np.int64],
    stages: Mapping[str, Any],
    config: SelectConfig,
    hotspots: pd.DataFrame | None,
) -> dict[str, Any]:
    """Counts per continent and country before / after, entropy and Gini over countries and geocells."""
    from georeason.geo import country_name

    before = labels[valid]
    after = labels.iloc[rows]
    countries_before = sorted(str(k) for k in _value_counts(before["country_code"]).index)
    cells_before = sorted(int(k) for k in _value_counts(before["cell"]).index)
    cont_b, cont_a = _counts(before["continent"]), _counts(after["continent"])
    cc_b, cc_a = _counts(before["country_code"]), _counts(after["country_code"])
    return {
        "settings": asdict(config),
        "stages": dict(stages),
        "n_before": int(valid.sum()),
        "n_after": int(rows.size),
        "continents": {k: {"before": v, "after": cont_a.get(k, 0)} for k, v in cont_b.items()},
        "countries": {
            k: {"name": country_name(k) if len(k) == 2 else k, "before": v, "after": cc_a.get(k, 0)}
            for k, v in cc_b.items()
        },
        "distribution": {
            "countries": {
                "before": distribution(before["country_code"], countries_before),
                "after": distribution(after["country_code"], countries_before),
            },
            "geocells": {
                "cell_km": config.cell_km,
                "before": distribution(before["cell"], cells_before),
                "after": distribution(after["cell"], cells_before),
            },
        },
        "n_hotspots": 0 if hotspots is None else len(hotspots),
    }


def render_markdown(report: Mapping[str, Any], *, map_png: str | None = None, top: int = 30) -> str:
    """The selection report for people."""
    from georeason.types import CONTINENT_NAMES

    s = report["settings"]
    lines = [
        "# Selection report",
        "",
        f"{report['n_after']:,} of {report['n_before']:,} rows with valid coordinates selected "
        f"(seed {s['seed']}).",
        "",
        "## Stages",
        "",
        "| stage | figure |",
        "|---|---|",
    ]
    for k, v in report["stages"].items():
        if isinstance(v, Mapping):
            for kk, vv in v.items():
                lines.append(f"| {k}: {kk} | {vv:,} |" if isinstance(vv, int) else f"| {k}: {kk} | {vv} |")
        else:
            lines.append(f"| {k} | {v:,} |")
    d = report["distribution"]
    lines += [
        "",
        "## Geographic spread",
        "",
        "Entropy in bits (normalised by log2 of the groups present before); Gini over those groups "
        "(0 = even, 1 = all in one).",
        "",
        "| over | groups before / after | entropy before | entropy after | norm. before | norm. after | Gini before | Gini after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, key in (
        ("countries", "countries"),
        (f"geocells ({d['geocells']['cell_km']:g} km)", "geocells"),
    ):
        b, a = d[key]["before"], d[key]["after"]
        lines.append(
            f"| {name} | {b['n_groups']:,} / {a['n_groups']:,} | {b['entropy_bits']:.3f} | {a['entropy_bits']:.3f} | "
            f"{b['normalized_entropy']:.3f} | {a['normalized_entropy']:.3f} | {b['gini']:.3f} | {a['gini']:.3f} |"
        )
    nb, na = max(report["n_before"], 1), max(report["n_after"], 1)
    lines += [
        "",
        "## Continents",
        "",
        "| continent | before | share | after | share |",
        "|---|---|---|---|---|",
    ]
    for k, v in report["continents"].items():
        lines.append(
            f"| {CONTINENT_NAMES.get(k, k)} | {v['before']:,} | {v['before'] / nb:.1%} | {v['after']:,} | {v['after'] / na:.1%} |"
        )
    countries = list(report["countries"].items())
    lines += [
        "",
        f"## Countries ({len(countries)}; the {min(top, len(countries))} largest before; all in report.json)",
        "",
        "| country | before | share | after | share |",
        "|---|---|---|---|---|",
    ]
    for k, v in countries[:top]:
        lines.append(
            f"| {v['name']} ({k}) | {v['before']:,} | {v['before'] / nb:.1%} | {v['after']:,} | {v['after'] / na:.1%} |"
        )
    if map_png:
        lines += ["", "## Map", "", f"![selection map]({map_png})"]
    return "\n".join(lines) + "\n"


def plot_selection_map(
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    rows: NDArray[np.int64],
    path: str | os.PathLike[str],
    *,
    hotspots: pd.DataFrame | None = None,
    radius_km: float | None = None,
    max_points: int = 20_000,
    seed: int = 0,
) -> Path:
    """Rows before (grey) and after (blue) the selection and the hotspots (red) on country outlines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from georeason.eval.plots import world_outlines

    rng = np.random.default_rng(seed)
    valid = np.flatnonzero(np.isfinite(lat) & np.isfinite(lon))

    def sample(idx: NDArray[np.int64]) -> NDArray[np.int64]:
        return np.sort(rng.choice(idx, size=max_points, replace=False)) if idx.size > max_points else idx

    b, a = sample(valid), sample(rows)
    fig = Figure(figsize=(11.0, 5.8), dpi=110)  # the object API: no global backend, thread-safe
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_facecolor("#eef4f8")
    ax.add_collection(
        PolyCollection(world_outlines(), facecolors="#f4f1ea", edgecolors="#b9b4a8", linewidths=0.3, zorder=1)
    )
    ax.scatter(lon[b], lat[b], s=3, color="0.6", alpha=0.5, lw=0, zorder=2)
    ax.scatter(lon[a], lat[a], s=4, color="#1f77b4", alpha=0.9, lw=0, zorder=4)  # on top of the hotspots
    handles = [
        Line2D([], [], marker="o", ls="", color="0.6", markersize=4, label=f"before ({valid.size:,})"),
        Line2D([], [], marker="o", ls="", color="#1f77b4", markersize=4, label=f"selected ({rows.size:,})"),
    ]
    if hotspots is not None and len(hotspots):
        h = hotspots.iloc[sample(np.arange(len(hotspots)))]
        ax.scatter(h["lon"], h["lat"], s=6, marker="x", color="#d62728", linewidths=0.5, alpha=0.5, zorder=3)
        label = f"hotspots ({len(hotspots):,}" + (
            f", {radius_km:g} km dropped around each)" if radius_km else ")"
        )
        handles.append(Line2D([], [], marker="x", ls="", color="#d62728", markersize=5, label=label))
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)
    ax.grid(True, alpha=0.2, lw=0.5)
    shown = "" if max(valid.size, rows.size) <= max_points else f" (random {max_points:,} of each drawn)"
    ax.legend(
        handles=handles, loc="lower left", fontsize=7, framealpha=0.9, title="rows" + shown, title_fontsize=7
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", bbox_inches="tight")
    return out


def report_paths(out: str | os.PathLike[str]) -> dict[str, Path]:
    """Where the report goes: ``OUT.report.md``, ``OUT.report.json``, ``OUT.map.png``."""
    p = Path(out).expanduser()
    base = p.with_name(p.name.rstrip("/"))
    return {
        "md": base.with_name(base.name + ".report.md"),
        "json": base.with_name(base.name + ".report.json"),
        "map": base.with_name(base.name + ".map.png"),
    }


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


__all__ = [
    "REASONS",
    "LoadedTable",
    "RolloutGroups",
    "SelectConfig",
    "SelectError",
    "SelectResult",
    "balanced_sample",
    "build_report",
    "cap_groups",
    "convert_trl_completions",
    "distribution",
    "entropy_bits",
    "gini",
    "load_correctness",
    "load_rollouts",
    "load_table",
    "pick_hotspots",
    "plot_selection_map",
    "render_markdown",
    "report_paths",
    "run_select",
    "select_table",
    "water_fill",
]
