"""Tests of helpers.btyd, the buy-till-you-die models' common parts: information criteria and
likelihood-ratio tests (hand-computed answers), the parametric bootstrap."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from helpers import btyd


def _fit(model: str, loglik: float, k: int, n: int = 50) -> btyd.ModelFit:
    params = {f"p{j}": 1.0 for j in range(k)}
    return btyd.ModelFit(model, params, loglik, n, "W", np.eye(k) * 0.01, True)


def test_information_criteria_by_hand():
    """LL -100 with 2 parameters and -97 with 4, n = 50: AIC 204 and 202; BIC 2 ln 50 + 200 =
    207.824 and 4 ln 50 + 194 = 209.648: AIC prefers the larger model, BIC the smaller."""
    table = btyd.information_criteria({"small": _fit("small", -100, 2), "big": _fit("big", -97, 4)})
    assert list(table.index) == ["big", "small"]
    assert table.loc["small", "aic"] == pytest.approx(204.0)
    assert table.loc["big", "aic"] == pytest.approx(202.0)
    assert table.loc["small", "bic"] == pytest.approx(207.824, abs=1e-3)
    assert table.loc["big", "bic"] == pytest.approx(209.648, abs=1e-3)
    assert table.loc["small", "delta_aic"] == pytest.approx(2.0)
    assert table.loc["big", "akaike_weight"] == pytest.approx(1 / (1 + np.exp(-1)), rel=1e-12)
    assert table["n_params"].tolist() == [4, 2]
    with pytest.raises(ValueError, match="same customers"):
        btyd.information_criteria({"a": _fit("a", -1, 1, 50), "b": _fit("b", -1, 1, 51)})


def test_lr_test_interior_and_on_the_boundary():
    """LR = 2.706 (chi2(1)'s 90 % point): naive p = 0.100; with one parameter on the boundary the
    chi-bar-square 0.5 chi2(0) + 0.5 chi2(1) halves it to 0.050. With two restrictions, one on the
    boundary: 0.5 P(chi2(1) > LR) + 0.5 P(chi2(2) > LR) = 0.5 (0.1 + e^(-LR/2)) = 0.1793. LR = 0
    has p = 1 either way."""
    lr = stats.chi2.ppf(0.9, 1)
    lo, hi = _fit("NBD", -100.0, 2), _fit("BG/NBD", -100.0 + lr / 2, 4)
    naive = btyd.lr_test(lo, hi, 1)
    assert naive["lr"] == pytest.approx(2.706, abs=1e-3) and naive["p_value"] == pytest.approx(0.1)
    bound = btyd.lr_test(lo, hi, 1, boundary=True)
    assert bound["p_value"] == pytest.approx(0.05) and bound["naive_p_value"] == pytest.approx(0.1)
    two = btyd.lr_test(lo, hi, 2, boundary=True)
    want = 0.5 * stats.chi2.sf(lr, 1) + 0.5 * stats.chi2.sf(lr, 2)
    assert two["p_value"] == pytest.approx(want) and two["p_value"] == pytest.approx(
        0.1793, abs=1e-4
    )
    # a full model fitted a hair worse than the restricted one (the optimum at the boundary)
    same = btyd.lr_test(lo, _fit("BG/NBD", -100.0 - 1e-9, 4), 1, boundary=True)
    assert same["lr"] == 0.0 and same["p_value"] == 1.0
    with pytest.raises(ValueError, match="same customers"):
        btyd.lr_test(lo, _fit("BG/NBD", -90.0, 4, n=51))


def test_sample_log_params_is_seeded_and_centred():
    fit = btyd.ModelFit("X", {"a": 2.0, "b": 5.0}, -1.0, 10, "W", np.diag([0.01, 0.04]), True)
    d1, d2 = btyd.sample_log_params(fit, 20_000, 7), btyd.sample_log_params(fit, 20_000, 7)
    np.testing.assert_array_equal(d1, d2)
    np.testing.assert_allclose(np.log(d1).mean(0), np.log([2.0, 5.0]), atol=0.01)
    np.testing.assert_allclose(np.log(d1).std(0), [0.1, 0.2], rtol=0.02)


# --- fits on sufficient statistics (issue 31, point 3) ---------------------------------------


def test_distinct_rows_round_trips_and_counts():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, 500).astype(float)
    tx = rng.integers(0, 5, 500) / 7
    w = rng.integers(0, 3, 500).astype(float)  # zero weights are dropped
    (ux, utx), counts, inv = btyd.distinct_rows(x, tx, weights=w)
    keep = w > 0
    np.testing.assert_array_equal(ux[inv], x[keep])
    np.testing.assert_array_equal(utx[inv], tx[keep])
    assert counts.sum() == w.sum()
    pairs = sorted(set(zip(x[keep].tolist(), tx[keep].tolist(), strict=True)))
    assert list(zip(ux.tolist(), utx.tolist(), strict=True)) == pairs  # sorted, each once
    # too many combinations for one integer key: the sorting fallback gives the same rows
    big = np.arange(500) * 1e6 + x
    (a, b, c), cnt, _ = btyd.distinct_rows(big, big + 1, tx, weights=w)
    assert len(a) == keep.sum() and cnt.sum() == w.sum()


def _per_customer(*cols, weights=None):
    """btyd.distinct_rows without compressing: one row per customer, as the fits were before."""
    w = np.ones(len(cols[0])) if weights is None else np.asarray(weights, dtype=float)
    keep = w > 0
    return [np.asarray(c)[keep] for c in cols], w[keep], np.flatnonzero(keep)


def _synthetic_summary(n: int = 2000, seed: int = 5) -> pd.DataFrame:
    """The Pareto/NBD process (r 0.8, alpha 8, s 0.7, beta 12 weeks) of weekly cohorts over
    20-60 weeks, at day resolution (times in weeks, whole days): customers share (x, t_x, T);
    spend in whole euros, so (x, m) repeats too."""
    rng = np.random.default_rng(seed)
    T = rng.integers(20, 61, n).astype(float)  # whole weeks: weekly cohorts
    lam, mu = rng.gamma(0.8, 1 / 8.0, n), rng.gamma(0.7, 1 / 12.0, n)
    span = np.minimum(rng.exponential(1 / mu), T)
    x = rng.poisson(lam * span)
    with np.errstate(divide="ignore"):
        tx = np.where(x > 0, span * rng.uniform(size=n) ** (1 / np.maximum(x, 1)), 0.0)
    m = np.where(x > 0, np.round(rng.gamma(6.0, 5.0, n)) + 1, 0.0)
    df = pd.DataFrame({"frequency": x, "recency": np.floor(tx * 7) / 7, "T": T,
                       "monetary_value": m})  # fmt: skip
    df.attrs.update(time_unit="W", resolution="D")
    return df


def _fits(summary: pd.DataFrame, weights=None) -> dict[str, btyd.ModelFit]:
    from helpers import clv, pareto_nbd

    repeat = summary[summary["frequency"] > 0]
    w_rep = None if weights is None else np.asarray(weights)[summary["frequency"].to_numpy() > 0]
    return {
        "BG/NBD": clv.fit_bgnbd(summary, weights=weights),
        "MBG/NBD": clv.fit_mbgnbd(summary, weights=weights),
        "Pareto/NBD": pareto_nbd.fit_pareto_nbd(summary, weights=weights),
        "Gamma-Gamma": clv.fit_gamma_gamma(repeat, weights=w_rep),
    }


def _assert_same_fit(a: btyd.ModelFit, b: btyd.ModelFit) -> None:
    assert a.n == b.n
    np.testing.assert_allclose(list(a.params.values()), list(b.params.values()), rtol=1e-6)
    np.testing.assert_allclose(a.loglik, b.loglik, rtol=1e-9)


@pytest.fixture(scope="module")
def cdnow():
    from helpers import clv

    return clv.load_cdnow("monetary")


@pytest.mark.parametrize("which", ["cdnow", "synthetic"])
def test_fits_on_distinct_rows_equal_the_per_customer_fits(which, cdnow, monkeypatch):
    """The four likelihoods fitted on the distinct rows with counts (the default) equal the fits
    on one row per customer (the code before, by replacing the compression with the identity) to
    1e-6 relative in every parameter and 1e-9 in the log-likelihood; the fit says how many
    distinct rows it used."""
    summary = cdnow if which == "cdnow" else _synthetic_summary()
    compressed = _fits(summary)
    with monkeypatch.context() as mp:
        mp.setattr(btyd, "distinct_rows", _per_customer)
        per_customer = _fits(summary)
    n_rep = int((summary["frequency"] > 0).sum())
    for name, fit in compressed.items():
        _assert_same_fit(fit, per_customer[name])
        n = n_rep if name == "Gamma-Gamma" else len(summary)
        assert fit.n == n and 0 < fit.extra["patterns"] <= n
        assert per_customer[name].extra["patterns"] == n
    if which == "synthetic":  # at day resolution the patterns are far fewer than the customers
        assert compressed["BG/NBD"].extra["patterns"] < 0.6 * len(summary)
        assert compressed["BG/NBD"].extra["resolution"] == "D"


def test_fit_on_distinct_rows_with_weights_equals_the_fit_on_the_expanded_rows():
    from helpers import clv

    summary = _synthetic_summary(1500, seed=9)
    (x, tx, T, m), counts, _ = btyd.distinct_rows(
        *(summary[c].to_numpy() for c in ["frequency", "recency", "T", "monetary_value"])
    )
    distinct = pd.DataFrame({"frequency": x, "recency": tx, "T": T, "monetary_value": m})
    distinct.attrs.update(summary.attrs)
    a = clv.fit_bgnbd(distinct, weights=counts)
    b = clv.fit_bgnbd(summary.sample(frac=1.0, random_state=1))  # row order does not matter
    _assert_same_fit(a, b)
    g = clv.fit_gamma_gamma(distinct[x > 0], weights=counts[x > 0])
    _assert_same_fit(g, clv.fit_gamma_gamma(summary[summary["frequency"] > 0]))
    with pytest.raises(ValueError, match="weights"):
        clv.fit_mbgnbd(distinct, weights=-counts)


def test_at_resolution_floors_the_times_and_states_it():
    from helpers import segments

    orders = pd.DataFrame({
        "customer_id": [1, 1, 1, 2],
        "order_date": pd.to_datetime(["2025-01-01 10:00", "2025-01-08 09:00",
                                      "2025-01-15 23:59", "2025-01-20 12:30"]),
        "amount": [10.0, 20.0, 30.0, 5.0],
    })  # fmt: skip
    s = segments.rfm_table(orders, as_of="2025-01-31", time_unit="W")
    d = btyd.at_resolution(s, "D")
    assert d.attrs["resolution"] == "D" and "resolution" not in s.attrs
    np.testing.assert_allclose(d["recency"], [14 / 7, 0.0])  # Jan 1 -> Jan 15: 14 days
    np.testing.assert_allclose(d["T"], [31 / 7, 12 / 7])  # to the end of Jan 31
    assert (d["T"] >= s["T"]).all() and (d["T"] - s["T"] < 1 / 7).all()
    np.testing.assert_allclose(btyd.at_resolution(s, "s")["T"], s["T"])  # whole seconds already
    w = btyd.at_resolution(s, "W")  # Monday-to-Sunday weeks: Dec 30 - Jan 5 is the first one
    np.testing.assert_array_equal(w["recency"], [2.0, 0.0])
    np.testing.assert_array_equal(w["T"], [5.0, 2.0])  # the as-of week (to Feb 2) counted whole
    with pytest.raises(ValueError, match="resolution"):
        btyd.at_resolution(s, "week")


def test_fit_rows_groups_only_when_it_saves_rows():
    x = np.array([0.0, 0.0, 1.0, 1.0, 2.0])
    (u,), w, n = btyd.fit_rows(x)
    assert n == 3 and list(u) == [0.0, 1.0, 2.0] and list(w) == [2.0, 2.0, 1.0]
    y = np.arange(20.0)  # all distinct: the rows as they are, in their order
    (v,), w, n = btyd.fit_rows(y[::-1], weights=np.r_[0.0, np.ones(19)])
    assert n == 19 and list(v) == list(y[::-1][1:]) and w.sum() == 19


@pytest.mark.parametrize("levels", [3, 8, 10**6])
def test_fit_rows_counts_the_distinct_rows_as_distinct_rows_does(levels):
    """fit_rows counts the distinct rows by hashing (no sort): the count of distinct_rows, on
    rows that group (3 or 40 levels a column) and on rows that do not (the rows come back as
    they are, zero weights dropped); with six columns of ~3,000 distinct values the codes'
    product is beyond one integer key (the fallback)."""
    rng = np.random.default_rng(levels)
    k = 6 if levels == 10**6 else 3
    cols = [rng.integers(0, levels, 3000).astype(float) / 7 for _ in range(k)]
    w = rng.integers(0, 3, 3000).astype(float)
    rows, counts, n = btyd.fit_rows(*cols, weights=w)
    assert n == len(btyd.distinct_rows(*cols, weights=w)[1])
    assert counts.sum() == w.sum()
    if levels == 10**6:
        np.testing.assert_array_equal(rows[0], cols[0][w > 0])
    else:
        assert len(counts) == n < 0.9 * (w > 0).sum()


def _rows(third: st.SearchStrategy) -> st.SearchStrategy:
    """1-60 rows (x, y, z): a count, a small or a wide whole number, and a value of `third`."""
    wide = st.one_of(st.integers(-5, 5), st.integers(-(2**40), 2**40))
    return st.lists(st.tuples(st.integers(0, 40), wide, third), min_size=1, max_size=60)


@given(_rows(st.one_of(st.integers(0, 9), st.floats(-1e6, 1e6))), st.booleans())
@settings(max_examples=200, deadline=None)
def test_the_count_of_distinct_rows_is_distinct_rows_count(rows, as_ints):
    """The count by one key of whole numbers (no factorizing) or by factorizing each column
    (fractions, ranges beyond one int64 key) is the number of rows distinct_rows finds."""
    x, y, z = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    cols = (
        (x.astype(np.int64), y.astype(np.int64), z)
        if as_ints and np.isfinite(z).all()
        else (x, y, z)
    )
    want = len(btyd.distinct_rows(*cols)[1])
    assert btyd._count_distinct(*cols) == want


@given(
    _rows(st.one_of(st.integers(0, 1), st.floats(-1e6, 1e6))),
    st.sampled_from(["float", "int", "bool"]),
    st.lists(st.integers(0, 3), min_size=60, max_size=60),
)
@settings(max_examples=200, deadline=None)
def test_distinct_rows_of_whole_numbers_are_those_of_factorizing(rows, kind, weights):
    """Whole numbers take one key made from the values (no factorizing per column): the same
    distinct rows (values and dtypes), counts and inverse as factorizing each column."""
    from unittest import mock

    x, y, z = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    if kind == "int":
        x, y = x.astype(np.int64), y.astype(np.int64)
    elif kind == "bool":
        z = z == 1
    w = np.array(weights[: len(x)], dtype=float)
    if w.sum() == 0:
        w[0] = 1.0
    got = btyd.distinct_rows(x, y, z, weights=w)
    with mock.patch.object(btyd, "_whole_number_parts", lambda cols: None):
        want = btyd.distinct_rows(x, y, z, weights=w)
    for g, e in zip(got[0], want[0], strict=True):
        assert g.dtype == e.dtype
        np.testing.assert_array_equal(g, e)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[2], want[2])


def test_whole_numbers_are_counted_without_factorizing(monkeypatch):
    """Counts and whole steps (t_x, T at a resolution): one key, no factorizing; a fraction
    falls back to it."""
    rng = np.random.default_rng(4)
    x, T = rng.integers(0, 30, 5000).astype(float), rng.integers(1, 7 * 10**7, 5000).astype(float)
    tx = np.minimum(T - 1, rng.integers(0, 7 * 10**7, 5000)).astype(float)
    want = len(btyd.distinct_rows(x, tx, T)[1])
    calls, factorize = [], pd.factorize
    monkeypatch.setattr(btyd.pd, "factorize", lambda *a, **k: calls.append(1) or factorize(*a, **k))
    assert btyd._count_distinct(x, tx, T) == want and not calls
    assert btyd._count_distinct(x, tx + 0.5, T) == want and calls


@pytest.mark.parametrize("collide", [False, True])
def test_fractional_times_are_counted_by_a_checked_row_hash(monkeypatch, collide):
    """Times that are fractions (the report's t_x and T as given): one hash per row, grouped and
    every row checked against its group's first, gives distinct_rows' count; rows that differ
    but share a hash (every hash forced equal here) fall back to factorizing each column, with
    the same count; -0.0 and 0.0 are one value, a NaN falls back."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 6, 4000).astype(float)
    T = rng.integers(1, 400, 4000) / 7
    tx = np.where(x > 0, np.floor(T * rng.random(4000) * 7) / 7, -0.0)
    tx[:50] = 0.0  # 0.0 beside -0.0: equal values
    want = len(btyd.distinct_rows(x, tx, T)[1])
    if collide:
        monkeypatch.setattr(btyd, "_mix64", lambda h: np.zeros_like(h))
        assert btyd._count_by_row_hash((x, tx, T)) is None
    else:
        assert btyd._count_by_row_hash((x, tx, T)) == want
    assert btyd._count_distinct(x, tx, T) == want
    assert btyd._count_by_row_hash((x, np.where(x > 4, np.nan, tx), T)) is None


@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 4 * 10**6), st.integers(0, 4 * 10**6)),
        min_size=1,
        max_size=80,
    ),
    st.sampled_from(sorted(btyd.RESOLUTIONS)),
    st.sampled_from(["D", "W", "M"]),
    st.booleans(),
)
@settings(max_examples=200, deadline=None)
def test_times_on_their_grid_count_as_their_rows(rows, resolution, unit, off_grid):
    """fit_rows with the summary's grid (btyd.time_grid: times counted at a resolution) counts
    the distinct rows as without it, by whole steps (no factorizing of the times), whatever
    the resolution and time unit; a time off the grid leaves the times as they are."""
    from helpers import segments

    x, a, b = (np.array(c, dtype=np.int64) for c in zip(*rows, strict=True))
    first_s = 1_700_000_000 + a * 37
    last_s = first_s + b * 11
    end_s = int(last_s.max()) + 86_400
    tx_k, T_k = btyd.resolution_steps(first_s, last_s, end_s, resolution)
    step, unit_s = btyd.RESOLUTIONS[resolution][0], segments.unit_days(unit) * 86400
    tx, T = tx_k * step / unit_s, T_k * step / unit_s  # as btyd.at_resolution computes them
    if off_grid:
        T = T + 0.1 / unit_s  # a tenth of a second: no longer whole steps of any resolution
    summary = pd.DataFrame({"frequency": x, "recency": tx, "T": T})
    summary.attrs.update(resolution=resolution, time_unit=unit)
    grid = btyd.time_grid(summary)
    assert grid == (step, unit_s)
    want = len(btyd.distinct_rows(x.astype(float), tx, T)[1])
    assert btyd.fit_rows(x, tx, T, grid=grid)[2] == btyd.fit_rows(x, tx, T)[2] == want
    assert (btyd._on_grid(T, *grid) is T) == off_grid
    if not off_grid:
        np.testing.assert_array_equal(btyd._on_grid(tx, *grid), tx_k)
    assert btyd.time_grid(pd.DataFrame({"T": T})) is None  # no resolution stated: no grid


