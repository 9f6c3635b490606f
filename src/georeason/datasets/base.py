"""What every benchmark loader shares: :class:`BenchmarkDataset` (the columnar table of
truth and the images), the errors and warnings, and the steps of reading a benchmark's
files (finding columns and images, checking coordinates, dropping unusable rows).

The tables themselves are read by :mod:`georeason.tables` (one reader, one column
vocabulary, the swapped-header check); each benchmark is a module of this package
(torchgeo style) and :mod:`georeason.datasets.benchmarks` registers them by name.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from georeason.tables import PLACE_COLUMNS, detect_column, fix_swapped_coordinates, to_float
from georeason.types import PLACE_LEVELS, GeoSample

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")

#: How the loader options (``lat_col=``, ``split=``, ...) are given on the command line.
OPTION_HINT = "on the command line: --benchmark-option KEY=VALUE"
# how to name a column, in the errors of georeason.tables.detect_column
OPTION_HOW = "{key}= (" + OPTION_HINT + ")"


class DatasetNotFoundError(FileNotFoundError):
    """The benchmark's files are not where they were looked for; the message says
    where to get them and how to lay them out."""


class SwappedCoordinatesWarning(UserWarning):
    """The latitude and longitude columns were swapped in the file and have been fixed."""


class BenchmarkWarning(UserWarning):
    """Something in the benchmark files needed attention (dropped rows, missing images)."""


@dataclass
class BenchmarkDataset(Sequence[GeoSample]):
    """A benchmark: one row per image, truth coordinates, optional place labels.

    Attributes:
        name: registry name (``im2gps3k``, ``csv``, ...).
        root: where the files were read from.
        table: ``id`` (str, unique), ``lat``, ``lon`` (float), and the label
            columns the benchmark has (``continent``, ``country_code``,
            ``country``, ``admin1``, ``city``; "" where a row has none).
        reference_name: the benchmark's name in the published-results table
            (``published_results.csv``), or None when nothing comparable exists.
        notes: what was fixed while loading (a swapped header, dropped rows).
        problems: one message per dropped or suspicious row.
    """

    name: str
    root: Path
    table: pd.DataFrame
    images: list[Any]
    reference_name: str | None = None
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _image_reader: Any = None  # callable(i) -> bytes | str | None, for images stored in Arrow

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i: int) -> GeoSample:  # type: ignore[override]
        if isinstance(i, slice):  # pragma: no cover - Sequence protocol nicety
            raise TypeError("slice a BenchmarkDataset with .subset(indices)")
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for {self.name} with {n} images")
        row = self.table.iloc[i]

        def label(c: str) -> str | None:
            return (str(row[c]) or None) if c in self.table.columns else None

        return GeoSample(
            id=str(row["id"]),
            image=self.image(i),
            lat=float(row["lat"]),
            lon=float(row["lon"]),
            continent=label("continent"),
            country_code=label("country_code"),
            country=label("country"),
            admin1=label("admin1"),
            city=label("city"),
        )

    def __iter__(self) -> Iterator[GeoSample]:
        for i in range(len(self)):
            yield self[i]

    def image(self, i: int) -> Any:
        """The image of row ``i``: a :class:`~pathlib.Path` (that may not exist) or encoded bytes."""
        if self._image_reader is not None:
            return self._image_reader(i)
        return self.images[i]

    @property
    def ids(self) -> list[str]:
        return self.table["id"].tolist()

    @property
    def label_columns(self) -> list[str]:
        """The label columns holding at least one non-empty value."""
        return [c for c in PLACE_LEVELS if c in self.table.columns and (self.table[c] != "").any()]

    def describe(self) -> dict[str, Any]:
        """JSON-able summary: size, labels, notes, problems, images missing on disk."""
        missing = self.missing_images()
        return {
            "name": self.name,
            "root": str(self.root),
            "n_images": len(self),
            "labels": self.label_columns,
            "reference_name": self.reference_name,
            "notes": list(self.notes),
            "n_problems": len(self.problems),
            "problems": self.problems[:20],
            "n_missing_images": len(missing),
            "missing_images": [str(p) for p in missing[:20]],
        }

    def missing_images(self) -> list[Path]:
        """Image paths that do not exist on disk (images stored as bytes never miss)."""
        if self._image_reader is not None:
            return []
        return [p for p in self.images if isinstance(p, Path) and not p.is_file()]


# ---------------------------------------------------------------------------
# steps shared by the loaders
# ---------------------------------------------------------------------------


def tree(root: Path, lines: Sequence[str]) -> str:
    body = "\n".join(f"  {ln}" for ln in lines)
    return f"  {root}/\n{body}"


def find_column(
    columns: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str, source: Any = None
) -> str | None:
    """The column named ``wanted`` (must exist), else the first candidate present (case-insensitive),
    else None; errors say how to name the column as a loader option."""
    names = [str(c) for c in columns]
    return detect_column(names, wanted, candidates, what, required=False, source=source, how=OPTION_HOW)


def read_coordinates(
    frame: pd.DataFrame,
    lat_col: str,
    lon_col: str,
    *,
    swap: bool | None,
    source: str,
    label: str,
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Latitudes and longitudes of ``frame`` as floats, a swapped header detected (or the swap
    forced / forbidden by ``swap``) by :func:`georeason.tables.fix_swapped_coordinates` and noted."""
    lat, lon = to_float(frame[lat_col]), to_float(frame[lon_col])
    lat, lon, swapped = fix_swapped_coordinates(
        lat, lon, source=source, lat_name=lat_col, lon_name=lon_col, swap=swap
    )
    if swapped:
        notes.append(f"{label}: {lat_col}/{lon_col} swapped; values read as lat, lon")
    return lat, lon


