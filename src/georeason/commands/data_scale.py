"""`georeason data label | select | distill | rollouts`: building training sets from MP-16 at scale.

See :mod:`georeason.pipelines.label`, :mod:`georeason.pipelines.select` and :mod:`georeason.pipelines.distill`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from georeason.commands.common import to_json
from georeason.commands.options import ConfigOptions

app = typer.Typer()  # its commands; georeason.cli adds them to the `data` group

#: data select's settings (SelectConfig) and data distill's (DistillConfig, its filters
#: included): flags, --config FILE and --set KEY=VALUE.
SELECT: ConfigOptions[Any] = ConfigOptions("georeason.pipelines.select:SelectConfig", panel="Selection")
DISTILL: ConfigOptions[Any] = ConfigOptions("georeason.pipelines.distill:DistillConfig", panel="Distillation")


def _log(msg: str) -> None:
    typer.echo(msg, err=True)


@app.command("label")
def label_cmd(
    src: Annotated[
        Path, typer.Argument(help="MP-16-style table: .csv, .csv.gz or .parquet (IMG_ID, LAT, LON, ...).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Labelled table to write: .parquet or .csv.")],
    chunk_size: Annotated[int, typer.Option("--chunk-size", min=1, help="Rows labelled at once.")] = 500_000,
    id_col: Annotated[
        str | None, typer.Option("--id-col", help="Id column (default: auto, e.g. IMG_ID).")
    ] = None,
    lat_col: Annotated[str | None, typer.Option("--lat-col", help="Latitude column (default: auto).")] = None,
    lon_col: Annotated[
        str | None, typer.Option("--lon-col", help="Longitude column (default: auto).")
    ] = None,
    prefix: Annotated[str, typer.Option("--prefix", help="Prefix of the added column names.")] = "",
    replace_existing: Annotated[
        bool, typer.Option("--replace-existing", help="Replace input columns named like the added ones.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Add continent, country_code, country, admin1, city and on_land to every row, streaming in chunks.

    Rows with missing, non-numeric or out-of-range coordinates are kept with empty labels and
    listed with their reason in OUT.errors.csv. CSV lines that cannot be a row (wrong number
    of fields, bytes that are not UTF-8) are left out, listed there too, and the command then
    exits with status 3 once the output is written.
    """
    from georeason.pipelines.label import LabelError, label_table

    try:
        s = label_table(
            src,
            out,
            chunk_size=chunk_size,
            id_col=id_col,
            lat_col=lat_col,
            lon_col=lon_col,
            prefix=prefix,
            replace_existing=replace_existing,
            log=_log,
        )
    except (LabelError, FileNotFoundError) as e:
        typer.secho(f"error: {e}", err=True, fg="red")
        raise typer.Exit(2) from e
    if as_json:
        d = dict(s.__dict__)
        d["rows_per_second"] = s.rows_per_second
        typer.echo(to_json(d, indent=2))
    else:
        left_out = f"; {s.n_malformed:,} input lines left out" if s.n_malformed else ""
        typer.echo(
            f"{s.n_rows:,} rows labelled in {s.seconds:.1f} s ({s.rows_per_second:,.0f} rows/s) -> {s.output}; "
            f"{s.n_countries} countries, {s.n_on_land:,} on land{left_out}"
        )
        if s.n_bad or s.n_malformed:
            what = [f"{s.n_bad:,} bad rows kept with empty labels"] if s.n_bad else []
            what += [f"{s.n_malformed:,} lines left out of the output"] if s.n_malformed else []
            typer.secho(f"{' and '.join(what)}, listed in {s.errors_path}:", fg="yellow", err=True)
            for reason, count in s.bad_by_reason.items():
                typer.secho(f"    {count:>10,}  {reason}", fg="yellow", err=True)
        else:
            typer.echo("no bad rows")
    if s.n_malformed:
        raise typer.Exit(3)  # the output lacks input lines: a pipeline must not take it for complete


@app.command("select", cls=SELECT.command_class)
def select_cmd(
    ctx: typer.Context,
    src: Annotated[
        Path, typer.Argument(help="Table (.csv / .parquet, e.g. from `data label`) or datasets folder.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Selected table / datasets folder (input's format).")
    ],
    split: Annotated[str, typer.Option("--split", help="Split of a DatasetDict input.")] = "train",
    id_col: Annotated[str | None, typer.Option("--id-col", help="Id column (default: auto).")] = None,
    lat_col: Annotated[str | None, typer.Option("--lat-col", help="Latitude column (default: auto).")] = None,
    lon_col: Annotated[
        str | None, typer.Option("--lon-col", help="Longitude column (default: auto).")
    ] = None,
    plot: Annotated[bool, typer.Option("--plot/--no-plot", help="Draw the map.")] = True,
) -> None:
    """Select a training set: difficulty (flat GRPO groups), Geo-R hard set, caps, balanced fill.

    Writes OUT and OUT.report.md / OUT.report.json / OUT.map.png.
    """
    from georeason.pipelines.select import SelectError, report_paths, run_select
    from georeason.tables import TableError

    cfg = SELECT.resolve(ctx)
    try:
        res = run_select(
            src, out, cfg, id_col=id_col, lat_col=lat_col, lon_col=lon_col, split=split, plot=plot, log=_log
        )
    except (SelectError, TableError, FileNotFoundError) as e:
        typer.secho(f"error: {e}", err=True, fg="red")
        raise typer.Exit(2) from e
    r = res.report
    typer.echo(f"selected {r['n_after']:,} of {r['n_before']:,} rows -> {out}")
    for k, v in r["stages"].items():
        if isinstance(v, dict):
            for kk, vv in v.items():
                typer.echo(f"    {k}: {kk}: {vv}")
        elif k not in ("input rows", "selected rows"):
            typer.echo(f"    {k}: {v:,}")
    d = r["distribution"]
    for key in ("countries", "geocells"):
        b, a = d[key]["before"], d[key]["after"]
        typer.echo(
            f"    {key}: entropy {b['entropy_bits']:.2f} -> {a['entropy_bits']:.2f} bits, "
            f"Gini {b['gini']:.3f} -> {a['gini']:.3f}, groups {b['n_groups']} -> {a['n_groups']}"
        )
    paths = report_paths(out)
    typer.echo(f"report: {paths['md']} / {paths['json']}" + (f" / {paths['map']}" if plot else ""))


