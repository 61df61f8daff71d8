"""The truth registry (issue 24): every generator parameter classified exactly once, every
planted effect either estimated by a notebook (as a metric with a truth that resolves) or named
unidentifiable with its reason, on the bundled company and on one made with another seed and
other arms, plans and channels."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest

from helpers import paths, synth
from helpers.synth import registry as reg


@pytest.fixture(scope="module")
def bundled_truth() -> dict:
    return synth.read_truth()


@pytest.fixture(scope="module")
def other_truth(tmp_path_factory) -> dict:
    """A small company with another seed and other arms, plans, channels and tiers, so the
    registry's per-arm, per-plan and per-channel metrics change with it."""
    cfg = synth.SynthConfig(
        seed=3,
        n_customers=400,
        coupon_arms=(0, 10, 20),
        coupon_uplift=((10, 0.1), (20, 0.25)),
        plans=(synth.Plan("Solo", 12.0, 0.6, 0.8, 2.5), synth.Plan("Duo", 22.0, 0.4, 1.2, 6.0)),
        sub_beta_multiplier_channel=(("referral", 1.6), ("influencer", 0.8)),
        resolution_dropout_extra=(("replacement", 0.0), ("refund", 0.2), ("voucher", 0.05),
                                  ("explanation", 0.3)),
    )  # fmt: skip
    out = tmp_path_factory.mktemp("registry_company")
    synth.write(*synth.generate(cfg), out)
    return synth.read_truth(out)


def test_every_parameter_is_classified(bundled_truth):
    classified = set(reg.registry())
    assert set(bundled_truth["parameters"]) - classified == set(), "unclassified parameters"
    assert {f.name for f in fields(synth.SynthConfig)} - classified == set(), "new config fields"
    assert classified - set(bundled_truth["parameters"]) == set(), "classified non-parameters"


def test_no_parameter_is_classified_twice():
    names = [*reg.DESIGN, *reg.ESTIMATED, *reg.UNIDENTIFIABLE]
    twice = sorted({n for n in names if names.count(n) > 1})
    assert twice == []
    assert len(reg.registry()) == len(names)


def test_a_parameter_classified_twice_is_refused(monkeypatch):
    monkeypatch.setattr(reg, "DESIGN", (*reg.DESIGN, "loyalty_join_slope"))
    with pytest.raises(ValueError, match="loyalty_join_slope: classified twice"):
        reg.registry()


def test_every_unidentifiable_has_a_one_sentence_reason():
    for name, c in reg.planted_effects().items():
        if c.kind == "unidentifiable":
            assert c.reason.endswith(".") and ". " not in c.reason, name
            assert len(c.reason.split()) >= 8, name
            assert c.metrics == (), name


