"""The HTTP service: an OpenAI-compatible subset, ``/v1/locate`` and ``/health``.

``create_app(backend)`` builds a FastAPI app around any :mod:`georeason.infer`
backend (``georeason serve`` runs it under uvicorn; tests start a real process).

Endpoints
---------
- ``POST /v1/chat/completions``: the subset the ``openai`` backend (and GLOBE's
  judge) uses — messages with text and ``image_url`` parts holding ``data:``
  URLs (at most one image per request), ``max_tokens`` /
  ``max_completion_tokens``, ``temperature``, ``top_p``, ``seed``, ``n=1``,
  ``stop``, ``logprobs`` / ``top_logprobs`` (<= 20), and vLLM's ``min_tokens``.
  Unknown fields are ignored, as OpenAI-compatible servers do; ``stream=true``,
  ``n>1``, remote image URLs are refused with 422.
- ``POST /v1/locate``: multipart form with ``image`` (the file) and optional
  ``protocol``, ``max_tokens``, ``temperature``; answers the reasoning chain,
  the parsed answer, the gazetteer place, coordinates and, when the photo has
  EXIF GPS, the error in km (see :class:`georeason.infer.locate.LocateResult`).
- ``GET /v1/models``, ``GET /health`` (model name, ready, in-flight count), ``GET /`` (an upload page).

Limits
------
- Request bodies over ``max_request_bytes`` -> **413** (checked on the
  ``Content-Length`` header before reading, and while reading chunked bodies).
- Malformed requests -> **422** with an OpenAI-style error whose message names
  the field; an unreadable image, too (the :class:`~georeason.data.images.ImageError` reason).
- At most ``max_concurrency`` requests are admitted at once; a request over the
  limit **waits up to** ``queue_timeout`` seconds for a slot and then gets
  **503** with ``Retry-After`` (``queue_timeout=0``: 503 at once). The
  ``openai`` backend retries 503 with backoff.
- Generation runs in one worker thread (:class:`~georeason.serve.batching.BatchWorker`)
  that batches the admitted requests, so the event loop stays responsive
  (``/health`` answers while the model works).
- A backend failure on the request's input (e.g. an image shape the processor
  rejects) -> 422; any other generation failure -> 500.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
import uuid
from typing import Annotated, Any, Literal

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.concurrency import run_in_threadpool

from georeason.data.images import DEFAULT_MAX_IMAGE_PIXELS, ImageError, decode_data_url, load_image
from georeason.infer.base import Backend, Response
from georeason.infer.base import Request as InferRequest
from georeason.serve.batching import BatchWorker

logger = logging.getLogger("georeason.serve")

MAX_TOP_LOGPROBS = 20
# Backend errors of these types come from the request's own input (processor checks).
_INPUT_ERRORS = ("ValueError", "TypeError", "ImageError")


# ---------------------------------------------------------------------------
# Request schema (the OpenAI subset)
# ---------------------------------------------------------------------------


class ImageURL(BaseModel):
    url: str
    detail: str | None = None


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text", "image_url"]
    text: str | None = None
    image_url: ImageURL | None = None

    @model_validator(mode="after")
    def _check(self) -> ContentPart:
        if self.type == "text" and self.text is None:
            raise ValueError('a "text" part needs a "text" field')
        if self.type == "image_url" and self.image_url is None:
            raise ValueError('an "image_url" part needs an "image_url": {"url": ...} field')
        return self


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: str | list[ContentPart]


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    min_tokens: int = Field(default=0, ge=0, description="vLLM extension: no end-of-sequence before this")
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = None
    n: int = Field(default=1, ge=1)
    stop: str | list[str] | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)
    stream: bool = False

    @field_validator("n")
    @classmethod
    def _one_choice(cls, v: int) -> int:
        if v != 1:
            raise ValueError("only n=1 is supported; send several requests for several samples")
        return v

    @field_validator("stream")
    @classmethod
    def _no_stream(cls, v: bool) -> bool:
        if v:
            raise ValueError("streaming is not supported; send stream=false")
        return v


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


def _error(
    status: int, message: str, kind: str, param: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


class PayloadTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than the limit of {limit:,} bytes (max_request_bytes)")


class BodySizeLimit:
    """ASGI middleware: 413 for bodies over ``max_bytes``.

    The body is read and discarded (up to 16x the limit) before answering, so a
    client that writes its whole request before reading — most do — sees the
    413 instead of a broken pipe.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _drain(self, receive: Any, already: int) -> None:
        seen = already
        while seen <= 16 * self.max_bytes:
            msg = await receive()
            if msg["type"] != "http.request":
                return
            seen += len(msg.get("body", b""))
            if not msg.get("more_body", False):
                return

    async def _reject(self, send: Any) -> None:
        resp = _error(
            413, PayloadTooLarge(self.max_bytes).detail, "request_too_large", headers={"Connection": "close"}
        )
        await send({"type": "http.response.start", "status": 413, "headers": resp.raw_headers})
        await send({"type": "http.response.body", "body": resp.body})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared > self.max_bytes:
                await self._drain(receive, 0)
                await self._reject(send)
                return
        received = 0

        async def limited() -> dict[str, Any]:
            nonlocal received
            msg: dict[str, Any] = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.max_bytes:
                    if msg.get("more_body", False):
                        await self._drain(receive, received)
                    raise PayloadTooLarge(self.max_bytes)
            return msg

        await self.app(scope, limited, send)


