"""A real browser for the page tests (issue 18 §3): Playwright driving the system Chromium.

Playwright's own browser download needs the internet; Debian's ``chromium`` package does not,
so the tests launch that one (``/usr/bin/chromium``, or ``GEOREASON_CHROMIUM``). Without
Playwright or Chromium a test using :func:`browser` is skipped, saying which is missing and how
to install it (``.ci/run`` installs both).

- :func:`chromium_path`: the Chromium binary, or None;
- :func:`browser`: a pytest fixture (import it into a test module) with one headless Chromium
  per test module;
- :func:`serving`: runs an ASGI app under uvicorn on a free loopback port, in a thread, and
  yields its base URL;
- :data:`ARTIFACTS`: where tests save their screenshots (``GEOREASON_TEST_ARTIFACTS``, default
  ``test-artifacts/`` in the checkout), for people to look at.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(
    os.environ.get("GEOREASON_TEST_ARTIFACTS") or Path(__file__).resolve().parents[1] / "test-artifacts"
)
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_path() -> str | None:
    """The system Chromium: ``GEOREASON_CHROMIUM``, else the first of the usual names on PATH."""
    env = os.environ.get("GEOREASON_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    return next((p for p in (shutil.which(n) for n in CHROMIUM_CANDIDATES) if p), None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium (Playwright's sync API) for the tests of one module."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed: pip install playwright (no browser download needed)")
    exe = chromium_path()
    if exe is None:
        pytest.skip("no Chromium: apt-get install chromium (or set GEOREASON_CHROMIUM to its binary)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: Any, *, timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) while the block runs; yields ``http://127.0.0.1:PORT``."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the test server did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as ``ARTIFACTS/name.png``; returns its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
