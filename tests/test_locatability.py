"""GLOBE's locatability reward model end to end: data (`data locatability`), training
(`train locatability-rm`), evaluation (AUROC, calibration) and use as the GRPO judge.

The end-to-end tests run on the synthetic world, whose clue-less photos (grey sky, bare
ground, no banner, sign or landmark) are not locatable. The teachers are scripted VLM
backends (the real :class:`~georeason.infer.base.Backend` interface, in process, as
``tests/test_distill.py``'s loopback servers are over HTTP): a "reader" that reads the
photo's clues and names its city (P(yes) 0.9), or says there is no clue and guesses a
wrong country (P(yes) 0.15); a "hedger" that answers right on locatable photos with
P(yes) 0.7, and says it cannot tell on clue-less ones (P(yes) 0.3). These labels are
easy on purpose: the texts of the two kinds differ, so a 1M-parameter random model can
learn them on a CPU in a minute; what is tested is the path (distill -> data -> LoRA SFT
-> judge on held-out places -> GRPO reward), not a 7B judge's skill.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")
pytest.importorskip("PIL")

from typer.testing import CliRunner  # noqa: E402

from georeason.cli import app  # noqa: E402
from georeason.eval.calibration import auroc, binary_metrics, expected_calibration_error, reliability  # noqa: E402
from georeason.pipelines.locatability import (  # noqa: E402
    LocatabilityConfig,
    LocatabilityError,
    balance_indices,
    label_record,
    parse_label,
    split_by_place,
    verdict,
)
from georeason.rewards.judges import LocalJudge, resolve_judge  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RUNNER = CliRunner()
# Held-out AUROC of the trained tiny judge in the end-to-end test must reach this. Measured:
# 1.000 on the 21 held-out examples (5 yes, 16 no) of this exact setup
# (docs/experiments/2026-12-05-locatability-rm.md); 0.8 leaves room for float differences
# across CPUs without letting a judge near chance (0.5) pass.
MIN_HELDOUT_AUROC = 0.8


# ---------------------------------------------------------------------------
# the label rule, the split, the balance
# ---------------------------------------------------------------------------


def _t(name: str, p_yes: float | None, km: float | None, text: str | None = "x") -> dict[str, Any]:
    return {
        "name": name,
        "p_yes": p_yes,
        "distance_km": km,
        "completion": None if text is None else f"{name} {text}",
    }


def test_verdict_needs_agreement() -> None:
    cfg = LocatabilityConfig(min_agree=0.66)
    assert verdict([_t("a", 0.9, 1), _t("b", 0.6, 1), _t("c", 0.1, 1)], cfg) == (True, pytest.approx(2 / 3))
    assert verdict([_t("a", 0.1, 1), _t("b", 0.4, 1), _t("c", 0.9, 1)], cfg)[0] is False
    assert verdict([_t("a", 0.9, 1), _t("b", 0.1, 1)], cfg)[0] is None  # split: no verdict
    assert verdict([_t("a", None, 1)], cfg) == (None, None)  # nobody judged
    assert verdict([_t("a", 0.5, 1)], cfg)[0] is True  # at the threshold says yes
    with pytest.raises(LocatabilityError, match="min_agree"):
        LocatabilityConfig(min_agree=0.5)


def test_label_rules() -> None:
    rec = {
        "teachers": [
            _t("right", 0.9, 3.0),
            _t("far", 0.8, 400.0),
            _t("none", 0.7, None),  # named no place
            _t("failed", None, None, text=None),
        ]
    }
    labelled, dropped = label_record(rec, LocatabilityConfig(max_km=25))
    assert [(t["name"], y) for t, y in labelled] == [("right", True)]
    assert dropped == {
        "judged locatable, answer off by more than 25 km": 2,
        "teacher gave no completion": 1,
    }
    labelled, _ = label_record(rec, LocatabilityConfig(rule="verdict"))
    assert [(t["name"], y) for t, y in labelled] == [("right", True), ("far", True), ("none", True)]
    labelled, _ = label_record(rec, LocatabilityConfig(rule="correct", max_km=500))
    assert [(t["name"], y) for t, y in labelled] == [("right", True), ("far", True), ("none", False)]
    # agreed "not locatable": a wrong answer is a "no", a right one is left out
    rec = {"teachers": [_t("a", 0.1, 900.0), _t("b", 0.2, 2.0)]}
    labelled, dropped = label_record(rec, LocatabilityConfig())
    assert [(t["name"], y) for t, y in labelled] == [("a", False)]
    assert dropped == {"judged not locatable, answer within 25 km": 1}
    assert label_record({"image_error": "bad", "teachers": []}, LocatabilityConfig())[1] == {
        "unreadable image": 1
    }
    assert [parse_label(x) for x in ("YES", "no", 1, 0.0, True, "locatable", "perhaps", None)] == [
        True, False, True, False, True, True, None, None,
    ]  # fmt: skip


def test_split_by_place_keeps_places_whole_and_balance_evens_train() -> None:
    rng = np.random.default_rng(0)
    places = [f"city{int(rng.integers(0, 15))}" for _ in range(200)]
    labels = [bool(x) for x in rng.random(200) < 0.25]
    train, test = split_by_place(places, 0.2, seed=3)
    assert sorted(train + test) == list(range(200))
    assert not {places[i] for i in train} & {places[i] for i in test}
    assert 0.2 * 200 <= len(test) < 0.2 * 200 + max(places.count(p) for p in set(places))
    assert split_by_place(places, 0.2, seed=3) == (train, test)  # seeded
    up = balance_indices(train, labels, "upsample", 0)
    down = balance_indices(train, labels, "downsample", 0)
    n_yes = sum(labels[i] for i in train)
    n_no = len(train) - n_yes
    assert sum(labels[i] for i in up) == sum(not labels[i] for i in up) == max(n_yes, n_no)
    assert sum(labels[i] for i in down) == sum(not labels[i] for i in down) == min(n_yes, n_no)
    assert set(up) == set(train) and set(down) <= set(train)
    assert balance_indices(train, labels, "none", 0) == train
    with pytest.raises(LocatabilityError, match="one place"):
        split_by_place(["a"] * 5, 0.2, seed=0)
    assert split_by_place(["a"] * 5, 0.0, seed=0) == ([0, 1, 2, 3, 4], [])


# ---------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------


def test_auroc_is_the_pairwise_win_rate_and_ece_the_bin_gap() -> None:
    rng = np.random.default_rng(1)
    s = np.round(rng.random(60), 1)  # many ties
    y = rng.random(60) < 0.4
    pairs = [(a, b) for a in s[y] for b in s[~y]]
    brute = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs)
    assert auroc(s, y) == pytest.approx(brute)
    assert auroc([0.1, 0.9], [False, True]) == 1.0 and auroc([0.9, 0.1], [False, True]) == 0.0
    assert math.isnan(auroc([0.3, 0.4], [True, True]))
    bins = reliability(s, y, 5)
    assert sum(b["n"] for b in bins) == 60 and bins[-1]["hi"] == 1.0
    manual = sum(b["n"] * abs(b["share_yes"] - b["mean_p_yes"]) for b in bins if b["n"]) / 60
    assert expected_calibration_error(s, y, 5) == pytest.approx(manual)
    perfect = binary_metrics([0.0, 0.0, 1.0, 1.0], [False, False, True, True])
    assert (perfect["accuracy"], perfect["auroc"], perfect["ece"], perfect["brier"]) == (1.0, 1.0, 0.0, 0.0)


# ---------------------------------------------------------------------------
# a labelled table of your own
# ---------------------------------------------------------------------------


def _table(tmp_path: Path, n: int = 20) -> Path:
    from PIL import Image

    (tmp_path / "img").mkdir()
    lines = ["image_path,text,label,city,country"]
    for i in range(n):
        Image.new("RGB", (32, 32), (10 * i, 100, 200 if i % 2 else 0)).save(tmp_path / "img" / f"{i}.png")
        label = "yes" if i % 3 else "no"
        lines.append(f"img/{i}.png,reasoning {i},{label},City{i % 5},Country{i % 2}")
    path = tmp_path / "labels.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_labelled_table_becomes_the_dataset_via_the_cli(tmp_path: Path) -> None:
    table = _table(tmp_path)
    out = tmp_path / "loc"
    res = RUNNER.invoke(
        app, ["data", "locatability", str(table), "--out", str(out), "--test-share", "0.3", "--json"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["kind"] == "table" and summary["n_examples"] == 20
    assert summary["splits"]["train"]["yes"] == summary["splits"]["train"]["no"]  # upsampled
    dd = datasets.load_from_disk(str(out))
    train, test = dd["train"], dd["test"]
    assert set(train["place"]).isdisjoint(test["place"])
    assert len(test) == summary["splits"]["test"]["total"] >= 6
    assert set(train["label"]) == {"yes", "no"} and train[0]["image"].size == (32, 32)  # the Image feature
    assert json.loads((out / "locatability.json").read_text())["splits"] == summary["splits"]
    # a bad label names the row; an occupied --out is refused unless --overwrite
    bad = tmp_path / "bad.csv"
    bad.write_text(table.read_text().replace(",yes,", ",maybe,", 1))
    res = RUNNER.invoke(app, ["data", "locatability", str(bad), "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "maybe" in res.output and not (tmp_path / "b").exists()
    res = RUNNER.invoke(app, ["data", "locatability", str(table), "--out", str(out)])
    assert res.exit_code == 2 and "--overwrite" in res.output
    res = RUNNER.invoke(
        app, ["data", "locatability", str(table), "--out", str(out), "--overwrite", "--balance", "none"]
    )
    assert res.exit_code == 0, res.output
    assert "left out" not in res.stdout and "train" in res.stdout


def test_judge_from_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        resolve_judge("hf:" + str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a model folder"):
        resolve_judge(str(tmp_path / "empty"))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    judge = resolve_judge(str(tmp_path / "m"), judge_options={"batch_size": 4})
    assert isinstance(judge, LocalJudge) and judge.options == {"batch_size": 4}  # nothing loaded yet


# ---------------------------------------------------------------------------
# end to end on the synthetic world
# ---------------------------------------------------------------------------


def _key(img: Any) -> str:
    return hashlib.sha1(img.convert("RGB").tobytes()).hexdigest()


def _scripted_backend(rows: dict[str, dict[str, Any]], persona: str) -> Any:
    from georeason.infer.base import Backend, Response

    countries = sorted({r["country"] for r in rows.values()})

    def answer(r: dict[str, Any]) -> tuple[str, float]:
        right = f"<answer>country: {r['country']}\ncity: {r['city']}</answer>"
        other = next(c for c in countries if c != r["country"])
        if persona == "reader":
            if r["locatable"]:
                return f"<think>{r['reasoning']}</think>{right}", 0.9
            return f"<think>{r['reasoning']}</think><answer>country: {other}\ncity: Nowhere</answer>", 0.15
        if r["locatable"]:
            return f"<think>{r['reasoning']}</think>{right}", 0.7
        return (
            "<think>I cannot tell where this is.</think><answer>country: Nowhere\ncity: Nowhere</answer>",
            0.3,
        )

    class Scripted(Backend):
        name = "scripted"

        def generate(self, requests: list[Any], **settings: Any) -> list[Any]:
            return [Response(id=q.id, text=answer(rows[_key(q.image)])[0]) for q in requests]

        def yes_no_logprobs(self, requests: list[Any], **kw: Any) -> list[tuple[float, float] | None]:
            out = []
            for q in requests:
                p = answer(rows[_key(q.image)])[1]
                out.append((math.log(p), math.log(1 - p)))
            return out

    return Scripted()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """World -> distillation with two scripted teachers -> `data locatability` (CLI) -> tiny model."""
    pytest.importorskip("torch")
    pytest.importorskip("trl")
    pytest.importorskip("peft")
    from georeason.datasets.synthetic import generate_world
    from georeason.models import build_tiny_vlm, default_corpus
    from georeason.pipelines.distill import DistillConfig, FilterConfig, Teacher, run_distill

    root = tmp_path_factory.mktemp("locatability")
    generate_world(
        48, 4, image_size=56, seed=1, no_clue_share=0.4, out_dir=root / "world", compute_ceilings=False
    )
    world = datasets.load_from_disk(str(root / "world"))["train"]
    rows = {_key(r["image"]): r for r in world}
    cfg = DistillConfig(
        teachers=["reader=openai:http://127.0.0.1:9/v1:reader", "hedger=openai:http://127.0.0.1:9/v1:hedger"],
        filters=FilterConfig(min_agree=1),
    )
    teachers = [Teacher(s, _scripted_backend(rows, s.name), None) for s in cfg.specs()]
    run_distill(root / "world", root / "distill", cfg, teachers=teachers, progress=False)

    res = RUNNER.invoke(
        app,
        ["data", "locatability", str(root / "distill"), "--out", str(root / "loc"), "--test-share", "0.3"],
    )
    assert res.exit_code == 0, res.output
    # "yes" and "no" one token each (GLOBE's judge reads the next token), the world's clue
    # words whole; weights redrawn at std 0.1 as conftest's tiny_backend_model: at the default
    # 0.02 the next-token logits are near uniform and LoRA does not move them in minutes
    # (docs/experiments/2026-12-05-locatability-rm.md)
    import torch

    from georeason.models import load_model

    base = build_tiny_vlm(
        root / "base",
        corpus=default_corpus(max_places=3000, answers_per_protocol=300),
        extra_text=["yes", "no"] * 200 + list(world["reasoning"]),
    )
    model, processor = load_model(base)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.1, generator=gen)
    model.save_pretrained(root / "model")
    processor.save_pretrained(root / "model")
    return {"root": root, "world": root / "world", "loc": root / "loc", "model": root / "model"}


@pytest.mark.slow
def test_distillation_becomes_a_dataset_split_by_city(pipeline: dict[str, Path]) -> None:
    summary = json.loads((pipeline["loc"] / "locatability.json").read_text())
    assert summary["kind"] == "distill" and summary["n_images"] == 48
    # both teachers' texts coincide on locatable photos (one example), differ on clue-less ones
    assert summary["dropped"].get("same text as another teacher's", 0) > 0
    dd = datasets.load_from_disk(str(pipeline["loc"]))
    world = datasets.load_from_disk(str(pipeline["world"]))["train"]
    truth = {r["id"]: r for r in world.select_columns(["id", "locatable", "city", "country_code"])}
    for split in ("train", "test"):
        for r in dd[split].select_columns(["image_id", "label", "place", "teacher", "reasoning"]):
            t = truth[r["image_id"]]
            # with these teachers the rule's labels are the world's truth
            assert (r["label"] == "yes") == t["locatable"], r
            assert r["place"].endswith("/" + t["city"].lower())
    assert set(dd["train"]["place"]).isdisjoint(dd["test"]["place"])
    assert {"yes", "no"} == set(dd["test"]["label"])


@pytest.fixture(scope="module")
def trained(pipeline: dict[str, Path]) -> Path:
    """`georeason train locatability-rm` with the tiny recipe (the CLI, in process)."""
    out = pipeline["root"] / "rm"
    res = RUNNER.invoke(
        app,
        [
            "train", "locatability-rm", "--config", str(REPO / "recipes/tiny/globe_locatability_rm.yaml"),
            "--set", f"model_name_or_path={pipeline['model']}", "--set", f"dataset_name={pipeline['loc']}",
            "--set", f"output_dir={out}", "--set", "disable_tqdm=true",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "held-out:" in res.output and "AUROC" in res.output
    return out


@pytest.mark.slow
def test_trained_judge_separates_locatable_from_clueless_photos(
    pipeline: dict[str, Path], trained: Path
) -> None:
    from georeason.train.locatability import evaluate_judge, load_locatability_split, metrics_line

    metrics = json.loads((trained / "metrics.json").read_text())
    for name in ("report.md", "reliability.png", "heldout_predictions.jsonl", "merged/config.json"):
        assert (trained / name).is_file(), name
    assert metrics["judge_failures"] == 0 and metrics["n"] == metrics["n_yes"] + metrics["n_no"]
    # the same held-out rows judged by the untrained model: the training is what separates them
    heldout = load_locatability_split(pipeline["loc"], "test")
    base = evaluate_judge(LocalJudge(str(pipeline["model"]), device="cpu"), heldout)
    print(
        f"\nheld-out AUROC: trained {metrics['auroc']:.3f}, untrained {base['auroc']:.3f}; {metrics_line(metrics)}"
    )
    assert metrics["auroc"] >= MIN_HELDOUT_AUROC, metrics
    assert metrics["auroc"] > base["auroc"] + 0.2, (metrics["auroc"], base["auroc"])
    assert metrics["mean_p_yes"]["yes"] > metrics["mean_p_yes"]["no"]
    # the LoRA adapter in output_dir judges as the merged model does
    merged = [
        r["p_yes"] for r in map(json.loads, (trained / "heldout_predictions.jsonl").read_text().splitlines())
    ]
    adapter = LocalJudge(str(trained), device="cpu")(
        list(heldout["reasoning"]), images=list(heldout["image"])
    )
    assert np.allclose(adapter, merged, atol=1e-4)


@pytest.mark.slow
def test_grpo_runs_with_the_trained_judge_as_reward(
    pipeline: dict[str, Path], trained: Path, tmp_path: Path
) -> None:
    from georeason.train import GeoGRPOConfig, train_grpo

    cfg = GeoGRPOConfig(
        model_name_or_path=str(pipeline["model"]),
        dataset_name=str(pipeline["world"]),
        protocol="globe",
        rewards=["globe_locatability:1"],
        reward_options={
            "globe_locatability": {"judge": str(trained / "merged"), "judge_options": {"device": "cpu"}}
        },
        output_dir=str(tmp_path / "grpo"),
        max_steps=2,
        num_generations=2,
        per_device_train_batch_size=2,
        max_completion_length=16,
        temperature=1.0,
        beta=0.0,
        learning_rate=1e-4,
        use_cpu=True,
        bf16=False,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        dataloader_num_workers=0,
        disable_tqdm=True,
        seed=0,
    )
    result = train_grpo(cfg)
    steps = [h for h in result.log_history if "rewards/globe_locatability/mean" in h]
    assert len(steps) == 2
    for h in steps:
        assert 0.0 <= h["rewards/globe_locatability/mean"] <= 1.0
        assert not h.get("globe_locatability/judge_failures")


@pytest.mark.slow
@pytest.mark.requires("fastapi", "openai")
def test_served_judge_scores_as_the_in_process_one(pipeline: dict[str, Path], trained: Path) -> None:
    """`georeason serve --model RM` returns the log-probabilities GLOBE's judge reads: the reward
    pointed at it (openai:URL:MODEL) gives the P(yes) of the in-process judge."""
    from georeason.serve.process import ServeProcess
    from georeason.train.locatability import load_locatability_split

    heldout = load_locatability_split(pipeline["loc"], "test").select(range(6))
    texts, images = list(heldout["reasoning"]), list(heldout["image"])
    local = LocalJudge(str(trained / "merged"), device="cpu")(texts, images=images)
    args = ["--served-model-name", "rm", "--device", "cpu"]
    with ServeProcess(trained / "merged", args=args, env={"HF_HUB_OFFLINE": "1"}) as proc:
        served = resolve_judge(f"openai:{proc.base_url}:rm")(texts, images=images)
    assert all(isinstance(x, float) for x in served), served
    assert np.allclose(served, local, atol=0.02), (served, local)


def test_globe_recipe_holds_the_paper_settings() -> None:
    pytest.importorskip("trl")
    from georeason.train.locatability import LocatabilityRMConfig
    from georeason.train.recipe import load_config

    cpu = ["use_cpu=true", "bf16=false", "report_to=[]"]
    cfg = load_config(LocatabilityRMConfig, REPO / "recipes/qwen2_5_vl_7b/globe_locatability_rm.yaml", cpu)
    assert (cfg.use_peft, cfg.lora_r, cfg.lora_alpha, cfg.learning_rate, cfg.num_train_epochs) == (
        True, 16, 64, 1e-4, 2,
    )  # fmt: skip
    assert cfg.peft_config().lora_alpha == 64 and cfg.eval_split == "test"


@pytest.mark.slow
def test_training_rows_render_as_the_judge_asks(pipeline: dict[str, Path]) -> None:
    """The reward model is trained on the very prompt BackendJudge sends (same rendered text)."""
    from transformers import AutoProcessor

    from georeason.rewards.judges import judge_messages
    from georeason.train.locatability import load_locatability_split, to_judge_sft_dataset

    processor = AutoProcessor.from_pretrained(str(pipeline["model"]))
    ds = load_locatability_split(pipeline["loc"], "test").select(range(2))
    rows = to_judge_sft_dataset(ds)
    for row, text in zip(rows, ds["reasoning"], strict=True):
        trained = processor.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        asked = processor.apply_chat_template(
            judge_messages(text), tokenize=False, add_generation_prompt=True
        )
        assert trained == asked and text in asked
        assert row["completion"][0]["content"][0]["text"] in ("yes", "no")
