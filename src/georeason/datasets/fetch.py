"""Download benchmarks from pinned URLs: checksums, resumable downloads, safe extraction.

``georeason data fetch NAME --to DIR`` (and :func:`fetch`) downloads every file
of a registered source:

- **resumable**: bytes go to ``<file>.part``; an interrupted download (killed,
  network drop) continues from where it stopped with an HTTP ``Range`` request.
  A server that ignores ``Range`` (answers 200) restarts the file cleanly.
  Transient failures (5xx, 408, 429, dropped connections, timeouts) are retried
  with exponential backoff, each retry resuming.
- **verified**: a file with a pinned SHA-256 (one its publisher states) is
  installed only when its digest matches; a mismatch keeps the bytes aside as
  ``<file>.sha256-mismatch`` (for inspection), installs nothing and raises
  :class:`ChecksumError`. We never invent a checksum.
- **trust on first use** for the rest: no publisher of a built-in source states
  a checksum, so the first complete download of a file records its size and
  SHA-256 in ``DIR/.georeason-fetch.lock.json`` (:data:`LOCK`: source, URL, file
  name, size, digest, date), reported loudly as UNVERIFIED once. Every later use
  is checked against that record: a re-fetch, a resumed download, a mirror
  (``--base-url``), a file placed by hand, and ``georeason data check``
  (:func:`verify_lock`). A file that differs is refused (:class:`LockMismatchError`,
  whose message says what to do). ``--force`` downloads again but still checks
  the record; to trust a changed file, delete its entry (or the lock file).
- **safely extracted**: zip and tar archives are checked member by member
  before anything is written: absolute paths, ``..`` components, links that
  point outside the target (paths resolved through the links the archive itself
  makes, as extraction will) and device files abort the extraction
  (:class:`UnsafeArchiveError`); tar extraction also uses Python's ``data``
  filter. A registry entry's ``filename`` and ``extract_to`` must be relative
  paths without ``..`` (:func:`check_source_paths`).
- **recorded**: ``DIR/FETCHED.json`` lists each file's URL, size, SHA-256 and
  whether it was verified; a second run skips what is installed.

Hosts that need a browser (MediaFire, Google Drive) cannot be fetched by a
script: such files are marked ``manual`` and the command prints where to get
them and where to put them; once placed in ``DIR`` they are verified and
extracted like the others.

The registry is a plain dict (:data:`REGISTRY`). Another one can be given as a
JSON file (``--registry FILE`` or ``$GEOREASON_FETCH_REGISTRY``)::

    {"sources": {"mybench": {"description": "...", "base_url": "http://127.0.0.1:8000/",
                             "files": [{"url": "mybench.zip", "sha256": "ab12...", "extract": true}]}}}

Relative URLs resolve against the source's ``base_url``; ``--base-url`` points
every file of a source at a mirror (the file name is kept).

Why not ``pooch`` or ``huggingface_hub``: no built-in file is on the Hugging Face
Hub (where ``hf_hub_download`` would check the Hub's own digest) and MediaFire /
Google Drive defeat every client; ``pooch`` would be a new core dependency that
does not resume with ``Range`` nor check archives for links leaving the target,
and it would still need our trust-on-first-use record. So the one download step
stays here, stdlib only.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import stat
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

logger = logging.getLogger("georeason.datasets.fetch")

CHUNK = 1 << 20
MANIFEST = "FETCHED.json"
LOCK = ".georeason-fetch.lock.json"
REGISTRY_ENV = "GEOREASON_FETCH_REGISTRY"
USER_AGENT = "georeason-fetch/1 (+https://github.com/)"


class FetchError(RuntimeError):
    """A download failed for a reason the message states (HTTP status, network, layout)."""


class ChecksumError(FetchError):
    """The downloaded bytes do not have the pinned SHA-256; nothing was installed."""

    def __init__(self, message: str, *, expected: str, actual: str, kept: Path) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual
        self.kept = kept


class LockMismatchError(ChecksumError):
    """A file differs from the digest recorded in the lock file when it was first
    downloaded (trust on first use); nothing was installed."""


class UnsafeArchiveError(FetchError):
    """An archive holds a member that would be written outside the target folder."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a source.

    Attributes:
        url: absolute URL, or relative to the source's ``base_url``.
        filename: name to save as (default: the URL's last path component).
        sha256: pinned hex digest, as its publisher states it, or None when none is
            stated (then the first download is trusted and recorded in :data:`LOCK`).
        size: expected size in bytes, if known (a cheap early check).
        extract: unpack this archive (zip / tar / tar.gz / tar.bz2 / tar.xz) into ``extract_to``.
        extract_to: folder relative to the target folder.
        manual: the host needs a browser; print instructions instead of downloading.
        note: shown with the instructions.
    """

    url: str
    filename: str | None = None
    sha256: str | None = None
    size: int | None = None
    extract: bool = False
    extract_to: str = "."
    manual: bool = False
    note: str = ""

    @property
    def name(self) -> str:
        if self.filename:
            return self.filename
        path = urllib.parse.urlparse(self.url).path
        name = PurePosixPath(urllib.parse.unquote(path)).name
        if not name:
            raise ValueError(f"cannot tell a file name from URL {self.url!r}; give 'filename'")
        return name


@dataclass(frozen=True)
class Source:
    """A downloadable dataset: its files and what it is."""

    name: str
    description: str
    files: tuple[RemoteFile, ...]
    homepage: str = ""
    license: str = ""
    benchmark: str | None = None  # loader of georeason.datasets.benchmarks to check the result with
    base_url: str | None = None

    def resolved(self, base_url: str | None = None) -> Source:
        """A copy whose file URLs are absolute: relative ones joined to ``base_url`` (or the
        source's own); with an explicit ``base_url`` every file is taken from there (a mirror)."""
        files = []
        for f in self.files:
            url = f.url
            if base_url:
                url = urllib.parse.urljoin(base_url.rstrip("/") + "/", urllib.parse.quote(f.name))
                files.append(replace(f, url=url, filename=f.name, manual=False))
                continue
            if not urllib.parse.urlparse(url).scheme:
                if not self.base_url:
                    raise ValueError(f"source {self.name!r}: relative URL {url!r} needs a base_url")
                url = urllib.parse.urljoin(self.base_url.rstrip("/") + "/", url)
            files.append(replace(f, url=url))
        return replace(self, files=tuple(files), base_url=base_url or self.base_url)


# ---------------------------------------------------------------------------
# The registry. Checksums: None where the publisher states none (true of every
# built-in file as of 2026: GeoEstimation's repository, TransLocator's mirror,
# MediaFire, G3's and GLOBE's releases were searched); those files are trusted on
# first use and recorded in LOCK. The im2gps3k CSV's URL names a git commit, so its
# bytes cannot change under that URL, but its sha256 is still first-use.
# ---------------------------------------------------------------------------

REGISTRY: dict[str, Source] = {
    "im2gps3k": Source(
        name="im2gps3k",
        description="IM2GPS3K test set (Vo et al., ICCV 2017): 2,997 Flickr photos + GeoEstimation metadata",
        homepage="https://github.com/lugiavn/revisiting-im2gps",
        license="Flickr photos under their authors' licenses; research use",
        benchmark="im2gps3k",
        files=(
            RemoteFile(
                # Pinned to a commit of TIBHannover/GeoEstimation (this copy has the LON,LAT
                # header over lat,lon values; the loader fixes it).
                url="https://raw.githubusercontent.com/TIBHannover/GeoEstimation/"
                "3487c535e1eb4af99013b976cc070ada10045301/meta/im2gps3k_places365.csv",
                filename="im2gps3k_places365.csv",
                sha256=None,
            ),
            RemoteFile(
                # TransLocator's mirror (a plain HTTP tarball); the canonical im2gps3ktest.zip is on
                # MediaFire, which needs a browser.
                url="http://www.cis.jhu.edu/~shraman/TransLocator/Datasets/im2gps3k_rgb_images.tar.gz",
                sha256=None,
                extract=True,
                note="alternative: http://www.mediafire.com/file/7ht7sn78q27o9we/im2gps3ktest.zip "
                "(download in a browser, place im2gps3ktest.zip in the folder and run fetch again)",
            ),
        ),
    ),
    "yfcc4k": Source(
        name="yfcc4k",
        description="YFCC4K test set (Vo et al., ICCV 2017): 4,536 photos from YFCC100M",
        homepage="https://github.com/lugiavn/revisiting-im2gps",
        license="YFCC100M photos under their authors' Creative Commons licenses",
        benchmark="yfcc4k",
        files=(
            RemoteFile(
                url="http://www.mediafire.com/file/3og8y3o6c9de3ye/yfcc4k.zip",
                filename="yfcc4k.zip",
                sha256=None,
                extract=True,
                manual=True,
                note="MediaFire needs a browser: download yfcc4k.zip and place it in the target folder",
            ),
            RemoteFile(
                url="https://huggingface.co/Jia-py/G3-checkpoint",
                filename="yfcc4k_places365.csv",
                sha256=None,
                manual=True,
                note="metadata from G3's release (Hugging Face Jia-py/G3-checkpoint) or Img2Loc's data/",
            ),
        ),
    ),
    "mp16-reason": Source(
        name="mp16-reason",
        description="MP16-Reason test split (GLOBE, arXiv 2506.14674)",
        homepage="https://github.com/lingli1996/GLOBE",
        license="see the dataset card",
        benchmark="mp16-reason",
        files=(
            RemoteFile(
                url="https://github.com/lingli1996/GLOBE",
                filename="mp16-reason-test-12k.csv",
                sha256=None,
                manual=True,
                note="the dataset is linked from GLOBE's README; save the test split with "
                "datasets' save_to_disk into the folder, or place GLOBE's mp16-reason-test-12k.csv "
                "and eval_images/ there",
            ),
        ),
    ),
}


def _relative_inside(value: str, what: str) -> str | None:
    """Why ``value`` (a registry ``filename`` or ``extract_to``) could write outside the
    target folder, or None: it must be a relative path without ``..``."""
    text = str(value)
    if "\x00" in text:
        return f"{what} {text!r} holds a NUL byte"
    if text.startswith(("/", "\\")) or (len(text) > 1 and text[1] == ":"):
        return f"{what} {text!r} is absolute; give a path relative to the target folder"
    if ".." in PurePosixPath(text.replace("\\", "/")).parts:
        return f"{what} {text!r} climbs out of the target folder with '..'"
    return None


def check_source_paths(source: Source) -> None:
    """FetchError when a file of ``source`` would be saved or extracted outside the target
    folder (``filename`` or ``extract_to`` absolute or with ``..``; a URL naming ``..``)."""
    for f in source.files:
        try:
            name = f.name
        except ValueError as e:
            raise FetchError(f"source {source.name!r}: {e}") from None
        problem = _relative_inside(name, "filename")
        if problem is None and name in ("", "."):
            problem = f"filename {name!r} names the target folder itself, not a file"
        problem = problem or _relative_inside(f.extract_to, "extract_to")
        if problem:
            raise FetchError(f"source {source.name!r}, file {f.url!r}: {problem}")


def load_registry(path: str | os.PathLike[str] | None = None) -> dict[str, Source]:
    """The built-in registry, updated with the sources of a JSON registry file.

    ``path`` defaults to ``$GEOREASON_FETCH_REGISTRY``. The file holds
    ``{"sources": {name: {...}}}`` (or the mapping itself); each source has
    ``files`` (a list of :class:`RemoteFile` fields) and optionally
    ``description``, ``base_url``, ``homepage``, ``license``, ``benchmark``.
    """
    reg = dict(REGISTRY)
    path = path or os.environ.get(REGISTRY_ENV) or None
    if not path:
        return reg
    p = Path(path).expanduser()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FetchError(f"registry file {p} not found") from None
    except json.JSONDecodeError as e:
        raise FetchError(f"registry file {p} is not valid JSON: {e}") from e
    sources = data.get("sources", data) if isinstance(data, Mapping) else None
    if not isinstance(sources, Mapping):
        raise FetchError(f"registry file {p}: expected {{'sources': {{name: {{...}}}}}}")
    known = {f for f in RemoteFile.__dataclass_fields__}
    for name, spec in sources.items():
        if not isinstance(spec, Mapping) or not isinstance(spec.get("files"), list) or not spec["files"]:
            raise FetchError(f"registry file {p}: source {name!r} needs a non-empty 'files' list")
        files = []
        for i, f in enumerate(spec["files"]):
            if isinstance(f, str):
                f = {"url": f}
            if not isinstance(f, Mapping) or "url" not in f:
                raise FetchError(f"registry file {p}: source {name!r} file #{i} needs a 'url'")
            unknown = set(f) - known
            if unknown:
                raise FetchError(
                    f"registry file {p}: source {name!r} file #{i}: unknown keys {sorted(unknown)}"
                )
            sha = f.get("sha256")
            if sha is not None and (
                len(str(sha)) != 64 or any(c not in "0123456789abcdef" for c in str(sha).lower())
            ):
                raise FetchError(
                    f"registry file {p}: source {name!r} file #{i}: sha256 must be 64 hex digits"
                )
            for key in ("filename", "extract_to"):
                problem = _relative_inside(f[key], key) if f.get(key) is not None else None
                if problem:
                    raise FetchError(f"registry file {p}: source {name!r} file #{i}: {problem}")
            files.append(RemoteFile(**{**f, "sha256": str(sha).lower() if sha else None}))
        reg[str(name)] = Source(
            name=str(name),
            description=str(spec.get("description", "")),
            files=tuple(files),
            homepage=str(spec.get("homepage", "")),
            license=str(spec.get("license", "")),
            benchmark=spec.get("benchmark"),
            base_url=spec.get("base_url"),
        )
    return reg


# ---------------------------------------------------------------------------
# downloading
# ---------------------------------------------------------------------------


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


@dataclass
class FetchResult:
    source: str
    target: str
    files: list[FileResult]

    @property
    def complete(self) -> bool:
        return all(f.status != "manual-missing" for f in self.files)

    @property
    def unverified(self) -> list[FileResult]:
        return [f for f in self.files if f.status != "manual-missing" and not f.verified]


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


# ---------------------------------------------------------------------------
# extraction
# ---------------------------------------------------------------------------


def _is_archive(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")):
        return "tar"
    if zipfile.is_zipfile(path):
        return "zip"
    with contextlib.suppress(Exception):
        if tarfile.is_tarfile(path):
            return "tar"
    return None


def _safe_target(root: Path, member: str) -> Path:
    """Where ``member`` would be written, or UnsafeArchiveError when that is outside ``root``."""
    if not member or member.startswith(("/", "\\")) or (len(member) > 1 and member[1] == ":"):
        raise UnsafeArchiveError(f"archive member {member!r} has an absolute path; refusing to extract")
    parts = PurePosixPath(member.replace("\\", "/")).parts
    if ".." in parts:
        raise UnsafeArchiveError(f"archive member {member!r} climbs out of the target with '..'; refusing")
    target = (root / member).resolve()
    if target != root and root not in target.parents:
        raise UnsafeArchiveError(f"archive member {member!r} would be written outside {root}; refusing")
    return target


# Symbolic links followed in one path at most (the kernel's limit is 40): a loop is refused.
_MAX_LINK_HOPS = 40


class _TarPlan:
    """The tree a tar archive makes, member by member, to resolve paths as extraction will.

    A path is resolved component by component, following the symbolic links that the
    archive's earlier members made (and those already on disk), with ``..`` taken after
    each link as the kernel takes it. So a link ``dir -> .`` followed by ``dir/escape -> ..``
    is seen for what it is: ``escape`` in the target folder, pointing at its parent.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.links: dict[tuple[str, ...], str] = {}  # resolved place of a link -> its target text
        self.plain: set[tuple[str, ...]] = set()  # files and folders the archive makes

    def _disk_link(self, parts: tuple[str, ...]) -> str | None:
        if parts in self.plain:
            return None  # the archive's own member replaces whatever is on disk
        path = self.root.joinpath(*parts)
        return os.readlink(path) if path.is_symlink() else None

    def resolve(self, path: str, *, base: tuple[str, ...] = (), follow_last: bool = True) -> tuple[str, ...]:
        """Parts of ``path`` (relative to ``base``) under the root once links are followed;
        UnsafeArchiveError when it leaves the root."""
        if path.startswith(("/", "\\")):
            raise UnsafeArchiveError(f"absolute link or path {path!r}")
        todo = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
        todo.reverse()
        done = list(base)
        hops = 0
        while todo:
            part = todo.pop()
            if part == "..":
                if not done:
                    raise UnsafeArchiveError(f"{path!r} leads out of the target")
                done.pop()
                continue
            done.append(part)
            if not todo and not follow_last:
                break
            key = tuple(done)
            link = self.links.get(key)
            if link is None:
                link = self._disk_link(key)
            if link is None:
                continue
            hops += 1
            if hops > _MAX_LINK_HOPS or link.startswith(("/", "\\")) or (len(link) > 1 and link[1] == ":"):
                raise UnsafeArchiveError(f"{path!r} goes through a link loop or an absolute link ({link!r})")
            done.pop()
            more = [p for p in link.replace("\\", "/").split("/") if p not in ("", ".")]
            todo.extend(reversed(more))
        return tuple(done)

    def add(self, m: tarfile.TarInfo) -> None:
        """Check one member as extraction would write it, then record what it makes."""
        where = self.resolve(m.name, follow_last=not (m.issym() or m.islnk()))
        try:
            if m.issym():
                self.resolve(m.linkname, base=where[:-1])
            elif m.islnk():
                self.resolve(m.linkname)  # hard links name a member from the archive's root
        except UnsafeArchiveError:
            raise UnsafeArchiveError(
                f"archive member {m.name!r} links to {m.linkname!r}, outside the target; refusing"
            ) from None
        if m.issym():
            self.links[where] = m.linkname
            self.plain.discard(where)
        else:
            self.links.pop(where, None)
            self.plain.add(where)

    def check_links(self) -> None:
        """Every link the archive leaves must still point inside (a later link may have
        changed what an earlier one's ``..`` means)."""
        for where, target in self.links.items():
            try:
                self.resolve(target, base=where[:-1])
            except UnsafeArchiveError:
                name = "/".join(where)
                raise UnsafeArchiveError(
                    f"archive link {name!r} -> {target!r} points outside the target once extracted; refusing"
                ) from None


def extract_archive(archive: Path, target: Path) -> list[str]:
    """Extract a zip or tar archive into ``target`` after checking every member.

    Nothing is written when any member is unsafe (absolute path, ``..``, a
    link leaving ``target`` — through links the archive itself makes, in any
    order — a device or FIFO). Returns the member names.
    """
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    kind = _is_archive(archive)
    if kind == "zip":
        with zipfile.ZipFile(archive) as z:
            infos = z.infolist()
            for info in infos:
                _safe_target(root, info.filename)
                mode = (info.external_attr >> 16) & 0xFFFF
                if stat.S_ISLNK(mode):
                    raise UnsafeArchiveError(f"archive member {info.filename!r} is a symbolic link; refusing")
            z.extractall(root)
            return [i.filename for i in infos]
    if kind == "tar":
        with tarfile.open(archive) as t:
            members = t.getmembers()
            plan = _TarPlan(root)
            for m in members:
                _safe_target(root, m.name)
                if m.isdev() or m.isfifo():
                    raise UnsafeArchiveError(f"archive member {m.name!r} is a device or FIFO; refusing")
                try:
                    plan.add(m)
                except UnsafeArchiveError as e:
                    if str(e).startswith("archive "):
                        raise
                    raise UnsafeArchiveError(f"archive member {m.name!r}: {e}; refusing") from None
            plan.check_links()
            try:
                t.extractall(root, filter="data")  # Python's own check too, should ours miss a case
            except tarfile.FilterError as e:
                raise UnsafeArchiveError(f"{archive}: {e}; refusing (extraction stopped part-way)") from e
            return [m.name for m in members]
    raise FetchError(f"{archive} is not a zip or tar archive")


# ---------------------------------------------------------------------------
# a whole source
# ---------------------------------------------------------------------------


def _read_manifest(target: Path) -> dict[str, Any]:
    p = target / MANIFEST
    if not p.is_file():
        return {"files": {}}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else {"files": {}}
    except (OSError, json.JSONDecodeError):
        return {"files": {}}


def _write_manifest(target: Path, manifest: dict[str, Any]) -> None:
    tmp = target / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, target / MANIFEST)


def _read_lock(target: Path) -> dict[str, Any]:
    """The lock file's content (``{"version": 1, "files": [...]}``); empty when absent.
    A lock that cannot be read is an error, never silently replaced: it is the record."""
    p = target / LOCK
    if not p.is_file():
        return {"version": 1, "files": []}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise FetchError(
            f"{p} cannot be read ({e}); it records the checksums of the first downloads. "
            "Restore it, or delete it to trust the files again on the next fetch."
        ) from e
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise FetchError(f"{p}: expected {{'version': 1, 'files': [...]}}; restore it or delete it")
    return data


def _lock_entry(lock: Mapping[str, Any], source: str, filename: str) -> dict[str, Any] | None:
    for e in lock["files"]:
        if isinstance(e, dict) and e.get("source") == source and e.get("filename") == filename:
            return e
    return None


def _record(target: Path, lock: dict[str, Any], source: str, r: FileResult, url: str) -> None:
    entry = {
        "source": source,
        "filename": r.name,
        "url": url,
        "size": r.size,
        "sha256": r.sha256,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    lock["files"] = [
        e for e in lock["files"] if not (e.get("source") == source and e.get("filename") == r.name)
    ] + [entry]
    tmp = target / (LOCK + ".tmp")
    tmp.write_text(json.dumps(lock, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, target / LOCK)


def _lock_mismatch(
    target: Path, entry: Mapping[str, Any], actual: str, kept: Path | None, *, installed: bool = False
) -> LockMismatchError:
    lock = target / LOCK
    name = entry.get("filename")
    where = (
        f"The file at {kept} was left as it is"
        if installed
        else f"It was NOT installed; its bytes are kept in {kept}"
    )
    return LockMismatchError(
        f"{name}: sha256 {actual} differs from {entry.get('sha256')}, recorded in {lock} when it was "
        f"first downloaded from {entry.get('url')} on {entry.get('date')}. {where}. "
        "If the download was corrupted, delete that file and run fetch again. If the publisher changed "
        f"the file, check the new one against a trusted source, then delete the entry for {name} from "
        f"{lock} (or the whole lock file) and run fetch again to trust it.",
        expected=str(entry.get("sha256")),
        actual=actual,
        kept=kept or target / str(name),
    )


def verify_lock(target: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Check the files of ``target`` against its lock file (``georeason data check``).

    Returns one row per recorded file: ``{"source", "filename", "status", "sha256"}`` with
    status "ok", "missing" (e.g. an archive deleted after extraction) or "mismatch";
    empty when ``target`` has no lock. Raises FetchError when the lock is unreadable.
    """
    out = Path(target).expanduser()
    rows = []
    for e in _read_lock(out)["files"]:
        path = out / str(e.get("filename"))
        status = "missing"
        if path.is_file():
            same_size = e.get("size") is None or path.stat().st_size == e.get("size")
            digest = sha256_file(path) if same_size else "(size differs)"
            status = "ok" if digest == e.get("sha256") else "mismatch"
        row = {"source": e.get("source"), "filename": e.get("filename"), "status": status, "path": str(path)}
        if status == "mismatch":
            row["message"] = str(_lock_mismatch(out, e, digest, path, installed=True))
        rows.append(row)
    return rows


def fetch(
    name: str,
    target: str | os.PathLike[str],
    *,
    registry: Mapping[str, Source] | None = None,
    base_url: str | None = None,
    force: bool = False,
    retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 60.0,
    progress_factory: Callable[[str, int | None], Callable[[int, int | None], None]] | None = None,
    log: Callable[[str], None] = logger.info,
) -> FetchResult:
    """Download, verify and extract every file of source ``name`` into ``target``.

    Args:
        registry: sources by name (default :func:`load_registry`).
        base_url: take every file from this mirror instead (file names kept).
        force: download again even what is installed.
        retries, backoff, timeout: see :func:`download`.
        progress_factory: ``(file name, expected size) -> progress callback``.
        log: receives one line per event (UNVERIFIED warnings included).

    Raises:
        ValueError: unknown source.
        FetchError / ChecksumError / UnsafeArchiveError: see the module doc.
    """
    reg = load_registry() if registry is None else registry
    if name not in reg:
        raise ValueError(f"unknown source {name!r}; known: {', '.join(sorted(reg))}")
    source = reg[name].resolved(base_url)
    check_source_paths(source)  # a registry built in code is checked as a registry file is
    out = Path(target).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(out)
    manifest.setdefault("source", name)
    lock = _read_lock(out)
    results: list[FileResult] = []
    for f in source.files:
        dest = out / f.name
        entry = manifest["files"].get(f.name, {})
        recorded = None if f.sha256 else _lock_entry(lock, name, f.name)
        expected = f.sha256 or (recorded or {}).get("sha256")
        if f.manual and not dest.is_file():
            r = FileResult(name=f.name, url=f.url, path=str(dest), status="manual-missing")
            r.messages.append(
                f"MANUAL: {f.name} cannot be downloaded by a script. Get it from {f.url} and place it at "
                f"{dest}, then run this command again. {f.note}".rstrip()
            )
            log(r.messages[-1])
            results.append(r)
            continue
        if force and dest.is_file() and not f.manual:
            dest.unlink()
        if f.manual:
            r = FileResult(name=f.name, url=f.url, path=str(dest), status="manual-present")
            r.sha256 = sha256_file(dest)
            r.size = dest.stat().st_size
            if recorded is not None and r.sha256 != expected:
                raise _lock_mismatch(out, recorded, r.sha256, dest, installed=True)
            if f.sha256 is not None and r.sha256 != f.sha256:
                raise ChecksumError(
                    f"{dest}: sha256 {r.sha256} != pinned {f.sha256}; this is not the expected file",
                    expected=f.sha256,
                    actual=r.sha256,
                    kept=dest,
                )
        else:
            log(f"{'checking' if dest.is_file() else 'downloading'} {f.name} from {f.url}")
            cb = progress_factory(f.name, f.size) if progress_factory else None
            try:
                r = download(
                    f.url,
                    dest,
                    sha256=expected,
                    size=f.size,
                    retries=retries,
                    backoff=backoff,
                    timeout=timeout,
                    progress=cb,
                )
            except ChecksumError as e:
                if recorded is None:
                    raise
                raise _lock_mismatch(out, recorded, e.actual, e.kept) from None
            if r.resumed_from:
                log(f"{f.name}: resumed from byte {r.resumed_from:,}")
        r.verified = f.sha256 is not None
        if f.sha256 is not None:
            r.trust = "pinned"
        elif recorded is not None:
            r.trust = "lock"
            log(f"{f.name}: sha256 matches the one recorded on first download ({recorded.get('date')})")
        else:
            r.trust = "first-use"
            _record(out, lock, name, r, f.url)
            msg = (
                f"UNVERIFIED (trust on first use): {f.name} has no published checksum; its sha256 "
                f"{r.sha256} ({r.size:,} bytes) is recorded in {out / LOCK} and every later fetch and "
                "`data check` is verified against it. Compare it with a trusted copy before publishing results."
            )
            r.messages.append(msg)
            log(msg)
        if f.extract:
            extract_dir = (out / f.extract_to).resolve()
            if not extract_dir.is_relative_to(out.resolve()):  # through a link already on disk
                raise UnsafeArchiveError(
                    f"extract_to {f.extract_to!r} resolves to {extract_dir}, outside {out}"
                )
            already = entry.get("extracted_sha256") == r.sha256 and entry.get("extracted_to") == str(
                extract_dir
            )
            if already and not force:
                r.extracted_to = str(extract_dir)
            else:
                log(f"extracting {f.name} into {extract_dir}")
                members = extract_archive(dest, extract_dir)
                r.extracted_to = str(extract_dir)
                r.messages.append(f"extracted {len(members)} members")
        manifest["files"][f.name] = {
            "url": f.url,
            "size": r.size,
            "sha256": r.sha256,
            "verified": r.verified,
            "trust": r.trust,
            "pinned_sha256": f.sha256,
            "extracted_to": r.extracted_to,
            "extracted_sha256": r.sha256 if r.extracted_to else None,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        _write_manifest(out, manifest)
        results.append(r)
    return FetchResult(source=name, target=str(out), files=results)


def trust_of(f: RemoteFile) -> str:
    """How a file of the registry is checked: "pinned" (a publisher's sha256) or "tofu"
    (trust on first use: the first download's sha256 is recorded in :data:`LOCK`)."""
    return "pinned" if f.sha256 else "tofu"


def describe_sources(registry: Mapping[str, Source] | None = None) -> list[dict[str, Any]]:
    """JSON-able list of the sources and their files (for ``georeason data fetch --list``)."""
    reg = load_registry() if registry is None else registry
    out = []
    for s in reg.values():
        d = asdict(s)
        d["files"] = [{**asdict(f), "name": f.name, "trust": trust_of(f)} for f in s.files]
        out.append(d)
    return out


__all__ = [
    "LOCK",
    "MANIFEST",
    "REGISTRY",
    "REGISTRY_ENV",
    "ChecksumError",
    "FetchError",
    "FetchResult",
    "FileResult",
    "LockMismatchError",
    "RemoteFile",
    "Source",
    "UnsafeArchiveError",
    "check_source_paths",
    "describe_sources",
    "download",
    "extract_archive",
    "fetch",
    "load_registry",
    "sha256_file",
    "trust_of",
    "verify_lock",
]
