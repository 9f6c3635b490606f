"""`georeason <command>`: a thin CLI. Heavy modules are imported inside commands
so that `georeason --help` stays fast and the core works without torch."""

from __future__ import annotations

import typer

from georeason import __version__

app = typer.Typer(
    name="georeason",
    help="Train, run and evaluate vision-language models that geolocate photos by reasoning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"georeason {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """georeason: Geo-R and GLOBE, exactly as their papers describe them, and beyond."""


# --- commands -----------------------------------------------------------------
# Each command lives in its own module under georeason/commands/ and registers
# itself on `app` when imported below.


def main() -> None:
    # Import through the package so commands register on the same `app` object
    # even when this file runs as `python -m georeason.cli` (module `__main__`).
    import georeason.cli
    from georeason import commands  # noqa: F401  (registers the subcommands)

    georeason.cli.app()


if __name__ == "__main__":
    main()
