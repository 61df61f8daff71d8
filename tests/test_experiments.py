"""Tests of helpers.experiments: known answers (R's power.prop.test, statsmodels, the exact peeking
rates, Pocock's and O'Brien-Fleming's constants), hand cases (Qini, Welch, Wald), properties (CUPED's
1 - rho^2, a random ranking's Qini near 0) and recovery of planted effects on simulated data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from helpers import economics
from helpers import experiments as ex
from helpers.stats import proportion_difference

# --- power ------------------------------------------------------------------------------------


def test_power_matches_statsmodels_known_answer():
    """statsmodels' own check against R: NormalIndPower().power(0.3, 80, 0.05) = 0.475100870572638.
    Pick p_t so that Cohen's h is exactly 0.3 from p_c = 0.5."""
    p_c = 0.5
    p_t = np.sin(np.arcsin(np.sqrt(p_c)) + 0.15) ** 2
    assert ex.cohen_h(p_t, p_c) == pytest.approx(0.3, abs=1e-12)
    assert ex.power_two_proportions(p_c, p_t, 80) == pytest.approx(0.475100870572638, abs=1e-12)


def test_power_prop_test_matches_r():
    """R: power.prop.test(p1 = .03, p2 = .02, power = .8) -> n = 3825.15 per arm."""
    assert ex.power_prop_test_n(0.03, 0.02) == pytest.approx(3825.15, abs=0.01)


def test_sample_size_and_mde_round_trip():
    n = ex.sample_size_two_proportions(0.05, 0.07, power=0.8)
    assert ex.power_two_proportions(0.05, 0.07, n) == pytest.approx(0.8, abs=1e-6)
    # the arcsine and the pooled-normal formulas agree within a few percent
    assert n == pytest.approx(ex.power_prop_test_n(0.05, 0.07), rel=0.03)
    mde = ex.mde_two_proportions(0.05, 1000, ratio=4)
    assert mde > 0
    assert ex.power_two_proportions(0.05, 0.05 + mde, 1000, ratio=4) == pytest.approx(0.8, abs=1e-4)


def test_balanced_split_needs_the_fewest_units():
    """For a given effect, total n = n_c (1 + ratio) is smallest at ratio 1; an 80/20 split needs
    (1 + 4)(1 + 1/4) / 4 = 1.5625 times as many units (arcsine approximation)."""
    n1 = ex.sample_size_two_proportions(0.05, 0.07, ratio=1)
    n4 = ex.sample_size_two_proportions(0.05, 0.07, ratio=4)
    assert (n4 * 5) / (n1 * 2) == pytest.approx(1.5625, rel=1e-6)
    assert ex.holdout_cost(1000, 0.2, 0.03, 10.0) == pytest.approx(60.0)


# --- reading the test -------------------------------------------------------------------------


def test_diff_means_welch_hand_case():
    yt, yc = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 0.0, 3.0])
    r = ex.diff_means(np.r_[yt, yc], np.r_[np.ones(4), np.zeros(3)])
    se = np.sqrt(yt.var(ddof=1) / 4 + yc.var(ddof=1) / 3)
    df = se**4 / ((yt.var(ddof=1) / 4) ** 2 / 3 + (yc.var(ddof=1) / 3) ** 2 / 2)
    half = stats.t.isf(0.025, df) * se
    assert r["estimate"] == pytest.approx(1.5)
    assert r["se"] == pytest.approx(se)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((1.5 - half, 1.5 + half))


def test_bootstrap_agrees_with_welch_and_is_seeded():
    rng = np.random.default_rng(1)
    y = np.r_[rng.normal(1.0, 2.0, 2000), rng.normal(0.8, 2.0, 2000)]
    t = np.r_[np.ones(2000), np.zeros(2000)]
    b = ex.bootstrap_diff(y, t, seed=3)
    w = ex.diff_means(y, t)
    assert b == ex.bootstrap_diff(y, t, seed=3)
    assert b["ci_low"] == pytest.approx(w["ci_low"], abs=0.02)
    assert b["ci_high"] == pytest.approx(w["ci_high"], abs=0.02)


def test_itt_to_tot_divides_by_the_delivered_share():
    r = ex.itt_to_tot({"estimate": 0.02, "ci_low": 0.01, "ci_high": 0.03, "p_value": 0.01}, 0.8)
    assert r == pytest.approx({"estimate": 0.025, "ci_low": 0.0125, "ci_high": 0.0375})
    with pytest.raises(ValueError):
        ex.itt_to_tot(r, 0.0)


def test_arms_are_validated():
    with pytest.raises(ValueError, match="both arms"):
        ex.diff_means([1.0, 2.0], [1, 1])
    with pytest.raises(ValueError, match="0/1"):
        ex.diff_means([1.0, 2.0], [1, 2])


def test_outcomes_in_window_hand_case():
    """Send at day 0 to customer 1: orders at day 0 (not after), day 10 (in), day 31 (out);
    margin of the day-10 order = 20 - 0.55 * (20 + 5) = 6.25 with the sample economics."""
    orders = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2],
            "order_date": pd.to_datetime(["2025-01-01", "2025-01-11", "2025-02-01", "2025-01-05"]),
            "amount": [10.0, 20.0, 30.0, 40.0],
            "discount": [0.0, 5.0, 0.0, 0.0],
            "returned": [False, False, False, True],
        }
    )
    sends = pd.DataFrame(
        {"customer_id": [1, 2, 3], "sent_at": pd.to_datetime(["2025-01-01"] * 3)}, index=[7, 8, 9]
    )
    out = ex.outcomes_in_window(sends, orders, "sent_at", 30)
    assert list(out.index) == [7, 8, 9]
    assert out["orders"].tolist() == [1, 1, 0]
    assert out["converted"].tolist() == [True, True, False]
    assert out["revenue"].tolist() == [20.0, 40.0, 0.0]
    g = economics.SAMPLE.gross_margin_rate
    assert out["margin"].tolist() == pytest.approx([20 - (1 - g) * 25, 0.0, 0.0])


