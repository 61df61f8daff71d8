"""Tests of helpers.btyd, the buy-till-you-die models' common parts: information criteria and
likelihood-ratio tests (hand-computed answers), the parametric bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
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
