"""One way to configure a command: a config dataclass becomes its command-line options.

A pipeline command (``eval``, ``data select``, ``data distill``, ``demo``) declares
its settings once, as the fields of its config dataclass with their help in
``field(metadata={"help": ...})`` (``HfArgumentParser``'s convention; extra option
strings in ``metadata={"aliases": [...]}``). :class:`ConfigOptions` gives the command

- one flag per field: ``--batch-size N``; ``--plots/--no-plots`` for a bool; a list
  field takes a repeatable singular flag (``--teacher a --teacher b`` or ``a,b``); a
  dict field a repeatable ``--backend-option KEY=VALUE``; a nested dataclass's fields
  their own names (``--max-km`` sets ``filters.max_km``);
- ``--config FILE``: a YAML mapping of the same keys;
- ``--set KEY=VALUE``: the value read as YAML, dotted keys for nested settings
  (``--set backend_options.base_url=http://...``, ``--set filters.max_km=10``);

and resolves them in one order: defaults < ``--config`` < ``--set`` < flags given on
the command line (:func:`georeason.configs.build`). Training keeps its recipe files
and the same ``--set`` (:mod:`georeason.train.recipe`).

The options are made when a command's parameters are first read, so that
``georeason --help`` does not import the pipelines (pandas, torch, ...).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

import typer
from typer.core import TyperCommand

from georeason.configs import (
    ConfigError,
    MissingFieldsError,
    build,
    field_type,
    init_fields,
    parse_assignment,
    strip_optional,
)

T = TypeVar("T")

_META = "georeason.config_options"
_CONFIG, _SET = "config__file", "config__set"
_SCALARS = (str, int, float, Path)


def key_values(items: list[str] | None, flag: str) -> dict[str, Any]:
    """``["k=v", ...]`` -> ``{"k": v}``: values read as YAML (numbers, true/false, null),
    ``-`` in keys read as ``_`` (``--benchmark-option lat-col=latitude``)."""
    out: dict[str, Any] = {}
    for item in items or []:
        try:
            key, value = parse_assignment(item, flag)
        except ConfigError as e:
            raise typer.BadParameter(str(e), param_hint=flag) from e
        out[key.replace("-", "_")] = value
    return out


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _singular(name: str) -> str:
    """A repeatable flag names one item: teachers -> teacher, backend_options -> backend_option."""
    return name[:-1] if name.endswith("s") else name


@dataclasses.dataclass(frozen=True)
class _Option:
    key: str  # dotted config key
    param: str  # the click parameter's name
    kind: str  # "scalar", "bool", "list" or "dict"
    decls: tuple[str, ...]
    annotation: Any
    default: Any
    help: str


def _options_of(cls: type[Any], prefix: str = "") -> list[_Option]:
    out: list[_Option] = []
    for name, f in init_fields(cls).items():
        key = prefix + name
        tp = field_type(cls, f)
        inner = strip_optional(tp)
        origin = typing.get_origin(inner) or inner
        if dataclasses.is_dataclass(inner) and isinstance(inner, type):
            out += _options_of(inner, key + ".")
            continue
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None if required or f.default is dataclasses.MISSING else f.default
        text = str(f.metadata.get("help", "")).strip()
        aliases = tuple(f.metadata.get("aliases", ()))
        if required:
            text += " Required: as this flag, in --config or by --set."
        if origin is bool:
            kind, decls, ann = "bool", (f"{_flag(name)}/--no-{name.replace('_', '-')}", *aliases), bool
        elif origin is dict:
            kind, decls, ann, default = "dict", (_flag(_singular(name)), *aliases), list[str] | None, None
            text += f" KEY=VALUE, value read as YAML; repeatable (= --set {key}.KEY=VALUE)."
        elif origin in (list, tuple):
            kind, decls, ann = "list", (_flag(_singular(name)), *aliases), list[str] | None
            default = list(default) if default is not None else None
            text += " Repeatable, or comma-separated."
        elif inner in _SCALARS:
            kind, decls, ann = "scalar", (_flag(name), *aliases), inner | None  # type: ignore[operator]
        else:
            raise TypeError(f"{cls.__name__}.{name}: no command-line form for a field of type {tp!r}")
        param = "config__" + key.replace(".", "__")
        out.append(_Option(key, param, kind, decls, ann, default, text))
    return out


class ConfigOptions(Generic[T]):
    """The options of a config dataclass, named ``"module:Class"`` so that it is imported
    only when the command runs or shows its help.

    Usage::

        SETTINGS = ConfigOptions("georeason.eval.runner:EvalConfig")

        @app.command("eval", cls=SETTINGS.command_class)
        def eval_cmd(ctx: typer.Context, out: ...) -> None:
            config = SETTINGS.resolve(ctx)
    """

    def __init__(self, target: str, panel: str = "Settings") -> None:
        self.target = target
        self.panel = f"{panel}: these flags, --config FILE (YAML) or --set KEY=VALUE"

    @functools.cached_property
    def cls(self) -> type[T]:
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]

    @functools.cached_property
    def options(self) -> list[_Option]:
        return _options_of(self.cls)

    @functools.cached_property
    def params(self) -> list[Any]:
        """The click parameters: typer makes them from a function with one keyword per option."""
        p = self.panel
        sig = [
            inspect.Parameter(
                _CONFIG,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[
                    Path | None,
                    typer.Option(
                        "--config",
                        "-c",
                        help="YAML file of settings (the keys --set takes).",
                        rich_help_panel=p,
                    ),
                ],
            ),
            inspect.Parameter(
                _SET,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[
                    list[str] | None,
                    typer.Option(
                        "--set",
                        "-s",
                        help="KEY=VALUE, the value read as YAML; dotted keys reach nested settings "
                        "(a dict's entries, a group's fields); repeatable. Beats --config; flags beat both.",
                        rich_help_panel=p,
                    ),
                ],
            ),
        ]
        for o in self.options:
            info = typer.Option(*o.decls, help=o.help, rich_help_panel=p, show_default=o.default is not None)
            sig.append(
                inspect.Parameter(
                    o.param,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=o.default,
                    annotation=Annotated[o.annotation, info],
                )
            )

        def settings(**kwargs: Any) -> None:  # only its signature is read
            """Settings."""

        settings.__signature__ = inspect.Signature(sig)  # type: ignore[attr-defined]
        one = typer.Typer(add_completion=False)
        one.command()(settings)
        return list(typer.main.get_command(one).params)

    @functools.cached_property
    def command_class(self) -> type[TyperCommand]:
        """A typer command class whose parameters add these options (made on first use)
        and which hands their values to :meth:`resolve` instead of the function."""
        options = self

        class ConfigCommand(TyperCommand):
            config_options = options
            _own: list[Any] = []  # noqa: RUF012  (set per instance by click's __init__)
            _all: list[Any] | None = None

            @property  # type: ignore[override]
            def params(self) -> list[Any]:
                if self._all is None:
                    self._all = [*self._own, *options.params]
                return self._all

            @params.setter
            def params(self, value: list[Any]) -> None:
                self._own, self._all = list(value), None

            def invoke(self, ctx: Any) -> Any:
                options.take(ctx)
                return super().invoke(ctx)

        return ConfigCommand

    def take(self, ctx: Any) -> None:
        """Move these options' values out of ``ctx.params`` (the command function does not
        take them) to where :meth:`resolve` finds them, with which ones the user gave."""
        names = {p.name for p in self.params}
        values = {n: ctx.params.pop(n) for n in names if n in ctx.params}
        ctx.meta[_META] = (values, {n for n in values if _given(ctx, n)})

    def flag_of(self, key: str) -> str:
        """The first option string of a config key (``filters.max_km`` -> ``--max-km``)."""
        o = next((o for o in self.options if o.key == key), None)
        return o.decls[0].split("/")[0] if o is not None else f"--set {key}=..."

    def resolve(self, ctx: typer.Context, base: T | None = None) -> T:
        """The config: ``base`` (None: the class's defaults) < --config < --set < the flags
        given; its ``check()`` run when it has one. A bad setting ends the command with
        exit status 2 and one line naming its flag."""
        values, given = ctx.meta[_META]
        explicit: dict[str, Any] = {}
        for o in self.options:
            if o.param not in given:
                continue
            value = values[o.param]
            explicit[o.key] = key_values(value, o.decls[0]) if o.kind == "dict" else value
        try:
            config = build(
                self.cls,
                base=base,
                file=values.get(_CONFIG),
                overrides=values.get(_SET) or (),
                explicit=explicit,
            )
            check = getattr(config, "check", None)
            if callable(check):
                check()
        except MissingFieldsError as e:
            raise typer.BadParameter(
                f"missing {', '.join(self.flag_of(k) for k in e.names)} (flags, --config or --set)"
            ) from e
        except ConfigError as e:
            hint = "--config" if str(e).startswith("config file") else "--set"
            raise typer.BadParameter(str(e), param_hint=hint) from e
        except (ValueError, TypeError) as e:
            raise typer.BadParameter(str(e), param_hint=self._named_in(str(e))) from e
        return config

    def _named_in(self, message: str) -> str | None:
        """The flag of the setting a check's message names first (for the error line)."""
        found = []
        for o in self.options:
            m = re.search(rf"(?<![\w.]){re.escape(o.key.rsplit('.', 1)[-1])}(?!\w)", message)
            if m:
                found.append((m.start(), o.decls[0].split("/")[0]))
        return min(found)[1] if found else None


def _given(ctx: Any, name: str) -> bool:
    """Whether the user gave this parameter (not its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


__all__ = ["ConfigOptions", "key_values"]
