"""The Pareto/NBD model of non-contractual repeat buying: Schmittlein, Morrison & Colombo (1987),
"Counting your customers: who are they and what will they do next?", *Management Science* 33(1),
1-24, with the likelihood and its numerically stable form from Fader & Hardie (2005), "A note on
deriving the Pareto/NBD model and related expressions", and P(X(t) = x) from Fader & Hardie
(2006), "Deriving an expression for P(X(t) = x) under the Pareto/NBD model".

While alive a customer buys at rate lambda ~ Gamma(r, alpha) (Poisson purchases); the lifetime is
exponential with rate mu ~ Gamma(s, beta), lambda and mu independent. Unlike the BG/NBD
(:mod:`helpers.clv`), a customer can leave at any moment, not only right after a purchase, so a
one-time buyer seen long ago is probably gone. Known answer, CDNOW sample (2,357 customers, 39
weeks): r = 0.553, alpha = 10.578, s = 0.606, beta = 11.669, LL = -9595.0.

Input: the BTYD summary of :func:`helpers.segments.rfm_table` (the names of :mod:`helpers.clv`):
``frequency`` x (repeat purchases), ``recency`` t_x (age at the last repeat purchase, 0 without
one) and ``T`` (age at the end of the data), in one time unit (``attrs["time_unit"]``); alpha and
beta are in that unit, r and s do not depend on it. Every prediction takes such a DataFrame and
returns a Series (one horizon) or DataFrame (several horizons) indexed like it.

The likelihood (Fader & Hardie 2005): with F(y) = (r+s+x) int_y^inf (alpha+u)^-(r+x)
(beta+u)^-(s+1) du, which is, for alpha >= beta,

    F(y) = 2F1(r+s+x, s+1; r+s+x+1; (alpha-beta)/(alpha+y)) / (alpha+y)^(r+s+x)

and, for alpha < beta, 2F1(r+s+x, r+x; r+s+x+1; (beta-alpha)/(beta+y)) / (beta+y)^(r+s+x) (so the
argument of 2F1 is always in [0, 1)),

    L = G(r+x) alpha^r beta^s / G(r) [ 1 / ((alpha+T)^(r+x) (beta+T)^s) + s/(r+s+x) A0 ],
    A0 = F(t_x) - F(T),

evaluated in logs: log F from log 2F1, log A0 = log F(t_x) + log(-expm1(log F(T) - log F(t_x)))
and the bracket by logaddexp, so no power of (alpha+T) under- or overflows for large x or T.

The fit (:func:`fit_pareto_nbd`) evaluates the likelihood and its exact gradient together
(:func:`_loglik_grad`): s/(r+s+x) A0 = s G with G = int_{t_x}^T (alpha+u)^-(r+x) (beta+u)^-(s+1) du,
whose derivatives in r, alpha, s, beta are G times means of log(alpha+u), 1/(alpha+u), log(beta+u),
1/(beta+u) under that integrand, all by one Gauss-Legendre quadrature (:func:`_gone_moments`;
equal to the 2F1 form to ~1e-12). Standard errors: Wald, from the observed information (the
central difference of that gradient at the optimum, :func:`helpers.btyd.hess_from_grad`) on the
log scale, as in :mod:`helpers.clv`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import integrate, special

from helpers import btyd
from helpers.btyd import ModelFit

__all__ = [
    "CDNOW_PUBLISHED",
    "pareto_nbd_loglik",
    "fit_pareto_nbd",
    "LIMITS",
    "p_alive",
    "expected_purchases",
    "expected_purchases_new",
    "probability_of_purchases",
    "p_no_purchase",
    "leave_before_next_purchase",
    "fit_pareto_nbd_covariates",
]

#: Schmittlein, Morrison & Colombo (1987) on the CDNOW sample as reported by Fader, Hardie & Lee
#: (2005), time unit weeks.
CDNOW_PUBLISHED: dict[str, float] = {
    "r": 0.553,
    "alpha": 10.578,
    "s": 0.606,
    "beta": 11.669,
    "loglik": -9595.0,
}

_COLS = ("frequency", "recency", "T")


def _data(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    missing = [c for c in _COLS if c not in summary.columns]
    if missing:
        raise ValueError(
            f"the summary needs the columns {list(_COLS)}; missing {missing} "
            "(build it with helpers.segments.rfm_table)"
        )
    x, tx, T = (summary[c].to_numpy(dtype=float) for c in _COLS)
    bad = (x < 0) | (x != np.round(x)) | (tx < 0) | (tx > T + 1e-9) | (T <= 0)
    bad |= ~np.isfinite(x + tx + T)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{int(bad.sum())} summary rows are inconsistent (need integer frequency >= 0 and "
            f"0 <= recency <= T, T > 0); e.g. row {summary.index[i]!r}: frequency={x[i]}, "
            f"recency={tx[i]}, T={T[i]}"
        )
    return x, np.minimum(tx, T), T


def _log_f(rx: np.ndarray, s: float, alpha: float, beta: float, y: np.ndarray) -> np.ndarray:
    """log F(y) = log[(r+s+x) int_y^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du] by the 2F1 form
    whose argument lies in [0, 1) (Fader & Hardie 2005); rx = r + x."""
    a = rx + s
    if alpha >= beta:
        hyp = special.hyp2f1(a, s + 1, a + 1, (alpha - beta) / (alpha + y))
        return np.log(hyp) - a * np.log(alpha + y)
    hyp = special.hyp2f1(a, rx, a + 1, (beta - alpha) / (beta + y))
    return np.log(hyp) - a * np.log(beta + y)


def _log_diff(l1: np.ndarray, l2: np.ndarray) -> np.ndarray:
    """log(e^l1 - e^l2) for l1 >= l2 (-inf where they are equal)."""
    with np.errstate(divide="ignore"):
        return l1 + np.log(-np.expm1(np.minimum(l2 - l1, 0.0)))


def _terms(
    x: np.ndarray, tx: np.ndarray, T: np.ndarray, r: float, alpha: float, s: float, beta: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The log-likelihood's pieces: log of the constant G(r+x) alpha^r beta^s / G(r), log of the
    'alive at T' term 1/((alpha+T)^(r+x) (beta+T)^s) and log of the 'left in (t_x, T]' term
    s/(r+s+x) A0 (= s G, G the integral of :func:`_gone_moments`). Where the 2F1 form is not
    finite although t_x < T (2F1 overflows for heavy buyers when s is large: x of 250-500 at
    s = 30), the 'left' term is s G by quadrature (:func:`_gone_moments`, equal to the 2F1 form
    to ~1e-12 where both are finite)."""
    rx = r + x
    log_c = special.gammaln(rx) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -rx * np.log(alpha + T) - s * np.log(beta + T)
    with np.errstate(invalid="ignore", over="ignore"):
        a0 = _log_diff(_log_f(rx, s, alpha, beta, tx), _log_f(rx, s, alpha, beta, T))
    gone = np.log(s) - np.log(rx + s) + a0
    shape = np.broadcast_shapes(np.shape(x), np.shape(tx), np.shape(T))
    gone = np.broadcast_to(gone, shape).copy()
    lost = ~np.isfinite(gone) & np.broadcast_to(tx < T, shape)
    if lost.any():
        xs, txs, Ts = (np.broadcast_to(v, shape)[lost] for v in (x, tx, T))
        gone[lost] = np.log(s) + _gone_moments(xs, txs, Ts, r, alpha, s, beta)[0]
    return log_c, alive, gone


