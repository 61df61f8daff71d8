"""Coverage of the collection's 95 % intervals over generated companies (issue 24) and recovery of
the purchase models' parameters on data generated under their own processes (issue 32). Not a
test: it prints tables (and writes them to ``--workdir``) for ``benchmarks/README.md``.

    .venv/bin/python benchmarks/coverage.py [--companies 30] [--customers 2000] [--first-seed 1000]
        [--notebooks 02 03 05 06 07] [--recovery-seeds 30] [--workdir DIR] [--only planted|recovery]

**Planted effects.** Companies with seeds ``first_seed``, ``first_seed + 1``, ... and
``--customers`` customers (small, so a company takes seconds to generate); every second one with
the effect sizes of the collection's other company (``tests/collection/conftest.OVERRIDES``), so
that the truths vary too. On each: notebook 04's registry metrics are computed with the notebook's
own helper calls (the BG/NBD on the clean window, the Gamma-Gamma on the repeat customers, the
referral customers' dropout ratio; no papermill); the other notebooks of the registry
(``--notebooks``) run with papermill on the company (``helpers.run.execute_many``, two at a time)
and their ``metrics.json`` is read. For every registry metric (``helpers.synth.registry``): the
companies where it was recorded, the share whose 95 % interval covers the truth, the Wilson 95 %
interval of that share (the Monte-Carlo band: coverage is estimated from a finite number of
companies), the mean bias (estimate - truth) and the mean relative bias; metrics the registry
declares biased (``registry.BIASED``) are marked. Results are cached per company in
``--workdir`` (a rerun adds companies; delete the folder to start again).

**Recovery (issue 32).** Customers simulated under each model's own process, a known truth per
parameter, fitted with the helper: BG/NBD (the sample company's generator with its planted effects
off, ``SynthConfig(planted_effects=False)``: pure BG/NBD and Gamma-Gamma), Pareto/NBD (Schmittlein,
Morrison & Colombo 1987: exponential lifetimes) and BG/BB (Fader, Hardie & Shang 2010: discrete
opportunities), ``--recovery-seeds`` data sets each; coverage of each parameter's 95 % Wald
interval over the seeds, with the same band, and the mean bias.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import multiprocessing
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers import bgbb, clv, data, pareto_nbd, periods, run, segments
from helpers.synth import SynthConfig, generate, read_truth, registry, write

#: The collection's other company's effect sizes (tests/collection/conftest.OVERRIDES), used on
#: every second company so that the truths vary with the seed.
OVERRIDES: dict[str, float] = {
    "loyalty_rate_uplift": 1.8,
    "birthday_uplift": 0.07,
    "winback_uplift": 0.06,
    "delivery_fix_reduction": 0.4,
    "sub_hr_bad_ticket": 2.0,
    "detractor_dropout_followup": 0.15,
}
NOTEBOOKS = ("02", "03", "05", "06", "07")
#: Fewer simulations than the notebooks' defaults where they feed no registry metric (the
#: teaching simulations and bootstraps of other figures), so a company takes minutes, not more.
LIGHTER: dict[str, dict[str, int]] = {
    "02": {"bootstrap_draws": 50},
    "03": {"n_boot": 200},
    "06": {"coverage_sims": 200},
    "07": {"peek_simulations": 2000, "bootstrap_resamples": 500},
}
Z = 1.959964


def wilson(k: int, n: int, z: float = Z) -> tuple[float, float]:
    """Wilson's 95 % interval of a proportion k / n (E. B. Wilson 1927, JASA 22(158))."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


# --- planted effects --------------------------------------------------------------------------


def make_company(seed: int, customers: int, folder: Path) -> Path:
    """Generate and write a company (cached: an existing folder is reused)."""
    if (folder / "ground_truth.json").exists():
        return folder
    cfg = replace(SynthConfig(), seed=seed, n_customers=customers)
    if seed % 2:
        cfg = replace(cfg, **OVERRIDES)
    tables, truth = generate(cfg)
    write(tables, truth, folder)
    return folder


