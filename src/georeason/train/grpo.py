"""GRPO with geolocation rewards, on TRL's GRPOTrainer. Reads top to bottom.

Group Relative Policy Optimization (DeepSeekMath; used by Geo-R and GLOBE): for
each image the policy samples ``num_generations`` answers, each answer is scored
by the reward functions, and its advantage is its reward relative to the group's
(``(r - mean) / std``), so no value network is needed. Everything below is
TRL's GRPOTrainer; this module only decides what goes in:

- the prompt: the protocol's messages with the image, as TRL's conversational format;
- the rewards: functions of :mod:`georeason.rewards` (Geo-R's r_dist × r_format,
  GLOBE's accuracy / locatability / visual / format, ours), with weights;
- the labels: every GeoSample column reaches the reward functions as a keyword
  argument (``lat``, ``lon``, ``country``, ``entities``, ...).

TRL logs each reward's mean and std per step (``rewards/<name>/mean``), the total
``reward``, KL, completion lengths; :mod:`georeason.train.common` appends every
log to ``output_dir/train_log.jsonl`` as it happens.
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
from georeason.train.config import GeoGRPOConfig
from georeason.train.data import load_geo_dataset, to_grpo_dataset

logger = logging.getLogger("georeason.train")


def train_grpo(config: GeoGRPOConfig) -> TrainResult:
    """Run GRPO as ``config`` says; return where the model was saved and the logs.

    >>> from georeason.train import GeoGRPOConfig, train_grpo
    >>> cfg = GeoGRPOConfig(model_name_or_path="runs/sft", dataset_name="runs/world",  # doctest: +SKIP
    ...                     rewards=["geor:1"], output_dir="runs/grpo", num_generations=4, max_steps=20)
    >>> train_grpo(cfg).log_history[-2]["rewards/geor/mean"]  # doctest: +SKIP
    0.31
    """
    from trl import GRPOTrainer

    checkpoint = resume_checkpoint(config)

    # 1. Policy and processor. The reference model for the KL term (beta > 0) is
    #    a frozen copy TRL makes of this one (with PEFT: the adapter switched off).
    model, processor = load_for_training(config)

    # 2. Rewards, built from the config's "name:weight" list; TRL sums them with
    #    those weights. They were checked when the config was made.
    reward_funcs, _weights = config.reward_functions()

    # 3. Data: prompt + image per row, the label columns passed through untouched
    #    for the rewards. No answer text is needed: the reward is the only teacher.
    raw, skipped = load_geo_dataset(
        config.dataset_name,  # type: ignore[arg-type]  # checked in __post_init__
        config.dataset_split,
        max_samples=config.max_train_samples,
        seed=config.seed,
    )
    write_skipped(str(config.output_dir), skipped, main_process=config.process_index == 0)
    train_dataset = to_grpo_dataset(raw, config.protocol)
    if config.log_completions and "id" in train_dataset.column_names:
        # TRL's completion tables carry no sample id; `data rollouts` / `data select
        # --rollouts` need it to judge each sample's group, so the first reward logs it.
        from georeason.train.rewards import with_id_logging

        reward_funcs[0] = with_id_logging(reward_funcs[0])
    logger.info(
        "GRPO on %d rows (%d skipped), protocol %s, rewards %s",
        len(train_dataset),
        len(skipped),
        config.protocol,
        ", ".join(config.rewards or []),
    )

    # 4. Trainer. Rollouts use the model's own generate() by default; vLLM rollouts
    #    (use_vllm) are opt-in: for VLMs they had a double image-token bug (trl#6294).
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=config,
        train_dataset=train_dataset,
        processing_class=processor,
        peft_config=config.peft_config(),
        callbacks=[jsonl_log_callback(Path(str(config.output_dir)) / LOG_FILE)],
    )
    # One short line per logging step in the terminal (every number: train_log.jsonl).
    use_step_lines(trainer, "GRPO", Path(str(config.output_dir)) / LOG_FILE)

    # 5. Train, then save where from_pretrained finds it.
    output = trainer.train(resume_from_checkpoint=checkpoint)
    return finish(trainer, config, output, skipped)
