"""Self-consistency on the synthetic world: greedy vs K sampled answers, by aggregator.

For each demo folder (``georeason demo --out DIR``: ``DIR/world``, ``DIR/sft``,
``DIR/grpo``; with ``--seeds`` the seed folders) and each of its two models, on the
held-out cities (the world's ``test`` split):

1. greedy (temperature 0): the anchor, as the demo evaluates;
2. for each K: ``georeason eval --samples K --temperature T`` (one batched call draws the
   K answers of a photo); every sample is stored, so each aggregator (medoid,
   geomedian, vote) is applied to the same samples afterwards.

It prints, per model and setting, acc@25 / acc@200 km, median km and GeoScore (mean ±
std over the folders given), and the time per photo as a ratio to greedy measured in
the same run. ``T`` (default 0.7) is fixed before looking at results: the demo's GRPO
investigation found that at 0.7 sampled answers differ mostly in the city chosen,
while at 1.0 many are broken (docs/experiments/2026-11-25-demo-grpo-vs-sft.md).

    python benchmarks/bench_self_consistency.py runs/demo --k 4 8 16
    python benchmarks/bench_self_consistency.py runs/demo/seed0 runs/demo/seed1 runs/demo/seed2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODELS = (("sft", "SFT only"), ("grpo", "SFT + GRPO"))


def _evaluate(
    demo: Path, model: str, out: Path, samples: int, temperature: float
) -> tuple[list[dict], float]:
    from georeason.eval.runner import EvalConfig, read_records, run_eval
    from georeason.infer.base import get_backend

    config = EvalConfig(
        benchmark="synthetic",
        data=str(demo / "world"),
        model=str(demo / model),
        backend="hf",
        protocol="geor",
        batch_size=50 if samples == 1 else max(1, 50 // samples),
        max_new_tokens=100,
        temperature=temperature,
        seed=0,
        samples=samples,
        benchmark_options={"split": "test"},
    )
    backend = get_backend("hf", config.model, batch_size=config.batch_size, device="cpu")
    t0 = time.perf_counter()
    try:
        run_eval(config, out, backend=backend, plots=False, n_bootstrap=0, overwrite=True, progress=False)
    finally:
        backend.close()
    seconds = time.perf_counter() - t0
    records, _ = read_records(out / "predictions.jsonl")
    return records, seconds / max(1, len(records))


def _scores(records: list[dict], method: str | None) -> dict[str, float]:
    """acc@25/200, median km, GeoScore of the records; with ``method``, re-aggregated from samples."""
    import numpy as np

    from georeason.consensus import aggregate
    from georeason.eval.metrics import compute_metrics
    from georeason.protocols import get_protocol

    protocol = get_protocol("geor")
    tlat = np.array([r["true_lat"] for r in records], dtype=float)
    tlon = np.array([r["true_lon"] for r in records], dtype=float)
    plat = np.full(len(records), np.nan)
    plon = np.full(len(records), np.nan)
    for i, r in enumerate(records):
        if method is None or not r.get("samples"):
            if r.get("pred_lat") is not None:
                plat[i], plon[i] = r["pred_lat"], r["pred_lon"]
            continue
        c = aggregate([protocol.parse(t) for t in r["samples"]], method, geocode_names=False)
        if c.lat is not None:
            plat[i], plon[i] = c.lat, c.lon
    m = compute_metrics(tlat, tlon, plat, plon, n_bootstrap=0, per_continent=False)
    return {
        "acc25": 100 * m.accuracy[25.0],
        "acc200": 100 * m.accuracy[200.0],
        "median": m.median_km,
        "geoscore": m.geoscore,
    }


def _cell(values: list[float], fmt: str) -> str:
    finite = [v for v in values if v == v]
    if not finite:
        return "—"
    if len(finite) == 1:
        return format(finite[0], fmt)
    return f"{format(statistics.mean(finite), fmt)} ± {format(statistics.stdev(finite), fmt)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("demos", nargs="+", type=Path, help="demo output folders (each with world/, sft/, grpo/)")
    ap.add_argument("--k", type=int, nargs="+", default=[4, 8, 16], help="samples per photo")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--out", type=Path, default=Path("runs/self_consistency"))
    a = ap.parse_args()

    rows: dict[tuple[str, str], dict[str, list[float]]] = {}

    def add(model: str, setting: str, scores: dict[str, float], cost: float) -> None:
        row = rows.setdefault((model, setting), {})
        for k, v in {**scores, "cost": cost}.items():
            row.setdefault(k, []).append(v)

    # One untimed greedy run first: the process's first generation pays torch's warm-up,
    # which would otherwise inflate the first model's greedy time and flatter its ratios.
    _evaluate(a.demos[0], MODELS[0][0], a.out / "warm-up", 1, 0.0)
    for demo in a.demos:
        for short, name in MODELS:
            greedy, t_greedy = _evaluate(demo, short, a.out / demo.name / short / "greedy", 1, 0.0)
            add(name, "greedy", _scores(greedy, None), 1.0)
            print(f"{demo} {name}: greedy {t_greedy:.3f} s/photo", flush=True)
            for k in a.k:
                sampled, t_k = _evaluate(demo, short, a.out / demo.name / short / f"k{k}", k, a.temperature)
                print(f"{demo} {name}: K={k} {t_k:.3f} s/photo ({t_k / t_greedy:.2f}x greedy)", flush=True)
                for method in ("medoid", "geomedian", "vote"):
                    add(name, f"K={k} {method}", _scores(sampled, method), t_k / t_greedy)

    print()
    print(f"held-out cities, {len(a.demos)} demo folder(s), T = {a.temperature}; mean ± std over folders")
    print()
    print("| model | answer | acc@25 km | acc@200 km | median km | GeoScore | time / photo vs greedy |")
    print("|---|---|---|---|---|---|---|")
    for (model, setting), v in rows.items():
        print(
            f"| {model} | {setting} | {_cell(v['acc25'], '.1f')} | {_cell(v['acc200'], '.1f')} | "
            f"{_cell(v['median'], ',.0f')} | {_cell(v['geoscore'], ',.0f')} | {_cell(v['cost'], '.2f')}x |"
        )


if __name__ == "__main__":
    main()
