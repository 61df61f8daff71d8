"""Integer customer codes in the engine's hand-over (helpers.report.orders._save_engine_table):
the DuckDB file numbers the text ids 0..n-1 in their sorted order, the kernel's table shows the
text ids only, and the engine computes on the codes (helpers.report.engine._coded).

Every engine function the report's kernel uses is held IDENTICAL (index, values, dtypes) on the
coded hand-over and on the same orders as a plain text table, on ids whose text order is not
their numeric order ("K10" < "K9", "007" < "7") and that are not ASCII ("Ørsted", "日本", "é")."""

from __future__ import annotations

import itertools

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import economics, periods
from helpers.report import engine
from helpers.report import orders as orders_mod
from tests.report.limits import limit_of, setting

IDS = ["K10", "K9", "K1", "k1", "K100", "007", "07", "7", "10", "9", "Ørsted", "Zoë", "zoe",
       "é", "e", "日本", "Ω", "a b", "A", "ä", "Émile", "émile", "K2", "K20"]  # fmt: skip
AS_OF = "2024-06-30"


def _orders(seed: int = 3) -> pd.DataFrame:
    """Orders of the ids above (1-8 each, a few at the same minute), with a text attribute, a
    discount (some missing), a returned flag and a few refund and zero rows."""
    rng = np.random.default_rng(seed)
    n = rng.integers(1, 9, len(IDS))
    ids = np.repeat(np.array(IDS, dtype=object), n)
    start = pd.Timestamp("2023-01-01").value
    span = pd.Timestamp("2024-09-30").value - start
    t = start + rng.integers(0, span // 60_000_000_000, len(ids)) * 60_000_000_000
    t[1::7] = t[0:-1:7][: len(t[1::7])]  # orders at the same minute as another
    amount = rng.gamma(2.0, 40.0, len(ids)).round(2)
    amount[::11] = -amount[::11]  # refund rows
    amount[5::13] = 0.0
    discount = np.where(rng.random(len(ids)) < 0.3, rng.uniform(1, 10, len(ids)).round(2), 0.0)
    discount[::6] = np.nan
    return pd.DataFrame({
        "order_id": [f"O{i:05d}" for i in rng.permutation(len(ids))],
        "customer_id": ids,
        "order_date": pd.to_datetime(t).astype("datetime64[ns]"),
        "amount": amount,
        "channel": rng.choice(np.array(["web", "app", "sklep"], dtype=object), len(ids)),
        "discount": discount,
        "returned": rng.random(len(ids)) < 0.1,
    })  # fmt: skip


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """(coded, text, path): the hand-over written and opened as the report does, and the same
    stored rows (the same order: sums taken in the same order) with the text ids joined in
    Ibis, not through the hand-over's view (no codes: the text path)."""
    df = _orders()
    con = engine.connect()
    t = engine.from_arrow(pa.Table.from_pandas(df, preserve_index=False), con, "validated")
    folder = tmp_path_factory.mktemp("handover")
    path = orders_mod.save_validated(t, {"rows": len(df), "data_note": []}, folder / "o.arrow")
    con.disconnect()
    coded, _ = orders_mod.open_orders(path, "duckdb")
    con = coded._find_backend()
    raw, ids = (engine.table_of(con, n) for n in (orders_mod.CODED_ORDERS, "customers"))
    j = raw.join(ids, raw.customer_id == ids.code)
    text = j.select(*[ids.customer_id if c == "customer_id" else j[c] for c in raw.columns])
    yield coded, text, path
    orders_mod.close_orders(coded)


def test_the_handover_holds_the_orders(tables):
    """The hand-over's rows are the orders given (the pandas path's table, to 1e-9)."""
    coded, _, _ = tables
    got = coded.to_pandas().sort_values("order_id", ignore_index=True)
    want = _orders().sort_values("order_id", ignore_index=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_the_handover_stores_the_order_ids_uncompressed(tables):
    """A text order id (unique: compressing it cost more than it saved) is stored uncompressed,
    the other columns as DuckDB chooses; the file holds the same ids."""
    _, _, path = tables
    with duckdb.connect(str(path), read_only=True) as con:
        used = dict(con.execute(
            "SELECT column_name, string_agg(DISTINCT compression, ',') FROM pragma_storage_info(?)"
            " WHERE segment_type <> 'VALIDITY' GROUP BY 1", [orders_mod.CODED_ORDERS]
        ).fetchall())  # fmt: skip
        ids = con.execute(f"SELECT order_id FROM {orders_mod.CODED_ORDERS}").fetchall()
    assert used["order_id"] == "Uncompressed"
    assert used["customer_id"] != "Uncompressed"
    assert sorted(i for (i,) in ids) == sorted(_orders()["order_id"])


def test_the_handover_numbers_the_ids_in_their_sorted_order(tables):
    coded, text, path = tables
    with duckdb.connect(str(path), read_only=True) as con:
        customers = con.execute("SELECT code, customer_id FROM customers ORDER BY code").fetchall()
        kinds = {r[0]: r[1] for r in con.execute(f"DESCRIBE {orders_mod.CODED_ORDERS}").fetchall()}
        per_code = con.execute(
            f"SELECT customer_id, count(*) FROM {orders_mod.CODED_ORDERS} GROUP BY ALL ORDER BY 1"
        ).fetchall()
    assert [c for c, _ in customers] == list(range(len(IDS)))  # dense 0..n-1
    assert [i for _, i in customers] == sorted(IDS)  # Python's str order is DuckDB's
    assert kinds["customer_id"] == "INTEGER"
    per_id = _orders().groupby("customer_id").size()  # each code has its id's orders
    assert [(i, n) for i, (_, n) in zip(sorted(IDS), per_code, strict=True)] == list(per_id.items())
    assert coded.schema() == text.schema()  # the kernel's table: the text ids
    assert coded.schema()["customer_id"].is_string()
    # the engine sees the codes, on the table and on the purchases (an expression on it)
    for t in (coded, engine.purchases(coded)):
        inner, codes = engine._coded(t)
        assert codes is not None and inner.schema()["customer_id"].is_integer()
    assert engine._coded(text)[1] is None


def _pair(tables, f, *args, purchases: bool = True, **kwargs):
    coded, text, _ = tables
    if purchases:
        coded, text = engine.purchases(coded), engine.purchases(text)
    return f(coded, *args, **kwargs), f(text, *args, **kwargs)


def _identical(a, b) -> None:
    """Equal bit for bit, index and dtypes included: the amounts' sums are exact
    (helpers.report.engine.exact_sum), so the order in which the engine's group-by gives the
    customers (which the key's type changes) changes nothing."""
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        pd.testing.assert_index_equal(a.index, b.index, exact=True, check_exact=True)
        assert a.index.name == b.index.name and list(a.dtypes) == list(b.dtypes)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, check_exact=True)
        pd.testing.assert_index_equal(a.index, b.index, exact=True, check_exact=True)
    elif isinstance(a, tuple):
        for x, y in zip(a, b, strict=True):
            _identical(x, y)
    else:
        assert a == b


@pytest.mark.parametrize(
    "f, args, kwargs",
    [
        (engine.customer_summary, (AS_OF,), {}),
        (engine.period_retention, ("M", AS_OF), {}),
        (engine.period_retention, ("Q", AS_OF), {}),
        (engine.cohort_table, ("M", AS_OF), {}),
        (engine.cohort_table, ("Q", AS_OF), {"kind": "unbounded"}),
        (engine.calibration_holdout, ("2024-03-31", AS_OF), {}),
        (engine.first_orders, (AS_OF, ("channel", "discount", "returned")), {}),
        (engine.first_orders, (), {"columns": ("channel",)}),
        (engine.value_by_number, (), {}),
        (engine.customer_discounts, (), {}),
        (engine.customer_table, (), {}),
        (engine.first_order_times, (AS_OF,), {}),
        (
            engine.first_order_times,
            (AS_OF, pd.Timestamp("2023-06-01"), pd.Timestamp("2024-01-31")),
            {},
        ),
    ],
)
def test_a_coded_handover_gives_the_text_tables_results(tables, f, args, kwargs):
    _identical(*_pair(tables, f, *args, **kwargs))


def test_the_orders_functions_too(tables):
    """Those the kernel gives every order (refund rows included)."""
    _identical(*_pair(tables, engine.headline, AS_OF, purchases=False))
    a, b = _pair(tables, engine.customer_totals, purchases=False)
    _identical(a.sort_index(), b.sort_index())  # the engine's order (unsorted)
    assert a.index.dtype == b.index.dtype == object
    _identical(*_pair(tables, engine.customer_summary, AS_OF, purchases=False))


def _firsts(tables) -> pd.Series:
    first = _pair(tables, engine.first_order_times, AS_OF)[1]
    month = periods.period_codes(first, "M")
    return pd.Series(np.asarray(month, dtype=np.int64), index=first.index)


def test_the_ids_given_to_the_engine_are_coded(tables):
    """Memtables of ids (events, members, customers' first months) joined with the orders, with
    an id that has no orders (it matches none either way)."""
    last = periods.last_complete_period(AS_OF, "M")
    first = _firsts(tables)
    unknown = pd.Series([first.iloc[0]], index=pd.Index(["K3"], name="customer_id"))
    first_more = pd.concat([first.iloc[::-1], unknown])  # not in sorted order
    _identical(*_pair(tables, engine.cumulative_margin, first_more, last, [0, 1, 3, 6], 0.4, 2.0))
    groups = pd.Series(np.where(np.arange(len(first_more)) % 2, "a", "b"), index=first_more.index)
    _identical(*_pair(tables, engine.value_by_age, first_more, groups, last, 6, 0.4, 2.0))
    events = pd.DataFrame({
        "customer_id": ["K9", "K10", "日本", "K3", "007", "Ørsted", "K9"],
        "at": pd.to_datetime(["2023-05-01", "2023-08-15", "2024-01-01", "2023-03-01",
                              "2023-02-01", "2023-11-30 12:00", "2024-02-01"], format="ISO8601"),
    }, index=[10, 11, 12, 13, 14, 15, 16])  # fmt: skip
    econ = economics.SAMPLE
    _identical(*_pair(tables, lambda t: engine.orders_after(events, t, 90, at="at")))
    _identical(*_pair(tables, lambda t: engine.orders_after(
        events, t, 60, at="at", closed="both", values=("amount", "discount"), margin=econ,
        as_of=AS_OF)))  # fmt: skip
    signup = first.index.to_series().map(lambda _: pd.Timestamp("2022-12-01"))
    _identical(*_pair(tables, lambda t: engine.history_features(events, t, "at", signup,
                                                                as_of=AS_OF)))  # fmt: skip
    members = pd.Index(["K10", "é", "K3", "Zoë", "7"])
    _identical(*_pair(tables, engine.orders_of, members, AS_OF))
    _identical(*_pair(tables, engine.orders_of, members))


def test_an_expression_on_the_ids_text_stays_on_text(tables):
    coded, text, _ = tables
    only = coded.filter(coded.customer_id.isin(["K9", "é"]))
    assert engine._coded(only)[1] is None  # a text comparison: not rewritten onto the codes
    a = engine.customer_summary(only, AS_OF)
    b = engine.customer_summary(text.filter(text.customer_id.isin(["K9", "é"])), AS_OF)
    _identical(a, b)
    assert len(a) and set(a.index) <= {"K9", "é"}


def test_the_codes_of_ids_sorted_or_not_with_unknown_ids(tables):
    """CustomerCodes.encode: the code of each id (-1 for an id without orders), whether the ids
    come sorted (merged with the codes' ids) or not (hashed)."""
    coded, _, _ = tables
    codes = engine._CODED[coded.op()]
    want = {i: c for c, i in enumerate(sorted(IDS))}
    for ids in (sorted(IDS), sorted(IDS)[3:9], IDS, [*sorted(IDS)[:4], "nobody"], ["zz", "K9"], []):
        got = codes.encode(np.array(ids, dtype=object))
        assert got.dtype == np.int32
        assert got.tolist() == [want.get(i, -1) for i in ids]


@settings(max_examples=60, deadline=None)
@given(
    tables=st.lists(
        st.tuples(st.sets(st.integers(0, 40), max_size=30), st.booleans(), st.booleans()),
        min_size=1,
        max_size=5,
    )
)
def test_shared_ids_keep_every_value_and_share_the_largest_tables_strings(tables):
    """engine._shared_ids (a warehouse table's text ids): whatever tables of customers come back
    in whatever order, each keeps its values and their order; a sorted one gets, for each id
    the largest sorted table so far holds, that table's string; an unsorted one (and numbers)
    comes back as it is."""
    saved = engine._SHARED_IDS[:]
    engine._SHARED_IDS.clear()
    try:
        largest: dict[str, str] = {}
        for ids, ordered, numbers in tables:
            keys = sorted(ids) if ordered else list(ids)[::-1]
            if numbers:
                values = np.array(keys, dtype=np.int64)
                assert engine._shared_ids(values) is values
                continue
            texts = [f"c{k}" for k in keys]
            values = np.array(sorted(texts) if ordered else texts, dtype=object)  # new strings
            got = engine._shared_ids(pd.Series(values))
            assert list(got) == list(values)
            if not all(a < b for a, b in zip(values[:-1], values[1:], strict=True)):
                # not sorted increasing: as they are, not remembered
                assert all(g is v for g, v in zip(got, values, strict=True))
                continue
            assert all(g is largest[g] for g in got if g in largest)
            if len(got) > len(largest):
                largest = {g: g for g in got}
    finally:
        engine._SHARED_IDS[:] = saved


@pytest.mark.parametrize("per_row", [10**7, 10**9])
def test_queries_in_ranges_of_customers_give_the_same_tables(tables, monkeypatch, per_row):
    """A window or group-by too large for DuckDB's memory is split into ranges of customer codes
    (engine.customer_ranges): the one pass's rows, in order, are the one query's, bit for bit,
    and the text table's (split in ranges of its ids); so are the margins per customer and age, the
    customer summary and the calibration split."""
    coded, text, _ = tables
    bought = engine.purchases(coded)
    assert engine.customer_ranges(*engine._section(bought)) == [None]  # the window fits
    whole = engine.customer_table(bought)
    monkeypatch.setattr(engine, "WINDOW_BYTES_PER_ROW", per_row)
    t, codes = engine._section(bought)
    ranges = engine.customer_ranges(t, codes)
    assert len(ranges) > 1 and ranges[0][0] == 0 and ranges[-1][1] == len(IDS)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))  # every code once
    engine.forget()
    split = engine.customer_table(bought)
    _identical(split, whole)
    _identical(split, engine.customer_table(engine.purchases(text)))
    # the margins per customer and age (the same cells, each one customer's), an id without
    # orders and the customers out of their codes' order included
    _split_is_whole(bought, _firsts(tables), monkeypatch, per_row)
    engine.forget()


