"""helpers.churn (and the sBG with covariates in helpers.survival): published known answers
(Kaplan-Meier and log-rank on the 6-MP leukemia data, the Rossi Cox coefficients), hand cases
(AUC = U / (n1 n0), the lift table, the churn definition, the long format) and recovery of the
planted subscription hazard ratios on the bundled second-edition data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lifelines.datasets import load_leukemia, load_rossi
from sklearn.metrics import roc_auc_score

from helpers import churn, data, paths, survival

# ----------------------------------------------------------------------------- known answers


def test_kaplan_meier_6mp_published_values():
    """Freireich et al. (1963) 6-MP arm (lifelines' leukemia data, Rx = 0), the classic KM table
    of Kaplan-Meier teaching: S(6) = 0.857, S(7) = 0.807, S(10) = 0.753, S(13) = 0.690,
    S(16) = 0.627, S(22) = 0.538, S(23) = 0.448; median 23 weeks."""
    leuk = load_leukemia()
    tab = churn.km_summary(
        leuk[leuk["Rx"] == 0], "t", "status", times=(6, 7, 10, 13, 16, 22, 23)
    ).iloc[0]
    expected = [0.857, 0.807, 0.753, 0.690, 0.627, 0.538, 0.448]
    got = tab[["S(6)", "S(7)", "S(10)", "S(13)", "S(16)", "S(22)", "S(23)"]].to_numpy(float)
    np.testing.assert_allclose(got, expected, atol=5e-4)
    assert tab["median"] == 23 and tab["n"] == 21 and tab["events"] == 9


def test_logrank_6mp_vs_placebo():
    """references.md: log-rank on the 6-MP data, 21 vs 21: chi2 = 16.8, p = 4.17e-5."""
    res = churn.logrank(load_leukemia(), "t", "status", "Rx")
    assert res["df"] == 1
    assert res["statistic"] == pytest.approx(16.79, abs=0.01)
    assert res["p_value"] == pytest.approx(4.17e-5, rel=0.01)


def test_cox_rossi_matches_r():
    """references.md: Rossi recidivism, Cox with Efron ties (R's coxph via lifelines' tests)."""
    rossi = load_rossi()
    fit = churn.fit_cox(rossi, "week", "arrest")
    hr = churn.hazard_ratios(fit)
    coef = {"fin": -0.3794222, "age": -0.0574377, "race": 0.3138998, "wexp": -0.1497957,
            "mar": -0.4337039, "paro": -0.0848711, "prio": 0.0914971}  # fmt: skip
    se = {"fin": 0.19138, "age": 0.02200, "race": 0.30799, "wexp": 0.21222, "mar": 0.38187,
          "paro": 0.19576, "prio": 0.02865}  # fmt: skip
    for k in coef:
        assert hr.loc[k, "coef"] == pytest.approx(coef[k], abs=1e-5)
        assert hr.loc[k, "se"] == pytest.approx(se[k], abs=1e-4)
        assert hr.loc[k, "hr"] == pytest.approx(np.exp(coef[k]), rel=1e-5)
        assert hr.loc[k, "ci_low"] < hr.loc[k, "hr"] < hr.loc[k, "ci_high"]
    assert fit.log_likelihood_ == pytest.approx(-658.75, abs=0.01)
    assert fit.log_likelihood_ratio_test().test_statistic == pytest.approx(33.27, abs=0.01)
    ph = churn.ph_test(fit, rossi)
    assert set(ph.index) == set(coef) and ph["p"].between(0, 1).all()


def test_time_varying_cox_on_split_static_data_equals_cox():
    """Splitting each Rossi subject's follow-up into (0, 20], (20, week] changes nothing for
    static covariates: the time-varying fit equals the ordinary Cox fit."""
    rossi = load_rossi().reset_index(names="id")
    a = rossi.assign(start=0, stop=np.minimum(rossi["week"], 20))
    a["event"] = np.where(rossi["week"] <= 20, rossi["arrest"], 0)
    b = rossi[rossi["week"] > 20].assign(
        start=20, stop=lambda d: d["week"], event=lambda d: d["arrest"]
    )
    long = pd.concat([a, b]).drop(columns=["week", "arrest"])
    ctv = churn.fit_cox_time_varying(long, id_col="id")
    cox = churn.fit_cox(rossi.drop(columns="id"), "week", "arrest")
    pd.testing.assert_series_equal(
        churn.hazard_ratios(ctv)["coef"].sort_index(),
        churn.hazard_ratios(cox)["coef"].sort_index(),
        atol=1e-6,
        check_names=False,
    )


# ----------------------------------------------------------------------------- scores


def test_auc_equals_mann_whitney_on_a_hand_case():
    """Positives scored 0.9, 0.4, 0.6; negatives 0.5, 0.4, 0.1, 0.2. Pairs won: 0.9 beats 4,
    0.6 beats 4, 0.4 beats 2 and ties 1 -> U = 4 + 4 + 2.5 = 10.5; AUC = 10.5 / 12 = 0.875."""
    y = np.array([1, 0, 1, 0, 1, 0, 0])
    s = np.array([0.9, 0.5, 0.4, 0.4, 0.6, 0.1, 0.2])
    assert churn.auc_mann_whitney(y, s) == pytest.approx(10.5 / 12)
    assert roc_auc_score(y, s) == pytest.approx(10.5 / 12)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=2, max_size=40))
def test_auc_matches_sklearn(pairs):
    y = np.array([p[0] for p in pairs], dtype=int)
    s = np.array([p[1] for p in pairs], dtype=float)
    if y.min() == y.max():
        with pytest.raises(ValueError):
            churn.auc_mann_whitney(y, s)
        return
    assert churn.auc_mann_whitney(y, s) == pytest.approx(roc_auc_score(y, s))


def test_gains_table_hand_case():
    """10 customers, 4 churners, in 5 groups of 2 by score: churners at score ranks 1, 2, 4, 7.
    Group 1 holds 2 churners: gains 2/4 = 0.5 with 20 % contacted, lift 2.5; group 2 one more:
    0.75 at 40 %, lift 1.875; group 4 the last: 1.0 at 80 %, lift 1.25."""
    score = np.arange(10, 0, -1)  # already sorted, highest first
    y = np.array([1, 1, 0, 1, 0, 0, 1, 0, 0, 0])
    g = churn.gains_table(y, score, bins=5)
    assert g["churners"].tolist() == [2, 1, 0, 1, 0]
    np.testing.assert_allclose(g["share_of_churners"], [0.5, 0.75, 0.75, 1.0, 1.0])
    np.testing.assert_allclose(g["lift"], [2.5, 1.875, 1.25, 1.25, 1.0])
    rep = churn.score_report(y, score / 10, bins=5)
    assert rep["top_decile_lift"] == pytest.approx(2.5) and rep["base_rate"] == 0.4
    assert rep["brier"] == pytest.approx(np.mean((score / 10 - y) ** 2))


def test_calibration_table_groups_and_intervals():
    rng = np.random.default_rng(1)
    p = rng.random(5000)
    y = rng.random(5000) < p
    t = churn.calibration_table(y, p, bins=5)
    assert t["customers"].sum() == 5000
    assert ((t["observed_low"] <= t["observed"]) & (t["observed"] <= t["observed_high"])).all()
    np.testing.assert_allclose(t["observed"], t["predicted"], atol=0.04)  # calibrated by design


def test_contact_value():
    """p x s x V - c: 0.5 x 0.2 x 100 - 5 = 5; break-even p = c / (s V) = 0.25."""
    ev = churn.contact_value(np.array([0.5, 0.25, 0.1]), 100.0, 0.2, 5.0)
    np.testing.assert_allclose(ev, [5.0, 0.0, -3.0])
    # half of the would-be churners come back anyway: value at risk halves, 0.5 x 0.5 x 20 - 5 = 0
    half = churn.contact_value(np.array([0.5, 1.0]), 100.0, 0.2, 5.0, came_back=0.5)
    np.testing.assert_allclose(half, [0.0, 5.0])
    with pytest.raises(ValueError):
        churn.contact_value(0.5, 100.0, 0.2, 5.0, came_back=1.5)


# ----------------------------------------------------------------------------- definitions


def test_churned_by_definition_and_order_gaps(ten_orders):
    """As-of 2025-03-31, 30 days: the window is the 30 days up to the end of 31 March, from
    2025-03-02 00:00. Last orders: 1 on 03-01 (just outside: churned), 2 on 02-14 (churned),
    3 on 01-20 (churned), 4 on 03-12, 5 on 03-31 (both active)."""
    c = churn.churned_by_definition(ten_orders, "2025-03-31", 30)
    assert c.to_dict() == {1: True, 2: True, 3: True, 4: False, 5: False}
    assert not churn.churned_by_definition(ten_orders, "2025-03-31", 31).loc[1]
    gaps = churn.order_gaps(ten_orders, "2025-03-31")
    assert len(gaps) == 10 and gaps["observed"].sum() == 5  # 5 customers: 5 last orders censored
    c1 = gaps[gaps["customer_id"] == 1]
    np.testing.assert_allclose(c1["gap_days"], [29, 26, 31])  # to 02-03, to 03-01, to 04-01 00:00
    t = churn.definition_tradeoff(gaps, [10, 30], follow_days=5)
    assert t.loc[10, "flagged"] == (gaps["gap_days"] > 10).sum()
    assert 0 <= t.loc[10, "came_back"] <= 1


def test_definition_tradeoff_does_not_select_on_the_outcome():
    """Data end 2025-12-31 24:00 (the censored gap's stop). Threshold 30, follow-up 60: a gap
    must start by 2025-11-01 to be followed whole. Customer 1: an old gap (from 01-01) that came
    back after 40 days, and a recent one (from 11-20) that came back after 35 days; customer 2:
    a recent gap (from 11-25) still open. The old rule kept the recent gap that came back and
    dropped the open one (came_back 2/2); only the old gap is followable: 1/1, and the recent
    pair counts in ``flagged`` only (3 gaps from 2 customers)."""
    end = pd.Timestamp("2026-01-01")
    starts = pd.to_datetime(["2025-01-01", "2025-11-20", "2025-11-25"])
    gaps = pd.DataFrame({"customer_id": [1, 1, 2], "order_date": starts,
                         "gap_days": [40.0, 35.0, (end - starts[2]).days],
                         "observed": [True, True, False]})  # fmt: skip
    t = churn.definition_tradeoff(gaps, [30], follow_days=60)
    assert t.loc[30, "flagged"] == 3 and t.loc[30, "customers"] == 2
    assert t.loc[30, "followed"] == 1 and t.loc[30, "came_back"] == 1.0
    # the Kaplan-Meier of the return time keeps the open gap, censored after 7 days: from day 30
    # the returns at 5 and 10 days leave S = 2/3, then 0 (per gap and per customer alike)
    assert t.loc[30, "came_back_km"] == 1.0 and t.loc[30, "came_back_km_customer"] == 1.0


def test_definition_tradeoff_without_the_kaplan_meier_is_the_same_table_less_its_two_columns(
    ten_orders,
):
    """``km=False`` (the report's lost window) leaves the other columns as they are."""
    gaps = churn.order_gaps(ten_orders, "2025-03-31")
    full = churn.definition_tradeoff(gaps, [5, 10, 20, 30], follow_days=5)
    lean = churn.definition_tradeoff(gaps, [5, 10, 20, 30], follow_days=5, km=False)
    assert {"came_back_km", "came_back_km_customer"} <= set(full.columns)
    pd.testing.assert_frame_equal(
        lean, full.drop(columns=["came_back_km", "came_back_km_customer"])
    )


def test_censoring_bias_directions():
    rng = np.random.default_rng(3)
    t_true = rng.exponential(10, 4000)
    cens = rng.uniform(0, 20, 4000)
    d, e = np.minimum(t_true, cens), t_true <= cens
    b = churn.censoring_bias(d, e, [5, 10])
    np.testing.assert_allclose(b["kaplan_meier"], np.exp(-np.array([0.5, 1.0])), atol=0.03)
    assert (b["drop_censored"] < b["kaplan_meier"] - 0.05).all()
    assert (b["censored_as_churned"] < b["kaplan_meier"] - 0.05).all()
    nocens = churn.censoring_bias(t_true, np.ones(4000, bool), [5, 10])
    np.testing.assert_allclose(nocens["kaplan_meier"], nocens["drop_censored"])


# ----------------------------------------------------------------------------- long format


@pytest.fixture
def two_subscriptions() -> pd.DataFrame:
    """Subscription 1 starts 2025-01-15, churns after 3 months (end 2025-04-15); subscription 2
    starts 2025-02-10 and is active at 2025-05-31 (3 whole months observed)."""
    s = pd.DataFrame(
        {
            "subscription_id": [1, 2],
            "customer_id": [10, 20],
            "plan": ["A", "B"],
            "start_date": pd.to_datetime(["2025-01-15", "2025-02-10"]),
            "end_date": pd.to_datetime(["2025-04-15", None]),
        }
    )
    return survival.subscription_durations(s, "2025-05-31")


def test_subscription_months_long_format(two_subscriptions):
    long = churn.subscription_months(two_subscriptions)
    assert long["subscription_id"].tolist() == [1, 1, 1, 2, 2, 2]
    assert long["start"].tolist() == [0, 1, 2, 0, 1, 2] and long["stop"].tolist() == [1, 2, 3] * 2
    assert long["event"].tolist() == [0, 0, 1, 0, 0, 0]
    assert long["month_start"].dt.strftime("%m-%d").tolist() == [
        "01-15", "02-15", "03-15", "02-10", "03-10", "04-10",
    ]  # fmt: skip


def test_bad_ticket_flag_knows_only_the_past(two_subscriptions):
    """Customer 10: ticket opened 02-10 answered after 2 h, resolved 02-20 (good, but still open
    at the 02-15 month start); ticket opened 03-14 never answered (bad). Customer 20: a ticket
    answered after 30 h on 01-20, before the subscription (in the 60-day window of 02-10 and
    03-10: 03-10 is 49 days after)."""
    long = churn.subscription_months(two_subscriptions)
    tk = pd.DataFrame(
        {
            "customer_id": [10, 10, 20],
            "opened_at": pd.to_datetime(
                ["2025-02-10 09:00", "2025-03-14 12:00", "2025-01-20 08:00"]
            ),
            "first_response_at": pd.to_datetime(["2025-02-10 11:00", None, "2025-01-21 14:00"]),
            "resolved_at": pd.to_datetime(["2025-02-20", None, "2025-01-25"]),
        }
    )
    now = churn.bad_ticket_flag(long, tk)
    # 10: 01-15 none; 02-15 the first ticket is still unresolved that day; 03-15 the first is
    # resolved, the second is 12 h old (its 24 h wait is not over) but not resolved yet.
    # 20: late answer on 01-20, within 60 days of 02-10 and 03-10, not of 04-10
    assert now.tolist() == [0, 1, 1, 1, 1, 0]
    future = churn.bad_ticket_flag(long, tk, known_at_time=False)
    # using the final data: the first ticket was resolved and answered fast (never bad); the
    # second is never resolved, so it counts at 03-15 although nobody could know yet
    assert future.tolist() == [0, 0, 1, 1, 1, 0]


def test_visits_drop_flag():
    long = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2],
            "month_start": pd.to_datetime(["2025-02-05", "2025-03-05", "2025-04-05", "2025-03-01"]),
        }
    )
    eng = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2],
            "month": pd.to_datetime(["2025-01-01", "2025-02-01", "2025-03-01", "2025-02-01"]),
            "site_visits": [3, 0, 0, 0],
        }
    )
    # 1 at 02-05: Jan 3, Dec missing -> 0; at 03-05: Feb 0 after Jan 3 -> drop; at 04-05: Mar 0
    # after Feb 0 -> no; 2 at 03-01: Feb 0, Jan missing -> no
    assert churn.visits_drop_flag(long, eng).tolist() == [0, 1, 0, 0]


