"""What a distillation is asked to do: its teachers, generation settings and filters.

The teachers and generation settings are fixed for a run folder (they are its
identity); the filters may change on a rerun, which recomputes every decision from
the stored teacher outputs (:mod:`georeason.pipelines.distill.filters`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

TEACHER_KINDS = ("hf", "openai")
AGREE_LEVELS = ("country", "city")
TRUTH_LEVELS = ("country", "city", "none")


class DistillError(ValueError):
    """The distillation cannot run as asked (bad teacher spec, input, settings)."""


def finite(x: Any) -> float | None:
    """``x`` as a finite float; None when missing, not a number, NaN or infinite."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


_NAME_PREFIX = re.compile(r"^([A-Za-z0-9_.\-]+)=(?=(?:hf|openai):)")
_OPENAI_URL = re.compile(r"^(https?://[^/:\s]+(?::\d+)?(?:/[^:\s]*)?)(?::(.+))?$")


@dataclass
class TeacherSpec:
    """One teacher: a backend kind, a model and (openai) the server's API root."""

    name: str
    kind: str
    model: str
    base_url: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "model": self.model, "base_url": self.base_url}


def parse_teacher(spec: str, index: int = 0) -> TeacherSpec:
    """Read ``[NAME=]hf:PATH`` or ``[NAME=]openai:URL[:MODEL]``.

    ``URL`` is the API root (``http://host:port/v1``); ``MODEL`` the served model
    name (default: the first of the server's ``/models``). ``NAME`` labels the
    teacher in the outputs (default ``t<index>``).

    >>> t = parse_teacher("openai:http://127.0.0.1:8001/v1:Qwen/Qwen2.5-VL-72B", 1)
    >>> t.name, t.kind, t.base_url, t.model
    ('t1', 'openai', 'http://127.0.0.1:8001/v1', 'Qwen/Qwen2.5-VL-72B')
    >>> t = parse_teacher("big=hf:/models/internvl3")
    >>> t.name, t.kind, t.model
    ('big', 'hf', '/models/internvl3')
    """
    text = spec.strip()
    name = f"t{index}"
    m = _NAME_PREFIX.match(text)
    if m:
        name, text = m.group(1), text[m.end() :]
    kind, sep, rest = text.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in TEACHER_KINDS or not rest.strip():
        raise DistillError(
            f"bad teacher {spec!r}: use hf:PATH or openai:URL[:MODEL] "
            "(e.g. openai:http://127.0.0.1:8001/v1:qwen2.5-vl), optionally NAME= in front"
        )
    if kind == "hf":
        return TeacherSpec(name=name, kind="hf", model=rest.strip())
    u = _OPENAI_URL.match(rest.strip())
    if not u:
        raise DistillError(f"bad teacher {spec!r}: the openai URL must start with http:// or https://")
    return TeacherSpec(name=name, kind="openai", model=u.group(2) or "auto", base_url=u.group(1).rstrip("/"))


