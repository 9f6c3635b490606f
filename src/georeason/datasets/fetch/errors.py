"""What can go wrong when fetching, one exception class per kind (all :class:`FetchError`)."""

from __future__ import annotations

from pathlib import Path


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
