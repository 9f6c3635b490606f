"""Self-consistency: medoid, spherical geometric median, hierarchical vote, and the confidence."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import georeason.consensus as consensus
from georeason.consensus import aggregate, geometric_median
from georeason.geo import haversine_km
from georeason.protocols import get_protocol
from georeason.types import Prediction


def test_doctests() -> None:
    result = doctest.testmod(consensus)
    assert result.failed == 0 and result.attempted > 0


def P(lat: float | None = None, lon: float | None = None, **names: str) -> Prediction:
    return Prediction(lat=lat, lon=lon, **names)


def test_medoid_is_a_real_sample_robust_to_an_outlier() -> None:
    samples = [P(48.85, 2.35), P(48.86, 2.34), P(48.80, 2.40), P(-33.9, 151.2)]
    c = aggregate(samples, "medoid")
    assert c.index in (0, 1, 2)
    assert (c.lat, c.lon) == (samples[c.index].lat, samples[c.index].lon)
    assert c.agreement_25km == pytest.approx(0.75)
    assert c.radius_km is not None and c.radius_km < 25


def test_geometric_median_minimises_the_summed_distance() -> None:
    rng = np.random.default_rng(0)
    lat = rng.uniform(40, 50, 9)
    lon = rng.uniform(-5, 10, 9)
    m = geometric_median(lat, lon)

    def cost(a: float, b: float) -> float:
        return float(np.sum(haversine_km(lat, lon, a, b)))

    # No nearby point (nor any sample) does better than the median.
    best = cost(*m)
    for dlat, dlon in [(0.05, 0), (-0.05, 0), (0, 0.05), (0, -0.05)]:
        assert best <= cost(m[0] + dlat, m[1] + dlon) + 1e-6
    assert all(best <= cost(a, b) + 0.01 for a, b in zip(lat, lon, strict=True))  # within 10 m


def test_geometric_median_across_the_antimeridian() -> None:
    lat, lon = geometric_median([0.0, 0.0, 0.0], [179.5, -179.5, 179.9])
    assert abs(lat) < 1e-6
    assert abs(abs(lon) - 179.9) < 0.5  # near the date line, not at longitude 0


def test_geomedian_reports_the_chain_of_the_nearest_sample() -> None:
    samples = [P(10, 10), P(10.1, 10.1), P(30, 30)]
    c = aggregate(samples, "geomedian")
    assert c.index in (0, 1)
    assert c.lat is not None and 10 <= c.lat <= 10.2


def test_vote_follows_the_country_majority_even_against_the_distance_medoid() -> None:
    # Two answers in Germany near the border, three in France further apart: the vote picks France.
    samples = [
        P(48.58, 7.75, country="France", city="Strasbourg"),
        P(48.85, 2.35, country="France", city="Paris"),
        P(48.86, 2.34, country="France", city="Paris"),
        P(48.0, 7.85, country="Germany", city="Freiburg"),
        P(48.1, 7.9, country="Germany", city="Freiburg"),
    ]
    c = aggregate(samples, "vote")
    assert c.index in (1, 2)  # France, then Paris (the most named city)
    assert c.country_agreement == pytest.approx(0.6)


def test_vote_compares_names_through_aliases() -> None:
    samples = [
        P(country="USA", city="New York City"),
        P(country="United States", city="New York City"),
        P(country="Canada", city="Toronto"),
    ]
    c = aggregate(samples, "vote")
    assert c.index in (0, 1)
    assert c.country_agreement == pytest.approx(2 / 3)


def test_unparsed_answers_are_counted_not_used() -> None:
    protocol = get_protocol("geor")
    texts = [
        "<answer>Country: Japan\nCity: Kyoto\nCoordinates: (35.01, 135.77)</answer>",
        "I cannot tell.",
        "<answer>Country: Japan\nCity: Kyoto\nCoordinates: (35.02, 135.76)</answer>",
    ]
    for method in consensus.AGGREGATORS:
        c = aggregate([protocol.parse(t) for t in texts], method)
        assert c.n_samples == 3 and c.n_located == 2
        assert c.index in (0, 2)
        assert c.agreement_25km == pytest.approx(2 / 3)
        assert c.sample_points[1] is None


def test_no_located_answer_gives_no_point() -> None:
    c = aggregate([P(), P()], "vote")
    assert c.index is None and c.lat is None and c.agreement_25km is None and c.n_located == 0


def test_one_sample_is_fully_sure() -> None:
    c = aggregate([P(35.68, 139.69)], "medoid")
    assert (c.agreement_25km, c.country_agreement, c.radius_km) == (1.0, 1.0, 0.0)


def test_country_of_coordinate_only_answers_comes_from_the_point() -> None:
    c = aggregate([P(48.85, 2.35), P(45.76, 4.84), P(40.42, -3.70)], "medoid")
    assert c.country_agreement == pytest.approx(2 / 3)  # two points in France


def test_unknown_method_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="choose one of medoid, geomedian, vote"):
        aggregate([P(1, 1)], "mean")
