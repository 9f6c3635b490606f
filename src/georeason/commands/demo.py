"""`georeason demo`: SFT warm start then GRPO with Geo-R's reward, on a CPU, offline, in minutes.

The pipeline is :mod:`georeason.demo` (readable top to bottom); its settings are the
fields of :class:`georeason.demo.DemoConfig`, each a flag here (and a key of
``--config FILE`` / ``--set KEY=VALUE``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from georeason.commands.common import require
from georeason.commands.options import ConfigOptions

app = typer.Typer()  # its commands; georeason.cli adds them to the CLI

SETTINGS: ConfigOptions[Any] = ConfigOptions("georeason.demo:DemoConfig", panel="Demo settings")


@app.command("demo", cls=SETTINGS.command_class)
def demo(
    ctx: typer.Context,
    seeds: Annotated[
        int,
        typer.Option(
            "--seeds",
            min=1,
            help="Run this many seeds (seed, seed+1, ...) into OUT/seed<k>/ and report mean ± spread in OUT/report.md.",
        ),
    ] = 1,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="A tiny run (tests, smoke checks): every stage, a few steps each; numbers mean nothing. "
            "The settings below then start from the quick run's.",
        ),
    ] = False,
) -> None:
    """Build the synthetic world and a tiny VLM, train SFT then GRPO (Geo-R reward), and
    evaluate on held-out cities against baselines. Writes OUT/report.md and PNGs.

    The default run took 5 minutes on a quiet 2-core machine and 43 on a loaded one; --quick under a minute.
    """
    # the whole pipeline needs the training extra: say so before anything is written
    require("torch", "torchvision", "transformers", "trl", "datasets", "PIL", "matplotlib", extra="train")
    from georeason.demo import quick_config, run_demo_seeds

    cfg = SETTINGS.resolve(ctx, base=quick_config() if quick else None)  # runs cfg.check()
    run_demo_seeds(cfg, n_seeds=seeds)
