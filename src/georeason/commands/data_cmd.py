"""`georeason data fetch | check`: benchmark downloads and checks.

The other `data` commands (label, select, rollouts, distill) are in
:mod:`georeason.commands.data_scale`; :mod:`georeason.cli` puts both in the `data` group.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from georeason.commands.common import to_json
from georeason.commands.options import key_values

app = typer.Typer()  # its commands; georeason.cli adds them to the `data` group


def _progress_factory(enabled: bool) -> tuple[Callable[[], None], Any]:
    """``(close, factory)``: a download bar per file (bytes, speed, ETA) on a terminal; nothing otherwise.

    The files come one after the other, so each new bar stops the one before.
    """
    from georeason.runs import Progress

    bars: list[Progress] = []

    def close() -> None:
        if bars:
            bars[-1].close()

    def factory(name: str, size: int | None) -> Callable[[int, int | None], None]:
        close()
        bar = Progress(name, size, unit="bytes", enabled=True)
        bars.append(bar)
        return lambda done, total: bar.update(position=done, total=total)

    return close, factory if enabled else None


@app.command("fetch")
def fetch_cmd(
    name: Annotated[str | None, typer.Argument(help="Source to download (see --list).")] = None,
    to: Annotated[Path | None, typer.Option("--to", "--out", "-o", help="Target folder (created).")] = None,
    registry: Annotated[
        Path | None,
        typer.Option(
            "--registry",
            envvar="GEOREASON_FETCH_REGISTRY",
            help="JSON registry file adding or overriding sources (also $GEOREASON_FETCH_REGISTRY).",
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="Take every file of the source from this mirror (file names kept)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Download and extract again what is installed.")
    ] = False,
    retries: Annotated[
        int, typer.Option(min=0, help="Retries per file for transient failures (each resumes).")
    ] = 4,
    timeout: Annotated[float, typer.Option(min=1.0, help="Socket timeout per request, seconds.")] = 60.0,
    check: Annotated[
        bool, typer.Option("--check/--no-check", help="Load the benchmark afterwards to verify it.")
    ] = True,
    list_sources: Annotated[bool, typer.Option("--list", help="List the known sources and exit.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Download a benchmark from pinned URLs: verify checksums, resume partial downloads, extract safely.

    A file with no published checksum is trusted on first use: its sha256 is recorded in
    DIR/.georeason-fetch.lock.json and every later fetch and `data check` must match it.

    Examples:

    - `georeason data fetch --list` (the sources)
    - `georeason data fetch im2gps3k --to data/im2gps3k`, then
      `georeason data check --benchmark im2gps3k --data data/im2gps3k`
    """
    from georeason.datasets.fetch import LOCK, FetchError, describe_sources, fetch, load_registry, trust_of

    try:
        reg = load_registry(registry)
    except FetchError as e:
        raise typer.BadParameter(str(e), param_hint="--registry") from e
    if list_sources:
        if as_json:
            typer.echo(to_json(describe_sources(reg), indent=2))
            return
        typer.echo(
            "pinned: the publisher's sha256 is checked; TOFU (trust on first use): no published "
            f"checksum, the first download's sha256 is recorded in DIR/{LOCK} and checked ever after"
        )
        for s in reg.values():
            pinned = sum(trust_of(f) == "pinned" for f in s.files)
            typer.echo(f"{s.name}: {s.description} [{pinned} pinned, {len(s.files) - pinned} TOFU]")
            for f in s.files:
                how = "sha256 pinned" if trust_of(f) == "pinned" else "TOFU"
                how += ", manual" if f.manual else ""
                typer.echo(f"    {f.name:<32} {how:<22} {f.url}")
        return
    if name is None:
        raise typer.BadParameter("give a source name (see `georeason data fetch --list`)", param_hint="NAME")
    if to is None:
        raise typer.BadParameter("give the target folder with --to DIR", param_hint="--to")
    if name not in reg:
        raise typer.BadParameter(
            f"unknown source {name!r}; known: {', '.join(sorted(reg))}", param_hint="NAME"
        )

    close_bars, factory = _progress_factory(sys.stderr.isatty() and not as_json)

    def log(msg: str) -> None:
        style = "UNVERIFIED" in msg or msg.startswith("MANUAL")
        typer.secho(msg, err=True, fg="yellow" if style else None, bold=style)

    try:
        result = fetch(
            name,
            to,
            registry=reg,
            base_url=base_url,
            force=force,
            retries=retries,
            timeout=timeout,
            progress_factory=factory,
            log=log,
        )
    except FetchError as e:
        typer.secho(f"error: {e}", err=True, fg="red")
        raise typer.Exit(1) from e
    finally:
        close_bars()

    summary: dict[str, Any] = {
        "source": result.source,
        "target": result.target,
        "complete": result.complete,
        "files": [f.__dict__ for f in result.files],
    }
    source = reg[name]
    if check and result.complete and source.benchmark:
        summary["check"] = _check(source.benchmark, Path(to))
    if as_json:
        typer.echo(to_json(summary, indent=2))
    else:
        for fr in result.files:
            mark = {
                "downloaded": "downloaded",
                "present": "already there",
                "manual-present": "placed by hand",
                "manual-missing": "MISSING (manual)",
            }[fr.status]
            ver = {
                "pinned": "verified (pinned)",
                "lock": "verified (lock)",
                "first-use": "UNVERIFIED (TOFU: recorded)",
            }.get(fr.trust, "")
            typer.echo(f"{fr.name:<36} {mark:<18} {ver:<28} {fr.path}")
        if "check" in summary:
            c = summary["check"]
            if "error" in c:
                typer.secho(f"check: {c['error']}", fg="red", err=True)
            else:
                typer.echo(
                    f"check: {source.benchmark} loads: {c['n_images']} images, "
                    f"{c['n_missing_images']} missing on disk"
                )
    if not result.complete:
        typer.secho("incomplete: some files must be downloaded by hand (see above)", err=True, fg="yellow")
        raise typer.Exit(2)
    if "check" in summary and "error" in summary["check"]:
        raise typer.Exit(1)


