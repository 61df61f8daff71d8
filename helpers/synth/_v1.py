"""Deterministic generator of the sample company, *Copperleaf Roasters*.

An online coffee roaster (beans, equipment, a monthly bean subscription) selling in six European
countries, with a loyalty club and a customer-service desk. Every notebook uses its data, and every
model can be checked against the parameters that made it (the *ground truth*).

Generating processes (time unit: weeks for orders, calendar months for subscriptions):

* One-off orders follow the BG/NBD story (Fader, Hardie & Lee 2005): each customer buys at rate
  ``lambda ~ Gamma(r, alpha)`` per week while alive, and after each *repeat* order drops out with
  probability ``p ~ Beta(a, b)``. The first order is placed at sign-up.
* Spend per order follows Gamma-Gamma (Fader, Hardie & Lee 2005; Hardie 2013):
  ``z ~ Gamma(p, nu)``, ``nu ~ Gamma(q, gamma)``, independent of purchase frequency.
* Subscriptions churn as a shifted-beta-geometric process (Fader & Hardie 2007) per plan: each
  subscriber churns each month with probability ``theta ~ Beta(alpha_plan, beta_plan)``.

Planted effects (``planted_effects=True``, the bundled data) perturb the order process on purpose,
so later notebooks can recover them: tickets resolved fast and well lower a customer's dropout
probability, unresolved ones trigger dropout (service recovery); loyalty members join by
self-selection (high ``lambda``) and then buy ``loyalty_rate_uplift`` times as often; randomized
campaigns cause extra orders. With ``planted_effects=False`` orders follow BG/NBD exactly.
NPS scores are a noisy read-out of each customer's latent churn risk (``p`` or ``theta``), so
detractors churn more without changing the sBG or BG/NBD processes.

Run ``python -m helpers.synth`` (or ``make data``) to write the CSV tables and ``ground_truth.json``
to ``datasets/``; the same seed gives byte-identical files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special, stats

from helpers import paths

TABLES = (
    "customers",
    "orders",
    "subscriptions",
    "support_tickets",
    "nps_responses",
    "loyalty_events",
    "campaigns",
)

ORDER_COLUMNS = (
    "order_id", "customer_id", "order_date", "amount", "discount", "items", "channel", "returned",
    "campaign_id",
)  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """A subscription plan and its sBG churn heterogeneity (monthly churn ~ Beta(alpha, beta))."""

    name: str
    monthly_price: float
    share: float
    alpha: float
    beta: float


@dataclass(frozen=True)
class SynthConfig:
    """Every parameter of the generator; ``asdict(config)`` is the documented ground truth."""

    seed: int = 20251231
    n_customers: int = 5000
    start: str = "2023-01-01"  # first sign-up day
    end: str = "2025-12-31"  # last day of data (the default as-of date)
    signup_growth: float = 2.0  # sign-ups per day at the end / at the start (linear ramp)
    planted_effects: bool = True

    countries: tuple[tuple[str, float], ...] = (
        ("DE", 0.32), ("FR", 0.18), ("PL", 0.14), ("NL", 0.12), ("ES", 0.12), ("IT", 0.12),
    )  # fmt: skip
    channels: tuple[tuple[str, float], ...] = (
        ("organic_search", 0.30), ("paid_social", 0.22), ("referral", 0.15),
        ("deal_site", 0.15), ("marketplace", 0.10), ("influencer", 0.08),
    )  # fmt: skip
    order_channels: tuple[tuple[str, float], ...] = (
        ("web", 0.6),
        ("app", 0.3),
        ("marketplace", 0.1),
    )
    email_opt_in_rate: float = 0.72
    sms_opt_in_rate: float = 0.31

    # BG/NBD repeat buying, time unit = weeks: lambda ~ Gamma(shape r, rate alpha), p ~ Beta(a, b)
    bgnbd_r: float = 0.9
    bgnbd_alpha: float = 8.0
    bgnbd_a: float = 0.8
    bgnbd_b: float = 3.2
    # Gamma-Gamma spend per order, EUR: z ~ Gamma(shape p, rate nu), nu ~ Gamma(shape q, rate gamma)
    gg_p: float = 6.0
    gg_q: float = 4.0
    gg_gamma: float = 15.0

    # Margin and discounts: the amount paid is net of discount; gross = amount / (1 - discount rate);
    # cost of goods = (1 - gross_margin_rate) * gross, so margin = amount - cogs.
    gross_margin_rate: float = 0.45
    discount_prone_share_deal_site: float = 0.65  # share of deal-site customers who hunt discounts
    discount_prone_share_other: float = 0.08
    discount_prone_order_share: float = 0.6  # share of their orders with a discount
    discount_prone_rate: tuple[float, float] = (0.15, 0.30)  # discount rate range, uniform
    regular_discount_order_share: float = 0.08
    regular_discount_rate: float = 0.10

    # Subscriptions (contractual): share of customers who subscribe, and the plans
    subscription_share: float = 0.28
    plans: tuple[Plan, ...] = (
        Plan("Explorer", 14.90, 0.50, 0.7, 2.2),
        Plan("Enthusiast", 26.90, 0.35, 1.1, 5.5),
        Plan("Office", 59.00, 0.15, 1.5, 12.0),
    )

    # Service: tickets and returns per order; a few customers cost far more to serve
    ticket_rate: float = 0.05
    return_rate: float = 0.02
    high_maintenance_share: float = 0.03
    high_maintenance_ticket_rate: float = 0.45
    high_maintenance_return_rate: float = 0.20
    resolution_mix: tuple[tuple[str, float], ...] = (
        ("well", 0.60),
        ("poorly", 0.25),
        ("unresolved", 0.15),
    )
    # Service recovery (planted): after the ticket, P(drop out) becomes
    # 1 - (1 - p) * (1 - extra) for 'unresolved' / 'poorly', and p * multiplier for ever after 'well'.
    dropout_extra_unresolved: float = 0.5
    dropout_extra_poorly: float = 0.1
    dropout_multiplier_well: float = 0.6

    # Loyalty club (planted): join at the first repeat order with
    # P(join) = expit(intercept + slope * log(lambda / E[lambda])) (self-selection), then
    # buy at rate lambda * uplift (the causal effect).
    loyalty_join_intercept: float = -0.8
    loyalty_join_slope: float = 1.2
    loyalty_rate_uplift: float = 1.15
    points_per_eur: float = 1.0
    redeem_block: int = 500  # points redeemed together, worth 5 EUR
    tiers: tuple[tuple[str, int], ...] = (("Bronze", 0), ("Silver", 1000), ("Gold", 3000))

    # NPS: surveyed 60 days after sign-up and yearly after; score = round(base - slope * risk_z
    # + noise - ticket penalties), clipped to 0..10; risk_z = probit of the rank of p (or theta).
    nps_response_rate: float = 0.35
    nps_base: float = 7.9
    nps_risk_slope: float = 1.7
    nps_noise_sd: float = 1.3
    nps_penalty_unresolved: float = 3.0
    nps_penalty_poorly: float = 1.2
    nps_comment_share: float = 0.6

    # Campaigns (randomized). Treated customers with no organic order in the 30-day window place
    # an extra (campaign) order with probability `uplift`.
    campaign_window_days: int = 30
    birthday_treatment_share: float = 0.8
    birthday_uplift: float = 0.06
    anniversary_treatment_share: float = 0.8
    anniversary_uplift: float = 0.03
    winback_treatment_share: float = 0.5
    winback_uplift: float = 0.05
    winback_lapsed_days: int = 120
    campaign_discount_rate: float = 0.15

    extra: dict = field(default_factory=dict)  # room for later tables' parameters


WEEK = pd.Timedelta(days=7)


def _choice(rng: np.random.Generator, pairs: tuple[tuple[str, float], ...], n: int) -> np.ndarray:
    names = np.array([k for k, _ in pairs])
    probs = np.array([v for _, v in pairs], dtype=float)
    return names[rng.choice(len(names), size=n, p=probs / probs.sum())]


def _risk_z(x: np.ndarray) -> np.ndarray:
    """Probit of the rank of x in (0, 1): a standard-normal score of latent churn risk."""
    ranks = stats.rankdata(x, method="ordinal")
    return stats.norm.ppf((ranks - 0.5) / len(x))


def _customers(cfg: SynthConfig, rng: np.random.Generator) -> pd.DataFrame:
    n = cfg.n_customers
    start, end = pd.Timestamp(cfg.start), pd.Timestamp(cfg.end)
    days = (end - start).days + 1
    # linear ramp in sign-up density: inverse-CDF sampling of f(x) ~ 1 + (g - 1) x on [0, 1]
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
    channel = _choice(rng, cfg.channels, n)
    prone_p = np.where(
        channel == "deal_site", cfg.discount_prone_share_deal_site, cfg.discount_prone_share_other
    )
    df = pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1),
            "signup_date": signup_at,
            "birth_date": birth,
            "country": _choice(rng, cfg.countries, n),
            "acquisition_channel": channel,
            "email_opt_in": rng.random(n) < cfg.email_opt_in_rate,
            "sms_opt_in": rng.random(n) < cfg.sms_opt_in_rate,
        }
    )
    latent = pd.DataFrame(
        {
            "lam": rng.gamma(cfg.bgnbd_r, 1 / cfg.bgnbd_alpha, n),
            "p": rng.beta(cfg.bgnbd_a, cfg.bgnbd_b, n),
            "nu": rng.gamma(cfg.gg_q, 1 / cfg.gg_gamma, n),
            "discount_prone": rng.random(n) < prone_p,
            "high_maintenance": rng.random(n) < cfg.high_maintenance_share,
            "order_channel": _choice(rng, cfg.order_channels, n),
            "T": (end + pd.Timedelta(days=1) - signup_at) / WEEK,
        }
    )
    # keep the Gamma draws strictly positive (a zero rate would never order again)
    latent["lam"] = latent["lam"].clip(lower=1e-6)
    return df, latent


def _simulate_orders(
    cfg: SynthConfig, rng: np.random.Generator, lat: pd.DataFrame
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Order times (weeks since sign-up) from BG/NBD with the planted effects.

    Loops over purchase *rounds*, vectorized across the customers still alive and observed.
    Returns the orders (customer index, t, ticket outcome), loyalty join time, and the customer mask of
    loyalty members.
    """
    n = len(lat)
    lam, p0, T = lat["lam"].to_numpy(), lat["p"].to_numpy(), lat["T"].to_numpy()
    hm = lat["high_maintenance"].to_numpy()
    ticket_p = np.where(hm, cfg.high_maintenance_ticket_rate, cfg.ticket_rate)
    outcomes = np.array([k for k, _ in cfg.resolution_mix])
    outcome_p = np.array([v for _, v in cfg.resolution_mix])
    eff = cfg.planted_effects

    p = p0.copy()
    member = np.zeros(n, dtype=bool)
    join_t = np.full(n, np.nan)
    mean_lam = cfg.bgnbd_r / cfg.bgnbd_alpha

    t = np.zeros(n)
    idx = np.arange(n)  # alive and observed
    rounds = []
    k = 0
    while idx.size:
        if k > 0:
            rate = lam[idx] * np.where(member[idx], cfg.loyalty_rate_uplift, 1.0)
            t_new = t[idx] + rng.exponential(1.0 / rate)
            seen = t_new <= T[idx]
            idx, t_new = idx[seen], t_new[seen]
            t[idx] = t_new
            if k == 1 and eff:
                logit = cfg.loyalty_join_intercept + cfg.loyalty_join_slope * np.log(
                    lam[idx] / mean_lam
                )
                joins = rng.random(idx.size) < special.expit(logit)
                member[idx[joins]] = True
                join_t[idx[joins]] = t[idx[joins]]
        if not idx.size:
            break
        has_ticket = rng.random(idx.size) < ticket_p[idx]
        outcome = np.where(
            has_ticket, outcomes[rng.choice(len(outcomes), size=idx.size, p=outcome_p)], ""
        )
        rounds.append(pd.DataFrame({"cust": idx, "t": t[idx], "k": k, "ticket": outcome}))
        # dropout after this order: BG/NBD drops out only after repeat orders (k >= 1)
        q = p[idx] if k >= 1 else np.zeros(idx.size)
        if eff:
            well = outcome == "well"
            p[idx[well]] *= cfg.dropout_multiplier_well
            q = np.where(well, q * cfg.dropout_multiplier_well, q)
            extra = np.select([outcome == "unresolved", outcome == "poorly"],
                              [cfg.dropout_extra_unresolved, cfg.dropout_extra_poorly], 0.0)  # fmt: skip
            q = 1 - (1 - q) * (1 - extra)
        idx = idx[rng.random(idx.size) >= q]
        k += 1
    orders = pd.concat(rounds, ignore_index=True)
    return orders, join_t, member


