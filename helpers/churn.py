"""Churn as time to an event, and an early-warning score checked on a later period (out of time).

Survival analysis (the lifelines library does the estimation; these are thin wrappers that return
tidy tables):

* **Kaplan-Meier** (Kaplan & Meier 1958): with distinct event times t_1 < t_2 < ..., d_j churns at
  t_j and n_j customers at risk just before t_j (still active and not yet censored),
  S(t) = prod_{t_j <= t} (1 - d_j / n_j); Greenwood's variance gives the bands.
  :func:`km_summary`, :func:`censoring_bias`.
* **Log-rank test** (Mantel 1966): sum over event times of observed minus expected churns per
  group under "same hazard in every group", a chi-squared statistic with groups - 1 degrees of
  freedom. :func:`logrank`.
* **Cox proportional hazards** (Cox 1972): h(t | x) = h_0(t) exp(x'b), b maximizing the partial
  likelihood (Efron's method for ties); exp(b_k) is the hazard ratio of covariate k. With
  covariates that change over time the data are in *long format*, one row per customer and
  interval (start, stop] with the covariate values known at ``start``. :func:`fit_cox`,
  :func:`fit_cox_time_varying`, :func:`hazard_ratios`, :func:`ph_test`,
  :func:`subscription_months`.

Non-contractual churn has no end date, so "churned" is a *definition*: no order in the
``churn_days`` days up to a day (:func:`churned_by_definition`; the day is an as-of day in the
sense of :mod:`helpers.periods`). :func:`definition_tradeoff` shows what a threshold costs.

Early warning (a landmark design, e.g. van Houwelingen 2007, *Scand. J. Statistics* 34(1), 70-85):
features are computed from what is known at the end of a landmark day L (:func:`landmark_features`),
the outcome is "no order in the ``churn_days`` days after L" (:func:`churn_outcome`), models are
fitted on earlier landmarks and judged on a later one (a time-based holdout). Scores are judged by
AUC (= Mann-Whitney U / (n_1 n_0), :func:`auc_mann_whitney`), the Brier score, a calibration
table and cumulative gains / lift (:func:`gains_table`), each with a paired-bootstrap interval and
the interval of its difference from a baseline scored on the same customers
(:func:`paired_bootstrap`). The fair purchase-model baseline answers the same question as the
score: P(no order in the next tau days) under the BG/NBD (:func:`prob_no_purchase`).
:func:`contact_value` turns a score into a contact list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from helpers import periods
from helpers.stats import NPS_CATEGORIES, bootstrap_comparison, nps_category, orders_after

if TYPE_CHECKING:  # lifelines is imported where it is used: the report's definitions (order gaps)
    # use none of it (0.2-0.3 s of the report kernel's start)
    from lifelines import CoxPHFitter, CoxTimeVaryingFitter, KaplanMeierFitter

__all__ = [
    "km_summary",
    "kaplan_meier_at_events",
    "logrank",
    "censoring_bias",
    "churned_by_definition",
    "order_gaps",
    "definition_tradeoff",
    "return_time_km",
    "fit_cox",
    "fit_cox_time_varying",
    "hazard_ratios",
    "ph_test",
    "subscription_months",
    "bad_ticket_flag",
    "visits_drop_flag",
    "latest_nps_category",
    "landmark_features",
    "churn_outcome",
    "landmark_dataset",
    "auc_mann_whitney",
    "prob_no_purchase",
    "paired_bootstrap",
    "delong_auc_difference",
    "gains_table",
    "calibration_table",
    "score_report",
    "contact_value",
    "engagement_before_dropout",
]

# ----------------------------------------------------------------------------- Kaplan-Meier


def km_summary(
    df: pd.DataFrame,
    duration_col: str,
    event_col: str,
    by: str | None = None,
    *,
    times: Sequence[float] = (),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Kaplan-Meier per group (or overall): one row per group with ``n``, ``events``,
    ``median`` (the first t with S(t) <= 0.5; inf if the curve never gets there) and its
    confidence limits, and S(t) at each of `times` (columns ``S(t)``). The fitted
    ``KaplanMeierFitter`` objects (with Greenwood bands, ``alpha``) are in ``attrs["fits"]``."""
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    groups = [("all", df)] if by is None else list(df.groupby(by, sort=True))
    fits, rows = {}, []
    for key, g in groups:
        kmf = KaplanMeierFitter(alpha=alpha).fit(g[duration_col], g[event_col], label=str(key))
        ci = median_survival_times(kmf.confidence_interval_)
        row = {
            by or "group": key,
            "n": len(g),
            "events": int(g[event_col].sum()),
            "median": float(kmf.median_survival_time_),
            "median_ci_low": float(ci.iloc[0, 0]),
            "median_ci_high": float(ci.iloc[0, 1]),
        }
        for t in times:
            row[f"S({t:g})"] = float(kmf.survival_function_at_times(t).iloc[0])
        fits[key] = kmf
        rows.append(row)
    out = pd.DataFrame(rows).set_index(by or "group")
    out.attrs["fits"] = fits
    return out


