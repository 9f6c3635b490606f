"""What every route of one app shares: the backend, the generation worker, the limits.

:class:`ServeState` is built once by :func:`georeason.serve.app.create_app` (which
checks the options) and kept on ``app.state.serve``; a route reaches it with
``state: Annotated[ServeState, Depends(get_state)]``. Its methods are a request's
passage through the server: :meth:`ServeState.slot` (admission, see
:mod:`georeason.serve.admission`), :meth:`ServeState.generate` (the batching worker,
with the request's deadline) and :meth:`ServeState.until_disconnected` (a client that
goes away frees its slot and stops its generation).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import HTTPException, Request

from georeason.images import DEFAULT_MAX_IMAGE_PIXELS
from georeason.infer.base import Backend, Response
from georeason.infer.base import Request as InferRequest
from georeason.serve.admission import Admission, Slot, busy
from georeason.serve.batching import BatchWorker, Expired, ShuttingDown
from georeason.serve.limits import PromptCounter, model_max_pixels

T = TypeVar("T")

MAX_TOP_LOGPROBS = 20
MAX_SAMPLES = 32  # n / samples per request: self-consistency rarely gains past 16
#: the seed range every backend accepts (torch.manual_seed, vLLM): a signed 64-bit integer
SEED_RANGE = (-(2**63), 2**63 - 1)
#: default cap on prompt tokens (text + image), lowered to the model's context when that is smaller
DEFAULT_MAX_PROMPT_TOKENS = 32_768
#: smallest default image guard: a 16 Mpx photo decodes whatever the model's budget
MIN_AUTO_IMAGE_PIXELS = 16_000_000
# Backend errors of these types come from the request's own input (processor checks).
_INPUT_ERRORS = ("ValueError", "TypeError", "ImageError")


@dataclass
class ServeState:
    """One app's backend, worker, admission and limits (see ``create_app`` for each option)."""

    backend: Backend
    name: str
    worker: BatchWorker
    admission: Admission
    counter: PromptCounter
    default_protocol: str
    max_pixels: int | None
    model_pixels: int | None
    max_image_pixels: int
    prompt_cap: int
    max_new_tokens_limit: int
    default_max_tokens: int
    supports_logprobs: bool
    supports_min_tokens: bool
    image_limits: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        backend: Backend,
        *,
        model_name: str | None,
        max_concurrency: int,
        queue_timeout: float,
        max_batch: int | None,
        batch_window_s: float,
        batch_linger_s: float,
        default_protocol: str,
        max_pixels: int | None,
        max_image_pixels: int | None,
        max_new_tokens_limit: int,
        default_max_tokens: int,
        max_prompt_tokens: int | None,
        generation_timeout: float,
        max_decodes: int,
    ) -> ServeState:
        """Check the options and derive the model's limits (ValueError names a bad option)."""
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
        if default_protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {default_protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        gen_params = inspect.signature(backend.generate).parameters

        # What the model can use: its context bounds the prompt, its pixel budget the image decode.
        counter = PromptCounter(backend)
        prompt_cap = max_prompt_tokens or DEFAULT_MAX_PROMPT_TOKENS
        if counter.context is not None:
            prompt_cap = min(prompt_cap, counter.context - 1)  # at least one position left to generate
        model_pixels = model_max_pixels(backend)
        if max_image_pixels is None:
            budget = min(p for p in (max_pixels, model_pixels, DEFAULT_MAX_IMAGE_PIXELS) if p is not None)
            max_image_pixels = min(DEFAULT_MAX_IMAGE_PIXELS, max(4 * budget, MIN_AUTO_IMAGE_PIXELS))
        if max_image_pixels < 1:
            raise ValueError(f"max_image_pixels must be >= 1, got {max_image_pixels}")

        admission = Admission(
            max_concurrency=max_concurrency,
            queue_timeout=queue_timeout,
            generation_timeout=generation_timeout,
            max_decodes=max_decodes,
        )
        worker = BatchWorker(
            backend,
            max_batch=max_batch or max_concurrency,
            window_s=batch_window_s,
            linger_s=batch_linger_s,
            pending=admission.preparing,
        )
        return cls(
            backend=backend,
            name=model_name or backend.model_name or backend.name,
            worker=worker,
            admission=admission,
            counter=counter,
            default_protocol=default_protocol,
            max_pixels=max_pixels,
            model_pixels=model_pixels,
            max_image_pixels=max_image_pixels,
            prompt_cap=prompt_cap,
            max_new_tokens_limit=max_new_tokens_limit,
            default_max_tokens=default_max_tokens,
            supports_logprobs="top_logprobs" in gen_params,
            supports_min_tokens="min_new_tokens" in gen_params,
            image_limits={
                "max_pixels": max_pixels,
                "max_image_pixels": max_image_pixels,
                "draft_pixels": model_pixels,
            },
        )

    @property
    def context(self) -> int | None:
        return self.counter.context

    @property
    def generation_timeout(self) -> float:
        return self.admission.generation_timeout

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        """Admission for the body of a ``with``: 503 while shutting down or when no slot frees."""
        if self.worker.stopping:
            raise busy("server shutting down; retry later")
        slot = await self.admission.admit()
        try:
            yield slot
        finally:
            self.admission.release(slot)

    async def generate(self, slot: Slot, request: InferRequest, settings: dict[str, Any]) -> Response:
        """Hand ``request`` to the batching worker and await its answer within the slot's deadline."""
        counters = self.admission.counters
        timeout = self.generation_timeout
        if time.monotonic() >= slot.deadline:
            counters["timed_out"] += 1
            raise HTTPException(504, f"request took longer than generation_timeout={timeout:g} s")
        try:
            job = self.worker.submit(request, deadline=slot.deadline, **settings)
        except ShuttingDown:
            raise busy("server shutting down; retry later") from None
        # Only after the put: the worker must never see "nothing queued, nothing coming" in between.
        self.admission.handed_over(slot)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(job.future), slot.deadline - time.monotonic())
        except asyncio.CancelledError:  # the client went away, or the server is stopping
            job.cancel()
            raise
        except ShuttingDown:
            raise busy("server shutting down; retry later") from None
        except (TimeoutError, Expired):
            job.cancel()
            counters["timed_out"] += 1
            raise HTTPException(
                504,
                f"generation did not finish within generation_timeout={timeout:g} s "
                "(lower max_tokens, or retry when the server is less busy)",
            ) from None
        except Exception as e:
            raise HTTPException(500, f"generation failed: {type(e).__name__}: {e}") from e

    async def until_disconnected(self, http: Request, work: Coroutine[Any, Any, T]) -> T:
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
        self.admission.counters["abandoned"] += 1
        raise HTTPException(499, "client closed the connection")  # nobody reads it


def check_response(resp: Response) -> str:
    """The response's text; 422 when the backend failed on the request's input, else 500."""
    if resp.text is None:
        kind = str(resp.extra.get("error_type") or (resp.error or "").split(":", 1)[0])
        status = 422 if kind in _INPUT_ERRORS else 500
        raise HTTPException(status, f"generation failed: {resp.error}")
    return resp.text


def get_state(request: Request) -> ServeState:
    """FastAPI dependency: the app's :class:`ServeState`."""
    return request.app.state.serve  # type: ignore[no-any-return]
