"""Statistics of the selection: entropy and Gini of a distribution, water-filling quotas,
the balanced draw and per-group caps (docs/select.md, "Fill" and "Caps")."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from georeason.pipelines.select.config import SelectError

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


def value_counts(keys: Any) -> pd.Series:
    """Counts per key (vectorised), leaving out empty keys: "", None, NaN and the cell -1."""
    ser = keys if isinstance(keys, pd.Series) else pd.Series(np.asarray(keys))
    ser = ser[ser.notna()]
    ser = ser[ser >= 0] if ser.dtype.kind in "iuf" else ser[ser.astype(str) != ""]
    return ser.value_counts(sort=False)


def distribution(
    keys: Sequence[Any] | NDArray[Any] | pd.Series, groups: Sequence[Any] | None = None
) -> dict[str, Any]:
    """Entropy, normalised entropy and Gini of ``keys`` over ``groups`` (default: the keys present)."""
    counts = value_counts(keys)
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
