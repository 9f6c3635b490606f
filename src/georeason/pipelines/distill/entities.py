"""The visual entities a reasoning text names: :mod:`georeason.rewards.entities`.

The extractor lives with the rewards (below the pipelines) because the grounded visual
reward (:class:`georeason.rewards.globe.VisualPrecision`) reads the entities a
completion names with it; distillation uses the same function.
"""

from georeason.rewards.entities import CLUE_LEXICON, extract_entities

__all__ = ["CLUE_LEXICON", "extract_entities"]
