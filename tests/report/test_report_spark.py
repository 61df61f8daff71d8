"""The whole report on Spark: ``--engine spark`` (a local Spark session: PySpark in local mode)
from a Parquet folder gives the report of ``--engine duckdb`` on the same folder.

Marked ``spark``: run by ``make test-spark`` (Java and PySpark installed there); skipped without
PySpark."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import report
from tests.report.clients import SAMPLE_MAPPING, raw_orders, write_mapping

pytest.importorskip("pyspark")
pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(autouse=True)
def only_in_make_test_spark(request):
    """Two report runs, one on a Spark session (minutes): run by ``make test-spark`` (``-m
    spark``), not by ``make test`` on a machine that happens to have PySpark."""
    if "spark" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("the report on Spark runs in make test-spark (pytest -m spark)")


#: A small company: the bundled orders of its first customers, as two Parquet files.
CUSTOMERS = 800


def parquet_company(folder: Path) -> tuple[Path, Path]:
    raw = raw_orders()
    raw = raw[raw["customer_id"].isin(raw["customer_id"].unique()[:CUSTOMERS])]
    data = folder / "orders"
    (data / "year=2025").mkdir(parents=True)
    half = len(raw) // 2
    raw.iloc[:half].to_parquet(data / "part-0.parquet", index=False)
    raw.iloc[half:].to_parquet(data / "year=2025" / "part-1.parquet", index=False)
    keys = yaml.safe_load(SAMPLE_MAPPING.read_text(encoding="utf-8"))
    keys.pop("tables", None)  # the small company's orders only
    return data, write_mapping(folder / "orders_only.yaml", **keys)


def assert_close(got, want, path: str = "") -> None:
    """`got` equals `want` (metrics.json), numbers to float rounding (sums in another order)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), path
        for k in want:
            assert_close(got[k], want[k], f"{path}/{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and isinstance(got, int | float):
        assert got == pytest.approx(want, rel=1e-6, abs=0.011), path
    else:
        assert got == want, path


def test_report_on_spark_equals_the_report_on_duckdb(tmp_path, capsys, monkeypatch):
    # ipykernel passes a child's (the JVM's) writes to its descriptors on to the cell's output,
    # except under pytest (it looks for this variable, which the kernel would inherit)
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    data, mapping = parquet_company(tmp_path)
    root = tmp_path / "reports"
    for engine in ("duckdb", "spark"):
        args = ["--data", str(data), "--mapping", str(mapping), "--name", engine]
        rc = report.main([*args, "--engine", engine, "--reports-dir", str(root)])
        assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    on_duckdb, on_spark = (
        json.loads((root / n / "metrics.json").read_text()) for n in ("duckdb", "spark")
    )
    assert on_duckdb.pop("client") == "duckdb" and on_spark.pop("client") == "spark"
    assert_close(on_spark, on_duckdb)
    for export in ("customers.csv", "at_risk_customers.csv"):
        read = {"dtype": {"customer_id": str}}
        pd.testing.assert_frame_equal(
            pd.read_csv(root / "spark" / export, **read),
            pd.read_csv(root / "duckdb" / export, **read),
            check_exact=False,
            rtol=1e-6,
            atol=1.5e-4,  # the exports round to 4 decimals: a sum in another order may flip one
        )
    # nothing of Spark's JVM in what is handed over: its log and Java's warnings went to its
    # scratch folder (they were cell outputs, with the host's name and network address)
    for name in ("report.html", "report.ipynb"):
        text = (root / "spark" / name).read_text(encoding="utf-8")
        for jvm in ("log4j", "WARN Utils", "NativeCodeLoader", "jdk.incubator"):
            assert jvm not in text, (name, jvm)
