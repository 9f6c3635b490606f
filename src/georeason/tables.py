"""User tables: one reader and one column vocabulary for every command that reads them.

``score``, ``eval`` (the ``csv`` and ``hf`` benchmarks), ``data label``, ``data select``,
``data distill`` and ``train`` all read tables that people bring: MP-16's ``IMG_ID, LAT,
LON``, a predictions file with ``pred_lat``, a ``datasets`` folder. The names a column may
go by are listed once here (compared case-insensitively, first match wins), and so is the
reading:

- :func:`read_table`: CSV / TSV / Parquet / JSONL (``.gz`` too) as a pandas DataFrame,
  CSV cells as **text** ("" = missing), so codes like ``NA`` (North America, Namibia) and
  ids with leading zeros survive and bad numbers can be counted instead of guessed.
- :func:`read_arrow`: CSV / Parquet as a pyarrow Table (text columns for CSV).
- :func:`csv_batches` / :func:`parquet_batches`: the same, streamed in record batches
  with bounded memory, for ``data label`` over MP-16's 4.7M rows.
- :func:`open_dataset`: a ``datasets`` folder (``save_to_disk``) or a table file as a
  ``datasets.Dataset`` (``datasets`` is imported only here, only when asked).
- :func:`detect_column` / :func:`coordinate_columns` / :func:`place_columns`: which
  column holds what, with errors that name the file, the names tried and the columns found.
- :func:`fix_swapped_coordinates`: a latitude column holding longitudes (old copies of
  ``im2gps3k_places365.csv`` have the header ``LON,LAT`` over lat, lon values), by range.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from georeason.types import PLACE_LEVELS

# ---------------------------------------------------------------------------
# the vocabulary
# ---------------------------------------------------------------------------

#: names of an id column (also tried, after the image names, as the image column:
#: MP-16 and IM2GPS3K name each photo's file by its ``IMG_ID``)
ID_COLUMNS: tuple[str, ...] = ("id", "img_id", "image_id", "imgid", "photo_id", "key")

#: (latitude, longitude) name pairs; a truth column may carry ``true_`` or ``gt_``
_BASE_PAIRS: tuple[tuple[str, str], ...] = (
    ("lat", "lon"),
    ("lat", "lng"),
    ("lat", "long"),
    ("latitude", "longitude"),
    ("gps_lat", "gps_lon"),
    ("gpslatitude", "gpslongitude"),  # EXIF's GPSLatitude / GPSLongitude
    ("lat_deg", "lon_deg"),
)
TRUTH_PREFIXES: tuple[str, ...] = ("true_", "gt_")
PREDICTION_PREFIXES: tuple[str, ...] = ("pred_", "predicted_", "prediction_")
COORDINATE_PAIRS: tuple[tuple[str, str], ...] = _BASE_PAIRS + tuple(
    (p + a, p + b) for p in TRUTH_PREFIXES for a, b in (("lat", "lon"), ("latitude", "longitude"))
)
LAT_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(a for a, _ in COORDINATE_PAIRS))
LON_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(b for _, b in COORDINATE_PAIRS))

IMAGE_COLUMNS: tuple[str, ...] = (
    "image",
    "image_path",
    "img_path",
    "path",
    "file",
    "filename",
    "file_name",
    "img_id",
    "image_id",
)

#: names of each place level's column (see :data:`georeason.types.PLACE_LEVELS`)
PLACE_COLUMNS: dict[str, tuple[str, ...]] = {
    "continent": ("continent",),
    "country_code": ("country_code", "iso", "iso2", "country_iso"),
    "country": ("country", "country_name"),
    "admin1": ("admin1", "state", "province", "region"),
    "city": ("city", "city_name", "locality"),
}
assert tuple(PLACE_COLUMNS) == PLACE_LEVELS

#: file formats by name ending (``.gz`` is read through for the text formats)
FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}
_DATASETS_BUILDER = {"csv": "csv", "tsv": "csv", "parquet": "parquet", "jsonl": "json", "json": "json"}
# option names per thing looked for, for the "name it with ..." hint
_KEYS = {"id": "id_col", "latitude": "lat_col", "longitude": "lon_col", "image": "image_col"}
CLI_FLAG = "--{flag}"


class TableError(ValueError):
    """A table cannot be read as asked: unknown format, unreadable file, missing or clashing columns."""


class SwappedCoordinatesWarning(UserWarning):
    """The latitude and longitude columns were swapped in the file and have been read the right way."""


def prefixed(prefixes: Sequence[str], names: Sequence[str]) -> tuple[str, ...]:
    """Every name with every prefix, prefix-major: ``prefixed(("pred_",), ("lat",)) == ("pred_lat",)``."""
    return tuple(p + n for p in prefixes for n in names)


# ---------------------------------------------------------------------------
# formats and columns
# ---------------------------------------------------------------------------


def table_format(path: str | os.PathLike[str], formats: Sequence[str] | None = None) -> str:
    """The format of ``path`` from its name (``csv``, ``tsv``, ``parquet``, ``jsonl``, ``json``),
    one of ``formats`` when given; :class:`TableError` otherwise."""
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] == ".gz" and FORMATS.get(suffixes[-2]) not in (None, "parquet"):
        suffixes = suffixes[:-1]
    fmt = FORMATS.get(suffixes[-1] if suffixes else "")
    allowed = tuple(formats) if formats is not None else tuple(dict.fromkeys(FORMATS.values()))
    if fmt is None or fmt not in allowed:
        names = [s for s, f in FORMATS.items() if f in allowed]
        raise TableError(
            f"{path}: cannot tell the format from the name (unsupported file type {p.suffix or '(none)'!r}); "
            f"use {', '.join(names)}"
        )
    return fmt


def _how(what: str, how: str) -> str:
    key = _KEYS.get(what, what.replace(" ", "_") + "_col")
    return how.format(key=key, flag=key.replace("_", "-"))


def _hits(names: Sequence[str], wanted: str) -> list[str]:
    w = wanted.strip().lower()
    return [n for n in names if str(n).strip().lower() == w]


def detect_column(
    names: Sequence[str],
    explicit: str | None,
    candidates: Sequence[str],
    what: str,
    *,
    required: bool = True,
    source: str | os.PathLike[str] | None = None,
    how: str = CLI_FLAG,
) -> str | None:
    """The column holding ``what``: ``explicit`` if given (it must exist; matched exactly,
    else case-insensitively), else the first of ``candidates`` present (case-insensitive).

    Two columns that differ only in case (``lat`` and ``LAT``) are an error, never a guess.
    Raises :class:`TableError` naming ``source``, the names tried and the table's columns
    when nothing is found and ``required``; ``how`` says how to name the column (a format
    string with ``{flag}`` (``lat-col``) and ``{key}`` (``lat_col``); default the CLI flag).
    """
    pre = f"{source}: " if source is not None else ""
    cols = ", ".join(map(str, names))
    if explicit is not None:
        if explicit in names:
            return explicit
        hits = _hits(names, explicit)
        if len(hits) == 1:
            return hits[0]
        raise TableError(
            f"{pre}no {what} column {explicit!r}: the table has no column {explicit!r}; its columns: {cols}"
        )
    for c in candidates:
        hits = _hits(names, c)
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise TableError(
                f"{pre}several columns could hold the {what} ({', '.join(hits)}); name one with {_how(what, how)}"
            )
    if required:
        raise TableError(
            f"{pre}no {what} column found (tried {', '.join(candidates)}); the table has: {cols}. "
            f"Name it with {_how(what, how)}."
        )
    return None


def coordinate_columns(
    names: Sequence[str],
    lat_col: str | None = None,
    lon_col: str | None = None,
    *,
    source: str | os.PathLike[str] | None = None,
    how: str = CLI_FLAG,
) -> tuple[str, str]:
    """``(latitude column, longitude column)``: the given ones or from :data:`LAT_COLUMNS` /
    :data:`LON_COLUMNS`; :class:`TableError` ("no latitude/longitude columns: ...") otherwise."""
    pre = f"{source}: " if source is not None else ""
    found = []
    for given, cands, what in ((lat_col, LAT_COLUMNS, "latitude"), (lon_col, LON_COLUMNS, "longitude")):
        col = detect_column(names, given, cands, what, required=False, source=source, how=how)
        if col is None:
            cols = ", ".join(map(str, names))
            raise TableError(
                f"{pre}no latitude/longitude columns: no {what} column found (tried {', '.join(cands)}); "
                f"the table has: {cols}. Name it with {_how(what, how)}."
            )
        found.append(col)
    lat, lon = found
    if lat == lon:
        raise TableError(f"{pre}latitude and longitude cannot both be column {lat!r}")
    return lat, lon


def place_columns(
    names: Sequence[str],
    given: Mapping[str, str | None] | None = None,
    *,
    levels: Mapping[str, Sequence[str]] = PLACE_COLUMNS,
    exclude: Sequence[str] = (),
    source: str | os.PathLike[str] | None = None,
) -> dict[str, str]:
    """Level -> column for the place labels a table has: the ``given`` ones (which must
    exist), else the first candidate of ``levels`` present and not in ``exclude``."""
    out: dict[str, str] = {}
    taken = set(exclude)
    for level, cands in levels.items():
        wanted = (given or {}).get(level)
        if wanted is not None:
            col = detect_column(names, wanted, cands, level, source=source)
            assert col is not None
            out[level] = col
            continue
        for c in cands:
            hits = [h for h in _hits(names, c) if h not in taken]
            if hits:
                out[level] = hits[0]
                break
    return out


def to_float(values: Any) -> np.ndarray:
    """Floats from a column of numbers or text; blanks and text that is not a number give NaN."""
    s = pd.Series(values)
    if s.dtype == object:
        s = s.map(lambda v: v.strip() if isinstance(v, str) else v).replace("", np.nan)
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)


def fix_swapped_coordinates(
    lat: np.ndarray,
    lon: np.ndarray,
    *,
    source: str,
    lat_name: str = "lat",
    lon_name: str = "lon",
    swap: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Detect latitude/longitude columns swapped in a file, by range, and swap them back.

    The rule: the column read as *longitude* never leaves [-90, 90] while the
    column read as *latitude* does (some |value| > 90, which no latitude can
    be). Then the header is wrong, not the values: the two arrays are swapped
    and a :class:`SwappedCoordinatesWarning` is issued. With no value beyond
    ±90 in either column the orientation cannot be told from the values and the
    header is trusted. ``swap`` True / False forces / forbids the swap instead.

    Returns ``(lat, lon, swapped)``.
    """
    if swap is not None:
        return (lon, lat, True) if swap else (lat, lon, False)
    fin_lat = lat[np.isfinite(lat)]
    fin_lon = lon[np.isfinite(lon)]
    if fin_lat.size and fin_lon.size and (np.abs(fin_lat) > 90).any() and (np.abs(fin_lon) <= 90).all():
        n_out = int((np.abs(fin_lat) > 90).sum())
        msg = (
            f"{source}: the columns {lat_name!r} and {lon_name!r} are swapped ({n_out} values of "
            f"{lat_name!r} are beyond ±90, impossible for a latitude, while {lon_name!r} stays within "
            f"±90); reading {lon_name!r} as latitude and {lat_name!r} as longitude. Old copies of "
            "im2gps3k_places365.csv have this header (LON,LAT over lat,lon values)."
        )
        warnings.warn(msg, SwappedCoordinatesWarning, stacklevel=3)
        return lon, lat, True
    return lat, lon, False


