"""benchmarks/ablations.py --smoke: every arm of both papers' ablations runs end to end.

Two training steps per arm and a handful of photos (the numbers mean nothing): what is
checked is that each arm trains with its own rewards on its own photos, is evaluated,
lands in the report beside the papers' rows, and that a rerun resumes: finished stages
are skipped, an unfinished one is redone. The full run is documented in
docs/experiments/ (its command is in the script's docstring).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ablations.py"
ARMS = ("sft", "rl_random", "rl_hard", "sft_compute", "globe_sft", "globe_acc", "globe_acc_loc", "globe_all")


def _run(out: Path) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--seeds", "0", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("ablations")
    return out, _run(out)


def _rewards_logged(model: Path) -> set[str]:
    keys: set[str] = set()
    for line in (model / "train_log.jsonl").read_text().splitlines():
        keys |= {
            k.split("/")[1] for k in json.loads(line) if k.startswith("rewards/") and k.endswith("/mean")
        }
    return keys


@pytest.mark.slow
def test_every_arm_is_trained_evaluated_and_reported(smoke: tuple[Path, str]) -> None:
    out, stdout = smoke
    seed = out / "seed0"
    result = json.loads((seed / "results.json").read_text())
    assert set(result["rows"]) == set(ARMS)
    for arm, row in result["rows"].items():
        for t in (1, 25, 200, 750, 2500):
            v = row[f"acc@{t}km"]
            assert v is not None and 0.0 <= v <= 100.0, (arm, t, v)
    # GRPO arms log a training reward; SFT arms have none
    for arm in ("rl_random", "rl_hard", "globe_acc", "globe_acc_loc", "globe_all"):
        assert math.isfinite(result["rows"][arm]["reward_first"]), arm
    assert "reward_first" not in result["rows"]["sft"]
    # each GRPO arm trained with its own rewards
    assert _rewards_logged(seed / "rl_random" / "model") == {"geor"}
    assert _rewards_logged(seed / "globe_acc" / "model") == {"globe_accuracy", "globe_format"}
    assert _rewards_logged(seed / "globe_acc_loc" / "model") == {
        "globe_accuracy",
        "globe_locatability",
        "globe_format",
    }
    assert _rewards_logged(seed / "globe_all" / "model") == {
        "globe_accuracy",
        "globe_locatability",
        "globe_visual",
        "globe_format",
    }
    # the hard set came from the warm start's evaluation, and random took as many photos
    hard = json.loads((seed / "select_hard" / "stage.json").read_text())
    rand = json.loads((seed / "select_random" / "stage.json").read_text())
    assert 1 <= hard["rows"] == rand["rows"] == result["rl_photos"] <= 4
    assert "--correctness" in (seed / "select_hard" / "log.txt").read_text()
    assert result["sft_compute_steps"] >= 1
    # the report: both tables, the papers' rows, every arm
    report = (out / "report.md").read_text()
    for label in ("+ RL random", "+ RL hard", "SFT, same compute as RL", "accuracy + locatability + visual"):
        assert label in report
    assert "*paper:* + RL hard | 14.8 | 36.3 | 54.6 | 72.7 | 83.8" in report
    assert "*paper:* + GRPO, accuracy + locatability + visual | — | 62.85 | 73.83" in report
    assert report in stdout


@pytest.mark.slow
def test_rerun_skips_finished_stages_and_redoes_an_unfinished_one(smoke: tuple[Path, str]) -> None:
    out, _ = smoke
    seed = out / "seed0"
    before = {p.parent.name: p.stat().st_mtime_ns for p in seed.glob("*/stage.json")}
    (seed / "eval_globe_all" / "stage.json").unlink()  # as if killed during this stage
    stdout = _run(out)
    ran = [line.split()[1] for line in stdout.splitlines() if line.endswith(" ...")]
    assert ran == ["eval_globe_all"]
    after = {p.parent.name: p.stat().st_mtime_ns for p in seed.glob("*/stage.json")}
    assert {k for k in before if after[k] != before[k]} == {"eval_globe_all"}
