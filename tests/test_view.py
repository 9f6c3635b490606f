"""`georeason view`'s API over a real evaluation folder (tests/eval_runs.py: the runner over a CSV
benchmark of generated photos, with answers scripted per error band and failures of each kind)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import httpx
from eval_runs import FixtureRun, make_run  # tests/eval_runs.py
from fastapi.testclient import TestClient

from georeason.eval.metrics import compute_metrics
from georeason.eval.plots import NO_PREDICTION_BAND
from georeason.eval.report import distance_rows, write_report
from georeason.serve.view import RunView, create_view_app

N = 40
N_BOOTSTRAP = 200


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> FixtureRun:
    # report=False: the view computes the summary itself (the saved report.json is tested below)
    return make_run(tmp_path_factory.mktemp("view"), N, report=False)


@pytest.fixture(scope="module")
def client(run: FixtureRun) -> TestClient:
    return TestClient(create_view_app(run.out, n_bootstrap=N_BOOTSTRAP))


def _records(run: FixtureRun) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run.out / "predictions.jsonl").read_text().splitlines()]


def _band_of(planned: Any) -> int:
    return planned if isinstance(planned, int) else NO_PREDICTION_BAND


def test_summary_is_the_reports_distance_table(run: FixtureRun, client: TestClient) -> None:
    s = client.get("/api/summary").json()
    assert s["report_source"] == "computed" and s["n_records"] == N
    recs = _records(run)
    cols = {
        k: np.array([np.nan if r[k] is None else r[k] for r in recs], float)
        for k in ("true_lat", "true_lon", "pred_lat", "pred_lon")
    }
    want = compute_metrics(
        cols["true_lat"],
        cols["true_lon"],
        cols["pred_lat"],
        cols["pred_lon"],
        n_bootstrap=N_BOOTSTRAP,
        seed=0,
    ).to_dict()
    for key in ("accuracy", "median_km", "mean_km", "geoscore", "n", "n_predicted", "n_missing"):
        assert s["metrics"][key] == want[key], key
    # the rows report.md prints, with the same bootstrap
    assert s["distance_table"]["rows"] == distance_rows(want)
    write_report(run.out, plots=False, n_bootstrap=N_BOOTSTRAP)
    try:
        md = (run.out / "report.md").read_text()
        for cells in s["distance_table"]["rows"]:
            assert "| " + " | ".join(cells) + " |" in md
    finally:
        for name in ("report.md", "report.json"):
            (run.out / name).unlink()
    bands = {b["band"]: b["n"] for b in s["bands"]}
    planned = Counter(_band_of(p) for p in run.planned)
    assert bands == {k: planned.get(k, 0) for k in range(NO_PREDICTION_BAND + 1)}
    f = s["failures"]["by_kind"]
    assert (f["parse"], f["backend"], f["image"]) == tuple(
        run.planned.count(k) for k in ("parse", "backend", "image")
    )
    assert sum(c["n"] for c in s["continents"]) == N and sum(c["n"] for c in s["countries"]) == N


def test_a_fresh_report_json_is_read_a_stale_one_recomputed(tmp_path: Path) -> None:
    fixture = make_run(tmp_path, 12, report=True, n_bootstrap=30)
    view = RunView(fixture.out)
    saved = json.loads((fixture.out / "report.json").read_text())
    assert view.report_source == "report.json" and view.summary()["metrics"] == saved["metrics"]
    preds = fixture.out / "predictions.jsonl"
    later = (fixture.out / "report.json").stat().st_mtime + 5
    os.utime(preds, (later, later))  # predictions written after the report: it is out of date
    assert RunView(fixture.out, n_bootstrap=30).report_source == "computed"


def test_filter_by_band_pages_and_indices(run: FixtureRun, client: TestClient) -> None:
    for band in range(NO_PREDICTION_BAND + 1):
        want = [i for i, p in enumerate(run.planned) if _band_of(p) == band]
        everything = client.get("/api/rows", params={"band": band, "indices": "true", "limit": 500}).json()
        assert everything["total"] == len(want) and everything["indices"] == want
        assert {r["band"] for r in everything["rows"]} <= {band}
        paged: list[int] = []
        for offset in range(0, len(want) + 3, 3):
            page = client.get("/api/rows", params={"band": band, "offset": offset, "limit": 3}).json()
            assert page["total"] == len(want) and len(page["rows"]) == len(want[offset : offset + 3])
            paged += [r["i"] for r in page["rows"]]
        assert paged == want
    two = client.get("/api/rows", params=[("band", 0), ("band", 3), ("limit", 500)]).json()
    assert {r["band"] for r in two["rows"]} == {0, 3}


def test_sort_status_country_and_search(run: FixtureRun, client: TestClient) -> None:
    rows = client.get("/api/rows", params={"sort": "distance", "order": "desc", "limit": 500}).json()["rows"]
    km = [r["distance_km"] for r in rows]
    has = [d for d in km if d is not None]
    assert has == sorted(has, reverse=True) and km[len(has) :] == [None] * (N - len(has))  # missing last
    asc = client.get("/api/rows", params={"sort": "distance", "limit": 500}).json()["rows"]
    assert [r["distance_km"] for r in asc][: len(has)] == sorted(has)
    for status in ("parse", "backend", "image"):
        got = client.get("/api/rows", params={"status": status}).json()
        assert got["total"] == run.planned.count(status) and {r["status"] for r in got["rows"]} == {status}
    failed = client.get("/api/rows", params={"status": "failed"}).json()["total"]
    assert failed == sum(run.planned.count(k) for k in ("parse", "backend", "image"))
    summary = client.get("/api/summary").json()
    top = max(summary["countries"], key=lambda c: c["n"])
    got = client.get("/api/rows", params={"country": top["code"], "limit": 500}).json()
    assert got["total"] == top["n"] and {r["country_code"] for r in got["rows"]} == {top["code"]}
    cont = summary["continents"][0]
    got = client.get("/api/rows", params={"continent": cont["code"], "limit": 500}).json()
    assert got["total"] == cont["n"] and {r["continent"] for r in got["rows"]} == {cont["code"]}
    got = client.get("/api/rows", params={"q": "R00007"}).json()
    assert [r["id"] for r in got["rows"]] == ["r00007"]


def test_bad_queries_are_sentences(client: TestClient) -> None:
    for params, word in (
        ({"band": 9}, "band must be"),
        ({"status": "nope"}, "status must be one of"),
        ({"sort": "colour"}, "sort must be one of"),
        ({"limit": 0}, "limit must be"),
        ({"offset": -1}, "offset must be"),
        ({"order": "up"}, "order must be"),
    ):
        r = client.get("/api/rows", params=params)
        assert r.status_code == 422 and word in r.json()["error"], (params, r.text)


def test_one_row_its_answer_parse_and_image(run: FixtureRun, client: TestClient) -> None:
    recs = _records(run)
    i = run.planned.index(1)
    row = client.get(f"/api/rows/{i}").json()
    assert row["id"] == recs[i]["id"] and row["completion"] == recs[i]["completion"]
    assert row["parse"]["pred_lat"] == recs[i]["pred_lat"] and row["parse"]["format_ok"] is True
    assert row["band"] == 1 and 25 < row["distance_km"] <= 200
    assert row["image_url"] == f"/api/image/{i}"
    img = client.get(row["image_url"])
    photo = run.data / "images" / f"photo{i % 8}.jpg"
    assert (
        img.status_code == 200
        and img.headers["content-type"] == "image/jpeg"
        and img.content == photo.read_bytes()
    )
    gone = client.get(f"/api/rows/{run.planned.index('image')}").json()
    assert gone["image_url"] is None and "image not found" in gone["image_note"] and gone["status"] == "image"
    parse = client.get(f"/api/rows/{run.planned.index('parse')}").json()
    assert parse["full_error"].startswith("no usable location") and parse["distance_km"] is None
    assert client.get(f"/api/rows/{N}").status_code == 404


def test_only_the_runs_own_images_are_served(tmp_path: Path) -> None:
    fixture = make_run(tmp_path, 6, report=False)
    secret = tmp_path / "secret.jpg"
    secret.write_text("not a photo: a file outside the run that must not be readable")
    csv = fixture.data / "benchmark.csv"
    lines = csv.read_text().splitlines()
    lines[2] = lines[2].replace("photo1.jpg", str(secret))  # row 1 names a file that is no image
    csv.write_text("\n".join(lines) + "\n")
    c = TestClient(create_view_app(fixture.out, n_bootstrap=0))
    assert c.get("/api/image/0").status_code == 200
    r = c.get("/api/image/1")
    assert r.status_code == 404 and "not an image" in r.json()["error"] and b"outside" not in r.content
    assert c.get("/api/rows/1").json()["image_url"] is None
    for url in (
        "/api/image/6",
        "/api/image/-1",
        "/api/image/..%2F..%2Fsecret.jpg",
        f"/api/image/{secret}",
        "/static/..%2F..%2F..%2Fpyproject.toml",
        "/static/view.py",
        "/static/%2Fetc%2Fpasswd",
        "/static/../view.py",
    ):
        r = c.get(url)
        assert r.status_code in (404, 422) and b"not a photo" not in r.content, url
        assert "error" in r.json(), url


def test_points_are_compact_arrays(run: FixtureRun, client: TestClient) -> None:
    r = client.get("/api/points")
    p = r.json()
    assert p["n"] == N and all(
        len(p[k]) == N for k in ("true_lat", "true_lon", "pred_lat", "pred_lon", "band")
    )
    assert p["band"] == [_band_of(x) for x in run.planned]
    assert all((p["pred_lat"][i] is None) == (b == NO_PREDICTION_BAND) for i, b in enumerate(p["band"]))
    assert len(r.content) < 60 * N  # a few dozen bytes a row


def test_page_and_assets_are_local(client: TestClient) -> None:
    html = client.get("/").text
    assert "/static/view.js" in html and "/static/worldmap.js" in html
    assert "http://" not in html and "https://" not in html  # offline: nothing from elsewhere
    for name in ("view.js", "view.css", "worldmap.js"):
        body = client.get(f"/static/{name}").text
        assert "https://" not in body and "http://" not in body.replace("http://www.w3.org/2000/svg", ""), (
            name
        )


def test_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not an evaluation run"):
        RunView(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        RunView(tmp_path / "nowhere")
    (tmp_path / "predictions.jsonl").write_text("")
    with pytest.raises(ValueError, match="no predictions yet"):
        RunView(tmp_path)


def test_the_command_serves_the_run(run: FixtureRun) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "georeason.cli", "view", str(run.out), "--port", str(port), "--no-open"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/summary", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "georeason view did not start"
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["n_records"] == N
        assert "georeason view" in httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert f"{N} rows of {run.out}" in err and f"http://127.0.0.1:{port}/" in err
