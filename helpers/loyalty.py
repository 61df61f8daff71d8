"""Loyalty programme economics: is the club incremental, what do the points cost, which tiers pay.

Five small families of functions, each a formula with its source:

* **Revenue recognition of points (IFRS 15, B39-B47; KPMG, Revenue - IFRS 15 handbook, Example
  10A)**: :func:`ifrs15_allocation` splits a sale between the goods and the points by relative
  stand-alone selling price; :func:`ifrs15_revenue` recognises the points' share in proportion to
  the points redeemed out of those expected to be redeemed (breakage recognised with redemptions).
* **Difference-in-differences** (Card & Krueger 1994; the log-linear form of Wooldridge 2023,
  "Simple approaches to nonlinear difference-in-differences with panel data", *Econometrics
  Journal* 26(3)): :func:`did_2x2` by hand, :func:`customer_month_panel`, :func:`poisson_did`,
  :func:`event_study` and the permutation check :func:`permutation_did` (few clusters: Cameron,
  Gelbach & Miller 2008, *REStat* 90(3)).
* **Selection on observables**: :func:`decision_sample` and :func:`ipw_att` (inverse-probability
  weighting for the effect on the treated: Hirano, Imbens & Ridder 2003, *Econometrica* 71(4)).
  **Selection by design**: :func:`later_joiner_controls` (the later launch's joiners as controls
  for the pilot's joiners: both groups chose to join).
* **Rate multipliers inside BG/NBD** (Fader, Hardie & Lee 2005): :func:`order_states` and
  :func:`fit_rate_multipliers` estimate the club's multiplier on the purchase rate, the tier lifts
  and the goal gradient (Kivetz, Urminsky & Zheng 2006) with each member's earlier orders as their
  own control.
* **Points**: :func:`points_ledger`, :func:`point_fates` (FIFO: which points were redeemed, which
  expired, which are still open) and :func:`breakage_curve` (cumulative incidence of expiry with
  redemption as a competing event, Aalen & Johansen 1978), :func:`ultimate_breakage` (its
  member-bootstrap interval and bounds) and :func:`breakage_by_vintage`.
* **P&L and alternatives**: :func:`programme_pnl` (incremental margin - rewards - benefits - running
  cost, ROI and the break-even ratio) and :func:`coupon_arm_effects` (a randomized next-purchase
  coupon, arm by arm, with the discount given on orders that would have come anyway).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from math import comb

import numpy as np
import pandas as pd
from scipy import optimize, stats
from statsmodels.discrete.discrete_model import Logit
from statsmodels.genmod import families
from statsmodels.genmod.generalized_linear_model import GLM
from statsmodels.tools.numdiff import approx_hess3
from statsmodels.tools.tools import add_constant

from helpers import clv, periods
from helpers.stats import orders_after, proportion_difference

__all__ = [
    "ifrs15_allocation",
    "ifrs15_revenue",
    "did_2x2",
    "customer_month_panel",
    "poisson_did",
    "event_study",
    "pretrend_wald",
    "placebo_in_time",
    "permutation_did",
    "permutation_min_p",
    "decision_sample",
    "later_joiner_controls",
    "ipw_att",
    "weight_diagnostics",
    "overlap_table",
    "e_value",
    "order_states",
    "gap_by_distance",
    "RateFit",
    "fit_rate_multipliers",
    "members_at_join",
    "incremental_orders",
    "points_ledger",
    "point_fates",
    "breakage_curve",
    "ultimate_breakage",
    "breakage_by_vintage",
    "first_eligible_redemption",
    "programme_pnl",
    "coupon_arm_effects",
]

WEEK = pd.Timedelta(weeks=1)
MONTH_DAYS = 30.4375
Z95 = float(stats.norm.ppf(0.975))


# --------------------------------------------------------------------------------- IFRS 15


def ifrs15_allocation(
    sales: float,
    expected_redeemed_points: float,
    value_per_point: float = 1.0,
    ratio_decimals: int | None = None,
) -> dict[str, float]:
    """Split a sale between the goods and the loyalty points (IFRS 15.73-80 and B40).

    The points' stand-alone selling price is SSP_points = expected redeemed points x value per
    point (breakage taken into account); the goods' is the sale itself. The transaction price is
    allocated by relative SSP: points = sales x SSP_points / (sales + SSP_points), goods = the
    rest. ``ratio_decimals`` rounds the share first, as KPMG's Example 10A does (91 % / 9 %):
    sales 100,000, 9,700 points expected to be redeemed at 1 each -> 91,000 goods, 9,000 points.
    """
    if sales <= 0 or expected_redeemed_points < 0 or value_per_point < 0:
        raise ValueError("sales must be positive, points and value not negative")
    ssp_points = expected_redeemed_points * value_per_point
    share = ssp_points / (sales + ssp_points)
    if ratio_decimals is not None:
        share = round(share, ratio_decimals)
    points = sales * share
    return {
        "ssp_points": ssp_points,
        "share_points": share,
        "goods": sales - points,
        "points": points,
    }


def ifrs15_revenue(
    allocated: float,
    cumulative_redeemed: Sequence[float] | np.ndarray,
    expected_redeemed: Sequence[float] | np.ndarray | float,
) -> pd.DataFrame:
    """Revenue from points per period (IFRS 15.B46; KPMG Example 10A).

    Cumulative revenue at the end of period k = allocated x min(1, R_k / E_k), with R_k the points
    redeemed so far and E_k the points expected to be redeemed in total as estimated at k (a
    revised estimate changes the cumulative figure: a catch-up, IFRS 15.87-90); revenue of period
    k = cumulative_k - cumulative_{k-1}; the contract liability = allocated - cumulative.
    Breakage is thus recognised in proportion to redemptions. Example 10A: 9,000 allocated, 4,500
    of 9,700 redeemed -> 4,175; then 8,500 of 9,900 -> cumulative 7,727, so 3,552 in year 3.
    """
    red = np.asarray(cumulative_redeemed, dtype=float)
    exp_ = np.broadcast_to(np.asarray(expected_redeemed, dtype=float), red.shape)
    if (exp_ <= 0).any() or (np.diff(red) < 0).any():
        raise ValueError("expected redemptions must be positive and redemptions cumulative")
    cum = allocated * np.minimum(1.0, red / exp_)
    return pd.DataFrame(
        {
            "cumulative_redeemed": red,
            "expected_redeemed": exp_,
            "cumulative_revenue": cum,
            "revenue": np.diff(cum, prepend=0.0),
            "contract_liability": allocated - cum,
        },
        index=pd.RangeIndex(1, len(red) + 1, name="period"),
    )


# -------------------------------------------------------------------- difference-in-differences


def did_2x2(
    treated_pre: float, treated_post: float, control_pre: float, control_post: float
) -> dict[str, float]:
    """The 2x2 difference-in-differences of group means (Card & Krueger 1994).

    difference = (treated_post - treated_pre) - (control_post - control_pre) (additive parallel
    trends); ratio = (treated_post / treated_pre) / (control_post / control_pre) (parallel trends
    in logs: what a Poisson regression with group and period effects estimates, exp of the
    interaction coefficient)."""
    return {
        "difference": (treated_post - treated_pre) - (control_post - control_pre),
        "ratio": (treated_post / treated_pre) / (control_post / control_pre),
    }


def customer_month_panel(
    orders: pd.DataFrame,
    customers: pd.DataFrame,
    launches: pd.DataFrame,
    as_of: str | pd.Timestamp,
    include_signup_order: bool = True,
) -> pd.DataFrame:
    """One row per customer and calendar month from the sign-up month to the last complete month.

    Columns: ``customer_id``, ``month`` (pandas Period ordinal, :func:`helpers.periods.period_codes`),
    ``y`` (orders in the month; with `include_signup_order` False the sign-up order, the entry into
    the panel, is not counted), ``country``, ``pilot``, ``launch_month``, ``event_time`` (= month - launch_month) and
    ``post`` (1 from the launch month on). Months after the as-of day's last complete month are
    dropped (:func:`helpers.periods.last_complete_period`)."""
    c = customers[["customer_id", "signup_date", "country"]].merge(
        launches[["country", "launch_date", "pilot"]], on="country", how="left"
    )
    first = periods.period_codes(c["signup_date"], "M")
    last = periods.last_complete_period(as_of, "M")
    n = np.maximum(last - first + 1, 0)
    row = np.repeat(np.arange(len(c)), n)
    month = first[row] + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))
    panel = pd.DataFrame({"customer_id": c["customer_id"].to_numpy()[row], "month": month})
    o = periods.up_to(orders, as_of, "order_date")
    if not include_signup_order:
        o = o[o["order_date"] > o.groupby("customer_id")["order_date"].transform("min")]
    counts = (
        pd.DataFrame(
            {"customer_id": o["customer_id"], "month": periods.period_codes(o["order_date"], "M")}
        )
        .value_counts()
        .rename("y")
    )
    panel = panel.join(counts, on=["customer_id", "month"])
    panel["y"] = panel["y"].fillna(0).astype(int)
    panel["country"] = c["country"].to_numpy()[row]
    panel["pilot"] = c["pilot"].fillna(False).to_numpy(bool)[row]
    panel["launch_month"] = periods.period_codes(c["launch_date"], "M")[row]
    panel["event_time"] = panel["month"] - panel["launch_month"]
    panel["post"] = (panel["event_time"] >= 0).astype(int)
    return panel


def _fe_design(panel: pd.DataFrame, fe: Sequence[str]) -> pd.DataFrame:
    parts = [
        pd.get_dummies(panel[f].astype(str), prefix=f, drop_first=True, dtype=float) for f in fe
    ]
    return add_constant(pd.concat(parts, axis=1))


def poisson_did(
    panel: pd.DataFrame,
    treat: str = "treat",
    fe: Sequence[str] = ("country", "month"),
    cluster: str = "customer_id",
) -> dict[str, float]:
    """Log-linear (Poisson) difference-in-differences: E[y] = exp(a_group + b_month + beta D).

    exp(beta) is the ratio of treated orders to what they would have been (parallel trends in
    logs; Wooldridge 2023). Standard errors are cluster-robust by `cluster` (customer: six
    countries are too few clusters for cluster-robust errors by country, Cameron, Gelbach &
    Miller 2008). Returns ``ratio``, ``ci_low``, ``ci_high`` (95 %), ``beta``, ``se``."""
    X = _fe_design(panel, fe)
    X[treat] = panel[treat].astype(float).to_numpy()
    res = GLM(panel["y"].to_numpy(float), X, family=families.Poisson()).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(panel[cluster])[0]}
    )
    b, se = float(res.params[treat]), float(res.bse[treat])
    return {
        "ratio": float(np.exp(b)),
        "ci_low": float(np.exp(b - Z95 * se)),
        "ci_high": float(np.exp(b + Z95 * se)),
        "beta": b,
        "se": se,
    }


def _event_fit(
    panel: pd.DataFrame,
    treated: str,
    window: tuple[int, int],
    reference: int,
    fe: Sequence[str],
    cluster: str,
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The dynamic Poisson DiD's event times (all but `reference`), coefficients and their
    cluster-robust covariance."""
    X = _fe_design(panel, fe)
    k = panel["event_time"].clip(*window).to_numpy()
    tr = panel[treated].to_numpy(bool)
    names = [e for e in range(window[0], window[1] + 1) if e != reference]
    for e in names:
        X[f"e{e}"] = (tr & (k == e)).astype(float)
    res = GLM(panel["y"].to_numpy(float), X, family=families.Poisson()).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(panel[cluster])[0]}
    )
    cols = [f"e{e}" for e in names]
    b = res.params[cols].to_numpy(float)
    V = res.cov_params().loc[cols, cols].to_numpy(float)
    return names, b, V


