"""Run a model over a benchmark, one JSONL line per image, resumable after any crash.

``georeason eval`` calls :func:`run_eval`. The output folder holds:

- ``run.json``: the settings (benchmark, data, model, backend, protocol,
  decoding) and what the loader fixed. A rerun with other settings into the
  same folder is refused (results of two models must not mix in one file).
- ``predictions.jsonl``: one line per image **as it completes**. Each batch is
  written with one ``write``, then ``flush`` and ``fsync``, so a crash, a
  ``kill -9`` or Ctrl-C loses at most the batch in flight. Rerunning the same
  command reads the file back, drops a truncated last line (rewriting the file
  cleanly), skips the ids already there and appends the rest: no image is done
  twice, none is lost. A lock file refuses a second process writing to the same
  folder at the same time.
- ``report.md`` / ``report.json`` / ``error_cdf.png`` / ``world_map.png``:
  :mod:`georeason.eval.report`, written at the end or with ``--report-only``.

Every image gets a line, also when it fails (``error_kind``):

- ``image``: missing, truncated or not an image (:class:`georeason.images.ImageError`);
- ``backend``: the backend returned an error for this request;
- ``parse``: the answer holds no usable location (no coordinates, and no place
  name that forward geocoding could resolve when that is enabled).

Failures count as misses in every metric (GeoScore 0, beyond every threshold)
and are counted by kind in the report. GLOBE-style answers (country and city,
no coordinates) are placed by offline forward geocoding
(:func:`georeason.geo.forward_geocode`); ``coord_source`` says where each
prediction's coordinates came from.

Line fields (flat, so ``georeason score predictions.jsonl`` reads them too):
``id, true_lat, true_lon, true_<label>..., completion, pred_lat, pred_lon,
coord_source, answer_lat, answer_lon, pred_continent, pred_country_code,
pred_country, pred_admin1, pred_city, format_ok, n_coordinates, parse_errors,
distance_km, error_kind, error, seconds``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from georeason.jsonsafe import dumps

if TYPE_CHECKING:  # pragma: no cover
    from georeason.datasets.benchmarks import BenchmarkDataset
    from georeason.infer.base import Backend, Request
    from georeason.types import Prediction

logger = logging.getLogger("georeason.eval")

PREDICTIONS_FILE = "predictions.jsonl"
RUN_FILE = "run.json"
LOCK_FILE = ".eval.lock"
GEOCODE_MODES = ("auto", "always", "never")
ERROR_KINDS = ("image", "backend", "parse")
LABELS = ("continent", "country_code", "country", "admin1", "city")
# Protocols whose answers carry no coordinates (GLOBE: "country: X / city: Y").
NAME_ONLY_PROTOCOLS = frozenset({"globe"})
#: After this many consecutive batches in which every request failed in the backend, stop:
#: a model that cannot run should not burn through the benchmark writing errors.
MAX_FAILED_BATCHES = 3


class RunMismatchError(ValueError):
    """The output folder holds a run made with other settings."""


class RunLockedError(RuntimeError):
    """Another process is writing to the same output folder."""


class BackendFailure(RuntimeError):
    """The backend failed on every request of several batches in a row."""


@dataclass
class EvalConfig:
    """What is evaluated and how. The fields of :meth:`identity` must match to resume a run."""

    benchmark: str
    data: str
    model: str
    backend: str = "hf"
    protocol: str = "geor"
    limit: int | None = None
    batch_size: int = 8
    max_new_tokens: int = 512
    max_pixels: int | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = 0
    geocode_names: str = "auto"
    backend_options: dict[str, Any] = field(default_factory=dict)
    benchmark_options: dict[str, Any] = field(default_factory=dict)
    samples: int = 1
    aggregate: str = "medoid"

    def __post_init__(self) -> None:
        from georeason.protocols import get_protocol

        get_protocol(self.protocol)  # ValueError listing the known ones
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        if self.max_pixels is not None and self.max_pixels < 28 * 28:
            raise ValueError(f"max_pixels must be >= 784 (28x28), got {self.max_pixels}")
        if self.geocode_names not in GEOCODE_MODES:
            raise ValueError(f"geocode_names must be one of {GEOCODE_MODES}, got {self.geocode_names!r}")
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        from georeason.consensus import AGGREGATORS

        if not isinstance(self.samples, int) or self.samples < 1:
            raise ValueError(f"samples must be an integer >= 1, got {self.samples!r}")
        if self.aggregate not in AGGREGATORS:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATORS)}, got {self.aggregate!r}")
        if self.samples > 1 and self.temperature == 0:
            raise ValueError(
                f"samples={self.samples} need a sampling temperature > 0 (e.g. --temperature 0.7): "
                "greedy decoding gives one answer every time"
            )

    @property
    def geocode(self) -> bool:
        """Whether answers without coordinates are placed by forward geocoding their names."""
        if self.geocode_names == "auto":
            return self.protocol.strip().lower() in NAME_ONLY_PROTOCOLS
        return self.geocode_names == "always"

    def identity(self) -> dict[str, Any]:
        """Settings that change the predictions: a resumed run must use the same."""
        return {
            "benchmark": self.benchmark,
            "data": str(Path(self.data).expanduser().resolve()),
            "model": self.model,
            "backend": self.backend,
            "protocol": self.protocol,
            "max_new_tokens": self.max_new_tokens,
            "max_pixels": self.max_pixels,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "geocode_names": self.geocode_names,
            "benchmark_options": self.benchmark_options,
            # only with self-consistency, so that runs made before it existed still resume
            **({"samples": self.samples, "aggregate": self.aggregate} if self.samples > 1 else {}),
        }


@dataclass
class EvalSummary:
    """What a call of :func:`run_eval` did."""

    out_dir: Path
    n_expected: int
    n_done_before: int
    n_new: int
    n_failed: dict[str, int]
    seconds: float
    dropped_lines: int = 0
    report: dict[str, Any] | None = None

    @property
    def n_done(self) -> int:
        return self.n_done_before + self.n_new


# ---------------------------------------------------------------------------
# the JSONL file
# ---------------------------------------------------------------------------


@dataclass
class ReadStats:
    n_lines: int = 0
    n_records: int = 0
    truncated_tail: bool = False
    bad_lines: list[int] = field(default_factory=list)
    duplicates: int = 0
    rewritten: bool = False


def read_records(
    path: str | os.PathLike[str], *, repair: bool = False
) -> tuple[list[dict[str, Any]], ReadStats]:
    """Records of a predictions file, first occurrence of each id.

    A last line without its newline or that is not valid JSON is what a kill
    during a write leaves: it is dropped. Invalid lines elsewhere and repeated
    ids are dropped too (and counted). With ``repair``, when anything was
    dropped the file is rewritten atomically with the good records only, so
    appends start on a clean line.
    """
    p = Path(path)
    stats = ReadStats()
    if not p.exists():
        return [], stats
    raw = p.read_bytes()
    lines = raw.split(b"\n")
    ends_clean = raw.endswith(b"\n") or not raw
    if lines and lines[-1] == b"":
        lines.pop()
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for k, line in enumerate(lines):
        stats.n_lines += 1
        is_last = k == len(lines) - 1
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or "id" not in rec:
                raise ValueError("not a record")
        except (ValueError, UnicodeDecodeError):
            if is_last:
                stats.truncated_tail = True
            else:
                stats.bad_lines.append(k + 1)
            continue
        # A last line that is valid JSON but lacks its newline is whole: kept (the rewrite adds it).
        rid = str(rec["id"])
        if rid in seen:
            stats.duplicates += 1
            continue
        seen.add(rid)
        records.append(rec)
    stats.n_records = len(records)
    needs_rewrite = stats.truncated_tail or stats.bad_lines or stats.duplicates or not ends_clean
    if repair and needs_rewrite:
        tmp = p.with_name(p.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
        stats.rewritten = True
    return records, stats


def write_records(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """Replace ``path`` atomically with ``records`` (one JSON object per line)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _json_float(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


# ---------------------------------------------------------------------------
# one record
# ---------------------------------------------------------------------------


def geocode_prediction(pred: Prediction) -> tuple[float, float, str] | None:
    """Coordinates of the place an answer names, offline: ``(lat, lon, level)`` or None.

    :func:`georeason.match.place_answer`'s rule (the one the rewards use): city in the
    named country, the city anywhere, the admin1, the country; ``level`` says which.
    """
    from georeason.match import place_by_names

    hit = place_by_names(pred)
    return None if hit is None else (hit.lat, hit.lon, hit.level)


def make_record(
    meta: dict[str, Any],
    *,
    completion: str | None,
    error: str | None,
    error_kind: str | None,
    seconds: float | None,
    protocol: Any,
    geocode: bool,
    samples: Sequence[str] | None = None,
    aggregate: str = "medoid",
) -> dict[str, Any]:
    """The JSONL line of one image. ``meta`` holds ``id``, ``lat``, ``lon`` and true labels.

    With ``samples`` (K > 1 sampled completions; ``completion`` is then ignored) the
    answers are reduced by :func:`georeason.consensus.aggregate`: the record's completion
    and place labels are the chosen sample's, its point the consensus point
    (``coord_source`` ``consensus:<method>``), and ``samples`` / ``consensus`` hold every
    completion and the agreement.
    """
    from georeason.geo import haversine_km

    rec: dict[str, Any] = {"id": meta["id"], "true_lat": meta["lat"], "true_lon": meta["lon"]}
    for k in LABELS:
        if meta.get(k):
            rec[f"true_{k}"] = meta[k]
    rec.update(
        {
            "completion": completion,
            "pred_lat": None,
            "pred_lon": None,
            "coord_source": None,
            "answer_lat": None,
            "answer_lon": None,
            **{f"pred_{k}": None for k in LABELS},
            "format_ok": None,
            "n_coordinates": None,
            "parse_errors": [],
            "distance_km": None,
            "error_kind": error_kind,
            "error": error,
            "seconds": _json_float(seconds),
        }
    )
    consensus = None
    if samples:
        from georeason.consensus import aggregate as reduce_samples

        preds = [protocol.parse(t) for t in samples]
        consensus = reduce_samples(preds, aggregate, geocode_names=geocode)
        chosen = consensus.index if consensus.index is not None else 0
        completion = samples[chosen]
        rec["completion"] = completion
        rec["samples"] = list(samples)
        rec["consensus"] = consensus.to_dict()
    if completion is None:
        return rec
    pred = protocol.parse(completion)
    rec.update(
        {
            "answer_lat": _json_float(pred.lat),
            "answer_lon": _json_float(pred.lon),
            **{f"pred_{k}": getattr(pred, k) or None for k in LABELS},
            "format_ok": bool(pred.format_ok),
            "n_coordinates": int(pred.n_coordinates),
            "parse_errors": list(pred.errors),
        }
    )
    lat, lon, source = pred.lat, pred.lon, "answer"
    if consensus is not None:
        lat, lon, source = consensus.lat, consensus.lon, f"consensus:{consensus.method}"
    elif lat is None or lon is None:
        lat = lon = None
        if geocode:
            hit = geocode_prediction(pred)
            if hit is not None:
                lat, lon, level = hit
                source = f"geocoded:{level}"
    if lat is None or lon is None:
        rec["error_kind"] = "parse"
        named = [k for k in ("country", "admin1", "city") if getattr(pred, k)]
        if named and geocode:
            why = f"names ({', '.join(named)}) that forward geocoding could not place"
        elif named:
            why = f"names ({', '.join(named)}) but no coordinates (geocoding of names is off)"
        else:
            why = "no place"
        detail = "; ".join(pred.errors[:3])
        rec["error"] = f"no usable location in the answer: {why}" + (f" [{detail}]" if detail else "")
        return rec
    rec["pred_lat"], rec["pred_lon"], rec["coord_source"] = float(lat), float(lon), source
    rec["distance_km"] = _json_float(haversine_km(meta["lat"], meta["lon"], float(lat), float(lon)))
    return rec


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def undo_on_early_failure(out_dir: Path, records_file: str) -> Iterator[None]:
    """Create ``out_dir``; if the body raises before a line reached ``out_dir/records_file``,
    remove what this call created (the lock, run.json, the folder and any parents it made),
    so a run that fails before doing any work leaves nothing behind. What was there
    before is never touched."""
    top = out_dir.absolute()
    while not top.parent.exists():
        top = top.parent
    existed = out_dir.exists()
    before = {p.name for p in out_dir.iterdir()} if out_dir.is_dir() else set()
    records = out_dir / records_file
    size_before = records.stat().st_size if records.is_file() else None
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        size = records.stat().st_size if records.is_file() else None
        if size == size_before or (size_before is None and not size):  # no record written
            with contextlib.suppress(OSError):
                if not existed:
                    import shutil

                    shutil.rmtree(top)  # the topmost folder this call created
                else:
                    for p in out_dir.iterdir():
                        if p.name not in before and (p.is_file() or p.is_symlink()):
                            p.unlink()
        raise


@contextlib.contextmanager
def _exclusive(out_dir: Path) -> Iterator[None]:
    """An advisory lock on the folder (released by the OS if the process dies)."""
    path = out_dir / LOCK_FILE
    fh = path.open("a+")
    try:
        try:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - not POSIX: no lock
            pass
        except OSError:
            raise RunLockedError(
                f"another georeason eval is writing to {out_dir} (lock {path}); wait for it or use another --out"
            ) from None
        yield
    finally:
        fh.close()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps(data, indent=2) + "\n", encoding="utf-8")  # NaN -> null
    os.replace(tmp, path)


