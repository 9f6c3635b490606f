"""The synthetic world: determinism, split by place, schema, clue encoding, labels, ceilings."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("datasets")
pytest.importorskip("PIL")

from georeason.datasets import synthetic as syn
from georeason.types import GeoSample

N_TRAIN, N_TEST, SIZE = 120, 60, 56


@pytest.fixture(scope="module")
def data() -> syn.SyntheticData:
    return syn.generate_world(N_TRAIN, N_TEST, seed=3, image_size=SIZE)


def _digest(data: syn.SyntheticData) -> str:
    """sha256 over every split's Arrow table (PNG bytes included)."""
    h = hashlib.sha256()
    for split in ("train", "test"):
        t = data.datasets[split].data.table
        for col in t.column_names:
            h.update(col.encode())
            for v in t.column(col).to_pylist():
                h.update(repr(v).encode())
    return h.hexdigest()


# --- determinism ----------------------------------------------------------------------


def test_same_seed_gives_identical_rows_and_png_bytes(data: syn.SyntheticData) -> None:
    again = syn.generate_world(N_TRAIN, N_TEST, seed=3, image_size=SIZE)
    for split in ("train", "test"):
        assert again.datasets[split].data.table.equals(data.datasets[split].data.table)
    assert again.clues == data.clues


def test_same_seed_identical_in_a_fresh_process(data: syn.SyntheticData) -> None:
    """Catches anything seeded by Python's per-process salted hash() or set order."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_synthetic import _digest
        from georeason.datasets.synthetic import generate_world
        print(_digest(generate_world({N_TRAIN}, {N_TEST}, seed=3, image_size={SIZE})))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert out.stdout.strip().splitlines()[-1] == _digest(data)


def test_different_seed_differs_but_keeps_the_codebook(data: syn.SyntheticData) -> None:
    other = syn.generate_world(N_TRAIN, N_TEST, seed=4, image_size=SIZE)
    a = list(data.datasets["train"].select(range(10))["image"])
    b = list(other.datasets["train"].select(range(10))["image"])
    assert any(np.asarray(x).tobytes() != np.asarray(y).tobytes() for x, y in zip(a, b, strict=True))
    # the split of cities is drawn from the seed ...
    split = {(p.country_code, p.city): p.split for p in data.world.places}
    split2 = {(p.country_code, p.city): p.split for p in other.world.places}
    assert split.keys() == split2.keys() and split != split2
    # ... but the world's rules (which banner, sign, landmark belongs to which place) are not
    code = {(p.country_code, p.city): (p.banner, p.sign, p.glyph) for p in data.world.places}
    code2 = {(p.country_code, p.city): (p.banner, p.sign, p.glyph) for p in other.world.places}
    assert code == code2


# --- split ----------------------------------------------------------------------------


def test_split_is_by_place_with_held_out_cities_inside_seen_regions(data: syn.SyntheticData) -> None:
    train, test = data.datasets["train"], data.datasets["test"]
    cities = lambda ds: set(zip(list(ds["country_code"]), list(ds["admin1"]), list(ds["city"]), strict=True))  # noqa: E731
    regions = lambda ds: set(zip(list(ds["country_code"]), list(ds["admin1"]), strict=True))  # noqa: E731
    assert not cities(train) & cities(test)
    assert regions(test) <= regions(train)
    world = data.world
    assert {(p.country_code, p.admin1, p.city) for p in world.split_places("test")} >= cities(test)
    # every region has training and held-out cities
    per_region = Counter((p.country_code, p.admin1, p.split) for p in world.places)
    for cc, a1 in {(p.country_code, p.admin1) for p in world.places}:
        assert per_region[(cc, a1, "train")] >= 1 and per_region[(cc, a1, "test")] >= 1
    # images are spread evenly over the cities of a split
    counts = Counter(zip(list(train["country_code"]), list(train["city"]), strict=True)).values()
    assert max(counts) - min(counts) <= 1


def test_world_covers_inhabited_continents_and_keeps_cities_apart(data: syn.SyntheticData) -> None:
    from georeason.geo import haversine_km

    world = data.world
    assert len(world.places) == 192 and len(world.countries) == 24
    assert {p.continent for p in world.places} == {"AF", "AS", "EU", "NA", "SA", "OC"}
    lat = np.array([p.lat for p in world.places])
    lon = np.array([p.lon for p in world.places])
    d = haversine_km(lat[:, None], lon[:, None], lat[None], lon[None])
    np.fill_diagonal(d, np.inf)
    assert d.min() >= 50.0  # a 25 km hit can only mean one city


def test_codebook_follows_the_hierarchy(data: syn.SyntheticData) -> None:
    places = data.world.places
    banners = {p.country_code: p.banner for p in places}
    assert len(set(banners.values())) == len(banners)  # unique in the world
    for cc in banners:
        signs = {p.admin1: p.sign for p in places if p.country_code == cc}
        assert len(set(signs.values())) == len(signs)  # unique within the country
    for key in {(p.country_code, p.admin1) for p in places}:
        glyphs = [p.glyph for p in places if (p.country_code, p.admin1) == key]
        assert len(set(glyphs)) == len(glyphs)  # unique within the region
    # signs and glyphs are reused across countries/regions: reading them needs the coarser levels
    assert len({p.sign for p in places}) < len({(p.country_code, p.admin1) for p in places})
    assert len({p.glyph for p in places}) < len(places)


# --- schema ---------------------------------------------------------------------------


def test_columns_and_types_match_geosample(data: syn.SyntheticData) -> None:
    from PIL import Image

    names = [f.name for f in dataclasses.fields(GeoSample)]
    for split in ("train", "test"):
        ds = data.datasets[split]
        assert ds.column_names == names
        assert type(ds.features["image"]).__name__ == "Image"
        for row in ds.select(range(8)):
            s = GeoSample(**row)
            assert isinstance(s.image, Image.Image) and s.image.mode == "RGB" and s.image.size == (SIZE, SIZE)
            assert isinstance(s.lat, float) and isinstance(s.lon, float)
            assert isinstance(s.locatable, bool) and isinstance(s.reasoning, str) and s.reasoning
            assert all(isinstance(e, str) for e in s.entities)
            assert s.continent in {"AF", "AS", "EU", "NA", "SA", "OC"} and len(s.country_code or "") == 2
            assert s.id.startswith(f"synth3-{split}-")
    assert (
        len(set(list(data.datasets["train"]["id"])) | set(list(data.datasets["test"]["id"])))
        == N_TRAIN + N_TEST
    )


@pytest.mark.parametrize("size", [28, 112])
def test_images_are_rgb_of_the_requested_size(size: int) -> None:
    d = syn.generate_world(6, 2, seed=0, image_size=size, compute_ceilings=False)
    for im in list(d.datasets["train"]["image"]) + list(d.datasets["test"]["image"]):
        assert im.mode == "RGB" and im.size == (size, size)


# --- clues ----------------------------------------------------------------------------


def test_no_clue_share_is_exact_and_those_images_carry_no_palette(data: syn.SyntheticData) -> None:
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        ds = data.datasets[split]
        loc = np.array(list(ds["locatable"]))
        assert (~loc).sum() == round(0.1 * n)
        for row, c in zip(ds, data.clues[split], strict=True):
            # the ground band between horizon and road: palettes' grounds have chroma >= 60
            ground = np.asarray(row["image"], dtype=int)[int(0.55 * SIZE) : int(0.75 * SIZE)]
            chroma = float(np.median(ground.max(axis=-1) - ground.min(axis=-1)))
            if row["locatable"]:
                assert chroma > 40, row["id"]
            else:
                assert chroma < 15 and row["entities"] == [] and not c.legible, row["id"]


def test_reasoning_names_each_legible_clue_and_its_level(data: syn.SyntheticData) -> None:
    world = data.world
    for split in ("train", "test"):
        for row, c in zip(data.datasets[split], data.clues[split], strict=True):
            for e in row["entities"]:
                assert e in row["reasoning"]  # GLOBE's R_vis can find every entity
            if not row["locatable"]:
                continue
            p = world.places[c.place]
            assert row["entities"][0] == syn.PALETTES[p.continent].name
            assert (
                (p.banner_phrase in row["entities"])
                == c.banner
                == (f"banner: {p.country}." in row["reasoning"])
            )
            assert (p.sign_phrase in row["entities"]) == c.sign
            assert (
                (p.landmark_phrase in row["entities"])
                == c.landmark
                == (f"landmark: {p.city}." in row["reasoning"])
            )
            assert any(e.endswith("road tint") for e in row["entities"]) == c.tint


def test_road_pixels_encode_the_tint() -> None:
    """The drawn road colour is (red level, 90, blue level): what the docs say it encodes."""
    world = syn.SyntheticWorld.from_gazetteer()
    p = world.places[0]
    level = syn.tint_of(world, p.country_code, p.lat, p.lon)
    clues = syn.Clues(place=0, lat=p.lat, lon=p.lon, locatable=True, tint=True, tint_level=level)
    im = syn.render_image(world, clues, np.random.default_rng(0), 112)
    road = np.asarray(im, dtype=float)[-8:, 40:72].reshape(-1, 3).mean(axis=0)
    assert np.allclose(road, [level[0], syn.TINT_GREEN, level[1]], atol=2.0)


def test_tint_round_trip_within_quantisation(data: syn.SyntheticData) -> None:
    from georeason.geo import haversine_km

    world = data.world
    for p in world.places:
        lat0, lat1, lon0, lon1 = world.tint_boxes[p.country_code]
        lat, lon = syn.decode_tint(world, p.country_code, syn.tint_of(world, p.country_code, p.lat, p.lon))
        assert abs(lat - p.lat) <= 0.5 * (lat1 - lat0) / syn.TINT_SPAN + 1e-9
        assert abs(lon - p.lon) <= 0.5 * (lon1 - lon0) / syn.TINT_SPAN + 1e-9
        assert haversine_km(lat, lon, p.lat, p.lon) < 25.0


# --- labels vs. geography -------------------------------------------------------------


def test_labels_agree_with_reverse_geocoding(data: syn.SyntheticData) -> None:
    from georeason.geo import continent_of, haversine_km, reverse_geocode_batch

    world = data.world
    for split in ("train", "test"):
        ds = data.datasets[split]
        t = reverse_geocode_batch(list(ds["lat"]), list(ds["lon"]))
        assert t.valid.all() and t.on_land.all()
        assert list(t.country_code) == list(ds["country_code"])
        assert list(t.admin1) == list(ds["admin1"])
        assert [continent_of(cc) for cc in list(ds["country_code"])] == list(ds["continent"])
        city = [world.places[c.place] for c in data.clues[split]]
        d = haversine_km(
            np.array(list(ds["lat"])),
            np.array(list(ds["lon"])),
            np.array([p.lat for p in city]),
            np.array([p.lon for p in city]),
        )
        assert d.max() <= world.jitter_km + 1e-6  # photos lie around their city


def test_spread_photos_fill_the_land_around_training_cities(data: syn.SyntheticData) -> None:
    """draw_spread_photos: GPS-only pool for GRPO, spread far beyond the city disks,
    still in the city's country and admin1, no landmark, no held-out city, deterministic."""
    from georeason.geo import haversine_km, reverse_geocode_batch

    world = data.world
    pool = syn.draw_spread_photos(world, 60, radius_km=60.0, image_size=SIZE)
    assert pool.column_names == data.datasets["train"].column_names
    assert all(i.startswith(f"synth{world.seed}-spread-") for i in pool["id"])
    t = reverse_geocode_batch(list(pool["lat"]), list(pool["lon"]))
    assert t.valid.all() and t.on_land.all()
    assert list(t.country_code) == list(pool["country_code"])
    assert list(t.admin1) == list(pool["admin1"])
    train = {(p.country_code, p.city): p for p in world.split_places("train")}
    keys = list(zip(pool["country_code"], pool["city"], strict=True))
    assert all(k in train for k in keys)  # drawn around training cities only
    d = haversine_km(
        np.array(list(pool["lat"])),
        np.array(list(pool["lon"])),
        np.array([train[k].lat for k in keys]),
        np.array([train[k].lon for k in keys]),
    )
    assert d.max() <= 60.0 + 1e-6
    assert np.median(d) > 2 * world.jitter_km  # far beyond the splits' disks
    assert not any("landmark" in r for r in pool["reasoning"])
    again = syn.draw_spread_photos(world, 60, radius_km=60.0, image_size=SIZE)
    assert again.data.table.equals(pool.data.table)
    with pytest.raises(ValueError, match="radius_km"):
        syn.draw_spread_photos(world, 4, radius_km=0.0)


