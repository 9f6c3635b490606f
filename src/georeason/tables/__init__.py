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

Modules by role: :mod:`~.columns` (the vocabulary, column detection, the swapped-header
check), :mod:`~.read` (whole-file reads), :mod:`~.stream` (batch streaming).
"""

from __future__ import annotations

from georeason.tables.columns import (
    COORDINATE_PAIRS,
    FORMATS,
    ID_COLUMNS,
    IMAGE_COLUMNS,
    LAT_COLUMNS,
    LOCATABLE_COLUMNS,
    LON_COLUMNS,
    PLACE_COLUMNS,
    PREDICTION_PREFIXES,
    REASONING_COLUMNS,
    TRUTH_PREFIXES,
    SwappedCoordinatesWarning,
    TableError,
    coordinate_columns,
    detect_column,
    fix_swapped_coordinates,
    place_columns,
    prefixed,
    table_format,
    to_float,
)
from georeason.tables.read import Table, open_dataset, read_arrow, read_table
from georeason.tables.stream import Stream, csv_batches, parquet_batches, slices, text_rows

__all__ = [
    "COORDINATE_PAIRS",
    "FORMATS",
    "ID_COLUMNS",
    "IMAGE_COLUMNS",
    "LAT_COLUMNS",
    "LOCATABLE_COLUMNS",
    "LON_COLUMNS",
    "PLACE_COLUMNS",
    "PREDICTION_PREFIXES",
    "REASONING_COLUMNS",
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
