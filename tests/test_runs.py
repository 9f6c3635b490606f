"""georeason.runs, the run kernel: the lock (held by a real second process), run.json
identity, the records file (torn tail, duplicates, retries, appends) and undo-on-early-failure.

Everything here uses real files in a temporary folder; the lock test starts a second
Python process that takes the folder's lock and keeps it until told to stop.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from georeason.runs import (
    RUN_FILE,
    Progress,
    RunDir,
    RunLockedError,
    RunMismatchError,
    batched,
    read_ahead,
    read_records,
    write_records,
)


def _run(path: Path, **kw: object) -> RunDir:
    return RunDir(path, records_file="records.jsonl", command="georeason test", **kw)  # type: ignore[arg-type]


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


# --- the lock ----------------------------------------------------------------------------


HOLDER = textwrap.dedent(
    """
    import sys
    from georeason.runs import RunDir

    run = RunDir(sys.argv[1], records_file="records.jsonl", command="georeason test")
    with run.open():
        print("locked", flush=True)
        sys.stdin.readline()  # hold the lock until the parent writes a line
    print("released", flush=True)
    """
)


def test_a_second_process_holding_the_lock_refuses_this_one(tmp_path: Path) -> None:
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "locked", holder.stderr.read() if holder.stderr else ""
        with pytest.raises(RunLockedError) as info, _run(out).open():
            pass
        msg = str(info.value)
        assert f"another georeason test is writing to {out}" in msg and "another --out" in msg
        # The refused run created nothing: the holder's folder is as it was.
        assert out.is_dir() and not (out / RUN_FILE).exists()
        holder.stdin.write("done\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=30)
    # Once the other process let go, the folder opens.
    with _run(out).open() as run:
        run.claim({"a": 1})
        run.records.append([{"id": "x"}])
    assert [json.loads(x)["id"] for x in _lines(out / "records.jsonl")] == ["x"]


def test_the_lock_is_released_when_the_body_raises(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(KeyError), _run(out).open() as run:
        run.records.append([{"id": "a"}])
        raise KeyError("boom")
    with _run(out).open() as run:  # not locked out by the failed run
        assert run.records.load() == [{"id": "a"}]


# --- identity ----------------------------------------------------------------------------


def test_identity_mismatch_names_the_fields_and_overwrite_starts_again(tmp_path: Path) -> None:
    out = tmp_path / "run"
    ident = {"model": "m1", "temperature": 0.0, "data": Path("/d")}
    with _run(out).open() as run:
        assert run.claim(ident) == {}
        run.save(extra=1)
        run.records.append([{"id": "a"}])
        (out / "report.md").write_text("old report")
    info = json.loads((out / RUN_FILE).read_text())
    assert info["identity"] == {"model": "m1", "temperature": 0.0, "data": "/d"} and info["extra"] == 1
    started = info["started"]

    with _run(out).open() as run:  # the same settings (a Path reads back as its text): resumes
        old = run.claim({"model": "m1", "temperature": 0.0, "data": "/d"})
        assert old["extra"] == 1 and run.info["started"] == started

    with pytest.raises(RunMismatchError) as e, _run(out).open() as run:
        run.claim({"model": "m2", "temperature": 0.7, "data": "/d", "samples": 4})
    msg = str(e.value)
    assert "model: 'm1' -> 'm2'" in msg and "temperature: 0.0 -> 0.7" in msg and "samples: None -> 4" in msg
    assert "data" not in msg.split("(")[1].split(")")[0]  # only what differs
    assert "same settings to resume" in msg and "another --out" in msg and "--overwrite" in msg
    assert (out / "records.jsonl").exists() and (out / "report.md").exists()  # nothing touched

    with _run(out).open() as run:
        assert run.claim({"model": "m2"}, overwrite=True, outputs=("report.md",)) == {}
        assert not (out / "records.jsonl").exists() and not (out / "report.md").exists()
        assert run.records.load() == []


# --- the records file --------------------------------------------------------------------


def test_torn_tail_bad_lines_and_duplicates(tmp_path: Path) -> None:
    p = tmp_path / "records.jsonl"
    good = [{"id": "a", "v": 1}, {"id": "b", "v": 2}]
    text = "".join(json.dumps(r) + "\n" for r in good)
    text += "[1, 2]\n" + json.dumps({"id": "a", "v": 99}) + "\n" + '{"id": "c", "v'  # a kill mid-write
    p.write_text(text)
    recs, stats = read_records(p)
    assert recs == good  # the first line of an id wins
    assert stats.truncated_tail and stats.bad_lines == [3] and stats.duplicates == 1 and stats.n_dropped == 3
    assert p.read_text() == text  # reading alone changes nothing

    logged: list[str] = []
    run = _run(tmp_path, log=logged.append)
    with run.open():
        assert run.records.load() == good
        assert run.records.done == {"a", "b"} and run.records.stats.n_dropped == 3
        run.records.append([{"id": "c", "v": 3}])
    assert [json.loads(x) for x in _lines(p)] == [*good, {"id": "c", "v": 3}]  # appended on a clean line
    assert any("dropped a truncated last line" in m for m in logged)
    assert any("1 unreadable lines and 1 duplicates" in m for m in logged)


def test_retry_failed_redoes_only_the_failed_records(tmp_path: Path) -> None:
    recs = [{"id": "a", "error": None}, {"id": "b", "error": "HTTP 503"}, {"id": "c", "error": None}]
    write_records(tmp_path / "records.jsonl", recs)
    logged: list[str] = []
    run = _run(tmp_path, log=logged.append)
    with run.open():
        kept = run.records.load(retry=lambda r: r["error"] is not None)
        assert [r["id"] for r in kept] == ["a", "c"] and run.records.done == {"a", "c"}
        run.records.append([{"id": "b", "error": None}])
    assert "retrying 1 images whose previous attempt failed" in logged
    final, _ = read_records(tmp_path / "records.jsonl")
    assert [(r["id"], r["error"]) for r in final] == [("a", None), ("c", None), ("b", None)]


def test_appends_are_whole_lines_and_nan_is_null(tmp_path: Path) -> None:
    with _run(tmp_path).open() as run:
        run.records.append([{"id": 1, "x": float("nan")}, {"id": 2, "x": 1.5}])
        run.records.append([{"id": 3, "x": "é"}])
    raw = (tmp_path / "records.jsonl").read_text(encoding="utf-8")
    assert raw.endswith("\n") and '"x": null' in raw and '"é"' in raw
    recs, stats = read_records(tmp_path / "records.jsonl")
    assert [r["id"] for r in recs] == [1, 2, 3] and stats.n_dropped == 0


# --- undo on early failure ---------------------------------------------------------------


def test_a_run_that_fails_before_any_record_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "run"
    with pytest.raises(ValueError), _run(out).open() as run:
        run.claim({"a": 1})
        run.save()
        raise ValueError("bad input")
    assert not (tmp_path / "new").exists()  # the parents it made are gone too


def test_an_early_failure_in_an_existing_folder_touches_nothing_that_was_there(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with _run(out).open() as run:
        run.claim({"a": 1})
        run.save()
        run.records.append([{"id": "a"}])
    (out / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(RuntimeError), _run(out).open() as run:
        run.claim({"a": 1})
        run.save(more=True)  # rewrites run.json, which was there: kept
        (out / "scratch.tmp").write_text("made by the failed run")
        raise RuntimeError("backend down")
    after = {p.name for p in out.iterdir()}
    assert "scratch.tmp" not in after and set(before) <= after
    assert (out / "notes.txt").read_text() == "mine" and (out / "records.jsonl").read_bytes() == before[
        "records.jsonl"
    ]


def test_a_failure_after_a_record_keeps_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt), _run(out).open() as run:
        run.claim({"a": 1})
        run.save()
        run.records.append([{"id": "a"}])
        raise KeyboardInterrupt
    assert (out / RUN_FILE).is_file() and read_records(out / "records.jsonl")[0] == [{"id": "a"}]


# --- the loop helpers --------------------------------------------------------------------


def test_batched_and_read_ahead_fetch_the_next_batch_first() -> None:
    assert batched([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]] and batched([], 3) == []
    events: list[str] = []

    def fetch(batch: list[int]) -> list[int]:
        events.append(f"fetch {batch}")
        return [x * 10 for x in batch]

    for batch, loaded in read_ahead(batched([1, 2, 3], 2), fetch):
        events.append(f"work {batch} {loaded}")
    assert events == ["fetch [1, 2]", "fetch [3]", "work [1, 2] [10, 20]", "work [3] [30]"]


def test_progress_log_lines_without_a_terminal() -> None:
    lines: list[str] = []
    bar = Progress("eval m", 10, done=4, enabled=False, log=lines.append, every=3600)
    bar.update(2, failed=1)  # the first update logs at once
    bar.update(2)  # within `every`: quiet
    bar.update(2, note="kept 5")  # the end always logs
    assert len(lines) == 2
    assert lines[0].startswith("eval m: 6/10 img, 1 failed, ") and " img/s, ETA " in lines[0]
    assert lines[1].startswith("eval m: 10/10 img, 1 failed, ") and lines[1].endswith("ETA 0s; kept 5")
    rows: list[str] = []
    lab = Progress(
        "label", 200, unit="rows", total_unit="bytes", enabled=False, log=rows.append, failed_word="bad"
    )
    lab.update(1000, failed=3, position=50)
    assert rows[0].startswith("label: 1,000 rows (25% of the bytes), 3 bad, ")
