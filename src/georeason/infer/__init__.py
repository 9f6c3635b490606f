"""Inference backends: (image, prompt) -> text, chosen by name and imported only when chosen.

``hf`` (transformers, in process), ``openai`` (any OpenAI-compatible server),
``vllm`` (vLLM in process, optional extra). See :mod:`georeason.infer.base` for the API.
"""

from georeason.infer.base import (
    BACKENDS,
    Backend,
    BackendError,
    Request,
    Response,
    get_backend,
    yes_probability,
)

__all__ = ["BACKENDS", "Backend", "BackendError", "Request", "Response", "get_backend", "yes_probability"]
