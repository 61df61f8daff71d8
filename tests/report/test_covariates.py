"""Issue 32, point 3: the report's purchase model with the customers' attributes
(helpers.report.covariates_view) on a small synthetic client: the design's pooled levels, the
declared rule, the effects and their truth entries, the section in every language, and an id
mapped as an attribute refused with the client's column and the count. Fast."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from helpers import economics, report
from helpers.report import covariates_view as cv
from helpers.report.formatting import Formatter
from helpers.synth import read_truth
from helpers.tables import DataValidationError

ECON = economics.from_mapping({"gross_margin_rate": 0.4, "shipping_per_order": 2.0})
AS_OF = "2025-12-31"


def client(n: int = 1500, seed: int = 4, rate: float = 2.0, stay: float = 0.4):
    """A client's orders and customer file: BG/NBD customers (r, alpha, a, b) = (1, 6 weeks, 1, 3)
    acquired over three years; channel "friends" (30 %) buys `rate` times as fast and has a
    `stay` times the others' a (less dropout); channel "rare" has 40 customers, country is noise."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"c{i:05d}" for i in range(n)])
    channel = rng.choice(["ads", "friends", "rare"], n, p=[0.7 - 40 / n, 0.3, 40 / n])
    country = rng.choice(["DE", "PL"], n)
    start = pd.Timestamp("2023-01-01")
    weeks = (pd.Timestamp(AS_OF) - start).days / 7
    first = rng.uniform(0, weeks, n)
    friends = channel == "friends"
    lam = rng.gamma(1.0, 1 / 6.0, n) * np.where(friends, rate, 1.0)
    p = rng.beta(np.where(friends, stay, 1.0), 3.0)
    rows_c, rows_t = [ids], [first]
    t, alive = first.copy(), np.ones(n, dtype=bool)
    for _ in range(300):
        t = t + rng.exponential(1 / lam)
        buy = alive & (t < weeks)
        if not buy.any():
            break
        rows_c.append(ids[buy])
        rows_t.append(t[buy])
        alive &= buy & (rng.random(n) > p)
    when = np.concatenate(rows_t)
    orders = pd.DataFrame(
        {
            "customer_id": np.concatenate(rows_c),
            "order_date": (start + pd.to_timedelta(when * 7, unit="D")).floor("D"),
            "amount": np.round(rng.gamma(4.0, 10.0, len(when)), 2),
        }
    )
    orders["order_id"] = [f"o{i}" for i in range(len(orders))]
    customers = pd.DataFrame(
        {"acquisition_channel": channel, "country": country},
        index=pd.Index(ids, name="customer_id"),
    )
    return orders, customers


@pytest.fixture(scope="module")
def fitted():
    orders, customers = client()
    seg = report.segment_customers(orders, AS_OF)
    fit, why = report.fit_clv(orders, seg, ECON)
    assert fit is not None, why
    model = cv.compare(orders, seg, fit, customers)
    return orders, customers, seg, fit, model


def test_design_pools_small_levels_and_codes_against_the_most_common():
    ids = pd.Index([f"c{i}" for i in range(300)])
    attrs = pd.DataFrame(
        {"channel": ["a"] * 150 + ["b"] * 110 + ["c"] * 30 + ["d"] * 10,
         "country": ["DE"] * 300, "city": ["x"] * 120 + ["y"] * 100 + [f"z{i}" for i in range(80)]},
        index=ids,
    )  # fmt: skip
    X, levels = cv.design(attrs, ids, min_group=100)
    # channel: c and d (40 customers) pooled as "other", still under 100: they join "a"
    assert levels["channel"] == {"reference": "a", "customers": {"a": 190, "b": 110}}
    assert "country" not in levels  # one group: no coefficient
    # city: 80 singletons pooled as "other" (80 < 100) join the most common level, x
    assert levels["city"]["customers"] == {"x": 200, "y": 100}
    assert list(X.columns) == ["channel=b", "city=y"]
    assert X["channel=b"].sum() == 110 and X["city=y"].sum() == 100
    assert X.index.equals(ids)


