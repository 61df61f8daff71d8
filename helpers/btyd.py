"""The buy-till-you-die models' common parts: the fitted-model record, the maximum-likelihood
optimizer on log-parameters with its observed information, the summary columns, weights of
identical customers, and the parametric bootstrap of a fit.

:mod:`helpers.clv` (BG/NBD, MBG/NBD, Gamma-Gamma), :mod:`helpers.pareto_nbd` (Pareto/NBD) and
:mod:`helpers.bgbb` (BG/BB) import this module; it imports none of them, so ``clv`` can use the
Pareto/NBD without an import cycle.

Standard errors: Wald, from the observed information (the Hessian of the negative
log-likelihood at the optimum) on the log scale; confidence intervals are
exp(log estimate +- z se), so they stay positive.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg, optimize, stats
from statsmodels.tools.numdiff import approx_fprime, approx_hess3

__all__ = [
    "ModelFit",
    "columns",
    "weights_of",
    "distinct_rows",
    "fit_rows",
    "at_resolution",
    "timestamp_resolution",
    "RESOLUTIONS",
    "resolution_steps",
    "fit_log_params",
    "hess_from_grad",
    "newton_polish",
    "coarse_rows",
    "newton_from_coarse",
    "covariance_on_demand",
    "sample_params",
    "sample_log_params",
    "information_criteria",
    "lr_test",
    "covariate_matrix",
]


@dataclass
class ModelFit:
    """A fitted model: parameter estimates, log-likelihood, covariance of the log-parameters,
    Wald CIs. Parameters are attributes too (``fit.r``, ``fit.alpha``; ``fit.p``, ``fit.q``...).

    `cov_log` may be given as a function of no arguments that returns it: it is then computed
    when first used, and kept (a fit whose covariance nothing reads, such as a model
    comparison's, does not pay for its Hessian: :func:`covariance_on_demand`)."""

    model: str
    params: dict[str, float]
    loglik: float
    n: int
    time_unit: str
    cov_log: np.ndarray
    converged: bool
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if callable(self.cov_log):  # computed on first use (__getattr__)
            self.__dict__["_cov_log_of"] = self.__dict__.pop("cov_log")

    def __getattr__(self, name: str) -> float:
        if name == "cov_log" and "_cov_log_of" in self.__dict__:
            cov = self.__dict__["cov_log"] = self.__dict__.pop("_cov_log_of")()
            return cov
        params = self.__dict__.get("params", {})
        if name in params:
            return params[name]
        raise AttributeError(name)

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        """Estimate, standard error (delta method: se = estimate x se(log)) and Wald CI per
        parameter, the CI computed on the log scale."""
        z = stats.norm.ppf(0.5 + level / 2)
        est = np.array(list(self.params.values()))
        se_log = np.sqrt(np.clip(np.diag(self.cov_log), 0, None))
        return pd.DataFrame(
            {
                "estimate": est,
                "se": est * se_log,
                "ci_low": est * np.exp(-z * se_log),
                "ci_high": est * np.exp(z * se_log),
            },
            index=pd.Index(list(self.params), name="parameter"),
        )


def columns(summary: pd.DataFrame, cols: tuple[str, ...]) -> list[np.ndarray]:
    """The summary's columns `cols` as float arrays; ValueError naming the missing ones."""
    missing = [c for c in cols if c not in summary.columns]
    if missing:
        raise ValueError(
            f"the summary needs the columns {list(cols)}; missing {missing} (build it with helpers.segments.rfm_table)"
        )
    return [summary[c].to_numpy(dtype=float) for c in cols]


def weights_of(summary: pd.DataFrame, weights: str | np.ndarray | pd.Series | None) -> np.ndarray:
    """Counts of identical customers: None (one each), a column name, or values aligned with the
    summary's rows (a Series is aligned on the index)."""
    if weights is None:
        return np.ones(len(summary))
    if isinstance(weights, str):
        w = summary[weights].to_numpy(dtype=float)
    elif isinstance(weights, pd.Series):
        w = weights.reindex(summary.index).to_numpy(dtype=float)
    else:
        w = np.asarray(weights, dtype=float)
    if w.shape != (len(summary),) or not np.all(np.isfinite(w) & (w >= 0)) or w.sum() <= 0:
        raise ValueError(
            f"weights must be {len(summary)} finite counts >= 0 (one per summary row), not all 0"
        )
    return w


def distinct_rows(
    *cols: np.ndarray, weights: np.ndarray | None = None
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The distinct rows of the columns `cols` (equal length), sorted lexicographically, with
    their counts (the sum of `weights` over the rows of each; one each by default) and the
    inverse (row -> distinct row), so that ``[u[inverse] for u in distinct] == cols``.

    A likelihood that depends on a customer only through these columns (the BG/NBD, MBG/NBD and
    Pareto/NBD through (x, t_x, T), the Gamma-Gamma through (x, mean spend)) is the same summed
    over the customers or over the distinct rows times their counts: sum_i log L(v_i) =
    sum_k n_k log L(u_k) (the ``weights`` of lifetimes and CLVTools). Each column is factorized
    by hashing (pandas), the codes combined in one integer key (mixed radix) and the key
    factorized again; rows with zero weight are dropped."""
    if not cols:
        raise ValueError("distinct_rows needs at least one column")
    n = len(cols[0])
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if any(len(c) != n for c in cols) or len(w) != n:
        raise ValueError("the columns and weights must have the same length")
    keep = w > 0
    if not keep.all():
        cols, w = tuple(np.asarray(c)[keep] for c in cols), w[keep]
    codes, uniques = [], []
    for c in cols:
        code, uniq = pd.factorize(np.asarray(c), sort=True)
        codes.append(code.astype(np.int64))
        uniques.append(np.asarray(uniq))
    sizes = [max(len(u), 1) for u in uniques]
    if float(np.prod(np.array(sizes, dtype=float))) < 2.0**62:  # one integer key per row
        key = np.zeros(len(w), dtype=np.int64)
        for code, size in zip(codes, sizes, strict=True):
            key = key * size + code
        inverse, ukey = pd.factorize(key, sort=True)
        parts, rest = [], np.asarray(ukey, dtype=np.int64)
        for size in reversed(sizes):
            parts.append(rest % size)
            rest = rest // size
        distinct = [u[p] for u, p in zip(uniques, reversed(parts), strict=True)]
    else:  # too many combinations for one int64 key: sort the code rows
        stacked = np.stack(codes, axis=1)
        ucodes, inverse = np.unique(stacked, axis=0, return_inverse=True)
        distinct = [u[ucodes[:, j]] for j, u in enumerate(uniques)]
    inverse = np.asarray(inverse, dtype=np.int64).reshape(-1)
    counts = np.bincount(inverse, weights=w, minlength=len(distinct[0]))
    return distinct, counts, inverse


#: Above this share of distinct rows a fit uses the rows as they are (:func:`fit_rows`).
MAX_DISTINCT_SHARE = 0.9


def fit_rows(
    *cols: np.ndarray, weights: np.ndarray | None = None
) -> tuple[list[np.ndarray], np.ndarray, int]:
    """The rows a weighted fit runs on: the distinct rows with their counts
    (:func:`distinct_rows`), unless they are more than :data:`MAX_DISTINCT_SHARE` of the rows
    (order times to the second make nearly every customer distinct: grouping would cost time
    and save nothing), then the rows themselves with their weights. Either way the weighted
    log-likelihood is the same sum. Returns the columns, the weights and the number of distinct
    rows. The distinct rows are counted first by hashing alone (:func:`_count_distinct`: no
    sort), and sorted with their counts (:func:`distinct_rows`) only when they are used."""
    w = np.ones(len(cols[0])) if weights is None else np.asarray(weights, dtype=float)
    keep = w > 0
    kept = [np.asarray(c, dtype=float)[keep] for c in cols]
    n_distinct = _count_distinct(*kept)
    if n_distinct > MAX_DISTINCT_SHARE * keep.sum():
        return kept, w[keep], n_distinct
    distinct, counts, _ = distinct_rows(*cols, weights=weights)
    return distinct, counts, len(counts)


def _count_distinct(*cols: np.ndarray) -> int:
    """The number of distinct rows of the columns, as :func:`distinct_rows` finds them (each
    column factorized, the codes combined in one integer key), by hashing without sorting."""
    codes = [pd.factorize(c)[0].astype(np.int64) for c in cols]
    sizes = [int(c.max()) + 2 if len(c) else 1 for c in codes]  # + 2: NaN's code is -1
    if float(np.prod(np.array(sizes, dtype=float))) >= 2.0**62:
        return len(np.unique(np.stack(codes, axis=1), axis=0))
    key = np.zeros(len(codes[0]), dtype=np.int64)
    for code, size in zip(codes, sizes, strict=True):
        key = key * size + (code + 1)
    return len(pd.unique(key))


#: Resolutions a summary's times can be counted in (:func:`at_resolution`): the length of one
#: step in seconds and the offset that aligns the steps (weeks run Monday to Sunday, as
#: :func:`helpers.periods.period_codes`'s; 1970-01-01 was a Thursday).
RESOLUTIONS: dict[str, tuple[int, int]] = {
    "W": (7 * 86_400, 3 * 86_400),
    "D": (86_400, 0),
    "h": (3_600, 0),
    "min": (60, 0),
    "s": (1, 0),
}


def resolution_steps(
    first_s: np.ndarray, last_s: np.ndarray, end_s: int, resolution: str
) -> tuple[np.ndarray, np.ndarray]:
    """t_x and T in whole steps of `resolution` from the first and last order times and the
    end of the data (whole seconds since 1970): with k(t) = floor((t + offset) / step) the step
    of a time, t_x = k(last) - k(first) and T = ceil((end + offset) / step) - k(first) (the step
    holding the end of the as-of day counted whole, so T >= 1)."""
    step, off = RESOLUTIONS[resolution]
    k_first = (first_s + off) // step
    k_end = -(-(end_s + off) // step)
    return (last_s + off) // step - k_first, k_end - k_first


def timestamp_resolution(summary: pd.DataFrame) -> str | None:
    """The resolution the summary's order times are written at: the coarsest of 'D', 'h',
    'min', 's' (:data:`RESOLUTIONS`) of which every ``first_order`` and ``last_order`` is a whole
    step (midnight for 'D'), or None for times finer than a second. At this resolution
    :func:`at_resolution` changes nothing (t_x = last - first, and T from the end of the as-of
    day, are whole steps already), so a fit on the distinct (x, t_x, T) (:func:`fit_rows`) equals
    the fit on the times as they are; a coarser one merges more customers but moves each t_x
    and T by up to one step."""
    ns = np.concatenate(
        [pd.DatetimeIndex(summary[c]).as_unit("ns").asi8 for c in ("first_order", "last_order")]
    )
    for resolution in ("D", "h", "min", "s"):
        if not np.any(ns % (RESOLUTIONS[resolution][0] * 10**9)):
            return resolution
    return None


def at_resolution(summary: pd.DataFrame, resolution: str) -> pd.DataFrame:
    """The BTYD summary (``first_order``, ``last_order``, attrs ``as_of`` and ``time_unit``) with
    t_x and T counted in whole steps of `resolution` ('W', 'D', 'h', 'min', 's';
    :data:`RESOLUTIONS`, :func:`resolution_steps`) and expressed in the time unit: t_x = (step of
    the last order - step of the first), T = (step after the end of the as-of day's, rounded up
    - step of the first). For 'D': t_x = (last day - first day) / unit and T = (end of the as-of
    day - start of the first day) / unit; for 'W' in weeks both are whole numbers (the time
    unit's own resolution). Recorded in ``attrs["resolution"]``; the fits state it in
    ``fit.extra``.

    Why: order times to the second make nearly every customer's (x, t_x, T) distinct; at a
    coarser resolution customers share them, and a fit on the distinct rows with their counts
    (:func:`distinct_rows`) costs what the patterns cost, not the customers. Each time moves by
    less than one step."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {sorted(RESOLUTIONS)}, got {resolution!r}")
    from helpers import periods, segments

    unit_s = segments.unit_days(summary.attrs["time_unit"]) * 86400
    end_s = periods.as_of_end(summary.attrs["as_of"]).value // 10**9
    first = pd.DatetimeIndex(summary["first_order"]).asi8 // 10**9
    last = pd.DatetimeIndex(summary["last_order"]).asi8 // 10**9
    tx, T = resolution_steps(first, last, end_s, resolution)
    step = RESOLUTIONS[resolution][0]
    out = summary.copy()
    out["recency"] = tx * step / unit_s
    out["T"] = T * step / unit_s
    out.attrs["resolution"] = resolution
    return out


def fit_log_params(
    nll,
    x0: np.ndarray,
    names: list[str],
    model: str,
    n: int,
    time_unit: str,
    nll_grad=None,
    analytic: bool = True,
    newton_steps: int = 0,
    coarse=None,
) -> ModelFit:
    """L-BFGS-B on the log-parameters, restarted once from its optimum, and the observed
    information at the optimum. With `nll_grad` (value and analytic gradient) and `analytic`
    the optimizer uses the gradient and the Hessian is the central difference of the gradient
    (:func:`hess_from_grad`); otherwise numerical gradients and approx_hess3.

    `newton_steps` (analytic path only): up to that many Newton steps theta - H^-1 g from the
    L-BFGS-B optimum with that Hessian (not recomputed: the steps are ~1e-5 or less, and the
    covariance is the Hessian's at the L-BFGS-B optimum), each kept only if the Newton decrement
    g' H^-1 g falls and the objective does not rise by more than its rounding (1e-12 relative). On a flat ridge (the Pareto/NBD's (s, beta) when both are large) L-BFGS-B stops
    where the objective no longer changes in its 14th digit, up to about 1e-5 along the ridge;
    a Newton step on exact gradients takes it to the optimum to about 1e-9.

    `coarse` (analytic path only): the same objective on a subsample of the rows, its counts
    scaled to all the customers (:func:`coarse_rows`); the fit is then :func:`newton_from_coarse`
    (the optimizer on the subsample, Newton steps on all the rows: about 10 evaluations of the
    full objective instead of 40-70), falling back to the path above when its steps do not
    converge; inside :func:`covariance_on_demand` the covariance is computed when first read.
    ``fit.extra["optimizer"]`` says which path found the optimum ("coarse+newton" or
    "L-BFGS-B"); both find it to ~1e-9 relative (tests/test_btyd.py)."""
    bounds = [(-15, 15)] * len(x0)
    if coarse is not None and nll_grad is not None and analytic:
        found = newton_from_coarse(nll_grad, coarse, x0)
        if found is not None:
            theta, value = found

            def covariance() -> np.ndarray:  # the observed information at the optimum
                return _inverse(hess_from_grad(nll_grad, theta))

            params = dict(zip(names, np.exp(theta).tolist(), strict=True))
            cov = covariance if _ON_DEMAND else covariance()
            fit = ModelFit(model, params, float(-value), n, time_unit, cov, True)
            fit.extra["optimizer"] = "coarse+newton"
            return fit
    if nll_grad is not None and analytic:
        tight = {"ftol": 1e-14, "gtol": 1e-8, "maxiter": 1000}  # cheap with exact gradients
        res = optimize.minimize(
            nll_grad, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=tight
        )
        res2 = optimize.minimize(
            nll_grad, res.x, jac=True, method="L-BFGS-B", bounds=bounds, options=tight
        )
        if res2.fun < res.fun:
            res = res2
        # converged: a run met its tolerances, or the line search stopped where the gradient is
        # zero to the precision of the sum (|g| <= 1e-7 |f| in every log-parameter): at the optimum
        # L-BFGS-B cannot improve the last digits and says ABNORMAL_TERMINATION_IN_LNSRCH
        grad = np.asarray(nll_grad(res.x)[1], dtype=float)
        flat = bool(np.all(np.abs(grad) <= 1e-7 * max(1.0, abs(float(res.fun)))))
        converged = bool(res.success or res2.success or flat)
        hess = hess_from_grad(nll_grad, res.x)
        for _ in range(newton_steps):
            value, grad = nll_grad(res.x)
            try:
                step = np.linalg.solve(hess, np.asarray(grad, dtype=float))
            except np.linalg.LinAlgError:
                break
            new = np.clip(res.x - step, -15, 15)
            new_value, new_grad = nll_grad(new)
            # kept if the Newton decrement g' H^-1 g falls and the objective does not rise beyond
            # the rounding of its sum (near the optimum both points' values agree to ~1e-15)
            smaller = float(np.asarray(new_grad) @ np.linalg.solve(hess, new_grad)) < float(
                np.asarray(grad) @ step
            )
            if not (np.isfinite(new_value) and new_value <= value + 1e-12 * abs(value) and smaller):
                break
            res.x, res.fun = new, float(new_value)
            if np.max(np.abs(step)) < 1e-9:
                break
    else:
        res = optimize.minimize(nll, x0, method="L-BFGS-B", bounds=bounds)
        # restart once from the optimum: L-BFGS-B with numerical gradients can stop a little early
        res2 = optimize.minimize(nll, res.x, method="L-BFGS-B", bounds=bounds)
        converged = bool(res.success or res2.success)
        if res2.fun < res.fun:
            res = res2
        hess = approx_hess3(res.x, nll)
    params = dict(zip(names, np.exp(res.x).tolist(), strict=True))
    fit = ModelFit(model, params, float(-res.fun), n, time_unit, _inverse(hess), converged)
    fit.extra["optimizer"] = "L-BFGS-B"
    return fit


_ON_DEMAND = False


@contextmanager
def covariance_on_demand() -> Iterator[None]:
    """Within this block, a fit by :func:`newton_from_coarse` (large data) computes its
    covariance (the Hessian: 2k evaluations of the likelihood on all the rows) only when
    ``cov_log`` is first read (:class:`ModelFit`): for fits whose covariance nothing reads, such
    as :func:`helpers.clv.compare_purchase_models`'s. Outside it the covariance is computed with
    the fit, so that the fit does not keep its rows alive until then."""
    global _ON_DEMAND
    before, _ON_DEMAND = _ON_DEMAND, True
    try:
        yield
    finally:
        _ON_DEMAND = before


def _inverse(hess: np.ndarray) -> np.ndarray:
    """The covariance of the log-parameters: the inverse of the observed information `hess`
    (NaN where it is singular)."""
    try:
        return np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        return np.full_like(hess, np.nan)


#: The coarse stage of a large fit (:func:`coarse_rows`, :func:`newton_from_coarse`): from
#: :data:`COARSE_MIN_ROWS` rows on, the optimizer first runs on every k-th row (about
#: :data:`COARSE_ROWS` of them), then Newton steps on all the rows finish.
COARSE_ROWS = 10_000
COARSE_MIN_ROWS = 40_000


def coarse_rows(
    w: np.ndarray, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """The rows of the coarse stage of a fit on the rows counted `w` (customers per row) and
    their weights there, or None below :data:`COARSE_MIN_ROWS` rows (the fit then runs on all
    the rows from the start).

    Every k-th row, k = len(w) // :data:`COARSE_ROWS` (a stride: the same rows every run; on rows
    sorted by frequency, as :func:`distinct_rows` sorts them, a sample stratified by frequency),
    each kept row's count scaled by sum(w) / sum(kept w), so that the subsample's weighted
    log-likelihood, its optimum and its Hessian approximate the full ones. With `groups` (an
    integer code per row: covariate patterns), the stride runs within each group, at most
    every (n_g / 1,000)-th row of a group of n_g rows (a small group is kept whole, so each
    group's coefficient is estimated), the counts scaled per group."""
    n = len(w)
    if n < COARSE_MIN_ROWS:
        return None
    k = max(n // COARSE_ROWS, 1)
    if groups is None:
        rows = np.arange(0, n, k)
        return rows, w[rows] * (w.sum() / w[rows].sum())
    codes, _ = pd.factorize(np.asarray(groups))
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes)
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    step = np.clip(np.minimum(k, sizes // 1_000), 1, None)  # per group
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n) - start[codes[order]]  # rank of each row within its group
    rows = np.flatnonzero(pos % step[codes] == 0)
    total = np.bincount(codes, weights=w)
    kept = np.bincount(codes[rows], weights=w[rows], minlength=len(sizes))
    return rows, w[rows] * (total / kept)[codes[rows]]


def newton_from_coarse(
    nll_grad, coarse, x0: np.ndarray, max_steps: int = 30
) -> tuple[np.ndarray, float] | None:
    """The optimum of `nll_grad` (value and exact gradient of the negative log-likelihood in the
    log-parameters, all the rows) from a start found on a subsample, in few evaluations of the
    full objective. `coarse`: the same objective on a subsample of the rows, scaled to the full
    data's number of customers (so its Hessian approximates the full one).

    1. L-BFGS-B on `coarse` from `x0`: an optimum within the subsample's sampling error
       (a few % of the parameters) of the full one, at the cost of a few full evaluations.
    2. Newton steps theta - H^-1 g on the full gradient g, starting with H the coarse
       objective's Hessian (:func:`hess_from_grad`, cheap), each step halved until the objective
       does not rise (backtracking), H corrected after each by the BFGS update from the change
       of the full gradient along the step (the secant condition; Nocedal & Wright 2006,
       eq. 6.19): superlinear convergence, one full evaluation a step. Should the steps shrink
       slowly (by less than half), H becomes the full objective's Hessian there (once; the
       BFGS updates go on from it).
    3. The optimum is where a step falls below 1e-9 (in log-parameters; by then H has been
       corrected along every step, so its steps estimate the distance to the optimum).

    Returns (theta, objective) or None when the steps do not converge (a Hessian not positive
    definite, no descent, more than `max_steps` steps): then the caller runs the optimizer on
    all the rows (:func:`fit_log_params`). The observed information is not computed here
    (:func:`fit_log_params` computes it when the covariance is first used)."""
    bounds = [(-15, 15)] * len(x0)
    res = optimize.minimize(
        coarse, x0, jac=True, method="L-BFGS-B", bounds=bounds,
        options={"ftol": 1e-12, "gtol": 1e-8, "maxiter": 1000},
    )  # fmt: skip
    theta = np.asarray(res.x, dtype=float)
    hess, full = hess_from_grad(coarse, theta), False  # full: H is the full objective's
    value, grad = nll_grad(theta)
    grad, previous = np.asarray(grad, dtype=float), np.inf
    for _ in range(max_steps):
        if not (np.isfinite(value) and np.all(np.isfinite(grad))):
            return None
        try:
            step = linalg.cho_solve(linalg.cho_factor(hess), grad)
        except linalg.LinAlgError:
            return None  # not positive definite: not near a maximum of the likelihood
        size = float(np.max(np.abs(step)))
        if size < 1e-9:
            return theta, float(value)
        t = 1.0
        while True:
            new = np.clip(theta - t * step, -15, 15)
            new_value, new_grad = nll_grad(new)
            # the objective may not fall in its last digits near the optimum (rounding of the sum)
            if np.isfinite(new_value) and new_value <= value + 1e-12 * abs(value):
                break
            t /= 2
            if t < 1e-3:
                return None
        new_grad = np.asarray(new_grad, dtype=float)
        sk, yk = new - theta, new_grad - grad
        theta, value, grad = new, new_value, new_grad
        if not full and size > 1e-6 and size > 0.5 * previous:  # slow: H is far off
            hess, full = hess_from_grad(nll_grad, theta), True
        elif float(yk @ sk) > 1e-12 * np.linalg.norm(yk) * np.linalg.norm(sk):
            hs = hess @ sk  # BFGS: H + y y'/(y's) - H s s' H/(s' H s)
            hess = hess + np.outer(yk, yk) / float(yk @ sk) - np.outer(hs, hs) / float(sk @ hs)
        previous = size
    return None


def hess_from_grad(nll_grad, theta: np.ndarray) -> np.ndarray:
    """Hessian by central differences of the analytic gradient, symmetrized
    (step eps^(1/3) max(1, |theta_j|), Nocedal & Wright 2006, section 8.1)."""
    k = len(theta)
    hess = np.empty((k, k))
    for j in range(k):
        h = np.cbrt(np.finfo(float).eps) * max(1.0, abs(theta[j]))
        e = np.zeros(k)
        e[j] = h
        hess[:, j] = (nll_grad(theta + e)[1] - nll_grad(theta - e)[1]) / (2 * h)
    return (hess + hess.T) / 2


def newton_polish(nll, theta: np.ndarray, steps: int = 4) -> tuple[np.ndarray, float, np.ndarray]:
    """A few Newton steps from an L-BFGS-B optimum with the numerical Hessian (approx_hess3)
    and a central-difference gradient, each kept only if it lowers the objective: the optimum
    to about 1e-8 relative (L-BFGS-B on forward-difference gradients stops near 1e-5 on flat
    ridges such as the Pareto/NBD's (s, beta)), so a fit does not depend on how the same
    customers are laid out (weights). Returns theta, nll(theta) and the Hessian there."""
    value = nll(theta)
    hess = approx_hess3(theta, nll)
    for _ in range(steps):
        grad = approx_fprime(theta, nll, centered=True)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        new = theta - step
        new_value = nll(new)
        if not (np.isfinite(new_value) and new_value <= value):
            break
        theta, value = new, new_value
        hess = approx_hess3(theta, nll)
        if np.max(np.abs(step)) < 1e-9:
            break
    return theta, value, hess


def sample_log_params(fit: ModelFit, n_draws: int, seed: int = 0) -> np.ndarray:
    """`n_draws` x k parameter draws (natural scale, columns in ``fit.params`` order) from the
    asymptotic normal distribution of the log-parameters, N(log estimate, cov_log)."""
    if not np.all(np.isfinite(fit.cov_log)):
        raise ValueError(f"the {fit.model} fit has no finite covariance: cannot sample")
    rng = np.random.default_rng(seed)
    mean = np.log(list(fit.params.values()))
    return np.exp(rng.multivariate_normal(mean, fit.cov_log, size=n_draws, method="cholesky"))


def sample_params(fit: ModelFit, n_draws: int = 200, seed: int = 0) -> list[ModelFit]:
    """Parametric bootstrap of a fitted model: `n_draws` parameter sets drawn from the
    asymptotic normal distribution of the log-parameters, N(log estimate, cov_log) (the inverse
    observed information of the fit), each returned as a :class:`ModelFit` of the same model and
    time unit. Summaries computed on every draw (a CLV per segment, a forecast) give intervals
    for the business numbers that reflect the uncertainty of the parameters; they do not include
    the randomness of the customers' future purchases themselves."""
    names = list(fit.params)
    draws = sample_log_params(fit, n_draws, seed)
    return [
        ModelFit(
            fit.model,
            dict(zip(names, row.tolist(), strict=True)),
            np.nan,
            fit.n,
            fit.time_unit,
            fit.cov_log,
            True,
        )  # fmt: skip
        for row in draws
    ]


def information_criteria(fits: Mapping[str, ModelFit]) -> pd.DataFrame:
    """Log-likelihood, number of parameters k, customers n, AIC = 2k - 2 LL (Akaike 1974) and
    BIC = k log n - 2 LL (Schwarz 1978) of fits of the *same* customers (ValueError otherwise),
    with the differences to the best (delta_aic, delta_bic) and the Akaike weights
    exp(-delta_aic / 2) / sum exp(-delta_aic / 2) (Burnham & Anderson 2002). Lower is better;
    a difference below about 2 does not separate two models. Rows sorted by AIC."""
    if not fits:
        raise ValueError("no fits to compare")
    sizes = {name: f.n for name, f in fits.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"the fits are not on the same customers (n per fit: {sizes})")
    ll = np.array([f.loglik for f in fits.values()], dtype=float)
    k = np.array([len(f.params) for f in fits.values()], dtype=float)
    n = float(next(iter(sizes.values())))
    aic, bic = 2 * k - 2 * ll, k * np.log(n) - 2 * ll
    weight = np.exp(-(aic - aic.min()) / 2)
    out = pd.DataFrame(
        {"loglik": ll, "n_params": k.astype(int), "n": int(n), "aic": aic, "bic": bic,
         "delta_aic": aic - aic.min(), "delta_bic": bic - bic.min(),
         "akaike_weight": weight / weight.sum()},
        index=pd.Index(list(fits), name="model"),
    )  # fmt: skip
    return out.sort_values("aic", kind="stable")


def lr_test(
    restricted: ModelFit, full: ModelFit, df: int = 1, boundary: bool = False
) -> dict[str, float | int | bool | str]:
    """Likelihood-ratio test of a restricted model nested in `full` (same customers):
    LR = 2 (LL_full - LL_restricted) (clipped at 0), `df` the number of restrictions.

    Interior restrictions: LR ~ chi2(df) under the null (Wilks 1938). A restriction that puts
    one parameter on the boundary of its space (a variance or a dropout probability at 0, e.g.
    the BG/NBD's no-dropout limit b -> infinity, which is the NBD) breaks Wilks' conditions: the
    estimate cannot fall on the far side, and half the time LR is exactly 0. Then (`boundary`)
    the null distribution is the chi-bar-square mixture 0.5 chi2(df-1) + 0.5 chi2(df) (Chernoff
    1954; Self & Liang 1987, *JASA* 82(398), 605-610), with chi2(0) the point mass at 0; for
    df = 1: p = 0.5 P(chi2(1) > LR), half the naive p-value (the naive test is conservative).
    Returns lr, df, p_value, the naive_p_value of chi2(df), boundary and the models' names."""
    if restricted.n != full.n:
        raise ValueError(f"the fits are not on the same customers: n = {restricted.n} and {full.n}")
    lr = max(0.0, 2 * (full.loglik - restricted.loglik))
    naive = float(stats.chi2.sf(lr, df))
    if boundary:
        below = float(stats.chi2.sf(lr, df - 1)) if df > 1 else float(lr <= 0)
        p = 0.5 * below + 0.5 * naive
    else:
        p = naive
    return {"restricted": restricted.model, "full": full.model, "lr": lr, "df": df,
            "p_value": p, "naive_p_value": naive, "boundary": boundary}  # fmt: skip


def covariate_matrix(summary: pd.DataFrame, z: pd.DataFrame | None, what: str) -> np.ndarray:
    """Covariates aligned on the summary's index as a float matrix (customers x k)."""
    if z is None:
        return np.zeros((len(summary), 0))
    zz = z.reindex(summary.index)
    values = zz.to_numpy(dtype=float)
    if not np.all(np.isfinite(values)):
        bad = int((~np.isfinite(values)).any(axis=1).sum())
        raise ValueError(
            f"{bad} customers of the summary have no (or a non-finite) {what} covariate value; "
            "covariates must be numbers for every customer (dummy-code categories)"
        )
    return values
