"""`georeason synth`: generate the synthetic world (offline) as a `datasets` folder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from georeason.commands.common import to_json

app = typer.Typer()  # its commands; georeason.cli adds them to the CLI


@app.command("synth")
def synth(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Output folder (datasets.save_to_disk layout + world.json)."),
    ],
    n_train: int = typer.Option(2000, "--n-train", min=1, help="Images of training cities."),
    n_test: int = typer.Option(400, "--n-test", min=0, help="Images of held-out cities (never in train)."),
    seed: int = typer.Option(0, "--seed", help="Draws the split of cities and every photo."),
    image_size: int = typer.Option(112, "--image-size", min=28, help="Side of the square images, pixels."),
    n_places: int = typer.Option(
        192, "--n-places", help="Cities in the world: a multiple of n_countries x admin1_per_country."
    ),
    n_countries: int = typer.Option(
        24, "--n-countries", min=1, help="Countries (round-robin over continents)."
    ),
    admin1_per_country: int = typer.Option(2, "--admin1-per-country", min=1, help="Regions per country."),
    test_share: float = typer.Option(0.25, "--test-share", help="Share of each region's cities held out."),
    no_clue_share: float = typer.Option(0.1, "--no-clue-share", help="Share of images with no clue."),
    jitter_km: float = typer.Option(
        5.0, "--jitter-km", help="Photos lie within this distance of their city."
    ),
) -> None:
    """Draw the synthetic world: procedural photos of real cities with hierarchical clues.

    Writes a DatasetDict (train / test split by city) with the GeoSample columns,
    and world.json (places, clue codebook, per-image clues, ceilings). See
    docs/synthetic_world.md. Evaluate a model on its held-out cities with
    `georeason eval --benchmark synthetic --data OUT --model MODEL --out RUN`.
    """
    from georeason.datasets.synthetic import generate_world, save_world

    t0 = time.perf_counter()
    try:
        data = generate_world(
            n_train,
            n_test,
            seed=seed,
            image_size=image_size,
            n_places=n_places,
            n_countries=n_countries,
            admin1_per_country=admin1_per_country,
            test_share=test_share,
            no_clue_share=no_clue_share,
            jitter_km=jitter_km,
        )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    save_world(data, out)
    summary = data.summary()
    typer.echo(
        f"wrote {out}: {n_train} train images ({summary['n_places']['train']} cities), "
        f"{n_test} test images ({summary['n_places']['test']} held-out cities), "
        f"{summary['n_countries']} countries, {time.perf_counter() - t0:.1f} s"
    )
    typer.echo(to_json({"clue_shares": summary["clue_shares"], "ceilings": summary["ceilings"]}, indent=1))
