"""Issue 28's sections (helpers.report.acquisition_views) on hand-made cases: LTV curves by cohort, the
second order, first-order attributes, acquisition costs, and their bad input. Fast (no model fit
on real data)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import cohorts, economics, segments
from helpers.report import acquisition_views as acq

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
    W, F = acq._mixed(cum.copy(), np.array([1, 3]), future, 4)
    # customer 0 observed to age 1 (value 2), then +1, +3 from the model
    np.testing.assert_allclose(W[0], [1, 2, 3, 5])
    np.testing.assert_allclose(F[0], [0, 0, 1, 3])
    np.testing.assert_allclose(W[1], cum[1])  # fully observed: nothing projected


@given(st.integers(1, 40), st.integers(1, 14), st.integers(0, 2**32 - 1))
@settings(max_examples=100, deadline=None)
def test_the_projection_by_groups_is_the_gather_of_its_formula(m, n, seed):
    """acq._mixed, built per last observed month, equals the formula's vectorized gather bit for
    bit (F_ik = future_i(k - a_i - 1) after a_i, else 0; W = V_i(a_i) + F after a_i, else cum),
    missing months (NaN) included."""
    rng = np.random.default_rng(seed)
    cum, future = (np.cumsum(rng.random((m, n)), axis=1) for _ in range(2))
    cum[rng.random((m, n)) < 0.2] = np.nan
    future[rng.random((m, n)) < 0.1] = np.nan
    observed = rng.integers(0, n + 3, m)
    a = np.minimum(observed, n - 1)[:, None]
    j = np.arange(n)[None, :] - a
    gathered = np.take_along_axis(future, np.clip(j - 1, 0, n - 1), axis=1)
    F = np.where(j > 0, gathered, 0.0)
    W = np.where(j > 0, np.take_along_axis(cum, a, axis=1) + F, cum)
    got_W, got_F = acq._mixed(cum, observed, future, n)
    np.testing.assert_array_equal(got_W, W)
    np.testing.assert_array_equal(got_F, F)
    assert got_W is cum and got_F is future  # written in the observed and the future's place


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


def test_time_to_second_order_reads_the_fit_of_every_customer(monkeypatch):
    """Kaplan–Meier fitted at the event times (churn.kaplan_meier_at_events) gives every figure
    the fit of every customer gives (lifelines), bit for bit, and the same curve: the same step
    function over the same span, drawn on the same grid (plots.step_on_grid)."""
    from lifelines import KaplanMeierFitter

    from helpers import churn, plots

    rng = np.random.default_rng(7)
    n = 6000
    followup = rng.uniform(0.5, 500, n).round(4)  # times of day: few ties
    days = np.where(rng.random(n) < 0.4, rng.exponential(80, n).round(4), np.nan)
    days = np.where(days > followup, np.nan, days)
    sec = pd.DataFrame({"days": days, "followup": followup, "cohort": "x"})
    got = acq.time_to_second_order(sec, level=0.9)
    with monkeypatch.context() as m:
        m.setattr(churn, "kaplan_meier_at_events",
                  lambda d, e, alpha, keep: KaplanMeierFitter(alpha=alpha).fit(d, e))  # fmt: skip
        want = acq.time_to_second_order(sec, level=0.9)
    assert len(got["curve"]) < len(want["curve"]) / 2  # the censorings' times are not in it
    curves = got.pop("curve"), want.pop("curve")
    assert got == want
    cut = want["horizon"]
    assert curves[0].index[-1] == curves[1].index[-1] <= cut  # the same span
    on_grid = [plots.step_on_grid(c, points=500) for c in curves]
    pd.testing.assert_frame_equal(*on_grid, check_exact=True)


def test_value_by_order_number_and_the_same_customers():
    o = orders(
        [("a", "2025-01-01", 10.0), ("a", "2025-02-01", 20.0), ("a", "2025-03-01", 30.0),
         ("b", "2025-01-05", 50.0), ("b", "2025-02-05", 60.0), ("c", "2025-01-07", 90.0)]
    )  # fmt: skip
    v = acq.value_by_order_number(o, top=3)
    assert v["mean"].tolist() == [50.0, 40.0, 30.0]  # all orders of each number
    assert v["mean_same"].tolist() == [10.0, 20.0, 30.0]  # only a has three orders


# --- 3. first-order attributes -----------------------------------------------------------------


def test_first_order_attributes_take_the_first_orders_values():
    o = SMALL.assign(channel=["web", "app", "app", "shop", "web"], discount=[0, 5, 0, 2.5, 0])
    attrs = acq.first_order_attributes(o)
    assert attrs.loc["a", "channel"] == "web" and attrs.loc["c", "channel"] == "shop"
    assert attrs["discount_used"].to_dict() == {"a": "no", "b": "no", "c": "yes"}
    cust = pd.DataFrame({"acquisition_channel": ["referral", "ads"]}, index=["a", "c"])
    both = acq.first_order_attributes(o, cust)
    assert both.loc["a", "acquisition_channel"] == "referral"
    assert pd.isna(both.loc["b", "acquisition_channel"])


def test_an_id_mapped_as_a_channel_is_refused_with_the_clients_column_and_count():
    n = 120
    o = orders([(f"c{i}", "2025-01-01", 10.0) for i in range(n)]).assign(
        channel=[f"ord-{i}" for i in range(n)]
    )
    with pytest.raises(acq.DataValidationError) as err:
        acq.first_order_attributes(o, client_columns={"channel": "Bestellnummer"})
    msg = str(err.value)
    assert "'Bestellnummer'" in msg and "120 distinct values" in msg and "at most 50" in msg


def test_small_groups_are_pooled_as_other():
    v = pd.Series(["a"] * 150 + ["b"] * 99 + ["c"] * 5 + [None] * 3)
    pooled = acq.pool_small(v, 100)
    assert pooled.value_counts().to_dict() == {"a": 150, "other": 107}


def test_attribute_value_finds_a_real_difference_and_corrects_for_the_groups():
    """Group 'good' orders again within 90 days far more often: better; the k = 3 groups give
    intervals at 1 - 0.05 / 3."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(900):
        g = ("good", "mid", "low")[i % 3]
        first = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 200)))
        rows.append((f"c{i}", str(first), 30.0))
        p = {"good": 0.8, "mid": 0.4, "low": 0.35}[g]
        if rng.random() < p:
            rows.append((f"c{i}", str(first + pd.Timedelta(days=int(rng.integers(1, 80)))), 30.0))
    o = orders(rows)
    seg = summary(o, "2025-09-30")
    sec = acq.second_orders(o, "2025-09-30")
    attr = pd.Series({f"c{i}": ("good", "mid", "low")[i % 3] for i in range(900)})
    t = acq.attribute_value(attr, sec, o, seg, ECON, dropout=False)
    assert t.attrs["adjusted_level"] == pytest.approx(1 - 0.05 / 3)
    assert t.loc["good", "verdict"] == "better"
    assert t.loc["good", "rate_diff_low"] > 0
    assert t.loc["mid", "rate_low"] < 0.4 < t.loc["mid", "rate_high"]


