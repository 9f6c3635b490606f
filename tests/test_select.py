"""`georeason data select`: Geo-R hard set against brute force, caps, balanced fill, difficulty, report."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from georeason.geo import EARTH_RADIUS_KM, haversine_km
from georeason.geo.sphere import chord_radius, geocell_grid, geocell_ids, near_any
from georeason.pipelines.select import (
    REASONS,
    SelectConfig,
    SelectError,
    balanced_sample,
    cap_groups,
    convert_trl_completions,
    distribution,
    entropy_bits,
    gini,
    load_correctness,
    load_rollouts,
    load_table,
    pick_hotspots,
    report_paths,
    run_select,
    select_table,
    water_fill,
)


def _sphere_points(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform on the sphere (dense near the poles and the antimeridian too)."""
    z = rng.uniform(-1, 1, n)
    return np.degrees(np.arcsin(z)), rng.uniform(-180, 180, n)


def _destination(lat: float, lon: float, d_km: float, bearing_deg: float) -> tuple[float, float]:
    d = d_km / EARTH_RADIUS_KM
    p1, l1, b = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180


def _brute(lat: np.ndarray, lon: np.ndarray, hlat: np.ndarray, hlon: np.ndarray) -> np.ndarray:
    """All-pairs haversine: the nearest hotspot's distance for every point."""
    return haversine_km(lat[:, None], lon[:, None], hlat[None, :], hlon[None, :]).min(axis=1)


@pytest.mark.parametrize("radius", [0.0, 1.0, 50.0, 200.0, 2500.0, 15_000.0, 30_000.0])
def test_near_any_equals_brute_force(radius: float) -> None:
    rng = np.random.default_rng(int(radius) + 1)
    lat, lon = _sphere_points(3000, rng)
    hlat, hlon = _sphere_points(80, rng)
    # points right next to hotspots, at the poles and across the antimeridian
    lat = np.concatenate([lat, hlat + 0.001, [90.0, -90.0, 0.0, 0.0]])
    lon = np.concatenate([lon, hlon, [0.0, 0.0, 179.999, -179.999]])
    hlat = np.concatenate([hlat, [89.9, 0.0]])
    hlon = np.concatenate([hlon, [45.0, 180.0]])
    mask, nearest = near_any(lat, lon, hlat, hlon, radius)
    best = _brute(lat, lon, hlat, hlon)
    np.testing.assert_array_equal(mask, best <= radius)
    np.testing.assert_allclose(nearest[mask], best[mask], rtol=0, atol=1e-6)
    assert np.isnan(nearest[~mask]).all()
    if 0 < radius <= 2500:
        assert 0 < mask.sum() < mask.size  # the case is not trivial


def test_near_any_boundary_is_inclusive_and_exact() -> None:
    """Points 1 mm inside / outside the radius (in every direction, near a pole too)."""
    r = 200.0
    for hlat, hlon in ((48.85, 2.35), (89.0, 10.0), (-0.5, 179.9)):
        inside = [_destination(hlat, hlon, r - 1e-6, b) for b in range(0, 360, 30)]
        outside = [_destination(hlat, hlon, r + 1e-6, b) for b in range(0, 360, 30)]
        pts = np.array(inside + outside)
        mask, _ = near_any(pts[:, 0], pts[:, 1], [hlat], [hlon], r)
        brute = haversine_km(pts[:, 0], pts[:, 1], hlat, hlon) <= r
        np.testing.assert_array_equal(mask, brute)
        assert mask[: len(inside)].all() and not mask[len(inside) :].any()


def test_near_any_ignores_invalid_points() -> None:
    mask, _ = near_any([np.nan, 10.0], [0.0, np.nan], [10.0], [0.0], 1000)
    assert not mask.any()
    mask, _ = near_any([10.0], [0.0], [], [], 1000)
    assert not mask.any()


def test_chord_radius() -> None:
    assert chord_radius(0.0) == 0.0
    assert chord_radius(math.pi * EARTH_RADIUS_KM) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        chord_radius(-1.0)


def test_geocells_have_equal_area() -> None:
    """Uniform points on the sphere fill the cells evenly (every cell has the same area)."""
    n_lon, n_z = geocell_grid(2000.0)
    rng = np.random.default_rng(0)
    lat, lon = _sphere_points(400_000, rng)
    cells = geocell_ids(lat, lon, 2000.0)
    counts = np.bincount(cells, minlength=n_lon * n_z)
    assert counts.size == n_lon * n_z and (counts > 0).all()
    expected = 400_000 / counts.size
    assert np.abs(counts - expected).max() < 6 * math.sqrt(expected)  # Poisson noise only
    assert geocell_ids([np.nan, 91.0], [0.0, 0.0]).tolist() == [-1, -1]


