"""``georeason view RUN_DIR``: one evaluation run in the browser.

:class:`RunView` reads an evaluation folder (:mod:`georeason.eval.runner`: ``predictions.jsonl``
and ``run.json``) once and keeps each field as a numpy column, so that a 12,000-row run
(MP16-Reason's test size) is filtered, sorted and paged on the server in milliseconds and
the browser only ever holds one page of rows. :func:`create_view_app` puts it behind a small
FastAPI app:

- ``GET /``: the page (``static/view.html`` with ``view.js`` and ``view.css``, on the locate
  page's ``locate.css`` and map, ``worldmap.js``); ``/static/NAME`` and ``/map/outlines.json``
  are :data:`georeason.serve.pages.assets_router`'s, as on the locate page. Nothing is fetched
  from elsewhere, so it works offline;
- ``GET /api/summary``: the run's settings and the report's distance table (acc@km with 95%
  CIs, median and mean km, GeoScore) as ``report.md`` prints it
  (:func:`georeason.eval.report.distance_rows`): from the run's ``report.json`` when it was
  written after the last prediction, else computed by :func:`georeason.eval.report.build_report`; the
  error bands of the report's world map; the failures; the continents and countries to filter by;
- ``GET /api/rows``: one page of the list (``offset``, ``limit``), sorted (``sort``,
  ``order``) and filtered (``band``, ``continent``, ``country``, ``status``, ``q``), with
  ``indices=true`` the row numbers of every match (the map draws those);
- ``GET /api/rows/{i}``: one row: the full answer, its parse, the error, and ``image_url``
  when the benchmark's image of that row is readable here;
- ``GET /api/image/{i}``: that image. The file is the one the benchmark loader names for the
  run's row ``i``: no path ever comes from the request, so nothing but the run's own images
  can be read, and only files that are images (by their first bytes) are sent;
- ``GET /api/points``: the map's points as compact arrays (true and predicted lat/lon, band).

Everything is read from the run's files when the app is created (the benchmark, for the
images, on the first image asked for); the app never writes.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from georeason.eval.plots import ERROR_BANDS, NO_PREDICTION_BAND, error_band

#: What a row's status can be: no failure, or the runner's ``error_kind``.
ROW_STATUSES = ("ok", "image", "backend", "parse")
#: ``status=`` filters: a row status, ``failed`` (any failure), or ``format`` (the answer
#: breaks the protocol's format, whether or not a location could still be read from it).
STATUS_FILTERS = (*ROW_STATUSES, "failed", "format")
SORT_KEYS = ("index", "id", "distance", "continent", "country", "status")
MAX_PAGE = 500


def image_media_type(head: bytes) -> str | None:
    """The media type of an image a browser shows, from its first bytes; None for anything else.

    >>> image_media_type(b"\\xff\\xd8\\xff\\xe0..."), image_media_type(b"GIF89a"), image_media_type(b"#!/bin/sh")
    ('image/jpeg', 'image/gif', None)
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head.startswith(b"BM"):
        return "image/bmp"
    return None


