"""The report's engine expressions (Ibis on DuckDB) equal the teaching helpers (pandas).

Two independent implementations of the per-customer summary, period retention and the cohort
matrix: the pandas helpers (numpy group-bys) and the Ibis expressions the client report runs at
scale. Held equal on the bundled orders and on random order tables (zero and negative amounts,
several orders at one timestamp, as-of dates in the middle of a period)."""

from __future__ import annotations

import os
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import clv, cohorts, data, periods, retention, segments
from helpers.report import analysis, engine
from helpers.report import orders as orders_mod

RTOL = 1e-9  # sums of floats in another order differ in the last bits


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=RTOL)
    assert a.attrs == b.attrs


def same_headline(a: dict, b: dict) -> None:
    """Equal headline figures: counts and dates exactly, sums to RTOL."""
    assert a.keys() == b.keys()
    for k, v in a.items():
        assert b[k] == (pytest.approx(v, rel=RTOL) if isinstance(v, float) else v), k


@pytest.fixture(scope="module")
def orders() -> pd.DataFrame:
    return data.load_orders()


@pytest.mark.parametrize("as_of", ["2025-12-31", "2025-11-15"])
@pytest.mark.parametrize("time_unit", ["D", "W"])
def test_customer_summary_equals_rfm_table(orders, as_of, time_unit):
    same(
        segments.rfm_table(orders, as_of, time_unit),
        engine.customer_summary(orders, as_of, time_unit),
    )


@pytest.mark.parametrize("as_of", ["2025-12-31", "2025-11-15", None])
@pytest.mark.parametrize("freq", ["W", "M", "Q"])
def test_period_retention_equals_helper(orders, freq, as_of):
    same(
        retention.period_retention(orders, freq, as_of),
        engine.period_retention(orders, freq, as_of),
    )
    same(
        retention.period_retention(orders, freq, as_of, complete_only=False),
        engine.period_retention(orders, freq, as_of, complete_only=False),
    )


@pytest.mark.parametrize("as_of", ["2025-12-31", "2025-11-15"])
@pytest.mark.parametrize("freq", ["W", "M", "Q"])
@pytest.mark.parametrize("kind", ["n_period", "unbounded"])
def test_cohort_table_equals_helper(orders, freq, as_of, kind):
    same(
        cohorts.cohort_table(orders, freq, as_of, kind=kind),
        engine.cohort_table(orders, freq, as_of, kind=kind),
    )


@pytest.mark.parametrize("as_of", ["2025-12-31", "2025-11-15"])
def test_report_headline_and_calibration_equal_the_helpers(orders, as_of):
    """The client report's other reads of the orders: the headline, the calibration/holdout
    split of the CLV check, and each customer's net revenue (with refund rows)."""
    refunds = orders.sample(50, random_state=1).assign(amount=lambda d: -d["amount"] / 2)
    o = pd.concat([orders, refunds], ignore_index=True)
    same_headline(analysis.headline(o, as_of), engine.headline(o, as_of))
    bought = analysis.purchases(o)
    same(
        clv.calibration_holdout(bought, "2025-03-31", as_of, "W"),
        engine.calibration_holdout(engine.purchases(o), "2025-03-31", as_of, "W"),
    )
    pd.testing.assert_series_equal(
        analysis.net_revenue(o).sort_index(),
        engine.customer_totals(o).rename("net_revenue").sort_index(),
        check_exact=False,
        rtol=RTOL,
        check_index_type=False,
    )


@pytest.mark.parametrize("as_of", ["2025-12-31", "2025-06-30"])
def test_the_reports_calibration_split_comes_from_the_summarys_scan(orders, as_of, monkeypatch):
    """On the engine, segment_customers's scan also gives the fit's calibration split
    (engine.summary_and_split), which the fit then finds without a second scan of the orders;
    it equals the split the pandas helpers make (and the engine's own calibration_holdout)."""
    import pyarrow as pa

    t = engine.from_arrow(pa.Table.from_pandas(orders, preserve_index=False))
    seg = analysis.segment_customers(t, as_of)
    cal_end = analysis._holdout(seg)[1]
    alone = engine.calibration_holdout(engine.purchases(t), cal_end, as_of, "W")
    with monkeypatch.context() as mp:  # no second scan: calibration_holdout is not called
        mp.setattr(engine, "calibration_holdout", lambda *a, **k: pytest.fail("scanned again"))
        split = analysis._calibration_split(t, seg, cal_end)
    pd.testing.assert_frame_equal(split, alone)
    assert split.attrs == alone.attrs
    by_pandas = analysis._calibration_split(orders, analysis.segment_customers(orders, as_of),
                                            cal_end)  # fmt: skip
    pd.testing.assert_frame_equal(split, by_pandas, check_exact=False, rtol=1e-12)
    analysis._SPLIT.clear()