# ---------------------------------------------------------------------------
# whole tables
# ---------------------------------------------------------------------------


@dataclass
class Table:
    """A table read by :func:`read_table`: the rows, where from, and the JSONL lines left out."""

    frame: pd.DataFrame
    path: Path
    format: str
    bad_lines: list[int] = field(default_factory=list)  # 1-based lines that are not a JSON object

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]


def _json_records(path: Path, bad_lines: list[int]) -> list[dict[str, Any]]:
    import gzip

    opener: Callable[..., Any] = gzip.open if path.name.lower().endswith(".gz") else open
    records: list[dict[str, Any]] = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                bad_lines.append(lineno)
                continue
            if not isinstance(rec, dict):
                bad_lines.append(lineno)
                continue
            records.append(rec)
    return records


def read_table(path: str | os.PathLike[str]) -> Table:
    """Read a CSV / TSV / Parquet / JSONL (or JSON list) file whole.

    CSV cells are text ("" = missing; leading spaces dropped); Parquet keeps its types;
    JSONL lines that are not a JSON object are skipped and listed in
    :attr:`Table.bad_lines` for the caller to report. Raises FileNotFoundError, or
    :class:`TableError` for an unknown format, an unreadable or empty file.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"no such file: {p}")
    if p.is_dir():
        raise TableError(f"{p} is a directory; give a .csv, .tsv, .parquet or .jsonl file")
    fmt = table_format(p)
    bad_lines: list[int] = []
    try:
        if fmt in ("csv", "tsv"):
            sep = "\t" if fmt == "tsv" else ","
            df = pd.read_csv(p, sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True)
        elif fmt == "parquet":
            df = pd.read_parquet(p)
        elif fmt == "jsonl":
            df = pd.DataFrame.from_records(_json_records(p, bad_lines))
        else:
            with p.open(encoding="utf-8") as fh:
                data = json.load(fh)
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                raise TableError(f"could not read {p} as json: expected a list of objects")
            df = pd.DataFrame.from_records(data)
    except TableError:
        raise
    except pd.errors.EmptyDataError as e:
        raise TableError(f"could not read {p} as {fmt}: {p.name} is empty (not even a header line)") from e
    except Exception as e:  # parser errors of three libraries; say which file and why
        raise TableError(f"could not read {p} as {fmt}: {type(e).__name__}: {e}") from e
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        raise TableError(f"{p} holds no rows")
    return Table(frame=df, path=p, format=fmt, bad_lines=bad_lines)


def open_dataset(
    path: str | os.PathLike[str], split: str | None = "train", *, hint: str = ""
) -> tuple[Any, Path, str | None]:
    """A ``datasets.Dataset`` from a ``save_to_disk`` folder (a DatasetDict gives ``split``;
    ``split=None`` takes its only split) or from a table file (through ``datasets``' own
    builders, so image columns and types are the library's).

    Returns ``(dataset, root, split)``: ``root`` is the folder that relative image paths are
    relative to (the dataset's folder, or the table's), ``split`` the split taken from a
    DatasetDict (None otherwise). ``hint`` is added to the message of a missing split.
    """
    import datasets

    p = Path(path).expanduser()
    if p.is_dir():
        loaded = datasets.load_from_disk(str(p))
        if not isinstance(loaded, datasets.DatasetDict):
            return loaded, p, None
        if split is None and len(loaded) == 1:
            split = next(iter(loaded))
        if split is None or split not in loaded:
            raise TableError(f"{p}: no split {split!r}; the splits are {list(loaded)}{hint}")
        return loaded[split], p, split
    if not p.is_file():
        raise FileNotFoundError(f"no such dataset folder or table: {p}")
    fmt = table_format(p)
    options = {"delimiter": "\t"} if fmt == "tsv" else {}
    ds = datasets.load_dataset(_DATASETS_BUILDER[fmt], data_files=str(p), split="train", **options)
    return ds, p.parent, None


# ---------------------------------------------------------------------------
# streaming (pyarrow): bounded memory whatever the table's size
# ---------------------------------------------------------------------------


class _CountingFile:
    """A binary file whose ``tell`` a progress bar reads (bytes consumed so far).

    A native Arrow file, not a Python one: the reader's threads then never call back
    into Python to read, and an error half-way (a truncated ``.gz``) unwinds cleanly.
    """

    def __init__(self, path: Path) -> None:
        import pyarrow as pa

        self.f = pa.OSFile(str(path), "rb")
        self.size = path.stat().st_size

    def position(self) -> int:
        try:
            return int(self.f.tell())
        except (OSError, ValueError):
            return 0


@dataclass
class Stream:
    """Record batches of a table: ``schema`` (CSV columns as text), ``batches`` (an iterator),
    ``position()`` (bytes or rows read so far) and ``total`` (of the same unit)."""

    schema: Any
    batches: Iterator[Any]
    position: Callable[[], int]
    total: int
    unit: str


def read_errors() -> tuple[type[BaseException], ...]:
    """pyarrow's exceptions for unreadable input: ArrowInvalid (bad CSV / Parquet), OSError
    (zlib, thrift, truncation; ArrowIOError is an OSError), EOFError, and UnicodeDecodeError
    (column names that are not UTF-8)."""
    import pyarrow as pa

    return (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, EOFError, UnicodeDecodeError)


def unreadable(path: Path, fmt: str, exc: BaseException, rows: int | None = None) -> TableError:
    """One sentence for an input that cannot be read, from pyarrow's error."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    where = f" after {rows:,} rows" if rows else ""
    if fmt == "csv":
        if "Empty CSV file" in detail:
            return TableError(f"{path}: the CSV file is empty (not even a header line)")
        if path.name.lower().endswith(".gz"):
            return TableError(
                f"{path}: the gzip stream is truncated or corrupt{where} ({detail}); download or compress it again"
            )
        if isinstance(exc, UnicodeDecodeError):
            return TableError(f"{path}: the header line is not valid UTF-8 ({detail})")
        if "columns, got" in detail:
            # The reader skips lines with the wrong number of fields through a handler that
            # pyarrow cannot call when the line is not UTF-8 either: the read stops there.
            return TableError(
                f"{path}: a line has the wrong number of fields and bytes that are not UTF-8, which the "
                f"reader cannot skip{where} ({detail}); fix or delete that line"
            )
        return TableError(f"{path}: cannot read the CSV{where} ({detail})")
    if Path(path).stat().st_size == 0:
        return TableError(f"{path}: the Parquet file is empty (0 bytes)")
    return TableError(f"{path}: not a readable Parquet file, truncated or corrupt{where} ({detail})")


def text_rows(batch: Any, id_name: str | None) -> tuple[Any, list[tuple[str, str]]]:
    """A batch of :func:`csv_batches` with every column as text, less the rows holding bytes
    that are not UTF-8, and ``(id, reason)`` of each row left out.

    The CSV is read as bytes (a cast to text then checks UTF-8 at memory speed); only a
    batch that fails is searched row by row.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    reasons: dict[int, str] = {}
    for name, col in zip(batch.schema.names, batch.columns, strict=True):
        try:
            columns.append(col.cast(pa.string()))
            continue
        except pa.ArrowInvalid:
            pass
        for i, raw in enumerate(col.to_pylist()):
            if raw is None or i in reasons:
                continue
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                text = raw if len(raw) <= 80 else raw[:80] + b"..."
                reasons[i] = (
                    f"invalid UTF-8 in column {name!r} (byte 0x{raw[e.start]:02x} at {e.start}; "
                    f"not in the output): {text!r}"
                )
        columns.append(col)
    if not reasons:
        return pa.RecordBatch.from_arrays(columns, names=batch.schema.names), []
    keep = np.ones(batch.num_rows, dtype=bool)
    keep[list(reasons)] = False
    kept = pc.filter(batch, pa.array(keep))
    out = pa.RecordBatch.from_arrays([c.cast(pa.string()) for c in kept.columns], names=batch.schema.names)
    ids = batch.column(id_name).to_pylist() if id_name else None
    bad = []
    for i in sorted(reasons):
        raw_id = ids[i] if ids is not None else None
        bad.append(("" if raw_id is None else raw_id.decode("utf-8", "backslashreplace"), reasons[i]))
    return out, bad


def csv_batches(path: Path, chunk_size: int, malformed: list[str] | None = None) -> Stream:
    """Stream a CSV (``.csv.gz`` too): every column as **bytes**; :func:`text_rows` makes them
    text and takes out the rows that are not UTF-8.

    Lines with the wrong number of fields cannot be a row of the table: they are skipped
    by the reader and described in ``malformed`` (never silently). Quoted newlines are
    read as CSV defines them, across batch boundaries too. Unreadable input raises
    :class:`TableError`. ``position`` counts bytes of the file.
    """
    import threading

    import pyarrow as pa
    import pyarrow.csv as pcsv

    lock = threading.Lock()

    def on_invalid(row: Any) -> str:
        text = row.text if len(row.text) <= 200 else row.text[:200] + "..."
        with lock:  # called from the reader's threads
            if malformed is not None:
                malformed.append(
                    f"malformed CSV line ({row.expected_columns} fields expected, {row.actual_columns} found; "
                    f"not in the output): {text!r}"
                )
        return "skip"

    errors = read_errors()
    # Header first, to type every column as bytes.
    try:
        header_reader = pcsv.open_csv(
            str(path),
            read_options=pcsv.ReadOptions(block_size=1 << 16, use_threads=False),
            parse_options=pcsv.ParseOptions(
                newlines_in_values=True, invalid_row_handler=lambda row: "skip"
            ),  # lines counted by the real pass
        )
        names = header_reader.schema.names
        header_reader.close()
    except errors as e:
        raise unreadable(path, "csv", e) from e
    block = int(min(256 << 20, max(1 << 20, chunk_size * 64)))
    src = _CountingFile(path)
    try:
        stream: Any = src.f
        if path.name.lower().endswith(".gz"):
            stream = pa.CompressedInputStream(stream, "gzip")
        reader = pcsv.open_csv(
            stream,
            read_options=pcsv.ReadOptions(block_size=block, use_threads=True),
            # newlines_in_values: without it the chunker cuts blocks at a newline inside
            # quotes, and the value is cut short or the rows after it lost.
            parse_options=pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.binary()), strings_can_be_null=False
            ),
        )
    except errors as e:
        src.f.close()
        raise unreadable(path, "csv", e) from e

    def batches() -> Iterator[Any]:
        rows = 0
        try:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                except errors as e:
                    raise unreadable(path, "csv", e, rows) from e
                rows += batch.num_rows
                yield batch
        finally:
            reader.close()
            src.f.close()

    schema = pa.schema([pa.field(n, pa.string()) for n in names])
    return Stream(schema, batches(), src.position, src.size, "bytes")


def parquet_batches(path: Path, chunk_size: int) -> Stream:
    """Stream a Parquet file in batches of ``chunk_size`` rows; ``position`` counts rows."""
    import pyarrow.parquet as pq

    errors = read_errors()
    try:
        pf = pq.ParquetFile(str(path))
    except errors as e:
        raise unreadable(path, "parquet", e) from e
    done = [0]
    total = pf.metadata.num_rows

    def batches() -> Iterator[Any]:
        try:
            it = pf.iter_batches(batch_size=chunk_size, use_threads=True)
            while True:
                try:
                    b = next(it)
                except StopIteration:
                    return
                except errors as e:
                    raise unreadable(path, "parquet", e, done[0]) from e
                done[0] += b.num_rows
                yield b
        finally:
            pf.close()

    return Stream(pf.schema_arrow, batches(), lambda: done[0], total, "rows")


def slices(batches: Iterator[Any], chunk_size: int) -> Iterator[Any]:
    """Batches of at most ``chunk_size`` rows (the CSV reader's blocks can be larger)."""
    for b in batches:
        if b.num_rows <= chunk_size:
            yield b
            continue
        for start in range(0, b.num_rows, chunk_size):
            yield b.slice(start, chunk_size)


def read_arrow(path: str | os.PathLike[str], malformed: list[str] | None = None) -> Any:
    """A CSV (columns as text) or Parquet file as a ``pyarrow.Table``, read as
    :func:`csv_batches` / :func:`parquet_batches` stream it; CSV lines with the wrong
    number of fields or bytes that are not UTF-8 are left out and described in ``malformed``."""
    import pyarrow as pa

    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"no such table: {p}")
    if table_format(p, ("csv", "parquet")) == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(str(p))
        except read_errors() as e:
            raise unreadable(p, "parquet", e) from e
    lines: list[str] = [] if malformed is None else malformed
    stream = csv_batches(p, 1 << 16, lines)
    parts = []
    for b in stream.batches:
        text, bad = text_rows(b, None)
        lines.extend(why for _, why in bad)
        parts.append(text)
    return pa.Table.from_batches(parts, schema=stream.schema)


__all__ = [
    "COORDINATE_PAIRS",
    "FORMATS",
    "ID_COLUMNS",
    "IMAGE_COLUMNS",
    "LAT_COLUMNS",
    "LON_COLUMNS",
    "PLACE_COLUMNS",
    "PREDICTION_PREFIXES",
    "TRUTH_PREFIXES",
    "Stream",
    "SwappedCoordinatesWarning",
    "Table",
    "TableError",
    "coordinate_columns",
    "csv_batches",
    "detect_column",
    "fix_swapped_coordinates",
    "open_dataset",
    "parquet_batches",
    "place_columns",
    "prefixed",
    "read_arrow",
    "read_table",
    "slices",
    "table_format",
    "text_rows",
    "to_float",
]
