"""Sums of money that do not depend on the order the rows are added in.

A float sum's last bits depend on the order of addition. pandas adds a group's rows in row order,
a database's threads in whatever order they meet them: the same file then gave customer totals
differing by 5.8e-11 from run to run at 10M orders, enough to move a customer across an RFM
score's cut (the report's at-risk count changed by one), and a report from a PostgreSQL table
rounded a few customers' mean spend the other way from the same rows read from a CSV
(benchmarks/README.md).

Amounts of money have few decimals: "12.34" is 1234 hundredths. Summed as whole numbers of their
smallest unit (:func:`scale`) the sum is exact, so every order of addition gives the same value,
and the one float nearest to it (whole units / 10^s, one correctly rounded division) is what both
the pandas helpers (:func:`group_sum`, :func:`total`) and the engine
(:func:`helpers.report.engine.exact_sum`: DECIMAL(18, s) in the database) return.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SCALES", "scale", "group_sum", "total"]

#: The decimal places :func:`scale` tries, fewest first: whole units, tenths, cents...
SCALES = (0, 1, 2, 3, 4)
#: A value is a whole number of 10^-s when |x 10^s - round(x 10^s)| <= TOLERANCE |x 10^s|: a
#: float parsed from "12.34" is within a few 1e-16 (relative) of 1234 / 100, a value with one
#: more decimal is 0.1 or more away, and a tiny non-zero value (1e-194) is not a whole number of
#: any unit (relative, with no floor: it is not rounded to 0).
TOLERANCE = 1e-12


def scale(values: np.ndarray | pd.Series) -> int | None:
    """The fewest decimal places s of :data:`SCALES` at which every finite value of `values` is a
    whole number of 10^-s (see :data:`TOLERANCE`), or None (more decimals, or no finite value:
    sums are then plain float sums)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if not len(x):
        return None
    for s in SCALES:
        v = x * 10**s
        if np.all(np.abs(v - np.round(v)) <= TOLERANCE * np.abs(v)):
            return s
    return None


def _units(values: np.ndarray, s: int) -> np.ndarray:
    """`values` as whole numbers of 10^-`s` (int64; NaN as 0, skipped as pandas skips it)."""
    v = np.asarray(values, dtype=float) * 10**s
    return np.round(np.nan_to_num(v, nan=0.0)).astype(np.int64)


def group_sum(values: np.ndarray, codes: np.ndarray, n: int, s: int | None) -> np.ndarray:
    """The sum of `values` per code 0..`n`-1 (NaN skipped; 0 for a code without rows), exact at
    the scale `s` (:func:`scale`: whole units summed as int64, then / 10^s); `s` None: pandas'
    compensated float sum in row order."""
    cats = pd.Categorical.from_codes(np.asarray(codes), categories=pd.RangeIndex(n))
    if s is None:
        return pd.Series(values, dtype=float).groupby(cats, observed=False).sum().to_numpy()
    whole = pd.Series(_units(values, s)).groupby(cats, observed=False).sum().to_numpy(np.int64)
    return whole / 10**s


def total(values: np.ndarray, s: int | None) -> float:
    """The sum of `values` (NaN skipped), exact at the scale `s` as :func:`group_sum`."""
    if s is None:
        return float(pd.Series(values, dtype=float).sum())
    return float(int(_units(values, s).sum()) / 10**s)
