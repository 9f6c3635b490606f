"""Load and hostile traffic against `georeason serve` on loopback: does it stay up and small?

Starts ``georeason serve`` on 127.0.0.1 with the tiny offline model (built here with
``georeason train tiny-model`` unless ``--model`` names one), then:

1. **anchor**: ``--anchor`` valid requests alone, at concurrency ``--concurrency``;
2. **mixed**: ``--requests`` requests at the same concurrency, drawn (seeded) from
   valid ones (chat with an image, ``/v1/locate``) and hostile ones: a 1 MB text prompt,
   a 13000 x 13000 PNG bomb (chat and locate), malformed JSON, a body that is not JSON,
   invalid base64, ``seed=10**30``, and clients that hang up mid-generation.

It prints, per kind, the status counts and the p50/p99 latency, the valid requests' p50
under mixed traffic against the anchor's (the ratio), the server's RSS before and after
and its peak, and ``/health`` at the end (slots must drain to 0). Bounded in count and
time (``--max-seconds``; every request has a timeout). Exit status 1 when a reply was
not one the kind allows (e.g. a 500, a dropped connection, a bomb answered 200), the
server died, or its slots did not drain.

The server and every client are on the loopback interface only; nothing else is contacted.

    python benchmarks/load_serve.py --requests 300 --concurrency 16
    python benchmarks/load_serve.py --model PATH --serve-arg=--max-concurrency --serve-arg=8
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HOST = "127.0.0.1"  # loopback only: this script talks to nothing but the server it starts

#: kind -> (share of the mixed run, statuses that count as handled correctly)
KINDS: dict[str, tuple[float, frozenset[int | str]]] = {
    "chat": (0.35, frozenset({200, 503})),  # 503: all slots busy for queue_timeout, a correct answer
    "locate": (0.10, frozenset({200, 503})),
    "huge_prompt": (0.10, frozenset({422, 503})),
    "bomb_chat": (0.05, frozenset({422, 503})),
    "bomb_locate": (0.05, frozenset({422, 503})),
    "bad_json": (0.05, frozenset({422})),
    "not_json": (0.05, frozenset({422})),
    "bad_base64": (0.05, frozenset({422, 503})),
    "seed_overflow": (0.05, frozenset({422})),
    "disconnect": (0.15, frozenset({"hung up"})),
}


def _png(img: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _payloads(seed: int) -> dict[str, Any]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = [_png(Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))) for _ in range(8)]
    bomb = _png(Image.new("1", (13_000, 13_000), 0))  # ~100 kB, 169 Mpx decoded
    return {"photos": photos, "bomb": bomb}


def _chat(text: str, image: bytes | None = None, **extra: Any) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if image is not None:
        url = "data:image/png;base64," + base64.b64encode(image).decode("ascii")
        content.append({"type": "image_url", "image_url": {"url": url}})
    content.append({"type": "text", "text": text})
    return {"messages": [{"role": "user", "content": content}], "max_tokens": 8, "temperature": 0, **extra}


def _hang_up(port: int, body: dict[str, Any], after: float) -> str:
    """Send a request, wait ``after`` seconds, close the socket without reading the reply."""
    payload = json.dumps(body).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    with socket.create_connection((HOST, port), timeout=10.0) as sock:
        sock.sendall(head + payload)
        time.sleep(after)
    return "hung up"


def make_call(
    kind: str, client: Any, port: int, data: dict[str, Any], rng: random.Random
) -> Callable[[], Any]:
    """A function that sends one request of ``kind`` and returns its status (or a label)."""
    photo = rng.choice(data["photos"])
    post = client.post
    if kind == "chat":
        return lambda: (
            post("/v1/chat/completions", json=_chat("Where was this photo taken?", photo)).status_code
        )
    if kind == "locate":
        files = {"image": ("photo.png", photo, "image/png")}
        return lambda: post("/v1/locate", files=files, data={"max_tokens": "8"}).status_code
    if kind == "huge_prompt":
        return lambda: post("/v1/chat/completions", json=_chat("Where? " * 150_000)).status_code
    if kind == "bomb_chat":
        return lambda: post("/v1/chat/completions", json=_chat("Where?", data["bomb"])).status_code
    if kind == "bomb_locate":
        files = {"image": ("bomb.png", data["bomb"], "image/png")}
        return lambda: post("/v1/locate", files=files).status_code
    if kind == "bad_json":
        body = b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": '
        return lambda: (
            post(
                "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
            ).status_code
        )
    if kind == "not_json":
        return lambda: (
            post("/v1/chat/completions", content=b"hello", headers={"content-type": "text/plain"}).status_code
        )
    if kind == "bad_base64":
        body = _chat("Where?")
        body["messages"][0]["content"].insert(
            0, {"type": "image_url", "image_url": {"url": "data:image/png;base64,!!!!"}}
        )
        return lambda: post("/v1/chat/completions", json=body).status_code
    if kind == "seed_overflow":
        return lambda: post("/v1/chat/completions", json=_chat("Where?", seed=10**30)).status_code
    if kind == "disconnect":
        body = _chat("Where was this photo taken?", photo, max_tokens=256, min_tokens=256)
        return lambda: _hang_up(port, body, after=rng.uniform(0.1, 1.0))
    raise ValueError(f"unknown kind {kind!r}")


def rss_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) of a process, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def run_phase(
    kinds: list[str], url: str, port: int, data: dict[str, Any], concurrency: int, deadline: float, seed: int
) -> list[tuple[str, Any, float]]:
    """Send one request per entry of ``kinds`` at ``concurrency``; (kind, status, seconds) each."""
    import httpx

    results: list[tuple[str, Any, float]] = []
    lock = threading.Lock()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(base_url=url, timeout=120.0, limits=limits) as client:

        def one(i: int, kind: str) -> None:
            if time.monotonic() > deadline:
                status: Any = "skipped (time bound)"
                took = 0.0
            else:
                call = make_call(kind, client, port, data, random.Random(seed * 1_000_003 + i))
                t0 = time.perf_counter()
                try:
                    status = call()
                except httpx.HTTPError as e:
                    status = type(e).__name__
                except OSError as e:
                    status = type(e).__name__
                took = time.perf_counter() - t0
            with lock:
                results.append((kind, status, took))

        with ThreadPoolExecutor(concurrency) as pool:
            for i, kind in enumerate(kinds):
                pool.submit(one, i, kind)
    return results


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def report(title: str, results: list[tuple[str, Any, float]]) -> tuple[int, list[float]]:
    """Print per-kind status counts and latency; return (unexpected replies, valid latencies)."""
    by_kind: dict[str, list[tuple[Any, float]]] = defaultdict(list)
    for kind, status, took in results:
        by_kind[kind].append((status, took))
    print(f"\n{title}: {len(results)} requests")
    print(f"  {'kind':<14} {'n':>4}  {'p50 s':>7} {'p99 s':>7}  statuses")
    bad = 0
    valid: list[float] = []
    for kind in KINDS:
        rows = by_kind.get(kind)
        if not rows:
            continue
        counts = Counter(s for s, _ in rows)
        times = [t for s, t in rows if s != "skipped (time bound)"]
        allowed = KINDS[kind][1]
        wrong = sum(n for s, n in counts.items() if s not in allowed and s != "skipped (time bound)")
        bad += wrong
        if kind in ("chat", "locate"):
            valid += [t for s, t in rows if s == 200]
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(counts.items(), key=lambda kv: str(kv[0])))
        flag = f"   <-- {wrong} unexpected" if wrong else ""
        print(
            f"  {kind:<14} {len(rows):>4}  {pct(times, 0.5):>7.3f} {pct(times, 0.99):>7.3f}  {statuses}{flag}"
        )
    everything = [t for _, s, t in results if s != "skipped (time bound)"]
    counts = Counter(s for _, s, _ in results)
    print(f"  {'all':<14} {len(results):>4}  {pct(everything, 0.5):>7.3f} {pct(everything, 0.99):>7.3f}  "
          + ", ".join(f"{s}: {n}" for s, n in sorted(counts.items(), key=lambda kv: str(kv[0]))))  # fmt: skip
    return bad, valid


def build_tiny(out: Path) -> str:
    """The tiny offline model, through the CLI a user would run."""
    cmd = [sys.executable, "-m", "georeason.cli", "train", "tiny-model", "--out", str(out)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return str(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=300, help="requests in the mixed phase (at most 5,000)")
    ap.add_argument("--concurrency", type=int, default=16, help="clients at once (at most 64)")
    ap.add_argument("--anchor", type=int, default=60, help="valid-only requests in the anchor phase")
    ap.add_argument(
        "--max-seconds", type=float, default=900.0, help="stop sending after this long (per phase)"
    )
    ap.add_argument("--model", help="model folder (default: build the tiny model in a temp dir)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--serve-arg", action="append", default=[], help="extra `georeason serve` argument (repeat)"
    )
    args = ap.parse_args()
    if not 1 <= args.requests <= 5000 or not 1 <= args.concurrency <= 64 or not 0 <= args.anchor <= 5000:
        ap.error("--requests in [1, 5000], --anchor in [0, 5000], --concurrency in [1, 64]")

    import httpx

    from georeason.serve.process import ServeProcess

    rng = random.Random(args.seed)
    names = list(KINDS)
    mixed = rng.choices(names, weights=[KINDS[k][0] for k in names], k=args.requests)
    anchor = rng.choices(["chat", "locate"], weights=[KINDS["chat"][0], KINDS["locate"][0]], k=args.anchor)
    data = _payloads(args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            model = args.model
        else:
            t0 = time.perf_counter()
            model = build_tiny(Path(tmp) / "tiny")
            print(f"built the tiny model in {time.perf_counter() - t0:.1f} s (georeason train tiny-model)")
        serve_args = ["--device", "cpu", *args.serve_arg]
        with ServeProcess(model, host=HOST, args=serve_args) as server:
            assert server.proc is not None
            pid = server.proc.pid
            with httpx.Client(base_url=server.url, timeout=60.0) as c:
                assert (
                    c.post("/v1/chat/completions", json=_chat("warm-up", data["photos"][0])).status_code
                    == 200
                )
                config = c.get("/health").json()
            print(
                f"georeason serve on {server.url} (pid {pid}): max_concurrency {config['max_concurrency']}, "
                f"queue_timeout {config['queue_timeout_s']} s, generation_timeout {config.get('generation_timeout_s')} s, "
                f"max_prompt_tokens {config.get('max_prompt_tokens')}, max_image_pixels {config.get('max_image_pixels')}"
            )  # fmt: skip
            rss0 = rss_mb(pid)
            t0 = time.perf_counter()
            anchor_results = run_phase(
                anchor,
                server.url,
                server.port,
                data,
                args.concurrency,
                time.monotonic() + args.max_seconds,
                args.seed,
            )
            anchor_s = time.perf_counter() - t0
            rss1 = rss_mb(pid)
            t0 = time.perf_counter()
            mixed_results = run_phase(
                mixed,
                server.url,
                server.port,
                data,
                args.concurrency,
                time.monotonic() + args.max_seconds,
                args.seed + 1,
            )
            mixed_s = time.perf_counter() - t0
            # slots must drain: abandoned requests free theirs, nothing stays in flight
            drained = False
            for _ in range(200):
                health = httpx.get(f"{server.url}/health", timeout=10.0).json()
                if health["in_flight"] == 0:
                    drained = True
                    break
                time.sleep(0.05)
            rss2 = rss_mb(pid)
            alive = server.proc.poll() is None

        bad_a, valid_a = report(
            f"anchor (valid only, concurrency {args.concurrency}, {anchor_s:.1f} s)", anchor_results
        )
        bad_m, valid_m = report(
            f"mixed (valid + hostile, concurrency {args.concurrency}, {mixed_s:.1f} s)", mixed_results
        )
        print()
        if valid_a and valid_m:
            a50, m50 = statistics.median(valid_a), statistics.median(valid_m)
            print(f"valid p50: anchor {a50:.3f} s, mixed {m50:.3f} s, ratio mixed/anchor {m50 / a50:.2f}")
        print(
            f"server RSS: {rss0['VmRSS']:.0f} MB before, {rss1['VmRSS']:.0f} MB after the anchor, "
            f"{rss2['VmRSS']:.0f} MB after the mixed run; peak {rss2['VmHWM']:.0f} MB"
        )
        keys = ("in_flight", "served", "rejected", "abandoned", "timed_out", "decoding_peak", "batches")
        print("health after: " + ", ".join(f"{k} {health.get(k)}" for k in keys))
        problems = []
        if bad_a or bad_m:
            problems.append(f"{bad_a + bad_m} unexpected replies")
        if not drained:
            problems.append(f"{health['in_flight']} requests still in flight after the run")
        if not alive:
            problems.append("the server died")
        print("verdict: " + ("; ".join(problems) if problems else "ok (every reply was one its kind allows)"))
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
