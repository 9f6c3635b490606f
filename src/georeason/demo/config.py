"""The demo's settings (:class:`DemoConfig`, :func:`quick_config`) and the names its
stages, evaluation and report share: the protocol and reward, the files it writes, the
rows of its comparison table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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

Log = Callable[[str], None]


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
