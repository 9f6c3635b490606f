"""Training on TRL's trainers: SFT warm start, then GRPO with geolocation rewards.

- :class:`GeoSFTConfig` / :class:`GeoGRPOConfig`: TRL's configs plus the project's fields.
- :func:`train_sft` / :func:`train_grpo`: one function per stage, readable top to bottom.
- :func:`load_config`: a YAML recipe (``recipes/``) plus ``key=value`` overrides.

Needs the ``[train]`` extra (torch, transformers, trl, peft, accelerate, datasets).
"""

from georeason.train.common import TrainResult
from georeason.train.config import GeoGRPOConfig, GeoModelDataArgs, GeoSFTConfig
from georeason.train.grpo import train_grpo
from georeason.train.recipe import RecipeError, build_config, load_config
from georeason.train.sft import train_sft

__all__ = [
    "GeoGRPOConfig",
    "GeoModelDataArgs",
    "GeoSFTConfig",
    "RecipeError",
    "TrainResult",
    "build_config",
    "load_config",
    "train_grpo",
    "train_sft",
]