def test_the_planted_channel_effects_are_found_and_the_rule_uses_them(fitted):
    *_, fit, model = fitted
    e = model.effects.set_index(["attribute", "level", "process"])
    assert set(model.levels) == {"acquisition_channel", "country"}
    assert "rare" not in {lv for _, lv, _ in e.index}  # 40 customers: never its own coefficient
    buy = e.loc[("acquisition_channel", "friends", "purchase")]
    assert buy["ci_low"] < 2.0 < buy["ci_high"] and buy["ci_low"] > 1
    drop = e.loc[("acquisition_channel", "friends", "dropout")]
    # mean dropout E[p] = a / (a + b): (0.4 / 3.4) / (1 / 4) = 0.47
    assert drop["ci_low"] < 0.4 / 3.4 / 0.25 < drop["ci_high"] < 1
    assert model.lr["df"] == 2 * 2 and model.lr["p_value"] < 0.05
    rule_says = (
        model.lr["p_value"] < 0.05 and model.holdout["with"] <= 1.01 * model.holdout["without"]
    )
    assert model.used == rule_says and model.why == ("cov.chosen" if rule_says else "cov.holdout")


def test_the_rule_is_applied_as_declared(fitted):
    orders, customers, seg, fit, model = fitted
    p, miss, other = model.lr["p_value"], model.holdout["with"], model.holdout["without"]
    assert cv.decide(p, miss, other, cv.Rule(alpha=p / 2)) == "cov.lr"
    assert cv.decide(p, miss, miss / 1.02, cv.Rule(alpha=1.0)) == "cov.holdout"
    assert cv.decide(p, miss, miss / 1.005, cv.Rule(alpha=1.0)) == "cov.chosen"  # within 1 %
    assert cv.decide(0.05, 0.1, 0.2) == "cov.lr"  # p must be below alpha
    strict = cv.CovariateModel(False, "cov.lr", cv.RULE)
    assert cv.use(strict, fit, seg, ECON) is fit  # not chosen: the report's fit as it was


def test_the_chosen_model_values_the_customers(fitted):
    orders, customers, seg, fit, model = fitted
    model.used = True
    used = cv.use(model, fit, seg, ECON)
    assert list(used.table.columns) == list(fit.table.columns)
    assert used.table.index.equals(fit.table.index)
    friends = customers["acquisition_channel"].reindex(seg.index).eq("friends").to_numpy()
    # the same history is worth more in the channel that buys faster and stays longer
    ratio = used.table["clv"] / fit.table["clv"]
    assert ratio[friends].median() > 1 > ratio[~friends].median()
    assert used.purchases is fit.purchases and used.model == fit.model
    # the plain model's table can go first (notebook 08): the same table from a fit without it
    bare = cv.without_table(model, fit)
    assert bare.table is None and bare.spend is fit.spend and fit.table is not None
    pd.testing.assert_frame_equal(cv.use(model, bare, seg, ECON).table, used.table)
    model.used = False
    assert cv.without_table(model, fit) is fit  # kept when the covariate model is not chosen
    model.used = True  # as the test found it set above


def test_no_attributes_no_model_and_the_sections_in_every_language(fitted, capsys):
    orders, customers, seg, fit, model = fitted
    none = cv.compare(orders, seg, fit, customers[["country"]].assign(country="DE"))
    assert none.why == "cov.none" and not none.used
    assert cv.compare(orders, seg, None, customers).why == "cov.no_clv"
    for lang in report.text.LANGUAGES:
        T = report.text.catalogue(lang)
        for m in (model, none):
            cv.show(m, T, Formatter("EUR", T.locale))
        assert cv.model_name(model, fit, T) != "" and cv.model_name(model, None, T) == ""
    assert "friends" in capsys.readouterr().out


def test_metrics_record_the_effects_and_the_planted_referral_truth():
    effects = pd.DataFrame(
        {"attribute": ["acquisition_channel"] * 2, "level": ["referral"] * 2,
         "reference": ["organic_search"] * 2, "customers": [771, 771],
         "process": ["purchase", "dropout"], "multiplier": [1.01, 0.78],
         "ci_low": [0.89, 0.68], "ci_high": [1.14, 0.91]}
    )  # fmt: skip
    model = cv.CovariateModel(True, "cov.chosen", cv.RULE, {"lr": 37.5, "df": 24, "p_value": 0.04},
                              {"with": 0.2, "without": 0.3, "without_model": "BG/NBD"}, effects)  # fmt: skip
    truth = read_truth(None)
    out = cv.metrics(model, 100.0, truth)
    ref = out["effects"]["acquisition_channel"]["referral"]
    assert ref["dropout"] == {"estimate": 0.78, "ci_low": 0.68, "ci_high": 0.91,
                              "truth": truth["parameters"]["referral_dropout_multiplier"]}  # fmt: skip
    assert "truth" not in ref["purchase"]  # no planted effect on the purchase rate
    assert "truth" not in cv.metrics(model, 100.0, None)["effects"]["acquisition_channel"][
        "referral"]["dropout"]  # fmt: skip
    assert out["used"] and out["why"] == "chosen" and out["clv_total_without_covariates"] == 100.0