def test_planted_truths_read_the_companys_parameters():
    truth = {"parameters": {"referral_dropout_multiplier": 0.6,
                            "acquisition_cpa": [["ads", 40.0], ["seo", 8.0]]}}  # fmt: skip
    p = acq.planted_truths(truth)
    assert p[("acquisition_channel", "referral", "dropout_ratio")] == 0.6
    assert p[("cac", "ads", "cpa")] == 40.0
    assert acq.planted_truths(None) == {}


def test_attribute_discounts_by_hand():
    """Ratios of sums over each group's customers; first orders' shares and their difference."""
    o = orders(
        [("a", "2025-01-01", 10.0), ("a", "2025-02-01", 10.0), ("b", "2025-01-05", 10.0),
         ("c", "2025-01-07", 10.0), ("c", "2025-03-01", 10.0), ("c", "2025-04-01", 10.0),
         ("d", "2025-01-09", 10.0)]
    ).assign(discount=[2.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0])  # fmt: skip
    seg = summary(o)
    attr = pd.Series({"a": "x", "b": "x", "c": "y", "d": "y"})
    t = acq.attribute_discounts(attr, o, seg, min_group=1)
    assert t.attrs["adjusted_level"] == pytest.approx(1 - 0.05 / 2)
    # x: a (2 orders, 1 discounted, 2.0), b (1 order, none); y: c (3, 2, 2.0), d (1, none)
    assert t.loc["x", "discount_share"] == pytest.approx(1 / 3)
    assert t.loc["y", "discount_share"] == pytest.approx(2 / 4)
    assert t.loc["x", "discount_per_order"] == pytest.approx(2 / 3)
    assert t.loc["y", "discount_per_order"] == pytest.approx(2 / 4)
    assert t.loc["x", "first_discount"] == 0.5 and t.loc["y", "first_discount"] == 0.5
    assert t.loc["x", "first_discount_diff"] == 0.0
    assert t.loc["x", "first_discount_diff_low"] < 0 < t.loc["x", "first_discount_diff_high"]
    ref = economics.cost_per_acquisition(
        pd.DataFrame({"g": ["x", "x"], "spend": [1.0, 0.0], "signups": [2, 1]}),
        by="g",
        level=1 - 0.05 / 2,
    )  # the one ratio-of-sums interval (customers as units)
    assert t.loc["x", "discount_share_low"] == pytest.approx(ref.loc["x", "ci_low"])


