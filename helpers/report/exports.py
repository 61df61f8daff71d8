"""Realistic client exports for testing the client report's reader: seeded, with their truth.

Each function writes one export the way a shop, ERP or payment system produces it, together with
the YAML mapping a consultant would write for it, and returns an :class:`Export` whose
``expected`` table is the truth the reader must recover: one row per order that should reach
the analysis (order_id, customer_id as text, order_date as tz-naive wall clock, amount), computed
from the generator's own numbers (integer cents), never by reading the file back.

- :func:`uci_online_retail`: like the UCI Online Retail data set (Chen, Sain & Guo 2012): one
  row per invoice line, ``C``-prefixed cancellation invoices with negative quantities, about a
  quarter of the rows without a CustomerID, some zero prices, ``M/D/YYYY H:MM`` dates;
- :func:`shopify_orders`: like a Shopify order export: the e-mail as customer id, ``Name``
  (``#1001``) repeated on every line, order-level cells (Financial Status, Total) on the first
  line only, Europe/Oslo timestamps with their UTC offset (+0100 / +0200 across daylight saving);
- :func:`stripe_payments`: like a Stripe payments export: one row per payment, ``Status``
  (Paid, Refunded, Failed), ``Amount Refunded`` (partial refunds), UTC ``…Z`` timestamps, guest
  payments without a customer;
- :func:`polish_shop`: a small Polish shop's CSV: ``;``, UTF-8 with a byte-order mark,
  ``1 234,50 zł`` with narrow no-break spaces, accounting ``(12,50)`` and U+2212 minus for refunds.

:func:`beyond_orders` writes a company's (the sample's, or one generated into a folder) survey,
campaign and loyalty data as a consultant receives them beside the orders: a survey tool's CSV,
a campaign tool's send log with its holdout and a loyalty programme's member list, with the
mapping that names all four tables (:mod:`helpers.report.extra_tables`).

:func:`write_as` writes the same table as ``.xlsx``, ``.parquet``, ``.csv.gz``, ``.zip`` or UTF-16;
``python -m helpers.report.exports --out DIR`` writes the whole set with its mappings.

:data:`KINDS` registers every export kind and :data:`FILE_TYPES` every file type of
:func:`write_as`: a test of the exports iterates them, so a new kind is tested by registering it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

__all__ = [
    "Export",
    "uci_online_retail",
    "shopify_orders",
    "stripe_payments",
    "polish_shop",
    "beyond_orders",
    "write_as",
    "write_mapping",
    "KINDS",
    "FILE_TYPES",
    "main",
]


@dataclass
class Export:
    """A written export: its file, its mapping file, the table written (text cells) and the
    truth: ``expected`` orders (order_id, customer_id, order_date, amount) and ``facts`` (counts
    of what the reader must drop, net or sum)."""

    path: Path
    mapping_path: Path
    mapping: dict[str, Any]
    table: pd.DataFrame
    expected: pd.DataFrame
    facts: dict[str, Any] = field(default_factory=dict)


def write_mapping(path: Path, mapping: dict[str, Any]) -> Path:
    """The mapping as a YAML file (unicode kept)."""
    path.write_text(yaml.safe_dump(mapping, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _orders(
    rng: np.random.Generator,
    customers: int,
    start: str,
    days: int,
    mean_orders: float = 4.0,
    max_lines: int = 4,
) -> pd.DataFrame:
    """Order lines of a shop: customers buy a Poisson number of orders (at least one) on uniform
    days between 08:00 and 21:59 local time (never in a daylight-saving gap), 1..max_lines lines
    each, quantity 1-12, prices in whole cents. Columns: order (0..), customer (0..), when,
    line, quantity, cents (unit price)."""
    per_customer = 1 + rng.poisson(mean_orders - 1, customers)
    customer = np.repeat(np.arange(customers), per_customer)
    n = len(customer)
    day = rng.integers(0, days, n)
    seconds = rng.integers(8 * 3600, 22 * 3600, n)
    when = pd.Timestamp(start) + pd.to_timedelta(day, unit="D") + pd.to_timedelta(seconds, unit="s")
    order = pd.DataFrame({"customer": customer, "when": when}).sort_values("when", kind="stable")
    order["order"] = np.arange(n)
    lines = rng.integers(1, max_lines + 1, n)
    out = order.loc[order.index.repeat(lines)].reset_index(drop=True)
    out["line"] = out.groupby("order").cumcount()
    m = len(out)
    out["quantity"] = rng.integers(1, 13, m)
    out["cents"] = rng.choice([85, 125, 165, 210, 255, 295, 339, 425, 495, 850, 1250, 1995], m)
    return out[["order", "customer", "when", "line", "quantity", "cents"]]


def _expected(lines: pd.DataFrame, order_id: pd.Series, customer_id: pd.Series,
              when: pd.Series, cents: pd.Series) -> pd.DataFrame:  # fmt: skip
    """One row per order from per-line truth (cents summed exactly)."""
    df = pd.DataFrame({"order_id": order_id.to_numpy(), "customer_id": customer_id.to_numpy(),
                       "order_date": when.to_numpy(), "cents": cents.to_numpy()})  # fmt: skip
    g = df.groupby("order_id", sort=False)
    out = g.agg(customer_id=("customer_id", "first"), order_date=("order_date", "min"),
                cents=("cents", "sum")).reset_index()  # fmt: skip
    out["amount"] = out.pop("cents") / 100
    return out.sort_values(["order_date", "order_id"], kind="stable").reset_index(drop=True)


def _uci_date(when: pd.Series) -> pd.Series:
    """``12/1/2010 8:26``: month/day/year hour:minute without leading zeros, as in the UCI file."""
    return (when.dt.month.astype(str) + "/" + when.dt.day.astype(str) + "/" + when.dt.year.astype(str)
            + " " + when.dt.hour.astype(str) + ":" + when.dt.minute.astype(str).str.zfill(2))  # fmt: skip


def uci_online_retail(
    folder: Path, seed: int = 1, customers: int = 300, refunds: str = "exclude"
) -> Export:
    """An export like UCI Online Retail (see the module docstring); `refunds` is the mapping's
    policy (``exclude`` or ``net``) and decides which orders `expected` holds."""
    rng = np.random.default_rng(seed)
    lines = _orders(rng, customers, "2023-01-02", 720)
    lines["when"] = lines["when"].dt.floor("min")  # the file has minutes only
    n_orders = lines["order"].max() + 1
    guest = rng.random(n_orders) < 0.25  # guest invoices: no CustomerID on any of their lines
    zero_order = rng.random(n_orders) < 0.01  # free orders (samples, replacements)
    lines.loc[rng.random(len(lines)) < 0.02, "cents"] = 0  # free lines inside paid orders
    lines.loc[zero_order[lines["order"]], "cents"] = 0
    invoice = (536365 + lines["order"]).astype(str)
    cid = (12346 + lines["customer"]).astype(str).where(~guest[lines["order"]], "")
    # cancellations: a later 'C' invoice taking back the first line of 3 % of the known invoices
    first = lines.loc[(lines["line"] == 0) & ~guest[lines["order"]] & ~zero_order[lines["order"]]]
    canc = first.loc[rng.random(len(first)) < 0.03].copy()
    canc["when"] = canc["when"] + pd.to_timedelta(rng.integers(1, 20, len(canc)), unit="D")
    canc = canc.loc[canc["when"] < pd.Timestamp("2024-12-22")]
    canc_invoice = "C" + (600000 + np.arange(len(canc))).astype(str)
    table = pd.DataFrame({
        "InvoiceNo": np.concatenate([invoice.to_numpy(), canc_invoice]),
        "StockCode": np.concatenate([(85123 + lines["cents"] % 97).astype(str), (85123 + canc["cents"] % 97).astype(str)]),
        "Description": np.concatenate([np.where(lines["line"] == 1, "SET OF 3 CAKE TINS, PANTRY DESIGN", "WHITE HANGING HEART T-LIGHT HOLDER"),
                                       np.full(len(canc), "WHITE HANGING HEART T-LIGHT HOLDER")]),
        "Quantity": np.concatenate([lines["quantity"], -canc["quantity"]]).astype(str),
        "InvoiceDate": pd.concat([_uci_date(lines["when"]), _uci_date(canc["when"])]).to_numpy(),
        "UnitPrice": np.concatenate([lines["cents"], canc["cents"]]) / 100,
        "CustomerID": np.concatenate([cid.to_numpy(), (12346 + canc["customer"]).astype(str).to_numpy()]),
        "Country": "United Kingdom",
        "_when": pd.concat([lines["when"], canc["when"]]).to_numpy(),
        "_cents": np.concatenate([lines["quantity"] * lines["cents"], -canc["quantity"] * canc["cents"]]),
    })  # fmt: skip
    table["UnitPrice"] = table["UnitPrice"].map(
        lambda v: f"{v:.2f}".rstrip("0").rstrip(".") if v else "0"
    )
    table = table.sort_values("_when", kind="stable").reset_index(drop=True)
    cents, when = table.pop("_cents"), table.pop("_when")
    keep = table["CustomerID"].ne("")
    if refunds == "exclude":
        keep &= ~table["InvoiceNo"].str.startswith("C")
    expected = _expected(table[keep], table.loc[keep, "InvoiceNo"], table.loc[keep, "CustomerID"],
                         when[keep], cents[keep])  # fmt: skip
    path = folder / "Online Retail.csv"
    table.to_csv(path, index=False)
    mapping = {
        "columns": {"customer_id": "CustomerID", "order_date": "InvoiceDate", "order_id": "InvoiceNo",
                    "quantity": "Quantity", "unit_price": "UnitPrice"},
        "rows": "order_lines", "date_format": "%m/%d/%Y %H:%M",
        "cancellations": {"column": "InvoiceNo", "prefix": "C"},
        "missing_customer": "drop", "refunds": refunds, "currency": "GBP", "thousands": ",",
    }  # fmt: skip
    facts = {
        "lines": len(table),
        "guest_rows": int(table["CustomerID"].eq("").sum()),
        "guest_revenue": float(cents[table["CustomerID"].eq("")].sum() / 100),
        "cancellation_rows": int(table["InvoiceNo"].str.startswith("C").sum()),
        "cancelled_amount": float(cents[table["InvoiceNo"].str.startswith("C")].sum() / 100),
        "zero_value_orders": int(expected["amount"].eq(0).sum()),
    }
    return Export(path, write_mapping(folder / "online_retail.yaml", mapping), mapping, table,
                  expected, facts)  # fmt: skip


def _oslo_offset(local: pd.Series) -> pd.Series:
    """``+0100`` in winter, ``+0200`` in summer: the UTC offset of Europe/Oslo local times."""
    aware = local.dt.tz_localize("Europe/Oslo")
    hours = (local - aware.dt.tz_convert("UTC").dt.tz_localize(None)).dt.total_seconds() / 3600
    return hours.astype(int).map(lambda h: f"+{h:02d}00")


def shopify_orders(folder: Path, seed: int = 2, customers: int = 250) -> Export:
    """An export like Shopify's orders CSV (see the module docstring). The mapping keeps
    ``paid`` and ``partially_refunded`` orders, reads ``refunded`` as cancelled (excluded) and
    leaves ``voided`` and ``pending`` out; times are converted to Europe/Oslo (they are Oslo
    times already, so `expected` holds the times as written)."""
    rng = np.random.default_rng(seed)
    lines = _orders(rng, customers, "2023-01-02", 720, max_lines=3)
    n_orders = lines["order"].max() + 1
    status = rng.choice(
        ["paid", "refunded", "voided", "pending"], n_orders, p=[0.86, 0.05, 0.05, 0.04]
    )
    first = lines["line"].eq(0)
    cents = lines["quantity"] * lines["cents"] * 10  # NOK prices: 8.50 .. 199.50
    total = cents.groupby(lines["order"]).transform("sum")
    name = "#" + (1001 + lines["order"]).astype(str)
    email = "kunde" + lines["customer"].astype(str) + "@example.no"
    table = pd.DataFrame({
        "Name": name,
        "Email": email,
        "Financial Status": np.where(first, status[lines["order"]], ""),
        "Created at": lines["when"].dt.strftime("%Y-%m-%d %H:%M:%S") + " " + _oslo_offset(lines["when"]),
        "Currency": "NOK",
        "Total": np.where(first, (total / 100).map("{:.2f}".format), ""),
        "Lineitem quantity": lines["quantity"].astype(str),
        "Lineitem name": np.where(lines["line"] % 2 == 0, "Ullgenser, str. M", "Lue \"Nordlys\""),
        "Lineitem price": (lines["cents"] * 10 / 100).map("{:.2f}".format),
    })  # fmt: skip
    keep = status[lines["order"]] == "paid"
    expected = _expected(table[keep], name[keep], email[keep], lines.loc[keep, "when"], cents[keep])
    path = folder / "orders_export.csv"
    table.to_csv(path, index=False)
    mapping = {
        "columns": {"customer_id": "Email", "order_date": "Created at", "order_id": "Name",
                    "quantity": "Lineitem quantity", "unit_price": "Lineitem price"},
        "rows": "order_lines", "timezone": "Europe/Oslo",
        "status": {"column": "Financial Status", "keep": ["paid"], "cancelled": ["refunded"]},
        "refunds": "exclude", "currency": "NOK",
    }  # fmt: skip
    facts = {
        "lines": len(table),
        "orders_by_status": pd.Series(status).value_counts().to_dict(),
        "offsets": len(table),
    }
    return Export(path, write_mapping(folder / "shopify.yaml", mapping), mapping, table,
                  expected, facts)  # fmt: skip


def stripe_payments(folder: Path, seed: int = 3, customers: int = 250) -> Export:
    """An export like Stripe's payments CSV (see the module docstring); the mapping keeps Paid and
    Refunded payments, nets refunds (a refunded payment becomes a zero-value order), drops guest
    payments and converts the UTC times to America/New_York."""
    rng = np.random.default_rng(seed)
    lines = _orders(rng, customers, "2023-01-02", 720, max_lines=1)
    n = len(lines)
    cents = lines["quantity"] * lines["cents"]
    status = rng.choice(["Paid", "Refunded", "Failed"], n, p=[0.88, 0.05, 0.07])
    refunded = np.where(status == "Refunded", cents, 0)
    partial = (status == "Paid") & (rng.random(n) < 0.05)
    refunded = np.where(partial, cents // 4, refunded)
    guest = rng.random(n) < 0.1
    utc = lines["when"]  # generated as UTC instants
    table = pd.DataFrame({
        "id": "ch_3" + pd.Series(rng.integers(16**11, 16**12, n)).map("{:012x}".format),
        "Created (UTC)": utc.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Amount": (cents / 100).map("{:.2f}".format),
        "Amount Refunded": (pd.Series(refunded) / 100).map("{:.2f}".format),
        "Currency": "usd",
        "Status": status,
        "Customer ID": np.where(guest, "", "cus_" + (100000 + lines["customer"]).astype(str)),
        "Customer Email": np.where(guest, "", "buyer" + lines["customer"].astype(str) + "@example.com"),
    })  # fmt: skip
    keep = (status != "Failed") & ~guest
    local = utc.dt.tz_localize("UTC").dt.tz_convert("America/New_York").dt.tz_localize(None)
    net = cents - refunded
    expected = _expected(table[keep], table.loc[keep, "id"], table.loc[keep, "Customer ID"],
                         local[keep], net[keep])  # fmt: skip
    path = folder / "payments.csv"
    table.to_csv(path, index=False)
    mapping = {
        "columns": {"customer_id": "Customer ID", "order_date": "Created (UTC)", "order_id": "id",
                    "amount": "Amount", "refunded_amount": "Amount Refunded"},
        "status": {"column": "Status", "keep": ["Paid"], "cancelled": ["Refunded"]},
        "timezone": "America/New_York", "refunds": "net", "missing_customer": "drop",
        "currency": "USD",
    }  # fmt: skip
    facts = {
        "guest_rows": int(guest.sum()),  # dropped first
        "failed": int(((status == "Failed") & ~guest).sum()),
        "refunded_rows": int(((refunded > 0) & keep).sum()),
        "refunded_amount": float(refunded[keep].sum() / 100),
    }
    return Export(path, write_mapping(folder / "stripe.yaml", mapping), mapping, table,
                  expected, facts)  # fmt: skip


def _pl_money(cents: pd.Series, negative: str) -> pd.Series:
    """``1 234,50 zł`` with a narrow no-break space; negatives as ``(12,50 zł)`` or ``−12,50 zł``."""
    a = cents.abs()
    whole, rest = a // 100, (a % 100).astype(str).str.zfill(2)
    high, low = whole // 1000, (whole % 1000).astype(str)
    text = (
        np.where(high > 0, high.astype(str) + "\u202f" + low.str.zfill(3), low) + "," + rest + " zł"
    )
    text = pd.Series(text, index=cents.index)
    neg = "(" + text + ")" if negative == "paren" else "\u2212" + text
    return text.where(cents >= 0, neg)


def polish_shop(
    folder: Path, seed: int = 4, customers: int = 200, mean_orders: float = 4.0
) -> Export:
    """A Polish shop's CSV: ``;``, UTF-8 with a byte-order mark, day-first dates, amounts as
    ``1 234,50 zł`` (narrow no-break space), refunds as ``(12,50 zł)`` or ``−12,50 zł`` (U+2212),
    customer numbers with leading zeros (``00123`` is not ``123``); refunds netted. `customers` x
    `mean_orders` rows (the benchmark of issue 16 writes 1 M customers x 10)."""
    rng = np.random.default_rng(seed)
    lines = _orders(rng, customers, "2023-01-02", 720, mean_orders=mean_orders, max_lines=1)
    n = len(lines)
    cents = pd.Series(lines["quantity"] * lines["cents"] * 40)  # up to ~9 500 zł
    refund = rng.random(n) < 0.04
    cents = cents.where(~refund, -(cents // 3))
    ids = np.where(lines["customer"] % 2 == 0, lines["customer"].astype(str).str.zfill(5),
                   lines["customer"].astype(str))  # fmt: skip
    text = _pl_money(cents, "paren").where(np.arange(n) % 2 == 0, _pl_money(cents, "minus"))
    table = pd.DataFrame({
        "nr_zamówienia": (50000 + lines["order"]).astype(str),
        "nr_klienta": ids,
        "data": lines["when"].dt.strftime("%d.%m.%Y %H:%M"),
        "kwota": text,
        "kanał": np.where(rng.random(n) < 0.5, "sklep internetowy", "aplikacja"),
    })  # fmt: skip
    expected = _expected(table, table["nr_zamówienia"], table["nr_klienta"],
                         lines["when"].dt.floor("min"), cents)  # fmt: skip
    path = folder / "zamówienia.csv"
    table.to_csv(path, index=False, sep=";", encoding="utf-8-sig")
    mapping = {
        "columns": {"customer_id": "nr_klienta", "order_date": "data", "amount": "kwota",
                    "order_id": "nr_zamówienia", "channel": "kanał"},
        "date_format": "%d.%m.%Y %H:%M", "decimal": ",", "delimiter": ";", "currency": "PLN",
        "refunds": "net",
    }  # fmt: skip
    facts = {"refund_rows": int(refund.sum()), "refund_amount": float(cents[refund].sum() / 100)}
    return Export(path, write_mapping(folder / "sklep.yaml", mapping), mapping, table,
                  expected, facts)  # fmt: skip


def write_as(export: Export, kind: str, folder: Path | None = None) -> tuple[Path, Path]:
    """The same export as another file type: ``xlsx`` (sheet 'Online Retail', timestamps as
    Excel dates, numbers as numbers, ids as numbers where they are numbers), ``parquet`` (typed
    columns: timestamps, floats, ids as float with NaN for blanks as pandas writes them), ``csv.gz``,
    ``zip`` or ``utf16`` (a UTF-16 CSV with a byte-order mark). Returns (data path, mapping path)."""
    folder = folder or export.path.parent
    t = export.table.copy()
    mapping = dict(export.mapping)
    stem = export.path.stem.replace(" ", "_")
    if kind in ("xlsx", "parquet"):
        date_col = mapping["columns"]["order_date"]
        fmt = mapping.get("date_format")
        t[date_col] = pd.to_datetime(t[date_col], format=fmt) if fmt else t[date_col]
        for col, theirs in mapping["columns"].items():
            if col in ("quantity", "unit_price", "amount"):
                t[theirs] = pd.to_numeric(t[theirs])
            if col == "customer_id" and t[theirs].str.fullmatch(r"[1-9]\d*|").all():
                t[theirs] = pd.to_numeric(
                    t[theirs].replace("", np.nan)
                )  # float with NaN, as pandas has it
        path = folder / f"{stem}.{kind}"
        if kind == "xlsx":
            t.to_excel(path, sheet_name="Online Retail", index=False)
            mapping["sheet"] = "Online Retail"
        else:
            t.to_parquet(path, index=False)
        mapping.pop("date_format", None)
    elif kind == "csv.gz":
        path = folder / f"{stem}.csv.gz"
        t.to_csv(path, index=False, compression="gzip", sep=mapping.get("delimiter", ","))
    elif kind == "zip":
        path = folder / f"{stem}.zip"
        t.to_csv(path, index=False, sep=mapping.get("delimiter", ","),
                 compression={"method": "zip", "archive_name": f"{stem}.csv"})  # fmt: skip
    elif kind == "utf16":
        path = folder / f"{stem}-utf16.csv"
        t.to_csv(path, index=False, encoding="utf-16", sep=mapping.get("delimiter", ","))
    else:
        raise ValueError(f"unknown kind {kind!r}; use one of {list(FILE_TYPES)}")
    return path, write_mapping(folder / f"{stem}.{kind}.yaml", mapping)


#: Every export kind, by name: ``KINDS[name](folder, seed)`` writes it and returns its truth.
#: The survey tool's question, as its export names the score column.
SURVEY_QUESTION = "How likely are you to recommend us to a friend? (0-10)"


def beyond_orders(folder: Path, data_dir: str | Path | None = None) -> Path:
    """Write the survey, campaign and loyalty exports of the company in `data_dir` (default: the
    bundled datasets/) into `folder`, in the shapes client tools give them, and the mapping naming
    them beside the company's orders.csv (the mapping of notebook 08, plus ``tables``). Returns
    the mapping's path; the orders file is `data_dir`/orders.csv.

    - ``survey_responses.csv``: a survey tool's export: ``Respondent``, ``Submitted at``
      (``31/12/2025 14:05``), the question as the score's column, ``Anything else?`` (comment);
    - ``campaign_sends.csv``: a campaign tool's send log, ``;``-separated with decimal commas:
      ``Recipient ID``, ``Campaign``, ``Flow`` (birthday, anniversary, winback), ``Sent``
      (``31.12.2025``), ``Group`` (Treatment / Holdout),
      ``Cost per send``, ``Discount redeemed``;
    - ``loyalty_members.csv``: the programme's member list: ``Member``, ``Joined``, ``Tier`` (the
      member's latest tier);
    - ``loyalty_points.csv``: the programme's points ledger, one row per movement: ``Member``,
      ``Date`` (``2025-12-31 14:05:09``), ``Type`` (Earned, Redeemed, Expired), ``Points``
      (unsigned: the type says the direction); the mapping gives the point's value."""
    from helpers import paths

    src = paths.data_dir(data_dir)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    nps = pd.read_csv(src / "nps_responses.csv", parse_dates=["surveyed_at"])
    pd.DataFrame({
        "Respondent": nps["customer_id"],
        "Submitted at": nps["surveyed_at"].dt.strftime("%d/%m/%Y %H:%M"),
        SURVEY_QUESTION: nps["score"],
        "Anything else?": nps["comment"],
    }).to_csv(folder / "survey_responses.csv", index=False)  # fmt: skip
    sends = pd.read_csv(src / "campaigns.csv", parse_dates=["sent_at"])
    params = json.loads((src / "ground_truth.json").read_text())["parameters"]
    pd.DataFrame({
        "Recipient ID": sends["customer_id"],
        "Campaign": sends["campaign_id"],
        "Flow": sends["campaign_type"],
        "Sent": sends["sent_at"].dt.strftime("%d.%m.%Y"),
        "Group": sends["group"].map({"treatment": "Treatment", "control": "Holdout"}),
        "Cost per send": sends["send_cost"].map(lambda v: f"{v:.2f}".replace(".", ",")),
        "Discount redeemed": sends["coupon_discount"].map(lambda v: f"{v:.2f}".replace(".", ",")),
    }).to_csv(folder / "campaign_sends.csv", index=False, sep=";")  # fmt: skip
    events = pd.read_csv(src / "loyalty_events.csv", parse_dates=["event_at"])
    joined = events[events["event_type"].eq("join")].groupby("customer_id")["event_at"].min()
    tier = events.sort_values("event_at", kind="stable").groupby("customer_id")["tier"].last()
    pd.DataFrame({
        "Member": joined.index,
        "Joined": joined.dt.strftime("%Y-%m-%d").to_numpy(),
        "Tier": tier.reindex(joined.index).to_numpy(),
    }).to_csv(folder / "loyalty_members.csv", index=False)  # fmt: skip
    moves = events[events["event_type"].isin(["earn", "redeem", "expire"]) & events["points"].ne(0)]
    pd.DataFrame({
        "Member": moves["customer_id"],
        "Date": moves["event_at"].dt.strftime("%Y-%m-%d %H:%M:%S"),
        "Type": moves["event_type"].map({"earn": "Earned", "redeem": "Redeemed",
                                         "expire": "Expired"}),
        "Points": moves["points"].abs(),
    }).to_csv(folder / "loyalty_points.csv", index=False)  # fmt: skip
    mapping = yaml.safe_load((paths.NOTEBOOKS / "08_sample_mapping.yaml").read_text())
    mapping["tables"] = {
        "survey": {
            "file": "survey_responses.csv",
            "columns": {"customer_id": "Respondent", "date": "Submitted at",
                        "score": SURVEY_QUESTION, "comment": "Anything else?"},
            "date_format": "%d/%m/%Y %H:%M",
        },
        "campaigns": {
            "file": "campaign_sends.csv",
            "columns": {"customer_id": "Recipient ID", "campaign": "Campaign", "flow": "Flow",
                        "send_date": "Sent", "arm": "Group", "cost": "Cost per send",
                        "discount": "Discount redeemed"},
            "date_format": "%d.%m.%Y", "delimiter": ";", "decimal": ",",
            "arms": {"sent": ["Treatment"], "holdout": ["Holdout"]},
            "holdout_share": {  # the campaign tool's settings: the generator's, for this company
                flow: round(1 - float(params[f"{flow}_treatment_share"]), 6)
                for flow in sorted(sends["campaign_type"].unique())
            },
        },
        "loyalty": {
            "file": "loyalty_members.csv",
            "columns": {"customer_id": "Member", "join_date": "Joined", "tier": "Tier"},
        },
        "points": {
            "file": "loyalty_points.csv",
            "columns": {"customer_id": "Member", "date": "Date", "points": "Points",
                        "type": "Type"},
            "types": {"earn": ["Earned"], "redeem": ["Redeemed"], "expire": ["Expired"]},
            "point_value": float(params["point_value_eur"]),
        },
    }  # fmt: skip
    return write_mapping(folder / "mapping.yaml", mapping)