def test_open_orders_gives_the_engine_from_a_million_rows_or_on_request(orders, tmp_path):
    """The report's notebook receives a pandas table (categorical ids) for small data and an
    Ibis table over the memory-mapped file from ENGINE_MIN_ROWS rows; both analyse alike."""
    from helpers.report.orders import save_validated

    path = save_validated(orders, {"rows": len(orders), "data_note": []}, tmp_path / "o.arrow")
    small, _ = orders_mod.open_orders(path)
    assert isinstance(small, pd.DataFrame) and small["customer_id"].dtype == "category"
    big, notes = orders_mod.open_orders(path, engine="duckdb")
    assert engine.is_table(big) and notes["rows"] == len(orders)
    assert engine.is_table(orders_mod.open_orders((orders, notes), engine="duckdb")[0])
    with pytest.raises(ValueError, match="engine"):
        orders_mod.open_orders(path, engine="polars")  # "spark" is one (engine.on_spark)
    same(
        analysis.segment_customers(small, "2025-12-31"),
        analysis.segment_customers(big, "2025-12-31"),
    )
    same_headline(analysis.headline(small, "2025-12-31"), analysis.headline(big, "2025-12-31"))
    pd.testing.assert_series_equal(
        analysis.net_revenue(small).sort_index(),
        analysis.net_revenue(big).sort_index(),
        check_exact=False,
        rtol=RTOL,
        check_index_type=False,
        check_categorical=False,
    )
    same(
        analysis.period_retention(analysis.purchases(small), "Q", "2025-12-31"),
        analysis.period_retention(analysis.purchases(big), "Q", "2025-12-31"),
    )
    same(
        analysis.cohort_table(analysis.purchases(small), "M", "2025-12-31"),
        analysis.cohort_table(analysis.purchases(big), "M", "2025-12-31"),
    )


def test_a_table_in_a_duckdb_database(orders, tmp_path):
    """The same expressions on a table stored in a DuckDB file (not a registered DataFrame)."""
    con = ibis.duckdb.connect(tmp_path / "client.db")
    table = con.create_table("orders", orders[["customer_id", "order_date", "amount"]])
    same(segments.rfm_table(orders, "2025-11-15"), engine.customer_summary(table, "2025-11-15"))
    same(retention.period_retention(orders, "M"), engine.period_retention(table, "M"))
    same(cohorts.cohort_table(orders, "Q"), engine.cohort_table(table, "Q"))


def test_ten_orders_by_hand(ten_orders):
    """The conftest's hand-computed case: Feb and Mar retention 2/3, NRR 1.0 and 0.75, GRR 0.5 and 0.625."""
    per = engine.period_retention(ten_orders, "M", "2025-03-31")
    assert per["retention_rate"].iloc[1:].tolist() == pytest.approx([2 / 3, 2 / 3])
    assert per["net_revenue_retention"].iloc[1:].tolist() == pytest.approx([1.0, 0.75])
    assert per["gross_revenue_retention"].iloc[1:].tolist() == pytest.approx([0.5, 0.625])


def test_errors_match_the_helpers(orders):
    with pytest.raises(ValueError, match="no orders"):
        engine.customer_summary(orders, "2000-01-01")
    with pytest.raises(ValueError, match="no complete"):
        engine.period_retention(orders, "Q", "2023-01-20")
    with pytest.raises(ValueError, match="kind"):
        engine.cohort_table(orders, kind="weekly")
    with pytest.raises(ValueError, match="freq"):
        engine.cohort_table(orders, "Y")


START = pd.Timestamp("2024-01-01").value // 10**9