def event_study(
    panel: pd.DataFrame,
    treated: str = "pilot",
    window: tuple[int, int] = (-12, 11),
    reference: int = -1,
    fe: Sequence[str] = ("country", "month"),
    cluster: str = "customer_id",
    baseline: str = "month",
) -> pd.DataFrame:
    """Dynamic Poisson DiD: one coefficient per month relative to the launch for the treated group,
    exp(beta_k) = treated / counterfactual orders k months after the launch.

    `baseline` "month": relative to the month `reference` (1 by construction there); "pre_mean":
    relative to the average pre-launch month, beta_k - mean_{j<0} beta_j (the reference month's
    beta is 0), a linear contrast whose covariance is A V A' (one noisy month is no longer the
    yardstick of every other). Pre-launch ratios near 1 support parallel trends
    (:func:`pretrend_wald` tests them jointly). Returns ``event_time``, ``ratio``, ``ci_low``,
    ``ci_high`` (95 %)."""
    names, b, V = _event_fit(panel, treated, window, reference, fe, cluster)
    times = np.array(sorted([*names, reference]))
    pos = {e: i for i, e in enumerate(names)}
    A = np.zeros((len(times), len(names)))
    for i, e in enumerate(times):
        if e != reference:
            A[i, pos[e]] = 1.0
    if baseline == "pre_mean":
        A = A - A[times < 0].mean(axis=0)
    elif baseline != "month":
        raise ValueError(f"baseline must be 'month' or 'pre_mean', got {baseline!r}")
    c = A @ b
    se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", A, V, A), 0, None))
    return pd.DataFrame(
        {
            "event_time": times,
            "ratio": np.exp(c),
            "ci_low": np.exp(c - Z95 * se),
            "ci_high": np.exp(c + Z95 * se),
        }
    )


def pretrend_wald(
    panel: pd.DataFrame,
    treated: str = "pilot",
    window: tuple[int, int] = (-12, 11),
    reference: int = -1,
    fe: Sequence[str] = ("country", "month"),
    cluster: str = "customer_id",
) -> dict[str, float]:
    """Joint Wald test that every pre-launch coefficient of :func:`event_study` is 0:
    W = b' V^-1 b ~ chi2(K) under H0, b the K pre-launch log ratios (all but `reference`) and V
    their cluster-robust covariance. H0 says all pre-launch months are alike for treated and
    controls, so the test does not depend on which pre-launch month is the reference (Roth 2022,
    "Pretest with caution", *AER: Insights* 4(3), on what passing it does and does not show).
    Returns ``chi2``, ``df``, ``p``."""
    names, b, V = _event_fit(panel, treated, window, reference, fe, cluster)
    pre = np.array(names) < 0
    bp, Vp = b[pre], V[np.ix_(pre, pre)]
    w = float(bp @ np.linalg.solve(Vp, bp))
    return {"chi2": w, "df": int(pre.sum()), "p": float(stats.chi2.sf(w, int(pre.sum())))}


