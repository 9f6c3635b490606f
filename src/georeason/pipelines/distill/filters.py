"""Keep or drop one image from its stored teacher outputs: agreement, truth, locatability, grounding.

Pure functions of a record and a :class:`~georeason.pipelines.distill.config.FilterConfig`,
so a rerun with other filters recomputes every decision without asking the teachers again."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from georeason.pipelines.distill.config import DistillError, FilterConfig, finite
from georeason.types import PLACE_LEVELS

#: drop reasons, in the order they are checked
DROP_REASONS = (
    "image unreadable",
    "teachers failed",
    "no usable answer",
    "no locatability judgement",
    "not locatable",
    "teachers disagree",
    "wrong country",
    "wrong city",
    "no reasoning",
    "entity not in the image",
)


@dataclass
class Decision:
    kept: bool
    reason: str | None  # one of DROP_REASONS when dropped
    chosen: int | None = None  # index of the teacher whose reasoning is kept
    group: list[int] = field(default_factory=list)  # teachers that agree (and are right)
    locatability: float | None = None
    locatable: bool | None = None


def _country_key(t: Mapping[str, Any]) -> str | None:
    from georeason.geo import normalize_name

    if t.get("country_code"):
        return str(t["country_code"])
    if t.get("country"):
        return "name:" + normalize_name(str(t["country"]))
    return None


def _clusters(members: Sequence[int], outs: Sequence[Mapping[str, Any]], agree_on: str) -> list[list[int]]:
    """Teachers grouped by the country (and city) they name, largest first (ties: teacher order)."""
    from georeason.geo import names_match

    clusters: list[tuple[str, str | None, list[int]]] = []
    for i in members:
        key = _country_key(outs[i])
        if key is None:
            continue
        city = outs[i].get("city")
        if agree_on == "city" and not city:
            continue
        for ckey, ccity, group in clusters:
            if ckey != key:
                continue
            code = key if not key.startswith("name:") else None
            if agree_on == "country" or names_match(city, ccity, level="city", country_code=code):
                group.append(i)
                break
        else:
            clusters.append((key, city, [i]))
    groups = [g for _, _, g in clusters]
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def _right(t: Mapping[str, Any], truth: Mapping[str, Any], level: str, max_km: float) -> tuple[bool, bool]:
    """(country right, city right) of one teacher's answer against the truth.

    :func:`georeason.match.judge` decides (the rule of the metrics and rewards); a city
    whose geocoded place lies within ``max_km`` of the truth also counts (a teacher naming
    the suburb or town next to the gazetteer's nearest place).
    """
    from georeason.match import Truth, judge

    def text(key: str, src: Mapping[str, Any]) -> str | None:
        v = src.get(key)
        return str(v).strip() or None if v is not None else None

    want = Truth(*(text(k, truth) for k in PLACE_LEVELS))
    answer = Truth(None, text("country_code", t), text("country", t), None, text("city", t))
    if not want.has_country or not answer.has_country:
        return False, False
    verdict = judge(answer, want, ("country", "city"))
    if not verdict["country"] or level != "city":
        return bool(verdict["country"]), False
    d = finite(t.get("distance_km"))
    near = d is not None and d <= max_km and str(t.get("geocode_level") or "").startswith("city")
    return True, bool(near or verdict["city"])


def grounding_scores(record: Mapping[str, Any], config: FilterConfig) -> list[list[float]] | None:
    """Per teacher, the grounder's score of each entity its reasoning names (``config.grounder``).

    Scores of a grounder that looks up the photo (clues, detector) are stored in the
    record (``record["grounding"]``, by the run or by :func:`~georeason.pipelines.distill.run.finalize`
    on a rerun with another grounder); the text grounder needs nothing and is asked here.
    None when the record holds no scores of this grounder.
    """
    stored = record.get("grounding")
    if isinstance(stored, Mapping) and stored.get("grounder") == config.grounder:
        return [list(s) for s in stored.get("scores") or []]
    if config.grounder.strip() == "text":
        from georeason.rewards.grounding import TextGrounder

        outs = record.get("teachers") or []
        return TextGrounder()(None, [list(t.get("entities") or []) for t in outs])
    return None


def decide(record: Mapping[str, Any], config: FilterConfig) -> Decision:
    """Keep or drop one image from its stored teacher outputs (pure; reruns recompute it)."""
    outs: list[Mapping[str, Any]] = record.get("teachers") or []
    p = [finite(t.get("p_yes")) for t in outs]
    judged = [x for x in p if x is not None]
    loc = float(np.mean(judged)) if judged else None
    dec = Decision(kept=False, reason=None, locatability=loc)
    dec.locatable = None if loc is None else bool(loc >= config.locatable_threshold)
    if record.get("image_error"):
        dec.reason = "image unreadable"
        return dec
    m = config.needed(len(outs))
    answered = [i for i, t in enumerate(outs) if t.get("completion") is not None]
    if len(answered) < m:
        dec.reason = "teachers failed"
        return dec
    usable = [
        i for i in answered if _country_key(outs[i]) and (config.agree_on == "country" or outs[i].get("city"))
    ]
    if len(usable) < m:
        dec.reason = "no usable answer"
        return dec
    if config.min_locatability is not None:
        if loc is None:
            dec.reason = "no locatability judgement"
            return dec
        if loc < config.min_locatability:
            dec.reason = "not locatable"
            return dec
    agreeing = _clusters(answered, outs, config.agree_on)
    if not agreeing or len(agreeing[0]) < m:
        dec.reason = "teachers disagree"
        return dec
    truth = record.get("truth") or {}
    if config.truth_level == "none":
        group = agreeing[0]
    else:
        rights = {i: _right(outs[i], truth, config.truth_level, config.max_km) for i in answered}
        ok_country = [i for i in answered if rights[i][0]]
        ok = ok_country if config.truth_level == "country" else [i for i in ok_country if rights[i][1]]
        right_groups = _clusters(ok, outs, config.agree_on)
        if not right_groups or len(right_groups[0]) < m:
            country_groups = _clusters(ok_country, outs, "country")
            has_country = bool(country_groups) and len(country_groups[0]) >= m
            dec.reason = "wrong city" if config.truth_level == "city" and has_country else "wrong country"
            return dec
        group = right_groups[0]
    dec.group = list(group)
    with_text = [i for i in group if outs[i].get("reasoning")]
    if not with_text:
        dec.reason = "no reasoning"
        return dec
    scores = grounding_scores(record, config)
    if scores is None:
        raise DistillError(
            f"record {record.get('id')!r} holds no entity scores of the grounder {config.grounder!r}: "
            "run_distill / finalize ground the images first"
        )
    cutoff = config.visible_at()
    # GLOBE drops reasoning that names things not in the photo: only a reasoning whose
    # every entity the grounder sees may be kept
    with_text = [i for i in with_text if all(x >= cutoff for x in scores[i])]
    if not with_text:
        dec.reason = "entity not in the image"
        return dec

    def closeness(i: int) -> tuple[float, int]:
        d = finite(outs[i].get("distance_km"))
        return (d if d is not None else math.inf, i)

    dec.chosen = min(with_text, key=closeness)
    dec.kept = True
    return dec


__all__ = ["DROP_REASONS", "Decision", "decide", "grounding_scores"]
