"""The evaluation report: markdown + JSON (+ PNGs) from a run's ``predictions.jsonl``.

:func:`write_report` reads ``predictions.jsonl`` and ``run.json`` of an
evaluation folder (:mod:`georeason.eval.runner`) and writes

- ``report.json``: every figure, machine-readable;
- ``report.md``: the same for people, with the published results for the same
  benchmark printed beside ours;
- ``error_cdf.png`` and ``world_map.png`` (:mod:`georeason.eval.plots`).

Contents:

- **distance metrics** (:func:`georeason.eval.metrics.compute_metrics`):
  acc@1/25/200/750/2500 km with 95% bootstrap intervals, median and mean km
  over the predictions made, GeoScore (PIGEON, ``5000·exp(−d/1492.7)``).
  Failed images (missing/corrupt image, backend error, no usable location in
  the answer) count as misses everywhere;
- **hierarchy accuracy** (continent, country, admin1, city): the truth is the
  benchmark's labels when it has some, otherwise the reverse-geocoded true
  coordinates; predicted places are (a) the names the answer gives and (b) the
  reverse-geocoded predicted coordinates;
- **chain consistency**: the share of answers whose named country/city agree
  with their own coordinates, :func:`georeason.match.chain_consistency` (the
  ``consistency`` reward scores training rollouts with the same function);
- **failures**: parse-failure rate (answers that break the protocol's format),
  counts per failure kind with examples, and where predicted coordinates came
  from (the answer, or forward geocoding of named places);
- **published results** for the same benchmark from ``published_results.csv``
  (``--reference``; default: the copy shipped in the package), each with its
  source and how it was verified.

Works on a partial run too (the report says how many images are done).
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from georeason.eval.metrics import DEFAULT_THRESHOLDS_KM, Estimate, LevelAccuracy, compute_metrics
from georeason.jsonsafe import dumps
from georeason.types import PLACE_LEVELS

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
CDF_PNG = "error_cdf.png"
MAP_PNG = "world_map.png"
CONFIDENCE_PNG = "confidence.png"
LEVELS = ("continent", "country", "admin1", "city")
_LABEL_KEYS = PLACE_LEVELS
NAMING_PROTOCOLS = frozenset({"geor", "geor_continent", "globe"})
CITY_RADIUS_KM = 25.0
"""Named-city check against reverse-geocoded truth: a place of that name within this distance."""
_ACC_COLS = ("acc_1km", "acc_25km", "acc_200km", "acc_750km", "acc_2500km")


# ---------------------------------------------------------------------------
# published results
# ---------------------------------------------------------------------------


def default_reference_path() -> Path:
    """The copy of ``published_results.csv`` shipped inside the package."""
    from importlib.resources import files

    return Path(str(files("georeason.eval").joinpath("reference", "published_results.csv")))


def load_reference(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Published results (``method, benchmark, acc_1km..acc_2500km, kind, source, verified``).

    Accuracies are in percent; blank cells (figures a paper does not give) are NaN.
    """
    p = Path(path).expanduser() if path is not None else default_reference_path()
    if not p.is_file():
        raise FileNotFoundError(f"published results file {p} not found (give one with --reference)")
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    missing = {"method", "benchmark", *_ACC_COLS} - set(df.columns)
    if missing:
        raise ValueError(f"{p}: missing columns {sorted(missing)}")
    for c in _ACC_COLS:
        df[c] = pd.to_numeric(df[c].replace("", np.nan), errors="coerce")
    for c in ("kind", "source", "verified"):
        if c not in df.columns:
            df[c] = ""
    return df