def test_timestamp_resolution_is_the_coarsest_step_the_times_are_written_at():
    from helpers import segments

    def summary(times: list[str]) -> pd.DataFrame:
        orders = pd.DataFrame({
            "customer_id": [1] * (len(times) - 1) + [2],
            "order_date": pd.to_datetime(times, format="ISO8601"),
            "amount": 10.0,
        })  # fmt: skip
        return segments.rfm_table(orders, as_of="2025-01-31", time_unit="W")

    days = summary(["2025-01-01", "2025-01-08", "2025-01-20"])
    assert btyd.timestamp_resolution(days) == "D"
    # at the times' own resolution the summary does not move: the fit is the fit on the times
    np.testing.assert_allclose(btyd.at_resolution(days, "D")[["recency", "T"]],
                               days[["recency", "T"]], rtol=1e-12)  # fmt: skip
    assert (
        btyd.timestamp_resolution(summary(["2025-01-01 10:00", "2025-01-08", "2025-01-20"])) == "h"
    )
    assert (
        btyd.timestamp_resolution(summary(["2025-01-01 10:01", "2025-01-08", "2025-01-20"]))
        == "min"
    )
    secs = summary(["2025-01-01 10:00:07", "2025-01-08", "2025-01-20"])
    assert btyd.timestamp_resolution(secs) == "s"
    np.testing.assert_allclose(
        btyd.at_resolution(secs, "s")["recency"], secs["recency"], rtol=1e-12
    )
    assert (
        btyd.timestamp_resolution(summary(["2025-01-01 10:00:07.5", "2025-01-08", "2025-01-20"]))
        is None
    )