def test_latest_nps_category():
    nps = pd.DataFrame(
        {"customer_id": [1, 1, 2], "surveyed_at": pd.to_datetime(["2025-01-10", "2025-06-10", "2025-03-01"]),
         "score": [3, 9, 7]}
    )  # fmt: skip
    at = pd.to_datetime(["2025-01-10", "2025-02-01", "2025-07-01", "2025-03-02", "2025-01-01"])
    cat = churn.latest_nps_category([1, 1, 1, 2, 3], at, nps)
    assert cat.tolist() == ["none", "detractor", "promoter", "passive", "none"]


def test_landmark_features_and_outcome(ten_orders):
    """Landmark 2025-02-28, 30 days. Repeat buyers active in the 30 days up to the end of 02-28:
    customer 1 (orders 01-05, 02-03) and 2 (01-10, 02-14); 3 last ordered 01-20 (churned) and 4
    has one order. Outcome window 03-01..03-30: 1 orders on 03-01 (stays), 2 does not (churns)."""
    f = churn.landmark_features(ten_orders, "2025-02-28", churn_days=30)
    assert f.index.tolist() == [1, 2]
    assert f.loc[1, "recency_days"] == 26 and f.loc[2, "recency_days"] == 15
    assert f.loc[1, "usual_gap_days"] == 29 and f.loc[1, "gap_ratio"] == pytest.approx(26 / 29)
    y = churn.churn_outcome(ten_orders, "2025-02-28", f.index, 30)
    assert y.to_dict() == {1: 0, 2: 1}
    ds = churn.landmark_dataset(ten_orders, ["2025-02-28"], 30)
    assert ds["churned"].tolist() == [0, 1] and (ds["landmark"] == pd.Timestamp("2025-02-28")).all()


