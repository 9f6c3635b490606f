"""The evaluation report as markdown (:func:`render_markdown`): tables, with the published
rows beside ours; :func:`markdown_table` is the one pipe-table writer of the package."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from georeason.eval.report.build import CITY_RADIUS_KM, LEVELS


def _fmt_pct(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{100 * x:.1f}"


def _fmt_ci(e: Mapping[str, Any], pct: bool = True) -> str:
    ci = e.get("ci")
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    if pct:
        return f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
    return f"[{ci[0]:,.0f}, {ci[1]:,.0f}]"


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub pipe table: ``str`` of each cell, ``|`` escaped and newlines as spaces so that a
    name from a model's answer cannot break the table."""

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
    out += [markdown_table(DISTANCE_HEADER, distance_rows(m)), ""]
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
    out += [markdown_table(header, rows), "", f"_{pub['note']}._", ""]

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
            markdown_table(
                ["level", "named in the answer (%)", "place of the predicted coordinates (%)"], rows
            ),
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
        out += [markdown_table(["continent", "n", "missing", *thr, "median km", "GeoScore"], rows), ""]

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
            markdown_table(
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
            markdown_table(
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
