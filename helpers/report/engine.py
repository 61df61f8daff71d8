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
given an Ibis table. On the report command's hand-over (a DuckDB file whose text customer ids
are numbered in their sorted order, :func:`coded_handover`) they group, number and join on the
integer codes and give their results indexed by the text ids, as on any other table.

Definitions (as-of, period codes, the censoring rule: a period counts only once it has ended on
or before as-of) are those of :mod:`helpers.periods`; ``tests/report/test_engine.py`` holds both sides
equal on the bundled orders and on random order tables.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import inspect
import itertools
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from helpers import economics, money, periods, segments
from helpers.tables.parse import EDGE_RE, STRIP_RE, WHITESPACE

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
    "summary_and_split",
    "customer_totals",
    "order_sums",
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
    "tune_duckdb",
    "connect_scratch",
    "scratch_folder",
    "close",
    "money_scale",
    "exact_sum",
    "coded_handover",
    "CustomerCodes",
    "warehouse_problems",
    "WarehouseChecks",
    "warehouse_orders",
]

_EPOCH = dt.date(1970, 1, 1)
_DAY_NS = 86_400 * 10**9


#: DuckDB's memory limit for the report's aggregations, per order row (at least 500 MB, at most
#: half the machine's memory): 500 MB at 10M orders keeps the report's peak under 2 GB
#: (issue 16; benchmarks/README.md); at 100M orders (10M customers) 500 MB was too little for
#: what DuckDB cannot spill, so the limit grows with the data.
MEMORY_PER_ROW = 50
MIN_MEMORY_MB = 500
#: The same in the notebook's kernel on a DuckDB database file's table, whose large
#: per-customer queries run in ranges of customers that fit (:func:`customer_ranges`: the
#: table's own ids): at 100M orders DuckDB then holds 763 MB beside the kernel's frames, not
#: 4.7 GB (what it is allowed, it keeps: the table's blocks, read once, stay cached up to the
#: limit). On a coded hand-over: :data:`CODED_MEMORY_PER_ROW`. The report command's checks of
#: such a table take the same limit (:func:`warehouse_problems` counts distinct values as
#: stored, which DuckDB spills): at 100M orders its reader 975 MB against 4.8 GB at 50 bytes.
RANGED_MEMORY_PER_ROW = 8
#: The same on a coded hand-over (:func:`coded_handover`; ranges of codes). 15 bytes (1.4 GB)
#: gave a tree peak of 7,293 MB against 6,706 MB at 8, the kernel's stages no slower; 5 bytes
#: 6,712 MB, slower (benchmarks/README.md, 2026-12-06 afternoon). Since then the peak is a
#: plateau of stages in which the sections' prefetch queries at DuckDB's limit beside the
#: kernel's Python: at 6 bytes (572 MB at 100M) the tree peak was 5,901 and 5,881 MB against
#: 6,066 and 6,008 MB at 8, CPU 0.980 and 0.880 of 8's (two pairs, 2026-12-07).
CODED_MEMORY_PER_ROW = 6
#: The floor of that limit on a coded hand-over (:data:`MIN_MEMORY_MB` elsewhere): below 65M
#: orders the ranges keep the large queries within it, and DuckDB keeps what it is allowed. At
#: 10M orders (a CSV's hand-over) 150 MB gave a tree peak of 1,390-1,476 MB against 1,553-1,618
#: at 500 MB, CPU within the spread (2026-12-06, when 100 MB was no lower); once the kernel's own
#: peaks had come down, the sections' prefetch at that limit (hash tables of 146 MB beside the
#: notebook's cells) made the plateau: at 100 MB the kernel's peak was 1,079-1,129 MB against
#: 1,129-1,183 MB (three pairs, 2026-12-07), the covariate stage, which waits for the prefetch,
#: about 0.8 s longer; at 64 MB slower. A DuckDB file's table keeps the 500 MB floor: each range
#: of its text ids scans the table again (at 10M orders 4 ranges took 15 % more CPU for 180 MB
#: less; benchmarks/README.md, 2026-12-06 evening).
RANGED_MIN_MEMORY_MB = 100


