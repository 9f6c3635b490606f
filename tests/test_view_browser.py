"""`georeason view` in a real Chromium (issue 18 §3): the summary table, the map with every
answer, a filter to one error band, one row opened; screenshots in test-artifacts/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
from browser import browser, screenshot, serving  # noqa: F401  (tests/browser.py; `browser` is a fixture)
from eval_runs import FixtureRun, make_run  # tests/eval_runs.py

from georeason.eval.plots import NO_PREDICTION_BAND
from georeason.serve.view import create_view_app

pytestmark = pytest.mark.browser
N = 40


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> FixtureRun:
    return make_run(tmp_path_factory.mktemp("view_browser"), N, report=True)


@pytest.fixture(scope="module")
def url(run: FixtureRun) -> Iterator[str]:
    with serving(create_view_app(run.out)) as base:
        yield base


@pytest.fixture
def page(browser: Any, url: str) -> Iterator[Any]:  # noqa: F811  (browser: the fixture above)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on(
        "request", lambda r: None if r.url.startswith((url, "data:")) else problems.append(f"fetched {r.url}")
    )
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    yield page
    page.close()
    assert not problems, problems  # no script error, nothing fetched from elsewhere


def _records(run: FixtureRun) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run.out / "predictions.jsonl").read_text().splitlines()]


def test_table_map_filter_and_one_row(page: Any, run: FixtureRun) -> None:
    # the summary table, as report.md prints it
    cells = page.locator("#distance-table tbody tr th").all_inner_texts()
    assert cells[:2] == ["acc@1km", "acc@25km"] and "GeoScore (0–5000)" in cells
    md = (run.out / "report.md").read_text()
    for row in page.locator("#distance-table tbody tr").all():
        assert "| " + " | ".join(c.strip() for c in row.locator("th, td").all_inner_texts()) + " |" in md
    # the map: every answer, a line for each prediction, the country outlines drawn
    n_pred = sum(1 for p in run.planned if isinstance(p, int))
    box = page.locator("#map")
    assert box.get_attribute("data-points") == str(N) and box.get_attribute("data-lines") == str(n_pred)
    assert len(page.locator(".wm-land").get_attribute("d") or "") > 10_000
    assert page.locator(".wm-lines path").count() >= 4  # one path per error band
    assert page.locator("#rows tbody tr").count() == N
    screenshot(page, "view-overview")

    # filter to one error band: the list and the map follow
    page.select_option("#f-band", "0")
    want = run.planned.count(0)
    page.wait_for_function(f"document.querySelector('#map').dataset.points === '{want}'")
    assert page.locator("#rows tbody tr").count() == want
    assert set(page.locator("#rows tbody tr").evaluate_all("rs => rs.map(r => r.dataset.band)")) == {"0"}
    assert page.locator("#count").inner_text().startswith(f"{want} of {N}")
    screenshot(page, "view-filtered")

    # open one row: its photo, its full answer, its parse, its pins on the map
    i = run.planned.index(0)
    rec = _records(run)[i]
    page.click(f"#rows tbody tr[data-i='{i}'] button.open")
    page.wait_for_selector(f"#detail[data-i='{i}']")
    page.wait_for_function(
        "document.querySelector('#photo').complete && document.querySelector('#photo').naturalWidth > 0"
    )
    assert rec["id"] in page.locator("#detail-title").inner_text()
    assert page.locator("#completion").inner_text() == rec["completion"]
    parse = dict(
        zip(
            *[page.locator(f"#parse tbody tr {c}").all_inner_texts() for c in ("th", "td:nth-child(2)")],
            strict=True,
        )
    )
    assert parse["city"] == rec["pred_city"] and parse["format ok"] == "yes"
    assert page.locator(".wm-marks .wm-pin").count() == 2  # the answer and the truth
    screenshot(page, "view-row")


def test_sort_pages_and_a_failed_row(page: Any, run: FixtureRun) -> None:
    page.click("button.sort[data-sort='distance']")
    page.click("button.sort[data-sort='distance']")  # descending
    page.wait_for_function(
        "document.querySelector('th[aria-sort=descending] button[data-sort=distance]') !== null"
    )
    bands = page.locator("#rows tbody tr").evaluate_all("rs => rs.map(r => +r.dataset.band)")
    scored = [b for b in bands if b != NO_PREDICTION_BAND]
    assert scored == sorted(scored, reverse=True) and bands[len(scored) :] == [NO_PREDICTION_BAND] * (
        N - len(scored)
    )
    page.select_option("#f-status", "image")
    page.wait_for_function("document.querySelectorAll('#rows tbody tr').length === 1")
    page.click("#rows tbody tr button.open")
    page.wait_for_selector("#detail:not([hidden])")
    page.wait_for_function("document.querySelector('#photo-note').textContent.includes('image not found')")
    assert page.locator("#photo").is_hidden()
    assert "image" in page.locator("#detail-error").inner_text()


def test_phone_width(browser: Any, url: str) -> None:  # noqa: F811
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready='1']")
    page.click("#rows tbody tr:first-child button.open")
    page.wait_for_selector("#detail:not([hidden])")
    # nothing wider than the screen but the list, which scrolls in its own box
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    path = screenshot(page, "view-phone")
    page.close()
    assert Path(path).stat().st_size > 0
