"""Hierarchy accuracy (continent / country / admin1 / city) of named places, judged by
:func:`georeason.match.judge` (the rule the rewards use), and the label helpers it and the
per-continent breakdown share (:func:`country_codes`, :func:`true_continents`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from georeason.eval.metrics.bootstrap import binomial_ci, group_rng
from georeason.eval.metrics.results import LevelAccuracy
from georeason.types import CONTINENT_NAMES, PLACE_LEVELS

_CONTINENT_BY_NAME = {v.lower(): k for k, v in CONTINENT_NAMES.items()}


def continent_label(x: Any) -> str:
    """'EU' / 'eu' / 'Europe' -> 'EU'; unknown text is kept (stripped) as its own group; blank -> ''."""
    s = _clean_one(x)
    if not s:
        return ""
    if s.upper() in CONTINENT_NAMES:
        return s.upper()
    return _CONTINENT_BY_NAME.get(" ".join(s.lower().split()), s)


def labels_to_frame(labels: Mapping[str, ArrayLike] | pd.DataFrame, n: int, name: str) -> pd.DataFrame:
    if isinstance(labels, pd.DataFrame):
        df = labels.reset_index(drop=True)
    else:
        df = pd.DataFrame({k: pd.Series(np.asarray(v, dtype=object)) for k, v in labels.items()})
    if len(df) != n:
        raise ValueError(f"{name} has {len(df)} rows, the coordinates have {n}")
    unknown = set(df.columns) - set(PLACE_LEVELS)
    if unknown:
        raise ValueError(f"{name}: unknown label keys {sorted(unknown)}; use {', '.join(PLACE_LEVELS)}")
    return df


def _clean_one(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    return str(v).strip()


def _map_distinct(values: Any, fn: Any) -> NDArray[np.object_]:
    """``fn`` applied to each distinct value once (labels repeat a lot), as an object array."""
    idx, uniq = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
    mapped = np.empty(len(uniq), dtype=object)
    mapped[:] = [fn(u) for u in uniq]
    return mapped[idx]


def _clean_text(col: Any) -> NDArray[np.object_]:
    """Object array of stripped strings, '' where blank / NaN / None."""
    return _map_distinct(col, _clean_one)


def country_codes(df: pd.DataFrame) -> NDArray[np.object_] | None:
    """ISO alpha-2 per row from ``country_code`` (preferred) or ``country`` names; '' where unknown."""
    from georeason.geo import normalize_country

    cols = [c for c in ("country_code", "country") if c in df.columns]
    if not cols:
        return None
    out = np.full(len(df), "", dtype=object)
    for c in cols:
        codes = _map_distinct(df[c], lambda v: normalize_country(_clean_one(v)) or "")
        out = np.where(out == "", codes, out)
    return out


def true_continents(df: pd.DataFrame) -> NDArray[np.object_] | None:
    """Continent codes of the truth from its labels: the continent column, else
    the continent of the country; None when the labels have neither."""
    from georeason.geo import continent_of

    if "continent" in df.columns:
        return _map_distinct(df["continent"], continent_label)
    cc = country_codes(df)
    if cc is None:
        return None
    return _map_distinct(cc, lambda c: (continent_of(c) or "") if c else "")


def hierarchy_accuracy(
    true_df: pd.DataFrame,
    pred_df: pd.DataFrame,
    keep: NDArray[np.bool_],
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> dict[str, LevelAccuracy]:
    """Per-level accuracy by :func:`georeason.match.judge`, the rule the rewards use.

    A level is evaluated when the truth has it and the predictions have a column for it
    (continent may be derived from country). Each distinct (truth, answer) combination
    is judged once: labels repeat a lot.
    """
    from georeason.match import Truth, continent_code, country_code_named, judge

    t_df = true_df.loc[keep].reset_index(drop=True)
    p_df = pred_df.loc[keep].reset_index(drop=True)
    n = len(t_df)

    def cols(df: pd.DataFrame) -> dict[str, NDArray[np.object_] | None]:
        return {k: _clean_text(df[k]) if k in df.columns else None for k in PLACE_LEVELS}

    tc, pc = cols(t_df), cols(p_df)
    t_country = tc["country_code"] is not None or tc["country"] is not None
    p_country = pc["country_code"] is not None or pc["country"] is not None
    levels: list[str] = []
    if (tc["continent"] is not None or t_country) and (pc["continent"] is not None or p_country):
        levels.append("continent")
    if t_country and p_country:
        levels.append("country")
    levels += [k for k in ("admin1", "city") if tc[k] is not None and pc[k] is not None]
    if not levels or n == 0:
        return {}

    # Factorise every label column, then judge each distinct row of codes once.
    codes = np.zeros((n, 2 * len(PLACE_LEVELS)), dtype=np.int64)
    uniques: list[NDArray[np.object_]] = []
    for j, arr in enumerate([tc[k] for k in PLACE_LEVELS] + [pc[k] for k in PLACE_LEVELS]):
        if arr is None:
            uniques.append(np.array([""], dtype=object))
            continue
        idx, uniq = pd.factorize(arr, use_na_sentinel=False)
        codes[:, j] = idx
        uniques.append(np.asarray(uniq, dtype=object))
    combos, inverse = np.unique(codes, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    k = len(PLACE_LEVELS)
    verdict = {level: np.empty(len(combos), dtype=object) for level in levels}
    given = {level: np.zeros(len(combos), dtype=bool) for level in levels}
    for u, row in enumerate(combos):
        vals = [str(uniques[j][c]) or None for j, c in enumerate(row)]
        truth, answer = Truth(*vals[:k]), Truth(*vals[k:])
        for level, ok_u in judge(answer, truth, tuple(levels)).items():
            verdict[level][u] = ok_u
        for level in levels:
            if level == "continent":
                given[level][u] = bool(continent_code(answer.continent) or country_code_named(answer))
            elif level == "country":
                given[level][u] = answer.has_country
            else:
                given[level][u] = getattr(answer, level) is not None

    result: dict[str, LevelAccuracy] = {}
    for level in levels:
        v = verdict[level][inverse]
        truth_ok = np.array([x is not None for x in v], dtype=bool)
        ok = np.array([x is True for x in v], dtype=bool)
        g = given[level][inverse]
        m = int(truth_ok.sum())
        correct = int(ok.sum())
        rng = group_rng(seed, "hierarchy:" + level)
        acc = binomial_ci(correct, m, n_bootstrap, confidence, rng)
        result[level] = LevelAccuracy(
            n=m, correct=correct, n_missing=int((truth_ok & ~g).sum()), accuracy=acc
        )
    return result
