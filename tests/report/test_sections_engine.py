"""The sections beside the model on the engine (issues 28 and 31): what the acquisition sections
(helpers.report.acquisition_views) and the survey, campaign and loyalty sections
(helpers.report.beyond_orders) need from the orders is reduced by Ibis expressions
(helpers.report.engine), never collected.

Each reduction is held equal (numbers to 1e-9 relative, tables equal) to the pandas computation
it replaced, written out here, on an Ibis table over the validated orders (DuckDB) and on the
pandas DataFrame (the same expressions on an in-memory DuckDB), for the bundled company and a
small generated one (seed 7, 300 customers); the sections' results from both equal. A guard on
DuckDB's results fails if a query returns more rows than there are customers (or events)."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import cohorts, experiments, periods, report, stats, synth
from helpers.report import acquisition_views as acq
from helpers.report import beyond_orders as bo
from helpers.report import engine
from helpers.report.analysis import fold_economics
from helpers.report.mapping import load_mapping
from helpers.report.orders import read_client_orders
from tests.report.clients import ORDERS, SAMPLE_MAPPING

RTOL = 1e-9


@dataclass
class Company:
    orders: pd.DataFrame  # validated, pandas
    table: Any  # the same, an Ibis table on DuckDB
    seg: pd.DataFrame
    econ: Any
    tables: dict[str, pd.DataFrame]
    mapping: Any
    as_of: str

    @property
    def bought(self) -> pd.DataFrame:
        return report.purchases(self.orders)

    @property
    def sold(self) -> Any:
        return report.purchases(self.table)


_COMPANIES: dict[str, Company] = {}


@pytest.fixture(scope="module", params=["sample", "seed7"])
def company(request, tmp_path_factory) -> Company:
    return _company(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Company:
    """The generated company alone (300 customers, about five orders each)."""
    return _company("seed7", tmp_path_factory)


def _company(name: str, tmp_path_factory) -> Company:
    if name in _COMPANIES:
        return _COMPANIES[name]
    if name == "sample":
        data, folder = ORDERS, None
    else:
        folder = tmp_path_factory.mktemp("seed7")
        synth.write(*synth.generate(synth.SynthConfig(n_customers=300, seed=7)), folder)
        data = folder / "orders.csv"
    src = read_client_orders(data, load_mapping(SAMPLE_MAPPING, tables_dir=folder))
    o, notes = report.open_orders(src, "pandas")
    t, _ = report.open_orders(src, "duckdb")
    as_of = notes["as_of"]
    econ = report.client_economics(notes["mapping"])
    tables = report.open_tables(o, notes)
    econ, _ = fold_economics(o, econ, tables.get("tickets"))
    seg = report.segment_customers(o, as_of)
    _COMPANIES[name] = Company(o, t, seg, econ, tables, notes["mapping"], as_of)
    return _COMPANIES[name]


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_dtype=False, check_index_type=False,
                                  check_column_type=False, rtol=RTOL)  # fmt: skip


# --- the pandas computations the engine replaced (the sections' code before issue 31) ----------


def pandas_second_orders(bought: pd.DataFrame, as_of: str) -> pd.DataFrame:
    end = periods.as_of_end(as_of)
    d = pd.DataFrame({"customer_id": bought["customer_id"].astype(str).to_numpy(),
                      "t": pd.to_datetime(bought["order_date"]).to_numpy()})  # fmt: skip
    d = d[d["t"] < end].sort_values(["customer_id", "t"], kind="stable")
    rank = d.groupby("customer_id", sort=False).cumcount().to_numpy()
    first = d.loc[rank == 0].set_index("customer_id")["t"]
    second = d.loc[rank == 1].set_index("customer_id")["t"].reindex(first.index)
    day = pd.Timedelta(days=1)
    return pd.DataFrame(
        {"first": first, "days": (second - first) / day, "followup": (end - first) / day,
         "cohort": pd.PeriodIndex(first, freq="Q").astype(str)}, index=first.index,
    ).rename_axis("customer_id")  # fmt: skip


def pandas_value_by_number(bought: pd.DataFrame, top: int = 5) -> pd.DataFrame:
    d = pd.DataFrame({"customer_id": bought["customer_id"].astype(str).to_numpy(),
                      "t": pd.to_datetime(bought["order_date"]).to_numpy(),
                      "amount": bought["amount"].to_numpy(float)}
                     ).sort_values(["customer_id", "t"], kind="stable")  # fmt: skip
    g = d.groupby("customer_id", sort=False)
    d["number"] = np.minimum(g.cumcount().to_numpy() + 1, top)
    d["of"] = g["amount"].transform("size").to_numpy()
    agg = d.groupby("number")["amount"].agg(["size", "mean", "std"])
    same_ = d[(d["of"] >= 3) & (d["number"] <= 3)].groupby("number")["amount"]
    return pd.DataFrame({"orders": agg["size"], "mean": agg["mean"], "std": agg["std"],
                         "same_customers": same_.size(), "mean_same": same_.mean()})  # fmt: skip


def pandas_first_values(bought: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    d = bought.assign(customer_id=bought["customer_id"].astype(str))
    first = d.sort_values(["customer_id", "order_date"], kind="stable").groupby(
        "customer_id", sort=False).head(1).set_index("customer_id")  # fmt: skip
    return first[columns]


def pandas_discounts(bought: pd.DataFrame) -> pd.DataFrame:
    d = pd.DataFrame({"customer_id": bought["customer_id"].astype(str).to_numpy(),
                      "t": pd.to_datetime(bought["order_date"]).to_numpy(),
                      "discount": bought["discount"].fillna(0).to_numpy(float)}
                     ).sort_values(["customer_id", "t"], kind="stable")  # fmt: skip
    d["used"] = d["discount"] > 0
    g = d.groupby("customer_id", sort=True)
    return pd.DataFrame({"orders": g.size(), "used": g["used"].sum(),
                         "discount": g["discount"].sum(), "first": g["used"].first()})  # fmt: skip


def pandas_cum(bought: pd.DataFrame, seg: pd.DataFrame, econ: Any, n: int) -> np.ndarray:
    """customers x ages 0..n-1 cumulative margin, NaN past the observed age (np.bincount)."""
    last = periods.last_complete_period(seg.attrs["as_of"], "M")
    first = periods.period_codes(seg["first_order"].to_numpy(), "M")
    observed = last - first
    flows = acq.margin_flows(bought, econ)
    pos = pd.Index(seg.index.astype(str)).get_indexer(flows["customer_id"].astype(str))
    f, pos = flows.loc[pos >= 0], pos[pos >= 0]
    age = periods.period_codes(f["date"].to_numpy(), "M") - first[pos]
    ok = (age >= 0) & (age < n) & (age <= observed[pos])
    cells = np.bincount(pos[ok] * n + age[ok], weights=f["value"].to_numpy(float)[ok],
                        minlength=len(seg) * n).reshape(len(seg), n)  # fmt: skip
    cum = np.cumsum(cells, axis=1)
    cum[np.arange(n)[None, :] > observed[:, None]] = np.nan
    return cum


# --- 1. the acquisition sections ---------------------------------------------------------------


@pytest.mark.parametrize("side", ["engine", "pandas"])
def test_first_and_second_orders_equal_pandas(company, side):
    bought = company.sold if side == "engine" else company.bought
    ref = pandas_second_orders(company.bought, company.as_of)
    same(acq.second_orders(bought, company.as_of), ref)


@pytest.mark.parametrize("side", ["engine", "pandas"])
def test_value_by_order_number_equals_pandas(company, side):
    bought = company.sold if side == "engine" else company.bought
    ref = pandas_value_by_number(company.bought)
    same(engine.value_by_number(bought), ref.rename_axis("n"))
    shown = acq.value_by_order_number(bought)
    same(shown[["orders", "mean", "same_customers", "mean_same"]],
         ref[["orders", "mean", "same_customers", "mean_same"]].rename_axis("order_number"))  # fmt: skip


def test_first_order_values_equal_pandas(company):
    cols = ["channel", "discount", "returned"]
    ref = pandas_first_values(company.bought, cols)
    for bought in (company.sold, company.bought):
        got = engine.first_orders(bought, columns=tuple(cols))
        assert got.index.tolist() == ref.index.tolist()
        assert got["channel"].tolist() == ref["channel"].tolist()
        np.testing.assert_allclose(got["discount"], ref["discount"], rtol=RTOL)
        assert got["returned"].astype(bool).tolist() == ref["returned"].tolist()
    a, b = (acq.first_order_attributes(x, acq.customer_attributes(company.tables["customers"]))
            for x in (company.sold, company.bought))  # fmt: skip
    pd.testing.assert_frame_equal(a, b)
    assert (a["discount_used"] == np.where(ref["discount"] > 0, "yes", "no")).all()


def test_customer_discounts_equal_pandas(company):
    ref = pandas_discounts(company.bought)
    for bought in (company.sold, company.bought):
        same(engine.customer_discounts(bought), ref)
    attrs = acq.first_order_attributes(company.bought)
    a, b = (acq.attribute_discounts(attrs["channel"], x, company.seg, min_group=10)
            for x in (company.sold, company.bought))  # fmt: skip
    same(a, b)


def test_cumulative_margins_equal_pandas(company):
    n = 14
    seg, econ = company.seg, company.econ
    ref = pandas_cum(company.bought, seg, econ, n)
    last = periods.last_complete_period(company.as_of, "M")
    first = pd.Series(periods.period_codes(seg["first_order"].to_numpy(), "M"), seg.index)
    for bought in (company.sold, company.bought):
        got = engine.cumulative_margin(bought, first, last, list(range(n)), econ.gross_margin_rate,
                                       econ.shipping_per_order)  # fmt: skip
        np.testing.assert_allclose(got.to_numpy(), ref, rtol=RTOL, atol=1e-9)
        np.testing.assert_allclose(acq.margin_12(bought, seg, econ), ref[:, 11], rtol=RTOL)
    a, b = (acq.ltv_curves(x, seg, econ, months=n) for x in (company.sold, company.bought))
    same(a.curves, b.curves)
    same(a.cohorts, b.cohorts)


def test_value_by_age_per_channel_equals_the_cohort_helper(company):
    seg, econ = company.seg, company.econ
    channel = acq.first_order_attributes(company.bought)["channel"].reindex(seg.index.astype(str))
    ref = cohorts.value_by_age(
        acq.margin_flows(company.bought, econ), seg["first_order"], company.as_of,
        by=pd.Series(channel.to_numpy(), seg.index), max_age=11,
    )  # fmt: skip
    last = periods.last_complete_period(company.as_of, "M")
    first = pd.Series(periods.period_codes(seg["first_order"].to_numpy(), "M"), seg.index)
    for bought in (company.sold, company.bought):
        got = engine.value_by_age(bought, first, channel, last, 11, econ.gross_margin_rate,
                                  econ.shipping_per_order)  # fmt: skip
        same(got[ref.columns], ref)


def test_acquisition_costs_equal_on_both(company):
    spend = acq.spend_table(company.tables["marketing_spend"])
    channel = acq.customer_attributes(company.tables["customers"])["acquisition_channel"]
    lc = acq.ltv_curves(company.bought, company.seg, company.econ)
    a, b = (acq.acquisition_costs(spend, channel, company.seg, x, company.econ, lc.values)
            for x in (company.sold, company.bought))  # fmt: skip
    for k in a:
        same(a[k], b[k])


# --- 2. the survey, campaign and loyalty sections ---------------------------------------------


def test_orders_after_equals_the_stats_helper(company):
    s = company.tables["survey"]
    o = periods.up_to(company.orders[["customer_id", "order_date", "amount"]], company.as_of,
                      "order_date").assign(customer_id=lambda d: d["customer_id"].astype(str))  # fmt: skip
    e = s.assign(customer_id=s["customer_id"].astype(str))
    for closed in ("right", "both", "left"):
        ref = stats.orders_after(e, o, 90, at="date", closed=closed, values=["amount"])
        for orders in (company.table, company.orders):
            same(engine.orders_after(e, orders, 90, at="date", closed=closed, values=("amount",),
                                     as_of=company.as_of), ref)  # fmt: skip


def test_campaign_windows_and_history_equal_the_experiments_helpers(company):
    sends = company.tables["campaigns"].reset_index(drop=True)
    o = company.orders.assign(customer_id=company.orders["customer_id"].astype(str))
    s = sends.assign(customer_id=sends["customer_id"].astype(str))
    ref = experiments.outcomes_in_window(s, o, "send_date", 30, company.econ, include_start=True)
    first = o.groupby("customer_id")["order_date"].min()
    hist = experiments.history_features(s, o, "send_date", first)
    for orders in (company.table, company.orders):
        got = engine.orders_after(s, orders, 30, at="send_date", closed="both",
                                  margin=company.econ)  # fmt: skip
        same(got[["orders", "converted", "margin"]], ref[["orders", "converted", "margin"]])
        same(engine.history_features(s, orders, "send_date", first), hist)
        ft = engine.first_order_times(orders)
        assert ft.index.tolist() == sorted(first.index.tolist())
        assert (ft.to_numpy() == first.reindex(ft.index).to_numpy()).all()


def test_beyond_orders_sections_equal_on_both(company):
    """The whole sections; their models (CUPED, the within-member fit) only on the small
    company (their inputs are held equal on both by the tests above)."""
    t, as_of = company.tables, company.as_of
    plan = company.mapping.tables["campaigns"].holdout_share
    a, b = company.table, company.orders
    same(bo.repurchase_by_category(t["survey"], a, as_of),
         bo.repurchase_by_category(t["survey"], b, as_of))  # fmt: skip
    ra, rb = (bo.respondents_vs_others(t["survey"], x, as_of) for x in (a, b))
    np.testing.assert_allclose(list(ra.values()), list(rb.values()), rtol=RTOL)
    if len(company.seg) > 1000:
        return
    same(bo.campaign_results(t["campaigns"], a, company.econ, plan),
         bo.campaign_results(t["campaigns"], b, company.econ, plan))  # fmt: skip
    la, lb = (bo.loyalty_comparison(t["loyalty"], x, as_of) for x in (a, b))
    np.testing.assert_allclose(list(la.values()), list(lb.values()), rtol=RTOL)


def test_members_orders_are_the_members_and_the_rest_are_counted(company):
    members = company.tables["loyalty"]["customer_id"].astype(str).unique()
    o = periods.up_to(company.orders, company.as_of, "order_date")
    ids = o["customer_id"].astype(str)
    mine, total = engine.orders_of(company.table, pd.Index(members), company.as_of)
    assert total == len(o)
    assert len(mine) == int(ids.isin(members).sum()) < len(o)
    ref = o.loc[ids.isin(members).to_numpy(), "order_date"].sort_values().to_numpy()
    assert (np.sort(mine["order_date"].to_numpy()) == ref).all()


# --- the orders are not collected ----------------------------------------------------------------


class Returned(list):
    """The row counts of the results (a list of ints) and, in ``columns``, each one's columns."""

    def __init__(self) -> None:
        super().__init__()
        self.columns: list[list[str]] = []


