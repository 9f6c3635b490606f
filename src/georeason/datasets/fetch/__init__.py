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

Modules by role: :mod:`.registry` (sources, registry files, path checks), :mod:`.download`
(one file: resume, retry, verify), :mod:`.archive` (safe extraction), :mod:`.lock` (``FETCHED.json``
and the trust-on-first-use lock), :mod:`.errors`; this module fetches a whole source.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from georeason.datasets.fetch.archive import extract_archive
from georeason.datasets.fetch.download import FileResult, download, sha256_file
from georeason.datasets.fetch.errors import (
    ChecksumError,
    FetchError,
    LockMismatchError,
    UnsafeArchiveError,
)
from georeason.datasets.fetch.lock import (
    LOCK,
    MANIFEST,
    lock_entry,
    lock_mismatch,
    read_lock,
    read_manifest,
    record_first_use,
    verify_lock,
    write_manifest,
)
from georeason.datasets.fetch.registry import (
    REGISTRY,
    REGISTRY_ENV,
    RemoteFile,
    Source,
    check_source_paths,
    describe_sources,
    load_registry,
    trust_of,
)

logger = logging.getLogger("georeason.datasets.fetch")


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
    manifest = read_manifest(out)
    manifest.setdefault("source", name)
    lock = read_lock(out)
    results: list[FileResult] = []
    for f in source.files:
        dest = out / f.name
        entry = manifest["files"].get(f.name, {})
        recorded = None if f.sha256 else lock_entry(lock, name, f.name)
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
                raise lock_mismatch(out, recorded, r.sha256, dest, installed=True)
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
                raise lock_mismatch(out, recorded, e.actual, e.kept) from None
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
            record_first_use(out, lock, name, r, f.url)
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
        write_manifest(out, manifest)
        results.append(r)
    return FetchResult(source=name, target=str(out), files=results)


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
