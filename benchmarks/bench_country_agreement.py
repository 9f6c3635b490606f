"""Country agreement with Natural Earth polygon truth on photo-like land points.

Truth is computed independently of the fast path: each (relabelled) Natural
Earth polygon part is prepared and tested with `shapely.contains_xy` on the
points inside its bounding box — no grid, no clipped pieces. Only points that
fall on some polygon (land) are scored. Also prints how often the nearest
GeoNames city's country (what `reverse_geocoder` returns) disagrees with it.

Target (issue 2): >= 99.5 % agreement on >= 100k land points.

    python benchmarks/bench_country_agreement.py [--n 200000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _photo_points import photo_like_points


def polygon_truth(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    import shapely

    from georeason.geo.countries import _relabel_parts, natural_earth_admin0

    parts, codes = _relabel_parts(*natural_earth_admin0())
    truth = np.full(len(lat), "", dtype=object)
    for part, code in zip(parts, codes, strict=True):
        x0, y0, x1, y1 = part.bounds
        sel = np.flatnonzero((lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1))
        if len(sel):
            shapely.prepare(part)
            inside = shapely.contains_xy(part, lon[sel], lat[sel])
            truth[sel[inside]] = code
    return truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000)
    args = ap.parse_args()
    import reverse_geocoder as rg

    from georeason.geo import reverse_geocode_batch

    lat, lon = photo_like_points(args.n, seed=1)
    t = time.perf_counter()
    truth = polygon_truth(lat, lon)
    print(f"polygon truth: {time.perf_counter() - t:.1f} s")
    land = truth != ""
    ours = reverse_geocode_batch(lat, lon).country_code
    agree = (ours[land] == truth[land]).mean()
    nearest_city = np.array(
        [r["cc"] for r in rg.search(list(zip(lat[land], lon[land], strict=True)), verbose=False)]
    )
    print(f"land points: {land.sum():,} of {args.n:,}")
    print(f"georeason country agreement with polygon truth: {agree:.4%}   (target >= 99.5%)")
    print(f"reverse_geocoder (nearest city) agreement:       {(nearest_city == truth[land]).mean():.4%}")
    bad = np.flatnonzero(ours[land] != truth[land])[:10]
    for i in bad:
        j = np.flatnonzero(land)[i]
        print(f"  disagree at ({lat[j]:.5f}, {lon[j]:.5f}): ours {ours[j]} truth {truth[j]}")


if __name__ == "__main__":
    main()