def _text(values: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = [v.strip() if isinstance(v, str) else "" for v in values]
    return out


def _num(values: Sequence[Any]) -> np.ndarray:
    return np.array(
        [v if isinstance(v, int | float) and not isinstance(v, bool) else np.nan for v in values], float
    )


def _round(a: np.ndarray, digits: int) -> list[float | None]:
    """A float column as JSON numbers (None where NaN), rounded: 4 decimals of a degree are 11 m."""
    r = np.round(a, digits)
    return [None if not np.isfinite(v) else float(v) for v in r]


@dataclass
class Query:
    """A list request: which rows (filters), in what order, which page."""

    bands: tuple[int, ...] = ()
    continent: str | None = None
    country: str | None = None
    status: str | None = None
    q: str | None = None
    sort: str = "index"
    descending: bool = False
    offset: int = 0
    limit: int = 50

    def __post_init__(self) -> None:
        bad = [b for b in self.bands if not 0 <= b <= NO_PREDICTION_BAND]
        if bad:
            raise ValueError(f"band must be 0..{NO_PREDICTION_BAND} (see /api/summary 'bands'), got {bad}")
        if self.status is not None and self.status not in STATUS_FILTERS:
            raise ValueError(f"status must be one of {', '.join(STATUS_FILTERS)}, got {self.status!r}")
        if self.sort not in SORT_KEYS:
            raise ValueError(f"sort must be one of {', '.join(SORT_KEYS)}, got {self.sort!r}")
        if self.offset < 0:
            raise ValueError(f"offset must be >= 0, got {self.offset}")
        if not 1 <= self.limit <= MAX_PAGE:
            raise ValueError(f"limit must be 1..{MAX_PAGE}, got {self.limit}")


def _saved_report(out: Path, preds: Path, n_records: int) -> dict[str, Any] | None:
    """``report.json`` when the run wrote it after its last prediction, for these records: then the
    page prints the very figures of ``report.md`` and a 12,000-row run opens at once. None when
    it is missing, older than the predictions, for another number of rows, or of another shape."""
    from georeason.eval.report import REPORT_JSON, distance_rows

    path = out / REPORT_JSON
    try:
        if path.stat().st_mtime < preds.stat().st_mtime:
            return None
        report = json.loads(path.read_text(encoding="utf-8"))
        if report.get("n_records") != n_records:
            return None
        distance_rows(report["metrics"])  # a report of an older shape is recomputed
        if not (
            all(k in report for k in ("run", "n_expected", "complete"))
            and "by_kind" in report["failures"]
            and "truth_source" in report["hierarchy"]
        ):
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return report


class RunView:
    """An evaluation run folder read once, as columns (see the module docstring).

    Raises FileNotFoundError when ``run_dir`` is not a run folder and ValueError when its
    predictions file holds no record.
    """

    def __init__(self, run_dir: str | Path, *, n_bootstrap: int = 1000, seed: int = 0) -> None:
        from georeason.eval.report import REPORT_JSON, build_report, distance_rows, truth_places
        from georeason.geo import country_name
        from georeason.runs import PREDICTIONS_FILE, RUN_FILE, read_records

        out = Path(run_dir).expanduser()
        hint = f"make one with `georeason eval ... --out {out}`"
        if out.is_file():
            raise FileNotFoundError(f"{out} is a file: give the folder of an evaluation run ({hint})")
        if not out.is_dir():
            raise FileNotFoundError(f"no such run folder: {out} ({hint})")
        preds = out / PREDICTIONS_FILE
        if not preds.is_file():
            raise FileNotFoundError(f"{out} is not an evaluation run: it has no {PREDICTIONS_FILE} ({hint})")
        records, _ = read_records(preds)
        if not records:
            raise ValueError(f"{preds} holds no predictions yet (is the run still starting?)")
        run_info: dict[str, Any] = {}
        try:
            run_info = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):  # an older or hand-made run: the report copes without it
            run_info = {}
        self.dir = out
        self.records = records
        self.run_info = run_info if isinstance(run_info, dict) else {}
        saved = _saved_report(out, preds, len(records))
        self.report = saved or build_report(
            records, run_info=self.run_info, n_bootstrap=n_bootstrap, seed=seed
        )
        self.report_source = REPORT_JSON if saved else "computed"
        self.distance_table = distance_rows(self.report["metrics"])

        from georeason.eval.metrics import valid_coordinates
        from georeason.geo import haversine_km

        n = len(records)
        col = {k: [r.get(k) for r in records] for k in ("true_lat", "true_lon", "pred_lat", "pred_lon")}
        self.tlat, self.tlon = _num(col["true_lat"]), _num(col["true_lon"])
        self.plat, self.plon = _num(col["pred_lat"]), _num(col["pred_lon"])
        ok = valid_coordinates(self.tlat, self.tlon) & valid_coordinates(self.plat, self.plon)
        self.distance = np.full(n, np.nan)
        if ok.any():
            self.distance[ok] = haversine_km(self.tlat[ok], self.tlon[ok], self.plat[ok], self.plon[ok])
        self.band = error_band(self.distance)
        self.ids = np.array([str(r.get("id")) for r in records], dtype=object)
        kinds = _text([r.get("error_kind") for r in records])
        self.status = np.where(np.isin(kinds, ROW_STATUSES[1:]), kinds, "ok").astype(object)
        self.format_bad = np.array([r.get("format_ok") is False for r in records])
        # The truth's place as the report judges it (labels, else reverse-geocoded coordinates).
        truth = truth_places(records)
        self.continent = truth["continent"].to_numpy(dtype=object)
        self.country_code = truth["country_code"].to_numpy(dtype=object)
        self.country = np.array(
            [
                c or (country_name(cc) if cc else "")
                for c, cc in zip(truth["country"], self.country_code, strict=True)
            ],
            dtype=object,
        )
        self.city = truth["city"].to_numpy(dtype=object)
        pred_city = _text([r.get("pred_city") for r in records])
        pred_country = _text([r.get("pred_country") or r.get("pred_country_code") for r in records])
        self.answer = np.array(
            [", ".join(x for x in (c, k) if x) for c, k in zip(pred_city, pred_country, strict=True)],
            dtype=object,
        )
        self._search = np.array(
            [
                " ".join((i, c, k, a)).lower()
                for i, c, k, a in zip(self.ids, self.city, self.country, self.answer, strict=True)
            ],
            dtype=object,
        )
        self._orders: dict[str, np.ndarray] = {}
        self._dataset: Any = None
        self._dataset_error: str | None = None
        self._dataset_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.records)

    # ------------------------------------------------------------------ summary

    def summary(self) -> dict[str, Any]:
        """The run, the distance table as ``report.md`` prints it, bands, failures, filter choices."""
        from georeason.eval.report import DISTANCE_HEADER
        from georeason.types import CONTINENT_NAMES

        rep = self.report
        counts = np.bincount(self.band, minlength=NO_PREDICTION_BAND + 1)
        bands = [
            {
                "band": k,
                "label": label,
                "color": color,
                "max_km": None if not np.isfinite(hi) else hi,
                "n": int(counts[k]),
            }
            for k, (hi, color, label) in enumerate(ERROR_BANDS)
        ]
        bands.append(
            {"band": NO_PREDICTION_BAND, "label": "no prediction", "color": "#8c8c8c", "max_km": None,
             "n": int(counts[NO_PREDICTION_BAND])}
        )  # fmt: skip
        continents: dict[str, int] = {}
        for c in self.continent:
            continents[c] = continents.get(c, 0) + 1
        countries: dict[tuple[str, str], int] = {}
        for cc, name in zip(self.country_code, self.country, strict=True):
            countries[(cc, name)] = countries.get((cc, name), 0) + 1
        return {
            "dir": str(self.dir),
            "report_source": self.report_source,
            "run": rep["run"],
            "n_records": rep["n_records"],
            "n_expected": rep["n_expected"],
            "complete": rep["complete"],
            "distance_table": {"header": list(DISTANCE_HEADER), "rows": self.distance_table},
            "metrics": rep["metrics"],
            "failures": {
                k: rep["failures"][k] for k in ("total", "by_kind", "n_answers", "n_format_failures")
            },
            "truth_source": rep["hierarchy"]["truth_source"],
            "bands": bands,
            "statuses": list(STATUS_FILTERS),
            "sort_keys": list(SORT_KEYS),
            "continents": [
                {"code": c, "name": CONTINENT_NAMES.get(c, c) if c else "unknown", "n": n}
                for c, n in sorted(continents.items(), key=lambda kv: (kv[0] == "", kv[0]))
            ],
            "countries": [
                {"code": cc, "name": name or cc or "unknown", "n": n}
                for (cc, name), n in sorted(
                    countries.items(), key=lambda kv: (kv[0][1] == "", kv[0][1], kv[0][0])
                )
            ],
        }

    # ------------------------------------------------------------------ list

    def _order(self, key: str) -> np.ndarray:
        """Row numbers sorted by ``key`` (ascending; missing distances last), cached."""
        if key not in self._orders:
            n = len(self)
            if key == "index":
                order = np.arange(n)
            elif key == "distance":
                order = np.argsort(self.distance, kind="stable")  # NaN sorts last
            else:
                col = {
                    "id": self.ids,
                    "continent": self.continent,
                    "country": self.country,
                    "status": self.status,
                }[key]
                # blanks last, then by the text, ties in file order
                order = np.lexsort((np.arange(n), col.astype(str), col == ""))
            self._orders[key] = order
        return self._orders[key]

    def select(self, query: Query) -> np.ndarray:
        """The row numbers that match ``query``'s filters, in its order (every page)."""
        mask = np.ones(len(self), dtype=bool)
        if query.bands:
            mask &= np.isin(self.band, query.bands)
        if query.continent is not None:
            mask &= self.continent == query.continent
        if query.country is not None:
            mask &= (self.country_code == query.country) | (self.country == query.country)
        if query.status == "failed":
            mask &= self.status != "ok"
        elif query.status == "format":
            mask &= self.format_bad
        elif query.status is not None:
            mask &= self.status == query.status
        if query.q and query.q.strip():
            needle = query.q.strip().lower()
            mask &= np.fromiter((needle in s for s in self._search), dtype=bool, count=len(self))
        order = self._order(query.sort)
        if query.descending:
            if query.sort == "distance":  # still missing distances last
                has = np.isfinite(self.distance[order])
                order = np.concatenate([order[has][::-1], order[~has]])
            else:
                order = order[::-1]
        return order[mask[order]]

    def row_brief(self, i: int) -> dict[str, Any]:
        """One line of the list."""
        d = self.distance[i]
        rec = self.records[i]
        return {
            "i": i,
            "id": self.ids[i],
            "true": ", ".join(x for x in (self.city[i], self.country[i]) if x),
            "continent": self.continent[i],
            "country_code": self.country_code[i],
            "answer": self.answer[i],
            "distance_km": None if not np.isfinite(d) else round(float(d), 1),
            "band": int(self.band[i]),
            "status": self.status[i],
            "format_ok": rec.get("format_ok"),
            "error": (str(rec.get("error") or ""))[:160],
        }

    def rows(self, query: Query, *, with_indices: bool = False) -> dict[str, Any]:
        """One page of the list: ``total`` matches, their ``rows`` from ``offset``, optionally all ``indices``."""
        sel = self.select(query)
        page = sel[query.offset : query.offset + query.limit]
        out: dict[str, Any] = {
            "total": int(sel.size),
            "offset": query.offset,
            "limit": query.limit,
            "rows": [self.row_brief(int(i)) for i in page],
        }
        if with_indices:
            out["indices"] = sel.tolist()
        return out

    def points(self) -> dict[str, Any]:
        """Every row for the map, as parallel arrays (row number = position)."""
        return {
            "n": len(self),
            "true_lat": _round(self.tlat, 4),
            "true_lon": _round(self.tlon, 4),
            "pred_lat": _round(self.plat, 4),
            "pred_lon": _round(self.plon, 4),
            "band": self.band.tolist(),
        }

    # ------------------------------------------------------------------ one row

    def row(self, i: int) -> dict[str, Any]:
        """Everything about row ``i``: the full answer, its parse, the error, the image's URL."""
        if not 0 <= i < len(self):
            raise IndexError(f"no row {i}: the run has {len(self)} rows (0..{len(self) - 1})")
        rec = self.records[i]
        parse_keys = (
            "pred_continent", "pred_country_code", "pred_country", "pred_admin1", "pred_city",
            "answer_lat", "answer_lon", "pred_lat", "pred_lon", "coord_source",
            "format_ok", "n_coordinates", "parse_errors",
        )  # fmt: skip
        true_keys = [k for k in rec if k.startswith("true_")]
        image, note = self.image(i)
        return {
            **self.row_brief(i),
            "truth": {k[5:]: rec.get(k) for k in true_keys},
            "completion": rec.get("completion"),
            "parse": {k: rec.get(k) for k in parse_keys if k in rec},
            "error_kind": rec.get("error_kind"),
            "full_error": rec.get("error"),
            "seconds": rec.get("seconds"),
            "samples": rec.get("samples"),
            "consensus": rec.get("consensus"),
            "image_url": f"/api/image/{i}" if image is not None else None,
            "image_note": note,
        }

    # ------------------------------------------------------------------ images

    def _load_dataset(self) -> Any:
        """The benchmark the run was made on, loaded once (None, with the reason kept, when it cannot be)."""
        with self._dataset_lock:
            if self._dataset is not None or self._dataset_error is not None:
                return self._dataset
            identity = self.run_info.get("identity") or {}
            config = self.run_info.get("config") or {}
            bench = identity.get("benchmark") or config.get("benchmark")
            data = identity.get("data") or config.get("data")
            if not bench or not data:
                self._dataset_error = "run.json does not say which benchmark the run was made on"
                return None
            from georeason.datasets.benchmarks import load_benchmark

            options = identity.get("benchmark_options") or config.get("benchmark_options") or {}
            try:
                with warnings.catch_warnings():  # missing images are reported per row instead
                    warnings.simplefilter("ignore")
                    ds = load_benchmark(str(bench), str(data), **dict(options))
            except Exception as e:  # any loader failure means: no images, the rest of the page works
                self._dataset_error = f"the benchmark's data ({bench} at {data}) cannot be read here: {e}"
                return None
            self._dataset = (ds, {rid: k for k, rid in enumerate(ds.ids)})
            return self._dataset

    def image(self, i: int) -> tuple[Path | bytes | None, str | None]:
        """Row ``i``'s image as the benchmark names it: a file on disk or bytes, with its media type
        checked; else ``(None, why)``."""
        loaded = self._load_dataset()
        if loaded is None:
            return None, self._dataset_error
        ds, by_id = loaded
        k = by_id.get(str(self.ids[i]))
        if k is None:
            return None, f"the benchmark has no image with id {self.ids[i]!r} any more"
        try:
            src = ds.image(k)
        except Exception as e:
            return None, f"the image cannot be read: {e}"
        if isinstance(src, bytes | bytearray):
            head = bytes(src[:16])
        else:
            p = Path(str(src))
            if not p.is_file():
                return None, f"image not found: {p}"
            try:
                with p.open("rb") as f:
                    head = f.read(16)
            except OSError as e:
                return None, f"the image cannot be read: {e}"
            src = p
        if image_media_type(head) is None:
            return None, "not an image a browser shows (JPEG, PNG, WebP, GIF, BMP)"
        return src, None


