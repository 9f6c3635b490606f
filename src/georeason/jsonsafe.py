"""JSON that every parser reads: NaN and ±inf become ``null``.

Python's :mod:`json` writes bare ``NaN`` / ``Infinity`` by default, which the JSON
standard and most parsers (JavaScript, jq, Go, ...) reject. Everything georeason
writes as JSON (the CLI's output, reports, run files) goes through :func:`dumps`.
"""

from __future__ import annotations

import json
import math
from pathlib import PurePath
from typing import Any


def json_safe(obj: Any) -> Any:
    """``obj`` with non-finite floats as None, numpy / torch values as plain Python,
    paths as strings (containers walked; anything else returned as it is)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str | int | bool):
        return obj
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [json_safe(v) for v in obj]
    if isinstance(obj, PurePath):
        return str(obj)
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays, torch tensors
    if callable(tolist):
        return json_safe(tolist())
    return obj


def dumps(obj: Any, *, indent: int | None = None, ensure_ascii: bool = False) -> str:
    """:func:`json.dumps` of :func:`json_safe` ``(obj)``, never NaN; unknown objects as ``str``.

    >>> dumps({"city_lat": float("nan"), "n": 2})
    '{"city_lat": null, "n": 2}'
    """
    return json.dumps(json_safe(obj), indent=indent, ensure_ascii=ensure_ascii, allow_nan=False, default=str)


__all__ = ["dumps", "json_safe"]
