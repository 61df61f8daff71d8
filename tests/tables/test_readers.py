"""The DuckDB reader of a client's export (issue 16) returns what the pandas reader returns.

:mod:`helpers.tables.duckdb_reader` writes the rules of :func:`helpers.tables.pandas_reader.read_table_info` as SQL;
:func:`helpers.report.orders.read_client_orders` uses it for a clean file and the pandas reader
otherwise. Held here: the same table and notes on every export of the client-export corpus (and
the fast path really used where it should be), the same messages for bad files, and the number
rules equal to :func:`helpers.tables.parse.parse_numbers` on random texts.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import paths
from helpers.report import exports
from helpers.report.mapping import load_mapping
from helpers.report.orders import read_client_orders
from helpers.tables import DataValidationError, parse_numbers
from helpers.tables.duckdb_reader import number_sql

#: files the DuckDB path must read itself (the others may go to pandas: Excel, zip, UTF-16,
#: timestamps with UTC offsets, Parquet ids stored as floats)
FAST = {"uci", "uci.csv.gz", "polish", "polish.csv.gz", "bundled"}


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("fast")
    out = {"bundled": (paths.DATASETS / "orders.csv", paths.NOTEBOOKS / "08_sample_mapping.yaml")}
    makers = {"uci": exports.uci_online_retail, "shopify": exports.shopify_orders,
              "stripe": exports.stripe_payments, "polish": exports.polish_shop}  # fmt: skip
    for name, make in makers.items():
        e = make(folder)
        out[name] = (e.path, e.mapping_path)
        kinds = ["csv.gz", "zip", "utf16"] + ([] if name == "polish" else ["parquet"])
        for kind in kinds:
            out[f"{name}.{kind}"] = exports.write_as(e, kind, folder)
    return out


CASES = ["bundled"] + [
    f"{n}{k}"
    for n in ("uci", "shopify", "stripe", "polish")
    for k in ("", ".csv.gz", ".zip", ".utf16", ".parquet")
    if not (n == "polish" and k == ".parquet")
]


def as_plain(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns as Python objects with NaN for missing (the pandas reader's dtypes)."""
    out = df.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.StringDtype):
            out[c] = out[c].astype(object).where(out[c].notna(), np.nan)
    return out


@pytest.mark.parametrize("name", CASES)
def test_duckdb_and_pandas_readers_agree(cases, name):
    path, mapping = cases[name]
    m = load_mapping(mapping)
    want, want_notes = read_client_orders(path, m, reader="pandas")
    got, notes = read_client_orders(path, m)  # auto: DuckDB when it can
    pd.testing.assert_frame_equal(as_plain(got), want, check_dtype=False)
    assert [str(n) for n in notes.pop("data_note")] == [str(n) for n in want_notes.pop("data_note")]
    reader = notes.pop("reader")
    assert reader == "duckdb" or name not in FAST
    want_notes.pop("reader")
    assert notes == want_notes
    if name in FAST:  # the dtypes a notebook sees: dates, floats, text in Arrow memory
        assert got["order_date"].dtype == "datetime64[ns]" and got["amount"].dtype == float


def test_the_fast_path_is_used_and_can_be_forced(cases, tmp_path):
    path, mapping = cases["polish"]
    m = load_mapping(mapping)
    assert read_client_orders(path, m, reader="duckdb")[1]["reader"] == "duckdb"
    xlsx = exports.write_as(exports.uci_online_retail(tmp_path), "xlsx")
    with pytest.raises(ValueError, match="left this file to pandas"):
        read_client_orders(xlsx[0], load_mapping(xlsx[1]), reader="duckdb")


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda t: t.replace("02.01.2023 17:42", "2023-01-02 17:42", 1), "unparsable as dates"),
        (lambda t: t.replace("204,00 zł", "204,00 zł EUR", 1), "not numeric"),
        (lambda t: t.replace(";45;", ";;", 1), "no customer id"),
    ],
)
def test_bad_files_get_the_pandas_readers_message(cases, tmp_path, edit, words):
    path, mapping = cases["polish"]
    bad = tmp_path / path.name
    bad.write_text(edit(path.read_text(encoding="utf-8-sig")), encoding="utf-8-sig")
    m = load_mapping(mapping)
    with pytest.raises(DataValidationError) as auto:
        read_client_orders(bad, m)
    with pytest.raises(DataValidationError) as plain:
        read_client_orders(bad, m, reader="pandas")
    assert auto.value.problems == plain.value.problems
    assert words in str(auto.value) and "line 2" in str(auto.value)


