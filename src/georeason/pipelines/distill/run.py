"""The distillation run: ask every teacher about every image not done yet, append
``records.jsonl`` (the run kernel, :mod:`georeason.runs`, keeps it resumable), then build
``dataset/`` and ``summary.json`` from the stored outputs."""

from __future__ import annotations

import functools
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from georeason.pipelines.distill.config import DistillConfig, DistillError, FilterConfig
from georeason.pipelines.distill.filters import decide, grounding_scores
from georeason.pipelines.distill.inputs import DistillInput, load_input
from georeason.pipelines.distill.teachers import Teacher, make_teacher, teacher_output
from georeason.rewards.grounding import Grounder, make_grounder
from georeason.runs import Progress, RunDir, batched, read_ahead, read_records, write_json, write_records
from georeason.types import PLACE_LEVELS

logger = logging.getLogger("georeason.pipelines")

RECORDS_FILE = "records.jsonl"
SUMMARY_FILE = "summary.json"
DATASET_DIR = "dataset"
LOCK_FILE = ".distill.lock"
_OUTPUT_COLUMNS = (
    *PLACE_LEVELS,
    "locatable",
    "locatability",
    "reasoning",
    "entities",
    "teacher",
    "agreement",
    "teacher_outputs",
)


@dataclass
class DistillSummary:
    """What :func:`run_distill` did and what the dataset holds."""

    out_dir: Path
    n_images: int
    n_done_before: int
    n_new: int
    n_kept: int
    dropped: dict[str, int]
    seconds: float
    dataset_path: Path | None
    dropped_lines: int = 0
    teacher_failures: dict[str, int] = field(default_factory=dict)
    judge_failures: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out_dir"] = str(self.out_dir)
        d["dataset_path"] = str(self.dataset_path) if self.dataset_path else None
        return d


def run_distill(
    src: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: DistillConfig,
    *,
    split: str = "train",
    id_col: str | None = None,
    image_col: str | None = None,
    lat_col: str | None = None,
    lon_col: str | None = None,
    image_root: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    retry_failed: bool = False,
    overwrite: bool = False,
    build_dataset: bool = True,
    teachers: Sequence[Teacher] | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = logger.info,
) -> DistillSummary:
    """Ask every teacher about every image not done yet, append ``records.jsonl``, build the dataset.

    Args:
        src: a ``datasets`` folder or a table of image paths (see :func:`load_input`).
        limit: distil the first N images only.
        retry_failed: redo the images where a teacher failed (backend error) or the
            image could not be read (their lines are removed first).
        overwrite: discard what ``out_dir`` holds and start again.
        build_dataset: write ``dataset/`` and ``summary.json`` at the end.
        teachers: already created teachers (default: from ``config.teachers``, created
            only when something is left to do).

    KeyboardInterrupt propagates after the batches already done are on disk.
    """
    from georeason.images import load_image
    from georeason.protocols import get_protocol

    t_start = time.perf_counter()
    specs = config.specs()
    if limit is not None and limit < 1:
        raise DistillError(f"limit must be >= 1, got {limit}")
    run = RunDir(
        out_dir, records_file=RECORDS_FILE, lock_file=LOCK_FILE, command="georeason data distill", log=log
    )
    out, rec_path = run.path, run.records.path
    with run.open():
        src_id = str(Path(src).expanduser().resolve())
        run.claim(config.identity(src_id), overwrite=overwrite, outputs=(SUMMARY_FILE, DATASET_DIR))
        data = load_input(
            src, split=split, id_col=id_col, image_col=image_col, lat_col=lat_col, lon_col=lon_col,
            image_root=image_root,
        )  # fmt: skip
        run.save(filters=asdict(config.filters))
        run.records.load(retry=_failed if retry_failed else None)
        n_total = len(data) if limit is None else min(limit, len(data))
        todo = [i for i in range(n_total) if data.ids[i] not in run.records.done]
        n_before = n_total - len(todo)
        if n_before:
            log(f"resuming: {n_before} of {n_total} images already done in {rec_path}")

        n_new = 0
        grounder = _make_grounder(config) if todo else None
        if todo:
            own = teachers is None
            if teachers is None:
                teachers = []
                for s in specs:
                    log(f"teacher {s.name}: {s.kind} {s.model}" + (f" at {s.base_url}" if s.base_url else ""))
                    teachers.append(make_teacher(s, config))
            if [t.spec.name for t in teachers] != [s.name for s in specs]:
                raise DistillError("the teachers given do not match config.teachers")
            messages = get_protocol("globe").messages()
            settings = {
                "max_new_tokens": config.max_new_tokens,
                "temperature": config.temperature,
                "top_p": config.top_p,
                "seed": config.seed,
            }
            pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="georeason-distill-img")
            tpool = ThreadPoolExecutor(
                max_workers=len(teachers), thread_name_prefix="georeason-distill-teacher"
            )

            def load(args: tuple[int, Any]) -> tuple[Any, str | None]:
                i, cell = args
                try:
                    return load_image(data.image_source(i, cell), max_pixels=config.max_pixels), None
                except Exception as e:  # this image's failure, recorded
                    return None, f"{type(e).__name__}: {e}"

            def fetch(batch: Sequence[int]) -> Iterator[tuple[Any, str | None]]:
                cells = data.cells(batch)
                return pool.map(load, list(zip(batch, cells, strict=True)))

            kept, dropped = 0, Counter[str]()
            try:
                with Progress("distill", n_total, done=n_before, enabled=progress, log=log) as bar:
                    # decode ahead while the teachers work
                    for batch, loaded in read_ahead(batched(todo, config.batch_size), fetch):
                        lines = _distill_batch(
                            data, batch, loaded, teachers, tpool, messages, settings, config.filters, grounder
                        )
                        run.records.append(lines)
                        n_new += len(lines)
                        for rec in lines:
                            if rec["decision"]["kept"]:
                                kept += 1
                            else:
                                dropped[str(rec["decision"]["reason"])] += 1
                        top = ", ".join(f"{k}: {v}" for k, v in dropped.most_common(3))
                        note = f"kept {kept}, dropped {dropped.total()}" + (f" ({top})" if top else "")
                        bar.update(len(lines), failed=sum(map(_failed, lines)), note=note)
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
                tpool.shutdown(wait=True)
                if own:
                    for t in teachers:
                        t.close()
        run.save(filters=asdict(config.filters))
        summary = DistillSummary(
            out_dir=out,
            n_images=n_total,
            n_done_before=n_before,
            n_new=n_new,
            n_kept=0,
            dropped={},
            seconds=0.0,
            dataset_path=None,
            dropped_lines=run.records.stats.n_dropped,
        )
        if build_dataset:
            run.records.close()  # finalize may rewrite the file (scores of a new grounder)
            finalize(
                out, data, config.filters, summary, limit=n_total, log=log, grounder=grounder,
                device=config.device, max_pixels=config.max_pixels,
            )  # fmt: skip
        if grounder is not None:
            grounder.close()
        summary.seconds = time.perf_counter() - t_start
        if build_dataset:
            write_json(out / SUMMARY_FILE, summary.to_dict())
        return summary