def _split_is_whole(bought, first: pd.Series, monkeypatch, per_row: int, *more) -> None:
    """Each of the engine's per-customer tables computed in ranges of customers (the window's
    bytes a row `per_row`) is the one query's (``WINDOW_BYTES_PER_ROW`` 1), bit for bit: the
    functions `more` ((function, args) pairs), the margins per customer and age for the
    customers of `first` (their first months) in reverse order and an id without orders, the
    customer summary and the calibration split."""
    last = periods.last_complete_period(AS_OF, "M")
    unknown = pd.Series([first.iloc[0]], index=pd.Index(["K3"], name="customer_id"))
    first_more = pd.concat([first.iloc[::-1], unknown])
    groups = pd.Series(np.where(np.arange(len(first_more)) % 2, "a", "b"), index=first_more.index)
    for f, args in (*more,
                    (engine.cumulative_margin, (first_more, last, [0, 1, 3, 6], 0.4, 2.0)),
                    (engine.value_by_age, (first_more, groups, last, 6, 0.4, 2.0)),
                    (engine.customer_summary, (AS_OF,)),
                    (engine.calibration_holdout, ("2024-03-31", AS_OF))):  # fmt: skip
        engine.forget()
        split = f(bought, *args)
        monkeypatch.setattr(engine, "WINDOW_BYTES_PER_ROW", 1)
        engine.forget()
        _identical(split, f(bought, *args))
        monkeypatch.setattr(engine, "WINDOW_BYTES_PER_ROW", per_row)


