"""Benchmark (issue 16): the client report's aggregations from a CSV file, end to end — the pandas
helpers, the Ibis expressions of helpers.report.engine on embedded DuckDB, and hand-written DuckDB
SQL — each reading the same file once.

Run:  .venv/bin/python benchmarks/bench_engine.py [--sizes 1000000 10000000] [--repeat 1]

Data: helpers.synth.generate_orders(n), written as CSV into a temporary folder (deleted after;
nothing large is committed). Each variant reads the file and computes the per-customer summary,
monthly period retention and the monthly cohort matrix (the report's heavy aggregations):

* ``pandas helpers``: pandas.read_csv (typed columns, parsed dates), then segments.rfm_table,
  retention.period_retention, cohorts.cohort_table;
* ``Ibis engine``: DuckDB's typed CSV reader into an in-memory DuckDB table, then
  engine.customer_summary, engine.period_retention, engine.cohort_table (results as DataFrames);
* ``DuckDB SQL``: the same read, then per-customer aggregates and the cohort counts as SQL
  (DuckDB's own time, the floor for the engine).

This measures the canonical CSV, not yet a client's foreign format through the mapping's
validation (helpers.report.orders is not built yet). Peak RSS is the whole process's during the
timed calls. The engine's and the helpers' results are checked equal before timing. Last, the
BG/NBD fit (helpers.clv.fit_bgnbd) on the engine's per-customer summary is timed (target: under
15 s on 1M customers).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import duckdb
import ibis
import pandas as pd
from _common import fmt_row, machine, time_it

from helpers import clv, cohorts, retention, segments
from helpers.report import engine
from helpers.synth import generate_orders

AS_OF = "2025-12-31"
END = "TIMESTAMP '2026-01-01'"
SQL = [
    f"""SELECT customer_id, min(order_date) AS first_order, max(order_date) AS last_order,
               count(*) AS n_orders, sum(amount) AS total
        FROM orders WHERE order_date < {END} GROUP BY customer_id""",
    f"""WITH a AS (SELECT DISTINCT customer_id, date_trunc('month', order_date) AS p FROM orders
                   WHERE order_date < {END}),
             f AS (SELECT customer_id, min(p) AS cohort FROM a GROUP BY customer_id)
        SELECT cohort, datediff('month', cohort, p) AS age, count(*) AS n
        FROM a JOIN f USING (customer_id) GROUP BY ALL""",
]


def write_csv(n: int, folder: Path) -> Path:
    orders = generate_orders(n)[["order_id", "customer_id", "order_date", "amount"]]
    path = folder / f"orders_{n}.csv"
    con = duckdb.connect()
    con.register("o", orders)
    con.execute(f"COPY o TO '{path}' (HEADER, TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S')")
    con.close()
    return path


def with_pandas(path: Path) -> tuple:
    o = pd.read_csv(
        path,
        usecols=["customer_id", "order_date", "amount"],
        dtype={"customer_id": "int64", "amount": "float64"},
        parse_dates=["order_date"],
        date_format="%Y-%m-%d %H:%M:%S",
    )
    return (
        segments.rfm_table(o, AS_OF),
        retention.period_retention(o, "M", AS_OF),
        cohorts.cohort_table(o, "M", AS_OF),
    )


def read_duckdb(path: Path) -> ibis.BaseBackend:
    con = ibis.duckdb.connect()
    con.raw_sql(
        f"CREATE TABLE orders AS SELECT customer_id, order_date, amount FROM read_csv('{path}', "
        "columns = {'order_id': 'BIGINT', 'customer_id': 'BIGINT', 'order_date': 'TIMESTAMP', "
        "'amount': 'DOUBLE'}, header = true)"
    )
    return con


def with_engine(path: Path) -> tuple:
    con = read_duckdb(path)
    t = con.table("orders")
    out = (
        engine.customer_summary(t, AS_OF),
        engine.period_retention(t, "M", AS_OF),
        engine.cohort_table(t, "M", AS_OF),
    )
    con.disconnect()
    return out


def with_sql(path: Path) -> tuple:
    con = read_duckdb(path)
    out = tuple(con.raw_sql(q).df() for q in SQL)
    con.disconnect()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)
    print(machine() + f", ibis {ibis.__version__}")
    with tempfile.TemporaryDirectory(prefix="bench_engine_") as tmp:
        for n in args.sizes:
            path = write_csv(n, Path(tmp))
            mb = path.stat().st_size / 1e6
            print(f"{n:,} orders, CSV {mb:.0f} MB: read + summary + retention + cohorts")
            a, b = with_pandas(path), with_engine(path)
            for x, y in zip(a, b, strict=True):  # the two implementations agree
                pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=1e-9)
            del a, b
            s_sql, m_sql = time_it(lambda p=path: with_sql(p), args.repeat)
            print(fmt_row("DuckDB SQL", n, s_sql, m_sql, s_sql))
            s, m = time_it(lambda p=path: with_engine(p), args.repeat)
            print(fmt_row("Ibis engine (DuckDB)", n, s, m, s_sql))
            s, m = time_it(lambda p=path: with_pandas(p), args.repeat)
            print(fmt_row("pandas helpers", n, s, m, s_sql), flush=True)
            summary = with_engine(path)[0]
            fits: list = []
            s, m = time_it(lambda f=fits, x=summary: f.append(clv.fit_bgnbd(x)), 1)
            f = fits[0]
            print(
                f"  BG/NBD fit on the engine's summary: {len(summary):,} customers {s:.2f} s, "
                f"peak RSS {m:.0f} MB (r={f.params['r']:.3f}, alpha={f.params['alpha']:.2f}, "
                f"a={f.params['a']:.3f}, b={f.params['b']:.3f})",
                flush=True,
            )
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
