"""The demo's stages 1-4: the synthetic world and its training splits, the tiny
Qwen2.5-VL, the SFT warm start and GRPO (TRL's trainers through :mod:`georeason.train`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from georeason.demo.config import PROTOCOL, REWARDS, DemoConfig


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
