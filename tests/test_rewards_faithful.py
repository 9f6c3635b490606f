"""Issue 12 ("Faithful to the letter"), parts 1 and 4: the Geo-R and GLOBE rewards read
completions as the papers define them, and log what they saw through TRL.

Each test pins one case that used to score wrong:

- GLOBE's visual reward credited entities named in the *answer* when the reasoning was
  empty, and missed plurals ("two buses" for "bus");
- a generation cut inside a number, "(43.452002, 14", was read as a pair and earned
  Geo-R's format reward; a thousands separator, "45,120", became a second pair;
- Geo-R's r_format accepted any notation; the paper asks for one "(lat, lon)" pair;
- the rewards did not use TRL's ``log_extra`` / ``log_metric``.
"""

from __future__ import annotations

import doctest
import pickle
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import georeason.protocols as protocols_pkg
from georeason.geo import haversine_km
from georeason.protocols import base, get_protocol
from georeason.protocols.parsing import COORDINATE_FORMS, PAREN, coordinates, fields, scan_coordinates
from georeason.rewards import (
    GeoRReward,
    geor,
    geor_distance,
    geor_format,
    geoscore,
    get_reward,
    globe_visual,
    load_rewards,
    make_geor,
)
from georeason.rewards.batch import log_coordinates, mentions
from georeason.rewards.geo_r import format_reward
from georeason.rewards.globe import GlobeVisual, make_globe_visual

BIEI = (43.452, 142.615)


def chain(coords: str, think: str = "Snow, rolling fields, kanji signs.") -> str:
    return (
        f"<think>{think}</think>\n<answer>Country: Japan\nState: Hokkaido\nCity: Biei\n"
        f"Coordinates: {coords}</answer>"
    )


