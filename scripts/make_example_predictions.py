"""Generate src/georeason/eval/example/predictions.csv, the file `georeason score --example` scores.

200 real places from the offline gazetteer (GeoNames cities with >= 50k people),
spread over the inhabited continents, with the kind of predictions a reasoning
VLM makes: some near the spot, many in the right region or country, some on the
right continent, a few far off, and a few missing (blank, or text that is not a
coordinate). Predicted place labels (country / state / city) are what the
predicted coordinates reverse-geocode to, written as names the way a model
would write them ("France", not "FR"); a few are left blank.

Fixed seed, so the file is reproducible:

    python scripts/make_example_predictions.py            # rewrites the package file
    python scripts/make_example_predictions.py --out x.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from georeason.geo import continent_of, country_name, gazetteer, reverse_geocode_batch
from georeason.geo.distance import EARTH_RADIUS_KM

SEED = 20260101
N_ROWS = 200
# Rows per continent: roughly where photo benchmarks (IM2GPS3K, YFCC4K) put their photos.
PER_CONTINENT = {"EU": 60, "NA": 45, "AS": 45, "SA": 18, "AF": 16, "OC": 16}
# Error model: (share, median km, log-sd) of a lognormal per kind of guess.
ERROR_MIXTURE = (
    (0.22, 3.0, 1.0),  # the right spot (landmark, street sign)
    (0.28, 60.0, 0.9),  # right region / city area
    (0.22, 350.0, 0.6),  # right country, wrong region
    (0.15, 1400.0, 0.5),  # right continent
    (0.13, 6000.0, 0.5),  # wrong continent
)
N_BLANK = 8  # no prediction at all
N_TEXT = 3  # the model wrote something that is not a coordinate
N_BLANK_LABELS = 6  # coordinates but no predicted state/city


def destination(
    lat: np.ndarray, lon: np.ndarray, dist_km: np.ndarray, bearing: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Point at ``dist_km`` along ``bearing`` (radians) on the sphere of radius EARTH_RADIUS_KM."""
    p1, l1 = np.radians(lat), np.radians(lon)
    ang = dist_km / EARTH_RADIUS_KM
    p2 = np.arcsin(np.sin(p1) * np.cos(ang) + np.cos(p1) * np.sin(ang) * np.cos(bearing))
    l2 = l1 + np.arctan2(np.sin(bearing) * np.sin(ang) * np.cos(p1), np.cos(ang) - np.sin(p1) * np.sin(p2))
    return np.degrees(p2), (np.degrees(l2) + 540.0) % 360.0 - 180.0


def make(seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = gazetteer()
    cont = np.array([continent_of(str(c)) or "" for c in g.country_code], dtype=object)
    big = g.population >= 50_000
    rows: list[int] = []
    for code, k in PER_CONTINENT.items():
        idx = np.flatnonzero(big & (cont == code))
        # Weight by sqrt(population): big cities are photographed more, but not only them.
        w = np.sqrt(g.population[idx].astype(np.float64))
        rows.extend(rng.choice(idx, size=k, replace=False, p=w / w.sum()).tolist())
    sel = np.array(rng.permutation(rows))
    assert sel.size == N_ROWS

    # Photos are taken around a town, not at its gazetteer point.
    t_lat, t_lon = destination(
        g.lat[sel].astype(np.float64),
        g.lon[sel].astype(np.float64),
        rng.exponential(2.0, N_ROWS),
        rng.uniform(0, 2 * np.pi, N_ROWS),
    )
    share = np.array([m[0] for m in ERROR_MIXTURE])
    kind = rng.choice(len(ERROR_MIXTURE), size=N_ROWS, p=share / share.sum())
    med = np.array([m[1] for m in ERROR_MIXTURE])[kind]
    sd = np.array([m[2] for m in ERROR_MIXTURE])[kind]
    err = np.minimum(med * np.exp(sd * rng.standard_normal(N_ROWS)), 19_000.0)
    p_lat, p_lon = destination(t_lat, t_lon, err, rng.uniform(0, 2 * np.pi, N_ROWS))

    truth = reverse_geocode_batch(t_lat, t_lon)
    pred = reverse_geocode_batch(p_lat, p_lon)
    df = pd.DataFrame(
        {
            "id": [f"ex{i:03d}" for i in range(N_ROWS)],
            "lat": np.round(t_lat, 5),
            "lon": np.round(t_lon, 5),
            "continent": truth.continent,
            "country_code": truth.country_code,
            "admin1": truth.admin1,
            "city": truth.city,
            "pred_lat": np.round(p_lat, 5).astype(object),
            "pred_lon": np.round(p_lon, 5).astype(object),
            "pred_country": [country_name(c) if c else "" for c in pred.country_code],
            "pred_admin1": pred.admin1,
            "pred_city": pred.city,
        }
    )
    gone = rng.choice(N_ROWS, size=N_BLANK + N_TEXT + N_BLANK_LABELS, replace=False)
    blank, text, no_labels = gone[:N_BLANK], gone[N_BLANK : N_BLANK + N_TEXT], gone[N_BLANK + N_TEXT :]
    df.loc[blank, ["pred_lat", "pred_lon", "pred_country", "pred_admin1", "pred_city"]] = ""
    df.loc[text, "pred_lat"] = ["unknown", "n/a", "somewhere in Europe"][:N_TEXT]
    df.loc[text, "pred_lon"] = ""
    df.loc[text, ["pred_country", "pred_admin1", "pred_city"]] = ""
    df.loc[no_labels, ["pred_admin1", "pred_city"]] = ""
    return df


def main() -> None:
    default = Path(__file__).resolve().parents[1] / "src" / "georeason" / "eval" / "example" / "predictions.csv"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=default)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    df = make(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    print(f"wrote {len(df)} rows to {args.out}")


if __name__ == "__main__":
    main()
