"""The client report's heavy aggregations as backend-neutral Ibis expressions.

The same expressions run on DuckDB (the default: embedded, no server), on a client's warehouse
(Postgres, BigQuery, Snowflake) and on Spark: only the Ibis connection differs. Each function
takes an order table (an Ibis table, or a pandas DataFrame that is registered on an embedded
DuckDB) with the canonical columns ``customer_id``, ``order_date`` (timestamp) and ``amount``,
lets the engine reduce the orders to one row per customer or per (customer, period), and shapes
that small result in pandas exactly as the teaching helpers do:

* :func:`customer_summary` equals :func:`helpers.segments.rfm_table` (RFM and BTYD columns);
* :func:`period_retention` equals :func:`helpers.retention.period_retention`;
* :func:`cohort_table` equals :func:`helpers.cohorts.cohort_table` (without ``by``);
* :func:`headline` equals :func:`helpers.report.analysis.headline`;
* :func:`calibration_holdout` equals :func:`helpers.clv.calibration_holdout`;
* :func:`customer_totals` equals a pandas group-by sum of the amounts per customer;
* :func:`btyd_summary` (an Ibis table, one row per customer) equals
  :func:`helpers.btyd.at_resolution` of :func:`helpers.segments.rfm_table`;
  :func:`distinct_patterns` returns its distinct (x, t_x, T) rows with their counts, on which the
  purchase models are fitted (``weights="customers"``), and :func:`predictive_clv` computes
  :func:`helpers.clv.predictive_clv` per distinct row and joins it back to the customers in the
  engine (equal per customer).

The client report runs them on the validated table (:func:`connect` and :func:`from_arrow`: the
memory-mapped Arrow file scanned in place by an embedded DuckDB with a memory limit), so the
orders are never held in pandas; :mod:`helpers.report.analysis` dispatches to them when it is
given an Ibis table.

Definitions (as-of, period codes, the censoring rule: a period counts only once it has ended on
or before as-of) are those of :mod:`helpers.periods`; ``tests/report/test_engine.py`` holds both sides
equal on the bundled orders and on random order tables.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from helpers import btyd, economics, periods, segments

__all__ = [
    "connect",
    "from_arrow",
    "spark_connect",
    "on_spark",
    "is_table",
    "table_of",
    "as_table",
    "purchases",
    "headline",
    "calibration_holdout",
    "customer_totals",
    "period_code",
    "default_as_of",
    "customer_summary",
    "period_retention",
    "cohort_table",
    "btyd_summary",
    "distinct_patterns",
    "join_patterns",
    "predictive_clv",
    "PATTERN_KEYS",
]

_EPOCH = dt.date(1970, 1, 1)
_DAY_NS = 86_400 * 10**9


#: DuckDB's memory limit for the report's aggregations, per order row (at least 500 MB, at most
#: half the machine's memory): 500 MB at 10M orders keeps the report's peak under 2 GB
#: (issue 16; benchmarks/README.md); at 100M orders (10M customers) 500 MB was too little for
#: what DuckDB cannot spill, so the limit grows with the data.
MEMORY_PER_ROW = 50
MIN_MEMORY_MB = 500


def memory_limit(rows: int) -> str:
    """DuckDB's memory limit for a table of `rows` orders: :data:`MEMORY_PER_ROW` bytes a row,
    at least :data:`MIN_MEMORY_MB` and at most half the machine's memory."""
    import os

    try:
        machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):  # not POSIX: assume 8 GB
        machine = 8192
    mb = max(MIN_MEMORY_MB, min(rows * MEMORY_PER_ROW // 2**20, machine // 2))
    return f"{mb}MB"


def connect(memory_limit: str | None = "500MB") -> ibis.BaseBackend:
    """An embedded DuckDB for the report's aggregations (in memory, no server), with
    `memory_limit` (None: DuckDB's default, 80 % of the machine's memory); above it DuckDB
    spills to ``retention-lab-duckdb`` in the system's temporary folder (removed on close).
    Results are ordered where it matters (``order_by``), so DuckDB need not keep rows in
    insertion order (less memory)."""
    import tempfile

    con = ibis.duckdb.connect()
    if memory_limit:
        con.raw_sql(f"SET memory_limit = '{memory_limit}'")
    con.raw_sql("SET preserve_insertion_order = false")
    # what does not fit spills to the system's temporary folder, not to .tmp/ in the working one
    spill = Path(tempfile.gettempdir()) / "retention-lab-duckdb"
    con.raw_sql(f"SET temp_directory = '{spill.as_posix()}'")
    return con


def from_arrow(
    table: pa.Table, con: ibis.BaseBackend | None = None, name: str = "orders"
) -> ir.Table:
    """An Ibis table over an Arrow table (e.g. a memory-mapped file) that DuckDB scans in place:
    nothing is copied, and only the columns a query uses are read."""
    import warnings

    con = con if con is not None else connect(memory_limit(table.num_rows))
    con.con.register(name, table)
    with warnings.catch_warnings():  # Ibis 12 reads the schema with a DuckDB 2.0-deprecated call
        warnings.simplefilter("ignore", DeprecationWarning)
        return con.table(name)


def spark_connect(partitions: int = 4) -> ibis.BaseBackend:
    """An Ibis connection to a local Spark session (``local[*]``; PySpark and Java needed:
    ``make test-spark`` installs them): session time zone UTC (timestamps as written, as in
    DuckDB), `partitions` shuffle partitions, no UI. On a cluster, connect Ibis to its session
    instead (``ibis.pyspark.connect(session)``); the expressions are the same."""
    import tempfile

    from pyspark.sql import SparkSession

    # nothing is written there (views only), but Spark must not make it in the working folder
    warehouse = Path(tempfile.gettempdir()) / "retention-lab-spark-warehouse"
    session = (
        SparkSession.builder.master("local[*]")
        .config("spark.sql.warehouse.dir", warehouse.as_posix())
        .appName("retention-lab-report")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")  # no progress bars on standard error
        .config("spark.sql.shuffle.partitions", str(partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return ibis.pyspark.connect(session)


def on_spark(
    table: pa.Table, con: ibis.BaseBackend | None = None, name: str = "orders"
) -> ir.Table:
    """The orders (an Arrow table) as a temporary view of a Spark session (:func:`spark_connect`)
    and an Ibis table over it: the report's aggregations then run on Spark (nothing written)."""
    con = con if con is not None else spark_connect()
    # a temporary view (in memory, gone with the session), not Ibis's create_table: that writes
    # a managed table into the warehouse folder
    con._session.createDataFrame(table.to_pandas()).createOrReplaceTempView(name)
    return con.table(name)


def table_of(con: ibis.BaseBackend, name: str) -> ir.Table:
    """The table `name` of the engine `con` (created there, e.g. by
    :func:`helpers.tables.duckdb_reader.read_into`) as an Ibis table."""
    import warnings

    with warnings.catch_warnings():  # Ibis 12 reads the schema with a DuckDB 2.0-deprecated call
        warnings.simplefilter("ignore", DeprecationWarning)
        return con.table(name)


def is_table(obj: object) -> bool:
    """True for an Ibis table expression (the engine's input), False for a pandas DataFrame."""
    return isinstance(obj, ir.Table)


def as_table(orders: ir.Table | pd.DataFrame) -> ir.Table:
    """An Ibis table: `orders` itself, or a pandas DataFrame registered on embedded DuckDB."""
    if isinstance(orders, ir.Table):
        return orders
    return ibis.memtable(orders)


def period_code(ts: ir.TimestampValue, freq: str) -> ir.IntegerValue:
    """Integer period of each timestamp, equal to :func:`helpers.periods.period_codes` (the pandas
    ``Period`` ordinal): days since 1970-01-01 ("D"), Monday-to-Sunday weeks ("W": (days + 3) // 7
    + 1, because 1970-01-01 was a Thursday), months ((year - 1970) * 12 + month - 1) or quarters."""
    if freq not in periods.FREQS:
        raise ValueError(f"freq must be one of {sorted(periods.FREQS)}, got {freq!r}")
    if freq in ("D", "W"):
        days = ts.date().delta(ibis.date(_EPOCH), unit="day")
        return days if freq == "D" else (days + 3) // 7 + 1
    months = (ts.year() - 1970) * 12 + ts.month() - 1
    return months if freq == "M" else months // 3


def default_as_of(t: ir.Table, date_col: str = "order_date") -> pd.Timestamp:
    """The day of the last order (as :func:`helpers.periods.default_as_of`), from the engine."""
    last = t[date_col].max().to_pandas()
    if last is None or pd.isna(last):
        raise ValueError("no dates: the table is empty")
    return pd.Timestamp(last).normalize()


def _up_to(t: ir.Table, as_of: str | pd.Timestamp, date_col: str) -> ir.Table:
    end = periods.as_of_end(as_of).to_pydatetime()
    return t.filter(t[date_col] < ibis.timestamp(end))


def _customer_aggregates(
    t: ir.Table, customer_col: str, date_col: str, amount_col: str
) -> ir.Table:
    """The per-customer figures every summary is made of, as one engine expression (nothing
    computed): `customer_col`, ``first_order`` and ``last_order`` (the first and last order
    times), ``n_orders``, ``monetary_total`` (the sum of the amounts) and ``first_amount`` (the
    mean amount of the orders at the first time) of the orders `t` (already cut at the as-of
    date). :func:`customer_summary` (RFM and BTYD columns) and :func:`btyd_summary` (x, t_x and
    T at a resolution) both start from it."""
    c, d, a = t[customer_col], t[date_col], t[amount_col].cast("float64")
    agg = t.group_by(customer_col).agg(
        first_order=d.min(), last_order=d.max(), n_orders=c.count(), monetary_total=a.sum()
    )
    at_first = t.join(agg.select(customer_col, "first_order"), customer_col)
    first_amt = (
        at_first.filter(at_first[date_col] == at_first.first_order)
        .group_by(customer_col)
        .agg(first_amount=lambda s: s[amount_col].cast("float64").mean())
    )
    return agg.join(first_amt, customer_col)


def customer_summary(
    orders: ir.Table | pd.DataFrame,
    as_of: str | pd.Timestamp | None = None,
    time_unit: str = "W",
    *,
    customer_col: str = "customer_id",
    date_col: str = "order_date",
    amount_col: str = "amount",
) -> pd.DataFrame:
    """The per-customer summary of :func:`helpers.segments.rfm_table`, aggregated by the engine.

    The engine returns per customer: first and last order time, number of orders, total amount
    and the mean amount of the orders at the first timestamp; the RFM and BTYD columns follow from
    these (x = n - 1, t_x = (last - first) / unit, T = (end of as-of day - first) / unit,
    repeat mean = (total - first amount) / x; Fader, Hardie & Lee 2005)."""
    segments.unit_days(time_unit)  # an unknown unit is refused before any work
    if as_of is None:  # the one default (helpers.periods): the day of the last row
        as_of = periods.default_as_of([as_table(orders)[date_col].max().to_pyarrow().as_py()])
    end = periods.as_of_end(as_of)
    t = _up_to(as_table(orders), as_of, date_col)
    agg = _customer_aggregates(t, customer_col, date_col, amount_col)
    df = agg.order_by(customer_col).to_pandas()
    if df.empty:
        raise ValueError(
            f"no orders on or before the as-of date {end.date() - pd.Timedelta(days=1)}"
        )
    return segments.summary_from_aggregates(
        df[customer_col].to_numpy(),
        df["first_order"].to_numpy("datetime64[ns]").view("i8"),
        df["last_order"].to_numpy("datetime64[ns]").view("i8"),
        df["n_orders"].to_numpy(np.int64),
        df["monetary_total"].to_numpy(float),
        df["first_amount"].to_numpy(float),
        as_of,
        time_unit,
        customer_col,
    )


def _activity(
    orders: ir.Table | pd.DataFrame,
    freq: str,
    as_of: str | pd.Timestamp | None,
    complete_only: bool,
    customer_col: str,
    date_col: str,
    amount_col: str | None,
) -> tuple[ir.Table, pd.Timestamp, int]:
    """One row per (customer, period) with an order: ``customer_id``, ``p`` and (with an amount
    column) ``rev``, the period's revenue; orders after as-of dropped, and with `complete_only`
    those in the partial period after the last complete one (the censoring rule)."""
    t = as_table(orders)
    if as_of is None:
        as_of = default_as_of(t, date_col)
    t = _up_to(t, as_of, date_col)
    last = periods.last_complete_period(as_of, freq)
    t = t.select(
        customer_id=t[customer_col],
        p=period_code(t[date_col], freq),
        **({"amount": t[amount_col].cast("float64")} if amount_col else {}),
    )
    if complete_only:
        t = t.filter(t.p <= last)
    metrics = {"rev": t.amount.sum()} if amount_col else {"n": t.count()}
    return t.group_by(["customer_id", "p"]).agg(**metrics), pd.Timestamp(as_of), last


def period_retention(
    orders: ir.Table | pd.DataFrame,
    freq: str = "M",
    as_of: str | pd.Timestamp | None = None,
    complete_only: bool = True,
) -> pd.DataFrame:
    """:func:`helpers.retention.period_retention` with the engine doing the work.

    Per period p the engine counts the customers active in p (E), and over the customers active
    in p - 1: those also active in p (retained, E - N), their revenue in p and the sum of
    min(revenue in p, revenue in p - 1) (net and gross revenue retention; a customer lost in p
    adds 0 to both); the new customers (first period = p) and the period's revenue;
    S(p) = E(p - 1). One pass: a window gives each (customer, period) the customer's previous
    active period and its revenue. Rates: retention = (E - N) / S, churn = 1 - retention."""
    act, as_of, last = _activity(
        orders, freq, as_of, complete_only, "customer_id", "order_date", "amount"
    )
    # each customer's previous and next active period (a window, not a self-join): a row without
    # a previous one is the customer's first period (new); one at p - 1 is a retained customer;
    # without one at p + 1 the customer is lost in p + 1 and adds min(0, revenue) to its GRR
    w = ibis.window(group_by="customer_id", order_by="p")
    act = act.mutate(
        p_prev=act.p.lag().over(w), rev_prev=act.rev.lag().over(w), p_next=act.p.lead().over(w)
    )
    kept = act.p_prev == act.p - 1
    lost = act.p_next.isnull() | (act.p_next != act.p + 1)
    per = (
        act.group_by("p")
        .agg(
            customers_end=act.count(),
            revenue=act.rev.sum(),
            new=act.count(where=act.p_prev.isnull()),
            retained=act.count(where=kept),
            revenue_retained=act.rev.sum(where=kept),
            revenue_capped=ibis.least(act.rev, act.rev_prev).sum(where=kept),
            lost_capped=ibis.least(act.rev, 0.0).sum(where=lost),  # negative revenue only
        )
        .to_pandas()
        .set_index("p")
        .sort_index()
    )
    if per.empty:
        if complete_only:
            raise ValueError(
                f"no complete {periods.FREQS[freq]} of orders on or before "
                f"{periods.as_of_day(as_of).date()}"
            )
        raise ValueError("no orders on or before the as-of date")
    lo = int(per.index.min())
    hi = last if complete_only else max(int(per.index.max()), last)
    idx = pd.RangeIndex(lo, hi + 1)
    per = per.reindex(idx).fillna(0)  # a period without purchases: zeros (null sums too)
    out = pd.DataFrame(index=idx)
    out["customers_start"] = per["customers_end"].shift(1, fill_value=0)
    out["customers_end"] = per["customers_end"]
    out["new"] = per["new"]
    out["retained"] = per["retained"]
    out["reactivated"] = out["customers_end"] - out["retained"] - out["new"]
    start = out["customers_start"].where(out.index > lo)
    out["retention_rate"] = out["retained"] / start.where(start > 0)
    out["churn_rate"] = 1 - out["retention_rate"]
    out["revenue_start"] = per["revenue"].shift(1, fill_value=0.0).astype(float)
    out["revenue_retained"] = per["revenue_retained"].astype(float)
    rev0 = out["revenue_start"].where((out.index > lo) & (out["revenue_start"] > 0))
    out["net_revenue_retention"] = out["revenue_retained"] / rev0
    capped = per["revenue_capped"] + per["lost_capped"].shift(1, fill_value=0.0)
    out["gross_revenue_retention"] = capped.astype(float) / rev0
    out.index = periods.period_index(out.index, freq)
    cols = ["customers_start", "customers_end", "new", "reactivated", "retained", "retention_rate", "churn_rate",
            "revenue_start", "revenue_retained", "net_revenue_retention", "gross_revenue_retention"]  # fmt: skip
    return out[cols].astype(
        {c: "int64" for c in ["customers_start", "customers_end", "new", "reactivated", "retained"]}
    )


def cohort_table(
    orders: ir.Table | pd.DataFrame,
    freq: str = "M",
    as_of: str | pd.Timestamp | None = None,
    *,
    kind: str = "n_period",
    customer_col: str = "customer_id",
    date_col: str = "order_date",
) -> pd.DataFrame:
    """:func:`helpers.cohorts.cohort_table` (acquisition cohort x age -> customers) from the engine.

    The engine reduces the orders to distinct (customer, period), takes each customer's first
    period (the cohort) and counts customers per (cohort, age = period - cohort) for
    ``kind="n_period"``, or per (cohort, last age) for ``kind="unbounded"`` (active at age n or
    later: a reversed cumulative sum over ages). Cells after the last complete period are NaN."""
    if kind not in ("n_period", "unbounded"):
        raise ValueError("kind must be 'n_period' or 'unbounded'")
    act, as_of, last = _activity(orders, freq, as_of, True, customer_col, date_col, None)
    firsts = act.group_by("customer_id").agg(cohort=act.p.min(), last_p=act.p.max())
    if kind == "n_period":
        j = act.join(firsts, "customer_id")
        cells = j.group_by(cohort=j.cohort, age=j.p - j.cohort).agg(n=j.count())
    else:
        cells = firsts.group_by(cohort=firsts.cohort, age=firsts.last_p - firsts.cohort).agg(
            n=firsts.count()
        )
    df = cells.to_pandas()
    if df.empty:
        raise ValueError(
            f"no complete {periods.FREQS[freq]} of orders on or before as-of "
            f"{periods.as_of_day(as_of).date()}"
        )
    c0 = int(df["cohort"].min())
    n_cohorts = int(df["cohort"].max()) - c0 + 1
    n_ages = last - c0 + 1
    counts = np.zeros((n_cohorts, n_ages))
    counts[df["cohort"].to_numpy(np.int64) - c0, df["age"].to_numpy(np.int64)] = df["n"].to_numpy()
    if kind == "unbounded":
        counts = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]
    cohorts = np.arange(c0, c0 + n_cohorts)
    counts[np.arange(n_ages)[None, :] > (last - cohorts)[:, None]] = np.nan
    index = pd.Index(periods.period_index(cohorts, freq), name="cohort")
    sizes = counts[:, 0]
    out = pd.DataFrame(
        counts[sizes > 0], index=index[sizes > 0], columns=pd.RangeIndex(n_ages, name="age")
    )
    out.attrs.update(freq=freq, kind=kind)
    return out


def purchases(orders: ir.Table | pd.DataFrame, amount_col: str = "amount") -> ir.Table:
    """The orders that count as purchases (amount >= 0), as
    :func:`helpers.report.analysis.purchases`."""
    t = as_table(orders)
    return t.filter(t[amount_col] >= 0)


def headline(orders: ir.Table | pd.DataFrame, as_of: str | pd.Timestamp) -> dict:
    """:func:`helpers.report.analysis.headline` from the engine: customers with a purchase, purchases
    (amount >= 0) and zero-value ones, revenue (refund rows included), average order value,
    revenue per customer, repeat-purchase rate (2+ purchases), first and last date; all up to
    the end of the as-of day."""
    t = _up_to(as_table(orders), as_of, "order_date")
    amount = t.amount.cast("float64")
    whole = t.aggregate(
        revenue=amount.sum(), first=t.order_date.min(), last=t.order_date.max()
    ).to_pandas()
    b = t.filter(amount >= 0)
    bought = b.aggregate(
        purchases=b.count(), zero=(b.amount == 0).sum(), spent=b.amount.cast("float64").mean()
    ).to_pandas()
    n = b.group_by("customer_id").agg(n=b.count())
    per = n.aggregate(customers=n.count(), repeat=(n.n >= 2).sum()).to_pandas()
    customers = int(per["customers"].iloc[0])
    if customers == 0:
        end = periods.as_of_end(as_of)
        raise ValueError(
            f"no orders on or before the as-of date {end.date() - pd.Timedelta(days=1)}"
        )
    revenue = float(whole["revenue"].iloc[0])
    return {
        "customers": customers,
        "purchases": int(bought["purchases"].iloc[0]),
        "zero_value_orders": int(bought["zero"].iloc[0]),
        "revenue": revenue,
        "average_order_value": float(bought["spent"].iloc[0]),
        "revenue_per_customer": float(revenue / customers),
        "repeat_purchase_rate": float(per["repeat"].iloc[0] / customers),
        "first_date": str(pd.Timestamp(whole["first"].iloc[0]).date()),
        "last_date": str(pd.Timestamp(whole["last"].iloc[0]).date()),
    }


def calibration_holdout(
    orders: ir.Table | pd.DataFrame,
    calibration_end: str | pd.Timestamp,
    holdout_end: str | pd.Timestamp,
    time_unit: str = "W",
) -> pd.DataFrame:
    """:func:`helpers.clv.calibration_holdout` from the engine: the per-customer summary up to the
    end of `calibration_end` (:func:`customer_summary`), and for the same customers the number of
    orders in the holdout (after the calibration, through the end of `holdout_end`) and the
    holdout's length, both in `time_unit`."""
    segments.unit_days(time_unit)
    cut, end = periods.as_of_end(calibration_end), periods.as_of_end(holdout_end)
    t = as_table(orders)
    cal = customer_summary(t, calibration_end, time_unit)
    if end <= cut:
        raise ValueError(
            f"holdout_end {holdout_end} must be after calibration_end {calibration_end}"
        )
    d = t.order_date
    ho = t.filter(
        (d >= ibis.timestamp(cut.to_pydatetime())) & (d < ibis.timestamp(end.to_pydatetime()))
    )
    counts = ho.group_by("customer_id").agg(n=ho.count()).to_pandas().set_index("customer_id")["n"]
    cal["holdout_purchases"] = counts.reindex(cal.index, fill_value=0).to_numpy().astype(int)
    cal["holdout_duration"] = (end - cut) / pd.Timedelta(days=segments.unit_days(time_unit))
    cal.attrs.update(
        calibration_end=str(pd.Timestamp(calibration_end).date()),
        holdout_end=str(pd.Timestamp(holdout_end).date()),
    )
    return cal


def customer_totals(
    orders: ir.Table | pd.DataFrame, customer_col: str = "customer_id", amount_col: str = "amount"
) -> pd.Series:
    """Sum of the amounts per customer over every row (refunds included), indexed by customer."""
    t = as_table(orders)
    df = t.group_by(customer_col).agg(total=t[amount_col].cast("float64").sum()).to_pandas()
    return df.set_index(customer_col)["total"]


# ------------------------------------------------------------- fits on sufficient statistics

#: The integer columns that identify a customer's (x, t_x, T) in :func:`btyd_summary`: the
#: repeat purchases and t_x and T in whole steps of the resolution (joins on integers, not floats).
PATTERN_KEYS = ("frequency", "tx_steps", "T_steps")


def btyd_summary(
    orders: ir.Table | pd.DataFrame,
    as_of: str | pd.Timestamp | None = None,
    time_unit: str = "W",
    resolution: str = "D",
    *,
    customer_col: str = "customer_id",
    date_col: str = "order_date",
    amount_col: str = "amount",
) -> ir.Table:
    """The BTYD summary as an engine expression (nothing is computed until it is used), one row
    per customer: ``customer_id``, ``frequency`` x = n - 1, ``tx_steps`` and ``T_steps`` (t_x and
    T in whole steps of `resolution`, :func:`helpers.btyd.resolution_steps`), ``recency`` and ``T`` (the same in `time_unit`) and ``monetary_value`` (mean
    of the repeat purchases: (total - mean amount at the first timestamp) / x, 0 without one).

    Equal to ``helpers.btyd.at_resolution(helpers.segments.rfm_table(orders, as_of, time_unit),
    resolution)`` (Fader, Hardie & Lee 2005's x, t_x, T; the resolution stated, 'D' by default:
    customers then share their (x, t_x, T), see :func:`distinct_patterns`)."""
    if resolution not in btyd.RESOLUTIONS:
        raise ValueError(
            f"resolution must be one of {sorted(btyd.RESOLUTIONS)}, got {resolution!r}"
        )
    unit_s = segments.unit_days(time_unit) * 86_400
    t = as_table(orders)
    if as_of is None:
        as_of = default_as_of(t, date_col)
    end_s = int(periods.as_of_end(as_of).value // 10**9)
    t = _up_to(t, as_of, date_col)
    j = _customer_aggregates(t, customer_col, date_col, amount_col)
    step, off = btyd.RESOLUTIONS[resolution]

    def k(ts: ir.TimestampValue) -> ir.IntegerValue:  # the step of a time (whole seconds first)
        return (ts.truncate("s").epoch_seconds().cast("int64") + off) // step

    x = (j.n_orders - 1).cast("int64")
    # as helpers.btyd.resolution_steps: the step holding the end of the as-of day counted whole
    k_end = -(-(end_s + off) // step)
    tx_steps = k(j.last_order) - k(j.first_order)
    T_steps = ibis.literal(k_end, "int64") - k(j.first_order)
    return j.select(
        customer_id=j[customer_col],
        frequency=x,
        tx_steps=tx_steps,
        T_steps=T_steps,
        recency=(tx_steps * step).cast("float64") / unit_s,
        T=(T_steps * step).cast("float64") / unit_s,
        monetary_value=ibis.ifelse(
            x > 0,
            (j.monetary_total - j.first_amount) / ibis.greatest(x, 1).cast("float64"),
            0.0,
        ),
    )


def distinct_patterns(
    summary: ir.Table,
    keys: tuple[str, ...] = PATTERN_KEYS,
    *,
    time_unit: str = "W",
    resolution: str = "D",
) -> pd.DataFrame:
    """The distinct rows of :func:`btyd_summary` by `keys` with ``customers`` (their count),
    ``recency`` and ``T``, grouped by the engine: the small table the purchase models are fitted
    on (``clv.fit_bgnbd(patterns, weights="customers")`` equals the fit on one row per customer,
    :func:`helpers.btyd.distinct_rows`). Sorted by the keys; attrs ``time_unit`` and
    ``resolution`` as the summary's (pass the ones it was built with)."""
    g = summary.group_by(list(keys)).agg(
        customers=summary.count(), recency=summary["recency"].max(), T=summary["T"].max()
    )
    df = g.order_by(list(keys)).to_pandas()
    df["customers"] = df["customers"].astype(np.int64)
    df.attrs.update(time_unit=time_unit, resolution=resolution)
    return df


def join_patterns(
    summary: ir.Table, scores: pd.DataFrame, keys: tuple[str, ...] = PATTERN_KEYS
) -> ir.Table:
    """Scores computed per distinct row (a DataFrame with the `keys` columns and one column per
    score) joined back to every customer of `summary` in the engine (an inner join on the
    integer keys: each customer's row has exactly one pattern)."""
    cols = [c for c in scores.columns if c not in keys and c not in summary.columns]
    small = ibis.memtable(scores[list(keys) + cols].reset_index(drop=True))
    # a view: the summary's own self-join (first amount) would otherwise claim the join keys
    return summary.view().join(small, list(keys))


def predictive_clv(
    summary: ir.Table,
    purchases,
    gg,
    econ: economics.Economics = economics.SAMPLE,
    margin_rate: float | None = None,
    cost_per_order: float = 0.0,
    *,
    time_unit: str = "W",
    resolution: str = "D",
) -> ir.Table:
    """:func:`helpers.clv.predictive_clv` of every customer of :func:`btyd_summary`, computed per
    distinct (x, t_x, T) and joined back in the engine.

    The purchase part depends on the customer only through (x, t_x, T): P(alive), the expected
    purchases over the horizon and their discounted sum D = sum_k (E[Y(k)] - E[Y(k-1)]) /
    (1 + d_m)^k are computed on the distinct rows (:func:`distinct_patterns`; the discounted sum
    as ``clv.predictive_clv`` with a margin of exactly 1 per order) and joined back
    (:func:`join_patterns`); the engine then computes the Gamma-Gamma expected spend
    E[M] = p (gamma + x m) / (p x + q - 1) (Hardie 2013; m = 0 for x = 0), the margin per order
    m_r E[M] - c and CLV = (m_r E[M] - c) D. Returns an Ibis table: ``customer_id``,
    ``p_alive``, ``expected_purchases``, ``expected_spend``, ``margin_per_order``, ``clv``."""
    from helpers import clv

    patterns = distinct_patterns(summary, time_unit=time_unit, resolution=resolution)
    patterns["monetary_value"] = 0.0
    per = clv.predictive_clv(purchases, gg, patterns, econ, margin_rate=0.0, cost_per_order=-1.0)
    scores = patterns[list(PATTERN_KEYS)].assign(
        p_alive=per["p_alive"].to_numpy(),
        expected_purchases=per["expected_purchases"].to_numpy(),
        discounted=per["clv"].to_numpy(),  # margin 0 x spend + 1 per order: the discounted sum
    )
    j = join_patterns(summary, scores)
    p, q, g = float(gg.p), float(gg.q), float(gg.gamma)
    mr = econ.gross_margin_rate if margin_rate is None else margin_rate
    x = j.frequency.cast("float64")
    m = ibis.ifelse(j.frequency > 0, j.monetary_value, 0.0)
    spend = p * (g + x * m) / (p * x + q - 1)
    per_order = mr * spend - cost_per_order
    return j.select(
        "customer_id",
        "p_alive",
        "expected_purchases",
        expected_spend=spend,
        margin_per_order=per_order,
        clv=per_order * j.discounted,
    )


# ------------------------------------------------------------------ the mapping's rules


def _lower_text(col: ir.Value) -> ir.StringValue:
    """A cell as trimmed lower-case text ('' for a missing one), as the pandas reader compares
    statuses and placeholders."""
    return col.cast("string").fill_null("").strip().lower()


def mapping_rules(t: ir.Table, mapping) -> tuple[ir.Table, dict]:
    """The client mapping's row rules as engine expressions, on the validated table (canonical
    columns, one row per file row: :func:`helpers.tables.read_table_info`'s output), in the
    order of :func:`helpers.report.orders.read_client_orders`:

    0. without an amount column, amount = quantity x unit price;
    1. rows after ``as_of`` left out; with ``rows: order_lines`` a customer or status given on one
       line of an order only is copied to its other lines;
    2. rows without a customer (null, blank or a ``customer_placeholders`` entry, trimmed, any
       case): ``missing_customer: error`` raises, ``drop`` leaves them out;
    3. statuses outside ``status.keep`` and ``status.cancelled`` left out (counted per status); a
       row with a cancelled status is refunded in full (refund = max(amount, 0));
    4. a refunded amount: refund = max(refund, refunded amount);
    5. cancellations (the column starts with the prefix, trimmed): amount = -|amount|;
    6. refunds (negative amounts or a refund > 0), by the policy: ``reject`` raises, ``exclude``
       leaves them out, ``net`` subtracts the refund from a row with amount >= 0;
    7. with ``rows: order_lines``, lines summed into orders (amount and quantity summed, first
       date; the customer of the order's lines; other columns of its earliest line).

    Returns the table of orders (an expression: nothing is materialized) and the counts the
    pandas reader reports (``rows`` and ``last_order`` of the table given, ``after_as_of`` and
    its ``after_as_of_revenue``, ``missing_customers`` and ``missing_revenue``, ``other_status``
    with ``statuses`` (by count, then name) and ``other_status_amount``, ``refund_rows``,
    ``refund_amount``, ``kinds`` (by count, then name), ``lines``, ``orders``), each computed by
    the engine as a small aggregate. Raises
    :class:`helpers.tables.DataValidationError` where the reader does (missing customers with
    ``error``, refunds with ``reject``, order lines with two customers), with the counts."""
    from helpers.tables import DataValidationError

    cols = mapping.read_columns()
    counts: dict = {}

    def scalar(expr) -> float:
        v = expr.to_pyarrow().as_py()
        return 0.0 if v is None else v

    if "amount" not in t.columns:  # amount = quantity x unit price on each row
        t = t.mutate(amount=(t.quantity * t.unit_price).cast("float64"))
    end = ibis.timestamp(periods.as_of_end(mapping.as_of or "2262-01-01").to_pydatetime())
    first = t.aggregate(
        rows=t.count(),
        last_order=t.order_date.max(),
        after=t.count(where=t.order_date >= end),
        after_revenue=t.amount.sum(where=t.order_date >= end),
    ).to_pandas()
    counts["rows"] = int(first["rows"].iloc[0])
    counts["last_order"] = pd.Timestamp(first["last_order"].iloc[0])
    if mapping.as_of:
        counts["after_as_of"] = int(first["after"].iloc[0])
        counts["after_as_of_revenue"] = float(np.nan_to_num(first["after_revenue"].iloc[0]))
        t = t.filter(t.order_date < end)
    if mapping.rows == "order_lines":
        fill = {
            c: t[c].fill_null(t[c].max().over(group_by="order_id"))
            for c in ("customer_id", "status")
            if c in t.columns
        }
        if fill:
            t = t.mutate(**fill)
    placeholders = [p.strip().lower() for p in mapping.customer_placeholders]
    missing = t.customer_id.isnull()
    if placeholders:
        missing = missing | _lower_text(t.customer_id).isin(placeholders)
    gone = t.aggregate(n=t.count(where=missing), revenue=t.amount.sum(where=missing)).to_pandas()
    counts["missing_customers"] = int(gone["n"].iloc[0])
    counts["missing_revenue"] = float(np.nan_to_num(gone["revenue"].iloc[0]))
    if counts["missing_customers"]:
        if mapping.missing_customer == "error":
            raise DataValidationError(
                [
                    f"{counts['missing_customers']:,} rows have no customer id (missing_customer: error)"
                ]
            )
        t = t.filter(~missing)
    zero = ibis.literal(0.0)
    refund = zero
    kind = ibis.literal("")
    if mapping.status:
        scol = (
            "status"
            if "status" in cols
            else next(k for k, v in cols.items() if v == mapping.status["column"])
        )
        keep = [s.lower() for s in mapping.status["keep"]]
        cancelled = [s.lower() for s in mapping.status["cancelled"]]
        t = t.mutate(_status=_lower_text(t[scol]))
        other = ~t._status.isin(keep + cancelled)
        per = (
            t.filter(other)
            .group_by("_status")
            .agg(n=lambda s: s.count(), amount=lambda s: s.amount.sum())
            .to_pandas()
            .sort_values(["n", "_status"], ascending=[False, True])
        )
        counts["other_status"] = int(per["n"].sum())
        counts["other_status_amount"] = float(per["amount"].sum())
        counts["statuses"] = {
            (k or "(blank)"): int(v) for k, v in zip(per["_status"], per["n"], strict=True)
        }
        t = t.filter(~other)
        full = t._status.isin(cancelled)
        refund = ibis.ifelse(full, ibis.greatest(t.amount, zero), zero)
        kind = ibis.ifelse(full, "status " + t._status, kind)
    if "refunded_amount" in t.columns:
        part = t.refunded_amount.fill_null(0.0)
        refund = ibis.greatest(refund, part)
        kind = ibis.ifelse((part > 0) & (kind == ""), "refunded amount", kind)
    amount = t.amount
    if mapping.cancellations:
        ccol = next(
            (k for k, v in cols.items() if v == mapping.cancellations["column"]), "cancellation"
        )
        cancel = (
            t[ccol].cast("string").fill_null("").strip().startswith(mapping.cancellations["prefix"])
        )
        amount = ibis.ifelse(cancel, -amount.abs(), amount)
        kind = ibis.ifelse(cancel, "cancellation", kind)
    t = t.mutate(amount=amount, _refund=refund, _kind=kind)
    negative = t.amount < 0
    t = t.mutate(
        _kind=ibis.ifelse(negative & (t._kind == ""), "negative amount", t._kind),
        _refunded=negative | (t._refund > 0),
    )
    summary = t.aggregate(
        rows=t.count(where=t._refunded),
        negative=t.amount.sum(where=t.amount < 0),
        refunded=t._refund.sum(where=t.amount >= 0),
    ).to_pandas()
    n = int(summary["rows"].iloc[0])
    total = float(np.nan_to_num(summary["negative"].iloc[0])) - float(
        np.nan_to_num(summary["refunded"].iloc[0])
    )
    counts["refund_rows"], counts["refund_amount"] = n, round(total, 2)
    if n:
        kinds = (
            t.filter(t._refunded)
            .group_by("_kind")
            .agg(n=lambda s: s.count())
            .to_pandas()
            .sort_values(["n", "_kind"], ascending=[False, True])
        )
        counts["kinds"] = {str(k): int(v) for k, v in zip(kinds["_kind"], kinds["n"], strict=True)}
        if mapping.refunds == "reject":
            raise DataValidationError(
                [
                    f"{n:,} rows are refunds or cancellations, and the mapping's refunds policy is 'reject'"
                ]
            )
        if mapping.refunds == "exclude":
            t = t.filter(~t._refunded)
        else:
            t = t.mutate(amount=t.amount - ibis.ifelse(t.amount < 0, zero, t._refund))
    t = t.drop(*[c for c in ("_status", "_refund", "_kind", "_refunded") if c in t.columns])
    if mapping.rows == "order_lines":
        g = t.group_by("order_id")
        two = g.agg(k=t.customer_id.nunique()).filter(lambda s: s.k > 1)
        n_two = int(scalar(two.count()))
        if n_two:
            raise DataValidationError([f"{n_two:,} orders have lines with different customers"])
        counts["lines"] = int(scalar(t.count()))
        agg = {"customer_id": t.customer_id.min(), "order_date": t.order_date.min(),
               "amount": t.amount.sum()}  # fmt: skip
        if "quantity" in t.columns:
            agg["quantity"] = t.quantity.sum()
        for c in t.columns:  # other columns: the order's first line's (by date)
            if c not in agg and c != "order_id":
                agg[c] = t[c].argmin(t.order_date)
        t = g.agg(**agg)
        counts["orders"] = int(scalar(t.count()))
    return t, counts