# ------------------------------------------------- the coarse stage of large fits (issue 31)


def test_coarse_rows_stride_and_scale_the_counts_to_all_the_customers(monkeypatch):
    """Every k-th row (k = rows // COARSE_ROWS), counts scaled so they sum to all the customers;
    within groups, at most every (n_g / 1,000)-th row of a group, the counts scaled per group (a
    group of 40 rows kept whole); None below COARSE_MIN_ROWS."""
    monkeypatch.setattr(btyd, "COARSE_MIN_ROWS", 100)
    monkeypatch.setattr(btyd, "COARSE_ROWS", 50)
    w = np.arange(1, 1001, dtype=float)
    rows, ws = btyd.coarse_rows(w)
    np.testing.assert_array_equal(rows, np.arange(0, 1000, 20))
    np.testing.assert_allclose(ws, w[rows] * w.sum() / w[rows].sum())
    assert btyd.coarse_rows(w[:99]) is None
    groups = np.r_[np.full(3000, 7), np.full(40, 2)]
    gw = np.ones(3040)
    gw[::2] = 3.0
    rows, ws = btyd.coarse_rows(gw, groups)  # k = 60; the big group: every 3rd row
    big = rows[groups[rows] == 7]
    np.testing.assert_array_equal(big, np.arange(0, 3000, 3))
    np.testing.assert_array_equal(rows[groups[rows] == 2], np.arange(3000, 3040))
    for g in (7, 2):
        assert ws[groups[rows] == g].sum() == pytest.approx(gw[groups == g].sum())