# --- ceilings -------------------------------------------------------------------------


def test_ceilings_order_and_held_out_names(data: syn.SyntheticData) -> None:
    c = data.ceilings["test"]
    # a held-out city was never named in training: no oracle can name it ...
    assert c["namer"]["city_acc"] == c["snap"]["city_acc"] == c["reader"]["city_acc"] == 0.0
    assert c["namer"]["acc@25km"] == 0.0  # ... nor answer within 25 km by copying a seen city
    # reading the continuous clue beats copying a seen city
    assert c["reader"]["median_km"] < c["snap"]["median_km"] <= c["namer"]["median_km"]
    assert c["reader"]["acc@25km"] > 0.5
    assert data.ceilings["train"]["namer"]["acc@25km"] > 0.6  # seen cities: the landmark names them


def test_oracle_on_a_clueless_image_answers_the_training_medoid(data: syn.SyntheticData) -> None:
    world = data.world
    c = syn.Clues(place=world.split_places("test")[0].index, lat=0.0, lon=0.0, locatable=False)
    pred = syn.oracle_predict(world, c, "reader")
    assert pred.city in {p.city for p in world.split_places("train")}
    with pytest.raises(ValueError, match="mode"):
        syn.oracle_predict(world, c, "psychic")


def test_centre_oracle_answers_the_point_nearest_to_the_regions_seen_cities(data: syn.SyntheticData) -> None:
    from georeason.geo import haversine_km

    world = data.world
    held = world.split_places("test")[0]
    # banner and sign legible, tint too: the centre oracle ignores the tint
    level = syn.tint_of(world, held.country_code, held.lat, held.lon)
    c = syn.Clues(held.index, held.lat, held.lon, True, banner=True, sign=True, tint=True, tint_level=level)
    region = (held.country_code, held.admin1)
    seen = [p for p in world.split_places("train") if (p.country_code, p.admin1) == region]
    assert len(seen) >= 2
    lat, lon = np.array([p.lat for p in seen]), np.array([p.lon for p in seen])
    centre = syn.oracle_predict(world, c, "centre")
    namer = syn.oracle_predict(world, c, "namer")
    assert (centre.country_code, centre.admin1, centre.city) == (namer.country_code, namer.admin1, namer.city)
    cost = float(haversine_km(centre.lat, centre.lon, lat, lon).sum())
    # never worse than the medoid city, and a local minimum of the summed distance
    assert cost <= float(haversine_km(namer.lat, namer.lon, lat, lon).sum()) + 1e-6
    for dlat, dlon in ((0.05, 0.0), (-0.05, 0.0), (0.0, 0.05), (0.0, -0.05)):
        assert cost <= float(haversine_km(centre.lat + dlat, centre.lon + dlon, lat, lon).sum()) + 1e-6
    # the tint changes snap/reader, never the centre
    moved = dataclasses.replace(c, tint_level=(c.tint_level[0] // 2, c.tint_level[1] // 2))
    assert syn.oracle_predict(world, moved, "centre") == centre


# --- I/O, CLI, errors -----------------------------------------------------------------


def test_save_world_round_trip(data: syn.SyntheticData, tmp_path) -> None:
    from datasets import load_from_disk

    syn.save_world(data, tmp_path / "w")
    dd = load_from_disk(str(tmp_path / "w"))
    assert dd["test"].data.table.equals(data.datasets["test"].data.table)
    meta = json.loads((tmp_path / "w" / "world.json").read_text(encoding="utf-8"))
    assert meta["params"]["seed"] == 3 and len(meta["world"]["places"]) == 192
    assert len(meta["clues"]["train"]) == N_TRAIN and "reader" in meta["ceilings"]["test"]


def test_generate_world_returns_a_datasetdict_and_writes_out_dir(tmp_path) -> None:
    dd = syn.generate_world(4, 2, seed=1, image_size=28, out_dir=tmp_path / "mw").datasets
    assert set(dd) == {"train", "test"} and dd["train"].num_rows == 4
    assert (tmp_path / "mw" / "world.json").exists() and (tmp_path / "mw" / "dataset_dict.json").exists()


def test_cli_synth(tmp_path) -> None:
    from typer.testing import CliRunner

    from georeason.cli import app
    from georeason.commands import synth  # noqa: F401  (registers the command)

    res = CliRunner().invoke(
        app, ["synth", "--out", str(tmp_path / "s"), "--n-train", "6", "--n-test", "3", "--image-size", "28"]
    )
    assert res.exit_code == 0, res.output
    assert "held-out cities" in res.output
    from datasets import load_from_disk

    assert load_from_disk(str(tmp_path / "s"))["test"].num_rows == 3
    bad = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "b"), "--n-places", "100"])
    assert bad.exit_code != 0 and "multiple" in bad.output


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_places": 100}, "multiple"),
        ({"n_places": 48}, "cities per admin1"),
        ({"image_size": 20}, "image_size"),
        ({"no_clue_share": 1.5}, "no_clue_share"),
        ({"test_share": 0.0}, "test_share"),
        ({"countries": ["FR", "XX"], "n_countries": 2, "n_places": 16}, "'XX'"),
        ({"countries": ["France"], "n_countries": 1, "n_places": 8}, "alpha-2"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        syn.generate_world(2, 1, **kwargs)


def test_clue_rates_are_checked() -> None:
    with pytest.raises(ValueError, match="probability"):
        syn.ClueRates(banner=1.2)


def test_importing_the_module_is_light() -> None:
    code = (
        "import sys, georeason.datasets, georeason.datasets.synthetic; "
        "print(sorted(m for m in ('torch', 'datasets', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
