"""What every answer protocol shares: the interface, completion text, labels.

An :class:`AnswerProtocol` has a prompt (``system_prompt``, ``user_prompt``,
:meth:`~AnswerProtocol.messages`), a parser (:meth:`~AnswerProtocol.parse`, a
completion -> :class:`~georeason.types.Prediction`, total: it never raises) and
a formatter (:meth:`~AnswerProtocol.format_answer`, a labelled sample -> the
gold completion used as SFT target).
"""

from __future__ import annotations

import functools
import math
import re
import reprlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from georeason.protocols.parsing import MAX_COMPLETION_CHARS, clean_name, scan_coordinates, scan_keys
from georeason.types import CONTINENT_NAMES, GeoSample, Prediction


def completion_text(completion: Any) -> str:
    """The text of one completion, as TRL hands it to reward functions.

    Accepts a plain string (standard format) or TRL's conversational format: a
    list of messages ``[{"role": "assistant", "content": str | [{"type":
    "text", "text": ...}, ...]}]`` (a single message dict works too). Text
    parts of every assistant message are joined (parts with ``""``, messages
    with ``"\\n"``); messages without a role count as assistant messages, and
    non-text parts (images) are skipped. ``None`` gives ``""``; bytes are
    decoded as UTF-8.

    Raises ``TypeError`` for anything else (a protocol's ``parse`` turns that
    into an error in the Prediction).

    >>> completion_text([{"role": "assistant", "content": [{"type": "text", "text": "(1, 2)"}]}])
    '(1, 2)'
    """
    if isinstance(completion, str):
        return str.__str__(completion)  # a str subclass's own methods never reach the parser
    if completion is None:
        return ""
    if isinstance(completion, bytes | bytearray):
        return bytes(completion).decode("utf-8", errors="replace")
    if isinstance(completion, Mapping):
        completion = [completion]
    if isinstance(completion, list | tuple):
        texts: list[str] = []
        for msg in completion:
            if isinstance(msg, str):
                texts.append(msg)
                continue
            if not isinstance(msg, Mapping):
                raise TypeError(f"completion message must be a dict or str, got {type(msg).__name__}")
            if msg.get("role", "assistant") != "assistant":
                continue
            content = msg.get("content")
            if content is None:
                continue
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list | tuple):
                parts = []
                for part in content:
                    if isinstance(part, str):
                        parts.append(part)
                    elif isinstance(part, Mapping) and part.get("type", "text") == "text":
                        t = part.get("text")
                        if isinstance(t, str):
                            parts.append(t)
                texts.append("".join(parts))
            else:
                raise TypeError(
                    f"message content must be a str or a list of parts, got {type(content).__name__}"
                )
        return "\n".join(texts)
    raise TypeError(
        f"completion must be a str or a list of chat messages (TRL conversational format), "
        f"got {type(completion).__name__}"
    )


# ---------------------------------------------------------------------------
# Names -> codes
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def country_code_of(name: str) -> str | None:
    """ISO 3166-1 alpha-2 code of a country name or code, via
    :func:`georeason.geo.normalize_country` (cached: completions repeat names)."""
    from georeason.geo import normalize_country  # lazy: keeps ``import georeason.protocols`` light

    try:
        return normalize_country(name)
    except (ValueError, TypeError):
        return None


_CONTINENT_ALIASES: dict[str, str] = {
    **{code.lower(): code for code in CONTINENT_NAMES},
    **{name.lower(): code for code, name in CONTINENT_NAMES.items()},
    "n. america": "NA",
    "s. america": "SA",
    "north and central america": "NA",
    "central america": "NA",
    "latin america": "SA",
    "australia": "OC",
    "australia/oceania": "OC",
    "australasia": "OC",
    "antarctic": "AN",
    "eurasia": "EU",
    "asia-pacific": "AS",
    "middle east": "AS",
    "非洲": "AF",
    "南极洲": "AN",
    "亚洲": "AS",
    "欧洲": "EU",
    "北美洲": "NA",
    "大洋洲": "OC",
    "南美洲": "SA",
}


def continent_code_of(name: str) -> str | None:
    """GeoNames continent code (AF AN AS EU NA OC SA) of a continent name or code."""
    return _CONTINENT_ALIASES.get(" ".join(name.lower().split()))


