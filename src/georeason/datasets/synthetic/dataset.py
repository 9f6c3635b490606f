"""World + datasets: the one entry point :func:`generate_world`, the spread pool, saving."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from georeason.datasets.synthetic.clues import ClueRates, Clues, describe, tint_of
from georeason.datasets.synthetic.oracle import ORACLE_MODES, ceiling_report
from georeason.datasets.synthetic.render import png_bytes, render_image
from georeason.datasets.synthetic.world import KM_PER_DEG, SyntheticWorld, WorldPlace
from georeason.types import GeoSample

if TYPE_CHECKING:  # `datasets` is imported inside functions (heavy)
    from datasets import DatasetDict


# --------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------


def _photo_coordinates(
    world: SyntheticWorld,
    places: list[WorldPlace],
    rng: np.random.Generator,
    *,
    radius_km: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Photo coordinates uniform in a disk of ``radius_km`` (default: the world's
    ``jitter_km``) around each city.

    A position is redrawn (up to 5 times, then the city's own point, which is on
    land) where reverse geocoding puts it in the sea (~4% of draws: coastal and
    river cities) or in another country or admin1 (rare: places were chosen with
    a ring of ``jitter_km`` that geocodes to their own country and admin1; more
    often for a wide ``radius_km``).
    """
    from georeason.geo import reverse_geocode_batch

    radius = world.jitter_km if radius_km is None else radius_km
    n = len(places)
    clat = np.array([p.lat for p in places])
    clon = np.array([p.lon for p in places])
    lat, lon = clat.copy(), clon.copy()
    todo = np.arange(n)
    for _ in range(5 if radius <= world.jitter_km else 10):
        if not len(todo) or radius == 0:
            break
        r = radius * np.sqrt(rng.random(len(todo)))
        th = rng.uniform(0, 2 * np.pi, len(todo))
        lat[todo] = clat[todo] + r * np.cos(th) / KM_PER_DEG
        lon[todo] = clon[todo] + r * np.sin(th) / (KM_PER_DEG * np.cos(np.radians(clat[todo])))
        t = reverse_geocode_batch(lat[todo], lon[todo])
        want_cc = np.array([places[i].country_code for i in todo], dtype=object)
        want_a1 = np.array([places[i].admin1 for i in todo], dtype=object)
        ok = t.valid & t.on_land & (t.country_code == want_cc) & (t.admin1 == want_a1)
        todo = todo[~ok]
    lat[todo], lon[todo] = clat[todo], clon[todo]
    return lat, lon


def _balanced_places(places: list[WorldPlace], n: int, rng: np.random.Generator) -> list[WorldPlace]:
    """``n`` draws cycling through all cities: every city gets n/len or n/len + 1 images.

    Each cycle interleaves regions (one city of every admin1 region, in shuffled
    order, then a second city of each, ...), so even a short prefix covers every
    region: with n >= number of regions, every region is in the split.
    """
    regions: dict[tuple[str, str], list[WorldPlace]] = {}
    for p in places:
        regions.setdefault((p.country_code, p.admin1), []).append(p)
    keys = list(regions)
    out: list[WorldPlace] = []
    while len(out) < n:
        shuffled = [
            [regions[keys[k]][i] for i in rng.permutation(len(regions[keys[k]]))]
            for k in rng.permutation(len(keys))
        ]
        for j in range(max(len(r) for r in shuffled)):
            out.extend(r[j] for r in shuffled if j < len(r))
    return out[:n]


# Random streams of the splits; "spread" is the geotagged-only pool of draw_spread_photos.
_SPLIT_KEYS = {"train": 0, "test": 1, "spread": 2}


def _make_split(
    world: SyntheticWorld,
    split: str,
    n: int,
    *,
    image_size: int,
    no_clue_share: float,
    rates: ClueRates,
    radius_km: float | None = None,
) -> tuple[list[dict[str, Any]], list[Clues]]:
    split_key = _SPLIT_KEYS[split]
    places = world.split_places("train" if split == "spread" else split)
    if n and not places:
        raise ValueError(f"the world has no {split} places")
    rng = np.random.default_rng([world.seed, 2, split_key])
    chosen = _balanced_places(places, n, rng)
    lat, lon = _photo_coordinates(world, chosen, rng, radius_km=radius_km)
    # an exact number of clue-less images, so the share is what was asked (not a binomial draw)
    no_clue = np.zeros(n, dtype=bool)
    no_clue[rng.permutation(n)[: round(no_clue_share * n)]] = True

    rows: list[dict[str, Any]] = []
    all_clues: list[Clues] = []
    for i, p in enumerate(chosen):
        r = np.random.default_rng([world.seed, 3, split_key, i])  # per image: order-independent
        occluded: list[str] = []
        partial: list[str] = []
        if no_clue[i]:
            clues = Clues(place=p.index, lat=float(lat[i]), lon=float(lon[i]), locatable=False)
        else:
            legible: dict[str, bool] = {}
            for c in ("banner", "sign", "landmark", "tint"):
                shown = bool(r.random() < getattr(rates, c))
                if shown and c != "tint" and r.random() < rates.occluded:
                    occluded.append(c)
                    shown = False
                legible[c] = shown
                if shown and r.random() < rates.partial:
                    partial.append(c)
            level = tint_of(world, p.country_code, float(lat[i]), float(lon[i])) if legible["tint"] else None
            clues = Clues(
                place=p.index,
                lat=float(lat[i]),
                lon=float(lon[i]),
                locatable=True,
                tint_level=level,
                **legible,
            )
        im = render_image(world, clues, r, image_size, occluded=occluded, partial=partial)
        reasoning, entities = describe(world, clues)
        sample = GeoSample(
            id=f"synth{world.seed}-{split}-{i:06d}",
            image={"bytes": png_bytes(im), "path": None},
            lat=clues.lat,
            lon=clues.lon,
            continent=p.continent,
            country_code=p.country_code,
            country=p.country,
            admin1=p.admin1,
            city=p.city,
            locatable=clues.locatable,
            reasoning=reasoning,
            entities=entities,
        )
        rows.append(sample.to_dict())
        all_clues.append(clues)
    return rows, all_clues


