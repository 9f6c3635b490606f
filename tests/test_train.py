"""Training on TRL's trainers with the tiny offline Qwen2.5-VL, on the CPU.

Real SFTTrainer / GRPOTrainer runs (a few steps each), the real Geo-R reward, a
real two-process ``accelerate launch``: nothing here is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("peft")
datasets = pytest.importorskip("datasets")

from PIL import Image, ImageDraw  # noqa: E402

from georeason.models import build_tiny_vlm, default_corpus  # noqa: E402
from georeason.protocols import get_protocol  # noqa: E402
from georeason.train import (  # noqa: E402
    GeoGRPOConfig,
    GeoSFTConfig,
    RecipeError,
    TrainResult,
    build_config,
    load_config,
    train_grpo,
    train_sft,
)
from georeason.train.data import load_geo_dataset, to_grpo_dataset, to_sft_dataset  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"

# Four places, one flag colour each: enough for a tiny model to tie image to answer.
PLACES = [
    ("Tokyo", "Tokyo", "JP", "Japan", 35.6895, 139.6917, "AS", (200, 30, 30)),
    ("Paris", "Île-de-France", "FR", "France", 48.8534, 2.3488, "EU", (30, 30, 200)),
    ("Nairobi", "Nairobi Area", "KE", "Kenya", -1.2833, 36.8167, "AF", (30, 160, 30)),
    ("Lima", "Lima", "PE", "Peru", -12.0432, -77.0282, "SA", (220, 200, 30)),
]
# SFT long enough that greedy answers of the training images are in the Chain of
# Region format (see test_sft_model_reloads_and_answers_in_the_protocol_format).
SFT_STEPS = 100


def cpu_args(**overrides: Any) -> dict[str, Any]:
    """TrainingArguments for a fast, deterministic CPU run."""
    args: dict[str, Any] = {
        "use_cpu": True,
        "bf16": False,
        "activation_checkpointing": False,
        "report_to": [],
        "save_strategy": "no",
        "logging_steps": 1,
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        "seed": 0,
    }
    args.update(overrides)
    return args


def _row(i: int, image: str) -> dict[str, Any]:
    city, admin1, code, country, lat, lon, continent, _ = PLACES[i % len(PLACES)]
    return {
        "id": f"s{i}",
        "image": image,
        "lat": lat,
        "lon": lon,
        "continent": continent,
        "country_code": code,
        "country": country,
        "admin1": admin1,
        "city": city,
        "locatable": True,
        "reasoning": f"A banner in the colours of {country}.",
        "entities": ["banner"],
    }


def _draw(i: int) -> Image.Image:
    color = PLACES[i % len(PLACES)][-1]
    im = Image.new("RGB", (84, 84), color)
    ImageDraw.Draw(im).rectangle([8 + 4 * (i // len(PLACES)), 8, 40, 40], fill=(255, 255, 255))
    return im


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A smaller tokenizer corpus than the default: same kinds of text, seconds less.
    corpus = default_corpus(max_places=3000, answers_per_protocol=300)
    return build_tiny_vlm(tmp_path_factory.mktemp("train_tiny") / "model", corpus=corpus)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GeoSample dataset on disk: images as PNG files referenced by relative paths."""
    root = tmp_path_factory.mktemp("world")
    (root / "images").mkdir()
    rows = []
    for i in range(8):
        _draw(i).save(root / "images" / f"{i}.png")
        rows.append(_row(i, f"images/{i}.png"))
    ds = datasets.Dataset.from_list(rows)
    datasets.DatasetDict({"train": ds, "test": ds.select(range(4))}).save_to_disk(str(root))
    return root