@pytest.mark.parametrize("module", [coordinates, fields, base, protocols_pkg])
def test_protocol_doctests(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.failed == 0 and result.attempted > 0


# --------------------------------------------------------------------------- 1. GLOBE: reasoning only


def test_globe_visual_empty_reasoning_scores_zero_whatever_the_answer_says() -> None:
    text = "<think></think><answer>country: France\ncity: Paris near the Eiffel Tower</answer>"
    assert globe_visual([text], entities=[["Eiffel Tower"]]) == [0.0]
    # ... and the same with the option that searches untagged completions: this one has tags
    assert make_globe_visual(whole_text_if_untagged=True)([text], entities=[["Eiffel Tower"]]) == [0.0]
    # the reasoning, not the answer, earns the credit
    good = "<think>The Eiffel Tower.</think><answer>country: France\ncity: Paris</answer>"
    assert globe_visual([good], entities=[["Eiffel Tower"]]) == [1.0]


def test_globe_visual_without_think_tags_scores_zero_unless_asked() -> None:
    untagged = [
        "<answer>country: France\ncity: Paris near the Eiffel Tower</answer>",
        "The Eiffel Tower. <answer>country: France\ncity: Paris</answer>",  # text before, no tags
        "Paris, by the Eiffel Tower.",
    ]
    ents = [["Eiffel Tower"]] * 3
    assert globe_visual(untagged, entities=ents) == [0.0, 0.0, 0.0]
    plugin = make_globe_visual(whole_text_if_untagged=True, name="globe_visual_plugin")
    assert plugin(untagged, entities=ents) == [1.0, 1.0, 1.0]
    # only "</think>" (the template opened the block): its reasoning counts
    assert globe_visual(["The Eiffel Tower.</think><answer>country: France\ncity: Paris</answer>"],
                        entities=[["Eiffel Tower"]]) == [1.0]  # fmt: skip


def test_think_tag_field_and_protocol_flag() -> None:
    globe = get_protocol("globe")
    assert globe.reasoning_in_think_tags and get_protocol("geor").reasoning_in_think_tags
    assert not get_protocol("cot").reasoning_in_think_tags
    assert globe.parse("<THINK>x</THINK><answer>country: A\ncity: B</answer>").think_tag
    assert globe.parse("x</think>y").think_tag
    assert not globe.parse("<answer>country: A\ncity: B</answer>").think_tag
    assert not globe.parse([{"role": "assistant", "content": "no tags"}]).think_tag


def test_globe_visual_cot_reasoning_is_free_text() -> None:
    # cot asks for no tags: its reasoning is the text before the final answer line
    vis = GlobeVisual(protocol="cot")
    text = "A tram and red roofs.\nCoordinates: (45.76, 4.83)"
    assert vis([text], entities=[["tram", "harbour"]]) == [0.5]


def test_globe_visual_options_reach_the_factory_through_the_registry() -> None:
    f = get_reward("globe_visual", whole_text_if_untagged=True)
    assert isinstance(f, GlobeVisual) and f.whole_text_if_untagged
    funcs, _ = load_rewards(["globe_visual"], {"globe_visual": {"protocol": "globe"}})
    assert isinstance(funcs[0], GlobeVisual) and not funcs[0].whole_text_if_untagged
    clone = pickle.loads(pickle.dumps(f))
    assert clone(["Paris."], entities=[["paris"]]) == [1.0]


# --------------------------------------------------------------------------- 2. GLOBE: inflections


@pytest.mark.parametrize(
    ("entities", "text", "hits"),
    [
        (["building", "palm tree", "bus"], "Tall buildings, palm trees and two buses", 3),
        (["city", "church", "box", "tomato", "leaf", "person"], "Cities, churches, boxes, tomatoes, leaves, people", 6),
        (["palm trees", "road signs"], "one palm tree by a road-sign", 2),  # plural entity, singular text
        (["tuk tuk"], "a tuk-tuk", 1),
        (["tuk-tuk"], "two tuk tuks and a tuktuk", 1),
        (["café", "Straße"], "CAFES on the strasse", 2),  # accents; "ß" casefolds to "ss"
        (["bus"], "buses and busses", 1),
        (["tree"], "a street", 0),
        (["bus"], "the business district", 0),
        (["temple"], "Templeton", 0),
        (["news"], "a new road", 0),  # "news" is not the plural of "new"
        (["tree"], "treetops", 0),
        (["東京タワー"], "看板に東京タワーと書いてある", 1),  # no spaces in the script: substring
    ],
)  # fmt: skip
def test_mentions_inflections_and_word_boundaries(entities: list[str], text: str, hits: int) -> None:
    assert mentions(entities, text) == (hits, len(entities))


def test_singular_and_plural_entities_count_once() -> None:
    assert mentions(["bus", "buses", "Bus"], "a bus") == (1, 1)
    assert mentions(["palm tree", "palm trees"], "no") == (0, 1)


def test_globe_visual_counts_plurals() -> None:
    text = (
        "<think>Tall buildings, palm trees and two buses.</think><answer>country: Cuba\ncity: Havana</answer>"
    )
    assert globe_visual([text], entities=[["building", "palm tree", "bus", "street"]]) == [0.75]


# --------------------------------------------------------------------------- 3. cut inside a number


def test_a_pair_cut_inside_a_number_is_no_pair() -> None:
    cut = "<think>Snow.</think>\n<answer>Country: Japan\nState: Hokkaido\nCity: Biei\nCoordinates: (43.452002, 14"
    pred = get_protocol("geor").parse(cut)
    assert pred.n_coordinates == 0 and pred.lat is None
    assert any("unclosed" in e for e in pred.errors)
    cols = {"lat": [BIEI[0]], "lon": [BIEI[1]]}
    assert geor_format([cut], **cols) == [0.0]
    assert geor([cut], **cols) == [0.0]
    assert geor_distance([cut], **cols) == [0.0]  # no location given
    assert make_geor("format", strict_format=False)([cut]) == [0.0]  # lenient too: it is no pair


@pytest.mark.parametrize(
    "text",
    ["(43.452002, 14", "[43.45, 14", "{'LOC': [43.45, 14", "(43.45, 142.6) or (35.0, 13"],
)
def test_unclosed_brackets_reject_the_pair(text: str) -> None:
    scan = scan_coordinates(text)
    assert all(p == (43.45, 142.6) for p in scan.pairs), scan
    assert any(e.startswith("unclosed") for e in scan.errors)


def test_closed_brackets_still_read() -> None:
    assert scan_coordinates("(43.452, 142.615) and more text").pairs == [BIEI]
    assert scan_coordinates("(43.452, 142.615, 250 m)").pairs == [BIEI]
    assert scan_coordinates("(43.452,\n 142.615)").pairs == [BIEI]
    assert scan_coordinates("(43.452, 142.615 (approximately))").pairs == [BIEI]


# --------------------------------------------------------------------------- 4. thousands separators


def test_a_thousands_separator_is_not_a_second_pair() -> None:
    text = chain("(43.452, 142.615)").replace("City: Biei", "City: Biei (population 45,120)")
    pred = get_protocol("geor").parse(text)
    assert pred.n_coordinates == 1 and (pred.lat, pred.lon) == BIEI
    assert geor([text], lat=[BIEI[0]], lon=[BIEI[1]]) == [1.0]
    assert geor_format([text]) == [1.0]


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("population 1,234,567 (43.452, 142.615)", [BIEI]),
        ("elevation 1,200 m; 43.452, 142.615", [BIEI]),
        ("(45,120)", []),  # read as the number 45120: the prompts ask for "(lat, lon)" decimals
        ("(45, 120)", [(45.0, 120.0)]),  # with a space it is a pair
        ("(45,12)", [(45.0, 12.0)]),  # two digits after the comma: no thousands separator
        ("(45,-120)", [(45.0, -120.0)]),  # a sign: no thousands separator
        ("[48.850000,2.350000]", [(48.85, 2.35)]),  # decimals without a space
    ],
)
def test_thousands_separator_rule(text: str, pairs: list[tuple[float, float]]) -> None:
    assert scan_coordinates(text).pairs == pairs


