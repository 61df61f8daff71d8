"""The client report's own analysis: headline figures, segments, the at-risk list, CLV with
its model check, and the retention scenario. Retention per period comes from
:mod:`helpers.retention`, RFM segments from :mod:`helpers.segments`, CLV from :mod:`helpers.clv`.

The functions that read the orders take either a pandas DataFrame (the teaching helpers do the
work) or an Ibis table (:mod:`helpers.report.engine` does: the same results, computed where
the data lives, without holding the orders in pandas); see
:func:`helpers.report.orders.open_orders`. Nothing here reads a file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from helpers import clv, cohorts, economics, pareto_nbd, periods, retention, segments
from helpers.economics import Economics
from helpers.report.text import Reason

_HEX = np.array(list("0123456789abcdef"))


def pseudonymize(ids: pd.Series, salt: str, digits: int = 10) -> pd.Series:
    """Stable pseudonyms ``C-<hex>`` for customer ids: a keyed 64-bit SipHash of the id's text
    (pandas' ``hash_pandas_object`` with a 16-byte key derived from `salt` by SHA-256).

    The same id and salt always give the same pseudonym, so a report is consistent; without the
    salt the ids cannot be recovered by hashing candidate ids. `digits` hex digits (4 bits each)
    are kept (the leading ones of the 16): with 10 digits two of 100,000 customers collide with probability about 0.5 %.
    """
    key = hashlib.sha256(salt.encode()).hexdigest()[:16]
    h = pd.util.hash_pandas_object(ids.astype(str), index=False, hash_key=key).to_numpy(np.uint64)
    shifts = (15 - np.arange(digits, dtype=np.uint64)) * np.uint64(4)  # leading hex digits
    nibbles = ((h[:, None] >> shifts) & np.uint64(15)).astype(np.intp)
    hexes = np.ascontiguousarray(_HEX[nibbles]).view(f"<U{digits}").ravel()
    return pd.Series(np.char.add("C-", hexes), index=ids.index, name=ids.name)


def _engine(orders: Any) -> Any:
    """The engine module when `orders` is an Ibis table, else None (pandas: the helpers)."""
    if type(orders).__module__.startswith("ibis."):
        from helpers.report import engine

        return engine
    return None


def purchases(orders: pd.DataFrame) -> pd.DataFrame:
    """The orders that count as purchases (activity): every order with an amount >= 0. A
    zero-value order (a free sample, a fully discounted order) is activity worth 0; refund rows
    (negative amounts, kept under ``refunds: net``) only reduce revenue."""
    if (eng := _engine(orders)) is not None:
        return eng.purchases(orders)
    keep = (orders["amount"] >= 0).to_numpy()
    # no refund rows (the usual case): a shallow copy instead of copying millions of rows
    return orders.copy(deep=False) if keep.all() else orders.loc[keep]


def headline(orders: pd.DataFrame, as_of: str | pd.Timestamp) -> dict[str, Any]:
    """Headline figures: ``customers`` (with at least one purchase), ``purchases`` (orders with an
    amount >= 0, of which ``zero_value_orders`` have amount 0), ``revenue`` (incl. refunds),
    ``average_order_value`` (revenue of purchases / purchases), ``revenue_per_customer``,
    ``repeat_purchase_rate`` (share of customers with 2+ purchases), ``first_date``, ``last_date``."""
    if (eng := _engine(orders)) is not None:
        return eng.headline(orders, as_of)
    t = pd.to_datetime(orders["order_date"]).to_numpy("datetime64[ns]")
    amount = orders["amount"]
    upto = t < periods.as_of_end(as_of).to_datetime64()
    bought = upto & (amount >= 0).to_numpy()
    if not bought.any():
        segments.rfm_table(orders.iloc[:0], as_of)  # the summary's error for no orders
    # per-customer purchase counts only: an unsorted factorization is enough
    codes, _ = periods.customer_codes(orders["customer_id"], sort=False)
    n_orders = np.bincount(codes[bought])
    n_orders = n_orders[n_orders > 0]
    revenue = float((amount if upto.all() else amount[upto]).sum())
    p_amount = amount if bought.all() else amount[bought]
    return {
        "customers": len(n_orders),
        "purchases": int(bought.sum()),
        "zero_value_orders": int((p_amount == 0).sum()),
        "revenue": revenue,
        "average_order_value": float(p_amount.mean()),
        "revenue_per_customer": float(revenue / len(n_orders)),
        "repeat_purchase_rate": float((n_orders >= 2).mean()),
        "first_date": str(pd.Timestamp(t[upto].min()).date()),
        "last_date": str(pd.Timestamp(t[upto].max()).date()),
    }


def period_retention(
    bought: pd.DataFrame | Any, freq: str, as_of: str | pd.Timestamp
) -> pd.DataFrame:
    """Retention per period of the purchases `bought`: :func:`helpers.retention.period_retention`,
    or :func:`helpers.report.engine.period_retention` for an Ibis table (equal results)."""
    eng = _engine(bought)
    return (eng.period_retention if eng else retention.period_retention)(bought, freq, as_of)


def cohort_table(bought: pd.DataFrame | Any, freq: str, as_of: str | pd.Timestamp) -> pd.DataFrame:
    """Acquisition cohorts x age of the purchases `bought`: :func:`helpers.cohorts.cohort_table`,
    or :func:`helpers.report.engine.cohort_table` for an Ibis table (equal results)."""
    eng = _engine(bought)
    return (eng.cohort_table if eng else cohorts.cohort_table)(bought, freq, as_of)


def net_revenue(orders: pd.DataFrame | Any) -> pd.Series:
    """Each customer's net revenue: the sum of all their rows' amounts, refund rows included
    (the ``net_revenue`` column of the report's ``customers.csv``)."""
    if (eng := _engine(orders)) is not None:
        return eng.customer_totals(orders).rename("net_revenue")
    return (
        orders.groupby("customer_id", observed=True, sort=False)["amount"]
        .sum()
        .rename("net_revenue")
    )


#: What a spreadsheet reads as the start of a formula (OWASP, "CSV injection").
FORMULA_START: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
#: How the report command passes the mapping's ``exports`` to notebook 08's :func:`export_csv`
#: (``raw``: cells as in the client's file; otherwise spreadsheet-safe).
EXPORTS_ENV = "RETENTION_LAB_EXPORTS"


def spreadsheet_safe(col: pd.Series) -> pd.Series:
    """A text column with a leading apostrophe before every cell that begins with a formula
    character (:data:`FORMULA_START`), so that Excel, LibreOffice or Google Sheets show the cell as
    text instead of running it (OWASP's advice on CSV injection). Numbers are never changed (a
    negative amount stays a number); other cells of a text column stay as they are."""
    if col.dtype.kind in "biufcmM" or (
        isinstance(col.dtype, pd.CategoricalDtype) and col.cat.categories.dtype.kind in "biufcmM"
    ):
        return col
    text = col.astype("string") if isinstance(col.dtype, pd.CategoricalDtype) else col
    risky = text.str.startswith(FORMULA_START).isin([True])  # not a text cell: NaN, not risky
    if not risky.any():
        return col
    return text.where(~risky, "'" + text.where(risky, ""))


def export_csv(
    table: pd.DataFrame, path: str | Path, decimals: int = 4, raw: bool | None = None
) -> Path:
    """Write `table` (its index as the first column) to a UTF-8 CSV for the client, numbers
    rounded to `decimals`, with Arrow's multi-threaded CSV writer (about 6x pandas' ``to_csv`` on
    a million customers). Text is quoted, missing values are empty cells, timestamps are written
    as ``2024-01-02 13:00:00`` (with as many decimals of the second as the column needs); ``pandas.read_csv``
    reads back what ``table.round(decimals).to_csv`` would have written.

    Spreadsheet-safe unless `raw`: text cells (ids, segments, the client's other columns) that
    begin with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return get a leading apostrophe
    (:func:`spreadsheet_safe`); numbers are written as numbers. `raw` None: as the mapping's
    ``exports`` says when the report command runs (``$RETENTION_LAB_EXPORTS``), else safe."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if raw is None:
        raw = os.environ.get(EXPORTS_ENV, "safe") == "raw"
    arrays: dict[str, pa.Array] = {}
    # column by column into Arrow (no rounded or re-indexed copy of the whole table)
    for name, col in [(table.index.name or "", table.index.to_series()), *table.items()]:
        if col.dtype.kind == "f":
            col = col.round(decimals)
        elif not raw:
            col = spreadsheet_safe(col)
        arr = pa.Array.from_pandas(col)
        if col.dtype.kind == "M" and col.dt.tz is None:  # the coarsest exact unit, as pandas
            ns = col.to_numpy("datetime64[ns]").view("i8")[col.notna().to_numpy()]
            unit = next(u for u, k in (("s", 10**9), ("ms", 10**6), ("us", 10**3), ("ns", 1))
                        if (ns % k == 0).all())  # fmt: skip
            arr = arr.cast(pa.timestamp(unit))
        arrays[str(name)] = arr
    path = Path(path)
    pcsv.write_csv(pa.table(arrays), path, pcsv.WriteOptions(quoting_style="needed"))
    return path


#: The RFM segments (helpers.segments.SEGMENT_RULES) whose customers are valuable but quiet:
#: low recency score (R 1-2) with good frequency and spend (FM 3-5).
AT_RISK_SEGMENTS: tuple[str, ...] = ("Can't lose them", "At risk")


def segment_customers(
    orders: pd.DataFrame, as_of: str | pd.Timestamp, time_unit: str = "W"
) -> pd.DataFrame:
    """RFM table, scores 1-5 and named segments of the customers (purchases only), by
    :func:`helpers.segments.rfm_table` (the one per-customer summary),
    :func:`~helpers.segments.rfm_scores` and :func:`~helpers.segments.assign_segments`
    (Hughes 1994 RFM; BTYD columns in `time_unit`)."""
    eng = _engine(orders)
    summary = eng.customer_summary if eng is not None else segments.rfm_table
    rfm = summary(purchases(orders), as_of, time_unit)
    out = segments.assign_segments(segments.rfm_scores(rfm))
    out.attrs.update(rfm.attrs)
    return out


def at_risk_customers(
    segmented: pd.DataFrame,
    clv: pd.DataFrame | None = None,
    at_risk: tuple[str, ...] = AT_RISK_SEGMENTS,
) -> pd.DataFrame:
    """Valuable customers who have gone quiet, the win-back list of :func:`helpers.segments.winback_list`
    (the same ranking as notebook 04): the `at_risk` segments, ranked by predicted margin ``clv``
    when a purchase model was fitted (:func:`fit_clv`), otherwise by total spend."""
    return segments.winback_list(segmented, clv, at_risk)


def client_economics(mapping: Any) -> Economics:
    """The client's economics: the mapping's ``economics`` block (:func:`helpers.economics.from_mapping`),
    or a client with no known service costs and a 30 % margin."""
    econ = getattr(mapping, "economics", None)
    econ = econ if isinstance(econ, Economics) else economics.from_mapping(None)
    return econ.replace(currency=getattr(mapping, "currency", econ.currency))


@dataclass
class ClvFit:
    """A predictive CLV fit of the client report: the table per customer (p_alive,
    expected_purchases, expected_spend, margin_per_order, clv), the purchase model chosen, the
    holdout check that chose it, and the fits (for scenarios)."""

    table: pd.DataFrame
    model: str
    check: pd.DataFrame
    purchases: Any
    spend: Any
    holdout_weeks: float
    cost_per_order: float = 0.0


def fit_clv(
    orders: pd.DataFrame,
    segmented: pd.DataFrame,
    econ: Economics,
    min_repeat_buyers: int = 100,
    holdout_share: float = 0.25,
) -> tuple[ClvFit | None, str]:
    """Predictive CLV per customer if the data allows a fit: (fit, "") or (None, why not).

    The purchase model is chosen on a calibration/holdout check (:func:`helpers.clv.compare_purchase_models`):
    the last `holdout_share` of the data's span (at most a year) is held out, BG/NBD (Fader,
    Hardie & Lee 2005), MBG/NBD (Batislam, Denizel & Filiztekin 2007; one-time buyers can have
    left) and Pareto/NBD (Schmittlein, Morrison & Colombo 1987; customers can leave at any
    moment) are fitted on the rest, and the one whose predictions track the held-out purchases best
    is refitted on all the data. Spend per purchase is Gamma-Gamma; CLV = (margin x E[spend] -
    shipping per order) x discounted expected purchases over ``econ.horizon_months``
    (:func:`helpers.clv.predictive_clv`).
    No fit with fewer than `min_repeat_buyers` repeat buyers, when an optimizer does not converge,
    or when the Gamma-Gamma mean spend does not exist (q <= 1).
    """
    repeat = segmented.loc[(segmented["frequency"] > 0) & (segmented["monetary_value"] > 0)]
    if len(repeat) < min_repeat_buyers:
        return None, Reason(
            f"only {len(repeat)} customers bought more than once; a purchase and spend model needs "
            f"at least {min_repeat_buyers} repeat buyers, so no lifetime value is predicted",
            "no_clv.too_few", n=len(repeat), min=min_repeat_buyers,
        )  # fmt: skip
    as_of = segmented.attrs["as_of"]
    first = segmented["first_order"].min()
    span_days = (periods.as_of_end(as_of) - first) / pd.Timedelta(days=1)
    hold_days = int(min(365, max(28, holdout_share * span_days)))
    cal_end = periods.as_of_day(as_of) - pd.Timedelta(days=hold_days)
    eng = _engine(orders)
    split = eng.calibration_holdout if eng is not None else clv.calibration_holdout
    try:
        cal = split(purchases(orders), cal_end, as_of, segmented.attrs["time_unit"])
        check, model = clv.compare_purchase_models(cal)
        pf = clv.PURCHASE_MODELS[model](segmented)
        gg = clv.fit_gamma_gamma(repeat)
    except ValueError as err:
        return None, Reason(
            f"the lifetime-value models could not be fitted ({err})",
            "no_clv.failed",
            error=str(err),
        )
    values = [*pf.params.values(), *gg.params.values()]
    if not (pf.converged and gg.converged and np.all(np.isfinite(values))):
        return None, Reason(
            "the lifetime-value models did not converge on this data, so no value is predicted",
            "no_clv.converge",
        )
    if gg.q <= 1:
        return None, Reason(
            f"the spend model has no finite mean (q = {gg.q:.2f} <= 1): spend is too uneven to predict",
            "no_clv.spend", q=f"{gg.q:.2f}",
        )  # fmt: skip
    # the client's file has no tickets or returns: the cost to serve an order is its shipping
    table = clv.predictive_clv(pf, gg, segmented, econ, cost_per_order=econ.shipping_per_order)
    return ClvFit(table, model, check, pf, gg, hold_days / 7, econ.shipping_per_order), ""


def dropout_scenario(
    fit: ClvFit, segmented: pd.DataFrame, econ: Economics, cut: float = 0.10
) -> dict[str, float]:
    """What better retention is worth, from the purchase model itself: the total predicted margin
    of today's customers if each purchase were `cut` (e.g. 10 %) less likely to be a customer's
    last, against today's prediction. Under BG/NBD and MBG/NBD the dropout probability after a
    purchase is p ~ Beta(a, b) with mean a / (a + b); the scenario keeps a and sets b so that the
    mean is (1 - cut) times today's, b' = a / ((1 - cut) E[p]) - a, and recomputes every
    customer's CLV (:func:`helpers.clv.predictive_clv`) with the same spend model and economics.

    Under the Pareto/NBD a customer leaves at any moment (rate mu ~ Gamma(s, beta)); the chance
    that a purchase is the last is the chance that leaving comes before the next purchase,
    E[mu / (lambda + mu)] (:func:`helpers.pareto_nbd.leave_before_next_purchase`); the scenario
    scales every customer's dropout rate by the one factor c (beta' = beta / c) that makes it
    (1 - cut) times today's."""
    pf = fit.purchases
    if pf.model == "Pareto/NBD":
        mean_p = pareto_nbd.leave_before_next_purchase(pf)
        target = (1 - cut) * mean_p

        def gap(log_c: float) -> float:
            params = {**pf.params, "beta": pf.beta / np.exp(log_c)}
            return pareto_nbd.leave_before_next_purchase(replace(pf, params=params)) - target

        log_c = optimize.brentq(gap, -30.0, 0.0, xtol=1e-14)
        better = replace(pf, params={**pf.params, "beta": pf.beta / np.exp(log_c)})
    else:
        a, b = pf.a, pf.b
        mean_p = a / (a + b)
        b_new = a / ((1 - cut) * mean_p) - a
        better = replace(pf, params={**pf.params, "b": b_new})
    now = fit.table["clv"].sum()
    then = clv.predictive_clv(
        better, fit.spend, segmented, econ, cost_per_order=fit.cost_per_order
    )["clv"].sum()
    return {"mean_dropout_now": mean_p, "mean_dropout_then": (1 - cut) * mean_p,
            "clv_now": float(now), "clv_then": float(then), "gain": float(then - now),
            "gain_share": float(then / now - 1)}  # fmt: skip
