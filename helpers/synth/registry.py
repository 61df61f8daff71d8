"""The truth registry: every parameter of :class:`~helpers.synth.config.SynthConfig` (the entries
of ``ground_truth.json["parameters"]``) classified exactly once, next to the generator.

* ``design``: a constant of the sample company's design (size, calendar, prices, mixes, rules of
  the programmes); no notebook is expected to estimate it.
* ``estimated``: a planted effect that notebook ``NN`` estimates and records in its
  ``metrics.json`` under a metric key, as ``{"estimate", "ci_low", "ci_high", "truth"}``; the
  registry names the truth each metric is judged against (a path into ground_truth.json, or a
  truth derived from the parameters, :func:`derived_truths`). A key inside a nested entry is
  dotted (``tier_rate_lift.Silver``). A parameter may have several metrics (several methods, or
  one per arm, plan or channel: those are expanded from the company's own parameters, so another
  company with other arms or plans gets its own keys).
* ``unidentifiable``: a planted effect these tables cannot identify, with the reason.

The classification is data (the three tables below); :func:`registry`, :func:`planted_effects`,
:func:`metrics_for` and :func:`classification` read it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats as st

from helpers.synth.config import SynthConfig

Kind = Literal["design", "estimated", "unidentifiable"]

# --- the data ---------------------------------------------------------------------------------

#: Constants of the company's design: no estimate expected.
DESIGN: tuple[str, ...] = (
    # the run: seed, size, calendar, growth, the switch for the planted effects
    "seed", "n_customers", "start", "end", "signup_growth", "planted_effects", "extra",
    # who the customers are and where they buy
    "countries", "channels", "order_channels", "email_opt_in_rate", "sms_opt_in_rate",
    # money: margin and the discount rules (discount-prone customers are a latent segment whose
    # behaviour is documented, not a treatment effect)
    "gross_margin_rate", "discount_prone_share_deal_site", "discount_prone_share_other",
    "discount_prone_order_share", "discount_prone_rate", "regular_discount_order_share",
    "regular_discount_rate",
    # acquisition noise, subscriptions' share of customers
    "acquisition_spend_noise_sd", "subscription_share",
    # service: how often tickets and returns happen, their mixes, the carrier change's date
    "ticket_rate", "return_rate", "high_maintenance_share", "high_maintenance_ticket_rate",
    "high_maintenance_return_rate", "resolution_mix", "ticket_topics", "ticket_channels",
    "resolution_types", "delivery_fix_date",
    # the loyalty programme's rules and calendar
    "loyalty_pilot_countries", "loyalty_pilot_launch", "loyalty_launch", "points_per_eur",
    "redeem_block", "point_value_eur", "tiers", "tier_benefit_cost", "goal_gradient_window",
    "points_expiry_months",
    # surveys and the follow-up experiment's design
    "nps_comment_share", "followup_share",
    # campaigns: windows, coupons, costs, randomization shares, eligibility rules
    "campaign_window_days", "campaign_discount_rate", "campaign_cost_per_send",
    "campaign_sms_share", "birthday_treatment_share", "anniversary_treatment_share",
    "winback_treatment_share", "winback_recent_days", "winback_lapsed_days",
    # next-purchase coupon experiment's design
    "coupon_start", "coupon_arms", "coupon_valid_days", "coupon_min_spend",
    # engagement: activity levels and e-mail behaviour
    "visits_mean", "visits_shape", "engagement_after_dropout", "newsletter_cadences",
    "open_rate_a", "open_rate_b", "click_rate", "email_optout_base",
)  # fmt: skip

#: Planted effects and the metrics that estimate them: parameter -> metric specs
#: ``(notebook, key, truth)``, or ``(notebook, key, truth, over)`` for one metric per key of the
#: parameter `over` (``{k}`` in the key and the truth; keys listed in :data:`_SKIP` left out).
#: A truth is a dotted path into ground_truth.json (``parameters.…``, ``realized.…``; a list of
#: pairs or of named records is indexed by name, any other list by position) or ``derived.NAME``.
#: Where ``realized`` holds the effect (0 or 1 when ``planted_effects`` is off), it is preferred.
ESTIMATED: dict[str, tuple[tuple[str, ...], ...]] = {
    # 02: the subscription plans' sBG (alpha, beta), against the plan's base (generator_base)
    "plans": (
        ("02", "plans.{k}.alpha", "parameters.plans.{k}.alpha", "plans"),
        ("02", "plans.{k}.beta", "parameters.plans.{k}.beta", "plans"),
    ),
    # 02 (issue 24, item 6): cost per acquired customer by channel from marketing_spend.csv
    "acquisition_cpa": (
        ("02", "acquisition_cpa.{k}", "parameters.acquisition_cpa.{k}", "acquisition_cpa"),
    ),
    # 03: the sBG with covariates (hazard multipliers, channel multipliers of beta) and the Cox
    # model's hazard ratios of the same drivers
    "sub_hr_bad_ticket": (
        ("03", "sub_hr_bad_ticket", "realized.subscriptions.sub_hr_bad_ticket"),
        ("03", "cox_hr_bad_ticket", "realized.subscriptions.sub_hr_bad_ticket"),
    ),
    "sub_hr_visits_drop": (
        ("03", "sub_hr_visits_drop", "realized.subscriptions.sub_hr_visits_drop"),
        ("03", "cox_hr_visits_drop", "realized.subscriptions.sub_hr_visits_drop"),
    ),
    "sub_beta_multiplier_channel": (
        ("03", "sub_beta_multiplier_channel.{k}", "parameters.sub_beta_multiplier_channel.{k}",
         "sub_beta_multiplier_channel"),
    ),
    "engagement_decline": (
        ("03", "engagement_decline.3_months_before", "parameters.engagement_decline.0"),
        ("03", "engagement_decline.2_months_before", "parameters.engagement_decline.1"),
        ("03", "engagement_decline.1_month_before", "parameters.engagement_decline.2"),
    ),
    # 04: BG/NBD and Gamma-Gamma (alpha in weeks; the notebook scales it to its time unit)
    "bgnbd_r": (("04", "bgnbd_r", "parameters.bgnbd_r"),),
    "bgnbd_alpha": (("04", "bgnbd_alpha", "parameters.bgnbd_alpha"),),
    "bgnbd_a": (("04", "bgnbd_a", "parameters.bgnbd_a"),),
    "bgnbd_b": (("04", "bgnbd_b", "parameters.bgnbd_b"),),
    "gg_p": (("04", "gg_p", "parameters.gg_p"),),
    "gg_q": (("04", "gg_q", "parameters.gg_q"),),
    "gg_gamma": (("04", "gg_gamma", "parameters.gg_gamma"),),
    "referral_dropout_multiplier": (
        ("04", "referral_dropout_multiplier", "parameters.referral_dropout_multiplier"),
        # 08 (issue 32): the report's BG/NBD with the customers' attributes as covariates, the
        # referral channel's multiplier of the mean dropout probability against the most common
        # channel (no planted effect on the rest)
        ("08", "covariates.effects.acquisition_channel.referral.dropout",
         "parameters.referral_dropout_multiplier"),
    ),
    # 05: the loyalty club, three estimands of one effect, and the programme's mechanics
    "loyalty_rate_uplift": (
        ("05", "loyalty_rate_uplift.rate_multiplier", "parameters.loyalty_rate_uplift"),
        ("05", "loyalty_rate_uplift.pilot_att_ratio", "realized.loyalty.pilot_att_ratio"),
        ("05", "loyalty_rate_uplift.member_att_ratio", "realized.loyalty.member_att_ratio"),
        # issue 25: the doubly robust (AIPW) estimate of the members' effect beside the IPW one
        ("05", "loyalty_rate_uplift.member_att_ratio_aipw", "realized.loyalty.member_att_ratio"),
        # issue 25: the later launch's joiners as pilot-year controls for the pilot's joiners
        ("05", "loyalty_rate_uplift.member_att_ratio_later_joiners",
         "realized.loyalty.member_att_ratio"),
        # issue 24: IPW trimmed to the joiners with overlap, and IPW on the customers with a year
        # of history (exercise 3): other estimands (sub-populations of the members), judged against
        # all members' realized ratio, since the truth files hold no per-customer counterfactual
        ("05", "loyalty_rate_uplift.member_att_ratio_trimmed", "realized.loyalty.member_att_ratio"),
        ("05", "loyalty_rate_uplift.member_att_ratio_year_history",
         "realized.loyalty.member_att_ratio"),
        # issue 29: the client report's within-member rate model (one state after joining)
        # averages the base uplift with the tier and goal-gradient lifts: its own truth
        ("08", "beyond_orders.loyalty.within_member_multiplier",
         "realized.loyalty.within_member_multiplier"),
    ),
    "goal_gradient_multiplier": (
        ("05", "goal_gradient_multiplier", "parameters.goal_gradient_multiplier"),
    ),
    "tier_rate_lift": (
        ("05", "tier_rate_lift.{k}", "parameters.tier_rate_lift.{k}", "tier_rate_lift"),
    ),
    # the points' fate: the mean propensity, and the ultimate breakage it leads to (the generator
    # continues the members' lives past the end: helpers.synth.club.ultimate_breakage)
    "redeem_propensity_a": (
        ("05", "redeem_propensity.mean", "derived.redeem_propensity_mean"),
        ("05", "ultimate_breakage", "realized.loyalty.ultimate_breakage"),
        # issue 29: the client report's points ledger, read as notebook 05 reads it
        ("08", "beyond_orders.points.ultimate_breakage", "realized.loyalty.ultimate_breakage"),
    ),
    "redeem_propensity_b": (
        ("05", "redeem_propensity.mean", "derived.redeem_propensity_mean"),
        ("05", "ultimate_breakage", "realized.loyalty.ultimate_breakage"),
        # issue 29: the client report's points ledger, read as notebook 05 reads it
        ("08", "beyond_orders.points.ultimate_breakage", "realized.loyalty.ultimate_breakage"),
    ),
    # 06: NPS selection model, the delivery fix, the follow-up experiment, service recovery
    "nps_response_rate": (("06", "nps_response_rate", "parameters.nps_response_rate"),),
    "nps_response_risk_slope": (
        # the selection model's population NPS (points): what non-response at this slope hides
        ("06", "population_nps_selection_model", "realized.feedback.population_nps"),
        ("06", "nps_response_logit_slope", "parameters.nps_response_risk_slope"),
        # the same population NPS from the respondents alone and weighted by response propensity
        ("06", "population_nps_respondents_only", "realized.feedback.population_nps"),
        ("06", "population_nps_weighted", "realized.feedback.population_nps"),
    ),
    "nps_base": (("06", "nps_base", "parameters.nps_base"),),
    "nps_risk_slope": (("06", "nps_risk_slope", "parameters.nps_risk_slope"),),
    "nps_noise_sd": (("06", "nps_noise_sd", "parameters.nps_noise_sd"),),
    # the ticket penalties: the selection model, and the driver analysis's interval regression
    "nps_penalty_poorly": (
        ("06", "nps_penalty_poorly", "parameters.nps_penalty_poorly"),
        ("06", "nps_penalty_poorly_driver", "parameters.nps_penalty_poorly"),
    ),
    "nps_penalty_unresolved": (
        ("06", "nps_penalty_unresolved", "parameters.nps_penalty_unresolved"),
        ("06", "nps_penalty_unresolved_driver", "parameters.nps_penalty_unresolved"),
    ),
    "delivery_fix_reduction": (
        ("06", "delivery_fix_reduction", "realized.feedback.delivery_fix_reduction"),
        ("06", "delivery_fix_reduction_vs_control", "realized.feedback.delivery_fix_reduction"),
        # the naive before/after comparison, the level change at the fix date alone, and the
        # control series (tickets on other topics, which the fix does not touch: truth 0)
        ("06", "delivery_fix_reduction_before_after", "realized.feedback.delivery_fix_reduction"),
        ("06", "delivery_fix_reduction_at_fix", "realized.feedback.delivery_fix_reduction"),
        ("06", "delivery_fix_control_series_reduction", "derived.delivery_fix_control_reduction"),
        ("06", "delivery_fix_control_series_at_fix", "derived.delivery_fix_control_reduction"),
    ),
    # the follow-up's effect on buying again within 180 days (both dropout rates make it)
    "detractor_dropout_followup": (
        ("06", "followup_effect_buy_again_180d",
         "realized.feedback.followup_true_effect_buy_again_180d"),
    ),
    "detractor_dropout_control": (
        ("06", "followup_effect_buy_again_180d",
         "realized.feedback.followup_true_effect_buy_again_180d"),
    ),
    "dropout_extra_unresolved": (
        ("06", "dropout_extra_unresolved", "parameters.dropout_extra_unresolved"),
    ),
    # a poorly handled ticket's lost share of returning customers also holds its remedy's extra
    "dropout_extra_poorly": (("06", "poorly_ticket_lost_share", "derived.poorly_ticket_lost_share"),),
    "dropout_multiplier_well": (
        ("06", "recovery_well_ratio_vs_no_ticket", "derived.well_ticket_stay_ratio"),
    ),
    "resolution_dropout_extra": (
        ("06", "resolution_dropout_extra.{k}", "realized.feedback.repurchase_ratio_vs_refund.{k}",
         "resolution_dropout_extra"),
    ),
    # 07: the campaigns' uplift (CUPED-adjusted and unadjusted), cannibalized coupons, the
    # next-purchase coupon arms, the newsletter cadence experiment, the campaigns' subgroups
    "birthday_uplift": (
        ("07", "birthday_uplift", "realized.campaigns.birthday.true_ate"),
        ("07", "birthday_uplift_unadjusted", "realized.campaigns.birthday.true_ate"),
    ),
    "anniversary_uplift": (
        ("07", "anniversary_uplift", "realized.campaigns.anniversary.true_ate"),
        ("07", "anniversary_uplift_unadjusted", "realized.campaigns.anniversary.true_ate"),
    ),
    "winback_uplift": (
        ("07", "winback_uplift", "realized.campaigns.winback.true_ate"),
        ("07", "winback_uplift_unadjusted", "realized.campaigns.winback.true_ate"),
        # 03 turns the unadjusted uplift into the save rate of its contact value
        ("03", "winback_uplift", "realized.campaigns.winback.true_ate"),
    ),
    "campaign_coupon_redeem_share": (
        ("07", "campaign_coupon_redeem_share.{k}",
         "realized.campaigns.{k}.cannibalized_discount_per_treated_send", "campaigns"),
    ),
    "coupon_uplift": (
        ("07", "coupon_uplift_{k}", "realized.coupons.{k}.true_conversion_uplift",
         "coupon_uplift"),
        # 05 costs the coupon arms beside the club (issue 24: printed, so recorded)
        ("05", "coupon_uplift.{k}", "realized.coupons.{k}.true_conversion_uplift",
         "coupon_uplift"),
    ),
    "birthday_uplift_member_multiplier": (
        ("07", "birthday_uplift_member_multiplier",
         "parameters.birthday_uplift_member_multiplier"),
    ),
    "winback_uplift_recent_multiplier": (
        ("07", "winback_uplift_recent_multiplier", "parameters.winback_uplift_recent_multiplier"),
    ),
    "email_optout_per_email": (
        ("07", "email_optout_per_email", "realized.engagement.email_optout_per_email"),
    ),
}  # fmt: skip

#: Planted effects these tables cannot identify: parameter -> why.
UNIDENTIFIABLE: dict[str, str] = {
    "loyalty_join_intercept": (
        "Joining depends on the latent purchase rate lambda, which the tables show only through a "
        "customer's few past orders, so a join model on observed history cannot recover the "
        "generator's intercept on log(lambda / E[lambda])."
    ),
    "loyalty_join_slope": (
        "The self-selection slope acts on the latent lambda; observed order counts measure it "
        "with Poisson noise, so any regression on them attenuates the slope by an unknown factor."
    ),
    "winback_uplift_discount_prone_multiplier": (
        "Discount-proneness is a latent type (truth files only); the orders show discounts that "
        "regular customers also get, so the discount-prone subgroup's uplift cannot be isolated."
    ),
    "sleeping_dog_share": (
        "Sleeping dogs are a latent type; randomized sends identify only the average harm (share "
        "times dropout probability, mixed with the uplift of the rest), not the share itself."
    ),
    "sleeping_dog_dropout": (
        "The dropout probability of a contacted sleeping dog enters the data only multiplied by "
        "their latent share, so the two cannot be separated from the campaign tables; notebook 07 "
        "records what they do identify, the 12-month effect on orders of a customer's first "
        "win-back send (orders caused minus the dogs' lost orders), as long_horizon_orders_12m "
        "against an approximate truth computed from the truth files (no ground-truth path holds "
        "it), and shows the dogs' part is far below what that test can detect."
    ),
}

#: Keys of an expanded parameter that get no metric (the reference category of a ratio).
_SKIP: dict[str, tuple[str, ...]] = {"resolution_dropout_extra": ("refund",)}
#: Expansions over something other than a parameter's own keys.
_LISTS: dict[str, tuple[str, ...]] = {"campaigns": ("anniversary", "birthday", "winback")}


#: Metrics whose method is known to be biased on these data: recorded against their truth, hit or
#: miss (the registry test holds that), but not expected to cover it (the notebook says why and its
#: claims test holds the direction of the bias); key -> the reason.
BIASED: dict[str, str] = {
    "cox_hr_bad_ticket": (
        "a Cox model without frailty: unobserved differences between subscribers (the sBG's "
        "heterogeneity) pull hazard ratios toward 1; over 30 generated companies it covers the "
        "planted multiplier in 83 % (band 66-93 %), mean relative bias -12 % (notebook 03; "
        "benchmarks/README.md)"
    ),
    "loyalty_rate_uplift.member_att_ratio": (
        "inverse-probability weighting adjusts for the observed covariates only; members select on "
        "their latent purchase rate, which the past purchase rate measures with noise (SMD -0.2 "
        "after weighting), so the weighted comparison keeps part of the self-selection (notebook 05)"
    ),
    "loyalty_rate_uplift.member_att_ratio_aipw": (
        "doubly robust, but both its models use the same observed covariates: the unobserved part "
        "of the self-selection biases it as it biases IPW (notebook 05)"
    ),
    "loyalty_rate_uplift.member_att_ratio_trimmed": (
        "IPW on the joiners with overlap: the same observed covariates, so the same residual "
        "self-selection as untrimmed IPW; and its estimand (joiners with overlap) is not the "
        "population of its truth (all members; notebook 05)"
    ),
    "loyalty_rate_uplift.member_att_ratio_year_history": (
        "IPW on customers with a year of history: a longer history measures the latent rate "
        "better but still with noise, so part of the self-selection remains; its estimand (members "
        "with a year of history) is not the population of its truth (all members; notebook 05)"
    ),
    "nps_penalty_poorly_driver": (
        "a regression of the score on tickets among respondents: customers with tickets order "
        "more and have a lower latent churn risk, which raises their score; the order history "
        "controls for it only in part, so the penalty can come out smaller (notebook 06)"
    ),
    "nps_penalty_unresolved_driver": (
        "as for the poorly handled ticket: the latent churn risk confounds tickets and score "
        "beyond what the order history shows; on some seeds the interval stops short of the "
        "planted penalty (notebook 06's selection model models that risk)"
    ),
    "population_nps_respondents_only": (
        "non-response is not at random: the customers at risk, who score lower, answer less, so the "
        "respondents' NPS lies far above everyone's (notebook 06)"
    ),
    "population_nps_weighted": (
        "weighting by a response model on observed behaviour removes only the part of the "
        "non-response that behaviour explains; the latent churn risk drives both answering and the "
        "score, so the weighted NPS stays far above everyone's (notebook 06)"
    ),
}


# --- the API ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One recorded estimate: notebook ``NN``, its key in that notebook's metrics.json (dotted
    inside nested entries) and the truth it is judged against (see :func:`truth_value`)."""

    notebook: str
    key: str
    parameter: str
    truth: str


