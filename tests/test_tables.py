"""georeason.tables: one reader, one column vocabulary, the swapped-header check, streaming."""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from georeason.tables import (
    SwappedCoordinatesWarning,
    TableError,
    coordinate_columns,
    csv_batches,
    detect_column,
    fix_swapped_coordinates,
    open_dataset,
    parquet_batches,
    place_columns,
    read_arrow,
    read_table,
    slices,
    table_format,
    text_rows,
    to_float,
)

ROWS = [
    {"IMG_ID": "007", "LAT": "48.8566", "LON": "2.3522", "country_code": "NA", "state": "Île-de-France"},
    {"IMG_ID": "008", "LAT": "-33.87", "LON": "151.21", "country_code": "AU", "state": "NSW"},
]


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    df = pd.DataFrame(rows)
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        df.to_csv(path, index=False)
    elif name.endswith(".tsv"):
        df.to_csv(path, index=False, sep="\t")
    elif name.endswith(".parquet"):
        df.to_parquet(path)
    elif name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.tsv", "t.parquet", "t.jsonl"])
def test_every_format_reads_the_same_rows(tmp_path: Path, name: str) -> None:
    t = read_table(_write(tmp_path / name, ROWS))
    assert t.format == {"t.csv": "csv", "t.csv.gz": "csv", "t.tsv": "tsv"}.get(name, name.split(".")[-1])
    assert t.columns == ["IMG_ID", "LAT", "LON", "country_code", "state"]
    # text stays text: the leading zeros of an id and "NA" (Namibia) survive
    assert t.frame["IMG_ID"].tolist() == ["007", "008"]
    assert t.frame["country_code"].tolist() == ["NA", "AU"]
    assert to_float(t.frame["LAT"]).tolist() == [48.8566, -33.87]


def test_aliases_of_the_one_vocabulary(tmp_path: Path) -> None:
    assert coordinate_columns(["IMG_ID", "LAT", "LON"]) == ("LAT", "LON")
    assert coordinate_columns(["Latitude", "Longitude"]) == ("Latitude", "Longitude")
    assert coordinate_columns(["gps_lat", "gps_lon"]) == ("gps_lat", "gps_lon")
    assert coordinate_columns(["GPSLatitude", "GPSLongitude"]) == ("GPSLatitude", "GPSLongitude")
    assert coordinate_columns(["lat", "lng"]) == ("lat", "lng")
    assert coordinate_columns(["gt_lat", "gt_lon"]) == ("gt_lat", "gt_lon")
    # an explicit name may differ in case
    assert coordinate_columns(["y", "x"], "Y", "x") == ("y", "x")
    assert place_columns(["state", "Country_Code", "city_name"]) == {
        "country_code": "Country_Code",
        "admin1": "state",
        "city": "city_name",
    }
    assert place_columns(["city", "pred_city"], exclude=["city"]) == {}


def test_missing_and_ambiguous_columns_say_what_and_where(tmp_path: Path) -> None:
    with pytest.raises(TableError) as err:
        coordinate_columns(["IMG_ID", "y", "x"], source="in.csv")
    msg = str(err.value)
    assert msg.startswith("in.csv: no latitude/longitude columns: no latitude column found")
    assert "the table has: IMG_ID, y, x" in msg and "--lat-col" in msg and "LAT" not in msg.split("tried")[0]
    with pytest.raises(TableError, match=r"no latitude column 'nope': the table has no column 'nope'"):
        coordinate_columns(["y", "x"], "nope", "x")
    with pytest.raises(TableError, match=r"several columns could hold the latitude \(lat, LAT\)"):
        coordinate_columns(["lat", "LAT", "lon"])
    with pytest.raises(TableError, match=r"lat_col= \(on the command line"):
        detect_column(["a"], None, ("lat",), "latitude", how="{key}= (on the command line)")
    assert detect_column(["a"], None, ("id",), "id", required=False) is None
    with pytest.raises(TableError, match="cannot both be column 'v'"):
        coordinate_columns(["v"], "v", "v")


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_table(tmp_path / "missing.csv")
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(TableError, match=r"cannot tell the format.*unsupported file type '.xlsx'"):
        read_table(tmp_path / "x.xlsx")
    with pytest.raises(TableError, match="cannot tell the format"):
        table_format("t.jsonl", ("csv", "parquet"))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TableError, match=r"could not read .*empty\.csv as csv: empty\.csv is empty"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("lat,lon\n")
    with pytest.raises(TableError, match="holds no rows"):
        read_table(tmp_path / "header.csv")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(TableError, match=r"could not read .*bad\.parquet as parquet"):
        read_table(tmp_path / "bad.parquet")
    (tmp_path / "some.jsonl").write_text('{"lat": 1, "lon": 2}\n{not json\n[1]\n')
    t = read_table(tmp_path / "some.jsonl")
    assert len(t.frame) == 1 and t.bad_lines == [2, 3]