# --------------------------------------------------------------------------- 5. strict r_format


NOTATIONS = [
    ("(43.452, 142.615)", PAREN),
    ("(43.452°, 142.615°)", PAREN),
    ("( -43.452 , -142.615 )", PAREN),
    ("43°27'07\"N, 142°36'54\"E", "dms"),
    ("43.452 N, 142.615 E", "hemisphere"),
    ("(43.452 N, 142.615 E)", "hemisphere"),
    ("lat: 43.452, lon: 142.615", "keyed"),
    ('{"lat": 43.452, "lon": 142.615}', "keyed"),
    ("[43.452, 142.615]", "bracket"),
    ("{'LOC': [43.452, 142.615]}", "bracket"),  # the released Geo-R code's answer
    ("43.452, 142.615", "bare"),
    ("(43.452; 142.615)", "bare"),
    ("(43.452, 142.615, 250)", "bare"),
]


@pytest.mark.parametrize(("coords", "form"), NOTATIONS)
def test_strict_format_asks_for_lat_lon_in_parentheses(coords: str, form: str) -> None:
    text = chain(coords)
    pred = get_protocol("geor").parse(text)
    assert pred.n_coordinates == 1 and pred.coordinate_forms == [form]
    assert form in COORDINATE_FORMS
    strict = 1.0 if form == PAREN else 0.0
    assert format_reward(pred) == strict and format_reward(pred, strict=False) == 1.0
    truth = {"lat": [abs(BIEI[0]) if "-" not in coords else -BIEI[0]],
             "lon": [BIEI[1] if "-" not in coords else -BIEI[1]]}  # fmt: skip
    assert geor_format([text]) == [strict]
    assert geor([text], **truth) == [pytest.approx(strict, abs=1e-3)]
    assert geor_distance([text], **truth) == [pytest.approx(1.0, abs=1e-3)]  # the parser reads them all
    lenient = make_geor("product", strict_format=False)
    assert lenient([text], **truth) == [pytest.approx(1.0, abs=1e-3)]


def test_pairs_inside_think_do_not_count() -> None:
    text = chain("(43.452, 142.615)", think="(35.68, 139.69) or (43.45, 142.61)? The snow says Hokkaido.")
    assert geor_format([text]) == [1.0]
    assert get_protocol("geor").parse(text).n_coordinates == 1


def test_strict_format_option_reaches_the_factories() -> None:
    assert GeoRReward().strict_format
    for name in ("geor", "geor_format", "geor_distance"):
        f = get_reward(name, strict_format=False)
        assert isinstance(f, GeoRReward) and not f.strict_format and f.__name__ == name
    funcs, weights = load_rewards(["geor:1", "geor_format:0.5"], {"geor_format": {"strict_format": False}})
    assert funcs[0] is geor and weights == [1.0, 0.5]  # no options: the paper's default, strict
    assert isinstance(funcs[1], GeoRReward) and not funcs[1].strict_format
    clone = pickle.loads(pickle.dumps(funcs[1]))
    assert not clone.strict_format and "strict_format=False" in repr(clone)


def test_globe_protocol_reports_forms_too() -> None:
    pred = get_protocol("globe").parse(
        "<think>.</think><answer>country: Japan\ncity: Biei (43.45 N, 142.6 E)</answer>"
    )
    assert pred.n_coordinates == 1 and pred.coordinate_forms == ["hemisphere"]


