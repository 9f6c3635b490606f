"""georeason.train.callbacks: one short line per logging step instead of transformers' raw log dicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")

from transformers import TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import CallbackHandler, PrinterCallback, ProgressCallback

from georeason.train.callbacks import end_line, step_line, use_step_lines

# What TRL's GRPOTrainer logs at one step (abridged: it logs ~40 numbers).
GRPO_LOG = {
    "loss": 0.0123,
    "grad_norm": 0.51,
    "learning_rate": 1e-4,
    "num_tokens": 825.0,
    "completions/mean_length": 39.25,
    "rewards/geor/mean": 0.6221,
    "rewards/geor/std": 0.1,
    "reward": 0.6221,
    "reward_std": 0.1,
    "kl": 0.0041,
    "entropy": 2.3,
    "step_time": 2.4,
    "epoch": 0.1,
}


class _Trainer:
    """What use_step_lines needs of a transformers Trainer: its callback handler."""

    def __init__(self, *callbacks: type) -> None:
        self.callback_handler = CallbackHandler(list(callbacks), None, None, None, None)

    def add_callback(self, cb: Any) -> None:
        self.callback_handler.add_callback(cb)

    def remove_callback(self, cb: Any) -> None:
        self.callback_handler.remove_callback(cb)


def _drive(trainer: _Trainer, tmp_path: Path, logs: list[dict[str, Any]], disable_tqdm: bool) -> None:
    args = TrainingArguments(output_dir=str(tmp_path), disable_tqdm=disable_tqdm, report_to=[])
    state, control = TrainerState(), TrainerControl()
    state.max_steps = 100
    handler = trainer.callback_handler
    handler.on_train_begin(args, state, control)
    for step, log in enumerate(logs, start=1):
        state.global_step = step
        handler.on_step_end(args, state, control)
        handler.on_log(args, state, control, dict(log))
    handler.on_train_end(args, state, control)


def test_step_line_keeps_the_few_numbers_that_matter() -> None:
    line = step_line("GRPO", 7, 100, GRPO_LOG, 2.41)
    assert line == "GRPO step   7/100  loss 0.0123  reward 0.622  KL 0.0041  2.41 s/step"
    assert step_line("SFT", 3, 0, {"loss": 1.5, "grad_norm": 2.0}, None) == "SFT step 3  loss 1.5"
    # a number that is not finite is left out, not printed as nan
    assert "nan" not in step_line("GRPO", 1, 10, {"loss": float("nan"), "reward": 0.5}, None)
    assert (
        end_line("GRPO", {"train_runtime": 241.2, "train_loss": float("nan")}, None) == "GRPO done in 241 s"
    )


@pytest.mark.parametrize("disable_tqdm", [False, True])
def test_use_step_lines_replaces_the_raw_dict_printing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], disable_tqdm: bool
) -> None:
    default = PrinterCallback if disable_tqdm else ProgressCallback
    trainer = _Trainer(default)
    use_step_lines(trainer, "GRPO", tmp_path / "train_log.jsonl")
    kinds = [type(cb) for cb in trainer.callback_handler.callbacks]
    assert default not in kinds and len(kinds) == 1 and issubclass(kinds[0], default)

    logs = [GRPO_LOG, GRPO_LOG, {"train_runtime": 5.0, "train_loss": 0.01}]
    _drive(trainer, tmp_path, logs, disable_tqdm)
    out = capsys.readouterr()
    text = out.out + out.err
    assert "{" not in text and "grad_norm" not in text  # no raw dict
    assert text.count("GRPO step") == 2 and "reward 0.622  KL 0.0041" in text
    assert f"GRPO done in 5 s, mean loss 0.01; every logged number: {tmp_path / 'train_log.jsonl'}" in text


def test_use_step_lines_leaves_a_trainer_without_printing_alone(tmp_path: Path) -> None:
    trainer = _Trainer()
    use_step_lines(trainer, "SFT")
    assert trainer.callback_handler.callbacks == []
