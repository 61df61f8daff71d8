"""The benchmarks' generated data (benchmarks/bench_report.py): what they claim to write."""

from __future__ import annotations

import importlib.util

import duckdb

from helpers import paths
from helpers.report.mapping import load_mapping


def _bench_report(monkeypatch):
    monkeypatch.syspath_prepend(str(paths.ROOT / "benchmarks"))  # its _common module
    spec = importlib.util.spec_from_file_location(
        "bench_report", paths.ROOT / "benchmarks" / "bench_report.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_btyd_parquet_export_is_written_part_by_part_with_distinct_ids(tmp_path, monkeypatch):
    """``--parquet --process btyd``: exactly `rows` typed rows from parts of their own (order
    and customer numbers continued from part to part: no id twice), refunds as negative amounts,
    the order channel, a mapping the report reads, and the sections' spend file beside it."""
    b = _bench_report(monkeypatch)
    monkeypatch.setattr(b, "BTYD_PART_ROWS", 25_000)
    data, mapping = b.make_parquet(tmp_path, 60_000, 6_000, "btyd")
    con = duckdb.connect()
    rows, orders, neg, channels = con.sql(
        f"SELECT count(*), count(DISTINCT zamowienie), count_if(kwota < 0), "
        f"count(DISTINCT kanal) FROM read_parquet('{data}')"
    ).fetchall()[0]
    assert (rows, orders) == (60_000, 60_000)
    assert 0.02 < neg / rows < 0.06  # 4 % refunds
    assert channels >= 2
    # a customer's orders come from one part only: their numbers were continued, not reused
    parts = con.sql(
        f"SELECT max(n) FROM (SELECT klient, count(DISTINCT (CAST(substr(zamowienie, 2) AS "
        f"BIGINT) - 1) // 25000) AS n FROM read_parquet('{data}') GROUP BY klient)"
    ).fetchall()[0][0]
    assert parts == 1
    described = con.sql(f"DESCRIBE SELECT * FROM read_parquet('{data}')").fetchall()
    assert {r[0]: r[1] for r in described} == {
        "zamowienie": "VARCHAR", "klient": "VARCHAR", "czas": "TIMESTAMP", "kwota": "DOUBLE",
        "kanal": "VARCHAR",
    }  # fmt: skip
    sections = b.with_sections(tmp_path, data, mapping)
    m = load_mapping(sections)
    assert m.columns["channel"] == "kanal" and "marketing_spend" in m.tables
    assert (tmp_path / "wydatki_parquet.csv").exists()


def test_the_duckdb_baseline_reads_the_parquet_export_by_its_mapping(tmp_path, monkeypatch):
    """The report on a Parquet export is paired with DuckDB's read + aggregate of that file (its
    mapped columns); before, the 100M Parquet runs printed "DuckDB 0.0 s" and no baseline ran.
    Checked by running the baseline's own script with its customers table returned."""
    import subprocess
    import sys

    b = _bench_report(monkeypatch)
    data, mapping = b.make_parquet(tmp_path, 5_000, 500)
    cmd = b.baseline(sys.executable, data, mapping)
    assert cmd[3:] == [str(data), "klient", "czas", "kwota"]
    script = (
        cmd[2]
        + "\nprint(con.sql('SELECT count(*), count(DISTINCT customer_id) FROM o').fetchall())"
    )
    done = subprocess.run([*cmd[:2], script, *cmd[3:]], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    expected = duckdb.sql(
        f"SELECT count(*), count(DISTINCT klient) FROM read_parquet('{data}')"
    ).fetchall()
    assert done.stdout.strip() == str(expected)
    assert b.baseline(sys.executable, tmp_path / "orders.xlsx", mapping) is None
