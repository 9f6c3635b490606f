"""`georeason score FILE`: score predicted coordinates against the truth.

Reads CSV, Parquet or JSONL, prints a table (acc@km with bootstrap CIs,
median / mean km, GeoScore, per-continent and hierarchy accuracy) and writes
the full result as JSON. The work is :func:`georeason.eval.score.score_file`; the
metric conventions are those of :mod:`georeason.eval.metrics`.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer

from georeason.commands.common import to_json

app = typer.Typer()  # its commands; georeason.cli adds them to the CLI

EXAMPLE_OUT = "example.scores.json"
_SOURCE = {"labels": "from the file's true labels", "reverse_geocode": "reverse-geocoded truth"}


def parse_thresholds(text: str) -> list[float]:
    """'1,25,200' -> [1.0, 25.0, 200.0], with a clear error for anything else."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if not parts:
        raise typer.BadParameter("give at least one threshold, e.g. --thresholds 1,25,200,750,2500")
    try:
        values = [float(p.lower().removesuffix("km")) for p in parts]
    except ValueError as e:
        raise typer.BadParameter(f"thresholds must be numbers in km separated by commas, got {text!r}") from e
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise typer.BadParameter(f"thresholds must be finite and >= 0 km, got {text!r}")
    if len(set(values)) != len(values):
        raise typer.BadParameter(f"thresholds has duplicates: {text!r}")
    return values


def _row_list(idx: Any, limit: int = 10) -> str:
    items = [str(int(i)) for i in idx[:limit]]
    return ", ".join(items) + (", …" if len(idx) > limit else "")


Opt = typer.Option  # short alias: the signature below is long enough


