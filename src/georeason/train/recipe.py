"""YAML recipes -> configs: one flat mapping of config field names, plus overrides.

A recipe is a YAML mapping whose keys are fields of :class:`~georeason.train.config.GeoSFTConfig`
or :class:`~georeason.train.config.GeoGRPOConfig` (TRL's and ``TrainingArguments``'
fields plus the project's). ``--set key=value`` overrides a key; values are read as
YAML (``--set learning_rate=1e-6``, ``--set rewards=[geor:1]``,
``--set use_peft=true``). Unknown keys fail with the closest valid names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class RecipeError(ValueError):
    """A recipe or an override that cannot become a config."""


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The mapping of a YAML recipe file."""
    p = Path(path)
    if not p.is_file():
        raise RecipeError(f"recipe {p} does not exist (recipes ship under recipes/ in the repository).")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise RecipeError(f"recipe {p} is not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {p} must be a mapping of config fields, got {type(data).__name__}.")
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """``"key=value"`` -> ``(key, value)``, the value parsed as YAML.

    >>> parse_override("learning_rate=0.5")
    ('learning_rate', 0.5)
    >>> parse_override("rewards=[geor:1, geor_format:0.5]")
    ('rewards', ['geor:1', 'geor_format:0.5'])
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise RecipeError(f"override {text!r} must look like key=value (e.g. --set learning_rate=1e-6).")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise RecipeError(f"override {text!r}: the value is not valid YAML: {e}") from e
    return key, value


def _numberish(values: dict[str, Any], fields: Mapping[str, dataclasses.Field[Any]]) -> None:
    """YAML 1.1 reads ``1e-6`` as a string; convert such values of float fields."""
    for key, value in values.items():
        ftype = str(fields[key].type)
        if isinstance(value, str) and "float" in ftype:
            with contextlib.suppress(ValueError):  # not a number: the config's check reports it
                values[key] = float(value)


def build_config(cls: type[T], recipe: Mapping[str, Any], overrides: Iterable[str] = ()) -> T:
    """Instantiate ``cls`` (a config dataclass) from a recipe mapping and ``key=value`` overrides."""
    values = dict(recipe)
    for text in overrides:
        key, value = parse_override(text)
        values[key] = value
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = [k for k in values if k not in fields]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, fields, n=3)
            hints.append(f"{k!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        raise RecipeError(
            f"unknown key(s) for {cls.__name__}: {'; '.join(hints)}. Keys are the config's field names; "
            "`georeason train sft --help-config` / `georeason train grpo --help-config` lists them."
        )
    _numberish(values, fields)
    return cls(**values)


def load_config(cls: type[T], path: str | Path | None, overrides: Iterable[str] = ()) -> T:
    """Read the recipe at ``path`` (None: no recipe, overrides only) and build ``cls``."""
    return build_config(cls, read_recipe(path) if path is not None else {}, overrides)


def describe_fields(cls: type[Any], only_project: bool = False) -> list[tuple[str, str, str]]:
    """(name, default, help) of each field of a config class, for ``--help-config``."""
    from georeason.train.config import GeoModelDataArgs

    project = {f.name for f in dataclasses.fields(GeoModelDataArgs)} | {"rewards"}
    rows = []
    for f in dataclasses.fields(cls):
        if not f.init or (only_project and f.name not in project):
            continue
        default = f.default if f.default is not dataclasses.MISSING else "(computed)"
        rows.append((f.name, repr(default), str(f.metadata.get("help", "")).strip()))
    return rows
