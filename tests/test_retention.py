"""Known answers and properties of helpers.retention."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import data, money, retention


def test_playbook_example_352_to_298():
    assert retention.retention_rate(352, 298) == pytest.approx(0.847, abs=5e-4)
    assert retention.churn_rate(352, 298) == pytest.approx(0.153, abs=5e-4)


def test_standard_form_excludes_new_customers():
    assert retention.retention_rate(352, 330, new=40) == pytest.approx(290 / 352)


@pytest.mark.parametrize("start,end,new", [(0, 5, 0), (10, 5, 6), (10, 25, 5), (10, -1, 0)])
def test_impossible_counts_are_rejected(start, end, new):
    with pytest.raises(ValueError):
        retention.retention_rate(start, end, new)


def test_period_retention_hand_computed(ten_orders):
    per = retention.period_retention(ten_orders, freq="M")
    assert list(per.index.astype(str)) == ["2025-01", "2025-02", "2025-03"]
    assert per["customers_end"].tolist() == [3, 3, 3]
    assert per["customers_start"].tolist() == [0, 3, 3]
    assert per["new"].tolist() == [3, 1, 1]
    assert per["retained"].tolist() == [0, 2, 2]
    assert per["reactivated"].tolist() == [0, 0, 0]
    assert np.isnan(per["retention_rate"].iloc[0])
    assert per["retention_rate"].iloc[1:].tolist() == pytest.approx([2 / 3, 2 / 3])
    assert per["churn_rate"].iloc[1:].tolist() == pytest.approx([1 / 3, 1 / 3])
    assert per["net_revenue_retention"].iloc[1:].tolist() == pytest.approx([1.0, 0.75])
    assert per["gross_revenue_retention"].iloc[1:].tolist() == pytest.approx([0.5, 0.625])


def test_period_retention_as_of_drops_later_orders_and_partial_period(ten_orders):
    per = retention.period_retention(ten_orders, freq="M", as_of="2025-03-15")
    assert list(per.index.astype(str)) == ["2025-01", "2025-02"]
    per = retention.period_retention(ten_orders, freq="M", as_of="2025-03-15", complete_only=False)
    assert per["customers_end"].iloc[-1] == 2  # customer 5 ordered after the as-of date


def test_reactivated_customer_counts_as_gained_not_retained(ten_orders):
    extra = pd.DataFrame(
        {
            "order_id": [11],
            "customer_id": [3],
            "order_date": pd.to_datetime(["2025-03-05"]),
            "amount": [5.0],
        }
    )
    per = retention.period_retention(pd.concat([ten_orders, extra]), freq="M")
    mar = per.loc["2025-03"]
    assert (mar["customers_end"], mar["new"], mar["reactivated"], mar["retained"]) == (4, 1, 1, 2)


def test_subscription_retention_hand_computed():
    subs = pd.DataFrame(
        {
            "start_date": pd.to_datetime(
                ["2025-01-10", "2025-01-20", "2025-02-05", "2025-02-10", "2025-03-01"]
            ),
            "end_date": pd.to_datetime(["2025-02-10", None, None, "2025-02-25", "2025-03-20"]),
        }
    )
    per = retention.subscription_retention(subs, freq="M", as_of="2025-03-31")
    # Feb: start {1, 2}; end {2, 3}; new {3} (4 started and ended in Feb); retained {2}
    feb = per.loc["2025-02"]
    assert (feb["customers_start"], feb["customers_end"], feb["new"], feb["retained"]) == (
        2,
        2,
        1,
        1,
    )
    assert feb["retention_rate"] == pytest.approx(0.5)
    # Mar: start {2, 3}; end {2, 3}; 5 started and ended in March
    assert per.loc["2025-03", "retention_rate"] == pytest.approx(1.0)
    # E of one month is S of the next
    assert (
        per["customers_end"].iloc[:-1].to_numpy() == per["customers_start"].iloc[1:].to_numpy()
    ).all()


def test_lifetime_value_formula():
    # m r / (1 + d - r): 100 * 0.8 / 0.3
    assert retention.lifetime_value(100, 0.8, 0.1) == pytest.approx(266.6667, rel=1e-6)
    # the series it sums, checked term by term
    t = np.arange(1, 2000)
    assert retention.lifetime_value(100, 0.8, 0.1) == pytest.approx((100 * 0.8**t / 1.1**t).sum())
    # 80 % -> 85 %: (0.85 / 0.25) / (0.8 / 0.3) - 1 = 0.275
    assert retention.lifetime_value_uplift(0.80, 0.05, 0.10) == pytest.approx(0.275)


def test_sample_data_subscription_rates_are_plausible():
    per = retention.subscription_retention(data.load_subscriptions(), freq="M", as_of="2025-12-31")
    # sBG with the generator's plans: monthly retention of a mixed base between 80 % and 97 %
    assert per["retention_rate"].tail(12).between(0.80, 0.97).all()


orders_strategy = st.lists(
    st.tuples(st.integers(1, 8), st.integers(0, 400), st.floats(0, 500, allow_nan=False)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(rows=orders_strategy, freq=st.sampled_from(["W", "M", "Q"]))
def test_properties_for_any_order_table(rows, freq):
    df = pd.DataFrame(rows, columns=["customer_id", "day", "amount"])
    df["order_date"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(df["day"], unit="D")
    per = retention.period_retention(df, freq=freq, as_of="2025-12-31")  # every order observed
    r = per["retention_rate"].dropna()
    assert ((r >= 0) & (r <= 1)).all()
    assert ((per["churn_rate"].dropna() - (1 - r)).abs() < 1e-12).all()
    e_minus_n = per["customers_end"] - per["new"] - per["reactivated"]
    assert (e_minus_n <= per["customers_start"]).all()
    assert (per["reactivated"] >= 0).all()
    assert per["new"].sum() == df["customer_id"].nunique()
    grr = per["gross_revenue_retention"].dropna()
    assert (grr <= per["net_revenue_retention"].dropna() + 1e-12).all() and (grr <= 1 + 1e-12).all()


@settings(max_examples=200, deadline=None)
@given(start=st.integers(1, 10_000), kept=st.integers(0, 10_000), new=st.integers(0, 10_000))
def test_count_properties(start, kept, new):
    kept = min(kept, start)
    r = retention.retention_rate(start, kept + new, new)
    assert 0 <= r <= 1
    assert retention.churn_rate(start, kept + new, new) == pytest.approx(1 - r)


def test_mid_period_as_of_drops_the_partial_period():
    """As-of 2025-11-15 with quarters: 2025Q4 has not ended, so the table ends at 2025Q3 and equals
    the table as of 2025-09-30 (the partial quarter is not read as churn)."""
    orders = data.load_orders()
    mid = retention.period_retention(orders, "Q", "2025-11-15")
    end = retention.period_retention(orders, "Q", "2025-09-30")
    assert str(mid.index[-1]) == "2025Q3"
    pd.testing.assert_frame_equal(mid, end)
    # hand case: as-of mid-March, March is partial
    df = pd.DataFrame({"customer_id": [1, 1, 2], "amount": 1.0,
                       "order_date": pd.to_datetime(["2025-01-05", "2025-02-05", "2025-03-02"])})  # fmt: skip
    per = retention.period_retention(df, "M", "2025-03-15")
    assert [str(p) for p in per.index] == ["2025-01", "2025-02"]
    assert per.loc["2025-02", "retention_rate"] == 1.0


def _period_retention_by_merge(orders, freq, as_of):
    """The earlier implementation of period_retention (an outer merge of (customer, period)
    activity with itself shifted by one period), kept as the reference of the integer-key one."""
    from helpers import periods

    o = periods.up_to(orders[["customer_id", "order_date", "amount"]], as_of, "order_date")
    code = periods.period_codes(o["order_date"], freq)
    last = periods.last_complete_period(as_of, freq)
    o, code = o.loc[code <= last], code[code <= last]
    # the revenue summed as the one definition sums money (helpers.money: exact at the amounts'
    # scale, pandas' grouped float sum without one)
    s = money.scale(o["amount"])

    def total(g):
        return g.sum() if s is None else g.agg(lambda v: money.total(v.to_numpy(), s))

    act = total(
        pd.DataFrame({"customer_id": o["customer_id"].to_numpy(), "p": code, "rev": o["amount"].to_numpy()})
        .groupby(["customer_id", "p"], as_index=False, sort=False)["rev"]
    )  # fmt: skip
    first = act.groupby("customer_id")["p"].transform("min")
    prev = act.assign(p=act["p"] + 1).rename(columns={"rev": "rev_prev"})
    both = act.merge(prev, on=["customer_id", "p"], how="outer")
    both["active_now"], both["active_prev"] = both["rev"].notna(), both["rev_prev"].notna()
    both["rev_now"] = both["rev"].fillna(0.0)
    both["rev_kept"] = np.where(both["active_prev"], both["rev_now"], 0.0)
    both["rev_capped"] = np.where(
        both["active_prev"], np.minimum(both["rev_now"], both["rev_prev"].fillna(0.0)), 0.0
    )
    grp = both.groupby("p")
    return (
        pd.DataFrame(
            {
                "customers_start": grp["active_prev"].sum(),
                "customers_end": grp["active_now"].sum(),
                "retained": (both["active_now"] & both["active_prev"]).groupby(both["p"]).sum(),
                "new": (act["p"] == first).groupby(act["p"]).sum(),
                "revenue_start": total(grp["rev_prev"]),
                "revenue_retained": total(grp["rev_kept"]),
            }
        )
        .fillna(0)
        .loc[lambda t: t.index <= last]
    )  # the shift adds the period after the last


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["C10", "C9", "b", "A", "é", "C1"]),
            st.integers(0, 700),
            st.floats(0, 500, allow_nan=False),
        ),
        min_size=1,
        max_size=80,
    ),
    freq=st.sampled_from(["W", "M", "Q"]),
)
def test_period_retention_equals_the_merge_reference_bit_for_bit(rows, freq):
    """The integer-key implementation gives exactly (not just nearly) the numbers of the
    outer-merge one, with text customer ids, including the revenue sums."""
    df = pd.DataFrame(rows, columns=["customer_id", "day", "amount"])
    df["order_date"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(df["day"], unit="D")
    as_of = "2025-12-31"
    try:
        per = retention.period_retention(df, freq=freq, as_of=as_of)
    except ValueError:  # no complete period: the reference has nothing either
        return
    ref = _period_retention_by_merge(df, freq, as_of)
    got = per.set_axis(per.index.asi8)[ref.columns].loc[ref.index]
    pd.testing.assert_frame_equal(got, ref, check_dtype=False, check_exact=True, check_names=False)
    idle = per.set_axis(per.index.asi8).drop(ref.index)  # periods without any activity
    assert (idle[["customers_end", "new", "retained"]] == 0).all().all()
