"""Tests of helpers.clv: BG/NBD and Gamma-Gamma likelihoods against the papers' closed forms,
parameter recovery on the generator's data (planted_effects=False follows BG/NBD exactly),
P(alive), predictions, calibration/holdout and CLV; the published CDNOW estimates; the
diagnostics (frequency histogram, tracking) and the parametric bootstrap.

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

import math
from unittest.mock import patch

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats
from scipy.special import beta as B

from helpers import btyd, clv, data, economics, pareto_nbd, segments
from helpers.synth import SynthConfig, generate

THREE = pd.DataFrame(
    {"frequency": [0, 2, 5], "recency": [0.0, 10.0, 30.5], "T": [12.0, 40.0, 39.0]}
)


def _bgnbd_direct(x: int, tx: float, T: float, r: float, alpha: float, a: float, b: float) -> float:
    """Fader, Hardie & Lee (2005) eq. 6, evaluated literally (no logs)."""
    A = math.gamma(r + x) * alpha**r / math.gamma(r)
    term = B(a, b + x) / B(a, b) / (alpha + T) ** (r + x)
    if x > 0:
        term += B(a + 1, b + x - 1) / B(a, b) / (alpha + tx) ** (r + x)
    return math.log(A * term)


@pytest.mark.parametrize(
    "params", [(0.243, 4.414, 0.793, 2.426), (0.9, 8.0, 0.8, 3.2), (2.0, 1.5, 1.7, 0.6)]
)
def test_bgnbd_loglik_matches_paper_formula_on_three_customers(params):
    ll = clv.bgnbd_loglik(THREE, *params)
    direct = [_bgnbd_direct(int(x), tx, T, *params) for x, tx, T in THREE.itertuples(index=False)]
    np.testing.assert_allclose(ll, direct, rtol=1e-10)


def test_gamma_gamma_loglik_matches_density_of_mean_spend():
    df = pd.DataFrame({"frequency": [1, 3, 8], "monetary_value": [12.5, 30.0, 41.2]})
    p, q, g = 6.0, 4.0, 15.0
    ll = clv.gamma_gamma_loglik(df, p, q, g)
    direct = []
    for x, m in df.itertuples(index=False):
        # f(m) = G(px+q) / (G(px) G(q)) * g^q m^(px-1) x^(px) / (g + m x)^(px+q)   (Hardie 2013)
        px = p * x
        direct.append(
            math.log(
                math.gamma(px + q)
                / (math.gamma(px) * math.gamma(q))
                * g**q
                * m ** (px - 1)
                * x**px
                / (g + m * x) ** (px + q)
            )
        )
    np.testing.assert_allclose(ll, direct, rtol=1e-10)


@pytest.fixture(scope="module")
def generated() -> pd.DataFrame:
    tables, _ = generate(SynthConfig(planted_effects=False, n_customers=20000))
    return tables["orders"]


@pytest.fixture(scope="module")
def summary(generated) -> pd.DataFrame:
    return segments.rfm_table(generated, "2025-12-31", "W")


def test_bgnbd_recovers_generator_parameters_within_ci(summary):
    fit = clv.fit_bgnbd(summary)
    assert fit.time_unit == "W" and fit.converged
    tab = fit.summary(1 - 0.05 / 4)  # the policy: family-wise 95 % over four parameters
    cfg = SynthConfig()
    truth = {"r": cfg.bgnbd_r, "alpha": cfg.bgnbd_alpha, "a": cfg.bgnbd_a, "b": cfg.bgnbd_b}
    for name, value in truth.items():
        assert tab.loc[name, "ci_low"] < value < tab.loc[name, "ci_high"], (
            name,
            tab.loc[name].to_dict(),
        )
        assert tab.loc[name, "se"] < 0.1 * value  # informative intervals, not just wide ones
    # the optimum: the log-likelihood there beats the truth's
    assert fit.loglik >= clv.bgnbd_loglik(summary, *truth.values()).sum()


def test_gamma_gamma_recovers_generator_parameters_within_ci(summary):
    rep = summary[summary["frequency"] > 0]
    fit = clv.fit_gamma_gamma(rep)
    tab = fit.summary(1 - 0.05 / 3)  # the policy: family-wise 95 % over three parameters
    cfg = SynthConfig()
    for name, value in {"p": cfg.gg_p, "q": cfg.gg_q, "gamma": cfg.gg_gamma}.items():
        assert tab.loc[name, "ci_low"] < value < tab.loc[name, "ci_high"], (
            name,
            tab.loc[name].to_dict(),
        )
    check = clv.spend_frequency_check(rep)
    assert abs(check["pearson_r"]) < 0.05  # the generator draws spend independently of frequency


def test_time_unit_changes_alpha_only(generated):
    w = clv.fit_bgnbd(segments.rfm_table(generated.iloc[:20000], "2025-12-31", "W"))
    d = clv.fit_bgnbd(segments.rfm_table(generated.iloc[:20000], "2025-12-31", "D"))
    assert d.time_unit == "D"
    assert d.alpha / w.alpha == pytest.approx(7.0, rel=1e-3)
    for k in ("r", "a", "b"):
        assert d.params[k] == pytest.approx(w.params[k], rel=1e-3)


def test_gamma_gamma_refuses_non_repeat_or_zero_spend():
    df = pd.DataFrame({"frequency": [0, 2, 3], "monetary_value": [0.0, 10.0, 12.0]})
    with pytest.raises(ValueError, match="repeat customers with positive spend"):
        clv.fit_gamma_gamma(df)
    with pytest.raises(ValueError, match="monetary_value <= 0"):
        clv.fit_gamma_gamma(pd.DataFrame({"frequency": [1, 2], "monetary_value": [0.0, 10.0]}))


FIT = clv.ModelFit(
    "BG/NBD", {"r": 0.9, "alpha": 8.0, "a": 0.8, "b": 3.2}, 0.0, 0, "W", np.zeros((4, 4)), True
)
GG = clv.ModelFit(
    "Gamma-Gamma", {"p": 6.0, "q": 4.0, "gamma": 15.0}, 0.0, 0, "-", np.zeros((3, 3)), True
)


@settings(max_examples=50, deadline=None)
@given(
    x=st.integers(min_value=0, max_value=60),
    frac=st.floats(min_value=0.0, max_value=1.0),
    T=st.floats(min_value=0.5, max_value=300.0),
)
def test_p_alive_is_one_without_repeat_purchases_and_a_probability(x, frac, T):
    df = pd.DataFrame(
        {"frequency": [0, x], "recency": [0.0, frac * T if x > 0 else 0.0], "T": [T, T]}
    )
    pa = clv.p_alive(FIT, df)
    assert pa.iloc[0] == 1.0
    assert 0.0 <= pa.iloc[1] <= 1.0
    # a customer whose last purchase is at the end of the period is at least as likely alive as one who went quiet
    later = df.assign(recency=[0.0, T if x > 0 else 0.0])
    assert clv.p_alive(FIT, later).iloc[1] >= pa.iloc[1] - 1e-12


def test_expected_purchases_consistency():
    t = np.array([1.0, 10.0, 52.0, 104.0])
    new = clv.expected_purchases_new(FIT, t)
    assert np.all(np.diff(new) > 0) and new[0] > 0
    # a customer seen for an instant with no repeat purchase is a new customer
    fresh = pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [1e-9]})
    np.testing.assert_allclose(clv.expected_purchases(FIT, fresh, t).iloc[0], new, rtol=1e-6)
    cond = clv.expected_purchases(FIT, THREE, t).to_numpy()
    assert cond.shape == (3, 4) and np.all(np.diff(cond, axis=1) > 0)
    np.testing.assert_allclose(clv.expected_purchases(FIT, THREE, 52.0), cond[:, 2])


def test_expected_purchases_new_matches_simulation():
    rng = np.random.default_rng(1)
    n, t = 200_000, 52.0
    lam = rng.gamma(0.9, 1 / 8.0, n)
    p = rng.beta(0.8, 3.2, n)
    # BG/NBD: dropout after each repeat purchase; count purchases in (0, t]
    count = np.zeros(n)
    time = np.zeros(n)
    alive = np.ones(n, bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        time[idx] += rng.exponential(1 / lam[idx])
        ok = time[idx] <= t
        count[idx[ok]] += 1
        alive[idx[~ok]] = False
        alive[idx[ok]] = rng.random(ok.sum()) >= p[idx[ok]]
    assert clv.expected_purchases_new(FIT, t) == pytest.approx(count.mean(), rel=0.03)


def test_expected_spend_shrinks_to_population_mean():
    df = pd.DataFrame({"frequency": [0, 1, 50], "monetary_value": [0.0, 100.0, 100.0]})
    es = clv.expected_spend(GG, df)
    assert es.iloc[0] == pytest.approx(6 * 15 / 3)  # p gamma / (q - 1)
    assert es.iloc[0] < es.iloc[1] < es.iloc[2] < 100.0


def test_predictive_clv_discounting_and_costs():
    df = THREE.assign(monetary_value=[0.0, 20.0, 35.0])
    df.attrs["time_unit"] = "W"
    flat_econ = economics.Economics(yearly_discount_rate=0.0, horizon_months=12)
    flat = clv.predictive_clv(FIT, GG, df, flat_econ, margin_rate=0.3)
    month = (365.25 / 12) / 7
    expected = 0.3 * clv.expected_spend(GG, df) * clv.expected_purchases(FIT, df, 12 * month)
    np.testing.assert_allclose(flat["clv"], expected, rtol=1e-9)
    disc = clv.predictive_clv(FIT, GG, df, flat_econ.replace(yearly_discount_rate=0.2), 0.3)
    assert np.all(disc["clv"] < flat["clv"]) and np.all(disc["clv"] > 0.8 * flat["clv"])
    assert disc["p_alive"].iloc[0] == 1.0
    # a cost per order is subtracted from each expected order's margin
    costly = clv.predictive_clv(FIT, GG, df, flat_econ, margin_rate=0.3, cost_per_order=2.0)
    np.testing.assert_allclose(
        flat["clv"] - costly["clv"], 2.0 * clv.expected_purchases(FIT, df, 12 * month), rtol=1e-9
    )


def test_calibration_holdout_predicts_generator_holdout(generated):
    cal = clv.calibration_holdout(generated, "2024-12-31", "2025-12-31", "W")
    assert cal["first_order"].max() < pd.Timestamp("2025-01-01")
    assert cal["holdout_duration"].iloc[0] == pytest.approx(365 / 7)
    fit = clv.fit_bgnbd(cal)
    table, metrics = clv.evaluate_holdout(fit, cal)
    assert table["customers"].sum() == len(cal)
    assert abs(metrics["total_error"]) < 0.05  # the model is true for this data
    assert metrics["bucket_mae"] < 0.15
    assert metrics["mae"] > 0 and metrics["rmse"] >= metrics["mae"]
    # holdout purchases are exactly the orders of these customers in 2025
    o = generated[
        generated["customer_id"].isin(cal.index) & (generated["order_date"] >= "2025-01-01")
    ]
    assert cal["holdout_purchases"].sum() == len(o)


def test_historical_margin_and_net_margin_rate_agree_on_returns():
    """One economics: the margin a customer earned to date and the rate that turns spend into
    margin both count a returned order with margin 0."""
    orders = pd.DataFrame({"customer_id": [1, 1, 2], "order_date": pd.to_datetime(["2025-01-01", "2025-06-01", "2025-03-01"]),
                           "amount": [100.0, 50.0, 80.0], "discount": [0.0, 10.0, 20.0], "returned": [False, False, True]})  # fmt: skip
    econ = economics.Economics(gross_margin_rate=0.45)
    h = economics.customer_value(orders, None, econ, "2025-12-31")
    assert h.loc[1, "margin"] == pytest.approx(100 - 55 + 50 - 0.55 * 60)
    assert h.loc[2, "margin"] == 0.0
    assert economics.net_margin_rate(orders, econ) == pytest.approx(h["margin"].sum() / 230)


# --- published CDNOW results (the data files shipped with the lifetimes package) -------------


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return clv.load_cdnow()


def test_cdnow_bgnbd_published_estimates(cdnow):
    """Fader, Hardie & Lee (2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL -9582.4."""
    fit = clv.fit_bgnbd(cdnow)
    assert len(cdnow) == 2357
    got = [fit.r, fit.alpha, fit.a, fit.b]
    np.testing.assert_allclose(got, [0.243, 4.414, 0.793, 2.426], rtol=2e-3)
    assert fit.loglik == pytest.approx(-9582.4, abs=0.1)
    # customer 1 (x = 2, t_x = 30.43, T = 38.86): 1.226 purchases in the next 39 weeks
    assert clv.expected_purchases(fit, cdnow.loc[[1]], 39.0)[1] == pytest.approx(1.226, abs=1e-3)


def test_cdnow_mbgnbd_published_estimates(cdnow):
    """Batislam, Denizel & Filiztekin (2007), values of BTYDplus: r 0.525, alpha 6.183, a 0.891,
    b 1.614."""
    fit = clv.fit_mbgnbd(cdnow)
    np.testing.assert_allclose(
        [fit.r, fit.alpha, fit.a, fit.b], [0.525, 6.183, 0.891, 1.614], rtol=2e-3
    )


def test_cdnow_gamma_gamma_published_estimates():
    """Fader, Hardie & Lee (2005, JMR), 946 repeat buyers: p 6.25, q 3.74, gamma 15.44."""
    m = clv.load_cdnow("monetary")
    rep = m[m["frequency"] > 0]
    fit = clv.fit_gamma_gamma(rep)
    assert len(rep) == 946
    assert [float(f"{v:.3g}") for v in (fit.p, fit.q, fit.gamma)] == [6.25, 3.74, 15.4]  # 3 s.f.


def test_one_time_buyers_can_be_gone_under_mbgnbd(cdnow):
    """BG/NBD: P(alive) = 1 for every one-time buyer, however long ago (the flaw the report must
    not show a client); MBG/NBD: it falls with the time since the purchase."""
    bg, mbg = clv.fit_bgnbd(cdnow), clv.fit_mbgnbd(cdnow)
    once = pd.DataFrame(
        {"frequency": [0, 0, 0], "recency": [0.0, 0.0, 0.0], "T": [2.0, 40.0, 75.0]}
    )
    assert (clv.p_alive(bg, once) == 1.0).all()
    pa = clv.p_alive(mbg, once).to_numpy()
    assert pa[0] > pa[1] > pa[2] and pa[2] < 0.6
    # by hand: 1 / (1 + a/b ((alpha+T)/alpha)^r)
    r, alpha, a, b = mbg.r, mbg.alpha, mbg.a, mbg.b
    assert pa[2] == pytest.approx(1 / (1 + a / b * ((alpha + 75) / alpha) ** r))
    # expected purchases of a new customer: the conditional formula at x = t_x = T = 0
    zero = pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [1e-12]})
    for fit in (bg, mbg):
        assert clv.expected_purchases(fit, zero, 52.0).iloc[0] == pytest.approx(
            float(clv.expected_purchases_new(fit, 52.0)), rel=1e-6
        )


def test_compare_purchase_models_chooses_on_the_holdout(generated):
    cal = clv.calibration_holdout(generated, "2024-12-31", "2025-12-31", "W")
    table, best = clv.compare_purchase_models(cal)
    assert list(table.index) == ["BG/NBD", "MBG/NBD", "Pareto/NBD"] and best in table.index
    assert table.loc[best, "bucket_mae"] <= table["bucket_mae"].min() * 1.01
    # the Pareto/NBD row is scored with its own conditional expectation
    fit = clv.PURCHASE_MODELS["Pareto/NBD"](cal)
    _, m = clv.evaluate_holdout(fit, cal)
    pred = pareto_nbd.expected_purchases(fit, cal, float(cal["holdout_duration"].iloc[0]))
    assert m["total_predicted"] == pytest.approx(pred.sum(), rel=1e-12)
    assert table.loc["Pareto/NBD", "bucket_mae"] == pytest.approx(m["bucket_mae"], rel=1e-9)


def test_a_model_with_nan_holdout_predictions_is_not_chosen(generated, monkeypatch):
    """A converged fit whose holdout predictions are NaN (parameters at the edge of their space)
    is not usable: with no usable model the comparison raises ValueError (the report then says
    why it predicts no lifetime value) instead of failing on a NaN index."""
    cal = clv.calibration_holdout(generated, "2024-12-31", "2025-12-31", "W")
    real = clv.evaluate_holdout

    def nan_for(model):
        def evaluate(fit, *args, **kwargs):
            table, m = real(fit, *args, **kwargs)
            return table, {**m, "bucket_mae": np.nan} if fit.model in model else m

        return evaluate

    monkeypatch.setattr(clv, "evaluate_holdout", nan_for({"BG/NBD"}))
    assert clv.compare_purchase_models(cal)[1] in ("MBG/NBD", "Pareto/NBD")
    monkeypatch.setattr(clv, "evaluate_holdout", nan_for({"BG/NBD", "Pareto/NBD"}))
    assert clv.compare_purchase_models(cal)[1] == "MBG/NBD"
    monkeypatch.setattr(clv, "evaluate_holdout", nan_for({"BG/NBD", "MBG/NBD", "Pareto/NBD"}))
    with pytest.raises(ValueError, match="finite predictions"):
        clv.compare_purchase_models(cal)


def test_probability_of_purchases_is_a_distribution_with_the_right_mean():
    """P(X(t) = x) (FHL 2005 eq. 8) sums to 1 over x and its mean is E[X(t)] (eq. 7), two formulas
    of the paper that share no code here."""
    for t in (5.0, 39.0, 150.0):
        p = np.array([clv.probability_of_purchases(FIT, t, x) for x in range(400)])
        assert p.sum() == pytest.approx(1.0, abs=1e-6)
        assert (p * np.arange(400)).sum() == pytest.approx(
            float(clv.expected_purchases_new(FIT, t)), rel=1e-5
        )


def test_frequency_histogram_on_cdnow(cdnow):
    """The CDNOW histogram: 1,411 customers made no repeat purchase in the 39 weeks (FHL 2005,
    Figure 2); the model's expected counts add up to the 2,357 customers."""
    hist = clv.frequency_histogram(clv.fit_bgnbd(cdnow), cdnow)
    assert hist.loc["0", "observed"] == 1411 and hist["observed"].sum() == 2357
    assert hist["expected"].sum() == pytest.approx(2357)
    assert hist.loc["0", "expected"] == pytest.approx(1411, rel=0.02)


def test_tracking_counts_every_repeat_purchase(generated):
    cut, end = "2024-12-31", "2025-12-31"
    cal = clv.calibration_holdout(generated, cut, end, "W")
    fit = clv.fit_bgnbd(cal)
    track = clv.tracking(fit, generated, cut, end, "W")
    # actual: the calibration repeat purchases plus the holdout orders of the same customers
    assert track["actual"].sum() == cal["frequency"].sum() + cal["holdout_purchases"].sum()
    # expected at the end: every customer's E[X(age at the end)], summed
    age = (pd.Timestamp("2026-01-01") - cal["first_order"]) / pd.Timedelta(weeks=1)
    assert track["expected_cum"].iloc[-1] == pytest.approx(
        float(clv.expected_purchases_new(fit, age.to_numpy()).sum()), rel=1e-9
    )
    # the model is true for this company: the holdout total within 5 %
    hold = track.index >= pd.Timestamp(cut)
    assert track.loc[hold, "expected"].sum() == pytest.approx(
        track.loc[hold, "actual"].sum(), rel=0.05
    )


def test_clv_intervals_bracket_the_estimate_and_add_up(summary):
    rep = summary[summary["frequency"] > 0]
    bg, gg = clv.fit_bgnbd(summary), clv.fit_gamma_gamma(rep)
    groups = pd.Series(
        np.where(summary["frequency"] > 2, "frequent", "rare"), index=summary.index, name="g"
    )
    out = clv.clv_intervals(bg, gg, summary, groups, n_draws=40)
    point = clv.predictive_clv(bg, gg, summary)["clv"].groupby(groups).mean()
    np.testing.assert_allclose(out["clv"], point.loc[out.index], rtol=1e-12)
    assert (out["clv_low"] < out["clv"]).all() and (out["clv"] < out["clv_high"]).all()
    assert out["customers"].sum() == len(summary)
    np.testing.assert_allclose(out["total"], out["clv"] * out["customers"])
    draws = clv.sample_params(bg, 2000, seed=3)
    r = np.log([d.r for d in draws])
    assert r.std() == pytest.approx(np.sqrt(bg.cov_log[0, 0]), rel=0.1)


@pytest.mark.parametrize("model", ["BG/NBD", "MBG/NBD"])
@pytest.mark.parametrize(
    "params", [(0.243, 4.414, 0.793, 2.426), (0.9, 8.0, 0.8, 3.2), (2.0, 1.5, 1.7, 0.6)]
)
def test_predictive_clv_fast_path_equals_the_direct_formula(model, params):
    """predictive_clv tabulates the hypergeometric function per repeat count (Euler's
    transformation, cubic Hermite interpolation in w = log(1 + t/(alpha+T))) when many customers
    share a count: on 30,000 random customers its expected purchases and CLV equal the literal
    FHL (2005) eq. 10 of expected_purchases at every horizon to 1e-10 relative."""
    rng = np.random.default_rng(11)
    n = 30_000
    x = np.minimum(rng.geometric(0.35, n) - 1, 40).astype(float)
    T = rng.uniform(0.1, 160, n)
    df = pd.DataFrame(
        {"frequency": x, "recency": T * rng.uniform(0, 1, n) * (x > 0), "T": T,
         "monetary_value": np.where(x > 0, rng.gamma(3, 10, n), 0.0)}
    )  # fmt: skip
    df.attrs["time_unit"] = "W"
    fit = clv.ModelFit(model, dict(zip("r alpha a b".split(), params, strict=True)), 0.0, n,
                       "W", np.eye(4), True)  # fmt: skip
    econ = economics.Economics(horizon_months=36)
    got = clv.predictive_clv(fit, GG, df, econ, margin_rate=0.3)
    assert clv._CumTables(fit, x, T, np.arange(1, 37.0)).tab.any()  # the fast path is taken
    month = (365.25 / 12) / 7
    cum = clv.expected_purchases(fit, df, np.arange(0, 37) * month).to_numpy()
    cum[:, 0] = 0.0
    want = (
        0.3
        * clv.expected_spend(GG, df).to_numpy()
        * (np.diff(cum, axis=1) @ econ.discount_factors())
    )
    np.testing.assert_allclose(got["expected_purchases"], cum[:, -1], rtol=1e-10, atol=0)
    np.testing.assert_allclose(got["clv"], want, rtol=1e-10, atol=0)
    fast = clv._CumTables(fit, x, T, np.arange(1, 37) * month).cum(x, df["recency"].to_numpy(), T)
    np.testing.assert_allclose(fast, cum[:, 1:], rtol=1e-10, atol=1e-300)


def _simulated_summary(n: int, seed: int = 5) -> pd.DataFrame:
    """A BTYD summary of n customers drawn from the BG/NBD (r, alpha, a, b) = (0.9, 8, 0.8, 3.2),
    with Gamma-Gamma spend, observed for 0.1-156 weeks."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(0.1, 156, n)
    lam = rng.gamma(0.9, 1 / 8.0, n)
    p = rng.beta(0.8, 3.2, n)
    x = np.zeros(n)
    tx = np.zeros(n)
    t = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    for _ in range(60):  # purchases until dropout or the end (vectorized over customers)
        t = t + rng.exponential(1 / lam)
        buy = alive & (t < T)
        x[buy] += 1
        tx[buy] = t[buy]
        alive &= buy & (rng.random(n) > p)
    nu = rng.gamma(4.0, 1 / 15.0, n)
    m = np.where(x > 0, rng.gamma(6.0 * np.maximum(x, 1), 1 / (nu * np.maximum(x, 1))), 0.0)
    df = pd.DataFrame({"frequency": x, "recency": tx, "T": T, "monetary_value": m})
    df.attrs["time_unit"] = "W"
    return df


@pytest.mark.parametrize("model", ["BG/NBD", "MBG/NBD", "Gamma-Gamma"])
def test_analytic_gradient_fit_equals_the_numerical_gradient_fit(model, monkeypatch):
    """With analytic gradients (n >= clv.ANALYTIC_MIN_N, every fit by default) the fits find the same
    optimum as the numerical-gradient fit (which stops within about 1e-4 of it), far within one
    standard error (1 %), the log-likelihood to 1e-10, and the same standard errors to 1e-3."""
    df = _simulated_summary(20_000)
    fit = {"Gamma-Gamma": clv.fit_gamma_gamma, **clv.PURCHASE_MODELS}[model]
    data = df[(df["frequency"] > 0) & (df["monetary_value"] > 0)] if model == "Gamma-Gamma" else df
    monkeypatch.setattr(clv, "ANALYTIC_MIN_N", 10**12)
    slow = fit(data)
    monkeypatch.setattr(clv, "ANALYTIC_MIN_N", 1)
    fast = fit(data)
    assert fast.converged and slow.converged
    se = slow.summary()["se"]
    for k, v in slow.params.items():  # the same optimum, to far within its standard error
        assert abs(fast.params[k] - v) < 1e-2 * se[k], k
    assert fast.loglik == pytest.approx(slow.loglik, rel=1e-10)
    assert fast.loglik >= slow.loglik - 1e-7  # a tighter optimum, never a worse one
    np.testing.assert_allclose(fast.summary()["se"], se, rtol=1e-3)


def test_gamma_gamma_with_q_at_most_one_is_refused():
    """nu ~ Gamma(q = 0.7, gamma): the mean spend p gamma / (q - 1) does not exist, so the fit is
    refused with a message that says why rather than used."""
    rng = np.random.default_rng(4)
    x = rng.integers(1, 8, 3000)
    nu = rng.gamma(0.7, 1 / 10.0, 3000)
    spend = rng.gamma(6.0 * x, 1 / (nu * x))  # the mean of x purchases: Gamma(p x, rate nu x)
    df = pd.DataFrame({"frequency": x, "monetary_value": spend})
    with pytest.raises(ValueError, match=r"q = 0\.\d+ <= 1 .*infinite"):
        clv.fit_gamma_gamma(df)


def test_gamma_gamma_independence_check_on_cdnow():
    """CDNOW repeat buyers: r = 0.11 (Fader, Hardie & Lee 2005), its 95 % Fisher-z interval."""
    m = clv.load_cdnow("monetary")
    check = clv.gamma_gamma_independence(m[m["frequency"] > 0])
    assert check["n"] == 946 and round(check["pearson_r"], 2) == 0.11
    z = math.atanh(check["pearson_r"])
    half = 1.959963984540054 / math.sqrt(946 - 3)
    assert check["ci_low"] == pytest.approx(math.tanh(z - half), rel=1e-9)
    assert check["ci_high"] == pytest.approx(math.tanh(z + half), rel=1e-9)
    assert check["verdict"] == "inconclusive"  # the interval straddles 0.1
    assert clv.gamma_gamma_independence(m[m["frequency"] > 0], threshold=0.2)["verdict"] == "weak"
    assert (
        clv.gamma_gamma_independence(m[m["frequency"] > 0], threshold=0.05)["verdict"]
        == "correlated"
    )
    with pytest.raises(ValueError, match="repeat customers"):
        clv.gamma_gamma_independence(m)


# ----------------------------------------------------------------------------- p_purchase_within


def _simulate_two_periods(n: int, T: float, tau: float, seed: int = 11) -> pd.DataFrame:
    """n customers drawn from the BG/NBD (0.9, 8, 0.8, 3.2), all acquired at 0 and observed to T
    (summary) and then for tau more (``bought``: at least one purchase in (T, T + tau])."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(0.9, 1 / 8.0, n)
    p = rng.beta(0.8, 3.2, n)
    x, tx, t = np.zeros(n), np.zeros(n), np.zeros(n)
    bought = np.zeros(n, dtype=bool)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        t = t + rng.exponential(1 / lam)
        buy = alive & (t < T)
        later = alive & (t >= T) & (t < T + tau)
        x[buy] += 1
        tx[buy] = t[buy]
        bought |= later
        alive &= buy & (rng.random(n) > p)  # drops out after a purchase, or stops at T
    df = pd.DataFrame({"frequency": x, "recency": tx, "T": T, "bought": bought})
    df.attrs["time_unit"] = "W"
    return df


# ----------------------------------------------------------------------------- model selection


def _nbd_summary(n: int, seed: int) -> pd.DataFrame:
    """n customers of the NBD (no dropout): lambda ~ Gamma(0.8, 10), Poisson purchases over
    T ~ U(10, 100) weeks; the last purchase is the largest of x uniform times."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(10, 100, n)
    x = rng.poisson(rng.gamma(0.8, 1 / 10, n) * T)
    tx = np.where(x > 0, T * rng.random(n) ** (1 / np.maximum(x, 1)), 0.0)
    df = pd.DataFrame({"frequency": x.astype(float), "recency": tx, "T": T})
    df.attrs["time_unit"] = "W"
    return df


def test_p_purchase_within_matches_simulation_by_frequency():
    """Known answer: customers simulated from the BG/NBD itself; the share who buy in the next
    tau weeks matches the mean predicted probability overall and per repeat count, one-time
    buyers included (within 4 binomial standard errors)."""
    sim = _simulate_two_periods(100_000, 52.0, 26.0)
    pred = clv.p_purchase_within(FIT, sim, 26.0)
    groups = np.minimum(sim["frequency"], 4)
    for _, idx in sim.groupby(groups).groups.items():
        share, mean = sim.loc[idx, "bought"].mean(), pred.loc[idx].mean()
        se = math.sqrt(mean * (1 - mean) / len(idx))
        assert abs(share - mean) < 4 * se + 1e-3, (share, mean, len(idx))
    assert pred.mean() == pytest.approx(sim["bought"].mean(), abs=0.005)


@pytest.mark.parametrize("model", ["BG/NBD", "MBG/NBD"])
def test_p_purchase_within_limits_and_likelihood_ratio(model):
    """tau -> infinity: P(alive) (an alive customer buys again eventually); tau = 0: 0; increasing
    in tau; and 1 - it equals L(x, t_x, T + tau) / L(x, t_x, T)."""
    fit = clv.ModelFit(model, dict(FIT.params), 0.0, 3, "W", FIT.cov_log, True)
    df = pd.DataFrame(
        {"frequency": [0, 2, 10], "recency": [0.0, 30.4, 20.0], "T": [60.0, 38.9, 50.0]}
    )
    alive = clv.p_alive(fit, df).to_numpy()
    np.testing.assert_allclose(clv.p_purchase_within(fit, df, 1e12).to_numpy(), alive, rtol=1e-9)
    np.testing.assert_allclose(clv.p_purchase_within(fit, df, 0.0).to_numpy(), 0.0)
    p = np.array([clv.p_purchase_within(fit, df, t).to_numpy() for t in (4.0, 13.0, 52.0)])
    assert np.all(np.diff(p, axis=0) > 0)
    ll = clv.mbgnbd_loglik if model == "MBG/NBD" else clv.bgnbd_loglik
    later = df.assign(T=df["T"] + 13.0)
    ratio = np.exp(ll(later, **FIT.params) - ll(df, **FIT.params))
    np.testing.assert_allclose(1 - p[1], ratio, rtol=1e-10)
    # one-time buyers: P(alive) = 1 under the BG/NBD, yet the chance to buy falls with T
    one = pd.DataFrame({"frequency": [0, 0], "recency": [0.0, 0.0], "T": [10.0, 150.0]})
    if model == "BG/NBD":
        assert clv.p_alive(fit, one).eq(1).all()
    pb = clv.p_purchase_within(fit, one, 52.0)
    assert pb.iloc[1] < pb.iloc[0] < 1


def test_simulate_holdout_band_covers_the_prediction_and_a_model_generated_holdout():
    """The simulated bucket means average to the closed-form prediction, and on customers drawn
    from the model the actual holdout lies inside the band."""
    sim = _simulate_two_periods(20_000, 52.0, 26.0, seed=3)
    cal = sim.drop(columns="bought")
    # holdout purchases of the same customers: rerun with the count instead of the indicator
    cal["holdout_duration"] = 26.0
    rng_sim = _simulate_counts(20_000, 52.0, 26.0, seed=3)
    cal["holdout_purchases"] = rng_sim
    table, total = clv.simulate_holdout(FIT, cal, n_sims=300, parameter_uncertainty=False)
    assert total["band_low"] < total["predicted"] < total["band_high"]
    assert total["inside"] and abs(total["z"]) < 3
    mid = (table["band_low"] + table["band_high"]) / 2
    np.testing.assert_allclose(mid, table["predicted"], rtol=0.15)


def _simulate_counts(n: int, T: float, tau: float, seed: int) -> np.ndarray:
    """Purchases in (T, T + tau] of the customers of :func:`_simulate_two_periods` (same seed)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(0.9, 1 / 8.0, n)
    p = rng.beta(0.8, 3.2, n)
    t = np.zeros(n)
    count = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        t = t + rng.exponential(1 / lam)
        buy = alive & (t < T)
        later = alive & (t >= T) & (t < T + tau)
        count[later] += 1
        alive &= (buy | later) & (rng.random(n) > p)
    return count


def test_mean_dropout_ratio_is_one_for_the_same_fit_and_brackets():
    fit = clv.fit_bgnbd(_simulated_summary(3000))
    out = clv.mean_dropout_ratio(fit, fit, n_draws=200)
    assert out["estimate"] == pytest.approx(1.0)
    assert out["ci_low"] < 1 < out["ci_high"]


def test_nbd_loglik_is_the_count_likelihood_plus_a_constant():
    """The timing likelihood of the NBD differs from the negative binomial count probability
    P(X = x) (scipy, p = alpha/(alpha+T)) by the parameter-free factor x!/T^x."""
    df = _nbd_summary(200, 1)
    r, alpha = 0.8, 10.0
    x, T = df["frequency"].to_numpy(), df["T"].to_numpy()
    count = stats.nbinom.logpmf(x, r, alpha / (alpha + T))
    want = count + special.gammaln(x + 1) - x * np.log(T)
    np.testing.assert_allclose(clv.nbd_loglik(df, r, alpha).to_numpy(), want, rtol=1e-10)


@pytest.mark.parametrize("model", ["BG/NBD", "Pareto/NBD"])
def test_nbd_is_the_no_dropout_limit(model):
    """The BG/NBD at b -> infinity and the Pareto/NBD at beta -> infinity are the NBD."""
    df = _nbd_summary(200, 2)
    nbd = clv.nbd_loglik(df, 0.8, 10.0).to_numpy()
    if model == "BG/NBD":
        limit = clv.bgnbd_loglik(df, 0.8, 10.0, 1.0, 1e9)
    else:
        limit = pareto_nbd.pareto_nbd_loglik(df, 0.8, 10.0, 1.0, 1e9).to_numpy()
    np.testing.assert_allclose(limit, nbd, rtol=1e-6)


def test_cdnow_model_selection():
    """CDNOW: the NBD fit r = 0.385, alpha = 12.07, LL = -9763.7 (held against scipy's negative
    binomial below: the timing-form likelihood differs from the counting form by
    sum(x log T - log x!), which no parameter enters); every dropout model beats it by far (LR about 360, p < 1e-70, on the
    boundary), BG/NBD and MBG/NBD are within 1 AIC point, the Pareto/NBD 25 behind."""
    cdnow = clv.load_cdnow()
    crit, tests = clv.model_selection(cdnow)
    nbd = clv.fit_nbd(cdnow)
    assert nbd.r == pytest.approx(0.385, abs=5e-4) and nbd.alpha == pytest.approx(12.07, abs=5e-3)
    assert crit.loc["NBD", "loglik"] == pytest.approx(-9763.7, abs=0.05)
    x, T = cdnow["frequency"], cdnow["T"]
    counting = stats.nbinom.logpmf(x, nbd.r, nbd.alpha / (nbd.alpha + T)).sum()
    constant = (x * np.log(T) - special.gammaln(x + 1)).sum()
    assert crit.loc["NBD", "loglik"] == pytest.approx(counting - constant, abs=1e-6)
    assert crit.loc["BG/NBD", "loglik"] == pytest.approx(-9582.4, abs=0.05)
    assert crit.loc["Pareto/NBD", "loglik"] == pytest.approx(-9595.0, abs=0.05)
    assert crit.loc["BG/NBD", "aic"] == pytest.approx(2 * 4 + 2 * 9582.43, abs=0.05)
    assert crit.loc["NBD", "bic"] == pytest.approx(2 * np.log(2357) + 2 * 9763.66, abs=0.05)
    assert set(crit.index[:2]) == {"BG/NBD", "MBG/NBD"} and crit.index[-1] == "NBD"
    assert abs(crit.loc["BG/NBD", "aic"] - crit.loc["MBG/NBD", "aic"]) < 1
    row = tests.set_index("full").loc["BG/NBD"]
    assert row["lr"] == pytest.approx(362.5, abs=0.1) and row["boundary"]
    assert row["p_value"] == pytest.approx(row["naive_p_value"] / 2) and row["p_value"] < 1e-70
    assert list(tests["full"]) == ["BG/NBD", "MBG/NBD", "Pareto/NBD"]


def test_lr_test_does_not_find_dropout_where_there_is_none():
    """Data from the NBD (no dropout): the BG/NBD adds nothing that the test can see (p > 0.05 at
    this seed; over 40 seeds of 1,000 customers 2.5 % fell below 0.05 and 38 % had LR = 0, the
    point mass of the chi-bar-square); data from the BG/NBD: a tiny p-value."""
    df = _nbd_summary(1000, 0)
    _, tests = clv.model_selection(df, {"NBD": clv.fit_nbd(df), "BG/NBD": clv.fit_bgnbd(df)})
    assert tests.loc[0, "p_value"] > 0.05
    df = _simulated_summary(2000)
    _, tests = clv.model_selection(df, {"NBD": clv.fit_nbd(df), "BG/NBD": clv.fit_bgnbd(df)})
    assert tests.loc[0, "p_value"] < 1e-6


# ----------------------------------------------------------------------------- new customers

CDNOW_BG = clv.ModelFit(
    "BG/NBD", {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, np.nan, 2357, "W",
    np.diag([0.01, 0.01, 0.02, 0.03]), True,
)  # fmt: skip
CDNOW_MBG = clv.ModelFit(
    "MBG/NBD", {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}, np.nan, 2357, "W",
    np.diag([0.01, 0.01, 0.02, 0.03]), True,
)  # fmt: skip
CDNOW_PNBD = clv.ModelFit(
    "Pareto/NBD", {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}, np.nan, 2357, "W",
    np.diag([0.01, 0.01, 0.02, 0.03]), True,
)  # fmt: skip


def _new_by_quadrature(fit: clv.ModelFit, t: float) -> float:
    """E[X(t)] of a new customer by one-dimensional quadrature of the individual-level answer,
    no 2F1: BG/NBD, given lambda and p the purchases stop at the first of the Poisson(lambda p)
    'last purchase' events, E[X | lambda, p] = (1 - e^(-lambda p t)) / p, and over lambda ~
    Gamma(r, alpha) (1 - (alpha/(alpha + p t))^r) / p, integrated over p ~ Beta(a, b); MBG/NBD
    the same times (1 - p) (gone right after the first purchase with probability p); Pareto/NBD
    E[X | lambda, mu] = lambda (1 - e^(-mu t)) / mu, integrated over mu ~ Gamma(s, beta)."""
    from scipy import integrate

    if fit.model == "Pareto/NBD":
        r, alpha, s, beta = fit.params.values()
        f = lambda mu: -np.expm1(-mu * t) / mu * stats.gamma.pdf(mu, s, scale=1 / beta)  # noqa: E731
        return r / alpha * integrate.quad(f, 0, np.inf, epsabs=0, epsrel=1e-11, limit=400)[0]
    r, alpha, a, b = fit.params.values()
    keep = (lambda p: 1 - p) if fit.model == "MBG/NBD" else (lambda p: 1.0)  # noqa: E731

    def f(p: float) -> float:
        return (
            keep(p) * -np.expm1(r * np.log(alpha / (alpha + p * t))) / p * stats.beta.pdf(p, a, b)
        )

    return integrate.quad(f, 0, 1, epsabs=0, epsrel=1e-11, limit=400)[0]


def _new_by_simulation(fit: clv.ModelFit, t: float, n: int, seed: int) -> np.ndarray:
    """X(t) of n simulated new customers. BG/NBD: all purchases of a Poisson(lambda) process up
    to the N-th, N ~ Geometric(p) on 1, 2, ... (the purchase after which the customer leaves),
    so X(t) = min(K(t), N), K(t) ~ Poisson(lambda t); MBG/NBD min(K(t), N - 1); Pareto/NBD
    Poisson(lambda min(t, tau)), tau ~ Exp(mu)."""
    rng = np.random.default_rng(seed)
    if fit.model == "Pareto/NBD":
        r, alpha, s, beta = fit.params.values()
        lam, mu = rng.gamma(r, 1 / alpha, n), rng.gamma(s, 1 / beta, n)
        return rng.poisson(lam * np.minimum(t, rng.exponential(1 / mu)))
    r, alpha, a, b = fit.params.values()
    lam, p = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    last = rng.geometric(p) - (1 if fit.model == "MBG/NBD" else 0)
    return np.minimum(rng.poisson(lam * t), last)


@pytest.mark.parametrize("fit", [CDNOW_BG, CDNOW_MBG, CDNOW_PNBD], ids=lambda f: f.model)
def test_new_customer_purchases_against_quadrature_and_simulation(fit):
    """E[X(t)] of a customer acquired today (BG/NBD: Fader, Hardie & Lee 2005 eq. 9) at the
    CDNOW estimates, t = 39 and 78 weeks: equal to the quadrature of the individual-level answer
    to 3 significant figures (in fact 1e-8), and to a simulation of 400,000 new customers within
    4 standard errors. BG/NBD at the published (rounded) estimates: 1.197 and 1.861."""
    got = clv.new_customer_purchases(fit, [39.0, 78.0])
    assert list(got.index) == [39.0, 78.0] and got.name == fit.model
    for t in (39.0, 78.0):
        assert got[t] == pytest.approx(_new_by_quadrature(fit, t), rel=1e-8)
        x = _new_by_simulation(fit, t, 400_000, seed=int(t))
        assert abs(got[t] - x.mean()) < 4 * x.std() / np.sqrt(len(x)), (t, got[t], x.mean())
    if fit.model == "BG/NBD":
        assert got.round(3).tolist() == [1.197, 1.861]


def test_new_customer_value_by_hand_and_its_interval():
    """The margin of a new customer at the estimates is (m E[Z] - c)(1 + sum_k dE[X(k)] / (1 +
    d_m)^k), E[Z] = p gamma / (q - 1); the bootstrap interval holds it, its Monte Carlo error is
    below 1/100 of its width, the same seed gives the same interval, and each draw's margin is
    the formula at that draw's parameters (the vectorized path against the one-fit functions)."""
    gg = clv.ModelFit("Gamma-Gamma", {"p": 6.25, "q": 3.74, "gamma": 15.44}, np.nan, 946, "-",
                      np.diag([0.01, 0.01, 0.02]), True)  # fmt: skip
    econ = economics.SAMPLE
    m, c = 0.4, 1.5
    for fit in (CDNOW_BG, CDNOW_MBG, CDNOW_PNBD):
        out = clv.new_customer_value(fit, gg, econ, margin_rate=m, cost_per_order=c, seed=3)
        months = np.arange(1, econ.horizon_months + 1)
        cum = clv.expected_purchases_new(fit, months * 365.25 / 12 / 7)
        spend = 6.25 * 15.44 / 2.74
        want = (m * spend - c) * (1 + np.diff(cum, prepend=0.0) @ econ.discount_factors())
        assert out["margin"] == pytest.approx(want, rel=1e-10)
        assert out["expected_purchases"] == pytest.approx(cum[-1], rel=1e-12)
        assert out["spend_per_order"] == pytest.approx(35.22, abs=0.01)
        assert out["margin_low"] < out["margin"] < out["margin_high"] and out["mc_ok"]
        assert out["mc_se"] < (out["margin_high"] - out["margin_low"]) / 100
        again = clv.new_customer_value(fit, gg, econ, margin_rate=m, cost_per_order=c, seed=3)
        assert again == out
    # the vectorized draws are the one-fit formula at each draw's parameters
    draws = clv.sample_params(CDNOW_BG, 5, seed=11)
    P = btyd.sample_log_params(CDNOW_BG, 5, seed=11)
    G = np.tile(list(gg.params.values()), (5, 1))
    t = np.arange(1, 37) * 365.25 / 12 / 7
    margin, _ = clv._new_margin("BG/NBD", P, G, t, econ.discount_factors(), m, c, True)
    for j, d in enumerate(draws):
        cum = clv.expected_purchases_new(d, t)
        want = (m * spend - c) * (1 + np.diff(cum, prepend=0.0) @ econ.discount_factors())
        assert margin[j] == pytest.approx(want, rel=1e-10)
    with pytest.raises(ValueError, match="Gamma-Gamma"):
        clv.new_customer_value(CDNOW_BG, CDNOW_BG)


# ----------------------------------------------------------------------------- DataFrames out


@pytest.mark.parametrize("fit", [FIT, CDNOW_MBG, CDNOW_PNBD], ids=lambda f: f.model)
def test_every_prediction_takes_and_returns_dataframes_indexed_like_the_input(fit):
    """DataFrames in, DataFrames out (issue 32, item 7): every per-customer prediction of clv
    (for each purchase model) returns a Series (one horizon) or a DataFrame (several, one column
    per horizon) indexed like the summary, whatever its index; the same numbers as before."""
    df = THREE.assign(monetary_value=[0.0, 20.0, 35.0]).set_axis(
        pd.Index(["c", "a", "b"], name="customer_id")
    )
    df.attrs["time_unit"] = "W"
    one = clv.expected_purchases(fit, df, 52.0)
    many = clv.expected_purchases(fit, df, [13.0, 52.0])
    assert isinstance(one, pd.Series) and one.index.equals(df.index)
    assert isinstance(many, pd.DataFrame) and many.index.equals(df.index)
    assert list(many.columns) == [13.0, 52.0] and many.columns.name == "horizon"
    np.testing.assert_allclose(many[52.0], one, rtol=1e-12)
    pa = clv.p_alive(fit, df)
    assert isinstance(pa, pd.Series) and pa.index.equals(df.index)
    pred = clv.predictive_clv(fit, GG, df)
    assert pred.index.equals(df.index)
    np.testing.assert_allclose(pred["p_alive"], pa)
    assert clv.new_customer_purchases(fit, [13.0, 52.0]).index.name == "horizon"
    if fit.model == "BG/NBD":
        for ll in (clv.bgnbd_loglik(df, *FIT.params.values()), clv.mbgnbd_loglik(df, 1, 2, 1, 2),
                   clv.nbd_loglik(df, 1.0, 2.0)):  # fmt: skip
            assert isinstance(ll, pd.Series) and ll.index.equals(df.index)
        rep = df[df["frequency"] > 0]
        gg = clv.gamma_gamma_loglik(rep, 6.0, 4.0, 15.0)
        assert isinstance(gg, pd.Series) and gg.index.equals(rep.index)
        assert clv.expected_spend(GG, df).index.equals(df.index)


# ----------------------------------------------------------------------------- covariates


def _company_with_a_covariate(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """n customers of the BG/NBD (r, alpha, a, b) = (0.9, 8, 0.8, 3.2) of whom 40 % (g = 1) buy
    1.5 times as fast (alpha / 1.5) and have a = 0.8 x 0.6 (less dropout), over 10-156 weeks."""
    rng = np.random.default_rng(seed)
    g = rng.random(n) < 0.4
    T = rng.uniform(10, 156, n)
    lam = rng.gamma(0.9, 1 / 8.0, n) * np.where(g, 1.5, 1.0)
    p = rng.beta(np.where(g, 0.8 * 0.6, 0.8), 3.2)
    x, tx, t, alive = np.zeros(n), np.zeros(n), np.zeros(n), np.ones(n, dtype=bool)
    for _ in range(400):
        t = t + rng.exponential(1 / lam)
        buy = alive & (t < T)
        if not buy.any():
            break
        x[buy] += 1
        tx[buy] = t[buy]
        alive &= buy & (rng.random(n) > p)
    df = pd.DataFrame({"frequency": x, "recency": tx, "T": T})
    df.attrs["time_unit"] = "W"
    return df, pd.DataFrame({"g": g.astype(float)}, index=df.index)


def test_bgnbd_covariates_without_covariates_is_the_bgnbd():
    df = _simulated_summary(3000, seed=8)
    plain, cov = clv.fit_bgnbd(df), clv.fit_bgnbd_covariates(df)
    assert cov.loglik == pytest.approx(plain.loglik, rel=1e-12)
    for k, v in plain.params.items():
        assert cov.params[k] == pytest.approx(v, rel=1e-6)


def test_bgnbd_covariates_recover_the_simulated_effects():
    """Recovery policy of this file: every true value inside its Wald interval at the
    family-wise 95 % level (Bonferroni over the 6 parameters), fixed seed; the mean dropout
    multiplier (0.8 x 0.6 / (0.48 + 3.2)) / (0.8 / 4) = 0.652 inside its bootstrap interval."""
    df, z = _company_with_a_covariate(8000, seed=1)
    fit = clv.fit_bgnbd_covariates(df, purchase=z, dropout=z)
    assert fit.converged and fit.model == "BG/NBD+covariates"
    table = fit.summary(level=1 - 0.05 / 6)
    truth = {"r": 0.9, "alpha": 8.0, "a": 0.8, "b": 3.2, "rate_multiplier[g]": 1.5,
             "a_multiplier[g]": 0.6}  # fmt: skip
    for name, value in truth.items():
        assert table.loc[name, "ci_low"] < value < table.loc[name, "ci_high"], name
    eff = clv.covariate_effects(fit).set_index("process")
    assert eff.loc["purchase", "multiplier"] == pytest.approx(fit.params["rate_multiplier[g]"])
    assert eff.loc["dropout", "ci_low"] < 0.652 < eff.loc["dropout", "ci_high"]
    with pytest.raises(ValueError, match="covariate"):
        clv.fit_bgnbd_covariates(df, purchase=z.iloc[:-5])


def test_bgnbd_covariates_find_the_sample_companys_planted_referral_dropout():
    """The bundled company: referral customers' dropout probability after a purchase is planted at
    0.7 times the others' (registry: referral_dropout_multiplier; no channel effect on the purchase
    rate). The BG/NBD with the acquisition channel (dummies, organic search the base) on both
    processes: the referral dropout multiplier's interval holds 0.7 and excludes 1 (estimate
    0.79), its purchase-rate multiplier's holds 1."""
    orders, customers = data.load_orders(), data.load_customers()
    rfm = segments.rfm_table(orders, "2025-12-31", "W")
    channel = customers.set_index("customer_id")["acquisition_channel"].reindex(rfm.index)
    z = pd.get_dummies(channel, dtype=float).drop(columns="organic_search")
    fit = clv.fit_bgnbd_covariates(rfm, purchase=z, dropout=z)
    eff = clv.covariate_effects(fit).set_index(["covariate", "process"])
    truth = data.load_ground_truth()["parameters"]["referral_dropout_multiplier"]
    drop = eff.loc[("referral", "dropout")]
    assert drop["ci_low"] < truth < drop["ci_high"] < 1
    buy = eff.loc[("referral", "purchase")]
    assert buy["ci_low"] < 1 < buy["ci_high"]


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 60), levels=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_predictions_with_covariates_are_put_in_place_as_concatenating_would(
    n: int, levels: int, seed: int
) -> None:
    """clv.predict_with_covariates writes each pattern's numeric piece into its place: the same
    frame (values to the bit, dtypes, index, names, attrs) as concatenating the pieces and putting
    them back in the summary's order, for a DataFrame, a Series, a text prediction
    (concatenated) and the report's CLV table."""
    rng = np.random.default_rng(seed)
    df = _simulated_summary(n, seed=seed % 97)
    df.index = pd.Index([f"c{i}" for i in rng.permutation(n)], name="customer_id")
    g = pd.DataFrame({"g": rng.integers(0, levels, n).astype(float)}, index=df.index)
    params = {"r": 0.8, "alpha": 6.0, "a": 0.7, "b": 2.5,
              "rate_multiplier[g]": 1.3, "a_multiplier[g]": 0.8}  # fmt: skip
    fit = btyd.ModelFit("BG/NBD+covariates", params, np.nan, n, "W", np.diag([0.01] * 6), True,
                        {"purchase_covariates": ["g"], "dropout_covariates": ["g"]})  # fmt: skip

    df.attrs["time_unit"] = "W"

    def table(f: btyd.ModelFit, s: pd.DataFrame) -> pd.DataFrame:
        assert s.attrs == df.attrs  # each pattern's customers keep the summary's attrs
        return pd.DataFrame({"p": clv.p_alive(f, s).to_numpy(), "n": s["frequency"].to_numpy(),
                             "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(s["T"], "D")},
                            index=s.index)  # fmt: skip

    def reference(predict):  # the pieces concatenated, then back in the summary's order
        fits = clv.covariate_pattern_fits(fit, df, g, g)
        order = np.concatenate([rows for rows, _ in fits])
        back = np.empty(n, dtype=np.int64)
        back[order] = np.arange(n)
        return pd.concat([predict(f, df.iloc[rows]) for rows, f in fits]).iloc[back]

    def alive(f, s):
        return clv.p_alive(f, s).rename("alive")

    def text(f, s):
        return pd.Series(f"a={f.a:.4f}", index=s.index, name="label")

    def value(f, s):  # the report's CLV table and its 12-month purchase probability
        out = clv.predictive_clv(f, GG, s, economics.SAMPLE, margin_rate=0.3, cost_per_order=1.0)
        out["p_purchase_12m"] = clv.p_purchase_within(f, s, 52.0).to_numpy()
        return out

    for predict, same in ((table, pd.testing.assert_frame_equal),
                          (alive, pd.testing.assert_series_equal),
                          (text, pd.testing.assert_series_equal),
                          (value, pd.testing.assert_frame_equal)):  # fmt: skip
        got = clv.predict_with_covariates(predict, fit, df, g, g)
        same(got, reference(predict), check_exact=True)
        assert got.index.equals(df.index) and got.attrs == reference(predict).attrs
        # only the columns the predictions read, taken one by one: the same result
        cols = ["frequency", "recency", "T", "monetary_value"]
        same(clv.predict_with_covariates(predict, fit, df, g, g, cols), reference(predict),
             check_exact=True)  # fmt: skip


def test_predictions_with_covariates_are_the_bgnbd_at_each_customers_alpha_and_a():
    """clv.predict_with_covariates (issue 32): a customer with covariates z, w gets the BG/NBD's
    predictions at alpha exp(-gamma z) and a exp(delta w) (Fader & Hardie 2007); zero coefficients
    give the plain BG/NBD's; the pieces come back in the summary's order."""
    df = _simulated_summary(400, seed=3)
    g = pd.DataFrame({"g": (np.arange(len(df)) % 3 == 0).astype(float)}, index=df.index)
    base = {"r": 0.8, "alpha": 6.0, "a": 0.7, "b": 2.5}
    cov = np.diag([0.01] * 6)

    def fit_with(m_rate: float, m_a: float) -> btyd.ModelFit:
        params = {**base, "rate_multiplier[g]": m_rate, "a_multiplier[g]": m_a}
        return btyd.ModelFit("BG/NBD+covariates", params, np.nan, len(df), "W", cov, True,
                        {"purchase_covariates": ["g"], "dropout_covariates": ["g"]})  # fmt: skip

    plain = btyd.ModelFit("BG/NBD", base, np.nan, len(df), "W", cov[:4, :4], True)
    got = clv.predict_with_covariates(lambda f, s: clv.p_alive(f, s), fit_with(1.0, 1.0), df, g, g)
    pd.testing.assert_series_equal(got, clv.p_alive(plain, df))
    fit = fit_with(2.0, 0.5)
    e = clv.predict_with_covariates(lambda f, s: clv.expected_purchases(f, s, 52.0), fit, df, g, g)
    inn = g["g"].to_numpy() == 1
    moved = btyd.ModelFit(
        "BG/NBD", {**base, "alpha": 3.0, "a": 0.35}, np.nan, 1, "W", cov[:4, :4], True
    )
    want = np.where(
        inn, clv.expected_purchases(moved, df, 52.0), clv.expected_purchases(plain, df, 52.0)
    )
    np.testing.assert_allclose(e.to_numpy(), want, rtol=1e-12)
    assert list(e.index) == list(df.index)
    # the holdout score of given predictions is the score of the model that made them
    cal = df.assign(holdout_purchases=np.round(want), holdout_duration=52.0)
    _, by_model = clv.evaluate_holdout(plain, cal)
    _, scored = clv.evaluate_holdout(None, cal, predicted=clv.expected_purchases(plain, cal, 52.0))
    assert scored == by_model


# ------------------------------------------- the covariate BG/NBD in one pass (issue 28/31 speed)


def _per_pattern_nll_and_grad(x, tx, T, Z, W, w=None):
    """The reference: the covariate BG/NBD's negative log-likelihood and gradient as the sum over
    the distinct covariate patterns of the plain BG/NBD's (clv._BGNBDData.nll_and_grad at that
    pattern's alpha exp(-gamma' z), a exp(delta' w)), chained through the log-links by hand."""
    kz = Z.shape[1]
    w = np.ones(len(x)) if w is None else w
    pattern, inv = np.unique(np.hstack([Z, W]), axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    groups = [
        (pattern[g, :kz], pattern[g, kz:], clv._BGNBDData(x[rows], tx[rows], T[rows], w[rows]))
        for g in range(len(pattern))
        for rows in [np.flatnonzero(inv == g)]
    ]

    def nll_grad(theta):
        base, gam, dlt = theta[:4], theta[4 : 4 + kz], theta[4 + kz :]
        total, grad = 0.0, np.zeros_like(theta)
        for z, wv, part in groups:
            f, g = part.nll_and_grad(base + np.array([0.0, -(gam @ z), dlt @ wv, 0.0]), False)
            total += f
            grad[:4] += g
            grad[4 : 4 + kz] -= g[1] * z
            grad[4 + kz :] += g[2] * wv
        return total, grad

    return nll_grad


def _two_attribute_company(n: int = 1500, seed: int = 11):
    """A summary of BG/NBD customers and two categorical attributes as dummies: a 3-level one on
    the purchase rate, a 3-level one and a 0/1 one on the dropout (Z and W differ)."""
    df = _simulated_summary(n, seed=seed)
    rng = np.random.default_rng(seed)
    c1, c2, c3 = rng.integers(0, 3, n), rng.integers(0, 3, n), rng.integers(0, 2, n)
    Z = np.column_stack([c1 == 1, c1 == 2]).astype(float)
    W = np.column_stack([c2 == 1, c2 == 2, c3 == 1]).astype(float)
    return df, Z, W


def test_the_covariate_likelihood_in_one_pass_equals_the_per_pattern_sum():
    """clv._BGNBDCovData (one pass over the customers, array alpha_i and a_i) against the sum of
    the plain BG/NBD's likelihood and gradient over the covariate patterns (what
    fit_bgnbd_covariates computed before): equal to 1e-10 relative at random parameters, with
    counts of customers per row too; each row's log-likelihood is the plain BG/NBD's at that
    customer's alpha_i, a_i; and the analytic gradient equals central finite differences."""
    df, Z, W = _two_attribute_company()
    x, tx, T = (df[c].to_numpy() for c in ("frequency", "recency", "T"))
    w = np.random.default_rng(0).integers(1, 4, len(x)).astype(float)
    rng = np.random.default_rng(1)
    for weights in (None, w):
        one_pass = clv._BGNBDCovData(x, tx, T, Z, W, weights)
        reference = _per_pattern_nll_and_grad(x, tx, T, Z, W, weights)
        for _ in range(4):
            theta = np.concatenate(
                [np.log([0.9, 8.0, 0.8, 3.2]) + rng.normal(0, 0.5, 4), rng.normal(0, 0.4, 5)]
            )
            f, g = one_pass.nll_and_grad(theta)
            f0, g0 = reference(theta)
            assert f == pytest.approx(f0, rel=1e-10)
            np.testing.assert_allclose(g, g0, rtol=1e-10, atol=1e-10 * np.abs(g0).max())
            ll = one_pass.loglik(theta)
            assert float((np.ones(len(x)) if weights is None else weights) @ ll) == pytest.approx(
                -f, rel=1e-12
            )
    # row by row: the plain BG/NBD at alpha_i, a_i (FHL 2005 eq. 6, the paper's literal formula)
    r, alpha, a, b = np.exp(theta[:4])
    alpha_i = alpha * np.exp(-(Z @ theta[4:6]))
    a_i = a * np.exp(W @ theta[6:])
    for i in range(0, len(x), 97):
        direct = _bgnbd_direct(int(x[i]), tx[i], T[i], r, alpha_i[i], a_i[i], b)
        assert ll[i] == pytest.approx(direct, rel=1e-10)
    # the analytic gradient against central differences of the likelihood
    nll = lambda th: one_pass.nll_and_grad(th)[0]  # noqa: E731
    from scipy.optimize import approx_fprime

    numeric = approx_fprime(theta, nll, 1e-6)  # forward: checked loosely, then central
    central = np.array(
        [(nll(theta + e) - nll(theta - e)) / 2e-5 for e in np.eye(len(theta)) * 1e-5]
    )
    np.testing.assert_allclose(g, central, rtol=1e-6, atol=1e-6 * np.abs(g).max())
    np.testing.assert_allclose(g, numeric, rtol=1e-3, atol=1e-3 * np.abs(g).max())


@settings(max_examples=25, deadline=None)
@given(
    log_params=st.lists(st.floats(-2.5, 2.5), min_size=4, max_size=4),
    coefs=st.lists(st.floats(-1.0, 1.0), min_size=5, max_size=5),
    weighted=st.booleans(),
)
def test_the_bgnbd_hessian_is_the_derivative_of_its_gradient(log_params, coefs, weighted):
    """The analytic Hessians (clv._bgnbd_hessian_rows: the BG/NBD's and MBG/NBD's, and the
    covariate model's chained through its links) equal the central differences of the analytic
    gradient (btyd.hess_from_grad, what the fits used before) to 1e-6 of the largest entry, at
    any parameters in e^(+-2.5) and coefficients in (-1, 1), with and without counts per row."""
    df, Z, W = _two_attribute_company(600)
    x, tx, T = (df[c].to_numpy() for c in ("frequency", "recency", "T"))
    w = np.random.default_rng(0).integers(1, 4, len(x)).astype(float) if weighted else None
    theta = np.array(log_params)
    plain = clv._BGNBDData(x, tx, T, w)
    for mbg in (False, True):
        got = plain.nll_hess(theta, mbg)
        want = btyd.hess_from_grad(lambda th, mbg=mbg: plain.nll_and_grad(th, mbg), theta)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * np.abs(want).max())
    cov = clv._BGNBDCovData(x, tx, T, Z, W, w)
    full = np.concatenate([theta, coefs])
    want = btyd.hess_from_grad(cov.nll_and_grad, full)
    np.testing.assert_allclose(cov.nll_hess(full), want, rtol=0, atol=1e-6 * np.abs(want).max())


@settings(max_examples=25, deadline=None)
@given(
    log_params=st.lists(st.floats(-2.5, 2.5), min_size=4, max_size=4),
    coefs=st.lists(st.floats(-1.0, 1.0), min_size=5, max_size=5),
    block=st.integers(1, 700),
    weighted=st.booleans(),
)
def test_the_likelihood_summed_block_by_block_is_the_sum_over_customers(
    log_params, coefs, block, weighted
):
    """The likelihoods summed btyd.BLOCK_ROWS rows at a time (any block size; issue 31's memory):
    _BGNBDData.nll_and_grad and _BGNBDCovData.nll_and_grad give the negative sum of the
    per-customer log-likelihoods (bgnbd_loglik, mbgnbd_loglik, the covariate model's loglik;
    FHL 2005 eq. 6), _GGData.nll_and_grad that of gamma_gamma_loglik, each counted w times, to
    1e-12 relative, and the same gradient as one block of all the rows to 1e-9 of its largest
    entry."""
    df, Z, W = _two_attribute_company(600)
    x, tx, T = (df[c].to_numpy() for c in ("frequency", "recency", "T"))
    w = (
        np.random.default_rng(2).integers(1, 4, len(x)).astype(float)
        if weighted
        else np.ones(len(x))
    )
    theta = np.array(log_params)
    data = clv._BGNBDData(x, tx, T, w)
    for mbg, loglik in ((False, clv.bgnbd_loglik), (True, clv.mbgnbd_loglik)):
        with patch.object(btyd, "BLOCK_ROWS", block):
            nll, grad = data.nll_and_grad(theta, mbg)
        with patch.object(btyd, "BLOCK_ROWS", len(x)):
            _, whole = data.nll_and_grad(theta, mbg)
        want = -float(w @ loglik(df, *np.exp(theta)).to_numpy())
        assert nll == pytest.approx(want, rel=1e-12)
        np.testing.assert_allclose(grad, whole, rtol=0, atol=1e-9 * np.abs(whole).max())
    cov = clv._BGNBDCovData(x, tx, T, Z, W, w)  # its sums per pattern and pair, block by block
    full = np.concatenate([theta, coefs])
    with patch.object(btyd, "BLOCK_ROWS", block):
        nll, grad = cov.nll_and_grad(full)
    with patch.object(btyd, "BLOCK_ROWS", len(x)):
        _, whole = cov.nll_and_grad(full)
    assert nll == pytest.approx(-float(w @ cov.loglik(full)), rel=1e-12)
    np.testing.assert_allclose(grad, whole, rtol=0, atol=1e-9 * np.abs(whole).max())
    rep = x > 0  # the Gamma-Gamma on the repeat buyers, spend drawn per row
    spend = pd.DataFrame({"frequency": x[rep], "monetary_value": np.exp(
        np.random.default_rng(3).normal(3.0, 0.5, int(rep.sum())))})  # fmt: skip
    gg, gg_theta = clv._GGData(x[rep], spend["monetary_value"].to_numpy(), w[rep]), theta[:3]
    with patch.object(btyd, "BLOCK_ROWS", block):
        nll, grad = gg.nll_and_grad(gg_theta)
    with patch.object(btyd, "BLOCK_ROWS", len(x)):
        _, whole = gg.nll_and_grad(gg_theta)
    want = -float(w[rep] @ clv.gamma_gamma_loglik(spend, *np.exp(gg_theta)).to_numpy())
    assert nll == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(grad, whole, rtol=0, atol=1e-9 * np.abs(whole).max())


@settings(max_examples=25, deadline=None)
@given(
    log_params=st.lists(st.floats(-2.5, 2.5), min_size=4, max_size=4),
    coefs=st.lists(st.floats(-1.0, 1.0), min_size=5, max_size=5),
    block=st.integers(1, 700),
    s=st.sampled_from([0, 1]),
)
def test_the_hessian_summed_block_by_block_is_the_rows_sum(log_params, coefs, block, s):
    """clv._bgnbd_hessian_sums (the rows BLOCK_ROWS at a time, issue 31's memory) equals
    clv._bgnbd_hessian_rows summed over all rows at once, and per covariate pattern, to 1e-12
    of the largest entry: any block size, from one row to more than the rows."""
    df, Z, W = _two_attribute_company(600)
    x, tx, T = (df[c].to_numpy() for c in ("frequency", "recency", "T"))
    w = np.random.default_rng(1).integers(1, 4, len(x)).astype(float)
    cov = clv._BGNBDCovData(x, tx, T, Z, W, w)
    theta = np.concatenate([log_params, coefs])
    r, b, la_pat, a_pair = cov._links(theta)
    args = (a_pair, cov.pair_x, cov.pinv, cov.x, cov.tx, cov.T, cov.w, s)
    rows = clv._bgnbd_hessian_rows(r, b, la_pat[cov.zinv], *args)
    n_pat = len(cov.zpat)
    with patch.object(btyd, "BLOCK_ROWS", block):
        per = clv._bgnbd_hessian_sums(r, b, (la_pat, cov.zinv), *args, by=cov.zinv, n_by=n_pat)
        total = clv._bgnbd_hessian_sums(r, b, float(la_pat[0]), *args)
    whole = clv._bgnbd_hessian_rows(r, b, float(la_pat[0]), *args)
    for k, v in rows.items():
        want = np.bincount(cov.zinv, weights=v, minlength=n_pat)
        np.testing.assert_allclose(per[k], want, rtol=0, atol=1e-12 * max(np.abs(want).max(), 1))
        assert total[k].shape == (1,)
        assert total[k][0] == pytest.approx(whole[k].sum(), rel=1e-12, abs=1e-12), k


def test_the_covariate_fit_equals_the_fit_on_the_per_pattern_likelihood():
    """fit_bgnbd_covariates (one pass) finds the optimum the per-pattern likelihood gives with the
    same optimizer and start (btyd.fit_log_params): parameters to 1e-6 relative, the
    log-likelihood to 1e-9, the covariance of the log-parameters to 1e-4."""
    df, Z, W = _two_attribute_company()
    z = pd.DataFrame(Z, index=df.index, columns=["p1", "p2"])
    wd = pd.DataFrame(W, index=df.index, columns=["d1", "d2", "d3"])
    fit = clv.fit_bgnbd_covariates(df, purchase=z, dropout=wd)
    x, tx, T = (df[c].to_numpy() for c in ("frequency", "recency", "T"))
    nll_grad = _per_pattern_nll_and_grad(x, tx, T, Z, W)
    rate = max(x.mean(), 0.05) / T.mean()
    x0 = np.concatenate([np.log([1.0, 1.0 / rate, 1.0, 1.0]), np.zeros(5)])
    ref = btyd.fit_log_params(
        lambda th: nll_grad(th)[0], x0, list(fit.params), fit.model, len(x), "W", nll_grad
    )
    assert fit.converged and ref.converged
    for k, v in ref.params.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-6), k
    assert fit.loglik == pytest.approx(ref.loglik, rel=1e-9)
    np.testing.assert_allclose(fit.cov_log, ref.cov_log, rtol=1e-4, atol=1e-8)


# ------------------------------- the covariate BG/NBD at scale (issue 31: 842,000 customers)


def test_the_covariate_patterns_by_hashing_are_np_uniques_rows():
    """clv._covariate_patterns (hash each column, combine the codes) gives the distinct rows of
    [Z W] in np.unique(axis=0)'s lexicographic order and the same inverse; no covariates: one
    empty pattern."""
    _, Z, W = _two_attribute_company(600, seed=2)
    W = W - 0.5 * W[:, :1]  # not only 0/1: any numbers
    pattern, inv = clv._covariate_patterns(Z, W)
    want, want_inv = np.unique(np.hstack([Z, W]), axis=0, return_inverse=True)
    np.testing.assert_array_equal(pattern, want)
    np.testing.assert_array_equal(inv, want_inv.reshape(-1))
    none, zero = clv._covariate_patterns(np.zeros((5, 0)), np.zeros((5, 0)))
    assert none.shape == (1, 0) and zero.tolist() == [0] * 5
    # the same matrix on both processes (one object, not a copy): the same patterns
    same, same_inv = clv._covariate_patterns(Z, Z)
    want, want_inv = np.unique(np.hstack([Z, Z]), axis=0, return_inverse=True)
    np.testing.assert_array_equal(same, want)
    np.testing.assert_array_equal(same_inv, want_inv.reshape(-1))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 400), seed=st.integers(0, 2**16), stride=st.integers(1, 50),
       same=st.booleans())  # fmt: skip