def test_the_deal_sites_discount_proneness_with_a_mapping_that_maps_discount(tmp_path):
    """Issue 28: a copy of the sample mapping that maps the orders' discount column shows the
    discounts by acquisition channel and records the deal site's first-order gap against the
    registry's truth (the sample mapping itself is another branch's to change)."""
    import yaml

    from helpers import paths
    from helpers.report import Formatter
    from helpers.report.mapping import load_mapping
    from helpers.report.orders import read_client_orders
    from helpers.synth import read_truth, registry

    m = yaml.safe_load((paths.NOTEBOOKS / "08_sample_mapping.yaml").read_text(encoding="utf-8"))
    m["columns"]["discount"] = "discount"
    m["tables"] = {"customers": {**m["tables"]["customers"],
                                 "file": str(paths.DATASETS / "customers.csv")}}  # fmt: skip
    (tmp_path / "map.yaml").write_text(yaml.safe_dump(m), encoding="utf-8")
    data = paths.DATASETS / "orders.csv"
    o, notes = read_client_orders(data, load_mapping(tmp_path / "map.yaml"))
    assert "discount" in o
    customers = pd.read_csv(paths.DATASETS / "customers.csv", dtype=str)[
        ["customer_id", "acquisition_channel"]
    ]
    inputs = acq.read_inputs({"customers": customers}, notes["mapping"], o, data)
    attrs = inputs.attributes[["acquisition_channel"]]
    seg = segments.rfm_table(o, notes["as_of"], "W")
    T = _T()
    out = acq.show_attributes(attrs, acq.second_orders(o, notes["as_of"]), o, seg, ECON, T,
                              Formatter("EUR"), truth=inputs.truth)  # fmt: skip
    assert "attr.discount.heading" in T.shown and "attr.discount.needs" not in T.shown
    deal = out["attributes"]["acquisition_channel"]["groups"]["deal_site"]
    e = deal["truth_first_discount_diff"]
    gap = registry.discount_truths(read_truth(paths.DATASETS)["parameters"])
    assert e["truth"] == pytest.approx(gap["discount_first_order_gap_deal_site"], abs=1e-4)
    assert e["ci_low"] <= e["truth"] <= e["ci_high"]
    assert e["ci_low"] > 0  # deal-site customers' first orders carry a discount more often
    assert deal["discount_share_low"] > 0.4 and deal["discount_per_order"] > 2


