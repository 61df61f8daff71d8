"""Randomized retention campaigns: planning (power), reading (differences with intervals, ITT and
the effect on the treated), CUPED, peeking and group-sequential boundaries, and uplift (whom to
contact, the Qini curve).

Conventions. ``treatment`` is a 0/1 (or boolean) array, 1 = the message was meant to be sent
(randomized arm), 0 = holdout. Every difference is *treatment minus control*. Intervals are
two-sided at level 1 - ``alpha``. Money is whatever the caller passes (margin per send comes from
:mod:`helpers.economics`, never from here).

Sources: two-proportion power by Cohen's arcsine effect size h (J. Cohen 1988, *Statistical power
analysis*, ch. 6) via statsmodels, and R's ``power.prop.test`` normal formula (Fleiss, Levin & Paik
2003, *Statistical methods for rates and proportions*, 4.2); Welch (1947) for means; Bloom (1984)
for no-shows; CUPED: Deng, Xu, Kohavi & Walker (2013, WSDM); peeking: Armitage, McPherson & Rowe
(1969, *JRSS A* 132), Pocock (1977, *Biometrika* 64(2)), O'Brien & Fleming (1979, *Biometrics*
35(3)); uplift: two-model approach and the Qini curve of Radcliffe (2007) and Gutierrez & Gerardy
(2016, PMLR 67); transformed outcome: Athey & Imbens (2015, arXiv:1504.01132).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from helpers import economics
from helpers.stats import orders_after, proportion_difference, srm_check

__all__ = [
    "cohen_h",
    "power_two_proportions",
    "sample_size_two_proportions",
    "mde_two_proportions",
    "power_prop_test_n",
    "holdout_cost",
    "outcomes_in_window",
    "calendar_audience",
    "winback_audience",
    "history_features",
    "pre_send_covariates",
    "campaign_report",
    "decide",
    "campaign_decisions",
    "coupon_value",
    "diff_means",
    "bootstrap_diff",
    "itt_to_tot",
    "CupedResult",
    "cuped",
    "information_correlation",
    "crossing_probability",
    "peeking_false_positive_rate",
    "simulate_peeking",
    "group_sequential_bounds",
    "QiniResult",
    "qini",
    "two_model_uplift",
    "cross_fitted_uplift",
    "transformed_outcome",
    "targeting_value",
    "policy_difference",
    "mde_from_se",
    "sample_size_mean_difference",
    "sample_ratio_mismatch",
    "capped_diff",
    "largest_influence",
    "dunnett_intervals",
    "uplift_by_segment",
    "interaction_test",
    "adjust_pvalues",
    "ratio_of_sums",
    "ratio_estimate",
    "decide_on_interval",
    "units_to_settle",
    "retrodesign",
    "hazard_by_dose",
]


def _arms(treatment: Any) -> np.ndarray:
    t = np.asarray(treatment)
    if t.dtype != bool:
        if not np.isin(t, (0, 1)).all():
            raise ValueError("treatment must be 0/1 or boolean")
        t = t.astype(bool)
    if t.all() or not t.any():
        raise ValueError("both arms need at least one unit (treatment all 0 or all 1)")
    return t


# --- planning: power, sample size, minimum detectable effect --------------------------------


def cohen_h(p_treatment: float, p_control: float) -> float:
    """Cohen's effect size for two proportions, h = 2 asin(sqrt(p_t)) - 2 asin(sqrt(p_c))
    (Cohen 1988; ``statsmodels.stats.proportion.proportion_effectsize``)."""
    from statsmodels.stats.proportion import proportion_effectsize

    return float(proportion_effectsize(p_treatment, p_control))


def power_two_proportions(
    p_control: float,
    p_treatment: float,
    n_control: float,
    ratio: float = 1.0,
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> float:
    """Power of the two-proportion z test with n_control holdout units and ratio x n_control
    treated ones, by the arcsine approximation: power = Phi(|h| / sqrt(1/n_c + 1/n_t) - z_{1-a/2})
    (+ the negligible other tail); wraps ``statsmodels.stats.power.NormalIndPower``."""
    from statsmodels.stats.power import NormalIndPower

    h = cohen_h(p_treatment, p_control)
    return float(
        NormalIndPower().power(
            h, nobs1=n_control, alpha=alpha, ratio=ratio, alternative=alternative
        )
    )


def sample_size_two_proportions(
    p_control: float,
    p_treatment: float,
    power: float = 0.8,
    alpha: float = 0.05,
    ratio: float = 1.0,
) -> float:
    """Holdout size n_control (the treated arm is ratio x n_control) giving `power` to detect
    p_treatment vs p_control: n_c = (z_{1-a/2} + z_power)^2 (1 + 1/ratio) / h^2 (arcsine
    approximation, statsmodels ``NormalIndPower.solve_power``)."""
    from statsmodels.stats.power import NormalIndPower

    h = cohen_h(p_treatment, p_control)
    return float(
        NormalIndPower().solve_power(abs(h), nobs1=None, alpha=alpha, power=power, ratio=ratio)
    )


def mde_two_proportions(
    p_control: float, n_control: float, ratio: float = 1.0, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Minimum detectable (absolute) uplift p_t - p_c for the given arm sizes: solve for h at the
    wanted power, then p_t = sin^2(asin(sqrt(p_c)) + h / 2)."""
    from statsmodels.stats.power import NormalIndPower

    h = NormalIndPower().solve_power(None, nobs1=n_control, alpha=alpha, power=power, ratio=ratio)
    p_t = np.sin(np.arcsin(np.sqrt(p_control)) + float(h) / 2) ** 2
    return float(p_t - p_control)


def power_prop_test_n(p1: float, p2: float, power: float = 0.8, alpha: float = 0.05) -> float:
    """Per-arm n of R's ``power.prop.test`` (equal arms, two-sided, strict = FALSE): n solving
    Phi((sqrt(n)|p1 - p2| - z_{1-a/2} sqrt((p1 + p2)(q1 + q2)/2)) / sqrt(p1 q1 + p2 q2)) = power,
    with q = 1 - p (pooled variance under H0, unpooled under H1; Fleiss et al. 2003)."""
    q1, q2 = 1 - p1, 1 - p2
    z = stats.norm.isf(alpha / 2)

    def gap(n: float) -> float:
        num = np.sqrt(n) * abs(p1 - p2) - z * np.sqrt((p1 + p2) * (q1 + q2) / 2)
        return float(stats.norm.cdf(num / np.sqrt(p1 * q1 + p2 * q2)) - power)

    return float(optimize.brentq(gap, 2, 1e9, xtol=1e-10))


def holdout_cost(n_sends: float, control_share: float, uplift: float, value: float = 1.0) -> float:
    """What the holdout forgoes: n_sends x control_share x uplift x value (conversions when
    value = 1, money when value = incremental margin per conversion)."""
    return float(n_sends * control_share * uplift * value)


# --- trigger audiences, outcomes in a window, pre-send features --------------------------------


