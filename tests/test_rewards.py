"""Reward functions: formula values at the breakpoints, the papers' products and tiers,
name matching through the gazetteer, judges and their failure paths, the registry."""

from __future__ import annotations

import doctest
import http.server
import json
import logging
import math
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import ClassVar

import numpy as np
import pytest

import georeason.rewards as R
from georeason.geo import haversine_km
from georeason.rewards import (
    REWARD_RANGES,
    REWARDS,
    JudgeError,
    KeywordJudge,
    LogprobJudge,
    RewardSpec,
    batch,
    consistency,
    formulas,
    geo_r,
    geor,
    geor_distance,
    geor_distance_from_km,
    geor_format,
    geoscore,
    geoscore_from_km,
    get_reward,
    globe_accuracy,
    globe_accuracy_from_matches,
    globe_format,
    globe_visual,
    hierarchy,
    hierarchy_from_matches,
    judges,
    load_rewards,
    locatability_from_logprobs,
    make_consistency,
    make_geor,
    make_globe_accuracy,
    make_globe_locatability,
    make_hierarchy,
    ours,
    registry,
)
from georeason.rewards import globe as globe_mod

EPS = 1e-6


def chain(country: str, city: str, lat: float, lon: float, state: str = "N/A") -> str:
    return (
        f"<think>Clues.</think>\n<answer>Country: {country}\nState: {state}\nCity: {city}\n"
        f"Coordinates: ({lat}, {lon})</answer>"
    )


def globe(country: str, city: str, think: str = "Clues.") -> str:
    return f"<think>{think}</think><answer>country: {country}\ncity: {city}</answer>"


# --------------------------------------------------------------------------- doctests


@pytest.mark.parametrize("module", [R, formulas, batch, geo_r, globe_mod, judges, ours, registry])
def test_doctests(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.failed == 0
    assert result.attempted > 0


def test_every_registered_reward_has_a_runnable_example() -> None:
    for name, func in REWARDS.items():
        assert func.__doc__ and ">>> " in func.__doc__, name
        assert func.__name__ == name
    for name, factory in registry.FACTORIES.items():
        target = getattr(factory, "func", factory)
        assert target.__doc__ and ">>> " in target.__doc__, name


# --------------------------------------------------------------------------- Geo-R formula


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (0.0, 1.0),
        (375.0, 0.75),
        (750.0, 0.5),
        (1625.0, 0.35),
        (2500.0, 0.2),
        (3000.0, 0.2 - 0.2 * 500 / 17500),  # the released code's 3000 km breakpoint would give 0.2
        (11250.0, 0.1),
        (20000.0, 0.0),
        (20015.1, 0.0),
        (1e6, 0.0),
    ],
)
def test_geor_distance_values(d: float, expected: float) -> None:
    assert geor_distance_from_km(d) == pytest.approx(expected, abs=1e-12)
    assert geor_distance_from_km(np.array([d]))[0] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("b", [750.0, 2500.0, 20000.0])
def test_geor_distance_is_continuous_at_breakpoints(b: float) -> None:
    left, mid, right = (geor_distance_from_km(x) for x in (b - EPS, b, b + EPS))
    assert abs(left - mid) < 1e-8 and abs(right - mid) < 1e-8


def test_geor_distance_slopes_per_piece() -> None:
    # 0.5 per 750 km, then 0.3 per 1750 km, then 0.2 per 17500 km
    assert geor_distance_from_km(100.0) - geor_distance_from_km(200.0) == pytest.approx(0.5 * 100 / 750)
    assert geor_distance_from_km(1000.0) - geor_distance_from_km(1100.0) == pytest.approx(0.3 * 100 / 1750)
    assert geor_distance_from_km(5000.0) - geor_distance_from_km(5100.0) == pytest.approx(0.2 * 100 / 17500)


def test_geor_distance_vector_matches_scalar_and_keeps_nan() -> None:
    d = np.array([0, 100, 749.9, 750, 750.1, 2499.9, 2500, 2500.1, 19999, 20000, 25000, np.nan])
    vec = geor_distance_from_km(d)
    assert np.isnan(vec[-1])
    np.testing.assert_allclose(vec[:-1], [geor_distance_from_km(float(x)) for x in d[:-1]], atol=1e-12)


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_formulas_reject_bad_scalar_distance(bad: float) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        geor_distance_from_km(bad)
    with pytest.raises(ValueError, match="non-negative"):
        geoscore_from_km(bad)


def test_geoscore_formula() -> None:
    assert geoscore_from_km(0.0) == 1.0
    assert geoscore_from_km(1492.7) == pytest.approx(math.exp(-1))
    assert geoscore_from_km(2 * 1492.7) == pytest.approx(math.exp(-2))
    assert geoscore_from_km(20015.0) == pytest.approx(math.exp(-20015.0 / 1492.7))


# --------------------------------------------------------------------------- Geo-R rewards

TOKYO = (35.6762, 139.6503)
OSAKA = (34.6937, 135.5023)