def placebo_in_time(
    panel: pd.DataFrame,
    placebo_month: int,
    treated: str = "pilot",
    before: int | None = None,
    fe: Sequence[str] = ("country", "month"),
    cluster: str = "customer_id",
) -> dict[str, float]:
    """Placebo-in-time test: the Poisson DiD of :func:`poisson_did` on the months before the real
    launch (`before`, a month code; default the treated group's launch month), with a fake launch
    at `placebo_month`. Under parallel trends its ratio is 1; an interval that excludes 1 is a
    trend the real DiD would absorb as an effect. Returns :func:`poisson_did`'s dict plus
    ``months`` (pre-placebo, post-placebo)."""
    if before is None:
        before = int(panel.loc[panel[treated].astype(bool), "launch_month"].min())
    p = panel[panel["month"] < before].copy()
    p["placebo"] = (p[treated].astype(bool) & (p["month"] >= placebo_month)).astype(int)
    out = poisson_did(p, treat="placebo", fe=fe, cluster=cluster)
    out["months"] = (
        int((p["month"].drop_duplicates() < placebo_month).sum()),
        int((p["month"].drop_duplicates() >= placebo_month).sum()),
    )
    return out


def permutation_min_p(n_groups: int, n_treated: int) -> float:
    """The smallest p-value a permutation (randomization) test can reach when `n_treated` of
    `n_groups` groups are treated: 1 / C(n_groups, n_treated), the actual assignment alone at
    the extreme (Fisher 1935). With 6 countries and 2 pilots: 1/15 = 0.067 > 0.05, so the test
    can never reject at 5 %."""
    return 1.0 / comb(n_groups, n_treated)


def permutation_did(
    panel: pd.DataFrame,
    treated_groups: Sequence[str],
    post: str = "post_period",
    group: str = "country",
) -> pd.DataFrame:
    """Randomization check with few clusters: refit the Poisson DiD for every assignment of
    len(`treated_groups`) of the groups as 'treated' (Fisher's exact logic; with 6 countries and
    2 pilots, 15 assignments). Fits on group x month cells with log(customer-months) as offset,
    which gives the same point estimate as the customer-level fit. Returns ``groups``, ``ratio``
    and ``actual`` (the real assignment); the permutation p-value is the share of |log ratio| at
    least the actual one's."""
    cells = panel.groupby([group, "month"], as_index=False).agg(
        y=("y", "sum"), n=("y", "size"), post=(post, "first")
    )
    X0 = _fe_design(cells, (group, "month"))
    rows = []
    for combo in itertools.combinations(sorted(cells[group].unique()), len(treated_groups)):
        X = X0.copy()
        X["treat"] = (cells[group].isin(combo) & (cells["post"] > 0)).astype(float).to_numpy()
        res = GLM(
            cells["y"].to_numpy(float),
            X,
            family=families.Poisson(),
            offset=np.log(cells["n"].to_numpy(float)),
        ).fit()
        rows.append({"groups": "+".join(combo), "ratio": float(np.exp(res.params["treat"])),
                     "actual": set(combo) == set(treated_groups)})  # fmt: skip
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ selection on observables


def decision_sample(
    orders: pd.DataFrame,
    customers: pd.DataFrame,
    launches: pd.DataFrame,
    joins: pd.Series,
    as_of: str | pd.Timestamp,
) -> pd.DataFrame:
    """Customers at the moment they could join: their first order on or after their country's
    launch (members join there; the others declined). One row per such customer with
    ``joined``, pre-decision covariates ``tenure_weeks``, ``pre_orders`` (repeat orders before),
    ``pre_rate`` (pre_orders / max(tenure, 1 week)), ``recency_weeks`` (since the previous order,
    0 if none), ``mean_spend`` (EUR per order up to the decision), ``new_customer`` (the decision
    order is the sign-up), and the outcome ``post_orders`` (orders after it to as-of) over
    ``post_weeks``."""
    end = periods.as_of_end(as_of)
    o = periods.up_to(orders, as_of, "order_date").sort_values(
        ["customer_id", "order_date", "order_id"]
    )
    launch = customers.set_index("customer_id")["country"].map(
        launches.set_index("country")["launch_date"]
    )
    signup = customers.set_index("customer_id")["signup_date"]
    lo = launch.reindex(o["customer_id"]).to_numpy()
    after = o[o["order_date"].to_numpy() >= lo]
    dec = after.groupby("customer_id").agg(decision_at=("order_date", "first"))
    o = o.join(dec, on="customer_id", how="inner")
    before = o["order_date"] < o["decision_at"]
    pre = (
        o[before]
        .groupby("customer_id")
        .agg(
            n_before=("order_id", "size"),
            last_before=("order_date", "max"),
            spend_before=("amount", "sum"),
        )
    )
    post = o[o["order_date"] > o["decision_at"]].groupby("customer_id").size()
    first_amount = o[o["order_date"] == o["decision_at"]].groupby("customer_id")["amount"].first()
    d = dec.join(pre).fillna({"n_before": 0, "spend_before": 0.0})
    s = signup.reindex(d.index)
    d["joined"] = d.index.isin(joins.index)
    d["tenure_weeks"] = (d["decision_at"] - s) / WEEK
    d["pre_orders"] = np.maximum(d["n_before"] - 1, 0)
    d["pre_rate"] = d["pre_orders"] / np.maximum(d["tenure_weeks"], 1.0)
    d["recency_weeks"] = ((d["decision_at"] - d["last_before"]) / WEEK).fillna(0.0)
    d["mean_spend"] = (d["spend_before"] + first_amount.reindex(d.index)) / (d["n_before"] + 1)
    d["new_customer"] = d["n_before"] == 0
    d["post_orders"] = post.reindex(d.index, fill_value=0)
    d["post_weeks"] = (end - d["decision_at"]) / WEEK
    return d.drop(columns=["n_before", "last_before", "spend_before"])


def _rate_ratio_glm(y: np.ndarray, exposure: np.ndarray, treated: np.ndarray) -> dict[str, float]:
    """Poisson GLM y ~ treated with offset log(exposure), one row per customer, robust (HC0)
    errors: exp(beta) is the ratio of the groups' pooled rates (sum y / sum exposure)."""
    keep = exposure > 0
    X = add_constant(treated[keep].astype(float))
    res = GLM(
        y[keep].astype(float), X, family=families.Poisson(), offset=np.log(exposure[keep])
    ).fit(cov_type="HC0")
    b, se = float(res.params[1]), float(res.bse[1])
    return {
        "ratio": float(np.exp(b)),
        "ci_low": float(np.exp(b - Z95 * se)),
        "ci_high": float(np.exp(b + Z95 * se)),
    }


