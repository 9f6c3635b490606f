"""georeason.datasets.fetch and `georeason data fetch` against a real HTTP server on loopback.

The server (http.server in a thread) serves files generated here, honours
``Range: bytes=N-`` (206 + Content-Range, 416 past the end) and can misbehave on
request: fail with 500/404, drop the connection half-way once, ignore Range, or
answer an HTML page. Every request it receives is logged, so the tests check
what the client asked for (e.g. that a resume really sent ``Range: bytes=N-``).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from georeason.cli import app
from georeason.commands import data_cmd  # noqa: F401  (registers `data`)
from georeason.datasets.fetch import (
    LOCK,
    MANIFEST,
    ChecksumError,
    FetchError,
    LockMismatchError,
    RemoteFile,
    Source,
    UnsafeArchiveError,
    download,
    extract_archive,
    fetch,
    load_registry,
)

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"


@dataclass
class Server:
    base: str
    files: dict[str, bytes]
    modes: dict[str, str] = field(default_factory=dict)
    log: list[tuple[str, str | None]] = field(default_factory=list)
    dropped: set[str] = field(default_factory=set)

    def requests_for(self, path: str) -> list[str | None]:
        return [rng for p, rng in self.log if p == path]


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            rng = self.headers.get("Range")
            server.log.append((path, rng))
            mode = server.modes.get(path, "")
            if mode == "500":
                return self._send(500, b"internal error")
            if mode == "html":
                return self._send(
                    200, b"<!DOCTYPE html><html>click to download</html>", {"Content-Type": "text/html"}
                )
            data = server.files.get(path)
            if data is None:
                return self._send(404, b"not found")
            start = 0
            if rng and mode != "ignore-range":
                start = int(rng.split("=")[1].split("-")[0])
                if start >= len(data):
                    return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
            body = data[start:]
            if mode == "drop-once" and path not in server.dropped:
                # Promise the whole body, send half, hang up: a dropped connection.
                server.dropped.add(path)
                self.send_response(200 if start == 0 else 206)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return None
            if start:
                return self._send(206, body, {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
            return self._send(200, body)

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(base="", files={})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _blob(n: int, seed: int = 0) -> bytes:
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _tar_gz(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            t.addfile(info)
    return buf.getvalue()


# --- download --------------------------------------------------------------------------


def test_download_verifies_and_installs(server: Server, tmp_path: Path) -> None:
    data = _blob(300_000)
    server.files["/a.bin"] = data
    r = download(f"{server.base}/a.bin", tmp_path / "a.bin", sha256=_sha(data))
    assert (tmp_path / "a.bin").read_bytes() == data
    assert r.verified and r.status == "downloaded" and r.sha256 == _sha(data)
    assert not (tmp_path / "a.bin.part").exists()
    # Already installed and matching: nothing is requested again.
    n = len(server.log)
    r2 = download(f"{server.base}/a.bin", tmp_path / "a.bin", sha256=_sha(data))
    assert r2.status == "present" and len(server.log) == n


def test_resume_after_partial_file(server: Server, tmp_path: Path) -> None:
    data = _blob(500_000, seed=1)
    server.files["/big.bin"] = data
    # A previous run stopped after 123,457 bytes (killed, network gone).
    (tmp_path / "big.bin.part").write_bytes(data[:123_457])
    r = download(f"{server.base}/big.bin", tmp_path / "big.bin", sha256=_sha(data))
    assert server.requests_for("/big.bin") == ["bytes=123457-"]  # one request, resumed, not restarted
    assert r.resumed_from == 123_457
    assert (tmp_path / "big.bin").read_bytes() == data


def test_dropped_connection_is_retried_with_resume(server: Server, tmp_path: Path) -> None:
    data = _blob(400_000, seed=2)
    server.files["/flaky.bin"] = data
    server.modes["/flaky.bin"] = "drop-once"
    r = download(f"{server.base}/flaky.bin", tmp_path / "flaky.bin", sha256=_sha(data), backoff=0.01)
    reqs = server.requests_for("/flaky.bin")
    assert len(reqs) == 2 and reqs[0] is None
    assert reqs[1] is not None and reqs[1].startswith("bytes=") and reqs[1] != "bytes=0-"
    assert r.attempts == 2
    assert (tmp_path / "flaky.bin").read_bytes() == data


def test_server_ignoring_range_restarts_cleanly(server: Server, tmp_path: Path) -> None:
    data = _blob(200_000, seed=3)
    server.files["/norange.bin"] = data
    server.modes["/norange.bin"] = "ignore-range"
    (tmp_path / "norange.bin.part").write_bytes(b"garbage from an older attempt")
    download(f"{server.base}/norange.bin", tmp_path / "norange.bin", sha256=_sha(data))
    assert (tmp_path / "norange.bin").read_bytes() == data  # not garbage + data


def test_complete_part_file_gets_416_and_is_installed(server: Server, tmp_path: Path) -> None:
    data = _blob(50_000, seed=4)
    server.files["/done.bin"] = data
    (tmp_path / "done.bin.part").write_bytes(data)  # killed after the last byte, before the rename
    r = download(f"{server.base}/done.bin", tmp_path / "done.bin", sha256=_sha(data))
    assert r.verified and (tmp_path / "done.bin").read_bytes() == data


def test_checksum_mismatch_is_not_installed(server: Server, tmp_path: Path) -> None:
    data = _blob(10_000, seed=5)
    server.files["/x.zip"] = data
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as err:
        download(f"{server.base}/x.zip", tmp_path / "x.zip", sha256=wrong)
    assert not (tmp_path / "x.zip").exists()  # never installed
    assert not (tmp_path / "x.zip.part").exists()  # a rerun starts from scratch
    kept = tmp_path / "x.zip.sha256-mismatch"
    assert kept.read_bytes() == data  # kept aside for inspection
    assert err.value.actual == _sha(data) and err.value.expected == wrong
    assert "NOT installed" in str(err.value) and str(kept) in str(err.value)


def test_server_errors_give_clear_messages(server: Server, tmp_path: Path) -> None:
    server.files["/e.bin"] = b"x"
    server.modes["/e.bin"] = "500"
    with pytest.raises(FetchError, match=r"failed after 3 attempts: server error HTTP 500"):
        download(f"{server.base}/e.bin", tmp_path / "e.bin", retries=2, backoff=0.01)
    assert len(server.requests_for("/e.bin")) == 3  # retried: 5xx is transient
    with pytest.raises(FetchError, match=r"answered HTTP 404 Not Found"):
        download(f"{server.base}/nothing.bin", tmp_path / "n.bin", retries=3, backoff=0.01)
    assert len(server.requests_for("/nothing.bin")) == 1  # 404 is not retried
    assert not (tmp_path / "e.bin").exists() and not (tmp_path / "n.bin").exists()


def test_connection_refused_is_reported(tmp_path: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(FetchError, match="cannot connect"):
        download(f"http://127.0.0.1:{port}/f.bin", tmp_path / "f.bin", retries=1, backoff=0.01, timeout=2)


def test_html_page_instead_of_file(server: Server, tmp_path: Path) -> None:
    server.modes["/data.zip"] = "html"
    with pytest.raises(FetchError, match="HTML page"):
        download(f"{server.base}/data.zip", tmp_path / "data.zip")
    assert not (tmp_path / "data.zip").exists() and (tmp_path / "data.zip.html").exists()


# --- extraction ------------------------------------------------------------------------


def test_extract_refuses_path_traversal(tmp_path: Path) -> None:
    evil = tmp_path / "evil.zip"
    evil.write_bytes(_zip({"ok.txt": b"fine", "../escaped.txt": b"pwned"}))
    target = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match=r"\.\."):
        extract_archive(evil, target)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (target / "ok.txt").exists()  # nothing written: members are checked first

    abs_zip = tmp_path / "abs.zip"
    abs_zip.write_bytes(_zip({"/etc/evil.txt": b"x"}))
    with pytest.raises(UnsafeArchiveError, match="absolute"):
        extract_archive(abs_zip, target)

    link_tar = tmp_path / "link.tar.gz"
    link_tar.write_bytes(_tar_gz({"a.txt": b"a"}, links={"sneaky": "../../outside"}))
    with pytest.raises(UnsafeArchiveError, match="outside"):
        extract_archive(link_tar, target)
    assert not (target / "a.txt").exists()


def test_extract_tar_and_zip(tmp_path: Path) -> None:
    t = tmp_path / "x.tar.gz"
    t.write_bytes(_tar_gz({"dir/a.txt": b"A", "b.txt": b"B"}, links={"dir/link": "a.txt"}))
    names = extract_archive(t, tmp_path / "t")
    assert sorted(names) == ["b.txt", "dir/a.txt", "dir/link"]
    assert (tmp_path / "t/dir/a.txt").read_bytes() == b"A"
    z = tmp_path / "y.zip"
    z.write_bytes(_zip({"p/q.txt": b"Q"}))
    extract_archive(z, tmp_path / "z")
    assert (tmp_path / "z/p/q.txt").read_bytes() == b"Q"


# --- whole sources, registry, CLI -------------------------------------------------------


def test_fetch_source_checksums_extracts_and_records(server: Server, tmp_path: Path) -> None:
    archive = _zip({"images/a.jpg": b"A" * 100, "images/b.jpg": b"B" * 100})
    meta = b"id,lat,lon\na,1,2\n"
    server.files["/mirror/data.zip"] = archive
    server.files["/mirror/meta.csv"] = meta
    src = Source(
        name="mini",
        description="test",
        base_url=f"{server.base}/mirror/",
        files=(
            RemoteFile(url="data.zip", sha256=_sha(archive), extract=True),
            RemoteFile(url="meta.csv", sha256=None),  # unverified: installed, flagged
        ),
    )
    logs: list[str] = []
    res = fetch("mini", tmp_path / "d", registry={"mini": src}, log=logs.append)
    assert res.complete
    assert (tmp_path / "d/images/a.jpg").read_bytes() == b"A" * 100
    assert [f.verified for f in res.files] == [True, False]
    assert any(m.startswith("UNVERIFIED (trust on first use): meta.csv") and _sha(meta) in m for m in logs)
    assert [f.trust for f in res.files] == ["pinned", "first-use"]
    manifest = json.loads((tmp_path / "d" / MANIFEST).read_text())
    assert manifest["files"]["data.zip"]["sha256"] == _sha(archive)
    assert manifest["files"]["meta.csv"]["verified"] is False
    # Second run: nothing downloaded or extracted again.
    n = len(server.log)
    res2 = fetch("mini", tmp_path / "d", registry={"mini": src}, log=logs.append)
    assert len(server.log) == n and [f.status for f in res2.files] == ["present", "present"]
    assert [f.trust for f in res2.files] == ["pinned", "lock"]


def test_manual_files_are_reported_not_downloaded(server: Server, tmp_path: Path) -> None:
    src = Source(
        name="m",
        description="",
        files=(
            RemoteFile(
                url="http://www.mediafire.com/file/x/y.zip", filename="y.zip", manual=True, extract=True
            ),
        ),
    )
    res = fetch("m", tmp_path, registry={"m": src}, log=lambda _m: None)
    assert not res.complete and res.files[0].status == "manual-missing"
    assert "MANUAL" in res.files[0].messages[0] and str(tmp_path / "y.zip") in res.files[0].messages[0]
    # Placed by hand: extracted like the others.
    (tmp_path / "y.zip").write_bytes(_zip({"k.txt": b"k"}))
    res = fetch("m", tmp_path, registry={"m": src}, log=lambda _m: None)
    assert res.complete and res.files[0].status == "manual-present"
    assert (tmp_path / "k.txt").read_bytes() == b"k"


def test_registry_file_validation(tmp_path: Path) -> None:
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps({"sources": {"x": {"files": [{"url": "a", "sha256": "123"}]}}}))
    with pytest.raises(FetchError, match="64 hex"):
        load_registry(bad)
    bad.write_text(json.dumps({"sources": {"x": {"files": [{"url": "a", "colour": "red"}]}}}))
    with pytest.raises(FetchError, match="unknown keys"):
        load_registry(bad)
    with pytest.raises(FetchError, match="not found"):
        load_registry(tmp_path / "nope.json")
    # The built-in entries never carry invented checksums: each is None or a real 64-hex digest.
    for s in load_registry(None).values():
        for f in s.files:
            assert f.sha256 is None or len(f.sha256) == 64


def test_cli_fetch_with_registry_env(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _tar_gz({"pics/p.jpg": b"P" * 64})
    server.files["/files/pics.tar.gz"] = archive
    reg = tmp_path / "registry.json"
    reg.write_text(
        json.dumps(
            {
                "sources": {
                    "loop": {
                        "description": "loopback",
                        "base_url": f"{server.base}/files/",
                        "files": [{"url": "pics.tar.gz", "sha256": _sha(archive), "extract": True}],
                    }
                }
            }
        )
    )
    monkeypatch.setenv("GEOREASON_FETCH_REGISTRY", str(reg))
    runner = CliRunner()
    res = runner.invoke(app, ["data", "fetch", "--list"])
    assert res.exit_code == 0 and "loop" in res.output and "im2gps3k" in res.output
    res = runner.invoke(app, ["data", "fetch", "loop", "--to", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out/pics/p.jpg").read_bytes() == b"P" * 64
    assert "verified" in res.output
    # A checksum failure is an error exit with the reason.
    server.files["/files/pics.tar.gz"] = archive + b"tampered"
    res = runner.invoke(app, ["data", "fetch", "loop", "--to", str(tmp_path / "out2")])
    assert res.exit_code == 1 and "checksum mismatch" in res.output


def test_cli_fetch_builtin_im2gps3k_from_mirror_then_loads(server: Server, tmp_path: Path) -> None:
    """The built-in im2gps3k entry, pointed at a loopback mirror with --base-url: the CSV
    (swapped header, as the real one) and the image tarball arrive, and the loader reads them."""
    src = FIXTURES / "im2gps3k_swapped"
    images = {f"im2gps3k_rgb_images/{p.name}": p.read_bytes() for p in sorted((src / "images").iterdir())}
    server.files["/m/im2gps3k_places365.csv"] = (src / "im2gps3k_places365.csv").read_bytes()
    server.files["/m/im2gps3k_rgb_images.tar.gz"] = _tar_gz(images)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = CliRunner().invoke(
            app,
            [
                "data",
                "fetch",
                "im2gps3k",
                "--to",
                str(tmp_path / "im2gps3k"),
                "--base-url",
                f"{server.base}/m/",
            ],
        )
    assert res.exit_code == 0, res.output
    assert "UNVERIFIED" in res.output  # no pinned checksum for the public files: said loudly
    assert "check: im2gps3k loads: 6 images, 0 missing on disk" in res.output
    assert sorted(server.requests_for("/m/im2gps3k_places365.csv")) == [None]
    assert (tmp_path / "im2gps3k" / LOCK).is_file()
    # `data check` verifies the folder against the lock: an edited CSV is an error exit.
    check = ["data", "check", "--benchmark", "im2gps3k", "--data", str(tmp_path / "im2gps3k")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = CliRunner().invoke(app, check)
        assert res.exit_code == 0 and "checksums: 2 of 2 fetched files match the lock" in res.output
        (tmp_path / "im2gps3k" / "im2gps3k_rgb_images.tar.gz").unlink()  # space saved after extraction
        res = CliRunner().invoke(app, check)
        assert res.exit_code == 0 and "1 of 2 fetched files match the lock (im2gps3k_rgb_images" in res.output
        csv = tmp_path / "im2gps3k" / "im2gps3k_places365.csv"
        csv.write_bytes(csv.read_bytes() + b"\n")
        res = CliRunner().invoke(app, check)
    assert res.exit_code == 1 and "differs from" in res.output and "left as it is" in res.output


def test_cli_fetch_errors(server: Server, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["data", "fetch", "nonexistent", "--to", str(tmp_path)])
    assert res.exit_code == 2 and "unknown source" in res.output
    res = runner.invoke(app, ["data", "fetch", "im2gps3k"])
    assert res.exit_code == 2 and "--to" in res.output
    res = runner.invoke(
        app,
        [
            "data",
            "fetch",
            "im2gps3k",
            "--to",
            str(tmp_path),
            "--base-url",
            f"{server.base}/empty/",
            "--retries",
            "0",
        ],
    )
    assert res.exit_code == 1 and "HTTP 404" in res.output


# --- trust on first use: the lock file ---------------------------------------------------


def _tofu_source(server: Server) -> Source:
    return Source(
        name="tofu",
        description="no published checksums",
        base_url=f"{server.base}/t/",
        files=(RemoteFile(url="meta.csv"), RemoteFile(url="pics.tar.gz", extract=True)),
    )


def test_first_fetch_writes_the_lock_and_later_fetches_match_it(server: Server, tmp_path: Path) -> None:
    meta, pics = b"id,lat,lon\na,1,2\n", _tar_gz({"pics/p.jpg": b"P" * 64})
    server.files.update({"/t/meta.csv": meta, "/t/pics.tar.gz": pics})
    reg = {"tofu": _tofu_source(server)}
    res = fetch("tofu", tmp_path, registry=reg, log=lambda _m: None)
    assert [f.trust for f in res.files] == ["first-use", "first-use"]
    lock = json.loads((tmp_path / LOCK).read_text())
    rows = {e["filename"]: e for e in lock["files"]}
    assert rows["meta.csv"]["sha256"] == _sha(meta) and rows["meta.csv"]["size"] == len(meta)
    assert rows["pics.tar.gz"]["url"] == f"{server.base}/t/pics.tar.gz"
    assert {e["source"] for e in lock["files"]} == {"tofu"} and all(e["date"] for e in lock["files"])
    # --force downloads again and checks against the record (it does not re-trust).
    res = fetch("tofu", tmp_path, registry=reg, force=True, log=lambda _m: None)
    assert [(f.status, f.trust) for f in res.files] == [("downloaded", "lock")] * 2
    assert json.loads((tmp_path / LOCK).read_text()) == lock  # written once, not rewritten


def test_changed_file_on_refetch_is_refused(server: Server, tmp_path: Path) -> None:
    meta = b"id,lat,lon\na,1,2\n"
    server.files.update({"/t/meta.csv": meta, "/t/pics.tar.gz": _tar_gz({"p.jpg": b"P"})})
    reg = {"tofu": _tofu_source(server)}
    fetch("tofu", tmp_path, registry=reg, log=lambda _m: None)
    server.files["/t/meta.csv"] = b"id,lat,lon\na,9,9\n"  # the publisher (or a mirror) changed it
    with pytest.raises(LockMismatchError, match=r"recorded in .*first downloaded") as e:
        fetch("tofu", tmp_path, registry=reg, force=True, log=lambda _m: None)
    assert "delete the entry for meta.csv" in str(e.value) and e.value.expected == _sha(meta)
    assert not (tmp_path / "meta.csv").exists()  # nothing installed
    assert e.value.kept.read_bytes() == b"id,lat,lon\na,9,9\n"
    # A mirror is checked against the same record.
    server.files["/mirror/meta.csv"] = b"tampered"
    server.files["/mirror/pics.tar.gz"] = server.files["/t/pics.tar.gz"]
    with pytest.raises(LockMismatchError):
        fetch("tofu", tmp_path, registry=reg, base_url=f"{server.base}/mirror/", log=lambda _m: None)
    # Deleting the lock is how a changed file is trusted again.
    (tmp_path / LOCK).unlink()
    res = fetch("tofu", tmp_path, registry=reg, log=lambda _m: None)
    assert res.files[0].trust == "first-use"


def test_resumed_download_is_checked_against_the_lock(server: Server, tmp_path: Path) -> None:
    blob = _blob(50_000, seed=3)
    server.files.update({"/t/meta.csv": blob, "/t/pics.tar.gz": _tar_gz({"p.jpg": b"P"})})
    reg = {"tofu": _tofu_source(server)}
    fetch("tofu", tmp_path, registry=reg, log=lambda _m: None)
    (tmp_path / "meta.csv").unlink()
    # A partial file whose bytes differ from the recorded download: resuming it cannot match.
    (tmp_path / "meta.csv.part").write_bytes(b"x" * 1000)
    with pytest.raises(LockMismatchError):
        fetch("tofu", tmp_path, registry=reg, log=lambda _m: None)
    assert server.requests_for("/t/meta.csv")[-1] == "bytes=1000-"
    # A good partial file resumes and matches.
    (tmp_path / "meta.csv.part").write_bytes(blob[:20_000])
    res = fetch("tofu", tmp_path, registry=reg, log=lambda _m: None)
    assert res.files[0].resumed_from == 20_000 and res.files[0].trust == "lock"


def test_file_placed_by_hand_is_recorded_then_checked(tmp_path: Path) -> None:
    src = Source(name="m", description="", files=(RemoteFile(url="http://x.invalid/y.csv", manual=True),))
    (tmp_path / "y.csv").write_bytes(b"a,b\n")
    res = fetch("m", tmp_path, registry={"m": src}, log=lambda _m: None)
    assert res.files[0].trust == "first-use"
    (tmp_path / "y.csv").write_bytes(b"a,c\n")
    with pytest.raises(LockMismatchError, match="left as it is"):
        fetch("m", tmp_path, registry={"m": src}, log=lambda _m: None)


def test_unreadable_lock_is_an_error_not_a_reset(server: Server, tmp_path: Path) -> None:
    (tmp_path / LOCK).write_text("{not json")
    with pytest.raises(FetchError, match="cannot be read"):
        fetch("tofu", tmp_path, registry={"tofu": _tofu_source(server)}, log=lambda _m: None)


def test_cli_list_says_pinned_or_tofu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = tmp_path / "registry.json"
    files = [{"url": "a.zip", "sha256": "ab" * 32}, {"url": "b.csv"}]
    reg.write_text(json.dumps({"sources": {"mixed": {"base_url": "http://127.0.0.1:9/", "files": files}}}))
    monkeypatch.setenv("GEOREASON_FETCH_REGISTRY", str(reg))
    res = CliRunner().invoke(app, ["data", "fetch", "--list"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert any(ln.startswith("mixed:") and "[1 pinned, 1 TOFU]" in ln for ln in lines)
    assert any("a.zip" in ln and "sha256 pinned" in ln for ln in lines)
    assert any("b.csv" in ln and "TOFU" in ln for ln in lines)
    # Every built-in file: no publisher states a checksum, so each is TOFU (never an invented pin).
    assert any(ln.startswith("im2gps3k:") and "[0 pinned, 2 TOFU]" in ln for ln in lines)
    assert any("yfcc4k.zip" in ln and "TOFU, manual" in ln for ln in lines)
    listed = json.loads(CliRunner().invoke(app, ["data", "fetch", "--list", "--json"]).output)
    trust = {f["name"]: f["trust"] for s in listed for f in s["files"]}
    assert trust["a.zip"] == "pinned" and trust["b.csv"] == "tofu" and trust["yfcc4k.zip"] == "tofu"