def test_geor_rewards_on_real_distance() -> None:
    d = haversine_km(*TOKYO, *OSAKA)
    c = chain("Japan", "Osaka", *OSAKA)
    expected = geor_distance_from_km(d)
    assert 0.5 < expected < 1.0
    cols = {"lat": [TOKYO[0]], "lon": [TOKYO[1]]}
    assert geor_distance([c], **cols) == [pytest.approx(expected)]
    assert geor_format([c], **cols) == [1.0]
    assert geor([c], **cols) == [pytest.approx(expected)]  # product with format 1


def test_geor_is_the_product_not_the_sum() -> None:
    hedged = "<answer>Country: Japan\nState: N/A\nCity: Tokyo\nCoordinates: (35.68, 139.69) or (34.69, 135.50)</answer>"
    cols = {"lat": [TOKYO[0]], "lon": [TOKYO[1]]}
    assert geor_format([hedged], **cols) == [0.0]
    assert geor_distance([hedged], **cols)[0] > 0.0  # one of the pairs is scored ...
    assert geor([hedged], **cols) == [0.0]  # ... but the product zeroes it (the code's sum would not)


def test_geor_no_coordinates_is_zero_and_no_truth_is_none() -> None:
    bad = ["I cannot tell where this is.", "<answer>Country: Japan\nCity: Tokyo</answer>", "", None]
    cols = {"lat": [TOKYO[0]] * 4, "lon": [TOKYO[1]] * 4}
    assert geor_distance(bad, **cols) == [0.0] * 4
    assert geor(bad, **cols) == [0.0] * 4
    assert geor_format(bad, **cols) == [0.0] * 4
    good = chain("Japan", "Tokyo", *TOKYO)
    out = geor([good] * 4, lat=[None, float("nan"), 95.0, "x"], lon=[1.0, 1.0, 1.0, 1.0])
    assert out == [None] * 4


def test_geor_accepts_conversational_completions_and_trl_extras() -> None:
    conv = [[{"role": "assistant", "content": chain("Japan", "Tokyo", *TOKYO)}]]
    out = geor(
        conv,
        prompts=[[{"role": "user", "content": "Where?"}]],
        completion_ids=[[1, 2, 3]],
        trainer_state=None,
        log_extra=lambda *a: None,
        log_metric=lambda *a: None,
        lat=[TOKYO[0]],
        lon=[TOKYO[1]],
    )
    assert out == [1.0]


def test_geor_with_other_protocol() -> None:
    plain = make_geor("product", protocol="plain", name="plain_geor")
    assert plain.__name__ == "plain_geor"
    assert plain(["(35.6762, 139.6503)"], lat=[TOKYO[0]], lon=[TOKYO[1]]) == [1.0]
    # a bare "lat, lon" is read (distance) but is not the paper's "(lat, lon)" format
    assert plain(["35.6762, 139.6503"], lat=[TOKYO[0]], lon=[TOKYO[1]]) == [0.0]
    lenient = make_geor("product", protocol="plain", strict_format=False)
    assert lenient(["35.6762, 139.6503"], lat=[TOKYO[0]], lon=[TOKYO[1]]) == [1.0]
    with pytest.raises(ValueError, match="unknown protocol"):
        make_geor(protocol="nope")
    with pytest.raises(ValueError, match="kind"):
        make_geor("sum")


# Completions as VLMs write them early in GRPO (truth: Kyoto, 35.0116, 135.7681).
KYOTO = (35.0116, 135.7681)
REALISTIC = [
    # (completion, geor_format, geor > 0, globe_format)
    (chain("Japan", "Kyoto", *KYOTO, state="Kyoto Prefecture"), 1.0, True, 1.0),  # has country/city lines
    # DMS and JSON keys are read, but r_format asks for "(lat, lon)" (strict_format, the paper's letter)
    ("<think>Temples, maples.</think>\n<answer>**Country:** Japan\n**State:** Kyoto\n**City:** Kyoto\n"
     "**Coordinates:** 35°0'42\"N, 135°46'5\"E</answer>", 0.0, False, 1.0),
    ("<answer>Country: Japan\nCity: Kyoto\nCoordinates: (35.01, 135.77)</answer>", 1.0, True, 0.0),  # no State
    (chain("Japan", "Kyoto", *KYOTO) + "\nI hope this helps!", 1.0, True, 0.0),  # text after the answer
    ("<answer>Country: Japan\nCity: Kyoto or Nara\nCoordinates: (35.01, 135.77) or (34.68, 135.80)</answer>",
     0.0, False, 0.0),
    ('<answer>{"Country": "Japan", "City": "Kyoto", "lat": 35.01, "lon": 135.77}</answer>', 0.0, False, 0.0),
    ("<think>Probably Japan.</think><answer>country: Japan\ncity: Kyoto</answer>", 0.0, False, 1.0),
    ("I think this is Kyoto, Japan, but I am not sure.", 0.0, False, 0.0),
]  # fmt: skip


