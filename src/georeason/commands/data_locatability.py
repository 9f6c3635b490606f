"""`georeason data locatability`: GLOBE's locatability reward model's training data.

See :mod:`georeason.pipelines.locatability`; the model is trained by
`georeason train locatability-rm` (:mod:`georeason.train.locatability`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from georeason.commands.common import require, to_json
from georeason.commands.options import ConfigOptions

app = typer.Typer()  # its command; georeason.cli adds it to the `data` group

#: the label rule, split and balance (LocatabilityConfig): flags, --config FILE and --set KEY=VALUE
LOCATABILITY: ConfigOptions[Any] = ConfigOptions(
    "georeason.pipelines.locatability:LocatabilityConfig", panel="Labels, split and balance"
)


def _log(msg: str) -> None:
    typer.echo(msg, err=True)


@app.command("locatability", cls=LOCATABILITY.command_class)
def locatability_cmd(
    ctx: typer.Context,
    src: Annotated[
        Path,
        typer.Argument(
            help="A run folder of `georeason data distill`, or a labelled table / datasets folder with "
            "image, reasoning and label (yes/no) columns."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write (a datasets DatasetDict: train, test).")
    ],
    split: Annotated[
        str, typer.Option("--split", help="Split of a DatasetDict source (the distillation's input split).")
    ] = "train",
    image_root: Annotated[
        Path | None, typer.Option("--image-root", help="Folder of relative image paths.")
    ] = None,
    id_col: Annotated[
        str | None, typer.Option("--id-col", help="Id column of the input (default: auto).")
    ] = None,
    image_col: Annotated[
        str | None, typer.Option("--image-col", help="Image column (default: auto).")
    ] = None,
    reasoning_col: Annotated[
        str | None,
        typer.Option("--reasoning-col", help="Table: the text column (default: reasoning, text, ...)."),
    ] = None,
    label_col: Annotated[
        str | None,
        typer.Option("--label-col", help="Table: the yes/no column (default: label, locatable, ...)."),
    ] = None,
    place_col: Annotated[
        str | None,
        typer.Option(
            "--place-col", help="Table: the column the held-out split is by (default: place, else city)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Build GLOBE's locatability data: (image, reasoning) -> yes/no, a test split held out by place.

    From a distillation run, each teacher's completion is one example, labelled by the rule
    (default: the teachers agree the image is locatable AND this answer landed within --max-km
    of the truth -> yes; they agree it is not AND the answer missed -> no; else left out).
    Counts and balance are printed and saved to OUT/locatability.json.

    Examples:

    - `georeason data locatability runs/distill --out runs/locatability`
    - `georeason data locatability labels.csv --out runs/locatability --test-share 0.1`
    """
    require("datasets", "PIL", extra="train")
    from georeason.pipelines.locatability import LocatabilityError, build_locatability_dataset
    from georeason.tables import TableError

    cfg = LOCATABILITY.resolve(ctx)
    try:
        s = build_locatability_dataset(
            src,
            out,
            cfg,
            split=split,
            image_root=image_root,
            id_col=id_col,
            image_col=image_col,
            reasoning_col=reasoning_col,
            label_col=label_col,
            place_col=place_col,
            overwrite=overwrite,
            log=_log,
        )
    except (LocatabilityError, TableError, FileNotFoundError) as e:
        typer.secho(f"error: {e}", err=True, fg="red")
        raise typer.Exit(2) from e
    if as_json:
        typer.echo(to_json(s.to_dict(), indent=2))
        return
    typer.echo(f"{s.n_examples} examples from {s.n_images} images ({s.kind}, rule {cfg.rule}) -> {s.out_dir}")
    for name in ("train", "test"):
        c = s.splits[name]
        extra = ""
        if name == "train" and cfg.balance != "none":
            b = s.splits["train_before_balance"]
            extra = f" (before {cfg.balance}: {b['yes']} yes, {b['no']} no)"
        typer.echo(
            f"    {name:<5} {c['total']:>7,}: {c['yes']:,} yes, {c['no']:,} no, {s.places[name]:,} places{extra}"
        )
    for reason, n in s.dropped.items():
        typer.echo(f"    left out {n:>7,}  {reason}")


__all__ = ["locatability_cmd"]
