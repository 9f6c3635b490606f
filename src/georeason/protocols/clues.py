"""Where a reasoning chain names its clues and its places: character spans for highlighting.

The locate page (``georeason serve``) marks these in the chain so a reader sees what the
model rested its answer on. Two kinds, both read off the text the protocols write
(:func:`georeason.protocols.base.default_reasoning` and the synthetic world's
:func:`georeason.datasets.synthetic.describe`), never guessed from a vocabulary:

- ``clue``: the items of a ``Visible clues: a, b and c.`` list, and a sentence's lead
  phrase before a colon (``red circle sign: Occitanie.``), the form in which both papers'
  chains and ours name a visual clue and what it points to;
- ``place``: where the chain names the answer's own continent, country, admin1 or city
  (whole words, any case), so a chain that argues for one place and answers another shows.

Spans never overlap; on a clash the earlier, then the longer, wins.
"""

from __future__ import annotations

import re
from typing import Any

from georeason.types import CONTINENT_NAMES, Prediction

#: a clue list: "Visible clues: a, b and c." / "Clues: ..." up to the end of the sentence
_CLUE_LIST = re.compile(r"\b(?:visible\s+)?clues?\s*:\s*(?P<items>[^.:\n]+)", re.I)
#: a sentence's lead phrase before a colon, at most six words ("red circle sign: Occitanie.")
_LEAD = re.compile(r"(?:^|(?<=[.!?\n])\s*)(?P<phrase>[^\W\d_][\w'’ -]{0,60}?)\s*:\s*\S", re.M)
_ITEM_SPLIT = re.compile(r"\s*(?:,|;|\band\b)\s*", re.I)
#: lead phrases that are labels of the answer, not clues
_NOT_CLUES = {"visible clues", "clues", "clue", "country", "state", "region", "city", "continent",
              "coordinates", "answer", "province", "admin1"}  # fmt: skip


def _items(text: str, start: int) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for piece in _ITEM_SPLIT.split(text):
        at = text.find(piece, pos)
        pos = at + len(piece)
        stripped = piece.strip()
        if stripped:
            lead = at + piece.index(stripped)
            spans.append((start + lead, start + lead + len(stripped)))
    return spans


def clue_spans(reasoning: str, prediction: Prediction | None = None) -> list[dict[str, Any]]:
    """Highlight spans of ``reasoning``: ``[{"start", "end", "kind", "text"}]``, in order.

    >>> spans = clue_spans("Visible clues: tram, red sign. Together, the clues point to Europe.",
    ...                    Prediction(continent="EU"))
    >>> [(s["text"], s["kind"]) for s in spans]
    [('tram', 'clue'), ('red sign', 'clue'), ('Europe', 'place')]
    >>> [s["text"] for s in clue_spans("dome landmark: Toulouse. south-west road tint.")]
    ['dome landmark']
    """
    if not isinstance(reasoning, str) or not reasoning:
        return []
    found: list[tuple[int, int, str]] = []
    for m in _CLUE_LIST.finditer(reasoning):
        found += [(a, b, "clue") for a, b in _items(m.group("items"), m.start("items"))]
    for m in _LEAD.finditer(reasoning):
        phrase = m.group("phrase").strip()
        if phrase.lower() not in _NOT_CLUES and len(phrase.split()) <= 6:
            start = m.start("phrase") + m.group("phrase").index(phrase)
            found.append((start, start + len(phrase), "clue"))
    if prediction is not None:
        continent = CONTINENT_NAMES.get(prediction.continent or "", prediction.continent)
        for name in (continent, prediction.country, prediction.admin1, prediction.city):
            if isinstance(name, str) and name.strip():
                pattern = re.compile(r"(?<!\w)" + re.escape(name.strip()) + r"(?!\w)", re.I)
                found += [(m.start(), m.end(), "place") for m in pattern.finditer(reasoning)]
    found.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    out: list[dict[str, Any]] = []
    end = 0
    for a, b, kind in found:
        if a >= end and b > a:
            out.append({"start": a, "end": b, "kind": kind, "text": reasoning[a:b]})
            end = b
    return out
