"""Acquisition cohorts and retention curves from an order log (non-contractual retention).

A customer's *cohort* is the period of their first order; their *age* in a later period is the
number of periods since that first one (0 = the acquisition period). Every function takes an order
table with ``customer_id`` and ``order_date`` (column names can be changed) and works on integer
period codes with numpy/pandas (factorize, bincount, reshape), never looping over customers or
orders, so 10 million orders take seconds.

Right censoring follows :mod:`helpers.periods`: the last observed period ``P`` is the last one that
has *ended on or before* the as-of day (a period that contains a mid-period as-of is partial and not
observed: its missing days would read as churn). The cell (cohort c, age k) is observed only if
``c + k <= P``; unobserved cells are ``NaN``, never 0. Customers acquired after ``P`` have no
complete cohort yet and are left out of the cohort tables.

Three kinds of retention curve, as product-analytics tools offer them (e.g. Amplitude's
"N-day", "unbounded" and "bracket" retention):

* ``n_period``: share of the cohort active (>= 1 order) in exactly period n;
* ``unbounded``: share active in period n *or later* (up to as-of) - never rises with n;
* brackets: share active at least once within custom day ranges since the first order
  (e.g. days 1-7, 8-30, 31-90); a customer counts only if the whole bracket is observed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from helpers import periods
from helpers.periods import FREQS, period_codes

__all__ = [
    "FREQS",
    "cohort_table",
    "retention_matrix",
    "average_curve",
    "bracket_retention",
    "revenue_table",
    "DEFAULT_BRACKETS",
    "sampling_band",
    "value_by_age",
    "payback_age",
    "payback_table",
    "spend_by_tenure",
    "CURVES",
    "fit_survival_curves",
]

DEFAULT_BRACKETS: tuple[tuple[int, int], ...] = ((1, 7), (8, 30), (31, 90), (91, 180), (181, 365))
_NS_PER_DAY = 86_400 * 10**9


def _prepare(
    orders: pd.DataFrame,
    freq: str,
    as_of: str | pd.Timestamp | None,
    customer_col: str,
    date_col: str,
    extra_cols: Sequence[str] = (),
    observed_only: bool = True,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, int, pd.Timestamp, np.ndarray]:
    """Orders up to as-of with per-order customer code and period, per-customer first period.

    Returns (orders kept, customer code per order, period per order, first period per customer,
    last complete period (the censoring rule of :mod:`helpers.periods`), as-of end timestamp
    (exclusive), customer id per customer code)."""
    missing = {customer_col, date_col, *extra_cols} - set(orders.columns)
    if missing:
        raise ValueError(f"orders has no column(s) {sorted(missing)}")
    dates = orders[date_col]
    if as_of is None:
        as_of = periods.default_as_of(dates)  # the day of the last order
    end_excl = periods.as_of_end(as_of)  # a date-only as-of means "up to the end of that day"
    keep = (dates < end_excl).to_numpy()
    if not keep.all():  # copy only the columns the caller needs
        orders = orders.loc[keep, [customer_col, date_col, *extra_cols]]
        dates = orders[date_col]
    if len(orders) == 0:
        raise ValueError(f"no orders on or before as-of {periods.as_of_day(as_of).date()}")
    p = period_codes(dates, freq)
    last_period = periods.last_complete_period(as_of, freq)
    if observed_only and p.size and p.max() > last_period:
        # orders in the partial period after the last complete one are not observed yet
        keep = p <= last_period
        orders, p = orders.loc[keep, [customer_col, date_col, *extra_cols]], p[keep]
        if len(orders) == 0:
            raise ValueError(
                f"no complete {FREQS[freq]} of orders on or before as-of "
                f"{periods.as_of_day(as_of).date()}"
            )
    cust, ids = _customer_codes(orders[customer_col])
    first = _group_min(p, cust, len(ids))
    return orders, cust, p, first, last_period, end_excl, ids


def _customer_codes(customer: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..C-1 per row and the customer id per code (:func:`helpers.periods.customer_codes`,
    unsorted: integer ids in a compact range used directly, categoricals by their codes, any
    other ids hash-factorized)."""
    return periods.customer_codes(customer, sort=False)


