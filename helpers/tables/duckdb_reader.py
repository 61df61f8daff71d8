"""The fast path of :func:`helpers.tables.pandas_reader.read_table_info` for a client's export: DuckDB reads and
parses the file in one columnar pass, with the same rules, and hands over the typed table.

Why: pandas reads every cell as a Python string and parses it (about 114 s and 4.6 GB for a
10-million-row export); DuckDB reads, trims, parses and checks the same file in a few seconds with
a fraction of the memory (issue 16).

One definition of the rules: the regular expressions and the order of the steps are those of
:func:`helpers.tables.parse.parse_numbers`, :func:`helpers.tables.parse.parse_dates` and
:func:`helpers.tables.pandas_reader.read_table_info`, written as SQL; ``tests/tables/test_readers.py`` holds both
readers equal on every export of the client-export corpus and on random number texts.

Messages stay the pandas reader's: this path only ever returns a table that reader would return.
When the file has any problem (a value that does not parse, an empty required cell, a duplicated
id, a date after as-of, ...) or uses something this path does not handle (Excel, a zip archive,
an encoding DuckDB does not read, UTC offsets in timestamps, blank lines, category
columns), :func:`read_table_info` returns ``None`` and the caller runs the pandas reader, which names
the file, column, lines and an example value. Bad data is rare and costs one slower read.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from helpers.tables.parse import (
    CURRENCY_TEXT,
    EDGE_RE,
    FALSE,
    SCIENTIFIC,
    SPACES,
    STRIP_RE,
    TRUE,
)  # fmt: skip
from helpers.tables.raw import csv_bytes, csv_lines, decode, match_columns
from helpers.tables.schema import Column, ReadOptions

__all__ = ["read_table_info", "read_into", "number_sql", "CSV_SUFFIXES"]

CSV_SUFFIXES: tuple[str, ...] = (".csv", ".txt", ".tsv", ".csv.gz", ".txt.gz", ".tsv.gz")
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")
#: Encodings DuckDB's CSV reader decodes itself (others go to the pandas reader).
_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8"}
#: What Python's str.strip() removes (str.isspace), as a regular expression for both ends.
_STRIP = STRIP_RE
#: DuckDB's stored time types :func:`_read` takes as they are (cast, never through their text).
_STORED_TIMES = frozenset(
    {"DATE", "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMP WITH TIME ZONE"}
)
#: A text with whitespace at either end: only those are stripped (:func:`_stripped`).
_EDGE = EDGE_RE


def _stripped(text: str) -> str:
    """SQL of the text expression `text` without whitespace at its ends (as ``str.strip()``):
    the replacement runs only on the texts that have some (a match test makes no copy), the
    others are taken as they are. Per row this was a fifth of the CSV's typing; the rows of a
    client's export rarely carry blanks."""
    return (
        f"(CASE WHEN regexp_matches({text}, {_lit(_EDGE)}) "
        f"THEN regexp_replace({text}, {_lit(_STRIP)}, '', 'g') ELSE {text} END)"
    )


_OFFSET_TAIL = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$"
PAREN = r"\(.*\)"
_ISO = r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?"


