"""Tolerant, linear-time readers shared by every answer protocol.

Everything here works on plain strings and never raises on any ``str`` input.
Three readers:

- :func:`split_completion` finds the answer region (inside the last
  ``<answer>…</answer>``, else after the last ``</think>``) and the reasoning.
- :func:`scan_coordinates` finds every (lat, lon) pair in a text: decimal
  degrees with signs, N/S/E/W hemispheres before or after the number,
  degrees-minutes-seconds (``48°51'24"N``, with ``′ ″`` and ``''`` variants),
  pairs in parentheses or brackets, keyed values (``lat``/``latitude``,
  ``lon``/``lng``/``long``/``longitude``, so JSON objects too), and says per
  pair how it was written (``forms``: Geo-R's format asks for ``(lat, lon)``).
- :func:`scan_keys` finds ``Key: value`` fields (``Country:``, ``State:``,
  ``City:``, ``Coordinates:``…) in any case, through Markdown emphasis and JSON
  quoting.

Why it is linear: the input is capped (:data:`MAX_COMPLETION_CHARS` of the
completion, the last :data:`MAX_ANSWER_CHARS` of the answer region), every
regex quantifier is bounded (``\\d{1,3}``, ``\\s{0,2}``…) and no group is
repeated, so each start position costs a constant amount of work; the
pairing logic walks the token list once.

Modules by role: :mod:`.text` (normalisation, the answer region), :mod:`.coordinates`
(the coordinate grammar), :mod:`.fields` (keyed fields and place names).
"""

from georeason.protocols.parsing.coordinates import (
    COORDINATE_FORMS,
    DENSE_TAIL_CHARS,
    MAX_ANSWER_DIGITS,
    PAREN,
    CoordinateScan,
    parse_coordinates,
    scan_coordinates,
)
from georeason.protocols.parsing.fields import MAX_FIELDS, KeyField, KeyScan, clean_name, scan_keys
from georeason.protocols.parsing.text import (
    MAX_ANSWER_CHARS,
    MAX_COMPLETION_CHARS,
    Region,
    normalize_text,
    split_completion,
)

__all__ = [
    "COORDINATE_FORMS",
    "DENSE_TAIL_CHARS",
    "MAX_ANSWER_CHARS",
    "MAX_ANSWER_DIGITS",
    "MAX_COMPLETION_CHARS",
    "MAX_FIELDS",
    "PAREN",
    "CoordinateScan",
    "KeyField",
    "KeyScan",
    "Region",
    "clean_name",
    "normalize_text",
    "parse_coordinates",
    "scan_coordinates",
    "scan_keys",
    "split_completion",
]
