"""Benchmark: the page of ``georeason view`` in Chromium (issue 18 §3). Target: a 12,000-row
run (MP16-Reason's test size) renders in <= 2 s with the server warm.

A synthetic evaluation of ``--rows`` photos is made by the real runner with scripted answers
(``tests/eval_runs.py``, the same run the tests browse: every error band, parse/backend/image
failures), then ``georeason view``'s app is served on loopback and the system Chromium
(Playwright) loads the page ``--repeats`` times after one warm-up load, each in a fresh
browser context (empty cache). Timed:

* **render**: navigation start -> the page says it is drawn (``body[data-ready]``: summary
  table, the map with every row's line and dots, the first page of the list) and two frames
  have been painted;
* **filter**: choosing one error band -> the list and the map redrawn with that band only;
* **row**: clicking a row -> its photo, answer and parse shown;
* the bytes the page fetched (transfer size, gzip where the browser takes it).

Prints the median of the repeats for each.

    python benchmarks/bench_view_page.py [--rows 12000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from browser import chromium_path, serving  # the tests' server and browser helpers, one definition
from eval_runs import make_run  # the tests' evaluation runs

PAINTED = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


def _load(browser: Any, url: str) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    page.evaluate(PAINTED)
    render = time.perf_counter() - t0
    fetched = page.evaluate(
        "performance.getEntriesByType('resource').reduce((s, e) => s + e.transferSize, 0)"
    )
    nav = page.evaluate("performance.getEntriesByType('navigation')[0].transferSize")
    n_band = page.evaluate("() => document.querySelector('#f-band option[value=\"2\"]').textContent")
    want = n_band.split("(")[-1].rstrip(")")
    t0 = time.perf_counter()
    page.select_option("#f-band", "2")
    page.wait_for_function(f"document.querySelector('#map').dataset.points === '{want}'", timeout=60_000)
    page.evaluate(PAINTED)
    filt = time.perf_counter() - t0
    t0 = time.perf_counter()
    page.click("#rows tbody tr:nth-child(3) button.open")
    page.wait_for_selector("#detail:not([hidden])")
    page.wait_for_function(
        "!document.querySelector('#photo').src || document.querySelector('#photo').complete"
    )
    page.evaluate(PAINTED)
    row = time.perf_counter() - t0
    points = int(page.get_attribute("#map", "data-points") or 0)
    context.close()
    return {
        "render": render,
        "filter": filt,
        "row": row,
        "bytes": float(fetched + nav),
        "band_points": points,
    }


def bench_view(rows: int, repeats: int) -> None:
    from playwright.sync_api import sync_playwright

    from georeason.serve.view import create_view_app

    exe = chromium_path()
    if exe is None:
        sys.exit("no Chromium: apt-get install chromium (or set GEOREASON_CHROMIUM)")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = make_run(Path(tmp), rows, report=True, n_bootstrap=1000)
        made = time.perf_counter() - t0
        t0 = time.perf_counter()
        app = create_view_app(run.out)
        opened = time.perf_counter() - t0
        print(f"run of {rows:,} rows made in {made:.1f} s; the view app read it in {opened:.2f} s")
        with serving(app) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
            _load(browser, url)  # warm-up: the server encodes the points and outlines once
            results = [_load(browser, url) for _ in range(repeats)]
            browser.close()
        version = getattr(browser, "version", "?")
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    print(f"Chromium {version}, {repeats} loads after one warm-up, medians:")
    print(
        f"  render (navigation -> summary, map of {rows:,} rows, first page, painted): {med['render']:.2f} s"
    )
    print(f"  filter to one error band ({int(med['band_points']):,} rows on the map): {med['filter']:.2f} s")
    print(f"  open one row: {med['row']:.2f} s")
    print(f"  bytes fetched: {med['bytes'] / 1024:,.0f} KB")
    renders = ", ".join(f"{r['render']:.2f}" for r in results)
    verdict = "met" if med["render"] <= 2.0 else "NOT met"
    print(f"  all renders: {renders} s; target <= 2 s: {verdict}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=12_000, help="rows of the synthetic run")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    bench_view(args.rows, args.repeats)


if __name__ == "__main__":
    main()
