"""helpers.loyalty: known answers (IFRS 15 worked example, hand-computed DiD, FIFO points),
recovery of a planted rate multiplier on simulated BG/NBD data, and of the sample company's
planted loyalty effects (second edition)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import clv, data, loyalty, paths

# ------------------------------------------------------------------ IFRS 15: KPMG Example 10A


def test_ifrs15_allocation_kpmg_example_10a():
    a = loyalty.ifrs15_allocation(100_000, 9_700, value_per_point=1.0, ratio_decimals=2)
    assert a["share_points"] == 0.09
    assert round(a["goods"]) == 91_000 and round(a["points"]) == 9_000
    # without rounding the ratio: 100,000 x 9,700 / 109,700
    exact = loyalty.ifrs15_allocation(100_000, 9_700)
    assert round(exact["points"]) == 8_842 and round(exact["goods"]) == 91_158


def test_ifrs15_revenue_kpmg_example_10a_to_the_unit():
    s = loyalty.ifrs15_revenue(9_000, [0, 4_500, 8_500], [9_700, 9_700, 9_900])
    assert s["revenue"].round().tolist() == [0, 4_175, 3_552]
    assert s["cumulative_revenue"].round().tolist() == [0, 4_175, 7_727]
    assert round(s["contract_liability"].iloc[-1]) == 1_273


def test_ifrs15_revenue_never_exceeds_allocation():
    s = loyalty.ifrs15_revenue(100.0, [50, 120, 130], 100)
    assert s["cumulative_revenue"].max() == 100.0
    assert (s["contract_liability"] >= 0).all()
    with pytest.raises(ValueError):
        loyalty.ifrs15_revenue(100.0, [50, 40], 100)


# ---------------------------------------------------------------- difference-in-differences


def test_did_2x2_by_hand():
    # treated 2.0 -> 3.0 orders, control 1.0 -> 1.2: +1.0 - 0.2 = 0.8; ratio 1.5 / 1.2 = 1.25
    d = loyalty.did_2x2(2.0, 3.0, 1.0, 1.2)
    assert d["difference"] == pytest.approx(0.8)
    assert d["ratio"] == pytest.approx(1.25)


def _two_by_two_panel() -> pd.DataFrame:
    # two groups x two months, customers with given counts: means 2.0, 3.0 (treated), 1.0, 1.2
    rows = []
    cells = {("T", 0): [1, 3, 2, 2, 2], ("T", 1): [3, 4, 2, 3, 3],
             ("C", 0): [1, 1, 0, 2, 1], ("C", 1): [1, 2, 1, 1, 1]}  # fmt: skip
    for (g, m), ys in cells.items():
        for i, y in enumerate(ys):
            rows.append({"customer_id": f"{g}{i}", "country": g, "month": m, "y": y})
    p = pd.DataFrame(rows)
    p["treat"] = ((p["country"] == "T") & (p["month"] == 1)).astype(int)
    return p


def test_poisson_did_equals_the_hand_ratio():
    p = _two_by_two_panel()
    means = p.groupby(["country", "month"])["y"].mean()
    hand = loyalty.did_2x2(means["T", 0], means["T", 1], means["C", 0], means["C", 1])
    fit = loyalty.poisson_did(p)
    assert fit["ratio"] == pytest.approx(hand["ratio"], rel=1e-6)
    assert fit["ci_low"] < fit["ratio"] < fit["ci_high"]


@pytest.mark.filterwarnings("ignore")  # two groups: every permutation fit is saturated
def test_permutation_did_point_estimates_match_the_customer_level_fit():
    p = _two_by_two_panel().assign(post_period=lambda d: d["month"])
    perm = loyalty.permutation_did(p, ["T"])
    assert perm.loc[perm["actual"], "ratio"].item() == pytest.approx(1.25, rel=1e-6)
    assert len(perm) == 2 and perm.loc[~perm["actual"], "ratio"].item() == pytest.approx(0.8)


# ---------------------------------------------------------------------------------- points


def _events(rows):
    ev = pd.DataFrame(rows, columns=["customer_id", "event_at", "event_type", "points"])
    ev["event_at"] = pd.to_datetime(ev["event_at"], format="ISO8601")
    ev.insert(0, "event_id", np.arange(1, len(ev) + 1))
    return ev


def test_point_fates_fifo_by_hand():
    ev = _events(
        [
            (1, "2024-01-01", "join", 0),
            (1, "2024-01-01", "earn", 300),
            (1, "2024-02-01", "earn", 300),
            (1, "2024-02-01 00:00:01", "redeem", -500),  # 300 of batch 1 and 200 of batch 2
            (1, "2024-03-01", "earn", 50),
            (1, "2025-03-01", "expire", -150),  # 100 left of batch 2 and batch 3's 50
            (2, "2024-05-01", "earn", 80),  # still open
        ]
    )
    f = loyalty.point_fates(ev, "2025-12-31")
    got = f.groupby(["customer_id", "earned_at", "fate"])["points"].sum()
    assert got[1, pd.Timestamp("2024-01-01"), "redeem"] == 300
    assert got[1, pd.Timestamp("2024-02-01"), "redeem"] == 200
    assert got[1, pd.Timestamp("2024-02-01"), "expire"] == 100
    assert got[1, pd.Timestamp("2024-03-01"), "expire"] == 50
    assert got[2, pd.Timestamp("2024-05-01"), "open"] == 80
    assert f["points"].sum() == 730
    ledger = loyalty.points_ledger(ev, value_per_point=0.01)
    assert ledger["outstanding"] == 80 and ledger["liability_face_value"] == pytest.approx(0.8)
    assert ledger["breakage_so_far"] == pytest.approx(150 / 730)


def test_breakage_curve_without_censoring_is_the_expired_share():
    ev = _events(
        [
            (1, "2024-01-01", "earn", 500),
            (1, "2024-01-01 00:00:01", "redeem", -500),
            (2, "2024-01-01", "earn", 300),
            (2, "2025-01-01", "expire", -300),
        ]
    )
    b = loyalty.breakage_curve(loyalty.point_fates(ev, "2025-12-31"), horizon_months=24)
    assert b["breakage"] == pytest.approx(300 / 800)


def test_first_eligible_redemption_by_hand():
    ev = _events(
        [
            (1, "2024-01-01", "earn", 400),
            (1, "2024-02-01", "earn", 200),  # first eligible: balance 600
            (1, "2024-02-01 00:00:01", "redeem", -500),
            (2, "2024-01-01", "earn", 550),  # eligible, does not redeem there
            (2, "2024-03-01", "earn", 10),
            (2, "2024-03-01 00:00:01", "redeem", -500),
        ]
    )
    f = loyalty.first_eligible_redemption(ev, 500, "2025-12-31").set_index("customer_id")
    assert f.loc[1, "redeemed"] and not f.loc[2, "redeemed"]


# -------------------------------------------------- rate multipliers inside BG/NBD (simulated)


def _simulate_states(uplift: float, n: int = 3000, seed: int = 1) -> pd.DataFrame:
    """BG/NBD customers observed 100 weeks; half join at week 40 (at their first order after it)
    and then buy `uplift` times faster. No tiers: states 'pre' and 'Bronze'."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(1.5, 1 / 8.0, n)
    p = rng.beta(1.0, 4.0, n)
    club = rng.random(n) < 0.5
    T = 100.0
    t = np.zeros(n)
    member = np.zeros(n, bool)
    alive = np.ones(n, bool)
    rows = [pd.DataFrame({"customer_id": np.arange(n), "t": 0.0, "member": False})]
    while alive.any():
        rate = lam * np.where(member, uplift, 1.0)
        t_next = t + rng.standard_exponential(n) / rate
        new = alive & (t_next <= T)
        member = member | (new & club & (t_next >= 40))
        idx = np.flatnonzero(new)
        rows.append(pd.DataFrame({"customer_id": idx, "t": t_next[idx], "member": member[idx]}))
        t = np.where(new, t_next, t)
        alive = new & (rng.random(n) >= p)
    s = pd.concat(rows).sort_values(["customer_id", "t"]).reset_index(drop=True)
    s["T"] = T
    s["state"] = np.where(s["member"], "Bronze", "pre")
    nxt = s.groupby("customer_id")["t"].shift(-1)
    s["last"] = nxt.isna()
    s["gap"] = np.where(s["last"], T - s["t"], nxt - s["t"])
    return s


