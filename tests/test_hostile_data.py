"""Hostile input (issue 13): long names, non-string completions, reward names, bad bytes
and broken tables, failing judges, escaping archives. Each test reproduces what broke."""

from __future__ import annotations

import contextlib
import re
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hostile import HostileStr, Unprintable  # tests/hostile.py

from georeason.geo.gazetteer import forward_geocode, gazetteer, names_match
from georeason.rewards import globe_accuracy, hierarchy

# ---------------------------------------------------------------------------
# 4. long names: a lookup costs O(log n) and copies nothing, whatever the name
# ---------------------------------------------------------------------------


def _cost(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, seconds, peak MB traced) of one call."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        out = fn()
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
    return out, seconds, peak


@pytest.fixture(scope="module", autouse=False)
def warm_gazetteer() -> None:
    gazetteer()
    forward_geocode("Paris", country="France")  # fills the small caches outside the measured calls


# A generous time bound: the broken lookups took 0.7 to 11 s (and up to 8.5 GB).
SLOW = 2.0


@pytest.mark.usefixtures("warm_gazetteer")
@pytest.mark.parametrize(
    "what",
    ["globe_accuracy true city", "hierarchy completion city", "forward_geocode city"],
)
def test_long_names_are_cheap(what: str) -> None:
    if what == "globe_accuracy true city":
        done = "<think>x</think><answer>country: France\ncity: Paris</answer>"
        out, seconds, peak = _cost(lambda: globe_accuracy([done], country=["France"], city=["Paris" * 600]))
        assert out == [pytest.approx(0.2)]
    elif what == "hierarchy completion city":
        done = f"<answer>Country: France\nCity: {'Lyon' * 49}abc\nCoordinates: (48.85, 2.35)</answer>"
        out, seconds, peak = _cost(lambda: hierarchy([done], country=["France"], city=["Paris"]))
        assert out[0] is not None and 0.0 <= out[0] < 1.0
    else:
        out, seconds, peak = _cost(lambda: forward_geocode(city="a" * 1000))
        assert out is None
    assert peak < 50, f"{what}: {peak:.0f} MB traced"
    assert seconds < SLOW, f"{what}: {seconds:.2f} s"


@pytest.mark.usefixtures("warm_gazetteer")
def test_name_longer_than_any_gazetteer_name_is_rejected_at_once() -> None:
    g = gazetteer()
    longest = max(g.city_index.keys, key=len)
    assert g.city_index.max_key_len == len(longest)
    assert len(g.city_index.get(longest))  # the longest name itself is still found
    assert not len(g.city_index.get(longest + "x"))
    assert g.admin1_index.with_suffix("|" + "x" * (g.admin1_index.max_key_len + 1)) == []


@pytest.mark.usefixtures("warm_gazetteer")
@pytest.mark.parametrize("qualifier", [", IN", ", France", ", Georgia"])
def test_many_comma_qualifiers_do_not_explode(qualifier: str) -> None:
    # Each qualifier after a comma has up to three readings (US state, country, admin1) and
    # was read recursively: twenty of them were 3**20 lookups (minutes for one name).
    name = "Zzqx" + qualifier * 20
    out, seconds, _ = _cost(lambda: forward_geocode(city=name))
    assert out is None
    assert seconds < SLOW
    done = f"<answer>Country: France\nCity: {name}\nCoordinates: (48.85, 2.35)</answer>"
    out, seconds, _ = _cost(lambda: hierarchy([done], country=["France"], city=[name]))
    assert seconds < SLOW
    assert not names_match(name, "Paris")


@pytest.mark.usefixtures("warm_gazetteer")
def test_qualified_names_still_read() -> None:
    assert forward_geocode("Springfield, Illinois, USA").admin1 == "Illinois"  # type: ignore[union-attr]
    assert forward_geocode("Paris, France").country_code == "FR"  # type: ignore[union-attr]


# ---------------------------------------------------------------------------
# 5. AnswerProtocol.parse never raises, whatever the object
# ---------------------------------------------------------------------------


def _deep(depth: int) -> list[Any]:
    x: list[Any] = []
    for _ in range(depth):
        x = [x]
    return x


def _self_referential() -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant"}
    msg["content"] = [msg]
    return msg


