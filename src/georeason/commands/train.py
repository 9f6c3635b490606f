"""`georeason train sft|grpo --config recipe.yaml [--set key=value ...]`.

Multi-GPU / multi-node: launch the same command through accelerate, e.g.
``accelerate launch --config_file recipes/accelerate/zero3.yaml -m georeason.cli train grpo --config ...``
(see recipes/README.md).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

from georeason.commands.common import require

app = typer.Typer(
    name="train",
    help="Train on TRL: sft (warm start), then grpo (geolocation rewards), from YAML recipes under recipes/; "
    "locatability-rm (GLOBE's judge); tiny-model builds the offline test model.",
    no_args_is_help=True,
)

#: What training imports; checked first, so a core-only install hears which extra to add.
TRAIN_MODULES = ("torch", "torchvision", "transformers", "trl", "peft", "accelerate", "datasets", "PIL")

_CONFIG_OPT = typer.Option(
    None,
    "--config",
    "-c",
    help="YAML recipe, e.g. recipes/tiny/geor_sft.yaml or recipes/tiny/geor_grpo.yaml (all: `recipes/*/*.yaml`).",
)
_SET_OPT = typer.Option(
    None,
    "--set",
    "-s",
    help="Override a recipe key: --set learning_rate=1e-6 (repeatable; values are YAML; dotted keys reach into dicts: reward_options.globe_accuracy.alpha=0.8).",
)
_DRY_OPT = typer.Option(False, "--dry-run", help="Print the resolved config and exit without training.")
_FIELDS_OPT = typer.Option(False, "--help-config", help="List the config keys a recipe may set, and exit.")
_ALL_OPT = typer.Option(False, "--all", help="With --help-config: also list TRL's and transformers' keys.")


def _print_fields(cls: type[Any], show_all: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from georeason.train.recipe import describe_fields

    table = Table(title=f"{cls.__name__} keys" + ("" if show_all else " (project keys; --all for TRL's too)"))
    for col in ("key", "default", "help"):
        table.add_column(col, overflow="fold")
    for name, default, text in describe_fields(cls, only_project=not show_all):
        table.add_row(name, default, text)
    Console().print(table)


def _run(
    kind: str,
    config: Path | None,
    overrides: list[str] | None,
    dry_run: bool,
    help_config: bool,
    show_all: bool,
) -> None:
    require(*TRAIN_MODULES, extra="train")  # before transformers says it less plainly
    from georeason.train import GeoGRPOConfig, GeoSFTConfig, RecipeError, load_config
    from georeason.train.locatability import LocatabilityRMConfig

    cls = {"sft": GeoSFTConfig, "grpo": GeoGRPOConfig, "locatability-rm": LocatabilityRMConfig}[kind]
    if help_config:
        _print_fields(cls, show_all)
        return
    if config is None and not overrides:
        raise typer.BadParameter(
            "give a recipe with --config (see recipes/), and/or keys with --set key=value"
        )
    try:
        cfg = load_config(cls, config, overrides or [])
    except (RecipeError, ValueError, TypeError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None

    if dry_run:
        import dataclasses

        import yaml

        from georeason.train.recipe import describe_fields

        project = {name for name, _, _ in describe_fields(cls, only_project=True)}
        shown = {
            f.name: getattr(cfg, f.name)
            for f in dataclasses.fields(cfg)
            if f.name in project or f.name in ("output_dir", "learning_rate", "num_train_epochs", "max_steps")
        }
        typer.echo(yaml.safe_dump(shown, sort_keys=False, allow_unicode=True))
        return

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from georeason.train import train_grpo, train_sft

    if kind == "locatability-rm":
        require("matplotlib", extra="train")  # the reliability plot, before minutes of training
        from georeason.train.locatability import metrics_line, train_locatability_rm

        rm = train_locatability_rm(cfg)  # type: ignore[arg-type]
        typer.echo(f"model saved to {rm.train.model_dir}")
        if rm.metrics is not None:
            typer.echo(f"{metrics_line(rm.metrics)} -> {rm.train.output_dir}/report.md")
        return
    # a missing model or dataset ends here with one `error:` line (georeason.cli)
    result = train_sft(cfg) if kind == "sft" else train_grpo(cfg)  # type: ignore[arg-type]
    typer.echo(f"model saved to {result.model_dir}")
    last: dict[str, Any] = next((h for h in reversed(result.log_history) if "reward" in h), {})
    rewards = {k: v for k, v in last.items() if k == "reward" or k.startswith("rewards/")}
    if rewards:
        typer.echo("last logged rewards: " + ", ".join(f"{k}={v:.4g}" for k, v in rewards.items()))
    if result.skipped:
        typer.echo(f"{result.skipped} rows skipped (see {result.output_dir}/skipped_samples.jsonl)")


@app.command("sft")
def sft(
    config: Path | None = _CONFIG_OPT,
    set_: list[str] | None = _SET_OPT,
    dry_run: bool = _DRY_OPT,
    help_config: bool = _FIELDS_OPT,
    show_all: bool = _ALL_OPT,
) -> None:
    """Supervised fine-tuning on the protocol's gold answers (Geo-R's warm start).

    Example, on a CPU, offline (`--dry-run` prints the resolved config instead of training):

    - `georeason synth --out runs/tiny/world`
    - `georeason train tiny-model --out runs/tiny/model --world runs/tiny/world`
    - `georeason train sft --config recipes/tiny/geor_sft.yaml`
    """
    _run("sft", config, set_, dry_run, help_config, show_all)


@app.command("grpo")
def grpo(
    config: Path | None = _CONFIG_OPT,
    set_: list[str] | None = _SET_OPT,
    dry_run: bool = _DRY_OPT,
    help_config: bool = _FIELDS_OPT,
    show_all: bool = _ALL_OPT,
) -> None:
    """GRPO with the recipe's reward functions and weights (Geo-R, GLOBE, ours).

    Example (drop `--dry-run` to train; `--help-config` lists the keys a recipe may set):

    - `georeason train grpo --config recipes/tiny/geor_grpo.yaml --set learning_rate=1e-5 --dry-run`
    """
    _run("grpo", config, set_, dry_run, help_config, show_all)


@app.command("locatability-rm")
def locatability_rm(
    config: Path | None = _CONFIG_OPT,
    set_: list[str] | None = _SET_OPT,
    dry_run: bool = _DRY_OPT,
    help_config: bool = _FIELDS_OPT,
    show_all: bool = _ALL_OPT,
) -> None:
    """GLOBE's locatability reward model: LoRA SFT to answer yes/no, then AUROC and calibration on held-out places.

    Trains on `georeason data locatability`'s folder; writes the model (use it as the GRPO
    judge: `reward_options.globe_locatability.judge: OUTPUT_DIR/merged`) and report.md,
    metrics.json and reliability.png in output_dir.

    - `georeason train locatability-rm --config recipes/tiny/globe_locatability_rm.yaml`
    - `georeason train locatability-rm --config recipes/tiny/globe_locatability_rm.yaml --set learning_rate=1e-2 --dry-run`
    """
    _run("locatability-rm", config, set_, dry_run, help_config, show_all)


_OUT_OPT = typer.Option(..., "--out", "-o", help="Folder to write the model to (from_pretrained loads it).")
_WORLD_OPT = typer.Option(
    None,
    "--world",
    help="A GeoSample dataset (e.g. from `georeason synth`) whose train split's reasoning texts are added to "
    "the tokenizer's corpus, so its clue words become whole tokens (shorter answers, faster steps).",
)


@app.command("tiny-model")
def tiny_model(
    out: Path = _OUT_OPT,
    hidden_size: int = typer.Option(128, help="Text hidden size."),
    layers: int = typer.Option(2, help="Text decoder layers."),
    vocab_size: int = typer.Option(4096, help="BPE vocabulary size."),
    max_pixels: int = typer.Option(112 * 112, help="Image pixel budget of the processor."),
    seed: int = typer.Option(0, help="Seed of the random weights."),
    world: Path | None = _WORLD_OPT,
) -> None:
    """Build the tiny offline Qwen2.5-VL (random weights, local tokenizer) for CPU runs and tests."""
    require(*TRAIN_MODULES, extra="train")
    from georeason.models import build_tiny_vlm

    extra: list[str] = []
    if world is not None:
        from georeason.train.data import load_geo_dataset

        train, _ = load_geo_dataset(world, "train")
        extra = [t for t in train["reasoning"] if t] if "reasoning" in train.column_names else []
        if not extra:
            raise typer.BadParameter(f"{world}: the train split has no reasoning texts to add")
    try:
        path = build_tiny_vlm(
            out,
            extra_text=extra,
            hidden_size=hidden_size,
            num_hidden_layers=layers,
            vocab_size=vocab_size,
            max_pixels=max_pixels,
            seed=seed,
        )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    typer.echo(f"tiny model written to {path}")
