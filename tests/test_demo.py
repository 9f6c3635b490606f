"""`georeason demo --quick`: every stage of the README's main job, for real, in a minute.

The quick run builds the synthetic world and the tiny model, trains SFT then GRPO
(TRL's trainers, Geo-R's reward), evaluates on held-out cities against the
baselines and writes the report and PNGs. Its numbers mean nothing (a few steps);
what is checked is that the pipeline runs end to end and writes what it promises.
The claim itself (GRPO vs SFT across seeds) is measured by
benchmarks/bench_demo_seeds.py, not here.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("matplotlib")

from typer.testing import CliRunner

from georeason import commands  # noqa: F401  (registers the commands)
from georeason.cli import app
from georeason.demo import (
    CDF_PNG,
    COLUMNS,
    HELD_OUT_COLUMNS,
    MAP_PNG,
    N_PHOTOS,
    ORACLES,
    PHOTOS_CSV,
    PHOTOS_DIR,
    REPORT_MD,
    RESULTS_JSON,
    REWARD_PNG,
    ROWS,
    SFT_GRPO,
    SFT_ONLY,
    DemoConfig,
    DemoResult,
    claim_lines,
    compare,
    quick_config,
    sampled_row,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo") / "run"
    # --samples 2: the self-consistency rows run too (two sampled chains, their medoid)
    res = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out), "--seed", "3", "--samples", "2"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return out, res.output


@pytest.mark.slow
def test_quick_demo_writes_report_pngs_and_results(quick_run: tuple[Path, str]) -> None:
    out, output = quick_run
    for png in (REWARD_PNG, CDF_PNG, MAP_PNG):
        data = (out / png).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000, png  # a drawn figure, not an empty file

    report = (out / REPORT_MD).read_text(encoding="utf-8")
    table = [line for line in report.splitlines() if line.startswith("| ")]
    header = table[0]
    for _, label, _ in HELD_OUT_COLUMNS:
        assert label in header
    # held-out cities are never named in training: no `city` column there, and the report says why
    assert "| city |" not in header and "No `city` column here" in report
    # every method and every oracle has its row, each with one cell per column
    for name in (*ROWS, *ORACLES.values()):
        row = next((line for line in table if line.startswith(f"| {name} |")), None)
        assert row is not None, f"missing row {name!r}"
        assert row.count("|") == len(HELD_OUT_COLUMNS) + 2
    # the oracle rows carry the names the text explains them by
    for key, label in ORACLES.items():
        assert f"oracle {key}:" in label and f"*{key}*" in report
    for png in (REWARD_PNG, CDF_PNG, MAP_PNG):
        assert f"]({png})" in report
    assert "Does GRPO beat SFT only?" in report
    assert "Does the answer follow its reasoning?" in report
    # one seed: no spread anywhere (no "± 0.0"), no NaN (the quick models give no coordinates)
    assert "±" not in "\n".join(table) and "± 0.0" not in report
    assert not re.search(r"\bnan\b", report, re.IGNORECASE), "NaN in the report"
    assert "one seed, no spread" in report and "gave no coordinates at all" in report
    assert "in GRPO's favour" not in report

    # the table is printed at the end, and progress was shown stage by stage
    for stage in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"):
        assert stage in output
    assert SFT_GRPO in output and "median error" in output
    assert not re.search(r"\bnan\b", output, re.IGNORECASE)


@pytest.mark.slow
def test_quick_demo_terminal_shows_one_line_per_logged_step(quick_run: tuple[Path, str]) -> None:
    """The trainers' raw log dicts are not printed: one short line per logging step, the
    full logs in each stage's train_log.jsonl; each evaluation bar names its model and split."""
    out, output = quick_run
    assert "{'loss'" not in output and "'grad_norm'" not in output
    cfg = quick_config()
    for stage, steps in (("sft", cfg.sft_steps), ("grpo", cfg.grpo_steps)):
        logged = [json.loads(x) for x in (out / stage / "train_log.jsonl").read_text().splitlines()]
        n_steps = sum(1 for x in logged if "loss" in x)
        assert n_steps == steps  # logging_steps=1 in the quick run
        lines = re.findall(rf"{stage.upper()} step +\d+/{steps}  loss [^\r\n]*", output)
        assert len(lines) == steps, output
        assert all(len(line) < 100 for line in lines), lines
        assert f"{stage.upper()} done in" in output and str(out / stage / "train_log.jsonl") in output
    assert re.search(r"GRPO step +1/\d+  loss \S+  reward \S+  KL \S+  \S+ s/step", output)
    for label in (
        f"{SFT_ONLY}, held-out cities",
        f"{SFT_GRPO}, held-out cities",
        f"{SFT_ONLY}, training cities",
        f"{SFT_GRPO}, training cities",
    ):
        assert label in output