# --- CUPED ------------------------------------------------------------------------------------


def _cuped_data(n: int, rho: float, effect: float, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    y = rho * x + np.sqrt(1 - rho**2) * rng.normal(0, 1, n)
    t = rng.random(n) < 0.5
    return y + effect * t, x, t


def test_cuped_variance_ratio_is_one_minus_rho_squared():
    """Deng et al. (2013): Var(Y - theta X) = Var(Y)(1 - rho^2) - exactly with the sample rho,
    and near the population 1 - 0.7^2 = 0.51 on simulated data."""
    y, x, t = _cuped_data(20_000, 0.7, 0.05, seed=11)
    r = ex.cuped(y, x, t)
    assert r.variance_ratio == pytest.approx(1 - r.rho**2, abs=1e-12)
    assert r.variance_ratio == pytest.approx(0.51, abs=0.02)
    assert r.theta == pytest.approx(0.7, abs=0.02)
    assert r.ci_width_ratio == pytest.approx(np.sqrt(1 - r.rho**2), abs=0.01)
    assert r.adjusted["ci_low"] < 0.05 < r.adjusted["ci_high"]


def test_cuped_is_unbiased_and_narrower_over_replications():
    est = np.array(
        [ex.cuped(*_cuped_data(2000, 0.8, 0.1, seed=s)).adjusted["estimate"] for s in range(60)]
    )
    raw = np.array(
        [ex.cuped(*_cuped_data(2000, 0.8, 0.1, seed=s)).raw["estimate"] for s in range(60)]
    )
    assert abs(est.mean() - 0.1) < 3 * est.std(ddof=1) / np.sqrt(60)
    assert est.std() < 0.75 * raw.std()  # theory: sqrt(1 - 0.64) = 0.6


def test_cuped_with_an_unrelated_covariate_changes_little():
    rng = np.random.default_rng(5)
    y, _, t = _cuped_data(5000, 0.0, 0.1, seed=5)
    r = ex.cuped(y, rng.normal(size=5000), t)
    assert r.variance_ratio > 0.99
    with pytest.raises(ValueError, match="constant"):
        ex.cuped(y, np.ones(5000), t)


def test_cuped_with_several_covariates_is_a_regression_adjustment():
    """theta = pooled OLS coefficients; variance ratio = 1 - R^2 of that OLS (statsmodels); a
    chance imbalance of X between the arms is corrected (here X is shifted in the treated arm
    by construction, with no effect of the treatment on Y)."""
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    n = 4000
    t = rng.random(n) < 0.5
    X = rng.normal(size=(n, 2)) + 0.3 * t[:, None]  # imbalanced covariates
    y = 1.0 * X[:, 0] - 0.5 * X[:, 1] + rng.normal(size=n)  # no treatment effect
    r = ex.cuped(y, X, t)
    ols = sm.OLS(y, sm.add_constant(X)).fit()
    np.testing.assert_allclose(r.theta, ols.params[1:], rtol=1e-10)
    assert r.variance_ratio == pytest.approx(1 - ols.rsquared, rel=1e-10)
    assert r.raw["ci_low"] > 0  # the raw difference is fooled by the imbalance
    assert r.adjusted["ci_low"] < 0 < r.adjusted["ci_high"]
    # a constant column is ignored, not an error
    r2 = ex.cuped(y, np.c_[X, np.ones(n)], t)
    assert r2.adjusted["estimate"] == pytest.approx(r.adjusted["estimate"])


# --- peeking ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("looks", "expected"), [(1, 0.05), (2, 0.0831), (5, 0.1417)])
def test_peeking_false_positive_rate_known_answers(looks, expected):
    assert ex.peeking_false_positive_rate(looks) == pytest.approx(expected, abs=5e-4)


def test_peeking_is_not_independent_tests():
    for k in (2, 5, 10):
        assert ex.peeking_false_positive_rate(k) < 1 - 0.95**k


def test_peeking_simulation_agrees_with_the_exact_rate():
    exact = ex.peeking_false_positive_rate(5)
    sim = ex.simulate_peeking(5, n_sims=20_000, seed=2)
    assert abs(sim - exact) < 4 * np.sqrt(exact * (1 - exact) / 20_000)
    assert sim == ex.simulate_peeking(5, n_sims=20_000, seed=2)


def test_information_correlation():
    c = ex.information_correlation([0.25, 1.0])
    assert c == pytest.approx(np.array([[1, 0.5], [0.5, 1]]))


def test_pocock_and_obrien_fleming_constants():
    """Pocock (1977) K = 5, alpha 0.05: 2.413. O'Brien-Fleming K = 5: 4.562, 3.226, 2.634,
    2.281, 2.040 (Jennison & Turnbull 2000, table 2.3)."""
    pocock = ex.group_sequential_bounds(5, kind="pocock")
    assert pocock == pytest.approx(np.full(5, 2.413), abs=1e-3)
    obf = ex.group_sequential_bounds(5, kind="obrien-fleming")
    assert obf == pytest.approx([4.562, 3.226, 2.634, 2.281, 2.040], abs=2e-3)
    assert ex.crossing_probability(pocock) == pytest.approx(0.05, abs=1e-4)
    assert ex.group_sequential_bounds(2)[0] == pytest.approx(2.178, abs=1e-3)


# --- Qini and uplift --------------------------------------------------------------------------

Y4, T4 = np.array([1, 0, 0, 1]), np.array([1, 1, 0, 0])


def test_qini_perfect_ranking_hand_case():
    """Treated responder, treated non-responder, control non-responder, control responder.
    Q after each: 1, 1, 1 - 0 x 2/1 = 1, 1 - 1 x 2/2 = 0; random line 0;
    area = .25 (0 + 1)/2 + .25 + .25 + .25 (1 + 0)/2 = 0.75 = the perfect ranking's."""
    r = ex.qini(Y4, T4, [4, 3, 2, 1])
    assert r.curve["qini"].tolist() == [0, 1, 1, 1, 0]
    assert r.coefficient == pytest.approx(0.75)
    assert r.perfect_coefficient == pytest.approx(0.75)
    assert r.normalized == pytest.approx(1.0)


def test_qini_reversed_ranking_hand_case():
    """Reversed: Q = 0, 0, 0 - 1 x 1/2 = -0.5, 0: area = -0.125, normalized -1/6."""
    r = ex.qini(Y4, T4, [1, 2, 3, 4])
    assert r.curve["qini"].tolist() == [0, 0, 0, -0.5, 0]
    assert r.coefficient == pytest.approx(-0.125)
    assert r.normalized == pytest.approx(-1 / 6)


def test_qini_constant_score_is_the_random_line():
    rng = np.random.default_rng(0)
    y, t = rng.random(50) < 0.3, rng.random(50) < 0.5
    r = ex.qini(y, t, np.zeros(50))
    assert r.coefficient == 0.0
    assert len(r.curve) == 2


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_qini_of_random_rankings_averages_zero(seed):
    rng = np.random.default_rng(seed)
    n = 400
    y, t = rng.random(n) < 0.3, rng.random(n) < 0.5
    coefs = np.array([ex.qini(y, t, rng.random(n)).normalized for _ in range(40)])
    # one random ranking can be off, their mean is near 0 (and far from a perfect ranking's 1)
    assert abs(coefs.mean()) < 0.15
    assert coefs.max() < 1.0


def _uplift_data(n: int, seed: int):
    """Base rate 10 %; true uplift 0.15 for x1 > 0 and -0.05 otherwise ('sleeping dogs')."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    tau = np.where(X[:, 0] > 0, 0.15, -0.05)
    t = rng.random(n) < 0.5
    p = 0.10 + 0.05 * (X[:, 1] > 0) + tau * t
    y = (rng.random(n) < p).astype(int)
    return X, y, t, tau


def test_two_model_uplift_recovers_the_planted_heterogeneity():
    X, y, t, tau = _uplift_data(20_000, seed=4)
    Xh, yh, th, tauh = _uplift_data(10_000, seed=5)
    pred = ex.two_model_uplift(X, y, t, Xh)
    assert np.corrcoef(pred, tauh)[0, 1] > 0.7
    model = ex.qini(yh, th, pred)
    oracle = ex.qini(yh, th, tauh)
    assert model.normalized > 0.5 * oracle.normalized > 0
    # the sleeping dogs are predicted negative on average
    assert pred[tauh < 0].mean() < 0 < pred[tauh > 0].mean()


def test_transformed_outcome_mean_is_the_difference_in_means():
    """With e = n_t / n, mean(Z) = ybar_t - ybar_c exactly (Athey & Imbens 2015)."""
    X, y, t, _ = _uplift_data(1000, seed=6)
    z = ex.transformed_outcome(y, t, t.mean())
    assert z.mean() == pytest.approx(ex.diff_means(y, t)["estimate"], abs=1e-12)


def test_targeting_value_whole_base_is_the_itt_total():
    X, y, t, tau = _uplift_data(5000, seed=8)
    tv = ex.targeting_value(y, t, tau, [0.0, 0.5, 1.0])
    itt = ex.diff_means(y, t)["estimate"]
    assert tv["total"].iloc[-1] == pytest.approx(itt * 5000)
    assert tv["per_customer"].iloc[0] == 0.0
    # targeting the half with positive uplift beats contacting everyone
    assert tv["total"].iloc[1] > tv["total"].iloc[2]


def test_targeting_value_interval_is_welch_on_the_top_group():
    """Known answer: the per-customer interval at a share is the top group's Welch difference
    (normal quantile) scaled by n_top / N; at share 1 its se is diff_means' se."""
    X, y, t, tau = _uplift_data(3000, seed=11)
    v = y + 0.5 * np.random.default_rng(1).standard_normal(len(y))
    tv = ex.targeting_value(v, t, tau, [0.3, 1.0], alpha=0.1).set_index("share")
    top = np.argsort(-tau, kind="stable")[:900]
    d = ex.diff_means(v[top], t[top])
    assert tv.loc[0.3, "per_customer"] == pytest.approx(d["estimate"] * 0.3)
    assert tv.loc[0.3, "se"] == pytest.approx(d["se"] * 0.3)
    z = stats.norm.isf(0.05)
    assert tv.loc[0.3, "ci_high"] - tv.loc[0.3, "ci_low"] == pytest.approx(2 * z * d["se"] * 0.3)
    assert tv.loc[1.0, "se"] == pytest.approx(ex.diff_means(v, t)["se"])


def test_policy_difference_matches_targeting_value_and_is_zero_for_one_score():
    X, y, t, tau = _uplift_data(2000, seed=12)
    noise = np.random.default_rng(3).random(len(y))
    r = ex.policy_difference(y, t, tau, noise, 0.3, n_resamples=300, seed=1)
    tv_a = ex.targeting_value(y, t, tau, [0.3])["per_customer"].iloc[0]
    tv_b = ex.targeting_value(y, t, noise, [0.3])["per_customer"].iloc[0]
    assert r["estimate"] == pytest.approx(tv_a - tv_b)
    assert r["a"] == pytest.approx(tv_a) and r["b"] == pytest.approx(tv_b)
    assert r["ci_low"] <= r["estimate"] <= r["ci_high"] and r["a_low"] <= r["a"] <= r["a_high"]
    same = ex.policy_difference(y, t, tau, tau, 0.3, n_resamples=100, seed=1)
    assert same["estimate"] == 0 and same["ci_low"] == 0 and same["ci_high"] == 0


def test_policy_difference_cluster_bootstrap_widens_for_duplicated_units():
    """Every unit twice (two sends per customer, identical): resampling customers gives a
    standard error about sqrt(2) times the one that treats the 2n rows as independent."""
    X, y, t, tau = _uplift_data(1500, seed=13)
    noise = np.random.default_rng(4).random(len(y))
    yy, tt, aa, bb = (np.r_[a, a] for a in (y, t, tau, noise))
    ids = np.r_[np.arange(len(y)), np.arange(len(y))]
    iid = ex.policy_difference(yy, tt, aa, bb, 0.5, n_resamples=400, seed=2)
    clu = ex.policy_difference(yy, tt, aa, bb, 0.5, groups=ids, n_resamples=400, seed=2)
    assert clu["se"] / iid["se"] == pytest.approx(np.sqrt(2), rel=0.2)


def test_mde_and_sample_size_for_a_mean_difference():
    """Known answers: MDE = (1.95996 + 0.84162) se = 2.8016 se; n per arm for a standardized
    effect d at ratio 1 is 2 (z_a + z_b)^2 / d^2 (d = 0.2: 392.4), matching the MDE."""
    assert ex.mde_from_se(1.0) == pytest.approx(2.80159, abs=1e-4)
    n = ex.sample_size_mean_difference(0.2, 1.0)
    assert n == pytest.approx(2 * 2.80159**2 / 0.04, rel=1e-3)
    se = np.sqrt(2 / n)
    assert ex.mde_from_se(se) == pytest.approx(0.2, rel=1e-3)
    # an 80/20 split (ratio 4) needs (1 + 1/4) / 2 of the 50/50 holdout
    assert ex.sample_size_mean_difference(0.2, 1.0, ratio=4.0) == pytest.approx(n * 0.625, rel=1e-3)


# --- audiences, features, decisions -------------------------------------------------------------


def _customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4],
            "signup_date": pd.to_datetime(["2023-03-10", "2023-06-01", "2024-02-01", "2023-01-05"]),
            "birth_date": pd.to_datetime(["1990-05-02", "1988-02-29", "1970-12-31", "1999-07-07"]),
            "email_opt_in": [True, True, True, False],
            "email_opt_out_at": pd.to_datetime([None, "2024-06-01", None, None]),
        }
    )