def test_distribution_statistics() -> None:
    assert entropy_bits([1, 1, 1, 1]) == pytest.approx(2.0)
    assert gini([5, 5, 5]) == 0.0
    assert gini([0, 0, 0, 12]) == pytest.approx(0.75)  # (n-1)/n with n = 4
    d = distribution(["FR", "FR", "JP", ""], groups=["FR", "JP", "US", "BR"])
    assert d["n_groups"] == 2 and d["n_groups_universe"] == 4
    assert d["entropy_bits"] == pytest.approx(-(2 / 3) * math.log2(2 / 3) - (1 / 3) * math.log2(1 / 3))
    assert d["normalized_entropy"] == pytest.approx(d["entropy_bits"] / 2)
    assert d["gini"] == pytest.approx(gini([2, 1, 0, 0]))


def test_water_fill_properties() -> None:
    rng = np.random.default_rng(1)
    for _ in range(300):
        sizes = rng.integers(0, 40, rng.integers(1, 12))
        target = int(rng.integers(0, sizes.sum() + 5))
        q = water_fill(sizes, target, np.random.default_rng(0))
        assert q.sum() == min(target, sizes.sum())
        assert (q <= sizes).all() and (q >= 0).all()
        open_ = q < sizes  # groups that could have given more
        if open_.any():
            # every group that gave less than all gave the maximum quota (or one less): max-entropy fill
            assert q[open_].max() - q[open_].min() <= 1
            assert (q[~open_] <= q[open_].max()).all()


def test_balanced_sample_and_caps() -> None:
    rng = np.random.default_rng(0)
    country = np.array(["US"] * 600 + ["FR"] * 300 + ["IS"] * 5 + ["NZ"] * 20)
    cell = rng.integers(0, 10, country.size)
    idx = balanced_sample([country, cell], 100, np.random.default_rng(3))
    assert idx.size == 100 and np.unique(idx).size == 100
    got = pd.Series(country[idx]).value_counts().to_dict()
    assert got["IS"] == 5  # the small countries are taken whole
    assert got["NZ"] == 20
    assert abs(got["US"] - got["FR"]) <= 1  # the rest split evenly
    np.testing.assert_array_equal(idx, balanced_sample([country, cell], 100, np.random.default_rng(3)))
    over = cap_groups(country, 50, np.random.default_rng(0), np.ones(country.size, bool))
    kept = pd.Series(country[~over]).value_counts().to_dict()
    assert kept == {"US": 50, "FR": 50, "NZ": 20, "IS": 5}


# ---------------------------------------------------------------------------
# eval output -> hotspots
# ---------------------------------------------------------------------------


def _predictions(path: Path, rows: list[tuple[str, float, float, float | None]]) -> Path:
    """Lines as `georeason eval` writes them (georeason.eval.runner.make_record)."""
    from georeason.eval.runner import make_record
    from georeason.protocols import get_protocol

    proto = get_protocol("plain")
    with path.open("w") as f:
        for rid, lat, lon, d in rows:
            meta = {"id": rid, "lat": lat, "lon": lon}
            if d is None:
                rec = make_record(meta, completion=None, error="HTTP 500", error_kind="backend", seconds=None,
                                  protocol=proto, geocode=False)  # fmt: skip
            else:
                plat, plon = _destination(lat, lon, d, 90.0)
                rec = make_record(meta, completion=f"({plat:.6f}, {plon:.6f})", error=None, error_kind=None,
                                  seconds=0.1, protocol=proto, geocode=False)  # fmt: skip
            f.write(json.dumps(rec) + "\n")
    return path


def test_correctness_and_hotspots(tmp_path: Path) -> None:
    rows = [(f"i{k}", 10.0 + k, 20.0, d) for k, d in enumerate([1.0, 24.0, 26.0, None, 5.0, 500.0])]
    p = _predictions(tmp_path / "predictions.jsonl", rows)
    with p.open("a") as f:
        f.write('{"id": "torn", "true_la')  # a killed eval's last line
    df = load_correctness(tmp_path, threshold_km=25)  # the folder works too
    assert df["id"].tolist() == [r[0] for r in rows]
    assert df["correct"].tolist() == [True, True, False, False, True, False]
    assert df["distance_km"].iloc[1] == pytest.approx(24.0, abs=1e-3)
    assert load_correctness(p, threshold_km=1.5)["correct"].sum() == 1
    hs = pick_hotspots(df, 2, seed=0)
    assert len(hs) == 2 and set(hs["id"]) <= {"i0", "i1", "i4"}
    # the eval file's order does not matter, the seed does
    shuffled = df.sample(frac=1.0, random_state=1)
    assert pick_hotspots(shuffled, 2, seed=0)["id"].tolist() == hs["id"].tolist()
    assert len(pick_hotspots(df, 100)) == 3
    with pytest.raises(SelectError, match="georeason eval"):
        load_correctness(tmp_path / "nope.jsonl")


