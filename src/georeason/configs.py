"""A config dataclass from its defaults, a YAML file and ``key=value`` overrides.

Every pipeline of georeason (eval, data select, data distill, the demo, training) is
configured by a dataclass whose fields carry their help in
``field(metadata={"help": ...})`` (the convention of ``transformers.HfArgumentParser``
and TRL). This module turns layers of settings into one such object, in one order::

    defaults (or a base object) < a YAML file < --set key=value < explicit values

Keys are field names; a nested dataclass field is reached with a dot
(``filters.max_km``), and so is an entry of a dict field (``backend_options.base_url``;
deeper dots make nested dicts). ``--set`` values are read as YAML (``1e-6``, ``true``,
``[a, b]``, ``null``). An unknown key fails with the closest valid names. The command
line side (one option per field) is :mod:`georeason.commands.options`; training's
recipes use :func:`build` through :mod:`georeason.train.recipe`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

#: Above this many keys an unknown-key error points at ``keys_hint`` instead of listing them.
MAX_LISTED_KEYS = 60


class ConfigError(ValueError):
    """A config file, an override or a key that cannot become a config."""


class MissingFieldsError(ConfigError):
    """Required fields that no layer gave (``names``: their keys)."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"missing {', '.join(names)}")
        self.names = names


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML config file (empty file: ``{}``)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist.")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {p} is not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must be a mapping of keys to values, got {type(data).__name__}.")
    return data


def parse_assignment(text: str, flag: str = "--set") -> tuple[str, Any]:
    """``"key=value"`` -> ``(key, value)``, the value read as YAML (empty: None).

    >>> parse_assignment("learning_rate=0.5")
    ('learning_rate', 0.5)
    >>> parse_assignment("rewards=[geor:1, geor_format:0.5]")
    ('rewards', ['geor:1', 'geor_format:0.5'])
    >>> parse_assignment("backend_options.base_url=http://127.0.0.1:8000/v1")
    ('backend_options.base_url', 'http://127.0.0.1:8000/v1')
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"{flag} {text!r} must look like key=value (e.g. {flag} learning_rate=1e-6).")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"{flag} {text!r}: the value is not valid YAML: {e}") from e
    return key, value


# --- fields -------------------------------------------------------------------------


def field_type(cls: type[Any], f: dataclasses.Field[Any]) -> Any:
    """The field's annotation as a type (string annotations evaluated in the class's
    module), or None when it cannot be evaluated."""
    if not isinstance(f.type, str):
        return f.type
    try:
        # what typing.get_type_hints does, one field at a time: one unresolvable name spoils only its field
        return eval(f.type, vars(sys.modules[cls.__module__]), dict(vars(typing)))
    except Exception:  # a name only imported for type checking
        return None


def strip_optional(tp: Any) -> Any:
    """``X | None`` -> ``X``; anything else unchanged."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def init_fields(cls: type[Any]) -> dict[str, dataclasses.Field[Any]]:
    """The fields ``cls(...)`` accepts, by name."""
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def keys_of(cls: type[Any]) -> list[str]:
    """Every key of ``cls``: field names, ``parent.child`` for a nested dataclass's fields,
    and ``name.<key>`` for a dict field."""
    out: list[str] = []
    for name, f in init_fields(cls).items():
        tp = strip_optional(field_type(cls, f))
        if is_dataclass_type(tp):
            out += [f"{name}.{k}" for k in keys_of(tp)]
        elif typing.get_origin(tp) is dict or tp is dict:
            out.append(f"{name}.<key>")
        else:
            out.append(name)
    return out


# --- values ---------------------------------------------------------------------------


def coerce(tp: Any, value: Any) -> Any:
    """``value`` in the form a field of type ``tp`` takes, where YAML or a command line
    cannot say it: a float from a number or from YAML 1.1's ``1e-6`` string, a Path from
    text, a list/tuple of texts from ``a,b``. Anything else is returned as it is (the
    config's own checks judge it)."""
    if value is None or tp is None:
        return value
    if isinstance(tp, str):  # an annotation that could not be evaluated: judge by its text
        if isinstance(value, str) and "float" in tp:
            with contextlib.suppress(ValueError):
                return float(value)
        return value
    tp = strip_optional(tp)
    origin = typing.get_origin(tp)
    if tp is float and isinstance(value, (str, int)) and not isinstance(value, bool):
        with contextlib.suppress(ValueError):
            return float(value)
    elif tp is Path and isinstance(value, str):
        return Path(value)
    elif origin in (list, tuple) or tp in (list, tuple):
        items = [value] if isinstance(value, str) else value
        if isinstance(items, (list, tuple)):
            # "a,b" and ["a,b"] read as two items: one spelling for a command line and a file
            items = [p.strip() for i in items for p in (i.split(",") if isinstance(i, str) else [i])]
            items = [i for i in items if i != ""]
            return tuple(items) if (origin or tp) is tuple else list(items)
    return value


