"""Reverse-geocode coordinates for the full hierarchy (continent, country,
admin1, city) and compare with the `reverse_geocoder` package (nearest GeoNames
city only, no polygons) on the same points, same run. Two cases:

* photo-like: 1,000,000 points near populated places (mostly land);
* uniform box: 200,000 points uniform over lat -50..65, lon -170..175
  (about two thirds sea, where every point needs its nearest country).

Target (issues 2, 12 §5): within 3x of reverse_geocoder's time on both while
exact on country.

    python benchmarks/bench_reverse_geocode.py [--n 1000000] [--n-box 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _photo_points import UNIFORM_BOX, photo_like_points, uniform_box_points


def run_case(name: str, lat: np.ndarray, lon: np.ndarray, repeats: int) -> None:
    import reverse_geocoder as rg

    from georeason.geo import reverse_geocode_batch

    n = len(lat)
    pairs = list(zip(lat.tolist(), lon.tolist(), strict=True))
    ours, anchor_mp, anchor_sp = [], [], []
    for _ in range(repeats):
        t = time.perf_counter()
        table = reverse_geocode_batch(lat, lon)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        rg.search(pairs, mode=2, verbose=False)  # its default: multiprocess
        anchor_mp.append(time.perf_counter() - t)
        t = time.perf_counter()
        rg.search(pairs, mode=1, verbose=False)
        anchor_sp.append(time.perf_counter() - t)
    m, a2, a1 = statistics.median(ours), statistics.median(anchor_mp), statistics.median(anchor_sp)
    print(f"\n== {name}: {n:,} points  (median of {repeats})")
    print(
        f"georeason full hierarchy  : {m:6.2f} s   {n / m:12,.0f} points/s   on a polygon: {table.on_land.mean():.1%}"
    )
    print(f"reverse_geocoder mode=2   : {a2:6.2f} s   {n / a2:12,.0f} points/s")
    print(f"reverse_geocoder mode=1   : {a1:6.2f} s   {n / a1:12,.0f} points/s")
    print(f"ratio georeason / reverse_geocoder(mode=2): {m / a2:.2f}x   (target <= 3x)")
    print(f"ratio georeason / reverse_geocoder(mode=1): {m / a1:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="photo-like points")
    ap.add_argument("--n-box", type=int, default=200_000, help="uniform-box points")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import reverse_geocoder as rg

    from georeason.geo import reverse_geocode_batch

    t0 = time.perf_counter()
    reverse_geocode_batch([0.0, 48.85], [0.0, 2.35])  # load the compiled data once, outside the timing
    print(f"georeason load (warm disk cache): {time.perf_counter() - t0:.2f} s")
    rg.search([(0.0, 0.0)], verbose=False)  # reverse_geocoder loads its tree on first use too

    if args.n:
        run_case("photo-like", *photo_like_points(args.n, seed=0), args.repeats)
    if args.n_box:
        lat0, lat1, lon0, lon1 = UNIFORM_BOX
        name = f"uniform box lat {lat0:g}..{lat1:g}, lon {lon0:g}..{lon1:g}"
        run_case(name, *uniform_box_points(args.n_box, seed=0), args.repeats)


if __name__ == "__main__":
    main()