def returned_tables(sizes: Returned) -> list[int]:
    """The row counts of the results since the list was last cleared that are tables (not a
    scalar, such as a count)."""
    columns = sizes.columns[len(sizes.columns) - len(sizes) :]
    return [n for n, c in zip(sizes, columns, strict=True) if c]


#: The columns of the margins' (customer, age) cells (engine._monthly_margins): one row per
#: customer and month of age with an order, not per order.
CELLS = ["_i", "age", "v"]


@pytest.fixture
def returned_rows(monkeypatch) -> list[int]:
    """The number of rows of every result DuckDB hands back to Python (through Ibis)."""
    from ibis.backends.duckdb import Backend

    sizes = Returned()

    def counting(name: str) -> None:
        original = getattr(Backend, name)

        def wrapped(self, *args, **kwargs):
            out = original(self, *args, **kwargs)
            sizes.append(len(out) if hasattr(out, "__len__") else 1)
            names = getattr(out, "column_names", None)  # Arrow's; pandas' columns
            sizes.columns.append(list(names if names is not None else getattr(out, "columns", [])))
            return out

        monkeypatch.setattr(Backend, name, wrapped)

    for name in ("execute", "to_pyarrow"):
        counting(name)
    return sizes


def test_the_guard_sees_a_collected_table(small, returned_rows):
    company = small
    company.sold.select("customer_id", "order_date", "amount").to_pandas()
    assert max(returned_rows) > company.seg.shape[0]


