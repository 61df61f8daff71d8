"""Loyalty club: staggered launch, join, earn, redeem, tier-up and expire events.

Who joins and when, and the purchase-rate effects of membership, tiers and the goal gradient, are
simulated with the orders (helpers.synth.purchases). Here the events are written from the orders:
every order of a member from the joining order on earns 1 point per EUR paid; at each earning
order a member redeems all full 500-point blocks with their own probability rho ~ Beta(a, b); the
whole balance expires `points_expiry_months` after the last earn or redeem; tiers are on lifetime
points since joining and never lost. :func:`ultimate_breakage` continues the members' lives past
the end of the data to give the share of the points earned that will never be redeemed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.synth.config import SynthConfig

# the purchase simulation's own multiplier (one source of the club's effect on the rate)
from helpers.synth.purchases import club_multiplier

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


def ultimate_breakage(
    cfg: SynthConfig,
    rng: np.random.Generator,
    events: pd.DataFrame,
    latent: pd.DataFrame,
    reps: int = 20,
    max_rounds: int = 5_000,
) -> dict[str, float]:
    """The share of the points earned up to the end of the data that will never be redeemed.

    At the end many points are still open. Their fate is decided after it, so the generator
    continues each member's own process `reps` times: a member alive at the end (``alive`` in
    `latent`, indexed by customer_id, with ``lam``, ``p_eff``, ``nu``, ``redeem_propensity``) buys
    at rate lam x the club's multiplier (uplift x tier lift x goal gradient), pays Gamma(gg_p, nu),
    earns, redeems all full blocks with probability rho and drops out with probability p after
    each order; a balance lapses `points_expiry_months` after the last activity (in 30.44-day
    months) and a member who dropped out loses it all. Points are used first in, first out, so
    the open points are the first to go. Service effects after the end are left out.

    Returns ``ultimate_breakage`` = (points expired so far + expected expiry of the open points)
    / points earned, and ``ultimate_breakage_open_points`` (the expected share of the open points
    that expire)."""
    earn = events[events["event_type"] == "earn"]
    earned = earn.groupby("customer_id")["points"].sum()
    earned = earned[earned > 0]
    ids = earned.index
    moves = events[events["event_type"].isin(["earn", "redeem", "expire"])]
    open_pts = moves.groupby("customer_id")["points"].sum().reindex(ids, fill_value=0)
    expired_so_far = float(-events.loc[events["event_type"] == "expire", "points"].sum())
    total_open = float(open_pts.sum())
    if not len(ids) or total_open <= 0:
        share = 0.0
    else:
        lat = latent.reindex(ids)
        last0 = earn.groupby("customer_id")["event_at"].max().reindex(ids)
        end = pd.Timestamp(cfg.end) + pd.Timedelta(days=1)
        tile = np.tile
        old = tile(open_pts.to_numpy(float), reps)
        old[~tile(lat["alive"].to_numpy(bool), reps)] = 0.0  # gone: every open point lapses
        lost = tile(open_pts.to_numpy(float), reps) - old
        balance = old.copy()
        lifetime = tile(earned.to_numpy(float), reps)
        thresholds = np.array([v for _, v in cfg.tiers])
        lam, p = tile(lat["lam"].to_numpy(), reps), tile(lat["p_eff"].to_numpy(), reps)
        nu, rho = tile(lat["nu"].to_numpy(), reps), tile(lat["redeem_propensity"].to_numpy(), reps)
        t = np.zeros(old.size)  # days since the end
        last = tile(((last0 - end) / pd.Timedelta(days=1)).to_numpy(), reps)
        keep_days = cfg.points_expiry_months * 30.4375
        for _ in range(max_rounds):
            i = np.flatnonzero(old > 0)
            if not i.size:
                break
            tier = np.searchsorted(thresholds, lifetime[i], side="right") - 1
            rate = lam[i] * club_multiplier(cfg, True, lifetime[i], tier)
            t_next = t[i] + 7.0 * rng.standard_exponential(i.size) / rate
            lapsed = t_next > last[i] + keep_days
            lost[i[lapsed]] += old[i[lapsed]]
            old[i[lapsed]] = 0.0
            balance[i[lapsed]] = 0.0
            pts = np.floor(np.maximum(rng.gamma(cfg.gg_p, 1.0 / nu[i]), 0.5) * cfg.points_per_eur)
            balance[i] += pts
            lifetime[i] += pts
            used = (balance[i] // cfg.redeem_block) * cfg.redeem_block
            used = np.where(rng.random(i.size) < rho[i], used, 0.0)
            old[i] -= np.minimum(old[i], used)
            balance[i] -= used
            t[i], last[i] = t_next, t_next
            gone = rng.random(i.size) < p[i]
            lost[i[gone]] += old[i[gone]]
            old[i[gone]] = 0.0
        share = float(lost.sum() / (total_open * reps))
    return {
        "ultimate_breakage": (expired_so_far + share * total_open) / float(earned.sum())
        if len(ids)
        else float("nan"),
        "ultimate_breakage_open_points": share,
    }
