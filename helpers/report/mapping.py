"""A client's export described by a small YAML mapping, read into the canonical orders table.

A consultant gets an export with the client's own column names, date format, decimal separator,
currency, file type and row shape. The mapping file says how to read it; everything not given
falls back to the defaults below, so the smallest mapping names just the three required columns::

    columns:                     # canonical name: the client's column name
      customer_id: nr_klienta    # required
      order_date: data_zamowienia  # required
      amount: kwota              # required unless quantity and unit_price are mapped; money per row
      order_id: nr_zamowienia    # optional; when absent each row is one order (named by its line)
      quantity: Quantity         # optional: amount = quantity x unit_price when amount is not mapped
      unit_price: UnitPrice      # optional (see quantity)
      refunded_amount: Refunded  # optional: money refunded on the row (payments exports)
      discount: Rabatt           # optional: discount given, inside the amount paid (list price =
                                 # amount + discount): it comes out of the margin
      returned: Retur            # optional: true/yes/1 for a returned order: its margin is netted
                                 # and economics' return_handling_cost charged
      channel: kanal             # optional: any other column is kept, as text
    rows: orders                 # orders (default: one row per order, order ids unique) or
                                 # order_lines (one row per line; lines of one order_id are summed)
    sheet: Orders                # Excel only: the sheet to read (default: the first)
    date_format: "%d.%m.%Y"      # strptime format; default ISO 8601 (2025-06-30 or 2025-06-30 14:05:00)
    timezone: Europe/Oslo        # IANA name: timestamps with a UTC offset (+0100, Z) are converted
                                 # to it; default none: times are kept as written (wall clock)
    decimal: ","                 # default "."
    thousands: " "               # default none (then '1,234' or '1.234' is refused as ambiguous)
    delimiter: ";"               # default ","
    encoding: utf-8              # default utf-8 (e.g. cp1250, latin-1); a byte-order mark wins
    currency: PLN                # ISO 4217 code; amounts are never converted; its symbol or code may appear
                                 # in the amounts ('1 234,50 zł', '$1,234.50'); default EUR
    id_type: text                # text (default: '00123' and '123' are two ids) or integer
    as_of: "2025-06-30"          # last day of data; default: the day of the last row in the file
    after_as_of: report          # rows after as_of: report (default: left out and counted in the
                                 # data note, as helpers.periods defines as-of) or error
    period: Q                    # retention period: M (month) or Q (quarter, default)
    pseudonymize: true           # hide customer ids in the HTML report (default true)
    exports: safe                # customers.csv, at_risk_customers.csv: safe (default: a text cell
                                 # beginning with = + - @, a tab or a carriage return gets a
                                 # leading apostrophe, so a spreadsheet shows it instead of running
                                 # it as a formula; numbers stay numbers) or raw (cells as in the
                                 # file, for a CRM import that must match ids exactly)
    refunds: reject              # refunds and cancellations: reject (default), exclude or net
    cancellations: {column: InvoiceNo, prefix: "C"}   # rows whose column starts with the prefix
                                 # are cancellations (their amount counts as negative)
    status: {column: Financial Status, keep: [paid, partially_refunded], cancelled: [refunded]}
                                 # keep: statuses that are orders; cancelled: refunded in full;
                                 # any other status (failed, voided, pending) is left out, counted
    missing_customer: error      # rows without a customer id: error (default) or drop (counted)
    customer_placeholders: [NULL, "0", guest]  # texts that mean "no customer" (default: see
                                 # MISSING_CUSTOMER_TEXT; compared without case)
    economics: {gross_margin_rate: 0.3}  # the client's economics (helpers.economics.from_mapping):
                                 # gross_margin_rate is a share of the list price (amount + discount);
                                 # the report folds it per amount paid on the discount and returned
                                 # columns and a tickets table when mapped
                                 # (helpers.report.analysis.fold_economics), and lists the costs the
                                 # data do not let it charge as unused
    language: en                 # report language: en, nb, pl, nl or ru (translations: later)
    tables: {survey: {file: survey.csv, columns: {customer_id: Respondent, date: Submitted,
                      score: Score}}}   # the client's survey, campaign and loyalty tables beside
                                 # the orders (helpers.report.extra_tables)
    unmatched_customers: 0.05    # refuse such a table when more of its customers match no order

Refunds (negative amounts, cancellations, refunded statuses and refunded amounts) follow one
documented policy:

- ``reject``: a refund is a data error (the report does not run; the message says how many);
- ``exclude``: refunded and cancelled rows are dropped before the analysis and counted;
- ``net``: refunds stay in the table and reduce revenue (a refunded amount is subtracted from its
  row, a cancellation is a negative row), but only rows with an amount >= 0 count as purchases.

What was dropped, netted, summed or converted is listed, with counts and money, in
``notes["data_note"]`` for the report's data note. Validation of the file itself is
:func:`helpers.tables.read_table`'s: one error listing every problem.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from helpers import economics as _economics
from helpers.economics import Economics
from helpers.report import extra_tables
from helpers.report.extra_tables import TableSpec
from helpers.tables import SCHEMAS, Column, DataValidationError

__all__ = [
    "REQUIRED",
    "REFUND_POLICIES",
    "ROWS",
    "LANGUAGES",
    "MISSING_CUSTOMER_TEXT",
    "ClientMapping",
    "load_mapping",
    "mapping_as_dict",
    "mapping_from_dict",
    "client_schema",
]

REQUIRED: tuple[str, ...] = ("customer_id", "order_date", "amount")
REFUND_POLICIES: tuple[str, ...] = ("reject", "exclude", "net")
PERIODS: tuple[str, ...] = ("M", "Q")
ROWS: tuple[str, ...] = ("orders", "order_lines")
ID_TYPES: tuple[str, ...] = ("text", "integer")
EXPORTS: tuple[str, ...] = ("safe", "raw")
#: What to do with rows after the mapping's as_of: count them in the data note, or refuse the file.
AFTER_AS_OF: tuple[str, ...] = ("report", "error")
MISSING_CUSTOMER: tuple[str, ...] = ("error", "drop")
LANGUAGES: tuple[str, ...] = ("en", "nb", "pl", "nl", "ru")
#: Customer ids that mean "no customer" (guest checkouts, database nulls), compared without case.
MISSING_CUSTOMER_TEXT: tuple[str, ...] = (
    "null", "none", "nan", "n/a", "na", "#n/a", "0", "-", "guest", "unknown",
)  # fmt: skip
#: Canonical columns beyond the orders table that a client file may map.
LINE_COLUMNS: dict[str, Column] = {
    "quantity": Column("quantity", "float"),
    "unit_price": Column("unit_price", "money", allow_negative=True),
    "refunded_amount": Column("refunded_amount", "money", nullable=True),
    "status": Column("status", "text", nullable=True),
    "cancellation": Column("cancellation", "text", nullable=True),
}


@dataclass(frozen=True)
class ClientMapping:
    """How to read one client's export (see the module docstring for each key)."""

    columns: dict[str, str] = field(default_factory=lambda: {c: c for c in REQUIRED})
    date_format: str | None = None
    decimal: str = "."
    thousands: str | None = None
    delimiter: str = ","
    encoding: str = "utf-8"
    currency: str = "EUR"
    as_of: str | None = None
    after_as_of: str = "report"
    period: str = "Q"
    pseudonymize: bool = True
    exports: str = "safe"
    refunds: str = "reject"
    rows: str = "orders"
    sheet: str | None = None
    timezone: str | None = None
    id_type: str = "text"
    cancellations: dict[str, str] | None = None
    status: dict[str, Any] | None = None
    missing_customer: str = "error"
    customer_placeholders: tuple[str, ...] = MISSING_CUSTOMER_TEXT
    economics: Economics = field(default_factory=lambda: _economics.from_mapping(None))
    language: str = "en"
    tables: dict[str, TableSpec] = field(default_factory=dict)
    unmatched_customers: float = extra_tables.UNMATCHED_DEFAULT

    def read_columns(self) -> dict[str, str]:
        """`columns` plus the status and cancellation columns under canonical names."""
        cols = dict(self.columns)
        if self.status and self.status["column"] not in cols.values():
            cols["status"] = self.status["column"]
        if self.cancellations and self.cancellations["column"] not in cols.values():
            cols["cancellation"] = self.cancellations["column"]
        return cols

    def read_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`helpers.tables.read_table`."""
        return {
            "columns": self.read_columns(), "date_format": self.date_format,
            "decimal": self.decimal, "thousands": self.thousands, "delimiter": self.delimiter,
            "encoding": self.encoding,
            "as_of": self.as_of if self.after_as_of == "error" else None, "sheet": self.sheet,
            "timezone": self.timezone, "currency": self.currency, "ids": self.id_type,
        }  # fmt: skip


_KEYS = tuple(ClientMapping.__dataclass_fields__)


def _choice(name: str, raw: dict[str, Any], key: str, allowed: tuple[str, ...]) -> list[str]:
    if key in raw and raw[key] is not None and str(raw[key]) not in allowed:
        return [f"{name}: '{key}' is {raw[key]!r}; use one of {list(allowed)}"]
    return []


#: The strptime directives (Python 3.11's ``datetime.strptime``) a date_format may use.
STRPTIME_DIRECTIVES = "aAbBcdfGHIjmMpSuUVwWxXyYzZ%"


def _date_format_problems(name: str, fmt: str) -> list[str]:
    """An unknown directive (``%i``) or a lone ``%`` at the end of `fmt`: one sentence, before any
    file is read (strptime would raise on the first date)."""
    bad = [m[1] or "%" for m in re.finditer(r"%(.?)", fmt.replace("%%", "")) if m[1] not in
           STRPTIME_DIRECTIVES or m[1] == ""]  # fmt: skip
    if not bad:
        return []
    shown = ", ".join(
        dict.fromkeys(f"'%{b}'" if b != "%" else "a lone '%' at the end" for b in bad)
    )
    return [
        f"{name}: 'date_format' {fmt!r} has {shown}, not a strptime directive; use e.g. "
        f"'%d.%m.%Y' or '%Y-%m-%d %H:%M' (%d day, %m month, %Y year, %H hour, %M minute, %S second)"
    ]


def _mapping_problems(name: str, raw: dict[str, Any], folder: Path = Path(".")) -> list[str]:
    problems = extra_tables.spec_problems(name, raw.get("tables"), folder)
    share = raw.get("unmatched_customers")
    if share is not None and (
        isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1
    ):
        problems.append(f"{name}: 'unmatched_customers' must be a share from 0 to 1, e.g. 0.05")
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
        cols = {}
    else:
        lines = "quantity" in cols and "unit_price" in cols
        for req in REQUIRED:
            if req not in cols and not (req == "amount" and lines):
                extra = " (or both quantity and unit_price)" if req == "amount" else ""
                problems.append(
                    f"{name}: 'columns' must name the file's column for '{req}'{extra} (required: {list(REQUIRED)})"
                )
        bad = [k for k, v in cols.items() if not isinstance(v, str | int) or str(v).strip() == ""]
        if bad:
            problems.append(f"{name}: 'columns' entries {bad} must be column names")
        if ("quantity" in cols) != ("unit_price" in cols) and "amount" not in cols:
            problems.append(
                f"{name}: 'columns' maps only one of quantity and unit_price; map both (amount = quantity x unit_price) or map amount"
            )
    if raw.get("refunds", "reject") not in REFUND_POLICIES:
        problems.append(
            f"{name}: 'refunds' is {raw['refunds']!r}; use one of {list(REFUND_POLICIES)}"
        )
    if str(raw.get("period", "Q")) not in PERIODS:
        problems.append(f"{name}: 'period' is {raw['period']!r}; use one of {list(PERIODS)}")
    problems += _choice(name, raw, "rows", ROWS)
    problems += _choice(name, raw, "id_type", ID_TYPES)
    problems += _choice(name, raw, "exports", EXPORTS)
    problems += _choice(name, raw, "after_as_of", AFTER_AS_OF)
    problems += _choice(name, raw, "missing_customer", MISSING_CUSTOMER)
    problems += _choice(name, raw, "language", LANGUAGES)
    if raw.get("rows") == "order_lines" and "order_id" not in cols:
        problems.append(
            f"{name}: 'rows: order_lines' needs the order number column: map order_id in 'columns' (lines of one order_id are summed into one order)"
        )
    if not isinstance(raw.get("pseudonymize", True), bool):
        problems.append(f"{name}: 'pseudonymize' must be true or false")
    for key in ("decimal", "delimiter"):
        if key in raw and (not isinstance(raw[key], str) or len(raw[key]) != 1):
            problems.append(f"{name}: '{key}' must be one character, e.g. ',' or ';'")
    if raw.get("thousands") is not None and raw.get("thousands") == raw.get("decimal", "."):
        problems.append(
            f"{name}: 'thousands' and 'decimal' are both {raw['thousands']!r}; they must differ"
        )
    if raw.get("currency") is not None and not re.fullmatch(r"[A-Za-z]{3}", str(raw["currency"])):
        problems.append(
            f"{name}: 'currency' {raw['currency']!r} must be a three-letter ISO 4217 code, e.g. EUR, PLN or USD"
        )
    if raw.get("date_format") is not None:
        problems += _date_format_problems(name, str(raw["date_format"]))
    if raw.get("as_of") is not None:
        try:
            pd.Timestamp(str(raw["as_of"]))
        except ValueError:
            problems.append(f"{name}: 'as_of' {raw['as_of']!r} is not a date (use YYYY-MM-DD)")
    if raw.get("timezone") is not None:
        try:
            zoneinfo.ZoneInfo(str(raw["timezone"]))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.append(
                f"{name}: 'timezone' {raw['timezone']!r} is not an IANA time zone name (e.g. Europe/Oslo, UTC)"
            )
    canc = raw.get("cancellations")
    if canc is not None and (
        not isinstance(canc, dict)
        or set(canc) != {"column", "prefix"}
        or not str(canc.get("prefix", ""))
    ):
        problems.append(
            f"{name}: 'cancellations' must be {{column: <the file's column>, prefix: <text>}}, e.g. {{column: InvoiceNo, prefix: C}}"
        )
    status = raw.get("status")
    if status is not None and (
        not isinstance(status, dict)
        or "column" not in status
        or not isinstance(status.get("keep"), list)
        or not set(status) <= {"column", "keep", "cancelled"}
        or not isinstance(status.get("cancelled", []), list)
    ):
        problems.append(
            f"{name}: 'status' must be {{column: <the file's column>, keep: [statuses that are orders], cancelled: [statuses refunded in full]}}, e.g. {{column: Status, keep: [paid], cancelled: [refunded]}}"
        )
    places = raw.get("customer_placeholders")
    if places is not None and not isinstance(places, list):
        problems.append(f"{name}: 'customer_placeholders' must be a list, e.g. [NULL, '0', guest]")
    econ = raw.get("economics")
    if econ is not None:
        if not isinstance(econ, dict):
            problems.append(
                f"{name}: 'economics' must be a block of keys, e.g. {{gross_margin_rate: 0.3}}"
            )
        else:
            try:
                _economics.from_mapping(econ)
            except (TypeError, ValueError) as err:
                problems.append(f"{name}: 'economics': {err}")
    return problems


def load_mapping(path: str | Path, tables_dir: str | Path | None = None) -> ClientMapping:
    """Read and check a YAML mapping file; raises :class:`DataValidationError` listing every problem.

    `tables_dir`: read the survey, campaign and loyalty files (``tables``) from this folder
    instead of the mapping's, by their file names: the sample mapping on a company the generator
    wrote elsewhere (its files have the bundled names)."""
    import yaml

    p = Path(path)
    if not p.exists():
        raise DataValidationError([f"{p.name}: mapping file not found at {p}"])
    if p.is_dir():
        raise DataValidationError([f"{p.name}: is a folder, not a mapping file ({p})"])
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise DataValidationError([f"{p.name}: not valid YAML ({err})"]) from None
    if not isinstance(raw, dict):
        raise DataValidationError(
            [f"{p.name}: expected keys such as 'columns', 'date_format', 'decimal'"]
        )
    folder = Path(tables_dir) if tables_dir is not None else p.parent
    if tables_dir is not None and isinstance(raw.get("tables"), dict):
        raw["tables"] = {
            k: {**v, "file": Path(str(v["file"])).name}
            if isinstance(v, dict) and "file" in v
            else v
            for k, v in raw["tables"].items()
        }
    problems = _mapping_problems(p.name, raw, folder)
    if problems:
        raise DataValidationError(problems)
    values = {k: v for k, v in raw.items() if v is not None}
    values["columns"] = {str(k): str(v) for k, v in raw["columns"].items()}
    for key in ("as_of", "period", "currency", "date_format", "sheet", "timezone", "language",
                "exports"):  # fmt: skip
        if key in values:
            values[key] = str(values[key])
    if "cancellations" in values:
        values["cancellations"] = {k: str(v) for k, v in values["cancellations"].items()}
    if "status" in values:
        st = values["status"]
        values["status"] = {
            "column": str(st["column"]),
            "keep": [str(v) for v in st["keep"]],
            "cancelled": [str(v) for v in st.get("cancelled", [])],
        }
    if "customer_placeholders" in values:
        values["customer_placeholders"] = tuple(str(v) for v in values["customer_placeholders"])
    if "economics" in values:
        values["economics"] = _economics.from_mapping(values["economics"])
    if "tables" in values:
        values["tables"] = extra_tables.parse_specs(values["tables"], folder)
    if "unmatched_customers" in values:
        values["unmatched_customers"] = float(values["unmatched_customers"])
    return ClientMapping(**values)


def mapping_as_dict(mapping: ClientMapping) -> dict[str, Any]:
    """The mapping as JSON-ready values (what travels with the validated orders to notebook 08,
    so the report reads the mapping file once); :func:`mapping_from_dict` is the inverse."""
    values = asdict(mapping)
    values["customer_placeholders"] = list(mapping.customer_placeholders)
    return values


def mapping_from_dict(values: dict[str, Any]) -> ClientMapping:
    """The :class:`ClientMapping` of :func:`mapping_as_dict`'s values (already checked once)."""
    values = dict(values)
    values["customer_placeholders"] = tuple(values["customer_placeholders"])
    values["economics"] = Economics(**values["economics"])
    values["tables"] = {
        kind: TableSpec(**{**spec, "arms": {k: tuple(v) for k, v in spec["arms"].items()}
                           if spec.get("arms") else None})
        for kind, spec in values.get("tables", {}).items()
    }  # fmt: skip
    return ClientMapping(**values)