def test_the_sections_on_the_engine_return_at_most_a_row_per_customer(small, returned_rows):
    """On the small company (five orders a customer): a collected table would show."""
    company = small
    seg, econ, t = company.seg, company.econ, company.tables
    customers = len(seg)
    assert len(company.orders) > 2 * customers  # a collected table would show
    sold = company.sold
    more = acq.read_inputs(t, company.mapping, sold, ORDERS)
    lc = acq.ltv_curves(sold, seg, econ)
    sec = acq.second_orders(sold, company.as_of)
    acq.value_by_order_number(sold)
    acq.attribute_value(more.attributes["acquisition_channel"], sec, sold, seg, econ,
                        min_group=10, dropout=False)  # fmt: skip
    acq.attribute_discounts(more.attributes["acquisition_channel"], sold, seg, min_group=10)
    acq.acquisition_costs(more.spend, more.channel, seg, sold, econ, lc.values)
    cells = [n for n, c in zip(returned_rows, returned_rows.columns, strict=True) if c == CELLS]
    rest = [n for n, c in zip(returned_rows, returned_rows.columns, strict=True) if c != CELLS]
    assert rest and max(rest) <= customers
    # the margins by age: at most one cell per customer and calendar month with a purchase,
    # fewer than the orders (a collected table would have one row per order)
    o = company.orders[company.orders["amount"] >= 0]
    months = o["order_date"].dt.year * 12 + o["order_date"].dt.month
    customer_months = len(pd.DataFrame({"c": o["customer_id"], "m": months}).drop_duplicates())
    assert cells and max(cells) <= customer_months < len(company.orders)
    returned_rows.clear()
    plan = company.mapping.tables["campaigns"].holdout_share
    bo.repurchase_by_category(t["survey"], company.table, company.as_of)
    bo.respondents_vs_others(t["survey"], company.table, company.as_of)
    bo.campaign_results(t["campaigns"], company.table, econ, plan)
    assert max(returned_rows) <= max(customers, len(t["campaigns"]), len(t["survey"]))
    returned_rows.clear()
    bo.loyalty_comparison(t["loyalty"], company.table, company.as_of)
    members = t["loyalty"]["customer_id"].astype(str).unique()
    of_members = int(company.orders["customer_id"].astype(str).isin(members).sum())
    # per customer, and the members' orders the within-member model takes one by one
    assert max(returned_rows) <= max(customers, of_members) < len(company.orders)