# ----------------------------------------------------------------------------- sBG with covariates


def _simulate_subscriptions(n: int, hr: float, seed: int) -> pd.DataFrame:
    """Long format of n subscriptions, theta ~ Beta(1, 3), a covariate on in a random 30 % of
    months, churn at the end of month k with P = 1 - (1 - theta)^(hr^x), 24 months observed."""
    rng = np.random.default_rng(seed)
    theta = rng.beta(1.0, 3.0, n)
    rows = []
    alive = np.ones(n, bool)
    for k in range(1, 25):
        x = (rng.random(n) < 0.3).astype(int)
        churn_now = alive & (rng.random(n) < 1 - (1 - theta) ** (hr**x))
        idx = np.flatnonzero(alive)
        rows.append(pd.DataFrame({"subscription_id": idx, "plan": "A", "stop": k, "x": x[idx],
                                  "event": churn_now[idx].astype(int)}))  # fmt: skip
        alive &= ~churn_now
    return pd.concat(rows, ignore_index=True)


def test_sbg_regression_without_covariates_is_the_sbg():
    long = _simulate_subscriptions(800, 1.0, 5)
    reg = survival.fit_sbg_regression(long)
    per = long.groupby("subscription_id").agg(months=("stop", "max"), churned=("event", "max"))
    plain = survival.fit_sbg(durations=per["months"], churned=per["churned"].astype(bool))
    assert reg.loglik == pytest.approx(plain.loglik, abs=1e-4)
    assert reg.params.loc["alpha[A]", "estimate"] == pytest.approx(plain.alpha, rel=1e-3)
    assert reg.params.loc["beta[A]", "estimate"] == pytest.approx(plain.beta, rel=1e-3)