@pytest.mark.parametrize(("text", "fmt", "positive", "globe_fmt"), REALISTIC)
def test_realistic_completions(text: str, fmt: float, positive: bool, globe_fmt: float) -> None:
    cols = {
        "lat": [KYOTO[0]],
        "lon": [KYOTO[1]],
        "country": ["Japan"],
        "city": ["Kyoto"],
        "entities": [["temple"]],
    }
    assert geor_format([text], **cols) == [fmt]
    (g,) = geor([text], **cols)
    assert g is not None and (g > 0.9 if positive else g == 0.0)
    assert globe_format([text], **cols) == [globe_fmt]
    for name, func in REWARDS.items():
        (value,) = func([text], **cols)
        lo, hi = REWARD_RANGES[name]
        assert value is None or lo <= value <= hi


def test_missing_or_misaligned_columns_raise_clear_errors() -> None:
    c = [chain("Japan", "Tokyo", *TOKYO)]
    with pytest.raises(KeyError, match="'lat' and 'lon'"):
        geor(c, country=["Japan"])
    with pytest.raises(ValueError, match="2 values for 1 completions"):
        geor(c, lat=[1.0, 2.0], lon=[1.0, 2.0])
    with pytest.raises(TypeError, match="one value per completion"):
        geor(c, lat=35.0, lon=139.0)
    with pytest.raises(KeyError, match="entities"):
        globe_visual(c)
    with pytest.raises(KeyError, match="ground-truth place columns"):
        globe_accuracy(c, entities=[[]])


# --------------------------------------------------------------------------- GLOBE accuracy


def test_globe_accuracy_formula_tiers() -> None:
    assert globe_accuracy_from_matches(True, True) == 1.0
    assert globe_accuracy_from_matches(True, False) == 0.2
    assert globe_accuracy_from_matches(False, True) == 0.0
    assert globe_accuracy_from_matches(False, False) == 0.0
    assert globe_accuracy_from_matches(True, False, alpha=0.5) == 0.5
    with pytest.raises(ValueError, match="alpha"):
        globe_accuracy_from_matches(True, True, alpha=1.5)


def test_globe_accuracy_one_point_two_zero() -> None:
    out = globe_accuracy(
        [globe("France", "Paris"), globe("France", "Lyon"), globe("Belgium", "Paris"), "no answer"],
        country=["France"] * 4,
        city=["Paris"] * 4,
    )
    assert out == [1.0, 0.2, 0.0, 0.0]


@pytest.mark.parametrize(
    ("pred_country", "pred_city", "true_country", "true_city"),
    [
        ("USA", "New York City", "United States", "New York City"),
        ("U.S.", "Chicago", "United States of America", "Chicago"),
        ("Ivory Coast", "Abidjan", "Côte d'Ivoire", "Abidjan"),
        ("Côte d’Ivoire", "Abidjan", "CI", "Abidjan"),
        ("Germany", "München", "Deutschland", "Munich"),
        ("GERMANY", "munich", "Germany", "München"),
        ("Czech Republic", "Praha", "Czechia", "Prague"),
        ("Türkiye", "Istanbul", "Turkey", "İstanbul"),
        ("UK", "London", "United Kingdom", "London"),
    ],
)
def test_globe_accuracy_aliases(pred_country: str, pred_city: str, true_country: str, true_city: str) -> None:
    key = "country_code" if len(true_country) == 2 else "country"
    assert globe_accuracy([globe(pred_country, pred_city)], **{key: [true_country]}, city=[true_city]) == [
        1.0
    ]


@pytest.mark.parametrize(
    ("pred_country", "pred_city", "true_country", "true_city", "expected"),
    [
        ("Georgia", "Tbilisi", "South Georgia and the South Sandwich Islands", "Tbilisi", 0.0),
        ("Niger", "Niamey", "Nigeria", "Niamey", 0.0),
        ("Austria", "Vienna", "Australia", "Vienna", 0.0),
        ("France", "Paris-Saclay", "France", "Paris", 0.2),  # not a substring match
        ("Dominican Republic", "Santo Domingo", "Dominica", "Santo Domingo", 0.0),
    ],
)
def test_globe_accuracy_is_not_a_substring_test(
    pred_country: str, pred_city: str, true_country: str, true_city: str, expected: float
) -> None:
    out = globe_accuracy([globe(pred_country, pred_city)], country=[true_country], city=[true_city])
    assert out == [expected]


def test_globe_accuracy_city_in_the_wrong_country_is_not_credited() -> None:
    # "Paris" is right by name, but the answer puts it in the USA (Paris, Texas)
    assert globe_accuracy([globe("United States", "Paris")], country=["France"], city=["Paris"]) == [0.0]


def test_globe_accuracy_alpha_and_missing_truth() -> None:
    acc = make_globe_accuracy(alpha=0.6, name="acc06")
    assert acc.__name__ == "acc06"
    assert acc([globe("Spain", "Bilbao")], country=["Spain"], city=["Madrid"]) == [pytest.approx(0.4)]
    assert globe_accuracy([globe("Spain", "Madrid")] * 2, country=[None, "Spain"], city=["Madrid", None]) == [
        None,
        None,
    ]
    with pytest.raises(ValueError, match="alpha"):
        make_globe_accuracy(alpha=-0.1)


