"""The client report's purchase model with the customers' attributes as covariates (issue 32,
point 3): when the mapping gives attributes known at acquisition (the customer file's acquisition
channel and country, a first order's channel...), the BG/NBD is fitted with them on the purchase
rate and on the dropout (:func:`helpers.clv.fit_bgnbd_covariates`, Fader & Hardie 2007), compared
with the model without them by a likelihood-ratio test and on the report's holdout, and used for
the lifetime values when the rule declared before looking (:data:`RULE`) says so.

Levels: each attribute's levels with fewer than ``RULE.min_group`` customers are pooled as
"other" (:func:`helpers.report.acquisition_views.pool_small`); an "other" group still under
``min_group`` joins the attribute's most common level, which is the reference of its
coefficients. A level with too few customers is never its own coefficient. An attribute with more
distinct values than :data:`helpers.report.acquisition_views.MAX_LEVELS` (an id mapped as a
channel) is refused when the attributes are read
(:func:`helpers.report.acquisition_views.first_order_attributes`: one message naming the client's
column and the count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from helpers import btyd, clv, segments
from helpers.economics import Economics
from helpers.report import analysis
from helpers.report.acquisition_views import (
    MIN_GROUP,
    customer_attributes,
    first_order_attributes,
    pool_small,
)
from helpers.report.frames import align

__all__ = [
    "Rule",
    "RULE",
    "CovariateModel",
    "attributes",
    "design",
    "compare",
    "decide",
    "use",
    "clv_interval",
    "planted",
    "metrics",
    "model_name",
    "show",
]


@dataclass(frozen=True)
class Rule:
    """The covariate rule, declared before any data is seen: covariates are used when the
    likelihood-ratio test rejects the model without them at `alpha` AND the covariate model's
    holdout miss (customer-weighted mean absolute error of the mean held-out purchases per
    frequency bucket, :func:`helpers.clv.evaluate_holdout`) is at most (1 + `tolerance`) times the
    miss of the model the report chose without them."""

    alpha: float = 0.05
    tolerance: float = 0.01
    min_group: int = MIN_GROUP


#: The report's rule (the defaults; a level needs 100 customers to be its own coefficient).
RULE = Rule()


@dataclass
class CovariateModel:
    """The comparison: ``used`` (the rule's outcome) and ``why`` (a catalogue key), the
    likelihood-ratio test ``lr`` (:func:`helpers.btyd.lr_test`), the holdout misses ``holdout``
    (``with`` / ``without``: bucket MAE), the ``effects`` table (attribute, level, reference,
    customers, process, multiplier, ci_low, ci_high), the covariate ``fit`` on all the data and
    its ``design`` (0/1 columns ``attribute=level`` indexed like the customer summary)."""

    used: bool
    why: str
    rule: Rule
    lr: dict[str, Any] = field(default_factory=dict)
    holdout: dict[str, float] = field(default_factory=dict)
    effects: pd.DataFrame | None = None
    fit: btyd.ModelFit | None = None
    design: pd.DataFrame | None = None
    levels: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str = ""


def attributes(tables: dict[str, Any], mapping: Any, bought: Any) -> pd.DataFrame:
    """The customers' attributes known at acquisition, one row per customer (ids as text): the
    customer file's columns (when the mapping names one) and each extra mapped order column's
    value on the first order (:func:`helpers.report.acquisition_views.first_order_attributes`,
    which refuses an attribute with more than ``MAX_LEVELS`` distinct values, naming the client's
    column and the count)."""
    customers = customer_attributes(tables["customers"]) if "customers" in tables else None
    # the first orders' values reduced by the engine, not the orders collected (issue 31)
    return first_order_attributes(bought, customers, getattr(mapping, "columns", None))


def design(
    attrs: pd.DataFrame, index: pd.Index, min_group: int = MIN_GROUP
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Dummy coding of the attributes for the customers `index` (ids; `attrs` indexed by the ids
    as text): per attribute with at least two groups after pooling (levels under `min_group`
    customers -> "other"; an "other" still under `min_group` -> the most common level), one 0/1
    column ``attribute=level`` per level but the reference (the most common level). Returns the
    design (float, indexed like `index`) and per attribute its reference and customers per level."""
    cols, levels = {}, {}
    aligned = align(attrs, index.astype(str))  # one look-up of the ids for every attribute
    for col in attrs.columns:
        g = pool_small(aligned[col], min_group)
        counts = g.value_counts()
        ref = str(counts.index[0])
        if "other" in counts and counts["other"] < min_group and ref != "other":
            g = g.where(g != "other", ref)
            counts = g.value_counts()
        if len(counts) < 2:
            continue
        levels[col] = {"reference": ref, "customers": {str(k): int(v) for k, v in counts.items()}}
        for lv in sorted(str(k) for k in counts.index if str(k) != ref):
            cols[f"{col}={lv}"] = (g.to_numpy() == lv).astype(float)
    return pd.DataFrame(cols, index=index), levels


def _effects(fit: btyd.ModelFit, levels: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """:func:`helpers.clv.covariate_effects` with each dummy split into attribute and level."""
    eff = clv.covariate_effects(fit)
    # the dummy ``attribute=level`` of :func:`design` (a level may itself hold "=")
    attr = [max((a for a in levels if c.startswith(f"{a}=")), key=len) for c in eff["covariate"]]
    level = [c[len(a) + 1 :] for a, c in zip(attr, eff["covariate"], strict=True)]
    eff.insert(0, "attribute", attr)
    eff.insert(1, "level", level)
    eff.insert(2, "reference", [levels[a]["reference"] for a in attr])
    eff.insert(
        3, "customers", [levels[a]["customers"][lv] for a, lv in zip(attr, level, strict=True)]
    )
    # a percentile interval of the bootstrap holds its point estimate (as _group_dropout's)
    eff["ci_low"] = np.minimum(eff["ci_low"], eff["multiplier"])
    eff["ci_high"] = np.maximum(eff["ci_high"], eff["multiplier"])
    return eff.drop(columns="covariate")


def _plain_bgnbd(fit: analysis.ClvFit, seg: pd.DataFrame) -> btyd.ModelFit:
    """The BG/NBD without covariates on `seg`, the likelihood-ratio test's restricted model: the
    report's own purchase fit when that is this same fit (the BG/NBD chosen, fitted on these
    customers at their times' own resolution: :func:`helpers.report.analysis.fit_clv` with
    ``CLV_RESOLUTION`` None), else :func:`helpers.clv.fit_bgnbd` of `seg`."""
    pf = fit.purchases
    same = (
        pf.model == "BG/NBD"
        and pf.n == len(seg)
        and pf.time_unit == seg.attrs.get("time_unit", pf.time_unit)
        and pf.extra.get("resolution") == seg.attrs.get("resolution", "as given")
    )
    return pf if same else clv.fit_bgnbd(seg)


def compare(
    orders: Any,
    seg: pd.DataFrame,
    fit: analysis.ClvFit | None,
    attrs: pd.DataFrame | None,
    rule: Rule = RULE,
) -> CovariateModel:
    """Fit the BG/NBD with the attributes `attrs` (:func:`design`) on both processes and apply
    `rule`: the likelihood-ratio test against the BG/NBD without them on all the data (df = the
    number of coefficients; Wilks 1938), and the holdout miss of the covariate model fitted on the
    calibration period against that of the report's chosen model (``fit.check``,
    :func:`helpers.clv.compare_purchase_models`, same split). ``why``: ``cov.none`` (no attribute
    with two groups), ``cov.no_clv`` (no purchase model), ``cov.failed``, ``cov.lr`` (not
    rejected), ``cov.holdout`` (worse on the holdout) or ``cov.chosen``.

    The two holdout misses are paired: the covariate model is fitted on the calibration period
    of the customers the purchase models were compared on (``fit.check``: everyone up to
    :data:`helpers.report.analysis.COMPARE_SAMPLE` customers, above it the same seeded sample,
    :func:`helpers.report.analysis.comparison_sample`, at the same resolution) and scored on
    their holdout, so both misses are means over the same customers' actual purchases. (A bucket
    mean of fewer customers is noisier and its miss larger: scored on all 5.85 million customers
    of the 100M-row benchmark's calibration period against the sample's 200,000, the covariate
    model missed by 0.026 against 0.040 with multipliers within 0.5 % of 1, which is the
    sample's noise, not the attributes.) ``holdout["customers"]`` says how many.

    The split is the holdout check's (:func:`helpers.report.analysis.holdout_refit`: computed
    once for both); each covariate fit starts from a BG/NBD without covariates (the restricted
    model on all the data; the chosen model's refit on the calibration period when that is the
    BG/NBD), which changes its optimum by less than 1e-9
    (:func:`helpers.clv.fit_bgnbd_covariates`)."""
    if fit is None:
        return CovariateModel(False, "cov.no_clv", rule)
    X, levels = (
        design(attrs, seg.index, rule.min_group)
        if attrs is not None
        else (pd.DataFrame(index=seg.index), {})
    )
    if X.shape[1] == 0:
        return CovariateModel(False, "cov.none", rule, levels=levels)
    try:
        plain = _plain_bgnbd(fit, seg)
        # the nested model's optimum starts the fit (the same optimum from any start: clv)
        full = clv.fit_bgnbd_covariates(seg, X, X, start=plain)
        # the holdout check's split and refit, computed once for both (analysis.holdout_refit)
        cal, cal_fit = analysis.holdout_refit(fit, orders, seg)
        # the customers the models were compared on (fit.check): the misses are paired
        cal = analysis.at_clv_resolution(
            analysis.comparison_sample(cal, analysis.COMPARE_SAMPLE, analysis.COMPARE_SEED)
        )
        if cal.index.dtype == X.index.dtype:
            Xc = align(X, cal.index)
        else:
            Xc = align(X.set_axis(X.index.astype(str)), cal.index.astype(str)).set_axis(cal.index)
        # a level first seen after the calibration period (a new channel) has no coefficient there
        Xc = Xc.loc[:, Xc.sum() > 0]
        on_cal = clv.fit_bgnbd_covariates(cal, Xc, Xc, start=cal_fit)
        duration = float(cal["holdout_duration"].iloc[0])
        pred = clv.predict_with_covariates(
            lambda f, s: clv.expected_purchases(f, s, duration), on_cal, cal, Xc, Xc
        )
        _, m = clv.evaluate_holdout(None, cal, predicted=pred)
        effects = _effects(full, levels)
    except (ValueError, np.linalg.LinAlgError) as err:
        return CovariateModel(False, "cov.failed", rule, levels=levels, error=str(err))
    if not (full.converged and on_cal.converged):
        return CovariateModel(False, "cov.failed", rule, levels=levels, error="no convergence")
    lr = btyd.lr_test(plain, full, df=2 * X.shape[1])
    without = float(fit.check.loc[fit.model, "bucket_mae"])
    holdout = {"with": float(m["bucket_mae"]), "without": without, "without_model": fit.model,
               "customers": len(cal)}  # fmt: skip
    why = decide(lr["p_value"], holdout["with"], without, rule)
    return CovariateModel(why == "cov.chosen", why, rule, lr, holdout, effects, full, X, levels)


def decide(p_value: float, miss_with: float, miss_without: float, rule: Rule = RULE) -> str:
    """The rule's outcome: ``cov.lr`` when the likelihood-ratio test does not reject the model
    without covariates (p >= alpha), ``cov.holdout`` when the covariate model misses the holdout
    by more than (1 + tolerance) times the other's, else ``cov.chosen``."""
    if not p_value < rule.alpha:
        return "cov.lr"
    if not miss_with <= (1 + rule.tolerance) * miss_without:
        return "cov.holdout"
    return "cov.chosen"


def use(
    model: CovariateModel, fit: analysis.ClvFit | None, seg: pd.DataFrame, econ: Economics
) -> analysis.ClvFit | None:
    """`fit` with its per-customer table (p_alive, expected_purchases, expected_spend,
    margin_per_order, clv, p_purchase_12m) from the covariate model when the rule chose it
    (:func:`helpers.clv.predict_with_covariates`; the Gamma-Gamma spend model unchanged), else
    `fit` itself. The parameter fits it carries stay those of the model without covariates."""
    if fit is None or not model.used:
        return fit
    X = model.design
    year = 365.25 / segments.unit_days(seg.attrs["time_unit"])

    def value(f: btyd.ModelFit, s: pd.DataFrame) -> pd.DataFrame:
        table = clv.predictive_clv(f, fit.spend, s, econ, cost_per_order=fit.cost_per_order)
        table["p_purchase_12m"] = clv.p_purchase_within(f, s, year).to_numpy()
        return table

    # the columns the predictions read, reordered by pattern once (not the whole summary)
    cols = [c for c in ("frequency", "recency", "T", "monetary_value") if c in seg]
    return replace(fit, table=clv.predict_with_covariates(value, model.fit, seg, X, X, cols))


def without_table(model: CovariateModel, fit: analysis.ClvFit | None) -> analysis.ClvFit | None:
    """`fit` without its per-customer table when :func:`use` will replace it (the rule chose
    the covariate model): at 8.4M customers 0.4 GB not held beside the new table while that one
    is computed. Else `fit` itself. Keep what is needed of the table before (its total)."""
    if fit is None or not model.used:
        return fit
    return replace(fit, table=None)


def clv_interval(
    model: CovariateModel,
    fit: analysis.ClvFit,
    seg: pd.DataFrame,
    econ: Economics,
    level: float = 0.95,
    by: str | None = "segment",
) -> pd.DataFrame:
    """:func:`helpers.report.analysis.clv_interval` of the model the rule chose: without
    covariates that function itself; with them the same delta method over the covariate fit's
    log-parameters theta = (log r, log alpha, log a, log b, gamma, delta) and the Gamma-Gamma's.

    A pattern g of covariates (z_g, w_g) is a BG/NBD at log alpha_g = log alpha - gamma' z_g and
    log a_g = log a + delta' w_g (:func:`helpers.clv.covariate_pattern_fits`), so with T_g its
    customers' margin and d_k = dT_g / d log k_g (central differences, step 1e-4) the chain rule
    gives dT / d gamma_j = -sum_g d_alpha z_gj and dT / d delta_j = sum_g d_a w_gj. The spend
    parameters act through each order's margin: clv_i = (m E[spend_i] - c) D_i, so
    dclv_i = m dE[spend_i] D_i with D_i = clv_i / (m E[spend_i] - c). se(log total) =
    sqrt(g' Sigma g) with g the relative gradient and Sigma block-diagonal (the fits are
    separate); interval total x exp(+-z se). Same sample of customers and same columns."""
    if not model.used:
        return analysis.clv_interval(fit, seg, econ, level, by)
    zq = float(stats.norm.ppf(0.5 + level / 2))
    step = max(1, int(np.ceil(len(seg) / analysis.CLV_INTERVAL_SAMPLE)))
    sample = seg.iloc[::step]
    groups = sample[by] if by is not None and by in sample else pd.Series("total", sample.index)
    labels = pd.Index(sorted(groups.astype(str).unique()))
    g_all = groups.astype(str).to_numpy()
    cf, gg, X = model.fit, fit.spend, align(model.design, sample.index)
    zn = cf.extra.get("purchase_covariates", [])
    wn = cf.extra.get("dropout_covariates", [])
    names = list(cf.params)
    m = econ.gross_margin_rate
    h = 1e-4

    def per_group(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Sums of `values` per label (codes: positions in `labels`, -1 for none) and in all."""
        keep = codes >= 0
        out = np.bincount(codes[keep], weights=values[keep], minlength=len(labels))
        return np.append(out, values.sum())

    # the sample reordered by covariate pattern once: each pattern's customers are a slice
    fits = clv.covariate_pattern_fits(cf, sample, X, X)
    order = np.concatenate([rows for rows, _ in fits])
    ordered, codes = sample.iloc[order], labels.get_indexer(g_all[order])
    Xv, col = X.to_numpy(), {c: j for j, c in enumerate(X.columns)}
    base = np.zeros(len(labels) + 1)
    grad = np.zeros((len(labels) + 1, len(names) + len(gg.params)))
    disc = np.empty(len(order))
    lo = 0
    for rows, pf in fits:
        part = slice(lo, lo + len(rows))
        lo += len(rows)
        sub, g = ordered.iloc[part], codes[part]

        def total(f: btyd.ModelFit, sub: pd.DataFrame = sub, g: np.ndarray = g) -> np.ndarray:
            t = clv.predictive_clv(f, gg, sub, econ, cost_per_order=fit.cost_per_order)
            return per_group(t["clv"].to_numpy(), g)

        table = clv.predictive_clv(pf, gg, sub, econ, cost_per_order=fit.cost_per_order)
        base += per_group(table["clv"].to_numpy(), g)
        d = {}
        for k in ("r", "alpha", "a", "b"):
            up = replace(pf, params={**pf.params, k: pf.params[k] * np.exp(h)})
            down = replace(pf, params={**pf.params, k: pf.params[k] * np.exp(-h)})
            d[k] = (total(up) - total(down)) / (2 * h)
            grad[:, names.index(k)] += d[k]
        zw = Xv[rows[0]]
        for c in zn:
            grad[:, names.index(f"rate_multiplier[{c}]")] -= d["alpha"] * zw[col[c]]
        for c in wn:
            grad[:, names.index(f"a_multiplier[{c}]")] += d["a"] * zw[col[c]]
        per_order = table["margin_per_order"].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            disc[part] = np.where(
                np.abs(per_order) > 1e-12, table["clv"].to_numpy() / per_order, 0.0
            )
    # the spend model's parameters: the same for every pattern, so once over the whole sample
    for j, k in enumerate(gg.params):
        up = replace(gg, params={**gg.params, k: gg.params[k] * np.exp(h)})
        down = replace(gg, params={**gg.params, k: gg.params[k] * np.exp(-h)})
        ds = (clv.expected_spend(up, ordered) - clv.expected_spend(down, ordered)).to_numpy()
        grad[:, len(names) + j] = per_group(m * ds / (2 * h) * disc, codes)
    rel = grad / base[:, None]
    cov = np.zeros((rel.shape[1], rel.shape[1]))
    cov[: len(names), : len(names)] = cf.cov_log
    cov[len(names) :, len(names) :] = gg.cov_log
    se = np.sqrt(np.clip(np.einsum("gi,ij,gj->g", rel, cov, rel), 0, None))
    index = labels.append(pd.Index(["total"]))
    if by is not None and by in seg:
        col = seg[by] if fit.table.index.equals(seg.index) else seg.loc[fit.table.index, by]
        full_codes = _label_codes(col, labels)
    else:
        full_codes = labels.get_indexer(np.full(len(fit.table), "total"))
    full = pd.Series(per_group(fit.table["clv"].to_numpy(), full_codes), index=index)
    out = pd.DataFrame(
        {"clv": full, "ci_low": full * np.exp(-zq * se), "ci_high": full * np.exp(zq * se),
         "se_log": se},
        index=index,
    )  # fmt: skip
    return out


def _label_codes(col: pd.Series, labels: pd.Index) -> np.ndarray:
    """Each value's position in `labels` (text; -1 where absent), as
    ``labels.get_indexer(col.astype(str))``: for a categorical column through its categories
    (a missing value as the text "nan"), without turning every row into a Python string."""
    if not isinstance(col.dtype, pd.CategoricalDtype):
        return labels.get_indexer(col.astype(str).to_numpy())
    pos = np.append(labels.get_indexer(col.cat.categories.astype(str)), labels.get_indexer(["nan"]))
    codes = col.cat.codes.to_numpy().astype(np.int64)
    return pos[np.where(codes >= 0, codes, len(pos) - 1)]


def _r(v: Any, digits: int = 4) -> Any:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return round(f, digits) if math.isfinite(f) else None


def planted(truth: dict[str, Any] | None) -> dict[tuple[str, str, str], float]:
    """The planted effects the covariate model estimates, from a generated company's truth
    (:func:`helpers.synth.read_truth`): (attribute, level, process) -> truth, for notebook 08's
    registry keys ``covariates.effects.<attribute>.<level>.<process>``
    (:func:`helpers.synth.registry.metrics_for`, :func:`~helpers.synth.registry.truth_value`).
    The generator multiplies referral customers' BG/NBD dropout probability p by
    ``referral_dropout_multiplier`` and gives no channel another effect on p or on the purchase
    rate, so E[p | referral] / E[p | the reference channel] is that multiplier. Empty for a client
    (no truth)."""
    if not truth:
        return {}
    from helpers.synth import registry

    prefix = "covariates.effects."
    return {
        tuple(m.key.removeprefix(prefix).split(".")): registry.truth_value(m, truth)
        for m in registry.metrics_for("08", truth["parameters"])
        if m.key.startswith(prefix)
    }


def metrics(
    model: CovariateModel, total_without: float | None, truth: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The section's numbers for metrics.json: the rule, its outcome, the test, the holdout,
    ``effects.<attribute>.<level>.<purchase|dropout>`` entries (estimate, ci_low, ci_high; with
    ``truth`` beside a generated company's planted effect, :func:`helpers.run.truth_entry`), and
    ``clv_total_without_covariates`` (the model without them: what notebook 04 is compared with)."""
    from helpers.run import truth_entry

    out: dict[str, Any] = {
        "rule": {"alpha": model.rule.alpha, "holdout_tolerance": model.rule.tolerance,
                 "min_group": model.rule.min_group},
        "used": model.used, "why": model.why.removeprefix("cov."),
        "lr_test": {k: _r(model.lr[k]) for k in ("lr", "df", "p_value")} if model.lr else None,
        "holdout_bucket_mae": {k: _r(v) for k, v in model.holdout.items() if k != "customers"}
        or None,
        "holdout_customers": model.holdout.get("customers"),  # the customers both were scored on
        "levels": model.levels,
        "clv_total_without_covariates": _r(total_without, 2),
        "effects": {},
    }  # fmt: skip
    truths = planted(truth)
    if model.effects is not None:
        for r in model.effects.itertuples():
            e = {"estimate": _r(r.multiplier), "ci_low": _r(r.ci_low), "ci_high": _r(r.ci_high)}
            if (r.attribute, r.level, r.process) in truths:
                e = truth_entry(r.multiplier, r.ci_low, r.ci_high,
                                truths[(r.attribute, r.level, r.process)])  # fmt: skip
            out["effects"].setdefault(r.attribute, {}).setdefault(r.level, {})[r.process] = e
    return out


def model_name(model: CovariateModel, fit: analysis.ClvFit | None, T: Any) -> str:
    """The purchase model the report's lifetime values come from, as the report names it."""
    if fit is None:
        return ""
    return T("cov.model", model="BG/NBD") if model.used else fit.model


def _verdict(lo: float, hi: float) -> str:
    return "higher" if lo > 1 else "lower" if hi < 1 else "inconclusive"


def show(model: CovariateModel, T: Any, fmt: Any, model_name: str = "") -> None:
    """Render the section: the rule, the outcome and why, and each level's multipliers of the
    purchase rate and of stopping after a purchase with their 95 % intervals, in sentences and a
    table (every string from the catalogues; a client's level names are escaped by ``T``)."""
    from IPython.display import Markdown, display

    rule = model.rule
    T.md(
        "cov.section",
        alpha=fmt.pct(rule.alpha, 0),
        tolerance=fmt.pct(rule.tolerance, 0),
        min_group=fmt.num(rule.min_group),
    )
    if model.why in ("cov.none", "cov.no_clv", "cov.failed"):
        T.md(model.why, min_group=fmt.num(rule.min_group), error=model.error)
        return
    T.md(
        model.why,
        lr=fmt.num(model.lr["lr"], 1),
        df=model.lr["df"],
        p=fmt.num(model.lr["p_value"], 3),
        alpha=fmt.pct(rule.alpha, 0),
        holdout_with=fmt.num(model.holdout["with"], 3),
        holdout_without=fmt.num(model.holdout["without"], 3),
        model=model_name or model.holdout["without_model"],
    )

    def name(level: str) -> str:
        return T("attr.other") if level == "other" else level

    e = model.effects.copy()
    e["order"] = e["process"].map({"purchase": 0, "dropout": 1})
    e = e.sort_values(["attribute", "level", "order"], kind="stable")
    e["verdict"] = [_verdict(lo, hi) for lo, hi in zip(e["ci_low"], e["ci_high"], strict=True)]
    decided = e[e["verdict"] != "inconclusive"]
    lines = [
        "- "
        + T(
            f"cov.line.{r.process}",
            level=name(r.level),
            attribute=T.messages.get(f"attr.name.{r.attribute}", r.attribute),
            reference=name(r.reference),
            m=fmt.num(r.multiplier, 2),
            low=fmt.num(r.ci_low, 2),
            high=fmt.num(r.ci_high, 2),
            verdict=T(f"cov.verdict.{r.verdict}"),
        )
        for r in decided.itertuples()
    ]
    rest = len(e) - len(decided)
    if lines:  # each line is escaped where it was filled (T): the list goes in as it is
        chance = fmt.num(0.05 * len(e), 1)
        display(Markdown(T.plain("cov.effects", lines="\n".join(lines), k=len(e), chance=chance)))
    if rest:
        T.md("cov.rest" if lines else "cov.all_inconclusive", n=rest)
    wide = e.pivot_table(
        index=["attribute", "level"],
        columns="process",
        values=["multiplier", "ci_low", "ci_high"],
        sort=False,
    )
    shown = pd.DataFrame(index=wide.index)
    shown["customers"] = e.groupby(["attribute", "level"], sort=False)["customers"].first()
    for p in ("purchase", "dropout"):
        for c in ("multiplier", "ci_low", "ci_high"):
            shown[f"{p}_{c}"] = wide[(c, p)] if (c, p) in wide else np.nan
    shown.index = [f"{T.messages.get(f'attr.name.{a}', a)}: {name(lv)}" for a, lv in shown.index]
    table = fmt.table(shown, num=["customers"], dec=[c for c in shown if c != "customers"])
    display(table.rename(columns=lambda c: T(f"cov.col.{c}")))
