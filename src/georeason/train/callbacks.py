"""What a training run shows in the terminal: one short line per logging step.

transformers prints every logged dict whole (``ProgressCallback.on_log``, or
``PrinterCallback`` when ``disable_tqdm``): a GRPO step logs ~40 numbers, ~730
characters, and a hundred of them scroll between the progress bars. The numbers
that say how a run goes are few — loss, reward, KL, time per step — so
:func:`use_step_lines` swaps those two callbacks for ones that print just them:

    GRPO step  10/100  loss 0.0012  reward 0.622  KL 0.0041  2.41 s/step

Every logged number still reaches the trackers (``report_to``) and the run
folder's ``train_log.jsonl`` (:func:`georeason.train.common.jsonl_log_callback`);
the last line of a run says where that file is.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

# (logged key, shown name, format): shown in this order, when the step logged them.
STEP_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("loss", "loss", ".4g"),
    ("reward", "reward", ".3f"),
    ("kl", "KL", ".3g"),
)


def step_line(
    label: str, step: int, max_steps: int, logs: dict[str, Any], seconds_per_step: float | None
) -> str:
    """One logging step as one short line.

    >>> step_line("GRPO", 10, 100, {"loss": 0.0012, "reward": 0.6221, "kl": 0.0041, "x": 1.0}, 2.41)
    'GRPO step  10/100  loss 0.0012  reward 0.622  KL 0.0041  2.41 s/step'
    """
    width = len(str(max_steps)) if max_steps > 0 else 1
    parts = [f"{label} step {step:>{width}}/{max_steps}" if max_steps > 0 else f"{label} step {step}"]
    for key, name, fmt in STEP_FIELDS:
        value = logs.get(key)
        if isinstance(value, int | float) and math.isfinite(value):
            parts.append(f"{name} {value:{fmt}}")
    if seconds_per_step is not None:
        parts.append(f"{seconds_per_step:.3g} s/step")
    return "  ".join(parts)


def end_line(label: str, logs: dict[str, Any], log_file: Path | None) -> str:
    """The trainer's closing log (``train_runtime``, ``train_loss``, ...) as one line.

    >>> end_line("SFT", {"train_runtime": 12.3, "train_loss": 1.5}, Path("runs/sft/train_log.jsonl"))
    'SFT done in 12 s, mean loss 1.5; every logged number: runs/sft/train_log.jsonl'
    """
    line = f"{label} done in {float(logs['train_runtime']):.0f} s"
    loss = logs.get("train_loss")
    if isinstance(loss, int | float) and math.isfinite(loss):
        line += f", mean loss {loss:.4g}"
    return line + (f"; every logged number: {log_file}" if log_file is not None else "")


class _StepLines:
    """The shared part: time per step between logs, and the line to write."""

    def __init__(self, label: str, log_file: Path | None) -> None:
        self.label = label
        self.log_file = log_file
        self._t: float | None = None
        self._step = 0

    def _start(self, state: Any) -> None:
        self._t, self._step = time.perf_counter(), state.global_step

    def _line(self, state: Any, logs: dict[str, Any]) -> str | None:
        if "train_runtime" in logs:
            return end_line(self.label, logs, self.log_file)
        if not any(key in logs for key, _, _ in STEP_FIELDS):
            return None  # an evaluation's or another callback's log: not a training step
        now, per_step = time.perf_counter(), None
        if self._t is not None and state.global_step > self._step:
            per_step = (now - self._t) / (state.global_step - self._step)
        self._t, self._step = now, state.global_step
        return step_line(self.label, state.global_step, state.max_steps, logs, per_step)


def step_lines_callbacks(label: str, log_file: Path | None = None) -> tuple[Any, Any]:
    """``(progress, printer)``: drop-in replacements for transformers' ``ProgressCallback``
    (the bar, labelled, with one line per log above it) and ``PrinterCallback`` (the line
    alone, for ``disable_tqdm=True``)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class StepLinesProgress(ProgressCallback, _StepLines):
        def __init__(self) -> None:
            ProgressCallback.__init__(self)
            _StepLines.__init__(self, label, log_file)

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            # ProgressCallback's bar, with the stage's name in front of it (shown from its next draw).
            super().on_train_begin(args, state, control, **kw)
            if self.training_bar is not None:
                self.training_bar.set_description(label, refresh=False)
            self._start(state)

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
        ) -> None:
            if state.is_world_process_zero and self.training_bar is not None and logs:
                line = self._line(state, logs)
                if line:
                    self.training_bar.write(line)

    class StepLinesPrinter(PrinterCallback, _StepLines):
        def __init__(self) -> None:
            _StepLines.__init__(self, label, log_file)

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self._start(state)

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
        ) -> None:
            if state.is_local_process_zero and logs:
                line = self._line(state, logs)
                if line:
                    print(line, flush=True)

    return StepLinesProgress(), StepLinesPrinter()


def use_step_lines(trainer: Any, label: str, log_file: Path | None = None) -> None:
    """Make ``trainer`` print one short line per logging step (see the module docstring)
    instead of whole log dicts; its progress bar, if any, is labelled ``label``."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    progress, printer = step_lines_callbacks(label, log_file)
    for cls, ours in ((ProgressCallback, progress), (PrinterCallback, printer)):
        if any(type(cb) is cls for cb in trainer.callback_handler.callbacks):
            trainer.remove_callback(cls)
            trainer.add_callback(ours)


__all__ = ["STEP_FIELDS", "end_line", "step_line", "step_lines_callbacks", "use_step_lines"]