def outcomes_in_window(
    exposures: pd.DataFrame,
    orders: pd.DataFrame,
    at: str,
    days: int,
    econ: economics.Economics = economics.SAMPLE,
    include_start: bool = False,
) -> pd.DataFrame:
    """What each exposure (a send, an offer: one row with ``customer_id`` and the time column
    `at`) was followed by: the customer's orders with at < order_date <= at + `days` days
    (at <= order_date with `include_start`, for a send dated at midnight of its day).
    Returns, aligned with `exposures`' index: ``orders`` (count), ``converted`` (any),
    ``revenue`` (sum of amount paid), ``discount`` (sum) and ``margin`` (sum of
    :func:`helpers.economics.order_margin`: amount - (1 - g)(amount + discount), 0 if returned).
    The window is :func:`helpers.stats.orders_after`'s (closed "right", or "both" with
    `include_start`)."""
    cols = ["customer_id", "order_date", "amount"] + [
        c for c in ("discount", "returned") if c in orders
    ]
    o = orders[cols].assign(margin=economics.order_margin(orders, econ).to_numpy())
    if "discount" not in o:
        o["discount"] = 0.0
    closed = "both" if include_start else "right"
    w = orders_after(
        exposures, o, days, at=at, closed=closed, values=["amount", "discount", "margin"]
    )
    return w.rename(columns={"amount": "revenue"})[
        ["orders", "converted", "revenue", "discount", "margin"]
    ]


def _opted_in(customers: pd.DataFrame, ids: np.ndarray, when: np.ndarray) -> np.ndarray:
    c = customers.set_index("customer_id")
    ok = c["email_opt_in"].reindex(ids).fillna(False).to_numpy(bool)
    if "email_opt_out_at" in c:
        out = pd.to_datetime(c["email_opt_out_at"]).reindex(ids).to_numpy()
        ok &= ~(when >= out)  # NaT (never opted out) compares False
    return ok


def calendar_audience(
    customers: pd.DataFrame, kind: str, years: Sequence[int], min_tenure_days: int = 0
) -> pd.DataFrame:
    """Who a date trigger targets each year: ``kind`` 'birthday' (``birth_date``) or
    'anniversary' (``signup_date``), sent on that month and day (a 29 February moves to the
    28th), to customers with e-mail consent (``email_opt_in``, and not yet opted out at the send
    when ``email_opt_out_at`` exists) who signed up more than `min_tenure_days` before it.
    Returns ``customer_id``, ``year``, ``sent_at``."""
    base = pd.to_datetime(customers["birth_date" if kind == "birthday" else "signup_date"])
    yrs = np.asarray(list(years), dtype=int)
    n = len(customers)
    ids = np.repeat(customers["customer_id"].to_numpy(), len(yrs))
    year = np.tile(yrs, n)
    month = np.repeat(base.dt.month.to_numpy(), len(yrs))
    day = np.repeat(base.dt.day.to_numpy(), len(yrs))
    day = np.where((month == 2) & (day == 29), 28, day)
    sent = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": day})).to_numpy()
    signup = np.repeat(pd.to_datetime(customers["signup_date"]).to_numpy(), len(yrs))
    ok = (sent > signup + np.timedelta64(min_tenure_days, "D")) & _opted_in(customers, ids, sent)
    return pd.DataFrame({"customer_id": ids, "year": year, "sent_at": sent})[ok].reset_index(
        drop=True
    )


def winback_audience(
    customers: pd.DataFrame, orders: pd.DataFrame, send_dates: Sequence[Any], lapsed_days: int
) -> pd.DataFrame:
    """Who a 'we miss you' trigger targets on each send date: customers with e-mail consent whose
    last order before the send is at least `lapsed_days` old (customers who never ordered are
    not included). Returns ``customer_id``, ``sent_at``, ``days_lapsed``; one backward
    ``merge_asof`` of the (customer, send date) grid on the orders."""
    dates = pd.to_datetime(pd.Index(send_dates)).to_numpy()
    ids = customers["customer_id"].to_numpy()
    grid = pd.DataFrame(
        {"customer_id": np.repeat(ids, len(dates)), "sent_at": np.tile(dates, len(ids))}
    ).sort_values("sent_at")
    o = orders[["customer_id", "order_date"]].sort_values("order_date")
    last = pd.merge_asof(
        grid, o, left_on="sent_at", right_on="order_date", by="customer_id",
        direction="backward", allow_exact_matches=False,
    )  # fmt: skip
    days = (last["sent_at"] - last["order_date"]) / pd.Timedelta(days=1)
    ok = (days >= lapsed_days).to_numpy() & _opted_in(
        customers, last["customer_id"].to_numpy(), last["sent_at"].to_numpy()
    )
    out = last.loc[ok, ["customer_id", "sent_at"]].assign(
        days_lapsed=np.floor(days[ok]).astype(int)
    )
    return out.sort_values(["sent_at", "customer_id"]).reset_index(drop=True)


def history_features(
    exposures: pd.DataFrame,
    orders: pd.DataFrame,
    at: str,
    signup: pd.Series | None = None,
) -> pd.DataFrame:
    """Pre-exposure features of each exposure's customer from the orders strictly before `at`
    (nothing after the send leaks in): ``n_orders``, ``days_since_last`` (days from the last
    order to `at`; NaN if none), ``spend`` (total paid), ``mean_amount``, ``discount_share``
    (share of orders with a discount) and, given `signup` (customer_id -> sign-up timestamp),
    ``tenure_days``. Aligned with `exposures`' index; one merge and one groupby."""
    e = pd.DataFrame({"customer_id": exposures["customer_id"].to_numpy(), "_t": exposures[at]})
    e["_row"] = np.arange(len(e))
    cols = ["customer_id", "order_date", "amount"] + (["discount"] if "discount" in orders else [])
    m = e.merge(orders[cols], on="customer_id", how="inner")
    m = m[m["order_date"] < m["_t"]]
    disc = m["discount"] > 0 if "discount" in m else pd.Series(False, index=m.index)
    m = m.assign(_disc=disc.astype(float))
    g = m.groupby("_row").agg(
        n_orders=("amount", "size"), last=("order_date", "max"), spend=("amount", "sum"),
        discount_share=("_disc", "mean"),
    )  # fmt: skip
    return history_columns(g.reindex(np.arange(len(e))), exposures, e["_t"].to_numpy(), signup)


def history_columns(
    g: pd.DataFrame, exposures: pd.DataFrame, at: np.ndarray, signup: pd.Series | None = None
) -> pd.DataFrame:
    """:func:`history_features`' columns from the per-exposure sums `g` (one row per exposure, in
    its order: ``n_orders``, ``last``, ``spend``, ``discount_share``; NaN where the customer had
    no order before `at`, the exposure times as datetime64[ns]), however they were summed."""
    out = pd.DataFrame(index=exposures.index)
    out["n_orders"] = g["n_orders"].fillna(0).astype(int).to_numpy()
    last = pd.to_datetime(g["last"]).to_numpy("datetime64[ns]")
    out["days_since_last"] = (at - last) / pd.Timedelta(days=1)
    out["spend"] = g["spend"].fillna(0.0).to_numpy()
    out["mean_amount"] = (g["spend"] / g["n_orders"]).fillna(0.0).to_numpy()
    out["discount_share"] = g["discount_share"].fillna(0.0).to_numpy()
    if signup is not None:
        start = exposures["customer_id"].map(signup).to_numpy()
        out["tenure_days"] = (at - start) / pd.Timedelta(days=1)
    return out


