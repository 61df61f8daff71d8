"""Customers and their latent traits (BG/NBD, Gamma-Gamma, sBG, planted segments)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.synth._common import WEEK, choice
from helpers.synth.config import SynthConfig


def customers(cfg: SynthConfig, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The customers table and a frame of latent traits (same row order).

    Sign-ups follow a linear ramp in density (inverse-CDF sampling of f(x) ~ 1 + (g - 1) x);
    lambda ~ Gamma(r, alpha), p ~ Beta(a, b) (Fader, Hardie & Lee 2005), nu ~ Gamma(q, gamma)
    (Gamma-Gamma spend), theta ~ Beta(alpha_plan, beta_plan) for subscribers (Fader & Hardie 2007).
    """
    n = cfg.n_customers
    start, end = pd.Timestamp(cfg.start), pd.Timestamp(cfg.end)
    days = (end - start).days + 1
    g = cfg.signup_growth
    u = rng.random(n)
    x = u if g == 1 else (np.sqrt(1 + (g * g - 1) * u) - 1) / (g - 1)
    signup_at = start + pd.to_timedelta(np.floor(x * days * 86400), unit="s")
    # keep a month of history for the latest sign-ups: nobody signs up in the last 7 days
    last = end - pd.Timedelta(days=7)
    signup_at = signup_at.where(
        signup_at <= last, last - pd.to_timedelta(rng.integers(0, 86400 * 30, n), unit="s")
    )
    age_years = np.clip(rng.normal(39, 11, n), 18, 80)
    birth = signup_at.normalize() - pd.to_timedelta(np.round(age_years * 365.25), unit="D")
    channel = choice(rng, cfg.channels, n)
    prone_p = np.where(
        channel == "deal_site", cfg.discount_prone_share_deal_site, cfg.discount_prone_share_other
    )
    email = rng.random(n) < cfg.email_opt_in_rate
    df = pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1),
            "signup_date": signup_at,
            "birth_date": birth,
            "country": choice(rng, cfg.countries, n),
            "acquisition_channel": channel,
            "email_opt_in": email,
            "sms_opt_in": rng.random(n) < cfg.sms_opt_in_rate,
        }
    )
    eff = cfg.planted_effects
    p = rng.beta(cfg.bgnbd_a, cfg.bgnbd_b, n)
    lat = pd.DataFrame(
        {
            "lam": np.clip(rng.gamma(cfg.bgnbd_r, 1 / cfg.bgnbd_alpha, n), 1e-6, None),
            "p": p,
            "p_eff": np.where(
                eff & (channel == "referral"), p * cfg.referral_dropout_multiplier, p
            ),
            "nu": rng.gamma(cfg.gg_q, 1 / cfg.gg_gamma, n),
            "discount_prone": rng.random(n) < prone_p,
            "high_maintenance": rng.random(n) < cfg.high_maintenance_share,
            "order_channel": choice(rng, cfg.order_channels, n),
            "T": ((end + pd.Timedelta(days=1) - signup_at) / WEEK).to_numpy(),
            "sleeping_dog": eff & (rng.random(n) < cfg.sleeping_dog_share),
            "redeem_propensity": rng.beta(cfg.redeem_propensity_a, cfg.redeem_propensity_b, n),
            "visits_level": rng.gamma(cfg.visits_shape, cfg.visits_mean / cfg.visits_shape, n),
            "open_rate": rng.beta(cfg.open_rate_a, cfg.open_rate_b, n),
        }
    )
    # subscribers, their plan, sBG churn probability theta and start date
    subs = rng.random(n) < cfg.subscription_share
    plan_idx = rng.choice(len(cfg.plans), size=n, p=[pl.share for pl in cfg.plans])
    a = np.array([pl.alpha for pl in cfg.plans])[plan_idx]
    b = np.array([pl.beta for pl in cfg.plans])[plan_idx]
    if eff:
        mult = pd.Series(channel).map(dict(cfg.sub_beta_multiplier_channel)).fillna(1.0).to_numpy()
        b = b * mult
    theta = rng.beta(a, b)
    lat["subscriber"] = subs
    lat["plan_idx"] = plan_idx
    lat["theta"] = np.where(subs, theta, np.nan)
    lat["sub_delay_days"] = rng.integers(0, 15, n)
    # newsletter cadence, randomized among e-mail-opted-in customers
    cad = np.array(cfg.newsletter_cadences)[rng.integers(0, len(cfg.newsletter_cadences), n)]
    df["newsletters_per_month"] = np.where(email, cad, 0)
    lat["country_launch"] = pd.to_datetime(
        np.where(
            df["country"].isin(cfg.loyalty_pilot_countries),
            pd.Timestamp(cfg.loyalty_pilot_launch),
            pd.Timestamp(cfg.loyalty_launch),
        )
    )
    return df, lat
