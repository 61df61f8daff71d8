"""Text to values, by the rules every reader of the project shares: numbers (decimal and
thousands separators, currency text, accounting negatives), dates (a strptime format or ISO 8601,
UTC offsets), true/false words, scientific-notation ids and delimiter sniffing.

The pandas reader (:mod:`helpers.tables.pandas_reader`) calls these functions; the DuckDB reader
(:mod:`helpers.tables.duckdb_reader`) writes the same rules as SQL from the same constants, and
``tests/tables/test_readers.py`` holds the two equal.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CURRENCY_TEXT", "SPACES", "WHITESPACE", "STRIP_RE", "EDGE_RE", "SCIENTIFIC", "TRUE", "FALSE", "parse_numbers", "parse_dates",
    "by_value", "typed_dates", "sniff_delimiter",
]  # fmt: skip

TRUE = {"true", "1", "yes", "y", "t"}
FALSE = {"false", "0", "no", "n", "f"}


#: How a currency may be written beside an amount (symbols and codes), longest first.
CURRENCY_TEXT: dict[str, tuple[str, ...]] = {
    "EUR": ("EUR", "€"), "USD": ("US$", "USD", "$"), "GBP": ("GBP", "£"),
    "PLN": ("PLN", "zł", "zl"), "NOK": ("NOK", "kr.", "kr"), "SEK": ("SEK", "kr.", "kr"),
    "DKK": ("DKK", "kr.", "kr"), "CHF": ("CHF", "SFr.", "Fr."), "CZK": ("CZK", "Kč"),
    "RUB": ("RUB", "руб.", "руб", "₽"), "JPY": ("JPY", "¥"), "CAD": ("CAD", "CA$", "C$", "$"),
    "AUD": ("AUD", "AU$", "A$", "$"), "INR": ("INR", "₹"),
}  # fmt: skip
SPACES = "[\u00a0\u202f\u2009\u2007\u2008 ]"  # no-break, narrow no-break, thin, figure spaces
#: What Python's ``str.strip()`` removes from a cell's ends (``str.isspace``: the ASCII blanks, the
#: separators U+001C-U+001F, U+0085, the no-break and other Unicode spaces): every reader's blanks,
#: as literal characters (one regular expression for DuckDB, PostgreSQL and Spark alike).
WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
#: The blanks at both ends of a text, as a regular expression to replace by '' (all matches).
STRIP_RE = f"^[{WHITESPACE}]+|[{WHITESPACE}]+$"
#: A text with a blank at either end (only those need :data:`STRIP_RE`).
EDGE_RE = f"^[{WHITESPACE}]|[{WHITESPACE}]$"


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
    s = s.str.replace("\u2212", "-", regex=False).str.replace(SPACES, "", regex=True)
    if currency:
        signs = sorted(CURRENCY_TEXT.get(currency.upper(), ()) + (currency,), key=len, reverse=True)
        s = s.str.replace("|".join(re.escape(x) for x in signs), "", regex=True)
    paren = s.str.fullmatch(r"\(.*\)")
    s = s.where(~paren, s.str.slice(1, -1))
    sign = s.str.extract(r"^([+-]?)")[0].fillna("")
    body = s.str.replace(r"^[+-]", "", regex=True)
    de, oe = re.escape(d), re.escape(o)
    plain = body.str.fullmatch(rf"\d+(?:{de}\d+)?|{de}\d+")
    t = thousands if thousands is not None and not re.fullmatch(SPACES, thousands) else None
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


def by_value(s: pd.Series, parse: Any) -> tuple[pd.Series, ...]:
    """`parse` (returning Series) applied to the distinct values of `s` only, spread back to its
    rows: columns repeat values (counts, months, prices), and text parsing is the slow part."""
    codes, uniques = pd.factorize(s)
    parts = parse(pd.Series(uniques, dtype=object))
    return tuple(pd.Series(p.to_numpy()[codes], index=s.index) for p in parts)


def typed_dates(s: pd.Series, timezone: str | None) -> pd.Series:
    """A column the file stores as timestamps (Excel, Parquet), tz-naive as in parse_dates."""
    s = pd.to_datetime(s)
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert(timezone).dt.tz_localize(None) if timezone else s.dt.tz_localize(None)
    return s


def sniff_delimiter(header: str, expected: str) -> str | None:
    """The delimiter the header line seems to use, if it is not the expected one."""
    counts = {d: header.count(d) for d in [",", ";", "\t", "|"] if d != expected}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 and header.count(expected) == 0 else None


SCIENTIFIC = r"[+-]?\d(?:[.,]\d+)?[eE][+-]?\d+"
