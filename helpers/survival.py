"""Contractual retention: the shifted-beta-geometric (sBG) model.

Story (P. S. Fader & B. G. S. Hardie (2007), "How to project customer retention", *Journal of
Interactive Marketing* 21(1), 76-90): at the end of every period an active customer churns with
probability ``theta``, constant for that customer; ``theta`` varies across customers as
``Beta(alpha, beta)``. With ``T`` = the period in which a customer churns (T = 1, 2, ...):

* churn probability   P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta)
* survival            S(t) = P(T > t) = B(alpha, beta + t) / B(alpha, beta),  S(0) = 1
* retention rate      r(t) = S(t) / S(t - 1) = (beta + t - 1) / (alpha + beta + t - 1)

r(t) *rises* with t although no customer changes: the high-``theta`` customers leave first
(sorting). The log-likelihood of ``d_t`` customers churning in period t and ``c_t`` still active
(censored) after t periods is ``sum_t d_t log P(T = t) + c_t log S(t)``; it is written with
``scipy.special.betaln`` so it stays finite for any positive parameters, and maximized over
``(log alpha, log beta)`` with ``scipy.optimize``.

Time unit: whatever the data uses (years in the paper, calendar months for the subscriptions).

Judging predicted survival curves of held-out customers (any model's: sBG, Cox, Kaplan-Meier):
Harrell's and Uno's IPCW concordance, the cumulative/dynamic AUC(t) and the integrated Brier score
(scikit-survival computes them; :func:`survival_prediction_metrics`), with paired-bootstrap
intervals of C and the integrated Brier score and of their differences from a baseline
(:func:`survival_bootstrap`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from helpers import periods
from helpers.stats import bootstrap_comparison

__all__ = [
    "FADER_HARDIE_2007",
    "SBGFit",
    "sbg_loglik",
    "fit_sbg",
    "fit_sbg_groups",
    "subscription_durations",
    "survivors_to_counts",
    "durations_to_counts",
    "geometric_survival",
    "life_table",
    "sample_sbg",
    "derl_interval",
    "active_projection",
    "SBGRegression",
    "fit_sbg_regression",
    "harrell_c",
    "survival_prediction_metrics",
    "survival_bootstrap",
]

FADER_HARDIE_2007: dict = {
    "source": "Fader & Hardie (2007), How to project customer retention, J. Interactive Marketing 21(1), 76-90",
    "years": tuple(range(13)),
    # survivors per 1,000 customers at the start of years 0..12 (Table 1 / Figure 1 of the paper)
    "survivors": {
        "regular": (1000, 631, 468, 382, 326, 289, 262, 241, 223, 207, 194, 183, 173),
        "high_end": (1000, 869, 743, 653, 593, 551, 517, 491, 468, 445, 427, 409, 394),
    },
    "calibration_years": 7,  # the model is fitted on years 0..7, years 8..12 are the holdout
    "mle": {
        "regular": {"alpha": 0.704, "beta": 1.182, "loglik": -1680.27},
        "high_end": {"alpha": 0.668, "beta": 3.806, "loglik": -1611.16},
    },
    # expected survivors per 1,000 projected by the regular-segment fit, years 8..12
    "projected_regular": {8: 220.1, 9: 204.4, 10: 191.2, 11: 179.9, 12: 170.1},
}
"""Published data and results of Fader & Hardie (2007), shared by the tests and notebook 02."""


# ----------------------------------------------------------------------------- data preparation


def survivors_to_counts(survivors: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Survivor counts ``S_0, S_1, ..., S_T`` (customers still active at the start of each period)
    to ``(churned, censored)`` arrays indexed by period t = 0..T: ``churned[t] = S_{t-1} - S_t``
    (t >= 1) and ``censored[T] = S_T`` (still active at the end of the data)."""
    s = np.asarray(survivors, dtype=float)
    if s.ndim != 1 or s.size < 2:
        raise ValueError("survivors needs at least two values: the cohort size S_0 and S_1")
    if np.any(np.diff(s) > 0) or np.any(s < 0):
        raise ValueError("survivors must be non-negative and non-increasing")
    churned = np.concatenate([[0.0], -np.diff(s)])
    censored = np.zeros_like(s)
    censored[-1] = s[-1]
    return churned, censored


