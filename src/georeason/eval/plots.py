"""Plots of an evaluation or a training run: arrays in, PNG out.

- :func:`plot_error_cdf` — share of images within d km against d (log scale),
  with the IM2GPS thresholds marked; one curve per model, the share within each
  threshold in the legend.
- :func:`plot_world_map` — true locations and predictions on country outlines,
  joined by a line coloured by the error, lon/lat in degrees on the axes.
- :func:`plot_world_maps` — the same for several models side by side, on the
  same axes (one panel per model), so that their differences show.
- :func:`plot_reward_curve` — reward (one or several) against training step,
  raw and smoothed.

matplotlib is imported inside each function, through its object API
(``Figure`` + the Agg canvas) rather than ``pyplot``: no global backend is
switched, nothing opens a window, and the functions are safe in threads and
on headless machines. Country outlines come from the Natural Earth polygons
the geography module ships (simplified once, cached on disk), so no cartopy
and no download.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from georeason.eval.metrics import DEFAULT_THRESHOLDS_KM
from georeason.geo.countries import world_outlines

#: The error bands of the world maps (upper bound in km, colour, label): the report's PNG and
#: ``georeason view``'s interactive map colour the true -> predicted lines alike.
ERROR_BANDS: tuple[tuple[float, str, str], ...] = (
    (25.0, "#2ca02c", "≤ 25 km"),
    (200.0, "#bcbd22", "≤ 200 km"),
    (750.0, "#ff7f0e", "≤ 750 km"),
    (math.inf, "#d62728", "> 750 km"),
)
#: The band of an image without a prediction (:func:`error_band`).
NO_PREDICTION_BAND = len(ERROR_BANDS)


def error_band(distance_km: ArrayLike) -> np.ndarray:
    """Index into :data:`ERROR_BANDS` of each error (a band holds its upper bound: 25 km is
    band 0); :data:`NO_PREDICTION_BAND` where the distance is missing, NaN or negative.

    >>> error_band([0.0, 25.0, 25.1, 750.0, 9000.0, float("nan")]).tolist()
    [0, 0, 1, 2, 3, 4]
    """
    d = np.asarray(distance_km, dtype=np.float64).reshape(-1)
    edges = np.array([hi for hi, _, _ in ERROR_BANDS[:-1]])
    out = np.searchsorted(edges, np.where(np.isfinite(d), d, 0.0), side="left")
    out[~(np.isfinite(d) & (d >= 0))] = NO_PREDICTION_BAND
    return out.astype(np.int64)


_THRESHOLD_NAMES = {1.0: "street", 25.0: "city", 200.0: "region", 750.0: "country", 2500.0: "continent"}
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f")


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, format="png", bbox_inches="tight")
    return p


def _series(values: ArrayLike | Mapping[str, ArrayLike], default: str) -> dict[str, np.ndarray]:
    if isinstance(values, Mapping):
        return {str(k): np.asarray(v, dtype=np.float64).reshape(-1) for k, v in values.items()}
    return {default: np.asarray(values, dtype=np.float64).reshape(-1)}


def plot_error_cdf(
    distances_km: ArrayLike | Mapping[str, ArrayLike],
    path: str | os.PathLike[str],
    *,
    thresholds_km: Sequence[float] = DEFAULT_THRESHOLDS_KM,
    title: str | None = None,
    min_km: float = 0.1,
    max_km: float = 20_038.0,
) -> Path:
    """Cumulative share of images with error <= d, against d in km (log scale).

    Args:
        distances_km: one array of errors, or ``{label: array}`` for several models.
            NaN / inf = no prediction: counted in the denominator, never reached,
            so a curve tops out at the share of images predicted (as accuracy does).
        path: PNG to write.
        thresholds_km: vertical lines (IM2GPS: 1 / 25 / 200 / 750 / 2500 km); the
            legend gives each curve's share of images within each of them.
        min_km, max_km: x range (errors below ``min_km`` are drawn at it;
            20,038 km is half the Earth's circumference, the largest error).

    Returns the path written.

    >>> plot_error_cdf({"model": [0.5, 30, 800, float("nan")]}, tmp_path / "cdf.png")  # doctest: +SKIP
    """
    series = _series(distances_km, "model")
    fig = _figure(7.0, 4.3)
    ax = fig.add_subplot(1, 1, 1)
    for k, (label, d) in enumerate(series.items()):
        n = d.size
        if n == 0:
            continue
        ok = np.sort(np.clip(d[np.isfinite(d)], min_km, max_km))
        # Step curve: y jumps by 1/n at each error; the end value is the share predicted.
        x = np.concatenate([[min_km], ok, [max_km]])
        y = np.concatenate([[0.0], np.arange(1, ok.size + 1) / n, [ok.size / n]])
        acc = [float((d <= t).sum()) / n for t in thresholds_km]
        desc = " / ".join(f"{a * 100:.1f}" for a in acc)
        ax.step(x, y, where="post", color=_COLORS[k % len(_COLORS)], lw=1.8, label=f"{label}: {desc}")
    for t in thresholds_km:
        ax.axvline(t, color="0.6", lw=0.8, ls="--", zorder=0)
        name = _THRESHOLD_NAMES.get(float(t), "")
        ax.text(
            t,
            1.01,
            f"{t:g} km" + (f"\n{name}" if name else ""),
            ha="center",
            va="bottom",
            fontsize=7,
            color="0.35",
            transform=ax.get_xaxis_transform(),
        )
    ax.set_xscale("log")
    ax.set_xlim(min_km, max_km)
    ax.set_ylim(0, 1)
    ax.set_xlabel("error (km, log scale)")
    ax.set_ylabel("share of images within the error")
    ax.grid(True, which="major", alpha=0.25)
    # The legend's numbers are the share within each threshold, in the thresholds' order.
    within = " / ".join(f"{t:g}" for t in thresholds_km)
    ax.legend(
        loc="upper left",
        fontsize=8,
        frameon=False,
        title=f"% of images within {within} km",
        title_fontsize=8,
        alignment="left",
    )
    if title:
        ax.set_title(title, pad=24, fontsize=10)
    return _save(fig, path)


def _lon_label(x: float, _pos: Any = None) -> str:
    x = (x + 180.0) % 360.0 - 180.0 if abs(x) > 180 else x
    return "0°" if x == 0 else f"{abs(x):g}°{'E' if x > 0 else 'W'}"


def _lat_label(y: float, _pos: Any = None) -> str:
    return "0°" if y == 0 else f"{abs(y):g}°{'N' if y > 0 else 'S'}"


def _points(
    true_lat: ArrayLike, true_lon: ArrayLike, pred_lat: ArrayLike, pred_lon: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    tla, tlo, pla, plo = (
        np.asarray(a, dtype=np.float64).reshape(-1) for a in (true_lat, true_lon, pred_lat, pred_lon)
    )
    if not (tla.size == tlo.size == pla.size == plo.size):
        raise ValueError(
            f"arrays differ in length: true_lat {tla.size}, true_lon {tlo.size}, pred_lat {pla.size}, pred_lon {plo.size}"
        )
    return tla, tlo, pla, plo


def _draw_world_map(
    ax: Any,
    points: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    *,
    max_points: int,
    seed: int,
    outlines: bool,
    ylabel: bool = True,
) -> None:
    """Truth, predictions and error lines of one model on ``ax`` (plate carrée, degrees)."""
    from matplotlib.collections import LineCollection, PolyCollection
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    from georeason.geo import haversine_km

    tla, tlo, pla, plo = points
    n_all = tla.size
    idx = np.arange(n_all)
    if n_all > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(n_all, size=max_points, replace=False))
    tla, tlo, pla, plo = tla[idx], tlo[idx], pla[idx], plo[idx]
    has = np.isfinite(pla) & np.isfinite(plo) & (np.abs(pla) <= 90) & (np.abs(plo) <= 180)
    d = np.full(tla.size, np.nan)
    if has.any():
        d[has] = haversine_km(tla[has], tlo[has], pla[has], plo[has])

    ax.set_facecolor("#eef4f8")
    if outlines:
        polys = world_outlines()
        ax.add_collection(
            PolyCollection(polys, facecolors="#f4f1ea", edgecolors="#b9b4a8", linewidths=0.3, zorder=1)
        )
    band = error_band(d)
    handles = []
    for k, (_, color, label) in enumerate(ERROR_BANDS):
        sel = has & (band == k)
        if not sel.any():
            continue
        # A line across the antimeridian would cross the whole map: draw it to the map edge
        # from each end instead (what a wrapped map shows).
        segs = []
        for a, b, c, e in zip(tlo[sel], tla[sel], plo[sel], pla[sel], strict=True):
            if abs(c - a) <= 180:
                segs.append([(a, b), (c, e)])
            else:
                c2 = c - 360 if c > a else c + 360
                segs.append([(a, b), (c2, e)])
                a2 = a - 360 if a > c else a + 360
                segs.append([(a2, b), (c, e)])
        ax.add_collection(LineCollection(segs, colors=color, linewidths=0.6, alpha=0.55, zorder=2))
        ax.scatter(plo[sel], pla[sel], s=14, marker="x", color=color, linewidths=0.9, zorder=4)
        handles.append(Line2D([], [], color=color, lw=1.5, label=f"{label} ({int(sel.sum())})"))
    ax.scatter(tlo, tla, s=9, color="black", zorder=3)
    handles.insert(0, Line2D([], [], marker="o", ls="", color="black", markersize=4, label="truth"))
    if (~has).any():
        ax.scatter(tlo[~has], tla[~has], s=42, facecolors="none", edgecolors="0.45", linewidths=1.0, zorder=3)
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                ls="",
                markerfacecolor="none",
                markeredgecolor="0.45",
                markersize=7,
                label=f"no prediction ({int((~has).sum())})",
            )
        )
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_aspect("equal")
    ax.set_xticks(range(-180, 181, 60))
    ax.set_yticks(range(-90, 91, 30))
    ax.xaxis.set_major_formatter(FuncFormatter(_lon_label))
    ax.yaxis.set_major_formatter(FuncFormatter(_lat_label))
    ax.set_xlabel("longitude", fontsize=8)
    if ylabel:
        ax.set_ylabel("latitude", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, alpha=0.2, lw=0.5)
    shown = f"{idx.size} of {n_all} images (random sample)" if idx.size < n_all else f"{n_all} images"
    ax.legend(handles=handles, loc="lower left", fontsize=7, title=shown, title_fontsize=7, framealpha=0.9)


def plot_world_map(
    true_lat: ArrayLike,
    true_lon: ArrayLike,
    pred_lat: ArrayLike,
    pred_lon: ArrayLike,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    max_points: int = 3000,
    seed: int = 0,
    outlines: bool = True,
) -> Path:
    """Truth (dots) and predictions (crosses) on a world map, joined by error-coloured lines.

    Equirectangular (plate carrée) projection, longitude and latitude in degrees on
    the axes; lines go green (<= 25 km), yellow (<= 200), orange (<= 750), red
    (> 750 km). Images without a prediction are drawn as grey rings at their true
    location. With more than ``max_points`` images a seeded random sample is drawn
    (the legend says so).

    Returns the path written.
    """
    points = _points(true_lat, true_lon, pred_lat, pred_lon)
    fig = _figure(11.0, 5.8)
    ax = fig.add_subplot(1, 1, 1)
    _draw_world_map(ax, points, max_points=max_points, seed=seed, outlines=outlines)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path)


def plot_world_maps(
    panels: Mapping[str, tuple[ArrayLike, ArrayLike, ArrayLike, ArrayLike]],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    max_points: int = 3000,
    seed: int = 0,
    outlines: bool = True,
) -> Path:
    """:func:`plot_world_map` for several models side by side, one panel each, same axes.

    Args:
        panels: ``{panel title: (true_lat, true_lon, pred_lat, pred_lon)}``, in the
            order to draw (left to right).
        title: the figure's title, above the panels.

    Returns the path written.
    """
    if not panels:
        raise ValueError("plot_world_maps needs at least one panel")
    drawn = {name: _points(*arrays) for name, arrays in panels.items()}
    fig = _figure(7.2 * len(drawn), 4.4)
    first = None
    for k, (name, points) in enumerate(drawn.items()):
        ax = fig.add_subplot(1, len(drawn), k + 1, sharex=first, sharey=first)
        first = first or ax
        _draw_world_map(ax, points, max_points=max_points, seed=seed, outlines=outlines, ylabel=k == 0)
        ax.set_title(name, fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def _moving_average(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` finite values (NaN-aware; same length as ``y``)."""
    ok = np.isfinite(y)
    vals = np.where(ok, y, 0.0)
    c = np.concatenate([[0.0], np.cumsum(vals)])
    k = np.concatenate([[0], np.cumsum(ok)])
    i = np.arange(1, y.size + 1)
    lo = np.maximum(0, i - window)
    cnt = k[i] - k[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, (c[i] - c[lo]) / cnt, np.nan)


def plot_reward_curve(
    steps: ArrayLike,
    rewards: ArrayLike | Mapping[str, ArrayLike],
    path: str | os.PathLike[str],
    *,
    window: int | None = None,
    title: str | None = None,
    ylabel: str = "reward",
) -> Path:
    """Reward against training step: thin raw curve, thick trailing moving average.

    Args:
        steps: x values (training steps), one per reward value.
        rewards: one array, or ``{name: array}`` for several rewards (each as long as ``steps``).
        window: moving-average window (default: ~5% of the steps, at least 1).

    Returns the path written.
    """
    from matplotlib.ticker import MaxNLocator

    x = np.asarray(steps, dtype=np.float64).reshape(-1)
    series = _series(rewards, ylabel)
    for name, y in series.items():
        if y.size != x.size:
            raise ValueError(f"reward {name!r} has {y.size} values for {x.size} steps")
    w = window if window is not None else max(1, round(0.05 * x.size))
    if w < 1:
        raise ValueError(f"window must be >= 1, got {w}")
    fig = _figure(7.0, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    for k, (name, y) in enumerate(series.items()):
        color = _COLORS[k % len(_COLORS)]
        ax.plot(x, y, color=color, lw=0.7, alpha=0.35)
        ax.plot(x, _moving_average(y, w), color=color, lw=2.0, label=f"{name} (mean of last {w})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.25)
    ax.legend(fontsize=8, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path)


def plot_confidence(
    curves: Mapping[str, Any], path: str | os.PathLike[str], *, title: str | None = None
) -> Path:
    """Two panels from :func:`georeason.eval.metrics.confidence_curves`: reliability (mean
    confidence of each bin against its accuracy, the diagonal = calibrated) and coverage
    (accuracy over the most confident X % of images)."""
    thr = f"{curves['threshold_km']:g} km"
    fig = _figure(10.0, 4.0)
    rel, cov = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    bins = [b for b in curves["deciles"] if b["confidence"] is not None]
    rel.plot([0, 1], [0, 1], color="#7f7f7f", lw=1, ls="--", label="calibrated")
    rel.plot(
        [b["confidence"] for b in bins],
        [b["accuracy"] for b in bins],
        marker="o",
        color=_COLORS[0],
        label="bins of equal size",
    )
    rel.set_xlim(0, 1.02)
    rel.set_ylim(0, 1.02)
    rel.set_xlabel("confidence: share of samples within 25 km of the answer")
    rel.set_ylabel(f"accuracy within {thr}")
    rel.set_title("Reliability", fontsize=10)
    rel.legend(fontsize=8, frameon=False, loc="upper left")
    points = [c for c in curves["coverage"] if c["accuracy"] is not None]
    cov.plot(
        [100 * c["coverage"] for c in points],
        [100 * c["accuracy"] for c in points],
        marker="o",
        color=_COLORS[1],
    )
    cov.set_xlim(0, 102)
    cov.set_ylim(0, 102)
    cov.set_xlabel("coverage: % of images answered, most confident first")
    cov.set_ylabel(f"% within {thr} among them")
    cov.set_title("Coverage", fontsize=10)
    for ax in (rel, cov):
        ax.grid(True, alpha=0.25)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


__all__ = [
    "ERROR_BANDS",
    "NO_PREDICTION_BAND",
    "error_band",
    "plot_confidence",
    "plot_error_cdf",
    "plot_reward_curve",
    "plot_world_map",
    "plot_world_maps",
    "world_outlines",
]
