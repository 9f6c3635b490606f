"""`georeason view RUN_DIR`: browse an evaluation run in the browser.

See :mod:`georeason.serve.view` for the page and its endpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from georeason.commands.common import require

app = typer.Typer()  # its commands; georeason.cli adds them to the CLI


@app.command("view")
def view_cmd(
    run_dir: Annotated[
        Path,
        typer.Argument(help="An evaluation folder (`georeason eval ... --out DIR`).", show_default=False),
    ],
    host: Annotated[
        str, typer.Option(help="Interface to bind (0.0.0.0 exposes it to the network).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the page in the default browser once it is served.")
    ] = True,
) -> None:
    """Browse an evaluation run: the report's distance table, every answer on a world map (true →
    predicted, coloured by the error), and a list to sort and filter (error band, continent,
    country, failures) where a row shows its photo, the full answer and its parse.

    Works offline (nothing is fetched from the internet) and on 12,000-row runs. Ctrl-C stops it.

    Examples:

    - `georeason view runs/eval/grpo`
    - `georeason view runs/eval/grpo --port 8080 --no-open` (on a cluster: then `ssh -L 8080:127.0.0.1:8080 HOST`)
    """
    require("fastapi", "uvicorn", extra="serve")
    from georeason.serve.view import serve_view

    typer.echo(f"georeason view: reading {run_dir} ...", err=True)
    serve_view(
        run_dir,
        host=host,
        port=port,
        open_browser=open_browser,
        announce=lambda line: typer.echo(f"{line} (Ctrl-C stops it)", err=True),
    )
