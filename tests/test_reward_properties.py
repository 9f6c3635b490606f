"""Property tests: any completion and any column values give, for every reward, None or a
finite float within the reward's declared range — never an exception."""

from __future__ import annotations

import math

import numpy as np
from hostile import HostileStr, Unprintable  # tests/hostile.py
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from georeason.rewards import (
    REWARD_RANGES,
    REWARDS,
    KeywordJudge,
    geor_distance_from_km,
    geoscore_from_km,
    globe_accuracy_from_matches,
    hierarchy_from_matches,
    locatability_from_logprobs,
    make_globe_locatability,
)
from georeason.rewards.formulas import HIERARCHY_LEVELS, JudgeError

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ALL_REWARDS = {**REWARDS, "globe_locatability": make_globe_locatability(KeywordJudge())}

COUNTRIES = ["France", "USA", "Côte d'Ivoire", "Japan", "Brasil", "DE", "Atlantis", "", "Georgia", "日本"]
CITIES = ["Paris", "NYC", "München", "Springfield", "東京", "São Paulo", "", "X Æ A-12", "Lyon"]
FRAGMENTS = [
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "Country: ",
    "country: ",
    "State: ",
    "City: ",
    "city: ",
    "Continent: Europe\n",
    "Coordinates: ",
    "(48.85, 2.35)",
    "(91.0, 200.0)",
    "[-33.86, 151.21]",
    '{"lat": 40.7, "lon": -74.0}',
    "48°51'24\"N 2°21'03\"E",
    "12.5S, 130.8E",
    "or",
    "\n",
    "**",
    "nan",
    "1e308",
    "-0.0",
    " ",
    *COUNTRIES,
    *CITIES,
]

structured_text = st.lists(st.sampled_from(FRAGMENTS), max_size=25).map("".join)
any_text = st.one_of(st.text(max_size=400), structured_text)


# Issue 13: hostile values — objects whose repr/str raise, deep nesting, ints past
# Python's digit limit, str subclasses with raising methods, huge names.
def _deep(depth: int) -> object:
    x: object = "<answer>country: France\ncity: Paris</answer>"
    for _ in range(depth):
        x = [x]
    return x


hostile = st.one_of(
    st.builds(_deep, st.integers(1, 6000)),
    st.just(Unprintable()),
    st.integers(4300, 5000).map(lambda k: 10**k),
    st.binary(max_size=40),
)
huge_name = st.one_of(
    st.tuples(st.sampled_from(["Paris", ", IN", ", France", "東京", "x"]), st.integers(50, 1000)).map(
        lambda t: t[0] * t[1]
    ),
    st.text(min_size=200, max_size=2000),
)
completion = st.one_of(
    any_text,
    any_text.map(lambda t: [{"role": "assistant", "content": t}]),
    st.none(),
    st.integers(),
    st.lists(st.one_of(st.integers(), st.text(max_size=10)), max_size=3),
    hostile,
    any_text.map(HostileStr),
    huge_name.map(
        lambda n: f"<answer>Country: {n}\nCity: {n}\ncountry: {n}\ncity: {n}\nCoordinates: (1, 2)</answer>"
    ),
)
coord = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-90, 90),
    st.text(max_size=5),
    st.sampled_from(["1e400", "-1e400", "48.85"]),
    hostile,
)
name = st.one_of(st.none(), st.sampled_from(COUNTRIES + CITIES), st.text(max_size=20), huge_name, hostile)
entities = st.one_of(
    st.none(),
    hostile,
    st.lists(
        st.one_of(st.text(max_size=15), st.sampled_from(["church", "tram", "café", "Eiffel Tower"])),
        max_size=5,
    ),
    st.lists(st.fixed_dictionaries({"text": st.text(max_size=15)}), max_size=3),
    st.text(max_size=30),
)


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[object], dict[str, list[object]]]:
    n = draw(st.integers(1, 6))
    comps = [draw(completion) for _ in range(n)]
    cols: dict[str, list[object]] = {
        "lat": [draw(coord) for _ in range(n)],
        "lon": [draw(coord) for _ in range(n)],
        "country": [draw(name) for _ in range(n)],
        "country_code": [
            draw(st.one_of(st.none(), st.sampled_from(["FR", "US", "JP", "XX", "", "fr"]))) for _ in range(n)
        ],
        "city": [draw(name) for _ in range(n)],
        "admin1": [draw(name) for _ in range(n)],
        "continent": [
            draw(st.one_of(st.none(), st.sampled_from(["EU", "Asia", "Atlantis", ""]))) for _ in range(n)
        ],
        "entities": [draw(entities) for _ in range(n)],
    }
    return comps, cols


