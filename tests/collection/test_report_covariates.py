"""Issue 32, point 3: the client report's purchase model with the customers' attributes
(helpers.report.covariates_view, notebook 08's metrics ``covariates``) on the bundled company
(the report command's run) and on the other company (another seed and other effect sizes:
tests/collection/conftest.py).

The generator plants one effect of the acquisition channel on the BG/NBD: referral customers'
dropout probability after a purchase is ``referral_dropout_multiplier`` times the others'
(registry key ``covariates.effects.acquisition_channel.referral.dropout`` of notebook 08). The
report's interval of that multiplier must hold it on both companies and exclude 1 (the direction:
referral customers stay longer). The rule is the declared one, whatever it decides on a company:
covariates are used exactly when the likelihood-ratio test rejects at 5 % and the holdout miss is
at most 1 % worse, and the lifetime value is the covariate model's only then."""

from __future__ import annotations

import pytest

from helpers.synth import read_truth

pytestmark = pytest.mark.slow

COMPANIES = ("bundled", "other")
KEY = ("acquisition_channel", "referral", "dropout")


def _truth(company: str, other_company) -> dict:
    return read_truth(None if company == "bundled" else other_company)


@pytest.mark.parametrize("company", COMPANIES)
def test_the_planted_referral_dropout_is_recovered_with_its_direction(
    company, metrics, other_company
):
    cov = metrics("08", company)["covariates"]
    a, level, process = KEY
    entry = cov["effects"][a][level][process]
    planted = _truth(company, other_company)["parameters"]["referral_dropout_multiplier"]
    assert entry["truth"] == pytest.approx(planted)
    assert entry["ci_low"] <= planted <= entry["ci_high"], entry
    assert entry["ci_low"] < entry["estimate"] < entry["ci_high"] < 1  # referral: stays longer
    # the reference is the most common channel, and a level with fewer customers than the rule's
    # minimum is never its own coefficient
    levels = cov["levels"][a]["customers"]
    assert cov["levels"][a]["reference"] == max(levels, key=levels.get)
    assert min(levels.values()) >= cov["rule"]["min_group"]


@pytest.mark.parametrize("company", COMPANIES)
def test_the_declared_rule_decides_and_the_value_follows_it(company, metrics):
    m = metrics("08", company)
    cov = m["covariates"]
    rule, lr, miss = cov["rule"], cov["lr_test"], cov["holdout_bucket_mae"]
    assert lr["df"] == 2 * sum(len(v["customers"]) - 1 for v in cov["levels"].values())
    # both misses are over the customers the purchase models were compared on (paired)
    assert cov["holdout_customers"] == m["clv_model_choice"]["compared_on"]
    rejects = lr["p_value"] < rule["alpha"]
    not_worse = miss["with"] <= (1 + rule["holdout_tolerance"]) * miss["without"]
    assert cov["used"] == (rejects and not_worse)
    assert cov["why"] == ("lr" if not rejects else "holdout" if not not_worse else "chosen")
    without = cov["clv_total_without_covariates"]
    if cov["used"]:  # the covariate model values the customers: a different total, same scale
        assert m["clv_total"] != pytest.approx(without, rel=1e-6)
        assert 0.8 * without < m["clv_total"] < 1.25 * without
    else:
        assert m["clv_total"] == pytest.approx(without, rel=1e-6)
