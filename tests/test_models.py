"""georeason.models: the tiny offline Qwen2.5-VL and load_model (offline-aware)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from georeason.models import ModelNotFoundError, build_tiny_vlm, load_model, resolve_model  # noqa: E402
from georeason.models.tiny import QWEN2_5_VL_CHAT_TEMPLATE, SPECIAL_TOKENS, default_corpus  # noqa: E402
from georeason.protocols import PROTOCOLS, get_protocol  # noqa: E402

# A small corpus for the builds that test determinism and options: seconds, not the
# full gazetteer (the session model below uses the default corpus).
SMALL_CORPUS = [
    f"Country: {c}\nState: {s}\nCity: {t}\nCoordinates: ({la:.4f}, {lo:.4f})"
    for c, s, t, la, lo in [
        ("Japan", "Hokkaido", "Biei", 43.452, 142.615),
        ("France", "Île-de-France", "Paris", 48.8534, 2.3488),
        ("Kenya", "Nairobi Area", "Nairobi", -1.2833, 36.8167),
        ("Peru", "Lima", "Lima", -12.0432, -77.0282),
    ]
] * 50
SMALL = {
    "corpus": SMALL_CORPUS,
    "vocab_size": 600,
    "hidden_size": 32,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
}


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny_vlm") / "model")


def _image(color: tuple[int, int, int] = (200, 30, 30), size: int = 84) -> Image.Image:
    return Image.new("RGB", (size, size), color)


def test_tiny_folder_loads_with_auto_classes(tiny_dir: Path) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "chat_template.jinja",
        "georeason_tiny.json",
    ):
        assert (tiny_dir / name).is_file(), name
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    processor = AutoProcessor.from_pretrained(tiny_dir)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"

    cfg, tok = model.config, processor.tokenizer
    # The config's special ids are the tokenizer's.
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert cfg.vision_end_token_id == tok.convert_tokens_to_ids("<|vision_end|>")
    assert model.generation_config.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.pad_token == "<|endoftext|>"
    # Rotary sections cover head_dim/2; the vision tower feeds the text width.
    head_dim = cfg.text_config.hidden_size // cfg.text_config.num_attention_heads
    assert sum(cfg.text_config.rope_parameters["mrope_section"]) == head_dim // 2
    assert cfg.vision_config.out_hidden_size == cfg.text_config.hidden_size
    info = json.loads((tiny_dir / "georeason_tiny.json").read_text())
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["parameters"] < 3_000_000


def test_chat_template_is_qwen_s_byte_for_byte(tiny_dir: Path) -> None:
    """TRL recognises Qwen2.5-VL by its exact template (e.g. to swap in its training
    variant for assistant-only loss); ours must be identical to the one TRL ships."""
    import trl

    shipped = Path(trl.__file__).parent / "chat_templates" / "qwen2_5_vl.jinja"
    if not shipped.is_file():
        pytest.skip("this TRL version ships no qwen2_5_vl.jinja")
    assert shipped.read_text(encoding="utf-8") == QWEN2_5_VL_CHAT_TEMPLATE
    assert (tiny_dir / "chat_template.jinja").read_text(encoding="utf-8") == QWEN2_5_VL_CHAT_TEMPLATE


def test_tokenizer_round_trips_any_text_and_knows_the_protocols(tiny_dir: Path) -> None:
    from transformers import AutoProcessor

    tok = AutoProcessor.from_pretrained(tiny_dir).tokenizer
    for text in [
        "Zürich, São Paulo, 東京, Ōsaka — Reykjavík!",
        "Coordinates: (-33.8688, 151.2093)",
        "🙂 \t\n x",
    ]:
        assert tok.decode(tok(text).input_ids) == text  # byte-level: nothing is unknown
    for special in SPECIAL_TOKENS:
        assert len(tok(special, add_special_tokens=False).input_ids) == 1
    # Trained on the protocols' prompts: whole words are tokens (>= 3 characters per
    # token on average), not letters (an untrained byte-level BPE gives ~1.5).
    for protocol in PROTOCOLS.values():
        text = protocol.user_prompt
        assert len(tok(text).input_ids) < len(text) / 3
    # Digits stay single tokens (Qwen2's split), so coordinates are learnable digit by digit.
    assert tok.convert_ids_to_tokens(tok("142.615").input_ids) == ["1", "4", "2", ".", "6", "1", "5"]


def test_tiny_model_reads_an_image_and_generates(tiny_dir: Path) -> None:
    model, processor = load_model(tiny_dir)
    messages = get_protocol("geor").messages()
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=[text], images=[_image()], return_tensors="pt")
    n_image_tokens = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert n_image_tokens == int(inputs["image_grid_thw"].prod()) // 4  # 2x2 merge
    out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]
    assert isinstance(processor.decode(out[0, inputs["input_ids"].shape[1] :]), str)


def test_same_seed_same_model_other_seed_other_weights(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    a = build_tiny_vlm(tmp_path / "a", seed=3, **SMALL)
    b = build_tiny_vlm(tmp_path / "b", seed=3, **SMALL)
    c = build_tiny_vlm(tmp_path / "c", seed=4, **SMALL)
    wa, wb, wc = (load_file(p / "model.safetensors") for p in (a, b, c))
    assert wa.keys() == wb.keys() == wc.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()
    # the caller's RNG is left alone
    torch.manual_seed(123)
    x = torch.rand(1)
    torch.manual_seed(123)
    build_tiny_vlm(tmp_path / "d", seed=5, **SMALL)
    assert torch.equal(torch.rand(1), x)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hidden_size": 100, "num_attention_heads": 3}, "head size"),
        ({"num_attention_heads": 4, "num_key_value_heads": 3}, "multiple of num_key_value_heads"),
        ({"min_pixels": 100}, "28\\*28"),
        ({"min_pixels": 112 * 112, "max_pixels": 56 * 56}, "min_pixels"),
        ({"vocab_size": 100}, "vocab_size"),
    ],
)
def test_build_rejects_impossible_shapes(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_tiny_vlm(tmp_path / "x", corpus=SMALL_CORPUS, **kwargs)


def test_default_corpus_holds_gazetteer_names_and_every_protocol_prompt() -> None:
    corpus = default_corpus(max_places=500, answers_per_protocol=5)
    text = "\n".join(corpus)
    for protocol in PROTOCOLS.values():
        assert protocol.user_prompt in text
    assert "Tokyo" in text or "Shanghai" in text
    assert sum("<answer>" in line for line in corpus) >= 5


def test_load_model_pixel_budget_and_dtype(tiny_dir: Path) -> None:
    big = _image(size=448)
    _, processor = load_model(tiny_dir)
    n_default = int(processor.image_processor(images=[big], return_tensors="pt")["image_grid_thw"].prod())
    model, small = load_model(tiny_dir, max_pixels=56 * 56, min_pixels=28 * 28, dtype="bfloat16")
    n_small = int(small.image_processor(images=[big], return_tensors="pt")["image_grid_thw"].prod())
    assert n_small == 16 < n_default  # 56x56 px = 4x4 patches of 14 px
    assert next(model.parameters()).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        load_model(tiny_dir, dtype="float13")
    with pytest.raises(ValueError, match="min_pixels"):
        load_model(tiny_dir, min_pixels=112 * 112, max_pixels=56 * 56)


def test_missing_folder_and_non_model_folder_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match=r"config\.json"):
        load_model(tmp_path / "empty")


def test_unknown_hub_id_offline_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="offline") as err:
        load_model("no-such-org/no-such-vlm-7b")
    assert "tiny-model" in str(err.value) and "hf download" in str(err.value)


def test_unknown_hub_id_without_route_to_the_hub_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not flagged offline, but the hub is unreachable: a closed local port stands
    in for a machine without network; we must not hang in retries."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(ModelNotFoundError, match="unreachable"):
        resolve_model("no-such-org/no-such-vlm-7b")