def test_calendar_audience_hand_case():
    """Birthdays 2023-2024: customer 1 signed up 2023-03-10, so 2023-05-02 and 2024-05-02;
    customer 2 (29 Feb, moved to the 28th) signed up after the 2023 date, and 2024-02-28 is before
    the opt-out; customer 3 signed up 2024-02-01 (2024-12-31 only); customer 4 has no consent."""
    aud = ex.calendar_audience(_customers(), "birthday", [2023, 2024])
    got = set(zip(aud["customer_id"], aud["sent_at"].dt.strftime("%Y-%m-%d"), strict=True))
    assert got == {(1, "2023-05-02"), (1, "2024-05-02"), (2, "2024-02-28"), (3, "2024-12-31")}
    assert len(aud) == 4
    ann = ex.calendar_audience(_customers(), "anniversary", [2024, 2025], min_tenure_days=300)
    got = set(zip(ann["customer_id"], ann["year"], strict=True))
    # customer 2 opted out on the day of the 2024 anniversary; customer 3 had only 0 days in 2024
    assert got == {(1, 2024), (1, 2025), (3, 2025)}


def test_winback_audience_hand_case():
    orders = pd.DataFrame(
        {
            "customer_id": [1, 2, 2, 3],
            "order_date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-05-01", "2024-01-01"]),
        }
    )
    aud = ex.winback_audience(_customers(), orders, ["2024-07-01"], lapsed_days=120)
    # 1: lapsed 182 days; 2: opted out on 2024-06-01; 3: lapsed 182 days; 4: no consent
    assert aud["customer_id"].tolist() == [1, 3]
    assert aud["days_lapsed"].tolist() == [182, 182]


