"""Streaming reads (pyarrow): a CSV or Parquet table in record batches with bounded
memory whatever its size (``data label`` over MP-16's 4.7M rows), CSV cells as text,
rows that are not UTF-8 or have the wrong number of fields left out and described,
and one sentence for input that cannot be read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from georeason.tables.columns import TableError


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