def _distill_batch(
    data: DistillInput,
    batch: Sequence[int],
    loaded: Sequence[tuple[Any, str | None]],
    teachers: Sequence[Teacher],
    tpool: ThreadPoolExecutor,
    messages: Any,
    settings: Mapping[str, Any],
    filters: FilterConfig,
    grounder: Grounder | None = None,
) -> list[dict[str, Any]]:
    """The records of one batch: every teacher is asked about the readable images at once
    (the teachers in parallel; an unreadable image asks no one), the entities they name are
    grounded in the images (``grounder``: none for the text grounder), then each image's decision."""
    from georeason.infer.base import Request

    t0 = time.perf_counter()
    reqs, imgs, where = [], [], []
    for k, (i, (img, _err)) in enumerate(zip(batch, loaded, strict=True)):
        if img is not None:
            reqs.append(Request(id=data.ids[i], image=img, messages=messages))
            imgs.append(img)
            where.append(k)
    ask = functools.partial(Teacher.run, requests=reqs, images=imgs, settings=settings)
    results = list(tpool.map(ask, teachers)) if reqs else []
    lines = []
    for k, (i, (_img, err)) in enumerate(zip(batch, loaded, strict=True)):
        rec: dict[str, Any] = {
            "id": data.ids[i],
            "row": i,
            "truth": data.truth[i],
            "image_error": err,
            "teachers": [],
        }
        if err is None:
            pos = where.index(k)
            for t, res in zip(teachers, results, strict=True):
                text, error, secs, py, jerr = res[pos]
                rec["teachers"].append(teacher_output(t.spec, text, error, secs, py, jerr, data.truth[i]))
        lines.append(rec)
    if grounder is not None:
        readable = [k for k, (img, _err) in enumerate(loaded) if img is not None]
        ground_records(
            [lines[k] for k in readable], [loaded[k][0] for k in readable], grounder, filters.grounder
        )
    for rec in lines:
        dec = decide(rec, filters)
        rec["decision"] = {"kept": dec.kept, "reason": dec.reason, "chosen": dec.chosen}
        rec["seconds"] = (time.perf_counter() - t0) / len(batch)
    return lines