@dataclass(frozen=True)
class Classification:
    """A parameter's class, its metrics (``estimated``) and the reason (``unidentifiable``)."""

    parameter: str
    kind: Kind
    metrics: tuple[Metric, ...] = ()
    reason: str = ""


def default_parameters() -> dict[str, Any]:
    """``ground_truth.json["parameters"]`` of the bundled company's config, as JSON values."""
    return json.loads(json.dumps(asdict(SynthConfig())))


def _keys(value: Any) -> list[str]:
    """The keys of a parameter value: names of named records, first items of pairs."""
    if isinstance(value, dict):
        return [str(k) for k in value]
    return [str(v["name"]) if isinstance(v, dict) else str(v[0]) for v in value]


def _expand(parameter: str, spec: tuple[str, ...], parameters: dict[str, Any]) -> list[Metric]:
    notebook, key, truth, *over = spec
    if not over:
        return [Metric(notebook, key, parameter, truth)]
    name = over[0]
    ks = _LISTS[name] if name in _LISTS else _keys(parameters[name])
    return [
        Metric(notebook, key.format(k=k), parameter, truth.format(k=k))
        for k in ks
        if k not in _SKIP.get(name, ())
    ]


def registry(parameters: dict[str, Any] | None = None) -> dict[str, Classification]:
    """Every classified parameter -> its :class:`Classification`, with the metrics expanded over
    `parameters` (a company's ``ground_truth.json["parameters"]``; default: the bundled config).
    Raises ValueError if a parameter is classified twice."""
    p = default_parameters() if parameters is None else parameters
    out: dict[str, Classification] = {name: Classification(name, "design") for name in DESIGN}
    for name, reason in UNIDENTIFIABLE.items():
        if name in out:
            raise ValueError(f"{name}: classified twice ({out[name].kind} and unidentifiable)")
        out[name] = Classification(name, "unidentifiable", reason=reason)
    for name, specs in ESTIMATED.items():
        if name in out:
            raise ValueError(f"{name}: classified twice ({out[name].kind} and estimated)")
        metrics = tuple(m for s in specs for m in _expand(name, s, p))
        out[name] = Classification(name, "estimated", metrics=metrics)
    return dict(sorted(out.items()))


