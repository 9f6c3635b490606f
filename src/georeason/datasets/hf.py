"""Any Hugging Face dataset on disk with latitude/longitude columns, as a benchmark (``hf``).

The synthetic world of :mod:`georeason.datasets.synthetic` is read this way, and so is
MP16-Reason (:mod:`georeason.datasets.mp16_reason`), which adds GLOBE's CSV layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from georeason.datasets.base import (
    OPTION_HINT,
    OPTION_HOW,
    BenchmarkDataset,
    DatasetNotFoundError,
    build_table,
    find_column,
    labels_from,
    read_coordinates,
    tree,
    warn_missing,
)
from georeason.datasets.table import load_table_benchmark
from georeason.tables import ID_COLUMNS, IMAGE_COLUMNS, coordinate_columns, detect_column, open_dataset


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
        lat_c, lon_c = coordinate_columns(cols, lat_col, lon_col, source=root, how=OPTION_HOW)
        img_c = detect_column(cols, image_col, IMAGE_COLUMNS, "image", source=root, how=OPTION_HOW)
        assert img_c is not None
        id_c = find_column(cols, id_col, ID_COLUMNS, "id", root)
        meta_cols = [c for c in cols if c != img_c]
        # Read everything but the images now (cheap); images stay in Arrow until asked for.
        meta = ds.select_columns(meta_cols).to_pandas()
        notes: list[str] = []
        problems: list[str] = []
        lat, lon = read_coordinates(
            meta, lat_c, lon_c, swap=swap_coordinates, source=str(root), label=root.name, notes=notes
        )
        n = len(meta)
        ids = [str(v) for v in meta[id_c].tolist()] if id_c is not None else [f"{i:06d}" for i in range(n)]
        labels = labels_from(meta)
        positions = list(range(n))
        table, kept = build_table(
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
        ds = load_table_benchmark(
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
        warn_missing(self, tree(base, self.layout))

    @classmethod
    def _help(cls, root: Path) -> str:
        return f"How to get it:\n{cls.how_to_get}\nExpected layout:\n{tree(root, cls.layout)}"

    def _load_arrow(self, root: Path, split: str | None) -> Any:
        try:
            import datasets
        except ImportError as e:  # pragma: no cover - datasets is in the [train] extra
            raise ImportError(
                f"reading {self.benchmark} needs the `datasets` package: pip install 'georeason[train]'"
            ) from e
        if root.is_dir() and _is_hf_saved(root):
            ds, _, _ = open_dataset(root, split, hint=f" (choose one with split=NAME; {OPTION_HINT})")
            return ds
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
