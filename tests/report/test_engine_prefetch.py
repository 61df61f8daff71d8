"""The sections' engine reductions started in the background (helpers.report.engine.prefetch,
helpers.report.analysis.prefetch_sections): while the kernel fits the models on one core, a
cursor of the same DuckDB computes what the later sections ask for on the other.

Held here: every prefetched result IDENTICAL to computing it in turn (index, values, dtypes),
on a coded hand-over; a section that asks before a result is there waits for it and nothing is
computed twice; a failing prefetch leaves the work (and its error) to the section; DuckDB's
threads come back as they were; nothing is started on pandas orders."""

from __future__ import annotations

import threading
import time

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from helpers import economics
from helpers.report import acquisition_views, analysis, engine
from helpers.report import orders as orders_mod

AS_OF = "2024-06-30"


def _orders(seed: int = 5, customers: int = 300) -> pd.DataFrame:
    """Orders of text ids (1-9 each, some at the same minute), with a channel, refund rows and
    zero-value orders."""
    rng = np.random.default_rng(seed)
    n = rng.integers(1, 10, customers)
    ids = np.repeat(np.array([f"C{i}" for i in range(customers)], dtype=object), n)
    start = pd.Timestamp("2022-01-01").value
    span = pd.Timestamp("2024-09-30").value - start
    t = start + rng.integers(0, span // 60_000_000_000, len(ids)) * 60_000_000_000
    t[1::7] = t[0:-1:7][: len(t[1::7])]
    amount = rng.gamma(2.0, 40.0, len(ids)).round(2)
    amount[::11] = -amount[::11]
    amount[5::13] = 0.0
    return pd.DataFrame({
        "order_id": [f"O{i:06d}" for i in rng.permutation(len(ids))],
        "customer_id": ids,
        "order_date": pd.to_datetime(t).astype("datetime64[ns]"),
        "amount": amount,
        "channel": rng.choice(np.array(["web", "app", "shop"], dtype=object), len(ids)),
    })  # fmt: skip


@pytest.fixture(scope="module")
def handover(tmp_path_factory):
    """The path of a coded hand-over written as the report writes it."""
    df = _orders()
    con = engine.connect()
    t = engine.from_arrow(pa.Table.from_pandas(df, preserve_index=False), con, "validated")
    folder = tmp_path_factory.mktemp("handover")
    path = orders_mod.save_validated(t, {"rows": len(df), "data_note": []}, folder / "o.arrow")
    con.disconnect()
    return path


@pytest.fixture
def opened(handover):
    """(orders, bought, seg, econ) on a fresh connection to the hand-over, as the kernel has them."""
    orders, _ = orders_mod.open_orders(handover, "duckdb")
    bought = analysis.purchases(orders)
    seg = analysis.segment_customers(orders, AS_OF)
    econ = economics.from_mapping(None)
    yield orders, bought, seg, econ
    orders_mod.close_orders(orders)


def _sections(orders, bought, seg, econ) -> dict:
    """What the report's later sections ask the engine for, in turn."""
    return {
        "customers": engine.customer_table(bought),
        "margin_12": pd.Series(acquisition_views.margin_12(bought, seg, econ), index=seg.index),
        "ltv": pd.DataFrame(acquisition_views.ltv_margins(bought, seg, econ)),
        "cohorts": analysis.cohort_table(bought, "Q", AS_OF),
        "monthly": analysis.period_retention(bought, "M", AS_OF),
        "net_revenue": analysis.net_revenue(orders).sort_index(),  # rows in no set order
    }


def _equal(a: dict, b: dict) -> None:
    for k in a:
        if isinstance(a[k], pd.DataFrame):
            pd.testing.assert_frame_equal(a[k], b[k], check_exact=True, obj=k)
        else:
            pd.testing.assert_series_equal(a[k], b[k], check_exact=True, obj=k)


def _threads(orders) -> str:
    con = orders._find_backend().con
    return con.execute("SELECT current_setting('threads')").fetchall()[0][0]


def test_prefetched_results_are_those_computed_in_turn(handover):
    """The sections' results after :func:`prefetch_sections` equal (to the bit) the same calls
    made in turn on another connection to the same hand-over."""
    orders, _ = orders_mod.open_orders(handover, "duckdb")
    bought = analysis.purchases(orders)
    seg = analysis.segment_customers(orders, AS_OF)
    econ = economics.from_mapping(None)
    want = _sections(orders, bought, seg, econ)
    orders_mod.close_orders(orders)

    orders, _ = orders_mod.open_orders(handover, "duckdb")
    bought = analysis.purchases(orders)
    seg = analysis.segment_customers(orders, AS_OF)
    analysis.prefetch_sections(orders, bought, "Q", AS_OF, seg, econ)
    got = _sections(orders, bought, seg, econ)
    memo = engine._memo(bought)
    assert memo.pending == 0 and ("customers", engine.TOP_NUMBER) in memo
    # one set of margins answers both: every customer is in the LTV curves' sample here
    assert len([k for k in memo if k[0] == "margins"]) == 1
    _equal(want, got)
    orders_mod.close_orders(orders)


def test_a_section_waits_for_the_prefetch_and_nothing_is_computed_twice(opened, monkeypatch):
    """A section asking while the prefetch still computes its result waits for it (the one
    pass per customer runs once, in the prefetch) and gets that very result."""
    _, bought, _, _ = opened
    got = _asked_while_prefetched(bought, monkeypatch)
    assert engine._memo(bought)[("customers", engine.TOP_NUMBER)] is got


def _asked_while_prefetched(bought, monkeypatch) -> pd.DataFrame:
    """The one pass per customer asked for by a section while a prefetch (started first, its
    first call a pause) computes it: the section waits, and the pass runs once, in the
    prefetch's thread. Returns what the section got."""
    calls = []
    one_pass = engine._customers_of_numbered

    def counted(*args, **kwargs):
        calls.append(threading.current_thread().name)
        return one_pass(*args, **kwargs)

    monkeypatch.setattr(engine, "_customers_of_numbered", counted)
    job = engine.prefetch(bought, [(lambda _: time.sleep(0.3), ()), (engine.customer_table, ())])
    assert job is not None
    got = engine.customer_table(bought)  # asked before the prefetch has it: waits
    job.result(timeout=60)
    assert len(calls) == 1 and calls[0].startswith("retention-lab-prefetch")
    return got


def test_a_failed_prefetch_leaves_the_work_to_the_section(opened):
    """A prefetch that fails changes nothing: the section computes its result itself (the same
    as without a prefetch) and DuckDB's threads are back."""
    orders, bought, _, _ = opened
    before = _threads(orders)

    def broken(_):
        raise RuntimeError("lost connection")

    job = engine.prefetch(bought, [(broken, ()), (engine.customer_table, ())])
    with pytest.raises(RuntimeError, match="lost connection"):
        job.result()
    assert engine._memo(bought).pending == 0
    assert ("customers", engine.TOP_NUMBER) not in engine._memo(bought)
    got = engine.customer_table(bought)  # computed here, in turn
    assert len(got) == bought.customer_id.nunique().to_pyarrow().as_py()
    assert _threads(orders) == before


def test_duckdb_runs_one_thread_during_a_prefetch_then_as_before(opened):
    """While a prefetch runs DuckDB has one thread (the kernel's own thread keeps a core); its
    setting is back once the last prefetch has ended."""
    orders, bought, _, _ = opened
    before = _threads(orders)
    gate = threading.Event()
    job = engine.prefetch(bought, [(lambda _: gate.wait(10), ())])
    during = _threads(orders)
    gate.set()
    job.result()
    assert (during, _threads(orders)) == (1, before)


def test_prefetched_tables_stay_cached(opened):
    """A prefetched table's results stay in the cache however many other tables are cached
    after it (the cache keeps only MEMO_SIZE tables otherwise)."""
    _, bought, _, _ = opened
    engine.prefetch(bought, [(engine.customer_table, ())]).result()
    others = [pd.DataFrame({"customer_id": ["a"], "x": [i]}) for i in range(engine.MEMO_SIZE + 2)]
    for df in others:
        engine._memo(df)["x"] = 1
    assert ("customers", engine.TOP_NUMBER) in engine._memo(bought)


def test_nothing_is_started_on_pandas_orders():
    """On pandas orders there is no engine query to overlap: nothing starts."""
    df = _orders(customers=20)
    assert engine.prefetch(df, [(engine.customer_table, ())]) is None
    assert analysis.prefetch_sections(df, analysis.purchases(df), "Q", AS_OF, None, None) is None


def test_duckdb_takes_both_cores_while_a_section_waits(opened):
    """While the kernel's thread waits for a prefetched result, its core is DuckDB's again (the
    setting as before the prefetch); once the result is there and the prefetch still runs, one
    thread again; after it, as before."""
    orders, bought, _, _ = opened
    before = _threads(orders)
    seen = []

    def record(copy):
        con = copy._find_backend().con
        seen.append(con.execute("SELECT current_setting('threads')").fetchall()[0][0])

    gate = threading.Event()
    job = engine.prefetch(bought, [
        (lambda _: time.sleep(1.0), ()), (record, ()), (engine.customer_table, ()),
        (lambda _: gate.wait(10), ()), (record, ()),
    ])  # fmt: skip
    engine.customer_table(bought)  # waits for the prefetch's (the first record sees that)
    after_wait = _threads(orders)
    gate.set()
    job.result()
    assert seen == [before, 1] and after_wait == 1 and _threads(orders) == before


def test_the_orders_of_the_sampled_customers_are_read_once(opened):
    """lost_window and nrr_change read the orders of the same sampled customers
    (analysis._order_dates): computed once per table, the customers counted on their codes,
    equal to the sample drawn in Python from the text ids' MD5 digests
    (engine.sample_customers: the first four hex digits below ceil(65536 / k))."""
    import hashlib

    _, bought, _, _ = opened
    n = int(bought.customer_id.nunique().execute())  # on the text ids
    k = -(-n // 50)
    t = bought.select("customer_id", "order_date", "amount").execute()
    cut = -(-65536 // k)
    digest = {i: int(hashlib.md5(str(i).encode()).hexdigest()[:4], 16) for i in set(t.customer_id)}
    want = t[t["customer_id"].map(digest) < cut]
    assert 0 < want["customer_id"].nunique() < n
    got = analysis._order_dates(bought, max_customers=50)
    order = ["customer_id", "order_date", "amount"]
    pd.testing.assert_frame_equal(
        got.sort_values(order, ignore_index=True), want.sort_values(order, ignore_index=True)
    )
    assert got.attrs["share"] == want["customer_id"].nunique() / n
    got.loc[:, "amount"] = 0.0  # a caller's change stays its own
    again = analysis._order_dates(bought, max_customers=50)
    assert (
        again.attrs == {"share": want["customer_id"].nunique() / n} and again["amount"].ne(0).any()
    )


def test_the_net_revenues_are_not_kept_once_read(opened):
    """analysis.net_revenue takes the prefetched net revenues and drops them from the engine's
    cache (its one reader: kept, 137 MB at 8.4M customers for the rest of the run); the same
    values, named, each time it is asked."""
    orders, bought, seg, econ = opened
    analysis.prefetch_sections(orders, bought, "Q", AS_OF, seg, econ)
    first = analysis.net_revenue(orders)
    assert first.name == "net_revenue"
    assert not [k for k in engine._memo(orders) if k[:1] == ("customer_totals",)]
    want = orders.group_by("customer_id").agg(t=orders.amount.sum()).to_pandas()
    want = want.set_index("customer_id")["t"].sort_index()
    np.testing.assert_allclose(first.sort_index().to_numpy(), want.to_numpy(), rtol=1e-12)
    assert first.sort_index().index.equals(want.index)
    pd.testing.assert_series_equal(analysis.net_revenue(orders), first, check_exact=True)
    _sections(orders, bought, seg, econ)  # the other prefetches done before the connection closes


def test_a_duckdb_files_table_is_prefetched_through_a_twin(tmp_path, monkeypatch):
    """A DuckDB database file's table read as the report reads a collated one (an SQL query over
    the table: its ids as text compared byte by byte, helpers.report.sources.open_table) is
    prefetched through a twin cursor too: the one pass runs once, in the prefetch, and the
    section gets it (the query's own backend left in the twin waited on itself, for ever)."""
    from helpers.report import sources

    db = tmp_path / "client.db"
    con = ibis.duckdb.connect(str(db))
    con.create_table("orders", _orders())
    con.raw_sql("ALTER TABLE orders ALTER customer_id TYPE VARCHAR COLLATE NOCASE")
    con.disconnect()
    t = sources.open_table(f"duckdb://{db}?table=orders")[1]
    assert isinstance(t.op(), ibis.expr.operations.SQLQueryResult)
    want = engine.customer_table(analysis.purchases(t))
    engine.forget()
    got = _asked_while_prefetched(analysis.purchases(t), monkeypatch)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    engine.forget()
    t._find_backend().disconnect()


def test_a_released_result_goes_and_is_computed_again_the_same(opened):
    """report.release drops the named results of the orders' cache (the one pass per customer
    here) and nothing else; asked for again, the same table is computed again."""
    _, bought, _, _ = opened
    first = engine.customer_table(bought)
    key = ("customers", engine.TOP_NUMBER)
    kept = [k for k in engine._memo(bought) if k != key]
    analysis.release(bought, "customers")
    assert key not in engine._memo(bought) and kept == list(engine._memo(bought))
    again = engine.customer_table(bought)
    assert again is not first
    pd.testing.assert_frame_equal(again, first)
    analysis.release(
        _orders(customers=20), "customers"
    )  # pandas orders: nothing kept, nothing done
