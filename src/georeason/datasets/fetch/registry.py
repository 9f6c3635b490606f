"""The sources that can be fetched: :class:`Source` and :class:`RemoteFile`, the built-in
:data:`REGISTRY`, a JSON registry file (:func:`load_registry`) and the path checks every
entry passes (:func:`check_source_paths`)."""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from georeason.datasets.fetch.errors import FetchError

REGISTRY_ENV = "GEOREASON_FETCH_REGISTRY"


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