def test_orders_at_the_same_instant_are_taken_in_the_order_of_their_ids():
    """A file written to the minute has many orders of one customer at one instant: they are
    numbered by ``order_id`` (the file's order where the ids rise with it, as pandas' stable
    sort took them), not by amount."""
    o = pd.DataFrame(
        {"order_id": ["1", "2", "3", "4", "5"], "customer_id": ["a", "a", "a", "b", "b"],
         "order_date": pd.to_datetime(["2025-01-01 10:00"] * 3 + ["2025-02-01 09:00"] * 2),
         "amount": [30.0, 10.0, 20.0, 5.0, 7.0], "channel": ["web", "app", "web", "app", "web"]}
    )  # fmt: skip
    ref = pandas_value_by_number(o)
    same(engine.value_by_number(o), ref.rename_axis("n"))
    assert ref["mean"].tolist() == [(30 + 5) / 2, (10 + 7) / 2, 20.0]
    first = engine.first_orders(o, columns=("channel",))
    assert first["channel"].tolist() == ["web", "app"]
    assert (first["second"] == first["first"]).all()  # a second order at the same instant


# --- the one pass (issues 28 and 31): the orders numbered once, reduced per customer once ---------


def test_the_one_pass_gives_every_numbered_reduction_with_one_query(company, returned_rows):
    """customer_table is one query over the numbered orders; the second orders, the first
    orders' values, the order values by number and the discounts then come from it with no
    further query, on both sides, equal to the pandas computations (the sample and seed 7)."""
    ref_second = pandas_second_orders(company.bought, company.as_of)
    ref_number = pandas_value_by_number(company.bought).rename_axis("n")
    cols = ["channel", "discount", "returned"]
    ref_first = pandas_first_values(company.bought, cols)
    ref_disc = pandas_discounts(company.bought)
    for bought in (company.sold, company.bought):
        engine.forget(bought)
        engine.money_scale(bought)  # the amounts' scale (one row, for exact sums), kept
        returned_rows.clear()
        per = engine.customer_table(bought)
        # one table (beside, on a DuckDB connection, a count of the orders: a scalar deciding
        # whether the window needs ranges of customers, engine.customer_ranges)
        assert returned_tables(returned_rows) == [len(per)] == [len(ref_disc)]
        same(acq.second_orders(bought, company.as_of), ref_second)
        same(engine.value_by_number(bought), ref_number)
        got = engine.first_orders(bought, columns=tuple(cols))
        assert got["channel"].astype(str).tolist() == ref_first["channel"].tolist()
        np.testing.assert_allclose(got["discount"], ref_first["discount"], rtol=RTOL)
        assert got["returned"].astype(bool).tolist() == ref_first["returned"].tolist()
        same(engine.customer_discounts(bought), ref_disc)
        acq.first_order_attributes(bought)
        assert len(returned_tables(returned_rows)) == 1  # everything above from the one pass
        # no order's worth of columns is kept per customer: first-order values and a few counts
        assert set(per.columns) == {"first", "second", "orders", "_used", "_discount",
                                    "_first_used", *[c for c in bought.columns
                                                     if c not in engine._ORDER_KEYS]}  # fmt: skip


