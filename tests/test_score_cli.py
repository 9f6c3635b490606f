"""`georeason score`: file formats, column detection, bad input, --example."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import georeason.commands  # noqa: F401  (registers the subcommands)
from georeason.cli import app
from georeason.commands.score import parse_thresholds
from georeason.eval.score import default_out, example_path
from georeason.geo import EARTH_RADIUS_KM

runner = CliRunner()

# Truth at (0, 0); predictions at known distances along the equator.
DISTS = [0.5, 10.0, 500.0, 3000.0]


def _frame() -> pd.DataFrame:
    lon = np.degrees(np.asarray(DISTS) / EARTH_RADIUS_KM)
    return pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e"],
            "lat": [0.0] * 5,
            "lon": [0.0] * 5,
            "continent": ["AF"] * 5,
            "pred_lat": [0.0, 0.0, 0.0, 0.0, None],
            "pred_lon": [*lon.tolist(), None],
        }
    )


def _write(df: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    elif path.suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        raise AssertionError(path)
    return path


def _score(*args: str) -> tuple[int, str]:
    """Exit code and output with rich's box characters and line wrapping undone."""
    r = runner.invoke(app, ["score", *args], env={"COLUMNS": "200"})
    text = r.output
    for ch in "│╭╮╰╯─":
        text = text.replace(ch, " ")
    return r.exit_code, " ".join(text.split())


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_formats_give_the_same_scores(tmp_path: Path, suffix: str) -> None:
    path = _write(_frame(), tmp_path / f"preds{suffix}")
    code, out = _score(str(path), "--n-bootstrap", "100")
    assert code == 0, out
    written = tmp_path / "preds.scores.json"  # default: next to the input
    assert written.exists() and f"wrote {written}" in out
    d = json.loads(written.read_text())
    assert d["n"] == 5 and d["n_missing"] == 1
    assert d["accuracy"]["acc@1km"]["value"] == pytest.approx(0.2)
    assert d["accuracy"]["acc@25km"]["value"] == pytest.approx(0.4)
    assert d["accuracy"]["acc@750km"]["value"] == pytest.approx(0.6)
    assert d["median_km"]["value"] == pytest.approx(255.0, abs=1e-6)
    gs = sum(5000 * math.exp(-x / 1492.7) for x in DISTS) / 5
    assert d["geoscore"]["value"] == pytest.approx(gs)
    lo, hi = d["geoscore"]["ci"]
    assert lo <= gs <= hi
    assert d["input"]["format"] == suffix.lstrip(".")
    assert d["per_continent"]["AF"]["n"] == 5 and d["continent_source"] == "labels"
    # The printed table carries the headline numbers.
    assert "acc@25km" in out and "40.0%" in out and "GeoScore" in out and "Africa" in out


def test_column_autodetection_and_options(tmp_path: Path) -> None:
    df = _frame().rename(columns={"lat": "LAT", "lon": "LON"})
    code, out = _score(str(_write(df, tmp_path / "upper.csv")), "--n-bootstrap", "0")
    assert code == 0, out
    d = json.loads((tmp_path / "upper.scores.json").read_text())
    assert d["input"]["columns"]["true_lat"] == "LAT"

    df = _frame().rename(columns={"lat": "gt_y", "lon": "gt_x", "pred_lat": "guess_y", "pred_lon": "guess_x"})
    path = _write(df, tmp_path / "custom.csv")
    code, out = _score(str(path), "--n-bootstrap", "0")
    assert code != 0 and "could not find the true latitude/longitude columns" in out and "--true-lat" in out
    out_json = tmp_path / "sub" / "custom.json"
    code, out = _score(
        str(path),
        "--true-lat=gt_y",
        "--true-lon=gt_x",
        "--pred-lat=guess_y",
        "--pred-lon=guess_x",
        "--out",
        str(out_json),
        "--n-bootstrap=0",
    )
    assert code == 0, out
    assert json.loads(out_json.read_text())["accuracy"]["acc@25km"]["value"] == pytest.approx(0.4)
    code, out = _score(
        str(path), "--true-lat=nope", "--true-lon=gt_x", "--pred-lat=guess_y", "--pred-lon=guess_x"
    )
    assert code != 0 and "no column 'nope'" in out