def kaplan_meier_at_events(
    durations: np.ndarray, observed: np.ndarray, alpha: float = 0.05, keep: Sequence[float] = ()
) -> KaplanMeierFitter:
    """lifelines' ``KaplanMeierFitter`` (E. L. Kaplan & P. Meier 1958; Greenwood's exponential
    bands at 1 - `alpha`) of `durations` (`observed`: the event happened, else censored there),
    fitted on one weighted row per distinct time that matters: the event times, each censored
    duration counted at the last event time at or before it (those before the first event at
    the first censoring), the longest duration and the durations in `keep` where they are.

    The fit is the full one read as a step function (the value at the last time at or before
    t), bit for bit: S(t) = prod (1 - d_i / n_i) and Greenwood's sum change only at event times,
    and a censoring moved within the interval between two event times leaves each event time's
    at-risk count n_i as it was (integer counts: the same floats). Its timeline holds those
    times instead of every censoring time: 8.4M customers with a second order timed to the
    second, 60 % censored, made lifelines' fit 34 s and 1.7 GB (held equal to the full fit by
    ``tests/test_churn.py``)."""
    from lifelines import KaplanMeierFitter

    d = np.asarray(durations, dtype=float)
    e = np.asarray(observed, dtype=bool)
    if np.isnan(d).any():  # lifelines' own message
        return KaplanMeierFitter(alpha=alpha).fit(d, e)
    events, n_events = np.unique(d[e], return_counts=True)
    c = d[~e]
    stay = np.isin(c, np.asarray(keep, dtype=float))
    if len(d):
        stay |= c == d.max()
    moved = c[~stay]
    at = np.searchsorted(events, moved, side="right") - 1  # the last event time at or before
    before = at < 0  # censored before the first event: removed there, as at their own times
    first = moved[before].min() if before.any() else 0.0
    moved = np.where(before, first, events[np.maximum(at, 0)] if len(events) else first)
    censored, n_censored = np.unique(np.concatenate([moved, c[stay]]), return_counts=True)
    times = np.concatenate([events, censored])
    flags = np.concatenate([np.ones(len(events), bool), np.zeros(len(censored), bool)])
    counts = np.concatenate([n_events, n_censored]).astype(float)
    return KaplanMeierFitter(alpha=alpha).fit(times, flags, weights=counts)


def logrank(df: pd.DataFrame, duration_col: str, event_col: str, by: str) -> dict[str, float]:
    """Log-rank test of equal hazards across the groups of `by` (Mantel 1966; lifelines'
    ``multivariate_logrank_test``): chi-squared ``statistic`` on ``df`` = groups - 1 degrees of
    freedom and its ``p_value``."""
    from lifelines.statistics import multivariate_logrank_test

    res = multivariate_logrank_test(df[duration_col], df[by], df[event_col])
    return {
        "statistic": float(res.test_statistic),
        "df": int(res.degrees_of_freedom),
        "p_value": float(res.p_value),
    }


def censoring_bias(
    durations: np.ndarray | pd.Series, events: np.ndarray | pd.Series, times: Sequence[float]
) -> pd.DataFrame:
    """S(t) three ways, at each of `times`: ``kaplan_meier`` (censoring handled); ``drop_censored``
    (censored customers removed: the share of churners with T > t, too low because the long-lived
    are the ones still active); ``censored_as_churned`` (every censoring counted as a churn at that
    time: the same Kaplan-Meier with all events = 1, also too low)."""
    from lifelines import KaplanMeierFitter

    d = np.asarray(durations, dtype=float)
    e = np.asarray(events, dtype=bool)
    t = np.asarray(times, dtype=float)
    km = KaplanMeierFitter().fit(d, e).survival_function_at_times(t).to_numpy()
    dropped = (d[e][None, :] > t[:, None]).mean(axis=1) if e.any() else np.full(t.size, np.nan)
    as_churned = (d[None, :] > t[:, None]).mean(axis=1)
    return pd.DataFrame(
        {"kaplan_meier": km, "drop_censored": dropped, "censored_as_churned": as_churned},
        index=pd.Index(t, name="t"),
    )


# ----------------------------------------------------------------------------- churn definition


def churned_by_definition(
    orders: pd.DataFrame, as_of: str | pd.Timestamp, churn_days: int = 90
) -> pd.Series:
    """Non-contractual churn *by definition*: True for each customer with an order on or before
    as-of but none in the `churn_days` days up to the end of the as-of day, i.e. last order <
    as_of_end - churn_days (:func:`helpers.periods.as_of_end`). Index ``customer_id``."""
    if churn_days < 1:
        raise ValueError("churn_days must be at least 1")
    o = periods.up_to(orders, as_of, "order_date")
    last = pd.to_datetime(o["order_date"]).groupby(o["customer_id"]).max()
    cutoff = periods.as_of_end(as_of) - pd.Timedelta(days=churn_days)
    return (last < cutoff).rename("churned")


def order_gaps(orders: pd.DataFrame, as_of: str | pd.Timestamp) -> pd.DataFrame:
    """Time to the next order, one row per order on or before as-of: ``gap_days`` = days to the
    customer's next order (``observed`` True) or to the end of the as-of day (``observed`` False,
    right-censored: no next order yet). Columns customer_id, order_date, gap_days, observed."""
    o = periods.up_to(orders, as_of, "order_date")[["customer_id", "order_date"]]
    o = o.assign(order_date=pd.to_datetime(o["order_date"])).sort_values(
        ["customer_id", "order_date"], kind="stable"
    )
    nxt = o.groupby("customer_id")["order_date"].shift(-1)
    observed = nxt.notna()
    stop = nxt.where(observed, periods.as_of_end(as_of))
    gap = (stop - o["order_date"]).dt.total_seconds() / 86_400
    return o.assign(gap_days=gap.to_numpy(), observed=observed.to_numpy()).reset_index(drop=True)


