"""`georeason eval`: run a model over a benchmark (resumable) and write the report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from georeason.commands.common import require_backend
from georeason.commands.options import ConfigOptions

app = typer.Typer()  # its commands; georeason.cli adds them to the CLI

#: The settings of a run: the fields of EvalConfig, as flags, --config FILE and --set KEY=VALUE.
SETTINGS: ConfigOptions[Any] = ConfigOptions("georeason.eval.runner:EvalConfig", panel="Run settings")


@app.command("eval", cls=SETTINGS.command_class)
def eval_cmd(
    ctx: typer.Context,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder (predictions.jsonl, run.json, report.*).")
    ],
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

    from georeason.datasets.benchmarks import benchmark_class
    from georeason.eval.runner import BackendFailure, run_eval
    from georeason.infer.base import BACKENDS

    config = SETTINGS.resolve(ctx)
    try:
        benchmark_class(config.benchmark)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--benchmark") from e
    if config.backend.strip().lower() not in BACKENDS:
        raise typer.BadParameter(
            f"unknown backend {config.backend!r}; choose one of {', '.join(BACKENDS)}", param_hint="--backend"
        )
    require_backend(config.backend)  # a missing extra is named before anything is written

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
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