def test_sbg_regression_recovers_a_hazard_ratio_that_cox_attenuates():
    long = _simulate_subscriptions(3000, 2.5, 7)
    reg = survival.fit_sbg_regression(long, hazard_covariates=["x"])
    row = reg.params.loc["hr[x]"]
    assert row["ci_low"] < 2.5 < row["ci_high"]
    assert reg.params.loc["alpha[A]", "ci_low"] < 1.0 < reg.params.loc["alpha[A]", "ci_high"]
    cox = churn.fit_cox_time_varying(
        long.assign(start=long["stop"] - 1)[["subscription_id", "start", "stop", "event", "x"]]
    )
    assert churn.hazard_ratios(cox).loc["x", "hr"] < row["estimate"]  # frailty attenuates Cox


# ----------------------------------------------------------------------------- the sample company


SECOND_EDITION = (paths.DATASETS / "engagement_monthly.csv").exists()


@pytest.mark.skipif(not SECOND_EDITION, reason="needs the second-edition sample data")
def test_planted_subscription_hazard_ratios_recovered_on_the_sample_data():
    subs = data.load_subscriptions()
    tk = data.load_support_tickets()
    eng = data.load_table("engagement_monthly")
    truth = data.load_ground_truth()["parameters"]
    long = churn.subscription_months(survival.subscription_durations(subs, "2025-12-31"))
    long["bad_ticket"] = churn.bad_ticket_flag(long, tk)
    long["visits_drop"] = churn.visits_drop_flag(long, eng)
    reg = survival.fit_sbg_regression(long, hazard_covariates=["bad_ticket", "visits_drop"])
    for name, field in (
        ("hr[bad_ticket]", "sub_hr_bad_ticket"),
        ("hr[visits_drop]", "sub_hr_visits_drop"),
    ):
        row = reg.params.loc[name]
        assert row["ci_low"] < truth[field] < row["ci_high"], (name, row.to_dict())


