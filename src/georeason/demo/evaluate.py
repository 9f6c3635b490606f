"""The demo's stage 5: the models' answers on the held-out cities (the eval runner),
the model-free baselines, one table row per answer set (the evaluation report's code),
whether answers follow their own reasoning, and a few photos to try ``georeason locate`` on."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from georeason.demo.config import (
    COMMON_CITY,
    N_PHOTOS,
    PHOTOS_CSV,
    PHOTOS_DIR,
    PROTOCOL,
    RANDOM_LAND,
    THRESHOLDS_KM,
    DemoConfig,
)
from georeason.types import PLACE_LEVELS


def sampled_row(model_row: str, samples: int) -> str:
    """The table row of a model answered by ``samples`` sampled chains and their medoid."""
    return f"{model_row}, {samples} samples (medoid)"


def evaluate_model(
    model_dir: Path,
    name: str,
    cfg: DemoConfig,
    *,
    split: str = "test",
    limit: int | None = None,
    label: str | None = None,
    samples: int = 1,
) -> list[dict[str, Any]]:
    """Greedy answers of a model on a split of the world, one record per photo (the eval runner).
    ``label`` names the progress bar (default: ``name`` and ``split``). ``samples`` K > 1:
    K sampled answers per photo at T = 0.7 reduced by their medoid instead of one greedy one."""
    from georeason.eval.runner import EvalConfig, run_eval
    from georeason.infer import get_backend
    from georeason.runs import PREDICTIONS_FILE, read_records

    out = cfg.out / "eval" / (name if split == "test" else f"{name}_{split}")
    if samples > 1:
        out = out.with_name(f"{out.name}_k{samples}")
    config = EvalConfig(
        benchmark="synthetic",
        data=str(cfg.out / "world"),
        model=str(model_dir),
        backend="hf",
        protocol=PROTOCOL,
        limit=limit,
        batch_size=max(1, cfg.eval_batch_size // samples),  # about as many rows per call as greedy
        max_new_tokens=cfg.max_new_tokens,
        temperature=0.7 if samples > 1 else 0.0,
        samples=samples,
        aggregate="medoid",
        benchmark_options={"split": split},
    )
    backend = get_backend("hf", str(model_dir), batch_size=config.batch_size, device="cpu")
    try:
        run_eval(
            config,
            out,
            backend=backend,
            overwrite=True,
            report=False,
            progress=cfg.progress,
            progress_label=label or f"eval {name}, {split}",
            log=lambda _: None,
        )
    finally:
        backend.close()
    records, _ = read_records(out / PREDICTIONS_FILE)
    return records


def baseline_records(data: Any, cfg: DemoConfig) -> dict[str, list[dict[str, Any]]]:
    """Answers of the two model-free baselines on the test photos, written as Chain of
    Region completions and scored by the same record / parser / metric code as the models."""
    from georeason.eval.runner import make_record
    from georeason.geo import haversine_km, reverse_geocode_batch
    from georeason.protocols import get_protocol

    protocol = get_protocol(PROTOCOL)
    test = data.datasets["test"].remove_columns("image")
    train = data.datasets["train"].remove_columns("image")
    metas = [
        {"id": r["id"], "lat": r["lat"], "lon": r["lon"], **{k: r[k] for k in PLACE_LEVELS if r.get(k)}}
        for r in test
    ]

    # The training set's most common city. The world balances cities (equal counts
    # +-1), so ties go to the most central of them: least summed distance to all
    # training photos (the strongest single answer among the tied).
    keys = list(zip(train["country_code"], train["admin1"], train["city"], strict=True))
    counts: dict[tuple[str, str, str], int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    top = max(counts.values())
    tied = sorted(k for k, c in counts.items() if c == top)
    places = {(p.country_code, p.admin1, p.city): p for p in data.world.places}
    tlat, tlon = np.asarray(train["lat"]), np.asarray(train["lon"])
    cost = [float(haversine_km(places[k].lat, places[k].lon, tlat, tlon).sum()) for k in tied]
    common = places[tied[int(np.argmin(cost))]]
    common_answer = protocol.format_answer(
        {
            "lat": common.lat,
            "lon": common.lon,
            "country": common.country,
            "admin1": common.admin1,
            "city": common.city,
            "reasoning": "the most common city of the training set.",
        }
    )

    # A random point on land: uniform on the sphere, redrawn until it falls on land.
    rng = np.random.default_rng([cfg.seed, 17])
    lat: list[float] = []
    lon: list[float] = []
    while len(lat) < len(metas):
        z = rng.uniform(-1.0, 1.0, 4 * len(metas))
        la, lo = np.degrees(np.arcsin(z)), rng.uniform(-180.0, 180.0, z.size)
        land = reverse_geocode_batch(la, lo).on_land
        lat.extend(la[land].tolist())
        lon.extend(lo[land].tolist())
    lat, lon = lat[: len(metas)], lon[: len(metas)]
    named = reverse_geocode_batch(np.array(lat), np.array(lon))

    out: dict[str, list[dict[str, Any]]] = {RANDOM_LAND: [], COMMON_CITY: []}
    for i, meta in enumerate(metas):
        random_answer = protocol.format_answer(
            {
                "lat": lat[i],
                "lon": lon[i],
                # the names of the point's place ("unknown" far from any town)
                "country": named.country[i] or "unknown",
                "admin1": named.admin1[i] or "N/A",
                "city": named.city[i] or "unknown",
                "reasoning": "a random point on land.",
            }
        )
        for name, text in ((RANDOM_LAND, random_answer), (COMMON_CITY, common_answer)):
            out[name].append(
                make_record(
                    meta,
                    completion=text,
                    error=None,
                    error_kind=None,
                    seconds=None,
                    protocol=protocol,
                    geocode=False,
                )
            )
    return out


def score(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """One row of the table, by the evaluation report's code (:func:`georeason.eval.report.build_report`):
    acc@km and GeoScore over all photos (a failed answer is a miss), median km over the
    answers that gave coordinates, and the accuracy of the country / admin1 / city named."""
    from georeason.eval.report import build_report

    report = build_report(records, run_info={"config": {"protocol": PROTOCOL}}, n_bootstrap=0)
    m = report["metrics"]
    named = report["hierarchy"]["named"] or {}
    row = {f"acc@{t:g}km": 100.0 * float(m["accuracy"][f"acc@{t:g}km"]["value"]) for t in THRESHOLDS_KM}
    row["median_km"] = as_float(m["median_km"]["value"])
    row["geoscore"] = as_float(m["geoscore"]["value"])
    for level in ("country", "admin1", "city"):
        row[f"{level}_acc"] = 100.0 * as_float((named.get(level) or {}).get("accuracy", {}).get("value"))
    row["format_ok"] = 100.0 * float(np.mean([bool(r.get("format_ok")) for r in records]))
    return row


# "... south-west road tint." in a Chain of Region reasoning (synthetic.describe's phrase). Any
# word is taken: synthetic.tint_direction alone defines the valid ones, and a word it never
# gives simply matches neither the truth nor the answer.
_TINT_WORDS = re.compile(r"\b([a-z]+(?:-[a-z]+)?) road tint\b")
READING_KEYS = (
    ("word_right", "reasoning names the true tint direction"),
    ("follows_word", "answer lies where its reasoning says"),
    ("in_true_cell", "answer lies in the true direction"),
)


def tint_reading(records: Sequence[dict[str, Any]], data: Any, split: str = "test") -> dict[str, float]:
    """Does the answer follow its own reasoning about the road tint?

    On the photos of ``split`` whose road tint is legible and whose country the model
    named right (the tint is a position in the country's box), in %:

    - ``word_right``: the reasoning names the tint's true direction ("north-east road
      tint": thirds of the country's box, :func:`~georeason.datasets.synthetic.tint_direction`);
    - ``follows_word``: the answer's coordinates lie in the direction the reasoning named
      (the chain is consistent, right or wrong);
    - ``in_true_cell``: the answer's coordinates lie in the true direction.

    ``n`` is the number of such photos. A reward that scores only the coordinates
    (Geo-R's) does not see the reasoning: this shows whether GRPO keeps the two tied.
    """
    from georeason.datasets.synthetic import tint_direction

    world = data.world
    index = {sid: i for i, sid in enumerate(data.datasets[split]["id"])}
    n = right = follows = in_true = 0
    for r in records:
        i = index.get(str(r.get("id")))
        if i is None:
            continue
        clues = data.clues[split][i]
        cc = world.places[clues.place].country_code
        if not clues.tint or r.get("pred_country_code") != cc:
            continue
        n += 1
        true_word = tint_direction(world, cc, clues.lat, clues.lon)
        m = _TINT_WORDS.search(r.get("completion") or "")
        word = m.group(1) if m else None
        right += word == true_word
        lat, lon = as_float(r.get("pred_lat")), as_float(r.get("pred_lon"))
        if math.isfinite(lat) and math.isfinite(lon):
            answer_word = tint_direction(world, cc, lat, lon)
            follows += answer_word == word
            in_true += answer_word == true_word
    pct = (lambda k: 100.0 * k / n) if n else (lambda _k: float("nan"))
    return {
        "n": float(n),
        "word_right": pct(right),
        "follows_word": pct(follows),
        "in_true_cell": pct(in_true),
    }


def write_photos(
    data: Any, cfg: DemoConfig, records: dict[str, list[dict[str, Any]]], n: int = N_PHOTOS
) -> list[dict[str, Any]]:
    """Write ``n`` test photos (held-out cities, one per city, countries taken in turn) as
    PNGs to ``out/photos``, each with its GPS in EXIF so that ``georeason locate`` prints
    its error, plus ``truth.csv``; return per photo its file, truth and each model's answer
    (from ``records``: model row -> evaluation records of the test split)."""
    import csv

    from georeason.images import gps_exif

    test = data.datasets["test"]
    keys = list(zip(test["country_code"], test["city"], strict=True))
    picks: list[int] = []
    for new_country in (True, False):  # first one city per country, then more cities
        for i, (cc, city) in enumerate(keys):
            if len(picks) == n:
                break
            taken = {keys[j] for j in picks}
            if (cc, city) in taken or (new_country and cc in {c for c, _ in taken}):
                continue
            picks.append(i)
    folder = cfg.out / PHOTOS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    by_id = {name: {str(r["id"]): r for r in recs} for name, recs in records.items()}
    photos: list[dict[str, Any]] = []
    rows = test.select(picks)
    for k, row in enumerate(rows):
        name = f"heldout-{k + 1}.png"
        # The block as bytes: Pillow writes an Exif object into a PNG with offsets that lose its GPS IFD.
        exif = gps_exif(row["lat"], row["lon"])
        row["image"].convert("RGB").save(folder / name, "PNG", exif=exif)
        answers = {}
        for model, index in by_id.items():
            r = index.get(str(row["id"]), {})
            place = ", ".join(str(r[c]) for c in ("pred_city", "pred_country") if r.get(c))
            km = r.get("distance_km")
            answers[model] = {"place": place, "km": None if km is None else float(km)}
        photos.append(
            {
                "file": f"{PHOTOS_DIR}/{name}",
                "id": str(row["id"]),
                "lat": float(row["lat"]),
                "lon": float(row["lon"]),
                "city": row["city"],
                "admin1": row["admin1"],
                "country": row["country"],
                "answers": answers,
            }
        )
    with (folder / PHOTOS_CSV).open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "id", "lat", "lon", "city", "admin1", "country"])
        for ph in photos:
            w.writerow(
                [Path(ph["file"]).name, *(ph[c] for c in ("id", "lat", "lon", "city", "admin1", "country"))]
            )
    return photos


def locate_command(folder: Path, cfg: DemoConfig) -> str:
    """The ``georeason locate`` command that runs the demo's GRPO model on its photos."""
    return (
        f"georeason locate {folder / PHOTOS_DIR}/*.png --model {folder / 'grpo'} "
        f"--max-new-tokens {cfg.max_new_tokens}"
    )


def as_float(x: Any) -> float:
    return float("nan") if x is None else float(x)


def oracle_row(ceiling: dict[str, float]) -> dict[str, float]:
    row = {k: 100.0 * v for k, v in ceiling.items() if k.startswith("acc@") or k.endswith("_acc")}
    row["median_km"] = ceiling["median_km"]
    return row