def _quadratic(a: np.ndarray, b: np.ndarray):
    def nll_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        return float(0.5 * theta @ a @ theta - b @ theta), a @ theta - b

    return nll_grad


def test_newton_from_coarse_finds_the_full_optimum_and_its_hessian():
    """A quadratic objective (optimum A^-1 b, Hessian A) with a coarse version 10 % off in A and
    b: the Newton steps on the full gradient end at A^-1 b to 1e-12, and fit_log_params's
    covariance is A^-1 (central differences: exact for a quadratic up to rounding), computed
    with the fit, or when first read inside covariance_on_demand; a concave coarse objective (no maximum of the likelihood) gives None, and
    fit_log_params then runs L-BFGS-B on the full objective."""
    a = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
    b = np.array([1.0, -2.0, 0.5])
    full = _quadratic(a, b)
    theta, value = btyd.newton_from_coarse(full, _quadratic(1.1 * a, 0.9 * b), np.zeros(3))
    np.testing.assert_allclose(theta, np.linalg.solve(a, b), rtol=1e-12, atol=1e-14)
    assert value == pytest.approx(-0.5 * b @ np.linalg.solve(a, b), rel=1e-14)
    calls = []

    def counted(t: np.ndarray) -> tuple[float, np.ndarray]:
        calls.append(1)
        return full(t)

    def make() -> btyd.ModelFit:
        return btyd.fit_log_params(
            lambda t: full(t)[0], np.zeros(3), ["u", "v", "z"], "Q", 10, "W", counted,
            coarse=_quadratic(1.1 * a, 0.9 * b),
        )  # fmt: skip

    before = len(calls)
    now = make()  # the covariance computed with the fit
    assert len(calls) > before + 6 and "cov_log" in vars(now)
    np.testing.assert_allclose(now.cov_log, np.linalg.inv(a), rtol=1e-6)
    with btyd.covariance_on_demand():
        fit = make()
    assert fit.extra["optimizer"] == "coarse+newton" and "cov_log" not in vars(fit)
    before = len(calls)
    np.testing.assert_allclose(fit.cov_log, np.linalg.inv(a), rtol=1e-6)
    assert len(calls) == before + 6  # the Hessian: 2 evaluations per parameter
    np.testing.assert_allclose(
        fit.summary()["se"],
        np.sqrt(np.diag(np.linalg.inv(a))) * list(fit.params.values()),
        rtol=1e-6,
    )
    assert len(calls) == before + 6  # kept: computed once
    concave = _quadratic(-a, b)
    assert btyd.newton_from_coarse(full, concave, np.zeros(3)) is None
    fit = btyd.fit_log_params(
        lambda t: full(t)[0], np.zeros(3), ["u", "v", "z"], "Q", 10, "W", full, coarse=concave
    )
    assert fit.extra["optimizer"] == "L-BFGS-B"
    np.testing.assert_allclose(np.log(list(fit.params.values())), np.linalg.solve(a, b), atol=1e-6)


