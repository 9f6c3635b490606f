"""Settings of the selection: :class:`SelectConfig`, the stage reasons and :class:`SelectError`.

The stages they drive are in :mod:`georeason.pipelines.select.core`; the specification
is docs/select.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: stage reasons, in the order the stages run
REASONS = (
    "invalid coordinates",
    "flat rollout rewards",
    "near a hotspot",
    "over the country cap",
    "over the admin1 cap",
    "over the cell cap",
    "not drawn (target size)",
)
BALANCE_KEYS = ("continent", "country_code", "admin1", "cell")


class SelectError(ValueError):
    """The selection cannot run as asked (bad settings, missing columns, unreadable logs)."""


@dataclass
class SelectConfig:
    """Settings of :func:`select_table` (each stage runs only when its inputs are given)."""

    correctness: str | None = field(
        default=None,
        metadata={"help": "Base-model eval run (predictions.jsonl or its folder): Geo-R hard set."},
    )
    threshold_km: float = field(default=25.0, metadata={"help": "Correct = error <= this (km)."})
    n_hotspots: int = field(
        default=100_000, metadata={"help": "Correct samples used as hotspots.", "aliases": ["--hotspots"]}
    )
    radius_km: float = field(default=200.0, metadata={"help": "Drop rows within this of a hotspot (km)."})
    rollouts: str | None = field(
        default=None,
        metadata={"help": 'GRPO rollout log (JSONL {"id", "rewards": [...], "step"}): difficulty.'},
    )
    std_eps: float = field(default=1e-6, metadata={"help": "Flat group: reward std <= this."})
    difficulty_mode: str = field(
        default="last", metadata={"help": "last: judge each id's latest group; all: every group flat."}
    )
    max_per_country: int | None = field(
        default=None, metadata={"help": "Keep at most this many rows per country."}
    )
    max_per_admin1: int | None = field(
        default=None, metadata={"help": "Keep at most this many rows per admin1."}
    )
    max_per_cell: int | None = field(
        default=None, metadata={"help": "Keep at most this many rows per equal-area geocell."}
    )
    cell_km: float = field(default=100.0, metadata={"help": "Equal-area geocell side at the equator, km."})
    target: int | None = field(
        default=None, metadata={"help": "Rows to keep, favouring under-represented regions."}
    )
    balance_by: tuple[str, ...] = field(
        default=("country_code", "cell"),
        metadata={
            "help": "Levels of the balanced fill, coarse to fine (continent, country_code, admin1, cell)."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of the hotspot draw and the fill."})
    label_prefix: str = field(
        default="", metadata={"help": "Prefix of the label columns (`data label --prefix`)."}
    )

    def __post_init__(self) -> None:
        for name in ("threshold_km", "radius_km", "std_eps", "cell_km"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise SelectError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.cell_km <= 0:
            raise SelectError(f"cell_km must be > 0, got {self.cell_km}")
        if self.n_hotspots < 0:
            raise SelectError(f"n_hotspots must be >= 0, got {self.n_hotspots}")
        for name in ("max_per_country", "max_per_admin1", "max_per_cell", "target"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise SelectError(f"{name} must be >= 0, got {v}")
        if self.difficulty_mode not in ("last", "all"):
            raise SelectError(f"difficulty_mode must be 'last' or 'all', got {self.difficulty_mode!r}")
        self.balance_by = tuple(self.balance_by)
        bad = [k for k in self.balance_by if k not in BALANCE_KEYS]
        if bad or not self.balance_by:
            raise SelectError(
                f"balance_by takes a list of {', '.join(BALANCE_KEYS)}; got {self.balance_by!r}"
            )
