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

import json
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from georeason.types import PLACE_LEVELS

PROTOCOL = "geor"  # Geo-R's Chain of Region answer
REWARDS = ["geor:1"]  # Geo-R's reward: r_dist(d) x r_format, one function (the paper's product)
THRESHOLDS_KM = (1.0, 25.0, 200.0, 750.0, 2500.0)

REPORT_MD = "report.md"
RESULTS_JSON = "results.json"
REWARD_PNG = "reward_curve.png"
CDF_PNG = "error_cdf.png"
MAP_PNG = "world_map.png"
PHOTOS_DIR = "photos"  # a few held-out photos as PNGs (GPS in EXIF), for `georeason locate`
PHOTOS_CSV = "truth.csv"
N_PHOTOS = 6

# Rows of the comparison table, in order.
RANDOM_LAND = "random point on land"
COMMON_CITY = "most common training city"
SFT_ONLY = "SFT only"
SFT_GRPO = "SFT + GRPO"
ROWS = (RANDOM_LAND, COMMON_CITY, SFT_ONLY, SFT_GRPO)
MODEL_ROWS = (SFT_ONLY, SFT_GRPO)
# The world's oracles (docs/synthetic_world.md), each row named as the report's text names it.
ORACLES = {
    "namer": "oracle namer: best seen city, tint not read",
    "centre": "oracle centre: middle of the seen cities, tint not read",
    "snap": "oracle snap: seen city nearest the tint",
    "reader": "oracle reader: the tint's position (ceiling)",
}

# (key in a row's metrics, column header, format)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("acc@1km", "acc@1 km", "pct"),
    ("acc@25km", "acc@25 km", "pct"),
    ("acc@200km", "acc@200 km", "pct"),
    ("acc@750km", "acc@750 km", "pct"),
    ("acc@2500km", "acc@2500 km", "pct"),
    ("median_km", "median km", "km"),
    ("geoscore", "GeoScore", "score"),
    ("country_acc", "country", "pct"),
    ("admin1_acc", "admin1", "pct"),
    ("city_acc", "city", "pct"),
    ("format_ok", "format ok", "pct"),
)
# The held-out table leaves out `city`: a held-out city is never named in training, so
# no model or oracle can name it (0 % by construction). The training-city table keeps it.
HELD_OUT_COLUMNS = tuple(c for c in COLUMNS if c[0] != "city_acc")
# The claim under test: GRPO beats SFT on either of these (True: higher is better).
CLAIM_METRICS = (("acc@25km", True), ("median_km", False))

Log = Callable[[str], None]


# --------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------


