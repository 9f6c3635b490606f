r"""The reward registry: a plain dict by name, factories for parameterised rewards,
dotted paths for a user's own functions, and ``"name:weight"`` specs for configs.

Weighting is TRL's job (``GRPOConfig.reward_weights``): :func:`load_rewards` returns
the functions and the weights side by side, ready for ``GRPOTrainer(reward_funcs=...)``
and ``GRPOConfig(reward_weights=...)``.
"""

from __future__ import annotations

import difflib
import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from georeason.rewards.geo_r import geor, geor_distance, geor_format, make_geor
from georeason.rewards.globe import (
    globe_accuracy,
    globe_format,
    globe_visual,
    make_globe_accuracy,
    make_globe_format,
    make_globe_visual,
    make_visual_precision,
)
from georeason.rewards.judges import make_globe_locatability
from georeason.rewards.ours import (
    consistency,
    geoscore,
    hierarchy,
    make_consistency,
    make_geoscore,
    make_hierarchy,
)

__all__ = [
    "FACTORIES",
    "REWARDS",
    "REWARD_RANGES",
    "RewardFunc",
    "RewardSpec",
    "get_reward",
    "import_object",
    "load_rewards",
]

RewardFunc = Callable[..., "list[float | None]"]

# Ready-to-use rewards with the papers' defaults. ``globe_locatability`` and our
# ``visual_precision`` are not here: they need a judge / a grounder (see FACTORIES).
REWARDS: dict[str, RewardFunc] = {
    "geor": geor,
    "geor_distance": geor_distance,
    "geor_format": geor_format,
    "globe_accuracy": globe_accuracy,
    "globe_visual": globe_visual,
    "globe_format": globe_format,
    "hierarchy": hierarchy,
    "consistency": consistency,
    "geoscore": geoscore,
}

# Factories taking keyword options (e.g. alpha, weights, judge, protocol, strict_format,
# whole_text_if_untagged); each returns a picklable callable whose ``__name__`` is the
# reward's name. A recipe reaches them through ``reward_options: {name: {option: value}}``.
FACTORIES: dict[str, Callable[..., RewardFunc]] = {
    "geor": partial(make_geor, "product"),
    "geor_distance": partial(make_geor, "distance"),
    "geor_format": partial(make_geor, "format"),
    "globe_accuracy": make_globe_accuracy,
    "globe_visual": make_globe_visual,
    "globe_format": make_globe_format,
    "globe_locatability": make_globe_locatability,
    "visual_precision": make_visual_precision,
    "hierarchy": make_hierarchy,
    "consistency": make_consistency,
    "geoscore": make_geoscore,
}

# Every reward returns None or a finite float within its range (tests hold them to it).
REWARD_RANGES: dict[str, tuple[float, float]] = {
    "geor": (0.0, 1.0),
    "geor_distance": (0.0, 1.0),
    "geor_format": (0.0, 1.0),
    "globe_accuracy": (0.0, 1.0),
    "globe_visual": (0.0, 1.0),
    "globe_format": (0.0, 1.0),
    "globe_locatability": (0.0, 1.0),
    "visual_precision": (0.0, 1.0),
    "hierarchy": (0.0, 1.0),
    "consistency": (0.0, 1.0),
    "geoscore": (0.0, 1.0),
}


def import_object(path: str, *, what: str = "reward") -> Any:
    r"""Import ``"package.module:name"`` or ``"package.module.name"``; a clear error if absent."""
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(
            f"{what} path {path!r} must look like 'package.module:function' or 'package.module.function'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} for {what} {path!r}: {exc}") from exc
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            public = sorted(n for n in dir(module) if not n.startswith("_"))
            raise ValueError(
                f"module {module_name!r} has no attribute {attr!r} (for {what} {path!r}); it defines: {public[:40]}"
            ) from None
    return obj


