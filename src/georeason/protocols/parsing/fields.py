"""``Key: value`` fields of an answer (:func:`scan_keys`) and the place names in them,
cleaned of hedges and filler (:func:`clean_name`)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from georeason.protocols.parsing.text import MAX_ANSWER_CHARS, normalize_text

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