def test_the_equality_tests_fail_when_the_numbering_is_broken(small, monkeypatch):
    """Numbering each customer's orders by amount instead of time (broken on purpose): the
    one pass's second orders, first-order values and values by number no longer equal pandas."""
    company = small
    monkeypatch.setattr(engine, "_order_keys", lambda t: [t.amount.desc()])
    for bought in (company.sold, company.bought):
        engine.forget(bought)
        with pytest.raises(AssertionError):
            same(acq.second_orders(bought, company.as_of),
                 pandas_second_orders(company.bought, company.as_of))  # fmt: skip
        with pytest.raises(AssertionError):
            same(
                engine.value_by_number(bought),
                pandas_value_by_number(company.bought).rename_axis("n"),
            )
        engine.forget(bought)
    monkeypatch.undo()
    same(engine.value_by_number(company.bought),
         pandas_value_by_number(company.bought).rename_axis("n"))  # fmt: skip


def test_the_pass_is_kept_per_orders_object_and_made_again_for_other_data():
    """The cache holds one report's orders object: the same frame is not queried twice, a frame
    with other rows (or a copy) gets its own pass, and forget drops it."""
    o = pd.DataFrame(
        {"order_id": ["1", "2", "3"], "customer_id": ["a", "a", "b"],
         "order_date": pd.to_datetime(["2025-01-01", "2025-02-01", "2025-03-01"]),
         "amount": [10.0, 20.0, 5.0]}
    )  # fmt: skip
    first = engine.customer_table(o)
    assert engine.customer_table(o) is first
    longer = pd.concat([o, o.iloc[[2]].assign(order_id="4", amount=7.0)], ignore_index=True)
    assert engine.value_by_number(longer)["orders"].tolist() == [2, 2]
    assert engine.value_by_number(o)["orders"].tolist() == [2, 1]
    o.loc[3] = ["4", "b", pd.Timestamp("2025-04-01"), 7.0]  # grown in place: a new length
    assert engine.value_by_number(o)["orders"].tolist() == [2, 2]
    engine.forget(o)
    assert engine.customer_table(o) is not first


