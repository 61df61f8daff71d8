"""Deterministic generator of the sample company, *Copperleaf Roasters* (second edition).

An online coffee roaster (beans, equipment, a monthly bean subscription) selling in six European
countries, with a loyalty club, a customer-service desk, campaigns and a marketing budget. Every
notebook uses its data, and every model can be checked against the parameters that made it (the
*ground truth*, ``ground_truth.json`` and the ``truth_*.csv`` files).

One module per mechanism: ``customers`` (latent traits), ``orders`` (BG/NBD with the effects that
act while customers buy: service recovery, loyalty club, tiers, goal gradient, next-purchase
coupons), ``coupons`` (the coupon offers made at orders), ``service`` (tickets), ``feedback``
(surveys, non-response, detractor follow-up), ``loyalty`` (launches and point events),
``campaigns`` (randomized sends, heterogeneous effects, sleeping dogs, coupons), ``engagement``
(monthly activity, opt-outs), ``subscriptions`` (sBG with hazard multipliers), ``acquisition``
(marketing spend), ``truth`` (realized effects and the one reader of a company's truth),
``registry`` (every parameter classified: design, estimated by a notebook, unidentifiable),
``company`` (runs them in order), ``config`` (:class:`SynthConfig`), ``io`` (writing) and ``cli``
(``python -m helpers.synth --out DIR --seed N --set field=value``). Every mechanism draws from its
own random stream, so changing one leaves the others' draws alone.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from helpers import paths
from helpers.synth._common import stream
from helpers.synth.command import main
from helpers.synth.company import TABLES, generate
from helpers.synth.config import Plan, SynthConfig
from helpers.synth.customers import customers as _customers
from helpers.synth.io import write
from helpers.synth.purchases import ORDER_COLUMNS, money, simulate_bgnbd
from helpers.synth.truth import TRUTH_TABLES, read_truth

__all__ = [
    "TABLES",
    "TRUTH_TABLES",
    "ORDER_COLUMNS",
    "Plan",
    "SynthConfig",
    "generate",
    "generate_orders",
    "read_truth",
    "write",
    "main",
]


def generate_orders(
    n_orders: int, seed: int = 7, cfg: SynthConfig | None = None, *, per_customer: float = 4.3
) -> pd.DataFrame:
    """Orders only, about `n_orders` rows, from the same BG/NBD and Gamma-Gamma processes without
    the planted effects: the scaled data set for benchmarks (columns as in orders.csv, less
    campaign_id), cut to exactly `n_orders` at the latest order dates. ``n_orders /
    per_customer`` customers: `per_customer` a little under the mean orders per customer of
    `cfg`'s purchase process (4.3 for the sample company's), so that there are rows to cut."""
    base = cfg or SynthConfig()
    cfg = replace(
        base,
        seed=seed,
        n_customers=max(1, int(round(n_orders / per_customer))),
        planted_effects=False,
    )
    cust, lat = _customers(cfg, stream(cfg.seed, "customers"))
    rng = stream(cfg.seed, "orders")
    sim = simulate_bgnbd(cfg, rng, lat)
    c = sim["cust"].to_numpy()
    orders = pd.DataFrame(
        {
            "customer_id": cust["customer_id"].to_numpy()[c],
            "order_date": cust["signup_date"].to_numpy()[c]
            + pd.to_timedelta(sim["t"].to_numpy() * 7 * 86400, unit="s").round("s"),
        }
    )
    mo = money(
        cfg,
        rng,
        lat["nu"].to_numpy()[c],
        lat["discount_prone"].to_numpy()[c],
        lat["high_maintenance"].to_numpy()[c],
    )
    orders = pd.concat([orders, mo.drop(columns="rate")], axis=1).sort_values(
        "order_date", kind="stable"
    )
    orders = orders.iloc[:n_orders].reset_index(drop=True)
    orders.insert(0, "order_id", np.arange(1, len(orders) + 1))
    orders["channel"] = lat["order_channel"].to_numpy()[orders["customer_id"].to_numpy() - 1]
    return orders[[c for c in ORDER_COLUMNS if c != "campaign_id"]]


_ = paths
