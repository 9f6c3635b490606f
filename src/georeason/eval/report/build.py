"""Every figure of the evaluation report as a JSON-able dict (:func:`build_report`): distance
metrics, hierarchy accuracy (named places and the place of the predicted coordinates),
chain consistency, self-consistency confidence, failures, published rows."""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from georeason.eval.metrics import DEFAULT_THRESHOLDS_KM, LevelAccuracy, compute_metrics
from georeason.eval.metrics.bootstrap import binomial_ci
from georeason.eval.report.reference import reference_rows
from georeason.types import PLACE_LEVELS

LEVELS = ("continent", "country", "admin1", "city")
_LABEL_KEYS = PLACE_LEVELS
NAMING_PROTOCOLS = frozenset({"geor", "geor_continent", "globe"})
CITY_RADIUS_KM = 25.0
"""Named-city check against reverse-geocoded truth: a place of that name within this distance."""


def floats(values: Sequence[Any]) -> np.ndarray:
    """Record values as a float array, None as NaN."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _text_col(df: pd.DataFrame, col: str) -> np.ndarray:
    if col not in df.columns:
        return np.full(len(df), "", dtype=object)
    out = np.empty(len(df), dtype=object)
    for i, v in enumerate(df[col].tolist()):
        out[i] = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip()
    return out


def _pct(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(100.0 * x, 2)


def _truth_labels(df: pd.DataFrame, tlat: np.ndarray, tlon: np.ndarray) -> tuple[pd.DataFrame, str]:
    """True place labels: the benchmark's where it has any, else reverse-geocoded coordinates."""
    given = {k: _text_col(df, f"true_{k}") for k in _LABEL_KEYS}
    if any((v != "").any() for v in given.values()):
        cols = {k: v for k, v in given.items() if (v != "").any()}
        return pd.DataFrame(cols), "labels"
    return _coordinate_labels(tlat, tlon), "reverse_geocode"