def definition_tradeoff(
    gaps: pd.DataFrame, thresholds: Sequence[int], follow_days: int = 365, *, km: bool = True
) -> pd.DataFrame:
    """What the rule "churned = no order in N days" costs, for each N in `thresholds`, on the order
    gaps of :func:`order_gaps`. The unit is a *gap* (one order and the wait after it), not a
    customer: a frequent buyer contributes many gaps.

    * ``flagged`` - gaps that reached N days (the rule calls the customer churned at that point),
      and ``customers`` - how many distinct customers they belong to;
    * ``followed`` - those whose whole follow-up window (day N to day N + `follow_days`) lies
      before the end of the data, whether or not the customer came back: order date + N +
      follow_days <= the end of the as-of day (the stop of the censored gaps). Keeping recent gaps
      only when the customer came back would select on the outcome and bias ``came_back`` upward;
    * ``came_back`` - share of the followed gaps ended by an order within `follow_days` after
      day N: the false alarms of a short N (a win-back offer to them is wasted or even pays for an
      order that was coming anyway);
    * ``came_back_km`` - the same share from the Kaplan-Meier of the return time of every
      flagged gap (:func:`return_time_km`: recent gaps enter censored), and
      ``came_back_km_customer`` - weighted so that each customer counts once;
    * ``days_lost`` = N: how long a true churner goes unnoticed, the cost of a long N.

    ``km=False`` leaves out the two Kaplan-Meier columns (two lifelines fits per N: nearly all of
    the time), for a caller that reads only the followed gaps (the report's lost window).
    """
    g = gaps["gap_days"].to_numpy(float)
    obs = gaps["observed"].to_numpy(bool)
    start = pd.to_datetime(gaps["order_date"])
    end = (start + pd.to_timedelta(g, unit="D")).max()  # censored gaps stop at the data's end
    room = ((end - start).dt.total_seconds() / 86_400).to_numpy(float)  # days observable
    ids = gaps["customer_id"].to_numpy()
    rows = []
    for n in thresholds:
        reached = g > n
        followable = reached & (room >= n + follow_days)
        back = followable & obs & (g <= n + follow_days)
        km = {
            col: 1
            - float(
                return_time_km(gaps, after_days=n, by_customer=w)
                .survival_function_at_times(follow_days)
                .iloc[0]
            )
            if reached.any()
            else np.nan
            for col, w in [("came_back_km", False), ("came_back_km_customer", True)]
            if km
        }
        rows.append(
            {
                "churn_days": int(n),
                "flagged": int(reached.sum()),
                "customers": int(pd.unique(ids[reached]).size),
                "followed": int(followable.sum()),
                "came_back": back.sum() / followable.sum() if followable.any() else np.nan,
                **km,
                "days_lost": int(n),
            }
        )
    return pd.DataFrame(rows).set_index("churn_days")


def return_time_km(
    gaps: pd.DataFrame, *, after_days: float = 0, by_customer: bool = False
) -> KaplanMeierFitter:
    """Kaplan-Meier of the return time: the days from day `after_days` of a gap to the next
    order, over the gaps of :func:`order_gaps` that reached `after_days` without an order (all
    of them for 0), censored at the end of the data for customers with no next order yet. Unlike
    keeping only gaps whose follow-up is complete, it uses the recent gaps too, without selecting
    on the outcome (censoring independent of the return time is assumed).

    The unit is a gap, so heavy buyers (many gaps) weigh most. ``by_customer=True`` weights each
    gap by 1 / (the customer's number of gaps in the set), so every customer counts once: the
    curve of the typical customer rather than of the typical gap (a weighted Kaplan-Meier,
    d_j and n_j summed over weights; lifelines' ``weights``). ``1 - S(f)`` is the share back
    within f days of day `after_days`."""
    import warnings

    from lifelines import KaplanMeierFitter

    g = gaps[gaps["gap_days"] > after_days]
    w = (
        1.0 / g.groupby("customer_id")["customer_id"].transform("size").to_numpy(float)
        if by_customer
        else None
    )
    with warnings.catch_warnings():  # lifelines warns that fractional weights are not counts
        warnings.simplefilter("ignore")
        return KaplanMeierFitter().fit(
            g["gap_days"] - after_days,
            g["observed"],
            weights=w,
            label="per customer" if by_customer else "per gap",
        )


# ----------------------------------------------------------------------------- Cox models


def fit_cox(
    df: pd.DataFrame,
    duration_col: str,
    event_col: str,
    formula: str | None = None,
    *,
    strata: str | list[str] | None = None,
    penalizer: float = 0.0,
) -> CoxPHFitter:
    """Cox proportional-hazards fit (Cox 1972; lifelines, Efron ties): h(t|x) = h_0(t) exp(x'b).
    `formula` (e.g. ``"C(plan) + tickets"``) picks the covariates; without it every other column
    is one. `strata` fits a separate baseline hazard per stratum (the fix when a covariate's
    effect is not proportional)."""
    from lifelines import CoxPHFitter

    return CoxPHFitter(penalizer=penalizer).fit(
        df, duration_col, event_col, formula=formula, strata=strata
    )


def fit_cox_time_varying(
    long: pd.DataFrame,
    formula: str | None = None,
    *,
    id_col: str = "subscription_id",
    start_col: str = "start",
    stop_col: str = "stop",
    event_col: str = "event",
    strata: list[str] | None = None,
    penalizer: float = 0.0,
) -> CoxTimeVaryingFitter:
    """Cox model with time-varying covariates (lifelines ``CoxTimeVaryingFitter``) on long-format
    data: one row per subject and interval (start, stop], the covariates' values known at
    ``start``, ``event`` = 1 only on the interval that ends with the event. `formula` picks the
    covariates; without it every column except id/start/stop/event is one."""
    from lifelines import CoxTimeVaryingFitter

    data = long
    if formula is None:
        keep = [c for c in long.columns if c not in {id_col, start_col, stop_col, event_col}]
        data = long[[id_col, start_col, stop_col, event_col, *keep]]
    ctv = CoxTimeVaryingFitter(penalizer=penalizer)
    return ctv.fit(data, event_col=event_col, start_col=start_col, stop_col=stop_col,
                   id_col=id_col, formula=formula, strata=strata)  # fmt: skip


