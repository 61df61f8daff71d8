"""Writing the company to a folder: CSV tables with ISO timestamps and ground_truth.json."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from helpers import paths


def for_csv(df: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as ISO text: a date where every value is midnight, else date and time."""
    out = df.copy()
    for col in out.columns[[pd.api.types.is_datetime64_any_dtype(t) for t in out.dtypes]]:
        s = out[col]
        fmt = "%Y-%m-%d" if (s.dropna() == s.dropna().dt.normalize()).all() else "%Y-%m-%d %H:%M:%S"
        out[col] = s.dt.strftime(fmt)
    return out


def write(
    tables: dict[str, pd.DataFrame], truth: dict, folder: Path | str | None = None
) -> list[Path]:
    """Write the tables as CSV (ISO timestamps, fixed float format) and ground_truth.json."""
    folder = Path(folder) if folder else paths.DATASETS
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in tables.items():
        path = folder / f"{name}.csv"
        fmt = "%.6g" if name.startswith("truth_") else "%.2f"  # money in cents; truth in 6 digits
        for_csv(df).to_csv(path, index=False, float_format=fmt, lineterminator="\n")
        written.append(path)
    gt = folder / "ground_truth.json"
    gt.write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n")
    written.append(gt)
    return written
