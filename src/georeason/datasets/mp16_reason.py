"""MP16-Reason's test split (GLOBE, arXiv 2506.14674) as a benchmark (``mp16-reason``)."""

from __future__ import annotations

from georeason.datasets.hf import HFDatasetBenchmark


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
