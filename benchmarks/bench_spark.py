"""Benchmark (issue 31, point 4): the report's heavy aggregations on Spark in local mode, and how
their time grows with the orders, paired with DuckDB on the same Parquet folder.

Run:  .venv/bin/python benchmarks/bench_spark.py [--sizes 250000 1000000] [--cores 2]
(PySpark and Java: ``make test-spark`` installs them.)

Data: helpers.synth.generate_orders(n) written as a Parquet folder of 4 files into a temporary
folder (deleted after). Each engine scans the folder and computes, with the expressions of
helpers.report.engine: the BTYD summary's distinct (x, t_x, T) patterns with their counts (what
the purchase models are fitted on), monthly period retention and the monthly cohort matrix. The
line says the wall time, the orders per second and the rows that come back to the driver (the
patterns, the periods and the cohort cells: small tables, not the orders). The Spark session is
started once, before the timings (its start-up is printed apart).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import ibis
from _common import machine

from helpers.report import engine
from helpers.synth import generate_orders

AS_OF = "2025-12-31"


def write_folder(n: int, folder: Path) -> Path:
    orders = generate_orders(n)[["customer_id", "order_date", "amount"]]
    orders["customer_id"] = orders["customer_id"].astype(str)
    out = folder / f"orders_{n}"
    out.mkdir()
    step = -(-len(orders) // 4)
    for i in range(4):
        part = orders.iloc[i * step : (i + 1) * step]
        # microseconds: Spark reads no nanosecond timestamps from Parquet
        part.to_parquet(out / f"part-{i}.parquet", index=False, coerce_timestamps="us")
    return out


def aggregate(t) -> tuple[float, int]:
    """The report's heavy aggregations on table `t`; (seconds, rows returned to the driver)."""
    start = time.perf_counter()
    patterns = engine.distinct_patterns(engine.btyd_summary(t, AS_OF))
    per = engine.period_retention(t, "M", AS_OF)
    cells = engine.cohort_table(t, "M", AS_OF)
    return time.perf_counter() - start, len(patterns) + len(per) + cells.size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[250_000, 1_000_000])
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:  # make benchmark on a machine without it
        print("not run: PySpark is not installed (make test-spark installs it and Java)")
        return
    from pyspark.sql import SparkSession

    print(machine() + f", ibis {ibis.__version__}")
    start = time.perf_counter()
    session = (
        SparkSession.builder.master(f"local[{args.cores}]")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(2 * args.cores))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    spark = ibis.pyspark.connect(session)
    print(f"Spark local[{args.cores}] session start: {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            folder = write_folder(n, Path(tmp))
            duck = engine.connect(engine.memory_limit(n))
            s_duck, back = aggregate(duck.read_parquet(str(folder / "*.parquet")))
            s_spark, back_spark = aggregate(spark.read_parquet(str(folder)))
            assert back == back_spark
            print(
                f"{n:>12,} orders  DuckDB {s_duck:6.1f} s ({n / s_duck:>10,.0f} rows/s)  "
                f"Spark local {s_spark:6.1f} s ({n / s_spark:>10,.0f} rows/s, "
                f"{s_spark / s_duck:4.1f}x)  rows back to the driver: {back:,}",
                flush=True,
            )
    session.stop()


if __name__ == "__main__":
    sys.exit(main())
