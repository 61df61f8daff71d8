"""Reading any table: one schema, two readers held equal, one error type.

- :mod:`~helpers.tables.schema`: the tables' columns and rules (:data:`SCHEMAS`, :class:`Column`), a
  problem as data (:class:`Problem`: file, column, reason code, rows, lines, example) and the one
  error (:class:`DataValidationError`).
- :mod:`~helpers.tables.parse`: text to values (numbers, dates, currency text, true/false).
- :mod:`~helpers.tables.raw`: a file's bytes to text cells (CSV of any delimiter and encoding,
  ``.gz``, ``.zip``, Excel, Parquet) with the line of every row, for messages.
- :mod:`~helpers.tables.pandas_reader` and :mod:`~helpers.tables.duckdb_reader`: the two readers,
  the same table from a clean file (``tests/tables/test_readers.py``); the pandas reader names
  every problem of a file that is not.

:func:`read_table_info` is the entry point: the pandas reader, or with ``reader="auto"`` DuckDB
first and pandas only for a file DuckDB declines (a problem, or a feature it leaves to pandas).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from helpers.tables import duckdb_reader, pandas_reader
from helpers.tables.parse import CURRENCY_TEXT, parse_dates, parse_numbers
from helpers.tables.raw import RawTable, read_raw
from helpers.tables.schema import SCHEMAS, Column, DataValidationError, Problem, ReadOptions

__all__ = [
    "SCHEMAS", "Column", "DataValidationError", "Problem", "ReadOptions", "CURRENCY_TEXT",
    "parse_numbers", "parse_dates", "RawTable", "read_raw", "read_table", "read_table_info",
    "READERS",
]  # fmt: skip

#: The readers :func:`read_table_info` can use: 'pandas' (the reference, every message), 'duckdb'
#: (the fast path, or a ValueError saying it declined; for tests) and 'auto' (DuckDB, then pandas).
READERS: tuple[str, ...] = ("auto", "duckdb", "pandas")


def read_table_info(
    path: str | Path,
    schema: tuple[Column, ...] | str,
    *,
    reader: str = "pandas",
    keep_unmapped: bool = True,
    **kwargs: Any,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read `path` with `schema` (a name of :data:`SCHEMAS` or columns) into a typed DataFrame
    with canonical column names and its info, or raise one :class:`DataValidationError` listing
    every problem. Keyword arguments (columns, formats, as-of, ...): the fields of
    :class:`ReadOptions` (an unknown name is a TypeError).

    `reader`: one of :data:`READERS`. With 'auto', a clean file is read by DuckDB
    (:func:`helpers.tables.duckdb_reader.read_table_info`, the same table); a file with any
    problem, or a feature DuckDB leaves out, by pandas, whose one error names every problem.
    Without `keep_unmapped` the file's columns outside `schema` are left out (never read into
    memory by DuckDB). Adds ``info["reader"]``: which reader produced the table."""
    if reader not in READERS:
        raise ValueError(f"reader must be 'auto', 'duckdb' or 'pandas', got {reader!r}")
    cols = SCHEMAS[schema] if isinstance(schema, str) else schema
    if reader != "pandas":
        fast = duckdb_reader.read_table_info(path, cols, keep_unmapped=keep_unmapped, **kwargs)
        if fast is not None:
            fast[1]["reader"] = "duckdb"
            return fast
        if reader == "duckdb":
            raise ValueError(f"{Path(path).name}: the DuckDB reader left this file to pandas")
    df, info = pandas_reader.read_table_info(path, cols, **kwargs)
    if not keep_unmapped:
        df = df[[c.name for c in cols if c.name in df.columns]]
    info["reader"] = "pandas"
    return df, info


def read_table(path: str | Path, schema: tuple[Column, ...] | str, **kwargs: Any) -> pd.DataFrame:
    """The table of :func:`read_table_info` without its info."""
    return read_table_info(path, schema, **kwargs)[0]
