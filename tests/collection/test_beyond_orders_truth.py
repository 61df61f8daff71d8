"""Issue 29: the report's survey, campaign and loyalty sections recover what the generator
planted, from client-shaped exports (:func:`helpers.report.exports.beyond_orders`), on the bundled
company and on the other company (another seed and other effect sizes:
tests/collection/conftest.py).

The loyalty section's within-member multiplier (one state after joining) averages the
programme's base uplift with its tier and goal-gradient lifts; it is held to the truth of that
average, ``realized.loyalty.within_member_multiplier`` (members' expected orders after joining
with the club over those without it, on the same exposure:
:func:`helpers.synth.truth.within_member_multiplier`), not to the planted base uplift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import feedback, paths
from helpers.report import beyond_orders, exports
from helpers.report.mapping import load_mapping
from helpers.report.orders import read_client_orders, read_client_tables
from helpers.synth import read_truth

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def measured(other_company, tmp_path_factory) -> dict[str, tuple]:
    """(tables, orders, notes, truth) per company, from the exports a consultant receives."""
    out = {}
    for company, folder in (("bundled", paths.DATASETS), ("other", Path(other_company))):
        mapping = load_mapping(exports.beyond_orders(tmp_path_factory.mktemp(company), folder))
        orders, notes = read_client_orders(folder / "orders.csv", mapping)
        out[company] = (read_client_tables(orders, notes), orders, notes, read_truth(folder))
    return out


@pytest.mark.parametrize("company", ["bundled", "other"])
def test_each_campaign_flows_uplift_interval_covers_the_planted_effect(measured, company):
    tables, orders, notes, truth = measured[company]
    spec = notes["mapping"].tables["campaigns"]
    res = beyond_orders.campaign_results(
        tables["campaigns"], orders, notes["mapping"].economics, spec.holdout_share
    )
    planted = truth["realized"]["campaigns"]
    assert set(res.index) == set(planted)
    for flow, row in res.iterrows():
        true = planted[flow]["true_ate"]
        assert row["uplift_low"] <= true <= row["uplift_high"], (flow, row["uplift"], true)
        assert not row["srm"]  # the generator's split is the planned one
    # the decision follows the interval, never the point estimate
    inconclusive = (res["margin_low"] < 0) & (res["margin_high"] > 0)
    assert (res["decision"].eq("inconclusive") == inconclusive).all()


@pytest.mark.parametrize("company", ["bundled", "other"])
def test_the_respondents_nps_interval_covers_the_planted_one(measured, company):
    tables, *_, truth = measured[company]
    pooled = feedback.nps(tables["survey"]["score"], method="adjusted_wald")
    true = truth["realized"]["feedback"]["respondent_nps"]
    assert 100 * pooled.ci_low <= true <= 100 * pooled.ci_high, (100 * pooled.nps, true)


@pytest.mark.parametrize("company", ["bundled", "other"])
def test_the_naive_member_gap_overstates_the_within_member_effect(measured, company):
    """The section's lesson, held on both companies: the member/non-member gap (self-selection
    included) is far above what members' own history shows."""
    tables, orders, notes, _ = measured[company]
    lc = beyond_orders.loyalty_comparison(tables["loyalty"], orders, notes["as_of"])
    assert lc["uplift_low"] > 1 and np.isfinite(lc["uplift_high"])
    assert lc["naive_ratio"] > lc["uplift_high"]


@pytest.mark.parametrize("company", ["bundled", "other"])
def test_the_within_member_multiplier_covers_its_truth_not_the_base_uplift(measured, company):
    """The estimate's interval covers the exposure-weighted multiplier (tiers and goal gradient
    included) and lies above the planted base uplift: the average is not the base effect."""
    tables, orders, notes, truth = measured[company]
    lc = beyond_orders.loyalty_comparison(tables["loyalty"], orders, notes["as_of"])
    true = truth["realized"]["loyalty"]["within_member_multiplier"]
    assert lc["uplift_low"] <= true <= lc["uplift_high"], (lc["uplift"], true)
    assert true > truth["parameters"]["loyalty_rate_uplift"]


@pytest.mark.parametrize("company", ["bundled", "other"])
def test_the_ledger_gives_the_programmes_points_and_bounds_its_ultimate_breakage(measured, company):
    """The client-shaped points ledger: the generator's totals to the point, and the bounds on
    the share never redeemed (notebook 05's helpers) cover the generator's ultimate breakage,
    while expired / earned so far understates it."""
    tables, orders, notes, truth = measured[company]
    value = notes["mapping"].tables["points"].point_value
    r = beyond_orders.points_results(tables["points"], notes["as_of"], value)
    loy = truth["realized"]["loyalty"]
    assert (r["earned"], r["redeemed"], r["expired"], r["outstanding"]) == (
        loy["points_earned"], loy["points_redeemed"], loy["points_expired"],
        loy["outstanding_points"],
    )  # fmt: skip
    assert r["outstanding_value"] == pytest.approx(loy["outstanding_liability_eur"])
    b = r["breakage"]
    assert b["bound_low"] <= loy["ultimate_breakage"] <= b["bound_high"], b
    assert r["breakage_so_far"] < b["ci_low"]