def durations_to_counts(
    durations: Sequence[int] | np.ndarray,
    churned: Sequence[bool] | np.ndarray,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer data to ``(churned, censored)`` counts by period.

    ``durations[i]``: whole periods customer i was observed paying; if ``churned[i]`` the customer
    churned at the end of that period (T = duration >= 1), else they were still active (T > duration).
    """
    d = np.asarray(durations)
    c = np.asarray(churned, dtype=bool)
    if d.shape != c.shape:
        raise ValueError("durations and churned must have the same length")
    if d.size == 0:
        raise ValueError("no customers to fit")
    if np.any(d < 0) or np.any(d != np.floor(d)):
        raise ValueError("durations must be whole, non-negative numbers of periods")
    d = d.astype(np.int64)
    if np.any(d[c] < 1):
        raise ValueError("a churned customer must have been observed for at least one period")
    w = np.ones(d.size) if weights is None else np.asarray(weights, dtype=float)
    size = int(d.max()) + 1
    return (np.bincount(d[c], weights=w[c], minlength=size).astype(float),
            np.bincount(d[~c], weights=w[~c], minlength=size).astype(float))  # fmt: skip


def subscription_durations(
    subscriptions: pd.DataFrame,
    as_of: str | pd.Timestamp | None = None,
    *,
    start_col: str = "start_date",
    end_col: str = "end_date",
) -> pd.DataFrame:
    """Whole calendar months each subscription was observed, and whether it churned.

    ``months`` = whole months from ``start_date`` to ``end_date`` (churned) or to ``as_of`` (still
    active, right-censored): the largest k with ``start + k months <= date``. An end date after
    ``as_of`` counts as still active at ``as_of``; subscriptions starting after ``as_of`` are
    dropped (not yet started). Returns the remaining rows with the input's columns plus
    ``months`` (int) and ``churned`` (bool).
    """
    if as_of is None:
        as_of = periods.default_as_of(subscriptions[[start_col, end_col]].stack())
    end_of_day = periods.as_of_end(as_of)  # rows on or before the as-of day (helpers.periods)
    subscriptions = subscriptions[subscriptions[start_col] < end_of_day]
    start, end = subscriptions[start_col], subscriptions[end_col]
    churned = end.notna() & (end < end_of_day)
    # still active: observed to the as-of day's start, never before the subscription's own start
    stop = end.where(churned, start.clip(lower=periods.as_of_day(as_of)))
    months = (stop.dt.year - start.dt.year) * 12 + (stop.dt.month - start.dt.month)
    # a month is complete only once the start's day-of-month (and time) has been reached
    start_in_month = start - start.dt.to_period("M").dt.start_time
    stop_in_month = stop - stop.dt.to_period("M").dt.start_time
    months = months - (stop_in_month < start_in_month).astype(int)
    return subscriptions.assign(months=months.astype(np.int64), churned=churned.to_numpy())


# ----------------------------------------------------------------------------- the model


def _log_pmf(t: np.ndarray, a: float, b: float) -> np.ndarray:
    """log P(T = t) = log B(a + 1, b + t - 1) - log B(a, b), t >= 1."""
    return special.betaln(a + 1, b + t - 1) - special.betaln(a, b)


def _log_survival(t: np.ndarray, a: float, b: float) -> np.ndarray:
    """log S(t) = log B(a, b + t) - log B(a, b), t >= 0."""
    return special.betaln(a, b + t) - special.betaln(a, b)


def sbg_loglik(alpha: float, beta: float, churned: np.ndarray, censored: np.ndarray) -> float:
    """sBG log-likelihood ``sum_t churned[t] log P(T=t) + censored[t] log S(t)`` (Fader & Hardie
    2007, generalized to right censoring at any period); arrays indexed by period t = 0, 1, ..."""
    t = np.arange(len(churned), dtype=float)
    ll_churn = churned[1:] @ _log_pmf(t[1:], alpha, beta) if len(churned) > 1 else 0.0
    return float(ll_churn + censored @ _log_survival(t, alpha, beta))


@dataclass(frozen=True)
class SBGFit:
    """A fitted sBG model: ``alpha``, ``beta`` of the Beta churn-probability distribution, the
    maximized log-likelihood ``loglik``, and the data it was fitted on (counts by period)."""

    alpha: float
    beta: float
    loglik: float
    churned: np.ndarray = field(repr=False)
    censored: np.ndarray = field(repr=False)
    converged: bool = True

    @property
    def n(self) -> float:
        """Customers in the fit."""
        return float(self.churned.sum() + self.censored.sum())

    @property
    def mean_churn(self) -> float:
        """E[theta] = alpha / (alpha + beta): the churn probability of a newly acquired customer."""
        return self.alpha / (self.alpha + self.beta)

    def survival(self, t: float | np.ndarray) -> np.ndarray:
        """S(t) = B(alpha, beta + t) / B(alpha, beta): share of a cohort still active after t periods."""
        return np.exp(_log_survival(np.asarray(t, dtype=float), self.alpha, self.beta))

    def churn_pmf(self, t: float | np.ndarray) -> np.ndarray:
        """P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta): share churning in period t >= 1."""
        return np.exp(_log_pmf(np.asarray(t, dtype=float), self.alpha, self.beta))

    def retention(self, t: float | np.ndarray) -> np.ndarray:
        """r(t) = (beta + t - 1) / (alpha + beta + t - 1): share of those active after t - 1
        periods who renew in period t (t >= 1); rises with t by sorting."""
        t = np.asarray(t, dtype=float)
        return (self.beta + t - 1) / (self.alpha + self.beta + t - 1)

    def projection(self, periods: int | Sequence[int], n0: float = 1000.0) -> pd.Series:
        """Expected survivors ``n0 * S(t)`` of a cohort of ``n0`` customers, for t = 0..periods
        (an int) or the given periods."""
        t = np.arange(periods + 1) if np.isscalar(periods) else np.asarray(periods)
        return pd.Series(
            n0 * self.survival(t), index=pd.Index(t, name="period"), name="expected_survivors"
        )

    def derl(self, discount_rate: float, renewals: int | np.ndarray = 0) -> np.ndarray:
        """Discounted expected residual lifetime, in payments, of a customer who has made
        ``renewals`` renewals (``renewals + 1`` payments), evaluated just before the next
        renewal decision (next payment undiscounted, later ones discounted at ``discount_rate``
        per period), Fader & Hardie (2010), "Customer-base valuation in a contractual setting:
        the perils of ignoring heterogeneity", *Marketing Science* 29(1), 85-93:

            DERL = (beta + n) / (alpha + beta + n) * 2F1(1, beta + n + 1; alpha + beta + n + 1; 1 / (1 + d))

        with n = ``renewals``; equivalently ``E[(1 - theta)(1 + d) / (d + theta)]`` over the
        posterior ``theta ~ Beta(alpha, beta + n)``, which is integrated numerically where
        ``hyp2f1`` does not converge (large alpha + beta). Multiply by the margin per period for a
        customer's residual value.
        """
        n = np.asarray(renewals, dtype=float)
        a, b, d = self.alpha, self.beta, float(discount_rate)
        if d <= 0:
            raise ValueError(
                "discount_rate must be positive (the undiscounted sum can be infinite)"
            )
        out = np.asarray(
            (b + n) / (a + b + n) * special.hyp2f1(1.0, b + n + 1, a + b + n + 1, 1.0 / (1.0 + d))
        )
        bad = ~np.isfinite(out)
        if bad.any():
            expect = np.vectorize(
                lambda k: stats.beta(a, b + k).expect(lambda th: (1 - th) * (1 + d) / (d + th))
            )
            out = np.where(bad, expect(np.broadcast_to(n, out.shape)), out)
        return out

    def confint(self, level: float = 0.95, method: str = "profile") -> pd.DataFrame:
        """Confidence intervals for alpha and beta.

        ``method="profile"`` (default): profile likelihood, {x : 2 (LL_max - max_other LL(x, .)) <=
        chi2_1(level)}; ``"wald"``: normal approximation on log-parameters from the numerical
        Hessian (asymmetric on the original scale). Returns rows alpha, beta; columns estimate,
        lower, upper.
        """
        if method == "profile":
            rows = {name: _profile_interval(self, name, level) for name in ("alpha", "beta")}
        elif method == "wald":
            rows = _wald_intervals(self, level)
        else:
            raise ValueError("method must be 'profile' or 'wald'")
        out = pd.DataFrame(rows, index=["lower", "upper"]).T
        out.insert(0, "estimate", [self.alpha, self.beta])
        return out


def _negll(logp: np.ndarray, churned: np.ndarray, censored: np.ndarray) -> float:
    a, b = np.exp(logp)
    return -sbg_loglik(a, b, churned, censored)


def _maximize(
    churned: np.ndarray, censored: np.ndarray, x0: np.ndarray
) -> tuple[np.ndarray, float, bool]:
    res = optimize.minimize(_negll, x0, args=(churned, censored), method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000})  # fmt: skip
    # polish with a quasi-Newton step from the simplex optimum
    res2 = optimize.minimize(
        _negll, res.x, args=(churned, censored), method="BFGS", options={"gtol": 1e-9}
    )
    best = res2 if res2.fun <= res.fun else res
    return best.x, -float(best.fun), bool(res.success or res2.success)


def fit_sbg(
    survivors: Sequence[float] | None = None,
    *,
    durations: Sequence[int] | None = None,
    churned: Sequence[bool] | None = None,
    weights: Sequence[float] | None = None,
) -> SBGFit:
    """Maximum-likelihood sBG fit (Fader & Hardie 2007).

    Either ``survivors`` (``S_0..S_T``: a cohort's active customers at the start of each period,
    e.g. per 1,000 as in the paper) or per-customer ``durations`` (whole periods observed) with
    ``churned`` flags (True = churned at the end of that period, False = still active,
    right-censored), e.g. from :func:`subscription_durations`.
    """
    if (survivors is None) == (durations is None):
        raise ValueError("give either survivors or durations (with churned)")
    if survivors is not None:
        d, c = survivors_to_counts(survivors)
    else:
        if churned is None:
            raise ValueError("durations need the churned flags")
        d, c = durations_to_counts(
            durations, churned, None if weights is None else np.asarray(weights)
        )
    if d.sum() == 0:
        raise ValueError("no churn observed: the sBG parameters are not identified")
    # start from a moment-like guess: mean churn = first-period churn share, moderate heterogeneity
    p1 = max(min(d[1] / max(d.sum() + c.sum() - c[0], 1.0), 0.95), 0.01) if len(d) > 1 else 0.3
    x0 = np.log([p1 * 2.0, (1 - p1) * 2.0])
    x, ll, ok = _maximize(d, c, x0)
    a, b = np.exp(x)
    return SBGFit(alpha=float(a), beta=float(b), loglik=ll, churned=d, censored=c, converged=ok)


def _profile_ll(fit: SBGFit, name: str, value: float) -> float:
    """max over the other parameter of LL with `name` fixed at `value`."""
    other0 = np.log(fit.beta if name == "alpha" else fit.alpha)

    def negll(x: float) -> float:
        a, b = (value, np.exp(x)) if name == "alpha" else (np.exp(x), value)
        return -sbg_loglik(a, b, fit.churned, fit.censored)

    res = optimize.minimize_scalar(negll, bracket=(other0 - 0.5, other0 + 0.5), tol=1e-10)
    return -float(res.fun)


def _profile_interval(fit: SBGFit, name: str, level: float) -> tuple[float, float]:
    crit = stats.chi2.ppf(level, df=1) / 2.0
    est = fit.alpha if name == "alpha" else fit.beta

    def gap(log_v: float) -> float:  # > 0 inside the interval
        return crit - (fit.loglik - _profile_ll(fit, name, float(np.exp(log_v))))

    bounds = []
    for direction in (-1.0, 1.0):
        step, x = 0.1, np.log(est)
        while gap(x + direction * step) > 0 and step < 20:
            step *= 2.0
        if step >= 20:
            bounds.append(np.inf if direction > 0 else 0.0)
            continue
        lo, hi = sorted((x + direction * step / 2 if step > 0.1 else x, x + direction * step))
        bounds.append(float(np.exp(optimize.brentq(gap, lo, hi, xtol=1e-10))))
    return bounds[0], bounds[1]


def _wald_intervals(fit: SBGFit, level: float) -> dict[str, tuple[float, float]]:
    x = np.log([fit.alpha, fit.beta])
    h = 1e-4
    hess = np.empty((2, 2))
    f = lambda z: _negll(z, fit.churned, fit.censored)  # noqa: E731
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * h, np.eye(2)[j] * h
            hess[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (
                4 * h * h
            )
    se = np.sqrt(np.diag(np.linalg.inv(hess)))
    z = stats.norm.ppf(0.5 + level / 2)
    return {
        name: (float(np.exp(x[k] - z * se[k])), float(np.exp(x[k] + z * se[k])))
        for k, name in enumerate(("alpha", "beta"))
    }


def fit_sbg_groups(
    durations: pd.DataFrame,
    by: str = "plan",
    *,
    months_col: str = "months",
    churned_col: str = "churned",
    level: float = 0.95,
    method: str = "profile",
) -> pd.DataFrame:
    """Fit one sBG per group (plan, cohort, ...) of per-customer durations (as returned by
    :func:`subscription_durations`). Returns one row per group: n, churned, alpha, beta, loglik,
    the confidence limits ``alpha_lower``..``beta_upper`` and the mean churn alpha / (alpha + beta).
    The fitted :class:`SBGFit` objects are in ``result.attrs["fits"]``."""
    fits, rows = {}, []
    for key, g in durations.groupby(by, sort=True):
        fit = fit_sbg(durations=g[months_col].to_numpy(), churned=g[churned_col].to_numpy())
        ci = fit.confint(level, method)
        fits[key] = fit
        rows.append({by: key, "n": len(g), "churned": int(g[churned_col].sum()), "alpha": fit.alpha, "beta": fit.beta,
                     "alpha_lower": ci.loc["alpha", "lower"], "alpha_upper": ci.loc["alpha", "upper"],
                     "beta_lower": ci.loc["beta", "lower"], "beta_upper": ci.loc["beta", "upper"],
                     "loglik": fit.loglik, "mean_churn": fit.mean_churn})  # fmt: skip
    out = pd.DataFrame(rows).set_index(by)
    out.attrs["fits"] = fits
    return out


def geometric_survival(
    churned: np.ndarray, censored: np.ndarray, t: float | np.ndarray
) -> np.ndarray:
    """The naive projection that ignores heterogeneity: one churn probability for everybody,
    ``theta = churners / customer-periods at risk`` (the MLE of a geometric model), so
    ``S(t) = (1 - theta)^t``; retention is constant at ``1 - theta`` and the tail is too low."""
    periods = np.arange(len(churned))
    exposure = churned @ periods + censored @ periods
    theta = churned.sum() / exposure
    return (1 - theta) ** np.asarray(t, dtype=float)


def life_table(churned: np.ndarray, censored: np.ndarray) -> pd.DataFrame:
    """The observed (model-free) retention by tenure, a discrete-time Kaplan-Meier table
    (Kaplan & Meier 1958): for period t = 1, 2, ... ``at_risk`` = customers observed into
    period t (churned in t or later, or still active after t or later), ``retention`` =
    1 - churned_t / at_risk_t and ``survival`` = the running product of the retention rates.
    Inputs are the counts of :func:`survivors_to_counts` / :func:`durations_to_counts`."""
    d = np.asarray(churned, dtype=float)
    c = np.asarray(censored, dtype=float)
    t = np.arange(1, len(d))
    at_risk = np.cumsum((d + c)[::-1])[::-1][1:]  # churned or censored at some s >= t
    retention = np.where(at_risk > 0, 1 - d[1:] / np.where(at_risk > 0, at_risk, 1), np.nan)
    return pd.DataFrame(
        {
            "at_risk": at_risk,
            "churned": d[1:],
            "retention": retention,
            "survival": np.cumprod(retention),
        },
        index=pd.Index(t, name="period"),
    )


# ----------------------------------------------------------------------------- uncertainty and checks


def sample_sbg(fit: SBGFit, n_draws: int = 200, seed: int = 0) -> np.ndarray:
    """Parametric bootstrap of an sBG fit: `n_draws` rows (alpha, beta) drawn from the normal
    approximation of (log alpha, log beta), mean at the estimate and covariance the inverse of the
    observed information (numerical Hessian of the negative log-likelihood, as in
    ``confint(method="wald")``). Any function of the parameters (DERL, a projection) evaluated
    on the draws gives its interval."""
    x = np.log([fit.alpha, fit.beta])
    h = 1e-4
    f = lambda z: _negll(z, fit.churned, fit.censored)  # noqa: E731
    e = np.eye(2) * h
    hess = np.array(
        [[(f(x + e[i] + e[j]) - f(x + e[i] - e[j]) - f(x - e[i] + e[j]) + f(x - e[i] - e[j])) / (4 * h * h)
          for j in range(2)] for i in range(2)]
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    return np.exp(rng.multivariate_normal(x, np.linalg.inv(hess), size=n_draws))


def derl_interval(
    fit: SBGFit,
    discount_rate: float,
    renewals: int = 0,
    level: float = 0.95,
    n_draws: int = 200,
    seed: int = 0,
) -> tuple[float, float, float]:
    """DERL (:meth:`SBGFit.derl`) at the estimate and its percentile interval over a parametric
    bootstrap of (alpha, beta) (:func:`sample_sbg`): ``(estimate, low, high)``, in payments."""
    draws = sample_sbg(fit, n_draws, seed)
    d = float(discount_rate)
    n = float(renewals)
    a, b = draws[:, 0], draws[:, 1]
    values = (b + n) / (a + b + n) * special.hyp2f1(1.0, b + n + 1, a + b + n + 1, 1.0 / (1.0 + d))
    values = values[np.isfinite(values)]
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(fit.derl(d, renewals)), float(lo), float(hi)


def _whole_months(start: pd.Series, when: pd.Timestamp) -> np.ndarray:
    """Whole calendar months from each start to `when` (the rule of
    :func:`subscription_durations`): the largest k with start + k months <= when; negative
    before the start."""
    months = (when.year - start.dt.year) * 12 + (when.month - start.dt.month)
    start_in = start - start.dt.to_period("M").dt.start_time
    when_in = when - when.to_period("M").start_time
    return (months - (when_in < start_in).astype(int)).to_numpy(np.int64)


def active_projection(
    subscriptions: pd.DataFrame,
    fits: dict,
    cutoff: str | pd.Timestamp,
    dates: Sequence[pd.Timestamp] | pd.DatetimeIndex,
    by: str = "plan",
    *,
    start_col: str = "start_date",
    end_col: str = "end_date",
) -> pd.DataFrame:
    """Active subscribers per calendar date, actual and projected from sBG fits made at `cutoff`
    (the whole-base check of Fader & Hardie 2007, section 5: project the survivors of every
    cohort forward and compare the total with what happened).

    A subscriber active at `cutoff` after n whole months is still active at a later date with
    probability S(m)/S(n), m the whole months at that date (the churn period T satisfies T > n);
    one who starts after `cutoff` (starts are taken as known) with probability S(m). ``expected``
    sums these per group (`by`, one fit per group in `fits`), for dates on or after `cutoff` (NaN before); ``geometric`` is the same with one
    average churn rate, (1 - theta)^(m - n) (:func:`geometric_survival`); ``sd`` = sqrt(sum p(1 - p)),
    the standard deviation of the count from the luck of who churns alone (parameters taken as
    known). ``actual``: start <=
    date < end (end empty = still running). Returns one row per date and group."""
    cutoff = pd.Timestamp(cutoff)
    s = subscriptions
    start, end = s[start_col], s[end_col]
    n_cut = _whole_months(start, cutoff)
    alive_cut = (start <= cutoff) & (end.isna() | (end > cutoff))
    later = start > cutoff
    rows = []
    for when in pd.DatetimeIndex(dates):
        m = _whole_months(start, when)
        active = ((start <= when) & (end.isna() | (end > when))).to_numpy()
        for group, fit in fits.items():
            g = (s[by] == group).to_numpy()
            old = g & alive_cut.to_numpy()
            new = g & later.to_numpy() & (start <= when).to_numpy()
            if when < cutoff:  # before the cutoff only the actual count is defined
                rows.append({"date": when, by: group, "actual": int((active & g).sum()),
                             "expected": np.nan, "sd": np.nan, "geometric": np.nan})  # fmt: skip
                continue
            prob = np.concatenate(
                [fit.survival(m[old]) / fit.survival(n_cut[old]), fit.survival(m[new])]
            )
            geo = (geometric_survival(fit.churned, fit.censored, m[old] - n_cut[old]).sum()
                   + geometric_survival(fit.churned, fit.censored, m[new]).sum())  # fmt: skip
            rows.append({"date": when, by: group, "actual": int((active & g).sum()),
                         "expected": float(prob.sum()), "sd": float(np.sqrt((prob * (1 - prob)).sum())),
                         "geometric": float(geo)})  # fmt: skip
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- sBG with covariates


@dataclass(frozen=True)
class SBGRegression:
    """A fitted sBG with hazard multipliers (:func:`fit_sbg_regression`): ``params`` has one row
    per parameter (``alpha[g]``, ``beta[g]`` per group, ``beta_mult[c]`` per beta covariate,
    ``hr[c]`` per hazard covariate) with ``estimate``, ``se`` (of the log) and the Wald interval
    ``ci_low``, ``ci_high`` (on the log scale, transformed back); ``loglik``; ``n`` subscriptions."""

    params: pd.DataFrame
    loglik: float
    n: int
    converged: bool


def _logdiffexp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(exp(a) - exp(b)) for a > b."""
    return a + np.log(-np.expm1(b - a))


