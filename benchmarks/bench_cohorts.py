"""Benchmark: helpers.cohorts (cohort table, unbounded curve, brackets, revenue cohorts) against
the same aggregations written as DuckDB SQL over the same in-memory orders, in the same run.

Run:  .venv/bin/python benchmarks/bench_cohorts.py [--sizes 1000000 10000000] [--repeat 3]

Target (issue 3): cohort_table within 2x of DuckDB at 10M rows, under 4 GB peak memory.
Data: helpers.synth.generate_orders(n) (BG/NBD orders 2023-2025; 10M rows take ~20 s to make).
DuckDB scans the pandas frame in place and returns the long (cohort, age, value) result; our
helpers also pivot it to the wide cohort x age table and blank the censored cells, so the
comparison is, if anything, unfavourable to us. Each pair's results are checked to agree before
timing. Peak RSS is the whole process's (data included) during the timed calls.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd
from _common import duckdb_runner, fmt_row, machine, time_it

from helpers import cohorts, periods
from helpers.synth import generate_orders

END = "TIMESTAMP '{end}'"  # exclusive end of the as-of day, filled in per data set
#: The start of the partial month after the last complete one (helpers.periods' censoring rule:
#: a period counts once it has ended on or before as-of), filled in per data set: the cohort
#: tables count the orders before it
CUT = "TIMESTAMP '{cut}'"
BRACKETS = cohorts.DEFAULT_BRACKETS

SQL_N_PERIOD = f"""
WITH o AS (SELECT customer_id, date_trunc('month', order_date) AS p FROM orders WHERE order_date < {CUT}),
     f AS (SELECT customer_id, min(p) AS cohort FROM o GROUP BY customer_id),
     a AS (SELECT DISTINCT o.customer_id, f.cohort, datediff('month', f.cohort, o.p) AS age
           FROM o JOIN f USING (customer_id))
SELECT cohort, age, count(*) AS active FROM a GROUP BY cohort, age
"""

SQL_UNBOUNDED = f"""
WITH c AS (SELECT customer_id, date_trunc('month', min(order_date)) AS cohort,
                  date_trunc('month', max(order_date)) AS last_p
           FROM orders WHERE order_date < {CUT} GROUP BY customer_id),
     h AS (SELECT cohort, datediff('month', cohort, last_p) AS last_age, count(*) AS n
           FROM c GROUP BY cohort, last_age)
SELECT cohort, last_age AS age, sum(n) OVER (PARTITION BY cohort ORDER BY last_age DESC) AS returned FROM h
"""

SQL_REVENUE = f"""
WITH o AS (SELECT customer_id, date_trunc('month', order_date) AS p, amount FROM orders
           WHERE order_date < {END}),
     f AS (SELECT customer_id, min(p) AS cohort FROM o GROUP BY customer_id)
SELECT cohort, datediff('month', cohort, p) AS age, sum(amount) AS revenue
FROM o JOIN f USING (customer_id) GROUP BY cohort, age
"""

_CASE = " ".join(f"WHEN d BETWEEN {lo} AND {hi} THEN '{lo}-{hi}'" for lo, hi in BRACKETS)
_VALUES = ", ".join(f"('{lo}-{hi}', {hi})" for lo, hi in BRACKETS)
SQL_BRACKETS = f"""
WITH f AS (SELECT customer_id, min(order_date) AS t0 FROM orders WHERE order_date < {END} GROUP BY customer_id),
     o AS (SELECT o.customer_id, f.t0,
                  CASE {_CASE} END AS bracket
           FROM (SELECT customer_id, order_date FROM orders WHERE order_date < {END}) o
           JOIN f USING (customer_id),
           LATERAL (SELECT floor(epoch(o.order_date - f.t0) / 86400)::BIGINT AS d)),
     b(bracket, hi) AS (VALUES {_VALUES}),
     hit AS (SELECT DISTINCT o.customer_id, o.bracket FROM o JOIN b USING (bracket)
             WHERE o.t0 + (b.hi + 1) * INTERVAL 1 DAY <= {END}),
     elig AS (SELECT b.bracket, count(*) AS n FROM f, b WHERE f.t0 + (b.hi + 1) * INTERVAL 1 DAY <= {END}
              GROUP BY b.bracket)
