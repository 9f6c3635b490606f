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
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
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
_PRE_NFKC = (("º", "°"), ("˚", "°"), ("\u2218", "°"))

# Applied after NFKC (which already maps unicode spaces, full-width digits and
# full-width punctuation to ASCII). NFKC turns the double prime "″" into two
# primes, so primes become apostrophes and the scanner reads "''" as seconds.
_POST_NFKC = (
    ("\u2032", "'"),  # prime
    ("\u2019", "'"),  # right single quotation mark
    ("\u2018", "'"),
    ("\u02b9", "'"),  # modifier letter prime
    ("\u00b4", "'"),  # acute accent used as a prime
    ("\u201d", '"'),  # right double quotation mark
    ("\u201c", '"'),
    ("\u02ba", '"'),
    ("\u2212", "-"),  # minus sign
    ("\u2010", "-"),  # hyphen
    ("\u2011", "-"),  # non-breaking hyphen
    ("\u2012", "-"),  # figure dash
    ("\u2013", " "),  # en dash: a separator ("48.85 – 2.35"), not a minus
    ("\u2014", " "),  # em dash
    ("\u200b", ""),  # zero-width space, joiners, word joiner, BOM
    ("\u200c", ""),
    ("\u200d", ""),
    ("\u2060", ""),
    ("\ufeff", ""),
)


def normalize_text(text: str) -> str:
    """Map look-alike characters to ASCII so the scanners stay simple.

    Full-width digits and colons, unicode spaces, unicode minus signs, primes
    and curly quotes become their ASCII counterparts; ``º`` and ``˚`` become
    ``°``; tabs become spaces and ``\\r`` newlines. Letters (accents, CJK) are
    kept as they are, up to NFKC.
    """
    # str.replace guarded by `in` (both C loops) is far faster than str.translate
    # with a dict table, which costs a dict lookup per character.
    if "\t" in text:
        text = text.replace("\t", " ")
    if "\r" in text:
        text = text.replace("\r", "\n")
    if text.isascii():
        return text
    for src, dst in _PRE_NFKC:
        if src in text:
            text = text.replace(src, dst)
    if not unicodedata.is_normalized("NFKC", text):  # the quick check is much cheaper than normalising
        text = unicodedata.normalize("NFKC", text)
    for src, dst in _POST_NFKC:
        if src in text:
            text = text.replace(src, dst)
    return text


# ---------------------------------------------------------------------------
# Answer region
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class Region:
    """Where the answer and the reasoning are in a completion.

    ``text`` is the part of the completion that was read (capped, trailing
    end-of-turn tokens removed); ``answer`` is at most :data:`MAX_ANSWER_CHARS`
    long (its end is kept); ``errors`` lists the structural problems.
    """

    text: str
    reasoning: str
    answer: str
    answer_tag: bool  # the answer came from inside <answer>…</answer>
    think_close: bool  # a </think> was seen
    truncated: bool  # the completion was longer than MAX_COMPLETION_CHARS
    errors: list[str] = field(default_factory=list)
    answer_cut: bool = False  # the answer region was longer than MAX_ANSWER_CHARS

    @property
    def capped(self) -> bool:
        """Whether the parser had to leave text unread (then no format is ok)."""
        return self.truncated or self.answer_cut


def _lowered(text: str) -> str:
    """Lower case that keeps character offsets: "İ" (U+0130) is the only
    character whose ``lower()`` is longer (two characters), so map it first."""
    if "\u0130" in text:
        text = text.replace("\u0130", "I")
    return text.lower()


# End-of-turn tokens some backends leave in decoded text; not part of the answer.
_EOS_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>", "</s>", "<|end|>")


def _strip_eos(text: str) -> str:
    end = text.rstrip()
    for _ in range(4):  # bounded: "<|im_end|>" * 2000 must not cost 2000 slices
        tok = next((t for t in _EOS_TOKENS if end.endswith(t)), None)
        if tok is None:
            break
        end = end[: -len(tok)].rstrip()
    return end if len(end) < len(text) else text


