"""Geolocation benchmarks as datasets, one class per benchmark with the same shape.

torchgeo style: every benchmark is ``Cls(root, **options)``, reads its files
eagerly except the images, and raises :class:`DatasetNotFoundError` with the
download links and the exact file tree it expects when ``root`` does not hold
it. :func:`load_benchmark` picks the class by name:

==============  ============================================================  ===================
name            files under ``root``                                          published rows
==============  ============================================================  ===================
``im2gps3k``    ``im2gps3k_places365.csv`` + ``im2gps3ktest/`` (or images/)   ``im2gps3k``
``yfcc4k``      ``yfcc4k_places365.csv`` + ``yfcc4k/`` (or images/)           ``yfcc4k``
``mp16-reason`` Hugging Face dataset (``save_to_disk`` or parquet files), or  ``mp16-reason-test``
                GLOBE's ``mp16-reason-test-12k.csv`` + ``eval_images/``
``hf``          any Hugging Face dataset with lat/lon columns (e.g. the       none
                synthetic world of :mod:`georeason.datasets.synthetic`)
``csv``         any CSV/Parquet with lat/lon columns + an image folder        none
``exif``        any folder of photos with GPS in their EXIF                   none
==============  ============================================================  ===================

A dataset is columnar: :attr:`BenchmarkDataset.table` holds ``id, lat, lon``
and whatever labels the benchmark has (``continent, country_code, country,
admin1, city``), so a runner can list ids and truth without touching a single
image; ``dataset[i]`` gives a :class:`~georeason.types.GeoSample` whose
``image`` is a path or the encoded bytes (decode with
:func:`georeason.images.load_image`). Images that are missing on disk are
kept as rows (their path does not exist): an evaluation records them as
failures and counts them as misses, it does not silently shrink the benchmark.

Coordinates are checked: rows whose lat/lon are not numbers in range are
dropped with a warning (and listed in :attr:`BenchmarkDataset.problems`), and a
table whose latitude and longitude columns are swapped — old copies of
``im2gps3k_places365.csv`` have the header ``LON,LAT`` over values that are
lat, lon — is detected by range, fixed and reported with a
:class:`SwappedCoordinatesWarning`.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from georeason.types import GeoSample

logger = logging.getLogger("georeason.datasets.benchmarks")

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
LABEL_COLUMNS: tuple[str, ...] = ("continent", "country_code", "country", "admin1", "city")

# Column names tried in order (case-insensitive) when none is given.
ID_CANDIDATES: tuple[str, ...] = ("id", "img_id", "image_id", "imgid", "photo_id", "key")
LAT_CANDIDATES: tuple[str, ...] = ("lat", "latitude", "gt_lat", "true_lat", "gps_lat", "lat_deg")
LON_CANDIDATES: tuple[str, ...] = (
    "lon",
    "lng",
    "long",
    "longitude",
    "gt_lon",
    "true_lon",
    "gps_lon",
    "lon_deg",
)
IMAGE_CANDIDATES: tuple[str, ...] = (
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
LABEL_CANDIDATES: dict[str, tuple[str, ...]] = {
    "continent": ("continent",),
    "country_code": ("country_code", "iso", "iso2", "country_iso"),
    "country": ("country", "country_name"),
    "admin1": ("admin1", "state", "province", "region"),
    "city": ("city", "city_name", "locality"),
}


#: How the loader options (``lat_col=``, ``split=``, ...) are given on the command line.
OPTION_HINT = "on the command line: --benchmark-option KEY=VALUE"


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
        return [c for c in LABEL_COLUMNS if c in self.table.columns and (self.table[c] != "").any()]

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
# helpers shared by the loaders
# ---------------------------------------------------------------------------


def _tree(root: Path, lines: Sequence[str]) -> str:
    body = "\n".join(f"  {ln}" for ln in lines)
    return f"  {root}/\n{body}"


def _find_column(
    columns: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str
) -> str | None:
    """The column named ``wanted`` (must exist), else the first candidate present (case-insensitive)."""
    lower: dict[str, str] = {}
    for c in columns:
        lower.setdefault(str(c).strip().lower(), str(c))
    if wanted is not None:
        col = lower.get(wanted.strip().lower())
        if col is None:
            raise ValueError(f"no {what} column {wanted!r}; the columns are: {', '.join(map(str, columns))}")
        return col
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    return None


def _read_table(path: Path) -> pd.DataFrame:
    """CSV / TSV / Parquet / JSONL as a DataFrame; CSV cells as text ("" = missing, so 'NA' stays Namibia)."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        elif suffix in (".jsonl", ".ndjson"):
            df = pd.read_json(path, lines=True, dtype=False)
        else:
            sep = "\t" if suffix in (".tsv", ".tab") else ","
            df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError as e:
        raise ValueError(
            f"{path} is empty: a benchmark table needs a header row naming its image, lat and lon columns"
        ) from e
    except Exception as e:
        raise ValueError(f"cannot read {path}: {type(e).__name__}: {e}") from e
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _to_float(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values.astype(str).str.strip().replace("", "nan"), errors="coerce").to_numpy(
        dtype=np.float64
    )