# --------------------------------------------------------------------------- issue part 4: logging


class Recorder:
    """The two callables TRL's GRPOTrainer passes, recording as the trainer does."""

    def __init__(self) -> None:
        self.extra: dict[str, list[Any]] = defaultdict(list)
        self.metrics: dict[str, list[float]] = defaultdict(list)

    def log_extra(self, column: str, values: list[Any]) -> None:
        self.extra[column].extend(values)

    def log_metric(self, name: str, value: float) -> None:
        self.metrics[name].append(value)

    def kwargs(self) -> dict[str, Any]:
        return {"log_extra": self.log_extra, "log_metric": self.log_metric}


def test_geor_logs_parsed_coordinates_and_error_km() -> None:
    rec = Recorder()
    osaka = (34.6937, 135.5023)
    texts = [chain("(43.452, 142.615)"), chain(f"({osaka[0]}, {osaka[1]})"), "no idea"]
    out = geor(texts, lat=[BIEI[0]] * 3, lon=[BIEI[1]] * 3, trainer_state=None, **rec.kwargs())
    assert out[0] == 1.0 and out[2] == 0.0
    assert rec.extra["geor/lat"] == [BIEI[0], osaka[0], None]
    assert rec.extra["geor/lon"] == [BIEI[1], osaka[1], None]
    err = rec.extra["geor/error_km"]
    assert err[0] == pytest.approx(0.0, abs=1e-9) and err[2] is None
    assert err[1] == pytest.approx(float(haversine_km(*osaka, *BIEI)))
    assert rec.metrics["geor/coordinates_rate"] == [pytest.approx(2 / 3)]
    assert rec.metrics["geor/median_error_km"] == [pytest.approx(err[1] / 2)]
    assert set(rec.extra) == {"geor/lat", "geor/lon", "geor/error_km"}


def test_geoscore_and_format_log_under_their_own_names() -> None:
    rec = Recorder()
    text = chain("(43.452, 142.615)")
    geoscore([text], lat=[BIEI[0]], lon=[BIEI[1]], **rec.kwargs())
    geor_format([text], **rec.kwargs())  # no truth in the batch: coordinates only
    assert rec.extra["geoscore/lat"] == [BIEI[0]] and rec.extra["geoscore/error_km"] == [pytest.approx(0.0)]
    assert rec.extra["geor_format/lon"] == [BIEI[1]] and "geor_format/error_km" not in rec.extra
    assert "geoscore/median_error_km" in rec.metrics and "geor_format/median_error_km" not in rec.metrics


def test_logging_is_optional_and_needs_only_what_is_given() -> None:
    text = chain("(43.452, 142.615)")
    assert geor([text], lat=[BIEI[0]], lon=[BIEI[1]]) == [1.0]
    assert geor([text], lat=[BIEI[0]], lon=[BIEI[1]], log_extra=None, log_metric=None) == [1.0]
    seen: list[tuple[str, float]] = []
    out = geoscore([text], lat=[BIEI[0]], lon=[BIEI[1]], log_metric=lambda k, v: seen.append((k, v)))
    assert out == [1.0]
    assert [k for k, _ in seen] == ["geoscore/coordinates_rate", "geoscore/median_error_km"]
    log_coordinates({}, "x", np.array([1.0]), np.array([2.0]))  # nothing to log to: a no-op


@pytest.mark.requires("trl")
def test_logging_through_trls_own_trainer_methods() -> None:
    # The real callables: GRPOTrainer's bound methods on a stand-in holding their buffers.
    import trl.trainer.grpo_trainer as grpo

    state = SimpleNamespace(_pending_extra_logs=defaultdict(list), _pending_metrics=defaultdict(list))
    kwargs = {
        "log_extra": grpo.GRPOTrainer._log_completion_extra.__get__(state),
        "log_metric": grpo.GRPOTrainer._log_metric.__get__(state),
    }
    texts = [chain("(43.452, 142.615)")] * 4
    geor(texts, lat=[BIEI[0]] * 4, lon=[BIEI[1]] * 4, **kwargs)
    assert state._pending_extra_logs["geor/lat"] == [BIEI[0]] * 4
    assert len(state._pending_extra_logs["geor/error_km"]) == 4
    assert state._pending_metrics["geor/coordinates_rate"] == [1.0]