def _lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def number_sql(
    s: str,
    decimal: str = ".",
    thousands: str | None = None,
    currency: str | None = None,
    check_ambiguous: bool = True,
) -> tuple[str, str, str]:
    """SQL for :func:`helpers.tables.parse.parse_numbers` on the text expression `s` (already trimmed):
    ``(value, not_numeric, ambiguous)``, the same regular expressions in the same order."""
    d = decimal
    o = "," if d == "." else "."
    x = f"replace(coalesce({s}, ''), '\u2212', '-')"
    x = f"regexp_replace({x}, {_lit(SPACES)}, '', 'g')"
    if currency:
        signs = sorted(CURRENCY_TEXT.get(currency.upper(), ()) + (currency,), key=len, reverse=True)
        x = f"regexp_replace({x}, {_lit('|'.join(re.escape(v) for v in signs))}, '', 'g')"
    paren = f"regexp_full_match({x}, {_lit(PAREN)})"
    x = f"(CASE WHEN {paren} THEN {x}[2:-2] ELSE {x} END)"
    neg = f"({paren} OR starts_with({x}, '-'))"
    body = f"regexp_replace({x}, '^[+-]', '')"
    de, oe = re.escape(d), re.escape(o)
    plain_re = "\\d+(?:" + de + "\\d+)?|" + de + "\\d+"
    plain = f"regexp_full_match({body}, {_lit(plain_re)})"
    t = thousands if thousands is not None and not re.fullmatch(SPACES, thousands) else None
    ambiguous = "false"
    if t is not None:
        grouped_re = "\\d{1,3}(?:" + re.escape(t) + "\\d{3})+(?:" + de + "\\d+)?"
        grouped = f"regexp_full_match({body}, {_lit(grouped_re)})"
        ok = f"({plain} OR {grouped})"
        clean = f"(CASE WHEN {grouped} THEN replace({body}, {_lit(t)}, '') ELSE {body} END)"
    else:
        grouped_re = "\\d{1,3}(?:" + oe + "\\d{3})+" + de + "\\d+|\\d{1,3}(?:" + oe + "\\d{3}){2,}"
        grouped_o = f"regexp_full_match({body}, {_lit(grouped_re)})"
        ok = f"({plain} OR {grouped_o})"
        clean = f"(CASE WHEN {grouped_o} THEN replace({body}, {_lit(o)}, '') ELSE {body} END)"
        if thousands is None:
            amb_o = "[1-9]\\d{0,2}" + oe + "\\d{3}"
            ambiguous = f"regexp_full_match({body}, {_lit(amb_o)})"
            if check_ambiguous:
                amb_d = "[1-9]\\d{0,2}(?:" + de + "\\d{3})+"
                ambiguous += f" OR regexp_full_match({body}, {_lit(amb_d)})"
            ambiguous = f"({ambiguous})"
            ok = f"({ok} AND NOT {ambiguous})"
    clean = f"replace({clean}, {_lit(d)}, '.')"
    magnitude = f"(CASE WHEN {ok} THEN TRY_CAST({clean} AS DOUBLE) END)"
    empty = f"(coalesce({s}, '') = '')"
    value = f"(CASE WHEN {empty} THEN NULL WHEN {neg} THEN -{magnitude} ELSE {magnitude} END)"
    bad = f"(NOT {ok} AND NOT {ambiguous} AND NOT {empty})"
    return value, bad, f"({ambiguous} AND NOT {empty})"


def _date_sql(s: str, date_format: str | None) -> str:
    """SQL for :func:`helpers.tables.parse.parse_dates` without UTC offsets (those go to pandas)."""
    if date_format:
        fmt = re.sub(r"\s*%[zZ]", "", date_format)
        return f"try_strptime({s}, {_lit(fmt)})::TIMESTAMP"
    return f"(CASE WHEN regexp_full_match({s}, {_lit(_ISO)}) THEN TRY_CAST({s} AS TIMESTAMP) END)"


def _clashing(names: list[str]) -> bool:
    """Header names DuckDB would rename: the same name twice (pandas names the problem), or two
    names that differ only in case (DuckDB's names ignore case; pandas reads them as they are)."""
    folded = [str(n).strip().lstrip("\ufeff").casefold() for n in names]
    return len(set(folded)) != len(folded)


