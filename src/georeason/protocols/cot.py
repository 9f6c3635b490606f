"""The chain-of-thought protocol: free reasoning, then a final line of coordinates.

The answer region is, in order of preference: the inside of the last
``<answer>`` / the text after the last ``</think>`` (if the model uses tags);
else the text from the last answer marker — "final answer" anywhere, or a
line starting with ``Answer``, ``Coordinates``, ``Location`` or ``GPS`` (through
Markdown); else the last :data:`~georeason.protocols.parsing.MAX_ANSWER_CHARS`
characters. The reasoning is the text before it.

``format_ok``: the answer region holds exactly one valid pair, and the parser read all of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from georeason.protocols.base import (
    AnswerProtocol,
    clean_reasoning,
    dedupe_errors,
    default_reasoning,
    format_coordinates,
    read_coordinates,
    sample_labels,
)
from georeason.protocols.parsing import MAX_ANSWER_CHARS, normalize_text, split_completion
from georeason.types import GeoSample, Prediction

SYSTEM_PROMPT = "You are an expert in image geolocation."
USER_PROMPT = (
    "Where was this photo taken? Think step by step about the visual clues (landscape, vegetation, "
    "architecture, roads, vehicles, signs, languages), then end with one final line:\n"
    "Coordinates: (<latitude>, <longitude>)\n"
    "in decimal degrees, negative for south and west."
)

# A line that starts (after Markdown bullets/emphasis) with an answer marker.
_MARKER_RE = re.compile(
    r"^[ *_#>\-]{0,8}(?:final\s(?:answer|coordinates|location)|answer|coordinates?|location|gps)\b",
    re.IGNORECASE | re.MULTILINE,
)


def _answer_start(tail: str) -> int:
    """Offset in ``tail`` where the final answer starts, or -1."""
    low = tail.lower()
    best = low.rfind("final answer") if len(low) == len(tail) else -1
    last = None
    for last in _MARKER_RE.finditer(tail):  # noqa: B007 - we want the last match
        pass
    if last is not None:
        best = max(best, last.start())
    return best


class CotProtocol(AnswerProtocol):
    """Free reasoning, then ``Coordinates: (lat, lon)``."""

    name = "cot"
    system_prompt = SYSTEM_PROMPT
    user_prompt = USER_PROMPT

    def _parse(self, text: str) -> Prediction:
        region = split_completion(text)
        pred = Prediction(raw=text, reasoning=region.reasoning, errors=list(region.errors))
        capped = region.truncated
        if region.answer_tag or region.think_close:
            answer = region.answer
            capped = region.capped
        else:
            body = region.text
            offset = max(0, len(body) - MAX_ANSWER_CHARS)
            start = _answer_start(body[offset:])
            if start < 0:
                pred.errors.append("no final answer marker; read the end of the text")
                start = 0
            answer = body[offset + start :]
            pred.reasoning = body[: offset + start].strip()
        cut = read_coordinates(pred, normalize_text(answer))
        pred.truncated = cut or capped
        pred.format_ok = pred.n_coordinates == 1 and not (cut or capped)
        return dedupe_errors(pred)

    def format_answer(self, sample: GeoSample | Mapping[str, Any]) -> str:
        """``reasoning\\nCoordinates: (lat, lon)``."""
        labels = sample_labels(sample, need=("country",) if _needs_names(sample) else ())
        reasoning = clean_reasoning(labels.reasoning or default_reasoning(labels))
        return f"{reasoning}\nCoordinates: {format_coordinates(labels.lat, labels.lon)}"


def _needs_names(sample: GeoSample | Mapping[str, Any]) -> bool:
    # The default reasoning is more useful with a country; only look it up when
    # the sample has no reasoning of its own (reverse geocoding costs a lookup).
    reasoning = sample.get("reasoning") if isinstance(sample, Mapping) else getattr(sample, "reasoning", None)
    return not reasoning
