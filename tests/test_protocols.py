"""Answer protocols: prompts, gold answers, and the parser on realistic VLM completions.

Issue 3, parts 1, 2 and 5. The property-based tests (any text, any object)
are in tests/test_parser_properties.py.
"""

from __future__ import annotations

import math

import pytest

from georeason.geo import reverse_geocode
from georeason.protocols import (
    PROTOCOLS,
    AnswerProtocol,
    GeoRProtocol,
    GlobeProtocol,
    completion_text,
    get_protocol,
    parse_coordinates,
)
from georeason.protocols.parsing import (
    MAX_ANSWER_DIGITS,
    MAX_COMPLETION_CHARS,
    clean_name,
    scan_coordinates,
    scan_keys,
    split_completion,
)
from georeason.types import GeoSample, Prediction

# ---------------------------------------------------------------------------
# Labelled samples: accents, CJK, every hemisphere, a place without admin1
# ---------------------------------------------------------------------------

SAMPLES = [
    GeoSample("paris", "a.jpg", 48.8566, 2.3522, "EU", "FR", "France", "Île-de-France", "Paris"),
    GeoSample("biei", "b.jpg", 43.5883, 142.4667, "AS", "JP", "Japan", "Hokkaidō", "Biei"),
    GeoSample("chengdu", "c.jpg", 30.6598, 104.0633, "AS", "CN", "China", "四川省", "成都"),
    GeoSample("saopaulo", "d.jpg", -23.5505, -46.6333, "SA", "BR", "Brazil", "São Paulo", "São Paulo"),
    GeoSample("sydney", "e.jpg", -33.8688, 151.2093, "OC", "AU", "Australia", "New South Wales", "Sydney"),
    GeoSample("nyc", "f.jpg", 40.7128, -74.0060, "NA", "US", "United States", "New York", "New York City"),
    GeoSample(
        "capetown", "g.jpg", -33.9249, 18.4241, "AF", "ZA", "South Africa", "Western Cape", "Cape Town"
    ),
    GeoSample("reykjavik", "h.jpg", 64.1466, -21.9426, "EU", "IS", "Iceland", "Capital Region", "Reykjavík"),
    GeoSample("merida", "i.jpg", 20.9674, -89.5926, "NA", "MX", "Mexico", "Yucatán", "Mérida"),
    GeoSample("istanbul", "j.jpg", 41.0082, 28.9784, "AS", "TR", "Türkiye", "İstanbul", "İstanbul"),
    GeoSample("monaco", "k.jpg", 43.7384, 7.4246, "EU", "MC", "Monaco", None, "Monaco"),
    GeoSample(
        "antimeridian",
        "l.jpg",
        -17.7134,
        178.0650,
        "OC",
        "FJ",
        "Fiji",
        "Western",
        "Nadi",
        reasoning="Palm trees, a <think> stray tag, and a sign in English and Fijian.",
        entities=["palm trees", "sign in Fijian"],
    ),
]

ALL = sorted(PROTOCOLS)


# ---------------------------------------------------------------------------
# Registry and prompts
# ---------------------------------------------------------------------------


def test_registry_names_and_lookup() -> None:
    assert {"geor", "globe", "plain", "cot", "geor_continent"} <= set(PROTOCOLS)
    for name, proto in PROTOCOLS.items():
        assert isinstance(proto, AnswerProtocol)
        assert proto.name == name
        assert get_protocol(name) is proto
    assert get_protocol(" GeoR ") is PROTOCOLS["geor"]
    assert isinstance(get_protocol("geor_continent"), GeoRProtocol)
    assert get_protocol("geor_continent").include_continent  # type: ignore[attr-defined]


def test_unknown_protocol_lists_names() -> None:
    with pytest.raises(
        ValueError, match=r"unknown protocol 'georr'.*geor, geor_continent, globe, plain, cot"
    ):
        get_protocol("georr")
    with pytest.raises(ValueError, match="unknown protocol"):
        get_protocol(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ALL)
def test_messages_shape(name: str) -> None:
    proto = get_protocol(name)
    msgs = proto.messages()
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert msgs[0]["content"] == [{"type": "text", "text": proto.system_prompt}]
    assert msgs[1]["content"] == [{"type": "image"}, {"type": "text", "text": proto.user_prompt}]
    assert proto.messages(image_placeholder=False)[1]["content"] == [
        {"type": "text", "text": proto.user_prompt}
    ]
    assert proto.system_prompt.strip() and proto.user_prompt.strip()