def split_completion(text: str) -> Region:
    """Split a completion into reasoning and answer.

    Rules, in order:

    1. Only the first :data:`MAX_COMPLETION_CHARS` characters are read;
       trailing end-of-turn tokens (``<|im_end|>``, ``<|endoftext|>``,
       ``<|eot_id|>``, ``</s>``…) are dropped.
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
    else:
        text = _strip_eos(text)

    # C-level searches on a lower-cased copy (tags in any case).
    low = _lowered(text)
    n_think_open = low.count("<think>")
    think_open = low.find("<think>")
    think_close = low.rfind("</think>")
    n_think_close = low.count("</think>")
    ans_open = low.rfind("<answer>")
    n_ans_open = low.count("<answer>")
    last_close_any = low.rfind("</answer>")

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
        close = low.find("</answer>", start)
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
            if text[last_close_any + len("</answer>") :].strip():
                errors.append("text after </answer>")
            answer = text[:last_close_any]

    if think_close >= 0 and 0 <= think_open < think_close:
        reasoning = text[think_open + len("<think>") : think_close]
    elif think_close >= 0:
        reasoning = text[:think_close]
    else:
        reasoning = text[:reasoning_end]
    if think_open >= 0 and think_close < 0:
        errors.append("unclosed <think>")

    answer_cut = len(answer) > MAX_ANSWER_CHARS
    if answer_cut:
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
        answer_cut=answer_cut,
    )


# ---------------------------------------------------------------------------
# Coordinates
# ---------------------------------------------------------------------------


# One match per coordinate value; every quantifier bounded, no repeated group.
# Digits are ASCII [0-9] (NFKC maps full-width digits to them; other scripts'
# digits, e.g. Arabic-Indic, are not read). Groups: 1 key (lat, latitude, lon, lng, long, longitude, or a "lat/lon" header),
# 2 hemisphere before, 3 sign, 4 degrees, 5 minutes, 6 seconds, 7 hemisphere after.
# A value may not start inside a word or a number ("M25", "2019", "1.2.3" give
# nothing), except right after N S E W; hemisphere letters are upper-case N S E W or the words north…west.
def _ci(word: str) -> str:
    """``"lat"`` -> ``"[Ll][Aa][Tt]"``: explicit classes run faster in SRE than ``(?i:…)``."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


_HEMI = "(?:[NSEW]|" + "|".join(_ci(w) for w in ("north", "south", "east", "west")) + ")"
_LAT, _LON, _LNG = _ci("lat"), _ci("lon"), _ci("lng")
_KEY = "|".join(
    (
        rf"{_LAT}(?:{_ci('itude')})?\s?[/,&]\s?(?:{_LON}(?:{_ci('gitude')})?|{_LNG})",  # a "lat/lon" header
        _ci("latitude"),
        _LAT,
        _ci("longitude"),
        _ci("long"),
        _LON,
        _LNG,
    )
)
_VALUE_RE = re.compile(
    r"(?<![A-DF-MO-RT-VX-Za-z0-9.])"  # N S E W may precede: "N48.85 E2.35" (see _resolve_chunk)
    r"(?=[-+0-9NSEWnsewLl])"  # the possible first characters: halves the cost where nothing starts
    rf"(?:({_KEY})(?![A-Za-z])[\s\"'*_`]{{0,4}}(?:[:=][\s\"'*_`]{{0,4}})?)?"
    rf"(?:({_HEMI})(?![A-Za-z])\s{{0,2}})?"
    r"([-+]?)([0-9]{1,3}(?:\.[0-9]{1,15})?(?:e[-+][0-9]{1,3})?)(?!\.?[0-9])"  # "6.1e-05" as JSON writes it
    rf"(?:\s{{0,2}}(?:°|{_ci('deg')}(?:{_ci('ree')}[sS]?)?(?![A-Za-z]))"
    rf"(?:\s{{0,2}}([0-9]{{1,2}}(?:\.[0-9]{{1,12}})?)(?!\.?[0-9])\s{{0,2}}(?:'(?!')|{_ci('min')}(?![A-Za-z]))"
    rf"(?:\s{{0,2}}([0-9]{{1,2}}(?:\.[0-9]{{1,12}})?)(?!\.?[0-9])\s{{0,2}}(?:\"|''|{_ci('sec')}(?![A-Za-z])))?)?)?"
    rf"(?:\s{{0,2}}({_HEMI})(?![A-Za-z]))?"
)

MAX_ANSWER_DIGITS = 300
"""An answer region with more digits than this is not an answer under any
protocol; the coordinate scan then reads only its last :data:`DENSE_TAIL_CHARS`
characters (and says so), which bounds the work on digit floods."""

