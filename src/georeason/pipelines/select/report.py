"""The selection report: counts per stage, continent and country before and after,
entropy and Gini over countries and geocells (JSON and Markdown), and the map."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from georeason.pipelines.select.config import SelectConfig
from georeason.pipelines.select.stats import distribution, value_counts


def _counts(values: pd.Series) -> dict[str, int]:
    c = value_counts(values)
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
    countries_before = sorted(str(k) for k in value_counts(before["country_code"]).index)
    cells_before = sorted(int(k) for k in value_counts(before["cell"]).index)
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
