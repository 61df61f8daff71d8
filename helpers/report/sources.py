"""Where a client's orders come from: a file, a folder of Parquet files or a table in a database.

``--data`` takes

* a file (CSV, .csv.gz, .zip, .xlsx, .parquet: read by :func:`helpers.report.orders.read_client_orders`);
* a folder of Parquet files (``orders/part-0.parquet``, ``orders/2025/part-1.parquet``, …, read
  in path order: a dataset as Spark, DuckDB or pandas write it);
* a table in a database, as a URL with the table in ``?table=``:
  ``duckdb:///path/to/client.db?table=orders`` or any connection form Ibis understands
  (``postgres://user@host/db?table=orders``, ``bigquery://project/dataset?table=orders``, …;
  https://ibis-project.org/reference/connection; the backend's driver must be installed).

A folder is copied once, with its own column names and types, into a Parquet file in a temporary
folder; the mapping then applies to its columns exactly as to a file's, with the same validation
and messages (rows are named by their position in the folder's files).

A database table stays where it is (:func:`open_table`; issue 31): its columns are already
typed, so nothing is parsed; the checks the file readers make and the mapping's rules run in the
database as Ibis expressions (:func:`helpers.report.engine.warehouse_problems`,
:func:`helpers.report.engine.mapping_rules`; :func:`helpers.report.orders.read_orders_in_warehouse`),
and so do the report's aggregations: only counts, a few example values, per-customer summaries
and small tables come back. A date or number stored as text is refused (one message per column:
cast it in a view). The notebook receives the URL through its kernel's environment
(:data:`SOURCE_ENV`), never in a file or a parameter.

A connection that fails, a table that does not exist or cannot be read and a mapped column the
table lacks are refused with one message naming the source (its URL without the password,
:func:`redact`), the table and the column; a password never appears in a message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

#: From this file size (bytes) a local CSV or Parquet file is read in the engine
#: (:func:`helpers.report.orders.read_orders`, ``engine="auto"``: the rules in DuckDB,
#: :func:`helpers.report.orders.read_orders_in_engine`) rather than in pandas, and by the report
#: command in a child process (:func:`helpers.report.build._in_child`): about 1M rows of a
#: client's CSV (:data:`helpers.report.orders.ENGINE_MIN_ROWS`), where the engine's fixed cost
#: (about 0.5 s: the connection, the rules' small queries) is repaid; below, the pandas path is
#: quicker. Here, with what a source is, so that the command knows it without the readers.
ENGINE_MIN_BYTES = 32 * 2**20

__all__ = ["is_location", "is_database", "describe", "redact", "materialize", "open_table",
           "unreadable", "SOURCE_ENV", "ENGINE_MIN_BYTES"]  # fmt: skip

#: The environment variable that hands a database URL (with its password) to notebook 08's
#: kernel, as the pseudonym key is handed over: never in papermill's parameters, which the
#: delivered report.ipynb records (:func:`helpers.report.orders.open_orders`).
SOURCE_ENV = "RETENTION_LAB_SOURCE"


def is_location(data: str | Path) -> bool:
    """True for a database URL or a folder holding Parquet files (not a single file); any other
    folder is left to the file reader, which refuses it clearly."""
    text = str(data)
    return "://" in text or bool(_parquet_files(Path(text).expanduser()))


def is_database(data: str | Path) -> bool:
    """True for a database URL (``duckdb:///client.db?table=orders``, ``postgres://…``): a table
    read, checked and aggregated where it is (:func:`open_table`)."""
    return "://" in str(data)


def _parquet_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix in (".parquet", ".pq") and p.is_file())


def _split_url(url: str) -> tuple[str, str]:
    """(connection URL without ``table``, table name)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    tables = [v for k, v in query if k == "table"]
    if len(tables) > 1:
        raise ValueError(
            f"--data {redact(url)!r}: the URL names {len(tables)} tables "
            f"({', '.join(map(repr, tables))}); name one, e.g. "
            "duckdb:///path/client.db?table=orders"
        )
    if not tables or not tables[0]:
        raise ValueError(
            f"--data {redact(url)!r}: name the table in the URL, e.g. "
            "duckdb:///path/client.db?table=orders"
        )
    rest = urlencode([(k, v) for k, v in query if k != "table"])
    # by hand, as redact: urlunsplit turns duckdb:////abs/client.db (SQLAlchemy's absolute
    # path, four slashes) into duckdb://abs/client.db, a relative path under a host "abs"
    url = f"{parts.scheme}://{parts.netloc}{parts.path}" + (f"?{rest}" if rest else "")
    return url + (f"#{parts.fragment}" if parts.fragment else ""), tables[0]


def redact(url: str) -> str:
    """`url` without its password (``postgres://lab:***@host/db``) and without ``?table=``: what
    messages, logs and the report may show of a connection URL."""
    parts = urlsplit(url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if k not in ("table", "password")])  # fmt: skip
    netloc = parts.netloc
    if parts.password is not None:
        user, host = netloc.rsplit("@", 1)
        netloc = user.split(":", 1)[0] + ":***@" + host
    # by hand: urlunsplit drops the // of an empty host (duckdb:///path.db)
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def _secrets(url: str) -> list[str]:
    """The password of `url` as written and decoded (a query's ``password=`` too), longest first."""
    from urllib.parse import unquote

    parts = urlsplit(url)
    found = [parts.password or ""]
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k == "password"]
    found += [unquote(f) for f in found]
    return sorted({f for f in found if f}, key=len, reverse=True)


