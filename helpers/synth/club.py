"""Loyalty club: staggered launch, join, earn, redeem, tier-up and expire events.

Who joins and when, and the purchase-rate effects of membership, tiers and the goal gradient, are
simulated with the orders (helpers.synth.purchases). Here the events are written from the orders:
every order of a member from the joining order on earns 1 point per EUR paid; at each earning
order a member redeems all full 500-point blocks with their own probability rho ~ Beta(a, b); the
whole balance expires `points_expiry_months` after the last earn or redeem; tiers are on lifetime
points since joining and never lost.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.synth.config import SynthConfig

EVENT_ORDER = {"join": 0, "earn": 1, "redeem": 2, "tier_up": 3, "expire": 4}


def launches(cfg: SynthConfig) -> pd.DataFrame:
    """country, launch_date, pilot."""
    pilot = [c for c, _ in cfg.countries if c in cfg.loyalty_pilot_countries]
    rest = [c for c, _ in cfg.countries if c not in cfg.loyalty_pilot_countries]
    return pd.DataFrame(
        {
            "country": pilot + rest,
            "launch_date": [pd.Timestamp(cfg.loyalty_pilot_launch)] * len(pilot)
            + [pd.Timestamp(cfg.loyalty_launch)] * len(rest),
            "pilot": [True] * len(pilot) + [False] * len(rest),
        }
    )


def events(
    cfg: SynthConfig,
    rng: np.random.Generator,
    orders: pd.DataFrame,
    join_at: pd.Series,
    rho: pd.Series,
) -> tuple[pd.DataFrame, dict]:
    """loyalty_events and point totals (earned, redeemed, expired, outstanding at the end)."""
    o = orders.merge(join_at.rename("join_at"), left_on="customer_id", right_index=True)
    o = o[o["order_date"] >= o["join_at"]].sort_values(["customer_id", "order_date", "order_id"])
    earn = pd.DataFrame(
        {
            "customer_id": o["customer_id"].to_numpy(),
            "event_at": o["order_date"].to_numpy(),
            "points": np.floor(o["amount"].to_numpy() * cfg.points_per_eur).astype(int),
        }
    )
    cum = earn.groupby("customer_id")["points"].cumsum().to_numpy()
    prev = cum - earn["points"].to_numpy()
    # sequential balance: loop over each member's j-th earning order, vectorized across members
    rank = earn.groupby("customer_id").cumcount().to_numpy()
    cid = earn["customer_id"].to_numpy()
    members = np.unique(cid)
    pos = np.searchsorted(members, cid)
    balance = np.zeros(members.size, dtype=np.int64)
    last_act = np.full(members.size, np.datetime64("NaT"), dtype="datetime64[ns]")
    rho_m = rho.reindex(members).to_numpy()
    u = rng.random(len(earn))
    at = earn["event_at"].to_numpy()
    pts = earn["points"].to_numpy()
    red_rows, red_pts, exp_cust, exp_at, exp_pts = [], [], [], [], []
    months = cfg.points_expiry_months
    for j in range(int(rank.max()) + 1 if len(rank) else 0):
        r = np.flatnonzero(rank == j)
        mb = pos[r]
        if j > 0:
            lapse = pd.DatetimeIndex(last_act[mb]) + pd.DateOffset(months=months)
            gone = (lapse.to_numpy() < at[r]) & (balance[mb] > 0)
            exp_cust.append(cid[r][gone])
            exp_at.append(lapse.to_numpy()[gone])
            exp_pts.append(-balance[mb][gone])
            balance[mb[gone]] = 0
        balance[mb] += pts[r]
        blocks = balance[mb] // cfg.redeem_block
        red = (blocks > 0) & (u[r] < rho_m[mb])
        red_rows.append(r[red])
        red_pts.append(-blocks[red] * cfg.redeem_block)
        balance[mb[red]] -= blocks[red] * cfg.redeem_block
        last_act[mb] = at[r]
    end = pd.Timestamp(cfg.end) + pd.Timedelta(days=1)
    lapse = pd.DatetimeIndex(last_act) + pd.DateOffset(months=months)
    gone = (lapse < end) & (balance > 0)
    exp_cust.append(members[gone])
    exp_at.append(lapse.to_numpy()[gone])
    exp_pts.append(-balance[gone])
    balance[gone] = 0
    rr = np.concatenate(red_rows) if red_rows else np.array([], dtype=int)
    red = pd.DataFrame(
        {"customer_id": cid[rr], "event_at": at[rr] + np.timedelta64(1, "s"), "event_type": "redeem",
         "points": np.concatenate(red_pts) if red_pts else []}
    )  # fmt: skip
    expire = pd.DataFrame(
        {"customer_id": np.concatenate(exp_cust), "event_at": np.concatenate(exp_at), "event_type": "expire",
         "points": np.concatenate(exp_pts)}
    )  # fmt: skip
    tier_names = np.array([t for t, _ in cfg.tiers])
    thresholds = np.array([v for _, v in cfg.tiers])
    tier_now = np.searchsorted(thresholds, cum, side="right") - 1
    tier_before = np.searchsorted(thresholds, prev, side="right") - 1
    upm = tier_now > tier_before
    up = pd.DataFrame(
        {"customer_id": cid[upm], "event_at": at[upm] + np.timedelta64(2, "s"), "event_type": "tier_up",
         "points": 0, "tier": tier_names[tier_now[upm]]}
    )  # fmt: skip
    join = pd.DataFrame(
        {"customer_id": join_at.index, "event_at": join_at.to_numpy(), "event_type": "join", "points": 0,
         "tier": tier_names[0]}
    )  # fmt: skip
    ev = pd.concat([join, earn.assign(event_type="earn"), red, up, expire], ignore_index=True)
    ev["event_at"] = pd.to_datetime(ev["event_at"])
    ev["points"] = ev["points"].astype(int)
    ev = ev.assign(_o=ev["event_type"].map(EVENT_ORDER)).sort_values(
        ["event_at", "customer_id", "_o"], kind="stable"
    )
    ev["tier"] = ev.groupby("customer_id")["tier"].ffill()
    ev = ev.drop(columns="_o").reset_index(drop=True)
    ev.insert(0, "event_id", np.arange(1, len(ev) + 1))
    totals = {
        "points_earned": int(earn["points"].sum()),
        "points_redeemed": int(-red["points"].sum()),
        "points_expired": int(-expire["points"].sum()),
        "outstanding_points": int(balance.sum()),
    }
    return ev[["event_id", "customer_id", "event_at", "event_type", "points", "tier"]], totals