def test_the_margins_by_age_are_summed_once_for_the_curves_the_12_month_margin_and_payback(
    small, returned_rows
):
    """After the LTV curves (every customer at this size, 36 months), the 12-month margin and
    the payback curves ask the engine nothing more, and equal what a fresh query gives."""
    company = small
    seg, econ = company.seg, company.econ
    spend = acq.spend_table(company.tables["marketing_spend"])
    channel = acq.customer_attributes(company.tables["customers"])["acquisition_channel"]
    ref = pandas_cum(company.bought, seg, econ, 12)[:, 11]
    for bought in (company.sold, company.bought):
        engine.forget(bought)
        fresh = acq.acquisition_costs(spend, channel, seg, bought, econ, None)
        engine.forget(bought)
        returned_rows.clear()
        acq.ltv_curves(bought, seg, econ)
        asked = len(returned_rows)
        m12 = acq.margin_12(bought, seg, econ)
        costs = acq.acquisition_costs(spend, channel, seg, bought, econ, None)
        assert len(returned_rows) == asked
        np.testing.assert_allclose(m12, ref, rtol=RTOL)
        for k in fresh:
            same(costs[k], fresh[k])


def test_large_margin_cells_are_kept_on_disk_with_the_same_results(small, tmp_path, monkeypatch):
    """Beyond engine.SPILL_BYTES the margins' cells are kept in files of the report's scratch
    folder (handover.SCRATCH_ENV) and read while summed: the 12-month margin, the payback
    curves and the LTV curves are those of the cells in memory, bit for bit; the files go with
    the cache."""
    from helpers.report.handover import SCRATCH_ENV

    company = small
    seg, econ = company.seg, company.econ
    spend = acq.spend_table(company.tables["marketing_spend"])
    channel = acq.customer_attributes(company.tables["customers"])["acquisition_channel"]

    def run(bought):
        engine.forget(bought)
        m12 = acq.margin_12(bought, seg, econ)
        return m12, acq.acquisition_costs(spend, channel, seg, bought, econ, None)

    for bought in (company.sold, company.bought):
        want = run(bought)
        monkeypatch.setattr(engine, "SPILL_BYTES", 0)
        monkeypatch.setenv(SCRATCH_ENV, str(tmp_path))
        got = run(bought)
        (spilled,) = [v["m"] for k, v in engine._memo(bought).items() if k[0] == "margins"]
        assert spilled._spill is not None and spilled._spill.folder.parent == tmp_path
        np.testing.assert_array_equal(got[0], want[0])
        for k in want[1]:
            same(got[1][k], want[1][k])
        engine.forget(bought)
        del spilled
        gc.collect()
        assert not list(tmp_path.iterdir())
        monkeypatch.undo()