def _bundled_summary() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The bundled company's BTYD summary (weeks, as of 2025-12-31) and its acquisition channel
    dummies (organic search the base)."""
    from helpers import data, segments

    orders, customers = data.load_orders(), data.load_customers()
    rfm = segments.rfm_table(orders, "2025-12-31", "W")
    channel = customers.set_index("customer_id")["acquisition_channel"].reindex(rfm.index)
    z = pd.get_dummies(channel, dtype=float).drop(columns="organic_search")
    return rfm, z


@pytest.fixture(scope="module")
def bundled():
    return _bundled_summary()


@pytest.mark.parametrize("which", ["cdnow", "bundled"])
def test_the_coarse_stage_and_newton_steps_find_the_optimizers_optimum(
    which, cdnow, bundled, monkeypatch
):
    """The fits of large data (BG/NBD, MBG/NBD, Pareto/NBD, Gamma-Gamma, the BG/NBD with
    covariates on the bundled company's channel) start on every k-th row and finish by Newton
    steps on all the rows (btyd.newton_from_coarse); forced here on small data (coarse stage
    from 500 rows, of about 200 rows), they equal the optimizer on all the rows (the fit of small
    data, unchanged) to 1e-6 relative in every parameter and 1e-9 in the log-likelihood, and
    the standard errors to 1e-4 (the Hessian a little nearer the optimum)."""
    from helpers import clv

    summary = cdnow if which == "cdnow" else bundled[0]
    fits = {}
    for path, min_rows in (("coarse+newton", 500), ("L-BFGS-B", 10**12)):
        monkeypatch.setattr(btyd, "COARSE_MIN_ROWS", min_rows)
        monkeypatch.setattr(btyd, "COARSE_ROWS", 200)
        fits[path] = _fits(summary)
        if which == "bundled":
            z = bundled[1]
            fits[path]["covariates"] = clv.fit_bgnbd_covariates(summary, z, z)
    for name, fit in fits["coarse+newton"].items():
        ref = fits["L-BFGS-B"][name]
        assert (fit.extra["optimizer"], ref.extra["optimizer"]) == ("coarse+newton", "L-BFGS-B")
        assert fit.converged
        _assert_same_fit(fit, ref)
        se, se_ref = (np.sqrt(np.diag(f.cov_log)) for f in (fit, ref))
        np.testing.assert_allclose(se, se_ref, rtol=1e-4)


def _uniform_summary(n: int = 2000, seed: int = 3, rate: float = 0.15) -> pd.DataFrame:
    """Uniform purchases, the degenerate case of the benchmark's generated orders
    (benchmarks/bench_report.py): every customer buys at the same `rate` a week, since their
    first purchase 26-104 weeks ago, and never leaves. The repeat counts are binomial
    (ceil(2 rate T), 1/2): mean rate x T, a little less spread than Poisson, so that the
    likelihood's supremum is the limit (no heterogeneity, no dropout) for any seed, not only for
    the half of Poisson samples that come out under-dispersed; their times uniform, t_x the last
    (T times a Beta(x, 1) draw). Times in weeks to the float: every row distinct, so a fit runs
    on the rows in the order given."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(26, 104, n)
    x = rng.binomial(np.ceil(2 * rate * T).astype(int), 0.5)
    tx = np.where(x > 0, T * rng.beta(np.maximum(x, 1), 1), 0.0)
    df = pd.DataFrame({"frequency": x.astype(float), "recency": tx, "T": T})
    df.index = pd.Index([f"c{i:05d}" for i in range(n)], name="customer_id")
    df.attrs["time_unit"] = "W"
    return df


@pytest.fixture(scope="module")
def uniform():
    return _uniform_summary()


def _dropout_names(model: str) -> list[str]:
    return ["s", "beta"] if model == "Pareto/NBD" else ["a", "b"]


@pytest.mark.parametrize("model", ["BG/NBD", "MBG/NBD", "Pareto/NBD"])
def test_a_fit_of_uniform_purchases_stops_at_the_boundary_and_predicts_the_limit(model, uniform):
    """On uniform purchases the purchase models' likelihood rises towards the limit r, alpha ->
    infinity (one purchase rate) without dropout, and is flat there: the fit stops at the
    boundary and says so (``extra["boundary"]``: the limits and the parameters that diverge),
    converged, with the limits' parameters at their canonical points (r = e^8; a or s = e^-10,
    b or beta = e^10). Its log-likelihood is within 5 units below the limit's, Poisson
    purchases at the pooled rate lambda = sum x / sum T (timing likelihood x log lambda -
    lambda T; at r = e^8 the model is 1.8 % heterogeneous), and its predictions are the
    limit's: E[purchases in the next 26 weeks] = 26 lambda for every customer within 1 %
    (r / (r + x) shrinks a customer's rate towards the pooled one: (x - lambda T) / r < 1 %),
    P(alive) = 1 within 1e-3. Before the stop, L-BFGS-B ran r and alpha to the bound of
    the log-parameters (e^15) and the fit said nothing of it."""
    from helpers import clv

    fit = clv.PURCHASE_MODELS[model](uniform)
    dropout = _dropout_names(model)
    assert fit.extra["boundary"] == {
        "purchase rate without heterogeneity": ["r", "alpha"],
        "no dropout": dropout,
    }
    assert fit.converged
    assert np.log(fit.r) == 8.0
    assert np.log([fit.params[k] for k in dropout]).tolist() == [-10.0, 10.0]
    x, T = uniform["frequency"].to_numpy(), uniform["T"].to_numpy()
    lam = x.sum() / T.sum()
    limit_ll = float(x.sum() * np.log(lam) - lam * T.sum())
    assert 0 <= limit_ll - fit.loglik < 5
    assert fit.r / fit.alpha == pytest.approx(lam, rel=1e-3)
    ahead = clv.expected_purchases(fit, uniform, 26.0)
    np.testing.assert_allclose(ahead, 26 * lam, rtol=0.01)
    np.testing.assert_allclose(clv.p_alive(fit, uniform), 1.0, atol=1e-3)
    # further along the ridge (r, alpha 10 times larger) the closed forms stay finite and the
    # predictions move by less than the canonical point's heterogeneity (measured: 0.4 %)
    further = dataclasses.replace(fit, params={**fit.params, "r": 10 * fit.r,
                                               "alpha": 10 * fit.alpha})  # fmt: skip
    np.testing.assert_allclose(clv.expected_purchases(further, uniform, 26.0), ahead, rtol=0.01)


@pytest.mark.parametrize("model", ["BG/NBD", "MBG/NBD", "Pareto/NBD"])
def test_a_boundary_fit_is_the_same_whatever_the_row_order(model, uniform, monkeypatch):
    """The customers in another order (the sums of the likelihood then differ in their last
    bits): the same limits, the same parameters and log-likelihood to 1e-9 (measured: 3e-14)
    and the same predictions to 1e-6 (the BG/NBD's closed form at r = e^8 turns alpha's 3e-14
    into 3e-8); and the large-fit path (a coarse stage on every k-th row, then Newton steps on
    all of them; forced here from 500 rows) finds the same fit as the optimizer on all the rows."""
    from helpers import clv

    fit = clv.PURCHASE_MODELS[model]
    a = fit(uniform)
    b = fit(uniform.sample(frac=1.0, random_state=11))
    monkeypatch.setattr(btyd, "COARSE_MIN_ROWS", 500)
    monkeypatch.setattr(btyd, "COARSE_ROWS", 200)
    c = fit(uniform)
    assert c.extra["optimizer"] == "coarse+newton"
    for other in (b, c):
        assert other.extra["boundary"] == a.extra["boundary"]
        assert other.converged
        np.testing.assert_allclose(list(other.params.values()), list(a.params.values()), rtol=1e-9)
        assert other.loglik == pytest.approx(a.loglik, rel=1e-12)
    np.testing.assert_allclose(
        clv.expected_purchases(b, uniform, 26.0), clv.expected_purchases(a, uniform, 26.0),
        rtol=1e-6,
    )  # fmt: skip


def test_a_boundary_fit_has_the_covariance_of_its_free_parameters(uniform):
    """At the boundary only alpha (the purchase rate, r / alpha) is estimated: the covariance of
    the log-parameters is its inverse observed information in alpha's place and 0 elsewhere;
    its standard error is the Poisson rate's, sqrt(lambda / sum T) / lambda on the log scale
    (to 1 %); the parametric bootstrap draws alpha and keeps the pinned parameters."""
    from helpers import clv

    fit = clv.fit_bgnbd(uniform)
    cov = fit.cov_log
    assert np.all(np.isfinite(cov))
    j = list(fit.params).index("alpha")
    assert cov[j, j] > 0
    off = np.ones_like(cov, dtype=bool)
    off[j, j] = False
    assert np.all(cov[off] == 0)
    lam = uniform["frequency"].sum() / uniform["T"].sum()
    assert np.sqrt(cov[j, j]) == pytest.approx(np.sqrt(lam / uniform["T"].sum()) / lam, rel=0.01)
    draws = btyd.sample_log_params(fit, 500, seed=1)
    assert np.all(draws[:, [0, 2, 3]] == np.array([fit.r, fit.a, fit.b]))
    assert np.std(np.log(draws[:, j])) == pytest.approx(np.sqrt(cov[j, j]), rel=0.15)


def test_the_nbd_and_gamma_gamma_stop_at_their_limits():
    """The NBD on uniform purchases: r at its canonical point e^8, the rate r / alpha the pooled
    one. The Gamma-Gamma on spend without heterogeneity between customers (every order's spend
    uniform on 5-205, as the benchmark's amounts, the same for all): q -> infinity, stopped at
    e^8, and each customer's expected spend the pooled mean spend per order,
    sum x m / sum x, within 1 %."""
    from helpers import clv

    summary = _uniform_summary()
    nbd = clv.fit_nbd(summary)
    assert nbd.extra["boundary"] == {"purchase rate without heterogeneity": ["r", "alpha"]}
    lam = summary["frequency"].sum() / summary["T"].sum()
    assert np.log(nbd.r) == 8.0 and nbd.r / nbd.alpha == pytest.approx(lam, rel=1e-3)
    rng = np.random.default_rng(4)
    x = 1 + rng.poisson(3.0, 3000)
    spend = np.array([rng.uniform(5.0, 205.0, k).mean() for k in x])
    repeat = pd.DataFrame({"frequency": x.astype(float), "monetary_value": spend})
    gg = clv.fit_gamma_gamma(repeat)
    assert gg.extra["boundary"] == {"mean spend without heterogeneity": ["q", "gamma"]}
    assert np.log(gg.q) == 8.0 and gg.converged
    pooled = float(x @ spend / x.sum())
    np.testing.assert_allclose(clv.expected_spend(gg, repeat), pooled, rtol=0.01)


def test_fits_of_regular_data_are_not_at_the_boundary(cdnow):
    """CDNOW (interior optima, the published estimates): no limit is approached, no parameter
    pinned, every standard error positive."""
    for name, fit in _fits(cdnow).items():
        assert "boundary" not in fit.extra, name
        assert np.all(np.diag(fit.cov_log) > 0), name


def test_a_limit_is_kept_only_where_the_objective_falls_towards_it():
    """One log-parameter u with a limit at u -> infinity (canonical point u = 3). The coarse rows'
    objective 1000 + e^-u falls towards the limit (the watch stops the coarse stage past u = 3),
    all the rows' 1000 + (u - 2)^2 has its optimum inside, at u = 2: at the canonical point the
    objective rises outward, so the limit is not kept and the fit is the interior optimum. With
    no coarse stage, all the rows' own optimum 1000 + (u - 2.5)^2 (short of the canonical point
    by less than RIDGE_NEAR) is tried at the limit and kept only if as good: it is not."""
    limit = btyd.Limit("u to infinity", {"u": 1.0}, {"u": 3.0}, ("u",))

    def quadratic(centre: float):
        return lambda t: (1000.0 + (t[0] - centre) ** 2, np.array([2 * (t[0] - centre)]))

    def falling(t: np.ndarray) -> tuple[float, np.ndarray]:
        return 1000.0 + np.exp(-t[0]), np.array([-np.exp(-t[0])])

    assert btyd.Limit.level(limit, np.array([5.0]), ["u"]) == 5.0
    seen = []
    watch = btyd._RidgeWatch([limit], ["u"], lambda phi: phi)
    btyd.optimize.minimize(falling, np.zeros(1), jac=True, method="L-BFGS-B",
                           bounds=[(-15, 15)], callback=watch)  # fmt: skip
    seen.append(bool(watch.fired))
    assert seen == [True] and watch.theta[0] > 3.0  # the coarse stage alone runs off
    for full, coarse, centre in ((quadratic(2.0), falling, 2.0), (quadratic(2.5), None, 2.5)):
        fit = btyd.fit_log_params(
            lambda t, f=full: f(t)[0], np.zeros(1), ["u"], "U", 10, "W", full,
            coarse=coarse, limits=(limit,),
        )  # fmt: skip
        assert "boundary" not in fit.extra
        assert np.log(fit.params["u"]) == pytest.approx(centre, abs=1e-6)