@app.command("score")
def score(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="Predictions file (.csv, .parquet, .jsonl) with true and predicted lat/lon.",
            show_default=False,
        ),
    ] = None,
    example: Annotated[
        bool, Opt("--example", help="Score the small example file shipped with georeason.")
    ] = False,
    true_lat: Annotated[
        str | None, Opt(help="Column of true latitudes (auto: true_lat, lat, latitude, ...).")
    ] = None,
    true_lon: Annotated[
        str | None, Opt(help="Column of true longitudes (auto: true_lon, lon, longitude, ...).")
    ] = None,
    pred_lat: Annotated[
        str | None, Opt(help="Column of predicted latitudes (auto: pred_lat, predicted_lat, ...).")
    ] = None,
    pred_lon: Annotated[
        str | None, Opt(help="Column of predicted longitudes (auto: pred_lon, predicted_lon, ...).")
    ] = None,
    true_continent: Annotated[
        str | None,
        Opt(
            help="Column of true continents, codes or names (auto: continent); "
            "else from the true country column, else from the true coordinates."
        ),
    ] = None,
    true_country: Annotated[
        str | None, Opt(help="Column of true countries (ISO codes or names) (auto: country_code, country).")
    ] = None,
    true_admin1: Annotated[str | None, Opt(help="Column of true states / provinces (auto: admin1).")] = None,
    true_city: Annotated[str | None, Opt(help="Column of true cities (auto: city).")] = None,
    pred_continent: Annotated[
        str | None, Opt(help="Column of predicted continents (auto: pred_continent).")
    ] = None,
    pred_country: Annotated[
        str | None, Opt(help="Column of predicted countries (auto: pred_country_code, pred_country).")
    ] = None,
    pred_admin1: Annotated[
        str | None, Opt(help="Column of predicted states / provinces (auto: pred_admin1).")
    ] = None,
    pred_city: Annotated[str | None, Opt(help="Column of predicted cities (auto: pred_city).")] = None,
    thresholds: Annotated[str, Opt(help="Accuracy thresholds in km, comma-separated.")] = "1,25,200,750,2500",
    n_bootstrap: Annotated[
        int, Opt(min=0, help="Bootstrap replicates for the confidence intervals (0: none).")
    ] = 1000,
    confidence: Annotated[float, Opt(min=0.5, max=0.999, help="Confidence level of the intervals.")] = 0.95,
    seed: Annotated[int, Opt(help="Seed of the bootstrap.")] = 0,
    continents: Annotated[bool, Opt("--continents/--no-continents", help="Per-continent breakdown.")] = True,
    out: Annotated[
        Path | None,
        Opt(
            "--out",
            "-o",
            help="Where to write the JSON (default: <FILE>.scores.json next to FILE; "
            "./example.scores.json with --example).",
        ),
    ] = None,
) -> None:
    """Score predicted coordinates: acc@km with bootstrap CIs, median / mean km, GeoScore, per continent.

    A blank or unparseable prediction counts as a miss (and is reported); rows
    whose true coordinates are missing or out of range are excluded (and
    counted). Median / mean km are over the predictions made.
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table

    # Imported here: the scorer pulls in pandas, which `georeason --help` should not pay for.
    from georeason.eval.score import ScoreError, default_out, example_path, score_file

    console = Console()
    if example and file is not None:
        raise typer.BadParameter("give FILE or --example, not both")
    if not example and file is None:
        raise typer.BadParameter(
            "give a predictions FILE (.csv, .parquet, .jsonl), or --example", param_hint="FILE"
        )
    path = example_path() if example else file
    assert path is not None
    if out is None:
        out = Path.cwd() / EXAMPLE_OUT if example else default_out(path)
    thr = parse_thresholds(thresholds)

    try:
        with console.status("scoring…", spinner="dots") if console.is_terminal else nullcontext():
            scored = score_file(
                path,
                true_lat=true_lat,
                true_lon=true_lon,
                pred_lat=pred_lat,
                pred_lon=pred_lon,
                true_labels={
                    "continent": true_continent,
                    "country": true_country,
                    "admin1": true_admin1,
                    "city": true_city,
                },
                pred_labels={
                    "continent": pred_continent,
                    "country": pred_country,
                    "admin1": pred_admin1,
                    "city": pred_city,
                },
                thresholds_km=thr,
                n_bootstrap=n_bootstrap,
                confidence=confidence,
                seed=seed,
                per_continent=continents,
                display_name="georeason example (eval/example/predictions.csv)" if example else None,
            )
    except ScoreError as e:
        raise typer.BadParameter(str(e), param_hint=e.param) from e
    metrics = scored.metrics

    # ---- print
    title = f"georeason score: {path.name}" + (" (example)" if example else "")
    table = Table(title=title, title_justify="left")
    rows = metrics.table(hierarchy=False)
    for h in rows[0]:
        table.add_column(h, justify="left" if h == "metric" else "right")
    for r in rows[1:]:
        table.add_row(*r)
    console.print(table)
    if metrics.per_continent:
        ct = Table(
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,  # fits 80 columns with five thresholds
            title=f"accuracy per continent of the true location ({_SOURCE.get(str(metrics.continent_source), '')})",
            title_justify="left",
        )
        crow = metrics.continent_table()
        for i, h in enumerate(crow[0]):
            ct.add_column(h, justify="left" if i == 0 else "right")
        for r in crow[1:]:
            ct.add_row(*r)
        console.print(ct)
    if metrics.hierarchy:
        ht = Table(title="hierarchy accuracy (place labels)", title_justify="left")
        hrow = metrics.hierarchy_table()
        for i, h in enumerate(hrow[0]):
            ht.add_column(h, justify="left" if i == 0 else "right")
        for r in hrow[1:]:
            ht.add_row(*r)
        console.print(ht)

    notes = [
        f"median / mean km are over the {metrics.overall.n_predicted} predictions made; "
        f"{metrics.n_missing} missing predictions count as misses (GeoScore 0)"
    ]
    if scored.n_unparseable_pred:
        notes.append(
            f"{scored.n_unparseable_pred} predicted coordinates were not numbers (counted as missing)"
        )
    if metrics.overall.n_out_of_range_pred:
        notes.append(
            f"{metrics.overall.n_out_of_range_pred} predictions were out of range (counted as missing)"
        )
    bad_truth = scored.bad_truth
    if bad_truth:
        notes.append(
            f"{len(bad_truth)} rows excluded: true coordinates missing or out of range (row index, 0-based: {_row_list(bad_truth)})"
        )
    if scored.pred_labels and not scored.true_labels:
        notes.append(
            "predicted place labels found but no true ones: no hierarchy accuracy "
            "(name the truth columns with --true-country / --true-city ...)"
        )
    bad_lines = scored.table.bad_lines
    if bad_lines:
        notes.append(f"{len(bad_lines)} JSONL lines unreadable and skipped (line {_row_list(bad_lines)})")
    for note in notes:
        console.print(f"[dim]• {note}[/dim]")

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(to_json(scored.result, indent=2) + "\n", encoding="utf-8")
    except OSError as e:
        raise typer.BadParameter(f"cannot write {out}: {e}", param_hint="--out") from e
    console.print(f"wrote {out}")


__all__ = ["parse_thresholds", "score"]
