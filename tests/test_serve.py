"""`georeason serve` as a real process on loopback, serving the tiny model; the `openai`
backend as its client. Covers the OpenAI subset, /v1/locate, /health, 413, 422, the
concurrency limit (503) and that the event loop answers while the model works."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from georeason.images import gps_exif, to_data_url
from georeason.infer.base import Request, get_backend
from georeason.protocols import get_protocol

torch = pytest.importorskip("torch")
pytest.importorskip("fastapi")

MAX_CONCURRENCY = 2


@pytest.fixture(scope="module")
def model_dir(tiny_backend_model: Path) -> Path:
    return tiny_backend_model


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[Any]:
    from georeason.serve.process import ServeProcess

    args = [
        "--max-concurrency", str(MAX_CONCURRENCY),
        "--queue-timeout", "0",
        "--max-request-bytes", "1MB",
        "--max-new-tokens-limit", "512",
        "--served-model-name", "tiny",
        "--device", "cpu",
    ]  # fmt: skip
    with ServeProcess(model_dir, args=args, env={"HF_HUB_OFFLINE": "1"}) as proc:
        yield proc


@pytest.fixture(scope="module")
def client(server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60.0) as c:
        yield c


@pytest.fixture(scope="module")
def hf(model_dir: Path) -> Iterator[Any]:
    backend = get_backend("hf", str(model_dir), device="cpu")
    yield backend
    backend.close()


def _images(n: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [
        Image.fromarray(
            rng.integers(0, 255, (int(rng.integers(40, 200)), int(rng.integers(40, 200)), 3), dtype=np.uint8)
        )
        for _ in range(n)
    ]


def _requests(images: list[Image.Image]) -> list[Request]:
    msgs = get_protocol("geor").messages()
    return [Request(id=f"r{i}", image=im, messages=msgs) for i, im in enumerate(images)]


def _chat_body(image: Image.Image | None = None, **extra: Any) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if image is not None:
        content.append({"type": "image_url", "image_url": {"url": to_data_url(image)}})
    content.append({"type": "text", "text": "Where was this photo taken?"})
    return {"model": "tiny", "messages": [{"role": "user", "content": content}], "max_tokens": 4, **extra}


def _jpeg(img: Image.Image, exif: Image.Exif | None = None) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **({"exif": exif} if exif is not None else {}))
    return buf.getvalue()


# --- basics ----------------------------------------------------------------------------------


def test_health_and_models(client: httpx.Client) -> None:
    health = client.get("/health").json()
    assert health["ready"] is True and health["model"] == "tiny" and health["backend"] == "hf"
    assert health["max_concurrency"] == MAX_CONCURRENCY
    models = client.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["tiny"]
    page = client.get("/")
    assert page.status_code == 200 and "/v1/locate" in page.text


def test_openai_backend_through_serve_equals_hf_in_process(server: Any, hf: Any) -> None:
    requests = _requests(_images(3, seed=1))
    backend = get_backend("openai", "auto", base_url=server.base_url, concurrency=MAX_CONCURRENCY)
    try:
        assert backend.model_name == "tiny"
        remote = backend.generate(requests, max_new_tokens=8)
    finally:
        backend.close()
    local = hf.generate(requests, max_new_tokens=8)
    assert all(r.ok for r in remote), [r.error for r in remote]
    # PNG data URLs are lossless: the server sees the same pixels, so greedy text is identical.
    assert [r.text for r in remote] == [r.text for r in local]
    assert all(r.extra["completion_tokens"] >= 1 and r.extra["prompt_tokens"] > 0 for r in remote)


def test_chat_completion_response_shape(client: httpx.Client) -> None:
    r = client.post(
        "/v1/chat/completions", json=_chat_body(_images(1, seed=2)[0], max_tokens=6, temperature=0)
    )
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["object"] == "chat.completion" and data["model"] == "tiny"
    (choice,) = data["choices"]
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("stop", "length") and choice["logprobs"] is None
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert 1 <= usage["completion_tokens"] <= 6
    # a text-only conversation with a plain-string system message works too
    text_only = {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "max_tokens": 3,
    }
    assert client.post("/v1/chat/completions", json=text_only).status_code == 200


def test_logprobs_for_the_judge_match_in_process(server: Any, hf: Any, client: httpx.Client) -> None:
    image = _images(1, seed=3)[0]
    (req,) = _requests([image])
    r = client.post(
        "/v1/chat/completions",
        json={
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": get_protocol("geor").system_prompt}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": to_data_url(image)}},
                        {"type": "text", "text": get_protocol("geor").user_prompt},
                    ],
                },
            ],
            "max_tokens": 1,
            "temperature": 0,
            "logprobs": True,
            "top_logprobs": 5,
        },
    )
    assert r.status_code == 200, r.text
    (first,) = r.json()["choices"][0]["logprobs"]["content"]
    tops = first["top_logprobs"]
    assert len(tops) == 5 and tops[0]["logprob"] >= tops[-1]["logprob"]
    # The openai backend's judge path reads those top log-probs: take the two most likely
    # tokens as the "yes" and "no" words and compare with the hf backend's forward pass.
    yes_w, no_w = tops[0]["token"], tops[1]["token"]
    backend = get_backend("openai", "tiny", base_url=server.base_url)
    try:
        (remote,) = backend.yes_no_logprobs([req], yes_tokens=[yes_w], no_tokens=[no_w])
    finally:
        backend.close()
    assert remote is not None
    single = [len(hf.tokenizer.encode(w, add_special_tokens=False)) == 1 for w in (yes_w, no_w)]
    if all(single) and yes_w.strip() == yes_w and no_w.strip() == no_w:
        (local,) = hf.yes_no_logprobs([req], yes_tokens=[yes_w], no_tokens=[no_w])
        assert local is not None
        assert remote[0] == pytest.approx(local[0], abs=1e-3) and remote[1] == pytest.approx(
            local[1], abs=1e-3
        )
    else:
        assert remote[0] == pytest.approx(tops[0]["logprob"], abs=1e-6)


# --- limits ------------------------------------------------------------------------------------


def test_concurrency_limit_503_while_health_stays_responsive(server: Any, client: httpx.Client) -> None:
    body = _chat_body(_images(1, seed=4)[0], max_tokens=60, min_tokens=60)
    results: list[httpx.Response] = []

    def call() -> None:
        with httpx.Client(base_url=server.url, timeout=120.0) as c:
            results.append(c.post("/v1/chat/completions", json=body))

    threads = [threading.Thread(target=call) for _ in range(MAX_CONCURRENCY)]
    for t in threads:
        t.start()
    try:
        # /health answers while the model works (generation runs off the event loop)...
        for _ in range(600):
            if client.get("/health", timeout=5.0).json()["in_flight"] == MAX_CONCURRENCY:
                break
            threading.Event().wait(0.02)
        else:
            pytest.fail("the slow requests never filled the slots")
        # ... and a request over the limit is refused at once (queue_timeout=0).
        busy = client.post("/v1/chat/completions", json=_chat_body(_images(1, seed=5)[0]))
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "1"
        assert "max_concurrency" in busy.json()["error"]["message"]
    finally:
        for t in threads:
            t.join(120)
    assert [r.status_code for r in results] == [200] * MAX_CONCURRENCY
    assert all(r.json()["usage"]["completion_tokens"] == 60 for r in results)
    assert client.get("/health").json()["rejected"] >= 1


def test_openai_backend_retries_through_503(server: Any, client: httpx.Client) -> None:
    rejected_before = client.get("/health").json()["rejected"]
    backend = get_backend(
        "openai",
        "tiny",
        base_url=server.base_url,
        concurrency=2 * MAX_CONCURRENCY,
        max_retries=60,  # the SDK waits the server's Retry-After (1 s) between tries
        extra_body={"min_tokens": 16},
    )
    try:
        out = backend.generate(_requests(_images(2 * MAX_CONCURRENCY, seed=6)), max_new_tokens=16)
    finally:
        backend.close()
    assert all(r.ok for r in out), [r.error for r in out]
    assert all(r.extra["completion_tokens"] == 16 for r in out)
    rejected = client.get("/health").json()["rejected"] - rejected_before
    assert backend.attempts == len(out) + rejected  # every 503 was retried, nothing else failed


def test_413_on_declared_and_chunked_bodies(client: httpx.Client) -> None:
    big = b"x" * (1024**2 + 10)
    r = client.post("/v1/chat/completions", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "1,048,576" in r.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"y" * 65536

    r = client.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = client.post("/v1/locate", files={"image": ("big.jpg", big, "image/jpeg")})
    assert r.status_code == 413
    assert client.get("/health").status_code == 200  # the server is fine afterwards


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"messages": []}, "messages"),
        ({"max_tokens": 3}, "messages"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "role"),
        ({"messages": [{"role": "user", "content": "hi"}], "n": 2, "temperature": 0}, "temperature > 0"),
        ({"messages": [{"role": "user", "content": "hi"}], "n": 33}, "n"),
        ({"messages": [{"role": "user", "content": "hi"}], "stream": True}, "stream"),
        ({"messages": [{"role": "user", "content": "hi"}], "temperature": 5}, "temperature"),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 50}, "top_logprobs"),
        ({"messages": [{"role": "user", "content": "hi"}], "model": "gpt-9"}, "model"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "image_url"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x/y.jpg"}}],
                    }
                ]
            },
            "only data: URLs",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}}
                        ],
                    }
                ]
            },
            "not an image",
        ),
    ],
)
def test_422_with_a_clear_message(client: httpx.Client, body: dict[str, Any], fragment: str) -> None:
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and fragment in err["message"]


def test_422_two_images_and_bad_json(client: httpx.Client) -> None:
    img = _images(1, seed=7)[0]
    part = {"type": "image_url", "image_url": {"url": to_data_url(img)}}
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": [part, part]}]})
    assert r.status_code == 422 and "one image" in r.json()["error"]["message"]
    r = client.post(
        "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and "JSON" in r.json()["error"]["message"]


def test_backend_input_errors_are_422(client: httpx.Client) -> None:
    r = client.post("/v1/chat/completions", json=_chat_body(Image.new("RGB", (2, 1000))))
    assert r.status_code == 422 and "aspect ratio" in r.json()["error"]["message"]


# --- /v1/locate --------------------------------------------------------------------------------


def test_locate_endpoint(client: httpx.Client) -> None:
    photo = _jpeg(_images(1, seed=8)[0], gps_exif(35.6812, 139.7671))
    r = client.post(
        "/v1/locate", files={"image": ("tokyo.jpg", photo, "image/jpeg")}, data={"max_tokens": "8"}
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["source"] == "tokyo.jpg" and out["protocol"] == "geor" and out["ok"] is True
    assert out["exif_gps"] == pytest.approx({"lat": 35.6812, "lon": 139.7671}, abs=1e-5)
    assert isinstance(out["answer"], str) and out["prediction"]["raw"] == out["answer"]
    # A random model gives no coordinates: reported, not an error.
    if out["lat"] is None:
        assert out["error_km"] is None and out["warnings"]
    r = client.post(
        "/v1/locate",
        files={"image": ("x.png", _jpeg(_images(1, seed=9)[0]), "image/png")},
        data={"protocol": "globe", "max_tokens": "4"},
    )
    assert r.status_code == 200 and r.json()["protocol"] == "globe" and r.json()["exif_gps"] is None


def test_n_samples_in_one_request_end_to_end(server: Any, client: httpx.Client) -> None:
    # The openai backend against georeason serve: K sampled chains in one HTTP request.
    from georeason.infer.base import Request as InferRequest
    from georeason.protocols import get_protocol

    backend = get_backend("openai", "tiny", base_url=server.url + "/v1", timeout=60.0)
    try:
        msgs = get_protocol("geor").messages()
        (resp,) = backend.generate(
            [InferRequest(id="a", image=_images(1, seed=4)[0], messages=msgs)],
            max_new_tokens=8,
            temperature=1.0,
            n=4,
        )
    finally:
        backend.close()
    assert resp.ok and len(resp.samples) == 4 and len(set(resp.samples)) > 1
    photo = _jpeg(_images(1, seed=8)[0], gps_exif(35.6812, 139.7671))
    r = client.post(
        "/v1/locate",
        files={"image": ("tokyo.jpg", photo, "image/jpeg")},
        data={"max_tokens": "8", "samples": "3", "temperature": "1.0", "aggregate": "geomedian"},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert len(out["samples"]) == 3 and out["consensus"]["n_samples"] == 3
    assert out["consensus"]["method"] == "geomedian"


@pytest.mark.parametrize(
    ("files", "data", "fragment"),
    [
        ({"image": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")}, {"samples": "3"}, "temperature > 0"),
        ({"image": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")}, {"aggregate": "mean"}, "aggregate"),
        ({"image": ("notes.txt", b"not an image at all", "text/plain")}, {}, "not an image"),
        ({"image": ("a.jpg", b"", "image/jpeg")}, {}, "empty"),
        ({"image": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")}, {"protocol": "nope"}, "unknown protocol"),
        ({"other": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")}, {}, "image"),
        ({"image": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")}, {"max_tokens": "0"}, "max_tokens"),
    ],
)
def test_locate_422(client: httpx.Client, files: dict[str, Any], data: dict[str, str], fragment: str) -> None:
    r = client.post("/v1/locate", files=files, data=data)
    assert r.status_code == 422, r.text
    assert fragment in r.json()["error"]["message"]