def test_engagement_before_dropout_hand_case():
    """Customers 1 and 3 drop out in 2025-07: visits 4 in January (6+ months before), 2 in April
    (3 before), 1 in June (1 before); customer 2 never drops out: 4 in April and June. Baseline
    4, so the ratios are 0.5 (3 months before) and 0.25 (1 month before)."""
    eng = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 3, 3, 3, 2, 2],
            "month": pd.to_datetime(
                ["2025-01-01", "2025-04-01", "2025-06-01"] * 2 + ["2025-04-01", "2025-06-01"]
            ),
            "site_visits": [4, 2, 1, 4, 2, 1, 4, 4],
        }
    )
    drop = pd.Series(pd.to_datetime(["2025-07-15", None, "2025-07-02"]), index=[1, 2, 3])
    t = churn.engagement_before_dropout(eng, drop, lags=(3, 1))
    assert t.loc[3, "ratio"] == pytest.approx(0.5) and t.loc[1, "ratio"] == pytest.approx(0.25)
    assert t["n"].tolist() == [2, 2]


# ----------------------------------------------------------------------------- fair baselines


def test_landmark_ticket_late_only_once_the_wait_is_over(ten_orders):
    """Landmark 2025-02-28 (end 03-01 00:00). A ticket opened 2 h before the end, never answered
    but resolved 1 h before the end, is not yet late at L (the 24 h are not over) and resolved:
    not bad. Before the fix its missing first response flagged it from the final data. A ticket
    opened 30 h before the end and never answered is late by then: bad."""
    end = pd.Timestamp("2025-03-01")
    tk = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "opened_at": [end - pd.Timedelta(hours=2), end - pd.Timedelta(hours=30)],
            "first_response_at": pd.to_datetime([pd.NaT, pd.NaT]),
            "resolved_at": [end - pd.Timedelta(hours=1), end - pd.Timedelta(hours=1)],
        }
    )
    f = churn.landmark_features(ten_orders, "2025-02-28", churn_days=30, tickets=tk)
    assert f.loc[1, "bad_tickets_90d"] == 0
    assert f.loc[2, "bad_tickets_90d"] == 1


