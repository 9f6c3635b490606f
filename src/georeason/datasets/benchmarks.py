"""Geolocation benchmarks as datasets, one class per benchmark with the same shape.

torchgeo style, one module each (:mod:`~georeason.datasets.im2gps3k`,
:mod:`~georeason.datasets.yfcc4k`, :mod:`~georeason.datasets.mp16_reason`,
:mod:`~georeason.datasets.hf`, :mod:`~georeason.datasets.table`,
:mod:`~georeason.datasets.exif`; shared steps in :mod:`~georeason.datasets.base`).
Every benchmark is ``Cls(root, **options)``, reads its files
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

from pathlib import Path
from typing import Any

from georeason.datasets.base import BenchmarkDataset, BenchmarkWarning, DatasetNotFoundError
from georeason.datasets.exif import ExifFolderBenchmark
from georeason.datasets.hf import HFDatasetBenchmark
from georeason.datasets.im2gps3k import IM2GPS3K
from georeason.datasets.mp16_reason import MP16ReasonBenchmark
from georeason.datasets.table import CSVBenchmark
from georeason.datasets.yfcc4k import YFCC4K
from georeason.tables import SwappedCoordinatesWarning, fix_swapped_coordinates

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