def _make_grounder(config: DistillConfig) -> Grounder | None:
    """The grounder of ``config.filters`` when its scores must be stored (not the text one)."""
    from georeason.rewards.grounding import GroundingError

    if config.filters.grounder.strip() == "text":
        return None
    try:
        return make_grounder(config.filters.grounder, device=config.device, batch_size=config.batch_size)
    except GroundingError as e:
        raise DistillError(str(e)) from None


def ground_records(
    records: Sequence[dict[str, Any]], images: Sequence[Any], grounder: Grounder, spec: str
) -> None:
    """Store in each record (``record["grounding"]``) the score ``grounder`` gives every entity
    each teacher's reasoning names, under ``spec`` (the filters' grounder), for :func:`decide`."""
    if not records:
        return
    phrases = [
        list(dict.fromkeys(e for t in r["teachers"] for e in t.get("entities") or [])) for r in records
    ]
    scores = grounder(images if grounder.needs_image else None, phrases, [str(r["id"]) for r in records])
    for rec, row, sc in zip(records, phrases, scores, strict=True):
        by = dict(zip(row, sc, strict=True))
        per_teacher = [[float(by[e]) for e in t.get("entities") or []] for t in rec["teachers"]]
        rec["grounding"] = {"grounder": spec, "scores": per_teacher}


def _failed(rec: Mapping[str, Any]) -> bool:
    """Redone by ``--retry-failed``: the image could not be read or a teacher failed."""
    return bool(rec.get("image_error")) or any(t.get("error") is not None for t in rec.get("teachers") or [])


def _dataset_features() -> Any:
    from datasets import Features, List, Value

    teacher = {
        "name": Value("string"),
        "kind": Value("string"),
        "model": Value("string"),
        "completion": Value("string"),
        "error": Value("string"),
        "seconds": Value("float64"),
        "p_yes": Value("float64"),
        "judge_error": Value("string"),
        "format_ok": Value("bool"),
        "parse_errors": List(Value("string")),
        "country": Value("string"),
        "country_code": Value("string"),
        "admin1": Value("string"),
        "city": Value("string"),
        "reasoning": Value("string"),
        "pred_lat": Value("float64"),
        "pred_lon": Value("float64"),
        "geocode_level": Value("string"),
        "distance_km": Value("float64"),
        "entities": List(Value("string")),
    }
    return Features(
        {
            "continent": Value("string"),
            "country_code": Value("string"),
            "country": Value("string"),
            "admin1": Value("string"),
            "city": Value("string"),
            "locatable": Value("bool"),
            "locatability": Value("float64"),
            "reasoning": Value("string"),
            "entities": List(Value("string")),
            "teacher": Value("string"),
            "agreement": Value("int32"),
            "teacher_outputs": List(teacher),
        }
    )


def _ground_missing(
    out: Path,
    data: DistillInput,
    records: list[dict[str, Any]],
    filters: FilterConfig,
    n: int,
    grounder: Grounder | None,
    device: str,
    max_pixels: int | None,
    log: Callable[[str], None],
) -> None:
    """Ground the records that lack ``filters.grounder``'s scores, then rewrite ``records.jsonl``."""
    from georeason.images import load_image

    row_of = {data.ids[i]: i for i in range(n)}
    todo = [
        r
        for r in records
        if str(r["id"]) in row_of and not r.get("image_error") and grounding_scores(r, filters) is None
    ]
    if not todo:
        return
    own = grounder is None
    g = grounder or make_grounder(filters.grounder, device=device)
    log(f"grounding the entities of {len(todo)} images with {filters.grounder}")
    try:
        for chunk in batched(todo, 64):
            rows = [row_of[str(r["id"])] for r in chunk]
            images: list[Any] = [None] * len(rows)
            if g.needs_image:
                cells = data.cells(rows)
                images = [
                    load_image(data.image_source(i, c), max_pixels=max_pixels)
                    for i, c in zip(rows, cells, strict=True)
                ]
            ground_records(chunk, images, g, filters.grounder)
    finally:
        if own:
            g.close()
    write_records(out / RECORDS_FILE, records)