def test_fit_rate_multipliers_recovers_a_planted_uplift():
    states = _simulate_states(uplift=1.5)
    # the fit takes every tier's lift and a goal gradient: with one tier only u is free
    fit = loyalty.fit_rate_multipliers(states, ["Bronze"])
    lo, hi = fit.ci["uplift"]
    assert lo < 1.5 < hi and hi - lo < 0.3
    assert fit.ci["r"][0] < 1.5 < fit.ci["r"][1]


def test_fit_rate_multipliers_finds_no_uplift_when_there_is_none():
    fit = loyalty.fit_rate_multipliers(_simulate_states(uplift=1.0, seed=2), ["Bronze"])
    assert fit.ci["uplift"][0] < 1.0 < fit.ci["uplift"][1]


def test_programme_pnl_break_even():
    pnl = loyalty.programme_pnl(
        1000, [1.0, 1.25], margin_per_order=10.0, rewards=500, benefits=0, running_cost=0
    )
    assert pnl["incremental_orders"].tolist() == pytest.approx([0.0, 200.0])
    assert pnl["roi"].tolist() == pytest.approx([-1.0, 3.0])
    # break-even: 1000 (1 - 1/R) 10 = 500 -> R = 1 / 0.95
    assert pnl["break_even_ratio"].iloc[0] == pytest.approx(1 / 0.95)


