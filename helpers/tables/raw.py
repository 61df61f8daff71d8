"""Reading a client's export into text columns, whatever the file type: the first step of
:func:`helpers.tables.read_table`.

Supported: ``.csv`` / ``.txt`` / ``.tsv`` (any delimiter, UTF-8, UTF-8 with a byte-order mark,
UTF-16 with a byte-order mark, or the encoding given), the same compressed as ``.gz`` or as the
single file of a ``.zip``, Excel ``.xlsx`` / ``.xlsm`` (a named sheet or the first) and
``.parquet``. Every cell comes back as text (``""`` for empty) so that
:mod:`helpers.tables.pandas_reader` parses every file type with the same rules and messages; cells that the file
already stores as timestamps (Excel dates, Parquet timestamps) are handed over typed in
:attr:`RawTable.typed` so they need no date format.

Row positions are kept for messages: a CSV row is named by the line a text editor shows (the
header is line 1; blank lines and newlines inside quoted cells are counted), an Excel row by its
row number in the sheet, a Parquet row by its position (1 = first).
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.tables.schema import DataValidationError

__all__ = [
    "RawTable", "read_raw", "decode", "csv_bytes", "csv_lines", "csv_problems", "header_problems",
    "match_columns", "zip_members", "EXCEL", "PARQUET",
]  # fmt: skip

EXCEL: tuple[str, ...] = (".xlsx", ".xlsm")
PARQUET: tuple[str, ...] = (".parquet", ".pq")


def _error(problems: list[str]) -> DataValidationError:
    return DataValidationError(problems)


@dataclass
class RawTable:
    """A file's cells as text. ``frame``: one column per file column, str (``""`` if empty);
    ``typed``: columns the file stores as timestamps (datetime64, possibly with a time zone);
    ``unit``: 'line' (CSV) or 'row' (Excel, Parquet); ``header``: the first line (CSV, for
    delimiter sniffing)."""

    frame: pd.DataFrame
    unit: str = "line"
    typed: dict[str, pd.Series] = field(default_factory=dict)
    header: str = ""
    _text: str | None = None
    _delimiter: str = ","
    _positions: np.ndarray | None = None

    def positions(self) -> np.ndarray:
        """The line (CSV) or row (Excel, Parquet) number of each data row, for messages."""
        if self._positions is None:
            self._positions = csv_lines(self._text or "", self._delimiter, len(self.frame))
        return self._positions


def csv_lines(text: str, delimiter: str, n: int) -> np.ndarray:
    """Editor line numbers of the data records of a CSV text: the line each record starts on,
    skipping blank lines as pandas does and counting newlines inside quoted cells."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    starts, previous_end, header_seen = [], 0, False
    for record in reader:
        start = previous_end + 1
        previous_end = reader.line_num
        if not record or all(c == "" for c in record) and len(record) <= 1:
            continue  # a blank line
        if not header_seen:
            header_seen = True
            continue
        starts.append(start)
    out = np.asarray(starts[:n], dtype=np.int64)
    if len(out) < n:  # the csv module and pandas disagreed: fall back to header + position
        out = np.arange(n, dtype=np.int64) + 2
    return out


def _blank(record: list[str]) -> bool:
    """A record pandas skips: an empty line, or one of only spaces and tabs."""
    return len(record) <= 1 and (not record or record[0].strip() == "")


def _lines(numbers: list[int], unit: str = "line") -> str:
    shown = ", ".join(str(n) for n in numbers[:5])
    return f"{unit}{'s' if len(numbers) > 1 else ''} {shown}{', …' if len(numbers) > 5 else ''}"


