"""Benchmark: helpers.segments.rfm_table against the same aggregation in DuckDB SQL, and the
BG/NBD fit time on 100k customers.

Run:  .venv/bin/python benchmarks/bench_rfm.py [--sizes 1000000 10000000] [--customers 100000]

Targets (issue 4): rfm_table within 2x of DuckDB; fit_bgnbd on 100k customers under 5 s.
Data: helpers.synth.generate_orders(n) (BG/NBD + Gamma-Gamma orders, about 4.5 per customer).
Both sides compute the same per-customer figures from the same in-memory DataFrame: count, sum,
first and last order time, the first order's amount (for the mean of repeat orders), and from
them x, t_x, T (weeks) and monetary_value. DuckDB scans the pandas frame in place (no copy) and
returns a pandas frame, so the comparison includes the result's conversion on both sides.
"""

from __future__ import annotations

import argparse

import duckdb
import numpy as np
import pandas as pd
from _common import machine, rows_per_s, time_it  # benchmarks/_common.py

from helpers import clv, segments
from helpers.synth import generate_orders

AS_OF = "2025-12-31"
SQL = """
SELECT customer_id,
       count(*)                                          AS n_orders,
       sum(amount)                                       AS monetary_total,
       min(order_date)                                   AS first_order,
       max(order_date)                                   AS last_order,
       count(*) - 1                                      AS frequency,
       epoch(max(order_date) - min(order_date)) / 604800 AS recency,
       epoch(TIMESTAMP '2026-01-01' - min(order_date)) / 604800 AS T,
       coalesce((sum(amount) - arg_min(amount, order_date)) / nullif(count(*) - 1, 0), 0) AS monetary_value
FROM orders
WHERE order_date < TIMESTAMP '2026-01-01'
GROUP BY customer_id
ORDER BY customer_id
"""


def bench_rfm(n: int, repeat: int) -> dict[str, float]:
    orders = generate_orders(n)
    con = duckdb.connect()
    con.register("orders", orders)

    def run_pandas() -> pd.DataFrame:
        return segments.rfm_table(orders, AS_OF, "W")

    def run_duckdb() -> pd.DataFrame:
        return con.execute(SQL).df()

    ours, duck = run_pandas(), run_duckdb()  # warm-up, and check both agree
    assert len(ours) == len(duck)
    np.testing.assert_allclose(ours["T"].to_numpy(), duck["T"].to_numpy(), atol=1e-6)
    # customers with two orders at the same first timestamp: rfm_table takes their mean as the
    # first order, arg_min picks one of them; a handful in millions
    differ = ~np.isclose(
        ours["monetary_value"].to_numpy(), duck["monetary_value"].to_numpy(), rtol=1e-6, atol=1e-6
    )
    assert differ.mean() < 1e-4, f"{differ.sum()} customers differ in monetary_value"
    t_ours, rss = time_it(run_pandas, repeat=repeat)
    t_duck, _ = time_it(run_duckdb, repeat=repeat)
    con.close()
    return {
        "orders": len(orders),
        "customers": len(ours),
        "rfm_table_s": t_ours,
        "duckdb_s": t_duck,
        "ratio": t_ours / t_duck,
        "peak_rss_mb": rss,
    }


def bench_fit(n_customers: int, repeat: int) -> dict[str, float]:
    orders = generate_orders(int(n_customers * 4.6))
    # generate_orders keeps the earliest n orders: end the data the day before the last kept one
    as_of = orders["order_date"].max().normalize() - pd.Timedelta(days=1)
    summary = segments.rfm_table(orders, as_of, "W")
    ids = summary.index[:n_customers]
    summary = summary.loc[ids]
    fit_holder: list[clv.ModelFit] = []
    t, rss = time_it(lambda: fit_holder.append(clv.fit_bgnbd(summary)), repeat=repeat)
    f = fit_holder[-1]
    return {
        "customers": len(summary),
        "fit_s": t,
        "r": f.r,
        "alpha": f.alpha,
        "a": f.a,
        "b": f.b,
        "peak_rss_mb": rss,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000], help="numbers of orders"
    )
    ap.add_argument("--customers", type=int, default=100_000, help="customers for the BG/NBD fit")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(machine())
    print("rfm_table vs DuckDB SQL (median of", args.repeat, "runs, seconds):")
    for n in args.sizes:
        r = bench_rfm(n, args.repeat)
        print(
            f"  {r['orders']:>11,} orders, {r['customers']:>9,} customers: rfm_table {r['rfm_table_s']:.2f} s ({rows_per_s(r['orders'], r['rfm_table_s']) / 1e6:.1f} M rows/s), duckdb {r['duckdb_s']:.2f} s, ratio {r['ratio']:.2f} (target <= 2), peak RSS {r['peak_rss_mb']:.0f} MB"
        )
    f = bench_fit(args.customers, args.repeat)
    print(
        f"BG/NBD fit on {f['customers']:,} customers (weeks): {f['fit_s']:.2f} s (target < 5 s), r={f['r']:.3f} alpha={f['alpha']:.3f} a={f['a']:.3f} b={f['b']:.3f}, peak RSS {f['peak_rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
