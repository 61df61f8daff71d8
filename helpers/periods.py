"""As-of, periods and censoring: one definition used by every helper, notebook and the report.

* **As-of** is a *day*. Data "up to as-of" means every row timestamped before the end of that day,
  midnight after it: :func:`as_of_end` (exclusive). A time of day in `as_of` is ignored, so
  ``"2025-12-31"`` and ``"2025-12-31 01:00"`` mean the same thing everywhere. Without an as-of,
  the default is the day of the last row (:func:`default_as_of`).
* **Periods** are calendar days ``"D"``, weeks ``"W"`` (Monday to Sunday), months ``"M"`` or
  quarters ``"Q"``, coded as integers equal to the pandas ``Period`` ordinal
  (:func:`period_codes`).
* **Censoring rule**: a period counts as observed only when it has *ended on or before as-of*
  (its last day is on or before the as-of day). The period that contains a mid-period as-of is
  partial: its missing days would read as churn, so it is not observed
  (:func:`last_complete_period`). With ``as_of="2025-11-15"`` and quarters the last observed
  quarter is 2025Q3; with ``as_of="2025-12-31"`` it is 2025Q4.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "FREQS",
    "ONE_DAY",
    "as_of_day",
    "as_of_end",
    "default_as_of",
    "up_to",
    "period_codes",
    "period_index",
    "last_complete_period",
    "complete_periods",
    "customer_codes",
]

FREQS: dict[str, str] = {
    "D": "day",
    "W": "week (Monday to Sunday)",
    "M": "calendar month",
    "Q": "calendar quarter",
}
ONE_DAY = pd.Timedelta(days=1)
_NS_PER_DAY = 86_400 * 10**9


def as_of_day(as_of: str | pd.Timestamp) -> pd.Timestamp:
    """The as-of day at midnight (any time of day in `as_of` is dropped)."""
    ts = pd.Timestamp(as_of)
    if pd.isna(ts):
        raise ValueError(f"as_of is not a date: {as_of!r}")
    return ts.normalize()


def as_of_end(as_of: str | pd.Timestamp) -> pd.Timestamp:
    """The end of the as-of day, exclusive: midnight after it. Rows with a timestamp before it
    are "on or before as-of" (2025-12-31 23:59:59 counts for ``as_of="2025-12-31"``)."""
    return as_of_day(as_of) + ONE_DAY


def default_as_of(dates: pd.Series | pd.DatetimeIndex | np.ndarray) -> pd.Timestamp:
    """The default as-of: the day of the last timestamp in `dates`."""
    last = pd.Series(np.asarray(dates, dtype="datetime64[ns]")).max()
    if pd.isna(last):
        raise ValueError("no dates: the table is empty")
    return pd.Timestamp(last).normalize()


def up_to(df: pd.DataFrame, as_of: str | pd.Timestamp, date_col: str) -> pd.DataFrame:
    """The rows of `df` whose `date_col` is on or before the as-of day (before :func:`as_of_end`)."""
    return df.loc[pd.to_datetime(df[date_col]) < as_of_end(as_of)]


def period_codes(dates: pd.Series | np.ndarray | pd.DatetimeIndex, freq: str = "M") -> np.ndarray:
    """Integer period of each timestamp, equal to the pandas ``Period`` ordinal of that ``freq``:
    days, weeks (Monday start), months or quarters since 1970-01-01.

    Months and quarters are looked up in a small day -> month table spanning the data (a gather
    instead of a calendar conversion per row: ten times faster on millions of rows)."""
    if freq not in FREQS:
        raise ValueError(f"freq must be one of {sorted(FREQS)}, got {freq!r}")
    d = np.asarray(dates, dtype="datetime64[ns]")
    if np.isnat(d).any():
        raise ValueError("dates contain missing values (NaT)")
    days = d.view(np.int64) // _NS_PER_DAY  # floor: days since 1970-01-01
    if freq == "D":
        return days
    if freq == "W":
        return (days + 3) // 7 + 1  # 1970-01-01 was a Thursday; pandas' W-SUN ordinals start at 1
    if days.size == 0:
        return days
    lo, hi = int(days.min()), int(days.max())
    lut = np.arange(lo, hi + 1).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    months = np.take(lut, days - lo)  # np.take: a faster gather than lut[...]
    return months if freq == "M" else months // 3


def period_index(codes: np.ndarray | pd.Index, freq: str, name: str = "period") -> pd.PeriodIndex:
    """A ``PeriodIndex`` from integer period codes (:func:`period_codes`)."""
    return pd.PeriodIndex.from_ordinals(np.asarray(codes, dtype=np.int64), freq=freq, name=name)


def period_labels(dates: pd.Series | np.ndarray | pd.DatetimeIndex, freq: str = "M") -> np.ndarray:
    """Each timestamp's period as pandas labels it (``pd.PeriodIndex(dates, freq).astype(str)``:
    '2025-03', '2025Q1', ...), an object array in which the rows of one period share one
    string: the distinct periods (:func:`period_codes`) are labelled once and gathered. A
    string per row took 64 bytes (at 842k customers 54 MB against 7 MB) and a formatting per
    row."""
    codes, uniques = pd.factorize(period_codes(dates, freq))
    return period_index(uniques, freq).astype(str).to_numpy(object).take(codes)


def last_complete_period(as_of: str | pd.Timestamp, freq: str) -> int:
    """Code of the last period that has ended on or before the as-of day (the censoring rule):
    the period containing the day after as-of, minus one."""
    nxt = np.array([as_of_end(as_of)], dtype="datetime64[ns]")
    return int(period_codes(nxt, freq)[0]) - 1


def complete_periods(
    first: str | pd.Timestamp, as_of: str | pd.Timestamp, freq: str
) -> pd.PeriodIndex:
    """The complete periods from the one containing `first` to :func:`last_complete_period`."""
    lo = int(period_codes(np.array([pd.Timestamp(first)], dtype="datetime64[ns]"), freq)[0])
    hi = last_complete_period(as_of, freq)
    return period_index(np.arange(lo, hi + 1), freq)


def customer_codes(ids: pd.Series | np.ndarray, sort: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Integer code 0..C-1 of each row's customer and the customer id of each code: the same as
    ``pd.factorize(ids.to_numpy(), sort=sort)`` (codes int64, ids as a numpy array, sorted when
    `sort`), computed without sorting millions of Python strings.

    Fast paths, each giving exactly what ``pd.factorize`` gives: integer ids in a compact range
    (id - min, unused ids dropped: no hashing); categoricals (their codes, unused categories
    dropped); text (a hash factorization, then only the distinct ids are sorted, as fixed-width
    unicode by numpy, code point order like Python's string comparison). One pass over the rows
    for the helpers that group orders by customer (rfm_table, period_retention, cohorts)."""
    if isinstance(ids, pd.Series) and isinstance(ids.dtype, pd.CategoricalDtype):
        cat = ids.array
        codes = np.asarray(cat.codes, dtype=np.int64)
        if codes.size and codes.min() < 0:  # missing ids: as pandas does
            return _factorize(np.asarray(ids.to_numpy()), sort)
        used = np.zeros(len(cat.categories), dtype=bool)
        used[codes] = True
        uniques = np.asarray(cat.categories.to_numpy())[used]
        remap = np.cumsum(used) - 1
        codes = np.take(remap, codes)
        if not sort or cat.categories.is_monotonic_increasing:
            return codes, uniques
        return _sorted(codes, uniques)
    values = ids.to_numpy() if isinstance(ids, pd.Series | pd.Index) else np.asarray(ids)
    if values.dtype.kind in "iu" and values.size:
        lo, hi = int(values.min()), int(values.max())
        if hi - lo < 4 * values.size + 1000:
            code = (values - lo).astype(np.int64)
            seen = np.zeros(hi - lo + 1, dtype=bool)
            seen[code] = True
            remap = np.cumsum(seen) - 1
            return np.take(remap, code), (np.flatnonzero(seen) + lo).astype(values.dtype)
    return _factorize(values, sort)


