"""Label an MP-16-style table with its place hierarchy, streaming, at scale.

MP-16 (4,723,695 geotagged Flickr photos) ships as a CSV with ``IMG_ID, LAT,
LON`` and other columns; both Geo-R and GLOBE build their training sets from it
and need each photo's continent, country, admin1 and city. :func:`label_table`
reads the table in chunks (pyarrow's streaming CSV reader or
``ParquetFile.iter_batches``), reverse-geocodes each chunk with
:func:`georeason.geo.reverse_geocode_batch` (exact country polygons, nearest
GeoNames place of that country) and appends the chunk to the output, so memory
stays bounded by one chunk whatever the table's size.

Columns added (names configurable through ``prefix``):

=============  ==========================================================
continent      GeoNames continent code (AF AN AS EU NA OC SA)
country_code   ISO 3166-1 alpha-2 (territories keep their own code)
country        English country name
admin1         state / province of the nearest populated place
city           nearest GeoNames populated place (>= 1000 people) in that country
on_land        the point lies on a country polygon (False: sea/coast, nearest country given)
=============  ==========================================================

Bad rows are never dropped and never silent. A row whose latitude or longitude
is missing, not a number, not finite or out of range is **kept** in the output
with empty labels (``on_land`` null) and listed in ``OUT.errors.csv`` (``row``:
0-based position in the output table, ``id``, ``reason``); the counts per reason
are returned and printed by ``georeason data label``. A CSV line with the wrong
number of fields cannot be a row of the table: it is left out of the output and
listed in the errors file with its text (``row`` and ``id`` empty); so is a CSV
row holding bytes that are not UTF-8 (``id`` given when readable), and the rest
of the file is labelled. Values may hold quoted newlines (read as CSV defines
them, across chunk boundaries too). An empty, truncated or corrupt input file
(CSV, ``.csv.gz`` or Parquet) raises :class:`LabelError` saying so.

Formats, by extension: ``.csv`` (optionally ``.csv.gz`` in) and ``.parquet``.
CSV columns are carried as **text** (exactly as written: IDs with leading
zeros survive, and a column whose type changes half-way through 4.7M rows
cannot break the stream); when a CSV is written to Parquet, the latitude and
longitude columns become ``float64`` (null where invalid; the raw text is in
the errors file). Parquet columns keep their types. The output is written to a
temporary file and renamed at the end, so a killed run never leaves a
half-written table under the final name.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from georeason.runs import Progress
from georeason.tables import (
    ID_COLUMNS,
    TableError,
    coordinate_columns,
    csv_batches,
    detect_column,
    parquet_batches,
    slices,
    table_format,
    text_rows,
)
from georeason.types import PLACE_LEVELS

logger = logging.getLogger("georeason.pipelines")

#: A table that cannot be labelled as asked (unknown format, unreadable, missing or clashing
#: columns): the error of :mod:`georeason.tables`, which reads it.
LabelError = TableError

#: columns added by :func:`label_table`, in order
LABEL_COLUMNS: tuple[str, ...] = (*PLACE_LEVELS, "on_land")

# ---------------------------------------------------------------------------
# coordinates
# ---------------------------------------------------------------------------


def coordinates_from_arrow(array: Any, name: str) -> tuple[NDArray[np.float64], list[tuple[int, str]]]:
    """Float64 values of a pyarrow column and ``(row, reason)`` for rows that are not numbers.

    Nulls and blank strings are "missing"; text that does not parse as a number is
    reported with the text. Range checks are left to
    :func:`georeason.geo.reverse_geocode_batch` (it reports them per row).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    problems: list[tuple[int, str]] = []
    t = array.type
    if pa.types.is_null(t):
        return np.full(len(array), np.nan), [(i, f"missing {name}") for i in range(len(array))]
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        stripped = pc.utf8_trim_whitespace(array)
        blank = pc.or_kleene(pc.is_null(stripped), pc.equal(stripped, "")).fill_null(True)
        as_null = pc.if_else(blank, pa.scalar(None, stripped.type), stripped)
        try:
            values = pc.cast(as_null, pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            # Some text is not a number: parse row by row (pandas, vectorised in C) and name the rows.
            import pandas as pd

            values = pd.to_numeric(as_null.to_pandas(), errors="coerce").to_numpy(dtype=np.float64)
            raw = array.to_pylist()
            blank_np = blank.to_numpy(zero_copy_only=False)
            for i in np.flatnonzero(np.isnan(values) & ~blank_np):
                text = raw[i].strip()
                if text.lower() in ("nan", "+nan", "-nan"):
                    continue  # a literal NaN: reported below as not finite
                problems.append((int(i), f"{name} is not a number: {raw[i]!r}"))
        blank_rows = np.flatnonzero(blank.to_numpy(zero_copy_only=False))
        problems.extend((int(i), f"missing {name}") for i in blank_rows)
        return np.asarray(values, dtype=np.float64), problems
    if pa.types.is_boolean(t) or not (
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
    ):
        raise LabelError(f"column {name!r} has type {t}, not numbers or text")
    values = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
    if array.null_count:
        nulls = np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))
        problems.extend((int(i), f"missing {name}") for i in nulls)
    return np.asarray(values, dtype=np.float64), problems


