"""One generation thread that batches concurrent HTTP requests for the backend.

The event loop never runs the model: handlers submit a request here and await
a future. The worker thread takes the first waiting request, gathers the others
that are already admitted (up to ``max_batch``; it waits at most ``window_s``
for requests that were admitted but are still decoding their image, and
lingers ``linger_s`` for requests still in transit), groups
them by sampling settings and calls ``backend.generate`` once per group.

Why batch in the server: an ``hf`` backend decodes a batch of 8 nearly as fast
as one request (see ``benchmarks/bench_backends.py``), so clients at
concurrency 8 get ~8 answers for the price of one, and a single thread also
keeps the model from being driven by several threads at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from georeason.infer.base import Backend, Request, Response

logger = logging.getLogger("georeason.serve")


@dataclass
class _Job:
    request: Request
    settings: dict[str, Any]
    future: Future[Response]

    def key(self) -> tuple[Any, ...]:
        return tuple(sorted(self.settings.items()))


class BatchWorker:
    """Runs ``backend.generate`` in a background thread on batches of submitted requests."""

    def __init__(
        self,
        backend: Backend,
        *,
        max_batch: int = 8,
        window_s: float = 0.05,
        linger_s: float = 0.01,
        pending: Callable[[], int] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.backend = backend
        self.max_batch = max_batch
        self.window_s = window_s
        # Static batching: a request that starts alone makes the ones right behind it wait a whole
        # generation. Lingering a few ms for company costs a lone request little (generation takes
        # far longer) and lets clients whose requests are still in transit join the batch.
        self.linger_s = min(linger_s, window_s)
        # How many requests are admitted but not yet submitted (still decoding their image):
        # the worker waits for them, and only for them, so a lone client pays no batching delay.
        self._pending = pending or (lambda: 0)
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="georeason-generate", daemon=True)
        self._stopped = False
        self.batches = 0  # batches run (for /health)
        self._thread.start()

    def submit(self, request: Request, **settings: Any) -> Future[Response]:
        if self._stopped:
            raise RuntimeError("the generation worker is stopped")
        fut: Future[Response] = Future()
        self._queue.put(_Job(request, settings, fut))
        return fut

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped = True
        self._queue.put(None)
        self._thread.join(timeout)

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs = [first]
        start = time.monotonic()
        deadline, linger_until = start + self.window_s, start + self.linger_s
        while len(jobs) < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                now = time.monotonic()
                remaining = deadline - now
                if remaining <= 0 or (self._pending() <= 0 and now >= linger_until):
                    break
                try:
                    job = self._queue.get(timeout=min(remaining, 0.002))
                except queue.Empty:
                    continue
            if job is None:
                return jobs, True
            jobs.append(job)
        return jobs, False

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                break
            jobs, stop = self._gather(first)
            groups: dict[tuple[Any, ...], list[_Job]] = {}
            for job in jobs:
                groups.setdefault(job.key(), []).append(job)
            for group in groups.values():
                self._run(group)
            if stop:
                break
        # Fail whatever is left so no handler waits forever.
        while True:
            try:
                left = self._queue.get_nowait()
            except queue.Empty:
                break
            if left is not None:
                left.future.set_exception(RuntimeError("server shutting down"))

    def _run(self, group: list[_Job]) -> None:
        self.batches += 1
        try:
            responses = self.backend.generate([j.request for j in group], **group[0].settings)
            if len(responses) != len(group):
                raise RuntimeError(f"backend returned {len(responses)} responses for {len(group)} requests")
        except Exception as e:  # a backend bug must fail these requests, not kill the worker
            logger.exception("generation failed for a batch of %d", len(group))
            for job in group:
                job.future.set_exception(e)
            return
        for job, resp in zip(group, responses, strict=True):
            job.future.set_result(resp)