def fit_sbg_regression(
    long: pd.DataFrame,
    *,
    group: str = "plan",
    hazard_covariates: Sequence[str] = (),
    beta_covariates: Sequence[str] = (),
    id_col: str = "subscription_id",
    period_col: str = "stop",
    event_col: str = "event",
    level: float = 0.95,
) -> SBGRegression:
    """The sBG with time-varying hazard multipliers and covariates on the Beta's beta.

    Model (per subscription i, period k = 1, 2, ...): churn probability at the end of period k is
    1 - (1 - theta_i)^HR_ik, HR_ik = exp(x_ik' b) (a proportional change of the hazard
    -log(1 - theta)), theta_i ~ Beta(alpha_g, beta_g exp(z_i' c)) with g the subscription's group
    (plan) and z_i time-invariant indicators (e.g. acquisition channels). With H_ik = sum_{j<=k}
    HR_ij, integrating theta out gives closed forms, since E[(1 - theta)^H] = B(a, b + H) / B(a, b):

        S_i(k) = B(alpha, beta_i + H_ik) / B(alpha, beta_i)
        P(churn at k) = [B(alpha, beta_i + H_i,k-1) - B(alpha, beta_i + H_ik)] / B(alpha, beta_i)

    (with HR = 1 this is Fader & Hardie's 2007 sBG, as B(a, b + k - 1) - B(a, b + k) =
    B(a + 1, b + k - 1)). Unlike a Cox model without frailty, the heterogeneity in theta is part
    of the model, so the hazard ratios are not attenuated by the sorting of the at-risk customers.

    `long` is in the long format of :func:`helpers.churn.subscription_months` (one row per
    subscription and observed period, sorted by `period_col` within `id_col`; covariates as 0/1 or
    numeric columns). Maximum likelihood over log-parameters (scipy BFGS), Wald intervals from the
    numerical Hessian (statsmodels ``approx_hess``).
    """
    from statsmodels.tools.numdiff import approx_hess

    d = long.sort_values([id_col, period_col], kind="stable")
    hz = list(hazard_covariates)
    bz = list(beta_covariates)
    X = d[hz].to_numpy(float) if hz else np.zeros((len(d), 0))
    sub_codes, sub_idx = np.unique(d[id_col].to_numpy(), return_inverse=True)
    n_sub = sub_codes.size
    last = np.r_[sub_idx[1:] != sub_idx[:-1], True]
    first = np.r_[True, sub_idx[1:] != sub_idx[:-1]]
    ev = d[event_col].to_numpy(bool)[last]
    groups, g_idx = np.unique(d[group].to_numpy()[first], return_inverse=True)
    Z = d[bz].to_numpy(float)[first] if bz else np.zeros((n_sub, 0))
    ng = groups.size

    def unpack(theta: np.ndarray):
        la, lb = theta[:ng], theta[ng : 2 * ng]
        c = theta[2 * ng : 2 * ng + len(bz)]
        b = theta[2 * ng + len(bz) :]
        return la, lb, c, b

    def loglik(theta: np.ndarray) -> float:
        la, lb, c, b = unpack(theta)
        hr = np.exp(X @ b) if hz else np.ones(len(d))
        H = np.bincount(sub_idx, weights=hr, minlength=n_sub)
        h_last = hr[last]
        a = np.exp(la)[g_idx]
        be = np.exp(lb[g_idx] + Z @ c)
        base = special.betaln(a, be)
        surv = special.betaln(a, be + H)
        prev = special.betaln(a, be + H - h_last)
        ll = np.where(ev, _logdiffexp(prev, surv), surv) - base
        return float(ll.sum())

    x0 = np.r_[np.log(np.full(ng, 1.0)), np.log(np.full(ng, 3.0)), np.zeros(len(bz) + len(hz))]
    res = optimize.minimize(lambda t: -loglik(t), x0, method="BFGS", options={"gtol": 1e-7})
    hess = approx_hess(res.x, lambda t: -loglik(t))
    se = np.sqrt(np.diag(np.linalg.inv(hess)))
    z = stats.norm.ppf(0.5 + level / 2)
    names = ([f"alpha[{g}]" for g in groups] + [f"beta[{g}]" for g in groups]
             + [f"beta_mult[{c}]" for c in bz] + [f"hr[{c}]" for c in hz])  # fmt: skip
    params = pd.DataFrame(
        {
            "estimate": np.exp(res.x),
            "se": se,
            "ci_low": np.exp(res.x - z * se),
            "ci_high": np.exp(res.x + z * se),
        },
        index=pd.Index(names, name="parameter"),
    )
    return SBGRegression(
        params=params, loglik=-float(res.fun), n=n_sub, converged=bool(res.success)
    )