def hazard_ratios(model: CoxPHFitter | CoxTimeVaryingFitter) -> pd.DataFrame:
    """Per covariate: ``coef`` b, ``se``, ``hr`` = exp(b), ``ci_low`` / ``ci_high`` = exp(b -/+
    z se) at the model's confidence level, and the Wald ``p`` value."""
    s = model.summary
    lo = next(c for c in s.columns if c.startswith("exp(coef) lower"))
    hi = next(c for c in s.columns if c.startswith("exp(coef) upper"))
    out = pd.DataFrame(
        {
            "coef": s["coef"],
            "se": s["se(coef)"],
            "hr": s["exp(coef)"],
            "ci_low": s[lo],
            "ci_high": s[hi],
            "p": s["p"],
        }
    )
    out.index.name = "covariate"
    return out


def ph_test(model: CoxPHFitter, df: pd.DataFrame, time_transform: str = "rank") -> pd.DataFrame:
    """Test of proportional hazards per covariate (Grambsch & Therneau 1994: correlation of the
    scaled Schoenfeld residuals with a transform of time; lifelines ``proportional_hazard_test``).
    A small ``p`` says the covariate's hazard ratio changes with time: stratify on it or add a
    covariate x time interaction."""
    from lifelines.statistics import proportional_hazard_test

    res = proportional_hazard_test(model, df, time_transform=time_transform)
    out = res.summary[["test_statistic", "p"]].copy()
    out.index = [i if isinstance(i, str) else i[0] for i in out.index]
    out.index.name = "covariate"
    return out


# ----------------------------------------------------------------------------- long format


