"""`georeason data label` on an MP-16-sized table of generated photo-like rows.

Writes N rows (default 4,723,695 = MP-16) shaped like MP-16's CSV (IMG_ID, AUTHOR,
LAT, LON; coordinates near GeoNames places weighted by population, 0.1% bad rows)
as CSV and Parquet, then times, alternately, in the same run:

- label: ``label_table(IN, OUT)`` (read, reverse-geocode, write, errors file);
- anchor: the same read + write through the same streaming reader and writer,
  without labelling (what any pass over the file costs).

Prints the median of ``--repeats`` for each format pair: seconds, rows/s, and the
ratio label / anchor. Target (issue 6): 4.72M rows in <= 120 s on 2 cores.

    python benchmarks/bench_label.py [--n 4723695] [--repeats 3] [--formats csv:parquet,parquet:parquet]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _photo_points import photo_like_points


def make_table(n: int, seed: int = 0):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    lat, lon = photo_like_points(n, seed=seed)
    rng = np.random.default_rng(seed)
    lat_s = np.char.mod("%.6f", lat).astype(object)
    lon_s = np.char.mod("%.6f", lon).astype(object)
    bad = rng.choice(n, size=max(1, n // 1000), replace=False)  # 0.1% bad rows, as a dump may hold
    for k, i in enumerate(bad):
        lat_s[i] = ("", "abc", "95.5", "nan")[k % 4]
    ids = np.char.add(np.char.mod("%08d", np.arange(n)), ".jpg").astype(object)
    authors = np.char.add(np.char.mod("%d", rng.integers(1, 10**8, n)), "@N00").astype(object)
    return pa.table(
        {
            "IMG_ID": pa.array(ids, pa.string()),
            "AUTHOR": pa.array(authors, pa.string()),
            "LAT": pa.array(lat_s, pa.string()),
            "LON": pa.array(lon_s, pa.string()),
        }
    )


def copy_table(src: Path, out: Path, chunk_size: int) -> int:
    """The anchor: the same streaming reader and writer as label_table, no labelling."""
    from georeason.pipelines.label import (
        _csv_batches,
        _parquet_batches,
        _slices,
        _utf8_rows,
        _Writer,
        table_format,
    )

    fmt_in, fmt_out = table_format(src), table_format(out)
    reader = _csv_batches if fmt_in == "csv" else _parquet_batches
    schema, batches, _, _ = reader(src, chunk_size)
    w = _Writer(out, fmt_out, schema)
    n = 0
    for b in _slices(batches, chunk_size):
        if fmt_in == "csv":
            b, _ = _utf8_rows(b, None)  # the CSV is read as bytes; text after the UTF-8 check
        w.write(b)
        n += b.num_rows
    w.close(True)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=4_723_695)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk-size", type=int, default=500_000)
    ap.add_argument("--formats", default="csv:parquet,parquet:parquet,csv:csv")
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temporary one)")
    args = ap.parse_args()

    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from georeason.geo import reverse_geocode_batch
    from georeason.pipelines.label import label_table

    t = time.perf_counter()
    reverse_geocode_batch([0.0], [0.0])
    print(f"geo data load (warm disk cache): {time.perf_counter() - t:.2f} s")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        d = Path(tmp)
        t = time.perf_counter()
        table = make_table(args.n)
        pcsv.write_csv(table, d / "in.csv")
        pq.write_table(table, d / "in.parquet")
        del table
        print(
            f"generated {args.n:,} rows in {time.perf_counter() - t:.1f} s "
            f"(csv {os.path.getsize(d / 'in.csv') / 1e6:.0f} MB, parquet {os.path.getsize(d / 'in.parquet') / 1e6:.0f} MB)"
        )
        print(f"cores: {os.cpu_count()}   chunk size: {args.chunk_size:,}   median of {args.repeats}")
        for pair in args.formats.split(","):
            fin, fout = pair.split(":")
            src, out = d / f"in.{fin}", d / f"out.{fout}"
            lab, anc = [], []
            summary = None
            for _ in range(args.repeats):
                t = time.perf_counter()
                copy_table(src, d / f"copy.{fout}", args.chunk_size)
                anc.append(time.perf_counter() - t)
                t = time.perf_counter()
                summary = label_table(src, out, chunk_size=args.chunk_size, progress=False)
                lab.append(time.perf_counter() - t)
            m, a = statistics.median(lab), statistics.median(anc)
            assert summary is not None
            print(
                f"{fin:>7} -> {fout:<7}  label {m:6.1f} s  {args.n / m:10,.0f} rows/s   "
                f"anchor (read+write) {a:5.1f} s   ratio {m / a:4.1f}x   "
                f"bad rows {summary.n_bad:,}   countries {summary.n_countries}   "
                f"[{'OK' if m <= 120 else 'OVER'} vs 120 s target]"
            )


if __name__ == "__main__":
    main()
