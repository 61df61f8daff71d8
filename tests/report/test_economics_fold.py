"""The report's economics on a client's own file (issues 24 and 27): the mapping's economics folded
per amount paid by the one function notebook 04 uses, with returns, discounts and support tickets
netted and charged when the mapping names them, and said when it does not; the cohort curve's
support. A client-shaped file with Danish-style columns, checked against a pandas computation by
hand. Seconds to run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import economics
from helpers.report import analysis
from helpers.report.mapping import load_mapping
from helpers.report.orders import open_orders, read_client_orders, read_client_tables
from tests.report.clients import write_mapping

ECON = {"gross_margin_rate": 0.5, "shipping_per_order": 3.0, "cost_per_ticket": 10.0,
        "return_handling_cost": 6.0}  # fmt: skip


@pytest.fixture
def client(tmp_path) -> tuple[pd.DataFrame, pd.DataFrame, object, Path]:
    """60 orders of 20 customers (Danish column names), every 7th returned (yes/no), a discount
    on every 3rd; 9 support tickets; a mapping naming all of it. Returns the orders as written,
    the tickets, the mapping and the orders file."""
    rng = np.random.default_rng(3)
    n = 60
    raw = pd.DataFrame({
        "Ordre": [f"A{i:03d}" for i in range(n)],
        "Kunde": [f"K{i % 20:02d}" for i in range(n)],
        "Dato": pd.date_range("2025-01-01", periods=n, freq="5D").strftime("%Y-%m-%d"),
        "Beloeb": rng.uniform(10, 90, n).round(2),
        "Rabat": np.where(np.arange(n) % 3 == 0, 5.0, 0.0),
        "Retur": np.where(np.arange(n) % 7 == 0, "yes", "no"),
    })  # fmt: skip
    raw.to_csv(tmp_path / "ordrer.csv", index=False)
    tickets = pd.DataFrame({"Kunde": [f"K{i:02d}" for i in range(9)],
                            "Oprettet": ["2025-03-01 10:00"] * 9})  # fmt: skip
    tickets.to_csv(tmp_path / "sager.csv", index=False)
    path = write_mapping(
        tmp_path / "m.yaml",
        columns={"customer_id": "Kunde", "order_date": "Dato", "amount": "Beloeb",
                 "order_id": "Ordre", "discount": "Rabat", "returned": "Retur"},
        as_of="2025-12-31", economics=ECON,
        tables={"tickets": {"file": "sager.csv",
                            "columns": {"customer_id": "Kunde", "opened_at": "Oprettet"}}},
    )  # fmt: skip
    return raw, tickets, load_mapping(path), tmp_path / "ordrer.csv"


def by_hand(raw: pd.DataFrame, n_tickets: int) -> tuple[float, float]:
    """m = sum(margin of kept orders) / sum(amount); c = shipping + returns and tickets per order."""
    g, kept = ECON["gross_margin_rate"], raw["Retur"].eq("no")
    margin = (raw["Beloeb"] - (1 - g) * (raw["Beloeb"] + raw["Rabat"])).where(kept, 0.0)
    m = margin.sum() / raw["Beloeb"].sum()
    c = (ECON["shipping_per_order"] + ECON["return_handling_cost"] * (~kept).sum() / len(raw)
         + ECON["cost_per_ticket"] * n_tickets / len(raw))  # fmt: skip
    return float(m), float(c)


def test_returns_discounts_and_tickets_are_netted_and_charged_when_mapped(client):
    raw, tickets, mapping, data = client
    orders, notes = read_client_orders(data, mapping)
    assert notes["reader"] == "duckdb"  # a yes/no column is read on the fast path
    tk = read_client_tables(orders, notes)["tickets"]
    econ, fold = analysis.fold_economics(orders, economics.from_mapping(ECON), tk)
    m, c = by_hand(raw, len(tickets))
    assert econ.gross_margin_rate == pytest.approx(m) and fold["margin_rate"] == pytest.approx(m)
    assert econ.shipping_per_order == pytest.approx(c) and fold["cost_per_order"] == pytest.approx(
        c
    )
    assert (econ.cost_per_ticket, econ.return_handling_cost) == (0.0, 0.0)  # inside c
    returned = raw["Retur"].eq("yes")
    assert fold["returned_orders"] == returned.sum() == 9
    assert fold["returned_amount"] == pytest.approx(raw.loc[returned, "Beloeb"].sum())
    assert fold["discount_amount"] == pytest.approx(raw["Rabat"].sum())
    assert m < ECON["gross_margin_rate"]  # discounts and returns come out of the margin
    inputs = analysis.unused_inputs(mapping, economics.from_mapping(ECON), notes, fold)
    assert inputs["returns"] == "returned" and inputs["discounts"] == "mapped"
    assert inputs["unused_costs"] == {}
    # the DuckDB engine fetches the three columns and folds alike
    table, _ = open_orders((orders, notes), "duckdb")
    e2, f2 = analysis.fold_economics(table, economics.from_mapping(ECON), tk)
    assert e2.gross_margin_rate == pytest.approx(m) and e2.shipping_per_order == pytest.approx(c)
    assert f2["returned_orders"] == 9


def test_without_returns_discounts_or_tickets_the_list_price_is_the_amount_paid(client):
    """m = g and c = shipping exactly; the report says returns are not in the file and lists
    the ticket and return costs as unused."""
    _, _, mapping, data = client
    cols = {k: v for k, v in mapping.columns.items() if k not in ("discount", "returned")}
    plain = replace(mapping, columns=cols, tables={})
    orders, notes = read_client_orders(data, plain)
    given = economics.from_mapping(ECON)
    econ, fold = analysis.fold_economics(orders, given, None)
    assert econ.gross_margin_rate == ECON["gross_margin_rate"]
    assert econ.shipping_per_order == ECON["shipping_per_order"]
    assert not (fold["returns_mapped"] or fold["discounts_mapped"] or fold["tickets_mapped"])
    inputs = analysis.unused_inputs(plain, given, notes, fold)
    assert inputs["returns"] == "not_mapped" and inputs["discounts"] == "not_mapped"
    assert inputs["unused_costs"] == {"cost_per_ticket": 10.0, "return_handling_cost": 6.0}


def test_cohort_support_by_hand():
    """Three cohorts observed to ages 3, 2 and 1 (a triangle): ages 0-1 rest on 3 cohorts, age 2
    on 2, age 3 on 1; with at least 2 wanted the curve thins from age 3."""
    counts = pd.DataFrame([[10, 5, 4, 3], [8, 4, 2, np.nan], [6, 3, np.nan, np.nan]])
    s = analysis.cohort_support(counts, min_cohorts=2)
    assert s["cohorts"] == {0: 3, 1: 3, 2: 2, 3: 1}
    assert (s["thin_from"], s["cohorts_at_thin"], s["min_cohorts"]) == (3, 1, 2)
    assert analysis.cohort_support(counts, min_cohorts=1)["thin_from"] is None
    assert analysis.cohort_support(counts, min_cohorts=4)["thin_from"] == 1


@pytest.mark.parametrize("columns", [("discount", "returned"), ("discount",), ("returned",), ()])
def test_the_engines_order_sums_equal_the_frames_exactly(columns):
    """engine.order_sums (one aggregate, exact sums at the money scale) equals
    economics.OrderSums.of the same rows in pandas to the last bit, with missing discounts and
    missing returned flags, on DuckDB, whatever the order of the rows; and the fold from the sums
    equals the per-order formula: m = sum(order_margin) / sum(amount) (order_margin, the
    per-order definition) to 1e-12."""
    from helpers.report import engine

    rng = np.random.default_rng(7)
    n = 5000
    frame = pd.DataFrame({"amount": np.round(rng.gamma(2.0, 40.0, n), 2)})
    if "discount" in columns:
        disc = np.round(rng.choice([0.0, 5.0, 12.5], n), 2)
        frame["discount"] = pd.Series(disc).mask(rng.random(n) < 0.1)  # some missing
    if "returned" in columns:
        frame["returned"] = pd.Series(rng.random(n) < 0.08, dtype="boolean").mask(
            rng.random(n) < 0.05
        )
    want = economics.OrderSums.of(frame)
    for rows in (np.arange(n), rng.permutation(n)):
        con = engine.connect()
        got = engine.order_sums(con.create_table("o", frame.iloc[rows].reset_index(drop=True)))
        assert got == want
        con.disconnect()
    econ = economics.from_mapping(ECON)
    by_order = float(economics.order_margin(frame, econ).sum() / frame["amount"].sum())
    assert economics.net_margin_rate(want, econ) == pytest.approx(by_order, rel=1e-12)
    assert want.returned == (
        int(frame["returned"].fillna(False).sum()) if "returned" in columns else 0
    )
