"""Every path the project uses, resolved from the package itself.

nbval runs a notebook in its own folder, papermill in the caller's folder and JupyterLab wherever
it was started, so nothing here is relative to the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT: Path = Path(__file__).resolve().parents[1]
DATASETS: Path = ROOT / "datasets"
NOTEBOOKS: Path = ROOT / "notebooks"
#: Where runs are written; RETENTION_LAB_REPORTS moves it (tests use a temporary folder).
REPORTS: Path = Path(os.environ.get("RETENTION_LAB_REPORTS", ROOT / "reports")).resolve()
BENCHMARKS: Path = ROOT / "benchmarks"


def data_dir(path: str | Path | None = None) -> Path:
    """The data folder: `path` if given (relative paths are taken from the repository root),
    otherwise the bundled `datasets/`."""
    if path is None or str(path) == "":
        return DATASETS
    p = Path(path).expanduser()
    return p if p.is_absolute() else (ROOT / p)


def shown(path: Path) -> str:
    """A path as users should see it: relative to the repository when inside it."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
