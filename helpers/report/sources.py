"""Where a client's orders come from: a file, a folder of Parquet files or a table in a database.

``--data`` takes

* a file (CSV, .csv.gz, .zip, .xlsx, .parquet: read by :func:`helpers.report.orders.read_client_orders`);
* a folder of Parquet files (``orders/part-0.parquet``, ``orders/2025/part-1.parquet``, …, read
  in path order: a dataset as Spark, DuckDB or pandas write it);
* a table in a database, as a URL with the table in ``?table=``:
  ``duckdb:///path/to/client.db?table=orders`` or any connection form Ibis understands
  (``postgres://user@host/db?table=orders``, ``bigquery://project/dataset?table=orders``, …;
  https://ibis-project.org/reference/connection; the backend's driver must be installed).

A folder or a table is copied once, with its own column names and types, into a Parquet file in
a temporary folder; the mapping then applies to its columns exactly as to a file's, with the same
validation and messages (rows are named by their position in the table). Row order is the
table's scan order, which for a SQL table is whatever the database returns.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["is_location", "describe", "materialize"]


def is_location(data: str | Path) -> bool:
    """True for a database URL or a folder holding Parquet files (what :func:`materialize` turns
    into a file); any other folder is left to the file reader, which refuses it clearly."""
    text = str(data)
    return "://" in text or bool(_parquet_files(Path(text).expanduser()))


def _parquet_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix in (".parquet", ".pq") and p.is_file())


def _split_url(url: str) -> tuple[str, str]:
    """(connection URL without ``table``, table name)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    tables = [v for k, v in query if k == "table"]
    if len(tables) != 1 or not tables[0]:
        raise ValueError(
            f"--data {url!r}: name the table in the URL, e.g. duckdb:///path/client.db?table=orders"
        )
    rest = urlencode([(k, v) for k, v in query if k != "table"])
    return urlunsplit(parts._replace(query=rest)), tables[0]


def describe(data: str | Path) -> str:
    """A short name for messages: the table or folder name."""
    if "://" in str(data):
        return _split_url(str(data))[1]
    return Path(data).name


def materialize(data: str | Path, folder: str | Path) -> Path:
    """Copy a Parquet folder or a database table into ``<folder>/<name>.parquet``; return its path.

    Raises ValueError with a clear sentence when the folder holds no Parquet file, the URL names
    no table or the table does not exist."""
    import ibis

    out = Path(folder) / f"{describe(data)}.parquet"
    text = str(data)
    if "://" in text:
        url, table = _split_url(text)
        kwargs = {"read_only": True} if url.startswith("duckdb:") else {}
        if url.startswith("duckdb:"):
            db = urlsplit(url).netloc + urlsplit(url).path  # duckdb:///abs.db or duckdb://rel.db
            if not Path(db).exists():
                raise ValueError(f"--data {text!r}: no DuckDB database at {db}")
        con = ibis.connect(url, **kwargs)
        try:
            t = con.table(table)
        except Exception as err:  # each backend has its own "not found" error
            raise ValueError(
                f"--data {text!r}: no table {table!r} ({type(err).__name__})"
            ) from None
        t.to_parquet(out)
        con.disconnect()
        return out
    src = Path(data).expanduser()
    files = _parquet_files(src)
    if not files:
        raise ValueError(f"--data {str(src)!r}: the folder holds no .parquet files")
    con = ibis.duckdb.connect()
    con.read_parquet([str(p) for p in files]).to_parquet(out)
    con.disconnect()
    return out