# ---------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(i?b)?\s*$", re.I)


def parse_size(text: str | int) -> int:
    """Bytes from ``"20MB"``, ``"512k"``, ``"1GiB"`` or ``1000`` (k/M/G are powers of 1024).

    >>> parse_size("20MB"), parse_size("1.5k"), parse_size(7)
    (20971520, 1536, 7)
    """
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if m is None:
        raise ValueError(f"bad size {text!r}: use bytes or a number with k, MB or GB (e.g. 20MB)")
    mult = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)


def create_app(
    backend: Backend,
    *,
    model_name: str | None = None,
    max_concurrency: int = 4,
    max_request_bytes: int | str = 20 * 1024**2,
    queue_timeout: float = 30.0,
    max_batch: int | None = None,
    batch_window_s: float = 0.05,
    batch_linger_s: float = 0.01,
    default_protocol: str = "geor",
    max_pixels: int | None = None,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    max_new_tokens_limit: int = 4096,
    default_max_tokens: int = 512,
) -> FastAPI:
    """Build the service around ``backend`` (see the module docstring for the endpoints and limits).

    Args:
        backend: any :class:`~georeason.infer.base.Backend`; the app does not close it.
        model_name: the name in ``/health``, ``/v1/models`` and responses (default: the backend's).
        max_concurrency: requests admitted at once (also the largest generation batch by default).
        max_request_bytes: body size limit (bytes or ``"20MB"``).
        queue_timeout: seconds a request over the limit waits for a slot before 503 (0: at once).
        max_batch: largest batch the worker sends to the backend (default ``max_concurrency``).
        batch_window_s: longest wait for admitted requests still decoding their image.
        batch_linger_s: how long a batch that is not full waits for requests still in transit.
        default_protocol: protocol of ``/v1/locate`` when the form names none.
        max_pixels, max_image_pixels: image resize target and decompression-bomb guard.
        max_new_tokens_limit: largest ``max_tokens`` a client may ask for.
        default_max_tokens: ``max_tokens`` when the request has none.
    """
    from georeason.protocols import PROTOCOLS

    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
    if queue_timeout < 0:
        raise ValueError(f"queue_timeout must be >= 0 seconds, got {queue_timeout}")
    limit = parse_size(max_request_bytes)
    if limit < 1:
        raise ValueError(f"max_request_bytes must be positive, got {max_request_bytes}")
    if default_protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {default_protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    name = model_name or backend.model_name or backend.name
    gen_params = inspect.signature(backend.generate).parameters
    supports_logprobs = "top_logprobs" in gen_params
    supports_min_tokens = "min_new_tokens" in gen_params

    # in_flight: admitted, not yet answered; preparing: admitted, not yet handed to the worker
    # (still decoding its image) -- the worker waits for those to fill its batch.
    state: dict[str, Any] = {"in_flight": 0, "preparing": 0, "served": 0, "rejected": 0}
    slots = asyncio.Semaphore(max_concurrency)
    worker = BatchWorker(
        backend,
        max_batch=max_batch or max_concurrency,
        window_s=batch_window_s,
        linger_s=batch_linger_s,
        pending=lambda: state["preparing"],
    )

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        worker.stop()

    app = FastAPI(
        title="georeason",
        summary="Photo geolocation by reasoning: OpenAI-compatible chat completions and /v1/locate.",
        lifespan=lifespan,
    )
    app.state.backend = backend
    app.state.worker = worker
    app.add_middleware(BodySizeLimit, max_bytes=limit)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body",))
            problems.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        first = exc.errors()[0].get("loc", ()) if exc.errors() else ()
        param = ".".join(str(x) for x in first if x != "body") or None
        return _error(422, "invalid request: " + "; ".join(problems), "invalid_request_error", param)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        kinds = {413: "request_too_large", 422: "invalid_request_error", 503: "server_busy"}
        return _error(
            exc.status_code,
            str(exc.detail),
            kinds.get(exc.status_code, "server_error" if exc.status_code >= 500 else "invalid_request_error"),
            headers=getattr(exc, "headers", None),
        )

    class Slot:
        submitted = False

    async def admit() -> Slot:
        """Take a slot, waiting up to queue_timeout; 503 when none frees up."""
        try:
            if queue_timeout == 0:
                if slots.locked():
                    raise TimeoutError
                await slots.acquire()
            else:
                await asyncio.wait_for(slots.acquire(), timeout=queue_timeout)
        except TimeoutError:
            state["rejected"] += 1
            raise HTTPException(
                503,
                f"server busy: {max_concurrency} requests in flight (max_concurrency) and no slot freed "
                f"within {queue_timeout:g} s; retry later",
                headers={"Retry-After": "1"},
            ) from None
        state["in_flight"] += 1
        state["preparing"] += 1
        return Slot()

    def release(slot: Slot) -> None:
        if not slot.submitted:
            state["preparing"] -= 1
        state["in_flight"] -= 1
        state["served"] += 1
        slots.release()

    async def run(slot: Slot, request: InferRequest, settings: dict[str, Any]) -> Response:
        fut = worker.submit(request, **settings)
        # Only after the put: the worker must never see "nothing queued, nothing coming" in between.
        slot.submitted = True
        state["preparing"] -= 1
        try:
            return await asyncio.wrap_future(fut)
        except Exception as e:
            raise HTTPException(500, f"generation failed: {type(e).__name__}: {e}") from e

    def check_response(resp: Response) -> str:
        if resp.text is None:
            kind = str(resp.extra.get("error_type") or (resp.error or "").split(":", 1)[0])
            status = 422 if kind in _INPUT_ERRORS else 500
            raise HTTPException(status, f"generation failed: {resp.error}")
        return resp.text

    # ------------------------------------------------------------------ routes

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "ready": True,
            "model": name,
            "backend": backend.name,
            "in_flight": state["in_flight"],
            "preparing": state["preparing"],
            "max_concurrency": max_concurrency,
            "queue_timeout_s": queue_timeout,
            "served": state["served"],
            "rejected": state["rejected"],
            "batches": worker.batches,
        }

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "georeason"}]}

    def _to_request(body: ChatCompletionRequest) -> InferRequest:
        """OpenAI messages -> an infer Request (image decoded; ImageError -> 422)."""
        image = None
        messages: list[dict[str, Any]] = []
        for k, m in enumerate(body.messages):
            if isinstance(m.content, str):
                messages.append({"role": m.role, "content": [{"type": "text", "text": m.content}]})
                continue
            parts: list[dict[str, Any]] = []
            for j, part in enumerate(m.content):
                if part.type == "text":
                    parts.append({"type": "text", "text": part.text})
                    continue
                assert part.image_url is not None
                if image is not None:
                    raise HTTPException(422, "at most one image per request is supported")
                url = part.image_url.url
                if not url.startswith("data:"):
                    raise HTTPException(
                        422,
                        f"messages.{k}.content.{j}.image_url.url: only data: URLs are supported "
                        "(data:image/png;base64,...); this server does not fetch remote images",
                    )
                try:
                    image = load_image(
                        decode_data_url(url), max_pixels=max_pixels, max_image_pixels=max_image_pixels
                    )
                except ImageError as e:
                    raise HTTPException(422, f"messages.{k}.content.{j}.image_url: {e}") from e
                parts.append({"type": "image"})
            messages.append({"role": m.role, "content": parts})
        return InferRequest(id=uuid.uuid4().hex, image=image, messages=messages)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest) -> dict[str, Any]:
        max_tokens = body.max_completion_tokens or body.max_tokens or default_max_tokens
        if max_tokens > max_new_tokens_limit:
            raise HTTPException(
                422, f"max_tokens: {max_tokens} is above this server's limit of {max_new_tokens_limit}"
            )
        if body.min_tokens > max_tokens:
            raise HTTPException(422, f"min_tokens ({body.min_tokens}) must be <= max_tokens ({max_tokens})")
        if body.model and body.model != name:
            raise HTTPException(422, f"model: this server serves {name!r}, not {body.model!r}")
        want_logprobs = body.logprobs or body.top_logprobs is not None
        if want_logprobs and not supports_logprobs:
            raise HTTPException(422, f"logprobs: backend {backend.name!r} does not return log-probabilities")
        if body.min_tokens and not supports_min_tokens:
            raise HTTPException(422, f"min_tokens: backend {backend.name!r} does not support it")
        slot = await admit()
        try:
            request = await run_in_threadpool(_to_request, body)
            settings: dict[str, Any] = {
                "max_new_tokens": max_tokens,
                "temperature": body.temperature,
                "top_p": body.top_p,
                "seed": body.seed,
            }
            if body.min_tokens:
                settings["min_new_tokens"] = body.min_tokens
            if want_logprobs:
                settings["top_logprobs"] = body.top_logprobs or 0
            resp = await run(slot, request, settings)
        finally:
            release(slot)
        text = check_response(resp)
        finish_reason = resp.extra.get("finish_reason") or "stop"
        if body.stop:
            stops = [body.stop] if isinstance(body.stop, str) else body.stop
            cuts = [text.find(s) for s in stops if s and s in text]
            if cuts:
                text, finish_reason = text[: min(cuts)], "stop"
        prompt_tokens = int(resp.extra.get("prompt_tokens") or 0)
        completion_tokens = int(resp.extra.get("completion_tokens") or 0)
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": finish_reason,
            "logprobs": {"content": resp.extra.get("logprobs", [])} if want_logprobs else None,
        }
        return {
            "id": f"chatcmpl-{request.id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": name,
            "choices": [choice],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    @app.post("/v1/locate")
    async def locate_endpoint(
        image: Annotated[UploadFile, File(description="the photo")],
        protocol: Annotated[str, Form()] = default_protocol,
        max_tokens: Annotated[int, Form(ge=1)] = default_max_tokens,
        temperature: Annotated[float, Form(ge=0.0, le=2.0)] = 0.0,
    ) -> dict[str, Any]:
        from georeason.infer.locate import finish, prepare

        if protocol not in PROTOCOLS:
            raise HTTPException(
                422, f"protocol: unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}"
            )
        if max_tokens > max_new_tokens_limit:
            raise HTTPException(
                422, f"max_tokens: {max_tokens} is above this server's limit of {max_new_tokens_limit}"
            )
        data = await image.read()
        slot = await admit()
        try:
            result, request = await run_in_threadpool(
                prepare,
                data,
                protocol,
                max_pixels=max_pixels,
                max_image_pixels=max_image_pixels,
                name=image.filename or "upload",
            )
            if request is None:
                raise HTTPException(422, f"image: {result.error}")
            resp = await run(
                slot,
                request,
                {"max_new_tokens": max_tokens, "temperature": temperature, "top_p": 1.0, "seed": None},
            )
        finally:
            release(slot)
        if resp.text is None:
            check_response(resp)
        result = await run_in_threadpool(finish, result, resp)
        return result.to_dict()

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        options = "".join(
            f'<option value="{p}"{" selected" if p == default_protocol else ""}>{p}</option>'
            for p in PROTOCOLS
        )
        return _PAGE.replace("{model}", name).replace("{options}", options)

    return app


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>georeason</title>
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}
pre{background:#f4f4f4;padding:1rem;white-space:pre-wrap}</style></head>
<body><h1>georeason</h1><p>Model: <code>{model}</code></p>
<form id="f"><input type="file" name="image" accept="image/*" required>
<select name="protocol">{options}</select> <button>Locate</button></form>
<pre id="out">Choose a photo.</pre>
<script>
document.getElementById('f').onsubmit = async (e) => {
  e.preventDefault();
  const out = document.getElementById('out');
  out.textContent = 'Locating...';
  const r = await fetch('/v1/locate', {method: 'POST', body: new FormData(e.target)});
  out.textContent = JSON.stringify(await r.json(), null, 2);
};
</script></body></html>
"""