# --- 4. acquisition costs ----------------------------------------------------------------------


def write(tmp_path, text: str, name: str = "spend.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_negative_spend_is_refused(tmp_path):
    p = write(tmp_path, "month,channel,spend\n2025-01-01,ads,100\n2025-02-01,ads,-5\n")
    with pytest.raises(acq.DataValidationError) as err:
        acq.read_spend(p)
    assert [(q.column, q.code) for q in err.value.problems] == [("spend", "negative")]


def test_spend_file_with_client_columns_and_repeated_rows(tmp_path):
    p = write(
        tmp_path, "Monat;Kanal;Kosten\n2025-01-15;ads;100\n2025-01-20;ads;50\n2025-02-01;seo;10\n"
    )
    s = acq.read_spend(p, {"month": "Monat", "channel": "Kanal", "spend": "Kosten"}, delimiter=";")
    assert s.to_dict("list") == {
        "month": [pd.Timestamp("2025-01-01"), pd.Timestamp("2025-02-01")],
        "channel": ["ads", "seo"], "spend": [150.0, 10.0],
    }  # fmt: skip


def test_a_spend_file_that_does_not_match_gets_one_message():
    acquired = pd.DataFrame({"month": pd.to_datetime(["2025-01-01", "2025-02-01"]),
                             "channel": ["ads", "seo"], "customers": [3, 4]})  # fmt: skip
    spend = pd.DataFrame({"month": pd.to_datetime(["2024-06-01", "2025-01-01", "2025-02-01"]),
                          "channel": ["ads", "ads", "tv"], "spend": [1.0, 2.0, 3.0]})  # fmt: skip
    with pytest.raises(acq.DataValidationError) as err:
        acq.check_spend(spend, acquired, "2025-03-31", "spend.csv")
    assert len(err.value.problems) == 1
    msg = str(err.value)
    assert "['tv']" in msg and "['seo']" in msg and "['2024-06']" in msg


def test_cac_from_the_orders_new_customers_when_the_file_has_no_signups():
    o = orders(
        [("a", "2025-01-03", 30.0), ("b", "2025-01-09", 30.0), ("c", "2025-02-02", 30.0),
         ("d", "2025-02-05", 30.0), ("a", "2025-02-20", 30.0)]
    )  # fmt: skip
    seg = summary(o, "2025-03-31")
    channel = pd.Series({"a": "ads", "b": "ads", "c": "ads", "d": "seo"})
    spend = pd.DataFrame({"month": pd.to_datetime(["2025-01-01", "2025-02-01", "2025-02-01"]),
                          "channel": ["ads", "ads", "seo"], "spend": [40.0, 20.0, 5.0]})  # fmt: skip
    out = acq.acquisition_costs(spend, channel, seg, o, ECON)
    cac = out["cac"]
    assert cac.loc["ads", "signups"] == 3 and cac.loc["ads", "cpa"] == pytest.approx(60 / 3)
    assert cac.loc["seo", "cpa"] == pytest.approx(5.0)
    ref = economics.cost_per_acquisition(
        spend.assign(signups=[2, 1, 1]), by="channel"
    )  # the one CAC statistic (helpers.economics)
    pd.testing.assert_series_equal(cac["cpa"], ref["cpa"])
    # payback: ads customers bring 13 each in month 1 (< 20), a's second order makes it later
    assert "payback" in out["payback"] and out["payback"].loc["seo", "payback"] == 0


# --- inputs and the sections' "what it needs" --------------------------------------------------


class _Mapping:
    columns = {"customer_id": "customer_id"}
    path = "/nowhere/client.yaml"


def test_inputs_come_from_the_mapped_tables(tmp_path):
    """Sections 3 and 4 read the customer list and the spend file the mapping names (as
    open_tables hands them over); the truth only for a generated company's folder."""
    customers = pd.DataFrame({"customer_id": ["a", "b"], "acquisition_channel": ["seo", "ads"]})
    spend = pd.DataFrame({"month": pd.to_datetime(["2025-01-03", "2025-01-20"]),
                          "channel": ["ads", "ads"], "spend": [10.0, 5.0]})  # fmt: skip
    got = acq.read_inputs({"customers": customers, "marketing_spend": spend}, _Mapping(),
                          SMALL, tmp_path / "orders.csv")  # fmt: skip
    assert got.truth is None and got.spend["spend"].tolist() == [15.0]
    assert got.channel is not None and got.channel.loc["b"] == "ads"
    none = acq.read_inputs({}, _Mapping(), SMALL, tmp_path / "orders.csv")
    assert none.spend is None
    (tmp_path / "ground_truth.json").write_text('{"parameters": {}}')
    assert acq.read_inputs({}, _Mapping(), SMALL, tmp_path / "orders.csv").truth == {
        "parameters": {}
    }


def test_a_bad_spend_file_fails_before_anything_is_shown(tmp_path):
    from helpers.report.extra_tables import TableSpec, read_extra_tables

    path = write(tmp_path, "month,channel,spend\n2025-01-01,ads,-1\n", "marketing_spend.csv")
    spec = TableSpec("marketing_spend", str(path), {"month": "month", "channel": "channel",
                                                     "spend": "spend"})  # fmt: skip
    with pytest.raises(acq.DataValidationError, match="negative"):
        read_extra_tables({"marketing_spend": spec}, pd.Index(["1"]), "2025-01-01", "2025-12-31")


class _T:
    messages: dict = {}

    def __init__(self):
        self.shown = []

    def __call__(self, key, **values):
        return key

    def md(self, key, **values):
        self.shown.append(key)


def test_sections_say_what_they_need_when_their_data_are_missing():
    from helpers.report import Formatter

    T, fmt = _T(), Formatter("EUR")
    assert acq.show_attributes(None, None, SMALL, None, ECON, T, fmt) == {"shown": False}
    assert acq.show_costs(None, T, fmt, reason="a spend file") == {"shown": False}
    assert T.shown == ["attr.section", "attr.needs", "cac.section", "cac.needs"]


def _fit(cov: float) -> acq.Any:
    """A report ClvFit with fixed BG/NBD and Gamma-Gamma parameters (weeks) and a diagonal
    covariance of the log-parameters."""
    from helpers.btyd import ModelFit
    from helpers.report import ClvFit

    pf = ModelFit("BG/NBD", {"r": 0.8, "alpha": 6.0, "a": 0.6, "b": 3.5}, 0.0, 100, "W",
                  np.eye(4) * cov, True)  # fmt: skip
    gg = ModelFit("Gamma-Gamma", {"p": 6.0, "q": 4.0, "gamma": 15.0}, 0.0, 100, "W",
                  np.eye(3) * cov, True)  # fmt: skip
    return ClvFit(pd.DataFrame(), "BG/NBD", pd.DataFrame(), pf, gg, 13.0, ECON.shipping_per_order)


def test_projection_starts_at_the_observed_curve_and_grows_with_its_band():
    rng = np.random.default_rng(5)
    n = 400
    ids = [f"c{i}" for i in rng.integers(0, 120, n)]
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 600, n), unit="D")
    o = orders(list(zip(ids, days.astype(str), rng.gamma(3, 10, n).round(2), strict=True)))
    seg = summary(o, "2025-09-30")
    lc = acq.ltv_curves(o, seg, ECON, fit=_fit(0.01), months=24)
    for _, c in lc.curves.groupby("cohort"):
        start = c["projected"].first_valid_index()
        # the dashed line starts where the solid one ends, on the same value
        assert c.loc[start, "projected"] == pytest.approx(c.loc[start, "observed"])
        p = c["projected"].dropna()
        assert (np.diff(p) >= -1e-9).all()  # margin per order > 0: value only grows
        b = c[["projected", "low", "high"]].dropna()  # a one-customer cohort has no band
        assert (b["low"] <= b["projected"] + 1e-9).all() and (
            b["projected"] <= b["high"] + 1e-9
        ).all()
    flat = acq.ltv_curves(o, seg, ECON, fit=_fit(0.0), months=24)
    wide = acq.ltv_curves(o, seg, ECON, fit=_fit(0.05), months=24)
    w0 = (flat.curves["high"] - flat.curves["low"]).sum()
    assert (wide.curves["high"] - wide.curves["low"]).sum() > w0  # parameter uncertainty adds