@given(
    st.integers(1, 30),
    st.integers(0, 12),
    st.lists(st.integers(0, 12), min_size=1, max_size=14),
    st.integers(0, 2**16),
)
@settings(max_examples=100, deadline=None)
def test_running_sums_are_the_cumulative_sums_bit_for_bit(n, extra, ages, seed):
    rng = np.random.default_rng(seed)
    m = rng.normal(0, 50, (n, max(ages) + 1 + extra)).round(2)
    want = np.cumsum(m[:, : max(ages) + 1], axis=1)[:, ages]
    np.testing.assert_array_equal(engine._running_sums(m, ages), want)


@given(
    st.integers(1, 40),
    st.integers(0, 12),
    st.lists(st.integers(0, 12), min_size=1, max_size=14),
    st.integers(1, 4),
    st.integers(1, 50),
    st.integers(0, 2**16),
)
@settings(max_examples=100, deadline=None)
def test_margin_cells_are_the_dense_table_bit_for_bit(n, extra, ages, pieces, chunk, seed):
    """engine.MarginCells (the (customer, age) cells as the engine returns them, in chunks and
    in any order) gives the dense table's columns and running sums, bit for bit."""
    rng = np.random.default_rng(seed)
    top = max(ages) + extra
    dense = rng.normal(0, 50, (n, top + 1)).round(2) * (rng.random((n, top + 1)) < 0.4)
    rows, cols = np.nonzero(dense)
    order = rng.permutation(len(rows))
    rows, cols = rows[order].astype(np.int32), cols[order].astype(np.int16)
    cuts = np.sort(rng.integers(0, len(rows) + 1, pieces - 1))
    pairs = zip(np.split(rows, cuts), np.split(cols, cuts), strict=True)
    parts = [(r, a, dense[r, a]) for r, a in pairs]
    with mock.patch.object(engine, "CELL_CHUNK", chunk):  # grouped by age a chunk at a time
        m = engine.MarginCells.from_cells(n, top, parts)
    np.testing.assert_array_equal(m.toarray(), dense)
    for k in range(top + 1):
        np.testing.assert_array_equal(m.column(k), dense[:, k])
    np.testing.assert_array_equal(engine._running_sums(m, ages), engine._running_sums(dense, ages))
    np.testing.assert_array_equal(engine._running_sums(m.upto(max(ages)), ages),
                                  np.cumsum(dense, axis=1)[:, ages])  # fmt: skip
    with pytest.raises(IndexError):
        m.upto(max(ages)).add_age(np.zeros(n), max(ages) + 1)
    s = m.spilled()  # the same cells on disk, read through a memory map: the same floats
    folder = s._spill.folder
    assert s.nbytes == m.nbytes and (folder / "values").stat().st_size == m.nbytes * 2 // 3
    np.testing.assert_array_equal(s.toarray(), dense)
    for k in range(top + 1):
        np.testing.assert_array_equal(s.column(k), dense[:, k])
    np.testing.assert_array_equal(engine._running_sums(s.upto(max(ages)), ages),
                                  np.cumsum(dense, axis=1)[:, ages])  # fmt: skip
    del s
    assert not folder.exists()  # removed once no MarginCells reads it