def test_globe_accuracy_truth_from_coordinates_when_names_are_missing() -> None:
    # Only coordinates in the dataset (like IM2GPS3K): truth is reverse geocoded
    out = globe_accuracy(
        [globe("Japan", "Kyoto"), globe("Japan", "Osaka"), globe("China", "Kyoto")],
        lat=[35.0116] * 3,
        lon=[135.7681] * 3,
    )
    assert out == [1.0, 0.2, 0.0]
    strict = make_globe_accuracy(fill_from_coordinates=False)
    with pytest.raises(KeyError):
        strict([globe("Japan", "Kyoto")], lat=[35.0], lon=[135.7])


# --------------------------------------------------------------------------- GLOBE visual, format


def test_globe_visual_share_and_word_boundaries() -> None:
    text = globe("France", "Paris", think="A BUSINESS district, a Café terrace, the Tour Eiffel, a cyclist.")
    out = globe_visual(
        [text] * 5,
        entities=[
            ["café", "tour eiffel"],  # accents / case: both found
            ["bus", "cyclist"],  # "bus" is not in "business"
            [{"text": "terrace"}, {"text": "metro"}, {"text": "Terrace"}],  # dicts, duplicates counted once
            '["cyclist", "tram"]',  # JSON string column
            [],
        ],
    )
    assert out == [1.0, 0.5, 0.5, 0.5, None]


def test_globe_visual_reads_the_reasoning_not_the_answer() -> None:
    text = globe("France", "Lyon", think="Red roofs.")
    assert globe_visual([text], entities=[["Lyon", "red roofs"]]) == [0.5]
    # no think block: no reasoning, nothing mentioned (the paper); GLOBE's plugin searches it whole
    assert globe_visual(["red roofs, so Lyon"], entities=[["Lyon", "red roofs"]]) == [0.0]
    plugin = globe_mod.make_globe_visual(whole_text_if_untagged=True)
    assert plugin(["red roofs, so Lyon"], entities=[["Lyon", "red roofs"]]) == [1.0]


def test_globe_visual_non_latin_entities() -> None:
    text = globe("Japan", "Tokyo", think="看板に東京タワーと書いてある")
    assert globe_visual([text], entities=[["東京タワー", "富士山"]]) == [0.5]


def test_globe_format() -> None:
    good = globe("Norway", "Oslo")
    out = globe_format(
        [
            good,
            good + "\n  ",  # trailing whitespace is allowed
            good + " Hope this helps!",  # text after the answer
            "<answer>country: Norway\ncity: Oslo</answer>",  # no think
            "<think>x</think>",  # no answer
            "<think>a</think><think>b</think><answer>country: Norway\ncity: Oslo</answer>",
            [{"role": "assistant", "content": good}],
        ]
    )
    assert out == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]


# --------------------------------------------------------------------------- locatability


def test_locatability_formula() -> None:
    assert locatability_from_logprobs({"yes": math.log(0.3), "no": math.log(0.1)}) == pytest.approx(0.75)
    # GLOBE sums the case variants; spaces around tokens are stripped
    lp = {"yes": math.log(0.2), " Yes": math.log(0.2), "NO": math.log(0.1), "maybe": math.log(0.5)}
    assert locatability_from_logprobs(lp) == pytest.approx(0.8)
    assert locatability_from_logprobs([("no", 0.0)]) == 0.0
    with pytest.raises(JudgeError, match="no yes/no token"):
        locatability_from_logprobs({"maybe": 0.0})
    with pytest.raises(JudgeError, match="non-finite"):
        locatability_from_logprobs({"yes": float("nan")})


def test_logprob_judge_with_a_real_backend_function() -> None:
    seen: list[tuple[str, object, str]] = []

    def backend(text: str, image: object, system: str) -> dict[str, float]:
        seen.append((text, image, system))
        p = 0.9 if "signs" in text else 0.3
        return {"yes": math.log(p), "no": math.log(1 - p)}

    reward = make_globe_locatability(LogprobJudge(backend))
    out = reward(["Korean signs", "a white wall"], images=[b"img1", b"img2"])
    assert out == [pytest.approx(0.9), pytest.approx(0.3)]
    assert seen[0][1] == b"img1" and seen[0][2] == judges.GLOBE_JUDGE_PROMPT


def test_logprob_judge_thread_pool_keeps_order() -> None:
    judge = LogprobJudge(
        lambda t, i, s: {"yes": math.log(int(t) / 100), "no": math.log(1 - int(t) / 100)}, max_workers=4
    )
    texts = [str(k) for k in range(1, 60)]
    assert judge(texts) == pytest.approx([k / 100 for k in range(1, 60)])


