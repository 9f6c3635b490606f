"""`georeason score FILE`: score predicted coordinates against the truth.

Reads CSV, Parquet or JSONL, prints a table (acc@km with bootstrap CIs,
median / mean km, GeoScore, per-continent and hierarchy accuracy) and writes
the full result as JSON. The metric conventions are those of
:mod:`georeason.eval.metrics`.
"""

from __future__ import annotations

import json
import math
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from georeason.cli import app, to_json

if TYPE_CHECKING:
    import pandas as pd

# Auto-detected column names, compared case-insensitively, first match wins.
TRUE_COORD_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("true_lat", "true_lon"),
    ("lat", "lon"),
    ("latitude", "longitude"),
    ("gt_lat", "gt_lon"),
    ("true_latitude", "true_longitude"),
)
PRED_COORD_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("pred_lat", "pred_lon"),
    ("predicted_lat", "predicted_lon"),
    ("pred_latitude", "pred_longitude"),
    ("prediction_lat", "prediction_lon"),
)
TRUE_LABEL_CANDIDATES: dict[str, tuple[str, ...]] = {
    "continent": ("true_continent", "continent"),
    "country": ("true_country_code", "country_code", "true_country", "country"),
    "admin1": ("true_admin1", "admin1", "state"),
    "city": ("true_city", "city"),
}
PRED_LABEL_CANDIDATES: dict[str, tuple[str, ...]] = {
    "continent": ("pred_continent",),
    "country": ("pred_country_code", "pred_country"),
    "admin1": ("pred_admin1", "pred_state"),
    "city": ("pred_city",),
}
SUPPORTED = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
EXAMPLE_OUT = "example.scores.json"
_SOURCE = {"labels": "from the file's true labels", "reverse_geocode": "reverse-geocoded truth"}


def example_path() -> Path:
    """The example predictions shipped in the package (see scripts/make_example_predictions.py)."""
    from importlib.resources import files

    return Path(str(files("georeason.eval").joinpath("example", "predictions.csv")))