def _check_run_file(out_dir: Path, config: EvalConfig, overwrite: bool) -> dict[str, Any] | None:
    path = out_dir / RUN_FILE
    if not path.exists():
        return None
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        old = {}
    if overwrite:
        return old
    old_id = old.get("identity")
    new_id = json.loads(json.dumps(config.identity(), default=str))
    if old_id is not None and old_id != new_id:
        diffs = [
            f"{k}: {old_id.get(k)!r} -> {new_id.get(k)!r}" for k in new_id if old_id.get(k) != new_id.get(k)
        ]
        raise RunMismatchError(
            f"{out_dir} holds a run made with other settings ({'; '.join(diffs)}). Rerun with the same "
            "settings to resume, choose another --out, or pass --overwrite to start this folder again."
        )
    return old


def _chunks(seq: Sequence[int], n: int) -> Iterator[list[int]]:
    for i in range(0, len(seq), n):
        yield list(seq[i : i + n])


def _meta(dataset: BenchmarkDataset, i: int) -> dict[str, Any]:
    row = dataset.table.iloc[i]
    meta: dict[str, Any] = {"id": str(row["id"]), "lat": float(row["lat"]), "lon": float(row["lon"])}
    for k in LABELS:
        if k in dataset.table.columns and row[k]:
            meta[k] = str(row[k])
    return meta


