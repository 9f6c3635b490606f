"""Geo-R's *Chain of Region* protocol (arXiv 2601.00388).

The model reasons inside ``<think>…</think>``, then names the place region by
region, coarse to fine, and ends with coordinates::

    <think>…clues…</think>
    <answer>Country: Japan
    State: Hokkaidō
    City: Biei
    Coordinates: (43.452, 142.615)</answer>

With ``include_continent=True`` a ``Continent:`` line comes first.

``format_ok`` (this protocol's rule): every level is present (its key with a
non-empty value; State may be ``N/A``) **and** the answer holds exactly one
valid (lat, lon) pair, in any notation the parser reads — the chain itself plus
a lenient reading of the paper's format condition. The paper's letter ("exactly
one valid (lat, lon) pair, comma-separated within parentheses") is Geo-R's format
*reward* (:class:`georeason.rewards.GeoRReward`, ``strict_format=True``), which
reads ``Prediction.coordinate_forms``. Pairs inside ``<think>`` are never read:
the answer region alone holds the answer. Other problems (levels out of order or
on one line, a missing ``<answer>`` tag, text after ``</answer>``, hedges) are
recorded in ``errors`` without failing the format. A completion the parser
had to cut (see :mod:`georeason.protocols.parsing`) is never ``format_ok``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from georeason.protocols.base import (
    LEVEL_LABELS,
    AnswerProtocol,
    clean_reasoning,
    dedupe_errors,
    default_reasoning,
    format_coordinates,
    read_coordinates,
    read_levels,
    sample_labels,
)
from georeason.protocols.parsing import normalize_text, split_completion
from georeason.types import GeoSample, Prediction

SYSTEM_PROMPT = (
    "You are an expert in image geolocation. You locate a photo from its visual clues: landscape, "
    "vegetation, climate, architecture, roads and road markings, vehicles, signs, scripts and languages. "
    "You narrow the location down region by region, from the largest to the smallest."
)


class GeoRProtocol(AnswerProtocol):
    """Chain of Region: ``<think>`` reasoning, then Country / State / City / Coordinates."""

    reasoning_in_think_tags = True

    def __init__(self, include_continent: bool = False) -> None:
        self.include_continent = include_continent
        self.name = "geor_continent" if include_continent else "geor"
        self.levels: tuple[str, ...] = (("continent",) if include_continent else ()) + (
            "country",
            "admin1",
            "city",
            "coordinates",
        )
        template = "\n".join(
            {
                "continent": "Continent: <continent>",
                "country": "Country: <country>",
                "admin1": "State: <state, province or administrative region>",
                "city": "City: <city>",
                "coordinates": "Coordinates: (<latitude>, <longitude>)",
            }[lvl]
            for lvl in self.levels
        )
        self.system_prompt = SYSTEM_PROMPT
        self.user_prompt = (
            "Where was this photo taken? First reason about the visual clues inside <think> </think>. "
            "Then give your answer inside <answer> </answer> with exactly these lines, in this order:\n"
            f"{template}\n"
            "Coordinates are decimal degrees, negative for south and west. Give one answer per line, "
            "without alternatives."
        )

    def _parse(self, text: str) -> Prediction:
        region = split_completion(text)
        pred = Prediction(raw=text, reasoning=region.reasoning, errors=list(region.errors))
        if not region.answer_tag:
            pred.errors.append("no <answer> tag")
        answer = normalize_text(region.answer)
        present, keys_cut = read_levels(pred, answer)
        coords_cut = read_coordinates(pred, answer)
        missing = [lvl for lvl in self.levels if lvl not in present]
        for lvl in missing:
            pred.errors.append(f"missing level: {LEVEL_LABELS[lvl]}")
        capped = region.capped or keys_cut or coords_cut
        pred.truncated = capped
        pred.format_ok = not missing and pred.n_coordinates == 1 and not capped
        return dedupe_errors(pred)

    def format_answer(self, sample: GeoSample | Mapping[str, Any]) -> str:
        """``<think>reasoning</think>\\n<answer>[Continent: …\\n]Country: …\\nState: …\\nCity: …\\nCoordinates: (lat, lon)</answer>``.

        Missing names are filled by reverse geocoding the sample's coordinates;
        a place without an admin1 gets ``State: N/A``.
        """
        need = tuple(lvl for lvl in self.levels if lvl != "coordinates")
        labels = sample_labels(sample, need=need)
        reasoning = clean_reasoning(labels.reasoning or default_reasoning(labels))
        values = {
            "continent": labels.continent,
            "country": labels.country,
            "admin1": labels.admin1 or "N/A",
            "city": labels.city,
            "coordinates": format_coordinates(labels.lat, labels.lon),
        }
        lines = "\n".join(f"{LEVEL_LABELS[lvl]}: {values[lvl]}" for lvl in self.levels)
        return f"<think>{reasoning}</think>\n<answer>{lines}</answer>"
