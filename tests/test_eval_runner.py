"""georeason.eval.runner and `georeason eval`: records, resume, failures, kill-and-resume.

The kill-and-resume test runs `georeason eval` as a real subprocess with the ``hf``
backend on the tiny Qwen2.5-VL (random weights: its answers are not locations, so
its lines record parse failures; what is tested is that every image gets exactly
one line through SIGKILL, a torn last line, Ctrl-C and two resumes).

The in-process tests use ``AnswerBook``, a Backend that answers from a table
(id -> text or error): it stands for a model whose answers we choose, so the
runner's bookkeeping (geocoding GLOBE answers, failure kinds, resume, retries,
report figures) can be checked against hand-computed values.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from georeason.eval.runner import LOCK_FILE, BackendFailure, EvalConfig, make_record, run_eval
from georeason.infer.base import Backend, Request, Response
from georeason.protocols import get_protocol
from georeason.runs import PREDICTIONS_FILE, RunLockedError, RunMismatchError, read_records

F = Path(__file__).parent / "fixtures" / "benchmarks"
CSV_BENCH = F / "csv_bench"
# csv_bench rows (see scripts/make_benchmark_fixtures.py): img007 is a truncated JPEG, img013 is missing.
BROKEN = {"img007", "img013"}


class AnswerBook(Backend):
    """Answers each request from ``answers[id]`` (a str), or fails it when the entry is an Exception."""

    name = "answerbook"

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def generate(self, requests: list[Request], **kw: Any) -> list[Response]:
        out = []
        for r in requests:
            self.asked.append(r.id)
            assert r.image is not None and r.image.mode == "RGB"
            a = self.answers.get(r.id, "I cannot tell.")
            if isinstance(a, Exception):
                out.append(Response(id=r.id, text=None, error=str(a)))
            else:
                out.append(Response(id=r.id, text=a, seconds=0.01))
        return out


def globe(country: str, city: str) -> str:
    return f"<think>Signs and vegetation.</think><answer>country: {country}\ncity: {city}</answer>"


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


# --- the JSONL file ----------------------------------------------------------------------


def test_read_records_repairs_a_torn_file(tmp_path: Path) -> None:
    p = tmp_path / PREDICTIONS_FILE
    good = [{"id": f"i{k}", "v": k} for k in range(3)]
    text = "".join(json.dumps(r) + "\n" for r in good)
    text += "{not json}\n" + json.dumps({"id": "i1", "v": 99}) + "\n" + '{"id": "i3", "v"'  # torn write
    p.write_text(text)
    recs, stats = read_records(p)  # read-only: the file stays as it is
    assert [r["id"] for r in recs] == ["i0", "i1", "i2"] and recs[1]["v"] == 1  # first occurrence wins
    assert stats.truncated_tail and stats.bad_lines == [4] and stats.duplicates == 1 and not stats.rewritten
    assert p.read_text() == text
    recs, stats = read_records(p, repair=True)
    assert stats.rewritten
    assert p.read_text() == "".join(json.dumps(r) + "\n" for r in good)
    # A complete last line that only lacks its newline is kept (and the newline added).
    p.write_text(json.dumps(good[0]) + "\n" + json.dumps(good[1]))
    recs, stats = read_records(p, repair=True)
    assert [r["id"] for r in recs] == ["i0", "i1"] and not stats.truncated_tail
    assert p.read_text().endswith("}\n")


# --- one record --------------------------------------------------------------------------


META = {"id": "x", "lat": 35.0116, "lon": 135.7681, "country": "Japan", "city": "Kyoto"}


def test_record_geor_answer_with_coordinates() -> None:
    text = "<think>Temples.</think><answer>Country: Japan\nState: Kyoto\nCity: Kyoto\nCoordinates: (35.02, 135.76)</answer>"
    rec = make_record(
        META,
        completion=text,
        error=None,
        error_kind=None,
        seconds=0.5,
        protocol=get_protocol("geor"),
        geocode=False,
    )
    assert rec["coord_source"] == "answer" and rec["error_kind"] is None and rec["format_ok"] is True
    assert (rec["pred_lat"], rec["pred_lon"]) == (35.02, 135.76)
    assert rec["distance_km"] == pytest.approx(1.19, abs=0.01)  # 0.93 km north, 0.74 km west
    assert rec["true_country"] == "Japan" and rec["pred_country_code"] == "JP" and rec["pred_city"] == "Kyoto"


def test_record_globe_answer_is_geocoded() -> None:
    p = get_protocol("globe")
    rec = make_record(
        META,
        completion=globe("Japan", "Kyoto"),
        error=None,
        error_kind=None,
        seconds=None,
        protocol=p,
        geocode=True,
    )
    assert rec["coord_source"] == "geocoded:city" and rec["distance_km"] < 10
    assert rec["answer_lat"] is None  # the answer itself had no coordinates
    rec = make_record(
        META,
        completion=globe("Japan", "Atlantis City"),
        error=None,
        error_kind=None,
        seconds=None,
        protocol=p,
        geocode=True,
    )
    assert rec["coord_source"] == "geocoded:country"  # unknown city: the country's main place (Tokyo)
    assert 300 < rec["distance_km"] < 450
    rec = make_record(
        META,
        completion=globe("Japan", "Kyoto"),
        error=None,
        error_kind=None,
        seconds=None,
        protocol=p,
        geocode=False,
    )
    assert rec["error_kind"] == "parse" and "geocoding of names is off" in rec["error"]


def test_record_failures() -> None:
    p = get_protocol("geor")
    rec = make_record(
        META,
        completion="I think it is somewhere nice.",
        error=None,
        error_kind=None,
        seconds=None,
        protocol=p,
        geocode=True,
    )
    assert rec["error_kind"] == "parse" and rec["pred_lat"] is None and rec["format_ok"] is False
    assert rec["error"].startswith("no usable location in the answer")
    rec = make_record(
        META, completion=None, error="HTTP 503", error_kind="backend", seconds=None, protocol=p, geocode=True
    )
    assert rec["error_kind"] == "backend" and rec["error"] == "HTTP 503" and rec["completion"] is None


# --- run_eval in process -------------------------------------------------------------------


CITIES = {
    "img000": ("France", "Paris"),
    "img001": ("Japan", "Tokyo"),
    "img002": ("USA", "New York City"),
    "img003": ("Australia", "Sydney"),
    "img004": ("Egypt", "Cairo"),
    "img005": ("Brazil", "Rio de Janeiro"),
}


def _book() -> AnswerBook:
    answers: dict[str, Any] = {k: globe(*v) for k, v in CITIES.items()}
    answers["img006"] = globe("Russia", "Saint Petersburg")  # right country, 630 km off
    answers["img008"] = globe("Spain", "Madrid")  # truth Cape Town: wrong continent
    answers["img009"] = "no idea"  # unparseable
    answers["img010"] = RuntimeError("server overloaded (HTTP 503)")  # backend failure
    return AnswerBook(answers)


def _config(**kw: Any) -> EvalConfig:
    base: dict[str, Any] = {
        "benchmark": "csv",
        "data": str(CSV_BENCH),
        "model": "answerbook",
        "backend": "answerbook",
        "protocol": "globe",
        "batch_size": 4,
    }
    base.update(kw)
    return EvalConfig(**base)


def _run(out: Path, book: Backend, **kw: Any) -> Any:
    cfg_kw = {k: kw.pop(k) for k in list(kw) if k in ("limit", "model", "protocol", "batch_size")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fixture's missing image warns
        return run_eval(_config(**cfg_kw), out, backend=book, plots=False, n_bootstrap=0, **kw)


def test_run_records_every_image_and_its_failure(tmp_path: Path) -> None:
    book = _book()
    s = _run(tmp_path, book, limit=12)
    recs, _ = read_records(tmp_path / PREDICTIONS_FILE)
    by_id = {r["id"]: r for r in recs}
    assert [r["id"] for r in recs] == [f"img{k:03d}" for k in range(12)]
    assert "img007" not in book.asked  # a corrupt image never reaches the model
    assert by_id["img007"]["error_kind"] == "image" and "img007.jpg" in by_id["img007"]["error"]
    assert by_id["img009"]["error_kind"] == "parse"
    assert by_id["img010"]["error_kind"] == "backend" and "HTTP 503" in by_id["img010"]["error"]
    assert by_id["img011"]["error_kind"] == "parse"  # "I cannot tell."
    assert s.n_failed == {"image": 1, "backend": 1, "parse": 2}
    assert all(by_id[k]["coord_source"] == "geocoded:city" and by_id[k]["distance_km"] < 25 for k in CITIES)
    assert 550 < by_id["img006"]["distance_km"] < 700

    rep = s.report
    acc = rep["metrics"]["accuracy"]
    assert acc["acc@25km"]["value"] == pytest.approx(6 / 12)  # the six right cities, over all 12 images
    assert acc["acc@750km"]["value"] == pytest.approx(7 / 12)
    assert rep["failures"]["by_kind"] == {"image": 1, "backend": 1, "parse": 2}
    assert rep["failures"]["total"] == 4
    # hierarchy: truth from the benchmark's labels; named country right for 7 of the 12 (failures are misses)
    assert rep["hierarchy"]["truth_source"] == "labels"
    assert rep["hierarchy"]["named"]["country"]["correct"] == 7
    assert rep["hierarchy"]["named"]["city"]["correct"] == 6
    assert rep["coordinate_sources"] == {"geocoded:city": 8}
    md = (tmp_path / "report.md").read_text()
    assert "| acc@25km | 50.0 |" in md and "backend: 1" in md


def test_resume_skips_done_ids_and_retry_failed(tmp_path: Path) -> None:
    book = _book()
    _run(tmp_path, book, limit=10)
    first = _lines(tmp_path / PREDICTIONS_FILE)
    assert len(first) == 10
    book2 = _book()
    s = _run(tmp_path, book2)  # same settings, no limit: the rest only
    assert s.n_done_before == 10 and s.n_new == 20
    assert not set(book2.asked) & {f"img{k:03d}" for k in range(10)}
    lines = _lines(tmp_path / PREDICTIONS_FILE)
    assert lines[:10] == first  # nothing rewritten, nothing lost
    ids = [json.loads(x)["id"] for x in lines]
    assert len(ids) == 30 and len(set(ids)) == 30
    # Retry the image/backend failures, with a backend that now answers img010.
    book3 = _book()
    book3.answers["img010"] = globe("Japan", "Osaka")
    s = _run(tmp_path, book3, retry_failed=True)
    assert sorted(book3.asked) == ["img010"]  # corrupt/missing images are retried but never reach the model
    assert s.n_new == 3 and s.n_failed["image"] == 2
    recs, _ = read_records(tmp_path / PREDICTIONS_FILE)
    assert len(recs) == 30 and {r["id"]: r for r in recs}["img010"]["pred_city"] == "Osaka"


def test_other_settings_are_refused_then_overwritten(tmp_path: Path) -> None:
    _run(tmp_path, _book(), limit=4)
    with pytest.raises(RunMismatchError, match=r"model: 'answerbook' -> 'other'"):
        _run(tmp_path, _book(), limit=4, model="other")
    s = _run(tmp_path, _book(), limit=4, model="other", overwrite=True)
    assert s.n_done_before == 0 and s.n_new == 4


def test_concurrent_run_is_locked_out(tmp_path: Path) -> None:
    with (tmp_path / LOCK_FILE).open("a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RunLockedError, match="another georeason eval is writing"):
            _run(tmp_path, _book(), limit=2)


@pytest.mark.requires("httpx")
def test_dead_backend_stops_the_run(tmp_path: Path) -> None:
    """The real openai backend against a port where nothing listens: every request fails, the
    runner stops after 3 all-failed batches, and the lines it wrote say why."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    cfg = _config(
        backend="openai",
        model="m",
        batch_size=2,
        backend_options={"base_url": f"http://127.0.0.1:{port}/v1", "max_retries": 0, "timeout": 2},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(BackendFailure, match="3 batches in a row"):
            run_eval(cfg, tmp_path, plots=False, n_bootstrap=0)
    recs, _ = read_records(tmp_path / PREDICTIONS_FILE)
    assert len(recs) == 6 and all(r["error_kind"] == "backend" for r in recs)