# ------------------------------------------------ the sample company's planted loyalty effects

SECOND_EDITION = (paths.data_dir(None) / "loyalty_launches.csv").exists()
needs_data = pytest.mark.skipif(not SECOND_EDITION, reason="needs the second-edition sample data")


@pytest.fixture(scope="module")
def sample():
    orders = data.load_orders()
    customers = data.load_customers()
    events = data.load_loyalty_events()
    launches = data.load_table("loyalty_launches")
    return orders, customers, events, launches, data.load_ground_truth()


def _with_history(customers, launches):
    launch = customers["country"].map(launches.set_index("country")["launch_date"])
    return customers.loc[customers["signup_date"] < launch, "customer_id"]


@needs_data
def test_sample_rate_multipliers_cover_the_planted_effects(sample):
    orders, customers, events, launches, gt = sample
    par = gt["parameters"]
    tiers = {t: v for t, v in par["tiers"]}
    states = loyalty.order_states(
        orders, customers, events, tiers, par["goal_gradient_window"], "2025-12-31"
    )
    states = states[states["customer_id"].isin(_with_history(customers, launches))]
    fit = loyalty.fit_rate_multipliers(states, list(tiers))
    truths = {"uplift": par["loyalty_rate_uplift"], "goal_gradient": par["goal_gradient_multiplier"],
              **{t: v for t, v in par["tier_rate_lift"]}}  # fmt: skip
    for name, truth in truths.items():
        lo, hi = fit.ci[name]
        assert lo < truth < hi, (name, lo, hi, truth)


@needs_data
def test_sample_points_ledger_matches_the_truth(sample):
    _, _, events, _, gt = sample
    real = gt["realized"]["loyalty"]
    ledger = loyalty.points_ledger(events, value_per_point=0.01)
    assert ledger["earned"] == real["points_earned"]
    assert ledger["redeemed"] == real["points_redeemed"]
    assert ledger["expired"] == real["points_expired"]
    assert ledger["outstanding"] == real["outstanding_points"]
    fates = loyalty.point_fates(events, "2025-12-31")
    assert fates.groupby("fate")["points"].sum()["open"] == real["outstanding_points"]
    # breakage to date is a lower bound of the survival estimate
    assert loyalty.breakage_curve(fates, 36)["breakage"] > real["breakage_rate"]


