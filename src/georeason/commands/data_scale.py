"""`georeason data label | select | distill | rollouts`: building training sets from MP-16 at scale.

See :mod:`georeason.pipelines.label`, :mod:`georeason.pipelines.select` and :mod:`georeason.pipelines.distill`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from georeason.cli import to_json
from georeason.commands.data_cmd import data_app


def _log(msg: str) -> None:
    typer.echo(msg, err=True)


@data_app.command("label")
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


@data_app.command("select")
def select_cmd(
    src: Annotated[
        Path, typer.Argument(help="Table (.csv / .parquet, e.g. from `data label`) or datasets folder.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Selected table / datasets folder (input's format).")
    ],
    correctness: Annotated[
        Path | None,
        typer.Option(
            "--correctness", help="Base-model eval run (predictions.jsonl or its folder): Geo-R hard set."
        ),
    ] = None,
    threshold_km: Annotated[float, typer.Option("--threshold-km", help="Correct = error <= this.")] = 25.0,
    hotspots: Annotated[
        int, typer.Option("--hotspots", min=0, help="Correct samples used as hotspots.")
    ] = 100_000,
    radius_km: Annotated[
        float, typer.Option("--radius-km", help="Drop rows within this of a hotspot.")
    ] = 200.0,
    rollouts: Annotated[
        Path | None,
        typer.Option(
            "--rollouts", help='GRPO rollout log (JSONL {"id", "rewards": [...], "step"}): difficulty.'
        ),
    ] = None,
    std_eps: Annotated[float, typer.Option("--std-eps", help="Flat group: reward std <= this.")] = 1e-6,
    difficulty_mode: Annotated[
        str,
        typer.Option("--difficulty-mode", help="last: judge each id's latest group; all: every group flat."),
    ] = "last",
    max_per_country: Annotated[int | None, typer.Option("--max-per-country", min=0)] = None,
    max_per_admin1: Annotated[int | None, typer.Option("--max-per-admin1", min=0)] = None,
    max_per_cell: Annotated[int | None, typer.Option("--max-per-cell", min=0)] = None,
    cell_km: Annotated[
        float, typer.Option("--cell-km", help="Equal-area geocell side at the equator, km.")
    ] = 100.0,
    target: Annotated[
        int | None, typer.Option("--target", min=0, help="Rows to keep, favouring under-represented regions.")
    ] = None,
    balance_by: Annotated[
        str,
        typer.Option(
            "--balance-by",
            help="Levels of the balanced fill, coarse to fine (continent, country_code, admin1, cell).",
        ),
    ] = "country_code,cell",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    split: Annotated[str, typer.Option("--split", help="Split of a DatasetDict input.")] = "train",
    id_col: Annotated[str | None, typer.Option("--id-col")] = None,
    lat_col: Annotated[str | None, typer.Option("--lat-col")] = None,
    lon_col: Annotated[str | None, typer.Option("--lon-col")] = None,
    label_prefix: Annotated[
        str, typer.Option("--label-prefix", help="Prefix of the label columns (`data label --prefix`).")
    ] = "",
    plot: Annotated[bool, typer.Option("--plot/--no-plot", help="Draw the map.")] = True,
) -> None:
    """Select a training set: difficulty (flat GRPO groups), Geo-R hard set, caps, balanced fill.

    Writes OUT and OUT.report.md / OUT.report.json / OUT.map.png.
    """
    from georeason.pipelines.label import LabelError
    from georeason.pipelines.select import SelectConfig, SelectError, report_paths, run_select

    try:
        cfg = SelectConfig(
            correctness=str(correctness) if correctness else None,
            threshold_km=threshold_km,
            n_hotspots=hotspots,
            radius_km=radius_km,
            rollouts=str(rollouts) if rollouts else None,
            std_eps=std_eps,
            difficulty_mode=difficulty_mode,
            max_per_country=max_per_country,
            max_per_admin1=max_per_admin1,
            max_per_cell=max_per_cell,
            cell_km=cell_km,
            target=target,
            balance_by=tuple(k.strip() for k in balance_by.split(",") if k.strip()),
            seed=seed,
            label_prefix=label_prefix,
        )
        res = run_select(
            src, out, cfg, id_col=id_col, lat_col=lat_col, lon_col=lon_col, split=split, plot=plot, log=_log
        )
    except (SelectError, LabelError, FileNotFoundError) as e:
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


@data_app.command("rollouts")
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


@data_app.command("distill")
def distill_cmd(
    src: Annotated[
        Path,
        typer.Argument(help="Images to distil: datasets folder, or .csv/.parquet/.jsonl with image paths."),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Run folder (records.jsonl, run.json, dataset/, summary.json)."),
    ],
    teacher: Annotated[
        list[str],
        typer.Option(
            "--teacher",
            "-t",
            help="[NAME=]hf:PATH or [NAME=]openai:URL[:MODEL], e.g. openai:http://127.0.0.1:8001/v1:qwen2.5-vl; repeatable.",
        ),
    ],
    min_agree: Annotated[
        int | None,
        typer.Option("--min-agree", min=1, help="Teachers that must agree (and be right); default all."),
    ] = None,
    agree_on: Annotated[str, typer.Option("--agree-on", help="country | city.")] = "country",
    truth_level: Annotated[
        str,
        typer.Option(
            "--truth-level", help="Agreeing answers must match the truth at: country | city | none."
        ),
    ] = "city",
    max_km: Annotated[
        float, typer.Option("--max-km", help="A named city within this of the truth counts as right.")
    ] = 25.0,
    min_locatability: Annotated[
        float | None, typer.Option("--min-locatability", help="Drop images whose mean P(yes) is below this.")
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Split of a DatasetDict input.")] = "train",
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Distil the first N images only.")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per teacher call.")] = 8,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1)] = 512,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0)] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p")] = 1.0,
    seed: Annotated[int | None, typer.Option("--seed")] = 0,
    max_pixels: Annotated[int | None, typer.Option("--max-pixels", min=784)] = None,
    device: Annotated[str, typer.Option("--device", help="hf teachers: auto, cpu, cuda, cuda:1.")] = "auto",
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="openai teachers: requests in flight.")
    ] = 8,
    timeout: Annotated[
        float, typer.Option("--timeout", help="openai teachers: seconds per request.")
    ] = 120.0,
    image_root: Annotated[
        Path | None, typer.Option("--image-root", help="Folder of relative image paths.")
    ] = None,
    id_col: Annotated[str | None, typer.Option("--id-col")] = None,
    image_col: Annotated[str | None, typer.Option("--image-col")] = None,
    lat_col: Annotated[str | None, typer.Option("--lat-col")] = None,
    lon_col: Annotated[str | None, typer.Option("--lon-col")] = None,
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
    from georeason.pipelines.distill import DistillConfig, DistillError, FilterConfig, run_distill

    try:
        cfg = DistillConfig(
            teachers=list(teacher),
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            max_pixels=max_pixels,
            device=device,
            concurrency=concurrency,
            timeout=timeout,
            filters=FilterConfig(
                min_agree=min_agree,
                agree_on=agree_on,
                truth_level=truth_level,
                max_km=max_km,
                min_locatability=min_locatability,
            ),
        )
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
    except (DistillError, FileNotFoundError, ValueError) as e:
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