def _check(benchmark: str, root: Path) -> dict[str, Any]:
    import warnings

    from georeason.datasets.benchmarks import DatasetNotFoundError, load_benchmark

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = load_benchmark(benchmark, root)
        out = ds.describe()
        out["warnings"] = [str(w.message) for w in caught]
        return out
    except (DatasetNotFoundError, ValueError) as e:
        return {"error": str(e)}


def _verify_lock(data: Path) -> list[dict[str, Any]]:
    """The folder's files against the checksums `data fetch` recorded; exit 1 on a mismatch."""
    from georeason.datasets.fetch import FetchError, verify_lock

    if not data.is_dir():
        return []
    try:
        rows = verify_lock(data)
    except FetchError as e:
        typer.secho(f"error: {e}", err=True, fg="red")
        raise typer.Exit(1) from e
    bad = [r for r in rows if r["status"] == "mismatch"]
    for r in bad:
        typer.secho(f"error: {r['message']}", err=True, fg="red")
    if bad:
        raise typer.Exit(1)
    return rows


@app.command("check")
def check_cmd(
    benchmark: Annotated[
        str, typer.Option("--benchmark", "-b", help="im2gps3k, yfcc4k, mp16-reason, hf, csv, exif.")
    ],
    data: Annotated[Path, typer.Option("--data", help="The benchmark's folder (or file for csv).")],
    benchmark_option: Annotated[
        list[str] | None,
        typer.Option(
            "--benchmark-option",
            help="Loader option KEY=VALUE (e.g. lat_col=latitude, split=test); repeatable (as in eval).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the description as JSON.")] = False,
) -> None:
    """Load a benchmark folder and report its size, labels, fixes and missing images.

    Examples:

    - `georeason data check --benchmark im2gps3k --data data/im2gps3k`
      (after `georeason data fetch im2gps3k --to data/im2gps3k`)
    - `georeason data check --benchmark synthetic --data runs/demo/world --benchmark-option split=train`
    """
    import warnings

    from georeason.datasets.benchmarks import load_benchmark

    opts = key_values(benchmark_option, "--benchmark-option")
    locked = _verify_lock(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_benchmark(benchmark, data, **opts)  # a missing folder or a bad table: error: ...
    info = ds.describe()
    info["warnings"] = [str(w.message) for w in caught]
    info["lock"] = locked
    if as_json:
        typer.echo(to_json(info, indent=2))
        return
    typer.echo(f"{info['name']}: {info['n_images']} images in {info['root']}")
    if locked:
        ok = sum(r["status"] == "ok" for r in locked)
        gone = [r["filename"] for r in locked if r["status"] == "missing"]
        typer.echo(
            f"checksums: {ok} of {len(locked)} fetched files match the lock"
            + (f" ({', '.join(gone)} no longer on disk)" if gone else "")
        )
    typer.echo(
        f"labels: {', '.join(info['labels']) or 'none (hierarchy truth comes from reverse geocoding)'}"
    )
    typer.echo(f"published rows: {info['reference_name'] or 'none'}")
    for w in info["warnings"]:
        typer.secho(f"warning: {w}", fg="yellow", err=True)
    if info["n_missing_images"]:
        typer.secho(
            f"{info['n_missing_images']} images missing on disk, e.g. {info['missing_images'][0]}",
            fg="yellow",
            err=True,
        )


__all__ = ["app"]
