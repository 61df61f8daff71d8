"""Retention and churn rates: on counts, per period from an order table, and for subscriptions.

Definitions (a period is a calendar week, month or quarter):

* Retention rate on counts: ``r = (E - N) / S`` with S customers at the start, E at the end and N
  gained during the period. With ``N = 0`` it is the simple ratio end / start that retention
  playbooks quote: 352 customers at the start, 298 at the end -> 298 / 352 = 84.7 %.
* Churn rate: ``c = 1 - r``.
* From orders (non-contractual): a customer is *active* in a period if they ordered in it.
  S = active in the previous period, E = active in this one, N = active now but not in the previous
  period (first-time buyers plus reactivated ones), so E - N = customers retained from the previous
  period and 0 <= r <= 1.
* Revenue retention of the customers active in the previous period:
  net (NRR) = their revenue now / their revenue then; gross (GRR) caps each customer's revenue now
  at their revenue then, so expansion does not hide losses (GRR <= min(NRR, 1)).
* Subscriptions (contractual): S = active at the period start, E = active at the end, N = started
  during the period and still active at its end (a subscription is active at a boundary b if it
  started before b and ends after b).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import money, periods

__all__ = [
    "retention_rate",
    "churn_rate",
    "period_retention",
    "subscription_retention",
    "lifetime_value",
    "lifetime_value_uplift",
    "INDUSTRY_BENCHMARKS",
]

#: Customer-retention rates by industry as retention playbooks quote them. None of them comes with
#: a traceable study, a definition (customers, revenue, accounts) or a period, so they are
#: **unsourced** and cannot be compared with a rate of a stated period; the often-quoted
#: "retail 63 %" is left out for the same reason. Kept only to show what circulates.
INDUSTRY_BENCHMARKS = pd.DataFrame(
    {
        "industry": [
            "Media",
            "Professional services",
            "Hospitality and restaurants",
            "Retail and e-commerce",
        ],
        "quoted_retention": ["about 84 %", "about 84 %", "about 55 %", "sometimes near 30 %"],
        "period": ["not stated"] * 4,
        "source": ["playbooks, unsourced"] * 4,
    }
)


def _check_counts(start: float, end: float, new: float) -> None:
    if start <= 0:
        raise ValueError(f"customers at the start must be positive, got {start}")
    if end < 0 or new < 0:
        raise ValueError(f"counts must not be negative (end={end}, new={new})")
    if new > end:
        raise ValueError(f"new customers ({new}) cannot exceed customers at the end ({end})")
    if end - new > start:
        raise ValueError(
            f"retained customers E - N = {end - new} cannot exceed customers at the start ({start})"
        )


def retention_rate(start: float, end: float, new: float = 0) -> float:
    """Customer retention rate ``(E - N) / S`` (a share, 0-1).

    ``retention_rate(352, 298)`` is the simple ratio 298 / 352 = 0.847; pass ``new`` to exclude the
    customers gained during the period (the standard form).
    """
    _check_counts(start, end, new)
    return (end - new) / start


def churn_rate(start: float, end: float, new: float = 0) -> float:
    """Customer churn rate ``1 - (E - N) / S`` (a share, 0-1)."""
    return 1.0 - retention_rate(start, end, new)


def period_retention(
    orders: pd.DataFrame,
    freq: str = "M",
    as_of: str | pd.Timestamp | None = None,
    complete_only: bool = True,
) -> pd.DataFrame:
    """Retention, churn and revenue retention per period from an order table.

    `orders` needs ``customer_id``, ``order_date`` and ``amount``; `freq` is ``"W"``, ``"M"`` or
    ``"Q"``. Orders after the as-of day (default: the day of the last order) are ignored, and with
    `complete_only` (the censoring rule of :mod:`helpers.periods`) so is the partial period that
    contains a mid-period as-of: only periods that ended on or before as-of are returned, up to the
    last complete one (periods without any order are rows of zeros). Returns one row per period with ``customers_start`` (S),
    ``customers_end`` (E), ``new`` (first order ever), ``reactivated``, ``retained`` (E - N),
    ``retention_rate``, ``churn_rate``, ``revenue_start``, ``revenue_retained`` and
    ``net_revenue_retention``, ``gross_revenue_retention`` (NaN for the first period).
    """
    dates = orders["order_date"]
    if as_of is None:
        as_of = periods.default_as_of(dates)
    t = pd.to_datetime(dates).to_numpy("datetime64[ns]")
    keep = t < periods.as_of_end(as_of).to_datetime64()
    if not keep.any():
        raise ValueError("no orders on or before the as-of date")
    code = periods.period_codes(t[keep] if not keep.all() else t, freq)
    last = periods.last_complete_period(as_of, freq)
    if complete_only:
        if not (code <= last).any():
            raise ValueError(
                f"no complete {periods.FREQS[freq]} of orders on or before "
                f"{periods.as_of_day(as_of).date()}"
            )
        rows = np.flatnonzero(keep)
        ok = code <= last
        if not ok.all():
            rows, code = rows[ok], code[ok]
        keep = np.zeros(len(t), dtype=bool)
        keep[rows] = True
    cust, _ = periods.customer_codes(orders["customer_id"], sort=True)
    amount = orders["amount"].to_numpy(dtype=float)
    if not keep.all():
        cust, amount = cust[keep], amount[keep]
    # Per (customer, period): revenue, summed exactly (helpers.money). Keys
    # customer x width + period - lo sort by (customer id, period), the order of the outer merge
    # of this table with itself shifted by one period (the previous-period activity).
    lo_code = int(code.min())
    width = int(code.max()) - lo_code + 2  # room for the period after the last
    k_act, label, k_all, i_now, active_now, i_prev, active_prev = _activity(
        cust * width + (code - lo_code)
    )
    del cust
    s = money.scale(amount)  # the revenue summed exactly: the same in any row order (and engine)
    rev_act = money.group_sum(amount, label, len(k_act), s)
    del label
    p_all = (k_all % width).astype(np.int64)  # period - lo_code of each row
    del k_all
    n_p = width + 1
    rev_now = np.where(active_now, rev_act[i_now], 0.0)
    rev_prev = np.where(active_prev, rev_act[i_prev], np.nan)
    del i_now, i_prev
    # per period, rows in (customer id) order, as the outer merge of the activity table with
    # itself shifted by one period lists them: counts by bincount, sums exact (helpers.money)
    counts = {
        "customers_start": np.bincount(p_all[active_prev], minlength=n_p),
        "customers_end": np.bincount(p_all[active_now], minlength=n_p),
        "retained": np.bincount(p_all[active_now & active_prev], minlength=n_p),
    }
    sums = {
        "revenue_start": money.group_sum(rev_prev, p_all, n_p, s),
        "revenue_retained": money.group_sum(np.where(active_prev, rev_now, 0.0), p_all, n_p, s),
        "revenue_capped": money.group_sum(
            np.where(active_prev, np.minimum(rev_now, np.nan_to_num(rev_prev, nan=0.0)), 0.0),
            p_all,
            n_p,
            s,
        ),
    }
    # a customer's first period is the first of their (sorted) keys: new there
    c_act = k_act // width
    first_of_customer = np.r_[True, c_act[1:] != c_act[:-1]]
    new = np.bincount(k_act[first_of_customer] % width, minlength=n_p)
    per = pd.DataFrame({**counts, **sums, "new": new}, index=pd.RangeIndex(lo_code, lo_code + n_p))
    per = per[[c for c in per.columns if c != "new"] + ["new"]]
    lo = int(code.min())
    hi = last if complete_only else max(int(code.max()), last)  # periods with no orders count too
    per = per.reindex(np.arange(lo, hi + 1), fill_value=0).astype(
        {"revenue_start": float, "revenue_retained": float, "revenue_capped": float}
    )
    per = per.loc[lo:hi]
    per["reactivated"] = per["customers_end"] - per["retained"] - per["new"]
    start = per["customers_start"].where(per.index > lo)
    per["retention_rate"] = per["retained"] / start.where(start > 0)
    per["churn_rate"] = 1 - per["retention_rate"]
    rev0 = per["revenue_start"].where((per.index > lo) & (per["revenue_start"] > 0))
    per["net_revenue_retention"] = per["revenue_retained"] / rev0
    per["gross_revenue_retention"] = per["revenue_capped"] / rev0
    per.index = periods.period_index(per.index, freq)
    cols = ["customers_start", "customers_end", "new", "reactivated", "retained", "retention_rate", "churn_rate",
            "revenue_start", "revenue_retained", "net_revenue_retention", "gross_revenue_retention"]  # fmt: skip
    return per[cols].astype(
        {c: "int64" for c in ["customers_start", "customers_end", "new", "reactivated", "retained"]}
    )


def _activity(key: np.ndarray) -> tuple[np.ndarray, ...]:
    """The (customer, period) activity table from the orders' keys c x width + p: the sorted
    distinct keys, each order's label (its key's position among them), the union of the keys with
    the keys one period later (sorted: the outer merge's order), and for each union row the
    position of its key and of the previous period's key, and whether they are present."""
    k_act, label = np.unique(key, return_inverse=True)
    label = label.reshape(-1)
    k_all = np.concatenate([k_act, k_act + 1])  # two sorted runs: a merge
    k_all.sort(kind="stable")
    k_all = k_all[np.r_[True, k_all[1:] != k_all[:-1]]]
    last = len(k_act) - 1
    i_now = np.minimum(np.searchsorted(k_act, k_all), last)
    i_prev = np.minimum(np.searchsorted(k_act, k_all - 1), last)
    return (k_act, label, k_all, i_now, k_act[i_now] == k_all, i_prev,
            k_act[i_prev] == k_all - 1)  # fmt: skip


def subscription_retention(
    subscriptions: pd.DataFrame, freq: str = "M", as_of: str | pd.Timestamp | None = None
) -> pd.DataFrame:
    """Contractual retention per period from a subscription table.

    `subscriptions` needs ``start_date`` and ``end_date`` (NaT while active). Returns per period
    ``customers_start`` (active at the start), ``customers_end`` (active at the end), ``new``
    (started in the period and active at its end), ``retained`` (E - N), ``churned``,
    ``retention_rate`` and ``churn_rate``.
    """
    s = subscriptions
    as_of = periods.as_of_day(as_of if as_of is not None else s["start_date"].max())
    start = s["start_date"]
    end = s["end_date"].fillna(pd.Timestamp.max)
    pidx = periods.complete_periods(start.min(), as_of, freq)  # ended on or before as-of
    p_start = pidx.start_time.to_numpy()
    p_end = (pidx.end_time + pd.Timedelta(1, "ns")).to_numpy()  # exclusive
    st = start.to_numpy()[:, None]
    en = end.to_numpy()[:, None]
    # active at a period boundary b: started before b and not ended by b (so E of one period is
    # S of the next; one that starts exactly at b is new in the period b opens)
    at_start = (st < p_start) & (en > p_start)
    at_end = (st < p_end) & (en > p_end)
    new = (st >= p_start) & at_end
    out = pd.DataFrame(
        {
            "customers_start": at_start.sum(axis=0),
            "customers_end": at_end.sum(axis=0),
            "new": new.sum(axis=0),
        },
        index=pd.PeriodIndex(pidx, name="period"),
    )
    out["retained"] = (at_start & at_end).sum(axis=0)
    out["churned"] = out["customers_start"] - out["retained"]
    out["retention_rate"] = out["retained"] / out["customers_start"].where(
        out["customers_start"] > 0
    )
    out["churn_rate"] = 1 - out["retention_rate"]
    return out


def lifetime_value(
    margin: float | np.ndarray, retention: float | np.ndarray, discount_rate: float | np.ndarray
) -> float | np.ndarray:
    """Expected discounted margin of a customer with constant retention ``r`` per period:
    ``CLV = m * r / (1 + d - r)`` (margin m per period, paid at the end of each period survived,
    discount rate d per period). Gupta & Lehmann (2003), "Customers as assets"."""
    r = np.asarray(retention, dtype=float)
    if np.any((r < 0) | (r >= 1 + np.asarray(discount_rate))):
        raise ValueError("retention must be in [0, 1 + discount_rate)")
    return np.asarray(margin) * r / (1 + np.asarray(discount_rate) - r)


def lifetime_value_uplift(
    retention: float | np.ndarray, gain: float, discount_rate: float
) -> float | np.ndarray:
    """Relative change in the CLV of one customer when retention rises by `gain` points:
    ``CLV(r + gain) / CLV(r) - 1``; independent of the margin. It is a change in customer value,
    not in the firm's profit (which also carries acquisition and fixed costs)."""
    r = np.asarray(retention, dtype=float)
    return lifetime_value(1.0, r + gain, discount_rate) / lifetime_value(1.0, r, discount_rate) - 1
