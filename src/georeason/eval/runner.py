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
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from georeason.runs import (
    PREDICTIONS_FILE,
    Progress,
    RunDir,
    RunLockedError,
    RunMismatchError,
    batched,
    read_ahead,
)
from georeason.types import PLACE_LEVELS

if TYPE_CHECKING:  # pragma: no cover
    from georeason.datasets.benchmarks import BenchmarkDataset
    from georeason.infer.base import Backend, Request
    from georeason.types import Prediction

logger = logging.getLogger("georeason.eval")

LOCK_FILE = ".eval.lock"
GEOCODE_MODES = ("auto", "always", "never")
ERROR_KINDS = ("image", "backend", "parse")
LABELS = PLACE_LEVELS
# Protocols whose answers carry no coordinates (GLOBE: "country: X / city: Y").
NAME_ONLY_PROTOCOLS = frozenset({"globe"})
#: After this many consecutive batches in which every request failed in the backend, stop:
#: a model that cannot run should not burn through the benchmark writing errors.
MAX_FAILED_BATCHES = 3
#: what the report writes into the run folder (removed with the records by ``overwrite``)
REPORT_FILES = ("report.md", "report.json", "error_cdf.png", "world_map.png")


class BackendFailure(RuntimeError):
    """The backend failed on every request of several batches in a row."""


@dataclass
class EvalConfig:
    """What is evaluated and how. The fields of :meth:`identity` must match to resume a run."""

    benchmark: str = field(
        metadata={
            "help": "im2gps3k, yfcc4k, mp16-reason, hf, csv, exif, or synthetic (the world of `georeason demo` "
            "or `georeason synth`: --data runs/demo/world).",
            "aliases": ["-b"],
        }
    )
    data: str = field(metadata={"help": "The benchmark's folder (or table file for csv)."})
    model: str = field(
        metadata={"help": "Model folder / hub id (hf) or served name (openai).", "aliases": ["-m"]}
    )
    backend: str = field(default="hf", metadata={"help": "hf | openai | vllm."})
    protocol: str = field(
        default="geor", metadata={"help": "geor, geor_continent, globe, plain or cot.", "aliases": ["-p"]}
    )
    limit: int | None = field(default=None, metadata={"help": "Evaluate the first N images only."})
    batch_size: int = field(
        default=8,
        metadata={"help": "Images per backend call (openai: at least its concurrency, 8 by default)."},
    )
    max_new_tokens: int = field(default=512, metadata={"help": "Longest answer, in tokens."})
    max_pixels: int | None = field(
        default=None, metadata={"help": "Resize images to at most this many pixels (aspect kept)."}
    )
    temperature: float = field(
        default=0.0, metadata={"help": "0 = greedy; --samples K > 1 needs > 0 (e.g. 0.7)."}
    )
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling: keep the top-p probability mass."})
    seed: int | None = field(default=0, metadata={"help": "Sampling seed."})
    geocode_names: str = field(
        default="auto",
        metadata={
            "help": "Place answers without coordinates by their named city/country: auto (globe protocol "
            "only), always, never."
        },
    )
    backend_options: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "Backend options, e.g. base_url=http://127.0.0.1:8000/v1, concurrency=8, device=cpu."
        },
    )
    benchmark_options: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "Loader options, e.g. lat_col=latitude, split=test."}
    )
    samples: int = field(
        default=1,
        metadata={
            "help": "Self-consistency: sample K answers per image (one batched call) and keep the one "
            "--aggregate chooses; the report adds confidence plots."
        },
    )
    aggregate: str = field(
        default="medoid",
        metadata={
            "help": "How K samples become one answer: medoid (least summed distance to the others), "
            "geomedian (spherical geometric median), vote (majority country, then admin1, then city)."
        },
    )

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


