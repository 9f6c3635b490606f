"""What the selection reads of earlier runs: per-image correctness from an eval run
(Geo-R hotspots) and GRPO rollout logs (difficulty), plus the converter from TRL's
completion tables to the rollout log format (docs/select.md)."""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from georeason.pipelines.select.config import SelectError

logger = logging.getLogger("georeason.pipelines")


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
