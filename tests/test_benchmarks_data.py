"""Benchmark loaders on the generated fixtures (scripts/make_benchmark_fixtures.py).

Covers every loader's layout, the swapped LAT/LON header of old im2gps3k copies,
image resolution (extension-less ids, nested archive folders), bad rows, and the
error a missing dataset raises (it must say where to get it and the file tree).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from georeason.datasets.benchmarks import (
    BENCHMARKS,
    BenchmarkWarning,
    DatasetNotFoundError,
    SwappedCoordinatesWarning,
    fix_swapped_coordinates,
    load_benchmark,
)

F = Path(__file__).parent / "fixtures" / "benchmarks"
PARIS = (48.8566, 2.3522)
TOKYO = (35.6762, 139.6503)


def _quiet(name: str, root: Path | str, **kw: object):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_benchmark(name, root, **kw)


@pytest.mark.requires("datasets")
def test_fixtures_are_current(tmp_path: Path) -> None:
    """The committed fixtures are what the generator writes (fixed seed, deterministic)."""
    import subprocess
    import sys

    script = Path(__file__).parents[1] / "scripts" / "make_benchmark_fixtures.py"
    subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path / "fx")], check=True, capture_output=True
    )
    made = {
        p.relative_to(tmp_path / "fx"): p.read_bytes() for p in (tmp_path / "fx").rglob("*") if p.is_file()
    }
    have = {p.relative_to(F): p.read_bytes() for p in F.rglob("*") if p.is_file()}
    assert made.keys() == have.keys()
    assert [k for k in made if made[k] != have[k]] == []


def test_im2gps3k_correct_header() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", SwappedCoordinatesWarning)  # must not fire
        ds = load_benchmark("im2gps3k", F / "im2gps3k")
    assert len(ds) == 6 and ds.reference_name == "im2gps3k" and ds.notes == []
    s = ds[0]
    assert (s.lat, s.lon) == PARIS
    assert s.id.endswith("@N00.jpg") and isinstance(s.image, Path) and s.image.is_file()
    assert s.image.parent.name == "im2gps3ktest"
    assert ds.label_columns == []


def test_im2gps3k_swapped_header_is_fixed_with_a_warning() -> None:
    with pytest.warns(SwappedCoordinatesWarning, match=r"'LAT' and 'LON' are swapped"):
        ds = load_benchmark("im2gps3k", F / "im2gps3k_swapped")
    assert len(ds) == 6
    assert (ds[0].lat, ds[0].lon) == PARIS and (ds[1].lat, ds[1].lon) == TOKYO
    assert np.all(np.abs(ds.table["lat"]) <= 90)
    assert any("swapped" in n for n in ds.notes)
    assert ds[0].image.parent.name == "images"  # the other image folder name
    # Forcing the header's reading keeps the impossible latitudes: those rows are dropped, loudly.
    with pytest.warns(BenchmarkWarning, match="dropped 4 of 6 rows"):
        kept = load_benchmark("im2gps3k", F / "im2gps3k_swapped", swap_coordinates=False)
    assert len(kept) == 2


def test_swap_detection_rule() -> None:
    lat = np.array([40.0, 35.0, -33.0])
    lon = np.array([-74.0, 139.0, 151.0])
    # Right way round: unchanged, silent.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a, b, swapped = fix_swapped_coordinates(lat, lon, source="t")
    assert not swapped and a is lat
    # Swapped: "lat" holds values beyond ±90.
    with pytest.warns(SwappedCoordinatesWarning):
        a, b, swapped = fix_swapped_coordinates(lon, lat, source="t")
    assert swapped and np.array_equal(a, lat) and np.array_equal(b, lon)
    # Ambiguous (everything within ±90, e.g. all of Europe): trust the header.
    eu_lat, eu_lon = np.array([48.8, 52.5]), np.array([2.3, 13.4])
    a, b, swapped = fix_swapped_coordinates(eu_lon, eu_lat, source="t")
    assert not swapped
    # Both beyond ±90 somewhere: not a swap, bad rows (dropped later by the loader).
    a, b, swapped = fix_swapped_coordinates(np.array([100.0]), np.array([120.0]), source="t")
    assert not swapped


def test_yfcc4k_ids_without_extension() -> None:
    ds = load_benchmark("yfcc4k", F / "yfcc4k")
    assert len(ds) == 5 and ds.reference_name == "yfcc4k"
    assert "." not in ds[0].id
    assert all(p.is_file() and p.suffix == ".jpg" for p in ds.images)


def test_images_found_anywhere_under_root(tmp_path: Path) -> None:
    """Archives unpack into folders of any name: images are found by file name."""
    root = tmp_path / "im2gps3k"
    root.mkdir()
    shutil.copy(F / "im2gps3k" / "im2gps3k_places365.csv", root)
    shutil.copytree(F / "im2gps3k" / "im2gps3ktest", root / "archive" / "im2gps3k_rgb_images")
    ds = load_benchmark("im2gps3k", root)
    assert all(p.is_file() and "im2gps3k_rgb_images" in str(p) for p in ds.images)


@pytest.mark.requires("datasets")
def test_mp16_reason_hf_parquet() -> None:
    from georeason.images import load_image

    ds = load_benchmark("mp16-reason", F / "mp16_reason_hf")
    assert len(ds) == 6 and ds.reference_name == "mp16-reason-test"
    assert ds.label_columns == ["country", "city"]
    s = ds[0]
    assert s.id == "mp16_000" and (s.country, s.city) == ("Mexico", "Mexico City")
    assert (s.lat, s.lon) == (19.4326, -99.1332)  # LAT/LON columns
    assert isinstance(s.image, bytes)  # not decoded until asked
    assert load_image(s.image).size == (24, 24)


def test_mp16_reason_globe_csv_layout() -> None:
    ds = load_benchmark("mp16-reason", F / "mp16_reason_csv")
    assert len(ds) == 4 and ds.reference_name == "mp16-reason-test"
    assert ds[0].city == "Nairobi" and ds[0].country == "Kenya"
    assert all(p.is_file() and p.parent.name == "eval_images" for p in ds.images)


@pytest.mark.requires("datasets")
def test_hf_save_to_disk_splits(tmp_path: Path) -> None:
    import datasets

    from georeason.images import load_image

    rows = {
        "id": ["a", "b"],
        "image": [str(F / "csv_bench/images/img000.jpg"), "img001.jpg"],
        "latitude": [48.8566, 35.6762],
        "longitude": [2.3522, 139.6503],
        "country_code": ["FR", "JP"],
    }
    dd = datasets.DatasetDict(
        {"test": datasets.Dataset.from_dict(rows), "train": datasets.Dataset.from_dict(rows)}
    )
    dd.save_to_disk(str(tmp_path / "hf"))
    ds = load_benchmark("hf", tmp_path / "hf", images=F / "csv_bench/images")
    assert len(ds) == 2 and ds.reference_name is None and ds.label_columns == ["country_code"]
    assert ds[1].image == F / "csv_bench/images/img001.jpg"  # relative path -> images folder
    assert load_image(ds[0].image).size == (24, 24)
    with pytest.raises(ValueError, match=r"no split 'validation'.*\['test', 'train'\]"):
        load_benchmark("hf", tmp_path / "hf", split="validation")


def test_csv_benchmark_keeps_missing_images_and_warns() -> None:
    with pytest.warns(BenchmarkWarning, match=r"1 of 30 images are missing on disk"):
        ds = load_benchmark("csv", F / "csv_bench")
    assert len(ds) == 30 and ds.ids[13] == "img013"
    assert not ds.images[13].exists()  # kept: an evaluation records it as a failure
    info = ds.describe()
    assert info["n_missing_images"] == 1 and info["labels"] == ["country", "city"]
    # The table file itself works as root too.
    assert len(_quiet("csv", F / "csv_bench" / "benchmark.csv")) == 30


def test_csv_benchmark_bad_rows_columns_duplicates(tmp_path: Path) -> None:
    img_dir = tmp_path / "pics"
    shutil.copytree(F / "csv_bench" / "images", img_dir)
    table = pd.DataFrame(
        {
            "file": ["img000.jpg", "img001.jpg", "img002.jpg", "img003.jpg", "img004.jpg"],
            "Latitude": ["48.85", "abc", "95", "40.7", "-33.9"],
            "Lng": ["2.35", "139.6", "10", "-74.0", "151.2"],
            "key": ["p", "t", "x", "n", "n"],
            "State": ["Île-de-France", "", "", "New York", "New South Wales"],
        }
    )
    table.to_parquet(tmp_path / "labels.parquet")
    with pytest.warns(BenchmarkWarning) as rec:
        ds = load_benchmark("csv", tmp_path / "labels.parquet", images=img_dir, id_col="key")
    msgs = " ".join(str(w.message) for w in rec)
    assert "dropped 2 of 5 rows" in msgs and "duplicate ids" in msgs
    assert ds.ids == ["p", "n", "n#2"]
    assert ds.table["admin1"].tolist() == ["Île-de-France", "New York", "New South Wales"]
    assert len(ds.problems) == 3
    with pytest.raises(ValueError, match="no latitude column 'lat_deg'"):
        load_benchmark("csv", tmp_path / "labels.parquet", lat_col="lat_deg")


def test_exif_folder() -> None:
    ds = load_benchmark("exif", F / "exif")
    assert sorted(ds.ids) == ["photo0.jpg", "photo1.jpg", "trip/photo2.jpg"]
    lima = ds.table.set_index("id").loc["photo0.jpg"]
    assert lima["lat"] == pytest.approx(-12.0464, abs=1e-4) and lima["lon"] == pytest.approx(
        -77.0428, abs=1e-4
    )
    assert any("2 of 5 images have no GPS" in n for n in ds.notes)  # no_gps.jpg and the (0, 0) fix


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "im2gps3k",
            [
                "georeason data fetch im2gps3k --to",
                "im2gps3k_places365.csv",
                "im2gps3ktest/",
                "mediafire.com/file/7ht7sn78q27o9we/im2gps3ktest.zip",
                "IMG_ID, AUTHOR, LAT, LON",
            ],
        ),
        ("yfcc4k", ["georeason data fetch yfcc4k --to", "yfcc4k_places365.csv", "yfcc4k/", "yfcc4k.zip"]),
        (
            "mp16-reason",
            ["github.com/lingli1996/GLOBE", "dataset_dict.json", "mp16-reason-test-12k.csv", "eval_images/"],
        ),
        ("csv", ["Expected layout", "benchmark.csv", "images/"]),
        ("exif", ["EXIF", "GPS"]),
    ],
)
def test_missing_dataset_says_how_to_get_it(tmp_path: Path, name: str, expected: list[str]) -> None:
    root = tmp_path / "nothing_here"
    with pytest.raises(DatasetNotFoundError) as err:
        load_benchmark(name, root)
    text = str(err.value)
    for piece in expected:
        assert piece in text, (piece, text)
    assert str(root) in text


def test_metadata_without_images_is_not_found(tmp_path: Path) -> None:
    shutil.copy(F / "im2gps3k" / "im2gps3k_places365.csv", tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"(?s)none of its 6 images.*How to get it"):
        load_benchmark("im2gps3k", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"no im2gps3k_places365\.csv"):
        load_benchmark("im2gps3k", tmp_path / "empty")


def test_registry_names_and_options() -> None:
    assert set(BENCHMARKS) == {"im2gps3k", "yfcc4k", "mp16-reason", "hf", "csv", "exif"}
    assert len(load_benchmark("IM2GPS3K", F / "im2gps3k")) == 6  # case-insensitive
    with pytest.raises(ValueError, match="unknown benchmark 'osv5m'"):
        load_benchmark("osv5m", F)
    with pytest.raises(ValueError, match="unexpected keyword argument 'colour'"):
        load_benchmark("exif", F / "exif", colour="red")


def test_data_check_cli() -> None:
    from georeason.cli import app
    from georeason.commands import data_cmd  # noqa: F401

    res = CliRunner().invoke(app, ["data", "check", "-b", "im2gps3k", "--data", str(F / "im2gps3k_swapped")])
    assert res.exit_code == 0, res.output
    assert "im2gps3k: 6 images" in res.output and "swapped" in res.output
    res = CliRunner().invoke(app, ["data", "check", "-b", "yfcc4k", "--data", str(F / "nope")])
    assert res.exit_code == 1 and "georeason data fetch yfcc4k" in res.output
