"""`georeason demo`: Geo-R's recipe end to end on a CPU, offline, in minutes.

Reads top to bottom, like a training script:

1. **World.** Draw the synthetic world (:mod:`georeason.datasets.synthetic`): photos
   of real cities whose clues follow the hierarchy continent -> country ->
   admin1 -> city, plus a continuous *road tint* that encodes where in its
   country a photo was taken. The test split holds **held-out cities**: their
   region is known from training, their name and landmark never are.
2. **Model.** Build a tiny Qwen2.5-VL from scratch (:func:`georeason.models.build_tiny_vlm`):
   random weights, a tokenizer trained on gazetteer names and the world's clue words.
3. **SFT warm start** (TRL's ``SFTTrainer`` through :func:`georeason.train.train_sft`):
   imitate gold Chain of Region answers ``<think>clues</think><answer>Country /
   State / City / Coordinates</answer>``, written from the ground truth.
4. **GRPO** (TRL's ``GRPOTrainer`` through :func:`georeason.train.train_grpo`) with
   Geo-R's reward ``r_dist(d) x r_format`` (:func:`georeason.rewards.geor`).
5. **Evaluate** greedy answers on the held-out cities (:func:`georeason.eval.runner.run_eval`)
   against baselines (a random point on land, the training set's most common
   city, the SFT model alone) and the world's oracle ceilings; write
   ``report.md``, ``results.json``, three PNGs (reward curve, error CDF, world
   map of both models) and a few held-out photos to try ``georeason locate`` on.

``run_demo_seeds`` repeats 1-5 for several seeds and reports mean ± spread, and
whether GRPO beats SFT by more than that spread.

Modules by role: :mod:`.config` (settings, shared names), :mod:`.stages` (1-4),
:mod:`.evaluate` (5: answers, baselines, scoring, photos), :mod:`.report` (tables, claim check,
``report.md``); this module runs them.

**Choices, and why** (budget: <= 10 minutes on 2 CPU cores, no download; the
runs behind each are listed in docs/experiments/README.md):

- Geo-R's Chain of Region answer, unchanged: the reward parses what a 7B run writes.
- 0.64M parameters, 1,024-token vocabulary: the language head is most of a tiny model's compute.
- 112-px images (16 visual tokens): at 56 px the model misread banners and GRPO sharpened that.
- 12 countries x 2 regions x 5 cities, 1 city a region held out: a known region, an unseen city.
- Landmarks in 30 % of photos: the road tint must tell a region's cities apart, as for a held-out one.
- Photos 15 km around their city: gold coordinates vary with the tint within a city.
- SFT from scratch at lr 3e-3, cosine to zero: random weights, and the warm start ends settled.
- 1 training city a region kept out of SFT for GRPO: Geo-R's hard RL data, the test situation.
- Geo-R's reward alone (``geor:1``): the paper's product of distance and format rewards.
- 8 answers x 4 photos x 100 steps, T=1: what fits the budget at ~2.4 s a step.
- Dr. GRPO's unscaled advantages: the std would blow ~0.01 reward differences up to full updates.
- KL to the SFT model (beta 0.04) at lr 1e-4: the reward scores only coordinates; KL holds the clue words.
- KV cache in rollouts: TRL saves SFT with ``use_cache=False``, ~25x slower generation without it.
- fp32 on CPU, no checkpoints: bf16 autocast is slower on CPUs and a run is minutes long.
- GRPO "wins" only if better in every seed by more than the spread: ~24 choices decide a seed's median.

What the demo has measured — GRPO does not beat SFT here; SFT trained for the same
compute does better than both — and the runs behind it are dated write-ups indexed in
docs/experiments/README.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from georeason.demo.config import (
    CDF_PNG,
    MAP_PNG,
    MODEL_ROWS,
    N_PHOTOS,
    PHOTOS_CSV,
    PHOTOS_DIR,
    REPORT_MD,
    RESULTS_JSON,
    REWARD_PNG,
    ROWS,
    SFT_GRPO,
    SFT_ONLY,
    DemoConfig,
    Log,
    quick_config,
)
from georeason.demo.evaluate import (
    as_float,
    baseline_records,
    evaluate_model,
    locate_command,
    oracle_row,
    sampled_row,
    score,
    tint_reading,
    write_photos,
)
from georeason.demo.report import (
    COLUMNS,
    HELD_OUT_COLUMNS,
    ORACLES,
    DemoResult,
    claim_lines,
    compare,
    mean_spread,
    photo_folder,
    render_table,
    write_report,
)
from georeason.demo.stages import (
    grpo_config,
    make_demo_model,
    make_demo_world,
    run_grpo,
    run_sft,
    split_training_cities,
)


def run_demo(cfg: DemoConfig, log: Log = print) -> DemoResult:
    """One seed: world, model, SFT, GRPO, evaluation; writes ``cfg.out``."""
    cfg.check()
    with _quiet_libraries():
        return _run_demo(cfg, log)


@contextmanager
def _quiet_libraries() -> Iterator[None]:
    """The demo's terminal shows its own stages, the trainers' bars and one line per logged
    step (:mod:`georeason.train.callbacks`); the libraries' own bars for saving a dataset,
    loading or writing a few-kB model, and a transformers deprecation warning raised inside
    TRL, are hidden while it runs (and restored after)."""
    import warnings

    import datasets
    from transformers.utils import logging as hf_logging

    ds_was_on = datasets.is_progress_bar_enabled()
    hf_was_on = hf_logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            yield
    finally:
        if ds_was_on:
            datasets.enable_progress_bars()
        if hf_was_on:
            hf_logging.enable_progress_bar()


def _run_demo(cfg: DemoConfig, log: Log) -> DemoResult:
    cfg.out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def done(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 1)
        clock = now
        log(f"      {stage}: {seconds[stage]:.0f} s")

    log(
        f"[1/5] synthetic world (seed {cfg.seed}): {cfg.n_places} cities in {cfg.n_countries} countries, "
        f"{cfg.n_train} training photos, {cfg.n_test} photos of held-out cities"
    )
    data = make_demo_world(cfg)
    data_dir, rl_cities = split_training_cities(data, cfg)
    done("world")

    log(
        f"[2/5] tiny Qwen2.5-VL: random weights, {cfg.vocab_size}-token tokenizer, {cfg.image_size}-px images"
    )
    model_dir = make_demo_model(data, cfg)
    done("model")

    log(f"[3/5] SFT warm start (TRL SFTTrainer): {cfg.sft_steps} steps x {cfg.sft_batch_size} photos")
    sft = run_sft(model_dir, data_dir, cfg)
    done("sft")

    log(
        f"[4/5] GRPO with Geo-R's reward (TRL GRPOTrainer): {cfg.grpo_steps} steps x "
        f"{cfg.grpo_images_per_step} photos x {cfg.num_generations} answers"
        + (
            f", on {cfg.n_rl} GPS-only photos spread {cfg.rl_spread_km:g} km around the training cities"
            if cfg.rl_pool == "spread"
            else (f", on {len(rl_cities)} cities SFT never saw" if rl_cities else "")
        )
    )
    grpo = run_grpo(sft.model_dir, data_dir, cfg)
    done("grpo")

    log(f"[5/5] evaluation: greedy answers on {cfg.n_test} photos of held-out cities")
    records = baseline_records(data, cfg)
    models = {SFT_ONLY: ("sft", sft.model_dir), SFT_GRPO: ("grpo", grpo.model_dir)}
    for name, (short, model) in models.items():
        records[name] = evaluate_model(model, short, cfg, label=f"{name}, held-out cities")
    sampled = []
    if cfg.samples > 1:
        for name, (short, model) in models.items():
            row = sampled_row(name, cfg.samples)
            records[row] = evaluate_model(
                model, short, cfg, samples=cfg.samples, label=f"{row}, held-out cities"
            )
            sampled.append(row)
    seen_rows: dict[str, dict[str, float]] = {}
    if cfg.eval_seen:
        for name, (short, model) in models.items():
            seen = evaluate_model(
                model,
                short,
                cfg,
                split="train",
                limit=cfg.eval_seen,
                label=f"{name}, training cities",
            )
            seen_rows[name] = score(seen)
    photos = write_photos(data, cfg, {name: records[name] for name in MODEL_ROWS})
    done("eval")

    result = DemoResult(
        seed=cfg.seed,
        rows={name: score(records[name]) for name in (*ROWS, *sampled)},
        seen_rows=seen_rows,
        oracles={k: oracle_row(v) for k, v in data.ceilings.get("test", {}).items()},
        seconds=seconds,
        reward_steps=[int(h["step"]) for h in grpo.log_history if "rewards/geor/mean" in h],
        rewards=[float(h["rewards/geor/mean"]) for h in grpo.log_history if "rewards/geor/mean" in h],
        sft_loss=[float(h["loss"]) for h in sft.log_history if "loss" in h],
        rl_cities=rl_cities,
        distances={name: [as_float(r.get("distance_km")) for r in records[name]] for name in ROWS},
        reading={name: tint_reading(records[name], data) for name in MODEL_ROWS},
        map_points={
            name: {
                "true_lat": [float(r["true_lat"]) for r in records[name]],
                "true_lon": [float(r["true_lon"]) for r in records[name]],
                "pred_lat": [as_float(r.get("pred_lat")) for r in records[name]],
                "pred_lon": [as_float(r.get("pred_lon")) for r in records[name]],
            }
            for name in MODEL_ROWS
        },
        photos=photos,
    )
    write_report([result], cfg)
    return result


def run_demo_seeds(cfg: DemoConfig, n_seeds: int = 1, log: Log = print) -> list[DemoResult]:
    """Run seeds ``cfg.seed .. cfg.seed + n_seeds - 1``; one seed writes ``cfg.out``, several
    write ``cfg.out/seed<k>`` each and the combined report (mean ± spread) in ``cfg.out``."""
    t0 = time.perf_counter()
    results = []
    for k in range(n_seeds):
        seed = cfg.seed + k
        one = replace(cfg, seed=seed, out=cfg.out if n_seeds == 1 else cfg.out / f"seed{seed}")
        if n_seeds > 1:
            log(f"=== seed {seed} ({k + 1} of {n_seeds}) ===")
        results.append(run_demo(one, log))
    if n_seeds > 1:
        write_report(results, cfg)
    log("")
    log(render_table(results, markdown=False))
    log("")
    for line in claim_lines(results):
        log(line)
    log(f"\nwall time {time.perf_counter() - t0:.0f} s; report: {cfg.out / REPORT_MD}")
    if results and results[0].photos:
        log(
            f"try the model on {len(results[0].photos)} held-out photos: {locate_command(photo_folder(results, cfg), cfg)}"
        )
    return results


# what commands/demo.py, the tests and benchmarks/ import from georeason.demo
__all__ = [
    "CDF_PNG",
    "COLUMNS",
    "HELD_OUT_COLUMNS",
    "MAP_PNG",
    "N_PHOTOS",
    "ORACLES",
    "PHOTOS_CSV",
    "PHOTOS_DIR",
    "REPORT_MD",
    "RESULTS_JSON",
    "REWARD_PNG",
    "ROWS",
    "SFT_GRPO",
    "SFT_ONLY",
    "DemoConfig",
    "DemoResult",
    "claim_lines",
    "compare",
    "evaluate_model",
    "grpo_config",
    "make_demo_model",
    "make_demo_world",
    "mean_spread",
    "quick_config",
    "render_table",
    "run_demo",
    "run_demo_seeds",
    "run_grpo",
    "run_sft",
    "sampled_row",
    "score",
    "split_training_cities",
    "tint_reading",
    "write_report",
]