def _money(
    cfg: SynthConfig,
    rng: np.random.Generator,
    lat: pd.DataFrame,
    cust: np.ndarray,
    discounted_by_campaign: np.ndarray | None = None,
) -> pd.DataFrame:
    """Amount paid (Gamma-Gamma), discount, items and return flag for orders of customers `cust`."""
    m = cust.size
    nu = lat["nu"].to_numpy()[cust]
    amount = np.round(np.maximum(rng.gamma(cfg.gg_p, 1.0 / nu), 0.5), 2)
    prone = lat["discount_prone"].to_numpy()[cust]
    lo, hi = cfg.discount_prone_rate
    rate = np.where(
        prone,
        np.where(rng.random(m) < cfg.discount_prone_order_share, rng.uniform(lo, hi, m), 0.0),
        np.where(rng.random(m) < cfg.regular_discount_order_share, cfg.regular_discount_rate, 0.0),
    )
    if discounted_by_campaign is not None:
        rate = np.where(discounted_by_campaign, cfg.campaign_discount_rate, rate)
    discount = np.round(amount / (1 - rate) - amount, 2)
    items = 1 + rng.poisson(np.maximum(amount / 20.0 - 0.6, 0.05))
    hm = lat["high_maintenance"].to_numpy()[cust]
    returned = rng.random(m) < np.where(hm, cfg.high_maintenance_return_rate, cfg.return_rate)
    return pd.DataFrame(
        {"amount": amount, "discount": discount, "items": items, "returned": returned}
    )