def test_thresholds_option(tmp_path: Path) -> None:
    path = _write(_frame(), tmp_path / "p.csv")
    code, out = _score(str(path), "--thresholds", "5, 600km", "--n-bootstrap", "0")
    assert code == 0, out
    d = json.loads((tmp_path / "p.scores.json").read_text())
    assert d["thresholds_km"] == [5.0, 600.0]
    assert d["accuracy"]["acc@600km"]["value"] == pytest.approx(0.6)
    code, out = _score(str(path), "--thresholds", "1,abc")
    assert code != 0 and "thresholds must be numbers" in out
    assert parse_thresholds("1;25") == [1.0, 25.0]


def test_unparseable_predictions_are_missing_and_bad_truth_excluded(tmp_path: Path) -> None:
    path = tmp_path / "messy.csv"
    path.write_text(
        "lat,lon,pred_lat,pred_lon,continent\n"
        "0,0,0,0.001,NA\n"  # "NA" is North America, not a missing value
        "0,0,n/a,,NA\n"  # unparseable
        "0,0,,,NA\n"  # blank: missing
        "0,0,12.5abc,3,NA\n"  # unparseable
        "0,0,95,0,NA\n"  # out of range
        ",0,0,0,NA\n"  # bad truth: excluded
        "91,0,0,0,NA\n"  # bad truth: excluded
        "abc,0,0,0,NA\n"  # bad truth: excluded
    )
    code, out = _score(str(path), "--n-bootstrap", "50")
    assert code == 0, out
    d = json.loads((tmp_path / "messy.scores.json").read_text())
    assert d["n_total"] == 8 and d["n_invalid_truth"] == 3 and d["n"] == 5
    assert d["n_missing"] == 4 and d["n_out_of_range_pred"] == 1
    assert d["input"]["n_unparseable_pred"] == 2
    assert d["input"]["bad_truth_rows"] == [5, 6, 7]
    assert list(d["per_continent"]) == ["NA"]
    assert d["accuracy"]["acc@1km"]["value"] == pytest.approx(0.2)
    assert "3 rows excluded" in out and "2 predicted coordinates were not numbers" in out
    assert "North America" in out


def test_hierarchy_columns(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "lat": [48.8566, 52.52, 40.7128],
            "lon": [2.3522, 13.405, -74.006],
            "country_code": ["FR", "DE", "US"],
            "city": ["Paris", "Berlin", "New York City"],
            "pred_lat": [48.85, 48.14, 40.7],
            "pred_lon": [2.35, 11.58, -74.0],
            "pred_country": ["France", "Germany", "USA"],
            "pred_city": ["paris", "Munich", ""],
        }
    )
    code, out = _score(str(_write(df, tmp_path / "h.parquet")), "--n-bootstrap", "0", "--no-continents")
    assert code == 0, out
    d = json.loads((tmp_path / "h.scores.json").read_text())
    assert d["per_continent"] == {}
    h = d["hierarchy"]
    assert h["country"]["correct"] == 3 and h["continent"]["correct"] == 3
    assert (h["city"]["correct"], h["city"]["n"], h["city"]["n_missing"]) == (1, 3, 1)
    assert "admin1" not in h  # no admin1 columns
    assert "hierarchy accuracy" in out


def test_jsonl_bad_lines_are_skipped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"lat": 0, "lon": 0, "pred_lat": 0, "pred_lon": 0}\n'
        "{not json\n"
        "\n"
        '{"lat": 10, "lon": 10, "pred_lat": null, "pred_lon": null}\n'
        "[1, 2]\n"
    )
    code, out = _score(str(path), "--n-bootstrap", "0", "--no-continents")
    assert code == 0, out
    d = json.loads((tmp_path / "p.scores.json").read_text())
    assert d["n"] == 2 and d["n_missing"] == 1
    assert d["input"]["unreadable_lines"] == [2, 5]