def finalize(
    out: Path,
    data: DistillInput,
    filters: FilterConfig,
    summary: DistillSummary,
    *,
    limit: int | None = None,
    log: Callable[[str], None] = logger.info,
    grounder: Grounder | None = None,
    device: str = "auto",
    max_pixels: int | None = None,
) -> None:
    """Recompute every decision from ``records.jsonl`` with ``filters`` and write ``dataset/``.

    Records without the entity scores of ``filters.grounder`` (a rerun with another
    grounder) are grounded first (``grounder``, or one made from the filters on
    ``device``; images loaded at ``max_pixels``) and ``records.jsonl`` is rewritten with them.
    """
    import shutil

    import datasets

    records, _ = read_records(out / RECORDS_FILE)
    by_id = {str(r["id"]): r for r in records}
    n = len(data) if limit is None else min(limit, len(data))
    _ground_missing(out, data, records, filters, n, grounder, device, max_pixels, log)
    kept_rows: list[int] = []
    new_cols: dict[str, list[Any]] = {k: [] for k in _OUTPUT_COLUMNS}
    dropped: Counter[str] = Counter()
    t_fail: Counter[str] = Counter()
    j_fail: Counter[str] = Counter()
    features = _dataset_features()
    teacher_keys = list(features["teacher_outputs"].feature.keys())
    for i in range(n):
        rec = by_id.get(data.ids[i])
        if rec is None:
            continue
        for t in rec.get("teachers") or []:
            if t.get("error"):
                t_fail[str(t.get("name"))] += 1
            elif t.get("p_yes") is None:
                j_fail[str(t.get("name"))] += 1
        dec = decide(rec, filters)
        if not dec.kept:
            dropped[str(dec.reason)] += 1
            continue
        outs = rec["teachers"]
        assert dec.chosen is not None
        chosen = outs[dec.chosen]
        truth = data.truth[i]
        kept_rows.append(i)
        for k in PLACE_LEVELS:
            new_cols[k].append(truth.get(k) or "")
        new_cols["locatable"].append(dec.locatable)
        new_cols["locatability"].append(dec.locatability)
        new_cols["reasoning"].append(chosen["reasoning"])
        new_cols["entities"].append(list(chosen.get("entities") or []))
        new_cols["teacher"].append(chosen["name"])
        new_cols["agreement"].append(len(dec.group))
        new_cols["teacher_outputs"].append([{k: t.get(k) for k in teacher_keys} for t in outs])
    summary.n_kept = len(kept_rows)
    summary.dropped = dict(dropped.most_common())
    summary.teacher_failures = dict(t_fail)
    summary.judge_failures = dict(j_fail)
    ds = data.dataset.select(kept_rows)
    # Canonical GeoSample names for the key columns; the labels and reasoning are ours.
    drop = [c for c in ds.column_names if c in _OUTPUT_COLUMNS]
    ds = ds.remove_columns(drop)
    renames = {data.image_col: "image", data.lat_col: "lat", data.lon_col: "lon"}
    # MP-16's IMG_ID is both the id and the image path: then "id" is added as a copy
    id_separate = bool(data.id_col) and data.id_col != data.image_col
    if id_separate:
        renames[str(data.id_col)] = "id"
    renames = {a: b for a, b in renames.items() if a != b}
    clash = [b for b in renames.values() if b in ds.column_names and b not in renames]
    if clash:
        ds = ds.remove_columns(clash)
    if renames:
        ds = ds.rename_columns(renames)
    if not id_separate:
        ds = ds.add_column("id", [data.ids[i] for i in kept_rows])
    if data.path_images:
        # Absolute paths: the dataset folder is elsewhere than the input's, so relative paths would break.
        ds = ds.remove_columns("image").add_column(
            "image", [str(data.resolve(str(c))) for c in data.paths(kept_rows)]
        )
    extra = datasets.Dataset.from_dict(new_cols, features=features)
    if kept_rows:
        merged = datasets.concatenate_datasets([ds, extra], axis=1)
    else:  # concatenating 0-row tables side by side loses the columns: build the empty table directly
        both = datasets.Features({**ds.features, **features})
        merged = datasets.Dataset.from_dict({k: [] for k in both}, features=both)
    front = ["id", "image", "lat", "lon", *_OUTPUT_COLUMNS]
    merged = merged.select_columns(front + [c for c in merged.column_names if c not in front])
    target = out / DATASET_DIR
    tmp = out / (DATASET_DIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    datasets.DatasetDict({"train": merged}).save_to_disk(str(tmp))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    summary.dataset_path = target
    log(
        f"{summary.n_kept} of {sum(1 for i in range(n) if data.ids[i] in by_id)} distilled images kept"
        + (f"; dropped: {', '.join(f'{k} {v}' for k, v in dropped.most_common())}" if dropped else "")
        + f"; dataset at {target}"
    )
    if not kept_rows:
        log("no image was kept: the dataset is empty (see the drop reasons above)")


__all__ = [
    "DATASET_DIR",
    "RECORDS_FILE",
    "SUMMARY_FILE",
    "DistillSummary",
    "finalize",
    "ground_records",
    "run_distill",
]
