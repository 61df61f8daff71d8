"""The client report reads the exports consultants actually get (issue 15).

A corpus made by :mod:`helpers.report.exports` (UCI-Online-Retail-like order lines, a Shopify-like
order export, a Stripe-like payments export, a Polish shop's CSV, and the same data as Excel,
Parquet, gzip, zip and UTF-16) must read to the generator's own truth; one malformed file per
problem must give one clear message naming the client's column, exit code 2 and nothing written.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import report
from helpers.economics import Economics
from helpers.report import exports
from helpers.report.mapping import ClientMapping, load_mapping
from helpers.report.orders import read_client_orders
from helpers.tables import DataValidationError, parse_numbers, read_table

CANONICAL = ["order_id", "customer_id", "order_date", "amount"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, exports.Export]:
    folder = tmp_path_factory.mktemp("exports")
    return {
        "uci": exports.uci_online_retail(folder),
        "shopify": exports.shopify_orders(folder),
        "stripe": exports.stripe_payments(folder),
        "polish": exports.polish_shop(folder),
    }


def read(path: Path, mapping: Path | ClientMapping) -> tuple[pd.DataFrame, dict]:
    m = mapping if isinstance(mapping, ClientMapping) else load_mapping(mapping)
    return read_client_orders(path, m)


def by_order(orders: pd.DataFrame) -> pd.DataFrame:
    out = orders[CANONICAL].copy()
    out["order_id"] = out["order_id"].astype(str)
    return out.sort_values("order_id").reset_index(drop=True)


def assert_truth(got: pd.DataFrame, export: exports.Export) -> None:
    g, w = by_order(got), by_order(export.expected)
    assert len(g) == len(w)
    assert g["order_id"].tolist() == w["order_id"].tolist()
    assert g["customer_id"].tolist() == w["customer_id"].tolist()
    assert (g["order_date"].to_numpy() == w["order_date"].to_numpy()).all()
    np.testing.assert_allclose(g["amount"], w["amount"], atol=1e-9)


def note_text(notes: dict) -> str:
    return " ".join(notes["data_note"])


# --------------------------------------------------------------------------------------------
# the corpus reads to the generator's truth


@pytest.mark.parametrize("kind", ["uci", "shopify", "stripe", "polish"])
def test_export_reads_to_the_generators_truth(corpus, kind):
    e = corpus[kind]
    got, notes = read(e.path, e.mapping_path)
    assert_truth(got, e)
    assert got["customer_id"].map(type).eq(str).all()  # ids are text unless the mapping says so
    assert got["order_date"].dt.tz is None and got["amount"].dtype == float
    assert notes["rows"] == len(e.table) and isinstance(notes["data_note"], list)
    assert pd.Timestamp(notes["as_of"]) >= e.expected["order_date"].max().normalize()


def test_uci_note_counts_guests_cancellations_lines_and_zero_value_orders(corpus):
    e = corpus["uci"]
    got, notes = read(e.path, e.mapping_path)
    f, text = e.facts, note_text(notes)
    assert f["guest_rows"] > 0.2 * f["lines"]  # about a quarter of the rows, as in the UCI file
    assert f"{f['guest_rows']:,} rows without a customer id" in text
    assert f"{f['guest_revenue']:,.2f} GBP" in text
    assert (
        f"{f['cancellation_rows']:,} refund or cancellation rows (cancellation: {f['cancellation_rows']:,}"
        in text
    )
    assert "left out (refunds: exclude)" in text
    lines_kept = f["lines"] - f["guest_rows"] - f["cancellation_rows"]
    assert f"{lines_kept:,} order lines were summed into {len(e.expected):,} orders" in text
    assert f["zero_value_orders"] > 0 and f"{f['zero_value_orders']:,} zero-value orders" in text
    assert int(got["amount"].eq(0).sum()) == f["zero_value_orders"]  # kept, never dropped
    assert notes["refund_rows"] == f["cancellation_rows"]
    assert notes["refund_amount"] == pytest.approx(f["cancelled_amount"])


def test_uci_cancellations_netted(tmp_path):
    e = exports.uci_online_retail(tmp_path, refunds="net")
    got, notes = read(e.path, e.mapping_path)
    assert_truth(got, e)
    cancelled = got["order_id"].astype(str).str.startswith("C")
    assert cancelled.sum() > 0 and (got.loc[cancelled, "amount"] < 0).all()
    assert got["amount"].sum() == pytest.approx(e.expected["amount"].sum())
    assert "netted against revenue" in note_text(notes)


def test_shopify_statuses_offsets_and_first_line_cells(corpus):
    e = corpus["shopify"]
    assert e.table["Financial Status"].eq("").any()  # order-level cells on the first line only
    assert e.table["Created at"].str.contains(r"\+0100$").any()
    assert e.table["Created at"].str.contains(r"\+0200$").any()  # both sides of daylight saving
    got, notes = read(e.path, e.mapping_path)
    by_status = e.facts["orders_by_status"]
    text = note_text(notes)
    assert "'voided'" in text and "'pending'" in text
    assert len(got) == by_status["paid"]
    assert f"{len(e.table):,} timestamps with a UTC offset were converted to Europe/Oslo" in text


def test_shopify_without_a_timezone_keeps_the_wall_clock(corpus, tmp_path):
    e = corpus["shopify"]
    m = {k: v for k, v in e.mapping.items() if k != "timezone"}
    got, notes = read(e.path, exports.write_mapping(tmp_path / "m.yaml", m))
    assert_truth(got, e)  # the offsets are Oslo's own: the time as written is the Oslo time
    assert "times are kept as written" in note_text(notes)


def test_stripe_refunds_failed_payments_and_utc(corpus):
    e = corpus["stripe"]
    got, notes = read(e.path, e.mapping_path)
    f, text = e.facts, note_text(notes)
    assert e.table["Created (UTC)"].str.endswith("Z").all()
    assert f"{f['guest_rows']:,} rows without a customer id" in text
    assert f"'failed' ({f['failed']:,})" in text
    assert notes["refund_rows"] == f["refunded_rows"]
    assert notes["refund_amount"] == pytest.approx(-f["refunded_amount"])
    assert "converted to America/New_York" in text
    # New York is 4-5 hours behind UTC: the wall clock moves
    raw = pd.to_datetime(e.table.set_index("id")["Created (UTC)"].str.rstrip("Z"))
    shift = (raw.loc[got["order_id"]].to_numpy() - got["order_date"].to_numpy()) / np.timedelta64(
        1, "h"
    )
    assert set(np.unique(shift)) == {4.0, 5.0}


def test_polish_currency_text_and_leading_zero_ids(corpus):
    e = corpus["polish"]
    assert (
        e.table["kwota"].str.contains("\u202f").any()
        and e.table["kwota"].str.contains(r"^\(").any()
    )
    assert e.table["kwota"].str.contains("\u2212").any()
    assert e.path.read_bytes().startswith(b"\xef\xbb\xbf")
    got, notes = read(e.path, e.mapping_path)
    assert_truth(got, e)
    assert got["customer_id"].str.startswith("0").any()  # '00124' is not '124'
    assert notes["refund_rows"] == e.facts["refund_rows"]


@pytest.mark.parametrize("kind", ["xlsx", "parquet", "csv.gz", "zip", "utf16"])
def test_the_same_export_in_other_file_types_reads_the_same(corpus, kind, tmp_path):
    e = corpus["uci"]
    path, mapping = exports.write_as(e, kind, tmp_path)
    got, notes = read(path, mapping)
    assert_truth(got, e)
    assert notes["data_note"] == read(e.path, e.mapping_path)[1]["data_note"]


def test_excel_first_sheet_by_default(corpus, tmp_path):
    e = corpus["uci"]
    path, mapping = exports.write_as(e, "xlsx", tmp_path)
    m = yaml.safe_load(mapping.read_text())
    m.pop("sheet")
    got, _ = read(path, exports.write_mapping(tmp_path / "first.yaml", m))
    assert_truth(got, e)


# --------------------------------------------------------------------------------------------
# small hand cases of the reader


def write(tmp_path: Path, text: str, name: str = "export.csv", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def cm(**keys) -> ClientMapping:
    cols = keys.pop("columns", {"customer_id": "Kunde", "order_date": "Dato", "amount": "Beløp"})
    return ClientMapping(columns=cols, **keys)


def test_mapped_column_colliding_with_a_canonical_name(tmp_path):
    text = "Kunde,Dato,Beløp,amount\nA,2024-01-05,10.00,8.00\nB,2024-01-06,20.00,16.00\n"
    got, _ = read(write(tmp_path, text), cm())
    assert got["amount"].tolist() == [10.0, 20.0]
    assert "amount (unmapped)" not in got  # columns the mapping does not name are left out


def test_ids_are_text_unless_the_mapping_says_integer(tmp_path):
    text = "Kunde,Dato,Beløp\n00123,2024-01-05,10\n123,2024-01-06,20\n"
    got, _ = read(write(tmp_path, text), cm())
    assert sorted(got["customer_id"]) == ["00123", "123"]  # two customers
    assert got["amount"].dtype == float  # whole amounts too
    got, _ = read(write(tmp_path, text), cm(id_type="integer"))
    assert got["customer_id"].tolist() == [123, 123]


def test_placeholder_customers_are_missing_not_one_giant_customer(tmp_path):
    text = "Kunde,Dato,Beløp\nNULL,2024-01-05,10\n0,2024-01-06,20\nguest,2024-01-07,5\nA,2024-01-08,7\n"
    got, notes = read(write(tmp_path, text), cm(missing_customer="drop"))
    assert got["customer_id"].tolist() == ["A"]
    assert "3 rows without a customer id" in note_text(notes) and "35.00 EUR" in note_text(notes)


def test_mixed_daylight_saving_offsets_convert_to_one_zone(tmp_path):
    text = "Kunde,Dato,Beløp\nA,2024-03-30 23:30:00 +0100,1\nA,2024-03-31 23:30:00 +0200,1\nA,2024-06-01T12:00:00Z,1\n"
    got, _ = read(write(tmp_path, text), cm(timezone="Europe/Oslo"))
    assert got["order_date"].astype(str).tolist() == [
        "2024-03-30 23:30:00", "2024-03-31 23:30:00", "2024-06-01 14:00:00",
    ]  # fmt: skip
    got, _ = read(write(tmp_path, text), cm(timezone="UTC"))
    assert got["order_date"].astype(str).tolist()[:2] == [
        "2024-03-30 22:30:00",
        "2024-03-31 21:30:00",
    ]


@pytest.mark.parametrize(
    ("text", "keys", "want"),
    [
        ("$1,234.50", {"currency": "USD"}, 1234.5),
        ("(12.50)", {"refunds": "net"}, -12.5),
        ("\u221212.50", {"refunds": "net"}, -12.5),
        ("1\u202f234,50 zł", {"currency": "PLN", "decimal": ","}, 1234.5),
        ("€ 12,50", {"decimal": ","}, 12.5),
        ("1.234", {"thousands": "."}, 1234.0),
        ("1.234", {"thousands": ","}, 1.234),
    ],
)
def test_currency_text_that_is_unambiguous_given_the_mapping(tmp_path, text, keys, want):
    csv = f'Kunde,Dato,Beløp\nA,2024-01-05,"{text}"\n'
    got, _ = read(write(tmp_path, csv), cm(**keys))
    assert got["amount"].iloc[0] == pytest.approx(want)


def test_economics_and_language_in_the_mapping(tmp_path):
    m = {"columns": {"customer_id": "c", "order_date": "d", "amount": "a"},
         "economics": {"gross_margin_rate": 0.25, "shipping_per_order": 3.0}, "language": "nb"}  # fmt: skip
    got = load_mapping(exports.write_mapping(tmp_path / "m.yaml", m))
    assert isinstance(got.economics, Economics) and got.economics.gross_margin_rate == 0.25
    assert got.language == "nb" and ClientMapping().language == "en"
    m["economics"] = {"gross_margin": 0.25}
    m["language"] = "de"
    with pytest.raises(DataValidationError) as err:
        load_mapping(exports.write_mapping(tmp_path / "m.yaml", m))
    assert "'economics': unknown economics key(s) ['gross_margin']" in str(err.value)
    assert "'language' is 'de'" in str(err.value) and len(err.value.problems) == 2


def test_line_numbers_stay_right_after_quoted_newlines_and_blank_lines(tmp_path):
    text = (
        "Kunde,Dato,Beløp,Note\n"          # line 1
        'A,2024-01-05,10,"two\nlines"\n'    # lines 2-3
        "\n"                                # line 4: blank
        "B,2024-01-06,20,\n"                # line 5
        'C,2024-01-07,5,"a ""quoted""\n\nnote"\n'  # lines 6-8
        "D,yesterday,7,\n"                  # line 9
    )  # fmt: skip
    with pytest.raises(DataValidationError) as err:
        read(write(tmp_path, text), cm())
    assert "column 'Dato' (order_date): 1 row is unparsable" in str(err.value)
    assert "(line 9; e.g. 'yesterday')" in str(err.value)


def test_bundled_loader_still_makes_integer_ids():
    from helpers import data

    assert data.load_orders()["customer_id"].dtype == "int64"


# --------------------------------------------------------------------------------------------
# one malformed file per problem: one clear message, exit code 2, nothing left behind


def run_report(data: Path, mapping: Path, root: Path, capsys) -> tuple[int, str]:
    rc = report.main(["--data", str(data), "--mapping", str(mapping), "--name", "acme",
                      "--reports-dir", str(root)])  # fmt: skip
    out, err = capsys.readouterr()
    return rc, (err if rc else out)


def assert_refused(data: Path, mapping: Path, tmp_path: Path, capsys, *fragments: str) -> str:
    root = tmp_path / "reports"
    rc, err = run_report(data, mapping, root, capsys)
    assert rc == 2, err
    assert "no report was written" in err and "Traceback" not in err
    problems = [ln for ln in err.splitlines() if ln.startswith("  - ")]
    assert len(problems) == 1, err
    for f in fragments:
        assert f in err, (f, err)
    assert not root.exists() or not any(root.iterdir())
    return err


def _uci_variant(corpus, tmp_path, table=None, **changes) -> tuple[Path, Path]:
    e = corpus["uci"]
    path = tmp_path / "Online Retail.csv"
    (table if table is not None else e.table).to_csv(path, index=False)
    m = {**e.mapping, **changes}
    m = {k: v for k, v in m.items() if v is not None}
    return path, exports.write_mapping(tmp_path / "m.yaml", m)


def test_order_lines_read_as_orders_are_refused(corpus, tmp_path, capsys):
    data, mapping = _uci_variant(corpus, tmp_path, rows=None)
    assert_refused(data, mapping, tmp_path, capsys, "column 'InvoiceNo' (order_id):", "duplicated",
                   "set rows: order_lines")  # fmt: skip


def test_order_lines_without_an_order_id_are_refused(corpus, tmp_path, capsys):
    e = corpus["uci"]
    cols = {k: v for k, v in e.mapping["columns"].items() if k != "order_id"}
    data, mapping = _uci_variant(corpus, tmp_path, columns=cols, cancellations=None)
    assert_refused(
        data, mapping, tmp_path, capsys, "'rows: order_lines' needs the order number column"
    )


def test_cancellations_under_the_default_reject_policy(corpus, tmp_path, capsys):
    data, mapping = _uci_variant(corpus, tmp_path, refunds=None)
    n = corpus["uci"].facts["cancellation_rows"]
    assert_refused(data, mapping, tmp_path, capsys, f"{n} rows are refunds or cancellations",
                   f"cancellation: {n}", "e.g. 'C600000'", "set refunds: exclude")  # fmt: skip


def test_missing_customers_by_default(corpus, tmp_path, capsys):
    data, mapping = _uci_variant(corpus, tmp_path, missing_customer=None)
    n = corpus["uci"].facts["guest_rows"]
    assert_refused(data, mapping, tmp_path, capsys,
                   f"column 'CustomerID' (customer_id): {n:,} rows have no customer id",
                   "set missing_customer: drop")  # fmt: skip


def test_unknown_time_zone(corpus, tmp_path, capsys):
    e = corpus["shopify"]
    m = exports.write_mapping(tmp_path / "m.yaml", {**e.mapping, "timezone": "Europe/Olso"})
    assert_refused(e.path, m, tmp_path, capsys, "'timezone' 'Europe/Olso' is not an IANA time zone")


def test_offsets_do_not_crash_a_bad_date(tmp_path, capsys):
    data = write(
        tmp_path, "Kunde,Dato,Beløp\nA,2024-03-05 14:22:11 +0100,1\nB,2024-13-05 14:22:11 +0100,2\n"
    )
    m = exports.write_mapping(
        tmp_path / "m.yaml",
        {"columns": {"customer_id": "Kunde", "order_date": "Dato", "amount": "Beløp"}},
    )
    assert_refused(data, m, tmp_path, capsys, "column 'Dato' (order_date): 1 row is unparsable",
                   "line 3", "e.g. '2024-13-05 14:22:11 +0100'")  # fmt: skip


@pytest.mark.parametrize(
    ("value", "keys", "fragments"),
    [
        (
            "1.234",
            {},
            ("column 'Beløp' (amount): 1 row is ambiguous", "e.g. '1.234'", "'thousands'"),
        ),
        ("1,234", {}, ("ambiguous", "e.g. '1,234'", "'thousands'")),
        (
            "$12.50",
            {"currency": "EUR"},
            ("column 'Beløp' (amount): 1 row is not numeric", "e.g. '$12.50'"),
        ),
    ],
)
def test_ambiguous_or_foreign_currency_text(tmp_path, capsys, value, keys, fragments):
    data = write(tmp_path, f'Kunde,Dato,Beløp\nA,2024-01-05,"{value}"\nA,2024-04-05,3\n')
    m = exports.write_mapping(
        tmp_path / "m.yaml",
        {"columns": {"customer_id": "Kunde", "order_date": "Dato", "amount": "Beløp"}, **keys},
    )
    assert_refused(data, m, tmp_path, capsys, *fragments)


def test_scientific_notation_ids(corpus, tmp_path, capsys):
    t = corpus["uci"].table.copy()
    t.loc[t["CustomerID"].ne(""), "CustomerID"] = "1.23457E+11"
    data, mapping = _uci_variant(corpus, tmp_path, table=t)
    assert_refused(data, mapping, tmp_path, capsys, "column 'CustomerID' (customer_id):",
                   "scientific notation", "e.g. '1.23457E+11'")  # fmt: skip


def test_unknown_excel_sheet(corpus, tmp_path, capsys):
    path, mapping = exports.write_as(corpus["uci"], "xlsx", tmp_path)
    m = exports.write_mapping(
        tmp_path / "bad.yaml", {**yaml.safe_load(mapping.read_text()), "sheet": "Sheet9"}
    )
    assert_refused(path, m, tmp_path, capsys, "has no sheet 'Sheet9'", "['Online Retail']")


@pytest.mark.parametrize(
    "case", ["folder", "missing", "empty", "two files in a zip", "broken parquet"]
)
def test_unreadable_paths(corpus, tmp_path, capsys, case):
    e = corpus["uci"]
    if case == "folder":
        data, fragment = tmp_path / "exports", "is a folder, not a file"
        data.mkdir()
    elif case == "missing":
        data, fragment = tmp_path / "nope.csv", "nope.csv: file not found"
    elif case == "empty":
        data, fragment = tmp_path / "empty.csv", "the file is empty"
        data.write_bytes(b"")
    elif case == "two files in a zip":
        data, fragment = tmp_path / "two.zip", "holds 2 files"
        with zipfile.ZipFile(data, "w") as z:
            z.writestr("a.csv", "x\n1\n")
            z.writestr("b.csv", "x\n1\n")
    else:
        data, fragment = tmp_path / "broken.parquet", "not a readable Parquet file"
        data.write_bytes(b"PAR1 not really")
    assert_refused(data, e.mapping_path, tmp_path, capsys, fragment)


def test_read_table_names_the_client_column():
    with pytest.raises(DataValidationError) as err:
        read_table(Path(__file__).parent, "orders")
    assert "is a folder" in str(err.value)


# --------------------------------------------------------------------------------------------
# end to end: a report from an export, its figures equal to the generator's truth


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind",
    [
        "uci-net", "uci-parquet", "shopify", "stripe", "polish",
    ],
)  # fmt: skip
def test_report_figures_equal_the_truth(corpus, tmp_path, capsys, kind):
    e = (
        exports.uci_online_retail(tmp_path, refunds="net")
        if kind == "uci-net"
        else corpus[kind.split("-")[0]]
    )
    path, mapping = (e.path, e.mapping_path)
    if kind == "uci-parquet":
        path, mapping = exports.write_as(e, "parquet", tmp_path)
    root = tmp_path / "reports"
    rc, err = run_report(path, mapping, root, capsys)
    assert rc == 0, err
    metrics = json.loads((root / "acme" / "metrics.json").read_text())
    want = e.expected
    bought = want[want["amount"] >= 0]
    assert metrics["customers"] == bought["customer_id"].nunique()
    assert metrics["purchases"] == len(bought)
    assert metrics["revenue"] == pytest.approx(want["amount"].sum(), abs=0.01)
    assert [p.name for p in root.iterdir()] == ["acme"]
    shutil.rmtree(root)


# --------------------------------------------------------------------------------------------
# property: any amount written the way a locale writes it parses back to the same cents

STYLES = {  # (thousands, decimal, prefix, suffix, negative) -> mapping keys
    "en": ((",", ".", "$", "", "-"), {"currency": "USD"}),
    "pl": (("\u202f", ",", "", " zł", "\u2212"), {"currency": "PLN", "decimal": ","}),
    "de": ((".", ",", "€ ", "", "paren"), {"currency": "EUR", "decimal": ",", "thousands": "."}),
    "no": (("\u00a0", ",", "kr ", "", "-"), {"currency": "NOK", "decimal": ","}),
}


def _write_amount(cents: int, style: tuple[str, str, str, str, str]) -> str:
    sep, dec, pre, post, neg = style
    whole = f"{abs(cents) // 100:,}".replace(",", sep)
    text = f"{pre}{whole}{dec}{abs(cents) % 100:02d}{post}"
    if cents < 0:
        text = f"({text})" if neg == "paren" else neg + text
    return text


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-(10**9), 10**9), min_size=1, max_size=30), st.sampled_from(sorted(STYLES))
)
def test_written_amounts_parse_back_to_their_cents(cents, style):
    fmt, keys = STYLES[style]
    raw = pd.Series([_write_amount(c, fmt) for c in cents])
    value, bad, ambiguous = parse_numbers(
        raw, keys.get("decimal", "."), keys.get("thousands"), keys["currency"]
    )
    assert not bad.any() and not ambiguous.any(), raw[bad | ambiguous].tolist()
    assert (np.round(value.to_numpy() * 100).astype(np.int64) == np.array(cents)).all()


def test_parquet_timestamps_with_a_time_zone(tmp_path):
    when = pd.to_datetime(["2024-03-30 22:30", "2024-07-01 10:00"]).tz_localize("UTC")
    pd.DataFrame({"Kunde": ["A", "B"], "Dato": when, "Beløp": [1.5, 2.0]}).to_parquet(
        tmp_path / "x.parquet"
    )
    got, _ = read(tmp_path / "x.parquet", cm(timezone="Europe/Oslo"))
    assert got["order_date"].astype(str).tolist() == ["2024-03-30 23:30:00", "2024-07-01 12:00:00"]
    got, _ = read(tmp_path / "x.parquet", cm())  # no timezone: as stored (UTC)
    assert got["order_date"].astype(str).tolist() == ["2024-03-30 22:30:00", "2024-07-01 10:00:00"]


def test_a_broken_workbook_is_one_message(tmp_path):
    (tmp_path / "x.xlsx").write_bytes(b"PK\x03\x04 not a workbook")
    with pytest.raises(DataValidationError, match=r"^x.xlsx: not a readable Excel workbook"):
        read(tmp_path / "x.xlsx", cm())


def test_line_numbers_stay_right_after_dropped_rows(tmp_path):
    text = "Kunde,Dato,Nr,Beløp\n,2024-01-05,1,10\nA,2024-01-06,2,20\nB,2024-01-07,2,5\n"
    m = cm(columns={"customer_id": "Kunde", "order_date": "Dato", "order_id": "Nr", "amount": "Beløp"},
           rows="order_lines", missing_customer="drop")  # fmt: skip
    with pytest.raises(DataValidationError) as err:
        read(write(tmp_path, text), m)
    assert "1 orders have lines with different customers" in str(err.value)
    assert "(lines 3, 4; e.g. order '2')" in str(err.value)


def test_old_spreadsheet_formats_get_one_message(tmp_path):
    (tmp_path / "x.xls").write_bytes(b"\xd0\xcf\x11\xe0 old excel")
    with pytest.raises(
        DataValidationError, match=r"^x.xls: .xls files are not read; save the sheet as .xlsx"
    ):
        read(tmp_path / "x.xls", cm())


def test_the_corpus_command_writes_every_export(tmp_path, capsys):
    assert exports.main(["--out", str(tmp_path)]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"Online Retail.csv", "Online_Retail.xlsx", "Online_Retail.parquet", "Online_Retail.csv.gz",
            "orders_export.csv", "payments.csv", "zamówienia.csv", "shopify.yaml"} <= names  # fmt: skip
    assert "orders expected" in capsys.readouterr().out


def test_data_note_sentences_carry_message_keys_and_values(corpus):
    e = corpus["uci"]
    _, notes = read(e.path, e.mapping_path)
    items = {n.key: n.values for n in notes["data_note"]}
    assert list(items) == [
        "data_note.amount_from_lines", "data_note.missing_customers", "data_note.refunds_excluded",
        "data_note.lines_summed", "data_note.zero_value",
    ]  # fmt: skip
    assert items["data_note.missing_customers"] == pytest.approx(
        {"rows": e.facts["guest_rows"], "revenue": e.facts["guest_revenue"]}
    )
    assert items["data_note.refunds_excluded"]["kinds"] == {
        "cancellation": e.facts["cancellation_rows"]
    }
    assert items["data_note.lines_summed"]["orders"] == len(e.expected)
    assert items["data_note.zero_value"] == {"orders": e.facts["zero_value_orders"]}
    _, notes = read(corpus["stripe"].path, corpus["stripe"].mapping_path)
    other = next(n for n in notes["data_note"] if n.key == "data_note.other_status")
    assert other.values["statuses"] == {"failed": corpus["stripe"].facts["failed"]}
