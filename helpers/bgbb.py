"""The BG/BB model of repeat buying with discrete purchase opportunities: Fader, Hardie & Shang
(2010), "Customer-base analysis in a discrete-time noncontractual setting", *Marketing Science*
29(6), 1086-1108.

Transactions can only happen at discrete opportunities (a yearly fund drive, an annual event, a
subscription box's monthly order). While alive a customer buys at each opportunity with
probability p ~ Beta(alpha, beta); at the start of each opportunity a living customer becomes
inactive with probability theta ~ Beta(gamma, delta), p and theta independent. Known answer, the
donations data (11,104 first-time supporters of 1995, six yearly opportunities 1996-2001):
alpha = 1.204, beta = 0.750, gamma = 0.657, delta = 2.783.

Input: one row per customer, or per distinct pattern with a count (``weights``): ``frequency`` x
(transactions in the n opportunities after the first, 0..n), ``recency`` t_x (the opportunity of
the last of them, 0 without any; x <= t_x <= n) and ``periods`` n, the names of the donations file
the lifetimes package ships (and of :mod:`helpers.clv` for x and t_x). Every prediction takes
such a DataFrame and returns a Series (one horizon) or DataFrame (several) indexed like it.

Standard errors: Wald, from the observed information (numerical Hessian of the weighted negative
log-likelihood, ``approx_hess3``) on the log scale, as in :mod:`helpers.clv`.
"""

from __future__ import annotations

import math
from importlib import metadata

import numpy as np
import pandas as pd
from scipy import optimize, special

from helpers import btyd
from helpers.btyd import ModelFit

__all__ = [
    "DONATIONS_PUBLISHED",
    "load_donations",
    "recency_frequency_table",
    "bgbb_loglik",
    "fit_bgbb",
    "p_alive",
    "expected_purchases",
    "expected_purchases_new",
]

#: Fader, Hardie & Shang (2010) on the donations data (time unit: one yearly opportunity).
DONATIONS_PUBLISHED: dict[str, float] = {
    "alpha": 1.204,
    "beta": 0.750,
    "gamma": 0.657,
    "delta": 2.783,
}

_COLS = ("frequency", "recency", "periods")


def load_donations() -> pd.DataFrame:
    """The donations data of Fader, Hardie & Shang (2010) from the file the ``lifetimes`` package
    ships (read from its install folder without importing its code): 22 distinct patterns with
    ``frequency``, ``recency``, ``periods`` (6) and ``weights`` (donors per pattern, 11,104 in
    all)."""
    try:
        path = metadata.distribution("lifetimes").locate_file("lifetimes/datasets/donations.csv")
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(
            "the donations data come with the 'lifetimes' package: run `make setup`"
        ) from None
    df = pd.read_csv(path)
    df.attrs["time_unit"] = "opportunity"
    return df


