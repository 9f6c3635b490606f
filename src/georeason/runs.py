"""The run kernel: a resumable run folder with a lock, its identity and append-only JSONL records.

``georeason eval`` and ``georeason data distill`` do long loops over images whose every
step costs model time. Both keep their results the same way, here:

- :class:`RunDir`: the output folder. :meth:`RunDir.open` creates it, takes a
  cross-platform lock (:mod:`filelock`; released by the OS if the process dies) so a
  second process writing to the same folder is refused with :class:`RunLockedError`,
  and undoes itself when the run fails before writing any record (a run that fails on
  its settings or its input leaves nothing behind; what was there before is never
  touched). :meth:`RunDir.claim` compares the settings that change the results
  (``identity``) with those in ``run.json``, field by field: another run's folder is
  refused with :class:`RunMismatchError` unless ``overwrite``.
- :class:`Records`: the records file, one JSON object per line with an ``id``, written
  **as the work completes**. Each batch goes out as one ``write``, then ``flush`` and
  ``fsync``: a crash, a ``kill -9`` or Ctrl-C loses at most the batch in flight.
  :meth:`Records.load` reads it back (:func:`read_records`: a torn last line is dropped
  and the file rewritten cleanly), optionally drops the failed records so that they are
  redone (``--retry-failed``), and knows which ids are done: a rerun skips them.
- :class:`Progress`: a rich bar on a terminal, a log line every few seconds otherwise.

Readers of finished runs (the eval report, ``data select``, the demo) use
:func:`read_records`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from georeason.jsonsafe import dumps

logger = logging.getLogger("georeason.runs")

#: the settings and bookkeeping of a run folder
RUN_FILE = "run.json"
#: the records file of ``georeason eval`` (read by the report, ``data select`` and the demo)
PREDICTIONS_FILE = "predictions.jsonl"

T = TypeVar("T")
R = TypeVar("R")


class RunLockedError(RuntimeError):
    """Another process is writing to the same run folder."""


class RunMismatchError(ValueError):
    """The run folder holds a run made with other settings."""


# ---------------------------------------------------------------------------
# JSON files
# ---------------------------------------------------------------------------


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented JSON (NaN as null) through a temporary file and a rename:
    a reader never sees half a file."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, p)


def _read_json(path: Path) -> dict[str, Any]:
    """The object in ``path``; empty when the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# ---------------------------------------------------------------------------
# the JSONL records
# ---------------------------------------------------------------------------


@dataclass
class ReadStats:
    """What :func:`read_records` found besides the records."""

    n_lines: int = 0
    n_records: int = 0
    truncated_tail: bool = False
    bad_lines: list[int] = field(default_factory=list)  # 1-based line numbers
    duplicates: int = 0
    rewritten: bool = False

    @property
    def n_dropped(self) -> int:
        """Lines not kept: the torn tail, unreadable lines, repeated ids."""
        return int(self.truncated_tail) + len(self.bad_lines) + self.duplicates


def _line(record: Mapping[str, Any]) -> str:
    return dumps(record) + "\n"


def read_records(
    path: str | os.PathLike[str], *, repair: bool = False
) -> tuple[list[dict[str, Any]], ReadStats]:
    """The records of a JSONL file, the **first** occurrence of each id.

    A last line without its newline that is not valid JSON is what a kill during a
    write leaves: it is dropped (a valid last line that only lacks its newline is
    kept). Invalid lines elsewhere and repeated ids are dropped too, and counted. The
    first occurrence of an id wins because records are only ever appended for ids not
    done yet: a repeat can only come from outside (two files concatenated), and the
    first line is the one a resumed run already skipped on. With ``repair``, when
    anything was dropped the file is rewritten atomically with the good records only,
    so appends start on a clean line.
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
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or "id" not in rec:
                raise ValueError("not a record")
        except (ValueError, UnicodeDecodeError):
            if k == len(lines) - 1:
                stats.truncated_tail = True
            else:
                stats.bad_lines.append(k + 1)
            continue
        rid = str(rec["id"])
        if rid in seen:
            stats.duplicates += 1
            continue
        seen.add(rid)
        records.append(rec)
    stats.n_records = len(records)
    if repair and (stats.n_dropped or not ends_clean):
        write_records(p, records)
        stats.rewritten = True
    return records, stats


def write_records(path: str | os.PathLike[str], records: Iterable[Mapping[str, Any]]) -> None:
    """Replace ``path`` atomically with ``records``, one JSON object per line."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for rec in records:
            f.write(_line(rec))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)


