"""helpers.data: typed loaders, and one clear error (file, column, rows, example) for bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from helpers import data, paths, tables

GOOD = "order_id,customer_id,order_date,amount\n1,10,2025-01-05,12.50\n2,11,2025-01-06,8.00\n3,10,2025-02-01,20.00\n"


def write(tmp_path: Path, text: str | bytes, name: str = "orders.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def error_for(path: Path, **kwargs) -> str:
    with pytest.raises(tables.DataValidationError) as info:
        tables.read_table(path, "orders", **kwargs)
    return str(info.value)


def test_bundled_tables_load_typed():
    loaded = data.load_all()
    assert set(loaded) == set(tables.SCHEMAS)
    o = loaded["orders"]
    assert pd.api.types.is_datetime64_any_dtype(o["order_date"])
    assert o["amount"].dtype == float and (o["amount"] > 0).all()
    assert o["order_id"].is_unique and o["customer_id"].dtype == "int64"
    assert set(o["customer_id"]) <= set(loaded["customers"]["customer_id"])
    assert loaded["subscriptions"]["end_date"].isna().any()  # active subscriptions


def test_good_file(tmp_path):
    df = tables.read_table(write(tmp_path, GOOD), "orders")
    assert df["amount"].tolist() == [12.5, 8.0, 20.0]


def test_missing_column_names_file_column_and_suggests(tmp_path):
    msg = error_for(write(tmp_path, GOOD.replace("amount", "amout")))
    assert "orders.csv" in msg and "'amount'" in msg and "did you mean 'amout'" in msg


def test_unparsable_dates(tmp_path):
    msg = error_for(
        write(tmp_path, GOOD.replace("2025-01-06", "06/01/2025").replace("2025-02-01", "yesterday"))
    )
    assert "orders.csv, column 'order_date': 2 rows are unparsable as dates" in msg
    assert "lines 3, 4" in msg and "e.g. '06/01/2025'" in msg


def test_negative_amounts(tmp_path):
    msg = error_for(write(tmp_path, GOOD.replace("8.00", "-8.00")))
    assert msg == "orders.csv, column 'amount': 1 row is negative (line 3; e.g. '-8.00')"


def test_non_numeric_amounts(tmp_path):
    msg = error_for(write(tmp_path, GOOD.replace("12.50", "12.50 EUR")))
    assert "column 'amount': 1 row is not numeric" in msg and "12.50 EUR" in msg


def test_duplicated_ids(tmp_path):
    msg = error_for(write(tmp_path, GOOD.replace("3,10,2025-02-01", "1,10,2025-02-01")))
    assert "column 'order_id': 2 rows are duplicated (1 distinct ids appear more than once)" in msg


def test_empty_and_header_only_files(tmp_path):
    assert "the file is empty" in error_for(write(tmp_path, ""))
    assert "has a header but no data rows" in error_for(
        write(tmp_path, GOOD.splitlines()[0] + "\n")
    )


def test_wrong_delimiter(tmp_path):
    msg = error_for(write(tmp_path, GOOD.replace(",", ";")))
    assert "looks delimited by ';'" in msg


def test_wrong_encoding(tmp_path):
    path = write(
        tmp_path,
        "order_id,customer_id,order_date,amount,channel\n1,10,2025-01-05,1.0,Gda\u0144sk\n".encode(
            "cp1250"
        ),
    )
    msg = error_for(path)
    assert "cannot be read as utf-8" in msg
    assert tables.read_table(path, "orders", encoding="cp1250")["channel"].iloc[0] == "Gda\u0144sk"


def test_future_dates_after_as_of(tmp_path):
    msg = error_for(write(tmp_path, GOOD), as_of="2025-01-31")
    assert "column 'order_date': 1 row is after the as-of date 2025-01-31" in msg


def test_all_problems_reported_together(tmp_path):
    bad = GOOD.replace("8.00", "-8.00").replace("2025-02-01", "nope")
    with pytest.raises(tables.DataValidationError) as info:
        tables.read_table(write(tmp_path, bad), "orders")
    assert len(info.value.problems) == 2


def test_client_columns_formats(tmp_path):
    text = "nr;klient;data;kwota\n1;K1;05.01.2025;1 234,50\n2;K2;06.01.2025;8,00\n"
    df = tables.read_table(
        write(tmp_path, text), "orders",
        columns={"order_id": "nr", "customer_id": "klient", "order_date": "data", "amount": "kwota"},
        date_format="%d.%m.%Y", decimal=",", delimiter=";",
    )  # fmt: skip
    assert df["amount"].tolist() == [1234.5, 8.0]
    assert df["order_date"].dt.day.tolist() == [5, 6] and df["customer_id"].tolist() == ["K1", "K2"]


def test_missing_file_in_folder(tmp_path):
    shutil.copytree(paths.DATASETS, tmp_path / "d")
    (tmp_path / "d" / "orders.csv").unlink()
    with pytest.raises(tables.DataValidationError, match="orders.csv: file not found"):
        data.load_all(tmp_path / "d")


def test_ids_with_leading_zeros_are_not_merged(tmp_path):
    df = tables.read_table(write(tmp_path, GOOD.replace("\n1,10,", "\n001,10,")), "orders")
    assert df["order_id"].tolist() == ["001", "2", "3"]  # text: '001' is not 1
    dup = GOOD.replace("\n1,10,", "\n001,10,").replace("\n2,11,", "\n001,11,")
    assert "column 'order_id': 2 rows are duplicated" in error_for(write(tmp_path, dup))


def test_messages_name_the_clients_column(tmp_path):
    text = "nr,klient,dato,Beløp\n1,K1,2025-01-05,-3.00\n"
    cols = {"order_id": "nr", "customer_id": "klient", "order_date": "dato", "amount": "Beløp"}
    msg = error_for(write(tmp_path, text), columns=cols)
    assert msg.startswith("orders.csv, column 'Beløp' (amount): 1 row is negative (line 2")


def test_byte_order_marks_and_utf16(tmp_path):
    for enc in ("utf-8-sig", "utf-16"):
        df = tables.read_table(write(tmp_path, GOOD.encode(enc)), "orders")
        assert df["amount"].tolist() == [12.5, 8.0, 20.0]


def test_a_folder_is_one_clear_message(tmp_path):
    assert error_for(tmp_path).startswith(f"{tmp_path.name}: is a folder, not a file")
