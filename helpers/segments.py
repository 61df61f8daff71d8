"""Customer segmentation: the RFM table and scores, named RFM segments, cost-to-serve and segment
profitability.

Time units. Two different "recencies" live side by side and users of other libraries trip on them:

* ``recency_days`` (RFM): calendar days from the customer's last order to the as-of date
  (0 = ordered on the as-of day). Smaller is better.
* ``recency`` (BTYD, as in the ``lifetimes`` package and Fader, Hardie & Lee 2005): the customer's
  *age at the last repeat purchase*, t_x = last order - first order, in the summary's time unit.
  Larger is better. ``T`` is the age at the end of the as-of day, T = (as_of + 1 day) - first
  order, and ``frequency`` x is the number of *repeat* orders (orders after the first).

The summary's time unit is one of :data:`TIME_UNITS` ('D' days, 'W' weeks, 'M' average months of
30.4375 days); it is stored in ``df.attrs["time_unit"]`` and the fitted BG/NBD rates are per that
unit (the sample data's ground truth alpha = 8.0 is per *week*).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import economics, money, periods
from helpers.economics import Economics

__all__ = [
    "TIME_UNITS",
    "unit_days",
    "rfm_table",
    "summary_from_aggregates",
    "rfm_scores",
    "SEGMENT_RULES",
    "assign_segments",
    "segment_summary",
    "summary_from_codes",
    "cost_to_serve",
    "segment_profitability",
    "spend_matched_split",
    "compare_segments",
    "PLAYBOOK",
    "action_table",
    "winback_list",
]

#: Length of one time unit in days: 'D' day, 'W' week, 'M' average Gregorian month (365.25 / 12).
TIME_UNITS: dict[str, float] = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}


def unit_days(time_unit: str) -> float:
    """Days in one `time_unit` ('D', 'W' or 'M'); a clear error for anything else."""
    try:
        return TIME_UNITS[time_unit]
    except KeyError:
        raise ValueError(
            f"time_unit must be one of {list(TIME_UNITS)} (days, weeks, 30.4375-day months); got {time_unit!r}"
        ) from None


def rfm_table(
    orders: pd.DataFrame,
    as_of: str | pd.Timestamp | None = None,
    time_unit: str = "W",
    *,
    customer_col: str = "customer_id",
    date_col: str = "order_date",
    amount_col: str = "amount",
) -> pd.DataFrame:
    """The per-customer summary: one row per customer (index `customer_id`, sorted) with RFM and
    BTYD columns, used by every notebook and the client report.

    Orders after the as-of day are ignored. Columns:

    * ``first_order``, ``last_order`` (timestamps), ``n_orders``;
    * ``recency_days``: whole calendar days from the last order's date to `as_of`;
      ``tenure_days``: from the first order's date to `as_of`;
    * ``monetary_total`` (sum of `amount`, EUR) and ``monetary_mean`` (mean over all orders);
    * BTYD summary in `time_unit`: ``frequency`` x = n_orders - 1 (repeat orders, each order
      counted, also two on one day), ``recency`` t_x = (last - first) / unit,
      ``T`` = (end of as-of day - first) / unit, and ``monetary_value`` = mean amount of the
      *repeat* orders (the first order excluded, the ``lifetimes`` convention; 0 when x = 0).
      If several orders share the first timestamp, their mean counts as the first order.

    ``df.attrs["time_unit"]`` and ``df.attrs["as_of"]`` record the unit and date.
    Vectorized: one factorization and ``np.bincount``/grouped min-max, O(n) in the orders.
    """
    unit_days(time_unit)  # an unknown unit is refused before any work
    as_of = periods.default_as_of(orders[date_col]) if as_of is None else as_of
    end = periods.as_of_end(as_of)
    t = pd.to_datetime(orders[date_col]).to_numpy("datetime64[ns]").view("i8")
    keep = t < end.value
    if not keep.any():
        raise ValueError(
            f"no orders on or before the as-of date {end.date() - pd.Timedelta(days=1)}"
        )
    codes, ids = periods.customer_codes(orders[customer_col], sort=True)
    amount = orders[amount_col].to_numpy(dtype=float)
    return summary_from_codes(codes, ids, t, amount, keep, as_of, time_unit, customer_col)


def summary_from_codes(
    codes: np.ndarray,
    ids: np.ndarray,
    t: np.ndarray,
    amount: np.ndarray,
    keep: np.ndarray,
    as_of: str | pd.Timestamp,
    time_unit: str,
    customer_col: str,
) -> pd.DataFrame:
    """:func:`rfm_table` from customer codes (sorted ids, :func:`helpers.periods.customer_codes`
    of all rows), order times (int64 ns) and amounts, over the rows where `keep`. The amounts
    are summed exactly at their scale (:mod:`helpers.money`): the same totals in any row order,
    and the same as the report's engine gives."""
    if not keep.all():
        codes, t, amount = codes[keep], t[keep], amount[keep]
        present = np.zeros(len(ids), dtype=bool)
        present[codes] = True
        if not present.all():  # customers with no order up to as-of: renumber (order kept)
            codes = np.take(np.cumsum(present) - 1, codes)
            ids = ids[present]
    n_cust = len(ids)
    n = np.bincount(codes, minlength=n_cust)
    s = money.scale(amount)  # the amounts summed exactly: the same in any row order
    total = money.group_sum(amount, codes, n_cust, s)
    first = np.full(n_cust, np.iinfo(np.int64).max)
    last = np.full(n_cust, np.iinfo(np.int64).min)
    np.minimum.at(first, codes, t)
    np.maximum.at(last, codes, t)
    at_first = t == first[codes]
    n_first = np.bincount(codes[at_first], minlength=n_cust)
    first_amount = money.group_sum(amount[at_first], codes[at_first], n_cust, s) / n_first
    return summary_from_aggregates(
        ids, first, last, n, total, first_amount, as_of, time_unit, customer_col
    )


