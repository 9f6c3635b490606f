"""georeason.eval.metrics: hand-computed cases, missing predictions, bootstrap, breakdowns."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from georeason.eval.metrics import (
    DEFAULT_THRESHOLDS_KM,
    compute_metrics,
    geoscore,
    valid_coordinates,
)
from georeason.eval.metrics.bootstrap import bootstrap_replicates
from georeason.geo import EARTH_RADIUS_KM

NAN = float("nan")


def equator_offsets(dists_km: list[float]) -> np.ndarray:
    """Longitudes on the equator at exactly these great-circle distances from (0, 0)."""
    return np.degrees(np.asarray(dists_km) / EARTH_RADIUS_KM)


def gs(d: float) -> float:
    return 5000.0 * math.exp(-d / 1492.7)


# Four predictions with known distances: 0.5, 10, 500 and 3000 km from the truth.
DISTS = [0.5, 10.0, 500.0, 3000.0]


def four_points(extra_pred: list[tuple[float, float]] = ()) -> tuple[list[float], ...]:  # type: ignore[assignment]
    n = len(DISTS) + len(extra_pred)
    t_lat, t_lon = [0.0] * n, [0.0] * n
    p_lat = [0.0] * len(DISTS) + [p[0] for p in extra_pred]
    p_lon = list(equator_offsets(DISTS)) + [p[1] for p in extra_pred]
    return t_lat, t_lon, p_lat, p_lon


def test_hand_computed_four_points() -> None:
    m = compute_metrics(*four_points(), n_bootstrap=0, per_continent=False)
    assert m.n == 4 and m.n_missing == 0 and m.n_invalid_truth == 0
    assert m.accuracy == pytest.approx({1.0: 0.25, 25.0: 0.5, 200.0: 0.5, 750.0: 0.75, 2500.0: 0.75})
    assert m.median_km == pytest.approx((10.0 + 500.0) / 2, abs=1e-6)
    assert m.mean_km == pytest.approx(sum(DISTS) / 4, abs=1e-6)
    assert m.geoscore == pytest.approx(sum(gs(d) for d in DISTS) / 4, rel=1e-9)
    # No bootstrap: no interval.
    assert m.overall.geoscore.ci_low is None and m.overall.median_km.ci_high is None


def test_known_pair_paris_london() -> None:
    # Paris -> London, 343.5 km (haversine, mean radius): a hit at 750 km, a miss at 200 km.
    m = compute_metrics([48.8566], [2.3522], [51.5074], [-0.1278], n_bootstrap=0, per_continent=False)
    assert m.median_km == pytest.approx(343.5, abs=0.5)
    assert m.accuracy[200.0] == 0.0 and m.accuracy[750.0] == 1.0


def test_threshold_is_inclusive() -> None:
    # A prediction exactly at the threshold distance is a hit (d <= t).
    lon = float(equator_offsets([25.0])[0])
    d = compute_metrics([0.0], [0.0], [0.0], [lon], n_bootstrap=0, per_continent=False).median_km
    m = compute_metrics([0.0], [0.0], [0.0], [lon], thresholds_km=[d], n_bootstrap=0, per_continent=False)
    assert m.accuracy[d] == 1.0


def test_nan_predictions_are_misses() -> None:
    m = compute_metrics(*four_points([(NAN, NAN), (NAN, 5.0)]), n_bootstrap=0, per_continent=False)
    assert m.n == 6 and m.n_missing == 2 and m.overall.n_predicted == 4
    assert m.accuracy[25.0] == pytest.approx(2 / 6)
    assert m.accuracy[2500.0] == pytest.approx(3 / 6)
    # Median and mean stay over the predictions made ...
    assert m.median_km == pytest.approx(255.0, abs=1e-6)
    assert m.mean_km == pytest.approx(sum(DISTS) / 4, abs=1e-6)
    # ... GeoScore counts a missing prediction as 0.
    assert m.geoscore == pytest.approx(sum(gs(d) for d in DISTS) / 6, rel=1e-9)


def test_out_of_range_and_infinite_predictions_are_missing() -> None:
    m = compute_metrics(
        *four_points([(95.0, 0.0), (0.0, 181.0), (math.inf, 0.0)]), n_bootstrap=0, per_continent=False
    )
    assert m.n_missing == 3
    assert m.overall.n_out_of_range_pred == 2  # inf is not "a number out of range"
    assert m.accuracy[1.0] == pytest.approx(1 / 7)


def test_invalid_truth_rows_are_excluded_and_counted() -> None:
    t_lat, t_lon, p_lat, p_lon = four_points()
    t_lat += [NAN, 91.0, 10.0]
    t_lon += [0.0, 0.0, -200.0]
    p_lat += [0.0, 0.0, 0.0]
    p_lon += [0.0, 0.0, 0.0]
    m = compute_metrics(t_lat, t_lon, p_lat, p_lon, n_bootstrap=0, per_continent=False)
    assert m.n_total == 7 and m.n_invalid_truth == 3 and m.n == 4
    assert m.accuracy[25.0] == 0.5


def test_all_predictions_missing() -> None:
    m = compute_metrics([1.0, 2.0], [3.0, 4.0], [NAN, NAN], [NAN, NAN], per_continent=False)
    assert m.n_missing == 2 and m.geoscore == 0.0
    assert all(v == 0.0 for v in m.accuracy.values())
    assert math.isnan(m.median_km)
    d = m.to_dict()
    json.dumps(d, allow_nan=False)  # NaN written as null, not as invalid JSON
    assert d["median_km"]["value"] is None


def test_thresholds_configurable() -> None:
    m = compute_metrics(*four_points(), thresholds_km=[600, 5], n_bootstrap=0, per_continent=False)
    assert m.thresholds_km == (5.0, 600.0)
    assert m.accuracy == pytest.approx({5.0: 0.25, 600.0: 0.75})
    assert list(m.to_dict()["accuracy"]) == ["acc@5km", "acc@600km"]
    assert DEFAULT_THRESHOLDS_KM == (1.0, 25.0, 200.0, 750.0, 2500.0)


@pytest.mark.parametrize("bad", [[], [-1.0], [1.0, 1.0], [math.nan]])
def test_bad_thresholds(bad: list[float]) -> None:
    with pytest.raises(ValueError, match="thresholds"):
        compute_metrics(*four_points(), thresholds_km=bad, n_bootstrap=0, per_continent=False)


def test_bad_input_errors() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        compute_metrics([0, 0], [0, 0], [0], [0], per_continent=False)
    with pytest.raises(ValueError, match="pred_lat must be numbers"):
        compute_metrics([0], [0], ["north"], [0], per_continent=False)
    with pytest.raises(ValueError, match="no row has valid true coordinates"):
        compute_metrics([NAN, 100.0], [0, 0], [0, 0], [0, 0], per_continent=False)
    with pytest.raises(ValueError, match="confidence"):
        compute_metrics([0], [0], [0], [0], confidence=1.5, per_continent=False)
    with pytest.raises(ValueError, match="n_bootstrap"):
        compute_metrics([0], [0], [0], [0], n_bootstrap=-1, per_continent=False)
    with pytest.raises(ValueError, match="pred_labels need true_labels"):
        compute_metrics([0], [0], [0], [0], per_continent=False, pred_labels={"country": ["FR"]})
    with pytest.raises(ValueError, match="unknown label keys"):
        compute_metrics(
            [0], [0], [0], [0], per_continent=False, true_labels={"town": ["x"]}, pred_labels={"city": ["x"]}
        )
    with pytest.raises(ValueError, match="continents has 1 rows"):
        compute_metrics([0, 0], [0, 0], [0, 0], [0, 0], continents=["EU"])


def test_valid_coordinates_and_geoscore() -> None:
    assert valid_coordinates([0, 90, -90.01, NAN, 0], [180, -180, 0, 0, math.inf]).tolist() == [
        True,
        True,
        False,
        False,
        False,
    ]
    s = geoscore([0.0, 1492.7, NAN])
    assert s[0] == 5000.0 and s[1] == pytest.approx(5000 / math.e) and s[2] == 0.0


# --------------------------------------------------------------------------- bootstrap


def _synthetic(n: int, seed: int, missing: float = 0.05) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    t_lat = rng.uniform(-50, 60, n)
    t_lon = rng.uniform(-180, 180, n)
    km = rng.lognormal(5.0, 1.8, n)
    p_lat = np.clip(t_lat + rng.normal(0, 1, n) * km / 111, -90, 90)
    p_lon = (t_lon + rng.normal(0, 1, n) * km / 111 + 180) % 360 - 180
    p_lat[rng.random(n) < missing] = np.nan
    return t_lat, t_lon, p_lat, p_lon


def test_bootstrap_ci_contains_estimate_and_is_seeded() -> None:
    data = _synthetic(3000, 1)
    a = compute_metrics(*data, seed=7, per_continent=False)
    b = compute_metrics(*data, seed=7, per_continent=False)
    c = compute_metrics(*data, seed=8, per_continent=False)
    assert a.to_dict() == b.to_dict()  # same seed, same intervals
    assert a.to_dict() != c.to_dict()
    o = a.overall
    for e in [*o.accuracy.values(), o.median_km, o.mean_km, o.geoscore]:
        assert e.ci_low is not None and e.ci_high is not None
        assert e.ci_low <= e.value <= e.ci_high
        assert e.ci_low < e.ci_high
    # Point estimates do not depend on the seed.
    assert a.accuracy == c.accuracy and a.median_km == c.median_km


def test_wider_confidence_gives_wider_interval() -> None:
    data = _synthetic(2000, 2)
    narrow = compute_metrics(*data, confidence=0.8, per_continent=False).overall.geoscore
    wide = compute_metrics(*data, confidence=0.99, per_continent=False).overall.geoscore
    assert wide.ci_low < narrow.ci_low and narrow.ci_high < wide.ci_high  # type: ignore[operator]


@pytest.mark.parametrize(
    ("bins", "thresholds"),
    [(1, ()), (1, DEFAULT_THRESHOLDS_KM), (16, DEFAULT_THRESHOLDS_KM), (100_000, (200.0,))],
)
def test_fast_bootstrap_matches_naive_resampling(bins: int, thresholds: tuple[float, ...]) -> None:
    """The binned bootstrap must have the spread of the classic one (rows
    resampled with replacement). With bins >= n it is the classic bootstrap;
    with few bins accuracy and median are still exact and GeoScore / mean keep their
    spread through the within-bin variance term (bins=1 and no thresholds: one bin of
    predictions plus the missing ones, so the within-bin term carries almost all of it)."""
    n, B = 1500, 3000
    rng = np.random.default_rng(5)
    d = rng.lognormal(5.0, 1.8, n)
    d[rng.random(n) < 0.06] = np.nan
    d_pred = np.sort(d[~np.isnan(d)])
    n_missing = int(np.isnan(d).sum())

    idx = np.random.default_rng(6).integers(0, n, size=(B, n))
    res = d[idx]
    with np.errstate(all="ignore"):
        naive = {
            "acc@200km": (res <= 200).mean(axis=1),
            "median_km": np.nanmedian(res, axis=1),
            "mean_km": np.nanmean(res, axis=1),
            "geoscore": geoscore(res).mean(axis=1),
        }
    fast = bootstrap_replicates(d_pred, n_missing, thresholds, B, np.random.default_rng(7), bins)
    for key, ref in naive.items():
        if key.startswith("acc@") and key not in fast:
            continue
        got = fast[key]
        # Same centre and spread (Monte Carlo error of an sd estimate with B=3000 is ~1.3%).
        assert np.mean(got) == pytest.approx(np.mean(ref), abs=0.1 * np.std(ref)), key
        assert np.std(got) == pytest.approx(np.std(ref), rel=0.08), key
        lo, hi = np.quantile(ref, [0.025, 0.975])
        glo, ghi = np.quantile(got, [0.025, 0.975])
        assert abs(glo - lo) < 0.15 * (hi - lo) and abs(ghi - hi) < 0.15 * (hi - lo), key


def test_bootstrap_of_tiny_sample() -> None:
    # One row: every replicate is that row; the interval collapses on the value.
    m = compute_metrics([0.0], [0.0], [0.0], [float(equator_offsets([10.0])[0])], per_continent=False)
    assert m.overall.median_km.ci_low == pytest.approx(10.0) and m.overall.median_km.ci_high == pytest.approx(
        10.0
    )
    assert m.overall.accuracy[25.0].ci_low == 1.0 and m.overall.accuracy[1.0].ci_high == 0.0


# --------------------------------------------------------------------------- per continent


def test_per_continent_from_labels_equals_subsets() -> None:
    t_lat, t_lon, p_lat, p_lon = _synthetic(900, 3)
    labels = np.array(["EU", "Europe", "as", "Asia", "SA", None] * 150, dtype=object)
    m = compute_metrics(t_lat, t_lon, p_lat, p_lon, continents=labels, n_bootstrap=200)
    assert m.continent_source == "labels"
    assert list(m.per_continent) == ["AS", "EU", "SA", "unknown"]  # names folded into codes
    for code, sel in {
        "EU": np.isin(labels, ["EU", "Europe"]),
        "AS": np.isin(labels, ["as", "Asia"]),
        "unknown": np.array([x is None for x in labels]),
    }.items():
        sub = compute_metrics(
            t_lat[sel], t_lon[sel], p_lat[sel], p_lon[sel], n_bootstrap=0, per_continent=False
        )
        got = m.per_continent[code]
        assert got.n == sub.n and got.n_missing == sub.n_missing
        assert {t: e.value for t, e in got.accuracy.items()} == sub.accuracy
        assert got.median_km.value == pytest.approx(sub.median_km)
        assert got.geoscore.value == pytest.approx(sub.geoscore)
        assert got.geoscore.ci_low is not None
    assert sum(s.n for s in m.per_continent.values()) == m.n
    rows = m.continent_table()
    assert rows[0][:3] == ["continent", "n", "miss"] and len(rows) == 5
    assert rows[1][0] == "Asia"


def test_per_continent_from_reverse_geocoding() -> None:
    # Paris, New York, Sydney, Nairobi, Sao Paulo, Tokyo; and one bad truth row.
    t_lat = [48.8566, 40.7128, -33.8688, -1.2921, -23.5505, 35.6762, NAN]
    t_lon = [2.3522, -74.0060, 151.2093, 36.8219, -46.6333, 139.6503, 0.0]
    p_lat = [48.9, 41.0, NAN, -1.3, -22.9, 35.7, 0.0]
    p_lon = [2.4, -74.0, NAN, 36.8, -43.2, 139.7, 0.0]
    m = compute_metrics(t_lat, t_lon, p_lat, p_lon, n_bootstrap=50)
    assert m.continent_source == "reverse_geocode"
    assert set(m.per_continent) == {"EU", "NA", "OC", "AF", "SA", "AS"}
    assert m.per_continent["OC"].n_missing == 1 and m.per_continent["EU"].n == 1
    assert m.n_invalid_truth == 1


def test_per_continent_from_true_country_labels() -> None:
    # No continent column: the truth's countries give the continents (no geocoding needed).
    truth = {"country_code": ["FR", "fr", "JP", None]}
    pred = {"country": ["France", "Spain", "Japan", "Peru"]}
    m = compute_metrics(
        [48.0, 45.0, 35.0, 0.0],
        [2.0, 5.0, 139.0, 0.0],
        [48.0, 40.0, 35.0, NAN],
        [2.0, -3.0, 139.0, NAN],
        true_labels=truth,
        pred_labels=pred,
        n_bootstrap=0,
    )
    assert m.continent_source == "labels"
    assert {k: v.n for k, v in m.per_continent.items()} == {"AS": 1, "EU": 2, "unknown": 1}


# --------------------------------------------------------------------------- hierarchy


def test_hierarchy_accuracy() -> None:
    truth = {
        "country_code": ["FR", "FR", "FR", "FR", "DE", "DE", "US", "JP"],
        "admin1": ["Île-de-France"] * 4 + ["Bavaria", "Bavaria", "Texas", None],
        "city": ["Paris"] * 4 + ["Munich", "Munich", "Paris", "Tokyo"],
    }
    pred = {
        "country": ["France", "fr", "USA", None, "Germany", "Germany", "United States", "Japan"],
        "admin1": ["ile de france", "Ile-de-France", "Texas", None, "BAVARIA", "Saxony", "TEXAS", "Tokyo"],
        "city": ["PARIS", "Lyon", "Paris", "Paris", "München", "Dresden", "paris", None],
    }
    n = 8
    m = compute_metrics([0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n, true_labels=truth, pred_labels=pred)
    h = m.hierarchy
    # Continents follow from the countries: EU EU EU EU EU EU NA AS vs EU EU NA - EU EU NA AS.
    assert (h["continent"].correct, h["continent"].n, h["continent"].n_missing) == (6, 8, 1)
    # Countries: row 3 (USA for FR) wrong, row 4 missing.
    assert (h["country"].correct, h["country"].n, h["country"].n_missing) == (6, 8, 1)
    # (Rows are 1-based in these comments.) admin1: rows 1, 2 (accent/case/punctuation), 5, 7
    # right; row 3 "Texas" is in the wrong country; row 8 has no true admin1 (not counted).
    assert (h["admin1"].correct, h["admin1"].n, h["admin1"].n_missing) == (4, 7, 1)
    # city: PARIS (row 1), München=Munich (row 5), paris in US (row 7) right; row 3 "Paris" is
    # Paris in the predicted USA: wrong; row 4 "Paris" with no predicted country: judged by name.
    assert (h["city"].correct, h["city"].n, h["city"].n_missing) == (4, 8, 1)
    assert h["country"].accuracy.value == pytest.approx(6 / 8)
    lo, hi = h["country"].accuracy.ci_low, h["country"].accuracy.ci_high
    assert lo is not None and hi is not None and lo <= 0.75 <= hi
    d = m.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["hierarchy"]["city"]["correct"] == 4
    assert [r[0] for r in m.hierarchy_table()[1:]] == ["continent", "country", "admin1", "city"]


def test_hierarchy_admin1_alias_counts() -> None:
    # Pin down how admin1 names compare (accent/case/punctuation-insensitive).
    truth = {"country_code": ["FR", "US"], "admin1": ["Île-de-France", "New York"]}
    pred = {"country_code": ["FR", "US"], "admin1": ["ILE DE FRANCE", "new-york"]}
    m = compute_metrics(
        [0, 0], [0, 0], [0, 0], [0, 0], per_continent=False, true_labels=truth, pred_labels=pred
    )
    assert m.hierarchy["admin1"].correct == 2


def test_hierarchy_only_levels_present() -> None:
    m = compute_metrics(
        [0, 0],
        [0, 0],
        [0, 0],
        [0, 0],
        per_continent=False,
        n_bootstrap=0,
        true_labels={"continent": ["EU", "NA"]},
        pred_labels={"continent": ["Europe", ""]},
    )
    assert list(m.hierarchy) == ["continent"]
    assert (m.hierarchy["continent"].correct, m.hierarchy["continent"].n_missing) == (1, 1)


def test_table_rows() -> None:
    m = compute_metrics(*four_points([(NAN, NAN)]), per_continent=False)
    rows = m.table()
    assert rows[0] == ["metric", "value", "95% CI"]
    names = [r[0] for r in rows]
    assert names[1:6] == ["acc@1km", "acc@25km", "acc@200km", "acc@750km", "acc@2500km"]
    assert "GeoScore" in names and "missing predictions" in names
    assert dict((r[0], r[1]) for r in rows)["missing predictions"] == "1"
    assert rows[2][1] == "40.0%"