@dataclass
class ChunkLabels:
    """Labels of one chunk: the pyarrow columns to append and the bad rows (local index, reason)."""

    columns: dict[str, Any]
    errors: list[tuple[int, str]]
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]


def label_arrays(lat_col: Any, lon_col: Any, lat_name: str = "LAT", lon_name: str = "LON") -> ChunkLabels:
    """Reverse-geocode one chunk of pyarrow latitude / longitude columns.

    Returns the label columns as pyarrow arrays (strings ``""`` and ``on_land``
    null on bad rows) and one reason per bad row — the first problem found:
    missing or non-numeric value, then non-finite or out-of-range (from
    :func:`~georeason.geo.reverse_geocode_batch`).
    """
    import pyarrow as pa

    from georeason.geo import reverse_geocode_batch

    lat, lat_problems = coordinates_from_arrow(lat_col, lat_name)
    lon, lon_problems = coordinates_from_arrow(lon_col, lon_name)
    table = reverse_geocode_batch(lat, lon)
    reasons: dict[int, str] = {}
    for i, why in lat_problems + lon_problems:
        reasons.setdefault(i, why)
    for bad in np.flatnonzero(~table.valid):
        reasons.setdefault(int(bad), str(table.errors[bad]))
    columns: dict[str, Any] = {
        k: pa.array(getattr(table, k), type=pa.string()) for k in LABEL_COLUMNS if k != "on_land"
    }
    columns["on_land"] = pa.array(table.on_land, mask=~table.valid, type=pa.bool_())
    return ChunkLabels(columns=columns, errors=sorted(reasons.items()), lat=lat, lon=lon)


# ---------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------


class _Writer:
    """Appends record batches to a CSV or Parquet file (a temporary name, renamed on close)."""

    def __init__(self, path: Path, fmt: str, schema: Any) -> None:
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")
        self.fmt = fmt
        self.schema = schema
        if fmt == "parquet":
            self.w: Any = pq.ParquetWriter(str(self.tmp), schema, compression="snappy")
        else:
            self.w = pcsv.CSVWriter(str(self.tmp), schema)

    def write(self, batch: Any) -> None:
        if self.fmt == "parquet":
            self.w.write_batch(batch, row_group_size=batch.num_rows)
        else:
            self.w.write_batch(batch)

    def close(self, ok: bool) -> None:
        self.w.close()
        if ok:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------
# the command's work
# ---------------------------------------------------------------------------


@dataclass
class LabelSummary:
    """What :func:`label_table` did."""

    input: str
    output: str
    errors_path: str | None
    n_rows: int
    n_bad: int
    bad_by_reason: dict[str, int]
    seconds: float
    columns: dict[str, str | None]
    n_on_land: int = 0
    # CSV lines left out of the output, reported in the errors file: the wrong number of
    # fields, or bytes that are not UTF-8
    n_malformed: int = 0
    n_countries: int = 0
    countries: dict[str, int] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.n_rows / self.seconds if self.seconds > 0 else float("nan")


