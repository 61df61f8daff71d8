"""What a sceptical client asks of the report (issue 27): when a quiet customer is lost (from the
data, not an assumption), net revenue retention with its band, and what the amounts are before
or after (returns, discounts, costs the mapping gives that no figure uses). Known answers by
hand; seconds to run."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from helpers import retention
from helpers.report import analysis
from helpers.report.mapping import load_mapping
from helpers.report.orders import open_orders, read_client_orders
from tests.report.clients import ORDERS, SAMPLE_MAPPING

Z = 1.959964


def _waits(back: int, quiet: int = 100) -> pd.DataFrame:
    """`quiet` customers with one order on 2022-01-01; `back` of them order again 400 days later
    (after every threshold up to 390 days), the others never."""
    first = pd.DataFrame({"customer_id": np.arange(quiet), "order_date": pd.Timestamp("2022-01-01"),
                          "amount": 10.0})  # fmt: skip
    again = first.head(back).assign(order_date=pd.Timestamp("2022-01-01") + pd.Timedelta(days=400))
    return pd.concat([first, again], ignore_index=True) if back else first


def test_lost_window_by_hand_when_nobody_comes_back():
    """100 waits, none ended by an order: the first threshold longer than a month qualifies; its
    share is 0 with the Wilson upper bound z^2 / (n + z^2)."""
    w = analysis.lost_window(_waits(0), "2025-12-31", "M", comeback=0.3, min_followed=10)
    assert w["days"] == 60 and w["came_back"] == 0 and w["followed"] == 100
    assert w["ci_low"] == pytest.approx(0, abs=1e-12)
    assert w["ci_high"] == pytest.approx(Z**2 / (100 + Z**2), rel=1e-4)


def test_lost_window_waits_until_the_interval_is_below_the_share():
    """40 of 100 come back after 400 days: before 400 days 40 % of the long waits end with an
    order within a year (the interval is above 30 %), so no threshold up to 390 days qualifies;
    from 420 days the 40 who came back no longer count and none of the rest does."""
    w = analysis.lost_window(_waits(40), "2025-12-31", "M", comeback=0.3, min_followed=10)
    assert w["days"] == 420 and w["came_back"] == 0, w
    none = analysis.lost_window(_waits(40), "2025-12-31", "M", comeback=0.3, max_days=390,
                                min_followed=10)  # fmt: skip
    assert none["days"] is None and none["reason"] == "no_window"


def test_customer_states_add_up_and_match_the_last_period(ten_orders):
    per = retention.period_retention(ten_orders, "M", "2025-03-31")
    seg = analysis.segment_customers(ten_orders, "2025-03-31")
    s = analysis.customer_states(seg, per, lost_days=60)
    # Mar: {1, 4, 5} active; 2 last bought 10 Feb (49 days: lapsed), 3 on 20 Jan (70 days: lost)
    assert s == {"active": 3, "lapsed": 1, "lost": 1, "customers": 5}
    assert s["active"] == per["customers_end"].iloc[-1]
    assert analysis.customer_states(seg, per, None)["lost"] == 0


def test_nrr_change_by_hand(ten_orders):
    """NRR Feb = 40 / 40 = 1, Mar = 60 / 80 = 0.75 (tests/conftest.py); the delta-method standard
    errors sqrt(sum (y - R x)^2) / sum x: Feb sqrt(20^2 + 10^2 + 10^2) / 40, Mar
    sqrt(12.5^2 + 7.5^2 + 20^2) / 80."""
    n = analysis.nrr_change(ten_orders, "M", "2025-03-31", back=1)
    assert (n["last"], n["before"]) == ("2025-03", "2025-02")
    assert n["nrr_last"] == pytest.approx(0.75) and n["nrr_before"] == pytest.approx(1.0)
    assert n["se_before"] == pytest.approx(np.sqrt(600) / 40)
    assert n["se_last"] == pytest.approx(np.sqrt(612.5) / 80)
    assert n["se"] == pytest.approx(np.hypot(np.sqrt(600) / 40, np.sqrt(612.5) / 80))
    assert n["difference"] == pytest.approx(-0.25) and n["moved"] is False
    per = retention.period_retention(ten_orders, "M", "2025-03-31")
    assert n["nrr_last"] == pytest.approx(per["net_revenue_retention"].iloc[-1])


def test_nrr_change_without_a_year_of_history(ten_orders):
    n = analysis.nrr_change(ten_orders, "M", "2025-03-31", back=12)
    assert np.isnan(n["nrr_before"]) and n["moved"] is False
    assert n["nrr_last"] == pytest.approx(0.75)


def test_inputs_say_what_the_amounts_are_before():
    """Without a returned or discount column the report says so (returns not in the file:
    margins are before returns); ticket and return costs a mapping gives are listed as unused
    unless the data let the report charge them (a tickets table, a returned column: the fold of
    fold_economics); netted refunds are said as netted."""
    mapping = replace(load_mapping(SAMPLE_MAPPING), columns={c: c for c in
                      ("customer_id", "order_date", "amount", "order_id")}, tables={})  # fmt: skip
    econ = analysis.client_economics(mapping)  # the sample's: tickets 15, returns 12
    got = analysis.unused_inputs(mapping, econ, {"refund_rows": 0, "refunds": "reject"})
    assert got["returns"] == "not_mapped" and got["discounts"] == "not_mapped"
    assert got["unused_costs"] == {"cost_per_ticket": 15.0, "return_handling_cost": 12.0}
    fold = {"returns_mapped": True, "tickets_mapped": True}
    used = analysis.unused_inputs(mapping, econ, {"refund_rows": 0}, fold)
    assert used["returns"] == "returned" and used["unused_costs"] == {}
    tickets_only = analysis.unused_inputs(mapping, econ, {}, {"tickets_mapped": True})
    assert tickets_only["unused_costs"] == {"return_handling_cost": 12.0}
    netted = analysis.unused_inputs(
        mapping, econ, {"refund_rows": 5, "refund_amount": -50.0, "refunds": "net"}
    )
    assert netted["returns"] == "netted" and netted["refund_amount"] == -50.0
    bare = analysis.unused_inputs(None, analysis.client_economics(None), {})
    assert bare["returns"] == "not_mapped" and bare["unused_costs"] == {}


def test_nrr_change_takes_the_tables_figures(ten_orders):
    per = retention.period_retention(ten_orders, "M", "2025-03-31")
    a = analysis.nrr_change(ten_orders, "M", "2025-03-31", back=1)
    b = analysis.nrr_change(ten_orders, "M", "2025-03-31", back=1, per=per)
    assert a == pytest.approx(b)


@pytest.fixture(scope="module")
def bundled():
    """The bundled orders as the report reads them with the sample mapping, and the mapping."""
    mapping = load_mapping(SAMPLE_MAPPING)
    return read_client_orders(ORDERS, mapping), mapping


def test_duckdb_and_pandas_give_the_same_definitions(bundled):
    """The lost window and NRR's band from an Ibis table on DuckDB (what the report runs from 1 M
    orders) equal the pandas ones on the bundled orders (fewer customers than the sample cap)."""
    table, _ = bundled
    as_of = table[1]["as_of"]
    got = {}
    for engine in ("pandas", "duckdb"):
        orders, _ = open_orders(table, engine)
        bought = analysis.purchases(orders)
        got[engine] = (
            analysis.lost_window(bought, as_of, "Q"),
            analysis.nrr_change(bought, "Q", as_of, back=4),
        )
    assert got["duckdb"][0] == got["pandas"][0]
    assert got["duckdb"][1] == pytest.approx(got["pandas"][1])


def test_scenario_interval_is_the_delta_method(bundled):
    """The dropout scenario's interval holds its gain (the one :func:`dropout_scenario` gives),
    and scaling the parameters' covariance by 4 doubles its standard error (se = sqrt(g' S g))."""
    import dataclasses

    from helpers import clv

    table, mapping = bundled
    orders, notes = open_orders(table)
    seg = analysis.segment_customers(orders, notes["as_of"]).iloc[::4]  # 1,250: fast
    econ = analysis.client_economics(mapping)
    pf, gg = clv.fit_bgnbd(seg), clv.fit_gamma_gamma(seg[seg["frequency"] > 0])
    table = clv.predictive_clv(pf, gg, seg, econ, cost_per_order=econ.shipping_per_order)
    fit = analysis.ClvFit(table, "BG/NBD", pd.DataFrame(), pf, gg, 13.0, econ.shipping_per_order)
    got = analysis.scenario_interval(fit, seg, econ, 0.10)
    assert got["gain"] == pytest.approx(analysis.dropout_scenario(fit, seg, econ, 0.10)["gain"])
    assert 0 < got["ci_low"] < got["gain"] < got["ci_high"]
    assert got["ci_high"] - got["gain"] == pytest.approx(Z * got["se"], rel=1e-4)
    wide = dataclasses.replace(
        fit,
        purchases=dataclasses.replace(fit.purchases, cov_log=4 * fit.purchases.cov_log),
        spend=dataclasses.replace(fit.spend, cov_log=4 * fit.spend.cov_log),
    )
    assert analysis.scenario_interval(wide, seg, econ, 0.10)["se"] == pytest.approx(
        2 * got["se"], rel=1e-6
    )
