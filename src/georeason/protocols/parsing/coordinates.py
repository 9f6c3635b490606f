"""Every (lat, lon) pair in a text (:func:`scan_coordinates`), and how each was written."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from georeason.protocols.parsing.text import MAX_ANSWER_CHARS, normalize_text

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
