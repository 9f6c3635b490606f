"""Models: load any Hugging Face image-text-to-text model; build the tiny offline VLM.

Importing this package is cheap: torch and transformers load inside the functions.
"""

from georeason.models.loading import ModelNotFoundError, hub_offline, load_model, resolve_model
from georeason.models.tiny import build_tiny_vlm, default_corpus

__all__ = [
    "ModelNotFoundError",
    "build_tiny_vlm",
    "default_corpus",
    "hub_offline",
    "load_model",
    "resolve_model",
]
