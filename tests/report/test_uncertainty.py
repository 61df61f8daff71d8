"""The report's figures with their uncertainty (issue 27): the lifecycle's stock-flow identity, a
change called a change only outside the sampling band, CLV intervals from the models' parameter
uncertainty, and the holdout check a client understands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import economics, retention
from helpers.report import analysis
from helpers.report.mapping import load_mapping
from helpers.report.orders import open_orders, read_client_orders, read_client_tables
from helpers.synth import SynthConfig, generate
from tests.report.clients import ORDERS, SAMPLE_MAPPING


@pytest.fixture(scope="module")
def sample():
    mapping = load_mapping(SAMPLE_MAPPING)
    orders, notes = open_orders(read_client_orders(ORDERS, mapping))
    seg = analysis.segment_customers(orders, notes["as_of"])
    tickets = read_client_tables(orders, notes).get("tickets")  # the report's economics
    econ, _ = analysis.fold_economics(orders, analysis.client_economics(mapping), tickets)
    fit, _ = analysis.fit_clv(orders, seg, econ)
    return orders, notes, seg, econ, fit


def test_lifecycle_parts_add_up_by_hand(ten_orders):
    per = retention.period_retention(ten_orders, "M", "2025-03-31")
    lc = analysis.lifecycle(per)
    # Feb: S = 3 {1, 2, 3}, E = 3 {1, 2, 4}: retained 2, new 1 (4), dormant 1 (3)
    assert lc.loc["2025-02", ["new", "retained", "reactivated", "dormant"]].tolist() == [1, 2, 0, 1]


def test_lifecycle_identity_holds_in_every_period(sample):
    orders, notes, *_ = sample
    lc = analysis.lifecycle(
        analysis.period_retention(analysis.purchases(orders), "M", notes["as_of"])
    )
    assert (lc["customers_end"] == lc["new"] + lc["retained"] + lc["reactivated"]).all()
    assert (lc["customers_start"] == lc["retained"] + lc["dormant"]).all()
    assert (lc[["new", "retained", "reactivated", "dormant"]] >= 0).all().all()


def test_retention_change_by_hand():
    per = pd.DataFrame({"retention_rate": [0.5, 0.5, 0.5, 0.5, 0.6],
                        "customers_start": [100, 100, 100, 100, 100]})  # fmt: skip
    out = analysis.retention_change(per)
    se = np.sqrt(0.6 * 0.4 / 100 + 4 * 0.25 / 100 / 16)
    assert out["difference"] == pytest.approx(0.1)
    assert out["se"] == pytest.approx(se)
    assert out["moved"] == bool(0.1 > 1.96 * se)
    big = per.assign(customers_start=10_000)
    assert analysis.retention_change(big)["moved"] is True


def test_clv_interval_matches_a_parametric_bootstrap(sample):
    """The delta-method interval of the total against 400 draws of the log-parameters from their
    normal approximation (the parametric bootstrap of issue 27): the same width to 20 %."""
    orders, notes, seg, econ, fit = sample
    iv = analysis.clv_interval(fit, seg, econ)
    total = iv.loc["total"]
    assert total["ci_low"] < fit.table["clv"].sum() < total["ci_high"]
    assert total["clv"] == pytest.approx(fit.table["clv"].sum())
    rng = np.random.default_rng(1)
    sub = seg.iloc[::5]
    base = np.log(list(fit.purchases.params.values())), np.log(list(fit.spend.params.values()))
    draws = []
    for _ in range(400):
        lp = rng.multivariate_normal(base[0], fit.purchases.cov_log)
        ls = rng.multivariate_normal(base[1], fit.spend.cov_log)
        pf = analysis.replace(
            fit.purchases, params=dict(zip(fit.purchases.params, np.exp(lp), strict=True))
        )
        gg = analysis.replace(
            fit.spend, params=dict(zip(fit.spend.params, np.exp(ls), strict=True))
        )
        draws.append(
            analysis.clv.predictive_clv(pf, gg, sub, econ, cost_per_order=fit.cost_per_order)[
                "clv"
            ].sum()
        )
    sd_boot = np.std(np.log(draws))
    assert total["se_log"] == pytest.approx(sd_boot, rel=0.2)
    seg_rows = iv.drop(index="total")
    assert (seg_rows["ci_low"] < seg_rows["clv"]).all() and (
        seg_rows["clv"] < seg_rows["ci_high"]
    ).all()
    assert seg_rows["clv"].sum() == pytest.approx(total["clv"])


def test_holdout_check_passes_on_a_company_without_a_regime_change():
    """On a company that follows BG/NBD exactly (no planted effects, so no launch in the holdout),
    the actual holdout purchases fall inside the band; on the bundled company, where the loyalty
    club opens in four of six countries on the holdout's first day, they do not."""
    tables, _ = generate(SynthConfig(planted_effects=False, n_customers=3000, seed=11))
    orders = tables["orders"][["order_id", "customer_id", "order_date", "amount"]]
    seg = analysis.segment_customers(orders, "2025-12-31")
    econ = economics.SAMPLE
    fit, why = analysis.fit_clv(orders, seg, econ)
    assert fit is not None, why
    check = analysis.holdout_check(fit, orders, seg)
    assert check["within_band"], check
    assert check["band_low"] < check["predicted"] < check["band_high"]


