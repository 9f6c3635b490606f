"""Training configs: TRL's ``SFTConfig`` / ``GRPOConfig`` plus the project's fields.

Every TRL and ``transformers.TrainingArguments`` field keeps its name, meaning and
default (``learning_rate``, ``num_generations``, ``beta``, ``per_device_train_batch_size``,
``output_dir``, ``resume_from_checkpoint``, ...). The fields added here say *what*
to train on: the model, the answer protocol, the dataset, the image pixel budget,
LoRA, and (GRPO) the rewards with their weights. A YAML recipe is a flat mapping
of these names (see ``recipes/`` and :mod:`georeason.train.recipe`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trl import GRPOConfig, SFTConfig

# Linear layers of the *language model* of Qwen-style VLMs. The vision tower's
# MLP reuses the names gate/up/down_proj, so a bare name list would put LoRA on
# the vision tower too; the regex excludes every module under `visual`.
DEFAULT_LORA_TARGETS = r"^(?!.*\bvisual\b).*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$"


@dataclass
class GeoModelDataArgs:
    """Fields shared by :class:`GeoSFTConfig` and :class:`GeoGRPOConfig` (a mixin)."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Model to train: a local folder (a saved model or an earlier run's output_dir) or a hub ID "
            "such as Qwen/Qwen2.5-VL-7B-Instruct. Any image-text-to-text model works."
        },
    )
    model_dtype: str = field(
        default="auto",
        metadata={
            "help": "Dtype the weights are loaded in: auto (the checkpoint's), bfloat16, float16, float32."
        },
    )
    attn_implementation: str | None = field(
        default=None,
        metadata={
            "help": "Attention kernel: sdpa, flash_attention_2, eager; unset lets transformers choose."
        },
    )
    protocol: str = field(
        default="geor",
        metadata={
            "help": "Answer protocol (georeason.protocols): its prompt is the model's input and, for SFT, its "
            "formatter writes the target answer. geor (Chain of Region), geor_continent, globe, plain, cot."
        },
    )
    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Training data with GeoSample columns (id, image, lat, lon, and optional continent, "
            "country_code, country, admin1, city, locatable, reasoning, entities): a folder written by "
            "datasets' save_to_disk, a .parquet/.csv/.jsonl file, or a hub dataset name."
        },
    )
    dataset_split: str = field(default="train", metadata={"help": "Split of dataset_name to train on."})
    max_train_samples: int | None = field(
        default=None,
        metadata={"help": "Train on the first N rows only (after shuffling with `seed`); unset uses all."},
    )
    max_pixels: int | None = field(
        default=None,
        metadata={
            "help": "Image pixel budget (Qwen2-VL-family processors): larger images are resized down to at most "
            "this many pixels. 1024*28*28 = 802816 keeps a 7B run in memory; unset keeps the processor's."
        },
    )
    min_pixels: int | None = field(
        default=None,
        metadata={"help": "Smallest image size in pixels after resizing; unset keeps the processor's."},
    )
    freeze_vision_tower: bool = field(
        default=False,
        metadata={
            "help": "Train the language model (and projector) only; the vision encoder stays as loaded."
        },
    )
    use_peft: bool = field(
        default=False, metadata={"help": "Train LoRA adapters (PEFT) instead of all weights."}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(
        default=32, metadata={"help": "LoRA scaling alpha (the update is scaled by alpha/r)."}
    )
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={
            "help": "Module names (or one regex) that get LoRA adapters; unset targets the language model's "
            "attention and MLP projections, not the vision tower."
        },
    )
    merge_lora: bool = field(
        default=False,
        metadata={
            "help": "With use_peft: also save the base model with the adapters merged in, under "
            "output_dir/merged, loadable by from_pretrained without PEFT."
        },
    )

    def _cpu_precision(self) -> None:
        """TRL turns bf16 on when it is left unset. On a CPU that means bf16 autocast,
        which is slower than fp32 on most CPUs (about 10x for the tiny model here):
        unset bf16 stays off when training runs on the CPU."""
        if getattr(self, "bf16", False) is None:
            import torch

            if getattr(self, "use_cpu", False) or not torch.cuda.is_available():
                setattr(self, "bf16", False)  # noqa: B010  (a field of the TRL base class)

    def _check_project_fields(self) -> None:
        """Checks with fix-it messages, run by the configs' ``__post_init__``."""
        if not self.model_name_or_path:
            raise ValueError(
                "model_name_or_path is required: set it in the recipe (model_name_or_path: "
                "Qwen/Qwen2.5-VL-7B-Instruct) or on the command line (--set model_name_or_path=PATH)."
            )
        if not self.dataset_name:
            raise ValueError(
                "dataset_name is required: a folder saved with datasets' save_to_disk (e.g. the output of "
                "`georeason data synthetic`), a .parquet/.csv/.jsonl file, or a hub dataset name; "
                "--set dataset_name=PATH."
            )
        from georeason.protocols import get_protocol

        get_protocol(self.protocol)  # ValueError listing the known protocols
        if self.model_dtype not in ("auto", "bfloat16", "float16", "float32"):
            raise ValueError(
                f"model_dtype must be auto, bfloat16, float16 or float32, got {self.model_dtype!r}."
            )
        for name in ("max_pixels", "min_pixels"):
            value = getattr(self, name)
            if value is not None and value < 28 * 28:
                raise ValueError(f"{name} ({value}) must be >= 784 (28*28, one merged patch), or unset.")
        if self.min_pixels is not None and self.max_pixels is not None and self.min_pixels > self.max_pixels:
            raise ValueError(f"min_pixels ({self.min_pixels}) must be <= max_pixels ({self.max_pixels}).")
        if self.max_train_samples is not None and self.max_train_samples < 1:
            raise ValueError(f"max_train_samples must be >= 1 or unset, got {self.max_train_samples}.")
        if self.lora_r < 1 or self.lora_alpha < 1:
            raise ValueError(f"lora_r ({self.lora_r}) and lora_alpha ({self.lora_alpha}) must be >= 1.")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}.")
        if self.merge_lora and not self.use_peft:
            raise ValueError("merge_lora needs use_peft: true (there are no adapters to merge otherwise).")

    def peft_config(self) -> Any:
        """The PEFT ``LoraConfig`` of these fields, or None without ``use_peft``."""
        if not self.use_peft:
            return None
        from peft import LoraConfig

        targets: str | list[str]
        if not self.lora_target_modules:
            targets = DEFAULT_LORA_TARGETS
        elif len(self.lora_target_modules) == 1 and not self.lora_target_modules[0].isidentifier():
            targets = self.lora_target_modules[0]  # one regex
        else:
            targets = list(self.lora_target_modules)
        return LoraConfig(
            r=self.lora_r,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=targets,
            task_type="CAUSAL_LM",
        )