def _why(err: BaseException, url: str) -> str:
    """A backend's error as one short line, with the URL's password removed."""
    line = next((x.strip() for x in str(err).splitlines() if x.strip()), "")
    for secret in _secrets(url):
        line = line.replace(secret, "***")
    return f"{type(err).__name__}: {line}"[:300] if line else type(err).__name__


def describe(data: str | Path) -> str:
    """A short name for messages: the table or folder name."""
    if "://" in str(data):
        return _split_url(str(data))[1]
    return Path(data).name


def _problem(source: str, table: str, sentence: str, code: str, column: str | None = None):
    from helpers.tables import Problem

    where = f"{source}, table {table!r}" + (f", column {column!r}" if column else "")
    return Problem(f"{where}: {sentence}", file=source, column=column, code=code)


#: The files the report reads as files (:func:`open_table`'s hint for one named as a database).
_FILE_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xls", ".parquet", ".pq", ".zip", ".gz")


def _is_duckdb_file(path: Path) -> bool:
    """True when `path` is a file that begins as DuckDB's database files do: a checksum of 8
    bytes, then the magic ``DUCK`` (DuckDB's storage format, ``MainHeader``). Given a CSV or
    Parquet file read-only, DuckDB 2 fails with "Cannot launch in-memory database in read-only
    mode!", which names neither the file nor the mistake."""
    try:
        with path.open("rb") as f:
            return f.read(12)[8:12] == b"DUCK"
    except OSError:  # a folder, or no permission to read it: DuckDB's own error says which
        return True