def errors_path_for(out: str | os.PathLike[str]) -> Path:
    """``OUT.errors.csv`` next to the output table."""
    p = Path(out)
    return p.with_name(p.name + ".errors.csv")


def _reason_kind(reason: str) -> str:
    """A short key for counting reasons (the value itself is left out)."""
    if reason.startswith("missing "):
        return reason
    if " is not a number" in reason:
        return reason.split(":", 1)[0]
    if reason.startswith("latitude"):
        return "latitude not finite or out of range [-90, 90]"
    if reason.startswith("longitude"):
        return "longitude not finite or out of range [-180, 180]"
    return reason


def label_table(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    chunk_size: int = 500_000,
    id_col: str | None = None,
    lat_col: str | None = None,
    lon_col: str | None = None,
    prefix: str = "",
    replace_existing: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] = logger.info,
) -> LabelSummary:
    """Add continent, country_code, country, admin1, city and on_land to a table.

    Args:
        src: CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``) with one row per photo.
        out: ``.csv`` or ``.parquet`` to write (any input format to any output format).
        chunk_size: rows reverse-geocoded at once (memory ~ 1 kB per row of a chunk).
        id_col, lat_col, lon_col: column names; default: auto-detected
            (:data:`~georeason.tables.ID_COLUMNS`, :data:`~georeason.tables.LAT_COLUMNS`, :data:`~georeason.tables.LON_COLUMNS`). The id
            column is optional (the errors file then has the row number only).
        prefix: prepended to the added column names (e.g. ``"geo_"``).
        replace_existing: replace input columns that have an added column's name
            (MP-16's places365 CSV has ``city``, ``country``, ``continent`` of its own);
            default: refuse with an error naming them.
        progress: progress bar (default: when stderr is a terminal).

    Returns a :class:`LabelSummary`; bad rows are in ``OUT.errors.csv`` (see the module docstring).
    """
    import pyarrow as pa

    t0 = time.perf_counter()
    src_p, out_p = Path(src).expanduser(), Path(out).expanduser()
    if chunk_size < 1:
        raise LabelError(f"chunk_size must be >= 1, got {chunk_size}")
    if not src_p.is_file():
        raise FileNotFoundError(f"no such table: {src_p}")
    in_fmt, out_fmt = table_format(src_p, ("csv", "parquet")), table_format(out_p, ("csv", "parquet"))
    if out_p.name.lower().endswith(".gz"):
        raise LabelError(f"{out_p}: write .csv or .parquet (compressed CSV output is not supported)")
    if out_p.resolve() == src_p.resolve():
        raise LabelError("the output must be another file than the input")
    out_p.parent.mkdir(parents=True, exist_ok=True)

    malformed: list[str] = []
    stream = (
        csv_batches(src_p, chunk_size, malformed) if in_fmt == "csv" else parquet_batches(src_p, chunk_size)
    )
    schema, batches, position, total, unit = (
        stream.schema,
        stream.batches,
        stream.position,
        stream.total,
        stream.unit,
    )
    names = list(schema.names)
    id_name = detect_column(names, id_col, ID_COLUMNS, "id", required=False, source=src_p)
    lat_name, lon_name = coordinate_columns(names, lat_col, lon_col, source=src_p)
    added = [prefix + c for c in LABEL_COLUMNS]
    clash = [c for c in added if c in names]
    if clash and not replace_existing:
        raise LabelError(
            f"the table already has column(s) {', '.join(clash)}; pass --replace-existing to overwrite "
            "them or --prefix (e.g. geo_) to add the labels under other names"
        )
    if any(c in (lat_name, lon_name, id_name) for c in clash):
        raise LabelError("the id / latitude / longitude columns cannot be replaced by labels; use --prefix")
    keep = [n for n in names if n not in clash]
    cast_coords = in_fmt == "csv" and out_fmt == "parquet"
    fields = []
    for n in keep:
        f = schema.field(n)
        if cast_coords and n in (lat_name, lon_name):
            f = pa.field(n, pa.float64())
        fields.append(f)
    for c in LABEL_COLUMNS:
        fields.append(pa.field(prefix + c, pa.bool_() if c == "on_land" else pa.string()))
    out_schema = pa.schema(fields)

    err_path = errors_path_for(out_p)
    err_tmp = err_path.with_name(err_path.name + ".tmp")
    bar = Progress("label", total, unit="rows", total_unit=unit, enabled=progress, log=log, failed_word="bad")
    writer = _Writer(out_p, out_fmt, out_schema)
    n_rows = n_bad = n_land = n_malformed = 0
    reasons: Counter[str] = Counter()
    countries: Counter[str] = Counter()
    ok = False
    try:
        with err_tmp.open("w", encoding="utf-8", newline="") as ef:
            ew = csv.writer(ef)
            ew.writerow(["row", "id", "reason"])

            def flush_malformed() -> int:
                lines = malformed[:]
                del malformed[: len(lines)]
                for why in lines:
                    ew.writerow(["", "", why])
                    reasons["malformed CSV line (not in the output)"] += 1
                return len(lines)

            for batch in slices(batches, chunk_size):
                n_malformed += flush_malformed()
                if in_fmt == "csv":
                    batch, not_utf8 = text_rows(batch, id_name)
                    for row_id, why in not_utf8:
                        ew.writerow(["", row_id, why])
                        reasons["invalid UTF-8 (not in the output)"] += 1
                    n_malformed += len(not_utf8)
                lab = label_arrays(batch.column(lat_name), batch.column(lon_name), lat_name, lon_name)
                arrays = []
                for n in keep:
                    col = batch.column(n)
                    if cast_coords and n == lat_name:
                        col = pa.array(lab.lat, mask=np.isnan(lab.lat), type=pa.float64())
                    elif cast_coords and n == lon_name:
                        col = pa.array(lab.lon, mask=np.isnan(lab.lon), type=pa.float64())
                    arrays.append(col)
                arrays.extend(lab.columns[c] for c in LABEL_COLUMNS)
                writer.write(pa.RecordBatch.from_arrays(arrays, schema=out_schema))
                if lab.errors:
                    ids = batch.column(id_name).to_pylist() if id_name else None
                    for i, why in lab.errors:
                        ew.writerow([n_rows + i, "" if ids is None or ids[i] is None else ids[i], why])
                        reasons[_reason_kind(why)] += 1
                    n_bad += len(lab.errors)
                cc = lab.columns["country_code"]
                vc = cc.value_counts()
                for item in vc.to_pylist():
                    if item["values"]:
                        countries[item["values"]] += int(item["counts"])
                n_land += int(lab.columns["on_land"].true_count)
                n_rows += batch.num_rows
                bar.update(batch.num_rows, failed=n_bad + n_malformed - bar.failed, position=position())
            n_malformed += flush_malformed()
        ok = True
    finally:
        bar.close()
        writer.close(ok)
        if ok and (n_bad or n_malformed):
            os.replace(err_tmp, err_path)
        else:
            err_tmp.unlink(missing_ok=True)
            if ok:
                err_path.unlink(missing_ok=True)  # a stale file of an earlier run would mislead
    seconds = time.perf_counter() - t0
    return LabelSummary(
        input=str(src_p),
        output=str(out_p),
        errors_path=str(err_path) if (n_bad or n_malformed) else None,
        n_rows=n_rows,
        n_bad=n_bad,
        bad_by_reason=dict(reasons.most_common()),
        seconds=seconds,
        columns={"id": id_name, "lat": lat_name, "lon": lon_name},
        n_on_land=n_land,
        n_malformed=n_malformed,
        n_countries=len(countries),
        countries=dict(countries.most_common()),
    )


__all__ = [
    "LABEL_COLUMNS",
    "ChunkLabels",
    "LabelError",
    "LabelSummary",
    "coordinates_from_arrow",
    "errors_path_for",
    "label_arrays",
    "label_table",
]