def later_joiner_controls(
    orders: pd.DataFrame,
    customers: pd.DataFrame,
    launches: pd.DataFrame,
    joins: pd.Series,
    pilot_end: str | pd.Timestamp,
) -> dict:
    """The pilot's joiners against the later launch's joiners, in the pilot year.

    Customers choose to join, heavy buyers more often; but customers of the later-launch countries
    who joined after `pilot_end` chose too, so in the pilot year (pilot launch .. `pilot_end`) they
    are untreated customers selected like the pilot's joiners. Both groups are held to the same
    conditions: an order in the pilot year (the *anchor*: the pilot joiners' joining order, the
    controls' first order of the year, when they would have joined) and an order after
    `pilot_end` (the controls' joining order; for the treated a post-treatment condition, which
    the club makes likelier). The outcome is orders after the anchor to `pilot_end` per week:

        R = (sum_T y_i / sum_T e_i) / (sum_C y_i / sum_C e_i),

    the members' realized orders relative to joiners without the club (an ATT ratio), from a
    Poisson GLM y ~ treated with offset log(e) and robust (HC0) errors (one row per customer).
    A balance check: the same ratio over the 52 weeks before the pilot launch, for customers
    signed up by then (repeat orders; should be near 1 if the groups are alike).

    Returns ``ratio``, ``ci_low``, ``ci_high``, ``pre_ratio``, ``pre_ci_low``, ``pre_ci_high``,
    ``n_treated``, ``n_controls`` and ``sample`` (customer_id index: ``treated``, ``anchor``,
    ``y``, ``weeks``, ``pre_y``, ``pre_weeks``)."""
    start = launches.loc[launches["pilot"], "launch_date"].min()
    stop = pd.Timestamp(pilot_end) + pd.Timedelta(days=1)
    pilot_c = set(launches.loc[launches["pilot"], "country"])
    country = customers.set_index("customer_id")["country"]
    signup = customers.set_index("customer_id")["signup_date"]
    o = orders[["customer_id", "order_date"]]
    year = o[(o["order_date"] >= start) & (o["order_date"] < stop)]
    anchor = year.groupby("customer_id")["order_date"].min()
    later = pd.Index(o.loc[o["order_date"] >= stop, "customer_id"].unique())
    in_pilot = country.reindex(joins.index).isin(pilot_c).to_numpy()
    treated = joins.index[in_pilot & (joins < stop).to_numpy()]
    controls = joins.index[~in_pilot & (joins >= stop).to_numpy()]
    ids = treated.union(controls)
    ids = ids[ids.isin(anchor.index) & ids.isin(later)]
    d = pd.DataFrame({"treated": ids.isin(treated), "anchor": anchor.reindex(ids)}, index=ids)
    a = d["anchor"].reindex(year["customer_id"]).to_numpy()
    after = year[year["order_date"].to_numpy() > a]
    d["y"] = after.groupby("customer_id").size().reindex(ids, fill_value=0)
    d["weeks"] = (stop - d["anchor"]) / WEEK
    pre_start = start - pd.Timedelta(weeks=52)
    s = signup.reindex(ids)
    pre = o[(o["order_date"] >= pre_start) & (o["order_date"] < start)]
    pre = pre[pre["order_date"].to_numpy() > s.reindex(pre["customer_id"]).to_numpy()]
    d["pre_y"] = pre.groupby("customer_id").size().reindex(ids, fill_value=0)
    d["pre_weeks"] = ((start - s.clip(lower=pre_start)) / WEEK).clip(lower=0)
    post_fit = _rate_ratio_glm(d["y"].to_numpy(), d["weeks"].to_numpy(), d["treated"].to_numpy())
    pre_fit = _rate_ratio_glm(
        d["pre_y"].to_numpy(), d["pre_weeks"].to_numpy(), d["treated"].to_numpy()
    )
    return {
        **post_fit,
        "pre_ratio": pre_fit["ratio"],
        "pre_ci_low": pre_fit["ci_low"],
        "pre_ci_high": pre_fit["ci_high"],
        "n_treated": int(d["treated"].sum()),
        "n_controls": int((~d["treated"]).sum()),
        "sample": d,
    }


def _smd(x: np.ndarray, t: np.ndarray, w: np.ndarray) -> float:
    m1 = np.average(x[t], weights=w[t])
    m0 = np.average(x[~t], weights=w[~t])
    s = np.sqrt((x[t].var() + x[~t].var()) / 2)
    return float((m1 - m0) / s) if s > 0 else 0.0


def _att_fit(
    X: np.ndarray, t: np.ndarray, y: np.ndarray, ex: np.ndarray, trim: float, aipw: bool
) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
    """IPW (and AIPW) ATT ratios on one sample: (ipw, aipw, propensity, weights, kept)."""
    e = Logit(t.astype(float), X).fit(disp=0).predict(X)
    keep = (e >= trim) & (e <= 1 - trim)
    w = np.where(t, 1.0, e / (1 - e)) * keep
    tk, ck = t & keep, ~t & keep
    r1 = y[tk].sum() / ex[tk].sum()
    r0 = (w[ck] * y[ck]).sum() / (w[ck] * ex[ck]).sum()
    ipw = float(r1 / r0)
    dr = np.nan
    if aipw:
        # outcome model on the kept controls: Poisson rate with log exposure as offset
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            om = GLM(y[ck], X[ck], family=families.Poisson(), offset=np.log(ex[ck])).fit()
        m0 = np.exp(X @ om.params) * ex
        k = ex[tk].sum() / (w[ck] * ex[ck]).sum()
        dr = float(y[tk].sum() / (m0[tk].sum() + k * (w[ck] * (y[ck] - m0[ck])).sum()))
    return ipw, dr, e, w, keep


def ipw_att(
    sample: pd.DataFrame,
    covariates: Sequence[str],
    treat: str = "joined",
    outcome: str = "post_orders",
    exposure: str = "post_weeks",
    n_boot: int = 200,
    seed: int = 0,
    trim: float = 0.0,
) -> dict:
    """Effect of joining on the joiners' purchase rate by inverse-probability weighting (ATT),
    with its doubly robust (augmented) version.

    A logistic propensity e(x) = P(join | x); controls get weight e/(1 - e), joiners 1 (Hirano,
    Imbens & Ridder 2003). The ATT ratio = (sum_T y / sum_T exposure) / (sum_C w y / sum_C w
    exposure): joiners' orders per week over what comparable decliners did.

    AIPW (doubly robust; for the ATT, Sant'Anna & Zhao 2020, *J. Econometrics* 219(1)): a Poisson
    outcome model fitted on the controls, m0(x) = exp(x'g) x exposure, predicts each joiner's
    orders without the club; the weighted control residuals correct it:
    R_DR = sum_T y / [sum_T m0 + k sum_C w (y - m0)], k = sum_T exposure / sum_C w exposure.
    It is consistent if either the propensity or the outcome model is right (with m0 = 0 it is
    the IPW ratio).

    `trim` > 0 drops customers whose propensity lies outside [trim, 1 - trim] (Crump, Hotz,
    Imbens & Mitnik 2009, *Biometrika* 96(1)): extreme weights go, and the estimand becomes the
    effect on the joiners with overlap. Intervals: bootstrap over customers (`n_boot` resamples,
    both models refitted each time, percentile 95 %). Valid only if joining is as good as
    random given `covariates` (no unmeasured confounding: see :func:`e_value`).

    Returns ``ratio``, ``ci_low``, ``ci_high`` (IPW), ``aipw_ratio``, ``aipw_ci_low``,
    ``aipw_ci_high``, ``naive_ratio`` (unweighted), ``balance`` (standardized mean differences
    before and after weighting, on the kept customers), ``propensity`` and ``weights`` (Series on
    the sample's index; weight 0 = trimmed) and ``n_trimmed``."""
    X = add_constant(sample[list(covariates)].astype(float).to_numpy(), has_constant="add")
    t = sample[treat].to_numpy(bool)
    y = sample[outcome].to_numpy(float)
    ex = sample[exposure].to_numpy(float)

    ratio, dr, e, w, keep = _att_fit(X, t, y, ex, trim, aipw=True)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(t), len(t))
        boots.append(_att_fit(X[idx], t[idx], y[idx], ex[idx], trim, aipw=True)[:2])
    boots = np.array(boots).reshape(-1, 2)
    naive = (y[t].sum() / ex[t].sum()) / (y[~t].sum() / ex[~t].sum())
    one = keep.astype(float)
    tk = t[keep]
    balance = pd.DataFrame(
        {
            "smd_before": [_smd(sample[c].to_numpy(float), t, np.ones(len(t))) for c in covariates],
            "smd_after": [
                _smd(sample[c].to_numpy(float)[keep], tk, w[keep] * one[keep]) for c in covariates
            ],
        },
        index=list(covariates),
    )
    lo, hi = np.percentile(boots, [2.5, 97.5], axis=0)
    return {
        "ratio": ratio,
        "ci_low": float(lo[0]),
        "ci_high": float(hi[0]),
        "aipw_ratio": dr,
        "aipw_ci_low": float(lo[1]),
        "aipw_ci_high": float(hi[1]),
        "naive_ratio": float(naive),
        "balance": balance,
        "propensity": pd.Series(e, index=sample.index, name="propensity"),
        "weights": pd.Series(w, index=sample.index, name="weight"),
        "n_trimmed": int((~keep).sum()),
    }


