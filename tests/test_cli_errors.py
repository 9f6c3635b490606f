"""Every command of the CLI, given bad input, ends with one `error:` line and a non-zero exit,
never a traceback, and leaves no folder behind when it failed before doing any work.

The commands are enumerated from the typer app, so a new command is covered at once: it
gets the generic bad inputs (an unknown option; no arguments where some are required)
and `test_every_command_has_bad_input_cases` asks for its own cases in ``BAD_INPUT``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import georeason.commands  # noqa: F401  (registers the subcommands)
from georeason.cli import app, explain, extra_for, missing_module_message, to_json

ROOT = Path(__file__).resolve().parents[1]
CSV_BENCH = ROOT / "tests" / "fixtures" / "benchmarks" / "csv_bench"
ENV = {"HF_HUB_OFFLINE": "1", "COLUMNS": "200", "NO_COLOR": "1", "GEOREASON_DEBUG": None}


def command_paths() -> list[tuple[str, ...]]:
    """Every leaf command of the CLI, e.g. ('score',), ('train', 'sft'), ('data', 'check')."""
    root = typer.main.get_command(app)
    out: list[tuple[str, ...]] = []

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in sorted(subs.items()):
                walk(sub, (*path, name))
        else:
            out.append(path)

    walk(root, ())
    return out


def leaf(path: tuple[str, ...]) -> Any:
    cmd: Any = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def check_error(output: str, code: int, expect: str | None = None) -> str:
    """One `error:` line, no traceback, a non-zero exit; returns the error line."""
    assert code != 0, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    assert "╭" not in output, output  # no boxed usage panel: one line
    if expect is not None:
        assert expect.lower() in errors[0].lower(), output
    return errors[0]


def invoke(args: list[str]) -> tuple[str, int]:
    res = CliRunner().invoke(app, args, env=ENV)
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit), repr(
        res.exception
    )
    return res.output, res.exit_code


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    return {"wrong": wrong, "empty": empty, "missing": tmp_path / "missing.csv", "tmp": tmp_path}


# Per command: (arguments, a word the error line must hold, a path that must not exist
# afterwards). "{wrong}" etc. are filled from the `files` fixture.
BAD_INPUT: dict[tuple[str, ...], list[tuple[list[str], str, str | None]]] = {
    ("score",): [
        (["{missing}"], "no such file", None),
        (["{wrong}"], "could not find the true latitude/longitude", None),
        (["{empty}"], "could not read", None),
        (["--example", "--thresholds", "x"], "thresholds", None),
    ],
    ("geocode",): [
        (["--lat", "100", "--lon", "0"], "out of range", None),
        (["--lat", "1"], "both --lat and --lon", None),
        (["--city", "Xyzzyqwv"], "no place named", None),
    ],
    ("synth",): [(["--out", "{tmp}/world", "--n-places", "7"], "multiple", "{tmp}/world")],
    ("demo",): [(["--n-train", "3"], "--n-train", None)],
    ("locate",): [
        (["{missing}", "--model", "m"], "no such image file", None),
        (["{wrong}", "--backend", "nope"], "unknown backend", None),
    ],
    ("eval",): [
        (["--benchmark", "foo", "--data", ".", "--model", "m", "--out", "{tmp}/e1"], "unknown benchmark", "{tmp}/e1"),
        (["--benchmark", "csv", "--data", "{wrong}", "--model", "m", "--out", "{tmp}/e2"], "latitude", "{tmp}/e2"),
        (["--benchmark", "csv", "--data", "{empty}", "--model", "m", "--out", "{tmp}/e3"], "is empty", "{tmp}/e3"),
        (["--benchmark", "synthetic", "--data", "{tmp}/nowhere", "--model", "m", "--out", "{tmp}/e4"], "not found", "{tmp}/e4"),
        (["--benchmark", "csv", "--data", str(CSV_BENCH), "--model", "{tmp}/no/model", "--out", "{tmp}/e5/x"], "does not exist", "{tmp}/e5"),
        (["--benchmark", "csv", "--data", str(CSV_BENCH), "--model", "m"], "--out", None),
    ],
    ("serve",): [(["--model", "{tmp}/no/model"], "does not exist", None)],
    ("view",): [
        (["{tmp}/no/run"], "no such run folder", None),
        (["{wrong}"], "is a file", None),
        (["{tmp}"], "not an evaluation run", None),
    ],
    ("train", "sft"): [(["--config", "{tmp}/nope.yaml"], "does not exist", None)],
    ("train", "grpo"): [(["--config", str(ROOT / "recipes/tiny/geor_grpo.yaml"), "--set", "bogus=1"], "unknown key", None)],
    ("train", "tiny-model"): [(["--out", "{tmp}/tm", "--world", "{tmp}/nowhere"], "not found", "{tmp}/tm")],
    ("train", "locatability-rm"): [
        (["--config", str(ROOT / "recipes/tiny/globe_locatability_rm.yaml"), "--set", "bogus=1"], "unknown key", None),
        (["--config", str(ROOT / "recipes/tiny/globe_locatability_rm.yaml"), "--set", "calibration_bins=0"], "calibration_bins", None),
    ],
    ("data", "fetch"): [(["nothing", "--to", "{tmp}/f"], "unknown source", "{tmp}/f")],
    ("data", "check"): [
        (["--benchmark", "csv", "--data", "{wrong}"], "latitude", None),
        (["--benchmark", "csv", "--data", "{tmp}/nowhere"], "not found", None),
    ],
    ("data", "label"): [(["{missing}", "--out", "{tmp}/l.parquet"], "no such table", "{tmp}/l.parquet")],
    ("data", "select"): [(["{wrong}", "--out", "{tmp}/s.csv"], "latitude", "{tmp}/s.csv")],
    ("data", "rollouts"): [(["{tmp}/nowhere", "--out", "{tmp}/r.jsonl"], "completion", "{tmp}/r.jsonl")],
    ("data", "locatability"): [
        (["{missing}", "--out", "{tmp}/lo"], "no such", "{tmp}/lo"),
        (["{wrong}", "--out", "{tmp}/lo2"], "image column", "{tmp}/lo2"),
        (["{tmp}", "--out", "{tmp}/lo3", "--rule", "vibes"], "rule", "{tmp}/lo3"),
    ],
    ("data", "distill"): [
        (["{missing}", "--out", "{tmp}/d", "-t", "hf:m"], "no such dataset", "{tmp}/d"),
        (["{wrong}", "--out", "{tmp}/d2", "-t", "hf:m"], "image column", "{tmp}/d2"),
    ],
}  # fmt: skip


def test_every_command_has_bad_input_cases() -> None:
    missing = [" ".join(p) for p in command_paths() if p not in BAD_INPUT]
    assert not missing, f"add bad-input cases for {missing} to BAD_INPUT in {__file__}"


@pytest.mark.parametrize("path", command_paths(), ids=" ".join)
def test_unknown_option_is_one_line(path: tuple[str, ...]) -> None:
    output, code = invoke([*path, "--no-such-option"])
    assert code == 2
    line = check_error(output, code, "no such option")
    assert f"georeason {' '.join(path)} --help" in line


@pytest.mark.parametrize(
    "path", [p for p in command_paths() if any(x.required for x in leaf(p).params)], ids=" ".join
)
def test_missing_required_argument_is_one_line(path: tuple[str, ...]) -> None:
    output, code = invoke(list(path))
    check_error(output, code, "missing")


def _cases() -> Iterator[Any]:
    for path, cases in BAD_INPUT.items():
        for k, case in enumerate(cases):
            yield pytest.param(path, *case, id=f"{' '.join(path)}-{k}")


@pytest.mark.parametrize(("path", "args", "expect", "absent"), list(_cases()))
def test_bad_input_is_one_clear_line(
    path: tuple[str, ...], args: list[str], expect: str, absent: str | None, files: dict[str, Path]
) -> None:
    fill = {k: str(v) for k, v in files.items()}
    output, code = invoke([*path, *(a.format(**fill) for a in args)])
    check_error(output, code, expect)
    if absent is not None:
        assert not Path(absent.format(**fill)).exists(), f"{absent} left behind:\n{output}"


# --- real processes -----------------------------------------------------------------


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "GEOREASON_DEBUG"}
    full.update(HF_HUB_OFFLINE="1", COLUMNS="200", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "georeason.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=full,
        cwd=cwd,
    )


def test_eval_failures_print_one_line_and_leave_nothing(tmp_path: Path) -> None:
    """The issue's example: an unknown benchmark; and a missing model, after the data loaded."""
    out = tmp_path / "runs" / "x"
    p = run_cli("eval", "--benchmark", "foo", "--data", str(CSV_BENCH), "--model", "m", "--out", str(out))
    check_error(p.stderr, p.returncode, "unknown benchmark 'foo'")
    assert p.stderr.strip().count("\n") == 0 and not (tmp_path / "runs").exists()
    # a folder the user had stays, with what it held, and without the lock
    out.mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    p = run_cli(
        "eval", "--benchmark", "csv", "--data", str(CSV_BENCH), "--model", str(tmp_path / "no_model"),
        "--out", str(out),
    )  # fmt: skip
    check_error(p.stderr, p.returncode, "does not exist")
    assert sorted(x.name for x in out.iterdir()) == ["notes.txt"]


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n")
    args = ("eval", "--benchmark", "csv", "--data", str(wrong), "--model", "m", "--out", str(tmp_path / "x"))
    p = run_cli(*args)
    check_error(p.stderr, p.returncode, "no latitude/longitude columns")
    p = run_cli("--debug", *args)
    assert p.returncode != 0 and "Traceback" in p.stderr and "no latitude/longitude columns" in p.stderr
    p = run_cli(*args, env={"GEOREASON_DEBUG": "1"})
    assert p.returncode != 0 and "Traceback" in p.stderr
    assert not (tmp_path / "x").exists()


