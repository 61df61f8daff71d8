"""Randomized campaigns: birthday, sign-up anniversary and win-back sends, with heterogeneous
effects, sleeping dogs, costs per send and a coupon that customers who buy anyway also use.

Each send gets a randomized group; a treated send to a customer with no organic order in the
window causes an extra (campaign) order with the send's individual probability ``uplift``
(birthday: x multiplier for loyalty members; win-back: x multipliers for discount-prone and
recently lapsed customers; 0 for sleeping dogs). A treated sleeping dog drops out at the send with
probability ``sleeping_dog_dropout``. The true individual effect on 30-day conversion is
``tau = uplift (1 - q0) - dropout q0``, q0 = P(organic order in the window) (Radcliffe 2007 calls
the targets of negative tau "sleeping dogs").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.synth._common import pairs
from helpers.synth.config import SynthConfig

SEND_COLUMNS = (
    "send_id", "campaign_id", "campaign_type", "customer_id", "group", "sent_at", "medium",
    "send_cost", "pre_spend_90d", "converted", "revenue_30d", "coupon_used", "coupon_discount",
)  # fmt: skip


def calendar_sends(cfg: SynthConfig, cust: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Birthday and sign-up anniversary sends: one per e-mail-opted-in customer and year, before
    the customer's opt-out."""
    start = pd.Timestamp(cfg.start)
    end = pd.Timestamp(cfg.end) - pd.Timedelta(days=cfg.campaign_window_days)
    years = np.arange(start.year, end.year + 1)
    c = cust[cust["email_opt_in"]]
    base = c["birth_date"] if kind == "birthday" else c["signup_date"].dt.normalize()
    ids = np.repeat(c["customer_id"].to_numpy(), len(years))
    yr = np.tile(years, len(c))
    month = np.repeat(base.dt.month.to_numpy(), len(years))
    day = np.minimum(np.repeat(base.dt.day.to_numpy(), len(years)), 28)
    sent = pd.to_datetime(pd.DataFrame({"year": yr, "month": month, "day": day}))
    signup = np.repeat(c["signup_date"].to_numpy(), len(years))
    opt_out = np.repeat(c["email_opt_out_at"].to_numpy(), len(years))
    min_age = pd.Timedelta(days=300) if kind == "anniversary" else pd.Timedelta(0)
    ok = (sent > signup + min_age) & (sent <= end) & ~(sent >= opt_out)
    return pd.DataFrame(
        {"campaign_id": [f"{kind}-{y}" for y in yr], "customer_id": ids, "sent_at": sent,
         "campaign_type": kind}
    )[ok.to_numpy()].reset_index(drop=True)  # fmt: skip


