"""Tests of helpers.clv: BG/NBD and Gamma-Gamma likelihoods against the papers' closed forms,
parameter recovery on the generator's data (planted_effects=False follows BG/NBD exactly),
P(alive), predictions, calibration/holdout and CLV."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import beta as B

from helpers import clv, segments
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
    tab = fit.summary(0.95)
    truth = {"r": 0.9, "alpha": 8.0, "a": 0.8, "b": 3.2}
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
    tab = fit.summary(0.95)
    for name, value in {"p": 6.0, "q": 4.0, "gamma": 15.0}.items():
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
    np.testing.assert_allclose(clv.expected_purchases(FIT, fresh, t)[0], new, rtol=1e-6)
    cond = clv.expected_purchases(FIT, THREE, t)
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


def test_predictive_clv_discounting():
    df = THREE.assign(monetary_value=[0.0, 20.0, 35.0])
    df.attrs["time_unit"] = "W"
    flat = clv.predictive_clv(FIT, GG, df, horizon_months=12, monthly_discount_rate=0.0, margin=0.3)
    month = (365.25 / 12) / 7
    expected = 0.3 * clv.expected_spend(GG, df) * clv.expected_purchases(FIT, df, 12 * month)
    np.testing.assert_allclose(flat["clv"], expected, rtol=1e-9)
    disc = clv.predictive_clv(
        FIT, GG, df, horizon_months=12, monthly_discount_rate=0.02, margin=0.3
    )
    assert np.all(disc["clv"] < flat["clv"]) and np.all(disc["clv"] > 0.7 * flat["clv"])
    assert disc["p_alive"].iloc[0] == 1.0


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


def test_historical_clv_matches_margin_formula():
    orders = pd.DataFrame({"customer_id": [1, 1, 2], "order_date": pd.to_datetime(["2025-01-01", "2025-06-01", "2025-03-01"]),
                           "amount": [100.0, 50.0, 80.0], "discount": [0.0, 10.0, 20.0], "returned": [False, False, True]})  # fmt: skip
    h = clv.historical_clv(orders, 0.45, "2025-12-31")
    assert h.loc[1, "historical_clv"] == pytest.approx(100 - 55 + 50 - 0.55 * 60)
    assert h.loc[2, "historical_clv"] == 0.0
    assert clv.net_margin_rate(orders, 0.45) == pytest.approx((230 - 0.55 * 260) / 230)