def _check(name: str, out: list[float | None], n: int) -> None:
    lo, hi = REWARD_RANGES[name]
    assert isinstance(out, list) and len(out) == n, name
    for x in out:
        assert x is None or (isinstance(x, float) and math.isfinite(x) and lo <= x <= hi), (name, x)


@SETTINGS
@given(batches())
def test_every_reward_total_and_in_range(batch: tuple[list[object], dict[str, list[object]]]) -> None:
    comps, cols = batch
    for reward_name, func in ALL_REWARDS.items():
        _check(reward_name, func(comps, **cols), len(comps))


@SETTINGS
@given(st.lists(any_text, min_size=1, max_size=4), st.floats(-90, 90), st.floats(-180, 180))
def test_rewards_with_clean_truth(texts: list[str], lat: float, lon: float) -> None:
    n = len(texts)
    cols = {
        "lat": [lat] * n,
        "lon": [lon] * n,
        "country_code": ["FR"] * n,
        "city": ["Paris"] * n,
        "entities": [["church"]] * n,
    }
    for reward_name, func in ALL_REWARDS.items():
        out = func(texts, **cols)
        _check(reward_name, out, n)
        if reward_name in (
            "geor",
            "geor_distance",
            "geor_format",
            "globe_format",
            "geoscore",
            "globe_visual",
        ):
            assert None not in out, reward_name  # truth present: always scored


@given(st.floats(0, 1e7))
def test_geor_distance_in_range_and_monotone(d: float) -> None:
    r = geor_distance_from_km(d)
    assert 0.0 <= r <= 1.0
    assert geor_distance_from_km(d + 1.0) <= r
    assert abs(geor_distance_from_km(d + 1e-3) - r) <= 1e-3 * 0.5 / 750 + 1e-12  # Lipschitz: steepest piece


@given(st.lists(st.floats(0, 1e7), max_size=30))
def test_vectorised_formulas_match_scalars(ds: list[float]) -> None:
    arr = np.asarray(ds, dtype=np.float64)
    np.testing.assert_allclose(geor_distance_from_km(arr), [geor_distance_from_km(d) for d in ds], atol=1e-12)
    np.testing.assert_allclose(geoscore_from_km(arr), [geoscore_from_km(d) for d in ds], rtol=1e-12)


@given(st.booleans(), st.booleans(), st.floats(0, 1))
def test_globe_accuracy_formula_range(country_ok: bool, city_ok: bool, alpha: float) -> None:
    r = globe_accuracy_from_matches(country_ok, city_ok, alpha)
    assert 0.0 <= r <= 1.0
    if not country_ok:
        assert r == 0.0


@given(
    st.dictionaries(st.sampled_from(HIERARCHY_LEVELS), st.one_of(st.none(), st.booleans())),
    st.dictionaries(st.sampled_from(HIERARCHY_LEVELS), st.floats(0, 10), min_size=1),
)
def test_hierarchy_formula_range(matches: dict[str, bool | None], weights: dict[str, float]) -> None:
    r = hierarchy_from_matches(matches, weights)
    assert r is None or 0.0 <= r <= 1.0


@given(
    st.dictionaries(
        st.sampled_from(["yes", "Yes", " YES", "no", "No", "NO", "maybe", "", "y"]),
        st.one_of(st.floats(max_value=0.0, allow_nan=False), st.just(-math.inf)),
    )
)
def test_locatability_formula_range(top: dict[str, float]) -> None:
    try:
        r = locatability_from_logprobs(top)
    except JudgeError:
        return  # no yes/no probability mass: reported as a judge failure
    assert 0.0 <= r <= 1.0
