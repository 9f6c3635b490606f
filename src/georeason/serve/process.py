"""Run ``georeason serve`` as a child process on loopback (tests, benchmarks, scripts).

>>> with ServeProcess("models/tiny", args=["--max-concurrency", "8"]) as server:  # doctest: +SKIP
...     backend = get_backend("openai", "auto", base_url=server.base_url)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """``python -m georeason.cli serve --model MODEL ...`` in a child process.

    :meth:`start` returns once ``/health`` answers (or raises with the log's tail
    when the process dies or ``startup_timeout`` passes); :meth:`stop` terminates it
    (SIGTERM, then SIGKILL after ``grace`` seconds).
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        args: Sequence[str] = (),
        host: str = "127.0.0.1",
        port: int | None = None,
        env: dict[str, str] | None = None,
        startup_timeout: float = 180.0,
        grace: float = 10.0,
    ) -> None:
        self.model = str(model)
        self.args = list(args)
        self.host = host
        self.port = port or free_port(host)
        self.env = {**os.environ, **(env or {})}
        self.startup_timeout = startup_timeout
        self.grace = grace
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="georeason-serve-", suffix=".log", delete=False)  # noqa: SIM115
        self.log_path = Path(self._log.name)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI API root, for ``get_backend("openai", ..., base_url=...)``."""
        return f"{self.url}/v1"

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def start(self) -> ServeProcess:
        import httpx

        cmd = [sys.executable, "-m", "georeason.cli", "serve", "--model", self.model]
        cmd += ["--host", self.host, "--port", str(self.port), "--log-level", "warning", *self.args]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"georeason serve exited with code {self.proc.returncode} during start-up:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(
            f"georeason serve did not answer /health within {self.startup_timeout:g} s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(self.grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
