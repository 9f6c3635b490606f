"""georeason.infer: the hf backend on the tiny model, the openai backend's HTTP behaviour
(retries, Retry-After, timeouts, API key) against real loopback HTTP servers, get_backend.

The tiny model has random weights: tests assert behaviour (shapes, counts, batch ==
one-by-one, error isolation), never answer quality.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from georeason.infer.base import BackendError, Request, Response, check_request, get_backend, yes_probability
from georeason.protocols import get_protocol

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def hf(tiny_backend_model: Path) -> Iterator[Any]:
    backend = get_backend("hf", str(tiny_backend_model), batch_size=8, device="cpu")
    yield backend
    backend.close()


def _images(n: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h, w = int(rng.integers(40, 220)), int(rng.integers(40, 220))
        out.append(Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)))
    return out


def _requests(images: list[Image.Image], protocol: str = "geor") -> list[Request]:
    msgs = get_protocol(protocol).messages()
    return [Request(id=f"r{i}", image=im, messages=msgs) for i, im in enumerate(images)]


# --- hf backend ---------------------------------------------------------------------------


def test_batched_greedy_equals_one_by_one(hf: Any) -> None:
    requests = _requests(_images(6))
    batched = hf.generate(requests, max_new_tokens=12)
    single = [hf.generate([r], max_new_tokens=12)[0] for r in requests]
    assert [r.id for r in batched] == [r.id for r in requests]
    assert all(r.ok for r in batched + single)
    assert [r.text for r in batched] == [r.text for r in single]
    # The comparison is meaningful: the model's output depends on the image.
    assert len({r.text for r in batched}) > 1
    for r in batched:
        assert r.extra["prompt_tokens"] > 0 and 1 <= r.extra["completion_tokens"] <= 12
        assert r.extra["finish_reason"] in ("stop", "length")
        assert r.seconds is not None and r.seconds > 0


def test_micro_batches_do_not_change_results(hf: Any) -> None:
    requests = _requests(_images(5, seed=3))
    full = [r.text for r in hf.generate(requests, max_new_tokens=6)]
    hf.batch_size = 2
    try:
        chunked = [r.text for r in hf.generate(requests, max_new_tokens=6)]
    finally:
        hf.batch_size = 8
    assert chunked == full


def test_left_padding_is_used(hf: Any) -> None:
    assert hf.tokenizer.padding_side == "left"
    small, large = Image.new("RGB", (56, 56)), Image.new("RGB", (112, 112))  # 4 vs 16 image tokens
    inputs = hf._inputs(_requests([small, large]))
    mask = inputs["attention_mask"]
    assert bool(mask[:, -1].all())  # every row ends with a real token
    assert int(mask[0, 0]) == 0 and int(mask[1, 0]) == 1  # the shorter prompt is padded on the left
    assert int(mask[0].sum()) < int(mask[1].sum())


def test_one_bad_request_does_not_lose_the_batch(hf: Any) -> None:
    good = _images(2, seed=5)
    bad = Image.new("RGB", (2, 1000))  # the Qwen2-VL processor refuses aspect ratios over 200
    requests = _requests([good[0], bad, good[1]])
    out = hf.generate(requests, max_new_tokens=5)
    assert [r.id for r in out] == ["r0", "r1", "r2"]
    assert out[1].text is None and "aspect ratio" in (out[1].error or "")
    assert out[0].ok and out[2].ok
    alone = [hf.generate([requests[i]], max_new_tokens=5)[0].text for i in (0, 2)]
    assert [out[0].text, out[2].text] == alone


def test_mismatched_image_placeholders_are_per_request_errors(hf: Any) -> None:
    msgs = get_protocol("geor").messages()
    no_image = Request(id="a", image=None, messages=msgs)
    no_placeholder = Request(
        id="b", image=Image.new("RGB", (56, 56)), messages=get_protocol("geor").messages(False)
    )
    text_only = Request(id="c", image=None, messages=get_protocol("geor").messages(False))
    out = hf.generate([no_image, no_placeholder, text_only], max_new_tokens=3)
    assert "no image" in (out[0].error or "")
    assert "placeholder" in (out[1].error or "")
    assert out[2].ok  # a text-only prompt is a valid request
    assert check_request(Request(id="d", image=None, messages=[])) == "request has no messages"


def test_sampling_is_reproducible_with_a_seed(hf: Any) -> None:
    requests = _requests(_images(3, seed=7))
    a = hf.generate(requests, max_new_tokens=8, temperature=1.0, top_p=0.9, seed=123)
    b = hf.generate(requests, max_new_tokens=8, temperature=1.0, top_p=0.9, seed=123)
    assert [r.text for r in a] == [r.text for r in b]


@pytest.mark.parametrize(
    "kwargs", [{"max_new_tokens": 0}, {"temperature": -1.0}, {"top_p": 0.0}, {"top_p": 1.5}]
)
def test_bad_settings_raise(hf: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        hf.generate(_requests(_images(1)), **kwargs)


def test_top_logprobs_match_the_generated_tokens(hf: Any) -> None:
    (resp,) = hf.generate(_requests(_images(1, seed=11)), max_new_tokens=4, top_logprobs=3)
    lps = resp.extra["logprobs"]
    assert 1 <= len(lps) <= 4
    for entry in lps:
        tops = entry["top_logprobs"]
        assert len(tops) == 3
        assert tops[0]["logprob"] >= tops[1]["logprob"] >= tops[2]["logprob"]
        # greedy: the chosen token is the most likely one
        assert entry["logprob"] == pytest.approx(tops[0]["logprob"], abs=1e-5)


def test_min_new_tokens_forces_length(hf: Any) -> None:
    (resp,) = hf.generate(_requests(_images(1, seed=13)), max_new_tokens=20, min_new_tokens=20)
    assert resp.extra["completion_tokens"] == 20 and resp.extra["finish_reason"] == "length"


def test_yes_no_logprobs_agree_with_generation(hf: Any) -> None:
    """Single-token words: the forward pass gives the same log-probs generate() reports."""
    requests = _requests(_images(3, seed=17))
    firsts = [hf.generate([r], max_new_tokens=1, top_logprobs=2)[0].extra["logprobs"][0] for r in requests]
    compared = 0
    for req, first in zip(requests, firsts, strict=True):
        a, b = first["top_logprobs"][0], first["top_logprobs"][1]
        single = [
            w for w in (a["token"], b["token"]) if len(hf.tokenizer.encode(w, add_special_tokens=False)) == 1
        ]
        if len(single) < 2:
            continue
        (lp,) = hf.yes_no_logprobs([req], yes_tokens=[a["token"]], no_tokens=[b["token"]])
        assert lp is not None
        assert lp[0] == pytest.approx(a["logprob"], abs=1e-4)
        assert lp[1] == pytest.approx(b["logprob"], abs=1e-4)
        compared += 1
    assert compared > 0


def test_yes_no_logprobs_multi_token_words(hf: Any) -> None:
    # "yes" is two tokens in the tiny tokenizer: scored by teacher forcing, so
    # log P("yes") <= log P(its first token).
    assert len(hf.tokenizer.encode("yes", add_special_tokens=False)) > 1
    requests = _requests(_images(2, seed=19))
    bad = Request(id="bad", image=None, messages=get_protocol("geor").messages())
    out = hf.yes_no_logprobs([*requests, bad])
    assert out[2] is None and "no image" in (hf.last_errors[2] or "")
    first_tok = hf.tokenizer.encode("yes", add_special_tokens=False)[0]
    first_word = hf.tokenizer.decode([first_tok])
    for req, lp in zip(requests, out[:2], strict=True):
        assert lp is not None and all(math.isfinite(x) and x < 0 for x in lp)
        (single,) = hf.yes_no_logprobs([req], yes_tokens=["yes"], no_tokens=[first_word])
        assert single is not None and single[0] <= single[1] + 1e-6
        p = yes_probability(lp)
        assert p is not None and 0.0 < p < 1.0


def test_yes_probability_formula() -> None:
    assert yes_probability((math.log(0.3), math.log(0.1))) == pytest.approx(0.75)
    assert yes_probability((-math.inf, math.log(0.2))) == 0.0
    assert yes_probability((-math.inf, -math.inf)) is None
    assert yes_probability(None) is None


# --- get_backend ---------------------------------------------------------------------------


def test_get_backend_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        get_backend("tgi", "x")
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(BackendError, match="pip install"):
            get_backend("vllm", "x")
    from georeason.models import ModelNotFoundError

    with pytest.raises(ModelNotFoundError):
        get_backend("hf", str(tmp_path / "no-model"))


# --- openai backend against real loopback HTTP servers ---------------------------------------


def _completion(text: str) -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


class ScriptedServer:
    """A real HTTP server on loopback whose answers come from ``reply(n, body) -> (status, payload, headers)``.

    Records every request body and its headers; ``n`` counts requests from 1.
    """

    def __init__(self, reply: Callable[[int, dict[str, Any]], tuple[int, Any, dict[str, str]]]) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[Any] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, payload: Any, headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client timed out
                    self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer(200, {"object": "list", "data": [{"id": "scripted-model"}]}, {})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.bodies.append(body)
                    outer.headers.append(self.headers)  # a Message: names are case-insensitive
                    n = len(outer.bodies)
                status, payload, headers = reply(n, body)
                self._answer(status, payload, headers)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _openai(server: ScriptedServer, model: str = "scripted-model", **options: Any) -> Any:
    options = {"timeout": 5.0, **options}
    return get_backend("openai", model, base_url=server.base_url, **options)


def _one_request() -> list[Request]:
    return _requests([Image.new("RGB", (30, 20), (10, 200, 30))])


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_retries_then_succeeds(status: int) -> None:
    def reply(n: int, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if n <= 2:
            return status, {"error": {"message": "busy"}}, {"Retry-After": "0.01"}  # honoured by the SDK
        return 200, _completion("ok after retries"), {}

    with ScriptedServer(reply) as server:
        backend = _openai(server, max_retries=3)
        (resp,) = backend.generate(_one_request(), max_new_tokens=7)
        backend.close()
    assert resp.ok and resp.text == "ok after retries"
    assert len(server.bodies) == 3 and backend.attempts == 3
    assert resp.extra["completion_tokens"] == 2


def test_gives_up_after_max_retries_and_records_the_error() -> None:
    with ScriptedServer(lambda n, b: (503, {"error": {"message": "overloaded"}}, {})) as server:
        backend = _openai(server, max_retries=2)
        (resp,) = backend.generate(_one_request())
        backend.close()
    assert resp.text is None
    assert "HTTP 503" in (resp.error or "") and "overloaded" in (resp.error or "")
    assert "gave up after 3 attempts" in (resp.error or "")
    assert len(server.bodies) == 3


def test_client_errors_are_not_retried() -> None:
    with ScriptedServer(lambda n, b: (400, {"error": {"message": "bad field"}}, {})) as server:
        backend = _openai(server, max_retries=5)
        (resp,) = backend.generate(_one_request())
        backend.close()
    assert resp.text is None and "HTTP 400" in (resp.error or "") and "bad field" in (resp.error or "")
    assert len(server.bodies) == 1


def test_timeout_is_retried_then_reported() -> None:
    def reply(n: int, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        time.sleep(1.0)
        return 200, _completion("too late"), {}

    with ScriptedServer(reply) as server:
        backend = _openai(server, timeout=0.2, max_retries=1)
        (resp,) = backend.generate(_one_request())
        backend.close()
    assert resp.text is None and "timeout" in (resp.error or "")
    assert backend.attempts == 2


def test_connection_refused_is_reported() -> None:
    from georeason.serve.process import free_port

    backend = get_backend(
        "openai", "m", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=1, timeout=2.0
    )
    (resp,) = backend.generate(_one_request())
    backend.close()
    assert resp.text is None and "connection error" in (resp.error or "")


def test_request_body_api_key_and_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_GEO_KEY", "sekret")
    with ScriptedServer(lambda n, b: (200, _completion(f"answer {n}"), {})) as server:
        backend = _openai(server, api_key_env="MY_GEO_KEY", model="auto", concurrency=3)
        assert backend.model_name == "scripted-model"  # from GET /models
        requests = _requests(_images(5, seed=23))
        out = backend.generate(requests, max_new_tokens=33, temperature=0.5, top_p=0.8, seed=4)
        backend.close()
    assert all(r.ok for r in out) and sorted(r.text for r in out) == sorted(
        f"answer {n}" for n in range(1, 6)
    )
    assert all(h.get("Authorization") == "Bearer sekret" for h in server.headers)
    body = server.bodies[0]
    assert body["model"] == "scripted-model" and body["max_tokens"] == 33 and body["n"] == 1
    assert body["temperature"] == 0.5 and body["top_p"] == 0.8 and body["seed"] == 4
    system, user = body["messages"]
    assert system["role"] == "system" and system["content"][0]["type"] == "text"
    image_part = next(p for p in user["content"] if p["type"] == "image_url")
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.size in {im.size for im in _images(5, seed=23)}


def test_no_api_key_no_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ScriptedServer(lambda n, b: (200, _completion("x"), {})) as server:
        backend = _openai(server)
        backend.generate(_one_request())
        backend.close()
    assert "Authorization" not in server.headers[0]


def test_openai_yes_no_logprobs_from_top_logprobs() -> None:
    def reply(n: int, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        assert body["max_tokens"] == 1 and body["logprobs"] is True and body["top_logprobs"] == 20
        tops = [
            {"token": "Yes", "logprob": math.log(0.5)},
            {"token": " yes", "logprob": math.log(0.1)},
            {"token": "No", "logprob": math.log(0.2)},
            {"token": "maybe", "logprob": math.log(0.1)},
        ]
        if body["messages"][1]["content"][-1]["text"] == "nothing":
            tops = [{"token": "maybe", "logprob": 0.0}]
        data = _completion("Yes")
        data["choices"][0]["logprobs"] = {
            "content": [{"token": "Yes", "logprob": tops[0]["logprob"], "top_logprobs": tops}]
        }
        return 200, data, {}

    img = Image.new("RGB", (20, 20))
    ok = Request(
        "a",
        img,
        [
            {"role": "system", "content": "judge"},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "reasoning"}]},
        ],
    )
    none = Request(
        "b",
        img,
        [
            {"role": "system", "content": "judge"},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "nothing"}]},
        ],
    )
    with ScriptedServer(reply) as server:
        backend = _openai(server)
        out = backend.yes_no_logprobs([ok, none])
        backend.close()
    assert out[0] is not None
    assert math.exp(out[0][0]) == pytest.approx(0.6) and math.exp(out[0][1]) == pytest.approx(0.2)
    assert yes_probability(out[0]) == pytest.approx(0.75)
    assert out[1] is None and "no yes/no token" in (backend.last_errors[1] or "")


def test_openai_backend_option_checks() -> None:
    with pytest.raises(ValueError, match="base_url"):
        get_backend("openai", "m", base_url="localhost:8000")
    with pytest.raises(ValueError, match="concurrency"):
        get_backend("openai", "m", base_url="http://127.0.0.1:1/v1", concurrency=0)
    with pytest.raises(ValueError, match="image_format"):
        get_backend("openai", "m", base_url="http://127.0.0.1:1/v1", image_format="GIF")


def test_response_ok_property() -> None:
    assert Response(id="a", text="x").ok and not Response(id="a", text=None, error="e").ok


# --- K samples per request (self-consistency) ---------------------------------------------


def test_hf_samples_k_answers_per_request_in_one_call(hf: Any) -> None:
    requests = _requests(_images(3, seed=5))
    out = hf.generate(requests, max_new_tokens=10, temperature=1.0, seed=1, n=4)
    assert [r.id for r in out] == [r.id for r in requests]
    for r in out:
        assert r.ok and len(r.samples) == 4 and r.texts == r.samples and r.text == r.samples[0]
        assert 4 <= r.extra["completion_tokens"] <= 4 * 10
    assert len({t for r in out for t in r.samples}) > 3  # samples differ, within and across requests
    # The same seed draws the same samples (reproducible self-consistency).
    again = hf.generate(requests, max_new_tokens=10, temperature=1.0, seed=1, n=4)
    assert [r.samples for r in again] == [r.samples for r in out]


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"n": 3, "temperature": 0.0}])
def test_hf_bad_sample_counts_raise(hf: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="n"):
        hf.generate(_requests(_images(1)), **kwargs)


def test_openai_asks_for_n_samples_in_one_request() -> None:
    def reply(n: int, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        k = body["n"]
        data = _completion("first")
        data["choices"] = [
            {"index": i, "message": {"role": "assistant", "content": f"sample {i}"}, "finish_reason": "stop"}
            for i in reversed(range(k))  # out of order: the backend sorts by index
        ]
        return 200, data, {}

    with ScriptedServer(reply) as server:
        backend = _openai(server)
        (resp,) = backend.generate(_one_request(), max_new_tokens=7, temperature=0.7, n=3)
        (greedy,) = backend.generate(_one_request(), max_new_tokens=7)
        backend.close()
    assert len(server.bodies) == 2 and server.bodies[0]["n"] == 3 and server.bodies[1]["n"] == 1
    assert resp.ok and resp.samples == ["sample 0", "sample 1", "sample 2"] and resp.text == "sample 0"
    assert greedy.samples == [] and greedy.texts == ["sample 0"]


def test_openai_server_ignoring_n_is_a_per_request_error() -> None:
    with ScriptedServer(lambda n, body: (200, _completion("only one"), {})) as server:
        backend = _openai(server, max_retries=0)
        (resp,) = backend.generate(_one_request(), temperature=0.7, n=3)
        backend.close()
    assert not resp.ok and "n=3" in (resp.error or "")