# --------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------


def _features() -> Any:
    from datasets import Features, List, Value
    from datasets import Image as ImageFeature

    return Features(
        {
            "id": Value("string"),
            "image": ImageFeature(),
            "lat": Value("float64"),
            "lon": Value("float64"),
            "continent": Value("string"),
            "country_code": Value("string"),
            "country": Value("string"),
            "admin1": Value("string"),
            "city": Value("string"),
            "locatable": Value("bool"),
            "reasoning": Value("string"),
            "entities": List(Value("string")),
        }
    )


def _rows_dataset(rows: list[dict[str, Any]]) -> Any:
    """GeoSample rows -> a ``datasets.Dataset`` with the world's features (images as PNG)."""
    from datasets import Dataset

    features = _features()
    return Dataset.from_dict({k: [r[k] for r in rows] for k in features}, features=features)


@dataclass
class SyntheticData:
    """A generated world: the datasets plus what is needed to analyse them."""

    world: SyntheticWorld
    datasets: DatasetDict
    clues: dict[str, list[Clues]]
    params: dict[str, Any]
    ceilings: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def clue_shares(self, split: str) -> dict[str, float]:
        cs = self.clues[split]
        if not cs:
            return {}
        out = {"locatable": float(np.mean([c.locatable for c in cs]))}
        for c in ("banner", "sign", "landmark", "tint"):
            out[c] = float(np.mean([getattr(x, c) for x in cs]))
        return out

    def drawn_clues(self) -> dict[str, list[str]]:
        """Each photo's id -> the phrases of the clues drawn in it (palette and legible clues,
        as :func:`describe` names them): what the clue grounder
        (:class:`georeason.rewards.grounding.ClueGrounder`) checks named entities against."""
        out: dict[str, list[str]] = {}
        for split in self.clues:
            ds = self.datasets[split].select_columns(["id", "entities"])
            out.update(zip(ds["id"], (list(e) for e in ds["entities"]), strict=True))
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-able description: parameters, place counts, clue shares and ceilings per split."""
        return {
            "params": self.params,
            "n_countries": len(self.world.countries),
            "n_places": {s: len(self.world.split_places(s)) for s in ("train", "test")},
            "n_images": {s: len(self.clues[s]) for s in self.clues},
            "clue_shares": {s: self.clue_shares(s) for s in self.clues},
            "ceilings": self.ceilings,
        }


def generate_world(
    n_train: int,
    n_test: int,
    *,
    seed: int = 0,
    image_size: int = 112,
    n_places: int = 192,
    n_countries: int = 24,
    admin1_per_country: int = 2,
    test_share: float = 0.25,
    no_clue_share: float = 0.1,
    clue_rates: ClueRates | None = None,
    countries: Sequence[str] | None = None,
    jitter_km: float = 5.0,
    compute_ceilings: bool = True,
    out_dir: str | Path | None = None,
) -> SyntheticData:
    """The synthetic world and its ``train`` / ``test`` datasets: the package's entry point.

    Args:
        n_train: images of training cities.
        n_test: images of held-out cities (none of them appears in ``train``).
        seed: draws the split of cities and every photo; same seed -> byte-identical data.
        image_size: side of the square RGB images, in pixels (a multiple of 28 suits
            Qwen2.5-VL: 14-pixel patches merged 2x2).
        n_places: cities in the world = n_countries x admin1_per_country x cities per admin1.
        n_countries, admin1_per_country, test_share, countries, jitter_km: the world's
            size and split (:meth:`SyntheticWorld.from_gazetteer`).
        no_clue_share: exact share of images with no clue at all (``locatable=False``).
        clue_rates: how often each clue is legible (:class:`ClueRates`).
        compute_ceilings: also score :func:`oracle_predict` on every image (``ceilings``).
        out_dir: if given, also :func:`save_world` there.

    Returns the world, the datasets (``.datasets``: a ``datasets.DatasetDict`` whose
    columns are the :class:`~georeason.types.GeoSample` fields; ``image`` is the
    ``datasets`` Image feature, PNG bytes decoded to ``PIL.Image`` on access, as TRL's
    VLM trainers take it), the per-image clue records and the ceilings.

    >>> dd = generate_world(8, 4, image_size=56).datasets  # doctest: +SKIP
    >>> dd["train"][0]["reasoning"]  # doctest: +SKIP
    'green meadow: Europe. vertical blue-white-red banner: France. ...'
    """
    if n_train < 1 or n_test < 0:
        raise ValueError(f"need n_train >= 1 and n_test >= 0, got {n_train}, {n_test}")
    if not 0.0 <= no_clue_share <= 1.0:
        raise ValueError(f"no_clue_share must be in [0, 1], got {no_clue_share}")
    if image_size < 28:
        raise ValueError(f"image_size must be >= 28 pixels (two 14-pixel patches), got {image_size}")
    from datasets import DatasetDict

    rates = clue_rates or ClueRates()
    world = SyntheticWorld.from_gazetteer(
        seed=seed,
        n_places=n_places,
        n_countries=n_countries,
        admin1_per_country=admin1_per_country,
        test_share=test_share,
        countries=countries,
        jitter_km=jitter_km,
    )
    splits: dict[str, Any] = {}
    clues: dict[str, list[Clues]] = {}
    for split, n in (("train", n_train), ("test", n_test)):
        rows, cl = _make_split(
            world, split, n, image_size=image_size, no_clue_share=no_clue_share, rates=rates
        )
        splits[split] = _rows_dataset(rows)
        clues[split] = cl
    params = {
        "n_train": n_train,
        "n_test": n_test,
        "seed": seed,
        "image_size": image_size,
        "n_places": n_places,
        "n_countries": n_countries,
        "admin1_per_country": admin1_per_country,
        "test_share": test_share,
        "no_clue_share": no_clue_share,
        "clue_rates": asdict(rates),
        "countries": list(countries) if countries is not None else None,
        "jitter_km": jitter_km,
    }
    data = SyntheticData(world=world, datasets=DatasetDict(splits), clues=clues, params=params)
    if compute_ceilings:
        data.ceilings = {
            s: {m: ceiling_report(world, clues[s], m) for m in ORACLE_MODES} for s in clues if clues[s]
        }
    if out_dir is not None:
        save_world(data, out_dir)
    return data


def draw_spread_photos(
    world: SyntheticWorld,
    n: int,
    *,
    radius_km: float = 75.0,
    image_size: int = 112,
    no_clue_share: float = 0.1,
    clue_rates: ClueRates | None = None,
) -> Any:
    """Geotagged photos taken *anywhere* within ``radius_km`` of the training cities.

    The world's ``train`` and ``test`` photos sit in small disks (``jitter_km``)
    around their cities, so no photo shows the road tint of the land *between*
    cities, where the held-out cities lie. This pool fills that land: photos
    uniform in a disk of ``radius_km`` around each training city (cycled as in
    the splits), redrawn until they fall on land in the city's own country and
    admin1, with palette, banner, sign and road tint drawn as usual for their
    true position and **no landmark** (a photo tens of km away does not show the
    city's). Labels are complete (``city`` is the city it was drawn around), but
    what such a pool models is MP-16's abundant GPS-only photos: a reward that
    needs only ``lat``/``lon`` can learn from it. No held-out city's photo is in
    it; the land around a held-out city is, as it is around any city in MP-16.

    Deterministic by the world's seed (its own random stream, ``spread``); returns
    a ``datasets.Dataset`` with the GeoSample columns (ids ``synth{seed}-spread-{i}``).
    """
    if n < 1:
        raise ValueError(f"need n >= 1 spread photos, got {n}")
    if radius_km <= 0:
        raise ValueError(f"radius_km must be > 0, got {radius_km}")
    rates = replace(clue_rates or ClueRates(), landmark=0.0)
    rows, _ = _make_split(
        world,
        "spread",
        n,
        image_size=image_size,
        no_clue_share=no_clue_share,
        rates=rates,
        radius_km=radius_km,
    )
    return _rows_dataset(rows)


def save_world(data: SyntheticData, out_dir: str | Path) -> Path:
    """Write the datasets (``save_to_disk``) and ``world.json`` (places, codebook,
    split, tint boxes, per-image clue records and drawn clue phrases by id, clue shares,
    ceilings) to ``out_dir``.

    Load the datasets back with ``datasets.load_from_disk(out_dir)``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data.datasets.save_to_disk(str(out))
    meta = {
        "generator": "georeason.datasets.synthetic",
        **data.summary(),
        "world": data.world.to_dict(),
        "clues": {s: [asdict(c) for c in cs] for s, cs in data.clues.items()},
        "drawn_clues": data.drawn_clues(),
    }
    (out / "world.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    return out


def iter_samples(dataset: Any) -> Iterator[GeoSample]:
    """Rows of a synthetic split as :class:`GeoSample` (images decoded to PIL)."""
    for row in dataset:
        yield GeoSample(**{f.name: row[f.name] for f in fields(GeoSample)})