# --- the CLI as a real process: kill -9, a torn line, Ctrl-C, resume -----------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from georeason.models import build_tiny_vlm, default_corpus

    return build_tiny_vlm(
        tmp_path_factory.mktemp("eval_tiny") / "model",
        corpus=default_corpus(max_places=1000, answers_per_protocol=100),
    )


def _wait_for_lines(proc: subprocess.Popen[bytes], path: Path, n: int, timeout: float = 240) -> int:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        k = len(_lines(path))
        if k >= n:
            return k
        if proc.poll() is not None:
            raise AssertionError(
                f"eval exited early ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}"
            )
        time.sleep(0.02)
    raise AssertionError(f"no {n} lines after {timeout}s")


@pytest.mark.slow
def test_kill_and_resume_loses_and_duplicates_nothing(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    preds = out / PREDICTIONS_FILE
    cmd = [
        sys.executable,
        "-m",
        "georeason",
        "eval",
        "--benchmark",
        "csv",
        "--data",
        str(CSV_BENCH),
        "--model",
        str(tiny_model),
        "--backend",
        "hf",
        "--backend-option",
        "device=cpu",
        "--out",
        str(out),
        "--batch-size",
        "2",
        "--max-new-tokens",
        "6",
        "--no-plots",
        "--bootstrap",
        "0",
        "--no-progress",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}

    # 1. SIGKILL after at least 2 batches: no chance to clean up.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_lines(proc, preds, 4)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    before_kill = _lines(preds)
    assert 4 <= len(before_kill) < 30
    # What a kill in the middle of a write leaves: a torn last line.
    with preds.open("a") as f:
        f.write(
            '{"id": "img0',
        )

    # 2. Resume, then Ctrl-C (SIGINT) a few batches later: a clean exit with code 130.
    # A shell starts background jobs with SIGINT ignored, and Python then installs no
    # KeyboardInterrupt handler: give the child the default disposition, as a terminal's would be.
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    _wait_for_lines(proc, preds, len(before_kill) + 4)
    assert proc.poll() is None, "the resumed run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    err_text = err.decode()
    assert proc.returncode == 130, err_text[-2000:]
    assert "dropped a truncated last line" in err_text
    assert f"resuming: {len(before_kill)} of 30 images already done" in err_text
    assert "rerun the same command to resume" in err_text
    after_int = _lines(preds)
    assert after_int[: len(before_kill)] == before_kill  # the earlier lines are untouched
    assert len(after_int) < 30

    # 3. Resume to the end.
    done = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    final = _lines(preds)
    recs = [json.loads(x) for x in final]  # every line is whole JSON
    ids = [r["id"] for r in recs]
    assert sorted(ids) == [f"img{k:03d}" for k in range(30)]  # every image exactly once
    assert final[: len(after_int)] == after_int  # nothing redone, nothing lost
    by_id = {r["id"]: r for r in recs}
    assert {k for k, r in by_id.items() if r["error_kind"] == "image"} == BROKEN
    assert "not found" in by_id["img013"]["error"]
    # The random-weight model's completions are recorded, each with a parse outcome.
    assert all(isinstance(r["completion"], str) for k, r in by_id.items() if k not in BROKEN)
    rep = json.loads((out / "report.json").read_text())
    assert rep["n_records"] == 30 and rep["failures"]["by_kind"]["image"] == 2
    assert "failed" in done.stdout.decode() + done.stderr.decode()

    # The report can be rebuilt alone.
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "georeason",
            "eval",
            "--report-only",
            "--out",
            str(out),
            "--no-plots",
            "--bootstrap",
            "0",
        ],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    assert "csv: 30 images" in res.stdout.decode()


