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


@pytest.mark.parametrize("freq", ["D", "W", "M", "Q"])
def test_period_labels_are_pandas_labels_one_string_a_period(freq):
    rng = np.random.default_rng(5)
    days = rng.integers(0, 3000, 2000) * 86_400 + rng.integers(0, 86_400, 2000)
    d = pd.Series(pd.to_datetime("2017-01-01") + pd.to_timedelta(days, unit="s"))
    got = periods.period_labels(d, freq)
    assert got.dtype == object
    assert got.tolist() == pd.PeriodIndex(d, freq=freq).astype(str).tolist()
    # the rows of a period hold the same string object, not a copy per row
    assert len({id(x) for x in got}) == d.dt.to_period(freq).nunique()
    assert periods.period_labels(d.iloc[:0], freq).tolist() == []


def test_complete_periods_and_up_to():
    idx = periods.complete_periods("2025-01-20", "2025-04-10", "M")
    assert [str(p) for p in idx] == ["2025-01", "2025-02", "2025-03"]
    df = pd.DataFrame({"t": pd.to_datetime(["2025-04-10 23:59", "2025-04-11 00:00"])})
    assert len(periods.up_to(df, "2025-04-10", "t")) == 1
    assert periods.default_as_of(df["t"]) == pd.Timestamp("2025-04-11")


def test_customer_codes_equal_pandas_factorize():
    """customer_codes gives pd.factorize's codes and ids, sorted or not, for every kind of id
    column (text with unusual characters, categoricals with categories in any order, Arrow
    strings, compact and sparse integers, mixed objects)."""
    rng = np.random.default_rng(3)
    text = np.array(["C10", "C9", "c1", "é", "a b", "a\x00", "a", "Ω", ""], dtype=object)
    cases = [
        pd.Series(text[rng.integers(0, len(text), 500)]),
        pd.Series(rng.integers(5, 900, 500)),
        pd.Series(rng.integers(0, 10**12, 500)),
        pd.Series(np.array([3, "a", 2.5] * 4, dtype=object)),
        pd.Series(text[rng.integers(0, len(text), 200)]).astype("string[pyarrow]"),
        pd.Series(
            pd.Categorical(text[rng.integers(0, 5, 200)], categories=text[::-1])
        ),  # categories unsorted, some unused
    ]
    for ids in cases:
        for sort in (True, False):
            ref_codes, ref_ids = pd.factorize(ids.to_numpy(), sort=sort)
            codes, uniq = periods.customer_codes(ids, sort=sort)
            if sort:
                np.testing.assert_array_equal(codes, ref_codes)
                assert list(uniq) == list(ref_ids)
            else:  # the same grouping, perhaps another numbering
                np.testing.assert_array_equal(pd.factorize(codes)[0], pd.factorize(ref_codes)[0])
                assert len(uniq) == len(ref_ids)


def test_every_as_of_defaults_to_the_day_of_the_last_row():
    """One default as-of (helpers.periods.default_as_of): every helper that takes an as-of and
    is called without one uses the day of the last row, not a fixed date."""
    import inspect

    from helpers import cohorts, economics, retention, segments, survival
    from helpers.report import engine

    for module in (cohorts, economics, retention, segments, survival, engine):
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ != module.__name__:
                continue
            param = inspect.signature(fn).parameters.get("as_of")
            if param is not None and param.default is not inspect.Parameter.empty:
                assert param.default is None, f"{module.__name__}.{name}: as_of={param.default!r}"


def test_subscriptions_on_the_as_of_day_count_as_on_or_before_it():
    """A subscription that starts during the as-of day is observed (0 months, active), one that
    ends during it has churned: rows before the end of the as-of day, as everywhere else."""
    from helpers import survival

    subs = pd.DataFrame(
        {
            "start_date": pd.to_datetime(
                ["2025-01-01 00:00", "2025-12-31 10:00", "2025-06-01 00:00"]
            ),
            "end_date": pd.to_datetime([None, None, "2025-12-31 18:00"], format="ISO8601"),
        }
    )
    d = survival.subscription_durations(subs, "2025-12-31")
    assert len(d) == 3
    assert d["months"].tolist() == [11, 0, 6]
    assert d["churned"].tolist() == [False, False, True]
