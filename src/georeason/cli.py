"""`georeason <command>`: a thin CLI. Heavy modules are imported inside commands
so that `georeason --help` stays fast and the core works without torch.

Errors are handled here, once, for every command (:class:`GeoreasonGroup`): a bad
argument, a missing file, model or extra, or any error of georeason's own prints
one line ``error: <what, and how to fix it>`` on stderr and exits non-zero;
``georeason --debug COMMAND`` (or ``GEOREASON_DEBUG=1``) shows the traceback
instead. Commands write JSON through :func:`to_json` (never ``NaN``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from georeason import __version__
from georeason.commands import (
    data_cmd,
    data_locatability,
    data_scale,
    demo,
    eval_cmd,
    geo_cmd,
    locate,
    score,
    serve_cmd,
    synth,
    train,
    view,
)
from georeason.commands.common import (  # noqa: F401  (extra_for, require, to_json: also georeason.cli's names)
    extra_for,
    missing_module_message,
    require,
    to_json,
)

# Click's base of usage errors (typer.BadParameter, a missing option, ...): typer >= 0.2x
# ships its own copy of click, older versions use click itself.
_ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)

# --- errors -----------------------------------------------------------------------

DEBUG_ENV = "GEOREASON_DEBUG"
_state = {"debug": False}


def _debug() -> bool:
    return _state["debug"] or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def explain(exc: BaseException, command: str = "") -> str:
    """The message ``georeason`` prints for an exception that ends a command."""
    if isinstance(exc, ImportError):
        return missing_module_message(exc, command)
    text = str(exc).strip()
    if isinstance(exc, OSError) and exc.strerror and (not text or text.startswith("[Errno")):
        # the builtin "[Errno 2] No such file or directory: 'x'" -> "No such file or directory: x"
        files = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        return f"{exc.strerror}: {files}" if files else exc.strerror
    if isinstance(exc, ValueError | OSError) or type(exc).__module__.startswith("georeason."):
        return text or type(exc).__name__
    return (
        f"{type(exc).__name__}: {text} (unexpected: rerun with `georeason --debug ...` or "
        f"{DEBUG_ENV}=1 to see the traceback, and please report it)"
    )


def _echo_error(message: str) -> None:
    lines = message.strip().splitlines() or ["unknown error"]
    typer.echo(f"error: {lines[0]}", err=True)
    for line in lines[1:]:  # e.g. the file layout a missing benchmark should have
        typer.echo(line, err=True)


class GeoreasonGroup(TyperGroup):
    """The root command: runs a subcommand and turns whatever ends it into an exit code
    and, on failure, one ``error:`` line (see the module docstring)."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        _state["debug"] = False
        argv = list(sys.argv[1:] if args is None else args)
        command = self._command_path(argv)
        try:
            rv = super().main(
                args=argv, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra
            )
            code = rv if isinstance(rv, int) else 0
        except _ClickException as e:  # usage: a bad or missing option, a BadParameter
            if type(e).__name__ == "NoArgsIsHelpError":  # the help was printed already
                if standalone_mode:
                    sys.exit(e.exit_code)  # type: ignore[attr-defined]
                return e.exit_code  # type: ignore[attr-defined]
            ctx = getattr(e, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            _echo_error(e.format_message() + hint)  # type: ignore[attr-defined]
            code = e.exit_code  # type: ignore[attr-defined]
        except typer.Abort:
            _echo_error("aborted")
            code = 1
        except Exception as e:
            if _debug():
                raise
            _echo_error(explain(e, command))
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code

    def _command_path(self, argv: list[str]) -> str:
        """``["train", "sft", "--config", "x"]`` -> ``"train sft"`` (for messages)."""
        words: list[str] = []
        group: Any = self
        for arg in argv:
            sub = getattr(group, "commands", {}).get(arg)
            if sub is None:
                if words:
                    break
                continue  # root options such as --debug
            words.append(arg)
            group = sub
        return " ".join(words)


app = typer.Typer(
    name="georeason",
    cls=GeoreasonGroup,
    help="Train, run and evaluate vision-language models that geolocate photos by reasoning.",
    epilog="Exit status: 0 done; 1 an error (one `error:` line says what and how to fix it); 2 a bad "
    "argument; 130 interrupted. `georeason --debug COMMAND ...` (or GEOREASON_DEBUG=1) shows the traceback.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstrings wrap to the terminal; `code` and lists render
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
    debug: bool = typer.Option(
        False, "--debug", help=f"On an error, show the Python traceback (also {DEBUG_ENV}=1)."
    ),
) -> None:
    """georeason: Geo-R and GLOBE, exactly as their papers describe them, and beyond."""
    _state["debug"] = debug


# --- commands -----------------------------------------------------------------
# Each module under georeason/commands/ holds its commands on a typer.Typer of its own
# (`module.app`) and imports nothing of this file; the app is put together here, once.
# The modules import their heavy dependencies inside the commands, so --help stays fast.

for _module in (demo, eval_cmd, geo_cmd, locate, score, serve_cmd, synth, view):
    app.add_typer(_module.app)

data_app = typer.Typer(
    name="data",
    help="Datasets: download (fetch) and check (check) benchmarks; build training sets from MP-16: "
    "label, select, rollouts, distill; locatability (GLOBE's judge data).",
    no_args_is_help=True,
)
data_app.add_typer(data_cmd.app)  # fetch, check
data_app.add_typer(data_scale.app)  # label, select, rollouts, distill
data_app.add_typer(data_locatability.app)  # locatability (GLOBE's reward-model data)
app.add_typer(data_app, name="data")
app.add_typer(train.app, name="train")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