@st.composite
def random_orders(draw) -> pd.DataFrame:
    """Up to 25 customers (integer or text ids), orders over two years to the second, amounts
    with zeros (free orders count) and negatives (refunds), repeated timestamps."""
    n = draw(st.integers(1, 80))
    cust = draw(st.lists(st.integers(1, 25), min_size=n, max_size=n))
    secs = draw(st.lists(st.integers(0, 730 * 86400), min_size=n, max_size=n))
    cents = draw(st.lists(st.integers(-5000, 20000) | st.just(0), min_size=n, max_size=n))
    dup = draw(st.booleans())  # copy the first order of each customer to the same second
    o = pd.DataFrame(
        {
            "customer_id": np.array(cust, dtype=np.int64),
            "order_date": pd.to_datetime(np.array(secs) + START, unit="s"),
            "amount": np.array(cents) / 100,
        }
    )
    if dup:
        o = pd.concat([o, o.drop_duplicates("customer_id").assign(amount=1.5)], ignore_index=True)
    if draw(st.booleans()):
        o["customer_id"] = "c" + o["customer_id"].astype(str).str.zfill(3)
    return o


as_of_days = st.integers(0, 760).map(lambda d: pd.Timestamp("2024-01-01") + pd.Timedelta(days=d))


def outcome(f, *args, **kwargs):
    """The result, or the type of the error (both sides must fail alike on too little data)."""
    try:
        return f(*args, **kwargs)
    except ValueError as err:
        return type(err)


def check_same(a, b) -> None:
    if isinstance(a, type) or isinstance(b, type):
        assert a == b
    else:
        same(a, b)


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(o=random_orders(), as_of=as_of_days, freq=st.sampled_from(["D", "W", "M", "Q"]))
def test_random_orders_give_identical_results(o, as_of, freq):
    check_same(outcome(segments.rfm_table, o, as_of), outcome(engine.customer_summary, o, as_of))
    check_same(
        outcome(retention.period_retention, o, freq, as_of),
        outcome(engine.period_retention, o, freq, as_of),
    )
    for kind in ("n_period", "unbounded"):
        check_same(
            outcome(cohorts.cohort_table, o, freq, as_of, kind=kind),
            outcome(engine.cohort_table, o, freq, as_of, kind=kind),
        )
    a, b = outcome(analysis.headline, o, as_of), outcome(engine.headline, o, as_of)
    assert a == b if isinstance(a, type) or isinstance(b, type) else same_headline(a, b) is None
    cut = as_of - pd.Timedelta(days=90)
    check_same(
        outcome(clv.calibration_holdout, o, cut, as_of, "W"),
        outcome(engine.calibration_holdout, o, cut, as_of, "W"),
    )
    # the summary and the calibration split from one scan: each as computed alone (a split at
    # a fixed day, and one that depends on the first order, as the report's holdout does)
    for split in (lambda first: cut, lambda first: first.normalize() + pd.Timedelta(days=100)):
        both = outcome(engine.summary_and_split, o, as_of, "W", split)
        summary = outcome(engine.customer_summary, o, as_of)
        if isinstance(summary, type):
            assert both == summary
            continue
        check_same(both[0], summary)
        first = o.loc[o["order_date"] < periods.as_of_end(as_of), "order_date"].min()
        alone = outcome(engine.calibration_holdout, o, split(first), as_of, "W")
        if isinstance(alone, type):
            assert both[1] is None
        else:
            check_same(both[1], alone)
            assert both[1].attrs == alone.attrs


# --- the same file, the same numbers: exact sums (engine.money_scale, engine.exact_sum) ----------


@pytest.mark.parametrize(
    ("values", "scale"),
    [
        ([12.0, 3.0, -7.0], 0),
        ([12.5, 0.1, 3.0], 1),
        ([12.34, 0.07, 99.99, 123456789.12, -5.01], 2),
        ([1.005, 2.5], 3),
        ([0.0001, 7.0], 4),
        ([1 / 3, 2.0], None),
        ([1.1355462455106015e-194, 2.0], None),  # a tiny amount is not rounded to 0
        ([0.123456, 1.0], None),
    ],
)
def test_the_amounts_scale_is_their_fewest_exact_decimals(values, scale):
    df = pd.DataFrame({"customer_id": ["a"] * len(values), "amount": values})
    assert engine.money_scale(df) == scale
    assert engine.money_scale(ibis.memtable(df)) == scale


