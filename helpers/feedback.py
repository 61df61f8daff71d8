"""The feedback loop: NPS with its uncertainty, who answers, comment themes, service times, the
follow-up experiment and the service-recovery comparison.

Scores are on the 0-10 "would you recommend" scale (F. F. Reichheld (2003), "The one number you
need to grow", *Harvard Business Review* 81(12)): promoters 9-10, passives 7-8, detractors 0-6
(:func:`helpers.stats.nps_category`), and

    NPS = p_P - p_D        (a number in [-1, 1]; multiply by 100 for the usual display).

Its sampling variance is the trinomial one (B. Rocks (2016), "Interval estimation for the Net
Promoter Score", *The American Statistician* 70(4); arXiv:1601.07235):

    Var(NPS) = [p_P + p_D - (p_P - p_D)^2] / n.

Every function here is vectorized (numpy / pandas group-bys / merge_asof); the models are those of
statsmodels, scikit-learn and lifelines, wrapped with the checks and the units stated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from helpers import periods
from helpers.stats import nps_scores, orders_after, proportion_difference

__all__ = [
    "METHODS",
    "NPSResult",
    "nps_counts",
    "nps_interval",
    "nps",
    "nps_difference",
    "coverage_simulation",
    "weighted_nps",
    "clustered_nps",
    "nonresponse_tipping_point",
    "response_weights",
    "SelectionFit",
    "fit_selection_model",
    "selection_nps",
    "THEME_KEYWORDS",
    "keyword_themes",
    "nmf_themes",
    "topics_to_labels",
    "nmf_stability",
    "theme_shares",
    "corrected_prevalence",
    "theme_scores",
    "score_drivers",
    "lmg_r2",
    "lmg_importance",
    "interrupted_time_series",
    "segmented_its",
    "its_against_control",
    "ticket_durations",
    "ticket_outcome",
    "orders_with_tickets",
    "worst_ticket_before",
    "next_order_after",
    "proportion_ratio",
    "coarsened_exact_att",
    "DELIVERY_TOPICS",
    "RECOVERY_STRATA",
    "followup_effect",
    "delivery_ticket_series",
    "repurchase_table",
    "recovery_effects",
    "remedy_ratios",
]

METHODS: tuple[str, str, str] = ("wald", "adjusted_wald", "bootstrap")


# --------------------------------------------------------------------------------------------
# NPS and its interval
# --------------------------------------------------------------------------------------------
def nps_counts(scores: Iterable[float] | pd.Series | np.ndarray) -> tuple[int, int, int]:
    """(promoters, detractors, n) of a sample of 0-10 scores."""
    v = nps_scores(scores)
    return int((v >= 9).sum()), int((v <= 6).sum()), int(v.size)


@dataclass(frozen=True)
class NPSResult:
    """An NPS (on the -1..1 scale) with its standard error and confidence interval."""

    nps: float
    se: float
    ci_low: float
    ci_high: float
    n: int
    promoters: int
    detractors: int
    method: str
    confidence: float

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(stats.norm.ppf(0.5 + confidence / 2))


def nps_interval(
    promoters: np.ndarray | int,
    detractors: np.ndarray | int,
    n: np.ndarray | int,
    method: str = "wald",
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Centre, standard error and interval of the NPS from counts, vectorized over arrays.

    * ``"wald"``: NPS = (P - D)/n, se = sqrt([p_P + p_D - (p_P - p_D)^2] / n), NPS +/- z se.
    * ``"adjusted_wald"`` (Rocks 2016): add 3 to n and 3/4 to the promoter and detractor
      counts, then the Wald formula on the adjusted counts: n' = n + 3, p'_P = (P + 3/4)/n',
      p'_D = (D + 3/4)/n', centre p'_P - p'_D, se = sqrt([p'_P + p'_D - (p'_P - p'_D)^2] / n').

    Intervals are clipped to [-1, 1]. Returns (centre, se, low, high) as float arrays.
    """
    P = np.asarray(promoters, dtype=float)
    D = np.asarray(detractors, dtype=float)
    N = np.asarray(n, dtype=float)
    if np.any(N <= 0) or np.any(P < 0) or np.any(D < 0) or np.any(P + D > N):
        raise ValueError("counts must satisfy 0 <= promoters + detractors <= n and n > 0")
    if method == "adjusted_wald":
        P, D, N = P + 0.75, D + 0.75, N + 3.0
    elif method != "wald":
        raise ValueError(f"nps_interval method must be 'wald' or 'adjusted_wald', got {method!r}")
    pp, pd_ = P / N, D / N
    centre = pp - pd_
    se = np.sqrt(np.maximum(pp + pd_ - centre**2, 0.0) / N)
    z = _z(confidence)
    return centre, se, np.clip(centre - z * se, -1, 1), np.clip(centre + z * se, -1, 1)


