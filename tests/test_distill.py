"""`georeason data distill` (GLOBE's MP16-Reason builder) on the synthetic world.

Teachers:

- loopback fixed-answer servers (an OpenAI-compatible HTTP server in this process)
  whose answers per image and per served model are known, so the agreement and
  truth filters can be checked exactly, and reruns can be shown to ask nobody again;
- the tiny random-weight Qwen2.5-VL through a real ``georeason serve`` process and
  in process (``hf:PATH``): its answers are noise, so those tests check that the real
  path runs end to end, stores every teacher's raw output, and decides consistently.

A SIGKILLed CLI run resumes with no image lost or duplicated.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

datasets = pytest.importorskip("datasets")
PIL = pytest.importorskip("PIL")

from georeason.geo import haversine_km, names_match  # noqa: E402
from georeason.images import load_image  # noqa: E402
from georeason.pipelines.distill import (  # noqa: E402
    DistillConfig,
    DistillError,
    FilterConfig,
    decide,
    extract_entities,
    parse_teacher,
    run_distill,
)
from georeason.runs import RunMismatchError  # noqa: E402

N_IMAGES = 12


# ---------------------------------------------------------------------------
# a loopback OpenAI-compatible server with fixed answers per (model, image)
# ---------------------------------------------------------------------------


def image_key(img: Any) -> str:
    """The key the server computes from a received image (pixels, not file bytes)."""
    return hashlib.sha1(img.convert("RGB").tobytes() + repr(img.size).encode()).hexdigest()


class FixedAnswers:
    """answers[model][image key] = (completion text, P(yes))."""

    def __init__(self, delay: float = 0.0) -> None:
        self.answers: dict[str, dict[str, tuple[str, float]]] = {}
        self.delay = delay
        self.calls: list[tuple[str, str]] = []  # (model, "generate" | "judge")
        self.lock = threading.Lock()


def _handler(state: FixedAnswers) -> type[BaseHTTPRequestHandler]:
    from PIL import Image

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"data": [{"id": m} for m in state.answers]})
            else:
                self._send(404, {"error": "no such path"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            model = body["model"]
            url = next(
                p["image_url"]["url"]
                for m in body["messages"]
                if isinstance(m.get("content"), list)
                for p in m["content"]
                if p.get("type") == "image_url"
            )
            img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
            text, p_yes = state.answers[model][image_key(img)]
            judge = bool(body.get("logprobs"))
            with state.lock:
                state.calls.append((model, "judge" if judge else "generate"))
            if state.delay:
                time.sleep(state.delay)
            if judge:
                top = [
                    {"token": "yes", "logprob": math.log(max(p_yes, 1e-12))},
                    {"token": "no", "logprob": math.log(max(1 - p_yes, 1e-12))},
                ]
                choice = {
                    "message": {"role": "assistant", "content": "yes" if p_yes >= 0.5 else "no"},
                    "logprobs": {
                        "content": [
                            {"token": top[0]["token"], "logprob": top[0]["logprob"], "top_logprobs": top}
                        ]
                    },
                    "finish_reason": "length",
                }
            else:
                choice = {"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            self._send(200, {"id": "x", "object": "chat.completion", "model": model, "choices": [choice]})

    return Handler


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from georeason.datasets.synthetic import generate_world

    out = tmp_path_factory.mktemp("distill-world") / "world"
    generate_world(
        N_IMAGES, 2, image_size=56, seed=3, out_dir=out
    )  # n_test >= 1: datasets cannot reload an empty split
    return out


@pytest.fixture(scope="module")
def rows(world: Path) -> list[dict[str, Any]]:
    ds = datasets.load_from_disk(str(world))["train"]
    out = []
    for i, r in enumerate(ds.cast_column("image", datasets.Image(decode=False))):
        r = dict(r)
        r["key"] = image_key(load_image(r["image"]["bytes"]))
        r["row"] = i
        out.append(r)
    return out


def _answer(reasoning: str, country: str, city: str) -> str:
    return f"<think>{reasoning}</think><answer>country: {country}\ncity: {city}</answer>"


def _other_city(rows: list[dict[str, Any]], r: dict[str, Any]) -> str | None:
    """A city of the same country, far from the truth and not the same name."""
    for o in rows:
        if (
            o["country_code"] == r["country_code"]
            and haversine_km(o["lat"], o["lon"], r["lat"], r["lon"]) > 100
            and not names_match(o["city"], r["city"], country_code=r["country_code"])
        ):
            return str(o["city"])
    return None


def _plan(rows: list[dict[str, Any]]) -> dict[str, dict[str, tuple[str, float]]]:
    """Three personas: "truth" always right; "half" names a wrong country on odd rows;
    "citywrong" names a wrong city of the right country on rows divisible by 3.
    Every persona says P(yes) = 0.1 on rows divisible by 5."""
    plan: dict[str, dict[str, tuple[str, float]]] = {"truth": {}, "half": {}, "citywrong": {}}
    countries = sorted({r["country"] for r in rows})
    for r in rows:
        i = r["row"]
        low = i % 5 == 0
        reasoning = r["reasoning"] + " I also see palm trees near the Grand Bazaar."
        plan["truth"][r["key"]] = (_answer(reasoning, r["country"], r["city"]), 0.1 if low else 0.9)
        wrong_country = next(c for c in countries if c != r["country"])
        half = (
            _answer("ochre savanna.", wrong_country, "Nowhere")
            if i % 2
            else _answer("a road.", r["country"], r["city"])
        )
        plan["half"][r["key"]] = (half, 0.1 if low else 0.8)
        city = _other_city(rows, r) if i % 3 == 0 else r["city"]
        plan["citywrong"][r["key"]] = (
            _answer("signs.", r["country"], city or "Atlantis"),
            0.1 if low else 0.7,
        )
    return plan


@pytest.fixture()
def server(rows: list[dict[str, Any]]) -> Iterator[tuple[str, FixedAnswers]]:
    state = FixedAnswers()
    state.answers = _plan(rows)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", state
    finally:
        httpd.shutdown()
        httpd.server_close()


def _teachers(url: str, *models: str) -> list[str]:
    return [f"{m}=openai:{url}:{m}" for m in models]


def _records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------------
# pure parts
# ---------------------------------------------------------------------------


def test_parse_teacher_specs() -> None:
    t = parse_teacher("openai:http://127.0.0.1:8001/v1:qwen2.5-vl", 2)
    assert (t.name, t.kind, t.base_url, t.model) == ("t2", "openai", "http://127.0.0.1:8001/v1", "qwen2.5-vl")
    t = parse_teacher("openai:http://127.0.0.1:8001/v1")
    assert (t.base_url, t.model) == ("http://127.0.0.1:8001/v1", "auto")
    t = parse_teacher("openai:https://host:9/v1:Qwen/Qwen2.5-VL-7B-Instruct")
    assert (t.base_url, t.model) == ("https://host:9/v1", "Qwen/Qwen2.5-VL-7B-Instruct")
    t = parse_teacher("judge=hf:/models/a:b")
    assert (t.name, t.kind, t.model) == ("judge", "hf", "/models/a:b")
    for bad in ("vllm:/x", "openai:127.0.0.1:8000", "hf:", "nothing"):
        with pytest.raises(DistillError):
            parse_teacher(bad)
    with pytest.raises(DistillError, match="unique"):
        DistillConfig(teachers=["a=hf:/x", "a=hf:/y"])
    with pytest.raises(DistillError, match="min_agree=3"):
        DistillConfig(teachers=["hf:/x", "hf:/y"], filters=FilterConfig(min_agree=3))


def test_entities_recover_the_synthetic_clues(rows: list[dict[str, Any]]) -> None:
    """On the synthetic world's reasoning, the extractor finds exactly the annotated entities
    (clue phrases), and no place names (the answer is not a visual clue)."""
    checked = 0
    for r in rows:
        got = extract_entities(r["reasoning"])
        assert sorted(e.casefold() for e in got) == sorted(e.casefold() for e in r["entities"]), r[
            "reasoning"
        ]
        assert r["country"] not in got and r["city"] not in got
        checked += bool(r["entities"])
    assert checked >= N_IMAGES // 2


def test_entities_free_text() -> None:
    text = (
        "The street signs are written in Cyrillic script and the cars drive on the right. A large Orthodox "
        "cathedral with golden domes dominates the skyline; near it stands the Bolshoi Theatre. "
        "This must be Moscow, in Russia. Europe."
    )
    got = extract_entities(text)
    assert got[:2] == ["street signs", "Cyrillic script"]
    assert "golden domes" in got and "Bolshoi Theatre" in got
    for place in ("Moscow", "Russia", "Europe", "This"):
        assert place not in got
    assert extract_entities("") == [] and extract_entities("No clue at all.") == []
    assert len(extract_entities(" ".join(f"red sign{i} sign" for i in range(40)), max_entities=5)) == 5


def _out(
    name: str, country: str | None, city: str | None, dist: float | None, p: float | None = 0.9
) -> dict[str, Any]:
    from georeason.geo import normalize_country

    return {
        "name": name,
        "completion": "x",
        "error": None,
        "p_yes": p,
        "country": country,
        "country_code": normalize_country(country) if country else None,
        "city": city,
        "reasoning": "some reasoning",
        "distance_km": dist,
        "geocode_level": "city" if city else "country",
    }


def test_decide_rules() -> None:
    truth = {"country_code": "FR", "country": "France", "city": "Paris", "lat": 48.85, "lon": 2.35}
    rec = {"truth": truth, "teachers": [_out("a", "France", "Paris", 3.0), _out("b", "FR", "Paris", 3.0),
                                        _out("c", "Spain", "Madrid", 1000.0)]}  # fmt: skip
    assert decide(rec, FilterConfig()).reason == "teachers disagree"
    d = decide(rec, FilterConfig(min_agree=2))
    assert d.kept and d.group == [0, 1] and d.chosen == 0
    # a suburb within max_km counts as the city; farther does not; a city of the same name does
    rec2 = {
        "truth": truth,
        "teachers": [_out("a", "France", "Boulogne-Billancourt", 9.0), _out("b", "France", "Lyon", 392.0)],
    }
    assert decide(rec2, FilterConfig()).reason == "wrong city"
    assert decide(rec2, FilterConfig(truth_level="country")).kept
    assert decide(rec2, FilterConfig(min_agree=1)).chosen == 0
    assert decide(rec2, FilterConfig(max_km=5, min_agree=1)).reason == "wrong city"
    rec3 = {
        "truth": truth,
        "teachers": [_out("a", "Germany", "Berlin", 800.0), _out("b", "Deutschland", "Berlin", 800.0)],
    }
    assert decide(rec3, FilterConfig()).reason == "wrong country"
    assert decide(rec3, FilterConfig(truth_level="none")).kept
    assert decide(rec3, FilterConfig(truth_level="none", agree_on="city")).kept
    rec4 = {
        "truth": truth,
        "teachers": [_out("a", "France", "Paris", 3.0), _out("b", "France", "Marseille", 660.0)],
    }
    assert decide(rec4, FilterConfig(agree_on="city", truth_level="none")).reason == "teachers disagree"
    # locatability: mean of the judged teachers; none judged is its own reason
    rec5 = {
        "truth": truth,
        "teachers": [_out("a", "France", "Paris", 3.0, 0.2), _out("b", "France", "Paris", 3.0, None)],
    }
    d5 = decide(rec5, FilterConfig(min_locatability=0.5))
    assert (d5.reason, d5.locatability, d5.locatable) == ("not locatable", 0.2, False)
    rec6 = {"truth": truth, "teachers": [_out("a", "France", "Paris", 3.0, None)]}
    assert decide(rec6, FilterConfig(min_locatability=0.5)).reason == "no locatability judgement"
    assert decide(rec6, FilterConfig()).kept  # without the filter the missing judgement does not drop it
    failed = {**_out("a", None, None, None), "completion": None, "error": "HTTP 500"}
    assert (
        decide(
            {"truth": truth, "teachers": [failed, _out("b", "France", "Paris", 3.0)]}, FilterConfig()
        ).reason
        == "teachers failed"
    )
    assert (
        decide({"truth": truth, "image_error": "truncated", "teachers": []}, FilterConfig()).reason
        == "image unreadable"
    )
    unreadable = {**_out("a", None, None, None), "completion": "\n\n\n"}
    rec7 = {"truth": truth, "teachers": [unreadable, _out("b", "France", "Paris", 3.0)]}
    assert decide(rec7, FilterConfig()).reason == "no usable answer"
    assert decide(rec7, FilterConfig(min_agree=1)).kept
    no_city = {**_out("a", "France", None, None)}
    assert (
        decide({"truth": truth, "teachers": [no_city]}, FilterConfig(agree_on="city")).reason
        == "no usable answer"
    )
    no_text = {**_out("a", "France", "Paris", 3.0), "reasoning": None}
    assert decide({"truth": truth, "teachers": [no_text]}, FilterConfig()).reason == "no reasoning"


# ---------------------------------------------------------------------------
# runs against loopback teachers
# ---------------------------------------------------------------------------


def _expected(i: int, *, min_agree: int | None = None, min_loc: float | None = None) -> str | None:
    """The drop reason the plan implies for row i (None = kept)."""
    if min_loc is not None and i % 5 == 0:
        return "not locatable"
    half_right, city_right = i % 2 == 0, i % 3 != 0
    if min_agree is None:  # all three
        if not half_right:
            return "teachers disagree"
        return None if city_right else "wrong city"
    right = 1 + half_right + city_right
    return None if right >= min_agree else "wrong city"


@pytest.mark.slow
def test_distill_agreement_truth_and_rerun_filters(
    world: Path, rows: list[dict[str, Any]], server: tuple[str, FixedAnswers], tmp_path: Path
) -> None:
    url, state = server
    out = tmp_path / "run"
    cfg = DistillConfig(
        teachers=_teachers(url, "truth", "half", "citywrong"), batch_size=5, max_new_tokens=64
    )
    s = run_distill(world, out, cfg, progress=False)
    assert (s.n_images, s.n_new, s.n_done_before) == (N_IMAGES, N_IMAGES, 0)
    # every teacher was asked to answer and to judge each image exactly once
    assert sorted(state.calls) == sorted(
        (m, k) for m in ("truth", "half", "citywrong") for k in ("generate", "judge") for _ in range(N_IMAGES)
    )
    recs = {r["id"]: r for r in _records(out)}
    assert len(recs) == N_IMAGES
    expect = {r["id"]: _expected(r["row"]) for r in rows}
    for r in rows:
        rec = recs[r["id"]]
        assert rec["decision"]["reason"] == expect[r["id"]], (r["row"], rec["decision"])
        # every teacher's raw output is stored, with its parse and P(yes)
        assert [t["name"] for t in rec["teachers"]] == ["truth", "half", "citywrong"]
        for t in rec["teachers"]:
            assert t["completion"] == state.answers[t["name"]][r["key"]][0]
            assert t["p_yes"] == pytest.approx(state.answers[t["name"]][r["key"]][1], abs=1e-6)
    kept = sorted(k for k, v in expect.items() if v is None)
    assert s.n_kept == len(kept) and 0 < len(kept) < N_IMAGES
    assert s.dropped == {k: v for k, v in _count(expect.values()).items()}

    # the dataset: GeoSample columns, the truth labels, the truth teacher's reasoning and entities
    dd = datasets.load_from_disk(str(out / "dataset"))
    ds = dd["train"]
    assert sorted(ds["id"]) == kept
    for col in ("id", "image", "lat", "lon", "continent", "country_code", "country", "admin1", "city",
                "locatable", "reasoning", "entities", "locatability", "teacher", "agreement", "teacher_outputs"):  # fmt: skip
        assert col in ds.column_names
    by_id = {r["id"]: r for r in rows}
    for row in ds.select_columns([c for c in ds.column_names if c != "image"]):
        src = by_id[row["id"]]
        assert (row["country"], row["city"], row["lat"]) == (src["country"], src["city"], src["lat"])
        assert row["teacher"] == "truth" and row["reasoning"].startswith(src["reasoning"])
        assert set(src["entities"]) | {"palm trees", "Grand Bazaar"} == set(row["entities"])
        assert row["agreement"] == 3
        assert len(row["teacher_outputs"]) == 3 and row["locatability"] == pytest.approx(
            sum(state.answers[m][src["key"]][1] for m in ("truth", "half", "citywrong")) / 3
        )
    # train sft / grpo take it as it is
    from georeason.train.data import load_geo_dataset, to_grpo_dataset, to_sft_dataset

    loaded, skipped = load_geo_dataset(out / "dataset", "train")
    assert len(loaded) == len(kept) and len(skipped) == 0
    sft, no_answer = to_sft_dataset(loaded, "globe")
    assert len(sft) == len(kept) and len(no_answer) == 0
    assert sft[0]["completion"][0]["content"].startswith("<think>")
    grpo = to_grpo_dataset(loaded, "globe")
    assert "entities" in grpo.column_names and "prompt" in grpo.column_names

    # rerun with other filters: decisions recomputed from the stored outputs, nobody asked again
    n_calls = len(state.calls)
    for kwargs in ({"min_agree": 2}, {"min_agree": 1, "min_locatability": 0.5}):
        cfg2 = DistillConfig(
            teachers=cfg.teachers, batch_size=5, max_new_tokens=64, filters=FilterConfig(**kwargs)
        )
        s2 = run_distill(world, out, cfg2, progress=False)
        assert len(state.calls) == n_calls and s2.n_new == 0 and s2.n_done_before == N_IMAGES
        exp2 = {
            r["id"]: _expected(
                r["row"], min_agree=kwargs["min_agree"], min_loc=kwargs.get("min_locatability")
            )
            for r in rows
        }
        assert s2.dropped == _count(exp2.values())
        assert sorted(datasets.load_from_disk(str(out / "dataset"))["train"]["id"]) == sorted(
            k for k, v in exp2.items() if v is None
        )
    # other generation settings: refused
    with pytest.raises(RunMismatchError, match="other settings"):
        run_distill(world, out, DistillConfig(teachers=cfg.teachers, max_new_tokens=65), progress=False)


def _count(reasons: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in reasons:
        if r is not None:
            out[r] = out.get(r, 0) + 1
    return out


def test_distill_failures_are_recorded_not_fatal(
    world: Path, rows: list[dict[str, Any]], server: tuple[str, FixedAnswers], tmp_path: Path
) -> None:
    """A dead teacher (nothing listens) and a corrupt image: per-image records, counted reasons;
    --retry-failed redoes exactly those images."""
    from georeason.serve.process import free_port

    url, state = server
    dead = f"dead=openai:http://127.0.0.1:{free_port()}/v1:none"
    # a table of image paths, one of them corrupt
    img_dir = tmp_path / "imgs"
    img_dir.mkdir()
    lines = ["id,image,lat,lon"]
    for r in rows[:4]:
        (img_dir / f"{r['id']}.png").write_bytes(r["image"]["bytes"])
        lines.append(f"{r['id']},imgs/{r['id']}.png,{r['lat']},{r['lon']}")
    (img_dir / f"{rows[1]['id']}.png").write_bytes(b"not a png")
    table = tmp_path / "table.csv"
    table.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    cfg = DistillConfig(
        teachers=[*_teachers(url, "truth"), dead],
        filters=FilterConfig(min_agree=1),
        max_new_tokens=64,
        timeout=5,
    )
    from georeason.infer.openai_backend import OpenAIBackend

    # the dead server: no /models to ask, so the model name is given; no retries to keep it quick
    teachers = []
    from georeason.pipelines.distill import Teacher, make_teacher

    for spec in cfg.specs():
        if spec.name == "dead":
            teachers.append(
                Teacher(
                    spec, OpenAIBackend(spec.model, base_url=spec.base_url, max_retries=0, timeout=5), None
                )
            )
        else:
            teachers.append(make_teacher(spec, cfg))
    s = run_distill(table, out, cfg, teachers=teachers, progress=False)
    recs = {r["id"]: r for r in _records(out)}
    assert len(recs) == 4
    bad = recs[rows[1]["id"]]
    assert bad["image_error"] and bad["decision"]["reason"] == "image unreadable" and bad["teachers"] == []
    for rid in (rows[0]["id"], rows[2]["id"], rows[3]["id"]):
        dead_out = recs[rid]["teachers"][1]
        assert dead_out["completion"] is None and dead_out["error"] and dead_out["judge_error"]
        assert recs[rid]["decision"]["kept"]  # min_agree=1: the live truth teacher suffices
    assert s.n_kept == 3 and s.dropped == {"image unreadable": 1} and s.teacher_failures == {"dead": 3}
    ds = datasets.load_from_disk(str(out / "dataset"))["train"]
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in ds["image"])  # paths made absolute
    # all teachers required: the dead one makes every image fail
    s_all = run_distill(
        table, out, DistillConfig(teachers=cfg.teachers, max_new_tokens=64, timeout=5), progress=False
    )
    assert s_all.dropped == {"teachers failed": 3, "image unreadable": 1} and s_all.n_new == 0
    # retry: the image is fixed; only the 4 failed images are redone (the dead teacher is still dead)
    (img_dir / f"{rows[1]['id']}.png").write_bytes(rows[1]["image"]["bytes"])
    n_calls = len(state.calls)
    s3 = run_distill(table, out, cfg, teachers=teachers, retry_failed=True, progress=False)
    assert s3.n_new == 4 and len(_records(out)) == 4
    assert len(state.calls) - n_calls == 4 * 2  # generate + judge, truth teacher, 4 images
    assert s3.n_kept == 4


def test_distill_mp16_layout(
    rows: list[dict[str, Any]], server: tuple[str, FixedAnswers], tmp_path: Path
) -> None:
    """MP-16's CSV: IMG_ID is the image path (under --image-root) and the id; no labels (reverse-geocoded)."""
    from typer.testing import CliRunner

    from georeason.cli import app
    from georeason.commands import data_scale  # noqa: F401  (registers `data distill`)

    url, _ = server
    root = tmp_path / "mp16-images"
    lines = ["IMG_ID,AUTHOR,LAT,LON"]
    for r in rows[:3]:
        rel = f"{r['id'][-2:]}/{r['id']}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(r["image"]["bytes"])
        lines.append(f"{rel},someone,{r['lat']},{r['lon']}")
    (tmp_path / "mp16.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    args = ["data", "distill", str(tmp_path / "mp16.csv"), "--out", str(out), "--image-root", str(root),
            "--teacher", f"openai:{url}:truth", "--truth-level", "country", "--max-new-tokens", "64"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "kept 3" in res.output
    ds = datasets.load_from_disk(str(out / "dataset"))["train"]
    assert ds["id"] == [line.split(",")[0] for line in lines[1:]]
    assert all(Path(p).is_file() for p in ds["image"])
    assert ds["country_code"] == [r["country_code"] for r in rows[:3]]  # reverse-geocoded truth
    rec = _records(out)[0]
    assert rec["truth"]["source"] == "reverse_geocode"


# ---------------------------------------------------------------------------
# kill and resume (a real CLI process, SIGKILL)
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_killed_distill_resumes_without_loss_or_duplicates(
    world: Path, rows: list[dict[str, Any]], server: tuple[str, FixedAnswers], tmp_path: Path
) -> None:
    url, state = server
    state.delay = 0.15  # slow teachers: the kill lands mid-run
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "georeason.cli", "data", "distill", str(world), "--out", str(out),
           "--batch-size", "2", "--max-new-tokens", "64", "--min-agree", "2",
           *[a for t in _teachers(url, "truth", "half", "citywrong") for a in ("--teacher", t)]]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    rec_path = out / "records.jsonl"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if rec_path.exists() and rec_path.read_text().count("\n") >= 4:
                break
            if proc.poll() is not None:
                pytest.fail(f"distill ended before it could be killed: {proc.stdout.read().decode()[-2000:]}")  # type: ignore[union-attr]
            time.sleep(0.05)
        else:
            pytest.fail("no records after 120 s")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    n_before = rec_path.read_text().count("\n")
    assert 4 <= n_before < N_IMAGES
    # a kill during a write leaves a torn last line: simulate it on top
    with rec_path.open("a") as f:
        f.write('{"id": "synth3-train-0000')
    state.delay = 0.0
    done = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["n_done_before"] == n_before and summary["n_new"] == N_IMAGES - n_before
    assert summary["dropped_lines"] == 1
    recs = _records(out)
    ids = [r["id"] for r in recs]
    assert len(ids) == len(set(ids)) == N_IMAGES and set(ids) == {r["id"] for r in rows}
    # the resumed run agrees with the plan, as an uninterrupted one would
    exp = {r["id"]: _expected(r["row"], min_agree=2) for r in rows}
    assert {r["id"]: r["decision"]["reason"] for r in recs} == exp
    assert sorted(datasets.load_from_disk(str(out / "dataset"))["train"]["id"]) == sorted(
        k for k, v in exp.items() if v is None
    )


