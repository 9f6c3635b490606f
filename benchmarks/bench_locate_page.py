"""Benchmark: the locate page of ``georeason serve`` in Chromium (issue 18 §3). Targets: the
first load <= 300 KB of our own assets, map included, and a render <= 1 s with the server warm.

The real app runs on loopback around the ``openai`` backend whose upstream answers a fixed
geor completion (tests/test_locate.py's FixedAnswerServer), so the model costs nothing and
what is timed is the page. Each repeat opens a fresh browser context (empty cache) and:

* **render**: navigation start -> the form is usable (``load`` fired) and two frames painted;
* **result**: choosing a photo with EXIF GPS and pressing Locate -> the chain, the hierarchy
  and the map (outlines, the pin, the true point, the line) drawn and painted;
* **bytes**: every response the page fetched, HTML + CSS + JS + the map's outlines, as
  transferred (gzip where the browser takes it) and as decoded.

Prints the median of ``--repeats`` after one warm-up (the server builds the outlines once).

    python benchmarks/bench_locate_page.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from browser import chromium_path, serving  # the tests' server and browser helpers, one definition
from test_locate import FixedAnswerServer  # the tests' fixed-answer upstream

ANSWER = (
    "<think>Visible clues: kanji shop signs, cars on the left. Together, the clues point to Asia, "
    "more precisely to Japan, in the region of Tokyo.</think>"
    "<answer>Country: Japan\nState: Tokyo\nCity: Tokyo\nCoordinates: (35.6895, 139.6917)</answer>"
)
PAINTED = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
BYTES = """() => performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))
  .filter(e => !e.name.includes('/v1/locate'))
  .reduce((s, e) => [s[0] + e.transferSize, s[1] + e.decodedBodySize], [0, 0])"""


def _photo() -> bytes:
    from PIL import Image

    from georeason.images import gps_exif

    buf = io.BytesIO()
    Image.new("RGB", (160, 120), (90, 140, 200)).save(buf, "JPEG", exif=gps_exif(34.6937, 135.5023))
    return buf.getvalue()


def _load(browser: Any, url: str, photo: bytes) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(url + "/", wait_until="load")
    page.evaluate(PAINTED)
    render = time.perf_counter() - t0
    page.set_input_files("#image", files=[{"name": "osaka.jpg", "mimeType": "image/jpeg", "buffer": photo}])
    t0 = time.perf_counter()
    page.click("#locate")
    page.wait_for_selector("path.wm-line-error", timeout=60_000)
    page.wait_for_function("(document.querySelector('.wm-land').getAttribute('d') || '').length > 1000")
    page.evaluate(PAINTED)
    result = time.perf_counter() - t0
    sent, decoded = page.evaluate(BYTES)
    context.close()
    return {"render": render, "result": result, "sent": float(sent), "decoded": float(decoded)}


def bench_locate(repeats: int) -> None:
    from playwright.sync_api import sync_playwright

    from georeason.infer.base import get_backend
    from georeason.serve.app import create_app

    exe = chromium_path()
    if exe is None:
        sys.exit("no Chromium: apt-get install chromium (or set GEOREASON_CHROMIUM)")
    upstream = FixedAnswerServer(ANSWER)
    backend = get_backend("openai", "fixed-model", base_url=upstream.base_url)
    photo = _photo()
    try:
        with serving(create_app(backend)) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
            _load(browser, url, photo)  # warm-up: the server builds the outlines once
            results = [_load(browser, url, photo) for _ in range(repeats)]
            version = browser.version
            browser.close()
    finally:
        backend.close()
        upstream.close()
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    print(f"Chromium {version}, {repeats} cold-cache loads after one warm-up, medians:")
    print(f"  render (navigation -> load, painted): {med['render'] * 1000:.0f} ms")
    print(f"  Locate -> chain, hierarchy, map with pins and line painted: {med['result'] * 1000:.0f} ms")
    print(
        f"  our bytes (page, CSS, JS, outlines): {med['sent'] / 1024:,.0f} KB transferred, "
        f"{med['decoded'] / 1024:,.0f} KB decoded"
    )
    renders = ", ".join(f"{r['render'] * 1000:.0f}" for r in results)
    print(f"  all renders: {renders} ms")
    print(
        f"  targets: <= 300 KB {'met' if med['sent'] <= 300 * 1024 else 'NOT met'}; "
        f"render <= 1 s {'met' if med['render'] <= 1.0 else 'NOT met'}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    bench_locate(args.repeats)


if __name__ == "__main__":
    main()