@app.command("rollouts")
def rollouts_cmd(
    src: Annotated[
        Path, typer.Argument(help="TRL's completions folder (output_dir/completions) or a parquet file.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Rollout log to write (JSONL).")],
    id_column: Annotated[str, typer.Option("--id-column", help="Column holding the sample id.")] = "id",
    reward: Annotated[
        list[str] | None,
        typer.Option("--reward", help="Reward column (repeatable; default: all numeric ones)."),
    ] = None,
    weight: Annotated[
        list[float] | None, typer.Option("--weight", help="Weight per --reward (TRL's reward_weights).")
    ] = None,
) -> None:
    """Convert TRL GRPO completion logs (log_completions=True) into the rollout log `data select --rollouts` reads."""
    from georeason.pipelines.select import SelectError, convert_trl_completions

    try:
        n = convert_trl_completions(
            src, out, id_column=id_column, reward_columns=reward, reward_weights=weight
        )
    except SelectError as e:
        typer.secho(f"error: {e}", err=True, fg="red")
        raise typer.Exit(2) from e
    typer.echo(f"{n:,} reward groups -> {out}")


@app.command("distill", cls=DISTILL.command_class)
def distill_cmd(
    ctx: typer.Context,
    src: Annotated[
        Path,
        typer.Argument(help="Images to distil: datasets folder, or .csv/.parquet/.jsonl with image paths."),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Run folder (records.jsonl, run.json, dataset/, summary.json)."),
    ],
    split: Annotated[str, typer.Option("--split", help="Split of a DatasetDict input.")] = "train",
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Distil the first N images only.")
    ] = None,
    image_root: Annotated[
        Path | None, typer.Option("--image-root", help="Folder of relative image paths.")
    ] = None,
    id_col: Annotated[str | None, typer.Option("--id-col", help="Id column (default: auto).")] = None,
    image_col: Annotated[
        str | None, typer.Option("--image-col", help="Image column (default: auto).")
    ] = None,
    lat_col: Annotated[str | None, typer.Option("--lat-col", help="Latitude column (default: auto).")] = None,
    lon_col: Annotated[
        str | None, typer.Option("--lon-col", help="Longitude column (default: auto).")
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Redo images where a teacher failed.")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start the run folder again.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Build an MP16-Reason-style dataset (GLOBE): K teachers answer and judge locatability; keep agreement.

    Resumable: rerun the same command after any interruption; filters (--min-agree, --agree-on,
    --truth-level, --max-km, --min-locatability) may change on a rerun without asking the teachers again.
    """
    from georeason.pipelines.distill import DistillError, run_distill
    from georeason.runs import RunLockedError

    cfg = DISTILL.resolve(ctx)
    try:
        s = run_distill(
            src,
            out,
            cfg,
            split=split,
            id_col=id_col,
            image_col=image_col,
            lat_col=lat_col,
            lon_col=lon_col,
            image_root=image_root,
            limit=limit,
            retry_failed=retry_failed,
            overwrite=overwrite,
            log=_log,
        )
    except (DistillError, RunLockedError, FileNotFoundError, ValueError) as e:
        typer.secho(f"error: {e}", err=True, fg="red")
        raise typer.Exit(2) from e
    if as_json:
        typer.echo(to_json(s.to_dict(), indent=2))
        return
    typer.echo(
        f"{s.n_images} images: {s.n_done_before} done before, {s.n_new} now; kept {s.n_kept} -> {s.dataset_path}"
    )
    for reason, n in s.dropped.items():
        typer.echo(f"    dropped {n:>7,}  {reason}")
    for name, n in s.teacher_failures.items():
        typer.secho(f"    teacher {name} failed on {n} images (see records.jsonl)", fg="yellow", err=True)
    for name, n in s.judge_failures.items():
        typer.secho(f"    teacher {name} gave no locatability judgement on {n} images", fg="yellow", err=True)
    sys.stdout.flush()


__all__ = ["distill_cmd", "label_cmd", "rollouts_cmd", "select_cmd"]
