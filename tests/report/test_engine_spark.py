"""The report's engine expressions on Spark (PySpark in local mode) equal those on DuckDB.

Marked ``spark``: run with ``make test-spark``, which installs Java (Debian's package) and
PySpark (requirements-spark.txt). Without PySpark these tests are skipped."""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest

from helpers import data
from helpers.report import engine

pytest.importorskip("pyspark")
pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("retention-lab-tests")
        .config("spark.sql.session.timeZone", "UTC")  # timestamps as written, as in DuckDB
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield ibis.pyspark.connect(session)
    session.stop()


def random_orders(seed: int) -> pd.DataFrame:
    """300 orders of 40 customers over two years, with zero and negative amounts and orders at
    the same second."""
    rng = np.random.default_rng(seed)
    n = 300
    o = pd.DataFrame(
        {
            "customer_id": rng.integers(1, 41, n),
            "order_date": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 730 * 86400, n), unit="s"),
            "amount": np.round(rng.normal(40, 30, n), 2) * (rng.random(n) > 0.1),
        }
    )
    return pd.concat([o, o.iloc[:20].assign(amount=1.5)], ignore_index=True)


CASES = {
    "bundled": lambda: data.load_orders()[["customer_id", "order_date", "amount"]],
    "random 1": lambda: random_orders(1),
    "random 2": lambda: random_orders(2),
}


@pytest.mark.parametrize("case", list(CASES))
def test_spark_equals_duckdb(spark, case):
    orders = CASES[case]()
    table = spark.create_table(f"orders_{case.replace(' ', '_')}", orders, overwrite=True)
    for as_of in ("2025-12-31", "2025-11-15"):  # the end of a quarter and mid-period
        calls = [
            (engine.customer_summary, (as_of, "W"), {}),
            (engine.period_retention, ("M", as_of), {}),
            (engine.cohort_table, ("Q", as_of), {"kind": "n_period"}),
            (engine.cohort_table, ("M", as_of), {"kind": "unbounded"}),
            (engine.calibration_holdout, ("2025-06-30", as_of, "W"), {}),
        ]
        for f, args, kwargs in calls:
            on_spark = f(table, *args, **kwargs)
            on_duckdb = f(orders, *args, **kwargs)
            pd.testing.assert_frame_equal(on_spark, on_duckdb, check_exact=False, rtol=1e-9)
        h_spark, h_duckdb = engine.headline(table, as_of), engine.headline(orders, as_of)
        assert h_spark.keys() == h_duckdb.keys()
        for k, v in h_duckdb.items():
            assert h_spark[k] == (pytest.approx(v, rel=1e-9) if isinstance(v, float) else v), k
    pd.testing.assert_series_equal(
        engine.customer_totals(table).sort_index(),
        engine.customer_totals(orders).sort_index(),
        check_exact=False,
        rtol=1e-9,
    )


@pytest.mark.parametrize("case", ["bundled", "random 1"])
def test_the_sections_reductions_on_spark_equal_duckdb(spark, case):
    """What the acquisition, survey, campaign and loyalty sections take from the orders
    (issues 28 and 31) reduces the same on Spark as on DuckDB."""
    from helpers import periods

    orders = CASES[case]()
    orders = orders.assign(
        customer_id=orders["customer_id"].astype(str),
        discount=np.where(np.arange(len(orders)) % 3 == 0, 2.5, 0.0),
        channel=np.where(np.arange(len(orders)) % 2 == 0, "web", "app"),
    )
    table = spark.create_table(f"sections_{case.replace(' ', '_')}", orders, overwrite=True)
    as_of = "2025-11-15"
    ids = pd.Index(sorted(orders["customer_id"].unique()))
    first = orders.groupby("customer_id")["order_date"].min().reindex(ids)
    month = pd.Series(periods.period_codes(first.to_numpy(), "M"), ids)
    last = periods.last_complete_period(as_of, "M")
    group = pd.Series(np.where(np.arange(len(ids)) % 2 == 0, "a", "b"), ids)
    events = orders.iloc[::7][["customer_id", "order_date"]].rename(columns={"order_date": "at"})

    def both(f, *args, **kwargs):
        a, b = f(table, *args, **kwargs), f(orders, *args, **kwargs)
        if isinstance(a, tuple):
            a, b = a[0], b[0]
        if isinstance(a, pd.Series):
            pd.testing.assert_series_equal(a, b, check_exact=False, rtol=1e-9)
        else:
            pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, check_dtype=False)

    both(engine.first_orders, as_of, columns=("channel", "discount"))
    both(engine.value_by_number)
    both(engine.customer_discounts)
    both(engine.cumulative_margin, month, last, list(range(13)), 0.4, 5.0)
    both(lambda o, *a: engine.value_by_age(o, month, group, last, 11, 0.4, 5.0))
    both(lambda o: engine.orders_after(events, o, 30, at="at", values=("amount",), as_of=as_of))
    both(lambda o: engine.history_features(events, o, "at", first))
    both(engine.first_order_times, as_of)
    both(engine.orders_of, ids[::3], as_of)


