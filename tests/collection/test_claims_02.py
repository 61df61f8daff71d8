"""Claims of notebook 02 (cohorts, retention curves, acquisition cost) held on the bundled company
and on a company made with another seed (``metrics(nn, company)``, tests/collection/conftest.py).

The notebook's sentences that depend on a number are generated from it; these assertions hold the
conclusions the lesson teaches, each with its direction and its interval."""

from __future__ import annotations

import pytest

from tests.collection.conftest import COMPANIES

pytestmark = pytest.mark.slow

SBG = "sBG"


@pytest.mark.parametrize("company", COMPANIES)
def test_managers_curves_miss_the_paper_holdout_more_than_the_sbg(metrics, company):
    """Section 5: every curve fitted to the survivors of years 1-7 misses years 8-12 by more
    than the sBG, in both segments; the linear and exponential curves fitted to the retention
    rates reach 100 % retention before the data end (year 12)."""
    m = metrics("02", company)
    errors = m["paper_curves_holdout_error"]
    assert set(errors) == {"regular", "high_end"}
    for seg, e in errors.items():
        for curve in ("linear", "exponential", "power"):
            assert e[f"{curve} (survival)"] > e[SBG], (seg, curve, e)
        assert e["linear (survival)"] > 10 * e[SBG], (seg, e)
    for seg, reach in m["paper_retention_rate_reaches_1"].items():
        assert reach["linear"] < 12 and reach["exponential"] < 12, (seg, reach)


@pytest.mark.parametrize("company", COMPANIES)
def test_acquisition_costs_differ_by_channel_beyond_their_intervals(metrics, company):
    """Section 7: the dearest channel costs several times the cheapest per acquired customer,
    and the gap is not month-to-month noise: its lower limit is over five times the cheapest
    channel's upper limit."""
    cpa = metrics("02", company)["acquisition_cpa"]
    assert len(cpa) >= 2
    for e in cpa.values():
        assert e["ci_low"] <= e["estimate"] <= e["ci_high"] and e["ci_low"] > 0
    dear = max(cpa.values(), key=lambda e: e["estimate"])
    cheap = min(cpa.values(), key=lambda e: e["estimate"])
    assert dear["ci_low"] > 5 * cheap["ci_high"], (dear, cheap)


@pytest.mark.parametrize("company", COMPANIES)
def test_payback_verdicts_follow_their_intervals(metrics, company):
    """Section 7: a channel 'pays back' within the horizon only when the whole interval of its
    value : cost ratio is above 1, 'does not' only when it is below 1; paid social (the dearest
    channel) does not pay back within 24 months, organic search (the cheapest) does."""
    m = metrics("02", company)
    payback = m["payback"]
    assert set(payback) == set(m["acquisition_cpa"])
    for ch, p in payback.items():
        r = p["value_to_cac"]
        assert r["ci_low"] <= r["estimate"] <= r["ci_high"], ch
        want = (
            "pays back"
            if r["ci_low"] > 1
            else "does not pay back"
            if r["ci_high"] < 1
            else "inconclusive"
        )
        assert p["verdict"] == want, (ch, p)
        if p["verdict"] == "pays back":
            assert p["months"] is not None and p["months"] <= m["payback_horizon"], (ch, p)
    assert m["payback_horizon"] == 24
    assert payback["paid_social"]["value_to_cac"]["ci_high"] < 1
    assert payback["organic_search"]["value_to_cac"]["ci_low"] > 1


@pytest.mark.parametrize("company", COMPANIES)
def test_existing_customers_do_not_spend_the_playbooks_67_percent_more(metrics, company):
    """Section 8: spend per active customer-month in tenure months 12-23 against months 0-5: the
    playbook's ratio (1.67) lies above the interval of the cross-section and of the same
    customers compared with themselves; the cross-section is the same-customer ratio times the
    sorting ratio."""
    m = metrics("02", company)
    s = m["existing_spend"]
    assert m["playbook_ratio"] == pytest.approx(1.67)
    for k in ("cross_section", "same_customers", "sorting"):
        assert s[k]["ci_low"] <= s[k]["ratio"] <= s[k]["ci_high"], k
    for k in ("cross_section", "same_customers"):
        assert s[k]["ci_high"] < m["playbook_ratio"], (k, s[k])
    assert s["cross_section"]["ratio"] == pytest.approx(
        s["same_customers"]["ratio"] * s["sorting"]["ratio"], rel=1e-3
    )
