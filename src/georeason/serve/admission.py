"""Admission control: how many requests the server takes at once, and how many images it decodes.

At most ``max_concurrency`` requests hold a :class:`Slot`; one over the limit waits
up to ``queue_timeout`` seconds for a slot to free and then gets **503** with
``Retry-After`` (``queue_timeout=0``: 503 at once). Each slot carries the request's
deadline (``generation_timeout`` from admission). Image decodes run in threads, at
most ``max_decodes`` at once, because each may hold ``max_image_pixels`` x 4 bytes.

The counters (``in_flight``, ``preparing``, ``served``, ...) are what ``/health``
reports; ``preparing`` (admitted, not yet handed to the generation worker) also tells
the :class:`~georeason.serve.batching.BatchWorker` how many requests may still join
its batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool

T = TypeVar("T")


def busy(message: str) -> HTTPException:
    """A 503 that tells the client to retry in a second."""
    return HTTPException(503, message, headers={"Retry-After": "1"})


class Slot:
    """One admitted request: its deadline, and whether the worker has it yet."""

    submitted = False

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline


class Admission:
    """The slots, the decode bound and the counters of one app (one event loop)."""

    def __init__(
        self, *, max_concurrency: int, queue_timeout: float, generation_timeout: float, max_decodes: int
    ) -> None:
        self.max_concurrency = max_concurrency
        self.queue_timeout = queue_timeout
        self.generation_timeout = generation_timeout
        self.max_decodes = max_decodes
        # in_flight: admitted, not yet answered; preparing: admitted, not yet handed to the worker
        # (still decoding its image) -- the worker waits for those to fill its batch.
        self.counters: dict[str, int] = {
            "in_flight": 0,
            "preparing": 0,
            "served": 0,
            "rejected": 0,
            "abandoned": 0,
            "timed_out": 0,
            "decoding": 0,
            "decoding_peak": 0,
        }
        self._slots = asyncio.Semaphore(max_concurrency)
        self._decodes = asyncio.Semaphore(max_decodes)

    def preparing(self) -> int:
        return self.counters["preparing"]

    async def admit(self) -> Slot:
        """Take a slot, waiting up to queue_timeout; 503 when none frees up."""
        try:
            if self.queue_timeout == 0:
                if self._slots.locked():
                    raise TimeoutError
                await self._slots.acquire()
            else:
                await asyncio.wait_for(self._slots.acquire(), timeout=self.queue_timeout)
        except TimeoutError:
            self.counters["rejected"] += 1
            raise busy(
                f"server busy: {self.max_concurrency} requests in flight (max_concurrency) and no slot "
                f"freed within {self.queue_timeout:g} s; retry later"
            ) from None
        self.counters["in_flight"] += 1
        self.counters["preparing"] += 1
        return Slot(time.monotonic() + self.generation_timeout)

    def handed_over(self, slot: Slot) -> None:
        """The worker has the slot's request: it no longer counts as preparing."""
        slot.submitted = True
        self.counters["preparing"] -= 1

    def release(self, slot: Slot) -> None:
        if not slot.submitted:
            self.counters["preparing"] -= 1
        self.counters["in_flight"] -= 1
        self.counters["served"] += 1
        self._slots.release()

    async def decode(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run an image decode in a thread, at most ``max_decodes`` at once. Shielded: a handler
        cancelled mid-decode (client gone) leaves the decode holding its turn until it ends, so
        disconnecting clients cannot pile up decodes beyond the bound."""
        counters = self.counters

        async def bounded() -> T:
            async with self._decodes:
                counters["decoding"] += 1
                counters["decoding_peak"] = max(counters["decoding_peak"], counters["decoding"])
                try:
                    return await run_in_threadpool(fn, *args, **kwargs)
                finally:
                    counters["decoding"] -= 1

        inner = asyncio.ensure_future(bounded())
        # Read the outcome even when nobody awaits it any more (no "exception never retrieved").
        inner.add_done_callback(lambda t: t.cancelled() or t.exception())
        return await asyncio.shield(inner)
