"""YFCC4K (Vo et al., ICCV 2017): 4,536 photos from YFCC100M."""

from __future__ import annotations

from georeason.datasets.places365 import Places365Benchmark


class YFCC4K(Places365Benchmark):
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
