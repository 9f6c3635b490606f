"""`georeason eval`: run a model over a benchmark (resumable) and write the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from georeason.cli import app, require_backend


def parse_options(items: list[str], flag: str) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict; values parsed as JSON when they are (numbers, true/false, null)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=flag)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@app.command("eval")
def eval_cmd(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder (predictions.jsonl, run.json, report.*).")
    ],
    benchmark: Annotated[
        str | None,
        typer.Option(
            "--benchmark",
            "-b",
            help="im2gps3k, yfcc4k, mp16-reason, hf, csv, exif, or synthetic (the world of `georeason demo` "
            "or `georeason synth`: --data runs/demo/world).",
        ),
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="The benchmark's folder (or table file for csv).")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model folder / hub id (hf) or served name (openai).")
    ] = None,
    backend: Annotated[str, typer.Option("--backend", help="hf | openai | vllm.")] = "hf",
    protocol: Annotated[
        str, typer.Option("--protocol", "-p", help="geor, geor_continent, globe, plain or cot.")
    ] = "geor",
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Evaluate the first N images only.")
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            min=1,
            help="Images per backend call (openai: at least its concurrency, 8 by default).",
        ),
    ] = 8,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1)] = 512,
    max_pixels: Annotated[
        int | None,
        typer.Option(
            "--max-pixels", min=784, help="Resize images to at most this many pixels (aspect kept)."
        ),
    ] = None,
    temperature: Annotated[
        float,
        typer.Option("--temperature", min=0.0, help="0 = greedy; --samples K > 1 needs > 0 (e.g. 0.7)."),
    ] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p")] = 1.0,
    seed: Annotated[int | None, typer.Option("--seed")] = 0,
    samples: Annotated[
        int,
        typer.Option(
            "--samples",
            min=1,
            help="Self-consistency: sample K answers per image (one batched call) and keep the one "
            "--aggregate chooses; the report adds confidence plots.",
        ),
    ] = 1,
    aggregate: Annotated[
        str,
        typer.Option(
            "--aggregate",
            help="How K samples become one answer: medoid (least summed distance to the others), "
            "geomedian (spherical geometric median), vote (majority country, then admin1, then city).",
        ),
    ] = "medoid",
    geocode_names: Annotated[
        str,
        typer.Option(
            "--geocode-names",
            help="Place answers without coordinates by their named city/country: auto (globe protocol only), "
            "always, never.",
        ),
    ] = "auto",
    backend_option: Annotated[
        list[str] | None,
        typer.Option(
            "--backend-option",
            help="Backend option KEY=VALUE (e.g. base_url=..., concurrency=8); repeatable.",
        ),
    ] = None,
    benchmark_option: Annotated[
        list[str] | None,
        typer.Option(
            "--benchmark-option",
            help="Loader option KEY=VALUE (e.g. lat_col=latitude, split=test); repeatable.",
        ),
    ] = None,
    report_only: Annotated[
        bool, typer.Option("--report-only", help="Only (re)write the report of --out.")
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Redo images whose image loading or backend call failed.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Discard what --out holds and start again.")
    ] = False,
    reference: Annotated[
        Path | None,
        typer.Option("--reference", help="Published results CSV (default: the copy shipped with georeason)."),
    ] = None,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Draw error_cdf.png and world_map.png.")
    ] = True,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Bootstrap replicates for the CIs.")
    ] = 1000,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="Progress bar (default: on a TTY).")
    ] = None,
) -> None:
    """Evaluate a model on a benchmark; one JSONL line per image; rerun the same command to resume.

    Examples:

    - the demo's models on its world's held-out cities (after `georeason demo`):
      `georeason eval --benchmark synthetic --data runs/demo/world --model runs/demo/grpo --out runs/eval/grpo`
    - a served model on Im2GPS3k: `georeason eval -b im2gps3k --data data/im2gps3k --backend openai
      --model NAME --backend-option base_url=http://127.0.0.1:8000/v1 --out runs/eval/im2gps3k`
    - rebuild the report of a run: `georeason eval --out runs/eval/grpo --report-only`

    A run that fails before any image is evaluated leaves no folder behind.
    """
    import logging

    from georeason.eval.report import write_report

    def log(msg: str) -> None:
        typer.echo(msg, err=True)

    if report_only:
        try:
            rep = write_report(out, reference=reference, plots=plots, n_bootstrap=bootstrap)
        except FileNotFoundError as e:
            raise typer.BadParameter(str(e), param_hint="--out") from e
        _print_summary(rep, out)
        return

    missing = [
        flag for flag, v in (("--benchmark", benchmark), ("--data", data), ("--model", model)) if v is None
    ]
    if missing:
        raise typer.BadParameter(f"missing {', '.join(missing)} (or use --report-only)")
    assert benchmark is not None and data is not None and model is not None

    from georeason.datasets.benchmarks import benchmark_class
    from georeason.eval.runner import BackendFailure, EvalConfig, run_eval
    from georeason.infer.base import BACKENDS

    try:
        benchmark_class(benchmark)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--benchmark") from e
    if backend.strip().lower() not in BACKENDS:
        raise typer.BadParameter(
            f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}", param_hint="--backend"
        )
    require_backend(backend)  # a missing extra is named before anything is written

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = EvalConfig(
            benchmark=benchmark,
            data=str(data),
            model=model,
            backend=backend,
            protocol=protocol,
            limit=limit,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            max_pixels=max_pixels,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            geocode_names=geocode_names,
            samples=samples,
            aggregate=aggregate,
            backend_options=parse_options(backend_option or [], "--backend-option"),
            benchmark_options=parse_options(benchmark_option or [], "--benchmark-option"),
        )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    try:
        summary = run_eval(
            config,
            out,
            retry_failed=retry_failed,
            overwrite=overwrite,
            reference=reference,
            plots=plots,
            n_bootstrap=bootstrap,
            progress=progress,
            log=log,
        )
    except BackendFailure as e:
        typer.secho(f"error: {e}", err=True, fg="red")
        raise typer.Exit(3) from e
    except KeyboardInterrupt:
        typer.secho(
            f"\ninterrupted: everything finished so far is in {out}/predictions.jsonl; "
            "rerun the same command to resume.",
            err=True,
            fg="yellow",
        )
        raise typer.Exit(130) from None
    if summary.report is not None:
        _print_summary(summary.report, out)


def _print_summary(rep: dict[str, Any], out: Path) -> None:
    m = rep["metrics"]
    acc = " ".join(f"{k.replace('acc@', '@')}={100 * v['value']:.1f}%" for k, v in m["accuracy"].items())
    med = m["median_km"]["value"]
    fails = rep["failures"]
    typer.echo(
        f"{rep['run'].get('benchmark')}: {rep['n_records']} images"
        + ("" if rep.get("complete", True) else f" of {rep.get('n_expected')} (partial)")
        + f" | {acc} | median {'—' if med is None else f'{med:,.0f} km'} | GeoScore {m['geoscore']['value']:,.0f}"
        + f" | failed {fails['total']} ({', '.join(f'{k} {v}' for k, v in fails['by_kind'].items())})"
    )
    typer.echo(f"report: {out / 'report.md'}")