def classification(parameter: str, parameters: dict[str, Any] | None = None) -> Classification:
    """The class of one parameter (KeyError naming it if it is not classified)."""
    reg = registry(parameters)
    if parameter not in reg:
        raise KeyError(f"{parameter!r} is not classified in helpers.synth.registry")
    return reg[parameter]


def planted_effects(parameters: dict[str, Any] | None = None) -> dict[str, Classification]:
    """The planted effects: parameters classified ``estimated`` or ``unidentifiable``."""
    return {k: c for k, c in registry(parameters).items() if c.kind != "design"}


def metrics_for(notebook: str, parameters: dict[str, Any] | None = None) -> list[Metric]:
    """The metrics notebook `notebook` (``"05"`` or ``"05_loyalty_programme_economics"``) must
    record, each once (a metric shared by two parameters names the first), sorted by key."""
    nn = notebook[:2]
    seen: dict[str, Metric] = {}
    for c in registry(parameters).values():
        for m in c.metrics:
            if m.notebook == nn:
                seen.setdefault(m.key, m)
    return sorted(seen.values(), key=lambda m: m.key)


def derived_truths(parameters: dict[str, Any]) -> dict[str, float]:
    """Truths that follow from the parameters alone (no simulation).

    * ``redeem_propensity_mean``: E[rho] = a / (a + b) of rho ~ Beta(a, b).
    * ``well_ticket_net_survival_change``: how much a ticket handled well changes the probability
      of staying active after the repeat order it is about (after a first order nobody drops
      out, so there the ticket only adds e's dropout), at the mean dropout probability
      p = E[p] = a / (a + b) of BG/NBD's p ~ Beta(a, b): p - (1 - (1 - m p)(1 - e)), with
      m = ``dropout_multiplier_well`` and e the resolution type's extra dropout averaged over
      ``resolution_types`` (positive: more stay). It leaves out the lasting part of the effect
      (m also applies at every later order) and the customers' spread of p; notebook 06's
      "came back within N days" scales it by the chance of an order within N days when active.
    * ``delivery_fix_control_reduction``: 0, the change at the delivery fix in the rate of tickets
      on the other topics (the fix removes delivery-topic tickets only: ``purchases.py``).
    """
    a, b = parameters["redeem_propensity_a"], parameters["redeem_propensity_b"]
    weights = {str(k): float(w) for k, w in parameters["resolution_types"]}
    extra = {str(k): float(e) for k, e in parameters["resolution_dropout_extra"]}
    e = sum(w * extra.get(k, 0.0) for k, w in weights.items()) / sum(weights.values())
    p = parameters["bgnbd_a"] / (parameters["bgnbd_a"] + parameters["bgnbd_b"])
    m = parameters["dropout_multiplier_well"]
    on = bool(parameters.get("planted_effects", True))
    out = {
        "redeem_propensity_mean": a / (a + b),
        "well_ticket_net_survival_change": (p - (1 - (1 - m * p) * (1 - e))) if on else 0.0,
        "delivery_fix_control_reduction": 0.0,
    }
    if {"bgnbd_r", "bgnbd_alpha", "start", "end"} <= set(parameters):
        out["well_ticket_stay_ratio"] = _well_ticket_stay_ratio(parameters, m, e) if on else 1.0
    if "dropout_extra_poorly" in parameters:
        # poorly handled: the planted extra dropout x and the remedy's e, 1 - (1 - x)(1 - e)
        x = parameters["dropout_extra_poorly"]
        out["poorly_ticket_lost_share"] = (1 - (1 - x) * (1 - e)) if on else 0.0
    out.update(discount_truths(parameters))
    return out