def memory_limit(rows: int, per_row: int = MEMORY_PER_ROW, floor_mb: int | None = None) -> str:
    """DuckDB's memory limit for a table of `rows` orders: `per_row` bytes a row
    (:data:`MEMORY_PER_ROW`), at least `floor_mb` (default :data:`MIN_MEMORY_MB`) and at most
    half the machine's memory."""
    try:
        machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):  # not POSIX: assume 8 GB
        machine = 8192
    floor = MIN_MEMORY_MB if floor_mb is None else floor_mb
    mb = max(floor, min(rows * per_row // 2**20, machine // 2))
    return f"{mb}MB"


def connect(memory_limit: str | None = "500MB") -> ibis.BaseBackend:
    """An embedded DuckDB for the report's aggregations (in memory, no server), with
    `memory_limit` (None: DuckDB's default, 80 % of the machine's memory); above it DuckDB
    spills to :func:`spill_folder`.
    Results are ordered where it matters (``order_by``), so DuckDB need not keep rows in
    insertion order (less memory)."""
    return tune_duckdb(ibis.duckdb.connect(), memory_limit)


#: The report command's reader (:func:`connect_scratch`): DuckDB's memory limit per order row
#: of the client's file, at least :data:`READ_MIN_MEMORY_MB`. Its validated table lives in a
#: database file, so DuckDB keeps only what it is working on in memory: at 10M CSV rows (482 MB)
#: the read stage's tree peak was 921 and 923 MB at 300 MB against 1,178-1,212 MB with the table
#: in memory under 600 MB (benchmarks/README.md, 2026-12-07).
READ_MEMORY_PER_ROW = 25
READ_MIN_MEMORY_MB = 300


def connect_scratch(memory_limit: str | None = "300MB") -> ibis.BaseBackend:
    """:func:`connect`, its tables in a database file of a new folder in the system's temporary
    folder (``retention-lab-validated-*``), removed by :func:`close` (or, failing that, when the
    connection is collected or the process exits). An in-memory database holds every table's
    blocks in memory (they cannot be evicted, only spilled under the limit's pressure, which a
    validated table of 10M orders did not trigger: 441-479 MB in DuckDB's memory); a file's
    blocks are written as the table is made and read back when asked for, so DuckDB holds about
    its limit, not the table. Files written beside the database file (the reader's Parquet copy
    of a CSV's typed cells, :func:`helpers.tables.duckdb_reader.read_into`) go with the folder."""
    import shutil
    import tempfile
    import weakref

    folder = Path(tempfile.mkdtemp(prefix="retention-lab-validated-"))
    con = tune_duckdb(ibis.duckdb.connect(str(folder / "validated.duckdb")), memory_limit)
    con._retention_lab_scratch = weakref.finalize(  # noqa: SLF001 (our attribute)
        con, shutil.rmtree, folder, ignore_errors=True
    )
    return con


def close(con: ibis.BaseBackend) -> None:
    """Disconnect `con` and remove its database file when :func:`connect_scratch` made it."""
    con.disconnect()
    scratch = getattr(con, "_retention_lab_scratch", None)
    if scratch is not None:
        scratch()


#: DuckDB's allocator gives back to the system what its threads freed once it exceeds this
#: (DuckDB's default 128 MiB per thread; ``allocator_background_threads`` on): at 2M orders the
#: notebook's kernel otherwise kept about 170 MB freed by one query into the next stages
#: (benchmarks/README.md, the report's memory).
ALLOCATOR_FLUSH = "4MB"


def tune_duckdb(con: ibis.BaseBackend, memory_limit: str | None = "500MB") -> ibis.BaseBackend:
    """:func:`connect`'s settings on a DuckDB connection `con` (also a client's database file,
    :func:`helpers.report.sources.open_table`): `memory_limit`, spilling to
    :func:`spill_folder`, no insertion order kept, freed memory returned
    (:data:`ALLOCATOR_FLUSH`). Returns `con`."""
    if memory_limit:
        con.raw_sql(f"SET memory_limit = '{memory_limit}'")
    con.raw_sql("SET preserve_insertion_order = false")
    # what a query freed goes back to the system when it ends, not kept for the next query
    con.raw_sql(f"SET allocator_flush_threshold = '{ALLOCATOR_FLUSH}'")
    con.raw_sql("SET allocator_background_threads = true")
    try:  # no bars on the report command's standard error
        con.raw_sql("SET enable_progress_bar = false")
    except Exception:  # noqa: BLE001 (in a Jupyter kernel DuckDB refuses it without ipywidgets)
        pass
    # what does not fit spills to a folder that goes with the report or the process, not to
    # .tmp/ in the working folder
    spill = spill_folder().as_posix().replace("'", "''")
    con.raw_sql(f"SET temp_directory = '{spill}'")
    return con


@functools.cache
def spill_folder() -> Path:
    """Where this process's DuckDB connections spill what does not fit their memory limit (DuckDB
    makes the folder when it first spills and removes its files, not the folder): inside the
    report's scratch folder (:data:`helpers.report.handover.SCRATCH_ENV`, which the report
    command removes whatever its kernel did), else ``retention-lab-duckdb-<pid>`` in the
    system's temporary folder, removed when the process exits. One shared folder in the
    temporary folder stayed behind after every run (empty)."""
    import atexit
    import shutil
    import tempfile

    from helpers.report.handover import SCRATCH_ENV

    base = os.environ.get(SCRATCH_ENV)
    if base and Path(base).is_dir():
        return Path(base) / "duckdb-spill"
    folder = Path(tempfile.gettempdir()) / f"retention-lab-duckdb-{os.getpid()}"
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


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


def scratch_folder(prefix: str, folder: str | Path | None = None) -> Path:
    """A new folder named `prefix`... for large intermediate files, in `folder` (default: the
    report's scratch folder, :data:`helpers.report.handover.SCRATCH_ENV`, which the report
    command removes whatever its kernel did; else, or when that folder is gone, the system's
    temporary folder). Its maker removes it."""
    import tempfile

    from helpers.report.handover import SCRATCH_ENV

    base = folder or os.environ.get(SCRATCH_ENV) or None
    if base is not None and not Path(base).is_dir():
        base = None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def spark_connect(partitions: int = 4, folder: str | Path | None = None) -> ibis.BaseBackend:
    """An Ibis connection to a local Spark session (``local[*]``; PySpark and Java needed:
    ``make test-spark`` installs them): session time zone UTC (timestamps as written, as in
    DuckDB), `partitions` shuffle partitions, no UI. On a cluster, connect Ibis to its session
    instead (``ibis.pyspark.connect(session)``); the expressions are the same.

    Spark's files (its block manager's and shuffle files, the JVM's temporary folders, the
    warehouse folder) go to a new folder ``retention-lab-spark-*`` in `folder` (default: the
    report's scratch folder, :data:`helpers.report.handover.SCRATCH_ENV`, else the system's
    temporary folder), removed when the session is stopped at exit. Spark removes its own at the
    JVM's exit, which does not happen when the JVM is killed with the notebook's kernel at the
    end of a report: each report on Spark left four folders in /tmp (2026-12-07).

    The JVM's own output (its log, Java's warnings) goes to ``spark.log`` in that folder, not
    to this process's standard output and error (:func:`_child_output_to`): in the notebook's
    kernel those became the report's cell outputs, and the Spark report's HTML carried the
    consultant's host name and network address ("Your hostname, … resolves to a loopback
    address … using 192.0.2.2 instead"). A Spark error still reaches Python as its exception,
    with the JVM's message. The driver binds to 127.0.0.1 (local mode: nothing listens on the
    machine's network)."""
    import atexit
    import shutil

    from pyspark.sql import SparkSession

    scratch = scratch_folder("retention-lab-spark-", folder)
    (scratch / "local").mkdir()
    (scratch / "tmp").mkdir()
    builder = (
        SparkSession.builder.master("local[*]")
        .appName("retention-lab-report")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        # nothing is written to the warehouse (views only), but Spark must not make it in the
        # working folder
        .config("spark.sql.warehouse.dir", (scratch / "warehouse").as_posix())
        .config("spark.local.dir", (scratch / "local").as_posix())
        .config("spark.driver.extraJavaOptions", f"-Djava.io.tmpdir={(scratch / 'tmp').as_posix()}")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")  # no progress bars on standard error
        .config("spark.sql.shuffle.partitions", str(partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    with _child_output_to(scratch / "spark.log"):  # the JVM starts here, and keeps these
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")

    def stop() -> None:
        session.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    atexit.register(stop)
    return ibis.pyspark.connect(session)


@contextlib.contextmanager
def _child_output_to(path: Path) -> Iterator[None]:
    """This process's file descriptors 1 and 2 (standard output and error) pointed at the file
    `path` while the block runs, then back: a child process started in the block (Spark's
    JVM) inherits the file and writes there for its whole life. Python's own ``sys.stdout``
    and ``sys.stderr`` are flushed before; in a notebook's kernel they are not these
    descriptors (the kernel sends them to the cell's output), so nothing of the kernel's is
    lost."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or replaced stream: nothing to flush
            stream.flush()
    with open(path, "ab") as log:
        saved = [os.dup(fd) for fd in (1, 2)]
        try:
            for fd in (1, 2):
                os.dup2(log.fileno(), fd)
            yield
        finally:
            for fd, old in zip((1, 2), saved, strict=True):
                os.dup2(old, fd)
                os.close(old)


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


#: Rows a database other than DuckDB or Spark hands over at a time (:func:`to_arrow`,
#: :func:`to_pandas`). Ibis fetches a PostgreSQL result as Python tuples, a million rows at a
#: time by default, before making them Arrow: at 842k customers the one pass's per-customer
#: table took 817 MB of Python objects in the kernel beside the frames (the 10M PostgreSQL
#: table's peak, benchmarks/README.md, 2026-12-07), and Python keeps the freed objects' memory.
FETCH_ROWS = 50_000


def _fetch_kwargs(expr: ir.Expr) -> dict[str, int]:
    """``chunk_size`` for a backend that fetches rows (:data:`FETCH_ROWS`); none for DuckDB and
    Spark, which hand over Arrow."""
    name = expr._find_backend(use_default=True).name  # a memtable: the default DuckDB
    return {} if name in ("duckdb", "pyspark") else {"chunk_size": FETCH_ROWS}


def to_arrow(expr: ir.Table) -> pa.Table:
    """`expr`'s result as an Arrow table (``to_pyarrow``), from a database other than DuckDB or
    Spark in batches of :data:`FETCH_ROWS` rows: the same table, a batch's Python objects at a
    time."""
    return expr.to_pyarrow(**_fetch_kwargs(expr))


def to_pandas(expr: ir.Table) -> pd.DataFrame:
    """`expr`'s result as a pandas DataFrame (``to_pandas``); from PostgreSQL through
    :func:`to_arrow` (times in nanoseconds) and Ibis's conversion of a PostgreSQL result: the
    frame Ibis's own fetch gives, not from all its rows as Python tuples at once. Other
    backends: Ibis's own (their conversions are theirs)."""
    kwargs = _fetch_kwargs(expr)
    if not kwargs or expr._find_backend(use_default=True).name != "postgres":
        return expr.to_pandas()
    from ibis.backends.postgres.converter import PostgresPandasData

    table = expr.to_pyarrow(**kwargs)
    frame = table.to_pandas(coerce_temporal_nanoseconds=True)  # as Ibis gives times
    return PostgresPandasData.convert_table(frame, expr.schema())


@ibis.udf.scalar.builtin(name="md5")
def _md5(text: str) -> str:
    """The MD5 digest of `text` (its UTF-8 bytes) as 32 lowercase hex digits: the database's own
    ``md5``, the same value in DuckDB, PostgreSQL and Spark (RFC 1321)."""


def sample_customers(t: ir.Table, k: int) -> ir.Table:
    """The rows of `t` (an expression with ``customer_id``) of about one customer in `k`: those
    whose id, as text, has an MD5 digest whose first four hex digits are below
    ceil(65536 / `k`) (a share of ceil(65536 / k) / 65536 >= 1 / k of the customers, chosen as
    at random, the same ones every run). Every backend draws the same customers from the same
    data: a database's own ``hash()`` is its own (PostgreSQL's sample of a 10M-order table was
    not DuckDB's, and the lapsed-or-lost window and the NRR's standard error differed from the
    CSV's report). On a coded hand-over each customer's digest is taken once (its side table of
    ids), the rows kept by a semi-join; elsewhere each row's (at 10M orders in PostgreSQL 2.9-3.1 s
    against 9.7-10.2 s for the distinct ids and a semi-join; in DuckDB about the same)."""
    cut = f"{-(-65536 // max(int(k), 1)):04x}"

    def chosen(ids: ir.Table) -> ir.BooleanValue:
        return _md5(ids.customer_id.cast("string")).substr(0, 4) < cut

    _, codes = _coded(t)
    if codes is None:
        return t.filter(chosen(t))
    side = codes.customers
    return t.semi_join(side.filter(chosen(side)).select("customer_id"), "customer_id")


# ------------------------------------------------------ integer customer codes (the hand-over's)
# The report command's hand-over (helpers.report.orders._save_engine_table) numbers the text
# customer ids 0..n-1 in their sorted order and stores the orders with their customer's code,
# the text ids joined back in a view. The kernel's table is that view (text ids:
# coded_handover); the engine's functions compute on the codes (_coded: the same expression over
# the coded table) and give results indexed by the text ids again (CustomerCodes.decode), and
# the ids they are given (events, members, customers' first months) are coded on the way in
# (CustomerCodes.encode). Grouping, numbering, sorting and
# joining on a 4-byte integer instead of a text: at 10M orders and 842k customers the summary
# per customer 1.4 -> 0.8 s, the numbering window 4.1 -> 2.8 s (benchmarks/README.md). A table
# without codes (a DataFrame's, a warehouse's, Spark's) takes the text path, unchanged.


class CustomerCodes:
    """The customer codes of one hand-over: `coded`, its orders with ``customer_id`` the integer
    code (0..n-1 in the sort order of the text ids, so sorted by code is sorted by id), and
    `customers` (``code``, ``customer_id``: the side table). The ids are read once, when first
    needed (:attr:`ids`); :meth:`decode` and :meth:`encode` are the one pair every engine function
    uses at its boundary."""

    def __init__(self, visible: ir.Table, coded: ir.Table, customers: ir.Table) -> None:
        self.visible, self.coded, self.customers = visible.op(), coded.op(), customers
        self._ids: np.ndarray | None = None
        self._index: pd.Index | None = None

    @property
    def ids(self) -> np.ndarray:
        """The text ids in the order of their codes (``ids[code]`` is the id), as Python str."""
        if self._ids is None:
            col = self.customers.order_by("code").customer_id.to_pyarrow()
            self._ids = np.asarray(col.to_numpy(), dtype=object)
        return self._ids

    def decode(self, codes: np.ndarray | pd.Series) -> np.ndarray:
        """The text ids (object array) of `codes`: ``ids[codes]``."""
        return self.ids.take(np.asarray(codes, dtype=np.intp))

    def encode(self, ids: np.ndarray | pd.Index) -> np.ndarray:
        """The codes (int32) of the text ids `ids`; -1 for an id without orders (it then matches
        no order, as its text matched none). Sorted ids (the customer summary's, in the codes'
        order) by one merge with the codes' ids, others by hashing
        (:func:`helpers.report.frames.positions`; at 8.4M ids 8.8 s by hashing)."""
        from helpers.report.frames import positions

        if self._index is None:
            self._index = pd.Index(self.ids)
        return positions(self._index, pd.Index(np.asarray(ids, dtype=object))).astype(np.int32)


#: The coded hand-overs opened in this process: the kernel's table (the text ids) -> its codes.
_CODED: dict[ops.Node, CustomerCodes] = {}


def coded_handover(visible: ir.Table, coded: ir.Table, customers: ir.Table) -> ir.Table:
    """The hand-over's orders as the kernel sees them, `visible` (text ``customer_id``),
    returned; the engine's functions given this table, or any expression on it that keeps
    ``customer_id`` as it is (a filter, a selection), compute on `coded` (the same rows and
    columns, ``customer_id`` the integer code: :func:`_coded`). `customers`: the side table
    (``code``, ``customer_id``)."""
    _CODED[visible.op()] = CustomerCodes(visible, coded, customers)
    while len(_CODED) > MEMO_SIZE:
        del _CODED[next(iter(_CODED))]
    return visible


def _coded(
    orders: ir.Table | pd.DataFrame,
) -> tuple[ir.Table | pd.DataFrame, CustomerCodes | None]:
    """`orders` with ``customer_id`` the integer customer code, and the codes, when it is an
    expression on a coded hand-over (:func:`coded_handover`): the same expression over the coded
    table. Otherwise (a DataFrame, a table without codes, an expression that uses the id's text)
    `orders` itself and None: the text path."""
    if not _CODED or not isinstance(orders, ir.Table):
        return orders, None
    found = set(orders.op().find(lambda n: n in _CODED))
    if len(found) != 1 or _uses_id_text(orders.op()):
        return orders, None
    codes = _CODED[found.pop()]
    try:
        t = orders.op().replace({codes.visible: codes.coded}).to_expr()
    except Exception:  # noqa: BLE001 (the expression uses the id as text: kept on text)
        return orders, None
    if "customer_id" not in t.columns or not t.customer_id.type().is_integer():
        return orders, None
    return t, codes


def coded(orders: ir.Table | pd.DataFrame) -> ir.Table | pd.DataFrame:
    """`orders` with ``customer_id`` the hand-over's integer customer code where it has one
    (:func:`_coded`: for counting or grouping customers without joining their text ids),
    otherwise `orders` itself."""
    return _coded(orders)[0]


def _uses_id_text(op: ops.Node) -> bool:
    """Whether the expression `op` uses ``customer_id`` other than as itself (kept, grouped or
    sorted by: the same on the codes), e.g. compares it with a text, casts it or names it
    otherwise: then its codes would not stand for it."""

    def is_id(x: object) -> bool:
        return isinstance(x, ops.Field) and x.name == "customer_id"

    for node in op.find(ops.Node):
        if isinstance(node, ops.Field | ops.SortKey):
            continue
        if isinstance(node, ops.Relation):  # kept under its own name only
            for attr in ("values", "groups", "metrics"):
                named = getattr(node, attr, None) or {}
                if any(is_id(v) and k != "customer_id" for k, v in dict(named).items()):
                    return True
            continue
        for arg in node.__args__:  # a value computed from the id
            if is_id(arg) or (isinstance(arg, tuple) and any(is_id(a) for a in arg)):
                return True
    return False


def _decode(codes: CustomerCodes | None, values: np.ndarray | pd.Series) -> np.ndarray | pd.Series:
    """Customer ids as the engine's results give them: the text of the codes `values`, or on
    the text path (`codes` None: a warehouse table) `values` themselves, each text id the string
    object of the customers seen before (:func:`_shared_ids`)."""
    return _shared_ids(values) if codes is None else codes.decode(values)


#: The text ids of the most customers one table of customers has held (:func:`_shared_ids`).
_SHARED_IDS: list[pd.Index] = []
_SHARED_LOCK = threading.Lock()


def _shared_ids(values: np.ndarray | pd.Series) -> np.ndarray | pd.Series:
    """Text customer ids from the engine without codes (a warehouse table, :func:`_coded`) as
    the same string objects wherever an id was seen before: each table of customers read from a
    table in the warehouse (the customer summary, the one pass's, the net revenues) otherwise
    holds its own copy of every id -- at 10M orders and 842k customers about 175 MB more than
    on a file, whose ids all come from one decoding of the codes (``CustomerCodes.decode``).
    The ids seen are those of the largest such table so far, its ids shared in turn; an id is
    replaced only by an equal one, found by one merge of the two sorted tables
    (:func:`helpers.report.frames._merged_positions`: no hash table built or kept), so the
    values are the engine's. Ids that are not sorted increasing without repeats, and numbers
    (integer ids), are returned as they are."""
    from helpers.report import frames

    if getattr(values, "dtype", None) != np.dtype(object) or not len(values):
        return values  # numbers, or text the engine gave in another type: as they are
    values = np.asarray(values)
    ids = pd.Index(values, copy=False)
    # strictly increasing (the monotonic check finds repeats too): no hashing
    if not (ids.is_monotonic_increasing and ids.is_unique):
        return values
    with _SHARED_LOCK:
        known = _SHARED_IDS[0] if _SHARED_IDS else None
    pos = frames._merged_positions(known, ids) if known is not None else None
    if pos is not None and (hit := pos >= 0).any():
        values = values.copy()
        values[hit] = known.to_numpy(object)[pos[hit]]
        ids = pd.Index(values, copy=False)
    with _SHARED_LOCK:
        if not _SHARED_IDS or len(ids) > len(_SHARED_IDS[0]):
            _SHARED_IDS[:] = [ids]
    return values


def _encode(codes: CustomerCodes | None, ids: np.ndarray) -> np.ndarray:
    """Text customer ids (an object array) as the engine joins them: their codes, or the text
    itself on the text path (`codes` None)."""
    return ids if codes is None else codes.encode(ids)


def period_code(ts: ir.TimestampValue, freq: str) -> ir.IntegerValue:
    """Integer period of each timestamp, equal to :func:`helpers.periods.period_codes` (the pandas
    ``Period`` ordinal): days since 1970-01-01 ("D"), Monday-to-Sunday weeks ("W": (days + 3) // 7
    + 1, because 1970-01-01 was a Thursday), months ((year - 1970) * 12 + month - 1) or quarters.
    The year and month are cast to 64-bit integers: PostgreSQL's ``EXTRACT`` gives ``numeric``,
    whose arithmetic on every row made a month's code about a fifth of a 10M-row group-by
    there (benchmarks/README.md); DuckDB's and Spark's are integers already."""
    if freq not in periods.FREQS:
        raise ValueError(f"freq must be one of {sorted(periods.FREQS)}, got {freq!r}")
    if freq in ("D", "W"):
        days = ts.date().delta(ibis.date(_EPOCH), unit="day")
        return days if freq == "D" else (days + 3) // 7 + 1
    months = (ts.year().cast("int64") - 1970) * 12 + ts.month().cast("int64") - 1
    return months if freq == "M" else months // 3


def default_as_of(t: ir.Table, date_col: str = "order_date") -> pd.Timestamp:
    """The day of the last order (as :func:`helpers.periods.default_as_of`), from the engine."""
    last = t[date_col].max().to_pandas()
    if last is None or pd.isna(last):
        raise ValueError("no dates: the table is empty")
    return pd.Timestamp(last).normalize()


def money_scale(orders: ir.Table | pd.DataFrame, col: str = "amount") -> int | None:
    """:func:`helpers.money.scale` of the column `col` of `orders`, from the engine for a table
    (one query, the tests on its distinct values, :data:`helpers.money.TOLERANCE`), kept per
    orders object (:func:`_memo`): the fewest decimal places at which every amount is a whole
    number of units, or None. Sums at that scale (:func:`exact_sum`) are exact, so the same in
    every run and equal to the pandas helpers' (:mod:`helpers.money`: at 10M orders the engine's
    float sums of the same file differed from run to run by 5.8e-11, and moved the report's
    at-risk count by one)."""
    memo = _memo(orders)
    key = ("money_scale", col)
    if key not in memo:
        if isinstance(orders, pd.DataFrame):
            memo[key] = money.scale(pd.to_numeric(orders[col], errors="coerce"))
        else:
            t = as_table(_coded(orders)[0])  # a coded hand-over's table: no ids joined
            # on the distinct amounts (a shop's prices repeat): every amount is whole at a
            # scale exactly when every distinct one is. At 100M orders (78k distinct amounts)
            # 0.4 s against 3.7-4.5 s for the tests on every row (benchmarks/README.md)
            t = t.select(a=t[col].cast("float64")).distinct()
            a = t.a
            # in the same scan, the scale of the purchases among them (:func:`purchases`)
            checks = {"n": a.count(), "n_bought": a.count(where=a >= 0)}
            for s in money.SCALES:
                v = a * 10**s
                whole = (v - v.round()).abs() <= v.abs() * money.TOLERANCE
                checks[f"s{s}"] = whole.all()
                checks[f"b{s}"] = whole.all(where=a >= 0)
            row = t.aggregate(**checks).to_pandas().iloc[0]
            for k, n, c in ((key, "n", "s"), (("purchases_scale", col), "n_bought", "b")):
                ok = [s for s in money.SCALES if row[n] > 0 and bool(row[f"{c}{s}"])]
                memo[k] = ok[0] if ok else None
    return memo[key]


def exact_sum(
    x: ir.NumericValue, scale: int | None, where: ir.BooleanValue | None = None, wide: bool = False
) -> ir.FloatingValue:
    """The sum of `x` (over the rows where `where`), exact and so independent of the order in
    which the engine adds the rows, then the float nearest to it, as
    :func:`helpers.money.group_sum` gives it in pandas. Values must be whole numbers of
    10^-`scale` (:func:`money_scale`; a product of two such amounts at twice the scale): each is
    taken as the integer N = round(x 10^scale) (the rounding removes only the float's
    representation error), the integers summed exactly (a 64-bit integer's sum is a 128-bit
    integer in DuckDB, numeric in PostgreSQL), and the sum's float divided by 10^scale: IEEE
    division of an exact float is correctly rounded, so this is the float nearest to the exact
    sum, as the cast of a DECIMAL(18, `scale`) sum gives it — which PostgreSQL sums about twice as
    slowly (numeric arithmetic: 7.8 against 3.8 s for 845k customers' sums of 10M rows;
    benchmarks/README.md). `wide` (a square of amounts, beyond 64-bit integers): DECIMAL(38,
    `scale`) values summed as a 128-bit decimal. `scale` None: the plain float sum."""
    x = x.cast("float64")
    if scale is None:
        return x.sum(where=where)
    if wide:
        return x.cast(f"decimal(38, {scale})").sum(where=where).cast("float64")
    units = (x * 10**scale).round().cast("int64")
    return units.sum(where=where).cast("float64") / 10**scale


def _up_to(t: ir.Table, as_of: str | pd.Timestamp, date_col: str) -> ir.Table:
    end = periods.as_of_end(as_of).to_pydatetime()
    return t.filter(t[date_col] < ibis.timestamp(end))


def _customer_aggregates(
    t: ir.Table,
    customer_col: str,
    date_col: str,
    amount_col: str,
    cut: pd.Timestamp | None = None,
    scale: int | None = None,
    split: pd.Timestamp | None = None,
) -> ir.Table:
    """The per-customer figures every summary is made of, as one engine expression (nothing
    computed): `customer_col`, ``first_order`` and ``last_order`` (the first and last order
    times), ``n_orders``, ``monetary_total`` (the sum of the amounts) and ``first_amount`` (the
    mean amount of the orders at the first time) of the orders `t` (already cut at the as-of
    date). :func:`customer_summary` (RFM and BTYD columns) and :func:`btyd_summary` (x, t_x and
    T at a resolution) both start from it. With `cut` (a time), the figures are those of the
    orders before `cut`, only customers with one are kept, and ``holdout`` counts each one's
    orders of `t` from `cut` on, in the same scan (:func:`calibration_holdout`). The sums are
    exact at the amounts' `scale` (:func:`money_scale`, :func:`exact_sum`): the same in every run.
    With `split` (a time; without `cut`), every customer's figures and beside them those of the
    orders before `split` (``cal_last``, ``cal_n``, ``cal_total``: a customer's first order and
    its amount are the same there when ``cal_n`` > 0), in the same scan: the summary and the
    calibration of :func:`summary_and_split`."""
    c, d, a = t[customer_col], t[date_col], t[amount_col].cast("float64")
    if cut is None:
        more = {}
        if split is not None:
            # no missing values (a customer without an order before the split: its first
            # order's time): Ibis converts a DuckDB column with any through Python objects, at
            # 10M orders 3.3-3.5 s for the scan against 1.35 s
            before = d < ibis.timestamp(split.to_pydatetime())
            more = {"cal_last": d.max(where=before).fill_null(d.min()),
                    "cal_n": c.count(where=before),
                    "cal_total": exact_sum(a, scale, where=before).fill_null(0.0)}  # fmt: skip
        agg = t.group_by(customer_col).agg(
            first_order=d.min(), last_order=d.max(), n_orders=c.count(),
            monetary_total=exact_sum(a, scale), **more,
        )  # fmt: skip
    else:
        before = d < ibis.timestamp(cut.to_pydatetime())
        agg = t.group_by(customer_col).agg(
            first_order=d.min(where=before), last_order=d.max(where=before),
            n_orders=c.count(where=before), monetary_total=exact_sum(a, scale, where=before),
            holdout=c.count(where=~before),
        )  # fmt: skip
        agg = agg.filter(agg.n_orders > 0)
    at_first = t.join(agg.select(customer_col, "first_order"), customer_col)
    first_amt = (
        at_first.filter(at_first[date_col] == at_first.first_order)
        .group_by(customer_col)
        .agg(first_amount=lambda s: exact_sum(s[amount_col], scale) / s.count())
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
    df = _summary_aggregates(orders, as_of, time_unit, customer_col, date_col, amount_col)
    return _summary_of(df, df.attrs["as_of"], time_unit, customer_col)


def _summary_aggregates(
    orders: ir.Table | pd.DataFrame,
    as_of: str | pd.Timestamp | None,
    time_unit: str,
    customer_col: str = "customer_id",
    date_col: str = "order_date",
    amount_col: str = "amount",
    holdout_end: pd.Timestamp | None = None,
    split: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """:func:`_customer_aggregates` of the orders up to the end of the as-of day, from the
    engine (sorted by customer; attrs ``as_of``); with `holdout_end` (a time after that end), also
    ``holdout``: each customer's orders from the end of the as-of day until `holdout_end`; with
    `split` (a time before that end), also the figures before it (``cal_*``)."""
    segments.unit_days(time_unit)  # an unknown unit is refused before any work
    # the codes for the engine (_coded); the scale is kept per orders object given (money_scale)
    coded, codes = _coded(orders) if customer_col == "customer_id" else (orders, None)
    if as_of is None:  # the one default (helpers.periods): the day of the last row
        as_of = periods.default_as_of([as_table(coded)[date_col].max().to_pyarrow().as_py()])
    end = periods.as_of_end(as_of)
    scale = money_scale(orders, amount_col)

    def aggregates(t: ir.Table) -> pd.DataFrame:
        if holdout_end is None:
            t = _up_to(t, as_of, date_col)
            agg = _customer_aggregates(t, customer_col, date_col, amount_col, scale=scale,
                                       split=split)  # fmt: skip
        else:
            t = t.filter(t[date_col] < ibis.timestamp(holdout_end.to_pydatetime()))
            agg = _customer_aggregates(t, customer_col, date_col, amount_col, cut=end, scale=scale)
        return to_pandas(agg.order_by(customer_col))

    # in ranges of customers when the group-by would not fit DuckDB's memory (customer_ranges)
    t = as_table(coded)
    ranges = customer_ranges(t, codes)
    df = aggregates(t) if ranges == [None] else pd.concat(
        [aggregates(_codes_in(t, r)) for r in ranges], ignore_index=True
    )  # fmt: skip
    if df.empty:
        raise ValueError(
            f"no orders on or before the as-of date {end.date() - pd.Timedelta(days=1)}"
        )
    df[customer_col] = (
        _decode(codes, df[customer_col]) if customer_col == "customer_id" else df[customer_col]
    )
    df.attrs["as_of"] = as_of
    return df


def _summary_of(
    df: pd.DataFrame, as_of: str | pd.Timestamp, time_unit: str, customer_col: str
) -> pd.DataFrame:
    """:func:`customer_summary` from the engine's aggregates `df` (:func:`_summary_aggregates`)."""
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
    those in the partial period after the last complete one (the censoring rule). On a coded
    hand-over, ``customer_id`` is the integer code (:func:`_coded`): nothing per customer leaves."""
    t = as_table(_coded(orders)[0] if customer_col == "customer_id" else orders)
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
    scale = money_scale(orders, amount_col) if amount_col else None
    metrics = {"rev": exact_sum(t.amount, scale)} if amount_col else {"n": t.count()}
    return t.group_by(["customer_id", "p"]).agg(**metrics), pd.Timestamp(as_of), last


def _kept_per_table(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn(orders, ...)` kept per Ibis table under its name and arguments (:func:`cached`:
    computed once per table, or ahead by a :func:`prefetch`; a copy returned); on a DataFrame
    computed at each call."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def kept(orders: ir.Table | pd.DataFrame, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(orders, ir.Table):
            return fn(orders, *args, **kwargs)
        bound = signature.bind(orders, *args, **kwargs)
        bound.apply_defaults()
        values = list(bound.arguments.values())[1:]  # an as-of date as text or as a Timestamp
        key = (fn.__name__, *(v if v is None or isinstance(v, str | bool | int) else str(v)
                              for v in values))  # fmt: skip
        return cached(key, lambda: fn(orders, *args, **kwargs), orders)

    return kept


@_kept_per_table
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
    scale = money_scale(orders)  # each sum exact, as each period's revenue: the same every run
    per = (
        act.group_by("p")
        .agg(
            customers_end=act.count(),
            revenue=exact_sum(act.rev, scale),
            new=act.count(where=act.p_prev.isnull()),
            retained=act.count(where=kept),
            revenue_retained=exact_sum(act.rev, scale, where=kept),
            revenue_capped=exact_sum(ibis.least(act.rev, act.rev_prev), scale, where=kept),
            # negative revenue only
            lost_capped=exact_sum(ibis.least(act.rev, 0.0), scale, where=lost),
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


@_kept_per_table
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
    :func:`helpers.report.analysis.purchases`; the amounts' scale (:func:`money_scale`) of
    these purchases is known from the scan that gave that of `orders` (an Ibis table's)."""
    t = as_table(orders)
    bought = t.filter(t[amount_col] >= 0)
    if isinstance(orders, ir.Table):
        money_scale(orders, amount_col)
        _memo(bought)[("money_scale", amount_col)] = _memo(orders)[("purchases_scale", amount_col)]
    return bought


def headline(orders: ir.Table | pd.DataFrame, as_of: str | pd.Timestamp) -> dict:
    """:func:`helpers.report.analysis.headline` from the engine: customers with a purchase, purchases
    (amount >= 0) and zero-value ones, revenue (refund rows included), average order value,
    revenue per customer, repeat-purchase rate (2+ purchases), first and last date; all up to
    the end of the as-of day."""
    scale = money_scale(orders)
    t = _up_to(as_table(_coded(orders)[0]), as_of, "order_date")  # counts per customer only
    amount = t.amount.cast("float64")
    bought = amount >= 0
    whole = t.aggregate(  # one scan: every row, and the purchases among them (amount >= 0)
        revenue=exact_sum(amount, scale), first=t.order_date.min(), last=t.order_date.max(),
        purchases=t.count(where=bought), zero=t.count(where=t.amount == 0),
        spent=exact_sum(amount, scale, where=bought) / t.count(where=bought),
    ).to_pandas()  # fmt: skip
    b = t.filter(bought)
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
        "purchases": int(whole["purchases"].iloc[0]),
        "zero_value_orders": int(whole["zero"].iloc[0]),
        "revenue": revenue,
        "average_order_value": float(whole["spent"].iloc[0]),
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
    if end <= cut:
        customer_summary(t, calibration_end, time_unit)  # its refusal first, as before
        raise ValueError(
            f"holdout_end {holdout_end} must be after calibration_end {calibration_end}"
        )
    # one scan: the calibration's aggregates and each customer's holdout orders beside them
    agg = _summary_aggregates(t, calibration_end, time_unit, holdout_end=end)
    return _calibration_of(agg, agg["holdout"], calibration_end, holdout_end, time_unit)


def _calibration_of(
    agg: pd.DataFrame,
    holdout: pd.Series,
    calibration_end: str | pd.Timestamp,
    holdout_end: str | pd.Timestamp,
    time_unit: str,
) -> pd.DataFrame:
    """:func:`calibration_holdout`'s table from the calibration's aggregates `agg` and each of
    its customers' `holdout` orders."""
    cut, end = periods.as_of_end(calibration_end), periods.as_of_end(holdout_end)
    cal = _summary_of(agg, calibration_end, time_unit, "customer_id")
    cal["holdout_purchases"] = holdout.to_numpy().astype(int)
    cal["holdout_duration"] = (end - cut) / pd.Timedelta(days=segments.unit_days(time_unit))
    cal.attrs.update(
        calibration_end=str(pd.Timestamp(calibration_end).date()),
        holdout_end=str(pd.Timestamp(holdout_end).date()),
    )
    return cal


def summary_and_split(
    orders: ir.Table | pd.DataFrame,
    as_of: str | pd.Timestamp,
    time_unit: str,
    calibration_end: Callable[[pd.Timestamp], str | pd.Timestamp],
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """:func:`customer_summary` of `orders` as of `as_of`, and :func:`calibration_holdout` of the
    same orders split at the end of the day `calibration_end(first)` returns (`first`: the
    earliest order up to as-of; the holdout through the as-of day), from one scan of the orders
    instead of two: every customer's figures and those before the split side by side
    (:func:`_customer_aggregates`), then the calibration's customers (an order before the split)
    with the same figures :func:`calibration_holdout` computes (its holdout: the orders after
    the split); before it, one ``min`` of the order times for `first`. The calibration is None when no order comes before the split, or when
    `calibration_end` raises ValueError (:func:`calibration_holdout`'s refusals are then said by
    calling it). At 100M orders the second scan was 13 s of the kernel's (benchmarks/README.md,
    issue 31)."""
    t = as_table(_coded(orders)[0])
    first = _up_to(t, as_of, "order_date").order_date.min().to_pyarrow().as_py()
    if first is None:  # no orders: the summary's own refusal
        return customer_summary(orders, as_of, time_unit), None
    try:
        cal_end = calibration_end(pd.Timestamp(first))
    except ValueError:
        return customer_summary(orders, as_of, time_unit), None
    cut = periods.as_of_end(cal_end)
    if cut >= periods.as_of_end(as_of):
        return customer_summary(orders, as_of, time_unit), None
    df = _summary_aggregates(orders, as_of, time_unit, split=cut)
    summary = _summary_of(df, df.attrs["as_of"], time_unit, "customer_id")
    keep = df["cal_n"].to_numpy() > 0
    if not keep.any():
        return summary, None
    agg = pd.DataFrame({
        "customer_id": df["customer_id"].to_numpy()[keep],
        "first_order": df["first_order"].to_numpy()[keep],
        "last_order": df["cal_last"].to_numpy()[keep],
        "n_orders": df["cal_n"].to_numpy()[keep],
        "monetary_total": df["cal_total"].to_numpy()[keep],
        "first_amount": df["first_amount"].to_numpy()[keep],
    })  # fmt: skip
    holdout = pd.Series(df["n_orders"].to_numpy()[keep] - agg["n_orders"].to_numpy())
    return summary, _calibration_of(agg, holdout, cal_end, as_of, time_unit)


def order_sums(orders: ir.Table | pd.DataFrame) -> economics.OrderSums:
    """:class:`helpers.economics.OrderSums` of `orders` (the purchases the caller folds the
    economics on) in one aggregate: the counts, and the amounts and discounts over all, kept and
    returned orders, each an exact sum at its column's money scale (:func:`exact_sum`,
    :func:`money_scale`), so equal to ``OrderSums.of`` the same rows in pandas; a missing
    discount counts 0 and a missing ``returned`` False. Nothing per order comes back (at 100M
    purchases the fold fetched three columns of every row: 12 s). On a DataFrame,
    ``OrderSums.of``."""
    if isinstance(orders, pd.DataFrame):
        return economics.OrderSums.of(orders)
    t = as_table(_coded(orders)[0])  # a coded hand-over's table: no ids joined
    amount = t.amount.cast("float64")
    sa = money_scale(orders, "amount")
    aggs = {"n": t.count(), "amount": exact_sum(amount, sa)}
    has_disc, has_ret = "discount" in t.columns, "returned" in t.columns
    disc = t.discount.cast("float64").fill_null(0.0) if has_disc else None
    sd = money_scale(orders, "discount") if has_disc else None
    if has_disc:
        aggs["discount"] = exact_sum(disc, sd)
    if has_ret:
        back = t.returned.fill_null(False)
        aggs.update(
            returned=t.count(where=back),
            kept_amount=exact_sum(amount, sa, where=~back),
            returned_amount=exact_sum(amount, sa, where=back),
        )
        if has_disc:
            aggs["kept_discount"] = exact_sum(disc, sd, where=~back)
    row = t.aggregate(**aggs).to_pandas().iloc[0]

    def get(key: str, default: float = 0.0) -> float:
        value = row[key] if key in row.index else default
        return float(value) if pd.notna(value) else 0.0  # an empty sum: 0

    total, discount = get("amount"), get("discount")
    return economics.OrderSums(
        orders=int(row["n"]),
        returned=int(get("returned")),
        amount=total,
        kept_amount=get("kept_amount", total),
        kept_discount=get("kept_discount", discount),
        returned_amount=get("returned_amount"),
        discount=discount,
    )


@_kept_per_table
def customer_totals(
    orders: ir.Table | pd.DataFrame, customer_col: str = "customer_id", amount_col: str = "amount"
) -> pd.Series:
    """Sum of the amounts per customer over every row (refunds included), indexed by customer,
    sorted by the ids (on a coded hand-over their codes sorted: the ids' text order), so that the
    report's other tables per customer, sorted too, line up with it in one merge
    (:func:`helpers.report.frames.align`)."""
    coded, codes = _coded(orders) if customer_col == "customer_id" else (orders, None)
    t = as_table(coded)
    total = exact_sum(t[amount_col], money_scale(orders, amount_col))
    df = t.group_by(customer_col).agg(total=total)
    if codes is None:  # text ids (a warehouse table): sorted by the engine (in its collation)
        df = df.order_by(customer_col)
    df = df.to_pandas()
    if codes is not None:
        df = df.sort_values(customer_col, ignore_index=True)  # integer codes: a quick sort
    if customer_col == "customer_id":
        df[customer_col] = _decode(codes, df[customer_col])
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
    # here, not at the module's top: helpers.btyd brings scipy.stats and statsmodels (0.5 s),
    # which the report command's reading child, importing this module, does not need
    from helpers import btyd

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
    j = _customer_aggregates(
        t, customer_col, date_col, amount_col, scale=money_scale(orders, amount_col)
    )
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
    statuses and placeholders (:func:`strip`)."""
    return strip(col.cast("string").fill_null("")).lower()


#: The blanks a text is trimmed of: what Python's ``str.strip()`` removes, the file readers'
#: (:data:`helpers.tables.parse.WHITESPACE`; Ibis's ``strip()`` takes ASCII blanks only, so a
#: database's no-break space stayed where a CSV's was trimmed).
_BLANKS = WHITESPACE


def strip(text: ir.StringValue) -> ir.StringValue:
    """`text` without blanks at its ends, as ``str.strip()`` (:data:`_BLANKS`): replaced by a
    regular expression only where one matches at an end (:data:`helpers.tables.parse.EDGE_RE`),
    the others taken as they are -- as the file readers trim a cell. The same expression on
    DuckDB, PostgreSQL and Spark (the blanks are literal characters in the pattern)."""
    return ibis.ifelse(text.re_search(EDGE_RE), text.re_replace(STRIP_RE, ""), text)


def _is_placeholder(col: ir.Value, placeholders: list[str]) -> ir.BooleanValue:
    """Whether a cell is blank or one of `placeholders` (given trimmed and lower-case) once
    trimmed and lower-cased: ``_lower_text(col).isin([*placeholders, ""])``, as one anchored
    regular expression on the lower-cased text (``^[blanks]*(?:p1|p2…)?[blanks]*$``, the
    placeholders escaped): the same rows, but no trimmed copy of every id is made (a third of
    the time on DuckDB, whose trim by a set of characters is slow)."""
    import re

    words = "|".join(re.escape(p) for p in placeholders if p)
    return _trimmed_match(
        col.cast("string").fill_null("").lower(), f"(?:{words})?" if words else ""
    )


def _trimmed_match(text: ir.StringValue, pattern: str) -> ir.BooleanValue:
    """Whether `text` without the blanks at its ends (:data:`_BLANKS`, as :func:`strip`)
    matches the regular expression `pattern` in full: ``^[blanks]*(?:pattern)[blanks]*$`` (equal
    when `pattern` cannot itself match a blank at its ends), with no trimmed copy made."""
    blank = f"[{_BLANKS}]*"
    return text.re_search(f"^{blank}(?:{pattern}){blank}$")


def _trimmed_prefix(text: ir.StringValue, prefix: str) -> ir.BooleanValue:
    """``strip(text).startswith(prefix)`` (:func:`strip`'s blanks, :data:`_BLANKS`)
    without a trimmed copy of every row: after the blanks at its start the text begins with
    `prefix`, and when `prefix` ends in a blank a character other than a blank follows it
    somewhere (trimming the end would cut it otherwise). An empty prefix: every text; one
    starting with a blank: none (the trimmed text starts with none)."""
    import re

    if not prefix:
        return ibis.literal(True)
    if prefix[0] in _BLANKS:
        return ibis.literal(False)
    tail = f".*[^{_BLANKS}]" if prefix[-1] in _BLANKS else ""
    return text.re_search(f"(?s)^[{_BLANKS}]*{re.escape(prefix)}{tail}").fill_null(False)


def _missing_ids(t: ir.Table, placeholders: list[str]) -> pd.DataFrame:
    """The rows of `t` without a customer, grouped by their id as text ``v`` (None for a null
    id): ``n`` rows and ``revenue`` (sum of the amounts) per text. A customer is missing when the
    id is null, or blank or one of `placeholders` (trimmed, any case; `placeholders` given
    trimmed and lower-case). One scan; the few texts found then match exactly."""
    missing = t.customer_id.isnull() | _is_placeholder(t.customer_id, placeholders)
    m = t.filter(missing)
    return (
        m.group_by(v=m.customer_id.cast("string"))
        .agg(n=m.count(), revenue=m.amount.sum())
        .to_pandas()
    )


def mapping_rules(
    t: ir.Table,
    mapping,
    *,
    count: bool = True,
    placeholder_values: list[str] | None = None,
    status_values: dict[str, list[str | None]] | None = None,
) -> tuple[ir.Table, dict]:
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
    ``error``, refunds with ``reject``, order lines with two customers), with the counts.

    Without `count`, only the table's expression is built (no query runs, nothing is raised,
    the counts are empty): the rules on a table already checked with them, e.g. a warehouse
    table the notebook opens again (:func:`helpers.report.orders.open_orders`). The counts
    include ``placeholder_values``: the customer ids as written that are placeholders (a few
    distinct texts); given back as `placeholder_values`, rows are matched against them exactly,
    not trimmed and lower-cased row by row (a table read where it is: each query would again).
    Likewise ``status_values``: the statuses as written (``None`` for a missing one) that the
    ``keep`` and ``cancelled`` lists name once trimmed and lower-cased, found per distinct text;
    given back as `status_values`, statuses are matched exactly (trimming every row's status
    made a query of a 10M-row DuckDB table 1.8-2.3 s against 0.6-0.75 s; benchmarks/README.md,
    issue 31)."""
    from helpers.tables import DataValidationError, Problem

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
    )
    if count:
        first = first.to_pandas()
        counts["rows"] = int(first["rows"].iloc[0])
        counts["last_order"] = pd.Timestamp(first["last_order"].iloc[0])
    if mapping.as_of:
        if count:
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
    if placeholder_values is not None:  # the texts found before: exact matches
        if placeholder_values:
            missing = missing | t.customer_id.cast("string").isin(placeholder_values)
    elif count:  # one scan trims and lower-cases the ids: per missing id text its rows and revenue
        per_id = _missing_ids(t, placeholders)
        found = sorted(per_id["v"].dropna().astype(str))
        counts["placeholder_values"] = found
        counts["missing_customers"] = int(per_id["n"].sum())
        counts["missing_revenue"] = float(np.nan_to_num(per_id["revenue"].sum()))
        # then the texts found, exactly (the same rows: the test is a function of the text), so
        # no later query on the table trims and lower-cases every id again
        if found:
            missing = missing | t.customer_id.cast("string").isin(found)
    else:  # a blank id (spaces only: a database's text is not trimmed) is missing too
        missing = missing | _lower_text(t.customer_id).isin([*placeholders, ""])
    if count and "missing_customers" not in counts:
        gone = t.aggregate(n=t.count(where=missing), revenue=t.amount.sum(where=missing))
        gone = gone.to_pandas()
        counts["missing_customers"] = int(gone["n"].iloc[0])
        counts["missing_revenue"] = float(np.nan_to_num(gone["revenue"].iloc[0]))
    if counts.get("missing_customers") or not count:
        if mapping.missing_customer == "error" and count:
            shown = t.customer_id.cast("string").fill_null("").min(where=missing)
            example = scalar(shown) or ""
            raise DataValidationError([Problem(
                f"{counts['missing_customers']:,} rows have no customer id (blank or a "
                f"placeholder; e.g. '{example}'); orders without a customer cannot be followed "
                f"over time: set missing_customer: drop in the mapping to leave them out",
                column="customer_id", code="missing_customer", rows=counts["missing_customers"],
                example=str(example),
            )])  # fmt: skip
        t = t.filter(~missing)
    # typed: a bare 0.0 is PostgreSQL's numeric, converted on every row where it meets a double
    zero = ibis.literal(0.0, type="float64")
    refund = zero  # no status or refunded-amount rule: no refund beyond the negative rows
    kind = ibis.literal("")
    if mapping.status:
        scol = (
            "status"
            if "status" in cols
            else next(k for k, v in cols.items() if v == mapping.status["column"])
        )
        keep = [s.lower() for s in mapping.status["keep"]]
        cancelled = [s.lower() for s in mapping.status["cancelled"]]
        raw = t[scol].cast("string")
        if status_values is None and count:  # each distinct text trimmed and lower-cased, once
            per_text = t.group_by(_raw=raw).agg(
                n=lambda s: s.count(), amount=lambda s: s.amount.sum()
            )
            per_text = per_text.mutate(_status=_lower_text(per_text._raw)).to_pandas()
            said = per_text["_raw"].astype(object).where(per_text["_raw"].notna(), None)
            status_values = {
                "keep": said[per_text["_status"].isin(keep)].tolist(),
                "cancelled": said[per_text["_status"].isin(cancelled)].tolist(),
            }
            counts["status_values"] = status_values
            per = per_text[~per_text["_status"].isin(keep + cancelled)]
            per = (per.groupby("_status", as_index=False)[["n", "amount"]].sum()
                   .sort_values(["n", "_status"], ascending=[False, True]))  # fmt: skip
            counts["other_status"] = int(per["n"].sum())
            counts["other_status_amount"] = float(per["amount"].sum())
            counts["statuses"] = {
                (k or "(blank)"): int(v) for k, v in zip(per["_status"], per["n"], strict=True)
            }

        def among(texts: list[str | None]) -> ir.BooleanValue:  # exact, a missing one as None
            given = [x for x in texts if x is not None]
            test = raw.isin(given).fill_null(False) if given else ibis.literal(False)
            return test | raw.isnull() if None in texts else test

        if status_values is None:  # no query: each row's text trimmed and lower-cased
            t = t.filter(_lower_text(raw).isin(keep + cancelled))
            full = _lower_text(t[scol]).isin(cancelled)
        else:
            t = t.filter(among(status_values["keep"] + status_values["cancelled"]))
            full = among(status_values["cancelled"])
        refund = ibis.ifelse(full, ibis.greatest(t.amount, zero), zero)
        kind = ibis.ifelse(full, "status " + _lower_text(t[scol]), kind)
    if "refunded_amount" in t.columns:
        part = t.refunded_amount.fill_null(0.0)
        refund = ibis.greatest(refund, part)
        kind = ibis.ifelse((part > 0) & (kind == ""), "refunded amount", kind)
    amount = t.amount
    if mapping.cancellations:
        ccol = next(
            (k for k, v in cols.items() if v == mapping.cancellations["column"]), "cancellation"
        )
        # matched, not trimmed: the rule is part of a warehouse table's every query
        cancel = _trimmed_prefix(t[ccol].cast("string"), mapping.cancellations["prefix"])
        amount = ibis.ifelse(cancel, -amount.abs(), amount)
        kind = ibis.ifelse(cancel, "cancellation", kind)
    t = t.mutate(amount=amount, _refund=refund, _kind=kind)
    negative = t.amount < 0
    t = t.mutate(
        _kind=ibis.ifelse(negative & (t._kind == ""), "negative amount", t._kind),
        _refunded=negative | (t._refund > 0) if refund is not zero else negative,
    )
    n = 0
    if count:
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
    if n and count:
        kinds = (
            t.filter(t._refunded)
            .group_by("_kind")
            .agg(n=lambda s: s.count())
            .to_pandas()
            .sort_values(["n", "_kind"], ascending=[False, True])
        )
        counts["kinds"] = {str(k): int(v) for k, v in zip(kinds["_kind"], kinds["n"], strict=True)}
        if mapping.refunds == "reject":
            key = "order_id" if "order_id" in t.columns else "amount"
            example = scalar(t[key].cast("string").min(where=t._refunded))
            what = ", ".join(f"{k}: {v:,}" for k, v in counts["kinds"].items())
            raise DataValidationError([Problem(
                f"{n:,} rows are refunds or cancellations ({what}; e.g. {key} '{example}'), and "
                f"the mapping's refunds policy is 'reject'; set refunds: exclude (leave them out) "
                f"or refunds: net (subtract them from revenue)",
                column="amount", code="refund", rows=n, example=str(example),
            )])  # fmt: skip
    if n or not count:
        if mapping.refunds == "exclude":
            t = t.filter(~t._refunded)
        elif mapping.refunds == "net" and refund is not zero:  # else nothing to subtract
            # (an expression inlined in every query: in PostgreSQL, which inlines it wherever
            # the amount is used, the money scale's scan of 10M rows took 8.6 s with it, 1.5 without)
            t = t.mutate(amount=t.amount - ibis.ifelse(t.amount < 0, zero, t._refund))
    t = t.drop(*[c for c in ("_refund", "_kind", "_refunded") if c in t.columns])
    if mapping.rows == "order_lines":
        g = t.group_by("order_id")
        two = g.agg(k=t.customer_id.nunique()).filter(lambda s: s.k > 1)
        n_two = int(scalar(two.count())) if count else 0
        if n_two:
            example = scalar(two.order_id.cast("string").min())
            raise DataValidationError([Problem(
                f"{n_two:,} orders have lines with different customers (e.g. order '{example}')",
                column="order_id", code="two_customers", rows=n_two, example=str(example),
            )])  # fmt: skip
        if count:
            counts["lines"] = int(scalar(t.count()))
        # the lines' amounts summed exactly (exact_sum): the same orders in every run
        agg = {"customer_id": t.customer_id.min(), "order_date": t.order_date.min(),
               "amount": exact_sum(t.amount, money_scale(t))}  # fmt: skip
        if "quantity" in t.columns:
            agg["quantity"] = t.quantity.sum()
        for c in t.columns:  # other columns: the order's first line's (by date)
            if c not in agg and c != "order_id":
                agg[c] = t[c].argmin(t.order_date)
        t = g.agg(**agg)
        if count:
            counts["orders"] = int(scalar(t.count()))
    return t, counts


# ------------------------------------------- the sections beside the model (issues 28 and 31)
# What the acquisition sections (helpers.report.acquisition_views) and the survey, campaign and
# loyalty sections (helpers.report.beyond_orders) need from the orders, reduced by the engine
# to one row per customer, per event or per group: the orders are never collected. A pandas
# DataFrame runs through the same expressions on an in-memory DuckDB (section_table), so each
# computation has one definition; tests/report/test_sections_engine.py holds them equal to the
# pandas computations they replaced.
# One pass: the orders are numbered (one window) and reduced per customer once per report
# (customer_table: first and second order, first-order values, discounts, the sums by order
# number); the margins by age are summed once per (customer, age) and kept for the views that
# ask for the same customers (_monthly_margins). Both are kept per orders object (_memo).


# What the sections compute once per orders object (one report's `bought` or `orders`): the
# pandas frame's in-memory table (registered with DuckDB once, not once per reduction) and the
# one pass of numbered orders reduced per customer (customer_table). Keyed by the object's
# identity (and, for a DataFrame, its length and columns), the MEMO_SIZE most recent kept.
MEMO_SIZE = 6
_MEMO: dict[int, tuple[object, tuple, _Memo]] = {}
_MEMO_LOCK = threading.Lock()  # the kernel's thread and a prefetch's (prefetch)


class _Memo(dict):
    """One orders object's cache (:func:`_memo`). While :func:`prefetch` jobs of it run
    (``pending``), a key not in it waits until it is there or the jobs have ended: a section
    never computes beside a prefetch what the prefetch is computing, and takes each result as
    soon as it is done."""

    def __init__(self) -> None:
        super().__init__()
        self.pending = 0  # prefetch jobs queued or running
        self.pinned = False  # kept however many tables are cached since (prefetch)
        self.ready = threading.Condition()
        self.waiting: Callable[[bool], None] | None = None  # told when a section waits

    def _wait(self, key: object) -> None:
        with self.ready:
            if not self.pending or dict.__contains__(self, key):
                return
            if self.waiting is not None:  # the kernel's thread idles: DuckDB may take its core
                self.waiting(True)
            try:
                while self.pending and not dict.__contains__(self, key):
                    self.ready.wait()
            finally:
                if self.waiting is not None:
                    self.waiting(False)

    def __contains__(self, key: object) -> bool:
        if self.pending and not dict.__contains__(self, key):
            self._wait(key)
        return dict.__contains__(self, key)

    def __getitem__(self, key: object) -> Any:
        if self.pending and not dict.__contains__(self, key):
            self._wait(key)
        return dict.__getitem__(self, key)

    def get(self, key: object, default: Any = None) -> Any:
        return self[key] if key in self else default

    def add(self, done: dict) -> None:
        """A prefetch's results, those not here yet, made visible to the waiting keys."""
        with self.ready:
            for k, v in done.items():
                if not dict.__contains__(self, k):
                    dict.__setitem__(self, k, v)
            self.ready.notify_all()

    def finish(self) -> None:
        """A prefetch job has ended."""
        with self.ready:
            self.pending -= 1
            self.ready.notify_all()


def _memo(orders: ir.Table | pd.DataFrame) -> _Memo:
    """The cache of what has been computed from `orders` (this very object), created empty."""
    stamp = (len(orders), tuple(orders.columns)) if isinstance(orders, pd.DataFrame) else ()
    with _MEMO_LOCK:
        hit = _MEMO.pop(id(orders), None)
        if hit is None or hit[0] is not orders or hit[1] != stamp:
            hit = (orders, stamp, _Memo())
        _MEMO[id(orders)] = hit  # the most recent last
        # the oldest go first, a prefetched table's results last (prefetch: what the sections
        # will ask for, whatever else was computed since): only beyond MEMO_SIZE of them
        old = [k for k, v in _MEMO.items() if not v[2].pinned and k != id(orders)]
        while len(_MEMO) > MEMO_SIZE and old:
            del _MEMO[old.pop(0)]
        pinned = [k for k, v in _MEMO.items() if v[2].pinned]
        for k in pinned[: max(0, len(pinned) - MEMO_SIZE)]:
            del _MEMO[k]
    return hit[2]


def cached(key: tuple, compute: Callable[[], pd.DataFrame], orders: ir.Table) -> pd.DataFrame:
    """`compute()` kept in `orders`' cache under `key` (a :func:`prefetch` may have computed it);
    a copy returned (its ``attrs`` too), so a caller may change it."""
    memo = _memo(orders)
    if key not in memo:
        memo[key] = compute()
    return memo[key].copy()


def _rebound(expr: ir.Table, source: Any, twin: Any) -> ir.Table:
    """`expr` with every table of the backend `source` read through the backend `twin` instead
    (the same database: a DuckDB cursor of the same connection): its tables and its SQL queries
    (a DuckDB file's table is read through one, :func:`helpers.report.sources.open_table`)."""
    op = expr.op()
    swap = {t: t.copy(source=twin) for t in op.find(_SOURCED) if t.source is source}
    return op.replace(swap).to_expr() if swap else expr


#: The nodes of an expression that read from a backend (:func:`_rebound`).
_SOURCED = (ops.DatabaseTable, ops.SQLQueryResult)


def prefetch(
    orders: ir.Table | pd.DataFrame, calls: list[tuple[Callable[..., Any], tuple]]
) -> Future | None:
    """Start the engine's functions `calls` ((function, its arguments after the orders), each
    keeping its result in the orders' cache: :func:`customer_table`, :func:`period_retention`,
    :func:`cohort_table`, :func:`customer_totals`) on `orders` in a background thread, while the
    kernel's thread fits the models (Python: one core) -- the sections then find them computed.

    They run on a twin of `orders`, the same expression read through a cursor of its DuckDB
    connection (DuckDB 2 refuses a second call on a busy connection), the hand-over's customer
    codes shared, with one DuckDB thread (all of them while the kernel's thread waits for a
    result). Each result is put in `orders`' cache as soon as it is done; while the calls run,
    a section asking that cache for something not in it waits (:class:`_Memo`), so nothing is
    computed twice and every result is the one the calls would give in turn. A failure is
    dropped (the section computes it itself, and raises it there). Not on pandas orders or
    another backend (None returned): nothing to overlap."""
    if not isinstance(orders, ir.Table):
        return None
    try:
        source = orders._find_backend()
    except Exception:  # noqa: BLE001 (several backends, or none)
        return None
    if getattr(source, "name", "") != "duckdb":
        return None
    try:
        twin = ibis.duckdb.from_connection(source.con.cursor())
        # Ibis keeps one node per equal arguments and compares backends by their connection's
        # arguments (none here): without an identity of its own, the twin's tables would be
        # those of an earlier twin (a closed cursor)
        twin.__dict__["db_identity"] = f"retention-lab-prefetch-{next(_TWINS)}"
        copy = _rebound(orders, source, twin)
        if copy is orders:  # nothing read through the twin: it would wait on its own results
            twin.con.close()
            return None
        for visible, codes in list(_CODED.items()):  # the twin's codes: the same ids
            if not orders.op().find(lambda n, v=visible: n is v):
                continue
            twin_codes = CustomerCodes(*(
                _rebound(x.to_expr(), source, twin) for x in (codes.visible, codes.coded)
            ), _rebound(codes.customers, source, twin))  # fmt: skip
            twin_codes._ids = codes.ids  # read here, once
            _CODED[twin_codes.visible] = twin_codes
    except Exception:  # noqa: BLE001 (no twin: the sections compute it all in turn)
        return None
    memo = _memo(orders)
    memo.pinned = True  # before the twin's cache is made: that one must not push it out
    known = _memo(copy)
    known.pinned = True
    known.update(memo)  # what is known already (the amounts' scale)
    with memo.ready:
        memo.pending += 1
    # one DuckDB thread while prefetches run: the kernel's thread keeps the other core; all of
    # DuckDB's while the kernel's thread waits for a result (_Memo.waiting)
    with _MEMO_LOCK:
        if not _THREADS:
            _THREADS.append(twin.con.execute("SELECT current_setting('threads')").fetchall()[0][0])
            twin.con.execute("SET threads = 1")
        _THREADS.append(None)

    def waiting(idle: bool) -> None:
        with _MEMO_LOCK:
            if len(_THREADS) > 1:  # prefetches still run (else the threads are back already)
                with contextlib.suppress(Exception):  # only the speed is at stake
                    source.con.execute(f"SET threads = {int(_THREADS[0]) if idle else 1}")

    memo.waiting = waiting

    def run() -> None:
        try:
            for fn, args in calls:  # each result visible as soon as it is done
                fn(copy, *args)
                memo.add(known)
        finally:
            memo.finish()
            with _MEMO_LOCK:
                _THREADS.pop()
                if len(_THREADS) == 1:  # the last one: DuckDB's threads as they were
                    with contextlib.suppress(Exception):  # a connection closed meanwhile
                        twin.con.execute(f"SET threads = {int(_THREADS[0])}")
                    _THREADS.pop()
                for key in [k for k, c in _CODED.items() if c.coded.find(
                        lambda n: isinstance(n, _SOURCED) and n.source is twin)]:  # fmt: skip
                    _CODED.pop(key, None)
            forget(copy)
            with contextlib.suppress(Exception):
                twin.con.close()

    return _PREFETCH.submit(run)


_PREFETCH = ThreadPoolExecutor(1, thread_name_prefix="retention-lab-prefetch")
_TWINS = itertools.count()  # the twins' identities (prefetch)
_THREADS: list = []  # DuckDB's threads before the prefetches, then one entry per running one


def release(orders: ir.Table | pd.DataFrame, name: str) -> None:
    """Drop `orders`' kept results of the engine function `name` (:func:`_kept_per_table`,
    e.g. ``"customer_totals"``) once their one reader has its copy: kept, they would stay for
    the rest of the run (each customer's net revenue at 8.4M customers: 137 MB). A later call
    computes them again."""
    memo = _memo(orders)
    with memo.ready:
        for key in [k for k in dict.keys(memo) if isinstance(k, tuple) and k[:1] == (name,)]:
            dict.pop(memo, key, None)


def forget(orders: ir.Table | pd.DataFrame | None = None) -> None:
    """Drop what was computed from `orders` (all objects when None): needed only when a
    DataFrame's values are changed in place after a section used it."""
    with _MEMO_LOCK:
        if orders is None:
            _MEMO.clear()
        else:
            _MEMO.pop(id(orders), None)


def section_table(orders: ir.Table | pd.DataFrame, columns: list[str] | None = None) -> ir.Table:
    """An Ibis table of `orders` (an Ibis table as it is; a pandas DataFrame as an in-memory
    DuckDB table, made and registered once per DataFrame) of its `columns` (default all) with
    ``customer_id`` as text (the ids the sections index by: ``seg.index.astype(str)``)."""
    if isinstance(orders, ir.Table):
        t = orders if columns is None else orders.select(columns)
        return t.mutate(customer_id=t.customer_id.cast("string"))
    return _section(orders, columns)[0]


def _side_table(t: ir.Table, frame: pd.DataFrame) -> ir.Table:
    """`frame` (a few columns per customer or event, computed in pandas) as a table to join with
    the engine's table `t`: :func:`ibis.memtable`, except on PostgreSQL, where it is a temporary
    table of the session, filled by ``COPY`` a batch at a time, whose statistics are taken
    (``ANALYZE``) before the join. Ibis's own
    temporary table for a memtable has none, and PostgreSQL then planned the 10M orders' join
    with 633k sampled customers as a merge join of two sorts where a hash join serves (the two
    margin queries of the 10M-row report 25.1 and 11.0 s, with statistics 13.5 and 5.9 s;
    benchmarks/README.md)."""
    import uuid

    try:
        backend = t._find_backend()
    except Exception:  # noqa: BLE001 (no single backend: Ibis decides, as before)
        backend = None
    if getattr(backend, "name", None) != "postgres":
        return ibis.memtable(frame)
    name = f"retention_lab_side_{uuid.uuid4().hex}"
    # the table made empty and filled by COPY, FETCH_ROWS rows at a time, with the values Ibis
    # would insert (its memtable's Arrow table): Ibis's create_table inserted every row as a
    # Python dict at once, into a table it then copied (at 842k customers the attributes'
    # section's join 23-30 s and 466 MB of Python objects; benchmarks/README.md, 2026-12-07)
    mem = ibis.memtable(frame.reset_index(drop=True))
    schema = mem.schema()
    rows = mem.op().data.to_pyarrow(schema)
    side = backend.create_table(name, schema=schema, temp=True)
    cols = ", ".join('"' + c.replace('"', '""') + '"' for c in schema.names)
    with backend.begin() as cur, cur.copy(f'COPY "{name}" ({cols}) FROM STDIN') as copy:
        for batch in rows.to_batches(FETCH_ROWS):
            for row in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                copy.write_row(row)
    backend.raw_sql(f'ANALYZE "{name}"').close()
    return side


def _section(
    orders: ir.Table | pd.DataFrame, columns: list[str] | None = None
) -> tuple[ir.Table, CustomerCodes | None]:
    """:func:`section_table` as the engine's functions take it: on a coded hand-over with
    ``customer_id`` the integer code, and the codes (:func:`_coded`; their results are decoded,
    the ids they are given encoded); otherwise the text table and None."""
    if isinstance(orders, ir.Table):
        coded, codes = _coded(orders)
        if codes is None:
            return section_table(orders, columns), None
        return (coded if columns is None else coded.select(columns)), codes
    memo = _memo(orders)
    if "table" not in memo:
        df = orders.assign(customer_id=orders["customer_id"].astype(str).to_numpy(object))
        for c in df.columns:  # categories (the customer ids, an attribute) as plain text
            if isinstance(df[c].dtype, pd.CategoricalDtype):
                df[c] = df[c].astype(str).to_numpy(object)
        t = ibis.memtable(df.reset_index(drop=True))
        memo["table"] = t.mutate(customer_id=t.customer_id.cast("string"))
    t = memo["table"]
    return (t if columns is None else t.select(columns)), None


def _order_keys(t: ir.Table) -> list[ir.Value]:
    """A customer's orders in time; orders at the same instant (a file written to the minute
    has many) by ``order_id`` when there is one, else by amount: a deterministic order where a
    DataFrame's row order is not kept, and the file's order where its ids rise with it (as the
    sections' pandas code took them). An ``order_id`` is unique in the validated orders (the
    readers refuse a repeated one; order lines are summed into orders), so it alone breaks the
    ties: amount as a third key changed no number and made the window's sort a third slower."""
    return [t.order_date, t.order_id if "order_id" in t.columns else t.amount]


def numbered_orders(
    orders: ir.Table | pd.DataFrame, as_of: str | pd.Timestamp | None = None
) -> ir.Table:
    """The orders (up to the end of the as-of day when `as_of` is given) with ``number`` (1 =
    the customer's first, in time: :func:`_order_keys`), as an expression (nothing is
    computed)."""
    return _numbered(section_table(orders), as_of)


def _numbered(t: ir.Table, as_of: str | pd.Timestamp | None = None) -> ir.Table:
    """:func:`numbered_orders` of the section's table `t` (text ids or codes)."""
    if as_of is not None:
        t = _up_to(t, as_of, "order_date")
    by = ibis.window(group_by="customer_id", order_by=_order_keys(t))
    return t.mutate(number=ibis.row_number().over(by) + 1)


def _flag(condition: ir.BooleanValue, dtype: str) -> ir.NumericValue:
    """A boolean as 1/0 of `dtype`, by CASE WHEN: PostgreSQL casts a boolean to int4 only (not to
    bigint, smallint or double), so a plain cast fails in the warehouse."""
    return condition.ifelse(1, 0).cast(dtype)


TOP_NUMBER = 5  # order numbers from this one on are pooled (value_by_number's rows)

#: What a window over the orders holds per row in DuckDB: the one pass's (customer code, time,
#: order id, amount, the first-order columns) took 3.9-4.2 GB at 100M orders (benchmarks/README.md).
WINDOW_BYTES_PER_ROW = 48
_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
          "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}  # fmt: skip


def _memory_limit_bytes(con: Any) -> int | None:
    """DuckDB's memory limit of the connection `con` in bytes (its setting, e.g. '4.4 GiB')."""
    try:
        number, unit = (
            con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0].split()
        )
        return int(float(number) * _UNITS[unit])
    except Exception:  # noqa: BLE001 (no such setting, or a form not known here: one query)
        return None


def customer_ranges(t: ir.Table, codes: CustomerCodes | None) -> list[tuple[Any, Any] | None]:
    """Ranges [lo, hi) of customers that split a per-customer query over `t` into queries whose
    window fits in DuckDB's memory limit: k = ceil(rows x :data:`WINDOW_BYTES_PER_ROW` / limit)
    ranges. On a coded hand-over (``customer_id`` the code) k ranges of codes of equal width; on
    text ids or a warehouse's own ids (`codes` None: a DuckDB database file's table) k ranges of
    the ids by their quantiles in a sample of the orders (:func:`_id_bounds`), the first open
    below (lo None), the last open above (hi None) and holding a missing id. A customer's orders
    are all in one range, so each query gives its customers' rows as the whole query would, and
    the ranges' results, in order, are its rows sorted by ``customer_id`` (DuckDB compares text
    byte by byte, which for UTF-8 is Python's order of code points -- a table's collated or ENUM
    column is read as such text, :func:`helpers.report.sources.open_table`; a missing id sorts
    last). At
    100M orders under a 1.5 GB limit the one pass took 48.8 s in 4 ranges (44.4 s in 8), 67.5 s
    in one query (spilling to disk); 47.1 s in one under 4.7 GB (one DuckDB thread;
    benchmarks/README.md). ``[None]`` (one query): another backend than DuckDB (its memory is the
    server's), or a window that fits."""
    try:
        backend = t._find_backend()
    except Exception:  # noqa: BLE001 (no single backend)
        return [None]
    limit = _memory_limit_bytes(backend.con) if getattr(backend, "name", "") == "duckdb" else None
    if not limit:
        return [None]
    rows = int((t if codes is None else codes.coded.to_expr()).count().to_pyarrow().as_py())
    k = -(-rows * WINDOW_BYTES_PER_ROW // limit)
    if k <= 1:
        return [None]
    if codes is None:
        bounds = _id_bounds(t, k, rows)
        return [None] if not bounds else list(itertools.pairwise([None, *bounds, None]))
    n = int(codes.customers.count().to_pyarrow().as_py())
    k = min(k, max(n, 1))
    return [(n * i // k, n * (i + 1) // k) for i in range(k)]


#: Orders sampled to place the bounds of :func:`customer_ranges` on ids that are not codes.
RANGE_SAMPLE = 200_000


def _id_bounds(t: ir.Table, k: int, rows: int) -> list[Any]:
    """The k - 1 inner bounds, increasing and distinct, that cut the ids of `t` (``rows``
    orders) into k ranges of about as many orders: the k-quantiles of ``customer_id`` over about
    :data:`RANGE_SAMPLE` orders drawn by the engine (Bernoulli, a fixed seed: one scan, nothing
    per order returned beyond the sample). Where the ranges fall changes no result, only how
    the work is cut (:func:`customer_ranges`)."""
    ids = t.select("customer_id").filter(lambda s: s.customer_id.notnull())
    if rows > RANGE_SAMPLE:
        ids = ids.sample(RANGE_SAMPLE / rows, seed=20261206)
    sample = ids.customer_id.to_pyarrow()
    if len(sample) == 0:
        return []
    values = np.sort(np.asarray(sample.to_numpy(zero_copy_only=False), dtype=object))
    cuts = values[(len(values) * np.arange(1, k)) // k]
    return [v for i, v in enumerate(cuts) if i == 0 or v != cuts[i - 1]]


def _codes_in(t: ir.Table, codes_in: tuple[Any, Any] | None) -> ir.Table:
    """`t` of the customers whose ``customer_id`` is in [lo, hi) of `codes_in` (a range of
    :func:`customer_ranges`: codes, or ids with lo None for no lower bound and hi None for none
    above, that last range also holding a missing id); all of `t` for None."""
    if codes_in is None:
        return t
    lo, hi = codes_in
    c = t.customer_id
    if hi is None:
        return t.filter((c >= lo) | c.isnull())
    return t.filter(c < hi) if lo is None else t.filter((c >= lo) & (c < hi))


def _in_range(ids: pd.Series, codes_in: tuple[Any, Any]) -> np.ndarray:
    """Which of `ids` (codes, or ids as :func:`_codes_in` compares them) are in the range
    `codes_in` of :func:`customer_ranges`, as :func:`_codes_in` selects them in the engine."""
    lo, hi = codes_in
    keep = np.ones(len(ids), dtype=bool)
    if lo is not None:
        keep &= (ids >= lo).to_numpy(bool)
    if hi is not None:
        keep &= (ids < hi).to_numpy(bool)
    elif lo is not None:
        keep |= ids.isna().to_numpy(bool)
    return keep


_ORDER_KEYS = ("customer_id", "order_date", "order_id", "amount")  # not first-order attributes


def _customers_of_numbered(
    orders: ir.Table | pd.DataFrame, top: int, codes_in: tuple[int, int] | None = None
) -> tuple[ir.Table, CustomerCodes | None]:
    """The one pass: the orders numbered once (:func:`numbered_orders`, one window) and reduced
    to one row per customer (sorted by ``customer_id``, the code on a coded hand-over: the codes
    returned beside, :func:`_section`): ``_first`` and ``_second`` (the times of
    orders 1 and 2), ``_orders`` (their count), for each n = 1..`top` ``_s{n}`` and ``_q{n}``
    (sum of amount and of amount^2 over the orders numbered n, the last pooling n >= `top`);
    with a ``discount`` column ``_used`` (orders with discount > 0; a missing one is 0),
    ``_discount`` (its sum) and ``_first_used``; and every other column's value on the first
    order (a boolean through 0/1: the max of one value). With `codes_in` (lo, hi) the customers
    whose code is in [lo, hi) only (:func:`customer_ranges`). Backend-neutral Ibis."""
    t, codes = _section(orders)
    t = _numbered(_codes_in(t, codes_in))
    one = t.number == 1
    n = ibis.least(t.number, top)
    a = t.amount.cast("float64")
    scale = money_scale(orders)  # exact sums (exact_sum): the same in every run
    sq = None if scale is None else 2 * scale
    agg = {"_first": t.order_date.min(), "_second": t.order_date.max(where=t.number == 2),
           "_orders": t.count()}  # fmt: skip
    for k in range(1, top + 1):
        agg[f"_s{k}"] = exact_sum(a, scale, where=n == k)
        agg[f"_q{k}"] = exact_sum(a * a, sq, where=n == k, wide=True)
    if "discount" in t.columns:
        d = t.discount.cast("float64").fill_null(0.0)
        used = _flag(d > 0, "int64")
        agg |= {"_used": used.sum(), "_discount": d.sum(), "_first_used": used.max(where=one)}
    for c in t.columns:
        if c not in _ORDER_KEYS and c != "number":
            agg[c] = (_flag(t[c], "int8") if t[c].type().is_boolean() else t[c]).max(where=one)
    return t.group_by("customer_id").agg(**agg).order_by("customer_id"), codes


def customer_table(orders: ir.Table | pd.DataFrame, top: int = TOP_NUMBER) -> pd.DataFrame:
    """Per customer (index ``customer_id``, text, sorted), from ONE pass over the orders
    (:func:`_customers_of_numbered`: one window, one query; on a coded hand-over too large for
    DuckDB's memory one per range of customers, :func:`customer_ranges`), computed once per
    orders object (:func:`_memo`) and reused by every section (:func:`first_orders`,
    :func:`value_by_number`, :func:`customer_discounts`, and through them the second orders,
    the first-order attributes and the covariate model's): ``first``, ``second`` (NaT without
    one), ``orders``, the sums ``_s{n}``/``_q{n}``, the discount columns when mapped and each
    other column's value on the first order (text as categories, booleans as pandas booleans):
    a few numbers and codes per customer, nothing per order."""
    memo = _memo(orders)
    key = ("customers", top)
    if key not in memo:
        t, codes = _section(orders)
        flags = [c for c, ty in t.schema().items()
                 if ty.is_boolean() and c not in _ORDER_KEYS]  # fmt: skip
        # in ranges of customers when one window would not fit DuckDB's memory (the same rows)
        at = pa.concat_tables([to_arrow(_customers_of_numbered(orders, top, r)[0])
                               for r in customer_ranges(t, codes)])  # fmt: skip
        text = (pa.types.is_string, pa.types.is_large_string)
        names = {"_first": "first", "_second": "second", "_orders": "orders"}
        sums = [f"_{x}{k}" for k in range(1, top + 1) for x in "sq"]
        # the sums per customer give value_by_number's table and go: read from Arrow a column at
        # a time (not gathered into a frame of them all: at 8.4M customers 0.7 GB, twice); the
        # attributes' text as categories (a code per customer); renamed in Arrow, not in pandas
        counts = at["_orders"].to_numpy().astype(np.int64)
        memo[("by_number", top)] = _by_number(
            counts, lambda c: np.asarray(at[c].to_numpy(), dtype=float), top
        )
        at = pa.table({
            names.get(name, name): col.dictionary_encode()
            if name != "customer_id" and any(f(col.type) for f in text) else col
            for name, col in zip(at.column_names, at.columns, strict=True) if name not in sums
        })  # fmt: skip
        df = at.to_pandas()
        for c in ("first", "second"):
            df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
        for c in flags:
            df[c] = df[c].astype("Int8").astype("boolean")
        df["orders"] = counts
        df["customer_id"] = _decode(codes, df["customer_id"])  # the text ids, in the same order
        df.set_index("customer_id", inplace=True)  # noqa: PD002 (in place: no copy of every column)
        memo[key] = df
    return memo[key]


def first_orders(
    orders: ir.Table | pd.DataFrame,
    as_of: str | pd.Timestamp | None = None,
    columns: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Per customer (index ``customer_id``, text, sorted): ``first`` and ``second`` (the times of
    the first and second orders, :func:`numbered_orders`; NaT without a second) and the first
    order's value of each of `columns` (at the same instant: the smallest ``order_id``), over
    the orders up to the end of the as-of day when `as_of` is given. From the one pass
    (:func:`customer_table`): the orders after the as-of day come after every earlier order in
    the numbering, so dropping them drops the customers whose first order is later and the
    second orders that are later, and changes no other number."""
    ct, cols = customer_table(orders), ["first", "second", *columns]
    if as_of is None:
        return ct[cols].copy()
    # one copy of the rows kept (a take), the later second orders then dropped in it: the
    # selection, the filter, assign and a last copy were four (at 8.4M customers 135 MB each)
    end = periods.as_of_end(as_of)
    df = ct.loc[(ct["first"] < end).to_numpy(), cols].copy(deep=False)  # no chained-assignment flag
    df["second"] = df["second"].where(df["second"] < end)
    return df


def _number_sums(
    counts: np.ndarray, column: Callable[[str], np.ndarray], keep: np.ndarray, top: int
) -> pd.DataFrame:
    """Over the customers `keep` of :func:`customer_table` (their orders `counts`, their sums
    ``_s{n}``, ``_q{n}`` given one at a time by `column`): per order number n = 1..`top` the
    count N, the sum S and the sum of squares Q of the orders' amounts (n = `top`: all later)."""
    cnt = counts[keep]
    n = np.arange(1, top + 1)
    N = (cnt[:, None] >= n[None, :]).sum(axis=0)
    N[-1] = np.clip(cnt - top + 1, 0, None).sum()
    S = np.array([np.nansum(column(f"_s{k}")[keep]) for k in n])
    Q = np.array([np.nansum(column(f"_q{k}")[keep]) for k in n])
    return pd.DataFrame({"N": N, "S": S, "Q": Q}, index=pd.Index(n, name="n"))


def value_by_number(orders: ir.Table | pd.DataFrame, top: int = TOP_NUMBER) -> pd.DataFrame:
    """Order amounts by order number n = min(number, `top`) (:func:`numbered_orders`): per n
    ``orders``, ``mean`` and ``std`` (sample, ddof 1) of all orders, and ``same_customers`` and
    ``mean_same`` of the orders of customers with at least three (n <= 3). Index: n.
    From the one pass's per-customer sums (:func:`customer_table`): N = orders numbered n,
    mean = S / N, std = sqrt((Q - S^2 / N) / (N - 1)) (NaN for N < 2)."""
    customer_table(orders, top)  # the one pass, once
    return _memo(orders)[("by_number", top)].copy()


def _by_number(counts: np.ndarray, column: Callable[[str], np.ndarray], top: int) -> pd.DataFrame:
    """:func:`value_by_number` from the one pass's customers: their orders `counts` and their
    sums ``_s{n}``, ``_q{n}`` (`column`, :func:`_number_sums`)."""
    every = _number_sums(counts, column, np.ones(len(counts), bool), top)
    every = every[every["N"] > 0]
    N = every["N"].to_numpy(float)
    mean = every["S"].to_numpy() / N
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.clip(every["Q"].to_numpy() - N * mean**2, 0, None) / (N - 1)
    std = np.where(N > 1, np.sqrt(var), np.nan)
    df = pd.DataFrame({"orders": every["N"].astype(np.int64), "mean": mean, "std": std},
                      index=every.index)  # fmt: skip
    same = _number_sums(counts, column, counts >= 3, top)
    same = same[(same["N"] > 0) & (same.index <= 3)]
    return df.join(pd.DataFrame({"same_customers": same["N"], "mean_same": same["S"] / same["N"]}))


def customer_discounts(orders: ir.Table | pd.DataFrame) -> pd.DataFrame:
    """Per customer (index ``customer_id``, text, sorted): ``orders``, ``used`` (orders with
    a discount > 0), ``discount`` (their sum; a missing discount is 0) and ``first`` (the first
    order, :func:`numbered_orders`, used one). From the one pass (:func:`customer_table`)."""
    ct = customer_table(orders)
    if "_used" not in ct:
        raise KeyError("the orders have no discount column")
    df = ct[["orders", "_used", "_discount", "_first_used"]]
    df = df.set_axis(["orders", "used", "discount", "first"], axis=1)
    return df.astype({"orders": np.int64, "used": np.int64, "first": bool})


class MarginCells:
    """Customers x ages 0..`top` of margins (:func:`_monthly_margins`), held as the cells the
    engine returns -- one per customer and age with an order -- in ``chunks`` of at most
    :data:`CELL_CHUNK` cells, each grouped by age: (``ptr``, customer positions int32, margins
    float64), age k's cells at ``ptr[k]:ptr[k + 1]``; each (customer, age) at most once, every
    other cell 0. A customer has an order in about 4 of the 12 months of the 12-month margin and
    5 of the LTV curves' 36 (the 10M CSV): 12 bytes a cell instead of 8 bytes for every customer
    and age (at 8.4M customers about 0.4 GB instead of 0.8 GB kept for the sections).
    Beyond :data:`SPILL_BYTES` the cells are kept on disk (:func:`_monthly_margins` writes them
    there range by range; :meth:`spilled` for cells already in memory), read through a memory
    map while a sum is taken. Read-only."""

    def __init__(self, n: int, top: int, chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                 spill: _Spill | None = None):  # fmt: skip
        self.n, self.top, self.chunks = n, top, chunks
        self.shape = (n, top + 1)
        self._spill = spill

    @classmethod
    def from_cells(cls, n: int, top: int, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
                   ) -> MarginCells:  # fmt: skip
        """The cells (customer positions, ages 0..`top`, margins) of `parts`, in any order,
        grouped by age :data:`CELL_CHUNK` cells at a time (a stable sort of each chunk's ages:
        its temporaries are one chunk's)."""
        chunks = []
        for rows, ages, v in parts:
            for lo in range(0, len(rows), CELL_CHUNK):
                a = ages[lo : lo + CELL_CHUNK]
                order = np.argsort(a, kind="stable")
                ptr = np.zeros(top + 2, dtype=np.int64)
                np.cumsum(np.bincount(a, minlength=top + 1)[: top + 1], out=ptr[1:])
                r = rows[lo : lo + CELL_CHUNK][order].astype(np.int32, copy=False)
                x = v[lo : lo + CELL_CHUNK][order]
                r.flags.writeable = x.flags.writeable = False
                chunks.append((ptr, r, x))
        return cls(n, top, chunks)

    @property
    def nbytes(self) -> int:
        """The cells' bytes (in memory, or on disk when spilled)."""
        return self._spill.nbytes if self._spill is not None else _cells_bytes(self.chunks)

    def spilled(self, folder: str | Path | None = None) -> MarginCells:
        """The same cells kept in two files (customer positions, margins) of a new folder in
        `folder` (default: :data:`helpers.report.handover.SCRATCH_ENV`'s, else the system's
        temporary folder), removed once no :class:`MarginCells` reads it. Each sum maps the
        files while it runs and unmaps them after: the cells are read from the system's file
        cache, not held in the process (at 100M orders about 0.4 GB that stayed resident from
        the fits to the acquisition costs, across the report's peak). The same floats."""
        if self._spill is not None:
            return self
        return MarginCells(self.n, self.top, [], _Spill.write(self.chunks, folder))

    @contextlib.contextmanager
    def _cells(self) -> Any:
        """The chunks, from memory or through a memory map of the spilled files (unmapped when
        the block ends and its arrays are dropped)."""
        if self._spill is None:
            yield self.chunks
            return
        with self._spill.mapped() as chunks:
            yield chunks

    def upto(self, top: int) -> MarginCells:
        """The ages 0..`top` (<= this one's): the same arrays, no copy."""
        return MarginCells(self.n, top, self.chunks, self._spill)

    def add_age(self, acc: np.ndarray, k: int) -> None:
        """``acc += m[:, k]`` of the dense table, in place: the same floats (adding 0 to a
        float leaves it as it is; a customer's cell of one age is added once)."""
        if not 0 <= k <= self.top:
            raise IndexError(f"age {k} not in 0..{self.top}")
        with self._cells() as chunks:
            for ptr, rows, v in chunks:
                acc[rows[ptr[k] : ptr[k + 1]]] += v[ptr[k] : ptr[k + 1]]

    def column(self, k: int) -> np.ndarray:
        """``m[:, k]`` of the dense table (a new array)."""
        out = np.zeros(self.n)
        self.add_age(out, k)
        return out

    def toarray(self) -> np.ndarray:
        """The dense customers x ages table (for tests)."""
        out = np.zeros(self.shape)
        with self._cells() as chunks:
            for k in range(self.top + 1):
                for ptr, rows, v in chunks:
                    out[rows[ptr[k] : ptr[k + 1]], k] = v[ptr[k] : ptr[k + 1]]
        return out


def _cells_bytes(chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> int:
    """The bytes of :class:`MarginCells` chunks' positions and margins."""
    return sum(r.nbytes + x.nbytes for _, r, x in chunks)


class _Spill:
    """The files of a spilled :class:`MarginCells`: every chunk's customer positions (int32) and
    margins (float64) one after the other, each chunk's ``ptr`` and place kept in memory; the
    folder removed when this object is collected (every :class:`MarginCells` on it gone) or at
    exit. Written a chunk at a time (:meth:`add`, then :meth:`done`)."""

    def __init__(self, folder: str | Path | None = None):
        import shutil
        import weakref

        self.folder = scratch_folder("retention-lab-margins-", folder)
        weakref.finalize(self, shutil.rmtree, self.folder, ignore_errors=True)
        self.index: list[tuple[np.ndarray, int, int]] = []
        self.cells = 0
        self._files: tuple[Any, Any] | None = (
            open(self.folder / "rows", "wb"),  # noqa: SIM115 (closed by done)
            open(self.folder / "values", "wb"),  # noqa: SIM115
        )

    @property
    def nbytes(self) -> int:
        return self.cells * 12

    @classmethod
    def write(cls, chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
              folder: str | Path | None) -> _Spill:  # fmt: skip
        """`chunks` written to a new spill, done."""
        spill = cls(folder)
        spill.add(chunks)
        return spill.done()

    def add(self, chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """Append `chunks` (ptr, positions, margins) to the files."""
        assert self._files is not None, "the spill is done"
        fr, fv = self._files
        for ptr, r, x in chunks:
            np.ascontiguousarray(r, dtype=np.int32).tofile(fr)
            np.ascontiguousarray(x, dtype=np.float64).tofile(fv)
            self.index.append((ptr, self.cells, self.cells + len(r)))
            self.cells += len(r)

    def done(self) -> _Spill:
        """The files closed: ready to be read (:meth:`mapped`)."""
        if self._files is not None:
            for f in self._files:
                f.close()
            self._files = None
        return self

    @contextlib.contextmanager
    def mapped(self) -> Any:
        """The chunks as (ptr, positions, margins), the arrays views of a read-only memory map."""
        if not self.cells:
            yield [(ptr, np.zeros(0, np.int32), np.zeros(0)) for ptr, _, _ in self.index]
            return
        # unmapped when the last array on them goes (the caller's, at the end of its sum)
        rows = np.memmap(self.folder / "rows", dtype=np.int32, mode="r", shape=(self.cells,))
        values = np.memmap(self.folder / "values", dtype=np.float64, mode="r", shape=(self.cells,))
        yield [(ptr, rows[lo:hi], values[lo:hi]) for ptr, lo, hi in self.index]


#: A :class:`MarginCells` of more bytes than this is kept on disk, written range by range as the
#: engine returns them (:func:`_monthly_margins`, :class:`_Spill`): at 10M orders the 12
#: months' cells are about 40 MB and stay in memory.
SPILL_BYTES = 128 << 20


#: Cells of :class:`MarginCells` grouped by age at a time (12 MB of cells; the sort's
#: temporaries about as much).
CELL_CHUNK = 1 << 20


def _monthly_margins(
    orders: ir.Table | pd.DataFrame,
    starts: pd.DataFrame,
    last: int,
    top: int,
    margin_rate: float,
    cost_per_order: float,
) -> MarginCells:
    """Customers (the rows of `starts`, in order) x ages 0..`top`: each customer's margin
    sum of m x amount - c over the orders of that age, 0 where none, as :class:`MarginCells`.
    The engine sums each (customer, age) once; those cells come back (customer's row, age,
    margin: narrow integers and a float, as Arrow) and are kept as cells, grouped by age (a
    second group-by pivoting them in the engine took half as long again; a dense customers x
    ages table held 8 bytes for every customer and age). A list of (age, margin) structs per
    customer (Ibis ``collect``) was twice as fast on DuckDB, but PostgreSQL's composite arrays
    do not come back through Arrow: plain sums run everywhere.

    Kept per orders object (:func:`_memo`) for one `last` and economics: a later call for the
    same customers (in the same order, with the same first months) and no more ages is answered
    from it (the 12-month margin of the attributes' section and the payback curves of the costs'
    section ask for the same customers and ages; on small data the LTV curves, which then take
    every customer, answer both). Read-only: callers take sums into new arrays."""
    memo = _memo(orders)
    ids = starts["customer_id"].to_numpy(object)
    fm = starts["first_month"].to_numpy(np.int64)
    # one entry per set of customers (the LTV curves' sample, every customer's 12 months), named
    # by its size and ends, so a section waits for the one a prefetch is computing (_Memo)
    ends = (ids[0], ids[-1]) if len(ids) else None
    key = ("margins", int(last), float(margin_rate), float(cost_per_order), len(ids), ends)
    hit = memo.get(key)
    who = _customers_key(ids, fm)
    if hit is not None and hit["top"] >= top and _same_customers(hit["who"], who):
        return hit["m"].upto(top)  # the same customers in the same order (no index, no copy)
    # each order's margin m x amount - c (``v``) and age in calendar months from its customer's
    # first month, for ages 0..top observed by `last` (first month + age <= last)
    t, codes = _section(orders, ["customer_id", "order_date", "amount"])
    s = starts.reset_index(drop=True).assign(_i=np.arange(len(starts), dtype=np.int32))
    s["customer_id"] = _encode(codes, s["customer_id"].to_numpy(object))
    scale = money_scale(orders)
    chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    spill: _Spill | None = None  # beyond SPILL_BYTES, each range's cells go to disk as they come
    # in ranges of customers when the join and its group-by would not fit DuckDB's memory: each
    # cell is one customer's, so the same cells come back (customer_ranges)
    for r in customer_ranges(t, codes):
        part = s if r is None else s[_in_range(s["customer_id"], r)]
        on = _codes_in(t, r)
        if part.empty and r is not None:
            continue
        j = on.join(_side_table(on, part), "customer_id")
        j = j.mutate(age=period_code(j.order_date, "M") - j.first_month)
        j = j.filter((j.age >= 0) & (j.age <= top) & (j.first_month + j.age <= last))
        # the cells come back as they are (three narrow columns, Arrow) and are kept so: no
        # second group-by pivoting them in the engine. A cell's margin sum(m a - c) =
        # m sum(a) - c n, the amounts' sum exact (exact_sum): the same every run
        cells = j.group_by(["_i", "age"]).agg(a=exact_sum(j.amount, scale), n=j.count())
        v = margin_rate * cells.a - cost_per_order * cells.n.cast("float64")
        cells = to_arrow(cells.select(cells._i, age=cells.age.cast("int16"), v=v))
        col = [cells[c].to_numpy() for c in ("_i", "age", "v")]
        if np.isnan(col[2]).any():
            col[2] = np.nan_to_num(col[2], nan=0.0)
        chunks += MarginCells.from_cells(len(s), top, [col]).chunks  # grouped by age
        del cells, col
        if spill is None and _cells_bytes(chunks) > SPILL_BYTES:
            spill = _Spill()
        if spill is not None:
            spill.add(chunks)
            chunks = []
    out = MarginCells(len(s), top, chunks, spill.done() if spill is not None else None)
    memo[key] = {"who": who, "top": top, "m": out}
    return out


def _customers_key(ids: np.ndarray, first_month: np.ndarray) -> tuple:
    """What the margins' cache (:func:`_monthly_margins`) compares a later call's customers
    with: a digest (BLAKE2b, 32 bytes) of the ids joined by the unit separator U+001F and of
    their first months, instead of the two arrays (16 bytes a customer: at 8.4M customers
    135 MB kept for the rest of the run; the digest takes 0.4 s there). The joined text stands
    for the ids one to one when no id holds the separator (its count is the ids' less one);
    otherwise, or for ids that are not text, the arrays themselves."""
    fm = np.ascontiguousarray(first_month, dtype=np.int64)
    try:
        text = "\x1f".join(ids).encode("utf-8", "surrogatepass")
    except TypeError:  # not all text
        return ("arrays", ids, fm)
    if text.count(b"\x1f") != max(len(ids) - 1, 0):  # an id holds the separator
        return ("arrays", ids, fm)
    digest = hashlib.blake2b(text, digest_size=32)
    digest.update(fm.data)
    return ("digest", len(ids), digest.digest())


def _same_customers(a: tuple, b: tuple) -> bool:
    """Whether two :func:`_customers_key` stand for the same customers in the same order."""
    if a[0] != b[0]:
        return False
    if a[0] == "digest":
        return a == b
    return np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])


def _running_sums(m: np.ndarray | MarginCells, ages: list[int]) -> np.ndarray:
    """``np.cumsum(m, axis=1)[:, ages]``, the same sums in the same order (column by column,
    left to right), holding only the columns asked for: at 842k customers the 12-month margin
    is one column where the cumulative table and its copy were 12 each (162 MB). `m` a dense
    table or :class:`MarginCells` (the same floats: their absent cells add 0)."""
    out = np.empty((m.shape[0], len(ages)))
    wanted: dict[int, list[int]] = {}
    for i, a in enumerate(ages):
        wanted.setdefault(int(a), []).append(i)
    acc = m.column(0) if isinstance(m, MarginCells) else m[:, 0].copy()
    for j in range(max(ages) + 1):
        if j:
            if isinstance(m, MarginCells):
                m.add_age(acc, j)
            else:
                acc += m[:, j]
        for i in wanted.get(j, ()):
            out[:, i] = acc
    return out


def cumulative_margin(
    orders: ir.Table | pd.DataFrame,
    first_month: pd.Series,
    last: int,
    ages: list[int],
    margin_rate: float,
    cost_per_order: float,
) -> pd.DataFrame:
    """Customers (`first_month`: customer_id -> month code of the first order, index as text) x
    `ages`: each customer's cumulative margin sum_{j <= k} sum of m x amount - c over the orders
    of age j (calendar months from the first month), NaN past the customer's observed age
    (first month + k > `last`, the last complete month). The engine returns one row per
    customer with its margin per age (:func:`_monthly_margins`), summed here over the ages;
    customers without an order in range: 0."""
    ids = first_month.index.astype(str)
    starts = pd.DataFrame({"customer_id": ids.to_numpy(object),
                           "first_month": first_month.to_numpy(np.int64)})  # fmt: skip
    seen = starts["first_month"].to_numpy() <= last  # the others: no age observed (all NaN)
    cum = np.zeros((len(starts), len(ages)))
    if seen.any():
        m = _monthly_margins(orders, starts[seen], last, max(ages), margin_rate, cost_per_order)
        cum[seen] = _running_sums(m, ages)
    observed = last - starts["first_month"].to_numpy()
    cum[np.asarray(ages)[None, :] > observed[:, None]] = np.nan
    return pd.DataFrame(cum, index=ids.rename("customer_id"), columns=pd.Index(ages, name="age"))


def value_by_age(
    orders: ir.Table | pd.DataFrame,
    first_month: pd.Series,
    groups: pd.Series,
    last: int,
    max_age: int,
    margin_rate: float,
    cost_per_order: float,
    level: float = 0.95,
) -> pd.DataFrame:
    """:func:`helpers.cohorts.value_by_age` of the orders' margins m x amount - c (undiscounted),
    per group (`groups`: customer_id -> group, the same index as `first_month`), from sums per
    (group, first month) of each customer's cumulative margin V_i(k) (the engine's margin per
    customer and age, :func:`_monthly_margins`, summed over the ages here): for each age k,
    S1 = sum_i V_i(k) and S2 = sum_i V_i(k)^2 (customers without an order add 0). The customers
    of one first month are all observed to the same age, so per group and age
    n = customers of the first months observed at k, V = S1 / n and
    se = sqrt((S2 - n V^2) / (n - 1) / n) (the sample standard deviation, ddof 1).
    Returns ``group``, ``age``, ``customers``, ``value``, ``se``, ``ci_low``, ``ci_high``."""
    from scipy import stats

    ids = first_month.index.astype(str)
    fm = first_month.to_numpy(np.int64)
    keep = fm <= last
    starts = pd.DataFrame({"customer_id": ids.to_numpy(object)[keep], "first_month": fm[keep],
                           "grp": groups.to_numpy(object)[keep]})  # fmt: skip
    ages = list(range(max_age + 1))
    m = _monthly_margins(orders, starts[["customer_id", "first_month"]], last, max_age,
                         margin_rate, cost_per_order)  # fmt: skip
    # per (group, first month): n, S1 and S2 of each age (a customer without a group: left out)
    ok = starts["grp"].notna().to_numpy()
    # the pairs' codes in order of first appearance (as a MultiIndex's factorize, which took
    # half a second at 842k customers): each column factorized alone, the pair as one integer
    g_code, g_uniq = pd.factorize(starts["grp"].to_numpy(object)[ok])
    m_code, m_uniq = pd.factorize(starts["first_month"].to_numpy(np.int64)[ok])
    code, pair = pd.factorize(g_code.astype(np.int64) * len(m_uniq) + m_code)
    size = len(pair)
    cells = pd.DataFrame({"grp": g_uniq[pair // len(m_uniq)], "first_month": m_uniq[pair % len(m_uniq)],
                          "n": np.bincount(code, minlength=size)})  # fmt: skip
    # V_i(k) accumulated age by age (the cumulative sums' order): one column at a time, not a
    # customers x ages copy (at 8.4M customers two of 0.8 GB)
    acc = m.column(0)  # a new array, the memo stays as it is
    for k in ages:
        if k:
            m.add_age(acc, k)
        cum = acc[ok]
        cells[f"s{k}"] = np.bincount(code, weights=cum, minlength=size)
        cells[f"q{k}"] = np.bincount(code, weights=cum**2, minlength=size)
    rows = []
    for k in ages:
        seen = cells[cells["first_month"] + k <= last]
        g = seen.groupby("grp", sort=True)[["n", f"s{k}", f"q{k}"]].sum()
        rows.append(pd.DataFrame({"group": g.index, "age": k, "customers": g["n"].to_numpy(),
                                  "s1": g[f"s{k}"].to_numpy(), "s2": g[f"q{k}"].to_numpy()}))  # fmt: skip
    out = pd.concat(rows, ignore_index=True).sort_values(["group", "age"], kind="stable")
    out = out[out["customers"] > 0].reset_index(drop=True)
    n_ = out["customers"].to_numpy(float)
    mean = out["s1"].to_numpy() / n_
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.clip(out["s2"].to_numpy() - n_ * mean**2, 0, None) / (n_ - 1)
        se = np.where(n_ > 1, np.sqrt(var / n_), np.nan)
    z = stats.norm.ppf(0.5 + level / 2)
    out = out.drop(columns=["s1", "s2"]).assign(value=mean, se=se)
    out["customers"] = out["customers"].astype(np.int64)
    out["ci_low"], out["ci_high"] = out["value"] - z * out["se"], out["value"] + z * out["se"]
    return out


def orders_after(
    events: pd.DataFrame,
    orders: ir.Table | pd.DataFrame,
    days: float,
    *,
    at: str,
    closed: str = "right",
    values: tuple[str, ...] = (),
    margin: economics.Economics | None = None,
    as_of: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """:func:`helpers.stats.orders_after` in the engine: the events (a small pandas table with
    ``customer_id`` and the time column `at`) are sent to the engine, joined with the orders of
    their customers (up to the end of the as-of day when `as_of` is given) and reduced to one
    row per event: ``orders`` in the window, ``converted``, ``next_order_at`` and the window's
    sums of `values` (with `margin`, also ``margin``: the sum of
    :func:`helpers.economics.order_margin`, amount - (1 - g)(amount + discount), 0 if
    returned). Aligned with `events`' index."""
    if closed not in ("right", "left", "both"):
        raise ValueError(f"closed must be 'right', 'left' or 'both', got {closed!r}")
    t, codes = _section(orders)
    e = _events(events, at, codes)
    if as_of is not None:
        t = _up_to(t, as_of, "order_date")
    sums = {v: (m_, money_scale(orders, v)) for v, m_ in zip(values, values, strict=True)}
    if margin is not None:
        # the margin a - (1 - g)(a + d), 0 if returned, summed as g S(a k) - (1 - g) S(d k) (k:
        # kept): two exact sums at the amounts' scales (exact_sum), the same in every run
        a = t.amount.cast("float64")
        kept = _flag(~t.returned.fill_null(False), "float64") if "returned" in t.columns else 1.0
        t = t.mutate(_ak=a * kept)
        sums["_ak"] = ("_ak", money_scale(orders))
        if "discount" in t.columns:
            t = t.mutate(_dk=t.discount.cast("float64").fill_null(0.0) * kept)
            sums["_dk"] = ("_dk", money_scale(orders, "discount"))
    small = _side_table(t, e)
    m = small.join(t, "customer_id")
    od = m.order_date
    after = (od >= m._t) if closed in ("left", "both") else (od > m._t)
    stop = m._t + ibis.interval(seconds=int(round(days * 86_400)))
    inside = after & ((od < stop) if closed == "left" else (od <= stop))
    agg = {"orders": m.count(where=inside), "next_order_at": od.min(where=after)}
    for name, (col, scale) in sums.items():
        agg[name] = exact_sum(m[col], scale, where=inside)
    g = m.group_by("_row").agg(**agg).to_pandas().set_index("_row")
    if margin is not None:
        ak, dk = g.pop("_ak"), g.pop("_dk") if "_dk" in g else 0.0
        g["margin"] = margin.gross_margin_rate * ak - (1 - margin.gross_margin_rate) * dk
        values = (*values, "margin")
    out = g.reindex(np.arange(len(e)))
    out["orders"] = out["orders"].fillna(0).astype(int)
    out["converted"] = out["orders"] > 0
    out["next_order_at"] = pd.to_datetime(out["next_order_at"]).astype("datetime64[ns]")
    for v in values:
        out[v] = out[v].fillna(0.0)
    out.index = events.index
    return out[["orders", "converted", "next_order_at", *values]]


def _events(events: pd.DataFrame, at: str, codes: CustomerCodes | None = None) -> pd.DataFrame:
    """The events as the engine takes them: ``customer_id`` (text, or its code with `codes`),
    ``_t`` (the time `at`) and ``_row`` (the position, to align the result)."""
    ids = events["customer_id"].astype(str).to_numpy(object)
    return pd.DataFrame({"customer_id": _encode(codes, ids),
                         "_t": pd.to_datetime(events[at], cache=False).to_numpy("datetime64[ns]"),
                         "_row": np.arange(len(events))})  # fmt: skip


def history_features(
    exposures: pd.DataFrame,
    orders: ir.Table | pd.DataFrame,
    at: str,
    signup: pd.Series | None = None,
    as_of: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """:func:`helpers.experiments.history_features` in the engine: per exposure (a small pandas
    table sent to the engine), from its customer's orders strictly before `at` (and up to the
    end of the as-of day when `as_of` is given): ``n_orders``, ``days_since_last``, ``spend``,
    ``mean_amount``, ``discount_share`` and, given `signup`, ``tenure_days``. Aligned with
    `exposures`' index; one row per exposure comes back."""
    t, codes = _section(orders)
    e = _events(exposures, at, codes)
    if as_of is not None:
        t = _up_to(t, as_of, "order_date")
    m = _side_table(t, e).join(t, "customer_id")
    m = m.filter(m.order_date < m._t)
    disc = (
        _flag((m.discount.cast("float64") > 0).fill_null(False), "float64")
        if "discount" in m.columns
        else ibis.literal(0.0)
    )
    g = (
        m.group_by("_row")
        .agg(
            n_orders=m.count(),
            last=m.order_date.max(),
            spend=exact_sum(m.amount, money_scale(orders)),
            discount_share=disc.mean(),
        )  # fmt: skip
        .to_pandas()
        .set_index("_row")
        .reindex(np.arange(len(e)))
    )
    from helpers.experiments import history_columns

    return history_columns(g, exposures, e["_t"].to_numpy(), signup)


def first_order_times(
    orders: ir.Table | pd.DataFrame,
    as_of: str | pd.Timestamp | None = None,
    start: pd.Timestamp | None = None,
    stop: pd.Timestamp | None = None,
) -> pd.Series:
    """Each customer's first order time (customer_id as text -> timestamp, sorted), over the
    orders up to the end of the as-of day and, when given, from `start` through `stop`
    (inclusive)."""
    t, codes = _section(orders)
    if as_of is not None:
        t = _up_to(t, as_of, "order_date")
    if start is not None:
        t = t.filter(t.order_date >= ibis.timestamp(pd.Timestamp(start).to_pydatetime()))
    if stop is not None:
        t = t.filter(t.order_date <= ibis.timestamp(pd.Timestamp(stop).to_pydatetime()))
    df = t.group_by("customer_id").agg(first=t.order_date.min()).order_by("customer_id")
    df = df.to_pandas()
    ids = _decode(codes, df["customer_id"])
    out = pd.Series(pd.to_datetime(df["first"]).astype("datetime64[ns]").to_numpy(),
                    index=pd.Index(ids, name="customer_id"), name="order_date")  # fmt: skip
    return out


def orders_of(
    orders: ir.Table | pd.DataFrame,
    customers: pd.Index,
    as_of: str | pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, int]:
    """The ``customer_id`` (text) and ``order_date`` of the orders of `customers` only (e.g. a
    loyalty programme's members, whose orders a model takes one by one), sorted by customer and
    time, and the number of all orders (up to the end of the as-of day when `as_of` is given):
    the other customers' orders are counted in the engine, not returned."""
    t, codes = _section(orders, ["customer_id", "order_date"])
    if as_of is not None:
        t = _up_to(t, as_of, "order_date")
    given = pd.Index(customers).astype(str).to_numpy(object)
    ids = _side_table(t, pd.DataFrame({"customer_id": _encode(codes, given)}))
    mine = t.semi_join(ids, "customer_id").order_by(["customer_id", "order_date"]).to_pandas()
    if codes is not None:
        mine["customer_id"] = _decode(codes, mine["customer_id"])
    mine["order_date"] = pd.to_datetime(mine["order_date"]).astype("datetime64[ns]")
    total = t.count().to_pyarrow().as_py()
    return mine, int(total)


# ------------------------------------------------------- a warehouse table, checked where it is

#: The Ibis types a warehouse column of each :class:`helpers.tables.Column` kind may have (the
#: table is already typed: nothing is parsed from text; text columns take any type, as text).
WAREHOUSE_TYPES = {
    "datetime": ("timestamp without a time zone or date", lambda d: (d.is_timestamp() and
                 d.timezone is None) or d.is_date()),
    "money": ("number", lambda d: d.is_numeric()),
    "float": ("number", lambda d: d.is_numeric()),
    "int": ("number", lambda d: d.is_numeric()),
    "id": ("text or integer", lambda d: d.is_string() or d.is_integer()),
    "bool": ("boolean", lambda d: d.is_boolean()),
}  # fmt: skip

#: Example values shown per problem, as the file readers show one.
EXAMPLES = 1


class WarehouseChecks(NamedTuple):
    """What :func:`warehouse_problems` found: the `problems` (empty when the table is clean) and
    the text columns with a value that has a blank at an end, to be `trimmed`
    (:func:`warehouse_orders`)."""

    problems: list
    trimmed: list[str]


def warehouse_problems(
    t: ir.Table,
    cols: tuple,
    *,
    source: str,
    table: str,
    labels: dict[str, str],
    as_of: str | None = None,
    ids: str = "auto",
) -> WarehouseChecks:
    """The checks the file readers make (:func:`helpers.tables.read_table_info`), as engine
    expressions on a typed warehouse table `t` whose columns carry the canonical names of `cols`
    (:class:`helpers.tables.Column`): each runs in the warehouse and only a count and an example
    value come back. Returns the problems (:class:`helpers.tables.Problem`, said as
    ``<source>, table 't', column 'x': n rows are <what> (e.g. 'v')``, `labels` naming the client's
    column), empty when the table is clean, and the text columns with a value that has blanks
    at an end (:data:`helpers.tables.parse.WHITESPACE`), which :func:`warehouse_orders` trims
    as the file readers trim every cell (the others are taken as stored: no query trims them).

    Per kind: a column of the wrong type (:data:`WAREHOUSE_TYPES`: a date or number stored as
    text, a time-zone-aware timestamp) is one problem and its values are not checked; missing
    values (null, or blank text) where a value is required; dates on or after the day after
    `as_of` (or now, without it) where the column may not be in the future; negative amounts
    where not allowed; numbers below ``min``, above ``max`` or not whole for an ``int`` column;
    ids in scientific notation (an export that lost digits) and, with ``ids='integer'``, text ids
    that are not whole numbers; duplicated values of a unique column (blank ones are the empty
    check's). The sentences are the pandas reader's (``helpers.tables.pandas_reader``).

    One scan computes every test once per row (a column of a projection): first whether a text
    has a blank at an end, then the blank test matches the trimmed pattern only on those rows
    (a comparison with '' on the others)."""
    from helpers.tables import Problem
    from helpers.tables.parse import SCIENTIFIC

    problems: list = []

    def where(name: str) -> str:
        label = labels.get(name, f"'{name}'")
        return f"{source}, table {table!r}, column {label if label.startswith(chr(39)) else repr(label)}"

    def said(name: str, n: int, what: str, example, code: str) -> Problem:
        rows = "row is" if n == 1 else "rows are"
        return Problem(
            f"{where(name)}: {n:,} {rows} {what} (e.g. '{example}')", file=source, column=name,
            code=code, rows=n, example=str(example),
        )  # fmt: skip

    # first, per text column, whether a value has a blank at an end: a column of its own that
    # the tests below read (computed once per row), and the columns warehouse_orders trims
    texts = [c.name for c in cols if c.name in t.columns and t[c.name].type().is_string()
             and c.kind in ("id", "text")]  # fmt: skip
    t = t.mutate(**{f"_edge{i}": t[n].re_search(EDGE_RE).fill_null(False)
                    for i, n in enumerate(texts)})  # fmt: skip
    edge = {n: t[f"_edge{i}"] for i, n in enumerate(texts)}

    def blank(name: str) -> ir.BooleanValue:  # '' once trimmed: matched only where padded
        col = t[name]
        return ibis.ifelse(edge[name], _trimmed_match(col, ""), col == "") if name in edge \
            else _trimmed_match(col, "")  # fmt: skip

    # (column, what, code, bad rows, the value shown)
    checks: list[tuple[str, str, str, ir.BooleanValue, ir.Value]] = []
    now = pd.Timestamp(as_of) + pd.Timedelta(days=1) if as_of is not None else pd.Timestamp.now()
    for c in cols:
        if c.name not in t.columns:
            continue
        col = t[c.name]
        dtype = col.type()
        if c.kind in WAREHOUSE_TYPES and not WAREHOUSE_TYPES[c.kind][1](dtype):
            need = WAREHOUSE_TYPES[c.kind][0]
            problems.append(Problem(
                f"{where(c.name)}: is of type {dtype} in the database; the report reads a "
                f"database table's columns as they are typed there and needs a {need} here "
                f"(cast it in a view, e.g. CREATE VIEW … AS SELECT CAST(…) …, and name the view "
                f"in ?table=; or export the table to a file)",
                file=source, column=c.name, code="wrong_type",
            ))  # fmt: skip
            continue
        text = dtype.is_string()  # trimmed by matching, not trimmed row by row (_trimmed_match)
        empty = col.isnull() | blank(c.name) if text else col.isnull()
        shown = col.cast("string").fill_null("")
        if not c.nullable and c.kind not in ("text", "bool"):
            checks.append((c.name, "empty", "empty", empty, shown))
        if c.kind == "datetime" and c.not_in_future:
            when = (
                f"after the as-of date {pd.Timestamp(as_of).date()}"
                if as_of is not None
                else "in the future"
            )
            stamp = col.cast("timestamp") >= ibis.timestamp(now.to_pydatetime())
            checks.append((c.name, when, "after_as_of", stamp, shown))
        if c.kind in ("money", "float", "int"):
            if c.kind == "money" and not c.allow_negative:
                checks.append((c.name, "negative", "negative", col < 0, shown))
            if c.kind == "int" and not dtype.is_integer():
                checks.append((c.name, "not whole numbers", "not_whole", col != col.round(), shown))
            if c.min is not None:
                checks.append((c.name, f"below {c.min:g}", "below_min", col < c.min, shown))
            if c.max is not None:
                checks.append((c.name, f"above {c.max:g}", "above_max", col > c.max, shown))
        if c.kind == "id" and text:
            sci = _trimmed_match(col, SCIENTIFIC)
            checks.append((c.name, "in scientific notation: the export lost digits of these "
                           "ids (Excel shortens long numbers); export the column as text",
                           "scientific", sci, shown))  # fmt: skip
            if ids == "integer":
                whole = _trimmed_match(col, r"[+-]?[0-9]{1,18}")
                checks.append((c.name, "not whole numbers (the mapping says id_type: integer)",
                               "not_whole", ~empty & ~whole, shown))  # fmt: skip
    unique = [c for c in cols if c.unique and c.name in t.columns
              and not any(p.column == c.name for p in problems if p.code == "wrong_type")]  # fmt: skip

    def key_of(c) -> ir.Value:  # a unique column's value as compared (text trimmed)
        col = t[c.name]
        return strip(col.cast("string")) if col.type().is_string() else col

    # each check's test computed once per row, as a column the counts and examples then read
    # (in the aggregate itself DuckDB matched each regular expression once per use: at 100M
    # orders the scan took 29.7 s against 23.2 s; benchmarks/README.md, issue 31)
    flags: dict[str, ir.BooleanValue] = {}
    for i, (_, _, _, bad, _) in enumerate(checks):
        flags[f"_bad{i}"] = bad.fill_null(False)
    for j, c in enumerate(unique):  # in the same scan: do the non-blank values repeat at all?
        # the distinct values as stored, not trimmed: all distinct and none with blanks at an
        # end, the trimmed ones are distinct too. DuckDB counts a stored column's distinct
        # values under its memory limit; trimmed copies of 100M order ids ran out of memory
        # under 0.9 GB (passed under 1.4 GB), the stored ones passed under 0.5 GB. Blank or
        # padded by matching, not trimming (DuckDB's trim by a set of characters is slow: at
        # 100M ids 12 s a trim, 3 s a match; benchmarks/README.md, issue 31)
        col = t[c.name]
        text = col.type().is_string()
        given = col.notnull() & ~blank(c.name) if text else col.notnull()
        flags[f"_given{j}"] = given.fill_null(False)
        if text:  # blanks at an end: trimming may make two of these one
            padded = edge[c.name] if c.name in edge else col.re_search(EDGE_RE).fill_null(False)
            flags[f"_padded{j}"] = given.fill_null(False) & padded
    s = t.mutate(**flags)
    agg = {}
    for i, (_, _, _, _, shown) in enumerate(checks):
        agg[f"n{i}"] = s[f"_bad{i}"].sum()
        agg[f"e{i}"] = shown.min(where=s[f"_bad{i}"])
    for j, c in enumerate(unique):
        given = s[f"_given{j}"]
        agg[f"k{j}"], agg[f"d{j}"] = s[c.name].count(where=given), s[c.name].nunique(where=given)
        if f"_padded{j}" in s.columns:
            agg[f"b{j}"] = s[f"_padded{j}"].sum()
    for i in range(len(texts)):  # the padded values per text column, in the same scan
        agg[f"p{i}"] = s[f"_edge{i}"].sum()
    row = s.aggregate(**agg).to_pandas().iloc[0] if agg else None  # one scan of the table
    trimmed = [n for i, n in enumerate(texts) if int(np.nan_to_num(row[f"p{i}"]))]
    for i, (name, what, code, _, _) in enumerate(checks):  # a count and one example per check
        n = int(np.nan_to_num(row[f"n{i}"]))
        if n:
            problems.append(said(name, n, what, row[f"e{i}"], code))
    for j, c in enumerate(unique):  # duplicated values: the engine groups, a count comes back
        padded = int(np.nan_to_num(row.get(f"b{j}", 0)))
        if int(np.nan_to_num(row[f"k{j}"])) == int(np.nan_to_num(row[f"d{j}"])) and not padded:
            continue  # no value repeats (the usual case): no second scan
        key = key_of(c)
        k = t.select(k=key).filter(lambda s: s.k.notnull() & (s.k.cast("string") != ""))
        g = k.group_by("k").agg(n=k.count()).filter(lambda s: s.n > 1)
        dup = g.aggregate(ids=g.count(), rows=g.n.sum(), e=g.k.cast("string").min()).to_pandas()
        ids_n = int(np.nan_to_num(dup["ids"].iloc[0]))
        if ids_n:
            problems.append(said(
                c.name, int(dup["rows"].iloc[0]),
                f"duplicated ({ids_n} distinct ids appear more than once)", dup["e"].iloc[0],
                "duplicated",
            ))  # fmt: skip
    return WarehouseChecks(problems, trimmed)


def warehouse_orders(
    t: ir.Table, cols: tuple, ids: str = "auto", trimmed: Sequence[str] = ()
) -> ir.Table:
    """The typed warehouse table `t` (canonical column names, checked by
    :func:`warehouse_problems`) as the file readers type it, an expression: numbers as float64
    (an ``int`` column as int64), dates as timestamps, true/false with a missing value false,
    text as text, ids as integers, or as text unless
    ``ids='auto'`` finds every one a plain integer (one small aggregate in the warehouse; the
    pandas reader's rule) or ``ids='integer'`` says so. Text is trimmed as the file readers trim
    a cell (:func:`strip`) in the columns `trimmed` names (:func:`warehouse_problems` found a
    value with a blank at an end there: a padded id is the same customer as the CSV's), and
    taken as the database stores it in the others (no query on the table trims every row); a
    blank nullable cell is null."""
    out: dict[str, ir.Value] = {}
    for c in cols:
        if c.name not in t.columns:
            continue
        col = t[c.name]
        dtype = col.type()
        if c.name in trimmed and dtype.is_string():
            col = strip(col)
        if c.kind == "datetime":
            out[c.name] = col.cast("timestamp")
        elif c.kind in ("money", "float"):
            out[c.name] = col.cast("float64")
        elif c.kind == "int":
            out[c.name] = col.cast("int64") if dtype.is_integer() else col.round().cast("int64")
        elif c.kind == "bool":
            out[c.name] = col.fill_null(False)
        elif c.kind == "id" and dtype.is_integer():  # as text when the mapping says so
            out[c.name] = col.cast("string") if ids == "text" else col.cast("int64")
        elif c.kind == "id":
            text = col.cast("string").nullif("")
            ok = (
                ids == "integer" if ids != "auto"
                else t.aggregate(ok=text.re_search(r"^(?:-?[1-9][0-9]{0,17}|0)$").all())
                .to_pandas()["ok"].iloc[0]
            )  # fmt: skip
            plain = ok is None or pd.isna(ok) or bool(ok)  # no id at all: as pandas' all()
            out[c.name] = text.cast("int64") if plain else text
        else:  # text: kept as text
            text = col.cast("string")
            out[c.name] = text.nullif("") if c.nullable else text.fill_null("")
    return t.select(**out)
