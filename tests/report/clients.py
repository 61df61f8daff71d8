"""Test data of the client-report tests: the bundled orders as the sample mapping sees them, a
second "client" in another format, small clients, and the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from helpers import paths, report
from helpers.report import exports

ORDERS = paths.DATASETS / "orders.csv"
SAMPLE_MAPPING = paths.NOTEBOOKS / "08_sample_mapping.yaml"
CHROMIUM = Path("/usr/bin/chromium")

#: one small export of each registered shape: the rules, not the size, are under test
SMALL_EXPORTS = {
    "uci_exclude": lambda f: exports.uci_online_retail(f, customers=25, refunds="exclude"),
    "uci_net": lambda f: exports.uci_online_retail(f, customers=25, refunds="net"),
    "shopify": lambda f: exports.shopify_orders(f, customers=25),
    "stripe": lambda f: exports.stripe_payments(f, customers=25),
    "polish": lambda f: exports.polish_shop(f, customers=25),
}


# --------------------------------------------------------------------------------------------
# test data: the bundled orders as the sample mapping sees them, and a second "client"


def raw_orders() -> pd.DataFrame:
    return pd.read_csv(ORDERS, dtype=str, keep_default_na=False)


def write_mapping(path: Path, **keys) -> Path:
    path.write_text(yaml.safe_dump(keys, allow_unicode=True), encoding="utf-8")
    return path


def second_client(folder: Path) -> tuple[Path, Path]:
    """datasets/orders.csv as another client exports it: Polish column names, no order id, day-first
    dates with dots, comma decimals with '.' for thousands, ';' delimiter, PLN, cp1250."""
    raw = raw_orders()
    when = pd.to_datetime(raw["order_date"])
    cents_total = np.round(raw["amount"].astype(float).to_numpy() * 100).astype(np.int64)
    whole, cents = cents_total // 100, cents_total % 100
    high, low = pd.Series(whole // 1000), pd.Series(whole % 1000)
    euros = np.where(
        high > 0, high.astype(str) + "." + low.astype(str).str.zfill(3), low.astype(str)
    )
    text = pd.Series(euros) + "," + pd.Series(cents).astype(str).str.zfill(2)
    client = pd.DataFrame(
        {
            "nr_klienta": raw["customer_id"],
            "data_zamówienia": when.dt.strftime("%d.%m.%Y %H:%M:%S"),
            "kwota": text,
            "kanał": raw["channel"].replace({"web": "sklep internetowy", "app": "aplikacja"}),
        }
    )
    data = folder / "zamowienia.csv"
    client.to_csv(data, sep=";", index=False, encoding="cp1250")
    mapping = write_mapping(
        folder / "klient.yaml",
        columns={
            "customer_id": "nr_klienta",
            "order_date": "data_zamówienia",
            "amount": "kwota",
            "channel": "kanał",
        },
        date_format="%d.%m.%Y %H:%M:%S",
        decimal=",",
        thousands=".",
        delimiter=";",
        encoding="cp1250",
        currency="PLN",
        as_of="2025-12-31",
    )
    return data, mapping


def expected_metrics(as_of: str = "2025-12-31") -> dict:
    """The headline figures of the bundled orders, computed independently with plain pandas."""
    o = pd.read_csv(ORDERS, parse_dates=["order_date"])
    o = o[o["order_date"] < pd.Timestamp(as_of) + pd.Timedelta(days=1)]
    per_customer = o.groupby("customer_id").size()
    q = o["order_date"].dt.to_period("Q")
    buyers = {p: set(g) for p, g in o.groupby(q)["customer_id"]}
    quarters = sorted(buyers)
    rates = [
        len(buyers[b] & buyers[a]) / len(buyers[a])
        for a, b in zip(quarters[:-1], quarters[1:], strict=True)
    ]
    return {
        "customers": o["customer_id"].nunique(),
        "purchases": len(o),
        "revenue": round(o["amount"].sum(), 2),
        "average_order_value": round(o["amount"].mean(), 2),
        "repeat_purchase_rate": round(float((per_customer >= 2).mean()), 4),
        "last_period": str(quarters[-1]),
        "retention_last_period": round(rates[-1], 4),
        "churn_last_period": round(1 - rates[-1], 4),
        "retention_mean_last_4": round(float(np.mean(rates[-4:])), 4),
    }


def orders_only_mapping(folder: Path) -> Path:
    """The sample mapping without its survey, campaign and loyalty tables (whose customers a
    small client does not have), written into `folder`."""
    raw = yaml.safe_load(SAMPLE_MAPPING.read_text(encoding="utf-8"))
    raw.pop("tables", None)
    return write_mapping(folder / "orders_only.yaml", **raw)


def small_client(folder: Path, rows: int = 40) -> tuple[pd.DataFrame, Path, Path]:
    """The first `rows` bundled orders with the sample mapping's orders keys: the base for the
    malformed files."""
    raw = raw_orders().head(rows)
    data = folder / "orders.csv"
    raw.to_csv(data, index=False)
    return raw, data, orders_only_mapping(folder)


def cli_args(data: Path, mapping: Path, name: str, root: Path) -> list[str]:
    """The report command's arguments for one run."""
    return [
        "--data",
        str(data),
        "--mapping",
        str(mapping),
        "--name",
        name,
        "--reports-dir",
        str(root),
    ]


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    rc = report.main(args)
    out, err = capsys.readouterr()
    return rc, out, err


def assert_nothing_left(root: Path) -> None:
    assert not root.exists() or not any(root.iterdir()), sorted(p.name for p in root.iterdir())
