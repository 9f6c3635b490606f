"""Objects a buggy caller or a hostile client might hand the parsers and rewards (issue 13).

Shared by the property tests, tests/test_hostile_data.py and benchmarks/fuzz_rewards.py.
"""

from __future__ import annotations

from typing import Any


class Unprintable:
    """An object whose ``repr`` and ``str`` raise."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    __str__ = __repr__


class HostileStr(str):
    """A ``str`` subclass whose own methods raise: code must read it as a plain ``str``."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def strip(self, *args: Any) -> str:
        raise RuntimeError("no strip")

    def split(self, *args: Any, **kwargs: Any) -> list[str]:
        raise RuntimeError("no split")