@dataclass
class FilterConfig:
    """Which samples are kept (see the module docstring); changeable on a rerun."""

    min_agree: int | None = field(
        default=None, metadata={"help": "Teachers that must agree (and be right); default all."}
    )
    agree_on: str = field(default="country", metadata={"help": "country | city."})
    truth_level: str = field(
        default="city", metadata={"help": "Agreeing answers must match the truth at: country | city | none."}
    )
    max_km: float = field(
        default=25.0, metadata={"help": "A named city within this of the truth counts as right (km)."}
    )
    min_locatability: float | None = field(
        default=None, metadata={"help": "Drop images whose mean P(yes) is below this."}
    )
    locatable_threshold: float = field(
        default=0.5, metadata={"help": "A mean P(yes) at or above this marks the image locatable."}
    )
    grounder: str = field(
        default="text",
        metadata={
            "help": "Checks that the entities the reasoning names are in the image: text (offline heuristic, "
            "drops nothing), clues:WORLD_DIR (the synthetic world's clue records) or detector:MODEL "
            "(OWL-ViT / OWLv2 / Grounding DINO hub ID or folder)."
        },
    )
    grounding_threshold: float | None = field(
        default=None,
        metadata={
            "help": "An entity is in the image at or above this grounder score; default: the grounder's."
        },
    )

    def __post_init__(self) -> None:
        if self.min_agree is not None and self.min_agree < 1:
            raise DistillError(f"min_agree must be >= 1, got {self.min_agree}")
        if self.agree_on not in AGREE_LEVELS:
            raise DistillError(f"agree_on must be one of {AGREE_LEVELS}, got {self.agree_on!r}")
        if self.truth_level not in TRUTH_LEVELS:
            raise DistillError(f"truth_level must be one of {TRUTH_LEVELS}, got {self.truth_level!r}")
        if not (math.isfinite(self.max_km) and self.max_km >= 0):
            raise DistillError(f"max_km must be >= 0, got {self.max_km}")
        if self.min_locatability is not None and not 0 <= self.min_locatability <= 1:
            raise DistillError(f"min_locatability must be in [0, 1], got {self.min_locatability}")
        if self.grounding_threshold is not None and not 0 <= self.grounding_threshold <= 1:
            raise DistillError(f"grounding_threshold must be in [0, 1], got {self.grounding_threshold}")
        self.visible_at()  # an unknown grounder kind is refused now, not after the teachers ran

    def visible_at(self) -> float:
        """The grounder score at or above which an entity counts as in the image."""
        from georeason.rewards.grounding import GroundingError, default_threshold

        try:
            default = default_threshold(self.grounder)
        except GroundingError as e:
            raise DistillError(str(e)) from None
        return default if self.grounding_threshold is None else self.grounding_threshold

    def needed(self, n_teachers: int) -> int:
        m = n_teachers if self.min_agree is None else self.min_agree
        if m > n_teachers:
            raise DistillError(f"min_agree={m} but only {n_teachers} teachers")
        return m


@dataclass
class DistillConfig:
    """Teachers, generation settings (fixed for a run folder) and filters (free to change)."""

    teachers: list[str] = field(
        metadata={
            "help": "[NAME=]hf:PATH or [NAME=]openai:URL[:MODEL], e.g. openai:http://127.0.0.1:8001/v1:qwen2.5-vl.",
            "aliases": ["-t"],
        }
    )
    batch_size: int = field(default=8, metadata={"help": "Images per teacher call."})
    max_new_tokens: int = field(default=512, metadata={"help": "Longest answer, in tokens."})
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling: keep the top-p probability mass."})
    seed: int | None = field(default=0, metadata={"help": "Sampling seed."})
    max_pixels: int | None = field(
        default=None, metadata={"help": "Resize images to at most this many pixels (aspect kept)."}
    )
    device: str = field(default="auto", metadata={"help": "hf teachers: auto, cpu, cuda, cuda:1."})
    concurrency: int = field(default=8, metadata={"help": "openai teachers: requests in flight."})
    timeout: float = field(default=120.0, metadata={"help": "openai teachers: seconds per request."})
    filters: FilterConfig = field(
        default_factory=FilterConfig, metadata={"help": "Which samples are kept (free to change on a rerun)."}
    )

    def __post_init__(self) -> None:
        if not self.teachers:
            raise DistillError("give at least one teacher (--teacher hf:PATH or openai:URL[:MODEL])")
        specs = self.specs()
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise DistillError(f"teacher names must be unique, got {names}")
        self.filters.needed(len(specs))
        if self.batch_size < 1:
            raise DistillError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_new_tokens < 1:
            raise DistillError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise DistillError(f"temperature must be >= 0, got {self.temperature}")
        if self.max_pixels is not None and self.max_pixels < 28 * 28:
            raise DistillError(f"max_pixels must be >= 784 (28x28), got {self.max_pixels}")
        if self.concurrency < 1:
            raise DistillError(f"concurrency must be >= 1, got {self.concurrency}")

    def specs(self) -> list[TeacherSpec]:
        return [parse_teacher(t, i) for i, t in enumerate(self.teachers)]

    def identity(self, src: str) -> dict[str, Any]:
        """What changes the teachers' outputs: a resumed run must keep it."""
        from georeason.rewards.judges import GLOBE_JUDGE_PROMPT

        return {
            "input": src,
            "teachers": [s.identity() for s in self.specs()],
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "max_pixels": self.max_pixels,
            "protocol": "globe",
            "judge_prompt": GLOBE_JUDGE_PROMPT,
        }


__all__ = [
    "AGREE_LEVELS",
    "TEACHER_KINDS",
    "TRUTH_LEVELS",
    "DistillConfig",
    "DistillError",
    "FilterConfig",
    "TeacherSpec",
    "finite",
    "parse_teacher",
]