def _bootstrap_nps(
    promoters: np.ndarray, detractors: np.ndarray, n: int, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap NPS replicates, shape (n_boot, len(promoters)): resampling n scores with
    replacement is a multinomial draw of the three category counts with the sample's shares."""
    P = np.atleast_1d(np.asarray(promoters, dtype=float))
    D = np.atleast_1d(np.asarray(detractors, dtype=float))
    shares = np.stack([P / n, D / n, np.clip(1 - (P + D) / n, 0, 1)], axis=-1)
    shares = shares / shares.sum(axis=-1, keepdims=True)
    draws = rng.multinomial(n, shares, size=(n_boot, P.size))
    return (draws[..., 0] - draws[..., 1]) / n


def nps(
    scores: Iterable[float] | pd.Series | np.ndarray,
    method: str = "wald",
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> NPSResult:
    """NPS of 0-10 scores with its standard error and interval.

    `method` is ``"wald"``, ``"adjusted_wald"`` (Rocks 2016; see :func:`nps_interval`) or
    ``"bootstrap"`` (percentile interval of `n_boot` resamples, seeded with
    ``np.random.default_rng(seed)``; its se is the replicates' standard deviation, its centre
    the sample NPS). Missing scores are refused: a non-response is not a detractor.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    P, D, n = nps_counts(scores)
    if method == "bootstrap":
        if n_boot < 100:
            raise ValueError("use at least 100 bootstrap resamples")
        reps = _bootstrap_nps(np.array([P]), np.array([D]), n, n_boot, np.random.default_rng(seed))
        alpha = 1 - confidence
        _z(confidence)
        lo, hi = np.quantile(reps[:, 0], [alpha / 2, 1 - alpha / 2])
        centre, se = (P - D) / n, float(reps[:, 0].std(ddof=1))
    else:
        c, s, lo_a, hi_a = nps_interval(P, D, n, method, confidence)
        centre, se, lo, hi = float(c), float(s), float(lo_a), float(hi_a)
    return NPSResult(float(centre), se, float(lo), float(hi), n, P, D, method, confidence)


def nps_difference(
    wave_a: Iterable[float] | pd.Series | np.ndarray,
    wave_b: Iterable[float] | pd.Series | np.ndarray,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Is the change between two independent survey waves real? NPS_b - NPS_a with
    se = sqrt(Var_a + Var_b) (the trinomial variances, Rocks 2016), a Wald interval and the
    two-sided p-value of z = difference / se."""
    a, b = nps(wave_a), nps(wave_b)
    diff = b.nps - a.nps
    se = float(np.hypot(a.se, b.se))
    z = _z(confidence)
    stat = diff / se if se > 0 else np.inf * np.sign(diff)
    return {
        "nps_a": a.nps, "nps_b": b.nps, "n_a": a.n, "n_b": b.n, "difference": diff, "se": se,
        "ci_low": diff - z * se, "ci_high": diff + z * se,
        "z": float(stat), "p_value": float(2 * stats.norm.sf(abs(stat))),
    }  # fmt: skip


def coverage_simulation(
    p_promoter: float,
    p_detractor: float,
    sizes: Sequence[int],
    n_sims: int = 2000,
    confidence: float = 0.95,
    n_boot: int = 400,
    seed: int = 0,
    methods: Sequence[str] = METHODS,
) -> pd.DataFrame:
    """How often each interval covers the true NPS p_P - p_D, per sample size.

    For each n, `n_sims` samples are drawn at once as multinomial category counts (one numpy
    call); the bootstrap of every sample is one more multinomial call of shape (n_boot, n_sims).
    Returns one row per (n, method): ``coverage`` (share of intervals containing the truth),
    ``mc_se`` (its Monte-Carlo standard error) and ``mean_width``.
    """
    if not (0 <= p_promoter and 0 <= p_detractor and p_promoter + p_detractor <= 1):
        raise ValueError("p_promoter and p_detractor must be shares that sum to at most 1")
    rng = np.random.default_rng(seed)
    truth = p_promoter - p_detractor
    probs = [p_promoter, p_detractor, 1 - p_promoter - p_detractor]
    alpha = 1 - confidence
    rows = []
    for n in sizes:
        counts = rng.multinomial(int(n), probs, size=n_sims)
        P, D = counts[:, 0], counts[:, 1]
        for method in methods:
            if method == "bootstrap":
                reps = _bootstrap_nps(P, D, int(n), n_boot, rng)
                lo, hi = np.quantile(reps, [alpha / 2, 1 - alpha / 2], axis=0)
            else:
                _, _, lo, hi = nps_interval(P, D, n, method, confidence)
            cover = (lo <= truth) & (truth <= hi)
            cov = float(cover.mean())
            rows.append(
                {
                    "n": int(n),
                    "method": method,
                    "coverage": cov,
                    "mc_se": float(np.sqrt(cov * (1 - cov) / n_sims)),
                    "mean_width": float(np.mean(hi - lo)),
                }
            )
    return pd.DataFrame(rows)


def clustered_nps(
    scores: Iterable[float] | pd.Series | np.ndarray,
    clusters: Iterable[object] | pd.Series | np.ndarray,
    confidence: float = 0.95,
) -> dict[str, float]:
    """NPS with a cluster-robust standard error, for answers that are not independent (the
    same customer answering every year): with z_i = +1 promoter, -1 detractor, 0 passive and
    the clusters' sums of residuals S_g = sum_{i in g} (z_i - NPS),

        se_cluster = sqrt( G / (G - 1) * sum_g S_g^2 ) / n

    (the Liang-Zeger sandwich for a mean, K.-Y. Liang & S. L. Zeger (1986), *Biometrika* 73(1),
    13-22, with the small-sample factor G/(G-1); equal to statsmodels' OLS on a constant with
    ``cov_type="cluster"``). ``design_effect`` = (se_cluster / se_independent)^2: how many
    answers one answer is worth less than it looks; ``effective_n`` = n / design_effect."""
    z = nps_scores(scores)
    g = pd.Series(np.asarray(clusters), dtype="object")
    if len(g) != z.size:
        raise ValueError(f"{len(g)} cluster ids for {z.size} scores")
    s = (z >= 9).astype(float) - (z <= 6).astype(float)
    est, n = float(s.mean()), s.size
    sums = pd.Series(s - est).groupby(g.to_numpy()).sum().to_numpy()
    n_g = sums.size
    if n_g < 2:
        raise ValueError("a cluster-robust se needs at least two clusters")
    se_c = float(np.sqrt(n_g / (n_g - 1) * np.sum(sums**2)) / n)
    se_i = float(np.sqrt(np.sum((s - est) ** 2)) / n)
    q = _z(confidence)
    deff = (se_c / se_i) ** 2 if se_i > 0 else np.nan
    return {
        "nps": est, "se_independent": se_i, "se_cluster": se_c,
        "ci_low": est - q * se_c, "ci_high": est + q * se_c,
        "n": int(n), "clusters": int(n_g), "design_effect": float(deff),
        "effective_n": float(n / deff) if deff and np.isfinite(deff) else np.nan,
    }  # fmt: skip


def nonresponse_tipping_point(
    respondent_nps: float, response_rate: float, threshold: float = 0.0
) -> dict[str, float]:
    """A tipping-point analysis of non-random non-response (as in missing-data sensitivity
    analyses: D. B. Rubin (1977), *JASA* 72(359), 538-543; the "delta adjustment" of
    J. R. Carpenter & M. G. Kenward (2013), *Multiple Imputation and its Application*, ch. 10):
    suppose the invited customers who did not answer have an NPS lower than the respondents' by
    delta. Everyone's NPS is then

        NPS_all(delta) = NPS_resp - (1 - r) delta      (r = response rate),

    and it crosses `threshold` at delta* = (NPS_resp - threshold) / (1 - r). No data can say
    which delta is true; the question is whether delta* is plausible. Returns delta* and the
    slope -(1 - r) of NPS_all in delta (same units as the NPS given)."""
    if not 0 < response_rate < 1:
        raise ValueError("the response rate must be strictly between 0 and 1")
    return {
        "tipping_delta": float((respondent_nps - threshold) / (1 - response_rate)),
        "slope": float(-(1 - response_rate)),
    }


# --------------------------------------------------------------------------------------------
# Who answers: non-response and weighting
# --------------------------------------------------------------------------------------------
def weighted_nps(
    scores: Iterable[float] | pd.Series | np.ndarray,
    weights: Iterable[float] | pd.Series | np.ndarray,
    confidence: float = 0.95,
) -> NPSResult:
    """Weighted (Hajek) NPS = sum w_i z_i / sum w_i with z_i = +1 promoter, -1 detractor, 0
    passive, and its linearization (sandwich) standard error

        se = sqrt( sum w_i^2 (z_i - NPS)^2 ) / sum w_i,

    which with equal weights is exactly the trinomial se of Rocks (2016):
    sqrt(sum (z_i - NPS)^2) / n = sqrt([p_P + p_D - NPS^2] / n). It treats the weights as
    known; weights estimated from a response model usually make it slightly conservative
    (Lunceford & Davidian 2004, *Statistics in Medicine* 23(19))."""
    v = nps_scores(scores)
    w = np.asarray(weights, dtype=float)
    if w.shape != v.shape:
        raise ValueError(f"{w.size} weights for {v.size} scores")
    if np.isnan(w).any() or (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be non-negative numbers with a positive sum")
    z = (v >= 9).astype(float) - (v <= 6).astype(float)
    est = float(np.sum(w * z) / w.sum())
    se = float(np.sqrt(np.sum(w**2 * (z - est) ** 2)) / w.sum())
    q = _z(confidence)
    P, D = int((v >= 9).sum()), int((v <= 6).sum())
    return NPSResult(
        est, se, max(est - q * se, -1.0), min(est + q * se, 1.0), int(v.size), P, D,
        "weighted", confidence,
    )  # fmt: skip


def response_weights(
    features: pd.DataFrame, responded: pd.Series | np.ndarray, clip: float = 20.0
) -> pd.Series:
    """Inverse response-propensity weights 1 / P(respond | features) for every invited row,
    from a logistic regression (statsmodels ``Logit``) of `responded` on the numeric
    `features` (one-hot encode categories first); weights are capped at `clip` times their
    mean so a few near-zero propensities cannot dominate. Use them on the respondents' rows
    (the weighting-class idea of R. J. A. Little (1986), *International Statistical Review*
    54(2), 139-157, with the classes replaced by a model)."""
    import statsmodels.api as sm

    y = np.asarray(responded, dtype=float)
    X = features.astype(float)
    if len(X) != y.size:
        raise ValueError(f"{len(X)} feature rows for {y.size} response flags")
    if X.isna().any().any():
        raise ValueError(f"features have missing values in {list(X.columns[X.isna().any()])}")
    fit = sm.Logit(y, sm.add_constant(X, has_constant="add")).fit(disp=0, maxiter=200)
    p = np.asarray(fit.predict(sm.add_constant(X, has_constant="add")), dtype=float)
    w = 1 / np.clip(p, 1e-6, 1)
    w = np.minimum(w, clip * w.mean())
    return pd.Series(w, index=features.index, name="response_weight")


@dataclass(frozen=True)
class SelectionFit:
    """A fitted shared-latent-variable selection model (:func:`fit_selection_model`)."""

    params: pd.Series
    cov: pd.DataFrame
    loglik: float
    n_customers: int
    n_invitations: int


_SEL_NAMES = ["a", "b", "mu", "c", "log_sigma"]


def _sel_parts(theta: np.ndarray, pen: np.ndarray, nodes: np.ndarray):
    a, b, mu, c, log_sigma = theta[:5]
    d = theta[5:]
    sigma = np.exp(log_sigma)
    shift = pen @ d if d.size else np.zeros(pen.shape[0])
    m = mu + shift[:, None] - c * nodes[None, :]  # latent mean score, (invitations, nodes)
    logit = a + b * nodes  # (nodes,)
    return m, sigma, logit


def _score_logpmf(score: np.ndarray, m: np.ndarray, sigma: float) -> np.ndarray:
    """log P(clip(round(y*), 0, 10) = score), y* ~ N(m, sigma^2), for integer scores: the normal
    probability of [score - 0.5, score + 0.5] (open-ended at 0 and 10), computed on the side of
    the distribution where the difference does not cancel."""
    from scipy.special import ndtr

    k = score[:, None].astype(float)
    upper = np.where(k >= 10, np.inf, (k + 0.5 - m) / sigma)
    lower = np.where(k <= 0, -np.inf, (k - 0.5 - m) / sigma)
    left = m < k  # the interval lies mostly above the mean: use the upper tail
    p = np.where(left, ndtr(-lower) - ndtr(-upper), ndtr(upper) - ndtr(lower))
    return np.log(np.maximum(p, 1e-300))


def _indicator(cust: np.ndarray, n_c: int):
    """Sparse (customers x rows) 0/1 matrix: summing rows per customer by one product."""
    from scipy import sparse

    return sparse.csr_matrix(
        (np.ones(cust.size), (cust, np.arange(cust.size))), shape=(n_c, cust.size)
    )


def fit_selection_model(
    customer: pd.Series | np.ndarray,
    responded: pd.Series | np.ndarray,
    score: pd.Series | np.ndarray,
    penalties: pd.DataFrame | None = None,
    n_nodes: int = 16,
) -> SelectionFit:
    """Non-response that depends on what the customer would answer (missing *not* at random),
    modelled with one latent trait u ~ N(0, 1) per customer shared by the answer and the
    decision to answer (a shared-parameter selection model; J. J. Heckman (1979), *Econometrica*
    47(1), 153-161, and D. Follmann & M. Wu (1995), *Biometrics* 51(1), 151-168):

        P(answer invitation j) = expit(a + b u),
        score_j = clip(round(y*), 0, 10),  y* ~ N(mu - c u + d' penalties_j, sigma^2).

    Customers invited more than once identify it: their answers vary around their own level
    (sigma) and those who answer more often answer differently (b, c). Fitted by maximum
    likelihood, u integrated out by Gauss-Hermite quadrature; the covariance is the inverse of
    the numerical Hessian. The result is only as good as these assumptions (normal trait,
    the same trait in both equations): a model, not a measurement.
    """
    from scipy import optimize

    cust = pd.factorize(np.asarray(customer))[0]
    r = np.asarray(responded, dtype=bool)
    y = np.asarray(pd.Series(score, dtype="float64").fillna(-1).to_numpy())
    if (r & (y < 0)).any():
        raise ValueError("every answered invitation needs a score")
    pen = np.zeros((r.size, 0)) if penalties is None else penalties.to_numpy(float)
    x, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    logw = np.log(w / w.sum())
    n_c = cust.max() + 1
    ya = y[r].astype(int)

    S_all, S_ans = _indicator(cust, n_c), _indicator(cust[r], n_c)
    n_yes = np.asarray(S_all @ r.astype(float)).ravel()
    n_no = np.asarray(S_all @ (~r).astype(float)).ravel()

    def nll(theta: np.ndarray) -> float:
        m, sigma, logit = _sel_parts(theta, pen[r], x)
        # per customer: log expit(logit) per answer, log expit(-logit) per silence, + score terms
        ll = n_yes[:, None] * -np.logaddexp(0, -logit)[None, :]
        ll = ll + n_no[:, None] * -np.logaddexp(0, logit)[None, :]
        ll = ll + S_ans @ _score_logpmf(ya, m, sigma)
        return -float(_logsumexp(ll + logw[None, :], axis=1).sum())

    mean0 = float(ya.mean()) if ya.size else 7.0
    rate0 = float(np.clip(r.mean(), 0.01, 0.99))
    theta0 = np.r_[np.log(rate0 / (1 - rate0)), 0.0, mean0, 1.0, 0.0, np.zeros(pen.shape[1])]
    # central differences for the gradient: the optimum to about 1e-8. With forward ones BFGS
    # stopped about 3e-7 short of it, at a point that moved with the CPU's last bits (a stored
    # figure's fifth digit differed between two machines)
    res = optimize.minimize(
        nll, theta0, method="BFGS", jac="3-point", options={"gtol": 1e-7, "maxiter": 500}
    )
    hess = _num_hessian(nll, res.x)
    cov = np.linalg.pinv(hess)
    names = _SEL_NAMES + [f"d_{c}" for c in (penalties.columns if penalties is not None else [])]
    return SelectionFit(
        pd.Series(res.x, index=names), pd.DataFrame(cov, index=names, columns=names),
        -float(res.fun), int(n_c), int(r.size),
    )  # fmt: skip


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    from scipy.special import logsumexp

    return logsumexp(a, axis=axis)


def _num_hessian(f, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    k = x.size
    H = np.zeros((k, k))
    E = np.eye(k) * h
    for i in range(k):
        for j in range(i, k):
            H[i, j] = H[j, i] = (
                f(x + E[i] + E[j]) - f(x + E[i] - E[j]) - f(x - E[i] + E[j]) + f(x - E[i] - E[j])
            ) / (4 * h * h)
    return H


def selection_nps(
    fit: SelectionFit,
    customer: pd.Series | np.ndarray,
    responded: pd.Series | np.ndarray,
    score: pd.Series | np.ndarray,
    penalties: pd.DataFrame | None = None,
    confidence: float = 0.95,
    n_nodes: int = 16,
) -> NPSResult:
    """NPS of *every* invitation under the selection model: answered invitations count with
    their observed category; each unanswered one with its expected z = P(promoter) -
    P(detractor) given everything the customer did answer (u's posterior). The standard error
    adds the parameter uncertainty (delta method, numerical gradient) and the spread of the
    unanswered invitations' z around their expectation."""
    cust = pd.factorize(np.asarray(customer))[0]
    r = np.asarray(responded, dtype=bool)
    y = np.asarray(pd.Series(score, dtype="float64").fillna(-1).to_numpy())
    pen = np.zeros((r.size, 0)) if penalties is None else penalties.to_numpy(float)
    x, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    logw = np.log(w / w.sum())
    n_c = cust.max() + 1
    z_obs = np.where(y >= 9, 1.0, np.where(y <= 6, -1.0, 0.0))

    S_all, S_ans = _indicator(cust, n_c), _indicator(cust[r], n_c)
    n_yes = np.asarray(S_all @ r.astype(float)).ravel()
    n_no = np.asarray(S_all @ (~r).astype(float)).ravel()

    def parts(theta: np.ndarray) -> tuple[float, float]:
        m, sigma, logit = _sel_parts(theta, pen, x)
        ll = n_yes[:, None] * -np.logaddexp(0, -logit)[None, :]
        ll = ll + n_no[:, None] * -np.logaddexp(0, logit)[None, :]
        ll = ll + S_ans @ _score_logpmf(y[r].astype(int), m[r], sigma)
        post = ll + logw[None, :]
        post = np.exp(post - post.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)  # P(u = node | customer's data)
        p_prom = stats.norm.sf((8.5 - m) / sigma)
        p_det = stats.norm.cdf((6.5 - m) / sigma)
        ez = ((p_prom - p_det) * post[cust]).sum(axis=1)
        ez2 = ((p_prom + p_det) * post[cust]).sum(axis=1)
        z = np.where(r, z_obs, ez)
        var_miss = np.where(r, 0.0, ez2 - ez**2)
        return float(z.mean()), float(var_miss.sum() / r.size**2)

    theta = fit.params.to_numpy()
    est, v_miss = parts(theta)
    h = 1e-5
    grad = np.array(
        [(parts(theta + h * e)[0] - parts(theta - h * e)[0]) / (2 * h) for e in np.eye(theta.size)]
    )
    se = float(np.sqrt(grad @ fit.cov.to_numpy() @ grad + v_miss))
    q = _z(confidence)
    yr = y[r]
    return NPSResult(
        est, se, est - q * se, est + q * se, int(r.size), int((yr >= 9).sum()), int((yr <= 6).sum()),
        "selection_model", confidence,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Comment themes
# --------------------------------------------------------------------------------------------
#: Word stems per theme, checked in this order (the first theme with a match wins, so the
#: narrow themes come before the broad ones: "freshly roasted" is freshness, not taste). Written
#: by reading a sample of the sample company's comments, as an analyst would; adapt it to your
#: own comments and measure it against labelled ones (theme_scores) before trusting it.
THEME_KEYWORDS: dict[str, tuple[str, ...]] = {
    "subscription flexibility": ("subscription", "pause", "skip", "cancel"),
    "customer service": ("support", "service", "complaint", "answer", "agent", "helpful"),
    "sustainability": ("compost", "sustainab", "fair", "direct trade", "farmer", "recycl", "packaging"),
    "freshness": ("fresh", "after roasting"),
    "website": ("website", "app ", "checkout", "log in", "login"),
    "price": ("price", "pricey", "expensive", "cheap", "cost"),
    "delivery": ("deliver", "shipping", "courier", "parcel", "arriv", "late", "carrier", "damaged", "lost"),
    "taste": ("taste", "flavo", "roast", "bitter", "aroma", "espresso", "bean", "consistent", "burnt", "stale"),
}  # fmt: skip


def keyword_themes(
    comments: pd.Series, keywords: Mapping[str, Sequence[str]] = THEME_KEYWORDS
) -> pd.Series:
    """Theme of each comment by a keyword dictionary: the first theme (in the mapping's order)
    any of whose stems occurs in the lower-cased comment; ``"other"`` when none does, missing
    when the comment is missing. Vectorized with pandas string methods."""
    text = comments.astype("string").str.lower()
    out = pd.Series(pd.NA, index=comments.index, dtype="string")
    for theme, words in reversed(list(keywords.items())):  # earlier themes overwrite later ones
        pattern = "|".join(map(_escape, words))
        hit = text.str.contains(pattern, regex=True, na=False)
        out = out.mask(hit, theme)
    return out.mask(out.isna() & text.notna(), "other")


def _escape(word: str) -> str:
    import re

    return re.escape(word)


def nmf_themes(
    comments: pd.Series,
    n_themes: int,
    seed: int = 0,
    top_words: int = 6,
    train: pd.Series | np.ndarray | None = None,
) -> tuple[pd.Series, pd.DataFrame]:
    """Unsupervised themes: TF-IDF of the comments (English stop words, words and word pairs)
    factorised by non-negative matrix factorization, ``X ~ W H`` with W, H >= 0
    (D. D. Lee & H. S. Seung (1999), *Nature* 401, 788-791; scikit-learn's ``NMF``). Each comment
    gets the topic with the largest weight in W. Returns (topic per comment, a table of each
    topic's top words). Topics have no names: read the words, or map them to labels by
    majority on a labelled sample (:func:`theme_scores` then measures the mapping). `train`
    (a boolean mask aligned with `comments`): the vocabulary, the IDF weights and the topics are
    fitted on those comments only and the others are projected on them (``NMF.transform``), so
    a score on the rest is a held-out one."""
    from sklearn.decomposition import NMF
    from sklearn.feature_extraction.text import TfidfVectorizer

    text = comments.dropna().astype(str)
    fit_on = (
        np.ones(len(text), dtype=bool)
        if train is None
        else pd.Series(np.asarray(train, dtype=bool), index=comments.index)
        .reindex(text.index)
        .to_numpy()
    )
    if fit_on.sum() < n_themes:
        raise ValueError(f"{int(fit_on.sum())} comments are too few for {n_themes} themes")
    vec = TfidfVectorizer(stop_words="english", ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    vec.fit(text[fit_on])
    model = NMF(n_components=n_themes, init="nndsvda", random_state=seed, max_iter=500)
    model.fit(vec.transform(text[fit_on]))
    W = model.transform(vec.transform(text))
    words = np.asarray(vec.get_feature_names_out())
    top = np.argsort(-model.components_, axis=1)[:, :top_words]
    table = pd.DataFrame(
        {"topic": np.arange(n_themes), "top_words": [", ".join(words[t]) for t in top]}
    ).set_index("topic")
    topic = pd.Series(W.argmax(axis=1), index=text.index, name="topic")
    return topic.reindex(comments.index), table


def topics_to_labels(topic: pd.Series, labels: pd.Series) -> dict[int, str]:
    """Name each unsupervised topic after the label most of its comments carry (majority vote
    on a labelled sample). Fit it on one part of the labelled comments and score it on another,
    or the score flatters the topics."""
    both = topic.notna() & labels.notna()
    if not both.any():
        raise ValueError("no comment has both a topic and a label")
    table = pd.crosstab(topic[both].astype(int), labels[both])
    return {int(k): str(v) for k, v in table.idxmax(axis=1).items()}


def nmf_stability(
    comments: pd.Series,
    labels: pd.Series,
    train: pd.Series | np.ndarray,
    topic_counts: Sequence[int],
    seeds: Sequence[int],
) -> pd.DataFrame:
    """How much the NMF themes depend on the arbitrary choices: for every number of topics and
    seed, :func:`nmf_themes` fitted on `train`, topics named by majority on `train`
    (:func:`topics_to_labels`) and scored on the other comments (:func:`theme_scores`). One row
    per (topics, seed): held-out micro F1, the number of labelled themes no topic is named
    after (recall 0) and the number of distinct names the topics got."""
    mask = pd.Series(np.asarray(train, dtype=bool), index=comments.index)
    rows = []
    for k in topic_counts:
        for seed in seeds:
            topic, _ = nmf_themes(comments, int(k), seed=int(seed), train=mask)
            names = topics_to_labels(topic[mask], labels[mask])
            sc = theme_scores(labels[~mask], topic[~mask].map(names))
            per_theme = sc.drop(index="micro")
            rows.append(
                {
                    "topics": int(k), "seed": int(seed), "micro_f1": float(sc.loc["micro", "f1"]),
                    "themes_missed": int((per_theme["recall"] == 0).sum()),
                    "distinct_names": len(set(names.values())),
                }
            )  # fmt: skip
    return pd.DataFrame(rows)


def corrected_prevalence(
    predicted: pd.Series, labelled_true: pd.Series, labelled_predicted: pd.Series
) -> pd.DataFrame:
    """Theme shares corrected for misclassification (the matrix method: M. Buonaccorsi (2010),
    *Measurement Error: Models, Methods and Applications*, ch. 3; the multi-class form of
    Rogan & Gladen 1978): on a labelled sample estimate M[j, k] = P(predicted j | true k); the
    predicted shares q of the unlabelled comments satisfy q = M pi, solved for the true shares
    pi >= 0 by non-negative least squares (``scipy.optimize.nnls``; M need not be invertible
    when a theme is never predicted) and renormalized to sum to 1. Columns ``predicted_share``
    and ``corrected_share`` per true theme (a theme the classifier never predicts can still be
    recovered when its comments land in identifiable places, not when they are spread like
    another theme's)."""
    from scipy.optimize import nnls

    both = labelled_true.notna() & labelled_predicted.notna()
    conf = pd.crosstab(labelled_predicted[both].astype(str), labelled_true[both].astype(str))
    themes = sorted(conf.columns)
    rows = sorted(set(conf.index) | set(predicted.dropna().astype(str)) | set(themes))
    conf = conf.reindex(index=rows, columns=themes, fill_value=0)
    M = (conf / conf.sum(axis=0)).to_numpy()
    q = predicted.dropna().astype(str).value_counts(normalize=True).reindex(rows, fill_value=0.0)
    pi, _ = nnls(M, q.to_numpy())
    pi = pi / pi.sum() if pi.sum() > 0 else pi
    return pd.DataFrame(
        {"predicted_share": q.reindex(themes, fill_value=0.0).to_numpy(), "corrected_share": pi},
        index=pd.Index(themes, name="theme"),
    )


def theme_shares(themes: pd.Series, confidence: float = 0.95) -> pd.DataFrame:
    """Share of each theme among the comments that have one, with simultaneous intervals for
    the multinomial proportions (L. A. Goodman (1965), *Technometrics* 7(2), 247-254;
    statsmodels' ``multinomial_proportions_confint``): all intervals hold together at
    `confidence`, so the themes can be compared with each other. Columns ``n``, ``share``,
    ``ci_low``, ``ci_high``, largest share first."""
    from statsmodels.stats.proportion import multinomial_proportions_confint

    counts = themes.dropna().astype(str).value_counts()
    if len(counts) < 2:
        raise ValueError("theme shares need at least two themes")
    ci = multinomial_proportions_confint(counts.to_numpy(), alpha=1 - confidence, method="goodman")
    return pd.DataFrame(
        {"n": counts.to_numpy(), "share": counts.to_numpy() / counts.sum(),
         "ci_low": ci[:, 0], "ci_high": ci[:, 1]},
        index=counts.index.rename("theme"),
    )  # fmt: skip


def theme_scores(true: pd.Series, predicted: pd.Series) -> pd.DataFrame:
    """Per-theme precision, recall, F1 and support of `predicted` against the labels `true`
    (rows where the label is missing are left out), plus a ``micro`` row (= accuracy when each
    comment has one label). Wraps ``sklearn.metrics.precision_recall_fscore_support``."""
    from sklearn.metrics import precision_recall_fscore_support

    keep = true.notna()
    y, yhat = true[keep].astype(str), predicted[keep].astype("string").fillna("none").astype(str)
    labels = sorted(y.unique())
    p, r, f, s = precision_recall_fscore_support(y, yhat, labels=labels, zero_division=0)
    out = pd.DataFrame({"precision": p, "recall": r, "f1": f, "support": s}, index=labels)
    acc = float((y == yhat).mean())
    out.loc["micro"] = [acc, acc, acc, int(len(y))]
    out["support"] = out["support"].astype(int)
    out.index.name = "theme"
    return out


# --------------------------------------------------------------------------------------------
# Drivers of the score
# --------------------------------------------------------------------------------------------
def score_drivers(
    score: pd.Series,
    X: pd.DataFrame,
    groups: pd.Series | np.ndarray,
    method: str = "interval",
    confidence: float = 0.95,
    bounds: tuple[int, int] = (0, 10),
) -> pd.DataFrame:
    """A driver analysis of a 0-10 score: the change in the score (points) with each column of
    `X` (a constant is added), standard errors clustered by `groups` (the customer: answers of
    one customer are not independent; K.-Y. Liang & S. L. Zeger (1986), *Biometrika* 73(1),
    13-22, the sandwich of statsmodels' ``cov_type="cluster"``).

    * ``method="ols"``: least squares on the score as a number. The score is rounded and
      clipped (a customer who would say 12 says 10), so a change that moves customers against
      the top of the scale shows less than it is: the slopes are attenuated.
    * ``method="interval"``: the score as a rounded, clipped normal latent variable,
      score = clip(round(x'b + e), lo, hi), e ~ N(0, sigma^2), i.e. an ordered probit whose cut
      points are fixed at k + 1/2 (interval regression: M. B. Stewart (1983), "On least squares
      estimation when the dependent variable is grouped", *Review of Economic Studies* 50(4),
      737-753). Its log-likelihood per answer is
      log[Phi((u - x'b)/sigma) - Phi((l - x'b)/sigma)] with (l, u) = (s - 1/2, s + 1/2),
      l = -inf at the bottom and u = +inf at the top of the scale; maximised by BFGS
      (statsmodels' ``GenericLikelihoodModel``, started from OLS). b is in points of the latent
      score, the scale the generator's penalties live on.

    Returns one row per column of `X` (``estimate``, ``ci_low``, ``ci_high``) and, for
    ``"interval"``, a ``sigma`` row (the latent residual SD)."""
    import statsmodels.api as sm
    from statsmodels.base.model import GenericLikelihoodModel

    if method not in ("ols", "interval"):
        raise ValueError(f"method must be 'ols' or 'interval', got {method!r}")
    y = pd.Series(score, dtype=float).to_numpy()
    Xc = sm.add_constant(X.astype(float), has_constant="add")
    g = np.asarray(groups)
    cov = {"cov_type": "cluster", "cov_kwds": {"groups": g}}
    ols = sm.OLS(y, Xc.to_numpy()).fit(**cov)
    names = list(Xc.columns)
    if method == "ols":
        params, ci = ols.params, ols.conf_int(1 - confidence)
    else:
        lo, hi = bounds
        upper = np.where(y >= hi, np.inf, y + 0.5)
        lower = np.where(y <= lo, -np.inf, y - 0.5)

        class _Interval(GenericLikelihoodModel):
            def loglikeobs(self, params: np.ndarray) -> np.ndarray:
                m, s = self.exog @ params[:-1], np.exp(params[-1])
                p = stats.norm.cdf((upper - m) / s) - stats.norm.cdf((lower - m) / s)
                return np.log(np.clip(p, 1e-300, None))

        model = _Interval(y, Xc.to_numpy(), extra_params_names=["log_sigma"])
        start = np.r_[ols.params, np.log(max(float(np.std(ols.resid)), 0.1))]
        fit = model.fit(start_params=start, method="bfgs", maxiter=1000, disp=0, **cov)
        params, ci = fit.params, fit.conf_int(1 - confidence)
        names = [*names, "sigma"]
        params = np.r_[params[:-1], np.exp(params[-1])]
        ci = np.r_[ci[:-1], np.exp(ci[-1:])]
    out = pd.DataFrame(
        {"estimate": params, "ci_low": np.asarray(ci)[:, 0], "ci_high": np.asarray(ci)[:, 1]},
        index=pd.Index(names, name="term"),
    )
    return out.drop(index="const")


def _lmg_from_moments(cov: np.ndarray, cols: Sequence[np.ndarray]) -> np.ndarray:
    """LMG shares from stacked covariance matrices `cov` (..., 1 + k, 1 + k) of (y, x_1..x_k):
    one share per group of x-columns `cols` (indices into x), in the last axis."""
    from itertools import combinations
    from math import factorial

    p = len(cols)
    var_y = cov[..., 0, 0]
    r2: dict[frozenset[int], np.ndarray] = {frozenset(): np.zeros(var_y.shape)}
    for size in range(1, p + 1):
        for subset in combinations(range(p), size):
            idx = np.concatenate([cols[g] for g in subset]) + 1
            sxx = cov[..., idx[:, None], idx[None, :]]
            sxy = cov[..., idx, 0]
            beta = np.einsum("...ij,...j->...i", np.linalg.pinv(sxx, hermitian=True), sxy)
            r2[frozenset(subset)] = np.einsum("...i,...i->...", sxy, beta) / var_y
    shares = np.zeros((*var_y.shape, p))
    for j in range(p):
        others = [g for g in range(p) if g != j]
        for size in range(p):
            w = factorial(size) * factorial(p - size - 1) / factorial(p)
            for subset in combinations(others, size):
                s = frozenset(subset)
                shares[..., j] += w * (r2[s | {j}] - r2[s])
    return shares


def _weighted_cov(z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Covariance matrices of the columns of `z` (n, m) under frequency weights `w` (..., n)."""
    total = w.sum(axis=-1)[..., None]
    mean = (w @ z) / total
    second = np.swapaxes(w[..., :, None] * z, -1, -2) @ z / total[..., None]
    return second - mean[..., :, None] * mean[..., None, :]


def _lmg_inputs(
    y: pd.Series | np.ndarray, X: pd.DataFrame, groups: Mapping[str, Sequence[str]]
) -> tuple[np.ndarray, list[np.ndarray], list[str]]:
    names = list(groups)
    if len(names) < 2:
        raise ValueError("relative importance needs at least two groups of predictors")
    missing = [c for g in groups.values() for c in g if c not in X.columns]
    if missing:
        raise ValueError(f"columns not in X: {missing}")
    order = [c for g in groups.values() for c in g]
    if len(set(order)) != len(order):
        raise ValueError("a column belongs to more than one group")
    pos = {c: i for i, c in enumerate(order)}
    cols = [np.array([pos[c] for c in groups[g]], dtype=int) for g in names]
    z = np.column_stack([np.asarray(y, dtype=float), X[order].to_numpy(dtype=float)])
    if not np.isfinite(z).all():
        raise ValueError("y and X must be finite (drop or fill missing values first)")
    return z, cols, names


def lmg_r2(
    y: pd.Series | np.ndarray,
    X: pd.DataFrame,
    groups: Mapping[str, Sequence[str]],
    weights: np.ndarray | None = None,
) -> pd.Series:
    """Relative importance of groups of predictors in a linear regression: the LMG decomposition
    of R^2 (R. H. Lindeman, P. F. Merenda & R. Z. Gold (1980), *Introduction to Bivariate and
    Multivariate Analysis*; U. Grömping (2007), "Estimators of relative importance in linear
    regression based on variance decomposition", *The American Statistician* 61(2), 139-147),
    which is the Shapley value of R^2 with the groups as players:

        LMG_j = sum over S subset of G without j of |S|! (p - |S| - 1)! / p! [R^2(S + j) - R^2(S)],

    p groups G, R^2(S) that of the least-squares fit of `y` on the columns of the groups in S (with
    a constant; R^2(empty) = 0). It averages group j's increase in R^2 over every order in which
    the groups can enter, so the shares are non-negative for R^2 and sum to R^2 of the full
    model; for uncorrelated predictors each share is the predictor's squared correlation with y.
    R^2(S) = s_yS' S_SS^+ s_yS / s_yy from the (weighted) covariance matrix, so all 2^p subsets
    cost one pass over the data. `groups`: name -> columns of `X`; `weights`: frequency weights
    per row (a bootstrap draw). Returns the share of R^2 per group (``r2_share``), in R^2 units."""
    z, cols, names = _lmg_inputs(y, X, groups)
    w = np.ones(len(z)) if weights is None else np.asarray(weights, dtype=float)
    shares = _lmg_from_moments(_weighted_cov(z, w), cols)
    return pd.Series(shares, index=pd.Index(names, name="group"), name="r2_share")


def lmg_importance(
    y: pd.Series | np.ndarray,
    X: pd.DataFrame,
    groups: Mapping[str, Sequence[str]],
    clusters: pd.Series | np.ndarray | None = None,
    n_boot: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, object]:
    """:func:`lmg_r2` with percentile bootstrap intervals, resampling whole `clusters` (the
    customer: a repeat respondent's answers are drawn together; None: every row its own
    cluster), and the ranking's certainty: the difference between the two groups with the
    largest shares (in the full sample) in every draw.

    Returns ``table`` (one row per group, sorted by share: ``estimate``, ``ci_low``,
    ``ci_high`` in R^2 units, ``of_r2`` = share / R^2, ``top_share`` = the share of draws in
    which the group has the largest share), ``r2`` (estimate, ci_low, ci_high), ``top`` and
    ``second`` (group names) and ``difference`` (top - second: estimate, ci_low, ci_high)."""
    z, cols, names = _lmg_inputs(y, X, groups)
    n = len(z)
    g = np.arange(n) if clusters is None else pd.factorize(np.asarray(clusters))[0]
    n_g = int(g.max()) + 1
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_g, np.full(n_g, 1 / n_g), size=n_boot)  # clusters drawn
    w = np.vstack([np.ones(n), counts[:, g]])  # row 0: the sample itself
    shares = _lmg_from_moments(_weighted_cov(z, w), cols)
    point, draws = shares[0], shares[1:]
    a = (1 - confidence) / 2
    lo, hi = np.quantile(draws, [a, 1 - a], axis=0)
    r2, r2_draws = point.sum(), draws.sum(axis=1)
    order = np.argsort(-point)
    top, second = int(order[0]), int(order[1])
    diff = draws[:, top] - draws[:, second]
    winner = np.bincount(draws.argmax(axis=1), minlength=len(names)) / n_boot
    table = pd.DataFrame(
        {"estimate": point, "ci_low": lo, "ci_high": hi, "of_r2": point / r2,
         "top_share": winner},
        index=pd.Index(names, name="group"),
    ).iloc[order]  # fmt: skip
    return {
        "table": table,
        "r2": (float(r2), *(float(q) for q in np.quantile(r2_draws, [a, 1 - a]))),
        "top": names[top],
        "second": names[second],
        "difference": (float(point[top] - point[second]),
                       *(float(q) for q in np.quantile(diff, [a, 1 - a]))),
    }  # fmt: skip


# --------------------------------------------------------------------------------------------
# An operational fix: interrupted time series
# --------------------------------------------------------------------------------------------
def _counts_around_break(
    counts: pd.Series, exposure: pd.Series, break_period: object
) -> tuple[pd.Series, pd.Series, pd.Index, np.ndarray]:
    """A count series, its exposure aligned to it (positive in every period) and the indicator of
    the periods from `break_period` on (which must fall inside the series)."""
    y = counts.astype(float)
    e = exposure.reindex(y.index).astype(float)
    if (e <= 0).any() or e.isna().any():
        raise ValueError("every period needs a positive exposure")
    idx = y.index
    brk = (
        pd.Period(break_period, freq=idx.freq) if isinstance(idx, pd.PeriodIndex) else break_period
    )
    post = np.asarray(idx >= brk, dtype=float)
    if post.all() or not post.any():
        raise ValueError("the break must fall inside the series (periods before and after it)")
    return y, e, idx, post


def interrupted_time_series(
    counts: pd.Series,
    exposure: pd.Series,
    break_period: pd.Period | str,
    trend: bool = False,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Level change of a rate at a dated intervention: segmented Poisson regression
    (A. K. Wagner, S. B. Soumerai, F. Zhang & D. Ross-Degnan (2002), *Journal of Clinical Pharmacy
    and Therapeutics* 27(4), 299-309; J. L. Bernal, S. Cummins & A. Gasparrini (2017),
    *International Journal of Epidemiology* 46(1), 348-355):

        log E[y_t] = log(exposure_t) + b0 + b1 post_t  (+ b2 t  if `trend`),

    with y_t the events in period t (e.g. delivery tickets per month), exposure_t the units at
    risk (orders) and post_t = 1 from `break_period` on. Fitted by statsmodels' GLM with the
    quasi-Poisson scale (Pearson chi2 / df) so overdispersion widens the interval. Returns the
    rate ratio exp(b1), the relative reduction 1 - exp(b1) with its interval, and the rates
    before and after."""
    import statsmodels.api as sm

    y, e, idx, post = _counts_around_break(counts, exposure, break_period)
    X = {"const": np.ones(len(y)), "post": post}
    if trend:
        X["t"] = np.arange(len(y), dtype=float)
    X = pd.DataFrame(X, index=idx)
    fit = sm.GLM(y, X, family=sm.families.Poisson(), offset=np.log(e)).fit(scale="X2")
    b, se = float(fit.params["post"]), float(fit.bse["post"])
    z = _z(confidence)
    rr, lo, hi = np.exp(b), np.exp(b - z * se), np.exp(b + z * se)
    return {
        "rate_ratio": float(rr), "rr_low": float(lo), "rr_high": float(hi),
        "reduction": float(1 - rr), "reduction_low": float(1 - hi), "reduction_high": float(1 - lo),
        "rate_before": float(y[post == 0].sum() / e[post == 0].sum()),
        "rate_after": float(y[post == 1].sum() / e[post == 1].sum()),
        "dispersion": float(fit.scale), "periods": int(len(y)),
    }  # fmt: skip


def segmented_its(
    counts: pd.Series,
    exposure: pd.Series,
    break_period: pd.Period | str,
    *,
    season: str | None = "quarter",
    hac_lags: int = 3,
    effect: str = "average",
    errors: str = "wider",
    confidence: float = 0.95,
) -> dict[str, float]:
    """An interrupted time series with level and slope change, seasonality and autocorrelation-
    robust errors (segmented Poisson regression: Wagner et al. 2002; Bernal, Cummins & Gasparrini
    2017, *International Journal of Epidemiology* 46(1), 348-355):

        log E[y_t] = log(exposure_t) + b0 + b1 t + b2 post_t + b3 (t - t0) post_t + season_t,

    t the period number, t0 the break, post_t = 1 from `break_period` on, season_t dummies of the
    quarter (``season="quarter"``) or month of year (``"month"``) of a monthly PeriodIndex.
    exp(b3) is the change of the monthly growth factor after the break. The effect reported as
    ``reduction`` = 1 - exp(g'b) is

    * ``effect="average"`` (default): the rate ratio averaged (on the log scale) over the
      periods after the break, g'b = b2 + b3 * mean_post(t - t0): the observed post-break rates
      against the pre-break trend and season carried forward. It does not lean on b3, which a
      short post-break stretch estimates poorly;
    * ``effect="break"``: the level change at the break, exp(b2): the post-break line
      extrapolated back to t0, so it carries b3's error too (with 8 post-break months its SD is
      nearly twice the average's; both equal the planted step when the rate only steps).

    The ``break_*`` keys always hold the level change at the break. Standard errors
    (``errors``): ``"hac"`` Newey-West (Bartlett kernel, `hac_lags` lags: W. K. Newey & K. D.
    West (1987), *Econometrica* 55(3), 703-708; statsmodels' GLM ``cov_type="HAC"``), robust to
    overdispersion and residual autocorrelation but too small in short series (the sandwich
    needs many periods: N. M. Kiefer & T. J. Vogelsang (2005), *Econometric Theory* 21(6),
    1130-1164); ``"quasi"`` the Poisson errors scaled by the Pearson dispersion (overdispersion
    only); ``"wider"`` (default) the larger of the two for each reported contrast. The
    Ljung-Box test of the Pearson residuals at `hac_lags` lags (G. M. Ljung & G. E. P. Box
    (1978), *Biometrika* 65(2), 297-303) and their lag-1 autocorrelation say whether
    autocorrelation is there at all."""
    import statsmodels.api as sm
    from statsmodels.stats.diagnostic import acorr_ljungbox

    if effect not in ("average", "break"):
        raise ValueError(f"effect must be 'average' or 'break', got {effect!r}")
    if errors not in ("hac", "quasi", "wider"):
        raise ValueError(f"errors must be 'hac', 'quasi' or 'wider', got {errors!r}")
    y, e, idx, post = _counts_around_break(counts, exposure, break_period)
    t = np.arange(len(y), dtype=float)
    t0 = float(np.argmax(post))
    X = pd.DataFrame({"const": 1.0, "t": t, "level": post, "slope": (t - t0) * post}, index=idx)
    if season is not None:
        if season not in ("quarter", "month"):
            raise ValueError(f"season must be 'quarter', 'month' or None, got {season!r}")
        key = getattr(idx, season)
        X = X.join(pd.get_dummies(key, prefix=season, drop_first=True, dtype=float).set_axis(idx))
    model = sm.GLM(y, X, family=sm.families.Poisson(), offset=np.log(e))
    quasi = model.fit(scale="X2")
    hac = model.fit(cov_type="HAC", cov_kwds={"maxlags": hac_lags})
    b = quasi.params
    covs = {"quasi": [quasi.cov_params().to_numpy()], "hac": [hac.cov_params().to_numpy()]}
    covs["wider"] = covs["quasi"] + covs["hac"]
    z = _z(confidence)

    def contrast(g: np.ndarray) -> tuple[float, float]:
        var = max(float(g @ c @ g) for c in covs[errors])
        return float(g @ b.to_numpy()), float(np.sqrt(var))

    def unit(name: str) -> np.ndarray:
        return np.asarray(X.columns == name, dtype=float)

    brk, brk_se = contrast(unit("level"))
    avg, avg_se = contrast(unit("level") + unit("slope") * float(X.loc[post == 1, "slope"].mean()))
    slope, slope_se = contrast(unit("slope"))
    d, se = (avg, avg_se) if effect == "average" else (brk, brk_se)
    resid = np.asarray(quasi.resid_pearson)
    lb = acorr_ljungbox(resid, lags=[hac_lags])
    rr, lo, hi = float(np.exp(d)), float(np.exp(d - z * se)), float(np.exp(d + z * se))
    return {
        "rate_ratio": rr, "rr_low": lo, "rr_high": hi,
        "reduction": 1 - rr, "reduction_low": 1 - hi, "reduction_high": 1 - lo,
        "log_rr": d, "log_rr_se": se,
        "break_reduction": float(1 - np.exp(brk)),
        "break_low": float(1 - np.exp(brk + z * brk_se)),
        "break_high": float(1 - np.exp(brk - z * brk_se)),
        "slope_ratio": float(np.exp(slope)),
        "slope_low": float(np.exp(slope - z * slope_se)),
        "slope_high": float(np.exp(slope + z * slope_se)),
        "ljung_box_p": float(lb["lb_pvalue"].iloc[0]),
        "lag1_autocorrelation": float(np.corrcoef(resid[:-1], resid[1:])[0, 1]),
        "dispersion": float(quasi.scale), "periods": int(len(y)),
        "post_periods": int(post.sum()),
    }  # fmt: skip


def its_against_control(
    treated: Mapping[str, float], control: Mapping[str, float], confidence: float = 0.95
) -> dict[str, float]:
    """A comparative interrupted time series: the effect of the treated series divided by that
    of a control series that the intervention should not touch (both from :func:`segmented_its`
    with the same ``effect``), exp(g'b_treated - g'b_control), with se = sqrt(se_t^2 + se_c^2)
    (the two series' counts independent given the shared exposure). A control that moves on
    the same date points to something else that changed then (Bernal, Cummins & Gasparrini
    (2018), "The use of controls in interrupted time series studies of public health
    interventions", *International Journal of Epidemiology* 47(6), 2082-2093)."""
    d = treated["log_rr"] - control["log_rr"]
    se = float(np.hypot(treated["log_rr_se"], control["log_rr_se"]))
    z = _z(confidence)
    rr, lo, hi = float(np.exp(d)), float(np.exp(d - z * se)), float(np.exp(d + z * se))
    return {
        "rate_ratio": rr, "rr_low": lo, "rr_high": hi,
        "reduction": 1 - rr, "reduction_low": 1 - hi, "reduction_high": 1 - lo,
    }  # fmt: skip


# --------------------------------------------------------------------------------------------
# Service KPIs and what follows an event
# --------------------------------------------------------------------------------------------
def ticket_durations(tickets: pd.DataFrame, as_of: str | pd.Timestamp) -> pd.DataFrame:
    """Time to first response and to resolution of each ticket opened up to as-of, in hours,
    as survival data: a ticket not yet answered (resolved) by the end of the as-of day is
    censored there (``responded`` / ``resolved`` False), never dropped and never counted as
    fast. Columns: ``response_hours``, ``responded``, ``resolution_hours``, ``resolved`` (plus
    the input's columns)."""
    t = periods.up_to(tickets, as_of, "opened_at").copy()
    end = periods.as_of_end(as_of)
    opened = pd.to_datetime(t["opened_at"])
    hour = pd.Timedelta(hours=1)
    for col, flag, name in [
        ("first_response_at", "responded", "response_hours"),
        ("resolved_at", "resolved", "resolution_hours"),
    ]:
        at = pd.to_datetime(t[col])
        seen = at.notna() & (at < end)
        stop = at.where(seen, end)
        t[name] = (stop - opened) / hour
        t[flag] = seen.to_numpy()
    return t


def ticket_outcome(tickets: pd.DataFrame, response_hours: float = 24.0) -> pd.Series:
    """How each ticket was handled, from its timestamps: ``"unresolved"`` (no ``resolved_at``),
    ``"poorly"`` (first response after `response_hours` or none), else ``"well"``. Judge only
    tickets old enough to have been settled: a ticket opened yesterday is not yet "unresolved"."""
    wait = pd.to_datetime(tickets["first_response_at"]) - pd.to_datetime(tickets["opened_at"])
    slow = ~(wait < pd.Timedelta(hours=response_hours))  # NaT (no reply) counts as slow
    out = np.select([tickets["resolved_at"].isna(), slow], ["unresolved", "poorly"], "well")
    return pd.Series(out, index=tickets.index, name="outcome")


def worst_ticket_before(
    events: pd.DataFrame, tickets: pd.DataFrame, at: str, as_of: str | pd.Timestamp
) -> pd.DataFrame:
    """For each event (an invitation, an answer), whether the customer's worst ticket opened
    before it was handled ``poorly`` or left ``unresolved`` (:func:`ticket_outcome`, judged at
    as-of): two 0/1 columns, indexed like `events` (merge_asof backward on a running worst)."""
    tk = periods.up_to(tickets, as_of, "opened_at").sort_values("opened_at")
    rank = ticket_outcome(tk).map({"well": 0, "poorly": 1, "unresolved": 2})
    tk = tk.assign(worst=rank.groupby(tk["customer_id"]).cummax())[
        ["customer_id", "opened_at", "worst"]
    ]
    ev = events[["customer_id"]].assign(_at=pd.to_datetime(events[at]), _row=np.arange(len(events)))
    m = pd.merge_asof(
        ev.sort_values("_at"), tk, left_on="_at", right_on="opened_at", by="customer_id",
        direction="backward", allow_exact_matches=False,
    ).sort_values("_row")  # fmt: skip
    out = pd.DataFrame(
        {
            "poorly": (m["worst"] == 1).to_numpy(float),
            "unresolved": (m["worst"] == 2).to_numpy(float),
        },
        index=events.index,
    )
    return out


def orders_with_tickets(orders: pd.DataFrame, tickets: pd.DataFrame) -> pd.DataFrame:
    """The order table with each order's history and ticket: ``k`` (0 for the customer's first
    order), ``prior_tickets`` (tickets on the customer's earlier orders), ``days_since_previous``
    (NaN for a first order), ``outcome`` (none / well / poorly / unresolved, by
    :func:`ticket_outcome`; the first ticket when an order has several) and ``resolution``."""
    o = orders.sort_values(["customer_id", "order_date"], kind="stable").copy()
    tk = tickets.sort_values("opened_at").drop_duplicates("order_id")
    tk = tk.assign(outcome=ticket_outcome(tk))[["order_id", "outcome", "resolution"]]
    o = o.merge(tk, on="order_id", how="left")
    o["outcome"] = o["outcome"].fillna("none")
    g = o.groupby("customer_id", sort=False)
    o["k"] = g.cumcount()
    has = (o["outcome"] != "none").astype(int)
    o["prior_tickets"] = has.groupby(o["customer_id"]).cumsum() - has
    o["days_since_previous"] = g["order_date"].diff() / pd.Timedelta(days=1)
    return o


def next_order_after(
    events: pd.DataFrame,
    orders: pd.DataFrame,
    at: str,
    window_days: int,
    as_of: str | pd.Timestamp,
) -> pd.DataFrame:
    """For each event (a survey answer, a ticket's order ...) with a ``customer_id`` and a time
    column `at`: the customer's next order strictly after it, up to as-of
    (:func:`helpers.stats.orders_after` on the orders up to as-of). Adds ``next_order_at``,
    ``days_to_next`` (to the next order, or to the end of the as-of day when none: censored),
    ``ordered`` (a next order exists by as-of), ``bought_within`` (a next order within
    `window_days`: at < order_date <= at + window_days) and ``window_complete`` (the whole
    window lies on or before as-of: only those rows can say "did not buy again"; the censoring
    rule of :mod:`helpers.periods`). Rows keep the events' order and index."""
    end = periods.as_of_end(as_of)
    o = periods.up_to(orders, as_of, "order_date")
    after = orders_after(events, o, window_days, at=at)
    t = pd.to_datetime(events[at])
    out = events.copy()
    out["next_order_at"] = after["next_order_at"].to_numpy()
    out["days_to_next"] = (out["next_order_at"].fillna(end) - t) / periods.ONE_DAY
    out["ordered"] = out["next_order_at"].notna()
    out["bought_within"] = after["converted"].to_numpy()
    out["window_complete"] = (t + pd.Timedelta(days=window_days)) < end
    return out


# --------------------------------------------------------------------------------------------
# Comparing groups: experiments and matched comparisons
# --------------------------------------------------------------------------------------------
def proportion_ratio(
    y_a: np.ndarray | pd.Series, y_b: np.ndarray | pd.Series, confidence: float = 0.95
) -> dict[str, float]:
    """Ratio of two proportions p_a / p_b with the log (Katz) interval:
    log ratio +/- z sqrt((1 - p_a)/(n_a p_a) + (1 - p_b)/(n_b p_b)) (D. Katz, J. Baptista,
    S. P. Azen & M. C. Pike (1978), *Biometrics* 34(3), 469-474)."""
    ya, yb = np.asarray(y_a, dtype=float), np.asarray(y_b, dtype=float)
    pa, pb = ya.mean(), yb.mean()
    if pa <= 0 or pb <= 0:
        raise ValueError("both proportions must be positive for a ratio")
    se = np.sqrt((1 - pa) / (ya.size * pa) + (1 - pb) / (yb.size * pb))
    z = _z(confidence)
    r = pa / pb
    return {
        "estimate": float(r), "ci_low": float(r * np.exp(-z * se)), "ci_high": float(r * np.exp(z * se)),
        "p_a": float(pa), "p_b": float(pb), "n_a": int(ya.size), "n_b": int(yb.size),
    }  # fmt: skip


def coarsened_exact_att(
    df: pd.DataFrame,
    treated: str,
    outcome: str,
    strata: Sequence[str],
    confidence: float = 0.95,
) -> dict[str, float]:
    """Effect on the treated by coarsened exact matching (S. M. Iacus, G. King & G. Porro (2012),
    *Political Analysis* 20(1), 1-24): rows are grouped by the (already coarsened) `strata`
    columns; strata without both treated and control rows are dropped; each treated unit is
    compared with the control mean of its stratum:

        ATT = mean_treated(y) - sum_s (n_t,s / n_t) mean_control,s(y),
        Var = Var_t(y) / n_t + sum_s (n_t,s / n_t)^2 Var_c,s(y) / n_c,s,

    and the ratio of the two means with a delta-method interval on the log scale. Returns the
    estimate, se, interval, the treated and matched control means, the ratio and the counts.
    """
    d = df[[*strata, treated, outcome]].dropna()
    t = d[treated].astype(bool)
    y = d[outcome].astype(float)
    key = d.groupby(list(strata), observed=True, sort=False).ngroup()
    g = pd.DataFrame({"key": key.to_numpy(), "t": t.to_numpy(), "y": y.to_numpy()})
    by = g.groupby(["key", "t"])["y"].agg(["size", "mean", "var"]).unstack("t")
    by = by.dropna(subset=[("size", True), ("size", False)])
    if by.empty:
        raise ValueError("no stratum has both treated and control rows")
    n_t, n_c = by[("size", True)], by[("size", False)]
    w = n_t / n_t.sum()
    keep = g["key"].isin(by.index)
    yt = g.loc[keep & g["t"], "y"]
    mean_c = float((w * by[("mean", False)]).sum())
    var_c = by[("var", False)].fillna(0.0)
    se = float(np.sqrt(yt.var(ddof=1) / yt.size + ((w**2) * var_c / n_c).sum()))
    est = float(yt.mean() - mean_c)
    z = _z(confidence)
    # the ratio mean_t / mean_c by the delta method on the log scale
    var_lt = yt.var(ddof=1) / yt.size / yt.mean() ** 2 if yt.mean() > 0 else np.nan
    var_lc = ((w**2) * var_c / n_c).sum() / mean_c**2 if mean_c > 0 else np.nan
    ratio = float(yt.mean() / mean_c) if mean_c > 0 else np.nan
    se_lr = float(np.sqrt(var_lt + var_lc))
    return {
        "estimate": est, "se": se, "ci_low": est - z * se, "ci_high": est + z * se,
        "mean_treated": float(yt.mean()), "mean_control_matched": mean_c,
        "ratio": ratio, "ratio_low": ratio * float(np.exp(-z * se_lr)),
        "ratio_high": ratio * float(np.exp(z * se_lr)),
        "n_treated": int(yt.size), "n_control": int(n_c.sum()),
        "treated_dropped": int((g["t"] & ~keep).sum()), "strata": int(len(by)),
    }  # fmt: skip


# --------------------------------------------------------------------------------------------
# The notebook's analyses as single functions (also used by the tests)
# --------------------------------------------------------------------------------------------
DELIVERY_TOPICS: tuple[str, ...] = ("delivery_delay", "damaged_package")
RECOVERY_STRATA: tuple[str, ...] = ("k_band", "tickets_band", "gap_band", "half")


def followup_effect(
    responses: pd.DataFrame,
    orders: pd.DataFrame,
    window_days: int,
    as_of: str | pd.Timestamp,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Effect of the randomized detractor follow-up (``followup_group`` treatment vs control)
    on buying again within `window_days` of the answer, on answers whose window has ended by
    as-of: :func:`helpers.stats.proportion_difference` of the two arms (Newcombe's interval)."""
    det = responses[responses["followup_group"].isin(["treatment", "control"])]
    det = next_order_after(det, orders, "surveyed_at", window_days, as_of)
    det = det[det["window_complete"]]
    arm = det["followup_group"]
    return proportion_difference(
        det.loc[arm == "treatment", "bought_within"],
        det.loc[arm == "control", "bought_within"],
        method="newcombe",
        confidence=confidence,
    )


def delivery_ticket_series(
    tickets: pd.DataFrame,
    orders: pd.DataFrame,
    as_of: str | pd.Timestamp,
    lag_days: int = 14,
    topics: Sequence[str] = DELIVERY_TOPICS,
    exclude: bool = False,
) -> tuple[pd.Series, pd.Series]:
    """Monthly delivery tickets (`topics`) by the month of the order they are about, and the
    month's orders (the exposure), for the months that ended at least `lag_days` before the end
    of the as-of day (later orders may not have had their ticket yet). ``exclude=True``: the
    tickets of every other topic instead (a control series)."""
    o = periods.up_to(orders, as_of, "order_date")
    month = o["order_date"].dt.to_period("M")
    exposure = o.groupby(month).size().rename("orders")
    tk = periods.up_to(tickets, as_of, "opened_at")
    tk = tk[tk["topic"].isin(topics) != exclude].merge(o[["order_id", "order_date"]], on="order_id")
    counts = tk.groupby(tk["order_date"].dt.to_period("M")).size()
    counts = counts.reindex(exposure.index, fill_value=0).rename("tickets")
    last = (periods.as_of_end(as_of) - pd.Timedelta(days=lag_days)).to_period("M") - 1
    keep = exposure.index <= last
    return counts[keep], exposure[keep]


def repurchase_table(
    orders: pd.DataFrame,
    tickets: pd.DataFrame,
    window_days: int,
    as_of: str | pd.Timestamp,
    exclude_next: Iterable[int] = (),
) -> pd.DataFrame:
    """One row per order whose `window_days` window has ended by as-of, with its ticket
    (:func:`orders_with_tickets`), ``bought_within`` (a next order within the window, not
    counting the orders in `exclude_next` nor campaign-coupon orders: an offer must not stand in
    for loyalty) and coarsened pre-order behaviour for matching: ``k_band`` (order number),
    ``tickets_band`` (0, 1, 2+ earlier tickets), ``gap_band`` (days since the previous order)
    and ``half`` (half-year of the order)."""
    o = periods.up_to(orders, as_of, "order_date")
    hist = orders_with_tickets(o, periods.up_to(tickets, as_of, "opened_at"))
    own = o[~o["order_id"].isin(set(exclude_next))]
    if "campaign_id" in own:
        own = own[own["campaign_id"].isna()]
    hist = next_order_after(hist, own, "order_date", window_days, as_of)
    hist = hist[hist["window_complete"]].copy()
    hist["k_band"] = pd.cut(
        hist["k"], [-1, 0, 1, 2, 4, np.inf], labels=["1st", "2nd", "3rd", "4-5th", "6th+"]
    )
    hist["tickets_band"] = hist["prior_tickets"].clip(upper=2)
    hist["gap_band"] = pd.cut(hist["days_since_previous"].fillna(-1), [-2, 0, 30, 90, 365, np.inf])
    d = hist["order_date"].dt
    hist["half"] = d.year.astype(str) + "H" + ((d.quarter + 1) // 2).astype(str)
    return hist


def recovery_effects(
    hist: pd.DataFrame, strata: Sequence[str] = RECOVERY_STRATA, confidence: float = 0.95
) -> pd.DataFrame:
    """Buying again after an order whose ticket was handled well, poorly or left unresolved,
    against matched orders without a ticket (:func:`coarsened_exact_att` on `strata`), one row
    per outcome."""
    rows = {}
    for outcome in ["well", "poorly", "unresolved"]:
        d = hist[hist["outcome"].isin([outcome, "none"])]
        d = d.assign(treated=d["outcome"] == outcome)
        rows[outcome] = coarsened_exact_att(d, "treated", "bought_within", list(strata), confidence)
    return pd.DataFrame(rows).T.astype(float)


def remedy_ratios(
    hist: pd.DataFrame, reference: str = "refund", confidence: float = 0.95
) -> pd.DataFrame:
    """Among resolved tickets (handled well or poorly), the share who buy again after each
    remedy divided by the share after the `reference` remedy (:func:`proportion_ratio`); causal
    when the remedy was assigned at random."""
    res = hist[hist["outcome"].isin(["well", "poorly"])]
    ref = res.loc[res["resolution"] == reference, "bought_within"]
    others = sorted(set(res["resolution"].dropna()) - {reference})
    rows = {
        r: proportion_ratio(res.loc[res["resolution"] == r, "bought_within"], ref, confidence)
        for r in others
    }
    return pd.DataFrame(rows).T.astype(float)