def winback_sends(cfg: SynthConfig, cust: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """Quarterly win-back sends to opted-in customers with no order in the last
    `winback_lapsed_days` (and not opted out); `days_lapsed` is kept for the effect."""
    sends = pd.date_range(
        pd.Timestamp(cfg.start) + pd.DateOffset(months=6),
        pd.Timestamp(cfg.end) - pd.Timedelta(days=cfg.campaign_window_days),
        freq="QS",
    )
    c = cust[cust["email_opt_in"]]
    o = orders.loc[orders["customer_id"].isin(c["customer_id"]), ["customer_id", "order_date"]]
    grid = pd.DataFrame(
        {
            "customer_id": np.repeat(c["customer_id"].to_numpy(), len(sends)),
            "sent_at": np.tile(sends.to_numpy(), len(c)),
            "opt_out": np.repeat(c["email_opt_out_at"].to_numpy(), len(sends)),
        }
    ).sort_values("sent_at")
    last = pd.merge_asof(
        grid, o.sort_values("order_date").rename(columns={"order_date": "last_order"}),
        left_on="sent_at", right_on="last_order", by="customer_id", direction="backward",
    )  # fmt: skip
    gap = last["sent_at"] - last["last_order"]
    keep = (
        last["last_order"].notna()
        & (gap >= pd.Timedelta(days=cfg.winback_lapsed_days))
        & ~(last["sent_at"] >= last["opt_out"])
    )
    df = last.loc[keep, ["customer_id", "sent_at"]].assign(days_lapsed=gap[keep].dt.days)
    df = df.sort_values(["sent_at", "customer_id"]).reset_index(drop=True)
    q = df["sent_at"].dt.quarter.astype(str)
    df.insert(0, "campaign_id", "winback-" + df["sent_at"].dt.year.astype(str) + "Q" + q)
    df["campaign_type"] = "winback"
    return df


def assign(
    cfg: SynthConfig,
    rng: np.random.Generator,
    sends: pd.DataFrame,
    cust: pd.DataFrame,
    lat: pd.DataFrame,
    join_at: pd.Series,
) -> pd.DataFrame:
    """Randomize the group and the medium, and attach each send's planted individual effect
    (`uplift`, `dropout`) and its common random numbers (`u_ind`, `u_drop`, `u_coupon`)."""
    m = len(sends)
    kind = sends["campaign_type"].to_numpy()
    share = np.select(
        [kind == "birthday", kind == "anniversary"],
        [cfg.birthday_treatment_share, cfg.anniversary_treatment_share],
        cfg.winback_treatment_share,
    )
    out = sends.copy()
    out["group"] = np.where(rng.random(m) < share, "treatment", "control")
    row = sends["customer_id"].to_numpy() - 1
    sms = cust["sms_opt_in"].to_numpy()[row] & (rng.random(m) < cfg.campaign_sms_share)
    out["medium"] = np.where(sms, "sms", "email")
    cost = pairs(cfg.campaign_cost_per_send)
    out["send_cost"] = np.where(
        out["group"] == "treatment", out["medium"].map(cost).to_numpy(dtype=float), 0.0
    )
    is_member = join_at.reindex(sends["customer_id"]).to_numpy() <= sends["sent_at"].to_numpy()
    prone = lat["discount_prone"].to_numpy()[row]
    lapsed = sends["days_lapsed"].to_numpy() if "days_lapsed" in sends else np.full(m, np.nan)
    up = np.select(
        [kind == "birthday", kind == "anniversary"],
        [
            cfg.birthday_uplift * np.where(is_member, cfg.birthday_uplift_member_multiplier, 1.0),
            np.full(m, cfg.anniversary_uplift),
        ],
        cfg.winback_uplift
        * np.where(prone, cfg.winback_uplift_discount_prone_multiplier, 1.0)
        * np.where(lapsed < cfg.winback_recent_days, cfg.winback_uplift_recent_multiplier, 1.0),
    )
    sleeping = lat["sleeping_dog"].to_numpy()[row]
    eff = cfg.planted_effects
    out["uplift"] = np.where(sleeping | (not eff), 0.0, up)
    out["dropout"] = np.where(sleeping & eff, cfg.sleeping_dog_dropout, 0.0)
    out["u_ind"], out["u_drop"], out["u_coupon"], out["u_pos"] = (rng.random(m) for _ in range(4))
    return out


def dropouts(sends: pd.DataFrame) -> pd.Series:
    """The earliest send per customer at which a treated sleeping dog drops out."""
    hit = sends[(sends["group"] == "treatment") & (sends["u_drop"] < sends["dropout"])]
    return hit.groupby("customer_id")["sent_at"].min()


def any_order_in_window(
    sends: pd.DataFrame, orders: pd.DataFrame, days: int, value: str | None = None
) -> pd.DataFrame:
    """For each send (index kept): whether `orders` has an order in [sent_at, sent_at + days], the
    first such order's id, and the sum of `value` over them."""
    s = sends[["customer_id", "sent_at"]].reset_index()
    cols = ["customer_id", "order_date", "order_id"] + ([value] if value else [])
    pairs_ = s.merge(orders[cols], on="customer_id")
    inside = (pairs_["order_date"] >= pairs_["sent_at"]) & (
        pairs_["order_date"] <= pairs_["sent_at"] + pd.Timedelta(days=days)
    )
    pairs_ = pairs_[inside].sort_values(["index", "order_date"])
    g = pairs_.groupby("index")
    out = pd.DataFrame(index=sends.index)
    out["any"] = out.index.isin(g.size().index)
    out["first_order_id"] = g["order_id"].first().reindex(out.index)
    if value:
        out["total"] = g[value].sum().reindex(out.index, fill_value=0.0)
    return out