def test_bad_input_errors(tmp_path: Path) -> None:
    code, out = _score(str(tmp_path / "missing.csv"))
    assert code != 0 and "no such file" in out
    bad = tmp_path / "preds.xlsx"
    bad.write_text("x")
    code, out = _score(str(bad))
    assert code != 0 and "unsupported file type '.xlsx'" in out
    code, out = _score()
    assert code != 0 and "--example" in out
    code, out = _score(str(bad), "--example")
    assert code != 0 and "not both" in out
    empty = tmp_path / "empty.csv"
    empty.write_text("lat,lon,pred_lat,pred_lon\n")
    code, out = _score(str(empty))
    assert code != 0 and "holds no rows" in out
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    code, out = _score(str(broken))
    assert code != 0 and "could not read" in out
    no_truth = tmp_path / "nt.csv"
    no_truth.write_text("lat,lon,pred_lat,pred_lon\nx,y,0,0\n,,1,1\n")
    code, out = _score(str(no_truth))
    assert code != 0 and "no row of nt.csv has valid true coordinates" in out
    same = _write(_frame(), tmp_path / "same.csv")
    code, out = _score(str(same), "--pred-lat", "lat", "--pred-lon", "lon")
    assert code != 0 and "same column" in out


def test_default_out_names() -> None:
    assert default_out(Path("/x/run1.csv")) == Path("/x/run1.scores.json")
    assert default_out(Path("/x/run.v2.jsonl")) == Path("/x/run.v2.scores.json")
    assert default_out(Path("/x/run.csv.gz")) == Path("/x/run.scores.json")


def test_example_file_is_shipped() -> None:
    path = example_path()
    assert path.is_file()
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert 150 <= len(df) <= 250
    assert {"lat", "lon", "pred_lat", "pred_lon", "country_code", "pred_country"} <= set(df.columns)
    missing = pd.to_numeric(df["pred_lat"], errors="coerce").isna()
    assert 3 <= missing.sum() <= 25  # a few missing predictions, as documented
    assert df["continent"].nunique() >= 5


def test_example_real_subprocess(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("georeason")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from georeason.cli import main; main()"]
    env = {**os.environ, "COLUMNS": "100", "HF_HUB_OFFLINE": "1"}
    r = subprocess.run(
        [*cmd, "score", "--example"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300
    )
    assert r.returncode == 0, r.stderr + r.stdout
    d = json.loads((tmp_path / "example.scores.json").read_text())
    assert d["n"] == 200 and d["n_missing"] > 0
    assert 0 < d["accuracy"]["acc@25km"]["value"] < d["accuracy"]["acc@2500km"]["value"] < 1
    assert set(d["hierarchy"]) == {"continent", "country", "admin1", "city"}
    assert "acc@25km" in r.stdout and "GeoScore" in r.stdout


def test_scoring_imports_no_torch(tmp_path: Path) -> None:
    # The core scores without the ML stack: running the command must not import torch.
    code = (
        "import sys\n"
        "from georeason.cli import main\n"
        "sys.argv = ['georeason', 'score', '--example', '--n-bootstrap', '10']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "bad = [m for m in ('torch', 'transformers', 'trl') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr


def test_continents_from_true_country_and_note_without_true_labels(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "lat": [48.85, 35.68],
            "lon": [2.35, 139.69],
            "country_code": ["FR", "JP"],
            "pred_lat": [48.0, 34.7],
            "pred_lon": [2.0, 135.5],
        }
    )
    code, out = _score(str(_write(df, tmp_path / "c.csv")), "--n-bootstrap", "0")
    assert code == 0, out
    d = json.loads((tmp_path / "c.scores.json").read_text())
    assert d["continent_source"] == "labels" and set(d["per_continent"]) == {"EU", "AS"}
    assert d["hierarchy"] == {}

    df = df.drop(columns=["country_code"]).assign(pred_city=["Paris", "Osaka"])
    code, out = _score(str(_write(df, tmp_path / "n.csv")), "--n-bootstrap", "0", "--no-continents")
    assert code == 0, out
    assert "predicted place labels found but no true ones" in out
