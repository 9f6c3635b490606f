"""`georeason locate IMAGE...`: where was this photo taken, and why.

Runs a model (``--backend hf`` in process, or ``--backend openai`` against any
OpenAI-compatible server), prints each image's reasoning chain, the parsed
place with the gazetteer's name for the predicted coordinates, and the
coordinates. Photos with GPS in their EXIF also get the error in km.

The image paths are checked before the model loads: a missing file is a bad
argument (exit 2, nothing runs). An image that cannot be read, or that the model
fails on, costs that image only (an error line), and the exit code is then 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from georeason.commands.common import require_backend, to_json

app = typer.Typer()  # its commands; georeason.cli adds them to the CLI


def _place_line(place: dict[str, Any] | None) -> str:
    if not place:
        return "-"
    parts = [place.get("city"), place.get("admin1"), place.get("country")]
    return ", ".join(p for p in parts if p) or "-"


def _print_human(results: list[Any]) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    for r in results:
        console.rule(f"[bold]{escape(r.source)}")
        if r.error is not None:
            console.print(f"[red]error:[/red] {escape(r.error)}")
            continue
        reasoning = r.reasoning.strip() or (r.answer or "").strip()
        console.print("[bold]reasoning[/bold]")
        console.print(escape(reasoning) if reasoning else "[dim](none)[/dim]")
        pred = r.prediction or {}
        named = ", ".join(str(pred[k]) for k in ("city", "admin1", "country") if pred.get(k))
        if named:
            console.print(f"[bold]answer[/bold]       {escape(named)}")
        if r.lat is not None and r.lon is not None:
            how = {"geocoded": " (geocoded from the named place)"}.get(r.coordinates_from or "", "")
            if (r.coordinates_from or "").startswith("consensus:"):
                how = f" ({r.coordinates_from.split(':', 1)[1]} of the samples)"
            console.print(f"[bold]coordinates[/bold]  {r.lat:.5f}, {r.lon:.5f}{how}")
            console.print(f"[bold]place[/bold]        {escape(_place_line(r.place))}")
        else:
            console.print("[bold]coordinates[/bold]  [yellow]none[/yellow]")
        c = r.consensus
        if c:
            within = f"{c['agreement_25km']:.0%}" if c.get("agreement_25km") is not None else "-"
            country = f"{c['country_agreement']:.0%}" if c.get("country_agreement") is not None else "-"
            radius = f"{c['radius_km']:,.0f} km" if c.get("radius_km") is not None else "-"
            console.print(
                f"[bold]agreement[/bold]    {c['method']} of {c['n_samples']} samples ({c['n_located']} placed): "
                f"{within} within 25 km, {country} name its country, radius {radius}"
            )
        if r.exif_gps is not None:
            gps = f"{r.exif_gps[0]:.5f}, {r.exif_gps[1]:.5f}"
            err = f"{r.error_km:,.1f} km" if r.error_km is not None else "n/a (no predicted coordinates)"
            console.print(f"[bold]EXIF GPS[/bold]     {gps}  error: {err}")
        for w in r.warnings:
            console.print(f"[yellow]warning:[/yellow] {escape(w)}")


@app.command("locate")
def locate_cmd(
    images: Annotated[list[Path], typer.Argument(help="Image files to locate.", show_default=False)],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model folder or hub id (hf); served model name (openai).")
    ] = "auto",
    backend: Annotated[str, typer.Option(help="Inference backend: hf | openai | vllm.")] = "hf",
    protocol: Annotated[
        str, typer.Option("--protocol", "-p", help="Answer protocol: geor | globe | plain | cot.")
    ] = "geor",
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1 (openai).")
    ] = None,
    api_key_env: Annotated[
        str, typer.Option(help="Environment variable holding the API key (openai).")
    ] = "OPENAI_API_KEY",
    max_retries: Annotated[
        int, typer.Option(help="Retries per request on 429/5xx/connection errors (openai).")
    ] = 5,
    timeout: Annotated[float, typer.Option(help="Seconds per HTTP request (openai).")] = 120.0,
    max_pixels: Annotated[
        int | None, typer.Option(help="Resize images to at most this many pixels (aspect kept).")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Longest answer, in tokens.")] = 512,
    temperature: Annotated[
        float, typer.Option(help="0 = greedy; --samples K > 1 needs > 0 (e.g. 0.7).")
    ] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p", help="Nucleus sampling (with --temperature > 0).")] = 1.0,
    samples: Annotated[
        int,
        typer.Option(
            "--samples",
            min=1,
            help="Self-consistency: sample K answers per photo in one call and report the one "
            "--aggregate chooses, with how much the K agree (a confidence).",
        ),
    ] = 1,
    aggregate: Annotated[
        str,
        typer.Option(
            "--aggregate",
            help="medoid | geomedian | vote: how K samples become one answer (see eval --help).",
        ),
    ] = "medoid",
    seed: Annotated[int | None, typer.Option(help="Sampling seed (with --temperature > 0).")] = None,
    batch_size: Annotated[int, typer.Option(help="Micro-batch size (hf).")] = 8,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON array instead of text.")] = False,
) -> None:
    """Locate photos: reasoning chain, place, coordinates (and the error against EXIF GPS).

    Exit status: 0 when every image was located; 1 when any image failed (each failure is printed,
    and the others are still located); 2 for a bad argument, e.g. an image file that does not
    exist, checked before the model loads.

    Examples:

    - a model folder, in process: `georeason locate photo.jpg --model runs/demo/grpo`
    - a running `georeason serve` or any OpenAI-compatible server:
      `georeason locate photo.jpg --backend openai --base-url http://127.0.0.1:8000/v1`
    - eight sampled chains, the majority place and its agreement:
      `georeason locate photo.jpg --model runs/demo/grpo --samples 8 --temperature 0.7 --aggregate vote`
    """
    from georeason.consensus import AGGREGATORS
    from georeason.infer.base import BACKENDS, get_backend
    from georeason.infer.locate import locate
    from georeason.protocols import PROTOCOLS

    if protocol not in PROTOCOLS:
        raise typer.BadParameter(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if backend.strip().lower() not in BACKENDS:
        raise typer.BadParameter(
            f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}", param_hint="--backend"
        )
    options: dict[str, Any] = {}
    if backend == "openai":
        options.update(
            base_url=base_url,
            api_key_env=api_key_env,
            max_pixels=max_pixels,
            max_retries=max_retries,
            timeout=timeout,
        )
    elif backend == "hf":
        if model == "auto":
            raise typer.BadParameter("--model is required with --backend hf (a model folder or hub id)")
        options.update(max_pixels=max_pixels, batch_size=batch_size)
    if aggregate not in AGGREGATORS:
        raise typer.BadParameter(
            f"unknown aggregation {aggregate!r}; choose one of {', '.join(AGGREGATORS)}",
            param_hint="--aggregate",
        )
    if samples > 1 and temperature == 0:
        raise typer.BadParameter(
            f"{samples} samples need --temperature > 0 (e.g. 0.7): greedy decoding gives one answer",
            param_hint="--samples",
        )
    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        what = "no such image file" if len(missing) == 1 else f"{len(missing)} image files do not exist"
        raise typer.BadParameter(f"{what}: {', '.join(missing)}", param_hint="IMAGES")
    require_backend(backend)  # a missing extra is named before anything loads
    try:
        engine = get_backend(backend, model, **options)
    except ImportError:
        raise  # the CLI names the extra to install
    except Exception as e:
        typer.echo(f"error: cannot start the {backend} backend: {e}", err=True)
        raise typer.Exit(2) from e
    try:
        results = locate(
            engine,
            [str(p) for p in images],
            protocol=protocol,
            max_pixels=max_pixels,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            samples=samples,
            aggregate=aggregate,
        )
    finally:
        engine.close()
    if json_out:
        typer.echo(to_json([r.to_dict() for r in results], indent=2))
    else:
        _print_human(results)
    failed = sum(1 for r in results if not r.ok)
    if failed:
        typer.echo(f"{failed} of {len(results)} images failed", err=True)
        raise typer.Exit(1)