def hostile_objects() -> dict[str, Any]:
    """Completions (or column values) that are not what TRL hands over, built fresh."""
    return {
        "5,000-deep list": _deep(5000),
        "repr raises": Unprintable(),
        "str subclass with raising methods": HostileStr(
            "<answer>Country: France\nCity: Paris\nCoordinates: (48.85, 2.35)</answer>"
        ),
        "self-referential message": _self_referential(),
        "int past the digit limit": 10**5000,
        "generator": (c for c in "<answer>"),
        "message whose content raises": [{"role": "assistant", "content": Unprintable()}],
        "invalid UTF-8 bytes": b"\xff\xfe<answer>",
        "nan": float("nan"),
    }


@pytest.mark.parametrize("what", sorted(hostile_objects()))
def test_parse_never_raises_on_hostile_objects(what: str) -> None:
    from georeason.protocols import PROTOCOLS
    from georeason.types import Prediction

    completion = hostile_objects()[what]
    for proto in PROTOCOLS.values():
        pred = proto.parse(completion)
        assert isinstance(pred, Prediction) and isinstance(pred.raw, str) and len(pred.raw) <= 20_000
        if what == "str subclass with raising methods":
            assert not any(e.startswith("parser error") for e in pred.errors)  # read as the text it holds
            assert pred.lat == 48.85 or proto.name == "globe"
            assert type(pred.raw) is str
        elif what not in ("invalid UTF-8 bytes", "generator"):
            assert not pred.format_ok and pred.errors


def _all_rewards() -> dict[str, Callable[..., list[float | None]]]:
    from georeason.rewards import REWARDS, KeywordJudge, make_globe_locatability, make_visual_precision

    return {
        **REWARDS,
        "globe_locatability": make_globe_locatability(KeywordJudge()),
        "visual_precision": make_visual_precision("text"),
    }


@pytest.mark.parametrize("what", sorted(hostile_objects()))
def test_rewards_never_raise_on_hostile_completions_and_columns(what: str) -> None:
    import math

    from georeason.rewards import REWARD_RANGES

    good = "<think>a church</think><answer>Country: France\ncity: Paris\nCoordinates: (48.85, 2.35)</answer>"
    clean = {
        "lat": [48.85],
        "lon": [2.35],
        "country": ["France"],
        "city": ["Paris"],
        "entities": [["church"]],
    }
    for name, func in _all_rewards().items():
        lo, hi = REWARD_RANGES.get(name, (0.0, 1.0))
        # the hostile object as the completion, then as every truth column's value
        outs = [func([hostile_objects()[what]], **clean)]
        hostile_cols = {
            k: [hostile_objects()[what]] for k in ("lat", "lon", "country", "country_code", "city")
        }
        hostile_cols |= {"admin1": [hostile_objects()[what]], "continent": [hostile_objects()[what]]}
        outs.append(func([good], **hostile_cols, entities=[["church"]]))
        outs.append(func([good], **clean | {"entities": [hostile_objects()[what]]}))
        for out in outs:
            assert len(out) == 1
            assert out[0] is None or (math.isfinite(out[0]) and lo <= out[0] <= hi), (name, out)


# ---------------------------------------------------------------------------
# 6. every registered reward takes name=..., as load_rewards' advice says
# ---------------------------------------------------------------------------


def test_every_registered_reward_takes_a_name() -> None:
    from georeason.rewards import FACTORIES, REWARDS, get_reward

    for reward in sorted(set(REWARDS) | set(FACTORIES)):
        needs = {"globe_locatability": {"judge": "keyword"}, "visual_precision": {"grounder": "text"}}
        extra = needs.get(reward, {})
        func = get_reward(reward, name=f"{reward}_2", **extra)
        assert func.__name__ == f"{reward}_2", reward
        assert func is not REWARDS.get(reward)
        done = "<think>a sign</think><answer>country: France\ncity: Paris</answer>"
        out = func([done], lat=[48.85], lon=[2.35], entities=[["sign"]])
        assert len(out) == 1


def test_load_rewards_duplicate_advice_can_be_followed() -> None:
    from georeason.rewards import load_rewards

    with pytest.raises(ValueError, match="another name in its options") as info:
        load_rewards(["geoscore", "geoscore:0.5"])
    assert "geoscore" in str(info.value)
    funcs, weights = load_rewards(
        ["geoscore", "georeason.rewards.ours:make_geoscore:0.5"],
        {"georeason.rewards.ours:make_geoscore": {"name": "geoscore_globe", "protocol": "globe"}},
    )
    assert [f.__name__ for f in funcs] == ["geoscore", "geoscore_globe"] and weights == [1.0, 0.5]


