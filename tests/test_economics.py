"""One economics: hand-computed margins, costs, discounting and per-year figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import economics
from helpers.economics import Economics


@pytest.fixture
def three_orders() -> pd.DataFrame:
    # customer 1: 100 paid + 0 discount kept, 50 paid + 10 discount returned; customer 2: 80 + 20 kept
    return pd.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "order_date": pd.to_datetime(
                ["2025-01-01 00:00", "2025-06-01 00:00", "2025-12-31 23:00"]
            ),
            "amount": [100.0, 50.0, 80.0],
            "discount": [0.0, 10.0, 20.0],
            "returned": [False, True, False],
        }
    )


def test_order_margin_by_hand(three_orders):
    econ = Economics(gross_margin_rate=0.4)
    # kept: 100 - 0.6*100 = 40; returned: 0; kept: 80 - 0.6*100 = 20
    assert economics.order_margin(three_orders, econ).tolist() == pytest.approx([40, 0, 20])
    assert economics.net_margin_rate(three_orders, econ) == pytest.approx(60 / 230)


def test_customer_value_by_hand(three_orders):
    econ = Economics(gross_margin_rate=0.4, shipping_per_order=5, cost_per_ticket=10,
                     return_handling_cost=7, min_tenure_days=90)  # fmt: skip
    tickets = pd.DataFrame({"customer_id": [1, 1, 2], "opened_at": pd.to_datetime(
        ["2025-02-01", "2026-01-05", "2025-12-31"])})  # fmt: skip
    cv = economics.customer_value(three_orders, tickets, econ, as_of="2025-12-31")
    c1, c2 = cv.loc[1], cv.loc[2]
    assert c1["margin"] == pytest.approx(40)
    assert c1["n_tickets"] == 1  # the ticket after as-of does not count
    # margin after cost = 40 - 2 orders x 5 shipping - 1 ticket x 10 - 1 return x 7 = 13
    assert c1["margin_after_cost"] == pytest.approx(13)
    assert c1["years"] == pytest.approx(365 / 365.25)
    # customer 2 ordered at 23:00 on the as-of day: counted, tenure floored at 90 days
    assert c2["margin_after_cost"] == pytest.approx(20 - 5 - 10)
    assert c2["years"] == pytest.approx(90 / 365.25)
    assert c2["margin_per_year"] == pytest.approx(5 / (90 / 365.25))
    # ratio of sums, not a mean of ratios
    assert economics.per_year(cv["margin_after_cost"], cv["years"]) == pytest.approx(
        18 / ((365 + 90) / 365.25)
    )


def test_discounting():
    econ = Economics(yearly_discount_rate=0.10, horizon_months=12)
    assert (1 + econ.monthly_discount_rate) ** 12 == pytest.approx(1.10)
    f = econ.discount_factors()
    assert len(f) == 12 and f[-1] == pytest.approx(1 / 1.10)


def test_from_mapping_refuses_unknown_keys():
    assert economics.from_mapping({"gross_margin_rate": 0.5}).gross_margin_rate == 0.5
    assert economics.from_mapping(None).shipping_per_order == 0.0
    with pytest.raises(ValueError, match="margin_rate"):
        economics.from_mapping({"margin_rate": 0.5})


def test_invalid_values_are_refused():
    with pytest.raises(ValueError):
        Economics(gross_margin_rate=1.5)
    with pytest.raises(ValueError):
        Economics(shipping_per_order=-1)
    assert np.isfinite(economics.SAMPLE.monthly_discount_rate)


def test_cash_flows_by_hand_and_equal_to_customer_value(three_orders):
    econ = Economics(gross_margin_rate=0.4, shipping_per_order=5, cost_per_ticket=10,
                     return_handling_cost=7)  # fmt: skip
    tickets = pd.DataFrame({"customer_id": [1], "opened_at": pd.to_datetime(["2025-02-01"])})
    flows = economics.cash_flows(three_orders, tickets, econ)
    # orders: 40 - 5; 0 - 5 - 7 (returned); 20 - 5; the ticket: -10
    assert flows["value"].tolist() == pytest.approx([35, -12, 15, -10])
    cv = economics.customer_value(three_orders, tickets, econ, as_of="2025-12-31")
    per = flows.groupby("customer_id")["value"].sum()
    assert per.to_numpy() == pytest.approx(cv["margin_after_cost"].to_numpy())


def test_cost_per_acquisition_by_hand():
    spend = pd.DataFrame(
        {"channel": ["a", "a", "a", "b", "b"], "spend": [100.0, 300.0, 200.0, 50.0, 70.0],
         "signups": [10, 20, 10, 5, 5]}
    )  # fmt: skip
    out = economics.cost_per_acquisition(spend)
    a = out.loc["a"]
    assert a["cpa"] == pytest.approx(600 / 40) and a["months"] == 3 and a["signups"] == 40
    # residuals 100 - 150, 300 - 300, 200 - 150: sum of squares 5000
    se = np.sqrt(3 / 2 * 5000) / 40
    assert a["se"] == pytest.approx(se)
    from scipy import stats

    assert a["ci_high"] - a["cpa"] == pytest.approx(stats.t.ppf(0.975, 2) * se)
    assert out.loc["b", "cpa"] == pytest.approx(12.0)


def test_cost_per_acquisition_covers_the_planted_cost():
    """The generator's process (spend = sign-ups x CPA x mean-1 lognormal noise per month): over
    1,000 simulated channels of 36 months the 95 % interval covers the CPA about 95 % of the time."""
    rng = np.random.default_rng(1)
    k, m, sd, cpa = 1000, 36, 0.15, 20.0
    n = rng.poisson(rng.uniform(5, 60, size=(k, 1)), size=(k, m))
    noise = np.exp(rng.normal(-sd * sd / 2, sd, size=(k, m)))
    spend = pd.DataFrame({"channel": np.repeat(np.arange(k), m), "signups": n.ravel(),
                          "spend": (n * cpa * noise).ravel()})  # fmt: skip
    out = economics.cost_per_acquisition(spend)
    covered = ((out["ci_low"] <= cpa) & (cpa <= out["ci_high"])).mean()
    assert 0.93 <= covered <= 0.97


def test_per_amount_paid_by_hand(three_orders):
    """The two numbers a CLV needs per order: margin kept per unit paid (60 of 230 here) and
    the cost to serve per order (shipping + return handling x returns + tickets, per order)."""
    econ = Economics(gross_margin_rate=0.4, shipping_per_order=5, cost_per_ticket=10,
                     return_handling_cost=7, yearly_discount_rate=0.08)  # fmt: skip
    tickets = pd.DataFrame({"customer_id": [1, 2], "opened_at": pd.to_datetime(["2025-02-01"] * 2)})
    e = economics.per_amount_paid(three_orders, tickets, econ)
    assert e.gross_margin_rate == pytest.approx(60 / 230)
    assert e.shipping_per_order == pytest.approx(5 + 7 * 1 / 3 + 10 * 2 / 3)
    assert (e.cost_per_ticket, e.return_handling_cost) == (0.0, 0.0)
    assert e.yearly_discount_rate == 0.08 and e.horizon_months == econ.horizon_months
    # a client's file (amounts only, no tickets): the economics the report applies, unchanged
    plain = economics.per_amount_paid(
        three_orders[["customer_id", "order_date", "amount"]], None, econ
    )
    assert plain.gross_margin_rate == pytest.approx(0.4, abs=1e-15)
    assert plain.shipping_per_order == 5


def _bundled_to(as_of: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    from helpers import data, periods

    orders = periods.up_to(data.load_orders(), as_of, "order_date")
    return orders, periods.up_to(data.load_support_tickets(), as_of, "opened_at")


def test_the_sample_mapping_carries_exactly_the_sample_economics():
    """Issue 24 point 4: notebooks/08_sample_mapping.yaml carries economics.SAMPLE itself, field
    by field (the report folds it per amount paid, as notebook 04 does), and maps the orders'
    discount and returned columns and the support tickets the fold needs."""
    from dataclasses import fields

    from helpers import paths, report
    from helpers.report.mapping import load_mapping

    mapping = load_mapping(paths.NOTEBOOKS / "08_sample_mapping.yaml")
    got = report.client_economics(mapping)
    for f in fields(Economics):
        assert getattr(got, f.name) == getattr(economics.SAMPLE, f.name), f.name
    assert {"discount", "returned"} <= set(mapping.columns) and "tickets" in mapping.tables


def _report_fold(mapping, client_orders, notes):
    """The client report's economics on the sample: the mapping's, folded by
    helpers.report.analysis.fold_economics on the orders and the mapped tickets table."""
    from helpers import report
    from helpers.report.analysis import fold_economics
    from helpers.report.orders import read_client_tables

    tickets = read_client_tables(client_orders, notes).get("tickets")
    return fold_economics(client_orders, report.client_economics(mapping), tickets)


def test_notebook_04_and_the_client_report_value_the_sample_alike():
    """Issue 24: notebook 04 and the client report (notebook 08) give the same total CLV on the
    sample company when they choose the same purchase model. The report's path (the sample
    mapping's reader and economics, report.fit_clv, which chooses the model on a holdout) is fitted
    once; notebook 04's path (its RFM summary, its economics from per_amount_paid, its CLV
    formula) is computed with the model the report chose and the report's fitted parameters,
    after checking that both paths summarize the customers alike."""
    from helpers import clv, paths, report, segments
    from helpers.report.mapping import load_mapping
    from helpers.report.orders import read_client_orders

    mapping = load_mapping(paths.NOTEBOOKS / "08_sample_mapping.yaml")
    client_orders, notes = read_client_orders(paths.DATASETS / "orders.csv", mapping)
    seg = report.segment_customers(client_orders, mapping.as_of)
    econ, _ = _report_fold(mapping, client_orders, notes)
    fit, why = report.fit_clv(client_orders, seg, econ)
    assert fit is not None, why

    orders, tickets = _bundled_to(mapping.as_of)  # notebook 04: orders and tickets to its as-of
    rfm = segments.rfm_table(orders, mapping.as_of, "W")
    cols = ["frequency", "recency", "T", "monetary_value"]
    mine = rfm[cols].set_axis(rfm.index.astype(str))
    pd.testing.assert_frame_equal(mine.sort_index(), seg[cols].sort_index(), check_names=False)
    per_order = economics.per_amount_paid(orders, tickets, economics.SAMPLE)
    # one fold: the report's economics are notebook 04's, number for number
    for key, value in per_order.as_dict().items():
        want = value if isinstance(value, str) else pytest.approx(value)
        assert getattr(econ, key) == want, key
    nb04 = clv.predictive_clv(
        fit.purchases, fit.spend, rfm, economics.SAMPLE,
        margin_rate=per_order.gross_margin_rate, cost_per_order=per_order.shipping_per_order,
    )  # fmt: skip
    assert nb04["clv"].sum() == pytest.approx(fit.table["clv"].sum(), rel=1e-5)
    assert 0 < nb04["clv"].sum()
