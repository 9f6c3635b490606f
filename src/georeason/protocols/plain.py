"""The plain protocol: the model answers with coordinates only, ``(lat, lon)``.

The baseline of both papers' comparisons. The answer is the whole completion
(or, if the model still uses tags, the inside of ``<answer>`` / the text after
``</think>``). ``format_ok``: the answer holds exactly one valid pair, and the parser read all of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from georeason.protocols.base import (
    AnswerProtocol,
    dedupe_errors,
    format_coordinates,
    read_coordinates,
    sample_labels,
)
from georeason.protocols.parsing import normalize_text, split_completion
from georeason.types import GeoSample, Prediction

SYSTEM_PROMPT = "You are an expert in image geolocation."
USER_PROMPT = (
    "Where was this photo taken? Answer with its coordinates only, as (latitude, longitude) in decimal "
    "degrees, negative for south and west, and nothing else."
)


class PlainProtocol(AnswerProtocol):
    """Coordinates only."""

    name = "plain"
    system_prompt = SYSTEM_PROMPT
    user_prompt = USER_PROMPT

    def _parse(self, text: str) -> Prediction:
        region = split_completion(text)
        pred = Prediction(raw=text, reasoning=region.reasoning, errors=list(region.errors))
        cut = read_coordinates(pred, normalize_text(region.answer))
        pred.truncated = cut or region.capped
        pred.format_ok = pred.n_coordinates == 1 and not (cut or region.capped)
        return dedupe_errors(pred)

    def format_answer(self, sample: GeoSample | Mapping[str, Any]) -> str:
        """``(lat, lon)`` with 4 decimals."""
        labels = sample_labels(sample)
        return format_coordinates(labels.lat, labels.lon)