# A core-only install, simulated: `sys.modules[name] = None` makes `import name` fail
# (ModuleNotFoundError) in the child, as if the extra had never been installed.
SITECUSTOMIZE = """
import os, sys
for _name in filter(None, os.environ.get("GEOREASON_TEST_HIDE", "").split(",")):
    sys.modules[_name] = None
"""


@pytest.fixture
def hide_modules(tmp_path: Path) -> Iterator[Any]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)

    def run(hidden: str, *args: str) -> subprocess.CompletedProcess[str]:
        path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
        return run_cli(*args, env={"PYTHONPATH": path, "GEOREASON_TEST_HIDE": hidden}, cwd=tmp_path)

    yield run


def test_the_simulation_hides_the_module(hide_modules: Any) -> None:
    p = hide_modules("PIL", "score", "--example", "--n-bootstrap", "0", "--out", "ex.json")
    assert p.returncode == 0, p.stderr  # the core needs no extra


@pytest.mark.parametrize(
    ("hidden", "args", "extra"),
    [
        ("PIL", ["demo", "--quick", "--out", "demo"], "train"),
        ("torch", ["locate", "img.png", "--model", "m"], "train"),
        ("httpx", ["locate", "img.png", "--backend", "openai"], "serve"),
        ("PIL", ["locate", "img.png", "--backend", "openai"], "serve"),
        ("fastapi", ["serve", "--model", "m"], "serve"),
        ("torch", ["train", "sft", "--config", str(ROOT / "recipes/tiny/geor_sft.yaml")], "train"),
        (
            "torch",
            ["eval", "--benchmark", "csv", "--data", str(CSV_BENCH), "--model", "m", "--out", "ev"],
            "train",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v[:2]),
)
def test_missing_extra_names_the_extra(
    hide_modules: Any, tmp_path: Path, hidden: str, args: list[str], extra: str
) -> None:
    (tmp_path / "img.png").write_bytes(b"not read: the extra is missing first")
    p = hide_modules(hidden, *args)
    line = check_error(p.stderr, p.returncode, f'pip install "georeason[{extra}]"')
    assert f"'{extra}' extra" in line and repr(hidden) in line
    assert p.stderr.strip().count("\n") == 0, p.stderr
    assert not (tmp_path / "demo").exists() and not (tmp_path / "ev").exists()


# --- the helpers ----------------------------------------------------------------------


def test_extra_for_and_messages() -> None:
    assert (
        extra_for("torch.nn") == "train" and extra_for("fastapi") == "serve" and extra_for("vllm") == "vllm"
    )
    assert extra_for("PIL") == "train" and extra_for("PIL.Image", prefer="serve") == "serve"
    assert extra_for("numpy") is None
    msg = missing_module_message(ModuleNotFoundError("No module named 'PIL'", name="PIL"), "demo")
    assert (
        msg.startswith("georeason demo needs the 'train' extra") and 'pip install "georeason[train]"' in msg
    )
    other = missing_module_message(ModuleNotFoundError("No module named 'foo'", name="foo"), "eval")
    assert "No module named 'foo'" in other and "install" in other


def test_explain() -> None:
    assert (
        explain(FileNotFoundError(2, "No such file or directory", "x.csv"))
        == "No such file or directory: x.csv"
    )
    assert explain(ValueError("bad value; use 3")) == "bad value; use 3"
    unexpected = explain(KeyError("boom"))
    assert "KeyError" in unexpected and "--debug" in unexpected and "GEOREASON_DEBUG=1" in unexpected


def test_to_json_never_writes_nan() -> None:
    import numpy as np

    text = to_json({"a": float("nan"), "b": [float("inf"), np.float64("nan"), np.int64(3)], "p": Path("x")})
    assert json.loads(text) == {"a": None, "b": [None, None, 3], "p": "x"}
    assert "NaN" not in text and "Infinity" not in text


# --- geocode: on land or not, the distance to the city named, valid JSON -----------------


def test_geocode_at_sea_says_so(tmp_path: Path) -> None:
    p = run_cli("geocode", "--lat", "-60", "--lon", "0")
    assert p.returncode == 0, p.stderr
    place = json.loads(p.stdout)
    assert place["on_land"] is False
    assert place["city_distance_km"] > 5000  # the "nearest city" is half a world away
    assert "not on land" in p.stderr and "km away" in p.stderr


def test_geocode_antarctica_is_valid_json() -> None:
    p = run_cli("geocode", "--lat", "-75", "--lon", "0")
    assert p.returncode == 0, p.stderr
    assert "NaN" not in p.stdout
    place = json.loads(p.stdout, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert place["country_code"] == "AQ" and place["on_land"] is True
    assert place["city_lat"] is None and place["city_distance_km"] is None


def test_geocode_on_land_is_close() -> None:
    p = run_cli("geocode", "--lat", "48.8566", "--lon", "2.3522")
    place = json.loads(p.stdout)
    assert place["on_land"] is True and place["city"] == "Paris" and place["city_distance_km"] < 5
    assert not p.stderr.strip()
    assert math.isclose(place["lat"], 48.8566)


def test_eval_report_json_is_valid_json(tmp_path: Path) -> None:
    """A run where nothing could be scored: the report's rates are null, never NaN."""
    from georeason.eval.report import write_report

    recs = [
        {
            "id": "a",
            "true_lat": 10.0,
            "true_lon": 10.0,
            "pred_lat": None,
            "pred_lon": None,
            "error_kind": "image",
        },
        {
            "id": "b",
            "true_lat": -75.0,
            "true_lon": 0.0,
            "pred_lat": None,
            "pred_lon": None,
            "error_kind": "parse",
        },
    ]
    (tmp_path / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    write_report(tmp_path, plots=False, n_bootstrap=0)
    json.loads(
        (tmp_path / "report.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in report.json")
    )
