"""The report's read stage in the engine (issue 31, point 1): a local CSV or Parquet file read,
validated and put through the mapping's rules in DuckDB (:func:`helpers.report.orders.read_orders`
with the engine) gives the orders and the notes of the pandas path
(:func:`helpers.report.orders.read_client_orders`) on every export of
:mod:`helpers.report.exports`, and a file with a problem gets the pandas reader's message.
The whole report by both paths: ``tests/report/test_sources.py::
test_report_on_the_engine_equals_the_report_on_the_helpers`` (``--engine duckdb`` reads the
sample's file in the engine, ``--engine pandas`` in pandas: the same metrics and exports)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from helpers.report import exports, mapping, orders
from helpers.tables import DataValidationError
from tests.report.clients import SMALL_EXPORTS as EXPORTS


def _rows(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["customer_id"] = out["customer_id"].astype(str)
    out["order_id"] = out["order_id"].astype(str)
    out["order_date"] = pd.to_datetime(out["order_date"]).astype("datetime64[ns]")
    out["amount"] = out["amount"].astype(float).round(6)
    for c in out.columns:
        if c not in ("order_date", "amount", "quantity", "unit_price"):
            out[c] = out[c].astype(object).where(out[c].notna(), None).astype(str)
    return out.sort_values(["order_id", "customer_id", "order_date"]).reset_index(drop=True)


def _notes(notes: dict) -> dict:
    shown = {k: v for k, v in notes.items() if k not in ("reader", "mapping", "data_note")}
    shown["data_note"] = [(n.key, _rounded(n.values), str(n)) for n in notes["data_note"]]
    return _rounded(shown)


def _rounded(values: dict) -> dict:
    """Sums taken in another order differ in the last digits: compared to 1e-6."""
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in values.items()}


# the Polish shop's amounts are texts with their currency: exports.write_as types no such column
@pytest.mark.parametrize(
    "name, kind", [(n, "csv") for n in EXPORTS] + [(n, "parquet") for n in EXPORTS if n != "polish"]
)
def test_the_engine_reads_as_the_pandas_path(name, kind, tmp_path):
    """Each export as its CSV and as a typed Parquet file (the engine's reader then checks the
    file in one scan and leaves it where it is: the validated table a view over it)."""
    e = EXPORTS[name](tmp_path)
    path, mapping_path = (e.path, e.mapping_path) if kind == "csv" else exports.write_as(e, kind)
    m = mapping.load_mapping(mapping_path)
    expected, notes = orders.read_client_orders(path, m)
    got, engine_notes = orders.read_orders(path, m, engine="duckdb")
    if notes["reader"] == "pandas":  # a format the DuckDB reader leaves to pandas: declined
        assert isinstance(got, pd.DataFrame) and engine_notes["reader"] == "pandas"
        return
    assert engine_notes["reader"] == "engine"
    assert orders.order_count(got) == len(expected)
    assert _notes(engine_notes) == _notes(notes)
    a, b = _rows(expected), _rows(got.to_pandas())
    assert list(a.columns) == list(b.columns)
    np.testing.assert_allclose(b.pop("amount"), a.pop("amount"), rtol=1e-9, atol=1e-9)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    # the hand-over from the engine (a DuckDB file) opens back as the pandas path's Arrow file
    save = [orders.save_validated(*x, tmp_path / f"{i}.arrow") for i, x in
            enumerate([(expected, notes), (got, engine_notes)])]  # fmt: skip
    assert save[0].suffix == ".arrow" and save[1].name.endswith(orders.ENGINE_HANDOVER_SUFFIX)
    (by_pandas, pandas_notes), (by_engine, handed_notes) = (
        orders.open_orders(p, engine="pandas") for p in save
    )
    assert list(by_engine.dtypes.astype(str)) == list(by_pandas.dtypes.astype(str))
    a, b = _rows(by_pandas), _rows(by_engine)
    np.testing.assert_allclose(b.pop("amount"), a.pop("amount"), rtol=1e-9, atol=1e-9)
    pd.testing.assert_frame_equal(a, b)
    assert _notes(handed_notes) == _notes(pandas_notes)
    table, _ = orders.open_orders(save[1], engine="duckdb")  # the engine's table, read-only
    assert orders.order_count(table) == len(expected)
    orders.close_orders(table)
    orders.check_enough_data(got, engine_notes["as_of"], m.period, path.name)


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"refunds": "reject"}, "refunds policy is 'reject'"),
        ({"missing_customer": "error"}, "no customer id"),
        ({"as_of": "2000-01-31"}, None),
    ],
)
def test_a_problem_gets_the_pandas_message(change, fragment, tmp_path):
    e = exports.uci_online_retail(tmp_path, customers=25, refunds="exclude")
    m = dataclasses.replace(mapping.load_mapping(e.mapping_path), **change)
    with pytest.raises(DataValidationError) as pandas_err:
        orders.read_client_orders(e.path, m)
    with pytest.raises(DataValidationError) as engine_err:
        orders.read_orders(e.path, m, engine="duckdb")
    assert str(engine_err.value) == str(pandas_err.value)
    if fragment:
        assert fragment in str(engine_err.value)


def test_one_switch_point(tmp_path, monkeypatch):
    e = exports.polish_shop(tmp_path, customers=25)
    m = mapping.load_mapping(e.mapping_path)
    assert isinstance(orders.read_orders(e.path, m)[0], pd.DataFrame)  # small: pandas
    monkeypatch.setattr(orders, "ENGINE_MIN_BYTES", 0)
    assert orders.read_orders(e.path, m)[1]["reader"] == "engine"
    assert orders.read_orders(e.path, m, engine="pandas")[1]["reader"] == "pandas"  # small file
    monkeypatch.setattr(orders, "PANDAS_MAX_BYTES", 0)
    assert orders.read_orders(e.path, m, engine="pandas")[1]["reader"] == "duckdb"


@pytest.mark.parametrize("repeat", [False, True])
def test_a_repeated_order_id_is_left_to_the_pandas_message(repeat, tmp_path):
    """The engine's reader checks the order ids' uniqueness on their 64-bit hashes and, when
    those repeat, on the ids themselves: unique ids are read in the engine; a repeated id is
    left to the pandas reader, whose message names it."""
    from tests.report.clients import write_mapping

    ids = [f"A{i}" for i in range(2000)]
    if repeat:
        ids[1500] = ids[7]
    df = pd.DataFrame({"order": ids, "customer": [f"c{i % 300}" for i in range(2000)],
                       "date": pd.date_range("2024-01-01", periods=2000, freq="h"),
                       "amount": np.round(np.linspace(1, 99, 2000), 2)})  # fmt: skip
    df.to_csv(tmp_path / "o.csv", index=False)
    cols = {
        "order_id": "order",
        "customer_id": "customer",
        "order_date": "date",
        "amount": "amount",
    }
    m = mapping.load_mapping(write_mapping(tmp_path / "m.yaml", columns=cols))
    got = orders.read_orders_in_engine(tmp_path / "o.csv", m)
    if not repeat:
        assert got is not None and orders.order_count(got[0]) == 2000
        orders.close_orders(got[0])
        return
    assert got is None
    with pytest.raises(DataValidationError, match="'order' \\(order_id\\): 2 rows are duplicated"):
        orders.read_orders(tmp_path / "o.csv", m, engine="duckdb")


@pytest.mark.parametrize("name", ["polish", "stripe"])
def test_the_readers_table_is_in_a_database_file_removed_on_close(name, tmp_path):
    """The engine's reader holds its validated table in a database file of its own folder
    (engine.connect_scratch: DuckDB keeps its limit's worth in memory, not the table), which
    orders.close_orders removes with the connection; a file the engine declines (here the
    Stripe export: pandas reads it) has its folder removed at once."""
    from helpers.report import engine

    made = []
    real = engine.connect_scratch

    def recorded(*args, **kwargs):
        con = real(*args, **kwargs)
        made.append((con, con._retention_lab_scratch.peek()[2][0]))
        return con

    e = EXPORTS[name](tmp_path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine, "connect_scratch", recorded)
        got, notes = orders.read_orders(e.path, mapping.load_mapping(e.mapping_path), "duckdb")
    ((con, folder),) = made
    if notes["reader"] == "pandas":
        assert name == "stripe" and not folder.exists()
        return
    assert name == "polish" and got._find_backend() is con
    assert (folder / "validated.duckdb").stat().st_size > 0
    assert con.con.execute("SELECT count(*) FROM validated").fetchone()[0] > 0
    orders.close_orders(got)
    assert not folder.exists()


@pytest.mark.parametrize(
    "case", ["plain", "blank ends", "integer ids", "items", "bad row", "repeated id"]
)
def test_a_parquet_files_validated_table_is_a_checked_view(case, tmp_path):
    """On a Parquet file the engine's reader checks every row in one scan and the validated table
    is a view over the file (duckdb_reader._checked_view): ids with blanks at their ends are
    trimmed as the pandas reader trims them, integer ids (id_type integer) and an integer column
    (items) are integers, the rows equal the pandas reader's; a bad row or a repeated order id leaves the file
    to the pandas reader with nothing left in the engine (no view, no table)."""
    from helpers.report import engine
    from tests.report.clients import write_mapping

    n = 3000
    df = pd.DataFrame({"order": [f"A{i}" for i in range(n)],
                       "customer": [f"c{i % 400}" for i in range(n)],
                       "date": pd.date_range("2024-01-01", periods=n, freq="h"),
                       "amount": np.round(np.linspace(1, 99, n), 2)})  # fmt: skip
    if case == "blank ends":
        df.loc[5, "customer"] = " c5\t"
        df.loc[9, "order"] = "A9 "
    elif case == "integer ids":
        df["customer"] = [str(1000 + i % 400) for i in range(n)]
        df["order"] = [str(50_000 + i) for i in range(n)]
    elif case == "items":
        df["items"] = np.arange(n) % 5 + 1
    elif case == "bad row":
        df.loc[17, "customer"] = "1.5E+07"  # an id Excel wrote in scientific notation
    elif case == "repeated id":
        df.loc[2500, "order"] = "A7"
    df.to_parquet(tmp_path / "o.parquet", index=False)
    cols = {"order_id": "order", "customer_id": "customer", "order_date": "date",
            "amount": "amount"}  # fmt: skip
    if case == "items":
        cols["items"] = "items"
    ids = "integer" if case == "integer ids" else "text"
    m = mapping.load_mapping(write_mapping(tmp_path / "m.yaml", columns=cols, id_type=ids))
    made = []
    real = engine.connect_scratch

    def recorded(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine, "connect_scratch", recorded)
        got = orders.read_orders_in_engine(tmp_path / "o.parquet", m)
    if case in ("bad row", "repeated id"):
        assert got is None
        with pytest.raises(DataValidationError):
            orders.read_client_orders(tmp_path / "o.parquet", m)
        return
    (con,) = made
    kinds = con.con.execute(
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_name = 'validated'"
    ).fetchall()
    assert kinds == [("validated", "VIEW")]  # the file is not copied
    table, notes = got
    try:
        b = _rows(table.to_pandas())
        if case in ("integer ids", "items"):
            name = "customer_id" if case == "integer ids" else "items"
            assert table.schema()[name].is_integer()
    finally:
        orders.close_orders(table)
    expected, want_notes = orders.read_client_orders(tmp_path / "o.parquet", m, reader="pandas")
    a = _rows(expected)
    assert _notes(notes) == _notes(want_notes)
    np.testing.assert_allclose(b.pop("amount"), a.pop("amount"), rtol=1e-9, atol=1e-9)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    if case == "blank ends":
        assert "c5" in set(a["customer_id"]) and " c5\t" not in set(b["customer_id"])