def summary_from_aggregates(
    ids: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    n: np.ndarray,
    total: np.ndarray,
    first_amount: np.ndarray,
    as_of: str | pd.Timestamp,
    time_unit: str = "W",
    customer_col: str = "customer_id",
) -> pd.DataFrame:
    """The per-customer summary's columns (see :func:`rfm_table`) from per-customer aggregates:
    first and last order times (int64 ns), number of orders, total amount and the mean amount at
    the first timestamp. x = n - 1, t_x = (last - first) / unit, T = (end of as-of day - first) /
    unit, repeat mean = (total - first amount) / x (Fader, Hardie & Lee 2005). One definition,
    used by the pandas summary and by the report's engine (helpers.report.engine)."""
    end = periods.as_of_end(as_of)
    unit_ns = unit_days(time_unit) * 86400e9
    day_ns = 86400 * 10**9
    x = n - 1
    out = pd.DataFrame(
        {
            "first_order": first.view("datetime64[ns]"),
            "last_order": last.view("datetime64[ns]"),
            "n_orders": n,
            "recency_days": (end.value - day_ns) // day_ns - last // day_ns,
            "tenure_days": (end.value - day_ns) // day_ns - first // day_ns,
            "monetary_total": total,
            "monetary_mean": total / n,
            "frequency": x,
            "recency": (last - first) / unit_ns,
            "T": (end.value - first) / unit_ns,
            "monetary_value": np.where(x > 0, (total - first_amount) / np.maximum(x, 1), 0.0),
        },
        index=pd.Index(ids, name=customer_col),
        copy=False,  # the new arrays as they are: not consolidated into one copy (8.4M rows: 3.5 s)
    )
    out.attrs.update(time_unit=time_unit, as_of=str((end - pd.Timedelta(days=1)).date()))
    return out