DENSE_TAIL_CHARS = 256

# Characters that may sit between the two values of one pair.
_GAP_CHARS = " \n,;:/|()[]{}\"'*_`=&<>~-"
_GAP_WORDS = frozenset({"", "and", "&"})
_HEMI_ROLE = {"N": "lat", "S": "lat", "E": "lon", "W": "lon"}


PAREN = "paren"
"""The form Geo-R's paper asks for: ``(lat, lon)``, two decimal numbers (signed,
``°`` allowed) separated by one comma inside parentheses, no keys, no hemisphere
letters, no minutes or seconds."""

COORDINATE_FORMS = (PAREN, "bracket", "bare", "keyed", "hemisphere", "dms")
"""How a pair was written, as :func:`scan_coordinates` reports it per pair (the first
that applies, from the most specific): ``dms`` (minutes or seconds on a value),
``hemisphere`` (N/S/E/W letters or words), ``keyed`` (``lat:``/``lon:`` keys, JSON),
``paren`` (see :data:`PAREN`), ``bracket`` (two plain decimals in ``[...]``, e.g. the
released Geo-R code's ``{'LOC': [lat, lon]}``), ``bare`` (anything else: ``lat, lon``
without brackets, ``(lat; lon)``, ``(lat,  lon, altitude)``...)."""


@dataclass(slots=True)
class CoordinateScan:
    """Result of :func:`scan_coordinates`."""

    pairs: list[tuple[float, float]]  # valid pairs, in text order
    errors: list[str]  # rejected values and pairs, one message each
    truncated: bool = False  # too many digits: only the tail was read
    forms: list[str] = field(default_factory=list)  # per pair, how it was written (COORDINATE_FORMS)


# A value: [role ("lat" | "lon" | None), magnitude (None if malformed), negative
# sign?, text as written, hemisphere before, hemisphere after, keyed?, dms?, start,
# end]. A list, not a dataclass: _resolve_chunk moves hemispheres between values in
# place, cheaply.
_Value = list


def _make_value(m: re.Match[str]) -> _Value:
    key, pre, sign, deg, mins, secs, suf = m.groups()
    degrees = float(deg)
    mag: float | None = degrees
    if mins is not None:
        mv = float(mins)
        sv = float(secs) if secs is not None else 0.0
        # Minutes and seconds only make sense below 60, and only under whole degrees.
        whole = "." not in deg and "e" not in deg
        mag = degrees + mv / 60 + sv / 3600 if (mv < 60 and sv < 60 and whole) else None
    role = None
    if key is not None:
        k = key.lower()
        if k.startswith("lat") and ("/" in k or "," in k or "&" in k):
            role = None  # "lat/lon: 48.85, 2.35" is a header, not a keyed value
        else:
            role = "lat" if k.startswith("lat") else "lon"
    pre = pre[0].upper() if pre else None
    suf = suf[0].upper() if suf else None
    start, end = m.span()
    return [
        role,
        mag,
        sign == "-",
        m.group(0).strip(),
        pre,
        suf,
        key is not None,
        mins is not None,
        start,
        end,
    ]


_CLOSERS = {"(": ")", "[": "]"}


def _opener(text: str, start: int) -> str:
    """The character before ``start``, spaces skipped (a bounded look back)."""
    c = text[start - 1] if start else ""
    return text[max(0, start - 8) : start].rstrip()[-1:] if c.isspace() else c


def _closer(text: str, end: int) -> str:
    """The character after ``end``, spaces skipped (a bounded look ahead)."""
    c = text[end : end + 1]
    return text[end : end + 8].lstrip()[:1] if c.isspace() else c


def _pair_form(text: str, a: _Value, b: _Value, opener: str) -> str:
    """How the pair (a, b), after ``opener``, is written: one of :data:`COORDINATE_FORMS`."""
    if a[7] or b[7]:
        return "dms"
    if a[4] or a[5] or b[4] or b[5]:
        return "hemisphere"
    if a[6] or b[6]:
        return "keyed"
    if opener in _CLOSERS and _closer(text, b[9]) == _CLOSERS[opener] and text[a[9] : b[8]].strip() == ",":
        return PAREN if opener == "(" else "bracket"
    return "bare"


