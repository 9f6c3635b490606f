"""The records of a fetch folder: ``FETCHED.json`` (:data:`MANIFEST`: what is installed and
extracted) and the trust-on-first-use lock (:data:`LOCK`: each file's size and SHA-256 at
its first download), checked by every later fetch and by :func:`verify_lock`."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from georeason.datasets.fetch.download import FileResult, sha256_file
from georeason.datasets.fetch.errors import FetchError, LockMismatchError
from georeason.runs import write_json

MANIFEST = "FETCHED.json"
LOCK = ".georeason-fetch.lock.json"


def read_manifest(target: Path) -> dict[str, Any]:
    p = target / MANIFEST
    if not p.is_file():
        return {"files": {}}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else {"files": {}}
    except (OSError, json.JSONDecodeError):
        return {"files": {}}


def write_manifest(target: Path, manifest: dict[str, Any]) -> None:
    write_json(target / MANIFEST, manifest)


def read_lock(target: Path) -> dict[str, Any]:
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


def lock_entry(lock: Mapping[str, Any], source: str, filename: str) -> dict[str, Any] | None:
    for e in lock["files"]:
        if isinstance(e, dict) and e.get("source") == source and e.get("filename") == filename:
            return e
    return None


def record_first_use(target: Path, lock: dict[str, Any], source: str, r: FileResult, url: str) -> None:
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
    write_json(target / LOCK, lock)


def lock_mismatch(
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
    for e in read_lock(out)["files"]:
        path = out / str(e.get("filename"))
        status = "missing"
        if path.is_file():
            same_size = e.get("size") is None or path.stat().st_size == e.get("size")
            digest = sha256_file(path) if same_size else "(size differs)"
            status = "ok" if digest == e.get("sha256") else "mismatch"
        row = {"source": e.get("source"), "filename": e.get("filename"), "status": status, "path": str(path)}
        if status == "mismatch":
            row["message"] = str(lock_mismatch(out, e, digest, path, installed=True))
        rows.append(row)
    return rows