# --------------------------------------------------------------------------- self-consistency


class SampleBook(Backend):
    """Answers each request with the K samples listed in ``answers[id]``."""

    name = "samplebook"

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[dict[str, Any]] = []

    def generate(self, requests: list[Request], **kw: Any) -> list[Response]:
        self.calls.append(kw)
        n = kw.get("n", 1)
        out = []
        for r in requests:
            texts = (self.answers.get(r.id) or ["I cannot tell."] * n)[:n]
            out.append(Response(id=r.id, text=texts[0], seconds=0.01, samples=texts if n > 1 else []))
        return out


def test_samples_are_reduced_to_one_answer_with_its_agreement(tmp_path: Path) -> None:
    wrong = globe("Spain", "Madrid")
    book = SampleBook(
        {
            "img001": [wrong, globe(*CITIES["img001"]), globe(*CITIES["img001"])],
            "img002": ["no idea", "no idea", globe(*CITIES["img002"])],
        }
    )
    config = _config(limit=3, samples=3, aggregate="vote", temperature=0.7, backend="samplebook")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_eval(config, tmp_path, backend=book, plots=False, n_bootstrap=0)
    assert all(call["n"] == 3 for call in book.calls)
    recs = {json.loads(line)["id"]: json.loads(line) for line in _lines(tmp_path / "predictions.jsonl")}
    one, two = recs["img001"], recs["img002"]
    assert one["completion"] == globe(*CITIES["img001"]) and len(one["samples"]) == 3
    assert one["coord_source"] == "consensus:vote"
    assert one["consensus"]["n_located"] == 3
    assert one["consensus"]["country_agreement"] == pytest.approx(2 / 3)
    assert one["distance_km"] is not None and one["distance_km"] < 50
    assert two["consensus"]["n_located"] == 1 and two["consensus"]["agreement_25km"] == pytest.approx(1 / 3)
    assert json.loads((tmp_path / "run.json").read_text())["config"]["samples"] == 3