def _resolve_chunk(
    values: list[_Value],
    pairs: list[tuple[float, float]],
    errors: list[str],
    text: str,
    forms: list[str],
) -> None:
    """Pair up one uninterrupted run of coordinate values (of ``text``); the form of each
    valid pair goes to ``forms``."""
    # Hemisphere letters attach forward ("N 48.85 E 2.35") when the run starts
    # with one, else backward ("48.85 N 2.35 E"). The regex is greedy, so in
    # "N48.85 E2.35" the E first lands after 48.85: move it to the next value.
    if values[0][4] is not None:
        for i in range(len(values) - 1):
            if values[i][5] is not None and values[i + 1][4] is None:
                values[i + 1][4], values[i][5] = values[i][5], None
    resolved: list[tuple[str | None, float | None, str]] = []
    for role, mag, negative, written, pre, suf, _keyed, _dms, _start, _end in values:
        if pre is not None and suf is not None and pre != suf:
            errors.append(f"two hemispheres on one value: {written}")
            mag = None
        hemi = pre or suf
        if hemi is not None:
            h_role = _HEMI_ROLE[hemi]
            if role is not None and role != h_role:
                errors.append(f"hemisphere {hemi} contradicts key {role!r}: {written}")
                mag = None
            role = h_role
            if mag is not None:
                if negative and hemi in ("N", "E"):
                    errors.append(f"minus sign contradicts hemisphere {hemi}: {written}")
                    mag = None
                elif hemi in ("S", "W"):
                    mag = -mag
        elif mag is not None and negative:
            mag = -mag
        resolved.append((role, mag, written))

    i, n = 0, len(resolved)
    while i < n:
        if i + 1 >= n:
            if resolved[i][0] is not None:
                errors.append(
                    f"unpaired {'latitude' if resolved[i][0] == 'lat' else 'longitude'}: {resolved[i][2]}"
                )
            break
        (ra, va, ta), (rb, vb, tb) = resolved[i], resolved[i + 1]
        if ra is not None and ra == rb:
            errors.append(f"two {'latitudes' if ra == 'lat' else 'longitudes'} in a row: {ta}")
            i += 1
            continue
        lat, lon = (vb, va) if (ra == "lon" or rb == "lat") else (va, vb)
        a, b = values[i], values[i + 1]
        i += 2
        if lat is None or lon is None:
            errors.append(f"malformed coordinates: {ta}, {tb}")
        elif abs(lat) > 90 or abs(lon) > 180:
            errors.append(f"coordinates out of range: ({lat:g}, {lon:g})")
        else:
            opener = _opener(text, a[8])
            # A "(" or "[" right before the pair that is never closed after it: a generation
            # cut inside a number ("(43.452002, 14") leaves a fragment, not a coordinate.
            if opener in _CLOSERS and text.find(_CLOSERS[opener], b[9]) < 0:
                errors.append(f"unclosed {opener} before coordinates (cut off?): {ta}, {tb}")
                continue
            pairs.append((lat, lon))
            forms.append(_pair_form(text, a, b, opener))


_DIGIT_RUN_RE = re.compile(r"[0-9]+")  # starts with a class: SRE skips ahead at C speed
# A value starts at most this many characters before its first digit (key
# "latitude/longitude", quotes, ":", hemisphere "north", sign: < 40) and ends at
# most this many after its last digit (seconds mark, spaces, "north": < 16).
_SPAN_BEFORE = 48
_SPAN_AFTER = 24


def _value_matches(text: str) -> Iterator[re.Match[str]]:
    """``_VALUE_RE.finditer(text)``, but run only near digits.

    Every value holds a digit, so the regex runs over the spans
    [first digit - 48, last digit + 24] of digit clusters instead of at every
    position: same matches (lookbehind sees before ``pos``; no value crosses a
    span end, the spans being cut 24 characters after a digit run), a fraction
    of the work on long texts with few numbers.
    """
    n = len(text)
    if n <= 4 * (_SPAN_BEFORE + _SPAN_AFTER):  # short text: spans would save nothing
        yield from _VALUE_RE.finditer(text)
        return
    span_start = span_end = -1
    for run in _DIGIT_RUN_RE.finditer(text):
        s, e = max(0, run.start() - _SPAN_BEFORE), min(n, run.end() + _SPAN_AFTER)
        if span_end >= 0 and s <= span_end:
            span_end = e
            continue
        if span_end >= 0:
            yield from _VALUE_RE.finditer(text, span_start, span_end)
        span_start, span_end = s, e
    if span_end >= 0:
        yield from _VALUE_RE.finditer(text, span_start, span_end)


