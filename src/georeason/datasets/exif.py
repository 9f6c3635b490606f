"""Any folder of photos with GPS in their EXIF, as a benchmark (``exif``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from georeason.datasets.base import IMAGE_EXTENSIONS, BenchmarkDataset, DatasetNotFoundError, tree


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
                f"(phone photos usually do):\n{tree(root, ('├── IMG_0001.jpg', '└── trip/IMG_0002.jpg'))}"
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
