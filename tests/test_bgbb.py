"""Tests of helpers.bgbb: the published donations estimates (Fader, Hardie & Shang 2010), the
likelihood and predictions against exact Gauss-Jacobi integration of the individual-level model
over the Beta mixing distributions (the integrands are polynomials in p and theta, so the
quadrature is exact), the likelihood as a distribution over the (x, t_x) patterns, weights, and
the DataFrame-in, DataFrame-out API."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import special

from helpers import bgbb, clv

PARAMS = [(1.204, 0.750, 0.657, 2.783), (0.6, 2.5, 1.7, 4.0), (3.0, 1.2, 1.0, 0.8)]


def _fit_at(alpha: float, beta: float, gamma: float, delta: float) -> clv.ModelFit:
    params = {"alpha": alpha, "beta": beta, "gamma": gamma, "delta": delta}
    return clv.ModelFit("BG/BB", params, np.nan, 0, "opportunity", np.zeros((4, 4)), True)


def _beta_nodes(a: float, b: float, k: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Jacobi nodes and weights for the Beta(a, b) distribution: exact for polynomials of
    degree < 2k."""
    u, w = special.roots_jacobi(k, b - 1, a - 1)
    return (1 + u) / 2, w / w.sum()


def _individual(p, th, x: int, tx: int, n: int) -> np.ndarray:
    """Likelihood of one customer with known p and theta: alive through n,
    p^x (1-p)^(n-x) (1-theta)^n, or gone at the start of opportunity t_x+i+1,
    p^x (1-p)^(t_x-x+i) theta (1-theta)^(t_x+i), i = 0..n-t_x-1."""
    out = p**x * (1 - p) ** (n - x) * (1 - th) ** n
    for i in range(n - tx):
        out = out + p**x * (1 - p) ** (tx - x + i) * th * (1 - th) ** (tx + i)
    return out


def _grid(params):
    alpha, beta, gamma, delta = params
    p, wp = _beta_nodes(alpha, beta)
    th, wt = _beta_nodes(gamma, delta)
    return p[:, None], th[None, :], wp[:, None] * wt[None, :]


PATTERNS = pd.DataFrame(
    {
        "frequency": [0, 1, 3, 6, 2, 4],
        "recency": [0, 1, 5, 6, 7, 9],
        "periods": [6, 6, 6, 6, 10, 12],
    },
    index=pd.Index(list("abcdef"), name="donor"),
)


@pytest.mark.parametrize("params", PARAMS)
def test_loglik_equals_exact_integration_over_p_and_theta(params):
    p, th, w = _grid(params)
    want = [math.log(float((w * _individual(p, th, *row)).sum())) for row in PATTERNS.to_numpy()]
    got = bgbb.bgbb_loglik(PATTERNS, *params)
    assert got.index.equals(PATTERNS.index)
    np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("params", PARAMS)
def test_patterns_make_a_distribution_with_the_new_customer_mean(params):
    """Every sequence with the same (x, t_x) has the same probability L, and C(t_x-1, x-1) of
    them exist: summed over the patterns the probabilities are 1, and their mean is E[X(n)]."""
    n = 7
    rows = [(0, 0)] + [(x, t) for t in range(1, n + 1) for x in range(1, t + 1)]
    df = pd.DataFrame(rows, columns=["frequency", "recency"]).assign(periods=n)
    ways = np.array([1 if x == 0 else math.comb(t - 1, x - 1) for x, t in rows])
    prob = ways * np.exp(bgbb.bgbb_loglik(df, *params).to_numpy())
    assert prob.sum() == pytest.approx(1, abs=1e-12)
    mean = float(prob @ df["frequency"])
    assert mean == pytest.approx(bgbb.expected_purchases_new(_fit_at(*params), n), rel=1e-10)


@pytest.mark.parametrize("params", PARAMS)
def test_p_alive_and_expected_purchases_equal_exact_posterior_integrals(params):
    p, th, w = _grid(params)
    fit = _fit_at(*params)
    pa = bgbb.p_alive(fit, PATTERNS)
    ex = bgbb.expected_purchases(fit, PATTERNS, [1, 5])
    assert pa.index.equals(PATTERNS.index) and ex.index.equals(PATTERNS.index)
    for key, (x, tx, n) in zip(PATTERNS.index, PATTERNS.to_numpy(), strict=True):
        like = _individual(p, th, x, tx, n)
        alive_n = p**x * (1 - p) ** (n - x) * (1 - th) ** n
        L = float((w * like).sum())
        assert pa[key] == pytest.approx(float((w * alive_n * (1 - th)).sum()) / L, rel=1e-11)
        for k in (1, 5):
            future = p * sum((1 - th) ** j for j in range(1, k + 1))
            assert ex.loc[key, k] == pytest.approx(
                float((w * alive_n * future).sum()) / L, rel=1e-11
            )


def test_survival_sum_is_accurate_at_and_near_gamma_one():
    k = np.arange(0, 30)
    for gamma in (1.0, 1 + 1e-12, 1 - 1e-7, 0.4, 2.5):
        direct = np.array([
            sum(math.exp(special.betaln(gamma, 2.0 + 3 + j) - special.betaln(gamma, 2.0)) for j in range(1, kk + 1))
            for kk in k
        ])  # fmt: skip
        np.testing.assert_allclose(
            bgbb._survival_sum(gamma, 2.0, np.full(30, 3.0), k), direct, rtol=1e-9, atol=1e-15
        )


@pytest.fixture(scope="module")
def donations() -> pd.DataFrame:
    return bgbb.load_donations()