def test_an_id_mapped_as_an_attribute_is_refused_with_the_column_and_the_count():
    orders, customers = client(n=300, seed=2)
    bought = orders.assign(channel=orders["order_id"])  # an order id mapped as the channel
    mapping = SimpleNamespace(columns={"channel": "Bestellnummer"})
    with pytest.raises(DataValidationError) as err:
        cv.attributes({}, mapping, bought)
    msg = str(err.value)
    assert "'Bestellnummer'" in msg and "300 distinct values" in msg and "at most 50" in msg


def test_the_covariate_clv_interval_is_the_reports_when_the_covariates_do_nothing(fitted):
    """covariates_view.clv_interval's chain rule: a covariate fit whose multipliers are 1 and
    certain (zero variance) is the plain BG/NBD, so its intervals are analysis.clv_interval's."""
    from dataclasses import replace

    from helpers import btyd, clv

    orders, customers, seg, fit, _ = fitted
    plain = clv.fit_bgnbd(seg)
    table = clv.predictive_clv(plain, fit.spend, seg, ECON, cost_per_order=fit.cost_per_order)
    base = replace(fit, purchases=plain, model="BG/NBD", table=table)
    X = pd.DataFrame({"g": (np.arange(len(seg)) % 2).astype(float)}, index=seg.index)
    cov = np.zeros((6, 6))
    cov[:4, :4] = plain.cov_log
    params = {**plain.params, "rate_multiplier[g]": 1.0, "a_multiplier[g]": 1.0}
    cf = btyd.ModelFit("BG/NBD+covariates", params, plain.loglik, plain.n, plain.time_unit, cov,
                       True, {"purchase_covariates": ["g"], "dropout_covariates": ["g"]})  # fmt: skip
    model = cv.CovariateModel(True, "cov.chosen", cv.RULE, fit=cf, design=X)
    got = cv.clv_interval(model, base, seg, ECON)
    want = report.clv_interval(base, seg, ECON)
    pd.testing.assert_index_equal(got.index, want.index)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-5)
    # a covariate that is uncertain widens the interval of the total
    cov[4:, 4:] = np.eye(2) * 0.05
    wide = cv.clv_interval(replace(model, fit=replace(cf, cov_log=cov)), base, seg, ECON)
    assert wide.loc["total", "se_log"] > got.loc["total", "se_log"]


def test_a_level_first_seen_in_the_holdout_weeks_does_not_stop_the_comparison(fitted):
    orders, customers, seg, fit, _ = fitted
    first = orders.groupby("customer_id")["order_date"].min()
    late = first.index[first > pd.Timestamp(AS_OF) - pd.Timedelta(weeks=fit.holdout_weeks)]
    assert len(late) >= 100
    launched = customers.assign(
        acquisition_channel=np.where(customers.index.isin(late), "new", "ads")
    )
    model = cv.compare(orders, seg, fit, launched)
    assert model.why != "cov.failed", model.error
    assert "new" in set(model.effects["level"])


def test_the_likelihood_ratio_test_reuses_the_reports_bgnbd_only_when_it_is_the_same_fit(fitted):
    """The restricted model of the LR test is clv.fit_bgnbd(seg); the report's own purchase fit
    is that same fit when the BG/NBD was chosen at the times' own resolution, and is then reused
    (not fitted twice); another model, or the BG/NBD fitted at a coarser resolution, is not."""
    from dataclasses import replace

    from helpers import btyd, clv

    *_, seg, fit, _ = fitted
    plain = clv.fit_bgnbd(seg)
    as_report = replace(fit, model="BG/NBD", purchases=plain)
    assert cv._plain_bgnbd(as_report, seg) is plain
    again = clv.fit_bgnbd(seg)
    assert again.params == plain.params and again.loglik == plain.loglik  # deterministic
    coarse = clv.fit_bgnbd(btyd.at_resolution(seg, "W"))
    for other in (replace(fit, purchases=clv.fit_mbgnbd(seg)), replace(fit, purchases=coarse)):
        got = cv._plain_bgnbd(other, seg)
        assert got is not other.purchases and got.params == plain.params