def header_problems(names: list[str], file: str) -> list[str]:
    """One sentence per header name that appears more than once (names compared without the spaces
    around them, as the readers strip them): the readers would silently keep only one of them."""
    seen: dict[str, list[int]] = {}
    for i, name in enumerate(names, start=1):
        seen.setdefault(str(name).strip().lstrip("\ufeff"), []).append(i)
    return [
        f"{file}, column '{name}': the header names {len(at)} columns '{name}' (columns "
        f"{', '.join(map(str, at))}); which one is meant cannot be told (e.g. a gross and a net "
        f"amount): give each column its own name in the export"
        for name, at in seen.items()
        if len(at) > 1 and name != ""  # unnamed columns cannot be mapped: no ambiguity
    ]


def csv_problems(text: str, delimiter: str, file: str) -> list[str]:
    """What makes a CSV text unreadable as a table, found with the csv module before pandas reads
    it: duplicate header names (:func:`header_problems`), a record whose number of fields differs
    from the header's (an unquoted decimal comma or delimiter shifts every column after it; pandas
    would read the first column as an index or pad the row), and NUL bytes in a field (pandas cuts
    the field there: one id would become another). Empty list when the text is fine."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True)
    header: list[str] | None = None
    wrong: dict[int, list[int]] = {}  # field count -> lines
    nul: dict[int, list[int]] = {}  # column index -> lines
    examples: dict[int, str] = {}
    check_nul = "\x00" in text
    previous_end = 0
    try:
        for record in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if _blank(record):
                continue
            if header is None:
                header = [c.strip().lstrip("\ufeff") for c in record]
                dups = header_problems(header, file)
                if dups:
                    return dups
                continue
            if len(record) != len(header):
                wrong.setdefault(len(record), []).append(start)
            if check_nul:
                for i, cell in enumerate(record):
                    if "\x00" in cell:
                        nul.setdefault(i, []).append(start)
                        examples.setdefault(i, cell)
    except csv.Error:
        return []  # pandas' own message says what is wrong
    problems = []
    if header is not None and wrong:
        first = min(min(v) for v in wrong.values())
        fields = next(k for k, v in wrong.items() if first in v)
        lines = sorted(n for v in wrong.values() for n in v)
        more = f" ({len(lines):,} such lines: {_lines(lines)})" if len(lines) > 1 else ""
        problems.append(
            f"{file}: line {first} has {fields} field{'' if fields == 1 else 's'} where the header has {len(header)}{more}; "
            f"a {delimiter!r} inside a value that is not quoted (a decimal comma, a name with a "
            f"comma) splits it: quote such values, or set the file's delimiter"
        )
    for i, lines in nul.items():
        name = header[i] if header is not None and i < len(header) else f"field {i + 1}"
        n = len(lines)
        problems.append(
            f"{file}, column '{name}': {n} {'row has' if n == 1 else 'rows have'} a NUL byte "
            f"(\\x00) in the value ({_lines(lines)}; e.g. {examples[i]!r}); the export is damaged "
            f"or not text: export it again"
        )
    return problems


def nul_problems(frame: pd.DataFrame, positions: np.ndarray, unit: str, file: str) -> list[str]:
    """NUL bytes in the text cells of an Excel sheet or Parquet file, one sentence per column."""
    problems = []
    for c in frame.columns:
        mask = frame[c].str.contains("\x00", regex=False).to_numpy(dtype=bool)
        if mask.any():
            lines = [int(x) for x in positions[mask]]
            n = len(lines)
            problems.append(
                f"{file}, column '{c}': {n} {'row has' if n == 1 else 'rows have'} a NUL byte "
                f"(\\x00) in the value ({_lines(lines, unit)}; e.g. {frame[c][mask].iloc[0]!r}); "
                f"the export is damaged or not text: export it again"
            )
    return problems


def match_columns(
    mapped: dict[str, str], names: list[str], file: str
) -> tuple[dict[str, str], list[str]]:
    """The file's column for each mapped name: the name as written, else the one header name that
    equals it when case and the spaces around both are ignored (``'Amount '`` for ``amount``).
    Returns (canonical -> file column, for the names found) and one sentence per name that
    matches several header names (the mapping must then say which)."""
    found: dict[str, str] = {}
    problems: list[str] = []
    present = set(names)
    for canon, theirs in mapped.items():
        if theirs in present:
            found[canon] = theirs
            continue
        key = theirs.strip().casefold()
        near = [c for c in names if c.strip().casefold() == key]
        if len(near) == 1:
            found[canon] = near[0]
        elif near:
            problems.append(
                f"{file}, column '{theirs}'{f' (for {canon})' if theirs != canon else ''}: the "
                f"header has no column written exactly so but several that differ only in case or "
                f"spaces: {near}; write the one meant in the mapping exactly as in the header"
            )
    return found, problems


def zip_members(z: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The files of a zip archive, without folders and the metadata macOS Finder adds
    (``__MACOSX/...`` and ``._name`` resource forks)."""
    return [
        m
        for m in z.infolist()
        if not m.is_dir()
        and not m.filename.startswith("__MACOSX/")
        and not m.filename.rsplit("/", 1)[-1].startswith("._")
    ]