def test_history_features_use_only_the_past():
    orders = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2],
            "order_date": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-06-01", "2024-02-01"]),
            "amount": [10.0, 30.0, 99.0, 5.0],
            "discount": [0.0, 3.0, 0.0, 0.0],
        }
    )
    exp = pd.DataFrame(
        {"customer_id": [1, 2, 3], "sent_at": pd.to_datetime(["2024-04-01"] * 3)}, index=[5, 6, 7]
    )
    f = ex.history_features(exp, orders, "sent_at", pd.Series({1: pd.Timestamp("2023-12-01")}))
    assert f.loc[5, "n_orders"] == 2 and f.loc[5, "spend"] == 40.0  # the June order is after
    assert f.loc[5, "days_since_last"] == 31 and f.loc[5, "discount_share"] == 0.5
    assert f.loc[5, "tenure_days"] == 122
    assert f.loc[7, "n_orders"] == 0 and np.isnan(f.loc[7, "days_since_last"])


def test_decide():
    assert ex.decide(1.0, 0.2, 1.8) == "keep"
    assert ex.decide(-0.1, -2.0, 1.8) == "stop"
    assert ex.decide(-1.0, -2.0, -0.1) == "stop"
    assert ex.decide(0.5, -0.2, 1.2) == "unproven"