def test_holdout_check_flags_the_sample_companys_launch(sample):
    orders, notes, seg, econ, fit = sample
    check = analysis.holdout_check(fit, orders, seg)
    assert not check["within_band"] and check["actual"] > check["band_high"], check


def test_recommendations_carry_their_arithmetic_and_rank_by_value(sample):
    orders, notes, seg, econ, fit = sample
    iv = analysis.clv_interval(fit, seg, econ)
    at_risk = analysis.at_risk_customers(seg, fit.table)
    audiences = {
        "winback": at_risk.index,
        "champions": seg.index[seg["segment"].astype(str).eq("Champions")],
        "first_time": seg.index[seg["n_orders"].eq(1)],
    }
    rec = analysis.recommendations(fit, seg, audiences, econ, iv)
    assert rec["value"].is_monotonic_decreasing
    assert set(rec["decision"]) == {"test first"}  # no effect is measured: never "do"
    for _, r in rec.iterrows():
        ids = audiences[r["action"]]
        assert r["customers"] == len(ids)
        assert r["value"] == pytest.approx(fit.table.loc[ids, "clv"].clip(lower=0).sum())
        assert r["cost"] == pytest.approx(len(ids) * econ.cost_per_contact)
        assert r["break_even_effect"] == pytest.approx(r["cost"] / r["value"])
        assert r["value_low"] < r["value"] < r["value_high"]
        control = r["test_control"]
        # the detectable lift has 80 % power with this split (experiments' own power function)
        p0 = r["base_rate"]
        p1 = p0 * (1 + r["detectable_effect"])
        power = analysis.experiments.power_two_proportions(
            p0, min(p1, 1.0), control, ratio=(r["customers"] - control) / control
        )
        assert power == pytest.approx(0.8, abs=0.01)


@pytest.mark.parametrize(
    "low, high, decision", [(0.3, 0.7, "roll out"), (-0.7, -0.2, "stop"), (-0.2, 0.6, "test first")]
)
def test_a_measured_action_is_decided_on_its_interval(sample, low, high, decision):
    """An action the client's own randomized campaign measured (issue 29) gets n x its margin per
    send with the interval, and the decision that interval supports; the others stay 'test
    first'."""
    from helpers.report import beyond_orders

    orders, notes, seg, econ, fit = sample
    at_risk = analysis.at_risk_customers(seg, fit.table)
    audiences = {"winback": at_risk.index, "first_time": seg.index[seg["n_orders"].eq(1)]}
    results = pd.DataFrame(
        {"margin_per_send": [(low + high) / 2, 1.0], "margin_low": [low, 0.5],
         "margin_high": [high, 1.5], "decision": ["keep", "not_measurable"]},
        index=pd.Index(["wb-flow", "other"], name="campaign"),
    )  # fmt: skip
    measured = beyond_orders.measured_actions(
        results, {"winback": "wb-flow", "first_time": "other"}
    )
    assert set(measured) == {"winback"}  # a campaign without a holdout measures nothing
    rec = analysis.recommendations(fit, seg, audiences, econ, measured=measured).set_index("action")
    n = len(at_risk)
    assert rec.loc["winback", "decision"] == decision
    assert rec.loc["winback", "measured_low"] == pytest.approx(n * low)
    assert rec.loc["winback", "measured_high"] == pytest.approx(n * high)
    assert rec.loc["first_time", "decision"] == "test first"


