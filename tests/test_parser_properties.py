"""Property-based tests of the answer parsers (hypothesis).

Issue 3, part 5: any text -> no exception, Prediction fields of the right
types, lat/lon in range when set; plus the round trip on random labelled
samples and random coordinate notations, and the equivalence of the fast
(digit-span) scanner with the plain regex scan.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from unittest.mock import patch

from hostile import HostileStr, Unprintable  # tests/hostile.py
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from georeason.protocols import PROTOCOLS, get_protocol, parse_coordinates, parsing
from georeason.protocols.parsing import clean_name, normalize_text, scan_coordinates
from georeason.protocols.parsing.coordinates import _VALUE_RE, _value_matches
from georeason.types import GeoSample, Prediction

SETTINGS = settings(
    max_examples=int(__import__("os").environ.get("PARSER_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Pieces the parser reacts to: tags, keys, numbers, hemispheres, DMS marks,
# brackets, look-alike unicode. Random mixes of them reach far more of the
# parser than uniform random text does.
TOKENS = [
    "<think>", "</think>", "<answer>", "</answer>", "<THINK>", "Country:", "country: ", "City:", "State:",
    "Province:", "Continent:", "Coordinates:", "**", "__", "`", "lat", "lon", "lng", "latitude", "longitude",
    "N", "S", "E", "W", "north", "°", "º", "'", '"', "″", "′", "''", "(", ")", "[", "]", "{", "}", ",", ";",
    ":", "=", "/", "-", "−", "+", ".", " ", "\n", "\t", "\u00a0", "\u3000", "\u200b", "48", "2.35", "-33.8",
    "151.2", "90", "180", "90.0001", "999", "0", "00", "12345678901234567890", "1e9", "İ", "中国", "成都",
    "Île", "and", "or", "likely", "possibly", "N/A", "Final answer:", "json", "４８", "．",
]  # fmt: skip
token_text = st.lists(st.sampled_from(TOKENS), max_size=80).map("".join)
any_text = st.one_of(st.text(max_size=400), token_text)


def check_prediction(pred: Prediction, name: str) -> None:
    assert isinstance(pred, Prediction)
    for f in ("continent", "country_code", "country", "admin1", "city"):
        v = getattr(pred, f)
        assert v is None or (isinstance(v, str) and v), f
    assert isinstance(pred.reasoning, str) and isinstance(pred.raw, str)
    assert isinstance(pred.format_ok, bool)
    assert isinstance(pred.errors, list) and all(isinstance(e, str) for e in pred.errors)
    # The last-resort guard in AnswerProtocol.parse must never have fired.
    assert not any(e.startswith("parser error:") for e in pred.errors), pred.errors
    assert isinstance(pred.n_coordinates, int) and pred.n_coordinates >= 0
    assert (pred.lat is None) == (pred.lon is None)
    if pred.lat is not None:
        assert isinstance(pred.lat, float) and isinstance(pred.lon, float)
        assert math.isfinite(pred.lat) and math.isfinite(pred.lon)
        assert -90 <= pred.lat <= 90 and -180 <= pred.lon <= 180
    if pred.country_code is not None:
        assert len(pred.country_code) == 2 and pred.country_code.isupper()
    if pred.format_ok and name != "globe":
        assert pred.n_coordinates == 1 and pred.lat is not None
    if name != "globe":
        assert (pred.lat is not None) == (pred.n_coordinates > 0)


@SETTINGS
@given(any_text)
def test_any_text_never_breaks_any_parser(text: str) -> None:
    for name, proto in PROTOCOLS.items():
        check_prediction(proto.parse(text), name)


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=30).map("".join), st.integers(1, 400))
def test_long_repetitions(piece: str, times: int) -> None:
    text = piece * times
    for name, proto in PROTOCOLS.items():
        check_prediction(proto.parse(text), name)


def _nest(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    )


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20), _nest, max_leaves=12
)
completion_like = st.one_of(
    json_like,
    st.lists(st.fixed_dictionaries({"role": st.sampled_from(["assistant", "user"]), "content": json_like})),
    st.lists(
        st.fixed_dictionaries(
            {
                "role": st.just("assistant"),
                "content": st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": any_text})),
            }
        ),
        max_size=2,
    ),
    st.binary(max_size=50),
)


@SETTINGS
@given(completion_like)
def test_any_object_never_breaks_any_parser(completion: Any) -> None:
    for name, proto in PROTOCOLS.items():
        pred = proto.parse(completion)
        assert isinstance(pred, Prediction)
        assert not any(e.startswith("parser error:") for e in pred.errors), pred.errors
        if not pred.errors or not pred.errors[0].startswith("bad completion:"):
            check_prediction(pred, name)


@SETTINGS
@given(any_text)
def test_parse_coordinates_gives_valid_pairs(text: str) -> None:
    for lat, lon in parse_coordinates(text):
        assert isinstance(lat, float) and isinstance(lon, float)
        assert -90 <= lat <= 90 and -180 <= lon <= 180


@SETTINGS
@given(any_text)
def test_digit_span_scan_equals_full_regex_scan(text: str) -> None:
    text = normalize_text(text)
    full = [(m.span(), m.groups()) for m in _VALUE_RE.finditer(text)]
    fast = [(m.span(), m.groups()) for m in _value_matches(text)]
    assert fast == full


lat_st = st.floats(-90, 90, allow_nan=False)
lon_st = st.floats(-180, 180, allow_nan=False)


def render(lat: float, lon: float, style: int) -> str:
    """One notation of (lat, lon) a VLM might write, exact to 1e-6 degrees."""
    ns, ew = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
    if style == 0:
        return f"({lat:.6f}, {lon:.6f})"
    if style == 1:
        return f"[{lat:.6f},{lon:.6f}]"
    if style == 2:
        return f"{abs(lat):.6f}° {ns}, {abs(lon):.6f}° {ew}"
    if style == 3:
        return f"{ns}{abs(lat):.6f} {ew}{abs(lon):.6f}"
    if style == 4:
        return json.dumps({"lon": round(lon, 6), "lat": round(lat, 6)})
    if style == 5:
        return f"Latitude: {lat:.6f}\nLongitude: {lon:.6f}"
    if style == 6:
        return f"({lat:.6f}, {lon:.6f})".replace("-", "\u2212")
    # DMS with seconds to 4 decimals (~3 mm); whole degrees and minutes.
    parts = []
    for v, pos, neg in ((lat, "N", "S"), (lon, "E", "W")):
        total = round(abs(v) * 3600, 4)
        d, rem = divmod(total, 3600)
        m, s = divmod(rem, 60)
        parts.append(f"{int(d)}°{int(m)}′{s:.4f}″{pos if v >= 0 else neg}")
    return " ".join(parts)


@SETTINGS
@given(lat_st, lon_st, st.integers(0, 7))
def test_every_notation_reads_back(lat: float, lon: float, style: int) -> None:
    text = render(lat, lon, style)
    scan = scan_coordinates(text)
    assert len(scan.pairs) == 1, (text, scan)
    got_lat, got_lon = scan.pairs[0]
    assert abs(got_lat - lat) < 2e-6 and abs(got_lon - lon) < 2e-6, text


NAMES = [
    ("France", "FR", "Île-de-France", "Paris"),
    ("Japan", "JP", "Hokkaidō", "Biei"),
    ("China", "CN", "四川省", "成都"),
    ("Brazil", "BR", "São Paulo", "São Paulo"),
    ("Iceland", "IS", "Capital Region", "Reykjavík"),
    ("Côte d'Ivoire", "CI", "Abidjan", "Abidjan"),
    ("United States", "US", "New York", "New York City"),
    ("Türkiye", "TR", "İstanbul", "İstanbul"),
]


@SETTINGS
@given(
    lat_st,
    lon_st,
    st.sampled_from(NAMES),
    st.sampled_from(["AF", "AN", "AS", "EU", "NA", "OC", "SA"]),
    st.sampled_from(sorted(PROTOCOLS)),
    st.one_of(st.none(), st.text(max_size=200)),
)
def test_round_trip_random_samples(
    lat: float, lon: float, names: tuple[str, str, str, str], continent: str, name: str, reasoning: str | None
) -> None:
    country, code, admin1, city = names
    sample = GeoSample(
        "s", None, lat, lon, continent, code, country, admin1, city, reasoning=reasoning or None
    )
    proto = get_protocol(name)
    text = proto.format_answer(sample)
    pred = proto.parse(text)
    # Any reasoning text the sample brings must not break the gold answer.
    if len(text) <= 20_000:
        assert pred.format_ok, (text, pred.errors)
    if name != "globe":
        assert abs(pred.lat - round(lat, 4)) < 1e-9 and abs(pred.lon - round(lon, 4)) < 1e-9  # type: ignore[operator]
    if name in ("geor", "geor_continent", "globe"):
        assert (pred.country, pred.country_code, pred.city) == (country, code, city)
    if name == "geor_continent":
        assert pred.continent == continent


NAME_PIECES = [
    "Paris", "São", " ", "-", "'", ".", ",", "/", "(", ")", "likely", "or", "N/A", "not", "sure", "in",
    "Île", "成都", "D.C.", "either", "1", "_", "?", "Probably", "it's", "Unknown", ";",
]  # fmt: skip
name_text = st.one_of(st.text(max_size=40), st.lists(st.sampled_from(NAME_PIECES), max_size=8).map("".join))


@SETTINGS
@given(name_text)
def test_clean_name_fast_path_agrees_with_full_cleaning(value: str) -> None:
    fast_errors: list[str] = []
    slow_errors: list[str] = []
    fast = clean_name(value, "City", fast_errors)
    with patch.object(parsing.fields, "_PLAIN_NAME_RE", re.compile(r"(?!)")):  # never matches
        slow = clean_name(value, "City", slow_errors)
    assert (fast, fast_errors) == (slow, slow_errors)


# Issue 13: objects TRL never hands over, but a buggy caller or a hostile client might.
def _nested(depth: int, kind: int) -> Any:
    x: Any = "<answer>Coordinates: (1, 2)</answer>"
    for _ in range(depth):
        x = [x] if kind == 0 else ({"role": "assistant", "content": [x]} if kind == 1 else {"text": x})
    return x


hostile_objects = st.one_of(
    st.builds(_nested, st.integers(1, 6000), st.integers(0, 2)),
    st.just(Unprintable()),
    st.just([{"role": "assistant", "content": Unprintable()}]),
    any_text.map(HostileStr),
    st.integers(4300, 6000).map(lambda k: 10**k),  # str() of it raises (Python's digit limit)
    st.binary(max_size=200),
    st.floats(),
    st.sets(st.integers(), max_size=3),
)


@SETTINGS
@given(hostile_objects)
def test_hostile_objects_never_break_any_parser(completion: Any) -> None:
    for proto in PROTOCOLS.values():
        pred = proto.parse(completion)
        assert isinstance(pred, Prediction) and isinstance(pred.raw, str)
        assert all(isinstance(e, str) for e in pred.errors)
        assert not any(e.startswith("parser error:") for e in pred.errors), pred.errors


huge_name = st.one_of(
    st.tuples(st.sampled_from(["Paris", "São ", "東京", ", IN", ", France", "a"]), st.integers(50, 2000)).map(
        lambda t: t[0] * t[1]
    ),
    st.text(min_size=200, max_size=3000),
)


@SETTINGS
@given(huge_name, st.sampled_from(sorted(PROTOCOLS)))
def test_huge_names_in_every_field(name: str, protocol: str) -> None:
    text = (
        f"<think>{name}</think><answer>Continent: {name}\nCountry: {name}\nState: {name}\n"
        f"City: {name}\ncountry: {name}\ncity: {name}\nCoordinates: (48.85, 2.35)</answer>"
    )
    check_prediction(get_protocol(protocol).parse(text), protocol)