def _sends(n: int, effect_by_seg: dict[str, float], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    seg = rng.choice(list(effect_by_seg), n)
    t = rng.random(n) < 0.5
    p = 0.1 + np.vectorize(effect_by_seg.get)(seg) * t
    conv = rng.random(n) < p
    return pd.DataFrame(
        {
            "campaign_type": "c",
            "segment": seg,
            "treatment": t,
            "converted": conv,
            "profit": conv * 10.0 - 0.1 * t,
            "send_cost": 0.1 * t,
            "coupon_discount": 0.0,
        }
    )


def test_campaign_report_and_decisions():
    """Profit = 10 EUR per conversion - 0.1 per send: a 5-point uplift earns 0.4 EUR per send."""
    s = _sends(40_000, {"a": 0.05, "b": 0.05}, seed=1)
    rep = ex.campaign_report(s, alpha=0.05)
    r = rep.loc["c"]
    assert r["uplift_low"] < 0.05 < r["uplift_high"]
    assert r["profit_low"] < 0.4 < r["profit_high"]
    assert r["spend_per_send"] == pytest.approx(0.1)
    assert r["decision"] == "keep"
    # a campaign that only works in segment 'a', too small to prove overall: target 'a'
    s = _sends(3000, {"a": 0.08, "b": -0.04}, seed=3)
    rep = ex.campaign_report(s)
    seg = ex.campaign_report(s, ["campaign_type", "segment"])
    assert rep.loc["c", "decision"] == "unproven"
    dec = ex.campaign_decisions(rep, seg)
    assert dec.loc["c", "decision"] == "target a"
    assert dec.loc["c", "profit_per_1000"] == pytest.approx(seg.loc[("c", "a"), "profit_per_1000"])


def test_coupon_value_recovers_cannibalization():
    """Natural next-order rate 0.6, of which 70 % use a 3 EUR coupon; the coupon adds 5 points of
    orders (all redeemed, margin 8 EUR). Cannibalized = 0.6 x 0.7 x 3 = 1.26 EUR per offer;
    incremental margin = 0.05 x 8 - 1.26 = -0.86 EUR per offer."""
    rng = np.random.default_rng(0)
    n = 20_000
    natural = rng.random(n) < 0.6
    induced = ~natural & (rng.random(n) < 0.05 / 0.4)
    redeemed = (natural & (rng.random(n) < 0.7)) | induced
    arm = pd.DataFrame(
        {
            "converted": natural | induced,
            "redeemed": redeemed,
            "coupon_discount": 3.0 * redeemed,
            "order_margin": 8.0 * redeemed,
        }
    )
    control = pd.DataFrame({"converted": rng.random(n) < 0.6})
    v = ex.coupon_value(arm, control, n_resamples=300, seed=1)
    for name, truth in [("uplift", 0.05), ("cannibalized", 1.26), ("margin", -0.86)]:
        se = (v[f"{name}_high"] - v[f"{name}_low"]) / (2 * 1.96)
        assert abs(v[name] - truth) < 3 * se, name
    assert v == ex.coupon_value(arm, control, n_resamples=300, seed=1)


def test_cross_fitted_uplift_scores_every_row_out_of_fold():
    X, y, t, tau = _uplift_data(8000, seed=9)
    groups = np.arange(8000) // 2  # two rows per customer
    a = ex.cross_fitted_uplift(X, y, t, groups, folds=2, seed=0)
    assert a[0].shape == (8000,)
    assert np.corrcoef(a[0], tau)[0, 1] > 0.6
    np.testing.assert_array_equal(a[0], ex.cross_fitted_uplift(X, y, t, groups, 2, seed=0)[0])
    np.testing.assert_allclose(a[0], a[1] - a[2])


# --- recovery of the planted effects (bundled data and a company made with another seed) ---------


def _recovery(data_dir) -> dict[str, tuple[float, float, float, float]]:
    """The notebook's estimators on one data folder: {name: (estimate, low, high, truth)}."""
    from helpers import data

    truth = data.load_ground_truth(data_dir)["realized"]
    orders = data.load_orders(data_dir)
    sends = data.load_table("campaigns", data_dir)
    sends["treatment"] = sends["group"].eq("treatment")
    X = ex.pre_send_covariates(sends, orders, data.load_customers(data_dir))
    out = {}
    for kind, g in sends.groupby("campaign_type"):  # CUPED on the pre-send covariates
        r = ex.cuped(g["converted"], X.loc[g.index], g["treatment"]).adjusted
        out[f"{kind}_uplift"] = (
            r["estimate"], r["ci_low"], r["ci_high"], truth["campaigns"][kind]["true_ate"],
        )  # fmt: skip
    offers = data.load_table("coupon_offers", data_dir)
    offers["converted"] = ex.outcomes_in_window(offers, orders, "offered_at", 60)["converted"]
    red = orders.set_index("order_id").assign(
        order_margin=economics.order_margin(orders).to_numpy()
    )
    offers["redeemed"] = offers["redeemed_order_id"].notna()
    offers["coupon_discount"] = offers["redeemed_order_id"].map(red["discount"]).fillna(0.0)
    offers["order_margin"] = offers["redeemed_order_id"].map(red["order_margin"]).fillna(0.0)
    control = offers[offers["discount_pct"] == 0]
    for pct in sorted(offers["discount_pct"].unique())[1:]:
        v = ex.coupon_value(offers[offers["discount_pct"] == pct], control, n_resamples=400)
        t = truth["coupons"][str(pct)]
        out[f"coupon_uplift_{pct}"] = (
            v["uplift"], v["uplift_low"], v["uplift_high"], t["true_conversion_uplift"],
        )  # fmt: skip
        out[f"coupon_cannibalized_{pct}"] = (
            v["cannibalized"], v["cannibalized_low"], v["cannibalized_high"],
            t["cannibalized_discount_per_offer"],
        )  # fmt: skip
    return out


def _check(rec: dict[str, tuple[float, float, float, float]]) -> None:
    missed = {k: v for k, v in rec.items() if not v[1] <= v[3] <= v[2]}
    assert not missed, f"intervals that miss the truth (estimate, low, high, truth): {missed}"


def test_bundled_data_recovers_the_planted_effects():
    _check(_recovery(""))


@pytest.mark.slow
def test_another_seed_recovers_the_planted_effects(tmp_path):
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-m", "helpers.synth", "--out", str(tmp_path), "--seed", "7"],
        check=True, capture_output=True,
    )  # fmt: skip
    _check(_recovery(tmp_path))