_DIGIT_RE = re.compile(r"[0-9]")


def _count_digits(text: str) -> int:
    return sum(text.count(d) for d in "0123456789")


def scan_coordinates(text: str, *, normalized: bool = False) -> CoordinateScan:
    """Every (lat, lon) pair in ``text``, in order, and the rejected ones as errors.

    A pair is two values in one uninterrupted run: values separated only by
    spaces, newlines, ``, ; : / | ( ) [ ] { } " ' * _ = & -`` or the word "and";
    any other word ends the run. A value is a number (decimal degrees, or
    degrees-minutes-seconds) with an optional sign, an optional hemisphere
    before or after it, and an optional key before it (``lat``, ``latitude``,
    ``lon``, ``lng``, ``long``, ``longitude``; JSON quoting allowed). Keys and
    hemispheres give the role (N/S/lat -> latitude, E/W/lon -> longitude);
    without them the order is (lat, lon). A pair with a value out of range
    (|lat| > 90 or |lon| > 180) or malformed (minutes >= 60, a minus sign with
    N/E, a hemisphere against its key) is rejected with an error. GeoJSON's
    [lon, lat] order cannot be told from [lat, lon] and is read as [lat, lon].

    Two rules keep numbers that are not coordinates out:

    - a pair right after a ``(`` or ``[`` that is never closed after it is
      rejected (an error says so): a generation cut inside a number,
      ``"(43.452002, 14"``, leaves a fragment, not a longitude;
    - ``"45,120"`` — an unsigned integer of 1-3 digits, a comma with no space,
      exactly three digits — is one number written with a thousands separator
      (a population, an altitude), not the pair (45, 120); so are longer runs
      (``"1,234,567"``). Coordinates written ``"(45,120)"`` read the same way,
      hence as no pair: the prompts ask for decimals and ", ".

    ``forms`` says, per valid pair, how it was written (one of
    :data:`COORDINATE_FORMS`): Geo-R's format reward asks for :data:`PAREN`.

    Reads at most the last :data:`MAX_ANSWER_CHARS` characters, and only the
    last :data:`DENSE_TAIL_CHARS` when the text holds more than
    :data:`MAX_ANSWER_DIGITS` digits (``truncated`` is then set).

    >>> [(round(a, 4), round(b, 4)) for a, b in scan_coordinates('48°51\\'24"N 2°21\\'03"E').pairs]
    [(48.8567, 2.3508)]
    >>> scan_coordinates('{"lon": 151.2, "lat": -33.86}').pairs
    [(-33.86, 151.2)]
    >>> scan = scan_coordinates("City: Biei (population 45,120)\\nCoordinates: (43.452, 142.615)")
    >>> scan.pairs, scan.forms
    ([(43.452, 142.615)], ['paren'])
    >>> scan_coordinates("Coordinates: (43.452002, 14").pairs  # cut inside a number
    []
    """
    errors: list[str] = []
    pairs: list[tuple[float, float]] = []
    if len(text) > MAX_ANSWER_CHARS:
        text = text[-MAX_ANSWER_CHARS:]
    if not normalized:
        text = normalize_text(text)
    if _DIGIT_RE.search(text) is None:  # no digit, no coordinates: most failures end here
        return CoordinateScan(pairs, errors)
    # A text shorter than the cap cannot hold too many digits: skip the count.
    digits = _count_digits(text) if len(text) > MAX_ANSWER_DIGITS else 0
    truncated = digits > MAX_ANSWER_DIGITS
    if truncated:
        errors.append(f"answer holds {digits} digits; read only its last {DENSE_TAIL_CHARS} characters")
        text = text[-DENSE_TAIL_CHARS:]
    forms: list[str] = []
    chunk: list[_Value] = []
    last_end = 0
    number_end = -1  # end of the last number written with thousands separators
    for m in _value_matches(text):
        start = m.start()
        if (
            start > 0
            and text[start - 1] == ","
            and (start == number_end + 1 or (chunk and start == last_end + 1))
        ):
            written = m.group(0)
            if (
                len(written) == 3
                and written.isdigit()
                and (start == number_end + 1 or (len(chunk[-1][3]) <= 3 and chunk[-1][3].isdigit()))
            ):
                # "45,120" (no space, three digits after the comma) is one number, not a pair.
                if start != number_end + 1:
                    chunk.pop()
                if chunk:
                    _resolve_chunk(chunk, pairs, errors, text, forms)
                    chunk = []
                number_end = last_end = m.end()
                continue
        if chunk:
            gap = text[last_end:start]
            if gap and gap.strip(_GAP_CHARS).lower() not in _GAP_WORDS:
                _resolve_chunk(chunk, pairs, errors, text, forms)
                chunk = []
        last_end = m.end()
        chunk.append(_make_value(m))
    if chunk:
        _resolve_chunk(chunk, pairs, errors, text, forms)
    return CoordinateScan(pairs, errors, truncated, forms)


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

