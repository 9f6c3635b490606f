r"""GLOBE's locatability reward model, trained on TRL's SFTTrainer, then judged on held-out places.

GLOBE (arXiv 2506.14674) rewards a rollout with
:math:`R_{loc} = P(\text{yes}) / (P(\text{yes}) + P(\text{no}))`, read from a VLM fine-tuned
with LoRA (r 16, alpha 64, learning rate 1e-4, 2 epochs) to answer, given an image and its
location reasoning, whether the image is visually locatable. This is that fine-tune:

1. the data is ``georeason data locatability``'s (:mod:`georeason.pipelines.locatability`):
   (image, reasoning) -> "yes"/"no", a ``train`` and a ``test`` split held out by place;
2. each row becomes GLOBE's judge conversation (:func:`georeason.rewards.judges.judge_messages`:
   the judge instruction, the image, the text) and a one-word answer, so the model is
   trained on exactly what the judge later asks it; the loss is on the answer only;
3. after training, the saved model (the adapter, or the merged model with ``merge_lora``) is
   loaded back as the judge the GRPO reward uses (:class:`~georeason.rewards.judges.LocalJudge`)
   and scored on the held-out split: accuracy, AUROC, ECE and a reliability plot, in
   ``output_dir/report.md`` and ``metrics.json`` (:func:`evaluate_judge`).
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from georeason.train.callbacks import use_step_lines
from georeason.train.common import (
    LOG_FILE,
    TrainResult,
    finish,
    jsonl_log_callback,
    load_for_training,
    resume_checkpoint,
)
from georeason.train.config import GeoSFTConfig
from georeason.train.data import Skipped

logger = logging.getLogger("georeason.train")

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
PLOT_FILE = "reliability.png"
PREDICTIONS_FILE = "heldout_predictions.jsonl"


@dataclass
class LocatabilityRMConfig(GeoSFTConfig):
    """SFT of a yes/no locatability judge (GLOBE's reward model) plus its held-out evaluation.

    ``dataset_name`` is a folder of ``georeason data locatability`` (columns ``image``,
    ``reasoning``, ``label``); ``dataset_split`` is trained on, ``eval_split`` judged after.
    """

    eval_split: str | None = field(
        default="test",
        metadata={
            "help": "Split of dataset_name the trained judge is evaluated on (held-out places); null skips it."
        },
    )
    judge_batch_size: int = field(
        default=8, metadata={"help": "Held-out evaluation: (image, text) pairs per forward pass."}
    )
    calibration_bins: int = field(
        default=10, metadata={"help": "Equal-width P(yes) bins of the reliability plot and the ECE."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.judge_batch_size < 1:
            raise ValueError(f"judge_batch_size must be >= 1, got {self.judge_batch_size}.")
        if self.calibration_bins < 1:
            raise ValueError(f"calibration_bins must be >= 1, got {self.calibration_bins}.")


@dataclass
class LocatabilityRMResult:
    """The trained judge and, when a held-out split was given, its evaluation."""

    train: TrainResult
    metrics: dict[str, Any] | None


def _system_parts(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Text contents as a list of text parts: one Arrow type for every message of the
    dataset (the chat template renders a string and a one-text-part list alike)."""
    return [
        {**m, "content": [{"type": "text", "text": m["content"]}]} if isinstance(m["content"], str) else m
        for m in messages
    ]


def load_locatability_split(path: str | Path, split: str) -> Any:
    """One split of a locatability dataset, checked for the columns the judge needs."""
    from georeason.tables import open_dataset

    ds, _, _ = open_dataset(path, split, hint=" (a folder of `georeason data locatability`)")
    missing = [c for c in ("image", "reasoning", "label") if c not in ds.column_names]
    if missing:
        raise ValueError(
            f"{path} [{split}] has no {', '.join(missing)} column: build it with `georeason data locatability`"
        )
    bad = sorted({x for x in ds["label"] if x not in ("yes", "no")})
    if bad:
        raise ValueError(f"{path} [{split}]: labels must be 'yes' or 'no', found {bad[:3]}")
    return ds


def to_judge_sft_dataset(ds: Any) -> Any:
    """Locatability rows -> TRL prompt / completion / image rows: GLOBE's judge conversation
    (:func:`~georeason.rewards.judges.judge_messages`) and the one-word answer."""
    from georeason.rewards.judges import judge_messages

    prompts = [_system_parts(judge_messages(t)) for t in ds["reasoning"]]
    answers = [[{"role": "assistant", "content": [{"type": "text", "text": x}]}] for x in ds["label"]]
    out = ds.select_columns(["image"])
    return out.add_column("prompt", prompts).add_column("completion", answers)


def train_locatability_rm(config: LocatabilityRMConfig) -> LocatabilityRMResult:
    """Train the judge as ``config`` says, then evaluate it on ``config.eval_split``.

    >>> cfg = LocatabilityRMConfig(model_name_or_path="runs/tiny/model",  # doctest: +SKIP
    ...     dataset_name="runs/tiny/locatability", output_dir="runs/tiny/rm", use_peft=True)
    >>> train_locatability_rm(cfg).metrics["auroc"]  # doctest: +SKIP
    """
    from trl import SFTTrainer

    checkpoint = resume_checkpoint(config)
    # fail on a bad dataset before minutes of model loading
    raw = load_locatability_split(config.dataset_name, config.dataset_split)  # type: ignore[arg-type]
    heldout = (
        load_locatability_split(config.dataset_name, config.eval_split) if config.eval_split else None  # type: ignore[arg-type]
    )
    if config.max_train_samples is not None and config.max_train_samples < len(raw):
        raw = raw.shuffle(seed=config.seed).select(range(config.max_train_samples))
    train_dataset = to_judge_sft_dataset(raw)
    n_yes = sum(1 for x in raw["label"] if x == "yes")
    logger.info("locatability RM on %d rows (%d yes, %d no)", len(raw), n_yes, len(raw) - n_yes)

    model, processor = load_for_training(config)
    # The answer is one word: the loss is on its tokens (and the end of turn) only,
    # TRL's completion_only_loss for prompt/completion data.
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=train_dataset,
        processing_class=processor,
        peft_config=config.peft_config(),
        callbacks=[jsonl_log_callback(Path(str(config.output_dir)) / LOG_FILE)],
    )
    use_step_lines(trainer, "RM", Path(str(config.output_dir)) / LOG_FILE)
    output = trainer.train(resume_from_checkpoint=checkpoint)
    result = finish(trainer, config, output, Skipped())
    main = trainer.accelerator.is_main_process
    del trainer, model  # the judge is loaded back from disk: what was saved is what is measured
    gc.collect()

    metrics = None
    if heldout is not None and main:
        from georeason.rewards.judges import LocalJudge

        options: dict[str, Any] = {"batch_size": config.judge_batch_size, "dtype": config.model_dtype}
        if config.use_cpu:
            options["device"] = "cpu"
        if config.max_pixels is not None:
            options["max_pixels"] = config.max_pixels
        judge = LocalJudge(str(result.model_dir), **options)
        metrics = evaluate_judge(
            judge,
            heldout,
            out_dir=result.output_dir,
            n_bins=config.calibration_bins,
            title=f"{result.model_dir} on {config.dataset_name} [{config.eval_split}]",
        )
    return LocatabilityRMResult(train=result, metrics=metrics)


