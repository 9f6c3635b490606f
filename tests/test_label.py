"""`georeason data label`: streaming labelling of MP-16-style tables; bad rows kept and reported."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from georeason.geo import reverse_geocode_batch
from georeason.pipelines.label import LABEL_COLUMNS, LabelError, errors_path_for, label_table

GOOD = [
    ("000101.jpg", "48.8566", "2.3522"),  # Paris
    ("000102.jpg", "35.6895", "139.6917"),  # Tokyo
    ("000103.jpg", " -33.8688 ", "151.2093"),  # Sydney, padded with spaces
    ("000104.jpg", "-22.9068", "-43.1729"),  # Rio
    ("000105.jpg", "0.0", "-30.0"),  # mid-Atlantic: nearest country, on_land False
    ("000106.jpg", "64.1466", "-21.9426"),  # Reykjavik
]
BAD = [
    ("000201.jpg", "", "2.0", "missing LAT"),
    ("000202.jpg", "abc", "2.0", "LAT is not a number: 'abc'"),
    ("000203.jpg", "95.5", "2.0", "latitude 95.5 is not finite or out of range [-90, 90]"),
    ("000204.jpg", "45.0", "181", "longitude 181.0 is not finite or out of range [-180, 180]"),
    ("000205.jpg", "nan", "2.0", "latitude nan is not finite or out of range [-90, 90]"),
    ("000206.jpg", "45.0", "inf", "longitude inf is not finite or out of range [-180, 180]"),
    ("000207.jpg", "45.0", "12,5", "LON is not a number: '12,5'"),
]


@pytest.fixture()
def mp16_csv(tmp_path: Path) -> tuple[Path, list[tuple[str, str, str]]]:
    """Good and bad rows interleaved, MP-16's column names."""
    rows: list[tuple[str, str, str]] = []
    for k in range(max(len(GOOD), len(BAD))):
        if k < len(GOOD):
            rows.append(GOOD[k])
        if k < len(BAD):
            rows.append(BAD[k][:3])
    path = tmp_path / "mp16.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["IMG_ID", "AUTHOR", "LAT", "LON"])
        for i, (img, la, lo) in enumerate(rows):
            w.writerow([img, f"{i}@N00", la, lo])
    return path, rows


def _expected_labels(rows: list[tuple[str, str, str]]) -> dict[str, dict[str, object]]:
    good = {img: (float(la), float(lo)) for img, la, lo in GOOD}
    t = reverse_geocode_batch(
        [good[r[0]][0] for r in rows if r[0] in good], [good[r[0]][1] for r in rows if r[0] in good]
    )
    out: dict[str, dict[str, object]] = {}
    k = 0
    for img, _, _ in rows:
        if img in good:
            out[img] = {
                c: (bool(getattr(t, c)[k]) if c == "on_land" else getattr(t, c)[k]) for c in LABEL_COLUMNS
            }
            k += 1
        else:
            out[img] = {**{c: "" for c in LABEL_COLUMNS if c != "on_land"}, "on_land": None}
    return out


@pytest.mark.parametrize("chunk_size", [1, 4, 1000])
def test_csv_to_parquet_labels_and_reports_bad_rows(
    mp16_csv: tuple[Path, list[tuple[str, str, str]]], tmp_path: Path, chunk_size: int
) -> None:
    src, rows = mp16_csv
    out = tmp_path / "labelled.parquet"
    s = label_table(src, out, chunk_size=chunk_size, progress=False)
    table = pq.read_table(out)
    assert table.num_rows == len(rows) == s.n_rows  # nothing dropped
    assert table.column_names == ["IMG_ID", "AUTHOR", "LAT", "LON", *LABEL_COLUMNS]
    assert table.schema.field("LAT").type == pa.float64() and table.schema.field("IMG_ID").type == pa.string()
    got = table.to_pylist()
    assert [r["IMG_ID"] for r in got] == [r[0] for r in rows]  # order kept, leading zeros kept
    expected = _expected_labels(rows)
    for r in got:
        assert {c: r[c] for c in LABEL_COLUMNS} == expected[r["IMG_ID"]], r["IMG_ID"]
    paris = next(r for r in got if r["IMG_ID"] == "000101.jpg")
    assert (paris["continent"], paris["country_code"], paris["city"]) == ("EU", "FR", "Paris")
    assert next(r for r in got if r["IMG_ID"] == "000105.jpg")["on_land"] is False
    # the errors file: one line per bad row, its 0-based row, id and reason
    with errors_path_for(out).open() as f:
        errs = list(csv.DictReader(f))
    bad = {b[0]: b[3] for b in BAD}
    assert [(e["id"], e["reason"]) for e in errs] == [(img, bad[img]) for img, _, _ in rows if img in bad]
    assert [int(e["row"]) for e in errs] == [i for i, r in enumerate(rows) if r[0] in bad]
    assert s.n_bad == len(BAD) and sum(s.bad_by_reason.values()) == len(BAD)
    assert s.bad_by_reason["latitude not finite or out of range [-90, 90]"] == 2
    assert s.errors_path == str(errors_path_for(out))
    assert not list(tmp_path.glob("*.tmp"))


