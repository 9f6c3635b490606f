"""Points on no polygon (sea, off a simplified coastline): the precomputed
nearest country per cell and the per-cell candidates must answer exactly what
the full nearest-polygon search (``CountryIndex._nearest``) answers."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from georeason import geo
from georeason.geo.countries import CELL_DEG, MIXED, N_COLS, SEA, CountryIndex, country_index


@pytest.fixture(scope="module")
def index() -> CountryIndex:
    return country_index()


def _hard_points(index: CountryIndex, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points plus the hard places: near coastlines, on the antimeridian,
    near the poles, and exactly on grid lines."""
    rng = np.random.default_rng(12)
    k = n // 5
    # Uniform over the globe.
    lat = [rng.uniform(-90, 90, k)]
    lon = [rng.uniform(-180, 180, k)]
    # Near coastlines: within half a degree of random coastal pieces.
    centres = shapely.centroid(index.pieces[rng.integers(0, len(index.pieces), k)])
    lat.append(np.clip(shapely.get_y(centres) + rng.uniform(-0.5, 0.5, k), -90, 90))
    lon.append(np.clip(shapely.get_x(centres) + rng.uniform(-0.5, 0.5, k), -180, 180))
    # Both sides of the antimeridian, the edges included.
    side = rng.choice([-1.0, 1.0], k)
    edge = side * rng.uniform(179.0, 180.0, k)
    edge[:20] = side[:20] * 180.0
    lat.append(rng.uniform(-90, 90, k))
    lon.append(edge)
    # Near both poles, the poles included.
    polar = rng.choice([-1.0, 1.0], k) * rng.uniform(80.0, 90.0, k)
    polar[:20] = np.sign(polar[:20]) * 90.0
    lat.append(polar)
    lon.append(rng.uniform(-180, 180, k))
    # On cell edges and corners (where the cell a point maps to is decided by rounding).
    lat.append(np.clip(rng.integers(-360, 361, k) * CELL_DEG, -90, 90))
    lon.append(
        np.where(rng.random(k) < 0.5, rng.integers(-720, 721, k) * CELL_DEG, rng.uniform(-180, 180, k))
    )
    return np.concatenate(lat), np.concatenate(lon)


def test_fast_sea_lookup_matches_exact_nearest_search(index: CountryIndex) -> None:
    lat, lon = _hard_points(index)
    codes, on_land = index.lookup(lat, lon)
    off = np.flatnonzero(~on_land)
    assert len(off) > 10_000
    exact = index.codes[index._nearest(lat[off], lon[off])]
    bad = np.flatnonzero(codes[off] != exact)
    assert not len(bad), [(lat[off][i], lon[off][i], codes[off][i], exact[i]) for i in bad[:10]]

    # Both fast paths are exercised: settled cells and cells with candidates.
    row = np.clip(((lat[off] + 90.0) / CELL_DEG).astype(np.int64), 0, index.data.grid.shape[0] - 1)
    col = np.clip(((lon[off] + 180.0) / CELL_DEG).astype(np.int64), 0, N_COLS - 1)
    settled = index.data.off_code[row, col] != SEA
    assert settled.mean() > 0.5
    assert np.isin(row[~settled] * N_COLS + col[~settled], index.data.near_cells).sum() > 100


def test_settled_cells_cover_open_ocean(index: CountryIndex) -> None:
    d = index.data
    sea = d.grid == SEA
    assert (d.off_code[sea] != SEA).mean() > 0.8  # most sea cells answer without a search
    # Every unsettled sea or mixed cell has candidates (or falls back to the full search).
    open_ = np.flatnonzero(((d.grid == SEA) | (d.grid == MIXED)).ravel() & (d.off_code.ravel() == SEA))
    assert np.isin(open_, d.near_cells).mean() > 0.99
    assert np.all(np.diff(d.near_cells) > 0) and d.near_start[-1] == len(d.near_piece)


def test_sea_points_get_the_nearest_place_of_their_own_country(index: CountryIndex) -> None:
    from georeason.geo.reverse import _nearest_places
    from georeason.geo.sphere import unit_vectors

    rng = np.random.default_rng(3)
    lat, lon = rng.uniform(-50, 65, 5_000), rng.uniform(-170, 175, 5_000)
    codes, _ = index.lookup(lat, lon)
    rows = _nearest_places(lat, lon, codes)
    g = geo.gazetteer()
    assert (rows >= 0).mean() > 0.95
    has = rows >= 0
    assert np.all(g.country_code[rows[has]] == codes[has])
    # Brute force on a sample: the largest dot product among the country's places.
    xyz = unit_vectors(lat, lon)
    places = unit_vectors(g.lat, g.lon)
    for i in rng.choice(np.flatnonzero(has), 200, replace=False):
        own = np.flatnonzero(g.country_code == codes[i])
        assert places[rows[i]] @ xyz[i] >= (places[own] @ xyz[i]).max() - 1e-12
