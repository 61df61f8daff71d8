"""As-of and the censoring rule: one definition, hand cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import periods


def test_as_of_is_a_day():
    assert periods.as_of_end("2025-12-31") == pd.Timestamp("2026-01-01")
    assert periods.as_of_end("2025-12-31 01:00") == pd.Timestamp("2026-01-01")
    assert periods.as_of_day(pd.Timestamp("2025-06-30 13:45")) == pd.Timestamp("2025-06-30")


@pytest.mark.parametrize(
    ("as_of", "freq", "last"),
    [
        ("2025-11-15", "Q", "2025Q3"),  # mid-quarter: the partial quarter is not observed
        ("2025-12-31", "Q", "2025Q4"),  # last day: complete
        ("2025-11-15", "M", "2025-10"),
        ("2025-11-30", "M", "2025-11"),
        ("2025-11-15", "D", "2025-11-15"),
        ("2025-11-16", "W", "2025-11-10/2025-11-16"),  # a Sunday ends its week
        ("2025-11-15", "W", "2025-11-03/2025-11-09"),  # a Saturday does not
    ],
)
def test_last_complete_period(as_of, freq, last):
    code = periods.last_complete_period(as_of, freq)
    assert str(periods.period_index([code], freq)[0]) == last


@pytest.mark.parametrize("freq", ["D", "W", "M", "Q"])
def test_period_codes_are_pandas_ordinals(freq):
    d = pd.Series(pd.date_range("2019-12-25", "2026-02-03", freq="37h"))
    assert np.array_equal(periods.period_codes(d, freq), d.dt.to_period(freq).array.asi8)


def test_complete_periods_and_up_to():
    idx = periods.complete_periods("2025-01-20", "2025-04-10", "M")
    assert [str(p) for p in idx] == ["2025-01", "2025-02", "2025-03"]
    df = pd.DataFrame({"t": pd.to_datetime(["2025-04-10 23:59", "2025-04-11 00:00"])})
    assert len(periods.up_to(df, "2025-04-10", "t")) == 1
    assert periods.default_as_of(df["t"]) == pd.Timestamp("2025-04-11")
