"""The client report's own analysis: headline figures, segments, the at-risk list, CLV with
its model check, and the retention scenario. Retention per period comes from
:mod:`helpers.retention`, RFM segments from :mod:`helpers.segments`, CLV from :mod:`helpers.clv`.

The functions that read the orders take either a pandas DataFrame (the teaching helpers do the
work) or an Ibis table (:mod:`helpers.report.engine` does: the same results, computed where
the data lives, without holding the orders in pandas); see
:func:`helpers.report.orders.open_orders`. Nothing here reads a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from helpers import (
    clv,
    cohorts,
    economics,
    experiments,
    money,
    pareto_nbd,
    periods,
    retention,
    segments,
)
from helpers.economics import Economics
from helpers.report.frames import align, positions
from helpers.report.handover import EXPORTS_ENV, SALT_ENV
from helpers.report.text import Reason

_HEX = np.array(list("0123456789abcdef"))


def pseudonym_salt(given: str, data: str | Path) -> str:
    """The secret key of the pseudonyms: `given` (notebook 08's ``pseudonym_salt`` parameter),
    else the one the report command hands over in ``$RETENTION_LAB_SALT`` (random per report, in
    no delivered file), else the SHA-256 of the data file (a run by hand: the same every time)."""
    return given or os.environ.get(SALT_ENV) or hashlib.sha256(Path(data).read_bytes()).hexdigest()


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


#: The fewest repeat buyers a purchase and spend model is fitted on (:func:`fit_clv`).
MIN_REPEAT_BUYERS = 100


def prefetch_sections(
    orders: Any, bought: Any, freq: str, as_of: str, seg: pd.DataFrame, econ: Economics
) -> None:
    """Start, in the background, the engine's reductions that the report's later sections ask
    for -- the one pass per customer of the purchases `bought`
    (:func:`helpers.report.engine.customer_table`: first-order attributes, second orders, value
    by order number), the LTV curves' and each customer's 12-month margins (of `seg`, under
    `econ`: :func:`helpers.report.acquisition_views.ltv_margins`,
    :func:`~helpers.report.acquisition_views.margin_12`), the acquisition cohorts per `freq`
    and each customer's net revenue over `orders` -- while the kernel
    fits the models (Python on one core; DuckDB's queries on the other, one thread):
    :func:`helpers.report.engine.prefetch`. The sections then call the same functions and find
    their results, equal to computing them in turn. Nothing on pandas orders."""
    if (eng := _engine(bought)) is None:
        return
    from helpers.report import acquisition_views

    # the fit's calibration split first, at DuckDB's full speed (one thread while prefetching):
    # fit_clv finds it made (_calibration_split keeps it for the same orders and customers)
    if _repeat_mask(seg).sum() >= MIN_REPEAT_BUYERS:  # else fit_clv stops before the split
        with contextlib.suppress(ValueError):  # fit_clv says why
            _calibration_split(orders, seg, _holdout(seg)[1])
    eng.prefetch(
        bought,
        [(eng.customer_table, ()), (eng.cohort_table, (freq, as_of)),
         (acquisition_views.ltv_margins, (seg, econ)),
         (acquisition_views.margin_12, (seg, econ))],  # in the order the sections ask
    )  # fmt: skip
    eng.prefetch(orders, [(eng.customer_totals, ())])
    # (not the monthly retention of the notebook's exercise 2: the client report runs no
    # exercise, helpers.report.build; 4.2-4.5 s of this thread at 10M orders, 32 s of its time
    # in a profile at 100M; benchmarks/README.md)


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
    s = money.scale(amount)  # sums exact: the same in any row order, and as the engine's
    revenue = money.total(amount if upto.all() else amount[upto], s)
    p_amount = amount if bought.all() else amount[bought]
    return {
        "customers": len(n_orders),
        "purchases": int(bought.sum()),
        "zero_value_orders": int((p_amount == 0).sum()),
        "revenue": revenue,
        "average_order_value": money.total(p_amount, s) / len(p_amount),
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
        totals = eng.customer_totals(orders)  # a copy of the engine's (prefetched beside the fits)
        eng.release(orders, "customer_totals")  # read once here: not kept for the rest of the run
        totals.name = "net_revenue"  # renamed in place (rename copied the values)
        return totals
    codes, ids = pd.factorize(orders["customer_id"], sort=False)
    amount = orders["amount"].to_numpy(float)  # summed exactly (helpers.money), as the engine
    sums = money.group_sum(amount, codes, len(ids), money.scale(amount))
    return pd.Series(sums, index=pd.Index(ids, name="customer_id"), name="net_revenue")


#: What a spreadsheet reads as the start of a formula (OWASP, "CSV injection").
FORMULA_START: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(arr: Any) -> Any:
    """A text column (an Arrow array: text, or a dictionary of texts) with a leading apostrophe
    before every cell that begins with a formula character (:data:`FORMULA_START`), so that
    Excel, LibreOffice or Google Sheets show the cell as text instead of running it (OWASP's
    advice on CSV injection). Any other array (numbers: a negative amount stays a number) and
    the other cells of a text column stay as they are; missing cells stay missing. In Arrow's
    compute functions (at 842k customer ids 0.05 s against 0.7 s in pandas); a dictionary's
    values are changed, not each row's."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        values = spreadsheet_safe(arr.dictionary)
        if values is arr.dictionary:
            return arr
        return pa.DictionaryArray.from_arrays(arr.indices, values)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return arr
    starts = "^[" + "".join("\\" + c if c in "-\\^]" else c for c in FORMULA_START) + "]"
    risky = pc.fill_null(pc.match_substring_regex(arr, starts), False)
    if not pc.any(risky).as_py():
        return arr
    return pc.if_else(risky, pc.binary_join_element_wise("'", arr, ""), arr)


def export_csv(
    table: pd.DataFrame | Sequence[pd.DataFrame | pd.Series],
    path: str | Path,
    decimals: int = 4,
    raw: bool | None = None,
) -> Path:
    """Write `table` (its index as the first column) to a UTF-8 CSV for the client, numbers
    rounded to `decimals`, with Arrow's multi-threaded CSV writer (about 6x pandas' ``to_csv`` on
    a million customers). Text is quoted, missing values are empty cells, timestamps are written
    as ``2024-01-02 13:00:00`` (with as many decimals of the second as the column needs); ``pandas.read_csv``
    reads back what ``table.round(decimals).to_csv`` would have written.

    `table` may be several frames (or Series) instead of one: their columns side by side, each
    left-joined on the first's index, as ``first.join(second).join(...)`` would give them
    but without that copy of every customer's row (at 842k customers two joins held about
    0.5 GB beside the frames they copied; benchmarks/README.md, the report's memory).

    Spreadsheet-safe unless `raw`: text cells (ids, segments, the client's other columns) that
    begin with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return get a leading apostrophe
    (:func:`spreadsheet_safe`); numbers are written as numbers. `raw` None: as the mapping's
    ``exports`` says when the report command runs (``$RETENTION_LAB_EXPORTS``), else safe."""
    return _write_columns(_export_columns(table), Path(path), decimals, _raw(raw))


def _raw(raw: bool | None) -> bool:
    """:func:`export_csv`'s `raw`: None is the mapping's ``exports`` (``$RETENTION_LAB_EXPORTS``)."""
    return os.environ.get(EXPORTS_ENV, "safe") == "raw" if raw is None else raw


def _export_columns(
    table: pd.DataFrame | Sequence[pd.DataFrame | pd.Series],
) -> list[tuple[str, pd.Series]]:
    """:func:`export_csv`'s columns: the first frame's index, its columns, then each other
    frame's columns re-indexed on the first's index (a left join, column by column; a frame on
    the same index as it is, not copied). Raises ValueError when two columns share a name."""
    first, *others = [table] if isinstance(table, pd.DataFrame) else list(table)
    # the ids as a column without a copy of them (to_series copied 8 bytes a customer)
    ids = pd.Series(first.index.array, index=first.index, name=first.index.name, copy=False)
    columns = [(first.index.name or "", ids), *first.items()]
    for other in others:  # a left join on the first frame's index, column by column
        other = other.to_frame() if isinstance(other, pd.Series) else other
        if not other.index.equals(first.index):  # one look-up of the ids for all its columns
            other = align(other, first.index)
        columns += list(other.items())
    names = [str(name) for name, _ in columns]
    if len(set(names[1:])) < len(names) - 1:
        raise ValueError(f"columns overlap: {sorted({n for n in names[1:] if names.count(n) > 1})}")
    return [(str(name), col) for name, col in columns]


#: The rows :func:`export_csv` converts to Arrow and writes at a time: one chunk's columns are
#: held, not the whole table's (at 10M customers about 25 columns of 8-byte values: some 2 GB
#: beside the report's frames; benchmarks/README.md, the exports at 10M customers). 200,000
#: rather than 1M: the 842k-customer report's peak, the export beside the LTV curves, 1,861 and
#: 1,967 MB -> 1,743 and 1,816 MB, the same time (benchmarks/README.md, 2026-12-06).
EXPORT_CHUNK = 200_000

#: Exports of at most this many rows run in a background thread (:func:`start_exports`).
BACKGROUND_ROWS = 1_000_000


def _write_columns(
    columns: list[tuple[str, pd.Series]], path: Path, decimals: int, raw: bool
) -> Path:
    """Write :func:`_export_columns`'s `columns` to `path` as :func:`export_csv` says,
    :data:`EXPORT_CHUNK` rows at a time: each column's Arrow type and a timestamp's unit are the
    whole column's, so the file is the one written at once. Each chunk's rows become CSV text in
    :data:`CSV_PART` -row parts on :data:`_CSV_WORKERS` threads (Arrow's writer, without the
    GIL; most of the export's time), written in order: the same bytes as one writer's, at 2M
    customers' 360 MB in about half the time on two cores (benchmarks/README.md)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    chunk = EXPORT_CHUNK
    # the values on a plain range index: a slice's index is a range too (Arrow's look-up of a
    # Series' attributes asks a sliced text index, which would hash every id of each chunk)
    # (the dtype given: an object column is not scanned again for what it holds)
    columns = [(name, pd.Series(col.array, name=col.name, dtype=col.dtype, copy=False))
               for name, col in columns]  # fmt: skip
    types: dict[str, pa.DataType] = {}
    units: dict[str, str] = {}
    for name, col in columns:
        if col.dtype == object:  # text (or nothing): the type Arrow infers for the column
            types[name] = pa.infer_type(_first_values(col, 1000), from_pandas=True)
        else:
            types[name] = pa.Array.from_pandas(col.iloc[:0]).type
        if col.dtype.kind == "M" and col.dt.tz is None:  # the coarsest exact unit, as pandas
            ns = col.to_numpy("datetime64[ns]").view("i8")[col.notna().to_numpy()]
            units[name] = next(u for u, k in (("s", 10**9), ("ms", 10**6), ("us", 10**3),
                                              ("ns", 1)) if (ns % k == 0).all())  # fmt: skip
    n = len(columns[0][1])
    rows = pcsv.WriteOptions(quoting_style="needed", include_header=False)

    def text(part: pa.Table) -> pa.Buffer:  # on a worker thread: Arrow's writer, no GIL
        sink = pa.BufferOutputStream()
        pcsv.write_csv(part, sink, write_options=rows)
        return sink.getvalue()

    def batches() -> Any:
        for start in range(0, n, chunk):
            arrays: dict[str, pa.Array] = {}
            # column by column into Arrow (no rounded copy of the whole table)
            for name, col in columns:
                part = col.iloc[start : start + chunk]
                if part.dtype.kind == "f":
                    part = part.round(decimals)
                arr = pa.Array.from_pandas(part, type=types[name])
                if not raw:
                    arr = spreadsheet_safe(arr)
                if name in units:
                    arr = arr.cast(pa.timestamp(units[name]))
                arrays[name] = arr
            yield pa.table(arrays)

    schema = pa.schema([(name, pa.timestamp(units[name]) if name in units else types[name])
                        for name, _ in columns])  # fmt: skip
    header = pa.BufferOutputStream()  # the header alone: the names, as the writer quotes them
    pcsv.write_csv(schema.empty_table(), header, write_options=pcsv.WriteOptions(
        quoting_style="needed"))  # fmt: skip
    pending: list[Future[pa.Buffer]] = []
    path.parent.mkdir(parents=True, exist_ok=True)  # a papermill run's export_dir, made here
    with open(path, "wb") as f:
        f.write(header.getvalue())
        try:
            for batch in batches():
                for at in range(0, batch.num_rows, CSV_PART):
                    pending.append(_CSV_WORKERS.submit(text, batch.slice(at, CSV_PART)))
                    while len(pending) > _CSV_WORKERS._max_workers:  # a few parts in memory
                        f.write(pending.pop(0).result())
                del batch
            while pending:
                f.write(pending.pop(0).result())
        finally:
            for job in pending:
                job.cancel()
    return path


def _first_values(col: pd.Series, k: int) -> np.ndarray:
    """The first `k` values of `col` that are not missing (``col.dropna().head(k)``), looked
    for in growing slices from the top rather than over the whole column (at 8.4M customers
    2.4 s for an export's text columns)."""
    size = 4 * k
    while True:
        top = col.iloc[:size].dropna()
        if len(top) >= k or size >= len(col):
            return top.head(k).to_numpy()
        size *= 8


#: Rows of a CSV export converted to text on one worker thread at a time (:func:`_write_columns`):
#: about 4.5 MB of text for the report's customers.csv, a few in memory at once. Parts of 250,000
#: rows were as fast, but the 10M-row report peaked at 1,900 and 1,907 MB with them against
#: 1,796 and 1,842 MB with these (and 1,754-1,842 MB before the threads).
CSV_PART = 25_000

_CSV_WORKERS = ThreadPoolExecutor(
    min(4, os.cpu_count() or 1), thread_name_prefix="retention-lab-csv"
)

_EXPORTING = ThreadPoolExecutor(1, thread_name_prefix="retention-lab-exports")


def customer_export(
    seg: pd.DataFrame, net: pd.Series, clv: pd.DataFrame | None = None
) -> list[pd.DataFrame | pd.Series]:
    """The tables of the report's ``customers.csv`` for :func:`start_exports` (joined column by
    column on the summary's ids as they are written): the customer summary `seg`, each
    customer's net revenue `net` and, with a CLV table `clv`, its columns but ``p_alive`` and
    ``clv`` where the summary has them -- a frame of the table's own columns, not a copy of
    them (``drop`` copied each: at 8.4M customers 270 MB while the file is written)."""
    tables: list[pd.DataFrame | pd.Series] = [seg, net]
    if clv is not None:
        skip = {c for c in ("p_alive", "clv") if c in seg}
        tables.append(pd.DataFrame({c: clv[c] for c in clv.columns if c not in skip}, copy=False))
    return tables


def start_exports(
    files: Sequence[tuple[pd.DataFrame | Sequence[pd.DataFrame | pd.Series], str | Path]],
    decimals: int = 4,
    raw: bool | None = None,
    background: bool | None = None,
) -> Future[list[Path]]:
    """Write each ``(table, path)`` of `files` as :func:`export_csv` would, in a background
    thread, while the kernel goes on with the sections after the analysis; the returned future's
    ``result()`` is the paths written once they are (or raises what :func:`export_csv` raised).
    The columns are taken now, in the caller's thread (a column set on a frame afterwards is not
    written, as with :func:`export_csv` called now), and `raw` is resolved now; the conversion
    to Arrow, the spreadsheet-safe cells and Arrow's CSV writer (most of the time, without the
    GIL) run in the thread.

    `background` None: in the thread when every table has at most :data:`BACKGROUND_ROWS`
    rows, else now, in the caller's thread (the future done when returned). Measured
    (benchmarks/README.md): at 842k customers notebook 08 took 30.6, 31.8 s with the thread
    against 32.8, 32.1 s without (the exports 1.9-2.1 s, the cells beside them a little
    slower), the peak unchanged; at 10M customers it saved nothing (the sections beside it are
    as long: 520-524 s either way) and raised the peak by 0.7-1.0 GB."""
    resolved = _raw(raw)
    jobs = [(_export_columns(table), Path(path)) for table, path in files]
    if background is None:
        background = all(len(columns[0][1]) <= BACKGROUND_ROWS for columns, _ in jobs)

    def write() -> list[Path]:
        return [_write_columns(columns, path, decimals, resolved) for columns, path in jobs]

    if background:
        return _EXPORTING.submit(write)
    done: Future[list[Path]] = Future()
    try:
        done.set_result(write())
    except Exception as err:  # noqa: BLE001 (raised by result(), as from the thread)
        done.set_exception(err)
    return done


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
    if eng is None:
        rfm, cal = segments.rfm_table(purchases(orders), as_of, time_unit), None
    else:  # the fit's calibration split from the same scan (engine.summary_and_split)
        rfm, cal = eng.summary_and_split(
            purchases(orders), as_of, time_unit, lambda first: _holdout_days(as_of, first)[1]
        )
    out = segments.assign_segments(segments.rfm_scores(rfm))
    out.attrs.update(rfm.attrs)
    if cal is not None:  # kept as _calibration_split keeps the split it makes, which finds it
        cal_end = _holdout(out)[1]
        key = (pd.Timestamp(cal_end), str(out.attrs["as_of"]), out.attrs["time_unit"])
        if cal.attrs["calibration_end"] == str(cal_end.date()):
            _SPLIT.clear()
            _SPLIT["last"] = (orders, out, key, cal)
    return out


def release(orders: pd.DataFrame | Any, *names: str) -> None:
    """Drop the engine's kept results `names` for `orders` once no later section asks for them
    (:func:`helpers.report.engine.release`: ``"customers"``, the one pass's table per customer,
    71 MB at the 10M-row report's 842k customers; ``"order_dates"``, the definitions' sample of
    orders, 43 MB); nothing for orders in pandas (nothing is kept). Asked for again, they are
    computed again (the same)."""
    if (eng := _engine(orders)) is not None:
        for name in names:
            eng.release(orders, name)


def clv_by_segment(
    segmented: pd.DataFrame, clv: pd.DataFrame, intervals: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per segment of `segmented` (those with customers), the predicted margin of :func:`fit_clv`'s
    table `clv`: ``customers`` (the segment's customers), ``mean_clv`` and ``total_clv`` (mean and
    sum of ``clv`` over those it scores), ``p_purchase_12m`` (mean), largest total first, with
    `intervals`' ``ci_low`` and ``ci_high`` (:func:`clv_interval`) joined by segment. The same
    figures as ``segmented[["segment"]].join(clv).groupby("segment")``, without the join's copy of
    every column of `clv` for every customer: only the two columns used, put on `segmented`'s
    customers (:func:`helpers.report.frames.align`)."""
    used = align(clv[["clv", "p_purchase_12m"]], segmented.index)
    rows = pd.DataFrame(
        {"segment": segmented["segment"].array, "clv": used["clv"].to_numpy(),
         "p_purchase_12m": used["p_purchase_12m"].to_numpy()}
    )  # fmt: skip
    out = (
        rows.groupby("segment", observed=True)
        .agg(
            customers=("clv", "size"),
            mean_clv=("clv", "mean"),
            total_clv=("clv", "sum"),
            p_purchase_12m=("p_purchase_12m", "mean"),
        )
        .sort_values("total_clv", ascending=False)
    )
    return out if intervals is None else out.join(intervals[["ci_low", "ci_high"]])


def at_risk_customers(
    segmented: pd.DataFrame,
    clv: pd.DataFrame | None = None,
    at_risk: tuple[str, ...] = AT_RISK_SEGMENTS,
) -> pd.DataFrame:
    """Valuable customers who have gone quiet, the win-back list of :func:`helpers.segments.winback_list`
    (the same ranking as notebook 04): the `at_risk` segments, ranked by predicted margin ``clv``
    when a purchase model was fitted (:func:`fit_clv`), otherwise by total spend."""
    return segments.winback_list(segmented, clv, at_risk)


def at_risk_mask(
    segmented: pd.DataFrame, at_risk: tuple[str, ...] = AT_RISK_SEGMENTS
) -> np.ndarray:
    """Which customers of `segmented` :func:`at_risk_customers` lists, in `segmented`'s order
    (:func:`helpers.segments.winback_mask`)."""
    return segments.winback_mask(segmented, at_risk)


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
    holdout check that chose it, and the fits (for scenarios). ``table`` is None only while the
    covariate model's table replaces it (:func:`helpers.report.covariates_view.without_table`)."""

    table: pd.DataFrame | None
    model: str
    check: pd.DataFrame
    purchases: Any
    spend: Any
    holdout_weeks: float
    cost_per_order: float = 0.0
    #: the purchase models' fit on sufficient statistics (:data:`CLV_RESOLUTION`): the time
    #: resolution of t_x and T ('' for times finer than a second), the customers and their
    #: distinct (x, t_x, T) rows
    resolution: str = ""
    customers: int = 0
    patterns: int = 0
    #: the holdout comparison that chose ``model`` (:data:`COMPARE_SAMPLE`): the customers of
    #: the calibration period and how many of them the comparison ran on (all, or the sample)
    calibration_customers: int = 0
    compared_on: int = 0


#: The resolution of the purchase models' t_x and T in the client report (issue 31): None, the
#: resolution the order times are written at (:func:`helpers.btyd.timestamp_resolution`: whole
#: days for dates without a time, seconds for the sample's), so that the fit equals the fit on
#: the times as they are; customers with the same (x, t_x, T) are one row of the fit, weighted
#: by their count (:func:`helpers.btyd.fit_rows`), and the fit's cost grows with these patterns,
#: not the customers. A coarser one ('D' for times of day) merges more customers but moves each
#: t_x and T by up to one step and so the report's numbers (the sample's CLV total by -0.2 % at
#: 'D'): the lead's decision, benchmarks/README.md.
CLV_RESOLUTION: str | None = None

#: The holdout comparison of the purchase models (:func:`helpers.clv.compare_purchase_models`)
#: only chooses a model; above this many customers in the calibration period it runs on a
#: random sample of exactly this many of them (drawn without replacement by NumPy's PCG64
#: seeded with :data:`COMPARE_SEED`: the same customers every run), said in the report and in
#: ``metrics.json`` (``clv_model_choice``). The chosen model's final fit, the holdout check
#: and every per-customer score stay on all customers. The bucket MAE being compared is a
#: customer-weighted mean, so its sampling error at 200,000 customers is far below the gaps
#: that decide between the models (issue 31; the lead's decision, benchmarks/README.md).
COMPARE_SAMPLE = 200_000
COMPARE_SEED = 31


def comparison_sample(
    cal: pd.DataFrame, size: int = COMPARE_SAMPLE, seed: int = COMPARE_SEED
) -> pd.DataFrame:
    """The customers of the calibration summary `cal` the model comparison runs on: all of
    them up to `size`, else `size` of them drawn without replacement by
    ``numpy.random.default_rng(seed)`` (kept in `cal`'s order, attrs kept)."""
    if len(cal) <= size:
        return cal
    rows = np.sort(np.random.default_rng(seed).choice(len(cal), size=size, replace=False))
    out = cal.iloc[rows]
    out.attrs.update(cal.attrs)
    return out


def at_clv_resolution(summary: pd.DataFrame) -> pd.DataFrame:
    """`summary` with t_x and T at :data:`CLV_RESOLUTION` (:func:`helpers.btyd.at_resolution`),
    the resolution the purchase models are fitted and compared at; the summary itself when it
    is None (the times' own resolution: t_x and T are whole steps already)."""
    if not CLV_RESOLUTION or "first_order" not in summary.columns:
        return summary
    from helpers import btyd

    return btyd.at_resolution(summary, CLV_RESOLUTION)


def fit_clv(
    orders: pd.DataFrame,
    segmented: pd.DataFrame,
    econ: Economics,
    min_repeat_buyers: int = MIN_REPEAT_BUYERS,
    holdout_share: float = 0.25,
) -> tuple[ClvFit | None, str]:
    """Predictive CLV per customer if the data allows a fit: (fit, "") or (None, why not).

    The purchase model is chosen on a calibration/holdout check (:func:`helpers.clv.compare_purchase_models`):
    the last `holdout_share` of the data's span (at most a year) is held out, BG/NBD (Fader,
    Hardie & Lee 2005), MBG/NBD (Batislam, Denizel & Filiztekin 2007; one-time buyers can have
    left) and Pareto/NBD (Schmittlein, Morrison & Colombo 1987; customers can leave at any
    moment) are fitted on the rest, and the one whose predictions track the held-out purchases best
    is refitted on all the data; above :data:`COMPARE_SAMPLE` customers in the calibration
    period the comparison runs on a seeded sample of that many (:func:`comparison_sample`: it
    only chooses the model), the final fit on all of them. Spend per purchase is Gamma-Gamma; CLV = (margin x E[spend] -
    shipping per order) x discounted expected purchases over ``econ.horizon_months``
    (:func:`helpers.clv.predictive_clv`).
    No fit with fewer than `min_repeat_buyers` repeat buyers, when an optimizer does not converge,
    or when the Gamma-Gamma mean spend does not exist (q <= 1).
    """
    n_repeat = int(_repeat_mask(segmented).sum())
    if n_repeat < min_repeat_buyers:
        return None, Reason(
            f"only {n_repeat} customers bought more than once; a purchase and spend model needs "
            f"at least {min_repeat_buyers} repeat buyers, so no lifetime value is predicted",
            "no_clv.too_few", n=n_repeat, min=min_repeat_buyers,
        )  # fmt: skip
    hold_days, cal_end = _holdout(segmented, holdout_share)
    from helpers import btyd

    resolution = CLV_RESOLUTION or btyd.timestamp_resolution(segmented) or ""
    try:
        # the split is kept for the holdout check and the covariate view (holdout_refit)
        cal = _calibration_split(orders, segmented, cal_end)
        n_cal = len(cal)
        cal = comparison_sample(cal, COMPARE_SAMPLE, COMPARE_SEED)  # all up to COMPARE_SAMPLE
        check, model = clv.compare_purchase_models(at_clv_resolution(cal))
        compared_on = len(cal)
        del cal
        # fitted on the distinct (x, t_x, T) at the resolution; each customer scored on its own
        pf = clv.PURCHASE_MODELS[model](at_clv_resolution(segmented))
        gg = clv.fit_gamma_gamma(_repeat_buyers(segmented))
    except ValueError as err:
        _SPLIT.clear()  # no holdout check follows: the split goes
        return None, Reason(
            f"the lifetime-value models could not be fitted ({err})",
            "no_clv.failed",
            error=str(err),
        )
    values = [*pf.params.values(), *gg.params.values()]
    if not (pf.converged and gg.converged and np.all(np.isfinite(values))):
        _SPLIT.clear()  # no holdout check follows: the split goes
        return None, Reason(
            "the lifetime-value models did not converge on this data, so no value is predicted",
            "no_clv.converge",
        )
    if gg.q <= 1:
        _SPLIT.clear()  # no holdout check follows: the split goes
        return None, Reason(
            f"the spend model has no finite mean (q = {gg.q:.2f} <= 1): spend is too uneven to predict",
            "no_clv.spend", q=f"{gg.q:.2f}",
        )  # fmt: skip
    # the client's file has no tickets or returns: the cost to serve an order is its shipping
    table = clv.predictive_clv(pf, gg, segmented, econ, cost_per_order=econ.shipping_per_order)
    # the chance of at least one purchase in the next 12 months: meaningful for one-time buyers too
    # (under BG/NBD their P(alive) is 1 by construction; Fader, Hardie & Lee 2005)
    year = 365.25 / segments.unit_days(segmented.attrs["time_unit"])
    table["p_purchase_12m"] = clv.p_purchase_within(pf, segmented, year).to_numpy()
    patterns = int(pf.extra.get("patterns", len(segmented)))
    return ClvFit(table, model, check, pf, gg, hold_days / 7, econ.shipping_per_order,
                  resolution, len(segmented), patterns, n_cal, compared_on), ""  # fmt: skip


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
    (1 - cut) times today's.

    Only the total is needed: the scenario's margin is sum_i (m E[M_i] - c) D_i with D_i the
    discounted expected purchases under the changed model (:func:`helpers.clv.discounted_purchases`),
    the same numbers as summing :func:`helpers.clv.predictive_clv`'s column. The last result is
    kept for the same fit, customers, economics and cut (:func:`scenario_interval` asks again);
    one started by :func:`prefetch_actions` is waited for."""
    _ahead(fit, segmented, econ, cut)
    return _dropout_scenario(fit, segmented, econ, cut)


def _dropout_scenario(
    fit: ClvFit, segmented: pd.DataFrame, econ: Economics, cut: float = 0.10
) -> dict[str, float]:
    """:func:`dropout_scenario` itself (kept per fit, customers, economics and cut)."""
    kept = _SCENARIO.get("last")
    if kept is not None and kept[0] is fit and kept[1] is segmented and kept[2] == (econ, cut):
        return dict(kept[3])
    mean_p, better = _better_retention(fit.purchases, cut)
    now = fit.table["clv"].sum()
    then = float(np.sum(_margin_per_order(fit, fit.spend, segmented, econ)
                        * clv.discounted_purchases(better, segmented, econ)[1]))  # fmt: skip
    out = {"mean_dropout_now": mean_p, "mean_dropout_then": (1 - cut) * mean_p,
           "clv_now": float(now), "clv_then": float(then), "gain": float(then - now),
           "gain_share": float(then / now - 1)}  # fmt: skip
    _SCENARIO["last"] = (fit, segmented, (econ, cut), out)
    return dict(out)


#: The last :func:`dropout_scenario` (one entry: its fit, customers, economics and cut, result).
_SCENARIO: dict[str, tuple] = {}
#: The scenario :func:`prefetch_actions` started (one entry: its fit, customers, economics and
#: cut, and the job computing its interval).
_SCENARIO_JOB: dict[str, tuple] = {}
_AHEAD = ThreadPoolExecutor(1, thread_name_prefix="retention-lab-actions")


def prefetch_actions(
    fit: ClvFit | None, segmented: pd.DataFrame, econ: Economics, cut: float = 0.10
) -> None:
    """Start the actions' scenario -- :func:`dropout_scenario` and its interval
    (:func:`scenario_interval`, the default level) for `fit`, `segmented`, `econ` and `cut` --
    in a background thread, while the kernel's thread draws the sections before the actions
    (numpy's sums and scipy's special functions leave the GIL: at 842k customers the scenario's
    1.2-1.5 s beside the LTV curves' 0.9 s took 1.5 s together, 2.1-2.4 s in turn). The two
    functions, asked later for the same objects, wait for it and return its results, the ones
    they would compute (deterministic: one BLAS thread, the report's kernel environment); a
    failure is left to them to compute and raise. Nothing without a fit."""
    _SCENARIO_JOB.clear()
    if fit is None:
        return
    job = _AHEAD.submit(_scenario_interval, fit, segmented, econ, cut)
    _SCENARIO_JOB["last"] = (fit, segmented, (econ, cut), job)


def _ahead(
    fit: ClvFit, segmented: pd.DataFrame, econ: Economics, cut: float
) -> dict[str, float] | None:
    """The interval of :func:`prefetch_actions`'s scenario for these very objects, once done
    (None without one, or if it failed)."""
    kept = _SCENARIO_JOB.get("last")
    if kept is None or kept[0] is not fit or kept[1] is not segmented or kept[2] != (econ, cut):
        return None
    try:
        return dict(kept[3].result())
    except Exception:  # noqa: BLE001 (the caller computes it, and raises it, in turn)
        return None


def _better_retention(pf: Any, cut: float) -> tuple[float, Any]:
    """:func:`dropout_scenario`'s changed purchase model: today's mean dropout per purchase and
    the fit with it `cut` lower (BG/NBD, MBG/NBD: b' = a / ((1 - cut) E[p]) - a; Pareto/NBD:
    beta' = beta / c with c found by Brent's method)."""
    if pf.model == "Pareto/NBD":
        mean_p = pareto_nbd.leave_before_next_purchase(pf)
        target = (1 - cut) * mean_p

        def gap(log_c: float) -> float:
            params = {**pf.params, "beta": pf.beta / np.exp(log_c)}
            return pareto_nbd.leave_before_next_purchase(replace(pf, params=params)) - target

        # gap(0) = cut * mean_p > 0 and gap falls to -target as c -> 0: the root is bracketed
        # by the first of -1, -2, -4, ... where gap < 0 (near log(1 - cut) but for extreme fits)
        lo = -1.0
        while gap(lo) > 0 and lo > -30.0:
            lo = max(2 * lo, -30.0)
        log_c = optimize.brentq(gap, lo, 0.0, xtol=1e-14)
        return mean_p, replace(pf, params={**pf.params, "beta": pf.beta / np.exp(log_c)})
    a, b = pf.a, pf.b
    mean_p = a / (a + b)
    b_new = a / ((1 - cut) * mean_p) - a
    return mean_p, replace(pf, params={**pf.params, "b": b_new})


def _margin_per_order(fit: ClvFit, gg: Any, summary: pd.DataFrame, econ: Economics) -> np.ndarray:
    """m E[M_i] - c per customer of `summary` (:func:`helpers.clv.predictive_clv`'s
    ``margin_per_order``: the economics' margin rate, the fit's cost per order)."""
    spend = clv.expected_spend(gg, summary).to_numpy()
    return econ.gross_margin_rate * spend - fit.cost_per_order


def scenario_interval(
    fit: ClvFit, segmented: pd.DataFrame, econ: Economics, cut: float = 0.10, level: float = 0.95
) -> dict[str, float]:
    """:func:`_scenario_interval`; the one :func:`prefetch_actions` started for these objects
    (at the default level), once done."""
    got = _ahead(fit, segmented, econ, cut)
    if got is not None and level == 0.95:
        return got
    return _scenario_interval(fit, segmented, econ, cut, level)


def _scenario_interval(
    fit: ClvFit, segmented: pd.DataFrame, econ: Economics, cut: float = 0.10, level: float = 0.95
) -> dict[str, float]:
    """The interval of :func:`dropout_scenario`'s gain from the uncertainty of the purchase and
    spend models' parameters, by the delta method as :func:`clv_interval`: with theta the
    log-parameters of both fits and Sigma their covariance, g = d gain / d theta by central
    differences (step 1e-4) on every k-th customer (at most :data:`CLV_INTERVAL_SAMPLE`), and the
    relative standard error se / |gain| of the sample applied to the gain of all customers; the
    interval is gain +- z se (on the gain itself: it may be near zero). Deterministic. Returns
    ``gain``, ``ci_low``, ``ci_high`` and ``se``.

    On the sample gain = sum_i (m E[M_i] - c) (D_i' - D_i), with D_i and D_i' the discounted
    expected purchases today and in the scenario (:func:`helpers.clv.discounted_purchases`): a
    spend parameter moves only the first factor, so the purchase side is computed once per
    purchase-model parameter set (9 sets, 18 calls) and reused for the spend model's six."""
    zq = float(stats.norm.ppf(0.5 + level / 2))
    step = max(1, int(np.ceil(len(segmented) / CLV_INTERVAL_SAMPLE)))
    sample = segmented.iloc[::step]

    def purchase_side(pf: Any) -> tuple[np.ndarray, np.ndarray]:
        """(D_i, D_i') on the sample under the purchase model `pf` and its scenario."""
        better = _better_retention(pf, cut)[1]
        now = clv.discounted_purchases(pf, sample, econ)[1]
        then = clv.discounted_purchases(better, sample, econ)[1]
        return now, then

    def gain(sides: tuple[np.ndarray, np.ndarray], gg: Any) -> float:
        per_order = _margin_per_order(fit, gg, sample, econ)
        now, then = sides
        return float(np.sum(per_order * then)) - float(np.sum(per_order * now))

    sides = purchase_side(fit.purchases)
    base = gain(sides, fit.spend)
    h, grads = 1e-4, []
    for which in ("purchases", "spend"):
        model = getattr(fit, which)
        for key in model.params:
            moved = []
            for sign in (1, -1):
                shifted = replace(
                    model, params={**model.params, key: model.params[key] * np.exp(sign * h)}
                )
                moved.append(
                    gain(purchase_side(shifted), fit.spend)
                    if which == "purchases"
                    else gain(sides, shifted)
                )
            grads.append((moved[0] - moved[1]) / (2 * h))
    g = np.asarray(grads)
    n_p = len(fit.purchases.params)
    cov = np.zeros((len(g), len(g)))
    cov[:n_p, :n_p] = fit.purchases.cov_log
    cov[n_p:, n_p:] = fit.spend.cov_log
    rel = float(np.sqrt(max(g @ cov @ g, 0.0))) / abs(base) if base else float("nan")
    full = _dropout_scenario(fit, segmented, econ, cut)["gain"]
    se = rel * abs(full)
    return {"gain": full, "ci_low": full - zq * se, "ci_high": full + zq * se, "se": se}


def lifecycle(per: pd.DataFrame) -> pd.DataFrame:
    """Each period's customers as one stock and flow (what Amplitude and PostHog call lifecycle,
    the playbooks' "leaky bucket"), from :func:`period_retention`: ``new`` (first order ever),
    ``retained`` (active in the period before too), ``reactivated`` (back after at least one period
    without an order) and ``dormant`` (active in the period before, not in this one: S - retained).

    The identities hold in every period: active now E = new + retained + reactivated, and active
    before S = retained + dormant; so E - S = new + reactivated - dormant (the bucket's inflow
    minus its leak)."""
    out = per[["customers_start", "customers_end", "new", "retained", "reactivated"]].copy()
    out["dormant"] = out["customers_start"] - out["retained"]
    return out


def retention_change(per: pd.DataFrame, previous: int = 4, z: float = 1.96) -> dict[str, float]:
    """Whether the last period's retention rate moved against the mean of the `previous` ones, or
    is within noise: the difference d = r_last - mean(r_prev) with its binomial standard error
    se = sqrt(r_last (1 - r_last) / S_last + sum_j r_j (1 - r_j) / S_j / k^2) (independent
    periods, k = `previous`); ``moved`` is |d| > z se (a 95 % band for z = 1.96)."""
    rates = per["retention_rate"].astype(float)
    starts = per["customers_start"].astype(float)
    last, prev = rates.iloc[-1], rates.iloc[-previous - 1 : -1]
    prev_s = starts.iloc[-previous - 1 : -1]
    k = len(prev)
    if k == 0 or starts.iloc[-1] <= 0:
        return {"difference": float("nan"), "se": float("nan"), "moved": False}
    var_last = last * (1 - last) / starts.iloc[-1]
    var_prev = float((prev * (1 - prev) / prev_s.where(prev_s > 0)).sum()) / k**2
    d = float(last - prev.mean())
    se = float(np.sqrt(var_last + var_prev))
    return {"difference": d, "se": se, "moved": bool(abs(d) > z * se)}


#: Customers whose CLV the interval's gradient is computed on (every k-th customer beyond this):
#: the relative uncertainty of a total does not depend on how many customers it sums.
CLV_INTERVAL_SAMPLE = 20_000


def clv_interval(
    fit: ClvFit,
    segmented: pd.DataFrame,
    econ: Economics,
    level: float = 0.95,
    by: str | None = "segment",
) -> pd.DataFrame:
    """Intervals of the predicted margin (total and per `by` group) from the uncertainty of the
    purchase and spend models' parameters, by the delta method: with theta the log-parameters of
    both fits and Sigma their covariance (block-diagonal: the fits are separate), the relative
    gradient g_j = d log(total) / d theta_j is taken by central differences (step 1e-4) and
    se(log total) = sqrt(g' Sigma g); the interval is total x exp(+-z se) (Wald on the log scale,
    as the parameters' own intervals). Deterministic (no Monte Carlo error). It is the interval of
    the *expected* margin: what the customers' actual purchases will add around it is not in it.

    The gradient is computed on every k-th customer of `segmented` (at most
    :data:`CLV_INTERVAL_SAMPLE`; the relative error of a total does not depend on its size).
    Returns one row per group (and ``total``): ``clv``, ``ci_low``, ``ci_high``, ``se_log``."""
    zq = float(stats.norm.ppf(0.5 + level / 2))
    step = max(1, int(np.ceil(len(segmented) / CLV_INTERVAL_SAMPLE)))
    sample = segmented.iloc[::step]
    groups = sample[by] if by is not None and by in sample else pd.Series("total", sample.index)
    names = [("purchases", k) for k in fit.purchases.params] + [
        ("spend", k) for k in fit.spend.params
    ]

    def group_sums(values: pd.Series) -> pd.Series:
        out = values.groupby(groups.to_numpy()).sum()
        out["total"] = values.sum()
        return out

    def totals(pf: Any, gg: Any) -> pd.Series:
        table = clv.predictive_clv(pf, gg, sample, econ, cost_per_order=fit.cost_per_order)
        return group_sums(table["clv"])

    first = clv.predictive_clv(
        fit.purchases, fit.spend, sample, econ, cost_per_order=fit.cost_per_order
    )
    base = group_sums(first["clv"])
    # a spend parameter moves the margin per order only: clv_i = (m E[spend_i] - c) D_i with
    # D_i the discounted expected purchases, the same at every spend parameter, so it is
    # taken from the base table (D_i = clv_i / margin_i) instead of computing them again
    per_order = first["margin_per_order"].to_numpy()
    reuse = bool(np.all(np.abs(per_order) > 1e-9 * max(1.0, float(np.abs(per_order).max()))))
    discounted = first["clv"].to_numpy() / per_order if reuse else None
    m = econ.gross_margin_rate

    def spend_totals(gg: Any) -> pd.Series:
        if not reuse:
            return totals(fit.purchases, gg)
        moved = m * clv.expected_spend(gg, sample).to_numpy() - fit.cost_per_order
        return group_sums(pd.Series(moved * discounted, index=sample.index))

    h = 1e-4
    grads = []
    for which, key in names:
        shifted = []
        for sign in (1, -1):
            pf, gg = fit.purchases, fit.spend
            if which == "purchases":
                pf = replace(pf, params={**pf.params, key: pf.params[key] * np.exp(sign * h)})
                moved = totals(pf, gg)
            else:
                gg = replace(gg, params={**gg.params, key: gg.params[key] * np.exp(sign * h)})
                moved = spend_totals(gg)
            shifted.append(np.log(moved.reindex(base.index)))
        grads.append((shifted[0] - shifted[1]) / (2 * h))
    g = pd.concat(grads, axis=1).to_numpy()  # groups x parameters
    n_p = len(fit.purchases.params)
    cov = np.zeros((len(names), len(names)))
    cov[:n_p, :n_p] = fit.purchases.cov_log
    cov[n_p:, n_p:] = fit.spend.cov_log
    se = np.sqrt(np.clip(np.einsum("gi,ij,gj->g", g, cov, g), 0, None))
    full = fit.table["clv"].groupby(
        segmented.loc[fit.table.index, by].to_numpy() if by is not None and by in segmented else
        np.full(len(fit.table), "total")
    ).sum()  # fmt: skip
    full["total"] = fit.table["clv"].sum()
    full = full.reindex(base.index)
    return pd.DataFrame(
        {"clv": full, "ci_low": full * np.exp(-zq * se), "ci_high": full * np.exp(zq * se),
         "se_log": se},
        index=base.index,
    )  # fmt: skip


#: The last :func:`holdout_refit` (one entry: its orders, customers, key and result).
_HOLDOUT: dict[str, tuple] = {}


def holdout_refit(
    fit: ClvFit, orders: pd.DataFrame | Any, segmented: pd.DataFrame
) -> tuple[pd.DataFrame, Any]:
    """The holdout check's data: the calibration/holdout summary of the customers (split
    ``fit.holdout_weeks`` before the end of the as-of day: :func:`helpers.clv.calibration_holdout`
    or the engine's) and the chosen purchase model ``fit.model`` refitted on the calibration
    period. The covariate model's comparison (:func:`helpers.report.covariates_view.compare`)
    needs the same split, and the same BG/NBD as its restricted model on it, before
    :func:`holdout_check` runs: the last result is kept (one entry, with the orders and summary
    objects it was computed from, compared by identity) and returned again for the same orders,
    customers, model and holdout; :func:`holdout_check` releases it. The callers read the
    summary and never change it."""
    as_of, unit = segmented.attrs["as_of"], segmented.attrs["time_unit"]
    key = (fit.model, float(fit.holdout_weeks), str(as_of), unit)
    kept = _HOLDOUT.get("last")
    if kept is not None and kept[0] is orders and kept[1] is segmented and kept[2] == key:
        return kept[3], kept[4]
    cal_end = periods.as_of_day(as_of) - pd.Timedelta(days=round(fit.holdout_weeks * 7))
    cal = _calibration_split(orders, segmented, cal_end)  # fit_clv's, when it made the same
    model = clv.PURCHASE_MODELS[fit.model](cal)
    _HOLDOUT["last"] = (orders, segmented, key, cal, model)
    return cal, model


#: The last calibration/holdout split (one entry: its orders, customers, key and summary).
_SPLIT: dict[str, tuple] = {}


def _repeat_buyers(segmented: pd.DataFrame) -> pd.DataFrame:
    """The customers the spend model is fitted on (:func:`fit_clv`): a repeat purchase, and a
    positive mean spend over the repeat purchases (:func:`_repeat_mask`)."""
    return segmented.loc[_repeat_mask(segmented)]


def _repeat_mask(segmented: pd.DataFrame) -> np.ndarray:
    """Which rows of `segmented` are :func:`_repeat_buyers`: counting them needs no copy of
    their rows (at 8.4M customers 2.7 s)."""
    return ((segmented["frequency"] > 0) & (segmented["monetary_value"] > 0)).to_numpy()


def _holdout(segmented: pd.DataFrame, holdout_share: float = 0.25) -> tuple[int, pd.Timestamp]:
    """:func:`fit_clv`'s holdout: its days (the last `holdout_share` of the data's span, from 28
    days to a year) and the calibration period's last day."""
    return _holdout_days(segmented.attrs["as_of"], segmented["first_order"].min(), holdout_share)


def _holdout_days(
    as_of: str | pd.Timestamp, first: pd.Timestamp, holdout_share: float = 0.25
) -> tuple[int, pd.Timestamp]:
    """:func:`_holdout` of the data as of `as_of` whose earliest purchase is at `first`."""
    span_days = (periods.as_of_end(as_of) - first) / pd.Timedelta(days=1)
    hold_days = int(min(365, max(28, holdout_share * span_days)))
    return hold_days, periods.as_of_day(as_of) - pd.Timedelta(days=hold_days)


def _calibration_split(
    orders: pd.DataFrame | Any, segmented: pd.DataFrame, cal_end: pd.Timestamp
) -> pd.DataFrame:
    """The calibration/holdout summary of :func:`helpers.clv.calibration_holdout` (or the
    engine's) split at the end of `cal_end`, the holdout through the as-of day, in the
    customers' time unit. :func:`fit_clv` makes it (the holdout comparison) and
    :func:`holdout_refit` needs the same one (the same ``cal_end``: ``holdout_weeks`` is
    fit_clv's holdout days / 7): the last split is kept (one entry, with the orders and summary
    objects it came from, compared by identity) and returned again for the same orders,
    customers and dates; :func:`holdout_check` releases it. The callers never change it."""
    as_of, unit = segmented.attrs["as_of"], segmented.attrs["time_unit"]
    key = (pd.Timestamp(cal_end), str(as_of), unit)
    kept = _SPLIT.get("last")
    if kept is not None and kept[0] is orders and kept[1] is segmented and kept[2] == key:
        return kept[3]
    _SPLIT.clear()  # the previous split's memory goes before the new one is made
    eng = _engine(orders)
    split = eng.calibration_holdout if eng is not None else clv.calibration_holdout
    cal = split(purchases(orders), cal_end, as_of, unit)
    _SPLIT["last"] = (orders, segmented, key, cal)
    return cal


def holdout_check(
    fit: ClvFit, orders: pd.DataFrame | Any, segmented: pd.DataFrame, z: float = 1.96
) -> dict[str, float]:
    """The model check a client understands: over the last ``fit.holdout_weeks`` weeks, held out,
    the chosen purchase model (fitted on the data before them) predicted P purchases by the
    customers it knew; A happened. The sampling band is P +- z sqrt(V) with V the sum over
    customers of the conditional variance of their holdout purchases, approximated by the
    negative binomial's E + E^2 / (r + x) (the gamma-updated purchase rate of each customer, Fader,
    Hardie & Lee 2005; dropout adds more, so the band is if anything narrow). ``within_band`` is
    A inside it; outside it, the lifetime values are unreliable: the business changed in that
    window (a launch, a price change) or the model does not fit these customers."""
    cal, model = holdout_refit(fit, orders, segmented)
    _HOLDOUT.clear()  # the shared split is used up: its memory is released
    _SPLIT.clear()
    duration = float(cal["holdout_duration"].iloc[0])
    e = np.asarray(clv.expected_purchases(model, cal, duration), dtype=float)
    var = e + e**2 / (model.params["r"] + cal["frequency"].to_numpy(dtype=float))
    predicted, actual = float(e.sum()), float(cal["holdout_purchases"].sum())
    half = z * float(np.sqrt(var.sum()))
    return {"weeks": float(fit.holdout_weeks), "customers": int(len(cal)),
            "predicted": predicted, "actual": actual, "band_low": predicted - half,
            "band_high": predicted + half, "error": actual / predicted - 1 if predicted else float("nan"),
            "within_band": bool(predicted - half <= actual <= predicted + half)}  # fmt: skip


def recommendations(
    fit: ClvFit,
    segmented: pd.DataFrame,
    audiences: dict[str, pd.Index],
    econ: Economics,
    intervals: pd.DataFrame | None = None,
    holdout_share: float = 0.2,
    weeks: float = 13.0,
    measured: dict[str, dict[str, Any]] | None = None,
) -> pd.DataFrame:
    """Each recommended contact with the arithmetic behind it, ranked by the value at stake.

    For an audience of n customers: the value at stake V = their predicted margin over the
    horizon (with the interval of :func:`clv_interval` when its rows are given, widened to the
    audience by the largest relative error of the segments it draws on); the cost C = n x
    ``econ.cost_per_contact``; the effect is not measured, so the break-even effect is C / V (the
    relative lift of the audience's margin that pays for the contacts); the base rate p of buying
    within `weeks` weeks (:func:`helpers.clv.p_purchase_within`); and the holdout test to run: `holdout_share` of
    the audience held out, the smallest relative lift on p it detects with 80 % power at 5 %
    (:func:`helpers.experiments.mde_two_proportions`), and what that lift is worth. With the
    effect unmeasured the decision is "test first", never "do".

    `measured`: action -> a randomized campaign's incremental margin per send (``campaign``,
    ``estimate``, ``ci_low``, ``ci_high``: :func:`helpers.report.beyond_orders.campaign_results`),
    e.g. the client's own win-back flow against its holdout. Such an action gets
    ``measured_value`` = n x that margin with its interval (``measured_low``, ``measured_high``)
    and the decision its interval supports (:func:`helpers.experiments.decide_on_interval`):
    "roll out" (all of it above 0), "stop" (all below) or still "test first" (it spans 0). The
    measured effect is that campaign's, on its own audience: the closer the audiences, the
    better it transfers."""
    unit_weeks = segments.unit_days(segmented.attrs["time_unit"]) / 7
    p = clv.p_purchase_within(fit.purchases, segmented, weeks / unit_weeks)
    # each audience's customers as positions in the table (the audience's order, as
    # Index.intersection keeps it): one hash lookup per audience, then positional takes
    table_ids = fit.table.index
    same = table_ids.equals(segmented.index) and table_ids.equals(p.index)
    rows = []
    for name, ids in audiences.items():
        ids = pd.Index(ids)
        if same and ids.is_unique:
            pos = positions(table_ids, ids)
            pos = pos[pos >= 0]
            clv_of, p_of = fit.table["clv"].iloc[pos], p.iloc[pos]
            seg_of = segmented["segment"].iloc[pos] if "segment" in segmented else None
        else:
            ids = ids.intersection(table_ids)
            clv_of, p_of = fit.table.loc[ids, "clv"], p.loc[ids]
            seg_of = segmented.loc[ids, "segment"] if "segment" in segmented else None
        n = len(clv_of)
        if n == 0:
            continue
        value = float(clv_of.clip(lower=0).sum())
        rel = 0.0
        if intervals is not None and seg_of is not None:
            segs = pd.Index(seg_of.unique()).astype(str)  # the segments it draws on
            rel = float(intervals.reindex(segs)["se_log"].max()) if len(segs) else 0.0
        cost = n * econ.cost_per_contact
        base = float(p_of.mean())
        control = max(1, int(round(holdout_share * n)))
        ratio = (n - control) / control
        mde = (
            experiments.mde_two_proportions(base, control, ratio=ratio) / base
            if base > 0
            else np.inf
        )
        rows.append({"action": name, "customers": n, "value": value,
                     "value_low": value * np.exp(-1.96 * rel), "value_high": value * np.exp(1.96 * rel),
                     "cost": cost, "break_even_effect": cost / value if value > 0 else np.inf,
                     "base_rate": base, "test_control": control, "detectable_effect": float(mde),
                     "detectable_value": value * float(mde), "decision": "test first"})  # fmt: skip
        m = (measured or {}).get(name)
        if m:
            verdict = experiments.decide_on_interval(m["ci_low"], m["ci_high"])
            rows[-1] |= {
                "measured_by": str(m["campaign"]), "measured_value": n * m["estimate"],
                "measured_low": n * m["ci_low"], "measured_high": n * m["ci_high"],
                "decision": {"keep": "roll out", "stop": "stop"}.get(verdict, "test first"),
            }  # fmt: skip
    out = pd.DataFrame(rows)
    return out.sort_values("value", ascending=False, ignore_index=True) if len(out) else out


def _order_dates(bought: pd.DataFrame | Any, max_customers: int = 50_000) -> pd.DataFrame:
    """customer_id, order_date and amount of the purchases in pandas: all of them, or from an Ibis
    table (millions of orders) those of about `max_customers` customers chosen by a digest of the
    id (:func:`helpers.report.engine.sample_customers`: the same customers every run and on every
    backend; computed once per table, :func:`helpers.report.engine._memo`);
    ``attrs["share"]`` is the share of customers kept (1 for pandas)."""
    if _engine(bought) is None:
        o = bought[["customer_id", "order_date", "amount"]]
        ids = o["customer_id"]
        # categorical ids (the validated table's) as their codes: the same groups, no unused ones
        return (
            o.assign(customer_id=ids.cat.codes) if isinstance(ids.dtype, pd.CategoricalDtype) else o
        )
    eng = _engine(bought)

    def sample() -> pd.DataFrame:
        # the customers counted on the hand-over's integer codes (no text ids joined)
        n = int(eng.coded(bought).customer_id.nunique().execute())
        t = bought.select("customer_id", "order_date", "amount")
        if n > max_customers:
            k = -(-n // max_customers)
            t = eng.sample_customers(t, k)
        out = t.execute()
        out.attrs["share"] = out["customer_id"].nunique() / n if n else 1.0
        return out

    # lost_window and nrr_change ask for the same customers' orders
    return eng.cached(("order_dates", max_customers), sample, bought)


def lost_window(
    bought: pd.DataFrame | Any,
    as_of: str | pd.Timestamp,
    freq: str = "Q",
    comeback: float = 0.30,
    follow_days: int = 365,
    min_followed: int = 50,
    step_days: int = 30,
    max_days: int = 720,
) -> dict[str, Any]:
    """When a quiet customer is *lost*, chosen by the data (notebook 03's trade-off of "no order
    in N days", :func:`helpers.churn.definition_tradeoff`): the smallest N (a multiple of
    `step_days` longer than one `freq` period, at most `max_days`) at which the share of the
    waits that reached N days and still ended with an order within the next `follow_days` days
    is below `comeback` with 95 % confidence: the upper end of its Wilson interval (Wilson 1927;
    Brown, Cai & DasGupta 2001) below `comeback`, so the choice does not rest on a point estimate.
    The unit is a wait after an order (a gap), followed only when its whole window lies in the
    data (no selection on the outcome), at least `min_followed` of them; gaps of one customer
    are counted as independent, so the interval is if anything narrow.

    Before N days a customer who did not buy in a period is *lapsed* (churn per period counts
    them, and many come back: reactivated); after N days, *lost*. Returns ``days`` (None when no N
    qualifies: ``reason`` says why), ``came_back``, ``ci_low``, ``ci_high``, ``followed``,
    ``comeback``, ``follow_days`` and ``max_days``."""
    from statsmodels.stats.proportion import proportion_confint

    from helpers import churn

    period_days = {"M": 31, "Q": 92, "W": 7}[freq]
    grid = [d for d in range(step_days, max_days + 1, step_days) if d > period_days]
    out: dict[str, Any] = {"days": None, "came_back": float("nan"), "ci_low": float("nan"),
                           "ci_high": float("nan"), "followed": 0, "comeback": comeback,
                           "follow_days": follow_days, "max_days": max_days,
                           "reason": ""}  # fmt: skip
    gaps = churn.order_gaps(_order_dates(bought), as_of)
    trade = churn.definition_tradeoff(gaps, grid, follow_days=follow_days, km=False)
    trade = trade[trade["followed"] >= min_followed]
    back = (trade["came_back"] * trade["followed"]).round().astype(int)
    low, high = proportion_confint(back, trade["followed"], alpha=0.05, method="wilson")
    ok = trade.index[np.asarray(high) < comeback]
    if len(ok) == 0:
        out["reason"] = "no_window"
        return out
    days = int(ok[0])
    out.update(days=days, came_back=float(trade.loc[days, "came_back"]),
               ci_low=float(low[days]), ci_high=float(high[days]),
               followed=int(trade.loc[days, "followed"]))  # fmt: skip
    return out


def customer_states(
    segmented: pd.DataFrame, per: pd.DataFrame, lost_days: int | None
) -> dict[str, int]:
    """Every customer at the as-of date in one state, from the days since their last purchase
    (``recency_days`` of :func:`segment_customers`): ``active`` (a purchase in the last complete
    period or after it), ``lapsed`` (no purchase since, but within `lost_days` days) and ``lost``
    (none in `lost_days` days; 0 when `lost_days` is None, then the lapsed are all the quiet).
    The three add up to the customers."""
    as_of = periods.as_of_day(segmented.attrs["as_of"])
    start = per.index[-1].start_time
    recency = segmented["recency_days"].to_numpy(float)
    active = recency <= (as_of - start).days
    lost = recency > lost_days if lost_days is not None else np.zeros(len(recency), dtype=bool)
    lost &= ~active
    return {"active": int(active.sum()), "lapsed": int((~active & ~lost).sum()),
            "lost": int(lost.sum()), "customers": int(len(recency))}  # fmt: skip


def nrr_change(
    bought: pd.DataFrame | Any,
    freq: str,
    as_of: str | pd.Timestamp,
    back: int,
    z: float = 1.96,
    per: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Net revenue retention of the last complete period against `back` periods before it (a
    year: the same season), with the delta-method standard error of each ratio
    NRR = sum_i y_i / sum_i x_i over the customers i active in the period before (x_i their
    revenue then, y_i now): var(NRR) ~ sum_i (y_i - NRR x_i)^2 / (sum_i x_i)^2 (the ratio
    estimator's linearization, Cochran 1977, ch. 6; A. Deng et al. 2018 for metric analytics).
    ``moved`` is |difference| > z se (the two periods taken as independent). Keys ``last``,
    ``before`` (period labels), ``nrr_last``, ``nrr_before``, ``se_last``, ``se_before``,
    ``difference``, ``se``, ``moved``; NaN and moved False when the history is shorter.

    With `per` (:func:`period_retention` of the same purchases) the two NRR are its figures, the
    ones the report's table shows; from an Ibis table of more customers than :func:`_order_dates`
    keeps, the standard errors come from that sample, scaled by sqrt(share kept) (the standard
    error of a ratio estimator falls as 1 / sqrt(n))."""
    o = _order_dates(bought)
    scale = float(np.sqrt(o.attrs.get("share", 1.0)))
    o = o[pd.to_datetime(o["order_date"]) < periods.as_of_end(as_of)]
    code = periods.period_codes(pd.to_datetime(o["order_date"]), freq)
    last = periods.last_complete_period(as_of, freq)
    rev = pd.Series(o["amount"].to_numpy(float)).groupby([o["customer_id"].to_numpy(), code]).sum()
    out: dict[str, Any] = {"last": None, "before": None}

    def one(p: int) -> tuple[float, float]:
        then = rev.xs(p - 1, level=1) if (p - 1) in rev.index.get_level_values(1) else pd.Series()
        then = then[then > 0]
        if then.empty:
            return float("nan"), float("nan")
        now = (
            rev.xs(p, level=1).reindex(then.index, fill_value=0.0)
            if p in rev.index.get_level_values(1)
            else then * 0
        )
        r = float(now.sum() / then.sum())
        return r, float(np.sqrt(((now - r * then) ** 2).sum()) / then.sum())

    nrr_l, se_l = one(last)
    nrr_b, se_b = one(last - back)
    se_l, se_b = se_l * scale, se_b * scale
    idx = periods.period_index(np.array([last - back, last]), freq)
    if per is not None:  # the table's figures (all customers)
        shown = per["net_revenue_retention"].astype(float)
        shown.index = shown.index.astype(str)
        nrr_l = float(shown.get(str(idx[1]), np.nan))
        nrr_b = float(shown.get(str(idx[0]), np.nan))
    d, se = nrr_l - nrr_b, float(np.hypot(se_l, se_b))
    out.update(last=str(idx[1]), before=str(idx[0]), nrr_last=nrr_l, nrr_before=nrr_b,
               se_last=se_l, se_before=se_b, difference=d, se=se,
               moved=bool(np.isfinite(d) and abs(d) > z * se))  # fmt: skip
    return out


def unused_inputs(
    mapping: Any, econ: Economics, notes: dict[str, Any], fold: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What the amounts are before or after, from what the mapping maps (the report says it
    rather than leave it silent). `econ` is the mapping's economics, `fold` the second value of
    :func:`fold_economics` (what the data let the report use).

    ``returns`` - 'returned' when a ``returned`` column is mapped (returned orders' margin is
    netted and their handling charged: :func:`fold_economics`), else 'netted' when refund rows
    are netted (``refunds: net``), 'excluded' when refunded or cancelled rows are dropped
    (``exclude``), 'none_found' when the mapping names refunded amounts and none came, else
    'not_mapped' (returns not in the file: margins are before returns); ``discounts`` - 'mapped'
    when a ``discount`` column is mapped (inside the amount paid; the cost of goods is charged on
    the list price, amount + discount, so they come out of the margin), else 'not_mapped' (the
    list price is taken as the amount paid: margins are before discounts); ``unused_costs`` -
    the mapping's costs above zero that no figure uses: the cost per support ticket without a
    ``tickets`` table, the handling cost of a return without a ``returned`` column."""
    cols = getattr(mapping, "columns", {}) or {}
    fold = fold or {}
    rows = int(notes.get("refund_rows", 0) or 0)
    policy = notes.get("refunds", getattr(mapping, "refunds", "reject"))
    if fold.get("returns_mapped"):
        returns = "returned"
    elif rows and policy in ("net", "exclude"):
        returns = {"net": "netted", "exclude": "excluded"}[policy]
    else:
        returns = "none_found" if "refunded_amount" in cols else "not_mapped"
    unused = {"cost_per_ticket": 0.0 if fold.get("tickets_mapped") else econ.cost_per_ticket,
              "return_handling_cost": 0.0 if fold.get("returns_mapped") else
              econ.return_handling_cost}  # fmt: skip
    return {"returns": returns, "refund_rows": rows,
            "refund_amount": float(notes.get("refund_amount", 0.0) or 0.0),
            "discounts": "mapped" if "discount" in cols else "not_mapped",
            "unused_costs": {k: float(v) for k, v in unused.items() if v > 0}}  # fmt: skip


def fold_economics(
    orders: pd.DataFrame | Any, econ: Economics, tickets: pd.DataFrame | None = None
) -> tuple[Economics, dict[str, Any]]:
    """The client's economics as the report's lifetime values use them: `econ` (the mapping's,
    :func:`client_economics`) folded by :func:`helpers.economics.per_amount_paid` - the one
    function notebook 04 folds with - on the purchases (amount >= 0) and what the mapping names:

        m = sum_i margin_i / sum_i amount_i,  margin_i = (amount_i - (1 - g)(amount_i + discount_i))
            for a kept order, 0 for a returned one;
        c = shipping + return handling x returned orders / orders + cost per ticket x tickets / orders,

    with g the gross margin rate (a share of the list price, amount + discount). A ``discount``
    column is inside the amount paid (the orders schema: amount = money paid, net of discount),
    so it lowers m; a ``returned`` column (true for a returned order) nets the returned orders'
    margin and charges their handling; a `tickets` table (``tables: tickets``, one row per
    support ticket) charges the tickets. Without them the list price is the amount paid, m = g
    and c = shipping exactly. From an Ibis table only the counts and sums come back
    (:func:`helpers.report.engine.order_sums`, exact at the money scale, as in pandas).

    Returns the folded economics (``cost_per_ticket`` and ``return_handling_cost`` inside c) and
    ``orders``, ``returned_orders``, ``returned_amount``, ``discount_amount``, ``tickets``,
    ``margin_rate`` (m), ``cost_per_order`` (c), ``shipping``, ``return_cost_per_order``,
    ``ticket_cost_per_order`` and which of ``returns_mapped``, ``discounts_mapped`` and
    ``tickets_mapped`` the data gave."""
    bought = purchases(orders)
    returns, discounts = "returned" in bought.columns, "discount" in bought.columns
    # the counts and exact sums the fold reads: the engine's one aggregate, or the frame's
    eng = _engine(bought)
    sums = eng.order_sums(bought) if eng is not None else economics.OrderSums.of(bought)
    n = sums.orders
    n_tickets = None if tickets is None else len(tickets)
    folded = econ.replace(cost_per_ticket=0.0, return_handling_cost=0.0)
    if n and sums.amount > 0:
        folded = economics.per_amount_paid(sums, tickets, econ)
    if not (returns or discounts):  # list price = amount paid: m = g, not g up to rounding
        folded = folded.replace(gross_margin_rate=econ.gross_margin_rate)
    ret_cost = econ.return_handling_cost * sums.returned / n if n and returns else 0.0
    tk_cost = econ.cost_per_ticket * (n_tickets or 0) / n if n else 0.0
    info = {
        "orders": int(n), "returned_orders": int(sums.returned),
        "returned_amount": float(sums.returned_amount),
        "discount_amount": float(sums.discount) if discounts else 0.0,
        "tickets": n_tickets, "margin_rate": float(folded.gross_margin_rate),
        "cost_per_order": float(folded.shipping_per_order), "shipping": float(econ.shipping_per_order),
        "return_cost_per_order": float(ret_cost), "ticket_cost_per_order": float(tk_cost),
        "returns_mapped": returns, "discounts_mapped": discounts, "tickets_mapped": tickets is not None,
    }  # fmt: skip
    return folded, info


#: The fewest acquisition cohorts an age of the pooled cohort curve should rest on before the
#: report reads it as a measured rate (fewer: one or two seasons of acquisition decide it).
MIN_COHORTS = 5


def cohort_support(counts: pd.DataFrame, min_cohorts: int = MIN_COHORTS) -> dict[str, Any]:
    """How many acquisition cohorts each age of the pooled curve rests on
    (:func:`helpers.cohorts.average_curve` pools the cohorts observed at age n; a cohort is
    observed at n when its cell of `counts`, :func:`cohort_table`, is not missing), and from which
    age on fewer than `min_cohorts` do. Returns ``cohorts`` (age -> number of cohorts),
    ``thin_from`` (the first age >= 1 resting on fewer than `min_cohorts`, None if none),
    ``cohorts_at_thin`` (how many cohorts that age has) and ``min_cohorts``."""
    k = counts.notna().sum().astype(int)
    thin = [int(a) for a, v in k.items() if int(a) >= 1 and v < min_cohorts]
    first = min(thin) if thin else None
    return {"cohorts": {int(a): int(v) for a, v in k.items()}, "thin_from": first,
            "cohorts_at_thin": int(k.loc[first]) if first is not None else None,
            "min_cohorts": int(min_cohorts)}  # fmt: skip
