"""Hostile clients against `georeason serve` on loopback (issue 13, "Server").

Each test reproduces what took the server down or answered in another shape: a 1 MB
prompt holding the generation worker for minutes, abandoned requests keeping their
slots, no time bound on a generation, SIGTERM ignored while busy, a 13000 x 13000 PNG
decoded in full, and error replies that were not the OpenAI error object. Real server
processes serving the tiny model; real PNG bombs made here with PIL.
"""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from georeason.images import ImageError, load_image, to_data_url

torch = pytest.importorskip("torch")
pytest.importorskip("fastapi")

#: a generation the tiny model takes tens of seconds for on two CPU cores
LONG = {"max_tokens": 1500, "min_tokens": 1500}


@pytest.fixture(scope="module")
def model_dir(tiny_backend_model: Path) -> Path:
    return tiny_backend_model


def _serve(model_dir: Path, *extra: str) -> Any:
    from georeason.serve.process import ServeProcess

    args = ["--served-model-name", "tiny", "--device", "cpu", *extra]
    return ServeProcess(model_dir, args=args, env={"HF_HUB_OFFLINE": "1"}, grace=3.0)


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[Any]:
    """Defaults (what a user gets) but 2 slots."""
    with _serve(model_dir, "--max-concurrency", "2", "--max-request-bytes", "4MB") as proc:
        yield proc


@pytest.fixture(scope="module")
def client(server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60.0) as c:
        yield c


@pytest.fixture(scope="module")
def strict_server(model_dir: Path) -> Iterator[Any]:
    """A 2-second generation timeout and one image decode at a time."""
    args = [
        "--max-concurrency",
        "4",
        "--queue-timeout",
        "0",
        "--generation-timeout",
        "2",
        "--max-decodes",
        "1",
    ]
    with _serve(model_dir, *args) as proc:
        yield proc


def _chat(
    text: str = "Where was this photo taken?", image: Image.Image | bytes | None = None, **extra: Any
) -> dict:
    content: list[dict[str, Any]] = []
    if isinstance(image, bytes):
        content.append({"type": "image_url", "image_url": {"url": "data:image/png;base64," + _b64(image)}})
    elif image is not None:
        content.append({"type": "image_url", "image_url": {"url": to_data_url(image)}})
    content.append({"type": "text", "text": text})
    return {"messages": [{"role": "user", "content": content}], "max_tokens": 4, **extra}


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


def _health(server: Any) -> dict[str, Any]:
    return httpx.get(f"{server.url}/health", timeout=10.0).json()


