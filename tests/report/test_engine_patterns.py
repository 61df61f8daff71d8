"""Fits on sufficient statistics in the engine (issue 31, point 3): the BTYD summary as an Ibis
expression equals the pandas summary at the same resolution, the purchase and spend models fitted
on the distinct rows the engine returns equal the fits on one row per customer, and the
per-customer CLV computed per distinct row and joined back in the engine equals
:func:`helpers.clv.predictive_clv` customer by customer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import btyd, clv, data, economics, segments
from helpers.report import analysis, engine

AS_OF = "2025-12-31"
COLS = ["frequency", "recency", "T", "monetary_value"]


@pytest.fixture(scope="module")
def orders() -> pd.DataFrame:
    return analysis.purchases(data.load_orders())


@pytest.fixture(scope="module")
def pandas_summary(orders) -> pd.DataFrame:
    return btyd.at_resolution(segments.rfm_table(orders, AS_OF, "W"), "D")


@pytest.mark.parametrize("resolution", ["W", "D", "s"])
def test_btyd_summary_equals_the_pandas_summary_at_the_resolution(orders, resolution):
    expected = btyd.at_resolution(segments.rfm_table(orders, "2025-11-15", "W"), resolution)
    got = (
        engine.btyd_summary(orders, "2025-11-15", "W", resolution)
        .to_pandas()
        .set_index("customer_id")
        .sort_index()
    )
    pd.testing.assert_frame_equal(
        got[COLS], expected[COLS], check_exact=False, rtol=1e-12, check_index_type=False,
        check_names=False, check_dtype=False,
    )  # fmt: skip
    step_weeks = {"W": 1.0, "D": 1 / 7, "s": 1 / (7 * 86400)}[resolution]
    np.testing.assert_allclose(got["T_steps"] * step_weeks, got["T"], rtol=1e-12)


def test_fits_on_the_engines_distinct_rows_equal_the_per_customer_fits(orders, pandas_summary):
    s = engine.btyd_summary(orders, AS_OF, "W", "D")
    patterns = engine.distinct_patterns(s)
    n = len(pandas_summary)
    assert patterns["customers"].sum() == n and len(patterns) < n
    for fit_fn in (clv.fit_bgnbd, clv.fit_mbgnbd):
        a = fit_fn(patterns, weights="customers")
        b = fit_fn(pandas_summary)
        assert a.n == b.n == n and a.extra["resolution"] == b.extra["resolution"] == "D"
        np.testing.assert_allclose(list(a.params.values()), list(b.params.values()), rtol=1e-6)
        np.testing.assert_allclose(a.loglik, b.loglik, rtol=1e-9)


def test_clv_per_distinct_row_joined_back_equals_the_per_customer_clv(orders, pandas_summary):
    s = engine.btyd_summary(orders, AS_OF, "W", "D")
    pf = clv.fit_bgnbd(pandas_summary)
    repeat = pandas_summary[pandas_summary["frequency"] > 0]
    gg = clv.fit_gamma_gamma(repeat[repeat["monetary_value"] > 0])
    econ = economics.SAMPLE
    expected = clv.predictive_clv(pf, gg, pandas_summary, econ, cost_per_order=1.5)
    got = (
        engine.predictive_clv(s, pf, gg, econ, cost_per_order=1.5)
        .to_pandas()
        .set_index("customer_id")
        .sort_index()
    )
    assert len(got) == len(expected)
    for col in expected.columns:
        np.testing.assert_allclose(got[col], expected[col], rtol=1e-9, atol=1e-12, err_msg=col)