def test_line_numbers_of_late_checks_match(cases, tmp_path):
    """A problem found after reading (a missing customer) names the same lines either way, also
    with a quoted newline that shifts the editor's line numbers."""
    path, mapping = cases["polish"]
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    lines[3] = (
        lines[3]
        .replace("sklep internetowy", '"sklep\ninternetowy"')
        .replace("aplikacja", '"apli\nkacja"')
    )
    row = lines[6].split(";")
    row[1] = ""
    lines[6] = ";".join(row)
    bad = tmp_path / "z.csv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    m = load_mapping(mapping)
    with pytest.raises(DataValidationError) as auto:
        read_client_orders(bad, m, reader="duckdb")
    with pytest.raises(DataValidationError) as plain:
        read_client_orders(bad, m, reader="pandas")
    assert auto.value.problems == plain.value.problems
    assert "line 8" in auto.value.problems[0]


TEXT = st.text(alphabet="0123456789.,-+() \u00a0\u202f\u2212€$zł", max_size=12)
CONFIGS = [(".", None, None), (",", None, "PLN"), (",", " ", "PLN"), (".", ",", "USD"),
           (",", ".", "EUR"), (".", None, "EUR")]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(values=st.lists(TEXT, min_size=1, max_size=30), config=st.sampled_from(CONFIGS),
       check=st.booleans())  # fmt: skip
def test_number_rules_equal_parse_numbers(values, config, check):
    decimal, thousands, currency = config
    want_v, want_bad, want_amb = parse_numbers(
        pd.Series(values).str.strip(), decimal, thousands, currency, check
    )
    v, bad, amb = number_sql("s", decimal, thousands, currency, check)
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, s VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, x.strip()) for i, x in enumerate(values)])
    got = con.execute(f"SELECT {v}, {bad}, {amb} FROM t ORDER BY i").df()
    np.testing.assert_array_equal(got.iloc[:, 0].to_numpy(float), want_v.to_numpy(float))
    assert got.iloc[:, 1].fillna(False).tolist() == want_bad.tolist()
    assert got.iloc[:, 2].fillna(False).tolist() == want_amb.tolist()


def test_typed_parquet_is_read_by_duckdb_like_pandas(tmp_path):
    """A Parquet export with stored timestamps, float amounts and integer ids."""
    orders = pd.read_csv(paths.DATASETS / "orders.csv", parse_dates=["order_date"])
    path = tmp_path / "orders.parquet"
    orders.to_parquet(path, index=False)
    m = load_mapping(paths.NOTEBOOKS / "08_sample_mapping.yaml")
    want, want_notes = read_client_orders(path, m, reader="pandas")
    got, notes = read_client_orders(path, m, reader="duckdb")
    pd.testing.assert_frame_equal(as_plain(got), want, check_dtype=False)
    assert notes["rows"] == want_notes["rows"] == len(orders)