def test_every_estimated_effect_names_an_existing_notebook_and_a_metric():
    notebooks = {p.name[:2]: p for p in paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")}
    for name, c in reg.registry().items():
        if c.kind != "estimated":
            assert c.metrics == (), name
            continue
        assert c.metrics, name
        for m in c.metrics:
            assert m.notebook in notebooks, f"{name}: no notebook {m.notebook}_*.ipynb"
            assert m.parameter == name and m.key, name


def test_a_metric_key_shared_by_two_parameters_has_one_truth():
    truths: dict[tuple[str, str], set[str]] = {}
    for c in reg.registry().values():
        for m in c.metrics:
            truths.setdefault((m.notebook, m.key), set()).add(m.truth)
    assert {k: t for k, t in truths.items() if len(t) > 1} == {}


@pytest.mark.parametrize("company", ["bundled", "other"])
def test_every_truth_resolves_to_a_number(company, bundled_truth, other_truth):
    truth = bundled_truth if company == "bundled" else other_truth
    for c in reg.registry(truth["parameters"]).values():
        for m in c.metrics:
            assert math.isfinite(reg.truth_value(m, truth)), m


def test_metrics_follow_the_companys_arms_plans_and_channels(other_truth):
    keys = {m.key for m in reg.metrics_for("07", other_truth["parameters"])}
    assert {"coupon_uplift_10", "coupon_uplift_20"} <= keys and "coupon_uplift_5" not in keys
    keys03 = {m.key for m in reg.metrics_for("03", other_truth["parameters"])}
    assert "sub_beta_multiplier_channel.influencer" in keys03
    assert "sub_beta_multiplier_channel.deal_site" not in keys03
    plans = {m.key for m in reg.metrics_for("02_cohorts", other_truth["parameters"])}
    assert {"plans.Solo.alpha", "plans.Duo.beta"} <= plans and "plans.Office.alpha" not in plans
    by_key = {m.key: m for m in reg.metrics_for("02", other_truth["parameters"])}
    assert reg.truth_value(by_key["plans.Duo.beta"], other_truth) == 6.0
    remedies = {m.key for m in reg.metrics_for("06", other_truth["parameters"])}
    assert "resolution_dropout_extra.voucher" in remedies
    assert "resolution_dropout_extra.refund" not in remedies  # the reference of the ratio


def test_api_on_the_bundled_company():
    assert reg.classification("seed").kind == "design"
    assert reg.classification("sleeping_dog_share").kind == "unidentifiable"
    c = reg.classification("loyalty_rate_uplift")
    assert [m.key for m in c.metrics] == [
        "loyalty_rate_uplift.rate_multiplier",
        "loyalty_rate_uplift.pilot_att_ratio",
        "loyalty_rate_uplift.member_att_ratio",
        "loyalty_rate_uplift.member_att_ratio_aipw",
        "loyalty_rate_uplift.member_att_ratio_later_joiners",
        "loyalty_rate_uplift.member_att_ratio_trimmed",
        "loyalty_rate_uplift.member_att_ratio_year_history",
        "beyond_orders.loyalty.within_member_multiplier",  # the client report (issue 29)
    ]
    with pytest.raises(KeyError, match="no_such_parameter"):
        reg.classification("no_such_parameter")
    assert set(reg.planted_effects()) == set(reg.ESTIMATED) | set(reg.UNIDENTIFIABLE)
    keys = [m.key for m in reg.metrics_for("05")]
    assert keys == sorted(set(keys)) and keys.count("redeem_propensity.mean") == 1
    assert keys.count("ultimate_breakage") == 1
    # 05 records the coupon arms it costs beside the club, one per arm (issue 24)
    assert {"coupon_uplift.5", "coupon_uplift.10", "coupon_uplift.15"} <= set(keys)
    assert reg.metrics_for("01") == []
    # notebook 08, the client report: loyalty (issue 29) and the covariate model (issue 32)
    assert sorted(m.key for m in reg.metrics_for("08")) == [
        "beyond_orders.loyalty.within_member_multiplier",
        "beyond_orders.points.ultimate_breakage",
        "covariates.effects.acquisition_channel.referral.dropout",
    ]


def test_a_missing_truth_is_named():
    m = reg.Metric("07", "coupon_uplift_25", "coupon_uplift", "realized.coupons.25.x")
    with pytest.raises(KeyError, match="coupon_uplift_25: no truth at"):
        reg.truth_value(m, synth.read_truth())


def test_derived_truths_known_answers():
    p = {
        "redeem_propensity_a": 2.0, "redeem_propensity_b": 6.0, "bgnbd_a": 1.0, "bgnbd_b": 1.0,
        "dropout_multiplier_well": 0.6, "resolution_types": [["x", 3.0], ["y", 1.0]],
        "resolution_dropout_extra": [["x", 0.1], ["y", 0.5]], "planted_effects": True,
    }  # fmt: skip
    d = reg.derived_truths(p)
    assert d["redeem_propensity_mean"] == pytest.approx(0.25)
    # p = 0.5, e = (3 * 0.1 + 0.5) / 4 = 0.2: 0.5 - (1 - (1 - 0.3) * 0.8) = 0.06
    assert d["well_ticket_net_survival_change"] == pytest.approx(0.06)
    off = reg.derived_truths(p | {"planted_effects": False})
    assert off["well_ticket_net_survival_change"] == 0


def test_discount_truths_known_answer():
    """Issue 28: the deal site's first-order discount gap, (0.65 - 0.08)(0.6 - 0.08) = 0.2964,
    also among derived_truths; nothing without the discount parameters."""
    p = reg.default_parameters()
    gap = reg.discount_truths(p)["discount_first_order_gap_deal_site"]
    assert gap == pytest.approx(0.2964)
    assert reg.derived_truths(p)["discount_first_order_gap_deal_site"] == gap
    assert reg.discount_truths({"discount_prone_share_deal_site": 0.5}) == {}


def test_biased_metrics_are_registered_metrics_with_a_reason():
    """A metric declared biased is still a registered metric (recorded, hit or miss) and says why."""
    keys = {m.key for c in reg.registry().values() for m in c.metrics}
    for key, reason in reg.BIASED.items():
        assert key in keys, key
        assert len(reason) > 40, key