# ---------------------------------------------------------------------------
# 7. data label: a bad byte costs its row, not the file; quoted newlines read right
# ---------------------------------------------------------------------------


def _errors(out: Path) -> list[dict[str, str]]:
    import csv

    from georeason.pipelines.label import errors_path_for

    with errors_path_for(out).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_label_rows_with_bad_bytes_go_to_the_errors_file(tmp_path: Path, suffix: str) -> None:
    import gzip

    import pyarrow.csv as pcsv

    from georeason.pipelines.label import label_table

    data = (
        b"IMG_ID,LAT,LON,title\n"
        b"a,48.8566,2.3522,ok\n"
        b"b,35.6895,139.6917,caf\xe9\n"  # Latin-1 in a free-text column
        b"c\xff,51.5074,-0.1278,x\n"  # and in the id
        b"d,-33.8688,151.2093,\xc3\xa9t\xc3\xa9\n"  # valid UTF-8
    )
    src = tmp_path / f"in{suffix}"
    src.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    out = tmp_path / "out.csv"
    s = label_table(src, out, progress=False)
    t = pcsv.read_csv(out)
    assert t.column("IMG_ID").to_pylist() == ["a", "d"]
    assert t.column("title").to_pylist() == ["ok", "été"]
    assert t.column("country_code").to_pylist() == ["FR", "AU"]
    assert s.n_rows == 2 and s.n_malformed == 2 and s.n_bad == 0
    assert s.bad_by_reason == {"invalid UTF-8 (not in the output)": 2}
    errs = _errors(out)
    assert [(e["row"], e["id"]) for e in errs] == [("", "b"), ("", "c\\xff")]
    assert errs[0]["reason"].startswith("invalid UTF-8 in column 'title' (byte 0xe9 at 3")
    assert errs[1]["reason"].startswith("invalid UTF-8 in column 'IMG_ID' (byte 0xff at 1")


def _rows_around_a_block_boundary(value: bytes, offset: int) -> tuple[bytes, int]:
    """A CSV whose quoted ``value`` starts ``offset`` bytes before the reader's first
    block boundary (1 MiB), so the boundary falls inside the quotes."""
    block = 1 << 20
    out = [b"IMG_ID,LAT,LON,title\n"]
    size, i = len(out[0]), 0
    while True:
        row = b"%d,48.8566,2.3522,plain\n" % i
        if size + len(row) > block - offset - 40:
            break
        out.append(row)
        size, i = size + len(row), i + 1
    prefix, quoted = b"%d,48.8566,2.3522," % i, b'%d,48.8566,2.3522,"' % (i + 1)
    pad = block - offset - size - len(prefix) - 1 - len(quoted)
    out.append(prefix + b"p" * pad + b"\n")
    out.append(quoted + value + b'"\n')
    out.extend(b"%d,35.6895,139.6917,tail\n" % (i + 2 + k) for k in range(3000))
    return b"".join(out), i + 2 + 3000


@pytest.mark.parametrize("offset", [8, 12, 20])
def test_label_quoted_newlines_across_a_chunk_boundary(tmp_path: Path, offset: int) -> None:
    import pyarrow.csv as pcsv

    from georeason.pipelines.label import label_table

    value = b"line one\nx,y,z\n\nline four, the end"
    data, n = _rows_around_a_block_boundary(value, offset)
    assert data.index(value) < (1 << 20) < data.index(value) + len(value)
    src = tmp_path / "in.csv"
    src.write_bytes(data)
    out = tmp_path / "out.csv"
    s = label_table(src, out, chunk_size=1000, progress=False)
    assert s.n_rows == n and s.n_malformed == 0 and s.errors_path is None
    t = pcsv.read_csv(out, parse_options=pcsv.ParseOptions(newlines_in_values=True))
    titles = t.column("title").to_pylist()
    assert value.decode() in titles  # whole, not cut at the boundary
    assert titles.count("tail") == 3000


# ---------------------------------------------------------------------------
# 8. data label: malformed lines are counted and fail the exit status; broken files are errors
# ---------------------------------------------------------------------------


def _label_cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from georeason.cli import app
    from georeason.commands import data_scale  # noqa: F401  (registers `data label`)

    return CliRunner().invoke(app, ["data", "label", *args])


