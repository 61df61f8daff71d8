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

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers import paths

__all__ = [
    "DataValidationError",
    "Column",
    "SCHEMAS",
    "read_table",
    "read_table_info",
    "parse_numbers",
    "parse_dates",
    "CURRENCY_TEXT",
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


def _lines(
    mask: np.ndarray | pd.Series, positions: np.ndarray | None = None, limit: int = 5
) -> str:
    idx = np.flatnonzero(np.asarray(mask))
    rows = positions[idx[:limit]] if positions is not None else idx[:limit] + 2  # header: line 1
    more = ", …" if len(idx) > limit else ""
    return ", ".join(str(r) for r in rows) + more


def _problem(
    file: str,
    col: str,
    mask: pd.Series,
    raw: pd.Series,
    what: str,
    positions: np.ndarray | None = None,
    unit: str = "line",
) -> str:
    """One sentence: ``file, column 'x': n rows are <what> (lines 3, 7; e.g. 'value')``; `col` is
    the label (``'Beløp' (amount)`` when the client's column has another name)."""
    mask = pd.Series(np.asarray(mask, dtype=bool), index=raw.index)
    n = int(mask.sum())
    example = raw[mask.to_numpy()].iloc[0]
    rows = "row is" if n == 1 else "rows are"
    label = col if col.startswith("'") else f"'{col}'"
    where = f"{unit}{'s' if n > 1 else ''} {_lines(mask, positions)}"
    return f"{file}, column {label}: {n} {rows} {what} ({where}; e.g. '{example}')"


#: How a currency may be written beside an amount (symbols and codes), longest first.
CURRENCY_TEXT: dict[str, tuple[str, ...]] = {
    "EUR": ("EUR", "€"), "USD": ("US$", "USD", "$"), "GBP": ("GBP", "£"),
    "PLN": ("PLN", "zł", "zl"), "NOK": ("NOK", "kr.", "kr"), "SEK": ("SEK", "kr.", "kr"),
    "DKK": ("DKK", "kr.", "kr"), "CHF": ("CHF", "SFr.", "Fr."), "CZK": ("CZK", "Kč"),
    "RUB": ("RUB", "руб.", "руб", "₽"), "JPY": ("JPY", "¥"), "CAD": ("CAD", "CA$", "C$", "$"),
    "AUD": ("AUD", "AU$", "A$", "$"), "INR": ("INR", "₹"),
}  # fmt: skip
_SPACES = "[\u00a0\u202f\u2009\u2007\u2008 ]"  # no-break, narrow no-break, thin, figure spaces


def parse_numbers(
    raw: pd.Series,
    decimal: str = ".",
    thousands: str | None = None,
    currency: str | None = None,
    check_ambiguous: bool = True,
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Numbers written as text, as floats: ``(values, not_numeric, ambiguous)`` (boolean masks).

    Accepted: a sign ('-', U+2212 minus) or accounting parentheses ``(12.50)`` for negatives;
    spaces of any kind (no-break, narrow no-break) between digits; the mapping's `currency` as a
    symbol or code before or after the number (``$1,234.50``, ``1 234,50 zł``, ``€ 12,50``, see
    :data:`CURRENCY_TEXT`); `thousands` grouping when given. When `thousands` is not given, the
    other separator is taken as grouping only where that is unambiguous: followed by the decimal
    separator (``1,234.50``) or in several groups (``1,234,567``). Ambiguous (flagged, NaN):
    ``1,234`` with decimal '.', and - `check_ambiguous` - exactly three digits after the decimal
    separator (``1.234``, German for 1234) when `thousands` is not given.
    """
    d = decimal
    o = "," if d == "." else "."
    s = raw.fillna("").astype(str).str.strip()
    s = s.str.replace("\u2212", "-", regex=False).str.replace(_SPACES, "", regex=True)
    if currency:
        signs = sorted(CURRENCY_TEXT.get(currency.upper(), ()) + (currency,), key=len, reverse=True)
        s = s.str.replace("|".join(re.escape(x) for x in signs), "", regex=True)
    paren = s.str.fullmatch(r"\(.*\)")
    s = s.where(~paren, s.str.slice(1, -1))
    sign = s.str.extract(r"^([+-]?)")[0].fillna("")
    body = s.str.replace(r"^[+-]", "", regex=True)
    de, oe = re.escape(d), re.escape(o)
    plain = body.str.fullmatch(rf"\d+(?:{de}\d+)?|{de}\d+")
    t = thousands if thousands is not None and not re.fullmatch(_SPACES, thousands) else None
    grouped_o = body.str.fullmatch(
        rf"\d{{1,3}}(?:{oe}\d{{3}})+{de}\d+|\d{{1,3}}(?:{oe}\d{{3}}){{2,}}"
    )
    ambiguous = pd.Series(False, index=s.index)
    if t is not None:
        te = re.escape(t)
        grouped = body.str.fullmatch(rf"\d{{1,3}}(?:{te}\d{{3}})+(?:{de}\d+)?")
        ok = plain | grouped
        clean = body.where(~grouped, body.str.replace(t, "", regex=False))
    else:
        ok = plain | grouped_o
        clean = body.where(~grouped_o, body.str.replace(o, "", regex=False))
        if thousands is None:
            ambiguous = body.str.fullmatch(rf"[1-9]\d{{0,2}}{oe}\d{{3}}")
            if check_ambiguous:
                ambiguous |= body.str.fullmatch(rf"[1-9]\d{{0,2}}(?:{de}\d{{3}})+")
            ok &= ~ambiguous
    clean = clean.str.replace(d, ".", regex=False)
    value = pd.to_numeric(clean.where(ok), errors="coerce").astype(float)
    value = value.where(~(sign.eq("-") | paren), -value)
    empty = raw.fillna("").astype(str).str.strip().eq("")
    return value.where(~empty), ~ok & ~ambiguous & ~empty, ambiguous & ~empty


_OFFSET = re.compile(
    r"^(?P<wall>.*\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)\s*(?P<off>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$"
)


def parse_dates(
    s: pd.Series,
    date_format: str | None = None,
    dayfirst: bool = False,
    timezone: str | None = None,
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Timestamps written as text, as tz-naive datetimes: ``(values, unparsable, has an offset)``
    (the last two boolean masks).

    A UTC offset after the time (``14:22:11 +0100``, ``…Z``, ``+01:00``; mixed offsets across a
    daylight-saving change are fine) is read separately: with `timezone` (an IANA name) the
    instant is converted to that zone's wall clock; without it the time is kept as written. Times
    without an offset are taken as already in `timezone`.
    """
    empty = s.eq("")
    parts = s.str.extract(_OFFSET)
    has_off = parts["off"].notna()
    text = s.where(~has_off, parts["wall"]).where(~empty)
    fmt = re.sub(r"\s*%[zZ]", "", date_format) if date_format else None
    if fmt:
        val = pd.to_datetime(text, format=fmt, errors="coerce")
    else:
        val = pd.to_datetime(text, format="ISO8601", errors="coerce", dayfirst=dayfirst)
    if getattr(val.dt, "tz", None) is not None:
        val = val.dt.tz_localize(None)
    if has_off.any() and timezone:
        off = parts["off"].where(has_off).str.replace(r"^(Z|UTC|GMT)$", "+00:00", regex=True)
        sign = np.where(off.str.startswith("-"), -1, 1)
        hours = pd.to_numeric(off.str.slice(1, 3), errors="coerce")
        minutes = pd.to_numeric(off.str.replace(":", "").str.slice(3, 5), errors="coerce")
        delta = pd.to_timedelta(sign * (hours * 60 + minutes.fillna(0)), unit="min")
        utc = (val - delta.fillna(pd.Timedelta(0))).dt.tz_localize("UTC")
        local = utc.dt.tz_convert(timezone).dt.tz_localize(None)
        val = val.where(~has_off, local)
    bad = val.isna() & ~empty
    return val, bad, has_off


def _by_value(s: pd.Series, parse: Any) -> tuple[pd.Series, ...]:
    """`parse` (returning Series) applied to the distinct values of `s` only, spread back to its
    rows: columns repeat values (counts, months, prices), and text parsing is the slow part."""
    codes, uniques = pd.factorize(s)
    parts = parse(pd.Series(uniques, dtype=object))
    return tuple(pd.Series(p.to_numpy()[codes], index=s.index) for p in parts)


def _typed_dates(s: pd.Series, timezone: str | None) -> pd.Series:
    """A column the file stores as timestamps (Excel, Parquet), tz-naive as in parse_dates."""
    s = pd.to_datetime(s)
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert(timezone).dt.tz_localize(None) if timezone else s.dt.tz_localize(None)
    return s


def _sniff_delimiter(header: str, expected: str) -> str | None:
    """The delimiter the header line seems to use, if it is not the expected one."""
    counts = {d: header.count(d) for d in [",", ";", "\t", "|"] if d != expected}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 and header.count(expected) == 0 else None


_SCIENTIFIC = r"[+-]?\d(?:[.,]\d+)?[eE][+-]?\d+"
IDS: tuple[str, ...] = ("auto", "text", "integer")


def read_table(path: str | Path, schema: tuple[Column, ...] | str, **kwargs: Any) -> pd.DataFrame:
    """Read a CSV (also ``.csv.gz``, ``.zip``), Excel or Parquet file (see :mod:`helpers.ingest`)
    into a typed DataFrame with canonical column names, or raise one :class:`DataValidationError`
    listing every problem. Keyword arguments: see :func:`read_table_info`."""
    return read_table_info(path, schema, **kwargs)[0]


def read_table_info(
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
    sheet: str | None = None,
    timezone: str | None = None,
    currency: str | None = None,
    ids: str = "auto",
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a CSV (also ``.csv.gz``, ``.zip``), Excel or Parquet file (see :mod:`helpers.ingest`)
    into a typed DataFrame with canonical column names, or raise one :class:`DataValidationError`
    listing every problem.

    `columns` maps canonical names to the file's own (``{"customer_id": "nr_klienta"}``); messages
    name the file's column with the canonical one in brackets (``column 'Beløp' (amount)``); a
    file column that is not mapped but has a canonical name is kept as ``"<name> (unmapped)"``.
    `date_format` is a strptime format (ISO 8601 when None); offsets are handled by
    :func:`parse_dates` with `timezone`; dates after `as_of` (default: now) are rejected in columns
    that must not be in the future. Money may carry `currency` text (:func:`parse_numbers`).
    `ids`: 'text' keeps identifiers as written (``00123`` and ``123`` differ), 'integer' requires
    whole numbers, 'auto' (the bundled data) makes integers of ids written as plain integers.
    Identifiers in scientific notation (``1.23457E+11``, digits lost by Excel) are refused.

    Returns (table, info); info holds ``positions`` (a function giving the line or row number of
    each row, for messages; computed only when asked),
    ``unit`` ('line' or 'row'), ``labels`` (canonical name -> message label) and ``offsets``
    (rows whose timestamps carried a UTC offset).
    """
    from helpers.ingest import read_raw

    path = Path(path)
    file = path.name
    cols = SCHEMAS[schema] if isinstance(schema, str) else schema
    table = read_raw(path, delimiter=delimiter, encoding=encoding, sheet=sheet)
    raw = table.frame
    mapped = {k: str(v) for k, v in (columns or {}).items()}
    used = set(mapped.values())
    renamed: dict[str, pd.Series] = {}
    typed: dict[str, pd.Series] = {}
    for canon, theirs in mapped.items():
        if theirs in raw.columns:
            renamed[canon] = raw[theirs]
            if theirs in table.typed:
                typed[canon] = table.typed[theirs]
    for c in raw.columns:
        if c in used:
            continue
        name = f"{c} (unmapped)" if c in mapped or c in renamed else c
        renamed[name] = raw[c]
        if c in table.typed:
            typed[name] = table.typed[c]
    labels = {c.name: (f"'{mapped[c.name]}' ({c.name})" if mapped.get(c.name, c.name) != c.name
                       else f"'{c.name}'") for c in cols}  # fmt: skip
    raw = pd.DataFrame(renamed, index=raw.index)
    problems: list[str] = []
    missing = [c.name for c in cols if c.required and c.name not in raw.columns]
    if missing:
        other = _sniff_delimiter(table.header, delimiter) if table.unit == "line" else None
        if other is not None:
            raise DataValidationError(
                [
                    f"{file}: the header has no {delimiter!r} but has {other!r}; the file looks delimited by {other!r}, not {delimiter!r} (set the delimiter)"
                ]
            )
        file_columns = [c for c in table.frame.columns]
        for name in missing:
            wanted = mapped.get(name, name)
            near = difflib.get_close_matches(wanted, file_columns, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            problems.append(
                f"{file}: required column '{wanted}'{f' (for {name})' if wanted != name else ''} is missing; the file has {file_columns}{hint}"
            )
        raise DataValidationError(problems)
    if raw.empty:
        raise DataValidationError([f"{file}: has a header but no data rows"])

    def problem(name: str, mask: pd.Series, s: pd.Series, what: str) -> str:
        return _problem(file, labels.get(name, name), mask, s, what, table.positions(), table.unit)

    now = pd.Timestamp(as_of) + pd.Timedelta(days=1) if as_of is not None else pd.Timestamp.now()
    out = {}
    offsets = 0
    for c in cols:
        if c.name not in raw.columns:
            continue
        s = raw[c.name].astype(str).str.strip()
        empty = s.eq("")
        if not c.nullable and c.kind not in ("text", "bool") and empty.any():
            problems.append(problem(c.name, empty, s, "empty"))
        if c.kind == "datetime":
            if c.name in typed:
                val = _typed_dates(typed[c.name], timezone)
                bad = val.isna() & ~empty
            else:
                parse = partial(
                    parse_dates, date_format=date_format, dayfirst=dayfirst, timezone=timezone
                )
                val, bad, has_off = _by_value(s, parse)
                offsets += int(has_off.sum())
            if bad.any():
                fmt = date_format or "ISO 8601, e.g. 2025-06-30"
                problems.append(problem(c.name, bad, s, f"unparsable as dates in the format {fmt}"))
            if c.not_in_future:
                future = val >= now
                if future.any():
                    when = (
                        f"after the as-of date {pd.Timestamp(as_of).date()}"
                        if as_of is not None
                        else "in the future"
                    )
                    problems.append(problem(c.name, future, s, when))
        elif c.kind in ("money", "float", "int"):
            parse = partial(
                parse_numbers, decimal=decimal, thousands=thousands,
                currency=currency if c.kind == "money" else None, check_ambiguous=c.kind != "float",
            )  # fmt: skip
            val, bad, ambiguous = _by_value(s, parse)
            if bad.any():
                problems.append(
                    problem(
                        c.name,
                        bad,
                        s,
                        f"not numeric (decimal separator {decimal!r}"
                        + (f", currency {currency})" if currency and c.kind == "money" else ")"),
                    )  # fmt: skip
                )
            if ambiguous.any():
                other = "," if decimal == "." else "."
                problems.append(
                    problem(
                        c.name, ambiguous, s,
                        f"ambiguous: a whole number with a thousands separator or a decimal "
                        f"number? The mapping has decimal {decimal!r} and no 'thousands': set "
                        f"thousands: {other!r} if {decimal!r} is the decimal point, or decimal: "
                        f"{other!r} and thousands: {decimal!r} if {decimal!r} groups thousands",
                    )
                )  # fmt: skip
            if c.kind == "money" and not c.allow_negative and (val < 0).any():
                problems.append(problem(c.name, val < 0, s, "negative"))
            if c.kind == "int":
                frac = val.notna() & (val != np.round(val))
                if frac.any():
                    problems.append(problem(c.name, frac, s, "not whole numbers"))
                val = val.round().astype("Int64")
                if not c.nullable and not val.isna().any():
                    val = val.astype("int64")
            if c.min is not None and (val < c.min).any():
                problems.append(problem(c.name, (val < c.min).fillna(False), s, f"below {c.min:g}"))
            if c.max is not None and (val > c.max).any():
                problems.append(problem(c.name, (val > c.max).fillna(False), s, f"above {c.max:g}"))
        elif c.kind == "bool":
            low = s.str.lower()
            bad = ~low.isin(_TRUE | _FALSE) & ~empty
            if bad.any():
                problems.append(problem(c.name, bad, s, "not true/false"))
            val = low.isin(_TRUE)
        elif c.kind == "id":
            sci = s.str.fullmatch(_SCIENTIFIC)
            if sci.any():
                problems.append(
                    problem(
                        c.name, sci, s,
                        "in scientific notation: the export lost digits of these ids (Excel "
                        "shortens long numbers); export the column as text",
                    )
                )  # fmt: skip
            if ids == "integer":
                num = pd.to_numeric(s.where(~empty & ~sci), errors="coerce")
                bad = (num.isna() | (num != np.round(num))) & ~empty & ~sci
                if bad.any():
                    problems.append(
                        problem(
                            c.name, bad, s, "not whole numbers (the mapping says id_type: integer)"
                        )
                    )
                val = num.round().astype("Int64")
            elif (
                ids == "auto" and s.where(~empty).dropna().str.fullmatch(r"-?[1-9]\d{0,17}|0").all()
            ):
                val = pd.to_numeric(s.where(~empty)).astype("Int64")
            else:
                val = s.where(~empty)
            if val.dtype == "Int64" and not c.nullable and not val.isna().any():
                val = val.astype("int64")
        elif c.kind == "category":
            bad = ~s.isin(c.values) & ~empty
            if bad.any():
                problems.append(problem(c.name, bad, s, f"not one of {list(c.values)}"))
            val = pd.Categorical(s.where(~empty), categories=list(c.values))
        else:
            val = s.where(~empty) if c.nullable else s
        if c.unique:
            key = pd.Series(val, index=s.index) if c.kind == "id" else s
            dup = key.duplicated(keep=False) & ~empty
            if dup.any():
                problems.append(
                    problem(
                        c.name, dup, s,
                        f"duplicated ({int(key[dup].nunique())} distinct ids appear more than once)",
                    )
                )  # fmt: skip
        out[c.name] = val
    if problems:
        raise DataValidationError(problems)
    extra = [c for c in raw.columns if c not in out]
    df = pd.DataFrame(out)
    for c in extra:  # keep the client's other columns, as text
        df[c] = raw[c]
    info = {"positions": table.positions, "unit": table.unit, "labels": labels, "offsets": offsets}
    return df, info


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