# --- coverage of the coupon dose-response intervals over many companies ---------------------------


def _coupon_arms_of_seed(seed: int, n_customers: int) -> tuple[pd.DataFrame, dict]:
    """One company's next-purchase coupon offers, straight from the generator's order simulation
    (``purchases.simulate`` and ``truth.coupon_offers``, without the later campaign dropouts): per
    offer the arm, the observed conversion (an order within the coupon's validity, as notebook 07
    measures it) and the generator's per-offer truth (natural next order, order induced by the
    coupon); and the coupon truth ground_truth.json records for them (``truth.coupon_truth``)."""
    from dataclasses import replace

    from helpers.synth import company, customers, purchases, truth
    from helpers.synth._common import stream
    from helpers.synth.config import SynthConfig

    cfg = replace(SynthConfig(), seed=seed, n_customers=n_customers)
    cust, lat = customers.customers(cfg, stream(seed, "customers"))
    sim = purchases.simulate(cfg, stream(seed, "orders"), cust, lat, club=True)
    sim = company._with_dates(sim, cust).assign(rid=lambda d: d.index)
    offers, tr = truth.coupon_offers(cfg, sim, pd.Series(sim.index, index=sim.index))
    conv = ex.outcomes_in_window(offers, sim, "offered_at", cfg.coupon_valid_days)["converted"]
    arms = offers[["customer_id", "discount_pct"]].assign(
        converted=conv.to_numpy(),
        natural=tr["natural"].to_numpy(),
        induced=tr["induced"].to_numpy(),
    )
    return arms, truth.coupon_truth(cfg, offers, tr)


def test_coupon_intervals_cover_the_generators_truth_over_seeds():
    """Notebook 07's coupon uplift (arm - control conversion with ``coupon_value``'s bootstrap
    interval) against ground_truth.json's ``true_conversion_uplift`` on 20 companies (seeds fixed
    before looking). An induced order only replaces a missing natural one, so with randomized
    arms E[conv_arm - conv_0] = P(induced) = the truth; what is left is the sampling noise of the
    arms' natural rates, which the interval carries.

    (1) Randomization: pooled over the companies, each arm's *natural* (no-coupon) rate equals the
    control's within 3 standard errors (a per-offer arm that depended on the natural next order
    would fail here). (2) The observed conversion is natural | induced. (3) Coverage: of the 60
    95 % intervals at most 9 miss (these seeds: 7, three of them on seed 103, whose control ran
    high). The three arms share one control, so misses come in clumps: on 300 other generated
    companies (seeds 3000-3299, 2,500 customers; Wald z of the arms' natural-rate differences,
    SD 0.98-1.01, 5.7 % beyond 1.96) the number of misses among 20 companies had mean 3 and
    P(>= 10) = 0.6 %. (4) The intervals are as wide as the plain Wald interval of a difference in
    proportions: offers are randomized one by one, so clustering by customer does not widen them
    (cluster-robust / naive standard error = 0.9998 on average over those 900 comparisons)."""
    missed, ratio, pooled = [], [], []
    for seed in range(101, 121):
        arms, coupons = _coupon_arms_of_seed(seed, n_customers=2500)
        assert (arms["converted"] == (arms["natural"] | arms["induced"])).mean() > 0.995
        pooled.append(arms)
        control = arms[arms["discount_pct"] == 0]
        for pct in (5, 10, 15):
            arm = arms[arms["discount_pct"] == pct].assign(
                redeemed=False, coupon_discount=0.0, order_margin=0.0
            )
            v = ex.coupon_value(arm, control, n_resamples=400, seed=seed)
            truth = coupons[str(pct)]["true_conversion_uplift"]
            if not v["uplift_low"] <= truth <= v["uplift_high"]:
                missed.append((seed, pct, round(v["uplift"], 4), round(truth, 4)))
            wald = proportion_difference(arm["converted"], control["converted"], method="wald")
            ratio.append((v["uplift_high"] - v["uplift_low"]) / (wald["ci_high"] - wald["ci_low"]))
    assert len(missed) <= 9, missed
    assert 0.9 < np.mean(ratio) < 1.1
    nat = pd.concat(pooled).groupby("discount_pct")["natural"].agg(["mean", "size"])
    for pct in (5, 10, 15):
        p, n = nat.loc[[pct, 0], "mean"].to_numpy(), nat.loc[[pct, 0], "size"].to_numpy()
        se = np.sqrt((p * (1 - p) / n).sum())
        assert abs(p[0] - p[1]) < 3 * se, (pct, p, se)