_IDS = st.lists(st.text(alphabet=st.sampled_from(["a", "b", "\x1f", "é", "0"]), max_size=4),
                max_size=6)  # fmt: skip


@given(_IDS, _IDS, st.lists(st.integers(0, 3), min_size=6, max_size=6), st.integers(0, 5))
@settings(max_examples=300, deadline=None)
def test_the_margins_cache_knows_its_customers_by_a_digest_one_to_one(a, b, months, flip):
    """engine._customers_key (what the margins' cache keeps instead of the ids' and first
    months' arrays) says two sets of customers are the same exactly when their ids, in order,
    and first months are: ids holding the separator, reordered, or one month apart included."""

    def key(ids, fm):
        return engine._customers_key(np.array(ids, dtype=object), np.array(fm, dtype=np.int64))

    fa, fb = months[: len(a)], months[: len(b)]
    same = a == b
    assert engine._same_customers(key(a, fa), key(b, fb)) == same
    assert engine._same_customers(key(a, fa), key(list(a), list(fa)))  # new arrays, same values
    if a and flip < len(a):  # one customer's first month moved
        moved = [m + (i == flip) for i, m in enumerate(fa)]
        assert not engine._same_customers(key(a, fa), key(a, moved))
    assert engine._same_customers(key([1, 2], [0, 0]), key([1, 2], [0, 0]))  # ids not text
    assert not engine._same_customers(key([1, 2], [0, 0]), key([2, 1], [0, 0]))