KINDS: dict[str, Callable[..., Export]] = {
    "uci_online_retail": uci_online_retail,
    "shopify_orders": shopify_orders,
    "stripe_payments": stripe_payments,
    "polish_shop": polish_shop,
}
#: Every file type :func:`write_as` writes the same table as.
FILE_TYPES: tuple[str, ...] = ("xlsx", "parquet", "csv.gz", "zip", "utf16")


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.report.exports --out DIR``: write the example exports and their mappings."""
    ap = argparse.ArgumentParser(
        prog="python -m helpers.report.exports",
        description="Write realistic client exports (UCI-, Shopify-, Stripe-like, a Polish "
        "shop) with their YAML mappings, and the UCI-like one as xlsx, parquet and csv.gz.",
    )
    ap.add_argument("--out", required=True, help="folder to write into (created if needed)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the first export (default 1)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    made = [make(out, args.seed + i) for i, make in enumerate(KINDS.values())]
    for kind in ("xlsx", "parquet", "csv.gz"):
        write_as(made[0], kind)
    beyond = out / "beyond_orders"
    beyond_orders(beyond)
    print(f"{beyond.name}/: survey, campaign and loyalty exports of the sample company "
          "(mapping.yaml; orders: datasets/orders.csv)")  # fmt: skip
    for e in made:
        print(
            f"{e.path.name}: {len(e.table):,} rows, {len(e.expected):,} orders expected ({e.mapping_path.name})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