def read_table(path: Path) -> tuple[pd.DataFrame, str, list[int]]:
    """Read a CSV / Parquet / JSONL file into a DataFrame.

    CSV cells are read as text (blank = missing) so that codes like "NA"
    (North America, Namibia) survive and bad numbers can be counted rather than
    guessed. Unreadable JSONL lines are skipped and returned (1-based line
    numbers) so the caller can report them.
    """
    import pandas as pd

    if not path.exists():
        raise typer.BadParameter(f"no such file: {path}", param_hint="FILE")
    if path.is_dir():
        raise typer.BadParameter(
            f"{path} is a directory; give a .csv, .parquet or .jsonl file", param_hint="FILE"
        )
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz" and len(suffixes) >= 2:
        suffixes = suffixes[:-1]  # pandas reads .csv.gz / .jsonl.gz transparently
    kind = SUPPORTED.get(suffixes[-1] if suffixes else "")
    if kind is None:
        raise typer.BadParameter(
            f"cannot read {path.name!r}: unsupported file type {path.suffix or '(none)'!r}; "
            "use .csv, .parquet or .jsonl (.ndjson)",
            param_hint="FILE",
        )
    bad_lines: list[int] = []
    try:
        if kind == "csv":
            df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        elif kind == "parquet":
            df = pd.read_parquet(path)
        else:
            import gzip

            opener = gzip.open if path.suffix.lower() == ".gz" else open
            records: list[dict[str, Any]] = []
            with opener(path, "rt", encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        bad_lines.append(lineno)
                        continue
                    if not isinstance(rec, dict):
                        bad_lines.append(lineno)
                        continue
                    records.append(rec)
            df = pd.DataFrame.from_records(records)
    except typer.BadParameter:
        raise
    except Exception as e:  # parser errors of three libraries; say which file and why
        raise typer.BadParameter(f"could not read {path} as {kind}: {e}", param_hint="FILE") from e
    if len(df) == 0:
        raise typer.BadParameter(f"{path} holds no rows", param_hint="FILE")
    return df, kind, bad_lines


def _find(columns: list[str], name: str) -> str | None:
    lower = {c.lower(): c for c in reversed(columns)}  # first occurrence wins
    return lower.get(name.lower())


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
                    raise typer.BadParameter(
                        f"no column {value!r} in the file; columns: {', '.join(columns)}"
                    )
                found.append(col)
            elif auto is not None:
                found.append(auto[i])
            else:
                names = ", ".join(f"{a}/{b}" for a, b in candidates)
                raise typer.BadParameter(
                    f"could not find the {what} columns (looked for {names}); columns: "
                    f"{', '.join(columns)}. Name them with {opts}."
                )
        return found[0], found[1]

    t = pick((true_lat, true_lon), TRUE_COORD_CANDIDATES, "true latitude/longitude", "--true-lat/--true-lon")
    p = pick(
        (pred_lat, pred_lon), PRED_COORD_CANDIDATES, "predicted latitude/longitude", "--pred-lat/--pred-lon"
    )
    if set(t) & set(p):
        raise typer.BadParameter(
            f"the same column is used for truth and prediction: truth {t}, prediction {p}"
        )
    return t[0], t[1], p[0], p[1]


def resolve_label_columns(
    columns: list[str],
    given: dict[str, str | None],
    candidates: dict[str, tuple[str, ...]],
    exclude: set[str],
) -> dict[str, str]:
    """Level -> column for place labels: the given ones (which must exist) or auto-detected."""
    out: dict[str, str] = {}
    for level, cands in candidates.items():
        value = given.get(level)
        if value is not None:
            col = _find(columns, value)
            if col is None:
                raise typer.BadParameter(f"no column {value!r} in the file; columns: {', '.join(columns)}")
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
    import numpy as np
    import pandas as pd

    num = pd.to_numeric(series, errors="coerce").astype(np.float64).to_numpy()
    raw = series.astype(object)
    blank = raw.isna().to_numpy() | np.array([isinstance(v, str) and not v.strip() for v in raw], dtype=bool)
    return num, np.isnan(num) & ~blank


def default_out(path: Path) -> Path:
    """``preds.csv`` -> ``preds.scores.json`` next to it (``.csv.gz`` too)."""
    name = path.name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    stem, dot, suffix = name.rpartition(".")
    if dot and "." + suffix.lower() in SUPPORTED:
        name = stem
    return path.with_name(name + ".scores.json")


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
    import numpy as np
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from georeason.eval.metrics import compute_metrics, valid_coordinates

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

    df, kind, bad_lines = read_table(path)
    columns = [str(c) for c in df.columns]
    df.columns = columns
    t_lat, t_lon, p_lat, p_lon = resolve_coordinate_columns(columns, true_lat, true_lon, pred_lat, pred_lon)
    coord_cols = {t_lat, t_lon, p_lat, p_lon}
    t_labels = resolve_label_columns(
        columns,
        {"continent": true_continent, "country": true_country, "admin1": true_admin1, "city": true_city},
        TRUE_LABEL_CANDIDATES,
        coord_cols,
    )
    p_labels = resolve_label_columns(
        columns,
        {"continent": pred_continent, "country": pred_country, "admin1": pred_admin1, "city": pred_city},
        PRED_LABEL_CANDIDATES,
        coord_cols | set(t_labels.values()),
    )

    tla, _ = to_numbers(df[t_lat])  # unparseable truth is invalid truth: excluded and counted below
    tlo, _ = to_numbers(df[t_lon])
    pla, bad_plat = to_numbers(df[p_lat])
    plo, bad_plon = to_numbers(df[p_lon])
    p_unparseable = int((bad_plat | bad_plon).sum())  # rows, not cells

    bad_truth = np.flatnonzero(~valid_coordinates(tla, tlo))
    if len(bad_truth) == len(df):
        raise typer.BadParameter(
            f"no row of {path.name} has valid true coordinates in columns {t_lat}/{t_lon} "
            f"(need numbers with |lat| <= 90, |lon| <= 180); name the columns with --true-lat/--true-lon"
        )

    true_lab = {k: df[c].to_numpy(dtype=object) for k, c in t_labels.items()} if t_labels else None
    pred_lab = {k: df[c].to_numpy(dtype=object) for k, c in p_labels.items()} if p_labels else None

    try:
        with console.status("scoring…", spinner="dots") if console.is_terminal else nullcontext():
            metrics = compute_metrics(
                tla,
                tlo,
                pla,
                plo,
                thresholds_km=thr,
                n_bootstrap=n_bootstrap,
                confidence=confidence,
                seed=seed,
                per_continent=continents,  # from the truth labels if any, else reverse-geocoded
                true_labels=true_lab,
                pred_labels=pred_lab if true_lab is not None else None,
            )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e

    result = metrics.to_dict()
    result["input"] = {
        "file": str(path) if not example else "georeason example (eval/example/predictions.csv)",
        "format": kind,
        "n_rows": len(df),
        "n_unreadable_lines": len(bad_lines),
        "unreadable_lines": bad_lines[:100],
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
    if p_unparseable:
        notes.append(f"{p_unparseable} predicted coordinates were not numbers (counted as missing)")
    if metrics.overall.n_out_of_range_pred:
        notes.append(
            f"{metrics.overall.n_out_of_range_pred} predictions were out of range (counted as missing)"
        )
    if len(bad_truth):
        notes.append(
            f"{len(bad_truth)} rows excluded: true coordinates missing or out of range (row index, 0-based: {_row_list(bad_truth)})"
        )
    if p_labels and not t_labels:
        notes.append(
            "predicted place labels found but no true ones: no hierarchy accuracy "
            "(name the truth columns with --true-country / --true-city ...)"
        )
    if bad_lines:
        notes.append(f"{len(bad_lines)} JSONL lines unreadable and skipped (line {_row_list(bad_lines)})")
    for note in notes:
        console.print(f"[dim]• {note}[/dim]")

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(to_json(result, indent=2) + "\n", encoding="utf-8")
    except OSError as e:
        raise typer.BadParameter(f"cannot write {out}: {e}", param_hint="--out") from e
    console.print(f"wrote {out}")