def decode(data: bytes, encoding: str, file: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"  # the byte-order mark says which byte order
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise _error(
            [
                f"{file}: cannot be read as {encoding} (byte {err.object[err.start : err.start + 1]!r} "
                f"at position {err.start}); set the file's encoding, e.g. 'cp1250' or 'latin-1'"
            ]
        ) from None
    except LookupError:
        raise _error([f"{file}: unknown encoding '{encoding}'"]) from None


def csv_bytes(path: Path) -> bytes:
    name = path.name.lower()
    if name.endswith(".gz"):
        try:
            return gzip.decompress(path.read_bytes())
        except (OSError, EOFError) as err:
            raise _error([f"{path.name}: not a readable gzip file ({err})"]) from None
    if name.endswith(".zip"):
        try:
            with zipfile.ZipFile(path) as z:
                members = zip_members(z)
                if len(members) != 1:
                    raise _error(
                        [
                            f"{path.name}: the zip archive holds {len(members)} files "
                            f"({[m.filename for m in members][:5]}); it must hold exactly one CSV file"
                        ]
                    )
                return z.read(members[0])
        except zipfile.BadZipFile as err:
            raise _error([f"{path.name}: not a readable zip archive ({err})"]) from None
    return path.read_bytes()


def _as_text(s: pd.Series) -> pd.Series:
    """A column of an Excel sheet or Parquet file as text: whole floats without '.0' (ids stored
    as numbers), empty for missing."""
    if pd.api.types.is_float_dtype(s) or s.dtype == object:
        num = pd.to_numeric(s, errors="coerce") if s.dtype != object else None
        if num is not None:
            whole = num.dropna()
            if len(whole) and (whole == np.round(whole)).all() and (whole.abs() < 2**53).all():
                return num.astype("Int64").astype(str).replace("<NA>", "")
            return num.map(lambda v: "" if pd.isna(v) else repr(float(v)))
        out = s.map(_cell_text)
        return out
    if pd.api.types.is_bool_dtype(s):
        return s.map(lambda v: "" if pd.isna(v) else str(bool(v)).lower())
    return s.astype(str).where(s.notna(), "")


def _cell_text(v: object) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
        return ""
    if isinstance(v, float):
        return str(int(v)) if v == int(v) and abs(v) < 2**53 else repr(v)
    if isinstance(v, pd.Timestamp | np.datetime64):
        return pd.Timestamp(v).isoformat(sep=" ")
    if hasattr(v, "isoformat"):  # datetime, date, time from openpyxl
        return v.isoformat(sep=" ") if hasattr(v, "hour") and hasattr(v, "day") else v.isoformat()
    return str(v)


def _typed_frame(df: pd.DataFrame, first: int) -> RawTable:
    """Excel or Parquet cells as text (timestamps also typed); `first`: number of the first data row."""
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    typed, text = {}, {}
    for c in df.columns:
        s = df[c]
        if s.dtype == object:
            inner = s.dropna()
            if len(inner) and inner.map(lambda v: isinstance(v, pd.Timestamp | np.datetime64) or
                                        (hasattr(v, "hour") and hasattr(v, "day"))).all():  # fmt: skip
                s = pd.to_datetime(s)
        if pd.api.types.is_datetime64_any_dtype(s):
            typed[c] = s.reset_index(drop=True)
            text[c] = s.map(_cell_text)
        else:
            text[c] = _as_text(s)
    frame = pd.DataFrame(text).reset_index(drop=True)
    return RawTable(frame, unit="row", typed=typed, _positions=np.arange(len(frame)) + first)


def _checked(table: RawTable, file: str) -> RawTable:
    problems = nul_problems(table.frame, table.positions(), table.unit, file)
    if problems:
        raise _error(problems)
    return table


def read_raw(
    path: str | Path,
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    sheet: str | None = None,
) -> RawTable:
    """Read `path` (CSV, compressed CSV, Excel or Parquet, chosen by its suffix) as text cells.

    Raises :class:`helpers.tables.DataValidationError` with one sentence for a missing file, a
    folder, an empty file, an unknown sheet or an unreadable file.
    """
    path = Path(path)
    file = path.name
    if not path.exists():
        raise _error([f"{file}: file not found at {path}"])
    if path.is_dir():
        raise _error(
            [f"{file}: is a folder, not a file ({path}); give the path of the export file"]
        )
    if path.stat().st_size == 0:
        raise _error([f"{file}: the file is empty (0 bytes); expected a header and data rows"])
    suffix = path.suffix.lower()
    if suffix in (".xls", ".xlsb", ".ods", ".numbers"):
        raise _error(
            [f"{file}: {suffix} files are not read; save the sheet as .xlsx or as CSV (UTF-8)"]
        )
    if suffix in EXCEL:
        try:
            book = pd.ExcelFile(path, engine="openpyxl")
        except Exception as err:  # openpyxl raises several types for a broken workbook
            raise _error(
                [f"{file}: not a readable Excel workbook ({type(err).__name__}: {err})"]
            ) from None
        with book:
            if sheet is not None and str(sheet) not in book.sheet_names:
                raise _error(
                    [
                        f"{file}: has no sheet '{sheet}' (mapping key 'sheet'); its sheets are {book.sheet_names}"
                    ]
                )
            which = sheet if sheet is not None else 0
            head = book.parse(which, header=None, nrows=1, dtype=object)
            names = ["" if pd.isna(v) else str(v) for v in head.iloc[0]] if len(head) else []
            dups = header_problems(names, file)
            if dups:
                raise _error(dups)
            df = book.parse(which, dtype=object)
        return _checked(_typed_frame(df, 2), file)  # the header is row 1 of the sheet
    if suffix in PARQUET:
        try:
            df = pd.read_parquet(path)
        except Exception as err:  # pyarrow's errors for a broken file
            raise _error(
                [f"{file}: not a readable Parquet file ({type(err).__name__}: {err})"]
            ) from None
        dups = header_problems([str(c) for c in df.columns], file)
        if dups:
            raise _error(dups)
        return _checked(_typed_frame(df.reset_index(drop=True), 1), file)
    text = decode(csv_bytes(path), encoding, file)
    if text.strip() == "":
        raise _error([f"{file}: the file is empty (no text); expected a header and data rows"])
    problems = csv_problems(text, delimiter, file)
    if problems:
        raise _error(problems)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            quoting=csv.QUOTE_MINIMAL,
        )
    except pd.errors.ParserError as err:
        raise _error(
            [f"{file}: not a well-formed CSV with delimiter {delimiter!r} ({str(err).strip()})"]
        ) from None
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    header = text.lstrip("\ufeff").split("\n", 1)[0]
    return RawTable(frame, unit="line", header=header, _text=text, _delimiter=delimiter)