def test_the_holdout_misses_are_paired_on_the_customers_the_models_were_compared_on(monkeypatch):
    """Above COMPARE_SAMPLE calibration customers the purchase models are compared on a seeded
    sample; the covariate model's holdout miss is computed on the same customers, so the two
    misses differ by what the attributes predict, not by how many customers each bucket mean
    averages. With an attribute that is noise the two are close (scored on every customer
    against the sample's 300, the covariate model's miss was 0.57 of the other's here)."""
    from helpers.report import analysis

    monkeypatch.setattr(analysis, "COMPARE_SAMPLE", 300)
    orders, customers = client(n=4000, seed=11, rate=1.0, stay=1.0)  # no channel effect
    seg = report.segment_customers(orders, AS_OF)
    fit, why = report.fit_clv(orders, seg, ECON)
    assert fit is not None, why
    assert fit.compared_on == 300 < fit.calibration_customers
    model = cv.compare(orders, seg, fit, customers[["country"]])  # noise
    analysis._HOLDOUT.clear()
    assert model.why not in ("cov.failed", "cov.none"), model.error
    assert model.holdout["customers"] == fit.compared_on
    assert model.holdout["without"] == fit.check.loc[fit.model, "bucket_mae"]
    assert model.holdout["with"] == pytest.approx(model.holdout["without"], rel=0.1)


def test_the_comparison_and_the_holdout_check_share_one_split_and_refit(fitted):
    """compare() takes the holdout check's calibration split and refit from
    analysis.holdout_refit and leaves them for report.holdout_check, which uses and releases
    them: the check equals the one computed from scratch; the covariate fits started from the
    plain BG/NBD equal the fits from the default start to 1e-8 (effects, holdout miss; their
    bootstrap intervals 1e-6)."""
    from dataclasses import replace

    from helpers import clv
    from helpers.report import analysis

    orders, customers, seg, fit, _ = fitted
    analysis._HOLDOUT.clear()
    model = cv.compare(orders, seg, fit, customers)
    kept = analysis._HOLDOUT["last"]
    assert kept[0] is orders and kept[1] is seg and kept[4].model == fit.model
    shared = report.holdout_check(fit, orders, seg)
    assert not analysis._HOLDOUT  # released
    assert shared == report.holdout_check(fit, orders, seg)  # from scratch
    # the old path: both covariate fits from the default start
    real = clv.fit_bgnbd_covariates

    def default_start(*args, start=None, **kwargs):
        return real(*args, **kwargs)

    clv.fit_bgnbd_covariates = default_start
    try:
        old = cv.compare(orders, seg, fit, customers)
    finally:
        clv.fit_bgnbd_covariates = real
    analysis._HOLDOUT.clear()
    assert (model.used, model.why, model.levels) == (old.used, old.why, old.levels)
    cols = ["multiplier", "ci_low", "ci_high"]
    np.testing.assert_allclose(model.effects["multiplier"], old.effects["multiplier"], rtol=1e-8)
    # the dropout intervals are percentiles of draws from the covariance: 1e-6
    np.testing.assert_allclose(model.effects[cols], old.effects[cols], rtol=1e-6)
    assert model.holdout["with"] == pytest.approx(old.holdout["with"], rel=1e-8)
    assert model.lr["lr"] == pytest.approx(old.lr["lr"], rel=1e-6, abs=1e-6)
    # another purchase model: the shared refit is that model's, not the BG/NBD's
    mbg = replace(fit, model="MBG/NBD")
    assert analysis.holdout_refit(mbg, orders, seg)[1].model == "MBG/NBD"
    analysis._HOLDOUT.clear()


def test_label_codes_equal_the_text_lookup_for_categorical_and_text_columns():
    """clv_interval's group codes of the full customer table (covariates_view._label_codes) are
    labels.get_indexer(col.astype(str)): through the categories for a categorical column (a
    missing value as "nan", a category not among the labels -1) and for text as it is."""
    labels = pd.Index(["a", "b", "nan"])
    for col in (
        pd.Series(pd.Categorical(["a", "b", None, "c", "a"], categories=["c", "a", "b"])),
        pd.Series(pd.Categorical(["b", "a"])),
        pd.Series(["a", "x", "b"]),
    ):
        want = labels.get_indexer(col.astype(str).to_numpy())
        np.testing.assert_array_equal(cv._label_codes(col, labels), want)
    no_nan = pd.Index(["a"])
    col = pd.Series(pd.Categorical(["a", None]))
    np.testing.assert_array_equal(cv._label_codes(col, no_nan), [0, -1])
