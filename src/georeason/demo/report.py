"""The demo's report: per-seed results (:class:`DemoResult`), mean ± spread over seeds,
the claim check (does GRPO beat SFT by more than the spread?), ``report.md``,
``results.json`` and the PNGs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from georeason.demo.config import (
    CDF_PNG,
    MAP_PNG,
    MODEL_ROWS,
    PHOTOS_CSV,
    PHOTOS_DIR,
    REPORT_MD,
    RESULTS_JSON,
    REWARD_PNG,
    ROWS,
    SFT_GRPO,
    SFT_ONLY,
    DemoConfig,
)
from georeason.demo.evaluate import READING_KEYS, locate_command
from georeason.eval.report import markdown_table
from georeason.jsonsafe import dumps

# The world's oracles (docs/synthetic_world.md), each row named as the report's text names it.
ORACLES = {
    "namer": "oracle namer: best seen city, tint not read",
    "centre": "oracle centre: middle of the seen cities, tint not read",
    "snap": "oracle snap: seen city nearest the tint",
    "reader": "oracle reader: the tint's position (ceiling)",
}

# (key in a row's metrics, column header, format)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("acc@1km", "acc@1 km", "pct"),
    ("acc@25km", "acc@25 km", "pct"),
    ("acc@200km", "acc@200 km", "pct"),
    ("acc@750km", "acc@750 km", "pct"),
    ("acc@2500km", "acc@2500 km", "pct"),
    ("median_km", "median km", "km"),
    ("geoscore", "GeoScore", "score"),
    ("country_acc", "country", "pct"),
    ("admin1_acc", "admin1", "pct"),
    ("city_acc", "city", "pct"),
    ("format_ok", "format ok", "pct"),
)
# The held-out table leaves out `city`: a held-out city is never named in training, so
# no model or oracle can name it (0 % by construction). The training-city table keeps it.
HELD_OUT_COLUMNS = tuple(c for c in COLUMNS if c[0] != "city_acc")
# The claim under test: GRPO beats SFT on either of these (True: higher is better).
CLAIM_METRICS = (("acc@25km", True), ("median_km", False))


@dataclass
class DemoResult:
    """What one seed of the demo measured (``results.json``)."""

    seed: int
    rows: dict[str, dict[str, float]]  # table row name -> metrics on the held-out cities
    seen_rows: dict[str, dict[str, float]]  # SFT / GRPO on photos of training cities
    oracles: dict[str, dict[str, float]]  # the world's ceilings on the same test photos
    seconds: dict[str, float]
    reward_steps: list[int]
    rewards: list[float]
    sft_loss: list[float]
    rl_cities: list[str]
    distances: dict[str, list[float]] = field(default_factory=dict)  # row -> error km per test photo
    # model row -> {true_lat, true_lon, pred_lat, pred_lon} per test photo (the world map)
    map_points: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    reading: dict[str, dict[str, float]] = field(default_factory=dict)  # model row -> tint_reading()
    photos: list[dict[str, Any]] = field(default_factory=list)  # write_photos(): file, truth, answers

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DemoResult:
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


def mean_spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for one value) of finite values."""
    v = np.array([x for x in values if math.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def compare(results: Sequence[DemoResult]) -> dict[str, dict[str, Any]]:
    """GRPO vs SFT only, per claim metric: means, spreads (sample std across seeds; None
    with one seed: there is no spread), per-seed gaps (positive: GRPO better), and whether
    GRPO wins by more than the spread.

    The rule: GRPO is better in every seed, and the gap between the means exceeds
    std(SFT) + std(GRPO), i.e. the mean ± std intervals do not overlap. With one
    seed there is no spread to beat, and the verdict says so.
    """
    out: dict[str, dict[str, Any]] = {}
    several = len(results) > 1
    for key, higher in CLAIM_METRICS:
        sft = [r.rows[SFT_ONLY][key] for r in results]
        grpo = [r.rows[SFT_GRPO][key] for r in results]
        (ms, ss), (mg, sg) = mean_spread(sft), mean_spread(grpo)
        gaps = [(g - s) if higher else (s - g) for s, g in zip(sft, grpo, strict=True)]
        gap = (mg - ms) if higher else (ms - mg)
        every = all(x > 0 for x in gaps)
        beats = several and every and gap > ss + sg
        out[key] = {
            "sft_mean": ms,
            "sft_std": ss if several else None,
            "grpo_mean": mg,
            "grpo_std": sg if several else None,
            "gap": gap,
            "per_seed_gap": gaps,
            "better_every_seed": every,
            "beats_spread": beats,
        }
    return out


def _by(gap: float, unit: str) -> str:
    """'23.7 km worse' / '3.5 points better' / 'equal' (gap > 0: GRPO better)."""
    if not math.isfinite(gap):
        return "not measurable"
    if round(abs(gap), 1) == 0:
        return "equal"
    return f"{abs(gap):,.1f}{unit} {'better' if gap > 0 else 'worse'}"


def claim_lines(results: Sequence[DemoResult]) -> list[str]:
    """The claim check in words: GRPO vs SFT only on each claim metric, per seed and
    against the spread across seeds (one seed: no spread, and the line says so)."""
    lines = []
    n = len(results)
    for key, c in compare(results).items():
        km = key == "median_km"
        unit, gap_unit = (" km", " km") if km else (" %", " points")
        name = "median error" if km else "accuracy at 25 km"
        missing = [
            m for m, v in ((SFT_ONLY, c["sft_mean"]), (SFT_GRPO, c["grpo_mean"])) if not math.isfinite(v)
        ]
        if missing:
            lines.append(
                f"{name}: not measurable: {' and '.join(missing)} gave no coordinates at all"
                + (" (a --quick run's models are too small to answer)" if km else "")
            )
            continue
        line = (
            f"{name}: SFT only {_pm(c['sft_mean'], c['sft_std'])}{unit}, "
            f"SFT + GRPO {_pm(c['grpo_mean'], c['grpo_std'])}{unit}"
            + (f" (mean ± std over {n} seeds)" if n > 1 else "")
            + ". "
        )
        by = _by(c["gap"], gap_unit)
        said = "GRPO was as good as SFT" if by == "equal" else f"GRPO was {by} than SFT"
        if n == 1:
            line += f"{said}; one seed, no spread to compare with (run --seeds 3)."
        else:
            verdict = (
                "GRPO wins by more than the spread across seeds"
                if c["beats_spread"]
                else "GRPO better in every seed, but not by more than the spread"
                if c["better_every_seed"]
                else "GRPO does NOT beat SFT"
            )
            per_seed = ", ".join(_by(x, "") for x in c["per_seed_gap"])
            line += f"{said} on average; per seed: {per_seed} -> {verdict}."
        lines.append(line)
    return lines


def _pm(mean: float, std: float | None) -> str:
    if not math.isfinite(mean):
        return "—"
    return f"{mean:,.1f}" if std is None or not math.isfinite(std) else f"{mean:,.1f} ± {std:,.1f}"


def _fmt(value: float, kind: str) -> str:
    if not math.isfinite(value):
        return "—"
    if kind in ("km", "score", "count"):
        return f"{value:,.0f}"
    return f"{value:.1f}"


def _cell(values: Sequence[float], kind: str) -> str:
    m, s = mean_spread(values)
    if len(values) == 1 or not math.isfinite(s):
        return _fmt(m, kind)
    return f"{_fmt(m, kind)} ± {_fmt(s, kind)}"


def table_rows(results: Sequence[DemoResult], *, oracles: bool = True) -> list[list[str]]:
    """Header + one row per method (mean ± std over seeds) + the oracle ceilings, on the
    held-out cities (no `city` column: see :data:`HELD_OUT_COLUMNS`)."""
    rows = [["method", *[c[1] for c in HELD_OUT_COLUMNS]]]
    extra = [k for k in results[0].rows if k not in ROWS and all(k in r.rows for r in results)]
    for name in (*ROWS, *extra):
        rows.append(
            [name, *[_cell([r.rows[name][k] for r in results], kind) for k, _, kind in HELD_OUT_COLUMNS]]
        )
    if oracles:
        for key, label in ORACLES.items():
            cells = []
            for k, _, kind in HELD_OUT_COLUMNS:
                vals = [r.oracles.get(key, {}).get(k, float("nan")) for r in results]
                cells.append(_cell(vals, kind) if any(math.isfinite(v) for v in vals) else "—")
            rows.append([label, *cells])
    return rows


def render_table(results: Sequence[DemoResult], *, markdown: bool = True) -> str:
    rows = table_rows(results)
    if markdown:
        return markdown_table(rows[0], rows[1:])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def photo_folder(results: Sequence[DemoResult], cfg: DemoConfig) -> Path:
    """Where the first seed's run (its photos and models) lies, as run_demo_seeds writes it."""
    return cfg.out if len(results) == 1 else cfg.out / f"seed{results[0].seed}"


def write_report(results: Sequence[DemoResult], cfg: DemoConfig) -> Path:
    """``report.md``, ``results.json`` and the PNGs of one or several seeds, in ``cfg.out``."""
    from georeason.eval.plots import plot_error_cdf, plot_reward_curve, plot_world_maps

    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    seeds = [r.seed for r in results]
    seed_words = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))} pooled"
    plot_reward_curve(
        results[0].reward_steps,
        {f"seed {r.seed}": r.rewards for r in results if len(r.rewards) == len(results[0].reward_steps)},
        out / REWARD_PNG,
        title="GRPO: Geo-R reward r_dist x r_format of sampled answers (training photos)",
        ylabel="mean reward per step",
    )
    plot_error_cdf(
        {
            name: np.concatenate([np.asarray(r.distances[name], dtype=float) for r in results])
            for name in ROWS
        },
        out / CDF_PNG,
        title=f"Held-out cities: error CDF ({seed_words})",
    )
    first = results[0]
    panels = {}
    for name in MODEL_ROWS:
        p = first.map_points.get(name)
        if p:
            arrays = [np.asarray(p[k], dtype=float) for k in ("true_lat", "true_lon", "pred_lat", "pred_lon")]
            panels[name] = (arrays[0], arrays[1], arrays[2], arrays[3])
    if panels:
        plot_world_maps(
            panels,
            out / MAP_PNG,
            title=f"Held-out cities (seed {first.seed}): truth (dots) and answers (crosses)",
        )
    payload = {
        "config": asdict(cfg),
        "seeds": seeds,
        "claim": compare(results),
        "results": [r.to_dict() for r in results],
    }
    # NaN -> null: results.json stays JSON that every parser reads
    (out / RESULTS_JSON).write_text(dumps(payload, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")
    (out / REPORT_MD).write_text(render_markdown(results, cfg), encoding="utf-8")
    return out / REPORT_MD


def _answer(a: dict[str, Any] | None) -> str:
    if not a or a.get("km") is None:
        return "no coordinates"
    return f"{a['place'] or '(no place named)'}, {a['km']:,.0f} km off"


def render_markdown(results: Sequence[DemoResult], cfg: DemoConfig) -> str:
    n = len(results)
    seeds = ", ".join(str(r.seed) for r in results)
    spread = " (mean ± sample std over seeds)" if n > 1 else ""
    lines = [
        "# georeason demo: SFT warm start, then GRPO with Geo-R's reward",
        "",
        f"Tiny Qwen2.5-VL trained from scratch on the synthetic world, CPU only. Seeds: {seeds}.",
        f"Test: {cfg.n_test} photos of **held-out cities** (never seen in training; their regions were). "
        "Greedy decoding, Chain of Region answers parsed by the `geor` protocol. "
        "Accuracies in %; a failed answer counts as a miss; median km over the answers with coordinates.",
        "",
        f"## Held-out cities{spread or ' (one seed: no spread)'}",
        "",
        render_table(results),
        "",
        "No `city` column here: a held-out city's name never appears in training, so no model and "
        "no oracle can name it (0 % by construction); the table of training-city photos below has it.",
        "",
        "The oracle rows read the clues perfectly but know only the training cities "
        "(docs/synthetic_world.md): *namer* names the best seen city, *centre* answers the point "
        "nearest to all seen cities of the region (what a distance reward favours when the tint is "
        "not read; no training answer is that point), *snap* the seen city nearest the position the "
        "road tint encodes, *reader* answers that position (the ceiling).",
        "",
        "## Does GRPO beat SFT only?",
        "",
        "Rule: GRPO better in every seed and the gap between means larger than std(SFT) + std(GRPO).",
        "",
        *[f"- {line}" for line in claim_lines(results)],
        "",
    ]
    if any(r.seen_rows for r in results):
        lines += [
            f"## Photos of training cities ({cfg.eval_seen} per seed){spread}",
            "",
        ]
        rows = []
        for name in MODEL_ROWS:
            vals = [r.seen_rows[name] for r in results if name in r.seen_rows]
            rows.append([name, *[_cell([v[k] for v in vals], kind) for k, _, kind in COLUMNS]])
        lines += [markdown_table(["model", *[c[1] for c in COLUMNS]], rows), ""]
    if any(r.reading for r in results):
        lines += [
            f"## Does the answer follow its reasoning?{spread}",
            "",
            "Held-out photos with a legible road tint and the country named right; the reasoning "
            "names the tint's direction in thirds of the country's box (`north-east road tint`). "
            "Geo-R's reward scores only the coordinates.",
            "",
        ]
        rows = []
        for name in MODEL_ROWS:
            vals = [r.reading[name] for r in results if name in r.reading]
            n = _cell([v["n"] for v in vals], "count")
            rows.append([name, n, *[_cell([v[k] for v in vals], "pct") for k, _ in READING_KEYS]])
        lines += [markdown_table(["model", "photos", *[label for _, label in READING_KEYS]], rows), ""]
    if results[0].photos:
        folder = photo_folder(results, cfg)
        lines += [
            "## Try it on a few photos",
            "",
            f"`{folder / PHOTOS_DIR}` holds {len(results[0].photos)} of the test photos (held-out cities, "
            f"seed {results[0].seed}) as PNGs, their GPS in the EXIF, so that `georeason locate` prints "
            f"its error; `{PHOTOS_CSV}` there lists the truth. The GRPO model on them:",
            "",
            "```",
            locate_command(folder, cfg),
            "```",
            "",
            f"(`--model {folder / 'sft'}` for SFT only.) What the evaluation answered:",
            "",
        ]
        rows = []
        for ph in results[0].photos:
            truth = ", ".join(str(ph[k]) for k in ("city", "admin1", "country") if ph.get(k))
            rows.append(
                [f"`{Path(ph['file']).name}`", truth, *[_answer(ph["answers"].get(m)) for m in MODEL_ROWS]]
            )
        lines += [markdown_table(["photo", "truth", *MODEL_ROWS], rows), ""]
    lines += [
        "## Training",
        "",
        f"![reward curve]({REWARD_PNG})",
        "",
        "Every number the trainers logged is in `sft/train_log.jsonl` and `grpo/train_log.jsonl` "
        "(one JSON line per logging step).",
        "",
    ]
    rows = []
    for r in results:
        k = max(1, len(r.rewards) // 5)
        reward = f"{np.mean(r.rewards[:k]):.3f} → {np.mean(r.rewards[-k:]):.3f}" if r.rewards else "—"
        loss = f"{r.sft_loss[0]:.2f} → {r.sft_loss[-1]:.2f}" if r.sft_loss else "—"
        seconds = [f"{v:.0f}" for v in r.seconds.values()]
        rows.append([r.seed, loss, reward, *seconds, f"{sum(r.seconds.values()):.0f}"])
    header = ["seed", "SFT loss first → last", "GRPO reward, first → last 20% of steps"]
    lines += [
        markdown_table([*header, *[f"{k} s" for k in results[0].seconds], "total s"], rows),
        "",
        "## Plots",
        "",
        f"![error CDF]({CDF_PNG})",
        "",
        f"![world map: SFT only and SFT + GRPO]({MAP_PNG})",
        "",
        "## Settings",
        "",
        markdown_table(
            ["key", "value"], [[k, v] for k, v in asdict(cfg).items() if k not in ("out", "seed", "progress")]
        ),
        "",
        "SFT: TRL `SFTTrainer` via `georeason.train.train_sft` on gold Chain of Region answers; GRPO: TRL "
        "`GRPOTrainer` via `georeason.train.train_grpo` with `rewards: [geor:1]` (r_dist(d) × r_format, "
        "Geo-R's product). "
        + (
            f"SFT's photos are of the training cities but {cfg.rl_cities_per_admin1} per region "
            "(Geo-R's hard RL data: places the warm start cannot name). "
            if cfg.rl_cities_per_admin1
            else "SFT trains on every training photo. "
        )
        + (
            f"GRPO's are {cfg.n_rl} GPS-only photos anywhere within {cfg.rl_spread_km:g} km of the "
            "training cities (`draw_spread_photos`: the land between cities, no landmark)."
            if cfg.rl_pool == "spread"
            else "GRPO's are the photos of the cities kept out of SFT."
        ),
        "",
    ]
    return "\n".join(lines)
