"""`georeason locate` end to end, as a subprocess.

Answers with known content come from a real OpenAI-compatible HTTP server on
loopback that replies with a fixed completion (so the place, the geocoding and
the EXIF error can be checked exactly); one run uses the tiny model in process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from georeason.geo import haversine_km
from georeason.images import gps_exif

TOKYO_STATION = (35.6812, 139.7671)
GEOR_ANSWER = (
    "<think>Kanji on the shop signs, cars drive on the left, a dense skyline.</think>"
    "<answer>Country: Japan\nState: Tokyo\nCity: Tokyo\nCoordinates: (35.6895, 139.6917)</answer>"
)
GLOBE_ANSWER = "<think>Japanese signs and a castle keep.</think><answer>country: Japan\ncity: Osaka</answer>"


class FixedAnswerServer:
    """An OpenAI-compatible chat server on loopback that always answers ``text`` (a list:
    the ``n`` choices cycle through it)."""

    def __init__(self, text: str | list[str]) -> None:
        texts = [text] if isinstance(text, str) else text
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # GET /v1/models, for --model auto
                data = json.dumps({"object": "list", "data": [{"id": "fixed-model"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                data = json.dumps(
                    {
                        "object": "chat.completion",
                        "choices": [
                            {
                                "index": i,
                                "message": {"role": "assistant", "content": texts[i % len(texts)]},
                                "finish_reason": "stop",
                            }
                            for i in range(int(body.get("n", 1)))
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def geor_server() -> Iterator[FixedAnswerServer]:
    s = FixedAnswerServer(GEOR_ANSWER)
    yield s
    s.close()


@pytest.fixture
def globe_server() -> Iterator[FixedAnswerServer]:
    s = FixedAnswerServer(GLOBE_ANSWER)
    yield s
    s.close()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("photos")
    gps = d / "tokyo.jpg"
    Image.new("RGB", (160, 120), (120, 130, 140)).save(gps, "JPEG", exif=gps_exif(*TOKYO_STATION))
    plain = d / "plain.png"
    Image.new("RGB", (100, 80), (20, 120, 40)).save(plain, "PNG")
    bad = d / "notes.jpg"
    bad.write_text("this is not a photo")
    return {"gps": gps, "plain": plain, "bad": bad}


def run_locate(*args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env.update(HF_HUB_OFFLINE="1", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "georeason.cli", "locate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_geor_answer_with_and_without_exif_gps(
    geor_server: FixedAnswerServer, photos: dict[str, Path]
) -> None:
    p = run_locate(
        str(photos["gps"]), str(photos["plain"]), str(photos["bad"]),
        "--backend", "openai", "--base-url", geor_server.base_url, "--model", "any", "--json",
    )  # fmt: skip
    assert p.returncode == 1, p.stderr  # one image failed: the others are located, the exit says so
    gps, plain, bad = json.loads(p.stdout)
    assert "1 of 3 images failed" in p.stderr
    # the photo with a GPS fix: coordinates from the answer, the gazetteer's place, the error in km
    assert gps["ok"] and gps["coordinates_from"] == "answer"
    assert (gps["lat"], gps["lon"]) == (35.6895, 139.6917)
    assert gps["place"]["country_code"] == "JP" and gps["place"]["city"]
    assert gps["exif_gps"] == pytest.approx({"lat": TOKYO_STATION[0], "lon": TOKYO_STATION[1]}, abs=1e-5)
    expected = float(haversine_km(35.6895, 139.6917, *TOKYO_STATION))
    assert gps["error_km"] == pytest.approx(expected, abs=1e-6) and 5 < expected < 10
    assert "Kanji" in gps["reasoning"]
    # no EXIF GPS: located, no error figure
    assert plain["ok"] and plain["exif_gps"] is None and plain["error_km"] is None and plain["lat"] == 35.6895
    # not an image: an error for that file only
    assert not bad["ok"] and "not an image" in bad["error"] and bad["answer"] is None
    assert len(geor_server.requests) == 2  # the bad file never reached the server
    body = geor_server.requests[0]
    assert body["model"] == "any" and body["temperature"] == 0.0


def test_globe_answer_is_forward_geocoded(globe_server: FixedAnswerServer, photos: dict[str, Path]) -> None:
    p = run_locate(
        str(photos["gps"]),
        "--protocol",
        "globe",
        "--backend",
        "openai",
        "--base-url",
        globe_server.base_url,
        "--json",
    )
    assert p.returncode == 0, p.stderr
    (r,) = json.loads(p.stdout)
    assert r["coordinates_from"] == "geocoded"
    assert r["place"]["city"] == "Osaka" and r["place"]["country_code"] == "JP"
    assert r["error_km"] == pytest.approx(float(haversine_km(r["lat"], r["lon"], *TOKYO_STATION)))
    assert 350 < r["error_km"] < 450  # Osaka -> Tokyo
    # the served model's name came from GET /models; the GLOBE prompt was sent
    assert globe_server.requests[0]["model"] == "fixed-model"
    assert "country" in json.dumps(globe_server.requests[0]["messages"]).lower()


def test_human_output(geor_server: FixedAnswerServer, photos: dict[str, Path]) -> None:
    p = run_locate(
        str(photos["gps"]), str(photos["bad"]), "--backend", "openai", "--base-url", geor_server.base_url
    )
    assert p.returncode == 1, p.stderr
    out = p.stdout
    assert "reasoning" in out and "Kanji on the shop signs" in out
    assert "coordinates" in out and "35.68950, 139.69170" in out
    assert "EXIF GPS" in out and " km" in out
    assert "error:" in out and "not an image" in out


def test_all_failed_exits_non_zero(
    geor_server: FixedAnswerServer, photos: dict[str, Path], tmp_path: Path
) -> None:
    other_bad = tmp_path / "also_bad.jpg"
    other_bad.write_bytes(b"\x00" * 64)
    p = run_locate(
        str(photos["bad"]),
        str(other_bad),
        "--backend",
        "openai",
        "--base-url",
        geor_server.base_url,
        "--json",
    )
    assert p.returncode == 1
    results = json.loads(p.stdout)
    assert [r["ok"] for r in results] == [False, False]
    assert "2 of 2 images failed" in p.stderr
    assert not geor_server.requests


def test_missing_image_is_refused_before_the_model_loads(photos: dict[str, Path], tmp_path: Path) -> None:
    """A missing file is a bad argument, found before any model loads: the model named here
    does not exist either, and the error is about the image."""
    p = run_locate(str(photos["gps"]), str(tmp_path / "missing.jpg"), "--model", str(tmp_path / "no_model"))
    assert p.returncode == 2
    assert p.stderr.startswith("error: ") and "no such image file" in p.stderr and "missing.jpg" in p.stderr
    assert "model" not in p.stderr.split("no such image file")[1]
    assert "Traceback" not in p.stderr and not p.stdout


def test_help_states_the_exit_status() -> None:
    p = run_locate("--help")
    assert p.returncode == 0
    text = " ".join(p.stdout.split())
    assert "1 when any image failed" in text and "2 for a bad argument" in text


def test_unreachable_server_is_a_per_image_error(photos: dict[str, Path]) -> None:
    from georeason.serve.process import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    p = run_locate(
        str(photos["gps"]),
        "--backend",
        "openai",
        "--base-url",
        url,
        "--model",
        "m",
        "--json",
        "--max-retries",
        "1",
    )
    assert p.returncode == 1
    (r,) = json.loads(p.stdout)
    assert "connection error" in r["error"]


def test_bad_options() -> None:
    p = run_locate("x.jpg", "--backend", "hf")
    assert p.returncode == 2 and "--model is required" in p.stderr
    p = run_locate("x.jpg", "--protocol", "haiku", "--model", "m")
    assert p.returncode == 2 and "unknown protocol" in p.stderr


@pytest.mark.slow
def test_hf_backend_with_the_tiny_model(tiny_backend_model: Path, photos: dict[str, Path]) -> None:
    model = tiny_backend_model
    p = run_locate(
        str(photos["gps"]),
        str(photos["bad"]),
        "--model",
        str(model),
        "--json",
        "--max-new-tokens",
        "6",
        "--max-pixels",
        "4096",
    )
    assert p.returncode == 1, p.stderr  # the bad file failed
    gps, bad = json.loads(p.stdout)
    assert gps["ok"] and isinstance(gps["answer"], str) and gps["exif_gps"] is not None
    # a random model gives no usable answer: reported as warnings, not as a failure
    if gps["lat"] is None:
        assert gps["error_km"] is None and gps["warnings"]
    assert not bad["ok"] and "not an image" in bad["error"]


def test_samples_report_the_consensus_and_its_agreement(photos: dict[str, Path]) -> None:
    far = GEOR_ANSWER.replace("(35.6895, 139.6917)", "(34.6937, 135.5023)").replace("Tokyo", "Osaka")
    server = FixedAnswerServer([far, GEOR_ANSWER, GEOR_ANSWER, far, GEOR_ANSWER])
    try:
        p = run_locate(
            str(photos["gps"]), "--backend", "openai", "--base-url", server.base_url, "--model", "any",
            "--samples", "5", "--temperature", "0.7", "--aggregate", "vote", "--json",
        )  # fmt: skip
    finally:
        server.close()
    assert p.returncode == 0, p.stderr
    (r,) = json.loads(p.stdout)
    assert len(server.requests) == 1 and server.requests[0]["n"] == 5  # one request for the five
    assert len(r["samples"]) == 5
    c = r["consensus"]
    assert c["method"] == "vote" and c["n_samples"] == 5 and c["n_located"] == 5
    assert c["agreement_25km"] == pytest.approx(0.6) and c["country_agreement"] == pytest.approx(1.0)
    assert (r["lat"], r["lon"]) == (35.6895, 139.6917)  # the Tokyo majority
    human = run_locate(
        str(photos["gps"]), "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "any",
        "--samples", "5",
    )  # fmt: skip
    assert human.returncode == 2 and "temperature > 0" in human.stderr
