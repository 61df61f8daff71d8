"""The report's memory (issues 16 and 31; benchmarks/README.md, "The report's memory"): what the
notebook's kernel no longer holds gives the same files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import report


def _parts() -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    ids = pd.Index(["007", "C1", "x,y", "=1+1", "42"], name="customer_id")
    seg = pd.DataFrame(
        {
            "first_order": pd.to_datetime(["2024-01-02 13:00:00", "2024-02-03 00:00:00", None,
                                           "2024-03-01 00:00:00", "2024-03-02 00:00:01"]),
            "n_orders": [1, 2, 3, 4, 5],
            "segment": pd.Categorical(["At risk", "Champions, best", "At risk", "New", "New"]),
            "RFM": ["111", "555", "-12", "345", "123"],
        },
        index=ids,
    )  # fmt: skip
    # the net revenue of every customer with a row (one with refunds only, none for "42")
    net = pd.Series([10.123456, -5.0, 0.0, 7.77777, 3.0], name="net_revenue",
                    index=pd.Index(["C1", "only-refunds", "007", "x,y", "=1+1"]))  # fmt: skip
    clv = pd.DataFrame(
        {"expected_purchases": [0.5, np.nan, 1e-7, 2.0], "n_left": [1, 2, 3, 4]},
        index=ids[[4, 3, 1, 0]],  # another order, "x,y" missing
    )
    return seg, net, clv


@pytest.mark.parametrize("raw", [False, True])
def test_the_export_of_several_frames_is_the_export_of_their_join(tmp_path, raw):
    """``export_csv([seg, net, clv])`` writes byte for byte what the joined table gave: the first
    frame's rows in its order, the others left-joined on its index (missing: empty cells, whole
    numbers made float by the gaps as a join makes them), spreadsheet-safe text or raw."""
    seg, net, clv = _parts()
    joined = report.export_csv(seg.join(net).join(clv), tmp_path / "joined.csv", raw=raw)
    parts = report.export_csv([seg, net, clv], tmp_path / "parts.csv", raw=raw)
    assert parts.read_bytes() == joined.read_bytes()
    assert parts.read_text().splitlines()[0] == (
        '"customer_id","first_order","n_orders","segment","RFM","net_revenue",'
        '"expected_purchases","n_left"'
    )


def test_overlapping_columns_are_refused_as_a_join_refuses_them(tmp_path):
    seg, net, _ = _parts()
    with pytest.raises(ValueError, match="columns overlap"):
        seg.join(seg[["n_orders"]])
    with pytest.raises(ValueError, match=r"columns overlap: \['n_orders'\]"):
        report.export_csv([seg, net, seg[["n_orders"]]], tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_the_kernels_preload_freezes_its_imports_and_unfreezes_at_exit():
    """The report kernel's preload (build.PRELOAD) imports its libraries, then holds those
    objects out of the garbage collector (progress.freeze_imported): the next full collection
    walks none of them; at exit they are unfrozen, so the interpreter ends without nanobind's
    leak warnings (DuckDB's bindings print them when objects stay frozen)."""
    import subprocess
    import sys

    from helpers import paths
    from helpers.report.build import PRELOAD

    code = (
        f"{PRELOAD}\n"
        "import gc\n"
        "frozen = gc.get_freeze_count()\n"
        "walked = len(gc.get_objects())  # the generations' objects, not the frozen ones\n"
        "import duckdb; duckdb.connect().execute('SELECT 1').fetchall()\n"
        "print(frozen > 100_000, walked < frozen // 10)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=paths.NOTEBOOKS, check=True, timeout=300)  # fmt: skip
    assert done.stdout.split() == ["True", "True"]
    assert "leaked" not in done.stderr
