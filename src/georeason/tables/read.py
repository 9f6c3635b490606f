"""Whole-table reads: :func:`read_table` (CSV / TSV / Parquet / JSONL as pandas, CSV cells
as text), :func:`read_arrow` (CSV / Parquet as a pyarrow Table) and :func:`open_dataset`
(a ``datasets`` folder or table file; ``datasets`` imported only when asked)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from georeason.tables.columns import TableError, table_format
from georeason.tables.stream import csv_batches, read_errors, text_rows, unreadable

# the ``datasets`` builder that reads each format
_DATASETS_BUILDER = {"csv": "csv", "tsv": "csv", "parquet": "parquet", "jsonl": "json", "json": "json"}


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
