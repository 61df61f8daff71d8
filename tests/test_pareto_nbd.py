"""Tests of helpers.pareto_nbd: the likelihood against brute-force integration of the
individual-level model over (lambda, mu), the published CDNOW estimates (Schmittlein, Morrison &
Colombo 1987, as reported by Fader, Hardie & Lee 2005), the predictions against numerical
integrals and against each other, weights, and recovery on data simulated from the model.

Recovery follows the policy of tests/test_clv.py: every true value inside its Wald interval at the
family-wise 95 % level (Bonferroni over the parameters checked), fixed seed.
"""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special

from helpers import btyd, clv
from helpers import pareto_nbd as pn

#: alpha < beta (CDNOW), alpha > beta, and a few more for the cheaper checks
PARAMS = [
    (0.553, 10.578, 0.606, 11.669),
    (0.8, 6.0, 1.2, 3.0),
    (1.3, 4.0, 2.2, 1.5),
    (0.4, 2.0, 0.9, 30.0),
]


def _fit_at(r: float, alpha: float, s: float, beta: float) -> clv.ModelFit:
    params = {"r": r, "alpha": alpha, "s": s, "beta": beta}
    return clv.ModelFit("Pareto/NBD", params, np.nan, 0, "W", np.zeros((4, 4)), True)


def _individual(lam: float, mu: float, x: int, tx: float, T: float) -> float:
    """Likelihood of one customer with known lambda, mu (Fader & Hardie 2005):
    lambda^x e^-(lambda+mu)T + lambda^x mu/(lambda+mu) (e^-(lambda+mu)t_x - e^-(lambda+mu)T)."""
    k = lam + mu
    return lam**x * (np.exp(-k * T) + mu / k * (np.exp(-k * tx) - np.exp(-k * T)))


def _brute_force_loglik(x, tx, T, r, alpha, s, beta) -> float:
    """log of the double integral of the individual likelihood over the Gamma mixing
    distributions, by quadrature in probability space (lambda = G^-1(u), mu = H^-1(v): the
    densities cancel and the integrand is bounded); the constant lambda^x is scaled out."""
    scale = (r / alpha) ** x  # keeps the integrand near 1 for large x

    def f(v: float, u: float) -> float:
        lam = special.gammaincinv(r, u) / alpha
        mu = special.gammaincinv(s, v) / beta
        return _individual(lam, mu, x, tx, T) / scale

    val, _ = integrate.dblquad(f, 0, 1, 0, 1, epsabs=0, epsrel=1e-8)
    return float(np.log(val) + np.log(scale))


CUSTOMERS = pd.DataFrame(
    {"frequency": [2, 7, 1], "recency": [30.43, 20.0, 38.0], "T": [38.86, 52.0, 38.0]}
)


@pytest.mark.parametrize("params", PARAMS[:2])
def test_loglik_equals_brute_force_double_integral(params):
    ll = pn.pareto_nbd_loglik(CUSTOMERS, *params)
    brute = [_brute_force_loglik(int(x), tx, T, *params) for x, tx, T in CUSTOMERS.to_numpy()]
    np.testing.assert_allclose(ll.to_numpy(), brute, rtol=1e-6)
    assert ll.index.equals(CUSTOMERS.index)


def _one_dim_loglik(x, tx, T, r, alpha, s, beta) -> float:
    """The likelihood with lambda and mu integrated out analytically but the time of leaving
    left as an integral (Fader & Hardie 2005), by scipy.integrate.quad:
    G(r+x) alpha^r beta^s / G(r) [(alpha+T)^-(r+x) (beta+T)^-s
    + s int_tx^T (alpha+y)^-(r+x) (beta+y)^-(s+1) dy]."""
    const = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    # scaled by the first term so that quad works near 1
    k = (r + x) * np.log(alpha + T) + s * np.log(beta + T)
    gone, _ = integrate.quad(
        lambda y: np.exp(k - (r + x) * np.log(alpha + y) - (s + 1) * np.log(beta + y)),
        tx, T, epsabs=0, epsrel=1e-12, limit=200,
    )  # fmt: skip
    return float(const - k + np.log1p(s * gone))


