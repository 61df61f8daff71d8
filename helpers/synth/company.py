"""The whole company: runs the mechanisms in order and assembles the tables and the truth.

Order of the mechanisms (each with its own random stream, helpers.synth._common.STREAMS):
customers -> e-mail opt-outs -> orders (and, with the same random numbers, the counterfactual
orders without the loyalty club) -> calendar campaigns -> sleeping-dog dropouts -> win-back
campaigns -> tickets -> surveys and the detractor follow-up -> dropouts applied to the orders ->
campaign orders and coupon use -> engagement -> subscriptions -> loyalty events -> coupon offers
-> marketing spend -> truth.

A *dropout* caused after the order simulation (a sleeping dog contacted, a detractor not followed
up) removes the customer's organic orders after its date; the counterfactual orders lose the same.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.synth import (
    acquisition,
    campaigns,
    club,
    coupons,
    customers,
    engagement,
    purchases,
    service,
    subscriptions,
    surveys,
    truth,
)
from helpers.synth._common import at_weeks, stream
from helpers.synth.config import SynthConfig

TABLES = (
    "customers", "orders", "subscriptions", "support_tickets", "survey_invitations",
    "nps_responses", "loyalty_launches", "loyalty_events", "campaigns", "coupon_offers",
    "marketing_spend", "engagement_monthly",
)  # fmt: skip
TRUTH_TABLES = truth.TRUTH_TABLES


def _with_dates(sim: pd.DataFrame, cust: pd.DataFrame) -> pd.DataFrame:
    ids, signup = cust["customer_id"].to_numpy(), cust["signup_date"].to_numpy()
    c = sim["cust"].to_numpy()
    return sim.assign(customer_id=ids[c], order_date=at_weeks(signup[c], sim["t"].to_numpy()))


def _combine(*drops: pd.Series) -> pd.Series:
    parts = [d for d in drops if len(d)]
    if not parts:
        return pd.Series(dtype="datetime64[ns]")
    return pd.concat(parts).groupby(level=0).min()


def generate(cfg: SynthConfig | None = None) -> tuple[dict[str, pd.DataFrame], dict]:
    """Every table (TABLES and TRUTH_TABLES) and the ground truth for `cfg`."""
    cfg = cfg or SynthConfig()
    seed = cfg.seed
    cust, lat = customers.customers(cfg, stream(seed, "customers"))
    erng = stream(seed, "engagement")
    cust["email_opt_out_at"] = engagement.opt_outs(cfg, erng, cust)

    sim = _with_dates(purchases.simulate(cfg, stream(seed, "orders"), cust, lat, club=True), cust)
    cf = _with_dates(purchases.simulate(cfg, stream(seed, "orders"), cust, lat, club=False), cust)
    join_at = sim[sim["member"]].groupby("customer_id")["order_date"].min()

    # campaigns; a treated sleeping dog may drop out at the send
    crng = stream(seed, "campaigns")
    cal = pd.concat(
        [campaigns.calendar_sends(cfg, cust, k) for k in ("birthday", "anniversary")],
        ignore_index=True,
    )
    cal = campaigns.assign(cfg, crng, cal, cust, lat, join_at)
    drop = campaigns.dropouts(cal)
    wb = campaigns.winback_sends(cfg, cust, purchases.prune(sim, drop))
    wb = campaigns.assign(cfg, crng, wb, cust, lat, join_at)
    drop = _combine(drop, campaigns.dropouts(wb))
    sends = pd.concat([cal, wb], ignore_index=True)
    sends = sends.sort_values(["sent_at", "campaign_id", "customer_id"], kind="stable").reset_index(
        drop=True
    )
    key = sends.rename(columns={"sent_at": "at"})
    y0_pre = purchases.counted_before(
        sim, drop, key.assign(at=key["at"] - pd.Timedelta(seconds=1)), cfg.campaign_window_days
    )
    induced = (sends["u_ind"] < sends["uplift"]).to_numpy() & ~y0_pre.to_numpy()
    triggered = (sends["u_drop"] < sends["dropout"]).to_numpy()
    srng = stream(seed, "service")
    ind = sends[induced & (sends["group"] == "treatment").to_numpy()]
    w = cfg.campaign_window_days
    camp_orders = pd.DataFrame(
        {
            "customer_id": ind["customer_id"].to_numpy(),
            "order_date": ind["sent_at"].to_numpy()
            + pd.to_timedelta(
                np.round((0.1 + ind["u_pos"].to_numpy() * (w - 0.2)) * 86400), unit="s"
            ),
            "campaign_id": ind["campaign_id"].to_numpy(),
            "send_index": ind.index.to_numpy(),
        }
    )
    row = camp_orders["customer_id"].to_numpy() - 1
    mo = purchases.money(cfg, crng, lat["nu"].to_numpy()[row], lat["discount_prone"].to_numpy()[row],
                      lat["high_maintenance"].to_numpy()[row], cfg.campaign_discount_rate)  # fmt: skip
    camp_orders = pd.concat([camp_orders, mo], axis=1)

    # tickets (from the organic orders kept so far), surveys and the detractor follow-up
    kept = purchases.prune(sim, drop)
    tk = service.tickets(
        cfg,
        srng,
        kept.assign(order_id=np.arange(len(kept))),
        lat["theta"].notna().pipe(lambda s: cust["customer_id"].to_numpy()[s.to_numpy()]),
    )
    frng = stream(seed, "feedback")
    invitations, responses, nps_truth = surveys.surveys(cfg, frng, cust, lat, tk)
    drop_f = surveys.followup_dropouts(cfg, responses)
    drop = _combine(drop, drop_f)
    organic = purchases.prune(sim, drop).copy()
    okeys = kept.index.to_numpy()
    tk = tk[np.isin(okeys[tk["order_id"].to_numpy()], organic.index.to_numpy())]

    # campaign coupons used by customers who buy anyway (cannibalization): first organic order in
    # the window of a treated, not-dropped send, with P campaign_coupon_redeem_share
    organic["campaign_id"] = ""
    organic["rid"] = organic.index
    treated = sends[(sends["group"] == "treatment").to_numpy() & ~triggered]
    win = campaigns.any_order_in_window(treated, organic.assign(order_id=organic.index), w)
    use = (
        win["any"] & (treated["u_coupon"] < cfg.campaign_coupon_redeem_share) & cfg.planted_effects
    )
    cand = pd.DataFrame(
        {
            "send": treated.index[use.to_numpy()],
            "rid": win.loc[use, "first_order_id"].astype(int).to_numpy(),
        }
    )
    cand = cand[~organic.loc[cand["rid"], "coupon_used"].to_numpy()].drop_duplicates("rid")
    cand = cand[~cand["send"].isin(camp_orders["send_index"])]
    lst = organic.loc[cand["rid"], "amount"] + organic.loc[cand["rid"], "discount"]
    organic.loc[cand["rid"], "discount"] = np.round(lst.to_numpy() * cfg.campaign_discount_rate, 2)
    organic.loc[cand["rid"], "amount"] = np.round(
        lst.to_numpy() - organic.loc[cand["rid"], "discount"].to_numpy(), 2
    )
    organic.loc[cand["rid"], "campaign_id"] = sends.loc[cand["send"], "campaign_id"].to_numpy()

    # the orders table
    lat_channel = lat["order_channel"].to_numpy()
    allo = (
        pd.concat(
            [
                organic.assign(send_index=-1),
                camp_orders.assign(rid=-1, ticket="", cust=camp_orders["customer_id"] - 1),
            ],
            ignore_index=True,
        )
        .sort_values(["order_date", "customer_id"], kind="stable")
        .reset_index(drop=True)
    )
    allo.insert(0, "order_id", np.arange(100001, 100001 + len(allo)))
    allo["channel"] = np.where(
        allo["campaign_id"] != "", "email", lat_channel[allo["customer_id"].to_numpy() - 1]
    )
    allo["items"] = allo["items"].astype(int)
    allo["returned"] = allo["returned"].astype(bool)
    org_rows = allo["rid"].to_numpy() >= 0
    rid_to_order = pd.Series(
        allo["order_id"].to_numpy()[org_rows], index=allo["rid"].to_numpy()[org_rows]
    )
    tk["order_id"] = rid_to_order.reindex(okeys[tk["order_id"].to_numpy()]).to_numpy()
    tk = tk.sort_values(["opened_at", "ticket_id"]).assign(
        ticket_id=lambda d: np.arange(1, len(d) + 1)
    )
    tk = tk.reset_index(drop=True)[list(service.TICKET_COLUMNS)]
    orders_tbl = allo[list(purchases.ORDER_COLUMNS)]

    # campaign outcomes from the final orders
    out = campaigns.any_order_in_window(sends, allo, w, "amount")
    sends["converted"] = out["any"].to_numpy()
    sends["revenue_30d"] = out["total"].round(2).to_numpy()
    coupon_disc = pd.Series(0.0, index=sends.index)
    co = allo[allo["campaign_id"] != ""]
    by_send = pd.concat([
        pd.Series(co.loc[co["send_index"] >= 0, "discount"].to_numpy(), index=co.loc[co["send_index"] >= 0, "send_index"].astype(int).to_numpy()),
        pd.Series(organic.loc[cand["rid"], "discount"].to_numpy(), index=cand["send"].to_numpy()),
    ])  # fmt: skip
    coupon_disc.loc[by_send.index] = by_send.to_numpy()
    sends["coupon_used"] = sends.index.isin(by_send.index)
    sends["coupon_discount"] = coupon_disc.round(2).to_numpy()
    # pre-period spend: orders in [sent_at - 90 days, sent_at]
    pre = campaigns.any_order_in_window(
        sends.assign(sent_at=sends["sent_at"] - pd.Timedelta(days=90)), allo, 90, "amount"
    )
    sends["pre_spend_90d"] = pre["total"].round(2).to_numpy()
    sends["send_id"] = np.arange(1, len(sends) + 1)

    # latent dropout of the one-off process, engagement, subscriptions
    last = sim.groupby("customer_id").tail(1).set_index("customer_id")
    dead_at = last.loc[last["dead"], "order_date"]
    dropout_at = _combine(dead_at, drop).reindex(cust["customer_id"])
    eng = engagement.monthly(cfg, erng, cust, lat, dropout_at)
    subs, theta = subscriptions.subscriptions(
        cfg, stream(seed, "subscriptions"), cust, lat, tk, eng
    )

    # loyalty
    join_at = join_at[
        join_at.index.isin(organic["customer_id"])
        & (join_at <= drop.reindex(join_at.index).fillna(pd.Timestamp.max))
    ]
    rho = pd.Series(lat["redeem_propensity"].to_numpy(), index=cust["customer_id"])
    lrng = stream(seed, "loyalty")
    events, points = club.events(cfg, lrng, orders_tbl, join_at, rho)
    latent = lat[["lam", "p_eff", "nu", "redeem_propensity"]].set_index(cust["customer_id"])
    latent["alive"] = dropout_at.isna().to_numpy()
    points.update(club.ultimate_breakage(cfg, lrng, events, latent))  # after events: same draws

    # next-purchase coupon offers
    offers, offers_truth = coupons.coupon_offers(cfg, organic, rid_to_order)

    spend = acquisition.marketing_spend(cfg, stream(seed, "acquisition"), cust)
    customers_tbl = cust.assign(loyalty_member=cust["customer_id"].isin(join_at.index))
    customers_tbl = customers_tbl[
        ["customer_id", "signup_date", "birth_date", "country", "acquisition_channel", "email_opt_in",
         "sms_opt_in", "newsletters_per_month", "email_opt_out_at", "loyalty_member"]
    ]  # fmt: skip
    tables = {
        "customers": customers_tbl,
        "orders": orders_tbl,
        "subscriptions": subs,
        "support_tickets": tk,
        "survey_invitations": invitations,
        "nps_responses": responses[
            [
                "response_id",
                "customer_id",
                "surveyed_at",
                "score",
                "comment",
                "theme",
                "followup_group",
                "followup_at",
            ]
        ],
        "loyalty_launches": club.launches(cfg),
        "loyalty_events": events,
        "campaigns": sends[list(campaigns.SEND_COLUMNS)],
        "coupon_offers": offers,
        "marketing_spend": spend,
        "engagement_monthly": eng[list(engagement.ENGAGEMENT_COLUMNS)],
    }
    ctx = dict(
        cust=cust, lat=lat, sim=sim, cf=cf, organic=organic, drop=drop, join_at=join_at, sends=sends,
        triggered=triggered, y0_pre=y0_pre, allo=allo, responses=responses, nps_truth=nps_truth,
        points=points, theta=theta, dropout_at=dropout_at, offers_truth=offers_truth, spend=spend, eng=eng,
        camp_orders=camp_orders, cand=cand,
    )  # fmt: skip
    truth_tables, gt = truth.ground_truth(cfg, tables, ctx)
    tables.update(truth_tables)
    return tables, gt
