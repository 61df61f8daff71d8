"""Tests of helpers.cohorts: a hand-computed cohort table, a plain-pandas reference on random
data (hypothesis), censoring, and the properties every retention table must have."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from helpers import cohorts, data, periods


def _orders(rows: list[tuple[int, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [c for c, _ in rows],
            "order_date": pd.to_datetime([d for _, d in rows]),
            "amount": np.arange(1, len(rows) + 1, dtype=float) * 10,
        }
    )


# customers 1, 2 acquired in January, 3 in February, 4 in March; as-of 2025-03-31
TINY = _orders(
    [
        (1, "2025-01-03"), (1, "2025-01-20"), (1, "2025-03-02"),
        (2, "2025-01-15"), (2, "2025-02-01"),
        (3, "2025-02-10"), (3, "2025-03-30"),
        (4, "2025-03-05"),
        (4, "2025-04-02"),  # after as-of: ignored
    ]
)  # fmt: skip


def test_tiny_n_period_by_hand() -> None:
    t = cohorts.cohort_table(TINY, "M", "2025-03-31")
    assert [str(p) for p in t.index] == ["2025-01", "2025-02", "2025-03"]
    expected = np.array([[2, 1, 1], [1, 1, np.nan], [1, np.nan, np.nan]])
    np.testing.assert_array_equal(t.to_numpy(), expected)  # NaN = not yet observed, not 0
    r = cohorts.retention_matrix(t)
    np.testing.assert_allclose(r.to_numpy(), expected / expected[:, [0]])


def test_tiny_unbounded_by_hand() -> None:
    t = cohorts.cohort_table(TINY, "M", "2025-03-31", kind="unbounded")
    # January: customer 1 last active at age 2, customer 2 at age 1 -> [2, 2, 1]
    np.testing.assert_array_equal(t.to_numpy(), [[2, 2, 1], [1, 1, np.nan], [1, np.nan, np.nan]])


def test_tiny_average_curve_is_size_weighted() -> None:
    t = cohorts.cohort_table(TINY, "M", "2025-03-31")
    curve = cohorts.average_curve(t)
    # age 1: (1 + 1) / (2 + 1) over the two observed cohorts; age 2: 1 / 2 (January only)
    np.testing.assert_allclose(curve.to_numpy(), [1.0, 2 / 3, 1 / 2])
    assert curve.iloc[1] != pytest.approx(
        np.nanmean(cohorts.retention_matrix(t)[1])
    )  # not the plain mean
    assert np.isnan(cohorts.average_curve(t, min_cohorts=2).iloc[2])


def test_tiny_brackets_by_hand() -> None:
    # days since first order: c1 17, 58; c2 17; c3 48; c4 (none, its second order is after as-of)
    s = cohorts.bracket_retention(TINY, [(1, 7), (8, 30), (31, 60)], freq=None, as_of="2025-03-31")
    # eligible for 1-7 (first order at least 8 days before Apr 1): all 4, retained none
    # 8-30 (>= 31 days): c1, c2, c3 -> c1, c2 retained; 31-60 (>= 61 days): c1, c2 -> c1 retained
    np.testing.assert_allclose(s.to_numpy(), [0 / 4, 2 / 3, 1 / 2])
    assert list(s.index) == ["1-7", "8-30", "31-60"]
    by_cohort = cohorts.bracket_retention(
        TINY, [(1, 7), (8, 30), (31, 60)], freq="M", as_of="2025-03-31"
    )
    np.testing.assert_allclose(
        by_cohort.to_numpy(), [[0, 1, 0.5], [0, 0, np.nan], [0, np.nan, np.nan]]
    )


def test_tiny_revenue_by_hand() -> None:
    r = cohorts.revenue_table(TINY, "M", "2025-03-31")
    # January cohort (2 customers): age 0: 10 + 20 + 40; age 1: + 50; age 2: + 30 -> per customer
    np.testing.assert_allclose(r.iloc[0].to_numpy(), np.array([70, 120, 150]) / 2)
    np.testing.assert_allclose(r.iloc[1, :2].to_numpy(), [60, 130])
    assert r.iloc[1, 2] != r.iloc[1, 2]  # NaN


def test_segments_rows_and_curves() -> None:
    seg = pd.Series({1: "a", 2: "b", 3: "a", 4: "b"}, name="channel")
    t = cohorts.cohort_table(TINY, "M", "2025-03-31", by=seg)
    assert t.index.names == ["channel", "cohort"]
    assert t[0].groupby(level="channel").sum().to_dict() == {"a": 2, "b": 2}
    curves = cohorts.average_curve(t)
    assert list(curves.columns) == ["a", "b"]
    # a: c1 (Jan; active at ages 0, 2) and c3 (Feb; ages 0, 1); b: c2 (Jan; ages 0, 1), c4 (Mar)
    np.testing.assert_allclose(curves["a"].to_numpy(), [1.0, 1 / 2, 1.0])
    np.testing.assert_allclose(curves["b"].to_numpy(), [1.0, 1.0, 0.0])


def test_weeks_months_quarters_match_pandas_periods() -> None:
    dates = pd.Series(pd.date_range("1999-12-25", "2031-01-08", freq="37h"))
    for freq in ("D", "W", "M", "Q"):
        np.testing.assert_array_equal(
            periods.period_codes(dates, freq), dates.dt.to_period(freq).array.asi8
        )
    with pytest.raises(ValueError, match="freq"):
        periods.period_codes(dates, "Y")


def _reference(orders: pd.DataFrame, freq: str, as_of: pd.Timestamp) -> pd.DataFrame:
    """Slow, obvious pandas version: Period columns, groupby, unstack. Independent of
    helpers.periods: the as-of day ends at midnight after it, and the last observed period is the
    one before the period that contains the next day (the last period that has ended)."""
    end = as_of.normalize() + pd.Timedelta(days=1)
    last = (pd.Period(end, freq) - 1).ordinal
    o = orders[orders["order_date"] < end].assign(p=lambda d: d["order_date"].dt.to_period(freq))
    o = o[o["p"].array.asi8 <= last]
    o["cohort"] = o.groupby("customer_id")["p"].transform("min")
    o["age"] = (o["p"].array.asi8 - o["cohort"].array.asi8).astype(int)
    t = (
        o.drop_duplicates(["customer_id", "age"])
        .groupby(["cohort", "age"])
        .size()
        .unstack(fill_value=0)
    )
    t = t.reindex(columns=range(last - t.index.min().ordinal + 1), fill_value=0).astype(float)
    mask = np.arange(t.shape[1])[None, :] > (last - t.index.asi8)[:, None]
    return t.mask(mask)


random_orders = st.lists(
    st.tuples(st.integers(1, 25), st.integers(0, 700)), min_size=1, max_size=120
).map(lambda rows: pd.DataFrame({
    "customer_id": [c for c, _ in rows],
    "order_date": pd.Timestamp("2024-01-01") + pd.to_timedelta([d * 86400 + 3600 for _, d in rows], unit="s"),
    "amount": 1.0,
}))  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(orders=random_orders, freq=st.sampled_from(["W", "M", "Q"]))
def test_matches_plain_pandas_reference(orders: pd.DataFrame, freq: str) -> None:
    as_of = pd.Timestamp("2025-06-30")  # a Monday: mid-week, the last day of Q2 and of June
    last = periods.last_complete_period(as_of, freq)
    assume((periods.period_codes(orders["order_date"], freq) <= last).any())
    got = cohorts.cohort_table(orders, freq, as_of)
    ref = _reference(orders, freq, as_of)
    ref = ref.reindex(got.index)
    pd.testing.assert_frame_equal(
        got.dropna(how="all"), ref.dropna(how="all"), check_names=False, check_index_type=False
    )


@settings(max_examples=40, deadline=None)
@given(orders=random_orders, freq=st.sampled_from(["D", "W", "M", "Q"]))
def test_table_properties(orders: pd.DataFrame, freq: str) -> None:
    as_of = pd.Timestamp("2025-12-31")  # a Wednesday: the last week is partial
    n = cohorts.cohort_table(orders, freq, as_of)
    u = cohorts.cohort_table(orders, freq, as_of, kind="unbounded")
    # cohort sizes sum to the number of customers acquired in complete periods
    observed = periods.period_codes(orders["order_date"], freq) <= periods.last_complete_period(
        as_of, freq
    )
    assert n[0].sum() == orders.loc[observed, "customer_id"].nunique()
    # shares in [0, 1]; unbounded >= n-period and never rising with age
    for table in (n, u):
        r = cohorts.retention_matrix(table).to_numpy()
        assert np.all((r[~np.isnan(r)] >= 0) & (r[~np.isnan(r)] <= 1))
    assert np.all((u >= n) | n.isna())
    assert np.all(np.diff(u.to_numpy(), axis=1)[~np.isnan(np.diff(u.to_numpy(), axis=1))] <= 0)
    # censoring: NaN exactly where cohort + age > the last complete period (a staircase)
    last = (pd.Period(as_of + pd.Timedelta(days=1), freq) - 1).ordinal
    expected_nan = np.arange(n.shape[1])[None, :] > (last - n.index.asi8)[:, None]
    np.testing.assert_array_equal(n.isna().to_numpy(), expected_nan)
    # weighted curve within [0, 1], 1 at age 0
    curve = cohorts.average_curve(n)
    assert curve.iloc[0] == 1.0 and curve.dropna().between(0, 1).all()


@settings(max_examples=30, deadline=None)
@given(orders=random_orders)
def test_brackets_match_brute_force(orders: pd.DataFrame) -> None:
    as_of = pd.Timestamp("2025-03-31")
    assume((orders["order_date"] < as_of + pd.Timedelta(days=1)).any())
    brackets = [(1, 7), (8, 30), (31, 90), (120, 400)]
    got = cohorts.bracket_retention(orders, brackets, freq=None, as_of=as_of)
    o = orders[orders["order_date"] < as_of + pd.Timedelta(days=1)]
    first = o.groupby("customer_id")["order_date"].min()
    day = (o["order_date"] - o["customer_id"].map(first)).dt.days
    end = as_of + pd.Timedelta(days=1)
    for (lo, hi), share in zip(brackets, got, strict=True):
        eligible = first[first + pd.Timedelta(days=hi + 1) <= end].index
        hit = set(o.loc[day.between(lo, hi), "customer_id"]) & set(eligible)
        if len(eligible):
            assert share == pytest.approx(len(hit) / len(eligible))
        else:
            assert np.isnan(share)


def test_revenue_sums_to_total() -> None:
    o = data.load_orders()
    r = cohorts.revenue_table(o, "Q", "2025-12-31", per_customer=False)
    last = r.ffill(axis=1).iloc[:, -1]  # cumulative revenue at the last observed age
    assert last.sum() == pytest.approx(o["amount"].sum())


def test_sample_data_cohorts() -> None:
    o, c = data.load_orders(), data.load_customers()
    t = cohorts.cohort_table(o, "M", "2025-12-31")
    assert len(t) == 36 and t.shape[1] == 36
    assert t[0].sum() == o["customer_id"].nunique()
    # the first order is placed at sign-up: cohorts equal sign-up months
    signup = c.set_index("customer_id")["signup_date"].dt.to_period("M").value_counts().sort_index()
    assert t[0].astype(int).to_dict() == signup.reindex(t.index).to_dict()
    # orders after the as-of date are ignored: an earlier as-of gives fewer cohorts
    assert len(cohorts.cohort_table(o, "M", "2024-12-31")) == 24


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="column"):
        cohorts.cohort_table(TINY.rename(columns={"order_date": "date"}))
    with pytest.raises(ValueError, match="kind"):
        cohorts.cohort_table(TINY, kind="weekly")
    with pytest.raises(ValueError, match="no orders"):
        cohorts.cohort_table(TINY, as_of="2020-01-01")
    with pytest.raises(ValueError, match="overlapping"):
        cohorts.bracket_retention(TINY, [(1, 10), (5, 20)])


@pytest.mark.parametrize("ids", ["text", "sparse", "negative"])
def test_customer_id_kinds_give_the_same_table(ids: str) -> None:
    """Integer ids in a compact range take a fast path; text ids and ids spread over a huge
    range are factorized; all must give the same result."""
    mapping = {
        "text": lambda c: "cust-" + c.astype(str),
        "sparse": lambda c: c * 10**12,
        "negative": lambda c: c - 3,
    }[ids]
    other = TINY.assign(customer_id=mapping(TINY["customer_id"]))
    for kind in ("n_period", "unbounded"):
        pd.testing.assert_frame_equal(
            cohorts.cohort_table(other, "M", "2025-03-31", kind=kind),
            cohorts.cohort_table(TINY, "M", "2025-03-31", kind=kind),
        )
    pd.testing.assert_frame_equal(
        cohorts.bracket_retention(other, [(1, 7), (8, 30)], "M", "2025-03-31"),
        cohorts.bracket_retention(TINY, [(1, 7), (8, 30)], "M", "2025-03-31"),
    )


def test_cohort_heatmap_leaves_censored_cells_blank() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers import plots

    m = cohorts.retention_matrix(cohorts.cohort_table(TINY, "M", "2025-03-31"))
    ax = plots.cohort_heatmap(m)
    labels = [t.get_text() for t in ax.texts]
    assert len(labels) == int(m.notna().to_numpy().sum()) == 6
    assert labels[:3] == ["100%", "50%", "50%"]
    plt.close(ax.figure)


def test_mid_period_as_of_by_hand() -> None:
    """As-of 2025-03-15: March is partial, so February is the last observed month; March orders
    do not count as churn (the cells are NaN) and customer 4 (acquired in March) has no cohort."""
    t = cohorts.cohort_table(TINY, "M", "2025-03-15")
    assert [str(p) for p in t.index] == ["2025-01", "2025-02"]
    np.testing.assert_array_equal(t.to_numpy(), [[2, 1], [1, np.nan]])
    # the same as-of with the time of day: still the end of that day
    pd.testing.assert_frame_equal(t, cohorts.cohort_table(TINY, "M", "2025-03-15 00:30"))
    b = cohorts.bracket_retention(TINY, [(1, 7), (8, 30)], freq="M", as_of="2025-03-15")
    assert [str(p) for p in b.index] == ["2025-01", "2025-02"]


@pytest.mark.parametrize("kind", ["n_period", "unbounded"])
def test_mid_quarter_as_of_equals_the_last_quarter_end_on_the_sample(kind: str) -> None:
    """On the bundled data a mid-quarter as-of (2025-11-15) reads the same cohort table as the end
    of the last complete quarter (2025-09-30), with the 2025Q4 orders not counted as churn."""
    orders = data.load_orders()
    mid = cohorts.cohort_table(orders, "Q", "2025-11-15", kind=kind)
    end = cohorts.cohort_table(
        orders[orders["order_date"] < "2025-10-01"], "Q", "2025-09-30", kind=kind
    )
    pd.testing.assert_frame_equal(mid, end)
    assert str(mid.index[-1]) == "2025Q3" and np.isnan(mid.loc[pd.Period("2025Q3"), 1])


def test_sampling_band_hand_case():
    """Two cohorts of 100 with 30 and 50 buying at age 1: pooled p = 0.4, band 0.4 -/+ 1.96
    sqrt(0.24 / 100) = 0.4 -/+ 0.0960; chi-square = sum (O - E)^2 / E with E = 40, 60 per cohort:
    2 x (100 / 40 + 100 / 60) = 8.333 on 1 df, p = 0.0039."""
    table = pd.DataFrame({0: [100.0, 100.0], 1: [30.0, 50.0]}, index=["a", "b"])
    band = cohorts.sampling_band(table, 1)
    assert band["pooled"].tolist() == pytest.approx([0.4, 0.4])
    assert band["high"].tolist() == pytest.approx([0.4960, 0.4960], abs=1e-4)
    assert band.attrs["chi2"] == pytest.approx(25 / 3)
    assert band.attrs["dof"] == 1 and band.attrs["p_value"] == pytest.approx(0.00389, abs=1e-5)


def test_value_by_age_by_hand() -> None:
    # customers 1 and 2 acquired in January, 3 in March (never buys); as-of end of March
    start = pd.Series(pd.to_datetime(["2025-01-10", "2025-01-20", "2025-03-01"]), index=[1, 2, 3])
    flows = pd.DataFrame(
        {"customer_id": [1, 1, 2, 1], "value": [10.0, 5.0, 4.0, 100.0],
         "date": pd.to_datetime(["2025-01-12", "2025-02-03", "2025-03-15", "2025-04-02"])}
    )  # fmt: skip
    v = cohorts.value_by_age(flows, start, "2025-03-31").set_index("age")
    # age 0: (10 + 0 + 0) / 3; age 1: (15 + 0) / 2; age 2: (15 + 4) / 2; April is after as-of
    assert v["value"].tolist() == pytest.approx([10 / 3, 7.5, 9.5])
    assert v["customers"].tolist() == [3, 2, 2]
    assert v.loc[1, "se"] == pytest.approx(np.std([15, 0], ddof=1) / np.sqrt(2))
    d = cohorts.value_by_age(flows, start, "2025-03-31", monthly_discount_rate=0.1)
    assert d["value"].iloc[1] == pytest.approx((10 + 5 / 1.1) / 2)
    by = pd.Series(["x", "y", "y"], index=[1, 2, 3])
    g = cohorts.value_by_age(flows, start, "2025-03-31", by=by)
    assert g.loc[(g["group"] == "y") & (g["age"] == 0), "value"].item() == 0.0
    assert cohorts.payback_age(v.index, v["value"], 9.0) == 2.0
    assert np.isnan(cohorts.payback_age(v.index, v["value"], 50.0))


def test_spend_by_tenure_separates_sorting_from_growth() -> None:
    """Light buyers (one 20-EUR order a month, months 0-5, then gone) and heavy buyers (two a
    month, months 0-23): the cross-section says the existing spend twice as much per active
    month as the new ones mixed with light buyers; the same customers spend exactly the same."""
    rows = []
    for c in range(10):
        heavy = c < 4
        for month in range(24 if heavy else 6):
            day = pd.Timestamp("2023-01-01") + pd.DateOffset(months=month)
            rows += [(c, day + pd.Timedelta(days=d)) for d in ((1, 10) if heavy else (1,))]
    orders = pd.DataFrame(rows, columns=["customer_id", "order_date"]).assign(amount=20.0)
    out = cohorts.spend_by_tenure(orders, "2024-12-31", new=(0, 5), existing=(12, 23), n_boot=50)
    new = (4 * 6 * 40 + 6 * 6 * 20) / 60
    assert out.loc["cross_section", "ratio"] == pytest.approx(40 / new)
    assert out.loc["same_customers", "ratio"] == pytest.approx(1.0)
    assert out.loc["sorting", "ratio"] == pytest.approx(40 / new)
    assert out.loc["same_customers", "customers"] == 4
    assert (out["ci_low"] <= out["ratio"] + 1e-12).all() and (
        out["ratio"] <= out["ci_high"] + 1e-12
    ).all()


@pytest.mark.parametrize(
    ("curve", "s"),
    [
        ("linear", lambda t: 900 - 50.0 * t),
        ("exponential", lambda t: 950 * np.exp(-0.2 * t)),
        ("power", lambda t: 800 * t**-0.5),
    ],
)
def test_survival_curves_recover_exact_curves(curve, s) -> None:
    t = np.arange(0, 13, dtype=float)
    surv = np.r_[1000.0, s(t[1:])]
    fit = cohorts.fit_survival_curves(surv, 7)
    np.testing.assert_allclose(fit.loc[8:, curve], surv[8:], rtol=1e-9)


def test_managers_curves_fail_where_the_sbg_holds() -> None:
    """Fader & Hardie (2007): fitted to years 1-7, every curve misses years 8-12 by more than
    the sBG; the linear one goes below zero by year 11 for the regular segment."""
    from helpers import survival

    fh = survival.FADER_HARDIE_2007
    for seg, surv in fh["survivors"].items():
        actual = np.asarray(surv[8:], dtype=float)
        sbg = 1000 * survival.fit_sbg(surv[:8]).survival(np.arange(8, 13))
        sbg_err = np.abs(sbg - actual).mean()
        curves = cohorts.fit_survival_curves(surv, 7).loc[8:]
        for name in cohorts.CURVES:
            assert np.abs(curves[name].to_numpy() - actual).mean() > 1.5 * sbg_err, (seg, name)
    regular = cohorts.fit_survival_curves(fh["survivors"]["regular"], 7)
    assert regular.loc[12, "linear"] < 0


def test_retention_curves_chain_exact_geometric_retention() -> None:
    surv = 1000 * 0.8 ** np.arange(13.0)  # constant retention 0.8: every curve fits it exactly
    fit = cohorts.fit_survival_curves(surv, 7, on="retention")
    for name in ("linear", "exponential"):
        np.testing.assert_allclose(fit[name], surv, rtol=1e-9)
    assert fit.attrs["year_rate_reaches_1"]["linear"] == np.inf  # flat at 0.8: never
    from helpers import survival

    fh = cohorts.fit_survival_curves(
        survival.FADER_HARDIE_2007["survivors"]["regular"], 7, on="retention"
    )
    a, b = fh.attrs["params"]["linear"]
    t1 = fh.attrs["year_rate_reaches_1"]["linear"]
    assert a + b * t1 == pytest.approx(1.0) and 7 < t1 < 9
    with pytest.raises(ValueError, match="on must be"):
        cohorts.fit_survival_curves(surv, 7, on="rates")