def _data(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    missing = [c for c in _COLS if c not in summary.columns]
    if missing:
        raise ValueError(f"the summary needs the columns {list(_COLS)}; missing {missing}")
    x, tx, n = (summary[c].to_numpy(dtype=float) for c in _COLS)
    bad = ~np.isfinite(x + tx + n) | (x != np.round(x)) | (tx != np.round(tx))
    bad |= (n != np.round(n)) | (x < 0) | (tx > n) | (n < 1)
    bad |= np.where(x > 0, tx < x, tx != 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{int(bad.sum())} summary rows are inconsistent (need integers with 0 <= frequency <= "
            f"recency <= periods, periods >= 1, recency 0 without transactions); e.g. row "
            f"{summary.index[i]!r}: frequency={x[i]}, recency={tx[i]}, periods={n[i]}"
        )
    return x, tx, n


def recency_frequency_table(
    summary: pd.DataFrame, weights: str | np.ndarray | pd.Series | None = None
) -> pd.DataFrame:
    """The data as the recency/frequency table of Fader, Hardie & Shang (2010): customers by
    number of transactions x (rows, n down to 0) and year of the last transaction t_x (columns,
    0..n), zeros where no customer has the pattern. One table when every customer had the same
    number of opportunities n; otherwise the rows are (periods, frequency)."""
    x, tx, n = _data(summary)
    w = btyd.weights_of(summary, weights)
    df = pd.DataFrame({"periods": n.astype(int), "frequency": x.astype(int),
                       "recency": tx.astype(int), "customers": w})  # fmt: skip
    rows = ["frequency"] if len(np.unique(n)) == 1 else ["periods", "frequency"]
    table = df.pivot_table(index=rows, columns="recency", values="customers", aggfunc="sum",
                           fill_value=0)  # fmt: skip
    nmax = int(n.max())
    table = table.reindex(columns=range(nmax + 1), fill_value=0)
    if rows == ["frequency"]:
        table = table.reindex(range(nmax, -1, -1), fill_value=0)
    else:
        table = table.sort_index(ascending=[True, False])
    if np.all(w == np.round(w)):
        table = table.astype(int)
    table.columns.name = "recency (opportunity of the last transaction)"
    return table


def _log_terms(
    x: np.ndarray, tx: np.ndarray, n: np.ndarray, alpha: float, beta: float, gamma: float,
    delta: float,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """log of the 'alive through n' term and log of the 'left at some opportunity after t_x'
    sum of the likelihood (Fader, Hardie & Shang 2010):

        B(alpha+x, beta+n-x)/B(alpha, beta) B(gamma, delta+n)/B(gamma, delta),
        sum_{i=0}^{n-t_x-1} B(alpha+x, beta+t_x-x+i)/B(alpha, beta)
                            B(gamma+1, delta+t_x+i)/B(gamma, delta).

    The sum runs over a (rows x max(n - t_x)) matrix with the unused cells at -inf."""
    lab, lgd = special.betaln(alpha, beta), special.betaln(gamma, delta)
    alive = special.betaln(alpha + x, beta + n - x) - lab + special.betaln(gamma, delta + n) - lgd
    width = int(np.max(n - tx)) if len(n) else 0
    i = np.arange(max(width, 1))[None, :]
    used = i < (n - tx)[:, None]
    xx, tt = x[:, None], tx[:, None]
    with np.errstate(invalid="ignore"):
        cells = (
            special.betaln(alpha + xx, beta + tt - xx + i) - lab
            + special.betaln(gamma + 1, delta + tt + i) - lgd
        )  # fmt: skip
    gone = special.logsumexp(np.where(used, cells, -np.inf), axis=1)
    return alive, gone


def _patterns(x: np.ndarray, tx: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (x, t_x, n) patterns (discrete data have few: 22 for the 11,104 donors) as a
    (k x 3) array and each row's pattern number, by one integer code per row."""
    base = int(n.max()) + 1
    code = (n.astype(np.int64) * base + tx.astype(np.int64)) * base + x.astype(np.int64)
    uniq, inv = np.unique(code, return_inverse=True)
    pat = np.column_stack([uniq % base, (uniq // base) % base, uniq // base**2]).astype(float)
    return pat, inv.reshape(-1)


def _loglik(x, tx, n, alpha, beta, gamma, delta) -> np.ndarray:
    """Per-row log-likelihood, computed once per distinct pattern."""
    pat, inv = _patterns(x, tx, n)
    alive, gone = _log_terms(*pat.T, alpha, beta, gamma, delta)
    return np.logaddexp(alive, gone)[inv]


def bgbb_loglik(
    summary: pd.DataFrame, alpha: float, beta: float, gamma: float, delta: float
) -> pd.Series:
    """Per-row BG/BB log-likelihood at fixed parameters (Fader, Hardie & Shang 2010; see
    :func:`_log_terms`), indexed like `summary` (one customer's, not times the weight)."""
    x, tx, n = _data(summary)
    return pd.Series(
        _loglik(x, tx, n, alpha, beta, gamma, delta), index=summary.index, name="loglik"
    )


def fit_bgbb(
    summary: pd.DataFrame, weights: str | np.ndarray | pd.Series | None = None
) -> ModelFit:
    """Maximum-likelihood BG/BB fit on ``frequency``, ``recency``, ``periods``.

    `weights`: counts of identical customers (a column name, e.g. ``"weights"`` for the
    donations file, or values per row); the fit on distinct rows with counts equals the fit on
    one row per customer. Maximizes sum_i w_i log L_i over log(alpha, beta, gamma, delta)
    (L-BFGS-B, then Newton steps on the numerical Hessian); standard errors from that Hessian.
    Returns a :class:`helpers.btyd.ModelFit` (``model="BG/BB"``, ``n`` = number of customers).
    Known answer: donations, alpha = 1.204, beta = 0.750, gamma = 0.657, delta = 2.783 (Fader,
    Hardie & Shang 2010)."""
    x, tx, n = _data(summary)
    w = btyd.weights_of(summary, weights)
    keep = w > 0
    pat, inv = _patterns(x[keep], tx[keep], n[keep])
    counts = np.bincount(inv, weights=w[keep], minlength=len(pat))  # customers per pattern

    def nll(theta: np.ndarray) -> float:
        alive, gone = _log_terms(*pat.T, *np.exp(theta))
        return -float(counts @ np.logaddexp(alive, gone))

    def mean_nll(theta: np.ndarray) -> float:
        value = nll(theta) / counts.sum()
        return value if np.isfinite(value) else 1e10

    bounds = [(-12.0, 12.0)] * 4
    res = optimize.minimize(mean_nll, np.zeros(4), method="L-BFGS-B", bounds=bounds,
                            options={"ftol": 1e-13, "gtol": 1e-9})  # fmt: skip
    theta, value, hess = btyd.newton_polish(nll, res.x)
    try:
        cov = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        cov = np.full((4, 4), np.nan)
    params = dict(zip(["alpha", "beta", "gamma", "delta"], np.exp(theta).tolist(), strict=True))
    converged = bool(res.success) and bool(np.all(np.abs(theta) < 11.9))
    unit = summary.attrs.get("time_unit", "opportunity")
    return ModelFit("BG/BB", params, -value, int(round(counts.sum())), unit, cov, converged)


def _params(fit: ModelFit) -> tuple[float, float, float, float]:
    if fit.model != "BG/BB":
        raise ValueError(f"not a BG/BB fit: {fit.model!r}")
    return fit.alpha, fit.beta, fit.gamma, fit.delta


def p_alive(fit: ModelFit, summary: pd.DataFrame) -> pd.Series:
    """P(alive at opportunity n+1 | x, t_x, n) (Fader, Hardie & Shang 2010):

        B(alpha+x, beta+n-x)/B(alpha, beta) B(gamma, delta+n+1)/B(gamma, delta) / L(x, t_x, n).

    Indexed like `summary`."""
    alpha, beta, gamma, delta = _params(fit)
    x, tx, n = _data(summary)
    ll = _loglik(x, tx, n, alpha, beta, gamma, delta)
    log_alive_next = (
        special.betaln(alpha + x, beta + n - x) - special.betaln(alpha, beta)
        + special.betaln(gamma, delta + n + 1) - special.betaln(gamma, delta)
    )  # fmt: skip
    return pd.Series(np.exp(log_alive_next - ll), index=summary.index, name="p_alive")


def _survival_sum(gamma: float, delta: float, n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """sum_{j=1}^{k} E[(1-theta)^(n+j)] = sum_j B(gamma, delta+n+j)/B(gamma, delta), in closed
    form (Fader, Hardie & Shang 2010):

        delta/(gamma-1) G(gamma+delta)/G(1+delta)
        [G(1+delta+n)/G(gamma+delta+n) - G(1+delta+n+k)/G(gamma+delta+n+k)],

    evaluated as -g(n) expm1(log g(n+k) - log g(n)) / (gamma-1), g(m) = the m-th term with its
    constant, so it stays accurate for gamma near 1 (its limit at gamma = 1 is
    g(n) (psi(1+delta+n+k) - psi(1+delta+n))). Near gamma = 1 the differences of log-gammas
    G(1+delta+m)/G(gamma+delta+m) are taken from their Taylor series in gamma-1 (polygamma
    terms to the fourth order), not as differences of two nearly equal numbers."""
    eps = gamma - 1
    lc = np.log(delta) + special.gammaln(gamma + delta) - special.gammaln(1 + delta)

    def log_ratio(m: np.ndarray) -> np.ndarray:  # log G(1+delta+m) - log G(gamma+delta+m)
        a = 1 + delta + m
        if abs(eps) < 1e-3:
            return -sum(
                eps**j / math.factorial(j) * special.polygamma(j - 1, a) for j in range(1, 6)
            )
        return special.gammaln(a) - special.gammaln(a + eps)

    gn = lc + log_ratio(n)
    if abs(eps) < 1e-12:
        return np.exp(gn) * (special.digamma(1 + delta + n + k) - special.digamma(1 + delta + n))
    return -np.exp(gn) * np.expm1(log_ratio(n + k) - log_ratio(n)) / eps


def _horizons(k: float | np.ndarray) -> tuple[np.ndarray, bool]:
    kk = np.atleast_1d(np.asarray(k, dtype=float))
    if kk.ndim != 1 or np.any(~np.isfinite(kk) | (kk < 0) | (kk != np.round(kk))):
        raise ValueError(f"horizons are whole numbers of opportunities >= 0, got {k!r}")
    return kk, np.ndim(k) == 0


def expected_purchases(
    fit: ModelFit, summary: pd.DataFrame, n_star: int | np.ndarray
) -> pd.Series | pd.DataFrame:
    """Expected transactions in the next n* opportunities, n+1..n+n*, given x, t_x, n (Fader,
    Hardie & Shang 2010):

        1/L(x, t_x, n) B(alpha+x+1, beta+n-x)/B(alpha, beta) delta/(gamma-1)
        G(gamma+delta)/G(1+delta) [G(1+delta+n)/G(gamma+delta+n)
                                   - G(1+delta+n+n*)/G(gamma+delta+n+n*)].

    A scalar `n_star` gives a Series, an array a DataFrame (one column per horizon), indexed like
    `summary`."""
    alpha, beta, gamma, delta = _params(fit)
    x, tx, n = _data(summary)
    kk, scalar = _horizons(n_star)
    ll = _loglik(x, tx, n, alpha, beta, gamma, delta)
    lead = np.exp(special.betaln(alpha + x + 1, beta + n - x) - special.betaln(alpha, beta) - ll)
    out = lead[:, None] * _survival_sum(gamma, delta, n[:, None], kk[None, :])
    if scalar:
        return pd.Series(out[:, 0], index=summary.index, name="expected_purchases")
    return pd.DataFrame(out, index=summary.index, columns=pd.Index(kk.astype(int), name="horizon"))


def expected_purchases_new(fit: ModelFit, n: int | np.ndarray) -> np.ndarray:
    """E[X(n)]: expected transactions of a customer acquired now in their first n opportunities
    (Fader, Hardie & Shang 2010):

        alpha/(alpha+beta) delta/(gamma-1) [1 - G(gamma+delta)/G(gamma+delta+n)
                                                 G(1+delta+n)/G(1+delta)]."""
    alpha, beta, gamma, delta = _params(fit)
    kk, _ = _horizons(n)
    out = alpha / (alpha + beta) * _survival_sum(gamma, delta, np.zeros_like(kk), kk)
    return out[0] if np.ndim(n) == 0 else out