def notebook04_metrics(folder: Path, time_unit: str = "W", clean_holdout_months: int = 9) -> dict:
    """Notebook 04's registry metrics, with the notebook's own helper calls (sections 3, 4 and
    its last cell): BG/NBD on the clean window, Gamma-Gamma on all repeat customers, the referral
    customers' mean dropout ratio."""
    d = str(folder)
    truth = read_truth(folder)
    params = truth["parameters"]
    as_of = params["end"]
    orders = periods.up_to(data.load_orders(d), as_of, "order_date")
    customers = data.load_customers(d)
    rfm = segments.rfm_table(orders, as_of, time_unit)
    repeat = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
    gg = clv.fit_gamma_gamma(repeat)
    launches = data.load_table("loyalty_launches", d)
    late = launches["launch_date"].max()
    late_countries = launches.loc[launches["launch_date"] == late, "country"]
    ids = customers.loc[customers["country"].isin(late_countries), "customer_id"]
    clean_orders = orders[orders["customer_id"].isin(ids)]
    clean_end = str((late - pd.DateOffset(days=1)).date())
    cal_end = str(
        (late - pd.DateOffset(months=clean_holdout_months) - pd.DateOffset(days=1)).date()
    )
    cal = clv.calibration_holdout(clean_orders, cal_end, clean_end, time_unit)
    bg_cal = clv.fit_bgnbd(cal)
    per_unit = 7 / segments.unit_days(time_unit)
    gen = {"r": params["bgnbd_r"], "alpha": params["bgnbd_alpha"] * per_unit,
           "a": params["bgnbd_a"], "b": params["bgnbd_b"]}  # fmt: skip
    referral = cal.index.isin(
        customers.loc[customers["acquisition_channel"] == "referral", "customer_id"]
    )
    out: dict[str, Any] = {}
    try:
        ratio = clv.mean_dropout_ratio(clv.fit_bgnbd(cal[referral]), clv.fit_bgnbd(cal[~referral]))
        out["referral_dropout_multiplier"] = run.truth_entry(
            ratio["estimate"], ratio["ci_low"], ratio["ci_high"],
            params["referral_dropout_multiplier"],
        )  # fmt: skip
    except (ValueError, np.linalg.LinAlgError) as err:  # a few hundred referral customers
        out["_failed"] = {"referral_dropout_multiplier": f"{type(err).__name__}: {err}"[:200]}
    out |= {
        f"bgnbd_{k}": run.truth_entry(
            *bg_cal.summary().loc[k, ["estimate", "ci_low", "ci_high"]], v
        )
        for k, v in gen.items()
    }
    for k in ("p", "q", "gamma"):
        out[f"gg_{k}"] = run.truth_entry(
            *gg.summary().loc[k, ["estimate", "ci_low", "ci_high"]], params[f"gg_{k}"]
        )
    return out


def _rows(seed: int, nn: str, truth: dict, recorded: dict | None, failed: str | None) -> list[dict]:
    """One row per registry metric of notebook `nn` on the company: estimate, interval, truth
    (no estimate if it was not recorded or the notebook failed, with the reason)."""
    rows = []
    for m in registry.metrics_for(nn, truth["parameters"]):
        entry = registry.recorded(recorded or {}, m.key)
        why = failed or (recorded or {}).get("_failed", {}).get(m.key)
        row = {"seed": seed, "notebook": nn, "metric": m.key, "failed": why}
        if isinstance(entry, dict):
            row |= {k: entry.get(k) for k in ("estimate", "ci_low", "ci_high")}
        row["truth"] = registry.truth_value(m, truth)
        rows.append(row)
    return rows


def rows_04(seed: int, folder: Path) -> list[dict]:
    """Notebook 04's metrics on the company, by the helpers directly."""
    try:
        return _rows(seed, "04", read_truth(folder), notebook04_metrics(folder), None)
    except Exception as err:  # noqa: BLE001 - a benchmark reports a failure and goes on
        return _rows(seed, "04", read_truth(folder), None, f"{type(err).__name__}: {err}"[:300])


def rows_notebooks(
    seed: int, folder: Path, workdir: Path, notebooks: tuple[str, ...]
) -> list[dict]:
    """The other registry notebooks run with papermill on the company, two side by side (one
    kernel each, as ``helpers.run.execute_many``); a notebook that fails is reported, not fatal."""
    truth = read_truth(folder)
    paths_ = run.notebooks(list(notebooks))
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        futures = {
            nb.name[:2]: pool.submit(
                run.execute,
                nb,
                workdir / "runs" / str(seed) / nb.name[:2],
                {"data_dir": str(folder), **LIGHTER.get(nb.name[:2], {})},
                html_report=False,
            )  # fmt: skip
            for nb in paths_
        }
    rows = []
    for nn, fut in futures.items():
        try:
            rows += _rows(seed, nn, truth, fut.result(), None)
        except Exception as err:  # noqa: BLE001
            rows += _rows(seed, nn, truth, None, f"{type(err).__name__}: {str(err)[-300:]}")
    return rows


