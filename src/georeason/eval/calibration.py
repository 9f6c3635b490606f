r"""How good a probability of "yes" is: ranking (AUROC), accuracy at a threshold, and calibration.

Used to evaluate a locatability judge (GLOBE's reward model, :mod:`georeason.train.locatability`)
on held-out (image, reasoning) pairs with known yes/no labels:

- :func:`auroc`: the probability that a random positive scores above a random negative
  (ties count one half), computed from ranks (the Mann-Whitney U statistic), no sklearn;
- :func:`reliability`: the scores cut into equal-width bins of predicted P(yes), with the
  mean prediction and the observed share of yes in each;
- :func:`expected_calibration_error`: :math:`\mathrm{ECE} = \sum_b \frac{n_b}{n}\,|\mathrm{acc}_b - \mathrm{conf}_b|`
  over those bins (Guo et al., 2017, "On Calibration of Modern Neural Networks", with the
  bin's observed yes-share against its mean P(yes));
- :func:`binary_metrics`: all of them in one JSON-able dict; :func:`reliability_plot`: the
  reliability diagram as a PNG (matplotlib, the ``train`` extra).

>>> round(auroc([0.9, 0.8, 0.3, 0.1], [True, False, True, False]), 3)
0.75
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["auroc", "binary_metrics", "expected_calibration_error", "reliability", "reliability_plot"]


def _arrays(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(
            f"scores and labels must be two lists of the same length, got {s.shape} and {y.shape}"
        )
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite numbers")
    return s, y


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_vals = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def auroc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Area under the ROC curve: P(score of a random positive > that of a random negative),
    ties one half. NaN when one class is absent (the area is undefined).

    >>> auroc([0.2, 0.2, 0.7], [False, True, True])
    0.75
    """
    s, y = _arrays(scores, labels)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    r = _ranks(s)
    u = r[y].sum() - n_pos * (n_pos + 1) / 2.0  # Mann-Whitney U of the positives
    return float(u / (n_pos * n_neg))


def reliability(scores: ArrayLike, labels: ArrayLike, n_bins: int = 10) -> list[dict[str, Any]]:
    """Equal-width bins of P(yes) over [0, 1] (the last one closed): per bin its bounds,
    count, mean P(yes) and observed share of yes (None for an empty bin)."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    s, y = _arrays(scores, labels)
    if np.any((s < 0) | (s > 1)):
        raise ValueError("scores must be probabilities in [0, 1]")
    which = np.minimum((s * n_bins).astype(int), n_bins - 1)
    out = []
    for b in range(n_bins):
        m = which == b
        n = int(m.sum())
        out.append(
            {
                "lo": b / n_bins,
                "hi": (b + 1) / n_bins,
                "n": n,
                "mean_p_yes": float(s[m].mean()) if n else None,
                "share_yes": float(y[m].mean()) if n else None,
            }
        )
    return out


def expected_calibration_error(scores: ArrayLike, labels: ArrayLike, n_bins: int = 10) -> float:
    """ECE over :func:`reliability`'s bins: the count-weighted mean of |share of yes - mean P(yes)|.

    >>> expected_calibration_error([0.9, 0.9, 0.1, 0.1], [True, False, False, False], n_bins=2)
    0.25
    """
    bins = reliability(scores, labels, n_bins)
    n = sum(b["n"] for b in bins)
    if n == 0:
        return math.nan
    return float(sum(b["n"] * abs(b["share_yes"] - b["mean_p_yes"]) for b in bins if b["n"]) / n)


def binary_metrics(
    scores: Sequence[float], labels: Sequence[bool], *, threshold: float = 0.5, n_bins: int = 10
) -> dict[str, Any]:
    """Counts, accuracy at ``threshold`` (P(yes) >= threshold says yes), AUROC, ECE, Brier score,
    the reliability bins: one JSON-able dict."""
    s, y = _arrays(scores, labels)
    n = len(s)
    pred = s >= threshold
    return {
        "n": n,
        "n_yes": int(y.sum()),
        "n_no": int((~y).sum()),
        "threshold": threshold,
        "accuracy": float((pred == y).mean()) if n else math.nan,
        "auroc": auroc(s, y) if n else math.nan,
        "ece": expected_calibration_error(s, y, n_bins) if n else math.nan,
        "brier": float(np.mean((s - y) ** 2)) if n else math.nan,
        "mean_p_yes": {
            "yes": float(s[y].mean()) if y.any() else None,
            "no": float(s[~y].mean()) if (~y).any() else None,
        },
        "reliability": reliability(s, y, n_bins) if n else [],
    }


def reliability_plot(bins: Sequence[dict[str, Any]], path: str | Path, *, title: str = "") -> Path:
    """The reliability diagram of :func:`reliability`'s bins as a PNG: observed share of yes
    against mean P(yes) per bin (marker area ~ count), the diagonal of perfect calibration,
    and the count per bin below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    full = [b for b in bins if b["n"]]
    fig, (ax, hist) = plt.subplots(
        2, 1, figsize=(4.5, 5.5), gridspec_kw={"height_ratios": [3, 1]}, sharex=True
    )
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    if full:
        n_max = max(b["n"] for b in full)
        ax.plot([b["mean_p_yes"] for b in full], [b["share_yes"] for b in full], color="tab:blue", lw=1)
        ax.scatter(
            [b["mean_p_yes"] for b in full],
            [b["share_yes"] for b in full],
            s=[20 + 180 * b["n"] / n_max for b in full],
            color="tab:blue",
            zorder=3,
            label="bins (area ~ count)",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("observed share of yes")
    ax.set_title(title or "reliability of P(yes)")
    ax.legend(loc="upper left", fontsize=8)
    width = (bins[0]["hi"] - bins[0]["lo"]) if bins else 0.1
    hist.bar([b["lo"] for b in bins], [b["n"] for b in bins], width=width, align="edge", color="tab:blue")
    hist.set_xlabel("predicted P(yes)")
    hist.set_ylabel("count")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
