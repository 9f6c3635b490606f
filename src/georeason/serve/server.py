"""Run the app under uvicorn so that SIGTERM stops a busy server within seconds.

Plain ``uvicorn.run`` waits, on SIGTERM, for every in-flight request to finish:
with one request generating 4,096 tokens (or stuck behind a huge prompt) that is
minutes, and a supervisor's grace period ends in SIGKILL. Here the signal first
tells the generation worker to stop (a flag, checked after every decoding step),
so in-flight requests end at once with 503 ``server shutting down`` (clients
retry elsewhere), and uvicorn's graceful wait is bounded by ``shutdown_timeout``
(after it, what still runs is cancelled).
"""

from __future__ import annotations

import math
import sys
from types import FrameType
from typing import Any


def run(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    shutdown_timeout: float = 5.0,
    timeout_keep_alive: int = 30,
) -> None:
    """Serve ``app`` (from :func:`georeason.serve.app.create_app`) until SIGINT/SIGTERM."""
    import uvicorn

    worker = app.state.worker

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            worker.begin_shutdown()  # sets a flag only: safe inside a signal handler
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_keep_alive=timeout_keep_alive,
        timeout_graceful_shutdown=max(1, math.ceil(shutdown_timeout)),  # uvicorn takes whole seconds
    )
    server = Server(config)
    server.run()
    if not server.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE (e.g. the port is taken)
