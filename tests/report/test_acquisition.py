"""Issue 28's sections (helpers.report.acquisition) on hand-made cases: LTV curves by cohort, the
second order, first-order attributes, acquisition costs, and their bad input. Fast (no model fit
on real data)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import cohorts, economics, segments
from helpers.report import acquisition as acq

ECON = economics.from_mapping({"gross_margin_rate": 0.5, "shipping_per_order": 2.0})


def orders(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": [r[0] for r in rows], "order_date": pd.to_datetime([r[1] for r in rows]),
         "amount": [r[2] for r in rows]}
    )  # fmt: skip


#: a: Jan 2025 (20, then 40 in March); b: Feb 2025 (10); c: April 2025 (30, then 30 on day 100)
SMALL = orders(
    [("a", "2025-01-10", 20.0), ("a", "2025-03-05", 40.0), ("b", "2025-02-01", 10.0),
     ("c", "2025-04-02", 30.0), ("c", "2025-07-11", 30.0)]
)  # fmt: skip
AS_OF = "2025-09-30"


def summary(o: pd.DataFrame, as_of: str = AS_OF) -> pd.DataFrame:
    return segments.rfm_table(o, as_of, "W")


# --- 1. LTV curves -----------------------------------------------------------------------------


def test_margin_flows_is_the_reports_order_margin():
    f = acq.margin_flows(SMALL, ECON)
    assert f["value"].tolist() == [8.0, 18.0, 3.0, 13.0, 13.0]  # 0.5 x amount - 2


def test_ltv_curves_by_hand():
    lc = acq.ltv_curves(SMALL, summary(SMALL), ECON, months=6)
    c = lc.curves.set_index(["cohort", "month"])
    # 2025Q1: a (8 in Jan, +18 in March) and b (3 in Feb); b's age 0 is Feb
    assert c.loc[("2025Q1", 1), "observed"] == pytest.approx((8 + 3) / 2)
    assert c.loc[("2025Q1", 2), "observed"] == pytest.approx((8 + 3) / 2)
    assert c.loc[("2025Q1", 3), "observed"] == pytest.approx((26 + 3) / 2)
    # 2025Q2: c alone, observed April..September = ages 0..5
    assert c.loc[("2025Q2", 4), "observed"] == pytest.approx(26.0)
    assert lc.cohorts.loc["2025Q2", "observed_months"] == 6
    # without a model nothing is projected
    assert lc.curves["projected"].isna().all()


def test_ltv_curves_equal_value_by_age_where_the_cohort_is_fully_observed():
    rng = np.random.default_rng(1)
    n = 300
    ids = [f"c{i}" for i in rng.integers(0, 80, n)]
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 600, n), unit="D")
    o = orders(list(zip(ids, days.astype(str), rng.gamma(2, 15, n).round(2), strict=True)))
    seg = summary(o, "2025-09-30")
    lc = acq.ltv_curves(o, seg, ECON, months=12)
    flows = acq.margin_flows(o, ECON)
    cohort = pd.PeriodIndex(seg["first_order"], freq="Q").astype(str)
    ref = cohorts.value_by_age(
        flows, seg["first_order"], "2025-09-30", by=pd.Series(cohort, seg.index), max_age=11
    )
    ours = lc.curves.dropna(subset=["observed"])
    both = ours.merge(ref.assign(month=ref["age"] + 1, cohort=ref["group"]), on=["cohort", "month"])
    full = both[both["customers_x"] == both["customers_y"]]
    assert len(full) > 10
    np.testing.assert_allclose(full["observed"], full["value"], rtol=1e-9)


def test_projection_continues_the_observed_value():
    cum = np.array([[1.0, 2.0, np.nan, np.nan], [5.0, 5.0, 6.0, 7.0]])
    future = np.array([[1.0, 3.0, 4.0, 4.0], [9.0, 9.0, 9.0, 9.0]])
    W, F = acq._mixed(cum, np.array([1, 3]), future, 4)
    # customer 0 observed to age 1 (value 2), then +1, +3 from the model
    np.testing.assert_allclose(W[0], [1, 2, 3, 5])
    np.testing.assert_allclose(F[0], [0, 0, 1, 3])
    np.testing.assert_allclose(W[1], cum[1])  # fully observed: nothing projected


# --- 2. the second order -----------------------------------------------------------------------


def test_second_orders_and_censoring_by_cohort():
    sec = acq.second_orders(SMALL, AS_OF)
    assert sec.loc["a", "days"] == pytest.approx((pd.Timestamp("2025-03-05") -
                                                  pd.Timestamp("2025-01-10")).days)  # fmt: skip
    assert np.isnan(sec.loc["b", "days"])
    rates = acq.second_order_rates(sec, windows=(30, 90, 180)).set_index(["cohort", "window"])
    # 2025Q1 (last first order Feb 1): 180 days passed for all by Sep 30; a's 54 days > 30
    assert rates.loc[("2025Q1", 30), "rate"] == 0.0
    assert rates.loc[("2025Q1", 90), "rate"] == 0.5
    # 2025Q2 (c, April 2): 180 days have passed (Sep 29 < end of Sep 30); 100 > 90
    assert rates.loc[("2025Q2", 90), "rate"] == 0.0
    assert rates.loc[("2025Q2", 180), "rate"] == 1.0
    late = acq.second_order_rates(acq.second_orders(SMALL, "2025-09-20"), windows=(180,))
    assert late.set_index("cohort").loc["2025Q2", "customers"] == 0  # window still open: out


def test_second_order_rate_interval_is_wilson():
    from statsmodels.stats.proportion import proportion_confint

    sec = pd.DataFrame({"days": [5.0] * 30 + [np.nan] * 70, "followup": 400.0, "cohort": "x"})
    r = acq.second_order_rates(sec, windows=(30,)).set_index("cohort").loc["x"]
    lo, hi = proportion_confint(30, 100, method="wilson")
    assert (r["rate"], r["ci_low"], r["ci_high"]) == pytest.approx((0.3, lo, hi))


def test_kaplan_meier_without_censoring_is_the_empirical_share():
    days = np.array([10.0, 20, 30, 40, np.nan, np.nan, np.nan, np.nan])
    sec = pd.DataFrame({"days": days, "followup": 500.0, "cohort": "x"})
    km = acq.time_to_second_order(sec, horizon=365)
    assert km["share_by"][30]["share"] == pytest.approx(3 / 8)
    assert km["share_horizon"] == pytest.approx(0.5)
    assert km["half_days"] == 20.0 and km["most_days"] == 40.0  # F >= 0.25, F >= 0.4
    more = acq.time_to_second_order(sec.assign(days=[10.0, 20, 30, 40, 50, np.nan, np.nan, np.nan]))
    assert more["median_days"] == 50.0  # the first day S falls below one half


def test_recent_customers_are_censored_not_lost():
    """Half the customers were seen for 10 days only: Kaplan–Meier does not count them as never
    coming back (a plain share would say 2 / 8 by day 30): S = 7/8 after day 5 (8 at risk), then
    4 leave the risk set at day 10, and S = 7/8 x 2/3 after day 25 (3 at risk)."""
    sec = pd.DataFrame(
        {"days": [5.0, 25.0, np.nan, np.nan] + [np.nan] * 4,
         "followup": [400.0] * 4 + [10.0] * 4, "cohort": "x"}
    )  # fmt: skip
    km = acq.time_to_second_order(sec)
    assert km["share_by"][30]["share"] == pytest.approx(1 - 7 / 8 * 2 / 3)
    assert km["median_days"] is None  # more than half have not ordered again: no median


def test_value_by_order_number_and_the_same_customers():
    o = orders(
        [("a", "2025-01-01", 10.0), ("a", "2025-02-01", 20.0), ("a", "2025-03-01", 30.0),
         ("b", "2025-01-05", 50.0), ("b", "2025-02-05", 60.0), ("c", "2025-01-07", 90.0)]
    )  # fmt: skip
    v = acq.value_by_order_number(o, top=3)
    assert v["mean"].tolist() == [50.0, 40.0, 30.0]  # all orders of each number
    assert v["mean_same"].tolist() == [10.0, 20.0, 30.0]  # only a has three orders