@dataclass
class DemoConfig:
    """Every knob of the demo; the defaults are the README's run."""

    out: Path = field(
        default=Path("runs/demo"),
        metadata={"help": "Output folder (report.md, PNGs, models).", "aliases": ["-o"]},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the world's split, photos, weights, training."})
    # --- the world (georeason.datasets.synthetic.generate_world)
    n_train: int = field(default=2000, metadata={"help": "Training images (at least 16)."})
    n_test: int = field(default=400, metadata={"help": "Held-out-city test images (at least 8)."})
    # 112 px = 16 visual tokens. At 56 px (4 tokens) the model misread banners (France
    # named for 71 of 400 photos, 33 French) and GRPO sharpened those confusions.
    image_size: int = field(default=112, metadata={"help": "Side of the square photos, px."})
    n_countries: int = field(default=12, metadata={"help": "Countries of the world."})
    admin1_per_country: int = field(default=2, metadata={"help": "Regions (admin1) per country."})
    cities_per_admin1: int = field(default=5, metadata={"help": "Cities per region."})
    # Photos spread 15 km around their city (default 5): the road tint, and so the gold
    # coordinates, vary continuously within a city, which teaches the continuous clue.
    jitter_km: float = field(default=15.0, metadata={"help": "Spread of the photos around their city, km."})
    # Landmarks drawn in 30% of photos (default 85%): in most photos only the road tint
    # tells the cities of a region apart, as it must for a held-out city.
    landmark_rate: float = field(default=0.3, metadata={"help": "Share of photos that show a landmark."})
    # --- the model (georeason.models.build_tiny_vlm)
    hidden_size: int = field(default=128, metadata={"help": "Text hidden size of the tiny VLM."})
    num_hidden_layers: int = field(default=2, metadata={"help": "Text decoder layers of the tiny VLM."})
    vocab_size: int = field(default=1024, metadata={"help": "BPE vocabulary size of the tiny VLM."})
    # --- SFT warm start
    sft_steps: int = field(default=500, metadata={"help": "SFT optimizer steps."})
    sft_batch_size: int = field(default=16, metadata={"help": "SFT images per step."})
    sft_lr: float = field(default=3e-3, metadata={"help": "SFT learning rate."})
    # --- GRPO
    # Geo-R's hard RL data: k training cities per region kept out of SFT, for GRPO only
    # (0: both stages on every training photo).
    rl_cities_per_admin1: int = field(
        default=1, metadata={"help": "Training cities per region kept out of SFT, for GRPO only (0: none)."}
    )
    # GRPO's photos: "spread" = GPS-only photos anywhere within rl_spread_km of the training
    # cities (synthetic.draw_spread_photos: the land between cities, where held-out cities
    # lie); "cities" = the training photos of the cities kept out of SFT.
    rl_pool: str = field(
        default="cities",
        metadata={
            "help": "GRPO's photos: cities (those of the cities kept out of SFT) or spread (GPS-only photos "
            "within rl_spread_km of the training cities)."
        },
    )
    rl_spread_km: float = field(
        default=75.0, metadata={"help": "With rl_pool spread: how far from a city, km."}
    )
    n_rl: int = field(default=400, metadata={"help": "With rl_pool spread: GRPO photos drawn."})
    grpo_steps: int = field(default=100, metadata={"help": "GRPO optimizer steps."})
    num_generations: int = field(default=8, metadata={"help": "GRPO group size (answers per image)."})
    grpo_images_per_step: int = field(default=4, metadata={"help": "GRPO images per step."})
    grpo_lr: float = field(default=1e-4, metadata={"help": "GRPO learning rate."})
    # KL to the SFT model (DeepSeekMath's 0.04): the reward scores only the coordinates,
    # so without it the clue words drift and the greedy reading gets worse.
    beta: float = field(default=0.04, metadata={"help": "GRPO's KL coefficient to the SFT model."})
    temperature: float = field(default=1.0, metadata={"help": "GRPO's sampling temperature."})
    scale_rewards: str = field(  # Dr. GRPO: advantages r - mean(group), not divided by the std
        default="none", metadata={"help": "TRL's scale_rewards: none, group or batch."}
    )
    top_entropy_quantile: float = field(
        default=1.0,
        metadata={"help": "TRL's top_entropy_quantile: train on the highest-entropy tokens only."},
    )
    # GRPO trains the language model only (VLM-R1's --freeze_vision_modules): the reward
    # scores coordinates, and updating the vision tower from it blurs the clue reading.
    grpo_freeze_vision: bool = field(default=False, metadata={"help": "Freeze the vision tower during GRPO."})
    max_completion_length: int = field(  # gold answers: ~65 tokens, the longest ~85
        default=100, metadata={"help": "GRPO's longest completion, in tokens (at least 16)."}
    )
    # --- evaluation
    eval_batch_size: int = field(default=50, metadata={"help": "Images per evaluation batch."})
    max_new_tokens: int = field(
        default=100, metadata={"help": "Longest evaluation answer, in tokens (at least 16)."}
    )
    eval_seen: int = field(
        default=200, metadata={"help": "Also evaluate on this many training photos (0: skip)."}
    )
    # costs ~K x the greedy evaluation (the self-consistency page under docs/experiments/)
    samples: int = field(
        default=0,
        metadata={
            "help": "Also answer each test photo with K >= 2 sampled chains (T 0.7) and their medoid "
            "(self-consistency): one more row per model; costs about K times the greedy evaluation (0: off)."
        },
    )
    progress: bool = field(default=True, metadata={"help": "Progress bars."})

    @property
    def n_places(self) -> int:
        return self.n_countries * self.admin1_per_country * self.cities_per_admin1

    def check(self) -> None:
        """Clear errors for settings that cannot work."""
        if self.grpo_steps < 1 or self.sft_steps < 1:
            raise ValueError("sft_steps and grpo_steps must be >= 1")
        if self.num_generations < 2:
            raise ValueError("num_generations must be >= 2: GRPO's advantage compares answers within a group")
        if self.rl_cities_per_admin1 < 0:
            raise ValueError("rl_cities_per_admin1 must be >= 0")
        if self.rl_pool not in ("spread", "cities"):
            raise ValueError(f"rl_pool must be 'spread' or 'cities', got {self.rl_pool!r}")
        if self.rl_pool == "spread" and (self.n_rl < 1 or self.rl_spread_km <= 0):
            raise ValueError("with rl_pool='spread', n_rl must be >= 1 and rl_spread_km > 0")
        n_test = max(1, round(0.25 * self.cities_per_admin1))
        if self.cities_per_admin1 - n_test - self.rl_cities_per_admin1 < 1:
            raise ValueError(
                f"cities_per_admin1={self.cities_per_admin1} leaves no SFT city per region after {n_test} "
                f"held out and {self.rl_cities_per_admin1} for GRPO; raise cities_per_admin1 or lower "
                "rl_cities_per_admin1"
            )
        if self.max_completion_length < 16 or self.max_new_tokens < 16:
            raise ValueError("max_completion_length and max_new_tokens must be >= 16")
        if self.n_train < 16:
            raise ValueError(f"n_train must be >= 16, got {self.n_train}")
        if self.n_test < 8:
            raise ValueError(f"n_test must be >= 8, got {self.n_test}")
        if self.samples == 1 or self.samples < 0:
            raise ValueError(f"samples must be 0 (off) or >= 2, got {self.samples}")


def quick_config(out: Path = Path("runs/demo"), seed: int = 0) -> DemoConfig:
    """Every stage, a few steps each (tests and smoke checks; the numbers mean nothing)."""
    return DemoConfig(
        out=out,
        seed=seed,
        n_train=64,
        n_test=24,
        n_countries=6,
        cities_per_admin1=3,
        image_size=56,
        hidden_size=32,
        num_hidden_layers=1,
        vocab_size=600,
        sft_steps=6,
        sft_batch_size=8,
        grpo_steps=2,
        num_generations=4,
        grpo_images_per_step=1,
        n_rl=16,
        max_completion_length=48,
        eval_batch_size=24,
        max_new_tokens=48,
        eval_seen=8,
    )


def _cpu_args(cfg: DemoConfig, logging_steps: int) -> dict[str, Any]:
    """TrainingArguments of a CPU run: fp32 (bf16 autocast is slower on CPUs), no
    checkpoints (the run is minutes long), no tracker (train_log.jsonl keeps the logs)."""
    return {
        "use_cpu": True,
        "bf16": False,
        "activation_checkpointing": False,
        "dataloader_num_workers": 0,
        "report_to": [],
        "save_strategy": "no",
        "logging_steps": logging_steps,
        "disable_tqdm": not cfg.progress,
        "seed": cfg.seed,
    }


# --------------------------------------------------------------------------------------
# 1. The world
# --------------------------------------------------------------------------------------


def make_demo_world(cfg: DemoConfig) -> Any:
    """Generate the synthetic world, save it to ``out/world``; return the :class:`SyntheticData`."""
    from georeason.datasets.synthetic import ClueRates, generate_world, save_world

    data = generate_world(
        cfg.n_train,
        cfg.n_test,
        seed=cfg.seed,
        image_size=cfg.image_size,
        n_places=cfg.n_places,
        n_countries=cfg.n_countries,
        admin1_per_country=cfg.admin1_per_country,
        jitter_km=cfg.jitter_km,
        clue_rates=ClueRates(landmark=cfg.landmark_rate),
    )
    save_world(data, cfg.out / "world")
    return data


def split_training_cities(data: Any, cfg: DemoConfig) -> tuple[Path, list[str]]:
    """Write the SFT and GRPO training sets (splits ``sft`` / ``rl``) to ``out/train_data``.

    With ``rl_cities_per_admin1 = k > 0``, k training cities per region are kept out
    of SFT and given to GRPO only: Geo-R's "hard" RL data (places the warm-started
    model cannot name), which look to it like the held-out test cities do. With
    k = 0 SFT sees every training photo. GRPO's split is those cities' photos
    (``rl_pool="cities"``) or ``n_rl`` GPS-only photos spread ``rl_spread_km`` around
    every training city (``rl_pool="spread"``, :func:`~georeason.datasets.synthetic.draw_spread_photos`).
    Returns the folder and the cities kept out of SFT.
    """
    from datasets import DatasetDict

    train = data.datasets["train"]
    out = cfg.out / "train_data"
    spread = None
    if cfg.rl_pool == "spread":
        from georeason.datasets.synthetic import draw_spread_photos

        # Default clue rates, as the demo's world (it changes only landmark_rate; the pool draws none).
        spread = draw_spread_photos(
            data.world, cfg.n_rl, radius_km=cfg.rl_spread_km, image_size=cfg.image_size
        )
    k = cfg.rl_cities_per_admin1
    if k == 0:
        DatasetDict({"sft": train, "rl": train if spread is None else spread}).save_to_disk(str(out))
        return out, []
    rng = np.random.default_rng([cfg.seed, 11])  # its own stream: the world's draws stay as they are
    regions: dict[tuple[str, str], list[str]] = {}
    for p in data.world.split_places("train"):
        regions.setdefault((p.country_code, p.admin1), []).append(p.city)
    rl: set[tuple[str, str, str]] = set()
    for (cc, a1), cities in sorted(regions.items()):
        for j in rng.permutation(len(cities))[:k]:
            rl.add((cc, a1, cities[j]))
    keys = zip(train["country_code"], train["admin1"], train["city"], strict=True)
    is_rl = np.array([key in rl for key in keys])
    DatasetDict(
        {
            "sft": train.select(np.flatnonzero(~is_rl).tolist()),
            "rl": train.select(np.flatnonzero(is_rl).tolist()) if spread is None else spread,
        }
    ).save_to_disk(str(out))
    return out, sorted(f"{city} ({cc})" for cc, _, city in rl)


# --------------------------------------------------------------------------------------
# 2. The model
# --------------------------------------------------------------------------------------


def make_demo_model(data: Any, cfg: DemoConfig) -> Path:
    """A tiny random-weight Qwen2.5-VL whose tokenizer knows the world's words."""
    from georeason.models import build_tiny_vlm, default_corpus

    pixels = cfg.image_size * cfg.image_size
    return build_tiny_vlm(
        cfg.out / "model",
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_hidden_layers,
        min_pixels=pixels,
        max_pixels=pixels,
        seed=cfg.seed,
        # Fewer gazetteer places than the default corpus (the same kinds of text, seconds
        # less); the training photos' reasoning makes the world's clue words whole tokens.
        corpus=default_corpus(max_places=3000, answers_per_protocol=300),
        extra_text=[t for t in data.datasets["train"]["reasoning"] if t],
    )


# --------------------------------------------------------------------------------------
# 3. SFT warm start, 4. GRPO -- TRL's trainers through georeason.train
# --------------------------------------------------------------------------------------


def run_sft(
    model_dir: Path,
    data_dir: Path,
    cfg: DemoConfig,
    *,
    split: str = "sft",
    steps: int | None = None,
    name: str = "sft",
) -> Any:
    """Imitate gold Chain of Region answers (loss on the answer tokens only)."""
    from georeason.train import GeoSFTConfig, train_sft

    config = GeoSFTConfig(
        model_name_or_path=str(model_dir),
        dataset_name=str(data_dir),
        dataset_split=split,
        protocol=PROTOCOL,
        output_dir=str(cfg.out / name),
        max_steps=steps or cfg.sft_steps,
        per_device_train_batch_size=cfg.sft_batch_size,
        # A random ~0.5M-parameter model learns from scratch: a far higher rate than a
        # 7B fine-tune (Geo-R: 1e-5), decayed to zero so the warm start ends settled.
        learning_rate=cfg.sft_lr,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        max_length=None,  # never truncate: image tokens must stay whole
        **_cpu_args(cfg, logging_steps=max(1, (steps or cfg.sft_steps) // 25)),
    )
    return train_sft(config)


def run_grpo(model_dir: Path, data_dir: Path, cfg: DemoConfig) -> Any:
    """GRPO from the warm start with Geo-R's reward, r_dist(d) x r_format."""
    from georeason.train import train_grpo

    return train_grpo(grpo_config(model_dir, data_dir, cfg))


def grpo_config(model_dir: Path, data_dir: Path, cfg: DemoConfig) -> Any:
    """The :class:`~georeason.train.GeoGRPOConfig` of the demo's GRPO stage."""
    from georeason.train import GeoGRPOConfig

    return GeoGRPOConfig(
        model_name_or_path=str(model_dir),
        dataset_name=str(data_dir),
        dataset_split="rl",
        protocol=PROTOCOL,
        rewards=list(REWARDS),
        output_dir=str(cfg.out / "grpo"),
        max_steps=cfg.grpo_steps,
        num_generations=cfg.num_generations,
        per_device_train_batch_size=cfg.num_generations * cfg.grpo_images_per_step,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        beta=cfg.beta,
        scale_rewards=cfg.scale_rewards,
        top_entropy_quantile=cfg.top_entropy_quantile,
        freeze_vision_tower=cfg.grpo_freeze_vision,
        learning_rate=cfg.grpo_lr,
        lr_scheduler_type="constant",
        # TRL saves the SFT model with use_cache=False; without the KV cache every
        # rollout token recomputes the whole prompt (~25x slower generation here).
        generation_kwargs={"use_cache": True},
        **_cpu_args(cfg, logging_steps=1),  # one reward point per step: the reward curve
    )


# --------------------------------------------------------------------------------------
# 5. Evaluation
# --------------------------------------------------------------------------------------

_LABELS = PLACE_LEVELS


def sampled_row(model_row: str, samples: int) -> str:
    """The table row of a model answered by ``samples`` sampled chains and their medoid."""
    return f"{model_row}, {samples} samples (medoid)"


def evaluate_model(
    model_dir: Path,
    name: str,
    cfg: DemoConfig,
    *,
    split: str = "test",
    limit: int | None = None,
    label: str | None = None,
    samples: int = 1,
) -> list[dict[str, Any]]:
    """Greedy answers of a model on a split of the world, one record per photo (the eval runner).
    ``label`` names the progress bar (default: ``name`` and ``split``). ``samples`` K > 1:
    K sampled answers per photo at T = 0.7 reduced by their medoid instead of one greedy one."""
    from georeason.eval.runner import EvalConfig, run_eval
    from georeason.infer import get_backend
    from georeason.runs import PREDICTIONS_FILE, read_records

    out = cfg.out / "eval" / (name if split == "test" else f"{name}_{split}")
    if samples > 1:
        out = out.with_name(f"{out.name}_k{samples}")
    config = EvalConfig(
        benchmark="synthetic",
        data=str(cfg.out / "world"),
        model=str(model_dir),
        backend="hf",
        protocol=PROTOCOL,
        limit=limit,
        batch_size=max(1, cfg.eval_batch_size // samples),  # about as many rows per call as greedy
        max_new_tokens=cfg.max_new_tokens,
        temperature=0.7 if samples > 1 else 0.0,
        samples=samples,
        aggregate="medoid",
        benchmark_options={"split": split},
    )
    backend = get_backend("hf", str(model_dir), batch_size=config.batch_size, device="cpu")
    try:
        run_eval(
            config,
            out,
            backend=backend,
            overwrite=True,
            report=False,
            progress=cfg.progress,
            progress_label=label or f"eval {name}, {split}",
            log=lambda _: None,
        )
    finally:
        backend.close()
    records, _ = read_records(out / PREDICTIONS_FILE)
    return records


def baseline_records(data: Any, cfg: DemoConfig) -> dict[str, list[dict[str, Any]]]:
    """Answers of the two model-free baselines on the test photos, written as Chain of
    Region completions and scored by the same record / parser / metric code as the models."""
    from georeason.eval.runner import make_record
    from georeason.geo import haversine_km, reverse_geocode_batch
    from georeason.protocols import get_protocol

    protocol = get_protocol(PROTOCOL)
    test = data.datasets["test"].remove_columns("image")
    train = data.datasets["train"].remove_columns("image")
    metas = [
        {"id": r["id"], "lat": r["lat"], "lon": r["lon"], **{k: r[k] for k in _LABELS if r.get(k)}}
        for r in test
    ]

    # The training set's most common city. The world balances cities (equal counts
    # +-1), so ties go to the most central of them: least summed distance to all
    # training photos (the strongest single answer among the tied).
    keys = list(zip(train["country_code"], train["admin1"], train["city"], strict=True))
    counts: dict[tuple[str, str, str], int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    top = max(counts.values())
    tied = sorted(k for k, c in counts.items() if c == top)
    places = {(p.country_code, p.admin1, p.city): p for p in data.world.places}
    tlat, tlon = np.asarray(train["lat"]), np.asarray(train["lon"])
    cost = [float(haversine_km(places[k].lat, places[k].lon, tlat, tlon).sum()) for k in tied]
    common = places[tied[int(np.argmin(cost))]]
    common_answer = protocol.format_answer(
        {
            "lat": common.lat,
            "lon": common.lon,
            "country": common.country,
            "admin1": common.admin1,
            "city": common.city,
            "reasoning": "the most common city of the training set.",
        }
    )

    # A random point on land: uniform on the sphere, redrawn until it falls on land.
    rng = np.random.default_rng([cfg.seed, 17])
    lat: list[float] = []
    lon: list[float] = []
    while len(lat) < len(metas):
        z = rng.uniform(-1.0, 1.0, 4 * len(metas))
        la, lo = np.degrees(np.arcsin(z)), rng.uniform(-180.0, 180.0, z.size)
        land = reverse_geocode_batch(la, lo).on_land
        lat.extend(la[land].tolist())
        lon.extend(lo[land].tolist())
    lat, lon = lat[: len(metas)], lon[: len(metas)]
    named = reverse_geocode_batch(np.array(lat), np.array(lon))

    out: dict[str, list[dict[str, Any]]] = {RANDOM_LAND: [], COMMON_CITY: []}
    for i, meta in enumerate(metas):
        random_answer = protocol.format_answer(
            {
                "lat": lat[i],
                "lon": lon[i],
                # the names of the point's place ("unknown" far from any town)
                "country": named.country[i] or "unknown",
                "admin1": named.admin1[i] or "N/A",
                "city": named.city[i] or "unknown",
                "reasoning": "a random point on land.",
            }
        )
        for name, text in ((RANDOM_LAND, random_answer), (COMMON_CITY, common_answer)):
            out[name].append(
                make_record(
                    meta,
                    completion=text,
                    error=None,
                    error_kind=None,
                    seconds=None,
                    protocol=protocol,
                    geocode=False,
                )
            )
    return out


def score(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """One row of the table, by the evaluation report's code (:func:`georeason.eval.report.build_report`):
    acc@km and GeoScore over all photos (a failed answer is a miss), median km over the
    answers that gave coordinates, and the accuracy of the country / admin1 / city named."""
    from georeason.eval.report import build_report

    report = build_report(records, run_info={"config": {"protocol": PROTOCOL}}, n_bootstrap=0)
    m = report["metrics"]
    named = report["hierarchy"]["named"] or {}
    row = {f"acc@{t:g}km": 100.0 * float(m["accuracy"][f"acc@{t:g}km"]["value"]) for t in THRESHOLDS_KM}
    row["median_km"] = _num(m["median_km"]["value"])
    row["geoscore"] = _num(m["geoscore"]["value"])
    for level in ("country", "admin1", "city"):
        row[f"{level}_acc"] = 100.0 * _num((named.get(level) or {}).get("accuracy", {}).get("value"))
    row["format_ok"] = 100.0 * float(np.mean([bool(r.get("format_ok")) for r in records]))
    return row


# "... south-west road tint." in a Chain of Region reasoning (synthetic.describe's phrase). Any
# word is taken: synthetic.tint_direction alone defines the valid ones, and a word it never
# gives simply matches neither the truth nor the answer.
_TINT_WORDS = re.compile(r"\b([a-z]+(?:-[a-z]+)?) road tint\b")
READING_KEYS = (
    ("word_right", "reasoning names the true tint direction"),
    ("follows_word", "answer lies where its reasoning says"),
    ("in_true_cell", "answer lies in the true direction"),
)


def tint_reading(records: Sequence[dict[str, Any]], data: Any, split: str = "test") -> dict[str, float]:
    """Does the answer follow its own reasoning about the road tint?

    On the photos of ``split`` whose road tint is legible and whose country the model
    named right (the tint is a position in the country's box), in %:

    - ``word_right``: the reasoning names the tint's true direction ("north-east road
      tint": thirds of the country's box, :func:`~georeason.datasets.synthetic.tint_direction`);
    - ``follows_word``: the answer's coordinates lie in the direction the reasoning named
      (the chain is consistent, right or wrong);
    - ``in_true_cell``: the answer's coordinates lie in the true direction.

    ``n`` is the number of such photos. A reward that scores only the coordinates
    (Geo-R's) does not see the reasoning: this shows whether GRPO keeps the two tied.
    """
    from georeason.datasets.synthetic import tint_direction

    world = data.world
    index = {sid: i for i, sid in enumerate(data.datasets[split]["id"])}
    n = right = follows = in_true = 0
    for r in records:
        i = index.get(str(r.get("id")))
        if i is None:
            continue
        clues = data.clues[split][i]
        cc = world.places[clues.place].country_code
        if not clues.tint or r.get("pred_country_code") != cc:
            continue
        n += 1
        true_word = tint_direction(world, cc, clues.lat, clues.lon)
        m = _TINT_WORDS.search(r.get("completion") or "")
        word = m.group(1) if m else None
        right += word == true_word
        lat, lon = _num(r.get("pred_lat")), _num(r.get("pred_lon"))
        if math.isfinite(lat) and math.isfinite(lon):
            answer_word = tint_direction(world, cc, lat, lon)
            follows += answer_word == word
            in_true += answer_word == true_word
    pct = (lambda k: 100.0 * k / n) if n else (lambda _k: float("nan"))
    return {
        "n": float(n),
        "word_right": pct(right),
        "follows_word": pct(follows),
        "in_true_cell": pct(in_true),
    }


def write_photos(
    data: Any, cfg: DemoConfig, records: dict[str, list[dict[str, Any]]], n: int = N_PHOTOS
) -> list[dict[str, Any]]:
    """Write ``n`` test photos (held-out cities, one per city, countries taken in turn) as
    PNGs to ``out/photos``, each with its GPS in EXIF so that ``georeason locate`` prints
    its error, plus ``truth.csv``; return per photo its file, truth and each model's answer
    (from ``records``: model row -> evaluation records of the test split)."""
    import csv

    from georeason.images import gps_exif

    test = data.datasets["test"]
    keys = list(zip(test["country_code"], test["city"], strict=True))
    picks: list[int] = []
    for new_country in (True, False):  # first one city per country, then more cities
        for i, (cc, city) in enumerate(keys):
            if len(picks) == n:
                break
            taken = {keys[j] for j in picks}
            if (cc, city) in taken or (new_country and cc in {c for c, _ in taken}):
                continue
            picks.append(i)
    folder = cfg.out / PHOTOS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    by_id = {name: {str(r["id"]): r for r in recs} for name, recs in records.items()}
    photos: list[dict[str, Any]] = []
    rows = test.select(picks)
    for k, row in enumerate(rows):
        name = f"heldout-{k + 1}.png"
        # The block as bytes: Pillow writes an Exif object into a PNG with offsets that lose its GPS IFD.
        exif = gps_exif(row["lat"], row["lon"])
        row["image"].convert("RGB").save(folder / name, "PNG", exif=exif)
        answers = {}
        for model, index in by_id.items():
            r = index.get(str(row["id"]), {})
            place = ", ".join(str(r[c]) for c in ("pred_city", "pred_country") if r.get(c))
            km = r.get("distance_km")
            answers[model] = {"place": place, "km": None if km is None else float(km)}
        photos.append(
            {
                "file": f"{PHOTOS_DIR}/{name}",
                "id": str(row["id"]),
                "lat": float(row["lat"]),
                "lon": float(row["lon"]),
                "city": row["city"],
                "admin1": row["admin1"],
                "country": row["country"],
                "answers": answers,
            }
        )
    with (folder / PHOTOS_CSV).open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "id", "lat", "lon", "city", "admin1", "country"])
        for ph in photos:
            w.writerow(
                [Path(ph["file"]).name, *(ph[c] for c in ("id", "lat", "lon", "city", "admin1", "country"))]
            )
    return photos


def locate_command(folder: Path, cfg: DemoConfig) -> str:
    """The ``georeason locate`` command that runs the demo's GRPO model on its photos."""
    return (
        f"georeason locate {folder / PHOTOS_DIR}/*.png --model {folder / 'grpo'} "
        f"--max-new-tokens {cfg.max_new_tokens}"
    )


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _oracle_row(ceiling: dict[str, float]) -> dict[str, float]:
    row = {k: 100.0 * v for k, v in ceiling.items() if k.startswith("acc@") or k.endswith("_acc")}
    row["median_km"] = ceiling["median_km"]
    return row


# --------------------------------------------------------------------------------------
# One seed
# --------------------------------------------------------------------------------------


@dataclass
class DemoResult:
    """What one seed of the demo measured (``results.json``)."""

    seed: int
    rows: dict[str, dict[str, float]]  # table row name -> metrics on the held-out cities
    seen_rows: dict[str, dict[str, float]]  # SFT / GRPO on photos of training cities
    oracles: dict[str, dict[str, float]]  # the world's ceilings on the same test photos
    seconds: dict[str, float]
    reward_steps: list[int]
    rewards: list[float]
    sft_loss: list[float]
    rl_cities: list[str]
    distances: dict[str, list[float]] = field(default_factory=dict)  # row -> error km per test photo
    # model row -> {true_lat, true_lon, pred_lat, pred_lon} per test photo (the world map)
    map_points: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    reading: dict[str, dict[str, float]] = field(default_factory=dict)  # model row -> tint_reading()
    photos: list[dict[str, Any]] = field(default_factory=list)  # write_photos(): file, truth, answers

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DemoResult:
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


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
        oracles={k: _oracle_row(v) for k, v in data.ceilings.get("test", {}).items()},
        seconds=seconds,
        reward_steps=[int(h["step"]) for h in grpo.log_history if "rewards/geor/mean" in h],
        rewards=[float(h["rewards/geor/mean"]) for h in grpo.log_history if "rewards/geor/mean" in h],
        sft_loss=[float(h["loss"]) for h in sft.log_history if "loss" in h],
        rl_cities=rl_cities,
        distances={name: [_num(r.get("distance_km")) for r in records[name]] for name in ROWS},
        reading={name: tint_reading(records[name], data) for name in MODEL_ROWS},
        map_points={
            name: {
                "true_lat": [float(r["true_lat"]) for r in records[name]],
                "true_lon": [float(r["true_lon"]) for r in records[name]],
                "pred_lat": [_num(r.get("pred_lat")) for r in records[name]],
                "pred_lon": [_num(r.get("pred_lon")) for r in records[name]],
            }
            for name in MODEL_ROWS
        },
        photos=photos,
    )
    write_report([result], cfg)
    return result


# --------------------------------------------------------------------------------------
# Several seeds, the report
# --------------------------------------------------------------------------------------


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
            f"try the model on {len(results[0].photos)} held-out photos: {locate_command(_photo_folder(results, cfg), cfg)}"
        )
    return results


def mean_spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for one value) of finite values."""
    v = np.array([x for x in values if math.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def compare(results: Sequence[DemoResult]) -> dict[str, dict[str, Any]]:
    """GRPO vs SFT only, per claim metric: means, spreads (sample std across seeds; None
    with one seed: there is no spread), per-seed gaps (positive: GRPO better), and whether
    GRPO wins by more than the spread.

    The rule: GRPO is better in every seed, and the gap between the means exceeds
    std(SFT) + std(GRPO), i.e. the mean ± std intervals do not overlap. With one
    seed there is no spread to beat, and the verdict says so.
    """
    out: dict[str, dict[str, Any]] = {}
    several = len(results) > 1
    for key, higher in CLAIM_METRICS:
        sft = [r.rows[SFT_ONLY][key] for r in results]
        grpo = [r.rows[SFT_GRPO][key] for r in results]
        (ms, ss), (mg, sg) = mean_spread(sft), mean_spread(grpo)
        gaps = [(g - s) if higher else (s - g) for s, g in zip(sft, grpo, strict=True)]
        gap = (mg - ms) if higher else (ms - mg)
        every = all(x > 0 for x in gaps)
        beats = several and every and gap > ss + sg
        out[key] = {
            "sft_mean": ms,
            "sft_std": ss if several else None,
            "grpo_mean": mg,
            "grpo_std": sg if several else None,
            "gap": gap,
            "per_seed_gap": gaps,
            "better_every_seed": every,
            "beats_spread": beats,
        }
    return out


def _by(gap: float, unit: str) -> str:
    """'23.7 km worse' / '3.5 points better' / 'equal' (gap > 0: GRPO better)."""
    if not math.isfinite(gap):
        return "not measurable"
    if round(abs(gap), 1) == 0:
        return "equal"
    return f"{abs(gap):,.1f}{unit} {'better' if gap > 0 else 'worse'}"


def claim_lines(results: Sequence[DemoResult]) -> list[str]:
    """The claim check in words: GRPO vs SFT only on each claim metric, per seed and
    against the spread across seeds (one seed: no spread, and the line says so)."""
    lines = []
    n = len(results)
    for key, c in compare(results).items():
        km = key == "median_km"
        unit, gap_unit = (" km", " km") if km else (" %", " points")
        name = "median error" if km else "accuracy at 25 km"
        missing = [
            m for m, v in ((SFT_ONLY, c["sft_mean"]), (SFT_GRPO, c["grpo_mean"])) if not math.isfinite(v)
        ]
        if missing:
            lines.append(
                f"{name}: not measurable: {' and '.join(missing)} gave no coordinates at all"
                + (" (a --quick run's models are too small to answer)" if km else "")
            )
            continue
        line = (
            f"{name}: SFT only {_pm(c['sft_mean'], c['sft_std'])}{unit}, "
            f"SFT + GRPO {_pm(c['grpo_mean'], c['grpo_std'])}{unit}"
            + (f" (mean ± std over {n} seeds)" if n > 1 else "")
            + ". "
        )
        by = _by(c["gap"], gap_unit)
        said = "GRPO was as good as SFT" if by == "equal" else f"GRPO was {by} than SFT"
        if n == 1:
            line += f"{said}; one seed, no spread to compare with (run --seeds 3)."
        else:
            verdict = (
                "GRPO wins by more than the spread across seeds"
                if c["beats_spread"]
                else "GRPO better in every seed, but not by more than the spread"
                if c["better_every_seed"]
                else "GRPO does NOT beat SFT"
            )
            per_seed = ", ".join(_by(x, "") for x in c["per_seed_gap"])
            line += f"{said} on average; per seed: {per_seed} -> {verdict}."
        lines.append(line)
    return lines


def _pm(mean: float, std: float | None) -> str:
    if not math.isfinite(mean):
        return "—"
    return f"{mean:,.1f}" if std is None or not math.isfinite(std) else f"{mean:,.1f} ± {std:,.1f}"


def _fmt(value: float, kind: str) -> str:
    if not math.isfinite(value):
        return "—"
    if kind in ("km", "score", "count"):
        return f"{value:,.0f}"
    return f"{value:.1f}"


def _cell(values: Sequence[float], kind: str) -> str:
    m, s = mean_spread(values)
    if len(values) == 1 or not math.isfinite(s):
        return _fmt(m, kind)
    return f"{_fmt(m, kind)} ± {_fmt(s, kind)}"


def table_rows(results: Sequence[DemoResult], *, oracles: bool = True) -> list[list[str]]:
    """Header + one row per method (mean ± std over seeds) + the oracle ceilings, on the
    held-out cities (no `city` column: see :data:`HELD_OUT_COLUMNS`)."""
    rows = [["method", *[c[1] for c in HELD_OUT_COLUMNS]]]
    extra = [k for k in results[0].rows if k not in ROWS and all(k in r.rows for r in results)]
    for name in (*ROWS, *extra):
        rows.append(
            [name, *[_cell([r.rows[name][k] for r in results], kind) for k, _, kind in HELD_OUT_COLUMNS]]
        )
    if oracles:
        for key, label in ORACLES.items():
            cells = []
            for k, _, kind in HELD_OUT_COLUMNS:
                vals = [r.oracles.get(key, {}).get(k, float("nan")) for r in results]
                cells.append(_cell(vals, kind) if any(math.isfinite(v) for v in vals) else "—")
            rows.append([label, *cells])
    return rows


def render_table(results: Sequence[DemoResult], *, markdown: bool = True) -> str:
    rows = table_rows(results)
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _json_safe(x: Any) -> Any:
    """NaN / inf -> None, recursively: ``results.json`` stays JSON that every parser reads."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.generic):
        return _json_safe(x.item())
    return x


def _photo_folder(results: Sequence[DemoResult], cfg: DemoConfig) -> Path:
    """Where the first seed's run (its photos and models) lies, as run_demo_seeds writes it."""
    return cfg.out if len(results) == 1 else cfg.out / f"seed{results[0].seed}"


def write_report(results: Sequence[DemoResult], cfg: DemoConfig) -> Path:
    """``report.md``, ``results.json`` and the PNGs of one or several seeds, in ``cfg.out``."""
    from georeason.eval.plots import plot_error_cdf, plot_reward_curve, plot_world_maps

    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    seeds = [r.seed for r in results]
    seed_words = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))} pooled"
    plot_reward_curve(
        results[0].reward_steps,
        {f"seed {r.seed}": r.rewards for r in results if len(r.rewards) == len(results[0].reward_steps)},
        out / REWARD_PNG,
        title="GRPO: Geo-R reward r_dist x r_format of sampled answers (training photos)",
        ylabel="mean reward per step",
    )
    plot_error_cdf(
        {
            name: np.concatenate([np.asarray(r.distances[name], dtype=float) for r in results])
            for name in ROWS
        },
        out / CDF_PNG,
        title=f"Held-out cities: error CDF ({seed_words})",
    )
    first = results[0]
    panels = {}
    for name in MODEL_ROWS:
        p = first.map_points.get(name)
        if p:
            arrays = [np.asarray(p[k], dtype=float) for k in ("true_lat", "true_lon", "pred_lat", "pred_lon")]
            panels[name] = (arrays[0], arrays[1], arrays[2], arrays[3])
    if panels:
        plot_world_maps(
            panels,
            out / MAP_PNG,
            title=f"Held-out cities (seed {first.seed}): truth (dots) and answers (crosses)",
        )
    payload = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
        "seeds": seeds,
        "claim": compare(results),
        "results": [r.to_dict() for r in results],
    }
    text = json.dumps(_json_safe(payload), indent=1, allow_nan=False)
    (out / RESULTS_JSON).write_text(text + "\n", encoding="utf-8")
    (out / REPORT_MD).write_text(render_markdown(results, cfg), encoding="utf-8")
    return out / REPORT_MD