def test_the_covariates_as_pattern_rows_give_the_matrices_likelihood_bit_for_bit(
    n, seed, stride, same
):
    """clv._BGNBDCovData on the rows' patterns (clv._PatternRows: the fit's distinct rows of
    [Z W] and each row's index, no rows x k matrix) holds the same arrays, bit for bit, as on the
    matrices [Z W] gathered from them, on all the rows and on a stride of them (the coarse
    stage's, where some patterns are absent), so its likelihood and gradient are the same
    floats; one matrix for both processes too."""
    df, Z, W = _two_attribute_company(max(n, 2), seed=seed)
    df, Z, W = df.iloc[:n], Z[:n], W[:n]
    W = Z if same else W - 0.5 * W[:, :1]  # not only 0/1
    x, tx, T = (df[c].to_numpy() for c in ("frequency", "recency", "T"))
    w = np.random.default_rng(seed).integers(1, 4, n).astype(float)
    pattern, code = clv._covariate_patterns(Z, W)
    kz = Z.shape[1]
    rows = clv._PatternRows(pattern, code, kz)
    theta = np.concatenate([[0.1, 1.5, -0.3, 0.4], np.linspace(-0.5, 0.5, pattern.shape[1])])
    for sub in (slice(None), np.arange(0, n, stride)):
        gathered = (pattern[code[sub], :kz], pattern[code[sub], kz:])
        want = clv._BGNBDCovData(x[sub], tx[sub], T[sub], *gathered, w[sub])
        got = clv._BGNBDCovData(x[sub], tx[sub], T[sub], rows[sub], rows[sub], w[sub])
        assert vars(got).keys() == vars(want).keys()
        for name, value in vars(want).items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(vars(got)[name], value, err_msg=name)
                assert vars(got)[name].dtype == value.dtype, name
            else:
                assert vars(got)[name] == value, name
        f_want, g_want = want.nll_and_grad(theta)
        f_got, g_got = got.nll_and_grad(theta)
        assert f_got == f_want and np.array_equal(g_got, g_want)