def _bgnbd(r: float = 0.243, alpha: float = 4.414, a: float = 0.793, b: float = 2.426):
    """A BG/NBD fit with the CDNOW parameters (references.md: Fader, Hardie & Lee 2005)."""
    from helpers import clv

    return clv.ModelFit(
        model="BG/NBD", params={"r": r, "alpha": alpha, "a": a, "b": b}, loglik=0.0, n=1,
        time_unit="W", cov_log=np.zeros((4, 4)), converged=True,
    )  # fmt: skip


def test_prob_no_purchase_new_customer_is_fhl_eq8():
    """For a new customer (x = t_x = T = 0) the conditional formula is FHL 2005 eq. 8 at x = 0,
    P(X(t) = 0) = (alpha / (alpha + t))^r, as :func:`helpers.clv.probability_of_purchases` has it."""
    from helpers import clv

    fit = _bgnbd()
    new = pd.DataFrame({"frequency": [0.0], "recency": [0.0], "T": [0.0]})
    for t in (1.0, 13.0, 39.0):
        got = churn.prob_no_purchase(fit, new, t).iloc[0]
        assert got == pytest.approx(float(clv.probability_of_purchases(fit, t, 0)), rel=1e-10)
        assert got == pytest.approx((4.414 / (4.414 + t)) ** 0.243, rel=1e-12)


def test_prob_no_purchase_limits_and_monotone():
    """t = 0 gives 1; t -> infinity gives 1 - P(alive); it rises with t, and it is at least
    1 - P(alive) (the straw-man baseline) for every customer: CDNOW customer 1 (x = 2, t_x = 30.43,
    T = 38.86) and a one-time buyer."""
    from helpers import clv

    fit = _bgnbd()
    s = pd.DataFrame({"frequency": [2.0, 0.0, 5.0], "recency": [30.43, 0.0, 10.0],
                      "T": [38.86, 20.0, 38.0]})  # fmt: skip
    dead = 1 - clv.p_alive(fit, s).to_numpy()
    np.testing.assert_allclose(churn.prob_no_purchase(fit, s, 0.0), 1.0)
    np.testing.assert_allclose(churn.prob_no_purchase(fit, s, 1e60), dead, atol=1e-6)
    p = np.vstack([churn.prob_no_purchase(fit, s, t).to_numpy() for t in (4, 13, 26, 52)])
    assert (np.diff(p, axis=0) < 0).all() and (p >= dead).all()
    assert dead[1] == 0 and p[1, 1] < 1  # a one-time buyer: P(alive) = 1, yet a real probability


def test_prob_no_purchase_matches_simulation():
    """Monte Carlo of the BG/NBD story from T on: a customer still alive at T (probability
    P(alive)) has a Poisson rate with posterior Gamma(r + x, alpha + T) and buys nothing in the
    next t with probability exp(-lambda t); one who has dropped out never buys."""
    from helpers import clv

    fit = _bgnbd()
    rng = np.random.default_rng(1)
    x, tx, T, t = 3.0, 20.0, 30.0, 13.0
    s = pd.DataFrame({"frequency": [x], "recency": [tx], "T": [T]})
    alive = rng.random(400_000) < clv.p_alive(fit, s).iloc[0]
    lam = rng.gamma(0.243 + x, 1 / (4.414 + T), alive.size)
    quiet = ~alive | (rng.random(alive.size) < np.exp(-lam * t))
    assert churn.prob_no_purchase(fit, s, t).iloc[0] == pytest.approx(quiet.mean(), abs=3e-3)