def open_table(
    text: str, columns: list[str] | None = None, memory_limit: str | None = None
) -> tuple[Any, Any, str, str]:
    """The database table of URL `text` where it is: (connection, Ibis table of its `columns`
    only, when given; the source as messages name it, :func:`redact`; the table's name).
    Nothing is read yet: the projection and everything built on the table run in the database.
    A DuckDB file is opened read-only, with `memory_limit` (above it DuckDB spills to disk).
    The caller disconnects.

    Raises :class:`helpers.tables.DataValidationError` naming the source (without its
    password), the table and the column, when the connection fails, the table does not exist or
    cannot be read, or lacks a column the mapping names; ValueError when the URL names no table."""
    import ibis

    from helpers.tables import DataValidationError

    url, table = _split_url(text)
    source = redact(url)
    kwargs = {"read_only": True} if url.startswith("duckdb:") else {}
    if url.startswith("duckdb:"):
        db = urlsplit(url).netloc + urlsplit(url).path  # duckdb:///abs.db or duckdb://rel.db
        if not Path(db).exists():
            raise DataValidationError(
                [_problem(source, table, f"no DuckDB database at {db}", "connection")]
            )
        if not _is_duckdb_file(Path(db)):
            hint = (
                "; a CSV, Excel or Parquet file is given as --data itself, without duckdb://"
                if Path(db).suffix.lower() in _FILE_SUFFIXES
                else ""
            )
            raise DataValidationError(
                [_problem(source, table, f"{db} is not a DuckDB database file{hint}", "connection")]
            )
    try:
        con = ibis.connect(url, **kwargs)
    except Exception as err:  # each driver has its own errors: refused, unknown host, password
        raise DataValidationError(
            [_problem(source, table, f"cannot connect ({_why(err, text)})", "connection")]
        ) from None
    try:
        if url.startswith("duckdb:"):
            from helpers.report.engine import tune_duckdb

            tune_duckdb(con, memory_limit)
        try:
            t = con.table(table)
        except Exception as err:  # each backend has its own "not found" error
            sentence = f"no such table, or not visible to this user ({_why(err, text)})"
            raise DataValidationError([_problem(source, table, sentence, "no_table")]) from None
        if columns:
            have = list(t.columns)
            missing = [c for c in columns if c not in have]
            if missing:
                shown = ", ".join(repr(c) for c in have[:20]) + (", …" if len(have) > 20 else "")
                sentence = (
                    f"the mapping names this column; the table has none such (its columns: {shown})"
                )
                raise DataValidationError(
                    [_problem(source, table, sentence, "missing_column", c) for c in missing]
                )
            t = t.select(*dict.fromkeys(columns))  # only the mapped columns are ever read
        t = _binary_text(con, t)
        try:
            t.limit(1).to_pyarrow()  # the privilege to read, checked on one row
        except Exception as err:  # e.g. no SELECT privilege on the table
            sentence = f"cannot be read ({_why(err, text)})"
            raise DataValidationError([_problem(source, table, sentence, "unreadable")]) from None
    except BaseException:
        con.disconnect()
        raise
    return con, t, source, table


#: Each backend's text of a column (its name quoted) compared byte by byte (:func:`_binary_text`):
#: the column as text (an ENUM's cast: DuckDB orders an ENUM by its declared values, and refuses
#: a collation on it) in the collation of bytes.
BINARY_TEXT = {
    "duckdb": 'CAST({} AS VARCHAR) COLLATE "binary"',
    "postgres": 'CAST({} AS text) COLLATE "C"',
}
#: Pairs of texts that a collation other than bytes' compares otherwise (case: 'B' < 'a' and
#: 'a' <> 'A' in bytes; accents: 'é' > 'z' and 'e' <> 'é'): (left, operator, right), each true
#: byte by byte (:func:`_compares_bytes`).
PROBES = (("B", "<", "a"), ("a", "<>", "A"), ("é", ">", "z"), ("e", "<>", "é"))