def _csv_header(path: Path, delimiter: str) -> list[str]:
    """The header record of a CSV file (the first record that is not blank), read with the csv
    module."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as f:
        for record in csv.reader(f, delimiter=delimiter, skipinitialspace=True):
            if len(record) > 1 or (record and record[0].strip()):
                return record
    return []


def _source(con: duckdb.DuckDBPyConnection, path: Path, delimiter: str, encoding: str) -> bool:
    """Register the file as the view ``raw`` (text columns for a CSV); False if not handled."""
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(path).names
        except (OSError, ValueError):  # pyarrow's errors for a broken file: pandas names it
            return False
        if _clashing(names):
            return False
        con.execute(f"CREATE VIEW raw AS SELECT * FROM read_parquet({_lit(str(path))})")
        return True
    if not name.endswith(CSV_SUFFIXES) or encoding.lower() not in _ENCODINGS:
        return False
    head = path.open("rb").read(4) if not name.endswith(".gz") else b""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False  # UTF-16
    try:
        if _clashing(_csv_header(path, delimiter)):
            return False
    except (OSError, EOFError, csv.Error):  # a broken gzip file, ...: the pandas reader names it
        return False
    con.execute(
        f"""CREATE VIEW raw AS SELECT * FROM read_csv({_lit(str(path))}, all_varchar = true,
            header = true, delim = {_lit(delimiter)}, quote = '"', escape = '"',
            strict_mode = true, null_padding = false, skip = 0, encoding = 'utf-8',
            normalize_names = false)"""
    )
    return True


def read_table_info(
    path: str | Path,
    cols: tuple[Column, ...],
    *,
    positions: Callable[[], np.ndarray] | None = None,
    keep_unmapped: bool = True,
    **options: Any,
) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The table :func:`helpers.tables.pandas_reader.read_table_info` returns for this file, read by DuckDB; or
    ``None`` when the file has a problem or a feature this path leaves to the pandas reader.
    `options`: the fields of :class:`helpers.tables.schema.ReadOptions`."""
    o = ReadOptions(**options)
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0 or o.dayfirst:
        return None
    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = true; SET enable_progress_bar = false")
        if not _source(con, path, o.delimiter, o.encoding):
            return None
        types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE raw)").fetchall())
    except duckdb.Error:
        return None
    try:
        return _read(con, path, types, cols, o, positions, keep_unmapped)
    except duckdb.Error:
        return None
    finally:
        con.close()


def read_into(
    con: duckdb.DuckDBPyConnection,
    name: str,
    path: str | Path,
    cols: tuple[Column, ...],
    *,
    cells: bool = False,
    **options: Any,
) -> dict[str, Any] | None:
    """The table :func:`read_table_info` returns (without unmapped columns; `options` as there), made
    `name` in `con` instead of being handed to Python: DuckDB parses and checks the file with the
    same SQL and the typed table stays in the engine (issue 31: the report's rules and
    aggregations then run on it there). It is a temporary view: over a Parquet file itself,
    checked in one scan (:func:`_checked_view`), or over the typed cells written once as Parquet
    beside `con`'s database file; in an in-memory database, a table (:func:`_read_into`). A CSV is scanned once per parsed column's
    distinct values and once for the table; with `cells` its text cells are first copied into DuckDB
    (one read of the file, spilled to disk above the connection's memory limit; slower on a
    local file, for a file that is expensive to read twice). Returns the info (``labels``, ``unit``,
    ``offsets``; no ``positions``: rows are named by the pandas reader when the file has a
    problem), or ``None`` (nothing left in `con`) where :func:`read_table_info` would."""
    o = ReadOptions(**options)
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0 or o.dayfirst:
        return None
    con.execute("SET enable_progress_bar = false")
    try:
        if not _source(con, path, o.delimiter, o.encoding):
            return None
        if cells and path.name.lower().endswith(CSV_SUFFIXES):  # one pass over the file's bytes
            con.execute("CREATE TEMP TABLE _raw_cells AS SELECT * FROM raw")
            con.execute("CREATE OR REPLACE TEMP VIEW raw AS SELECT * FROM _raw_cells")
        types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE raw)").fetchall())
        info = _read(con, path, types, cols, o, None, False, into=name)
    except duckdb.Error:
        info = None
    if info is None:  # the view or the table (_read_into)
        kinds = "SELECT 1 FROM duckdb_views() WHERE temporary AND view_name = ?"
        if con.execute(kinds, [name]).fetchall():
            con.execute(f"DROP VIEW {_ident(name)}")
        con.execute(f"DROP TABLE IF EXISTS {_ident(name)}")
    con.execute("DROP VIEW IF EXISTS typed; DROP VIEW IF EXISTS raw")
    con.execute("DROP TABLE IF EXISTS _raw_cells")
    return info