@pytest.mark.slow
def test_quick_demo_writes_photos_to_locate(quick_run: tuple[Path, str]) -> None:
    """A handful of held-out photos as PNGs with their GPS in EXIF, and the report's
    `georeason locate` command runs on them with the demo's model."""
    from georeason.images import exif_gps

    out, output = quick_run
    with (out / PHOTOS_DIR / PHOTOS_CSV).open(encoding="utf-8") as f:
        truth = list(csv.DictReader(f))
    assert len(truth) == N_PHOTOS
    assert len({(t["city"], t["country"]) for t in truth}) == N_PHOTOS  # one photo per city
    for t in truth:
        png = out / PHOTOS_DIR / t["file"]
        assert png.read_bytes().startswith(PNG_MAGIC)
        assert exif_gps(png) == pytest.approx((float(t["lat"]), float(t["lon"])), abs=1e-5)

    report = (out / REPORT_MD).read_text(encoding="utf-8")
    command = next(line for line in report.splitlines() if line.startswith("georeason locate "))
    assert command in output  # printed at the end as well
    args = command.split()[2:]
    assert args[0] == f"{out / PHOTOS_DIR}/*.png" and args[1:3] == ["--model", str(out / "grpo")]
    images = sorted(str(p) for p in (out / PHOTOS_DIR).glob("*.png"))
    res = CliRunner().invoke(app, ["locate", *images, *args[1:], "--json"])
    assert res.exit_code == 0, res.output
    located = json.loads(res.stdout)
    assert len(located) == N_PHOTOS and all(r["exif_gps"] is not None for r in located)
    for t in truth:
        assert f"`{t['file']}` | {t['city']}," in report


def _no_nan(name: str) -> None:
    raise AssertionError(f"{name} in results.json: not JSON")


@pytest.mark.slow
def test_quick_demo_results_are_real_measurements(quick_run: tuple[Path, str]) -> None:
    out, _ = quick_run
    payload = json.loads((out / RESULTS_JSON).read_text(encoding="utf-8"), parse_constant=_no_nan)
    assert payload["seeds"] == [3]
    assert payload["claim"]["median_km"]["sft_std"] is None  # one seed: no spread, not 0
    (res,) = payload["results"]
    # GRPO ran with the Geo-R reward: one reward per step, each in [0, 1]
    assert res["reward_steps"] == [1, 2]
    assert all(0.0 <= r <= 1.0 for r in res["rewards"])
    assert len(res["sft_loss"]) >= 2 and all(math.isfinite(x) for x in res["sft_loss"])
    # every test photo got a line per method, scored against its truth
    n_test = quick_config().n_test
    for name in ROWS:
        assert len(res["distances"][name]) == n_test
    # both models' answers are kept for the world map (drawn side by side)
    for name in (SFT_ONLY, SFT_GRPO):
        assert {len(v) for v in res["map_points"][name].values()} == {n_test}
    rows = res["rows"]
    for name in ROWS:
        for key, _, _ in COLUMNS:
            assert key in rows[name]
    # the baselines answer in format, far from held-out cities
    assert rows["random point on land"]["format_ok"] == 100.0
    assert rows["random point on land"]["median_km"] > 1000
    # the two trained models were evaluated with the eval runner (its files are there)
    for name in ("sft", "grpo"):
        lines = (out / "eval" / name / "predictions.jsonl").read_text().splitlines()
        assert len(lines) == n_test
    assert (out / "sft" / "config.json").is_file() and (out / "grpo" / "config.json").is_file()
    # --samples 2: each model also answered with two sampled chains, a row beside greedy
    for name, short in ((SFT_ONLY, "sft"), (SFT_GRPO, "grpo")):
        row = sampled_row(name, 2)
        assert set(rows[row]) == set(rows[name])
        lines = (out / "eval" / f"{short}_k2" / "predictions.jsonl").read_text().splitlines()
        recs = [json.loads(x) for x in lines]
        assert len(recs) == n_test
        assert all(len(r["samples"]) == 2 for r in recs if r["completion"] is not None)
        assert row in (out / REPORT_MD).read_text(encoding="utf-8")
    # how each model's answer follows its own reasoning about the road tint
    for name in (SFT_ONLY, SFT_GRPO):
        reading = res["reading"][name]
        assert set(reading) == {"n", "word_right", "follows_word", "in_true_cell"}
        assert 0 <= reading["n"] <= n_test


