"""Both papers' ablations, end to end, on the synthetic world (issue 17).

Per seed, from one world and one tiny Qwen2.5-VL (the demo's, `georeason.demo`):

Geo-R (arXiv 2601.00388, its ablation on IM2GPS3K):

- **SFT** — the warm start: gold Chain of Region answers of the SFT photos;
- **+ RL random** — GRPO with Geo-R's reward (``geor:1``) on ``n_rl`` photos of the
  candidate pool (``georeason data select --target``);
- **+ RL hard** — ``georeason eval`` of the warm start on the candidate pool, then
  ``georeason data select --correctness RUN --radius-km R --target`` (the same number of
  photos as random), GRPO as above;
- **SFT, same compute** — the warm start's SFT recipe continued on the random arm's
  photos for as many steps as the random arm's GRPO stage cost in CPU seconds.

GLOBE (arXiv 2506.14674, its reward ablation), from a warm start on GLOBE's answer format
(the same photos, steps and recipe as Geo-R's, ``protocol: globe``), GRPO on the random
arm's photos with GLOBE's weights: **accuracy** (``globe_accuracy:1``), **+ locatability**
(``globe_locatability:0.5``, the offline keyword judge that ships), **+ visual**
(``globe_visual:0.2``); ``globe_format:1`` in all three (the format reward is not one of
the three task rewards the paper ablates).

Design, fixed before any test result was seen:

- The world and model are the demo's (`DemoConfig` defaults). Its training split is cut
  by photo into the SFT photos (one training city per region kept out, as in the demo:
  places the warm start cannot name), the **candidate pool** (new photos of every
  training city, RL cities included) and **seen** photos (new photos of training
  cities, never trained on: the only place a city can be named right). The test split
  is the world's held-out cities.
- **R = 2 x jitter_km** (30 km), hotspots at 25 km: Geo-R drops everything near a place
  the warm start already locates. In this world a place is a city whose photos lie in a
  disk of ``jitter_km`` around it, so R is that disk's diameter: one right answer
  anywhere in a city clears the whole city; cities are at least 50 km apart, so a
  hotspot rarely reaches another city's photos.
- Every stage size is the demo's: SFT 500 steps x 16 photos at lr 3e-3 (cosine), GRPO
  100 steps x 4 photos x 8 answers at lr 1e-4, beta 0.04, T = 1, Dr. GRPO advantages;
  the same settings for every GRPO arm, only the rewards and photos differ.
- *Same compute* is measured in CPU seconds (user + system of the training process),
  not wall time: the machine is shared and its load moves between stages.

Metrics, on the held-out cities (greedy answers; GLOBE's names are forward-geocoded by
the evaluation): acc@1/25/200/750/2500 km, median km, GeoScore, country accuracy; city
accuracy on the *seen* photos (a held-out city's name is never taught: 0 % by
construction); the share of clue-less photos whose reasoning says so (the world's "no
geographic clue", `georeason.datasets.synthetic.describe`) and of photos with clues that
say it wrongly; the training reward's mean over the first and last 20 % of steps.

Every stage writes its folder under ``OUT/seed<k>/`` with a ``stage.json`` when it has
finished; a rerun skips finished stages and redoes an unfinished one from scratch.
``OUT/report.md`` (and ``results.json``) holds mean ± std over the seeds that have
finished, beside the papers' rows.

    nohup nice -n 10 python benchmarks/ablations.py --seeds 0 1 2 --out /work/ablations > /work/ablations.log 2>&1 &
    python benchmarks/ablations.py --smoke --seeds 0 --out /tmp/abl_smoke   # every arm, 2 steps each
    python benchmarks/ablations.py --report-only --out /work/ablations      # the tables of finished seeds
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

STAGE_JSON = "stage.json"
RESULTS_JSON = "results.json"
REPORT_MD = "report.md"
THRESHOLDS_KM = (1, 25, 200, 750, 2500)
# synthetic.describe's reasoning for a photo with no clue at all: what "not locatable" reads as here.
NO_CLUE_PHRASE = "no geographic clue"

# Arms: (key, table label, paper). The warm starts are arms too (rows of their tables).
SFT = "sft"
RL_RANDOM = "rl_random"
RL_HARD = "rl_hard"
SFT_COMPUTE = "sft_compute"
GLOBE_BASE = "globe_sft"
GLOBE_ACC = "globe_acc"
GLOBE_ACC_LOC = "globe_acc_loc"
GLOBE_ALL = "globe_all"
GEOR_ARMS = (SFT, RL_RANDOM, RL_HARD, SFT_COMPUTE)
GLOBE_ARMS = (GLOBE_BASE, GLOBE_ACC, GLOBE_ACC_LOC, GLOBE_ALL)
LABELS = {
    SFT: "SFT (warm start)",
    RL_RANDOM: "+ RL random",
    RL_HARD: "+ RL hard",
    SFT_COMPUTE: "SFT, same compute as RL",
    GLOBE_BASE: "SFT on GLOBE's format (base)",
    GLOBE_ACC: "+ GRPO, accuracy",
    GLOBE_ACC_LOC: "+ GRPO, accuracy + locatability",
    GLOBE_ALL: "+ GRPO, accuracy + locatability + visual",
}
# GLOBE's weights (recipes/qwen2_5_vl_7b/globe_grpo.yaml, from the paper): accuracy 1,
# locatability 0.5, visual 0.2, format 1.
GLOBE_REWARDS = {
    GLOBE_ACC: ["globe_accuracy:1", "globe_format:1"],
    GLOBE_ACC_LOC: ["globe_accuracy:1", "globe_locatability:0.5", "globe_format:1"],
    GLOBE_ALL: ["globe_accuracy:1", "globe_locatability:0.5", "globe_visual:0.2", "globe_format:1"],
}
GEOR_REWARDS = ["geor:1"]  # Geo-R's r_dist(d) x r_format, the paper's product

# The papers' own rows (Geo-R on IM2GPS3K: acc@1/25/200/750/2500 km; GLOBE on its
# MP16-Reason test split: acc@25/200 km), as issue 17 quotes them.
PAPER_GEOR = {
    SFT: (12.6, 31.7, 50.2, 70.3, 84.3),
    RL_RANDOM: (13.3, 32.4, 51.6, 71.3, 82.3),
    RL_HARD: (14.8, 36.3, 54.6, 72.7, 83.8),
}
PAPER_GLOBE = {
    GLOBE_BASE: (None, 51.11, 61.29, None, None),
    GLOBE_ACC: (None, 59.24, 71.93, None, None),
    GLOBE_ACC_LOC: (None, 59.83, 72.22, None, None),
    GLOBE_ALL: (None, 62.85, 73.83, None, None),
}


@dataclass
class Sizes:
    """Every size of one seed's run; the defaults are the full run's (the demo's stages)."""

    n_sft_photos: int = 2000  # training-split photos cut for SFT (RL cities' photos then left out)
    n_pool: int = 1600  # candidate pool: new photos of every training city
    n_seen: int = 200  # new photos of training cities, evaluated only
    n_rl: int = 300  # photos of each RL arm (random and hard: the same number)
    hotspot_km: float = 25.0  # a warm-start answer this close is "right" (Geo-R's hotspots)
    radius_factor: float = 2.0  # R = radius_factor x jitter_km (see the module docstring)
    demo: dict[str, Any] = field(default_factory=dict)  # DemoConfig overrides (world, model, stages)


def smoke_sizes() -> Sizes:
    """Every arm, 2 training steps each, a handful of photos (tests; the numbers mean nothing)."""
    return Sizes(
        n_sft_photos=32,
        n_pool=24,
        n_seen=0,
        n_rl=4,
        demo={
            "n_test": 8,
            "n_countries": 3,
            "cities_per_admin1": 3,
            "image_size": 56,
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "vocab_size": 600,
            "sft_steps": 2,
            "sft_batch_size": 4,
            "grpo_steps": 2,
            "num_generations": 2,
            "grpo_images_per_step": 1,
            "max_completion_length": 32,
            "max_new_tokens": 32,
            "eval_batch_size": 8,
        },
    )


def demo_config(sizes: Sizes, seed: int, out: Path) -> Any:
    from georeason.demo import DemoConfig

    cfg = replace(DemoConfig(out=out, seed=seed, progress=False), **sizes.demo)
    return replace(cfg, n_train=sizes.n_sft_photos + sizes.n_pool + sizes.n_seen)


# --------------------------------------------------------------------------------------
# Stages: a folder each, finished when stage.json is there
# --------------------------------------------------------------------------------------


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _code_version() -> dict[str, Any]:
    """The commit the run's code came from and how many files differed from it (the
    checkout is shared; a stage records what it ran)."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"commit": head.stdout.strip(), "modified_files": len(dirty.stdout.splitlines())}


def stage(
    folder: Path,
    run: Callable[[Path], dict[str, Any] | None],
    log: Callable[[str], None],
    *,
    retries: int = 0,
    wait_s: float = 150.0,
) -> dict[str, Any]:
    """Run ``run(folder)`` unless ``folder/stage.json`` says it finished; return that record
    (whatever ``run`` returned, plus wall and CPU seconds, the code's commit, the load).

    A failed stage is started again from nothing up to ``retries`` times, ``wait_s`` apart:
    a long run spawns each stage from a checkout others may be editing, and a module
    caught mid-edit is back a few minutes later."""
    marker = folder / STAGE_JSON
    if marker.is_file():
        return dict(json.loads(marker.read_text()))
    for attempt in range(retries + 1):
        if folder.exists():  # an unfinished stage: start it again from nothing
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        log(f"  {folder.name} ...")
        t0, c0 = time.perf_counter(), _cpu_seconds()
        try:
            info = dict(run(folder) or {})
            break
        except Exception as e:
            if attempt == retries:
                raise
            log(f"  {folder.name} failed ({type(e).__name__}: {str(e)[-500:]}); again in {wait_s:.0f} s")
            time.sleep(wait_s)
    info["seconds"] = round(time.perf_counter() - t0, 1)
    info["cpu_seconds"] = round(_cpu_seconds() - c0, 1)
    info["load_average"] = round(os.getloadavg()[0], 2)
    info["code"] = _code_version()
    tmp = folder / (STAGE_JSON + ".tmp")
    tmp.write_text(json.dumps(info, indent=1) + "\n")
    os.replace(tmp, marker)
    log(f"  {folder.name}: {info['seconds']:.0f} s wall, {info['cpu_seconds']:.0f} s CPU")
    return info


def georeason(args: Sequence[object], folder: Path) -> None:
    """``python -m georeason ARGS``, its output in ``folder/log.txt``; raises on failure."""
    cmd = [sys.executable, "-m", "georeason", *map(str, args)]
    log_file = folder / "log.txt"
    with log_file.open("a", encoding="utf-8") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=os.environ.copy()).returncode
    if rc != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(
            f"georeason {' '.join(map(str, args[:2]))} failed (exit {rc}); {log_file}:\n{tail}"
        )


def _cpu_args(cfg: Any, logging_steps: int) -> dict[str, Any]:
    # The demo's CPU TrainingArguments (georeason.demo.stages._cpu_args), as recipe keys.
    return {
        "use_cpu": True,
        "bf16": False,
        "activation_checkpointing": False,
        "dataloader_num_workers": 0,
        "report_to": [],
        "save_strategy": "no",
        "logging_steps": logging_steps,
        "disable_tqdm": True,
        "seed": cfg.seed,
    }


def train(kind: str, recipe: dict[str, Any], folder: Path) -> None:
    """``georeason train sft|grpo --config folder/recipe.yaml`` (the model goes to folder/model)."""
    import yaml

    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    georeason(["train", kind, "--config", path], folder)


def sft_recipe(
    cfg: Any, model: Path, data: Path, split: str, protocol: str, steps: int, out: Path
) -> dict[str, Any]:
    """The demo's SFT stage (georeason.demo.run_sft) as a recipe."""
    return {
        "model_name_or_path": str(model),
        "dataset_name": str(data),
        "dataset_split": split,
        "protocol": protocol,
        "output_dir": str(out),
        "max_steps": steps,
        "per_device_train_batch_size": cfg.sft_batch_size,
        "learning_rate": cfg.sft_lr,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.05,
        "max_length": None,
        **_cpu_args(cfg, logging_steps=max(1, steps // 25)),
    }


def grpo_recipe(
    cfg: Any, model: Path, data: Path, split: str, protocol: str, rewards: list[str], out: Path
) -> dict[str, Any]:
    """The demo's GRPO stage (georeason.demo.grpo_config) as a recipe, with these rewards."""
    recipe: dict[str, Any] = {
        "model_name_or_path": str(model),
        "dataset_name": str(data),
        "dataset_split": split,
        "protocol": protocol,
        "rewards": rewards,
        "output_dir": str(out),
        "max_steps": cfg.grpo_steps,
        "num_generations": cfg.num_generations,
        "per_device_train_batch_size": cfg.num_generations * cfg.grpo_images_per_step,
        "max_completion_length": cfg.max_completion_length,
        "temperature": cfg.temperature,
        "beta": cfg.beta,
        "scale_rewards": cfg.scale_rewards,
        "learning_rate": cfg.grpo_lr,
        "lr_scheduler_type": "constant",
        "generation_kwargs": {"use_cache": True},
        **_cpu_args(cfg, logging_steps=1),
    }
    if any(r.startswith("globe_locatability") for r in rewards):
        recipe["reward_options"] = {"globe_locatability": {"judge": "keyword"}}
    return recipe


def evaluate(cfg: Any, model: Path, data: Path, split: str, protocol: str, folder: Path) -> None:
    """``georeason eval`` of a model on a split (greedy), into folder/run."""
    georeason(
        [
            "eval",
            "--benchmark", "synthetic",
            "--data", data,
            "--benchmark-option", f"split={split}",
            "--model", model,
            "--protocol", protocol,
            "--out", folder / "run",
            "--batch-size", cfg.eval_batch_size,
            "--max-new-tokens", cfg.max_new_tokens,
            "--bootstrap", 0,
            "--no-plots",
            "--no-progress",
        ],
        folder,
    )  # fmt: skip


def select(
    data: Path,
    out: Path,
    target: int,
    seed: int,
    folder: Path,
    correctness: Path | None = None,
    **hard: float,
) -> int:
    """``georeason data select`` of the pool (hard set when ``correctness`` is given); returns its rows."""
    import datasets

    args: list[object] = ["data", "select", data, "--split", "pool", "--out", out, "--target", target]
    args += ["--seed", seed, "--no-plot"]
    if correctness is not None:
        args += ["--correctness", correctness, "--threshold-km", hard["threshold_km"]]
        args += ["--radius-km", hard["radius_km"]]
    georeason(args, folder)
    return len(datasets.load_from_disk(str(out))["pool"])


# --------------------------------------------------------------------------------------
# One seed
# --------------------------------------------------------------------------------------


def make_world(cfg: Any, sizes: Sizes, folder: Path) -> dict[str, Any]:
    """The demo's world and model; the training split cut by photo into sft / pool / seen."""
    from datasets import DatasetDict

    from georeason.demo import make_demo_model, make_demo_world

    wcfg = replace(cfg, out=folder)
    data = make_demo_world(wcfg)  # folder/world
    make_demo_model(data, wcfg)  # folder/model
    train = data.datasets["train"]
    # One training city per region kept out of SFT (the demo's rule and random stream).
    rng = np.random.default_rng([cfg.seed, 11])
    regions: dict[tuple[str, str], list[str]] = {}
    for p in data.world.split_places("train"):
        regions.setdefault((p.country_code, p.admin1), []).append(p.city)
    rl_cities = {
        (cc, a1, cities[j])
        for (cc, a1), cities in sorted(regions.items())
        for j in rng.permutation(len(cities))[: cfg.rl_cities_per_admin1]
    }
    keys = list(zip(train["country_code"], train["admin1"], train["city"], strict=True))
    n_sft, n_pool = sizes.n_sft_photos, sizes.n_pool
    # The world cycles its cities photo by photo, so each cut covers every city evenly.
    sft = [i for i in range(n_sft) if keys[i] not in rl_cities]
    splits = {
        "sft": train.select(sft),
        "pool": train.select(range(n_sft, n_sft + n_pool)),
    }
    if sizes.n_seen:
        splits["seen"] = train.select(range(n_sft + n_pool, n_sft + n_pool + sizes.n_seen))
    DatasetDict(splits).save_to_disk(str(folder / "data"))
    return {
        "rl_cities": sorted(f"{city} ({cc})" for cc, _, city in rl_cities),
        "photos": {k: len(v) for k, v in splits.items()},
        "test_photos": len(data.datasets["test"]),
        "jitter_km": cfg.jitter_km,
    }


def run_seed(
    seed: int, sizes: Sizes, out: Path, log: Callable[[str], None], retries: int = 0
) -> dict[str, Any]:
    """Every stage of one seed (finished ones skipped); writes and returns ``results.json``."""
    root = out / f"seed{seed}"
    cfg = demo_config(sizes, seed, root)
    log(f"=== seed {seed}: {root}")
    stages: dict[str, dict[str, Any]] = {}

    def st(name: str, run: Callable[[Path], dict[str, Any] | None]) -> dict[str, Any]:
        stages[name] = stage(root / name, run, log, retries=retries)
        return stages[name]

    w = st("world", lambda f: make_world(cfg, sizes, f))
    world, data, model = root / "world" / "world", root / "world" / "data", root / "world" / "model"
    radius_km = sizes.radius_factor * float(w["jitter_km"])
    m = {arm: root / arm / "model" for arm in (*GEOR_ARMS, *GLOBE_ARMS)}
    protocol = {arm: "globe" if arm in GLOBE_ARMS else "geor" for arm in m}
    rl_data = {RL_RANDOM: root / "select_random" / "data", RL_HARD: root / "select_hard" / "data"}

    def warm_start(arm: str) -> Callable[[Path], None]:
        # Geo-R's Chain of Region and GLOBE's format: the same photos, steps and recipe.
        return lambda f: train(
            "sft", sft_recipe(cfg, model, data, "sft", protocol[arm], cfg.sft_steps, f / "model"), f
        )

    def grpo(arm: str, start: str, photos: str, rewards: list[str]) -> Callable[[Path], None]:
        recipe = grpo_recipe(
            cfg, m[start], rl_data[photos], "pool", protocol[arm], rewards, root / arm / "model"
        )
        return lambda f: train("grpo", recipe, f)

    def select_hard(f: Path) -> dict[str, Any]:
        # Geo-R: the warm start's answers on the pool -> hotspots -> drop within R -> n_rl.
        hotspots = {"threshold_km": sizes.hotspot_km, "radius_km": radius_km}
        rows = select(data, f / "data", sizes.n_rl, seed, f, root / "eval_pool" / "run", **hotspots)
        return {"rows": rows, **hotspots}

    for arm in (SFT, GLOBE_BASE):
        st(arm, warm_start(arm))
    st("eval_pool", lambda f: evaluate(cfg, m[SFT], data, "pool", "geor", f))
    # Fewer than sizes.n_rl when the hard set is smaller: random takes as many.
    n_rl = int(st("select_hard", select_hard)["rows"])
    st("select_random", lambda f: {"rows": select(data, f / "data", n_rl, seed, f)})
    for arm in (RL_RANDOM, RL_HARD):
        st(arm, grpo(arm, SFT, arm, GEOR_REWARDS))

    # SFT for the random arm's GRPO compute: its CPU seconds / the warm start's per step.
    per_step = stages[SFT]["cpu_seconds"] / cfg.sft_steps
    steps = max(1, round(stages[RL_RANDOM]["cpu_seconds"] / per_step))

    def same_compute(f: Path) -> dict[str, Any]:
        train("sft", sft_recipe(cfg, m[SFT], rl_data[RL_RANDOM], "pool", "geor", steps, f / "model"), f)
        return {"steps": steps, "sft_cpu_seconds_per_step": round(per_step, 3)}

    st(SFT_COMPUTE, same_compute)
    for arm, rewards in GLOBE_REWARDS.items():
        st(arm, grpo(arm, GLOBE_BASE, RL_RANDOM, rewards))

    # Evaluation: held-out cities (the world's test split) and seen photos of training cities.
    def evaluation(arm: str, photos: Path, split: str) -> Callable[[Path], None]:
        return lambda f: evaluate(cfg, m[arm], photos, split, protocol[arm], f)

    rows: dict[str, dict[str, Any]] = {}
    for arm in m:
        st(f"eval_{arm}", evaluation(arm, world, "test"))
        row = metrics(root / f"eval_{arm}" / "run", world / "test")
        if sizes.n_seen:
            st(f"eval_{arm}_seen", evaluation(arm, data, "seen"))
            seen = metrics(root / f"eval_{arm}_seen" / "run", data / "seen")
            row.update({f"seen_{k}": v for k, v in seen.items()})
        row.update(reward_trend(m[arm] / "train_log.jsonl"))
        rows[arm] = row

    seconds = {k: float(v["seconds"]) for k, v in stages.items()}
    result = {
        "seed": seed,
        "sizes": asdict(sizes),
        "radius_km": radius_km,
        "rl_photos": n_rl,
        "sft_compute_steps": stages[SFT_COMPUTE].get("steps"),
        "rows": rows,
        "seconds": seconds,
        "cpu_seconds": {k: v["cpu_seconds"] for k, v in stages.items()},
        "world": w,
    }
    (root / RESULTS_JSON).write_text(json.dumps(_finite(result), indent=1) + "\n")
    log(f"=== seed {seed} done: {sum(seconds.values()):.0f} s of stages (this run and any earlier one)")
    return result


# --------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------


def metrics(run: Path, split_dir: Path) -> dict[str, float]:
    """One arm on one split: the evaluation's report.json plus the locatability shares."""
    import datasets

    report = json.loads((run / "report.json").read_text())
    m = report["metrics"]
    named = (report.get("hierarchy") or {}).get("named") or {}
    row = {f"acc@{t}km": 100.0 * _num(m["accuracy"][f"acc@{t}km"]["value"]) for t in THRESHOLDS_KM}
    row["median_km"] = _num(m["median_km"]["value"])
    row["geoscore"] = _num(m["geoscore"]["value"])
    for level in ("country", "city"):
        row[f"{level}_acc"] = 100.0 * _num(((named.get(level) or {}).get("accuracy") or {}).get("value"))
    # Locatability: does the reasoning say "no geographic clue" where there is none (and only there)?
    split = datasets.Dataset.load_from_disk(str(split_dir))
    locatable = dict(zip(split["id"], split["locatable"], strict=True))
    said: dict[bool, list[bool]] = {True: [], False: []}
    with (run / "predictions.jsonl").open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if str(r.get("id")) in locatable:
                text = (r.get("completion") or "").lower()
                said[bool(locatable[str(r["id"])])].append(NO_CLUE_PHRASE in text)
    row["clueless_called_unlocatable"] = 100.0 * float(np.mean(said[False])) if said[False] else math.nan
    row["clue_called_unlocatable"] = 100.0 * float(np.mean(said[True])) if said[True] else math.nan
    return row


def reward_trend(train_log: Path) -> dict[str, float]:
    """Mean training reward (the weighted sum TRL logs) over the first and last 20 % of steps."""
    if not train_log.is_file():
        return {}
    rewards = []
    for line in train_log.read_text().splitlines():
        h = json.loads(line)
        if "reward" in h:
            rewards.append(float(h["reward"]))
    if not rewards:
        return {}
    k = max(1, len(rewards) // 5)
    return {"reward_first": float(np.mean(rewards[:k])), "reward_last": float(np.mean(rewards[-k:]))}


def _num(x: Any) -> float:
    return math.nan if x is None else float(x)


def _finite(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def mean_std(values: Sequence[float | None]) -> tuple[float, float]:
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan


def cell(values: Sequence[float | None], digits: int = 1) -> str:
    m, s = mean_std(values)
    if not math.isfinite(m):
        return "—"
    fmt = f"{{:,.{digits}f}}"
    return fmt.format(m) + ("" if not math.isfinite(s) else " ± " + fmt.format(s))


ACC_COLS = [(f"acc@{t}km", f"@{t} km", 1) for t in THRESHOLDS_KM]
COMMON_COLS = [*ACC_COLS, ("median_km", "median km", 0), ("geoscore", "GeoScore", 0)]


def table(
    results: Sequence[dict[str, Any]],
    arms: Sequence[str],
    papers: Mapping[str, Sequence[float | None]],
    globe: bool,
) -> list[str]:
    cols = [*COMMON_COLS, ("country_acc", "country %", 1), ("seen_city_acc", "city % (seen)", 1)]
    if globe:
        cols += [
            ("clueless_called_unlocatable", "clue-less called not locatable %", 1),
            ("clue_called_unlocatable", "with clues called not locatable %", 1),
        ]
    head = ["arm", *[c[1] for c in cols], "train reward, first → last 20 %"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm in arms:
        rows = [r["rows"][arm] for r in results if arm in r["rows"]]
        cells = [cell([row.get(k) for row in rows], d) for k, _, d in cols]
        first, last = (
            mean_std([row.get("reward_first") for row in rows]),
            mean_std([row.get("reward_last") for row in rows]),
        )
        trend = f"{first[0]:.3f} → {last[0]:.3f}" if math.isfinite(first[0]) else "—"
        lines.append(f"| {LABELS[arm]} | " + " | ".join(cells) + f" | {trend} |")
    for arm, accs in papers.items():
        acc = [("—" if a is None else f"{a:g}") for a in accs]
        lines.append(
            f"| *paper:* {LABELS[arm]} | " + " | ".join(acc) + " |" + " |" * (len(head) - 1 - len(acc))
        )
    return lines


def render(results: Sequence[dict[str, Any]]) -> str:
    seeds = ", ".join(str(r["seed"]) for r in results)
    r0 = results[0]
    lines = [
        "# Both papers' ablations on the synthetic world",
        "",
        f"Seeds: {seeds} (mean ± sample std over seeds; one seed: no spread). Held-out cities "
        f"({r0['world']['test_photos']} photos a seed) unless the column says *seen* (photos of training "
        "cities never trained on). Accuracies in %. R = "
        f"{r0['radius_km']:g} km, {r0['rl_photos']} photos per RL arm. The papers' rows are on their own "
        "benchmarks (Geo-R: IM2GPS3K; GLOBE: MP16-Reason test) with a 7B model: compare directions, not levels.",
        "",
        "## Geo-R: SFT, + RL random, + RL hard, SFT for the same compute",
        "",
        *table(results, GEOR_ARMS, PAPER_GEOR, globe=False),
        "",
        "## GLOBE: accuracy, + locatability, + visual (GLOBE's weights)",
        "",
        *table(results, GLOBE_ARMS, PAPER_GLOBE, globe=True),
        "",
        "## Time per seed (wall seconds of each stage; CPU seconds in results.json)",
        "",
    ]
    stage_names = list(r0["seconds"])
    lines += ["| seed | " + " | ".join(stage_names) + " | total |", "|" + "---|" * (len(stage_names) + 2)]
    for r in results:
        sec = r["seconds"]
        lines.append(
            f"| {r['seed']} | "
            + " | ".join(f"{sec.get(s, math.nan):.0f}" for s in stage_names)
            + f" | {sum(sec.values()):.0f} |"
        )
    lines += [
        "",
        f"SFT same-compute steps per seed: {', '.join(str(r['sft_compute_steps']) for r in results)}.",
        "",
    ]
    return "\n".join(lines)


def write_report(out: Path) -> str | None:
    """``OUT/report.md`` and ``OUT/results.json`` from every seed folder that has finished."""
    results = [json.loads(p.read_text()) for p in sorted(out.glob(f"seed*/{RESULTS_JSON}"))]
    if not results:
        return None
    text = render(results)
    (out / REPORT_MD).write_text(text)
    (out / RESULTS_JSON).write_text(json.dumps(results, indent=1) + "\n")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=Path("runs/ablations"))
    ap.add_argument("--smoke", action="store_true", help="every arm, 2 training steps, a handful of photos")
    ap.add_argument("--report-only", action="store_true", help="only write the tables of the finished seeds")
    ap.add_argument(
        "--retries",
        type=int,
        default=None,
        help="start a failed stage again this often (default: 8; --smoke: 0)",
    )
    args = ap.parse_args(argv)

    def log(s: str) -> None:
        print(time.strftime("%H:%M:%S"), s, flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        sizes = smoke_sizes() if args.smoke else Sizes()
        for seed in args.seeds:
            t0 = time.perf_counter()
            retries = args.retries if args.retries is not None else (0 if args.smoke else 8)
            run_seed(seed, sizes, args.out, log, retries=retries)
            log(
                f"seed {seed}: {time.perf_counter() - t0:.0f} s in this run; load average {os.getloadavg()[0]:.2f}"
            )
            write_report(args.out)  # the finished seeds' tables, after each seed
    text = write_report(args.out)
    print(text or f"no finished seed under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
