"""`georeason demo`: SFT warm start then GRPO with Geo-R's reward, on a CPU, offline, in minutes.

The pipeline is :mod:`georeason.demo` (readable top to bottom); this module only
maps command-line options onto :class:`georeason.demo.DemoConfig`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from georeason.cli import app


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (report.md, PNGs, models).")] = Path(
        "runs/demo"
    ),
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the world's split, photos, weights, training.")
    ] = 0,
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
            help="A tiny run (tests, smoke checks): every stage, a few steps each; numbers mean nothing.",
        ),
    ] = False,
    sft_steps: Annotated[int | None, typer.Option("--sft-steps", min=1, help="SFT optimizer steps.")] = None,
    grpo_steps: Annotated[
        int | None, typer.Option("--grpo-steps", min=1, help="GRPO optimizer steps.")
    ] = None,
    num_generations: Annotated[
        int | None, typer.Option("--num-generations", min=2, help="GRPO group size (answers per image).")
    ] = None,
    grpo_lr: Annotated[float | None, typer.Option("--grpo-lr", help="GRPO learning rate.")] = None,
    sft_lr: Annotated[float | None, typer.Option("--sft-lr", help="SFT learning rate.")] = None,
    n_train: Annotated[int | None, typer.Option("--n-train", min=16, help="Training images.")] = None,
    n_test: Annotated[int | None, typer.Option("--n-test", min=8, help="Held-out-city test images.")] = None,
    samples: Annotated[
        int | None,
        typer.Option(
            "--samples",
            min=2,
            help="Also answer each test photo with K sampled chains (T 0.7) and their medoid "
            "(self-consistency): one more row per model; costs about K times the greedy evaluation.",
        ),
    ] = None,
) -> None:
    """Build the synthetic world and a tiny VLM, train SFT then GRPO (Geo-R reward), and
    evaluate on held-out cities against baselines. Writes OUT/report.md and PNGs.

    The default run took 5 minutes on a quiet 2-core machine and 43 on a loaded one; --quick under a minute.
    """
    from georeason.cli import require

    # the whole pipeline needs the training extra: say so before anything is written
    require("torch", "torchvision", "transformers", "trl", "datasets", "PIL", "matplotlib", extra="train")
    from georeason.demo import DemoConfig, quick_config, run_demo_seeds

    cfg = quick_config(out, seed) if quick else DemoConfig(out=out, seed=seed)
    overrides: dict[str, Any] = {
        "sft_steps": sft_steps,
        "grpo_steps": grpo_steps,
        "num_generations": num_generations,
        "grpo_lr": grpo_lr,
        "sft_lr": sft_lr,
        "n_train": n_train,
        "n_test": n_test,
        "samples": samples,
    }
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    try:
        cfg.check()
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    run_demo_seeds(cfg, n_seeds=seeds)