def _result(seed: int, sft: tuple[float, float], grpo: tuple[float, float]) -> DemoResult:
    def row(acc25: float, med: float) -> dict[str, float]:
        return {"acc@25km": acc25, "median_km": med}

    return DemoResult(
        seed=seed,
        rows={SFT_ONLY: row(*sft), SFT_GRPO: row(*grpo)},
        seen_rows={},
        oracles={},
        seconds={},
        reward_steps=[],
        rewards=[],
        sft_loss=[],
        rl_cities=[],
    )


def test_claim_rule_needs_every_seed_and_more_than_the_spread() -> None:
    # median: GRPO 100 +- 10 vs SFT 200 +- 10 -> wins; acc@25: same in every seed -> does not
    clear = [_result(s, (5.0, 200.0 + d), (5.0, 100.0 + d)) for s, d in enumerate((-10.0, 0.0, 10.0))]
    c = compare(clear)
    assert c["median_km"]["beats_spread"] and c["median_km"]["gap"] == pytest.approx(100.0)
    assert not c["acc@25km"]["beats_spread"]
    # better on average but not in one seed -> no
    mixed = [
        _result(0, (0, 200.0), (0, 100.0)),
        _result(1, (0, 200.0), (0, 100.0)),
        _result(2, (0, 150.0), (0, 160.0)),
    ]
    assert not compare(mixed)["median_km"]["beats_spread"]
    # better in every seed but by less than the spread -> no
    noisy = [
        _result(0, (0, 300.0), (0, 290.0)),
        _result(1, (0, 100.0), (0, 95.0)),
        _result(2, (0, 200.0), (0, 199.0)),
    ]
    m = compare(noisy)["median_km"]
    assert m["better_every_seed"] and not m["beats_spread"]
    # one seed: no spread, no verdict in GRPO's favour
    assert not compare(clear[:1])["median_km"]["beats_spread"]


