"""Evaluation run folders for the tests and the benchmark of ``georeason view`` (issue 18 §2).

:func:`make_run` writes a CSV benchmark of generated photos at real GeoNames cities and runs
the real runner (:func:`georeason.eval.runner.run_eval`) over it with :class:`Scripted`, a
backend that answers each photo from a script instead of a model: the folder then holds what
``georeason eval`` writes (``run.json``, ``predictions.jsonl``, ``report.*``), every error band,
parse failures, backend failures and missing images, in known numbers. The benchmark imports
this module too (``benchmarks/bench_pages.py``), so the 12,000-row run it times is made the same way.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from georeason.infer.base import Backend, Request, Response

#: The error (km) the script aims at in each band of :data:`georeason.eval.plots.ERROR_BANDS`.
BAND_ERRORS_KM = (5.0, 90.0, 400.0, 3000.0)


class Scripted(Backend):
    """Answers each request from ``answers[id]`` (a str), or fails it when the entry is an Exception."""

    name = "scripted"

    def __init__(self, answers: Mapping[str, str | Exception]) -> None:
        self.answers = answers

    def generate(self, requests: list[Request], **kw: Any) -> list[Response]:
        out = []
        for r in requests:
            a = self.answers.get(r.id, "I cannot tell.")
            if isinstance(a, Exception):
                out.append(Response(id=r.id, text=None, error=str(a)))
            else:
                out.append(Response(id=r.id, text=a, seconds=0.01))
        return out


@dataclass
class FixtureRun:
    """A run folder and what was scripted into it."""

    out: Path
    data: Path
    n: int
    #: per row, the band the answer was aimed at (0-3), or "parse" / "backend" / "image"
    planned: list[Any]


def _offset(lat: float, lon: float, km: float, bearing: float) -> tuple[float, float]:
    """The point ``km`` from (lat, lon) along ``bearing`` (radians), on the sphere."""
    d = km / 6371.0088
    la, lo = math.radians(lat), math.radians(lon)
    la2 = math.asin(math.sin(la) * math.cos(d) + math.cos(la) * math.sin(d) * math.cos(bearing))
    lo2 = lo + math.atan2(
        math.sin(bearing) * math.sin(d) * math.cos(la), math.cos(d) - math.sin(la) * math.sin(la2)
    )
    return math.degrees(la2), (math.degrees(lo2) + 540.0) % 360.0 - 180.0


def make_run(
    root: Path, n: int = 40, *, seed: int = 0, n_photos: int = 8, report: bool = True, n_bootstrap: int = 50
) -> FixtureRun:
    """An evaluation of ``n`` photos in ``root/run`` over the CSV benchmark ``root/data``.

    Rows cycle through the four error bands, with one parse failure every 9 rows, one backend
    failure every 23 and one missing image every 31 (so a 40-row run has each kind at least once).
    The photos are ``n_photos`` small JPEGs shared by the rows (a 12,000-row run needs no 12,000 files).
    """
    from PIL import Image

    from georeason.datasets.benchmarks import BenchmarkWarning
    from georeason.eval.runner import EvalConfig, run_eval
    from georeason.geo import country_name, gazetteer
    from georeason.protocols import get_protocol

    data, out = root / "data", root / "run"
    (data / "images").mkdir(parents=True, exist_ok=True)
    for k in range(n_photos):
        colour = (40 + 25 * k % 200, 90 + 40 * k % 150, 160 - 15 * k % 120)
        Image.new("RGB", (64, 48), colour).save(data / "images" / f"photo{k}.jpg", quality=80)
    g = gazetteer()
    rng = np.random.default_rng(seed)
    big = np.flatnonzero(g.population >= 200_000)
    rows = rng.choice(big, size=n, replace=len(big) < n)
    protocol = get_protocol("geor")
    lines = ["id,image,lat,lon,country,city"]
    answers: dict[str, str | Exception] = {}
    planned: list[Any] = []
    for i, j in enumerate(rows):
        rid = f"r{i:05d}"
        lat, lon = float(g.lat[j]), float(g.lon[j])
        country, city = country_name(str(g.country_code[j])), str(g.name[j])
        image = f"photo{i % n_photos}.jpg" if i % 31 != 30 else "gone.jpg"
        lines.append(f'{rid},{image},{lat:.5f},{lon:.5f},"{country}","{city}"')
        if i % 31 == 30:
            planned.append("image")
        elif i % 23 == 22:
            answers[rid] = RuntimeError("HTTP 503: the model is busy")
            planned.append("backend")
        elif i % 9 == 8:
            answers[rid] = "<think>Sand and sky.</think>I cannot tell where this is."
            planned.append("parse")
        else:
            band = i % 4
            plat, plon = _offset(lat, lon, BAND_ERRORS_KM[band], float(rng.uniform(0, 2 * math.pi)))
            answers[rid] = protocol.format_answer(
                {"lat": plat, "lon": plon, "country": country, "city": city, "admin1": ""}
            )
            planned.append(band)
    (data / "benchmark.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = EvalConfig(benchmark="csv", data=str(data), model="scripted", protocol="geor", batch_size=64)
    with warnings.catch_warnings():  # the missing photos are on purpose
        warnings.simplefilter("ignore", BenchmarkWarning)
        run_eval(
            config,
            out,
            backend=Scripted(answers),
            report=report,
            plots=False,
            n_bootstrap=n_bootstrap,
            progress=False,
            log=lambda _m: None,
        )
    return FixtureRun(out=out, data=data, n=n, planned=planned)
