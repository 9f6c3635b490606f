"""A tiny Qwen2.5-VL built offline: the model of the tests, the demo and CI.

No model hub is reachable here, so everything a real checkpoint ships is made
locally, and saved as an ordinary model folder that ``from_pretrained`` loads:

- **tokenizer**: byte-level BPE trained with ``tokenizers`` on gazetteer names
  (cities, admin1 regions, countries, formatted as the answer protocols write
  them) and on every protocol's prompt text, so a Chain of Region answer is a few
  dozen tokens and not hundreds of bytes. Pre-tokenised like Qwen2 (digits one
  by one), wrapped in ``PreTrainedTokenizerFast`` with Qwen2.5-VL's exact chat
  template (TRL recognises it and swaps in its training variant when asked for
  assistant-only loss) and Qwen's special tokens.
- **processor**: ``Qwen2VLImageProcessor`` with a small pixel budget
  (56x56 .. 112x112 by default: 4 .. 16 image tokens after the 2x2 merge) plus
  ``Qwen2VLVideoProcessor`` (required by ``Qwen2_5_VLProcessor``).
- **config**: ``image_token_id`` and friends are the tokenizer's ids;
  ``mrope_section`` sums to head_dim / 2 (Qwen's 16:24:24 split scaled down);
  the vision tower's ``out_hidden_size`` is the text ``hidden_size``.
- **weights**: random, from a fixed seed (same seed -> same model).

The defaults keep one SFT or GRPO step on a CPU well under a second, yet leave enough capacity to learn the synthetic world of
:mod:`georeason.datasets.synthetic`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

# Qwen2.5-VL's chat template, byte-identical to the one the Qwen checkpoints ship
# (and to trl/chat_templates/qwen2_5_vl.jinja): TRL compares templates by identity.
QWEN2_5_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

PAD_TOKEN = "<|endoftext|>"
# Order fixes the ids 0..6: <|endoftext|>=0, <|im_start|>=1, <|im_end|>=2, ...
SPECIAL_TOKENS = (
    PAD_TOKEN,
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Qwen2's pre-tokenizer split: letters in words, every digit alone (coordinates
# stay learnable digit by digit), punctuation runs, newlines, spaces.
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

BUILD_INFO_FILE = "georeason_tiny.json"


def _places(max_places: int) -> Iterator[tuple[str, str, str, str, float, float]]:
    """(city, admin1, country_code, country, lat, lon) of the most populous places.

    Read from :func:`georeason.geo.gazetteer`, the names every reward and metric
    compares against, so the tokenizer learns the spellings the model must write.
    """
    import numpy as np

    from georeason.geo import gazetteer
    from georeason.geo.gazetteer import country_name

    g = gazetteer()
    order = np.argsort(-g.population, kind="stable")[:max_places]
    for i in order.tolist():
        code = str(g.country_code[i])
        yield str(g.name[i]), str(g.admin1[i]), code, country_name(code), float(g.lat[i]), float(g.lon[i])


def _prompt_text(protocol: Any) -> str:
    """The text of a protocol's prompt as the chat template lays it out, roles included,
    without the special tokens (those are whole tokens already: BPE merges spent on
    their pieces would be wasted)."""
    parts = []
    for message in protocol.messages():
        content = message["content"]
        texts = (
            [content] if isinstance(content, str) else [p["text"] for p in content if p.get("type") == "text"]
        )
        parts.append(f"{message['role']}\n" + "".join(texts))
    return "\n".join(parts) + "\nassistant\n"


def _protocol_texts(places: list[tuple[str, str, str, str, float, float]]) -> Iterator[str]:
    """Each protocol's prompt followed by its gold answer, for a sample of places.

    The prompt is repeated with every answer on purpose: BPE merges by frequency,
    and a prompt seen once among 20k place names would stay split into single
    letters (hundreds of tokens per prompt, on every training step).
    """
    from georeason import protocols
    from georeason.types import GeoSample

    for protocol in protocols.PROTOCOLS.values():
        prompt = _prompt_text(protocol)
        for k, (city, admin1, code, country, lat, lon) in enumerate(places):
            sample = GeoSample(
                id=f"corpus-{k}",
                image=None,
                lat=lat,
                lon=lon,
                country_code=code,
                country=country,
                admin1=admin1,
                city=city,
                reasoning=f"The signs are written for {city}, a place in {admin1}, {country}.",
            )
            yield prompt + protocol.format_answer(sample)


def default_corpus(max_places: int = 20_000, answers_per_protocol: int = 2_000) -> list[str]:
    """Training text for the tiny tokenizer: place names in the protocols' formats
    plus every protocol's prompt and gold answers.

    The ``max_places`` most populous gazetteer places give the names; the first
    ``answers_per_protocol`` of them are also written as full prompt + gold answer
    by each protocol (so its key words, tags and punctuation become single tokens).
    """
    places = list(_places(max_places))
    lines = [
        f"Country: {country}\nState: {admin1}\nCity: {city}\nCoordinates: ({lat:.4f}, {lon:.4f})\n"
        f"country: {country}\ncity: {city}"
        for city, admin1, _code, country, lat, lon in places
    ]
    lines.extend(_protocol_texts(places[:answers_per_protocol]))
    return lines


def _train_tokenizer(corpus: Iterable[str], vocab_size: int) -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        # all 256 bytes are in the vocabulary: any text (any script) round-trips.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token=PAD_TOKEN,
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        chat_template=QWEN2_5_VL_CHAT_TEMPLATE,
        model_max_length=8192,
        # left padding: batched generation (GRPO rollouts, eval) appends on the right.
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )


def _mrope_section(head_dim: int) -> list[int]:
    """Qwen2.5-VL splits head_dim/2 rotary frequencies over (time, height, width)
    as 16:24:24 of 64; keep that 1/4 : 3/8 : 3/8 shape at any head size."""
    half = head_dim // 2
    t = max(1, half // 4)
    h = (half - t) // 2
    return [t, h, half - t - h]


def build_tiny_vlm(
    out_dir: str | Path,
    *,
    vocab_size: int = 4096,
    hidden_size: int = 128,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    intermediate_size: int | None = None,
    vision_hidden_size: int = 64,
    vision_depth: int = 1,
    vision_num_heads: int = 2,
    min_pixels: int = 56 * 56,
    max_pixels: int = 112 * 112,
    seed: int = 0,
    corpus: Iterable[str] | None = None,
    extra_text: Iterable[str] = (),
) -> Path:
    """Build a tiny random-weight Qwen2.5-VL with a locally trained tokenizer.

    Writes a model folder (``config.json``, ``model.safetensors``, tokenizer and
    processor files, ``chat_template.jinja``) that
    ``AutoModelForImageTextToText.from_pretrained`` / ``AutoProcessor.from_pretrained``
    and :func:`georeason.models.load_model` load, and returns its path.

    Args:
        out_dir: folder to write (created; existing files are overwritten).
        vocab_size: BPE vocabulary size, special tokens included.
        hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads,
        intermediate_size: the text decoder (``intermediate_size`` defaults to 2x hidden).
        vision_hidden_size, vision_depth, vision_num_heads: the vision tower (patch 14,
            2x2 merge, like Qwen2.5-VL).
        min_pixels, max_pixels: the image processor's pixel budget; images are
            resized to a multiple of 28 px within it.
        seed: seed of the random weights.
        corpus: tokenizer training text; default :func:`default_corpus` (gazetteer
            names and the protocols' prompts and answers).
        extra_text: more tokenizer training text on top of ``corpus``, e.g. the
            synthetic world's reasoning strings, so its clue words are whole tokens.

    >>> path = build_tiny_vlm(tmp_path / "tiny")  # doctest: +SKIP
    >>> from transformers import AutoModelForImageTextToText
    >>> AutoModelForImageTextToText.from_pretrained(path)  # doctest: +SKIP
    """
    head_dim, rem = divmod(hidden_size, num_attention_heads)
    if rem or head_dim % 2 or head_dim < 8:
        raise ValueError(
            f"hidden_size ({hidden_size}) / num_attention_heads ({num_attention_heads}) must be an even "
            "head size >= 8 (rotary embeddings split it into time/height/width sections); "
            "e.g. hidden_size=128 with 4 heads."
        )
    if num_attention_heads % num_key_value_heads:
        raise ValueError(
            f"num_attention_heads ({num_attention_heads}) must be a multiple of num_key_value_heads "
            f"({num_key_value_heads})."
        )
    if vision_hidden_size % vision_num_heads or (vision_hidden_size // vision_num_heads) % 2:
        raise ValueError(
            f"vision_hidden_size ({vision_hidden_size}) / vision_num_heads ({vision_num_heads}) must be an "
            "even head size."
        )
    if not 28 * 28 <= min_pixels <= max_pixels:
        raise ValueError(
            f"need 28*28 <= min_pixels ({min_pixels}) <= max_pixels ({max_pixels}): one merged 2x2 block "
            "of 14-px patches is 28x28 px."
        )
    if vocab_size < 512:
        raise ValueError(f"vocab_size ({vocab_size}) must be >= 512 (256 bytes + special tokens + merges).")

    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    text = [*(default_corpus() if corpus is None else corpus), *extra_text]
    tokenizer = _train_tokenizer(text, vocab_size)
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels),
        video_processor=Qwen2VLVideoProcessor(min_pixels=min_pixels, max_pixels=max_pixels),
        tokenizer=tokenizer,
        chat_template=QWEN2_5_VL_CHAT_TEMPLATE,
    )

    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": hidden_size,
            "intermediate_size": intermediate_size or 2 * hidden_size,
            "num_hidden_layers": num_hidden_layers,
            "num_attention_heads": num_attention_heads,
            "num_key_value_heads": num_key_value_heads,
            "max_position_embeddings": 8192,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1e6,
                "mrope_section": _mrope_section(head_dim),
            },
            "bos_token_id": ids[PAD_TOKEN],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids[PAD_TOKEN],
            "tie_word_embeddings": True,
        },
        vision_config={
            "depth": vision_depth,
            "hidden_size": vision_hidden_size,
            "intermediate_size": 2 * vision_hidden_size,
            "num_heads": vision_num_heads,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            # 112 px windows: at this pixel budget every layer sees the whole image.
            "window_size": 112,
            "fullatt_block_indexes": list(range(vision_depth)),
            "out_hidden_size": hidden_size,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        # tied input/output embeddings: half the parameters of a 4k-vocabulary head.
        tie_word_embeddings=True,
    )

    # fork_rng: a fixed seed for the weights without touching the caller's RNG state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids[PAD_TOKEN]
    model.generation_config.bos_token_id = ids[PAD_TOKEN]

    model.save_pretrained(out)
    processor.save_pretrained(out)
    info = {
        "builder": "georeason.models.build_tiny_vlm",
        "seed": seed,
        "vocab_size": len(tokenizer),
        "hidden_size": hidden_size,
        "num_hidden_layers": num_hidden_layers,
        "vision_depth": vision_depth,
        "min_pixels": min_pixels,
        "max_pixels": max_pixels,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    (out / BUILD_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out