def test_label_cli_reports_malformed_lines_and_exits_non_zero(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("IMG_ID,LAT,LON\na,48.8566,2.3522\nb,1,2,3\n")
    out = tmp_path / "out.csv"
    res = _label_cli(str(src), "--out", str(out))
    assert res.exit_code == 3, res.output
    assert "no bad rows" not in res.output
    assert "1 rows labelled" in res.output and "1 input lines left out" in res.output
    assert "1 lines left out of the output" in res.output and "malformed CSV line" in res.output
    assert out.exists()
    clean = tmp_path / "clean.csv"
    clean.write_text("IMG_ID,LAT,LON\na,48.8566,2.3522\n")
    res = _label_cli(str(clean), "--out", str(tmp_path / "clean_out.csv"))
    assert res.exit_code == 0 and "no bad rows" in res.output


def _broken_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    import gzip

    import pyarrow as pa
    import pyarrow.parquet as pq

    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"IMG_ID": ["a"] * 20000, "LAT": [1.0] * 20000, "LON": [2.0] * 20000}), good)
    pbytes = good.read_bytes()
    gz = gzip.compress(b"IMG_ID,LAT,LON\n" + b"".join(b"%d,1.0,2.0\n" % i for i in range(100_000)))
    files = {
        "empty.csv": (b"", "the CSV file is empty"),
        "header_not_utf8.csv": (b"IMG_ID,LAT,LON,t\xffitle\n1,2,3,4\n", "header line is not valid UTF-8"),
        "empty.parquet": (b"", "the Parquet file is empty"),
        "truncated.parquet": (pbytes[: len(pbytes) // 2], "not a readable Parquet file"),
        "corrupt.parquet": (
            pbytes[:4] + b"\x00" * (len(pbytes) - 8) + pbytes[-4:],
            "not a readable Parquet file",
        ),
        "truncated.csv.gz": (gz[: len(gz) // 2], "gzip stream is truncated or corrupt"),
        "not_gzip.csv.gz": (b"IMG_ID,LAT,LON\n1,2,3\n", "gzip stream is truncated or corrupt"),
    }
    out = {}
    for name, (data, message) in files.items():
        (tmp_path / name).write_bytes(data)
        out[name] = (tmp_path / name, message)
    return out


@pytest.mark.parametrize(
    "name",
    [
        "empty.csv",
        "header_not_utf8.csv",
        "empty.parquet",
        "truncated.parquet",
        "corrupt.parquet",
        "truncated.csv.gz",
        "not_gzip.csv.gz",
    ],
)
def test_label_broken_files_are_one_clear_error(tmp_path: Path, name: str) -> None:
    from georeason.pipelines.label import LabelError, errors_path_for, label_table

    src, message = _broken_inputs(tmp_path)[name]
    out = tmp_path / "out.parquet"
    with pytest.raises(LabelError, match=message):
        label_table(src, out, progress=False)
    assert not out.exists() and not errors_path_for(out).exists()
    assert not list(tmp_path.glob("out.parquet*"))  # no temporary file left behind
    res = _label_cli(str(src), "--out", str(out))
    assert res.exit_code != 0
    assert "Traceback" not in res.output and "error:" in res.output and message in res.output


# ---------------------------------------------------------------------------
# 9. data distill: a failing judge or teacher says why (HTTP server on loopback)
# ---------------------------------------------------------------------------


class _Replies:
    """What the loopback server answers, by model name (= the failure to play)."""

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()
        self.calls: dict[tuple[str, str], int] = {}

    def count(self, model: str, kind: str) -> int:
        with self.lock:
            self.calls[(model, kind)] = self.calls.get((model, kind), 0) + 1
            return self.calls[(model, kind)]


def _good_completion() -> str:
    return "<think>Signs in French.</think><answer>country: France\ncity: Paris</answer>"


def _serve_replies(replies: _Replies) -> Any:
    import json
    import math
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _raw(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client that timed out
                self.wfile.write(body)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            model = body["model"]
            judge = bool(body.get("logprobs"))
            kind = "judge" if judge else "generate"
            n = replies.count(model, kind)
            mode = model.split("-")[0] if model.endswith(f"-{kind}") else "ok"
            if mode == "http500":
                return self._raw(500, b'{"error": {"message": "model crashed"}}')
            if mode == "badjson":
                return self._raw(200, b'{"choices": [{"message": ')
            if mode == "badjsononce" and n == 1:
                return self._raw(200, b"<html>proxy error</html>")
            if mode == "empty":
                return self._raw(200, json.dumps({"id": "x", "choices": []}).encode())
            if mode == "null":
                message = {"role": "assistant", "content": None}
                return self._raw(
                    200, json.dumps({"choices": [{"message": message, "finish_reason": "stop"}]}).encode()
                )
            if mode == "slow":
                import time

                time.sleep(1.5)
            if judge:
                top = [{"token": "yes", "logprob": math.log(0.8)}, {"token": "no", "logprob": math.log(0.2)}]
                choice = {
                    "message": {"role": "assistant", "content": "yes"},
                    "logprobs": {
                        "content": [{"token": "yes", "logprob": top[0]["logprob"], "top_logprobs": top}]
                    },
                }
            else:
                choice = {
                    "message": {"role": "assistant", "content": _good_completion()},
                    "finish_reason": "stop",
                }
            return self._raw(200, json.dumps({"id": "x", "choices": [choice]}).encode())

    return Handler


@pytest.fixture()
def failing_server() -> Any:
    import threading
    from http.server import ThreadingHTTPServer

    replies = _Replies()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _serve_replies(replies))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", replies
    finally:
        httpd.shutdown()
        httpd.server_close()


def _backend(url: str, model: str, **kw: Any) -> Any:
    from georeason.infer.openai_backend import OpenAIBackend

    return OpenAIBackend(model, base_url=url, max_retries=2, timeout=kw.pop("timeout", 5), **kw)


def _request() -> Any:
    from PIL import Image

    from georeason.infer.base import Request

    return Request(
        id="0",
        image=Image.new("RGB", (8, 8), "white"),
        messages=[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "where?"}]}],
    )


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("http500", "HTTP 500 .*model crashed.*gave up after 3 attempts"),
        ("badjson", "invalid JSON.*gave up after 3 attempts"),
        ("empty", "no choices"),
        ("null", r"no content \(message.content is null"),
        ("slow", "timeout after 0.5 s.*gave up after 3 attempts"),
    ],
)
def test_openai_backend_failures_say_why(failing_server: Any, mode: str, reason: str) -> None:
    url, _ = failing_server
    backend = _backend(url, f"{mode}-generate", timeout=0.5)
    try:
        (resp,) = backend.generate([_request()], max_new_tokens=8)
        assert resp.text is None and resp.error is not None
        assert re.search(reason, resp.error), resp.error
    finally:
        backend.close()


