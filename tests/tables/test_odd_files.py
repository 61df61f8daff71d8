"""Odd files (issue 30): each gets one clear message naming the client's file and column, from the
pandas reader; the DuckDB reader declines them (returns None) so that message is the one shown,
and reads the fine ones (a header in another case) like pandas."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from helpers.tables import SCHEMAS, DataValidationError, duckdb_reader, read_table_info
from tests.tables.test_readers import as_plain

HEADER = "order_id,customer_id,order_date,amount"
ROWS = [f"{i},{100 + i % 7},2025-0{1 + i % 9}-1{i % 10},{10 + i}.50" for i in range(1, 41)]


def write(path: Path, header: str = HEADER, rows: list[str] = ROWS, raw: bytes | None = None):
    path.write_bytes(raw if raw is not None else ("\n".join([header, *rows]) + "\n").encode())
    return path


def refused(path: Path, **kwargs) -> list[str]:
    """The pandas reader's problems; the DuckDB reader must have declined the file."""
    assert duckdb_reader.read_table_info(path, SCHEMAS["orders"], **kwargs) is None
    with pytest.raises(DataValidationError) as err:
        read_table_info(path, "orders", reader="auto", **kwargs)
    return [str(p) for p in err.value.problems]


def test_nul_byte_in_a_text_field(tmp_path):
    rows = list(ROWS)
    rows[4] = rows[4].replace(",105,", ",10\x005,")  # pandas would read '10': another customer
    problems = refused(write(tmp_path / "orders.csv", rows=rows))
    assert problems == [
        "orders.csv, column 'customer_id': 1 row has a NUL byte (\\x00) in the value (line 6; "
        "e.g. '10\\x005'); the export is damaged or not text: export it again"
    ]


def test_nul_byte_in_parquet_text(tmp_path):
    df = pd.read_csv(write(tmp_path / "o.csv"), dtype=str)
    df.loc[2, "customer_id"] = "1\x002"
    df.to_parquet(tmp_path / "orders.parquet")
    (problem,) = refused(tmp_path / "orders.parquet")
    assert problem.startswith("orders.parquet, column 'customer_id': 1 row has a NUL byte")
    assert "(row 3;" in problem


@pytest.mark.parametrize("second", ["amount", " amount ", "amount "])
def test_duplicate_header_names(tmp_path, second):
    rows = [r + ",9.00" for r in ROWS]
    (problem,) = refused(write(tmp_path / "orders.csv", HEADER + "," + second, rows))
    assert problem == (
        "orders.csv, column 'amount': the header names 2 columns 'amount' (columns 4, 5); which "
        "one is meant cannot be told (e.g. a gross and a net amount): give each column its own "
        "name in the export"
    )


def test_duplicate_header_names_in_excel(tmp_path):
    df = pd.read_csv(write(tmp_path / "o.csv"), dtype=str)
    df.insert(4, "amount_net", df["amount"])
    df.columns = [*df.columns[:4], "amount"]
    df.to_excel(tmp_path / "orders.xlsx", index=False)
    (problem,) = refused(tmp_path / "orders.xlsx")
    assert problem.startswith("orders.xlsx, column 'amount': the header names 2 columns 'amount'")


def test_header_in_another_case_or_with_spaces_is_matched_by_both_readers(tmp_path):
    clean = write(tmp_path / "clean.csv")
    odd = write(tmp_path / "odd.csv", "Order_ID, CUSTOMER_ID ,order_date,Amount")
    cols = {"order_id": "order_id", "customer_id": "Customer_Id", "amount": " amount"}
    want, _ = read_table_info(clean, "orders", reader="pandas")
    for reader in ("pandas", "duckdb"):
        got, _ = read_table_info(odd, "orders", reader=reader, columns=cols)
        pd.testing.assert_frame_equal(as_plain(got), as_plain(want))


def test_ambiguous_header_match_names_the_candidates(tmp_path):
    rows = [r + ",1" for r in ROWS]
    path = write(
        tmp_path / "orders.csv", "order_id,Customer_ID,order_date,amount,customer_id ", rows
    )
    (problem,) = refused(path, columns={"customer_id": "CUSTOMER_ID"})
    assert problem == (
        "orders.csv, column 'CUSTOMER_ID' (for customer_id): the header has no column written "
        "exactly so but several that differ only in case or spaces: ['Customer_ID', 'customer_id']; "
        "write the one meant in the mapping exactly as in the header"
    )


def test_a_header_that_is_not_there_still_gets_did_you_mean(tmp_path):
    (problem,) = refused(write(tmp_path / "orders.csv", "order_id,customer_id,order_date,amout"))
    assert "required column 'amount' is missing" in problem and "did you mean 'amout'?" in problem


@pytest.mark.parametrize(
    ("edit", "want"),
    [
        (lambda r: r.replace(".50", ",50"), "line 2 has 5 fields where the header has 4 (40 such"),
        (lambda r: r, None),
    ],
)
def test_field_count_differs_from_the_header(tmp_path, edit, want):
    rows = [edit(r) for r in ROWS]
    if want is None:  # one short line deep in the file
        rows[30] = rows[30].rsplit(",", 1)[0]
        want = "line 32 has 3 fields where the header has 4;"
    (problem,) = refused(write(tmp_path / "orders.csv", rows=rows))
    assert problem.startswith("orders.csv: " + want), problem
    assert "date" not in problem and "duplicated" not in problem


def test_macos_finder_zip_is_read(tmp_path):
    csv = write(tmp_path / "orders.csv")
    with zipfile.ZipFile(tmp_path / "orders.zip", "w") as z:
        z.write(csv, "orders.csv")
        z.writestr("__MACOSX/._orders.csv", b"\x00\x05\x16\x07 Mac OS X resource fork")
        z.writestr("__MACOSX/", b"")
        z.writestr("._orders.csv", b"\x00\x05\x16\x07")
    got, _ = read_table_info(tmp_path / "orders.zip", "orders")
    want, _ = read_table_info(csv, "orders")
    pd.testing.assert_frame_equal(got, want)


def test_gzip_with_a_nul_byte_is_declined(tmp_path):
    rows = list(ROWS)
    rows[0] = rows[0].replace("2025", "20\x0025")
    path = tmp_path / "orders.csv.gz"
    path.write_bytes(gzip.compress(("\n".join([HEADER, *rows]) + "\n").encode()))
    (problem,) = refused(path)
    assert problem.startswith("orders.csv.gz, column 'order_date': 1 row has a NUL byte")