def _loglik(x, tx, T, r, alpha, s, beta) -> np.ndarray:
    log_c, alive, gone = _terms(x, tx, T, r, alpha, s, beta)
    return log_c + np.logaddexp(alive, gone)


#: The fit's quadrature of the 'left in (t_x, T]' integral (:func:`_gone_moments`): 32-point
#: Gauss-Legendre nodes and weights on [0, 1], the cut where the integrand has fallen below
#: e^-40 of its value at t_x, and the rows per block (4,096 x 32 doubles: each temporary, 1 MB, stays
#: in the cache; 22 % less CPU than 16,384 rows).
_GL_NODES = (special.roots_legendre(32)[0] + 1) / 2
_GL_WEIGHTS = special.roots_legendre(32)[1] / 2
_GL_NODE_WEIGHTS = _GL_NODES * _GL_WEIGHTS
_GL_CUT = 40.0
_GL_BLOCK = 4_096


def _gone_moments(
    x: np.ndarray, tx: np.ndarray, T: np.ndarray, r: float, alpha: float, s: float, beta: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """log G and the means of log(alpha+u), log(beta+u), 1/(alpha+u), 1/(beta+u) under the
    density proportional to f(u) = (alpha+u)^-(r+x) (beta+u)^-(s+1) on [t_x, T], where
    G = int_{t_x}^T f(u) du = A0 / (r+s+x) (module docstring): the 'left in (t_x, T]' term is
    s G, and its derivatives in r, alpha, s, beta are these means (d/dr log G = -E[log(alpha+u)],
    d/dalpha log G = -(r+x) E[1/(alpha+u)], and alike for s and beta).

    By Gauss-Legendre quadrature (32 nodes) in v = log(gamma+u), gamma = min(alpha, beta):
    with D = |alpha-beta|, the other offset's term is log(other+u) = v + log1p(D e^-v), and
    f(u) du = exp(-(r+s+x) v - k log1p(D e^-v)) dv (k = s+1 if alpha <= beta, else r+x) is
    log-concave in v, smooth in a strip around the real axis and bounded there, so the rule
    converges geometrically. The interval is cut where the tangent of the concave log-integrand
    at t_x has fallen by 40 (the integrand is below that tangent), which keeps the steep decay
    of heavy buyers (large x) within the nodes. Held to 1e-12 against the 2F1 form and adaptive
    quadrature (tests/test_pareto_nbd.py). Where t_x = T: log G = -inf, means at u = T."""
    a = r + x
    m = a + s
    gam, d = min(alpha, beta), abs(alpha - beta)
    k = np.broadcast_to(s + 1.0 if alpha <= beta else a, np.shape(x))
    v_lo = np.log(gam + tx)
    span = np.log1p((T - tx) / (gam + tx))  # v(T) - v(t_x), exact for T close to t_x
    l1_lo = np.log1p(d / (gam + tx))
    rate = m - k * d / (gam + tx + d)  # -d/dv of the log-integrand at t_x
    length = np.where(rate > 0, np.minimum(span, _GL_CUT / np.where(rate > 0, rate, 1.0)), span)
    out = np.empty((5, len(x)))
    for i in range(0, len(x), _GL_BLOCK):
        b = slice(i, i + _GL_BLOCK)
        v = v_lo[b, None] + length[b, None] * _GL_NODES
        e = np.exp(-v)  # 1 / (gamma + u)
        de = d * e
        l1 = np.log1p(de)  # log(other + u) - v
        # the log-integrand relative to its value at v_lo (its maximum but where it first rises
        # at a rate below 1: then by at most a factor (gamma+T)/(gamma+t_x))
        w = np.exp(m[b, None] * (v_lo[b, None] - v) - k[b, None] * (l1 - l1_lo[b, None]))
        s0 = w @ _GL_WEIGHTS
        sv = v_lo[b] * s0 + length[b] * (w @ _GL_NODE_WEIGHTS)  # sum of w v, v linear in the node
        sl = (w * l1) @ _GL_WEIGHTS
        we = w * e
        s_near = we @ _GL_WEIGHTS
        s_far = (we / (1.0 + de)) @ _GL_WEIGHTS  # 1 / (other + u) = e / (1 + D e)
        with np.errstate(divide="ignore"):
            out[0, b] = np.log(s0 * length[b]) - m[b] * v_lo[b] - k[b] * l1_lo[b]
        out[1, b] = sv / s0
        out[2, b] = (sv + sl) / s0
        out[3, b] = s_near / s0
        out[4, b] = s_far / s0
    log_g, e_v, e_vl, e_near, e_far = out
    if alpha <= beta:
        return log_g, e_v, e_vl, e_near, e_far
    return log_g, e_vl, e_v, e_far, e_near


def _loglik_grad(
    x: np.ndarray, tx: np.ndarray, T: np.ndarray, r: float, alpha: float, s: float, beta: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row log-likelihood and its gradient in (log r, log alpha, log s, log beta) (rows x 4).

    With C = G(r+x) alpha^r beta^s / G(r), the 'alive' term A = (alpha+T)^-(r+x) (beta+T)^-s,
    the 'left' term s G (:func:`_gone_moments`) and pi = A / (A + s G) (P(alive)),
    LL = log C + log(A + s G) and, E the means of :func:`_gone_moments`,

        dLL/dr     = psi(r+x) - psi(r) + log alpha - pi log(alpha+T) - (1-pi) E[log(alpha+u)]
        dLL/dalpha = r/alpha - pi (r+x)/(alpha+T) - (1-pi) (r+x) E[1/(alpha+u)]
        dLL/ds     = log beta - pi log(beta+T) + (1-pi) (1/s - E[log(beta+u)])
        dLL/dbeta  = s/beta - pi s/(beta+T) - (1-pi) (s+1) E[1/(beta+u)]

    (psi the digamma function), each times its parameter for the log scale. The value equals
    :func:`_loglik` (the 2F1 form) to about 1e-12."""
    rx = r + x
    log_g, e_la, e_lb, e_ia, e_ib = _gone_moments(x, tx, T, r, alpha, s, beta)
    la, lb = np.log(alpha + T), np.log(beta + T)
    log_c = special.gammaln(rx) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -rx * la - s * lb
    gone = np.log(s) + log_g
    both = np.logaddexp(alive, gone)
    pi = np.exp(alive - both)
    po = 1.0 - pi
    grad = np.empty((len(x), 4))
    grad[:, 0] = r * (
        special.digamma(rx) - special.digamma(r) + np.log(alpha) - pi * la - po * e_la
    )
    grad[:, 1] = r - alpha * rx * (pi / (alpha + T) + po * e_ia)
    grad[:, 2] = s * (np.log(beta) - pi * lb - po * e_lb) + po
    grad[:, 3] = s - beta * (pi * s / (beta + T) + po * (s + 1) * e_ib)
    return log_c + both, grad


def pareto_nbd_loglik(
    summary: pd.DataFrame, r: float, alpha: float, s: float, beta: float
) -> pd.Series:
    """Per-customer Pareto/NBD log-likelihood at fixed parameters (Fader & Hardie 2005;
    the module docstring gives the formula), indexed like `summary`."""
    x, tx, T = _data(summary)
    return pd.Series(_loglik(x, tx, T, r, alpha, s, beta), index=summary.index, name="loglik")


#: The Pareto/NBD's boundaries with a well-defined limit (:class:`helpers.btyd.Limit`;
#: :func:`helpers.btyd.fit_log_params` stops there): Poisson purchases at one rate (r, alpha ->
#: infinity), no dropout (the mean dropout rate s / beta -> 0: s -> 0 or beta -> infinity; the
#: NBD), one dropout rate for everyone (s, beta -> infinity with s / beta fixed). Canonical
#: points: r = e^8; s = e^-10 with beta = e^10 (a mean dropout rate of e^-20 per time unit);
#: s = e^8.
LIMITS = (
    btyd.NO_RATE_HETEROGENEITY,
    btyd.Limit("no dropout", {"s": -1.0, "beta": 1.0}, {"s": -10.0, "beta": 10.0}, ("s", "beta")),
    btyd.Limit(
        "dropout rate without heterogeneity", {"s": 1.0}, {"s": 8.0}, ("s", "beta"), {"beta": 1.0}
    ),
)


def fit_pareto_nbd(
    summary: pd.DataFrame,
    weights: str | np.ndarray | pd.Series | None = None,
    time_unit: str | None = None,
) -> ModelFit:
    """Maximum-likelihood Pareto/NBD fit on ``frequency``, ``recency``, ``T``.

    `weights`: counts of identical customers (a column name or values per row); the fit runs on
    the distinct (x, t_x, T) rows with their counts (:func:`helpers.btyd.distinct_rows`), which
    equals the fit on one row per customer (``fit.extra["patterns"]``: distinct rows). Maximizes
    sum_i w_i log L_i over log(r, alpha, s, beta) with L-BFGS-B on the exact gradient
    (:func:`_loglik_grad`; restarted once from its optimum, then Newton steps on that gradient:
    :func:`helpers.btyd.fit_log_params`), so the optimum holds to ~1e-9 even on the flat (s, beta)
    ridge; standard errors from the Hessian of the weighted negative log-likelihood by central
    differences of the gradient (the observed information of all sum(w) customers). The
    log-likelihood is the quadrature's (equal to :func:`pareto_nbd_loglik` to ~1e-12 a
    customer). Before (numerical gradients on the 2F1 form, whose overflow for heavy buyers
    walled the optimizer in with a penalty) the fit could stop short of the optimum on large
    samples with heavy buyers. Returns a :class:`helpers.btyd.ModelFit`
    (``model="Pareto/NBD"``, params r, alpha, s, beta; ``n`` = number of customers).
    Known answer: CDNOW (weeks) r = 0.553, alpha = 10.578, s = 0.606, beta = 11.669,
    LL = -9595.0 (Schmittlein, Morrison & Colombo 1987; Fader, Hardie & Lee 2005).
    Where the likelihood rises to a limit of the model (:data:`LIMITS`: uniform purchases, one
    rate for everyone and nobody leaving), the fit stops at the boundary and says so in
    ``fit.extra["boundary"]`` (:func:`helpers.btyd.fit_log_params`); on such data it took 13-26 s
    on 200,000 customers (L-BFGS-B on all the rows, to the bounds of the log-parameters), 2-3 s
    with the stop.
    """
    x, tx, T = _data(summary)
    (x, tx, T), w, patterns = btyd.fit_rows(
        x, tx, T, weights=btyd.weights_of(summary, weights), grid=btyd.time_grid(summary)
    )
    unit = time_unit or summary.attrs.get("time_unit", "?")

    def objective(rows: np.ndarray | slice, ws: np.ndarray):
        xs, txs, Ts = x[rows], tx[rows], T[rows]

        def nll_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            params, value, g = np.exp(theta), 0.0, np.zeros(4)
            for b in btyd.blocks(len(ws)):  # temporaries of one block (btyd.BLOCK_ROWS)
                ll, grad = _loglik_grad(xs[b], txs[b], Ts[b], *params)
                value -= float(ws[b] @ ll)
                g -= ws[b] @ grad
            if not (np.isfinite(value) and np.all(np.isfinite(g))):  # far off: a finite penalty
                return 1e30, np.zeros(4)
            return value, g

        return nll_grad

    nll_grad = objective(slice(None), w)

    def nll(theta: np.ndarray) -> float:
        return nll_grad(theta)[0]

    sub = btyd.coarse_rows(w)  # the coarse stage's rows and counts, or None (few rows)
    n_cust, mean_t = w.sum(), float(w @ T) / w.sum()
    rate = max(float(w @ x) / n_cust, 0.05) / mean_t
    x0 = np.log([1.0, 1.0 / rate, 1.0, mean_t])
    names = ["r", "alpha", "s", "beta"]
    fit = btyd.fit_log_params(
        nll, x0, names, "Pareto/NBD", int(round(n_cust)), unit, nll_grad, newton_steps=2,
        coarse=objective(*sub) if sub is not None else None, limits=LIMITS,
    )  # fmt: skip
    fit.converged = fit.converged and bool(np.all(np.abs(np.log(list(fit.params.values()))) < 14.9))
    fit.extra.update(
        patterns=patterns,
        rows_fitted=len(w),
        resolution=summary.attrs.get("resolution", "as given"),
    )
    return fit


def _params(fit: ModelFit) -> tuple[float, float, float, float]:
    if fit.model != "Pareto/NBD":
        raise ValueError(f"not a Pareto/NBD fit: {fit.model!r}")
    return fit.r, fit.alpha, fit.s, fit.beta


def _log_p_alive(fit: ModelFit, x, tx, T) -> np.ndarray:
    _, alive, gone = _terms(x, tx, T, *_params(fit))
    return alive - np.logaddexp(alive, gone)


def p_alive(fit: ModelFit, summary: pd.DataFrame) -> pd.Series:
    """P(alive at T | x, t_x, T) (Schmittlein et al. 1987; Fader & Hardie 2005): the
    'alive' term's share of the likelihood,

        1 / (1 + s/(r+s+x) (alpha+T)^(r+x) (beta+T)^s A0),

    which falls with the time since the last purchase even for customers without a repeat
    purchase (unlike the BG/NBD). Indexed like `summary`."""
    x, tx, T = _data(summary)
    return pd.Series(np.exp(_log_p_alive(fit, x, tx, T)), index=summary.index, name="p_alive")


def _horizons(t: float | np.ndarray) -> tuple[np.ndarray, bool]:
    tt = np.atleast_1d(np.asarray(t, dtype=float))
    if tt.ndim != 1 or np.any(~np.isfinite(tt) | (tt < 0)):
        raise ValueError(f"horizons must be finite and >= 0, got {t!r}")
    return tt, np.ndim(t) == 0


def _shaped(values: np.ndarray, index: pd.Index, tt: np.ndarray, scalar: bool, name: str):
    if scalar:
        return pd.Series(values[:, 0], index=index, name=name)
    return pd.DataFrame(values, index=index, columns=pd.Index(tt, name="horizon"))


def _alive_time(s: float, base: np.ndarray, t: np.ndarray) -> np.ndarray:
    """E[time alive in (0, t] | alive at 0] with mu ~ Gamma(s, base):
    base/(s-1) [1 - (base/(base+t))^(s-1)], the limit base log(1 + t/base) at s = 1."""
    u = np.log1p(t / base)
    if abs(s - 1) < 1e-10:
        return base * u
    return base * -np.expm1(-(s - 1) * u) / (s - 1)


def expected_purchases(
    fit: ModelFit, summary: pd.DataFrame, t: float | np.ndarray
) -> pd.Series | pd.DataFrame:
    """Expected purchases in (T, T+t] given x, t_x, T (Schmittlein et al. 1987; Fader & Hardie
    2005), t in the fit's time unit:

        E[Y(t) | x, t_x, T] = (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)]
                              x P(alive | x, t_x, T)

    (at s = 1 the bracket over s-1 is its limit log(1 + t/(beta+T))). A scalar `t` gives a Series,
    an array of horizons a DataFrame with one column per horizon; both indexed like `summary`."""
    r, alpha, s, beta = _params(fit)
    x, tx, T = _data(summary)
    tt, scalar = _horizons(t)
    rate = ((r + x) / (alpha + T))[:, None]
    pa = np.exp(_log_p_alive(fit, x, tx, T))[:, None]
    out = rate * _alive_time(s, (beta + T)[:, None], tt[None, :]) * pa
    return _shaped(out, summary.index, tt, scalar, "expected_purchases")


def expected_purchases_new(fit: ModelFit, t: float | np.ndarray) -> np.ndarray:
    """E[X(t)] for a customer acquired at time 0, over (0, t] (Schmittlein et al. 1987):
    r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]."""
    r, alpha, s, beta = _params(fit)
    t = np.asarray(t, dtype=float)
    return r / alpha * _alive_time(s, np.asarray(beta, dtype=float), t)


def probability_of_purchases(fit: ModelFit, t: float | np.ndarray, x: int) -> np.ndarray:
    """P(X(t) = x): probability that a customer acquired at time 0 makes x purchases in (0, t]
    (Fader & Hardie 2006):

        G(r+x)/(G(r) x!) (alpha/(alpha+t))^r (t/(alpha+t))^x (beta/(beta+t))^s
        + alpha^r beta^s B(r+x, s+1)/B(r, s) [B1 - sum_{i=0..x} G(r+s+i)/(G(r+s) i!) t^i B2_i],

    for alpha >= beta B1 = 2F1(r+s, s+1; r+s+x+1; (alpha-beta)/alpha) / alpha^(r+s),
    B2_i = 2F1(r+s+i, s+1; r+s+x+1; (alpha-beta)/(alpha+t)) / (alpha+t)^(r+s+i); for alpha < beta
    the same with s+1 -> r+x and alpha -> beta in the arguments and powers."""
    r, alpha, s, beta = _params(fit)
    if x < 0 or x != int(x):
        raise ValueError(f"x must be an integer >= 0, got {x}")
    t = np.asarray(t, dtype=float)
    rs = r + s
    first = np.exp(
        special.gammaln(r + x)
        - special.gammaln(r)
        - special.gammaln(x + 1)
        + r * np.log(alpha / (alpha + t))
        + special.xlogy(x, t / (alpha + t))
        + s * np.log(beta / (beta + t))
    )
    if alpha >= beta:
        big, b2, z0 = alpha, s + 1, (alpha - beta) / alpha
    else:
        big, b2, z0 = beta, r + x, (beta - alpha) / beta
    c = rs + x + 1
    # the bracket times alpha^r beta^s, each term in logs (t^i / (big+t)^(r+s+i) overflows
    # for large x); the sum over i = 0..x is short
    log_const = r * np.log(alpha) + s * np.log(beta)
    b1 = np.exp(log_const + np.log(special.hyp2f1(rs, b2, c, z0)) - rs * np.log(big))
    total = np.zeros_like(t)
    for i in range(int(x) + 1):
        hyp = special.hyp2f1(rs + i, b2, c, (big - min(alpha, beta)) / (big + t))
        total = total + np.exp(
            log_const
            + special.gammaln(rs + i)
            - special.gammaln(rs)
            - special.gammaln(i + 1)
            + special.xlogy(i, t)
            + np.log(hyp)
            - (rs + i) * np.log(big + t)
        )
    bracket = np.atleast_1d(b1 - total).astype(float)
    # B1 - sum B2_i is a difference of nearly equal numbers when t is small against x (the
    # probability ~ t^x is tiny) and 2F1 overflows for large x: there, the bracket's integral
    # form is evaluated by quadrature instead (few points in practice)
    lost = ~np.isfinite(bracket) | (bracket <= 1e-7 * np.abs(np.atleast_1d(b1 + 0 * t)))
    tt = np.atleast_1d(t)
    for j in np.flatnonzero(lost):
        bracket[j] = _bracket_by_quadrature(r, alpha, s, beta, int(x), float(tt[j]))
    second = np.exp(special.betaln(r + x, s + 1) - special.betaln(r, s)) * bracket
    return first + (second if np.ndim(t) else second[0])


def _bracket_by_quadrature(
    r: float, alpha: float, s: float, beta: float, x: int, t: float
) -> float:
    """The bracket of :func:`probability_of_purchases` (with its factor alpha^r beta^s) from the
    integral it stands for: the second term of P(X(t) = x) is
    G(r+x)/(G(r) x!) alpha^r s beta^s J, J = int_0^t y^x (alpha+y)^-(r+x) (beta+y)^-(s+1) dy,
    so the bracket is that divided by B(r+x, s+1)/B(r, s). J by quad, the integrand scaled by
    its maximum (no under- or overflow)."""
    if t <= 0:
        return 0.0

    def log_g(y: np.ndarray) -> np.ndarray:
        return special.xlogy(x, y) - (r + x) * np.log(alpha + y) - (s + 1) * np.log(beta + y)

    grid = np.linspace(0, t, 257)
    peak = grid[int(np.argmax(log_g(grid)))]
    top = float(log_g(np.asarray(peak)))
    val, _ = integrate.quad(
        lambda y: float(np.exp(log_g(np.asarray(y)) - top)), 0, t, points=[peak], epsabs=0,
        epsrel=1e-12, limit=200,
    )  # fmt: skip
    log_j = np.log(val) + top if val > 0 else -np.inf
    log_second = (
        special.gammaln(r + x) - special.gammaln(r) - special.gammaln(x + 1)
        + r * np.log(alpha) + np.log(s) + s * np.log(beta) + log_j
    )  # fmt: skip
    return float(np.exp(log_second - special.betaln(r + x, s + 1) + special.betaln(r, s)))


def p_no_purchase(
    fit: ModelFit, summary: pd.DataFrame, tau: float | np.ndarray
) -> pd.Series | pd.DataFrame:
    """P(no purchase in (T, T+tau] | x, t_x, T): the probability that the customer, whatever
    the reason (gone, or alive and not buying), makes no purchase in the next `tau` time units.
    The probability of at least one purchase in that window is 1 minus it (the model's answer to
    a "no order in 90 days" churn label; not the same as 1 - P(alive)).

    Seeing no purchase through T+tau is the same history observed for tau longer, so

        P = L(x, t_x, T+tau) / L(x, t_x, T)

    with L the likelihood (Fader & Hardie 2005): equivalently 1 - P(alive) + P(alive)
    P0, P0 the new-customer P(X(tau) = 0) at the posterior parameters (r+x, alpha+T, s, beta+T).
    A scalar `tau` gives a Series, an array a DataFrame (one column per horizon)."""
    r, alpha, s, beta = _params(fit)
    x, tx, T = _data(summary)
    tt, scalar = _horizons(tau)
    now = _loglik(x, tx, T, r, alpha, s, beta)[:, None]
    X, TX = (
        np.broadcast_to(x[:, None], (len(x), len(tt))),
        np.broadcast_to(tx[:, None], (len(x), len(tt))),
    )
    later = _loglik(X, TX, T[:, None] + tt[None, :], r, alpha, s, beta)
    out = np.exp(np.minimum(later - now, 0.0))
    return _shaped(out, summary.index, tt, scalar, "p_no_purchase")


def leave_before_next_purchase(fit: ModelFit) -> float:
    """The probability that a customer's next event is leaving rather than buying, averaged over
    the customers: E[mu / (lambda + mu)] with lambda ~ Gamma(r, alpha), mu ~ Gamma(s, beta)
    independent (the competing exponential clocks of Schmittlein et al. 1987) -- the Pareto/NBD's
    counterpart of the BG/NBD's mean dropout probability after a purchase, a / (a + b).

    With B = M / (M + L) ~ Beta(s, r) (L ~ Gamma(r), M ~ Gamma(s) unit scale) and k = beta/alpha,
    mu / (lambda + mu) = B / (B + k (1 - B)), and Euler's integral for 2F1 gives

        E = s / (r + s) 2F1(1, r; r + s + 1; 1 - beta/alpha)

    (s / (r + s) when alpha = beta). Dimensionless: the same in any time unit. When beta > alpha
    the argument 1 - beta/alpha is negative, and far below -1 (customers who almost never leave:
    beta/alpha of 1e5 and more) scipy's 2F1 returns NaN; there Pfaff's transformation
    2F1(a, b; c; z) = (1 - z)^-a 2F1(a, c - b; c; z / (z - 1)) (Abramowitz & Stegun 1964, 15.3.4)
    gives E = s / (r + s) (alpha/beta) 2F1(1, s + 1; r + s + 1; 1 - alpha/beta), its argument in
    [0, 1)."""
    r, alpha, s, beta = _params(fit)
    if beta > alpha:
        f = special.hyp2f1(1.0, s + 1.0, r + s + 1.0, 1.0 - alpha / beta)
        return float(s / (r + s) * (alpha / beta) * f)
    return float(s / (r + s) * special.hyp2f1(1.0, r, r + s + 1.0, 1.0 - beta / alpha))


def fit_pareto_nbd_covariates(
    summary: pd.DataFrame,
    purchase: pd.DataFrame | None = None,
    dropout: pd.DataFrame | None = None,
    time_unit: str | None = None,
) -> ModelFit:
    """Maximum-likelihood Pareto/NBD with time-invariant covariates (Fader & Hardie 2007,
    "Incorporating time-invariant covariates into the Pareto/NBD and BG/NBD models"; the
    parametrization of R's CLVTools):

        alpha_i = alpha exp(-gamma' z_i),  beta_i = beta exp(-delta' w_i),

    so the mean purchase rate r / alpha_i is exp(gamma' z_i) times the base's and the mean
    dropout rate s / beta_i exp(delta' w_i) times; z_i the `purchase`, w_i the `dropout`
    covariates (numbers indexed like `summary`; dummy-code categories). Each customer's
    likelihood is the Pareto/NBD's (module docstring) at their alpha_i, beta_i, evaluated per
    distinct covariate pattern; fitted as :func:`fit_pareto_nbd` (L-BFGS-B on the exact gradient,
    then Newton steps: :func:`helpers.btyd.fit_log_params`; by the chain rule, d/dgamma =
    -z_i dLL/dlog alpha_i and d/ddelta = -w_i dLL/dlog beta_i, :func:`_loglik_grad`). Returns a :class:`ModelFit` (model
    ``"Pareto/NBD+covariates"``) with r, alpha, s, beta (all covariates 0) and per covariate
    ``rate_multiplier[name]`` = exp(gamma), ``dropout_multiplier[name]`` = exp(delta), Wald CIs
    on the log scale. Without covariates it is :func:`fit_pareto_nbd`."""
    x, tx, T = _data(summary)
    unit = time_unit or summary.attrs.get("time_unit", "?")
    Z = btyd.covariate_matrix(summary, purchase, "purchase")
    W = btyd.covariate_matrix(summary, dropout, "dropout")
    kz, kw = Z.shape[1], W.shape[1]
    pattern, inv = np.unique(np.hstack([Z, W]), axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    groups = [
        (pattern[g, :kz], pattern[g, kz:], np.flatnonzero(inv == g)) for g in range(len(pattern))
    ]

    def nll_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, s, beta = np.exp(theta[:4])
        gam, dlt = theta[4 : 4 + kz], theta[4 + kz :]
        total, grad = 0.0, np.zeros(len(theta))
        for z, w, rows in groups:
            a_g, b_g = alpha * np.exp(-(gam @ z)), beta * np.exp(-(dlt @ w))
            ll, g = _loglik_grad(x[rows], tx[rows], T[rows], r, a_g, s, b_g)
            g = g.sum(axis=0)  # in log r, log alpha_g, log s, log beta_g
            total -= float(ll.sum())
            grad[:4] -= g
            grad[4 : 4 + kz] += z * g[1]
            grad[4 + kz :] += w * g[3]
        if not (np.isfinite(total) and np.all(np.isfinite(grad))):  # far off: a finite penalty
            return 1e30, np.zeros(len(theta))
        return total, grad

    def nll(theta: np.ndarray) -> float:
        return nll_grad(theta)[0]

    n = len(x)
    rate = max(float(x.mean()), 0.05) / float(T.mean())
    x0 = np.concatenate([np.log([1.0, 1.0 / rate, 1.0, float(T.mean())]), np.zeros(kz + kw)])
    names = ["r", "alpha", "s", "beta"]
    names += [f"rate_multiplier[{c}]" for c in (purchase.columns if kz else [])]
    names += [f"dropout_multiplier[{c}]" for c in (dropout.columns if kw else [])]
    fit = btyd.fit_log_params(
        nll, x0, names, "Pareto/NBD+covariates", n, unit, nll_grad, newton_steps=2
    )
    fit.converged = fit.converged and bool(
        np.all(np.abs(np.log(list(fit.params.values())[:4])) < 14.9)
    )
    fit.extra.update(
        purchase_covariates=list(purchase.columns) if kz else [],
        dropout_covariates=list(dropout.columns) if kw else [],
    )
    return fit