def _csv_positions(path: Path, encoding: str, delimiter: str, n: int) -> np.ndarray:
    """Editor line numbers of the data rows, as the pandas reader counts them (for messages)."""
    return csv_lines(decode(csv_bytes(path), encoding, path.name), delimiter, n)


def _read(con, path, types, cols, o: ReadOptions, positions, keep_unmapped, into=None):
    file_cols = {str(c).strip().lstrip("\ufeff"): c for c in types}
    if len(file_cols) != len(types):
        return None
    mapped = {k: str(v) for k, v in (o.columns or {}).items()}
    found, ambiguous = match_columns(mapped, list(file_cols), path.name)
    if ambiguous:
        return None
    mapped.update(found)  # as the pandas reader: case and surrounding spaces, when unambiguous
    used = set(mapped.values())
    source: dict[str, str] = {}  # canonical (or kept) name -> file column
    for canon, theirs in mapped.items():
        if theirs in file_cols:
            source[canon] = theirs
    extra: list[str] = []
    for c in file_cols:
        if c in used:
            continue
        name = f"{c} (unmapped)" if c in mapped or c in source else c
        source[name] = c
        extra.append(name)
    if any(c.required and c.name not in source for c in cols):
        return None  # the pandas reader names the missing column and suggests the nearest
    now = (
        pd.Timestamp(o.as_of) + pd.Timedelta(days=1) if o.as_of is not None else pd.Timestamp.now()
    )
    strip = _lit(_STRIP)
    select: list[str] = []
    lookups: dict[str, tuple[pa.Array, pa.Array]] = {}  # column -> (raw values, parsed values)
    # per-row columns trimmed once, as str.strip() does: (name, text, stored), :func:`_inner_sql`
    inner: list[tuple[str, str, bool]] = []
    checks: list[str] = []  # per row: any true sends the file to the pandas reader
    if any(types[file_cols[c]] == "VARCHAR" for c in file_cols):
        # a blank line: pandas skips it, DuckDB reads a row of nulls
        checks.append(" AND ".join(f"raw.{_ident(file_cols[c])} IS NULL" for c in file_cols))
        # a NUL byte in any text field (the pandas reader names the column)
        checks += [f"contains(raw.{_ident(file_cols[c])}, chr(0))" for c in file_cols
                   if types[file_cols[c]] == "VARCHAR"]  # fmt: skip
    out_cols: list[str] = []
    joins: list[str] = []  # with `into`: the parsed values of the distinct texts
    unique: list[str] = []
    int_cols: list[str] = []
    auto_ids: list[str] = []
    for i, c in enumerate(cols):
        if c.name not in source:
            continue
        kind = types[file_cols[source[c.name]]]
        typed = kind != "VARCHAR"
        # (a stored timestamp needs no parsing: it is cast row by row; so are dates with a
        # date_format: strptime per row is cheaper than looking up a million distinct minutes)
        parsed = c.kind in ("money", "float", "int", "bool") or (
            c.kind == "datetime" and not typed and not o.date_format
        )
        # parsed columns repeat values (ISO dates, prices): parse each distinct value once
        # a stored timestamp or date is taken as it is, not through its text (that round trip
        # cost 0.6-1.1 s of the typed table's 4-5 s on 10M Parquet rows, and it cut
        # nanoseconds, which the pandas reader keeps)
        stored = c.kind == "datetime" and kind in _STORED_TIMES
        if parsed:
            raw = "k"
            s = f"regexp_replace(CAST(k AS VARCHAR), {strip}, '', 'g')"
        else:
            raw = s = f"raw.t{i}"
            col = _ident(file_cols[source[c.name]])
            inner.append((f"t{i}", col if stored else f"CAST({col} AS VARCHAR)", stored))
        empty = f"({raw} IS NULL)" if stored else f"({raw} IS NULL OR {s} = '')"
        q = _ident(c.name)
        col_checks: list[str] = []
        if not c.nullable and c.kind not in ("text", "bool"):
            col_checks.append(empty)
        if c.kind == "datetime":
            if typed:
                if not kind.startswith("TIMESTAMP") and kind != "DATE":
                    return None
                if "TIME ZONE" in kind or kind.startswith("TIMESTAMPTZ"):
                    if not o.timezone:
                        return None  # pandas keeps each value's own wall clock
                    val = f"timezone({_lit(o.timezone)}, CAST({raw} AS TIMESTAMPTZ))"
                elif kind == "TIMESTAMP_NS":  # kept to the nanosecond, as pandas keeps it
                    val = raw
                else:
                    val = f"CAST({raw} AS TIMESTAMP)"
            else:
                col_checks.append(f"regexp_matches({s}, {_lit(_OFFSET_TAIL)})")
                val = _date_sql(s, o.date_format)
            col_checks.append(f"({val} IS NULL AND NOT {empty})")
            if c.not_in_future:
                col_checks.append(f"{val} >= TIMESTAMP {_lit(str(now))}")
        elif c.kind in ("money", "float", "int"):
            if typed and kind not in ("DOUBLE", "FLOAT", "BIGINT", "INTEGER", "SMALLINT",
                                      "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER"):  # fmt: skip
                return None
            # a typed number goes through the same text rules, as the pandas reader does
            val, bad, ambiguous = number_sql(
                s,
                o.decimal,
                o.thousands,
                o.currency if c.kind == "money" else None,
                c.kind != "float",
            )
            col_checks += [bad, ambiguous]
            if c.kind == "money" and not c.allow_negative:
                col_checks.append(f"{val} < 0")
            if c.kind == "int":
                col_checks.append(f"({val} IS NOT NULL AND {val} <> round({val}))")
                int_cols.append(c.name)
            if c.min is not None:
                col_checks.append(f"{val} < {c.min!r}")
            if c.max is not None:
                col_checks.append(f"{val} > {c.max!r}")
        elif c.kind == "id":
            if typed and kind not in ("VARCHAR", "BIGINT", "INTEGER", "HUGEINT", "UBIGINT"):
                return None
            col_checks.append(f"regexp_full_match({s}, {_lit(SCIENTIFIC)})")
            if o.ids == "integer":
                col_checks.append(
                    f"(NOT {empty} AND NOT regexp_full_match({s}, '[+-]?\\d{{1,18}}'))"
                )
                val = f"(CASE WHEN {empty} THEN NULL ELSE CAST({s} AS BIGINT) END)"
                int_cols.append(c.name)
            else:
                val = f"(CASE WHEN {empty} THEN NULL ELSE {s} END)"
                if o.ids == "auto":
                    auto_ids.append(c.name)
            if c.unique:
                unique.append(c.name)
        elif c.kind == "text":
            if c.unique:
                return None
            val = (
                f"(CASE WHEN {empty} THEN NULL ELSE {s} END)"
                if c.nullable
                else f"coalesce({s}, '')"
            )
        elif c.kind == "bool":  # the pandas reader's rule: TRUE or FALSE texts, empty is false
            if typed and kind != "BOOLEAN":
                return None
            low = f"lower({s})"
            words = ", ".join(_lit(w) for w in sorted(TRUE | FALSE))
            col_checks.append(f"(NOT {empty} AND {low} NOT IN ({words}))")
            val = f"coalesce({low} IN ({', '.join(_lit(w) for w in sorted(TRUE))}), false)"
        else:  # category: rare in a client's export
            return None
        if parsed:
            lk, col = f"lk{i}", _ident(file_cols[source[c.name]])
            any_bad = " OR ".join(f"coalesce({x}, false)" for x in col_checks) or "false"
            con.execute(
                f"CREATE TEMP TABLE {lk} AS SELECT k, {val} AS v, ({any_bad}) AS bad FROM "
                f"(SELECT DISTINCT {col} AS k FROM raw)"
            )
            if con.execute(f"SELECT count_if(bad) FROM {lk}").fetchall()[0][0]:
                return None
            if into:  # in the engine: each row joined to its parsed value
                joins.append(f"LEFT JOIN {lk} ON raw.{col} = {lk}.k")
                select.append(f"{lk}.v AS {q}")
            elif kind == "VARCHAR":
                # the distinct texts become an ENUM type: each row goes out as its code, the index
                # into the sorted distinct values (DuckDB's hash lookup, streamed), and Arrow takes
                # the parsed value at that code (see below); a null stays null (its parse is null)
                con.execute(
                    f"CREATE TYPE e{i} AS ENUM (SELECT k FROM {lk} WHERE k IS NOT NULL ORDER BY k)"
                )
                select.append(f"enum_code(CAST(raw.{col} AS e{i})) AS {q}")
                v = con.sql(f"SELECT v FROM {lk} WHERE k IS NOT NULL ORDER BY k").to_arrow_table()
                lookups[c.name] = (None, v.column("v").combine_chunks())
            else:
                # a typed column: the row's raw value goes out; Arrow finds its parsed value
                select.append(f"raw.{col} AS {q}")
                kv = con.sql(f"SELECT k, v FROM {lk}").to_arrow_table()
                lookups[c.name] = (kv.column("k").combine_chunks(), kv.column("v").combine_chunks())
        else:
            checks += col_checks
            select.append(f"{val} AS {q}")
        out_cols.append(c.name)
    for name in extra if keep_unmapped else []:
        if name in out_cols:
            continue
        raw = f"raw.{_ident(file_cols[source[name]])}"
        if types[file_cols[source[name]]] != "VARCHAR":
            return None
        select.append(f"ltrim(coalesce({raw}, ''), ' ') AS {_ident(name)}")
        out_cols.append(name)
    any_bad = " OR ".join(f"coalesce({x}, false)" for x in checks) or "false"
    if into:
        return _read_into(con, into, path, select, inner, joins, any_bad, cols, mapped, unique,
                          auto_ids, int_cols)  # fmt: skip
    con.execute(
        f"CREATE TEMP VIEW typed AS SELECT {', '.join(select)}, ({any_bad}) AS _bad "
        f"FROM (SELECT {_inner_sql(inner)}* FROM raw) AS raw"
    )
    # a projection of the file, streamed in the file's order (preserve_insertion_order); a file
    # with a problem stops at its first bad batch
    batches = []
    for batch in con.sql("SELECT * FROM typed").to_arrow_reader(1 << 20):
        if pc.any(batch.column("_bad")).as_py():
            return None
        arrays = {}
        for name in batch.schema.names[:-1]:
            col = batch.column(name)
            if name in lookups:  # the parsed value of each distinct raw value
                keys, values = lookups[name]
                if keys is None:  # an ENUM code: the index of the raw text among the values
                    col = pc.take(values, col)
                else:
                    col = pc.take(values, pc.index_in(col, value_set=keys, skip_nulls=False))
            arrays[name] = col
        batches.append(pa.RecordBatch.from_pydict(arrays))
    if not batches:
        return None
    table = pa.Table.from_batches(batches)
    del batches
    for name in unique:  # duplicated ids (blank ones are the empty check's)
        ids_table = table.select([name])  # noqa: F841 (scanned by DuckDB below)
        q = _ident(name)
        if con.execute(f"SELECT count({q}) <> count(DISTINCT {q}) FROM ids_table").fetchall()[0][0]:
            return None
    for name in auto_ids:  # 'auto': ids written as plain integers become integers
        col = table[name].drop_null()
        if pc.all(pc.match_substring_regex(col, "^(?:-?[1-9]\\d{0,17}|0)$")).as_py() is not False:
            int_cols.append(name)
    # text stays in Arrow memory (pandas' string[pyarrow]): a tenth of the memory of Python strings
    text = pd.StringDtype("pyarrow")
    df = table.to_pandas(
        split_blocks=True, self_destruct=True,
        types_mapper={pa.string(): text, pa.large_string(): text}.get,
    )  # fmt: skip
    del table
    nullable = {c.name: c.nullable for c in cols}
    for c in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[c]):
            df[c] = df[c].astype("datetime64[ns]")
        elif c in int_cols:  # as the pandas reader: Int64, int64 when required and complete
            v = (
                df[c].astype("Int64")
                if df[c].dtype != object
                else pd.to_numeric(df[c]).astype("Int64")
            )
            df[c] = v.astype("int64") if not nullable.get(c, True) and not v.isna().any() else v
    labels = {
        c.name: (f"'{mapped[c.name]}' ({c.name})" if mapped.get(c.name, c.name) != c.name
                 else f"'{c.name}'")
        for c in cols
    }  # fmt: skip
    unit = "row" if path.name.lower().endswith(PARQUET_SUFFIXES) else "line"
    if positions is None and unit == "row":
        positions = lambda: np.arange(len(df)) + 1  # noqa: E731
    elif positions is None:
        positions = lambda: _csv_positions(path, o.encoding, o.delimiter, len(df))  # noqa: E731
    return df, {"positions": positions, "unit": unit, "labels": labels, "offsets": 0}


