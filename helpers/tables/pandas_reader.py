"""The pandas reader: any table file (CSV, compressed CSV, Excel, Parquet; :mod:`helpers.tables.raw`)
into a typed DataFrame with canonical column names, or one :class:`DataValidationError` naming every
problem (file, column, rows, lines, an example; :mod:`helpers.tables.schema`).

The reference for the rules: :mod:`helpers.tables.duckdb_reader` returns the same table for a clean
file, faster, and leaves every file with a problem to this reader for its messages.
"""

from __future__ import annotations

import difflib
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.tables.parse import (
    FALSE,
    SCIENTIFIC,
    TRUE,
    by_value,
    parse_dates,
    parse_numbers,
    sniff_delimiter,
    typed_dates,
)
from helpers.tables.raw import match_columns, read_raw
from helpers.tables.schema import (
    SCHEMAS,
    Column,
    DataValidationError,
    Problem,
    ReadOptions,
    column_problem,
)

__all__ = ["read_table_info"]


def read_table_info(
    path: str | Path,
    schema: tuple[Column, ...] | str,
    **options: Any,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a CSV (also ``.csv.gz``, ``.zip``), Excel or Parquet file (see :mod:`helpers.tables.raw`)
    into a typed DataFrame with canonical column names, or raise one :class:`DataValidationError`
    listing every problem.

    `options`: how the file is written, the fields of :class:`ReadOptions` (columns, formats,
    as-of, ids, ...). Messages name the file's column with the canonical one in brackets
    (``column 'Beløp' (amount)``); a file column that is not mapped but has a canonical name is
    kept as ``"<name> (unmapped)"``. Offsets are handled by :func:`parse_dates` with the
    timezone; money may carry currency text (:func:`parse_numbers`). Identifiers in scientific
    notation (``1.23457E+11``, digits lost by Excel) are refused.

    Returns (table, info); info holds ``positions`` (a function giving the line or row number of
    each row, for messages; computed only when asked),
    ``unit`` ('line' or 'row'), ``labels`` (canonical name -> message label) and ``offsets``
    (rows whose timestamps carried a UTC offset).
    """
    o = ReadOptions(**options)
    path = Path(path)
    file = path.name
    cols = SCHEMAS[schema] if isinstance(schema, str) else schema
    table = read_raw(path, delimiter=o.delimiter, encoding=o.encoding, sheet=o.sheet)
    raw = table.frame
    mapped = {k: str(v) for k, v in (o.columns or {}).items()}
    # a mapped name that differs from the header only in case or surrounding spaces: the header's
    found, ambiguous = match_columns(mapped, list(raw.columns), file)
    if ambiguous:
        raise DataValidationError(ambiguous)
    mapped.update(found)
    used = set(mapped.values())
    renamed: dict[str, pd.Series] = {}
    typed: dict[str, pd.Series] = {}
    for canon, theirs in mapped.items():
        if theirs in raw.columns:
            renamed[canon] = raw[theirs]
            if theirs in table.typed:
                typed[canon] = table.typed[theirs]
    for c in raw.columns:
        if c in used:
            continue
        name = f"{c} (unmapped)" if c in mapped or c in renamed else c
        renamed[name] = raw[c]
        if c in table.typed:
            typed[name] = table.typed[c]
    labels = {c.name: (f"'{mapped[c.name]}' ({c.name})" if mapped.get(c.name, c.name) != c.name
                       else f"'{c.name}'") for c in cols}  # fmt: skip
    raw = pd.DataFrame(renamed, index=raw.index)
    problems: list[str] = []
    missing = [c.name for c in cols if c.required and c.name not in raw.columns]
    if missing:
        other = sniff_delimiter(table.header, o.delimiter) if table.unit == "line" else None
        if other is not None:
            raise DataValidationError(
                [
                    f"{file}: the header has no {o.delimiter!r} but has {other!r}; the file looks delimited by {other!r}, not {o.delimiter!r} (set the delimiter)"
                ]
            )
        file_columns = [c for c in table.frame.columns]
        for name in missing:
            wanted = mapped.get(name, name)
            near = difflib.get_close_matches(wanted, file_columns, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            problems.append(
                Problem(
                    f"{file}: required column '{wanted}'{f' (for {name})' if wanted != name else ''} is missing; the file has {file_columns}{hint}",
                    file=file,
                    column=name,
                    code="missing_column",
                )  # fmt: skip
            )
        raise DataValidationError(problems)
    if raw.empty:
        raise DataValidationError([f"{file}: has a header but no data rows"])

    def problem(name: str, mask: pd.Series, s: pd.Series, what: str, code: str) -> Problem:
        return column_problem(file, labels.get(name, name), mask, s, what, table.positions(),
                              table.unit, column=name, code=code)  # fmt: skip

    now = (
        pd.Timestamp(o.as_of) + pd.Timedelta(days=1) if o.as_of is not None else pd.Timestamp.now()
    )
    out = {}
    offsets = 0
    for c in cols:
        if c.name not in raw.columns:
            continue
        s = raw[c.name].astype(str).str.strip()
        empty = s.eq("")
        if not c.nullable and c.kind not in ("text", "bool") and empty.any():
            problems.append(problem(c.name, empty, s, "empty", "empty"))
        if c.kind == "datetime":
            if c.name in typed:
                val = typed_dates(typed[c.name], o.timezone)
                bad = val.isna() & ~empty
            else:
                parse = partial(
                    parse_dates, date_format=o.date_format, dayfirst=o.dayfirst, timezone=o.timezone
                )
                val, bad, has_off = by_value(s, parse)
                offsets += int(has_off.sum())
            if bad.any():
                fmt = o.date_format or "ISO 8601, e.g. 2025-06-30"
                problems.append(
                    problem(
                        c.name, bad, s, f"unparsable as dates in the format {fmt}", "unparsable"
                    )
                )
            if c.not_in_future:
                future = val >= now
                if future.any():
                    when = (
                        f"after the as-of date {pd.Timestamp(o.as_of).date()}"
                        if o.as_of is not None
                        else "in the future"
                    )
                    problems.append(problem(c.name, future, s, when, "after_as_of"))
        elif c.kind in ("money", "float", "int"):
            parse = partial(
                parse_numbers, decimal=o.decimal, thousands=o.thousands,
                currency=o.currency if c.kind == "money" else None, check_ambiguous=c.kind != "float",
            )  # fmt: skip
            val, bad, ambiguous = by_value(s, parse)
            if bad.any():
                problems.append(
                    problem(
                        c.name,
                        bad,
                        s,
                        f"not numeric (decimal separator {o.decimal!r}"
                        + (
                            f", currency {o.currency})" if o.currency and c.kind == "money" else ")"
                        ),
                        "not_numeric",
                    )  # fmt: skip
                )
            if ambiguous.any():
                other = "," if o.decimal == "." else "."
                problems.append(
                    problem(
                        c.name, ambiguous, s,
                        f"ambiguous: a whole number with a thousands separator or a decimal "
                        f"number? The mapping has decimal {o.decimal!r} and no 'thousands': set "
                        f"thousands: {other!r} if {o.decimal!r} is the decimal point, or decimal: "
                        f"{other!r} and thousands: {o.decimal!r} if {o.decimal!r} groups thousands",
                        "ambiguous",
                    )
                )  # fmt: skip
            if c.kind == "money" and not c.allow_negative and (val < 0).any():
                problems.append(problem(c.name, val < 0, s, "negative", "negative"))
            if c.kind == "int":
                frac = val.notna() & (val != np.round(val))
                if frac.any():
                    problems.append(problem(c.name, frac, s, "not whole numbers", "not_whole"))
                val = val.round().astype("Int64")
                if not c.nullable and not val.isna().any():
                    val = val.astype("int64")
            if c.min is not None and (val < c.min).any():
                problems.append(
                    problem(c.name, (val < c.min).fillna(False), s, f"below {c.min:g}", "below_min")
                )
            if c.max is not None and (val > c.max).any():
                problems.append(
                    problem(c.name, (val > c.max).fillna(False), s, f"above {c.max:g}", "above_max")
                )
        elif c.kind == "bool":
            low = s.str.lower()
            bad = ~low.isin(TRUE | FALSE) & ~empty
            if bad.any():
                problems.append(problem(c.name, bad, s, "not true/false", "not_bool"))
            val = low.isin(TRUE)
        elif c.kind == "id":
            sci = s.str.fullmatch(SCIENTIFIC)
            if sci.any():
                problems.append(
                    problem(
                        c.name, sci, s,
                        "in scientific notation: the export lost digits of these ids (Excel "
                        "shortens long numbers); export the column as text", "scientific",
                    )
                )  # fmt: skip
            if o.ids == "integer":
                num = pd.to_numeric(s.where(~empty & ~sci), errors="coerce")
                bad = (num.isna() | (num != np.round(num))) & ~empty & ~sci
                if bad.any():
                    problems.append(
                        problem(
                            c.name,
                            bad,
                            s,
                            "not whole numbers (the mapping says id_type: integer)",
                            "not_whole",
                        )
                    )
                val = num.round().astype("Int64")
            elif (
                o.ids == "auto"
                and s.where(~empty).dropna().str.fullmatch(r"-?[1-9]\d{0,17}|0").all()
            ):
                val = pd.to_numeric(s.where(~empty)).astype("Int64")
            else:
                val = s.where(~empty)
            if val.dtype == "Int64" and not c.nullable and not val.isna().any():
                val = val.astype("int64")
        elif c.kind == "category":
            bad = ~s.isin(c.values) & ~empty
            if bad.any():
                problems.append(
                    problem(c.name, bad, s, f"not one of {list(c.values)}", "not_in_values")
                )
            val = pd.Categorical(s.where(~empty), categories=list(c.values))
        else:
            val = s.where(~empty) if c.nullable else s
        if c.unique:
            key = pd.Series(val, index=s.index) if c.kind == "id" else s
            dup = key.duplicated(keep=False) & ~empty
            if dup.any():
                problems.append(
                    problem(
                        c.name, dup, s,
                        f"duplicated ({int(key[dup].nunique())} distinct ids appear more than once)",
                        "duplicated",
                    )
                )  # fmt: skip
        out[c.name] = val
    if problems:
        raise DataValidationError(problems)
    extra = [c for c in raw.columns if c not in out]
    df = pd.DataFrame(out)
    for c in extra:  # keep the client's other columns, as text
        df[c] = raw[c]
    info = {"positions": table.positions, "unit": table.unit, "labels": labels, "offsets": offsets}
    return df, info
