"""helpers.feedback: NPS known answers (Rocks 2016 hand cases), interval coverage, themes,
interrupted time series, survival data for tickets, experiments and matching on hand cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import data, feedback, paths

# n = 100: 50 promoters (score 9-10), 30 passives (7-8), 20 detractors (0-6)
HAND = np.array([10] * 30 + [9] * 20 + [8] * 15 + [7] * 15 + [6] * 10 + [3] * 5 + [0] * 5)


def test_nps_and_its_standard_error_on_the_rocks_hand_case():
    # Var = [0.5 + 0.2 - 0.3^2] / 100 = 0.0061 -> se 0.0781
    r = feedback.nps(HAND)
    assert (r.n, r.promoters, r.detractors) == (100, 50, 20)
    assert r.nps == pytest.approx(0.30)
    assert r.se == pytest.approx(np.sqrt(0.0061), abs=1e-12)
    assert round(r.se, 4) == 0.0781
    assert r.ci_low == pytest.approx(0.30 - 1.959964 * 0.078102, abs=1e-5)
    assert r.ci_high == pytest.approx(0.30 + 1.959964 * 0.078102, abs=1e-5)


def test_adjusted_wald_by_hand():
    # n' = 103, P' = 50.75, D' = 20.75: centre 30/103 = 0.291262,
    # Var = [71.5/103 - (30/103)^2] / 103 = 0.00591591 -> se 0.0769150
    r = feedback.nps(HAND, method="adjusted_wald")
    assert r.nps == pytest.approx(30 / 103)
    var = (71.5 / 103 - (30 / 103) ** 2) / 103
    assert r.se == pytest.approx(np.sqrt(var))
    assert r.se == pytest.approx(0.0769150, abs=1e-6)
    assert r.ci_low == pytest.approx(30 / 103 - 1.959964 * 0.0769150, abs=1e-5)
    assert r.ci_high == pytest.approx(0.44201, abs=1e-4)


def test_adjusted_wald_stays_inside_at_the_extremes():
    # all promoters: Wald collapses to a zero-width interval at 1, adjusted Wald does not
    wald = feedback.nps([10] * 8)
    adj = feedback.nps([10] * 8, method="adjusted_wald")
    assert wald.se == 0 and wald.ci_low == wald.ci_high == 1.0
    assert adj.se > 0 and adj.ci_low < 1.0 and adj.ci_high <= 1.0


def test_bootstrap_is_seeded_and_close_to_wald_at_large_n():
    a = feedback.nps(HAND, method="bootstrap", seed=3, n_boot=4000)
    b = feedback.nps(HAND, method="bootstrap", seed=3, n_boot=4000)
    assert a == b
    assert a.nps == pytest.approx(0.30)
    assert a.se == pytest.approx(0.0781, abs=0.004)
    assert a.ci_low == pytest.approx(0.147, abs=0.02) and a.ci_high == pytest.approx(
        0.453, abs=0.02
    )


@pytest.mark.parametrize(
    "bad, message",
    [
        ([9, np.nan, 3], "missing"),
        ([9, None, 3], "missing"),
        ([9, 11], "0 to 10"),
        ([9, -1], "0 to 10"),
        ([9, 7.5], "0 to 10"),
        (["9", "ten"], "not numbers"),
        ([], "empty"),
    ],
)
def test_bad_scores_are_refused_clearly(bad, message):
    with pytest.raises(ValueError, match=message):
        feedback.nps(bad)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method"):
        feedback.nps(HAND, method="exact")


@given(
    st.lists(st.integers(min_value=0, max_value=10), min_size=1, max_size=300),
    st.sampled_from(["wald", "adjusted_wald"]),
)
def test_nps_properties(scores, method):
    r = feedback.nps(scores, method=method)
    assert -1 <= r.ci_low <= r.ci_high <= 1
    assert r.se >= 0
    s = np.asarray(scores)
    assert feedback.nps(scores).nps == pytest.approx((s >= 9).mean() - (s <= 6).mean())


def test_weighted_nps_with_equal_weights_is_the_trinomial_one():
    w = feedback.weighted_nps(HAND, np.full(HAND.size, 2.5))
    r = feedback.nps(HAND)
    assert w.nps == pytest.approx(r.nps) and w.se == pytest.approx(r.se)


def test_weighted_nps_by_hand():
    # two promoters with weight 3, one detractor with weight 1: NPS = (6 - 1) / 7
    w = feedback.weighted_nps([10, 9, 0], [3, 3, 1])
    assert w.nps == pytest.approx(5 / 7)
    z, m = np.array([1, 1, -1]), 5 / 7
    assert w.se == pytest.approx(np.sqrt(np.sum(np.array([9, 9, 1]) * (z - m) ** 2)) / 7)
    with pytest.raises(ValueError, match="weights"):
        feedback.weighted_nps([10, 9], [1, 2, 3])


def test_nps_difference_between_waves():
    a = HAND
    b = np.array([10] * 40 + [8] * 30 + [5] * 30)  # NPS 0.10, n = 100
    d = feedback.nps_difference(a, b)
    assert d["difference"] == pytest.approx(-0.20)
    se = np.sqrt(0.0061 + (0.4 + 0.3 - 0.01) / 100)
    assert d["se"] == pytest.approx(se)
    assert d["p_value"] == pytest.approx(2 * (1 - __import__("scipy").stats.norm.cdf(0.2 / se)))
    same = feedback.nps_difference(a, a)
    assert same["difference"] == 0 and same["p_value"] == pytest.approx(1.0)


def test_coverage_simulation_wald_undercovers_at_small_n():
    cov = feedback.coverage_simulation(0.45, 0.15, [10, 400], n_sims=4000, n_boot=300, seed=1)
    c = cov.set_index(["n", "method"])["coverage"]
    assert c[(10, "wald")] < 0.92  # well below the nominal 95 %
    assert c[(10, "adjusted_wald")] > c[(10, "wald")] + 0.02
    assert abs(c[(400, "wald")] - 0.95) < 0.015  # fine at large n
    assert abs(c[(400, "adjusted_wald")] - 0.95) < 0.015
    again = feedback.coverage_simulation(0.45, 0.15, [10, 400], n_sims=4000, n_boot=300, seed=1)
    pd.testing.assert_frame_equal(cov, again)


def test_response_weights_undo_a_known_selection():
    # two groups; group 1 answers with P 0.2, group 0 with P 0.8: weights ~ 1/0.2 and 1/0.8
    rng = np.random.default_rng(0)
    g = rng.integers(0, 2, 20000)
    responded = rng.random(g.size) < np.where(g == 1, 0.2, 0.8)
    w = feedback.response_weights(pd.DataFrame({"g": g}), responded)
    assert w[g == 1].mean() == pytest.approx(5.0, rel=0.05)
    assert w[g == 0].mean() == pytest.approx(1.25, rel=0.05)


COMMENTS = pd.Series(
    [
        "Parcel arrived late again.",
        "Too expensive for what you get.",
        "Nobody answered my complaint.",
        "The last roast tasted burnt.",
        "Hard to pause or skip my subscription.",
        None,
        "It is fine.",
    ]
)


def test_keyword_themes_and_scores_by_hand():
    kw = {
        "delivery": ("parcel", "late"),
        "price": ("expensive",),
        "customer service": ("answer",),
        "taste": ("roast",),
    }
    pred = feedback.keyword_themes(COMMENTS, kw)
    assert list(pred[:5]) == ["delivery", "price", "customer service", "taste", "other"]
    assert pd.isna(pred[5]) and pred[6] == "other"
    labels = pd.Series(
        ["delivery", "price", "customer service", "taste", "subscription", None, "taste"]
    )
    sc = feedback.theme_scores(labels, pred)
    # taste: 1 predicted, correct -> precision 1; 2 labelled, 1 found -> recall 0.5
    assert sc.loc["taste", "precision"] == 1.0 and sc.loc["taste", "recall"] == 0.5
    assert sc.loc["subscription", "recall"] == 0.0
    assert sc.loc["micro", "precision"] == pytest.approx(4 / 6)
    assert sc.loc["micro", "support"] == 6


def test_first_matching_theme_wins():
    out = feedback.keyword_themes(
        pd.Series(["late and expensive"]), {"price": ("expensive",), "delivery": ("late",)}
    )
    assert out[0] == "price"


def test_nmf_separates_distinct_templates():
    texts = pd.Series(
        ["parcel arrived late courier slow"] * 20
        + ["price too expensive cheaper elsewhere"] * 20
        + ["roast tasted burnt stale beans"] * 20
    )
    topic, words = feedback.nmf_themes(texts, 3, seed=0)
    assert topic.nunique() == 3 and len(words) == 3
    assert (topic.groupby(np.repeat([0, 1, 2], 20)).nunique() == 1).all()


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.PerfectSeparationWarning")
def test_interrupted_time_series_recovers_a_halving():
    idx = pd.period_range("2024-01", "2025-12", freq="M")
    exposure = pd.Series(np.full(len(idx), 10000.0), index=idx)
    rate = np.where(idx >= pd.Period("2025-04", "M"), 0.01, 0.02)
    counts = pd.Series(rate * exposure.to_numpy(), index=idx)  # exact expected counts
    r = feedback.interrupted_time_series(counts, exposure, "2025-04")
    assert r["reduction"] == pytest.approx(0.5, abs=1e-9)
    assert r["rate_before"] == pytest.approx(0.02) and r["rate_after"] == pytest.approx(0.01)
    rng = np.random.default_rng(0)
    noisy = pd.Series(rng.poisson(rate * exposure.to_numpy()), index=idx)
    r = feedback.interrupted_time_series(noisy, exposure, "2025-04", trend=True)
    assert r["reduction_low"] < 0.5 < r["reduction_high"]
    with pytest.raises(ValueError, match="inside"):
        feedback.interrupted_time_series(counts, exposure, "2027-01")


def test_ticket_durations_censor_open_tickets_at_as_of():
    t = pd.DataFrame(
        {
            "opened_at": pd.to_datetime(
                ["2025-12-30 12:00", "2025-12-31 12:00", "2025-12-20 00:00"]
            ),
            "first_response_at": pd.to_datetime(["2025-12-30 18:00", None, "2026-01-02 00:00"]),
            "resolved_at": pd.to_datetime(["2025-12-31 12:00", None, None]),
        }
    )
    d = feedback.ticket_durations(t, "2025-12-31")
    assert list(d["responded"]) == [True, False, False]  # a reply after as-of is not seen yet
    assert list(d["response_hours"]) == [6.0, 12.0, 12 * 24.0]
    assert list(d["resolved"]) == [True, False, False]
    assert list(d["resolution_hours"]) == [24.0, 12.0, 12 * 24.0]


def test_next_order_after_by_hand():
    orders = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3],
            "order_date": pd.to_datetime(["2025-01-01", "2025-03-01", "2025-01-10", "2025-12-01"]),
        }
    )
    ev = pd.DataFrame(
        {
            "customer_id": [1, 2, 1, 3],
            "at": pd.to_datetime(["2025-01-01", "2025-01-10", "2025-03-01", "2025-11-01"]),
        },
        index=[10, 11, 12, 13],
    )
    out = feedback.next_order_after(ev, orders, "at", 90, "2025-12-31")
    assert list(out.index) == [10, 11, 12, 13]
    assert list(out["ordered"]) == [True, False, False, True]  # the same-day order is not "next"
    assert out.loc[10, "days_to_next"] == 59 and out.loc[13, "days_to_next"] == 30
    assert (
        out.loc[11, "days_to_next"]
        == (pd.Timestamp("2026-01-01") - pd.Timestamp("2025-01-10")).days
    )
    assert list(out["bought_within"]) == [True, False, False, True]
    assert list(out["window_complete"]) == [True, True, True, False]


def test_proportion_ratio():
    r = feedback.proportion_ratio([1] * 30 + [0] * 70, [1] * 20 + [0] * 80)
    se = np.sqrt(0.7 / 30 + 0.8 / 20)
    assert r["estimate"] == pytest.approx(1.5)
    assert r["ci_low"] == pytest.approx(1.5 * np.exp(-1.959964 * se), rel=1e-5)


def test_coarsened_exact_att_by_hand():
    # stratum a: treated y = 1, 1; controls 0, 1 -> 1 - 0.5; stratum b: treated 0; controls 0, 0
    # stratum c: treated only -> dropped. ATT = (2 x 0.5 + 1 x 0) / 3 = 1/3
    df = pd.DataFrame(
        {
            "s": ["a", "a", "a", "a", "b", "b", "b", "c"],
            "t": [1, 1, 0, 0, 1, 0, 0, 1],
            "y": [1, 1, 0, 1, 0, 0, 0, 1],
        }
    )
    r = feedback.coarsened_exact_att(df, "t", "y", ["s"])
    assert r["estimate"] == pytest.approx(1 / 3)
    assert r["n_treated"] == 3 and r["treated_dropped"] == 1 and r["strata"] == 2
    var_t = np.var([1, 1, 0], ddof=1) / 3
    var_c = (2 / 3) ** 2 * 0.5 / 2
    assert r["se"] == pytest.approx(np.sqrt(var_t + var_c))
    # ratio: (2/3) / (1/3) = 2; log-scale variance var_t / (2/3)^2 + var_c / (1/3)^2
    assert r["ratio"] == pytest.approx(2.0)
    se_log = np.sqrt(var_t / (2 / 3) ** 2 + var_c / (1 / 3) ** 2)
    assert r["ratio_high"] == pytest.approx(2.0 * np.exp(1.959964 * se_log), rel=1e-5)


def test_topics_are_named_by_majority_label():
    topic = pd.Series([0, 0, 0, 1, 1, np.nan])
    labels = pd.Series(["taste", "taste", "price", "price", "price", "taste"])
    assert feedback.topics_to_labels(topic, labels) == {0: "taste", 1: "price"}


def test_ticket_outcome_and_order_history_by_hand():
    tk = pd.DataFrame(
        {
            "ticket_id": [1, 2, 3],
            "order_id": [11, 13, 21],
            "opened_at": pd.to_datetime(
                ["2025-01-02 00:00", "2025-03-02 00:00", "2025-01-06 00:00"]
            ),
            "first_response_at": pd.to_datetime(
                ["2025-01-02 05:00", "2025-03-03 01:00", "2025-01-06 01:00"]
            ),
            "resolved_at": pd.to_datetime(["2025-01-03 00:00", "2025-03-09 00:00", None]),
            "resolution": ["voucher", "refund", "unresolved"],
        }
    )
    assert list(feedback.ticket_outcome(tk)) == ["well", "poorly", "unresolved"]
    orders = pd.DataFrame(
        {
            "order_id": [11, 12, 13, 21],
            "customer_id": [1, 1, 1, 2],
            "order_date": pd.to_datetime(["2025-01-01", "2025-02-01", "2025-03-01", "2025-01-05"]),
        }
    )
    o = feedback.orders_with_tickets(orders, tk).set_index("order_id")
    assert list(o["k"]) == [0, 1, 2, 0]
    assert list(o["prior_tickets"]) == [0, 1, 1, 0]
    assert list(o["outcome"]) == ["well", "none", "poorly", "unresolved"]
    assert o.loc[12, "days_since_previous"] == 31 and np.isnan(o.loc[11, "days_since_previous"])


def test_worst_ticket_before_by_hand():
    tk = pd.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "order_id": [1, 2, 3],
            "opened_at": pd.to_datetime(["2025-01-01", "2025-02-01", "2025-01-01"]),
            "first_response_at": pd.to_datetime(
                ["2025-01-03 00:00", "2025-02-01 01:00", "2025-01-01 01:00"]
            ),
            "resolved_at": pd.to_datetime(["2025-01-09", "2025-02-02", None]),
        }
    )  # customer 1: poorly, then well (the worst stays poorly); customer 2: unresolved
    ev = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3],
            "at": pd.to_datetime(["2024-12-31", "2025-03-01", "2025-02-01", "2025-02-01"]),
        }
    )
    out = feedback.worst_ticket_before(ev, tk, "at", "2025-12-31")
    assert list(out["poorly"]) == [0, 1, 0, 0] and list(out["unresolved"]) == [0, 0, 1, 0]


def _simulate_selection(n_customers: int, seed: int) -> pd.DataFrame:
    """The shared-trait model by hand: u ~ N(0, 1); answer with expit(-0.6 - 0.6 u); score
    clip(round(7.9 - 1.7 u + N(0, 1.3^2)), 0, 10); three invitations per customer."""
    rng = np.random.default_rng(seed)
    u = np.repeat(rng.standard_normal(n_customers), 3)
    answered = rng.random(u.size) < 1 / (1 + np.exp(0.6 + 0.6 * u))
    score = np.clip(np.round(7.9 - 1.7 * u + rng.normal(0, 1.3, u.size)), 0, 10)
    return pd.DataFrame(
        {
            "customer_id": np.repeat(np.arange(n_customers), 3),
            "responded": answered,
            "score": np.where(answered, score, np.nan),
            "full_score": score,
        }
    )


def test_selection_model_recovers_a_known_mechanism():
    d = _simulate_selection(1500, seed=4)
    fit = feedback.fit_selection_model(d["customer_id"], d["responded"], d["score"])
    se = np.sqrt(np.diag(fit.cov))
    truth = {"a": -0.6, "b": -0.6, "mu": 7.9, "c": 1.7, "log_sigma": np.log(1.3)}
    for i, (name, value) in enumerate(truth.items()):
        assert abs(fit.params[name] - value) < 3 * se[i], name
    full = feedback.nps(d["full_score"]).nps  # what everyone would have said
    resp = feedback.nps(d.loc[d["responded"], "score"]).nps
    est = feedback.selection_nps(fit, d["customer_id"], d["responded"], d["score"])
    assert resp - full > 0.1  # the respondents flatter the company
    assert est.ci_low < full < est.ci_high


# --------------------------------------------------------------------------------------------
# The planted effects, recovered on the bundled data (truths from ground_truth.json)
# --------------------------------------------------------------------------------------------
AS_OF = "2025-12-31"


@pytest.fixture(scope="module")
def sample():
    t = {
        name: data.load_table(name)
        for name in ["orders", "support_tickets", "nps_responses", "survey_invitations"]
    }
    t["truth"] = data.load_ground_truth()
    offers = paths.DATASETS / "coupon_offers.csv"
    t["coupon_orders"] = pd.read_csv(offers)["redeemed_order_id"].dropna().astype(int)
    return t


def _covers(r: dict, truth: float) -> bool:
    return r["ci_low"] <= truth <= r["ci_high"]


def test_respondent_nps_matches_the_generator(sample):
    # a known answer: the generator's NPS of every answer, in points
    r = feedback.nps(sample["nps_responses"]["score"])
    assert r.nps * 100 == pytest.approx(
        sample["truth"]["realized"]["feedback"]["respondent_nps"], abs=1e-3
    )


def test_followup_experiment_recovers_the_planted_effect(sample):
    r = feedback.followup_effect(sample["nps_responses"], sample["orders"], 180, AS_OF)
    truth = sample["truth"]["realized"]["feedback"]["followup_true_effect_buy_again_180d"]
    assert _covers(r, truth) and r["ci_low"] > 0


def test_delivery_fix_is_dated_and_sized(sample):
    fix = sample["truth"]["parameters"]["delivery_fix_date"]
    counts, exposure = feedback.delivery_ticket_series(
        sample["support_tickets"], sample["orders"], AS_OF, 14
    )
    r = feedback.interrupted_time_series(counts, exposure, pd.Period(fix, "M"))
    truth = sample["truth"]["realized"]["feedback"]["delivery_fix_reduction"]
    assert r["reduction_low"] <= truth <= r["reduction_high"] and r["reduction_low"] > 0


def test_unresolved_tickets_and_remedies(sample):
    # "came back": an order within 270 days, as in the notebook's section 6
    hist = feedback.repurchase_table(
        sample["orders"], sample["support_tickets"], 270, AS_OF, sample["coupon_orders"]
    )
    eff = feedback.recovery_effects(hist)
    extra = sample["truth"]["parameters"]["dropout_extra_unresolved"]
    assert eff.loc["unresolved", "ratio_low"] <= 1 - extra <= eff.loc["unresolved", "ratio_high"]
    assert eff.loc["unresolved", "ci_high"] < 0  # an unresolved ticket costs repeat buying
    rem = feedback.remedy_ratios(hist)
    truth = sample["truth"]["realized"]["feedback"]["repurchase_ratio_vs_refund"]
    for r, t in truth.items():
        assert rem.loc[r, "ci_low"] <= t <= rem.loc[r, "ci_high"], r


def test_keyword_themes_score_against_the_labels(sample):
    c = sample["nps_responses"].dropna(subset=["comment"])
    sc = feedback.theme_scores(c["theme"], feedback.keyword_themes(c["comment"]))
    assert sc.loc["micro", "f1"] > 0.95
    assert (sc["recall"] > 0.9).all()


def test_selection_model_recovers_the_non_response_slope(sample):
    inv = sample["survey_invitations"]
    score = inv["response_id"].map(sample["nps_responses"].set_index("response_id")["score"])
    pen = feedback.worst_ticket_before(inv, sample["support_tickets"], "invited_at", AS_OF)
    fit = feedback.fit_selection_model(inv["customer_id"], inv["responded"], score, pen)
    se = np.sqrt(np.diag(fit.cov))
    b, se_b = fit.params["b"], se[list(fit.params.index).index("b")]
    truth = sample["truth"]["parameters"]["nps_response_risk_slope"]
    assert b - 1.96 * se_b <= truth <= b + 1.96 * se_b and b + 1.96 * se_b < 0
    # weighting on behaviour alone leaves most of the bias; the model removes most of it
    real = sample["truth"]["realized"]["feedback"]
    est = feedback.selection_nps(fit, inv["customer_id"], inv["responded"], score, pen)
    gap_resp = real["respondent_nps"] / 100 - real["population_nps"] / 100
    assert abs(est.nps - real["population_nps"] / 100) < 0.3 * gap_resp


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.PerfectSeparationWarning")
def test_segmented_its_recovers_level_change_under_trend_and_season():
    idx = pd.period_range("2023-01", "2025-12", freq="M")
    t = np.arange(len(idx))
    exposure = pd.Series(np.full(len(idx), 20000.0), index=idx)
    season = np.array([1.0, 1.2, 0.9, 1.1])[idx.quarter - 1]
    post = idx >= pd.Period("2025-04", "M")
    rate = 0.02 * 1.01**t * season * np.where(post, 0.5, 1.0)
    exact = pd.Series(rate * exposure.to_numpy(), index=idx)
    r = feedback.segmented_its(exact, exposure, "2025-04")
    # exact expected counts: level ratio 0.5, no slope change, residuals zero
    assert r["reduction"] == pytest.approx(0.5, abs=1e-6)
    assert r["break_reduction"] == pytest.approx(0.5, abs=1e-6)
    assert r["slope_ratio"] == pytest.approx(1.0, abs=1e-6)
    rng = np.random.default_rng(1)
    noisy = pd.Series(rng.poisson(exact.to_numpy()), index=idx)
    r = feedback.segmented_its(noisy, exposure, "2025-04")
    assert r["reduction_low"] < 0.5 < r["reduction_high"]
    assert r["slope_low"] < 1 < r["slope_high"] and 0 <= r["ljung_box_p"] <= 1
    # the average effect does not lean on the slope change: narrower than the break's
    at_break = feedback.segmented_its(noisy, exposure, "2025-04", effect="break")
    assert at_break["reduction"] == pytest.approx(r["break_reduction"])
    assert r["log_rr_se"] < at_break["log_rr_se"]
    # "wider" takes the larger of the Newey-West and quasi-Poisson errors
    se = {
        e: feedback.segmented_its(noisy, exposure, "2025-04", errors=e)["log_rr_se"]
        for e in ["hac", "quasi"]
    }
    assert r["log_rr_se"] == pytest.approx(max(se.values()))
    # a trend with no break: the level change's interval covers no change
    flat = pd.Series(rng.poisson(0.02 * 1.01**t * 20000.0), index=idx)
    r0 = feedback.segmented_its(flat, exposure, "2025-04", season=None)
    assert r0["rr_low"] < 1 < r0["rr_high"]
    both = feedback.its_against_control(r, r0)
    assert both["rate_ratio"] == pytest.approx(r["rate_ratio"] / r0["rate_ratio"])
    assert both["rr_low"] < r["rate_ratio"] / r0["rate_ratio"] < both["rr_high"]
    with pytest.raises(ValueError, match="season"):
        feedback.segmented_its(noisy, exposure, "2025-04", season="week")
    with pytest.raises(ValueError, match="effect"):
        feedback.segmented_its(noisy, exposure, "2025-04", effect="mean")
    with pytest.raises(ValueError, match="errors"):
        feedback.segmented_its(noisy, exposure, "2025-04", errors="robust")


def test_nmf_fitted_on_a_training_split_projects_the_rest():
    texts = pd.Series(
        ["parcel arrived late courier slow"] * 20
        + ["price too expensive cheaper elsewhere"] * 20
        + ["roast tasted burnt stale beans"] * 20
    )
    labels = pd.Series(np.repeat(["delivery", "price", "taste"], 20))
    train = pd.Series(np.tile([True, False], 30))
    topic, _ = feedback.nmf_themes(texts, 3, seed=0, train=train)
    assert topic.notna().all() and (topic.groupby(labels).nunique() == 1).all()
    stab = feedback.nmf_stability(texts, labels, train, [3], [0, 1])
    assert list(stab["micro_f1"]) == [1.0, 1.0] and (stab["themes_missed"] == 0).all()


def test_theme_shares_known_counts():
    themes = pd.Series(["a"] * 60 + ["b"] * 30 + ["c"] * 10 + [None] * 5)
    sh = feedback.theme_shares(themes)
    assert list(sh.index) == ["a", "b", "c"] and list(sh["n"]) == [60, 30, 10]
    assert sh["share"].tolist() == pytest.approx([0.6, 0.3, 0.1])
    assert ((sh["ci_low"] < sh["share"]) & (sh["share"] < sh["ci_high"])).all()
    # simultaneous intervals are wider than one Wilson interval at the same level
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(60, 100, method="wilson")
    assert sh.loc["a", "ci_high"] - sh.loc["a", "ci_low"] > hi - lo


def test_clustered_nps_matches_statsmodels_and_independent_case():
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    cust = np.repeat(np.arange(60), 3)
    level = rng.integers(0, 11, 60)
    scores = np.clip(level[cust] + rng.integers(-1, 2, cust.size), 0, 10)
    r = feedback.clustered_nps(scores, cust)
    s = (scores >= 9).astype(float) - (scores <= 6).astype(float)
    fit = sm.OLS(s, np.ones_like(s)).fit(cov_type="cluster", cov_kwds={"groups": cust})
    # statsmodels also multiplies by (n - 1) / (n - k), k = 1 parameter: the same here
    assert r["se_cluster"] == pytest.approx(float(fit.bse[0]), rel=1e-9)
    assert r["nps"] == pytest.approx(s.mean()) and r["design_effect"] > 1
    # one answer per customer: cluster se = independent se times sqrt(n / (n - 1))
    one = feedback.clustered_nps([10] * 50 + [8] * 30 + [3] * 20, np.arange(100))
    assert one["se_cluster"] == pytest.approx(0.0781 * np.sqrt(100 / 99), abs=1e-4)


def test_nonresponse_tipping_point_by_hand():
    # respondents' NPS 30 points, 35 % answer: non-respondents 30 / 0.65 = 46.15 points lower
    # bring everyone's NPS to 0
    t = feedback.nonresponse_tipping_point(30.0, 0.35)
    assert t["tipping_delta"] == pytest.approx(46.1538, abs=1e-4) and t["slope"] == -0.65
    assert 30.0 + t["slope"] * t["tipping_delta"] == pytest.approx(0.0)
    with pytest.raises(ValueError):
        feedback.nonresponse_tipping_point(30.0, 1.0)


def test_corrected_prevalence_undoes_a_known_confusion():
    # labelled sample: 'a' is read as 'b' 20 % of the time, 'b' always right
    true_l = pd.Series(["a"] * 100 + ["b"] * 100)
    pred_l = pd.Series(["a"] * 80 + ["b"] * 20 + ["b"] * 100)
    # unlabelled comments, true shares 0.5 / 0.5: predicted 0.4 a, 0.6 b
    pred = pd.Series(["a"] * 40 + ["b"] * 60)
    c = feedback.corrected_prevalence(pred, true_l, pred_l)
    assert c.loc["a", "predicted_share"] == pytest.approx(0.4)
    assert c["corrected_share"].tolist() == pytest.approx([0.5, 0.5])


def test_score_drivers_interval_regression_undoes_the_clipping():
    # a latent score 9.5 - 2 a + N(0, 1.5^2), rounded and clipped to 0..10: most customers hit
    # the top, so OLS on the score shrinks the -2 points; the interval model recovers them
    rng = np.random.default_rng(3)
    n = 4000
    X = pd.DataFrame({"a": (rng.random(n) < 0.3).astype(float)})
    score = pd.Series(np.clip(np.round(9.5 - 2 * X["a"] + rng.normal(0, 1.5, n)), 0, 10))
    ols = feedback.score_drivers(score, X, np.arange(n), "ols")
    iv = feedback.score_drivers(score, X, np.arange(n), "interval")
    assert ols.loc["a", "ci_high"] < -1.5 and ols.loc["a", "ci_low"] > -2  # attenuated
    assert iv.loc["a", "ci_low"] <= -2 <= iv.loc["a", "ci_high"]
    assert iv.loc["sigma", "ci_low"] <= 1.5 <= iv.loc["sigma", "ci_high"]
    # without clipping or rounding to matter (a wide scale), the two agree
    wide = feedback.score_drivers(score, X, np.arange(n), "interval", bounds=(-100, 100))
    assert wide.loc["a", "estimate"] == pytest.approx(ols.loc["a", "estimate"], abs=0.02)
    with pytest.raises(ValueError, match="method"):
        feedback.score_drivers(score, X, np.arange(n), "probit")


def _r2(y: np.ndarray, X: pd.DataFrame) -> float:
    import statsmodels.api as sm

    if X.shape[1] == 0:
        return 0.0
    return float(sm.OLS(y, sm.add_constant(X, has_constant="add")).fit().rsquared)


def test_lmg_of_uncorrelated_predictors_is_each_squared_correlation():
    # two exactly uncorrelated predictors: R^2 = r1^2 + r2^2 and LMG_j = r_j^2 (Groemping 2007)
    rng = np.random.default_rng(1)
    x1 = rng.normal(size=500)
    x1 -= x1.mean()
    x2 = rng.normal(size=500)
    x2 -= x2.mean()
    x2 -= x1 * (x1 @ x2) / (x1 @ x1)
    y = x1 + 2 * x2 + rng.normal(0, 2, 500)
    X = pd.DataFrame({"x1": x1, "x2": x2})
    lmg = feedback.lmg_r2(y, X, {"a": ["x1"], "b": ["x2"]})
    assert lmg["a"] == pytest.approx(np.corrcoef(y, x1)[0, 1] ** 2, abs=1e-10)
    assert lmg["b"] == pytest.approx(np.corrcoef(y, x2)[0, 1] ** 2, abs=1e-10)
    assert lmg.sum() == pytest.approx(_r2(y, X), abs=1e-10)


def test_lmg_of_correlated_groups_is_the_shapley_value_of_r2():
    # brute force: every order in which three groups enter, each group's increase in R^2
    from itertools import permutations

    rng = np.random.default_rng(2)
    n = 400
    z = rng.normal(size=(n, 4))
    X = pd.DataFrame({"a": z[:, 0], "b1": z[:, 0] + z[:, 1], "b2": z[:, 2] > 0,
                      "c": z[:, 1] - z[:, 3]}).astype(float)  # fmt: skip
    y = X["a"] + 0.5 * X["b1"] - X["b2"] + 0.3 * X["c"] + rng.normal(size=n)
    groups = {"A": ["a"], "B": ["b1", "b2"], "C": ["c"]}
    lmg = feedback.lmg_r2(y, X, groups)
    want = dict.fromkeys(groups, 0.0)
    orders = list(permutations(groups))
    for order in orders:
        cols: list[str] = []
        for g in order:
            before = _r2(y, X[cols])
            cols = cols + groups[g]
            want[g] += (_r2(y, X[cols]) - before) / len(orders)
    assert lmg.to_dict() == pytest.approx(want, abs=1e-10)
    assert lmg.sum() == pytest.approx(_r2(y, X), abs=1e-10) and (lmg > 0).all()
    with pytest.raises(ValueError, match="at least two"):
        feedback.lmg_r2(y, X, {"A": ["a"]})
    with pytest.raises(ValueError, match="not in X"):
        feedback.lmg_r2(y, X, {"A": ["a"], "B": ["nope"]})


def test_lmg_importance_bootstraps_whole_clusters():
    # every row twice (a customer who answers twice alike): resampling customers gives about
    # the intervals of the data without the copies; resampling rows pretends to twice the data
    rng = np.random.default_rng(3)
    n = 300
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y = 0.8 * X["a"] + 0.3 * X["b"] + rng.normal(size=n)
    groups = {"A": ["a"], "B": ["b"]}
    once = feedback.lmg_importance(y, X, groups, n_boot=400, seed=1)
    X2, y2 = pd.concat([X, X], ignore_index=True), pd.concat([y, y], ignore_index=True)
    ids = np.tile(np.arange(n), 2)
    twice = feedback.lmg_importance(y2, X2, groups, ids, n_boot=400, seed=1)
    naive = feedback.lmg_importance(y2, X2, groups, n_boot=400, seed=1)

    def width(r: dict) -> float:
        t = r["table"]
        return float((t["ci_high"] - t["ci_low"]).loc["A"])

    assert twice["table"]["estimate"].to_dict() == pytest.approx(
        once["table"]["estimate"].to_dict()
    )
    assert 0.75 < width(twice) / width(once) < 1.33
    assert width(naive) / width(twice) < 0.85
    t = twice["table"]
    assert (t["ci_low"] <= t["estimate"]).all() and (t["estimate"] <= t["ci_high"]).all()
    assert (twice["top"], twice["second"]) == ("A", "B")
    d, lo, hi = twice["difference"]
    assert lo <= d <= hi and lo > 0  # A's share is clearly the larger
    assert t["estimate"].sum() == pytest.approx(twice["r2"][0])