def _labels(cols: tuple[Column, ...], mapped: dict[str, str]) -> dict[str, str]:
    return {
        c.name: (f"'{mapped[c.name]}' ({c.name})" if mapped.get(c.name, c.name) != c.name
                 else f"'{c.name}'")
        for c in cols
    }  # fmt: skip


def _inner_sql(inner: list[tuple[str, str, bool]], plain: frozenset[str] = frozenset()) -> str:
    """The per-row columns of :func:`_read` as a SELECT list's head (each ``text AS name, ``):
    a stored time as it is, a text without blanks at its ends (``str.strip()``,
    :func:`_stripped`) -- or as it is when its name is in `plain` (no value has any)."""
    return "".join(
        f"{text if stored or name in plain else _stripped(text)} AS {name}, "
        for name, text, stored in inner
    )


def _checked_view(con, q, path, select, inner, joins, any_bad) -> tuple[int, str] | None:
    """:func:`_read_into`'s typed table of a Parquet file as the temporary view `q` over the
    file, after one scan that counts its rows, its bad rows and, per text column, the values with
    blanks at their ends (the regular expression's match runs once per value there, its
    replacement only on those). Returns (rows, the view's query), or ``None`` (no view made) when
    some row is bad or there are none.

    The view takes a text column as it is when no value has blank ends, so the report's later
    scans of the file (the ids' uniqueness, the mapping's rules, the hand-over) read it as
    Parquet columns. Writing the typed table into the reader's database file instead cost about
    2 of the 3.4 s of the typed table's query on 10M Parquet rows (the query's checks alone
    1.3 s; benchmarks/README.md, issue 31)."""
    texts = [(name, text) for name, text, stored in inner if not stored]
    flags = "".join(f"regexp_matches({text}, {_lit(_EDGE)}) AS _e{name}, " for name, text in texts)
    trimmed = "".join(
        f"(CASE WHEN _e{name} THEN regexp_replace({text}, {_lit(_STRIP)}, '', 'g') "
        f"ELSE {text} END) AS {name}, "
        for name, text in texts
    )
    kept = "".join(f"{text} AS {name}, " for name, text, stored in inner if stored)
    counts = "".join(f", count_if(_e{name})" for name, _ in texts)
    row = con.execute(
        f"SELECT count(*), count_if(_bad){counts} FROM (SELECT ({any_bad}) AS _bad"
        f"{''.join(f', raw._e{name}' for name, _ in texts)} "
        f"FROM (SELECT {trimmed}{kept}* FROM (SELECT {flags}* FROM raw)) AS raw "
        f"{' '.join(joins)})"
    ).fetchall()[0]
    rows, bad = int(row[0]), int(row[1])
    if bad or not rows:
        return None
    plain = frozenset(name for (name, _), n in zip(texts, row[2:], strict=True) if not n)
    source = f"(SELECT * FROM read_parquet({_lit(str(path))}))"
    body = (f"SELECT {', '.join(select)} "
            f"FROM (SELECT {_inner_sql(inner, plain)}* FROM {source}) AS raw {' '.join(joins)}")  # fmt: skip
    con.execute(f"CREATE TEMP VIEW {q} AS {body}")
    return rows, body


