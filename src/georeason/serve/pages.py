"""The browser side of the server: the locate page at ``/``, its assets, the world map's outlines.

Everything a page needs comes from this server (no CDN, no tiles, no web fonts), because
``georeason serve`` runs on clusters and laptops without the internet:

- ``GET /static/NAME``: the files in ``serve/static/`` (JS, CSS). ``worldmap.js`` is the
  reusable map (its API is at the top of the file).
- ``GET /map/outlines.json``: the Natural Earth country outlines of
  :func:`georeason.eval.plots.world_outlines` (shapely-simplified to
  :data:`OUTLINE_TOLERANCE_DEG`), exterior rings as a GeoJSON ``MultiPolygon`` with
  coordinates rounded to 0.1 degree (~11 km: finer than the simplification), built once
  per process.
- ``GET /``: the locate page (``static/locate.html`` with the model's name and the protocols).

Every asset answers with an ``ETag`` (304 on ``If-None-Match``) and gzip when the browser
takes it; a URL carrying the current ``?v=`` (:func:`asset_version`, which the page's
links carry) is cached for a year, any other revalidates. :data:`assets_router` holds the
static files and the outlines without the locate page, for other apps (``georeason view``).
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from georeason.serve.state import ServeState, get_state

STATIC_DIR = Path(__file__).parent / "static"
#: simplification of the served outlines, degrees (coarser than the report's PNG: a page's weight)
OUTLINE_TOLERANCE_DEG = 0.15
_MEDIA = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

assets_router = APIRouter(include_in_schema=False)
router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Asset:
    """One response body, ready: plain and gzipped, with its ETag and media type."""

    body: bytes
    gzipped: bytes
    etag: str
    media_type: str

    @classmethod
    def of(cls, body: bytes, media_type: str) -> Asset:
        digest = hashlib.sha256(body).hexdigest()[:16]
        return cls(body, gzip.compress(body, 9, mtime=0), f'"{digest}"', media_type)

    def response(self, request: Request) -> Response:
        """304 when the browser has it; gzip when it takes it; long caching on a versioned URL."""
        versioned = request.query_params.get("v") == asset_version()
        headers = {
            "ETag": self.etag,
            "Cache-Control": "public, max-age=31536000, immutable" if versioned else "no-cache",
            "Vary": "Accept-Encoding",
        }
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(self.gzipped, media_type=self.media_type, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


@lru_cache(maxsize=64)
def static_asset(name: str) -> Asset | None:
    """A file of ``serve/static/`` by its bare name (JS and CSS only), or None."""
    path = STATIC_DIR / name
    if "/" in name or "\\" in name or path.suffix not in _MEDIA or not path.is_file():
        return None
    return Asset.of(path.read_bytes(), _MEDIA[path.suffix])


@lru_cache(maxsize=1)
def asset_version() -> str:
    """A hash of the static files and the outline settings: changes whenever an asset does."""
    h = hashlib.sha256(str(OUTLINE_TOLERANCE_DEG).encode())
    for path in sorted(STATIC_DIR.iterdir()):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:12]


def outlines_geojson(tolerance_deg: float = OUTLINE_TOLERANCE_DEG) -> dict[str, object]:
    """The country outlines as a GeoJSON MultiPolygon (lon, lat), rounded to 0.1 degree."""
    from georeason.eval.plots import world_outlines

    polygons = []
    for ring in world_outlines(tolerance_deg):
        coords = [[round(float(lon), 1), round(float(lat), 1)] for lon, lat in ring]
        # rounding can merge neighbours: drop repeats, keep rings that still enclose something
        kept = [c for i, c in enumerate(coords) if i == 0 or c != coords[i - 1]]
        if len(kept) >= 4:
            polygons.append([kept])
    return {"type": "MultiPolygon", "coordinates": polygons}


@lru_cache(maxsize=1)
def _outlines_asset() -> Asset:
    body = json.dumps(outlines_geojson(), separators=(",", ":")).encode()
    return Asset.of(body, "application/geo+json")


@assets_router.get("/static/{name}")
async def static_file(name: str, request: Request) -> Response:
    asset = static_asset(name)
    if asset is None:
        raise HTTPException(404, f"no static file {name!r}")
    return asset.response(request)


@assets_router.get("/map/outlines.json")
def outlines(request: Request) -> Response:
    # A plain def: the first call reads and simplifies the Natural Earth shapes (a thread, not
    # the event loop); later calls are the cached bytes.
    return _outlines_asset().response(request)


@lru_cache(maxsize=8)
def _page(model: str, protocols: tuple[str, ...], default: str) -> str:
    options = "".join(
        f'<option value="{html.escape(p)}"{" selected" if p == default else ""}>{html.escape(p)}</option>'
        for p in protocols
    )
    text = (STATIC_DIR / "locate.html").read_text(encoding="utf-8")
    return (
        text.replace("{model}", html.escape(model))
        .replace("{options}", options)
        .replace("{v}", asset_version())
    )


@router.get("/", response_class=HTMLResponse)
async def index(state: Annotated[ServeState, Depends(get_state)]) -> str:
    from georeason.protocols import PROTOCOLS

    return _page(state.name, tuple(PROTOCOLS), state.default_protocol)


router.include_router(assets_router)
