"""Statistics more than one topic uses: the NPS category of a score, the difference of two
proportions with a named interval method, and the orders a customer placed in a window after an
event.

One implementation each, imported by :mod:`helpers.churn`, :mod:`helpers.feedback`,
:mod:`helpers.experiments` and :mod:`helpers.loyalty` (and the notebooks). Vectorized: numpy,
one merge and one group-by; no loop over rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

__all__ = [
    "NPS_CATEGORIES",
    "nps_scores",
    "nps_category",
    "PROPORTION_METHODS",
    "proportion_difference",
    "orders_after",
    "srm_check",
    "bootstrap_comparison",
]

#: The three NPS categories in their natural order (Reichheld 2003).
NPS_CATEGORIES: tuple[str, str, str] = ("detractor", "passive", "promoter")
#: The interval methods of :func:`proportion_difference`.
PROPORTION_METHODS: tuple[str, str] = ("newcombe", "wald")
_STATSMODELS_METHOD = {"newcombe": "newcomb", "wald": "wald"}


# --------------------------------------------------------------------------------------------
# NPS categories
# --------------------------------------------------------------------------------------------
def nps_scores(scores: Iterable[float] | pd.Series | np.ndarray) -> np.ndarray:
    """0-10 "would you recommend" scores as an integer array, or a ValueError that says what is
    wrong and where (empty, not a number, missing, or not a whole number from 0 to 10)."""
    s = pd.Series(scores) if not isinstance(scores, pd.Series) else scores
    if len(s) == 0:
        raise ValueError("no scores: the NPS of an empty sample is undefined")
    values = pd.to_numeric(s, errors="coerce")
    bad_type = values.isna() & s.notna()
    if bad_type.any():
        raise ValueError(
            f"{int(bad_type.sum())} score(s) are not numbers (e.g. {s[bad_type].iloc[0]!r})"
        )
    missing = values.isna()
    if missing.any():
        raise ValueError(
            f"{int(missing.sum())} of {len(s)} scores are missing; drop the non-responses "
            "explicitly (they are not detractors) or weight for them (weighted_nps)"
        )
    v = values.to_numpy(float)
    out_of_range = (v < 0) | (v > 10) | (v != np.round(v))
    if out_of_range.any():
        raise ValueError(
            f"{int(out_of_range.sum())} score(s) are not whole numbers from 0 to 10 "
            f"(e.g. {v[out_of_range][0]:g})"
        )
    return v.astype(np.int64)


def nps_category(scores: Iterable[float] | pd.Series | np.ndarray) -> pd.Categorical:
    """Detractor (0-6), passive (7-8) or promoter (9-10) for each 0-10 score, as a categorical
    with the categories in :data:`NPS_CATEGORIES` order (F. F. Reichheld (2003), "The one number
    you need to grow", *Harvard Business Review* 81(12)). Scores are checked by
    :func:`nps_scores`: a missing score is an error, not a detractor."""
    v = nps_scores(scores)
    codes = np.where(v >= 9, 2, np.where(v >= 7, 1, 0))
    return pd.Categorical.from_codes(codes, categories=list(NPS_CATEGORIES))


# --------------------------------------------------------------------------------------------
# The difference of two proportions
# --------------------------------------------------------------------------------------------
def proportion_difference(
    y_treat: Iterable[float] | pd.Series | np.ndarray,
    y_control: Iterable[float] | pd.Series | np.ndarray,
    *,
    method: Literal["newcombe", "wald"] = "newcombe",
    confidence: float = 0.95,
) -> dict[str, float]:
    """Difference of two proportions d = p_t - p_c (a randomized experiment's effect on a 0/1
    outcome; treatment minus control) with a two-sided interval at level `confidence`:

    * ``"newcombe"``: Newcombe's hybrid score interval (method 10 of R. G. Newcombe (1998),
      "Interval estimation for the difference between independent proportions: comparison of
      eleven methods", *Statistics in Medicine* 17(8), 873-890): with (l_i, u_i) the Wilson
      score interval of p_i, d - sqrt((p_t - l_t)^2 + (u_c - p_c)^2) to
      d + sqrt((u_t - p_t)^2 + (p_c - l_c)^2). Good coverage even for small n or p near 0 or 1.
      Newcombe's example: 56/70 vs 48/80 gives 0.2000 (0.0524 to 0.3339).
    * ``"wald"``: d +- z sqrt(p_t (1 - p_t) / n_t + p_c (1 - p_c) / n_c) (method 1 of the same
      paper; 0.0575 to 0.3425 in the example), z = Phi^-1(1/2 + confidence/2).

    Both come from ``statsmodels.stats.proportion.confint_proportions_2indep``. ``p_value`` is
    the pooled two-proportion z test's (``proportions_ztest``), the same for either method
    (NaN when every unit has the same outcome).
    Returns ``estimate``, ``ci_low``, ``ci_high``, ``p_value``, ``p_treat``, ``p_control``,
    ``n_treat``, ``n_control``."""
    if method not in PROPORTION_METHODS:
        raise ValueError(f"method must be one of {PROPORTION_METHODS}, got {method!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    yt, yc = np.asarray(y_treat, dtype=float), np.asarray(y_control, dtype=float)
    if yt.size == 0 or yc.size == 0:
        raise ValueError("both groups need at least one unit")
    ct, cc = yt.sum(), yc.sum()
    lo, hi = confint_proportions_2indep(
        ct, yt.size, cc, yc.size, method=_STATSMODELS_METHOD[method], compare="diff",
        alpha=1 - confidence,
    )  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):  # p_value NaN: all 0 or all 1
        _, p_value = proportions_ztest(np.array([ct, cc]), np.array([yt.size, yc.size]))
    pt, pc = ct / yt.size, cc / yc.size
    return {
        "estimate": float(pt - pc), "ci_low": float(lo), "ci_high": float(hi),
        "p_value": float(p_value), "p_treat": float(pt), "p_control": float(pc),
        "n_treat": int(yt.size), "n_control": int(yc.size),
    }  # fmt: skip


# --------------------------------------------------------------------------------------------
# Orders in a window after an event
# --------------------------------------------------------------------------------------------
def orders_after(
    events: pd.DataFrame,
    orders: pd.DataFrame,
    days: float,
    *,
    at: str,
    closed: Literal["right", "left", "both"] = "right",
    values: Sequence[str] = (),
) -> pd.DataFrame:
    """The orders each event was followed by. An event (a send, an offer, a survey answer, a
    landmark day ...) is a row of `events` with ``customer_id`` and a time column `at`; its
    window is, with t = `at` and w = `days` days (``closed`` as in ``pandas.Interval``):

    * ``"right"`` (default): t < order_date <= t + w (an order at the event's instant is not
      "after" it);
    * ``"both"``: t <= order_date <= t + w (e.g. a send dated at midnight of its day);
    * ``"left"``: t <= order_date < t + w (e.g. t = the end of a landmark day, exclusive).

    Returns a frame aligned with `events` (same index and order):

    * ``orders`` - the number of the customer's orders in the window (int);
    * ``converted`` - at least one (bool);
    * ``next_order_at`` - the customer's first order on the window's start side of t
      (``order_date > t``, or ``>= t`` when the start is closed), inside the window or later
      (NaT if none in `orders`): with ``orders`` cut at an as-of day, the time to a next order
      or the censoring point;
    * one column per name in `values`: the sum of that column of `orders` over the window
      (0 when there is none).

    `orders` is taken as given: cut it at as-of first (``periods.up_to``) when later rows must
    not count. Vectorized: one merge on ``customer_id``, one filter, one group-by."""
    if closed not in ("right", "left", "both"):
        raise ValueError(f"closed must be 'right', 'left' or 'both', got {closed!r}")
    missing = [c for c in ("customer_id", "order_date", *values) if c not in orders]
    if missing:
        raise ValueError(f"orders lack the column(s) {missing}")
    e = pd.DataFrame(
        {
            "customer_id": events["customer_id"].to_numpy(),
            "_t": pd.to_datetime(events[at]).to_numpy(),
        }
    )
    e["_row"] = np.arange(len(e))
    o = orders[["customer_id", "order_date", *values]]
    m = e.merge(o, on="customer_id", how="inner")
    od = pd.to_datetime(m["order_date"])
    after = (od >= m["_t"]) if closed in ("left", "both") else (od > m["_t"])
    stop = m["_t"] + pd.Timedelta(days=days)
    before = (od < stop) if closed == "left" else (od <= stop)
    first = od[after].groupby(m.loc[after, "_row"]).min()
    w = m[after & before]
    g = w.groupby("_row").agg(orders=("customer_id", "size"), **{v: (v, "sum") for v in values})
    out = g.reindex(np.arange(len(e)), fill_value=0)
    out["orders"] = out["orders"].astype(int)
    out["converted"] = out["orders"] > 0
    out["next_order_at"] = first.reindex(np.arange(len(e))).to_numpy()
    out.index = events.index
    return out[["orders", "converted", "next_order_at", *values]]


# --------------------------------------------------------------------------------------------
# Experiment hygiene
# --------------------------------------------------------------------------------------------
def srm_check(
    observed: Sequence[int] | np.ndarray | pd.Series,
    planned: Sequence[float] | np.ndarray | pd.Series,
    alpha: float = 0.0005,
) -> dict[str, float | bool]:
    """Sample-ratio-mismatch test of a randomized split: Pearson's chi-square goodness of fit of
    the observed arm sizes n_i against the designed shares s_i (normalized to sum to 1),

        chi2 = sum_i (n_i - N s_i)^2 / (N s_i),  df = arms - 1,  N = sum_i n_i

    (A. Fabijan et al. (2019), "Diagnosing sample ratio mismatch in online controlled
    experiments", KDD; platforms alert at p < 0.0005, the default `alpha`). A mismatch means the
    assignment or the logging lost units unevenly, which invalidates the comparison whatever its
    p-value. Returns ``chi2``, ``df``, ``p_value``, ``n``, the observed share of the first arm
    and its planned share, and ``mismatch`` (p < `alpha`)."""
    from scipy import stats

    n_obs = np.asarray(observed, dtype=float)
    share = np.asarray(planned, dtype=float)
    if n_obs.shape != share.shape or n_obs.size < 2:
        raise ValueError("observed and planned need one entry per arm, at least two arms")
    if (share <= 0).any() or (n_obs < 0).any() or n_obs.sum() <= 0:
        raise ValueError("planned shares must be positive and counts non-negative")
    share = share / share.sum()
    total = float(n_obs.sum())
    chi2, p = stats.chisquare(n_obs, total * share)
    return {
        "chi2": float(chi2), "df": int(n_obs.size - 1), "p_value": float(p), "n": int(total),
        "observed_share": float(n_obs[0] / total), "planned_share": float(share[0]),
        "mismatch": bool(p < alpha),
    }  # fmt: skip


# --------------------------------------------------------------------------------------------
# Paired-bootstrap comparison of models against a reference
# --------------------------------------------------------------------------------------------
def bootstrap_comparison(
    values: dict[str, dict[str, np.ndarray]],
    reference: str,
    lower_is_better: Sequence[str] = (),
    level: float = 0.95,
    by: str = "model",
) -> pd.DataFrame:
    """The table of a paired bootstrap: `values[name][metric]` holds the metric on the data
    (element 0) and on each bootstrap draw of the *same* units (the rest), for every model or
    score `name`. Percentile intervals (B. Efron & R. Tibshirani (1993), *An Introduction to the
    Bootstrap*, ch. 13) of each estimate and of its difference from the `reference`, computed
    draw by draw so the pairing cancels what the models share.

    One row per (`by`, ``metric``): ``estimate``, ``ci_low``, ``ci_high``, ``diff`` (estimate -
    reference's), ``diff_low``, ``diff_high`` and ``verdict``: "better" or "worse" than the
    reference when the difference's interval excludes 0 (a metric in `lower_is_better`, such as
    a Brier score, is better when lower), "inconclusive" when it spans 0, "reference" for the
    reference, "n/a" when the metric could not be computed (non-finite values)."""
    q = [(1 - level) / 2, (1 + level) / 2]
    low_better = set(lower_is_better)
    rows = []
    for name, by_metric in values.items():
        for metric, v in by_metric.items():
            v = np.asarray(v, dtype=float)
            d = v - np.asarray(values[reference][metric], dtype=float)
            lo, hi = np.quantile(v[1:], q) if np.isfinite(v).all() else (np.nan, np.nan)
            dlo, dhi = np.quantile(d[1:], q) if np.isfinite(d).all() else (np.nan, np.nan)
            sign = -1.0 if metric in low_better else 1.0
            if name == reference:
                verdict = "reference"
            elif not (np.isfinite(dlo) and np.isfinite(dhi)):
                verdict = "n/a"
            elif min(sign * dlo, sign * dhi) > 0:
                verdict = "better"
            elif max(sign * dlo, sign * dhi) < 0:
                verdict = "worse"
            else:
                verdict = "inconclusive"
            rows.append({by: name, "metric": metric, "estimate": v[0], "ci_low": lo,
                         "ci_high": hi, "diff": d[0], "diff_low": dlo, "diff_high": dhi,
                         "verdict": verdict})  # fmt: skip
    return pd.DataFrame(rows).set_index([by, "metric"])