def _group_min(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Minimum of `values` per group code 0..G-1 (unbuffered ufunc.at, vectorized)."""
    out = np.full(n_groups, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(out, groups, values)
    return out


def _group_max(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    out = np.full(n_groups, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(out, groups, values)
    return out


def _distinct(keys: np.ndarray, size: int) -> np.ndarray:
    """The distinct values of non-negative integer `keys` < `size`: a bitmap when it fits in
    ~300 MB (linear time), a hash table otherwise."""
    if size <= 300_000_000:
        seen = np.zeros(size, dtype=bool)
        seen[keys] = True
        return np.flatnonzero(seen)
    return pd.unique(keys)


def _row_keys(
    first: np.ndarray, freq: str, ids: np.ndarray, by: pd.Series | None = None
) -> tuple[np.ndarray, pd.Index]:
    """Row code per customer (cohort, or segment x cohort) and the matching row index;
    `first` = first period per customer code, `ids` = customer id per customer code."""
    c0 = first.min()
    cohort_idx = first - c0
    n_cohorts = int(cohort_idx.max()) + 1
    pidx = pd.PeriodIndex.from_ordinals(np.arange(c0, c0 + n_cohorts), freq=freq)
    if by is None:
        return cohort_idx, pd.Index(pidx, name="cohort")
    seg = pd.Series(by).reindex(ids)
    seg_code, seg_labels = pd.factorize(
        seg.astype(object).fillna("(missing)").to_numpy(), sort=True
    )
    row = seg_code.astype(np.int64) * n_cohorts + cohort_idx
    index = pd.MultiIndex.from_product(
        [pd.Index(seg_labels, name=by.name or "segment"), pd.Index(pidx, name="cohort")]
    )
    return row, index


def cohort_table(
    orders: pd.DataFrame,
    freq: str = "M",
    as_of: str | pd.Timestamp | None = None,
    *,
    kind: str = "n_period",
    by: pd.Series | None = None,
    customer_col: str = "customer_id",
    date_col: str = "order_date",
) -> pd.DataFrame:
    """Acquisition cohort x age (periods since the first order) -> number of customers.

    ``kind="n_period"``: customers of the cohort with at least one order in period ``age``;
    ``kind="unbounded"``: customers with an order in period ``age`` or any later period.
    Column 0 is the cohort size. Orders after ``as_of`` (default: the last order) are ignored and
    cells not yet observed (cohort + age > as-of period) are NaN. ``by``: an optional Series
    customer_id -> segment (e.g. acquisition channel); rows are then (segment, cohort).

    Returns a float DataFrame: index ``cohort`` (PeriodIndex) or (segment, cohort), columns
    ``age`` 0..K; ``attrs`` holds ``freq`` and ``kind``.
    """
    if kind not in ("n_period", "unbounded"):
        raise ValueError("kind must be 'n_period' or 'unbounded'")
    orders, cust, p, first, last_period, _, ids = _prepare(
        orders, freq, as_of, customer_col, date_col
    )
    row, index = _row_keys(first, freq, ids, by)
    n_rows = len(index)
    n_ages = int(last_period - first.min()) + 1
    age = p - np.take(first, cust)
    if kind == "n_period":
        # one count per distinct (customer, age): hash-deduplicate the combined key
        key = _distinct(cust * n_ages + age, len(ids) * n_ages)
        cell = np.take(row, key // n_ages) * n_ages + key % n_ages
        counts = np.bincount(cell, minlength=n_rows * n_ages).reshape(n_rows, n_ages).astype(float)
    else:
        last_age = _group_max(age, cust, len(ids))
        counts = np.bincount(row * n_ages + last_age, minlength=n_rows * n_ages).reshape(
            n_rows, n_ages
        )
        counts = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1].astype(float)  # active at age >= n
    counts = _censor(counts, index, last_period)
    sizes = counts[:, 0]
    out = pd.DataFrame(
        counts[sizes > 0], index=index[sizes > 0], columns=pd.RangeIndex(n_ages, name="age")
    )
    out.attrs.update(freq=freq, kind=kind)
    return out


def _censor(values: np.ndarray, index: pd.Index, last_period: int) -> np.ndarray:
    """Set cells with cohort + age > last observed period to NaN (right censoring)."""
    cohorts = index.get_level_values("cohort") if isinstance(index, pd.MultiIndex) else index
    max_age = last_period - cohorts.asi8
    ages = np.arange(values.shape[1])
    values = values.astype(float)
    values[ages[None, :] > max_age[:, None]] = np.nan
    return values


def retention_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """Shares of the cohort: each row of a :func:`cohort_table` divided by its age-0 size."""
    out = table.div(table[0], axis=0)
    out.attrs.update(table.attrs)
    return out


def average_curve(table: pd.DataFrame, min_cohorts: int = 1) -> pd.Series | pd.DataFrame:
    """Retention curve across cohorts weighted by cohort size:

        R(n) = sum_c active(c, n) / sum_c size(c)   over the cohorts c that are observed at age n

    i.e. the pooled share of all customers old enough to be seen at age n (a plain mean of the
    cohort percentages would give a tiny cohort the weight of a large one). Ages seen by fewer
    than ``min_cohorts`` cohorts are NaN. For a segmented table (rows segment x cohort) returns
    a DataFrame age x segment.
    """
    observed = table.notna()
    if isinstance(table.index, pd.MultiIndex):
        level = table.index.names[0]
        num = table.fillna(0).groupby(level=level, sort=False).sum()
        den = observed.mul(table[0], axis=0).groupby(level=level, sort=False).sum()
        k = observed.groupby(level=level, sort=False).sum()
        out = (num / den).where(k >= min_cohorts).T
        out.columns.name = level
        return out
    num = table.fillna(0).sum()
    den = observed.mul(table[0], axis=0).sum()
    out = (num / den).where(observed.sum() >= min_cohorts)
    out.name = "retention"
    return out


def bracket_retention(
    orders: pd.DataFrame,
    brackets: Sequence[tuple[int, int]] = DEFAULT_BRACKETS,
    freq: str | None = "M",
    as_of: str | pd.Timestamp | None = None,
    *,
    customer_col: str = "customer_id",
    date_col: str = "order_date",
) -> pd.DataFrame | pd.Series:
    """Bracketed retention: share of customers with at least one order within each range of days
    since their first order, e.g. ``(1, 7)`` = days 1 to 7 (day 0 = the first order's day,
    days = whole 24 h periods since the first order). Only customers whose whole bracket has ended
    on or before the as-of day count (eligible: first order + hi + 1 days <= end of as-of), the
    censoring rule of :mod:`helpers.periods` at the level of days; per cohort, only complete
    cohort periods are shown.

    ``freq`` ("D", "W", "M", "Q"): one row per acquisition cohort (NaN where nobody is eligible);
    ``freq=None``: one pooled share per bracket (the cohort-size-weighted average).
    Brackets must not overlap; labels are "lo-hi".
    """
    br = np.array(sorted(brackets), dtype=np.int64).reshape(-1, 2)
    if np.any(br[:, 0] > br[:, 1]) or np.any(br[1:, 0] <= br[:-1, 1]) or np.any(br < 0):
        raise ValueError("brackets must be non-overlapping (lo, hi) day ranges with 0 <= lo <= hi")
    orders, cust, _, _, last_period, end_excl, ids = _prepare(
        orders, freq or "M", as_of, customer_col, date_col, observed_only=False
    )
    t = np.asarray(orders[date_col], dtype="datetime64[ns]").astype(np.int64)
    first_t = _group_min(t, cust, len(ids))
    day = (t - np.take(first_t, cust)) // _NS_PER_DAY
    b = np.searchsorted(br[:, 0], day, side="right") - 1
    inside = (b >= 0) & (day <= br[np.maximum(b, 0), 1])
    n_b = len(br)
    # eligible[customer, bracket]: the whole bracket observed
    horizon = (end_excl.value - first_t) // _NS_PER_DAY  # whole days observed after day 0
    eligible = horizon[:, None] >= br[None, :, 1] + 1
    key = _distinct(cust[inside] * n_b + b[inside], len(ids) * n_b)
    key = key[eligible[key // n_b, key % n_b]]
    labels = pd.Index([f"{lo}-{hi}" for lo, hi in br], name="days")
    if freq is None:
        retained = np.bincount(key % n_b, minlength=n_b)
        base = eligible.sum(axis=0)
        return pd.Series(
            np.where(base > 0, retained / np.maximum(base, 1), np.nan),
            index=labels,
            name="retention",
        )
    first_p = period_codes(first_t.astype("datetime64[ns]"), freq)
    row, index = _row_keys(first_p, freq, ids)
    n_rows = len(index)
    retained = np.bincount(
        np.take(row, key // n_b) * n_b + key % n_b, minlength=n_rows * n_b
    ).reshape(n_rows, n_b)
    base = np.stack(
        [np.bincount(row, weights=eligible[:, j], minlength=n_rows) for j in range(n_b)], axis=1
    )
    sizes = np.bincount(row, minlength=n_rows)
    show = (sizes > 0) & (index.asi8 <= last_period)  # complete cohorts only, as in cohort_table
    share = np.where(base > 0, retained / np.maximum(base, 1), np.nan)
    return pd.DataFrame(share[show], index=index[show], columns=labels)


def revenue_table(
    orders: pd.DataFrame,
    freq: str = "M",
    as_of: str | pd.Timestamp | None = None,
    *,
    value_col: str = "amount",
    cumulative: bool = True,
    per_customer: bool = True,
    customer_col: str = "customer_id",
    date_col: str = "order_date",
) -> pd.DataFrame:
    """Revenue cohorts: cohort x age -> revenue (``value_col``, e.g. EUR net of discount) of the
    cohort's customers in that period; cumulative over ages and divided by the cohort size by
    default (cumulative revenue per acquired customer, the cohort's average value so far).
    Unobserved cells are NaN."""
    orders, cust, p, first, last_period, _, ids = _prepare(
        orders, freq, as_of, customer_col, date_col, [value_col]
    )
    row, index = _row_keys(first, freq, ids)
    n_rows, n_ages = len(index), int(last_period - first.min()) + 1
    cell = np.take(row, cust) * n_ages + (p - np.take(first, cust))
    value = np.asarray(orders[value_col], dtype=float)
    rev = np.bincount(cell, weights=value, minlength=n_rows * n_ages).reshape(n_rows, n_ages)
    if cumulative:
        rev = np.cumsum(rev, axis=1)
    sizes = np.bincount(row, minlength=n_rows).astype(float)
    if per_customer:
        rev = rev / np.maximum(sizes, 1)[:, None]
    rev = _censor(rev, index, last_period)
    out = pd.DataFrame(
        rev[sizes > 0], index=index[sizes > 0], columns=pd.RangeIndex(n_ages, name="age")
    )
    out.attrs.update(freq=freq, kind="revenue")
    return out


def sampling_band(table: pd.DataFrame, age: int, level: float = 0.95) -> pd.DataFrame:
    """How much cohorts differ at one age by sampling noise alone.

    If every customer of every cohort came back at age `age` with the same probability p (the
    pooled share, :func:`average_curve`), cohort c's share would be Binomial(n_c, p) / n_c, with
    standard error sqrt(p (1 - p) / n_c). Returns per observed cohort: ``size`` n_c, ``share``,
    ``pooled`` p, and the ``low``/``high`` limits p -/+ z sqrt(p (1 - p) / n_c) (a funnel: about
    1 - `level` of the cohorts fall outside by chance). ``attrs``: ``chi2``, ``dof`` and
    ``p_value`` of Pearson's chi-square test of equal shares across the cohorts
    (``scipy.stats.chi2_contingency`` on the retained / not retained counts)."""
    from scipy import stats

    col = table[age].dropna()
    size = table.loc[col.index, 0].astype(float)
    p = float(col.sum() / size.sum())
    z = stats.norm.ppf(0.5 + level / 2)
    se = np.sqrt(p * (1 - p) / size)
    out = pd.DataFrame(
        {"size": size, "share": col / size, "pooled": p, "low": p - z * se, "high": p + z * se}
    )
    counts = np.column_stack([col.to_numpy(), (size - col).to_numpy()])
    chi2, p_value, dof, _ = stats.chi2_contingency(counts, correction=False)
    out.attrs.update(chi2=float(chi2), dof=int(dof), p_value=float(p_value), level=level)
    return out


def value_by_age(
    flows: pd.DataFrame,
    start: pd.Series,
    as_of: str | pd.Timestamp,
    *,
    by: pd.Series | None = None,
    monthly_discount_rate: float = 0.0,
    max_age: int | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Cumulative value per acquired customer by month of age, pooled over cohorts, per group.

    `flows`: dated money events (``customer_id``, ``date``, ``value``; e.g.
    :func:`helpers.economics.cash_flows`); `start`: customer_id -> acquisition date (every
    acquired customer counts, also those who never bought); `by`: customer_id -> group (e.g.
    acquisition channel; default one group ``"all"``). A customer's age of an event is the
    number of calendar months from the acquisition month (0 = that month); the value of age k
    is discounted by (1 + d)^-k. For age k, only customers observed to the end of age k count
    (acquisition month + k <= the last complete month, :func:`helpers.periods.last_complete_period`):

        V_g(k) = mean over customers i of group g observed at k of sum_{j<=k} value_ij (1+d)^-j.

    Returns a long DataFrame: ``group``, ``age``, ``customers`` (observed at that age),
    ``value`` V_g(k), ``se`` (standard error of that mean across customers) and the normal
    ``ci_low``/``ci_high`` at `level`."""
    from scipy import stats

    last = periods.last_complete_period(as_of, "M")
    ids = start.index.to_numpy()
    first = periods.period_codes(pd.to_datetime(start).to_numpy(), "M")
    keep = first <= last
    ids, first = ids[keep], first[keep]
    n_ages = int(last - first.min()) + 1 if max_age is None else max_age + 1
    pos = pd.Index(ids).get_indexer(flows["customer_id"].to_numpy())
    f = flows.loc[pos >= 0]
    pos = pos[pos >= 0]
    age = periods.period_codes(pd.to_datetime(f["date"]).to_numpy(), "M") - first[pos]
    ok = (age >= 0) & (age < n_ages) & (first[pos] + age <= last)
    disc = (1.0 + monthly_discount_rate) ** -age[ok].astype(float)
    cells = np.bincount(
        pos[ok] * n_ages + age[ok],
        weights=f["value"].to_numpy(float)[ok] * disc,
        minlength=len(ids) * n_ages,
    ).reshape(len(ids), n_ages)
    cum = np.cumsum(cells, axis=1)
    observed = (first[:, None] + np.arange(n_ages)[None, :]) <= last
    cum[~observed] = np.nan
    groups = np.full(len(ids), "all", dtype=object) if by is None else by.reindex(ids).to_numpy()
    wide = pd.DataFrame(cum, columns=pd.RangeIndex(n_ages, name="age"))
    g = wide.groupby(groups, sort=True)
    out = (
        pd.concat(
            {"customers": g.count().stack(), "value": g.mean().stack(), "se": g.sem().stack()},
            axis=1,
        )
        .rename_axis(["group", "age"])
        .reset_index()
    )
    out = out[out["customers"] > 0].reset_index(drop=True)
    z = stats.norm.ppf(0.5 + level / 2)
    out["ci_low"] = out["value"] - z * out["se"]
    out["ci_high"] = out["value"] + z * out["se"]
    return out


def payback_age(ages: pd.Series, value: pd.Series, cost: float) -> float:
    """The first age at which cumulative value per customer reaches the acquisition cost:
    min{k : V(k) >= cost}; NaN if it never does within the observed ages (not yet paid back)."""
    hit = np.asarray(value, dtype=float) >= cost
    return float(np.asarray(ages)[hit.argmax()]) if hit.any() else float("nan")


def payback_table(curve: pd.DataFrame, cpa: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Payback and value : cost per group, from :func:`value_by_age` (`curve`) and
    :func:`helpers.economics.cost_per_acquisition` (`cpa`, indexed by the same groups).

    * ``payback``: first month of age k with V(k) >= CPA (:func:`payback_age`); its range
      ``payback_early`` (V's upper limit reaches CPA's lower one) to ``payback_late`` (V's lower
      limit reaches CPA's upper one): pointwise limits, so a rough range, not an exact interval;
      NaN: not reached within the observed ages.
    * ``value``: V(horizon) with its interval; ``value_to_cac`` = V(horizon) / CPA with the
      delta-method interval on the log scale, exp(ln ratio -/+ z sqrt((se_V/V)^2 +
      (se_C/C)^2)) (independent samples: customers' value, months' spend), with z from the
      CPA interval's level (normal).
    """
    rows = []
    for g, c in cpa.iterrows():
        cv = curve[curve["group"] == g]
        h = cv[cv["age"] == horizon]
        v, se_v = (float(h["value"].iloc[0]), float(h["se"].iloc[0])) if len(h) else (np.nan,) * 2
        z = (c["ci_high"] - c["cpa"]) / c["se"] if c["se"] > 0 else 1.959964
        ratio = v / c["cpa"]
        half = z * np.sqrt((se_v / v) ** 2 + (c["se"] / c["cpa"]) ** 2) if v > 0 else np.nan
        rows.append(
            {"group": g, "cpa": c["cpa"], "cpa_low": c["ci_low"], "cpa_high": c["ci_high"],
             "payback": payback_age(cv["age"], cv["value"], c["cpa"]),
             "payback_early": payback_age(cv["age"], cv["ci_high"], c["ci_low"]),
             "payback_late": payback_age(cv["age"], cv["ci_low"], c["ci_high"]),
             "value": v, "value_low": v - z * se_v, "value_high": v + z * se_v,
             "value_to_cac": ratio, "ratio_low": ratio * np.exp(-half),
             "ratio_high": ratio * np.exp(half)}
        )  # fmt: skip
    return pd.DataFrame(rows).set_index("group")


def spend_by_tenure(
    orders: pd.DataFrame,
    as_of: str | pd.Timestamp,
    new: tuple[int, int] = (0, 5),
    existing: tuple[int, int] = (24, 35),
    *,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
    value_col: str = "amount",
) -> pd.DataFrame:
    """Do existing customers spend more than new ones? Spend per active customer-month in a
    "new" and an "existing" window of tenure (months since the first order, both ends
    included), compared two ways:

    * **cross-section** (what a dashboard shows): all active customer-months of each window,
      ratio = S_existing / S_new with S = sum(spend) / number of active customer-months;
    * **same customers**: only customers active in both windows (each compared with themselves),
      the same ratio over their months. Its gap to the cross-section is *survivor sorting*: the
      customers still buying in the existing window were heavier buyers from the start
      (selection on survival: J. W. Vaupel & A. I. Yashin (1985), "Heterogeneity's ruses",
      *The American Statistician* 39(3), 176-185; Fader & Hardie 2007 for retention rates).

    Customers count only if their whole existing window is observed (first month + `existing`[1]
    <= the last complete month). A customer-month is active with >= 1 order; spend is the sum of
    `value_col`. Intervals: percentile bootstrap over customers (`n_boot` resamples).

    Returns rows ``cross_section``, ``same_customers``, ``sorting`` (cross / same) with columns
    ``ratio``, ``ci_low``, ``ci_high``, ``new`` and ``existing`` (EUR per active month) and
    ``customers`` (customers with an active month in either window; in both for same_customers)."""
    last = periods.last_complete_period(as_of, "M")
    o = periods.up_to(orders, as_of, "order_date")
    code, ids = periods.customer_codes(o["customer_id"])
    p = periods.period_codes(pd.to_datetime(o["order_date"]).to_numpy(), "M")
    first = _group_min(p, code, len(ids))
    tenure = p - first[code]
    eligible = first + existing[1] <= last
    windows = {"new": new, "existing": existing}
    # per customer and window: spend and number of active months
    spend, months = {}, {}
    for name, (lo, hi) in windows.items():
        sel = eligible[code] & (tenure >= lo) & (tenure <= hi)
        spend[name] = np.bincount(code[sel], o[value_col].to_numpy(float)[sel], len(ids))
        act = _distinct(code[sel] * (hi + 1) + tenure[sel], len(ids) * (hi + 1)) // (hi + 1)
        months[name] = np.bincount(act, minlength=len(ids)).astype(float)
    both = (months["new"] > 0) & (months["existing"] > 0)
    cust = eligible & ((months["new"] > 0) | (months["existing"] > 0))

    def ratios(w: np.ndarray) -> np.ndarray:
        """(cross, same, sorting) for customer weights w (bootstrap counts), vectorized over
        rows of w."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return _ratios(w)

    def _ratios(w: np.ndarray) -> np.ndarray:
        per = {k: (w * spend[k]).sum(-1) / (w * months[k]).sum(-1) for k in windows}
        wb = w * both
        same = {k: (wb * spend[k]).sum(-1) / (wb * months[k]).sum(-1) for k in windows}
        cross = per["existing"] / per["new"]
        within = same["existing"] / same["new"]
        return np.stack([cross, within, cross / within], axis=-1)

    idx = np.flatnonzero(cust)
    w0 = cust.astype(float)
    point = ratios(w0)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, idx.size, size=(n_boot, idx.size))
    wb = np.zeros((n_boot, len(ids)))
    np.add.at(wb, (np.repeat(np.arange(n_boot), idx.size), idx[draws].ravel()), 1.0)
    boot = ratios(wb)
    a = (1 - level) / 2
    lo, hi = np.nanquantile(boot, [a, 1 - a], axis=0)
    level_new = [
        (w0 * spend["new"]).sum() / (w0 * months["new"]).sum(),
        (w0 * both * spend["new"]).sum() / (w0 * both * months["new"]).sum(),
        np.nan,
    ]
    level_ex = [
        (w0 * spend["existing"]).sum() / (w0 * months["existing"]).sum(),
        (w0 * both * spend["existing"]).sum() / (w0 * both * months["existing"]).sum(),
        np.nan,
    ]
    return pd.DataFrame(
        {"ratio": point, "ci_low": lo, "ci_high": hi, "new": level_new, "existing": level_ex,
         "customers": [int(cust.sum()), int(both.sum()), int(both.sum())]},
        index=pd.Index(["cross_section", "same_customers", "sorting"], name="comparison"),
    )  # fmt: skip


#: The curves managers fit to a survival (share still a customer) series, as functions of the
#: year t >= 1 with parameters (a, b): each is a straight line after a transform, so each is fitted
#: by least squares on that scale (Fader & Hardie 2007, "How to project customer retention",
#: section 2; their note "How not to project customer retention").
CURVES: dict[str, str] = {
    "linear": "S(t) = a + b t",
    "exponential": "S(t) = a exp(b t)  (ln S linear in t)",
    "power": "S(t) = a t^b  (ln S linear in ln t)",
}


def fit_survival_curves(
    survivors: Sequence[float],
    calib_years: int,
    years: Sequence[int] | np.ndarray | None = None,
    *,
    on: str = "survival",
) -> pd.DataFrame:
    """Fit the managers' curves of :data:`CURVES` to the first `calib_years` years of a survivor
    series (survivors[0] is the starting count, e.g. 1,000) and project to `years` (default:
    every year of `survivors`). Least squares on the curve's linear scale (``numpy.polyfit``):
    linear, S on t; exponential, ln S on t; power, ln S on ln t.

    * ``on="survival"``: the curve is fitted to S(1..calib_years) and read off directly (the
      regressions of Fader & Hardie 2007, section 2); a count below 0 is kept (it is the curve's
      answer, and its failure);
    * ``on="retention"``: the curve is fitted to the retention rates r(t) = S(t) / S(t - 1),
      t = 1..calib_years, projected, clipped to [0, 1], and chained from the last calibration
      year: S(t) = S(T) prod_{u=T+1..t} r(u) (before T the fitted rates are chained from S(0)).

    Returns a DataFrame indexed by year with one column per curve (survivors, the input's unit);
    ``attrs["params"]``: curve -> (a, b) on the fitted series; with ``on="retention"`` also
    ``attrs["year_rate_reaches_1"]``: curve -> the year t at which the fitted rate reaches 100 %
    (a + b t = 1, a e^{b t} = 1, a t^b = 1; inf if it never does): from then on the curve says
    nobody leaves, which no mixture of customers with any churn allows (the sBG's r(t) tends to 1
    but never reaches it)."""
    s = np.asarray(survivors, dtype=float)
    if calib_years < 2 or calib_years >= len(s):
        raise ValueError(f"calib_years must be in [2, {len(s) - 1}], got {calib_years}")
    if on not in ("survival", "retention"):
        raise ValueError(f"on must be 'survival' or 'retention', got {on!r}")
    t = np.arange(1, calib_years + 1, dtype=float)
    y = s[1 : calib_years + 1] if on == "survival" else s[1 : calib_years + 1] / s[:calib_years]
    out_years = np.arange(len(s)) if years is None else np.asarray(years)
    grid = np.arange(0, max(int(out_years.max()), calib_years) + 1, dtype=float)
    tg = np.maximum(grid, 1e-12)
    b1, a1 = np.polyfit(t, y, 1)
    b2, la2 = np.polyfit(t, np.log(y), 1)
    b3, la3 = np.polyfit(np.log(t), np.log(y), 1)
    params = {"linear": (float(a1), float(b1)), "exponential": (float(np.exp(la2)), float(b2)),
              "power": (float(np.exp(la3)), float(b3))}  # fmt: skip
    curves = {
        "linear": a1 + b1 * grid,
        "exponential": np.exp(la2) * np.exp(b2 * grid),
        "power": np.exp(la3) * tg**b3,
    }
    if on == "retention":
        for name, r in curves.items():
            r = np.clip(r, 0.0, 1.0)
            r[0] = 1.0
            chained = s[0] * np.cumprod(r)
            after = grid > calib_years
            chained[after] = s[calib_years] * np.cumprod(r[after])
            curves[name] = chained
    out = pd.DataFrame(curves, index=pd.Index(grid.astype(int), name="year")).loc[out_years]
    out.attrs["params"] = params
    if on == "retention":
        (a1, b1), (a2, b2), (a3, b3) = params.values()
        tol = 1e-12  # a slope this small is a flat rate: it never reaches 1
        with np.errstate(over="ignore"):
            out.attrs["year_rate_reaches_1"] = {
                "linear": float((1 - a1) / b1) if b1 > tol else np.inf,
                "exponential": float(-np.log(a2) / b2) if b2 > tol else np.inf,
                "power": float(np.exp(-np.log(a3) / b3)) if b3 > tol else np.inf,
            }
    return out
