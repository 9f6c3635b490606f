"""Reverse-geocode 1,000,000 photo-like coordinates for the full hierarchy
(continent, country, admin1, city) and compare with the `reverse_geocoder`
package (nearest GeoNames city only, no polygons) on the same points, same run.

Target (issue 2): within 3x of reverse_geocoder's time while exact on country.

    python benchmarks/bench_reverse_geocode.py [--n 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _photo_points import photo_like_points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import reverse_geocoder as rg

    from georeason.geo import reverse_geocode_batch

    lat, lon = photo_like_points(args.n, seed=0)
    t0 = time.perf_counter()
    reverse_geocode_batch(lat[:10], lon[:10])  # load the compiled data once, outside the timing
    print(f"georeason load (warm disk cache): {time.perf_counter() - t0:.2f} s")
    pairs = list(zip(lat.tolist(), lon.tolist(), strict=True))
    rg.search(pairs[:10], verbose=False)  # reverse_geocoder loads its tree on first use too

    ours, anchor_mp, anchor_sp = [], [], []
    for _ in range(args.repeats):
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
    print(f"points: {args.n:,}  (median of {args.repeats})")
    print(
        f"georeason full hierarchy  : {m:6.2f} s   {args.n / m:12,.0f} points/s   on a polygon: {table.on_land.mean():.1%}"
    )
    print(f"reverse_geocoder mode=2   : {a2:6.2f} s   {args.n / a2:12,.0f} points/s")
    print(f"reverse_geocoder mode=1   : {a1:6.2f} s   {args.n / a1:12,.0f} points/s")
    print(f"ratio georeason / reverse_geocoder(mode=2): {m / a2:.2f}x   (target <= 3x)")
    print(f"ratio georeason / reverse_geocoder(mode=1): {m / a1:.2f}x")


if __name__ == "__main__":
    main()
