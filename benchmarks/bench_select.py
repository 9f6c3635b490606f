"""Geo-R hard-set filter at MP-16 scale: N samples against K hotspots at R km.

Samples and hotspots are photo-like coordinates (near GeoNames places, weighted
by population: clustered like MP-16, the hard case for a radius query since
cities hold thousands of points each). Times, alternately, in the same run:

- filter: :func:`georeason.data.select.near_any` (KD-tree on hotspot unit
  vectors, chord-radius query for every sample, exact haversine re-check of the hits);
- anchor: building the same KD-tree over the hotspots plus converting all samples
  to unit vectors (the fixed cost any tree-based method pays).

Prints medians of ``--repeats``: seconds, samples/s, share dropped, ratio filter / anchor,
and on a ``--check`` subsample the agreement with brute-force haversine.
Target (issue 6): 4.72M samples, 100K hotspots, 200 km in <= 60 s.

    python benchmarks/bench_select.py [--n 4723695] [--hotspots 100000] [--radius-km 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _photo_points import photo_like_points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=4_723_695)
    ap.add_argument("--hotspots", type=int, default=100_000)
    ap.add_argument("--radius-km", type=float, default=200.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--check", type=int, default=2000, help="samples checked against brute force")
    args = ap.parse_args()

    from scipy.spatial import cKDTree

    from georeason.data.select import near_any
    from georeason.geo import haversine_km
    from georeason.geo.gazetteer import unit_vectors

    lat, lon = photo_like_points(args.n, seed=0)
    hlat, hlon = photo_like_points(args.hotspots, seed=1)
    print(
        f"cores: {os.cpu_count()}   samples {args.n:,}   hotspots {args.hotspots:,}   radius {args.radius_km:g} km"
    )
    filt, anchor = [], []
    mask = None
    for _ in range(args.repeats):
        t = time.perf_counter()
        cKDTree(unit_vectors(hlat, hlon))
        unit_vectors(lat, lon)
        anchor.append(time.perf_counter() - t)
        t = time.perf_counter()
        mask, _ = near_any(lat, lon, hlat, hlon, args.radius_km)
        filt.append(time.perf_counter() - t)
    m, a = statistics.median(filt), statistics.median(anchor)
    assert mask is not None
    print(
        f"filter {m:6.2f} s   {args.n / m:12,.0f} samples/s   dropped {mask.mean():.1%}   "
        f"anchor (tree + unit vectors) {a:5.2f} s   ratio {m / a:4.1f}x   "
        f"[{'OK' if m <= 60 else 'OVER'} vs 60 s target]"
    )
    if args.check:
        rng = np.random.default_rng(2)
        idx = rng.choice(args.n, size=min(args.check, args.n), replace=False)
        t = time.perf_counter()
        brute = np.array(
            [bool((haversine_km(lat[i], lon[i], hlat, hlon) <= args.radius_km).any()) for i in idx]
        )
        bt = time.perf_counter() - t
        agree = (brute == mask[idx]).mean()
        print(
            f"brute-force check on {idx.size:,} samples: agreement {agree:.4%} "
            f"(brute force would take ~{bt / idx.size * args.n / 3600:.1f} h for all)"
        )


if __name__ == "__main__":
    main()