class _Progress:
    """A rich progress bar with ETA and failure count (plain log lines when not a terminal)."""

    def __init__(
        self, total: int, done: int, enabled: bool, log: Callable[[str], None], label: str = "eval"
    ) -> None:
        self.total, self.done, self.failed = total, done, 0
        self.log = log
        self.t0 = time.perf_counter()
        self.start_done = done
        self._last_log = 0.0
        self.bar: Any = None
        if enabled:
            from rich.markup import escape
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn(f"[bold]{escape(label)}[/bold]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("failed {task.fields[failed]}"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            )
            self.task = self.bar.add_task(label, total=total, completed=done, failed=0, rate="")

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def advance(self, n: int, failed: int) -> None:
        self.done += n
        self.failed += failed
        elapsed = time.perf_counter() - self.t0
        rate = (self.done - self.start_done) / elapsed if elapsed > 0 else 0.0
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done, failed=self.failed, rate=f"{rate:.2f} img/s")
            return
        now = time.perf_counter()
        if now - self._last_log >= 10 or self.done >= self.total:
            self._last_log = now
            left = self.total - self.done
            eta = f"{left / rate:.0f}s" if rate > 0 else "?"
            self.log(f"{self.done}/{self.total} images, {self.failed} failed, {rate:.2f} img/s, ETA {eta}")