def _add_months(dates: pd.Series, k: np.ndarray) -> pd.Series:
    """dates + k calendar months (same day of month; subscriptions start on days 1..28)."""
    d = pd.to_datetime(dates)
    mon = d.dt.year.to_numpy() * 12 + d.dt.month.to_numpy() - 1 + np.asarray(k)
    out = pd.to_datetime(
        pd.DataFrame({"year": mon // 12, "month": mon % 12 + 1, "day": d.dt.day.to_numpy()})
    )
    return pd.Series(out.to_numpy(), index=dates.index) + (d - d.dt.normalize())


def subscription_months(durations: pd.DataFrame, *, start_col: str = "start_date") -> pd.DataFrame:
    """Long format of subscription lifetimes (from :func:`helpers.survival.subscription_durations`,
    columns ``months`` and ``churned``): one row per subscription and observed month k = 1..months,
    with ``start`` = k - 1, ``stop`` = k,
    ``month_start`` = start date + (k - 1) months (the day covariates are measured) and ``event`` = 1
    on the month that ends with the churn. The input's other columns are repeated."""
    m = durations["months"].to_numpy(np.int64)
    rows = np.repeat(np.arange(len(durations)), m)
    k = np.arange(m.sum()) - np.repeat(np.cumsum(m) - m, m) + 1
    long = durations.iloc[rows].reset_index(drop=True)
    long["start"] = k - 1
    long["stop"] = k
    long["month_start"] = _add_months(long[start_col], k - 1).to_numpy()
    long["event"] = (long["churned"].to_numpy() & (k == m[rows])).astype(int)
    return long


def bad_ticket_flag(
    long: pd.DataFrame,
    tickets: pd.DataFrame,
    *,
    window_days: int = 60,
    late_hours: float = 24.0,
    at_col: str = "month_start",
    known_at_time: bool = True,
) -> np.ndarray:
    """1 where the customer opened a *bad* ticket in the `window_days` days before ``long[at_col]``
    (exclusive of that instant): first response `late_hours` or more after opening, or not
    resolved. With ``known_at_time`` (the honest version), "not resolved" means not resolved *by*
    that instant; with False it means never resolved in the data, which uses the future."""
    tk = tickets[["customer_id", "opened_at", "first_response_at", "resolved_at"]]
    at = pd.to_datetime(long[at_col]).to_numpy()
    q = pd.DataFrame(
        {"customer_id": long["customer_id"].to_numpy(), "at": at, "i": np.arange(len(long))}
    )
    m = q.merge(tk, on="customer_id", how="inner")
    wait = pd.Timedelta(hours=late_hours)
    opened_before = (m["opened_at"] < m["at"]) & (
        m["at"] - m["opened_at"] <= pd.Timedelta(days=window_days)
    )
    late = m["first_response_at"].isna() | (m["first_response_at"] - m["opened_at"] >= wait)
    if known_at_time:
        late = late & (m["opened_at"] + wait <= m["at"])  # the wait is over by then
        unresolved = m["resolved_at"].isna() | (m["resolved_at"] > m["at"])
    else:
        unresolved = m["resolved_at"].isna()
    bad = opened_before & (late | unresolved)
    flag = np.zeros(len(long), dtype=int)
    flag[m.loc[bad.to_numpy(), "i"].to_numpy()] = 1
    return flag


def visits_drop_flag(
    long: pd.DataFrame, engagement: pd.DataFrame, *, at_col: str = "month_start"
) -> np.ndarray:
    """1 where the customer had no site visit in the calendar month before ``long[at_col]``'s
    month after at least one in the month before that (an engagement drop, known at that day:
    both months are complete). Months before the customer's first engagement row count as
    missing (never a drop)."""
    v = engagement.assign(m=periods.period_codes(engagement["month"], "M")).set_index(
        ["customer_id", "m"]
    )["site_visits"]
    cur = periods.period_codes(long[at_col], "M")
    ids = long["customer_id"].to_numpy()
    v1 = v.reindex(pd.MultiIndex.from_arrays([ids, cur - 1])).to_numpy(dtype=float)
    v2 = v.reindex(pd.MultiIndex.from_arrays([ids, cur - 2])).to_numpy(dtype=float)
    return ((v1 == 0) & (v2 > 0)).astype(int)


def latest_nps_category(
    ids: np.ndarray | pd.Series, at: np.ndarray | pd.Series, nps: pd.DataFrame
) -> np.ndarray:
    """The category of the customer's latest NPS answer strictly before `at` ("none" if no answer
    yet; :func:`helpers.stats.nps_category` otherwise): a covariate known at that instant."""
    q = pd.DataFrame(
        {
            "customer_id": np.asarray(ids),
            "at": pd.to_datetime(np.asarray(at)),
            "i": np.arange(len(ids)),
        }
    )
    r = (
        nps[["customer_id", "surveyed_at", "score"]]
        .assign(surveyed_at=lambda d: pd.to_datetime(d["surveyed_at"]))
        .sort_values("surveyed_at")
    )
    m = pd.merge_asof(q.sort_values("at"), r, left_on="at", right_on="surveyed_at",
                      by="customer_id", allow_exact_matches=False).sort_values("i")  # fmt: skip
    known = np.asarray(nps_category(m["score"].fillna(10)), dtype=str)
    return np.where(m["score"].isna(), "none", known)


# ----------------------------------------------------------------------------- early warning


def landmark_features(
    orders: pd.DataFrame,
    landmark: str | pd.Timestamp,
    *,
    churn_days: int = 90,
    min_orders: int = 2,
    tickets: pd.DataFrame | None = None,
    engagement: pd.DataFrame | None = None,
    nps: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Features known at the end of the landmark day L, for the repeat buyers who are not yet
    churned by the definition (at least `min_orders` orders, the last within `churn_days` days).
    Index ``customer_id``; columns:

    * ``recency_days`` - days from the last order to the end of L;
    * ``n_orders``, ``tenure_days`` (first order to the end of L);
    * ``usual_gap_days`` = (last - first order) / (n_orders - 1), the customer's own mean gap;
    * ``gap_ratio`` = recency_days / usual_gap_days (above 1: later than usual);
    * ``orders_trend`` = log((orders in the last 180 days + 0.5) / (orders in the 180 before + 0.5));
    * with `engagement` (monthly ``site_visits``, ``email_opens``; only months complete by L):
      ``visits_last`` (last complete month), ``visits_trend`` = log((visits_last + 0.5) /
      (mean of the 3 months before + 0.5)), ``opens_3m`` (opens in the last 3 complete months);
    * with `tickets`: ``bad_tickets_90d`` - tickets opened in the 90 days before L answered late
      (>= 24 h, known only when the 24 h are over by the end of L) or still unresolved at L;
    * with `nps`: ``nps_detractor``, ``nps_passive``, ``nps_promoter`` - indicators of the latest
      answer before L (all 0: never answered).
    """
    end = periods.as_of_end(landmark)
    o = periods.up_to(orders, landmark, "order_date")
    od = pd.to_datetime(o["order_date"])
    g = od.groupby(o["customer_id"])
    first, last, n = g.min(), g.max(), g.size()
    f = pd.DataFrame({"n_orders": n, "first": first, "last": last})
    f["recency_days"] = (end - f["last"]).dt.total_seconds() / 86_400
    f = f[(f["n_orders"] >= min_orders) & (f["recency_days"] <= churn_days)].copy()
    f["tenure_days"] = (end - f["first"]).dt.total_seconds() / 86_400
    f["usual_gap_days"] = (f["last"] - f["first"]).dt.total_seconds() / 86_400 / (f["n_orders"] - 1)
    f["gap_ratio"] = f["recency_days"] / f["usual_gap_days"].clip(lower=1.0)
    age = (end - od).dt.days
    recent = (age <= 180).groupby(o["customer_id"]).sum()
    before = ((age > 180) & (age <= 360)).groupby(o["customer_id"]).sum()
    f["orders_trend"] = np.log((recent.reindex(f.index) + 0.5) / (before.reindex(f.index) + 0.5))
    if engagement is not None:
        lastm = periods.last_complete_period(landmark, "M")
        e = engagement.assign(m=periods.period_codes(engagement["month"], "M"))
        e = e[(e["m"] <= lastm) & (e["m"] >= lastm - 3) & e["customer_id"].isin(f.index)]
        wide = e.pivot_table(index="customer_id", columns="m", values="site_visits", aggfunc="sum")
        wide = wide.reindex(index=f.index, columns=range(lastm - 3, lastm + 1))
        f["visits_last"] = wide[lastm].fillna(0).to_numpy()
        prev = wide[[lastm - 3, lastm - 2, lastm - 1]].mean(axis=1).fillna(f["visits_last"])
        f["visits_trend"] = np.log((f["visits_last"] + 0.5) / (prev + 0.5))
        opens = e[e["m"] >= lastm - 2].groupby("customer_id")["email_opens"].sum()
        f["opens_3m"] = opens.reindex(f.index, fill_value=0).to_numpy()
    if tickets is not None:
        tk = tickets[tickets["customer_id"].isin(f.index)]
        opened = pd.to_datetime(tk["opened_at"])
        recent_t = (opened < end) & (opened >= end - pd.Timedelta(days=90))
        fr = pd.to_datetime(tk["first_response_at"])
        res = pd.to_datetime(tk["resolved_at"])
        wait = pd.Timedelta(hours=24)
        # late only once the 24 h are over by the end of L (a ticket opened later is judged by
        # "unresolved" alone: its first response is the future, as in bad_ticket_flag)
        late = (fr.isna() | (fr - opened >= wait)) & (opened + wait <= end)
        unresolved = res.isna() | (res >= end)
        bad = recent_t & (late | unresolved)
        f["bad_tickets_90d"] = (
            bad.groupby(tk["customer_id"]).sum().reindex(f.index, fill_value=0).to_numpy()
        )
    if nps is not None:
        cat = latest_nps_category(f.index.to_numpy(), np.full(len(f), end), nps)
        for c in NPS_CATEGORIES:
            f[f"nps_{c}"] = (cat == c).astype(int)
    return f.drop(columns=["first", "last"])


def churn_outcome(
    orders: pd.DataFrame, landmark: str | pd.Timestamp, ids: pd.Index, churn_days: int = 90
) -> pd.Series:
    """1 if the customer has no order in the `churn_days` days after the landmark day (from the
    end of L to the end of L + churn_days): churned by the definition at L + churn_days days."""
    start = pd.DataFrame({"customer_id": ids, "at": periods.as_of_end(landmark)})
    bought = orders_after(start, orders, churn_days, at="at", closed="left")["converted"]
    return pd.Series((~bought.to_numpy()).astype(int), index=ids, name="churned")


def landmark_dataset(
    orders: pd.DataFrame, landmarks: Sequence[str | pd.Timestamp], churn_days: int = 90, **kwargs
) -> pd.DataFrame:
    """:func:`landmark_features` and :func:`churn_outcome` for each landmark, stacked (column
    ``landmark``; a customer appears once per landmark at which they qualify). The outcome of a
    landmark needs data to L + churn_days: check that it is on or before as-of."""
    parts = []
    for lm in landmarks:
        f = landmark_features(orders, lm, churn_days=churn_days, **kwargs)
        y = churn_outcome(orders, lm, f.index, churn_days)
        parts.append(f.assign(churned=y, landmark=periods.as_of_day(lm)))
    return pd.concat(parts).reset_index()


# ----------------------------------------------------------------------------- scoring


def auc_mann_whitney(y: np.ndarray | pd.Series, score: np.ndarray | pd.Series) -> float:
    """AUC = U / (n_1 n_0): the probability that a random positive scores above a random negative
    (ties count 1/2), with U the Mann-Whitney statistic from mid-ranks:
    U = sum of the positives' ranks - n_1 (n_1 + 1) / 2 (Hanley & McNeil 1982)."""
    yv = np.asarray(y, dtype=bool)
    n1, n0 = int(yv.sum()), int((~yv).sum())
    if n1 == 0 or n0 == 0:
        raise ValueError("AUC needs both outcomes")
    r = stats.rankdata(np.asarray(score, dtype=float))
    return float((r[yv].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def prob_no_purchase(fit, summary: pd.DataFrame, t: float) -> pd.Series:
    """P(X(T, T+t) = 0 | x, t_x, T): the probability that a customer makes no purchase in the next
    `t` time units (the fit's unit) under a BG/NBD or MBG/NBD `fit` (:mod:`helpers.clv`), the
    purchase model's answer to "no order in the next t": a customer either has already dropped
    out, or is alive and buys nothing, the Poisson rate's posterior being Gamma(r + x, alpha + T)
    (Fader, Hardie & Lee 2005, *Marketing Science* 24(2), the derivation of their eq. 10):

        P = (1 - P(alive)) + P(alive) ((alpha + T) / (alpha + T + t))^(r + x).

    Unlike 1 - P(alive) it is well defined for one-time buyers (P(alive) = 1 under the BG/NBD) and
    it rises with the window t. `summary` has the columns ``frequency`` x, ``recency`` t_x and
    ``T`` (:func:`helpers.segments.rfm_table`); the result is indexed like it."""
    from helpers import clv

    if t < 0:
        raise ValueError("t must be non-negative")
    alive = clv.p_alive(fit, summary).to_numpy(float)
    x = summary["frequency"].to_numpy(float)
    T = summary["T"].to_numpy(float)
    quiet = np.exp((fit.r + x) * (np.log(fit.alpha + T) - np.log(fit.alpha + T + t)))
    return pd.Series(1 - alive + alive * quiet, index=summary.index, name="p_no_purchase")


def _top_lift(y: np.ndarray, s: np.ndarray, bins: int) -> np.ndarray:
    """Top-group lift of :func:`gains_table` for each row of the (boots x n) arrays y, s."""
    n = y.shape[1]
    k = -(-n // bins)  # the first of `bins` groups holds ceil(n / bins) customers
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(y, order, axis=1).mean(axis=1)
    return top / y.mean(axis=1)


def _auc_rows(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """AUC = U / (n_1 n_0) from mid-ranks for each row of the (boots x n) arrays y, s."""
    r = stats.rankdata(s, axis=1)
    n1 = y.sum(axis=1)
    n0 = y.shape[1] - n1
    return ((r * y).sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def paired_bootstrap(
    y: np.ndarray | pd.Series,
    scores: Mapping[str, np.ndarray | pd.Series],
    *,
    reference: str,
    n_boot: int = 1000,
    level: float = 0.95,
    bins: int = 10,
    seed: int = 0,
) -> pd.DataFrame:
    """AUC, Brier score and top-group lift of several scores of the *same* customers, each with a
    percentile bootstrap interval, and the difference of each score from the `reference` score
    with the interval of that difference (Efron & Tibshirani 1993, ch. 13; a paired bootstrap:
    every resample draws customers with replacement and scores them all, so the correlation
    between the scores, which makes a difference far more precise than two separate intervals
    suggest, is kept).

    * ``auc`` = U / (n_1 n_0) (:func:`auc_mann_whitney`);
    * ``brier`` = mean (p - y)^2, lower is better; NaN for a score outside [0, 1];
    * ``lift`` = churn rate among the top ceil(n / `bins`) scores / overall churn rate
      (:func:`gains_table`'s first row).

    Returns one row per (``score``, ``metric``): ``estimate``, ``ci_low``, ``ci_high`` and
    ``diff`` = estimate - reference's estimate with ``diff_low``, ``diff_high`` (0 for the
    reference itself), and ``verdict``: "better" or "worse" than the reference when the
    difference's interval excludes 0 (for Brier, lower is better), "inconclusive" when it spans
    0, "reference", or "n/a" (no Brier score)."""
    if reference not in scores:
        raise ValueError(f"reference {reference!r} is not one of the scores {list(scores)}")
    yv = np.asarray(y, dtype=float)
    n = yv.size
    rng = np.random.default_rng(seed)
    idx = np.vstack([np.arange(n), rng.integers(0, n, size=(n_boot, n))])  # row 0: the data
    yb = yv[idx]
    keep = (yb.sum(axis=1) > 0) & (yb.sum(axis=1) < n)  # AUC needs both outcomes
    idx, yb = idx[keep], yb[keep]
    values: dict[str, dict[str, np.ndarray]] = {}
    for name, sc in scores.items():
        sv = np.asarray(sc, dtype=float)
        if sv.size != n:
            raise ValueError(f"score {name!r} has {sv.size} values for {n} outcomes")
        sb = sv[idx]
        is_prob = bool(((sv >= 0) & (sv <= 1)).all())
        values[name] = {
            "auc": _auc_rows(yb, sb),
            "brier": ((sb - yb) ** 2).mean(axis=1) if is_prob else np.full(len(yb), np.nan),
            "lift": _top_lift(yb, sb, bins),
        }
    return bootstrap_comparison(values, reference, ("brier",), level, by="score")


def delong_auc_difference(
    y: np.ndarray | pd.Series,
    score_a: np.ndarray | pd.Series,
    score_b: np.ndarray | pd.Series,
    level: float = 0.95,
) -> dict[str, float]:
    """DeLong's test of two correlated AUCs on the same customers (DeLong, DeLong &
    Clarke-Pearson 1988, *Biometrics* 44(3), 837-845; the midrank form of Sun & Xu 2014, *IEEE
    Signal Processing Letters* 21(11)). With structural components V10_i (each positive's share of
    negatives scored below it, ties 1/2) and V01_j (each negative's share of positives above it),
    Var(AUC_a - AUC_b) = c' (S10 / n_1 + S01 / n_0) c, c = (1, -1), S the covariance matrices of
    the components of the two scores. Returns auc_a, auc_b, diff = auc_a - auc_b, se, a normal
    interval ci_low / ci_high and the two-sided p_value."""
    yv = np.asarray(y, dtype=bool)
    n1, n0 = int(yv.sum()), int((~yv).sum())
    if n1 < 2 or n0 < 2:
        raise ValueError("DeLong's test needs at least two of each outcome")
    v10, v01, aucs = [], [], []
    for sc in (score_a, score_b):
        sv = np.asarray(sc, dtype=float)
        pos, neg = sv[yv], sv[~yv]
        r_all = stats.rankdata(np.r_[pos, neg])
        r_pos, r_neg = stats.rankdata(pos), stats.rankdata(neg)
        v10.append((r_all[:n1] - r_pos) / n0)  # negatives below each positive
        v01.append(1 - (r_all[n1:] - r_neg) / n1)  # positives above each negative
        aucs.append(float(v10[-1].mean()))
    s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
    c = np.array([1.0, -1.0])
    var = float(c @ (s10 / n1 + s01 / n0) @ c)
    se = float(np.sqrt(max(var, 0.0)))
    diff = aucs[0] - aucs[1]
    z = stats.norm.ppf(0.5 + level / 2)
    p = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0)
    return {"auc_a": aucs[0], "auc_b": aucs[1], "diff": diff, "se": se,
            "ci_low": diff - z * se, "ci_high": diff + z * se, "p_value": p}  # fmt: skip


def gains_table(
    y: np.ndarray | pd.Series, score: np.ndarray | pd.Series, bins: int = 10
) -> pd.DataFrame:
    """Cumulative gains and lift: customers sorted by score (highest first, ties kept in input
    order) and cut into `bins` groups of (almost) equal size. Per group: ``customers``,
    ``churners``, ``churn_rate``; cumulatively: ``share_contacted``, ``share_of_churners``
    (gains: the share of all churners caught by contacting the top groups) and ``lift`` =
    cumulative churn rate / overall churn rate (= share_of_churners / share_contacted)."""
    yv = np.asarray(y, dtype=float)
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    ys = yv[order]
    n = ys.size
    group = np.arange(n) * bins // n + 1
    t = pd.DataFrame({"group": group, "y": ys}).groupby("group")["y"].agg(["size", "sum"])
    t.columns = ["customers", "churners"]
    t["churn_rate"] = t["churners"] / t["customers"]
    t["share_contacted"] = t["customers"].cumsum() / n
    t["share_of_churners"] = t["churners"].cumsum() / yv.sum()
    t["lift"] = t["share_of_churners"] / t["share_contacted"]
    t.index.name = "group"
    return t


def calibration_table(
    y: np.ndarray | pd.Series, p: np.ndarray | pd.Series, bins: int = 10
) -> pd.DataFrame:
    """Predicted vs observed churn by group of predicted probability (equal-size groups by
    rank): ``customers``, ``predicted`` (mean p), ``observed`` (share churned) and a 95 % Wilson
    interval of the observed share. A calibrated score lies on the diagonal."""
    from statsmodels.stats.proportion import proportion_confint

    pv, yv = np.asarray(p, dtype=float), np.asarray(y, dtype=float)
    order = np.argsort(pv, kind="stable")
    group = np.empty(pv.size, dtype=int)
    group[order] = np.arange(pv.size) * bins // pv.size + 1
    t = (
        pd.DataFrame({"g": group, "p": pv, "y": yv})
        .groupby("g")
        .agg(
            customers=("y", "size"),
            predicted=("p", "mean"),
            observed=("y", "mean"),
            churners=("y", "sum"),
        )
    )
    lo, hi = proportion_confint(t["churners"], t["customers"], method="wilson")
    t["observed_low"], t["observed_high"] = lo, hi
    t.index.name = "group"
    return t.drop(columns="churners")


def score_report(
    y: np.ndarray | pd.Series, p: np.ndarray | pd.Series, bins: int = 10
) -> dict[str, float]:
    """Headline figures of a churn score on a holdout: ``auc`` (scikit-learn ``roc_auc_score``),
    ``brier`` = mean (p - y)^2 (only for probabilities; NaN if `p` leaves [0, 1]), ``base_rate``,
    ``top_decile_capture`` (share of churners in the top 1/bins of scores) and ``top_decile_lift``."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    yv, pv = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    g = gains_table(yv, pv, bins)
    is_prob = bool((pv >= 0).all() and (pv <= 1).all())
    return {
        "auc": float(roc_auc_score(yv, pv)),
        "brier": float(brier_score_loss(yv, pv)) if is_prob else float("nan"),
        "base_rate": float(yv.mean()),
        "top_decile_capture": float(g["share_of_churners"].iloc[0]),
        "top_decile_lift": float(g["lift"].iloc[0]),
    }


def contact_value(
    p_churn: np.ndarray | pd.Series,
    value_if_kept: float | np.ndarray,
    save_rate: float,
    contact_cost: float,
    came_back: float = 0.0,
) -> np.ndarray:
    """Expected value of contacting one customer: s x p (1 - b) V - c, with p the probability
    that they churn by the definition without contact, b the share of such churners who come
    back on their own anyway (`came_back`, e.g. :func:`definition_tradeoff`), so p (1 - b) V is
    the value at risk that would otherwise be lost; s the share of that loss the contact saves
    (`save_rate`, a causal effect: measure it in a randomized test), V the margin a kept customer
    brings (`value_if_kept`) and c the cost of the contact. Contact when it is positive, i.e.
    when p > c / (s (1 - b) V); customers who would stay or come back anyway are not helped."""
    if not 0 <= came_back <= 1:
        raise ValueError("came_back must be a share in [0, 1]")
    at_risk = np.asarray(p_churn, dtype=float) * (1 - came_back) * np.asarray(value_if_kept, float)
    return save_rate * at_risk - contact_cost


def engagement_before_dropout(
    engagement: pd.DataFrame,
    dropout_at: pd.Series,
    *,
    column: str = "site_visits",
    lags: Sequence[int] = (3, 2, 1),
    baseline_from: int = 6,
    level: float = 0.95,
) -> pd.DataFrame:
    """Mean engagement k months before a (known) dropout month, relative to the customer-months
    at least `baseline_from` months before it or of customers who never dropped out:
    ratio_k = mean(column at month d - k) / mean(baseline), with a delta-method interval from
    the two means' standard errors. `dropout_at` is indexed by ``customer_id`` (NaT: never).
    On the sample company the dropout is the generator's latent one (a truth file): this checks
    that engagement really falls before churn, the signal an early-warning score can use."""
    d = pd.to_datetime(dropout_at).reindex(engagement["customer_id"]).to_numpy()
    has = ~np.isnat(d)
    dm = np.where(has, periods.period_codes(np.where(has, d, np.datetime64("1970-01-01")), "M"), 0)
    rel = np.where(has, periods.period_codes(engagement["month"], "M") - dm, np.nan)
    v = engagement[column].to_numpy(float)
    base = v[~has | (rel <= -baseline_from)]
    mb, sb = base.mean(), base.std(ddof=1) / np.sqrt(base.size)
    z = stats.norm.ppf(0.5 + level / 2)
    rows = []
    for k in lags:
        x = v[rel == -k]
        m, s = x.mean(), x.std(ddof=1) / np.sqrt(x.size)
        r = m / mb
        se = r * np.sqrt((s / m) ** 2 + (sb / mb) ** 2)
        rows.append({"months_before": k, "n": x.size, "ratio": r, "ci_low": r - z * se,
                     "ci_high": r + z * se})  # fmt: skip
    return pd.DataFrame(rows).set_index("months_before")