# ---------------------------------------------------------------------------- the app


def create_view_app(run: RunView | str | Path, **options: Any) -> Any:
    """The FastAPI app of ``georeason view`` over ``run`` (a :class:`RunView` or a run folder;
    ``options`` go to :class:`RunView`)."""
    from fastapi import FastAPI, HTTPException
    from fastapi import Query as Q
    from fastapi.middleware.gzip import GZipMiddleware
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from georeason.jsonsafe import dumps
    from georeason.serve.pages import STATIC_DIR, asset_version, assets_router

    view = run if isinstance(run, RunView) else RunView(run, **options)
    app = FastAPI(title="georeason view", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(GZipMiddleware, minimum_size=2048)  # the 12k-point arrays shrink ~4x
    app.state.view = view
    app.include_router(assets_router)  # /static/NAME and /map/outlines.json, as the locate page has them
    page_html = (STATIC_DIR / "view.html").read_text(encoding="utf-8").replace("{v}", asset_version())

    def js(data: Any) -> Response:
        return Response(dumps(data), media_type="application/json")  # NaN -> null

    encoded: dict[str, bytes] = {}

    def once(name: str, make: Callable[[], Any]) -> Response:
        # The run does not change while it is served: the summary and the 12k-point arrays
        # (a few hundred ms to encode) are encoded on first use only.
        if name not in encoded:
            encoded[name] = dumps(make()).encode()
        return Response(encoded[name], media_type="application/json")

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(page_html, headers={"Cache-Control": "no-cache"})

    @app.get("/api/summary")
    def summary() -> Response:
        return once("summary", view.summary)

    @app.get("/api/points")
    def points() -> Response:
        return once("points", view.points)

    @app.get("/api/rows")
    def rows(
        offset: int = 0,
        limit: int = 50,
        sort: str = "index",
        order: str = "asc",
        band: list[int] = Q(default=[]),  # noqa: B008  (FastAPI's way to read a repeated parameter)
        continent: str | None = None,
        country: str | None = None,
        status: str | None = None,
        q: str | None = None,
        indices: bool = False,
    ) -> Response:
        if order not in ("asc", "desc"):
            raise HTTPException(422, f"order must be asc or desc, got {order!r}")
        try:
            query = Query(
                bands=tuple(band),
                continent=continent,
                country=country,
                status=status or None,
                q=q,
                sort=sort,
                descending=order == "desc",
                offset=offset,
                limit=limit,
            )
        except ValueError as e:
            raise HTTPException(422, str(e)) from e
        return js(view.rows(query, with_indices=indices))

    @app.get("/api/rows/{i}")
    def one_row(i: int) -> Response:
        try:
            return js(view.row(i))
        except IndexError as e:
            raise HTTPException(404, str(e)) from e

    @app.get("/api/image/{i}")
    def image(i: int) -> Response:
        if not 0 <= i < len(view):
            raise HTTPException(404, f"no row {i}")
        src, why = view.image(i)
        if src is None:
            raise HTTPException(404, why or "no image")
        if isinstance(src, Path):
            with src.open("rb") as f:
                media = image_media_type(f.read(16))
            return FileResponse(src, media_type=media or "application/octet-stream")
        return Response(
            bytes(src), media_type=image_media_type(bytes(src[:16])) or "application/octet-stream"
        )

    @app.exception_handler(StarletteHTTPException)  # FastAPI's HTTPException and the router's 404/405
    async def _http(_request: Any, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    return app


def serve_view(
    run_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    open_browser: bool = True,
    log_level: str = "warning",
    announce: Any = print,
) -> None:
    """Read ``run_dir``, then serve its page until Ctrl-C; ``open_browser`` opens it once the
    server listens."""
    import uvicorn

    app = create_view_app(run_dir)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level))

    def when_up() -> None:
        import time
        import webbrowser

        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            announce(f"georeason view: {len(app.state.view)} rows of {app.state.view.dir} on {url}")
            if open_browser:
                webbrowser.open(url)

    threading.Thread(target=when_up, daemon=True).start()
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind: say so as one error of ours
        if server.started:
            raise
    if not server.started:
        raise OSError(f"could not listen on {host}:{port} (is the port taken? try another --port)")


__all__ = [
    "MAX_PAGE",
    "SORT_KEYS",
    "STATUS_FILTERS",
    "Query",
    "RunView",
    "create_view_app",
    "image_media_type",
    "serve_view",
]
