"""One rule for judging an answer: the metric, the rewards and distillation agree (georeason.match).

Each case is an answer (a GLOBE or Geo-R completion) and a truth. The hierarchy metric
(eval.metrics), the hierarchy and GLOBE accuracy rewards and the distillation filter
must give the same per-level verdict; the evaluation, the GeoScore reward and the
distillation record must place a coordinate-free answer at the same point.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from georeason.eval.metrics import compute_metrics
from georeason.eval.runner import make_record
from georeason.match import LEVELS, Placement, Truth, judge, place_answer, place_names
from georeason.pipelines.distill import TeacherSpec, teacher_output
from georeason.pipelines.distill.filters import _right
from georeason.protocols import get_protocol
from georeason.rewards.formulas import GLOBE_ALPHA, globe_accuracy_from_matches
from georeason.rewards.globe import GlobeAccuracy
from georeason.rewards.ours import GeoScoreReward, HierarchyReward
from georeason.types import Prediction

PARIS = {
    "continent": "EU",
    "country_code": "FR",
    "country": "France",
    "admin1": "Île-de-France",
    "city": "Paris",
}
MUNICH = {
    "continent": "EU",
    "country_code": "DE",
    "country": "Germany",
    "admin1": "Bavaria",
    "city": "Munich",
}
HONG_KONG = {
    "continent": "AS",
    "country_code": "HK",
    "country": "Hong Kong",
    "admin1": "",
    "city": "Hong Kong",
}


def geor(**levels: str) -> str:
    keys = {"continent": "Continent", "country": "Country", "admin1": "State", "city": "City"}
    body = "\n".join(f"{keys[k]}: {v}" for k, v in levels.items())
    return f"<think>Clues.</think><answer>{body}</answer>"


# (answer levels, truth, expected verdict for continent, country, admin1, city)
CASES: list[tuple[str, dict[str, str], dict[str, str], tuple[bool | None, ...]]] = [
    ("all right", {"continent": "Europe", "country": "France", "admin1": "Ile-de-France", "city": "Paris"}, PARIS, (True, True, True, True)),
    # The two cases of the issue: a city with no country; an unknown country name.
    ("city, no country", {"city": "Paris"}, PARIS, (False, False, False, True)),
    ("unknown country name", {"country": "Frankia", "city": "Paris"}, PARIS, (False, False, False, False)),
    ("right country, wrong city", {"country": "France", "city": "Lyon"}, PARIS, (True, True, False, False)),
    ("wrong country gates the city", {"country": "USA", "admin1": "Texas", "city": "Paris"}, PARIS, (False, False, False, False)),
    ("aliases", {"country": "Deutschland", "city": "München"}, MUNICH, (True, True, False, True)),
    ("ISO code as country", {"country": "DE", "admin1": "bavaria", "city": "Munich"}, MUNICH, (True, True, True, True)),
    ("country only", {"country": "Germany"}, MUNICH, (True, True, False, False)),
    ("admin1 only", {"admin1": "Bavaria"}, MUNICH, (False, False, True, False)),
    ("wrong continent stated, right country", {"continent": "Asia", "country": "Germany", "city": "Munich"}, MUNICH, (False, True, False, True)),
    ("continent from the country", {"country": "Japan", "city": "Munich"}, MUNICH, (False, False, False, False)),
    ("continent only", {"continent": "Europe"}, MUNICH, (True, False, False, False)),
    ("truth without city", {"country": "France", "city": "Paris"}, {**PARIS, "city": "", "admin1": ""}, (True, True, None, None)),
    ("territory", {"country": "China", "city": "Hong Kong"}, HONG_KONG, (True, False, None, False)),
]  # fmt: skip


def _truth(d: dict[str, str]) -> Truth:
    return Truth(*(d.get(k) or None for k in ("continent", "country_code", "country", "admin1", "city")))


@pytest.mark.parametrize(("name", "answer", "truth", "expected"), CASES, ids=[c[0] for c in CASES])
def test_metric_rewards_and_distillation_agree(
    name: str, answer: dict[str, str], truth: dict[str, str], expected: tuple[bool | None, ...]
) -> None:
    completion = geor(**answer)
    pred = get_protocol("geor").parse(completion)
    want = dict(zip(LEVELS, expected, strict=True))
    assert judge(pred, _truth(truth)) == want

    # The hierarchy reward, per level.
    assert HierarchyReward().matches(pred, _truth(truth)) == want

    # The hierarchy metric on this one row: accuracy 1 or 0 where the truth has the level.
    labels = {k: [truth.get(k) or None] for k in ("continent", "country_code", "country", "admin1", "city")}
    plabels = {
        k: [getattr(pred, k) or None] for k in ("continent", "country_code", "country", "admin1", "city")
    }
    m = compute_metrics(
        [48.85], [2.35], [48.85], [2.35], n_bootstrap=0, true_labels=labels, pred_labels=plabels
    )
    for level, verdict in want.items():
        if verdict is None:
            assert level not in m.hierarchy or m.hierarchy[level].n == 0, level
        else:
            assert m.hierarchy[level].n == 1, level
            assert m.hierarchy[level].correct == int(verdict), level

    # GLOBE's accuracy reward: its formula on the same country / city verdicts.
    if want["city"] is not None:
        globe = f"<think>.</think><answer>country: {answer.get('country', '')}\ncity: {answer.get('city', '')}</answer>"
        r = GlobeAccuracy()([globe], **{k: [v or None] for k, v in truth.items()})[0]
        assert r == globe_accuracy_from_matches(
            bool(want["country"]), bool(want["country"] and want["city"]), GLOBE_ALPHA
        )

    # The distillation filter: (country right, city right by name) — no distance here.
    if truth.get("country") and (answer.get("country")):
        t = {"country": answer.get("country"), "country_code": pred.country_code, "city": answer.get("city")}
        assert _right(t, truth, "city", max_km=0.0) == (
            bool(want["country"]),
            bool(want["country"] and want["city"]),
        )


PLACING = [
    ("city in country", "France", "", "Paris", "city"),
    ("unknown country name, city anywhere", "Frankia", "", "Lyon", "city (country ignored)"),
    ("territory city", "China", "", "Hong Kong", "city (country ignored)"),
    ("admin1", "Germany", "Bavaria", "", "admin1"),
    ("country", "Japan", "", "", "country"),
    ("unknown city, country", "Italy", "", "Xyzzyville", "country"),
]


@pytest.mark.parametrize(("name", "country", "admin1", "city", "level"), PLACING, ids=[c[0] for c in PLACING])
def test_eval_reward_and_distillation_place_an_answer_alike(
    name: str, country: str, admin1: str, city: str, level: str
) -> None:
    completion = f"<think>Clues.</think><answer>country: {country}\nstate: {admin1}\ncity: {city}</answer>"
    protocol = get_protocol("globe")
    placed = place_answer(protocol.parse(completion))
    assert placed is not None and placed.level == level
    truth = (45.76, 4.84)  # Lyon
    rec = make_record(
        {"id": "x", "lat": truth[0], "lon": truth[1]},
        completion=completion, error=None, error_kind=None, seconds=None, protocol=protocol, geocode=True,
    )  # fmt: skip
    assert rec["coord_source"] == f"geocoded:{level}"
    assert (rec["pred_lat"], rec["pred_lon"]) == (placed.lat, placed.lon)
    score = GeoScoreReward(protocol="globe")([completion], lat=[truth[0]], lon=[truth[1]])[0]
    assert score == pytest.approx(math.exp(-rec["distance_km"] / 1492.7), rel=1e-9)
    out = teacher_output(
        TeacherSpec("t", "hf", "m"), completion, None, None, None, None, {"lat": truth[0], "lon": truth[1]}
    )
    assert (out["pred_lat"], out["pred_lon"], out["geocode_level"]) == (placed.lat, placed.lon, level)


def test_unknown_country_name_is_scored_by_reward_as_by_eval() -> None:
    # The case: the eval placed this answer, the GeoScore reward gave 0.
    completion = "<think>.</think><answer>country: Frankia\ncity: Lyon</answer>"
    score = GeoScoreReward(protocol="globe")([completion], lat=[45.76], lon=[4.84])[0]
    assert score is not None and score > 0.99


def test_stated_coordinates_win_and_nothing_named_is_none() -> None:
    assert place_answer(Prediction(city="Paris", lat=10.0, lon=20.0)) == Placement(10.0, 20.0, "answer")
    assert place_answer(Prediction()) is None
    assert place_names(None, None, None) is None
    assert place_names("Xyzzyville", None, None) is None


def test_judge_rejects_unknown_levels() -> None:
    with pytest.raises(ValueError, match="unknown levels"):
        judge(Prediction(), Truth(), ("planet",))


def test_metric_judges_repeated_labels_once_and_keeps_counts() -> None:
    n = 300
    rng = np.random.default_rng(0)
    right = rng.random(n) < 0.5
    true_labels = {"country": ["France"] * n, "city": ["Paris"] * n}
    pred_labels = {"country": ["France"] * n, "city": np.where(right, "Paris", "Lyon").tolist()}
    m = compute_metrics(
        np.full(n, 48.85), np.full(n, 2.35), np.full(n, 48.85), np.full(n, 2.35),
        n_bootstrap=0, true_labels=true_labels, pred_labels=pred_labels,
    )  # fmt: skip
    assert m.hierarchy["city"].correct == int(right.sum())
    assert m.hierarchy["country"].correct == n
    assert m.hierarchy["continent"].correct == n


def test_doctests() -> None:
    import doctest

    import georeason.match as match

    result = doctest.testmod(match)
    assert result.failed == 0 and result.attempted > 0
