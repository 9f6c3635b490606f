"""GeoSample datasets -> TRL's conversational datasets with images.

Input: a Hugging Face ``datasets`` table with the GeoSample columns (``id``,
``image`` as a path or the ``Image`` feature, ``lat``, ``lon`` and optional
labels). Output, for TRL's trainers:

- SFT: ``prompt`` (the protocol's messages, with an image placeholder), ``completion``
  (one assistant message: the protocol's gold answer) and ``image``. TRL's
  vision collator fills the placeholder with the image and, for prompt/completion
  data, computes the loss on the completion only.
- GRPO: ``prompt`` and ``image``, plus every label column untouched: TRL passes
  the dataset's other columns to each reward function as keyword arguments
  (``lat=[...], lon=[...], country=[...], entities=[...]``).

Rows that cannot be used (missing or unreadable image file, invalid coordinates,
labels the protocol cannot write an answer from) are dropped and listed, never
left to crash the run half-way through an epoch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from georeason.types import PLACE_LEVELS

LABEL_COLUMNS = ("id", "lat", "lon", *PLACE_LEVELS, "locatable", "reasoning", "entities")


@dataclass
class Skipped:
    """Rows left out of training, with the reason for each (``(row id, reason)``)."""

    rows: list[tuple[str, str]] = field(default_factory=list)

    def add(self, row_id: Any, reason: str) -> None:
        self.rows.append((str(row_id), reason))

    def __len__(self) -> int:
        return len(self.rows)


def _is_offline() -> bool:
    from georeason.models import hub_offline

    return hub_offline()


def load_geo_dataset(
    name_or_path: str | os.PathLike[str],
    split: str = "train",
    *,
    max_samples: int | None = None,
    seed: int = 0,
) -> tuple[Any, Skipped]:
    """Load a GeoSample dataset and check it; return ``(dataset, skipped rows)``.

    ``name_or_path``: a ``save_to_disk`` folder (a ``DatasetDict`` -> ``split`` is
    taken), a ``.parquet``/``.csv``/``.json(l)`` file (read by
    :func:`georeason.tables.open_dataset`), or a hub dataset name. The image, lat, lon
    and id columns may go by the names of :mod:`georeason.tables` (``LAT``,
    ``latitude``, ``image_path``, ``IMG_ID`` ...); they are renamed to the GeoSample names.
    Image paths are resolved relative to the dataset's folder, checked, and the
    column is cast to the ``Image`` feature (decoded lazily, row by row).
    ``max_samples`` keeps a seeded random subset.
    """
    import datasets

    from georeason.tables import open_dataset

    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        ds, root, _ = open_dataset(path, split)
    elif text.startswith((".", "/", "~")) or _is_offline():
        raise FileNotFoundError(
            f"dataset {text!r} not found: no such folder or file"
            + (" (and the hub is offline, HF_HUB_OFFLINE is set)" if _is_offline() else "")
            + ". Build the synthetic world with `georeason synth --out DIR`, or point dataset_name at a "
            "folder saved with datasets' save_to_disk."
        )
    else:
        ds = datasets.load_dataset(text, split=split)
        root = Path.cwd()
    ds = _geosample_names(ds, text)
    if max_samples is not None and max_samples < len(ds):
        ds = ds.shuffle(seed=seed).select(range(max_samples))
    return _check_rows(ds, root)


def _geosample_names(ds: Any, source: str) -> Any:
    """``ds`` with its image, lat, lon (and id) columns under the GeoSample names, found by the
    vocabulary of :mod:`georeason.tables`; a clear error naming the columns when one is missing."""
    from georeason.tables import ID_COLUMNS, IMAGE_COLUMNS, coordinate_columns, detect_column

    names = list(ds.column_names)
    lat, lon = coordinate_columns(names, source=source)
    image = detect_column(names, None, IMAGE_COLUMNS, "image", source=source)
    ident = detect_column(names, None, ID_COLUMNS, "id", required=False, source=source)
    wanted = {image: "image", lat: "lat", lon: "lon"}
    if ident is not None and ident not in wanted:
        wanted[ident] = "id"
    rename = {c: new for c, new in wanted.items() if c is not None and c != new and new not in names}
    return ds.rename_columns(rename) if rename else ds


def _image_problem(cell: Any, root: Path) -> tuple[str | None, str | None]:
    """(resolved path or None, problem or None) of one image cell: a path string, or
    the undecoded ``Image`` feature (``{"bytes": ..., "path": ...}``). Only the header
    is read (cheap) — enough to catch missing files and non-images before training."""
    import io

    from PIL import Image, UnidentifiedImageError

    if isinstance(cell, dict) and cell.get("bytes"):
        source: Any = io.BytesIO(cell["bytes"])
        where, path = f"embedded image {cell.get('path') or ''}".strip(), None
    else:
        value = cell.get("path") if isinstance(cell, dict) else cell
        if not isinstance(value, str) or not value:
            return None, "no image"
        p = Path(value).expanduser()
        if not p.is_absolute():
            p = root / p
        if not p.is_file():
            return None, f"image file not found: {p}"
        source, where, path = p, str(p), str(p)
    try:
        with Image.open(source) as im:
            im.size  # noqa: B018
    except (UnidentifiedImageError, OSError) as e:
        return None, f"unreadable image {where}: {e}"
    return path, None


def _image_cells(ds: Any, batch_size: int = 256) -> Iterator[Any]:
    """The image column cell by cell, undecoded, a batch at a time (never all bytes at once)."""
    import datasets

    column = ds.select_columns(["image"])
    if isinstance(ds.features["image"], datasets.Image):
        column = column.cast_column("image", datasets.Image(decode=False))
    for batch in column.iter(batch_size=batch_size):
        yield from batch["image"]


def _check_rows(ds: Any, root: Path) -> tuple[Any, Skipped]:
    import datasets

    skipped = Skipped()
    ids = ds["id"] if "id" in ds.column_names else list(range(len(ds)))
    path_images = not isinstance(ds.features["image"], datasets.Image)
    keep: list[int] = []
    resolved: list[str | None] = []
    rows = zip(ds["lat"], ds["lon"], _image_cells(ds), strict=True)
    for i, (lat, lon, cell) in enumerate(rows):
        try:
            flat, flon = float(lat), float(lon)
            ok = math.isfinite(flat) and math.isfinite(flon) and abs(flat) <= 90 and abs(flon) <= 180
        except (TypeError, ValueError):
            ok = False
        if not ok:
            skipped.add(ids[i], f"invalid coordinates ({lat}, {lon})")
            continue
        path, problem = _image_problem(cell, root)
        if problem is not None:
            skipped.add(ids[i], problem)
            continue
        resolved.append(path)
        keep.append(i)
    if not keep:
        reasons = "; ".join(r for _, r in skipped.rows[:3])
        raise ValueError(f"no usable rows in the dataset (e.g. {reasons}).")
    if len(keep) < len(ds):
        ds = ds.select(keep)
    if path_images:
        # absolute paths, decoded lazily by the Image feature as TRL's collator reads rows
        ds = ds.remove_columns("image").add_column("image", resolved).cast_column("image", datasets.Image())
    return ds, skipped


def _label_columns(ds: Any) -> list[str]:
    return [c for c in LABEL_COLUMNS if c in ds.column_names]


def to_sft_dataset(ds: Any, protocol_name: str) -> tuple[Any, Skipped]:
    """GeoSample rows -> ``prompt`` / ``completion`` / ``image`` rows for TRL's SFTTrainer.

    The completion is ``protocol.format_answer(row)``: for Geo-R, the Chain of Region
    written from the ground truth (levels missing from the row are filled by
    reverse geocoding its coordinates, as the paper builds its SFT data).
    """
    from georeason.protocols import get_protocol

    protocol = get_protocol(protocol_name)
    prompt = protocol.messages()
    skipped = Skipped()
    answers: list[str | None] = []
    for row in ds.select_columns(_label_columns(ds)).to_list():  # labels only: images stay undecoded
        try:
            answers.append(protocol.format_answer(row))
        except ValueError as e:
            answers.append(None)
            skipped.add(row.get("id"), f"no gold answer: {e}")
    keep = [i for i, a in enumerate(answers) if a is not None]
    if not keep:
        raise ValueError(f"the {protocol.name} protocol could not write a gold answer for any row.")
    ds = ds.select(keep).select_columns(["image"])
    ds = ds.add_column("completion", [[{"role": "assistant", "content": answers[i]}] for i in keep])
    ds = ds.add_column("prompt", [prompt] * len(ds))
    return ds, skipped


def to_grpo_dataset(ds: Any, protocol_name: str) -> Any:
    """GeoSample rows -> ``prompt`` / ``image`` rows, labels kept for the reward functions."""
    from georeason.protocols import get_protocol

    prompt = get_protocol(protocol_name).messages()
    keep = ["image", *_label_columns(ds)]
    ds = ds.select_columns(keep)
    return ds.add_column("prompt", [prompt] * len(ds))