def weight_diagnostics(weights: pd.Series, treated: pd.Series) -> dict[str, float]:
    """How much the controls' weights concentrate (ATT weighting: controls weighted, treated 1).

    Kish's effective sample size of the controls, ESS = (sum w)^2 / sum w^2 (Kish 1965, *Survey
    Sampling*), the control count it stands for; ``max_weight`` the largest control weight and
    ``max_share`` its share of the controls' total weight (one customer standing for a large part
    of the counterfactual is a warning). Controls with weight 0 (trimmed) are left out. Returns
    ``n_controls``, ``ess``, ``ess_share`` (ESS / n_controls), ``max_weight``, ``max_share``."""
    w = weights.to_numpy(float)[~treated.to_numpy(bool)]
    w = w[w > 0]
    ess = w.sum() ** 2 / (w**2).sum()
    return {
        "n_controls": int(len(w)),
        "ess": float(ess),
        "ess_share": float(ess / len(w)),
        "max_weight": float(w.max()),
        "max_share": float(w.max() / w.sum()),
    }


def overlap_table(
    propensity: pd.Series,
    treated: pd.Series,
    bins: Sequence[float] = (0, 0.1, 0.3, 0.5, 0.7, 0.9, 1),
) -> pd.DataFrame:
    """Counts of treated and controls by propensity band (overlap: every band with treated needs
    controls, or their weights explode). Returns ``treated``, ``controls`` per band."""
    band = pd.cut(propensity, bins=list(bins), include_lowest=True)
    t = treated.to_numpy(bool)
    return pd.DataFrame(
        {
            "treated": band[t].value_counts(sort=False),
            "controls": band[~t].value_counts(sort=False),
        }
    )


def e_value(ratio: float, ci_low: float | None = None, ci_high: float | None = None) -> dict:
    """E-value (VanderWeele & Ding 2017, *Annals of Internal Medicine* 167(4)): the minimum
    strength of association, on the risk-ratio scale, that an unmeasured confounder would need
    with both the treatment and the outcome to explain away an observed ratio RR:
    E = RR + sqrt(RR (RR - 1)) for RR >= 1 (for RR < 1 use 1/RR). For the interval, the same
    formula at the limit closer to 1, and 1 if the interval includes 1. Known answer (the
    paper's example): RR 3.9 [1.8, 8.7] -> E 7.26, for the limit 3.0. Applied to a rate ratio
    it assumes the rate-ratio approximation of a risk ratio (the paper's rare-outcome note).
    Returns ``estimate`` and ``ci`` (E-values)."""

    def ev(rr: float) -> float:
        rr = 1 / rr if rr < 1 else rr
        return float(rr + np.sqrt(rr * (rr - 1)))

    out = {"estimate": ev(ratio), "ci": np.nan}
    if ci_low is not None and ci_high is not None:
        if ci_low <= 1 <= ci_high:
            out["ci"] = 1.0
        else:
            out["ci"] = ev(ci_low if ratio >= 1 else ci_high)
    return out


# ------------------------------------------------------------- rate multipliers inside BG/NBD


def order_states(
    orders: pd.DataFrame,
    customers: pd.DataFrame,
    events: pd.DataFrame,
    tiers: Mapping[str, int],
    window: int,
    as_of: str | pd.Timestamp,
) -> pd.DataFrame:
    """Each member's orders with the state the customer is in *after* the order.

    Columns: ``customer_id``, ``t`` (weeks since sign-up), ``T`` (weeks from sign-up to the end of
    the as-of day), ``member`` (joined at or before this order), ``lifetime_points`` (earned since
    joining, after the order), ``tier`` (by the `tiers` thresholds, e.g. {"Bronze": 0, "Silver":
    400, "Gold": 850}), ``tier_at_order`` (the tier held when ordering, whose benefits the order
    gets; empty before joining and at the joining order), ``to_next`` (points to the next tier, inf at the top), ``state`` ('pre' before
    joining, else the tier, with '_near' when within `window` points of the next tier) and ``gap``
    (weeks to the next order, or to the end for the last order: then ``last`` is True)."""
    end = periods.as_of_end(as_of)
    joins = events.loc[events["event_type"] == "join"].groupby("customer_id")["event_at"].min()
    o = periods.up_to(orders, as_of, "order_date")
    o = o[o["customer_id"].isin(joins.index)].sort_values(["customer_id", "order_date", "order_id"])
    earn = (
        events.loc[events["event_type"] == "earn"]
        .groupby(["customer_id", "event_at"], as_index=False)["points"]
        .sum()
        .rename(columns={"event_at": "order_date"})
    )
    o = o[["customer_id", "order_date"]].merge(earn, on=["customer_id", "order_date"], how="left")
    o["points"] = o["points"].fillna(0)
    signup = o["customer_id"].map(customers.set_index("customer_id")["signup_date"])
    o["t"] = (o["order_date"] - signup) / WEEK
    o["T"] = (end - signup) / WEEK
    o["member"] = o["order_date"] >= o["customer_id"].map(joins)
    o["lifetime_points"] = o.groupby("customer_id")["points"].cumsum()
    names = np.array(list(tiers))
    thr = np.array(list(tiers.values()), dtype=float)
    k = np.searchsorted(thr, o["lifetime_points"].to_numpy(), side="right") - 1
    o["tier"] = names[k]
    o["to_next"] = np.append(thr, np.inf)[k + 1] - o["lifetime_points"].to_numpy()
    near = o["to_next"].to_numpy() <= window
    o["state"] = np.where(o["member"], np.where(near, o["tier"] + "_near", o["tier"]), "pre")
    before = o.groupby("customer_id")["tier"].shift(1)
    was_member = o.groupby("customer_id")["member"].shift(1, fill_value=False).astype(bool)
    o["tier_at_order"] = np.where(was_member, before.fillna(names[0]), "")
    nxt = o.groupby("customer_id")["t"].shift(-1)
    o["last"] = nxt.isna()
    o["gap"] = np.where(o["last"], o["T"] - o["t"], nxt - o["t"])
    return o.reset_index(drop=True)


def gap_by_distance(states: pd.DataFrame, bins: Sequence[float]) -> pd.DataFrame:
    """Members' mean weeks to the next order by points still needed for the next tier (completed
    gaps only, Bronze and Silver): the goal gradient shows as shorter gaps near a threshold
    (Kivetz, Urminsky & Zheng 2006). Returns ``orders`` and ``mean_gap_weeks`` per bin."""
    s = states[states["member"] & ~states["last"] & np.isfinite(states["to_next"])]
    b = pd.cut(s["to_next"], bins=list(bins))
    return s.groupby(b, observed=True)["gap"].agg(orders="size", mean_gap_weeks="mean")