def test_paired_bootstrap_estimates_and_differences():
    """The estimates are score_report's; the reference's difference is exactly 0; a monotone
    transform has the same AUC and lift in every resample (difference interval [0, 0]); a better
    score's AUC difference from noise excludes 0; Brier is NaN for a score outside [0, 1]."""
    rng = np.random.default_rng(0)
    n = 1500
    signal = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-1.5 * signal))).astype(int)
    good = 1 / (1 + np.exp(-1.5 * signal))
    scores = {"good": good, "log_odds": 1.5 * signal, "noise": rng.random(n)}
    t = churn.paired_bootstrap(y, scores, reference="noise", n_boot=300, seed=1)
    rep = churn.score_report(y, good)
    assert t.loc[("good", "auc"), "estimate"] == pytest.approx(rep["auc"])
    assert t.loc[("good", "brier"), "estimate"] == pytest.approx(rep["brier"])
    assert t.loc[("good", "lift"), "estimate"] == pytest.approx(rep["top_decile_lift"])
    assert (t.loc["noise", ["diff", "diff_low", "diff_high"]].to_numpy() == 0).all()
    assert t.loc[("good", "auc"), "diff_low"] > 0.1
    assert t.loc[("good", "auc"), "verdict"] == "better"
    assert t.loc[("good", "brier"), "verdict"] == "better"  # its Brier is lower than noise's
    assert t.loc[("noise", "auc"), "verdict"] == "reference"
    assert t.loc[("log_odds", "brier"), "verdict"] == "n/a"
    assert np.isnan(t.loc[("log_odds", "brier"), "estimate"])
    same = churn.paired_bootstrap(y, scores, reference="good", n_boot=200, seed=2)
    for m in ("auc", "lift"):
        row = same.loc[("log_odds", m)]
        assert row["diff"] == pytest.approx(0, abs=1e-12)
        assert abs(row["diff_low"]) < 1e-12 and abs(row["diff_high"]) < 1e-12
        assert row["verdict"] == "inconclusive"
    assert (t["ci_low"].dropna() <= t["ci_high"].dropna()).all()
    with pytest.raises(ValueError):
        churn.paired_bootstrap(y, scores, reference="missing")


def test_paired_bootstrap_auc_interval_covers():
    """Coverage of the AUC interval over 60 simulated holdouts with a known AUC: a binormal score
    with unit variances and separation d has AUC = Phi(d / sqrt(2)) (Hanley & McNeil 1982)."""
    from scipy import stats as st

    d, n1, n0 = 0.8, 200, 300
    truth = st.norm.cdf(d / np.sqrt(2))
    rng = np.random.default_rng(5)
    hits = 0
    for _ in range(60):
        s = np.r_[rng.normal(d, 1, n1), rng.normal(0, 1, n0)]
        y = np.r_[np.ones(n1), np.zeros(n0)]
        row = churn.paired_bootstrap(y, {"s": s}, reference="s", n_boot=300, seed=1).loc[
            ("s", "auc")
        ]
        hits += row["ci_low"] <= truth <= row["ci_high"]
    assert hits >= 52  # 95 % of 60 = 57; binomial 1 % lower tail is about 53