def test_swapped_header_is_detected_by_range() -> None:
    lat = np.array([2.35, 151.2, -74.0])  # the "latitude" column holds longitudes
    lon = np.array([48.86, -33.87, 40.71])
    with pytest.warns(SwappedCoordinatesWarning, match=r"'LAT' and 'LON' are swapped"):
        a, b, swapped = fix_swapped_coordinates(lat, lon, source="t.csv", lat_name="LAT", lon_name="LON")
    assert swapped and a.tolist() == lon.tolist() and b.tolist() == lat.tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SwappedCoordinatesWarning)
        a, b, swapped = fix_swapped_coordinates(lon, lat, source="t.csv")  # right way round
        assert not swapped and a.tolist() == lon.tolist()
        # forced either way, whatever the values say
        assert fix_swapped_coordinates(lon, lat, source="t", swap=True)[2] is True
        assert fix_swapped_coordinates(lat, lon, source="t", swap=False)[2] is False


def test_streaming_csv_in_batches_with_bad_lines_kept_out(tmp_path: Path) -> None:
    path = tmp_path / "big.csv.gz"
    lines = ["IMG_ID,LAT,LON"] + [f"{i:05d},{i % 90}.5,{i % 180}.25" for i in range(5000)]
    lines.insert(100, "broken,line")  # wrong number of fields
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    malformed: list[str] = []
    stream = csv_batches(path, 1000, malformed)
    assert stream.unit == "bytes" and stream.total == path.stat().st_size
    ids: list[str] = []
    sizes = []
    positions: list[int] = []
    for batch in slices(stream.batches, 1000):
        text, bad = text_rows(batch, "IMG_ID")
        assert bad == []
        sizes.append(text.num_rows)
        positions.append(stream.position())  # bytes of the file read so far, for a progress bar
        ids.extend(text.column("IMG_ID").to_pylist())
    assert max(sizes) <= 1000 and len(sizes) >= 5
    assert ids == [f"{i:05d}" for i in range(5000)]  # text: leading zeros kept
    assert len(malformed) == 1 and "'broken,line'" in malformed[0]
    assert positions[-1] > 0 and positions == sorted(positions)


def test_streaming_parquet_and_whole_arrow_tables(tmp_path: Path) -> None:
    df = pd.DataFrame({"id": [str(i) for i in range(2500)], "lat": np.linspace(-80, 80, 2500)})
    df.to_parquet(tmp_path / "t.parquet")
    stream = parquet_batches(tmp_path / "t.parquet", 1000)
    assert [b.num_rows for b in stream.batches] == [1000, 1000, 500] and stream.position() == 2500
    assert read_arrow(tmp_path / "t.parquet").num_rows == 2500
    (tmp_path / "t.csv").write_bytes(b"id,lat\na,1\nb\xff,2\nc,3,4\nd,4\n")
    malformed: list[str] = []
    t = read_arrow(tmp_path / "t.csv", malformed)
    assert t.column("id").to_pylist() == ["a", "d"] and t.schema.field("lat").type == "string"
    assert len(malformed) == 2 and any("invalid UTF-8" in m for m in malformed)


@pytest.mark.requires("datasets")
def test_open_dataset_folder_and_file(tmp_path: Path) -> None:
    import datasets

    d = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"lat": [1.0]}),
            "test": datasets.Dataset.from_dict({"lat": [2.0]}),
        }
    )
    d.save_to_disk(str(tmp_path / "dd"))
    ds, root, split = open_dataset(tmp_path / "dd", "test")
    assert ds["lat"] == [2.0] and root == tmp_path / "dd" and split == "test"
    with pytest.raises(
        TableError, match=r"no split 'validation'; the splits are \['train', 'test'\] \(hint\)"
    ):
        open_dataset(tmp_path / "dd", "validation", hint=" (hint)")
    ds, root, split = open_dataset(_write(tmp_path / "t.jsonl", ROWS), "train")
    assert ds.column_names[:3] == ["IMG_ID", "LAT", "LON"] and root == tmp_path and split is None
    with pytest.raises(FileNotFoundError):
        open_dataset(tmp_path / "nowhere")