def test_chunking_does_not_change_the_output(
    mp16_csv: tuple[Path, list[tuple[str, str, str]]], tmp_path: Path
) -> None:
    src, _ = mp16_csv
    outs = []
    for cs in (1, 3, 100):
        out = tmp_path / f"o{cs}.csv"
        label_table(src, out, chunk_size=cs, progress=False)
        outs.append((out.read_bytes(), errors_path_for(out).read_bytes()))
    assert outs[0] == outs[1] == outs[2]


def test_csv_to_csv_keeps_text_exactly(
    mp16_csv: tuple[Path, list[tuple[str, str, str]]], tmp_path: Path
) -> None:
    src, rows = mp16_csv
    out = tmp_path / "o.csv"
    label_table(src, out, progress=False)
    back = pcsv.read_csv(
        out,
        convert_options=pcsv.ConvertOptions(
            strings_can_be_null=False,
            column_types={c: pa.string() for c in ("IMG_ID", "AUTHOR", "LAT", "LON")},
        ),
    )
    assert back.column("LAT").to_pylist() == [r[1] for r in rows]  # raw text, bad values too
    assert back.column("IMG_ID").to_pylist() == [r[0] for r in rows]


def test_parquet_in_keeps_types_and_nulls(tmp_path: Path) -> None:
    src = tmp_path / "in.parquet"
    pq.write_table(
        pa.table(
            {
                "key": pa.array([1, 2, 3, 4], pa.int64()),
                "latitude": pa.array([48.8566, None, 40.7128, -91.0], pa.float64()),
                "longitude": pa.array([2.3522, 2.0, -74.006, 0.0], pa.float32()),
                "score": pa.array([0.5, 0.1, 0.9, 0.3]),
            }
        ),
        src,
    )
    s = label_table(src, tmp_path / "out.parquet", chunk_size=2, progress=False)
    t = pq.read_table(tmp_path / "out.parquet")
    assert t.schema.field("key").type == pa.int64() and t.schema.field("longitude").type == pa.float32()
    assert t.column("country_code").to_pylist() == ["FR", "", "US", ""]
    assert s.columns == {"id": "key", "lat": "latitude", "lon": "longitude"}
    with errors_path_for(tmp_path / "out.parquet").open() as f:
        errs = list(csv.DictReader(f))
    assert [(e["row"], e["id"], e["reason"]) for e in errs] == [
        ("1", "2", "missing latitude"),
        ("3", "4", "latitude -91.0 is not finite or out of range [-90, 90]"),
    ]


def test_gzipped_csv_and_no_errors_file_when_clean(tmp_path: Path) -> None:
    src = tmp_path / "in.csv.gz"
    with gzip.open(src, "wt") as f:
        f.write("photo_id,lat,lng\na,48.8566,2.3522\nb,51.5074,-0.1278\n")
    out = tmp_path / "out.csv"
    stale = errors_path_for(out)
    stale.write_text("row,id,reason\n0,x,old\n")  # left by an earlier run
    s = label_table(src, out, progress=False)
    assert s.n_bad == 0 and s.errors_path is None and not stale.exists()
    assert pcsv.read_csv(out).column("country_code").to_pylist() == ["FR", "GB"]