def reference_rows(benchmark: str | None, path: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Published rows for ``benchmark`` (its name in the reference table), as JSON-able dicts."""
    if not benchmark:
        return []
    df = load_reference(path)
    sel = df[df["benchmark"].str.strip().str.lower() == benchmark.strip().lower()]
    out = []
    for _, r in sel.iterrows():
        out.append(
            {
                "method": r["method"],
                **{c: (None if pd.isna(r[c]) else float(r[c])) for c in _ACC_COLS},
                "kind": r["kind"],
                "source": r["source"],
                "verified": r["verified"],
            }
        )
    return out


# ---------------------------------------------------------------------------
# building the report
# ---------------------------------------------------------------------------


def _num(values: Sequence[Any]) -> np.ndarray:
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
    from georeason.geo import reverse_geocode_batch

    ok = np.isfinite(tlat) & np.isfinite(tlon) & (np.abs(tlat) <= 90) & (np.abs(tlon) <= 180)
    frame = pd.DataFrame(
        {k: np.full(len(df), "", dtype=object) for k in ("continent", "country_code", "admin1", "city")}
    )
    if ok.any():
        t = reverse_geocode_batch(tlat[ok], tlon[ok])
        for k in frame.columns:
            frame.loc[ok, k] = np.asarray(getattr(t, k), dtype=object)
    return frame, "reverse_geocode"


def truth_places(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The true place of each record as the report judges it, one row per record: columns
    ``continent`` (code, e.g. ``EU``), ``country_code`` (ISO alpha-2), ``country``, ``admin1``,
    ``city`` ("" where unknown). From the benchmark's labels when it has any, else from the
    reverse-geocoded true coordinates; the continent and code are derived as the per-continent
    table derives them (``georeason view`` filters by these)."""
    from georeason.eval.metrics import country_codes, true_continents

    df = pd.DataFrame.from_records([dict(r) for r in records])
    n = len(df)
    tlat = _num(df["true_lat"].tolist()) if "true_lat" in df else np.full(n, np.nan)
    tlon = _num(df["true_lon"].tolist()) if "true_lon" in df else np.full(n, np.nan)
    labels, _ = _truth_labels(df, tlat, tlon)
    out = pd.DataFrame({k: labels.get(k, "") for k in _LABEL_KEYS}, index=range(n))
    codes = country_codes(labels)
    if codes is not None:
        out["country_code"] = codes
    continents = true_continents(labels)
    if continents is not None:
        out["continent"] = continents
    return out.fillna("").astype(str)


def _coordinate_labels(plat: np.ndarray, plon: np.ndarray) -> pd.DataFrame:
    """Place of each predicted point (blank where there is no prediction)."""
    from georeason.geo import reverse_geocode_batch

    n = len(plat)
    frame = pd.DataFrame(
        {k: np.full(n, "", dtype=object) for k in ("continent", "country_code", "admin1", "city")}
    )
    ok = np.isfinite(plat) & np.isfinite(plon) & (np.abs(plat) <= 90) & (np.abs(plon) <= 180)
    if ok.any():
        t = reverse_geocode_batch(plat[ok], plon[ok])
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
    acc = correct / n if n else float("nan")
    lo = hi = None
    if n and n_bootstrap > 0:
        reps = np.random.default_rng([seed, 7]).binomial(n, acc, size=n_bootstrap) / n
        alpha = 1.0 - confidence
        lo, hi = (float(x) for x in np.quantile(reps, [alpha / 2, 1 - alpha / 2]))
    return LevelAccuracy(n=n, correct=correct, n_missing=n_missing, accuracy=Estimate(acc, lo, hi))


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
    agree = _num([c.get("agreement_25km") for c in cons])
    radius = _num([c.get("radius_km") for c in cons])
    d = np.asarray(haversine_km(tlat, tlon, plat, plon), dtype=float)
    out = confidence_curves(d, agree)
    out.update(
        measure="agreement_25km",
        method=next((c.get("method") for c in cons if c.get("method")), None),
        n_samples=int(np.nanmax(_num([c.get("n_samples") for c in cons]))),
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
    tlat, tlon = _num(df["true_lat"].tolist()), _num(df["true_lon"].tolist())
    plat = _num(df["pred_lat"].tolist()) if "pred_lat" in df else np.full(n, np.nan)
    plon = _num(df["pred_lon"].tolist()) if "pred_lon" in df else np.full(n, np.nan)

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


# ---------------------------------------------------------------------------
# markdown
# ---------------------------------------------------------------------------


def _fmt_pct(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{100 * x:.1f}"


def _fmt_ci(e: Mapping[str, Any], pct: bool = True) -> str:
    ci = e.get("ci")
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    if pct:
        return f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
    return f"[{ci[0]:,.0f}, {ci[1]:,.0f}]"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


#: The columns of the distance table (:func:`distance_rows`).
DISTANCE_HEADER = ("metric", "value (%)", "95% CI")


def distance_rows(metrics: Mapping[str, Any]) -> list[list[str]]:
    """The distance table of the report, as text cells: acc@km (% with CI), median and mean km,
    GeoScore, and the counts. ``metrics`` is :meth:`GeoMetrics.to_dict` (``report["metrics"]``);
    ``report.md`` and ``georeason view`` print these same rows."""
    m = metrics
    rows = [[key, _fmt_pct(e["value"]), _fmt_ci(e)] for key, e in m["accuracy"].items()]
    med, mean, gs = m["median_km"], m["mean_km"], m["geoscore"]
    rows.append(
        [
            "median km (predictions made)",
            "—" if med["value"] is None else f"{med['value']:,.1f}",
            _fmt_ci(med, False),
        ]
    )
    rows.append(
        [
            "mean km (predictions made)",
            "—" if mean["value"] is None else f"{mean['value']:,.1f}",
            _fmt_ci(mean, False),
        ]
    )
    rows.append(
        ["GeoScore (0–5000)", "—" if gs["value"] is None else f"{gs['value']:,.1f}", _fmt_ci(gs, False)]
    )
    rows.append(["scored / predicted / missing", f"{m['n']} / {m['n_predicted']} / {m['n_missing']}", ""])
    return rows


def render_markdown(report: Mapping[str, Any], *, images: Mapping[str, str] | None = None) -> str:
    """The report as markdown (tables, with the published rows beside ours)."""
    run = report["run"]
    m = report["metrics"]
    out: list[str] = [f"# Evaluation: {run.get('model')} on {run.get('benchmark')}", ""]
    done = f"{report['n_records']} images"
    if report.get("n_expected") is not None:
        done += f" of {report['n_expected']}"
        if not report.get("complete"):
            done += " (**partial run**: rerun the same command to finish)"
    out += [
        f"- benchmark: `{run.get('benchmark')}` ({run.get('data')}), {done}",
        f"- model: `{run.get('model')}`, backend `{run.get('backend')}`, protocol `{run.get('protocol')}`, "
        f"max_new_tokens {run.get('max_new_tokens')}, temperature {run.get('temperature')}",
    ]
    for note in run.get("benchmark_notes") or []:
        out.append(f"- loader note: {note}")
    fails = report["failures"]
    out += [
        f"- failures (counted as misses): {fails['total']} — "
        + ", ".join(f"{k}: {v}" for k, v in fails["by_kind"].items()),
        "",
        "## Distance metrics",
        "",
    ]
    out += [_table(DISTANCE_HEADER, distance_rows(m)), ""]
    out.append(
        "Accuracy is the share of all scored images within the distance; an image without a usable "
        "prediction is a miss. Median and mean are over the predictions made."
    )
    out.append("")

    # Published rows beside ours.
    pub = report["published"]
    out += ["## Beside published results", ""]
    # From the unrounded values, as the distance table above prints them (one rounding).
    ours = report["metrics"]["accuracy"]
    ours_keys = ["acc@1km", "acc@25km", "acc@200km", "acc@750km", "acc@2500km"]
    keys = ["acc_1km", "acc_25km", "acc_200km", "acc_750km", "acc_2500km"]  # published rows' columns
    rows = [
        [
            "**this run**",
            *[
                "—" if ours.get(k, {}).get("value") is None else f"**{_fmt_pct(ours[k]['value'])}**"
                for k in ours_keys
            ],
            "",
            "",
            "",
        ]
    ]
    for r in pub["rows"]:
        rows.append(
            [
                r["method"],
                *[("—" if r.get(k) is None else f"{r[k]:.1f}") for k in keys],
                r.get("kind", ""),
                r.get("source", ""),
                r.get("verified", ""),
            ]
        )
    header = ["method", "1 km", "25 km", "200 km", "750 km", "2500 km", "kind", "source", "verified"]
    if pub.get("error"):
        out += [f"(published results unavailable: {pub['error']})", ""]
    elif not pub["rows"]:
        out += [
            f"No published results for this benchmark ({pub.get('benchmark') or 'not a standard benchmark'}).",
            "",
        ]
    out += [_table(header, rows), "", f"_{pub['note']}._", ""]

    # Hierarchy.
    h = report["hierarchy"]
    src = {"labels": "the benchmark's labels", "reverse_geocode": "reverse-geocoded true coordinates"}
    out += ["## Hierarchy accuracy", "", f"Truth: {src.get(h['truth_source'], h['truth_source'])}."]
    if h["truth_source"] == "reverse_geocode":
        out.append(
            f"A named city counts as right when a place of that name lies within {CITY_RADIUS_KM:g} km of "
            "the true location (the nearest gazetteer place is often a suburb)."
        )
    out += [
        "The place of the predicted coordinates is compared down to admin1; its city is a distance "
        "question (acc@25km).",
        "",
    ]
    rows = []
    for level in LEVELS:
        nm = (h.get("named") or {}).get(level)
        co = (h.get("from_coordinates") or {}).get(level)
        if nm is None and co is None:
            continue
        rows.append(
            [
                level,
                "—"
                if nm is None
                else f"{_fmt_pct(nm['accuracy']['value'])} {_fmt_ci(nm['accuracy'])} (n={nm['n']})",
                "—"
                if co is None
                else f"{_fmt_pct(co['accuracy']['value'])} {_fmt_ci(co['accuracy'])} (n={co['n']})",
            ]
        )
    if rows:
        out += [
            _table(["level", "named in the answer (%)", "place of the predicted coordinates (%)"], rows),
            "",
        ]
    else:
        out += ["No level could be compared.", ""]

    # Per continent.
    pc = m.get("per_continent") or {}
    if pc:
        from georeason.types import CONTINENT_NAMES

        out += ["## Per continent (of the true location)", ""]
        rows = []
        for code, s in pc.items():
            rows.append(
                [
                    CONTINENT_NAMES.get(code, code),
                    s["n"],
                    s["n_missing"],
                    *[_fmt_pct(e["value"]) for e in s["accuracy"].values()],
                    "—" if s["median_km"]["value"] is None else f"{s['median_km']['value']:,.0f}",
                    "—" if s["geoscore"]["value"] is None else f"{s['geoscore']['value']:,.0f}",
                ]
            )
        thr = [f"{t:g} km" for t in m["thresholds_km"]]
        out += [_table(["continent", "n", "missing", *thr, "median km", "GeoScore"], rows), ""]

    # Consistency and parsing.
    c = report["consistency"]
    out += ["## Chain consistency and parsing", ""]
    if c.get("rate") is not None:
        out.append(
            f"- chain consistency: {100 * c['rate']:.1f}% of the {c['n_applicable']} answers that name a place and "
            "state coordinates name the place their coordinates fall in (country by polygon; city nearest or "
            "within 50 km) — the `consistency` reward."
        )
    else:
        out.append(f"- chain consistency: n/a ({c.get('note') or c.get('error') or 'no answers'})")
    pf = fails.get("parse_failure_rate")
    out.append(
        f"- parse failures: {fails['n_format_failures']} of {fails['n_answers']} answers break the "
        f"`{run.get('protocol')}` format ({'—' if pf is None else f'{100 * pf:.1f}%'}); "
        f"{fails['by_kind']['parse']} give no usable location at all"
    )
    srcs = report.get("coordinate_sources") or {}
    if srcs:
        out.append(
            "- where predicted coordinates came from: " + ", ".join(f"{k}: {v}" for k, v in srcs.items())
        )
    out.append("")

    conf = report.get("confidence")
    if conf:
        radius = conf["median_radius_km"]
        radius_text = "—" if radius is None else f"{radius:,.0f} km"
        out += [
            "## Confidence (self-consistency)",
            "",
            f"{conf['n_samples']} samples per image, reduced by `{conf['method']}`. Confidence = the share of "
            f"samples within 25 km of the chosen answer (median {_fmt_pct(conf['median_agreement'])} %; "
            f"median uncertainty radius {radius_text}).",
            "",
            _table(
                [
                    "confidence bin (least → most sure)",
                    "n",
                    "mean confidence",
                    f"acc@{conf['threshold_km']:g} km",
                ],
                [
                    [str(i + 1), b["n"], _fmt_pct(b["confidence"]), _fmt_pct(b["accuracy"])]
                    for i, b in enumerate(conf["deciles"])
                ],
            ),
            "",
            "Answering only the most confident images:",
            "",
            _table(
                ["coverage %", "n", f"acc@{conf['threshold_km']:g} km"],
                [[f"{100 * c['coverage']:.0f}", c["n"], _fmt_pct(c["accuracy"])] for c in conf["coverage"]],
            ),
            "",
        ]

    if fails["total"]:
        out += ["## Failures", ""]
        for kind, exs in fails["examples"].items():
            if not exs:
                continue
            out.append(f"**{kind}** ({fails['by_kind'][kind]}), e.g.:")
            out += [f"- `{e['id']}`: {e['error']}" for e in exs]
            out.append("")

    if images:
        out += ["## Plots", ""]
        for title, name in images.items():
            out.append(f"![{title}]({name})")
        out.append("")
    out += [
        "## Conventions",
        "",
        *[f"- {k}: {v}" for k, v in m.get("conventions", {}).items()],
        "",
    ]
    return "\n".join(out)


# ---------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------


def write_report(
    out_dir: str | os.PathLike[str],
    *,
    reference: str | os.PathLike[str] | None = None,
    plots: bool = True,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Read ``out_dir/predictions.jsonl`` (+ ``run.json``), write ``report.md``, ``report.json``
    and, with ``plots``, ``error_cdf.png`` and ``world_map.png``. Returns the report dict."""
    from georeason.runs import PREDICTIONS_FILE, RUN_FILE, read_records

    out = Path(out_dir).expanduser()
    preds = out / PREDICTIONS_FILE
    if not preds.is_file():
        raise FileNotFoundError(f"no {PREDICTIONS_FILE} in {out}: run `georeason eval ... --out {out}` first")
    records, _ = read_records(preds)
    run_info: dict[str, Any] = {}
    if (out / RUN_FILE).is_file():
        try:
            run_info = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            run_info = {}
    report = build_report(records, run_info=run_info, reference=reference, n_bootstrap=n_bootstrap, seed=seed)
    images: dict[str, str] = {}
    if plots:
        images = _plots(out, records, report)
    report["plots"] = images
    tmp = out / (REPORT_JSON + ".tmp")
    tmp.write_text(dumps(report, indent=2) + "\n", encoding="utf-8")  # NaN -> null
    os.replace(tmp, out / REPORT_JSON)
    tmp = out / (REPORT_MD + ".tmp")
    tmp.write_text(render_markdown(report, images=images), encoding="utf-8")
    os.replace(tmp, out / REPORT_MD)
    return report


def _plots(out: Path, records: Sequence[Mapping[str, Any]], report: Mapping[str, Any]) -> dict[str, str]:
    import logging

    try:
        from georeason.eval.plots import plot_confidence, plot_error_cdf, plot_world_map
    except ImportError as e:  # pragma: no cover - matplotlib missing
        logging.getLogger("georeason.eval").warning("no plots: %s", e)
        return {}
    from georeason.geo import haversine_km

    tlat = _num([r.get("true_lat") for r in records])
    tlon = _num([r.get("true_lon") for r in records])
    plat = _num([r.get("pred_lat") for r in records])
    plon = _num([r.get("pred_lon") for r in records])
    d = haversine_km(tlat, tlon, plat, plon)
    run = report["run"]
    label = f"{run.get('model')} ({run.get('protocol')})"
    images = {}
    try:
        plot_error_cdf({label: d}, out / CDF_PNG, title=f"Error CDF — {run.get('benchmark')}")
        images["error CDF"] = CDF_PNG
        plot_world_map(
            tlat, tlon, plat, plon, out / MAP_PNG, title=f"Predictions vs truth — {run.get('benchmark')}"
        )
        images["world map"] = MAP_PNG
        if report.get("confidence"):
            plot_confidence(
                report["confidence"], out / CONFIDENCE_PNG, title=f"Self-consistency — {run.get('benchmark')}"
            )
            images["confidence"] = CONFIDENCE_PNG
    except ImportError as e:  # matplotlib not installed: the report stays useful without PNGs
        logging.getLogger("georeason.eval").warning("no plots (%s); pip install matplotlib", e)
    return images


__all__ = [
    "DISTANCE_HEADER",
    "build_report",
    "default_reference_path",
    "distance_rows",
    "load_reference",
    "reference_rows",
    "render_markdown",
    "truth_places",
    "write_report",
]