_ADMIN_KEYS = frozenset(
    {
        "state", "province", "region", "prefecture", "county", "canton", "oblast", "subdivision",
        "admin1", "admin 1", "admin-1", "admin region", "admin area", "administrative region",
        "administrative area", "administrative division", "state or province", "province or state",
        "first-level administrative division", "省", "省份", "州", "地区",
    }
)  # fmt: skip
_CITY_KEYS = frozenset({"city", "town", "municipality", "city name", "城市", "市"})
_LAT_KEYS = frozenset({"lat", "latitude"})
_LON_KEYS = frozenset({"lon", "lng", "long", "longitude"})
_KEY_LEVELS: dict[str, str] = {
    **dict.fromkeys(_ADMIN_KEYS, "admin1"),
    **dict.fromkeys(_CITY_KEYS, "city"),
    **dict.fromkeys(_LAT_KEYS, "latitude"),
    **dict.fromkeys(_LON_KEYS, "longitude"),
    "continent": "continent",
    "大洲": "continent",
    "country": "country",
    "country name": "country",
    "country/region": "country",
    "国家": "country",
    "coordinates": "coordinates",
    "coordinate": "coordinates",
    "coords": "coordinates",
    "gps": "coordinates",
    "gps coordinates": "coordinates",
    "geographic coordinates": "coordinates",
    "坐标": "coordinates",
    "经纬度": "coordinates",
}

# Characters around a key: Markdown emphasis, quotes, bullets, brackets.
_HEAD_STRIP = " *_`\"'#>|{[(-•"
# A key starts after a newline or one of these (or at the start of the text).
_HEAD_BOUNDARIES_INLINE = ",;{|:="
_MAX_HEAD = 48
_SEP_RE = re.compile(r"[:=]")


@functools.lru_cache(maxsize=4096)  # heads repeat ("Country", "**City**"): cache the normalisation
def _key_level(head: str) -> str | None:
    """The level a key names (``"**State/Province**"`` -> ``"admin1"``), or None."""
    k = " ".join(head.strip(_HEAD_STRIP).lstrip("0123456789.) ").strip(_HEAD_STRIP).lower().split())
    level = _KEY_LEVELS.get(k)
    if level is not None or "/" not in k:
        return level
    parts = {p.strip() for p in k.split("/")}
    if parts <= _ADMIN_KEYS:
        return "admin1"
    if parts <= _CITY_KEYS:
        return "city"
    if len(parts) == 2 and parts & _LAT_KEYS and parts & _LON_KEYS:
        return "coordinates"
    return None


@dataclass(slots=True)
class KeyField:
    level: str  # continent | country | admin1 | city | coordinates | latitude | longitude
    key: str  # as written
    value: str  # cleaned of Markdown and quotes, not of hedges
    line: int  # 0-based line number in the scanned text
    start: int


MAX_FIELDS = 64
"""Beyond this many ``:``/``=`` in an answer, :func:`scan_keys` reads only the
text around the last ones (no protocol's answer has that many fields)."""

_VALUE_STRIP = " \t\n*_`\"'#>|,;{}[]"


@dataclass(slots=True)
class KeyScan:
    """Result of :func:`scan_keys`."""

    fields: list[KeyField]
    truncated: bool = False  # too many fields: only the tail was read