def fix_swapped_coordinates(
    lat: np.ndarray, lon: np.ndarray, *, source: str, lat_name: str = "lat", lon_name: str = "lon"
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Detect latitude/longitude columns swapped in a file, by range, and swap them back.

    The rule: the column read as *longitude* never leaves [-90, 90] while the
    column read as *latitude* does (some |value| > 90, which no latitude can
    be). Then the header is wrong, not the values: the two arrays are swapped
    and a :class:`SwappedCoordinatesWarning` is issued. With no value beyond
    ±90 in either column the orientation cannot be told from the values and the
    header is trusted.

    Returns ``(lat, lon, swapped)``.
    """
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


def _image_name_candidates(name: str) -> list[str]:
    """``name`` as given, then with each image extension when it has none."""
    if Path(name).suffix.lower() in IMAGE_EXTENSIONS:
        return [name]
    return [name] + [name + ext for ext in IMAGE_EXTENSIONS]


class _ImageResolver:
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


def _dedupe_ids(ids: list[str], source: str, problems: list[str]) -> list[str]:
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


def _labels_from(df: pd.DataFrame, label_map: dict[str, str | None] | None = None) -> dict[str, list[str]]:
    """Label columns (``continent`` ... ``city``) found in ``df``, as clean strings ("" = none)."""
    out: dict[str, list[str]] = {}
    cols = list(df.columns)
    for label, cands in LABEL_CANDIDATES.items():
        wanted = (label_map or {}).get(label)
        col = _find_column(cols, wanted, cands, label)
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


def _build_table(
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
    ids_kept = _dedupe_ids([ids[j] for j in keep], source, problems)
    data: dict[str, Any] = {"id": ids_kept, "lat": lat[keep], "lon": lon[keep]}
    for k, v in labels.items():
        data[k] = [v[j] for j in keep]
    return pd.DataFrame(data), [images[j] for j in keep]


def _warn_missing(dataset: BenchmarkDataset, layout_hint: str) -> None:
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


# ---------------------------------------------------------------------------
# IM2GPS3K and YFCC4K: a *_places365.csv and a folder of images
# ---------------------------------------------------------------------------


class _Places365Benchmark(BenchmarkDataset):
    """Common loader of the ``*_places365.csv`` benchmarks (IMG_ID, LAT, LON, ...)."""

    benchmark: ClassVar[str]
    csv_names: ClassVar[tuple[str, ...]]
    image_folders: ClassVar[tuple[str, ...]]
    how_to_get: ClassVar[str]
    layout: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        root: str | Path,
        *,
        csv: str | Path | None = None,
        images: str | Path | None = None,
        swap_coordinates: bool | None = None,
    ) -> None:
        """Args:
        root: folder holding the CSV and the image folder.
        csv: the metadata file (default: the first of :attr:`csv_names` found in root).
        images: the image folder (default: the first of :attr:`image_folders`
            holding the listed images, else anywhere under root by file name).
        swap_coordinates: force (True) or forbid (False) swapping the LAT/LON
            columns; None detects a swapped header by range.
        """
        root = Path(root).expanduser()
        csv_path = self._find_csv(root, csv)
        df = _read_table(csv_path)
        cols = list(df.columns)
        id_col = _find_column(cols, None, ("img_id", "id", "image_id"), "id")
        lat_col = _find_column(cols, None, LAT_CANDIDATES, "latitude")
        lon_col = _find_column(cols, None, LON_CANDIDATES, "longitude")
        if id_col is None or lat_col is None or lon_col is None:
            raise ValueError(
                f"{csv_path}: expected the columns IMG_ID, LAT, LON (any case); found: {', '.join(cols)}"
            )
        notes: list[str] = []
        problems: list[str] = []
        lat, lon = _to_float(df[lat_col]), _to_float(df[lon_col])
        if swap_coordinates is None:
            lat, lon, swapped = fix_swapped_coordinates(
                lat, lon, source=str(csv_path), lat_name=lat_col, lon_name=lon_col
            )
        else:
            swapped = bool(swap_coordinates)
            if swapped:
                lat, lon = lon, lat
        if swapped:
            notes.append(f"{csv_path.name}: {lat_col}/{lon_col} header swapped; values read as lat, lon")
        names = [str(v).strip() for v in df[id_col].tolist()]
        folders = (
            [Path(images).expanduser()] if images is not None else [root / f for f in self.image_folders]
        )
        resolver = _ImageResolver(root, folders)
        paths, found_in = resolver.resolve(names)
        if found_in is None and names:
            where = str(folders[0]) if images is not None else " or ".join(str(f) for f in folders)
            raise DatasetNotFoundError(
                f"{self.benchmark}: found {csv_path.name} but none of its {len(names)} images "
                f"(looked in {where} and anywhere under {root}).\n{self._help(root)}"
            )
        # ids: the file name without extension would be ambiguous across folders; keep IMG_ID as is.
        table, kept = _build_table(
            names, lat, lon, {}, list(paths), source=str(csv_path), problems=problems, notes=notes
        )
        super().__init__(
            name=self.benchmark,
            root=root,
            table=table,
            images=kept,
            reference_name=self.benchmark,
            notes=notes,
            problems=problems,
        )
        _warn_missing(self, _tree(root, self.layout))

    @classmethod
    def _help(cls, root: Path) -> str:
        return (
            f"How to get it:\n  georeason data fetch {cls.benchmark} --to {root}\n{cls.how_to_get}\n"
            f"Expected layout:\n{_tree(root, cls.layout)}"
        )

    @classmethod
    def _find_csv(cls, root: Path, csv: str | Path | None) -> Path:
        if csv is not None:
            p = Path(csv).expanduser()
            if not p.is_absolute() and not p.exists():
                p = root / p
            if not p.is_file():
                raise DatasetNotFoundError(
                    f"{cls.benchmark}: metadata file {p} not found.\n{cls._help(root)}"
                )
            return p
        if root.is_file():  # the CSV itself was given as root
            return root
        if not root.is_dir():
            raise DatasetNotFoundError(
                f"{cls.benchmark} not found: {root} does not exist.\n{cls._help(root)}"
            )
        for name in cls.csv_names:
            for p in (root / name, root / "metadata" / name, root / "meta" / name):
                if p.is_file():
                    return p
        raise DatasetNotFoundError(
            f"{cls.benchmark} not found in {root}: no {' or '.join(cls.csv_names)}.\n{cls._help(root)}"
        )


class IM2GPS3K(_Places365Benchmark):
    """IM2GPS3K (Vo et al., ICCV 2017): 2,997 Flickr photos, the standard retrieval-free test set.

    Metadata ``im2gps3k_places365.csv`` (Müller-Budack et al., ECCV 2018):
    ``IMG_ID, AUTHOR, LAT, LON, S3_Label, S16_Label, S365_Label, Prob_indoor,
    Prob_natural, Prob_urban``. Copies circulating (the GeoEstimation repository's,
    used by G3, Img2Loc and others) have the header ``LON,LAT`` over values that
    are lat, lon: detected by range and fixed with a warning.
    """

    benchmark = "im2gps3k"
    csv_names = ("im2gps3k_places365.csv", "im2gps3k.csv")
    image_folders = ("im2gps3ktest", "images", "im2gps3k", "img")
    how_to_get = (
        "  or by hand: metadata https://raw.githubusercontent.com/TIBHannover/GeoEstimation/original_tf/"
        "meta/im2gps3k_places365.csv\n"
        "              images   http://www.mediafire.com/file/7ht7sn78q27o9we/im2gps3ktest.zip "
        "(unzip into the folder)"
    )
    layout = (
        "├── im2gps3k_places365.csv   (IMG_ID, AUTHOR, LAT, LON, ...; 2,997 rows)",
        "└── im2gps3ktest/            (or images/)",
        "    ├── 1000269685_e60e9cdfb4_1125_78841376@N00.jpg",
        "    └── ...                  (2,997 JPEG files named by IMG_ID)",
    )


class YFCC4K(_Places365Benchmark):
    """YFCC4K (Vo et al., ICCV 2017): 4,536 photos from YFCC100M.

    Metadata ``yfcc4k_places365.csv``: ``IMG_ID, LAT, LON, ...`` (IMG_ID with or
    without the ``.jpg`` extension; both are resolved).
    """

    benchmark = "yfcc4k"
    csv_names = ("yfcc4k_places365.csv", "yfcc4k.csv")
    image_folders = ("yfcc4k", "images", "img")
    how_to_get = (
        "  or by hand: images   http://www.mediafire.com/file/3og8y3o6c9de3ye/yfcc4k.zip (unzip into the folder)\n"
        "              metadata yfcc4k_places365.csv from https://huggingface.co/Jia-py/G3-checkpoint "
        "(G3's release) or Img2Loc's data folder"
    )
    layout = (
        "├── yfcc4k_places365.csv     (IMG_ID, LAT, LON, ...; 4,536 rows)",
        "└── yfcc4k/                  (or images/)",
        "    ├── 10006224294.jpg",
        "    └── ...                  (4,536 JPEG files named by IMG_ID)",
    )


# ---------------------------------------------------------------------------
# Hugging Face datasets (MP16-Reason, the synthetic world, anything with lat/lon)
# ---------------------------------------------------------------------------


def _is_hf_saved(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def _parquet_files(root: Path, split: str | None) -> list[Path]:
    files = sorted(p for p in root.rglob("*.parquet") if p.is_file())
    if split and files:
        chosen = [p for p in files if p.name.startswith(f"{split}-") or p.name.startswith(f"{split}.")]
        chosen = chosen or [p for p in files if split in p.parent.name or p.stem.startswith(split)]
        if chosen:
            return chosen
    return files


class HFDatasetBenchmark(BenchmarkDataset):
    """Any Hugging Face dataset on disk with latitude/longitude columns.

    ``root`` is a folder written by ``Dataset.save_to_disk`` /
    ``DatasetDict.save_to_disk`` (a split is chosen, default ``test``) or a
    folder of Parquet files (``<split>-*.parquet`` preferred). Columns: the
    :class:`~georeason.types.GeoSample` names (``id, image, lat, lon,
    continent, country_code, country, admin1, city``); ``LAT``/``LON``,
    ``latitude``/``longitude`` and ``IMG_ID`` are accepted too. ``image`` may be
    the ``datasets`` Image feature (bytes, decoded lazily) or a path relative to
    ``root`` (or to ``images``).
    """

    benchmark: ClassVar[str] = "hf"
    reference: ClassVar[str | None] = None
    how_to_get: ClassVar[str] = (
        "  write one with datasets.Dataset.save_to_disk(...) or .to_parquet(...), with columns\n"
        "  image, lat, lon (and optionally id, continent, country_code, country, admin1, city)"
    )
    layout: ClassVar[tuple[str, ...]] = (
        "├── dataset_dict.json        (DatasetDict.save_to_disk; or state.json for one Dataset)",
        "└── test/ ...                (Arrow files)",
        "  or",
        "└── data/test-00000-of-00001.parquet  (columns image, lat, lon, ...)",
    )

    def __init__(
        self,
        root: str | Path,
        *,
        split: str | None = "test",
        images: str | Path | None = None,
        id_col: str | None = None,
        lat_col: str | None = None,
        lon_col: str | None = None,
        image_col: str | None = None,
        swap_coordinates: bool | None = None,
    ) -> None:
        root = Path(root).expanduser()
        if not root.exists():
            raise DatasetNotFoundError(
                f"{self.benchmark} not found: {root} does not exist.\n{self._help(root)}"
            )
        csv_layout = self._csv_layout(root)
        if csv_layout is not None:
            self._init_from_csv(
                root, csv_layout, images, id_col, lat_col, lon_col, image_col, swap_coordinates
            )
            return
        ds = self._load_arrow(root, split)
        cols = list(ds.column_names)
        lat_c = _find_column(cols, lat_col, LAT_CANDIDATES, "latitude")
        lon_c = _find_column(cols, lon_col, LON_CANDIDATES, "longitude")
        if lat_c is None or lon_c is None:
            raise ValueError(
                f"{root}: no latitude/longitude columns; the columns are: {', '.join(cols)}. "
                f"Name them with lat_col=/lon_col= ({OPTION_HINT})"
            )
        img_c = _find_column(cols, image_col, IMAGE_CANDIDATES, "image")
        if img_c is None:
            raise ValueError(
                f"{root}: no image column (image, image_path, path, ...); columns: {', '.join(cols)}. "
                f"Name it with image_col= ({OPTION_HINT})"
            )
        id_c = _find_column(cols, id_col, ID_CANDIDATES, "id")
        meta_cols = [c for c in cols if c != img_c]
        # Read everything but the images now (cheap); images stay in Arrow until asked for.
        meta = ds.select_columns(meta_cols).to_pandas()
        notes: list[str] = []
        problems: list[str] = []
        lat, lon = _to_float(meta[lat_c]), _to_float(meta[lon_c])
        if swap_coordinates is None:
            lat, lon, swapped = fix_swapped_coordinates(
                lat, lon, source=str(root), lat_name=lat_c, lon_name=lon_c
            )
        else:
            swapped = bool(swap_coordinates)
            if swapped:
                lat, lon = lon, lat
        if swapped:
            notes.append(f"{lat_c}/{lon_c} swapped; values read as lat, lon")
        n = len(meta)
        ids = [str(v) for v in meta[id_c].tolist()] if id_c is not None else [f"{i:06d}" for i in range(n)]
        labels = _labels_from(meta)
        positions = list(range(n))
        table, kept = _build_table(
            ids, lat, lon, labels, positions, source=str(root), problems=problems, notes=notes
        )
        image_dir = Path(images).expanduser() if images is not None else root
        reader = _ArrowImageReader(ds, img_c, kept, image_dir)
        super().__init__(
            name=self.benchmark,
            root=root,
            table=table,
            images=[],
            reference_name=self.reference,
            notes=notes,
            problems=problems,
            _image_reader=reader,
        )

    # -- the CSV variant (GLOBE's evaluation files) ---------------------------------
    csv_names: ClassVar[tuple[str, ...]] = ()
    csv_image_folders: ClassVar[tuple[str, ...]] = ("images",)

    def _csv_layout(self, root: Path) -> Path | None:
        if root.is_file() and root.suffix.lower() in (".csv", ".tsv"):
            return root
        for name in self.csv_names:
            if (root / name).is_file():
                return root / name
        return None

    def _init_from_csv(
        self,
        root: Path,
        csv_path: Path,
        images: str | Path | None,
        id_col: str | None,
        lat_col: str | None,
        lon_col: str | None,
        image_col: str | None,
        swap_coordinates: bool | None,
    ) -> None:
        base = root if root.is_dir() else root.parent
        folders = (
            [Path(images).expanduser()] if images is not None else [base / f for f in self.csv_image_folders]
        )
        ds = _load_table_benchmark(
            self.benchmark,
            csv_path,
            base,
            folders,
            id_col=id_col,
            lat_col=lat_col,
            lon_col=lon_col,
            image_col=image_col,
            swap_coordinates=swap_coordinates,
            help_text=self._help(root),
        )
        super().__init__(
            name=self.benchmark,
            root=root,
            table=ds.table,
            images=ds.images,
            reference_name=self.reference,
            notes=ds.notes,
            problems=ds.problems,
        )
        _warn_missing(self, _tree(base, self.layout))

    @classmethod
    def _help(cls, root: Path) -> str:
        return f"How to get it:\n{cls.how_to_get}\nExpected layout:\n{_tree(root, cls.layout)}"

    def _load_arrow(self, root: Path, split: str | None) -> Any:
        try:
            import datasets
        except ImportError as e:  # pragma: no cover - datasets is in the [train] extra
            raise ImportError(
                f"reading {self.benchmark} needs the `datasets` package: pip install 'georeason[train]'"
            ) from e
        if root.is_dir() and _is_hf_saved(root):
            obj = datasets.load_from_disk(str(root))
            if isinstance(obj, datasets.DatasetDict):
                if split is None or split not in obj:
                    if split is None and len(obj) == 1:
                        return next(iter(obj.values()))
                    raise ValueError(
                        f"{root}: no split {split!r}; the splits are {list(obj)} (choose one with split=NAME; "
                        f"{OPTION_HINT})"
                    )
                return obj[split]
            return obj
        files = (
            _parquet_files(root, split) if root.is_dir() else ([root] if root.suffix == ".parquet" else [])
        )
        if not files:
            raise DatasetNotFoundError(
                f"{self.benchmark} not found in {root}: neither a saved Hugging Face dataset "
                f"(dataset_dict.json / state.json) nor Parquet files.\n{self._help(root)}"
            )
        return datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train")


class _ArrowImageReader:
    """Reads one image of an Arrow dataset without decoding it: bytes, or the path it points to."""

    def __init__(self, ds: Any, column: str, positions: list[int], image_dir: Path) -> None:
        self.column = column
        self.positions = positions
        self.image_dir = image_dir
        try:
            from datasets import Image as ImageFeature

            feature = ds.features.get(column)
            if isinstance(feature, ImageFeature):
                ds = ds.cast_column(column, ImageFeature(decode=False))
        except ImportError:  # pragma: no cover
            pass
        self.ds = ds

    def __call__(self, i: int) -> Any:
        value = self.ds[self.positions[i]][self.column]
        if isinstance(value, dict):  # the Image feature undecoded: {"bytes": ..., "path": ...}
            if value.get("bytes"):
                return value["bytes"]
            value = value.get("path")
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        if value is None or (isinstance(value, str) and not value.strip()):
            return Path(self.image_dir) / "<no image in row>"
        p = Path(str(value)).expanduser()
        return p if p.is_absolute() else self.image_dir / p


class MP16ReasonBenchmark(HFDatasetBenchmark):
    """MP16-Reason test split (GLOBE, arXiv 2506.14674): Flickr photos with country/city labels.

    Reads the Hugging Face layout (``save_to_disk`` or Parquet; columns
    ``image, lat, lon, country, city, ...``, ``LAT``/``LON`` accepted) or
    GLOBE's evaluation layout (``mp16-reason-test-12k.csv`` with ``IMG_ID, LAT,
    LON, country, city`` and images in ``eval_images/``).
    """

    benchmark = "mp16-reason"
    reference = "mp16-reason-test"
    csv_names = ("mp16-reason-test-12k.csv", "mp16-reason-test.csv")
    csv_image_folders = ("eval_images", "images")
    how_to_get = (
        "  the test split is linked from https://github.com/lingli1996/GLOBE (dataset badge of the README);\n"
        "  save it with datasets' save_to_disk / to_parquet, or keep GLOBE's CSV + image folder"
    )
    layout = (
        "├── dataset_dict.json        (save_to_disk; split 'test')   or   data/test-*.parquet",
        "  or GLOBE's evaluation files:",
        "├── mp16-reason-test-12k.csv (IMG_ID, LAT, LON, country, city)",
        "└── eval_images/             (JPEG files named by IMG_ID)",
    )


# ---------------------------------------------------------------------------
# Any CSV / Parquet with lat/lon + an image folder
# ---------------------------------------------------------------------------


def _load_table_benchmark(
    name: str,
    table_path: Path,
    base: Path,
    folders: list[Path],
    *,
    id_col: str | None,
    lat_col: str | None,
    lon_col: str | None,
    image_col: str | None,
    swap_coordinates: bool | None,
    help_text: str,
    label_map: dict[str, str | None] | None = None,
) -> BenchmarkDataset:
    df = _read_table(table_path)
    if len(df) == 0:
        raise ValueError(f"{table_path} holds no rows")
    cols = list(df.columns)
    lat_c = _find_column(cols, lat_col, LAT_CANDIDATES, "latitude")
    lon_c = _find_column(cols, lon_col, LON_CANDIDATES, "longitude")
    if lat_c is None or lon_c is None:
        raise ValueError(
            f"{table_path}: no latitude/longitude columns (tried {', '.join(LAT_CANDIDATES)} / "
            f"{', '.join(LON_CANDIDATES)}); the columns are: {', '.join(cols)}. Name them with lat_col=/lon_col= "
            f"({OPTION_HINT})"
        )
    img_c = _find_column(cols, image_col, IMAGE_CANDIDATES, "image")
    if img_c is None:
        raise ValueError(
            f"{table_path}: no image column (tried {', '.join(IMAGE_CANDIDATES)}); the columns are: "
            f"{', '.join(cols)}. Name it with image_col= ({OPTION_HINT})"
        )
    id_c = _find_column(cols, id_col, ID_CANDIDATES, "id")
    notes: list[str] = []
    problems: list[str] = []
    lat, lon = _to_float(df[lat_c]), _to_float(df[lon_c])
    if swap_coordinates is None:
        lat, lon, swapped = fix_swapped_coordinates(
            lat, lon, source=str(table_path), lat_name=lat_c, lon_name=lon_c
        )
    else:
        swapped = bool(swap_coordinates)
        if swapped:
            lat, lon = lon, lat
    if swapped:
        notes.append(f"{table_path.name}: {lat_c}/{lon_c} swapped; values read as lat, lon")
    names = [str(v).strip() for v in df[img_c].tolist()]
    ids = [str(v).strip() for v in df[id_c].tolist()] if id_c is not None else list(names)
    resolver = _ImageResolver(base, folders)
    # Absolute paths in the table are used as they are.
    rel_idx = [i for i, n in enumerate(names) if not Path(n).is_absolute()]
    paths: list[Path] = [Path(n) for n in names]
    found_in: Path | None = base
    if rel_idx:
        rel_paths, found_in = resolver.resolve([names[i] for i in rel_idx])
        for i, p in zip(rel_idx, rel_paths, strict=True):
            paths[i] = p
    if found_in is None and not any(p.is_file() for p in paths):
        where = " or ".join(str(f) for f in folders)
        raise DatasetNotFoundError(
            f"{name}: found {table_path.name} but none of its {len(names)} images (looked in {where} "
            f"and anywhere under {base}).\n{help_text}"
        )
    labels = _labels_from(df, label_map)
    table, kept = _build_table(
        ids, lat, lon, labels, paths, source=str(table_path), problems=problems, notes=notes
    )
    return BenchmarkDataset(name=name, root=base, table=table, images=kept, notes=notes, problems=problems)


class CSVBenchmark(BenchmarkDataset):
    """Any CSV / TSV / Parquet / JSONL table with latitude and longitude plus an image folder.

    ``root`` is the table file, or a folder holding exactly one table (or one
    named ``benchmark.*`` / ``metadata.*`` / ``labels.*``). Columns are found
    case-insensitively (``lat``/``latitude``/``LAT``..., ``lon``/``lng``/
    ``longitude``..., ``image``/``path``/``filename``/``IMG_ID``..., ``id``) or
    named with ``lat_col=`` etc.; label columns ``continent, country_code,
    country, admin1 (state, province), city`` are read when present. Image paths
    are relative to ``images`` (default: ``root/images`` if it exists, else the
    table's folder), searched by file name under the folder as a last resort.
    """

    benchmark: ClassVar[str] = "csv"
    layout: ClassVar[tuple[str, ...]] = (
        "├── benchmark.csv            (columns: image, lat, lon [, id, country, city, ...])",
        "└── images/                  (the files named in the image column)",
    )

    def __init__(
        self,
        root: str | Path,
        *,
        images: str | Path | None = None,
        id_col: str | None = None,
        lat_col: str | None = None,
        lon_col: str | None = None,
        image_col: str | None = None,
        swap_coordinates: bool | None = None,
        reference_name: str | None = None,
        country_col: str | None = None,
        city_col: str | None = None,
    ) -> None:
        root = Path(root).expanduser()
        table_path = self._find_table(root)
        base = table_path.parent
        folders = [Path(images).expanduser()] if images is not None else [base / "images", base]
        ds = _load_table_benchmark(
            self.benchmark,
            table_path,
            base,
            folders,
            id_col=id_col,
            lat_col=lat_col,
            lon_col=lon_col,
            image_col=image_col,
            swap_coordinates=swap_coordinates,
            help_text=self._help(root),
            label_map={"country": country_col, "city": city_col},
        )
        super().__init__(
            name=self.benchmark,
            root=root,
            table=ds.table,
            images=ds.images,
            reference_name=reference_name,
            notes=ds.notes,
            problems=ds.problems,
        )
        _warn_missing(self, _tree(base, self.layout))

    @classmethod
    def _help(cls, root: Path) -> str:
        return f"Expected layout:\n{_tree(root, cls.layout)}"

    @classmethod
    def _find_table(cls, root: Path) -> Path:
        exts = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson")
        if root.is_file():
            return root
        if not root.is_dir():
            raise DatasetNotFoundError(f"csv benchmark not found: {root} does not exist.\n{cls._help(root)}")
        tables = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in exts)
        if len(tables) == 1:
            return tables[0]
        preferred = [p for p in tables if p.stem.lower() in ("benchmark", "metadata", "labels", "test")]
        if len(preferred) == 1:
            return preferred[0]
        if not tables:
            raise DatasetNotFoundError(
                f"csv benchmark: no table (.csv, .tsv, .parquet, .jsonl) in {root}.\n{cls._help(root)}"
            )
        raise ValueError(
            f"{root} holds several tables ({', '.join(p.name for p in tables)}); give the file itself as --data"
        )


# ---------------------------------------------------------------------------
# Any folder of photos with GPS in their EXIF
# ---------------------------------------------------------------------------


class ExifFolderBenchmark(BenchmarkDataset):
    """Every image under ``root`` (recursively) whose EXIF holds a GPS fix; ids are relative paths.

    Photos without GPS (or with the (0, 0) "no fix" many cameras write) are left
    out and counted in :attr:`notes`; unreadable files are listed in
    :attr:`problems`.
    """

    benchmark: ClassVar[str] = "exif"

    def __init__(self, root: str | Path, *, recursive: bool = True) -> None:
        from georeason.images import ImageError, exif_gps

        root = Path(root).expanduser()
        if not root.is_dir():
            raise DatasetNotFoundError(
                f"exif benchmark: {root} is not a folder. Give a folder of photos whose EXIF has GPS "
                f"(phone photos usually do):\n{_tree(root, ('├── IMG_0001.jpg', '└── trip/IMG_0002.jpg'))}"
            )
        pattern = root.rglob("*") if recursive else root.glob("*")
        files = sorted(p for p in pattern if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        ids, lats, lons, paths = [], [], [], []
        problems: list[str] = []
        n_no_gps = 0
        for p in files:
            try:
                gps = exif_gps(p)
            except ImageError as e:
                problems.append(f"{p}: {e}")
                continue
            if gps is None:
                n_no_gps += 1
                continue
            ids.append(p.relative_to(root).as_posix())
            lats.append(gps[0])
            lons.append(gps[1])
            paths.append(p)
        if not ids:
            raise DatasetNotFoundError(
                f"exif benchmark: none of the {len(files)} images under {root} has a GPS position in its EXIF "
                f"({n_no_gps} without GPS, {len(problems)} unreadable)."
            )
        notes = []
        if n_no_gps:
            notes.append(f"{n_no_gps} of {len(files)} images have no GPS in their EXIF and are left out")
        if problems:
            notes.append(f"{len(problems)} unreadable images left out")
        table = pd.DataFrame({"id": ids, "lat": np.asarray(lats, float), "lon": np.asarray(lons, float)})
        super().__init__(
            name=self.benchmark, root=root, table=table, images=paths, notes=notes, problems=problems
        )


# ---------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------

BENCHMARKS: dict[str, type[BenchmarkDataset]] = {
    "im2gps3k": IM2GPS3K,
    "yfcc4k": YFCC4K,
    "mp16-reason": MP16ReasonBenchmark,
    "hf": HFDatasetBenchmark,
    "csv": CSVBenchmark,
    "exif": ExifFolderBenchmark,
}
_ALIASES = {
    "img2gps3k": "im2gps3k",
    "im2gps3ktest": "im2gps3k",
    "mp16-reason-test": "mp16-reason",
    "mp16reason": "mp16-reason",
    "parquet": "csv",
    "table": "csv",
    "huggingface": "hf",
    "synthetic": "hf",
}


def benchmark_class(name: str) -> type[BenchmarkDataset]:
    """The loader class registered under ``name`` (case-insensitive; a few aliases)."""
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in BENCHMARKS:
        raise ValueError(
            f"unknown benchmark {name!r}; choose one of: {', '.join(BENCHMARKS)} "
            "(or synthetic: the world of `georeason synth` / `georeason demo`, read as hf)"
        )
    return BENCHMARKS[key]


def load_benchmark(name: str, root: str | Path, **options: Any) -> BenchmarkDataset:
    """Load benchmark ``name`` from ``root``; ``options`` go to its class (see :data:`BENCHMARKS`).

    >>> ds = load_benchmark("csv", "tests/fixtures/benchmarks/csv_bench")  # doctest: +SKIP
    >>> ds[0].id, round(ds[0].lat, 2)  # doctest: +SKIP
    ('img000', 48.86)

    Raises:
        DatasetNotFoundError: the files are not there; the message says how to get them.
        ValueError: unknown name, unreadable table, missing columns, bad option.
    """
    cls = benchmark_class(name)
    try:
        return cls(root, **options)  # type: ignore[arg-type]
    except TypeError as e:
        if "unexpected keyword argument" in str(e):
            raise ValueError(f"benchmark {name!r}: {e}") from e
        raise


__all__ = [
    "BENCHMARKS",
    "IM2GPS3K",
    "YFCC4K",
    "BenchmarkDataset",
    "BenchmarkWarning",
    "CSVBenchmark",
    "DatasetNotFoundError",
    "ExifFolderBenchmark",
    "HFDatasetBenchmark",
    "MP16ReasonBenchmark",
    "SwappedCoordinatesWarning",
    "benchmark_class",
    "fix_swapped_coordinates",
    "load_benchmark",
]
