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


@pytest.mark.parametrize("name", list(EXPORTS))
def test_the_engine_reads_as_the_pandas_path(name, tmp_path):
    e = EXPORTS[name](tmp_path)
    m = mapping.load_mapping(e.mapping_path)
    expected, notes = orders.read_client_orders(e.path, m)
    got, engine_notes = orders.read_orders(e.path, m, engine="duckdb")
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
    orders.check_enough_data(got, engine_notes["as_of"], m.period, e.path.name)


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
