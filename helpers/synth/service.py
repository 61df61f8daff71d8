"""Customer service: the tickets table from the tickets drawn with the orders.

Whether an order gets a ticket, its topic, outcome (well / poorly / unresolved), resolution type
and contact channel are drawn in the order simulation (helpers.synth.purchases), because they act on
the customer's dropout there (service recovery; resolution type) and the delivery fix lowers the
delivery topics. Here they get their timestamps: a ticket resolved **well** had a first response
within 24 h and was resolved within 72 h of opening; **poorly**: first response after 24 h.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.synth.config import SynthConfig

TICKET_COLUMNS = (
    "ticket_id", "customer_id", "order_id", "opened_at", "first_response_at", "resolved_at",
    "channel", "topic", "resolution", "satisfaction",
)  # fmt: skip


def tickets(
    cfg: SynthConfig, rng: np.random.Generator, orders: pd.DataFrame, subscribers: np.ndarray
) -> pd.DataFrame:
    """One row per ticket; `orders` carries ticket, topic, res_type and tchannel from the loop."""
    tk = orders.loc[orders["ticket"] != ""].reset_index(drop=True)
    m = len(tk)
    opened = tk["order_date"] + pd.to_timedelta(rng.uniform(1, 10, m) * 86400, unit="s").round("s")
    well, poorly = (tk["ticket"] == "well").to_numpy(), (tk["ticket"] == "poorly").to_numpy()
    resp_h = np.where(well, np.minimum(rng.exponential(5, m), 23.5), rng.uniform(24, 120, m))
    first_response = opened + pd.to_timedelta(np.round(resp_h * 3600), unit="s")
    res_h = np.where(
        well, np.minimum(rng.exponential(18, m), 72 - resp_h - 0.5), rng.uniform(48, 400, m)
    )
    resolved = (first_response + pd.to_timedelta(np.round(res_h * 3600), unit="s")).where(
        tk["ticket"] != "unresolved"
    )
    is_sub = np.isin(tk["customer_id"].to_numpy(), subscribers)
    topic = np.where(is_sub & (rng.random(m) < 0.25), "subscription_change", tk["topic"].to_numpy())
    sat = np.select(
        [well, poorly],
        [
            rng.choice([4, 5], size=m, p=[0.35, 0.65]),
            rng.choice([1, 2, 3], size=m, p=[0.3, 0.4, 0.3]),
        ],
        rng.choice([1, 2], size=m, p=[0.6, 0.4]),
    ).astype(float)
    sat[rng.random(m) < 0.3] = np.nan  # not everyone answers the satisfaction survey
    out = pd.DataFrame(
        {
            "ticket_id": np.arange(1, m + 1),
            "customer_id": tk["customer_id"],
            "order_id": tk["order_id"],
            "opened_at": opened,
            "first_response_at": first_response,
            "resolved_at": resolved,
            "channel": tk["tchannel"],
            "topic": topic,
            "resolution": tk["res_type"],
            "satisfaction": pd.array(sat, dtype="Int64"),
        }
    )
    # the data end at cfg.end: later tickets are not in it yet, later replies not yet given
    last = pd.Timestamp(cfg.end) + pd.Timedelta(days=1)
    out = out[out["opened_at"] < last]
    for col in ["first_response_at", "resolved_at"]:
        out[col] = out[col].where(out[col] < last)
    return (
        out.sort_values(["opened_at", "ticket_id"])
        .assign(ticket_id=lambda d: np.arange(1, len(d) + 1))
        .reset_index(drop=True)
    )
