"""Fixtures shared by several test files, and the one rule for tests that need an extra.

Optional extras: mark a test (or a module, with ``pytestmark``)
``@pytest.mark.requires("datasets", "fastapi")``; it is skipped, with the extra to
install, when one of those modules is not installed (:func:`pytest_runtest_setup`).
A module that imports an extra's package at import time keeps pytest's own
``pytest.importorskip`` at its top instead (a marker cannot stop an import error).

Slow tests (over ~3 s on 2 cores) are marked ``@pytest.mark.slow``; a contributor's
inner loop is ``HF_HUB_OFFLINE=1 python -m pytest -m "not slow"``. CI runs everything.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

# Which extra brings each optional module (for the skip message).
EXTRA_OF = {
    "torch": "train",
    "torchvision": "train",
    "transformers": "train",
    "trl": "train",
    "peft": "train",
    "datasets": "train",
    "matplotlib": "train",
    "PIL": "train",
    "fastapi": "serve",
    "httpx": "serve",
    "openai": "serve",
    "uvicorn": "serve",
    "vllm": "vllm",
}


def missing_modules(*modules: str) -> list[str]:
    """The ones among ``modules`` (dotted names allowed) that cannot be imported."""
    out = []
    for m in modules:
        try:
            found = importlib.util.find_spec(m) is not None
        except (ImportError, ValueError):  # a parent package is missing
            found = False
        if not found:
            out.append(m)
    return out


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requires(*modules): skip unless these optional modules (an extra) are installed"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("requires"):
        gone = missing_modules(*mark.args)
        if gone:
            extras = sorted({EXTRA_OF[m.split(".")[0]] for m in gone if m.split(".")[0] in EXTRA_OF})
            hint = f": pip install -e '.[{','.join(extras)}]'" if extras else " (not installed)"
            pytest.skip(f"needs {', '.join(gone)}{hint}")


@pytest.fixture(scope="session")
def tiny_backend_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Qwen2.5-VL with its weights redrawn at std 0.1, so that its answers vary with
    the image (the default init answers nearly the same text whatever the photo). Built once
    a session; the backend, serve, locate and distill tests share it."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from georeason.models import build_tiny_vlm, default_corpus, load_model

    root = tmp_path_factory.mktemp("georeason-tiny-backends")
    base = build_tiny_vlm(root / "base", corpus=default_corpus(max_places=2000, answers_per_protocol=200))
    model, processor = load_model(base)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.1, generator=gen)
    model.save_pretrained(root / "model")
    processor.save_pretrained(root / "model")
    return root / "model"
