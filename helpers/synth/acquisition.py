"""Acquisition cost: monthly marketing spend and sign-ups per channel.

Spend in a channel and month = sign-ups x the channel's true cost per acquired customer (CPA) x
lognormal noise with mean 1 (log-sd `acquisition_spend_noise_sd`), so total spend / total sign-ups
estimates the CPA, and so does a regression of spend on sign-ups through the origin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.synth._common import month_start, pairs
from helpers.synth.config import SynthConfig


def marketing_spend(cfg: SynthConfig, rng: np.random.Generator, cust: pd.DataFrame) -> pd.DataFrame:
    """month, channel, spend (EUR), signups: every month x channel of the data window."""
    months = pd.date_range(pd.Timestamp(cfg.start), pd.Timestamp(cfg.end), freq="MS")
    chans = [c for c, _ in cfg.channels]
    grid = pd.MultiIndex.from_product([months, chans], names=["month", "channel"])
    n = (
        cust.assign(month=month_start(cust["signup_date"]))
        .groupby(["month", "acquisition_channel"])
        .size()
        .rename_axis(["month", "channel"])
        .reindex(grid, fill_value=0)
    )
    cpa = pd.Series(pairs(cfg.acquisition_cpa))
    sd = cfg.acquisition_spend_noise_sd
    noise = np.exp(rng.normal(-sd * sd / 2, sd, len(n)))
    spend = np.round(
        n.to_numpy() * cpa.reindex(grid.get_level_values("channel")).to_numpy() * noise, 2
    )
    return pd.DataFrame(
        {"month": grid.get_level_values("month"), "channel": grid.get_level_values("channel"),
         "spend": spend, "signups": n.to_numpy()}
    )  # fmt: skip


def truth(spend: pd.DataFrame) -> dict:
    """Realized spend / sign-ups per channel (EUR per acquired customer)."""
    g = spend.groupby("channel")[["spend", "signups"]].sum()
    return {"cpa_by_channel": {k: float(v) for k, v in (g["spend"] / g["signups"]).items()}}