def test_openai_backend_retries_a_200_with_invalid_json(failing_server: Any) -> None:
    url, replies = failing_server
    backend = _backend(url, "badjsononce-generate")
    try:
        (resp,) = backend.generate([_request()], max_new_tokens=8)
        assert resp.error is None and resp.text == _good_completion()
        assert replies.calls[("badjsononce-generate", "generate")] == 2
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("http500", "HTTP 500 .*model crashed.*gave up after 3 attempts"),
        ("badjson", "invalid JSON.*gave up after 3 attempts"),
        ("empty", "no choices"),
        ("slow", "timeout after 0.5 s"),
    ],
)
def test_distill_records_the_cause_of_each_failure(
    failing_server: Any, tmp_path: Path, mode: str, reason: str
) -> None:
    """A judge that fails and a teacher that fails, each in its own way: the records keep
    the cause (was: the same 'no yes/no log-probabilities' for every judge failure, and
    a null content stored as a successful empty answer)."""
    import json

    from PIL import Image

    from georeason.pipelines.distill import DistillConfig, FilterConfig, Teacher, run_distill

    url, _ = failing_server
    Image.new("RGB", (16, 16), "white").save(tmp_path / "a.png")
    table = tmp_path / "table.csv"
    table.write_text("id,image,lat,lon\na,a.png,48.8566,2.3522\n")
    names = {"judge": f"{mode}-judge", "teacher": f"{mode}-generate", "null": "null-generate"}
    cfg = DistillConfig(
        teachers=[f"{k}=openai:{url}:{m}" for k, m in names.items()],
        filters=FilterConfig(min_agree=1),
        max_new_tokens=32,
    )
    teachers = [Teacher(spec, _backend(url, spec.model, timeout=0.5), None) for spec in cfg.specs()]
    run_distill(table, tmp_path / "run", cfg, teachers=teachers, progress=False, build_dataset=False)
    (rec,) = [json.loads(line) for line in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    out = {t["name"]: t for t in rec["teachers"]}
    judged = out["judge"]
    assert judged["completion"] == _good_completion() and judged["error"] is None
    assert judged["p_yes"] is None and re.search(reason, judged["judge_error"]), judged["judge_error"]
    failed = out["teacher"]
    assert failed["completion"] is None and re.search(reason, failed["error"]), failed["error"]
    null = out["null"]
    assert null["completion"] is None and "message.content is null" in null["error"]


# ---------------------------------------------------------------------------
# 10. data fetch: links resolved as extraction will; registry paths stay inside --to
# ---------------------------------------------------------------------------


def _tar(entries: list[tuple[str, str, Any]]) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for kind, name, arg in entries:
            info = tarfile.TarInfo(name)
            if kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, arg
                t.addfile(info)
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, arg
                t.addfile(info)
            else:
                info.size = len(arg)
                t.addfile(info, io.BytesIO(arg))
    return buf.getvalue()


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        # the two steps: dir -> . passes, then dir/escape -> .. is the target's parent
        ([("file", "a.txt", b"a"), ("sym", "dir", "."), ("sym", "dir/escape", ".."),
          ("file", "dir/escape/pwned.txt", b"x")], "links to '..', outside"),
        # the same in the other order: L -> a/.. is the target while a does not exist
        ([("file", "a.txt", b"a"), ("sym", "L", "b/.."), ("sym", "b", ".")], "points outside the target once"),
        ([("sym", "d", "."), ("hard", "h", "d/../x")], "links to 'd/../x', outside"),
        ([("sym", "p", "q"), ("sym", "q", "p"), ("file", "p/x", b"1")], "link loop"),
    ],
)  # fmt: skip
def test_fetch_symlink_chains_are_refused_before_writing(
    tmp_path: Path, entries: list[tuple[str, str, Any]], message: str
) -> None:
    from georeason.datasets.fetch import UnsafeArchiveError, extract_archive

    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(_tar(entries))
    target = tmp_path / "box" / "out"
    with pytest.raises(UnsafeArchiveError, match=message):
        extract_archive(archive, target)
    assert list(target.iterdir()) == []  # checked first: nothing written
    assert sorted(p.name for p in (tmp_path / "box").iterdir()) == ["out"]


