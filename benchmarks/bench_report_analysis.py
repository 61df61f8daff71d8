"""Benchmark (issue 16): the analysis stage of the client report (notebook 08) on a large orders
table, step by step, in the order the notebook runs them.

Run:  .venv/bin/python benchmarks/bench_report_analysis.py [--rows 10000000] [--ids object]

Data: helpers.synth.generate_orders(n) reduced to the canonical columns the report's validated
orders table has (order_id int64, customer_id as text ``"C<id>"`` like a client's file,
order_date datetime64, amount float); ``--ids`` chooses how the text ids are held: ``object`` (Python
strings, what pandas and DuckDB give by default), ``pyarrow`` (``string[pyarrow]``) or
``category``. The economics are those of notebooks/08_sample_mapping.yaml, the as-of the day of
the last order, the retention period ``--period`` (default Q, the sample mapping's).

Each step is timed once (it is what the notebook does once) and the process's peak resident
memory *during that step* is printed (VmHWM, reset before each step; it includes the orders
table and every result kept so far, as in the notebook's kernel). The steps, as notebook 08
calls them (cell 4, then the later cells):

1. ``report.headline(orders, AS_OF)``
2. ``retention.period_retention(report.purchases(orders), period, AS_OF)``
3. ``report.segment_customers(orders, AS_OF)``
4. ``report.fit_clv(orders, seg, econ)`` (calibration/holdout, BG/NBD vs MBG/NBD, refit,
   Gamma-Gamma, predictive CLV)
5. ``report.at_risk_customers(seg, clv)``
6. ``cohorts.cohort_table(report.purchases(orders), period, AS_OF)`` + retention_matrix +
   average_curve
7. ``segments.segment_summary(seg)``
8. ``report.dropout_scenario(clv_fit, seg, econ, 0.10)``
9. the CSV export: ``seg.join(orders.groupby("customer_id")["amount"].sum())`` joined with the CLV
   table, written by the report's ``export_csv`` (to a temporary folder), and the at-risk list's CSV
10. ``report.pseudonymize`` of the ids the report shows (the at-risk top 8), and, as a separate
    figure, of every customer id (what pseudonymizing a full export would cost)
11. the monthly retention of the notebook's exercise (period_retention with "M")

Plots are not timed (a dozen bars and lines). With ``--check FILE`` the results are written to
(or, if FILE exists, compared with) a pickle, so that an optimisation can be shown to change
no number: every result is compared bit for bit, and where it is not bit-identical the largest
relative difference is printed and checked against ``--rtol`` (default 1e-9).
"""

from __future__ import annotations

import argparse
import gc
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import _reset_peak, machine, peak_rss_mb

from helpers import cohorts, paths, report, retention, segments
from helpers.report.mapping import load_mapping
from helpers.synth import generate_orders


def make_orders(n: int, ids: str = "object") -> pd.DataFrame:
    """The canonical validated orders table of n rows, customer ids as text."""
    o = generate_orders(n)
    codes, uniq = pd.factorize(o["customer_id"].to_numpy())
    text = np.array([f"C{i}" for i in uniq], dtype=object)[codes]  # one string object per customer
    out = pd.DataFrame(
        {
            "order_id": o["order_id"].to_numpy(),
            "customer_id": text,
            "order_date": o["order_date"].to_numpy("datetime64[ns]"),
            "amount": o["amount"].to_numpy(float),
        }
    )
    del o
    if ids == "pyarrow":
        out["customer_id"] = out["customer_id"].astype("string[pyarrow]")
    elif ids == "category":
        out["customer_id"] = out["customer_id"].astype("category")
    gc.collect()
    _trim()
    return out


