"""The reader on any file (issue 30), with hypothesis: random bytes, delimiters, quoting, encodings,
headers and cells. Whatever the file, the reader either returns a table or raises one
:class:`DataValidationError` (never another exception, never a traceback for the client), and a
table it returns has as many rows as an independent parse of the file with the csv module."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from helpers.tables import DataValidationError, read_table_info

SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)  # fast: about a second per hundred files
DELIMITERS = [",", ";", "\t", "|"]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "cp1250", "latin-1"]
NAMES = ["order_id", "customer_id", "order_date", "amount", "channel", "Amount", " amount ",
         "Customer_ID", "a,b", 'q"t', "", "ø"]  # fmt: skip
VALID = {
    "order_id": st.integers(1, 60).map(str),
    "customer_id": st.sampled_from(["1", "2", "007", "C-9", "guest", "=1+1", "-3"]),
    "order_date": st.sampled_from(["2024-01-05", "2024-02-29 10:00:00", "2025-13-01", "5.1.2024"]),
    "amount": st.sampled_from(["12.50", "0", "-3", "1,234.5", "1.234,5", "abc", "12,50"]),
}
CLEAN = {  # values the reader accepts: a file of these is read, whatever else it holds
    "customer_id": st.sampled_from(["1", "2", "007", "C-9", "=1+1", " 3 "]),
    "order_date": st.sampled_from(["2024-01-05", "2024-02-29 10:00:00", " 2025-06-30"]),
    "amount": st.sampled_from(["12.50", "0", "3", " 7.25 "]),
}
NASTY = st.text(
    st.sampled_from(list("ab1 ,;\t|\"'\n\r\x00é€-=") + ["\u2028", "\ufeff"]), max_size=6
)


@st.composite
def csv_files(draw) -> tuple[bytes, str, str]:
    """(file bytes, delimiter, encoding) of a CSV export, well-formed or not."""
    delimiter = draw(st.sampled_from(DELIMITERS))
    encoding = draw(st.sampled_from(ENCODINGS))
    header = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6))
    if draw(st.integers(0, 3)):  # mostly a usable header
        header = list(dict.fromkeys(["order_id", "customer_id", "order_date", "amount", *header]))
    clean = draw(st.booleans())  # values the reader accepts (other columns: anything)
    cells = {h: CLEAN.get(h, NASTY) if clean else st.one_of(VALID.get(h.strip(), NASTY), NASTY)
             for h in header}  # fmt: skip
    rows = draw(st.lists(st.tuples(*[cells[h] for h in header]).map(list), max_size=8))
    for i, row in enumerate(rows):
        if clean and "order_id" in header:
            row[header.index("order_id")] = str(i + 1)  # unique
        elif draw(st.integers(0, 9)) == 0:  # sometimes a field more or less
            row.append(draw(NASTY)) if draw(st.booleans()) else row.pop() if row else None
    how = draw(st.sampled_from(["minimal", "all", "none"]))
    out = io.StringIO(newline="")
    if how == "none":  # written by hand: delimiters and quotes inside values are not quoted
        out.write(
            "".join(
                delimiter.join(r) + draw(st.sampled_from(["\n", "\r\n"])) for r in [header, *rows]
            )
        )
    else:
        quoting = csv.QUOTE_MINIMAL if how == "minimal" else csv.QUOTE_ALL
        csv.writer(out, delimiter=delimiter, quoting=quoting).writerows([header, *rows])
    data = out.getvalue().encode(encoding, errors="replace")
    return data, delimiter, encoding


def independent_rows(data: bytes, delimiter: str, encoding: str) -> int:
    """Data records of the file by the csv module: blank lines skipped, the header not counted."""
    if data.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    text = data.decode(encoding)
    records = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True)
    kept = [r for r in records if len(r) > 1 or (r and r[0].strip())]
    return max(len(kept) - 1, 0)


def check(data: bytes, delimiter: str, encoding: str, suffix: str = ".csv", reader="auto"):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"orders{suffix}"
        path.write_bytes(data)
        try:
            df, _ = read_table_info(
                path, "orders", delimiter=delimiter, encoding=encoding, reader=reader,
                as_of="2025-12-31",
            )  # fmt: skip
        except DataValidationError as err:
            assert err.problems and all(str(p).startswith("orders") for p in err.problems)
            return None
    assert len(df) == independent_rows(data, delimiter, encoding)
    return df


@SETTINGS
@given(csv_files(), st.sampled_from(["auto", "pandas"]))
@example((b"order_id,customer_id,order_date,amount\n1,2,2024-01-05,12,50\n", ",", "utf-8"), "auto")
@example((b"order_id,customer_id,order_date,amount\n1,2\x00,2024-01-05,1\n", ",", "utf-8"), "auto")
def test_any_csv_gives_a_table_or_one_validation_error(file, reader):
    check(*file, reader=reader)


@SETTINGS
@given(
    st.binary(max_size=200),
    st.sampled_from(DELIMITERS),
    st.sampled_from(ENCODINGS),
    st.sampled_from([".csv", ".csv.gz", ".zip", ".xlsx", ".parquet"]),
)
def test_random_bytes_give_one_validation_error_or_a_table(data, delimiter, encoding, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"orders{suffix}"
        path.write_bytes(data)
        try:
            read_table_info(path, "orders", delimiter=delimiter, encoding=encoding, reader="auto")
        except DataValidationError:
            pass


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_clean_file_is_accepted_in_every_encoding(encoding):
    text = "order_id;customer_id;order_date;amount\n1;é1;2024-01-05;12.50\n2;2;2024-02-05;3\n"
    df = check(text.encode(encoding), ";", encoding)
    assert df is not None and len(df) == 2