@pytest.mark.parametrize("unit", ["date32", "s", "ms", "us", "ns", "us-utc"])
def test_stored_times_of_every_unit_are_read_by_duckdb_like_pandas(unit, tmp_path):
    """A Parquet export's order dates stored as dates or timestamps of any unit (with or without
    a time zone): DuckDB takes each as it is (no round trip through its text, which cut
    nanoseconds); the table equals the pandas reader's, nanoseconds included, and the engine's
    reader (read_into) holds the same values."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from helpers.report import orders as report_orders
    from tests.report.clients import write_mapping

    n = 1500
    when = pd.Series(pd.date_range("2023-01-01 00:00:01.123456789", periods=n, freq="37min"))
    if unit == "date32":
        when = when.dt.floor("D")
    elif unit in ("s", "ms", "us"):
        when = when.dt.floor({"s": "s", "ms": "ms", "us": "us"}[unit])
    arrow = {"date32": pa.date32(), "s": pa.timestamp("s"), "ms": pa.timestamp("ms"),
             "us": pa.timestamp("us"), "ns": pa.timestamp("ns"),
             "us-utc": pa.timestamp("us", tz="UTC")}[unit]  # fmt: skip
    values = when.dt.date if unit == "date32" else when.dt.floor("us") if unit == "us-utc" else when
    if unit == "us-utc":
        values = values.dt.tz_localize("UTC")
    table = pa.table({
        "order": [f"Z{i}" for i in range(n)],
        "customer": [f"c{i % 200}" for i in range(n)],
        "when": pa.array(values, type=arrow),
        "amount": np.round(np.linspace(1, 99, n), 2),
    })  # fmt: skip
    pq.write_table(table, tmp_path / "o.parquet")
    cols = {"order_id": "order", "customer_id": "customer", "order_date": "when",
            "amount": "amount"}  # fmt: skip
    keys = {"columns": cols} | ({"timezone": "Europe/Oslo"} if unit == "us-utc" else {})
    m = load_mapping(write_mapping(tmp_path / "m.yaml", **keys))
    want, _ = read_client_orders(tmp_path / "o.parquet", m, reader="pandas")
    got, notes = read_client_orders(tmp_path / "o.parquet", m, reader="duckdb")
    assert notes["reader"] != "pandas"
    pd.testing.assert_frame_equal(as_plain(got), want, check_dtype=False)
    engine_orders, _ = report_orders.read_orders_in_engine(tmp_path / "o.parquet", m)
    try:
        dates = engine_orders.order_by("order_id").order_date.to_pandas()
    finally:
        report_orders.close_orders(engine_orders)
    expected = want.sort_values("order_id", key=lambda s: s.astype(str))["order_date"]
    np.testing.assert_array_equal(
        dates.to_numpy("datetime64[ns]"), expected.to_numpy("datetime64[ns]")
    )


def test_the_validated_table_reaches_the_notebook_unchanged(cases, tmp_path):
    """build_report hands notebook 08 the validated table (save_validated / open_orders):
    the same frame, the same notes, data-note sentences with their message keys, the mapping
    as read (the notebook does not read the mapping file again)."""
    from helpers.report.orders import open_orders, save_validated

    path, mapping = cases["uci"]
    orders, notes = read_client_orders(path, load_mapping(mapping))
    back, back_notes = open_orders(save_validated(orders, notes, tmp_path / "o.arrow"), "pandas")
    back["customer_id"] = back["customer_id"].astype(orders["customer_id"].dtype)
    pd.testing.assert_frame_equal(back, orders)
    assert back_notes["mapping"] == notes["mapping"] == load_mapping(mapping)
    assert back_notes == notes and back_notes["data_note"]
    assert [(n.key, n.values) for n in back_notes["data_note"]] == [
        (n.key, n.values) for n in notes["data_note"]
    ]


@pytest.mark.parametrize("reader", ["auto", "pandas"])
def test_both_readers_take_one_set_of_options_and_refuse_an_unknown_one(reader):
    """The readers' options are one definition (:class:`helpers.tables.ReadOptions`): a
    misspelt one is refused by either reader, not silently ignored."""
    from helpers.tables import ReadOptions, read_table_info

    path = paths.DATASETS / "orders.csv"
    with pytest.raises(TypeError, match="delimeter"):
        read_table_info(path, "orders", reader=reader, delimeter=";")
    df, _ = read_table_info(path, "orders", reader=reader, **vars(ReadOptions(ids="text")))
    assert isinstance(df["customer_id"].iloc[0], str) and len(df) == 25_443
