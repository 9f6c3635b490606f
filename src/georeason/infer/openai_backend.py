"""The ``openai`` backend: any OpenAI-compatible chat-completions server, through the
official ``openai`` SDK (the ``serve`` extra).

vLLM's ``vllm serve``, SGLang, TGI, ``georeason serve`` and hosted APIs all take
the same request: the image travels inline as a base64 data URL in an
``image_url`` content part, next to the prompt text.

Robustness, because an evaluation sends thousands of requests:

- ``concurrency`` requests in flight at once (a thread pool over one ``openai.OpenAI``
  client and its connection pool: servers batch concurrent requests, so this is where
  the throughput comes from);
- retries by the SDK (``max_retries``): 408/409/429/5xx, connection errors and
  timeouts, with the SDK's exponential backoff (0.5 s doubling, at most 8 s, up to 25 %
  jitter) or the server's ``Retry-After`` / ``Retry-After-Ms`` when it sends one
  (up to 2 minutes); other 4xx fail at once (retrying a bad request cannot help);
- one thing the SDK does not retry, retried here within the same ``max_retries``
  budget: a success status whose body is not a JSON object (a proxy cut it short);
- a per-request ``timeout``;
- the API key from the environment (``OPENAI_API_KEY`` or the variable named
  by ``api_key_env``), never from the command line; no key, no ``Authorization`` header.

A request that still fails gets a Response with ``error`` set, saying why (the
last HTTP status and its message, a timeout, invalid JSON, no choices, a null
``content``); the run goes on. The same reasons reach :attr:`last_errors` for
log-probability requests.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from georeason.infer.base import (
    NO_TOKENS,
    YES_TOKENS,
    Backend,
    BackendError,
    Request,
    Response,
    check_request,
    check_sampling,
    logsumexp,
)

logger = logging.getLogger("georeason.infer")


class RequestFailed(RuntimeError):
    """A request failed for good (after retries, or at once for a non-retryable status)."""


class MalformedReply(RequestFailed):
    """A reply that parses as JSON but holds no usable answer (no choices, null content)."""


class OpenAIBackend(Backend):
    """Client for ``POST {base_url}/chat/completions`` on ``openai.OpenAI``.

    Args:
        model: the served model name (``"auto"`` or ``""``: the first of ``GET /models``).
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` (``$OPENAI_BASE_URL`` if unset).
        api_key: the key itself (prefer ``api_key_env``); none -> no Authorization header.
        api_key_env: the environment variable holding the key (default ``OPENAI_API_KEY``).
        concurrency: requests in flight at once.
        timeout: seconds for one HTTP request (connect at most 10 s of it).
        max_retries: retries after the first attempt (the SDK's backoff between them).
        image_format: ``"PNG"`` (lossless, default) or ``"JPEG"`` (smaller uploads).
        jpeg_quality: JPEG quality when ``image_format="JPEG"``.
        max_pixels: downscale images above this many pixels before upload.
        extra_body: extra JSON fields for every request (e.g. vLLM's ``{"top_k": 20}``);
            the call's own settings (``max_tokens``, ``temperature``, ``n``, ...) win.
    """

    name = "openai"

    def __init__(
        self,
        model: str = "auto",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 5,
        image_format: str = "PNG",
        jpeg_quality: int = 90,
        max_pixels: int | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or "http://127.0.0.1:8000/v1"
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, got {base_url!r}"
            )
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        fmt = image_format.upper().replace("JPG", "JPEG")
        if fmt not in ("PNG", "JPEG"):
            raise ValueError(f"image_format must be PNG or JPEG, got {image_format!r}")
        try:
            import openai  # noqa: F401  (here: a clear message when the SDK is missing)
        except ImportError as e:
            raise BackendError(
                "the openai backend (and a judge given as a server URL) needs the openai SDK: "
                "`pip install 'georeason[serve]'` (or `pip install openai`)"
            ) from e

        self.base_url = base_url.rstrip("/")
        if api_key is None:
            api_key = os.environ.get(api_key_env) or None
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.image_format = fmt
        self.jpeg_quality = jpeg_quality
        self.max_pixels = max_pixels
        self.extra_body = dict(extra_body or {})
        self._api_key = api_key
        self.attempts = 0  # HTTP attempts made, SDK retries included (for reports and tests)
        self.last_errors = []
        self._connect()
        self.model_name = model if model and model != "auto" else self._first_model()

    def _connect(self) -> None:
        """The SDK client, its thread pool and locks (rebuilt after unpickling)."""
        import openai

        # The SDK insists on credentials; keyless servers (vLLM without --api-key) get a
        # placeholder key and every request omits the Authorization header.
        self._headers: dict[str, Any] = {} if self._api_key else {"Authorization": openai.omit}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=self._api_key or "no-key",
            max_retries=self.max_retries,
            timeout=openai.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
            # the SDK's connection pool (100 kept alive) is larger than any sane concurrency
            http_client=openai.DefaultHttpxClient(event_hooks={"request": [self._count_attempt]}),
        )
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="georeason-openai")

    def __getstate__(self) -> dict[str, Any]:
        # Picklable (a reward with a judge server travels to TRL's workers): settings only.
        return {k: v for k, v in self.__dict__.items() if k not in _LIVE}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._connect()

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model_name!r}, base_url={self.base_url!r}, concurrency={self.concurrency})"

    # ------------------------------------------------------------------ HTTP

    def _count_attempt(self, request: Any) -> None:
        """httpx event hook: one call per HTTP attempt, the SDK's retries included."""
        with self._lock:
            self.attempts += 1
        self._local.attempts = getattr(self._local, "attempts", 0) + 1

    def _first_model(self) -> str:
        try:
            page = self._call(
                lambda client: client.models.with_raw_response.list(extra_headers=self._headers)
            )
            return str(page["data"][0]["id"])
        except (KeyError, IndexError, TypeError) as e:
            raise RequestFailed(f"{self.base_url}/models lists no model; pass the model name") from e

    def _call(self, send: Any) -> dict[str, Any]:
        """One API call through the SDK (its retries included); the JSON body, or RequestFailed.

        ``send(client)`` makes the call ``with_raw_response``; a success whose body is not a
        JSON object is retried here, sharing the ``max_retries`` budget with the SDK's retries.
        """
        import openai

        self._local.attempts = 0
        url = self.base_url
        while True:
            spent = self._local.attempts
            client = self._client
            if spent:
                client = client.with_options(max_retries=max(0, self.max_retries - spent))
            try:
                raw = send(client)
            except openai.APITimeoutError:
                problem = f"timeout after {self.timeout:g} s"
            except openai.APIConnectionError as e:
                cause = e.__cause__ or e
                problem = f"connection error: {type(cause).__name__}: {cause}"
            except openai.APIStatusError as e:
                url = str(e.request.url)
                problem = f"HTTP {e.status_code} from {url}: {_error_detail(e.response)}"
                if not _retryable(e.status_code):
                    raise RequestFailed(problem) from e
            else:
                response = raw.http_response
                url = str(response.url)
                try:
                    data = json.loads(response.text)
                except ValueError:
                    data = None
                if isinstance(data, dict):
                    return data
                # A body cut short or mangled on the way (a proxy, a restarting server):
                # asking again usually gets a whole one. The SDK would raise, not retry.
                problem = f"HTTP {response.status_code} from {url} with invalid JSON: {response.text[:200]!r}"
                if self._local.attempts <= self.max_retries:
                    k = self._local.attempts - 1
                    logger.info("openai backend: %s; retry %d/%d", problem, k + 1, self.max_retries)
                    time.sleep(min(0.5 * 2**k, 8.0) * (1 - 0.25 * random.random()))  # the SDK's backoff
                    continue
            attempts = self._local.attempts
            raise RequestFailed(f"{problem} (gave up after {attempts} attempt{'s' if attempts != 1 else ''})")

    # -------------------------------------------------------------- messages

    def _data_url(self, image: Any) -> str:
        from PIL import Image

        from georeason.images import fit_image, to_data_url

        if image.mode != "RGB":
            image = image.convert("RGB")
        if self.max_pixels is not None and image.size[0] * image.size[1] > self.max_pixels:
            image = image.resize(fit_image(image.size, self.max_pixels), Image.Resampling.LANCZOS)
        return to_data_url(image, self.image_format, quality=self.jpeg_quality)

    def to_openai_messages(self, request: Request) -> list[dict[str, Any]]:
        """Protocol messages -> OpenAI chat messages, the image as an ``image_url`` data URL."""
        out = []
        for message in request.messages:
            content = message.get("content")
            if isinstance(content, list):
                parts: list[dict[str, Any]] = []
                for part in content:
                    kind = part.get("type")
                    if kind == "image":
                        parts.append(
                            {"type": "image_url", "image_url": {"url": self._data_url(request.image)}}
                        )
                    elif kind == "text":
                        parts.append({"type": "text", "text": part.get("text", "")})
                    elif kind == "image_url":
                        parts.append(part)
                    else:
                        raise ValueError(f"unsupported content part type {kind!r}")
                out.append({"role": message["role"], "content": parts})
            else:
                out.append({"role": message["role"], "content": content if content is not None else ""})
        return out

    # ------------------------------------------------------------ generation

    def generate(
        self,
        requests: list[Request],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        n: int = 1,
    ) -> list[Response]:
        """See :meth:`Backend.generate`; ``n`` samples are one request with the API's ``n``."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if temperature < 0 or not math.isfinite(temperature):
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        check_sampling(n, temperature)
        settings: dict[str, Any] = {
            "max_tokens": max_new_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "n": n,
        }
        if seed is not None:
            settings["seed"] = seed
        return list(self._pool.map(lambda r: self._one(r, settings), requests))

    def _chat(self, request: Request, settings: dict[str, Any]) -> dict[str, Any]:
        """``POST /chat/completions`` for one request; the JSON body, or RequestFailed."""
        messages = self.to_openai_messages(request)
        extra = {k: v for k, v in self.extra_body.items() if k not in settings}
        return self._call(
            lambda client: client.chat.completions.with_raw_response.create(
                model=self.model_name,
                messages=messages,
                extra_body=extra or None,
                extra_headers=self._headers,
                **settings,
            )
        )

    def _one(self, request: Request, settings: dict[str, Any]) -> Response:
        t0 = time.perf_counter()
        problem = check_request(request)
        if problem is not None:
            return Response(id=request.id, text=None, error=problem)
        try:
            data = self._chat(request, settings)
            choice = _first_choice(data)
            texts = [_choice_text(c) for c in _choices(data, int(settings.get("n", 1)))]
            text = texts[0]
        except (RequestFailed, ValueError) as e:
            return Response(id=request.id, text=None, error=str(e), seconds=time.perf_counter() - t0)
        except (KeyError, IndexError, TypeError) as e:
            return Response(
                id=request.id,
                text=None,
                error=f"malformed chat completion ({type(e).__name__}: {e})",
                seconds=time.perf_counter() - t0,
            )
        except Exception as e:  # e.g. an image that cannot be encoded: this request only
            return Response(
                id=request.id, text=None, error=f"{type(e).__name__}: {e}", seconds=time.perf_counter() - t0
            )
        usage = data.get("usage") or {}
        extra = {
            "finish_reason": choice.get("finish_reason"),
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
        }
        return Response(
            id=request.id,
            text=text,
            seconds=time.perf_counter() - t0,
            extra=extra,
            samples=texts if len(texts) > 1 else [],
        )

    # -------------------------------------------------------------- log-probs

    def yes_no_logprobs(
        self,
        requests: list[Request],
        *,
        yes_tokens: Sequence[str] = YES_TOKENS,
        no_tokens: Sequence[str] = NO_TOKENS,
        top_logprobs: int = 20,
    ) -> list[tuple[float, float] | None]:
        """``(log P(yes), log P(no))`` of the first answer token from ``top_logprobs``.

        One token is generated greedily with ``logprobs=True``; each side sums
        the probabilities of its spellings among the top ``top_logprobs``
        candidates (tokens compared after stripping whitespace, as GLOBE does).
        A side absent from the top-k gets ``-inf`` (its probability is below the
        k-th candidate's); both absent -> None with the reason in :attr:`last_errors`.
        """
        yes, no = {t.strip() for t in yes_tokens}, {t.strip() for t in no_tokens}
        settings = {
            "max_tokens": 1,
            "temperature": 0.0,
            "n": 1,
            "logprobs": True,
            "top_logprobs": top_logprobs,
        }
        results = list(self._pool.map(lambda r: self._yes_no(r, settings, yes, no), requests))
        self.last_errors = [err for _, err in results]
        return [lp for lp, _ in results]

    def _yes_no(
        self, request: Request, settings: dict[str, Any], yes: set[str], no: set[str]
    ) -> tuple[tuple[float, float] | None, str | None]:
        problem = check_request(request)
        if problem is not None:
            return None, problem
        try:
            data = self._chat(request, settings)
            top = _first_choice(data)["logprobs"]["content"][0]["top_logprobs"]
            pairs = [(str(t["token"]).strip(), float(t["logprob"])) for t in top]
        except RequestFailed as e:
            return None, str(e)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            return None, f"server returned no top_logprobs ({type(e).__name__}: {e})"
        except Exception as e:
            return None, f"{type(e).__name__}: {e}"
        py = [lp for tok, lp in pairs if tok in yes]
        pn = [lp for tok, lp in pairs if tok in no]
        if not py and not pn:
            return None, f"no yes/no token among the top {len(pairs)} log-probabilities"
        return (logsumexp(py), logsumexp(pn)), None

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()


#: attributes rebuilt by OpenAIBackend._connect, never pickled
_LIVE = frozenset({"_headers", "_lock", "_local", "_client", "_pool"})


def _retryable(status: int) -> bool:
    """The statuses the SDK retries: timeouts, conflicts, rate limits, server errors."""
    return status in (408, 409, 429) or status >= 500


def _first_choice(data: dict[str, Any]) -> dict[str, Any]:
    """``choices[0]`` of a chat completion; :class:`MalformedReply` when there is none."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedReply(f"the server returned no choices: {str(data)[:200]}")
    return choices[0]


def _choices(data: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """The ``n`` choices of a chat completion, in ``index`` order; :class:`MalformedReply`
    when the server returned fewer (it ignored ``n``)."""
    choices = [c for c in data.get("choices") or [] if isinstance(c, dict)]
    if len(choices) < n:
        raise MalformedReply(f"asked for n={n} samples, the server returned {len(choices)} choices")
    return sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c.get("index"), int) else 0)[:n]


def _choice_text(choice: dict[str, Any]) -> str:
    """The text of one choice; :class:`MalformedReply` on a null content (a refusal, a filter)."""
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if content is None:
        refusal = message.get("refusal") if isinstance(message, dict) else None
        raise MalformedReply(
            "the server returned no content (message.content is null"
            + (f", refusal: {str(refusal)[:200]!r}" if refusal else "")
            + f", finish_reason {choice.get('finish_reason')!r})"
        )
    return _content_text(content)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers answer with content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    raise TypeError(f"message content has unexpected type {type(content).__name__}")


def _error_detail(resp: Any) -> str:
    try:
        data = resp.json()
        err = data.get("error", data) if isinstance(data, dict) else data
        msg = err.get("message", err) if isinstance(err, dict) else err
        return str(msg)[:300]
    except ValueError:
        return resp.text[:300]
