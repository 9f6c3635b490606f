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
- ``GET /v1/models``, ``GET /health`` (model name, ready, in-flight count).
- ``GET /``: the locate page (drop a photo, read the reasoning, see the pin on a world
  map); its assets under ``/static/`` and the map's outlines at ``/map/outlines.json``
  (:mod:`georeason.serve.pages`), nothing fetched from outside.

Where each piece lives: the OpenAI subset in :mod:`georeason.serve.openai_api`,
``/v1/locate`` and ``/health`` in :mod:`georeason.serve.locate_api`, the page in
:mod:`georeason.serve.pages` (each an ``APIRouter`` whose routes reach the app's
:class:`~georeason.serve.state.ServeState` through ``Depends``), admission control in
:mod:`georeason.serve.admission`, the body-size limit in :mod:`georeason.serve.limits`,
the error shape in :mod:`georeason.serve.errors`.

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

from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from georeason.infer.base import Backend
from georeason.serve import locate_api, openai_api, pages
from georeason.serve.errors import ApiError, install_error_handlers
from georeason.serve.limits import BodySizeLimit, parse_size
from georeason.serve.state import ServeState

__all__ = ["ApiError", "create_app", "parse_size"]


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
    limit = parse_size(max_request_bytes)
    if limit < 1:
        raise ValueError(f"max_request_bytes must be positive, got {max_request_bytes}")
    state = ServeState.build(
        backend,
        model_name=model_name,
        max_concurrency=max_concurrency,
        queue_timeout=queue_timeout,
        max_batch=max_batch,
        batch_window_s=batch_window_s,
        batch_linger_s=batch_linger_s,
        default_protocol=default_protocol,
        max_pixels=max_pixels,
        max_image_pixels=max_image_pixels,
        max_new_tokens_limit=max_new_tokens_limit,
        default_max_tokens=default_max_tokens,
        max_prompt_tokens=max_prompt_tokens,
        generation_timeout=generation_timeout,
        max_decodes=max_decodes,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        state.worker.stop(timeout=shutdown_timeout)

    app = FastAPI(
        title="georeason",
        summary="Photo geolocation by reasoning: OpenAI-compatible chat completions and /v1/locate.",
        lifespan=lifespan,
    )
    app.state.serve = state
    app.state.backend = backend
    app.state.worker = state.worker
    app.add_middleware(BodySizeLimit, max_bytes=limit)
    install_error_handlers(app)
    app.include_router(locate_api.router)
    app.include_router(openai_api.router)
    app.include_router(pages.router)
    return app