# --- platform checks, robust money, decisions (issue 26) --------------------------------------


def test_srm_known_answer():
    """821 vs 1,000 planned 50/50: chi2 = 2 x 89.5^2 / 910.5 = 17.595, p = 2.73e-5: a mismatch."""
    r = ex.sample_ratio_mismatch([821, 1000], [0.5, 0.5])
    assert r["chi2"] == pytest.approx(2 * 89.5**2 / 910.5, rel=1e-12)
    assert r["chi2"] == pytest.approx(17.595, abs=1e-3)
    assert r["p_value"] == pytest.approx(2.7327e-5, rel=1e-3)
    assert r["srm"] and r["df"] == 1


def test_srm_passes_a_fair_split_and_takes_weights():
    assert not ex.sample_ratio_mismatch([800, 200], [0.8, 0.2])["srm"]
    assert ex.sample_ratio_mismatch([800, 200], [4, 1])["chi2"] == pytest.approx(0.0)
    # four arms, equal shares: the same chi-square as by hand
    obs = np.array([260, 240, 250, 250])
    r = ex.sample_ratio_mismatch(obs, [1, 1, 1, 1])
    assert r["chi2"] == pytest.approx(((obs - 250) ** 2 / 250).sum())
    assert r["df"] == 3 and not r["srm"]
    with pytest.raises(ValueError):
        ex.sample_ratio_mismatch([1, 2], [1, 1, 1])


def test_capped_diff_caps_one_heavy_buyer():
    """Ten zeros and ten ones per arm plus one control value of 1,000: the raw difference is
    dominated by it, the capped one is not (cap = the pooled quantile)."""
    t = np.r_[np.ones(20, bool), np.zeros(21, bool)]
    y = np.r_[np.zeros(10), np.ones(10), np.zeros(10), np.ones(10), 1000.0]
    raw = ex.diff_means(y, t)
    cap = ex.capped_diff(y, t, quantile=0.95)
    assert cap["cap"] == pytest.approx(np.quantile(y, 0.95)) and cap["cap"] == 1.0
    assert cap["n_capped"] == 1
    assert raw["estimate"] == pytest.approx(0.5 - 1010 / 21)
    assert cap["estimate"] == pytest.approx(0.5 - 11 / 21)
    off = ex.capped_diff(y, t, quantile=0.95, offset=np.where(t, 0.1, 0.0))
    assert off["estimate"] == pytest.approx(cap["estimate"] - 0.1)


def test_largest_influence_drops_the_largest_first():
    t = np.r_[np.ones(5, bool), np.zeros(5, bool)]
    y = np.array([1.0, 2, 3, 4, 5, 1, 2, 1, 0, 100])
    inf = ex.largest_influence(y, t, k=2)
    assert inf.loc[1, "arm"] == "control" and inf.loc[1, "value"] == 100
    assert inf.loc[1, "estimate_without"] == pytest.approx(3 - 1)
    assert inf.loc[2, "value"] == 5 and inf.loc[2, "estimate_without_top"] == pytest.approx(2.5 - 1)


def test_dunnett_matches_scipy_known_answer():
    """Dunnett's (1955) example as in SciPy's documentation: adjusted p-values 0.620, 0.0059."""
    control = [7.40, 8.50, 7.20, 8.24, 9.84, 8.32]
    a = [9.76, 8.80, 7.68, 9.36]
    b = [12.80, 9.68, 12.16, 9.20, 10.55]
    d = ex.dunnett_intervals({"a": a, "b": b}, control)
    assert d["p_value"].to_numpy() == pytest.approx([0.6200, 0.0059], abs=2e-4)
    assert d.loc["a", "estimate"] == pytest.approx(np.mean(a) - np.mean(control))
    # on large samples (Welch ~ pooled) the simultaneous intervals are wider than each pair's own
    rng = np.random.default_rng(3)
    big = ex.dunnett_intervals({k: rng.normal(size=2000) for k in "xyz"}, rng.normal(size=2000))
    assert (big["ci_high"] - big["ci_low"] > big["welch_high"] - big["welch_low"]).all()


