"""Published results beside ours: ``published_results.csv`` (shipped in the package, or
``--reference``), one row per method and benchmark, accuracies in percent."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_ACC_COLS = ("acc_1km", "acc_25km", "acc_200km", "acc_750km", "acc_2500km")


def default_reference_path() -> Path:
    """The copy of ``published_results.csv`` shipped inside the package."""
    from importlib.resources import files

    return Path(str(files("georeason.eval").joinpath("reference", "published_results.csv")))


def load_reference(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Published results (``method, benchmark, acc_1km..acc_2500km, kind, source, verified``).

    Accuracies are in percent; blank cells (figures a paper does not give) are NaN.
    """
    p = Path(path).expanduser() if path is not None else default_reference_path()
    if not p.is_file():
        raise FileNotFoundError(f"published results file {p} not found (give one with --reference)")
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    missing = {"method", "benchmark", *_ACC_COLS} - set(df.columns)
    if missing:
        raise ValueError(f"{p}: missing columns {sorted(missing)}")
    for c in _ACC_COLS:
        df[c] = pd.to_numeric(df[c].replace("", np.nan), errors="coerce")
    for c in ("kind", "source", "verified"):
        if c not in df.columns:
            df[c] = ""
    return df


def reference_rows(benchmark: str | None, path: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Published rows for ``benchmark`` (its name in the reference table), as JSON-able dicts."""
    if not benchmark:
        return []
    df = load_reference(path)
    sel = df[df["benchmark"].str.strip().str.lower() == benchmark.strip().lower()]
    out = []
    for _, r in sel.iterrows():
        out.append(
            {
                "method": r["method"],
                **{c: (None if pd.isna(r[c]) else float(r[c])) for c in _ACC_COLS},
                "kind": r["kind"],
                "source": r["source"],
                "verified": r["verified"],
            }
        )
    return out