def test_prompts_state_each_format() -> None:
    geor = get_protocol("geor").user_prompt
    for key in ("<think>", "<answer>", "Country:", "State:", "City:", "Coordinates:"):
        assert key in geor
    assert "Continent:" not in geor
    assert get_protocol("geor_continent").user_prompt.index("Continent:") < geor.index("Country:") + 100
    assert "country: <country>\ncity: <city>" in get_protocol("globe").user_prompt
    assert "(latitude, longitude)" in get_protocol("plain").user_prompt
    assert "Coordinates:" in get_protocol("cot").user_prompt


# ---------------------------------------------------------------------------
# completion_text
# ---------------------------------------------------------------------------


def test_completion_text_formats() -> None:
    assert completion_text("abc") == "abc"
    assert completion_text(None) == ""
    assert completion_text(b"(1, 2)") == "(1, 2)"
    assert completion_text([{"role": "assistant", "content": "hi"}]) == "hi"
    assert completion_text({"role": "assistant", "content": "hi"}) == "hi"
    parts = [{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"}]
    assert completion_text([{"role": "assistant", "content": parts}]) == "ab"
    convo = [
        {"role": "user", "content": "where?"},
        {"role": "assistant", "content": "(1, 2)"},
        {"role": "assistant", "content": [{"type": "text", "text": "(3, 4)"}]},
    ]
    assert completion_text(convo) == "(1, 2)\n(3, 4)"
    with pytest.raises(TypeError, match="completion must be a str or a list"):
        completion_text(42)
    with pytest.raises(TypeError, match="message must be a dict or str"):
        completion_text([42])


@pytest.mark.parametrize("name", ALL)
def test_parse_accepts_conversational_and_reports_bad_types(name: str) -> None:
    proto = get_protocol(name)
    gold = proto.format_answer(SAMPLES[0])
    conv = [{"role": "assistant", "content": [{"type": "text", "text": gold}]}]
    assert proto.parse(conv) == proto.parse(gold)
    bad = proto.parse(12345)
    assert isinstance(bad, Prediction)
    assert not bad.format_ok
    assert bad.errors and bad.errors[0].startswith("bad completion:")


# ---------------------------------------------------------------------------
# Gold answer -> parse round trip
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("sample", SAMPLES, ids=[s.id for s in SAMPLES])
def test_round_trip(name: str, sample: GeoSample) -> None:
    proto = get_protocol(name)
    text = proto.format_answer(sample)
    pred = proto.parse(text)
    assert pred.format_ok, (text, pred.errors)
    assert pred.raw == text
    assert pred.errors == []
    if name == "globe":
        assert (pred.lat, pred.lon) == (None, None)
        assert text.startswith("<think>") and text.endswith("</answer>")
    else:
        assert pred.n_coordinates == 1
        assert pred.lat == pytest.approx(sample.lat, abs=5e-5)
        assert pred.lon == pytest.approx(sample.lon, abs=5e-5)
    if name in ("geor", "geor_continent", "globe"):
        assert pred.country == sample.country
        assert pred.country_code == sample.country_code
        assert pred.city == sample.city
        assert "<think>" not in pred.reasoning and pred.reasoning
    if name.startswith("geor"):
        # A missing admin1 label is filled by reverse geocoding (Monaco -> "Monaco").
        assert pred.admin1 == (sample.admin1 or reverse_geocode(sample.lat, sample.lon).admin1)
    assert pred.continent == (sample.continent if name == "geor_continent" else None)


def test_round_trip_from_dataset_row() -> None:
    row = SAMPLES[3].to_dict()
    for name in ALL:
        proto = get_protocol(name)
        assert proto.format_answer(row) == proto.format_answer(SAMPLES[3])


def test_gold_answer_layout() -> None:
    text = get_protocol("geor_continent").format_answer(SAMPLES[1])
    assert text == (
        "<think>I look at the landscape, vegetation, architecture, roads and any text in the image. "
        "Together, the clues point to Asia, more precisely to Japan, in the region of Hokkaidō. "
        "The most likely place is Biei or its surroundings.</think>\n"
        "<answer>Continent: Asia\nCountry: Japan\nState: Hokkaidō\nCity: Biei\n"
        "Coordinates: (43.5883, 142.4667)</answer>"
    )
    assert get_protocol("plain").format_answer(SAMPLES[3]) == "(-23.5505, -46.6333)"
    cot = get_protocol("cot").format_answer(SAMPLES[-1])
    assert cot.endswith("\nCoordinates: (-17.7134, 178.0650)")
    # The sample's own reasoning is used, stray tags removed; entities are named in the default one.
    assert "Palm trees, a  stray tag" in cot
    assert "Visible clues: palm trees, sign in Fijian." in get_protocol("globe").format_answer(
        GeoSample("x", None, 1.0, 2.0, country="Fiji", city="Nadi", entities=["palm trees", "sign in Fijian"])
    )


def test_format_answer_fills_missing_names_by_reverse_geocoding() -> None:
    row = {"id": "tokyo", "lat": 35.6895, "lon": 139.6917}
    pred = get_protocol("geor_continent").parse(get_protocol("geor_continent").format_answer(row))
    assert pred.format_ok
    assert (pred.continent, pred.country_code) == ("AS", "JP")
    assert pred.city and pred.admin1
    globe = get_protocol("globe").format_answer(
        {"id": "x", "lat": -33.87, "lon": 151.21, "country_code": "AU"}
    )
    assert "country: Australia\n" in globe


@pytest.mark.parametrize(
    ("row", "exc", "match"),
    [
        ({"id": "a", "lat": None, "lon": 2.0}, ValueError, "numeric 'lat' and 'lon'"),
        ({"id": "a", "lat": 91.0, "lon": 2.0}, ValueError, "invalid coordinates"),
        ({"id": "a", "lat": float("nan"), "lon": 2.0}, ValueError, "invalid coordinates"),
        ({"id": "a", "lon": 2.0}, ValueError, "numeric 'lat' and 'lon'"),
        ("not a sample", TypeError, "GeoSample or a dict"),
    ],
)
def test_format_answer_rejects_bad_samples(row: object, exc: type[Exception], match: str) -> None:
    for name in ALL:
        with pytest.raises(exc, match=match):
            get_protocol(name).format_answer(row)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Realistic VLM completions
# ---------------------------------------------------------------------------

GEOR_CASES = [
    pytest.param(
        "<think>French signs, EU plates.</think>\n<answer>\n**Country:** likely France, possibly Belgium\n"
        "**State/Administrative region:** Île-de-France\n**City:** Paris\n"
        "**Coordinates:** (48.8566° N, 2.3522° E)\n</answer>",
        {
            "country": "France",
            "country_code": "FR",
            "admin1": "Île-de-France",
            "city": "Paris",
            "lat": 48.8566,
        },
        True,
        ["hedged Country"],
        id="markdown-hedge-hemispheres",
    ),
    pytest.param(
        "<think>x</think><answer>Country: Brazil\nCity: São Paulo\nCoordinates: (-23.55, -46.63)</answer>",
        {"country_code": "BR", "admin1": None, "city": "São Paulo", "lat": -23.55, "lon": -46.63},
        False,
        ["missing level: State"],
        id="missing-state",
    ),
    pytest.param(
        "<think>x</think><answer>Country: China\nProvince: 四川\nCity: 成都\n"
        "Coordinates: (30.66, 104.06) or maybe (29.56, 106.55)</answer>",
        {
            "country_code": "CN",
            "admin1": "四川",
            "city": "成都",
            "lat": 29.56,
            "lon": 106.55,
            "n_coordinates": 2,
        },
        False,
        ["2 coordinate pairs; used the last"],
        id="two-candidate-pairs-cjk",
    ),
    pytest.param(
        "<think>x</think><answer>Country: Japan\nState: Tokyo\nCity: Shibuya\nCoordinates: (35.66, 139.70)"
        "</answer>\n\nI hope this helps! Let me know if you need anything else.",
        {"city": "Shibuya", "lat": 35.66},
        True,
        ["text after </answer>"],
        id="text-after-answer",
    ),
    pytest.param(
        '<think>x</think><answer>```json\n{"country": "Japan", "state": "Tokyo", "city": "Shibuya", '
        '"coordinates": {"lat": 35.66, "lng": 139.70}}\n```</answer>',
        {"country_code": "JP", "admin1": "Tokyo", "city": "Shibuya", "lat": 35.66, "lon": 139.70},
        True,
        ["several levels on one line"],
        id="json-object",
    ),
    pytest.param(
        "<think>x</think>\nCountry: USA\nState: N/A\nCity: New York\nCoordinates: 40°42'46\"N 74°00'22\"W",
        {"country_code": "US", "admin1": None, "lat": 40 + 42 / 60 + 46 / 3600, "lon": -(74 + 22 / 3600)},
        True,
        ["no <answer> tag", "no value for State"],
        id="dms-no-answer-tag",
    ),
    pytest.param(
        "<think>x</think><answer>Country: France\nState: Grand Est\nCity: Strasbourg\nCoordinates: (48.58, 7.75)",
        {"city": "Strasbourg", "lat": 48.58},
        True,
        ["unclosed <answer>: read to the end"],
        id="unclosed-answer",
    ),
    pytest.param(
        "<think>x</think><answer>COUNTRY: GERMANY\nregion: bavaria\ncity: münchen\nCOORDINATES: N48.137 E11.575"
        "</answer>",
        {"country_code": "DE", "admin1": "bavaria", "city": "münchen", "lat": 48.137, "lon": 11.575},
        True,
        [],
        id="any-case-prefix-hemispheres",
    ),
    pytest.param(
        "<think>x</think><answer>Country: Australia\nState: NSW\nCity: Sydney\nCoordinates: (−33.87, 151.21)</answer>",
        {"lat": -33.87, "lon": 151.21},
        True,
        [],
        id="unicode-minus",
    ),
    pytest.param(
        "<think>x</think><answer>Country: Narnia\nState: ?\nCity: Cair Paravel\nCoordinates: (95.0, 10.0)</answer>",
        {"country": "Narnia", "country_code": None, "lat": None, "n_coordinates": 0},
        False,
        ["unrecognised country: 'Narnia'", "coordinates out of range: (95, 10)", "no coordinates"],
        id="out-of-range-unknown-country",
    ),
    pytest.param(
        "<think>x</think><answer>City: Lyon\nCountry: France\nState: Auvergne-Rhône-Alpes\n"
        "Coordinates: (45.76, 4.83)</answer>",
        {"city": "Lyon"},
        True,
        ["levels out of order"],
        id="out-of-order",
    ),
    pytest.param(
        "<think>Maybe Spain? <answer>Country: Spain</answer> no, the plates are Portuguese.</think>"
        "<answer>Country: Portugal\nState: Lisbon\nCity: Lisbon\nCoordinates: (38.72, -9.14)</answer>",
        {"country_code": "PT", "lat": 38.72, "lon": -9.14},
        True,
        ["2 <answer> tags; read the last"],
        id="answer-inside-think-then-final",
    ),
    pytest.param(
        "<think>a</think><think>b</think>\n<answer>Country: Italy\nState: Lazio\nCity: Rome\n"
        "Coordinates: 41.9028 N, 12.4964 E</answer>",
        {"country_code": "IT", "lat": 41.9028, "lon": 12.4964},
        True,
        ["2 <think> tags", "2 </think> tags"],
        id="two-think-blocks",
    ),
    pytest.param(
        "Country: Kenya\nState: Nairobi\nCity: Nairobi\nCoordinates: (-1.29, 36.82)",
        {"country_code": "KE", "lat": -1.29, "reasoning": ""},
        True,
        ["no <answer> tag"],
        id="no-tags-at-all",
    ),
    pytest.param(
        "<think>x</think><answer>Country: Canada\nState: Québec\nCity: Montréal\n"
        "Latitude: 45.5017\nLongitude: -73.5673</answer>",
        {"city": "Montréal", "lat": 45.5017, "lon": -73.5673},
        True,
        [],
        id="latitude-longitude-lines",
    ),
    pytest.param("", {"lat": None}, False, ["no coordinates", "missing level: Country"], id="empty"),
]


@pytest.mark.parametrize(("text", "fields", "format_ok", "errors"), GEOR_CASES)
def test_geor_realistic(text: str, fields: dict[str, object], format_ok: bool, errors: list[str]) -> None:
    pred = get_protocol("geor").parse(text)
    for key, value in fields.items():
        got = getattr(pred, key)
        if isinstance(value, float):
            assert got == pytest.approx(value, abs=1e-9), key
        else:
            assert got == value, key
    assert pred.format_ok is format_ok, pred.errors
    for e in errors:
        assert any(err.startswith(e) for err in pred.errors), (e, pred.errors)
    if not errors:
        assert pred.errors == []


def test_geor_continent_level() -> None:
    proto = get_protocol("geor_continent")
    ok = proto.parse(
        "<think>x</think><answer>Continent: South America\nCountry: Chile\nState: Magallanes\n"
        "City: Punta Arenas\nCoordinates: (-53.16, -70.92)</answer>"
    )
    assert ok.format_ok and ok.continent == "SA" and ok.errors == []
    missing = proto.parse(
        "<think>x</think><answer>Country: Chile\nState: Magallanes\nCity: Punta Arenas\n"
        "Coordinates: (-53.16, -70.92)</answer>"
    )
    assert not missing.format_ok and "missing level: Continent" in missing.errors
    # geor without continent reads a Continent line when present, without requiring it.
    assert get_protocol("geor").parse(ok.raw).continent == "SA"
    odd = proto.parse(ok.raw.replace("South America", "Atlantis"))
    assert odd.continent == "Atlantis" and "unrecognised continent: 'Atlantis'" in odd.errors


GLOBE_CASES = [
    pytest.param(
        "<think>Red double-decker bus, left-hand traffic.</think><answer>country: United Kingdom\ncity: London</answer>",
        {"country": "United Kingdom", "country_code": "GB", "city": "London"},
        True,
        [],
        id="paper-format",
    ),
    pytest.param(
        "<think>Red bus.</think>\n<answer>\nCountry: **United Kingdom**\nCity: London (probably)\n</answer>\n",
        {"country_code": "GB", "city": "London"},
        True,
        ["hedged City"],
        id="markdown-whitespace-hedge",
    ),
    pytest.param(
        "Red bus.<answer>country: UK\ncity: London</answer>",
        {"country_code": "GB", "city": "London", "reasoning": "Red bus."},
        False,
        ["expected one <think>, found 0", "does not start with <think>"],
        id="no-think",
    ),
    pytest.param(
        "<think>x</think><answer>country: France\ncity: Paris</answer> Paris is lovely.",
        {"city": "Paris"},
        False,
        ["text after </answer>"],
        id="text-after",
    ),
    pytest.param(
        "<think>x</think> So: <answer>country: France\ncity: Paris</answer>",
        {"city": "Paris"},
        False,
        ["text between </think> and <answer>"],
        id="text-between",
    ),
    pytest.param(
        "<think>x</think><answer>country: Japan\ncity: Kyoto</answer><|im_end|>",
        {"country_code": "JP", "city": "Kyoto"},
        True,
        [],
        id="end-of-turn-token",
    ),
    pytest.param(
        "<think>x</think><answer>country: Brazil</answer>",
        {"country_code": "BR", "city": None},
        False,
        ["missing level: city"],
        id="missing-city",
    ),
    pytest.param(
        "<think>x</think><answer>country: Côte d’Ivoire\ncity: Abidjan\n(5.35, -4.00)</answer>",
        {"country_code": "CI", "city": "Abidjan", "lat": None, "n_coordinates": 1},
        True,
        [],
        id="accents-curly-quote-and-coordinates",
    ),
    pytest.param(
        "<think>x</think><answer>country: France or Belgium\ncity: Lille/Brussels</answer>",
        {"country": "France", "city": "Lille"},
        True,
        ["hedged Country", "hedged City"],
        id="alternatives",
    ),
]


@pytest.mark.parametrize(("text", "fields", "format_ok", "errors"), GLOBE_CASES)
def test_globe_realistic(text: str, fields: dict[str, object], format_ok: bool, errors: list[str]) -> None:
    pred = get_protocol("globe").parse(text)
    for key, value in fields.items():
        assert getattr(pred, key) == value, key
    assert pred.format_ok is format_ok, pred.errors
    for e in errors:
        assert any(err.startswith(e) for err in pred.errors), (e, pred.errors)
    if not errors:
        assert pred.errors == []


def test_globe_geocode_option() -> None:
    text = "<think>a</think><answer>country: Germany\ncity: München</answer>"
    proto = get_protocol("globe")
    assert proto.parse(text).lat is None  # off by default
    pred = proto.parse(text, geocode=True)  # type: ignore[call-arg]
    assert pred.lat == pytest.approx(48.14, abs=0.05) and pred.lon == pytest.approx(11.58, abs=0.05)
    assert GlobeProtocol(geocode=True).parse(text).lat == pred.lat
    unknown = proto.parse(text.replace("München", "Zzyzxville"), geocode=True)  # type: ignore[call-arg]
    assert unknown.lat is None
    assert any(e.startswith("could not geocode") for e in unknown.errors)


PLAIN_COT_CASES = [
    ("plain", "(48.8566, 2.3522)", (48.8566, 2.3522), 1, True),
    ("plain", "The answer is (48.8566, 2.3522).", (48.8566, 2.3522), 1, True),
    ("plain", "[-33.8688, 151.2093]", (-33.8688, 151.2093), 1, True),
    ("plain", '{"latitude": 35.68, "longitude": 139.69}', (35.68, 139.69), 1, True),
    ("plain", "48°51'24\"N, 2°21'03\"E", (48.85666666666667, 2.350833333333333), 1, True),
    ("plain", "<think>Paris?</think>(48.85, 2.35)", (48.85, 2.35), 1, True),
    ("plain", "(48.85, 2.35) or (45.76, 4.83)", (45.76, 4.83), 2, False),
    ("plain", "I cannot tell.", None, 0, False),
    ("plain", "(48.85, 200.0)", None, 0, False),
    ("cot", "Tropical trees, Portuguese signs. Rio looks like (-22.9, -43.2).\nFinal answer: (-23.55, -46.63)",
     (-23.55, -46.63), 1, True),
    ("cot", "Sydney Opera House.\n**Coordinates:** 33.8568° S, 151.2153° E", (-33.8568, 151.2153), 1, True),
    ("cot", "I think it's Sydney, at approximately 33.87° S, 151.21° E.", (-33.87, 151.21), 1, True),
    ("cot", "Lyon (45.76, 4.83) or Paris (48.85, 2.35); I'd say Paris.", (48.85, 2.35), 2, False),
    ("cot", "<think>long reasoning (1, 2)</think>Coordinates: (10.5, -20.25)", (10.5, -20.25), 1, True),
]  # fmt: skip


@pytest.mark.parametrize(("name", "text", "latlon", "n", "format_ok"), PLAIN_COT_CASES)
def test_plain_and_cot_realistic(
    name: str, text: str, latlon: tuple[float, float] | None, n: int, format_ok: bool
) -> None:
    pred = get_protocol(name).parse(text)
    assert pred.n_coordinates == n
    assert pred.format_ok is format_ok, pred.errors
    if latlon is None:
        assert pred.lat is None and pred.lon is None
    else:
        assert pred.lat == pytest.approx(latlon[0]) and pred.lon == pytest.approx(latlon[1])


def test_cot_reasoning_is_text_before_the_final_answer() -> None:
    pred = get_protocol("cot").parse("Clue one.\nClue two.\nFinal answer: (1.5, 2.5)")
    assert pred.reasoning == "Clue one.\nClue two."
    assert pred.errors == []
    no_marker = get_protocol("cot").parse("Somewhere around 1.5, 2.5")
    assert "no final answer marker; read the end of the text" in no_marker.errors


# ---------------------------------------------------------------------------
# Coordinates: every accepted notation, and the rejections
# ---------------------------------------------------------------------------

COORDINATE_CASES = [
    ("48.85° N, 2.35° E", [(48.85, 2.35)]),
    ("48.85°N 2.35°W", [(48.85, -2.35)]),
    ("N48.85 E2.35", [(48.85, 2.35)]),
    ("S 33.86, E 151.21", [(-33.86, 151.21)]),
    ("33.86 S, 151.21 E", [(-33.86, 151.21)]),
    ("40.7128N 74.0060W", [(40.7128, -74.006)]),
    ("48.85 degrees north, 2.35 degrees east", [(48.85, 2.35)]),
    ("latitude 48.85 N and longitude 2.35 E", [(48.85, 2.35)]),
    ("48°51'24\"N 2°21'03\"E", [(48 + 51 / 60 + 24 / 3600, 2 + 21 / 60 + 3 / 3600)]),
    ("48°51′24″N 2°21′03″E", [(48 + 51 / 60 + 24 / 3600, 2 + 21 / 60 + 3 / 3600)]),
    ("48° 51' 24'' N, 2° 21' 3'' E", [(48 + 51 / 60 + 24 / 3600, 2 + 21 / 60 + 3 / 3600)]),
    ("48º51'N 2º21'E", [(48 + 51 / 60, 2 + 21 / 60)]),
    ("48°51.4'N 2°21.05'E", [(48 + 51.4 / 60, 2 + 21.05 / 60)]),
    ("(48.8566, 2.3522)", [(48.8566, 2.3522)]),
    ("[-33.8688, 151.2093]", [(-33.8688, 151.2093)]),
    ("[−33.8688, 151.2093]", [(-33.8688, 151.2093)]),
    ("（４８.８５，２.３５）", [(48.85, 2.35)]),
    ("35.68,\u00a0139.65", [(35.68, 139.65)]),
    ("35.68,\u200b139.65", [(35.68, 139.65)]),
    ('{"lat": 48.85, "lon": 2.35}', [(48.85, 2.35)]),
    ('{"lng": 2.35, "lat": 48.85}', [(48.85, 2.35)]),
    ('{"lon": 6.1e-05, "lat": -1.5e+01}', [(-15.0, 6.1e-05)]),
    ('{"latitude": "-33.86", "longitude": "151.21"}', [(-33.86, 151.21)]),
    ('"Coordinates": [48.85, 2.35]', [(48.85, 2.35)]),
    ('"Coordinates": "(48.85, 2.35)"', [(48.85, 2.35)]),
    ("Latitude: 48.85\nLongitude: 2.35", [(48.85, 2.35)]),
    ("lat/lon: 48.85, 2.35", [(48.85, 2.35)]),
    ("lat=48.85&lng=2.35", [(48.85, 2.35)]),
    ("coords: 12.5/-70.0", [(12.5, -70.0)]),
    ("**Coordinates:** (35.68, 139.65)", [(35.68, 139.65)]),
    ("(48.85, 2.35) or (45.76, 4.83)", [(48.85, 2.35), (45.76, 4.83)]),
    ("(48.85, 2.35), (45.76, 4.83)", [(48.85, 2.35), (45.76, 4.83)]),
    # rejections and non-coordinates
    ("(95.0, 10.0)", []),
    ("(48.85, 200)", []),
    ("-48.85 N, 2 E", []),
    ("48°61'N 2°E", []),
    ("lat 48.85, lat 2.35", []),
    ("1990, 2000", []),
    ("There are 3 cars and 2 signs", []),
    ("It was built in 2019 by 1234 people", []),
    ("Version 1.2.3 and 4.5.6", []),
    ("", []),
]


@pytest.mark.parametrize(("text", "pairs"), COORDINATE_CASES)
def test_parse_coordinates(text: str, pairs: list[tuple[float, float]]) -> None:
    got = parse_coordinates(text)
    assert len(got) == len(pairs), got
    for (a, b), (c, d) in zip(got, pairs, strict=True):
        assert a == pytest.approx(c) and b == pytest.approx(d)


def test_rejections_are_recorded() -> None:
    assert scan_coordinates("(95.0, 10.0)").errors == ["coordinates out of range: (95, 10)"]
    assert scan_coordinates("-48.85 N, 2 E").errors[0].startswith("minus sign contradicts hemisphere N")
    assert scan_coordinates("48°61'N 2°E").errors[0].startswith("malformed coordinates")
    assert scan_coordinates("lat 48.85, lat 2.35").errors[0].startswith("two latitudes in a row")
    assert scan_coordinates("latitude: 48.85 E").errors[0].startswith("hemisphere E contradicts key 'lat'")
    assert parse_coordinates(None) == []  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Answer region, keys, names
# ---------------------------------------------------------------------------


def test_split_completion_rules() -> None:
    r = split_completion("<think>a</think> b </think> c")
    assert r.answer == " c" and r.reasoning == "a</think> b" and "2 </think> tags" in r.errors
    r = split_completion("<THINK>why</THINK><Answer>x</ANSWER>")
    assert r.answer == "x" and r.reasoning == "why" and r.answer_tag and r.errors == []
    r = split_completion("<think>a</think><answer>one</answer><answer>two</answer> tail")
    assert r.answer == "two" and "text after </answer>" in r.errors
    r = split_completion("<think>a</think> final </answer>")
    assert r.answer == " final " and "</answer> without <answer>" in r.errors
    r = split_completion("<think>never closed")
    assert "unclosed <think>" in r.errors and r.answer == "<think>never closed"
    r = split_completion("(1, 2) </answer> more")
    assert r.answer == "(1, 2) " and {"</answer> without <answer>", "text after </answer>"} <= set(r.errors)
    r = split_completion("<think>a</think><answer>x</answer><|im_end|>\n</s>")
    assert r.answer == "x" and r.errors == []
    r = split_completion("İ" * 10 + "<think>a</think>b")  # a character whose lower case is longer
    assert r.answer == "b" and r.reasoning == "a"


def test_caps_make_format_fail() -> None:
    gold = get_protocol("geor").format_answer(SAMPLES[0])
    long = gold + " " * MAX_COMPLETION_CHARS
    pred = get_protocol("geor").parse(long)
    assert not pred.format_ok
    assert any(e.startswith(f"completion has {len(long)} characters") for e in pred.errors)
    # A reasoning longer than the cap hides the answer.
    assert not get_protocol("geor").parse("<think>" + "x" * MAX_COMPLETION_CHARS + gold).format_ok
    # A digit flood in the answer is read only at its end, and is never a valid format.
    flood = "1 " * MAX_ANSWER_DIGITS + "(48.85, 2.35)"
    for name in ("plain", "cot"):
        pred = get_protocol(name).parse(flood)
        assert not pred.format_ok
        assert any("digits; read only its last" in e for e in pred.errors)
    many = "<think>a</think><answer>" + "Note: x\n" * 100 + gold.split("<answer>")[1]
    pred = get_protocol("geor").parse(many)
    assert not pred.format_ok and "answer holds too many fields; read only its end" in pred.errors


def test_scan_keys_forms() -> None:
    def levels(text: str) -> list[tuple[str, str]]:
        return [(f.level, f.value) for f in scan_keys(text).fields]

    assert levels("1. **Country**: France\n- __City__ = 'Paris'") == [
        ("country", "France"),
        ("city", "Paris"),
    ]
    assert levels("Final answer: Country: France, City: Paris") == [("country", "France"), ("city", "Paris")]
    assert levels("State/Province: Bavaria") == [("admin1", "Bavaria")]
    assert levels("Admin1: Bavaria\nPrefecture: Kyoto") == [("admin1", "Bavaria"), ("admin1", "Kyoto")]
    assert levels("国家：中国\n省：四川\n城市：成都\n坐标：(30.66, 104.06)") == [
        ("country", "中国"),
        ("admin1", "四川"),
        ("city", "成都"),
        ("coordinates", "(30.66, 104.06)"),
    ]
    assert levels("Coordinates (lat, lon): (1, 2)") == [("coordinates", "(1, 2)")]
    assert levels("Latitude, Longitude: 1, 2") == [("coordinates", "1, 2")]
    assert levels("Time: 12:30, see https://example.org") == []


@pytest.mark.parametrize(
    ("value", "name", "hedged"),
    [
        ("France", "France", False),
        ("likely France, possibly Belgium", "France", True),
        ("Probably Japan", "Japan", True),
        ("France or Belgium", "France", True),
        ("Paris (Île-de-France)", "Paris", False),
        ("Paris (or Lyon)", "Paris", True),
        ("Washington, D.C.", "Washington, D.C", False),
        ("Bosnia and Herzegovina", "Bosnia and Herzegovina", False),
        ("N/A", None, False),
        ("Unknown", None, False),
        ("Biel/Bienne", "Biel", True),
    ],
)
def test_clean_name(value: str, name: str | None, hedged: bool) -> None:
    errors: list[str] = []
    assert clean_name(value, "City", errors) == name
    assert any(e.startswith("hedged City") for e in errors) is hedged
    if name is None:
        assert errors == ["no value for City"]


def test_prediction_fields_are_finite() -> None:
    for name in ALL:
        for sample in SAMPLES:
            pred = get_protocol(name).parse(get_protocol(name).format_answer(sample))
            if pred.lat is not None:
                assert math.isfinite(pred.lat) and math.isfinite(pred.lon or 0.0)
