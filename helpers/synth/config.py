"""Every parameter of the sample-company generator: :class:`SynthConfig`.

``dataclasses.asdict(SynthConfig())`` is written to ``ground_truth.json`` under ``parameters``; a
notebook names each metric it estimates after the field that planted it (``loyalty_rate_uplift``,
``coupon_uplift`` ...). ``python -m helpers.synth --set field=value`` overrides any field.
Tuples of ``(name, value)`` pairs are used instead of dicts so the config stays hashable.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    # referral customers are loyal: their BG/NBD dropout p is multiplied by this (planted)
    referral_dropout_multiplier: float = 0.7

    # --- acquisition (helpers.synth.acquisition): monthly spend per channel -----------------------
    # true cost per acquired customer, EUR; monthly spend = sign-ups x CPA x lognormal noise (mean 1)
    acquisition_cpa: tuple[tuple[str, float], ...] = (
        ("organic_search", 9.0), ("paid_social", 68.0), ("referral", 15.0),
        ("deal_site", 12.0), ("marketplace", 22.0), ("influencer", 45.0),
    )  # fmt: skip
    acquisition_spend_noise_sd: float = 0.15  # sd of log monthly spend around sign-ups x CPA

    # --- subscriptions (helpers.synth.subscriptions): sBG per plan + planted hazard multipliers ----
    subscription_share: float = 0.28
    plans: tuple[Plan, ...] = (
        Plan("Explorer", 14.90, 0.50, 0.7, 2.2),
        Plan("Enthusiast", 26.90, 0.35, 1.1, 5.5),
        Plan("Office", 59.00, 0.15, 1.5, 12.0),
    )
    # acquisition channel (planted): theta ~ Beta(alpha_plan, beta_plan * multiplier), i.e. an sBG
    # per plan and channel (a larger beta: lower churn)
    sub_beta_multiplier_channel: tuple[tuple[str, float], ...] = (
        ("referral", 1.4),
        ("deal_site", 0.7),
    )
    # monthly churn P = 1 - (1 - theta)^HR (HR multiplies the hazard -log(1 - theta)), HR = product of
    # sub_hr_bad_ticket if a ticket answered late (first response after 24 h) or never resolved was opened in the 60 days before the month
    # starts, and sub_hr_visits_drop if the customer had no site visit in the calendar month before
    # the month starts after at least one visit in the month before that (a drop in engagement).
    sub_hr_bad_ticket: float = 2.5
    sub_hr_visits_drop: float = 1.8

    # --- service (helpers.synth.service): tickets, returns, recovery -------------------------------
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
    ticket_topics: tuple[tuple[str, float], ...] = (
        ("delivery_delay", 0.30), ("damaged_package", 0.20), ("grinder_fault", 0.12),
        ("wrong_item", 0.13), ("billing", 0.10), ("taste", 0.15),
    )  # fmt: skip
    ticket_channels: tuple[tuple[str, float], ...] = (("email", 0.5), ("chat", 0.3), ("phone", 0.2))
    resolution_types: tuple[tuple[str, float], ...] = (
        ("replacement", 0.35), ("refund", 0.30), ("voucher", 0.20), ("explanation", 0.15),
    )  # fmt: skip
    # resolution type (planted): a resolved ticket adds this dropout probability at its order,
    # P(drop) = 1 - (1 - q)(1 - extra), so P(buys again | type) / P(buys again | refund)
    # = (1 - extra_type) / (1 - extra_refund)
    resolution_dropout_extra: tuple[tuple[str, float], ...] = (
        ("replacement", 0.05), ("refund", 0.10), ("voucher", 0.0), ("explanation", 0.25),
    )  # fmt: skip
    # operational fix (planted): a new delivery carrier from this date; the probability of a
    # delivery ticket (delivery_delay, damaged_package) per order falls by this relative amount,
    # and so does the weight of the 'delivery' theme in survey comments
    delivery_fix_date: str = "2025-04-01"
    delivery_fix_reduction: float = 0.5

    # --- loyalty club (helpers.synth.club) ------------------------------------------------------
    # staggered launch: the pilot countries first, everyone else later. At a customer's first
    # order on or after the launch in their country they join with
    # P = expit(intercept + slope * log(lambda / E[lambda])) (self-selection), then buy at
    # rate lambda * uplift (the causal effect), times the tier lift and the goal gradient.
    loyalty_pilot_countries: tuple[str, ...] = ("NL", "PL")
    loyalty_pilot_launch: str = "2024-01-01"
    loyalty_launch: str = "2025-01-01"
    loyalty_join_intercept: float = -0.5
    loyalty_join_slope: float = 1.2
    loyalty_rate_uplift: float = 1.5
    points_per_eur: float = 1.0  # campaign-coupon orders earn no points
    redeem_block: int = 500  # points redeemed together, worth 5 EUR
    point_value_eur: float = 0.01
    # tiers on lifetime points since joining (never lost)
    tiers: tuple[tuple[str, int], ...] = (("Bronze", 0), ("Silver", 400), ("Gold", 850))
    tier_rate_lift: tuple[tuple[str, float], ...] = (("Silver", 1.15), ("Gold", 1.3))
    tier_benefit_cost: tuple[tuple[str, float], ...] = (
        ("Silver", 0.50),
        ("Gold", 4.90),
    )  # EUR/order
    # goal gradient (Kivetz, Urminsky & Zheng 2006): within this many points of the next tier the
    # purchase rate is multiplied by goal_gradient_multiplier
    goal_gradient_window: int = 150
    goal_gradient_multiplier: float = 1.5
    # points lapse after this many months without earning or redeeming (an 'expire' event)
    points_expiry_months: int = 12
    # each member redeems all full blocks at an order with probability rho ~ Beta(a, b)
    redeem_propensity_a: float = 2.0
    redeem_propensity_b: float = 2.0

    # --- NPS and feedback (helpers.synth.surveys) -------------------------------------------------
    # surveyed 60 days after sign-up and yearly after; score = round(base - slope * risk_z
    # + noise - ticket penalties), clipped to 0..10; risk_z = probit of the rank of p (or theta).
    nps_response_rate: float = 0.35  # response rate at risk_z = 0
    nps_response_risk_slope: float = -0.6  # logit of responding per SD of risk (non-response bias)
    nps_base: float = 7.9
    nps_risk_slope: float = 1.7
    nps_noise_sd: float = 1.3
    nps_penalty_unresolved: float = 3.0
    nps_penalty_poorly: float = 1.2
    nps_comment_share: float = 0.6
    # detractor follow-up (randomized): a detractor response is followed up within 48 h with this
    # probability; an otherwise-alive detractor drops out at the survey with the given probability
    followup_share: float = 0.5
    detractor_dropout_control: float = 0.4
    detractor_dropout_followup: float = 0.10

    # --- campaigns (helpers.synth.campaigns) -------------------------------------------------------
    # Randomized. A treated customer with no organic order in the window places an extra
    # (campaign) order with the send's individual probability `uplift`; treated customers who
    # order anyway use the coupon with probability campaign_coupon_redeem_share (cannibalization).
    campaign_window_days: int = 30
    campaign_discount_rate: float = 0.15
    campaign_coupon_redeem_share: float = 0.7
    campaign_cost_per_send: tuple[tuple[str, float], ...] = (("email", 0.01), ("sms", 0.08))
    campaign_sms_share: float = 0.5  # share of sends to SMS-opted-in customers that go by SMS
    birthday_treatment_share: float = 0.8
    birthday_uplift: float = 0.05
    birthday_uplift_member_multiplier: float = 3.0
    anniversary_treatment_share: float = 0.8
    anniversary_uplift: float = 0.04
    winback_treatment_share: float = 0.5
    winback_uplift: float = 0.04
    winback_uplift_discount_prone_multiplier: float = 3.0
    winback_recent_days: int = 240  # lapsed fewer days than this at the send: 'recently lapsed'
    winback_uplift_recent_multiplier: float = 2.0
    winback_lapsed_days: int = 120
    # sleeping dogs: these customers never respond to a campaign, and a treated send makes them
    # drop out (no organic order after the send) with probability sleeping_dog_dropout
    sleeping_dog_share: float = 0.06
    sleeping_dog_dropout: float = 0.4

    # --- next-purchase coupon experiment (helpers.synth.coupons) -----------------------------------
    # every order from coupon_start to end - valid days gets an offer, arms randomized equally
    coupon_start: str = "2025-01-01"
    coupon_arms: tuple[int, ...] = (0, 5, 10, 15)  # percent off the next order
    coupon_valid_days: int = 60
    coupon_min_spend: float = 25.0  # EUR list price for the coupon to apply
    # P(the offer causes an order within the validity when none would come naturally), per arm
    coupon_uplift: tuple[tuple[int, float], ...] = ((5, 0.06), (10, 0.14), (15, 0.20))

    # --- engagement (helpers.synth.engagement) -----------------------------------------------------
    visits_mean: float = 3.0  # site visits per month of an engaged customer (Gamma-Poisson mean)
    visits_shape: float = 1.5
    # multiplier on visits, opens and clicks in the 3, 2 and 1 months before the latent dropout
    # month, and from the dropout month on
    engagement_decline: tuple[float, float, float] = (0.7, 0.45, 0.25)
    engagement_after_dropout: float = 0.1
    newsletter_cadences: tuple[int, ...] = (
        1,
        2,
        4,
    )  # newsletters per month, randomized per customer
    open_rate_a: float = 3.0  # per-customer open probability ~ Beta(a, b)
    open_rate_b: float = 5.0
    click_rate: float = 0.2  # clicks per open
    # e-mail opt-out per month: P = 1 - exp(-(base + per_email * newsletters that month))
    email_optout_base: float = 0.002
    email_optout_per_email: float = 0.004

    extra: dict = field(default_factory=dict)  # room for later tables' parameters