def _random_summary(rng: np.random.Generator, n: int) -> pd.DataFrame:
    T = rng.uniform(1, 80, n)
    x = rng.poisson(rng.gamma(0.7, 4, n))
    tx = np.where(x > 0, T * rng.uniform(0, 1, n) ** 0.3, 0.0)
    tx[:3] = T[:3]  # bought at the very end: A0 = 0
    return pd.DataFrame({"frequency": x, "recency": tx, "T": T})


def test_loglik_equals_one_dimensional_integral_on_random_data():
    rng = np.random.default_rng(32)
    for _ in range(6):
        r, alpha, s, beta = (
            rng.uniform(0.2, 3),
            rng.uniform(0.5, 40),
            rng.uniform(0.2, 3),
            rng.uniform(0.5, 40),
        )
        df = _random_summary(rng, 25)
        ll = pn.pareto_nbd_loglik(df, r, alpha, s, beta).to_numpy()
        quad = [_one_dim_loglik(x, tx, T, r, alpha, s, beta) for x, tx, T in df.to_numpy()]
        np.testing.assert_allclose(ll, quad, rtol=1e-9)


def test_loglik_stays_finite_for_heavy_buyers_and_long_histories():
    df = pd.DataFrame(
        {
            "frequency": [500, 2000, 0],
            "recency": [900.0, 3000.0, 0.0],
            "T": [1000.0, 3650.0, 3650.0],
        }
    )
    for params in PARAMS:
        ll = pn.pareto_nbd_loglik(df, *params)
        assert np.all(np.isfinite(ll))
        pa = pn.p_alive(_fit_at(*params), df)
        assert np.all((pa >= 0) & (pa <= 1))


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return clv.load_cdnow()


@pytest.fixture(scope="module")
def cdnow_fit(cdnow) -> clv.ModelFit:
    return pn.fit_pareto_nbd(cdnow)


def test_cdnow_published_estimates(cdnow_fit):
    fit = cdnow_fit
    assert fit.model == "Pareto/NBD" and fit.converged and fit.n == 2357 and fit.time_unit == "W"
    for name in ("r", "alpha", "s", "beta"):
        assert f"{fit.params[name]:.3g}" == f"{pn.CDNOW_PUBLISHED[name]:.3g}", name
    assert round(fit.loglik, 1) == pn.CDNOW_PUBLISHED["loglik"]
    table = fit.summary()
    assert np.all(np.isfinite(table["se"])) and np.all(table["se"] > 0)
    # the published point lies inside every 95 % interval
    pub = pd.Series({k: pn.CDNOW_PUBLISHED[k] for k in table.index})
    assert np.all((table["ci_low"] < pub) & (pub < table["ci_high"]))


def test_the_fit_summed_block_by_block_is_the_fit_on_all_rows_at_once(cdnow_fit, cdnow):
    """The objective summed btyd.BLOCK_ROWS rows at a time (issue 31's memory; here 300 of
    CDNOW's 2,357 customers a block, eight blocks) finds the fit of one block: parameters to
    1e-6 relative, the log-likelihood to 1e-10, the standard errors to 1e-4."""
    with patch.object(btyd, "BLOCK_ROWS", 300):
        fit = pn.fit_pareto_nbd(cdnow)
    assert fit.converged
    for k, v in cdnow_fit.params.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-6), k
    assert fit.loglik == pytest.approx(cdnow_fit.loglik, rel=1e-10)
    np.testing.assert_allclose(fit.summary()["se"], cdnow_fit.summary()["se"], rtol=1e-4)


def test_predictions_take_and_return_dataframes_indexed_like_the_input(cdnow_fit, cdnow):
    sub = cdnow.iloc[[5, 0, 99]]
    for out in (
        pn.p_alive(cdnow_fit, sub),
        pn.expected_purchases(cdnow_fit, sub, 39),
        pn.p_no_purchase(cdnow_fit, sub, 13),
    ):
        assert isinstance(out, pd.Series) and out.index.equals(sub.index)
    frame = pn.expected_purchases(cdnow_fit, sub, [13, 39, 52])
    assert isinstance(frame, pd.DataFrame) and frame.index.equals(sub.index)
    assert list(frame.columns) == [13, 39, 52]
    np.testing.assert_allclose(frame[39], pn.expected_purchases(cdnow_fit, sub, 39), rtol=1e-14)
    assert np.all(np.diff(frame.to_numpy(), axis=1) > 0)
    with pytest.raises(ValueError, match="missing"):
        pn.p_alive(cdnow_fit, sub.drop(columns="T"))
    with pytest.raises(ValueError, match="inconsistent"):
        pn.p_alive(cdnow_fit, sub.assign(recency=sub["T"] + 1))