def _unknown(cls: type[Any], keys: Iterable[str], keys_hint: str | None) -> ConfigError:
    valid = keys_of(cls)
    names = [k.split(".<key>")[0] if k.endswith(".<key>") else k for k in valid]
    hints = []
    for k in keys:
        close = difflib.get_close_matches(k, names, n=3)
        hints.append(f"{k!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    listed = f"valid keys: {', '.join(valid)}" if len(valid) <= MAX_LISTED_KEYS else None
    return ConfigError(
        f"unknown key(s) for {cls.__name__}: {'; '.join(hints)}. "
        + "; ".join(x for x in (listed, keys_hint) if x)
    )


def _put(
    cls: type[Any], tree: dict[str, Any], key: str, value: Any, unknown: Callable[[], ConfigError]
) -> None:
    """Set dotted ``key`` in ``tree`` (a mapping of ``cls``'s keys), checking it is one
    (``unknown``: the error for a key that is not)."""
    head, _, rest = key.partition(".")
    fields = init_fields(cls)
    if head not in fields:
        raise unknown()
    tp = strip_optional(field_type(cls, fields[head]))
    if not rest:
        if is_dataclass_type(tp) and isinstance(value, Mapping):
            for k, v in value.items():
                _put(tp, tree.setdefault(head, {}), str(k), v, unknown)
        elif (typing.get_origin(tp) is dict or tp is dict) and isinstance(value, Mapping):
            _merge_dict(tree.setdefault(head, {}), value)
        else:
            tree[head] = value
    elif is_dataclass_type(tp):
        sub = tree.setdefault(head, {})
        if not isinstance(sub, dict):  # a whole nested object set earlier: start from its fields
            sub = tree[head] = dataclasses.asdict(sub)
        _put(tp, sub, rest, value, unknown)
    elif typing.get_origin(tp) is dict or tp is dict or tp is None:
        node = tree.setdefault(head, {})
        *parents, last = rest.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    else:
        raise unknown()


def _merge_dict(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for k, v in new.items():
        if isinstance(v, Mapping) and isinstance(into.get(k), dict):
            _merge_dict(into[k], v)
        else:
            into[k] = dict(v) if isinstance(v, Mapping) else v


def _make(cls: type[T], tree: Mapping[str, Any], base: Any, path: str) -> T:
    """``cls`` from ``base`` (or its defaults) with the values of ``tree`` over it."""
    fields = init_fields(cls)
    kwargs: dict[str, Any] = {}
    for name, value in tree.items():
        f = fields[name]
        tp = field_type(cls, f)
        inner = strip_optional(tp)
        current = getattr(base, name) if base is not None else default_of(f)
        if is_dataclass_type(inner) and isinstance(value, Mapping):
            kwargs[name] = _make(inner, value, current if current is not None else None, f"{path}{name}.")
        elif (typing.get_origin(inner) is dict or inner is dict) and isinstance(value, Mapping):
            merged = dict(current or {})
            _merge_dict(merged, value)
            kwargs[name] = merged
        else:
            kwargs[name] = coerce(tp if tp is not None else str(f.type), value)
    if base is not None:
        return dataclasses.replace(base, **kwargs)
    missing = [f"{path}{n}" for n, f in fields.items() if not has_default(f) and n not in kwargs]
    if missing:
        raise MissingFieldsError(missing)
    return cls(**kwargs)


def build(
    cls: type[T],
    *,
    base: T | None = None,
    file: str | Path | Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
    explicit: Mapping[str, Any] | None = None,
    keys_hint: str | None = None,
) -> T:
    """``cls`` from ``base`` (None: its defaults) < ``file`` (a YAML path or a mapping) <
    ``overrides`` (``key=value`` texts) < ``explicit`` (dotted key -> value, e.g. the
    options given on a command line).

    Only keys some layer gives are passed to ``cls`` when there is no base, so a class
    with computed defaults (TRL's configs) computes them as usual. Raises
    :class:`ConfigError` for an unknown key (naming the valid ones, or ``keys_hint``
    when they are too many) and :class:`MissingFieldsError` for required fields no layer
    gave; the class's own checks raise what they raise.
    """
    tree: dict[str, Any] = {}
    sets = [parse_assignment(text) for text in overrides]  # a malformed one is named before any key check
    mapping = read_config_file(file) if isinstance(file, (str, Path)) else (file or {})
    for key, value in [*mapping.items(), *sets, *(explicit or {}).items()]:
        _put(cls, tree, str(key), value, functools.partial(_unknown, cls, [str(key)], keys_hint))
    return _make(cls, tree, base, "")


__all__ = [
    "ConfigError",
    "MissingFieldsError",
    "build",
    "coerce",
    "field_type",
    "init_fields",
    "keys_of",
    "parse_assignment",
    "read_config_file",
    "strip_optional",
]
