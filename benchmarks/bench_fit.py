"""Benchmark: the lifetime-value fits on sufficient statistics (issue 31, point 3) against the same
fits on one row per customer, in the same run, at 1M and 10M customers.

Run:  .venv/bin/python benchmarks/bench_fit.py [--customers 1000000 10000000]
          [--resolutions s D] [--models BG/NBD MBG/NBD Gamma-Gamma Pareto/NBD]
          [--per-customer-max 10000000] [--pareto-per-customer-max 1000000] [--workdir DIR]
      .venv/bin/python benchmarks/bench_fit.py --pareto-before main --side both --customers 200000
          (the Pareto/NBD fit of this tree against `git show main:helpers/pareto_nbd.py`, loaded as
          a module beside it; `--side after` / `--side before` fits one of them, for whole-process
          pairs under /usr/bin/time -v: CPU seconds, evaluations of the likelihood, the optimum)

      .venv/bin/python benchmarks/bench_fit.py --paths both --summary S.parquet
          (each model fitted on the summary S (frequency, recency, T, monetary_value; attrs
          time_unit) by the coarse stage and Newton steps, btyd.newton_from_coarse, and by the
          optimizer on all the rows, btyd.COARSE_MIN_ROWS above the rows: CPU seconds of the fit and
          of its covariance, evaluations of the likelihood in units of all the rows, the optimum;
          `--paths coarse` / `--paths optimizer` one of them, for whole-process pairs)

Data: the customers of ``bench_report.py``'s export (:data:`bench_report.BTYD`: the sample
company's BG/NBD and Gamma-Gamma processes with shorter gaps and rarer dropout, about 10 orders a
customer), from :func:`helpers.synth.generate_orders` in blocks of 1M customers (10M rows, seeds
11, 12, ...: 10M customers are ten blocks, so the 100M orders are never in memory at once), each
block reduced to its BTYD summary (:func:`helpers.segments.rfm_table`, as of 2025-12-31, weeks)
and kept at three resolutions of t_x and T (:func:`helpers.btyd.at_resolution`): 's' (order times
to the second, as the report fits today), 'D' (whole days) and 'W' (whole weeks, the time unit).
The summaries are cached in ``--workdir`` (Parquet) and reused.

For each size, resolution and model: the number of customers and of distinct rows (patterns:
(x, t_x, T) for the purchase models, (x, mean spend) of the repeat buyers for Gamma-Gamma), the
time of the fit as the helpers now run it (distinct rows with counts, the grouping included) and
of the per-customer fit (the same code with the grouping replaced by the identity: the fit as it
was before), their ratio, and the largest relative difference of the parameters.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import machine, peak_rss_mb  # benchmarks/_common.py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers import btyd, clv, pareto_nbd, segments, synth  # noqa: E402

AS_OF = "2025-12-31"
BLOCK = 1_000_000  # customers per generated block
ORDERS_PER_CUSTOMER = 10
#: bench_report.BTYD (copied: bench_report imports psutil at the top and writes files)
BTYD = {"bgnbd_alpha": 2.0, "bgnbd_b": 8.0}
COLS = ["frequency", "recency", "T", "monetary_value"]


def _path(workdir: Path, size: int, seed: int, resolution: str) -> Path:
    return workdir / f"summary_{size}_{seed}_{resolution}.parquet"


def block_summary(size: int, seed: int, workdir: Path, resolution: str) -> pd.DataFrame:
    path = _path(workdir, size, seed, resolution)
    if path.exists():
        return pd.read_parquet(path)
    cfg = synth.SynthConfig(**BTYD)
    o = synth.generate_orders(
        size * ORDERS_PER_CUSTOMER, seed=seed, cfg=cfg, per_customer=ORDERS_PER_CUSTOMER
    )
    s = segments.rfm_table(o[o["amount"] >= 0], AS_OF, "W")
    del o
    gc.collect()
    for res in ("s", "D", "W"):
        r = btyd.at_resolution(s, res)[COLS].reset_index(drop=True)
        r.to_parquet(_path(workdir, size, seed, res))
    return pd.read_parquet(path)


def summary(customers: int, workdir: Path, resolution: str) -> pd.DataFrame:
    blocks, size = [], min(BLOCK, customers)
    for k in range(int(np.ceil(customers / size))):
        t0 = time.perf_counter()
        fresh = not _path(workdir, size, 11 + k, resolution).exists()
        blocks.append(block_summary(size, 11 + k, workdir, resolution))
        if fresh:
            print(f"  block {k + 1}: {len(blocks[-1]):,} customers in "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    out = pd.concat(blocks, ignore_index=True)
    out.attrs.update(time_unit="W", resolution=resolution)
    return out


def _identity(*cols, weights=None):
    """btyd.distinct_rows without grouping: one row per customer (the fits before issue 31)."""
    w = np.ones(len(cols[0])) if weights is None else np.asarray(weights, dtype=float)
    keep = w > 0
    return [np.asarray(c)[keep] for c in cols], w[keep], np.flatnonzero(keep)


FITS = {
    "BG/NBD": clv.fit_bgnbd,
    "MBG/NBD": clv.fit_mbgnbd,
    "Pareto/NBD": pareto_nbd.fit_pareto_nbd,
    "Gamma-Gamma": clv.fit_gamma_gamma,
}


def timed_fit(name: str, data: pd.DataFrame, per_customer: bool) -> tuple[btyd.ModelFit, float]:
    grouping = btyd.distinct_rows
    if per_customer:
        btyd.distinct_rows = _identity
    try:
        gc.collect()
        t0 = time.perf_counter()
        fit = FITS[name](data)
        return fit, time.perf_counter() - t0
    finally:
        btyd.distinct_rows = grouping


def _module_at(ref: str, workdir: Path):
    """helpers/pareto_nbd.py as it is at git `ref`, imported as a module of its own."""
    import importlib.util
    import subprocess

    path = workdir / f"pareto_nbd_{ref.replace('/', '_')}.py"
    text = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{ref}:helpers/pareto_nbd.py"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pareto_pair(data: pd.DataFrame, ref: str, side: str, workdir: Path) -> None:
    """The Pareto/NBD fit after (this tree) and before (`ref`) on the same summary: CPU seconds
    of the fit (process time), evaluations of the likelihood (the per-row function the objective
    calls: ``_loglik_grad`` after, ``_loglik`` before), the optimum and its log-likelihood by this
    tree's quadrature (the same yardstick for both: the 2F1 form overflows on some heavy buyers at
    a large s), and the gradient's norm there."""
    fits = {}
    sides = ["after", "before"] if side == "both" else [side]
    for name in sides:
        module = pareto_nbd if name == "after" else _module_at(ref, workdir)
        counted = "_loglik_grad" if hasattr(module, "_loglik_grad") else "_loglik"
        inner, calls = getattr(module, counted), [0]

        def counting(*a, inner=inner, calls=calls, **k):
            calls[0] += 1
            return inner(*a, **k)

        setattr(module, counted, counting)
        gc.collect()
        t0, w0 = time.process_time(), time.perf_counter()
        fit = module.fit_pareto_nbd(data)
        cpu, wall = time.process_time() - t0, time.perf_counter() - w0
        setattr(module, counted, inner)
        x, tx, T = (data[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
        ll, grad = pareto_nbd._loglik_grad(x, tx, T, *fit.params.values())
        fits[name] = fit
        print(f"{name:>6} ({'this tree' if name == 'after' else ref}): {len(data):,} customers, "
              f"fit {cpu:.1f} s CPU ({wall:.1f} s wall), {calls[0]} evaluations of {counted}; "
              f"r={fit.r:.8g} alpha={fit.alpha:.8g} s={fit.s:.8g} beta={fit.beta:.8g}; "
              f"LL {ll.sum():.6f}; |gradient| {np.linalg.norm(grad.sum(axis=0)):.2e}",
              flush=True)  # fmt: skip
    if len(fits) == 2:
        a, b = (np.array(list(f.params.values())) for f in fits.values())
        print(f"max relative difference of the parameters: {np.max(np.abs(a / b - 1)):.2e}")


#: The per-row functions each fit evaluates (one call: the likelihood and gradient of its rows).
_EVALUATED = [(pareto_nbd, "_loglik_grad"), (clv._BGNBDData, "nll_and_grad"),
              (clv._GGData, "nll_and_grad")]  # fmt: skip


def _rows_of(args: tuple) -> int:
    first = args[0]
    return len(first) if isinstance(first, np.ndarray) else len(first.x)


def paths_pair(data: pd.DataFrame, side: str) -> None:
    """Each model fitted by the coarse stage and Newton steps (``coarse``) and by the optimizer
    on all the rows (``optimizer``: :data:`helpers.btyd.COARSE_MIN_ROWS` above the rows): CPU
    seconds (process time) of the fit and then of its covariance (the Hessian: on the coarse
    path computed when first read, :func:`helpers.btyd.covariance_on_demand`; the optimizer's
    path computes it within the fit), evaluations of the likelihood counted in rows evaluated /
    rows fitted, the optimum; with both, the largest relative differences of the parameters,
    the log-likelihood and the standard errors."""
    rows = [0]
    for owner, name in _EVALUATED:
        inner = getattr(owner, name)

        def counting(*a, inner=inner, **k):
            rows[0] += _rows_of(a)
            return inner(*a, **k)

        setattr(owner, name, counting)
    repeat = data[(data["frequency"] > 0) & (data["monetary_value"] > 0)]
    sides = ["coarse", "optimizer"] if side == "both" else [side]
    fits: dict[str, dict[str, btyd.ModelFit]] = {}
    default = btyd.COARSE_MIN_ROWS
    for path in sides:
        btyd.COARSE_MIN_ROWS = default if path == "coarse" else 10**15
        fits[path] = {}
        for name in ["BG/NBD", "MBG/NBD", "Pareto/NBD", "Gamma-Gamma"]:
            d = repeat if name == "Gamma-Gamma" else data
            gc.collect()
            rows[0], t0 = 0, time.process_time()
            with btyd.covariance_on_demand():  # the fit, then its covariance, timed apart
                fit = FITS[name](d)
            cpu, evals = time.process_time() - t0, rows[0] / fit.extra["rows_fitted"]
            rows[0], t0 = 0, time.process_time()
            fit.cov_log  # noqa: B018 (read: computed now on the coarse path)
            cov_cpu, cov_evals = time.process_time() - t0, rows[0] / fit.extra["rows_fitted"]
            fits[path][name] = fit
            p = " ".join(f"{k}={v:.10g}" for k, v in fit.params.items())
            print(f"{path:>9} {name:<11} {len(d):>9,} customers: fit {cpu:6.2f} s CPU, "
                  f"{evals:5.1f} evaluations; covariance {cov_cpu:5.2f} s, {cov_evals:4.1f} "
                  f"evaluations; {fit.extra['optimizer']}; LL {fit.loglik:.8f}; {p}",
                  flush=True)  # fmt: skip
    btyd.COARSE_MIN_ROWS = default
    if len(fits) == 2:
        for name, fit in fits["coarse"].items():
            ref = fits["optimizer"][name]
            a, b = (np.array(list(f.params.values())) for f in (fit, ref))
            se_a, se_b = (np.sqrt(np.diag(f.cov_log)) for f in (fit, ref))
            print(f"{name:<11} max relative difference: parameters "
                  f"{np.max(np.abs(a / b - 1)):.1e}, log-likelihood "
                  f"{abs(fit.loglik / ref.loglik - 1):.1e}, standard errors "
                  f"{np.max(np.abs(se_a / se_b - 1)):.1e}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--resolutions", nargs="+", default=["s", "D", "W"])
    ap.add_argument(
        "--models", nargs="+", default=["BG/NBD", "MBG/NBD", "Gamma-Gamma", "Pareto/NBD"]
    )
    ap.add_argument(
        "--per-customer-max",
        type=int,
        default=10_000_000,
        help="run the per-customer fit up to this many customers",
    )
    ap.add_argument(
        "--pareto-per-customer-max",
        type=int,
        default=1_000_000,
        help="the Pareto/NBD per customer (numerical gradients) up to this many",
    )
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench_fit")
    ap.add_argument(
        "--pareto-before",
        metavar="REF",
        help="the Pareto/NBD fit against helpers/pareto_nbd.py at git REF",
    )
    ap.add_argument("--side", choices=["both", "after", "before"], default="both")
    ap.add_argument(
        "--paths",
        choices=["both", "coarse", "optimizer"],
        help="the coarse stage and Newton steps against the optimizer on all rows",
    )
    ap.add_argument("--summary", type=Path, help="a BTYD summary (Parquet) for --paths")
    args = ap.parse_args(argv)  # fmt: skip
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(machine())
    if args.paths:
        if args.summary is not None:
            data = pd.read_parquet(args.summary)
            data.attrs.setdefault("time_unit", "W")
        else:
            # the first n customers of the (cached) 1M-customer block, as --pareto-before
            n = args.customers[0]
            data = summary(max(n, BLOCK), args.workdir, args.resolutions[0]).iloc[:n]
            data.attrs.update(time_unit="W", resolution=args.resolutions[0])
        paths_pair(data, args.paths)
        print(f"peak RSS of the process: {peak_rss_mb():,.0f} MB")
        return 0
    if args.pareto_before:
        for n in args.customers:
            # the first n customers of the (cached) 1M-customer block
            s = summary(max(n, BLOCK), args.workdir, args.resolutions[0]).iloc[:n]
            s.attrs.update(time_unit="W", resolution=args.resolutions[0])
            pareto_pair(s, args.pareto_before, args.side, args.workdir)
        print(f"peak RSS of the process: {peak_rss_mb():,.0f} MB")
        return 0
    print(f"{'customers':>11} {'res':>3} {'model':<11} {'patterns':>11} {'distinct':>9} "
          f"{'fit (distinct rows)':>20} {'fit (per customer)':>19} {'ratio':>6} {'max rel diff':>12}")  # fmt: skip
    for n in args.customers:
        for res in args.resolutions:
            s = summary(n, args.workdir, res).iloc[:n]
            s.attrs.update(time_unit="W", resolution=res)
            for name in args.models:
                data = s
                if name == "Gamma-Gamma":
                    data = s[(s["frequency"] > 0) & (s["monetary_value"] > 0)]
                fit, t_fast = timed_fit(name, data, per_customer=False)
                limit = (
                    args.pareto_per_customer_max if name == "Pareto/NBD" else args.per_customer_max
                )
                if len(data) <= limit:
                    ref, t_slow = timed_fit(name, data, per_customer=True)
                    a = np.array(list(fit.params.values()))
                    b = np.array(list(ref.params.values()))
                    diff = f"{np.max(np.abs(a / b - 1)):.1e}"
                    slow, ratio = f"{t_slow:.2f} s", f"{t_fast / t_slow:.3f}"
                else:
                    slow, ratio, diff = "(not run)", "-", "-"
                share = fit.extra["patterns"] / fit.n
                print(f"{fit.n:>11,} {res:>3} {name:<11} {fit.extra['patterns']:>11,} "
                      f"{share:>8.1%} {t_fast:>18.2f} s {slow:>19} {ratio:>6} {diff:>12}",
                      flush=True)  # fmt: skip
            del s
            gc.collect()
    print(f"peak RSS of the process: {peak_rss_mb():,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
