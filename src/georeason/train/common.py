"""What SFT and GRPO share: model setup, resuming, logging, saving."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from georeason.train.config import GeoModelDataArgs
from georeason.train.data import Skipped

logger = logging.getLogger("georeason.train")

LOG_FILE = "train_log.jsonl"
SKIPPED_FILE = "skipped_samples.jsonl"
RESULT_FILE = "train_result.json"
# Vision encoders by module name in common VLMs; their projectors (Qwen's `merger`,
# LLaVA's `multi_modal_projector`) stay trainable: they map image features into
# the language model's space, which fine-tuning is meant to adapt.
_VISION_NAMES = (".visual.", "vision_tower", "vision_model")
_PROJECTOR_NAMES = ("merger", "multi_modal_projector")


@dataclass
class TrainResult:
    """What a training run leaves behind."""

    output_dir: Path
    model_dir: Path  # what from_pretrained loads (output_dir, or output_dir/merged for merged LoRA)
    metrics: dict[str, Any]
    log_history: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0


def load_for_training(config: GeoModelDataArgs) -> tuple[Any, Any]:
    """Model and processor, loaded by us rather than by name through TRL: a missing
    model fails at once with our message (offline-aware), and the pixel budget is set
    on the very processor TRL then uses for every batch."""
    from georeason.models import load_model

    model, processor = load_model(
        config.model_name_or_path,  # type: ignore[arg-type]  # checked in __post_init__
        dtype=config.model_dtype,
        max_pixels=config.max_pixels,
        min_pixels=config.min_pixels,
        attn_implementation=config.attn_implementation,
        trust_remote_code=getattr(config, "trust_remote_code", False),
    )
    if config.freeze_vision_tower:
        frozen = 0
        for name, param in model.named_parameters():
            if any(v in f".{name}" for v in _VISION_NAMES) and not any(p in name for p in _PROJECTOR_NAMES):
                param.requires_grad_(False)
                frozen += param.numel()
        if frozen == 0:
            raise ValueError(
                f"freeze_vision_tower: found no vision encoder parameters in {type(model).__name__} "
                f"(looked for modules named {', '.join(_VISION_NAMES)})."
            )
        logger.info("froze %d vision-encoder parameters", frozen)
    return model, processor


def resume_checkpoint(config: Any) -> str | None:
    """TRL/transformers' ``resume_from_checkpoint``, with ``last`` (or ``true``) meaning
    the newest ``checkpoint-N`` under ``output_dir``."""
    value = config.resume_from_checkpoint
    if value is None or value is False or str(value).lower() in ("", "false", "none"):
        return None
    if value is True or str(value).lower() in ("last", "latest", "true", "auto"):
        from transformers.trainer_utils import get_last_checkpoint

        out = Path(config.output_dir)
        last = get_last_checkpoint(str(out)) if out.is_dir() else None
        if last is None:
            raise FileNotFoundError(
                f"resume_from_checkpoint={value!r} but {out} holds no checkpoint-N folder yet; run without it "
                "first (checkpoints are written every save_steps)."
            )
        return str(last)
    if not Path(str(value)).is_dir():
        raise FileNotFoundError(f"resume_from_checkpoint: {value} is not a checkpoint folder.")
    return str(value)


def jsonl_log_callback(path: Path) -> Any:
    """A TrainerCallback appending every logged dict (loss, rewards/<name>/mean, ...) as
    one JSON line, flushed at once: the reward curve survives a crash or a kill."""
    from transformers import TrainerCallback

    class JsonlLog(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            # A fresh run starts a fresh log; a resumed one keeps the lines up to its
            # checkpoint and drops those of steps it is about to redo.
            if not state.is_world_process_zero or not path.is_file():
                return
            kept = [
                line
                for line in path.read_text(encoding="utf-8").splitlines()
                if state.global_step > 0 and json.loads(line).get("step", 0) <= state.global_step
            ]
            path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
        ) -> None:
            if not state.is_world_process_zero or not logs:
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"step": state.global_step, **logs}, default=float) + "\n")

    return JsonlLog()


def write_skipped(output_dir: str | Path, skipped: Skipped, *, main_process: bool = True) -> None:
    """List the rows left out of training (``skipped_samples.jsonl``) and say so
    (once: every process checks the same rows, only the main one writes)."""
    if not len(skipped) or not main_process:
        return
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / SKIPPED_FILE).open("w", encoding="utf-8") as f:
        for row_id, reason in skipped.rows:
            f.write(json.dumps({"id": row_id, "reason": reason}, ensure_ascii=False) + "\n")
    logger.warning("%d rows skipped (listed in %s)", len(skipped), out / SKIPPED_FILE)


def finish(trainer: Any, config: Any, train_output: Any, skipped: Skipped) -> TrainResult:
    """Save the model and processor where ``from_pretrained`` finds them, plus a summary."""
    out = Path(config.output_dir)
    trainer.save_model(str(out))  # the weights (the adapter with PEFT) and the processor
    merge = config.use_peft and config.merge_lora
    model_dir = out / "merged" if merge else out
    if merge and trainer.accelerator.is_main_process:
        # merge_and_unload on the trained PeftModel: a plain model loadable without PEFT.
        merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
        merged.save_pretrained(model_dir)
        trainer.processing_class.save_pretrained(model_dir)
    metrics = dict(train_output.metrics)
    result = TrainResult(
        output_dir=out,
        model_dir=model_dir,
        metrics=metrics,
        log_history=list(trainer.state.log_history),
        skipped=len(skipped),
    )
    if trainer.accelerator.is_main_process:
        summary = {"metrics": metrics, "model_dir": str(model_dir), "skipped_rows": len(skipped)}
        (out / RESULT_FILE).write_text(json.dumps(summary, indent=2, default=float) + "\n", encoding="utf-8")
    return result
