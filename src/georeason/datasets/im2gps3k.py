"""IM2GPS3K (Vo et al., ICCV 2017), the standard retrieval-free geolocation test set."""

from __future__ import annotations

from georeason.datasets.places365 import Places365Benchmark


class IM2GPS3K(Places365Benchmark):
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
