"""helpers.stats: the statistics more than one topic uses, held to published and hand-computed
answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from helpers.stats import (
    NPS_CATEGORIES,
    bootstrap_comparison,
    nps_category,
    nps_scores,
    orders_after,
)
from helpers.stats import proportion_difference as pdiff


def ones(k: int, n: int) -> np.ndarray:
    """k successes among n units."""
    return np.r_[np.ones(k), np.zeros(n - k)]


# ----------------------------------------------------------------------------- NPS categories


def test_categories_follow_reichheld():
    cat = nps_category([0, 6, 7, 8, 9, 10])
    assert list(cat) == ["detractor"] * 2 + ["passive"] * 2 + ["promoter"] * 2
    assert list(cat.categories) == list(NPS_CATEGORIES)


@pytest.mark.parametrize(
    ("scores", "message"),
    [([], "empty"), ([7, None], "missing"), ([7, 11], "0 to 10"), ([7.5], "0 to 10"),
     (["x"], "not numbers")],
)  # fmt: skip
def test_bad_scores_are_refused(scores, message):
    with pytest.raises(ValueError, match=message):
        nps_category(scores)


def test_scores_come_back_as_integers():
    assert nps_scores(pd.Series([0.0, 10.0])).tolist() == [0, 10]


# ----------------------------------------------------------------------------- two proportions


def test_newcombe_published_example():
    """Newcombe (1998), Statistics in Medicine 17(8), table II, example (a), method 10:
    56/70 vs 48/80, difference 0.2000, 95 % interval 0.0524 to 0.3339."""
    d = pdiff(ones(56, 70), ones(48, 80))
    assert d["estimate"] == pytest.approx(0.2)
    assert (round(d["ci_low"], 4), round(d["ci_high"], 4)) == (0.0524, 0.3339)
    assert (d["p_treat"], d["p_control"], d["n_treat"], d["n_control"]) == (0.8, 0.6, 70, 80)


def test_wald_published_example():
    """The same example by method 1 (the simple asymptotic, Wald, interval): 0.0575 to 0.3425."""
    d = pdiff(ones(56, 70), ones(48, 80), method="wald")
    assert (round(d["ci_low"], 4), round(d["ci_high"], 4)) == (0.0575, 0.3425)


def test_wald_hand_case_and_pooled_p_value():
    """Treated 30/100, control 20/100: d = 0.10, se = sqrt(.3 .7 / 100 + .2 .8 / 100); the pooled
    z test: p = 0.25, z = 0.1 / sqrt(.25 .75 (2 / 100))."""
    d = pdiff(ones(30, 100), ones(20, 100), method="wald")
    se = np.sqrt(0.3 * 0.7 / 100 + 0.2 * 0.8 / 100)
    z = sps.norm.isf(0.025)
    assert d["estimate"] == pytest.approx(0.1)
    assert d["ci_low"] == pytest.approx(0.1 - z * se, abs=1e-9)
    assert d["ci_high"] == pytest.approx(0.1 + z * se, abs=1e-9)
    zstat = 0.1 / np.sqrt(0.25 * 0.75 * (2 / 100))
    assert d["p_value"] == pytest.approx(2 * sps.norm.sf(zstat), rel=1e-9)
    assert pdiff(ones(30, 100), ones(20, 100))["p_value"] == d["p_value"]  # method-free
    assert np.isnan(pdiff(ones(0, 5), ones(0, 7))["p_value"])  # no variation: no test


def test_confidence_widens_the_interval():
    narrow = pdiff(ones(30, 100), ones(20, 100), confidence=0.8)
    wide = pdiff(ones(30, 100), ones(20, 100), confidence=0.99)
    assert wide["ci_low"] < narrow["ci_low"] < 0.1 < narrow["ci_high"] < wide["ci_high"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"method": "score"}, "method"), ({"confidence": 95}, "confidence")],
)
def test_bad_method_or_confidence_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pdiff([1, 0], [0, 0], **kwargs)


def test_empty_group_is_refused():
    with pytest.raises(ValueError, match="at least one unit"):
        pdiff([], [1, 0])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 60), st.integers(1, 60), st.data(), st.sampled_from(["newcombe", "wald"]))
def test_interval_contains_the_estimate(n_t, n_c, data, method):
    k_t, k_c = data.draw(st.integers(0, n_t)), data.draw(st.integers(0, n_c))
    d = pdiff(ones(k_t, n_t), ones(k_c, n_c), method=method)
    assert d["ci_low"] <= d["estimate"] + 1e-12 and d["estimate"] <= d["ci_high"] + 1e-12
    if method == "newcombe":  # score intervals stay within the possible range
        assert -1 - 1e-12 <= d["ci_low"] and d["ci_high"] <= 1 + 1e-12


# ----------------------------------------------------------------------------- orders after an event


@pytest.fixture
def hand():
    """Customer 1 ordered on days 0, 10 and 30 (EUR 10, 20, 30) after an event on day 0;
    customer 2 ordered on day 5 only; customer 3 never."""
    day = pd.Timestamp("2025-01-01")
    orders = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2],
            "order_date": day + pd.to_timedelta([0, 10, 30, 5], unit="D"),
            "amount": [10.0, 20.0, 30.0, 40.0],
        }
    )
    events = pd.DataFrame({"customer_id": [3, 1, 2], "at": [day] * 3}, index=[9, 7, 8])
    return events, orders


def test_window_closed_right_by_hand(hand):
    events, orders = hand
    out = orders_after(events, orders, 30, at="at", values=["amount"])
    assert list(out.index) == [9, 7, 8]  # the events' index and order
    assert out["orders"].tolist() == [0, 2, 1]  # the day-0 order is not after the event
    assert out["converted"].tolist() == [False, True, True]
    assert out["amount"].tolist() == [0.0, 50.0, 40.0]
    first = pd.Timestamp("2025-01-01") + pd.to_timedelta([10, 5], unit="D")
    assert pd.isna(out.loc[9, "next_order_at"]) and out.loc[
        [7, 8], "next_order_at"
    ].tolist() == list(first)


def test_window_closed_both_and_left_by_hand(hand):
    events, orders = hand
    both = orders_after(events, orders, 30, at="at", closed="both", values=["amount"])
    assert both["orders"].tolist() == [0, 3, 1] and both["amount"].tolist() == [0.0, 60.0, 40.0]
    assert both.loc[7, "next_order_at"] == pd.Timestamp("2025-01-01")
    left = orders_after(events, orders, 30, at="at", closed="left")
    assert left["orders"].tolist() == [0, 2, 1]  # day 0 in, day 30 out
    assert orders_after(events, orders, 5, at="at")["converted"].tolist() == [False, False, True]
    five = orders_after(events, orders, 5, at="at", closed="left")
    assert five["converted"].tolist() == [False, True, False]


def test_bad_window_arguments_are_refused(hand):
    events, orders = hand
    with pytest.raises(ValueError, match="closed"):
        orders_after(events, orders, 30, at="at", closed="neither")
    with pytest.raises(ValueError, match="margin"):
        orders_after(events, orders, 30, at="at", values=["margin"])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 60)), max_size=25),
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 60)), min_size=1, max_size=10),
    st.integers(0, 40),
    st.sampled_from(["right", "left", "both"]),
)
def test_orders_after_matches_a_loop(order_rows, event_rows, days, closed):
    """The vectorized window equals the definition applied event by event."""
    day0 = pd.Timestamp("2025-01-01")
    orders = pd.DataFrame(
        {
            "customer_id": [c for c, _ in order_rows],
            "order_date": day0 + pd.to_timedelta([d for _, d in order_rows], unit="D"),
            "amount": [float(d + 1) for _, d in order_rows],
        }
    )
    events = pd.DataFrame(
        {"customer_id": [c for c, _ in event_rows], "at": [day0 + pd.Timedelta(days=d) for _, d in event_rows]}
    )  # fmt: skip
    out = orders_after(events, orders, days, at="at", closed=closed, values=["amount"])
    stop = pd.Timedelta(days=days)
    for i, (c, t) in enumerate(zip(events["customer_id"], events["at"], strict=True)):
        mine = orders[orders["customer_id"] == c]
        od = mine["order_date"]
        start_ok = od >= t if closed in ("left", "both") else od > t
        end_ok = od < t + stop if closed == "left" else od <= t + stop
        inside = mine[start_ok & end_ok]
        assert out["orders"].iloc[i] == len(inside)
        assert out["amount"].iloc[i] == pytest.approx(inside["amount"].sum())
        nxt = od[start_ok].min() if start_ok.any() else pd.NaT
        assert (pd.isna(nxt) and pd.isna(out["next_order_at"].iloc[i])) or out[
            "next_order_at"
        ].iloc[i] == nxt


def test_srm_check_known_answer():
    from helpers.stats import srm_check

    # 60 vs 40 against 50/50: chi2 = (10^2 + 10^2) / 50 = 4.0 on 1 df, p = 0.0455
    r = srm_check([60, 40], [0.5, 0.5])
    assert r["chi2"] == pytest.approx(4.0) and r["df"] == 1
    assert r["p_value"] == pytest.approx(0.0455003, abs=1e-6)
    assert r["observed_share"] == pytest.approx(0.6) and not r["mismatch"]
    # shares need not sum to 1; an exact split has chi2 0, p 1
    assert srm_check([300, 100], [3, 1])["p_value"] == pytest.approx(1.0)
    # a 10 % skew on 10,000 units against 50/50 is a mismatch
    assert srm_check([5500, 4500], [0.5, 0.5])["mismatch"]
    with pytest.raises(ValueError, match="one entry per arm"):
        srm_check([1, 2, 3], [0.5, 0.5])


def test_bootstrap_comparison_intervals_differences_and_verdicts():
    """By hand: model b beats a by exactly 0.1 on every draw (its difference interval is the
    point 0.1: 'better'); c is a plus noise around 0 ('inconclusive'); for a lower-is-better
    metric the same +0.1 reads 'worse'; a non-finite metric is 'n/a'."""
    draws = np.linspace(0.5, 0.7, 201)
    a = {"auc": draws, "brier": draws, "lift": draws}
    b = {k: v + 0.1 for k, v in a.items()}
    noise = np.tile([-0.05, 0.05], 101)[:201]
    c = {"auc": draws + noise, "brier": draws + noise, "lift": np.full(201, np.nan)}
    out = bootstrap_comparison({"a": a, "b": b, "c": c}, "a", ("brier",), 0.9, by="score")
    assert out.loc[("a", "auc"), "verdict"] == "reference"
    assert out.loc[("b", "auc"), "verdict"] == "better"
    assert out.loc[("b", "brier"), "verdict"] == "worse"
    assert out.loc[("c", "auc"), "verdict"] == "inconclusive"
    assert out.loc[("c", "lift"), "verdict"] == "n/a"
    row = out.loc[("b", "auc")]
    assert row["diff"] == pytest.approx(0.1) and row["diff_low"] == pytest.approx(0.1)
    lo, hi = np.quantile(draws[1:] + 0.1, [0.05, 0.95])
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))
