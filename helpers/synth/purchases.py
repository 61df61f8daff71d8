"""One-off orders: BG/NBD repeat buying with the planted effects that act while customers buy.

Time unit: weeks since sign-up. Each customer buys at rate ``lambda`` while alive and drops out
with probability ``p`` after each repeat order (Fader, Hardie & Lee 2005). The simulation loops
over purchase *rounds* (the k-th order of every customer at once). Every round draws its random
numbers for **all** customers in a fixed order, so the k-th order of a customer uses the same
random numbers in any world: running it again without the loyalty club gives the exact
counterfactual orders (common random numbers), from which the club's true effect is computed.

Acting inside the loop (with planted effects): service recovery and the resolution type (after a
ticket), the delivery fix (fewer delivery tickets), the loyalty club (staggered launch,
self-selected joining, rate uplift, tier lift, goal gradient) and the next-purchase coupon
experiment (offers after each order in the coupon period).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from helpers.synth._common import choice_u, pairs, weeks_since
from helpers.synth.config import SynthConfig

ORDER_COLUMNS = (
    "order_id", "customer_id", "order_date", "amount", "discount", "items", "channel", "returned",
    "campaign_id",
)  # fmt: skip
DELIVERY_TOPICS = ("delivery_delay", "damaged_package")


def money(
    cfg: SynthConfig,
    rng: np.random.Generator,
    nu: np.ndarray,
    prone: np.ndarray,
    hm: np.ndarray,
    fixed_rate: float | np.ndarray | None = None,
) -> pd.DataFrame:
    """Amount paid (Gamma-Gamma: z ~ Gamma(p, nu)), discount rate and EUR, items and return flag.

    The amount is net of discount; list price = amount / (1 - rate). `fixed_rate` (e.g. a coupon)
    replaces the regular discount rule where it is given (NaN keeps the rule).
    """
    m = nu.size
    amount = np.round(np.maximum(rng.gamma(cfg.gg_p, 1.0 / nu), 0.5), 2)
    lo, hi = cfg.discount_prone_rate
    u_share, u_rate = rng.random(m), rng.uniform(lo, hi, m)
    rate = np.where(
        prone,
        np.where(u_share < cfg.discount_prone_order_share, u_rate, 0.0),
        np.where(u_share < cfg.regular_discount_order_share, cfg.regular_discount_rate, 0.0),
    )
    if fixed_rate is not None:
        fixed = np.broadcast_to(np.asarray(fixed_rate, dtype=float), (m,))
        rate = np.where(np.isnan(fixed), rate, fixed)
    items = 1 + rng.poisson(np.maximum(amount / 20.0 - 0.6, 0.05))
    u_ret = rng.random(m)
    returned = u_ret < np.where(hm, cfg.high_maintenance_return_rate, cfg.return_rate)
    return pd.DataFrame(
        {
            "amount": amount,
            "rate": rate,
            "discount": np.round(amount / (1 - rate) - amount, 2),
            "items": items,
            "returned": returned,
        }
    )


def club_multiplier(cfg: SynthConfig, member, points, tier) -> np.ndarray:
    """Rate multiplier of members: uplift x tier lift x goal gradient (1 for non-members)."""
    lift = np.array([1.0] + [pairs(cfg.tier_rate_lift).get(t, 1.0) for t, _ in cfg.tiers[1:]])
    thresholds = np.array([v for _, v in cfg.tiers] + [np.inf])
    to_next = thresholds[tier + 1] - points
    near = to_next <= cfg.goal_gradient_window
    m = cfg.loyalty_rate_uplift * lift[tier] * np.where(near, cfg.goal_gradient_multiplier, 1.0)
    return np.where(member, m, 1.0)


def simulate(
    cfg: SynthConfig, rng: np.random.Generator, cust: pd.DataFrame, lat: pd.DataFrame, club: bool
) -> pd.DataFrame:
    """All organic orders (one row per order, weeks since sign-up in `t`) and their state.

    `club=False` runs the world without the loyalty club (the counterfactual). Returned columns:
    cust (row index), t, k (order number, 0 = sign-up), amount, rate, discount, items, returned,
    ticket (well/poorly/unresolved or ''), topic, res_type, tchannel, member (after the order),
    tier_before (tier at the order, -1 for non-members), points_after, offer (coupon arm, -1 none),
    coupon_used, natural_next (the previous offer's natural next order within the validity),
    induced (caused by the previous offer), dead (dropped out after the order), rate_after.
    """
    n = len(lat)
    eff = cfg.planted_effects
    club = club and eff
    lam, T = lat["lam"].to_numpy(), lat["T"].to_numpy()
    p_cur = lat["p_eff"].to_numpy().copy()
    nu, prone = lat["nu"].to_numpy(), lat["discount_prone"].to_numpy()
    hm = lat["high_maintenance"].to_numpy()
    signup = cust["signup_date"]
    launch_t = ((lat["country_launch"] - signup) / pd.Timedelta(days=7)).to_numpy()
    fix_t = weeks_since(cfg.delivery_fix_date, signup)
    cs_t = weeks_since(cfg.coupon_start, signup)
    ce_t = weeks_since(pd.Timestamp(cfg.end) - pd.Timedelta(days=cfg.coupon_valid_days - 1), signup)
    W = cfg.coupon_valid_days / 7
    arms = np.array(cfg.coupon_arms)
    arm_uplift = pairs(cfg.coupon_uplift)
    uplift_of = np.array([arm_uplift.get(int(a), 0.0) if eff else 0.0 for a in range(101)])
    ticket_p = np.where(hm, cfg.high_maintenance_ticket_rate, cfg.ticket_rate)
    thresholds = np.array([v for _, v in cfg.tiers])
    mean_lam = cfg.bgnbd_r / cfg.bgnbd_alpha

    t = np.zeros(n)
    active = np.ones(n, dtype=bool)
    dead = np.zeros(n, dtype=bool)
    offer = np.full(n, -1)
    member = np.zeros(n, dtype=bool)
    decided = np.zeros(n, dtype=bool)
    points = np.zeros(n)
    tier = np.zeros(n, dtype=int)
    rows: list[dict] = []
    k = 0
    while active.any():
        # --- when is the next order? (all draws have size n, in a fixed order) ---
        E = rng.standard_exponential(n)
        u_ind, u_pos = rng.random(n), rng.random(n)
        if k == 0:
            t_next = np.zeros(n)
            natural = np.zeros(n, dtype=bool)
            induced = np.zeros(n, dtype=bool)
        else:
            rate = lam * club_multiplier(cfg, member, points, tier)
            t_nat = np.where(dead, np.inf, t + E / rate)
            natural = active & (offer >= 0) & (t_nat - t <= W)
            induced = active & (offer > 0) & ~natural & (u_ind < uplift_of[np.maximum(offer, 0)])
            t_next = np.where(induced, t + u_pos * W, t_nat)
        new = active & (t_next <= T)
        # --- the order itself ---
        mo = money(cfg, rng, nu, prone, hm)
        used = new & (offer > 0) & (t_next - t <= W)
        pct = np.maximum(offer, 0) / 100.0
        amount = mo["amount"].to_numpy()
        amount = np.where(
            used & induced, np.maximum(amount, cfg.coupon_min_spend * (1 - pct)), amount
        )
        used &= amount / (1 - pct) >= cfg.coupon_min_spend - 1e-9
        rate_d = np.where(used, pct, mo["rate"].to_numpy())
        discount = np.round(amount / (1 - rate_d) - amount, 2)
        # loyalty: the first order on or after the launch decides membership
        u_join = rng.random(n)
        if club:
            chance = new & ~decided & (t_next >= launch_t)
            logit = cfg.loyalty_join_intercept + cfg.loyalty_join_slope * np.log(lam / mean_lam)
            joins = chance & (u_join < special.expit(logit))
            decided |= chance
            member |= joins
        tier_before = np.where(member, tier, -1)
        earned = np.where(member & new, np.floor(amount * cfg.points_per_eur), 0.0)
        points = points + earned
        tier = np.where(member, np.searchsorted(thresholds, points, side="right") - 1, 0)
        # tickets: delivery topics fall by the fix's reduction after its date
        u_tk, u_topic, u_fix, u_out, u_res, u_ch = (rng.random(n) for _ in range(6))
        topic = choice_u(u_topic, cfg.ticket_topics)
        has_ticket = u_tk < ticket_p
        if eff:
            has_ticket &= ~(
                np.isin(topic, DELIVERY_TOPICS)
                & (t_next >= fix_t)
                & (u_fix < cfg.delivery_fix_reduction)
            )
        outcome = np.where(has_ticket, choice_u(u_out, cfg.resolution_mix), "")
        res_type = np.where(
            outcome == "unresolved", "unresolved", choice_u(u_res, cfg.resolution_types)
        )
        # dropout after the order: BG/NBD drops out only after repeat orders (k >= 1)
        u_drop = rng.random(n)
        q = p_cur.copy() if k >= 1 else np.zeros(n)
        if eff:
            well = new & (outcome == "well")
            p_cur = np.where(well, p_cur * cfg.dropout_multiplier_well, p_cur)
            q = np.where(well, q * cfg.dropout_multiplier_well, q)
            resolved = (outcome == "well") | (outcome == "poorly")
            type_extra = np.zeros(n)
            for r, e in cfg.resolution_dropout_extra:
                type_extra[res_type == r] = e
            extra = np.select([outcome == "unresolved", outcome == "poorly"],
                              [cfg.dropout_extra_unresolved, cfg.dropout_extra_poorly], 0.0)  # fmt: skip
            q = 1 - (1 - q) * (1 - extra) * (1 - np.where(resolved, type_extra, 0.0))
        dead_new = u_drop < q
        # the next-purchase coupon offer made at this order (randomized arm)
        u_arm = rng.random(n)
        in_period = (t_next >= cs_t) & (t_next <= ce_t)
        offer_new = np.where(
            in_period, arms[np.minimum((u_arm * len(arms)).astype(int), len(arms) - 1)], -1
        )
        rate_after = np.where(dead_new, 0.0, lam * club_multiplier(cfg, member, points, tier))
        idx = np.flatnonzero(new)
        rows.append(
            {
                "cust": idx, "t": t_next[idx], "k": np.full(idx.size, k), "amount": amount[idx],
                "rate": rate_d[idx], "discount": discount[idx], "items": mo["items"].to_numpy()[idx],
                "returned": mo["returned"].to_numpy()[idx], "ticket": outcome[idx],
                "topic": topic[idx], "res_type": res_type[idx],
                "tchannel": choice_u(u_ch, cfg.ticket_channels)[idx], "member": member[idx],
                "tier_before": tier_before[idx], "points_after": points[idx],
                "offer": offer_new[idx], "coupon_used": used[idx], "natural_next": natural[idx],
                "induced": induced[idx], "dead": dead_new[idx], "rate_after": rate_after[idx],
            }
        )  # fmt: skip
        # --- state for the next round (only customers who ordered move on) ---
        t = np.where(new, t_next, t)
        dead = np.where(new, dead_new, dead)
        offer = np.where(new, offer_new, -1)
        active = new & (~dead | (offer > 0))
        k += 1
    out = pd.DataFrame({key: np.concatenate([r[key] for r in rows]) for key in rows[0]})
    return out.sort_values(["cust", "k"], kind="stable").reset_index(drop=True)


def simulate_bgnbd(cfg: SynthConfig, rng: np.random.Generator, lat: pd.DataFrame) -> pd.DataFrame:
    """Order times of plain BG/NBD (no planted effects), vectorized over the customers still alive
    and observed: fast enough for millions of customers (the benchmarks' scaled data)."""
    lam, p, T = lat["lam"].to_numpy(), lat["p"].to_numpy(), lat["T"].to_numpy()
    t = np.zeros(len(lat))
    idx = np.arange(len(lat))
    rounds, k = [], 0
    while idx.size:
        if k > 0:
            t_new = t[idx] + rng.exponential(1.0 / lam[idx])
            seen = t_new <= T[idx]
            idx, t_new = idx[seen], t_new[seen]
            t[idx] = t_new
        if not idx.size:
            break
        rounds.append(pd.DataFrame({"cust": idx, "t": t[idx], "k": k}))
        q = p[idx] if k >= 1 else np.zeros(idx.size)
        idx = idx[rng.random(idx.size) >= q]
        k += 1
    return pd.concat(rounds, ignore_index=True)


def prune(o: pd.DataFrame, drop: pd.Series) -> pd.DataFrame:
    """The orders of `o` (customer_id, order_date) without those placed after the customer's
    dropout date in `drop` (indexed by customer_id; customers not in it keep every order)."""
    d = drop.reindex(o["customer_id"]).to_numpy()
    return o[~(o["order_date"].to_numpy() > d)]


def counted_before(o: pd.DataFrame, drop: pd.Series, key: pd.DataFrame, days: int) -> pd.Series:
    """For each row of `key` (customer_id, at): any order of `o` in (at, at + days], counting an
    order unless the customer dropped out *before* `at` (a dropout at or after `at` is the effect
    being measured, so it is ignored). Boolean Series on `key`'s index."""
    k = key[["customer_id", "at"]].reset_index()
    m = k.merge(o[["customer_id", "order_date"]], on="customer_id")
    d = drop.reindex(m["customer_id"]).to_numpy()
    inside = (m["order_date"] > m["at"]) & (m["order_date"] <= m["at"] + pd.Timedelta(days=days))
    gone = d < m["at"].to_numpy()
    hit = m[inside & ~gone].groupby("index").size()
    return pd.Series(key.index.isin(hit.index), index=key.index)