def test_interaction_known_answer_and_holm():
    """0.117 (se 0.052) vs 0.057 (se 0.014): d = 0.060, se = hypot = 0.05385, z = 1.114."""
    r = ex.interaction_test(0.117, 0.052, 0.057, 0.014)
    assert r["difference"] == pytest.approx(0.06)
    assert r["se"] == pytest.approx(np.sqrt(0.052**2 + 0.014**2))
    assert r["z"] == pytest.approx(1.1142, abs=1e-4)
    assert r["p_value"] == pytest.approx(2 * stats.norm.sf(r["z"]))
    # Holm: sorted p (0.01, 0.03, 0.04) x (3, 2, 1) = 0.03, 0.06, 0.04 -> monotone 0.03, 0.06, 0.06
    assert ex.adjust_pvalues([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # Benjamini-Hochberg: p_(i) m / i = 0.03, 0.045, 0.04 -> monotone from the top 0.03, 0.04, 0.04
    assert ex.adjust_pvalues([0.01, 0.04, 0.03], "fdr_bh") == pytest.approx([0.03, 0.04, 0.04])


def test_uplift_by_segment_matches_wald():
    df = pd.DataFrame(
        {
            "seg": ["a"] * 8 + ["b"] * 8,
            "treatment": [True] * 4 + [False] * 4 + [True] * 4 + [False] * 4,
            "converted": [1, 1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
        }
    )
    u = ex.uplift_by_segment(df, "seg")
    assert u.loc["a", "uplift"] == pytest.approx(0.5)
    assert u.loc["a", "se"] == pytest.approx(np.sqrt(0.75 * 0.25 / 4 + 0.25 * 0.75 / 4))
    assert u.loc["b", "uplift"] == pytest.approx(0.25) and u.loc["b", "n"] == 8


def test_ratio_of_sums_delta_method():
    """With a denominator of 1 per unit the ratio is a mean and the delta-method variance is
    s^2 / n; on simulated clustered data it matches the spread of the ratio over replications."""
    rng = np.random.default_rng(1)
    t = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    y = rng.normal(size=100)
    r = ex.ratio_of_sums(y, np.ones(100), t)
    assert r["se_treatment"] == pytest.approx(y[t].std(ddof=1) / np.sqrt(50))
    assert r["estimate"] == pytest.approx(y[t].mean() - y[~t].mean())
    n, reps = 400, 2000
    den = rng.poisson(2.0, (reps, n)) + 1
    num = rng.gamma(2.0, 10.0, (reps, n)) * den
    ratios = num.sum(axis=1) / den.sum(axis=1)
    tt = np.r_[np.ones(n // 2, bool), np.zeros(n // 2, bool)]
    one = ex.ratio_of_sums(num[0], den[0], tt)
    whole = np.sqrt(2) * ratios.std() * np.sqrt(n) / np.sqrt(n // 2) / np.sqrt(2)
    assert one["se_treatment"] == pytest.approx(whole, rel=0.15)


def test_ratio_estimate_log_delta():
    r = ex.ratio_estimate(0.12, 0.05, 0.06, 0.015)
    se = np.hypot(0.05 / 0.12, 0.015 / 0.06)
    assert r["estimate"] == pytest.approx(2.0)
    assert r["ci_low"] == pytest.approx(2 * np.exp(-1.959964 * se), rel=1e-5)
    assert np.isnan(ex.ratio_estimate(-0.01, 0.05, 0.06, 0.01)["ci_low"])


def test_decide_on_interval_and_units_to_settle():
    assert ex.decide_on_interval(0.1, 0.5) == "keep"
    assert ex.decide_on_interval(-0.5, -0.1) == "stop"
    assert ex.decide_on_interval(-2.4, 2.0) == "inconclusive"  # negative estimate: still no "stop"
    assert ex.decide_on_interval(0.1, 0.5, break_even=0.2) == "inconclusive"
    # estimate 1, se 1 with 100 units: (1.96 + 0.84)^2 = 7.85 x 100 units
    n = ex.units_to_settle(1.0, 1.0, 100)
    assert n == pytest.approx(100 * (stats.norm.isf(0.025) + stats.norm.ppf(0.8)) ** 2)
    assert n == pytest.approx(784.9, abs=0.1)


def test_retrodesign_gelman_carlin_known_answer():
    """Gelman & Carlin (2014): true effect 2, se 8.1 -> power 0.06, type S 0.24, exaggeration
    9.7 by their simulation (closed form 9.54; checked here by a large simulation)."""
    r = ex.retrodesign(2, 8.1)
    assert round(r["power"], 2) == 0.06 and round(r["type_s"], 2) == 0.24
    rng = np.random.default_rng(0)
    est = rng.normal(2, 8.1, 1_000_000)
    sig = np.abs(est) > stats.norm.isf(0.025) * 8.1
    assert r["exaggeration"] == pytest.approx(np.abs(est[sig]).mean() / 2, rel=0.02)
    assert r["power"] == pytest.approx(sig.mean(), abs=0.002)
    # a well-powered test barely exaggerates
    assert ex.retrodesign(3, 1)["exaggeration"] == pytest.approx(1.0, abs=0.1)


def test_hazard_by_dose_recovers_a_planted_slope():
    """P = 1 - exp(-(0.002 + 0.004 dose)) per month, 200,000 customer-months per dose: the slope
    comes back within its interval, and a hand case of the per-dose hazard."""
    rng = np.random.default_rng(5)
    dose = np.repeat([1, 2, 4], 200_000)
    ev = rng.random(dose.size) < 1 - np.exp(-(0.002 + 0.004 * dose))
    g, b = ex.hazard_by_dose(ev, np.ones(dose.size), dose)
    assert b["ci_low"] < 0.004 < b["ci_high"]
    assert b["intercept"] == pytest.approx(0.002, abs=0.0006)
    g2, _ = ex.hazard_by_dose([1, 2, 4], [100, 100, 100], [1, 2, 4])
    assert g2.loc[4, "hazard"] == pytest.approx(-np.log(0.96))