# ---------------------------------------------------------------------------
# rollout logs (difficulty)
# ---------------------------------------------------------------------------


def test_rollout_log_flat_groups(tmp_path: Path) -> None:
    p = tmp_path / "rollouts.jsonl"
    lines = [
        {"id": "a", "rewards": [1, 1, 1, 1], "step": 1},
        {"id": "a", "rewards": [0, 1, 0, 0], "step": 2},  # latest: spread
        {"id": "b", "rewards": [0, 1, 0, 0], "step": 1},
        {"id": "b", "rewards": [0.3, 0.3, 0.3, 0.3], "step": 5},  # latest: flat
        {"id": "c", "rewards": [0.5, 0.5000001, None, 0.5]},  # flat within eps, a NaN left out
        {"id": "d", "rewards": [None, 0.9, None, None]},  # one finite reward: no spread
        {"id": "e", "rewards": [0.0, 0.2]},
    ]
    p.write_text("\n".join(json.dumps(x) for x in lines) + "\n" + '{"id": "f", "rew')
    g = load_rollouts(p)
    assert g.bad_lines == [len(lines) + 1]
    assert g.flat(1e-6, "last") == {"a": False, "b": True, "c": True, "d": True, "e": False}
    assert g.flat(1e-6, "all") == {"a": False, "b": False, "c": True, "d": True, "e": False}
    assert g.flat(1e-9, "last")["c"] is False
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "rewards": "x"}\n{"id": "b", "rewards": [1]}\n')
    with pytest.raises(SelectError, match="line 1"):
        load_rollouts(bad)