class Records:
    """The append-only records file of a run (see the module docstring)."""

    def __init__(self, path: Path, log: Callable[[str], None] = logger.info) -> None:
        self.path = path
        self.log = log
        self.done: set[str] = set()
        self.stats = ReadStats()
        self._fh: IO[str] | None = None

    def load(
        self, *, retry: Callable[[Mapping[str, Any]], bool] | None = None, unit: str = "images"
    ) -> list[dict[str, Any]]:
        """Read the records back, repairing the file; the ids in :attr:`done` are skipped.

        ``retry``: records it returns True for are removed from the file (atomically)
        and so done again: ``--retry-failed``.
        """
        records, self.stats = read_records(self.path, repair=True)
        if self.stats.truncated_tail:
            self.log(
                f"{self.path}: dropped a truncated last line (the previous run was interrupted mid-write)"
            )
        if self.stats.bad_lines or self.stats.duplicates:
            self.log(
                f"{self.path}: dropped {len(self.stats.bad_lines)} unreadable lines "
                f"and {self.stats.duplicates} duplicates"
            )
        if retry is not None:
            keep = [r for r in records if not retry(r)]
            if len(keep) != len(records):
                self.log(f"retrying {len(records) - len(keep)} {unit} whose previous attempt failed")
                write_records(self.path, keep)
                records = keep
        self.done = {str(r["id"]) for r in records}
        return records

    def append(self, batch: Sequence[Mapping[str, Any]]) -> None:
        """Append a batch of records: one write, then flush and fsync (a kill loses at most this batch)."""
        if self._fh is None:
            self._fh = self.path.open("a", encoding="utf-8")
        self._fh.write("".join(_line(r) for r in batch))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.done.update(str(r["id"]) for r in batch)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


# ---------------------------------------------------------------------------
# the run folder
# ---------------------------------------------------------------------------