def _trim() -> None:
    """Give the generator's freed memory back to the system (glibc's malloc_trim), so that the
    RSS figures count the orders table and the analysis, not the generator's leftovers."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def run_steps(orders: pd.DataFrame, period: str, out_dir: Path) -> tuple[list[tuple], dict]:
    mapping = load_mapping(paths.NOTEBOOKS / "08_sample_mapping.yaml")
    econ = report.client_economics(mapping)
    as_of = str(orders["order_date"].max().date())
    r: dict[str, Any] = {}

    def export() -> None:
        seg, clv = r["seg"], r["clv"]
        table = seg.join(orders.groupby("customer_id")["amount"].sum().rename("net_revenue"))
        if clv is not None:
            table = table.join(clv.drop(columns=[c for c in ("p_alive", "clv") if c in table]))
        # the report's own writer (numbers rounded to 4 places, spreadsheet-safe text, Arrow on
        # threads), not DataFrame.to_csv: 44.5 s at 2.2M customers with to_csv (2026-12-07)
        report.export_csv(table, out_dir / "customers.csv")
        report.export_csv(r["at_risk"], out_dir / "at_risk_customers.csv")
        r["export_rows"] = len(table)

    def cohort_step() -> None:
        counts = cohorts.cohort_table(report.purchases(orders), period, as_of)
        r["counts"], r["curve"] = counts, cohorts.average_curve(counts)
        r["matrix"] = cohorts.retention_matrix(counts)

    def fit() -> None:
        r["clv_fit"], r["no_clv"] = report.fit_clv(orders, r["seg"], econ)
        r["clv"] = r["clv_fit"].table if r["clv_fit"] else None

    steps: list[tuple[str, Callable[[], Any]]] = [
        ("headline", lambda: r.update(head=report.headline(orders, as_of))),
        ("period_retention", lambda: r.update(
            per=retention.period_retention(report.purchases(orders), period, as_of))),
        ("segment_customers", lambda: r.update(seg=report.segment_customers(orders, as_of))),
        ("fit_clv", fit),
        ("at_risk_customers", lambda: r.update(
            at_risk=report.at_risk_customers(r["seg"], r["clv"]))),
        ("cohort_table + curve", cohort_step),
        ("segment_summary", lambda: r.update(by_segment=segments.segment_summary(r["seg"]))),
        ("dropout_scenario", lambda: r.update(
            scen=report.dropout_scenario(r["clv_fit"], r["seg"], econ, 0.10))),
        ("CSV export", export),
        ("pseudonymize (shown)", lambda: r.update(
            shown=report.pseudonymize(r["at_risk"].head(8).index.to_series(), "salt"))),
        ("pseudonymize (all ids)", lambda: r.update(
            pseudo_all=report.pseudonymize(r["seg"].index.to_series(), "salt"))),
        ("monthly retention", lambda: r.update(
            monthly=retention.period_retention(report.purchases(orders), "M", as_of))),
    ]  # fmt: skip
    rows = []
    for name, fn in steps:
        gc.collect()
        _reset_peak()
        t0 = time.perf_counter()
        fn()
        rows.append((name, time.perf_counter() - t0, peak_rss_mb()))
        print(f"  {name:<24} {rows[-1][1]:7.2f} s   peak RSS {rows[-1][2]:6.0f} MB", flush=True)
    return rows, r


def comparable(r: dict) -> dict:
    """The results that must not change (the fits' objects reduced to their numbers)."""
    fit = r["clv_fit"]
    out = {k: r[k] for k in ("head", "per", "seg", "at_risk", "counts", "curve", "by_segment",
                             "scen", "shown", "monthly")}  # fmt: skip
    if fit is not None:
        out |= {"clv": fit.table, "check": fit.check, "model": fit.model,
                "pf": (fit.purchases.params, fit.purchases.loglik),
                "gg": (fit.spend.params, fit.spend.loglik)}  # fmt: skip
    return out


def _max_rel(x: Any, y: Any) -> float:
    """Largest relative difference between the float numbers of two results."""
    if isinstance(x, pd.DataFrame | pd.Series):
        x, y = (
            x.select_dtypes("number") if x.ndim == 2 else x,
            (y.select_dtypes("number") if y.ndim == 2 else y),
        )
        x, y = x.to_numpy(float), y.to_numpy(float)
    elif isinstance(x, dict):
        keys = [k for k in x if isinstance(x[k], float | int)]
        x, y = np.array([x[k] for k in keys], float), np.array([y[k] for k in keys], float)
    else:
        x, y = np.asarray(x, float), np.asarray(y, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(x - y) / np.maximum(np.abs(x), 1e-300)
    rel = rel[~(np.isnan(x) & np.isnan(y))]
    return float(np.nanmax(rel)) if rel.size else 0.0


def compare(a: dict, b: dict, rtol: float) -> list[str]:
    """Keys whose results differ: exactly (bit for bit), or by more than `rtol` relative."""
    diffs = []
    for k in a:
        x, y = a[k], b[k]
        try:
            if isinstance(x, pd.DataFrame):
                pd.testing.assert_frame_equal(x, y, check_exact=True)
            elif isinstance(x, pd.Series):
                pd.testing.assert_series_equal(x, y, check_exact=True)
            elif isinstance(x, tuple):
                assert x == y
            elif x != y:
                raise AssertionError
        except (AssertionError, ValueError, TypeError):
            try:
                if isinstance(x, tuple):  # (params, loglik)
                    rel = max(_max_rel(x[0], y[0]), _max_rel(x[1], y[1]))
                else:
                    rel = _max_rel(x, y)
                note = "within" if rel <= rtol else "MORE than"
            except (ValueError, TypeError, KeyError):
                rel, note = float("nan"), "not comparable:"
            diffs.append((note, f"{k}: not bit-identical; max relative difference {rel:.2e}"))
    return diffs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--ids", choices=["object", "pyarrow", "category"], default="object")
    ap.add_argument("--period", choices=["M", "Q"], default="Q")
    ap.add_argument("--check", type=Path, help="pickle of results to write or compare with")
    ap.add_argument("--rtol", type=float, default=1e-9, help="tolerance of --check for floats")
    args = ap.parse_args(argv)
    print(machine())
    t0 = time.perf_counter()
    orders = make_orders(args.rows, args.ids)
    gc.collect()
    print(
        f"{len(orders):,} orders, {orders['customer_id'].nunique():,} customers "
        f"(ids: {args.ids}), made in {time.perf_counter() - t0:.0f} s; "
        f"RSS with the table {peak_rss_mb():.0f} MB (peak so far)"
    )
    _reset_peak()
    print(f"  {'orders table alone':<24} {'':>9}   RSS      {peak_rss_mb():6.0f} MB")
    with tempfile.TemporaryDirectory(prefix="bench_report_") as tmp:
        rows, r = run_steps(orders, args.period, Path(tmp))
    core = [x for x in rows if x[0] not in ("pseudonymize (all ids)", "monthly retention")]
    print(
        f"  {'total (notebook steps)':<24} {sum(x[1] for x in core):7.2f} s   "
        f"peak RSS {max(x[2] for x in core):6.0f} MB"
    )
    if r["clv_fit"] is not None:
        f = r["clv_fit"]
        print(
            f"  model {f.model}: "
            + ", ".join(f"{k}={v:.6g}" for k, v in f.purchases.params.items())
        )
    if args.check:
        res = comparable(r)
        if args.check.exists():
            diffs = compare(pickle.loads(args.check.read_bytes()), res, args.rtol)
            print(f"results compared with {args.check}: " + ("bit-identical" if not diffs else ""))
            for note, d in diffs:
                print(f"    {d} ({note} rtol {args.rtol:g})")
            return 1 if any(note != "within" for note, _ in diffs) else 0
        args.check.write_bytes(pickle.dumps(res))
        print(f"results written to {args.check}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
