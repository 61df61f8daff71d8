"""What shop owners ask their retention report (issue 28): lifetime-value curves by cohort, when
the second order comes, which customers are worth acquiring and what they cost to acquire.

Four sections, each a computation (pure: the report's orders and fits in, tables out) and one display function that renders it with the report's catalogue ``T`` and
:class:`~helpers.report.formatting.Formatter` and returns the numbers for ``metrics.json``:

1. :func:`ltv_curves` / :func:`show_ltv_curves`: cumulative margin per acquired customer by
   months since the first order, one line per acquisition quarter, observed (solid) and
   continued by the report's purchase and spend model (dashed, with a band).
2. :func:`second_orders`, :func:`second_order_rates`, :func:`time_to_second_order`,
   :func:`value_by_order_number` / :func:`show_second_order`.
3. :func:`first_order_attributes`, :func:`attribute_value` / :func:`show_attributes`:
   second-order rate, 12-month margin and dropout per first-order attribute (channel, country...),
   simultaneous intervals (Bonferroni), small groups pooled as "other".
4. :func:`read_spend`, :func:`check_spend`, :func:`acquisition_costs` / :func:`show_costs`: cost
   per acquired customer by channel and month, value : cost and payback.

The margin of an order is the report's (:func:`helpers.report.analysis.fit_clv`): m x amount - c,
m the client's gross margin rate and c the shipping cost per order (a client file has no returns
or tickets), so the observed curves and the model's projection use the same economics.

The orders (`bought`: the purchases, a pandas DataFrame or the engine's Ibis table) are reduced
by the engine's expressions (:mod:`helpers.report.engine`: ``first_orders``, ``value_by_number``,
``customer_discounts``, ``cumulative_margin``, ``value_by_age``) to one row per customer or per
group; a DataFrame runs through the same expressions on an in-memory DuckDB, so the orders are
never collected and each computation has one definition (issues 28 and 31). The numbered orders
are reduced per customer in one pass, once per report, and the margins by age once
(:func:`helpers.report.engine.customer_table`, ``_monthly_margins``): every view below reuses them.

Optional inputs, named in the mapping's ``tables`` (:mod:`helpers.report.extra_tables`, read and
checked before anything runs; :func:`read_inputs`): a customer file with attributes
(``customers``: ``customer_id`` + columns such as ``acquisition_channel``, ``country``) and a
marketing spend file (``marketing_spend``: ``month``, ``channel``, ``spend``, optional
``signups``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits

from helpers import clv, cohorts, economics, periods, plots
from helpers.economics import Economics
from helpers.report import engine, extra_tables
from helpers.report.frames import align
from helpers.tables import Column, DataValidationError, read_table_info

__all__ = [
    "WINDOWS",
    "MIN_GROUP",
    "MAX_LEVELS",
    "margin_flows",
    "LtvCurves",
    "ltv_curves",
    "show_ltv_curves",
    "second_orders",
    "second_order_rates",
    "time_to_second_order",
    "value_by_order_number",
    "show_second_order",
]

#: Windows (days after the first order) of the second-order shares.
WINDOWS: tuple[int, ...] = (30, 60, 90, 180)
#: Groups of an attribute with fewer customers than this are pooled as "other".
MIN_GROUP: int = 100
#: An attribute with more distinct values than this is refused (an id mapped as a channel).
MAX_LEVELS: int = 50
#: Months of the "12-month margin" per acquired customer.
MARGIN_MONTHS: int = 12
#: Customers on which the projection band's gradient is taken (a relative error does not depend
#: on the number of customers; as :data:`helpers.report.analysis.CLV_INTERVAL_SAMPLE`).
GRADIENT_SAMPLE: int = 1500
#: Canonical order columns that are not first-order attributes (``returned`` is an outcome of
#: the order, netted in the economics: helpers.report.analysis.fold_economics).
_ORDER_COLUMNS = frozenset(
    {"order_id", "customer_id", "order_date", "amount", "quantity", "unit_price",
     "refunded_amount", "status", "cancellation", "returned"}
)  # fmt: skip


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


#: Above this many customers, the model-based parts (the projection of section 1, the dropout
#: fits of section 3) use every k-th customer: their means and fits carry a sampling error far
#: inside their intervals, and the report stays fast on millions of customers.
SAMPLE_CUSTOMERS: int = 200_000


def _every_kth(n: int, limit: int = SAMPLE_CUSTOMERS) -> np.ndarray:
    """A boolean mask of every k-th of `n` rows, k = ceil(n / `limit`) (all rows up to `limit`)."""
    k = max(1, math.ceil(n / limit))
    return np.arange(n) % k == 0


def margin_flows(bought: pd.DataFrame, econ: Economics) -> pd.DataFrame:
    """The margin of every purchase, dated: ``customer_id``, ``date``, ``value`` = m x amount - c
    (m = ``econ.gross_margin_rate``, c = ``econ.shipping_per_order``), the per-order margin of the
    report's CLV (:func:`helpers.report.analysis.fit_clv`)."""
    return pd.DataFrame(
        {
            "customer_id": bought["customer_id"].to_numpy(),
            "date": pd.to_datetime(bought["order_date"]).to_numpy(),
            "value": econ.gross_margin_rate * bought["amount"].to_numpy(float)
            - econ.shipping_per_order,
        }
    )


# ---------------------------------------------------------------------------------------------
# 1. Lifetime-value curves by cohort
# ---------------------------------------------------------------------------------------------
@dataclass
class LtvCurves:
    """``curves``: long table ``cohort``, ``month`` (1 = the month of the first order),
    ``customers``, ``observed`` (mean cumulative margin, NaN past the cohort's fully observed
    age), ``se``, ``projected``, ``low``, ``high`` (NaN before the projection starts or without a
    model). ``cohorts``: one row per cohort (``customers``, ``observed_months``, ``value_now``,
    ``value_12``, ``low_12``, ``high_12``, ``projected_12``, ``value_end``, ``low_end``,
    ``high_end``). ``months``: the last month shown. ``values``: customers x ages 0..months-1,
    each customer's cumulative margin, observed then projected (NaN past the observed age
    without a model)."""

    curves: pd.DataFrame
    cohorts: pd.DataFrame
    months: int
    values: pd.DataFrame


def _customer_cum(
    bought: Any, ids: pd.Index, first_month: np.ndarray, last: int, ages: list[int],
    econ: Economics,
) -> np.ndarray:  # fmt: skip
    """customers (`ids`) x `ages` cumulative margin of :func:`margin_flows`, NaN past each
    customer's observed age (the definition of :func:`helpers.cohorts.value_by_age`, per
    customer), reduced by the engine (:func:`helpers.report.engine.cumulative_margin`)."""
    starts = pd.Series(first_month, index=ids.astype(str))
    return engine.cumulative_margin(
        bought, starts, last, ages, econ.gross_margin_rate, econ.shipping_per_order
    ).to_numpy()


def _future_purchases(pf: Any, seg: pd.DataFrame, n: int) -> np.ndarray:
    """customers x months 1..n: E[Y(j months) | history] of the purchase fit `pf` (FHL 2005
    eq. 10)."""
    month = clv.TIME_UNITS["M"] / clv.unit_days(seg.attrs.get("time_unit", pf.time_unit))
    return np.asarray(clv.expected_purchases(pf, seg, np.arange(1, n + 1) * month), dtype=float)


def _margin_per_order(fit: Any, gg: Any, seg: pd.DataFrame, rate: float) -> np.ndarray:
    """Each customer's expected margin per order m E[Z | history] - c (Gamma-Gamma posterior
    spend of `gg`), m = `rate`, c = the fit's cost per order."""
    return rate * clv.expected_spend(gg, seg).to_numpy() - fit.cost_per_order


def _future(
    fit: Any, seg: pd.DataFrame, n: int, rate: float, pf: Any = None, gg: Any = None
) -> np.ndarray:
    """customers x months 1..n expected cumulative margin after the as-of date:
    (m E[Z | history] - c) E[Y(j months) | history] (FHL 2005 eq. 10; Gamma-Gamma posterior
    spend), m = `rate`, c = the fit's cost per order. Multiplied in the expected purchases'
    own array (the same floats: IEEE multiplication commutes; one customers x months matrix
    fewer, 48 MB for the 10M-row report's 168k sampled customers)."""
    pf = fit.purchases if pf is None else pf
    gg = fit.spend if gg is None else gg
    cum = _future_purchases(pf, seg, n)
    cum *= _margin_per_order(fit, gg, seg, rate)[:, None]
    return cum


def _ltv_sample(
    seg: pd.DataFrame, econ: Economics, months: int | None = None
) -> tuple[int, int, np.ndarray, pd.DataFrame]:
    """The LTV curves' months n, last complete month, and customers: those of `seg` with an
    observed first month, a systematic sample of very many (:func:`_every_kth`), with their
    first months."""
    n = int(months or econ.horizon_months)
    last = periods.last_complete_period(seg.attrs["as_of"], "M")
    first_month = periods.period_codes(seg["first_order"].to_numpy(), "M")
    keep = first_month <= last
    keep &= _every_kth(len(seg))  # a systematic sample of very many customers
    return n, last, first_month[keep], seg.loc[keep]


