"""Next-purchase coupon experiment: the offers made at orders and their per-offer truth.

The offers themselves are drawn inside the order simulation (``helpers.synth.purchases``: after each
order in the coupon period a randomized arm of ``SynthConfig.coupon_arms``; a coupon causes an
order within ``coupon_valid_days`` with probability ``coupon_uplift`` when none would come
naturally). This module turns the simulated orders into the published ``coupon_offers`` table and
the ``truth_coupon_offers`` file; ``helpers.synth.truth.coupon_truth`` summarises them for
ground_truth.json.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.synth.config import SynthConfig

__all__ = ["coupon_offers"]


def coupon_offers(
    cfg: SynthConfig, organic: pd.DataFrame, rid_to_order: pd.Series
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The coupon_offers table and the per-offer truth.

    `organic` holds the simulated organic orders (``purchases.simulate`` with dates, and ``rid``, the
    row id that `rid_to_order` maps to the published order_id). An order with ``offer >= 0`` made
    an offer (percent off, 0 = the control arm); the offer is redeemed by the customer's next order
    if that order used the coupon. The truth per offer: ``natural`` (the next order would have come
    within the validity without a coupon), ``induced`` (the coupon caused it) and
    ``used_discount`` (EUR, 0 if not redeemed). Both frames are sorted by offer time, with
    ``offer_id`` 1..n.
    """
    o = organic.sort_values(["customer_id", "k"])
    nxt = o.groupby("customer_id")[
        ["natural_next", "induced", "coupon_used", "discount", "rid"]
    ].shift(-1)
    has = nxt["rid"].notna()
    sel = (o["offer"] >= 0).to_numpy()
    off = o[sel]
    nx = nxt[sel]
    used = has[sel] & nx["coupon_used"].eq(True) & (off["offer"] > 0)
    table = pd.DataFrame(
        {
            "order_id": rid_to_order.reindex(off["rid"]).to_numpy(),
            "customer_id": off["customer_id"].to_numpy(),
            "offered_at": off["order_date"].to_numpy(),
            "discount_pct": off["offer"].astype(int).to_numpy(),
            "valid_until": (
                off["order_date"] + pd.Timedelta(days=cfg.coupon_valid_days)
            ).to_numpy(),
            "min_spend": cfg.coupon_min_spend,
            "redeemed_order_id": pd.array(
                np.where(
                    used, rid_to_order.reindex(nx["rid"].fillna(-1).astype(int)).to_numpy(), np.nan
                ),
                dtype="Int64",
            ),
        }
    )
    tr = pd.DataFrame(
        {
            "natural": (has[sel] & nx["natural_next"].eq(True)).to_numpy(),
            "induced": (has[sel] & nx["induced"].eq(True)).to_numpy(),
            "used_discount": np.where(used, nx["discount"].fillna(0.0), 0.0),
        }
    )
    order = np.argsort(table["offered_at"].to_numpy(), kind="stable")
    table, tr = table.iloc[order].reset_index(drop=True), tr.iloc[order].reset_index(drop=True)
    table.insert(0, "offer_id", np.arange(1, len(table) + 1))
    tr.insert(0, "offer_id", table["offer_id"])
    return table, tr
