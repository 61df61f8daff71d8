"""The client's orders, one way: the client's file -> the canonical orders table and its data note
-> the hand-over to notebook 08 -> the table the analysis takes.

1. :func:`read_client_orders` reads and validates the file with the mapping (:mod:`helpers.tables`:
   DuckDB for a clean file, the pandas reader's messages for one with problems), then applies the
   mapping's row shape, refunds policy, statuses, cancellations and missing customers (see
   :mod:`helpers.report.mapping` for the keys); :func:`check_enough_data` refuses a history too
   short for a report.
2. :func:`save_validated` hands the table, its notes and the mapping as read to the notebook in
   one Arrow file (the engine's table: one DuckDB database file): the mapping file and the
   client's file are each read once.
3. :func:`open_orders` (in the notebook) maps that file and returns what the analysis takes: a
   pandas DataFrame, or from :data:`ENGINE_MIN_ROWS` an Ibis table (:mod:`helpers.report.engine`),
   and the notes with the mapping. The writer and the reader of the hand-over live here together:
   one module owns its format.

A database table (:mod:`helpers.report.sources`) stays where it is: :func:`read_orders_in_warehouse`
checks it and applies the rules in its database, :func:`save_warehouse` hands over the notes only
(the URL goes through the kernel's environment) and :func:`open_orders` opens the table there again
(:func:`open_warehouse`), so the analysis's aggregations run in that database.

:mod:`helpers.report.analysis` reads nothing; it computes on what :func:`open_orders` returns.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather

from helpers import periods
from helpers.report.extra_tables import CUSTOMER_TABLES, read_extra_tables
from helpers.report.mapping import (
    ClientMapping,
    client_schema,
    mapping_as_dict,
    mapping_from_dict,
)
from helpers.report.sources import ENGINE_MIN_BYTES
from helpers.report.text import Reason
from helpers.tables import DataValidationError, read_table_info

__all__ = [
    "Note",
    "read_client_orders",
    "check_enough_data",
    "save_validated",
    "open_orders",
    "read_client_tables",
    "save_tables",
    "open_tables",
    "ENGINE_MIN_ROWS",
    "ENGINE_MIN_BYTES",
    "PANDAS_MAX_BYTES",
    "read_orders",
    "read_orders_in_engine",
    "order_count",
    "read_orders_in_warehouse",
    "save_warehouse",
    "open_warehouse",
    "WAREHOUSE_SUFFIX",
]


class Note(Reason):
    """A sentence of the data note: plain English, and its message key and values (numbers
    unformatted) so the report can say it in the client's language, as a
    :class:`helpers.report.Reason` does. Keys: ``data_note.amount_from_lines`` (rows, quantity,
    unit_price), ``.missing_customers`` (rows, revenue), ``.other_status`` (rows, statuses: counts
    by status, amount), ``.refunds_excluded`` and ``.refunds_netted`` (rows, kinds: counts by kind,
    amount), ``.lines_summed`` (lines, orders), ``.tz_converted`` (rows, timezone), ``.tz_kept``
    (rows), ``.zero_value`` (orders)."""


def _money(x: float, currency: str) -> str:
    return f"{x:,.2f} {currency}"


def _n(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


_STR = pd.StringDtype("pyarrow")


# the data note's sentences, one builder each: the pandas rules below and the engine's
# (:func:`read_orders_in_engine`) say the same thing from the same counts
def _note_amount_from_lines(rows: int, labels: dict[str, str], cols: dict[str, str]) -> Note:
    return Note(
        f"Amounts are quantity x unit price ({labels.get('quantity', 'quantity')} x "
        f"{labels.get('unit_price', 'unit_price')}) on each of the {_n(rows, 'row')}.",
        "data_note.amount_from_lines", rows=rows, quantity=cols["quantity"],
        unit_price=cols["unit_price"],
    )  # fmt: skip


def _note_after_as_of(n: int, as_of: str, revenue: float, cur: str) -> Note:
    return Note(
        f"{_n(n, 'row')} after the as-of date {as_of} "
        f"{'was' if n == 1 else 'were'} left out ({_money(revenue, cur)}).",
        "data_note.after_as_of", rows=n, as_of=as_of, revenue=revenue,
    )  # fmt: skip


def _note_missing_customers(n: int, revenue: float, cur: str) -> Note:
    return Note(
        f"{_n(n, 'row')} without a customer id (blank or a placeholder) "
        f"{'was' if n == 1 else 'were'} dropped, with {_money(revenue, cur)} of revenue "
        f"(missing_customer: drop).",
        "data_note.missing_customers", rows=n, revenue=revenue,
    )  # fmt: skip


def _note_other_status(
    n: int, statuses: dict[str, int], amount: float, known: list[str], cur: str
) -> Note:
    listed = ", ".join(f"'{k}' ({v:,})" for k, v in statuses.items())
    return Note(
        f"{_n(n, 'row')} with another status than {known} "
        f"{'was' if n == 1 else 'were'} left out ({listed}; {_money(amount, cur)}).",
        "data_note.other_status", rows=n, statuses=statuses, amount=amount,
    )  # fmt: skip


def _note_refunds(policy: str, n: int, kinds: dict[str, int], total: float, cur: str) -> Note:
    what = ", ".join(f"{k}: {v:,}" for k, v in kinds.items())
    if policy == "exclude":
        return Note(
            f"{_n(n, 'refund or cancellation row')} ({what}; {_money(total, cur)}) "
            f"{'was' if n == 1 else 'were'} left out (refunds: exclude).",
            "data_note.refunds_excluded", rows=n, kinds=kinds, amount=total,
        )  # fmt: skip
    return Note(
        f"{_n(n, 'refund or cancellation row')} ({what}) {'was' if n == 1 else 'were'} "
        f"netted against revenue: {_money(total, cur)} (refunds: net); a refunded order "
        f"keeps what was not refunded, and rows below zero are not purchases.",
        "data_note.refunds_netted", rows=n, kinds=kinds, amount=total,
    )  # fmt: skip


def _note_lines_summed(lines: int, orders: int) -> Note:
    return Note(
        f"{_n(lines, 'order line')} {'was' if lines == 1 else 'were'} summed into "
        f"{_n(orders, 'order')} (rows: order_lines).",
        "data_note.lines_summed", lines=lines, orders=orders,
    )  # fmt: skip


def _note_zero_value(zero: int) -> Note:
    return Note(
        f"{_n(zero, 'zero-value order')} {'is' if zero == 1 else 'are'} kept and count as activity.",
        "data_note.zero_value", orders=zero,
    )  # fmt: skip


def _text(s: pd.Series) -> pd.Series:
    """A column as text in Arrow memory (NA stays NA): string methods without Python objects."""
    return s if s.dtype == _STR else s.astype(_STR)


def read_client_orders(
    path: str | Path, mapping: ClientMapping, reader: str = "auto"
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The client's file as a canonical orders table (one row per order), and notes on what was
    done to it.

    Steps, in order: read and validate (:func:`helpers.tables.read_table_info`); amount = quantity x
    unit_price when only those are mapped; rows without a customer id (blank or one of
    `customer_placeholders`) raise an error or, with ``missing_customer: drop``, are dropped;
    statuses outside ``status.keep`` / ``status.cancelled`` are left out; cancellations (prefix),
    refunded statuses, refunded amounts and negative amounts follow the refunds policy; order
    lines are summed into orders (amount and quantity summed; date, customer and other columns
    of the first line; an order whose lines name two customers is an error).

    Returns (orders, notes): orders has order_id, customer_id (text unless ``id_type: integer``),
    order_date (tz-naive: converted to `timezone` or as written), amount (float, client
    currency; zero-value orders kept) and any other mapped column, in the file's order; notes has
    ``rows`` (data rows read), ``refund_rows`` and ``refund_amount`` (refunds and cancellations
    and their sum, negative), ``refunds`` (the policy), ``as_of`` (given, or the day of the
    file's last row) and ``data_note`` (plain-English sentences on what was dropped, netted,
    summed, converted or kept), ``reader`` ('duckdb' or 'pandas': :func:`helpers.tables.read_table_info`;
    `reader` chooses as there) and ``mapping`` (the `mapping` itself, so that whatever takes
    the orders takes the rules they were read with). Raises :class:`DataValidationError`.
    """
    # copy-on-write: selecting columns, assigning the netted amounts and dropping rows share
    # memory with the table read instead of copying millions of rows at each step
    with pd.option_context("mode.copy_on_write", True):
        return _read_client_orders(path, mapping, reader)


