"""The report's words and numbers in the client's language: Babel-formatted money, shares,
counts and dates, and the data note's sentences from the message catalogues.

:func:`escape` (defined beside the catalogues, :mod:`helpers.report.text`) is the one place where text from the client's file, mapping or command line is made
safe for the report's HTML (and the Markdown that becomes HTML)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

from helpers.report import text
from helpers.report.text import escape


def note_text(note: str, T: text.Catalogue, fmt: Formatter) -> str:
    """A data-note sentence of :func:`helpers.report.orders.read_client_orders` in the report's language:
    its message key filled with the values formatted by the locale (counts, money, and the kinds of
    refund rows named in the catalogue); a plain sentence without a key is returned as it is."""
    key, values = getattr(note, "key", None), getattr(note, "values", None)
    if key is None or values is None:
        return escape(note)

    def kind(k: str) -> str:
        if k.startswith("status "):
            return T("kind.status", status=k[len("status ") :])
        return T("kind." + k.replace(" ", "_"))

    shown: dict[str, str] = {}
    for name, value in values.items():
        if name in ("revenue", "amount"):
            shown[name] = fmt.money(value)
        elif name == "kinds":
            shown[name] = ", ".join(f"{kind(k)}: {fmt.num(v)}" for k, v in value.items())
        elif name == "statuses":
            shown[name] = ", ".join(f"{escape(k)}: {fmt.num(v)}" for k, v in value.items())
        elif isinstance(value, int | float):
            shown[name] = fmt.num(value)
        else:
            shown[name] = str(value)
    return T(key, **shown)


class Formatter:
    """Client-grade numbers with Babel (CLDR): money with thousands separators and the currency,
    shares as percentages, counts as integers, dates in the locale's medium format. One object per
    report so the currency and locale are named once."""

    def __init__(self, currency: str, locale: str = "en"):
        self.currency, self.locale = currency, locale

    def _pattern(self, kind: str, digits: int) -> str:
        """The locale's own currency or percent pattern (symbol placement, spacing) with
        `digits` decimals."""
        from babel import Locale

        loc = Locale.parse(self.locale)
        pat = (
            loc.currency_formats["standard"] if kind == "money" else loc.percent_formats[None]
        ).pattern
        frac = "0" + ("." + "0" * digits if digits else "")
        return re.sub(r"0(?:\.0+)?(?=[^0-9#]|$)", frac, pat)

    def money(self, x: float, digits: int = 0) -> str:
        from babel.numbers import format_currency

        if x is None or pd.isna(x):
            return "–"
        return format_currency(
            x, self.currency, format=self._pattern("money", digits), locale=self.locale,
            currency_digits=False,
        )  # fmt: skip

    def pct(self, x: float, digits: int = 1) -> str:
        from babel.numbers import format_percent

        if x is None or pd.isna(x):
            return "–"
        return format_percent(x, format=self._pattern("pct", digits), locale=self.locale)

    def num(self, x: float, digits: int = 0) -> str:
        from babel.numbers import format_decimal

        if x is None or pd.isna(x):
            return "–"
        return format_decimal(
            x, format="#,##0" + ("." + "0" * digits if digits else ""), locale=self.locale
        )

    def date(self, day: str | pd.Timestamp) -> str:
        from babel.dates import format_date

        return format_date(pd.Timestamp(day).date(), "short", locale=self.locale)

    def table(self, df: pd.DataFrame, money: Sequence[str] = (), pct: Sequence[str] = (),
              num: Sequence[str] = (), dec: Sequence[str] = (), digits: int = 2) -> pd.DataFrame:  # fmt: skip
        """A copy of `df` with the named columns as formatted text (money, percentages, integers,
        decimals with `digits`); other columns unchanged."""
        out = df.copy().astype(object)
        for c in money:
            out[c] = [self.money(v) for v in df[c]]
        for c in pct:
            out[c] = [self.pct(v) for v in df[c]]
        for c in num:
            out[c] = [self.num(v) for v in df[c]]
        for c in dec:
            out[c] = [self.num(v, digits) for v in df[c]]
        return out