def test_one_covariate_frame_for_both_processes_fits_and_predicts_as_two_copies():
    """The report passes one design for both processes: the fit and the predictions hold one
    matrix (no second copy of customers x covariates), bit for bit those of two equal copies."""
    summary, Z, _ = _two_attribute_company(600, seed=3)
    X = pd.DataFrame(Z, index=summary.index, columns=[f"z{i}" for i in range(Z.shape[1])])
    one = clv.fit_bgnbd_covariates(summary, X, X)
    two = clv.fit_bgnbd_covariates(summary, X, X.copy())
    assert one.params == two.params and one.loglik == two.loglik
    np.testing.assert_array_equal(one.cov_log, two.cov_log)

    def p(f, s):
        return clv.expected_purchases(f, s, 10.0)

    a = clv.predict_with_covariates(p, one, summary, X, X)
    pd.testing.assert_series_equal(a, clv.predict_with_covariates(p, one, summary, X, X.copy()))


def test_the_covariate_fit_from_the_plain_bgnbd_equals_the_fit_from_the_default_start():
    """fit_bgnbd_covariates started from the plain BG/NBD's optimum (the report's restricted
    model, coefficients 0) ends where the default start ends: parameters to 1e-9 relative and
    the log-likelihood to 1e-12 (the Newton step after L-BFGS-B, clv._newton_step); without
    that step the two optima differ by about 1e-7."""
    df, Z, W = _two_attribute_company()
    z = pd.DataFrame(Z, index=df.index, columns=["p1", "p2"])
    wd = pd.DataFrame(W, index=df.index, columns=["d1", "d2", "d3"])
    default = clv.fit_bgnbd_covariates(df, purchase=z, dropout=wd)
    started = clv.fit_bgnbd_covariates(df, purchase=z, dropout=wd, start=clv.fit_bgnbd(df))
    assert default.converged and started.converged
    for k, v in default.params.items():
        assert started.params[k] == pytest.approx(v, rel=1e-9), k
    assert started.loglik == pytest.approx(default.loglik, rel=1e-12)
    np.testing.assert_allclose(started.cov_log, default.cov_log, rtol=1e-4, atol=1e-8)


