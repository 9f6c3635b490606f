"""Benchmark: georeason.eval.metrics over 1,000,000 predictions (target <= 2 s).

Truth points are GeoNames places (where photos are taken), predictions scatter
around them with lognormal errors (a few metres to thousands of km), 3% missing.
Prints the median of ``--repeats`` runs for

* the anchor: a plain numpy haversine over the same arrays, measured in the same run;
* compute_metrics without bootstrap, with the default 1000-replicate bootstrap,
  and with the per-continent breakdown (continent labels given, intervals per
  continent);
* what a classic bootstrap (1000 x resampling n row indices) would cost,
  extrapolated from a few replicates;
* separately, continents by reverse geocoding the truth (the path taken when no
  continent labels are given), on ``--geocode-n`` points.

    python benchmarks/bench_metrics.py [--n 1000000] [--repeats 5] [--geocode-n 100000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def plain_haversine(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    """The anchor: textbook haversine in numpy, no checks."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * np.arcsin(np.sqrt(a))


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    from georeason.geo import continent_of, gazetteer

    rng = np.random.default_rng(seed)
    g = gazetteer()
    w = np.sqrt(g.population.astype(np.float64) + 1.0)
    idx = rng.choice(len(g.lat), size=n, p=w / w.sum())
    t_lat = g.lat[idx].astype(np.float64)
    t_lon = g.lon[idx].astype(np.float64)
    cont_by_cc = {cc: continent_of(str(cc)) or "" for cc in np.unique(g.country_code)}
    cont = np.array([cont_by_cc[c] for c in g.country_code], dtype=object)[idx]
    km = rng.lognormal(np.log(150.0), 1.8, n)
    bearing = rng.uniform(0, 2 * np.pi, n)
    p_lat = np.clip(t_lat + np.cos(bearing) * km / 111.2, -90, 90)
    p_lon = (
        t_lon + np.sin(bearing) * km / (111.2 * np.maximum(np.cos(np.radians(t_lat)), 0.05)) + 180
    ) % 360 - 180
    p_lat[rng.random(n) < 0.03] = np.nan
    return t_lat, t_lon, p_lat, p_lon, cont


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n-bootstrap", type=int, default=1000)
    ap.add_argument(
        "--geocode-n", type=int, default=100_000, help="points for the reverse-geocoding path (0: skip)"
    )
    args = ap.parse_args()

    from georeason.eval.metrics import compute_metrics, geoscore

    print(f"preparing {args.n:,} predictions ...", flush=True)
    t_lat, t_lon, p_lat, p_lon, cont = make_data(args.n)
    B, R = args.n_bootstrap, args.repeats

    anchor, _ = timed(lambda: plain_haversine(t_lat, t_lon, p_lat, p_lon), R)
    rows: list[tuple[str, float]] = []
    t, _ = timed(lambda: compute_metrics(t_lat, t_lon, p_lat, p_lon, n_bootstrap=0, per_continent=False), R)
    rows.append(("metrics, no bootstrap", t))
    t, m = timed(lambda: compute_metrics(t_lat, t_lon, p_lat, p_lon, n_bootstrap=B, per_continent=False), R)
    rows.append((f"metrics + bootstrap ({B})", t))
    t, mc = timed(lambda: compute_metrics(t_lat, t_lon, p_lat, p_lon, n_bootstrap=B, continents=cont), R)
    rows.append((f"metrics + bootstrap + {len(mc.per_continent)} continents with CIs", t))

    # What the textbook bootstrap would cost: resample n row indices per replicate.
    d = plain_haversine(t_lat, t_lon, p_lat, p_lon)
    rng = np.random.default_rng(1)
    k = 5

    def naive() -> None:
        for _ in range(k):
            r = d[rng.integers(0, args.n, args.n)]
            with np.errstate(all="ignore"):
                (r <= 25).mean(), np.nanmedian(r), geoscore(r).mean()

    t_naive, _ = timed(naive, 1)
    naive_full = t_naive / k * B

    print()
    print(f"n = {args.n:,} predictions ({m.n_missing:,} missing), median of {R} runs")
    print(f"{'anchor: plain numpy haversine':<52} {anchor:8.3f} s   1.0x")
    for name, sec in rows:
        print(f"{name:<52} {sec:8.3f} s {sec / anchor:6.1f}x")
    print(
        f"{'classic bootstrap, extrapolated from ' + str(k) + ' replicates':<52} {naive_full:8.1f} s {naive_full / anchor:6.0f}x"
    )
    target = 2.0
    worst = rows[-1][1]
    print(
        f"target <= {target:.1f} s for 1M with bootstrap: {'MET' if worst <= target else 'MISSED'} ({worst:.2f} s)"
    )
    o = m.overall
    print(
        f"check: acc@25km {o.accuracy[25.0].value:.4f} [{o.accuracy[25.0].ci_low:.4f}, {o.accuracy[25.0].ci_high:.4f}], "
        f"median {o.median_km.value:.1f} km [{o.median_km.ci_low:.1f}, {o.median_km.ci_high:.1f}], "
        f"GeoScore {o.geoscore.value:.1f} [{o.geoscore.ci_low:.1f}, {o.geoscore.ci_high:.1f}]"
    )

    if args.geocode_n:
        from georeason.geo import reverse_geocode_batch

        g = min(args.geocode_n, args.n)
        reverse_geocode_batch(t_lat[:1000], t_lon[:1000])  # load the polygons / trees once
        tg, _ = timed(lambda: reverse_geocode_batch(t_lat[:g], t_lon[:g]), 1)
        print(
            f"continents by reverse geocoding the truth (no labels): {g:,} points in {tg:.2f} s "
            f"= {g / tg:,.0f} points/s ({tg / anchor * args.n / g:.0f}x the anchor per point); "
            f"1M would take ~{tg * 1_000_000 / g:.0f} s"
        )


if __name__ == "__main__":
    main()