def _tickets(
    cfg: SynthConfig, rng: np.random.Generator, orders: pd.DataFrame, subscribers: set
) -> pd.DataFrame:
    tk = orders.loc[
        orders["ticket"] != "", ["order_id", "customer_id", "order_date", "ticket"]
    ].reset_index(drop=True)
    m = len(tk)
    opened = tk["order_date"] + pd.to_timedelta(rng.uniform(1, 10, m) * 86400, unit="s").round("s")
    well, poorly = (tk["ticket"] == "well").to_numpy(), (tk["ticket"] == "poorly").to_numpy()
    # well: first response within 24 h and resolved within 72 h of opening; poorly: response after 24 h
    resp_h = np.where(well, np.minimum(rng.exponential(5, m), 23.5), rng.uniform(24, 120, m))
    first_response = opened + pd.to_timedelta(np.round(resp_h * 3600), unit="s")
    res_h = np.where(
        well, np.minimum(rng.exponential(18, m), 72 - resp_h - 0.5), rng.uniform(48, 400, m)
    )
    resolved = (first_response + pd.to_timedelta(np.round(res_h * 3600), unit="s")).where(
        tk["ticket"] != "unresolved"
    )
    topics = np.array(
        ["delivery_delay", "damaged_package", "grinder_fault", "wrong_item", "billing", "taste"]
    )
    topic = topics[rng.choice(len(topics), size=m, p=[0.3, 0.2, 0.12, 0.13, 0.1, 0.15])]
    is_sub = tk["customer_id"].isin(subscribers).to_numpy()
    topic = np.where(is_sub & (rng.random(m) < 0.25), "subscription_change", topic)
    fixes = np.array(["replacement", "refund", "voucher", "explanation"])
    resolution = np.where(
        tk["ticket"] == "unresolved",
        "unresolved",
        fixes[rng.choice(4, size=m, p=[0.35, 0.3, 0.2, 0.15])],
    )
    sat = np.select(
        [well, poorly],
        [
            rng.choice([4, 5], size=m, p=[0.35, 0.65]),
            rng.choice([1, 2, 3], size=m, p=[0.3, 0.4, 0.3]),
        ],
        rng.choice([1, 2], size=m, p=[0.6, 0.4]),
    ).astype(float)
    sat[rng.random(m) < 0.3] = np.nan  # not everyone answers the satisfaction survey
    out = pd.DataFrame(
        {
            "ticket_id": np.arange(1, m + 1),
            "customer_id": tk["customer_id"],
            "order_id": tk["order_id"],
            "opened_at": opened,
            "first_response_at": first_response,
            "resolved_at": resolved,
            "topic": topic,
            "resolution": resolution,
            "satisfaction": pd.array(sat, dtype="Int64"),
        }
    )
    # the data end at cfg.end: later tickets are not in it yet, later replies not yet given
    last = pd.Timestamp(cfg.end) + pd.Timedelta(days=1)
    out = out[out["opened_at"] < last]
    for col in ["first_response_at", "resolved_at"]:
        out[col] = out[col].where(out[col] < last)
    return (
        out.sort_values(["opened_at", "ticket_id"])
        .assign(ticket_id=lambda d: np.arange(1, len(d) + 1))
        .reset_index(drop=True)
    )