def test_an_attribute_with_one_group_after_pooling_is_not_compared():
    from helpers.report import Formatter

    o = SMALL.assign(channel=["web", "web", "app", "web", "web"])
    seg = summary(SMALL)
    sec = acq.second_orders(SMALL, AS_OF)
    T = _T()
    out = acq.show_attributes(
        acq.first_order_attributes(o), sec, SMALL, seg, ECON, T, Formatter("EUR"), min_group=3
    )
    assert out["attributes"]["channel"]["groups"] is None
    assert T.shown == ["attr.section", "attr.one_group", "attr.discount.needs"]


def test_very_many_customers_are_sampled_systematically():
    assert acq._every_kth(10, limit=20).all()
    mask = acq._every_kth(1000, limit=300)  # k = 4
    assert mask.sum() == 250 and mask[::4].all()


def test_group_means_equal_pandas_mean_and_sem_per_group_and_age():
    rng = np.random.default_rng(0)
    v = pd.DataFrame(rng.normal(50, 20, size=(300, 5)), columns=pd.RangeIndex(5, name="age"))
    v.iloc[::7, 3:] = np.nan  # customers not observed that far
    g = rng.choice(["a", "b", "c"], 300)
    got = acq._group_means(v, g).set_index(["group", "age"]).sort_index()
    long = v.assign(group=g).melt(id_vars="group", var_name="age", value_name="value").dropna()
    by = long.groupby(["group", "age"])["value"]
    ref = pd.concat({"value": by.mean(), "se": by.sem(), "customers": by.size()}, axis=1)
    np.testing.assert_allclose(got.to_numpy(float), ref.to_numpy(float), rtol=1e-9)


