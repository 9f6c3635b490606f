"""One generation thread that batches concurrent HTTP requests for the backend.

The event loop never runs the model: handlers submit a request here and await
a future. The worker thread takes the first waiting request, gathers the others
that are already admitted (up to ``max_batch``; it waits at most ``window_s``
for requests that were admitted but are still decoding their image, and
lingers ``linger_s`` for requests still in transit), groups
them by sampling settings and calls ``backend.generate`` once per group.

Every job carries a deadline and a cancel flag (the handler's client went away, or its
deadline passed): the worker skips such jobs before they start and, with a backend whose
``generate`` takes ``should_stop`` (``hf``: a transformers ``StoppingCriteria`` checked after
every decoding step), stops their rows mid-generation, so an abandoned request does not keep
the model busy. :meth:`BatchWorker.begin_shutdown` (safe in a signal handler: it only sets a
flag) stops every row at the next step and fails what is queued with :class:`ShuttingDown`.

Why batch in the server: an ``hf`` backend decodes a batch of 8 nearly as fast
as one request (see ``benchmarks/bench_backends.py``), so clients at
concurrency 8 get ~8 answers for the price of one, and a single thread also
keeps the model from being driven by several threads at once.
"""

from __future__ import annotations

import inspect
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


class ShuttingDown(RuntimeError):
    """The server is stopping: the request was not (fully) generated."""


class Expired(TimeoutError):
    """The job's deadline passed before the worker could finish it."""


@dataclass
class Job:
    """One submitted request; the handler awaits :attr:`future` and may :meth:`cancel` it."""

    request: Request
    settings: dict[str, Any]
    future: Future[Response]
    deadline: float | None = None  # time.monotonic() after which the answer is no longer wanted
    cancelled: bool = False

    def key(self) -> tuple[Any, ...]:
        return tuple(sorted(self.settings.items()))

    def cancel(self) -> None:
        """Nobody waits for this answer any more: skip it if queued, stop its row if running."""
        self.cancelled = True
        self.future.cancel()  # only succeeds while queued; a running job stops through should_stop

    def expired(self, now: float | None = None) -> bool:
        return self.deadline is not None and (now if now is not None else time.monotonic()) >= self.deadline


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
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="georeason-generate", daemon=True)
        self._stopped = False
        self.stopping = False  # set by begin_shutdown(): stop generating, accept nothing
        self._can_stop_rows = "should_stop" in inspect.signature(backend.generate).parameters
        self.batches = 0  # batches run (for /health)
        self.skipped = 0  # jobs dropped before generation (cancelled or past their deadline)
        self._thread.start()

    def submit(self, request: Request, *, deadline: float | None = None, **settings: Any) -> Job:
        """Queue one request; ``deadline`` (a ``time.monotonic()`` value) bounds its generation."""
        if self._stopped or self.stopping:
            raise ShuttingDown("server shutting down")
        job = Job(request, settings, Future(), deadline=deadline)
        self._queue.put(job)
        return job

    def begin_shutdown(self) -> None:
        """Stop generating at the next decoding step. Only sets a flag: safe from a signal handler."""
        self.stopping = True

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping = True
        self._stopped = True
        self._queue.put(None)
        self._thread.join(timeout)

    def _gather(self, first: Job) -> tuple[list[Job], bool]:
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
            groups: dict[tuple[Any, ...], list[Job]] = {}
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
            if left is not None and left.future.set_running_or_notify_cancel():
                left.future.set_exception(ShuttingDown("server shutting down"))

    def _unwanted(self, job: Job) -> bool:
        """Stop (or skip) this job's generation: its client is gone, its deadline passed, or we stop."""
        return self.stopping or job.cancelled or job.expired()

    def _start(self, group: list[Job]) -> list[Job]:
        """The jobs of ``group`` still worth running, marked running; the others are failed or dropped."""
        live = []
        for job in group:
            if not job.future.set_running_or_notify_cancel():  # cancelled while queued
                self.skipped += 1
            elif self.stopping:
                job.future.set_exception(ShuttingDown("server shutting down"))
            elif job.cancelled or job.expired():
                self.skipped += 1
                job.future.set_exception(Expired("deadline passed before generation started"))
            else:
                live.append(job)
        return live

    def _run(self, group: list[Job]) -> None:
        group = self._start(group)
        if not group:
            return
        self.batches += 1
        extra: dict[str, Any] = {}
        if self._can_stop_rows:
            by_request = {id(j.request): j for j in group}
            extra["should_stop"] = lambda r: self._unwanted(by_request[id(r)])
        try:
            responses = self.backend.generate([j.request for j in group], **group[0].settings, **extra)
            if len(responses) != len(group):
                raise RuntimeError(f"backend returned {len(responses)} responses for {len(group)} requests")
        except Exception as e:  # a backend bug must fail these requests, not kill the worker
            logger.exception("generation failed for a batch of %d", len(group))
            for job in group:
                job.future.set_exception(e)
            return
        for job, resp in zip(group, responses, strict=True):
            # A row cut short by should_stop holds a truncated text: never hand it out as an answer.
            if self.stopping:
                job.future.set_exception(ShuttingDown("server shutting down"))
            elif job.cancelled or job.expired():
                job.future.set_exception(Expired("deadline passed during generation"))
            else:
                job.future.set_result(resp)
