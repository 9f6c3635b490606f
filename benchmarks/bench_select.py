"""Geo-R hard-set filter at MP-16 scale: N samples against K hotspots at R km.

Samples and hotspots are photo-like coordinates (near GeoNames places, weighted
by population: clustered like MP-16, the hard case for a radius query since
cities hold thousands of points each). Times, alternately, in the same run:

- filter: :func:`georeason.geo.sphere.near_any` (KD-tree on hotspot unit
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
    ap.add_argument(
        "--end-to-end",
        action="store_true",
        help="also time `data select` as a whole on a labelled Parquet table (load, filter, write, report, map)",
    )
    args = ap.parse_args()

    from scipy.spatial import cKDTree

    from georeason.geo import haversine_km
    from georeason.geo.sphere import near_any, unit_vectors

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
    if args.end_to_end:
        end_to_end(lat, lon, hlat, hlon, args.radius_km)


def end_to_end(
    lat: np.ndarray, lon: np.ndarray, hlat: np.ndarray, hlon: np.ndarray, radius_km: float
) -> None:
    """run_select on a table as `data label` writes it, hotspots from an eval-style predictions file."""
    import json
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    from georeason.geo import reverse_geocode_batch
    from georeason.pipelines.select import SelectConfig, run_select

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        t = time.perf_counter()
        places = reverse_geocode_batch(lat, lon)
        cols = {"IMG_ID": [f"{i:08d}.jpg" for i in range(lat.size)], "LAT": lat, "LON": lon}
        cols.update(
            {k: getattr(places, k) for k in ("continent", "country_code", "country", "admin1", "city")}
        )
        pq.write_table(pa.table(cols), d / "labelled.parquet")
        with (d / "predictions.jsonl").open("w") as f:
            for i in range(hlat.size):  # the fields of georeason eval's lines that selection reads
                f.write(
                    json.dumps({"id": f"h{i}", "true_lat": hlat[i], "true_lon": hlon[i], "distance_km": 3.0})
                    + "\n"
                )
        print(f"end to end: inputs written in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        cfg = SelectConfig(correctness=str(d / "predictions.jsonl"), radius_km=radius_km, target=100_000)
        res = run_select(d / "labelled.parquet", d / "selected.parquet", cfg)
        total = time.perf_counter() - t
        tm = res.report["timings"]
        print(
            f"end to end: {total:.1f} s for {lat.size:,} rows (load + difficulty/hard set/fill + write + report + map); "
            f"hard-set stage {tm.get('hard_set_s', float('nan')):.1f} s; selected {res.rows.size:,}"
        )


if __name__ == "__main__":
    main()
