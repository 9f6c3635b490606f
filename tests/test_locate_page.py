"""The locate page at `/` of `georeason serve`, in a real headless Chromium (issue 18).

Two servers: the real app around the `openai` backend whose upstream answers a fixed
completion (tests/test_locate.py's FixedAnswerServer), so the pin, the true point, the
km line and the highlights can be checked exactly and fast; and `georeason serve` with
the tiny model as a process, where the page must show whatever the model answered.
Screenshots go to ``test-artifacts/`` (``$GEOREASON_TEST_ARTIFACTS``), see tests/browser.py.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from georeason.geo import haversine_km
from georeason.images import gps_exif

pytest.importorskip("fastapi")
pytestmark = [pytest.mark.browser, pytest.mark.requires("uvicorn", "openai")]

from browser import browser, screenshot, serving  # noqa: E402, F401  (tests/browser.py; `browser` is a fixture)
from test_locate import FixedAnswerServer  # noqa: E402  (tests/test_locate.py)

ANSWER = (
    "<think>Visible clues: kanji shop signs, cars on the left. Together, the clues point to Asia, "
    "more precisely to Japan, in the region of Tokyo.</think>"
    "<answer>Country: Japan\nState: Tokyo\nCity: Tokyo\nCoordinates: (35.6895, 139.6917)</answer>"
)
OSAKA = (34.6937, 135.5023)  # the photo's GPS; the fixed answer says Tokyo, ~400 km away
ANSWER_LATLON = (35.6895, 139.6917)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def photo_bytes(gps: tuple[float, float] | None = OSAKA, size: tuple[int, int] = (160, 120)) -> bytes:
    img = Image.new("RGB", size, (90, 140, 200))
    img.paste((230, 230, 220), (0, size[1] // 2, size[0], size[1]))
    buf = io.BytesIO()
    img.save(buf, "JPEG", **({"exif": gps_exif(*gps)} if gps else {}))
    return buf.getvalue()


@pytest.fixture(scope="module")
def fixed() -> Iterator[FixedAnswerServer]:
    upstream = FixedAnswerServer(ANSWER)
    yield upstream
    upstream.close()


@pytest.fixture(scope="module")
def site(fixed: FixedAnswerServer) -> Iterator[str]:
    """The real app around the openai backend, whose upstream answers ANSWER; yields its URL."""
    from georeason.infer.base import get_backend
    from georeason.serve.app import create_app

    backend = get_backend("openai", "fixed-model", base_url=fixed.base_url)
    with serving(create_app(backend, max_request_bytes="1MB")) as url:
        yield url
    backend.close()


def open_page(chromium: Any, url: str, viewport: dict[str, int]) -> Any:
    context = chromium.new_context(viewport=viewport)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.errors = errors  # type: ignore[attr-defined]
    return page


def upload(page: Any, name: str, data: bytes, mime: str) -> None:
    page.set_input_files("#image", files=[{"name": name, "mimeType": mime, "buffer": data}])


def test_locate_a_photo_with_gps(browser: Any, site: str) -> None:  # noqa: F811
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = open_page(browser, site, viewport)
        upload(page, "osaka.jpg", photo_bytes(), "image/jpeg")
        assert page.is_visible("#preview")
        page.click("#locate")
        page.wait_for_selector("#result:not([hidden])", timeout=30_000)
        page.wait_for_selector(".wm-pin-true", timeout=10_000)
        # the chain, its clue and place phrases highlighted
        clues = page.locator("#chain mark.hl-clue").all_inner_texts()
        assert clues == ["kanji shop signs", "cars on the left"]
        assert page.locator("#chain mark.hl-place").all_inner_texts() == [
            "Japan",
            "Tokyo",
        ]  # the answer names no continent
        # the hierarchy: the model's words beside the geocoder's reading of its coordinates
        rows = page.locator("#hierarchy tbody tr").all_inner_texts()
        assert len(rows) == 4 and "Japan" in rows[1] and "Tokyo" in rows[3]
        # the coordinates, the pin, the true point, the line and the error in km
        assert "35.6895° N, 139.6917° E" in page.inner_text("#coords")
        km = haversine_km(*ANSWER_LATLON, *OSAKA)
        assert f"{round(km):,} km" in page.inner_text("#error-km")
        assert page.locator(".wm-pin-predicted").count() == 1
        assert page.locator(".wm-pin-true").count() == 1
        assert page.locator("path.wm-line-error").count() == 1
        # the outlines are drawn (fetched once the first result needs the map)
        page.wait_for_function("document.querySelector('.wm-land').getAttribute('d').length > 10000")
        # the page fits a phone: nothing wider than the viewport
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        screenshot(page, f"locate-{label}")
        assert page.errors == []  # type: ignore[attr-defined]
        page.context.close()


def test_the_page_is_keyboard_usable_and_never_submits_twice(
    browser: Any,  # noqa: F811
    site: str,
    fixed: FixedAnswerServer,
) -> None:
    page = open_page(browser, site, DESKTOP)
    upload(page, "osaka.jpg", photo_bytes(), "image/jpeg")
    before = len(fixed.requests)
    page.focus("#protocol")
    page.keyboard.press("Tab")  # to the Locate button
    assert page.evaluate("document.activeElement.id") == "locate"
    page.keyboard.press("Enter")
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    page.wait_for_function("!document.getElementById('locate').disabled")
    assert len(fixed.requests) == before + 1
    # two clicks in one task (the upstream answers in milliseconds): the second finds it busy
    page.evaluate("() => { const b = document.getElementById('locate'); b.click(); b.click(); }")
    page.wait_for_function("!document.getElementById('locate').disabled")
    assert len(fixed.requests) == before + 2
    # the map zooms with the keyboard
    page.focus(".wm-svg")
    box = page.get_attribute(".wm-svg", "viewBox")
    page.keyboard.press("-")
    page.keyboard.press("0")
    assert page.get_attribute(".wm-svg", "viewBox") == "0 0 360 180" != box
    page.context.close()


@pytest.mark.parametrize(
    ("name", "data", "mime", "sentence"),
    [
        ("notes.txt", b"not a photo", "text/plain", "is not an image this page takes"),
        ("notes.jpg", b"not a photo at all", "image/jpeg", "could not read that file as an image"),
        ("huge.jpg", b"\xff\xd8" + b"0" * (2 * 1024**2), "image/jpeg", "too large for this server"),
    ],
)
def test_errors_are_sentences(
    browser: Any,  # noqa: F811
    site: str,
    name: str,
    data: bytes,
    mime: str,
    sentence: str,
) -> None:
    page = open_page(browser, site, DESKTOP)
    upload(page, name, data, mime)
    page.click("#locate")
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    text = page.inner_text("#error")
    assert sentence in text and "{" not in text, text
    assert page.is_hidden("#result") and not page.is_disabled("#locate")
    screenshot(page, f"error-{name}")
    page.context.close()


def test_busy_server_is_retried_then_explained(browser: Any, site: str) -> None:  # noqa: F811
    page = open_page(browser, site, DESKTOP)
    calls: list[str] = []

    def busy(route: Any) -> None:  # the server's own 503 body and header
        calls.append(route.request.url)
        body = (
            '{"error": {"message": "server busy: 4 requests in flight", "type": "server_busy", "code": 503}}'
        )
        route.fulfill(status=503, body=body, headers={"Retry-After": "0", "Content-Type": "application/json"})

    page.route("**/v1/locate", busy)
    upload(page, "osaka.jpg", photo_bytes(), "image/jpeg")
    page.click("#locate")
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    assert "busy" in page.inner_text("#error") and len(calls) == 4  # the first try and 3 retries
    page.context.close()


@pytest.mark.slow
def test_the_tiny_model_through_georeason_serve(
    browser: Any,  # noqa: F811
    tiny_backend_model: Path,
) -> None:
    from georeason.serve.process import ServeProcess

    args = ["--served-model-name", "tiny", "--device", "cpu", "--max-new-tokens-limit", "512"]
    with ServeProcess(tiny_backend_model, args=args, env={"HF_HUB_OFFLINE": "1"}) as server:
        page = open_page(browser, server.url, DESKTOP)
        upload(page, "osaka.jpg", photo_bytes(), "image/jpeg")
        with page.expect_response("**/v1/locate", timeout=300_000) as answer:
            page.click("#locate")
        out = answer.value.json()
        page.wait_for_selector("#result:not([hidden])")
        page.wait_for_selector(".wm-pin-true")
        assert out["exif_gps"] == pytest.approx({"lat": OSAKA[0], "lon": OSAKA[1]}, abs=1e-4)
        assert page.locator("#hierarchy tbody tr").count() == 4
        assert page.inner_text("#chain").strip()  # the chain, or the sentence that there is none
        # the page shows what the model answered: a pin, a line and km exactly when it placed the photo
        placed = out["lat"] is not None
        assert page.locator(".wm-pin-predicted").count() == int(placed)
        assert page.locator("path.wm-line-error").count() == int(placed)
        assert ("km from the photo's GPS" in page.inner_text("#error-km")) == placed
        if not placed:
            assert "No coordinates" in page.inner_text("#coords")
        screenshot(page, "locate-tiny-model")
        assert page.errors == []  # type: ignore[attr-defined]
        page.context.close()