def get_reward(name: str, /, **options: Any) -> RewardFunc:
    r"""A reward function by registry name or dotted path.

    - a name in :data:`REWARDS` without options gives the ready function;
    - a name in :data:`FACTORIES` with options calls the factory
      (``get_reward("globe_accuracy", alpha=0.5)``, ``get_reward("globe_locatability", judge="keyword")``);
    - ``"package.module:function"`` or ``"package.module.function"`` imports a user's own
      reward (with options, the imported object is called with them as a factory).

    Every registered reward takes ``name=`` (the name TRL logs it under), so one reward can
    appear twice in a recipe with different options.

    >>> get_reward("geor").__name__
    'geor'
    >>> get_reward("geoscore", name="geoscore_globe", protocol="globe").__name__
    'geoscore_globe'
    >>> get_reward("globe_accuracy", alpha=0.5).alpha
    0.5
    >>> get_reward("geor_format", strict_format=False).strict_format  # the lenient r_format
    False
    >>> get_reward("geo-r")
    Traceback (most recent call last):
    ...
    ValueError: unknown reward 'geo-r' (did you mean 'geor'?); known rewards: consistency, geor, geor_distance, geor_format, geoscore, globe_accuracy, globe_format, globe_locatability, globe_visual, hierarchy, visual_precision; or give 'package.module:function'
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"reward name must be a non-empty string, got {name!r}")
    name = name.strip()
    if name in FACTORIES and (options or name not in REWARDS):
        if name == "globe_locatability" and "judge" not in options:
            raise ValueError(
                "globe_locatability needs a judge: get_reward('globe_locatability', judge=...) with a callable, "
                "'keyword' (offline heuristic), or the http(s) URL of an OpenAI-compatible judge server plus "
                "judge_model=... (or 'openai:URL:MODEL'); see georeason.rewards.make_globe_locatability"
            )
        return FACTORIES[name](**options)
    if name in REWARDS:
        return REWARDS[name]
    if ":" in name or "." in name:
        obj = import_object(name)
        if options:
            obj = obj(**options)
        if not callable(obj):
            raise TypeError(f"reward {name!r} is a {type(obj).__name__}, not a callable")
        return obj
    known = sorted(set(REWARDS) | set(FACTORIES))
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(
        f"unknown reward {name!r}{hint}; known rewards: {', '.join(known)}; or give 'package.module:function'"
    )


@dataclass(frozen=True, slots=True)
class RewardSpec:
    r"""One ``"name:weight"`` entry of a config (weight 1 when omitted).

    The weight is what follows the *last* colon when it reads as a number, so dotted paths
    with a colon still parse: ``"my_pkg.rewards:brevity:0.1"``.

    >>> RewardSpec.parse("globe_locatability:0.5")
    RewardSpec(name='globe_locatability', weight=0.5)
    >>> RewardSpec.parse("my_pkg.rewards:brevity")
    RewardSpec(name='my_pkg.rewards:brevity', weight=1.0)
    """

    name: str
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str) -> RewardSpec:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(
                f"a reward spec must be a non-empty 'name' or 'name:weight' string, got {text!r}"
            )
        text = text.strip()
        head, sep, tail = text.rpartition(":")
        if sep:
            try:
                weight = float(tail)
            except ValueError:
                return cls(text, 1.0)
            if not head.strip():
                raise ValueError(f"reward spec {text!r} has a weight but no name")
            if not math.isfinite(weight):
                raise ValueError(f"reward spec {text!r}: the weight must be a finite number")
            return cls(head.strip(), weight)
        return cls(text, 1.0)


def load_rewards(
    specs: Sequence[str | RewardSpec] | Mapping[str, float],
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[RewardFunc], list[float]]:
    r"""Reward functions and their weights from ``["name:weight", ...]`` (or ``{name: weight}``).

    ``options[name]`` holds keyword options for that reward's factory
    (e.g. ``{"globe_locatability": {"judge": "keyword"}}``).

    >>> funcs, weights = load_rewards(["globe_accuracy:1", "globe_format:0.5", "hierarchy"])
    >>> [f.__name__ for f in funcs], weights
    (['globe_accuracy', 'globe_format', 'hierarchy'], [1.0, 0.5, 1.0])
    """
    if isinstance(specs, Mapping):
        parsed = [RewardSpec(str(k), float(v)) for k, v in specs.items()]
    elif isinstance(specs, str):
        raise TypeError(f"specs must be a list of 'name:weight' strings, not one string ({specs!r})")
    else:
        parsed = [s if isinstance(s, RewardSpec) else RewardSpec.parse(s) for s in specs]
    if not parsed:
        raise ValueError("no reward given: list at least one 'name:weight'")
    options = options or {}
    unused = set(options) - {s.name for s in parsed}
    if unused:
        raise ValueError(f"options given for rewards not in the list: {sorted(unused)}")
    funcs = [get_reward(s.name, **dict(options.get(s.name, {}))) for s in parsed]
    names = [getattr(f, "__name__", type(f).__name__) for f in funcs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(
            f"two rewards share the name(s) {dupes}: TRL would log them under one name; give one of them "
            "another name in its options, e.g. options={'REWARD': {'name': 'REWARD_2'}} "
            "(recipe: reward_options: {REWARD: {name: REWARD_2}})"
        )
    return funcs, [s.weight for s in parsed]
