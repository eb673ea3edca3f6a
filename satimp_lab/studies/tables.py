"""How the studies and the notebooks save a table: ``tables/<name>.csv`` and ``.md`` under the
run's output folder, and JSON-safe values for the claim files.

A bottom module of ``studies`` (it imports only ``store``), so that the study classes
(``studies.base``) and the report (``studies.report``) both use it without importing each other.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..store import atomic_write

__all__ = ["json_safe", "save_table"]


def json_safe(value):
    """``value`` with dict keys as strings, numpy scalars as Python numbers and nan/inf as None
    (JSON has no nan): what ``json.dumps`` of a claim or a setting needs."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_table(frame: pd.DataFrame, out_dir: str | Path | None, name: str, floatfmt: str = ".3f") -> None:
    """Write ``tables/<name>.csv`` and ``.md`` under ``out_dir`` (no-op when None)."""
    if out_dir is None:
        return
    folder = Path(out_dir) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / f"{name}.csv", frame.to_csv(index=False))
    atomic_write(folder / f"{name}.md", frame.to_markdown(index=False, floatfmt=floatfmt))