def truth_places(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The true place of each record as the report judges it, one row per record: columns
    ``continent`` (code, e.g. ``EU``), ``country_code`` (ISO alpha-2), ``country``, ``admin1``,
    ``city`` ("" where unknown). From the benchmark's labels when it has any, else from the
    reverse-geocoded true coordinates; the continent and code are derived as the per-continent
    table derives them (``georeason view`` filters by these)."""
    from georeason.eval.metrics import country_codes, true_continents

    df = pd.DataFrame.from_records([dict(r) for r in records])
    n = len(df)
    tlat = floats(df["true_lat"].tolist()) if "true_lat" in df else np.full(n, np.nan)
    tlon = floats(df["true_lon"].tolist()) if "true_lon" in df else np.full(n, np.nan)
    labels, _ = _truth_labels(df, tlat, tlon)
    out = pd.DataFrame({k: labels.get(k, "") for k in _LABEL_KEYS}, index=range(n))
    codes = country_codes(labels)
    if codes is not None:
        out["country_code"] = codes
    continents = true_continents(labels)
    if continents is not None:
        out["continent"] = continents
    return out.fillna("").astype(str)


def _coordinate_labels(lat: np.ndarray, lon: np.ndarray) -> pd.DataFrame:
    """Place of each point, reverse-geocoded (blank where the point is missing or invalid)."""
    from georeason.geo import reverse_geocode_batch

    n = len(lat)
    frame = pd.DataFrame(
        {k: np.full(n, "", dtype=object) for k in ("continent", "country_code", "admin1", "city")}
    )
    ok = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    if ok.any():
        t = reverse_geocode_batch(lat[ok], lon[ok])
        for k in frame.columns:
            frame.loc[ok, k] = np.asarray(getattr(t, k), dtype=object)
    return frame


def _named_city_within(
    named: pd.DataFrame,
    truth: pd.DataFrame,
    tlat: np.ndarray,
    tlon: np.ndarray,
    radius_km: float,
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> LevelAccuracy:
    """City accuracy against reverse-geocoded truth: the named city is right when a gazetteer
    place of that name (in the named country, if one is named) lies within ``radius_km`` of the
    true location, and the named country (if any) is the true one."""
    from georeason.geo import gazetteer, haversine_km, normalize_country
    from georeason.geo.gazetteer import city_candidates

    g = gazetteer()
    cities = named["city"].to_numpy(dtype=object)
    t_cc = truth["country_code"].to_numpy(dtype=object)
    n = correct = n_missing = 0
    for i in range(len(named)):
        if not (np.isfinite(tlat[i]) and np.isfinite(tlon[i])) or not t_cc[i]:
            continue
        n += 1
        if not cities[i]:
            n_missing += 1
            continue
        given_cc, given_country = str(named["country_code"].iat[i]), str(named["country"].iat[i])
        p_cc = given_cc or normalize_country(given_country or None)
        if (given_cc or given_country) and p_cc != t_cc[i]:
            continue  # a city named in the wrong country is another place
        rows = city_candidates(str(cities[i]), t_cc[i])
        if len(rows) and (haversine_km(tlat[i], tlon[i], g.lat[rows], g.lon[rows]) <= radius_km).any():
            correct += 1
    acc = binomial_ci(correct, n, n_bootstrap, confidence, np.random.default_rng([seed, 7]))
    return LevelAccuracy(n=n, correct=correct, n_missing=n_missing, accuracy=acc)


def _consistency(df: pd.DataFrame, protocol: str) -> dict[str, Any]:
    """Chain consistency (:func:`georeason.match.chain_consistency`: named places vs own coordinates)."""
    from georeason.match import chain_consistency
    from georeason.protocols import get_protocol

    completions = [
        c for c in df.get("completion", pd.Series([], dtype=object)).tolist() if isinstance(c, str)
    ]
    out: dict[str, Any] = {"n_answers": len(completions), "n_applicable": 0, "n_consistent": 0, "rate": None}
    if not completions:
        return out
    try:
        parser = get_protocol(protocol)
    except ValueError as e:  # unknown protocol in an old run.json
        out["error"] = str(e)
        return out
    vals = [s for s in chain_consistency([parser.parse(c) for c in completions]) if s is not None]
    out["n_applicable"] = len(vals)
    out["n_consistent"] = sum(vals)
    out["rate"] = (out["n_consistent"] / len(vals)) if vals else None
    if not vals:
        out["note"] = "no answer both names a place and states coordinates (nothing to compare)"
    return out


def _confidence(
    df: pd.DataFrame, tlat: np.ndarray, tlon: np.ndarray, plat: np.ndarray, plon: np.ndarray
) -> dict[str, Any] | None:
    """Accuracy by self-consistency confidence (runs with ``--samples K``), else None."""
    if "consensus" not in df:
        return None
    from georeason.eval.metrics import confidence_curves
    from georeason.geo import haversine_km

    cons = [c if isinstance(c, Mapping) else {} for c in df["consensus"].tolist()]
    if not any(cons):
        return None
    agree = floats([c.get("agreement_25km") for c in cons])
    radius = floats([c.get("radius_km") for c in cons])
    d = np.asarray(haversine_km(tlat, tlon, plat, plon), dtype=float)
    out = confidence_curves(d, agree)
    out.update(
        measure="agreement_25km",
        method=next((c.get("method") for c in cons if c.get("method")), None),
        n_samples=int(np.nanmax(floats([c.get("n_samples") for c in cons]))),
        median_agreement=float(np.nanmedian(agree)) if np.isfinite(agree).any() else None,
        median_radius_km=float(np.nanmedian(radius)) if np.isfinite(radius).any() else None,
    )
    return out


def build_report(
    records: Sequence[Mapping[str, Any]],
    *,
    run_info: Mapping[str, Any] | None = None,
    reference: str | os.PathLike[str] | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    n_examples: int = 5,
) -> dict[str, Any]:
    """Every figure of the report as a JSON-able dict (see the module docstring).

    ``records`` are lines of ``predictions.jsonl``; ``run_info`` the content of
    ``run.json`` (settings, benchmark description).
    """
    if not records:
        raise ValueError("no predictions to report on (predictions.jsonl is empty or missing)")
    run_info = dict(run_info or {})
    config = dict(run_info.get("config") or {})
    bench = dict(run_info.get("benchmark") or {})
    protocol = str(config.get("protocol") or "geor")
    df = pd.DataFrame.from_records([dict(r) for r in records])
    n = len(df)
    tlat, tlon = floats(df["true_lat"].tolist()), floats(df["true_lon"].tolist())
    plat = floats(df["pred_lat"].tolist()) if "pred_lat" in df else np.full(n, np.nan)
    plon = floats(df["pred_lon"].tolist()) if "pred_lon" in df else np.full(n, np.nan)

    true_labels, truth_source = _truth_labels(df, tlat, tlon)
    named = pd.DataFrame({k: _text_col(df, f"pred_{k}") for k in _LABEL_KEYS})
    # Protocols whose answers name places are judged on them even when a model names none
    # (that is 0%, not "not applicable"); for the others, only if some answer names a place.
    has_named = protocol.strip().lower() in NAMING_PROTOCOLS or bool(
        (named.drop(columns=["country_code"]) != "").to_numpy().any()
    )

    continents = None
    if truth_source == "reverse_geocode":
        continents = true_labels["continent"].replace("", "unknown").to_numpy(dtype=object)
    metrics = compute_metrics(
        tlat,
        tlon,
        plat,
        plon,
        thresholds_km=DEFAULT_THRESHOLDS_KM,
        n_bootstrap=n_bootstrap,
        seed=seed,
        continents=continents,
        true_labels=true_labels if has_named else None,
        pred_labels=named if has_named else None,
    )
    if has_named and truth_source == "reverse_geocode" and "city" in metrics.hierarchy:
        # The nearest populated place to a true point is often a suburb ("Sol" in central
        # Madrid): judge a named city by whether a place of that name lies within 25 km.
        metrics.hierarchy["city"] = _named_city_within(
            named, true_labels, tlat, tlon, CITY_RADIUS_KM, n_bootstrap, metrics.confidence, seed
        )
    if has_named:
        # A level no answer names while others are named is not part of the protocol's
        # format (geor without Continent, globe without State): "not asked", not 0%.
        given = {k: bool((named[k] != "").any()) for k in named.columns}
        given["country"] = given["country"] or given["country_code"]  # named by its code alone
        if any(given.values()):
            for level in list(metrics.hierarchy):
                if level in given and not given[level]:
                    del metrics.hierarchy[level]
    # The city *of a predicted point* is a distance question (acc@25km answers it): left out.
    coord_labels = _coordinate_labels(plat, plon).drop(columns=["city"])
    coord_metrics = compute_metrics(
        tlat,
        tlon,
        plat,
        plon,
        n_bootstrap=n_bootstrap,
        seed=seed,
        per_continent=False,
        true_labels=true_labels,
        pred_labels=coord_labels,
    )

    # Failures and parsing.
    kinds = Counter(k for k in _text_col(df, "error_kind") if k)
    completions = df["completion"] if "completion" in df else pd.Series([None] * n)
    answered = np.array([isinstance(c, str) for c in completions.tolist()])
    fmt = df["format_ok"].tolist() if "format_ok" in df else [None] * n
    n_format_bad = int(sum(1 for a, f in zip(answered, fmt, strict=True) if a and f is False))
    examples: dict[str, list[dict[str, Any]]] = {}
    for kind in ("image", "backend", "parse"):
        sel = df[_text_col(df, "error_kind") == kind]
        examples[kind] = [
            {"id": str(r["id"]), "error": (str(r.get("error") or ""))[:240]}
            for _, r in sel.head(n_examples).iterrows()
        ]
    sources = Counter(s for s in _text_col(df, "coord_source") if s)
    n_answers = int(answered.sum())

    ours_acc = {f"acc_{t:g}km": _pct(e.value) for t, e in metrics.overall.accuracy.items()}
    ref_name = bench.get("reference_name")
    try:
        published = reference_rows(ref_name, reference)
        ref_error = None
    except (FileNotFoundError, ValueError) as e:
        published, ref_error = [], str(e)

    n_expected = bench.get("n_evaluated")
    confidence = _confidence(df, tlat, tlon, plat, plon)
    report: dict[str, Any] = {
        "run": {
            "benchmark": config.get("benchmark") or bench.get("name"),
            "data": config.get("data"),
            "model": config.get("model"),
            "backend": config.get("backend"),
            "protocol": protocol,
            "max_new_tokens": config.get("max_new_tokens"),
            "temperature": config.get("temperature"),
            "samples": config.get("samples", 1),
            "aggregate": config.get("aggregate") if (config.get("samples") or 1) > 1 else None,
            "geocode_names": config.get("geocode_names"),
            "benchmark_notes": bench.get("notes", []),
            "started": run_info.get("started"),
            "updated": run_info.get("updated"),
        },
        "n_records": n,
        "n_expected": n_expected,
        "complete": (n_expected is None) or n >= int(n_expected),
        "metrics": metrics.to_dict(),
        "accuracy_percent": ours_acc,
        "hierarchy": {
            "truth_source": truth_source,
            "named": {k: v.to_dict() for k, v in metrics.hierarchy.items()} if has_named else None,
            "from_coordinates": {k: v.to_dict() for k, v in coord_metrics.hierarchy.items()},
        },
        "consistency": _consistency(df, protocol),
        "confidence": confidence,
        "failures": {
            "total": int(sum(kinds.values())),
            "by_kind": {k: int(kinds.get(k, 0)) for k in ("image", "backend", "parse")},
            "examples": examples,
            "n_answers": n_answers,
            "parse_failure_rate": (n_format_bad / n_answers) if n_answers else None,
            "n_format_failures": n_format_bad,
            "no_location_rate": (kinds.get("parse", 0) / n_answers) if n_answers else None,
        },
        "coordinate_sources": dict(sources),
        "published": {
            "benchmark": ref_name,
            "rows": published,
            "error": ref_error,
            "note": "accuracies in percent as the papers report them; 'verified': yes = the paper's own table, "
            "partly = some columns, notes = secondary summaries",
        },
    }
    return report