def _meta(dataset: BenchmarkDataset, i: int) -> dict[str, Any]:
    row = dataset.table.iloc[i]
    meta: dict[str, Any] = {"id": str(row["id"]), "lat": float(row["lat"]), "lon": float(row["lon"])}
    for k in LABELS:
        if k in dataset.table.columns and row[k]:
            meta[k] = str(row[k])
    return meta


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
    from georeason.datasets.benchmarks import load_benchmark
    from georeason.images import ImageError, load_image
    from georeason.protocols import get_protocol

    t_start = time.perf_counter()
    run = RunDir(
        out_dir, records_file=PREDICTIONS_FILE, lock_file=LOCK_FILE, command="georeason eval", log=log
    )
    out, preds_path = run.path, run.records.path
    with run.open():
        run.claim(config.identity(), overwrite=overwrite, outputs=REPORT_FILES)
        if dataset is None:
            dataset = load_benchmark(config.benchmark, config.data, **config.benchmark_options)
        n_expected = len(dataset) if config.limit is None else min(config.limit, len(dataset))
        ids = dataset.ids[:n_expected]
        run.records.load(retry=_failed if retry_failed else None)
        todo = [i for i, rid in enumerate(ids) if rid not in run.records.done]
        n_before = n_expected - len(todo)
        run.save(
            config=asdict(config),
            benchmark={
                **{k: v for k, v in dataset.describe().items() if k not in ("problems", "missing_images")},
                "n_evaluated": n_expected,
            },
            georeason_version=_version(),
        )
        if n_before:
            log(f"resuming: {n_before} of {n_expected} images already done in {preds_path}")

        failed = dict.fromkeys(ERROR_KINDS, 0)
        n_new = 0
        if todo:
            protocol = get_protocol(config.protocol)
            own_backend = backend is None
            if backend is None:
                backend = _make_backend(config, log)
            failed_batches = 0
            pool = ThreadPoolExecutor(max_workers=max(1, image_workers))

            def load(i: int) -> tuple[Any, str | None]:
                try:
                    return load_image(dataset.image(i), max_pixels=config.max_pixels), None
                except ImageError as e:
                    return None, str(e)
                except Exception as e:  # anything else about this file is still this image's failure
                    return None, f"{type(e).__name__}: {e}"

            try:
                with Progress(progress_label, n_expected, done=n_before, enabled=progress, log=log) as bar:
                    # Decode the next batch's images while the model works on this one.
                    for batch, loaded in read_ahead(
                        batched(todo, config.batch_size), lambda b: pool.map(load, b)
                    ):
                        metas = [_meta(dataset, i) for i in batch]
                        recs, n_asked, n_backend_failed, first_error = _eval_batch(
                            config, backend, protocol, metas, loaded
                        )
                        run.records.append(recs)
                        n_fail = 0
                        for rec in recs:
                            if rec["error_kind"]:
                                failed[rec["error_kind"]] += 1
                                n_fail += 1
                        n_new += len(recs)
                        bar.update(len(recs), failed=n_fail)
                        if n_asked and n_backend_failed == n_asked:
                            failed_batches += 1
                            if failed_batches >= MAX_FAILED_BATCHES:
                                raise BackendFailure(
                                    f"the backend failed on every request of {failed_batches} batches in a row "
                                    f"(last error: {first_error}). {n_new} lines were written; fix the backend "
                                    "and rerun the same command with --retry-failed to redo the failed images."
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
        run.save()
        summary = EvalSummary(
            out_dir=out,
            n_expected=n_expected,
            n_done_before=n_before,
            n_new=n_new,
            n_failed=failed,
            seconds=time.perf_counter() - t_start,
            dropped_lines=run.records.stats.n_dropped,
        )
        if report and (n_before or n_new):
            from georeason.eval.report import write_report

            summary.report = write_report(out, reference=reference, plots=plots, n_bootstrap=n_bootstrap)
        elif report:
            log("no image was evaluated: no report written")
        return summary


def _failed(rec: Mapping[str, Any]) -> bool:
    """Redone by ``--retry-failed``: the image or the backend failed (a parse failure is the model's answer)."""
    return rec.get("error_kind") in ("image", "backend")


def _make_backend(config: EvalConfig, log: Callable[[str], None]) -> Backend:
    from georeason.infer.base import get_backend

    options = dict(config.backend_options)
    if config.max_pixels is not None:
        options.setdefault("max_pixels", config.max_pixels)
    if config.backend.strip().lower() == "hf":
        options.setdefault("batch_size", config.batch_size)
    log(f"loading {config.backend} backend for {config.model}")
    return get_backend(config.backend, config.model, **options)


def _eval_batch(
    config: EvalConfig,
    backend: Backend,
    protocol: Any,
    metas: Sequence[dict[str, Any]],
    loaded: Sequence[tuple[Any, str | None]],
) -> tuple[list[dict[str, Any]], int, int, str]:
    """The records of one batch: ``(records, requests sent, requests the backend failed, first error)``.

    An unreadable image is recorded without asking the model; a backend that raises or
    answers out of step fails this batch's requests only.
    """
    from georeason.infer.base import Request, Response

    messages = protocol.messages()
    requests: list[Request] = []
    req_pos: list[int] = []
    lines: list[dict[str, Any] | None] = [None] * len(metas)
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
        except Exception as e:  # the contract says never; a broken backend still costs only this batch
            logger.exception("backend.generate raised")
            responses = [
                Response(id=r.id, text=None, error=f"backend raised {type(e).__name__}: {e}")
                for r in requests
            ]
        if len(responses) != len(requests):
            why = f"backend returned {len(responses)} responses for {len(requests)} requests"
            responses = [Response(id=r.id, text=None, error=why) for r in requests]
    n_failed = 0
    for k, r_req, resp in zip(req_pos, requests, responses, strict=True):
        ok = resp.text is not None and resp.error is None and resp.id == r_req.id
        if not ok:
            n_failed += 1
            err = resp.error or (
                "no text returned" if resp.id == r_req.id else f"response id {resp.id!r} != {r_req.id!r}"
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
    first_error = next((r.error for r in responses if r.error), None) or "?"
    return [rec for rec in lines if rec is not None], len(requests), n_failed, first_error


def _version() -> str:
    try:
        from georeason import __version__

        return str(__version__)
    except Exception:  # pragma: no cover
        return "unknown"


__all__ = [
    "ERROR_KINDS",
    "LOCK_FILE",
    "BackendFailure",
    "EvalConfig",
    "EvalSummary",
    "RunLockedError",
    "RunMismatchError",
    "geocode_prediction",
    "make_record",
    "run_eval",
]