def _short(value: Any, width: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


class RunDir:
    """A run folder: lock, ``run.json`` identity, records (see the module docstring).

    Args:
        path: the folder (created by :meth:`open`).
        records_file: the name of its records file.
        lock_file: the name of its lock file.
        command: what runs in it, for the lock message (``"georeason eval"``).
        log: receives what the records file needed (repairs, retries).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        records_file: str,
        lock_file: str = ".run.lock",
        command: str = "georeason run",
        log: Callable[[str], None] = logger.info,
    ) -> None:
        self.path = Path(path).expanduser()
        self.lock_path = self.path / lock_file
        self.command = command
        self.records = Records(self.path / records_file, log)
        self.info: dict[str, Any] = {}

    @property
    def run_file(self) -> Path:
        return self.path / RUN_FILE

    @contextlib.contextmanager
    def open(self) -> Iterator[RunDir]:
        """Create the folder and hold its lock for the body.

        If the body raises before a record reached the records file, what this call
        created is removed (the lock, ``run.json``, the folder and any parents it made).
        Raises :class:`RunLockedError` when another process holds the lock.
        """
        from filelock import FileLock, Timeout

        with self._undo_on_early_failure():
            lock = FileLock(self.lock_path, timeout=0)
            try:
                lock.acquire()
            except Timeout:
                raise RunLockedError(
                    f"another {self.command} is writing to {self.path} (lock {self.lock_path}); "
                    "wait for it or use another --out"
                ) from None
            try:
                yield self
            finally:
                self.records.close()
                lock.release()

    @contextlib.contextmanager
    def _undo_on_early_failure(self) -> Iterator[None]:
        out = self.path
        top = out.absolute()
        while not top.parent.exists():
            top = top.parent
        existed = out.exists()
        before = {p.name for p in out.iterdir()} if out.is_dir() else set()
        records = self.records.path
        size_before = records.stat().st_size if records.is_file() else None
        out.mkdir(parents=True, exist_ok=True)
        try:
            yield
        except BaseException:
            size = records.stat().st_size if records.is_file() else None
            if size == size_before or (size_before is None and not size):  # no record written
                with contextlib.suppress(OSError):
                    if not existed:
                        shutil.rmtree(top)  # the topmost folder this call created
                    else:
                        for p in out.iterdir():
                            if p.name not in before and (p.is_file() or p.is_symlink()):
                                p.unlink()
            raise

    def claim(
        self, identity: Mapping[str, Any], *, overwrite: bool = False, outputs: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Make the folder this run's, before anything is read or written in it.

        ``identity``: the settings that change the records; a folder holding records
        made with another is refused (:class:`RunMismatchError` lists the fields that
        differ), unless ``overwrite``, which removes the records, ``run.json`` and
        ``outputs`` (files or folders derived from the records) first. Returns the
        previous ``run.json`` (empty when none); :attr:`info` starts as the new one.
        """
        new = json.loads(json.dumps(dict(identity), default=str))  # as it reads back from run.json
        if overwrite:
            for name in (self.records.path.name, RUN_FILE, *outputs):
                p = self.path / name
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink(missing_ok=True)
        old = _read_json(self.run_file)
        old_id = old.get("identity")
        if isinstance(old_id, dict) and old_id != new:
            diffs = [
                f"{k}: {_short(old_id.get(k))} -> {_short(new.get(k))}"
                for k in [*new, *(k for k in old_id if k not in new)]
                if old_id.get(k) != new.get(k)
            ]
            raise RunMismatchError(
                f"{self.path} holds a run made with other settings ({'; '.join(diffs)}). Rerun with the "
                "same settings to resume, choose another --out, or pass --overwrite to start this folder again."
            )
        self.info = {"identity": new, "started": old.get("started") or _now()}
        return old

    def save(self, **fields: Any) -> None:
        """Write ``run.json``: :attr:`info` updated with ``fields`` and the time."""
        self.info.update(fields)
        self.info["updated"] = _now()
        write_json(self.run_file, self.info)


# ---------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------


def batched(items: Sequence[T], n: int) -> list[list[T]]:
    """``items`` in consecutive lists of ``n`` (the last one shorter)."""
    return [list(items[i : i + n]) for i in range(0, len(items), n)]


def read_ahead(
    batches: Sequence[Sequence[T]], fetch: Callable[[Sequence[T]], Iterable[R]]
) -> Iterator[tuple[Sequence[T], list[R]]]:
    """Each batch with what ``fetch`` loads for it, the next batch's fetch started first.

    ``fetch`` should start its work and return lazily (``executor.map``), so that the
    next batch's images are decoded while the model works on this one.
    """
    pending = fetch(batches[0]) if batches else None
    for b, batch in enumerate(batches):
        assert pending is not None
        loaded = list(pending)
        if b + 1 < len(batches):
            pending = fetch(batches[b + 1])
        yield batch, loaded


class Progress:
    """Progress of a long loop: a rich bar on a terminal, a log line every ``every`` seconds otherwise.

    It shows the items (``unit``: ``img``, ``rows``) done of ``total``, how many
    failed, their rate and the ETA. When the work is measured in something else than
    the items (``label`` reads a CSV's bytes and counts rows) name it ``total_unit``
    and pass ``position`` to :meth:`update`. ``unit="bytes"`` shows a download.

    Args:
        label: names the bar and starts each log line.
        total: the size of the work (None: unknown).
        done: items done before (a resumed run): counted, but not in the rate.
        enabled: the rich bar (default: when stderr is a terminal); else log lines.
        log: receives the log lines.
        failed_word: what failures are called (``failed``, ``bad``).
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        done: int = 0,
        unit: str = "img",
        total_unit: str | None = None,
        enabled: bool | None = None,
        log: Callable[[str], None] = logger.info,
        every: float = 10.0,
        failed_word: str = "failed",
    ) -> None:
        import sys

        self.label, self.total, self.unit, self.log, self.every = label, total, unit, log, every
        self.total_unit = total_unit if total_unit != unit else None
        self.failed_word = failed_word
        self.count = self.count0 = done
        self.position = 0 if self.total_unit else done
        self.position0 = self.position
        self.failed = 0
        self.note = ""
        self.t0 = time.perf_counter()
        self._last_log = -math.inf  # the first update logs at once
        self.bar: Any = None
        if enabled if enabled is not None else sys.stderr.isatty():
            self._start_bar()

    def _start_bar(self) -> None:
        from rich import progress as rp
        from rich.markup import escape

        cols: list[Any] = [rp.TextColumn(f"[bold]{escape(self.label)}[/bold]"), rp.BarColumn()]
        if self.unit == "bytes":
            cols += [rp.DownloadColumn(), rp.TransferSpeedColumn(), rp.TimeRemainingColumn()]
        else:
            cols += [
                rp.TaskProgressColumn() if self.total_unit else rp.MofNCompleteColumn(),
                rp.TextColumn("{task.fields[status]}"),
                rp.TimeElapsedColumn(),
                rp.TextColumn("ETA"),
                rp.TimeRemainingColumn(),
            ]
        self.bar = rp.Progress(*cols)
        self.task = self.bar.add_task(self.label, total=self.total, completed=self.position, status="")
        self.bar.start()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the bar (its last state stays on the terminal)."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def status(self) -> str:
        """``F failed, R img/s`` (and the note): the bar's text after the count."""
        return self._counts(with_items=False) + (f"; {self.note}" if self.note else "")

    def _counts(self, *, with_items: bool) -> str:
        elapsed = time.perf_counter() - self.t0
        rate = (self.count - self.count0) / elapsed if elapsed > 0 else 0.0
        if with_items and self.total_unit:
            share = f" ({self.position / self.total:.0%} of the {self.total_unit})" if self.total else ""
            items = f"{self.count:,} {self.unit}{share}, "
        elif with_items:
            items = f"{self.count:,}/{self.total:,}" if self.total is not None else f"{self.count:,}"
            items += f" {self.unit}, "
        else:
            items = f"{self.count:,} {self.unit}, " if self.total_unit else ""
        rate_text = f"{rate:,.0f}" if rate >= 100 else f"{rate:.2f}"
        return f"{items}{self.failed:,} {self.failed_word}, {rate_text} {self.unit}/s"

    def eta(self) -> float | None:
        """Seconds left at this run's pace (None: not known yet)."""
        elapsed = time.perf_counter() - self.t0
        moved = self.position - self.position0
        if self.total is None or elapsed <= 0 or moved <= 0:
            return None
        return max(self.total - self.position, 0) / (moved / elapsed)

    def update(
        self,
        advance: int = 0,
        *,
        failed: int = 0,
        position: int | None = None,
        total: int | None = None,
        note: str | None = None,
    ) -> None:
        """``advance`` items more done, ``failed`` of them failed; ``position`` in ``total_unit``;
        ``note``: text shown after the counts."""
        self.count += advance
        self.failed += failed
        if total is not None:
            self.total = total
        if note is not None:
            self.note = note
        if position is not None:
            self.position = position
        elif not self.total_unit:
            self.position = self.count
        if self.bar is not None:
            self.bar.update(self.task, completed=self.position, total=self.total, status=self.status())
            return
        now = time.perf_counter()
        finished = self.total is not None and self.position >= self.total
        if now - self._last_log < self.every and not finished:
            return
        self._last_log = now
        eta = self.eta()
        left = "?" if eta is None else f"{eta:.0f}s"
        self.log(
            f"{self.label}: {self._counts(with_items=True)}, ETA {left}"
            + (f"; {self.note}" if self.note else "")
        )


__all__ = [
    "PREDICTIONS_FILE",
    "RUN_FILE",
    "Progress",
    "ReadStats",
    "Records",
    "RunDir",
    "RunLockedError",
    "RunMismatchError",
    "batched",
    "read_ahead",
    "read_records",
    "write_json",
    "write_records",
]