def test_keyword_judge_orders_evidence_over_hedges() -> None:
    j = KeywordJudge()
    strong, empty, vague = j(
        [
            "Road signs in Hangul script, cars drive on the right, a Buddhist temple and mountains.",
            "",
            "A generic indoor close-up; impossible to tell, could be anywhere.",
        ]
    )
    assert strong > empty == 0.5 > vague
    assert all(0.0 <= p <= 1.0 for p in (strong, empty, vague))


def test_judge_failure_is_logged_and_none(caplog: pytest.LogCaptureFixture) -> None:
    def broken(texts: list[str], **_: object) -> list[float]:
        raise ConnectionError("judge server down")

    metrics: list[tuple[str, float]] = []
    reward = make_globe_locatability(broken)
    with caplog.at_level(logging.ERROR, logger="georeason.rewards"):
        out = reward(["a", "b"], log_metric=lambda name, value: metrics.append((name, value)))
    assert out == [None, None]  # never a silent 0
    assert "judge server down" in caplog.text
    assert metrics == [("globe_locatability/judge_failures", 2.0)]


def test_judge_failure_raises_in_raise_mode() -> None:
    def broken(texts: list[str], **_: object) -> list[float]:
        raise ConnectionError("judge server down")

    with pytest.raises(JudgeError, match="judge server down"):
        make_globe_locatability(broken, on_error="raise")(["a"])


def test_judge_item_failures(caplog: pytest.LogCaptureFixture) -> None:
    def backend(text: str, image: object, system: str) -> dict[str, float]:
        if text == "boom":
            raise TimeoutError("slow")
        if text == "mute":
            return {"maybe": 0.0}
        return {"yes": 0.0}

    reward = make_globe_locatability(LogprobJudge(backend))
    with caplog.at_level(logging.ERROR, logger="georeason.rewards"):
        out = reward(["fine", "boom", "mute"])
    assert out == [1.0, None, None]
    assert "2 of 3" in caplog.text and "slow" in caplog.text and "no yes/no token" in caplog.text
    with pytest.raises(JudgeError, match="2 of 3"):
        make_globe_locatability(LogprobJudge(backend), on_error="raise")(["fine", "boom", "mute"])


@pytest.mark.parametrize("bad", [[0.5], [0.5, 1.5], [0.5, float("nan")], [0.5, "high"], [0.5, None]])
def test_judge_bad_outputs_are_failures_not_zeros(
    bad: list[object], caplog: pytest.LogCaptureFixture
) -> None:
    reward = make_globe_locatability(lambda texts, **_: bad)
    with caplog.at_level(logging.ERROR, logger="georeason.rewards"):
        out = reward(["a", "b"])
    assert out[1] is None
    assert caplog.records
    with pytest.raises(JudgeError):
        make_globe_locatability(lambda texts, **_: bad, on_error="raise")(["a", "b"])


def test_locatability_configuration_errors() -> None:
    with pytest.raises(ValueError, match="needs a judge"):
        get_reward("globe_locatability")
    with pytest.raises(ValueError, match="on_error"):
        make_globe_locatability(KeywordJudge(), on_error="zero")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="judge_model"):
        make_globe_locatability("http://localhost:1/v1")
    with pytest.raises(TypeError, match="judge must be"):
        make_globe_locatability(42)
    assert isinstance(get_reward("globe_locatability", judge="keyword").judge, KeywordJudge)
    assert isinstance(
        get_reward("globe_locatability", judge="georeason.rewards.judges:KeywordJudge").judge, KeywordJudge
    )


def test_backend_judge_over_an_infer_backend(caplog: pytest.LogCaptureFixture) -> None:
    pil = pytest.importorskip("PIL.Image")
    import io

    from georeason.infer.base import Backend, Request, Response

    class TextBackend(Backend):
        """A deterministic backend: P(yes) from the text, (-inf, -inf) or None on cue."""

        name = "text"

        def __init__(self) -> None:
            self.seen: list[Request] = []

        def generate(self, requests: list[Request], **kw: object) -> list[Response]:
            return [Response(id=r.id, text="yes") for r in requests]

        def yes_no_logprobs(
            self, requests: list[Request], *, yes: str = "yes", no: str = "no"
        ) -> list[tuple[float, float] | None]:
            self.seen.extend(requests)
            out: list[tuple[float, float] | None] = []
            for r in requests:
                text = r.messages[-1]["content"][-1]["text"]
                if "fail" in text:
                    out.append(None)
                elif "silent" in text:
                    out.append((-math.inf, -math.inf))
                else:
                    p = 0.8 if "signs" in text else 0.2
                    out.append((math.log(p), math.log(1 - p)))
            return out

    buf = io.BytesIO()
    pil.new("L", (8, 6), 128).save(buf, format="PNG")
    backend = TextBackend()
    reward = make_globe_locatability(backend)
    assert isinstance(reward.judge, judges.BackendJudge)
    with caplog.at_level(logging.ERROR, logger="georeason.rewards"):
        out = reward(
            ["signs", "wall", "fail", "silent", "signs"],
            images=[[buf.getvalue()], None, None, None, b"not an image"],
        )
    assert out == [pytest.approx(0.8), pytest.approx(0.2), None, None, None]
    assert "3 of 5" in caplog.text and "cannot load the image" in caplog.text
    first = backend.seen[0]
    assert first.image is not None and first.image.mode == "RGB" and first.image.size == (8, 6)
    assert first.messages[0] == {"role": "system", "content": judges.GLOBE_JUDGE_PROMPT}
    assert first.messages[1]["content"][0] == {"type": "image"}
    assert backend.seen[1].image is None and backend.seen[1].messages[1]["content"][0]["type"] == "text"


