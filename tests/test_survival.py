"""Tests of helpers.survival: the sBG model against Fader & Hardie (2007), the generator's ground
truth, hand-computed cases and properties that hold for any parameters.

Parameter-recovery policy (decided before looking at any result, the same in tests/test_clv.py and
tests/test_survival.py): a test that checks that a fit recovers the parameters a simulation or the
generator planted asserts that every true value lies in its confidence interval at the
**family-wise 95 %** level, Bonferroni-adjusted over the k parameters that test checks (each
interval at level 1 - 0.05 / k). Seeds are fixed, so a test either always passes or always
fails; a correct fit fails a given seed with probability at most 5 %. Coverage itself is checked by
simulation, with the pass mark the 1 % quantile of Binomial(runs, 0.95). No other tolerance
("within 10 %") stands in for recovery.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from helpers import data, survival

FH = survival.FADER_HARDIE_2007


def sig3(x: float) -> float:
    """Round to three significant digits."""
    return float(f"{x:.3g}")


@pytest.mark.parametrize("segment", ["regular", "high_end"])
def test_fader_hardie_2007_mle(segment: str) -> None:
    calib = FH["survivors"][segment][: FH["calibration_years"] + 1]
    fit = survival.fit_sbg(calib)
    paper = FH["mle"][segment]
    assert sig3(fit.alpha) == sig3(paper["alpha"])
    assert sig3(fit.beta) == sig3(paper["beta"])
    assert fit.loglik == pytest.approx(paper["loglik"], abs=0.01)
    assert fit.converged


def test_fader_hardie_2007_projection() -> None:
    fit = survival.fit_sbg(FH["survivors"]["regular"][:8])
    proj = fit.projection(list(FH["projected_regular"]))
    for year, expected in FH["projected_regular"].items():
        assert sig3(proj[year]) == sig3(expected), year


def test_loglik_by_hand() -> None:
    # 10 customers: 3 churn in period 1, 2 in period 2, 5 still active after 2 periods
    a, b = 1.3, 2.1
    churned, censored = survival.survivors_to_counts([10, 7, 5])
    p1 = a / (a + b)
    p2 = (b / (a + b)) * (a / (a + b + 1))
    s2 = (b / (a + b)) * ((b + 1) / (a + b + 1))
    by_hand = 3 * np.log(p1) + 2 * np.log(p2) + 5 * np.log(s2)
    assert survival.sbg_loglik(a, b, churned, censored) == pytest.approx(by_hand, rel=1e-12)


def test_survivors_and_durations_give_same_fit() -> None:
    # the survivor table of the paper, expanded to one row per customer
    s = np.array(FH["survivors"]["high_end"][:8])
    churned_counts, _ = survival.survivors_to_counts(s)
    durations = np.concatenate(
        [np.repeat(np.arange(len(s)), churned_counts.astype(int)), np.full(s[-1], len(s) - 1)]
    )
    flags = np.concatenate([np.ones(int(churned_counts.sum()), bool), np.zeros(s[-1], bool)])
    a = survival.fit_sbg(s)
    b = survival.fit_sbg(durations=durations, churned=flags)
    assert (a.alpha, a.beta, a.loglik) == pytest.approx((b.alpha, b.beta, b.loglik), rel=1e-6)


def test_retention_is_ratio_of_survival() -> None:
    fit = dataclasses.replace(survival.fit_sbg(FH["survivors"]["regular"][:8]))
    t = np.arange(1, 30)
    np.testing.assert_allclose(fit.retention(t), fit.survival(t) / fit.survival(t - 1), rtol=1e-10)
    np.testing.assert_allclose(fit.churn_pmf(t), fit.survival(t - 1) - fit.survival(t), rtol=1e-9)
    assert fit.survival(0) == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(a=st.floats(0.05, 50), b=st.floats(0.05, 50))
def test_sbg_curve_properties(a: float, b: float) -> None:
    fit = survival.SBGFit(alpha=a, beta=b, loglik=np.nan, churned=np.zeros(2), censored=np.zeros(2))
    t = np.arange(0, 60)
    s = fit.survival(t)
    assert np.all(np.diff(s) <= 1e-15) and np.all((s > 0) & (s <= 1))
    r = fit.retention(t[1:])
    assert np.all((r > 0) & (r < 1))
    assert np.all(np.diff(r) >= -1e-15)  # retention rises with tenure: sorting
    assert fit.churn_pmf(t[1:]).sum() + s[-1] == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("renewals", [0, 1, 7])
def test_derl_matches_direct_sum(renewals: int) -> None:
    a, b, d = 0.704, 1.182, 0.10
    fit = survival.SBGFit(alpha=a, beta=b, loglik=np.nan, churned=np.zeros(2), censored=np.zeros(2))
    k = np.arange(1, 5000)
    # E[(1 - theta)^k | survived `renewals` periods] = B(a, b + n + k) / B(a, b + n); first payment undiscounted
    direct = np.sum(
        np.exp(special.betaln(a, b + renewals + k) - special.betaln(a, b + renewals))
        / (1 + d) ** (k - 1)
    )
    assert float(fit.derl(d, renewals)) == pytest.approx(direct, rel=1e-8)
    # a longer-tenured customer is worth more (sorting again)
    assert float(fit.derl(d, renewals + 1)) > float(fit.derl(d, renewals))


def test_derl_homogeneous_limit() -> None:
    # alpha, beta large with alpha / (alpha + beta) = p: everybody churns with p; DERL = (1-p) / (1 - (1-p)/(1+d))
    p, d = 0.2, 0.1
    fit = survival.SBGFit(
        alpha=p * 1e4, beta=(1 - p) * 1e4, loglik=np.nan, churned=np.zeros(2), censored=np.zeros(2)
    )
    assert float(fit.derl(d)) == pytest.approx((1 - p) / (1 - (1 - p) / (1 + d)), rel=1e-3)


def test_subscription_durations_by_hand() -> None:
    subs = pd.DataFrame(
        {
            "start_date": pd.to_datetime(
                ["2025-01-15", "2025-01-15", "2025-01-15", "2025-03-01", "2026-01-05"]
            ),
            "end_date": pd.to_datetime(["2025-04-15", None, "2026-02-15", None, None]),
        }
    )
    out = survival.subscription_durations(subs, "2025-12-31")
    # churned after 3 months; active: Jan 15 -> Dec 15 = 11 whole months; ends after as-of = active;
    # Mar 1 -> Dec 1 = 9 whole months (Dec 31 not yet Jan 1); the last one starts after as-of: dropped
    assert out["months"].tolist() == [3, 11, 11, 9]
    assert out["churned"].tolist() == [True, False, False, False]


def test_subscription_durations_month_boundary() -> None:
    subs = pd.DataFrame(
        {
            "start_date": pd.to_datetime(["2025-01-31", "2025-02-28"]),
            "end_date": pd.to_datetime([None, None]),
        }
    )
    out = survival.subscription_durations(subs, "2025-03-31")
    assert out["months"].tolist() == [2, 1]


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="non-increasing"):
        survival.fit_sbg([1000, 600, 700])
    with pytest.raises(ValueError, match="either"):
        survival.fit_sbg()
    with pytest.raises(ValueError, match="at least one period"):
        survival.fit_sbg(durations=[0, 2], churned=[True, False])


def test_recovers_parameters_from_simulation() -> None:
    rng = np.random.default_rng(3)
    a, b, n = 0.9, 3.0, 20_000
    months = rng.geometric(rng.beta(a, b, n))
    horizon = rng.integers(1, 37, n)  # staggered starts: 1..36 months observable
    churned = months <= horizon
    fit = survival.fit_sbg(durations=np.where(churned, months, horizon), churned=churned)
    ci = fit.confint(level=1 - 0.05 / 2)  # the policy: family-wise 95 % over alpha and beta
    assert ci.loc["alpha", "lower"] < a < ci.loc["alpha", "upper"]
    assert ci.loc["beta", "lower"] < b < ci.loc["beta", "upper"]


def test_profile_interval_coverage() -> None:
    """The profile-likelihood interval covers the truth in about 95 % of simulated samples of the
    size and censoring pattern of the bundled Explorer plan. Pass mark: the 1 % quantile of
    Binomial(40, 0.95), which is 34 (P(at most 33 hits) = 0.3 %, P(at most 34) = 1.4 %)."""
    rng = np.random.default_rng(11)
    a, b, hits = 0.7, 2.2, 0
    horizon = rng.integers(0, 36, 700)
    for _ in range(40):
        months = rng.geometric(rng.beta(a, b, horizon.size))
        churned = months <= horizon
        ci = survival.fit_sbg(
            durations=np.where(churned, months, horizon), churned=churned
        ).confint()
        hits += ci.loc["alpha", "lower"] <= a <= ci.loc["alpha", "upper"]
    assert hits >= stats.binom.ppf(0.01, 40, 0.95) == 34


def test_profile_and_wald_agree_roughly() -> None:
    fit = survival.fit_sbg(FH["survivors"]["regular"][:8])
    prof, wald = fit.confint(method="profile"), fit.confint(method="wald")
    np.testing.assert_allclose(prof[["lower", "upper"]], wald[["lower", "upper"]], rtol=0.05)
    # at the profile bounds the likelihood-ratio statistic equals the chi-square critical value
    lo = prof.loc["alpha", "lower"]
    assert 2 * (fit.loglik - survival._profile_ll(fit, "alpha", lo)) == pytest.approx(
        3.8415, abs=1e-3
    )


def test_generator_plans_recovered_within_profile_intervals() -> None:
    """Bundled subscriptions: each plan's true (alpha, beta) lies in its profile-likelihood
    interval. Six intervals are checked at once, so each is Bonferroni-adjusted to
    1 - 0.05 / 6 (family-wise 95 %); at 95 % each, one miss in six happens about a quarter of the
    time even for a correct fit (here Explorer's alpha: the sample's realized thetas are low)."""
    truth = {
        p["name"]: (p["alpha"], p["beta"]) for p in data.load_ground_truth()["parameters"]["plans"]
    }
    durations = survival.subscription_durations(data.load_subscriptions(), "2025-12-31")
    table = survival.fit_sbg_groups(durations, by="plan", level=1 - 0.05 / 6)
    assert set(table.index) == set(truth)
    for plan, (a, b) in truth.items():
        row = table.loc[plan]
        assert row["alpha_lower"] <= a <= row["alpha_upper"], plan
        assert row["beta_lower"] <= b <= row["beta_upper"], plan


def test_geometric_ignores_heterogeneity() -> None:
    churned, censored = survival.survivors_to_counts(FH["survivors"]["regular"][:8])
    fit = survival.fit_sbg(FH["survivors"]["regular"][:8])
    t = np.arange(8, 13)
    naive = 1000 * survival.geometric_survival(churned, censored, t)
    actual = np.array(FH["survivors"]["regular"])[8:]
    assert np.all(naive < actual)  # the constant-retention projection is far too pessimistic
    assert np.all(np.abs(1000 * fit.survival(t) - actual) < np.abs(naive - actual))


def test_life_table_by_hand_and_on_paper_data() -> None:
    # 10 customers: churn in periods 1, 1, 2, 3; censored after 1 (x2), 2 (x1), 3 (x3)
    lt = survival.life_table(np.array([0, 2, 1, 1]), np.array([0, 2, 1, 3]))
    assert lt["at_risk"].tolist() == [10, 6, 4]
    np.testing.assert_allclose(lt["retention"], [0.8, 5 / 6, 0.75])
    np.testing.assert_allclose(lt["survival"], np.cumprod([0.8, 5 / 6, 0.75]))
    # without censoring inside the window, the life table reproduces the survivor counts
    s = np.array(FH["survivors"]["regular"], dtype=float)
    lt = survival.life_table(*survival.survivors_to_counts(s))
    np.testing.assert_allclose(lt["survival"], s[1:] / s[0])


def test_weights_count_customers() -> None:
    durations, churned = np.array([1, 2, 3, 3, 5]), np.array([True, True, True, False, False])
    once = survival.fit_sbg(durations=np.tile(durations, 2), churned=np.tile(churned, 2))
    weighted = survival.fit_sbg(durations=durations, churned=churned, weights=np.full(5, 2.0))
    assert (weighted.alpha, weighted.beta, weighted.loglik) == pytest.approx(
        (once.alpha, once.beta, once.loglik), rel=1e-6
    )


def test_active_projection_hand_case_and_simulation() -> None:
    """At the cutoff the projection equals the active count (S(n)/S(n) = 1); on a simulated sBG
    base the projected active subscribers per month stay within 4 standard deviations of the
    luck of who churns (parameters known), and one average rate projects too few."""
    a, b = 0.7, 2.2
    rng = np.random.default_rng(5)
    n = 4000
    months0 = pd.DatetimeIndex(
        [pd.Timestamp("2023-01-01") + pd.DateOffset(months=int(k)) for k in rng.integers(0, 30, n)]
    )
    start = months0 + pd.to_timedelta(rng.integers(0, 28, n), unit="D")  # billing days 1-28
    life = np.minimum(rng.geometric(rng.beta(a, b, n)), 100)  # T > 100: still active at the end
    end = pd.Series([s + pd.DateOffset(months=int(t)) for s, t in zip(start, life, strict=True)])
    subs = pd.DataFrame({"plan": "X", "start_date": start, "end_date": end})
    subs.loc[subs["end_date"] > pd.Timestamp("2025-12-31"), "end_date"] = pd.NaT
    cutoff = pd.Timestamp("2024-12-31")
    calib = survival.subscription_durations(subs, cutoff)
    fit = survival.fit_sbg(durations=calib["months"], churned=calib["churned"])
    true_fit = dataclasses.replace(fit, alpha=a, beta=b)
    dates = pd.date_range(cutoff, "2025-12-31", freq="ME")
    proj = survival.active_projection(subs, {"X": true_fit}, cutoff, dates)
    first = proj.iloc[0]
    assert first["expected"] == pytest.approx(first["actual"]) and first["sd"] == pytest.approx(0)
    z = (proj["actual"] - proj["expected"]).abs() / proj["sd"].where(proj["sd"] > 0)
    assert (z.dropna() < 4).all(), proj
    assert (proj["geometric"].iloc[1:] < proj["expected"].iloc[1:]).all()
    before = survival.active_projection(subs, {"X": true_fit}, cutoff, [pd.Timestamp("2024-06-30")])
    assert before["expected"].isna().all() and before["actual"].iloc[0] > 0


def test_derl_interval_contains_estimate_and_narrows_with_data() -> None:
    small = survival.fit_sbg(FH["survivors"]["regular"][:8])
    big = survival.fit_sbg([10 * s for s in FH["survivors"]["regular"][:8]])
    e1, lo1, hi1 = survival.derl_interval(small, 0.1, 0, n_draws=400)
    e2, lo2, hi2 = survival.derl_interval(big, 0.1, 0, n_draws=400)
    assert lo1 < e1 < hi1 and lo2 < e2 < hi2
    assert e1 == pytest.approx(e2, rel=1e-3)  # ten times the customers, the same shares
    assert (hi2 - lo2) < 0.5 * (hi1 - lo1)  # sqrt(10) narrower, about
    # the draws' spread of log alpha matches the Wald interval of confint
    draws = survival.sample_sbg(small, 4000, seed=1)
    wald = small.confint(method="wald")
    sd = np.log(draws[:, 0]).std()
    assert sd == pytest.approx(np.log(wald.loc["alpha", "upper"] / small.alpha) / 1.96, rel=0.1)


# ----------------------------------------------------------------------------- judging predictions


def test_harrell_c_hand_computed_and_as_lifelines() -> None:
    """Times 1, 2, 3, 4, the third censored: comparable pairs (earlier time an event) are (1,2),
    (1,3), (1,4), (2,3), (2,4). Risks 4, 1, 3, 2: customer 1 outranks all three (3 concordant),
    customer 2 outranks neither 3 nor 4 (2 discordant): C = 3/5. Risks 4, 3, 3, 2: the (2,3) tie
    counts a half: C = 4.5/5. An event and a censoring at the same time are comparable: times
    1, 1, 2 (the second censored), risks 1, 2, 0: (1,2) discordant, (1,3) concordant, C = 1/2.
    Without tied times it is lifelines' concordance_index; the bootstrap's vectorized form gives
    the same C on data full of ties."""
    from lifelines.utils import concordance_index

    t, e = np.array([1.0, 2, 3, 4]), np.array([1, 1, 0, 1])
    assert survival.harrell_c(t, e, [4, 1, 3, 2]) == pytest.approx(0.6)
    assert survival.harrell_c(t, e, [4, 3, 3, 2]) == pytest.approx(0.9)
    assert survival.harrell_c(t, e, [1, 1, 1, 1]) == pytest.approx(0.5)
    assert survival.harrell_c([1.0, 1, 2], [1, 0, 1], [1, 2, 0]) == pytest.approx(0.5)
    rng = np.random.default_rng(5)
    t = rng.exponential(5, 300)
    e = rng.random(300) < 0.6
    risk = rng.integers(0, 5, 300) - 0.1 * t  # tied risks, concordant on the whole
    assert survival.harrell_c(t, e, risk) == pytest.approx(concordance_index(t, -risk, e))
    t = np.floor(t)  # whole months: many tied times
    k = np.vstack([np.ones(300), rng.multinomial(300, np.full(300, 1 / 300), size=2)])
    rows = survival._harrell_rows(t, e, risk, k)
    assert rows[0] == pytest.approx(survival.harrell_c(t, e, risk))
    for b in (1, 2):  # a resample's C is the C of the customers it drew, repeated
        i = np.repeat(np.arange(300), k[b].astype(int))
        assert rows[b] == pytest.approx(survival.harrell_c(t[i], e[i], risk[i]))


def test_prediction_metrics_known_answers_without_censoring() -> None:
    """No censoring (G = 1): the IPCW concordance is Harrell's C, AUC(t) is the Mann-Whitney AUC
    of churned-by-t against still-active, and the Brier score is the plain mean squared error.
    Times 1..4 and predicted S(1.5) = 0.75, S(2.5) = 0.5 for everyone: BS(1.5) = (0.75^2 +
    3 * 0.25^2) / 4 = 0.1875, BS(2.5) = 0.25 (half above, half below), IBS = their mean = 0.21875."""
    from helpers import churn

    t, e = np.array([1.0, 2, 3, 4]), np.ones(4, dtype=bool)
    const = np.tile([0.75, 0.5], (4, 1))
    m = survival.survival_prediction_metrics(t, e, t, e, const, [1.5, 2.5])
    assert m["ibs"] == pytest.approx(0.21875)
    assert m["harrell_c"] == pytest.approx(0.5) and m["ipcw_c"] == pytest.approx(0.5)
    rng = np.random.default_rng(2)
    x = rng.normal(size=400)
    t = rng.exponential(10 * np.exp(0.5 * x))  # distinct times; higher x lives longer
    e = np.ones(400, dtype=bool)
    times = np.array([5.0, 10.0])
    s = np.exp(-np.outer(np.exp(-0.5 * x), times / 10))  # the true survival curves
    m = survival.survival_prediction_metrics(t, e, t, e, s, times)
    tau = times[-1]  # Uno's C keeps the pairs whose earlier time is before tau
    harrell_tau = survival.harrell_c(np.minimum(t, tau), e & (t < tau), 1 - s[:, -1])
    assert m["ipcw_c"] == pytest.approx(harrell_tau, abs=1e-9)
    for k, tk in enumerate(times):
        auc = churn.auc_mann_whitney(t <= tk, 1 - s[:, k])
        assert m["auc"].loc[tk] == pytest.approx(auc, abs=1e-9)
    assert 0.5 < m["mean_auc"] < 1 and 0.5 < m["harrell_c"] < 1


def test_survival_bootstrap_layout_and_verdicts() -> None:
    """The reference has difference 0; every estimate lies in its interval; a prediction built
    from the true rates beats a constant curve on C and on the integrated Brier score."""
    rng = np.random.default_rng(4)
    n = 300
    rate = np.exp(rng.normal(0, 1, n)) / 6
    t_true = rng.exponential(1 / rate)
    cens = rng.uniform(2, 15, n)
    t, e = np.minimum(t_true, cens), t_true <= cens
    times = np.array([1.0, 3.0, 5.0])
    informed = np.exp(-np.outer(rate, times))
    flat = np.tile(informed.mean(axis=0), (n, 1))
    b = survival.survival_bootstrap(
        t, e, t, e, {"informed": informed, "flat": flat}, times, reference="flat", n_boot=60, seed=1
    )
    assert set(b.index) == {(m, k) for m in ("informed", "flat") for k in ("harrell_c", "ibs")}
    assert (b["ci_low"] <= b["estimate"]).all() and (b["estimate"] <= b["ci_high"]).all()
    assert (b.loc["flat", "diff"] == 0).all() and (b.loc["flat", "verdict"] == "reference").all()
    assert b.loc[("flat", "harrell_c"), "estimate"] == pytest.approx(0.5)
    assert b.loc[("informed", "harrell_c"), "verdict"] == "better"
    m = survival.survival_prediction_metrics(t, e, t, e, informed, times)
    assert b.loc[("informed", "harrell_c"), "estimate"] == pytest.approx(m["harrell_c"])
    assert b.loc[("informed", "ibs"), "estimate"] == pytest.approx(m["ibs"])
    assert b.loc[("informed", "ibs"), "verdict"] == "better"
    with pytest.raises(ValueError, match="reference"):
        survival.survival_bootstrap(t, e, t, e, {"a": flat}, times, reference="b")
