"""Safe extraction of zip and tar archives (:func:`extract_archive`): every member is
checked before anything is written, links resolved as extraction will resolve them."""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from georeason.datasets.fetch.errors import FetchError, UnsafeArchiveError


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
