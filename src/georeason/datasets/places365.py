"""The ``*_places365.csv`` benchmarks (IM2GPS3K, YFCC4K): a metadata CSV and a folder of images.

The CSVs are Müller-Budack et al.'s (ECCV 2018) ``IMG_ID, LAT, LON, ...``; each
benchmark (:mod:`georeason.datasets.im2gps3k`, :mod:`georeason.datasets.yfcc4k`) names
its files, folders and download links.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from georeason.datasets.base import (
    BenchmarkDataset,
    DatasetNotFoundError,
    ImageResolver,
    build_table,
    find_column,
    read_coordinates,
    tree,
    warn_missing,
)
from georeason.tables import ID_COLUMNS, LAT_COLUMNS, LON_COLUMNS, read_table


class Places365Benchmark(BenchmarkDataset):
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
        df = read_table(csv_path).frame
        cols = list(df.columns)
        id_col = find_column(cols, None, ID_COLUMNS, "id", csv_path)
        lat_col = find_column(cols, None, LAT_COLUMNS, "latitude", csv_path)
        lon_col = find_column(cols, None, LON_COLUMNS, "longitude", csv_path)
        if id_col is None or lat_col is None or lon_col is None:
            raise ValueError(
                f"{csv_path}: expected the columns IMG_ID, LAT, LON (any case); found: {', '.join(cols)}"
            )
        notes: list[str] = []
        problems: list[str] = []
        lat, lon = read_coordinates(
            df,
            lat_col,
            lon_col,
            swap=swap_coordinates,
            source=str(csv_path),
            label=csv_path.name,
            notes=notes,
        )
        names = [str(v).strip() for v in df[id_col].tolist()]
        folders = (
            [Path(images).expanduser()] if images is not None else [root / f for f in self.image_folders]
        )
        resolver = ImageResolver(root, folders)
        paths, found_in = resolver.resolve(names)
        if found_in is None and names:
            where = str(folders[0]) if images is not None else " or ".join(str(f) for f in folders)
            raise DatasetNotFoundError(
                f"{self.benchmark}: found {csv_path.name} but none of its {len(names)} images "
                f"(looked in {where} and anywhere under {root}).\n{self._help(root)}"
            )
        # ids: the file name without extension would be ambiguous across folders; keep IMG_ID as is.
        table, kept = build_table(
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
        warn_missing(self, tree(root, self.layout))

    @classmethod
    def _help(cls, root: Path) -> str:
        return (
            f"How to get it:\n  georeason data fetch {cls.benchmark} --to {root}\n{cls.how_to_get}\n"
            f"Expected layout:\n{tree(root, cls.layout)}"
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
