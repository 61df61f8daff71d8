"""The tables the project reads: their columns and rules, and the one error type a problem of a
file becomes.

A problem is data before it is text (as pandera's ``SchemaError`` is): :class:`Problem` keeps the
file, the column, a reason code, the number of rows, their lines and an example value, and renders
itself once as the sentence users read, e.g.::

    orders.csv, column 'amount': 2 rows are negative (lines 5, 9; e.g. '-12.50')

All problems of a file are collected and raised together as one :class:`DataValidationError`.
Validation uses explicit checks rather than a schema library so that the message has exactly
this shape and client files can bring their own column names, date format and decimal separator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "DataValidationError", "Problem", "Column", "ReadOptions", "SCHEMAS", "column_problem", "line_list",
]  # fmt: skip


class Problem(str):
    """One problem of a file: the sentence users read, and its parts as data.

    ``file``: the file's name; ``column``: the canonical column (None for a problem of the whole
    file); ``code``: what is wrong (``'empty'``, ``'duplicated'``, ``'negative'``,
    ``'unparsable'``, ...; ``'file'`` for a problem of the file itself); ``rows``: how many rows;
    ``lines``: the first line (or row) numbers; ``example``: a bad value as written. Callers test
    the parts (``p.column == 'order_id' and p.code == 'duplicated'``), never the English text.
    """

    file: str
    column: str | None
    code: str
    rows: int
    lines: tuple[int, ...]
    example: str | None

    def __new__(
        cls,
        sentence: str,
        *,
        file: str = "",
        column: str | None = None,
        code: str = "file",
        rows: int = 0,
        lines: tuple[int, ...] = (),
        example: str | None = None,
    ) -> Problem:
        obj = super().__new__(cls, sentence)
        obj.file, obj.column, obj.code = file, column, code
        obj.rows, obj.lines, obj.example = rows, tuple(lines), example
        return obj

    def with_text(self, sentence: str) -> Problem:
        """The same problem said with another sentence (e.g. with a hint appended)."""
        return Problem(sentence, file=self.file, column=self.column, code=self.code,
                       rows=self.rows, lines=self.lines, example=self.example)  # fmt: skip


class DataValidationError(ValueError):
    """Input data that cannot be used; the message lists every problem found, one per line.
    ``problems``: the :class:`Problem` list (plain strings are taken as problems of a file)."""

    def __init__(self, problems: list[str]):
        self.problems = [p if isinstance(p, Problem) else Problem(p) for p in problems]
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class ReadOptions:
    """How a client's file is written: the one set of reading options both readers take
    (:func:`helpers.tables.pandas_reader.read_table_info`, :mod:`helpers.tables.duckdb_reader`),
    passed as keyword arguments and checked here once (an unknown name is a TypeError).

    `columns` maps canonical names to the file's own (``{"customer_id": "nr_klienta"}``);
    `date_format` is a strptime format (ISO 8601 when None), `dayfirst` reads 03/04 as 3 April;
    `decimal` and `thousands` the number separators; `delimiter` and `encoding` of a CSV;
    `as_of`: dates after it (default: now) are rejected in columns that must not be in the
    future; `sheet` of an Excel file; `timezone` for timestamps with a UTC offset; `currency`
    text allowed in money; `ids`: 'text' keeps identifiers as written, 'integer' requires whole
    numbers, 'auto' makes integers of ids written as plain integers."""

    columns: Mapping[str, str] | None = None
    date_format: str | None = None
    dayfirst: bool = False
    decimal: str = "."
    thousands: str | None = None
    delimiter: str = ","
    encoding: str = "utf-8"
    as_of: str | pd.Timestamp | None = None
    sheet: str | None = None
    timezone: str | None = None
    currency: str | None = None
    ids: str = "auto"


@dataclass(frozen=True)
class Column:
    """A column of a table: its canonical name, kind and rules.

    kind: 'id' (integer or text identifier), 'datetime', 'money' (decimal, >= 0 unless
    `allow_negative`), 'int', 'float', 'bool', 'text' or 'category' (one of `values`).
    """

    name: str
    kind: str
    required: bool = True
    nullable: bool = False
    unique: bool = False
    allow_negative: bool = False
    values: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    not_in_future: bool = False


SCHEMAS: dict[str, tuple[Column, ...]] = {
    "customers": (
        Column("customer_id", "id", unique=True),
        Column("signup_date", "datetime", not_in_future=True),
        Column("birth_date", "datetime", required=False, nullable=True),
        Column("country", "text", required=False, nullable=True),
        Column("acquisition_channel", "text", required=False, nullable=True),
        Column("email_opt_in", "bool", required=False),
        Column("sms_opt_in", "bool", required=False),
        Column("loyalty_member", "bool", required=False),
        Column("newsletters_per_month", "int", required=False, nullable=True, min=0),
        Column("email_opt_out_at", "datetime", required=False, nullable=True),
    ),
    "orders": (
        Column("order_id", "id", unique=True),
        Column("customer_id", "id"),
        Column("order_date", "datetime", not_in_future=True),
        Column("amount", "money"),
        Column("discount", "money", required=False, nullable=True),
        Column("items", "int", required=False, nullable=True, min=0),
        Column("channel", "text", required=False, nullable=True),
        Column("returned", "bool", required=False),
        Column("campaign_id", "text", required=False, nullable=True),
    ),
    "subscriptions": (
        Column("subscription_id", "id", unique=True),
        Column("customer_id", "id"),
        Column("plan", "text"),
        Column("start_date", "datetime", not_in_future=True),
        Column("end_date", "datetime", nullable=True),
        Column("monthly_price", "money"),
    ),
    "support_tickets": (
        Column("ticket_id", "id", unique=True),
        Column("customer_id", "id"),
        Column("order_id", "id", required=False, nullable=True),
        Column("opened_at", "datetime", not_in_future=True),
        Column("first_response_at", "datetime", nullable=True),
        Column("resolved_at", "datetime", nullable=True),
        Column("channel", "text", required=False, nullable=True),
        Column("topic", "text"),
        Column("resolution", "text"),
        Column("satisfaction", "int", nullable=True, min=1, max=5),
    ),
    "nps_responses": (
        Column("response_id", "id", unique=True),
        Column("customer_id", "id"),
        Column("surveyed_at", "datetime", not_in_future=True),
        Column("score", "int", min=0, max=10),
        Column("comment", "text", required=False, nullable=True),
        Column("theme", "text", required=False, nullable=True),
        Column("followup_group", "text", required=False, nullable=True),
        Column("followup_at", "datetime", required=False, nullable=True),
    ),
    "loyalty_events": (
        Column("event_id", "id", unique=True),
        Column("customer_id", "id"),
        Column("event_at", "datetime", not_in_future=True),
        Column("event_type", "category", values=("join", "earn", "redeem", "tier_up", "expire")),
        Column("points", "int"),
        Column("tier", "text"),
    ),
    "campaigns": (
        Column("send_id", "id", unique=True),
        Column("campaign_id", "text"),
        Column("campaign_type", "text"),
        Column("customer_id", "id"),
        Column("group", "category", values=("treatment", "control")),
        Column("sent_at", "datetime", not_in_future=True),
        Column("medium", "text", required=False, nullable=True),
        Column("send_cost", "money", required=False, nullable=True),
        Column("pre_spend_90d", "money", required=False, nullable=True),
        Column("converted", "bool"),
        Column("revenue_30d", "money"),
        Column("coupon_used", "bool", required=False),
        Column("coupon_discount", "money", required=False, nullable=True),
    ),
    # the second edition of the sample company (helpers.synth; datasets/README.md)
    "survey_invitations": (
        Column("invitation_id", "id", unique=True),
        Column("customer_id", "id"),
        Column("invited_at", "datetime", not_in_future=True),
        Column("responded", "bool"),
        Column("response_id", "id", nullable=True),
    ),
    "loyalty_launches": (
        Column("country", "text"),
        Column("launch_date", "datetime"),
        Column("pilot", "bool"),
    ),
    "coupon_offers": (
        Column("offer_id", "id", unique=True),
        Column("order_id", "id"),
        Column("customer_id", "id"),
        Column("offered_at", "datetime", not_in_future=True),
        Column("discount_pct", "int", min=0, max=100),
        Column("valid_until", "datetime"),
        Column("min_spend", "money"),
        Column("redeemed_order_id", "id", nullable=True),
    ),
    "marketing_spend": (
        Column("month", "datetime", not_in_future=True),
        Column("channel", "text"),
        Column("spend", "money"),
        Column("signups", "int", min=0),
    ),
    "engagement_monthly": (
        Column("customer_id", "id"),
        Column("month", "datetime", not_in_future=True),
        Column("site_visits", "int", min=0),
        Column("emails_sent", "int", min=0),
        Column("email_opens", "int", min=0),
        Column("email_clicks", "int", min=0),
        Column("email_opt_out", "bool"),
    ),
}


def _line_numbers(
    mask: np.ndarray | pd.Series, positions: np.ndarray | None = None, limit: int = 5
) -> tuple[np.ndarray, bool]:
    idx = np.flatnonzero(np.asarray(mask))
    rows = positions[idx[:limit]] if positions is not None else idx[:limit] + 2  # header: line 1
    return np.asarray(rows), len(idx) > limit


def line_list(
    mask: np.ndarray | pd.Series, positions: np.ndarray | None = None, limit: int = 5
) -> str:
    """The first `limit` line (or row) numbers of the rows in `mask`, as text: ``"3, 7, …"``;
    without `positions`, a row's line is its position + 2 (the header is line 1)."""
    rows, more = _line_numbers(mask, positions, limit)
    return ", ".join(str(r) for r in rows) + (", …" if more else "")


def column_problem(
    file: str,
    col: str,
    mask: pd.Series,
    raw: pd.Series,
    what: str,
    positions: np.ndarray | None = None,
    unit: str = "line",
    *,
    column: str | None = None,
    code: str = "invalid",
) -> Problem:
    """One problem of a column, said as ``file, column 'x': n rows are <what> (lines 3, 7; e.g.
    'value')``; `col` is the label (``'Beløp' (amount)`` when the client's column has another
    name), `column` the canonical name and `code` the reason (:class:`Problem`)."""
    mask = pd.Series(np.asarray(mask, dtype=bool), index=raw.index)
    n = int(mask.sum())
    example = raw[mask.to_numpy()].iloc[0]
    rows = "row is" if n == 1 else "rows are"
    label = col if col.startswith("'") else f"'{col}'"
    where = f"{unit}{'s' if n > 1 else ''} {line_list(mask, positions)}"
    numbers, _ = _line_numbers(mask, positions)
    return Problem(
        f"{file}, column {label}: {n} {rows} {what} ({where}; e.g. '{example}')",
        file=file, column=column, code=code, rows=n,
        lines=tuple(int(x) for x in numbers), example=str(example),
    )  # fmt: skip