def _assert_error_shape(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert err["code"] == status and isinstance(err["message"], str) and err["message"]
    return err


def _reset_peak(pid: int) -> None:
    """Start VmHWM afresh from VmRSS (Linux: write 5 to clear_refs), so a peak reached by an
    earlier test cannot hide (or fake) this one's."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _png_bomb(side: int = 13_000) -> bytes:
    """A bilevel PNG of side x side pixels: ~100 kB on disk, 169 Mpx decoded (13000)."""
    buf = io.BytesIO()
    Image.new("1", (side, side), 0).save(buf, "PNG", optimize=True)
    return buf.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = _png_bomb()
    assert len(data) < 200_000
    return data


def _send_raw(port: int, body: dict[str, Any]) -> socket.socket:
    """POST a chat completion on a raw socket and return it unread (the caller hangs up)."""
    payload = json.dumps(body).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10.0)
    sock.sendall(head + payload)
    return sock


# --- 1. one request must not take the server down ------------------------------------------


def test_a_megabyte_prompt_is_refused_before_generation(server: Any, client: httpx.Client) -> None:
    t0 = time.monotonic()
    r = client.post("/v1/chat/completions", json=_chat("Where? " * 150_000), timeout=30.0)
    took = time.monotonic() - t0
    err = _assert_error_shape(r, 422)
    assert "tokens" in err["message"] and "8,192" in err["message"], err
    assert err["param"] is None or err["param"] == "messages"
    assert took < 10.0, f"refusing a 1 MB prompt took {took:.1f} s"
    assert _health(server)["in_flight"] == 0
    # the server still answers normally afterwards
    assert client.post("/v1/chat/completions", json=_chat()).status_code == 200


def test_prompt_plus_max_tokens_over_the_context_is_refused(client: httpx.Client, model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    text = "Tokyo station at dusk, a red brick facade. " * 40
    n = len(tok(text, add_special_tokens=False)["input_ids"])
    reps = 1 + 6000 // n  # ~6,000 prompt tokens: fits the 8,192 context alone, not with 4,096 more
    body = _chat(text * reps, max_tokens=4096)
    err = _assert_error_shape(client.post("/v1/chat/completions", json=body), 422)
    assert "context" in err["message"] and err["param"] == "max_tokens"
    # the same prompt with a max_tokens that fits runs
    body.pop("max_tokens")
    body["max_completion_tokens"] = 2
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert 6000 < r.json()["usage"]["prompt_tokens"] < 8192


def test_prompt_count_equals_what_the_backend_builds(model_dir: Path) -> None:
    from georeason.infer.base import Request, get_backend
    from georeason.protocols import get_protocol
    from georeason.serve.limits import PromptCounter

    backend = get_backend("hf", str(model_dir), device="cpu")
    try:
        counter = PromptCounter(backend)
        assert counter.available and counter.context == 8192
        rng = np.random.default_rng(0)
        for k, size in enumerate([(40, 90), (200, 150), (640, 480)]):
            image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
            messages = get_protocol("geor").messages()
            messages[-1]["content"].append({"type": "text", "text": "word " * (5_000 * k)})
            built = backend._inputs([Request(id="x", image=image, messages=messages)])["input_ids"].shape[1]
            counted = counter.text_tokens(messages) + counter.image_tokens(image.size)
            assert abs(counted - built) <= 2, (size, counted, built)  # chunk cuts may cost a token
    finally:
        backend.close()


def test_disconnected_clients_free_their_slots(server: Any, client: httpx.Client) -> None:
    before = _health(server)
    socks = [_send_raw(server.port, _chat(**LONG)) for _ in range(2)]
    try:
        _wait_for(lambda: _health(server)["in_flight"] == 2, 30, "both slow requests to be admitted")
    finally:
        for s in socks:
            s.close()  # the clients give up
    _wait_for(lambda: _health(server)["in_flight"] == 0, 5, "the abandoned requests to free their slots")
    assert _health(server)["abandoned"] - before.get("abandoned", 0) == 2
    # Their rows stopped generating: a new request is answered at once, not after 1,500 tokens.
    t0 = time.monotonic()
    r = client.post("/v1/chat/completions", json=_chat())
    assert r.status_code == 200, r.text
    assert time.monotonic() - t0 < 20.0


def test_generation_timeout_is_504_and_the_worker_stops(strict_server: Any) -> None:
    with httpx.Client(base_url=strict_server.url, timeout=60.0) as c:
        t0 = time.monotonic()
        r = c.post("/v1/chat/completions", json=_chat(**LONG))
        took = time.monotonic() - t0
        err = _assert_error_shape(r, 504)
        assert err["type"] == "timeout" and "generation_timeout" in err["message"]
        assert took < 8.0, f"504 after {took:.1f} s with generation_timeout=2"
        # the worker is free again: a short request is answered within its own 2 s budget
        r = c.post("/v1/chat/completions", json=_chat(max_tokens=2))
        assert r.status_code == 200, r.text
    health = _health(strict_server)
    assert health["timed_out"] >= 1 and health["in_flight"] == 0


@pytest.mark.slow
def test_sigterm_stops_a_busy_server_within_seconds(model_dir: Path) -> None:
    proc = _serve(model_dir, "--max-concurrency", "2").start()
    assert proc.proc is not None
    replies: list[Any] = []

    def call() -> None:
        try:
            replies.append(httpx.post(f"{proc.url}/v1/chat/completions", json=_chat(**LONG), timeout=120.0))
        except httpx.HTTPError as e:
            replies.append(e)

    thread = threading.Thread(target=call)
    thread.start()
    try:
        _wait_for(lambda: _health(proc)["in_flight"] == 1, 30, "the slow request to be admitted")
        time.sleep(0.5)  # generating now
        t0 = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        try:
            proc.proc.wait(timeout=8.0)
        except Exception:
            pytest.fail(f"the busy server did not exit within 8 s of SIGTERM:\n{proc.log_tail()}")
        took = time.monotonic() - t0
    finally:
        proc.stop()
        thread.join(30)
    assert took < 8.0
    (reply,) = replies
    # the in-flight request got an answer it can act on (retry elsewhere), not a hang
    if isinstance(reply, httpx.Response):
        err = _assert_error_shape(reply, 503)
        assert "shutting down" in err["message"]


# --- 2. decompression bombs -----------------------------------------------------------------


def test_png_bomb_is_refused_from_its_header(server: Any, client: httpx.Client, bomb: bytes) -> None:
    assert server.proc is not None
    pid = server.proc.pid
    _reset_peak(pid)
    rss0, _ = _rss_mb(pid)
    replies: list[httpx.Response] = []

    def send(k: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60.0) as c:
            if k % 2:
                replies.append(c.post("/v1/locate", files={"image": ("bomb.png", bomb, "image/png")}))
            else:
                replies.append(c.post("/v1/chat/completions", json=_chat(image=bomb)))

    t0 = time.monotonic()
    threads = [threading.Thread(target=send, args=(k,)) for k in range(4)]  # four at once
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    took = time.monotonic() - t0
    assert len(replies) == 4
    for r in replies:
        err = _assert_error_shape(r, 422)
        assert "13000x13000" in err["message"] and "max_image_pixels" in err["message"], err
    _, hwm = _rss_mb(pid)
    assert hwm - rss0 < 200, f"four bombs raised the server's peak RSS by {hwm - rss0:.0f} MB"
    assert took < 10.0


def test_a_big_jpeg_decodes_at_a_draft_scale_under_a_small_guard() -> None:
    # 24 Mpx photo, a 16 Mpx guard, a model that keeps 12,544 pixels: JPEG's DCT scaling decodes
    # it at 1/8 (375 x 500), so it passes the guard and never exists at full size in memory.
    rng = np.random.default_rng(1)
    small = Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
    buf = io.BytesIO()
    small.resize((6000, 4000)).save(buf, "JPEG", quality=80)
    data = buf.getvalue()
    with pytest.raises(ImageError, match="max_image_pixels"):
        load_image(data, max_image_pixels=16_000_000)
    img = load_image(data, max_image_pixels=16_000_000, draft_pixels=112 * 112)
    assert img.mode == "RGB" and img.size[0] * img.size[1] <= 4 * 112 * 112 * 4
    assert img.size[0] > img.size[1]  # aspect kept
    # a PNG gets no DCT scaling: the guard counts its full size
    buf = io.BytesIO()
    Image.new("L", (5000, 4000)).save(buf, "PNG")
    with pytest.raises(ImageError, match="20,000,000 pixels > max_image_pixels=16,000,000"):
        load_image(buf.getvalue(), max_image_pixels=16_000_000, draft_pixels=112 * 112)


def test_a_big_bilevel_png_is_reduced_before_rgb(bomb: bytes) -> None:
    # Under a trusting guard the 169 Mpx bomb decodes (1 byte a pixel) but is reduced in its own
    # mode before any RGB copy: peak memory stays near the decoded size, not 4x it. Measured
    # in a fresh process, whose peak no earlier test has raised.
    code = (
        "import re, sys\n"
        "from georeason.images import load_image\n"
        "data = sys.stdin.buffer.read()\n"
        "def hwm():\n"
        "    return int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024\n"
        "open('/proc/self/clear_refs', 'w').write('5')  # peak := now (ru_maxrss keeps the parent's)\n"
        "before = hwm()\n"
        "img = load_image(data, max_pixels=112 * 112, max_image_pixels=200_000_000)\n"
        "assert img.mode == 'RGB' and img.size[0] * img.size[1] <= 112 * 112, img\n"
        "print(hwm() - before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], input=bomb, capture_output=True, check=True, timeout=120
    )
    grew = float(out.stdout.decode().strip())
    assert grew < 400, f"peak RSS grew {grew:.0f} MB decoding a 169 Mpx bilevel PNG"


def test_concurrent_decodes_are_bounded(strict_server: Any) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (3000, 3000), (20, 120, 200)).save(buf, "PNG")  # 9 Mpx, ~30 kB
    body = _chat(image=buf.getvalue(), max_tokens=1)
    replies: list[int] = []

    def send() -> None:
        with httpx.Client(base_url=strict_server.url, timeout=60.0) as c:
            replies.append(c.post("/v1/chat/completions", json=body).status_code)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(replies) == 4 and all(s in (200, 503, 504) for s in replies), replies
    health = _health(strict_server)
    assert health["max_decodes"] == 1 and health["decoding_peak"] == 1 and health["decoding"] == 0


# --- 3. one error shape -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type", "status", "param", "fragment"),
    [
        (b"hello", "text/plain", 422, None, "invalid request"),
        (b"not json at all", "application/json", 422, None, "not valid JSON"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": ', "application/json", 422, None, "JSON"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "seed": 1' + b"0" * 30 + b"}", "application/json", 422, "seed", "seed"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', "application/json", 422, "temperature", "temperature"),
        (
            json.dumps(
                {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,!!!!"}}]}]}
            ).encode(),
            "application/json",
            422,
            "messages.0.content.0.image_url",
            "invalid base64",
        ),
    ],
)  # fmt: skip
def test_chat_errors_keep_the_openai_shape(
    client: httpx.Client, content: bytes, content_type: str, status: int, param: str | None, fragment: str
) -> None:
    r = client.post("/v1/chat/completions", content=content, headers={"content-type": content_type})
    err = _assert_error_shape(r, status)
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param, err
    assert fragment in err["message"], err
    assert "empty image" not in err["message"]


def test_other_errors_keep_the_openai_shape(client: httpx.Client) -> None:
    assert _assert_error_shape(client.get("/no/such/page"), 404)["type"] == "not_found_error"
    _assert_error_shape(client.get("/v1/chat/completions"), 405)
    for content_type in ("multipart/form-data", "multipart/form-data; boundary="):  # was 400 {"detail": ...}
        r = client.post("/v1/locate", content=b"garbage", headers={"content-type": content_type})
        assert "could not be parsed" in _assert_error_shape(r, 422)["message"]
    r = client.post("/v1/locate", files={"image": ("a.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "image/png")})
    _assert_error_shape(r, 422)
