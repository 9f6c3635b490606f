"""One way to configure a command: every field of a pipeline's config dataclass is a flag
with help, ``--config FILE`` and ``--set KEY=VALUE`` reach the same keys, and the order is
defaults < --config < --set < flags, for every pipeline command alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from georeason.cli import app
from georeason.configs import ConfigError, build, keys_of

ENV = {"HF_HUB_OFFLINE": "1", "COLUMNS": "200", "NO_COLOR": "1", "GEOREASON_DEBUG": None}


def pipeline_commands() -> dict[str, Any]:
    """'eval', 'data select', ... -> the click command, for every command built from a config."""
    out: dict[str, Any] = {}

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            walk(sub, (*path, name))
        if getattr(cmd, "config_options", None) is not None:
            out[" ".join(path)] = cmd

    walk(typer.main.get_command(app), ())
    return out


def resolve(path: str, args: list[str], base: Any = None) -> Any:
    """The config a command line gives, parsed by the command itself (its function not run)."""
    cmd = pipeline_commands()[path]
    required = {"eval": ["--out", "o"], "demo": []}.get(path, ["src", "--out", "o"])
    with cmd.make_context(f"georeason {path}", [*required, *args]) as ctx:
        cmd.config_options.take(ctx)
        return cmd.config_options.resolve(ctx, base=base)


def test_the_pipeline_commands_are_built_from_their_configs() -> None:
    assert set(pipeline_commands()) == set(PIPELINES)


PIPELINES = ["eval", "data select", "data distill", "data locatability", "demo"]


@pytest.mark.parametrize("path", PIPELINES)
def test_every_field_is_a_flag_with_help(path: str) -> None:
    cmd = pipeline_commands()[path]
    options = cmd.config_options
    flags = {opt: p for p in cmd.params for opt in (*p.opts, *getattr(p, "secondary_opts", []))}
    for key in keys_of(options.cls):
        flag = options.flag_of(key.removesuffix(".<key>"))
        assert flag in flags, f"{path}: {key} has no flag"
        assert len((flags[flag].help or "").strip()) > 10, f"{path} {flag}: no help text"
    shown = CliRunner().invoke(app, [*path.split(), "--help"], env=ENV).output
    assert "--config" in shown and "--set" in shown


def test_precedence_defaults_config_set_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "eval.yaml"
    cfg.write_text(
        "benchmark: csv\ndata: d\nmodel: m\nbatch_size: 4\nmax_new_tokens: 100\ntop_p: 0.5\n"
        "backend_options: {base_url: 'http://a/v1', concurrency: 2}\n"
    )
    args = ["--config", str(cfg), "--set", "batch_size=6", "--set", "max_new_tokens=200",
            "--batch-size", "7", "--set", "backend_options.concurrency=4", "--backend-option", "device=cpu"]  # fmt: skip
    c = resolve("eval", args)
    assert c.batch_size == 7  # flag > --set > file
    assert c.max_new_tokens == 200  # --set > file
    assert c.top_p == 0.5  # file > default
    assert c.temperature == 0.0 and c.protocol == "geor"  # defaults
    assert c.backend_options == {"base_url": "http://a/v1", "concurrency": 4, "device": "cpu"}
    # a flag left at its default does not undo the file: only flags given count
    assert resolve("eval", ["--config", str(cfg), "--top-p", "1.0"]).top_p == 1.0
    assert resolve("eval", ["--config", str(cfg)]).top_p == 0.5


def test_nested_lists_and_a_base(tmp_path: Path) -> None:
    cfg = tmp_path / "distill.yaml"
    cfg.write_text("teachers: ['hf:a', 'b=hf:b']\nfilters: {agree_on: city, max_km: 5}\n")
    c = resolve("data distill", ["-c", str(cfg), "--set", "filters.max_km=10", "--min-agree", "1"])
    assert c.teachers == ["hf:a", "b=hf:b"]
    assert (c.filters.agree_on, c.filters.max_km, c.filters.min_agree) == ("city", 10.0, 1)
    assert (
        resolve(
            "data distill", ["-c", str(cfg), "--set", "filters.max_km=10", "--max-km", "3"]
        ).filters.max_km
        == 3
    )
    assert resolve("data distill", ["-t", "hf:a,x=hf:b", "-t", "y=hf:c"]).teachers == [
        "hf:a",
        "x=hf:b",
        "y=hf:c",
    ]

    sel = resolve("data select", ["--balance-by", "continent,cell", "--hotspots", "5", "--set", "seed=3"])
    assert (sel.balance_by, sel.n_hotspots, sel.seed) == (("continent", "cell"), 5, 3)

    from georeason.demo import quick_config

    demo = resolve("demo", ["--set", "sft_steps=7", "--out", str(tmp_path)], base=quick_config())
    assert demo.sft_steps == 7 and demo.grpo_steps == quick_config().grpo_steps and demo.out == tmp_path


def run(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(app, args, env=ENV)
    return res.exit_code, res.output


def test_bad_keys_and_values_are_one_clear_line(tmp_path: Path) -> None:
    base = ["eval", "--out", str(tmp_path / "e"), "-b", "csv", "--data", ".", "-m", "m"]
    code, out = run([*base, "--set", "bogus=1"])
    assert code == 2 and out.count("error: ") == 1
    assert "unknown key(s) for EvalConfig: 'bogus'" in out and "valid keys: benchmark, data, model" in out
    assert "backend_options.<key>" in out
    code, out = run([*base, "--set", "batch_sise=2"])
    assert code == 2 and "did you mean batch_size" in out
    code, out = run([*base, "--set", "batch_size"])
    assert code == 2 and "key=value" in out
    code, out = run([*base, "--config", str(tmp_path / "none.yaml")])
    assert code == 2 and "does not exist" in out
    code, out = run(["eval", "--out", str(tmp_path / "e"), "--model", "m"])
    assert code == 2 and "missing --benchmark, --data" in out
    code, out = run([*base, "--set", "batch_size=0"])
    assert code == 2 and "--batch-size" in out and "batch_size must be >= 1" in out
    code, out = run(
        [
            "data",
            "distill",
            str(tmp_path),
            "--out",
            str(tmp_path / "d"),
            "-t",
            "hf:a",
            "--set",
            "filters.nope=1",
        ]
    )
    assert code == 2 and "filters.max_km" in out  # the valid keys, the nested ones spelled out
    assert not (tmp_path / "e").exists() and not (tmp_path / "d").exists()


def test_build_layers_without_a_command_line() -> None:
    """The layering the commands use, on its own (training's recipes use it too)."""
    from georeason.pipelines.select import SelectConfig

    c = build(SelectConfig, file={"cell_km": 50, "balance_by": "admin1"}, overrides=["cell_km=1e2"])
    assert c.cell_km == 100.0 and isinstance(c.cell_km, float) and c.balance_by == ("admin1",)
    with pytest.raises(ConfigError, match="did you mean radius_km"):
        build(SelectConfig, overrides=["radius_kms=3"])


@pytest.mark.requires("trl", "transformers", "torch")
def test_train_set_takes_the_same_dotted_keys() -> None:
    from georeason.train import GeoGRPOConfig, RecipeError, build_config

    recipe = {"model_name_or_path": "m", "dataset_name": "d", "output_dir": "o", "use_cpu": True}
    recipe |= {"rewards": ["globe_accuracy:1"], "reward_options": {"globe_accuracy": {"alpha": 0.5}}}
    cfg = build_config(
        GeoGRPOConfig, recipe, ["reward_options.globe_accuracy.alpha=0.8", "learning_rate=1e-6"]
    )
    assert cfg.reward_options == {"globe_accuracy": {"alpha": 0.8}} and cfg.learning_rate == 1e-6
    with pytest.raises(RecipeError, match="did you mean learning_rate"):
        build_config(GeoGRPOConfig, recipe, ["learning_rat=1"])