@settings(max_examples=60, deadline=None)
@given(
    scale=st.integers(0, 4),
    units=st.lists(st.integers(-(10**11), 10**11), min_size=1, max_size=40),
    groups=st.integers(1, 4),
)
def test_exact_sums_on_integers_equal_the_decimal_sums(scale, units, groups):
    """engine.exact_sum sums N = round(x 10^s) as integers and divides the sum's float by 10^s:
    the same float, bit for bit, as the cast of the DECIMAL(18, s) sum it replaced (and as
    helpers.money.group_sum), for amounts that are whole numbers of 10^-s, per group."""
    from helpers import money

    amounts = np.array(units, dtype=float) / 10**scale
    groups = min(groups, len(amounts))  # every group has rows (the engine returns no empty one)
    g = np.arange(len(amounts)) % groups
    t = ibis.memtable(pd.DataFrame({"g": g, "amount": amounts}))
    got = t.group_by("g").agg(s=engine.exact_sum(t.amount, scale)).to_pandas()
    got = got.sort_values("g")["s"].to_numpy()
    decimal = t.amount.cast(f"decimal(18, {scale})").sum().cast("float64")
    old = t.group_by("g").agg(s=decimal).to_pandas().sort_values("g")["s"].to_numpy()
    assert got.tobytes() == old.tobytes()
    assert got.tobytes() == money.group_sum(amounts, g, groups, scale).tobytes()


@pytest.mark.parametrize(
    ("values", "orders_scale", "bought_scale"),
    [
        ([12.5, 0.1, -7.125], 3, 1),  # refunds with more decimals than the purchases
        ([12.34, 0.0, -1 / 3], None, 2),
        ([1 / 3, -2.0], None, None),
        ([-1.25, -2.5], 2, None),  # no purchases: no scale
        ([3.0, 4.0], 0, 0),
    ],
)
def test_the_purchases_scale_comes_from_the_orders_scan(values, orders_scale, bought_scale):
    """engine.purchases gives its purchases the scale of their own amounts (amount >= 0), from
    the scan that gave the orders' (one scan of 10M amounts less per report): equal to the
    scale computed on the purchases alone."""
    t = ibis.memtable(pd.DataFrame({"customer_id": ["a"] * len(values), "amount": values}))
    bought = engine.purchases(t)
    assert engine.money_scale(t) == orders_scale
    assert engine.money_scale(bought) == bought_scale
    alone = t.filter(t.amount >= 0)  # another object: its own scan
    assert engine.money_scale(alone) == bought_scale


@settings(max_examples=60, deadline=None)
@given(
    scale=st.integers(0, 5),
    units=st.lists(st.integers(-(10**9), 10**9), min_size=1, max_size=30),
    repeat=st.integers(1, 4),
    odd=st.sampled_from([None, 1 / 3, 0.123456]),
)
def test_the_scale_of_the_distinct_amounts_is_the_amounts_scale(scale, units, repeat, odd):
    """engine.money_scale tests the distinct amounts (every amount is whole at a scale exactly
    when every distinct one is): the orders' and the purchases' scales equal helpers.money.scale
    of every amount, repeated amounts and an amount with more decimals included."""
    from helpers import money

    values = np.repeat(np.array(units, dtype=float) / 10**scale, repeat)
    if odd is not None:
        values = np.append(values, odd)
    t = ibis.memtable(pd.DataFrame({"customer_id": ["a"] * len(values), "amount": values}))
    assert engine.money_scale(t) == money.scale(values)
    bought = values[values >= 0]
    assert engine.money_scale(engine.purchases(t)) == (money.scale(bought) if len(bought) else None)


def _shuffled_orders(seed: int) -> pd.DataFrame:
    """Four customers with 3,000 orders each whose cents' float sum depends on the order of
    addition, in the row order of `seed`."""
    rng = np.random.default_rng(0)
    n = 12_000
    df = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(n)],
            "customer_id": np.repeat(["a", "b", "c", "d"], n // 4),
            "order_date": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 700 * 24, n), unit="h"),
            "amount": rng.integers(1, 10**7, n) / 100 + 0.01,
        }
    )
    return df.sample(frac=1, random_state=seed).reset_index(drop=True)