@pytest.fixture(scope="session")
def sft_run(tiny_model: Path, world: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    out = tmp_path_factory.mktemp("sft")
    cfg = GeoSFTConfig(
        model_name_or_path=str(tiny_model),
        dataset_name=str(world),
        protocol="geor",
        output_dir=str(out),
        max_steps=SFT_STEPS,
        per_device_train_batch_size=4,
        learning_rate=5e-3,
        lr_scheduler_type="linear",
        **cpu_args(logging_steps=10),
    )
    return train_sft(cfg)


def _weights(model_dir: Path) -> dict[str, Any]:
    """Parameters by their in-memory names (files keep Qwen's checkpoint names)."""
    from transformers import AutoModelForImageTextToText

    return dict(AutoModelForImageTextToText.from_pretrained(model_dir).state_dict())


def _changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    assert before.keys() == after.keys()
    return [k for k in before if not torch.equal(before[k], after[k])]


# --- SFT ---------------------------------------------------------------------------


@pytest.mark.slow
def test_sft_changes_weights_and_logs_loss(tiny_model: Path, sft_run: TrainResult) -> None:
    before, after = _weights(tiny_model), _weights(sft_run.model_dir)
    changed = _changed(before, after)
    assert len(changed) > len(before) // 2, "most tensors should move under full fine-tuning"
    assert any("visual" in k for k in changed) and any("language_model" in k for k in changed)

    losses = [h["loss"] for h in sft_run.log_history if "loss" in h]
    assert len(losses) == SFT_STEPS // 10
    assert losses[-1] < 0.5 * losses[0]
    lines = [json.loads(x) for x in (sft_run.output_dir / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "loss" in r] == list(range(10, SFT_STEPS + 1, 10))
    summary = json.loads((sft_run.output_dir / "train_result.json").read_text())
    assert summary["model_dir"] == str(sft_run.model_dir) and summary["skipped_rows"] == 0


@pytest.mark.slow
def test_sft_model_reloads_and_answers_in_the_protocol_format(world: Path, sft_run: TrainResult) -> None:
    """The saved folder reloads with plain from_pretrained and, after SFT on these
    images, answers in Chain of Region format (parsed by the geor protocol)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(sft_run.model_dir).eval()
    processor = AutoProcessor.from_pretrained(sft_run.model_dir)
    protocol = get_protocol("geor")
    prompt = processor.apply_chat_template(protocol.messages(), add_generation_prompt=True)
    images = [Image.open(world / "images" / f"{i}.png") for i in range(4)]
    processor.tokenizer.padding_side = "left"
    inputs = processor(text=[prompt] * 4, images=images, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=96, do_sample=False)
    texts = processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    preds = [protocol.parse(t) for t in texts]
    ok = [p for p in preds if p.format_ok]
    assert len(ok) >= 3, [(t, p.errors) for t, p in zip(texts, preds, strict=True)]
    # and the answers name places of this world, not random strings
    assert all(p.country in {pl[3] for pl in PLACES} for p in ok)


# --- GRPO --------------------------------------------------------------------------


def test_grpo_with_geor_reward_changes_weights_and_logs_rewards(
    world: Path, sft_run: TrainResult, tmp_path: Path
) -> None:
    """GRPO from the SFT model with the real Geo-R reward (r_dist x r_format). Sampled
    at temperature 1, its answers are sometimes exact and sometimes broken, so rewards
    vary within a group and the policy moves."""
    start = sft_run.model_dir
    cfg = GeoGRPOConfig(
        model_name_or_path=str(start),
        dataset_name=str(world),
        protocol="geor",
        rewards=["geor:1", "geor_format:0.5"],
        output_dir=str(tmp_path / "grpo"),
        max_steps=3,
        num_generations=4,
        per_device_train_batch_size=4,
        max_completion_length=80,
        temperature=1.0,
        learning_rate=1e-4,
        beta=0.0,
        **cpu_args(),
    )
    assert cfg.reward_weights == [1.0, 0.5]
    result = train_grpo(cfg)

    assert _changed(_weights(start), _weights(result.model_dir)), "GRPO left every weight unchanged"

    steps = [h for h in result.log_history if "rewards/geor/mean" in h]
    assert len(steps) == 3
    for h in steps:
        for name in ("rewards/geor/mean", "rewards/geor_format/mean"):
            assert 0.0 <= h[name] <= 1.0
        assert h["reward"] == pytest.approx(
            h["rewards/geor/mean"] + 0.5 * h["rewards/geor_format/mean"], abs=1e-4
        )
    assert max(h["rewards/geor_format/mean"] for h in steps) > 0, (
        "the SFT model should produce parseable answers"
    )
    logged = [json.loads(x) for x in (result.output_dir / "train_log.jsonl").read_text().splitlines()]
    assert sum("rewards/geor/mean" in r for r in logged) == 3


# --- LoRA, resume ------------------------------------------------------------------


def test_grpo_completion_logs_carry_sample_ids_for_data_select(
    world: Path, sft_run: TrainResult, tmp_path: Path
) -> None:
    """With log_completions, TRL's completion tables gain the sample id (TRL logs none),
    so `data rollouts` can group them and `data select --rollouts` judge each sample."""
    from datasets import load_from_disk

    from georeason.pipelines.select import convert_trl_completions, load_rollouts

    cfg = GeoGRPOConfig(
        model_name_or_path=str(sft_run.model_dir),
        dataset_name=str(world),
        protocol="geor",
        rewards=["geor:1"],
        output_dir=str(tmp_path / "grpo"),
        max_steps=2,
        num_generations=4,
        per_device_train_batch_size=4,
        max_completion_length=48,
        learning_rate=1e-5,
        log_completions=True,
        **cpu_args(),
    )
    result = train_grpo(cfg)
    tables = sorted((result.output_dir / "completions").glob("completions_*.parquet"))
    assert tables, "TRL wrote no completion tables"
    ids = set(load_from_disk(str(world))["train"]["id"])
    out = tmp_path / "rollouts.jsonl"
    assert convert_trl_completions(result.output_dir / "completions", out) == 2  # 2 steps x 1 photo
    groups = load_rollouts(out)
    logged = set(groups.flat())
    assert logged and logged <= ids


def test_lora_sft_trains_adapters_only_and_merges(tiny_model: Path, world: Path, tmp_path: Path) -> None:
    cfg = GeoSFTConfig(
        model_name_or_path=str(tiny_model),
        dataset_name=str(world),
        output_dir=str(tmp_path / "lora"),
        use_peft=True,
        lora_r=4,
        lora_alpha=8,
        merge_lora=True,
        max_steps=2,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        **cpu_args(),
    )
    result = train_sft(cfg)
    adapter = json.loads((result.output_dir / "adapter_config.json").read_text())
    assert adapter["r"] == 4
    assert result.model_dir == result.output_dir / "merged"

    changed = _changed(_weights(tiny_model), _weights(result.model_dir))  # merged: loads without PEFT
    assert changed and all("language_model" in k and "proj" in k for k in changed), changed
    assert not any("visual" in k for k in changed)  # the default targets leave the vision tower alone


def test_resume_continues_from_the_last_checkpoint(tiny_model: Path, world: Path, tmp_path: Path) -> None:
    common = {
        "model_name_or_path": str(tiny_model),
        "dataset_name": str(world),
        "output_dir": str(tmp_path / "run"),
        "per_device_train_batch_size": 4,
        "learning_rate": 1e-3,
        **cpu_args(save_strategy="steps", save_steps=2),
    }
    train_sft(GeoSFTConfig(max_steps=2, **common))
    assert (tmp_path / "run" / "checkpoint-2").is_dir()
    result = train_sft(GeoSFTConfig(max_steps=4, resume_from_checkpoint="last", **common))
    assert result.log_history[-1]["step"] == 4
    # steps 1-2 come from the checkpoint, 3-4 were trained now: none was redone
    logged = [json.loads(x)["step"] for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [s for s in logged if s] == [1, 2, 2, 3, 4, 4]  # each run ends with its summary line
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train_sft(
            GeoSFTConfig(
                max_steps=1, resume_from_checkpoint="last", **{**common, "output_dir": str(tmp_path / "new")}
            )
        )


# --- data mapping ------------------------------------------------------------------


def test_data_mapping_skips_bad_rows_and_keeps_labels(world: Path, tmp_path: Path) -> None:
    rows = [
        _row(0, "images/0.png"),
        _row(1, "images/missing.png"),
        _row(2, "images/2.png"),
        _row(3, "images/bad.png"),
    ]
    rows[2]["lat"] = 123.0  # out of range
    (tmp_path / "images").mkdir()
    _draw(0).save(tmp_path / "images" / "0.png")
    _draw(2).save(tmp_path / "images" / "2.png")
    (tmp_path / "images" / "bad.png").write_bytes(b"not an image")
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "data.parquet"))

    ds, skipped = load_geo_dataset(tmp_path / "data.parquet")
    assert ds["id"] == ["s0"]
    reasons = dict(skipped.rows)
    assert (
        "not found" in reasons["s1"]
        and "invalid coordinates" in reasons["s2"]
        and "unreadable" in reasons["s3"]
    )
    assert isinstance(ds.features["image"], datasets.Image)

    full, _ = load_geo_dataset(world, "train")
    sft, _ = to_sft_dataset(full, "geor")
    protocol = get_protocol("geor")
    row = sft[0]
    assert row["completion"] == [
        {
            "role": "assistant",
            "content": protocol.format_answer(
                full.select_columns(
                    [
                        "id",
                        "lat",
                        "lon",
                        "continent",
                        "country_code",
                        "country",
                        "admin1",
                        "city",
                        "reasoning",
                        "entities",
                    ]
                )[0]
            ),
        }
    ]
    assert row["prompt"][-1]["role"] == "user" and isinstance(row["image"], Image.Image)
    grpo = to_grpo_dataset(full, "globe")
    assert {"prompt", "image", "lat", "lon", "country", "city", "entities", "locatable"} <= set(
        grpo.column_names
    )
    with pytest.raises(ValueError, match="no split 'validation'"):
        load_geo_dataset(world, "validation")
    with pytest.raises(FileNotFoundError, match="georeason synth"):
        load_geo_dataset(tmp_path / "nowhere")


def test_embedded_images_are_checked_too(tmp_path: Path) -> None:
    """Image-feature datasets (bytes inside the Arrow file, as `georeason synth` writes)
    get the same header check: a corrupt row is listed, not met mid-epoch."""
    import io

    buf = io.BytesIO()
    _draw(0).save(buf, format="PNG")
    rows = [_row(0, ""), _row(1, "")]
    rows[0]["image"] = {"bytes": buf.getvalue(), "path": None}
    rows[1]["image"] = {"bytes": b"\x89PNG broken", "path": None}
    ds = datasets.Dataset.from_list(rows).cast_column("image", datasets.Image())
    ds.save_to_disk(str(tmp_path / "embedded"))
    loaded, skipped = load_geo_dataset(tmp_path / "embedded")
    assert loaded["id"] == ["s0"] and isinstance(loaded[0]["image"], Image.Image)
    assert skipped.rows[0][0] == "s1" and "unreadable" in skipped.rows[0][1]


def test_freeze_vision_tower_keeps_the_projector_trainable(tiny_model: Path, world: Path) -> None:
    from georeason.train.common import load_for_training

    cfg = GeoSFTConfig(
        model_name_or_path=str(tiny_model), dataset_name=str(world), freeze_vision_tower=True, **cpu_args()
    )
    model, _ = load_for_training(cfg)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(".visual." in f".{n}" and "merger" not in n for n in frozen)
    assert all(p.requires_grad for n, p in model.named_parameters() if "merger" in n or "language_model" in n)


@pytest.mark.slow
def test_grpo_with_lora_trains_the_adapter(sft_run: TrainResult, world: Path, tmp_path: Path) -> None:
    """LoRA GRPO: the reference policy is the adapter switched off (no second model)."""
    cfg = GeoGRPOConfig(
        model_name_or_path=str(sft_run.model_dir),
        dataset_name=str(world),
        rewards=["geor:1"],
        output_dir=str(tmp_path / "grpo_lora"),
        use_peft=True,
        lora_r=4,
        lora_alpha=8,
        max_steps=2,
        num_generations=4,
        per_device_train_batch_size=4,
        max_completion_length=80,
        learning_rate=1e-3,
        beta=0.04,
        **cpu_args(),
    )
    result = train_grpo(cfg)
    assert (result.output_dir / "adapter_model.safetensors").is_file()
    assert all("kl" in h for h in result.log_history if "rewards/geor/mean" in h)


# --- configs, recipes, CLI ----------------------------------------------------------


def test_config_checks_say_how_to_fix() -> None:
    base = {"output_dir": "/tmp/x", **cpu_args()}
    with pytest.raises(ValueError, match="model_name_or_path is required"):
        GeoSFTConfig(dataset_name="d", **base)
    with pytest.raises(ValueError, match="dataset_name is required"):
        GeoSFTConfig(model_name_or_path="m", **base)
    with pytest.raises(ValueError, match="unknown protocol"):
        GeoSFTConfig(model_name_or_path="m", dataset_name="d", protocol="nope", **base)
    with pytest.raises(ValueError, match="merge_lora needs use_peft"):
        GeoSFTConfig(model_name_or_path="m", dataset_name="d", merge_lora=True, **base)
    with pytest.raises(ValueError, match="max_pixels"):
        GeoSFTConfig(model_name_or_path="m", dataset_name="d", max_pixels=100, **base)
    with pytest.raises(ValueError, match="rewards is required"):
        GeoGRPOConfig(model_name_or_path="m", dataset_name="d", **base)
    with pytest.raises(ValueError, match="did you mean 'geor'"):
        GeoGRPOConfig(model_name_or_path="m", dataset_name="d", rewards=["geo_r:1"], **base)
    with pytest.raises(ValueError, match="not through reward_weights"):
        GeoGRPOConfig(
            model_name_or_path="m", dataset_name="d", rewards=["geor"], reward_weights=[1.0], **base
        )
    with pytest.raises(ValueError, match="needs a judge"):
        GeoGRPOConfig(model_name_or_path="m", dataset_name="d", rewards=["globe_locatability:0.5"], **base)
    # CPU: bf16 left unset stays off (TRL would turn it on)
    cfg = GeoSFTConfig(
        model_name_or_path="m", dataset_name="d", output_dir="/tmp/x", use_cpu=True, report_to=[]
    )
    assert cfg.bf16 is False
    # rewards parse completions in the config's protocol
    funcs, weights = GeoGRPOConfig(
        model_name_or_path="m", dataset_name="d", protocol="plain", rewards=["geor:2"], **base
    ).reward_functions()
    assert weights == [2.0] and funcs[0].protocol == "plain"


def test_recipe_overrides_and_unknown_keys(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "model_name_or_path: m\ndataset_name: d\nrewards: ['geor:1']\noutput_dir: o\nlearning_rate: 1e-6\n"
    )
    cfg = load_config(
        GeoGRPOConfig, recipe, ["num_generations=4", "per_device_train_batch_size=4", "use_cpu=true"]
    )
    assert cfg.learning_rate == 1e-6 and cfg.num_generations == 4  # "1e-6" is a string in YAML 1.1
    with pytest.raises(RecipeError, match="did you mean learning_rate"):
        build_config(GeoSFTConfig, {"learning_rat": 1e-6})
    with pytest.raises(RecipeError, match="key=value"):
        load_config(GeoSFTConfig, recipe, ["learning_rate"])
    with pytest.raises(RecipeError, match="does not exist"):
        load_config(GeoSFTConfig, tmp_path / "none.yaml")


@pytest.mark.parametrize(
    "path", sorted(p.relative_to(RECIPES) for p in RECIPES.glob("*/*.yaml") if p.parent.name != "accelerate")
)
def test_every_recipe_builds_its_config(path: Path) -> None:
    from georeason.train.locatability import LocatabilityRMConfig

    classes = {"locatability_rm": LocatabilityRMConfig, "grpo": GeoGRPOConfig}
    cls = next((c for k, c in classes.items() if k in path.name), GeoSFTConfig)
    # bf16/tensorboard need a GPU/extra package: this checks keys and values, not hardware.
    cfg = load_config(cls, RECIPES / path, ["use_cpu=true", "bf16=false", "report_to=[]"])
    assert cfg.model_name_or_path and cfg.dataset_name


def test_paper_recipes_hold_the_papers_settings() -> None:
    sft = load_config(
        GeoSFTConfig, RECIPES / "qwen2_5_vl_7b/geor_sft.yaml", ["use_cpu=true", "bf16=false", "report_to=[]"]
    )
    assert sft.learning_rate == 1e-5 and sft.num_train_epochs == 1 and sft.protocol == "geor"
    assert (
        sft.per_device_train_batch_size * sft.gradient_accumulation_steps * 8 == 64
    )  # on the recipe's 8 GPUs
    geor = load_config(
        GeoGRPOConfig,
        RECIPES / "qwen2_5_vl_7b/geor_grpo.yaml",
        ["use_cpu=true", "bf16=false", "report_to=[]"],
    )
    assert geor.rewards == ["geor:1"] and geor.reward_weights == [1.0]
    globe = load_config(
        GeoGRPOConfig,
        RECIPES / "qwen2_5_vl_7b/globe_grpo.yaml",
        ["use_cpu=true", "bf16=false", "report_to=[]"],
    )
    assert (globe.learning_rate, globe.num_generations, globe.beta, globe.max_completion_length) == (
        1e-6,
        16,
        0.001,
        1024,
    )
    names = [r.split(":")[0] for r in globe.rewards or []]
    assert dict(zip(names, globe.reward_weights or [], strict=True)) == {
        "globe_accuracy": 1.0,
        "globe_locatability": 0.5,
        "globe_visual": 0.2,
        "globe_format": 1.0,
    }
    assert globe.protocol == "globe"


def test_cli_trains_from_a_recipe_and_reports_bad_keys(tiny_model: Path, world: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from georeason import commands  # noqa: F401  (registers the subcommands)
    from georeason.cli import app

    runner = CliRunner()
    sets = [
        f"model_name_or_path={tiny_model}",
        f"dataset_name={world}",
        f"output_dir={tmp_path / 'cli'}",
        "max_steps=2",
        "num_train_epochs=1",
        "disable_tqdm=true",
    ]
    args = ["train", "sft", "--config", str(RECIPES / "tiny/geor_sft.yaml")]
    for s in sets:
        args += ["--set", s]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cli" / "model.safetensors").is_file()

    bad = runner.invoke(
        app, ["train", "grpo", "--config", str(RECIPES / "tiny/geor_grpo.yaml"), "--set", "num_generation=4"]
    )
    assert bad.exit_code == 2 and "did you mean num_generations" in bad.output
    dry = runner.invoke(
        app, ["train", "grpo", "--config", str(RECIPES / "tiny/globe_grpo.yaml"), "--dry-run"]
    )
    assert dry.exit_code == 0 and "globe_locatability:0.5" in dry.output


def test_cli_tiny_model_learns_the_world_s_clue_words(world: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer
    from typer.testing import CliRunner

    from georeason import commands  # noqa: F401
    from georeason.cli import app

    # A world whose reasoning names a made-up clue, as often as a synthetic world repeats its clues.
    rows = [
        {**_row(i, str(world / "images" / f"{i % 8}.png")), "reasoning": "zorblax sign: Japan."}
        for i in range(300)
    ]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "w"))
    res = CliRunner().invoke(
        app,
        [
            "train",
            "tiny-model",
            "--out",
            str(tmp_path / "m"),
            "--world",
            str(tmp_path / "w"),
            "--hidden-size",
            "32",
        ],
    )
    assert res.exit_code == 0, res.output
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    assert len(tok("zorblax", add_special_tokens=False).input_ids) == 1  # 7 bytes, one token
    bad = CliRunner().invoke(
        app, ["train", "tiny-model", "--out", str(tmp_path / "m2"), "--hidden-size", "30"]
    )
    assert bad.exit_code != 0 and "head size" in bad.output


# --- distributed ---------------------------------------------------------------------


@pytest.mark.slow
def test_two_process_accelerate_grpo_on_cpu(tiny_model: Path, world: Path, tmp_path: Path) -> None:
    """`accelerate launch` with two CPU processes (gloo): the CLI, the recipe, GRPO's
    generation/reward/gradient all-reduce across processes, and the final save."""
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(RECIPES / "accelerate/cpu_2proc.yaml"),
        "-m", "georeason.cli", "train", "grpo",
        "--config", str(RECIPES / "tiny/geor_grpo.yaml"),
        "--set", f"model_name_or_path={tiny_model}",
        "--set", f"dataset_name={world}",
        "--set", f"output_dir={out}",
        "--set", "max_steps=2",
        "--set", "num_generations=4",
        "--set", "per_device_train_batch_size=2",   # 2 processes x 2 = one group of 4
        "--set", "max_completion_length=24",
        "--set", "logging_steps=1",
        "--set", "disable_tqdm=true",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / "model.safetensors").is_file()
    logged = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if "rewards/geor/mean" in r] == [1, 2]  # written once, by rank 0