# ----------------------------------------------------------------------------- judging predictions


def _surv_array(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """scikit-survival's structured outcome array (event, time)."""
    from sksurv.util import Surv

    return Surv.from_arrays(np.asarray(event, dtype=bool), np.asarray(time, dtype=float))


def harrell_c(
    time: np.ndarray | pd.Series, event: np.ndarray | pd.Series, risk: np.ndarray | pd.Series
) -> float:
    """Harrell's concordance index (Harrell, Califf, Pryor, Lee & Rosati 1982, *JAMA* 247(18)):

        C = sum_{i,j} m_ij (1[r_i > r_j] + 0.5 * 1[r_i = r_j]) / sum_{i,j} m_ij

    over the comparable pairs m_ij = d_i (1[T_i < T_j] + 1[T_i = T_j, d_j = 0]) (the earlier time
    an event; an event and a censoring at the same time count as comparable, two events at the
    same time do not), with r the predicted *risk* (higher = churns sooner). 0.5 is chance, 1 a
    perfect ordering (``sksurv.metrics.concordance_index_censored``; lifelines'
    ``concordance_index`` differs only in how it treats an event and a censoring tied in time)."""
    from sksurv.metrics import concordance_index_censored

    return float(
        concordance_index_censored(
            np.asarray(event, dtype=bool), np.asarray(time, dtype=float), np.asarray(risk, float)
        )[0]
    )


def _harrell_rows(t: np.ndarray, e: np.ndarray, risk: np.ndarray, k: np.ndarray) -> np.ndarray:
    """:func:`harrell_c` of each bootstrap resample given by the rows of the count matrix `k`
    (how often each customer is drawn): sum_ij k_i k_j credit_ij / sum_ij k_i k_j m_ij, with the
    comparable pairs m and the credits of :func:`harrell_c` (ties in risk within 1e-8, as
    scikit-survival). Row of ones: the data's C."""
    m = e[:, None] & ((t[:, None] < t[None, :]) | ((t[:, None] == t[None, :]) & ~e[None, :]))
    diff = risk[:, None] - risk[None, :]
    credit = m * np.where(np.abs(diff) <= 1e-8, 0.5, (diff > 0).astype(float))
    return ((k @ credit) * k).sum(axis=1) / ((k @ m.astype(float)) * k).sum(axis=1)


def _brier_contributions(
    train: np.ndarray, t: np.ndarray, e: np.ndarray, surv: np.ndarray, times: np.ndarray
) -> np.ndarray:
    """Each test customer's share of the integrated Brier score (Graf et al. 1999), so that their
    mean is ``sksurv.metrics.integrated_brier_score``: trapezoid integral over `times` of
    S_i(t)^2 1[T_i <= t, d_i] / G(T_i) + (1 - S_i(t))^2 1[T_i > t] / G(t), over the range; G is
    the censoring distribution of the training outcomes (scikit-survival's estimator)."""
    from sksurv.nonparametric import CensoringDistributionEstimator

    cens = CensoringDistributionEstimator().fit(train)
    g_t = cens.predict_proba(times)
    g_y = cens.predict_proba(t)
    g_t[g_t == 0], g_y[g_y == 0] = np.inf, np.inf
    case = (t[:, None] <= times[None, :]) & e[:, None]
    control = t[:, None] > times[None, :]
    bs = surv**2 * case / g_y[:, None] + (1 - surv) ** 2 * control / g_t[None, :]
    return np.trapezoid(bs, times, axis=1) / (times[-1] - times[0])


def survival_prediction_metrics(
    train_time: np.ndarray | pd.Series,
    train_event: np.ndarray | pd.Series,
    test_time: np.ndarray | pd.Series,
    test_event: np.ndarray | pd.Series,
    surv: np.ndarray,
    times: Sequence[float] | np.ndarray,
) -> dict[str, float | pd.Series]:
    """How well predicted survival curves of held-out customers match what happened to them.

    `surv` is an (n_test, len(`times`)) array of predicted S(t | x_i) at `times` (increasing,
    inside the test follow-up); the training outcomes only estimate the censoring distribution G
    (Kaplan-Meier of the censoring times) for the inverse-probability-of-censoring weights. The
    risk score of a customer is 1 - S(tau | x), tau = the last of `times`. Returns

    * ``harrell_c`` - :func:`harrell_c` of that risk;
    * ``ipcw_c`` - Uno's concordance (Uno, Cai, Pencina, D'Agostino & Wei 2011, *Statistics in
      Medicine* 30(10)): Harrell's pairs weighted by 1 / G(T_i)^2 and truncated at tau, which
      removes the dependence of Harrell's C on the censoring pattern
      (``sksurv.metrics.concordance_index_ipcw``);
    * ``auc`` - cumulative/dynamic AUC(t) at each time (Uno et al. 2007; Hung & Chiang 2010):
      the chance that a customer who churned by t has a higher predicted risk 1 - S(t | x) than
      one still active after t, IPCW-weighted (``cumulative_dynamic_auc``), a Series by time, and
      ``mean_auc``, its average weighted by the change in the survival function;
    * ``ibs`` - integrated Brier score (Graf, Schmoor, Sauerbrei & Schumacher 1999, *Statistics in
      Medicine* 18(17-18)): BS(t) = mean_i [S(t|x_i)^2 1[T_i <= t, d_i = 1] / G(T_i)
      + (1 - S(t|x_i))^2 1[T_i > t] / G(t)], integrated over `times` by the trapezoid rule and
      divided by the range (lower is better; 0.25 is a constant 0.5)
      (``integrated_brier_score``).

    A prediction that is the same for everyone (a Kaplan-Meier curve without covariates) has
    C = AUC = 0.5: it is the baseline for the Brier score, not for the ranking."""
    from sksurv.metrics import (
        concordance_index_ipcw,
        cumulative_dynamic_auc,
        integrated_brier_score,
    )

    times = np.asarray(times, dtype=float)
    surv = np.asarray(surv, dtype=float)
    y_train = _surv_array(train_time, train_event)
    y_test = _surv_array(test_time, test_event)
    risk = 1 - surv[:, -1]
    auc, mean_auc = cumulative_dynamic_auc(y_train, y_test, 1 - surv, times)
    return {
        "harrell_c": harrell_c(test_time, test_event, risk),
        "ipcw_c": float(concordance_index_ipcw(y_train, y_test, risk, tau=times[-1])[0]),
        "auc": pd.Series(auc, index=pd.Index(times, name="t"), name="auc"),
        "mean_auc": float(mean_auc),
        "ibs": float(integrated_brier_score(y_train, y_test, surv, times)),
    }


def survival_bootstrap(
    train_time: np.ndarray | pd.Series,
    train_event: np.ndarray | pd.Series,
    test_time: np.ndarray | pd.Series,
    test_event: np.ndarray | pd.Series,
    surv: Mapping[str, np.ndarray],
    times: Sequence[float] | np.ndarray,
    *,
    reference: str,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Harrell's C and the integrated Brier score of several models' predicted survival curves
    for the *same* held-out customers (`surv`: name -> (n_test, len(times)) array, as in
    :func:`survival_prediction_metrics`), each with a percentile interval from a paired bootstrap
    of the test customers (the training outcomes, which only give the censoring weights, stay
    fixed), and the difference from the `reference` model with its interval.

    Returns one row per (``model``, ``metric``) with ``estimate``, ``ci_low``, ``ci_high``,
    ``diff``, ``diff_low``, ``diff_high`` and ``verdict`` ("better"/"worse" than the reference
    when the difference's interval excludes 0 - a higher C, a lower IBS -, else "inconclusive";
    "reference" for the reference itself), the layout of :func:`helpers.churn.paired_bootstrap`."""
    if reference not in surv:
        raise ValueError(f"reference {reference!r} is not one of the models {list(surv)}")
    times = np.asarray(times, dtype=float)
    y_train = _surv_array(train_time, train_event)
    t = np.asarray(test_time, dtype=float)
    e = np.asarray(test_event, dtype=bool)
    n = t.size
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_boot, n))
    k = np.ones((n_boot + 1, n))  # row 0: the data; then how often each customer is drawn
    k[1:] = 0
    np.add.at(k, (np.repeat(np.arange(1, n_boot + 1), n), draws.ravel()), 1)
    values = {}
    for name, s in surv.items():
        s = np.asarray(s, dtype=float)
        if s.shape != (n, times.size):
            raise ValueError(
                f"model {name!r}: predictions of shape {s.shape}, need {(n, times.size)}"
            )
        values[name] = {
            "harrell_c": _harrell_rows(t, e, 1 - s[:, -1], k),
            "ibs": k @ _brier_contributions(y_train, t, e, s, times) / n,
        }
    return bootstrap_comparison(values, reference, ("ibs",), level, by="model")