def _binary_text(con: Any, t: Any) -> Any:
    """`t` of the connection `con` with each text column that the database does not compare
    byte by byte (:func:`_compares_bytes`) read as text in the collation of bytes
    (:data:`BINARY_TEXT`; for UTF-8 that is Python's order of code points), as the file readers
    and pandas compare text. A column declared with a collation or as an ENUM would otherwise
    group, order and range the ids otherwise than Python: DuckDB's ``VARCHAR COLLATE NOCASE``
    makes 'C-1' and 'c-1' one customer in every group-by (and its ranges of ids,
    :func:`helpers.report.engine.customer_ranges`, counted customers twice); an ENUM sorts by
    its declared values; PostgreSQL's usual language collations (e.g. ``en_US.UTF-8``, ICU's
    ``en-x-icu``) sort 'Ca1' before 'c-1', so the customer summary came back in another order
    than the CSV's, and with it the exports' rows and the intervals' resampled customers.
    Columns compared byte by byte are left as they are, and `t` itself when all are: reading
    every column through the cast cost 7 % of the report's time on a 100M-row DuckDB table
    (benchmarks/README.md). Another backend (Spark compares bytes) is left as it is. No cast
    alone does it: a text's cast to BLOB reads its escapes ('\\x41' becomes 'A')."""
    import ibis
    import sqlglot

    template = BINARY_TEXT.get(getattr(con, "name", ""))
    texts = [c for c, dtype in t.schema().items() if dtype.is_string()]
    if not texts or template is None:
        return t
    dialect = con.name

    def quoted(name: str) -> str:
        return sqlglot.exp.to_identifier(name, quoted=True).sql(dialect)

    sql = ibis.to_sql(t, dialect=dialect)
    recast = [c for c in texts if not _compares_bytes(con, sql, quoted(c))]
    if not recast:
        return t
    select = ", ".join(
        f"{template.format(quoted(c))} AS {quoted(c)}" if c in recast else quoted(c)
        for c in t.columns
    )
    query = f"SELECT {select} FROM ({sql}) AS text_in_binary"
    return con.sql(query, schema=t.schema())  # the same types; the database is not asked again


def _compares_bytes(con: Any, sql: str, column: str) -> bool:
    """Whether the database of `con` compares the text column `column` (quoted) of the query
    `sql` byte by byte: each of :data:`PROBES` true for a text typed as the column (a CASE
    whose other branch is the column: its collation), on no row of the table (LIMIT 0); not an
    ENUM (DuckDB compares an ENUM with text as text, but orders it by its declared values). A
    probe the database refuses (PostgreSQL: a text that is not one of an enum's values) is a
    no."""
    import ibis

    typed = "(CASE WHEN false THEN s.{} ELSE '{}' END)"
    probes = " AND ".join(f"{typed.format(column, a)} {op} '{b}'" for a, op, b in PROBES)
    query = (
        f"SELECT ({probes}) AS bytes FROM (SELECT 1 AS one) AS o "
        f"LEFT JOIN (SELECT {column} FROM ({sql}) AS s0 LIMIT 0) AS s ON true"
    )
    try:  # (PostgreSQL's connection commits each statement: a refused one leaves no transaction)
        if con.name == "duckdb":
            described = con.con.execute(f"DESCRIBE SELECT {column} FROM ({sql})").fetchall()
            if not str(described[0][1]).upper().startswith("VARCHAR"):
                return False
        return bool(
            con.sql(query, schema=ibis.schema({"bytes": "boolean"})).to_pyarrow()[0][0].as_py()
        )
    except Exception:  # noqa: BLE001 (each backend its own error: then read it as text)
        return False


def unreadable(err: BaseException, text: str) -> Exception:
    """:class:`helpers.tables.DataValidationError` for a query on the table of URL `text` that
    failed in the database (a value the backend cannot compute with, a table that changed):
    one message naming the source without its password and the table."""
    from helpers.tables import DataValidationError

    url, table = _split_url(text)
    sentence = f"cannot be read ({_why(err, text)})"
    return DataValidationError([_problem(redact(url), table, sentence, "unreadable")])


def materialize(data: str | Path, folder: str | Path) -> Path:
    """Copy a Parquet folder into ``<folder>/<name>.parquet``; return its path. (A database
    table is never copied: :func:`open_table`.)

    Raises ValueError with a clear sentence when the folder holds no Parquet file or `data` is a
    database URL."""
    import ibis

    out = Path(folder) / f"{describe(data)}.parquet"
    if is_database(data):
        raise ValueError(f"--data {redact(str(data))!r}: a database table is read where it is")
    src = Path(data).expanduser()
    files = _parquet_files(src)
    if not files:
        raise ValueError(f"--data {str(src)!r}: the folder holds no .parquet files")
    con = ibis.duckdb.connect()
    con.read_parquet([str(p) for p in files]).to_parquet(out)
    con.disconnect()
    return out