@dataclass
class RateFit:
    """Result of :func:`fit_rate_multipliers`: estimates and 95 % Wald intervals (on the log
    scale) of the BG/NBD parameters and the multipliers, the log-likelihood and the customers."""

    params: dict[str, float]
    ci: dict[str, tuple[float, float]]
    loglik: float
    n: int
    states: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"estimate": self.params, "ci_low": {k: v[0] for k, v in self.ci.items()},
             "ci_high": {k: v[1] for k, v in self.ci.items()}}
        )  # fmt: skip


def fit_rate_multipliers(states: pd.DataFrame, tiers: Sequence[str]) -> RateFit:
    """BG/NBD with a piecewise-constant rate multiplier m(s) by state (Fader, Hardie & Lee 2005).

    While alive a customer buys at rate lambda x m(state after the last order): m = 1 before
    joining, u (the club's uplift) x lift(tier) x h (goal gradient, in a '_near' state); the first
    tier's lift is 1. With operational time L(t) = integral of m, the likelihood given lambda and
    p is prod_j m_j x lambda^x e^{-lambda L(t_x)} [(1-p)^x e^{-lambda (L(T) - L(t_x))} + 1{x>0}
    p (1-p)^{x-1}], so integrating lambda ~ Gamma(r, alpha) and p ~ Beta(a, b) gives the BG/NBD
    likelihood (:func:`helpers.clv.bgnbd_loglik`) at t_x -> L(t_x), T -> L(T), times prod_j m_j.
    Dropout is handled, so the multipliers are on the rate while alive, not on realized orders.
    Fit by maximum likelihood on the log scale; intervals from the numerical Hessian."""
    tiers = list(tiers)
    labels = ["pre"] + [f"{t}{s}" for t in tiers for s in ("", "_near")]
    col = {lab: i for i, lab in enumerate(labels)}
    ids, pos = np.unique(states["customer_id"].to_numpy(), return_inverse=True)
    st = states["state"].map(col).to_numpy()
    if np.isnan(st.astype(float)).any():
        raise ValueError(f"unknown states; expected {labels}")
    last = states["last"].to_numpy(bool)
    dur = states["gap"].to_numpy(float)
    S = len(labels)
    E_tx, E_end, K = (np.zeros((len(ids), S)) for _ in range(3))
    np.add.at(E_tx, (pos[~last], st[~last]), dur[~last])
    np.add.at(E_end, (pos[last], st[last]), dur[last])
    np.add.at(K, (pos[~last], st[~last]), 1.0)
    x = K.sum(axis=1)
    names = ["r", "alpha", "a", "b", "uplift", "goal_gradient"] + tiers[1:]
    seen = (E_tx + E_end).sum(axis=0) > 0
    near_seen = bool(seen[[col[f"{t}_near"] for t in tiers]].any())
    # a multiplier with no exposure in its states is not identified: fixed at 1 (reported nan)
    free = np.array(
        [True] * 5 + [near_seen] + [bool(seen[[col[t], col[f"{t}_near"]]].any()) for t in tiers[1:]]
    )

    def mult(v: np.ndarray) -> np.ndarray:
        u, h = np.exp(v[0]), np.exp(v[1])
        lift = dict(zip(tiers, [1.0, *np.exp(v[2:])], strict=True))
        return np.array(
            [1.0] + [u * lift[t] * (h if s else 1.0) for t in tiers for s in (False, True)]
        )

    def nll(vf: np.ndarray) -> float:
        v = np.zeros(len(names))
        v[free] = vf
        r, alpha, a, b = np.exp(v[:4])
        m = mult(v[4:])
        tx = E_tx @ m
        summary = pd.DataFrame({"frequency": x, "recency": tx, "T": tx + E_end @ m})
        return -float((clv.bgnbd_loglik(summary, r, alpha, a, b) + K @ np.log(m)).sum())

    x0 = np.log([1.0, 10.0, 0.8, 3.0] + [1.0] * (len(names) - 4))[free]
    # central-difference gradients and tight tolerances: the likelihood is flat along the
    # uplift/goal-gradient ridge, and scipy's defaults (forward differences, ftol 2.2e-9) stop
    # where the last bits of the machine's arithmetic decide (the incremental orders then moved
    # in their fifth digit between two CPUs); here a start moved by 1e-7 gives the same optimum
    # to about 1e-8
    res = optimize.minimize(
        nll, x0, jac="3-point", method="L-BFGS-B", bounds=[(-10, 10)] * len(x0),
        options={"ftol": 1e-14, "gtol": 1e-9, "maxiter": 5000},
    )  # fmt: skip
    se = np.sqrt(np.diag(np.linalg.inv(approx_hess3(res.x, nll))))
    est, sd = np.full(len(names), np.nan), np.full(len(names), np.nan)
    est[free], sd[free] = res.x, se
    params = dict(zip(names, np.exp(est).tolist(), strict=True))
    ci = {
        n: (float(np.exp(v - Z95 * s)), float(np.exp(v + Z95 * s)))
        for n, v, s in zip(names, est, sd, strict=True)
    }
    return RateFit(params, ci, -float(res.fun), len(ids), labels)


def members_at_join(states: pd.DataFrame) -> pd.DataFrame:
    """Each member's BG/NBD summary at the joining order (from :func:`order_states`), in weeks
    since sign-up: ``frequency`` (repeat orders up to and including the joining order),
    ``recency`` = ``T`` (the joining order's time: members join at an order). Before joining the
    club's multiplier is 1, so this is the model's own time. Indexed by ``customer_id``."""
    s = states.assign(k=states.groupby("customer_id").cumcount())
    j = s[s["member"]].groupby("customer_id").first()
    return pd.DataFrame(
        {"frequency": j["k"].astype(float), "recency": j["t"], "T": j["t"]}, index=j.index
    )


def incremental_orders(
    fit: RateFit,
    summary: pd.DataFrame,
    horizons: Sequence[float],
    m_with: float,
    m_without: float = 1.0,
) -> pd.DataFrame:
    """Orders a rate multiplier adds over a horizon, from the fitted BG/NBD (not from the rate).

    In BG/NBD a customer can drop out only right after a purchase, so buying faster also reaches
    the dropout sooner: a multiplier m on the rate while alive is the same as running the clock m
    times faster, and the expected orders in the next H weeks become E[X(m H) | x, t_x, T]
    (Fader, Hardie & Lee 2005, eq. 10, :func:`helpers.clv.expected_purchases`). The incremental
    orders are E[X(m_with H)] - E[X(m_without H)], summed over the customers of `summary`
    (``frequency``, ``recency``, ``T`` in weeks at the moment the multiplier starts, in the
    model's time before the club, where m = 1). As H grows both tend to the same lifetime total,
    so the incremental share falls towards 0; the rate-lift shortcut 1 - m_without / m_with
    counts a constant share at every horizon.

    Returns per horizon ``orders_with``, ``orders_without``, ``incremental``, ``share``
    (incremental / orders_with) and ``rate_shortcut`` (1 - m_without / m_with)."""
    mf = clv.ModelFit(
        "BG/NBD",
        {k: fit.params[k] for k in ("r", "alpha", "a", "b")},
        fit.loglik,
        fit.n,
        "weeks",
        np.zeros((4, 4)),
        True,
    )
    h = np.asarray(list(horizons), dtype=float)
    w = np.asarray(clv.expected_purchases(mf, summary, m_with * h)).sum(axis=0)
    wo = np.asarray(clv.expected_purchases(mf, summary, m_without * h)).sum(axis=0)
    return pd.DataFrame(
        {
            "orders_with": w,
            "orders_without": wo,
            "incremental": w - wo,
            "share": (w - wo) / w,
            "rate_shortcut": 1 - m_without / m_with,
        },
        index=pd.Index(h, name="horizon_weeks"),
    )


