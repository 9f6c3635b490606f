"""One file over HTTP(S): resumable (``Range``), retried with backoff, verified against a
pinned SHA-256 (:func:`download`); stdlib only (the package docstring says why)."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from georeason.datasets.fetch.errors import ChecksumError, FetchError

logger = logging.getLogger("georeason.datasets.fetch")

CHUNK = 1 << 20
USER_AGENT = "georeason-fetch/1 (+https://github.com/)"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class FileResult:
    """What happened to one file."""

    name: str
    url: str
    path: str
    status: str  # "downloaded" | "present" | "manual-missing" | "manual-present"
    size: int | None = None
    sha256: str | None = None
    verified: bool = False
    resumed_from: int = 0
    attempts: int = 0
    extracted_to: str | None = None
    trust: str = ""  # "pinned" | "first-use" (recorded in the lock now) | "lock" (matches the record)
    messages: list[str] = field(default_factory=list)


_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class _Retryable(Exception):
    pass


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes 100-199/1000`` -> (100, 1000); ``bytes */1000`` -> (None, 1000)."""
    if not value or not value.strip().lower().startswith("bytes"):
        return None, None
    spec = value.strip()[5:].strip()
    rng, _, total = spec.partition("/")
    tot = int(total) if total.strip().isdigit() else None
    if rng.strip() == "*":
        return None, tot
    start = rng.split("-")[0].strip()
    return (int(start) if start.isdigit() else None), tot


def _looks_like_html(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(512).lstrip().lower()
    return head.startswith(b"<!doctype html") or head.startswith(b"<html")


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 60.0,
    progress: Callable[[int, int | None], None] | None = None,
) -> FileResult:
    """Download ``url`` to ``dest`` via ``dest.part``, resuming, retrying and verifying.

    Args:
        sha256: pinned digest; on mismatch the bytes are moved to
            ``dest.sha256-mismatch`` and :class:`ChecksumError` is raised.
        size: expected size (checked against the server's and the result).
        retries: retries after the first attempt for transient failures.
        backoff: first retry delay in seconds (doubled each time).
        timeout: socket timeout per request, seconds.
        progress: called with (bytes so far, total or None) while downloading.

    Returns a :class:`FileResult` (``status`` "present" when ``dest`` already
    existed and matched, else "downloaded").
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    result = FileResult(name=dest.name, url=url, path=str(dest), status="downloaded")
    if dest.is_file():
        digest = sha256_file(dest)
        if sha256 is None or digest == sha256:
            result.status, result.size, result.sha256 = "present", dest.stat().st_size, digest
            result.verified = sha256 is not None
            return result
        result.messages.append(
            f"{dest.name} present but its sha256 {digest} != pinned {sha256}: downloading again"
        )
        dest.unlink()
    part = dest.with_name(dest.name + ".part")
    result.resumed_from = part.stat().st_size if part.exists() else 0
    delay = backoff
    last_error = ""
    for attempt in range(retries + 1):
        result.attempts = attempt + 1
        try:
            _download_once(url, part, timeout=timeout, progress=progress, size=size)
            break
        except _Retryable as e:
            last_error = str(e)
            if attempt == retries:
                raise FetchError(
                    f"download of {url} failed after {retries + 1} attempts: {last_error}; "
                    f"{part.stat().st_size if part.exists() else 0} bytes are kept in {part} and the next run "
                    "resumes from there"
                ) from None
            logger.warning("%s: %s; retrying in %.1fs (resuming)", url, last_error, delay)
            time.sleep(delay)
            delay *= 2
    got = part.stat().st_size
    if size is not None and got != size:
        part.unlink()
        raise FetchError(f"{url}: got {got} bytes, expected {size}; the partial file was removed")
    digest = sha256_file(part)
    result.size, result.sha256 = got, digest
    if sha256 is not None and digest != sha256:
        kept = dest.with_name(dest.name + ".sha256-mismatch")
        os.replace(part, kept)
        raise ChecksumError(
            f"checksum mismatch for {url}: sha256 {digest}, pinned {sha256}. The file was NOT installed; "
            f"its bytes are kept in {kept} for inspection. The server may serve a different version, or "
            "the download was corrupted: delete that file and run fetch again.",
            expected=sha256,
            actual=digest,
            kept=kept,
        )
    if sha256 is None and _looks_like_html(part) and dest.suffix.lower() not in (".html", ".htm"):
        kept = dest.with_name(dest.name + ".html")
        os.replace(part, kept)
        raise FetchError(
            f"{url} answered with an HTML page, not the file (a login, a captcha or a 'click to download' "
            f"page); saved it as {kept}. Download the file in a browser and place it at {dest}."
        )
    os.replace(part, dest)
    result.verified = sha256 is not None
    return result


def _download_once(
    url: str,
    part: Path,
    *,
    timeout: float,
    progress: Callable[[int, int | None], None] | None,
    size: int | None,
) -> None:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            # Range not satisfiable: the part may already be whole.
            _, total = _parse_content_range(e.headers.get("Content-Range"))
            if total is not None and total == offset:
                return
            part.unlink()  # the part is longer than the file: start over
            raise _Retryable(f"server refused to resume at byte {offset} (HTTP 416); restarting") from None
        status = f"HTTP {e.code} {e.reason}"
        if e.code in _RETRY_STATUS:
            raise _Retryable(f"server error {status}") from None
        raise FetchError(
            f"{url}: the server answered {status}; check the URL (or the registry entry)"
        ) from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, OSError):  # refused, reset, timed out, DNS: worth retrying
            raise _Retryable(f"cannot connect: {e.reason}") from None
        raise FetchError(f"{url}: {e.reason}") from None
    except (TimeoutError, ConnectionError, http.client.HTTPException) as e:
        raise _Retryable(f"network error: {type(e).__name__}: {e}") from None

    with contextlib.closing(resp):
        status = resp.status
        length = resp.headers.get("Content-Length")
        length_i = int(length) if length and length.isdigit() else None
        if offset and status == 206:
            start, total = _parse_content_range(resp.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise _Retryable(f"server resumed at byte {start}, not {offset}; restarting")
            mode = "ab"
        elif status == 200:
            if offset:
                logger.info("%s: the server ignored the Range request; restarting from byte 0", url)
            offset = 0
            total = length_i
            mode = "wb"
        else:
            raise FetchError(f"{url}: unexpected HTTP status {status}")
        if size is not None and total is not None and total != size:
            raise FetchError(f"{url}: the server's file is {total} bytes, the registry expects {size}")
        done = offset
        try:
            with part.open(mode) as f:
                while True:
                    chunk = resp.read(CHUNK)
                    if not chunk:
                        break
                    f.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
                f.flush()
                os.fsync(f.fileno())
        except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as e:
            raise _Retryable(f"connection dropped at byte {done}: {type(e).__name__}: {e}") from None
        if total is not None and done < total:
            raise _Retryable(f"connection closed at byte {done} of {total}")