# ---------------------------------------------------------------------------
# Gold answers
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class Labels:
    """The labels a gold answer is written from (names, not codes)."""

    lat: float
    lon: float
    continent: str | None  # name, e.g. "Europe"
    country: str | None
    admin1: str | None
    city: str | None
    reasoning: str | None
    entities: list[str]


def _get(sample: GeoSample | Mapping[str, Any], key: str) -> Any:
    if isinstance(sample, Mapping):
        return sample.get(key)
    return getattr(sample, key, None)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):  # pandas missing values
        return None
    s = str(value).strip()
    return s or None


def sample_labels(sample: GeoSample | Mapping[str, Any], *, need: tuple[str, ...] = ()) -> Labels:
    """Read the labels of a :class:`GeoSample` or a dataset row (dict).

    ``need`` lists levels (``"continent"``, ``"country"``, ``"admin1"``,
    ``"city"``) the caller must write; missing ones are filled by reverse
    geocoding the sample's coordinates (:func:`georeason.geo.reverse_geocode`),
    country names from ``country_code`` first.

    Raises ``ValueError`` when lat/lon are missing, not finite or out of range,
    or when a needed level cannot be found.
    """
    if not isinstance(sample, GeoSample | Mapping):
        raise TypeError(f"sample must be a GeoSample or a dict, got {type(sample).__name__}")
    try:
        lat = float(_get(sample, "lat"))
        lon = float(_get(sample, "lon"))
    except (TypeError, ValueError) as e:
        raise ValueError(f"sample {_get(sample, 'id')!r} needs numeric 'lat' and 'lon'") from e
    if not (math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 180):
        raise ValueError(f"sample {_get(sample, 'id')!r} has invalid coordinates ({lat}, {lon})")
    continent = _text(_get(sample, "continent"))
    if continent is not None and continent.upper() in CONTINENT_NAMES:
        continent = CONTINENT_NAMES[continent.upper()]
    country = _text(_get(sample, "country"))
    code = _text(_get(sample, "country_code"))
    admin1 = _text(_get(sample, "admin1"))
    city = _text(_get(sample, "city"))
    entities_raw = _get(sample, "entities")
    entities = [str(e) for e in entities_raw] if isinstance(entities_raw, list | tuple) else []
    labels = Labels(lat, lon, continent, country, admin1, city, _text(_get(sample, "reasoning")), entities)

    if "country" in need and labels.country is None and code is not None:
        from georeason.geo import country_name

        labels.country = country_name(code) or None
    if "continent" in need and labels.continent is None and code is not None:
        from georeason.geo import continent_of

        cc = continent_of(code)
        labels.continent = CONTINENT_NAMES.get(cc, cc) if cc else None
    missing = [lvl for lvl in need if getattr(labels, lvl) is None]
    if missing:
        from georeason.geo import reverse_geocode

        place = reverse_geocode(lat, lon)
        filled = {
            "continent": place.continent_name,
            "country": place.country,
            "admin1": place.admin1,
            "city": place.city,
        }
        for lvl in missing:
            setattr(labels, lvl, filled[lvl] or None)
    still = [lvl for lvl in need if getattr(labels, lvl) is None and lvl != "admin1"]
    if still:
        raise ValueError(f"sample {_get(sample, 'id')!r}: cannot find {', '.join(still)} for the gold answer")
    return labels


def default_reasoning(labels: Labels) -> str:
    """A short reasoning written from the labels alone, deterministic.

    Used as the SFT target's reasoning when the sample has none. It names the
    sample's annotated visual entities (if any) and walks the hierarchy from
    coarse to fine, which is the shape of both papers' reasoning; it invents
    no clue the labels do not hold.
    """
    sentences: list[str] = []
    if labels.entities:
        sentences.append("Visible clues: " + ", ".join(labels.entities) + ".")
    else:
        sentences.append(
            "I look at the landscape, vegetation, architecture, roads and any text in the image."
        )
    chain = []
    if labels.continent:
        chain.append(f"the clues point to {labels.continent}")
    if labels.country:
        chain.append(
            f"more precisely to {labels.country}" if chain else f"the clues point to {labels.country}"
        )
    if labels.admin1:
        chain.append(f"in the region of {labels.admin1}")
    if chain:
        sentences.append(("Together, " + ", ".join(chain)).rstrip(",") + ".")
    if labels.city:
        sentences.append(f"The most likely place is {labels.city} or its surroundings.")
    return " ".join(sentences)