def test_malformed_csv_lines_are_reported(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("IMG_ID,LAT,LON\na,48.8566,2.3522\nb,1,2,3\nc\nd,51.5074,-0.1278\n")
    s = label_table(src, tmp_path / "out.csv", progress=False)
    assert s.n_rows == 2 and s.n_malformed == 2 and s.n_bad == 0
    assert pcsv.read_csv(tmp_path / "out.csv").column("IMG_ID").to_pylist() == ["a", "d"]
    with errors_path_for(tmp_path / "out.csv").open() as f:
        errs = list(csv.DictReader(f))
    assert [e["reason"] for e in errs] == [
        "malformed CSV line (3 fields expected, 4 found; not in the output): 'b,1,2,3'",
        "malformed CSV line (3 fields expected, 1 found; not in the output): 'c'",
    ]
    assert s.bad_by_reason == {"malformed CSV line (not in the output)": 2}


def test_column_problems_are_clear_errors(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("IMG_ID,LAT,LON,city\na,48.8566,2.3522,Paris\n")
    with pytest.raises(LabelError, match=r"already has column.*city.*--replace-existing"):
        label_table(src, tmp_path / "o.parquet", progress=False)
    label_table(src, tmp_path / "o.parquet", replace_existing=True, progress=False)
    t = pq.read_table(tmp_path / "o.parquet")
    assert t.column_names.count("city") == 1 and t.column("country_code").to_pylist() == ["FR"]
    label_table(src, tmp_path / "p.parquet", prefix="geo_", progress=False)
    assert pq.read_table(tmp_path / "p.parquet").column("geo_city").to_pylist() == ["Paris"]

    nolat = tmp_path / "nolat.csv"
    nolat.write_text("IMG_ID,y,x\na,1,2\n")
    with pytest.raises(LabelError, match=r"no latitude column found.*the table has: IMG_ID, y, x.*--lat-col"):
        label_table(nolat, tmp_path / "o2.csv", progress=False)
    label_table(nolat, tmp_path / "o2.csv", lat_col="y", lon_col="x", progress=False)
    with pytest.raises(LabelError, match="no column 'nope'"):
        label_table(nolat, tmp_path / "o3.csv", lat_col="nope", lon_col="x", progress=False)
    amb = tmp_path / "amb.csv"
    amb.write_text("lat,LAT,lon\n1,2,3\n")
    with pytest.raises(LabelError, match="several columns"):
        label_table(amb, tmp_path / "o4.csv", progress=False)
    with pytest.raises(LabelError, match="cannot tell the format"):
        label_table(src, tmp_path / "o.xlsx", progress=False)
    with pytest.raises(FileNotFoundError):
        label_table(tmp_path / "missing.csv", tmp_path / "o5.csv", progress=False)


def test_cli_label(mp16_csv: tuple[Path, list[tuple[str, str, str]]], tmp_path: Path) -> None:
    from georeason.cli import app
    from georeason.commands import data_scale  # noqa: F401  (registers `data label`)

    src, rows = mp16_csv
    out = tmp_path / "out.parquet"
    res = CliRunner().invoke(app, ["data", "label", str(src), "--out", str(out), "--chunk-size", "5"])
    assert res.exit_code == 0, res.output
    assert f"{len(rows)} rows labelled" in res.output
    assert f"{len(BAD)} bad rows kept with empty labels" in res.output
    assert "missing LAT" in res.output and str(errors_path_for(out)) in res.output
    assert pq.read_table(out).num_rows == len(rows)
    res = CliRunner().invoke(app, ["data", "label", str(src), "--out", str(tmp_path / "x.txt")])
    assert res.exit_code == 2 and "cannot tell the format" in res.output


def test_many_rows_streamed_match_the_batch_geocoder(tmp_path: Path) -> None:
    """A few thousand random rows through small chunks: identical to one reverse_geocode_batch call."""
    rng = np.random.default_rng(0)
    n = 5000
    lat, lon = rng.uniform(-60, 75, n), rng.uniform(-180, 180, n)
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"IMG_ID": [f"{i:06d}" for i in range(n)], "LAT": lat, "LON": lon}), src)
    label_table(src, tmp_path / "out.parquet", chunk_size=777, progress=False)
    t = pq.read_table(tmp_path / "out.parquet")
    ref = reverse_geocode_batch(lat, lon)
    for c in ("continent", "country_code", "admin1", "city"):
        assert t.column(c).to_pylist() == list(getattr(ref, c)), c
    assert t.column("on_land").to_pylist() == ref.on_land.tolist()