def discount_truths(parameters: dict[str, Any]) -> dict[str, float]:
    """``discount_first_order_gap_deal_site`` (the client report's acquisition section, issue 28):
    how much more often a deal-site customer's first order carries a discount than another
    channel's customer's. A share pi_c of channel c's customers is discount-prone
    (``discount_prone_share_deal_site``, ``discount_prone_share_other``); a prone customer's
    order has a discount with probability q_p (``discount_prone_order_share``), anyone else's
    with q_r (``regular_discount_order_share``); a first order gets no coupon or campaign
    discount, so P(discount on the first order | c) = pi_c q_p + (1 - pi_c) q_r and the gap is
    (pi_deal - pi_other)(q_p - q_r). Proneness is drawn whether or not ``planted_effects`` is
    on (helpers.synth.customers). Empty when a parameter is missing."""
    keys = ("discount_prone_share_deal_site", "discount_prone_share_other",
            "discount_prone_order_share", "regular_discount_order_share")  # fmt: skip
    if not set(keys) <= set(parameters):
        return {}
    deal, other, q_p, q_r = (float(parameters[k]) for k in keys)
    return {"discount_first_order_gap_deal_site": (deal - other) * (q_p - q_r)}


def _well_ticket_stay_ratio(parameters: dict[str, Any], m: float, e: float) -> float:
    """``well_ticket_stay_ratio``: P(still active after an order whose ticket was handled well)
    / P(still active after an order without a ticket), averaged over the orders as they occur.

    A first order has no dropout, so a well-handled ticket there only adds the resolution type's
    extra dropout e (averaged over ``resolution_types``): staying 1 - e against 1. After a repeat
    order a customer with dropout probability p stays with (1 - m p)(1 - e) against 1 - p
    (m = ``dropout_multiplier_well``). Orders are weighted as they occur: one first order per
    customer and E[X(T) | lambda, p] = (1 - exp(-lambda p T)) / p repeat orders (Fader, Hardie &
    Lee 2005, BG/NBD), lambda ~ Gamma(r, alpha), p ~ Beta(a, b), at the mean horizon T = half the
    calendar (in weeks; a third or all of it moves the ratio by under 0.005), by quantile
    quadrature. With W = E[X], V = E[p X]:
    ratio = (1 - e)(1 + W - m V) / (1 + W - V). It leaves out the loyalty club's rate multiplier
    and the lasting part of m (it also lowers dropout at later orders)."""
    u = (np.arange(400) + 0.5) / 400
    p = st.beta.ppf(u, parameters["bgnbd_a"], parameters["bgnbd_b"])[:, None]
    lam = st.gamma.ppf(u, parameters["bgnbd_r"], scale=1 / parameters["bgnbd_alpha"])[None, :]
    horizon = (pd.Timestamp(parameters["end"]) - pd.Timestamp(parameters["start"])).days / 7 / 2
    seen = 1 - np.exp(-lam * p * horizon)
    w, v = float((seen / p).mean()), float(seen.mean())
    return (1 - e) * (1 + w - m * v) / (1 + w - v)


def _step(node: Any, key: str) -> Any:
    if isinstance(node, dict):
        return node[key]
    if isinstance(node, list) and node and isinstance(node[0], dict):
        return next(v for v in node if str(v.get("name")) == key)
    if isinstance(node, list) and node and isinstance(node[0], list):
        return next(v[1] for v in node if str(v[0]) == key)
    return node[int(key)]


def recorded(metrics: dict[str, Any], key: str) -> Any:
    """What a notebook's metrics.json holds at the dotted `key` of a registry metric
    (``Metric.key``, e.g. ``"ipw.ate"``): the nested value, or None when any step is absent."""
    node: Any = metrics
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def truth_value(metric: Metric, truth: dict[str, Any]) -> float:
    """The truth of `metric` in a company's ground truth (``read_truth(folder)``)."""
    if metric.truth.startswith("derived."):
        return float(derived_truths(truth["parameters"])[metric.truth.removeprefix("derived.")])
    node: Any = truth
    for key in metric.truth.split("."):
        try:
            node = _step(node, key)
        except (KeyError, IndexError, StopIteration, ValueError) as err:
            raise KeyError(f"{metric.key}: no truth at {metric.truth!r} ({key!r})") from err
    return float(node)
