"""Notebook 04's claims, held on its metrics.json on the bundled company and on another seed
(``metrics(nn, company)`` of ``tests/collection/conftest.py``). Each claim is a sentence of the
notebook's prose that depends on a computed number (issue 24, items 3-5; issue 32, Pareto/NBD)."""

from __future__ import annotations

import pandas as pd
import pytest

from helpers import data
from tests.collection.conftest import COMPANIES

pytestmark = pytest.mark.slow

Z95 = 1.959964


@pytest.mark.parametrize("company", COMPANIES)
def test_the_clean_window_check_passes(metrics, company):
    """Section 4: "where nothing planted changes, the model passes the checks: the holdout total
    and the frequency groups fall inside the band the model itself predicts"; the clean holdout
    ends before the club's last launch."""
    c = metrics("04", company)["clean_window"]
    assert pd.Timestamp(c["holdout_end"]) < pd.Timestamp(c["last_launch"])
    assert pd.Timestamp(c["calibration_end"]) < pd.Timestamp(c["holdout_end"])
    assert c["band_low"] <= c["actual"] <= c["band_high"], c
    assert c["band_low"] <= c["predicted"] <= c["band_high"], c
    assert abs(c["z"]) < Z95, c
    # eight groups at 95 % each: one outside by chance is allowed
    assert c["groups_inside"] >= c["groups"] - 1, c


@pytest.mark.parametrize("company", COMPANIES)
def test_after_the_launch_the_model_misses_by_about_the_planted_extra_orders(metrics, company):
    """Section 4: "the same model ... misses once the club opens, by far more than its sampling
    band (an under-prediction), and the orders the planted changes added account for the miss"."""
    a = metrics("04", company)["after_launch"]
    assert a["actual"] > a["band_high"] and a["z"] > Z95, a
    assert 0 < a["gap_low"] <= a["planted_extra_orders"] <= a["gap_high"], a
    assert all(v > 0 for v in a["planted"].values()), a["planted"]
    e = a["extra_orders"]
    assert e["ci_low"] <= e["truth"] <= e["ci_high"], e


@pytest.mark.parametrize("company", COMPANIES)
def test_p_alive_means_nothing_for_one_time_buyers_p_purchase_does(metrics, company):
    """Section 4: "every one-time buyer has P(alive) = 1 ... the number says nothing about them";
    the probability of a purchase in the holdout is checked against who bought: for one-time
    buyers it falls inside the 95 % interval of the share who bought, which excludes 1, and it
    scores better than P(alive) read as a probability of buying (Brier score)."""
    p = metrics("04", company)["p_purchase"]
    lo = p["one_time_share_bought"] - Z95 * p["one_time_share_se"]
    hi = p["one_time_share_bought"] + Z95 * p["one_time_share_se"]
    assert p["one_time_p_alive"] == 1.0
    assert hi < 1.0, p
    assert lo <= p["one_time_predicted"] <= hi, p
    assert p["brier_p_purchase"] < p["brier_p_alive"], p


@pytest.mark.parametrize("company", COMPANIES)
def test_the_paradox_of_very_active_customers(metrics, company):
    """Section 4, Pareto/NBD: for a recent buyer the forecast rises with frequency; for a customer
    silent for half a year it peaks at a low frequency and falls, in all three models."""
    m = metrics("04", company)
    assert set(m["paradox"]) == {"BG/NBD", "MBG/NBD", "Pareto/NBD"}
    for model, v in m["paradox"].items():
        assert v["recent_x30"] > 5 * v["recent_x1"], (model, v)
        assert v["quiet_x30"] < 0.1 * v["quiet_peak"], (model, v)
    aic = {k: v["aic"] for k, v in m["purchase_models"].items()}
    assert set(aic) == {"BG/NBD", "MBG/NBD", "Pareto/NBD"}


@pytest.mark.parametrize("company", COMPANIES)
def test_the_email_cost_is_the_data_s(metrics, company, other_company):
    """Section 7: "the e-mail's cost is the company's own send cost from campaigns.csv"."""
    folder = None if company == "bundled" else other_company
    c = data.load_campaigns(folder)
    sent = c[(c["medium"] == "email") & (c["group"] == "treatment")]
    assert metrics("04", company)["email_cost_eur"] == pytest.approx(
        sent["send_cost"].mean(), abs=1e-4
    )


@pytest.mark.parametrize("company", COMPANIES)
def test_bgbb_on_the_donations_data(metrics, company):
    """Section 4, BG/BB: the fit reproduces the published donations estimates (Fader, Hardie &
    Shang 2010) to 3 significant figures and the mean repeat donations it was fitted to; "every
    donor who gave in the last year gets the same high value [of P(alive)]", above every other
    donor's; "among donors whose last gift was a year earlier, the one who gave more often is
    less likely to be alive"; the new donor's forecast comes with an interval around it."""
    from helpers import bgbb

    b = metrics("04", company)["donations_bgbb"]
    for k, v in bgbb.DONATIONS_PUBLISHED.items():
        assert float(f"{b[k]:.3g}") == float(f"{v:.3g}"), (k, b[k], v)
    assert b["model_mean_repeat"] == pytest.approx(b["observed_mean_repeat"], rel=0.02), b
    assert b["p_alive_gave_last_min"] > b["p_alive_others_max"], b
    assert b["p_alive_previous_year_most"] < b["p_alive_previous_year_fewest"], b
    n = b["new_donor_5y"]
    assert 0 < n["ci_low"] < n["estimate"] < n["ci_high"], n