def scan_keys(text: str, *, normalized: bool = False) -> KeyScan:
    """Every ``Key: value`` field in ``text``, in order.

    A key is a level name — Continent, Country, State / Province / Region /
    Admin1 / State/Administrative region (and other admin-1 words), City /
    Town, Coordinates / GPS / Lat/Lon, Latitude, Longitude, and the Chinese
    国家 / 省 / 州 / 城市 / 坐标 — in any case, wrapped in any Markdown emphasis,
    quotes or bullets, right before ``:`` or ``=``. ``Coordinates (lat, lon):``
    counts too. The value runs to the end of the line or to the next key on
    the same line (so ``Country: France, City: Paris`` and one-line JSON work).

    Driven by the ``:``/``=`` characters (C-level searches), not by a regex
    over every position: the work is bounded by :data:`MAX_FIELDS`.

    >>> [(f.level, f.value) for f in scan_keys("**Country:** France\\ncity = 'Paris'").fields]
    [('country', 'France'), ('city', 'Paris')]
    """
    if len(text) > MAX_ANSWER_CHARS:
        text = text[-MAX_ANSWER_CHARS:]
    if not normalized:
        text = normalize_text(text)
    truncated = text.count(":") + text.count("=") > MAX_FIELDS
    if truncated:
        # Keep the last MAX_FIELDS separators (and the head room of the first one).
        cut = len(text)
        for _ in range(MAX_FIELDS):
            cut = max(text.rfind(":", 0, cut), text.rfind("=", 0, cut))
        text = text[max(0, cut - _MAX_HEAD + 1) :]
    found: list[tuple[str, str, int, int]] = []  # level, key, head start, separator
    for m in _SEP_RE.finditer(text):
        p = m.start()
        w0 = max(0, p - _MAX_HEAD)
        line_start = text.rfind("\n", w0, p) + 1
        head = text[line_start or w0 : p]
        cut = line_start > 0 or w0 == 0
        for ch in _HEAD_BOUNDARIES_INLINE:  # the key starts after the last boundary
            if ch in head:
                head = head[head.rindex(ch) + 1 :]
                cut = True
        if not cut:
            continue  # more than _MAX_HEAD characters since the last boundary: not a key
        q = p - len(head)
        level = _key_level(head)
        if level is None:
            # "Coordinates (lat, lon):" — the head from the line start, parenthesis dropped.
            paren = text.find("(", line_start, p)
            if paren >= 0 and (line_start > 0 or w0 == 0):
                level = _key_level(text[line_start:paren])
                q, head = line_start, text[line_start:paren]
        elif level == "longitude" and q > 0 and text[q - 1] == ",":
            # "Latitude, Longitude: 48.85, 2.35" names the pair, not a longitude.
            before = text[max(0, q - 12) : q - 1].rstrip(_HEAD_STRIP).lower()
            if before.endswith(("lat", "latitude")) and not before.endswith(("plat", "flat")):
                level = "coordinates"
        if level is not None:
            found.append((level, head.strip(_HEAD_STRIP), q, p))
    fields: list[KeyField] = []
    line, pos = 0, 0
    for j, (level, key, q, p) in enumerate(found):
        line += text.count("\n", pos, p)
        pos = p
        end = text.find("\n", p)
        if end < 0:
            end = len(text)
        if j + 1 < len(found) and found[j + 1][2] < end:
            end = found[j + 1][2]
        value = text[p + 1 : end].strip(_VALUE_STRIP)
        fields.append(KeyField(level=level, key=key, value=value, line=line, start=q))
    return KeyScan(fields, truncated)


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
# The fast path of clean_name: letters (any script), spaces, apostrophes,
# hyphens and dots, not starting with a word the hedge prefix could remove and
# without " or "/" vs " alternatives. Anything else takes the full path.
_PLAIN_NAME_RE = re.compile(r"[^\W\d_](?:[\w .'-]{0,98}[^\W_])?")
_FIRST_WORD_RE = re.compile(r"[^\W\d_]*")
_PREFIX_WORDS = frozenset(
    [
        "most",
        "very",
        "quite",
        "likely",
        "probably",
        "possibly",
        "perhaps",
        "maybe",
        "presumably",
        "apparently",
        "approximately",
        "approx",
        "around",
        "near",
        "somewhere",
        "either",
        "i",
        "it",
        "in",
        "the",
    ]
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
    if _PLAIN_NAME_RE.fullmatch(raw):  # the common case: one plain name, nothing to clean
        low = raw.lower()
        first = _FIRST_WORD_RE.match(low)
        if (
            low not in _UNKNOWN
            and (first is None or first.group() not in _PREFIX_WORDS)
            and " or " not in low
            and " vs" not in low
            and " versus " not in low
        ):
            return raw
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
