"""Small shared pieces of the generator: named random streams, categorical draws, time units."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

WEEK = pd.Timedelta(days=7)

#: One independent random stream per mechanism, so changing one mechanism does not reshuffle the
#: others: ``np.random.default_rng([seed, key])`` (a SeedSequence with entropy (seed, key)).
STREAMS: dict[str, int] = {
    "customers": 1,
    "orders": 2,
    "campaigns": 3,
    "service": 4,
    "feedback": 5,
    "loyalty": 6,
    "subscriptions": 7,
    "engagement": 8,
    "acquisition": 9,
    "coupons": 10,
}


def stream(seed: int, name: str) -> np.random.Generator:
    """The random stream of mechanism `name` for `seed` (see STREAMS)."""
    return np.random.default_rng([seed, STREAMS[name]])


def pairs(x: tuple) -> dict:
    """A tuple of (name, value) pairs as a dict."""
    return {k: v for k, v in x}


def choice(rng: np.random.Generator, options: tuple[tuple[str, float], ...], n: int) -> np.ndarray:
    """n draws from named options with (unnormalized) probabilities."""
    names = np.array([k for k, _ in options])
    probs = np.array([v for _, v in options], dtype=float)
    return names[rng.choice(len(names), size=n, p=probs / probs.sum())]


def choice_u(u: np.ndarray, options: tuple[tuple[str, float], ...]) -> np.ndarray:
    """Draws from named options by inverse CDF of given uniforms `u` (common random numbers)."""
    names = np.array([k for k, _ in options])
    probs = np.array([v for _, v in options], dtype=float)
    cdf = np.cumsum(probs / probs.sum())
    return names[np.minimum(np.searchsorted(cdf, u, side="right"), len(names) - 1)]


def risk_z(x: np.ndarray) -> np.ndarray:
    """Probit of the rank of x in (0, 1): a standard-normal score of latent churn risk."""
    ranks = stats.rankdata(x, method="ordinal")
    return stats.norm.ppf((ranks - 0.5) / len(x))


def weeks_since(when: pd.Timestamp | str, origin: pd.Series) -> np.ndarray:
    """Weeks from each `origin` timestamp to `when` (negative if `when` is earlier)."""
    return ((pd.Timestamp(when) - origin) / WEEK).to_numpy(dtype=float)


def at_weeks(origin: np.ndarray, weeks: np.ndarray) -> pd.DatetimeIndex:
    """Timestamps `weeks` after `origin`, rounded to the second."""
    return pd.DatetimeIndex(
        origin + pd.to_timedelta(np.asarray(weeks) * 7 * 86400, unit="s").round("s")
    )


def month_start(s: pd.Series) -> pd.Series:
    """The first day of each timestamp's calendar month."""
    return s.dt.to_period("M").dt.to_timestamp()
