"""The client's mapping: its keys, defaults and problems, and the orders it reads."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from helpers import economics, report
from helpers.report.mapping import ClientMapping, client_schema, load_mapping
from helpers.report.orders import read_client_orders
from helpers.tables import DataValidationError
from tests.report.clients import (
    ORDERS,
    SAMPLE_MAPPING,
    second_client,
    write_mapping,
)  # fmt: skip

# --------------------------------------------------------------------------------------------
# the mapping


def test_sample_mapping_reads_the_bundled_orders_like_the_loader():
    mapping = load_mapping(SAMPLE_MAPPING)
    orders, notes = read_client_orders(ORDERS, mapping)
    raw = pd.read_csv(ORDERS, parse_dates=["order_date"])
    assert notes == {
        "rows": len(raw),
        "refunds": "reject",
        "refund_rows": 0,
        "refund_amount": 0.0,
        "as_of": "2025-12-31",
        "data_note": [],
        "reader": "duckdb",
        "mapping": mapping,
    }
    assert list(orders.columns[:4]) == ["order_id", "customer_id", "order_date", "amount"]
    assert orders["amount"].sum() == pytest.approx(raw["amount"].sum())
    assert orders["order_id"].is_unique  # ids are text unless the mapping says id_type: integer
    assert set(orders["order_id"]) == set(raw["order_id"].astype(str))


def test_sample_mapping_carries_the_sample_economics():
    """One economics: the sample mapping carries economics.SAMPLE itself (the report folds it per
    amount paid on the mapped discount and returned columns and tickets table, as notebook 04
    does: tests/test_economics.py holds the two equal on the bundled data)."""
    econ = load_mapping(SAMPLE_MAPPING).economics
    assert econ == economics.SAMPLE
    assert report.client_economics(load_mapping(SAMPLE_MAPPING)) == economics.SAMPLE


def test_minimal_mapping_falls_back_to_documented_defaults(tmp_path):
    m = load_mapping(
        write_mapping(
            tmp_path / "m.yaml", columns={"customer_id": "c", "order_date": "d", "amount": "a"}
        )
    )
    assert (m.decimal, m.delimiter, m.encoding, m.currency, m.period, m.pseudonymize, m.refunds, m.as_of) == (
        ".", ",", "utf-8", "EUR", "Q", True, "reject", None,
    )  # fmt: skip


def test_mapping_problems_are_listed_together(tmp_path):
    path = write_mapping(
        tmp_path / "bad.yaml",
        columns={"customer_id": "c", "amount": "a"},
        delimeter=";",
        refunds="keep",
        period="Y",
    )
    with pytest.raises(DataValidationError) as err:
        load_mapping(path)
    text = str(err.value)
    assert "unknown key 'delimeter'; did you mean 'delimiter'?" in text
    assert "'order_date'" in text and "required" in text
    assert "'refunds' is 'keep'" in text and "'period' is 'Y'" in text
    assert len(err.value.problems) == 4


def test_mapping_separators_must_differ(tmp_path):
    path = write_mapping(
        tmp_path / "m.yaml",
        columns={"customer_id": "c", "order_date": "d", "amount": "a"},
        decimal=",",
        thousands=",",
    )
    with pytest.raises(DataValidationError, match="'thousands' and 'decimal' are both ','"):
        load_mapping(path)


def test_mapping_not_yaml_or_missing(tmp_path):
    (tmp_path / "x.yaml").write_text("columns: [unclosed\n")
    with pytest.raises(DataValidationError, match="x.yaml: not valid YAML"):
        load_mapping(tmp_path / "x.yaml")
    with pytest.raises(DataValidationError, match="mapping file not found"):
        load_mapping(tmp_path / "nope.yaml")


def test_client_schema_requires_mapped_columns_and_follows_the_refund_policy():
    m = ClientMapping(
        columns={"customer_id": "c", "order_date": "d", "amount": "a", "country": "land"},
        refunds="net",
    )
    cols = {c.name: c for c in client_schema(m)}
    assert cols["country"].required and cols["country"].kind == "text"
    assert cols["amount"].allow_negative and not cols["order_id"].required
    assert not {c.name: c for c in client_schema(ClientMapping())}["amount"].allow_negative


def test_second_client_reads_to_the_same_orders(tmp_path):
    data, mapping_path = second_client(tmp_path)
    mapping = load_mapping(mapping_path)
    got, notes = read_client_orders(data, mapping)
    want, _ = read_client_orders(ORDERS, load_mapping(SAMPLE_MAPPING))
    assert mapping.currency == "PLN" and notes["rows"] == len(want)
    assert (got["amount"].to_numpy() == want["amount"].to_numpy()).all()
    assert (got["order_date"].to_numpy() == want["order_date"].to_numpy()).all()
    assert (got["customer_id"].to_numpy() == want["customer_id"].to_numpy()).all()
    assert set(got["channel"]) == {"sklep internetowy", "aplikacja"} | (
        set(want["channel"]) - {"web", "app"}
    )
    assert got["order_id"].is_unique  # no order ids in the file: one row, one order (line number)


@pytest.mark.parametrize(
    ("policy", "rows", "revenue"),
    [("exclude", 3, 60.0), ("net", 4, 45.0)],
)
def test_refund_policies(tmp_path, policy, rows, revenue):
    csv = "id,cust,day,amt\n1,1,2025-01-05,10\n2,1,2025-02-05,20\n3,2,2025-02-07,30\n4,1,2025-02-09,-15\n"
    (tmp_path / "r.csv").write_text(csv)
    cols = {"order_id": "id", "customer_id": "cust", "order_date": "day", "amount": "amt"}
    orders, notes = read_client_orders(
        tmp_path / "r.csv", ClientMapping(columns=cols, refunds=policy)
    )
    assert len(orders) == rows and orders["amount"].sum() == revenue
    assert (
        notes["refund_rows"] == 1
        and notes["refund_amount"] == -15.0
        and notes["as_of"] == "2025-02-09"
    )
    head = report.headline(orders, notes["as_of"])
    assert head["purchases"] == 3 and head["revenue"] == revenue  # a refund is never a purchase
    assert head["repeat_purchase_rate"] == 0.5
    with pytest.raises(DataValidationError, match="1 row is negative"):
        read_client_orders(tmp_path / "r.csv", ClientMapping(columns=cols))


def test_rows_after_as_of_are_counted_in_the_data_note_or_refused(tmp_path):
    """One meaning of as-of (helpers.periods): a client's rows after the mapping's as-of day are
    left out and counted in the data note (with their revenue); with ``after_as_of: error`` they
    are a data error naming the column and the lines."""
    raw = yaml.safe_load(SAMPLE_MAPPING.read_text())
    raw.pop("tables")  # the orders only (the sample's other files are named from its folder)
    raw["as_of"] = "2025-06-30"
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(raw))
    orders, notes = read_client_orders(ORDERS, load_mapping(path))
    bundled = pd.read_csv(ORDERS, parse_dates=["order_date"])
    later = bundled["order_date"] >= pd.Timestamp("2025-07-01")
    assert orders["order_date"].max() < pd.Timestamp("2025-07-01")
    assert len(orders) == int((~later).sum())
    (note,) = [n for n in notes["data_note"] if getattr(n, "key", "") == "data_note.after_as_of"]
    assert note.values["rows"] == int(later.sum())
    assert note.values["revenue"] == pytest.approx(bundled.loc[later, "amount"].sum())
    raw["after_as_of"] = "error"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(DataValidationError, match="after the as-of date 2025-06-30"):
        read_client_orders(ORDERS, load_mapping(path))
    raw["after_as_of"] = "drop"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(DataValidationError, match="after_as_of"):
        load_mapping(path)
