"""One economics under every number: margin, returns, cost to serve, discounting and horizon.

Every notebook and the client report take these parameters from here (the client's values come
from its mapping, :func:`from_mapping`), so a margin, a discount rate or a horizon is named once.

Per order (``amount`` = money paid, net of ``discount``; list price = amount + discount):

* **gross margin rate** g = ``gross_margin_rate``: the share of the *list price* left after
  cost of goods - the one definition of the notebooks, the mapping and the client report. A
  discount is inside the amount paid, so it comes out of the margin; where no discount is known
  (a file without a ``discount`` column) the list price is the amount paid;
* **cost of goods** = (1 - g) x (amount + discount);
* **order margin** (margin after returns) = amount - cost of goods for a kept order, 0 for a
  returned one (refunded and restocked): :func:`order_margin`;
* **cost to serve** = shipping paid by the company on every order (shipping is free to the
  customer) + handling of each return + agent time per support ticket: :func:`customer_value`.

So margin after cost to serve = sum of order margins - shipping - returns handling - tickets. The
*net margin rate* is the share of the amount paid that is kept as order margin, a ratio of sums
over all orders: sum(order margin) / sum(amount) (returned orders count with margin 0).

Money over time: a yearly discount rate d_y is applied monthly, d_m = (1 + d_y)^(1/12) - 1, and a
cash flow k months ahead is worth (1 + d_m)^-k today (Gupta & Lehmann 2003 discount the same way).
Per-year figures are ratios of sums: sum(margin) / sum(years), with each customer's years floored
at ``min_tenure_days`` so a customer seen for 8 days does not come out at a yearly value 45x their
margin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from helpers import money, periods

__all__ = [
    "Economics",
    "SAMPLE",
    "from_mapping",
    "order_margin",
    "net_margin_rate",
    "OrderSums",
    "customer_value",
    "service_cost_per_order",
    "per_amount_paid",
    "per_year",
    "cash_flows",
    "cost_per_acquisition",
]

DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class Economics:
    """The economic assumptions behind every value figure (money in ``currency``).

    Attributes:
        gross_margin_rate: share of the list price (amount paid + discount) left after cost of
            goods; not a share of the amount paid (that is :func:`net_margin_rate`, which
            :func:`per_amount_paid` derives from it, after discounts and returns).
        shipping_per_order: what the company pays to ship one order (free to the customer).
        cost_per_ticket: agent time per support ticket.
        return_handling_cost: handling cost of one returned order (on top of the lost margin).
        yearly_discount_rate: the cost of capital used to discount future margin.
        horizon_months: how far ahead lifetime value is counted.
        min_tenure_days: the floor on a customer's observed time in per-year figures.
        currency: ISO 4217 code of every money figure.
        cost_per_contact: what one retention contact costs to send (an e-mail; the sample
            company's campaign log: 0.01 per e-mail, 0.08 per SMS).
    """

    gross_margin_rate: float = 0.45
    shipping_per_order: float = 4.50
    cost_per_ticket: float = 15.00
    return_handling_cost: float = 12.00
    yearly_discount_rate: float = 0.10
    horizon_months: int = 36
    min_tenure_days: int = 90
    currency: str = "EUR"
    cost_per_contact: float = 0.01

    def __post_init__(self) -> None:
        if not 0 < self.gross_margin_rate <= 1:
            raise ValueError(f"gross_margin_rate must be in (0, 1], got {self.gross_margin_rate}")
        costs = (self.shipping_per_order, self.cost_per_ticket, self.return_handling_cost)
        if min(costs) < 0:
            raise ValueError("costs must not be negative")
        if not 0 <= self.yearly_discount_rate < 1:
            raise ValueError(
                f"yearly_discount_rate must be in [0, 1), got {self.yearly_discount_rate}"
            )
        if self.horizon_months < 1 or self.min_tenure_days < 1:
            raise ValueError("horizon_months and min_tenure_days must be at least 1")

    @property
    def monthly_discount_rate(self) -> float:
        """d_m = (1 + d_y)^(1/12) - 1: the monthly rate equivalent to the yearly one."""
        return (1 + self.yearly_discount_rate) ** (1 / 12) - 1

    def discount_factors(self, months: np.ndarray | int | None = None) -> np.ndarray:
        """(1 + d_m)^-k for k = 1..months (default: the horizon), the value today of 1 unit of
        money received k months ahead."""
        k = np.arange(1, (self.horizon_months if months is None else int(months)) + 1)
        return (1 + self.monthly_discount_rate) ** -k.astype(float)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"monthly_discount_rate": self.monthly_discount_rate}

    def replace(self, **changes: Any) -> Economics:
        return replace(self, **changes)


#: The sample company's economics (Copperleaf Roasters; the generator's ``gross_margin_rate``).
SAMPLE = Economics()


def from_mapping(values: Mapping[str, Any] | None, base: Economics | None = None) -> Economics:
    """Economics from a client's mapping (its ``economics:`` block): unknown keys are refused with
    the list of valid ones; missing keys keep `base` (default: a client with no known service
    costs: margin 30 %, no shipping, ticket or return costs)."""
    base = base or Economics(
        gross_margin_rate=0.30,
        shipping_per_order=0.0,
        cost_per_ticket=0.0,
        return_handling_cost=0.0,
    )
    values = dict(values or {})
    valid = {f.name for f in fields(Economics)}
    unknown = sorted(set(values) - valid)
    if unknown:
        raise ValueError(f"unknown economics key(s) {unknown}; valid keys: {sorted(valid)}")
    return replace(base, **values)


def _col(orders: pd.DataFrame, name: str, default: float | bool) -> np.ndarray:
    if name in orders:
        s = orders[name]
        return s.fillna(default).to_numpy(bool if isinstance(default, bool) else float)
    return np.full(len(orders), default, dtype=bool if isinstance(default, bool) else float)


def order_margin(orders: pd.DataFrame, econ: Economics = SAMPLE) -> pd.Series:
    """Margin after returns of each order: amount - (1 - g)(amount + discount) if kept, 0 if
    ``returned`` (columns ``discount`` and ``returned`` are optional)."""
    amount = orders["amount"].to_numpy(float)
    gross = amount + _col(orders, "discount", 0.0)
    kept = ~_col(orders, "returned", False)
    margin = (amount - (1 - econ.gross_margin_rate) * gross) * kept
    return pd.Series(margin, index=orders.index, name="order_margin")


@dataclass(frozen=True)
class OrderSums:
    """What :func:`net_margin_rate`, :func:`service_cost_per_order` and :func:`per_amount_paid`
    read of the orders: the counts of orders and of returned ones, and the amounts paid and
    discounts summed over all orders, over the kept ones and over the returned ones (a missing
    discount 0, a missing ``returned`` False), each sum exact at the column's money scale
    (:func:`helpers.money.total`), so the same from pandas (:meth:`of`) and from an engine's
    one aggregate (:func:`helpers.report.engine.order_sums`), whatever the order of the rows."""

    orders: int
    returned: int
    amount: float
    kept_amount: float
    kept_discount: float
    returned_amount: float
    discount: float

    @classmethod
    def of(cls, orders: pd.DataFrame) -> OrderSums:
        """The sums of an orders frame (``amount``; ``discount`` and ``returned`` optional)."""
        amount = orders["amount"].to_numpy(float)
        discount = _col(orders, "discount", 0.0)
        kept = ~_col(orders, "returned", False)
        sa = money.scale(amount)
        sd = money.scale(discount) if "discount" in orders else 0
        return cls(
            orders=len(orders),
            returned=int((~kept).sum()),
            amount=money.total(amount, sa),
            kept_amount=money.total(amount[kept], sa),
            kept_discount=money.total(discount[kept], sd),
            returned_amount=money.total(amount[~kept], sa),
            discount=money.total(discount, sd),
        )


def _sums(orders: pd.DataFrame | OrderSums) -> OrderSums:
    return orders if isinstance(orders, OrderSums) else OrderSums.of(orders)


def net_margin_rate(orders: pd.DataFrame | OrderSums, econ: Economics = SAMPLE) -> float:
    """Share of the amount paid kept as order margin: sum(order margin) / sum(amount), over all
    orders (a returned order's amount counts, its margin is 0) - the rate that turns expected
    spend per order into expected margin per order. The order margin (:func:`order_margin`) is
    linear in the amounts, so its sum is taken from the sums of the kept orders,
    A_kept - (1 - g)(A_kept + D_kept), each exact (:class:`OrderSums`)."""
    t = _sums(orders)
    if t.amount <= 0:
        raise ValueError("no revenue: the net margin rate is undefined")
    g = econ.gross_margin_rate
    return float((t.kept_amount - (1 - g) * (t.kept_amount + t.kept_discount)) / t.amount)


def service_cost_per_order(
    orders: pd.DataFrame | OrderSums, tickets: pd.DataFrame | None = None, econ: Economics = SAMPLE
) -> float:
    """Average cost to serve one order: shipping + return handling x returns per order + cost
    per ticket x tickets per order."""
    t = _sums(orders)
    n = t.orders
    if n == 0:
        raise ValueError("no orders")
    returns = float(t.returned)
    n_tickets = 0 if tickets is None else len(tickets)
    return float(
        econ.shipping_per_order
        + econ.return_handling_cost * returns / n
        + econ.cost_per_ticket * n_tickets / n
    )


def per_amount_paid(
    orders: pd.DataFrame | OrderSums, tickets: pd.DataFrame | None = None, econ: Economics = SAMPLE
) -> Economics:
    """`econ` as a file of amounts paid carries it: the two numbers a predictive CLV needs per
    order, so that every lifetime value (notebook 04 and the client report) uses one definition,

        CLV margin per order = m x E[amount paid] - c,

    with m = :func:`net_margin_rate` (the share of the amount paid kept as order margin after
    discounts and returns) in ``gross_margin_rate`` and c = :func:`service_cost_per_order`
    (shipping + return handling x returns per order + cost per ticket x tickets per order) in
    ``shipping_per_order``; ``cost_per_ticket`` and ``return_handling_cost`` become 0 (they are
    inside c), everything else (discounting, horizon, contact cost) is kept.

    On orders without ``discount`` and ``returned`` columns and without tickets m =
    ``gross_margin_rate`` (the list price is the amount paid) and c = ``shipping_per_order``.
    Notebook 04 and the client report both fold with this function: the report on the columns
    and tables its mapping names (:func:`helpers.report.analysis.fold_economics`), so the
    sample mapping (``notebooks/08_sample_mapping.yaml``) carries :data:`SAMPLE` itself and the
    two value the sample company alike (tests/test_economics.py)."""
    sums = _sums(orders)  # the orders' sums once: an engine's aggregate, or a frame's
    return econ.replace(
        gross_margin_rate=net_margin_rate(sums, econ),
        shipping_per_order=service_cost_per_order(sums, tickets, econ),
        cost_per_ticket=0.0,
        return_handling_cost=0.0,
    )


def customer_value(
    orders: pd.DataFrame,
    tickets: pd.DataFrame | None = None,
    econ: Economics = SAMPLE,
    as_of: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Per customer (index ``customer_id``): what they brought and what they cost, to as-of.

    Columns (money in ``econ.currency``): ``revenue`` (amount of kept orders), ``product_margin``
    (g x list price of kept orders), ``discount_cost`` (discount of kept orders), ``margin``
    (order margin after returns = product_margin - discount_cost: the historical CLV before
    service), ``n_orders``, ``n_returns``, ``n_tickets``, ``shipping_cost``, ``ticket_cost``,
    ``return_cost``, ``cost_to_serve`` (discount + shipping + ticket + return cost, the
    discount counted as a cost of serving a discount-driven customer), ``margin_after_cost``
    (= margin - shipping - ticket - return cost), ``cts_ratio`` (cost_to_serve / product_margin),
    ``years`` (from the first order to the end of the as-of day, floored at ``min_tenure_days``)
    and ``margin_per_year`` = margin_after_cost / years.
    """
    as_of = periods.default_as_of(orders["order_date"]) if as_of is None else as_of
    o = periods.up_to(orders, as_of, "order_date")
    if o.empty:
        raise ValueError(f"no orders on or before {periods.as_of_day(as_of).date()}")
    kept = ~_col(o, "returned", False)
    amount = o["amount"].to_numpy(float)
    discount = _col(o, "discount", 0.0)
    per = pd.DataFrame(
        {
            "customer_id": o["customer_id"].to_numpy(),
            "revenue": amount * kept,
            "product_margin": econ.gross_margin_rate * (amount + discount) * kept,
            "discount_cost": discount * kept,
            "margin": order_margin(o, econ).to_numpy(),
            "n_orders": 1,
            "n_returns": (~kept).astype(int),
            "first_order": pd.to_datetime(o["order_date"]).to_numpy(),
        }
    )
    out = per.groupby("customer_id").agg(
        revenue=("revenue", "sum"), product_margin=("product_margin", "sum"),
        discount_cost=("discount_cost", "sum"), margin=("margin", "sum"),
        n_orders=("n_orders", "sum"), n_returns=("n_returns", "sum"), first_order=("first_order", "min"),
    )  # fmt: skip
    if tickets is not None and len(tickets):
        tk = periods.up_to(tickets, as_of, "opened_at")
        out["n_tickets"] = tk.groupby("customer_id").size().reindex(out.index, fill_value=0)
    else:
        out["n_tickets"] = 0
    out["n_tickets"] = out["n_tickets"].astype(int)
    out["shipping_cost"] = econ.shipping_per_order * out["n_orders"]
    out["ticket_cost"] = econ.cost_per_ticket * out["n_tickets"]
    out["return_cost"] = econ.return_handling_cost * out["n_returns"]
    out["cost_to_serve"] = out[
        ["discount_cost", "shipping_cost", "ticket_cost", "return_cost"]
    ].sum(axis=1)
    out["margin_after_cost"] = out["product_margin"] - out["cost_to_serve"]
    out["cts_ratio"] = out["cost_to_serve"] / out["product_margin"].where(out["product_margin"] > 0)
    days = (periods.as_of_end(as_of) - out["first_order"]) / pd.Timedelta(days=1)
    out["years"] = np.maximum(days, econ.min_tenure_days) / DAYS_PER_YEAR
    out["margin_per_year"] = out["margin_after_cost"] / out["years"]
    return out.drop(columns="first_order")


def per_year(values: pd.Series, years: pd.Series, by: pd.Series | None = None) -> float | pd.Series:
    """Yearly rate as a ratio of sums, sum(values) / sum(years) (overall, or per group of `by`):
    unlike a mean of per-customer ratios it is not dominated by customers seen for a few days."""
    if by is None:
        return float(values.sum() / years.sum())
    return values.groupby(by, observed=True).sum() / years.groupby(by, observed=True).sum()


def cash_flows(
    orders: pd.DataFrame, tickets: pd.DataFrame | None = None, econ: Economics = SAMPLE
) -> pd.DataFrame:
    """Every money event of a customer after acquisition, dated: columns ``customer_id``,
    ``date`` and ``value`` (in ``econ.currency``).

    An order brings its margin after returns minus what it costs to serve, order margin -
    shipping - return handling if returned (:func:`order_margin`); a support ticket costs
    ``cost_per_ticket`` (dated when opened). Summed per customer this is
    :func:`customer_value`'s ``margin_after_cost``, so a payback curve and a customer's value use
    the same economics."""
    value = (
        order_margin(orders, econ).to_numpy()
        - econ.shipping_per_order
        - econ.return_handling_cost * _col(orders, "returned", False)
    )
    parts = [
        pd.DataFrame(
            {
                "customer_id": orders["customer_id"].to_numpy(),
                "date": pd.to_datetime(orders["order_date"]).to_numpy(),
                "value": value,
            }
        )
    ]
    if tickets is not None and len(tickets):
        parts.append(
            pd.DataFrame(
                {
                    "customer_id": tickets["customer_id"].to_numpy(),
                    "date": pd.to_datetime(tickets["opened_at"]).to_numpy(),
                    "value": -econ.cost_per_ticket,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def cost_per_acquisition(
    spend: pd.DataFrame, by: str = "channel", level: float = 0.95
) -> pd.DataFrame:
    """Cost per acquired customer (CPA, CAC) per `by` group from a monthly spend table
    (columns `by`, ``spend``, ``signups``; one row per month and group).

    The estimate is the ratio of sums R = sum(spend_i) / sum(signups_i) over the m months i. Its
    standard error is the ratio estimator's linearized (sandwich) one, with the months as the
    sampling units (W. G. Cochran (1977), *Sampling Techniques*, 3rd ed., section 6.4):

        se(R)^2 = m / (m - 1) * sum_i (spend_i - R signups_i)^2 / (sum_i signups_i)^2,

    and the interval is R -/+ t_{m-1} se(R) (t quantile at `level`). It measures how much the
    cost per customer varies from month to month (spend noise, price changes), which a Poisson
    interval on the sign-up count alone would not.

    Returns one row per group: ``months``, ``spend``, ``signups``, ``cpa``, ``se``, ``ci_low``,
    ``ci_high``."""
    from scipy import stats

    d = spend[[by, "spend", "signups"]].astype({"spend": float, "signups": float})
    tot = d.groupby(by, sort=True)[["spend", "signups"]].sum()
    if (tot["signups"] <= 0).any():
        raise ValueError(f"no sign-ups in {list(tot.index[tot['signups'] <= 0])}")
    r = tot["spend"] / tot["signups"]
    resid2 = (d["spend"] - d[by].map(r) * d["signups"]) ** 2
    m = d.groupby(by, sort=True).size()
    se = np.sqrt(m / (m - 1) * resid2.groupby(d[by], sort=True).sum()) / tot["signups"]
    t = stats.t.ppf(0.5 + level / 2, m - 1)
    return pd.DataFrame(
        {"months": m, "spend": tot["spend"], "signups": tot["signups"].astype(int), "cpa": r,
         "se": se, "ci_low": r - t * se, "ci_high": r + t * se}
    )  # fmt: skip