def test_fetch_links_inside_the_archive_still_extract(tmp_path: Path) -> None:
    from georeason.datasets.fetch import extract_archive

    archive = tmp_path / "ok.tar.gz"
    entries: list[tuple[str, str, Any]] = [
        ("file", "d/a.txt", b"A"),
        ("sym", "d/link", "a.txt"),
        ("sym", "top", "d"),
        ("file", "top/b.txt", b"B"),  # written through an inside link
        ("sym", "up", "d/.."),
        ("hard", "h", "d/a.txt"),
    ]
    archive.write_bytes(_tar(entries))
    out = tmp_path / "out"
    extract_archive(archive, out)
    assert (out / "d/b.txt").read_bytes() == b"B" and (out / "d/link").read_bytes() == b"A"
    assert (out / "h").read_bytes() == b"A" and (out / "up").resolve() == out.resolve()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("filename", "../escape.zip"),
        ("filename", "/tmp/abs.zip"),
        ("extract_to", "../.."),
        ("extract_to", "a/../../b"),
    ],
)
def test_fetch_registry_paths_must_stay_inside_the_target(tmp_path: Path, field: str, value: str) -> None:
    import json

    from georeason.datasets.fetch import FetchError, RemoteFile, Source, fetch, load_registry

    entry = {"url": "http://127.0.0.1:9/data.zip", "extract": True, field: value}
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps({"sources": {"evil": {"files": [entry]}}}))
    with pytest.raises(FetchError, match=rf"{field} .*(absolute|climbs out)"):
        load_registry(reg)
    # a registry built in code is checked too, before anything is downloaded or written
    src = Source(name="evil", description="", files=(RemoteFile(**entry),))  # type: ignore[arg-type]
    target = tmp_path / "box" / "to"
    with pytest.raises(FetchError, match=rf"{field} .*(absolute|climbs out)"):
        fetch("evil", target, registry={"evil": src}, retries=0, log=lambda _m: None)
    assert not target.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["registry.json"]


def test_fetch_url_naming_dot_dot_is_refused(tmp_path: Path) -> None:
    from georeason.datasets.fetch import FetchError, RemoteFile, Source, fetch

    src = Source(name="evil", description="", files=(RemoteFile(url="http://127.0.0.1:9/a/%2e%2e"),))
    with pytest.raises(FetchError, match="climbs out"):
        fetch("evil", tmp_path / "to", registry={"evil": src}, retries=0, log=lambda _m: None)
