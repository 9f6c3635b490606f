"""The table the selection reads and writes: CSV, Parquet or a ``datasets`` folder,
read through :mod:`georeason.tables`, written back in the input's format."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from georeason.pipelines.select.config import SelectError

logger = logging.getLogger("georeason.pipelines")


@dataclass
class LoadedTable:
    """A table to select from: the Arrow data (or a ``datasets`` Dataset) and its key columns."""

    kind: str  # "csv" | "parquet" | "datasets"
    data: Any  # pyarrow.Table, or datasets.Dataset
    id_col: str | None
    lat_col: str
    lon_col: str
    split: str | None = None
    malformed: list[str] = field(default_factory=list)  # CSV lines with the wrong number of fields (left out)
    root: Path | None = None  # the datasets folder (relative image paths are relative to it)

    def __len__(self) -> int:
        return int(self.data.num_rows)

    def column(self, name: str) -> Any:
        if self.kind == "datasets":
            return self.data.data.column(name)  # the Arrow table under the Dataset (no image decoding)
        return self.data.column(name)

    @property
    def column_names(self) -> list[str]:
        return list(self.data.column_names)


def load_table(
    path: str | os.PathLike[str],
    *,
    id_col: str | None = None,
    lat_col: str | None = None,
    lon_col: str | None = None,
    split: str = "train",
) -> LoadedTable:
    """A CSV / Parquet file (CSV columns as text; lines with the wrong number of fields or
    bytes that are not UTF-8 left out and counted) or a ``datasets`` folder (``save_to_disk``;
    a DatasetDict gives ``split``), read by :mod:`georeason.tables`."""
    from georeason.tables import (
        ID_COLUMNS,
        coordinate_columns,
        detect_column,
        open_dataset,
        read_arrow,
        table_format,
    )

    p = Path(path).expanduser()
    split_name: str | None = None
    malformed: list[str] = []
    if p.is_dir():
        data, _, split_name = open_dataset(p, split)
        kind = "datasets"
    elif p.is_file():
        kind = table_format(p, ("csv", "parquet"))
        data = read_arrow(p, malformed)
        if malformed:
            logger.warning("%s: %d malformed CSV lines left out, e.g. %r", p, len(malformed), malformed[0])
    else:
        raise FileNotFoundError(f"no such table or datasets folder: {p}")
    names = list(data.column_names)
    idc = detect_column(names, id_col, ID_COLUMNS, "id", required=False, source=p)
    lac, loc = coordinate_columns(names, lat_col, lon_col, source=p)
    return LoadedTable(
        kind=kind,
        data=data,
        id_col=idc,
        lat_col=lac,
        lon_col=loc,
        split=split_name,
        malformed=malformed,
        root=p if kind == "datasets" else None,
    )


def write_selected(table: LoadedTable, rows: NDArray[np.int64], out: str | os.PathLike[str]) -> Path:
    """Write ``rows`` of ``table`` in the input's format (a ``datasets`` folder for one)."""
    import pyarrow as pa

    out_p = Path(out).expanduser()
    out_p.parent.mkdir(parents=True, exist_ok=True)
    idx = np.asarray(rows, dtype=np.int64)
    if table.kind == "datasets":
        import shutil

        import datasets

        sel = table.data.select(idx.tolist())
        if (
            table.root is not None
            and "image" in sel.column_names
            and not isinstance(sel.features["image"], datasets.Image)
        ):
            # Image paths relative to the input folder would break in the output folder
            # (train's loader resolves them against the dataset's own folder): make them absolute.
            root = table.root

            def absolute(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
                return {
                    "image": [
                        p
                        if not isinstance(p, str) or not p or Path(p).is_absolute()
                        else str((root / p).resolve())
                        for p in batch["image"]
                    ]
                }

            sel = sel.map(absolute, batched=True)
        tmp = out_p.with_name(out_p.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        if table.split is not None:
            datasets.DatasetDict({table.split: sel}).save_to_disk(str(tmp))
        else:
            sel.save_to_disk(str(tmp))
        if out_p.exists():
            shutil.rmtree(out_p)
        os.replace(tmp, out_p)
        return out_p
    from georeason.tables import TableError, table_format

    try:
        fmt = table_format(out_p, ("csv", "parquet")) if not out_p.is_dir() else "?"
    except TableError:
        fmt = "?"
    if fmt != table.kind:
        raise SelectError(f"write the selection in the input's format ({table.kind}): got {out_p}")
    sel_t = table.data.take(pa.array(idx))
    tmp = out_p.with_name(out_p.name + ".tmp")
    if fmt == "csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(sel_t, str(tmp))
    else:
        import pyarrow.parquet as pq

        pq.write_table(sel_t, str(tmp))
    os.replace(tmp, out_p)
    return out_p
