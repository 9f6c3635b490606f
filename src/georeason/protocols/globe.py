"""GLOBE's protocol (arXiv 2506.14674): ``<think>…</think><answer>country: X\\ncity: Y</answer>``.

The answer names a country and a city, no coordinates: the parser leaves
``lat``/``lon`` as ``None`` (``n_coordinates`` still counts any pair the answer
holds). Turning the names into coordinates (for distance metrics) is forward
geocoding, done by the evaluation; ``parse(..., geocode=True)`` (or
``GlobeProtocol(geocode=True)``) does it here through
:func:`georeason.geo.forward_geocode`.

``format_ok`` (this protocol's rule, the paper's format check): the completion
is ``<think>…</think>`` then ``<answer>…</answer>`` — one of each, starting
with ``<think>``, only whitespace between and after — and the answer has a
non-empty ``country:`` line and a non-empty ``city:`` line. A completion the
parser had to cut is never ``format_ok``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from georeason.protocols.base import (
    AnswerProtocol,
    clean_reasoning,
    completion_text,
    dedupe_errors,
    default_reasoning,
    read_levels,
    sample_labels,
)
from georeason.protocols.parsing import normalize_text, scan_coordinates, split_completion
from georeason.types import GeoSample, Prediction

SYSTEM_PROMPT = (
    "You are an expert in image geolocation. You reason about the visual clues of a photo "
    "(landscape, vegetation, architecture, signs, languages, vehicles) to find where it was taken."
)
USER_PROMPT = (
    "Where was this photo taken? Analyse the visual clues in the image and reason step by step about "
    "the country and the city. Write your reasoning inside <think> </think> and your final answer "
    "inside <answer> </answer>, exactly in this format:\n"
    "<think> reasoning </think><answer>country: <country>\ncity: <city></answer>"
)


def _structure_errors(text: str) -> list[str]:
    """Why ``text`` is not exactly ``<think>…</think>\\s*<answer>…</answer>\\s*``."""
    s = text.strip()
    low = s.lower()
    if len(low) != len(s):  # a length-changing lower case (rare): compare as written
        low = s
    errors = []
    counts = {tag: low.count(tag) for tag in ("<think>", "</think>", "<answer>", "</answer>")}
    for tag, n in counts.items():
        if n != 1:
            errors.append(f"expected one {tag}, found {n}")
    if not low.startswith("<think>"):
        errors.append("does not start with <think>")
    if not errors:
        t_close, a_open, a_close = low.find("</think>"), low.find("<answer>"), low.find("</answer>")
        if not t_close < a_open < a_close:
            errors.append("tags out of order")
        elif s[t_close + len("</think>") : a_open].strip():
            errors.append("text between </think> and <answer>")
        elif not low.endswith("</answer>"):
            errors.append("text after </answer>")
    return errors


class GlobeProtocol(AnswerProtocol):
    """GLOBE: ``<think>`` reasoning, then ``country:`` and ``city:`` lines."""

    name = "globe"
    system_prompt = SYSTEM_PROMPT
    user_prompt = USER_PROMPT
    reasoning_in_think_tags = True

    def __init__(self, geocode: bool = False) -> None:
        self.geocode = geocode

    def parse(self, completion: Any, geocode: bool | None = None) -> Prediction:
        """Read a completion; with ``geocode`` (default: the protocol's setting,
        off) fill ``lat``/``lon`` by forward geocoding the city and country."""
        pred = super().parse(completion)
        if (self.geocode if geocode is None else geocode) and (pred.city or pred.country):
            try:
                from georeason.geo import forward_geocode

                place = forward_geocode(city=pred.city, admin1=pred.admin1, country=pred.country)
            except Exception as e:  # a geocoder failure is recorded, never raised
                pred.errors.append(f"geocoding failed: {type(e).__name__}: {e}")
            else:
                if place is None:
                    pred.errors.append(f"could not geocode city={pred.city!r} country={pred.country!r}")
                else:
                    pred.lat, pred.lon = place.city_lat, place.city_lon
        return pred

    def _parse(self, text: str) -> Prediction:
        region = split_completion(text)
        pred = Prediction(raw=text, reasoning=region.reasoning, errors=list(region.errors))
        if not region.answer_tag:
            pred.errors.append("no <answer> tag")
        answer = normalize_text(region.answer)
        present, keys_cut = read_levels(pred, answer)
        scan = scan_coordinates(answer, normalized=True)
        pred.n_coordinates, pred.coordinate_forms = len(scan.pairs), scan.forms
        structure = _structure_errors(region.text)
        pred.errors.extend(structure)
        missing = [lvl for lvl in ("country", "city") if lvl not in present]
        for lvl in missing:
            pred.errors.append(f"missing level: {lvl}")
        pred.truncated = region.capped or keys_cut
        pred.format_ok = not structure and not missing and not pred.truncated
        return dedupe_errors(pred)

    def format_answer(self, sample: GeoSample | Mapping[str, Any]) -> str:
        """``<think>reasoning</think><answer>country: X\\ncity: Y</answer>`` (names filled
        by reverse geocoding when the sample lacks them)."""
        labels = sample_labels(sample, need=("country", "city"))
        reasoning = clean_reasoning(labels.reasoning or default_reasoning(labels))
        return f"<think>{reasoning}</think><answer>country: {labels.country}\ncity: {labels.city}</answer>"


__all__ = ["GlobeProtocol", "completion_text"]