def _answer(a: dict[str, Any] | None) -> str:
    if not a or a.get("km") is None:
        return "no coordinates"
    return f"{a['place'] or '(no place named)'}, {a['km']:,.0f} km off"


def render_markdown(results: Sequence[DemoResult], cfg: DemoConfig) -> str:
    n = len(results)
    seeds = ", ".join(str(r.seed) for r in results)
    spread = " (mean ± sample std over seeds)" if n > 1 else ""
    lines = [
        "# georeason demo: SFT warm start, then GRPO with Geo-R's reward",
        "",
        f"Tiny Qwen2.5-VL trained from scratch on the synthetic world, CPU only. Seeds: {seeds}.",
        f"Test: {cfg.n_test} photos of **held-out cities** (never seen in training; their regions were). "
        "Greedy decoding, Chain of Region answers parsed by the `geor` protocol. "
        "Accuracies in %; a failed answer counts as a miss; median km over the answers with coordinates.",
        "",
        f"## Held-out cities{spread or ' (one seed: no spread)'}",
        "",
        render_table(results),
        "",
        "No `city` column here: a held-out city's name never appears in training, so no model and "
        "no oracle can name it (0 % by construction); the table of training-city photos below has it.",
        "",
        "The oracle rows read the clues perfectly but know only the training cities "
        "(docs/synthetic_world.md): *namer* names the best seen city, *centre* answers the point "
        "nearest to all seen cities of the region (what a distance reward favours when the tint is "
        "not read; no training answer is that point), *snap* the seen city nearest the position the "
        "road tint encodes, *reader* answers that position (the ceiling).",
        "",
        "## Does GRPO beat SFT only?",
        "",
        "Rule: GRPO better in every seed and the gap between means larger than std(SFT) + std(GRPO).",
        "",
        *[f"- {line}" for line in claim_lines(results)],
        "",
    ]
    if any(r.seen_rows for r in results):
        lines += [
            f"## Photos of training cities ({cfg.eval_seen} per seed){spread}",
            "",
            "| model | " + " | ".join(c[1] for c in COLUMNS) + " |",
            "|" + "---|" * (len(COLUMNS) + 1),
        ]
        for name in MODEL_ROWS:
            vals = [r.seen_rows[name] for r in results if name in r.seen_rows]
            lines.append(
                f"| {name} | "
                + " | ".join(_cell([v[k] for v in vals], kind) for k, _, kind in COLUMNS)
                + " |"
            )
        lines.append("")
    if any(r.reading for r in results):
        lines += [
            f"## Does the answer follow its reasoning?{spread}",
            "",
            "Held-out photos with a legible road tint and the country named right; the reasoning "
            "names the tint's direction in thirds of the country's box (`north-east road tint`). "
            "Geo-R's reward scores only the coordinates.",
            "",
            "| model | photos | " + " | ".join(label for _, label in READING_KEYS) + " |",
            "|" + "---|" * (len(READING_KEYS) + 2),
        ]
        for name in MODEL_ROWS:
            vals = [r.reading[name] for r in results if name in r.reading]
            lines.append(
                f"| {name} | {_cell([v['n'] for v in vals], 'count')} | "
                + " | ".join(_cell([v[k] for v in vals], "pct") for k, _ in READING_KEYS)
                + " |"
            )
        lines.append("")
    if results[0].photos:
        folder = _photo_folder(results, cfg)
        lines += [
            "## Try it on a few photos",
            "",
            f"`{folder / PHOTOS_DIR}` holds {len(results[0].photos)} of the test photos (held-out cities, "
            f"seed {results[0].seed}) as PNGs, their GPS in the EXIF, so that `georeason locate` prints "
            f"its error; `{PHOTOS_CSV}` there lists the truth. The GRPO model on them:",
            "",
            "```",
            locate_command(folder, cfg),
            "```",
            "",
            f"(`--model {folder / 'sft'}` for SFT only.) What the evaluation answered:",
            "",
            f"| photo | truth | {' | '.join(MODEL_ROWS)} |",
            "|" + "---|" * (2 + len(MODEL_ROWS)),
        ]
        for ph in results[0].photos:
            truth = ", ".join(str(ph[k]) for k in ("city", "admin1", "country") if ph.get(k))
            answers = " | ".join(_answer(ph["answers"].get(m)) for m in MODEL_ROWS)
            lines.append(f"| `{Path(ph['file']).name}` | {truth} | {answers} |")
        lines.append("")
    lines += [
        "## Training",
        "",
        f"![reward curve]({REWARD_PNG})",
        "",
        "Every number the trainers logged is in `sft/train_log.jsonl` and `grpo/train_log.jsonl` "
        "(one JSON line per logging step).",
        "",
        "| seed | SFT loss first → last | GRPO reward, first → last 20% of steps | "
        + " | ".join(f"{k} s" for k in results[0].seconds)
        + " | total s |",
        "|" + "---|" * (4 + len(results[0].seconds)),
    ]
    for r in results:
        k = max(1, len(r.rewards) // 5)
        reward = f"{np.mean(r.rewards[:k]):.3f} → {np.mean(r.rewards[-k:]):.3f}" if r.rewards else "—"
        loss = f"{r.sft_loss[0]:.2f} → {r.sft_loss[-1]:.2f}" if r.sft_loss else "—"
        lines.append(
            f"| {r.seed} | {loss} | {reward} | "
            + " | ".join(f"{v:.0f}" for v in r.seconds.values())
            + f" | {sum(r.seconds.values()):.0f} |"
        )
    lines += [
        "",
        "## Plots",
        "",
        f"![error CDF]({CDF_PNG})",
        "",
        f"![world map: SFT only and SFT + GRPO]({MAP_PNG})",
        "",
        "## Settings",
        "",
        "| key | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in asdict(cfg).items() if k not in ("out", "seed", "progress")],
        "",
        "SFT: TRL `SFTTrainer` via `georeason.train.train_sft` on gold Chain of Region answers; GRPO: TRL "
        "`GRPOTrainer` via `georeason.train.train_grpo` with `rewards: [geor:1]` (r_dist(d) × r_format, "
        "Geo-R's product). "
        + (
            f"SFT's photos are of the training cities but {cfg.rl_cities_per_admin1} per region "
            "(Geo-R's hard RL data: places the warm start cannot name). "
            if cfg.rl_cities_per_admin1
            else "SFT trains on every training photo. "
        )
        + (
            f"GRPO's are {cfg.n_rl} GPS-only photos anywhere within {cfg.rl_spread_km:g} km of the "
            "training cities (`draw_spread_photos`: the land between cities, no landmark)."
            if cfg.rl_pool == "spread"
            else "GRPO's are the photos of the cities kept out of SFT."
        ),
        "",
    ]
    return "\n".join(lines)