# ---------------------------------------------------------------------------------- points


def points_ledger(events: pd.DataFrame, value_per_point: float) -> dict[str, float]:
    """Points earned, redeemed, expired and outstanding (earned - redeemed - expired), the
    realized breakage so far (expired / earned: a lower bound on the final breakage while points
    are open) and the outstanding liability at face value (outstanding x value per point)."""
    pts = events.groupby("event_type", observed=True)["points"].sum()
    earned = float(pts.get("earn", 0))
    redeemed, expired = -float(pts.get("redeem", 0)), -float(pts.get("expire", 0))
    out = earned - redeemed - expired
    return {
        "earned": earned, "redeemed": redeemed, "expired": expired, "outstanding": out,
        "breakage_so_far": expired / earned if earned else float("nan"),
        "liability_face_value": out * value_per_point,
    }  # fmt: skip


def point_fates(events: pd.DataFrame, as_of: str | pd.Timestamp) -> pd.DataFrame:
    """Which points were redeemed, which expired and which are still open, first in first out.

    Each member's earned points are laid end to end (batch k covers (E_{k-1}, E_k] of cumulative
    points earned), and so are the points used (redeem and expire events cover (C_{j-1}, C_j]);
    the overlaps are the pieces returned: ``customer_id``, ``points``, ``earned_at``, ``ended_at``
    (the redeem or expire time, or the end of the as-of day if still open), ``fate`` ('redeem',
    'expire' or 'open') and ``months`` (from earning to the end, 30.44-day months). Open points
    are censored observations of the time to redemption or expiry."""
    ev = periods.up_to(events, as_of, "event_at").sort_values(
        ["customer_id", "event_at", "event_id"]
    )
    earn = ev[(ev["event_type"] == "earn") & (ev["points"] > 0)]
    used = ev[ev["event_type"].isin(["redeem", "expire"]) & (ev["points"] != 0)]
    ids = np.unique(earn["customer_id"].to_numpy())
    big = float(earn["points"].sum() + 1)
    off_e = np.searchsorted(ids, earn["customer_id"].to_numpy()) * big
    e_cum = earn.groupby("customer_id")["points"].cumsum().to_numpy(float) + off_e
    u_pos = np.searchsorted(ids, used["customer_id"].to_numpy())
    u_cum = (-used["points"]).groupby(used["customer_id"]).cumsum().to_numpy(float) + u_pos * big
    ends = np.unique(np.concatenate([e_cum, u_cum]))
    member = np.floor(ends / big)
    starts = np.maximum(np.concatenate([[0.0], ends[:-1]]), member * big)
    keep = ends > starts
    ends, starts, member = ends[keep], starts[keep], member[keep]
    bi = np.searchsorted(e_cum, ends, side="left")
    ui = np.searchsorted(u_cum, ends, side="left")
    has_use = (ui < len(u_cum)) & (np.floor(u_cum[np.minimum(ui, len(u_cum) - 1)] / big) == member)
    ui_ok = np.minimum(ui, max(len(u_cum) - 1, 0))
    end_time = periods.as_of_end(as_of)
    ended = np.where(has_use, used["event_at"].to_numpy()[ui_ok], np.datetime64(end_time))
    fate = np.where(has_use, used["event_type"].astype(str).to_numpy()[ui_ok], "open")
    earned_at = earn["event_at"].to_numpy()[bi]
    out = pd.DataFrame(
        {
            "customer_id": ids[member.astype(int)],
            "points": ends - starts,
            "earned_at": earned_at,
            "ended_at": pd.to_datetime(ended),
            "fate": fate,
        }
    )
    out["months"] = (out["ended_at"] - out["earned_at"]) / pd.Timedelta(days=MONTH_DAYS)
    return out