def _quantile_score(values: pd.Series, bins: int, higher_is_better: bool) -> pd.Series:
    """Score 1..bins by rank: score = 1 + floor(bins * (rank_min - 1) / n).

    `rank_min` is the 'min' rank, so equal values always get the same score (ties never split,
    whatever the row order) and the lowest value gets 1. With heavy ties some scores stay empty.
    """
    v = values if higher_is_better else -values
    rank = v.rank(method="min").to_numpy()
    score = 1 + np.floor(bins * (rank - 1) / len(v)).astype(int)
    return pd.Series(np.clip(score, 1, bins), index=values.index)


def rfm_scores(
    rfm: pd.DataFrame, bins: int = 5, *, monetary: str = "monetary_total"
) -> pd.DataFrame:
    """R, F and M scores 1..`bins` by quantiles of `recency_days` (fewer days = higher R),
    `n_orders` and `monetary` (default total spend), with ties handled deterministically
    (equal values share the lower score; see :func:`_quantile_score`).

    Adds ``R``, ``F``, ``M``, ``FM`` = ceil((F + M) / 2) and the label ``RFM`` (e.g. '545').
    """
    out = rfm.copy(deep=False)  # new columns only: `rfm` is not changed (no copy of its rows)
    out["R"] = _quantile_score(rfm["recency_days"], bins, higher_is_better=False)
    out["F"] = _quantile_score(rfm["n_orders"], bins, higher_is_better=True)
    out["M"] = _quantile_score(rfm[monetary], bins, higher_is_better=True)
    out["FM"] = (out["F"] + out["M"] + 1) // 2
    if bins <= 9:  # one digit per score: the label from a table of the bins^3 labels
        digits = np.arange(1, bins + 1).astype(str).astype(object)
        labels = (digits[:, None, None] + digits[None, :, None] + digits[None, None, :]).ravel()
        code = ((out["R"] - 1) * bins + (out["F"] - 1)) * bins + (out["M"] - 1)
        out["RFM"] = pd.Series(labels[code.to_numpy()], index=out.index)
    else:
        out["RFM"] = out["R"].astype(str) + out["F"].astype(str) + out["M"].astype(str)
    return out


#: The default score map: ranges (inclusive) of R and FM = ceil((F + M) / 2). Rules are read top
#: to bottom and the first match wins; the 25 (R, FM) cells of a 5-bin scoring are all covered.
#: Override with a table of the same columns (segment, r_min, r_max, fm_min, fm_max).
SEGMENT_RULES: pd.DataFrame = pd.DataFrame(
    [
        ("Champions", 5, 5, 4, 5),
        ("Loyal", 3, 4, 4, 5),
        ("Can't lose them", 1, 2, 5, 5),
        ("At risk", 1, 2, 3, 4),
        ("Potential loyalists", 4, 5, 2, 3),
        ("New", 5, 5, 1, 1),
        ("Promising", 4, 4, 1, 1),
        ("Need attention", 3, 3, 3, 3),
        ("About to sleep", 3, 3, 1, 2),
        ("Hibernating", 2, 2, 1, 2),
        ("Lost", 1, 1, 1, 2),
    ],
    columns=["segment", "r_min", "r_max", "fm_min", "fm_max"],
)


def assign_segments(
    scored: pd.DataFrame, rules: pd.DataFrame | None = None, default: str = "Other"
) -> pd.DataFrame:
    """Add a categorical ``segment`` column from ``R`` and ``FM`` using `rules` (default
    :data:`SEGMENT_RULES`): first matching row wins, `default` when none matches. The category
    order follows the rule table."""
    rules = SEGMENT_RULES if rules is None else rules
    need = {"segment", "r_min", "r_max", "fm_min", "fm_max"}
    if not need <= set(rules.columns):
        raise ValueError(
            f"segment rules need the columns {sorted(need)}; got {list(rules.columns)}"
        )
    r, fm = scored["R"].to_numpy()[:, None], scored["FM"].to_numpy()[:, None]
    hit = (
        (r >= rules["r_min"].to_numpy())
        & (r <= rules["r_max"].to_numpy())
        & (fm >= rules["fm_min"].to_numpy())
        & (fm <= rules["fm_max"].to_numpy())
    )
    names = list(dict.fromkeys(rules["segment"]))
    label = np.where(hit.any(axis=1), rules["segment"].to_numpy()[hit.argmax(axis=1)], default)
    cats = names + ([default] if (label == default).any() else [])
    out = scored.copy(deep=False)  # a new column only: `scored` is not changed
    out["segment"] = pd.Categorical(label, categories=cats)
    return out


