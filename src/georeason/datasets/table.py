"""Any CSV / TSV / Parquet / JSONL table with latitude and longitude plus an image folder (``csv``).

:func:`load_table_benchmark` is also how the CSV layout of other benchmarks (GLOBE's
``mp16-reason-test-12k.csv``) is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from georeason.datasets.base import (
    OPTION_HOW,
    BenchmarkDataset,
    DatasetNotFoundError,
    ImageResolver,
    build_table,
    find_column,
    labels_from,
    read_coordinates,
    tree,
    warn_missing,
)
from georeason.tables import ID_COLUMNS, IMAGE_COLUMNS, coordinate_columns, detect_column, read_table


def load_table_benchmark(
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
    read = read_table(table_path)
    df = read.frame
    cols = list(df.columns)
    lat_c, lon_c = coordinate_columns(cols, lat_col, lon_col, source=table_path, how=OPTION_HOW)
    img_c = detect_column(cols, image_col, IMAGE_COLUMNS, "image", source=table_path, how=OPTION_HOW)
    assert img_c is not None
    id_c = find_column(cols, id_col, ID_COLUMNS, "id", table_path)
    notes: list[str] = []
    problems: list[str] = [f"{table_path}: line {n} is not a JSON object; left out" for n in read.bad_lines]
    lat, lon = read_coordinates(
        df, lat_c, lon_c, swap=swap_coordinates, source=str(table_path), label=table_path.name, notes=notes
    )
    names = [str(v).strip() for v in df[img_c].tolist()]
    ids = [str(v).strip() for v in df[id_c].tolist()] if id_c is not None else list(names)
    resolver = ImageResolver(base, folders)
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
    labels = labels_from(df, label_map)
    table, kept = build_table(
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
        ds = load_table_benchmark(
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
        warn_missing(self, tree(base, self.layout))

    @classmethod
    def _help(cls, root: Path) -> str:
        return f"Expected layout:\n{tree(root, cls.layout)}"

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