@pytest.mark.parametrize("ids", ["integer", "text"])
def test_spark_samples_the_same_customers_as_duckdb(spark, ids):
    """engine.sample_customers (the definitions' sample of about 50,000 customers) draws the same
    customers on Spark as on DuckDB: Spark's md5 is DuckDB's (each engine's hash() is its own)."""
    from helpers.report import engine

    orders = data.load_orders()[["customer_id", "order_date", "amount"]]
    if ids == "text":
        orders = orders.assign(customer_id="c-" + orders["customer_id"].astype(str) + "-é")
    table = spark.create_table(f"sampled_{ids}", orders, overwrite=True)
    got = set(engine.sample_customers(table, 9).customer_id.execute().astype(str))
    want = set(engine.sample_customers(ibis.memtable(orders), 9).customer_id.execute().astype(str))
    assert got == want and 0 < len(want) < orders["customer_id"].nunique() / 4


def test_spark_files_stay_in_the_scratch_folder_and_go_with_the_session(tmp_path):
    """engine.spark_connect puts Spark's files (the block manager's, the JVM's temporary
    folders) in a folder of its own inside the one given, and removes it at exit: a session
    whose JVM was killed (the report's kernel at its end) left four folders in /tmp. A fresh
    interpreter, since this process has its own session (the fixture's)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        from pathlib import Path
        import pyarrow as pa
        from helpers.report import engine
        con = engine.spark_connect(folder={str(tmp_path)!r})
        t = engine.on_spark(pa.table({{"customer_id": [1, 2, 1], "amount": [1.0, 2.0, 3.0]}}), con)
        assert t.group_by("customer_id").agg(s=t.amount.sum()).to_pyarrow().num_rows == 2
        (scratch,) = Path({str(tmp_path)!r}).glob("retention-lab-spark-*")
        print(*sorted(p.name for p in (scratch / "local").iterdir()))
        print(*sorted(p.name for p in (scratch / "tmp").iterdir()))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    # the JVM's own output went to its log in the scratch folder, none to this process's: in
    # the report's kernel it became cell outputs, the consultant's host name and address in
    # the HTML (log4j's warnings, Java's)
    assert run.stderr == "", run.stderr[-3000:]
    local, tmp = run.stdout.splitlines()
    assert "blockmgr-" in local  # the block manager's folder in the scratch folder
    assert "spark-" in tmp and "artifacts-" in tmp  # the JVM's temporary folders there too
    assert list(tmp_path.iterdir()) == []  # and all of it removed at exit


#: Texts with blanks of each kind at their ends (the ASCII ones, the separators U+001C-U+001F,
#: U+0085, the no-break, ideographic and line-separator spaces) and inside them.
TEXTS = ["a", " a", "a\t", "\u00a0a\u3000", "\t\n", "", "\u2028x y\u2029", "x\x1cy", "\x85z\x1f",
         "cancelled ", " \u00a0cancel", "can cel", "guest\u00a0", None]  # fmt: skip


def test_text_is_trimmed_on_spark_as_str_strip(spark):
    """engine.strip and the matching that stands in for trimming (a blank text, a prefix after
    the blanks) give on Spark (Java's regular expressions) what Python's str.strip() gives, as
    the file readers trim a cell and as DuckDB does (the same literal characters in a pattern)."""
    frame = pd.DataFrame({"i": range(len(TEXTS)), "s": TEXTS})
    for t in (spark.create_table("texts", frame, overwrite=True), ibis.memtable(frame)):
        got = (
            t.select(
                "i",
                stripped=engine.strip(t.s),
                blank=engine._trimmed_match(t.s, "").fill_null(False),
                prefix=engine._trimmed_prefix(t.s, "cancel"),
            )
            .to_pandas()
            .sort_values("i")
        )
        want = [None if s is None else s.strip() for s in TEXTS]
        assert [None if pd.isna(v) else v for v in got["stripped"]] == want
        assert got["blank"].tolist() == [s == "" for s in want]
        assert got["prefix"].tolist() == [s is not None and s.startswith("cancel") for s in want]
