"""Tests of helpers.segments: RFM table (hand case, DuckDB cross-check), scores (properties),
segment map, cost-to-serve (hand case and the generator's planted high-cost customers)."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import data, economics, segments


def _orders(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["customer_id", "order_date", "amount", "discount", "returned"])
    df["order_date"] = pd.to_datetime(df["order_date"])
    df.insert(0, "order_id", np.arange(1, len(df) + 1))
    return df


HAND = _orders(
    [
        (1, "2025-12-03 00:00:00", 10.0, 0.0, False),  # first order of customer 1
        (1, "2025-12-10 00:00:00", 20.0, 5.0, False),
        (1, "2025-12-24 00:00:00", 40.0, 0.0, True),
        (2, "2025-12-17 12:00:00", 30.0, 0.0, False),  # one order only
        (2, "2026-01-05 00:00:00", 99.0, 0.0, False),  # after the as-of date: ignored
        (3, "2025-12-31 23:00:00", 8.0, 2.0, False),
    ]
)


def test_rfm_table_hand_case_weeks_and_days():
    w = segments.rfm_table(HAND, "2025-12-31", "W")
    assert w.attrs["time_unit"] == "W"
    assert list(w.index) == [1, 2, 3]
    c1 = w.loc[1]
    assert c1["n_orders"] == 3 and c1["frequency"] == 2
    assert c1["recency"] == pytest.approx(3.0)  # 21 days / 7
    assert c1["T"] == pytest.approx(29 / 7)  # 2025-12-03 to the end of 2025-12-31
    assert c1["recency_days"] == 7
    assert c1["monetary_total"] == pytest.approx(70.0)
    assert c1["monetary_mean"] == pytest.approx(70 / 3)
    assert c1["monetary_value"] == pytest.approx(30.0)  # repeat orders only: (20 + 40) / 2
    c2 = w.loc[2]
    assert c2["frequency"] == 0 and c2["recency"] == 0 and c2["monetary_value"] == 0
    assert c2["monetary_total"] == 30.0  # the January order is after the as-of date
    assert c2["T"] == pytest.approx(14.5 / 7)
    assert w.loc[3, "recency_days"] == 0
    d = segments.rfm_table(HAND, "2025-12-31", "D")
    np.testing.assert_allclose(d["T"], w["T"] * 7)
    np.testing.assert_allclose(d["recency"], w["recency"] * 7)
    with pytest.raises(ValueError, match="time_unit"):
        segments.rfm_table(HAND, "2025-12-31", "Y")


def test_rfm_table_matches_duckdb_sql_on_sample_data():
    orders = data.load_orders()
    rfm = segments.rfm_table(orders, "2025-12-31", "D")
    sql = (
        duckdb.sql(
            """
        SELECT customer_id, count(*) AS n, sum(amount) AS total,
               epoch(max(order_date) - min(order_date)) / 86400 AS recency,
               epoch(TIMESTAMP '2026-01-01' - min(order_date)) / 86400 AS T,
               (sum(amount) - arg_min(amount, order_date)) / nullif(count(*) - 1, 0) AS mv
        FROM orders WHERE order_date < TIMESTAMP '2026-01-01' GROUP BY customer_id ORDER BY customer_id
        """
        )
        .df()
        .set_index("customer_id")
    )
    assert len(sql) == len(rfm)
    np.testing.assert_array_equal(rfm["n_orders"], sql["n"])
    np.testing.assert_allclose(rfm["monetary_total"], sql["total"], rtol=1e-9)
    np.testing.assert_allclose(rfm["recency"], sql["recency"], atol=1e-6)
    np.testing.assert_allclose(rfm["T"], sql["T"], atol=1e-6)
    np.testing.assert_allclose(rfm["monetary_value"], sql["mv"].fillna(0.0), rtol=1e-9, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=200),
    bins=st.integers(min_value=2, max_value=7),
)
def test_quantile_scores_in_range_monotone_and_tie_consistent(values, bins):
    s = pd.Series(values, dtype=float)
    score = segments._quantile_score(s, bins, higher_is_better=True)
    assert score.between(1, bins).all()
    assert score[s == s.min()].eq(1).all()
    # equal values share a score, and a larger value never gets a lower score
    assert (score.groupby(s).nunique() == 1).all()
    order = np.argsort(s.to_numpy(), kind="stable")
    assert np.all(np.diff(score.to_numpy()[order]) >= 0)
    # deterministic: shuffling the rows gives each value the same score
    shuffled = s.sample(frac=1, random_state=1)
    again = segments._quantile_score(shuffled, bins, higher_is_better=True)
    pd.testing.assert_series_equal(again.sort_index(), score.sort_index())


def test_recency_score_rewards_recent_customers():
    rfm = pd.DataFrame(
        {
            "recency_days": [0, 10, 100, 400, 700],
            "n_orders": [1, 2, 3, 4, 5],
            "monetary_total": [5.0, 4, 3, 2, 1],
        }
    )
    sc = segments.rfm_scores(rfm)
    assert list(sc["R"]) == [5, 4, 3, 2, 1]
    assert list(sc["F"]) == [1, 2, 3, 4, 5]
    assert list(sc["M"]) == [5, 4, 3, 2, 1]
    assert list(sc["RFM"]) == ["515", "424", "333", "242", "151"]


def test_segment_rules_cover_every_score_cell_and_can_be_overridden():
    grid = pd.DataFrame([(r, fm) for r in range(1, 6) for fm in range(1, 6)], columns=["R", "FM"])
    seg = segments.assign_segments(grid)
    assert seg["segment"].notna().all() and "Other" not in set(seg["segment"].astype(str))
    assert set(seg["segment"].astype(str)) == set(segments.SEGMENT_RULES["segment"])
    at = seg.set_index(["R", "FM"])["segment"].astype(str)
    assert (
        at[(5, 5)] == "Champions"
        and at[(1, 1)] == "Lost"
        and at[(5, 1)] == "New"
        and at[(1, 5)] == "Can't lose them"
    )
    mine = pd.DataFrame(
        [("Best", 4, 5, 4, 5), ("Rest", 1, 5, 1, 5)],
        columns=["segment", "r_min", "r_max", "fm_min", "fm_max"],
    )
    seg2 = segments.assign_segments(grid, mine)
    assert (seg2["segment"] == "Best").sum() == 4 and (seg2["segment"] == "Rest").sum() == 21
    with pytest.raises(ValueError, match="columns"):
        segments.assign_segments(grid, mine.drop(columns="fm_max"))


def test_segment_summary_shares_sum_to_one():
    orders = data.load_orders()
    seg = segments.assign_segments(segments.rfm_scores(segments.rfm_table(orders)))
    summ = segments.segment_summary(seg)
    assert summ["customers"].sum() == len(seg)
    assert summ["customer_share"].sum() == pytest.approx(1.0)
    assert summ["value_share"].sum() == pytest.approx(1.0)
    # Champions buy more often and more recently than Lost customers
    assert summ.loc["Champions", "n_orders"] > summ.loc["Lost", "n_orders"]
    assert summ.loc["Champions", "recency_days"] < summ.loc["Lost", "recency_days"]


def test_cost_to_serve_hand_case():
    tickets = pd.DataFrame(
        {
            "customer_id": [1, 1, 3],
            "opened_at": pd.to_datetime(["2025-12-05", "2025-12-26", "2026-01-02"]),
        }
    )
    cm = economics.Economics(
        gross_margin_rate=0.5,
        shipping_per_order=4.0,
        cost_per_ticket=10.0,
        return_handling_cost=6.0,
    )
    cts = segments.cost_to_serve(HAND, tickets, cm, "2025-12-31")
    c1 = cts.loc[1]
    # kept orders: 10 (gross 10) and 20 (gross 25); the 40 order was returned
    assert c1["revenue"] == pytest.approx(30.0)
    assert c1["product_margin"] == pytest.approx(0.5 * 35)
    assert c1["discount_cost"] == pytest.approx(5.0)
    assert c1["shipping_cost"] == pytest.approx(12.0)
    assert c1["ticket_cost"] == pytest.approx(20.0)
    assert c1["return_cost"] == pytest.approx(6.0)
    assert c1["cost_to_serve"] == pytest.approx(5 + 12 + 20 + 6)
    assert c1["margin_after_cost"] == pytest.approx(17.5 - 43)
    # margin after cost = revenue - cost of goods - service costs
    assert c1["margin_after_cost"] == pytest.approx(30 - 0.5 * 35 - 12 - 20 - 6)
    assert cts.loc[3, "n_tickets"] == 0  # the ticket is after the as-of date
    assert cts.loc[2, "n_orders"] == 1


def _auc(score: pd.Series, positive: pd.Series) -> float:
    """Probability that a random positive scores above a random negative (Mann-Whitney)."""
    r = score.rank()
    n1, n0 = positive.sum(), (~positive).sum()
    return float((r[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def test_cost_to_serve_ranks_planted_high_cost_customers_high():
    truth = data.load_ground_truth()
    cts = segments.cost_to_serve(data.load_orders(), data.load_support_tickets())
    hm = cts.index.isin(truth["high_maintenance_customer_ids"])
    dp = cts.index.isin(truth["discount_prone_customer_ids"])
    hm_s, dp_s = pd.Series(hm, index=cts.index), pd.Series(dp, index=cts.index)
    per_order = cts["cost_to_serve"] / cts["n_orders"]
    # high-maintenance customers cost more per order and keep less margin than the others
    assert _auc(per_order, hm_s) > 0.75
    assert cts.loc[hm, "cts_ratio"].median() > 1.5 * cts.loc[~hm & ~dp, "cts_ratio"].median()
    assert cts.loc[hm, "margin_after_cost"].sum() / cts.loc[hm, "n_orders"].sum() < 0.5 * (
        cts.loc[~hm, "margin_after_cost"].sum() / cts.loc[~hm, "n_orders"].sum()
    )
    # discount-prone customers: discounts eat more of their margin
    disc_share = cts["discount_cost"] / cts["product_margin"]
    assert _auc(disc_share, dp_s) > 0.75


def test_segment_profitability_and_comparison():
    cts = segments.cost_to_serve(data.load_orders(), data.load_support_tickets())
    truth = data.load_ground_truth()
    group = pd.Series(
        np.where(cts.index.isin(truth["high_maintenance_customer_ids"]), "high service", "regular"),
        index=cts.index,
    )
    prof = segments.segment_profitability(cts, group)
    assert prof["customers"].sum() == len(cts)
    # per-year margin is a ratio of sums, with each customer's years floored at 90 days
    first = data.load_orders().groupby("customer_id")["order_date"].min()
    days = (pd.Timestamp("2026-01-01") - first) / pd.Timedelta(days=1)
    years = np.maximum(days, 90) / 365.25
    reg = group == "regular"
    assert prof.loc["regular", "margin_per_year"] == pytest.approx(
        cts.loc[reg, "margin_after_cost"].sum() / years[reg].sum()
    )
    assert prof["total_margin_after_cost"].sum() == pytest.approx(cts["margin_after_cost"].sum())
    # the planted high-maintenance customers cost more to serve and keep less margin per year
    cmp = segments.compare_segments(prof, "regular", "high service")
    assert cmp.loc["high service", "cost_multiple"] > 1.5
    assert cmp.loc["regular", "margin_per_year"] > cmp.loc["high service", "margin_per_year"]


def test_compare_segments_hand_case():
    """Four customers, one order each on 2025-01-01 (365 days to the end of 2025-12-31), margin
    50 %, shipping 5, tickets 10, returns 8. Typical: two orders of 100 (margin after cost 50 - 5
    = 45 each). Costly: 100 paid + 20 discount and 2 tickets (60 - 20 - 5 - 20 = 15), and a
    returned 100 (0 - 5 - 8 = -13). By hand: cost to serve per customer 5 and (45 + 13) / 2 = 29,
    so the costly group costs 29 / 5 = 5.8x as much; margin per year 90 / (2 x 365 / 365.25) and
    2 / (2 x 365 / 365.25); five more points of retention for a year in the typical group:
    0.05 x 2 x 45 x 365.25 / 365 = 4.503 EUR."""
    orders = _orders(
        [
            (1, "2025-01-01", 100.0, 0.0, False),
            (2, "2025-01-01", 100.0, 0.0, False),
            (3, "2025-01-01", 100.0, 20.0, False),
            (4, "2025-01-01", 100.0, 0.0, True),
        ]
    )
    tickets = pd.DataFrame({"customer_id": [3, 3], "opened_at": pd.to_datetime(["2025-02-01"] * 2)})
    econ = economics.Economics(gross_margin_rate=0.5, shipping_per_order=5.0, cost_per_ticket=10.0,
                               return_handling_cost=8.0)  # fmt: skip
    cts = segments.cost_to_serve(orders, tickets, econ, "2025-12-31")
    group = pd.Series(["typical", "typical", "costly", "costly"], index=[1, 2, 3, 4])
    cmp = segments.compare_segments(segments.segment_profitability(cts, group), "typical", "costly")
    year = 365 / 365.25
    assert cmp.loc["typical", "cost_to_serve_per_customer"] == pytest.approx(5.0)
    assert cmp.loc["costly", "cost_to_serve_per_customer"] == pytest.approx(29.0)
    assert cmp.loc["costly", "cost_multiple"] == pytest.approx(5.8)
    assert cmp.loc["typical", "cost_multiple"] == pytest.approx(1.0)
    assert cmp.loc["typical", "revenue_per_customer"] == pytest.approx(100.0)
    assert cmp.loc["costly", "revenue_per_customer"] == pytest.approx(50.0)  # the return refunded
    assert cmp.loc["typical", "margin_per_year"] == pytest.approx(90 / (2 * year))
    assert cmp.loc["costly", "margin_per_year"] == pytest.approx(2 / (2 * year))
    assert cmp.loc["typical", "value_of_lift_per_year"] == pytest.approx(4.503, abs=1e-3)


def test_rfm_scores_hand_case_with_ties():
    """Ten customers' order counts 1, 1, 1, 1, 2, 2, 3, 4, 5, 6: the four tied at 1 all get F = 1
    (ties share the lowest rank), the two 2s have rank 5 -> 1 + floor(5 x 4 / 10) = 3, and so on:
    F = 1, 1, 1, 1, 3, 3, 4, 4, 5, 5; no customer gets F = 2 rather than splitting a tie."""
    rfm = pd.DataFrame(
        {
            "recency_days": np.arange(10),
            "n_orders": [1, 1, 1, 1, 2, 2, 3, 4, 5, 6],
            "monetary_total": np.arange(10, 0, -1, dtype=float),
        }
    )
    sc = segments.rfm_scores(rfm)
    assert list(sc["F"]) == [1, 1, 1, 1, 3, 3, 4, 4, 5, 5]
    assert list(sc["R"]) == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert list(sc["M"]) == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_spend_matched_split_compares_equal_spenders():
    cts = segments.cost_to_serve(data.load_orders(), data.load_support_tickets())
    group = segments.spend_matched_split(cts, (150, 400), top_share=0.2)
    assert cts.loc[group.index, "revenue"].between(150, 400).all()
    assert (group == "high cost").mean() == pytest.approx(0.2, abs=0.01)
    prof = segments.segment_profitability(cts.loc[group.index], group)
    cmp = segments.compare_segments(prof, "typical", "high cost")
    assert cmp.loc["high cost", "cost_multiple"] > 2.0
    assert cmp.loc["high cost", "margin_per_year"] < cmp.loc["typical", "margin_per_year"]
    with pytest.raises(ValueError, match="no customers"):
        segments.spend_matched_split(cts, (1e9, 2e9))


def test_action_table_assigns_each_customer_once():
    df = pd.DataFrame(
        {
            "clv": np.arange(100, dtype=float),
            "order_margin": 10.0,
            "segment": ["At risk"] * 50 + ["Lost"] * 40 + ["Champions"] * 10,
        }
    )
    act = segments.action_table(df)
    assert act.loc["top_clv_decile", "customers"] == 10
    assert act.loc["At risk", "customers"] == 50
    assert act.loc["Lost", "expected_value"] == 0
    assert act["customers"].sum() <= len(df)
    assert act.loc["At risk", "expected_value"] == pytest.approx(0.05 * 10.0 * 50 - 0.5 * 50)
    top = act.loc["top_clv_decile"]
    assert top["expected_value"] == pytest.approx(0.10 * np.arange(90, 100).sum() - 6.0 * 10)


def test_scoring_and_segments_leave_their_input_as_it_was():
    """rfm_scores and assign_segments add columns to a shallow copy (no copy of a million
    customers' rows): the table they were given keeps its columns and values, and changing
    the result's new columns does not reach it."""
    rfm = pd.DataFrame(
        {"recency_days": [5.0, 40.0, 300.0, 12.0], "n_orders": [4, 1, 2, 9],
         "monetary_total": [120.0, 15.5, 60.0, 990.0]},
        index=pd.Index(["a", "b", "c", "d"], name="customer_id"),
    )  # fmt: skip
    before = rfm.copy()
    scored = segments.rfm_scores(rfm, bins=2)
    pd.testing.assert_frame_equal(rfm, before)
    frozen = scored.copy()
    seg = segments.assign_segments(scored)
    pd.testing.assert_frame_equal(scored, frozen)
    assert list(seg.columns) == [*frozen.columns, "segment"]
    seg["R"] = 0  # a whole column replaced in the result
    pd.testing.assert_frame_equal(scored, frozen)
    pd.testing.assert_frame_equal(rfm, before)


def _winback_reference(seg: pd.DataFrame, clv: pd.DataFrame | None) -> pd.DataFrame:
    """The win-back list as a selection, a join and a sort (segments.winback_list before it took
    the rows once)."""
    out = seg.loc[segments.winback_mask(seg)]
    if clv is not None:
        shown = [c for c in ("p_alive", "p_purchase_12m", "clv") if c in clv and c not in out]
        out = out.join(clv[shown])
        return out.sort_values(["clv", "monetary_total"], ascending=[False, False], kind="stable")
    return out.sort_values(
        ["monetary_total", "recency_days"], ascending=[False, True], kind="stable"
    )


@given(st.integers(1, 80), st.integers(0, 2**16), st.sampled_from(["same", "equal", "shuffled"]))
@settings(max_examples=60, deadline=None)
def test_winback_list_takes_the_rows_once_in_the_joined_and_sorted_order(n, seed, index):
    """segments.winback_list finds its ranking on the keys alone and takes the rows once: the
    same frame (values, dtypes, column order, index) as selecting, joining the CLV
    columns and sorting, with ties and missing CLVs, with or without a CLV table, whose index is
    the summary's own, an equal copy, or in another order (joined on the ids)."""
    rng = np.random.default_rng(seed)
    names = np.array(["Champions", "At risk", "Can't lose them", "Hibernating"])
    seg = pd.DataFrame(
        {"monetary_total": rng.integers(0, 5, n) * 10.0, "recency_days": rng.integers(0, 4, n),
         "segment": pd.Categorical(names[rng.integers(0, 4, n)], categories=names),
         "n_orders": rng.integers(1, 4, n)},
        index=pd.Index([f"c{i}" for i in rng.permutation(n)], name="customer_id"),
    )  # fmt: skip
    seg.attrs["as_of"] = "2025-12-31"
    clv = pd.DataFrame(
        {"p_alive": rng.random(n), "clv": np.where(rng.random(n) < 0.2, np.nan, rng.integers(0, 3, n) * 1.0),
         "p_purchase_12m": rng.random(n), "other": rng.random(n)},
        index=seg.index if index == "same" else seg.index.copy(),
    )  # fmt: skip
    if index == "shuffled":
        clv = clv.iloc[rng.permutation(n)]
    for table in (clv, None):
        got, want = segments.winback_list(seg, table), _winback_reference(seg, table)
        pd.testing.assert_frame_equal(got, want)
        assert got.attrs == seg.attrs  # the summary's (the join dropped them)