def segment_summary(
    df: pd.DataFrame, value_col: str = "monetary_total", segment_col: str = "segment"
) -> pd.DataFrame:
    """Per segment: customers, share of customers, total `value_col`, share of value, and the
    mean recency_days, n_orders and monetary_mean (segment profile). Sorted by value share."""
    g = df.groupby(segment_col, observed=True)
    out = pd.DataFrame(
        {
            "customers": g.size(),
            "value": g[value_col].sum(),
            "recency_days": g["recency_days"].mean(),
            "n_orders": g["n_orders"].mean(),
            "monetary_mean": g["monetary_mean"].mean(),
        }
    )
    out.insert(1, "customer_share", out["customers"] / out["customers"].sum())
    out.insert(3, "value_share", out["value"] / out["value"].sum())
    return out.sort_values("value_share", ascending=False)


def cost_to_serve(
    orders: pd.DataFrame,
    tickets: pd.DataFrame | None = None,
    econ: Economics = economics.SAMPLE,
    as_of: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Per customer revenue, margin and the cost of serving them: :func:`helpers.economics.customer_value`
    (one definition of margin, returns, shipping, tickets and per-year figures)."""
    return economics.customer_value(orders, tickets, econ, as_of)


def segment_profitability(cts: pd.DataFrame, segment: pd.Series | str) -> pd.DataFrame:
    """Per segment: customers, and per customer revenue, product margin, each cost, cost to
    serve and margin after cost; the segment's total margin after cost; cts_ratio =
    cost_to_serve / product_margin and margin_per_year = sum(margin after cost) / sum(years),
    both ratios of the segment's sums (a mean of per-customer ratios would let a customer seen
    for a few days dominate; years are floored at ``Economics.min_tenure_days``)."""
    key = cts[segment] if isinstance(segment, str) else segment.reindex(cts.index)
    cols = [
        "revenue",
        "product_margin",
        "discount_cost",
        "shipping_cost",
        "ticket_cost",
        "return_cost",
        "cost_to_serve",
        "margin_after_cost",
    ]
    g = cts[cols + ["years"]].groupby(key.rename("segment"), observed=True)
    out = g[cols].mean().add_suffix("_per_customer")
    out.insert(0, "customers", g.size())
    totals = g[["cost_to_serve", "product_margin", "margin_after_cost", "years"]].sum()
    out["total_margin_after_cost"] = totals["margin_after_cost"]
    out["cts_ratio"] = totals["cost_to_serve"] / totals["product_margin"]
    out["margin_per_year"] = totals["margin_after_cost"] / totals["years"]
    return out


def spend_matched_split(
    cts: pd.DataFrame,
    revenue_range: tuple[float, float],
    top_share: float = 0.2,
    by: str = "cts_ratio",
) -> pd.Series:
    """Two groups that spend about the same: customers whose `revenue` lies in
    [low, high) EUR, labelled 'high cost' (the `top_share` with the highest `by`, default the
    cost to serve per euro of product margin; ties broken by customer order) or 'typical'.
    Customers outside the range are left out."""
    lo, hi = revenue_range
    band = cts[(cts["revenue"] >= lo) & (cts["revenue"] < hi)]
    if band.empty:
        raise ValueError(f"no customers with revenue in [{lo}, {hi}) EUR")
    high = band[by].rank(method="first", pct=True) > 1 - top_share
    return pd.Series(np.where(high, "high cost", "typical"), index=band.index, name="group")


def compare_segments(
    prof: pd.DataFrame, a: str, b: str, retention_lift: float = 0.05
) -> pd.DataFrame:
    """The playbook question "two segments spend about the same, one costs far more to keep:
    where should the retention budget go?", in numbers, from :func:`segment_profitability`.

    For each of `a` and `b`: revenue, cost to serve and margin after cost per customer, the cost
    multiple (cost to serve / that of the cheaper one), and the yearly margin saved by keeping
    `retention_lift` (e.g. 5 points) more of the segment's customers for a year:
    value = retention_lift x customers x margin_per_year. A euro of retention budget earns most
    where margin per year (after cost to serve) is highest.
    """
    rows = prof.loc[[a, b]]
    out = pd.DataFrame(
        {
            "customers": rows["customers"],
            "revenue_per_customer": rows["revenue_per_customer"],
            "cost_to_serve_per_customer": rows["cost_to_serve_per_customer"],
            "margin_after_cost_per_customer": rows["margin_after_cost_per_customer"],
            "margin_per_year": rows["margin_per_year"],
        }
    )
    out["cost_multiple"] = (
        out["cost_to_serve_per_customer"] / out["cost_to_serve_per_customer"].min()
    )
    out["value_of_lift_per_year"] = retention_lift * out["customers"] * out["margin_per_year"]
    out["value_of_lift_per_customer_kept"] = out["margin_per_year"]
    return out


#: Default retention playbook: who gets what, its cost per targeted customer (EUR) and its assumed
#: effect: ``clv_uplift``, a relative increase of the customer's predicted CLV (keeping valuable
#: customers longer), and ``extra_orders``, extra orders per targeted customer (reactivation; the
#: sample company's randomized win-back e-mails caused about 0.05). Assumptions to replace with
#: your own test results; 'target' is 'top_clv_decile' or an RFM segment name.
PLAYBOOK: pd.DataFrame = pd.DataFrame(
    [
        ("top_clv_decile", "VIP treatment: early access and a thank-you gift", 6.0, 0.10, 0.0),
        ("Can't lose them", "Personal call and a win-back offer", 3.0, 0.0, 0.15),
        ("At risk", "'We miss you' e-mail with a 15 % voucher", 0.5, 0.0, 0.05),
        ("About to sleep", "Reminder with product recommendations", 0.1, 0.0, 0.02),
        ("Lost", "Nothing: no retention budget", 0.0, 0.0, 0.0),
    ],
    columns=["target", "tactic", "cost_per_customer", "clv_uplift", "extra_orders"],
)


def action_table(
    df: pd.DataFrame,
    playbook: pd.DataFrame | None = None,
    clv_col: str = "clv",
    order_margin_col: str = "order_margin",
    segment_col: str = "segment",
) -> pd.DataFrame:
    """Expected value of each retention tactic of `playbook` (default :data:`PLAYBOOK`), EUR.

    Targets are taken in playbook order and a customer gets only the first tactic that targets
    them ('top_clv_decile' = the 10 % highest `clv_col`). Per tactic, over its customers:
    gain = sum(clv_uplift x clv + extra_orders x order_margin) with `order_margin_col` the
    expected margin of one order (e.g. margin x Gamma-Gamma expected spend),
    cost = customers x cost_per_customer, expected_value = gain - cost, roi = value / cost, and
    ``break_even``: the effect at which the tactic just pays, cost / sum(clv) for a CLV uplift or
    cost / sum(order_margin) for extra orders (compare it with the assumed effect: an assumption
    above its break-even is what makes the tactic "pay").
    """
    pb = PLAYBOOK if playbook is None else playbook
    clv = df[clv_col]
    om = df[order_margin_col] if order_margin_col in df else pd.Series(0.0, index=df.index)
    top = clv >= clv.quantile(0.9)
    seg = df[segment_col].astype(str)
    taken = pd.Series(False, index=df.index)
    rows = []
    for t in pb.itertuples(index=False):  # a handful of playbook rows, not customers
        mask = (top if t.target == "top_clv_decile" else seg.eq(t.target)) & ~taken
        taken |= mask
        n = int(mask.sum())
        gain = float(t.clv_uplift * clv[mask].sum() + t.extra_orders * om[mask].sum())
        cost = float(t.cost_per_customer * n)
        base = (
            clv[mask].sum()
            if t.clv_uplift > 0
            else om[mask].sum()
            if t.extra_orders > 0
            else np.nan
        )
        effect = t.clv_uplift if t.clv_uplift > 0 else t.extra_orders
        rows.append({"target": t.target, "tactic": t.tactic, "customers": n,
                     "mean_clv": float(clv[mask].mean()) if n else 0.0, "cost": cost,
                     "expected_gain": gain, "expected_value": gain - cost,
                     "roi": (gain - cost) / cost if cost > 0 else np.nan, "assumed_effect": effect,
                     "break_even": cost / base if cost > 0 and base > 0 else np.nan})  # fmt: skip
    return pd.DataFrame(rows).set_index("target")


def winback_mask(
    segmented: pd.DataFrame, quiet: tuple[str, ...] = ("Can't lose them", "At risk")
) -> np.ndarray:
    """Which customers of `segmented` :func:`winback_list` lists: those of the `quiet` segments
    (compared as categories: no text per customer, at 8.4M customers 5 s less than a look-up
    of the list's ids)."""
    return segmented["segment"].isin(quiet).to_numpy()


def winback_list(
    segmented: pd.DataFrame,
    clv: pd.DataFrame | None = None,
    quiet: tuple[str, ...] = ("Can't lose them", "At risk"),
) -> pd.DataFrame:
    """The win-back list: customers of the `quiet` RFM segments (valuable in the past, not buying
    lately), ranked by the expected value of winning them back, their predicted margin ``clv``
    (P(alive) x what an active customer of their profile brings; :func:`helpers.clv.predictive_clv`),
    highest first; without a CLV table, by total spend (the past, which says nothing about who is
    still active). Notebook 04 and the client report use this one ranking.

    The ranking is found on the sort keys alone (pandas' stable sort) and the listed rows are
    taken once, in their final order: at 8.4M customers a selection, a join and a sort were
    three copies of the list and a look-up of every id. With `clv` indexed like `segmented`
    (the report's) its columns are taken by position, else joined on the ids."""
    pos = np.flatnonzero(winback_mask(segmented, quiet))
    if clv is None:
        by, up = ["monetary_total", "recency_days"], [False, True]
        return segmented.take(pos[_stable_order(segmented, pos, {}, by, up)])
    shown = [c for c in ("p_alive", "p_purchase_12m", "clv") if c in clv and c not in segmented]
    if not (clv.index is segmented.index or clv.index.equals(segmented.index)):
        out = segmented.iloc[pos].join(clv[shown])
        out = out.sort_values(["clv", "monetary_total"], ascending=[False, False], kind="stable")
        out.attrs = dict(segmented.attrs)  # the summary's, as below (a join drops them)
        return out
    extra = {c: clv[c].to_numpy()[pos] for c in shown}
    order = _stable_order(segmented, pos, extra, ["clv", "monetary_total"], [False, False])
    out = segmented.take(pos[order])
    for c, values in extra.items():
        out[c] = values[order]
    return out


def _stable_order(
    frame: pd.DataFrame,
    pos: np.ndarray,
    extra: dict[str, np.ndarray],
    by: list[str],
    ascending: list[bool],
) -> np.ndarray:
    """The order of the rows `pos` of `frame` (with the columns `extra`, already at `pos`) that
    ``sort_values(by, ascending=ascending, kind="stable")`` gives: pandas' own sort, run on the
    key columns alone."""
    keys = pd.DataFrame({c: extra[c] if c in extra else frame[c].to_numpy()[pos] for c in by})
    return keys.sort_values(by, ascending=ascending, kind="stable").index.to_numpy()