def test_samples_need_a_temperature_and_a_known_aggregate() -> None:
    with pytest.raises(ValueError, match="temperature > 0"):
        _config(samples=4)
    with pytest.raises(ValueError, match="medoid, geomedian, vote"):
        _config(samples=4, temperature=0.7, aggregate="mean")


def test_greedy_runs_keep_their_identity() -> None:
    # Runs made before self-consistency existed must still resume: no new identity keys.
    assert "samples" not in _config().identity()


def test_sampled_run_report_has_confidence_tables_and_plot(tmp_path: Path) -> None:
    from georeason.eval.report import write_report

    # Per image, 4 samples: some unanimous and right, some split with the right answer in the majority.
    answers: dict[str, list[str]] = {}
    for k, (country, city) in CITIES.items():
        right = globe(country, city)
        answers[k] = (
            [right] * 4 if int(k[-1]) % 2 == 0 else [right, right, globe("Spain", "Madrid"), "no idea"]
        )
    book = SampleBook(answers)
    config = _config(limit=6, samples=4, aggregate="medoid", temperature=0.7, backend="samplebook")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_eval(config, tmp_path, backend=book, plots=False, n_bootstrap=0)
        report = write_report(tmp_path, plots=True, n_bootstrap=0)
    conf = report["confidence"]
    assert conf["method"] == "medoid" and conf["n_samples"] == 4
    assert [c["coverage"] for c in conf["coverage"]] == pytest.approx([k / 10 for k in range(1, 11)])
    confs = [b["confidence"] for b in conf["deciles"] if b["confidence"] is not None]
    assert confs == sorted(confs)  # least to most sure
    assert (
        report["plots"]["confidence"] == "confidence.png" and (tmp_path / "confidence.png").stat().st_size > 0
    )
    md = (tmp_path / "report.md").read_text()
    assert "## Confidence (self-consistency)" in md and "coverage %" in md


def test_greedy_report_has_no_confidence(tmp_path: Path) -> None:
    from georeason.eval.report import write_report

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _run(tmp_path, _book(), limit=3)
        report = write_report(tmp_path, plots=False, n_bootstrap=0)
    assert report["confidence"] is None
    assert "Confidence" not in (tmp_path / "report.md").read_text()