def _database_folder(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The folder of `con`'s database file; ``None`` for an in-memory database."""
    got = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    return Path(got[0][0]).parent if got and got[0][0] else None


def _read_into(con, into, path, select, inner, joins, any_bad, cols, mapped, unique, auto_ids,
               int_cols) -> dict[str, Any] | None:  # fmt: skip
    """:func:`_read`'s end for :func:`read_into`: the typed table created in the engine, the
    same checks as on the Arrow table (any bad row, duplicated ids, integer ids). The table is
    a temporary view: over a client's Parquet file (:func:`_checked_view`), or over a Parquet
    file written beside `con`'s database file; a table in an in-memory database."""
    q = _ident(into)
    folder = _database_folder(con)
    view = path.name.lower().endswith(PARQUET_SUFFIXES) or folder is not None
    if path.name.lower().endswith(PARQUET_SUFFIXES):
        got = _checked_view(con, q, path, select, inner, joins, any_bad)
        if got is None:
            return None
        rows, body = got
    else:
        typed = (f"SELECT {', '.join(select)}, ({any_bad}) AS _bad "
                 f"FROM (SELECT {_inner_sql(inner)}* FROM raw) AS raw {' '.join(joins)}")  # fmt: skip
        if folder is None:  # an in-memory database: the table
            con.execute(f"CREATE TABLE {q} AS {typed}")
            source = q
        else:
            # a Parquet file beside the database file (removed with its folder), the table a
            # view over it: DuckDB wrote 10M rows of a CSV as Parquet in 4.3 s against 6.6 s
            # into its own table (benchmarks/README.md, issue 31), and the later scans read
            # it as they read a client's Parquet file
            out = folder / f"{into}.parquet"
            con.execute(f"COPY ({typed}) TO {_lit(str(out))} (FORMAT parquet)")
            source = f"read_parquet({_lit(str(out))})"
        rows, bad = con.execute(f"SELECT count(*), count_if(_bad) FROM {source}").fetchall()[0]
        if bad or not rows:
            if folder is not None:
                out.unlink(missing_ok=True)
            return None
        if folder is None:
            con.execute(f"ALTER TABLE {q} DROP COLUMN _bad")
        else:
            body = f"SELECT * EXCLUDE (_bad) FROM {source}"
            con.execute(f"CREATE TEMP VIEW {q} AS {body}")
    for name in unique:  # duplicated ids (blank ones are the empty check's)
        c = _ident(name)
        # as many distinct 64-bit hashes as ids: no id twice (at 10M order ids 0.75 s against
        # 1.0 s for the distinct texts); otherwise the texts decide (a collision or a repeat)
        hashed = f"SELECT count({c}) <> count(DISTINCT hash({c})) FROM {q}"
        exact = f"SELECT count({c}) <> count(DISTINCT {c}) FROM {q}"
        if con.execute(hashed).fetchall()[0][0] and con.execute(exact).fetchall()[0][0]:
            return None
    for name in auto_ids:  # 'auto': ids written as plain integers become integers
        c = _ident(name)
        plain = con.execute(
            f"SELECT bool_and(regexp_full_match({c}, '-?[1-9]\\d{{0,17}}|0')) FROM {q}"
        ).fetchall()[0][0]
        if plain is not False:
            int_cols.append(name)
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {q})").fetchall())
    wide = [name for name in int_cols if types.get(name) != "BIGINT"]
    if wide and view:  # the view over the view, those columns cast
        casts = ", ".join(f"CAST({_ident(n)} AS BIGINT) AS {_ident(n)}" for n in wide)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {q} AS SELECT * REPLACE ({casts}) FROM ({body})")
    for name in wide if not view else []:
        con.execute(f"ALTER TABLE {q} ALTER {_ident(name)} SET DATA TYPE BIGINT")
    unit = "row" if path.name.lower().endswith(PARQUET_SUFFIXES) else "line"
    return {"unit": unit, "labels": _labels(cols, mapped), "offsets": 0, "rows": int(rows)}
