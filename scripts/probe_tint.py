"""Is the road tint in what the language model sees? A linear probe on the visual tokens.

The synthetic world's road tint encodes where in its country a photo was taken
(docs/synthetic_world.md). A tiny VLM that names a seen city instead of the place
the tint encodes either cannot *see* the tint or does not *use* it. This script
tells which: it takes the image tokens a model's language decoder receives (the
vision tower's merged output, ``get_image_features``), fits a ridge regression
from them to the photo's position in its country's tint box on the training
photos whose tint is legible, and places the held-out photos with it (their
country given, as a reader of the banner has it).

    python scripts/probe_tint.py --world runs/demo/world --model runs/demo/model runs/demo/sft

prints, per model, the probe's error in tint colour levels and its held-out
median km and acc@25 km, to set beside the model's own answers (`georeason demo`'s
report). Measured on the demo's world, seed 0 (2026-11-25; 1,515 training and
309 held-out photos): random weights 1.8 / 1.6 levels, held-out median 11.8 km,
acc@25 km 80.9 %; after SFT 0.8 / 1.0 levels, 6.8 km, 94.5 %. The SFT model's
own answers on those photos' split: median 150 km, acc@25 km 0.8 %. The tint is
seen, from the first step; turning it into a city or coordinates is what the
decoder does not learn.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

BATCH = 50


def visual_tokens(model_dir: str, images: list, *, threads: int = 1) -> np.ndarray:
    """The image tokens the language decoder receives, flattened: (n_images, tokens x hidden)."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    torch.set_num_threads(threads)
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    processor = AutoProcessor.from_pretrained(model_dir)
    out = []
    for i in range(0, len(images), BATCH):
        batch = [im.convert("RGB") for im in images[i : i + BATCH]]
        inputs = processor.image_processor(images=batch, return_tensors="pt")
        with torch.no_grad():
            feats = model.model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"])
        out.extend(f.reshape(-1).numpy() for f in feats.pooler_output)
    return np.stack(out)


def fit_ridge(
    x: np.ndarray, y: np.ndarray, alphas: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Ridge regression, its alpha chosen on the last 20 % of the rows; returns (alpha, W, x mean, y mean)."""

    def solve(xs: np.ndarray, ys: np.ndarray, a: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mx, my = xs.mean(axis=0), ys.mean(axis=0)
        xc = xs - mx
        return np.linalg.solve(xc.T @ xc + a * np.eye(xs.shape[1]), xc.T @ (ys - my)), mx, my

    k = int(0.8 * len(x))

    def val_error(a: float) -> float:
        w, mx, my = solve(x[:k], y[:k], a)
        return float(np.abs((x[k:] - mx) @ w + my - y[k:]).mean())

    best = float(min(alphas, key=val_error))
    return (best, *solve(x, y, best))


def main(argv: list[str] | None = None) -> None:
    from datasets import load_from_disk

    from georeason.geo import haversine_km

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--world", type=Path, required=True, help="a world folder (georeason synth / demo's out/world)"
    )
    ap.add_argument("--model", nargs="+", required=True, help="model folders to probe")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    meta = json.loads((args.world / "world.json").read_text(encoding="utf-8"))
    boxes = {cc: np.asarray(b, dtype=float) for cc, b in meta["world"]["tint_boxes"].items()}
    splits = load_from_disk(str(args.world))
    rows = {}
    for split in ("train", "test"):
        ds = splits[split]
        tint = np.array(["road tint" in (r or "") for r in ds["reasoning"]])
        keep = np.flatnonzero(tint).tolist()
        sub = ds.select(keep)
        box = np.stack([boxes[cc] for cc in sub["country_code"]])
        lat, lon = np.asarray(sub["lat"]), np.asarray(sub["lon"])
        frac = np.stack(
            [(lat - box[:, 0]) / (box[:, 1] - box[:, 0]), (lon - box[:, 2]) / (box[:, 3] - box[:, 2])], 1
        )
        rows[split] = (sub, box, lat, lon, frac)
    print(
        f"{rows['train'][0].num_rows} training / {rows['test'][0].num_rows} held-out photos with a legible tint"
    )
    from georeason.datasets.synthetic import TINT_SPAN

    for model_dir in args.model:
        xtr = visual_tokens(model_dir, rows["train"][0]["image"], threads=args.threads)
        xte = visual_tokens(model_dir, rows["test"][0]["image"], threads=args.threads)
        alpha, w, mx, my = fit_ridge(xtr, rows["train"][4], np.logspace(-3, 3, 13))
        _, box, lat, lon, frac = rows["test"]
        pred = np.clip((xte - mx) @ w + my, 0.0, 1.0)
        levels = np.median(np.abs(pred - frac), axis=0) * TINT_SPAN
        plat = box[:, 0] + pred[:, 0] * (box[:, 1] - box[:, 0])
        plon = box[:, 2] + pred[:, 1] * (box[:, 3] - box[:, 2])
        d = haversine_km(plat, plon, lat, lon)
        print(
            f"{model_dir}: probe error {levels[0]:.1f} / {levels[1]:.1f} colour levels (north / east), "
            f"held-out median {np.median(d):.1f} km, acc@25 km {100 * np.mean(d <= 25):.1f} % (ridge alpha {alpha:g})"
        )


if __name__ == "__main__":
    main()