def test_the_covariate_fit_on_distinct_rows_with_counts_equals_the_fit_per_customer(monkeypatch):
    """Customers with the same (x, t_x, T, covariate pattern) are one row of the fit, weighted
    by their count (coarse times repeat): the same fit as one row per customer
    (btyd.MAX_DISTINCT_SHARE 0: no grouping) to 1e-8; the rows fitted are fewer. The test is
    not blind to the counts: fitting the distinct rows with counts 1 moves the fit."""
    df, Z, W = _two_attribute_company(3000, seed=5)
    # last purchases in whole weeks, customers observed for whole years: rows repeat
    df = df.assign(recency=np.floor(df["recency"]), T=np.ceil(df["T"] / 52) * 52)
    z = pd.DataFrame(Z, index=df.index, columns=["p1", "p2"])
    wd = pd.DataFrame(W, index=df.index, columns=["d1", "d2", "d3"])
    grouped = clv.fit_bgnbd_covariates(df, purchase=z, dropout=wd)
    assert grouped.extra["rows_fitted"] < 0.8 * len(df)  # 2,311 rows for 3,000 customers
    with monkeypatch.context() as m:
        m.setattr(btyd, "MAX_DISTINCT_SHARE", 0.0)
        each = clv.fit_bgnbd_covariates(df, purchase=z, dropout=wd)
    assert each.extra["rows_fitted"] == len(df)
    for k, v in each.params.items():
        assert grouped.params[k] == pytest.approx(v, rel=1e-8), k
    assert grouped.loglik == pytest.approx(each.loglik, rel=1e-10)
    real = btyd.fit_rows

    def counts_dropped(*cols, weights=None):
        rows, w, k = real(*cols, weights=weights)
        return rows, np.ones_like(w), k

    with monkeypatch.context() as m:
        m.setattr(btyd, "fit_rows", counts_dropped)
        broken = clv.fit_bgnbd_covariates(df, purchase=z, dropout=wd)
    assert broken.loglik != pytest.approx(each.loglik, rel=1e-3)


