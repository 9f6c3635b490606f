"""Tolerant, linear-time readers shared by every answer protocol.

Everything here works on plain strings and never raises on any ``str`` input.
Three readers:

- :func:`split_completion` finds the answer region (inside the last
  ``<answer>…</answer>``, else after the last ``</think>``) and the reasoning.
- :func:`scan_coordinates` finds every (lat, lon) pair in a text: decimal
  degrees with signs, N/S/E/W hemispheres before or after the number,
  degrees-minutes-seconds (``48°51'24"N``, with ``′ ″`` and ``''`` variants),
  pairs in parentheses or brackets, keyed values (``lat``/``latitude``,
  ``lon``/``lng``/``long``/``longitude``, so JSON objects too).
- :func:`scan_keys` finds ``Key: value`` fields (``Country:``, ``State:``,
  ``City:``, ``Coordinates:``…) in any case, through Markdown emphasis and JSON
  quoting.

Why it is linear: the input is capped (:data:`MAX_COMPLETION_CHARS` of the
completion, the last :data:`MAX_ANSWER_CHARS` of the answer region), every
regex quantifier is bounded (``\\d{1,3}``, ``\\s{0,2}``…) and no group is
repeated, so each start position costs a constant amount of work; the
pairing logic walks the token list once.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

MAX_COMPLETION_CHARS = 20_000
"""The parser reads at most this many characters from the start of a completion."""

MAX_ANSWER_CHARS = 4_000
"""…and at most this many from the end of the answer region."""

# ---------------------------------------------------------------------------
# Text normalisation
# ---------------------------------------------------------------------------

# Applied before NFKC, because NFKC maps the masculine ordinal "º" (often typed
# as a degree sign) to "o" and the ring above "˚" to a combining character.
_PRE_NFKC = str.maketrans({"º": "°", "˚": "°", "\u2218": "°"})

# Applied after NFKC (which already maps unicode spaces, full-width digits and
# full-width punctuation to ASCII). NFKC turns the double prime "″" into two
# primes, so primes become apostrophes and the scanner reads "''" as seconds.
_POST_NFKC = str.maketrans(
    {
        "\u2032": "'",  # prime
        "\u2019": "'",  # right single quotation mark
        "\u2018": "'",
        "\u02b9": "'",  # modifier letter prime
        "\u00b4": "'",  # acute accent used as a prime
        "\u201d": '"',  # right double quotation mark
        "\u201c": '"',
        "\u02ba": '"',
        "\u2212": "-",  # minus sign
        "\u2010": "-",  # hyphen
        "\u2011": "-",  # non-breaking hyphen
        "\u2012": "-",  # figure dash
        "\u2013": " ",  # en dash: a separator ("48.85 – 2.35"), not a minus
        "\u2014": " ",  # em dash
        "\u200b": None,  # zero-width space / joiners / BOM
        "\u200c": None,
        "\u200d": None,
        "\u2060": None,
        "\ufeff": None,
        "\t": " ",
        "\r": "\n",
    }
)


def normalize_text(text: str) -> str:
    """Map look-alike characters to ASCII so the scanners stay simple.

    Full-width digits and colons, unicode spaces, unicode minus signs, primes
    and curly quotes become their ASCII counterparts; ``º`` and ``˚`` become
    ``°``. Letters (accents, CJK) are kept as they are, up to NFKC.
    """
    if text.isascii():
        return text.replace("\t", " ").replace("\r", "\n")
    return unicodedata.normalize("NFKC", text.translate(_PRE_NFKC)).translate(_POST_NFKC)


# ---------------------------------------------------------------------------
# Answer region
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class Region:
    """Where the answer and the reasoning are in a completion.

    ``answer`` is at most :data:`MAX_ANSWER_CHARS` long (its end is kept);
    ``tags`` records which tags were seen; ``errors`` the structural problems.
    """

    text: str
    reasoning: str
    answer: str
    answer_tag: bool  # the answer came from inside <answer>…</answer>
    think_close: bool  # a </think> was seen
    truncated: bool  # the completion was longer than MAX_COMPLETION_CHARS
    errors: list[str] = field(default_factory=list)


def _lowered(text: str) -> str | None:
    """``text.lower()`` when it keeps character offsets (it does unless the text
    holds one of the few characters whose lower case is longer, like "İ")."""
    low = text.lower()
    return low if len(low) == len(text) else None


_TAG_RE = re.compile(r"</?(?:think|answer)>", re.IGNORECASE)


def _tag_positions(text: str) -> dict[str, list[int]]:
    """Offsets of the four tags, case-insensitive, preserving offsets."""
    found: dict[str, list[int]] = {"<think>": [], "</think>": [], "<answer>": [], "</answer>": []}
    for m in _TAG_RE.finditer(text):
        found[m.group(0).lower()].append(m.start())
    return found


def split_completion(text: str) -> Region:
    """Split a completion into reasoning and answer.

    Rules, in order:

    1. Only the first :data:`MAX_COMPLETION_CHARS` characters are read.
    2. If there is an ``<answer>`` after the last ``</think>`` (or no
       ``</think>``), the answer is inside the **last** ``<answer>``, up to the
       next ``</answer>``; without a closing tag it runs to the end (noted).
       Anything but whitespace after ``</answer>`` is noted.
    3. Else, if there is a ``</think>``, the answer is everything after the
       **last** one (a stray ``</answer>`` there ends it, noted).
    4. Else the whole text is the answer (the protocol decides whether that is
       an error: it is for geor and globe, not for plain).

    The reasoning is the text inside ``<think>…</think>`` when present (from the
    first ``<think>`` to the last ``</think>``), else the text before the answer.
    """
    errors: list[str] = []
    truncated = len(text) > MAX_COMPLETION_CHARS
    if truncated:
        errors.append(f"completion has {len(text)} characters; read the first {MAX_COMPLETION_CHARS}")
        text = text[:MAX_COMPLETION_CHARS]

    low = _lowered(text)
    if low is not None:
        # Fast path: C-level searches on the lower-cased copy.
        n_think_open = low.count("<think>")
        think_open = low.find("<think>")
        think_close = low.rfind("</think>")
        n_think_close = low.count("</think>")
        ans_open = low.rfind("<answer>")
        n_ans_open = low.count("<answer>")

        def find_close(start: int) -> int:
            return low.find("</answer>", start)

        last_close_any = low.rfind("</answer>")
    else:  # pragma: no cover - only for texts with length-changing lower-case characters
        pos = _tag_positions(text)
        n_think_open = len(pos["<think>"])
        think_open = pos["<think>"][0] if pos["<think>"] else -1
        think_close = pos["</think>"][-1] if pos["</think>"] else -1
        n_think_close = len(pos["</think>"])
        ans_open = pos["<answer>"][-1] if pos["<answer>"] else -1
        n_ans_open = len(pos["<answer>"])
        closes = pos["</answer>"]

        def find_close(start: int) -> int:
            return next((c for c in closes if c >= start), -1)

        last_close_any = closes[-1] if closes else -1

    if n_think_open > 1:
        errors.append(f"{n_think_open} <think> tags")
    if n_think_close > 1:
        errors.append(f"{n_think_close} </think> tags")
    if n_ans_open > 1:
        errors.append(f"{n_ans_open} <answer> tags; read the last")
    if think_close >= 0 and n_think_open == 0:
        errors.append("</think> without <think>")

    answer_tag = False
    if ans_open >= 0 and ans_open > think_close:
        answer_tag = True
        start = ans_open + len("<answer>")
        close = find_close(start)
        if close < 0:
            errors.append("unclosed <answer>: read to the end")
            answer = text[start:]
        else:
            answer = text[start:close]
            if text[close + len("</answer>") :].strip():
                errors.append("text after </answer>")
        reasoning_end = ans_open
    elif think_close >= 0:
        if ans_open >= 0:
            errors.append("<answer> inside <think>; read the text after </think>")
        start = think_close + len("</think>")
        answer = text[start:]
        if last_close_any >= start:
            errors.append("</answer> without <answer>")
            rest = answer[last_close_any - start + len("</answer>") :]
            answer = answer[: last_close_any - start]
            if rest.strip():
                errors.append("text after </answer>")
        reasoning_end = think_close
    else:
        answer = text
        reasoning_end = 0
        if last_close_any >= 0:
            errors.append("</answer> without <answer>")

    if think_close >= 0 and 0 <= think_open < think_close:
        reasoning = text[think_open + len("<think>") : think_close]
    elif think_close >= 0:
        reasoning = text[:think_close]
    else:
        reasoning = text[:reasoning_end]
    if think_open >= 0 and think_close < 0:
        errors.append("unclosed <think>")

    if len(answer) > MAX_ANSWER_CHARS:
        errors.append(f"answer has {len(answer)} characters; read the last {MAX_ANSWER_CHARS}")
        answer = answer[-MAX_ANSWER_CHARS:]
    return Region(
        text=text,
        reasoning=reasoning.strip(),
        answer=answer,
        answer_tag=answer_tag,
        think_close=think_close >= 0,
        truncated=truncated,
        errors=errors,
    )


# ---------------------------------------------------------------------------
# Coordinates
# ---------------------------------------------------------------------------

# One token per match; every quantifier bounded, no repeated group.
#   group 1 = a number (2 sign, 3 degrees, 4 minutes, 5 seconds)
#   group 6 = a hemisphere (N S E W, north…)
#   group 7 = a key (lat, latitude, lon, lng, long, longitude)
# A number may follow the letters N/S/E/W directly ("N48.85") but no other
# letter ("M25", "A4"); it may not be part of a longer number ("2019", "1.2.3").
_TOKEN_RE = re.compile(
    r"((?<![A-DF-MO-RT-VX-Za-z0-9.])([-+]?)(\d{1,3}(?:\.\d{1,15})?)(?!\.?\d)"
    r"(?:\s{0,2}(?:°|(?i:deg(?:rees?)?)(?![A-Za-z]))"
    r"(?:\s{0,2}(\d{1,2}(?:\.\d{1,12})?)(?!\.?\d)\s{0,2}(?:'(?!')|(?i:min)(?![A-Za-z]))"
    r"(?:\s{0,2}(\d{1,2}(?:\.\d{1,12})?)(?!\.?\d)\s{0,2}(?:\"|''|(?i:sec)(?![A-Za-z])))?)?)?)"
    r"|((?<![A-Za-z])(?:[NSEW]|(?i:north|south|east|west))(?![A-Za-z]))"
    r"|((?<![A-Za-z])(?i:latitude|lat|longitude|long|lon|lng)(?![A-Za-z]))"
)

# Characters that may sit between the parts of one coordinate pair.
_GAP_CHARS = " \n,;:/|()[]{}\"'*_`=&<>~-"
_GAP_WORDS = frozenset({"", "and", "&"})


@dataclass(slots=True)
class CoordinateScan:
    """Result of :func:`scan_coordinates`."""

    pairs: list[tuple[float, float]]  # valid pairs, in text order
    errors: list[str]  # rejected values and pairs, one message each


@dataclass(slots=True)
class _Value:
    mag: float | None  # None when the value is malformed (minutes >= 60…)
    negative: bool
    hemi: str | None = None
    key: str | None = None  # "lat" | "lon"
    text: str = ""


def _num_value(m: re.Match[str]) -> _Value:
    sign, deg, mins, secs = m.group(2), m.group(3), m.group(4), m.group(5)
    mag: float | None = float(deg)
    if mins is not None:
        mv = float(mins)
        sv = float(secs) if secs is not None else 0.0
        # Minutes and seconds only make sense below 60, and only under whole degrees.
        mag = None if (mv >= 60 or sv >= 60 or "." in deg) else float(deg) + mv / 60 + sv / 3600
    return _Value(mag=mag, negative=sign == "-", text=m.group(1).strip())


def _resolve_chunk(
    items: list[tuple[str, object]], pairs: list[tuple[float, float]], errors: list[str]
) -> None:
    """Turn one uninterrupted run of numbers, hemispheres and keys into pairs."""
    first_num = next((i for i, (kind, _) in enumerate(items) if kind == "num"), -1)
    if first_num < 0:
        return
    # Hemisphere letters attach forward ("N 48.85") when the run starts with one,
    # else backward ("48.85 N"): "48.85 N 2.35 E" and "N 48.85 E 2.35" both read right.
    prefix_mode = any(kind == "hemi" for kind, _ in items[:first_num])
    values: list[_Value] = []
    pending_key: str | None = None
    pending_hemi: str | None = None
    prev_kind = ""
    for kind, payload in items:
        if kind == "num":
            assert isinstance(payload, _Value)
            payload.key = pending_key
            payload.hemi = pending_hemi if prefix_mode else None
            pending_key = pending_hemi = None
            values.append(payload)
        elif kind == "hemi":
            assert isinstance(payload, str)
            if prefix_mode:
                pending_hemi = payload
            elif prev_kind == "num" and values[-1].hemi is None:
                values[-1].hemi = payload
        else:  # key
            assert isinstance(payload, str)
            # "lat/lon: 48.85, 2.35" is a header, not two keyed values.
            pending_key = payload if prev_kind != "key" else None
            pending_hemi = None
        prev_kind = kind

    def role(v: _Value) -> str | None:
        h = "lat" if v.hemi in ("N", "S") else "lon" if v.hemi in ("E", "W") else None
        if h and v.key and h != v.key:
            errors.append(f"hemisphere {v.hemi} contradicts key {v.key!r}: {v.text}")
            v.mag = None
        return h or v.key

    def signed(v: _Value) -> float | None:
        if v.mag is None:
            return None
        if v.hemi is None:
            return -v.mag if v.negative else v.mag
        if v.negative and v.hemi in ("N", "E"):
            errors.append(f"minus sign contradicts hemisphere {v.hemi}: {v.text}")
            return None
        return -v.mag if v.hemi in ("S", "W") else v.mag

    roles = [role(v) for v in values]
    i = 0
    n = len(values)
    while i < n:
        if i + 1 >= n:
            if roles[i] is not None:
                errors.append(
                    f"unpaired {'latitude' if roles[i] == 'lat' else 'longitude'}: {values[i].text}"
                )
            break
        ra, rb = roles[i], roles[i + 1]
        if ra is not None and ra == rb:
            errors.append(f"two {'latitudes' if ra == 'lat' else 'longitudes'} in a row: {values[i].text}")
            i += 1
            continue
        a, b = values[i], values[i + 1]
        lat_v, lon_v = (b, a) if (ra == "lon" or rb == "lat") else (a, b)
        lat, lon = signed(lat_v), signed(lon_v)
        i += 2
        if lat is None or lon is None:
            errors.append(f"malformed coordinates: {a.text}, {b.text}")
            continue
        if abs(lat) > 90 or abs(lon) > 180:
            errors.append(f"coordinates out of range: ({lat:g}, {lon:g})")
            continue
        pairs.append((lat, lon))


def scan_coordinates(text: str, *, normalized: bool = False) -> CoordinateScan:
    """Every (lat, lon) pair in ``text``, in order, and the rejected ones as errors.

    A pair is two numbers in one uninterrupted run of numbers, hemispheres,
    keys and separators (spaces, newlines, ``, ; : / | ( ) [ ] { } " ' * _ =``,
    the word "and"); any other word ends the run. Within a run, hemispheres
    and keys give the role (N/S/lat -> latitude, E/W/lon -> longitude); without
    them the order is (lat, lon). A value whose magnitude is out of range
    (|lat| > 90 or |lon| > 180) or malformed (minutes >= 60, a minus sign with
    N/E) rejects its pair with an error. GeoJSON's [lon, lat] order cannot be
    told from [lat, lon] and is read as [lat, lon].

    Reads at most the last :data:`MAX_ANSWER_CHARS` characters.

    >>> scan_coordinates('48°51\\'24"N 2°21\\'03"E').pairs
    [(48.85666666666667, 2.350833333333333)]
    >>> scan_coordinates('{"lon": 151.2, "lat": -33.86}').pairs
    [(-33.86, 151.2)]
    """
    errors: list[str] = []
    if len(text) > MAX_ANSWER_CHARS:
        text = text[-MAX_ANSWER_CHARS:]
    if not normalized:
        text = normalize_text(text)
    pairs: list[tuple[float, float]] = []
    # Quick exit: no digit, no coordinates (most reasoning-free failures).
    if not any(c.isdigit() for c in text) if len(text) < 64 else _DIGIT_RE.search(text) is None:
        return CoordinateScan(pairs, errors)
    items: list[tuple[str, object]] = []
    last_end = 0
    for m in _TOKEN_RE.finditer(text):
        gap = text[last_end : m.start()]
        if items and gap and gap.strip(_GAP_CHARS).lower() not in _GAP_WORDS:
            _resolve_chunk(items, pairs, errors)
            items = []
        last_end = m.end()
        idx = m.lastindex
        if idx == 1:
            items.append(("num", _num_value(m)))
        elif idx == 6:
            h = m.group(6)[0].upper()
            items.append(("hemi", h))
        else:
            k = m.group(7).lower()
            items.append(("key", "lat" if k.startswith("lat") else "lon"))
    if items:
        _resolve_chunk(items, pairs, errors)
    return CoordinateScan(pairs, errors)


_DIGIT_RE = re.compile(r"\d")


def parse_coordinates(text: str) -> list[tuple[float, float]]:
    """All valid (lat, lon) pairs in ``text``, in order (see :func:`scan_coordinates`).

    Never raises: anything that is not a string gives ``[]``.

    >>> parse_coordinates("Coordinates: (48.8566, 2.3522)")
    [(48.8566, 2.3522)]
    >>> parse_coordinates("N48.85 E2.35 or 45.76° N, 4.83° E")
    [(48.85, 2.35), (45.76, 4.83)]
    >>> parse_coordinates("(95.0, 10.0)")  # out of range
    []
    """
    if not isinstance(text, str):
        return []
    try:
        return scan_coordinates(text).pairs
    except Exception:  # pragma: no cover - the scanner is total; this is a last guard
        return []


# ---------------------------------------------------------------------------
# Key: value fields
# ---------------------------------------------------------------------------

_ADMIN = r"(?:state|province|region|prefecture|county|canton|oblast|admin(?:istrative)?\s?(?:1|region|area|division|level\s?1))"
_KEY_RE = re.compile(
    r"(?<![\w/])("
    r"continent"
    r"|country"
    rf"|{_ADMIN}(?:\s?/\s?{_ADMIN}){{0,2}}"
    r"|city|town|municipality"
    r"|coordinates?|coords|gps(?:\s?coordinates)?|lat(?:itude)?\s?[/,&]\s?lon(?:gitude)?|lat\s?/\s?lng"
    r"|latitude|longitude"
    r"|国家|省份|省|州|城市|坐标"
    r")[\s\"'*_`]{0,6}(?:[:=]|-\s)",
    re.IGNORECASE,
)


def _level_of(key: str) -> str:
    k = key.lower()
    if k.startswith("continent"):
        return "continent"
    if k.startswith("country") or k == "国家":
        return "country"
    if k in ("city", "town", "municipality", "城市"):
        return "city"
    if k.startswith(("lat", "lon")) and ("/" in k or "," in k or "&" in k):
        return "coordinates"
    if k.startswith("latitude"):
        return "latitude"
    if k.startswith("longitude"):
        return "longitude"
    if k.startswith(("coord", "gps")) or k == "坐标":
        return "coordinates"
    return "admin1"


@dataclass(slots=True)
class KeyField:
    level: str  # continent | country | admin1 | city | coordinates | latitude | longitude
    key: str  # as written
    value: str  # cleaned of Markdown and quotes, not of hedges
    line: int  # 0-based line number in the scanned text
    start: int


_VALUE_STRIP = " \t\n*_`\"'#>|,;{}[]"


def scan_keys(text: str, *, normalized: bool = False) -> list[KeyField]:
    """Every ``Key: value`` field in ``text``, in order.

    A key is a level name (Country, State / Province / Region / Admin1 /
    State/Administrative region, City, Continent, Coordinates, Latitude,
    Longitude, and the Chinese 国家 / 省 / 城市 / 坐标) in any case, not
    preceded by a letter, followed within a few Markdown/quote characters by
    ``:`` or ``=``. The value runs to the end of the line or to the next key on
    the same line (so ``Country: France, City: Paris`` and one-line JSON work).

    >>> [(f.level, f.value) for f in scan_keys("**Country:** France\\ncity = 'Paris'")]
    [('country', 'France'), ('city', 'Paris')]
    """
    if len(text) > MAX_ANSWER_CHARS:
        text = text[-MAX_ANSWER_CHARS:]
    if not normalized:
        text = normalize_text(text)
    matches = list(_KEY_RE.finditer(text))
    fields: list[KeyField] = []
    line = 0
    pos = 0
    for j, m in enumerate(matches):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        end = text.find("\n", m.end())
        if end < 0:
            end = len(text)
        if j + 1 < len(matches) and matches[j + 1].start() < end:
            end = matches[j + 1].start()
        value = text[m.end() : end].strip(_VALUE_STRIP)
        key = " ".join(m.group(1).split())
        fields.append(KeyField(level=_level_of(key), key=key, value=value, line=line, start=m.start()))
    return fields


# ---------------------------------------------------------------------------
# Name values: hedges and placeholders
# ---------------------------------------------------------------------------

_UNKNOWN = frozenset(
    {"", "n/a", "na", "none", "unknown", "unsure", "not sure", "null", "-", "--", "?", "not applicable", "no"}
)
_HEDGE_PREFIX_RE = re.compile(
    r"^(?:(?:most|very|quite)\s)?(?:likely|probably|possibly|perhaps|maybe|presumably|apparently|"
    r"approximately|approx\.?|around|near|somewhere\sin|either|i\s(?:think|guess|believe)|"
    r"it\sis|it's|in|the\sarea\sof)\b[\s,:]{0,3}",
    re.IGNORECASE,
)
_HEDGE_SPLIT_RE = re.compile(
    r"\s(?:or|vs\.?|versus)\s|\s?/\s?|;|,\s(?:(?:but\s)?(?:most\s)?(?:likely|probably|possibly|perhaps|maybe|or))\b|\s\(",
    re.IGNORECASE,
)
_HEDGE_WORD_RE = re.compile(
    r"\b(?:likely|probably|possibly|perhaps|maybe|or|unsure|uncertain)\b", re.IGNORECASE
)


def clean_name(value: str, level: str, errors: list[str]) -> str | None:
    """A single place name from a field value, noting hedges in ``errors``.

    ``"likely France, possibly Belgium"`` -> ``"France"`` with the error
    ``"hedged Country: 'likely France, possibly Belgium'"``; ``"N/A"`` ->
    ``None``. Plain commas are kept (``"Washington, D.C."``); a trailing
    parenthesis is dropped (``"Paris (Île-de-France)"`` -> ``"Paris"``).
    """
    raw = value.strip().rstrip(".").strip()
    if len(raw) > 200:
        errors.append(f"{level} value too long ({len(raw)} characters)")
        return None
    if raw.lower() in _UNKNOWN:
        errors.append(f"no value for {level}")
        return None
    name = _HEDGE_PREFIX_RE.sub("", raw, count=1).strip()
    hedged = name != raw and _HEDGE_WORD_RE.search(raw) is not None
    parts = _HEDGE_SPLIT_RE.split(name, maxsplit=1)
    if len(parts) > 1:
        rest = parts[1]
        # A parenthesis is a hedge only if it says so ("Paris (or Lyon)"), else a gloss.
        if not name[len(parts[0]) :].lstrip().startswith("(") or _HEDGE_WORD_RE.search(rest):
            hedged = True
        name = parts[0].strip()
    name = name.strip(_VALUE_STRIP + ".").strip()
    if hedged:
        errors.append(f"hedged {level}: {raw!r}")
    if not name or name.lower() in _UNKNOWN:
        errors.append(f"no value for {level}")
        return None
    return name