def _aalen_johansen(
    months: np.ndarray, code: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted Aalen-Johansen cumulative incidences of two competing events (code 1, 2; 0 is
    censored) at the distinct times: F_k(t) = sum_{s <= t} S(s-) d_k(s) / n(s), with S the
    Kaplan-Meier survival of any event and n(s) the weight still at risk just before s
    (Aalen & Johansen 1978). Returns (times, F_1, F_2)."""
    order = np.argsort(months, kind="stable")
    t, c, w = months[order], code[order], weight[order]
    times, first = np.unique(t, return_index=True)
    d1 = np.add.reduceat(np.where(c == 1, w, 0.0), first)
    d2 = np.add.reduceat(np.where(c == 2, w, 0.0), first)
    gone = np.add.reduceat(w, first)
    at_risk = w.sum() - np.concatenate([[0.0], np.cumsum(gone)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        h1 = np.where(at_risk > 0, d1 / at_risk, 0.0)
        h2 = np.where(at_risk > 0, d2 / at_risk, 0.0)
    s_before = np.concatenate([[1.0], np.cumprod(1.0 - h1 - h2)[:-1]])
    return times, np.cumsum(s_before * h1), np.cumsum(s_before * h2)


def _fate_arrays(fates: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    code = fates["fate"].map({"open": 0, "redeem": 1, "expire": 2}).to_numpy()
    return (
        np.maximum(fates["months"].to_numpy(float), 1e-6),
        code,
        fates["points"].to_numpy(float),
    )


def breakage_curve(fates: pd.DataFrame, horizon_months: float) -> dict:
    """Breakage as a competing-risks survival problem: the share of points that expire within t
    months of being earned, F_expire(t), by the Aalen-Johansen estimator (Aalen & Johansen 1978;
    the same as lifelines' AalenJohansenFitter without its jittering of ties) weighted by points,
    with redemption as the competing event and open points censored at as-of. Returns ``curve``
    (months, cif_expire, cif_redeem) and ``breakage`` = F_expire(horizon). The naive expired /
    earned counts open points as never expiring and understates breakage while many points are
    open. The pooled curve assumes that later vintages of points will fare as the earlier ones
    did at the same age (:func:`breakage_by_vintage` checks it)."""
    d, code, w = _fate_arrays(fates)
    times, f_red, f_exp = _aalen_johansen(d, code, w)
    curve = pd.DataFrame(
        {"cif_expire": f_exp, "cif_redeem": f_red}, index=pd.Index(times, name="months")
    )
    at = curve.loc[curve.index <= horizon_months]
    return {"curve": curve, "breakage": float(at["cif_expire"].iloc[-1]) if len(at) else 0.0}


def ultimate_breakage(
    fates: pd.DataFrame, horizon_months: float, n_boot: int = 200, seed: int = 0
) -> dict[str, float]:
    """Breakage within `horizon_months` of earning, and bounds on the ultimate breakage, with
    intervals that resample members (a member's points share their fate: Efron's bootstrap over
    members, percentile intervals).

    At the horizon a share open(h) = 1 - F_expire(h) - F_redeem(h) of points is still unresolved:
    the ultimate breakage lies in [F_expire(h), F_expire(h) + open(h)] (a partial identification,
    Manski 2003), whatever the open points do later. Returns ``estimate`` = F_expire(h) with its
    ``ci_low``, ``ci_high``; ``open`` = open(h); ``upper`` = F_expire(h) + open(h) with its
    ``upper_ci_high``; and ``bound_low`` = ci_low, ``bound_high`` = upper_ci_high: an interval for
    the ultimate breakage that holds sampling error and the unresolved points."""
    d, code, w = _fate_arrays(fates)
    member, members = pd.factorize(fates["customer_id"])

    def at_h(weight: np.ndarray) -> tuple[float, float]:
        times, f_red, f_exp = _aalen_johansen(d, code, weight)
        i = np.searchsorted(times, horizon_months, side="right") - 1
        return (float(f_exp[i]), float(1 - f_exp[i] - f_red[i])) if i >= 0 else (0.0, 1.0)

    est, open_h = at_h(w)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(members), np.full(len(members), 1 / len(members)), size=n_boot)
    boot = np.array([at_h(w * k[member]) for k in draws])
    lo, hi = np.quantile(boot[:, 0], [0.025, 0.975])
    up_hi = float(np.quantile(boot.sum(axis=1), 0.975))
    return {
        "estimate": est,
        "ci_low": float(lo),
        "ci_high": float(hi),
        "open": open_h,
        "upper": est + open_h,
        "upper_ci_high": up_hi,
        "bound_low": float(lo),
        "bound_high": up_hi,
    }


def breakage_by_vintage(
    fates: pd.DataFrame,
    as_of: str | pd.Timestamp,
    freq: str = "Q",
    redeem_months: Sequence[float] = (6,),
    expire_months: Sequence[float] = (12, 18),
) -> pd.DataFrame:
    """Breakage by vintage (the period in which the points were earned): points earned, the shares
    redeemed, expired and still open at as-of, and each vintage's own Aalen-Johansen F_redeem and
    F_expire at the given ages in months, left empty where no point of the vintage is that old
    yet. A pooled curve (:func:`breakage_curve`) reads its late months from the oldest vintages
    only: where vintages differ at the ages they share, the pooled curve mixes them."""
    end = periods.as_of_end(as_of)
    vintage = fates["earned_at"].dt.to_period(freq)
    shares = fates.pivot_table(
        index=vintage, columns="fate", values="points", aggfunc="sum", fill_value=0.0
    ).reindex(columns=["redeem", "expire", "open"], fill_value=0.0)
    out = pd.DataFrame({"points": shares.sum(axis=1)})
    for k, name in (("redeem", "redeemed"), ("expire", "expired"), ("open", "open")):
        out[f"{name} now"] = shares[k] / out["points"]
    age = (end - fates.groupby(vintage)["earned_at"].min()) / pd.Timedelta(days=MONTH_DAYS)
    cols = {}
    for v, g in fates.groupby(vintage):
        times, f_red, f_exp = _aalen_johansen(*_fate_arrays(g))
        for what, f, hs in (("redeemed", f_red, redeem_months), ("expired", f_exp, expire_months)):
            for h in hs:
                i = np.searchsorted(times, h, side="right") - 1
                value = (float(f[i]) if i >= 0 else 0.0) if age[v] >= h else np.nan
                cols.setdefault(f"{what} within {h:g} months", {})[v] = value
    out = out.join(pd.DataFrame(cols))
    out.index = out.index.astype(str)
    out.index.name = "earned in"
    return out


def first_eligible_redemption(
    events: pd.DataFrame, block: int, as_of: str | pd.Timestamp
) -> pd.DataFrame:
    """Each member's first earning order at which the balance reached a full `block` of points,
    and whether they redeemed there. Reaching it does not depend on the member's propensity to
    redeem (nothing was redeemable before), so the share redeeming estimates the mean propensity
    E[rho] without the bias of pooling all eligible orders (members who never redeem stay
    eligible and are over-counted). Columns ``customer_id``, ``event_at``, ``redeemed``."""
    ev = periods.up_to(events, as_of, "event_at").sort_values(
        ["customer_id", "event_at", "event_id"]
    )
    ev = ev[ev["event_type"].isin(["earn", "redeem", "expire"])]
    bal = ev.groupby("customer_id")["points"].cumsum()
    earn = ev["event_type"] == "earn"
    # balance after the earn; a redeem logged right after the earn (same order) is 1 s later
    elig = ev[earn & (bal >= block)].groupby("customer_id")["event_at"].first()
    red = ev[ev["event_type"] == "redeem"].groupby("customer_id")["event_at"].min()
    gap = red.reindex(elig.index) - elig
    return pd.DataFrame(
        {"customer_id": elig.index, "event_at": elig.to_numpy(),
         "redeemed": ((gap >= pd.Timedelta(0)) & (gap <= pd.Timedelta(seconds=5))).to_numpy()}
    )  # fmt: skip


# ----------------------------------------------------------------------------------- P & L


def programme_pnl(
    orders_after: float,
    ratio: float | np.ndarray,
    margin_per_order: float,
    rewards: float,
    benefits: float,
    running_cost: float,
) -> pd.DataFrame:
    """The programme's profit and loss for a causal ratio R (orders with / without the club).

    incremental orders = orders_after x (1 - 1/R); incremental margin = that x margin per order;
    cost = rewards + benefits + running cost; profit = margin - cost; ROI = profit / cost. The
    break-even ratio solves margin = cost: R* = 1 / (1 - cost / (orders_after x margin per
    order)). Columns per R: ``ratio``, ``incremental_orders``, ``incremental_margin``, ``cost``,
    ``profit``, ``roi``, ``break_even_ratio``."""
    r = np.atleast_1d(np.asarray(ratio, dtype=float))
    inc = orders_after * (1 - 1 / r)
    m = inc * margin_per_order
    cost = rewards + benefits + running_cost
    share = cost / (orders_after * margin_per_order)
    return pd.DataFrame(
        {
            "ratio": r, "incremental_orders": inc, "incremental_margin": m, "cost": cost,
            "profit": m - cost, "roi": (m - cost) / cost,
            "break_even_ratio": 1 / (1 - share) if share < 1 else np.inf,
        }
    )  # fmt: skip


def coupon_arm_effects(
    offers: pd.DataFrame, orders: pd.DataFrame, days: int = 60, control_arm: float = 0
) -> pd.DataFrame:
    """A randomized next-purchase coupon experiment, per arm (``discount_pct``): ``offers``,
    ``conversion`` (share followed by an order within `days`), ``uplift`` = conversion minus the
    control arm's, with the 95 % Wald interval of :func:`helpers.stats.proportion_difference` (NaN
    on the control arm's own row: it is the reference, not an estimate), and
    ``discount_per_offer`` (EUR of discount on the orders that redeemed the coupon, divided by
    all offers of the arm: cannibalized discount included)."""
    converted = orders_after(offers, orders, days, at="offered_at")["converted"]
    f = offers.set_index("offer_id").assign(converted=converted.to_numpy())
    disc = orders.set_index("order_id")["discount"]
    red = pd.to_numeric(f["redeemed_order_id"], errors="coerce")
    f["coupon_discount"] = disc.reindex(red).fillna(0.0).to_numpy()
    g = f.groupby("discount_pct").agg(
        offers=("converted", "size"),
        conversion=("converted", "mean"),
        discount=("coupon_discount", "sum"),
    )
    control = f.loc[f["discount_pct"] == control_arm, "converted"]
    wald = pd.DataFrame.from_dict(
        {
            arm: proportion_difference(y, control, method="wald")
            for arm, y in f.groupby("discount_pct")["converted"]
        },
        orient="index",
    )
    g["uplift"] = g["conversion"] - g.loc[control_arm, "conversion"]
    g["ci_low"], g["ci_high"] = wald["ci_low"], wald["ci_high"]
    g.loc[control_arm, ["ci_low", "ci_high"]] = np.nan
    g["discount_per_offer"] = g["discount"] / g["offers"]
    return g.drop(columns="discount")
