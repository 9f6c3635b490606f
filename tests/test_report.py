"""georeason.eval.report and georeason.eval.plots on a hand-made predictions file.

Eight images with chosen answers (Chain of Region format) whose figures are
computed by hand below: distances, accuracy at each threshold, median,
failures by kind, parse-failure rate, chain consistency and hierarchy accuracy.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from georeason.eval.report import build_report, load_reference, render_markdown, write_report
from georeason.eval.runner import make_record
from georeason.geo import haversine_km
from georeason.protocols import get_protocol
from georeason.runs import PREDICTIONS_FILE, RUN_FILE


def geor(country: str, state: str, city: str, lat: float, lon: float) -> str:
    return (
        f"<think>Looking at the buildings.</think><answer>Country: {country}\nState: {state}\nCity: {city}\n"
        f"Coordinates: ({lat}, {lon})</answer>"
    )


# (id, true lat, true lon, completion or None, error kind, error)
ROWS = [
    ("paris", 48.8566, 2.3522, geor("France", "Île-de-France", "Paris", 48.86, 2.35), None, None),
    (
        "tokyo",
        35.6762,
        139.6503,
        geor("Japan", "Osaka", "Osaka", 34.69, 135.50),
        None,
        None,
    ),  # ~400 km, consistent
    (
        "nyc",
        40.7128,
        -74.0060,
        geor("France", "Île-de-France", "Paris", 40.71, -74.00),
        None,
        None,
    ),  # close, but says France
    (
        "sydney",
        -33.8688,
        151.2093,
        geor("Australia", "Western Australia", "Perth", -31.95, 115.86),
        None,
        None,
    ),  # ~3,300 km
    ("cairo", 30.0444, 31.2357, "no idea, sorry", None, None),  # unparseable
    ("rio", -22.9068, -43.1729, None, "image", "truncated or corrupt image: rio.jpg"),
    ("moscow", 55.7558, 37.6173, None, "backend", "HTTP 503 after 5 retries"),
    ("madrid", 40.4168, -3.7038, geor("Spain", "Madrid", "Madrid", 40.4, -3.7), None, None),
]


def _records() -> list[dict]:
    proto = get_protocol("geor")
    out = []
    for rid, lat, lon, text, kind, err in ROWS:
        meta = {"id": rid, "lat": lat, "lon": lon}
        out.append(
            make_record(
                meta, completion=text, error=err, error_kind=kind, seconds=0.1, protocol=proto, geocode=False
            )
        )
    return out


RUN_INFO = {
    "config": {
        "benchmark": "im2gps3k",
        "data": "/data/im2gps3k",
        "model": "my-model",
        "backend": "hf",
        "protocol": "geor",
        "max_new_tokens": 512,
        "temperature": 0.0,
        "geocode_names": "auto",
    },
    "benchmark": {"name": "im2gps3k", "reference_name": "im2gps3k", "n_evaluated": 8, "notes": []},
}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    (tmp_path / PREDICTIONS_FILE).write_text("".join(json.dumps(r) + "\n" for r in _records()))
    (tmp_path / RUN_FILE).write_text(json.dumps(RUN_INFO))
    return tmp_path


def test_report_figures_by_hand(run_dir: Path) -> None:
    rep = write_report(run_dir, n_bootstrap=200)
    d = {rid: haversine_km(lat, lon, *_answer(text)) for rid, lat, lon, text, _, _ in ROWS if _answer(text)}
    assert d["paris"] < 1 and d["nyc"] < 1 and 1 < d["madrid"] < 25
    assert 300 < d["tokyo"] < 750 and 2500 < d["sydney"] < 4000

    m = rep["metrics"]
    acc = {k: v["value"] for k, v in m["accuracy"].items()}
    # 8 images; five predictions; three failures (parse, image, backend) are misses.
    assert acc == pytest.approx(
        {"acc@1km": 2 / 8, "acc@25km": 3 / 8, "acc@200km": 3 / 8, "acc@750km": 4 / 8, "acc@2500km": 4 / 8}
    )
    assert m["median_km"]["value"] == pytest.approx(d["madrid"])  # middle of the 5 predictions made
    expected_gs = sum(5000 * math.exp(-x / 1492.7) for x in d.values()) / 8
    assert m["geoscore"]["value"] == pytest.approx(expected_gs)
    assert (m["n"], m["n_predicted"], m["n_missing"]) == (8, 5, 3)
    lo, hi = m["accuracy"]["acc@750km"]["ci"]
    assert lo <= 0.5 <= hi

    f = rep["failures"]
    assert f["by_kind"] == {"image": 1, "backend": 1, "parse": 1} and f["total"] == 3
    assert f["n_answers"] == 6 and f["parse_failure_rate"] == pytest.approx(1 / 6)
    assert f["examples"]["backend"] == [{"id": "moscow", "error": "HTTP 503 after 5 retries"}]

    # Chain consistency (the `consistency` reward): nyc names France at New York coordinates.
    c = rep["consistency"]
    assert (c["n_applicable"], c["n_consistent"]) == (5, 4) and c["rate"] == pytest.approx(0.8)

    # Hierarchy: no labels in the file -> truth from reverse geocoding.
    h = rep["hierarchy"]
    assert h["truth_source"] == "reverse_geocode"
    assert h["named"]["country"]["correct"] == 4 and h["named"]["country"]["n"] == 8
    assert h["from_coordinates"]["country"]["correct"] == 5
    assert h["named"]["city"]["correct"] == 2  # Paris, Madrid (Osaka is not Tokyo, Perth not Sydney)
    # geor answers without a Continent line: that level is not asked, so not scored as 0%.
    assert "continent" not in h["named"] and "continent" in h["from_coordinates"]

    # Published rows for the same benchmark, with their source and verification.
    pub = rep["published"]["rows"]
    methods = [r["method"] for r in pub]
    assert "GeoCLIP" in methods and "G3" in methods and all("mp16" not in r["method"].lower() for r in pub)
    geoclip = pub[methods.index("GeoCLIP")]
    assert (
        geoclip["acc_1km"] == 14.11 and geoclip["verified"] == "yes" and "NeurIPS 2023" in geoclip["source"]
    )

    md = (run_dir / "report.md").read_text()
    assert "| **this run** | **25.0** | **37.5** | **37.5** | **50.0** | **50.0** |" in md
    assert (
        "| GeoCLIP | 14.1 | 34.5 | 50.6 | 69.7 | 83.8 | retrieval | GeoCLIP (NeurIPS 2023) table | yes |"
        in md
    )
    assert "chain consistency: 80.0%" in md and "image: 1, backend: 1, parse: 1" in md
    assert "reverse-geocoded true coordinates" in md
    # Plots written and referenced.
    for name in ("error_cdf.png", "world_map.png"):
        assert (run_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in md
    saved = json.loads((run_dir / "report.json").read_text())
    assert saved["accuracy_percent"]["acc_25km"] == 37.5


def _answer(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    p = get_protocol("geor").parse(text)
    return (p.lat, p.lon) if p.lat is not None else None


def test_labels_are_the_truth_when_present_and_partial_runs_are_flagged(run_dir: Path) -> None:
    recs = _records()
    for r, country in zip(
        recs, ["France", "Japan", "USA", "Australia", "Egypt", "Brazil", "Russia", "Spain"], strict=True
    ):
        r["true_country"] = country
    info = {**RUN_INFO, "benchmark": {**RUN_INFO["benchmark"], "n_evaluated": 20}}
    rep = build_report(recs, run_info=info, n_bootstrap=0)
    assert rep["hierarchy"]["truth_source"] == "labels"
    assert rep["hierarchy"]["named"]["country"]["correct"] == 4
    assert "city" not in rep["hierarchy"]["named"]  # no true city labels: not evaluated
    assert rep["complete"] is False
    assert "**partial run**" in render_markdown(rep)


def test_custom_reference_and_unknown_benchmark(run_dir: Path, tmp_path: Path) -> None:
    ref = tmp_path / "ref.csv"
    ref.write_text(
        "method,benchmark,acc_1km,acc_25km,acc_200km,acc_750km,acc_2500km,kind,source,verified\n"
        "Baseline X,im2gps3k,1,2,3,,5,toy,my notes,no\n"
    )
    rep = build_report(_records(), run_info=RUN_INFO, reference=ref, n_bootstrap=0)
    assert [r["method"] for r in rep["published"]["rows"]] == ["Baseline X"]
    assert rep["published"]["rows"][0]["acc_750km"] is None
    assert "| Baseline X | 1.0 | 2.0 | 3.0 | — | 5.0 | toy | my notes | no |" in render_markdown(rep)
    other = {**RUN_INFO, "benchmark": {"name": "csv", "reference_name": None}}
    rep = build_report(_records(), run_info=other, n_bootstrap=0)
    assert rep["published"]["rows"] == [] and "No published results" in render_markdown(rep)
    df = load_reference()  # the copy shipped in the package
    assert {"im2gps3k", "yfcc4k", "mp16-reason-test"} <= set(df["benchmark"])


def test_globe_run_has_no_consistency_to_measure() -> None:
    proto = get_protocol("globe")
    text = "<think>x</think><answer>country: France\ncity: Lyon</answer>"
    recs = [
        make_record(
            {"id": "a", "lat": 45.76, "lon": 4.84},
            completion=text,
            error=None,
            error_kind=None,
            seconds=None,
            protocol=proto,
            geocode=True,
        )
    ]
    info = {"config": {**RUN_INFO["config"], "protocol": "globe"}, "benchmark": {"name": "csv"}}
    rep = build_report(recs, run_info=info, n_bootstrap=0)
    assert rep["consistency"]["rate"] is None and rep["coordinate_sources"] == {"geocoded:city": 1}
    assert rep["metrics"]["accuracy"]["acc@25km"]["value"] == 1.0


def test_report_only_cli(run_dir: Path) -> None:
    from georeason.cli import app
    from georeason.commands import eval_cmd  # noqa: F401

    res = CliRunner().invoke(
        app, ["eval", "--report-only", "--out", str(run_dir), "--no-plots", "--bootstrap", "0"]
    )
    assert res.exit_code == 0, res.output
    assert "im2gps3k: 8 images" in res.output and "@25km=37.5%" in res.output
    assert (run_dir / "report.md").exists() and not (run_dir / "world_map.png").exists()
    res = CliRunner().invoke(app, ["eval", "--report-only", "--out", str(run_dir / "nothing")])
    assert res.exit_code == 2 and "no predictions.jsonl" in res.output


def test_empty_predictions_is_an_error() -> None:
    with pytest.raises(ValueError, match="no predictions"):
        build_report([], run_info=RUN_INFO)


# --- plots ---------------------------------------------------------------------------------


def test_plot_functions_write_pngs(tmp_path: Path) -> None:
    from georeason.eval.plots import plot_error_cdf, plot_reward_curve, plot_world_map

    rng = np.random.default_rng(0)
    d = rng.lognormal(5, 2, 200)
    d[:10] = np.nan  # no prediction
    p = plot_error_cdf({"a": d, "b": d * 2}, tmp_path / "cdf.png", title="t")
    assert p.read_bytes()[:4] == b"\x89PNG"
    # A prediction across the antimeridian and a missing one.
    p = plot_world_map(
        [64.1, -36.8, 10.0],
        [-21.9, 174.8, 10.0],
        [60.0, -17.7, np.nan],
        [170.0, -179.0, np.nan],
        tmp_path / "map.png",
        max_points=2,
    )
    assert p.stat().st_size > 10_000
    steps = np.arange(50)
    p = plot_reward_curve(steps, {"geo_r": np.linspace(0, 1, 50), "format": np.ones(50)}, tmp_path / "r.png")
    assert p.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="3 values for 50 steps"):
        plot_reward_curve(steps, [1, 2, 3], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="differ in length"):
        plot_world_map([1], [2], [3, 4], [5, 6], tmp_path / "bad.png")
