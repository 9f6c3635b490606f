"""The HTTP service: an OpenAI-compatible subset, ``/v1/locate`` and ``/health``.

``create_app(backend)`` builds a FastAPI app around any :mod:`georeason.infer`
backend (``georeason serve`` runs it under uvicorn; tests start a real process).

Endpoints
---------
- ``POST /v1/chat/completions``: the subset the ``openai`` backend (and GLOBE's
  judge) uses — messages with text and ``image_url`` parts holding ``data:``
  URLs (at most one image per request), ``max_tokens`` /
  ``max_completion_tokens``, ``temperature``, ``top_p``, ``seed``, ``n`` (<= 32 samples,
  one generate call),
  ``stop``, ``logprobs`` / ``top_logprobs`` (<= 20), and vLLM's ``min_tokens``.
  Unknown fields are ignored, as OpenAI-compatible servers do; ``stream=true``
  and remote image URLs are refused with 422.
- ``POST /v1/locate``: multipart form with ``image`` (the file) and optional
  ``protocol``, ``max_tokens``, ``temperature``, ``samples`` and ``aggregate``
  (self-consistency, :mod:`georeason.consensus`); answers the reasoning chain,
  the parsed answer, the gazetteer place, coordinates, the samples' agreement and,
  when the photo has EXIF GPS, the error in km (see :class:`georeason.infer.locate.LocateResult`).
- ``GET /v1/models``, ``GET /health`` (model name, ready, in-flight count), ``GET /`` (an upload page).

Limits
------
Every error reply, whatever the status, is one shape: the OpenAI error object
``{"error": {"message", "type", "param", "code"}}`` (``code`` is the HTTP status).

- Request bodies over ``max_request_bytes`` -> **413** (checked on the
  ``Content-Length`` header before reading, and while reading chunked bodies).
- Malformed requests (bad JSON, a body that is not JSON, a field out of range,
  invalid base64) -> **422** whose message names the field; an unreadable
  image, too (the :class:`~georeason.images.ImageError` reason).
- A prompt over ``max_prompt_tokens`` or, with ``max_tokens``, over the model's
  context -> **422** before it reaches the model (the count stops at the limit,
  so a 1 MB prompt costs milliseconds; backends with a tokenizer: ``hf``).
- Images: the pixels to decode are checked from the header before decoding
  (``max_image_pixels``, by default 4x what the model's processor keeps, at least
  16 Mpx; JPEGs decode at a reduced DCT scale first, so large photos pass), and
  at most ``max_decodes`` images decode at once.
- At most ``max_concurrency`` requests are admitted at once; a request over the
  limit **waits up to** ``queue_timeout`` seconds for a slot and then gets
  **503** with ``Retry-After`` (``queue_timeout=0``: 503 at once). The
  ``openai`` backend retries 503 with backoff. A client that disconnects
  frees its slot at once, and its generation stops at the next step.
- An admitted request unanswered after ``generation_timeout`` seconds gets
  **504**, and its row of the batch stops generating (``hf``: a transformers
  stopping criterion; other backends finish the batch, the answer is dropped).
- Generation runs in one worker thread (:class:`~georeason.serve.batching.BatchWorker`)
  that batches the admitted requests, so the event loop stays responsive
  (``/health`` answers while the model works).
- A backend failure on the request's input (e.g. an image shape the processor
  rejects) -> 422; any other generation failure -> 500.
- On SIGTERM/SIGINT (:func:`georeason.serve.server.run`) generation stops at the
  next step, in-flight requests get **503** ``server shutting down`` and the
  process exits within ``shutdown_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import time
import uuid
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Annotated, Any, Literal, TypeVar

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from georeason.images import DEFAULT_MAX_IMAGE_PIXELS, ImageError, decode_data_url, load_image
from georeason.infer.base import Backend, Response
from georeason.infer.base import Request as InferRequest
from georeason.serve.batching import BatchWorker, Expired, ShuttingDown
from georeason.serve.limits import PromptCounter, model_max_pixels

logger = logging.getLogger("georeason.serve")

MAX_TOP_LOGPROBS = 20
MAX_SAMPLES = 32  # n / samples per request: self-consistency rarely gains past 16
#: the seed range every backend accepts (torch.manual_seed, vLLM): a signed 64-bit integer
SEED_RANGE = (-(2**63), 2**63 - 1)
#: default cap on prompt tokens (text + image), lowered to the model's context when that is smaller
DEFAULT_MAX_PROMPT_TOKENS = 32_768
#: smallest default image guard: a 16 Mpx photo decodes whatever the model's budget
MIN_AUTO_IMAGE_PIXELS = 16_000_000
T = TypeVar("T")
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
    temperature: float = Field(default=1.0, ge=0.0, le=2.0, allow_inf_nan=False)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, allow_inf_nan=False)
    seed: int | None = Field(default=None, ge=SEED_RANGE[0], le=SEED_RANGE[1])
    n: int = Field(default=1, ge=1, le=MAX_SAMPLES)
    stop: str | list[str] | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)
    stream: bool = False

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


class ApiError(HTTPException):
    """An HTTP error that names the request field at fault (the error object's ``param``)."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(status, message)
        self.param = param


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
    max_image_pixels: int | None = None,
    max_new_tokens_limit: int = 4096,
    default_max_tokens: int = 512,
    max_prompt_tokens: int | None = None,
    generation_timeout: float = 300.0,
    max_decodes: int = 2,
    shutdown_timeout: float = 5.0,
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
        max_pixels: resize images to at most this many pixels (default: leave it to the model's processor).
        max_image_pixels: decompression-bomb guard on the pixels an image decodes to (default:
            4x the model's own pixel budget, at least 16 Mpx).
        max_new_tokens_limit: largest ``max_tokens`` a client may ask for.
        default_max_tokens: ``max_tokens`` when the request has none (lowered to fit the context).
        max_prompt_tokens: largest prompt, text and image tokens (default 32,768, and never more
            than the model's context).
        generation_timeout: seconds an admitted request may take (image decode, waiting for the
            worker, generating) before 504; its generation stops too.
        max_decodes: images decoded at once (each may take up to ``max_image_pixels`` x 4 bytes).
        shutdown_timeout: seconds the worker thread gets to stop when the app shuts down.
    """
    from georeason.protocols import PROTOCOLS

    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
    if queue_timeout < 0:
        raise ValueError(f"queue_timeout must be >= 0 seconds, got {queue_timeout}")
    if not generation_timeout > 0:
        raise ValueError(f"generation_timeout must be > 0 seconds, got {generation_timeout}")
    if max_decodes < 1:
        raise ValueError(f"max_decodes must be >= 1, got {max_decodes}")
    if max_prompt_tokens is not None and max_prompt_tokens < 1:
        raise ValueError(f"max_prompt_tokens must be >= 1, got {max_prompt_tokens}")
    limit = parse_size(max_request_bytes)
    if limit < 1:
        raise ValueError(f"max_request_bytes must be positive, got {max_request_bytes}")
    if default_protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {default_protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    name = model_name or backend.model_name or backend.name
    gen_params = inspect.signature(backend.generate).parameters
    supports_logprobs = "top_logprobs" in gen_params
    supports_min_tokens = "min_new_tokens" in gen_params

    # What the model can use: its context bounds the prompt, its pixel budget the image decode.
    counter = PromptCounter(backend)
    context = counter.context
    prompt_cap = max_prompt_tokens or DEFAULT_MAX_PROMPT_TOKENS
    if context is not None:
        prompt_cap = min(prompt_cap, context - 1)  # at least one position left to generate
    model_pixels = model_max_pixels(backend)
    if max_image_pixels is None:
        budget = min(p for p in (max_pixels, model_pixels, DEFAULT_MAX_IMAGE_PIXELS) if p is not None)
        max_image_pixels = min(DEFAULT_MAX_IMAGE_PIXELS, max(4 * budget, MIN_AUTO_IMAGE_PIXELS))
    if max_image_pixels < 1:
        raise ValueError(f"max_image_pixels must be >= 1, got {max_image_pixels}")
    image_limits: dict[str, Any] = {
        "max_pixels": max_pixels,
        "max_image_pixels": max_image_pixels,
        "draft_pixels": model_pixels,
    }

    # in_flight: admitted, not yet answered; preparing: admitted, not yet handed to the worker
    # (still decoding its image) -- the worker waits for those to fill its batch.
    state: dict[str, Any] = {
        "in_flight": 0,
        "preparing": 0,
        "served": 0,
        "rejected": 0,
        "abandoned": 0,
        "timed_out": 0,
        "decoding": 0,
        "decoding_peak": 0,
    }
    slots = asyncio.Semaphore(max_concurrency)
    decodes = asyncio.Semaphore(max_decodes)
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
        worker.stop(timeout=shutdown_timeout)

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
        problems: list[str] = []
        params: list[str | None] = []
        for err in exc.errors():
            loc = [str(x) for x in err.get("loc", ()) if x != "body"]
            if err.get("type") == "json_invalid":
                # loc holds the character offset of the syntax error, not a field
                where = f" at character {loc[-1]}" if loc else ""
                reason = (err.get("ctx") or {}).get("error") or err.get("msg")
                problems.append(f"body is not valid JSON{where}: {reason}")
                params.append(None)
                continue
            problems.append(f"{'.'.join(loc)}: {err.get('msg')}" if loc else str(err.get("msg")))
            params.append(".".join(loc) or None)
        return _error(
            422,
            "invalid request: " + "; ".join(problems),
            "invalid_request_error",
            params[0] if params else None,
        )

    @app.exception_handler(StarletteHTTPException)  # FastAPI's HTTPException and Starlette's 404/405
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kinds = {
            404: "not_found_error",
            405: "invalid_request_error",
            413: "request_too_large",
            422: "invalid_request_error",
            503: "server_busy",
            504: "timeout",
        }
        status = exc.status_code
        message = str(exc.detail)
        if status == 400:
            # Starlette / FastAPI on a body they cannot parse (bad multipart, no boundary): a
            # malformed request like any other, so the status this server uses for those.
            status, message = 422, f"invalid request: the body could not be parsed ({message})"
        return _error(
            status,
            message,
            kinds.get(status, "server_error" if status >= 500 else "invalid_request_error"),
            getattr(exc, "param", None),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s", request.url.path)
        return _error(500, f"internal error: {type(exc).__name__}", "server_error")

    class Slot:
        submitted = False

        def __init__(self) -> None:
            self.deadline = time.monotonic() + generation_timeout

    async def admit() -> Slot:
        """Take a slot, waiting up to queue_timeout; 503 when none frees up."""
        if worker.stopping:
            raise HTTPException(503, "server shutting down; retry later", headers={"Retry-After": "1"})
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

    async def decode(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run an image decode in a thread, at most ``max_decodes`` at once. Shielded: a handler
        cancelled mid-decode (client gone) leaves the decode holding its turn until it ends, so
        disconnecting clients cannot pile up decodes beyond the bound."""

        async def bounded() -> T:
            async with decodes:
                state["decoding"] += 1
                state["decoding_peak"] = max(state["decoding_peak"], state["decoding"])
                try:
                    return await run_in_threadpool(fn, *args, **kwargs)
                finally:
                    state["decoding"] -= 1

        inner = asyncio.ensure_future(bounded())
        # Read the outcome even when nobody awaits it any more (no "exception never retrieved").
        inner.add_done_callback(lambda t: t.cancelled() or t.exception())
        return await asyncio.shield(inner)

    async def run(slot: Slot, request: InferRequest, settings: dict[str, Any]) -> Response:
        if time.monotonic() >= slot.deadline:
            state["timed_out"] += 1
            raise HTTPException(504, f"request took longer than generation_timeout={generation_timeout:g} s")
        try:
            job = worker.submit(request, deadline=slot.deadline, **settings)
        except ShuttingDown:
            raise HTTPException(
                503, "server shutting down; retry later", headers={"Retry-After": "1"}
            ) from None
        # Only after the put: the worker must never see "nothing queued, nothing coming" in between.
        slot.submitted = True
        state["preparing"] -= 1
        try:
            return await asyncio.wait_for(asyncio.wrap_future(job.future), slot.deadline - time.monotonic())
        except asyncio.CancelledError:  # the client went away, or the server is stopping
            job.cancel()
            raise
        except ShuttingDown:
            raise HTTPException(
                503, "server shutting down; retry later", headers={"Retry-After": "1"}
            ) from None
        except (TimeoutError, Expired):
            job.cancel()
            state["timed_out"] += 1
            raise HTTPException(
                504,
                f"generation did not finish within generation_timeout={generation_timeout:g} s "
                "(lower max_tokens, or retry when the server is less busy)",
            ) from None
        except Exception as e:
            raise HTTPException(500, f"generation failed: {type(e).__name__}: {e}") from e

    async def until_disconnected(http: Request, work: Coroutine[Any, Any, T]) -> T:
        """Run a handler's work, cancelling it when the client disconnects (its ``finally``
        blocks then free the slot and stop its generation)."""
        task = asyncio.ensure_future(work)

        async def gone() -> None:
            while (await http.receive())["type"] != "http.disconnect":
                pass

        watcher = asyncio.ensure_future(gone())
        try:
            await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # uvicorn cancels us at the end of a graceful shutdown
            task.cancel()
            watcher.cancel()
            raise
        if task.done():
            watcher.cancel()
            return task.result()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        state["abandoned"] += 1
        raise HTTPException(499, "client closed the connection")  # nobody reads it

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
            "status": "stopping" if worker.stopping else "ok",
            "ready": not worker.stopping,
            "model": name,
            "backend": backend.name,
            "in_flight": state["in_flight"],
            "preparing": state["preparing"],
            "max_concurrency": max_concurrency,
            "queue_timeout_s": queue_timeout,
            "generation_timeout_s": generation_timeout,
            "max_prompt_tokens": prompt_cap if counter.available else None,
            "context": context,
            "max_image_pixels": max_image_pixels,
            "decoding": state["decoding"],
            "decoding_peak": state["decoding_peak"],
            "max_decodes": max_decodes,
            "served": state["served"],
            "rejected": state["rejected"],
            "abandoned": state["abandoned"],
            "timed_out": state["timed_out"],
            "batches": worker.batches,
        }

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "georeason"}]}

    def _messages(body: ChatCompletionRequest) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
        """OpenAI messages -> the backend's messages, and the one image's (data URL, field path)."""
        image: tuple[str, str] | None = None
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
                    raise ApiError(422, "at most one image per request is supported", "messages")
                url = part.image_url.url
                if not url.startswith("data:"):
                    raise ApiError(
                        422,
                        f"messages.{k}.content.{j}.image_url.url: only data: URLs are supported "
                        "(data:image/png;base64,...); this server does not fetch remote images",
                        f"messages.{k}.content.{j}.image_url.url",
                    )
                image = (url, f"messages.{k}.content.{j}.image_url")
                parts.append({"type": "image"})
            messages.append({"role": m.role, "content": parts})
        return messages, image

    def _load(url: str, where: str) -> Any:
        try:
            return load_image(decode_data_url(url), **image_limits)
        except ImageError as e:
            raise ApiError(422, f"{where}: {e}", where) from e

    def check_prompt(prompt: int, max_tokens: int, explicit: bool) -> None:
        """422 when the prompt (so far ``prompt`` tokens) cannot run."""
        if prompt > prompt_cap:
            ctx = f"; the model's context is {context:,}" if context is not None else ""
            raise ApiError(
                422,
                f"messages: the prompt has more than {prompt_cap:,} tokens "
                f"(max_prompt_tokens={prompt_cap:,}{ctx}); shorten the messages",
                "messages",
            )
        if context is not None and explicit and prompt + max_tokens > context:
            raise ApiError(
                422,
                f"max_tokens: the prompt ({prompt:,} tokens) plus max_tokens ({max_tokens:,}) exceeds the "
                f"model's context of {context:,} tokens; lower max_tokens or shorten the messages",
                "max_tokens",
            )

    async def chat(body: ChatCompletionRequest) -> dict[str, Any]:
        explicit = (body.max_completion_tokens or body.max_tokens) is not None
        max_tokens = body.max_completion_tokens or body.max_tokens or default_max_tokens
        if max_tokens > max_new_tokens_limit:
            raise ApiError(
                422,
                f"max_tokens: {max_tokens} is above this server's limit of {max_new_tokens_limit}",
                "max_tokens",
            )
        if body.min_tokens > max_tokens:
            raise ApiError(
                422, f"min_tokens ({body.min_tokens}) must be <= max_tokens ({max_tokens})", "min_tokens"
            )
        if body.model and body.model != name:
            raise ApiError(422, f"model: this server serves {name!r}, not {body.model!r}", "model")
        want_logprobs = body.logprobs or body.top_logprobs is not None
        if body.n > 1 and body.temperature == 0:
            raise ApiError(422, f"n: {body.n} samples need a temperature > 0 (greedy gives one answer)", "n")
        if body.n > 1 and want_logprobs:
            raise ApiError(422, "logprobs: not supported with n > 1", "logprobs")
        if want_logprobs and not supports_logprobs:
            raise ApiError(
                422, f"logprobs: backend {backend.name!r} does not return log-probabilities", "logprobs"
            )
        if body.min_tokens and not supports_min_tokens:
            raise ApiError(422, f"min_tokens: backend {backend.name!r} does not support it", "min_tokens")
        messages, image_url = _messages(body)
        slot = await admit()
        try:
            # Count the text first: a huge prompt is refused before its image is decoded, and the
            # count stops at the limit (the tokenizer never sees the whole of a 1 MB prompt).
            prompt = 0
            if counter.available:
                prompt = await run_in_threadpool(counter.text_tokens, messages, prompt_cap)
                check_prompt(prompt, max_tokens, explicit)
            image = await decode(_load, *image_url) if image_url is not None else None
            if counter.available and image is not None:
                prompt += counter.image_tokens(image.size)
                check_prompt(prompt, max_tokens, explicit)
            if context is not None and counter.available and not explicit:
                max_tokens = max(1, min(max_tokens, context - prompt))
            request = InferRequest(id=uuid.uuid4().hex, image=image, messages=messages)
            settings: dict[str, Any] = {
                "max_new_tokens": max_tokens,
                "temperature": body.temperature,
                "top_p": body.top_p,
                "seed": body.seed,
            }
            if body.min_tokens:
                settings["min_new_tokens"] = min(body.min_tokens, max_tokens)
            if want_logprobs:
                settings["top_logprobs"] = body.top_logprobs or 0
            if body.n > 1:
                settings["n"] = body.n  # one generate call: the prompt is encoded once for the n
            resp = await run(slot, request, settings)
        finally:
            release(slot)
        check_response(resp)
        choices: list[dict[str, Any]] = []
        for index, text in enumerate(resp.texts):
            finish_reason = resp.extra.get("finish_reason") or "stop"
            if body.stop:
                stops = [body.stop] if isinstance(body.stop, str) else body.stop
                cuts = [text.find(s) for s in stops if s and s in text]
                if cuts:
                    text, finish_reason = text[: min(cuts)], "stop"
            choices.append(
                {
                    "index": index,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish_reason,
                    "logprobs": {"content": resp.extra.get("logprobs", [])} if want_logprobs else None,
                }
            )
        prompt_tokens = int(resp.extra.get("prompt_tokens") or 0)
        completion_tokens = int(resp.extra.get("completion_tokens") or 0)
        return {
            "id": f"chatcmpl-{request.id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": name,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, http: Request) -> dict[str, Any]:
        return await until_disconnected(http, chat(body))

    async def locate(
        data: bytes,
        filename: str,
        protocol: str,
        max_tokens: int,
        temperature: float,
        samples: int = 1,
        aggregate: str = "medoid",
    ) -> dict[str, Any]:
        from georeason.infer.locate import finish, prepare

        slot = await admit()
        try:
            # prepare() takes no draft target: resize to the model's budget, which drafts JPEGs too.
            result, request = await decode(
                prepare,
                data,
                protocol,
                name=filename,
                max_pixels=max_pixels or model_pixels,
                max_image_pixels=max_image_pixels,
            )
            if request is None:
                raise ApiError(422, f"image: {result.error}", "image")
            settings: dict[str, Any] = {
                "max_new_tokens": max_tokens,
                "temperature": temperature,
                "top_p": 1.0,
                "seed": None,
            }
            if samples > 1:
                settings["n"] = samples
            resp = await run(slot, request, settings)
        finally:
            release(slot)
        if resp.text is None:
            check_response(resp)
        result = await run_in_threadpool(partial(finish, aggregate=aggregate), result, resp)
        return result.to_dict()

    @app.post("/v1/locate")
    async def locate_endpoint(
        http: Request,
        image: Annotated[UploadFile, File(description="the photo")],
        protocol: Annotated[str, Form()] = default_protocol,
        max_tokens: Annotated[int, Form(ge=1)] = default_max_tokens,
        temperature: Annotated[float, Form(ge=0.0, le=2.0, allow_inf_nan=False)] = 0.0,
        samples: Annotated[int, Form(ge=1, le=MAX_SAMPLES)] = 1,
        aggregate: Annotated[str, Form()] = "medoid",
    ) -> dict[str, Any]:
        from georeason.consensus import AGGREGATORS

        if aggregate not in AGGREGATORS:
            raise ApiError(
                422, f"aggregate: unknown {aggregate!r}; choose one of {', '.join(AGGREGATORS)}", "aggregate"
            )
        if samples > 1 and temperature == 0:
            raise ApiError(422, f"samples: {samples} samples need a temperature > 0", "samples")
        if protocol not in PROTOCOLS:
            raise ApiError(
                422,
                f"protocol: unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}",
                "protocol",
            )
        if max_tokens > max_new_tokens_limit:
            raise ApiError(
                422,
                f"max_tokens: {max_tokens} is above this server's limit of {max_new_tokens_limit}",
                "max_tokens",
            )
        data = await image.read()
        return await until_disconnected(
            http,
            locate(data, image.filename or "upload", protocol, max_tokens, temperature, samples, aggregate),
        )

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