class _JudgeServer(http.server.BaseHTTPRequestHandler):
    """A minimal OpenAI-compatible chat endpoint answering with fixed top log-probs."""

    requests: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        text = body["messages"][1]["content"][-1]["text"]
        if text == "error":
            self.send_response(500)
            self.send_header("Retry-After", "0.01")
            self.send_header("Content-Length", "14")
            self.end_headers()
            self.wfile.write(b"internal error")
            return
        p = 0.8 if "signs" in text else 0.1
        top = [{"token": "Yes", "logprob": math.log(p)}, {"token": "No", "logprob": math.log(1 - p)}]
        payload = {
            "choices": [{"logprobs": {"content": [{"token": "Yes", "logprob": 0.0, "top_logprobs": top}]}}]
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def judge_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _JudgeServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _JudgeServer.requests = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _png(size: tuple[int, int] = (8, 6)) -> bytes:
    pil = pytest.importorskip("PIL.Image")
    import io

    buf = io.BytesIO()
    pil.new("RGB", size, (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("spec", ["url", "openai"])
def test_openai_compatible_judge_over_http(
    judge_server: str, spec: str, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("openai")
    if spec == "url":
        reward = make_globe_locatability(
            judge_server, judge_model="qwen2.5-vl", judge_options={"max_retries": 1}
        )
    else:  # the same server as openai:URL:MODEL, the form distill's teachers use
        reward = get_reward(
            "globe_locatability", judge=f"openai:{judge_server}:qwen2.5-vl", judge_options={"max_retries": 1}
        )
    assert isinstance(reward.judge, judges.BackendJudge) and reward.judge.backend.name == "openai"
    with caplog.at_level(logging.ERROR, logger="georeason.rewards"):
        out = reward(["street signs in Thai", "a wall", "error"], images=[_png(), None, None])
    assert out == [pytest.approx(0.8), pytest.approx(0.1), None]
    assert "HTTP 500" in caplog.text and "gave up after 2 attempts" in caplog.text
    first = next(
        r for r in _JudgeServer.requests if r["messages"][1]["content"][-1]["text"].startswith("street")
    )
    assert first["model"] == "qwen2.5-vl" and first["logprobs"] is True and first["max_tokens"] == 1
    assert first["messages"][0] == {"role": "system", "content": judges.GLOBE_JUDGE_PROMPT}
    assert first["messages"][1]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    reward.judge.backend.close()
    clone = pickle.loads(pickle.dumps(reward))  # a reward travels to TRL's workers: settings only
    assert clone(["street signs again"]) == [pytest.approx(0.8)]
    assert clone.judge.backend.max_retries == 1 and clone.judge.backend.model_name == "qwen2.5-vl"
    clone.judge.backend.close()


def test_openai_judge_unreachable_is_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("openai")
    from georeason.serve.process import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    reward = make_globe_locatability(url, judge_model="m", judge_options={"max_retries": 0, "timeout": 2})
    with caplog.at_level(logging.ERROR, logger="georeason.rewards"):
        assert reward(["text"]) == [None]
    assert "connection error" in caplog.text
    with pytest.raises(JudgeError, match="connection error"):
        make_globe_locatability(url, judge_model="m", judge_options={"max_retries": 0}, on_error="raise")(
            ["text"]
        )
    with pytest.raises(ValueError, match="openai:URL"):
        make_globe_locatability("openai:localhost:8000")
    with pytest.raises(ValueError, match="judge_model"):
        make_globe_locatability(f"openai:{url}")


# --------------------------------------------------------------------------- hierarchy


def test_hierarchy_formula() -> None:
    w = {"continent": 0.1, "country": 0.3, "admin1": 0.3, "city": 0.3}
    assert hierarchy_from_matches(dict.fromkeys(w, True), w) == 1.0
    assert hierarchy_from_matches(dict.fromkeys(w, False), w) == 0.0
    assert (
        hierarchy_from_matches({"continent": True, "country": True, "admin1": False, "city": False}, w) == 0.4
    )
    # a level without truth leaves numerator and denominator
    assert hierarchy_from_matches({"continent": True, "country": True, "admin1": None, "city": False}, w) == (
        pytest.approx(0.4 / 0.7)
    )
    assert hierarchy_from_matches({"admin1": None}, w) is None


def test_hierarchy_levels() -> None:
    ans = chain("Germany", "Munich", 48.14, 11.58, state="Bavaria")
    cols = {
        "continent": ["EU"] * 4,
        "country": ["Germany", "Germany", "Germany", "Austria"],
        "admin1": ["Bavaria", "Bavaria", "Hesse", "Salzburg"],
        "city": ["München", "Nuremberg", "Frankfurt am Main", "Munich"],
    }
    assert hierarchy([ans] * 4, **cols) == [
        pytest.approx(1.0),
        pytest.approx(0.7),  # continent + country + admin1
        pytest.approx(0.4),  # continent + country
        pytest.approx(0.1),  # continent only: the city name "Munich" does not count in Austria
    ]


def test_hierarchy_continent_from_country_and_weights() -> None:
    ans = chain("Brazil", "Recife", -8.05, -34.9)
    assert hierarchy([ans], continent=["South America"], country_code=["AR"], city=["Recife"]) == [
        pytest.approx(0.1 / 0.7)  # continent SA inferred from Brazil; admin1 has no truth
    ]
    h = make_hierarchy({"country": 1.0, "city": 1.0})
    assert h([ans], country_code=["BR"], city=["Salvador"]) == [0.5]
    for bad in ({"town": 1.0}, {"city": -1.0}, {"city": 0.0}):
        with pytest.raises(ValueError):
            make_hierarchy(bad)


def test_hierarchy_truth_from_coordinates() -> None:
    ans = chain("France", "Paris", 48.8566, 2.3522, state="Île-de-France")
    assert hierarchy([ans], lat=[48.8566], lon=[2.3522]) == [1.0]
    assert hierarchy([ans], lat=[None], lon=[None]) == [None]


# --------------------------------------------------------------------------- consistency


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (chain("France", "Paris", 48.8566, 2.3522), 1.0),
        (chain("FR", "Paris", 48.8566, 2.3522), 1.0),
        (chain("France", "Versailles", 48.80, 2.13), 1.0),
        (chain("France", "Paris", 48.90, 2.25), 1.0),  # a suburb's coordinates, within 50 km of Paris
        (chain("France", "Paris", 40.4168, -3.7038), 0.0),  # Madrid's coordinates
        (chain("Spain", "Paris", 40.4168, -3.7038), 0.0),  # country agrees, city does not
        (chain("France", "Lyon", 48.8566, 2.3522), 0.0),  # 390 km away
        (chain("Atlantis", "Paris", 48.8566, 2.3522), 0.0),  # a name that is no country
        (chain("Germany", "München", 48.137, 11.575), 1.0),  # alias of the nearest place
        ("<answer>City: Kyoto\nCoordinates: (35.01, 135.77)</answer>", 1.0),  # city only
        ("<answer>Country: Japan\nCoordinates: (35.01, 135.77)</answer>", 1.0),  # country only
        ("<answer>Coordinates: (35.01, 135.77)</answer>", None),  # no names
        ("<answer>Country: Japan\nCity: Kyoto</answer>", None),  # no coordinates
        ("", None),
    ],
)
def test_consistency(answer: str, expected: float | None) -> None:
    assert consistency([answer]) == [expected]


def test_consistency_radius() -> None:
    ans = chain("France", "Paris", 48.90, 2.25)  # ~ 9 km from Paris' centre, nearest place is a suburb
    assert make_consistency(city_radius_km=50)([ans]) == [1.0]
    assert make_consistency(city_radius_km=1)([ans]) == [0.0]
    with pytest.raises(ValueError, match="radius"):
        make_consistency(city_radius_km=0)


# --------------------------------------------------------------------------- geoscore


def test_geoscore_reward() -> None:
    d = haversine_km(48.8566, 2.3522, 45.764, 4.8357)
    out = geoscore([chain("France", "Paris", 48.8566, 2.3522), "nothing"], lat=[45.764] * 2, lon=[4.8357] * 2)
    assert out == [pytest.approx(math.exp(-d / 1492.7)), 0.0]
    assert geoscore(["x"], lat=[None], lon=[None]) == [None]
    gs = ours.make_geoscore(protocol="globe")
    assert gs([globe("France", "Paris")], lat=[48.8566], lon=[2.3522])[0] == pytest.approx(1.0, abs=1e-3)
    no_geo = ours.make_geoscore(protocol="globe", geocode_names=False)
    assert no_geo([globe("France", "Paris")], lat=[48.8566], lon=[2.3522]) == [0.0]


# --------------------------------------------------------------------------- registry


def test_registry_and_ranges() -> None:
    assert set(REWARDS) <= set(REWARD_RANGES)
    assert set(registry.FACTORIES) <= set(REWARD_RANGES)
    for name in REWARDS:
        assert get_reward(name) is REWARDS[name]
        assert get_reward(f"  {name} ") is REWARDS[name]
    acc = get_reward("globe_accuracy", alpha=0.5)
    assert acc.__name__ == "globe_accuracy" and acc.alpha == 0.5  # type: ignore[attr-defined]


def test_get_reward_dotted_paths() -> None:
    assert get_reward("georeason.rewards.ours:geoscore") is geoscore
    assert get_reward("georeason.rewards.ours.geoscore") is geoscore
    h = get_reward("georeason.rewards.ours:make_hierarchy", weights={"city": 1.0})
    assert h.weights == {"city": 1.0}  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"cannot import module 'no_such_pkg\.mod'"):
        get_reward("no_such_pkg.mod:f")
    with pytest.raises(ValueError, match="has no attribute 'nope'"):
        get_reward("georeason.rewards.ours:nope")
    with pytest.raises(TypeError, match="not a callable"):
        get_reward("georeason.rewards.formulas:GLOBE_ALPHA")
    with pytest.raises(ValueError, match="did you mean 'geoscore'"):
        get_reward("geoscor")
    with pytest.raises(ValueError, match="non-empty"):
        get_reward("")


def test_reward_spec_parsing() -> None:
    assert RewardSpec.parse("geor") == RewardSpec("geor", 1.0)
    assert RewardSpec.parse("geor:0.5") == RewardSpec("geor", 0.5)
    assert RewardSpec.parse(" globe_format : -1 ") == RewardSpec("globe_format", -1.0)
    assert RewardSpec.parse("pkg.mod:fn") == RewardSpec("pkg.mod:fn", 1.0)
    assert RewardSpec.parse("pkg.mod:fn:2") == RewardSpec("pkg.mod:fn", 2.0)
    for bad in ("", ":1", "geor:inf", "geor:nan"):
        with pytest.raises(ValueError):
            RewardSpec.parse(bad)


def test_load_rewards() -> None:
    funcs, weights = load_rewards(
        ["globe_accuracy:1", "globe_locatability:0.5", "globe_visual:0.5", "globe_format"],
        options={"globe_locatability": {"judge": "keyword"}},
    )
    assert [f.__name__ for f in funcs] == [
        "globe_accuracy",
        "globe_locatability",
        "globe_visual",
        "globe_format",
    ]
    assert weights == [1.0, 0.5, 0.5, 1.0]
    funcs, weights = load_rewards({"geor": 1.0, "consistency": 0.2})
    assert [f.__name__ for f in funcs] == ["geor", "consistency"] and weights == [1.0, 0.2]
    with pytest.raises(ValueError, match="share the name"):
        load_rewards(["geor", "geor:2"])
    with pytest.raises(ValueError, match="not in the list"):
        load_rewards(["geor"], options={"hierarchy": {}})
    with pytest.raises(ValueError, match="at least one"):
        load_rewards([])
    with pytest.raises(TypeError, match="list"):
        load_rewards("geor:1")  # type: ignore[arg-type]


def test_rewards_are_picklable_and_named_for_trl() -> None:
    trl_utils = pytest.importorskip("trl.trainer.utils")
    objs = [
        *REWARDS.values(),
        make_globe_accuracy(alpha=0.5, name="acc05"),
        make_hierarchy({"city": 1.0}),
        make_consistency(city_radius_km=10),
        make_geor("distance", protocol="cot"),
        make_globe_locatability(KeywordJudge()),
    ]
    for f in objs:
        clone = pickle.loads(pickle.dumps(f))
        assert trl_utils.get_callable_name(clone) == f.__name__
    assert trl_utils.get_callable_name(objs[len(REWARDS)]) == "acc05"
    sample = chain("Japan", "Tokyo", *TOKYO)
    clone = pickle.loads(pickle.dumps(make_geor("distance")))
    assert clone([sample], lat=[TOKYO[0]], lon=[TOKYO[1]]) == [1.0]


def test_parse_once_per_protocol_and_text() -> None:
    batch.clear_parse_cache()
    texts = [chain("Japan", "Tokyo", *TOKYO)] * 8
    cols = {"lat": [TOKYO[0]] * 8, "lon": [TOKYO[1]] * 8}
    geor(texts, **cols)
    geor_distance(texts, **cols)
    info = batch._parse_text.cache_info()
    assert info.misses == 1 and info.hits >= 15


def test_rewards_import_without_torch() -> None:
    code = (
        "import sys, georeason.rewards; "
        "bad = [m for m in ('torch', 'transformers', 'trl') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_geor_format_is_zero_when_the_parser_read_only_part_of_the_answer() -> None:
    # A flood of numbers makes the parser cap its scan: it cannot know the answer
    # holds exactly one pair, so r_format must not be 1 (the paper's condition).
    from georeason.protocols import get_protocol

    head = "<think>x</think><answer>Country: France\nState: Ile-de-France\nCity: Paris\nCoordinates: "
    flood = head + "1" * 400 + " (48.85, 2.35)</answer>"
    clean = head + "(48.85, 2.35)</answer>"
    pred = get_protocol("geor").parse(flood)
    assert pred.truncated and pred.n_coordinates == 1 and not pred.format_ok
    assert get_reward("geor_format")([flood, clean]) == [0.0, 1.0]
