"""Customer lifetime value: historical (margin-based) and predictive with the BG/NBD purchase
model and the Gamma-Gamma spend model, a calibration/holdout evaluation, and discounted CLV.

Models (maximum likelihood, log-likelihoods written out with ``scipy.special`` and fitted with
``scipy.optimize`` on log-parameters):

* BG/NBD, Fader, Hardie & Lee (2005), "'Counting your customers' the easy way", *Marketing
  Science* 24(2): while alive a customer buys at rate lambda ~ Gamma(r, alpha) per time unit and
  after each repeat purchase drops out with probability p ~ Beta(a, b). A customer with no repeat
  purchase cannot have dropped out, so P(alive) = 1 for every one-time buyer, however long ago.
* MBG/NBD, Batislam, Denizel & Filiztekin (2007), *IJRM* 24(3): the same, but a customer can also
  drop out right after the *first* purchase (x + 1 chances to leave instead of x), so a one-time
  buyer seen long ago is probably gone. CDNOW: r = 0.525, alpha = 6.183, a = 0.891, b = 1.614.
* Gamma-Gamma, Fader, Hardie & Lee (2005), *JMR* 42(4), and Hardie (2013) "The Gamma-Gamma model
  of monetary value": spend per transaction z ~ Gamma(p, nu), nu ~ Gamma(q, gamma), independent of
  the purchase process.

The input is the BTYD summary of :func:`helpers.segments.rfm_table`: ``frequency`` x (repeat
purchases), ``recency`` t_x and ``T`` (ages at the last purchase and at the end of the period) in
one time unit (``attrs["time_unit"]``: 'D', 'W' or 'M'), and ``monetary_value`` (mean spend of the
repeat purchases). Fitted rates are per that unit: lambda per week is 7x lambda per day, so the
scale alpha in days is 7x alpha in weeks (r, a, b do not change with the unit).

DataFrames in, DataFrames out: every per-customer function takes the summary and returns a Series
(one horizon) or a DataFrame (one column per horizon, or one per quantity) indexed like it; the
functions of a horizon alone (a customer not yet acquired: :func:`expected_purchases_new`,
:func:`probability_of_purchases`) take numbers and return arrays, and
:func:`new_customer_purchases` returns them as a Series indexed by the horizon. The prediction
functions take a BG/NBD, MBG/NBD or Pareto/NBD fit (:data:`PURCHASE_MODELS`); the shared pieces
(:class:`~helpers.btyd.ModelFit`, the optimizer, the parametric bootstrap, information criteria
and likelihood-ratio tests) live in :mod:`helpers.btyd`.

Standard errors: Wald, from the observed information (the Hessian of the negative
log-likelihood at the optimum: analytic for the BG/NBD and MBG/NBD with and without covariates,
:func:`_bgnbd_hessian_rows`; central differences of the analytic gradient for the others; and
``statsmodels.tools.numdiff.approx_hess3`` on the numerical-gradient path) on the log scale;
confidence intervals are exp(log estimate +- z se), so they stay positive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import interpolate, special, stats

from helpers import btyd, economics, pareto_nbd, periods
from helpers.btyd import ModelFit
from helpers.economics import Economics
from helpers.segments import TIME_UNITS, summary_from_codes, unit_days

__all__ = [
    "CDNOW_PUBLISHED",
    "ModelFit",
    "bgnbd_loglik",
    "fit_bgnbd",
    "mbgnbd_loglik",
    "fit_mbgnbd",
    "PURCHASE_MODELS",
    "BGNBD_LIMITS",
    "GAMMA_GAMMA_LIMITS",
    "compare_purchase_models",
    "fit_bgnbd_covariates",
    "covariate_effects",
    "covariate_pattern_fits",
    "predict_with_covariates",
    "nbd_loglik",
    "fit_nbd",
    "NESTED_TESTS",
    "model_selection",
    "load_cdnow",
    "gamma_gamma_loglik",
    "fit_gamma_gamma",
    "expected_purchases_new",
    "new_customer_purchases",
    "new_customer_value",
    "expected_purchases",
    "p_alive",
    "expected_spend",
    "spend_frequency_check",
    "gamma_gamma_independence",
    "predictive_clv",
    "discounted_purchases",
    "calibration_holdout",
    "evaluate_holdout",
    "sample_params",
    "clv_intervals",
    "probability_of_purchases",
    "frequency_histogram",
    "tracking",
]


#: Published maximum-likelihood estimates on the CDNOW sample (2,357 customers, 39 weeks, time unit
#: weeks; Gamma-Gamma on its 946 repeat buyers, spend in USD), for the known-answer checks.
CDNOW_PUBLISHED: dict[str, dict[str, float]] = {
    # Fader, Hardie & Lee (2005), Marketing Science 24(2), 275-284
    "BG/NBD": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "loglik": -9582.4},
    # Batislam, Denizel & Filiztekin (2007), IJRM 24(3); values of the R package BTYDplus
    "MBG/NBD": {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614},
    # Fader, Hardie & Lee (2005), JMR 42(4); Hardie (2013), "The Gamma-Gamma model of monetary value"
    "Gamma-Gamma": {"p": 6.25, "q": 3.74, "gamma": 15.44},
}


def _check_bgnbd_data(x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> None:
    bad = (
        (x < 0)
        | (x != np.round(x))
        | (tx < 0)
        | (tx > T + 1e-9)
        | (T <= 0)
        | ~np.isfinite(x + tx + T)
    )
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{int(bad.sum())} summary rows are inconsistent (need integer frequency >= 0 and 0 <= recency <= T, T > 0); e.g. row {i}: frequency={x[i]}, recency={tx[i]}, T={T[i]}"
        )


class _BGNBDData:
    """The data with the per-frequency parts precomputed (gammaln/betaln on unique x only);
    `w` the count of customers of each row (one each by default): the summed log-likelihood and
    its gradient are sum_i w_i log L_i (:func:`helpers.btyd.distinct_rows`)."""

    def __init__(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray | None = None):
        self.ux, self.inv = np.unique(x, return_inverse=True)
        self.x, self.tx, self.T = x, tx, T
        self.w = np.ones(len(x)) if w is None else np.asarray(w, dtype=float)
        self.rep_rows = np.flatnonzero(x > 0)
        self.inv = self.inv.reshape(-1)
        self.counts = np.bincount(self.inv, weights=self.w, minlength=len(self.ux))

    def mbg_loglik(self, r: float, alpha: float, a: float, b: float) -> np.ndarray:
        """Per-customer MBG/NBD log-likelihood, Batislam, Denizel & Filiztekin (2007): with x + 1
        chances to drop out (after every purchase, the first included),
        L = B(a, b+x+1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
            + B(a+1, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x))."""
        ux = self.ux
        lbab = special.betaln(a, b)
        log_a = (special.gammaln(r + ux) - special.gammaln(r) + r * np.log(alpha))[self.inv]
        b1 = (special.betaln(a, b + ux + 1) - lbab)[self.inv]
        b2 = (special.betaln(a + 1, b + ux) - lbab)[self.inv]
        rx = r + self.x
        t1 = b1 - rx * np.log(alpha + self.T)
        t2 = b2 - rx * np.log(alpha + self.tx)
        return log_a + np.logaddexp(t1, t2)

    def loglik(self, r: float, alpha: float, a: float, b: float) -> np.ndarray:
        """Per-customer log-likelihood, Fader, Hardie & Lee (2005) eq. 6:
        L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
            + 1{x>0} B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x)),
        evaluated as log A + logaddexp(log term1, log term2)."""
        ux = self.ux
        lbab = special.betaln(a, b)
        log_a = (special.gammaln(r + ux) - special.gammaln(r) + r * np.log(alpha))[self.inv]
        b1 = (special.betaln(a, b + ux) - lbab)[self.inv]
        with np.errstate(invalid="ignore", divide="ignore"):
            b2 = np.where(
                ux > 0, special.betaln(a + 1, np.maximum(b + ux - 1, 1e-300)) - lbab, -np.inf
            )[self.inv]
        rx = r + self.x
        t1 = b1 - rx * np.log(alpha + self.T)
        # without a repeat purchase the second term is 0 (log -inf) and logaddexp(t1, -inf) is
        # exactly t1: the sum is taken for repeat buyers only
        rep = self.rep_rows
        t2 = b2[rep] - rx[rep] * np.log(alpha + self.tx[rep])
        t1[rep] = np.logaddexp(t1[rep], t2)
        return log_a + t1

    def nll_and_grad(self, theta: np.ndarray, mbg: bool) -> tuple[float, np.ndarray]:
        """Negative log-likelihood (summed) and its analytic gradient in the log-parameters
        theta = log(r, alpha, a, b), for the BG/NBD (`mbg` False) or the MBG/NBD, each row
        counted `w` times. With
        L = log A + log(e^t1 + e^t2) (:meth:`loglik`, :meth:`mbg_loglik`) and the weights
        w_j = e^(t_j - L) of the two terms, psi the digamma function and s_1 = T, s_2 = t_x:
        dL/dr = psi(r+x) - psi(r) + log alpha - sum_j w_j log(alpha + s_j),
        dL/dalpha = r/alpha - (r+x) sum_j w_j / (alpha + s_j), and dL/da, dL/db = sum_j w_j
        d(log B-ratio_j), with d log B(p, q)/dp = psi(p) - psi(p+q) (the Beta-function terms
        depend on x only, so they are summed per distinct x)."""
        r, alpha, a, b = np.exp(theta)
        ux, s = self.ux, 1 if mbg else 0
        lbab = special.betaln(a, b)
        log_a = special.gammaln(r + ux) - special.gammaln(r) + r * np.log(alpha)
        b1 = special.betaln(a, b + ux + s) - lbab
        with np.errstate(invalid="ignore", divide="ignore"):
            b2 = special.betaln(a + 1, np.maximum(b + ux + s - 1, 1e-300)) - lbab
        ll = float(self.counts @ log_a)
        d_r = float(self.counts @ (special.digamma(r + ux) - special.digamma(r) + np.log(alpha)))
        d_alpha = float(self.w.sum()) * r / alpha
        W2 = np.zeros(len(ux))  # customers in the second term, per distinct x
        # the rows a block at a time: the same sums, with temporaries of one block each
        for rows in btyd.blocks(len(self.x)):
            inv, x, tx, w = self.inv[rows], self.x[rows], self.tx[rows], self.w[rows]
            rx = r + x
            aT = alpha + self.T[rows]
            l1 = np.log(aT)
            t1 = b1[inv] - rx * l1
            ll += float(w @ t1)
            d_r -= float(w @ l1)
            d_alpha -= float(w @ (rx / aT))
            if not mbg:  # the second term: all rows (MBG/NBD) or the repeat buyers (BG/NBD)
                rep = np.flatnonzero(x > 0)
                t1, l1, aT, rx, tx, inv, w = (v[rep] for v in (t1, l1, aT, rx, tx, inv, w))
            a2 = alpha + tx
            l2 = np.log(a2)
            t2 = b2[inv] - rx * l2
            both = np.logaddexp(t1, t2)
            ll += float(w @ both) - float(w @ t1)
            w2 = np.exp(t2 - both)  # weight of the second term; the first has 1 - w2
            w2 *= w  # times the row's count of customers
            d_r -= float(w2 @ (l2 - l1))
            d_alpha -= float((rx * w2) @ (1 / a2 - 1 / aT))
            W2 += np.bincount(inv, weights=w2, minlength=len(ux))
        W1 = self.counts - W2
        dg = special.digamma
        ab = dg(a + b)
        top = dg(a + b + ux + s)
        d1a, d1b = ab - top, dg(b + ux + s) - top - dg(b) + ab
        with np.errstate(invalid="ignore"):
            d2a = np.where(W2 > 0, 1 / a - top + ab, 0.0)
            d2b = np.where(W2 > 0, dg(np.maximum(b + ux + s - 1, 1e-300)) - top - dg(b) + ab, 0.0)
        d_a = float(W1 @ d1a + W2 @ d2a)
        d_b = float(W1 @ d1b + W2 @ d2b)
        grad = np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
        return -ll, -grad

    def nll_hess(self, theta: np.ndarray, mbg: bool) -> np.ndarray:
        """The Hessian of :meth:`nll_and_grad`'s objective in theta = log(r, alpha, a, b),
        analytic (:func:`_bgnbd_hessian_rows` summed over the rows): one pass over the rows,
        where the central differences of the gradient take eight."""
        r, alpha, a, b = np.exp(theta)
        sums = _bgnbd_hessian_sums(
            r, b, np.log(alpha), np.full(len(self.ux), a), self.ux, self.inv,
            self.x, self.tx, self.T, self.w, 1 if mbg else 0,
        )  # fmt: skip
        return -_hessian_4x4({k: float(v[0]) for k, v in sums.items()})


def _bgnbd_hessian_rows(
    r: float,
    b: float,
    log_alpha: np.ndarray | float,
    a_g: np.ndarray,
    x_g: np.ndarray,
    g: np.ndarray,
    x: np.ndarray,
    tx: np.ndarray,
    T: np.ndarray,
    w: np.ndarray,
    s: int,
) -> dict[str, np.ndarray]:
    """The Hessian of each row's BG/NBD (`s` = 0) or MBG/NBD (`s` = 1) log-likelihood in its
    own log-parameters u = (rho, lam, kap, bet) = (log r, log alpha_i, log a_i, log b), times
    the row's count `w`: ten arrays keyed by the pairs of u (``"rr"``, ``"rl"``, ``"ll"``,
    ``"kk"``, ``"kb"``, ``"bb"``, ``"rk"``, ``"rb"``, ``"lk"``, ``"lb"``). The Beta-function
    terms depend on a row through (x, a) only: `a_g`, `x_g` per group, `g` each row's group.

    With L = log A + log(e^t1 + e^t2) (:meth:`_BGNBDData.loglik`; BG/NBD: no second term
    without a repeat purchase), v_j = e^(t_j - L) the terms' weights, g_j and H_j the gradient
    and Hessian of t_j in u, the rule of the log-sum-exp gives

        H = H_logA + v1 H_1 + v2 H_2 + v1 v2 (g_1 - g_2)(g_1 - g_2)',

    and each t_j = B_j(a, b) - (r+x) log(alpha + s_j) (s_1 = T, s_2 = t_x) splits into a part in
    (rho, lam) and one in (kap, bet): with q_j = alpha / (alpha + s_j),
    d2 t_j / d rho2 = -r log(alpha + s_j), d2 t_j / d rho d lam = -r q_j,
    d2 t_j / d lam2 = -(r+x) q_j (1 - q_j); d2 log A / d rho2 = r (psi(r+x) - psi(r) + lam)
    + r^2 (psi'(r+x) - psi'(r)), d2 log A / d rho d lam = r; and for B_j on the log scale
    d2 B / d kap2 = a B_a + a^2 B_aa, d2 B / d kap d bet = a b B_ab, d2 B / d bet2 = b B_b +
    b^2 B_bb, with B_1 = log G(b+x+s) - log G(a+b+x+s) - log G(b) + log G(a+b) and B_2 =
    log a + log G(b+x+s-1) - log G(a+b+x+s) - log G(b) + log G(a+b) (so g_1 - g_2 has -1 in
    kap and b / (b+x+s-1) in bet). Held equal to the central differences of the analytic
    gradient by ``tests/test_clv.py::test_the_bgnbd_hessian_is_the_derivative_of_its_gradient``."""
    groups = _bgnbd_hessian_groups(r, b, a_g, x_g, s)
    return _bgnbd_hessian_row_terms(groups, r, log_alpha, g, x, tx, T, w, s)


def _bgnbd_hessian_sums(
    r: float,
    b: float,
    log_alpha: float | tuple[np.ndarray, np.ndarray],
    a_g: np.ndarray,
    x_g: np.ndarray,
    g: np.ndarray,
    x: np.ndarray,
    tx: np.ndarray,
    T: np.ndarray,
    w: np.ndarray,
    s: int,
    by: np.ndarray | None = None,
    n_by: int = 1,
) -> dict[str, np.ndarray]:
    """:func:`_bgnbd_hessian_rows`'s ten arrays summed over the rows (`by` None: arrays of one
    value) or per group of `by` (``np.bincount(by, weights, minlength=n_by)``), computed
    :func:`helpers.btyd.blocks` of rows at a time, so that the memory they take does not grow with
    the rows; the Beta-function terms per group (x, a) once. `log_alpha` a number, or per row
    as (values, index): ``values[index]``, taken block by block. The same sums as the rows' up
    to the order of the floating-point additions (held by ``tests/test_clv.py``)."""
    groups = _bgnbd_hessian_groups(r, b, a_g, x_g, s)
    sums = {k: np.zeros(n_by) for k in _HESSIAN_KEYS}
    for rows in btyd.blocks(len(x), n_by):
        la = log_alpha[0][log_alpha[1][rows]] if isinstance(log_alpha, tuple) else log_alpha
        parts = _bgnbd_hessian_row_terms(
            groups, r, la, g[rows], x[rows], tx[rows], T[rows], w[rows], s
        )
        for k, v in parts.items():
            sums[k] += v.sum() if by is None else np.bincount(by[rows], weights=v, minlength=n_by)
    return sums


#: The keys of :func:`_bgnbd_hessian_rows`'s arrays: the pairs of u = (rho, lam, kap, bet).
_HESSIAN_KEYS = ("rr", "rl", "ll", "kk", "kb", "bb", "rk", "rb", "lk", "lb")


def _bgnbd_hessian_groups(
    r: float, b: float, a_g: np.ndarray, x_g: np.ndarray, s: int
) -> dict[str, np.ndarray]:
    """The parts of :func:`_bgnbd_hessian_rows` that depend on a row only through its group
    (x, a): the Beta-function terms' second derivatives in (kap, bet), (g_1 - g_2) in bet, and
    log A's digamma and trigamma of r + x, once per group."""
    dg, tg = special.digamma, special.polygamma
    ab, ab1 = dg(a_g + b), tg(1, a_g + b)
    top, top1 = dg(a_g + b + x_g + s), tg(1, a_g + b + x_g + s)
    b_term = dg(b + x_g + s) - dg(b)
    b_term1 = tg(1, b + x_g + s) - tg(1, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        bm = np.maximum(b + x_g + s - 1, 1e-300)
        b2_term, b2_term1 = dg(bm) - dg(b), tg(1, bm) - tg(1, b)
        d_beta = b / bm  # (g_1 - g_2) in bet
    # per group: d2 B_j in (kap, bet)
    aa_ab = ab1 - top1  # B_aa of the first term, and B_ab of both
    k1 = a_g * (ab - top) + a_g**2 * aa_ab
    k2 = a_g * (1 / a_g + ab - top) + a_g**2 * (aa_ab - 1 / a_g**2)
    c12 = a_g * b * aa_ab
    d1 = b * (b_term - top + ab) + b**2 * (b_term1 - top1 + ab1)
    d2 = b * (b2_term - top + ab) + b**2 * (b2_term1 - top1 + ab1)
    if s == 0:  # the BG/NBD has no second term without a repeat purchase: nothing of it used
        has2 = x_g > 0
        k2, d2, d_beta = (np.where(has2, v, 0.0) for v in (k2, d2, d_beta))
    # log A's digamma and trigamma of r + x, once per group (x is the group's), not per row
    psi_rx, psi1_rx = dg(r + x_g) - dg(r), tg(1, r + x_g) - tg(1, r)
    return dict(k1=k1, k2=k2, c12=c12, d1=d1, d2=d2, d_beta=d_beta, psi_rx=psi_rx,
                psi1_rx=psi1_rx, beta1=_beta_ratio(a_g, b, x_g, s, 1),
                beta2=_beta_ratio(a_g, b, x_g, s, 2))  # fmt: skip


def _bgnbd_hessian_row_terms(
    groups: dict[str, np.ndarray],
    r: float,
    log_alpha: np.ndarray | float,
    g: np.ndarray,
    x: np.ndarray,
    tx: np.ndarray,
    T: np.ndarray,
    w: np.ndarray,
    s: int,
) -> dict[str, np.ndarray]:
    """:func:`_bgnbd_hessian_rows` for the rows given, from their groups' terms
    (:func:`_bgnbd_hessian_groups`)."""
    k1, k2, c12, d1, d2, d_beta = (groups[k] for k in ("k1", "k2", "c12", "d1", "d2", "d_beta"))
    psi_rx, psi1_rx = groups["psi_rx"], groups["psi1_rx"]
    alpha = np.exp(log_alpha)
    rx = r + x
    q1 = alpha / (alpha + T)
    l1 = np.log(alpha + T)
    second = (x > 0) if s == 0 else np.ones(len(x), dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        l2 = np.log(alpha + tx)
        q2 = alpha / (alpha + tx)
        t1 = groups["beta1"][g] - rx * l1
        t2 = np.where(second, groups["beta2"][g] - rx * l2, -np.inf)
        v2 = np.where(second, np.exp(t2 - np.logaddexp(t1, t2)), 0.0)
    v1 = 1 - v2
    vv = w * v1 * v2  # the cross term's weight (0 without a second term)
    l2 = np.where(second, l2, 0.0)
    q2 = np.where(second, q2, 0.0)
    d_rho = -r * (l1 - l2)
    d_lam = -rx * (q1 - q2)
    d_bet = d_beta[g]
    wv1, wv2 = w * v1, w * v2
    out = {
        "rr": w * (r * (psi_rx[g] + log_alpha) + r**2 * psi1_rx[g])
        - r * (wv1 * l1 + wv2 * l2)
        + vv * d_rho**2,
        "rl": w * r - r * (wv1 * q1 + wv2 * q2) + vv * d_rho * d_lam,
        "ll": -rx * (wv1 * q1 * (1 - q1) + wv2 * q2 * (1 - q2)) + vv * d_lam**2,
        "kk": wv1 * k1[g] + wv2 * k2[g] + vv,
        "kb": (wv1 + wv2) * c12[g] - vv * d_bet,
        "bb": wv1 * d1[g] + wv2 * d2[g] + vv * d_bet**2,
        "rk": -vv * d_rho,
        "rb": vv * d_rho * d_bet,
        "lk": -vv * d_lam,
        "lb": vv * d_lam * d_bet,
    }
    return out


def _beta_ratio(a: np.ndarray, b: float, x: np.ndarray, s: int, term: int) -> np.ndarray:
    """log B(a, b+x+s) / B(a, b) (`term` 1) or log B(a+1, b+x+s-1) / B(a, b) (`term` 2): the
    BG/NBD's (`s` 0) and MBG/NBD's (`s` 1) Beta-function ratios (FHL 2005 eq. 6)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if term == 1:
            return special.betaln(a, b + x + s) - special.betaln(a, b)
        return special.betaln(a + 1, np.maximum(b + x + s - 1, 1e-300)) - special.betaln(a, b)


#: The order of u = (log r, log alpha_i, log a_i, log b) in :func:`_bgnbd_hessian_rows`'s keys.
_U = "rlkb"


def _hessian_4x4(parts: dict[str, np.ndarray | float]) -> np.ndarray:
    """The symmetric 4 x 4 (or P x 4 x 4, for arrays of P) matrices from the ten entries."""
    first = np.asarray(next(iter(parts.values())))
    out = np.zeros((*first.shape, 4, 4))
    for key, value in parts.items():
        i, j = _U.index(key[0]), _U.index(key[1])
        out[..., i, j] = value
        out[..., j, i] = value
    return out


def _covariate_patterns(Z: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of the covariates [Z W] (customers x k), sorted lexicographically as
    ``np.unique(..., axis=0)`` sorts them, and each customer's row (int64): found by hashing
    each column and combining the codes (:func:`helpers.btyd.distinct_rows`), not by sorting the
    customers' rows (a lexicographic sort of an n x k float matrix: 5 s at 842,000 customers)."""
    # the columns as they are (no stacked copy); the same covariates on both processes (W is
    # Z): the rows of [Z Z] are distinct where Z's are, in the same order, so Z's rows, twice
    columns = [*Z.T] if W is Z else [*Z.T, *W.T]
    if not columns:  # no covariates: one pattern, the empty one
        return np.zeros((1, 0)), np.zeros(len(Z), dtype=np.int64)
    distinct, _, inv = btyd.distinct_rows(*columns)
    pattern = np.column_stack(distinct).astype(float)
    return (np.hstack([pattern, pattern]) if W is Z else pattern), inv


@dataclass(frozen=True)
class _PatternRows:
    """Rows' covariates [Z W] held as their patterns: `table` the distinct rows of [Z W] sorted
    as :func:`_covariate_patterns` sorts them, `row` each row's index into `table` (int64), `kz`
    the width of Z. Stands for both Z and W in :class:`_BGNBDCovData`, so that a fit on
    millions of rows neither gathers the patterns into a rows x k matrix nor hashes it again
    (at 8.4M customers and two dummies: 268 MB of matrices and four columns hashed)."""

    table: np.ndarray
    row: np.ndarray
    kz: int

    def __getitem__(self, rows: np.ndarray) -> _PatternRows:
        """The rows `rows` (an index array or mask): :func:`_coarse`'s ``c[rows]``."""
        return _PatternRows(self.table, self.row[rows], self.kz)

    def distinct(self) -> tuple[np.ndarray, np.ndarray]:
        """What :func:`_covariate_patterns` gives for these rows' [Z W]: the patterns present
        (in `table`'s order, so sorted as it sorts them) and each row's index into them; by
        counting, not hashing (held equal by ``tests/test_clv.py``)."""
        present = np.bincount(self.row, minlength=len(self.table)) > 0
        index = np.cumsum(present) - 1
        return self.table[present], index[self.row]


class _BGNBDCovData:
    """The BG/NBD with time-invariant covariates (Fader & Hardie 2007) evaluated in one pass over
    the customers: the likelihood of :class:`_BGNBDData` (FHL 2005 eq. 6) with array parameters,
    customer i at alpha_i = alpha exp(-gamma' z_i) and a_i = a exp(delta' w_i), r and b shared.

    What depends on a customer only through x and the covariates -- the Beta-function ratios and
    their digammas -- is computed once per distinct (x, covariate pattern) pair, alpha_i once per
    pattern, and the rest per row; so the cost grows with the rows plus the pairs, not with
    rows x patterns. `w` counts the customers of each row (one each by default). `Z` and `W`:
    matrices (rows x k), or both the rows' :class:`_PatternRows` (a fit's, whose patterns are
    known). Held equal to :meth:`_BGNBDData.nll_and_grad` summed over the patterns by
    ``tests/test_clv.py::test_the_covariate_likelihood_in_one_pass_equals_the_per_pattern_sum``."""

    def __init__(
        self,
        x: np.ndarray,
        tx: np.ndarray,
        T: np.ndarray,
        Z: np.ndarray,
        W: np.ndarray,
        w: np.ndarray | None = None,
    ):
        # the rows reordered once, repeat buyers first: their second term is a slice (a view),
        # not a gather, in every evaluation; loglik() returns the rows in the given order
        rep = x > 0
        self.order = np.concatenate([np.flatnonzero(rep), np.flatnonzero(~rep)])
        self.n_rep = n_rep = int(rep.sum())
        self.rep_rows = slice(0, n_rep)
        self.x, self.tx, self.T = x[self.order], tx[self.order], T[self.order]
        w = np.ones(len(x)) if w is None else np.asarray(w, dtype=float)
        self.w = w[self.order]
        self.kz = Z.kz if isinstance(Z, _PatternRows) else Z.shape[1]
        # distinct values by hashing (pandas), sorted as np.unique's: no sort of the rows
        xinv, self.ux = pd.factorize(self.x, sort=True)
        self.xinv = xinv = xinv.astype(np.int64, copy=False)
        self.x_counts = np.bincount(xinv, weights=self.w, minlength=len(self.ux))
        # the distinct covariate patterns (z, w), once: zpat and wpat are their two halves
        pattern, inv = Z.distinct() if isinstance(Z, _PatternRows) else _covariate_patterns(Z, W)
        self.zpat, self.wpat = pattern[:, : self.kz], pattern[:, self.kz :]
        self.zinv = inv = inv[self.order]
        self.z_counts = np.bincount(inv, weights=self.w, minlength=len(pattern))
        # distinct (x, covariate pattern) pairs: the Beta-function terms are theirs
        pinv, pairs = pd.factorize(inv * len(self.ux) + xinv, sort=True)
        self.pinv = pinv.astype(np.int64, copy=False)
        self.pinv_rep = self.pinv[:n_rep]
        self.pair_x = self.ux[pairs % len(self.ux)]
        self.pair_w = pairs // len(self.ux)  # the pair's covariate pattern
        self.tx_rep, self.x_rep = self.tx[:n_rep], self.x[:n_rep]

    def _links(self, theta: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
        """r, b, log alpha per covariate pattern (log alpha - gamma' z) and a per (x, pattern)
        pair (a exp(delta' w)) at theta = (log r, log alpha, log a, log b, gamma, delta)."""
        kz = self.kz
        r, b = np.exp(theta[0]), np.exp(theta[3])
        la_pat = theta[1] - self.zpat @ theta[4 : 4 + kz]
        a_pair = np.exp(theta[2] + self.wpat @ theta[4 + kz :])[self.pair_w]
        return r, b, la_pat, a_pair

    def _beta_terms(self, b: float, a_pair: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per (x, covariate pattern) pair the log Beta-function ratios of the two terms,
        log B(a, b+x) / B(a, b) and log B(a+1, b+x-1) / B(a, b) (-inf without a repeat
        purchase: no second term)."""
        px = self.pair_x
        lbab = special.betaln(a_pair, b)
        b1 = special.betaln(a_pair, b + px) - lbab
        with np.errstate(invalid="ignore", divide="ignore"):
            b2 = np.where(
                px > 0, special.betaln(a_pair + 1, np.maximum(b + px - 1, 1e-300)) - lbab, -np.inf
            )
        return b1, b2

    def _terms(self, theta: np.ndarray) -> dict[str, Any]:
        """The pieces of the log-likelihood at theta = (log r, log alpha, log a, log b, gamma,
        delta): per row log alpha_i, t1 = log B-ratio_1 - (r+x) log(alpha_i + T) and, for repeat
        buyers (the first ``n_rep`` rows), t2 = log B-ratio_2 - (r+x) log(alpha_i + t_x); per
        pair a_p."""
        n_rep = self.n_rep
        r, b, la_pat, a_pair = self._links(theta)
        b1, b2 = self._beta_terms(b, a_pair)
        alpha_i = np.exp(la_pat)[self.zinv]
        rx = r + self.x
        aT = alpha_i + self.T
        l1 = np.log(aT)
        t1 = b1[self.pinv]
        t1 -= rx * l1
        a2 = alpha_i[:n_rep] + self.tx_rep
        l2 = np.log(a2)
        t2 = b2[self.pinv_rep]
        t2 -= rx[:n_rep] * l2
        return dict(r=r, b=b, la_pat=la_pat, a_pair=a_pair, alpha_i=alpha_i, rx=rx, aT=aT,
                    l1=l1, t1=t1, a2=a2, l2=l2, t2=t2)  # fmt: skip

    def loglik(self, theta: np.ndarray) -> np.ndarray:
        """Per-row log-likelihood log A_i + logaddexp(t1, t2) at theta, with
        log A_i = log G(r+x) - log G(r) + r log alpha_i (FHL 2005 eq. 6 at alpha_i, a_i), in the
        order of the rows given."""
        p = self._terms(theta)
        r, rep = p["r"], self.rep_rows
        log_a = (special.gammaln(r + self.ux) - special.gammaln(r))[self.xinv]
        out = p["t1"].copy()
        out[rep] = np.logaddexp(out[rep], p["t2"])
        ll = log_a + r * p["la_pat"][self.zinv] + out
        given = np.empty_like(ll)
        given[self.order] = ll
        return given

    def nll_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Negative log-likelihood (summed, each row counted `w` times) and its analytic
        gradient in theta = (log r, log alpha, log a, log b, gamma, delta): the derivatives of
        :meth:`_BGNBDData.nll_and_grad` at each customer's alpha_i, a_i, with w2_i = e^(t2 - L)
        the weight of the second term and s_1 = T, s_2 = t_x,
        dL_i/d log alpha_i = r - (r+x) alpha_i sum_j w_j / (alpha_i + s_j),
        dL_i/d log a_i = a_i sum_j w_j d log B-ratio_j / da (per pair), chained through the log
        links by one matrix product each: dL/d gamma = -Z' (dL/d log alpha_i),
        dL/d delta = W' (dL/d log a_i) (summed per distinct pattern first)."""
        r, b, la_pat, a_pair = self._links(theta)
        b1, b2 = self._beta_terms(b, a_pair)
        alpha_pat = np.exp(la_pat)
        n, n_rep, n_pat, n_pair = len(self.x), self.n_rep, len(self.zpat), len(self.pair_x)
        ll = float(self.x_counts @ (special.gammaln(r + self.ux) - special.gammaln(r)))
        ll += r * float(self.z_counts @ la_pat)
        d_r = float(self.x_counts @ (special.digamma(r + self.ux) - special.digamma(r)))
        d_r += float(self.z_counts @ la_pat)
        g_la_pat, W1, W2 = np.zeros(n_pat), np.zeros(n_pair), np.zeros(n_pair)
        # the rows a block at a time (repeat buyers first: a block's first k rows have the
        # second term), the sums per pattern and pair accumulated
        for rows in btyd.blocks(n, max(n_pat, n_pair)):
            lo = rows.start
            k = max(0, min(rows.stop, n_rep) - lo)
            zinv, pinv, w = self.zinv[rows], self.pinv[rows], self.w[rows]
            alpha_i = alpha_pat[zinv]
            rx = r + self.x[rows]
            aT = alpha_i + self.T[rows]
            l1 = np.log(aT)
            t1 = b1[pinv] - rx * l1
            a2 = alpha_i[:k] + self.tx[lo : lo + k]
            l2 = np.log(a2)
            t2 = b2[pinv[:k]] - rx[:k] * l2
            both = np.logaddexp(t1[:k], t2)
            ww2 = np.exp(t2 - both)  # weight of the second term; the first has 1 - it
            ww2 *= w[:k]  # times the row's count of customers
            ll += float(w[:k] @ both) + float(w[k:] @ t1[k:])
            ww1 = w.copy()
            ww1[:k] -= ww2
            d_r -= float(ww1 @ l1) + float(ww2 @ l2)
            # d L_i / d log alpha_i, times the row's count
            rx_alpha = rx * alpha_i
            g_la = w * r
            g_la -= rx_alpha * ww1 / aT
            g_la[:k] -= rx_alpha[:k] * ww2 / a2
            g_la_pat += np.bincount(zinv, weights=g_la, minlength=n_pat)
            # per (x, covariate pattern) pair: the two terms' customers
            W1 += np.bincount(pinv, weights=ww1, minlength=n_pair)
            W2 += np.bincount(pinv[:k], weights=ww2, minlength=n_pair)
        # the Beta-ratio derivatives per pair
        a, px, dg = a_pair, self.pair_x, special.digamma
        ab = dg(a + b)
        top = dg(a + b + px)
        d1a, d1b = ab - top, dg(b + px) - top - dg(b) + ab
        with np.errstate(invalid="ignore"):
            d2a = np.where(W2 > 0, 1 / a - top + ab, 0.0)
            d2b = np.where(W2 > 0, dg(np.maximum(b + px - 1, 1e-300)) - top - dg(b) + ab, 0.0)
        g_lap = a * (W1 * d1a + W2 * d2a)  # d L / d log a_p, per pair
        g_la_w = np.bincount(self.pair_w, weights=g_lap, minlength=len(self.wpat))
        d_b = float(W1 @ d1b + W2 @ d2b)
        grad = np.concatenate(
            [
                [d_r * r, g_la_pat.sum(), g_la_w.sum(), d_b * b],
                -(self.zpat.T @ g_la_pat),
                self.wpat.T @ g_la_w,
            ]
        )
        return -ll, -grad

    def nll_hess(self, theta: np.ndarray) -> np.ndarray:
        """The Hessian of :meth:`nll_and_grad`'s objective in theta = (log r, log alpha, log a,
        log b, gamma, delta), analytic: each row's Hessian in its own (log r, log alpha_i,
        log a_i, log b) (:func:`_bgnbd_hessian_rows`), summed per covariate pattern g into H_g,
        and chained through the log links, which are linear in theta: log alpha_g = log alpha -
        gamma' z_g and log a_g = log a + delta' w_g, so with J_g = d(u_g) / d theta,
        H = sum_g J_g' H_g J_g. One pass over the rows, where the central differences of the
        gradient take 2 (4 + k) (Fader & Hardie 2007's likelihood; held equal to those
        differences by ``tests/test_clv.py``)."""
        n_pat = len(self.zpat)
        r, b, la_pat, a_pair = self._links(theta)
        per = _bgnbd_hessian_sums(
            r, b, (la_pat, self.zinv), a_pair, self.pair_x, self.pinv,
            self.x, self.tx, self.T, self.w, 0, by=self.zinv, n_by=n_pat,
        )  # fmt: skip
        hp = _hessian_4x4(per)  # P x 4 x 4
        k = len(theta)
        jac = np.zeros((n_pat, 4, k))
        jac[:, 0, 0] = jac[:, 1, 1] = jac[:, 2, 2] = jac[:, 3, 3] = 1.0
        jac[:, 1, 4 : 4 + self.kz] = -self.zpat
        jac[:, 2, 4 + self.kz :] = self.wpat
        return -np.einsum("gak,gab,gbl->kl", jac, hp, jac)


def bgnbd_loglik(summary: pd.DataFrame, r: float, alpha: float, a: float, b: float) -> pd.Series:
    """Per-customer BG/NBD log-likelihood at fixed parameters (see :class:`_BGNBDData.loglik`),
    indexed like `summary`."""
    x, tx, T = btyd.columns(summary, ("frequency", "recency", "T"))
    _check_bgnbd_data(x, tx, T)
    ll = _BGNBDData(x, tx, T).loglik(r, alpha, a, b)
    return pd.Series(ll, index=summary.index, name="loglik")


def mbgnbd_loglik(summary: pd.DataFrame, r: float, alpha: float, a: float, b: float) -> pd.Series:
    """Per-customer MBG/NBD log-likelihood at fixed parameters (see
    :class:`_BGNBDData.mbg_loglik`), indexed like `summary`."""
    x, tx, T = btyd.columns(summary, ("frequency", "recency", "T"))
    _check_bgnbd_data(x, tx, T)
    ll = _BGNBDData(x, tx, T).mbg_loglik(r, alpha, a, b)
    return pd.Series(ll, index=summary.index, name="loglik")


#: From this many customers on, the purchase and spend models are fitted with their analytic
#: gradients and tight tolerances: every fit, since the numerical-gradient path stops about 1e-4
#: (relative) short of the optimum at a point that depends on the CPU's floating point (BG/NBD b
#: 3.7874 on one machine, above 3.7875 on another, on the bundled company); the analytic path
#: finds the optimum to about 1e-8 on any machine. Tests set it high to compare the two paths.
ANALYTIC_MIN_N = 0


#: The boundaries of the BG/NBD's and MBG/NBD's parameter space with a well-defined limit
#: (:class:`helpers.btyd.Limit`; :func:`helpers.btyd.fit_log_params` stops there): Poisson
#: purchases at one rate (r, alpha -> infinity), no dropout (the mean dropout probability
#: a / (a + b) -> 0: a -> 0 or b -> infinity; the NBD), one dropout probability for everyone
#: (a, b -> infinity with a / (a + b) fixed). The canonical points: r = e^8; a = e^-10 with
#: b = e^10 (a mean dropout probability of e^-20 a purchase); a = e^8.
BGNBD_LIMITS = (
    btyd.NO_RATE_HETEROGENEITY,
    btyd.Limit("no dropout", {"a": -1.0, "b": 1.0}, {"a": -10.0, "b": 10.0}, ("a", "b")),
    btyd.Limit(
        "dropout probability without heterogeneity", {"a": 1.0}, {"a": 8.0}, ("a", "b"), {"b": 1.0}
    ),
)


def fit_bgnbd(
    summary: pd.DataFrame,
    time_unit: str | None = None,
    weights: str | np.ndarray | pd.Series | None = None,
) -> ModelFit:
    """Maximum-likelihood BG/NBD fit on columns ``frequency``, ``recency``, ``T``.

    Fitted on the distinct (x, t_x, T) rows with their counts (:func:`helpers.btyd.distinct_rows`;
    `weights`: counts of identical customers per summary row, a column name or values): the same
    optimum as one row per customer, at the cost of the distinct patterns. ``fit.n`` is the
    number of customers, ``fit.extra`` has ``patterns`` (distinct rows) and ``resolution`` (of
    t_x and T: ``summary.attrs["resolution"]``, see :func:`helpers.btyd.at_resolution`, else
    "as given").

    Returns a :class:`ModelFit` with ``r``, ``alpha`` (per `time_unit`, default
    ``summary.attrs['time_unit']``), ``a``, ``b``, ``loglik`` and Wald CIs (``summary()``).
    Known answer: on the CDNOW sample (weeks) r = 0.243, alpha = 4.414, a = 0.793, b = 2.426,
    LL = -9582.4 (Fader, Hardie & Lee 2005).

    Where the likelihood rises to a limit of the model (:data:`BGNBD_LIMITS`: uniform purchases,
    one rate for everyone and nobody leaving), the fit stops at the boundary and says so:
    ``fit.extra["boundary"]`` names the limits and the parameters that diverge, the parameters
    are the limits' canonical points and the others' optimum there, so the predictions are the
    limit's (:func:`helpers.btyd.fit_log_params`).
    """
    return _fit_purchases(summary, time_unit, "BG/NBD", weights)


def fit_mbgnbd(
    summary: pd.DataFrame,
    time_unit: str | None = None,
    weights: str | np.ndarray | pd.Series | None = None,
) -> ModelFit:
    """Maximum-likelihood MBG/NBD fit (Batislam, Denizel & Filiztekin 2007) on ``frequency``,
    ``recency``, ``T``: the BG/NBD in which one-time buyers can have left. Known answer: on the
    CDNOW sample (weeks) r = 0.525, alpha = 6.183, a = 0.891, b = 1.614 (R package BTYDplus).
    Fitted on the distinct (x, t_x, T) rows with their counts, and stopped at a limit of
    :data:`BGNBD_LIMITS` when the likelihood rises to one, as :func:`fit_bgnbd`."""
    return _fit_purchases(summary, time_unit, "MBG/NBD", weights)


def _fit_purchases(
    summary: pd.DataFrame,
    time_unit: str | None,
    model: str,
    weights: str | np.ndarray | pd.Series | None = None,
) -> ModelFit:
    """Maximum likelihood of the BG/NBD or MBG/NBD on the summary's distinct (x, t_x, T) rows
    weighted by their counts, from a start where the mean purchase rate r / alpha matches the
    data's and a = b = r = 1."""
    x, tx, T = btyd.columns(summary, ("frequency", "recency", "T"))
    _check_bgnbd_data(x, tx, T)
    unit = time_unit or summary.attrs.get("time_unit", "?")
    (x, tx, T), w, patterns = btyd.fit_rows(
        x, tx, T, weights=btyd.weights_of(summary, weights), grid=btyd.time_grid(summary)
    )
    data = _BGNBDData(x, tx, T, w)
    loglik = data.mbg_loglik if model == "MBG/NBD" else data.loglik

    def nll(theta: np.ndarray) -> float:
        return -float(w @ loglik(*np.exp(theta)))

    def nll_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        return data.nll_and_grad(theta, model == "MBG/NBD")

    n = float(w.sum())
    rate = max(float(w @ x) / n, 0.05) / (float(w @ T) / n)
    x0 = np.log([1.0, 1.0 / rate, 1.0, 1.0])
    fit = btyd.fit_log_params(
        nll, x0, ["r", "alpha", "a", "b"], model, int(round(n)), unit, nll_grad,
        n >= ANALYTIC_MIN_N, coarse=_coarse(_BGNBDData, (x, tx, T), w, model == "MBG/NBD"),
        limits=BGNBD_LIMITS, nll_hess=lambda theta: data.nll_hess(theta, model == "MBG/NBD"),
    )  # fmt: skip
    fit.extra.update(
        patterns=patterns,
        rows_fitted=len(w),
        resolution=summary.attrs.get("resolution", "as given"),
    )
    return fit


def _coarse(
    data_class: type,
    cols: tuple[np.ndarray, ...],
    w: np.ndarray,
    *args: Any,
    groups: np.ndarray | None = None,
):
    """The objective (``nll_and_grad``) of a large fit's coarse stage: `data_class`
    (:class:`_BGNBDData`, :class:`_GGData`, :class:`_BGNBDCovData`) on the rows and counts of
    :func:`helpers.btyd.coarse_rows` (every k-th row, counts scaled to all the customers, within
    `groups` when given), so that its optimum and Hessian approximate the full fit's; None for a
    fit small enough to run on all its rows from the start. `args` go to ``nll_and_grad`` after
    theta."""
    sub = btyd.coarse_rows(w, groups)
    if sub is None:
        return None
    rows, ws = sub
    data = data_class(*(c[rows] for c in cols), ws)
    return lambda theta: data.nll_and_grad(theta, *args)


#: The purchase models a report can choose between, by name: the BG/NBD and MBG/NBD of this
#: module and the Pareto/NBD of :mod:`helpers.pareto_nbd`. The prediction functions of this module
#: (:func:`p_alive`, :func:`expected_purchases`, :func:`expected_purchases_new`,
#: :func:`predictive_clv`, :func:`evaluate_holdout`, :func:`tracking`) take a fit of any of them.
PURCHASE_MODELS = {
    "BG/NBD": fit_bgnbd,
    "MBG/NBD": fit_mbgnbd,
    "Pareto/NBD": pareto_nbd.fit_pareto_nbd,
}


def fit_bgnbd_covariates(
    summary: pd.DataFrame,
    purchase: pd.DataFrame | None = None,
    dropout: pd.DataFrame | None = None,
    time_unit: str | None = None,
    start: ModelFit | None = None,
) -> ModelFit:
    """Maximum-likelihood BG/NBD with time-invariant covariates (Fader & Hardie 2007,
    "Incorporating time-invariant covariates into the Pareto/NBD and BG/NBD models"; the
    parametrization of R's CLVTools for the purchase process):

        alpha_i = alpha exp(-gamma' z_i)   (purchase rate lambda_i ~ Gamma(r, alpha_i): its mean
                                            r / alpha_i is exp(gamma' z_i) times the base's),
        a_i = a exp(delta' w_i)            (dropout p_i ~ Beta(a_i, b): a larger a_i, more dropout),

    z_i the `purchase` covariates and w_i the `dropout` covariates of customer i (DataFrames of
    numbers indexed like `summary`; dummy-code a category, e.g. ``pd.get_dummies(channel,
    drop_first=True, dtype=float)``). The likelihood of each customer is the BG/NBD's (FHL 2005
    eq. 6) at their own alpha_i, a_i, evaluated in one pass over the customers with its analytic
    gradient chained through the log-links (:class:`_BGNBDCovData`; the Beta-function terms once
    per distinct (frequency, covariates)), so the cost grows with the customers, not with
    customers x covariate patterns.

    Returns a :class:`ModelFit` (model ``"BG/NBD+covariates"``) with r, alpha, a, b (the base: all
    covariates 0) and, per covariate, ``rate_multiplier[name]`` = exp(gamma) and
    ``a_multiplier[name]`` = exp(delta), all positive with Wald CIs on the log scale
    (``summary()``); ``extra`` holds the covariate names. Without covariates it is
    :func:`fit_bgnbd`. :func:`covariate_effects` turns the fit into multipliers of the mean
    purchase rate and of the mean dropout probability.

    Fitted on the distinct (x, t_x, T, covariate pattern) rows with their counts
    (:func:`helpers.btyd.fit_rows`: when they are at most 90 % of the customers; the weighted
    log-likelihood is the same sum), ``extra["rows_fitted"]`` saying how many. `start`: a BG/NBD
    fit without covariates on the same customers (the likelihood-ratio test's restricted model),
    whose r, alpha, a, b with all coefficients 0 start the optimizer (the nested model: the
    optimum is near when the effects are small), else r = a = b = 1 and the data's mean rate.
    The optimizer's optimum (:func:`helpers.btyd.fit_log_params`) is then refined by one Newton
    step with its observed information, theta - H^-1 g, kept when it lowers the largest
    gradient component: L-BFGS-B stops about 1e-7 (relative) short of the optimum at a point
    that depends on where it started; after the step the fit is the same to about 1e-10 from
    either start (``tests/test_clv.py::test_the_covariate_fit_from_the_plain_bgnbd_equals_the_fit_from_the_default_start``)."""
    x, tx, T = btyd.columns(summary, ("frequency", "recency", "T"))
    _check_bgnbd_data(x, tx, T)
    unit = time_unit or summary.attrs.get("time_unit", "?")
    Z = btyd.covariate_matrix(summary, purchase, "purchase")
    # the same covariates on both processes (the report's): one matrix, not two copies
    W = Z if dropout is purchase else btyd.covariate_matrix(summary, dropout, "dropout")
    kz, kw = Z.shape[1], W.shape[1]
    pattern, code = _covariate_patterns(Z, W)
    del Z, W  # the rows' covariates are their patterns from here on
    if len(pd.unique(T)) > btyd.MAX_DISTINCT_SHARE * len(T):
        # the rows cannot group (a row is distinct where its T is): fit_rows would keep them
        (xf, txf, Tf, cf), w = (x, tx, T, code), np.ones(len(x))
    else:
        (xf, txf, Tf, cf), w, _ = btyd.fit_rows(x, tx, T, code)
    cf = np.asarray(cf).astype(np.int64, copy=False)
    patterns = _PatternRows(pattern, cf, kz)  # for Z and W: no rows x k matrix gathered
    cols = (xf, txf, Tf, patterns, patterns)
    data = _BGNBDCovData(*cols, w)
    nll_grad = data.nll_and_grad
    if start is not None and start.model == "BG/NBD":
        base = np.log([start.params[k] for k in ("r", "alpha", "a", "b")])
    else:
        rate = max(x.mean(), 0.05) / T.mean()
        base = np.log([1.0, 1.0 / rate, 1.0, 1.0])
    x0 = np.concatenate([base, np.zeros(kz + kw)])
    zn = [f"rate_multiplier[{c}]" for c in (purchase.columns if kz else [])]
    wn = [f"a_multiplier[{c}]" for c in (dropout.columns if kw else [])]
    fit = btyd.fit_log_params(
        lambda th: nll_grad(th)[0], x0, ["r", "alpha", "a", "b", *zn, *wn], "BG/NBD+covariates",
        len(x), unit, nll_grad, coarse=_coarse(_BGNBDCovData, cols, w, groups=cf),
        nll_hess=data.nll_hess,
    )  # fmt: skip
    if fit.extra["optimizer"] == "L-BFGS-B":  # Newton steps found the other path's optimum
        fit = _newton_step(fit, nll_grad)
    fit.extra.update(
        purchase_covariates=list(purchase.columns) if kz else [],
        dropout_covariates=list(dropout.columns) if kw else [],
        rows_fitted=len(w),
    )
    return fit


def _newton_step(fit: ModelFit, nll_grad: Callable) -> ModelFit:
    """`fit` moved by one Newton step on its log-parameters theta: theta - Sigma g, with g the
    analytic gradient of the negative log-likelihood at theta and Sigma = ``fit.cov_log`` the
    inverse observed information there (Nocedal & Wright 2006, eq. 3.30), kept when the largest
    gradient component falls and the parameters stay inside the optimizer's bounds (|theta| <=
    15); ``cov_log`` stays the one at the optimizer's point (the step is ~1e-7 relative, below
    the covariance's own precision)."""
    if not np.all(np.isfinite(fit.cov_log)):
        return fit
    theta = np.log(list(fit.params.values()))
    f0, g0 = nll_grad(theta)
    new = theta - fit.cov_log @ np.asarray(g0, dtype=float)
    if not np.all(np.abs(new) <= 15):
        return fit
    f1, g1 = nll_grad(new)
    if not (np.isfinite(f1) and np.max(np.abs(g1)) < np.max(np.abs(g0))):
        return fit
    params = dict(zip(fit.params, np.exp(new).tolist(), strict=True))
    return ModelFit(fit.model, params, float(-f1), fit.n, fit.time_unit, fit.cov_log,
                    fit.converged, dict(fit.extra))  # fmt: skip


def covariate_effects(
    fit: ModelFit, level: float = 0.95, n_draws: int = 4000, seed: int = 0
) -> pd.DataFrame:
    """The effects of a :func:`fit_bgnbd_covariates` fit as a customer-facing table, one row per
    covariate (a unit change of it, the others fixed): ``process`` (purchase or dropout) and
    ``multiplier`` with its `level` interval -- for a purchase covariate the multiplier of the
    mean purchase rate r / alpha_i, exp(gamma) (Wald, log scale); for a dropout covariate the
    multiplier of the mean dropout probability after a purchase,
    [a e^delta / (a e^delta + b)] / [a / (a + b)], its interval the percentiles of a seeded
    parametric bootstrap (:func:`helpers.btyd.sample_log_params`, `n_draws` draws)."""
    if fit.model != "BG/NBD+covariates":
        raise ValueError(f"not a BG/NBD fit with covariates: {fit.model!r}")
    table = fit.summary(level)
    rows = []
    for name in fit.extra.get("purchase_covariates", []):
        row = table.loc[f"rate_multiplier[{name}]"]
        rows.append({"covariate": name, "process": "purchase", "multiplier": row["estimate"],
                     "ci_low": row["ci_low"], "ci_high": row["ci_high"]})  # fmt: skip
    names = list(fit.params)
    draws = (
        btyd.sample_log_params(fit, n_draws, seed) if fit.extra.get("dropout_covariates") else None
    )
    for name in fit.extra.get("dropout_covariates", []):
        j = names.index(f"a_multiplier[{name}]")

        def ratio(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> np.ndarray:
            return (a * m / (a * m + b)) / (a / (a + b))

        point = float(ratio(np.array(fit.a), np.array(fit.b), np.array(fit.params[names[j]])))
        sims = ratio(draws[:, 2], draws[:, 3], draws[:, j])
        lo, hi = np.quantile(sims, [(1 - level) / 2, (1 + level) / 2])
        rows.append({"covariate": name, "process": "dropout", "multiplier": point,
                     "ci_low": float(lo), "ci_high": float(hi)})  # fmt: skip
    return pd.DataFrame(rows, columns=["covariate", "process", "multiplier", "ci_low", "ci_high"])


def nbd_loglik(summary: pd.DataFrame, r: float, alpha: float) -> pd.Series:
    """Per-customer NBD log-likelihood (Ehrenberg 1959; Morrison & Schmittlein 1988): Poisson
    purchases at rate lambda ~ Gamma(r, alpha) and no dropout, the timing likelihood of x repeat
    purchases in (0, T],

        L = G(r+x)/G(r) alpha^r / (alpha+T)^(r+x),

    the BG/NBD's (and the Pareto/NBD's) likelihood in the limit of no dropout (b -> infinity;
    beta -> infinity), on the same scale, so the log-likelihoods compare. Indexed like `summary`."""
    x, tx, T = btyd.columns(summary, ("frequency", "recency", "T"))
    _check_bgnbd_data(x, tx, T)
    ll = (
        special.gammaln(r + x)
        - special.gammaln(r)
        + r * np.log(alpha)
        - (r + x) * np.log(alpha + T)
    )
    return pd.Series(ll, index=summary.index, name="loglik")


def fit_nbd(summary: pd.DataFrame, time_unit: str | None = None) -> ModelFit:
    """Maximum-likelihood NBD fit (r, alpha; no dropout) on ``frequency``, ``recency``, ``T``:
    the benchmark every BTYD model with a dropout process extends (Fader & Hardie 2004, "Illustrating
    the performance of the NBD as a benchmark model for customer-base analysis"). Gradient:
    dL/dr = psi(r+x) - psi(r) + log alpha - log(alpha+T), dL/dalpha = r/alpha - (r+x)/(alpha+T)."""
    x, tx, T = btyd.columns(summary, ("frequency", "recency", "T"))
    _check_bgnbd_data(x, tx, T)
    unit = time_unit or summary.attrs.get("time_unit", "?")

    def nll_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha = np.exp(theta)
        aT = alpha + T
        ll = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) - (r + x) * np.log(aT)
        d_r = special.digamma(r + x) - special.digamma(r) + np.log(alpha) - np.log(aT)
        d_a = r / alpha - (r + x) / aT
        return -float(ll.sum()), -np.array([d_r.sum() * r, d_a.sum() * alpha])

    rate = max(x.mean(), 0.05) / T.mean()
    x0 = np.log([1.0, 1.0 / rate])
    return btyd.fit_log_params(
        lambda th: nll_grad(th)[0], x0, ["r", "alpha"], "NBD", len(x), unit, nll_grad,
        len(x) >= ANALYTIC_MIN_N, limits=(btyd.NO_RATE_HETEROGENEITY,),
    )  # fmt: skip


#: The nested pairs of :func:`model_selection`: (restricted, full, restrictions, on the boundary?,
#: what the restriction says).
NESTED_TESTS: tuple[tuple[str, str, int, bool, str], ...] = (
    ("NBD", "BG/NBD", 1, True, "no dropout: p = 0 for everyone (b -> infinity)"),
    ("NBD", "MBG/NBD", 1, True, "no dropout: p = 0 for everyone (b -> infinity)"),
    ("NBD", "Pareto/NBD", 1, True, "no dropout: mu = 0 for everyone (beta -> infinity)"),
)


def model_selection(
    summary: pd.DataFrame, fits: dict[str, ModelFit] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Choosing a purchase model honestly on one summary: the information criteria of every fit
    and the likelihood-ratio tests where the models are nested.

    `fits`: fitted models of the same customers by name; default the NBD (:func:`fit_nbd`), the
    BG/NBD, the MBG/NBD and the Pareto/NBD fitted here. Returns

    * criteria (:func:`helpers.btyd.information_criteria`): loglik, n_params, n, aic, bic, their
      differences to the best and the Akaike weights, one row per model, by AIC;
    * tests (:func:`helpers.btyd.lr_test`), one row per nested pair of :data:`NESTED_TESTS`
      present in `fits`: the NBD is each dropout model without dropout. That restriction is on the
      boundary of the parameter space (a dropout probability or rate of 0 for everyone is the
      limit b -> infinity, beta -> infinity), so the p-value is the chi-bar-square mixture
      0.5 chi2(0) + 0.5 chi2(1) (Self & Liang 1987), half the naive chi2(1) one (also given).
      Under that null the other dropout parameter (a; s) is not identified (Davies 1977), so
      the mixture is the usual approximation, not an exact law.

    BG/NBD, MBG/NBD and Pareto/NBD are not nested in one another: between them only the
    criteria (and the holdout check of :func:`compare_purchase_models`) speak. The criteria and
    tests judge the fit to the calibration data; the holdout check judges the forecasts."""
    if fits is None:
        fits = {
            "NBD": fit_nbd(summary),
            **{name: f(summary) for name, f in PURCHASE_MODELS.items()},
        }
    criteria = btyd.information_criteria(fits)
    rows = [
        {**btyd.lr_test(fits[lo], fits[hi], df, boundary), "restriction": what}
        for lo, hi, df, boundary, what in NESTED_TESTS
        if lo in fits and hi in fits
    ]
    cols = ["restricted", "full", "restriction", "lr", "df", "boundary", "p_value", "naive_p_value"]
    tests = pd.DataFrame(rows, columns=cols)
    return criteria, tests


def gamma_gamma_loglik(summary: pd.DataFrame, p: float, q: float, gamma: float) -> pd.Series:
    """Per-customer Gamma-Gamma log-likelihood of the mean spend m of x repeat purchases
    (Hardie 2013): m | nu ~ Gamma(p x, rate nu x), nu ~ Gamma(q, rate gamma), so
    log f = lnG(px+q) - lnG(px) - lnG(q) + q ln gamma + (px-1) ln m + px ln x - (px+q) ln(gamma + m x),
    indexed like `summary` (repeat customers only: anything else raises ValueError).
    """
    x, m = _repeat_spend(summary)
    return pd.Series(_gg_loglik(x, m, p, q, gamma), index=summary.index, name="loglik")


def _gg_loglik(x: np.ndarray, m: np.ndarray, p: float, q: float, gamma: float) -> np.ndarray:
    return _GGData(x, m).loglik(p, q, gamma)


class _GGData:
    """The Gamma-Gamma data with the parameter-free parts computed once (log m, log x, m x) and
    the gamma functions evaluated on the distinct repeat counts only: the same numbers as the
    formula of :func:`gamma_gamma_loglik` term by term, at a fraction of the cost per
    evaluation of the optimizer."""

    def __init__(self, x: np.ndarray, m: np.ndarray, w: np.ndarray | None = None):
        self.x = x
        self.w = np.ones(len(x)) if w is None else np.asarray(w, dtype=float)
        self.ux, self.inv = np.unique(x, return_inverse=True)
        self.inv = self.inv.reshape(-1)
        self.log_m, self.log_x, self.mx = np.log(m), np.log(x), m * x
        self.counts = np.bincount(self.inv, weights=self.w, minlength=len(self.ux))
        self.wx = self.w * x
        self.sum_x_logs = float(self.wx @ (self.log_m + self.log_x))

    def nll_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Negative log-likelihood and its gradient in theta = log(p, q, gamma):
        dL/dp = x (psi(px+q) - psi(px) + log m + log x - log(gamma + m x)),
        dL/dq = psi(px+q) - psi(q) + log gamma - log(gamma + m x),
        dL/dgamma = q/gamma - (px+q)/(gamma + m x), summed over customers (each row `w` times)."""
        p, q, gamma = np.exp(theta)
        ux, w = self.ux, self.w
        n = float(w.sum())
        psi_pq = special.digamma(p * ux + q)
        d_p = float(self.counts @ (ux * (psi_pq - special.digamma(p * ux))))
        d_p += self.sum_x_logs
        d_q = float(self.counts @ psi_pq) - n * special.digamma(q) + n * np.log(gamma)
        d_g = n * q / gamma
        ll = 0.0
        for rows in btyd.blocks(len(self.x)):  # temporaries of one block each
            wr, gm = w[rows], gamma + self.mx[rows]
            lg = np.log(gm)
            ll += float(wr @ self.loglik(p, q, gamma, rows))
            d_p -= float(self.wx[rows] @ lg)
            d_q -= float(wr @ lg)
            d_g -= float(wr @ ((p * self.x[rows] + q) / gm))
        return -ll, -np.array([d_p * p, d_q * q, d_g * gamma])

    def loglik(self, p: float, q: float, gamma: float, rows: slice = slice(None)) -> np.ndarray:
        """Per-row log-likelihood (Fader, Hardie & Lee 2005, JMR; :func:`gamma_gamma_loglik`)
        of the rows given (all by default)."""
        pu = p * self.ux  # p x of each distinct x: the same products as p * x row by row
        px = p * self.x[rows]
        inv = self.inv[rows]
        return (
            special.gammaln(pu + q)[inv]
            - special.gammaln(pu)[inv]
            - special.gammaln(q)
            + q * np.log(gamma)
            + (px - 1) * self.log_m[rows]
            + px * self.log_x[rows]
            - (px + q) * np.log(gamma + self.mx[rows])
        )


def _repeat_spend(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    x, m = btyd.columns(summary, ("frequency", "monetary_value"))
    bad = (x <= 0) | ~(m > 0)
    if bad.any():
        raise ValueError(
            f"the Gamma-Gamma model needs repeat customers with positive spend: {int((x <= 0).sum())} rows have frequency 0 "
            f"and {int((~(m > 0) & (x > 0)).sum())} repeat rows have monetary_value <= 0 or missing; "
            "fit on summary[(summary.frequency > 0) & (summary.monetary_value > 0)]"
        )
    return x, m


#: The Gamma-Gamma's boundaries with a well-defined limit (:class:`helpers.btyd.Limit`): a
#: customer's spends without spread around their mean (p -> infinity, gamma -> 0 with the mean
#: p gamma / (q - 1) fixed) and one mean spend for every customer (q, gamma -> infinity).
#: Canonical points p = e^8, q = e^8.
GAMMA_GAMMA_LIMITS = (
    btyd.Limit(
        "spend per order without spread", {"p": 1.0}, {"p": 8.0}, ("p", "gamma"), {"gamma": -1.0}
    ),
    btyd.Limit(
        "mean spend without heterogeneity", {"q": 1.0}, {"q": 8.0}, ("q", "gamma"), {"gamma": 1.0}
    ),
)


def fit_gamma_gamma(
    summary: pd.DataFrame, weights: str | np.ndarray | pd.Series | None = None
) -> ModelFit:
    """Maximum-likelihood Gamma-Gamma fit on ``frequency`` and ``monetary_value`` of repeat
    customers (frequency > 0, monetary_value > 0; anything else raises ValueError). Returns a
    :class:`ModelFit` with ``p``, ``q``, ``gamma``. Known answer: CDNOW repeat buyers (946)
    p = 6.25, q = 3.74, gamma = 15.44. A fit with q <= 1 (infinite mean spend) raises ValueError.
    Check the independence of spend and frequency with :func:`spend_frequency_check` or
    :func:`gamma_gamma_independence`. Fitted on the distinct (x, mean spend) rows with their
    counts (:func:`helpers.btyd.distinct_rows`; `weights` as in :func:`fit_bgnbd`): the same
    optimum as one row per customer; ``fit.extra["patterns"]`` is the number of distinct rows.
    Spend with no heterogeneity between customers (every order's amount from one distribution)
    has its supremum at a limit (:data:`GAMMA_GAMMA_LIMITS`): the fit stops there and says so
    in ``fit.extra["boundary"]``, as :func:`fit_bgnbd`."""
    x, m = _repeat_spend(summary)
    (x, m), w, patterns = btyd.fit_rows(x, m, weights=btyd.weights_of(summary, weights))
    data = _GGData(x, m, w)

    def nll(theta: np.ndarray) -> float:
        return -float(w @ data.loglik(*np.exp(theta)))

    n = float(w.sum())
    x0 = np.log([1.0, 2.0, float(w @ m) / n])
    fit = btyd.fit_log_params(
        nll, x0, ["p", "q", "gamma"], "Gamma-Gamma", int(round(n)), "-", data.nll_and_grad,
        n >= ANALYTIC_MIN_N, coarse=_coarse(_GGData, (x, m), w), limits=GAMMA_GAMMA_LIMITS,
    )  # fmt: skip
    fit.extra.update(patterns=patterns, rows_fitted=len(w))
    if fit.q <= 1:
        raise ValueError(
            f"the Gamma-Gamma fit has q = {fit.q:.3g} <= 1 (p = {fit.p:.3g}, gamma = {fit.gamma:.3g}): "
            "the model's mean spend per transaction p gamma / (q - 1) is infinite (the spend is "
            "too heavy-tailed for it), so its expected spend and CLV cannot be used; look at the "
            "largest spenders (outliers, wholesale buyers) or use the customers' historical mean spend"
        )
    return fit


def spend_frequency_check(summary: pd.DataFrame) -> dict[str, float]:
    """The Gamma-Gamma assumption that spend is independent of purchase frequency, checked
    among repeat customers: Pearson and Spearman correlation of frequency and monetary_value,
    with p-values. |r| below about 0.1 is usually taken as fine (Fader & Hardie's CDNOW: 0.11)."""
    x, m = _repeat_spend(summary)
    pr = stats.pearsonr(x, m)
    sr = stats.spearmanr(x, m)
    return {"n": int(len(x)), "pearson_r": float(pr.statistic), "pearson_p": float(pr.pvalue),
            "spearman_rho": float(sr.statistic), "spearman_p": float(sr.pvalue)}  # fmt: skip


def gamma_gamma_independence(
    summary: pd.DataFrame, level: float = 0.95, threshold: float = 0.1
) -> dict[str, float | str]:
    """The Gamma-Gamma independence check (Fader, Hardie & Lee 2005, JMR; Hardie 2013): the
    Pearson correlation of ``frequency`` and ``monetary_value`` among repeat customers with its
    `level` confidence interval (Fisher's z: tanh(atanh(r) -+ z / sqrt(n - 3)), scipy's
    ``pearsonr(...).confidence_interval``). The verdict compares the interval with +-`threshold`
    (|r| below about 0.1 is the usual rule; CDNOW: 0.11): "weak" when the whole interval lies
    inside, "correlated" when it lies wholly outside (use the model with care, or a model with
    spend depending on frequency), otherwise "inconclusive". Returns n, pearson_r, ci_low,
    ci_high, p_value, level and verdict."""
    x, m = _repeat_spend(summary)
    if len(x) < 4:
        raise ValueError(f"the independence check needs at least 4 repeat customers, got {len(x)}")
    res = stats.pearsonr(x, m)
    ci = res.confidence_interval(confidence_level=level)
    lo, hi = float(ci.low), float(ci.high)
    if -threshold < lo and hi < threshold:
        verdict = "weak"
    elif lo >= threshold or hi <= -threshold:
        verdict = "correlated"
    else:
        verdict = "inconclusive"
    return {"n": int(len(x)), "pearson_r": float(res.statistic), "ci_low": lo, "ci_high": hi,
            "p_value": float(res.pvalue), "level": level, "verdict": verdict}  # fmt: skip


def _is_mbg(fit: ModelFit) -> bool:
    """True for an MBG/NBD fit, False for a BG/NBD fit; ValueError for anything else (the
    formulas of this module are the BG/NBD family's; the Pareto/NBD is dispatched before)."""
    if fit.model not in PURCHASE_MODELS or fit.model == "Pareto/NBD":
        raise ValueError(f"not a BG/NBD or MBG/NBD fit: {fit.model!r}")
    return fit.model == "MBG/NBD"


def _is_pareto(fit: ModelFit) -> bool:
    return fit.model == "Pareto/NBD"


def expected_purchases_new(fit: ModelFit, t: float | np.ndarray) -> np.ndarray:
    """E[X(t)] for a new customer over (0, t]. BG/NBD (FHL 2005 eq. 9):
    (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))];
    MBG/NBD (Batislam et al. 2007): b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))];
    Pareto/NBD: :func:`helpers.pareto_nbd.expected_purchases_new`."""
    if _is_pareto(fit):
        return pareto_nbd.expected_purchases_new(fit, t)
    r, alpha, a, b = fit.r, fit.alpha, fit.a, fit.b
    t = np.asarray(t, dtype=float)
    if _is_mbg(fit):
        hyp = special.hyp2f1(r, b + 1, a + b, t / (alpha + t))
        return b / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp)
    hyp = special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp)


def _new_cum(model: str, P: np.ndarray, t: np.ndarray) -> np.ndarray:
    """E[X(t)] of a new customer for many parameter sets at once: P (draws x 4, the fit's
    parameter order), t (horizons) -> draws x horizons. The formulas of
    :func:`expected_purchases_new` (BG/NBD FHL 2005 eq. 9; MBG/NBD; Pareto/NBD)."""
    c0, c1, c2, c3 = (P[:, j][:, None] for j in range(4))
    t = np.asarray(t, dtype=float)[None, :]
    if model == "Pareto/NBD":  # r, alpha, s, beta
        r, alpha, s, beta = c0, c1, c2, c3
        u = np.log1p(t / beta)
        sm1 = s - 1
        near = np.abs(sm1) < 1e-10
        safe = np.where(near, 1.0, sm1)
        alive = np.where(near, beta * u, beta * -np.expm1(-sm1 * u) / safe)
        return r / alpha * alive
    r, alpha, a, b = c0, c1, c2, c3
    z = t / (alpha + t)
    lead = r * np.log(alpha / (alpha + t))
    if model == "MBG/NBD":
        return b / (a - 1) * (1 - np.exp(lead) * special.hyp2f1(r, b + 1, a + b, z))
    return (a + b - 1) / (a - 1) * (1 - np.exp(lead) * special.hyp2f1(r, b, a + b - 1, z))


def new_customer_purchases(fit: ModelFit, t: float | np.ndarray) -> pd.Series:
    """Expected repeat purchases of a customer acquired today (time 0) over (0, t], for each
    horizon t in the fit's time unit (CLVTools' ``newcustomer()``), a Series indexed by the
    horizon and named after the model: :func:`expected_purchases_new`, i.e. BG/NBD
    (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))] (Fader, Hardie & Lee
    2005, eq. 9), MBG/NBD b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))]
    (Batislam et al. 2007), Pareto/NBD r beta/(alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]
    (Schmittlein et al. 1987). The first purchase (the acquisition) is not counted."""
    tt = np.atleast_1d(np.asarray(t, dtype=float))
    if tt.ndim != 1 or np.any(~np.isfinite(tt) | (tt < 0)):
        raise ValueError(f"horizons must be finite and >= 0, got {t!r}")
    values = np.atleast_1d(np.asarray(expected_purchases_new(fit, tt), dtype=float))
    return pd.Series(values, index=pd.Index(tt, name="horizon"), name=fit.model)


def _new_margin(
    model: str, P: np.ndarray, G: np.ndarray, t: np.ndarray, disc: np.ndarray, m: float, c: float,
    first: bool,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Discounted margin and undiscounted repeat purchases of a new customer per parameter draw
    (rows of P for the purchase model, of G = (p, q, gamma) for the spend model)."""
    cum = _new_cum(model, P, t)
    per_month = np.diff(cum, axis=1, prepend=0.0)
    p, q, g = G[:, 0], G[:, 1], G[:, 2]
    spend = np.where(q > 1, p * g / np.where(q > 1, q - 1, 1.0), np.inf)
    per_order = m * spend - c
    return per_order * ((1.0 if first else 0.0) + per_month @ disc), cum[:, -1]


def _quantile_se(draws: np.ndarray, prob: float) -> float:
    """Monte Carlo standard error of the sample `prob`-quantile, distribution-free: half the
    distance between the order statistics one binomial standard deviation either side of
    n prob (the order-statistic interval for a quantile, e.g. Hyndman & Fan 1996)."""
    n = len(draws)
    xs = np.sort(draws)
    sd = np.sqrt(n * prob * (1 - prob))
    lo = int(np.clip(np.floor(n * prob - sd), 0, n - 1))
    hi = int(np.clip(np.ceil(n * prob + sd), 0, n - 1))
    return float((xs[hi] - xs[lo]) / 2)


def new_customer_value(
    purchases: ModelFit,
    gg: ModelFit,
    econ: Economics = economics.SAMPLE,
    margin_rate: float | None = None,
    cost_per_order: float = 0.0,
    include_first: bool = True,
    level: float = 0.95,
    seed: int = 0,
    min_draws: int = 4000,
    max_draws: int = 512_000,
) -> dict[str, float | int | str]:
    """What a customer acquired today is expected to bring over ``econ.horizon_months``: the
    number a customer-acquisition cost is compared with (CLVTools' ``newcustomer()``, with
    margin). Under the BG/NBD, MBG/NBD or Pareto/NBD `purchases` fit and the Gamma-Gamma `gg`:

        margin = (m E[Z] - c) [1{first} + sum_{k=1..H} (E[X(k)] - E[X(k-1)]) / (1 + d_m)^k],

    E[X(k)] the expected repeat purchases of a new customer in the first k months
    (:func:`new_customer_purchases`, eq. 9 of Fader, Hardie & Lee 2005 for the BG/NBD), E[Z] =
    p gamma / (q - 1) the Gamma-Gamma population mean spend per order (Fader, Hardie & Lee 2005,
    JMR; assumed for the first order too), m the margin rate (`margin_rate`, default
    ``econ.gross_margin_rate``), c the cost to serve an order, d_m the monthly discount rate;
    the acquisition order itself counts, undiscounted, when `include_first`.

    The interval: a parametric bootstrap of both fits (:func:`helpers.btyd.sample_log_params`,
    log-parameters ~ N(estimate, cov_log), seeded with `seed` and `seed` + 1), the `level`
    percentile interval of the draws' margins. Draws double from `min_draws` until the Monte
    Carlo standard error of each end and of the mean (:func:`_quantile_se`, sd / sqrt(n)) is
    below 1/100 of the interval's width (or `max_draws`, flagged ``mc_ok`` False). Parameter
    uncertainty only: one customer's realized margin varies far more.

    Returns model, horizon_months, expected_purchases (repeat, undiscounted, at the estimates),
    expected_orders (with the first when `include_first`), spend_per_order, margin_per_order,
    margin (at the estimates), margin_mean, margin_low, margin_high (over the draws), level,
    n_draws, mc_se (largest Monte Carlo standard error of the ends and the mean), mc_ok."""
    if purchases.model not in PURCHASE_MODELS:
        raise ValueError(
            f"not a purchase model: {purchases.model!r} (one of {list(PURCHASE_MODELS)})"
        )
    if gg.model != "Gamma-Gamma":
        raise ValueError(f"the spend model must be a Gamma-Gamma fit, not {gg.model!r}")
    m = econ.gross_margin_rate if margin_rate is None else margin_rate
    months = np.arange(1, econ.horizon_months + 1)
    t = months * TIME_UNITS["M"] / unit_days(purchases.time_unit)
    disc = econ.discount_factors()
    P0 = np.array([list(purchases.params.values())])
    G0 = np.array([list(gg.params.values())])
    point, repeat = _new_margin(purchases.model, P0, G0, t, disc, m, cost_per_order, include_first)
    lo_p, hi_p = (1 - level) / 2, (1 + level) / 2
    n = min_draws
    while True:
        P = btyd.sample_log_params(purchases, n, seed)
        G = btyd.sample_log_params(gg, n, seed + 1)
        draws, _ = _new_margin(purchases.model, P, G, t, disc, m, cost_per_order, include_first)
        draws = draws[np.isfinite(draws)]
        lo, hi = np.quantile(draws, [lo_p, hi_p])
        mc_se = max(_quantile_se(draws, lo_p), _quantile_se(draws, hi_p),
                    float(draws.std() / np.sqrt(len(draws))))  # fmt: skip
        ok = mc_se < (hi - lo) / 100
        if ok or 2 * n > max_draws:
            break
        n *= 2
    spend = gg.p * gg.gamma / (gg.q - 1) if gg.q > 1 else np.inf
    return {
        "model": purchases.model,
        "horizon_months": int(econ.horizon_months),
        "expected_purchases": float(repeat[0]),
        "expected_orders": float(repeat[0]) + (1.0 if include_first else 0.0),
        "spend_per_order": float(spend),
        "margin_per_order": float(m * spend - cost_per_order),
        "margin": float(point[0]),
        "margin_mean": float(draws.mean()),
        "margin_low": float(lo),
        "margin_high": float(hi),
        "level": level,
        "n_draws": int(n),
        "mc_se": mc_se,
        "mc_ok": bool(ok),
    }


def _log_odds_dead(fit: ModelFit, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    """log P(dead)/P(alive) given the history: BG/NBD log of 1{x>0} a/(b+x-1)
    ((alpha+T)/(alpha+t_x))^(r+x) (-inf when x = 0); MBG/NBD log of a/(b+x) (...)^(r+x)."""
    r, alpha, a, b = fit.r, fit.alpha, fit.a, fit.b
    ratio = (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
    if _is_mbg(fit):
        return np.log(a) - np.log(b + x) + ratio
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + ratio
    return np.where(x > 0, lo, -np.inf)


def p_alive(fit: ModelFit, summary: pd.DataFrame) -> pd.Series:
    """P(alive | x, t_x, T). BG/NBD: 1 / (1 + 1{x>0} a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))
    (FHL 2005 eq. 11), exactly 1 for customers without repeat purchases (x = 0), however long
    ago they bought. MBG/NBD: 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x)) (Batislam et al.
    2007), so a one-time buyer's P(alive) falls with the time since their purchase. Pareto/NBD:
    :func:`helpers.pareto_nbd.p_alive`."""
    if _is_pareto(fit):
        return pareto_nbd.p_alive(fit, summary)
    x, tx, T = btyd.columns(summary, ("frequency", "recency", "T"))
    return pd.Series(
        special.expit(-_log_odds_dead(fit, x, tx, T)), index=summary.index, name="p_alive"
    )


def expected_purchases(
    fit: ModelFit, summary: pd.DataFrame, t: float | np.ndarray
) -> pd.Series | pd.DataFrame:
    """Expected purchases in (T, T+t] given x, t_x, T (FHL 2005 eq. 10), t in the fit's unit:
    (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
    x P(alive); for the MBG/NBD (Batislam et al. 2007) the first factor is
    (a+b+x)/(a-1) [1 - (...)^(r+x) 2F1(r+x, b+x+1; a+b+x; t/(alpha+T+t))].

    `t` a scalar gives a Series (one value per customer), an array of horizons a DataFrame with
    one column per horizon, both indexed like `summary`. Pareto/NBD:
    :func:`helpers.pareto_nbd.expected_purchases`. Many customers sharing a repeat count are
    computed from the count's table of the hypergeometric function (:class:`_CumTables`, the same
    numbers to about 1e-12 relative), the others by the formula itself
    (:func:`_expected_purchases_direct`), a block of customers at a time.
    """
    if _is_pareto(fit):
        return pareto_nbd.expected_purchases(fit, summary, t)
    x, tx, T = btyd.columns(summary, ("frequency", "recency", "T"))
    scalar = np.ndim(t) == 0
    tt = np.atleast_1d(np.asarray(t, dtype=float))
    tables = _CumTables(fit, x, T, tt)
    out = np.empty((len(x), len(tt)))
    for lo in range(0, len(x), _CHUNK):  # block x horizon matrices stay small
        sl = slice(lo, lo + _CHUNK)
        out[sl] = tables.cum(x[sl], tx[sl], T[sl])
    if scalar:
        return pd.Series(out[:, 0], index=summary.index, name="expected_purchases")
    return pd.DataFrame(out, index=summary.index, columns=pd.Index(tt, name="horizon"))


def _expected_purchases_direct(
    fit: ModelFit, x: np.ndarray, tx: np.ndarray, T: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """:func:`expected_purchases` by its formula (FHL 2005 eq. 10; MBG/NBD Batislam et al.
    2007), customers x horizons `t`: one hyp2f1 per customer and horizon."""
    r, alpha, a, b = fit.r, fit.alpha, fit.a, fit.b
    tt = np.asarray(t, dtype=float)[None, :]
    x, tx, T = x[:, None], tx[:, None], T[:, None]
    shift = 1 if _is_mbg(fit) else 0
    hyp = special.hyp2f1(r + x, b + x + shift, a + b + x - 1 + shift, tt / (alpha + T + tt))
    num = (
        (a + b + x - 1 + shift)
        / (a - 1)
        * (1 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + tt))) * hyp)
    )
    return num * special.expit(-_log_odds_dead(fit, x, tx, T))


def expected_spend(fit: ModelFit, summary: pd.DataFrame) -> pd.Series:
    """E[M | x, m] = p (gamma + x m) / (p x + q - 1) (Hardie 2013), the Gamma-Gamma posterior
    mean spend per purchase; for x = 0 the population mean p gamma / (q - 1)."""
    p, q, g = fit.p, fit.q, fit.gamma
    x, m = btyd.columns(summary, ("frequency", "monetary_value"))
    m = np.where(x > 0, m, 0.0)
    return pd.Series(p * (g + x * m) / (p * x + q - 1), index=summary.index, name="expected_spend")


def predictive_clv(
    purchases: ModelFit,
    gg: ModelFit,
    summary: pd.DataFrame,
    econ: Economics = economics.SAMPLE,
    margin_rate: float | None = None,
    cost_per_order: float = 0.0,
) -> pd.DataFrame:
    """Discounted predictive CLV per customer, in ``econ.currency``:

    CLV = sum_{k=1..H} (E[Y(k)] - E[Y(k-1)]) (m E[M] - c) / (1 + d_m)^k,

    with E[Y(k)] the expected purchases in the first k months after the end of the data
    (:func:`expected_purchases` of the BG/NBD, MBG/NBD or Pareto/NBD `purchases` fit, months converted to the
    summary's time unit), E[M] the Gamma-Gamma expected spend, m the share of spend kept as margin
    (`margin_rate`, default ``econ.gross_margin_rate``; for the sample company use
    :func:`helpers.economics.net_margin_rate`, which counts discounts and returns), c the cost to
    serve one order (:func:`helpers.economics.service_cost_per_order`), and the horizon H and
    monthly discount rate d_m from `econ`. Returns p_alive, expected_purchases (over the horizon,
    undiscounted), expected_spend, margin_per_order and clv.
    """
    m = econ.gross_margin_rate if margin_rate is None else margin_rate
    total, discounted = discounted_purchases(purchases, summary, econ)
    spend = expected_spend(gg, summary)
    per_order = m * spend.to_numpy() - cost_per_order
    return pd.DataFrame(
        {
            "p_alive": p_alive(purchases, summary),
            "expected_purchases": total,
            "expected_spend": spend,
            "margin_per_order": per_order,
            "clv": per_order * discounted,
        },
        index=summary.index,
    )


def discounted_purchases(
    purchases: ModelFit, summary: pd.DataFrame, econ: Economics = economics.SAMPLE
) -> tuple[np.ndarray, np.ndarray]:
    """The purchase side of :func:`predictive_clv`, per customer: the expected purchases over
    the horizon E[Y(H)] and the discounted sum D = sum_{k=1..H} (E[Y(k)] - E[Y(k-1)]) / (1 + d_m)^k
    (months k converted to the summary's time unit; horizon and rate from `econ`), so that
    CLV = (m E[M] - c) D. Under the BG/NBD and MBG/NBD the repeat counts shared by many customers
    take D from a table of the count's discounted sum over T (:class:`_CumTables`, same numbers
    to about 1e-12 relative); the Pareto/NBD's expectation is in closed form per horizon. A
    scenario that changes only the spend model reuses D (:func:`helpers.report.analysis.scenario_interval`)."""
    unit = summary.attrs.get("time_unit", purchases.time_unit)
    if unit != purchases.time_unit and purchases.time_unit in TIME_UNITS:
        raise ValueError(
            f"the summary is in {unit!r} but the purchase model was fitted in {purchases.time_unit!r}"
        )
    month = TIME_UNITS["M"] / unit_days(unit)
    k = np.arange(1, econ.horizon_months + 1)
    x, tx, T = btyd.columns(summary, ("frequency", "recency", "T"))
    disc = econ.discount_factors()
    if _is_pareto(purchases):  # closed form in the horizon: no tables needed
        tables = None
        cum_all = pareto_nbd.expected_purchases(purchases, summary, np.atleast_1d(k * month))
        cum_all = cum_all.to_numpy()
    else:  # the discounted sum tabulated per repeat count where many customers share one
        tables = _CumTables(purchases, x, T, k * month, disc)
        total, discounted, rest = tables.horizon_sums(x, tx, T)
        x, tx, T = x[rest], tx[rest], T[rest]  # the customers computed horizon by horizon
    part_total, part_disc = np.empty(len(x)), np.empty(len(x))
    for lo in range(0, len(x), _CHUNK):  # a block of customers at a time: bounded memory
        sl = slice(lo, lo + _CHUNK)
        cum = cum_all[sl] if tables is None else tables.cum(x[sl], tx[sl], T[sl])
        per_month = np.diff(cum, axis=1, prepend=0.0)
        part_total[sl], part_disc[sl] = cum[:, -1], per_month @ disc
    if tables is None:
        return part_total, part_disc
    total[rest], discounted[rest] = part_total, part_disc
    return total, discounted


#: Customers per block in :func:`predictive_clv` (block x horizon matrices stay small).
_CHUNK = 1 << 13
#: Customers per block of :meth:`_CumTables.horizon_sums` (one value each: its temporaries are
#: vectors, 2 MB an array; at 8.4M customers all at once they were about 1.3 GB).
_SUMS_BLOCK = 1 << 18
#: Intervals of the interpolation grid of :class:`_CumTables`.
_GRID = 2048
#: Intervals of :class:`_CumTables`' spline of a repeat count's discounted sum over log(alpha + T).
_QGRID = 1024
#: Customers of one repeat count above which :class:`_CumTables` tabulates its discounted sum
#: (the table costs its grid's points at every horizon; each customer then one evaluation).
_QMIN = 2 * (_QGRID + 1)


def _distinct_counts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(x, return_inverse=True, return_counts=True)`` of the repeat counts `x`: the
    distinct values (sorted), each customer's position among them and each value's customers.
    Whole numbers from 0 up to no more than the customers' number (the repeat counts) go through
    ``np.bincount`` with int32 positions: no sorted copy, sort order or int64 positions (at 8.4M
    customers about 0.2 GB of temporaries, at the report's peak; benchmarks/README.md); larger
    or other values through ``np.unique`` (a bincount's table is as long as the largest value).
    """
    x = np.asarray(x, dtype=float).reshape(-1)
    if x.size and x.min() >= 0 and x.max() <= max(x.size, 1024) and x.size < 2**31:
        xi = x.astype(np.int32)
        if np.array_equal(xi, x):
            n = np.bincount(xi)
            seen = n > 0
            at = np.cumsum(seen, dtype=np.int32) - 1  # a value's position among the distinct
            return np.flatnonzero(seen).astype(float), at[xi], n[seen]
    ux, inv, rows = np.unique(x, return_inverse=True, return_counts=True)
    return ux, inv.reshape(-1), rows


class _CumTables:
    """Cumulative expected purchases E[Y(t_k) | x, t_x, T] at many horizons t_k for many
    customers (:func:`expected_purchases`, FHL 2005 eq. 10), fast and to about 1e-12.

    By Euler's transformation 2F1(a', b'; c; z) = (1-z)^(c-a'-b') 2F1(c-a', c-b'; c; z)
    (Abramowitz & Stegun 1964, 15.3.3), with z = t / (alpha+T+t), a' = r+x, b' = b+x+s,
    c = a+b+x-1+s (s = 0 BG/NBD, 1 MBG/NBD),

        E[Y(t)] = c/(a-1) [1 - (1-z)^(a-1) F_x(z)] P(alive),  F_x = 2F1(a+b-1+s-r, a-1; c; z),

    so the hypergeometric function depends on the customer only through x and
    w = -log(1-z) = log(1 + t/(alpha+T)). For each repeat count x with many customers, F_x is
    tabulated by scipy on a uniform grid of w (values and derivatives, dF/dw = (1-z) F'(z),
    F'(z) = (A B / c) 2F1(A+1, B+1; c+1; z)) and evaluated by cubic Hermite interpolation (error
    O(h^4); F_x is smooth in w, its branch point z = 1 being at w = infinity). Counts with few
    customers are computed directly. Same numbers as :func:`expected_purchases` to about 1e-12
    relative (tests/test_clv.py), at a fraction of the hyp2f1 calls on millions of customers.

    With the monthly discount factors `disc` (:func:`predictive_clv`), the discounted sum
    sum_k disc_k (E[Y(t_k)] - E[Y(t_{k-1})]) = P(alive) Q_x(T), by summation by parts
    Q_x(T) = sum_k (disc_k - disc_{k+1}) B_x(t_k, T) with B_x = E[Y] / P(alive) the bracket above
    and disc_{H+1} = 0: for each repeat count with more than :data:`_QMIN` customers Q_x is
    tabulated on a uniform grid of v = log(alpha + T) between the count's smallest and largest T
    (:data:`_QGRID` intervals; B_x from the tables above) and interpolated by scipy's not-a-knot
    cubic spline (:class:`scipy.interpolate.CubicSpline`; Q_x is smooth in v), so such a
    customer costs one evaluation instead of one per horizon (:meth:`horizon_sums`)."""

    def __init__(
        self,
        fit: ModelFit,
        x: np.ndarray,
        T: np.ndarray,
        t: np.ndarray,
        disc: np.ndarray | None = None,
    ):
        self.fit, self.t = fit, np.asarray(t, dtype=float)
        r, alpha, a, b = fit.r, fit.alpha, fit.a, fit.b
        self.s = 1 if _is_mbg(fit) else 0
        self.A, self.B = a + b - 1 + self.s - r, a - 1
        self.ux, inv, rows = _distinct_counts(x)
        tmin = np.full(len(self.ux), np.inf)
        np.minimum.at(tmin, inv, T)
        # tabulate where it saves hyp2f1 calls: customers x horizons > 4 x grid points
        self.tab = rows * max(len(self.t), 1) > 4 * (_GRID + 1)
        self.h = np.zeros(len(self.ux))
        self.coef = np.zeros((len(self.ux), _GRID + 1, 4))
        tmax = float(self.t.max()) if self.t.size else 0.0
        for g in np.flatnonzero(self.tab):
            c = a + b + self.ux[g] - 1 + self.s
            wmax = np.log1p(tmax / (alpha + tmin[g])) * (1 + 1e-12)
            self.h[g] = wmax / _GRID if wmax > 0 else 1.0
            w = np.arange(_GRID + 2) * self.h[g]  # one point past the end: no edge case
            z = -np.expm1(-w)
            f = special.hyp2f1(self.A, self.B, c, z)
            d = (self.A * self.B / c) * special.hyp2f1(self.A + 1, self.B + 1, c + 1, z)
            d *= (1 - z) * self.h[g]  # dF/dw, times the interval width
            # the cubic Hermite interpolant on interval j as c0 + c1 s + c2 s^2 + c3 s^3
            df = f[1:] - f[:-1]
            self.coef[g, :, 0] = f[:-1]
            self.coef[g, :, 1] = d[:-1]
            self.coef[g, :, 2] = 3 * df - 2 * d[:-1] - d[1:]
            self.coef[g, :, 3] = d[:-1] + d[1:] - 2 * df
        # the discounted sums' tables Q_x(v), v = log(alpha + T), per count with many customers
        self.qtab = np.zeros(len(self.ux), dtype=bool)
        if disc is None or not self.t.size:
            return
        disc = np.asarray(disc, dtype=float)
        weights = disc - np.append(disc[1:], 0.0)  # summation by parts: disc_k - disc_{k+1}
        tmax_x = np.full(len(self.ux), -np.inf)
        np.maximum.at(tmax_x, inv, T)
        self.qtab = self.tab & (rows > _QMIN) & (tmax_x > tmin)
        self.qv0 = np.zeros(len(self.ux))
        self.qh = np.ones(len(self.ux))
        self.qcoef = np.zeros((len(self.ux), _QGRID, 4))
        for g in np.flatnonzero(self.qtab):
            v0, v1 = np.log(alpha + tmin[g]), np.log(alpha + tmax_x[g])
            v = np.linspace(v0, v1, _QGRID + 1)
            Tg = np.clip(np.exp(v) - alpha, tmin[g], tmax_x[g])
            q = self._bracket(np.full(len(v), g), np.full(len(v), self.ux[g]), Tg) @ weights
            self.qv0[g], self.qh[g] = v0, (v1 - v0) / _QGRID
            self.qcoef[g] = interpolate.CubicSpline(v, q).c.T  # highest power first

    def _bracket(
        self, g: np.ndarray, x: np.ndarray, T: np.ndarray, t: np.ndarray | None = None
    ) -> np.ndarray:
        """c/(a-1) [1 - (1-z)^(a-1) F_x(z)] (= E[Y(t_k)] / P(alive)) at the horizons `t` (default
        all; within the tables' range) for customers of tabulated counts (`g`: their rows)."""
        fit, tt = self.fit, (self.t if t is None else t)[None, :]
        alpha, a, b = fit.alpha, fit.a, fit.b
        c = (a + b + x - 1 + self.s)[:, None]
        w = np.log1p(tt / (alpha + T)[:, None])
        u = w / self.h[g][:, None]
        j = np.minimum(u.astype(np.int64), _GRID)
        u -= j  # position in the interval, 0..1
        coef = self.coef.reshape(-1, 4)[g[:, None] * (_GRID + 1) + j]
        F = coef[..., 3] * u
        F += coef[..., 2]
        F *= u
        F += coef[..., 1]
        F *= u
        F += coef[..., 0]
        return c / (a - 1) * (1 - np.exp(-(a - 1) * w) * F)

    def cum(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
        """customers x horizons matrix of E[Y(t_k)] for these customers."""
        fit = self.fit
        g = np.searchsorted(self.ux, x)
        tab = self.tab[g]
        out = np.empty((len(x), len(self.t)))
        palive = special.expit(-_log_odds_dead(fit, x, tx, T))[:, None]
        if tab.any():
            out[tab] = self._bracket(g[tab], x[tab], T[tab]) * palive[tab]
        if not tab.all():
            out[~tab] = _expected_purchases_direct(fit, x[~tab], tx[~tab], T[~tab], self.t)
        return out

    def horizon_sums(
        self, x: np.ndarray, tx: np.ndarray, T: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For the customers of the counts with a Q table: E[Y(t_H)] (the last horizon, from
        the F tables) and the discounted sum P(alive) Q_x(T), in arrays as long as `x`; and the
        positions of the other customers, whose entries are left unset (for :meth:`cum`)."""
        n = len(x)
        total, discounted = np.empty(n), np.empty(n)
        g = np.searchsorted(self.ux, x) if n else np.zeros(0, dtype=np.int64)
        q = self.qtab[g]
        # a block of customers at a time: every value is the customer's own (elementwise), so
        # the same floats, with one block's temporaries (about 20 arrays of 8 bytes a customer)
        for lo in range(0, n, _SUMS_BLOCK):
            at = lo + np.flatnonzero(q[lo : lo + _SUMS_BLOCK])
            if not at.size:
                continue
            gi, xq, Tq = g[at], x[at], T[at]
            palive = special.expit(-_log_odds_dead(self.fit, xq, tx[at], Tq))
            total[at] = self._bracket(gi, xq, Tq, self.t[-1:])[:, 0] * palive
            d = np.log(self.fit.alpha + Tq) - self.qv0[gi]
            j = np.clip((d / self.qh[gi]).astype(np.int64), 0, _QGRID - 1)
            d -= j * self.qh[gi]
            coef = self.qcoef.reshape(-1, 4)[gi * _QGRID + j]
            Q = coef[:, 0] * d
            Q += coef[:, 1]
            Q *= d
            Q += coef[:, 2]
            Q *= d
            Q += coef[:, 3]
            discounted[at] = Q * palive
        return total, discounted, np.flatnonzero(~q)


def calibration_holdout(
    orders: pd.DataFrame,
    calibration_end: str | pd.Timestamp,
    holdout_end: str | pd.Timestamp,
    time_unit: str = "W",
    **rfm_kwargs,
) -> pd.DataFrame:
    """Split orders at the end of `calibration_end`: the BTYD summary of the calibration period
    (customers whose first order falls in it) plus, for the same customers, ``holdout_purchases``
    (orders in the holdout, through the end of `holdout_end`) and ``holdout_duration``, both in
    `time_unit`. Customers acquired during the holdout are left out (the model has not seen them).
    """
    unknown = set(rfm_kwargs) - {"customer_col", "date_col", "amount_col"}
    if unknown:
        raise TypeError(f"calibration_holdout() got unexpected keyword arguments {sorted(unknown)}")
    cc = rfm_kwargs.get("customer_col", "customer_id")
    dc = rfm_kwargs.get("date_col", "order_date")
    ac = rfm_kwargs.get("amount_col", "amount")
    unit_days(time_unit)
    cut, end = periods.as_of_end(calibration_end), periods.as_of_end(holdout_end)
    # one factorization of the customers for both periods (sorted ids, as rfm_table's index)
    t = pd.to_datetime(orders[dc]).to_numpy("datetime64[ns]").view("i8")
    in_cal = t < cut.value
    if not in_cal.any():
        raise ValueError(
            f"no orders on or before the as-of date {cut.date() - pd.Timedelta(days=1)}"
        )
    codes, ids = periods.customer_codes(orders[cc], sort=True)
    cal = summary_from_codes(codes, ids, t, orders[ac].to_numpy(dtype=float), in_cal, calibration_end,
                   time_unit, cc)  # fmt: skip
    if end <= cut:
        raise ValueError(
            f"holdout_end {holdout_end} must be after calibration_end {calibration_end}"
        )
    in_ho = (t >= cut.value) & (t < end.value)
    ho = np.bincount(codes[in_ho], minlength=len(ids))  # per customer code
    cal_codes = np.flatnonzero(np.bincount(codes[in_cal], minlength=len(ids)) > 0)
    cal["holdout_purchases"] = ho[cal_codes].astype(int)
    cal["holdout_duration"] = (end - cut) / pd.Timedelta(days=unit_days(time_unit))
    cal.attrs.update(
        calibration_end=str(pd.Timestamp(calibration_end).date()),
        holdout_end=str(pd.Timestamp(holdout_end).date()),
    )
    return cal


def evaluate_holdout(
    fit: ModelFit | None,
    cal: pd.DataFrame,
    max_bucket: int = 7,
    predicted: np.ndarray | pd.Series | None = None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Predicted vs actual holdout purchases.

    Per calibration-frequency bucket (0, 1, ..., `max_bucket`+): customers, mean actual and mean
    predicted holdout purchases. Metrics: MAE and RMSE per customer, MAE of the bucket means
    (weighted by customers), total actual and predicted purchases and their relative error.
    """
    if predicted is None:  # `predicted`: the holdout predictions of another model (covariates)
        predicted = expected_purchases(fit, cal, float(cal["holdout_duration"].iloc[0]))
    pred = np.asarray(predicted, float)
    act = cal["holdout_purchases"].to_numpy(float)
    bucket = np.minimum(cal["frequency"].to_numpy(), max_bucket)
    labels = [str(i) for i in range(max_bucket)] + [f"{max_bucket}+"]
    df = pd.DataFrame(
        {
            "bucket": pd.Categorical(np.array(labels)[bucket.astype(int)], categories=labels),
            "actual": act,
            "predicted": pred,
        }
    )
    table = df.groupby("bucket", observed=True).agg(
        customers=("actual", "size"), actual=("actual", "mean"), predicted=("predicted", "mean")
    )
    metrics = {
        "mae": float(np.mean(np.abs(pred - act))),
        "rmse": float(np.sqrt(np.mean((pred - act) ** 2))),
        "bucket_mae": float(
            np.average(np.abs(table["predicted"] - table["actual"]), weights=table["customers"])
        ),
        "total_actual": float(act.sum()),
        "total_predicted": float(pred.sum()),
        "total_error": float(pred.sum() / act.sum() - 1),
    }
    return table, metrics


def compare_purchase_models(
    cal: pd.DataFrame,
    models: tuple[str, ...] = ("BG/NBD", "MBG/NBD", "Pareto/NBD"),
    max_bucket: int = 7,
) -> tuple[pd.DataFrame, str]:
    """Fit each purchase model (BG/NBD, MBG/NBD, Pareto/NBD by default) on the calibration
    summary of :func:`calibration_holdout` and score it on the holdout, each with its own
    conditional expectation (:func:`expected_purchases`, which calls
    :func:`helpers.pareto_nbd.expected_purchases` for the Pareto/NBD): the customer-weighted mean absolute error of the mean holdout
    purchases per calibration-frequency bucket (``bucket_mae``, the tracking check of Fader,
    Hardie & Lee 2005), the relative error of the total, and the calibration log-likelihood.

    Returns the table (one row per model) and the chosen model: the lowest bucket_mae, BG/NBD on
    a tie (within 1 %), since it is the better-known model.
    """
    rows = {}
    for name in models:
        with btyd.covariance_on_demand():  # only the likelihood and predictions are used
            fit = PURCHASE_MODELS[name](cal)
        _, m = evaluate_holdout(fit, cal, max_bucket)
        rows[name] = {"loglik": fit.loglik, "converged": fit.converged, "bucket_mae": m["bucket_mae"],
                      "total_error": m["total_error"], "mae": m["mae"]}  # fmt: skip
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    # a model is usable if it converged and its holdout predictions are finite (a fit at the
    # edge of its parameter space can converge and still predict NaN)
    ok = table[table["converged"] & np.isfinite(table["bucket_mae"].astype(float))]
    if ok.empty:
        raise ValueError(
            "no purchase model converged with finite predictions on the calibration period"
        )
    best = ok["bucket_mae"].idxmin()
    if "BG/NBD" in ok.index and ok.loc["BG/NBD", "bucket_mae"] <= 1.01 * ok.loc[best, "bucket_mae"]:
        best = "BG/NBD"
    return table, str(best)


def load_cdnow(kind: str = "summary") -> pd.DataFrame:
    """The CDNOW sample (2,357 customers, 39-week calibration; Fader, Hardie & Lee 2005) from the
    data files the ``lifetimes`` package ships, read from its install folder without importing its
    code. ``kind="summary"``: frequency, recency, T in weeks (index ID); ``"monetary"``: the same
    with monetary_value (mean spend of repeat purchases, USD), as in the Gamma-Gamma paper."""
    from importlib import metadata

    name = {"summary": "cdnow_customers_summary.csv",
            "monetary": "cdnow_customers_summary_with_transactions.csv"}[kind]  # fmt: skip
    try:
        path = metadata.distribution("lifetimes").locate_file(f"lifetimes/datasets/{name}")
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(
            "the CDNOW data come with the 'lifetimes' package: run `make setup`"
        ) from None
    df = pd.read_csv(path)
    df = df.rename(columns={"customer_id": "ID", "x": "frequency", "t_x": "recency",
                            "zbar": "monetary_value"}).set_index("ID")  # fmt: skip
    df.attrs["time_unit"] = "W"
    return df


# ----------------------------------------------------------------------------- uncertainty


def sample_params(fit: ModelFit, n_draws: int = 200, seed: int = 0) -> list[ModelFit]:
    """Parametric bootstrap of a fitted model (:func:`helpers.btyd.sample_params`): `n_draws`
    parameter sets from N(log estimate, cov_log), each a :class:`ModelFit`."""
    return btyd.sample_params(fit, n_draws, seed)


def clv_intervals(
    purchases: ModelFit,
    gg: ModelFit,
    summary: pd.DataFrame,
    groups: pd.Series,
    econ: Economics = economics.SAMPLE,
    margin_rate: float | None = None,
    cost_per_order: float = 0.0,
    n_draws: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean and total predicted CLV (:func:`predictive_clv`) per group (e.g. RFM segment), with
    percentile intervals from a parametric bootstrap of both models (:func:`sample_params`,
    `n_draws` draws each, paired). Columns: customers, clv (at the fitted parameters), clv_low,
    clv_high (mean per customer), total, total_low, total_high. Parameter uncertainty only: the
    interval says how well the model's parameters are known, not how far one group's realized
    margin can fall from its expectation."""
    g = groups.reindex(summary.index)
    codes, labels = pd.factorize(g, sort=True)
    counts = np.bincount(codes[codes >= 0], minlength=len(labels)).astype(float)

    def by_group(values: np.ndarray) -> np.ndarray:
        ok = codes >= 0
        return np.bincount(codes[ok], weights=values[ok], minlength=len(labels))

    base = by_group(
        predictive_clv(purchases, gg, summary, econ, margin_rate, cost_per_order)["clv"].to_numpy()
    )
    draws = np.array(
        [
            by_group(
                predictive_clv(p, s, summary, econ, margin_rate, cost_per_order)["clv"].to_numpy()
            )
            for p, s in zip(
                sample_params(purchases, n_draws, seed),
                sample_params(gg, n_draws, seed + 1),
                strict=True,
            )
        ]
    )
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
    out = pd.DataFrame(
        {"customers": counts.astype(int), "clv": base / counts, "clv_low": lo / counts,
         "clv_high": hi / counts, "total": base, "total_low": lo, "total_high": hi},
        index=pd.Index(labels, name=groups.name),
    )  # fmt: skip
    return out


# ----------------------------------------------------------------------------- diagnostics


def probability_of_purchases(fit: ModelFit, t: float | np.ndarray, x: int) -> np.ndarray:
    """P(X(t) = x): the probability that a new customer makes x repeat purchases in (0, t],
    BG/NBD (Fader, Hardie & Lee 2005, eq. 8):

        B(a, b+x)/B(a, b) G(r+x)/(G(r) x!) (alpha/(alpha+t))^r (t/(alpha+t))^x
        + 1{x>0} B(a+1, b+x-1)/B(a, b) [1 - (alpha/(alpha+t))^r sum_{j<x} G(r+j)/(G(r) j!) (t/(alpha+t))^j].

    Pareto/NBD: :func:`helpers.pareto_nbd.probability_of_purchases` (Fader & Hardie 2006).
    BG/NBD and Pareto/NBD only (the MBG/NBD's version differs); t in the fit's time unit."""
    if _is_pareto(fit):
        return pareto_nbd.probability_of_purchases(fit, t, x)
    if _is_mbg(fit):
        raise ValueError("probability_of_purchases is written for the BG/NBD")
    r, alpha, a, b = fit.r, fit.alpha, fit.a, fit.b
    t = np.asarray(t, dtype=float)
    lp, lq = np.log(alpha / (alpha + t)), np.log(t / (alpha + t))

    def nb(j: int) -> np.ndarray:  # negative binomial P(N(t) = j) while alive
        return np.exp(
            special.gammaln(r + j) - special.gammaln(r) - special.gammaln(j + 1) + r * lp + j * lq
        )

    out = np.exp(special.betaln(a, b + x) - special.betaln(a, b)) * nb(x)
    if x > 0:
        below = sum(nb(j) for j in range(x))
        out = out + np.exp(special.betaln(a + 1, b + x - 1) - special.betaln(a, b)) * (1 - below)
    return out


def frequency_histogram(fit: ModelFit, summary: pd.DataFrame, max_x: int = 7) -> pd.DataFrame:
    """Observed and expected number of customers by repeat purchases x = 0..`max_x`-1 and
    `max_x`+ over the calibration period: expected = sum over customers of P(X(T_i) = x)
    (:func:`probability_of_purchases`), the standard histogram check of the BG/NBD (Fader,
    Hardie & Lee 2005, Figure 2)."""
    x, _, T = btyd.columns(summary, ("frequency", "recency", "T"))
    expected = np.array([probability_of_purchases(fit, T, k).sum() for k in range(max_x)])
    expected = np.append(expected, len(T) - expected.sum())
    observed = np.bincount(np.minimum(x, max_x).astype(int), minlength=max_x + 1)
    labels = [str(k) for k in range(max_x)] + [f"{max_x}+"]
    return pd.DataFrame(
        {"observed": observed, "expected": expected},
        index=pd.Index(labels, name="repeat purchases"),
    )


def tracking(
    fit: ModelFit,
    orders: pd.DataFrame,
    calibration_end: str | pd.Timestamp,
    holdout_end: str | pd.Timestamp,
    time_unit: str = "W",
    *,
    customer_col: str = "customer_id",
    date_col: str = "order_date",
) -> pd.DataFrame:
    """The tracking check (Fader, Hardie & Lee 2005, Figures 3-4): repeat purchases per
    `time_unit` of the customers acquired by the end of `calibration_end`, actual and expected,
    from the first acquisition to the end of `holdout_end`.

    Expected cumulative repeat purchases at time t = sum over customers of E[X(t - s_i)]
    (:func:`expected_purchases_new`, s_i the customer's first purchase), evaluated per distinct
    first-purchase day. Returns per period (index: period start) ``actual``, ``expected`` and the
    cumulative ``actual_cum``, ``expected_cum``; ``attrs["calibration_end"]`` marks the split."""
    cut, end = periods.as_of_end(calibration_end), periods.as_of_end(holdout_end)
    o = orders.loc[pd.to_datetime(orders[date_col]) < end, [customer_col, date_col]].copy()
    o[date_col] = pd.to_datetime(o[date_col])
    first = o.groupby(customer_col)[date_col].transform("min")
    o = o[first < cut]
    step = pd.Timedelta(days=unit_days(time_unit))
    start = first.min().normalize()
    edges = pd.DatetimeIndex(start + np.arange(int(np.ceil((end - start) / step)) + 1) * step)
    edges = edges.where(edges <= end, end)  # the last period ends with the data
    o = o.sort_values(date_col, kind="stable")
    repeat = o.loc[o.duplicated(customer_col), date_col]  # every order but each customer's first
    actual = np.histogram(repeat.astype("int64"), bins=edges.astype("int64"))[0]
    firsts = o.groupby(customer_col)[date_col].min()
    s_days, n_s = np.unique(firsts.to_numpy(dtype="datetime64[ns]"), return_counts=True)
    age = (edges[1:].to_numpy()[None, :] - s_days[:, None]) / step  # in units, at each period end
    exp_cum = (
        n_s[:, None] * np.where(age > 0, expected_purchases_new(fit, np.maximum(age, 0)), 0)
    ).sum(0)
    out = pd.DataFrame(
        {"actual": actual, "expected": np.diff(np.concatenate([[0.0], exp_cum])),
         "actual_cum": np.cumsum(actual), "expected_cum": exp_cum},
        index=pd.Index(edges[:-1], name="period_start"),
    )  # fmt: skip
    out.attrs["calibration_end"] = str(cut.date())
    return out


# ----------------------------------------------------------------------------- purchase within a window


def p_purchase_within(fit: ModelFit, summary: pd.DataFrame, horizon: float) -> pd.Series:
    """P(at least one purchase in (T, T + tau] | x, t_x, T) under the BG/NBD, MBG/NBD (or the
    Pareto/NBD: :func:`helpers.pareto_nbd.p_no_purchase`), tau =
    `horizon` in the fit's time unit: 1 - P(X(T, T+tau) = 0 | history).

    Seeing no purchase through T + tau is the same history observed tau longer, so
    P(X(T, T+tau) = 0 | history) = L(x, t_x, T+tau) / L(x, t_x, T), with L the likelihood of
    Fader, Hardie & Lee (2005), eq. 6 (MBG/NBD: Batislam, Denizel & Filiztekin 2007). Only the
    "alive at T" term of L depends on T, which gives

        P(purchase within tau) = P(alive) [1 - ((alpha + T) / (alpha + T + tau))^(r + x)],

    the chance of being alive times the chance that an alive customer, whose rate has the
    posterior Gamma(r + x, alpha + T), buys at least once in tau (an alive customer cannot drop
    out before their next purchase). Well defined for one-time buyers: under the BG/NBD their
    P(alive) is 1 by construction, but their chance of buying falls with T, since a long silence
    says their rate is low. As tau -> infinity it tends to P(alive) (every alive customer buys
    again eventually); as tau -> 0 it tends to 0. Returns a Series ``p_purchase`` indexed like
    `summary`."""
    if not horizon >= 0:
        raise ValueError(f"horizon must be >= 0, got {horizon}")
    if (
        fit.model == "Pareto/NBD"
    ):  # the same question under the Pareto/NBD: its own likelihood ratio
        return (1 - pareto_nbd.p_no_purchase(fit, summary, float(horizon))).rename("p_purchase")
    x, tx, T = btyd.columns(summary, ("frequency", "recency", "T"))
    _check_bgnbd_data(x, tx, T)
    alive = special.expit(-_log_odds_dead(fit, x, tx, T))
    r, alpha = fit.r, fit.alpha
    buys = -np.expm1((r + x) * (np.log(alpha + T) - np.log(alpha + T + horizon)))
    return pd.Series(alive * buys, index=summary.index, name="p_purchase")


def simulate_holdout(
    fit: ModelFit,
    cal: pd.DataFrame,
    n_sims: int = 500,
    level: float = 0.95,
    max_bucket: int = 7,
    parameter_uncertainty: bool = True,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The sampling band of the conditional-expectations check (Fader, Hardie & Lee 2005): how
    far the holdout purchases of the customers of :func:`calibration_holdout` can fall from the
    model's prediction by chance, if the model is right.

    Each simulation draws, per customer, the state at the end of calibration from the posterior
    (alive with P(alive); given alive, lambda ~ Gamma(r + x, alpha + T) and p ~ Beta(a, b + x),
    MBG/NBD Beta(a, b + x + 1)), then the holdout purchases X = min(N, G), N ~ Poisson(lambda
    tau) the purchase opportunities and G ~ Geometric(p) the purchase after which the customer
    drops out. With `parameter_uncertainty` each simulation first draws the parameters
    (:func:`sample_params`), so the band covers both the customers' luck and the estimation.

    Returns the table per calibration-frequency bucket (customers, actual and predicted mean
    holdout purchases as :func:`evaluate_holdout`, band_low and band_high: the `level` interval of
    the simulated bucket mean, and inside: whether the actual mean is in it) and a dict with the
    total: actual, predicted, band_low, band_high, inside, and z (the actual total's distance from
    the simulations' mean in their standard deviations)."""
    table, metrics = evaluate_holdout(fit, cal, max_bucket)
    x, tx, T = btyd.columns(cal, ("frequency", "recency", "T"))
    tau = float(cal["holdout_duration"].iloc[0])
    bucket = np.minimum(x, max_bucket).astype(int)
    present = np.unique(bucket)
    counts = np.bincount(bucket, minlength=max_bucket + 1)[present]
    rng = np.random.default_rng(seed)
    fits = sample_params(fit, n_sims, seed) if parameter_uncertainty else [fit] * n_sims
    shift = 1 if _is_mbg(fit) else 0
    means = np.empty((n_sims, len(present)))
    totals = np.empty(n_sims)
    for k, f in enumerate(fits):
        alive = rng.random(len(x)) < special.expit(-_log_odds_dead(f, x, tx, T))
        lam = rng.gamma(f.r + x, 1 / (f.alpha + T))
        p = rng.beta(f.a, f.b + x + shift)
        sims = np.where(alive, np.minimum(rng.poisson(lam * tau), rng.geometric(p)), 0)
        totals[k] = sims.sum()
        means[k] = np.bincount(bucket, weights=sims, minlength=max_bucket + 1)[present] / counts
    q = [(1 - level) / 2, (1 + level) / 2]
    lo, hi = np.quantile(means, q, axis=0)
    table = table.assign(band_low=lo, band_high=hi)
    table["inside"] = table["actual"].between(table["band_low"], table["band_high"])
    tlo, thi = np.quantile(totals, q)
    total = {
        "actual": metrics["total_actual"],
        "predicted": metrics["total_predicted"],
        "band_low": float(tlo),
        "band_high": float(thi),
        "inside": bool(tlo <= metrics["total_actual"] <= thi),
        "z": float((metrics["total_actual"] - totals.mean()) / totals.std(ddof=1)),
    }
    return table, total


def mean_dropout_ratio(
    fit: ModelFit, base: ModelFit, n_draws: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Ratio of the mean dropout probability per purchase of two groups fitted separately with
    the BG/NBD (or MBG/NBD): E[p] = a / (a + b) of p ~ Beta(a, b), ratio = E[p | fit] /
    E[p | base] (below 1: the first group drops out less). The interval is the `level` percentile
    interval over parametric-bootstrap draws of both fits (:func:`sample_params`, independent
    groups). Returns estimate, ci_low, ci_high."""

    def mean_p(f: ModelFit) -> float:
        return f.a / (f.a + f.b)

    draws = np.array(
        [
            mean_p(f) / mean_p(g)
            for f, g in zip(
                sample_params(fit, n_draws, seed),
                sample_params(base, n_draws, seed + 1),
                strict=True,
            )
        ]
    )
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    est = mean_p(fit) / mean_p(base)
    return {"estimate": float(est), "ci_low": float(min(lo, est)), "ci_high": float(max(hi, est))}


# --- predictions of a BG/NBD with covariates (issue 32 point 3: the report's covariate model) -----


def covariate_pattern_fits(
    fit: ModelFit,
    summary: pd.DataFrame,
    purchase: pd.DataFrame | None = None,
    dropout: pd.DataFrame | None = None,
) -> list[tuple[np.ndarray, ModelFit]]:
    """A :func:`fit_bgnbd_covariates` fit as plain BG/NBD fits, one per distinct covariate
    pattern of the `summary`'s customers: (positions of those customers in `summary`, the BG/NBD
    with their alpha_i = alpha exp(-gamma' z) and a_i = a exp(delta' w); r and b shared) (Fader &
    Hardie 2007: given its covariates a customer's likelihood and every prediction are the
    BG/NBD's at alpha_i, a_i). `purchase` and `dropout` hold the covariates the fit was made with
    (same column names), indexed like `summary`."""
    if fit.model != "BG/NBD+covariates":
        raise ValueError(f"not a BG/NBD fit with covariates: {fit.model!r}")
    zn, wn = fit.extra.get("purchase_covariates", []), fit.extra.get("dropout_covariates", [])
    Z = btyd.covariate_matrix(summary, purchase[zn] if zn else None, "purchase")
    same = dropout is purchase and wn == zn  # the report's: one matrix for both processes
    W = Z if same else btyd.covariate_matrix(summary, dropout[wn] if wn else None, "dropout")
    gam = np.log([fit.params[f"rate_multiplier[{c}]"] for c in zn]) if zn else np.zeros(0)
    dlt = np.log([fit.params[f"a_multiplier[{c}]"] for c in wn]) if wn else np.zeros(0)
    pattern, inv = _covariate_patterns(Z, W)
    # each pattern's positions, ascending: one stable sort, split at the patterns' counts
    counts = np.bincount(inv, minlength=len(pattern))
    positions = np.split(np.argsort(inv, kind="stable"), np.cumsum(counts)[:-1])
    out = []
    for row, rows in zip(pattern, positions, strict=True):
        params = {"r": fit.r, "alpha": fit.alpha * float(np.exp(-(gam @ row[: len(zn)]))),
                  "a": fit.a * float(np.exp(dlt @ row[len(zn):])), "b": fit.b}  # fmt: skip
        part = ModelFit("BG/NBD", params, np.nan, len(rows), fit.time_unit,
                        fit.cov_log[:4, :4], fit.converged)  # fmt: skip
        out.append((rows, part))
    return out


def predict_with_covariates(
    predict: Callable[[ModelFit, pd.DataFrame], pd.Series | pd.DataFrame],
    fit: ModelFit,
    summary: pd.DataFrame,
    purchase: pd.DataFrame | None = None,
    dropout: pd.DataFrame | None = None,
    columns: list[str] | None = None,
) -> pd.Series | pd.DataFrame:
    """Any prediction of this module under a :func:`fit_bgnbd_covariates` fit: `predict(f, s)`
    (e.g. ``lambda f, s: predictive_clv(f, gg, s, econ)`` or ``lambda f, s: p_alive(f, s)``) is
    called per covariate pattern with that pattern's BG/NBD (:func:`covariate_pattern_fits`) and
    customers, and the pieces are put back in the `summary`'s order. The summary's `columns`
    (default all; those the predictions read) are taken for one pattern's customers at a time,
    column by column (at 8.4M customers in a few patterns, every pattern's reordered at once
    held 337 MB); the summary itself is not copied.

    Numeric predictions are written into their place as each pattern's piece is computed (the
    summary's index, no concatenation and no reordering copy: at 8.4M customers the pieces,
    their concatenation and its reordering were three copies of the result at the report's
    memory peak); others (text, categories) are concatenated and put back in order."""
    fits = covariate_pattern_fits(fit, summary, purchase, dropout)
    cols = list(summary.columns if columns is None else columns)
    parts: list[pd.Series | pd.DataFrame] = []
    into: dict[Any, np.ndarray] | None = None  # each numeric column of the result, filled in place
    first: pd.Series | pd.DataFrame | None = None
    for rows, part in fits:
        # this pattern's customers: the columns read, taken for them alone, column by column
        # (one pattern's rows at a time, not every pattern's reordered at once)
        s = pd.DataFrame({c: summary[c].array.take(rows) for c in cols},
                         index=summary.index[rows], copy=False)  # fmt: skip
        s.attrs = dict(summary.attrs)
        piece = predict(part, s)
        del s
        frame = piece.to_frame() if isinstance(piece, pd.Series) else piece
        if first is None:
            first = piece.iloc[:0].copy()  # its name, columns and attrs (not its rows)
            numeric = all(isinstance(d, np.dtype) and d.kind in "biufcmM" for d in frame.dtypes)
            if numeric and frame.columns.is_unique:
                into = {c: np.empty(len(summary), dtype=d) for c, d in frame.dtypes.items()}
        if into is None:
            parts.append(piece)
            continue
        for c, values in into.items():
            values[rows] = frame[c].to_numpy()
        del piece, frame  # before the next pattern's
    if into is None:  # back in the summary's order by position (the inverse permutation)
        order = np.concatenate([rows for rows, _ in fits])
        back = np.empty(len(order), dtype=np.int64)
        back[order] = np.arange(len(order))
        return pd.concat(parts).iloc[back]
    if isinstance(first, pd.Series):
        out = pd.Series(next(iter(into.values())), index=summary.index, name=first.name)
    else:
        out = pd.DataFrame(into, index=summary.index, columns=first.columns, copy=False)
    out.attrs = dict(first.attrs)
    return out
