"""The on-disk cache of compiled geography: rebuilt per data version, old versions pruned."""

from __future__ import annotations

from pathlib import Path

import pytest

from georeason.geo import _cache


def test_a_new_data_version_replaces_the_old_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOREASON_CACHE", str(tmp_path))
    monkeypatch.setattr(_cache, "_data_fingerprint", lambda: "aaa111")
    assert _cache.cached("table", lambda: [1]) == [1]
    assert _cache.cached("table-other", lambda: [3]) == [3]
    monkeypatch.setattr(_cache, "_data_fingerprint", lambda: "bbb222")
    assert _cache.cached("table", lambda: [2]) == [2]
    names = sorted(p.name for p in tmp_path.iterdir())
    # the old version of "table" is gone; "table-other" (another name) is kept
    assert names == ["table-bbb222.pkl", "table-other-aaa111.pkl"]
    assert _cache.cached("table", lambda: [9]) == [2]  # read back, not rebuilt


def test_a_corrupt_file_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOREASON_CACHE", str(tmp_path))
    monkeypatch.setattr(_cache, "_data_fingerprint", lambda: "ccc333")
    (tmp_path / "table-ccc333.pkl").write_bytes(b"not a pickle")
    assert _cache.cached("table", lambda: {"ok": True}) == {"ok": True}
