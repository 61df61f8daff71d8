"""The CLV arithmetic after the fit (issue 31): :func:`helpers.clv.predictive_clv`'s discounted
sum tabulated per repeat count over T (:class:`helpers.clv._CumTables`, summation by parts and a
cubic spline in log(alpha + T)) held equal to the horizon-by-horizon path it replaces, on the
bundled sample and on a simulated one, and :func:`helpers.clv.discounted_purchases` as the
purchase side of :func:`~helpers.clv.predictive_clv`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import clv, data, economics, pareto_nbd, segments
from helpers.segments import TIME_UNITS, unit_days

GG = clv.ModelFit("Gamma-Gamma", {"p": 6.25, "q": 3.74, "gamma": 15.44}, 0.0, 1, None,
                  np.eye(3), True)  # fmt: skip


def _fit(model: str, params: tuple[float, ...]) -> clv.ModelFit:
    names = "r alpha s beta" if model == "Pareto/NBD" else "r alpha a b"
    return clv.ModelFit(model, dict(zip(names.split(), params, strict=True)), 0.0, 1, "W",
                        np.eye(4), True)  # fmt: skip


@pytest.fixture(scope="module")
def bundled() -> pd.DataFrame:
    return segments.rfm_table(data.load_orders(), "2025-12-31", "W")


def _simulated(n: int = 15_000, seed: int = 3) -> pd.DataFrame:
    """n customers drawn from the BG/NBD (0.9, 8, 0.8, 3.2), observed 0.1-160 weeks."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(0.1, 160, n)
    lam, p = rng.gamma(0.9, 1 / 8.0, n), rng.beta(0.8, 3.2, n)
    x = np.minimum(rng.poisson(lam * T), rng.geometric(p) - 1).astype(float)
    tx = np.where(x > 0, T * rng.uniform(0.3, 1, n), 0.0)
    df = pd.DataFrame({"frequency": x, "recency": tx, "T": T,
                       "monetary_value": np.where(x > 0, rng.gamma(3, 10, n), 0.0)})  # fmt: skip
    df.attrs["time_unit"] = "W"
    return df


def _horizon_by_horizon(fit: clv.ModelFit, df: pd.DataFrame, econ: economics.Economics):
    """The path before the tables of discounted sums: E[Y(t_k)] at every month k
    (:meth:`helpers.clv._CumTables.cum`), differenced and discounted."""
    month = TIME_UNITS["M"] / unit_days("W")
    x, tx, T = (df[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    t = np.arange(1, econ.horizon_months + 1) * month
    cum = clv._CumTables(fit, x, T, t).cum(x, tx, T)
    return cum[:, -1], np.diff(cum, axis=1, prepend=0.0) @ econ.discount_factors()


@pytest.mark.parametrize("model", ["BG/NBD", "MBG/NBD"])
@pytest.mark.parametrize("params", [(0.243, 4.414, 0.793, 2.426), (2.0, 1.5, 1.7, 0.6)])
@pytest.mark.parametrize("sample", ["bundled", "simulated"])
def test_discounted_sums_per_repeat_count_equal_the_horizon_by_horizon_path(
    model, params, sample, bundled, monkeypatch
):
    """Every customer's CLV and expected purchases equal the horizon-by-horizon path to 1e-9
    relative (they agree to about 1e-13), at the report's 36 months and at 12 months without
    discounting, and the tables are taken (on the bundled sample's 5,000 customers by lowering
    the threshold: no count there has more than _QMIN customers)."""
    df = bundled if sample == "bundled" else _simulated()
    if sample == "bundled":
        monkeypatch.setattr(clv, "_QMIN", 100)
    fit = _fit(model, params)
    x, T = df["frequency"].to_numpy(float), df["T"].to_numpy(float)
    for econ in (economics.Economics(), economics.Economics(horizon_months=12,
                                                            yearly_discount_rate=0.0)):  # fmt: skip
        t = np.arange(1, econ.horizon_months + 1) * TIME_UNITS["M"] / unit_days("W")
        assert clv._CumTables(fit, x, T, t, econ.discount_factors()).qtab.any()
        total, discounted = _horizon_by_horizon(fit, df, econ)
        got = clv.predictive_clv(fit, GG, df, econ, margin_rate=0.3, cost_per_order=1.5)
        per_order = 0.3 * clv.expected_spend(GG, df).to_numpy() - 1.5
        np.testing.assert_allclose(got["expected_purchases"], total, rtol=1e-9, atol=0)
        np.testing.assert_allclose(got["clv"], per_order * discounted, rtol=1e-9, atol=0)


def test_discounted_purchases_is_the_purchase_side_of_predictive_clv():
    """CLV = (m E[M] - c) D exactly, with (E[Y(H)], D) = discounted_purchases, for the BG/NBD
    (tables) and the Pareto/NBD (closed form per horizon, as before: FHL's differences)."""
    df = _simulated(20_000)
    econ = economics.Economics()
    for fit in (_fit("BG/NBD", (0.9, 8.0, 0.8, 3.2)), _fit("Pareto/NBD", (0.9, 8.0, 0.6, 12.0))):
        total, discounted = clv.discounted_purchases(fit, df, econ)
        got = clv.predictive_clv(fit, GG, df, econ, margin_rate=0.3, cost_per_order=1.5)
        np.testing.assert_array_equal(got["expected_purchases"].to_numpy(), total)
        np.testing.assert_array_equal(
            got["clv"].to_numpy(), got["margin_per_order"].to_numpy() * discounted
        )
    month = TIME_UNITS["M"] / unit_days("W")
    cum = pareto_nbd.expected_purchases(fit, df, np.arange(1, 37) * month).to_numpy()
    np.testing.assert_allclose(total, cum[:, -1], rtol=1e-12)
    want = np.diff(cum, axis=1, prepend=0.0) @ econ.discount_factors()
    np.testing.assert_allclose(discounted, want, rtol=1e-12)


@pytest.mark.parametrize("model", ["BG/NBD", "MBG/NBD"])
@pytest.mark.parametrize("sample", ["bundled", "simulated"])
def test_expected_purchases_from_the_tables_equal_the_formula(model, sample, bundled):
    """expected_purchases takes the repeat counts shared by many customers from the tables of
    the hypergeometric function (customers x horizons > 4 x grid points): equal to FHL's eq. 10
    evaluated for every customer and horizon (_expected_purchases_direct) to 1e-10 relative, at
    36 monthly horizons (the tables taken) and at one (a Series; too few customers of a count
    for a table here)."""
    df = bundled if sample == "bundled" else _simulated()
    fit = _fit(model, (0.9, 8.0, 0.8, 3.2))
    x, tx, T = (df[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    for t in (np.arange(1, 37) * 4.348, np.array([52.0])):
        assert clv._CumTables(fit, x, T, t).tab.any() == (len(t) > 1)
        want = clv._expected_purchases_direct(fit, x, tx, T, t)
        got = clv.expected_purchases(fit, df, t if len(t) > 1 else float(t[0]))
        np.testing.assert_allclose(np.asarray(got).reshape(len(df), -1), want, rtol=1e-10, atol=0)
