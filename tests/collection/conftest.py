"""What the collection's tests share: the notebooks run once per session on the bundled company
(``make report``: :func:`sample_run`) and on a company made with another seed and other effect
sizes (:func:`other_company`), and the ``metrics.json`` of every notebook on each
(:func:`metrics`), which the truth checks (``test_other_seed.py``), the registry check and the
claims tests (``test_claims_NN.py``) read.

``make test`` runs on two processes (pytest-xdist, ``--dist loadfile``): these runs are made once
per test run, by the first process that needs them, in a folder both share, under a file lock
(:func:`_once`); the other process waits and reads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from helpers import paths, run

#: The other company's seed; RETENTION_LAB_OTHER_SEED=N runs the same checks on another company.
OTHER_SEED = int(os.environ.get("RETENTION_LAB_OTHER_SEED", "7"))
#: Effect sizes changed from the bundled company (SynthConfig fields), so a notebook that printed
#: the bundled truth instead of reading the data folder's would fail.
OVERRIDES: dict[str, str] = {
    "loyalty_rate_uplift": "1.8",
    "birthday_uplift": "0.07",
    "winback_uplift": "0.06",
    "delivery_fix_reduction": "0.4",
    "sub_hr_bad_ticket": "2.0",
    "detractor_dropout_followup": "0.15",
}
COMPANIES: tuple[str, ...] = ("bundled", "other")


def run_cli(reports: Path, *args: str, make: bool = False) -> subprocess.CompletedProcess:
    """The batch runner as users call it (``make report`` or ``python -m helpers.run``), writing
    into `reports` (RETENTION_LAB_REPORTS), never into reports/."""
    env = {**os.environ, "RETENTION_LAB_REPORTS": str(reports)}
    cmd = ["make", "-s", "report", *args] if make else [sys.executable, "-m", "helpers.run", *args]
    return subprocess.run(
        cmd, cwd=paths.ROOT, env=env, capture_output=True, text=True, timeout=1800
    )


def _shared(tmp_path_factory, name: str) -> Path:
    """`name` in the folder every process of this test run shares (with pytest-xdist each worker
    has its own base temp folder under one common parent)."""
    root = tmp_path_factory.getbasetemp()
    return (root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root) / name


def _once(folder: Path, make: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """``make(folder)``'s JSON answer, computed by the first process that asks (under a file
    lock) and read back by the others."""
    done = folder / "done.json"
    with FileLock(str(folder) + ".lock"):
        if not done.exists():
            folder.mkdir(parents=True, exist_ok=True)
            done.write_text(json.dumps(make(folder)))
    return json.loads(done.read_text())


def _process(proc: subprocess.CompletedProcess) -> dict[str, Any]:
    return {"args": proc.args, "returncode": proc.returncode, "stdout": proc.stdout,
            "stderr": proc.stderr}  # fmt: skip


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """``make report RUN=e2e`` on the bundled company: (reports folder, the finished process)."""
    folder = _shared(tmp_path_factory, "sample_run")
    saved = _once(folder, lambda f: _process(run_cli(f / "reports", "RUN=e2e", make=True)))
    proc = subprocess.CompletedProcess(
        saved["args"], saved["returncode"], saved["stdout"], saved["stderr"]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return folder / "reports", proc


def _generate(out: Path) -> dict[str, Any]:
    sets = [arg for k, v in OVERRIDES.items() for arg in ("--set", f"{k}={v}")]
    proc = subprocess.run(
        [sys.executable, "-m", "helpers.synth", "--out", str(out / "company"), "--seed",
         str(OTHER_SEED), *sets],
        cwd=paths.ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return _process(proc)


@pytest.fixture(scope="session")
def other_company(tmp_path_factory) -> Path:
    """A company generated with seed :data:`OTHER_SEED` and the effect sizes :data:`OVERRIDES`."""
    folder = _shared(tmp_path_factory, "other_company")
    saved = _once(folder, _generate)
    assert saved["returncode"] == 0, saved["stderr"][-3000:]
    return folder / "company"


def notebook(nn: str) -> Path:
    """The notebook numbered `nn` ('03')."""
    (found,) = [nb for nb in run.notebooks() if nb.name.startswith(f"{nn}_")]
    return found


@pytest.fixture(scope="session")
def metrics(sample_run, other_company, tmp_path_factory) -> Callable[[str, str], dict[str, Any]]:
    """``metrics(nn, company)``: notebook `nn`'s metrics.json on 'bundled' (from
    :func:`sample_run`) or 'other' (run once per session on :func:`other_company`)."""
    cache: dict[str, dict[str, Any]] = {}

    def run_other(folder: Path) -> dict[str, Any]:
        """Every notebook with a data_dir at once, side by side (run.execute_many)."""
        runnable = [
            p for p in run.notebooks() if "data_dir" in run.params_for(p, {"data_dir": "x"})
        ]
        jobs = [(p, folder / f"other_{p.name[:2]}", {"data_dir": str(other_company)})
                for p in runnable]  # fmt: skip
        for _, out, _ in jobs:
            out.mkdir(parents=True, exist_ok=True)
        results = run.execute_many(jobs, html_report=False)
        return {p.name[:2]: r for p, r in zip(runnable, results, strict=True)}

    def get(nn: str, company: str) -> dict[str, Any]:
        nb = notebook(nn)
        if company == "bundled":
            return json.loads((sample_run[0] / "e2e" / f"{nb.stem}.metrics.json").read_text())
        if company != "other":
            raise ValueError(f"company must be one of {COMPANIES}, got {company!r}")
        if not cache:
            cache.update(_once(_shared(tmp_path_factory, "other_runs"), run_other))
        if nn not in cache:
            raise ValueError(f"{nb.name} takes no data_dir: it cannot run on the other company")
        return cache[nn]

    return get