def test_the_intervals_from_the_base_purchases_equal_recomputing_them(sample):
    """analysis.clv_interval moves a spend parameter through the margin per order only (the
    discounted expected purchases taken from the base table): the same intervals as computing
    every shifted table in full with clv.predictive_clv (the definition), to 1e-10."""
    orders, notes, seg, econ, fit = sample
    got = analysis.clv_interval(fit, seg, econ)
    # the reference: every one of the 2 x 7 shifted tables computed by predictive_clv
    step = max(1, int(np.ceil(len(seg) / analysis.CLV_INTERVAL_SAMPLE)))
    sample_ = seg.iloc[::step]
    groups = sample_["segment"].to_numpy()

    def totals(pf, gg):
        t = analysis.clv.predictive_clv(pf, gg, sample_, econ, cost_per_order=fit.cost_per_order)
        out = t["clv"].groupby(groups).sum()
        out["total"] = t["clv"].sum()
        return out

    base = totals(fit.purchases, fit.spend)
    grads = []
    for which in ("purchases", "spend"):
        model = getattr(fit, which)
        for key in model.params:
            moved = []
            for sign in (1, -1):
                m = analysis.replace(
                    model, params={**model.params, key: model.params[key] * np.exp(sign * 1e-4)}
                )
                pf, gg = (m, fit.spend) if which == "purchases" else (fit.purchases, m)
                moved.append(np.log(totals(pf, gg).reindex(base.index)))
            grads.append((moved[0] - moved[1]) / 2e-4)
    g = pd.concat(grads, axis=1).to_numpy()
    n_p = len(fit.purchases.params)
    cov = np.zeros((g.shape[1], g.shape[1]))
    cov[:n_p, :n_p] = fit.purchases.cov_log
    cov[n_p:, n_p:] = fit.spend.cov_log
    se = np.sqrt(np.einsum("gi,ij,gj->g", g, cov, g))
    np.testing.assert_allclose(got.loc[base.index, "se_log"], se, rtol=1e-10)


def test_recommendations_by_position_equal_them_by_label(sample):
    """recommendations looks each audience up by position when the table is indexed like the
    customers, else by label (Index.intersection): the same table either way, with an id not
    among the customers in an audience (left out by both)."""
    orders, notes, seg, econ, fit = sample
    iv = analysis.clv_interval(fit, seg, econ)
    audiences = {
        "winback": analysis.at_risk_customers(seg, fit.table).index.append(pd.Index(["nobody"])),
        "champions": seg.index[seg["segment"].astype(str).eq("Champions")][::-1],
        "first_time": seg.index[seg["n_orders"].eq(1)],
    }
    by_position = analysis.recommendations(fit, seg, audiences, econ, iv)
    by_label = analysis.recommendations(fit, seg.iloc[::-1], audiences, econ, iv)
    pd.testing.assert_frame_equal(by_position, by_label)
    assert (
        by_position.set_index("action").loc["winback", "customers"] == len(audiences["winback"]) - 1
    )


def test_the_actions_scenario_computed_ahead_is_the_one_computed_in_turn(sample, monkeypatch):
    """prefetch_actions starts the retention scenario and its interval in a thread; asked
    afterwards for the same objects, dropout_scenario and scenario_interval return exactly what
    they compute in turn, and nothing is computed twice."""
    _, _, seg, econ, fit = sample
    analysis._SCENARIO.clear()
    analysis._SCENARIO_JOB.clear()
    want = (analysis.dropout_scenario(fit, seg, econ, 0.10),
            analysis.scenario_interval(fit, seg, econ, 0.10))  # fmt: skip
    analysis._SCENARIO.clear()
    calls = []
    inner = analysis._scenario_interval

    def counted(*args, **kwargs):
        calls.append(1)
        return inner(*args, **kwargs)

    monkeypatch.setattr(analysis, "_scenario_interval", counted)
    analysis.prefetch_actions(fit, seg, econ, 0.10)
    got = (analysis.dropout_scenario(fit, seg, econ, 0.10),
           analysis.scenario_interval(fit, seg, econ, 0.10))  # fmt: skip
    assert got == want and len(calls) == 1
    # another cut or level is computed as asked, not taken from the prefetched one
    assert analysis.scenario_interval(fit, seg, econ, 0.10, level=0.9) != want[1]
    assert analysis.dropout_scenario(fit, seg, econ, 0.2)["gain"] > want[0]["gain"]


def test_a_failed_scenario_ahead_is_computed_and_raised_in_turn(sample, monkeypatch):
    """A scenario computed ahead that fails leaves the work to the functions asked later: they
    compute it themselves (and would raise there); without a fit nothing starts."""
    _, _, seg, econ, fit = sample
    analysis._SCENARIO.clear()
    real = analysis._scenario_interval
    monkeypatch.setattr(
        analysis, "_scenario_interval", lambda *a, **k: (_ for _ in ()).throw(ValueError("no"))
    )
    analysis.prefetch_actions(fit, seg, econ, 0.10)
    monkeypatch.setattr(analysis, "_scenario_interval", real)
    got = analysis.scenario_interval(fit, seg, econ, 0.10)
    assert got["ci_low"] <= got["gain"] <= got["ci_high"]
    analysis.prefetch_actions(None, seg, econ, 0.10)
    assert analysis._SCENARIO_JOB == {}