def _subscriptions(
    cfg: SynthConfig, rng: np.random.Generator, cust: pd.DataFrame
) -> tuple[pd.DataFrame, np.ndarray]:
    n = len(cust)
    subs = rng.random(n) < cfg.subscription_share
    ids = cust["customer_id"].to_numpy()[subs]
    m = ids.size
    plan_idx = rng.choice(len(cfg.plans), size=m, p=[pl.share for pl in cfg.plans])
    a = np.array([pl.alpha for pl in cfg.plans])[plan_idx]
    b = np.array([pl.beta for pl in cfg.plans])[plan_idx]
    theta = rng.beta(a, b)
    months = rng.geometric(theta)  # churns at the end of month k = 1, 2, ...
    start = (
        cust.loc[subs, "signup_date"].dt.normalize()
        + pd.to_timedelta(rng.integers(0, 15, m), unit="D")
    ).reset_index(drop=True)
    start = start - pd.to_timedelta(np.maximum(start.dt.day - 28, 0), unit="D")  # billing day 1..28
    # months past the data window are censored anyway; the cap keeps the dates representable
    mon = start.dt.year * 12 + start.dt.month - 1 + np.minimum(months, 240)
    end = pd.to_datetime(
        pd.DataFrame({"year": mon // 12, "month": mon % 12 + 1, "day": start.dt.day})
    )
    last = pd.Timestamp(cfg.end)
    df = pd.DataFrame(
        {
            "subscription_id": np.arange(1, m + 1),
            "customer_id": ids,
            "plan": np.array([pl.name for pl in cfg.plans])[plan_idx],
            "start_date": start,
            "end_date": end.where(end <= last),
            "monthly_price": np.array([pl.monthly_price for pl in cfg.plans])[plan_idx],
        }
    )
    # a sign-up in the last days whose subscription would start after the data window has none
    started = (start <= last).to_numpy()
    df = (
        df[started]
        .assign(subscription_id=lambda d: np.arange(1, len(d) + 1))
        .reset_index(drop=True)
    )
    theta_full = np.full(n, np.nan)
    theta_full[np.flatnonzero(subs)[started]] = theta[started]
    return df, theta_full


def _nps(
    cfg: SynthConfig,
    rng: np.random.Generator,
    cust: pd.DataFrame,
    lat: pd.DataFrame,
    theta: np.ndarray,
    tickets: pd.DataFrame,
) -> pd.DataFrame:
    end = pd.Timestamp(cfg.end)
    # latent churn risk: theta's rank for subscribers (their churn is observable), p's otherwise
    risk = np.where(np.isnan(theta), _risk_z(lat["p"].to_numpy()), 0.0)
    has_theta = ~np.isnan(theta)
    risk[has_theta] = _risk_z(theta[has_theta])
    n_years = 4
    rows = pd.DataFrame(
        {
            "customer_id": np.repeat(cust["customer_id"].to_numpy(), n_years),
            "surveyed_at": (np.repeat(cust["signup_date"].dt.normalize().to_numpy(), n_years)
                            + pd.to_timedelta(np.tile(60 + 365 * np.arange(n_years), len(cust)), unit="D")),
            "risk": np.repeat(risk, n_years),
        }
    )  # fmt: skip
    rows = rows[(rows["surveyed_at"] <= end)]
    rows = rows[rng.random(len(rows)) < cfg.nps_response_rate].reset_index(drop=True)
    rows["surveyed_at"] += pd.to_timedelta(rng.integers(9 * 3600, 21 * 3600, len(rows)), unit="s")
    # tickets before the survey: worst outcome so far
    tk = tickets.assign(
        bad=np.select(
            [
                tickets["resolved_at"].isna(),
                (tickets["first_response_at"] - tickets["opened_at"]) >= pd.Timedelta(hours=24),
            ],
            [2, 1],
            0,
        )
    )[["customer_id", "opened_at", "bad", "topic"]].sort_values("opened_at")
    tk["worst"] = tk.groupby("customer_id")["bad"].cummax()
    rows = pd.merge_asof(
        rows.sort_values("surveyed_at"), tk[["customer_id", "opened_at", "worst", "topic"]],
        left_on="surveyed_at", right_on="opened_at", by="customer_id", direction="backward",
    ).sort_values(["surveyed_at", "customer_id"]).reset_index(drop=True)  # fmt: skip
    worst = rows["worst"].fillna(-1).to_numpy()
    m = len(rows)
    penalty = np.select(
        [worst == 2, worst == 1],
        [
            cfg.nps_penalty_unresolved if cfg.planted_effects else 0,
            cfg.nps_penalty_poorly if cfg.planted_effects else 0,
        ],
        0.0,
    )
    raw = (
        cfg.nps_base
        - cfg.nps_risk_slope * rows["risk"].to_numpy()
        + rng.normal(0, cfg.nps_noise_sd, m)
        - penalty
    )
    score = np.clip(np.round(raw), 0, 10).astype(int)
    category = np.select([score >= 9, score >= 7], ["promoter", "passive"], "detractor")
    themes = {
        "detractor": ["delivery", "price", "taste", "customer service", "subscription flexibility"],
        "passive": ["price", "delivery", "taste", "website"],
        "promoter": ["taste", "freshness", "customer service", "sustainability"],
    }
    theme = np.empty(m, dtype=object)
    for cat, options in themes.items():
        sel = category == cat
        theme[sel] = np.array(options)[rng.integers(0, len(options), sel.sum())]
    # a detractor with a bad ticket talks about the service or the delivery
    ticket_theme = np.where(
        rows["topic"].isin(["delivery_delay", "damaged_package", "wrong_item"]),
        "delivery",
        "customer service",
    )
    theme = np.where((category == "detractor") & (worst >= 1), ticket_theme, theme)
    templates = {
        ("delivery", "neg"): [
            "Parcel arrived late again.",
            "Delivery took far too long and the box was damaged.",
            "Courier lost my order, had to chase it.",
        ],
        ("delivery", "mid"): [
            "Delivery is ok but could be faster.",
            "Shipping takes a few days too many.",
        ],
        ("price", "neg"): [
            "Too expensive for what you get.",
            "Prices went up, I can find cheaper beans elsewhere.",
        ],
        ("price", "mid"): ["Good coffee but a bit pricey.", "Would order more with better prices."],
        ("taste", "neg"): ["The last roast tasted burnt.", "Beans were stale and flat."],
        ("taste", "mid"): [
            "Nice coffee, not always consistent.",
            "Some roasts are great, some are average.",
        ],
        ("taste", "pos"): [
            "Best espresso beans I have tried.",
            "Lovely flavour, the Ethiopian roast is superb.",
        ],
        ("customer service", "neg"): [
            "Nobody answered my complaint.",
            "Support was slow and unhelpful.",
        ],
        ("customer service", "pos"): [
            "Support fixed my problem within hours, great service.",
            "Friendly and quick customer service.",
        ],
        ("subscription flexibility", "neg"): [
            "Hard to pause or skip my subscription.",
            "Cancelling the subscription was a hassle.",
        ],
        ("website", "mid"): ["The website checkout is clunky.", "App could be easier to use."],
        ("freshness", "pos"): [
            "Always freshly roasted, you can taste it.",
            "Beans arrive days after roasting, very fresh.",
        ],
        ("sustainability", "pos"): [
            "Love the compostable packaging and fair sourcing.",
            "Great to see direct trade with farmers.",
        ],
    }
    sentiment = np.select([category == "detractor", category == "passive"], ["neg", "mid"], "pos")
    comment = np.full(m, "", dtype=object)
    pick = rng.random(m)
    for (th, se), texts in templates.items():
        sel = (theme == th) & (sentiment == se)
        comment[sel] = np.array(texts)[
            np.minimum((pick[sel] * len(texts)).astype(int), len(texts) - 1)
        ]
    fallback = {
        "neg": "Not happy with my last order.",
        "mid": "It is fine.",
        "pos": "Great coffee, thank you!",
    }
    for se, text in fallback.items():
        comment[(comment == "") & (sentiment == se)] = text
    silent = rng.random(m) >= cfg.nps_comment_share
    comment[silent] = ""
    theme = np.where(silent, "", theme)
    return pd.DataFrame(
        {
            "response_id": np.arange(1, m + 1),
            "customer_id": rows["customer_id"],
            "surveyed_at": rows["surveyed_at"],
            "score": score,
            "comment": comment,
            "theme": theme,
        }
    )


def _loyalty(cfg: SynthConfig, orders: pd.DataFrame, members: pd.Series) -> pd.DataFrame:
    """Join, earn, redeem and tier-change events, from each member's orders since joining."""
    o = orders.merge(members.rename("join_at"), left_on="customer_id", right_index=True)
    o = o[o["order_date"] >= o["join_at"]].sort_values(["customer_id", "order_date", "order_id"])
    earn = o[["customer_id", "order_date"]].assign(
        event_type="earn", points=np.floor(o["amount"] * cfg.points_per_eur).astype(int)
    )
    cum = earn.groupby("customer_id")["points"].cumsum()
    prev = cum - earn["points"]
    # redemptions: each time lifetime points pass a multiple of the block, one block is redeemed
    n_redeem = (cum // cfg.redeem_block - prev // cfg.redeem_block).to_numpy()
    red = earn.loc[earn.index.repeat(n_redeem), ["customer_id", "order_date"]].assign(
        event_type="redeem", points=-cfg.redeem_block
    )
    red["order_date"] += pd.Timedelta(seconds=1)
    tier_names = np.array([t for t, _ in cfg.tiers])
    thresholds = np.array([v for _, v in cfg.tiers])
    tier_now = np.searchsorted(thresholds, cum.to_numpy(), side="right") - 1
    tier_before = np.searchsorted(thresholds, prev.to_numpy(), side="right") - 1
    up = earn.loc[tier_now > tier_before, ["customer_id", "order_date"]].assign(
        event_type="tier_up", points=0
    )
    up["order_date"] += pd.Timedelta(seconds=2)
    up_tier = tier_names[tier_now[tier_now > tier_before]]
    join = pd.DataFrame(
        {
            "customer_id": members.index,
            "order_date": members.to_numpy(),
            "event_type": "join",
            "points": 0,
        }
    )
    ev = pd.concat([join, earn, red, up.assign(tier=up_tier)], ignore_index=True)
    ev["order_date"] = pd.to_datetime(ev["order_date"])
    ev.loc[ev["event_type"] == "join", "tier"] = tier_names[0]
    order = {"join": 0, "earn": 1, "redeem": 2, "tier_up": 3}
    ev = ev.assign(_o=ev["event_type"].map(order)).sort_values(["order_date", "customer_id", "_o"])
    ev["tier"] = ev.groupby("customer_id")["tier"].ffill()
    ev = ev.rename(columns={"order_date": "event_at"}).drop(columns="_o").reset_index(drop=True)
    ev.insert(0, "event_id", np.arange(1, len(ev) + 1))
    return ev[["event_id", "customer_id", "event_at", "event_type", "points", "tier"]]


def _campaign_frame(
    cfg: SynthConfig, rng: np.random.Generator, cust: pd.DataFrame, kind: str
) -> pd.DataFrame:
    """Birthday and sign-up anniversary sends: one per opted-in customer and year in the window."""
    start, end = (
        pd.Timestamp(cfg.start),
        pd.Timestamp(cfg.end) - pd.Timedelta(days=cfg.campaign_window_days),
    )
    years = np.arange(start.year, end.year + 1)
    c = cust[cust["email_opt_in"]]
    base = c["birth_date"] if kind == "birthday" else c["signup_date"].dt.normalize()
    ids = np.repeat(c["customer_id"].to_numpy(), len(years))
    yr = np.tile(years, len(c))
    month = np.repeat(base.dt.month.to_numpy(), len(years))
    day = np.minimum(np.repeat(base.dt.day.to_numpy(), len(years)), 28)
    sent = pd.to_datetime(pd.DataFrame({"year": yr, "month": month, "day": day}))
    signup = np.repeat(c["signup_date"].to_numpy(), len(years))
    ok = (
        sent > signup + (pd.Timedelta(days=300) if kind == "anniversary" else pd.Timedelta(0))
    ) & (sent <= end)
    df = pd.DataFrame(
        {"campaign_id": [f"{kind}-{y}" for y in yr], "customer_id": ids, "sent_at": sent}
    )[ok.to_numpy()]
    share = cfg.birthday_treatment_share if kind == "birthday" else cfg.anniversary_treatment_share
    df["group"] = np.where(rng.random(len(df)) < share, "treatment", "control")
    df["campaign_type"] = kind
    df["uplift"] = cfg.birthday_uplift if kind == "birthday" else cfg.anniversary_uplift
    return df


def _winback_frame(
    cfg: SynthConfig, rng: np.random.Generator, cust: pd.DataFrame, orders: pd.DataFrame
) -> pd.DataFrame:
    """Quarterly win-back sends to opted-in customers with no order in the last `winback_lapsed_days`."""
    sends = pd.date_range(
        pd.Timestamp(cfg.start) + pd.DateOffset(months=6),
        pd.Timestamp(cfg.end) - pd.Timedelta(days=cfg.campaign_window_days),
        freq="QS",
    )
    opted = cust.loc[cust["email_opt_in"], "customer_id"]
    o = orders.loc[orders["customer_id"].isin(opted), ["customer_id", "order_date"]].sort_values(
        "order_date"
    )
    grid = pd.DataFrame(
        {
            "customer_id": np.repeat(opted.to_numpy(), len(sends)),
            "sent_at": np.tile(sends.to_numpy(), len(opted)),
        }
    ).sort_values("sent_at")
    last = pd.merge_asof(
        grid,
        o.rename(columns={"order_date": "last_order"}),
        left_on="sent_at",
        right_on="last_order",
        by="customer_id",
        direction="backward",
    )
    lapsed = last["last_order"].notna() & (
        last["sent_at"] - last["last_order"] >= pd.Timedelta(days=cfg.winback_lapsed_days)
    )
    df = (
        last.loc[lapsed, ["customer_id", "sent_at"]]
        .sort_values(["sent_at", "customer_id"])
        .reset_index(drop=True)
    )
    q = df["sent_at"].dt.quarter.astype(str)
    df.insert(0, "campaign_id", "winback-" + df["sent_at"].dt.year.astype(str) + "Q" + q)
    df["group"] = np.where(
        rng.random(len(df)) < cfg.winback_treatment_share, "treatment", "control"
    )
    df["campaign_type"] = "winback"
    df["uplift"] = cfg.winback_uplift
    return df


def generate(cfg: SynthConfig | None = None) -> tuple[dict[str, pd.DataFrame], dict]:
    """Generate every table and the ground truth (parameters plus realized facts) for `cfg`."""
    cfg = cfg or SynthConfig()
    rng = np.random.default_rng(cfg.seed)
    cust, lat = _customers(cfg, rng)
    sim, join_t, member = _simulate_orders(cfg, rng, lat)
    ids = cust["customer_id"].to_numpy()
    signup = cust["signup_date"].to_numpy()

    organic = pd.DataFrame(
        {
            "customer_id": ids[sim["cust"]],
            "order_date": (
                signup[sim["cust"]]
                + pd.to_timedelta(sim["t"].to_numpy() * 7 * 86400, unit="s").round("s")
            ),
            "campaign_id": "",
            "ticket": sim["ticket"].to_numpy(),
        }
    )
    organic = pd.concat(
        [organic.reset_index(drop=True), _money(cfg, rng, lat, sim["cust"].to_numpy())], axis=1
    )

    # randomized campaigns; treated customers without an organic order in the window may order extra
    camp = pd.concat(
        [
            _campaign_frame(cfg, rng, cust, "birthday"),
            _campaign_frame(cfg, rng, cust, "anniversary"),
            _winback_frame(cfg, rng, cust, organic),
        ],
        ignore_index=True,
    )
    window = pd.Timedelta(days=cfg.campaign_window_days)
    o_sorted = organic[["customer_id", "order_date"]].sort_values("order_date")
    nxt = pd.merge_asof(camp.reset_index().sort_values("sent_at"), o_sorted.rename(columns={"order_date": "next_order"}),
                        left_on="sent_at", right_on="next_order", by="customer_id", direction="forward").set_index("index").sort_index()  # fmt: skip
    organic_conv = (nxt["next_order"] - nxt["sent_at"]) <= window
    induced = (
        (camp["group"] == "treatment")
        & ~organic_conv
        & (rng.random(len(camp)) < camp["uplift"])
        & cfg.planted_effects
    )
    camp["induced"] = induced.to_numpy()
    ind = camp[camp["induced"]]
    cust_index = pd.Series(np.arange(len(ids)), index=ids)
    extra = pd.DataFrame(
        {
            "customer_id": ind["customer_id"].to_numpy(),
            "order_date": ind["sent_at"].to_numpy()
            + pd.to_timedelta(
                np.round(rng.uniform(0.1, cfg.campaign_window_days - 0.1, len(ind)) * 86400),
                unit="s",
            ),
            "campaign_id": ind["campaign_id"].to_numpy(),
            "ticket": "",
        }
    )
    extra = pd.concat(
        [
            extra,
            _money(
                cfg,
                rng,
                lat,
                cust_index[extra["customer_id"]].to_numpy(),
                np.ones(len(extra), bool),
            ),
        ],
        axis=1,
    )

    orders = (
        pd.concat([organic, extra], ignore_index=True)
        .sort_values(["order_date", "customer_id"], kind="stable")
        .reset_index(drop=True)
    )
    orders.insert(0, "order_id", np.arange(100001, 100001 + len(orders)))
    orders["channel"] = np.where(
        orders["campaign_id"] != "",
        "email",
        lat["order_channel"].to_numpy()[cust_index[orders["customer_id"]].to_numpy()],
    )

    subs, theta = _subscriptions(cfg, rng, cust)
    tickets = _tickets(cfg, rng, orders, set(subs["customer_id"]))
    nps = _nps(cfg, rng, cust, lat, theta, tickets)
    members = pd.Series(
        signup[member] + pd.to_timedelta(join_t[member] * 7 * 86400, unit="s").round("s"),
        index=ids[member],
    ).sort_index()
    loyalty = _loyalty(cfg, orders, members)

    # campaign outcomes: any order (organic or campaign) within the window after the send
    o_all = orders[["customer_id", "order_date", "amount"]]
    pairs = camp[["customer_id", "sent_at"]].reset_index().merge(o_all, on="customer_id")
    pairs = pairs[
        (pairs["order_date"] >= pairs["sent_at"])
        & (pairs["order_date"] <= pairs["sent_at"] + window)
    ]
    rev = pairs.groupby("index")["amount"].sum()
    camp["converted"] = camp.index.isin(rev.index)
    camp["revenue_30d"] = rev.reindex(camp.index, fill_value=0.0).round(2)
    campaigns = camp.sort_values(["sent_at", "campaign_id", "customer_id"]).reset_index(drop=True)
    truth_campaigns = campaigns.groupby("campaign_type").apply(
        lambda d: {"true_uplift_mechanism": float(d["uplift"].iloc[0]) if cfg.planted_effects else 0.0,
                   "true_att": float(d.loc[d["group"] == "treatment", "induced"].mean()),
                   "sends": int(len(d))}, include_groups=False).to_dict()  # fmt: skip
    campaigns = campaigns.drop(columns=["uplift", "induced"])
    campaigns.insert(0, "send_id", np.arange(1, len(campaigns) + 1))
    campaigns = campaigns[
        [
            "send_id",
            "campaign_id",
            "campaign_type",
            "customer_id",
            "group",
            "sent_at",
            "converted",
            "revenue_30d",
        ]
    ]

    orders = orders[list(ORDER_COLUMNS)]
    customers = cust.assign(loyalty_member=np.isin(ids, members.index))

    tables = {
        "customers": customers,
        "orders": orders,
        "subscriptions": subs,
        "support_tickets": tickets,
        "nps_responses": nps,
        "loyalty_events": loyalty,
        "campaigns": campaigns,
    }
    truth = _ground_truth(cfg, lat, theta, member, nps, tables, truth_campaigns)
    return tables, truth


def _ground_truth(
    cfg: SynthConfig,
    lat: pd.DataFrame,
    theta: np.ndarray,
    member: np.ndarray,
    nps: pd.DataFrame,
    tables: dict,
    camp: dict,
) -> dict:
    lam, p = lat["lam"], lat["p"]
    cust = tables["customers"]
    score = nps.groupby("customer_id")["score"].first()
    cat = pd.cut(score, [-1, 6, 8, 10], labels=["detractor", "passive", "promoter"])
    risk_p = pd.Series(
        np.where(np.isnan(theta), p.to_numpy(), np.nan), index=cust["customer_id"]
    )  # non-subscribers
    risk_theta = pd.Series(theta, index=cust["customer_id"])

    def by_category(risk: pd.Series) -> dict[str, float]:
        """Mean latent risk per first NPS category (customers with a defined risk)."""
        means = risk.reindex(cat.index).dropna().groupby(cat, observed=True).mean()
        return {str(k): float(v) for k, v in means.items()}

    realized = {
        "n_customers": len(cust),
        "n_orders": len(tables["orders"]),
        "n_subscriptions": len(tables["subscriptions"]),
        "loyalty_members": int(member.sum()),
        "loyalty_mean_lambda_members_over_nonmembers": float(
            lam[member].mean() / lam[~member].mean()
        ),
        "discount_prone_customers": int(lat["discount_prone"].sum()),
        "high_maintenance_customers": int(lat["high_maintenance"].sum()),
        "mean_dropout_p_by_first_nps_category_nonsubscribers": by_category(risk_p),
        "mean_theta_by_first_nps_category_subscribers": by_category(risk_theta),
        "campaigns": camp,
    }
    return {
        "description": "Copperleaf Roasters sample data: generating parameters and realized facts (helpers.synth)",
        "parameters": json.loads(json.dumps(asdict(cfg))),
        "realized": realized,
        "high_maintenance_customer_ids": cust["customer_id"][
            lat["high_maintenance"].to_numpy()
        ].tolist(),
        "discount_prone_customer_ids": cust["customer_id"][
            lat["discount_prone"].to_numpy()
        ].tolist(),
    }


def _for_csv(df: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as ISO text: a date where every value is midnight, else date and time."""
    out = df.copy()
    for col in out.columns[[pd.api.types.is_datetime64_any_dtype(t) for t in out.dtypes]]:
        s = out[col]
        fmt = "%Y-%m-%d" if (s.dropna() == s.dropna().dt.normalize()).all() else "%Y-%m-%d %H:%M:%S"
        out[col] = s.dt.strftime(fmt)
    return out


def write(tables: dict[str, pd.DataFrame], truth: dict, folder: Path | None = None) -> list[Path]:
    """Write the tables as CSV (ISO timestamps, fixed float format) and ground_truth.json."""
    folder = Path(folder) if folder else paths.DATASETS
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in tables.items():
        path = folder / f"{name}.csv"
        _for_csv(df).to_csv(path, index=False, float_format="%.2f", lineterminator="\n")
        written.append(path)
    gt = folder / "ground_truth.json"
    gt.write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n")
    written.append(gt)
    return written


def generate_orders(n_orders: int, seed: int = 7, cfg: SynthConfig | None = None) -> pd.DataFrame:
    """Orders only, about `n_orders` rows, from the same BG/NBD and Gamma-Gamma processes without
    the planted effects: the scaled data set for benchmarks (columns as in orders.csv, less
    campaign_id), cut to exactly `n_orders` at the latest order dates. Customers are added in
    proportion (about 4.6 orders per customer)."""
    base = cfg or SynthConfig()
    per_customer = 4.3  # a little under the mean, so that there are enough rows to cut
    cfg = replace(
        base,
        seed=seed,
        n_customers=max(1, int(round(n_orders / per_customer))),
        planted_effects=False,
    )
    rng = np.random.default_rng(cfg.seed)
    cust, lat = _customers(cfg, rng)
    sim, _, _ = _simulate_orders(cfg, rng, lat)
    c = sim["cust"].to_numpy()
    orders = pd.DataFrame(
        {
            "customer_id": cust["customer_id"].to_numpy()[c],
            "order_date": cust["signup_date"].to_numpy()[c]
            + pd.to_timedelta(sim["t"].to_numpy() * 7 * 86400, unit="s").round("s"),
        }
    )
    orders = pd.concat([orders, _money(cfg, rng, lat, c)], axis=1).sort_values(
        "order_date", kind="stable"
    )
    orders = orders.iloc[:n_orders].reset_index(drop=True)
    orders.insert(0, "order_id", np.arange(1, len(orders) + 1))
    orders["channel"] = lat["order_channel"].to_numpy()[orders["customer_id"].to_numpy() - 1]
    return orders[[c for c in ORDER_COLUMNS if c != "campaign_id"]]


def main() -> None:
    tables, truth = generate()
    for path in write(tables, truth):
        print(f"wrote {path.relative_to(paths.ROOT)} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