def format_coordinates(lat: float, lon: float) -> str:
    """``(lat, lon)`` with 4 decimals (about 11 m), the form every protocol writes."""
    return f"({lat:.4f}, {lon:.4f})"


# ---------------------------------------------------------------------------
# The protocol interface
# ---------------------------------------------------------------------------


class AnswerProtocol(ABC):
    """A prompt, a total parser and a gold-answer formatter for one answer format.

    Subclasses set ``name``, ``system_prompt`` and ``user_prompt`` and implement
    :meth:`_parse` (on text; may raise, :meth:`parse` catches) and
    :meth:`format_answer`.

    ``reasoning_in_think_tags``: the protocol asks for the reasoning inside
    ``<think>…</think>`` (geor, globe). A completion of such a protocol without
    any think tag then has *no* reasoning for the rewards that score it (GLOBE's
    visual reward), whatever text precedes its answer; a protocol whose
    reasoning is free text before the answer (cot) leaves it False.
    """

    name: str
    system_prompt: str
    user_prompt: str
    reasoning_in_think_tags: bool = False

    def messages(self, image_placeholder: bool = True) -> list[dict[str, Any]]:
        """The prompt as TRL/transformers conversational messages.

        ``[{"role": "system", "content": [{"type": "text", "text": ...}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": ...}]}]``;
        with ``image_placeholder=False`` the user content holds the text only.
        """
        user: list[dict[str, Any]] = [{"type": "image"}] if image_placeholder else []
        user.append({"type": "text", "text": self.user_prompt})
        return [
            {"role": "system", "content": [{"type": "text", "text": self.system_prompt}]},
            {"role": "user", "content": user},
        ]

    def parse(self, completion: Any) -> Prediction:
        """Read a completion (str or TRL conversational list) into a Prediction.

        Never raises: any failure, including an internal one, gives a
        Prediction with ``format_ok=False`` and the reason in ``errors``.
        """
        try:
            text = completion_text(completion)
        except Exception as e:
            return Prediction(raw=_describe(completion), format_ok=False, errors=[f"bad completion: {e}"])
        try:
            pred = self._parse(text)
        except Exception as e:  # the parser is meant to be total; this keeps a run alive if it is not
            pred = Prediction(raw=text, format_ok=False, errors=[f"parser error: {type(e).__name__}: {e}"])
        pred.think_tag = _THINK_TAG_RE.search(text, 0, MAX_COMPLETION_CHARS) is not None
        return pred

    @abstractmethod
    def _parse(self, text: str) -> Prediction: ...

    @abstractmethod
    def format_answer(self, sample: GeoSample | Mapping[str, Any]) -> str:
        """The gold completion for a labelled sample (the SFT target)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _describe(obj: Any, limit: int = 200) -> str:
    """A short repr of anything, that never raises: nesting is cut at a few levels
    (a 5,000-deep list) and an object whose ``repr`` raises is named by its type."""
    try:
        return reprlib.repr(obj)[:limit]
    except Exception:  # reprlib already guards __repr__; this is for the rest
        return "<unprintable completion>"


# "<think>" or "</think>" in any case; a literal first character lets SRE skip ahead fast.
_THINK_TAG_RE = re.compile(r"</?[Tt][Hh][Ii][Nn][Kk]>")


def set_country(pred: Prediction, name: str | None) -> None:
    """Set ``pred.country`` and, when the name is recognised, ``pred.country_code``."""
    pred.country = name
    if name:
        pred.country_code = country_code_of(name)
        if pred.country_code is None:
            pred.errors.append(f"unrecognised country: {name!r}")


def set_continent(pred: Prediction, name: str | None) -> None:
    """Set ``pred.continent`` to the GeoNames code when recognised, else to the text (noted)."""
    if not name:
        return
    code = continent_code_of(name)
    if code is None:
        pred.errors.append(f"unrecognised continent: {name!r}")
        pred.continent = name
    else:
        pred.continent = code


def read_coordinates(pred: Prediction, answer: str) -> bool:
    """Scan ``answer`` for (lat, lon) pairs and fill ``lat``, ``lon``, ``n_coordinates``.

    When the answer holds several valid pairs, ``lat``/``lon`` are the **last**
    one: a model that revises itself ("(48.85, 2.35)… no, rather (45.76,
    4.83)") or lists candidates before concluding states its final answer
    last, and Geo-R's format puts the coordinates last in the chain. The
    count stays in ``n_coordinates`` (Geo-R's format reward needs exactly one),
    how each pair was written in ``coordinate_forms``, and the error ``"N
    coordinate pairs"`` says the answer was not one pair.

    Returns whether the scan had to skip text (too many digits).
    """
    scan = scan_coordinates(answer, normalized=True)
    pred.errors.extend(scan.errors)
    pred.n_coordinates = len(scan.pairs)
    pred.coordinate_forms = scan.forms
    if scan.pairs:
        pred.lat, pred.lon = scan.pairs[-1]
        if len(scan.pairs) > 1:
            pred.errors.append(f"{len(scan.pairs)} coordinate pairs; used the last")
    else:
        pred.errors.append("no coordinates")
    return scan.truncated


LEVEL_LABELS: dict[str, str] = {
    "continent": "Continent",
    "country": "Country",
    "admin1": "State",
    "city": "City",
    "coordinates": "Coordinates",
}


def read_levels(pred: Prediction, answer: str) -> tuple[dict[str, int], bool]:
    """Fill the name levels of ``pred`` from the ``Key: value`` fields of ``answer``.

    Returns, per level present (``continent``, ``country``, ``admin1``,
    ``city``, ``coordinates``), the index of its first field — a level is
    present when its key is there with a non-empty value (``"N/A"`` counts as
    present and gives ``None``); ``coordinates`` is present with a
    ``Coordinates:`` key (any value) or with both ``Latitude:`` and
    ``Longitude:``. A level written twice keeps the last value (noted). The
    second item says whether the scan had to skip text (too many fields).
    """
    scan = scan_keys(answer, normalized=True)
    fields = scan.fields
    if scan.truncated:
        pred.errors.append("answer holds too many fields; read only its end")
    by_level: dict[str, list[int]] = {}
    for i, f in enumerate(fields):
        by_level.setdefault(f.level, []).append(i)
    present: dict[str, int] = {}
    for level in ("continent", "country", "admin1", "city"):
        idx = [i for i in by_level.get(level, []) if fields[i].value]
        if not idx:
            if level in by_level:
                pred.errors.append(f"empty level: {LEVEL_LABELS[level]}")
            continue
        present[level] = idx[0]
        if len(idx) > 1:
            pred.errors.append(f"{len(idx)} {LEVEL_LABELS[level]} lines; used the last")
        name = clean_name(fields[idx[-1]].value, LEVEL_LABELS[level], pred.errors)
        if level == "country":
            set_country(pred, name)
        elif level == "continent":
            set_continent(pred, name)
        elif level == "admin1":
            pred.admin1 = name
        else:
            pred.city = name
    if "coordinates" in by_level:
        present["coordinates"] = by_level["coordinates"][0]
    elif "latitude" in by_level and "longitude" in by_level:
        present["coordinates"] = min(by_level["latitude"][0], by_level["longitude"][0])
    # Each level on its own line, coarse to fine (the Chain of Region order).
    lines = [fields[i].line for i in present.values()]
    if len(set(lines)) < len(lines):
        pred.errors.append("several levels on one line")
    order = [lvl for lvl in LEVEL_LABELS if lvl in present]
    if [present[lvl] for lvl in order] != sorted(present[lvl] for lvl in order):
        pred.errors.append(
            "levels out of order (expected " + " > ".join(LEVEL_LABELS[x] for x in order) + ")"
        )
    return present, scan.truncated


_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def clean_reasoning(text: str) -> str:
    """Reasoning text safe to put inside ``<think>…</think>`` (tags removed)."""
    for tag in _TAGS:
        text = text.replace(tag, "")
    return text.strip()


def dedupe_errors(pred: Prediction) -> Prediction:
    """Drop repeated error messages, keeping the first occurrence's order."""
    pred.errors = list(dict.fromkeys(pred.errors))
    return pred