@needs_data
def test_sample_pilot_did_covers_the_pilot_effect_and_naive_overstates(sample):
    orders, customers, events, launches, gt = sample
    real = gt["realized"]["loyalty"]
    panel = loyalty.customer_month_panel(orders, customers, launches, "2024-12-31")
    panel["treat"] = (panel["pilot"] & (panel["post"] > 0)).astype(int)
    fit = loyalty.poisson_did(panel)
    assert fit["ci_low"] < real["pilot_att_ratio"] < fit["ci_high"]
    assert real["naive_rate_ratio"] > fit["ci_high"]


# ------------------------------------------- pre-trends, placebo, permutation limits (issue 25)


def _event_panel(pre_trend: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """4 countries x 150 customers x 12 months, the first two launched at month 8; no effect;
    `pre_trend` adds a log-linear trend to the treated countries' months before the launch."""
    rng = np.random.default_rng(seed)
    c = np.repeat(np.arange(600), 12)
    month = np.tile(np.arange(12), 600)
    country = np.array(list("ABCD"))[c // 150]
    pilot = np.isin(country, ["A", "B"])
    mu = 0.8 * np.exp(pre_trend * np.where(pilot & (month < 8), month - 7, 0))
    p = pd.DataFrame({"customer_id": c, "month": month, "country": country, "pilot": pilot,
                      "y": rng.poisson(mu)})  # fmt: skip
    p["launch_month"] = 8
    p["event_time"] = p["month"] - 8
    return p


def test_pretrend_wald_does_not_depend_on_the_reference_month():
    p = _event_panel(seed=1)
    a = loyalty.pretrend_wald(p, window=(-8, 3), reference=-1)
    b = loyalty.pretrend_wald(p, window=(-8, 3), reference=-4)
    assert a["df"] == b["df"] == 7
    assert a["chi2"] == pytest.approx(b["chi2"], rel=1e-6)


def test_pretrend_wald_flags_a_planted_pre_trend_and_not_its_absence():
    assert loyalty.pretrend_wald(_event_panel(0.15, seed=2), window=(-8, 3))["p"] < 0.001
    assert loyalty.pretrend_wald(_event_panel(0.0, seed=2), window=(-8, 3))["p"] > 0.05


def test_event_study_pre_mean_baseline_centres_the_pre_period():
    es = loyalty.event_study(_event_panel(0.1, seed=3), window=(-8, 3), baseline="pre_mean")
    pre = es[es["event_time"] < 0]
    assert np.log(pre["ratio"]).mean() == pytest.approx(0.0, abs=1e-10)
    assert (es["ci_low"] < es["ratio"]).all()  # no month is a zero-width yardstick any more


def test_placebo_in_time_finds_a_pre_trend():
    clean = loyalty.placebo_in_time(_event_panel(0.0, seed=4), placebo_month=4)
    trend = loyalty.placebo_in_time(_event_panel(0.15, seed=4), placebo_month=4)
    assert clean["ci_low"] < 1 < clean["ci_high"] and clean["months"] == (4, 4)
    assert trend["ci_low"] > 1


def test_permutation_min_p_two_of_six_can_never_reject_at_5_percent():
    assert loyalty.permutation_min_p(6, 2) == pytest.approx(1 / 15)
    assert loyalty.permutation_min_p(6, 2) > 0.05
    assert loyalty.permutation_min_p(20, 10) < 0.05


# ------------------------------------------------------------ IPW, AIPW, weights, E-value


def _confounded(n: int = 4000, effect: float = 1.5, seed: int = 0) -> pd.DataFrame:
    """Joining depends on an observed x that also drives the rate; true ATT ratio = `effect`."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = rng.random(n) < 1 / (1 + np.exp(1.0 - x))
    weeks = rng.uniform(20, 80, n)
    y = rng.poisson(0.1 * np.exp(0.5 * x) * np.where(t, effect, 1.0) * weeks)
    return pd.DataFrame({"x": x, "joined": t, "post_orders": y, "post_weeks": weeks})


def test_ipw_and_aipw_recover_a_planted_att_ratio_where_naive_does_not():
    s = _confounded()
    r = loyalty.ipw_att(s, ["x"], n_boot=30, seed=1)
    assert r["naive_ratio"] > 1.8  # confounded
    assert r["ratio"] == pytest.approx(1.5, rel=0.06)
    assert r["aipw_ratio"] == pytest.approx(1.5, rel=0.06)
    assert r["ci_low"] < 1.5 < r["ci_high"] and r["aipw_ci_low"] < 1.5 < r["aipw_ci_high"]
    assert abs(r["balance"].loc["x", "smd_after"]) < 0.05 < abs(r["balance"].loc["x", "smd_before"])


def test_ipw_trim_drops_the_extreme_propensities():
    s = _confounded(seed=2)
    r = loyalty.ipw_att(s, ["x"], n_boot=5, seed=1, trim=0.1)
    out = r["propensity"].lt(0.1) | r["propensity"].gt(0.9)
    assert r["n_trimmed"] == int(out.sum()) > 0
    assert (r["weights"][out] == 0).all() and (r["weights"][~out] > 0).all()


def test_weight_diagnostics_by_hand():
    w = pd.Series([1.0, 2.0, 1.0, 1.0, 0.0])
    t = pd.Series([True, False, False, False, False])
    d = loyalty.weight_diagnostics(w, t)
    # controls 2, 1, 1 (the 0 is trimmed): ESS = 16 / 6
    assert d["n_controls"] == 3 and d["ess"] == pytest.approx(16 / 6)
    assert d["max_weight"] == 2.0 and d["max_share"] == pytest.approx(0.5)
    equal = loyalty.weight_diagnostics(pd.Series([1.0] * 4), pd.Series([False] * 4))
    assert equal["ess"] == pytest.approx(4) and equal["ess_share"] == pytest.approx(1)


def test_e_value_vanderweele_ding_example():
    ev = loyalty.e_value(3.9, 1.8, 8.7)
    assert ev["estimate"] == pytest.approx(7.26, abs=0.01)
    assert ev["ci"] == pytest.approx(3.0, abs=1e-9)
    assert loyalty.e_value(1.2, 0.9, 1.5)["ci"] == 1.0
    # a protective ratio: 1/0.5 = 2 -> 2 + sqrt(2)
    assert loyalty.e_value(0.5)["estimate"] == pytest.approx(2 + np.sqrt(2))


# ------------------------------------------- a rate lift is not lifetime orders (issue 25)


def _rate_fit(r=1.0, alpha=10.0, a=0.8, b=3.0) -> loyalty.RateFit:
    return loyalty.RateFit({"r": r, "alpha": alpha, "a": a, "b": b}, {}, 0.0, 1)


def test_incremental_orders_new_customers_known_answer_and_limits():
    fit = _rate_fit(a=2.0)  # a > 1: lifetime orders are finite
    new = pd.DataFrame({"frequency": [0.0], "recency": [0.0], "T": [0.0]})
    out = loyalty.incremental_orders(fit, new, [10.0, 1e7], m_with=1.5)
    m = clv.ModelFit("BG/NBD", fit.params, 0.0, 1, "weeks", np.zeros((4, 4)), True)
    # for a new customer, E[X(mH) | 0, 0, 0] is FHL's E[X(t)] at t = m H
    assert out["orders_with"].iloc[0] == pytest.approx(clv.expected_purchases_new(m, 15.0))
    assert out["rate_shortcut"].iloc[0] == pytest.approx(1 / 3)
    # over a very long horizon the multiplier adds (almost) no orders: it pulls them forward
    assert out["share"].iloc[1] < 0.01 < out["share"].iloc[0] < 1 / 3
    assert (out["incremental"] >= 0).all()


def test_incremental_orders_no_multiplier_no_orders():
    hist = pd.DataFrame({"frequency": [0.0, 3.0], "recency": [0.0, 20.0], "T": [5.0, 40.0]})
    out = loyalty.incremental_orders(_rate_fit(), hist, [26.0, 52.0], m_with=1.0)
    assert np.allclose(out["incremental"], 0.0)


def test_members_at_join_by_hand():
    states = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 2],
            "t": [0.0, 4.0, 9.0, 0.0, 3.0],
            "member": [False, True, True, True, True],
        }  # fmt: skip
    )
    s = loyalty.members_at_join(states)
    assert s.loc[1].tolist() == [1.0, 4.0, 4.0]  # joined at the second order, week 4
    assert s.loc[2].tolist() == [0.0, 0.0, 0.0]  # joined at sign-up


def test_later_joiner_controls_by_hand():
    launches = pd.DataFrame(
        {
            "country": ["NL", "DE"],
            "launch_date": pd.to_datetime(["2024-01-01", "2025-01-01"]),
            "pilot": [True, False],
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 5],
            "signup_date": pd.to_datetime(["2023-01-01"] * 5),
            "country": ["NL", "NL", "DE", "DE", "DE"],
        }
    )
    dates = {
        1: ["2023-01-01", "2023-06-01", "2024-03-01", "2024-07-01", "2024-10-01", "2025-02-01"],
        2: ["2023-01-01", "2024-02-01", "2024-05-01"],  # pilot joiner, no order after the pilot
        3: ["2023-01-01", "2024-07-01", "2024-10-01", "2025-01-15"],
        4: ["2023-01-01", "2023-03-01", "2023-09-01", "2024-01-01", "2025-03-01"],
        5: ["2023-01-01", "2024-04-01", "2025-05-01"],  # ordered in 2025 but never joined
    }
    orders = pd.DataFrame(
        [(c, pd.Timestamp(d)) for c, ds in dates.items() for d in ds],
        columns=["customer_id", "order_date"],
    )
    joins = pd.Series(pd.to_datetime(["2024-03-01", "2024-02-01", "2025-01-15", "2025-03-01"]),
                      index=[1, 2, 3, 4])  # fmt: skip
    r = loyalty.later_joiner_controls(orders, customers, launches, joins, "2024-12-31")
    assert (r["n_treated"], r["n_controls"]) == (1, 2)
    stop = pd.Timestamp("2025-01-01")
    weeks = {c: (stop - pd.Timestamp(a)).days / 7 for c, a in
             ((1, "2024-03-01"), (3, "2024-07-01"), (4, "2024-01-01"))}  # fmt: skip
    expected = (2 / weeks[1]) / ((1 + 0) / (weeks[3] + weeks[4]))
    assert r["ratio"] == pytest.approx(expected, rel=1e-6)
    assert r["sample"].loc[4, "pre_y"] == 2 and r["sample"].loc[1, "pre_y"] == 1
    assert r["pre_ratio"] == pytest.approx((1 / 52) / ((0 + 2) / 104), rel=1e-6)


def test_aalen_johansen_equals_lifelines_without_ties():
    from lifelines import AalenJohansenFitter

    rng = np.random.default_rng(3)
    t = rng.exponential(10, 300)
    code = rng.choice([0, 1, 2], 300, p=[0.3, 0.4, 0.3])
    times, f1, f2 = loyalty._aalen_johansen(t, code, np.ones(300))
    for k, f in ((1, f1), (2, f2)):
        aj = AalenJohansenFitter(calculate_variance=False).fit(t, code, event_of_interest=k)
        ref = aj.cumulative_density_.iloc[:, 0].reindex(times, method="ffill").to_numpy()
        np.testing.assert_allclose(f, ref, atol=1e-10)


def test_ultimate_breakage_bounds_hold_the_open_points():
    done = _events(
        [
            (1, "2024-01-01", "earn", 500),
            (1, "2024-01-01 00:00:01", "redeem", -500),
            (2, "2024-01-01", "earn", 300),
            (2, "2025-01-01", "expire", -300),
        ]
    )
    u = loyalty.ultimate_breakage(loyalty.point_fates(done, "2025-12-31"), 24, n_boot=50)
    assert u["estimate"] == pytest.approx(300 / 800) and u["open"] == pytest.approx(0)
    assert u["bound_low"] <= u["estimate"] <= u["upper"] <= u["bound_high"]
    # a third member's points still open at the horizon widen the upper bound by their share
    more = pd.concat([done, _events([(3, "2024-01-01", "earn", 200)])], ignore_index=True)
    more["event_id"] = np.arange(1, len(more) + 1)
    u2 = loyalty.ultimate_breakage(loyalty.point_fates(more, "2025-12-31"), 23, n_boot=50)
    assert u2["estimate"] == pytest.approx(300 / 1000)
    assert u2["upper"] == pytest.approx(500 / 1000)


def test_breakage_by_vintage_by_hand():
    ev = _events(
        [
            (1, "2024-01-10", "earn", 500),
            (1, "2024-01-10 00:00:01", "redeem", -500),
            (2, "2024-02-01", "earn", 300),
            (2, "2025-02-01", "expire", -300),
            (3, "2025-11-01", "earn", 200),
        ]
    )
    v = loyalty.breakage_by_vintage(loyalty.point_fates(ev, "2025-12-31"), "2025-12-31")
    assert v.index.tolist() == ["2024Q1", "2025Q4"]
    assert v.loc["2024Q1", "points"] == 800 and v.loc["2024Q1", "expired now"] == 300 / 800
    assert v.loc["2024Q1", "redeemed within 6 months"] == pytest.approx(500 / 800)
    assert v.loc["2024Q1", "expired within 12 months"] == 0.0
    assert v.loc["2024Q1", "expired within 18 months"] == pytest.approx(300 / 800)
    assert v.loc["2025Q4", "open now"] == 1.0
    assert np.isnan(v.loc["2025Q4", "redeemed within 6 months"])


def test_coupon_arm_effects_known_answer_and_no_interval_for_the_control_arm():
    # 4 offers per arm; control: 1 of 4 converts within 60 days, 10 %: 3 of 4 (one redeemed)
    t0 = pd.Timestamp("2025-01-01")
    offers = pd.DataFrame(
        {
            "offer_id": range(1, 9),
            "customer_id": range(1, 9),
            "offered_at": t0,
            "discount_pct": [0] * 4 + [10] * 4,
            "redeemed_order_id": [None] * 4 + [101, None, None, None],
        }
    )
    orders = pd.DataFrame(
        {
            "order_id": [100, 101, 102, 103, 104],
            "customer_id": [1, 5, 6, 7, 8],
            "order_date": t0 + pd.to_timedelta([10, 5, 20, 59, 90], unit="D"),
            "discount": [0.0, 2.0, 0.0, 0.0, 0.0],
        }
    )
    g = loyalty.coupon_arm_effects(offers, orders, days=60)
    assert g["conversion"].tolist() == [0.25, 0.75]
    assert g.loc[10, "uplift"] == pytest.approx(0.5)
    se = np.sqrt(0.75 * 0.25 / 4 + 0.25 * 0.75 / 4)
    assert g.loc[10, "ci_low"] == pytest.approx(0.5 - 1.959964 * se, abs=1e-5)
    assert g.loc[10, "ci_high"] == pytest.approx(0.5 + 1.959964 * se, abs=1e-5)
    assert g.loc[10, "discount_per_offer"] == pytest.approx(0.5)
    # the control arm is the reference: its uplift is 0 by definition, with no interval
    assert g.loc[0, "uplift"] == 0 and g.loc[0, ["ci_low", "ci_high"]].isna().all()