def test_p_alive_falls_with_time_since_the_last_purchase_even_without_repeats(cdnow_fit):
    df = pd.DataFrame(
        {"frequency": [0, 0, 0, 3, 3], "recency": [0.0, 0, 0, 30, 10], "T": [5.0, 20, 39, 39, 39]}
    )
    pa = pn.p_alive(cdnow_fit, df).to_numpy()
    assert pa[0] > pa[1] > pa[2] > 0  # unlike the BG/NBD, one-time buyers fade
    assert pa[3] > pa[4]
    assert np.all(pa <= 1)


@pytest.mark.parametrize("params", PARAMS)
def test_expected_purchases_equals_integral_of_the_posterior_survival(params):
    """E[Y(t) | x, t_x, T] = P(alive) (r+x)/(alpha+T) int_0^t ((beta+T)/(beta+T+u))^s du."""
    r, alpha, s, beta = params
    fit = _fit_at(*params)
    df = _random_summary(np.random.default_rng(1), 8)
    got = pn.expected_purchases(fit, df, 26.0).to_numpy()
    pa = pn.p_alive(fit, df).to_numpy()
    want = [
        pa_i
        * (r + x)
        / (alpha + T)
        * integrate.quad(lambda u, T=T: ((beta + T) / (beta + T + u)) ** s, 0, 26.0, epsrel=1e-12)[
            0
        ]
        for pa_i, (x, _, T) in zip(pa, df.to_numpy(), strict=True)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_expected_purchases_is_continuous_at_s_equal_one():
    df = _random_summary(np.random.default_rng(2), 5)
    at_one = pn.expected_purchases(_fit_at(0.7, 5.0, 1.0, 8.0), df, 30.0)
    near = pn.expected_purchases(_fit_at(0.7, 5.0, 1.0 + 1e-7, 8.0), df, 30.0)
    np.testing.assert_allclose(at_one, near, rtol=1e-6)
    np.testing.assert_allclose(
        pn.expected_purchases_new(_fit_at(0.7, 5.0, 1.0, 8.0), 30.0),
        pn.expected_purchases_new(_fit_at(0.7, 5.0, 1.0 - 1e-7, 8.0), 30.0),
        rtol=1e-6,
    )


def _p_x_by_quadrature(x, t, r, alpha, s, beta) -> float:
    """P(X(t) = x) with lambda integrated out (negative binomial) and the time of leaving by
    quad: NB(x; r, alpha/(alpha+t)) (beta/(beta+t))^s
    + int_0^t NB(x; r, alpha/(alpha+y)) s beta^s / (beta+y)^(s+1) dy."""

    def nb(y):  # negative binomial P(N(y) = x) of a customer alive throughout
        return np.exp(
            special.gammaln(r + x) - special.gammaln(r) - special.gammaln(x + 1)
            + r * np.log(alpha / (alpha + y)) + special.xlogy(x, y / (alpha + y))
        )  # fmt: skip

    gone, _ = integrate.quad(
        lambda y: nb(y) * s * beta**s / (beta + y) ** (s + 1), 0, t, epsrel=1e-12
    )
    return float(nb(t) * (beta / (beta + t)) ** s + gone)


@pytest.mark.parametrize("params", PARAMS)
def test_probability_of_purchases_against_quadrature_and_as_a_distribution(params):
    fit = _fit_at(*params)
    for t in (1.0, 39.0, 150.0):
        for x in (0, 3, 12):
            np.testing.assert_allclose(
                pn.probability_of_purchases(fit, t, x),
                _p_x_by_quadrature(x, t, *params),
                rtol=1e-7,
                atol=1e-13,
            )
    t = np.array([1.0, 13.0])  # the tail beyond 150 purchases negligible
    probs = np.array([pn.probability_of_purchases(fit, t, k) for k in range(150)])
    np.testing.assert_allclose(probs.sum(0), 1, atol=1e-9)
    np.testing.assert_allclose(
        (np.arange(150)[:, None] * probs).sum(0), pn.expected_purchases_new(fit, t), rtol=1e-6
    )


@pytest.mark.parametrize("params", PARAMS)
def test_p_no_purchase_is_the_posterior_mixture(params):
    """P(no purchase in (T, T+tau]) = 1 - P(alive) + P(alive) P0(tau), P0 the new-customer
    P(X(tau) = 0) at the posterior parameters (r+x, alpha+T, s, beta+T)."""
    r, alpha, s, beta = params
    fit = _fit_at(*params)
    df = _random_summary(np.random.default_rng(3), 10)
    tau = 13.0
    got = pn.p_no_purchase(fit, df, tau).to_numpy()
    pa = pn.p_alive(fit, df).to_numpy()
    p0 = np.array([
        pn.probability_of_purchases(_fit_at(r + x, alpha + T, s, beta + T), tau, 0)
        for x, _, T in df.to_numpy()
    ])  # fmt: skip
    np.testing.assert_allclose(got, 1 - pa + pa * p0, rtol=1e-9)
    many = pn.p_no_purchase(fit, df, [0.0, 13.0, 52.0])
    np.testing.assert_allclose(many[0.0], 1.0)
    assert np.all(np.diff(many.to_numpy(), axis=1) < 0)


def test_weighted_fit_on_distinct_rows_equals_the_per_customer_fit():
    rng = np.random.default_rng(7)
    distinct = _simulate(400, 0.8, 8.0, 0.7, 12.0, T=rng.uniform(20, 60, 400), seed=8)
    counts = rng.integers(1, 6, len(distinct))
    per_row = distinct.loc[distinct.index.repeat(counts)].reset_index(drop=True)
    a = pn.fit_pareto_nbd(distinct, weights=counts)
    b = pn.fit_pareto_nbd(per_row)
    assert a.n == b.n == counts.sum()
    np.testing.assert_allclose(list(a.params.values()), list(b.params.values()), rtol=1e-6)
    np.testing.assert_allclose(a.loglik, b.loglik, rtol=1e-9)
    np.testing.assert_allclose(a.cov_log, b.cov_log, rtol=1e-3)
    # a column name and a Series aligned on the index work the same way
    c = pn.fit_pareto_nbd(distinct.assign(n=counts), weights="n")
    np.testing.assert_allclose(list(c.params.values()), list(a.params.values()), rtol=1e-12)
    with pytest.raises(ValueError, match="weights"):
        pn.fit_pareto_nbd(distinct, weights=-counts)


def _simulate(
    n: int, r: float, alpha: float, s: float, beta: float, T: np.ndarray, seed: int
) -> pd.DataFrame:
    """The Pareto/NBD process: lambda ~ Gamma(r, alpha), mu ~ Gamma(s, beta), lifetime ~ Exp(mu),
    Poisson(lambda) purchases while alive and before T; the last purchase time is the maximum of
    N uniform times, i.e. the observed span times U^(1/N)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    mu = rng.gamma(s, 1 / beta, n)
    span = np.minimum(rng.exponential(1 / mu), T)
    x = rng.poisson(lam * span)
    with np.errstate(divide="ignore"):
        tx = np.where(x > 0, span * rng.uniform(size=n) ** (1 / np.maximum(x, 1)), 0.0)
    return pd.DataFrame({"frequency": x, "recency": tx, "T": T})


def test_fit_recovers_simulated_parameters_within_family_wise_intervals():
    truth = {"r": 0.8, "alpha": 8.0, "s": 0.7, "beta": 12.0}
    rng = np.random.default_rng(11)
    df = _simulate(4000, *truth.values(), T=rng.uniform(20, 60, 4000), seed=12)
    table = pn.fit_pareto_nbd(df).summary(level=1 - 0.05 / 4)
    for k, v in truth.items():
        assert table.loc[k, "ci_low"] < v < table.loc[k, "ci_high"], (k, table.loc[k].to_dict())


@pytest.mark.parametrize("params", [*PARAMS, (0.7, 5.0, 1.1, 5.0)])
def test_leave_before_next_purchase_equals_the_competing_clocks_integral(params):
    """E[mu / (lambda + mu)] in closed form (2F1) against an independent integral: for competing
    exponential clocks P(leaving first) = int_0^inf E[e^-lambda u] E[mu e^-mu u] du
    = int_0^inf (alpha/(alpha+u))^r s/beta (beta/(beta+u))^(s+1) du; and a Monte Carlo check."""
    r, alpha, s, beta = params
    got = pn.leave_before_next_purchase(_fit_at(*params))
    integrand = lambda u: (alpha / (alpha + u)) ** r * s / beta * (beta / (beta + u)) ** (s + 1)  # noqa: E731
    want, _ = integrate.quad(integrand, 0, np.inf, epsabs=0, epsrel=1e-11, limit=500)
    assert got == pytest.approx(want, rel=1e-8)
    rng = np.random.default_rng(3)
    lam, mu = rng.gamma(r, 1 / alpha, 400_000), rng.gamma(s, 1 / beta, 400_000)
    share = mu / (lam + mu)
    assert abs(got - share.mean()) < 4 * share.std() / np.sqrt(len(share))


@pytest.mark.parametrize("beta_scale", [1.0, np.e**4, np.e**30])
def test_leave_before_next_purchase_where_customers_almost_never_leave(beta_scale):
    """The fit of customers who buy as one Poisson process and do not leave (the 100M-row
    benchmark's uniform orders): r and alpha huge, s tiny, beta/alpha far from 1. scipy's 2F1 at
    1 - beta/alpha << -1 gave NaN there (the report's dropout scenario then failed); the value
    equals the competing clocks' integral (written with log1p for the huge exponent) and, as the
    purchase rate hardly varies and dropout is rare, about E[mu] E[1/lambda] =
    s alpha / (beta (r - 1))."""
    r, alpha, s, beta = 183348.0256, 2867607.228, 9.394678e-05, 301486.0967 * beta_scale
    got = pn.leave_before_next_purchase(_fit_at(r, alpha, s, beta))
    integrand = lambda u: np.exp(-r * np.log1p(u / alpha) - (s + 1) * np.log1p(u / beta)) * s / beta  # noqa: E731
    scale = alpha / r  # the integrand's decay length
    want, _ = integrate.quad(
        integrand, 0, 200 * scale, points=[scale], epsabs=0, epsrel=1e-11, limit=500
    )
    assert np.isfinite(got) and got > 0
    assert got == pytest.approx(want, rel=1e-8)
    assert got == pytest.approx(s * alpha / (beta * (r - 1)), rel=1e-3)


def _company_with_a_covariate(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """n Pareto/NBD customers, (r, alpha, s, beta) = (0.8, 6, 1.2, 40), of whom 40 % (g = 1) buy
    1.5 times as fast and leave at 0.6 times the rate, over 10-156 weeks."""
    rng = np.random.default_rng(seed)
    g = rng.random(n) < 0.4
    T = rng.uniform(10, 156, n)
    lam = rng.gamma(0.8, 1 / 6.0, n) * np.where(g, 1.5, 1.0)
    mu = rng.gamma(1.2, 1 / 40.0, n) * np.where(g, 0.6, 1.0)
    life = np.minimum(rng.exponential(1 / mu), T)
    x = rng.poisson(lam * life)
    tx = np.where(x > 0, life * rng.random(n) ** (1 / np.maximum(x, 1)), 0.0)
    df = pd.DataFrame({"frequency": x.astype(float), "recency": tx, "T": T})
    df.attrs["time_unit"] = "W"
    return df, pd.DataFrame({"g": g.astype(float)}, index=df.index)


def test_covariate_fit_recovers_the_simulated_effects_and_without_covariates_is_the_plain_fit():
    """Recovery policy of this file (family-wise 95 %, Bonferroni over the 6 parameters, fixed
    seed): purchase-rate multiplier 1.5 and dropout-rate multiplier 0.6 (CLVTools'
    parametrization alpha_i = alpha e^(-gamma z), beta_i = beta e^(-delta w)); without covariates
    the fit is fit_pareto_nbd's."""
    df, z = _company_with_a_covariate(6000, seed=2)
    fit = pn.fit_pareto_nbd_covariates(df, purchase=z, dropout=z)
    assert fit.converged and fit.model == "Pareto/NBD+covariates"
    table = fit.summary(level=1 - 0.05 / 6)
    truth = {"r": 0.8, "alpha": 6.0, "s": 1.2, "beta": 40.0, "rate_multiplier[g]": 1.5,
             "dropout_multiplier[g]": 0.6}  # fmt: skip
    for name, value in truth.items():
        assert table.loc[name, "ci_low"] < value < table.loc[name, "ci_high"], name
    plain, bare = pn.fit_pareto_nbd(df), pn.fit_pareto_nbd_covariates(df)
    assert bare.loglik == pytest.approx(plain.loglik, rel=1e-10)
    for k, v in plain.params.items():
        assert bare.params[k] == pytest.approx(v, rel=1e-5)


# --- the fit's exact gradient (issue 31: the Pareto/NBD fit at 10M rows) -------------------------

#: alpha < beta, alpha > beta, nearly equal, and the large-s ridge where 2F1 overflows
GRAD_PARAMS = [*PARAMS, (1.3, 4.0, 2.2, 4.0 * (1 + 1e-7)), (1.007, 2.615, 32.57, 1197.8)]


def _grad_summary() -> pd.DataFrame:
    """Light and heavy buyers (x up to 300), t_x = 0, t_x = T, t_x just below T."""
    rng = np.random.default_rng(31)
    T = rng.uniform(1, 150, 60)
    x = np.concatenate([rng.integers(0, 5, 30), rng.integers(50, 300, 30)]).astype(float)
    tx = T * rng.uniform(0, 1, 60) ** 0.3
    tx[x == 0] = 0.0
    tx[:3] = T[:3]
    tx[30:33] = T[30:33]
    tx[33:36] = T[33:36] - 1e-3
    tx[36] = 0.0  # repeat purchases on the first day (a coarse resolution)
    return pd.DataFrame({"frequency": x, "recency": tx, "T": T})


def _central_differences(df: pd.DataFrame, params: tuple[float, ...], h: float = 1e-5):
    """d LL / d log(parameter) of the 2F1 form (pareto_nbd_loglik), per customer, by central
    differences: independent of the quadrature the fit uses."""
    theta = np.log(params)
    out = []
    for j in range(4):
        e = np.zeros(4)
        e[j] = h
        up = pn.pareto_nbd_loglik(df, *np.exp(theta + e)).to_numpy()
        down = pn.pareto_nbd_loglik(df, *np.exp(theta - e)).to_numpy()
        out.append((up - down) / (2 * h))
    return np.stack(out, axis=1)


@pytest.mark.parametrize("params", GRAD_PARAMS)
def test_the_fits_gradient_equals_central_differences_of_the_loglik(params):
    df = _grad_summary()
    x, tx, T = (df[c].to_numpy() for c in ("frequency", "recency", "T"))
    ll, grad = pn._loglik_grad(x, tx, T, *params)
    np.testing.assert_allclose(ll, pn.pareto_nbd_loglik(df, *params), rtol=1e-12, atol=1e-9)
    # central differences of sums of up to ~3000 in size: error ~1e-8 of the gradient's scale
    np.testing.assert_allclose(grad, _central_differences(df, params), rtol=1e-6, atol=1e-6)


def _gone_moments_by_quad(x, tx, T, r, alpha, s, beta) -> list[float]:
    """log G and the means of log(alpha+u), log(beta+u), 1/(alpha+u), 1/(beta+u) under
    (alpha+u)^-(r+x) (beta+u)^-(s+1) on [t_x, T], by scipy's adaptive quadrature (the integrand
    scaled by its value at t_x, break points near t_x where heavy buyers' mass lies)."""
    k = (r + x) * np.log(alpha + tx) + (s + 1) * np.log(beta + tx)
    cuts = [tx + (T - tx) * q for q in (1e-4, 1e-3, 1e-2, 1e-1)]
    hs = [
        lambda u: 1.0,
        lambda u: np.log(alpha + u),
        lambda u: np.log(beta + u),
        lambda u: 1 / (alpha + u),
        lambda u: 1 / (beta + u),
    ]
    vals = [
        integrate.quad(
            lambda u, h=h: h(u) * np.exp(k - (r + x) * np.log(alpha + u) - (s + 1) * np.log(beta + u)),
            tx, T, epsabs=0, epsrel=1e-13, limit=1000, points=cuts,
        )[0]
        for h in hs
    ]  # fmt: skip
    return [np.log(vals[0]) - k, *(v / vals[0] for v in vals[1:])]


@pytest.mark.parametrize(
    "case",
    [
        (459.0, 130.34, 150.0, 1.007, 2.615, 32.57, 1197.8),
        (136.0, 0.0, 109.0, 0.3, 50.0, 0.2, 0.05),
        (95.0, 0.0, 76.9, 2.0, 0.5, 0.3, 80.0),
        (0.0, 0.0, 150.0, 0.1, 1e3, 0.1, 1e-3),
        (3.0, 20.0, 20.0 + 1e-6, 0.553, 10.578, 0.606, 11.669),
    ],
)
def test_the_quadrature_equals_adaptive_quadrature_where_2f1_overflows(case):
    """The moments of the 'left' integral (log G and the four means the gradient uses) against
    scipy's adaptive quadrature: heavy buyers at a large s (2F1 overflows there: the old fit
    stopped at that wall), a tiny beta against a large alpha and the reverse, t_x just below T."""
    x, tx, T, *params = case
    got = [float(v[0]) for v in pn._gone_moments(*map(np.atleast_1d, (x, tx, T)), *params)]
    np.testing.assert_allclose(got, _gone_moments_by_quad(*case), rtol=1e-10, atol=1e-14)


def test_the_loglik_is_finite_where_2f1_overflows():
    params = (1.007, 2.615, 32.57, 1197.8)
    heavy = pd.DataFrame({"frequency": [459.0, 2.0], "recency": [130.34, 30.0], "T": [150.0, 40.0]})
    ll = pn.pareto_nbd_loglik(heavy, *params)
    want = [_one_dim_loglik(x, tx, T, *params) for x, tx, T in heavy.to_numpy()]
    np.testing.assert_allclose(ll, want, rtol=1e-9)


def _numerical_gradient_fit(df: pd.DataFrame) -> tuple[np.ndarray, float]:
    """The fit as it was before the exact gradient: L-BFGS-B on forward differences of the 2F1
    form's mean negative log-likelihood, restarted once, then Newton steps on numerical
    derivatives (btyd.newton_polish)."""
    from scipy import optimize

    from helpers import btyd

    x, tx, T = (df[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))

    def nll(theta):
        return -float(pn._loglik(x, tx, T, *np.exp(theta)).sum())

    rate = max(float(x.mean()), 0.05) / float(T.mean())
    x0 = np.log([1.0, 1.0 / rate, 1.0, float(T.mean())])
    opts = {"ftol": 1e-13, "gtol": 1e-9}
    res = optimize.minimize(lambda th: nll(th) / len(x), x0, method="L-BFGS-B", options=opts)
    res = optimize.minimize(lambda th: nll(th) / len(x), res.x, method="L-BFGS-B", options=opts)
    theta, value, _ = btyd.newton_polish(nll, res.x)
    return np.exp(theta), -value


def test_the_exact_gradient_fit_equals_the_numerical_gradient_fit():
    rng = np.random.default_rng(5)
    df = _simulate(3000, 0.8, 8.0, 0.7, 12.0, T=rng.uniform(20, 80, 3000), seed=6)
    fit = pn.fit_pareto_nbd(df)
    params, loglik = _numerical_gradient_fit(df)
    assert fit.converged
    np.testing.assert_allclose(list(fit.params.values()), params, rtol=1e-6)
    assert fit.loglik == pytest.approx(loglik, rel=1e-10)
    assert fit.loglik == pytest.approx(pn.pareto_nbd_loglik(df, *params).sum(), rel=1e-10)
