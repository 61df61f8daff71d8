"""A client's transaction file described by a small YAML mapping, read into the canonical orders table.

A consultant gets an export with the client's own column names, date format, decimal separator and
currency. The mapping file says how to read it; everything not given falls back to the defaults
below, so the smallest mapping names just the three required columns::

    columns:                     # canonical name: the client's column name
      customer_id: nr_klienta    # required
      order_date: data_zamowienia  # required
      amount: kwota              # required; money paid per order, in `currency`
      order_id: nr_zamowienia    # optional; when absent each row is one order (line number)
      channel: kanal             # optional: any other column is kept, as text
    date_format: "%d.%m.%Y"      # strptime format; default ISO 8601 (2025-06-30 or 2025-06-30 14:05:00)
    decimal: ","                 # default "."
    thousands: " "               # default none
    delimiter: ";"               # default ","
    encoding: utf-8              # default utf-8 (e.g. cp1250, latin-1)
    currency: PLN                # label only, default EUR; amounts are never converted
    as_of: "2025-06-30"          # last day of data; default: the day of the last row in the file
    period: Q                    # retention period: M (month) or Q (quarter, default)
    pseudonymize: true           # hide customer ids in the HTML report (default true)
    refunds: reject              # negative amounts: reject (default), exclude or net

Refunds (negative amounts) are a documented choice:

- ``reject``: a negative amount is a data error (the report does not run);
- ``exclude``: rows with a negative amount are dropped before the analysis and counted;
- ``net``: refunds stay in the table and reduce revenue, but only rows with a positive amount count
  as purchases (for customers, retention, frequency and recency).

Validation of the file itself is :func:`helpers.data.read_table`'s: one error listing every problem.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.data import SCHEMAS, Column, DataValidationError, read_table

__all__ = [
    "REQUIRED",
    "REFUND_POLICIES",
    "ClientMapping",
    "load_mapping",
    "client_schema",
    "read_client_orders",
]

REQUIRED: tuple[str, ...] = ("customer_id", "order_date", "amount")
REFUND_POLICIES: tuple[str, ...] = ("reject", "exclude", "net")
PERIODS: tuple[str, ...] = ("M", "Q")


@dataclass(frozen=True)
class ClientMapping:
    """How to read one client's transaction file (see the module docstring for each key)."""

    columns: dict[str, str] = field(default_factory=lambda: {c: c for c in REQUIRED})
    date_format: str | None = None
    decimal: str = "."
    thousands: str | None = None
    delimiter: str = ","
    encoding: str = "utf-8"
    currency: str = "EUR"
    as_of: str | None = None
    period: str = "Q"
    pseudonymize: bool = True
    refunds: str = "reject"

    def read_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`helpers.data.read_table`."""
        return {
            "columns": self.columns, "date_format": self.date_format, "decimal": self.decimal,
            "thousands": self.thousands, "delimiter": self.delimiter, "encoding": self.encoding,
            "as_of": self.as_of,
        }  # fmt: skip


_KEYS = tuple(ClientMapping.__dataclass_fields__)


def _mapping_problems(name: str, raw: dict[str, Any]) -> list[str]:
    problems = []
    for key in raw:
        if key not in _KEYS:
            near = difflib.get_close_matches(str(key), _KEYS, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else f"; known keys: {list(_KEYS)}"
            problems.append(f"{name}: unknown key '{key}'{hint}")
    cols = raw.get("columns")
    if not isinstance(cols, dict):
        problems.append(
            f"{name}: 'columns' must map canonical names to the file's columns, e.g. {{customer_id: nr_klienta}}"
        )
    else:
        for req in REQUIRED:
            if req not in cols:
                problems.append(
                    f"{name}: 'columns' must name the file's column for '{req}' (required: {list(REQUIRED)})"
                )
        bad = [k for k, v in cols.items() if not isinstance(v, str | int) or str(v).strip() == ""]
        if bad:
            problems.append(f"{name}: 'columns' entries {bad} must be column names")
    if raw.get("refunds", "reject") not in REFUND_POLICIES:
        problems.append(
            f"{name}: 'refunds' is {raw['refunds']!r}; use one of {list(REFUND_POLICIES)}"
        )
    if str(raw.get("period", "Q")) not in PERIODS:
        problems.append(f"{name}: 'period' is {raw['period']!r}; use one of {list(PERIODS)}")
    if not isinstance(raw.get("pseudonymize", True), bool):
        problems.append(f"{name}: 'pseudonymize' must be true or false")
    for key in ("decimal", "delimiter"):
        if key in raw and (not isinstance(raw[key], str) or len(raw[key]) != 1):
            problems.append(f"{name}: '{key}' must be one character, e.g. ',' or ';'")
    if raw.get("thousands") is not None and raw.get("thousands") == raw.get("decimal", "."):
        problems.append(
            f"{name}: 'thousands' and 'decimal' are both {raw['thousands']!r}; they must differ"
        )
    if raw.get("as_of") is not None:
        try:
            pd.Timestamp(str(raw["as_of"]))
        except ValueError:
            problems.append(f"{name}: 'as_of' {raw['as_of']!r} is not a date (use YYYY-MM-DD)")
    return problems


def load_mapping(path: str | Path) -> ClientMapping:
    """Read and check a YAML mapping file; raises :class:`DataValidationError` listing every problem."""
    import yaml

    p = Path(path)
    if not p.exists():
        raise DataValidationError([f"{p.name}: mapping file not found at {p}"])
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise DataValidationError([f"{p.name}: not valid YAML ({err})"]) from None
    if not isinstance(raw, dict):
        raise DataValidationError(
            [f"{p.name}: expected keys such as 'columns', 'date_format', 'decimal'"]
        )
    problems = _mapping_problems(p.name, raw)
    if problems:
        raise DataValidationError(problems)
    values = {k: v for k, v in raw.items() if v is not None}
    values["columns"] = {str(k): str(v) for k, v in raw["columns"].items()}
    for key in ("as_of", "period", "currency", "date_format"):
        if key in values:
            values[key] = str(values[key])
    return ClientMapping(**values)


def client_schema(mapping: ClientMapping) -> tuple[Column, ...]:
    """The orders schema for this client: every mapped column is required (a misnamed one is
    reported with a did-you-mean), `order_id` is optional, and negative amounts are allowed unless
    the refunds policy is ``reject``."""
    base = {c.name: c for c in SCHEMAS["orders"]}
    cols = []
    for name in dict.fromkeys([*REQUIRED, *mapping.columns]):
        col = base.get(name, Column(name, "text", nullable=True))
        col = replace(col, required=True)
        if name == "amount":
            col = replace(col, allow_negative=mapping.refunds != "reject")
        cols.append(col)
    if "order_id" not in mapping.columns:
        cols.append(replace(base["order_id"], required=False))
    return tuple(cols)


def read_client_orders(
    path: str | Path, mapping: ClientMapping
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The client's file as a canonical orders table, and notes on what was done to it.

    Returns (orders, notes): orders has order_id, customer_id, order_date, amount (client currency)
    and any other mapped column, sorted by date; notes has ``rows`` (data rows read),
    ``refund_rows`` and ``refund_amount`` (negative rows and their sum), ``refunds`` (the policy)
    and ``as_of`` (given, or the day of the file's last row). Raises :class:`DataValidationError`.
    """
    orders = read_table(path, client_schema(mapping), **mapping.read_kwargs())
    if "order_id" not in orders.columns:  # one row, one order: the line number is its id
        orders.insert(0, "order_id", pd.RangeIndex(2, len(orders) + 2))
    negative = orders["amount"] < 0
    notes: dict[str, Any] = {
        "rows": len(orders),
        "refunds": mapping.refunds,
        "refund_rows": int(negative.sum()),
        "refund_amount": float(orders.loc[negative, "amount"].sum()),
    }
    last_day = orders["order_date"].max().normalize()  # of the file, refunds included
    notes["as_of"] = str((pd.Timestamp(mapping.as_of) if mapping.as_of else last_day).date())
    if mapping.refunds == "exclude":
        orders = orders.loc[~negative]
    if orders.empty:
        raise DataValidationError(
            [
                f"{Path(path).name}: no orders left after excluding {notes['refund_rows']} refund rows"
            ]
        )
    first = ["order_id", "customer_id", "order_date", "amount"]
    orders = orders[first + [c for c in orders.columns if c not in first]]
    orders = orders.sort_values(["order_date", "order_id"], kind="stable").reset_index(drop=True)
    return orders, notes
