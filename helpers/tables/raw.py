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

__all__ = ["RawTable", "read_raw", "decode", "csv_bytes", "csv_lines", "EXCEL", "PARQUET"]

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
                members = [m for m in z.infolist() if not m.is_dir()]
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
            df = book.parse(sheet if sheet is not None else 0, dtype=object)
        return _typed_frame(df, 2)  # the header is row 1 of the sheet
    if suffix in PARQUET:
        try:
            df = pd.read_parquet(path)
        except Exception as err:  # pyarrow's errors for a broken file
            raise _error(
                [f"{file}: not a readable Parquet file ({type(err).__name__}: {err})"]
            ) from None
        return _typed_frame(df.reset_index(drop=True), 1)
    text = decode(csv_bytes(path), encoding, file)
    if text.strip() == "":
        raise _error([f"{file}: the file is empty (no text); expected a header and data rows"])
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
