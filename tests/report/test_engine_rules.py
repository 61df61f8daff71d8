"""The mapping's row rules as engine expressions (issue 31, point 1, in part): statuses,
cancellations, refunds (exclude / net), missing customers and order lines summed into orders,
run by :func:`helpers.report.engine.mapping_rules` on the validated table, equal the pandas
reader (:func:`helpers.report.orders.read_client_orders`) on the exports of
:mod:`helpers.report.exports`: the same orders and the same counts."""

from __future__ import annotations

import dataclasses

import ibis
import numpy as np
import pandas as pd
import pytest

from helpers.report import engine, exports, mapping, orders
from helpers.tables import DataValidationError, read_table_info
from tests.report.clients import SMALL_EXPORTS as EXPORTS


def _both(export):
    m = mapping.load_mapping(export.mapping_path)
    expected, notes = orders.read_client_orders(export.path, m)
    validated, _ = read_table_info(
        export.path, mapping.client_schema(m), keep_unmapped=False, **m.read_kwargs()
    )
    got, counts = engine.mapping_rules(ibis.memtable(validated), m)
    return m, expected, notes, got.to_pandas(), counts


def _rows(df: pd.DataFrame) -> pd.DataFrame:
    out = df[["customer_id", "order_date", "amount"]].copy()
    out["customer_id"] = out["customer_id"].astype(str)
    out["order_date"] = pd.to_datetime(out["order_date"]).astype("datetime64[ns]")
    out["amount"] = out["amount"].astype(float).round(6)
    return out.sort_values(list(out.columns)).reset_index(drop=True)


@pytest.mark.parametrize("name", list(EXPORTS))
def test_mapping_rules_equal_the_pandas_reader(name, tmp_path):
    m, expected, notes, got, counts = _both(EXPORTS[name](tmp_path))
    a, b = _rows(expected), _rows(got)
    assert len(a) == len(b)
    pd.testing.assert_frame_equal(
        a[["customer_id", "order_date"]], b[["customer_id", "order_date"]]
    )
    np.testing.assert_allclose(b["amount"], a["amount"], rtol=1e-9, atol=1e-9)
    assert counts["refund_rows"] == notes["refund_rows"]
    assert counts["refund_amount"] == pytest.approx(notes["refund_amount"], abs=0.01)
    codes = {n.key: n.values for n in notes.get("data_note", []) if hasattr(n, "key")}
    assert codes  # every export has something left out, netted or summed
    if "data_note.other_status" in codes:
        assert counts["other_status"] == codes["data_note.other_status"]["rows"]
        assert counts["statuses"] == codes["data_note.other_status"]["statuses"]
    if "data_note.missing_customers" in codes:
        assert counts["missing_customers"] == codes["data_note.missing_customers"]["rows"]
    for key in ("data_note.refunds_excluded", "data_note.refunds_netted"):
        if key in codes:
            assert counts["kinds"] == codes[key]["kinds"]


def test_reject_raises_as_the_reader_does(tmp_path):
    e = exports.stripe_payments(tmp_path, customers=25)
    m = dataclasses.replace(mapping.load_mapping(e.mapping_path), refunds="reject")
    validated, _ = read_table_info(
        e.path, mapping.client_schema(m), keep_unmapped=False, **m.read_kwargs()
    )
    with pytest.raises(DataValidationError, match="refunds policy is 'reject'"):
        engine.mapping_rules(ibis.memtable(validated), m)


@pytest.mark.parametrize("placeholders", [["guest", "0"], [], ["x.y", "brak klienta"]])
def test_the_placeholder_pattern_finds_what_trimming_and_lower_casing_finds(placeholders):
    """engine._is_placeholder (one anchored pattern) marks the same ids as the trimmed,
    lower-cased text compared with the placeholders: blanks of each kind at either end, case,
    a placeholder's regex characters taken literally, a no-break or ideographic space a blank
    (as str.strip(), which the file readers trim every cell with)."""
    ids = ["guest", " Guest ", "\tGUEST\n", "0", " 0", "00", "", "   ", "guests", "a guest", None,
           "\v0\f", "x.y", "xzy", ".", "brak klienta", " BRAK KLIENTA\r", "\u00a0guest", "0\u3000", "\u00a0x"]  # fmt: skip
    t = ibis.memtable(pd.DataFrame({"customer_id": ids}))
    got = t.select(
        fast=engine._is_placeholder(t.customer_id, placeholders),
        slow=engine._lower_text(t.customer_id).isin([*placeholders, ""]),
    ).to_pandas()
    assert got["fast"].tolist() == got["slow"].tolist()
    expected = {  # by hand: which ids are placeholders
        "guest": [
            "guest",
            " Guest ",
            "\tGUEST\n",
            "0",
            " 0",
            "",
            "   ",
            None,
            "\v0\f",
            "\u00a0guest",
            "0\u3000",
        ],
        "": ["", "   ", None],
        "x.y": ["", "   ", None, "x.y", "brak klienta", " BRAK KLIENTA\r"],
    }[placeholders[0] if placeholders else ""]
    assert [i for i, f in zip(ids, got["fast"], strict=True) if f] == expected