@pytest.mark.parametrize("sample", [7, 10**6])
@pytest.mark.parametrize("ids", ["text", "integer"])
@pytest.mark.parametrize("per_row", [10**7, 10**9])
def test_queries_in_ranges_of_ids_give_the_same_tables(tables, monkeypatch, per_row, ids, sample):
    """Without codes (a DuckDB database file's table: text ids, or integer ids kept as numbers
    by the summary and as text by the sections) the ranges are of the ids themselves, cut at
    quantiles of a sample of the orders (engine._id_bounds; `sample` orders drawn, or all): the
    first open below, the last open above, each id in one. The one pass, the margins per
    customer and age (an id without orders, customers out of order), the customer summary and
    the calibration split are the one query's, bit for bit, on ids whose text order is not their
    numeric order and that are not ASCII."""
    _, text, _ = tables
    if ids == "integer":  # the ids as a warehouse keeps plain integers: 0..n-1 by another order
        number = {c: i for i, c in enumerate(sorted(IDS, key=lambda c: (len(c), c[::-1])))}
        df = text.to_pandas().assign(
            customer_id=lambda d: d.customer_id.map(number).astype("int64")
        )
        con = engine.connect()
        text = engine.from_arrow(pa.Table.from_pandas(df, preserve_index=False), con, "ints")
    bought = engine.purchases(text)
    monkeypatch.setattr(engine, "RANGE_SAMPLE", sample)
    monkeypatch.setattr(engine, "WINDOW_BYTES_PER_ROW", per_row)
    for t in (engine._section(bought)[0], engine.as_table(bought)):  # the sections', the summary's
        ranges = engine.customer_ranges(t, None)
        assert len(ranges) > 1 and ranges[0][0] is None and ranges[-1][1] is None
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))  # every id once
        inner = [r[0] for r in ranges[1:]]
        assert inner == sorted(set(inner))
        got = pd.concat([engine._codes_in(t, r).to_pandas() for r in ranges])
        assert sorted(map(str, got["customer_id"])) == sorted(map(str, t.customer_id.to_pandas()))
    first = _firsts(tables)
    if ids == "integer":
        first.index = first.index.map(lambda c: str(number[c]))
    _split_is_whole(bought, first, monkeypatch, per_row, (engine.customer_table, ()))
    monkeypatch.setattr(engine, "WINDOW_BYTES_PER_ROW", 1)
    assert engine.customer_ranges(engine._section(bought)[0], None) == [None]
    engine.forget()


def test_the_kernels_memory_limit_on_codes_is_the_coded_one(tables, monkeypatch):
    """On a coded hand-over, whose large queries run in ranges of customers, the kernel's DuckDB
    gets engine.CODED_MEMORY_PER_ROW bytes an order (at 100M orders 572 MB, not 4.7 GB)."""
    _, _, path = tables
    monkeypatch.setattr(engine, "MIN_MEMORY_MB", 1)
    monkeypatch.setattr(engine, "RANGED_MIN_MEMORY_MB", 2)
    monkeypatch.setattr(engine, "MEMORY_PER_ROW", 10**5)
    monkeypatch.setattr(engine, "CODED_MEMORY_PER_ROW", 10**7)
    t, notes = orders_mod.open_orders(path, "duckdb")
    try:
        ranged = engine.memory_limit(notes["rows"], 10**7, 2)
        assert limit_of(t) == setting(ranged)
        assert ranged != engine.memory_limit(notes["rows"])
    finally:
        orders_mod.close_orders(t)