def _read_client_orders(
    path: str | Path, mapping: ClientMapping, reader: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    file = Path(path).name
    try:
        df, read_attrs = read_table_info(
            path, client_schema(mapping), reader=reader, keep_unmapped=False,
            **mapping.read_kwargs(),
        )  # fmt: skip
    except DataValidationError as err:
        hint = "; if the file has one row per order line, set rows: order_lines in the mapping"
        raise DataValidationError(
            [
                p.with_text(p + hint) if p.column == "order_id" and p.code == "duplicated" else p
                for p in err.problems
            ]
        ) from None
    positions, unit, labels = read_attrs["positions"], read_attrs["unit"], read_attrs["labels"]
    cur = mapping.currency
    cols = mapping.read_columns()
    note: list[str] = []

    def where(mask: pd.Series) -> str:
        """'lines 3, 7, …' of the rows in `mask` (its index: the row's place in the file)."""
        idx = mask.index[mask.to_numpy(dtype=bool)].to_numpy()
        more = ", …" if len(idx) > 5 else ""
        lines = ", ".join(str(v) for v in positions()[idx[:5]])
        return f"{unit}{'s' if len(idx) > 1 else ''} {lines}{more}"

    if "amount" not in df.columns:
        df["amount"] = df["quantity"] * df["unit_price"]
        note.append(_note_amount_from_lines(len(df), labels, cols))
    notes: dict[str, Any] = {"rows": len(df), "refunds": mapping.refunds, "mapping": mapping}
    notes["reader"] = read_attrs["reader"]
    last_day = df["order_date"].max().normalize()  # of the file, refunds included
    notes["as_of"] = str((pd.Timestamp(mapping.as_of) if mapping.as_of else last_day).date())
    if mapping.as_of:  # rows after the as-of day: left out and counted (helpers.periods)
        later = (df["order_date"] >= periods.as_of_end(mapping.as_of)).to_numpy()
        if later.any():
            n, revenue = int(later.sum()), float(df.loc[later, "amount"].sum())
            df = df.loc[~later]
            note.append(_note_after_as_of(n, notes["as_of"], revenue, cur))

    if mapping.rows == "order_lines":  # order-level cells often stand on the first line only
        for c in ("customer_id", "status"):
            if c in df.columns and df[c].isna().any():
                df[c] = df[c].fillna(df.groupby("order_id")[c].transform("first"))

    # rows without a customer
    cid = df["customer_id"]
    placeholders = {p.strip().lower() for p in mapping.customer_placeholders}
    missing = cid.isna() | _text(cid).str.strip().str.lower().isin(placeholders).fillna(False)
    missing = missing.astype(bool)
    if missing.any():
        n, revenue = int(missing.sum()), float(df.loc[missing, "amount"].sum())
        if mapping.missing_customer == "error":
            example = df.loc[missing, "customer_id"].fillna("").astype(str).iloc[0]
            raise DataValidationError(
                [
                    f"{file}, column {labels['customer_id']}: {_n(n, 'row has', 'rows have')} no customer id "
                    f"(blank or a placeholder such as 'guest' or 'NULL'; {where(missing)}; e.g. '{example}'); "
                    f"orders without a customer cannot be followed over time: set missing_customer: drop "
                    f"in the mapping to leave them out (the report then says how many)"
                ]
            )
        df = df.loc[~missing]
        note.append(_note_missing_customers(n, revenue, cur))

    # statuses that are neither orders nor refunds
    refund = pd.Series(0.0, index=df.index)
    kinds = pd.Series("", index=df.index)
    if mapping.status:
        scol = (
            "status"
            if "status" in cols
            else next(k for k, v in cols.items() if v == mapping.status["column"])
        )
        status = _text(df[scol].fillna("")).str.strip().str.lower()
        keep = {s.lower() for s in mapping.status["keep"]}
        cancelled = {s.lower() for s in mapping.status["cancelled"]}
        other = ~status.isin(keep | cancelled)
        if other.any():
            counts = status[other].replace("", "(blank)").value_counts()
            note.append(_note_other_status(
                int(other.sum()), {str(k): int(v) for k, v in counts.items()},
                float(df.loc[other, "amount"].sum()), sorted(keep | cancelled), cur,
            ))  # fmt: skip
            df, status = df.loc[~other], status[~other]
            refund, kinds = refund[~other], kinds[~other]
        full = status.isin(cancelled)
        refund = refund.where(~full, df["amount"].clip(lower=0))
        kinds = kinds.where(~full, "status " + status)
    if "refunded_amount" in df.columns:
        part = df["refunded_amount"].fillna(0.0)
        refund = np.maximum(refund, part)
        kinds = kinds.where(~((part > 0) & kinds.eq("")), "refunded amount")
    if mapping.cancellations:
        ccol = next(
            (k for k, v in cols.items() if v == mapping.cancellations["column"]), "cancellation"
        )
        cancel = (
            df[ccol]
            .fillna("")
            .astype(str)
            .str.strip()
            .str.startswith(mapping.cancellations["prefix"])
        )
        df = df.assign(amount=df["amount"].where(~cancel, -df["amount"].abs()))
        kinds = kinds.where(~cancel, "cancellation")
    negative = df["amount"] < 0
    kinds = kinds.where(~(negative & kinds.eq("")), "negative amount")
    refunded = negative | (refund > 0)
    refund_total = round(float(df.loc[negative, "amount"].sum() - refund[~negative].sum()), 2)
    notes["refund_rows"] = int(refunded.sum())
    notes["refund_amount"] = round(refund_total, 2)
    if refunded.any():
        n = int(refunded.sum())
        kind_counts = {str(k): int(v) for k, v in kinds[refunded].value_counts().items()}
        what = ", ".join(f"{k}: {v:,}" for k, v in kind_counts.items())
        if mapping.refunds == "reject":
            shown = "order_id" if "order_id" in df.columns else "amount"
            example = df.loc[refunded, shown].astype(str).iloc[0]
            raise DataValidationError(
                [
                    f"{file}: {_n(n, 'row is a refund or cancellation', 'rows are refunds or cancellations')} "
                    f"({what}; {where(refunded)}; e.g. '{example}'), and the mapping's refunds policy is "
                    f"'reject'; set refunds: exclude (leave them out) or refunds: net (subtract them from revenue)"
                ]
            )
        if mapping.refunds == "exclude":
            df = df.loc[~refunded]
        else:
            df = df.assign(amount=df["amount"] - refund.where(~negative, 0.0))
        note.append(_note_refunds(mapping.refunds, n, kind_counts, refund_total, cur))
    if df.empty:
        raise DataValidationError(
            [f"{file}: no orders left after leaving out the rows listed above: {' '.join(note)}"]
        )

    # order lines -> orders
    if mapping.rows == "order_lines":
        g = df.groupby("order_id", sort=False)
        two = g["customer_id"].transform("nunique") > 1
        if two.any():
            example = df.loc[two, "order_id"].astype(str).iloc[0]
            raise DataValidationError(
                [
                    f"{file}, column {labels['order_id']}: {int(df.loc[two, 'order_id'].nunique()):,} orders have lines "
                    f"with different customers in {labels['customer_id']} ({where(two)}; e.g. order '{example}')"
                ]
            )
        agg: dict[str, Any] = {c: "first" for c in df.columns if c != "order_id"}
        agg.update(amount="sum", order_date="min")
        if "quantity" in df.columns:
            agg["quantity"] = "sum"
        lines = len(df)
        df = g.agg(agg).reset_index()
        note.append(_note_lines_summed(lines, len(df)))
    elif "order_id" not in df.columns:  # one row, one order: the line number is its id
        df.insert(0, "order_id", positions()[df.index.to_numpy()])

    offsets = int(read_attrs.get("offsets", 0))
    if offsets:
        if mapping.timezone:
            note.append(Note(
                f"{_n(offsets, 'timestamp')} with a UTC offset {'was' if offsets == 1 else 'were'} converted to {mapping.timezone} time.",
                "data_note.tz_converted", rows=offsets, timezone=mapping.timezone,
            ))  # fmt: skip
        else:
            note.append(Note(
                f"{_n(offsets, 'timestamp')} carried a UTC offset; times are kept as written "
                f"(wall clock); set timezone in the mapping to convert them to one zone.",
                "data_note.tz_kept", rows=offsets,
            ))  # fmt: skip
    zero = int(df["amount"].eq(0).sum())
    if zero:
        note.append(_note_zero_value(zero))
    notes["data_note"] = note
    first = ["order_id", "customer_id", "order_date", "amount"]
    # in the file's order (an order of lines where its first line was): no sort of millions of
    # rows (2.5 s and twice the memory at 10M rows); figures do not depend on it (sums to rounding)
    return df[first + [c for c in df.columns if c not in first]].reset_index(drop=True), notes


#: Below this file size (bytes), :func:`read_orders` reads the file with the pandas reader
#: directly instead of trying the DuckDB reader first (``reader="auto"`` of
#: :func:`read_client_orders`): on the bundled 1.4 MB export (25,443 rows) pandas takes 0.28 s of
#: CPU against 0.63-0.68 s (DuckDB's connection and sniffing, on two threads); they are level
#: near 5 MB (about 100,000 rows), and DuckDB is quicker above (benchmarks/README.md, "The
#: report's fixed costs"). The table handed to the notebook is the same either way.
PANDAS_MAX_BYTES = 4 * 2**20


def read_orders(
    path: str | Path, mapping: ClientMapping, engine: str = "auto"
) -> tuple[pd.DataFrame | Any, dict[str, Any]]:
    """The validated orders and their notes for the report command: the one switch between the
    pandas path (:func:`read_client_orders`: a DataFrame) and the engine's
    (:func:`read_orders_in_engine`: an Ibis table over an embedded DuckDB holding the orders).

    `engine` 'pandas': always pandas; 'duckdb': the engine for any file it takes; 'auto': the
    engine from :data:`ENGINE_MIN_BYTES`; 'spark' (the notebook aggregates on a Spark session):
    read as 'auto'. A file the engine declines (a problem in the data, a rule that raises, a
    format it leaves to pandas) is read by :func:`read_client_orders`, so every message is the
    pandas reader's; a file under :data:`PANDAS_MAX_BYTES` by its pandas reader directly. Raises
    :class:`DataValidationError`."""
    if engine not in ("auto", "duckdb", "pandas", "spark"):
        raise ValueError(f"engine must be 'auto', 'duckdb', 'pandas' or 'spark', got {engine!r}")
    engine = "auto" if engine == "spark" else engine
    path = Path(path)
    big = path.is_file() and path.stat().st_size >= ENGINE_MIN_BYTES
    if engine == "duckdb" or (engine == "auto" and big):
        got = read_orders_in_engine(path, mapping)
        if got is not None:
            return got
    small = path.is_file() and path.stat().st_size < PANDAS_MAX_BYTES
    return read_client_orders(path, mapping, "pandas" if small else "auto")


def close_orders(orders: pd.DataFrame | Any) -> None:
    """Close the engine's connection behind `orders` (an Ibis table: DuckDB's buffers holding the
    validated table, or a database's connection); nothing for a DataFrame. The report command
    calls it once the hand-over is written, before the notebook runs: its process
    then waits without the table beside the kernel's copy (at 10M rows, DuckDB's buffers up to
    :func:`helpers.report.engine.memory_limit`)."""
    if not isinstance(orders, pd.DataFrame):
        from helpers.report import engine as eng

        eng.close(orders._find_backend())  # and its database file, when the reader made one


def order_count(orders: pd.DataFrame | Any) -> int:
    """Rows of a DataFrame or of the engine's table."""
    if isinstance(orders, pd.DataFrame):
        return len(orders)
    return int(orders.count().to_pyarrow().as_py())


def read_orders_in_engine(
    path: str | Path, mapping: ClientMapping
) -> tuple[Any, dict[str, Any]] | None:
    """:func:`read_client_orders` in the engine, for a local CSV or Parquet file: DuckDB reads the
    file once, parses and checks it with the DuckDB reader's SQL
    (:func:`helpers.tables.duckdb_reader.read_into`), the mapping's rules run on it as Ibis
    expressions (:func:`helpers.report.engine.mapping_rules`) and only their counts come back:
    the validated table is never held in Python. Returns (orders, notes) as
    :func:`read_client_orders` does, the orders as an Ibis table (DuckDB with a memory limit,
    spilling to disk), the same notes (``reader`` 'engine'); or ``None`` when the file or the
    rules need the pandas reader: a problem in the file or one the rules raise (its message names
    lines and examples), a format the DuckDB reader leaves to pandas, or no ``order_id`` column
    (the line number is then the order's id)."""
    from helpers.report import engine as eng
    from helpers.tables import duckdb_reader

    path = Path(path)
    if "order_id" not in mapping.read_columns() or not path.is_file():
        return None
    # a CSV row of a client's export is 40-60 bytes; the limit grows with the data
    # (engine.memory_limit); the reader's files in a folder of its own (engine.connect_scratch):
    # a CSV's typed cells as Parquet there, a Parquet file read where it is (read_into)
    con = eng.connect_scratch(eng.memory_limit(
        path.stat().st_size // 40, eng.READ_MEMORY_PER_ROW, eng.READ_MIN_MEMORY_MB
    ))  # fmt: skip
    kwargs = {k: v for k, v in mapping.read_kwargs().items() if k != "sheet"}
    info = duckdb_reader.read_into(con.con, "validated", path, client_schema(mapping), **kwargs)
    if info is None:
        eng.close(con)
        return None
    try:
        t, counts = eng.mapping_rules(eng.table_of(con, "validated"), mapping)
        left_zero = t.aggregate(n=t.count(), zero=t.count(where=t.amount == 0)).to_pandas()
        left, zero = (int(left_zero[c].iloc[0]) for c in ("n", "zero"))
    except DataValidationError:
        eng.close(con)
        return None
    if not left:  # "no orders left": the pandas reader's message
        eng.close(con)
        return None
    notes = _engine_notes(counts, mapping, info["labels"], zero)
    first = ["order_id", "customer_id", "order_date", "amount"]
    return t.select(*first, *[c for c in t.columns if c not in first]), notes


def _engine_notes(
    counts: dict[str, Any], mapping: ClientMapping, labels: dict[str, str], zero: int
) -> dict[str, Any]:
    """The notes of :func:`read_client_orders` from the counts of
    :func:`helpers.report.engine.mapping_rules` and the number of zero-value orders left (the
    data note's sentences said by the same builders as the pandas rules')."""
    cur, cols = mapping.currency, mapping.read_columns()
    notes: dict[str, Any] = {"rows": counts["rows"], "refunds": mapping.refunds, "mapping": mapping}
    notes["reader"] = "engine"
    last_day = counts["last_order"].normalize()
    notes["as_of"] = str((pd.Timestamp(mapping.as_of) if mapping.as_of else last_day).date())
    note: list[Note] = []
    if "amount" not in cols:
        note.append(_note_amount_from_lines(counts["rows"], labels, cols))
    if counts.get("after_as_of"):
        note.append(_note_after_as_of(
            counts["after_as_of"], notes["as_of"], counts["after_as_of_revenue"], cur
        ))  # fmt: skip
    if counts["missing_customers"]:
        note.append(
            _note_missing_customers(counts["missing_customers"], counts["missing_revenue"], cur)
        )
    if counts.get("other_status"):
        known = sorted({s.lower() for s in mapping.status["keep"] + mapping.status["cancelled"]})
        note.append(_note_other_status(
            counts["other_status"], counts["statuses"], counts["other_status_amount"], known, cur
        ))  # fmt: skip
    notes["refund_rows"] = counts["refund_rows"]
    notes["refund_amount"] = counts["refund_amount"]
    if counts["refund_rows"]:
        note.append(_note_refunds(
            mapping.refunds, counts["refund_rows"], counts["kinds"], counts["refund_amount"], cur
        ))  # fmt: skip
    if mapping.rows == "order_lines":
        note.append(_note_lines_summed(counts["lines"], counts["orders"]))
    if zero:
        note.append(_note_zero_value(zero))
    notes["data_note"] = note
    return notes


def check_enough_data(
    orders: pd.DataFrame | Any, as_of: str | pd.Timestamp, period: str, file: str = "the file"
) -> None:
    """Raise :class:`helpers.tables.DataValidationError` unless the purchases up to `as_of` span at
    least two complete periods (retention compares one period with the one before; a period is
    complete when it ended on or before as-of, :mod:`helpers.periods`) and at least two purchases.
    `orders`: a DataFrame, or the engine's table (:func:`read_orders`): one aggregate there."""
    if isinstance(orders, pd.DataFrame):
        # masks over the columns, not a filtered copy of the table (10M rows: 3 s and 1 GB saved)
        t = pd.to_datetime(orders["order_date"]).to_numpy("datetime64[ns]")
        keep = (t < periods.as_of_end(as_of).to_datetime64()) & (orders["amount"] >= 0).to_numpy()
        n = int(keep.sum())
        first_day = pd.Timestamp(t[keep].min()) if n else None
    else:
        import ibis

        end = ibis.timestamp(periods.as_of_end(as_of).to_pydatetime())
        ok = (orders.order_date < end) & (orders.amount >= 0)
        row = orders.aggregate(
            n=orders.count(where=ok), first=orders.order_date.min(where=ok)
        ).to_pandas()
        n = int(row["n"].iloc[0])
        first_day = pd.Timestamp(row["first"].iloc[0]) if n else None
    name = {"M": "months", "Q": "quarters"}[period]
    day = periods.as_of_day(as_of).date()
    if n == 0:
        raise DataValidationError(
            [f"{file}: no purchases (amounts of 0 or more) on or before {day}"]
        )
    first = first_day
    complete = periods.complete_periods(first, as_of, period)
    if len(complete) < 2 or n < 2:
        raise DataValidationError(
            [
                f"{file}: {n:,} purchase(s) from {first.date()} to {day} "
                f"cover {len(complete)} complete {name}; a retention report needs at least 2 "
                "purchases over 2 complete periods "
                + (
                    "(more data, a later as_of, or period: M in the mapping)"
                    if period == "Q"
                    else "(more data or a later as_of)"
                )
            ]
        )


_NOTES_KEY = b"retention_lab.notes"
#: Arrow's text types read back as the text dtype the readers give (``string[pyarrow]``).
_ARROW_TEXT = {pa.string(): _STR, pa.large_string(): _STR}


def save_validated(orders: pd.DataFrame | Any, notes: dict[str, Any], path: str | Path) -> Path:
    """Write the validated orders and their notes to one Arrow IPC (Feather v2) file, uncompressed
    (the notes, data-note sentences with their message keys included, as JSON in the schema's
    metadata; the mapping as its values, :func:`helpers.report.mapping.mapping_as_dict`), so that
    the report's notebook receives the table and the mapping instead of reading and validating
    the files again; the notebook maps it into memory (:func:`open_orders`). The engine's table
    goes into a DuckDB database file instead (:func:`_save_engine_table`; its path returned)."""
    if not isinstance(orders, pd.DataFrame):  # the engine's table (:func:`read_orders`)
        return _save_engine_table(orders, notes, path)
    table = pa.Table.from_pandas(orders, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[_NOTES_KEY] = json.dumps(_notes_as_json(notes)).encode()
    path = Path(path)
    feather.write_feather(table.replace_schema_metadata(meta), path, compression="uncompressed")
    return path


def _save_engine_table(orders: Any, notes: dict[str, Any], path: str | Path) -> Path:
    """:func:`save_validated` for the engine's table: a DuckDB database file beside `path`
    (its name ending in :data:`ENGINE_HANDOVER_SUFFIX`), written by DuckDB itself (never the
    table in Python): ``orders`` with the types the pandas path writes (timestamps in ns;
    the canonical columns first; a table, or with text ids the view below) and table ``notes``
    (one row, the notes as JSON).

    Text customer ids are coded for the engine: table ``customers`` (``code``, ``customer_id``)
    numbers the distinct ids 0..n-1 in their sorted order (DuckDB's text order, bytewise: the
    code points' order, as Python sorts ``str``), table :data:`CODED_ORDERS` holds the orders
    with ``customer_id`` their customer's code (INTEGER), and ``orders`` is a view joining the
    text ids back (the same rows and columns as without codes): the engine groups, numbers and
    joins on a 4-byte integer, and sorting by code is sorting by id
    (:func:`helpers.report.engine.coded_handover`). Two queries: the distinct ids numbered, then
    the orders joined with them as they are written; an integer column is cheaper to write than
    the text it replaces, which pays for the numbering and the join: at 10M orders and 845k
    customers the coded file took 8.3 and 8.7 s against 8.1 and 8.4 s for the text table alone
    (alternating, one process), and is 107 MB instead of 139 MB. A text ``order_id`` is stored
    uncompressed (:func:`_create_as`): the write at 10M orders 3.2 -> 2.5 s, at 100M 46 s of
    which 17 s the write -> 11 s.

    Not an Arrow file, for the notebook's memory: a memory-mapped Arrow file counts in the
    kernel's resident memory as far as it is read (at 10M orders about 0.5 GB of the report's
    peak), DuckDB's compressed storage is read through its buffer pool, within its memory limit
    (``benchmarks/README.md``, issue 31's peak)."""
    import ibis

    first = ["order_id", "customer_id", "order_date", "amount"]
    orders = orders.select(*first, *[c for c in orders.columns if c not in first])
    con = orders._find_backend().con
    ns = {n for n, t in orders.schema().items() if t.is_timestamp()}
    cols = ", ".join(
        f'CAST("{c}" AS TIMESTAMP_NS) AS "{c}"' if c in ns else f'"{c}"' for c in orders.columns
    )
    path = Path(path)
    path = path.with_name(path.name.split(".")[0] + ENGINE_HANDOVER_SUFFIX)
    path.unlink(missing_ok=True)
    con.execute(f"ATTACH '{_sql_text(path)}' AS handover")
    try:
        sql = ibis.to_sql(orders, dialect="duckdb")
        source = f"SELECT {cols} FROM ({sql})"
        if orders.schema()["customer_id"].is_string():  # coded: the ids numbered in sort order
            con.execute(
                "CREATE TABLE handover.customers AS SELECT (row_number() OVER "
                "(ORDER BY customer_id) - 1)::INTEGER AS code, customer_id FROM "
                f"(SELECT DISTINCT customer_id FROM ({source})) ORDER BY code"
            )
            coded = ", ".join(
                "c.code AS customer_id" if c == "customer_id" else f's."{c}"'
                for c in orders.columns
            )
            _create_as(
                con,
                f"handover.{CODED_ORDERS}",
                f"SELECT {coded} FROM ({source}) AS s "
                "JOIN handover.customers AS c USING (customer_id)",
            )
            shown = ", ".join(
                "c.customer_id" if c == "customer_id" else f'o."{c}"' for c in orders.columns
            )
            # names inside a view are those of its own database (the file, however attached)
            con.execute(
                f"CREATE VIEW handover.orders AS SELECT {shown} FROM {CODED_ORDERS} AS o "
                "JOIN customers AS c ON o.customer_id = c.code"
            )
        else:  # integer ids (or none to code): the table as it is
            _create_as(con, "handover.orders", source)
        con.execute("CREATE TABLE handover.notes (notes VARCHAR)")
        con.execute("INSERT INTO handover.notes VALUES (?)", [json.dumps(_notes_as_json(notes))])
    finally:
        con.execute("DETACH handover")
    return path


def _create_as(con: Any, name: str, query: str) -> None:
    """``CREATE TABLE name AS query`` in DuckDB, with a text ``order_id`` stored uncompressed:
    an order's id is unique, so DuckDB's analysis of how to compress it (FSST) cost more than
    all the other columns' writing and saved little -- at 100M orders 17.1 s against 10.9 s for
    the table (1.42 against 2.28 GB on disk), the same rows read back."""
    types = con.execute(f"DESCRIBE {query}").fetchall()
    cols = ", ".join(
        '"' + c.replace('"', '""') + f'" {ty}' + (" USING COMPRESSION uncompressed" if c == "order_id" and ty == "VARCHAR"
                         else "")
        for c, ty, *_ in types
    )  # fmt: skip
    con.execute(f"CREATE TABLE {name} ({cols})")
    con.execute(f"INSERT INTO {name} {query}")


def _sql_text(path: Path) -> str:
    """`path` inside a SQL string literal (quotes doubled)."""
    return str(path).replace("'", "''")


#: The name's ending of the hand-over :func:`save_validated` writes for the engine's table (a
#: DuckDB database file: :func:`_save_engine_table`); :func:`open_orders` opens it read-only.
ENGINE_HANDOVER_SUFFIX = ".validated.duckdb"

#: The hand-over's table of orders with their customers' integer codes (:func:`_save_engine_table`);
#: the kernel's table is the view ``orders`` (text ids), the engine computes on this one
#: (:func:`helpers.report.engine.coded_handover`).
CODED_ORDERS = "orders_coded"


def _open_engine_handover(path: str | Path, engine: str) -> tuple[Any, dict[str, Any]]:
    """:func:`open_orders` for the file of :func:`_save_engine_table`: an Ibis table over the
    file, opened read-only with DuckDB's memory limit for its rows
    (:func:`helpers.report.engine.memory_limit`), for 'duckdb' or 'auto' from
    :data:`ENGINE_MIN_ROWS`; otherwise its rows as :func:`_load_validated` gives them (pandas),
    or on Spark."""
    import warnings

    import ibis

    from helpers.report import engine as eng

    con = ibis.duckdb.connect(str(path), read_only=True)
    raw = con.con.execute("SELECT notes FROM notes").fetchall()[0][0]
    notes = _notes_from_json(json.loads(raw))
    rows = notes["rows"]
    with warnings.catch_warnings():  # Ibis 12 reads the schema with a DuckDB 2.0-deprecated call
        warnings.simplefilter("ignore", DeprecationWarning)
        t = con.table("orders")
        coded = "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?"
        coded = con.con.execute(coded, [CODED_ORDERS]).fetchall()[0][0] > 0
        if coded:  # text ids; codes for the engine
            t = eng.coded_handover(t, con.table(CODED_ORDERS), con.table("customers"))
    if engine == "duckdb" or (engine == "auto" and rows >= ENGINE_MIN_ROWS):
        # on codes, the large per-customer queries run in ranges that fit a smaller limit
        limit = (eng.memory_limit(rows, eng.CODED_MEMORY_PER_ROW, eng.RANGED_MIN_MEMORY_MB)
                 if coded else eng.memory_limit(rows))  # fmt: skip
        eng.tune_duckdb(con, limit)
        return t, notes
    table = t.to_pyarrow()
    con.disconnect()
    if engine == "spark":
        return eng.on_spark(table), notes
    orders = table.to_pandas(types_mapper=_ARROW_TEXT.get)
    orders["customer_id"] = orders["customer_id"].astype("category")
    return orders, notes


def _notes_as_json(notes: dict[str, Any]) -> dict[str, Any]:
    """The notes as JSON values: the mapping as its values
    (:func:`helpers.report.mapping.mapping_as_dict`), each data-note sentence with its message
    key and values (:func:`_notes_from_json` reads them back)."""
    shown = dict(notes)
    if isinstance(notes.get("mapping"), ClientMapping):
        shown["mapping"] = mapping_as_dict(notes["mapping"])
    shown["data_note"] = [
        {"text": str(n), "key": getattr(n, "key", None), "values": getattr(n, "values", None)}
        for n in notes.get("data_note", [])
    ]
    return shown


def _read_validated(path: str | Path) -> tuple[pa.Table, dict[str, Any]]:
    """The Arrow table (memory-mapped: nothing read until used) and the notes written by
    :func:`save_validated`."""
    table = feather.read_table(path, memory_map=True)
    return table, _notes_from_json(json.loads(table.schema.metadata[_NOTES_KEY]))


def _notes_from_json(notes: dict[str, Any]) -> dict[str, Any]:
    """The notes written by :func:`_notes_as_json`, as they were."""
    notes["data_note"] = [
        Note(n["text"], n["key"], **n["values"]) if n["key"] else n["text"]
        for n in notes["data_note"]
    ]
    if "mapping" in notes:
        notes["mapping"] = mapping_from_dict(notes["mapping"])
    return notes


def _load_validated(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The (orders, notes) written by :func:`save_validated`; text columns stay in Arrow memory."""
    table, notes = _read_validated(path)
    orders = table.to_pandas(types_mapper=_ARROW_TEXT.get)
    return orders, notes


#: From this many rows, :func:`open_orders` (``engine="auto"``) hands the orders to the engine:
#: at 10M rows it keeps the notebook's peak memory near 1.6 GB instead of 3.6 GB; below, the
#: pandas helpers are quicker (no fixed cost of about 0.4 s; benchmarks/README.md).
ENGINE_MIN_ROWS = 1_000_000


def open_orders(
    source: str | Path | tuple[pd.DataFrame, dict[str, Any]], engine: str = "auto"
) -> tuple[pd.DataFrame | Any, dict[str, Any]]:
    """The validated orders and their notes as the analysis takes them; ``notes["mapping"]`` is
    the :class:`ClientMapping` they were read with. `source`: the file written by
    :func:`save_validated` (memory-mapped), or the (orders, notes) of :func:`read_client_orders`.

    Returns a pandas DataFrame with the customer ids as categories (hashed once; the helpers
    group by their codes, with the same results), or with `engine` 'duckdb' (or 'auto' from
    :data:`ENGINE_MIN_ROWS` rows) an Ibis table that DuckDB scans in place
    (:func:`helpers.report.engine.from_arrow`): the orders are then never held in pandas."""
    if engine not in ("auto", "duckdb", "pandas", "spark"):
        raise ValueError(f"engine must be 'auto', 'duckdb', 'pandas' or 'spark', got {engine!r}")
    if isinstance(source, str | Path) and str(source).endswith(WAREHOUSE_SUFFIX):  # a database
        return open_warehouse(source)  # table: it stays where it is
    if isinstance(source, str | Path) and str(source).endswith(ENGINE_HANDOVER_SUFFIX):
        return _open_engine_handover(source, engine)  # the engine's table, in a DuckDB file
    if isinstance(source, tuple):
        orders, notes = source
        rows = len(orders)
    else:
        table, notes = _read_validated(source)
        orders, rows = None, table.num_rows
    if engine == "spark":  # a local Spark session (helpers.report.engine.on_spark)
        from helpers.report import engine as eng

        if orders is not None:
            table = pa.Table.from_pandas(orders, preserve_index=False)
        return eng.on_spark(table), notes
    if engine == "duckdb" or (engine == "auto" and rows >= ENGINE_MIN_ROWS):
        from helpers.report import engine as eng  # Ibis is imported only when it is used

        if orders is not None:
            table = pa.Table.from_pandas(orders, preserve_index=False)
        return eng.from_arrow(table), notes
    if orders is None:
        del table
        orders, notes = _load_validated(source)
    orders["customer_id"] = orders["customer_id"].astype("category")
    return orders, notes


def read_client_tables(
    orders: pd.DataFrame | Any, notes: dict[str, Any]
) -> dict[str, pd.DataFrame]:
    """The survey, campaign and loyalty tables the mapping in ``notes["mapping"]`` names
    (:mod:`helpers.report.extra_tables`), read and checked against the validated `orders` (a
    DataFrame or the engine's table); empty when it names none. Raises
    :class:`DataValidationError`."""
    mapping: ClientMapping = notes["mapping"]
    if not mapping.tables:
        return {}
    # the customers' ids only for a table whose customers are checked against them (a spend
    # file has none: the engine's distinct ids, a million texts at 10M orders, not fetched)
    need_ids = any(kind in CUSTOMER_TABLES for kind in mapping.tables)
    if isinstance(orders, pd.DataFrame):
        ids = orders["customer_id"].astype(str).unique() if need_ids else []
        first = orders["order_date"].min()
    else:  # an Ibis table: small answers from the engine
        ids = (
            orders.select("customer_id").distinct().to_pandas()["customer_id"].astype(str)
            if need_ids
            else []
        )
        first = orders.order_date.min().to_pandas()
    return read_extra_tables(mapping.tables, pd.Index(ids), first, notes["as_of"],
                             id_type=mapping.id_type, unmatched=mapping.unmatched_customers)  # fmt: skip


def save_tables(tables: dict[str, pd.DataFrame], folder: str | Path) -> dict[str, dict[str, Any]]:
    """Write each table of :func:`read_client_tables` to an Arrow file in `folder` (the report
    command's private hand-over folder); returns what :func:`open_tables` needs, to be put in the
    orders' notes as ``notes["tables"]``."""
    out = {}
    for kind, df in tables.items():
        path = Path(folder) / f"{kind}.arrow"
        feather.write_feather(
            pa.Table.from_pandas(df, preserve_index=False), path, compression="uncompressed"
        )
        out[kind] = {
            "path": str(path),
            **{k: df.attrs[k] for k in ("file", "customers", "unmatched")},
        }
    return out


def open_tables(orders: pd.DataFrame | Any, notes: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The client's tables beside the orders, by kind: from the report command's hand-over
    (``notes["tables"]``, written by :func:`save_tables`: each file read and checked once), or,
    run by hand, read now (:func:`read_client_tables`)."""
    if "tables" not in notes:
        return read_client_tables(orders, notes)
    out = {}
    for kind, saved in notes["tables"].items():
        df = feather.read_table(saved["path"]).to_pandas(types_mapper=_ARROW_TEXT.get)
        df.attrs.update({k: v for k, v in saved.items() if k != "path"})
        out[kind] = df
    return out


# ------------------------------------------------- a database table: read, checked, used in place

#: The name's ending of the hand-over :func:`save_warehouse` writes for a database table (the
#: table's notes, no rows); :func:`open_orders` opens the table again from it.
WAREHOUSE_SUFFIX = ".warehouse.json"


@contextmanager
def _disconnected_on_error(con: Any, url: str) -> Iterator[None]:
    """Close the database connection `con` when its block fails: a :class:`DataValidationError`
    goes on as it is, any other error (a query the database could not answer) as the one
    message of :func:`helpers.report.sources.unreadable` naming the source without its password."""
    from helpers.report import sources

    try:
        yield
    except DataValidationError:
        con.disconnect()
        raise
    except Exception as err:
        con.disconnect()
        raise sources.unreadable(err, url) from None


def _warehouse_table(
    url: str,
    mapping: ClientMapping,
    memory_limit: str | None = None,
    check: bool = True,
    trimmed: list[str] | None = None,
):
    """(connection, the table's mapped columns under canonical names typed as the file readers
    type them, the source as messages name it, table name, labels) of the database table of
    `url` (:func:`helpers.report.sources.open_table`), and the text columns trimmed (those with a
    value padded with blanks); without `check`, the checks are not run again (the notebook opens
    a table the report command checked, `trimmed` as the command found them). Raises
    :class:`DataValidationError`: a connection, table or column refused, or the problems of the
    checks (:func:`helpers.report.engine.warehouse_problems`), all at once."""
    import ibis

    from helpers.report import engine as eng
    from helpers.report import sources

    mapped = mapping.read_columns()
    con, t, source, table = sources.open_table(url, list(dict.fromkeys(mapped.values())),
                                               memory_limit)  # fmt: skip
    with _disconnected_on_error(con, url):
        if memory_limit is None and url.startswith("duckdb:"):
            # DuckDB's memory limit grows with the table, and holds before the checks run there
            # (without it the checks took DuckDB's default, 80 % of the machine: at 100M orders
            # the report command's reader reached 8.0 GB); the notebook's bytes a row
            # (engine.RANGED_MEMORY_PER_ROW): the checks and rules spill beyond it (at 100M
            # orders 763 MB against 4.7 GB at 50 bytes; benchmarks/README.md, issue 31)
            rows = int(t.count().to_pyarrow().as_py())
            eng.tune_duckdb(con, eng.memory_limit(rows, eng.RANGED_MEMORY_PER_ROW))
        t = t.select(**{canon: t[theirs] for canon, theirs in mapped.items()})
        labels = {c: (f"'{v}' ({c})" if v != c else f"'{c}'") for c, v in mapped.items()}
        cols = tuple(c for c in client_schema(mapping) if c.name in t.columns)
        as_of = mapping.as_of if mapping.after_as_of == "error" else None
        if check:
            problems, trimmed = eng.warehouse_problems(
                t, cols, source=source, table=table, labels=labels, as_of=as_of,
                ids=mapping.id_type,
            )  # fmt: skip
            if problems:
                raise DataValidationError(problems)
        trimmed = list(trimmed or [])
        t = eng.warehouse_orders(t, cols, mapping.id_type, trimmed)
        if "order_id" not in t.columns:  # one row, one order: its position in the scan
            t = t.mutate(order_id=(ibis.row_number() + 1).cast("int64"))
    return con, t, source, table, labels, trimmed


def read_orders_in_warehouse(url: str, mapping: ClientMapping) -> tuple[Any, dict[str, Any]]:
    """:func:`read_client_orders` for a database table (``duckdb:///client.db?table=orders``,
    ``postgres://user:pw@host/db?table=orders``, :mod:`helpers.report.sources`), in the database:
    the table's columns are already typed; the file readers' checks
    (:func:`helpers.report.engine.warehouse_problems`) and the mapping's rules
    (:func:`helpers.report.engine.mapping_rules`) run there as Ibis expressions, and only counts
    and a few example values come back. Returns (orders, notes) as :func:`read_client_orders`
    does, the orders an Ibis table over the database (nothing copied; ``reader`` 'warehouse',
    ``source`` the URL without its password, ``table`` its name). Raises
    :class:`DataValidationError`: one message per problem naming the source (without its
    password), the table and the column, with a count and an example value."""
    from helpers.report import engine as eng

    con, t, source, table, labels, trimmed = _warehouse_table(url, mapping)
    where = f"{source}, table {table!r}"
    with _disconnected_on_error(con, url):
        try:
            t, counts = eng.mapping_rules(t, mapping)
        except DataValidationError as err:  # the rules' sentences, said of the source and column
            raise DataValidationError([
                p.with_text(f"{where}, column {labels.get(p.column, repr(p.column))}: {p}")
                if p.column else p.with_text(f"{where}: {p}")
                for p in err.problems
            ]) from None  # fmt: skip
        if not counts["rows"]:
            raise DataValidationError([f"{where}: has no rows"])
        left_zero = t.aggregate(n=t.count(), zero=t.count(where=t.amount == 0)).to_pandas()
        left, zero = (int(left_zero[c].iloc[0]) for c in ("n", "zero"))
    notes = _engine_notes(counts, mapping, labels, zero)
    if not left:
        con.disconnect()
        sentences = " ".join(str(n) for n in notes["data_note"])
        raise DataValidationError(
            [f"{where}: no orders left after leaving out the rows listed above: {sentences}"]
        )
    notes.update(reader="warehouse", source=source, table=table,
                 placeholder_values=counts.get("placeholder_values", []),
                 status_values=counts.get("status_values"), trimmed=trimmed)  # fmt: skip
    first = ["order_id", "customer_id", "order_date", "amount"]
    return t.select(*first, *[c for c in t.columns if c not in first]), notes


def save_warehouse(notes: dict[str, Any], path: str | Path) -> Path:
    """The hand-over of a database table to the notebook: its notes (from
    :func:`read_orders_in_warehouse`, with the source without its password and the table's name)
    as JSON in `path` (which must end in :data:`WAREHOUSE_SUFFIX`); no rows. The URL itself, with
    its password, goes to the kernel's environment
    (:data:`helpers.report.sources.SOURCE_ENV`), never into a file."""
    path = Path(path)
    if not path.name.endswith(WAREHOUSE_SUFFIX):
        raise ValueError(f"{path.name}: a warehouse hand-over's name ends in {WAREHOUSE_SUFFIX}")
    path.write_text(json.dumps(_notes_as_json(notes)), encoding="utf-8")
    return path


def open_warehouse(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """:func:`open_orders` for the hand-over of :func:`save_warehouse`: the database table again
    (its URL from the kernel's environment, :data:`helpers.report.sources.SOURCE_ENV`, which must
    name the source and table the notes name), typed and given the mapping's rules as
    expressions, without running the checks again (the report command ran them). Returns (an
    Ibis table over the database, notes): the analysis's aggregations then run there."""
    import os

    from helpers.report import engine as eng
    from helpers.report import sources

    notes = _notes_from_json(json.loads(Path(path).read_text(encoding="utf-8")))
    url = os.environ.get(sources.SOURCE_ENV, "")
    if not url or sources.redact(url) != notes["source"] or sources.describe(url) != notes["table"]:
        raise ValueError(
            f"{Path(path).name}: the orders are the table {notes['table']!r} of {notes['source']}; "
            f"its URL is handed over in ${sources.SOURCE_ENV} (the report command sets it)"
        )
    mapping = notes["mapping"]
    rows = notes["rows"]
    # a DuckDB file's table: the large per-customer queries run in ranges of its ids that fit
    # the smaller limit (engine.customer_ranges), above the usual floor (each range scans the
    # table again: at 10M orders under 150 MB, 4 ranges took 15 % more CPU for 180 MB less);
    # a server's memory is its own
    per_row = eng.RANGED_MEMORY_PER_ROW if url.startswith("duckdb:") else eng.MEMORY_PER_ROW
    limit = eng.memory_limit(rows, per_row)
    _, t, *_ = _warehouse_table(url, mapping, limit, check=False, trimmed=notes.get("trimmed"))
    t, _ = eng.mapping_rules(
        t, mapping, count=False, placeholder_values=notes.get("placeholder_values", []),
        status_values=notes.get("status_values"),
    )  # fmt: skip
    first = ["order_id", "customer_id", "order_date", "amount"]
    return t.select(*first, *[c for c in t.columns if c not in first]), notes