def test_the_engine_gives_the_same_sums_bit_for_bit_whatever_the_row_order():
    """A float sum's last bits depend on the order of addition, and the engine's threads meet the
    rows in no fixed order: at 10M orders two runs on the same file gave customer totals differing
    by 5.8e-11 and at-risk counts differing by one (benchmarks/README.md). The amounts' sums are
    exact (DECIMAL at their scale), so any order of the rows gives the same bits."""
    con = engine.connect()
    con.raw_sql("SET threads = 4")
    runs = []
    for seed in range(4):
        t = con.create_table(f"o{seed}", _shuffled_orders(seed))
        engine.forget()
        summary = engine.customer_summary(t, "2025-12-31")
        per = engine.period_retention(t, "M", "2025-12-31")
        head = engine.headline(t, "2025-12-31")
        runs.append(
            (
                summary["monetary_total"].to_numpy(),
                summary["monetary_value"].to_numpy(),
                per["revenue_start"].to_numpy(),
                per["gross_revenue_retention"].to_numpy(),
                head["revenue"],
                head["average_order_value"],
                engine.value_by_number(t)["mean"].to_numpy(),
            )
        )
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            assert np.array_equal(a, b, equal_nan=True)
    exact = _shuffled_orders(0).groupby("customer_id")["amount"].sum()
    np.testing.assert_allclose(runs[0][0], exact.to_numpy(), rtol=1e-15)


def test_the_engine_and_the_pandas_helpers_give_the_same_sums_bit_for_bit(orders):
    """Both sides sum the amounts exactly at their scale (helpers.money, engine.exact_sum) and
    return the float nearest the exact sum: equal to the last bit, so a figure rounded for the
    report (a mean spend at a rounding tie) is rounded the same way from a CSV (pandas) and from a
    warehouse table (the engine)."""
    shuffled = orders.sample(frac=1, random_state=3)
    for o in (orders, shuffled):
        a, b = segments.rfm_table(o, "2025-12-31"), engine.customer_summary(orders, "2025-12-31")
        for col in ("monetary_total", "monetary_mean", "monetary_value"):
            assert np.array_equal(a[col].to_numpy(), b[col].to_numpy()), col
        p, q = retention.period_retention(o, "M"), engine.period_retention(orders, "M")
        for col in ("revenue_start", "revenue_retained", "net_revenue_retention"):
            assert np.array_equal(p[col].to_numpy(), q[col].to_numpy(), equal_nan=True), col
        h, k = analysis.headline(o, "2025-12-31"), engine.headline(orders, "2025-12-31")
        assert (h["revenue"], h["average_order_value"]) == (k["revenue"], k["average_order_value"])
        net = analysis.net_revenue(o).sort_index()
        assert np.array_equal(
            net.to_numpy(), engine.customer_totals(orders).sort_index().to_numpy()
        )


@pytest.mark.parametrize("in_report", [False, True])
def test_duckdb_spills_to_a_folder_that_goes_with_the_process_or_the_report(tmp_path, in_report):
    """What DuckDB spills goes to a folder of this process's in the temporary folder, removed at
    exit, or inside the report's scratch folder (the report command removes it). DuckDB removes
    its folder when the connection closes, not when the process is killed, as a kernel may be:
    one shared folder in /tmp stayed behind after the CI runs. A fresh interpreter, a query that
    spills under a small memory limit: the folder exists while the connection is open; outside
    a report it is gone after the process, inside one the process is killed (``os._exit``) and
    the folder is the scratch folder's, nothing in the temporary folder (before: the shared
    folder left there)."""
    import subprocess
    import sys
    import textwrap

    from helpers.report.handover import SCRATCH_ENV

    script = textwrap.dedent(
        """
        from helpers.report import engine
        con = engine.connect("100MB")
        n = con.con.execute("SELECT count(*) FROM (SELECT i, md5(i::VARCHAR) AS m "
                            "FROM range(6000000) t(i) ORDER BY m)").fetchall()[0][0]
        assert n == 6000000
        print(engine.spill_folder(), engine.spill_folder().is_dir(), flush=True)
        """
    )
    if in_report:
        script += "import os\nos._exit(0)\n"  # killed: DuckDB removes nothing
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    env.pop(SCRATCH_ENV, None)
    (tmp_path / "tmp").mkdir()
    if in_report:
        (tmp_path / "scratch").mkdir()
        env[SCRATCH_ENV] = str(tmp_path / "scratch")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, env=env)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    folder, existed = run.stdout.split()
    assert existed == "True"  # DuckDB spilled there
    if in_report:
        assert Path(folder).parent == tmp_path / "scratch"
    else:
        assert Path(folder).parent == tmp_path / "tmp"
        assert not Path(folder).exists()
    assert list((tmp_path / "tmp").iterdir()) == []  # nothing left in the temporary folder
