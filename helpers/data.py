"""Loading and validating the tables: one clear error for bad input, typed DataFrames for good.

Every table is read as text first and each column is parsed by its declared kind, so a problem is
reported in one sentence naming the file, the column, the number of bad rows, the first lines
(counted as in a text editor, the header is line 1) and an example value, e.g.::

    orders.csv, column 'amount': 2 rows are negative (lines 5, 9; e.g. '-12.50')

All problems of a file are collected and raised together as one :class:`DataValidationError`.
Validation uses explicit checks rather than a schema library so that the message has exactly
this shape and client files can bring their own column names, date format and decimal separator.
"""

from __future__ import annotations

import csv
import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import paths

__all__ = [
    "DataValidationError",
    "Column",
    "SCHEMAS",
    "read_table",
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


class DataValidationError(ValueError):
    """Input data that cannot be used; the message lists every problem found, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


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

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def _lines(mask: np.ndarray | pd.Series, limit: int = 5) -> str:
    rows = np.flatnonzero(np.asarray(mask))[:limit] + 2  # header is line 1
    more = ", …" if int(np.asarray(mask).sum()) > limit else ""
    return ", ".join(str(r) for r in rows) + more


def _problem(file: str, col: str, mask: pd.Series, raw: pd.Series, what: str) -> str:
    n = int(mask.sum())
    example = raw[mask.to_numpy()].iloc[0]
    rows = "row is" if n == 1 else "rows are"
    return f"{file}, column '{col}': {n} {rows} {what} (line{'s' if n > 1 else ''} {_lines(mask)}; e.g. '{example}')"


def _parse_number(raw: pd.Series, decimal: str, thousands: str | None) -> pd.Series:
    s = raw.str.strip().str.replace("\u00a0", "", regex=False).str.replace(" ", "", regex=False)
    if thousands:
        s = s.str.replace(thousands, "", regex=False)
    if decimal != ".":
        s = s.str.replace(decimal, ".", regex=False)
    return pd.to_numeric(s, errors="coerce")


def _sniff_delimiter(header: str, expected: str) -> str | None:
    """The delimiter the header line seems to use, if it is not the expected one."""
    counts = {d: header.count(d) for d in [",", ";", "\t", "|"] if d != expected}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 and header.count(expected) == 0 else None


def read_table(
    path: str | Path,
    schema: tuple[Column, ...] | str,
    *,
    columns: Mapping[str, str] | None = None,
    date_format: str | None = None,
    dayfirst: bool = False,
    decimal: str = ".",
    thousands: str | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    as_of: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Read a CSV file into a typed DataFrame with canonical column names, or raise one
    :class:`DataValidationError` listing every problem.

    `columns` maps canonical names to the file's own (``{"customer_id": "nr_klienta"}``);
    `date_format` is a strptime format (ISO 8601 when None); dates after `as_of` (default: now)
    are rejected in columns that must not be in the future.
    """
    path = Path(path)
    file = path.name
    cols = SCHEMAS[schema] if isinstance(schema, str) else schema
    if not path.exists():
        raise DataValidationError([f"{file}: file not found at {path}"])
    if path.stat().st_size == 0:
        raise DataValidationError(
            [f"{file}: the file is empty (0 bytes); expected a header and data rows"]
        )
    try:
        with path.open(encoding=encoding, newline="") as fh:
            header = fh.readline()
            fh.read()  # decode everything once, to report an encoding problem here and clearly
    except UnicodeDecodeError as err:
        raise DataValidationError(
            [
                f"{file}: cannot be read as {encoding} (byte {err.object[err.start : err.start + 1]!r} at position {err.start}); set the file's encoding, e.g. 'cp1250' or 'latin-1'"
            ]
        ) from None
    except LookupError:
        raise DataValidationError([f"{file}: unknown encoding '{encoding}'"]) from None
    try:
        raw = pd.read_csv(
            path,
            sep=delimiter,
            dtype=str,
            encoding=encoding,
            keep_default_na=False,
            skipinitialspace=True,
            quoting=csv.QUOTE_MINIMAL,
        )
    except pd.errors.ParserError as err:
        raise DataValidationError(
            [f"{file}: not a well-formed CSV with delimiter {delimiter!r} ({str(err).strip()})"]
        ) from None
    raw.columns = [str(c).strip().lstrip("\ufeff") for c in raw.columns]

    rename = {v: k for k, v in (columns or {}).items()}
    raw = raw.rename(columns=rename)
    problems: list[str] = []
    missing = [c.name for c in cols if c.required and c.name not in raw.columns]
    if missing:
        other = _sniff_delimiter(header, delimiter)
        if other is not None:
            raise DataValidationError(
                [
                    f"{file}: the header has no {delimiter!r} but has {other!r}; the file looks delimited by {other!r}, not {delimiter!r} (set the delimiter)"
                ]
            )
        for name in missing:
            wanted = (columns or {}).get(name, name)
            near = difflib.get_close_matches(wanted, list(raw.columns), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            problems.append(
                f"{file}: required column '{wanted}'{f' (for {name})' if wanted != name else ''} is missing; the file has {list(raw.columns)}{hint}"
            )
        raise DataValidationError(problems)
    if raw.empty:
        raise DataValidationError([f"{file}: has a header but no data rows"])

    now = pd.Timestamp(as_of) + pd.Timedelta(days=1) if as_of is not None else pd.Timestamp.now()
    out = {}
    for c in cols:
        if c.name not in raw.columns:
            continue
        s = raw[c.name].str.strip()
        empty = s.eq("")
        if not c.nullable and c.kind not in ("text", "bool") and empty.any():
            problems.append(_problem(file, c.name, empty, s, "empty"))
        if c.kind == "datetime":
            if date_format:
                val = pd.to_datetime(s.where(~empty), format=date_format, errors="coerce")
            else:
                val = pd.to_datetime(
                    s.where(~empty), format="ISO8601", errors="coerce", dayfirst=dayfirst
                )
            bad = val.isna() & ~empty
            if bad.any():
                fmt = date_format or "ISO 8601, e.g. 2025-06-30"
                problems.append(
                    _problem(file, c.name, bad, s, f"unparsable as dates in the format {fmt}")
                )
            if c.not_in_future:
                future = val >= now
                if future.any():
                    when = (
                        f"after the as-of date {pd.Timestamp(as_of).date()}"
                        if as_of is not None
                        else "in the future"
                    )
                    problems.append(_problem(file, c.name, future, s, when))
        elif c.kind in ("money", "float", "int"):
            val = _parse_number(s.where(~empty), decimal, thousands)
            bad = val.isna() & ~empty
            if bad.any():
                problems.append(
                    _problem(file, c.name, bad, s, f"not numeric (decimal separator {decimal!r})")
                )
            if c.kind == "money" and not c.allow_negative and (val < 0).any():
                problems.append(_problem(file, c.name, val < 0, s, "negative"))
            if c.kind == "int":
                frac = val.notna() & (val != np.round(val))
                if frac.any():
                    problems.append(_problem(file, c.name, frac, s, "not whole numbers"))
                val = val.round().astype("Int64")
                if not c.nullable and not val.isna().any():
                    val = val.astype("int64")
            if c.min is not None and (val < c.min).any():
                problems.append(
                    _problem(file, c.name, (val < c.min).fillna(False), s, f"below {c.min:g}")
                )
            if c.max is not None and (val > c.max).any():
                problems.append(
                    _problem(file, c.name, (val > c.max).fillna(False), s, f"above {c.max:g}")
                )
        elif c.kind == "bool":
            low = s.str.lower()
            bad = ~low.isin(_TRUE | _FALSE) & ~empty
            if bad.any():
                problems.append(_problem(file, c.name, bad, s, "not true/false"))
            val = low.isin(_TRUE)
        elif c.kind == "id":
            as_num = pd.to_numeric(s.where(~empty), errors="coerce")
            val = (
                as_num.astype("Int64")
                if (as_num.notna() | empty).all()
                and (as_num.dropna() == np.round(as_num.dropna())).all()
                else s.where(~empty)
            )
            if not c.nullable and not empty.any() and val.dtype == "Int64":
                val = val.astype("int64")
        elif c.kind == "category":
            bad = ~s.isin(c.values) & ~empty
            if bad.any():
                problems.append(_problem(file, c.name, bad, s, f"not one of {list(c.values)}"))
            val = pd.Categorical(s.where(~empty), categories=list(c.values))
        else:
            val = s.where(~empty) if c.nullable else s
        if c.unique:
            dup = s.duplicated(keep=False) & ~empty
            if dup.any():
                problems.append(
                    _problem(
                        file,
                        c.name,
                        dup,
                        s,
                        f"duplicated ({int(s[dup].nunique())} distinct ids appear more than once)",
                    )
                )
        out[c.name] = val
    if problems:
        raise DataValidationError(problems)
    extra = [c for c in raw.columns if c not in out]
    df = pd.DataFrame(out)
    for c in extra:  # keep the client's other columns, as text
        df[c] = raw[c]
    return df


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
    """The generator's parameters and realized facts (datasets/ground_truth.json)."""
    return json.loads((_folder(data_dir) / "ground_truth.json").read_text())
