"""Does GRPO beat SFT only, by more than the spread across seeds? `georeason demo` for N seeds.

Runs the README's demo (georeason.demo.run_demo) for seeds 0..N-1 and prints:

- the held-out-city table, mean ± sample std over seeds (baselines, SFT only,
  SFT + GRPO, the world's oracle ceilings);
- the claim check on accuracy at 25 km and median error (GRPO better in every
  seed, and the gap between means larger than std(SFT) + std(GRPO));
- per seed, GRPO's median error as a ratio of SFT's (the anchor, measured in
  the same run), and the median of those ratios;
- wall time per stage and seed, and the machine's load average (the machine is
  shared: timings under load are not the demo's speed).

With ``--control`` each seed also trains an SFT-only model for as long as SFT +
GRPO took together (the same compute, in SFT steps), on every training photo
(the RL cities included), and evaluates it like the others: does GRPO beat
*more imitation*, or only a shorter warm start?

    python benchmarks/bench_demo_seeds.py --seeds 3 --out runs/bench_demo [--control] [--set grpo_lr=5e-5]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from georeason.demo import (
    COLUMNS,
    SFT_GRPO,
    SFT_ONLY,
    DemoConfig,
    claim_lines,
    evaluate_model,
    mean_spread,
    render_table,
    run_demo,
    run_sft,
    score,
    write_report,
)

CONTROL = "SFT only, same compute as SFT + GRPO"


def _parse_set(items: list[str]) -> dict[str, object]:
    types = {f.name: f.type for f in fields(DemoConfig)}
    out: dict[str, object] = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in types or key in ("out", "seed"):
            raise SystemExit(
                f"--set: unknown key {key!r}; keys: {', '.join(k for k in types if k not in ('out', 'seed'))}"
            )
        default = getattr(DemoConfig(), key)
        out[key] = (
            (value.lower() in ("1", "true", "yes")) if isinstance(default, bool) else type(default)(value)
        )
    return out


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "?"


def control_row(cfg: DemoConfig, seconds: dict[str, float]) -> dict[str, float]:
    """SFT only, trained for the SFT + GRPO compute (in SFT steps), on all training photos."""
    extra = round(cfg.sft_steps * seconds["grpo"] / max(seconds["sft"], 1e-9))
    result = run_sft(
        cfg.out / "model",
        cfg.out / "world",
        cfg,
        split="train",
        steps=cfg.sft_steps + extra,
        name="sft_control",
    )
    return score(evaluate_model(result.model_dir, "sft_control", cfg))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/bench_demo"))
    ap.add_argument("--control", action="store_true", help="also train the compute-matched SFT-only control")
    ap.add_argument("--set", action="append", default=[], help="DemoConfig override KEY=VALUE (repeatable)")
    ap.add_argument("--progress", action="store_true", help="show the trainers' progress bars")
    args = ap.parse_args()

    base = replace(
        DemoConfig(out=args.out, seed=args.first_seed, progress=args.progress), **_parse_set(args.set)
    )
    base.check()
    print(f"load average at start: {_load()}", flush=True)
    t0 = time.perf_counter()
    results, controls = [], []
    for k in range(args.seeds):
        cfg = replace(base, seed=args.first_seed + k, out=args.out / f"seed{args.first_seed + k}")
        print(f"=== seed {cfg.seed} ===", flush=True)
        results.append(run_demo(cfg, log=lambda s: print(s, flush=True)))
        if args.control:
            t = time.perf_counter()
            controls.append(control_row(cfg, results[-1].seconds))
            print(f"      control: {time.perf_counter() - t:.0f} s", flush=True)
    wall = time.perf_counter() - t0
    write_report(results, base)

    print()
    print(render_table(results, markdown=False))
    if controls:
        print()
        print(f"{CONTROL}:")
        for key, label, _kind in COLUMNS:
            m, s = mean_spread([c[key] for c in controls])
            g, gs = mean_spread([r.rows[SFT_GRPO][key] for r in results])
            print(f"  {label:12s} control {m:9.1f} ± {s:7.1f}   SFT + GRPO {g:9.1f} ± {gs:7.1f}")
    print()
    for line in claim_lines(results):
        print(line)
    ratios = [r.rows[SFT_GRPO]["median_km"] / r.rows[SFT_ONLY]["median_km"] for r in results]
    print(
        "median error, GRPO / SFT (anchor) per seed: "
        + ", ".join(f"{x:.3f}" for x in ratios)
        + f"; median ratio {float(np.median(ratios)):.3f}"
    )
    print()
    stages = list(results[0].seconds)
    print("seconds per stage: " + ", ".join(stages))
    for r in results:
        print(
            f"  seed {r.seed}: "
            + ", ".join(f"{r.seconds[s]:.0f}" for s in stages)
            + f" = {sum(r.seconds.values()):.0f}"
        )
    totals = [sum(r.seconds.values()) for r in results]
    print(f"median demo wall time per seed: {float(np.median(totals)):.0f} s; all: {wall:.0f} s")
    print(f"load average at end: {_load()} (2 shared cores: > 1 means other jobs competed)")
    summary = {
        "seeds": [r.seed for r in results],
        "rows": [r.rows for r in results],
        "controls": controls,
        "ratios_median_km": ratios,
        "seconds": [r.seconds for r in results],
    }
    (args.out / "bench_summary.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
