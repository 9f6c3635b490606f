"""Fixtures shared by several test files."""

from __future__ import annotations

from pathlib import Path

import pytest


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
