"""The images to distil: a ``datasets`` folder or a table of image paths, with truth labels."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from georeason.pipelines.distill.config import DistillError, finite
from georeason.types import PLACE_LEVELS


@dataclass
class DistillInput:
    """The images to distil: a ``datasets`` Dataset with resolved column names and truth labels."""

    dataset: Any
    root: Path
    id_col: str | None
    image_col: str
    lat_col: str
    lon_col: str
    ids: list[str]
    truth: list[dict[str, Any]]
    image_root: Path | None = None
    path_images: bool = False

    def __len__(self) -> int:
        return len(self.ids)

    def image_source(self, i: int, cell: Any) -> Any:
        """Bytes or a path for :func:`georeason.images.load_image`."""
        if isinstance(cell, Mapping):
            if cell.get("bytes"):
                return cell["bytes"]
            cell = cell.get("path")
        if not isinstance(cell, str) or not cell:
            raise DistillError(f"row {i} has no image")
        return str(self.resolve(cell))

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        if p.is_absolute():
            return p
        return (self.image_root or self.root) / p

    def cells(self, rows: Sequence[int]) -> list[Any]:
        """The image cells of ``rows`` undecoded (bytes or a path): decoding is :meth:`image_source`'s."""
        import datasets

        col = self.image_col
        sub = self.dataset.select(list(rows)).select_columns([col])
        if isinstance(sub.features[col], datasets.Image):
            sub = sub.cast_column(col, datasets.Image(decode=False))
        return list(sub[col])

    def paths(self, rows: Sequence[int]) -> list[str]:
        """The image paths of ``rows`` as the table gives them (relative ones unresolved)."""
        cells = self.dataset.select(list(rows))[self.image_col] if rows else []
        return [str(c.get("path") if isinstance(c, Mapping) else c) for c in cells]


def load_input(
    src: str | os.PathLike[str],
    *,
    split: str = "train",
    id_col: str | None = None,
    image_col: str | None = None,
    lat_col: str | None = None,
    lon_col: str | None = None,
    image_root: str | os.PathLike[str] | None = None,
) -> DistillInput:
    """Load the images to distil: a ``save_to_disk`` folder (a DatasetDict gives ``split``)
    or a CSV / Parquet / JSON(L) table with image paths (relative to ``image_root``, default
    the table's folder), read by :func:`georeason.tables.open_dataset`. Truth labels are the
    table's columns when it has them (``continent, country_code, country, admin1, city``),
    else reverse-geocoded."""
    import datasets

    from georeason.geo import continent_of, country_name, normalize_country, reverse_geocode_batch
    from georeason.tables import ID_COLUMNS, IMAGE_COLUMNS, coordinate_columns, detect_column, open_dataset

    ds, root, _ = open_dataset(src, split)
    names = list(ds.column_names)
    idc = detect_column(names, id_col, ID_COLUMNS, "id", required=False, source=src)
    imc = detect_column(names, image_col, IMAGE_COLUMNS, "image", source=src)
    lac, loc = coordinate_columns(names, lat_col, lon_col, source=src)
    assert imc is not None
    ids = [str(x) for x in ds[idc]] if idc else [str(i) for i in range(len(ds))]
    if len(set(ids)) != len(ids):
        dup = next(k for k, v in Counter(ids).items() if v > 1)
        raise DistillError(f"ids must be unique (resuming relies on them); {dup!r} repeats")
    lat = np.array([finite(x) if finite(x) is not None else np.nan for x in ds[lac]], dtype=np.float64)
    lon = np.array([finite(x) if finite(x) is not None else np.nan for x in ds[loc]], dtype=np.float64)
    has_labels = all(k in names for k in ("country_code", "city"))
    truth: list[dict[str, Any]] = []
    if has_labels:
        cols = {k: ds[k] if k in names else [None] * len(ds) for k in PLACE_LEVELS}
        for i in range(len(ds)):
            t: dict[str, Any] = {"lat": finite(lat[i]), "lon": finite(lon[i])}
            for k in PLACE_LEVELS:
                v = cols[k][i]
                t[k] = str(v) if v not in (None, "") else None
            cc = t["country_code"] or normalize_country(t.get("country"))
            t["country_code"] = cc
            if cc and not t["country"]:
                t["country"] = country_name(cc)
            if cc and not t["continent"]:
                t["continent"] = continent_of(cc)
            t["source"] = "input"
            truth.append(t)
    else:
        table = reverse_geocode_batch(lat, lon)
        for i in range(len(ds)):
            t = {"lat": finite(lat[i]), "lon": finite(lon[i]), "source": "reverse_geocode"}
            for k in PLACE_LEVELS:
                v = getattr(table, k)[i]
                t[k] = str(v) if v else None
            truth.append(t)
    path_images = not isinstance(ds.features.get(imc), datasets.Image)
    return DistillInput(
        dataset=ds,
        root=root,
        id_col=idc,
        image_col=imc,
        lat_col=lac,
        lon_col=loc,
        ids=ids,
        truth=truth,
        image_root=Path(image_root).expanduser() if image_root else None,
        path_images=path_images,
    )


__all__ = ["DistillInput", "load_input"]
