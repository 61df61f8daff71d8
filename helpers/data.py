"""The bundled sample company's tables (``datasets/``, made by :mod:`helpers.synth`), loaded and
validated: one clear error for bad input (:class:`helpers.tables.DataValidationError`), typed
DataFrames for good. Reading any other table: :mod:`helpers.tables`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from helpers import paths
from helpers.synth.truth import read_truth
from helpers.tables import SCHEMAS, DataValidationError, read_table

__all__ = [
    "load_table",
    "load_customers",
    "load_orders",
    "load_subscriptions",
    "load_support_tickets",
    "load_nps_responses",
    "load_loyalty_events",
    "load_campaigns",
    "load_all",
    "load_ground_truth",
]


def _folder(data_dir: str | Path | None) -> Path:
    return paths.data_dir(data_dir)


def load_table(name: str, data_dir: str | Path | None = None, **kwargs) -> pd.DataFrame:
    """Load table `name` (one of ``SCHEMAS``) from `data_dir` (default: the bundled datasets/)."""
    return read_table(_folder(data_dir) / f"{name}.csv", name, **kwargs)


def load_customers(data_dir: str | Path | None = None, **kwargs) -> pd.DataFrame:
    """customers: customer_id, signup_date, birth_date, country, acquisition_channel, opt-ins."""
    return load_table("customers", data_dir, **kwargs)


def load_orders(data_dir: str | Path | None = None, **kwargs) -> pd.DataFrame:
    """orders: order_id, customer_id, order_date (timestamp), amount (EUR paid, net of discount),
    discount (EUR), items, channel, returned, campaign_id."""
    return load_table("orders", data_dir, **kwargs)


def load_subscriptions(data_dir: str | Path | None = None, **kwargs) -> pd.DataFrame:
    """subscriptions: subscription_id, customer_id, plan, start_date, end_date (NaT if active),
    monthly_price (EUR)."""
    return load_table("subscriptions", data_dir, **kwargs)


def load_support_tickets(data_dir: str | Path | None = None, **kwargs) -> pd.DataFrame:
    """support_tickets: ticket_id, customer_id, order_id, opened_at, first_response_at,
    resolved_at (NaT if unresolved), topic, resolution, satisfaction (1-5, may be missing)."""
    return load_table("support_tickets", data_dir, **kwargs)


def load_nps_responses(data_dir: str | Path | None = None, **kwargs) -> pd.DataFrame:
    """nps_responses: response_id, customer_id, surveyed_at, score (0-10), comment, theme."""
    return load_table("nps_responses", data_dir, **kwargs)


def load_loyalty_events(data_dir: str | Path | None = None, **kwargs) -> pd.DataFrame:
    """loyalty_events: event_id, customer_id, event_at, event_type, points (signed), tier."""
    return load_table("loyalty_events", data_dir, **kwargs)


def load_campaigns(data_dir: str | Path | None = None, **kwargs) -> pd.DataFrame:
    """campaigns: send_id, campaign_id, campaign_type, customer_id, group (treatment/control),
    sent_at, converted (any order within 30 days), revenue_30d (EUR)."""
    return load_table("campaigns", data_dir, **kwargs)


def load_all(data_dir: str | Path | None = None, **kwargs) -> dict[str, pd.DataFrame]:
    """Every table, validated; raises one DataValidationError listing the problems of all files."""
    tables, problems = {}, []
    for name in SCHEMAS:
        try:
            tables[name] = load_table(name, data_dir, **kwargs)
        except DataValidationError as err:
            problems.extend(err.problems)
    if problems:
        raise DataValidationError(problems)
    return tables


def load_ground_truth(data_dir: str | Path | None = None) -> dict:
    """The generator's parameters and realized facts (datasets/ground_truth.json), read by the one
    truth reader, :func:`helpers.synth.truth.read_truth` (its ``table=`` gives the truth files)."""
    return read_truth(data_dir)
