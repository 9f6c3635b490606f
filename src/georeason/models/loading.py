"""Load any Hugging Face image-text-to-text model and its processor.

One entry point, :func:`load_model`, for training, inference and serving:
``AutoModelForImageTextToText`` + ``AutoProcessor`` by hub ID or local folder,
with the knobs that matter for geolocation (dtype, device map, the image pixel
budget, attention implementation). Remote code stays off unless asked for.

Offline (``HF_HUB_OFFLINE=1``, or no route to the hub) an unknown hub ID fails
at once with a message that says how to get the model, instead of hanging on
connection retries deep inside ``from_pretrained``.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

_TRUE = {"1", "true", "yes", "on"}
# A hub repository ID: "name" or "owner/name" (letters, digits, - _ .).
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_PROBE_TIMEOUT_S = 3.0


class ModelNotFoundError(FileNotFoundError):
    """The model is neither a local folder nor reachable on (or cached from) the hub."""


def hub_offline() -> bool:
    """True when the Hugging Face hub must not be contacted (``HF_HUB_OFFLINE`` /
    ``TRANSFORMERS_OFFLINE``). Read from the environment at call time, not at import."""
    return any(
        os.environ.get(var, "").strip().lower() in _TRUE for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _hub_reachable(timeout_s: float = _PROBE_TIMEOUT_S) -> bool:
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def _how_to_get(name: str) -> str:
    return (
        f"Download it where the hub is reachable (`hf download {name} --local-dir ./models/{name.split('/')[-1]}`), "
        "copy the folder here and pass its path; or, for an offline demo or test, build the tiny model with "
        "`georeason train tiny-model --out DIR` (georeason.models.build_tiny_vlm)."
    )


def resolve_model(name_or_path: str | os.PathLike[str]) -> str:
    """Check that a model can be loaded without hanging; return what to pass to ``from_pretrained``.

    - an existing local folder -> its path (it must hold a ``config.json``);
    - a hub ID already in the local hub cache -> the ID;
    - a hub ID, offline or with no route to the hub -> :class:`ModelNotFoundError` at once;
    - a hub ID, online -> the ID (``from_pretrained`` reports unknown repositories).

    >>> try:
    ...     resolve_model("/no/such/folder")
    ... except ModelNotFoundError as e:
    ...     print(str(e).split(" (")[0])
    model folder /no/such/folder does not exist
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"{path} is a folder but holds no config.json: not a saved model. Pass the folder written by "
                "`save_pretrained` (a training run's output_dir, or a checkpoint-N folder inside it)."
            )
        return str(path)
    looks_like_path = (
        text.startswith((".", "/", "~")) or text.count("/") > 1 or os.sep in text.replace("/", "")
    )
    if looks_like_path or not _HUB_ID.match(text):
        raise ModelNotFoundError(
            f"model folder {text} does not exist (and it is not a hub ID): check the path, or make the model "
            "first (a training run writes its output_dir; `georeason demo` writes runs/demo/sft and "
            f"runs/demo/grpo; `georeason train tiny-model --out {text}` builds the tiny offline one)"
        )
    if _in_hub_cache(text):
        return text
    if hub_offline():
        raise ModelNotFoundError(
            f"{text!r} is not a local folder and not in the Hugging Face cache, and the hub is offline "
            f"(HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE is set). {_how_to_get(text)}"
        )
    if not _hub_reachable():
        raise ModelNotFoundError(
            f"{text!r} is not a local folder and not in the Hugging Face cache, and the hub is unreachable "
            f"from this machine. {_how_to_get(text)} Set HF_HUB_OFFLINE=1 on machines without network."
        )
    return text


def _set_pixel_budget(processor: Any, min_pixels: int | None, max_pixels: int | None) -> None:
    """Set the image pixel budget on processors that have one (the Qwen2-VL family:
    ``size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}``, in pixels)."""
    if min_pixels is None and max_pixels is None:
        return
    if min_pixels is not None and max_pixels is not None and min_pixels > max_pixels:
        raise ValueError(f"min_pixels ({min_pixels}) must be <= max_pixels ({max_pixels}).")
    for name in ("image_processor", "video_processor"):
        sub = getattr(processor, name, None)
        if sub is None:
            continue
        size: Any = getattr(sub, "size", None)
        has_budget = hasattr(sub, "merge_size") and size is not None and "longest_edge" in dict(size)
        if not has_budget:
            if name == "image_processor":
                raise ValueError(
                    f"min_pixels/max_pixels set, but {type(sub).__name__} has no pixel budget (only the "
                    "Qwen2-VL family of processors does). Leave them unset for this model."
                )
            continue
        new = dict(size)
        if min_pixels is not None:
            new["shortest_edge"] = int(min_pixels)
        if max_pixels is not None:
            new["longest_edge"] = int(max_pixels)
        sub.size = type(size)(**new) if not isinstance(size, dict) else new
        # Older processors read these attributes instead of `size`.
        for attr, value in (("min_pixels", new["shortest_edge"]), ("max_pixels", new["longest_edge"])):
            if hasattr(sub, attr):
                setattr(sub, attr, value)


def load_model(
    name_or_path: str | os.PathLike[str],
    *,
    dtype: Any = "auto",
    device_map: str | dict[str, Any] | None = None,
    max_pixels: int | None = None,
    min_pixels: int | None = None,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
) -> tuple[Any, Any]:
    """Load an image-text-to-text model and its processor: ``(model, processor)``.

    Args:
        name_or_path: hub ID (``"Qwen/Qwen2.5-VL-7B-Instruct"``) or local folder.
        dtype: ``"auto"`` (the checkpoint's dtype), a ``torch.dtype`` or its name
            (``"bfloat16"``, ``"float32"``).
        device_map: passed to ``from_pretrained`` (``"auto"``, ``"cpu"``, a dict); None
            loads on CPU, as trainers under ``accelerate`` expect.
        max_pixels, min_pixels: image pixel budget of Qwen2-VL-family processors
            (Qwen2.5-VL's default max is 12.8 Mpx; 1024*28*28 is a common cap).
        attn_implementation: ``"sdpa"``, ``"flash_attention_2"``, ``"eager"``; None
            lets transformers choose.
        trust_remote_code: run model code shipped in the repository. Off by default:
            it executes arbitrary Python from the hub.

    Raises:
        ModelNotFoundError: missing folder, or hub ID while offline (see :func:`resolve_model`).
    """
    source = resolve_model(name_or_path)

    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if isinstance(dtype, str) and dtype != "auto":
        resolved = getattr(torch, dtype, None)
        if not isinstance(resolved, torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}: use 'auto', 'bfloat16', 'float16' or 'float32'.")
        dtype = resolved

    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": trust_remote_code}
    if device_map is not None:
        kwargs["device_map"] = device_map
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForImageTextToText.from_pretrained(source, **kwargs)
    processor = AutoProcessor.from_pretrained(source, trust_remote_code=trust_remote_code)
    _set_pixel_budget(processor, min_pixels, max_pixels)
    return model, processor