def test_convert_trl_completion_logs(tmp_path: Path) -> None:
    """Tables in the layout TRL's GRPOTrainer writes with log_completions=True."""
    comp = tmp_path / "completions"
    comp.mkdir()
    # step 1: ids x and y, 3 generations each; step 2: x again
    pd.DataFrame(
        {
            "step": [1] * 6,
            "prompt": ["p"] * 6,
            "completion": ["c"] * 6,
            "geor": [0.5, 0.5, 0.5, 0.0, 1.0, float("nan")],
            "format": [1.0, 1.0, 1.0, 1.0, 1.0, float("nan")],
            "id": ["x", "x", "x", "y", "y", "y"],
            "advantage": [0.0] * 6,
        }
    ).to_parquet(comp / "completions_00001.parquet")
    pd.DataFrame(
        {"step": [2] * 3, "prompt": ["p"] * 3, "completion": ["c"] * 3, "geor": [0.1, 0.9, 0.5],
         "format": [1.0, 1.0, 0.0], "id": ["x"] * 3, "advantage": [0.0] * 3}
    ).to_parquet(comp / "completions_00002.parquet")  # fmt: skip
    out = tmp_path / "rollouts.jsonl"
    assert convert_trl_completions(comp, out, reward_weights=[1.0, 0.5]) == 3
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert got == [
        {"id": "x", "step": 1, "rewards": [1.0, 1.0, 1.0]},
        {"id": "y", "step": 1, "rewards": [0.5, 1.5, None]},
        {"id": "x", "step": 2, "rewards": [0.6, 1.4, 0.5]},
    ]
    assert load_rollouts(out).flat() == {"x": False, "y": False}
    # the same through the CLI
    from georeason.cli import app
    from georeason.commands import data_scale  # noqa: F401  (registers `data rollouts`)

    cli_out = tmp_path / "cli.jsonl"
    args = ["data", "rollouts", str(comp), "--out", str(cli_out), "--reward", "geor", "--reward", "format",
            "--weight", "1", "--weight", "0.5"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "3 reward groups" in res.output and cli_out.read_text() == out.read_text()
    assert load_rollouts(out).flat(mode="all") == {"x": False, "y": False}
    pd.DataFrame(
        {"step": [1], "prompt": ["p"], "completion": ["c"], "geor": [1.0], "advantage": [0.0]}
    ).to_parquet(tmp_path / "noid.parquet")
    with pytest.raises(SelectError, match="with_id_logging"):
        convert_trl_completions(tmp_path / "noid.parquet", tmp_path / "o.jsonl")


def test_with_id_logging_keeps_the_reward() -> None:
    from georeason.rewards import REWARDS
    from georeason.train.rewards import with_id_logging

    _, fn = next(iter(REWARDS.items()))
    wrapped = with_id_logging(fn)
    assert wrapped.__name__ == getattr(fn, "__name__", wrapped.__name__)
    logged: dict[str, Any] = {}
    comps = ["<answer>(48.85, 2.35)</answer>"] * 2
    cols = {"lat": [48.85, 10.0], "lon": [2.35, 10.0], "id": [1, 2]}
    assert wrapped(comps, log_extra=lambda c, v: logged.update({c: v}), **cols) == fn(comps, **cols)
    assert logged["id"] == ["1", "2"]
    # the reward's own columns pass through beside the ids
    assert set(logged) - {"id"} <= {f"{fn.__name__}/{k}" for k in ("lat", "lon", "error_km")}


# ---------------------------------------------------------------------------
# the whole selection
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A labelled MP-16-like table: photos around 60 real cities (some countries much bigger)."""
    from georeason.geo import gazetteer
    from georeason.pipelines.label import label_table

    d = tmp_path_factory.mktemp("select")
    g = gazetteer()
    rng = np.random.default_rng(0)
    big = np.argsort(-g.population)[:400]
    cities = rng.choice(big, 60, replace=False)
    n_per = rng.integers(5, 80, cities.size)
    lat, lon, ids = [], [], []
    for c, k in zip(cities, n_per, strict=True):
        for j in range(k):
            la, lo = _destination(
                float(g.lat[c]), float(g.lon[c]), float(rng.exponential(15)), float(rng.uniform(0, 360))
            )
            lat.append(la)
            lon.append(lo)
            ids.append(f"{c}-{j}")
    raw = d / "mp16.parquet"
    pq.write_table(pa.table({"IMG_ID": ids, "LAT": lat, "LON": lon}), raw)
    out = d / "labelled.parquet"
    label_table(raw, out, progress=False)
    return out, pq.read_table(out).to_pandas()


def test_select_hard_set_matches_brute_force(labelled: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    path, df = labelled
    rng = np.random.default_rng(5)
    # a base model right on some samples (as an eval of part of the table would say)
    pick = rng.choice(len(df), 120, replace=False)
    rows = [
        (df["IMG_ID"][i], df["LAT"][i], df["LON"][i], float(rng.choice([2.0, 10.0, 300.0]))) for i in pick
    ]
    preds = _predictions(tmp_path / "predictions.jsonl", rows)
    cfg = SelectConfig(correctness=str(preds), n_hotspots=15, radius_km=100.0, seed=7)
    table = load_table(path)
    res = select_table(table, cfg)
    hot = res.hotspots
    assert hot is not None and len(hot) == 15 and hot["correct"].all()
    near = (
        _brute(df["LAT"].to_numpy(), df["LON"].to_numpy(), hot["lat"].to_numpy(), hot["lon"].to_numpy())
        <= 100.0
    )
    assert 0 < near.sum() < len(df)
    np.testing.assert_array_equal(res.reason == REASONS[2], near)
    np.testing.assert_array_equal(np.sort(res.rows), np.flatnonzero(~near))
    assert res.report["stages"]["hard set"]["dropped (near a hotspot)"] == int(near.sum())
    # deterministic by seed; another seed draws other hotspots
    assert select_table(table, cfg).rows.tolist() == res.rows.tolist()
    other = select_table(table, SelectConfig(correctness=str(preds), n_hotspots=15, radius_km=100.0, seed=8))
    assert set(other.hotspots["id"]) != set(hot["id"])  # type: ignore[index]


def test_select_caps_fill_and_report(labelled: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    path, df = labelled
    out = tmp_path / "sel.parquet"
    cfg = SelectConfig(max_per_country=120, max_per_cell=40, target=300, seed=1)
    res = run_select(path, out, cfg)
    sel = pq.read_table(out).to_pandas()
    assert len(sel) == 300 and list(sel.columns) == list(df.columns)
    assert sel["IMG_ID"].tolist() == df["IMG_ID"].iloc[res.rows].tolist()
    per_country = sel["country_code"].value_counts()
    assert per_country.max() <= 120
    cells = geocell_ids(sel["LAT"], sel["LON"], cfg.cell_km)
    assert np.bincount(cells[cells >= 0]).max() <= 40
    # under-represented countries are kept whole, when the target allows
    sizes = df["country_code"].value_counts()
    small = sizes[sizes <= 5].index
    for c in small:
        assert per_country.get(c, 0) == sizes[c]
    rep = json.loads(report_paths(out)["json"].read_text())
    assert rep["n_before"] == len(df) and rep["n_after"] == 300
    assert sum(v["after"] for v in rep["countries"].values()) == 300
    assert sum(v["before"] for v in rep["continents"].values()) == len(df)
    dist = rep["distribution"]["countries"]
    assert dist["after"]["entropy_bits"] > dist["before"]["entropy_bits"]  # spread out
    assert dist["after"]["gini"] < dist["before"]["gini"]
    assert dist["before"]["gini"] == pytest.approx(gini(sizes.to_numpy()))
    assert dist["after"]["entropy_bits"] == pytest.approx(entropy_bits(per_country.to_numpy()))
    md = report_paths(out)["md"].read_text()
    assert "| countries |" in md and "## Continents" in md and "map.png" in md
    assert report_paths(out)["map"].stat().st_size > 10_000
    stages = rep["stages"]
    assert (
        stages["input rows"]
        - stages["over the country cap"]
        - stages["over the cell cap"]
        - stages["not drawn (target size)"]
        == 300
    )


def test_select_difficulty_and_csv(labelled: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    _, df = labelled
    csv_in = tmp_path / "in.csv"
    df.head(50).to_csv(csv_in, index=False)
    with csv_in.open("a") as f:
        f.write("broken,line\n")  # wrong number of fields: left out and counted
    ids = df["IMG_ID"].head(50).tolist()
    log = tmp_path / "rollouts.jsonl"
    flat = set(ids[:10])
    log.write_text(
        "\n".join(
            json.dumps({"id": i, "rewards": [1.0] * 4 if i in flat else [0.0, 1.0, 0.0, 1.0]})
            for i in ids[:30]
        )
        + "\n"
    )
    out = tmp_path / "sel.csv"
    res = run_select(csv_in, out, SelectConfig(rollouts=str(log)), plot=False)
    sel = pd.read_csv(out, dtype=str)
    assert sel["IMG_ID"].tolist() == [i for i in ids if i not in flat]
    st = res.report["stages"]["difficulty"]
    assert st["dropped (flat groups)"] == 10 and st["rows not in log (kept)"] == 20
    assert res.report["stages"]["malformed CSV lines (left out)"] == 1
    with pytest.raises(SelectError, match="input's format"):
        run_select(csv_in, tmp_path / "sel.parquet", SelectConfig(), plot=False)


@pytest.mark.requires("datasets")
def test_select_datasets_folder_and_cli(tmp_path: Path) -> None:
    """A `datasets` folder (the synthetic world) in, a `datasets` folder out, through the CLI;
    place labels come from the table (no label columns needed: reverse-geocoded)."""
    import datasets

    from georeason.cli import app
    from georeason.commands import data_scale  # noqa: F401  (registers `data select`)
    from georeason.datasets.synthetic import generate_world

    generate_world(40, 4, image_size=28, seed=2, out_dir=tmp_path / "world")
    out = tmp_path / "sel"
    res = CliRunner().invoke(
        app, ["data", "select", str(tmp_path / "world"), "--out", str(out), "--target", "20", "--no-plot"]
    )
    assert res.exit_code == 0, res.output
    assert "selected 20 of 40 rows" in res.output and "entropy" in res.output
    dd = datasets.load_from_disk(str(out))
    assert list(dd) == ["train"] and len(dd["train"]) == 20
    src = datasets.load_from_disk(str(tmp_path / "world"))["train"]
    assert set(dd["train"]["id"]) <= set(src["id"])
    assert dd["train"].features["image"] == src.features["image"]  # images kept as they were

    # a folder whose images are paths relative to it: the selection elsewhere gets absolute paths
    rel = tmp_path / "rel"
    paths_ds = src.select(range(6)).remove_columns("image")
    paths_ds = paths_ds.add_column("image", [f"imgs/{i}.png" for i in paths_ds["id"]])
    datasets.DatasetDict({"train": paths_ds}).save_to_disk(str(rel))
    (rel / "imgs").mkdir()
    for r in src.select(range(6)).cast_column("image", datasets.Image(decode=False)):
        (rel / "imgs" / f"{r['id']}.png").write_bytes(r["image"]["bytes"])
    res = CliRunner().invoke(app, ["data", "select", str(rel), "--out", str(tmp_path / "sel2"), "--no-plot"])
    assert res.exit_code == 0, res.output
    from georeason.train.data import load_geo_dataset

    loaded, skipped = load_geo_dataset(tmp_path / "sel2")
    assert len(loaded) == 6 and len(skipped) == 0

    res = CliRunner().invoke(
        app, ["data", "select", str(tmp_path / "world"), "--out", str(out), "--balance-by", "planet"]
    )
    assert res.exit_code == 2 and "balance_by" in res.output