def _factorize(values: np.ndarray, sort: bool) -> tuple[np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(values, sort=False)
    codes, uniques = codes.astype(np.int64, copy=False), np.asarray(uniques)
    if not sort:
        return codes, uniques
    if (
        values.dtype == object
        and not (codes.size and codes.min() < 0)
        and pd.api.types.infer_dtype(uniques, skipna=False) == "string"
    ):
        return _sorted(codes, uniques)
    codes, uniques = pd.factorize(values, sort=True)  # anything else: as pandas orders it
    return codes.astype(np.int64, copy=False), np.asarray(uniques)


def _sorted(codes: np.ndarray, uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber codes so that the ids are in ascending order (pandas' order for the ids)."""
    order = None
    if uniques.dtype == object and pd.api.types.infer_dtype(uniques, skipna=False) == "string":
        text = uniques.astype(str)  # fixed-width unicode: a C sort in code point order
        # numpy drops trailing NUL characters: only then is its order not Python's
        if np.array_equal(
            np.char.str_len(text), np.fromiter(map(len, uniques), np.int64, len(uniques))
        ):
            order = np.argsort(text, kind="stable")
    if order is None:
        order = np.argsort(uniques, kind="stable")
    if np.all(order[1:] > order[:-1]):
        return codes, uniques
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return np.take(rank, codes), uniques[order]
