"""Feedback: survey invitations, NPS answers with planted non-response bias, comments whose
delivery theme falls after the delivery fix, and the randomized detractor follow-up.

Every customer is invited 60 days after sign-up and yearly after. The score a customer *would*
give is round(base - slope * risk_z + noise - ticket penalty), clipped to 0..10, with risk_z the
probit of the rank of the customer's latent churn risk (p, or theta for subscribers). They answer
with P = expit(logit(nps_response_rate) + nps_response_risk_slope * risk_z): with a negative slope
unhappy customers answer less, so respondents' NPS overstates the population's (non-response
bias). NPS = % promoters (9-10) - % detractors (0-6) (Reichheld 2003).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from helpers.synth._common import risk_z
from helpers.synth.config import SynthConfig

TEMPLATES = {
    ("delivery", "neg"): ["Parcel arrived late again.", "Delivery took far too long and the box was damaged.",
                          "Courier lost my order, had to chase it."],
    ("delivery", "mid"): ["Delivery is ok but could be faster.", "Shipping takes a few days too many."],
    ("price", "neg"): ["Too expensive for what you get.", "Prices went up, I can find cheaper beans elsewhere."],
    ("price", "mid"): ["Good coffee but a bit pricey.", "Would order more with better prices."],
    ("taste", "neg"): ["The last roast tasted burnt.", "Beans were stale and flat."],
    ("taste", "mid"): ["Nice coffee, not always consistent.", "Some roasts are great, some are average."],
    ("taste", "pos"): ["Best espresso beans I have tried.", "Lovely flavour, the Ethiopian roast is superb."],
    ("customer service", "neg"): ["Nobody answered my complaint.", "Support was slow and unhelpful."],
    ("customer service", "pos"): ["Support fixed my problem within hours, great service.",
                                  "Friendly and quick customer service."],
    ("subscription flexibility", "neg"): ["Hard to pause or skip my subscription.",
                                          "Cancelling the subscription was a hassle."],
    ("website", "mid"): ["The website checkout is clunky.", "App could be easier to use."],
    ("freshness", "pos"): ["Always freshly roasted, you can taste it.", "Beans arrive days after roasting, very fresh."],
    ("sustainability", "pos"): ["Love the compostable packaging and fair sourcing.", "Great to see direct trade with farmers."],
}  # fmt: skip
THEMES = {
    "detractor": ["delivery", "price", "taste", "customer service", "subscription flexibility"],
    "passive": ["price", "delivery", "taste", "website"],
    "promoter": ["taste", "freshness", "customer service", "sustainability"],
}


def nps_value(score: np.ndarray) -> float:
    """NPS in points: 100 x (share of 9-10 minus share of 0-6)."""
    score = np.asarray(score)
    return float(100 * ((score >= 9).mean() - (score <= 6).mean())) if score.size else float("nan")


def risk_scores(lat: pd.DataFrame) -> np.ndarray:
    """Latent churn risk as a standard-normal score: theta's rank for subscribers, p's otherwise."""
    theta = lat["theta"].to_numpy()
    has_theta = ~np.isnan(theta)
    risk = risk_z(lat["p"].to_numpy())
    risk[has_theta] = risk_z(theta[has_theta])
    return risk


def response_propensity(cfg: SynthConfig, risk: np.ndarray) -> np.ndarray:
    """P(answering an invitation) per customer."""
    slope = cfg.nps_response_risk_slope if cfg.planted_effects else 0.0
    return special.expit(special.logit(cfg.nps_response_rate) + slope * risk)


def surveys(
    cfg: SynthConfig,
    rng: np.random.Generator,
    cust: pd.DataFrame,
    lat: pd.DataFrame,
    tickets: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """survey_invitations, nps_responses (with follow-up columns and, for the generator, the
    follow-up's common random number `u_followup`) and the population/respondent NPS."""
    end = pd.Timestamp(cfg.end)
    eff = cfg.planted_effects
    risk = risk_scores(lat)
    prop = response_propensity(cfg, risk)
    n_years = 4
    inv = pd.DataFrame(
        {
            "customer_id": np.repeat(cust["customer_id"].to_numpy(), n_years),
            "invited_at": (np.repeat(cust["signup_date"].dt.normalize().to_numpy(), n_years)
                           + pd.to_timedelta(np.tile(60 + 365 * np.arange(n_years), len(cust)), unit="D")),
            "risk": np.repeat(risk, n_years),
            "prop": np.repeat(prop, n_years),
        }
    )  # fmt: skip
    inv = (
        inv[inv["invited_at"] <= end]
        .sort_values(["invited_at", "customer_id"])
        .reset_index(drop=True)
    )
    m = len(inv)
    inv["responded"] = rng.random(m) < inv["prop"]
    inv["surveyed_at"] = inv["invited_at"] + pd.to_timedelta(
        rng.integers(9 * 3600, 21 * 3600, m), unit="s"
    )
    # tickets before the survey: worst outcome so far
    tk = tickets.assign(
        bad=np.select(
            [tickets["resolved_at"].isna(),
             (tickets["first_response_at"] - tickets["opened_at"]) >= pd.Timedelta(hours=24)],
            [2, 1], 0,
        )
    )[["customer_id", "opened_at", "bad", "topic"]].sort_values("opened_at")  # fmt: skip
    tk["worst"] = tk.groupby("customer_id")["bad"].cummax()
    rows = pd.merge_asof(
        inv.reset_index().sort_values("surveyed_at"), tk[["customer_id", "opened_at", "worst", "topic"]],
        left_on="surveyed_at", right_on="opened_at", by="customer_id", direction="backward",
    ).sort_values("index").reset_index(drop=True)  # fmt: skip
    worst = rows["worst"].fillna(-1).to_numpy()
    penalty = np.select(
        [worst == 2, worst == 1],
        [cfg.nps_penalty_unresolved if eff else 0, cfg.nps_penalty_poorly if eff else 0],
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
    # themes: uniform among the category's options; after the delivery fix a 'delivery' theme is
    # re-drawn among the others with probability delivery_fix_reduction
    theme = np.empty(m, dtype=object)
    u_theme, u_fix, u_alt = rng.random(m), rng.random(m), rng.random(m)
    after_fix = (rows["surveyed_at"] >= pd.Timestamp(cfg.delivery_fix_date)).to_numpy()
    for cat, options in THEMES.items():
        sel = category == cat
        opts = np.array(options)
        theme[sel] = opts[(u_theme[sel] * len(opts)).astype(int)]
        others = opts[opts != "delivery"]
        swap = (
            sel
            & (theme == "delivery")
            & after_fix
            & (u_fix < (cfg.delivery_fix_reduction if eff else 0))
        )
        theme[swap] = others[(u_alt[swap] * len(others)).astype(int)]
    # a detractor with a bad ticket talks about the service or the delivery
    ticket_theme = np.where(
        rows["topic"].isin(["delivery_delay", "damaged_package", "wrong_item"]),
        "delivery",
        "customer service",
    )
    theme = np.where((category == "detractor") & (worst >= 1), ticket_theme, theme)
    sentiment = np.select([category == "detractor", category == "passive"], ["neg", "mid"], "pos")
    comment = np.full(m, "", dtype=object)
    pick = rng.random(m)
    for (th, se), texts in TEMPLATES.items():
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
    # detractor follow-up: randomized, contact within 48 h
    u_group, u_hours, u_follow = rng.random(m), rng.random(m), rng.random(m)
    det = category == "detractor"
    group = np.where(det, np.where(u_group < cfg.followup_share, "treatment", "control"), "")
    delay = pd.to_timedelta(np.round((1 + 46 * u_hours) * 3600), unit="s")
    room = end + pd.Timedelta(days=1) - rows["surveyed_at"] - pd.Timedelta(seconds=1)
    delay = delay.where(delay <= room, room)  # a follow-up is in the data (before its end)
    followup_at = (rows["surveyed_at"] + delay).where(group == "treatment")
    full = pd.DataFrame(
        {
            "customer_id": rows["customer_id"], "invited_at": rows["invited_at"], "responded": rows["responded"],
            "surveyed_at": rows["surveyed_at"], "score": score, "comment": comment, "theme": theme,
            "followup_group": group, "followup_at": followup_at, "u_followup": u_follow,
        }
    )  # fmt: skip
    resp = full[full["responded"]].reset_index()
    resp.insert(1, "response_id", np.arange(1, len(resp) + 1))
    invitations = pd.DataFrame(
        {
            "invitation_id": np.arange(1, m + 1),
            "customer_id": full["customer_id"],
            "invited_at": full["invited_at"],
            "responded": full["responded"],
            "response_id": pd.array(
                pd.Series(resp["response_id"].to_numpy(), index=resp["index"]).reindex(full.index),
                dtype="Int64",
            ),
        }
    )
    truth = {
        "population_nps": nps_value(score),
        "respondent_nps": nps_value(score[full["responded"].to_numpy()]),
    }
    responses = resp.drop(columns=["index", "invited_at", "responded"])
    return invitations, responses, truth


def followup_dropouts(cfg: SynthConfig, responses: pd.DataFrame) -> pd.Series:
    """Earliest survey per customer at which a detractor drops out (P depends on the arm)."""
    if not cfg.planted_effects:
        return pd.Series(dtype="datetime64[ns]")
    d = np.where(responses["followup_group"] == "treatment", cfg.detractor_dropout_followup,
                 cfg.detractor_dropout_control)  # fmt: skip
    hit = responses[(responses["followup_group"] != "") & (responses["u_followup"] < d)]
    return hit.groupby("customer_id")["surveyed_at"].min()