def ltv_margins(
    bought: Any, seg: pd.DataFrame, econ: Economics, months: int | None = None
) -> np.ndarray:
    """The LTV curves' customers (:func:`_ltv_sample`) x months 0..n-1: their cumulative margin,
    as :func:`ltv_curves` reduces it (:func:`_customer_cum`; kept per orders object, so
    :func:`helpers.report.analysis.prefetch_sections` computes it ahead)."""
    n, last, first_month, s = _ltv_sample(seg, econ, months)
    return _customer_cum(bought, s.index, first_month, last, list(range(n)), econ)


def ltv_curves(
    bought: Any,
    seg: pd.DataFrame,
    econ: Economics,
    fit: Any = None,
    freq: str = "Q",
    months: int | None = None,
    level: float = 0.95,
) -> LtvCurves:
    """Cumulative margin per acquired customer by month since the first order, per acquisition
    cohort (`freq` Q or M), observed and projected.

    Observed: V_c(k) = mean over the customers i of cohort c of sum_{j<=k} margin_ij (margin of
    :func:`margin_flows`, age j in calendar months from the first order's month, 0 = that month),
    shown for the ages every customer of the cohort has completed (the censoring rule of
    :func:`helpers.periods.last_complete_period`; the pooled curve is
    :func:`helpers.cohorts.value_by_age`'s). Standard error: of that mean across customers.

    Projected (with a :class:`~helpers.report.analysis.ClvFit` `fit`): each customer's value is
    observed up to their last complete month a_i and then continued by the model,
    W_i(k) = V_i(a_i) + (m E[Z_i] - c) E[Y_i(k - a_i months)] for k > a_i (E[Y] the conditional
    expected purchases, Fader, Hardie & Lee 2005 eq. 10; E[Z_i] the Gamma-Gamma posterior spend),
    and the cohort's curve is their mean from its last fully observed age to `months` (default
    ``econ.horizon_months``). Band: parameter uncertainty of both fits by the delta method on the
    log of the projected part F_c(k) (central differences of the log-parameters, step 1e-4, their
    covariance ``cov_log``; on every k-th customer, at most :data:`GRADIENT_SAMPLE`), combined in
    quadrature with the sampling error of the cohort's observed mean at its last fully observed
    age: W_c(k) +- z sqrt((F_c(k) se_log)^2 + se_c^2). It is the band of the expected value per
    acquired customer; what one customer actually buys varies far more. Undiscounted."""
    n, last, first_month, s = _ltv_sample(seg, econ, months)
    ids = s.index
    observed = (last - first_month).astype(int)
    cohort = periods.period_labels(s["first_order"], freq)
    cum = _customer_cum(bought, ids, first_month, last, list(range(n)), econ)
    codes, names = pd.factorize(cohort, sort=True)
    rows, summary = [], []
    future = proj_se = None
    if fit is not None:
        future = _future(fit, s, n, econ.gross_margin_rate)
        step = max(1, int(np.ceil(len(s) / GRADIENT_SAMPLE)))  # every step-th customer
        proj_se = _projection_se(
            fit, s.iloc[::step], n, econ.gross_margin_rate, codes[::step], observed[::step],
            len(names),
        )  # fmt: skip
    z = _z(level)
    seen = []  # each cohort's observed mean and its standard error, before cum becomes W
    for c in range(len(names)):
        o = cum[codes == c]
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # ages nobody has reached: NaN
            seen.append((np.nanmean(o, axis=0),
                         np.nanstd(o, axis=0, ddof=1) / np.sqrt(np.sum(~np.isnan(o), axis=0))))  # fmt: skip
        del o
    W_all, F_all = _mixed(cum, observed, future, n) if future is not None else (cum, None)
    for c, name in enumerate(names):
        sel = codes == c
        full = int(observed[sel].min())  # ages 0..full are observed for the whole cohort
        mean, se = seen[c]
        ages = np.arange(n)
        obs_mean = np.where(ages <= full, mean, np.nan)
        proj = lo = hi = np.full(n, np.nan)
        if future is not None:
            W, F = W_all[sel], F_all[sel]
            fmean = F.mean(axis=0)
            base = W.mean(axis=0) - fmean
            # the model's parameter uncertainty of F, and the sampling error of the cohort's
            # observed mean at its last fully observed age, in quadrature
            half = z * np.sqrt((fmean * proj_se[c]) ** 2 + se[full] ** 2 * (ages > full))
            proj = np.where(ages >= full, base + fmean, np.nan)
            lo = np.where(ages >= full, proj - half, np.nan)
            hi = np.where(ages >= full, proj + half, np.nan)
        rows.append(
            pd.DataFrame(
                {"cohort": name, "month": ages + 1, "customers": int(sel.sum()),
                 "observed": obs_mean, "se": np.where(ages <= full, se, np.nan),
                 "projected": proj, "low": lo, "high": hi}
            )
        )  # fmt: skip
        k12 = min(MARGIN_MONTHS, n) - 1
        seen12 = full >= k12
        summary.append(
            {"cohort": name, "customers": int(sel.sum()), "observed_months": full + 1,
             "value_now": float(mean[min(full, n - 1)]),
             "value_12": float(mean[k12] if seen12 else proj[k12]),
             "low_12": float(mean[k12] - z * se[k12] if seen12 else lo[k12]),
             "high_12": float(mean[k12] + z * se[k12] if seen12 else hi[k12]),
             "projected_12": not seen12,
             "value_end": float(proj[-1]), "low_end": float(lo[-1]), "high_end": float(hi[-1])}
        )  # fmt: skip
    return LtvCurves(
        pd.concat(rows, ignore_index=True), pd.DataFrame(summary).set_index("cohort"), n,
        pd.DataFrame(W_all, index=ids.astype(str), columns=pd.RangeIndex(n, name="age")),
    )  # fmt: skip