def evaluate_judge(
    judge: Callable[..., Sequence[Any]],
    dataset: Any,
    *,
    out_dir: str | Path | None = None,
    n_bins: int = 10,
    threshold: float = 0.5,
    chunk: int = 64,
    title: str = "",
) -> dict[str, Any]:
    """Score a locatability judge on labelled (image, reasoning) rows; return the metrics
    (:func:`georeason.eval.calibration.binary_metrics`: accuracy at ``threshold``, AUROC, ECE,
    Brier, reliability bins) plus the count of items the judge could not score (left out).

    ``judge`` is any judge of :mod:`georeason.rewards.judges` (``judge(texts, images=...)``
    -> P(yes) or an error per item): the trained model in process, or a served one. With
    ``out_dir``: ``metrics.json``, ``report.md``, ``reliability.png`` and the per-row
    ``heldout_predictions.jsonl`` are written there.
    """
    from georeason.eval.calibration import binary_metrics, reliability_plot

    scores: list[float] = []
    labels: list[bool] = []
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    ids = dataset["id"] if "id" in dataset.column_names else [str(i) for i in range(len(dataset))]
    for start in range(0, len(dataset), chunk):
        part = dataset.select(range(start, min(start + chunk, len(dataset))))
        out = list(judge(list(part["reasoning"]), images=list(part["image"])))
        if len(out) != len(part):
            raise ValueError(f"the judge returned {len(out)} values for {len(part)} rows")
        for k, (value, label) in enumerate(zip(out, part["label"], strict=True)):
            row_id = ids[start + k]
            if isinstance(value, BaseException) or value is None:
                failures.append(f"{row_id}: {value}")
                rows.append({"id": row_id, "label": label, "p_yes": None, "error": str(value)})
                continue
            scores.append(float(value))
            labels.append(label == "yes")
            rows.append({"id": row_id, "label": label, "p_yes": float(value)})
    if not scores:
        raise ValueError(f"the judge scored none of the {len(dataset)} rows (e.g. {failures[:1]})")
    metrics = binary_metrics(scores, labels, threshold=threshold, n_bins=n_bins)
    metrics["judge_failures"] = len(failures)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        from georeason.runs import write_json, write_records

        write_json(out / METRICS_FILE, metrics)
        write_records(out / PREDICTIONS_FILE, rows)
        reliability_plot(metrics["reliability"], out / PLOT_FILE, title=title or "reliability of P(yes)")
        (out / REPORT_FILE).write_text(_report(metrics, title, failures), encoding="utf-8")
    return metrics


