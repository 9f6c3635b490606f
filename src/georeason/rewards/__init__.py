"""Reward functions for GRPO, with TRL's signature ``f(completions, **columns) -> list[float | None]``.

TRL calls each reward with the batch's completions (plain strings or conversational
message lists) and every dataset column as a list aligned with them (``lat``, ``lon``,
``country``, ``country_code``, ``city``, ``admin1``, ``continent``, ``entities``, ...),
plus ``prompts`` and its own extras. ``None`` means "nothing to score for this row"
(TRL leaves it out); every reward returns ``None`` or a finite float in
:data:`REWARD_RANGES`.

=====================  =====================================================  =========
name                   formula                                                source
=====================  =====================================================  =========
``geor_distance``      piecewise-linear r_dist(d), 1 → 0.5 (750 km) → 0.2     Geo-R
                       (2500 km) → 0 (20000 km)
``geor_format``        1 iff exactly one valid "(lat, lon)" pair in             Geo-R
                       parentheses (``strict_format=False``: any notation)
``geor``               r_dist × r_format                                      Geo-R
``globe_accuracy``     1[country]·(α·1[city] + 1 − α), α = 0.8                GLOBE
``globe_visual``       share of annotated entities the reasoning mentions     GLOBE
``globe_format``       <think>…</think><answer>…</answer>, nothing after      GLOBE
``globe_locatability`` P(yes)/(P(yes)+P(no)) from a judge                     GLOBE
``visual_precision``   share of the entities the reasoning names that a       ours
                       grounder sees in the image (GLOBE's visual reward in
                       precision form; :mod:`georeason.rewards.grounding`)
``hierarchy``          weighted per-level match continent → city              ours
``consistency``        named places agree with the stated coordinates         ours
``geoscore``           exp(−d/1492.7)                                         PIGEON
=====================  =====================================================  =========

Geo-R: arXiv 2601.00388; GLOBE: arXiv 2506.14674; PIGEON: CVPR 2024.

>>> from georeason.rewards import get_reward, load_rewards
>>> funcs, weights = load_rewards(["geor:1", "hierarchy:0.5"])
>>> [f.__name__ for f in funcs], weights
(['geor', 'hierarchy'], [1.0, 0.5])
"""

from georeason.rewards.batch import clear_caches, clear_parse_cache
from georeason.rewards.formulas import (
    JudgeError,
    geor_distance_from_km,
    geoscore_from_km,
    globe_accuracy_from_matches,
    hierarchy_from_matches,
    locatability_from_logprobs,
)
from georeason.rewards.geo_r import GeoRReward, geor, geor_distance, geor_format, make_geor
from georeason.rewards.globe import (
    GlobeAccuracy,
    GlobeFormat,
    GlobeVisual,
    VisualPrecision,
    globe_accuracy,
    globe_format,
    globe_visual,
    make_globe_accuracy,
    make_globe_format,
    make_globe_visual,
    make_visual_precision,
)
from georeason.rewards.judges import (
    GLOBE_JUDGE_PROMPT,
    BackendJudge,
    GlobeLocatability,
    KeywordJudge,
    LogprobJudge,
    make_globe_locatability,
    openai_judge,
    resolve_judge,
)
from georeason.rewards.ours import (
    ConsistencyReward,
    GeoScoreReward,
    HierarchyReward,
    consistency,
    geoscore,
    hierarchy,
    make_consistency,
    make_geoscore,
    make_hierarchy,
)
from georeason.rewards.registry import (
    FACTORIES,
    REWARD_RANGES,
    REWARDS,
    RewardSpec,
    get_reward,
    import_object,
    load_rewards,
)

__all__ = [
    "FACTORIES",
    "GLOBE_JUDGE_PROMPT",
    "REWARDS",
    "REWARD_RANGES",
    "BackendJudge",
    "ConsistencyReward",
    "GeoRReward",
    "GeoScoreReward",
    "GlobeAccuracy",
    "GlobeFormat",
    "GlobeLocatability",
    "GlobeVisual",
    "HierarchyReward",
    "JudgeError",
    "KeywordJudge",
    "LogprobJudge",
    "RewardSpec",
    "VisualPrecision",
    "clear_caches",
    "clear_parse_cache",
    "consistency",
    "geor",
    "geor_distance",
    "geor_distance_from_km",
    "geor_format",
    "geoscore",
    "geoscore_from_km",
    "get_reward",
    "globe_accuracy",
    "globe_accuracy_from_matches",
    "globe_format",
    "globe_visual",
    "hierarchy",
    "hierarchy_from_matches",
    "import_object",
    "load_rewards",
    "locatability_from_logprobs",
    "make_consistency",
    "make_geor",
    "make_geoscore",
    "make_globe_accuracy",
    "make_globe_format",
    "make_globe_locatability",
    "make_globe_visual",
    "make_hierarchy",
    "make_visual_precision",
    "openai_judge",
    "resolve_judge",
]
