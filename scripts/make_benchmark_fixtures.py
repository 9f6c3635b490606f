"""Generate the small benchmark fixtures under tests/fixtures/benchmarks/ (fixed seed).

    python scripts/make_benchmark_fixtures.py [--out tests/fixtures/benchmarks]

Writes, each in its own folder, the file layout of every benchmark loader of
:mod:`georeason.datasets.benchmarks`, with tiny images (24x24 JPEG/PNG) so the whole
set stays well under 200 kB:

- ``im2gps3k/``          ``im2gps3k_places365.csv`` (correct ``LAT,LON`` header) + ``im2gps3ktest/``
- ``im2gps3k_swapped/``  the same rows with the header ``LON,LAT`` over lat, lon values (the
                         circulating copy) + ``images/``
- ``yfcc4k/``            ``yfcc4k_places365.csv`` with IMG_IDs *without* extension + ``yfcc4k/``
- ``mp16_reason_hf/``    Parquet (``data/test-00000-of-00001.parquet``) with the ``datasets``
                         Image feature (PNG bytes) and country/city labels
- ``mp16_reason_csv/``   GLOBE's layout: ``mp16-reason-test-12k.csv`` + ``eval_images/``
- ``csv_bench/``         ``benchmark.csv`` (30 rows: id, image, lat, lon, country, city) +
                         ``images/`` with 28 good images, ONE corrupt (truncated JPEG) and ONE
                         missing image — the eval runner's kill-and-resume fixture
- ``exif/``              JPEGs with a GPS fix in EXIF (one in a subfolder), one without GPS,
                         one with the (0, 0) "no fix"

Same seed -> byte-identical files (PIL's JPEG/PNG encoders are deterministic).
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

SEED = 20260611

# (city, country, lat, lon): real places, so labels and reverse geocoding agree.
PLACES: list[tuple[str, str, float, float]] = [
    ("Paris", "France", 48.8566, 2.3522),
    ("Tokyo", "Japan", 35.6762, 139.6503),
    ("New York City", "United States", 40.7128, -74.0060),
    ("Sydney", "Australia", -33.8688, 151.2093),
    ("Cairo", "Egypt", 30.0444, 31.2357),
    ("Rio de Janeiro", "Brazil", -22.9068, -43.1729),
    ("Moscow", "Russia", 55.7558, 37.6173),
    ("Mumbai", "India", 19.0760, 72.8777),
    ("Cape Town", "South Africa", -33.9249, 18.4241),
    ("Vancouver", "Canada", 49.2827, -123.1207),
    ("Mexico City", "Mexico", 19.4326, -99.1332),
    ("Buenos Aires", "Argentina", -34.6037, -58.3816),
    ("Berlin", "Germany", 52.5200, 13.4050),
    ("Rome", "Italy", 41.9028, 12.4964),
    ("Madrid", "Spain", 40.4168, -3.7038),
    ("Bangkok", "Thailand", 13.7563, 100.5018),
    ("Nairobi", "Kenya", -1.2921, 36.8219),
    ("Auckland", "New Zealand", -36.8485, 174.7633),
    ("Reykjavik", "Iceland", 64.1466, -21.9426),
    ("Honolulu", "United States", 21.3069, -157.8583),
    ("Lima", "Peru", -12.0464, -77.0428),
    ("Istanbul", "Turkey", 41.0082, 28.9784),
    ("Seoul", "South Korea", 37.5665, 126.9780),
    ("Anchorage", "United States", 61.2181, -149.9003),
    ("Lisbon", "Portugal", 38.7223, -9.1393),
    ("Hanoi", "Vietnam", 21.0278, 105.8342),
    ("Santiago", "Chile", -33.4489, -70.6693),
    ("Stockholm", "Sweden", 59.3293, 18.0686),
    ("Perth", "Australia", -31.9505, 115.8605),
    ("Lagos", "Nigeria", 6.5244, 3.3792),
]


def _image(rng: np.random.Generator, size: int = 24) -> Image.Image:
    """A small RGB image: two colour bands and noise (cheap to decode, not blank)."""
    top, bottom = rng.integers(0, 256, size=(2, 3))
    arr = np.empty((size, size, 3), dtype=np.float64)
    arr[: size // 2] = top
    arr[size // 2 :] = bottom
    arr += rng.normal(0, 12, size=arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _jpeg(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85, **kw)
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _flickr_id(rng: np.random.Generator) -> str:
    a = int(rng.integers(10**8, 10**10))
    b = "".join(rng.choice(list("0123456789abcdef"), size=10))
    return f"{a}_{b}_{int(rng.integers(10, 1500))}_{int(rng.integers(10**6, 10**8))}@N00.jpg"


def make_im2gps3k(out: Path, rng: np.random.Generator, *, swapped: bool) -> None:
    folder = out / ("im2gps3k_swapped" if swapped else "im2gps3k")
    img_dir = folder / ("images" if swapped else "im2gps3ktest")
    img_dir.mkdir(parents=True)
    # A mix with |lon| > 90 (Tokyo, Sydney, NYC is -74: the range test needs some beyond ±90).
    chosen = [PLACES[i] for i in (0, 1, 2, 3, 9, 17)]
    header = ["IMG_ID", "AUTHOR", "LON", "LAT"] if swapped else ["IMG_ID", "AUTHOR", "LAT", "LON"]
    header += ["S3_Label", "S16_Label", "S365_Label", "Prob_indoor", "Prob_natural", "Prob_urban"]
    rows = []
    for _city, _country, lat, lon in chosen:
        name = _flickr_id(rng)
        (img_dir / name).write_bytes(_jpeg(_image(rng)))
        p = rng.dirichlet([1, 1, 1])
        # Values stay lat, lon in both files: only the header differs (as in the real copies).
        rows.append(
            [
                name,
                name.split("_")[-1][:-4],
                lat,
                lon,
                int(rng.integers(0, 3)),
                int(rng.integers(0, 16)),
                int(rng.integers(0, 365)),
                *(round(float(x), 6) for x in p),
            ]
        )
    _write_csv(folder / "im2gps3k_places365.csv", header, rows)


def make_yfcc4k(out: Path, rng: np.random.Generator) -> None:
    folder = out / "yfcc4k"
    img_dir = folder / "yfcc4k"
    img_dir.mkdir(parents=True)
    rows = []
    for _city, _country, lat, lon in PLACES[4:9]:
        img_id = str(int(rng.integers(10**9, 10**11)))
        (img_dir / f"{img_id}.jpg").write_bytes(_jpeg(_image(rng)))
        rows.append([img_id, lat, lon, int(rng.integers(0, 3))])
    _write_csv(folder / "yfcc4k_places365.csv", ["IMG_ID", "LAT", "LON", "S3_Label"], rows)


def make_mp16_hf(out: Path, rng: np.random.Generator) -> None:
    from datasets import Dataset, Features, Value
    from datasets import Image as ImageFeature

    folder = out / "mp16_reason_hf" / "data"
    folder.mkdir(parents=True)
    chosen = PLACES[10:16]
    features = Features(
        {
            "id": Value("string"),
            "image": ImageFeature(),
            "LAT": Value("float64"),
            "LON": Value("float64"),
            "country": Value("string"),
            "city": Value("string"),
        }
    )
    data = {
        "id": [f"mp16_{i:03d}" for i in range(len(chosen))],
        "image": [{"bytes": _png(_image(rng)), "path": None} for _ in chosen],
        "LAT": [p[2] for p in chosen],
        "LON": [p[3] for p in chosen],
        "country": [p[1] for p in chosen],
        "city": [p[0] for p in chosen],
    }
    Dataset.from_dict(data, features=features).to_parquet(str(folder / "test-00000-of-00001.parquet"))


def make_mp16_csv(out: Path, rng: np.random.Generator) -> None:
    folder = out / "mp16_reason_csv"
    img_dir = folder / "eval_images"
    img_dir.mkdir(parents=True)
    rows = []
    for i, (city, country, lat, lon) in enumerate(PLACES[16:20]):
        img_id = f"{i:02d}_{int(rng.integers(10**6, 10**8))}"
        (img_dir / f"{img_id}.jpg").write_bytes(_jpeg(_image(rng)))  # IMG_ID has no .jpg, as in GLOBE's CSV
        rows.append([img_id, lat, lon, city, country])
    _write_csv(folder / "mp16-reason-test-12k.csv", ["IMG_ID", "LAT", "LON", "city", "country"], rows)


def make_csv_bench(out: Path, rng: np.random.Generator) -> None:
    folder = out / "csv_bench"
    img_dir = folder / "images"
    img_dir.mkdir(parents=True)
    rows = []
    for i, (city, country, lat, lon) in enumerate(PLACES):
        name = f"img{i:03d}.jpg"
        data = _jpeg(_image(rng))
        if i == 7:
            data = data[: len(data) // 3]  # truncated JPEG: a corrupt image
        if i != 13:  # img013.jpg is listed but missing
            (img_dir / name).write_bytes(data)
        rows.append([f"img{i:03d}", name, lat, lon, country, city])
    _write_csv(folder / "benchmark.csv", ["id", "image", "lat", "lon", "country", "city"], rows)


def make_exif(out: Path, rng: np.random.Generator) -> None:
    from georeason.images import gps_exif

    folder = out / "exif"
    (folder / "trip").mkdir(parents=True)
    for i, (_city, _country, lat, lon) in enumerate(PLACES[20:23]):
        target = folder / ("trip" if i == 2 else "") / f"photo{i}.jpg"
        target.write_bytes(_jpeg(_image(rng), exif=gps_exif(lat, lon)))
    (folder / "no_gps.jpg").write_bytes(_jpeg(_image(rng)))
    (folder / "zero_fix.jpg").write_bytes(_jpeg(_image(rng), exif=gps_exif(0.0, 0.0)))
    (folder / "notes.txt").write_text("not an image\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests/fixtures/benchmarks"
    )
    args = ap.parse_args()
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rng = np.random.default_rng(SEED)
    make_im2gps3k(out, rng, swapped=False)
    make_im2gps3k(out, rng, swapped=True)
    make_yfcc4k(out, rng)
    make_mp16_hf(out, rng)
    make_mp16_csv(out, rng)
    make_csv_bench(out, rng)
    make_exif(out, rng)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {sum(1 for p in out.rglob('*') if p.is_file())} files, {total / 1024:.1f} kB, under {out}")


if __name__ == "__main__":
    main()