def summarize(rows: pd.DataFrame, group: list[str]) -> pd.DataFrame:
    """Coverage, its Wilson band, mean bias and mean relative bias per group."""
    ok = rows.dropna(subset=["estimate", "ci_low", "ci_high", "truth"])
    ok = ok.assign(
        covers=(ok["ci_low"] <= ok["truth"]) & (ok["truth"] <= ok["ci_high"]),
        bias=ok["estimate"] - ok["truth"],
        rel_bias=(ok["estimate"] - ok["truth"]) / ok["truth"].abs().where(ok["truth"] != 0),
    )
    out = ok.groupby(group, sort=True).agg(
        n=("covers", "size"), covered=("covers", "sum"), mean_truth=("truth", "mean"),
        mean_bias=("bias", "mean"), rel_bias=("rel_bias", "mean"),
        median_rel_bias=("rel_bias", "median"),
    )  # fmt: skip
    out["coverage"] = out["covered"] / out["n"]
    band = [wilson(int(k), int(n)) for k, n in zip(out["covered"], out["n"], strict=True)]
    out["band_low"], out["band_high"] = zip(*band, strict=True) if band else ((), ())
    return out


def planted(args: argparse.Namespace, workdir: Path) -> pd.DataFrame:
    """Phase 1: every company generated and notebook 04's metrics computed (fast); phase 2: the
    papermill notebooks, company by company (slow: stop it any time, ``--report`` tabulates what
    is cached)."""
    cache = workdir / "planted"
    cache.mkdir(parents=True, exist_ok=True)
    seeds = [args.first_seed + i for i in range(args.companies)]
    folders = {s: workdir / "companies" / str(s) for s in seeds}
    for seed in seeds:
        done = cache / f"{seed}_04.json"
        if not done.exists():
            t0 = time.perf_counter()
            make_company(seed, args.customers, folders[seed])
            done.write_text(json.dumps(rows_04(seed, folders[seed]), default=float))
            print(f"company {seed}: generated, notebook 04 in {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
    if args.notebooks:
        for seed in seeds:
            done = cache / f"{seed}_notebooks.json"
            if not done.exists():
                t0 = time.perf_counter()
                new = rows_notebooks(seed, folders[seed], workdir, tuple(args.notebooks))
                done.write_text(json.dumps(new, default=float))
                failed = sorted({r["notebook"] for r in new if r["failed"]})
                print(f"company {seed}: notebooks in {time.perf_counter() - t0:.0f} s"
                      + (f"; failed: {failed}" if failed else ""), file=sys.stderr, flush=True)  # fmt: skip
    return collect(cache)


def collect(cache: Path) -> pd.DataFrame:
    """Every cached row."""
    return pd.DataFrame(
        [r for f in sorted(cache.glob("*.json")) for r in json.loads(f.read_text())]
    )


# --- recovery under each model's own process ---------------------------------------------------

#: True values of the simulated processes (time unit: weeks; BG/BB: one opportunity).
PARETO_TRUTH = {"r": 0.8, "alpha": 8.0, "s": 0.7, "beta": 12.0}
BGBB_TRUTH = {"alpha": 1.2, "beta": 0.8, "gamma": 0.7, "delta": 2.5}


def simulate_pareto_nbd(n: int, seed: int) -> pd.DataFrame:
    """lambda ~ Gamma(r, alpha), mu ~ Gamma(s, beta), lifetime ~ Exp(mu); Poisson(lambda)
    purchases while alive before T ~ U(20, 60) weeks; the last purchase is the maximum of the x
    uniform purchase times in the observed span."""
    rng = np.random.default_rng(seed)
    t = PARETO_TRUTH
    T = rng.uniform(20, 60, n)
    lam = rng.gamma(t["r"], 1 / t["alpha"], n)
    mu = rng.gamma(t["s"], 1 / t["beta"], n)
    span = np.minimum(rng.exponential(1 / mu), T)
    x = rng.poisson(lam * span)
    tx = np.where(x > 0, span * rng.uniform(size=n) ** (1 / np.maximum(x, 1)), 0.0)
    return pd.DataFrame({"frequency": x, "recency": tx, "T": T})


def simulate_bgbb(n: int, seed: int, opportunities: int = 6) -> pd.DataFrame:
    """p ~ Beta(alpha, beta), theta ~ Beta(gamma, delta); at each opportunity a living customer
    dies with probability theta, and if still alive buys with probability p."""
    rng = np.random.default_rng(seed)
    t = BGBB_TRUTH
    p = rng.beta(t["alpha"], t["beta"], n)[:, None]
    th = rng.beta(t["gamma"], t["delta"], n)[:, None]
    alive = np.cumprod(rng.uniform(size=(n, opportunities)) >= th, axis=1).astype(bool)
    buy = alive & (rng.uniform(size=(n, opportunities)) < p)
    x = buy.sum(1)
    tx = np.where(x > 0, opportunities - np.argmax(buy[:, ::-1], axis=1), 0)
    return pd.DataFrame({"frequency": x, "recency": tx, "periods": opportunities})


def recovery(args: argparse.Namespace) -> pd.DataFrame:
    cfg0 = SynthConfig()
    rows = []
    for i in range(args.recovery_seeds):
        seed = args.first_seed + i
        cfg = replace(cfg0, seed=seed, n_customers=args.customers, planted_effects=False)
        orders = generate(cfg)[0]["orders"]
        rfm = segments.rfm_table(orders, cfg.end, "W")
        fits = {
            "BG/NBD": (clv.fit_bgnbd(rfm), {"r": cfg.bgnbd_r, "alpha": cfg.bgnbd_alpha,
                                            "a": cfg.bgnbd_a, "b": cfg.bgnbd_b}),
            "Gamma-Gamma": (clv.fit_gamma_gamma(rfm[rfm["frequency"] > 0]),
                            {"p": cfg.gg_p, "q": cfg.gg_q, "gamma": cfg.gg_gamma}),
            "Pareto/NBD": (pareto_nbd.fit_pareto_nbd(simulate_pareto_nbd(args.customers, seed)),
                           PARETO_TRUTH),
            "BG/BB": (bgbb.fit_bgbb(simulate_bgbb(args.customers, seed)), BGBB_TRUTH),
        }  # fmt: skip
        for model, (fit, truth) in fits.items():
            tab = fit.summary()
            for k, v in truth.items():
                rows.append({"model": model, "parameter": k, "seed": seed, "truth": v,
                             **tab.loc[k, ["estimate", "ci_low", "ci_high"]].to_dict()})  # fmt: skip
        print(f"recovery seed {seed} done", file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


# --- output -----------------------------------------------------------------------------------


def _fmt(v: float, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}g}"


def markdown_planted(tab: pd.DataFrame, rows: pd.DataFrame) -> str:
    lines = ["| notebook | metric | companies | coverage | MC band (Wilson 95 %) | mean truth | mean bias | mean relative bias | median relative bias | note |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for (nn, key), r in tab.iterrows():
        note = "declared biased (registry.BIASED)" if key in registry.BIASED else ""
        if not note and r["band_high"] < 0.95:
            note = "**below 95 %**"
        lines.append(
            f"| {nn} | `{key}` | {int(r['n'])} | {r['coverage']:.0%} | {r['band_low']:.0%}–{r['band_high']:.0%} "
            f"| {_fmt(r['mean_truth'])} | {_fmt(r['mean_bias'], 2)} | {_fmt(r['rel_bias'] * 100, 2)} % "
            f"| {_fmt(r['median_rel_bias'] * 100, 2)} % | {note} |"
        )
    failed = rows.dropna(subset=["failed"])
    if len(failed):
        lines += ["", "Not recorded (the estimate failed or the notebook stopped):", ""]
        for (nn, why), g in failed.groupby(["notebook", failed["failed"].str[:100]], sort=True):
            metrics = sorted(set(g["metric"]))
            what = ", ".join(f"`{m}`" for m in metrics) if len(metrics) <= 3 else "all its metrics"
            seeds = ", ".join(str(x) for x in sorted(set(g["seed"])))
            lines.append(f"* {nn} {what}, seeds {seeds}: {why}")
    return "\n".join(lines)


def markdown_recovery(tab: pd.DataFrame) -> str:
    lines = ["| model | parameter | truth | data sets | coverage | MC band (Wilson 95 %) | mean bias | mean relative bias | median relative bias |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for (model, k), r in tab.iterrows():
        lines.append(
            f"| {model} | {k} | {r['mean_truth']:g} | {int(r['n'])} | {r['coverage']:.0%} | "
            f"{r['band_low']:.0%}–{r['band_high']:.0%} | {_fmt(r['mean_bias'], 2)} | {_fmt(r['rel_bias'] * 100, 2)} % "
            f"| {_fmt(r['median_rel_bias'] * 100, 2)} % |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--companies", type=int, default=30)
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--notebooks", nargs="*", default=list(NOTEBOOKS))
    ap.add_argument("--recovery-seeds", type=int, default=30)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--only", choices=("planted", "recovery"), default=None)
    ap.add_argument("--report", action="store_true", help="tabulate the cached planted rows only")
    args = ap.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="coverage-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"work folder: {workdir}", file=sys.stderr)
    if args.report:
        rows = collect(workdir / "planted")
        print(markdown_planted(summarize(rows, ["notebook", "metric"]), rows))
        return
    if args.only != "planted":
        rec = recovery(args)
        text = markdown_recovery(summarize(rec, ["model", "parameter"]))
        (workdir / "recovery.md").write_text(text + "\n")
        print(text + "\n")
    if args.only != "recovery":
        rows = planted(args, workdir)
        text = markdown_planted(summarize(rows, ["notebook", "metric"]), rows)
        (workdir / "planted.md").write_text(text + "\n")
        print(text)


if __name__ == "__main__":
    main()