def run_eval(
    config: EvalConfig,
    out_dir: str | os.PathLike[str],
    *,
    backend: Backend | None = None,
    dataset: BenchmarkDataset | None = None,
    retry_failed: bool = False,
    overwrite: bool = False,
    report: bool = True,
    reference: str | os.PathLike[str] | None = None,
    plots: bool = True,
    n_bootstrap: int = 1000,
    progress: bool | None = None,
    progress_label: str = "eval",
    image_workers: int = 4,
    log: Callable[[str], None] = logger.info,
) -> EvalSummary:
    """Evaluate ``config.model`` on ``config.benchmark``, appending to ``out_dir/predictions.jsonl``.

    Args:
        backend: an already created backend (default: :func:`georeason.infer.get_backend`
            from the config, created only when there is something left to do).
        dataset: an already loaded benchmark (default: :func:`load_benchmark`).
        retry_failed: redo the images whose line records an ``image`` or
            ``backend`` failure (their lines are removed first).
        overwrite: discard what ``out_dir`` holds and start again.
        report: write the report at the end (:func:`georeason.eval.report.write_report`).
        reference: published results CSV for the report (default: the shipped copy).
        plots: draw the PNGs with the report.
        progress: progress bar (default: when stderr is a terminal).
        progress_label: the progress bar's label (e.g. the model and split).
        image_workers: threads decoding images ahead of the model.
        log: receives progress and summary lines.

    Raises:
        RunMismatchError, RunLockedError, BackendFailure, DatasetNotFoundError,
        ValueError (bad settings). KeyboardInterrupt propagates after the
        batches already done are safely on disk.
    """
    import sys

    from georeason.datasets.benchmarks import load_benchmark
    from georeason.images import ImageError, load_image
    from georeason.infer.base import Request, Response
    from georeason.protocols import get_protocol

    t_start = time.perf_counter()
    out = Path(out_dir).expanduser()
    preds_path = out / PREDICTIONS_FILE
    with undo_on_early_failure(out, PREDICTIONS_FILE), _exclusive(out):
        old_run = _check_run_file(out, config, overwrite)
        if overwrite:
            for name in (
                PREDICTIONS_FILE,
                RUN_FILE,
                "report.md",
                "report.json",
                "error_cdf.png",
                "world_map.png",
            ):
                (out / name).unlink(missing_ok=True)
            old_run = None
        if dataset is None:
            dataset = load_benchmark(config.benchmark, config.data, **config.benchmark_options)
        n_expected = len(dataset) if config.limit is None else min(config.limit, len(dataset))
        ids = dataset.ids[:n_expected]

        records, stats = read_records(preds_path, repair=True)
        if stats.truncated_tail:
            log(f"{preds_path}: dropped a truncated last line (the previous run was interrupted mid-write)")
        if stats.bad_lines or stats.duplicates:
            log(
                f"{preds_path}: dropped {len(stats.bad_lines)} unreadable lines and {stats.duplicates} duplicates"
            )
        if retry_failed:
            keep = [r for r in records if r.get("error_kind") not in ("image", "backend")]
            if len(keep) != len(records):
                log(f"retrying {len(records) - len(keep)} images whose previous attempt failed")
                write_records(preds_path, keep)
                records = keep
        done = {str(r["id"]) for r in records}
        todo = [i for i, rid in enumerate(ids) if rid not in done]
        n_before = sum(1 for rid in ids if rid in done)

        run_info = {
            "identity": json.loads(json.dumps(config.identity(), default=str)),
            "config": json.loads(json.dumps(asdict(config), default=str)),
            "benchmark": {
                **{k: v for k, v in dataset.describe().items() if k not in ("problems", "missing_images")},
                "n_evaluated": n_expected,
            },
            "started": (old_run or {}).get("started") or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "georeason_version": _version(),
        }
        _write_json(out / RUN_FILE, run_info)
        if n_before:
            log(f"resuming: {n_before} of {n_expected} images already done in {preds_path}")

        failed = dict.fromkeys(ERROR_KINDS, 0)
        n_new = 0
        if todo:
            protocol = get_protocol(config.protocol)
            messages = protocol.messages()
            own_backend = backend is None
            if backend is None:
                from georeason.infer.base import get_backend

                options = dict(config.backend_options)
                if config.max_pixels is not None:
                    options.setdefault("max_pixels", config.max_pixels)
                if config.backend.strip().lower() == "hf":
                    options.setdefault("batch_size", config.batch_size)
                log(f"loading {config.backend} backend for {config.model}")
                backend = get_backend(config.backend, config.model, **options)
            show = sys.stderr.isatty() if progress is None else progress
            failed_batches = 0
            pool = ThreadPoolExecutor(max_workers=max(1, image_workers))

            def load(i: int) -> tuple[Any, str | None]:
                try:
                    return load_image(dataset.image(i), max_pixels=config.max_pixels), None
                except ImageError as e:
                    return None, str(e)
                except Exception as e:  # anything else about this file is still this image's failure
                    return None, f"{type(e).__name__}: {e}"

            batches = list(_chunks(todo, config.batch_size))
            try:
                with (
                    preds_path.open("a", encoding="utf-8") as fh,
                    _Progress(n_expected, n_before, show, log, progress_label) as bar,
                ):
                    # Decode the next batch's images while the model works on this one.
                    pending = pool.map(load, batches[0]) if batches else iter(())
                    for b, batch in enumerate(batches):
                        loaded = list(pending)
                        if b + 1 < len(batches):
                            pending = pool.map(load, batches[b + 1])
                        metas = [_meta(dataset, i) for i in batch]
                        requests: list[Request] = []
                        req_pos: list[int] = []
                        lines: list[dict[str, Any] | None] = [None] * len(batch)
                        for k, (meta, (img, err)) in enumerate(zip(metas, loaded, strict=True)):
                            if img is None:
                                lines[k] = make_record(
                                    meta,
                                    completion=None,
                                    error=err,
                                    error_kind="image",
                                    seconds=None,
                                    protocol=protocol,
                                    geocode=False,
                                )
                            else:
                                requests.append(Request(id=meta["id"], image=img, messages=messages))
                                req_pos.append(k)
                        responses: list[Response] = []
                        if requests:
                            try:
                                sampling = {"n": config.samples} if config.samples > 1 else {}
                                responses = backend.generate(
                                    requests,
                                    max_new_tokens=config.max_new_tokens,
                                    temperature=config.temperature,
                                    top_p=config.top_p,
                                    seed=config.seed,
                                    **sampling,
                                )
                            except KeyboardInterrupt:
                                raise
                            except (
                                Exception
                            ) as e:  # the contract says never; a broken backend still costs only this batch
                                logger.exception("backend.generate raised")
                                responses = [
                                    Response(
                                        id=r.id, text=None, error=f"backend raised {type(e).__name__}: {e}"
                                    )
                                    for r in requests
                                ]
                            if len(responses) != len(requests):
                                responses = [
                                    Response(
                                        id=r.id,
                                        text=None,
                                        error=f"backend returned {len(responses)} responses for {len(requests)} requests",
                                    )
                                    for r in requests
                                ]
                        n_backend_failed = 0
                        for k, r_req, resp in zip(req_pos, requests, responses, strict=True):
                            ok = resp.text is not None and resp.error is None and resp.id == r_req.id
                            if not ok:
                                n_backend_failed += 1
                                err = resp.error or (
                                    "no text returned"
                                    if resp.id == r_req.id
                                    else f"response id {resp.id!r} != {r_req.id!r}"
                                )
                            lines[k] = make_record(
                                metas[k],
                                completion=resp.text if ok else None,
                                error=None if ok else err,
                                error_kind=None if ok else "backend",
                                seconds=resp.seconds,
                                protocol=protocol,
                                geocode=config.geocode,
                                samples=resp.texts if ok and config.samples > 1 else None,
                                aggregate=config.aggregate,
                            )
                        recs = [rec for rec in lines if rec is not None]
                        # One write per batch, then flush + fsync: a kill loses at most this batch.
                        fh.write("".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in recs))
                        fh.flush()
                        os.fsync(fh.fileno())
                        n_fail = 0
                        for rec in recs:
                            if rec["error_kind"]:
                                failed[rec["error_kind"]] += 1
                                n_fail += 1
                        n_new += len(recs)
                        bar.advance(len(recs), n_fail)
                        if requests and n_backend_failed == len(requests):
                            failed_batches += 1
                            if failed_batches >= MAX_FAILED_BATCHES:
                                first = next(r.error for r in responses if r.error) if responses else "?"
                                raise BackendFailure(
                                    f"the backend failed on every request of {failed_batches} batches in a row "
                                    f"(last error: {first}). {n_new} lines were written; fix the backend and "
                                    "rerun the same command with --retry-failed to redo the failed images."
                                )
                        else:
                            failed_batches = 0
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
                if own_backend and backend is not None:
                    with contextlib.suppress(Exception):
                        backend.close()
        total_failed = sum(failed.values())
        log(
            f"{n_new} images evaluated now ({n_before} before), {total_failed} failed"
            + (f" ({', '.join(f'{k}: {v}' for k, v in failed.items() if v)})" if total_failed else "")
        )
        run_info["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        _write_json(out / RUN_FILE, run_info)
        summary = EvalSummary(
            out_dir=out,
            n_expected=n_expected,
            n_done_before=n_before,
            n_new=n_new,
            n_failed=failed,
            seconds=time.perf_counter() - t_start,
            dropped_lines=int(stats.truncated_tail) + len(stats.bad_lines) + stats.duplicates,
        )
        if report and (n_before or n_new):
            from georeason.eval.report import write_report

            summary.report = write_report(out, reference=reference, plots=plots, n_bootstrap=n_bootstrap)
        elif report:
            log("no image was evaluated: no report written")
        return summary


def _version() -> str:
    try:
        from georeason import __version__

        return str(__version__)
    except Exception:  # pragma: no cover
        return "unknown"


__all__ = [
    "ERROR_KINDS",
    "PREDICTIONS_FILE",
    "RUN_FILE",
    "BackendFailure",
    "EvalConfig",
    "EvalSummary",
    "RunLockedError",
    "RunMismatchError",
    "geocode_prediction",
    "make_record",
    "read_records",
    "run_eval",
    "undo_on_early_failure",
    "write_records",
]