def _mixed(
    cum: np.ndarray, observed: np.ndarray, future: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """W (observed to a_i, then V_i(a_i) + future) and its projected part F, customers x ages:
    with j = k - a_i the months after the last observed one, F_ik = future_i(j - 1) for j > 0
    (else 0) and W_ik = V_i(a_i) + F_ik for j > 0 (else the observed cum_ik). Built per last
    observed month a (at most n of them): the rows of a's customers get future's first n - a - 1
    months shifted right by a + 1, so only W, F and one group's rows are held -- not the
    customers x ages index, mask and gathered arrays of a vectorized gather (at the 10M-row
    report's 633k sampled customers x 36 months about 180 MB each, this function's transient
    peak; the values are the same, bit for bit). W is written over `cum` and F over `future`,
    which it consumes (each group's rows are taken, a copy, before they are shifted; V_i(a_i)
    before any row changes): two matrices fewer, 48 MB each at the 10M-row report's 163k
    sampled customers."""
    a = np.minimum(observed, n - 1)
    now = cum[np.arange(len(a)), a]
    W, F = cum, future
    for a0 in np.unique(a):
        rows = np.flatnonzero(a == a0)
        part = future[rows, : n - a0 - 1]  # by index: a copy, taken before the rows change
        F[rows, : a0 + 1] = 0.0
        if a0 + 1 >= n:  # observed to the last age: nothing projected
            continue
        F[rows, a0 + 1 :] = part
        W[rows, a0 + 1 :] = now[rows, None] + part
    return W, F


def _projection_se(
    fit: Any,
    seg: pd.DataFrame,
    n: int,
    rate: float,
    codes: np.ndarray,
    observed: np.ndarray,
    k: int,
) -> np.ndarray:
    """cohorts x ages: se of log F_c(k) (delta method over both fits' log-parameters)."""

    base_cum = _future_purchases(fit.purchases, seg, n)
    base_per_order = _margin_per_order(fit, fit.spend, seg, rate)

    def F(pf: Any, gg: Any) -> np.ndarray:
        # a changed spend parameter leaves the expected purchases as they are, and vice versa:
        # only the factor of the fit whose parameter moved is computed again
        cum = base_cum if pf is fit.purchases else _future_purchases(pf, seg, n)
        per_order = base_per_order if gg is fit.spend else _margin_per_order(fit, gg, seg, rate)
        fut = per_order[:, None] * cum
        ages = np.arange(n)[None, :]
        j = ages - np.minimum(observed, n - 1)[:, None]
        part = np.where(j > 0, np.take_along_axis(fut, np.clip(j - 1, 0, n - 1), axis=1), 0.0)
        sums = np.zeros((k, n))
        np.add.at(sums, codes, part)
        with np.errstate(divide="ignore"):
            return np.log(sums)

    h = 1e-4
    grads = []
    for which in ("purchases", "spend"):
        f0 = getattr(fit, which)
        for key in f0.params:
            out = []
            for sign in (1, -1):
                f1 = replace(f0, params={**f0.params, key: f0.params[key] * np.exp(sign * h)})
                pf, gg = (f1, fit.spend) if which == "purchases" else (fit.purchases, f1)
                out.append(F(pf, gg))
            with np.errstate(invalid="ignore"):  # log 0 - log 0 where nothing is projected
                grads.append((out[0] - out[1]) / (2 * h))
    g = np.nan_to_num(np.stack(grads, axis=-1))  # cohorts x ages x parameters
    n_p = len(fit.purchases.params)
    cov = np.zeros((g.shape[-1], g.shape[-1]))
    cov[:n_p, :n_p] = fit.purchases.cov_log
    cov[n_p:, n_p:] = fit.spend.cov_log
    return np.sqrt(np.clip(np.einsum("cai,ij,caj->ca", g, cov, g), 0, None))


def show_ltv_curves(
    lc: LtvCurves, T: Any, fmt: Any, reason: str = "", max_lines: int = 12
) -> dict[str, Any]:
    """Render section 1 (heading, plot of the last `max_lines` cohorts, table, generated
    sentences; `reason`: why there is no projection, in the client's language); returns its
    metrics."""
    from IPython.display import display

    T.md("ltv.section")
    if reason:
        T.md("ltv.no_model", reason=reason)
    cur = fmt.currency
    curves = lc.curves
    names = list(lc.cohorts.index)[-max_lines:]
    ax = plots.new_axes(T("ltv.plot_title", currency=cur), T("ltv.plot_x"), cur, figsize=(9.5, 4.4))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(names)))
    for name, color in zip(names, colors, strict=True):
        c = curves[curves["cohort"] == name]
        ax.plot(c["month"], c["observed"], color=color, label=name, linewidth=1.6)
        if c["projected"].notna().any():
            ax.plot(c["month"], c["projected"], color=color, linestyle="--", linewidth=1.1)
            ax.fill_between(c["month"], c["low"], c["high"], color=color, alpha=0.12)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.legend(title=T("ltv.legend"), ncol=2, fontsize=8, loc="upper left")
    plt.show()
    t = lc.cohorts
    shown = fmt.table(
        t[["customers", "observed_months", "value_now", "value_12", "low_12", "high_12",
           "value_end", "low_end", "high_end"]],
        num=["customers", "observed_months"],
        money=["value_now", "value_12", "low_12", "high_12", "value_end", "low_end", "high_end"],
    )  # fmt: skip
    display(
        shown.rename(columns=lambda c: T(f"ltv.col.{c}", months=lc.months)).rename_axis(
            T("ltv.col.cohort")
        )
    )
    seen = t[~t["projected_12"]]
    young = t[t["projected_12"]]
    old_line = (
        T("ltv.old", cohort=seen.index[-1], value=fmt.money(seen["value_12"].iloc[-1]),
          first=seen.index[0], first_value=fmt.money(seen["value_12"].iloc[0]))
        if len(seen) else ""
    )  # fmt: skip
    # the youngest cohort with a full first month and more than one month seen (else the youngest)
    pick = young.iloc[-2] if len(young) > 1 else (young.iloc[-1] if len(young) else None)
    young_line = (
        T("ltv.young", cohort=pick.name, value=fmt.money(pick["value_12"]),
          low=fmt.money(pick["low_12"]), high=fmt.money(pick["high_12"]))
        if pick is not None and pd.notna(pick["value_12"]) else ""
    )  # fmt: skip
    T.md("ltv.meaning", old=old_line, young=young_line, months=lc.months)
    return {
        "shown": True,
        "months": lc.months,
        "cohorts": {
            str(k): {kk: (round(float(v), 2) if isinstance(v, float) and math.isfinite(v) else
                          (None if isinstance(v, float) else v))
                     for kk, v in r.items()}
            for k, r in t.assign(projected_12=t["projected_12"].astype(bool)).to_dict("index").items()
        },
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# 2. The second order
# ---------------------------------------------------------------------------------------------
def second_orders(bought: Any, as_of: str | pd.Timestamp, freq: str = "Q") -> pd.DataFrame:
    """One row per customer (index ``customer_id``): ``first`` (first purchase), ``days`` to the
    second purchase (NaN: none yet; 0: two purchases on one day), ``followup`` (days from the
    first purchase to the end of the as-of day: how long a second order could have come) and
    ``cohort`` (the first purchase's period, `freq`). The engine returns the first two purchases'
    times per customer (:func:`helpers.report.engine.first_orders`)."""
    end = periods.as_of_end(as_of)
    two = engine.first_orders(bought, as_of)
    first, second = two["first"], two["second"]
    day = pd.Timedelta(days=1)
    # the columns as new arrays beside the ids as they are when text (no copy of the frame:
    # rename_axis copied all four columns, and astype the ids, 8 bytes a customer each)
    ids = first.index if first.index.inferred_type == "string" else first.index.astype(str)
    return pd.DataFrame(
        {"first": first.to_numpy(), "days": ((second - first) / day).to_numpy(),
         "followup": ((end - first) / day).to_numpy(), "cohort": periods.period_labels(first, freq)},
        index=ids.rename("customer_id"),
    )  # fmt: skip


def _wilson(k: np.ndarray, n: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(k, np.maximum(n, 1), alpha=1 - level, method="wilson")
    return np.where(n > 0, lo, np.nan), np.where(n > 0, hi, np.nan)


def second_order_rates(
    sec: pd.DataFrame, windows: tuple[int, ...] = WINDOWS, level: float = 0.95
) -> pd.DataFrame:
    """Share of new customers who order again within w days, per cohort and window, and pooled.

    A cohort counts for window w only when w days have passed for all of it (its last first
    purchase + w <= the end of the as-of day): a window still open would read customers who may
    still come back as lost. ``all``: every customer whose own window has passed. Share k / n
    with Wilson's score interval at `level` (E. B. Wilson 1927; statsmodels ``proportion_confint``).
    Long table: ``cohort``, ``window``, ``customers``, ``reordered``, ``rate``, ``ci_low``,
    ``ci_high`` (cohorts whose window has not passed for all: NaN rate, 0 customers)."""
    rows = []
    closed = sec.groupby("cohort")["followup"].min()
    for w in windows:
        hit = (sec["days"] <= w).to_numpy()
        g = pd.DataFrame({"cohort": sec["cohort"].to_numpy(), "hit": hit})
        per = g.groupby("cohort")["hit"].agg(["size", "sum"])
        ok = closed.reindex(per.index) >= w
        n = np.where(ok, per["size"], 0)
        k = np.where(ok, per["sum"], 0)
        part = pd.DataFrame({"cohort": per.index, "window": w, "customers": n, "reordered": k})
        own = (sec["followup"] >= w).to_numpy()
        pooled = {"cohort": "all", "window": w, "customers": int(own.sum()),
                  "reordered": int((hit & own).sum())}  # fmt: skip
        rows.append(pd.concat([part, pd.DataFrame([pooled])], ignore_index=True))
    out = pd.concat(rows, ignore_index=True)
    n, k = out["customers"].to_numpy(), out["reordered"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["rate"] = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    out["ci_low"], out["ci_high"] = _wilson(k, n, level)
    return out


def time_to_second_order(
    sec: pd.DataFrame, horizon: float = 365.0, days: tuple[int, ...] = WINDOWS, level: float = 0.95
) -> dict[str, Any]:
    """Kaplan–Meier of the days from the first to the second order (lifelines
    ``KaplanMeierFitter``; customers without a second order are censored at their follow-up, so
    recent customers are not read as never returning; E. L. Kaplan & P. Meier 1958).

    Returns ``share_by`` (day -> cumulative share F(d) = 1 - S(d) with its pointwise
    interval, Greenwood's), ``horizon`` (min(`horizon`, the longest follow-up)), ``share_horizon``,
    ``median_days`` (S(t) <= 0.5; None when more than half have not ordered again by the longest
    follow-up), ``half_days`` and ``most_days``: the days by which half and 80 % of the second
    orders that come within the horizon have come (F(t) >= q F(horizon)), the window in which a
    follow-up can still matter, and ``curve`` (day -> F, its interval, up to the horizon and
    at least day 1: at the days the estimate moves, :func:`helpers.churn.kaplan_meier_at_events`,
    and the last day up to there)."""
    from helpers.churn import kaplan_meier_at_events

    dur = sec["days"].fillna(sec["followup"]).clip(lower=0).to_numpy(float)
    event = sec["days"].notna().to_numpy()
    h = float(min(horizon, dur.max()))
    # fitted at the event times (the same step function); the curve's last time up to its end
    # kept, so that it spans what the full timeline did (the plot's grid: plots.step_on_grid)
    end = max(h, 1)
    last = float(dur[dur <= end].max()) if (dur <= end).any() else 0.0
    kmf = kaplan_meier_at_events(dur, event, alpha=1 - level, keep=[last])
    sf = kmf.survival_function_.iloc[:, 0]
    ci = kmf.confidence_interval_survival_function_

    def at(d: float) -> tuple[float, float, float]:
        i = sf.index.searchsorted(d, side="right") - 1
        i = max(i, 0)
        return 1 - float(sf.iloc[i]), 1 - float(ci.iloc[i, 1]), 1 - float(ci.iloc[i, 0])

    fh = at(h)[0]
    F = 1 - sf

    def first_day(q: float) -> float | None:
        reach = F.index[(F >= q * fh - 1e-12).to_numpy() & (F.index <= h)]
        return float(reach[0]) if len(reach) else None

    med = kmf.median_survival_time_
    return {
        "customers": int(len(dur)),
        "second_orders": int(event.sum()),
        "share_by": {
            int(d): dict(zip(("share", "ci_low", "ci_high"), at(d), strict=True))
            for d in days
            if d <= dur.max()
        },  # fmt: skip
        "horizon": h,
        "share_horizon": fh,
        "median_days": float(med) if np.isfinite(med) else None,
        "half_days": first_day(0.5),
        "most_days": first_day(0.8),
        "curve": pd.DataFrame(
            {
                "share": F.to_numpy(),
                "ci_low": 1 - ci.iloc[:, 1].to_numpy(),
                "ci_high": 1 - ci.iloc[:, 0].to_numpy(),
            },
            index=F.index,
        ).loc[:end],  # fmt: skip
    }


def value_by_order_number(bought: Any, top: int = 5, level: float = 0.95) -> pd.DataFrame:
    """Mean order value by order number (1 = the first purchase; the last row pools `top` and
    later), with a t interval at `level`, for all orders of that number (``orders``, ``mean``,
    ``ci_low``, ``ci_high``) and for the same customers throughout: those with at least three
    purchases, orders 1-3 (``same_customers``, ``mean_same``). The selection caveat: customers who
    reach a later order are not those who stopped earlier (heavier buyers stay), so a rising
    all-orders line can be selection, not customers spending more as they stay; the same-customer
    column compares like with like. The engine returns the sums per order number
    (:func:`helpers.report.engine.value_by_number`)."""
    agg = engine.value_by_number(bought, top)
    t = stats.t.ppf(0.5 + level / 2, np.maximum(agg["orders"] - 1, 1))
    half = t * agg["std"] / np.sqrt(agg["orders"])
    return pd.DataFrame(
        {"orders": agg["orders"], "mean": agg["mean"], "ci_low": agg["mean"] - half,
         "ci_high": agg["mean"] + half, "same_customers": agg["same_customers"],
         "mean_same": agg["mean_same"]}
    ).rename_axis("order_number")  # fmt: skip


def show_second_order(
    sec: pd.DataFrame | None, bought: Any, T: Any, fmt: Any, reason: str = "",
    level: float = 0.95,
) -> dict[str, Any]:  # fmt: skip
    """Render section 2 (shares by cohort and window, Kaplan–Meier, order value by order
    number); returns its metrics."""
    from IPython.display import display

    T.md("second.section")
    if sec is None or sec["days"].notna().sum() < 10:
        T.md("second.needs", reason=reason or T("second.too_few"))
        return {"shown": False}
    rates = second_order_rates(sec, level=level)
    km = time_to_second_order(sec, level=level)
    by_order = value_by_order_number(bought)
    wide = rates.pivot(index="cohort", columns="window", values="rate").rename_axis(columns=None)
    wide = wide.loc[[c for c in wide.index if c != "all"] + ["all"]]
    shown = fmt.table(wide, pct=list(wide.columns))
    shown.index = [T("second.all") if c == "all" else c for c in shown.index]
    display(
        shown.rename(columns=lambda w: T("second.col.within", days=w)).rename_axis(
            T("ltv.col.cohort")
        )
    )
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    cur = plots.step_on_grid(km["curve"])
    ax1.step(cur.index, cur["share"], where="post", color="C0")
    ax1.fill_between(cur.index, cur["ci_low"], cur["ci_high"], step="post", alpha=0.2, color="C0")
    if km["most_days"] is not None:
        ax1.axvline(km["most_days"], color="C3", linestyle=":", linewidth=1)
    ax1.set(title=T("second.km_title"), xlabel=T("second.km_x"), ylabel=T("second.km_y"))
    ax1.set_ylim(0, None)
    plots.percent_axis(ax1)
    n = by_order.index.to_numpy()
    ax2.errorbar(n, by_order["mean"], yerr=[by_order["mean"] - by_order["ci_low"],
                 by_order["ci_high"] - by_order["mean"]], marker="o", capsize=3,
                 label=T("second.all_orders"))  # fmt: skip
    ax2.plot(by_order.index[:3], by_order["mean_same"].iloc[:3], marker="s", linestyle="--",
             label=T("second.same_customers"))  # fmt: skip
    ax2.set_xticks(n, [str(int(i)) if i < n.max() else f"{int(i)}+" for i in n])
    ax2.set(title=T("second.aov_title"), xlabel=T("second.aov_x"), ylabel=fmt.currency)
    ax2.legend(fontsize=8)
    # spacing set, not measured: tight_layout's text measuring cost a third of the section
    fig.subplots_adjust(wspace=0.3)
    plt.show()
    pooled = rates[rates["cohort"] == "all"].set_index("window")
    w90 = pooled.loc[90] if 90 in pooled.index else pooled.iloc[-1]
    h = km["horizon"]
    timing = (
        T("second.timing", half=fmt.num(km["half_days"]), most=fmt.num(km["most_days"]),
          share=fmt.pct(km["share_horizon"]), days=fmt.num(h))
        if km["most_days"] is not None else ""
    )  # fmt: skip
    median = (
        T("second.median", days=fmt.num(km["median_days"]))
        if km["median_days"] is not None
        else T("second.no_median", share=fmt.pct(km["share_horizon"]), days=fmt.num(h))
    )
    first, second = by_order["mean"].iloc[0], by_order["mean"].iloc[1]
    same1, same2 = by_order["mean_same"].iloc[0], by_order["mean_same"].iloc[1]
    T.md(
        "second.meaning",
        rate=fmt.pct(w90["rate"]), low=fmt.pct(w90["ci_low"]), high=fmt.pct(w90["ci_high"]),
        window=int(w90.name), n=fmt.num(w90["customers"]), timing=timing, median=median,
        first=fmt.money(first, 2), second=fmt.money(second, 2),
        same1=fmt.money(same1, 2), same2=fmt.money(same2, 2),
    )  # fmt: skip

    def r4(v: Any) -> Any:
        return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else (
            round(float(v), 4))  # fmt: skip

    return {
        "shown": True,
        "rates": {
            f"{c}.{int(w)}": {"customers": int(r.customers), "rate": r4(r.rate),
                              "ci_low": r4(r.ci_low), "ci_high": r4(r.ci_high)}
            for c, w, r in zip(rates["cohort"], rates["window"], rates.itertuples(), strict=True)
            if r.customers > 0
        },
        "km": {"customers": km["customers"], "second_orders": km["second_orders"],
               "horizon_days": r4(km["horizon"]), "share_horizon": r4(km["share_horizon"]),
               "median_days": r4(km["median_days"]), "half_days": r4(km["half_days"]),
               "most_days": r4(km["most_days"]),
               "share_by": {str(d): {k: r4(v) for k, v in s.items()}
                            for d, s in km["share_by"].items()}},
        "order_value": {str(int(i)): {"orders": int(r["orders"]), "mean": r4(r["mean"]),
                                      "ci_low": r4(r["ci_low"]), "ci_high": r4(r["ci_high"]),
                                      "mean_same_customers": r4(r["mean_same"])}
                        for i, r in by_order.to_dict("index").items()},
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# 3. Which customers are worth acquiring
# ---------------------------------------------------------------------------------------------
#: The optional customer file (the mapping's ``tables.customers``): one row per customer,
#: attributes kept as text (:data:`helpers.report.extra_tables.COLUMNS`).
CUSTOMER_SCHEMA: tuple[Column, ...] = extra_tables.COLUMNS["customers"]


def customer_attributes(df: pd.DataFrame) -> pd.DataFrame:
    """A customer table as read (``customer_id`` and attribute columns) indexed by
    ``customer_id`` as text, every attribute as text."""
    keep = [c for c in df.columns if c != "customer_id"]
    out = df.set_index(df["customer_id"].astype(str))[keep]
    return out.rename_axis("customer_id").astype("string")


def read_customer_attributes(
    path: str | Path, columns: dict[str, str] | None = None, **kwargs: Any
) -> pd.DataFrame:
    """The customer file's attributes, indexed by ``customer_id`` (text), every other mapped
    column as text (:func:`helpers.tables.read_table_info` with :data:`CUSTOMER_SCHEMA`: one
    error listing every problem). `columns`: canonical name -> the client's column (only the
    mapped ones are kept); None: the file's own names (``acquisition_channel``, ``country``)."""
    schema = CUSTOMER_SCHEMA
    if columns:
        extra = [c for c in columns if c not in {col.name for col in schema}]
        schema = schema + tuple(Column(c, "text", required=False, nullable=True) for c in extra)
    df, _ = read_table_info(path, schema, columns=columns, keep_unmapped=False, **kwargs)
    return customer_attributes(df[[c.name for c in schema if c.name in df.columns]])


def first_order_attributes(
    bought: Any,
    customers: pd.DataFrame | None = None,
    client_columns: dict[str, str] | None = None,
    max_levels: int = MAX_LEVELS,
) -> pd.DataFrame:
    """One row per customer (index ``customer_id`` as text): every attribute known at
    acquisition -- the first order's value of each extra mapped order column (a ``discount``
    column becomes ``discount_used``: yes / no) and the customer file's columns.

    Raises :class:`~helpers.tables.DataValidationError` naming the client's column and the count
    when an attribute has more than `max_levels` distinct values (an order id mapped as a
    channel): groups that small say nothing, and the table would be unreadable. The engine
    returns the first order's values per customer (:func:`helpers.report.engine.first_orders`)."""
    cols = [c for c in bought.columns
            if c not in _ORDER_COLUMNS and not str(c).endswith("(unmapped)")]  # fmt: skip
    first = engine.first_orders(bought, columns=tuple(cols))
    attrs = pd.DataFrame(index=first.index.rename("customer_id"))
    for c in cols:
        if c == "discount":
            amount = pd.to_numeric(first[c], errors="coerce")
            attrs["discount_used"] = np.where(amount.fillna(0) > 0, "yes", "no")
        else:
            attrs[c] = first[c].astype("string")
    if customers is not None:
        extra = align(customers, attrs.index)
        for c in extra.columns:
            attrs[c if c not in attrs else f"customer_{c}"] = extra[c]
    names = dict(client_columns or {})
    problems = [
        f"column '{names.get(c, c)}' (mapped as '{c}') has {n:,} distinct values; a customer "
        f"attribute such as a channel or country has at most {max_levels} (is an id mapped here?)"
        for c in attrs.columns
        if (n := attrs[c].nunique()) > max_levels
    ]
    if problems:
        raise DataValidationError(problems)
    return attrs


def pool_small(values: pd.Series, min_group: int = MIN_GROUP, other: str = "other") -> pd.Series:
    """`values` with every level of fewer than `min_group` customers (and missing values) pooled
    as `other`."""
    v = values.astype("string").fillna(other)
    counts = v.value_counts()
    small = counts.index[counts < min_group]
    return v.where(~v.isin(small), other)


def _group_dropout(
    seg: pd.DataFrame, groups: pd.Series, level: float, seed: int = 0
) -> pd.DataFrame:
    """Per group g: E[p | g] / E[p | the rest] of separate BG/NBD fits per group (Fader, Hardie
    & Lee 2005; E[p] = a / (a + b), the mean dropout probability after a purchase; the rest's is
    the customer-weighted mean of the other groups'), with the `level` percentile interval of a
    parametric bootstrap (4000 draws of each fit's log-parameters)."""
    from helpers import btyd

    names = sorted(groups.unique())
    n = groups.value_counts().reindex(names).to_numpy(float)
    draws, point = [], []
    sample = _every_kth(len(seg))
    # one BLAS thread: a 4-parameter L-BFGS-B gains nothing from more, and on a loaded machine
    # their spinning made these fits about 8 times slower (benchmarks/README, issue 28)
    with threadpool_limits(1):
        for i, g in enumerate(names):
            f = clv.fit_bgnbd(seg.loc[(groups == g).to_numpy() & sample])
            d = btyd.sample_log_params(f, 4000, seed + i)
            draws.append(d[:, 2] / (d[:, 2] + d[:, 3]))
            point.append(f.a / (f.a + f.b))
    E, p = np.column_stack(draws), np.array(point)
    rows = []
    for i, g in enumerate(names):
        w = n.copy()
        w[i] = 0
        r = E[:, i] / (E @ w / w.sum())
        est = p[i] / (p @ w / w.sum())
        lo, hi = np.quantile(r, [(1 - level) / 2, (1 + level) / 2])
        rows.append({"group": g, "dropout_ratio": est, "dropout_low": min(lo, est),
                     "dropout_high": max(hi, est)})  # fmt: skip
    return pd.DataFrame(rows).set_index("group")


def margin_12(bought: Any, seg: pd.DataFrame, econ: Economics) -> np.ndarray:
    """Each customer's (rows of `seg`) margin in the first :data:`MARGIN_MONTHS` calendar months
    from the first order's month (:func:`margin_flows`), NaN unless observed for all of them."""
    last = periods.last_complete_period(seg.attrs["as_of"], "M")
    first_month = periods.period_codes(seg["first_order"].to_numpy(), "M")
    return _customer_cum(bought, seg.index, first_month, last, [MARGIN_MONTHS - 1], econ)[:, 0]


def attribute_value(
    attr: pd.Series,
    sec: pd.DataFrame,
    bought: Any,
    seg: pd.DataFrame,
    econ: Economics,
    min_group: int = MIN_GROUP,
    window: int = 90,
    level: float = 0.95,
    dropout: bool = True,
    m12: np.ndarray | None = None,
) -> pd.DataFrame:
    """Per level of one first-order attribute (levels under `min_group` customers pooled as
    "other", :func:`pool_small`): ``customers``; the second-order rate within `window` days
    (customers whose window has passed) and its difference from the rest (Newcombe's interval,
    :func:`helpers.stats.proportion_difference`); the 12-month margin per customer (customers
    observed for 12 full months, :func:`margin_flows`; t interval) and its difference from the rest
    (Welch); and, with `dropout`, the mean dropout probability after a purchase relative to the
    rest (:func:`_group_dropout`, BG/NBD per group). `m12`: :func:`margin_12` when already
    computed (it does not depend on the attribute).

    Every interval is at the Bonferroni level 1 - (1 - `level`) / k for the k groups compared
    (simultaneous: all k hold together with probability >= `level`). ``verdict``: ``better`` /
    ``worse`` when both the rate and the margin differences that exclude 0 agree (and at least
    one does), ``inconclusive`` otherwise."""
    from helpers.stats import proportion_difference

    groups = pool_small(align(attr, seg.index.astype(str)), min_group)
    groups.index = seg.index
    k = groups.nunique()
    adj = 1 - (1 - level) / max(k, 1)
    s = align(sec, seg.index.astype(str))
    ok = (s["followup"] >= window).to_numpy()
    hit = (s["days"] <= window).to_numpy()
    m12 = margin_12(bought, seg, econ) if m12 is None else m12
    g = groups.to_numpy()
    rows = []
    for name in sorted(groups.unique()):
        inn = g == name
        rate = proportion_difference(hit[inn & ok], hit[~inn & ok], confidence=adj)
        a, b = m12[inn & ~np.isnan(m12)], m12[~inn & ~np.isnan(m12)]
        row = {"group": name, "customers": int(inn.sum()), "rate_customers": int((inn & ok).sum()),
               "rate": rate["p_treat"], "rate_diff": rate["estimate"],
               "rate_diff_low": rate["ci_low"], "rate_diff_high": rate["ci_high"],
               "margin_customers": len(a)}  # fmt: skip
        lo, hi = _wilson(np.array([hit[inn & ok].sum()]), np.array([(inn & ok).sum()]), adj)
        row["rate_low"], row["rate_high"] = float(lo[0]), float(hi[0])
        if len(a) > 1 and len(b) > 1:
            t = stats.ttest_ind(a, b, equal_var=False)
            ci = t.confidence_interval(adj)
            half = stats.t.ppf(0.5 + adj / 2, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a))
            row.update(margin_12=a.mean(), margin_low=a.mean() - half, margin_high=a.mean() + half,
                       margin_diff=a.mean() - b.mean(), margin_diff_low=ci.low,
                       margin_diff_high=ci.high)  # fmt: skip
        rows.append(row)
    out = pd.DataFrame(rows).set_index("group")
    for c in ("margin_12", "margin_low", "margin_high", "margin_diff", "margin_diff_low",
              "margin_diff_high"):  # fmt: skip
        if c not in out:
            out[c] = np.nan
    signs = []
    for lo, hi in (("rate_diff_low", "rate_diff_high"), ("margin_diff_low", "margin_diff_high")):
        signs.append(np.where(out[lo] > 0, 1, np.where(out[hi] < 0, -1, 0)))
    s1, s2 = signs
    out["verdict"] = np.where(
        (s1 * s2 >= 0) & ((s1 + s2) > 0), "better",
        np.where((s1 * s2 >= 0) & ((s1 + s2) < 0), "worse", "inconclusive"),
    )  # fmt: skip
    if dropout and k > 1:
        try:
            out = out.join(_group_dropout(seg, groups, adj))
        except ValueError:  # a group too small or too uniform for a fit: no dropout column
            pass
    out.attrs.update(level=level, adjusted_level=adj, groups=k, min_group=min_group,
                     window=window)  # fmt: skip
    return out


def attribute_discounts(
    attr: pd.Series,
    bought: Any,
    seg: pd.DataFrame,
    min_group: int = MIN_GROUP,
    level: float = 0.95,
) -> pd.DataFrame:
    """Per level of one first-order attribute (pooled as in :func:`attribute_value`), from the
    orders' ``discount`` column (amount of discount per order; > 0: the order used one):

    * ``discount_share``: the share of the group's orders with a discount, R = sum_i d_i /
      sum_i n_i over its customers i (d_i orders with a discount, n_i orders), and
      ``discount_per_order`` = sum_i discount_i / sum_i n_i: ratios of sums with the customers as
      the sampling units (a customer's orders are not independent draws), with the linearized
      interval of :func:`helpers.economics.cost_per_acquisition` (Cochran 1977, 6.4);
    * ``first_discount``: the share of first orders with a discount (Wilson), and
      ``first_discount_diff``: its difference from the rest with Newcombe's interval
      (:func:`helpers.stats.proportion_difference`). The first order shows the customer's own
      habit; later orders also carry the shop's coupons and campaign discounts, which reach every
      group.

    Every interval at the Bonferroni level 1 - (1 - `level`) / k, as :func:`attribute_value`.
    Rows: the groups (``customers``, ``orders`` and the columns above with ``_low``/``_high``).
    The engine returns one row per customer (:func:`helpers.report.engine.customer_discounts`)."""
    from helpers.stats import proportion_difference

    ids = seg.index.astype(str)
    groups = pool_small(align(attr, ids), min_group)
    k = groups.nunique()
    adj = 1 - (1 - level) / max(k, 1)
    per = align(engine.customer_discounts(bought), ids)
    per = per[per["orders"] > 0]
    per["group"] = align(groups, per.index).to_numpy()
    share = economics.cost_per_acquisition(
        per.rename(columns={"used": "spend", "orders": "signups"}), by="group", level=adj
    )
    amount = economics.cost_per_acquisition(
        per.rename(columns={"discount": "spend", "orders": "signups"}), by="group", level=adj
    )
    first = per["first"].to_numpy(bool)
    grp = per["group"].to_numpy()
    rows = []
    for name in share.index:
        inn = grp == name
        diff = proportion_difference(first[inn], first[~inn], confidence=adj)
        lo, hi = _wilson(np.array([first[inn].sum()]), np.array([inn.sum()]), adj)
        rows.append(
            {"group": name, "customers": int(inn.sum()), "orders": int(share.loc[name, "signups"]),
             "discount_share": share.loc[name, "cpa"], "discount_share_low": share.loc[name, "ci_low"],
             "discount_share_high": share.loc[name, "ci_high"],
             "discount_per_order": amount.loc[name, "cpa"],
             "discount_per_order_low": amount.loc[name, "ci_low"],
             "discount_per_order_high": amount.loc[name, "ci_high"],
             "first_discount": diff["p_treat"], "first_discount_low": float(lo[0]),
             "first_discount_high": float(hi[0]), "first_discount_diff": diff["estimate"],
             "first_discount_diff_low": diff["ci_low"], "first_discount_diff_high": diff["ci_high"]}
        )  # fmt: skip
    out = pd.DataFrame(rows).set_index("group")
    out.attrs.update(level=level, adjusted_level=adj, groups=k, min_group=min_group)
    return out


def planted_truths(truth: dict[str, Any] | None) -> dict[tuple[str, str, str], float]:
    """The sample company's planted effects these sections estimate, from its ground truth
    (:func:`helpers.synth.read_truth`): (attribute, group, column) -> truth. Empty without a truth
    file (a client). ``referral_dropout_multiplier`` multiplies referral customers' BG/NBD dropout
    probability p, so E[p | referral] / E[p | the rest] is the multiplier."""
    if not truth:
        return {}
    p = truth["parameters"]
    on = bool(p.get("planted_effects", True))
    out = {
        ("acquisition_channel", "referral", "dropout_ratio"): (
            float(p["referral_dropout_multiplier"]) if on else 1.0
        )
    }
    # the planted cost per acquired customer of each channel (helpers.synth.acquisition)
    for ch, cpa in p.get("acquisition_cpa", []):
        out[("cac", str(ch), "cpa")] = float(cpa)
    # deal-site customers are discount-prone: their first orders carry a discount more often
    from helpers.synth import registry

    gap = registry.discount_truths(p).get("discount_first_order_gap_deal_site")
    if gap is not None:
        out[("acquisition_channel", "deal_site", "first_discount_diff")] = gap
    return out


def _r(v: Any, digits: int = 4) -> Any:
    """A JSON-ready number: rounded float, None for missing or infinite values."""
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return round(f, digits) if math.isfinite(f) else None


def _show_discounts(disc: pd.DataFrame, label: str, T: Any, fmt: Any) -> None:
    """Render the discount table of one attribute (:func:`attribute_discounts`) and the sentence
    on it, generated from the intervals of the first orders' differences."""
    from IPython.display import display

    cols = ["orders", "discount_share", "discount_share_low", "discount_share_high",
            "discount_per_order", "discount_per_order_low", "discount_per_order_high",
            "first_discount", "first_discount_diff", "first_discount_diff_low",
            "first_discount_diff_high"]  # fmt: skip
    shown = fmt.table(
        disc[cols], num=["orders"],
        pct=[c for c in cols if c.startswith(("discount_share", "first_discount"))],
        money=[c for c in cols if c.startswith("discount_per_order")],
    )  # fmt: skip
    shown.index = [T("attr.other") if g == "other" else g for g in shown.index]
    T.md("attr.discount.heading", attribute=label)
    display(shown.rename(columns=lambda c: T(f"attr.discount.col.{c}")).rename_axis(label))
    more = [g for g in disc.index if disc.loc[g, "first_discount_diff_low"] > 0]
    less = [g for g in disc.index if disc.loc[g, "first_discount_diff_high"] < 0]
    found = " ".join(
        [T("attr.discount.more", groups=", ".join(more))] * bool(more)
        + [T("attr.discount.less", groups=", ".join(less))] * bool(less)
    ) or T("attr.discount.none")  # fmt: skip
    T.md("attr.discount.meaning", found=found, level=fmt.pct(disc.attrs["adjusted_level"], 1))


def show_attributes(
    attrs: pd.DataFrame | None,
    sec: pd.DataFrame,
    bought: Any,
    seg: pd.DataFrame,
    econ: Economics,
    T: Any,
    fmt: Any,
    truth: dict[str, Any] | None = None,
    min_group: int = MIN_GROUP,
    level: float = 0.95,
) -> dict[str, Any]:
    """Render section 3 (one table per attribute, a plot of the acquisition channel, generated
    sentences); returns its metrics, with a ``truth`` entry
    (:func:`helpers.run.truth_entry`) for each planted effect it estimates
    (:func:`planted_truths`)."""
    from IPython.display import display

    from helpers.run import truth_entry

    T.md("attr.section", min_group=fmt.num(min_group))
    if attrs is None or attrs.empty:
        T.md("attr.needs")
        return {"shown": False}
    main = "acquisition_channel" if "acquisition_channel" in attrs else attrs.columns[0]
    planted = planted_truths(truth)
    out: dict[str, Any] = {"shown": True, "min_group": min_group, "attributes": {}}
    tables = {}
    m12 = None
    for col in attrs.columns:
        label = T.messages.get(f"attr.name.{col}", col)
        if pool_small(align(attrs[col], seg.index.astype(str)), min_group).nunique() < 2:
            T.md("attr.one_group", attribute=label, min_group=fmt.num(min_group))
            out["attributes"][col] = {"groups": None, "reason": "fewer than two groups"}
            continue
        if m12 is None:
            m12 = margin_12(bought, seg, econ)  # the same for every attribute: computed once
        t = attribute_value(attrs[col], sec, bought, seg, econ, min_group, level=level,
                            dropout=col == main, m12=m12)  # fmt: skip
        tables[col] = t
        cols = ["customers", "rate", "rate_low", "rate_high", "margin_12", "margin_low",
                "margin_high"] + (["dropout_ratio", "dropout_low", "dropout_high"]
                                  if "dropout_ratio" in t else [])  # fmt: skip
        shown = fmt.table(
            t[cols], num=["customers"], pct=["rate", "rate_low", "rate_high"],
            money=["margin_12", "margin_low", "margin_high"],
            dec=[c for c in cols if c.startswith("dropout")],
        )  # fmt: skip
        shown["verdict"] = [T(f"attr.verdict.{v}") for v in t["verdict"]]
        shown.index = [T("attr.other") if g == "other" else g for g in shown.index]
        T.md("attr.heading", attribute=label)
        display(
            shown.rename(columns=lambda c, w=t.attrs["window"]: T(f"attr.col.{c}", window=w,
                                             months=MARGIN_MONTHS)).rename_axis(label)
        )  # fmt: skip
        better = [g for g, v in t["verdict"].items() if v == "better"]
        worse = [g for g, v in t["verdict"].items() if v == "worse"]
        found = " ".join(
            [T("attr.better", groups=", ".join(better))] * bool(better)
            + [T("attr.worse", groups=", ".join(worse))] * bool(worse)
        ) or T("attr.none")  # fmt: skip
        T.md("attr.meaning", attribute=label, k=t.attrs["groups"], found=found,
             level=fmt.pct(t.attrs["adjusted_level"], 1))  # fmt: skip
        entry = {
            g: {k: _r(v) for k, v in r.items()}
            for g, r in t.drop(columns="verdict").to_dict("index").items()
        }
        for g, v in t["verdict"].items():
            entry[g]["verdict"] = v
        if "discount" in bought.columns and col != "discount_used":
            disc = attribute_discounts(attrs[col], bought, seg, min_group, level)
            _show_discounts(disc, label, T, fmt)
            for g, r in disc.drop(columns=["customers"]).to_dict("index").items():
                entry.setdefault(g, {}).update({k: _r(v) for k, v in r.items()})
            both = t.join(disc.drop(columns=["customers"]))
        else:
            both = t
        for (a, g, c), value in planted.items():
            if a == col and g in both.index and c in both:
                lo, hi = ((f"{c}_low", f"{c}_high") if f"{c}_low" in both
                          else (c.replace("ratio", "low"), c.replace("ratio", "high")))  # fmt: skip
                entry[g]["truth_" + c] = truth_entry(
                    both.loc[g, c], both.loc[g, lo], both.loc[g, hi], value
                )
        out["attributes"][col] = {"groups": entry, "adjusted_level": _r(t.attrs["adjusted_level"])}
    out["discounts"] = "discount" in bought.columns
    if "discount" not in bought.columns:
        T.md("attr.discount.needs")
    if main not in tables:
        return out
    t = tables[main]
    fig, axes = plt.subplots(1, 3 if "dropout_ratio" in t else 2, figsize=(11, 3.4), sharey=True)
    y = np.arange(len(t))
    specs = [("rate", "rate_low", "rate_high", T("attr.plot.rate", window=t.attrs["window"])),
             ("margin_12", "margin_low", "margin_high",
              T("attr.plot.margin", months=MARGIN_MONTHS, currency=fmt.currency)),
             ("dropout_ratio", "dropout_low", "dropout_high", T("attr.plot.dropout"))]  # fmt: skip
    for ax, (c, lo, hi, title) in zip(axes, specs, strict=False):
        ax.errorbar(t[c], y, xerr=[t[c] - t[lo], t[hi] - t[c]], fmt="o", capsize=3)
        ax.set_title(title, fontsize=10)
    axes[0].set_yticks(y, [T("attr.other") if g == "other" else g for g in t.index])
    if "dropout_ratio" in t:
        axes[2].axvline(1, color="grey", linewidth=0.8)
    plots.percent_axis(axes[0], axis="x")
    fig.subplots_adjust(wspace=0.12)  # shared y: set, not measured (tight_layout is costly)
    plt.show()
    return out


# ---------------------------------------------------------------------------------------------
# 4. What customers cost to acquire
# ---------------------------------------------------------------------------------------------
#: The marketing spend file: one row per month and channel; sign-ups optional (else the new
#: customers of the orders count). Negative spend is refused (``money`` >= 0).
SPEND_SCHEMA: tuple[Column, ...] = extra_tables.COLUMNS["marketing_spend"]


def spend_table(df: pd.DataFrame) -> pd.DataFrame:
    """A spend table as read: ``month`` (first day of the month), ``channel`` (text), ``spend``
    and, when given, ``signups``, rows of one month and channel summed."""
    df = df.copy()
    df["month"] = pd.to_datetime(df["month"]).dt.to_period("M").dt.to_timestamp()
    df["channel"] = df["channel"].astype(str)
    cols = ["spend"] + (["signups"] if "signups" in df else [])
    return df.groupby(["month", "channel"], as_index=False, sort=True)[cols].sum()


def read_spend(
    path: str | Path, columns: dict[str, str] | None = None, **kwargs: Any
) -> pd.DataFrame:
    """The marketing spend file as ``month`` (first day of the month), ``channel`` (text),
    ``spend`` (>= 0) and, when the file has it, ``signups`` (:func:`helpers.tables.read_table_info`
    with :data:`SPEND_SCHEMA`: one error listing every problem, negative spend among them).
    Rows of one month and channel are summed."""
    df, _ = read_table_info(path, SPEND_SCHEMA, columns=columns, keep_unmapped=False, **kwargs)
    return spend_table(df)


def acquired_by_month(channel: pd.Series, seg: pd.DataFrame) -> pd.DataFrame:
    """New customers per month of their first order and `channel` (customer_id -> channel):
    ``month``, ``channel``, ``customers``."""
    ch = align(channel, seg.index.astype(str)).astype("string").fillna("unknown")
    first = pd.to_datetime(seg["first_order"]).to_numpy()
    month = first.astype("datetime64[M]").astype("datetime64[ns]")  # the month's first day
    return (
        pd.DataFrame({"month": month, "channel": ch.to_numpy()})
        .groupby(["month", "channel"], as_index=False, sort=True)
        .size()
        .rename(columns={"size": "customers"})
    )


def check_spend(spend: pd.DataFrame, acquired: pd.DataFrame, as_of: str | pd.Timestamp,
                file: str = "marketing spend") -> None:  # fmt: skip
    """Raise one :class:`~helpers.tables.DataValidationError` listing what of the spend file does
    not match the orders: channels with spend but no customer acquired through them, channels
    that acquired customers but have no spend rows, and months outside the orders' months (before
    the first new customer's month or after the as-of month). Nothing is computed from a file
    that does not match: a cost per customer over other months or channels would be wrong."""
    parts = []
    sc, ac = set(spend["channel"]), set(acquired["channel"])
    if extra := sorted(sc - ac):
        parts.append(f"channels with spend but no customer acquired through them: {extra}")
    if missing := sorted(ac - sc - {"unknown"}):
        parts.append(f"channels that acquired customers but have no spend rows: {missing}")
    lo = acquired["month"].min()
    hi = pd.Timestamp(periods.as_of_day(as_of)).to_period("M").to_timestamp()
    out = sorted({m.strftime("%Y-%m") for m in spend["month"] if m < lo or m > hi})
    if out:
        parts.append(
            f"months outside the orders ({lo:%Y-%m} to {hi:%Y-%m}): {out[:12]}"
            + (f" and {len(out) - 12} more" if len(out) > 12 else "")
        )
    if parts:
        raise DataValidationError(
            [f"{file}: does not match the orders; " + "; ".join(parts) + ". Map the file's "
             "channel column to the same channel as the customers (mapping key 'customers' or "
             "the orders' channel column) and give the months of the orders."]
        )  # fmt: skip


def _group_means(values: pd.DataFrame, group: np.ndarray) -> pd.DataFrame:
    """Per group and column (age) of `values` (customers x ages, NaN: not known): ``group``,
    ``age``, ``value`` (the mean over the customers with a value), ``se`` (its standard error,
    sample sd with ddof 1 / sqrt(n)) and ``customers`` (n), by sums per group, for the groups
    and ages with at least one value (customers without a group: left out). The sums are taken
    a column at a time (np.bincount: each group's values added in the customers' order, as
    ``np.add.at`` on the whole matrix added them), not from customers x ages copies of the
    values, their squares and the known cells (48 MB each at the 10M-row report's 163k
    sampled customers: the costs section's peak)."""
    codes, names = pd.factorize(pd.Series(group), sort=True)
    v = values.to_numpy(float)
    has = codes >= 0
    if not has.all():
        codes, v = codes[has], v[has]
    k = len(names)
    n, s1, s2 = (np.zeros((k, v.shape[1])) for _ in range(3))
    for j in range(v.shape[1]):
        col = v[:, j]
        known = ~np.isnan(col)
        x = np.where(known, col, 0.0)
        n[:, j] = np.bincount(codes, weights=known.astype(float), minlength=k)
        s1[:, j] = np.bincount(codes, weights=x, minlength=k)
        s2[:, j] = np.bincount(codes, weights=x * x, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        var = (s2 - n * mean**2) / (n - 1)
        se = np.sqrt(np.clip(var, 0, None) / n)
    gi, ai = np.nonzero(n > 0)
    return pd.DataFrame(
        {"group": np.asarray(names)[gi], "age": values.columns.to_numpy()[ai],
         "value": mean[gi, ai], "se": se[gi, ai], "customers": n[gi, ai].astype(int)}
    )  # fmt: skip


def acquisition_costs(
    spend: pd.DataFrame,
    channel: pd.Series,
    seg: pd.DataFrame,
    bought: Any,
    econ: Economics,
    values: pd.DataFrame | None = None,
    level: float = 0.95,
) -> dict[str, pd.DataFrame]:
    """Cost per acquired customer (CAC) by channel and month, value : cost and payback.

    * ``cac``: per channel, :func:`helpers.economics.cost_per_acquisition` (the ratio of sums
      spend / sign-ups with the months as sampling units; Cochran 1977, 6.4); sign-ups are the
      file's, or the orders' new customers of that month and channel when the file has none.
    * ``monthly``: spend, sign-ups and CAC per month and channel.
    * ``payback``: :func:`helpers.cohorts.payback_table` on the observed cumulative margin per
      acquired customer by channel (:func:`helpers.cohorts.value_by_age` of :func:`margin_flows`,
      from the engine's sums per channel and first month:
      :func:`helpers.report.engine.value_by_age`) at 12 months: the month the margin per customer reaches the CAC, and 12-month value : CAC.
    * ``clv``: with `values` (:class:`LtvCurves` ``values``: each customer's margin observed then
      projected), the same at the last month: CLV : CAC, its interval from the customers' spread
      and the months' spend (parameter uncertainty of the model not included), and payback on
      the projected curve (for channels too young to have paid back yet)."""
    acquired = acquired_by_month(channel, seg)
    check_spend(spend, acquired, seg.attrs["as_of"])
    d = spend.merge(acquired, on=["month", "channel"], how="left").fillna({"customers": 0})
    if "signups" not in d:
        d["signups"] = d["customers"]
    d["signups"] = d["signups"].fillna(d["customers"])
    cac = economics.cost_per_acquisition(d, by="channel", level=level)
    cac = cac[cac["signups"] > 0] if (cac["signups"] > 0).any() else cac
    monthly = d.assign(cac=d["spend"] / d["signups"].where(d["signups"] > 0))
    ch = align(channel, seg.index.astype(str)).astype("string").fillna("unknown")
    first_month = periods.period_codes(pd.to_datetime(seg["first_order"]).to_numpy(), "M")
    curve = engine.value_by_age(
        bought, pd.Series(first_month, index=seg.index.astype(str)), ch,
        periods.last_complete_period(seg.attrs["as_of"], "M"), MARGIN_MONTHS - 1,
        econ.gross_margin_rate, econ.shipping_per_order, level=level,
    )  # fmt: skip
    out = {"cac": cac, "monthly": monthly,
           "payback": cohorts.payback_table(curve, cac, MARGIN_MONTHS - 1)}  # fmt: skip
    if values is not None:
        proj = _group_means(values, align(ch, values.index).to_numpy())
        z = _z(level)
        proj["ci_low"], proj["ci_high"] = (
            proj["value"] - z * proj["se"],
            proj["value"] + z * proj["se"],
        )
        out["clv"] = cohorts.payback_table(proj, cac, int(values.columns.max()))
    return out


def _plain_log_ticks(ax: Any, values: np.ndarray) -> None:
    """Label a log y axis at 1-2-5 steps within the values' range with plain numbers: the default
    labels (10^k) go through mathtext, the costliest part of drawing the figure."""
    from matplotlib.ticker import NullFormatter

    v = values[np.isfinite(values) & (values > 0)]
    if not len(v):
        return
    lo, hi = ax.get_ylim()
    ticks = [m * 10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
             for m in (1, 2, 5) if lo <= m * 10.0**e <= hi]  # fmt: skip
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_ylim(lo, hi)
    ax.yaxis.set_minor_formatter(NullFormatter())


def show_costs(
    costs: dict[str, pd.DataFrame] | None,
    T: Any,
    fmt: Any,
    truth: dict[str, Any] | None = None,
    months: int = 36,
    reason: str = "",
) -> dict[str, Any]:
    """Render section 4 (CAC by channel with value : cost and payback, CAC by month); returns its
    metrics, with a truth entry per channel's planted cost per acquisition (:func:`planted_truths`)."""
    from IPython.display import display

    from helpers.run import truth_entry

    T.md("cac.section")
    if costs is None:
        T.md("cac.needs", reason=reason)
        return {"shown": False}
    cac, pay = costs["cac"], costs["payback"]
    table = cac[["signups", "spend", "cpa", "ci_low", "ci_high"]].join(
        pay[["value", "value_to_cac", "ratio_low", "ratio_high", "payback"]]
    )
    money = ["spend", "cpa", "ci_low", "ci_high", "value"]
    if "clv" in costs:
        clv_t = costs["clv"].rename(
            columns={"value": "clv", "value_to_cac": "clv_to_cac", "ratio_low": "clv_ratio_low",
                     "ratio_high": "clv_ratio_high", "payback": "payback_model"}
        )  # fmt: skip
        table = table.join(clv_t[["clv", "clv_to_cac", "clv_ratio_low", "clv_ratio_high",
                                  "payback_model"]])  # fmt: skip
        money.append("clv")
    shown = table.copy()
    for c in ("payback", "payback_model"):
        if c in shown:
            shown[c] = shown[c] + 1  # age 0 = the first month
    shown = fmt.table(shown, money=money, num=["signups", "payback"] + (
        ["payback_model"] if "clv" in costs else []),
        dec=[c for c in table.columns if "ratio" in c or c.endswith("_to_cac")], digits=1)  # fmt: skip
    display(shown.rename(columns=lambda c: T(f"cac.col.{c}", months=months)).rename_axis(
        T("attr.name.acquisition_channel")))  # fmt: skip
    mon = costs["monthly"].pivot(index="month", columns="channel", values="cac")
    q = mon.groupby(mon.index.to_period("Q")).mean()
    ax = plots.new_axes(T("cac.plot_title", currency=fmt.currency), "", fmt.currency, (9.5, 3.6))
    for c in q.columns:
        ax.plot(q.index.astype(str), q[c], marker="o", label=c)
    ax.set_yscale("log")
    _plain_log_ticks(ax, q.to_numpy(float))
    ax.legend(fontsize=8, ncol=3)
    ax.tick_params(axis="x", labelrotation=90)
    plt.show()
    key, lo, hi = (("clv_to_cac", "clv_ratio_low", "clv_ratio_high") if "clv" in costs
                   else ("value_to_cac", "ratio_low", "ratio_high"))  # fmt: skip
    pays = [g for g in table.index if table.loc[g, lo] > 1]
    loses = [g for g in table.index if table.loc[g, hi] < 1]
    unsure = [g for g in table.index if g not in pays and g not in loses]
    parts = [T("cac.pays", groups=", ".join(pays))] * bool(pays) + [
        T("cac.loses", groups=", ".join(loses))] * bool(loses) + [
        T("cac.unsure", groups=", ".join(unsure))] * bool(unsure)  # fmt: skip
    T.md("cac.meaning", found=" ".join(parts), months=months if "clv" in costs else MARGIN_MONTHS)
    planted = planted_truths(truth)
    channels = {}
    for g, r in table.to_dict("index").items():
        e = {k: _r(v) for k, v in r.items()}
        if ("cac", g, "cpa") in planted:
            e["truth_cpa"] = truth_entry(r["cpa"], r["ci_low"], r["ci_high"],
                                         planted[("cac", g, "cpa")])  # fmt: skip
        channels[str(g)] = e
    return {"shown": True, "channels": channels,
            "monthly_cac": {f"{m:%Y-%m}": {str(c): _r(v, 2) for c, v in row.items() if pd.notna(v)}
                            for m, row in mon.iterrows()}}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the notebook's inputs for sections 3 and 4
# ---------------------------------------------------------------------------------------------
@dataclass
class Inputs:
    """What sections 3 and 4 read beside the orders: the first-order ``attributes`` (None when
    nothing is mapped), the acquisition ``channel`` per customer (the customer file's
    ``acquisition_channel``, else the orders' ``channel``; None without one), the ``spend`` table
    (None without a file) and the sample company's ground ``truth`` (None for a client)."""

    attributes: pd.DataFrame | None
    channel: pd.Series | None
    spend: pd.DataFrame | None
    truth: dict[str, Any] | None


def read_inputs(
    tables: dict[str, pd.DataFrame], mapping: Any, bought: Any, data: str | Path
) -> Inputs:
    """The inputs of sections 3 and 4 from the client's tables the mapping names
    (:func:`helpers.report.orders.open_tables`: ``customers`` and ``marketing_spend``, read and
    checked by :mod:`helpers.report.extra_tables` before anything runs) and the first-order
    attributes (:func:`first_order_attributes`). For a company made by :mod:`helpers.synth`
    (its ``ground_truth.json`` beside the orders file `data`) the truth, to record against."""
    customers = customer_attributes(tables["customers"]) if "customers" in tables else None
    attrs = first_order_attributes(bought, customers, getattr(mapping, "columns", None))
    channel = next((attrs[c] for c in ("acquisition_channel", "channel") if c in attrs), None)
    spend = spend_table(tables["marketing_spend"]) if "marketing_spend" in tables else None
    truth = None
    if (Path(data).parent / "ground_truth.json").is_file():
        from helpers.synth import read_truth

        truth = read_truth(Path(data).parent)
    return Inputs(attrs if len(attrs.columns) else None, channel, spend, truth)