@given(st.integers(1, 5_000), st.sampled_from(["BG/NBD", "MBG/NBD"]), st.integers(0, 2**16))
@settings(max_examples=25, deadline=None)
def test_horizon_sums_in_blocks_are_the_same_floats(block, model, seed):
    """_CumTables.horizon_sums evaluates its customers a block at a time (_SUMS_BLOCK): any
    block size gives the same floats, bit for bit, as all customers at once."""
    rng = np.random.default_rng(seed)
    n = 20_000
    x = np.minimum(rng.geometric(0.35, n) - 1, 40).astype(float)
    T = rng.uniform(0.1, 160, n)
    tx = T * rng.uniform(0, 1, n) * (x > 0)
    fit = clv.ModelFit(model, {"r": 0.9, "alpha": 8.0, "a": 0.8, "b": 3.2}, 0.0, n, "W",
                       np.eye(4), True)  # fmt: skip
    t = np.arange(1, 37) * (365.25 / 12) / 7
    tables = clv._CumTables(fit, x, T, t, economics.Economics(horizon_months=36).discount_factors())
    assert tables.qtab.any()
    with patch.object(clv, "_SUMS_BLOCK", n):
        total, disc, rest = tables.horizon_sums(x, tx, T)
    with patch.object(clv, "_SUMS_BLOCK", block):
        got = tables.horizon_sums(x, tx, T)
    np.testing.assert_array_equal(got[2], rest)  # the others: computed horizon by horizon
    done = np.ones(n, dtype=bool)
    done[rest] = False  # their entries are left unset
    np.testing.assert_array_equal(got[0][done], total[done])
    np.testing.assert_array_equal(got[1][done], disc[done])


@given(
    st.lists(
        st.one_of(
            st.integers(0, 40).map(float),
            st.floats(-5, 50, allow_nan=False),
            st.sampled_from([2.0**31, 2.0**31 - 1, -0.0, 0.5]),
        ),
        max_size=60,
    )
)
@settings(max_examples=300, deadline=None)
def test_distinct_counts_are_numpys_unique(values):
    """clv._distinct_counts (the repeat counts' distinct values by bincount, int32 positions)
    gives np.unique's values, inverse and counts, for whole numbers and any other floats; a
    whole number far above the customers' number (2^31 - 1) goes through np.unique, not a
    bincount table that long."""
    x = np.array(values, dtype=float)
    ux, inv, rows = clv._distinct_counts(x)
    want = np.unique(x, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(ux, want[0])
    np.testing.assert_array_equal(inv, want[1].reshape(-1))
    np.testing.assert_array_equal(rows, want[2])
    if len(x) and (x >= 0).all() and (x <= 1024).all() and (x == np.floor(x)).all():
        assert inv.dtype == np.int32  # the bincount path (values up to the size or 1024)
