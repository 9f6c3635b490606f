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
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from georeason.eval.report.build import build_report, floats, truth_places
from georeason.eval.report.markdown import DISTANCE_HEADER, distance_rows, markdown_table, render_markdown
from georeason.eval.report.reference import default_reference_path, load_reference, reference_rows
from georeason.runs import PREDICTIONS_FILE, RUN_FILE, read_records, write_json

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
CDF_PNG = "error_cdf.png"
MAP_PNG = "world_map.png"
CONFIDENCE_PNG = "confidence.png"


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
    write_json(out / REPORT_JSON, report)  # NaN -> null
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

    tlat = floats([r.get("true_lat") for r in records])
    tlon = floats([r.get("true_lon") for r in records])
    plat = floats([r.get("pred_lat") for r in records])
    plon = floats([r.get("pred_lon") for r in records])
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
    "CDF_PNG",
    "CONFIDENCE_PNG",
    "DISTANCE_HEADER",
    "MAP_PNG",
    "REPORT_JSON",
    "REPORT_MD",
    "build_report",
    "default_reference_path",
    "distance_rows",
    "load_reference",
    "markdown_table",
    "reference_rows",
    "render_markdown",
    "truth_places",
    "write_report",
]