def client_schema(mapping: ClientMapping) -> tuple[Column, ...]:
    """The orders schema for this client: every mapped column is required (a misnamed one is
    reported with a did-you-mean), `order_id` is optional (unique unless the rows are order
    lines), customer ids may be missing (handled by `missing_customer`), and negative amounts
    are allowed unless the refunds policy is ``reject`` with no cancellations to recognise."""
    base = {c.name: c for c in SCHEMAS["orders"]} | LINE_COLUMNS
    cols = []
    mapped = mapping.read_columns()
    derived = "amount" not in mapped and {"quantity", "unit_price"} <= set(mapped)
    wanted = [c for c in REQUIRED if not (c == "amount" and derived)]
    negative_ok = mapping.refunds != "reject" or mapping.cancellations is not None
    for name in dict.fromkeys([*wanted, *mapped]):
        col = base.get(name, Column(name, "text", nullable=True))
        col = replace(col, required=True)
        if name in ("amount", "unit_price"):
            col = replace(col, allow_negative=negative_ok)
        if name == "customer_id":
            col = replace(col, nullable=True)
        if name == "order_id" and mapping.rows == "order_lines":
            col = replace(col, unique=False)
        cols.append(col)
    if "order_id" not in mapped:
        cols.append(replace(base["order_id"], required=False))
    return tuple(cols)
