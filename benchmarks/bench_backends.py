"""Backend throughput: batched vs one-at-a-time, in process and over HTTP.

1. ``hf``: images/s generating for N images with micro-batch 16 vs micro-batch 1
   (anchor), on the tiny Qwen2.5-VL (target: batch 16 >= 4x batch 1).
2. ``openai`` against ``georeason serve`` started here on loopback (max-concurrency 8):
   client concurrency 8 vs concurrency 1 (anchor). The server batches concurrent
   requests, so concurrency turns into batch size on the model.
3. ``hf`` self-consistency: K samples per image in one call (``n=K``: the prompt and
   the image are encoded once, the K rows decode together) vs K separate calls on the
   same images (anchor), answers per second (target: more than 1x).

Every request generates exactly ``--max-new-tokens`` tokens (greedy; end-of-sequence
masked via ``min_new_tokens`` / vLLM's ``min_tokens``), so the work is identical in
both arms. The two arms run alternately (anchor, arm, anchor, arm, ...) after one warm-up
each; rates are medians over ``--repeats`` runs and the ratio is the median of the
per-pair ratios, which keeps load drifts on a shared machine from favouring one arm.

    python benchmarks/bench_backends.py                 # builds the tiny model in a temp dir
    python benchmarks/bench_backends.py --model PATH --device cuda --images 64
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _images(n: int, seed: int = 0) -> list[Any]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    # Same size for every image: equal prompt lengths, so batching gains are not padding artefacts.
    return [Image.fromarray(rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)) for _ in range(n)]


def _requests(n: int) -> list[Any]:
    from georeason.infer.base import Request
    from georeason.protocols import get_protocol

    msgs = get_protocol("geor").messages()
    return [Request(id=str(i), image=im, messages=msgs) for i, im in enumerate(_images(n))]


def _paired(anchor: Callable[[], int], arm: Callable[[], int], repeats: int) -> dict[str, Any]:
    """Time the anchor and the arm alternately (A B A B ...) after one warm-up of each.

    Alternating pairs keep slow drifts in machine load (a shared CI box) from landing on one
    arm only; the ratio reported is the median of the per-pair ratios.
    """
    anchor()
    arm()
    rates: dict[str, list[float]] = {"anchor": [], "arm": []}
    for _ in range(repeats):
        for key, fn in (("anchor", anchor), ("arm", arm)):
            t0 = time.perf_counter()
            n = fn()
            rates[key].append(n / (time.perf_counter() - t0))
    ratios = [b / a for a, b in zip(rates["anchor"], rates["arm"], strict=True)]
    return {
        "anchor": statistics.median(rates["anchor"]),
        "arm": statistics.median(rates["arm"]),
        "ratio": statistics.median(ratios),
        "runs": rates,
        "ratios": ratios,
    }


def _fmt(xs: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


def bench_hf(model: str, n: int, tokens: int, repeats: int, device: str, big_batch: int) -> dict[str, Any]:
    from georeason.infer.hf import HFBackend

    backend = HFBackend(model, batch_size=big_batch, device=device)
    requests = _requests(n)

    def run(batch_size: int) -> Callable[[], int]:
        def go() -> int:
            backend.batch_size = batch_size
            out = backend.generate(requests, max_new_tokens=tokens, min_new_tokens=tokens)
            bad = [r.error for r in out if not r.ok]
            assert not bad, bad
            assert all(r.extra["completion_tokens"] == tokens for r in out)
            return len(out)

        return go

    r = _paired(run(1), run(big_batch), repeats)
    backend.close()
    print(f"hf  batch 1 : {r['anchor']:8.2f} images/s  (runs: {_fmt(r['runs']['anchor'])})")
    print(f"hf  batch {big_batch}: {r['arm']:8.2f} images/s  (runs: {_fmt(r['runs']['arm'])})")
    print(
        f"hf  ratio batch {big_batch} / batch 1: {r['ratio']:.2f}x  (per pair: {_fmt(r['ratios'])}; target >= 4x)"
    )
    return r


def bench_samples(model: str, n: int, tokens: int, repeats: int, device: str, k: int) -> dict[str, Any]:
    from georeason.infer.hf import HFBackend

    backend = HFBackend(model, batch_size=n, device=device)
    requests = _requests(n)
    settings = {"max_new_tokens": tokens, "min_new_tokens": tokens, "temperature": 0.7}

    def separate() -> int:
        answers = 0
        for seed in range(k):
            out = backend.generate(requests, seed=seed, **settings)
            assert all(r.ok for r in out), [r.error for r in out if not r.ok]
            answers += len(out)
        return answers

    def together() -> int:
        out = backend.generate(requests, seed=0, n=k, **settings)
        assert all(r.ok and len(r.samples) == k for r in out), [r.error for r in out if not r.ok]
        return sum(len(r.samples) for r in out)

    r = _paired(separate, together, repeats)
    backend.close()
    print(f"hf  {k} separate calls : {r['anchor']:8.2f} answers/s  (runs: {_fmt(r['runs']['anchor'])})")
    print(f"hf  one call, n={k}    : {r['arm']:8.2f} answers/s  (runs: {_fmt(r['runs']['arm'])})")
    print(f"hf  ratio n={k} / {k} calls: {r['ratio']:.2f}x  (per pair: {_fmt(r['ratios'])}; target > 1x)")
    return r


def bench_openai(
    model: str, n: int, tokens: int, repeats: int, device: str, concurrency: int
) -> dict[str, Any]:
    from georeason.infer.openai_backend import OpenAIBackend
    from georeason.serve.process import ServeProcess

    requests = _requests(n)
    args = ["--max-concurrency", str(concurrency), "--device", device, "--served-model-name", "bench"]
    with ServeProcess(model, args=args) as server:

        def run(c: int) -> Callable[[], int]:
            backend = OpenAIBackend(
                "bench", base_url=server.base_url, concurrency=c, extra_body={"min_tokens": tokens}
            )

            def go() -> int:
                out = backend.generate(requests, max_new_tokens=tokens)
                bad = [r.error for r in out if not r.ok]
                assert not bad, bad
                return len(out)

            return go

        def health() -> dict[str, Any]:
            import httpx

            return httpx.get(f"{server.url}/health", timeout=10).json()

        before = health()
        r = _paired(run(1), run(concurrency), repeats)
        after = health()
    # batches of the anchor (concurrency 1) are all of size 1: take them out of the mean.
    anchor_requests = (repeats + 1) * n
    arm_batches = after["batches"] - before["batches"] - anchor_requests
    mean_batch = (repeats + 1) * n / max(1, arm_batches)
    print(f"openai concurrency 1 : {r['anchor']:8.2f} images/s  (runs: {_fmt(r['runs']['anchor'])})")
    print(f"openai concurrency {concurrency} : {r['arm']:8.2f} images/s  (runs: {_fmt(r['runs']['arm'])})")
    print(
        f"openai ratio concurrency {concurrency} / concurrency 1: {r['ratio']:.2f}x  (per pair: {_fmt(r['ratios'])})"
    )
    print(f"openai mean batch size on the server at concurrency {concurrency}: {mean_batch:.1f}")
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder (default: build the tiny model in a temp dir)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    ap.add_argument("--images", type=int, default=16, help="images per timed run")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16, help="the batched arm's micro-batch size")
    ap.add_argument("--concurrency", type=int, default=8, help="the concurrent arm's client concurrency")
    ap.add_argument("--samples", type=int, default=8, help="K of the self-consistency arm")
    ap.add_argument("--skip-hf", action="store_true")
    ap.add_argument("--skip-openai", action="store_true")
    ap.add_argument("--skip-samples", action="store_true")
    a = ap.parse_args()

    import torch

    with tempfile.TemporaryDirectory() as tmp:
        model = a.model
        if model is None:
            from georeason.models import build_tiny_vlm

            t0 = time.perf_counter()
            model = str(build_tiny_vlm(Path(tmp) / "tiny"))
            print(f"built the tiny model in {time.perf_counter() - t0:.1f} s")
        print(
            f"model={model} device={a.device} images={a.images} max_new_tokens={a.max_new_tokens} "
            f"repeats={a.repeats} torch_threads={torch.get_num_threads()} cpus={os.cpu_count()}"
        )
        if not a.skip_hf:
            bench_hf(model, a.images, a.max_new_tokens, a.repeats, a.device, a.batch)
        if not a.skip_openai:
            bench_openai(model, a.images, a.max_new_tokens, a.repeats, a.device, a.concurrency)
        if not a.skip_samples:
            bench_samples(model, a.images, a.max_new_tokens, a.repeats, a.device, a.samples)


if __name__ == "__main__":
    main()