@dataclass
class GeoSFTConfig(SFTConfig, GeoModelDataArgs):
    """SFT (warm start) on gold answers written by the protocol's formatter.

    Geo-R's SFT stage trains Qwen2.5-VL-7B on Chain of Region answers built from
    the ground-truth coordinates (lr 1e-5, effective batch 64, one epoch; see
    ``recipes/qwen2_5_vl_7b/geor_sft.yaml``). The loss is on the answer only
    (TRL's ``completion_only_loss`` for prompt/completion data).
    """

    def __post_init__(self) -> None:
        self._cpu_precision()
        super().__post_init__()
        self._check_project_fields()


@dataclass
class GeoGRPOConfig(GRPOConfig, GeoModelDataArgs):
    """GRPO with the project's reward functions (Geo-R, GLOBE, ours).

    ``rewards`` names reward functions of :mod:`georeason.rewards` with their
    weights, ``"name:weight"``; TRL's total reward is the weighted sum
    ``Σ w_i · r_i`` (TRL's ``reward_weights``, set from this list). Geo-R's
    reward is one function, ``geor`` = r_dist × r_format (the paper's product);
    GLOBE's is ``globe_accuracy:1, globe_locatability:0.5, globe_visual:0.2,
    globe_format:1``.
    """

    rewards: list[str] | None = field(
        default=None,
        metadata={
            "help": "Reward functions and weights as 'name:weight' (weight defaults to 1), e.g. ['geor:1'] or "
            "['globe_accuracy:1', 'globe_locatability:0.5', 'globe_visual:0.2', 'globe_format:1']. Names come "
            "from georeason.rewards' registry or are dotted paths to your own function."
        },
    )
    reward_options: dict[str, dict[str, Any]] | None = field(
        default=None,
        metadata={
            "help": "Keyword options per reward factory, e.g. {globe_locatability: {judge: keyword}} or "
            "{globe_accuracy: {alpha: 0.8}}. Rewards that parse completions get protocol=<protocol> unless set."
        },
    )

    def reward_functions(self) -> tuple[list[Any], list[float]]:
        """The reward callables and their weights (:func:`georeason.rewards.load_rewards`).

        A reward whose factory takes a ``protocol`` parses completions with this
        config's protocol (the format the model is prompted to answer in).
        """
        import inspect

        from georeason.rewards import FACTORIES, RewardSpec, load_rewards

        specs = [RewardSpec.parse(s) for s in self.rewards or []]
        options = {k: dict(v) for k, v in (self.reward_options or {}).items()}
        for spec in specs:
            factory = FACTORIES.get(spec.name)
            if factory is None or "protocol" not in inspect.signature(factory).parameters:
                continue
            options.setdefault(spec.name, {}).setdefault("protocol", self.protocol)
        return load_rewards(specs, options)

    def __post_init__(self) -> None:
        if not self.rewards:
            raise ValueError(
                "rewards is required for GRPO: a list of 'name:weight', e.g. rewards: ['geor:1'] in the recipe "
                "or --set rewards=[geor:1]."
            )
        if isinstance(self.rewards, str):
            self.rewards = [self.rewards]
        if self.reward_weights is not None:
            raise ValueError(
                "set the weights inside `rewards` ('name:weight'), not through reward_weights: one list names "
                "each function and its weight, so the two cannot drift apart."
            )
        # Build the functions once now: an unknown name or a bad option fails before any model loads.
        _, self.reward_weights = self.reward_functions()
        self._cpu_precision()
        super().__post_init__()
        self._check_project_fields()