def _fmt(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and x != x) else f"{x:.3f}"


def _report(m: dict[str, Any], title: str, failures: list[str]) -> str:
    lines = [
        "# Locatability judge on held-out places",
        "",
        f"{title}" if title else "",
        "",
        f"- examples: {m['n']} ({m['n_yes']} yes, {m['n_no']} no); judge failures left out: {m['judge_failures']}",
        f"- AUROC: {_fmt(m['auroc'])} (0.5 = chance; rank-based, ties count one half)",
        f"- accuracy at P(yes) >= {m['threshold']:g}: {_fmt(m['accuracy'])}",
        f"- ECE ({len(m['reliability'])} equal-width bins): {_fmt(m['ece'])}; Brier score: {_fmt(m['brier'])}",
        f"- mean P(yes): {_fmt(m['mean_p_yes']['yes'])} on 'yes' rows, {_fmt(m['mean_p_yes']['no'])} on 'no' rows",
        "",
        f"![reliability]({PLOT_FILE})",
        "",
        "| P(yes) bin | n | mean P(yes) | share of yes |",
        "|---|---:|---:|---:|",
    ]
    for b in m["reliability"]:
        lines.append(
            f"| {b['lo']:.1f}-{b['hi']:.1f} | {b['n']} | {_fmt(b['mean_p_yes'])} | {_fmt(b['share_yes'])} |"
        )
    if failures:
        lines += ["", "Items the judge could not score:", ""] + [f"- {f}" for f in failures[:20]]
    lines.append("")
    return "\n".join(lines)


def metrics_line(metrics: dict[str, Any]) -> str:
    """One line for the terminal."""
    return (
        f"held-out: {metrics['n']} examples, AUROC {_fmt(metrics['auroc'])}, accuracy {_fmt(metrics['accuracy'])}, "
        f"ECE {_fmt(metrics['ece'])}"
    )


def read_metrics(output_dir: str | Path) -> dict[str, Any]:
    """The ``metrics.json`` a run wrote."""
    return json.loads((Path(output_dir) / METRICS_FILE).read_text(encoding="utf-8"))


__all__ = [
    "LocatabilityRMConfig",
    "LocatabilityRMResult",
    "evaluate_judge",
    "load_locatability_split",
    "metrics_line",
    "read_metrics",
    "to_judge_sft_dataset",
    "train_locatability_rm",
]
