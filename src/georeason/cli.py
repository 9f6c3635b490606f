"""`georeason <command>`: a thin CLI. Heavy modules are imported inside commands
so that `georeason --help` stays fast and the core works without torch.

Errors are handled here, once, for every command (:class:`GeoreasonGroup`): a bad
argument, a missing file, model or extra, or any error of georeason's own prints
one line ``error: <what, and how to fix it>`` on stderr and exits non-zero;
``georeason --debug COMMAND`` (or ``GEOREASON_DEBUG=1``) shows the traceback
instead. Commands write JSON through :func:`to_json` (never ``NaN``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from georeason import __version__

# Click's base of usage errors (typer.BadParameter, a missing option, ...): typer >= 0.2x
# ships its own copy of click, older versions use click itself.
_ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)

# --- missing extras -------------------------------------------------------------

#: The optional dependency groups of pyproject.toml and the top-level modules each one
#: brings; a missing module is explained by naming its extra (:func:`extra_for`).
EXTRAS: dict[str, tuple[str, ...]] = {
    "train": (
        "torch",
        "torchvision",
        "transformers",
        "trl",
        "peft",
        "accelerate",
        "datasets",
        "tokenizers",
        "PIL",
        "matplotlib",
    ),
    "serve": ("fastapi", "uvicorn", "multipart", "python_multipart", "httpx", "openai", "PIL"),
    "vllm": ("vllm",),
}


def extra_for(module: str, prefer: str | None = None) -> str | None:
    """The extra that installs ``module`` (``"PIL.Image"`` -> ``"train"``), or None.

    A module in several extras (PIL) is credited to ``prefer`` when that extra has it.

    >>> extra_for("torch.nn"), extra_for("PIL", prefer="serve"), extra_for("numpy")
    ('train', 'serve', None)
    """
    top = module.split(".")[0]
    if prefer in EXTRAS and top in EXTRAS[prefer]:
        return prefer
    return next((name for name, mods in EXTRAS.items() if top in mods), None)


#: What each inference backend imports (``--backend``), checked before a model loads.
BACKEND_MODULES: dict[str, tuple[tuple[str, ...], str]] = {
    "hf": (("torch", "transformers", "PIL"), "train"),
    "openai": (("httpx", "PIL"), "serve"),
    "vllm": (("vllm", "PIL"), "vllm"),
}


def missing_module_message(exc: ImportError, command: str = "") -> str:
    """One sentence for an ImportError: which extra to install, when one has the module."""
    name = getattr(exc, "name", None) or ""
    what = f"georeason {command}".strip()
    prefer = getattr(exc, "extra", None) or ("serve" if command.split(" ")[0] == "serve" else None)
    extra = extra_for(name, prefer=prefer) if name else None
    if extra is not None and isinstance(exc, ModuleNotFoundError):
        return (
            f"{what} needs the '{extra}' extra (Python module {name.split('.')[0]!r} is not installed): "
            f'pip install "georeason[{extra}]" (from a clone: pip install -e ".[{extra}]")'
        )
    text = str(exc)
    if "pip install" in text:  # the message says what to install already
        return text
    return f"{text}; install the missing package, or reinstall georeason with the extra this command needs"


def require(*modules: str, extra: str | None = None) -> None:
    """Raise ModuleNotFoundError for the first of ``modules`` that is not installed, before
    any work starts; the CLI turns it into "install the '<extra>' extra" (``extra`` names
    the one to suggest for a module in several, e.g. PIL)."""
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package missing, or a None in sys.modules
            found = False
        if not found:
            err = ModuleNotFoundError(f"No module named {module!r}", name=module)
            err.extra = extra  # type: ignore[attr-defined]
            raise err


def require_backend(backend: str) -> None:
    """:func:`require` the modules of an inference backend (unknown names are left to it)."""
    modules, extra = BACKEND_MODULES.get(backend.strip().lower(), ((), ""))
    require(*modules, extra=extra or None)


# --- JSON -------------------------------------------------------------------------


def to_json(obj: Any, *, indent: int | None = None) -> str:
    """JSON text that every parser accepts (:func:`georeason.jsonsafe.dumps`): NaN and ±inf
    become ``null``, numpy values plain numbers, paths strings, anything else unknown its ``str``.

    >>> to_json({"city_lat": float("nan"), "n": 2})
    '{"city_lat": null, "n": 2}'
    """
    from georeason.jsonsafe import dumps

    return dumps(obj, indent=indent)


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