@pytest.fixture(scope="module")
def donations_fit(donations) -> clv.ModelFit:
    return bgbb.fit_bgbb(donations, weights="weights")


def test_donations_published_estimates(donations_fit):
    fit = donations_fit
    assert fit.model == "BG/BB" and fit.converged and fit.n == 11104
    for name, value in bgbb.DONATIONS_PUBLISHED.items():
        assert f"{fit.params[name]:.3g}" == f"{value:.3g}", name
    # the log-likelihood, -33,225.6, held against an independent implementation below
    assert round(fit.loglik, 1) == -33225.6
    table = fit.summary()
    assert np.all(np.isfinite(table["se"])) and np.all(table["se"] > 0)


def test_donations_fit_equals_the_lifetimes_package(donations_fit):
    """An independent implementation (lifetimes' BetaGeoBetaBinomFitter, which reports the mean
    negative log-likelihood per weighted customer) on the donations file it ships: same estimates,
    same log-likelihood."""
    lifetimes = pytest.importorskip("lifetimes")
    from lifetimes.datasets import load_donations

    dd = load_donations()
    ref = lifetimes.BetaGeoBetaBinomFitter().fit(
        dd["frequency"], dd["recency"], dd["periods"], weights=dd["weights"]
    )
    for name in ("alpha", "beta", "gamma", "delta"):
        assert donations_fit.params[name] == pytest.approx(ref.params_[name], rel=1e-4), name
    ref_loglik = -ref._negative_log_likelihood_ * dd["weights"].sum()
    assert donations_fit.loglik == pytest.approx(ref_loglik, abs=0.05)


def test_recency_frequency_table_of_the_donations(donations):
    table = bgbb.recency_frequency_table(donations, weights="weights")
    assert list(table.index) == [6, 5, 4, 3, 2, 1, 0] and list(table.columns) == list(range(7))
    assert int(table.to_numpy().sum()) == 11104
    assert table.loc[0, 0] == 3464 and table.loc[6, 6] == 1203 and table.loc[1, 1] == 1091
    assert table.loc[2, 1] == 0  # impossible cells are 0: x <= t_x
    assert np.all(np.tril(table.to_numpy()[::-1], -1) == 0)


def test_predictions_on_the_donations_are_ordered_and_indexed_like_the_input(
    donations_fit, donations
):
    fit = donations_fit
    pa = bgbb.p_alive(fit, donations)
    ex = bgbb.expected_purchases(fit, donations, 5)
    assert isinstance(pa, pd.Series) and pa.index.equals(donations.index)
    assert ((pa > 0) & (pa < 1)).all()
    # the more recent the last donation (same frequency), the likelier alive and the more expected
    three = donations["frequency"] == 3
    assert np.all(np.diff(pa[three].to_numpy()) > 0) and np.all(np.diff(ex[three].to_numpy()) > 0)
    new = bgbb.expected_purchases_new(fit, np.arange(1, 7))
    assert np.all(np.diff(new) > 0) and new[0] == pytest.approx(
        1.204 / (1.204 + 0.750) * (2.783 / (0.657 + 2.783)), rel=2e-3
    )
    with pytest.raises(ValueError, match="inconsistent"):
        bgbb.p_alive(fit, donations.assign(recency=donations["frequency"] - 1))
    with pytest.raises(ValueError, match="missing"):
        bgbb.p_alive(fit, donations.drop(columns="periods"))


def test_weighted_fit_on_distinct_rows_equals_the_per_donor_fit(donations, donations_fit):
    per_donor = donations.loc[donations.index.repeat(donations["weights"])].drop(columns="weights")
    b = bgbb.fit_bgbb(per_donor.reset_index(drop=True))
    a = donations_fit
    assert a.n == b.n == 11104
    np.testing.assert_allclose(list(a.params.values()), list(b.params.values()), rtol=1e-6)
    np.testing.assert_allclose(a.loglik, b.loglik, rtol=1e-9)
    c = bgbb.fit_bgbb(donations, weights=donations["weights"])
    np.testing.assert_allclose(list(c.params.values()), list(a.params.values()), rtol=1e-12)
    with pytest.raises(ValueError, match="weights"):
        bgbb.fit_bgbb(donations, weights=np.ones(3))


def test_fit_recovers_simulated_parameters_within_family_wise_intervals():
    """The BG/BB process simulated opportunity by opportunity: p ~ Beta(alpha, beta),
    theta ~ Beta(gamma, delta); a living customer dies at the start of each opportunity with
    probability theta and, if still alive, buys with probability p. Every true value inside its
    Wald interval at the family-wise 95 % level (Bonferroni over 4), fixed seed."""
    truth = {"alpha": 1.2, "beta": 0.8, "gamma": 0.7, "delta": 2.5}
    rng = np.random.default_rng(2010)
    m, n = 20000, 8
    p = rng.beta(truth["alpha"], truth["beta"], m)[:, None]
    th = rng.beta(truth["gamma"], truth["delta"], m)[:, None]
    alive = np.cumprod(rng.uniform(size=(m, n)) >= th, axis=1).astype(bool)
    buy = alive & (rng.uniform(size=(m, n)) < p)
    x = buy.sum(1)
    tx = np.where(x > 0, n - np.argmax(buy[:, ::-1], axis=1), 0)
    df = pd.DataFrame({"frequency": x, "recency": tx, "periods": n})
    table = bgbb.fit_bgbb(df).summary(level=1 - 0.05 / 4)
    for k, v in truth.items():
        assert table.loc[k, "ci_low"] < v < table.loc[k, "ci_high"], (k, table.loc[k].to_dict())