def test_delong_matches_its_definition_and_the_bootstrap():
    """DeLong on a hand-sized case equals the definition computed by brute force over all
    positive-negative pairs; on 1,500 simulated customers its standard error of an AUC difference
    agrees with the paired bootstrap's within 15 %, and identical scores give difference 0."""
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1, 0, 1])
    a = np.array([0.9, 0.8, 0.4, 0.3, 0.5, 0.2, 0.4, 0.7, 0.1, 0.6])
    b = np.array([0.2, 0.9, 0.6, 0.5, 0.1, 0.3, 0.8, 0.4, 0.2, 0.7])
    res = churn.delong_auc_difference(y, a, b)
    assert res["auc_a"] == pytest.approx(roc_auc_score(y, a))
    assert res["auc_b"] == pytest.approx(roc_auc_score(y, b))

    def components(s):
        pos, neg = s[y == 1], s[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        return psi.mean(axis=1), psi.mean(axis=0)

    (a10, a01), (b10, b01) = components(a), components(b)
    n1, n0 = (y == 1).sum(), (y == 0).sum()
    var = (np.var(a10 - b10, ddof=1) / n1) + (np.var(a01 - b01, ddof=1) / n0)
    assert res["se"] == pytest.approx(np.sqrt(var), rel=1e-10)

    rng = np.random.default_rng(4)
    n = 1500
    x = rng.normal(size=n)
    yy = (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int)
    s1, s2 = x + rng.normal(0, 0.7, n), x + rng.normal(0, 1.0, n)
    d = churn.delong_auc_difference(yy, s1, s2)
    boot = churn.paired_bootstrap(yy, {"s1": s1, "s2": s2}, reference="s2", n_boot=800, seed=3)
    row = boot.loc[("s1", "auc")]
    assert d["diff"] == pytest.approx(row["diff"], abs=1e-12)
    assert d["se"] == pytest.approx((row["diff_high"] - row["diff_low"]) / (2 * 1.96), rel=0.15)
    same = churn.delong_auc_difference(yy, s1, s1)
    assert same["diff"] == 0 and same["se"] == 0


def test_return_time_km_by_gap_and_by_customer():
    """Customer 1: gaps of 10, 20 and 30 days, each ended by an order; customer 2: one gap still
    open after 40 days. Per gap, S = 3/4, 1/2, 1/4 at 10, 20, 30 days. Per customer (weights 1/3,
    1/3, 1/3 and 1): at 10 days 1/3 of 2 at risk leaves 5/6, at 20 days 1/3 of 5/3 leaves
    5/6 * 4/5 = 2/3, at 30 days 1/3 of 4/3 leaves 1/2. From day 15 (gaps of 20, 30 and the open
    one, counted from day 15): per gap 2/3, 1/3; per customer (1/2, 1/2, 1) 3/4, then 1/2."""
    gaps = pd.DataFrame({"customer_id": [1, 1, 1, 2], "gap_days": [10.0, 20, 30, 40],
                         "observed": [True, True, True, False]})  # fmt: skip
    s = churn.return_time_km(gaps).survival_function_at_times([10, 20, 30, 39]).to_numpy()
    np.testing.assert_allclose(s, [0.75, 0.5, 0.25, 0.25])
    s = churn.return_time_km(gaps, by_customer=True).survival_function_at_times([10, 20, 30])
    np.testing.assert_allclose(s.to_numpy(), [5 / 6, 2 / 3, 0.5])
    s = churn.return_time_km(gaps, after_days=15).survival_function_at_times([5, 15])
    np.testing.assert_allclose(s.to_numpy(), [2 / 3, 1 / 3])
    s = churn.return_time_km(gaps, after_days=15, by_customer=True)
    np.testing.assert_allclose(s.survival_function_at_times([5, 15]).to_numpy(), [0.75, 0.5])


@given(
    days=st.lists(st.integers(0, 60), min_size=1, max_size=80),
    seen=st.lists(st.booleans(), min_size=80, max_size=80),
    fraction=st.integers(1, 4),
    keep=st.integers(0, 60),
)
def test_kaplan_meier_at_events_is_the_full_fit_as_a_step_function(days, seen, fraction, keep):
    """churn.kaplan_meier_at_events (one weighted row per event time, censorings moved back to
    the last event time) against lifelines' fit of every row: S, its bands and the median are the
    same floats wherever either is read as a step function (every time of the full timeline,
    the kept time, between and beyond), ties and censorings before the first event included."""
    from lifelines import KaplanMeierFitter

    d = np.asarray(days, dtype=float) / fraction  # ties, and times between whole days
    e = np.asarray(seen[: len(d)])
    full = KaplanMeierFitter(alpha=0.1).fit(d, e)
    fit = churn.kaplan_meier_at_events(d, e, alpha=0.1, keep=[keep / fraction])
    assert fit.median_survival_time_ == full.median_survival_time_ or (
        np.isnan(fit.median_survival_time_) and np.isnan(full.median_survival_time_)
    )
    grid = np.unique(np.concatenate([full.timeline, full.timeline + 0.01, [keep / fraction, 99]]))

    def step(frame: pd.DataFrame) -> np.ndarray:
        i = np.searchsorted(frame.index.to_numpy(), grid, side="right") - 1
        return frame.to_numpy()[np.maximum(i, 0)]

    for got, want in ((fit.survival_function_, full.survival_function_),
                      (fit.confidence_interval_survival_function_,
                       full.confidence_interval_survival_function_)):  # fmt: skip
        np.testing.assert_array_equal(step(got), step(want))
    assert set(fit.timeline) <= set(full.timeline)
    if keep / fraction in set(d):  # a kept time stays in the timeline
        assert keep / fraction in set(fit.timeline)
    assert fit.timeline[-1] == full.timeline[-1]  # the longest duration kept
