"""Subscriptions: shifted-beta-geometric churn per plan (Fader & Hardie 2007) with planted hazard
multipliers.

Each subscriber has a monthly churn probability theta ~ Beta(alpha_plan, beta_plan). With planted
effects, the probability of churning at the end of subscription month k is
``1 - (1 - theta) ** HR_k``: a proportional change of the continuous-time hazard -log(1 - theta),
with HR_k the product of `sub_hr_bad_ticket` (a ticket opened in the 60 days before the month
starts whose first response took 24 h or more, or that is not resolved) and `sub_hr_visits_drop` (no site visit in the calendar month before the
month starts, after at least one in the month before that). Both covariates switch on and off
independently of theta, so a Cox or discrete-time (cloglog) model with time-varying covariates
recovers HR. The acquisition channel acts on theta's distribution instead (customers module):
Beta(alpha, beta x sub_beta_multiplier_channel). Without planted effects HR = 1: plain sBG.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.synth.config import SynthConfig

MAX_MONTHS = 40


def _add_months(start: pd.Series, k: int) -> pd.Series:
    mon = start.dt.year * 12 + start.dt.month - 1 + k
    return pd.to_datetime(
        pd.DataFrame({"year": mon // 12, "month": mon % 12 + 1, "day": start.dt.day})
    )


def subscriptions(
    cfg: SynthConfig,
    rng: np.random.Generator,
    cust: pd.DataFrame,
    lat: pd.DataFrame,
    tickets: pd.DataFrame,
    engagement: pd.DataFrame,
) -> tuple[pd.DataFrame, np.ndarray]:
    """The subscriptions table and theta per customer (NaN for non-subscribers or subscriptions
    that would start after the data end)."""
    last = pd.Timestamp(cfg.end)
    subs = lat["subscriber"].to_numpy()
    start = cust["signup_date"].dt.normalize() + pd.to_timedelta(lat["sub_delay_days"], unit="D")
    start = start - pd.to_timedelta(np.maximum(start.dt.day - 28, 0), unit="D")  # billing day 1..28
    sel = subs & (start <= last).to_numpy()
    rows = np.flatnonzero(sel)
    s = pd.DataFrame(
        {
            "customer_id": cust["customer_id"].to_numpy()[rows],
            "start": start.to_numpy()[rows],
            "theta": lat["theta"].to_numpy()[rows],
            "channel": cust["acquisition_channel"].to_numpy()[rows],
            "plan_idx": lat["plan_idx"].to_numpy()[rows],
        }
    )
    m = len(s)
    eff = cfg.planted_effects
    bad = tickets["resolved_at"].isna() | (
        tickets["first_response_at"] - tickets["opened_at"] >= pd.Timedelta(hours=24)
    )
    unres = tickets.loc[bad, ["customer_id", "opened_at"]].sort_values("opened_at")
    visits = engagement.set_index(["customer_id", "month"])["site_visits"]
    end_date = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    alive = np.ones(m, dtype=bool)
    u = rng.random((MAX_MONTHS, m))
    for k in range(1, MAX_MONTHS + 1):
        month_start = _add_months(s["start"], k - 1)
        month_end = _add_months(s["start"], k)
        hr = np.ones(m)
        if eff:
            q = pd.DataFrame(
                {"customer_id": s["customer_id"], "at": month_start, "i": np.arange(m)}
            )
            q = pd.merge_asof(q.sort_values("at"), unres, left_on="at", right_on="opened_at",
                              by="customer_id", direction="backward", allow_exact_matches=False).sort_values("i")  # fmt: skip
            recent = ((q["at"] - q["opened_at"]) <= pd.Timedelta(days=60)).to_numpy()
            prev = (month_start.dt.to_period("M") - 1).dt.to_timestamp()
            prev2 = (month_start.dt.to_period("M") - 2).dt.to_timestamp()
            v1 = visits.reindex(pd.MultiIndex.from_arrays([s["customer_id"], prev])).to_numpy()
            v2 = visits.reindex(pd.MultiIndex.from_arrays([s["customer_id"], prev2])).to_numpy()
            drop = (v1 == 0) & (v2 > 0)  # months before sign-up (NaN) never count
            hr = hr * np.where(recent, cfg.sub_hr_bad_ticket, 1.0)
            hr = hr * np.where(drop, cfg.sub_hr_visits_drop, 1.0)
        churn_p = 1 - (1 - s["theta"].to_numpy()) ** hr
        observed = (month_end <= last).to_numpy()
        churn = alive & observed & (u[k - 1] < churn_p)
        end_date[churn] = month_end[churn]
        alive &= ~churn & observed
        if not alive.any():
            break
    df = pd.DataFrame(
        {
            "subscription_id": np.arange(1, m + 1),
            "customer_id": s["customer_id"],
            "plan": np.array([pl.name for pl in cfg.plans])[s["plan_idx"]],
            "start_date": s["start"],
            "end_date": end_date,
            "monthly_price": np.array([pl.monthly_price for pl in cfg.plans])[s["plan_idx"]],
        }
    )
    theta_full = np.full(len(cust), np.nan)
    theta_full[rows] = s["theta"].to_numpy()
    return df, theta_full