SELECT elig.bracket, coalesce(h.n, 0) / elig.n AS retention
FROM elig LEFT JOIN (SELECT bracket, count(*) AS n FROM hit GROUP BY bracket) h USING (bracket)
"""


def _wide(long: pd.DataFrame, value: str) -> pd.DataFrame:
    t = long.assign(cohort=pd.PeriodIndex(long["cohort"], freq="M")).pivot(
        index="cohort", columns="age", values=value
    )
    return t.sort_index().sort_index(axis=1)


def _check(name: str, ours: pd.DataFrame | pd.Series, duck: pd.DataFrame) -> None:
    """Both sides must give the same numbers before we time them."""
    if name == "cohort_table":
        w = _wide(duck, "active").reindex(index=ours.index, columns=ours.columns)
        np.testing.assert_allclose(w.fillna(0).to_numpy(), ours.fillna(0).to_numpy())
    elif name == "unbounded":
        w = _wide(duck, "returned").reindex(index=ours.index, columns=ours.columns)
        w = w.bfill(axis=1).fillna(0)  # dense: ages without a last order carry the next value
        np.testing.assert_allclose(w.to_numpy(), ours.fillna(0).to_numpy())
    elif name == "revenue":
        w = _wide(duck, "revenue").reindex(index=ours.index, columns=ours.columns)
        w = w.fillna(0).cumsum(axis=1).where(ours.notna())
        np.testing.assert_allclose(w.to_numpy(), ours.to_numpy(), rtol=1e-9)
    elif name == "brackets":
        d = duck.set_index("bracket")["retention"].reindex(ours.index)
        np.testing.assert_allclose(d.to_numpy(), ours.to_numpy())


def bench(n: int, repeat: int, threads: int | None, native: bool = False) -> list[str]:
    orders = generate_orders(n)
    as_of = orders["order_date"].max().normalize()  # the data end where the n-th order falls
    end = (as_of + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    last = periods.last_complete_period(as_of, "M")
    cut = (pd.Period(ordinal=last, freq="M") + 1).start_time.strftime("%Y-%m-%d")
    AS_OF = as_of.strftime("%Y-%m-%d")  # noqa: N806
    cases = {
        "cohort_table": (lambda: cohorts.cohort_table(orders, "M", AS_OF), SQL_N_PERIOD),
        "unbounded": (
            lambda: cohorts.cohort_table(orders, "M", AS_OF, kind="unbounded"),
            SQL_UNBOUNDED,
        ),
        "revenue": (
            lambda: cohorts.revenue_table(orders, "M", AS_OF, per_customer=False),
            SQL_REVENUE,
        ),
        "brackets": (
            lambda: cohorts.bracket_retention(orders, BRACKETS, freq=None, as_of=AS_OF),
            SQL_BRACKETS,
        ),
    }
    lines = [
        f"{len(orders):,} orders, {orders['customer_id'].nunique():,} customers, monthly cohorts:"
    ]
    for name, (ours_fn, sql) in cases.items():
        duck_fn = duckdb_runner(
            sql.format(end=end, cut=cut), threads=threads, native=native, orders=orders
        )
        _check(name, ours_fn(), duck_fn())  # also the warm-up
        t_duck, rss_duck = time_it(duck_fn, repeat)
        t_ours, rss_ours = time_it(ours_fn, repeat)
        duck_fn.con.close()
        lines.append(fmt_row(f"{name} (helpers)", len(orders), t_ours, rss_ours, t_duck))
        lines.append(fmt_row(f"{name} (DuckDB SQL)", len(orders), t_duck, rss_duck))
        print("\n".join(lines[-2:]), flush=True)
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000], help="numbers of orders"
    )
    ap.add_argument(
        "--repeat", type=int, default=3, help="timed runs per case (the median is shown)"
    )
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    ap.add_argument(
        "--native",
        action="store_true",
        help="copy the orders into a DuckDB table first instead of scanning the pandas frame",
    )
    args = ap.parse_args()
    print(machine())
    print(
        f"median of {args.repeat} runs; target: cohort_table <= 2x DuckDB at 10M rows, peak < 4000 MB"
    )
    for n in args.sizes:
        print(f"{n:,} orders requested, generating ...", flush=True)
        bench(n, args.repeat, args.threads, args.native)
    return 0


if __name__ == "__main__":
    sys.exit(main())
