"""Answer protocols: a prompt, a total parser and a gold-answer formatter each.

>>> from georeason.protocols import get_protocol
>>> p = get_protocol("geor")
>>> pred = p.parse("<think>Kanji signs, snow.</think><answer>Country: Japan\\nState: Hokkaido\\n"
...                "City: Biei\\nCoordinates: (43.452, 142.615)</answer>")
>>> pred.city, pred.lat, pred.lon, pred.format_ok
('Biei', 43.452, 142.615, True)

Registry (a plain dict): ``geor`` (Chain of Region, Geo-R), ``geor_continent``
(the same with a Continent line first), ``globe`` (country and city, GLOBE),
``plain`` (coordinates only), ``cot`` (free reasoning, then coordinates).

What every parser guarantees (:meth:`AnswerProtocol.parse`):

- it never raises and works in linear time: it reads the first 20,000
  characters of a completion and the last 4,000 of its answer region;
- the answer is inside the last ``<answer>…</answer>``, else after the last
  ``</think>`` (each protocol's module says what it falls back to);
- ``n_coordinates`` counts the valid (lat, lon) pairs of the answer, and
  ``lat``/``lon`` are the **last** one (a model that revises or lists
  candidates states its final answer last); out-of-range values are rejected;
- ``country_code`` is set when the country name is recognised
  (:func:`georeason.geo.normalize_country`); ``continent`` is a GeoNames code
  when recognised, else the text as written;
- every problem found is one message in ``errors``; ``format_ok`` is the
  protocol's own rule — geor: every level present and exactly one valid pair;
  globe: ``<think>…</think><answer>…</answer>``, nothing after, country and city
  lines; plain/cot: exactly one valid pair — and is False whenever the parser
  had to leave text unread (a cap was hit; ``n_coordinates`` then counts the
  pairs of the part it read).
"""

from georeason.protocols.base import AnswerProtocol, completion_text
from georeason.protocols.cot import CotProtocol
from georeason.protocols.geor import GeoRProtocol
from georeason.protocols.globe import GlobeProtocol
from georeason.protocols.parsing import parse_coordinates
from georeason.protocols.plain import PlainProtocol

PROTOCOLS: dict[str, AnswerProtocol] = {
    "geor": GeoRProtocol(),
    "geor_continent": GeoRProtocol(include_continent=True),
    "globe": GlobeProtocol(),
    "plain": PlainProtocol(),
    "cot": CotProtocol(),
}


def get_protocol(name: str) -> AnswerProtocol:
    """The protocol registered under ``name`` (case-insensitive).

    Raises ``ValueError`` listing the known names otherwise.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    try:
        return PROTOCOLS[key]
    except (KeyError, TypeError):
        raise ValueError(f"unknown protocol {name!r}; choose one of: {', '.join(PROTOCOLS)}") from None


__all__ = [
    "PROTOCOLS",
    "AnswerProtocol",
    "CotProtocol",
    "GeoRProtocol",
    "GlobeProtocol",
    "PlainProtocol",
    "completion_text",
    "get_protocol",
    "parse_coordinates",
]
