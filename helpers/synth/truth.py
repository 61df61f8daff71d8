"""The generator's truth: per-customer and per-send truth tables and ground_truth.json, and the
one reader of a written company's truth (:func:`read_truth`).

Realized effects are computed from the simulation's own potential outcomes: the orders of the
world without the loyalty club (same random numbers), each send's would-be induced order and
sleeping-dog dropout, each coupon offer's natural and induced next order, each detractor's
dropout under both arms of the follow-up experiment.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Literal, overload

import numpy as np
import pandas as pd

from helpers import paths
from helpers.synth import acquisition, coupons, purchases, surveys
from helpers.synth._common import pairs
from helpers.synth.config import SynthConfig

#: Moved to :mod:`helpers.synth.coupons` (a mechanism, not truth). Kept only while
#: tests/test_experiments.py still calls ``truth.coupon_offers``; remove once it imports coupons.
coupon_offers = coupons.coupon_offers

#: The truth files written beside the tables: ``truth_<name>.csv`` (what a real company never
#: sees; used only to check estimates).
TRUTH_TABLES = ("truth_customers", "truth_campaign_sends", "truth_coupon_offers")
#: Columns of the truth files read as timestamps.
_TRUTH_DATES = {"truth_customers": ["dropout_at"]}

TruthTable = Literal["customers", "campaign_sends", "coupon_offers"]


@overload
def read_truth(data_dir: str | Path | None = None, *, table: None = None) -> dict: ...


@overload
def read_truth(data_dir: str | Path | None = None, *, table: TruthTable) -> pd.DataFrame: ...


def read_truth(
    data_dir: str | Path | None = None, *, table: TruthTable | None = None
) -> dict | pd.DataFrame:
    """The truth of the company written to `data_dir` (default: the bundled datasets/).

    Without `table`: ground_truth.json as a dict (``parameters``, ``realized`` and the ids of the
    latent customer types). With `table` (``"customers"``, ``"campaign_sends"`` or
    ``"coupon_offers"``, the ``truth_`` prefix optional): that truth file as a DataFrame, with
    ``truth_customers.dropout_at`` parsed as a timestamp (NaT: never dropped out).
    """
    folder = paths.data_dir(data_dir)
    if table is None:
        path = folder / "ground_truth.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"{paths.shown(path)}: no ground truth in {paths.shown(folder)}"
            )
        return json.loads(path.read_text())
    name = table if table.startswith("truth_") else f"truth_{table}"
    if name not in TRUTH_TABLES:
        known = ", ".join(t.removeprefix("truth_") for t in TRUTH_TABLES)
        raise ValueError(f"read_truth(table={table!r}): unknown truth table; one of {known}")
    path = folder / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{paths.shown(path)}: no truth file {name}.csv")
    return pd.read_csv(path, parse_dates=_TRUTH_DATES.get(name, []))


def coupon_truth(cfg: SynthConfig, offers: pd.DataFrame, offers_truth: pd.DataFrame) -> dict:
    """ground_truth.json's ``realized.coupons``: the control arm's natural next-order rate and, per
    discount arm, the true conversion uplift = the share of the arm's offers whose next order the
    coupon induced. An induced order only happens when no natural one falls in the validity, so
    with randomized arms E[conv_arm - conv_0] = P(natural or induced) - P(natural) = P(induced):
    the arm-vs-control difference in conversion estimates exactly this truth."""
    eff = cfg.planted_effects
    ot = offers_truth
    coup: dict = {
        "control_conversion": float(ot.loc[offers["discount_pct"] == 0, "natural"].mean())
    }
    for pct in cfg.coupon_arms:
        if pct == 0:
            continue
        a = (offers["discount_pct"] == pct).to_numpy()
        coup[str(pct)] = {
            "offers": int(a.sum()),
            "true_conversion_uplift": float(ot.loc[a, "induced"].mean()),
            "cannibalized_discount_per_offer": float(
                (ot.loc[a, "used_discount"] * ot.loc[a, "natural"]).mean()
            ),
            "coupon_uplift": pairs(cfg.coupon_uplift).get(pct, 0.0) if eff else 0.0,
        }
    return coup


def _months_between(a: pd.Series, b: pd.Timestamp) -> np.ndarray:
    """Calendar months from a's month to b's month, inclusive (0 if a is after b)."""
    n = (b.year * 12 + b.month) - (a.dt.year * 12 + a.dt.month) + 1
    return np.maximum(n.to_numpy(), 0)


def within_member_multiplier(cfg: SynthConfig, ctx: dict) -> float:
    """The multiplier a within-member rate model with one state after joining estimates: members'
    expected orders after joining with the club against their own expected orders without it,
    over the same exposure (from the joining order to the end, their dropout, or a later
    dropout caused by a send or the follow-up, while alive):

        sum_i lam_i m_i(t) dt / sum_i lam_i dt = sum_j rate_after_j d_j / sum_j lam_j d_j

    over members' inter-order gaps j after joining (d_j weeks to the next order or to the end;
    the rate is constant between orders: the club's multiplier, uplift x tier lift x goal
    gradient, changes only at an order, :func:`helpers.synth.purchases.club_multiplier`). Its
    exposure weighting is the rate model's (its likelihood's score for a single multiplier u is
    sum of orders - u sum lam d), so it averages the base uplift with the tier and goal-gradient
    lifts the members spend time in; with the club's planted effects off it is 1 (NaN without
    members)."""
    sim, lat, cust, drop = ctx["sim"], ctx["lat"], ctx["cust"], ctx["drop"]
    s = sim.sort_values(["cust", "k"], kind="stable")
    c = s["cust"].to_numpy()
    nxt = s.groupby("cust")["t"].shift(-1).to_numpy()
    end = np.where(np.isnan(nxt), lat["T"].to_numpy()[c], nxt)
    signup = pd.to_datetime(cust["signup_date"].to_numpy()[c])
    gone = pd.to_datetime(drop.reindex(s["customer_id"]).to_numpy())
    gone_t = np.asarray((gone - signup) / pd.Timedelta(days=7), dtype=float)
    end = np.minimum(end, np.where(np.isnan(gone_t), np.inf, gone_t))
    dur = np.maximum(end - s["t"].to_numpy(), 0.0)
    ok = (
        s["member"].to_numpy(bool)
        & s["customer_id"].isin(ctx["join_at"].index).to_numpy()
        & ~s["dead"].to_numpy(bool)
    )
    lam = lat["lam"].to_numpy()[c]
    den = float((lam * dur)[ok].sum())
    return float((s["rate_after"].to_numpy() * dur)[ok].sum()) / den if den > 0 else float("nan")


def _loyalty_truth(cfg: SynthConfig, tables: dict, ctx: dict) -> dict:
    cust, organic, join_at = ctx["cust"], ctx["organic"], ctx["join_at"]
    cf = purchases.prune(ctx["cf"], ctx["drop"])
    launch = cust.set_index("customer_id")["country"].map(
        tables["loyalty_launches"].set_index("country")["launch_date"]
    )
    end = pd.Timestamp(cfg.end)

    def after(o: pd.DataFrame, when: pd.Series, upto: pd.Series | None = None) -> int:
        w = when.reindex(o["customer_id"]).to_numpy()
        ok = o["order_date"].to_numpy() >= w
        if upto is not None:
            ok &= o["order_date"].to_numpy() < upto.reindex(o["customer_id"]).to_numpy()
        return int(ok.sum())

    jm = join_at + pd.Timedelta(seconds=1)
    a_mem, c_mem = after(organic, jm), after(cf, jm)
    a_all, c_all = after(organic, launch), after(cf, launch)
    signup = cust.set_index("customer_id")["signup_date"]
    first = pd.concat([signup.dt.to_period("M").dt.to_timestamp(), launch], axis=1).max(axis=1)
    cm = int(_months_between(first, end).sum())
    pilot = cust.set_index("customer_id")["country"].isin(cfg.loyalty_pilot_countries)
    pl = launch[pilot]
    rest_launch = pd.Series(pd.Timestamp(cfg.loyalty_launch), index=pl.index)
    a_p = after(organic[organic["customer_id"].isin(pl.index)], pl, rest_launch)
    c_p = after(cf[cf["customer_id"].isin(pl.index)], pl, rest_launch)
    first_p = pd.concat([signup[pilot].dt.to_period("M").dt.to_timestamp(), pl], axis=1).max(axis=1)
    cm_p = int(
        _months_between(first_p, pd.Timestamp(cfg.loyalty_launch) - pd.Timedelta(days=1)).sum()
    )
    ev = tables["loyalty_events"]
    reached = ev.groupby("customer_id")["tier"].last()
    names = [t for t, _ in cfg.tiers]
    rank = reached.map({t: i for i, t in enumerate(names)})
    n_mem = max(len(join_at), 1)
    weeks = ((end + pd.Timedelta(days=1) - signup).dt.days / 7).clip(lower=1)
    rate = (
        tables["orders"].groupby("customer_id").size().reindex(signup.index, fill_value=1) - 1
    ) / weeks
    mem = signup.index.isin(join_at.index)
    cost = pairs(cfg.tier_benefit_cost)
    tb = organic["tier_before"].to_numpy()
    benefit = sum(float((tb == i).sum()) * cost.get(t, 0.0) for i, t in enumerate(names))
    pts = ctx["points"]
    return {
        "launch_dates": {
            r.country: r.launch_date.strftime("%Y-%m-%d")
            for r in tables["loyalty_launches"].itertuples()
        },
        "members": int(len(join_at)),
        "share_silver_or_gold": float((rank >= 1).sum() / n_mem),
        "share_gold": float((rank >= 2).sum() / n_mem),
        "member_att_ratio": a_mem / c_mem if c_mem else float("nan"),
        "member_orders_after_joining": a_mem,
        "member_orders_after_joining_counterfactual": c_mem,
        "launch_att_ratio": a_all / c_all if c_all else float("nan"),
        "launch_att_orders_per_customer_month": (a_all - c_all) / cm if cm else float("nan"),
        "launch_customer_months": cm,
        "pilot_att_ratio": a_p / c_p if c_p else float("nan"),
        # the report's within-member rate model (one state after joining) targets this average
        "within_member_multiplier": within_member_multiplier(cfg, ctx),
        "pilot_att_orders_per_customer_month": (a_p - c_p) / cm_p if cm_p else float("nan"),
        "naive_rate_ratio": float(rate[mem].mean() / rate[~mem].mean())
        if mem.any()
        else float("nan"),
        "tier_benefit_cost_eur": round(benefit, 2),
        **pts,
        "breakage_rate": pts["points_expired"] / pts["points_earned"]
        if pts["points_earned"]
        else float("nan"),
        "outstanding_liability_eur": round(pts["outstanding_points"] * cfg.point_value_eur, 2),
    }


def ground_truth(cfg: SynthConfig, tables: dict, ctx: dict) -> tuple[dict[str, pd.DataFrame], dict]:
    cust, lat, sim, sends = ctx["cust"], ctx["lat"], ctx["sim"], ctx["sends"]
    drop, dropout_at = ctx["drop"], ctx["dropout_at"]
    W = cfg.campaign_window_days
    eff = cfg.planted_effects

    # --- per-customer truth
    members = ctx["join_at"].index
    tc = pd.DataFrame(
        {
            "customer_id": cust["customer_id"],
            "lam": lat["lam"].round(5), "p": lat["p"].round(5), "nu": lat["nu"].round(5),
            "theta": np.round(ctx["theta"], 5),
            "discount_prone": lat["discount_prone"], "high_maintenance": lat["high_maintenance"],
            "sleeping_dog": lat["sleeping_dog"],
            "dropout_at": dropout_at.to_numpy(),
            "redeem_propensity": np.where(cust["customer_id"].isin(members), lat["redeem_propensity"].round(4), np.nan),
            "response_propensity": np.round(surveys.response_propensity(cfg, surveys.risk_scores(lat)), 4),
        }
    )  # fmt: skip

    # --- per-send truth
    key = sends.rename(columns={"sent_at": "at"}).assign(
        at=lambda d: d["at"] - pd.Timedelta(seconds=1)
    )
    y0 = purchases.counted_before(sim, drop, key, W).to_numpy()
    would_induce = (sends["u_ind"] < sends["uplift"]).to_numpy() & ~ctx["y0_pre"].to_numpy()
    trig = ctx["triggered"]
    y1 = np.where(trig, False, y0 | would_induce)
    d = dropout_at.reindex(sends["customer_id"]).to_numpy()
    alive = ~(d <= sends["sent_at"].to_numpy())
    st = sim[["customer_id", "order_date", "rate_after"]].sort_values("order_date")
    ra = pd.merge_asof(
        sends[["customer_id", "sent_at"]].reset_index().sort_values("sent_at"), st,
        left_on="sent_at", right_on="order_date", by="customer_id", direction="backward",
    ).sort_values("index")["rate_after"].fillna(0.0).to_numpy()  # fmt: skip
    q0 = alive * (1 - np.exp(-ra * W / 7))
    tau = sends["uplift"].to_numpy() * (1 - q0) - sends["dropout"].to_numpy() * q0
    ts = pd.DataFrame(
        {"send_id": sends["send_id"], "alive": alive, "uplift": sends["uplift"].round(4), "tau": np.round(tau, 5),
         "y0": y0, "y1": y1}
    )  # fmt: skip
    treated = (sends["group"] == "treatment").to_numpy()
    cand = ctx["cand"]
    cann = pd.Series(
        ctx["organic"].loc[cand["rid"], "discount"].to_numpy(), index=cand["send"].to_numpy()
    )
    base = {
        "birthday": cfg.birthday_uplift,
        "anniversary": cfg.anniversary_uplift,
        "winback": cfg.winback_uplift,
    }
    camp = {}
    for kind in ("anniversary", "birthday", "winback"):
        k = (sends["campaign_type"] == kind).to_numpy()
        tk = k & treated
        camp[kind] = {
            "sends": int(k.sum()),
            "treated": int(tk.sum()),
            "true_uplift_mechanism": base[kind] if eff else 0.0,
            "mean_uplift": float(sends.loc[k, "uplift"].mean()) if k.any() else 0.0,
            "true_att": float((y1[tk].astype(int) - y0[tk].astype(int)).mean())
            if tk.any()
            else 0.0,
            "true_ate": float(tau[k].mean()) if k.any() else 0.0,
            "cannibalized_discount_per_treated_send": float(
                cann[cann.index.isin(np.flatnonzero(tk))].sum() / max(tk.sum(), 1)
            ),
            "send_cost_eur": round(float(sends.loc[k, "send_cost"].sum()), 2),
        }

    # --- coupons
    coup = coupon_truth(cfg, tables["coupon_offers"], ctx["offers_truth"])

    # --- feedback: follow-up experiment, delivery fix, resolution types
    resp = ctx["responses"]
    end = pd.Timestamp(cfg.end)
    ex = resp[
        (resp["followup_group"] != "") & (resp["surveyed_at"] <= end - pd.Timedelta(days=180))
    ]
    k2 = ex.rename(columns={"surveyed_at": "at"})
    org_any = purchases.counted_before(sim, drop, k2, 180).to_numpy()
    co = ctx["camp_orders"].rename(columns={"order_date": "order_date"})
    ind_any = purchases.counted_before(co, pd.Series(dtype="datetime64[ns]"), k2, 180).to_numpy()
    u = ex["u_followup"].to_numpy()
    y1f = ind_any | (org_any & (u >= (cfg.detractor_dropout_followup if eff else 0)))
    y0f = ind_any | (org_any & (u >= (cfg.detractor_dropout_control if eff else 0)))
    xtra = pairs(cfg.resolution_dropout_extra)
    ref = 1 - (xtra.get("refund", 0.0) if eff else 0.0)
    tk = tables["support_tickets"]
    deliv = tk["topic"].isin(["delivery_delay", "damaged_package"])
    o = tables["orders"]
    fix = pd.Timestamp(cfg.delivery_fix_date)
    nb, na = int((o["order_date"] < fix).sum()), int((o["order_date"] >= fix).sum())
    feedback_t = {
        **ctx["nps_truth"],
        "followup_experiment_responses": int(len(ex)),
        "followup_true_effect_buy_again_180d": float((y1f.astype(int) - y0f.astype(int)).mean())
        if len(ex)
        else 0.0,
        "delivery_fix_date": cfg.delivery_fix_date,
        "delivery_fix_reduction": cfg.delivery_fix_reduction if eff else 0.0,
        "delivery_tickets_per_order_before": float(
            ((tk["opened_at"] < fix) & deliv).sum() / max(nb, 1)
        ),
        "delivery_tickets_per_order_after": float(
            ((tk["opened_at"] >= fix) & deliv).sum() / max(na, 1)
        ),
        "repurchase_ratio_vs_refund": {
            r: (1 - (xtra.get(r, 0.0) if eff else 0.0)) / ref
            for r, _ in cfg.resolution_types
            if r != "refund"
        },
    }

    # --- engagement: opt-outs per cadence (monthly rate among customers still subscribed)
    eng = ctx["eng"]
    e = eng[eng["emails_sent"] > 0].merge(
        tables["customers"][["customer_id", "newsletters_per_month"]], on="customer_id"
    )
    g = e.groupby("newsletters_per_month")["email_opt_out"].agg(["sum", "size"])
    engagement_t = {
        "email_optout_per_email": cfg.email_optout_per_email if eff else 0.0,
        "monthly_optout_rate_by_cadence": {
            str(k): float(v["sum"] / v["size"]) for k, v in g.iterrows()
        },
        "customers_dropped_out": int(dropout_at.notna().sum()),
    }

    # --- the first edition's facts
    theta = ctx["theta"]
    score = tables["nps_responses"].groupby("customer_id")["score"].first()
    cat = pd.cut(score, [-1, 6, 8, 10], labels=["detractor", "passive", "promoter"])
    risk_p = pd.Series(
        np.where(np.isnan(theta), lat["p"].to_numpy(), np.nan), index=cust["customer_id"]
    )
    risk_theta = pd.Series(theta, index=cust["customer_id"])

    def by_category(risk: pd.Series) -> dict[str, float]:
        means = risk.reindex(cat.index).dropna().groupby(cat, observed=True).mean()
        return {str(k): float(v) for k, v in means.items()}

    lam = lat["lam"].to_numpy()
    mem = cust["customer_id"].isin(members).to_numpy()
    realized = {
        "n_customers": len(cust),
        "n_orders": len(tables["orders"]),
        "n_subscriptions": len(tables["subscriptions"]),
        "loyalty_members": int(mem.sum()),
        "loyalty_mean_lambda_members_over_nonmembers": float(lam[mem].mean() / lam[~mem].mean())
        if mem.any()
        else float("nan"),
        "discount_prone_customers": int(lat["discount_prone"].sum()),
        "high_maintenance_customers": int(lat["high_maintenance"].sum()),
        "sleeping_dogs": int(lat["sleeping_dog"].sum()),
        "mean_dropout_p_by_first_nps_category_nonsubscribers": by_category(risk_p),
        "mean_theta_by_first_nps_category_subscribers": by_category(risk_theta),
        "campaigns": camp,
        "coupons": coup,
        "loyalty": _loyalty_truth(cfg, tables, ctx),
        "feedback": feedback_t,
        "engagement": engagement_t,
        "acquisition": acquisition.truth(ctx["spend"]),
        "subscriptions": {
            "sub_hr_bad_ticket": cfg.sub_hr_bad_ticket if eff else 1.0,
            "sub_hr_visits_drop": cfg.sub_hr_visits_drop if eff else 1.0,
            "definition": "monthly churn P = 1 - (1 - theta)^HR; HR multiplies the hazard -log(1 - theta)",
            "sbg_by_plan_and_channel": {
                f"{pl.name}|{ch}": {
                    "alpha": pl.alpha,
                    "beta": pl.beta
                    * (pairs(cfg.sub_beta_multiplier_channel).get(ch, 1.0) if eff else 1.0),
                }
                for pl in cfg.plans
                for ch, _ in cfg.channels
            },
        },
    }
    gt = {
        "description": "Copperleaf Roasters sample data: generating parameters and realized facts (helpers.synth)",
        "parameters": json.loads(json.dumps(asdict(cfg))),
        "realized": _clean(realized),
        "high_maintenance_customer_ids": cust["customer_id"][
            lat["high_maintenance"].to_numpy()
        ].tolist(),
        "discount_prone_customer_ids": cust["customer_id"][
            lat["discount_prone"].to_numpy()
        ].tolist(),
    }
    return {
        "truth_customers": tc,
        "truth_campaign_sends": ts,
        "truth_coupon_offers": ctx["offers_truth"].drop(columns="used_discount"),
    }, gt


def _clean(x):
    """Round floats to 6 significant digits (stable JSON across platforms) and NaN to None."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if np.isnan(x) else float(f"{float(x):.6g}")
    if isinstance(x, np.integer):
        return int(x)
    return x