@given(st.integers(1, 60), st.integers(1, 12), st.integers(1, 5), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_group_means_column_by_column_are_the_whole_matrix_sums_bit_for_bit(m, a, k, seed):
    """acq._group_means sums a column at a time: the same floats as np.add.at on the customers x
    ages matrix (each group's values added in the customers' order), NaN cells included."""
    rng = np.random.default_rng(seed)
    v = pd.DataFrame(rng.normal(50, 20, size=(m, a)), columns=pd.RangeIndex(a, name="age"))
    v[rng.random((m, a)) < 0.3] = np.nan
    g = rng.choice([f"g{i}" for i in range(k)], m)
    codes, names = pd.factorize(pd.Series(g), sort=True)
    x = v.to_numpy(float)
    known = ~np.isnan(x)
    x0 = np.where(known, x, 0.0)
    n, s1, s2 = (np.zeros((len(names), a)) for _ in range(3))
    np.add.at(n, codes, known.astype(float))
    np.add.at(s1, codes, x0)
    np.add.at(s2, codes, x0 * x0)
    got = acq._group_means(v, g)
    gi, ai = np.nonzero(n > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        se = np.sqrt(np.clip((s2 - n * mean**2) / (n - 1), 0, None) / n)
    np.testing.assert_array_equal(got["value"].to_numpy(), mean[gi, ai])
    np.testing.assert_array_equal(got["se"].to_numpy(), se[gi, ai])
    np.testing.assert_array_equal(got["customers"].to_numpy(), n[gi, ai].astype(int))