def test_claim_lines_say_plainly_who_was_better() -> None:
    """'GRPO was 23.7 km worse than SFT' where GRPO is worse; one seed has no spread (no
    '± 0.0'); a model without coordinates is 'not measurable', never NaN."""
    one = claim_lines([_result(0, (4.0, 140.6), (0.5, 164.3))])
    acc, median = one
    assert "GRPO was 3.5 points worse than SFT; one seed, no spread" in acc
    assert (
        "SFT only 140.6 km, SFT + GRPO 164.3 km. GRPO was 23.7 km worse than SFT; one seed, no spread"
        in median
    )
    three = claim_lines(
        [
            _result(0, (4.0, 141.0), (0.5, 164.7)),
            _result(1, (0.0, 131.0), (0.0, 177.9)),
            _result(2, (0.0, 136.0), (0.0, 148.9)),
        ]
    )
    assert "(mean ± std over 3 seeds). GRPO was 27.8 km worse than SFT on average" in three[1]
    assert "per seed: 23.7 worse, 46.9 worse, 12.9 worse -> GRPO does NOT beat SFT" in three[1]
    assert "per seed: 3.5 worse, equal, equal" in three[0]
    better = claim_lines([_result(s, (0, 200.0 + s), (0, 100.0 + s)) for s in range(3)])[1]
    assert "100.0 km better than SFT on average" in better and "wins by more than the spread" in better
    nan = float("nan")
    missing = claim_lines([_result(0, (0.0, nan), (0.0, 150.0))])[1]
    assert "not measurable: SFT only gave no coordinates at all" in missing
    for line in (*one, *three, better, missing):
        assert "nan" not in line.lower() and "± 0.0" not in line and "favour" not in line


def test_bad_settings_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="leaves no SFT city"):
        DemoConfig(cities_per_admin1=3, rl_cities_per_admin1=2).check()
    res = CliRunner().invoke(app, ["demo", "--quick", "--out", str(tmp_path), "--num-generations", "1"])
    assert res.exit_code != 0
    with pytest.raises(ValueError, match="rl_pool"):
        DemoConfig(rl_pool="everywhere").check()
    with pytest.raises(ValueError, match="n_rl"):
        DemoConfig(rl_pool="spread", n_rl=0).check()


def test_spread_pool_is_grpo_data_and_sft_keeps_its_cities(tmp_path: Path) -> None:
    """rl_pool='spread': GRPO's split is n_rl GPS-only photos around the training cities;
    SFT's split still leaves out the RL cities."""
    from datasets import load_from_disk

    from georeason.demo import make_demo_world, split_training_cities

    cfg = replace(quick_config(tmp_path), rl_pool="spread", n_rl=12, rl_spread_km=50.0)
    data = make_demo_world(cfg)
    out, rl_cities = split_training_cities(data, cfg)
    dd = load_from_disk(str(out))
    assert len(dd["rl"]) == 12 and all("-spread-" in i for i in dd["rl"]["id"])
    sft_cities = {f"{c} ({cc})" for c, cc in zip(dd["sft"]["city"], dd["sft"]["country_code"], strict=True)}
    assert rl_cities and not sft_cities & set(rl_cities)


def test_grpo_stage_takes_every_grpo_knob(tmp_path: Path) -> None:
    """The demo's GRPO knobs reach TRL's GRPOConfig (what the docstring's variants were run with)."""
    from georeason.demo import grpo_config

    cfg = replace(
        quick_config(tmp_path),
        temperature=0.7,
        scale_rewards="group",
        beta=0.0,
        grpo_lr=3e-4,
        top_entropy_quantile=0.2,
        grpo_freeze_vision=True,
        num_generations=4,
        grpo_images_per_step=3,
    )
    c = grpo_config(tmp_path / "model", tmp_path / "data", cfg)
    assert (c.temperature, c.scale_rewards, c.beta, c.learning_rate) == (0.7, "group", 0.0, 3e-4)
    assert c.top_entropy_quantile == 0.2 and c.freeze_vision_tower is True
    assert c.num_generations == 4 and c.per_device_train_batch_size == 12  # 3 photos x 4 answers
    assert c.max_steps == cfg.grpo_steps and c.dataset_split == "rl" and c.rewards == ["geor:1"]
    assert not grpo_config(tmp_path / "model", tmp_path / "data", quick_config(tmp_path)).freeze_vision_tower


