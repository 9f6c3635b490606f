"""YAML recipes -> configs: one flat mapping of config field names, plus overrides.

A recipe is a YAML mapping whose keys are fields of :class:`~georeason.train.config.GeoSFTConfig`
or :class:`~georeason.train.config.GeoGRPOConfig` (TRL's and ``TrainingArguments``'
fields plus the project's). ``--set key=value`` overrides a key; values are read as
YAML (``--set learning_rate=1e-6``, ``--set rewards=[geor:1]``,
``--set use_peft=true``, ``--set reward_options.globe_accuracy.alpha=0.8``). Unknown keys
fail with the closest valid names. The layering is :func:`georeason.configs.build`, the
same for every command.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from georeason.configs import ConfigError, build, parse_assignment, read_config_file

T = TypeVar("T")

_KEYS_HINT = (
    "Keys are the config's field names; `georeason train sft --help-config` / "
    "`georeason train grpo --help-config` lists them."
)


class RecipeError(ConfigError):
    """A recipe or an override that cannot become a config."""


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The mapping of a YAML recipe file."""
    if not Path(path).is_file():
        raise RecipeError(f"recipe {path} does not exist (recipes ship under recipes/ in the repository).")
    try:
        return read_config_file(path)
    except ConfigError as e:
        raise RecipeError(str(e).replace("config file", "recipe", 1)) from e


def parse_override(text: str) -> tuple[str, Any]:
    """``"key=value"`` -> ``(key, value)``, the value parsed as YAML.

    >>> parse_override("learning_rate=0.5")
    ('learning_rate', 0.5)
    >>> parse_override("rewards=[geor:1, geor_format:0.5]")
    ('rewards', ['geor:1', 'geor_format:0.5'])
    """
    try:
        return parse_assignment(text)
    except ConfigError as e:
        raise RecipeError(str(e)) from e


def build_config(cls: type[T], recipe: Mapping[str, Any], overrides: Iterable[str] = ()) -> T:
    """Instantiate ``cls`` (a config dataclass) from a recipe mapping and ``key=value`` overrides."""
    try:
        return build(cls, file=recipe, overrides=overrides, keys_hint=_KEYS_HINT)
    except RecipeError:
        raise
    except ConfigError as e:
        raise RecipeError(str(e)) from e


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