@pytest.mark.parametrize("policy", ["net", "exclude"])
def test_without_a_refund_rule_the_amount_is_the_column_itself(policy):
    """With neither a status nor a refunded-amount column, nothing is refunded beyond the negative
    rows: the rules leave the amount as it is (no per-row CASE, which PostgreSQL inlined wherever
    the amount is used: 8 s for the money scale's scan of 10M rows), with the same rows and
    counts as with the no-op subtraction; with a status rule the refund is still subtracted."""
    df = pd.DataFrame({
        "customer_id": ["a", "a", "b", "c", "c"],
        "order_date": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-02-01", "2024-03-01",
                                      "2024-03-02"]),
        "amount": [10.0, -4.0, 7.5, 0.0, 3.25],
        "status": ["paid", "paid", "cancelled", "paid", "paid"],
    })  # fmt: skip
    plain = mapping.ClientMapping(refunds=policy)
    got, counts = engine.mapping_rules(ibis.memtable(df.drop(columns="status")), plain)
    sql = ibis.to_sql(got, dialect="postgres")
    assert "CASE" not in sql
    assert counts["refund_rows"] == 1 and counts["refund_amount"] == -4.0
    rows = got.to_pandas().sort_values(["customer_id", "order_date"])
    want = df if policy == "net" else df[df["amount"] >= 0]
    assert rows["amount"].tolist() == want["amount"].tolist()
    status = dataclasses.replace(plain, status={"column": "status", "keep": ["paid"],
                                                "cancelled": ["cancelled"]})  # fmt: skip
    got, counts = engine.mapping_rules(ibis.memtable(df), status)
    assert counts["refund_rows"] == 2
    amounts = got.to_pandas().set_index("customer_id")["amount"]
    assert ("b" not in amounts) if policy == "exclude" else amounts["b"] == 0.0


@pytest.mark.parametrize("policy", ["net", "exclude"])
def test_statuses_found_once_per_text_match_the_rows_as_trimming_each_row_does(policy):
    """The status rule finds each distinct status text's trimmed, lower-cased form once (the
    counts' ``status_values``: the texts as written, a missing one as None); given back, rows are
    matched against those texts exactly, and the rows, amounts and refunds are those of the
    rule that trims and lower-cases every row (no query) -- so the notebook's queries on a
    warehouse table no longer trim every row's status."""
    statuses = ["paid", " Paid", "PAID\t", None, "cancelled", "\vCancelled ", "refunded", "",
                "paid ", "Cancelled"]  # fmt: skip
    df = pd.DataFrame({
        "customer_id": list("abcdefghij"),
        "order_date": pd.to_datetime([f"2024-01-{d:02d}" for d in range(1, 11)]),
        "amount": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, -5.0, 90.0],
        "status": statuses,
    })  # fmt: skip
    for blank_kept in (False, True):
        keep = ["paid", ""] if blank_kept else ["paid"]
        m = mapping.ClientMapping(
            refunds=policy, status={"column": "status", "keep": keep, "cancelled": ["cancelled"]}
        )
        counted, counts = engine.mapping_rules(ibis.memtable(df), m)
        found = counts["status_values"]
        assert sorted(found["cancelled"]) == sorted(["cancelled", "\vCancelled ", "Cancelled"])
        want_keep = ["paid", " Paid", "PAID\t", "paid "] + ([None, ""] if blank_kept else [])
        assert sorted(found["keep"], key=str) == sorted(want_keep, key=str)
        assert counts["statuses"] == (
            {"refunded": 1} if blank_kept else {"(blank)": 2, "refunded": 1}
        )
        exact, _ = engine.mapping_rules(ibis.memtable(df), m, count=False, status_values=found)
        per_row, _ = engine.mapping_rules(ibis.memtable(df), m, count=False)
        a, b, c = (x.to_pandas().sort_values("customer_id", ignore_index=True)
                   for x in (counted, exact, per_row))  # fmt: skip
        pd.testing.assert_frame_equal(a, b)
        pd.testing.assert_frame_equal(a, c)
        assert len(a) == (9 if blank_kept else 7) - (policy == "exclude") * (3 + 1)


@pytest.mark.parametrize("prefix", ["C", "c", "C ", " C", "", "CX", "-", "a.b", "C\n", "C C"])
def test_the_cancellation_prefix_is_matched_as_trimming_each_row_matches(prefix):
    """engine._trimmed_prefix (one anchored pattern, no trimmed copy) marks the rows that the
    trimmed text's startswith marks: blanks of each kind at either end, a prefix ending or
    starting in a blank, regex characters taken literally, a missing value."""
    texts = ["C123", " C123", "\tC", "C", "C ", "  C  ", "c1", "", None, "XC", "C\n1", "C \n",
             "a.b1", "aXb1", "C X", "C C", "C  C ", "-5", " -", "C\n\nx", "\vCX\f"]  # fmt: skip
    t = ibis.memtable(pd.DataFrame({"x": texts}))
    got = t.select(
        fast=engine._trimmed_prefix(t.x, prefix),
        slow=t.x.fill_null("").strip().startswith(prefix),
    ).to_pandas()
    assert got["fast"].tolist() == got["slow"].tolist()
    by_hand = [(x or "").strip(" \t\n\r\v\f").startswith(prefix) for x in texts]
    assert got["slow"].tolist() == by_hand