# ---------------------------------------------------------------------------
# real model teachers: the tiny VLM through `georeason serve` and in process
# ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.requires("fastapi")
def test_distill_with_tiny_model_teachers(
    world: Path,
    rows: list[dict[str, Any]],
    server: tuple[str, FixedAnswers],
    tmp_path: Path,
    tiny_backend_model: Path,
) -> None:
    """Three teachers: the fixed "truth" server, the tiny VLM served by `georeason serve`
    (a real process, openai backend) and the tiny VLM in process (hf backend)."""
    from georeason.serve.process import ServeProcess

    url, _ = server
    model_dir = tiny_backend_model
    args = ["--served-model-name", "tiny", "--device", "cpu", "--max-concurrency", "8"]
    with ServeProcess(model_dir, args=args, env={"HF_HUB_OFFLINE": "1"}) as proc:
        teachers = [*_teachers(url, "truth"), f"served=openai:{proc.base_url}:tiny", f"local=hf:{model_dir}"]
        cfg = DistillConfig(
            teachers=teachers,
            batch_size=6,
            max_new_tokens=24,
            device="cpu",
            filters=FilterConfig(min_agree=1),
        )
        s = run_distill(world, tmp_path / "run", cfg, limit=6, progress=False)
    recs = _records(tmp_path / "run")
    assert len(recs) == 6 and s.n_new == 6
    for rec in recs:
        names = [t["name"] for t in rec["teachers"]]
        assert names == ["truth", "served", "local"]
        for t in rec["teachers"][1:]:
            # the tiny model's raw output is stored whatever it is; a failure has its reason
            assert (t["completion"] is not None) != (t["error"] is not None)
            if t["completion"] is not None:
                # P(yes) from real log-probabilities, or the judge's reason for having none
                assert (t["p_yes"] is not None and 0.0 <= t["p_yes"] <= 1.0) or t["judge_error"]
        # the stored decision is what decide() computes from the stored outputs
        d = decide(rec, cfg.filters)
        assert (d.kept, d.reason) == (rec["decision"]["kept"], rec["decision"]["reason"])
        assert d.kept  # the truth teacher alone suffices with min_agree=1
    # the served and in-process tiny models are the same weights: same greedy text
    same = sum(r["teachers"][1]["completion"] == r["teachers"][2]["completion"] for r in recs)
    assert same >= 4
    # requiring all three: only images where both tiny teachers happen to be right survive
    s_all = run_distill(
        world,
        tmp_path / "run",
        DistillConfig(teachers=teachers, batch_size=6, max_new_tokens=24, device="cpu"),
        limit=6,
        progress=False,
    )
    expect_kept = sum(decide(r, FilterConfig()).kept for r in recs)
    assert s_all.n_kept == expect_kept and s_all.n_new == 0