def pre_send_covariates(
    exposures: pd.DataFrame,
    orders: pd.DataFrame | None,
    customers: pd.DataFrame,
    at: str = "sent_at",
    features: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The covariates used for CUPED and uplift models, all known before the exposure: the
    exposure's ``pre_spend_90d`` column when present, and from :func:`history_features` the
    log of 1 + orders, of 1 + days since the last order (the tenure when there was none) and of
    1 + total spend, the tenure in days and the share of discounted orders. `features`: those
    features when already computed (the client report's engine computes them where the orders
    are: :func:`helpers.report.engine.history_features`); `orders` is then not read."""
    f = features
    if f is None:
        signup = customers.set_index("customer_id")["signup_date"]
        f = history_features(exposures, orders, at, signup)
    out = pd.DataFrame(index=exposures.index)
    if "pre_spend_90d" in exposures:
        out["pre_spend_90d"] = exposures["pre_spend_90d"].astype(float)
    out["log_orders"] = np.log1p(f["n_orders"])
    out["log_days_since_last"] = np.log1p(f["days_since_last"].fillna(f["tenure_days"]))
    out["log_spend"] = np.log1p(f["spend"])
    out["tenure_days"] = f["tenure_days"]
    out["discount_share"] = f["discount_share"]
    return out


# --- a campaign's economics and the decision --------------------------------------------------


def decide(estimate: float, ci_low: float, ci_high: float) -> str:
    """The decision a profit-per-send estimate supports, the burden of proof on spending: 'keep'
    if the whole interval is above 0; 'stop' if the best estimate is a loss (estimate <= 0: no
    evidence it pays); else 'unproven' (probably pays, the test cannot tell: target a subgroup
    or extend the test). Kept for the report's older tables; notebook 07 decides with
    :func:`decide_on_interval`, which never says 'stop' on a point estimate."""
    if ci_low > 0:
        return "keep"
    if estimate <= 0:
        return "stop"
    return "unproven"


def campaign_report(
    sends: pd.DataFrame,
    by: str | list[str] = "campaign_type",
    alpha: float = 0.05,
    covariates: list[str] | None = None,
) -> pd.DataFrame:
    """One row per campaign (`by`, one column or a list) from its randomized sends. `sends` needs ``treatment``
    (bool), ``converted``, ``profit`` (margin of the orders in the window after coupons, minus
    the send cost: :func:`outcomes_in_window`), ``send_cost`` and ``coupon_discount``.
    Columns: sends, control share, conversion in each arm, the uplift in conversion with its
    Wald interval (:func:`helpers.stats.proportion_difference`), the incremental profit per send (Welch interval), the spend per treated send
    (send + coupon discount), ROI = incremental profit / spend (interval: the profit interval
    divided by the spend, taken as known), profit per 1,000 sends and the :func:`decide` rule.
    With `covariates` (pre-send columns of `sends`), the uplift and the profit are CUPED-adjusted
    within each campaign (:func:`cuped`, Welch intervals); ``p_control`` and ``p_treatment``
    stay the raw rates."""
    rows = {}
    for name, g in sends.groupby(by, observed=True, sort=True):
        t = _arms(g["treatment"].to_numpy(bool))
        y = g["converted"].to_numpy()
        conv = proportion_difference(y[t], y[~t], method="wald", confidence=1 - alpha)
        if covariates:
            X = g[covariates].to_numpy(float)
            conv |= cuped(g["converted"].to_numpy(float), X, t, alpha).adjusted
            prof = cuped(g["profit"].to_numpy(float), X, t, alpha).adjusted
        else:
            prof = diff_means(g["profit"], t, alpha)
        spend = float((g["send_cost"] + g["coupon_discount"])[t].mean())
        rows[name] = {
            "sends": len(g), "control_share": float(1 - t.mean()),
            "p_control": conv["p_control"], "p_treatment": conv["p_treat"],
            "uplift": conv["estimate"], "uplift_low": conv["ci_low"],
            "uplift_high": conv["ci_high"], "profit_per_send": prof["estimate"],
            "profit_low": prof["ci_low"], "profit_high": prof["ci_high"],
            "spend_per_send": spend, "roi": prof["estimate"] / spend,
            "roi_low": prof["ci_low"] / spend, "roi_high": prof["ci_high"] / spend,
            "profit_per_1000": 1000 * prof["estimate"],
            "decision": decide(prof["estimate"], prof["ci_low"], prof["ci_high"]),
        }  # fmt: skip
    out = pd.DataFrame.from_dict(rows, orient="index")
    if isinstance(by, list):
        out.index = pd.MultiIndex.from_tuples(out.index, names=by)
        return out
    return out.rename_axis(by)


def campaign_decisions(report: pd.DataFrame, by_segment: pd.DataFrame) -> pd.DataFrame:
    """A decision per campaign with the number behind it, from :func:`campaign_report` overall
    (`report`, one row per campaign) and by a pre-send segment (`by_segment`, index (campaign,
    segment)). 'keep' and 'stop' as in :func:`decide`; an 'unproven' campaign becomes
    'target <segment>' when a segment has a conversion uplift whose interval is above 0 and a
    higher profit per send than the campaign as a whole (its row then gives the numbers), and
    'stop (re-test)' otherwise: it may pay, but the test cannot show it, so plan a bigger one."""
    cols = ["profit_per_1000", "profit_low", "profit_high", "roi"]
    out = report[cols].copy()
    out[["profit_low", "profit_high"]] *= 1000
    out["decision"] = report["decision"]
    out["segment"] = "all"
    for kind in report.index:
        if report.loc[kind, "decision"] != "unproven":
            continue
        seg = by_segment.xs(kind, level=0) if kind in by_segment.index.get_level_values(0) else None
        ok = (
            None
            if seg is None
            else seg[
                (seg["uplift_low"] > 0)
                & (seg["profit_per_send"] > report.loc[kind, "profit_per_send"])
            ]
        )
        if ok is None or ok.empty:
            out.loc[kind, "decision"] = "stop (re-test)"
            continue
        best = ok["profit_per_send"].idxmax()
        r = ok.loc[best]
        out.loc[kind, cols] = [
            r["profit_per_1000"],
            1000 * r["profit_low"],
            1000 * r["profit_high"],
            r["roi"],
        ]
        out.loc[kind, ["decision", "segment"]] = [f"target {best}", best]
    return out


def coupon_value(
    arm: pd.DataFrame,
    control: pd.DataFrame,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """Incremental margin per coupon offer (or per coupon-carrying send), decomposed. Each frame
    has one row per offer: ``converted`` (an order in the window); `arm` also ``redeemed``
    (bool), ``coupon_discount`` and ``order_margin`` of the redeeming order (0 if none). With uplift u = p_arm - p_0,
    redemption rate r, mean discount D and mean margin M of a redeemed order, and every
    coupon-induced order redeeming the coupon:

        cannibalized discount per offer = (r - u) D   (coupons used by natural buyers)
        incremental margin per offer    = u M - (r - u) D

    Intervals: percentile bootstrap, both arms resampled (seeded). Less noisy than the raw
    difference in margin, which carries the spread of every natural order's basket."""
    rng = np.random.default_rng(seed)

    def parts(idx_a: np.ndarray, idx_c: np.ndarray) -> tuple[np.ndarray, ...]:
        conv_a = arm["converted"].to_numpy(float)[idx_a].mean(axis=-1)
        conv_c = control["converted"].to_numpy(float)[idx_c].mean(axis=-1)
        red = arm["redeemed"].to_numpy(float)[idx_a]
        n_red = np.maximum(red.sum(axis=-1), 1)
        d = (arm["coupon_discount"].to_numpy(float)[idx_a] * red).sum(axis=-1) / n_red
        m = (arm["order_margin"].to_numpy(float)[idx_a] * red).sum(axis=-1) / n_red
        u = conv_a - conv_c
        cannibal = (red.mean(axis=-1) - u) * d
        return u, cannibal, u * m - cannibal

    na, nc = len(arm), len(control)
    point = parts(np.arange(na), np.arange(nc))
    boot = parts(rng.integers(0, na, (n_resamples, na)), rng.integers(0, nc, (n_resamples, nc)))
    q = [alpha / 2, 1 - alpha / 2]
    out: dict[str, float] = {}
    for name, p, b in zip(("uplift", "cannibalized", "margin"), point, boot, strict=True):
        lo, hi = np.quantile(b, q)
        out |= {name: float(p), f"{name}_low": float(lo), f"{name}_high": float(hi)}
    return out


# --- reading the test -----------------------------------------------------------------------


def diff_means(y: Any, treatment: Any, alpha: float = 0.05) -> dict[str, float]:
    """Difference in means ybar_t - ybar_c with Welch's (1947) interval: se = sqrt(s_t^2/n_t +
    s_c^2/n_c), Welch-Satterthwaite degrees of freedom (``scipy.stats.ttest_ind``,
    equal_var=False)."""
    t = _arms(treatment)
    v = np.asarray(y, dtype=float)
    res = stats.ttest_ind(v[t], v[~t], equal_var=False)
    ci = res.confidence_interval(1 - alpha)
    se = np.sqrt(v[t].var(ddof=1) / t.sum() + v[~t].var(ddof=1) / (~t).sum())
    return {
        "estimate": float(v[t].mean() - v[~t].mean()), "ci_low": float(ci.low),
        "ci_high": float(ci.high), "se": float(se), "p_value": float(res.pvalue),
        "mean_treatment": float(v[t].mean()), "mean_control": float(v[~t].mean()),
    }  # fmt: skip


def bootstrap_diff(
    y: Any, treatment: Any, alpha: float = 0.05, n_resamples: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Difference in means with a percentile bootstrap interval, each arm resampled on its own
    (Efron & Tibshirani 1993, ch. 13; ``scipy.stats.bootstrap``). For skewed revenue."""
    t = _arms(treatment)
    v = np.asarray(y, dtype=float)

    def stat(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return a.mean(axis=axis) - b.mean(axis=axis)

    res = stats.bootstrap(
        (v[t], v[~t]), stat, n_resamples=n_resamples, confidence_level=1 - alpha,
        method="percentile", rng=np.random.default_rng(seed),
    )  # fmt: skip
    ci = res.confidence_interval
    return {
        "estimate": float(stat(v[t], v[~t])), "ci_low": float(ci.low), "ci_high": float(ci.high),
        "se": float(res.standard_error),
    }  # fmt: skip


def itt_to_tot(itt: dict[str, float], delivered_share: float) -> dict[str, float]:
    """Effect on the treated (delivered) from the intention-to-treat effect, when the holdout
    receives nothing and an undelivered message has no effect: TOT = ITT / d, d = share of the
    treated arm actually reached (Bloom 1984, *Evaluation Review* 8(2)). The bounds are divided
    by d too (d treated as known, which it nearly is: it is a large-sample share)."""
    if not 0 < delivered_share <= 1:
        raise ValueError(f"delivered_share must be in (0, 1], got {delivered_share}")
    return {k: itt[k] / delivered_share for k in ("estimate", "ci_low", "ci_high")}


# --- CUPED ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CupedResult:
    """CUPED on one experiment: theta (one coefficient per covariate), rho (the correlation of Y
    and X; with several covariates the multiple correlation sqrt(R^2)), the variance ratio
    Var(Y_cuped) / Var(Y) (= 1 - rho^2 in the sample), the raw and adjusted effects."""

    theta: float | np.ndarray
    rho: float
    variance_ratio: float
    raw: dict[str, float]
    adjusted: dict[str, float]
    y_adjusted: np.ndarray = field(repr=False)

    @property
    def ci_width_ratio(self) -> float:
        """Width of the adjusted interval over the raw one (about sqrt(1 - rho^2))."""
        return (self.adjusted["ci_high"] - self.adjusted["ci_low"]) / (
            self.raw["ci_high"] - self.raw["ci_low"]
        )

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("y_adjusted")
        return d | {"ci_width_ratio": self.ci_width_ratio}


def cuped(y: Any, x: Any, treatment: Any, alpha: float = 0.05) -> CupedResult:
    """CUPED (Deng, Xu, Kohavi & Walker 2013): Y_cuped = Y - theta (X - mean(X)) with
    theta = cov(Y, X) / var(X) pooled over both arms and X measured before the randomization
    (pre-period spend), so E[Y_cuped] differences equal E[Y] differences while
    Var(Y_cuped) = Var(Y)(1 - rho^2). Both effects come with Welch intervals.

    `x` may hold several covariates (n x k): theta is then the pooled least-squares coefficient
    vector of Y on X (section 3.3 of the paper) and 1 - rho^2 = 1 - R^2. Because theta ignores
    the arms, the adjustment also corrects a chance imbalance of X between them (a regression
    adjustment; Lin 2013, *Annals of Applied Statistics* 7(1))."""
    t = _arms(treatment)
    yv = np.asarray(y, dtype=float)
    xv = np.asarray(x, dtype=float)
    X = xv.reshape(len(xv), -1)
    if X.shape[0] != len(yv):
        raise ValueError("y and x must have the same length")
    Xc = X - X.mean(axis=0)
    varies = Xc.var(axis=0) > 0
    if not varies.any():
        raise ValueError("the covariate x is constant: CUPED has nothing to adjust with")
    theta = np.zeros(X.shape[1])  # a constant column (e.g. in a small segment) gets theta 0
    theta[varies] = np.linalg.lstsq(Xc[:, varies], yv - yv.mean(), rcond=None)[0]
    y_adj = yv - Xc @ theta
    ratio = float(y_adj.var(ddof=1) / yv.var(ddof=1))
    if X.shape[1] == 1:
        rho = float(np.corrcoef(yv, X[:, 0])[0, 1])
        th: float | np.ndarray = float(theta[0])
    else:
        rho, th = float(np.sqrt(max(1 - ratio, 0.0))), theta
    return CupedResult(
        theta=th, rho=rho, variance_ratio=ratio,
        raw=diff_means(yv, t, alpha), adjusted=diff_means(y_adj, t, alpha), y_adjusted=y_adj,
    )  # fmt: skip


# --- peeking and group-sequential boundaries --------------------------------------------------


def _fractions(looks: int | Sequence[float]) -> np.ndarray:
    if np.ndim(looks) == 0:
        k = int(looks)  # type: ignore[arg-type]
        if k < 1:
            raise ValueError("looks must be at least 1")
        return np.arange(1, k + 1) / k
    t = np.asarray(looks, dtype=float)
    if t.ndim != 1 or len(t) == 0 or (np.diff(t) <= 0).any() or t[0] <= 0:
        raise ValueError("information fractions must be increasing and positive")
    return t / t[-1]


def information_correlation(looks: int | Sequence[float]) -> np.ndarray:
    """Correlation of the z statistics at looks with information t_i <= t_j:
    corr(Z_i, Z_j) = sqrt(t_i / t_j) (the score statistic is a Brownian motion in information
    time; Armitage, McPherson & Rowe 1969). `looks` = K (equally spaced) or the fractions."""
    t = _fractions(looks)
    return np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))


def crossing_probability(
    bounds: Sequence[float] | np.ndarray, looks: int | Sequence[float] | None = None, seed: int = 0
) -> float:
    """P(|Z_k| > b_k at some look k) under H0: 1 - P(-b <= Z <= b) for Z multivariate normal
    with the Brownian-motion correlation (``scipy.stats.multivariate_normal.cdf``, Genz's
    quasi-Monte Carlo integration with a fixed seed; absolute error about 1e-5)."""
    b = np.asarray(bounds, dtype=float)
    corr = information_correlation(len(b) if looks is None else looks)
    if corr.shape[0] != len(b):
        raise ValueError("one bound per look")
    if len(b) == 1:
        return float(2 * stats.norm.sf(b[0]))
    inside = stats.multivariate_normal.cdf(
        b, mean=np.zeros(len(b)), cov=corr, lower_limit=-b, abseps=1e-5, releps=1e-5,
        maxpts=10_000 * len(b), rng=np.random.default_rng(seed),
    )  # fmt: skip
    return float(1 - inside)


def peeking_false_positive_rate(looks: int | Sequence[float], alpha: float = 0.05) -> float:
    """Overall false-positive rate of testing at two-sided level `alpha` at every look and
    stopping at the first 'significant' one, under no effect (exact multivariate normal). Not
    1 - (1 - alpha)^K: the looks share data, so the tests are positively correlated."""
    t = _fractions(looks)
    return crossing_probability(np.full(len(t), stats.norm.isf(alpha / 2)), t)


def simulate_peeking(
    looks: int,
    alpha: float = 0.05,
    p: float = 0.05,
    n_per_look: int = 500,
    n_sims: int = 20_000,
    seed: int = 0,
) -> float:
    """Share of A/A tests (both arms convert with probability p, n_per_look new units per arm
    between looks) declared significant at some look by the pooled two-proportion z test at
    level alpha: a simulation check of :func:`peeking_false_positive_rate`."""
    rng = np.random.default_rng(seed)
    n = n_per_look * np.arange(1, looks + 1)
    a = rng.binomial(n_per_look, p, size=(n_sims, looks)).cumsum(axis=1)
    b = rng.binomial(n_per_look, p, size=(n_sims, looks)).cumsum(axis=1)
    pooled = (a + b) / (2 * n)
    se = np.sqrt(pooled * (1 - pooled) * 2 / n)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(se > 0, (a - b) / n / se, 0.0)
    return float((np.abs(z) > stats.norm.isf(alpha / 2)).any(axis=1).mean())


def group_sequential_bounds(
    looks: int | Sequence[float], alpha: float = 0.05, kind: str = "pocock"
) -> np.ndarray:
    """Two-sided z boundaries b_1..b_K with overall type-I error alpha: Pocock (1977) uses one
    constant c at every look; O'Brien & Fleming (1979) use c / sqrt(t_k) (very strict early,
    close to the fixed-sample 1.96 at the end). c solves crossing_probability(b) = alpha
    (``scipy.optimize.brentq``). K = 5, alpha = 0.05: Pocock c = 2.413; OBF final 2.040."""
    t = _fractions(looks)
    if kind == "pocock":
        shape = np.ones_like(t)
    elif kind in ("obrien-fleming", "obf"):
        shape = 1 / np.sqrt(t)
    else:
        raise ValueError("kind must be 'pocock' or 'obrien-fleming'")
    c = optimize.brentq(
        lambda c: crossing_probability(c * shape, t) - alpha,
        stats.norm.isf(alpha / 2), 5.0, xtol=1e-5,
    )  # fmt: skip
    return c * shape


# --- uplift: whom to contact -------------------------------------------------------------------


@dataclass(frozen=True)
class QiniResult:
    """The Qini curve (``share`` targeted, ``n`` targeted, ``qini`` = incremental outcomes,
    ``random`` = the straight line of a random ranking), the Qini coefficient (area between the
    curve and the random line, share on the x axis) and the coefficient normalized by that of
    the perfect ranking of the same data (1 = perfect, 0 = random)."""

    curve: pd.DataFrame = field(repr=False)
    coefficient: float
    perfect_coefficient: float

    @property
    def normalized(self) -> float:
        return self.coefficient / self.perfect_coefficient if self.perfect_coefficient else np.nan


def _qini_curve(y: np.ndarray, t: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    order = np.argsort(-score, kind="stable")
    s, yt, tt = score[order], y[order], t[order]
    n_t = np.cumsum(tt)
    n_c = np.cumsum(~tt)
    y_t = np.cumsum(yt * tt)
    y_c = np.cumsum(yt * ~tt)
    # one point per distinct score (ties are one block, as in sklearn's ROC curve)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(n_c[last] > 0, y_t[last] - y_c[last] * n_t[last] / n_c[last], y_t[last])
    n = np.r_[0, last + 1]
    q = np.r_[0.0, q]
    share = n / len(s)
    return pd.DataFrame({"share": share, "n": n, "qini": q, "random": share * q[-1]})


def _area_above_random(curve: pd.DataFrame) -> float:
    gap = (curve["qini"] - curve["random"]).to_numpy()
    return float(np.trapezoid(gap, curve["share"].to_numpy()))


def qini(outcome: Any, treatment: Any, score: Any) -> QiniResult:
    """Qini curve and coefficient (Radcliffe 2007). Rank by `score` (predicted uplift, high =
    contact first); after the top n: Q(n) = Y_t(n) - Y_c(n) N_t(n) / N_c(n), the treated
    responders minus the control responders scaled to the treated count (Y_t(n) when no control
    is in the top yet). The coefficient is the area between Q and the random line share x Q(N)
    over share in [0, 1] (trapezoids; tied scores form one step, so a constant score gives 0).
    The perfect ranking puts treated responders first and control responders last
    (score = y (2t - 1), as in Gutierrez & Gerardy 2016). One randomization only: pooling tests
    with different treatment shares mixes base rates into the N_t/N_c scaling (Simpson)."""
    t = _arms(treatment)
    y = np.asarray(outcome, dtype=float)
    s = np.asarray(score, dtype=float)
    if not len(y) == len(t) == len(s):
        raise ValueError("outcome, treatment and score must have the same length")
    curve = _qini_curve(y, t, s)
    perfect = _qini_curve(y, t, y * np.where(t, 1.0, -1.0))
    return QiniResult(curve, _area_above_random(curve), _area_above_random(perfect))


def two_model_uplift(
    X: Any,
    y: Any,
    treatment: Any,
    X_new: Any | None = None,
    estimator: Any = None,
    return_arms: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-model ('T-learner') uplift: fit one model on the treated and one on the holdout,
    predicted uplift tau(x) = mu_1(x) - mu_0(x) (probabilities for a classifier, predictions for a
    regressor). Default estimator: a scaled logistic regression. Predicts on X_new (default X);
    with `return_arms`, returns (tau, mu_1, mu_0): mu_0 is the outcome without contact, whose
    complement is the usual 'churn score'."""
    from sklearn.base import clone, is_classifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    t = _arms(treatment)
    Xa = np.asarray(X, dtype=float)
    ya = np.asarray(y)
    est = estimator if estimator is not None else make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=1000)
    )  # fmt: skip
    m1 = clone(est).fit(Xa[t], ya[t])
    m0 = clone(est).fit(Xa[~t], ya[~t])
    Xn = Xa if X_new is None else np.asarray(X_new, dtype=float)
    if is_classifier(est):
        mu1, mu0 = m1.predict_proba(Xn)[:, 1], m0.predict_proba(Xn)[:, 1]
    else:
        mu1, mu0 = m1.predict(Xn), m0.predict(Xn)
    return (mu1 - mu0, mu1, mu0) if return_arms else mu1 - mu0


