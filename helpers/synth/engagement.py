"""Engagement before churn: monthly site visits, newsletters, opens and clicks, and e-mail
opt-outs that rise with the (randomized) newsletter cadence.

Visits ~ Poisson(v * f), v ~ Gamma(shape, mean) per customer; f falls in the three months before
the customer's latent dropout month (`engagement_decline`) and stays at `engagement_after_dropout`
from it on (subscribers: f = 1 throughout). Opens ~ Binomial(newsletters, o * f), o ~ Beta(a, b); clicks ~ Binomial(opens, c).
Opt-out per month: P = 1 - exp(-(base + per_email * newsletters)), a constant monthly hazard for
a given cadence, so the month of opting out is geometric.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.synth._common import month_start
from helpers.synth.config import SynthConfig

ENGAGEMENT_COLUMNS = (
    "customer_id", "month", "site_visits", "emails_sent", "email_opens", "email_clicks",
    "email_opt_out",
)  # fmt: skip


def opt_outs(cfg: SynthConfig, rng: np.random.Generator, cust: pd.DataFrame) -> pd.Series:
    """Opt-out date per customer (NaT if none by the end): geometric month from the sign-up month."""
    n = len(cust)
    cad = cust["newsletters_per_month"].to_numpy()
    per = cfg.email_optout_per_email if cfg.planted_effects else 0.0
    prob = 1 - np.exp(-(cfg.email_optout_base + per * cad))
    k = rng.geometric(np.clip(prob, 1e-9, 1)) - 1  # months after the sign-up month
    day = rng.random(n)
    first = month_start(cust["signup_date"])
    m0 = first.dt.year * 12 + first.dt.month - 1 + np.minimum(k, 1200)
    month = pd.to_datetime(pd.DataFrame({"year": m0 // 12, "month": m0 % 12 + 1, "day": 1}))
    days_in = month.dt.days_in_month
    when = month + pd.to_timedelta(np.floor(day * days_in), unit="D")
    when = when.where(
        when > cust["signup_date"].dt.normalize(),
        cust["signup_date"].dt.normalize() + pd.Timedelta(days=1),
    )
    ok = cust["email_opt_in"].to_numpy() & (when <= pd.Timestamp(cfg.end)).to_numpy()
    return pd.Series(when.where(ok).to_numpy(), index=cust.index, name="email_opt_out_at")


def monthly(
    cfg: SynthConfig,
    rng: np.random.Generator,
    cust: pd.DataFrame,
    lat: pd.DataFrame,
    dropout_at: pd.Series,
) -> pd.DataFrame:
    """One row per customer and month from the sign-up month to the last month of data."""
    first = month_start(cust["signup_date"])
    last = pd.Timestamp(cfg.end).to_period("M").to_timestamp()
    m_first = (first.dt.year * 12 + first.dt.month - 1).to_numpy()
    m_last = last.year * 12 + last.month - 1
    counts = m_last - m_first + 1
    row = np.repeat(np.arange(len(cust)), counts)
    offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    mi = m_first[row] + offs
    month = pd.to_datetime(pd.DataFrame({"year": mi // 12, "month": mi % 12 + 1, "day": 1}))
    d = pd.Series(dropout_at.to_numpy(), index=cust.index)
    dm = (d.dt.year * 12 + d.dt.month - 1).to_numpy()[row]  # NaN if alive
    rel = mi - dm  # months relative to the dropout month
    f = np.ones(row.size)
    dec = cfg.engagement_decline
    for j, mult in zip((-3, -2, -1), dec, strict=True):
        f = np.where(rel == j, mult, f)
    f = np.where(rel >= 0, cfg.engagement_after_dropout, f)
    # subscribers keep visiting (their beans come every month): no decline with the one-off dropout
    f = np.where(lat["subscriber"].to_numpy()[row], 1.0, f)
    visits = rng.poisson(lat["visits_level"].to_numpy()[row] * f)
    cad = cust["newsletters_per_month"].to_numpy()[row]
    oo = cust["email_opt_out_at"]
    om = (oo.dt.year * 12 + oo.dt.month - 1).to_numpy()[row]
    sent = np.where(np.isnan(om) | (mi <= om), cad, 0)
    opens = rng.binomial(sent, np.clip(lat["open_rate"].to_numpy()[row] * f, 0, 1))
    clicks = rng.binomial(opens, cfg.click_rate)
    return pd.DataFrame(
        {
            "customer_id": cust["customer_id"].to_numpy()[row],
            "month": month,
            "site_visits": visits,
            "emails_sent": sent,
            "email_opens": opens,
            "email_clicks": clicks,
            "email_opt_out": mi == om,
        }
    )