def _image_name_candidates(name: str) -> list[str]:
    """``name`` as given, then with each image extension when it has none."""
    if Path(name).suffix.lower() in IMAGE_EXTENSIONS:
        return [name]
    return [name] + [name + ext for ext in IMAGE_EXTENSIONS]


class ImageResolver:
    """Finds each listed image in the first candidate folder that holds any of
    them, falling back to a recursive index of ``root`` by file name (archives
    unpack into folders of all sorts of names)."""

    def __init__(self, root: Path, folders: Sequence[Path]) -> None:
        self.root = root
        self.folders = [f for f in folders if f.is_dir()]
        self._index: dict[str, Path] | None = None

    def _recursive_index(self) -> dict[str, Path]:
        if self._index is None:
            index: dict[str, Path] = {}
            for dirpath, _dirnames, filenames in os.walk(self.root):
                for fn in filenames:
                    if Path(fn).suffix.lower() in IMAGE_EXTENSIONS:
                        index.setdefault(fn, Path(dirpath) / fn)
            self._index = index
        return self._index

    def resolve(self, names: Sequence[str]) -> tuple[list[Path], Path | None]:
        """Paths for ``names`` and the folder they were found in (None: not found anywhere).

        Names that are found nowhere keep a path in the chosen folder (or the
        first candidate) so that the error message names the expected place.
        """
        probe = names[: min(len(names), 200)]

        def hit(folder: Path, name: str) -> Path | None:
            for cand in _image_name_candidates(name):
                p = folder / cand
                if p.is_file():
                    return p
            return None

        best: Path | None = None
        for folder in self.folders:
            if any(hit(folder, n) is not None for n in probe):
                best = folder
                break
        if best is not None:
            out = []
            for n in names:
                p = hit(best, n)
                out.append(p if p is not None else best / n)
            return out, best
        # Nothing in the usual folders: look everywhere under root by file name.
        index = self._recursive_index()
        found: list[Path] = []
        n_hits = 0
        fallback = self.folders[0] if self.folders else self.root
        for n in names:
            p = None
            for cand in _image_name_candidates(n):
                p = index.get(Path(cand).name)
                if p is not None:
                    break
            if p is None and (self.root / n).is_file():  # a relative path with folders
                p = self.root / n
            if p is not None:
                n_hits += 1
            found.append(p if p is not None else fallback / n)
        return found, (self.root if n_hits else None)


def dedupe_ids(ids: list[str], source: str, problems: list[str]) -> list[str]:
    """Make ids unique (``id#2``, ``id#3``...): resuming an evaluation keys on them."""
    seen: dict[str, int] = {}
    out = []
    n_dup = 0
    for i in ids:
        k = seen.get(i, 0)
        seen[i] = k + 1
        if k:
            n_dup += 1
            out.append(f"{i}#{k + 1}")
        else:
            out.append(i)
    if n_dup:
        msg = f"{source}: {n_dup} duplicate ids renamed with a '#n' suffix"
        problems.append(msg)
        warnings.warn(msg, BenchmarkWarning, stacklevel=3)
    return out


def labels_from(df: pd.DataFrame, label_map: dict[str, str | None] | None = None) -> dict[str, list[str]]:
    """Label columns (``continent`` ... ``city``) found in ``df``, as clean strings ("" = none)."""
    out: dict[str, list[str]] = {}
    cols = list(df.columns)
    for label, cands in PLACE_COLUMNS.items():
        wanted = (label_map or {}).get(label)
        col = find_column(cols, wanted, cands, label)
        if col is None:
            continue
        vals = []
        for v in df[col].tolist():
            if v is None or (isinstance(v, float) and math.isnan(v)):
                vals.append("")
            else:
                vals.append(str(v).strip())
        out[label] = vals
    return out


def build_table(
    ids: list[str],
    lat: np.ndarray,
    lon: np.ndarray,
    labels: dict[str, list[str]],
    images: list[Any],
    *,
    source: str,
    problems: list[str],
    notes: list[str],
) -> tuple[pd.DataFrame, list[Any]]:
    """Drop rows whose coordinates are unusable (with a warning) and assemble the table."""
    ok = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    bad = np.flatnonzero(~ok)
    if bad.size:
        for j in bad[:20]:
            problems.append(
                f"{source}: row {int(j) + 1} (id {ids[j]!r}): unusable coordinates ({lat[j]}, {lon[j]})"
            )
        msg = f"{source}: dropped {bad.size} of {len(ids)} rows with missing or out-of-range coordinates"
        notes.append(msg)
        warnings.warn(msg, BenchmarkWarning, stacklevel=3)
    keep = np.flatnonzero(ok)
    ids_kept = dedupe_ids([ids[j] for j in keep], source, problems)
    data: dict[str, Any] = {"id": ids_kept, "lat": lat[keep], "lon": lon[keep]}
    for k, v in labels.items():
        data[k] = [v[j] for j in keep]
    return pd.DataFrame(data), [images[j] for j in keep]


def warn_missing(dataset: BenchmarkDataset, layout_hint: str) -> None:
    missing = dataset.missing_images()
    if not missing:
        return
    share = len(missing) / max(1, len(dataset))
    msg = (
        f"{dataset.name}: {len(missing)} of {len(dataset)} images are missing on disk "
        f"(first: {missing[0]}); they are kept and will count as failures (misses) in an evaluation"
    )
    if share > 0.05:
        msg += f". Expected layout:\n{layout_hint}"
    dataset.notes.append(f"{len(missing)} images missing on disk")
    warnings.warn(msg, BenchmarkWarning, stacklevel=3)
