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