def test_tint_reading_checks_the_answer_against_its_own_reasoning(tmp_path: Path) -> None:
    """tint_reading: the reasoning's tint direction vs the truth, and the answer vs the reasoning."""
    from georeason.datasets.synthetic import tint_direction
    from georeason.demo import make_demo_world, tint_reading

    data = make_demo_world(quick_config(tmp_path))
    world, clues = data.world, data.clues["test"]
    ids = data.datasets["test"]["id"]
    i = next(k for k, c in enumerate(clues) if c.tint)
    c = clues[i]
    cc = world.places[c.place].country_code
    lat0, lat1, lon0, lon1 = world.tint_boxes[cc]
    true_word = tint_direction(world, cc, c.lat, c.lon)
    # a point in another third of the box, and the word for it
    lat, lon = next(
        (lat0 + a * (lat1 - lat0), lon0 + b * (lon1 - lon0))
        for a in (0.1, 0.5, 0.9)
        for b in (0.1, 0.5, 0.9)
        if tint_direction(world, cc, lat0 + a * (lat1 - lat0), lon0 + b * (lon1 - lon0)) != true_word
    )
    other_word = tint_direction(world, cc, lat, lon)

    def record(word: str, plat: float, plon: float, country: str = cc) -> dict[str, object]:
        text = f"<think>green meadow: Europe. {word} road tint.</think>\n<answer>...</answer>"
        return {
            "id": ids[i],
            "completion": text,
            "pred_lat": plat,
            "pred_lon": plon,
            "pred_country_code": country,
        }

    records = [
        record(true_word, c.lat, c.lon),  # right word, answer where it says: all three
        record(other_word, lat, lon),  # wrong word, answer follows it
        record(true_word, lat, lon),  # right word, answer elsewhere
        record(true_word, c.lat, c.lon, country="ZZ"),  # wrong country: not counted
        {"id": "not-a-photo", "completion": "", "pred_country_code": cc},  # unknown id: not counted
    ]
    r = tint_reading(records, data)
    assert r["n"] == 3
    assert r["word_right"] == pytest.approx(200 / 3)
    assert r["follows_word"] == pytest.approx(200 / 3)
    assert r["in_true_cell"] == pytest.approx(100 / 3)
    # an answer without coordinates follows nothing
    no_coords = record(true_word, float("nan"), float("nan"))
    assert tint_reading([no_coords], data) == {
        "n": 1.0,
        "word_right": 100.0,
        "follows_word": 0.0,
        "in_true_cell": 0.0,
    }
    assert math.isnan(tint_reading([], data)["word_right"])


def test_demo_plots_say_what_they_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The error CDF's legend says which distances its percentages are; the world map puts
    SFT only and SFT + GRPO side by side on the same axes, in degrees."""
    import numpy as np

    from georeason.eval import plots

    figures = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or save(fig, path))

    plots.plot_error_cdf({SFT_ONLY: [10.0, 100.0, 5000.0, float("nan")]}, tmp_path / "cdf.png")
    legend = figures[-1].axes[0].get_legend()
    assert legend.get_title().get_text() == "% of images within 1 / 25 / 200 / 750 / 2500 km"
    assert [t.get_text() for t in legend.get_texts()] == [f"{SFT_ONLY}: 0.0 / 25.0 / 50.0 / 50.0 / 50.0"]

    truth = (np.array([35.0, -33.9]), np.array([139.7, 18.4]))
    plots.plot_world_maps(
        {
            SFT_ONLY: (*truth, np.array([34.0, -30.0]), np.array([135.0, 20.0])),
            SFT_GRPO: (*truth, truth[0], truth[1]),
        },
        tmp_path / "map.png",
    )
    left, right = figures[-1].axes
    assert (left.get_title(), right.get_title()) == (SFT_ONLY, SFT_GRPO)
    assert left.get_xlim() == right.get_xlim() == (-180, 180) and left.get_ylim() == right.get_ylim()
    assert left.get_xlabel() == "longitude" and left.get_ylabel() == "latitude"
    fmt_x, fmt_y = left.xaxis.get_major_formatter(), left.yaxis.get_major_formatter()
    assert (fmt_x(-60.0), fmt_x(0.0), fmt_y(30.0), fmt_y(-30.0)) == ("60°W", "0°", "30°N", "30°S")
    assert (tmp_path / "map.png").read_bytes().startswith(PNG_MAGIC)
