"""Supervised fine-tuning (the warm start before GRPO), on TRL's SFTTrainer.

Geo-R's first stage: teach the model the answer format and the region hierarchy by
imitation, with gold Chain of Region answers written from each image's ground-truth
coordinates (no teacher model, no synthetic reasoning). Reads top to bottom.
"""

from __future__ import annotations

import logging
from pathlib import Path

from georeason.train.callbacks import use_step_lines
from georeason.train.common import (
    LOG_FILE,
    TrainResult,
    finish,
    jsonl_log_callback,
    load_for_training,
    resume_checkpoint,
    write_skipped,
)
from georeason.train.config import GeoSFTConfig
from georeason.train.data import load_geo_dataset, to_sft_dataset

logger = logging.getLogger("georeason.train")


def train_sft(config: GeoSFTConfig) -> TrainResult:
    """Run SFT as ``config`` says; return where the model was saved and the logs.

    >>> from georeason.train import GeoSFTConfig, train_sft
    >>> cfg = GeoSFTConfig(model_name_or_path="runs/tiny", dataset_name="runs/world",  # doctest: +SKIP
    ...                    output_dir="runs/sft", max_steps=20)
    >>> train_sft(cfg).model_dir  # doctest: +SKIP
    PosixPath('runs/sft')
    """
    from trl import SFTTrainer

    # Resolve the checkpoint first: a wrong path should fail before minutes of loading.
    checkpoint = resume_checkpoint(config)

    # 1. Model and processor (our loader: offline-aware errors, pixel budget applied).
    model, processor = load_for_training(config)

    # 2. Data. Each labelled image becomes (prompt, gold answer, image); rows that
    #    cannot be used are listed in output_dir/skipped_samples.jsonl, not fatal.
    raw, skipped = load_geo_dataset(
        config.dataset_name,  # type: ignore[arg-type]  # checked in __post_init__
        config.dataset_split,
        max_samples=config.max_train_samples,
        seed=config.seed,
    )
    train_dataset, no_answer = to_sft_dataset(raw, config.protocol)
    skipped.rows.extend(no_answer.rows)
    write_skipped(str(config.output_dir), skipped, main_process=config.process_index == 0)
    logger.info("SFT on %d rows (%d skipped), protocol %s", len(train_dataset), len(skipped), config.protocol)

    # 3. Trainer. TRL's vision collator turns the image + messages into pixel
    #    values and tokens on the fly; prompt/completion data means the loss is on
    #    the answer tokens only (completion_only_loss), as in Geo-R's SFT.
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=train_dataset,
        processing_class=processor,
        peft_config=config.peft_config(),
        callbacks=[jsonl_log_callback(Path(str(config.output_dir)) / LOG_FILE)],
    )
    # One short line per logging step in the terminal (every number: train_log.jsonl).
    use_step_lines(trainer, "SFT", Path(str(config.output_dir)) / LOG_FILE)

    # 4. Train (resuming restores weights, optimizer, scheduler, RNG and the data position).
    output = trainer.train(resume_from_checkpoint=checkpoint)

    # 5. Save where from_pretrained finds it; summary in train_result.json.
    return finish(trainer, config, output, skipped)