def cross_fitted_uplift(
    X: Any,
    y: Any,
    treatment: Any,
    groups: Any,
    folds: int = 2,
    seed: int = 0,
    estimator: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-fold two-model predictions (tau, mu_1, mu_0) for every row: the `groups` (customer
    ids) are dealt at random into `folds` folds, and each fold is predicted by models fitted on
    the others, so every unit is scored by a model that never saw it (cross-fitting, as in
    Chernozhukov et al. 2018) and the Qini curve can use the whole test."""
    if folds < 2:
        raise ValueError("folds must be at least 2")
    g = np.asarray(groups)
    uniq = np.unique(g)
    fold_of = np.random.default_rng(seed).permutation(len(uniq)) % folds
    fold = fold_of[np.searchsorted(uniq, g)]
    Xa = np.asarray(X, dtype=float)
    ya, ta = np.asarray(y), np.asarray(treatment)
    out = np.empty((3, len(ya)))
    for k in range(folds):
        test = fold == k
        out[:, test] = two_model_uplift(
            Xa[~test], ya[~test], ta[~test], Xa[test], estimator, return_arms=True
        )
    return out[0], out[1], out[2]


def transformed_outcome(y: Any, treatment: Any, propensity: float | Any) -> np.ndarray:
    """Z = Y (T / e - (1 - T) / (1 - e)), with e = P(T = 1): under randomization E[Z | x] is the
    individual uplift tau(x), so any regressor of Z on x estimates uplift (Athey & Imbens 2015)."""
    t = _arms(treatment).astype(float)
    e = np.asarray(propensity, dtype=float)
    if np.any((e <= 0) | (e >= 1)):
        raise ValueError("propensity must be in (0, 1)")
    return np.asarray(y, dtype=float) * (t / e - (1 - t) / (1 - e))


def targeting_value(
    value: Any,
    treatment: Any,
    score: Any,
    shares: Sequence[float] | np.ndarray,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Incremental value of contacting the top `share` of customers by `score`, estimated on a
    randomized test: for the top group, (mean value treated - mean value holdout) x group size,
    as a total and per customer of the whole base (the uplift curve of Rzepakowski & Jaroszewicz
    2012). `value` is per customer net of everything the contact costs (margin after coupon
    minus the send cost for the treated), so the difference is the profit of contacting.

    Interval of ``per_customer`` (columns ``se``, ``ci_low``, ``ci_high``): the top group's
    difference in means has Welch's standard error sqrt(s_t^2/n_t + s_c^2/n_c) over its n units;
    per customer of the base it is scaled by n/N, with normal quantiles (the units are taken as
    independent; for a cluster bootstrap by customer use :func:`policy_difference`)."""
    t = _arms(treatment)
    v = np.asarray(value, dtype=float)
    s = np.asarray(score, dtype=float)
    order = np.argsort(-s, kind="stable")
    vt, tt = v[order], t[order]
    cnt_t, cnt_c = np.cumsum(tt), np.cumsum(~tt)
    sum_t, sum_c = np.cumsum(vt * tt), np.cumsum(vt * ~tt)
    sq_t, sq_c = np.cumsum(vt**2 * tt), np.cumsum(vt**2 * ~tt)
    rows = []
    for share in shares:
        n = int(round(share * len(v)))
        if n == 0:
            rows.append((share, 0, np.nan, 0.0, 0.0))
            continue
        i = n - 1
        if cnt_t[i] < 2 or cnt_c[i] < 2:
            rows.append((share, n, np.nan, np.nan, np.nan))
            continue
        m_t, m_c = sum_t[i] / cnt_t[i], sum_c[i] / cnt_c[i]
        var_t = (sq_t[i] - cnt_t[i] * m_t**2) / (cnt_t[i] - 1)
        var_c = (sq_c[i] - cnt_c[i] * m_c**2) / (cnt_c[i] - 1)
        se = np.sqrt(max(var_t, 0.0) / cnt_t[i] + max(var_c, 0.0) / cnt_c[i])
        rows.append((share, n, m_t - m_c, (m_t - m_c) * n, se * n / len(v)))
    out = pd.DataFrame(rows, columns=["share", "n_targeted", "uplift_per_targeted", "total", "se"])
    out["per_customer"] = out["total"] / len(v)
    z = stats.norm.isf(alpha / 2)
    out["ci_low"] = out["per_customer"] - z * out["se"]
    out["ci_high"] = out["per_customer"] + z * out["se"]
    return out[["share", "n_targeted", "uplift_per_targeted", "total", "per_customer", "se",
                "ci_low", "ci_high"]]  # fmt: skip


def _top_value(sums: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-customer value of contacting a top group under bootstrap weights `w` (resamples x
    groups), from the groups' sums `sums` (groups x 6: value treated, treated, value holdout,
    holdout in the top group; units in the top group; all units): (weighted mean treated -
    weighted mean holdout) on the top group times the weighted share of the base in it."""
    s = w @ sums
    return (s[:, 0] / s[:, 1] - s[:, 2] / s[:, 3]) * s[:, 4] / s[:, 5]


def policy_difference(
    value: Any,
    treatment: Any,
    score_a: Any,
    score_b: Any,
    share: float,
    alpha: float = 0.05,
    groups: Any = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Difference in incremental value per customer of the base between contacting the top
    `share` by `score_a` and by `score_b` (each as in :func:`targeting_value`), with a percentile
    bootstrap interval. The two top groups overlap, so the two values are correlated: both are
    computed on the same resamples. With `groups` (e.g. customer ids of repeated sends) whole
    groups are resampled (the cluster bootstrap, Davison & Hinkley 1997, 3.8): a resample weighs
    each group by how often it is drawn, applied to the groups' sums. Also returns each policy's value and percentile interval
    (``a``, ``a_low``, ``a_high``, ``b``, ...)."""
    t = _arms(treatment)
    v = np.asarray(value, dtype=float)
    n = len(v)
    k = int(round(share * n))
    tops = []
    for score in (score_a, score_b):
        order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
        top = np.zeros(n, dtype=bool)
        top[order[:k]] = True
        tops.append(top)
    codes = np.arange(n) if groups is None else pd.factorize(np.asarray(groups))[0]
    n_groups = int(codes.max()) + 1

    def group_sums(top: np.ndarray) -> np.ndarray:
        cols = [v * (top & t), top & t, v * (top & ~t), top & ~t, top, np.ones(n)]
        return np.column_stack(
            [np.bincount(codes, weights=np.asarray(c, float), minlength=n_groups) for c in cols]
        )

    sums = [group_sums(top) for top in tops]
    a, b = (_top_value(sm, np.ones((1, n_groups)))[0] for sm in sums)
    rng = np.random.default_rng(seed)
    # each resample draws n_groups groups with replacement: weights = how often each is drawn
    draws = rng.integers(0, n_groups, size=(n_resamples, n_groups))
    offset = (np.arange(n_resamples)[:, None] * n_groups + draws).ravel()
    w = np.bincount(offset, minlength=n_resamples * n_groups).reshape(n_resamples, n_groups)
    boot_a, boot_b = (_top_value(sm, w.astype(float)) for sm in sums)
    q = [alpha / 2, 1 - alpha / 2]
    d = boot_a - boot_b
    ok = np.isfinite(d)
    lo, hi = np.quantile(d[ok], q)
    (a_lo, a_hi), (b_lo, b_hi) = np.quantile(boot_a[ok], q), np.quantile(boot_b[ok], q)
    return {
        "estimate": float(a - b), "ci_low": float(lo), "ci_high": float(hi),
        "se": float(d[ok].std(ddof=1)), "a": float(a), "a_low": float(a_lo),
        "a_high": float(a_hi), "b": float(b), "b_low": float(b_lo), "b_high": float(b_hi),
    }  # fmt: skip


def mde_from_se(se: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable effect of a test whose estimate has standard error `se`:
    MDE = (z_{1-a/2} + z_power) se (two-sided normal test, the far tail left out; Bloom 1995,
    "Minimum detectable effects", *Evaluation Review* 19(5)). 2.80 se at 5 % and 80 % power."""
    return float((stats.norm.isf(alpha / 2) + stats.norm.ppf(power)) * se)


def sample_size_mean_difference(
    delta: float, sd: float, power: float = 0.8, alpha: float = 0.05, ratio: float = 1.0
) -> float:
    """Holdout size n_control (treated arm ratio x n_control) giving `power` to detect a
    difference in means `delta` of an outcome with standard deviation `sd`:
    n_c = (z_{1-a/2} + z_power)^2 (1 + 1/ratio) sd^2 / delta^2 (normal approximation; statsmodels
    ``NormalIndPower.solve_power`` on the standardized effect delta / sd)."""
    from statsmodels.stats.power import NormalIndPower

    return float(
        NormalIndPower().solve_power(
            abs(delta) / sd, nobs1=None, alpha=alpha, power=power, ratio=ratio
        )
    )


# --- the checks every experiment platform runs, robust money, decisions on intervals ------------


def sample_ratio_mismatch(
    counts: Sequence[float], planned: Sequence[float], alpha: float = 0.0005
) -> dict[str, float | bool]:
    """Sample-ratio-mismatch (SRM) check of a randomized split, as notebook 07 reads it: the one
    implementation is :func:`helpers.stats.srm_check` (Pearson's chi-square goodness of fit of
    the units per arm against the designed split; platforms alert at p < 0.0005, Fabijan et al.
    2019). Returns ``n``, ``chi2``, ``df``, ``p_value`` and ``srm`` (p < `alpha`). Known answer:
    821 vs 1,000 planned 50/50 -> chi2 = 17.595, p = 2.7e-5."""
    r = srm_check(counts, planned, alpha)
    return {"n": float(r["n"]), "chi2": float(r["chi2"]), "df": float(r["df"]),
            "p_value": float(r["p_value"]), "srm": bool(r["mismatch"])}  # fmt: skip


def capped_diff(
    y: Any, treatment: Any, quantile: float = 0.995, alpha: float = 0.05, offset: Any = 0.0
) -> dict[str, float]:
    """A robust money metric: each value capped (winsorized above) at the `quantile` of the
    values pooled over both arms, c = Q_q(y), then the difference in means of min(y, c) - offset
    with Welch's interval (:func:`diff_means`). The quantile is declared before the results are
    seen (a pre-registered metric, R. Kohavi, D. Tang & Y. Xu 2020, *Trustworthy online
    controlled experiments*, ch. 22): one heavy buyer then moves the estimate by at most c / n.
    `offset` (e.g. the send cost) is subtracted after capping. Adds ``cap`` and ``n_capped``."""
    t = _arms(treatment)
    v = np.asarray(y, dtype=float)
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    cap = float(np.quantile(v, quantile))
    out = diff_means(np.minimum(v, cap) - np.asarray(offset, dtype=float), t, alpha)
    return out | {"cap": cap, "n_capped": float((v > cap).sum())}


def largest_influence(y: Any, treatment: Any, k: int = 5, alpha: float = 0.05) -> pd.DataFrame:
    """The influence of the `k` largest observations on a difference in means: for each (largest
    first), its arm, its value and the Welch estimate and interval without it, and without it
    and all larger ones (``estimate_without_top``). Shows whether one unit decides a verdict."""
    t = _arms(treatment)
    v = np.asarray(y, dtype=float)
    top = np.argsort(-v, kind="stable")[:k]
    rows = []
    for j, i in enumerate(top):
        keep = np.ones(v.size, bool)
        keep[i] = False
        one = diff_means(v[keep], t[keep], alpha)
        keep[top[: j + 1]] = False
        cum = diff_means(v[keep], t[keep], alpha)
        rows.append({
            "rank": j + 1, "arm": "treatment" if t[i] else "control", "value": float(v[i]),
            "estimate_without": one["estimate"], "ci_low_without": one["ci_low"],
            "ci_high_without": one["ci_high"], "estimate_without_top": cum["estimate"],
        })  # fmt: skip
    return pd.DataFrame(rows).set_index("rank")


def dunnett_intervals(
    arms: dict[Any, Any], control: Any, alpha: float = 0.05, seed: int = 0
) -> pd.DataFrame:
    """Many-to-one comparisons: each arm's mean minus the control's with simultaneous intervals
    and adjusted p-values (C. W. Dunnett 1955, *JASA* 50(272), 1096-1121; ``scipy.stats.dunnett``,
    pooled variance, the multivariate t computed by randomized quasi-Monte Carlo, seeded). All
    the intervals cover their true differences together with probability 1 - `alpha`, so the
    family can be read at once (which arm beats control); each is wider than the arm's own
    interval. Columns: estimate, ci_low, ci_high, p_value, and the unadjusted Welch interval."""
    c = np.asarray(control, dtype=float)
    samples = [np.asarray(a, dtype=float) for a in arms.values()]
    res = stats.dunnett(*samples, control=c, rng=np.random.default_rng(seed))
    ci = res.confidence_interval(1 - alpha)
    rows = {}
    for i, (name, s) in enumerate(zip(arms, samples, strict=True)):
        t = np.r_[np.ones(s.size, bool), np.zeros(c.size, bool)]
        own = diff_means(np.r_[s, c], t, alpha)
        rows[name] = {
            "estimate": float(s.mean() - c.mean()), "ci_low": float(ci.low[i]),
            "ci_high": float(ci.high[i]), "p_value": float(res.pvalue[i]),
            "welch_low": own["ci_low"], "welch_high": own["ci_high"],
        }  # fmt: skip
    return pd.DataFrame.from_dict(rows, orient="index")


def uplift_by_segment(
    frame: pd.DataFrame,
    segment: str,
    outcome: str = "converted",
    treatment: str = "treatment",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Conversion uplift per level of `segment` (Wald: p_t - p_c, se = sqrt(p_t q_t / n_t +
    p_c q_c / n_c)): columns n, uplift, se, ci_low, ci_high."""
    z = stats.norm.isf(alpha / 2)
    g = frame.groupby([segment, treatment], observed=True)[outcome].agg(["mean", "size"])
    g = g.unstack(treatment)
    p_t, p_c = g[("mean", True)], g[("mean", False)]
    n_t, n_c = g[("size", True)], g[("size", False)]
    se = np.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    up = p_t - p_c
    return pd.DataFrame(
        {"n": n_t + n_c, "uplift": up, "se": se, "ci_low": up - z * se, "ci_high": up + z * se}
    )


def interaction_test(
    uplift_a: float, se_a: float, uplift_b: float, se_b: float, alpha: float = 0.05
) -> dict[str, float]:
    """Does the effect differ between two disjoint segments? The difference of their uplifts
    d = u_a - u_b with se = sqrt(se_a^2 + se_b^2) (independent segments), z = d / se and the
    two-sided normal p-value (the treatment x segment interaction; D. G. Altman & J. M. Bland
    2003, "Interaction revisited: the difference between two estimates", *BMJ* 326, 219).
    A segment whose own interval excludes 0 while the other's does not is no evidence of a
    difference: this is the test."""
    d = uplift_a - uplift_b
    se = float(np.hypot(se_a, se_b))
    zc = stats.norm.isf(alpha / 2)
    z = d / se
    return {
        "difference": float(d), "se": se, "z": float(z),
        "p_value": float(2 * stats.norm.sf(abs(z))),
        "ci_low": float(d - zc * se), "ci_high": float(d + zc * se),
    }  # fmt: skip


def adjust_pvalues(p_values: Any, method: str = "holm") -> np.ndarray:
    """p-values adjusted for the number of comparisons looked at: ``"holm"`` (S. Holm 1979,
    *Scand. J. Statistics* 6(2), 65-70: family-wise error) or ``"fdr_bh"`` (Y. Benjamini &
    Y. Hochberg 1995, *JRSS B* 57(1): false discovery rate), via
    ``statsmodels.stats.multitest.multipletests``."""
    from statsmodels.stats.multitest import multipletests

    return np.asarray(multipletests(np.asarray(p_values, dtype=float), method=method)[1])


def ratio_of_sums(
    numerator: Any, denominator: Any, treatment: Any, alpha: float = 0.05
) -> dict[str, float]:
    """A ratio-of-sums metric R = sum(num) / sum(den) per arm (e.g. margin per order when the
    unit randomized is the send) and the difference R_t - R_c with the delta-method standard
    error (A. Deng, U. Knoblich & J. Lu 2018, "Applying the delta method in metric analytics",
    KDD): with means mu_n, mu_d over the n units of an arm,
    Var(R) ~ [Var(num) - 2 R Cov(num, den) + R^2 Var(den)] / (n mu_d^2). The units (not the
    orders) are independent, so this is the right variance; treating orders as independent
    understates it when a unit has several."""
    t = _arms(treatment)
    num, den = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    out: dict[str, float] = {}
    var = {}
    for arm, m in (("treatment", t), ("control", ~t)):
        a, b = num[m], den[m]
        r = a.sum() / b.sum()
        c = np.cov(a, b, ddof=1)
        var[arm] = (c[0, 0] - 2 * r * c[0, 1] + r**2 * c[1, 1]) / (m.sum() * b.mean() ** 2)
        out[f"ratio_{arm}"] = float(r)
        out[f"se_{arm}"] = float(np.sqrt(var[arm]))
    d = out["ratio_treatment"] - out["ratio_control"]
    se = float(np.sqrt(var["treatment"] + var["control"]))
    z = stats.norm.isf(alpha / 2)
    return out | {"estimate": d, "se": se, "ci_low": d - z * se, "ci_high": d + z * se}


def ratio_estimate(
    a: float, se_a: float, b: float, se_b: float, alpha: float = 0.05
) -> dict[str, float]:
    """The ratio a / b of two independent positive estimates (e.g. a segment's uplift over
    another's) with a delta-method interval on the log scale: se(log a/b) = sqrt((se_a/a)^2 +
    (se_b/b)^2), interval exp(log(a/b) +- z se). NaN bounds when a or b is not positive (the
    ratio is then not identified by this test)."""
    if a <= 0 or b <= 0:
        return {"estimate": float(a / b) if b else np.nan, "ci_low": np.nan, "ci_high": np.nan}
    se = float(np.hypot(se_a / a, se_b / b))
    z = stats.norm.isf(alpha / 2)
    r = a / b
    return {
        "estimate": r,
        "ci_low": float(r * np.exp(-z * se)),
        "ci_high": float(r * np.exp(z * se)),
    }


def decide_on_interval(ci_low: float, ci_high: float, break_even: float = 0.0) -> str:
    """The decision a pre-declared primary metric supports: 'keep' when its whole interval is
    above the break-even, 'stop' when it is wholly below, 'inconclusive' otherwise (the test
    cannot tell; report the loss at risk and the size that would settle it). Never 'stop' on a
    point estimate."""
    if ci_low > break_even:
        return "keep"
    if ci_high < break_even:
        return "stop"
    return "inconclusive"


def units_to_settle(
    estimate: float,
    se: float,
    n: float,
    break_even: float = 0.0,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """Units a test of the same design needs to tell `estimate` from `break_even` with `power`:
    the standard error shrinks as 1 / sqrt(n), so n' = n ((z_{1-a/2} + z_power) se / |estimate -
    break_even|)^2. It assumes the point estimate is the truth, which it rarely is when the
    test was small (see :func:`retrodesign`): take it as a lower bound."""
    gap = abs(estimate - break_even)
    if gap == 0:
        return float("inf")
    k = stats.norm.isf(alpha / 2) + stats.norm.ppf(power)
    return float(n * (k * se / gap) ** 2)


def retrodesign(true_effect: float, se: float, alpha: float = 0.05) -> dict[str, float]:
    """Power, type S and type M errors of a test with standard error `se` if the true effect is
    `true_effect` (A. Gelman & J. Carlin 2014, "Beyond power calculations", *Perspectives on
    Psychological Science* 9(6), 641-651). With lambda = D / se and c = z_{1-a/2}:
    power = Phi(lambda - c) + Phi(-lambda - c); type S = Phi(-lambda - c) / power (a significant
    estimate with the wrong sign); exaggeration ratio (type M) = E[|estimate| | significant] / D,
    computed in closed form from the truncated normal:
    E[|Z|; |Z| > c] = lambda (Phi(lambda - c) - Phi(-lambda - c)) + phi(c - lambda) + phi(c + lambda).
    Their example (D = 2, se = 8.1): power 0.06, type S 0.24, exaggeration 9.7 (by simulation;
    the closed form gives 9.54)."""
    lam = abs(true_effect) / se
    c = stats.norm.isf(alpha / 2)
    up, down = stats.norm.cdf(lam - c), stats.norm.cdf(-lam - c)
    power = up + down
    e_abs = lam * (up - down) + stats.norm.pdf(c - lam) + stats.norm.pdf(c + lam)
    return {
        "power": float(power), "type_s": float(down / power),
        "exaggeration": float(e_abs / power / lam) if lam > 0 else float("inf"),
    }  # fmt: skip


def hazard_by_dose(
    events: Any, exposure: Any, dose: Any, alpha: float = 0.05
) -> tuple[pd.DataFrame, dict[str, float]]:
    """A constant monthly hazard that rises linearly with a randomized dose (e.g. newsletters a
    month): P(event in a month) = 1 - exp(-(a + b dose)). Per dose level, the discrete rate
    p = events / exposure months and the hazard h = -log(1 - p) with its delta-method variance
    p / (n (1 - p)); then b (the hazard per unit of dose) by weighted least squares of h on dose,
    weights 1 / Var(h), the standard error from the known variances (``statsmodels`` WLS,
    ``cov_type="fixed scale"``). Returns the per-dose table and ``{"estimate", "ci_low",
    "ci_high", "intercept"}`` for b."""
    import statsmodels.api as sm

    df = pd.DataFrame(
        {
            "events": np.asarray(events, float),
            "n": np.asarray(exposure, float),
            "dose": np.asarray(dose),
        }
    )
    g = df.groupby("dose").sum()
    p = g["events"] / g["n"]
    g["rate"] = p
    g["hazard"] = -np.log1p(-p)
    g["se"] = np.sqrt(p / (g["n"] * (1 - p)))
    fit = sm.WLS(
        g["hazard"].to_numpy(), sm.add_constant(g.index.to_numpy(float)), weights=1 / g["se"] ** 2
    ).fit(cov_type="fixed scale")
    lo, hi = fit.conf_int(alpha)[1]
    b = float(fit.params[1])
    return g, {
        "estimate": b,
        "ci_low": float(lo),
        "ci_high": float(hi),
        "intercept": float(fit.params[0]),
    }
