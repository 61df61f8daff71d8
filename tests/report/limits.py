"""DuckDB memory limits as DuckDB states them, for the tests of the limits the report sets."""

from __future__ import annotations

import duckdb


def setting(limit: str) -> str:
    """DuckDB's own statement of the memory limit `limit` (e.g. '867MB' -> '826.8 MiB')."""
    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = '{limit}'")
        return con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    finally:
        con.close()


def limit_of(t) -> str:
    """The memory limit of the DuckDB connection of the Ibis table `t`, as DuckDB states it."""
    con = t._find_backend().con
    return con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
