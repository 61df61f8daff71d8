"""A database table stays where it is (issue 31, point 2): its checks run in the database as Ibis
expressions and a bad table is refused with one message naming the source, the table and the
column, with a count and an example value; nothing is written.

Small DuckDB database files (the bundled orders' first rows, typed as a warehouse types them);
the report from a whole table is ``tests/report/test_sources.py`` (DuckDB) and
``tests/report/test_postgres.py`` (a real PostgreSQL server)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import ibis
import pandas as pd
import pytest

from helpers import paths, report
from helpers.report import engine, sources
from helpers.report.mapping import client_schema, load_mapping
from helpers.report.orders import (
    open_orders,
    read_client_orders,
    read_orders_in_warehouse,
    save_warehouse,
)
from helpers.tables import DataValidationError
from tests.report.limits import limit_of, setting

ORDERS = paths.DATASETS / "orders.csv"
MAPPING = paths.NOTEBOOKS / "08_sample_mapping.yaml"
#: The sample's orders columns, typed as a warehouse keeps them.
TYPED = (
    "order_id BIGINT, customer_id BIGINT, order_date TIMESTAMP, amount DOUBLE, discount DOUBLE, "
    "items BIGINT, channel VARCHAR, returned BOOLEAN, campaign_id VARCHAR"
)


def table(db: Path, select: str = "*", rows: int = 200, name: str = "orders") -> str:
    """The bundled orders' first `rows` as table `name` of the DuckDB file `db` (`select` over
    them: a column dropped, retyped or spoiled); returns the --data URL."""
    con = duckdb.connect(str(db))
    con.execute(
        f"CREATE OR REPLACE TABLE {name} AS SELECT {select} FROM (SELECT * FROM "
        f"read_csv('{ORDERS}', columns = {{{_columns()}}}, header = true) LIMIT {rows})"
    )
    con.close()
    return f"duckdb://{db}?table={name}"


def _columns() -> str:
    return ", ".join(f"'{c.split()[0]}': '{c.split()[1]}'" for c in TYPED.split(", "))


def refused(url: str, tmp_path: Path, capsys, mapping: Path = MAPPING) -> list[str]:
    """Run the report command on `url`, expecting exit code 2 and nothing written; returns the
    problems the message lists."""
    root = tmp_path / "reports"
    before = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.db")}
    rc = report.main(["--data", url, "--mapping", str(mapping), "--name", "x",
                      "--reports-dir", str(root)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2, err
    assert not root.exists() or not any(root.iterdir())  # nothing left behind
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.db")} == before  # read only
    return [line[4:] for line in err.splitlines() if line.startswith("  - ")]  # the problems


def test_a_missing_column_is_refused(tmp_path, capsys):
    url = table(tmp_path / "c.db", "* EXCLUDE (discount)")
    lines = refused(url, tmp_path, capsys)
    assert any(
        f"duckdb://{tmp_path}/c.db, table 'orders', column 'discount': the mapping names this column"
        in line
        for line in lines
    ), lines


def test_a_column_of_the_wrong_type_is_refused(tmp_path, capsys):
    """A date and an amount stored as text: one message per column, naming its type."""
    url = table(tmp_path / "c.db", "* REPLACE (CAST(amount AS VARCHAR) AS amount, "
                "strftime(order_date, '%d.%m.%Y') AS order_date)")  # fmt: skip
    lines = refused(url, tmp_path, capsys)
    source = f"duckdb://{tmp_path}/c.db, table 'orders'"
    assert any(f"{source}, column 'amount': is of type string" in x for x in lines), lines
    assert any(f"{source}, column 'order_date': is of type string" in x for x in lines), lines


def test_a_connection_that_fails_is_refused(tmp_path, capsys):
    """A file that begins as a DuckDB database and is not one (a file that does not begin so:
    test_sources.py's "is not a DuckDB database file")."""
    (tmp_path / "c.db").write_bytes(b"\0" * 8 + b"DUCK" + b"not a database, " * 512)
    lines = refused(f"duckdb://{tmp_path}/c.db?table=orders", tmp_path, capsys)
    assert (
        len(lines) == 1 and f"duckdb://{tmp_path}/c.db, table 'orders': cannot connect" in lines[0]
    )


def test_a_table_that_cannot_be_read_is_refused(tmp_path, capsys):
    """A view over a file that is gone: the table exists, reading it fails."""
    con = duckdb.connect(str(tmp_path / "c.db"))
    (tmp_path / "o.parquet").write_bytes(b"")
    con.execute(f"COPY (SELECT 1 AS order_id) TO '{tmp_path / 'o.parquet'}'")
    con.execute(f"CREATE VIEW orders AS SELECT * FROM read_parquet('{tmp_path / 'o.parquet'}')")
    con.close()
    (tmp_path / "o.parquet").unlink()
    lines = refused(f"duckdb://{tmp_path}/c.db?table=orders", tmp_path, capsys)
    assert len(lines) == 1 and f"duckdb://{tmp_path}/c.db, table 'orders': " in lines[0], lines
    assert "no such table" in lines[0] or "cannot be read" in lines[0]


@pytest.mark.parametrize(
    "spoil, column, message",
    [
        ("order_date = NULL WHERE order_id IN (100003, 100007)", "order_date",
         "2 rows are empty (e.g. '')"),
        ("order_id = 100004 WHERE order_id = 100009", "order_id",
         "2 rows are duplicated (1 distinct ids appear more than once) (e.g. '100004')"),
        ("amount = -12.5 WHERE order_id = 100005", "amount", "1 row is negative (e.g. '-12.5')"),
        ("order_date = TIMESTAMP '2031-01-02 10:00:00' WHERE order_id = 100006", "order_date",
         "1 row is in the future (e.g. '2031-01-02 10:00:00')"),
        ("customer_id = NULL WHERE order_id IN (100002, 100008)", "customer_id",
         "2 rows have no customer id (blank or a placeholder; e.g. ''); orders without a customer "
         "cannot be followed over time: set missing_customer: drop in the mapping to leave them "
         "out"),  # found by the mapping's rules (missing_customer: error), in the database
    ],
)  # fmt: skip
def test_a_bad_value_inside_the_table_is_refused(tmp_path, capsys, spoil, column, message):
    url = table(tmp_path / "c.db")
    con = duckdb.connect(str(tmp_path / "c.db"))
    con.execute(f"UPDATE orders SET {spoil}")
    con.close()
    lines = refused(url, tmp_path, capsys)
    want = f"duckdb://{tmp_path}/c.db, table 'orders', column '{column}': {message}"
    assert lines == [want], lines


def test_refunds_are_netted_in_the_database(tmp_path):
    """A negative amount under ``refunds: net``: counted by the mapping's rules in the database,
    as the file readers count it."""
    url = table(tmp_path / "c.db")
    con = duckdb.connect(str(tmp_path / "c.db"))
    con.execute("UPDATE orders SET amount = -3 WHERE order_id = 100010")
    con.close()
    mapping = tmp_path / "m.yaml"
    orders_only = MAPPING.read_text().split("\ntables:")[0] + "\n"
    mapping.write_text(orders_only.replace("refunds: reject", "refunds: net"))
    _, notes = read_orders_in_warehouse(url, load_mapping(mapping))
    assert notes["refund_rows"] == 1 and notes["refund_amount"] == -3.0


def test_warehouse_problems_known_answers():
    """Each check on a four-row typed table: counts and the smallest bad value as the example."""
    t = ibis.memtable(
        pd.DataFrame(
            {
                "order_id": ["a", "b", "b", "1E+05"],
                "customer_id": ["1", None, "2", "3"],
                "order_date": pd.to_datetime(["2025-01-01", None, "2025-02-01", "2099-01-01"]),
                "amount": [1.0, -2.0, -3.0, 4.0],
            }
        )
    )
    mapping = load_mapping(MAPPING)
    cols = tuple(c for c in client_schema(mapping) if c.name in t.columns)
    got, _ = engine.warehouse_problems(t, cols, source="db://h/x", table="t", labels={},
                                       as_of="2025-12-31")  # fmt: skip
    said = {(p.column, p.code): (p.rows, p.example) for p in got}
    assert said == {
        ("order_date", "empty"): (1, ""),
        ("order_date", "after_as_of"): (1, "2099-01-01 00:00:00"),
        ("amount", "negative"): (2, "-2.0"),
        ("order_id", "scientific"): (1, "1E+05"),
        ("order_id", "duplicated"): (2, "b"),
    }
    assert all(p.startswith("db://h/x, table 't', column '") for p in got)


def test_warehouse_problems_see_through_blanks_at_either_end():
    """Ids are checked as trimmed (blanks of each kind at either end, the no-break and ideographic
    spaces too), by matching, not by a trimmed copy: a blank id is empty, a padded one in scientific notation is said, and with
    id_type: integer the padded text ids that are not whole numbers."""
    t = ibis.memtable(
        pd.DataFrame(
            {
                "order_id": ["a", " \t", " 1E+05\n", "\v12\f", "\u00a0\u3000"],
                "customer_id": ["1", "2", "3", "4", "5"],
                "order_date": pd.to_datetime(["2025-01-01"] * 5),
                "amount": [1.0, 2.0, 3.0, 4.0, 5.0],
            }
        )
    )
    cols = tuple(c for c in client_schema(load_mapping(MAPPING)) if c.name in t.columns)
    said = {}
    for ids in ("auto", "integer"):
        got, trimmed = engine.warehouse_problems(t, cols, source="db://h/x", table="t",
                                                 labels={}, as_of="2025-12-31", ids=ids)  # fmt: skip
        assert trimmed == ["order_id"]
        said[ids] = {(p.column, p.code): (p.rows, p.example) for p in got}
    assert said["auto"] == {  # Unicode blanks too, as str.strip() (the file readers) trims
        ("order_id", "empty"): (2, " \t"),
        ("order_id", "scientific"): (1, " 1E+05\n"),
    }
    assert said["integer"] == said["auto"] | {("order_id", "not_whole"): (2, " 1E+05\n")}


@pytest.mark.parametrize(
    "ids, want",
    [
        (["a", " a", "b\t", "c"], {("order_id", "duplicated"): (2, "a")}),  # equal once trimmed
        (["a", " b", "c\n", "d"], {}),  # padded, but distinct once trimmed
        (["a", "b", "a", "c"], {("order_id", "duplicated"): (2, "a")}),  # equal as stored
    ],
)
def test_the_uniqueness_check_counts_stored_values_and_trims_where_blanks_are(ids, want):
    """The one scan counts the ids' distinct values as stored (what DuckDB counts under its
    memory limit at 100M orders) and the ids with blanks at an end: ids that differ only by
    such blanks are still one id repeated, found by the trimmed second query."""
    t = ibis.memtable(
        pd.DataFrame(
            {
                "order_id": ids,
                "customer_id": ["1", "2", "3", "4"],
                "order_date": pd.to_datetime(["2025-01-01"] * 4),
                "amount": [1.0, 2.0, 3.0, 4.0],
            }
        )
    )
    cols = tuple(c for c in client_schema(load_mapping(MAPPING)) if c.name in t.columns)
    got, _ = engine.warehouse_problems(t, cols, source="db://h/x", table="t", labels={},
                                       as_of="2025-12-31")  # fmt: skip
    assert {(p.column, p.code): (p.rows, p.example.strip()) for p in got} == want


@pytest.mark.parametrize("blank", [" ", "\t", "\u00a0", "\u3000"])
def test_padded_text_in_a_table_is_trimmed_as_the_csvs(tmp_path, blank):
    """Customer ids and a text column padded with blanks (an ASCII space, a tab, a no-break
    space, an ideographic space) at either end: the table's orders equal the same rows' read
    from a CSV (whose readers trim every cell as str.strip() does), so a padded id is the same
    customer, not a second one; only the padded columns are trimmed, in the report command and
    in the notebook's kernel (the columns handed over in the notes). Without the trimming the
    table had 299 customers for the CSV's 245 (400 rows)."""
    pad = blank.replace("'", "''")
    select = (
        f"* REPLACE (CASE WHEN order_id % 3 = 0 THEN '{pad}' || CAST(customer_id AS VARCHAR) "
        f"WHEN order_id % 3 = 1 THEN CAST(customer_id AS VARCHAR) || '{pad}' ELSE "
        f"CAST(customer_id AS VARCHAR) END AS customer_id, CASE WHEN order_id % 2 = 0 THEN "
        f"channel || '{pad}' ELSE channel END AS channel)"
    )
    url = table(tmp_path / "c.db", select, rows=400)
    stored = duckdb.connect(str(tmp_path / "c.db"))
    csv = tmp_path / "o.csv"
    stored.execute("SELECT * FROM orders").df().to_csv(csv, index=False)
    stored.close()
    mapping = load_mapping(MAPPING)
    t, notes = read_orders_in_warehouse(url, mapping)
    want, _ = read_client_orders(csv, mapping)
    assert notes["trimmed"] == ["customer_id", "channel"]  # not the unpadded ones

    def same(got: pd.DataFrame) -> None:
        assert got["customer_id"].nunique() == want["customer_id"].nunique() == 245
        pd.testing.assert_frame_equal(
            got.sort_values("order_id").reset_index(drop=True),
            want.sort_values("order_id").reset_index(drop=True),
            check_dtype=False,
        )

    same(t.to_pandas())
    handover = save_warehouse(notes, tmp_path / "orders.warehouse.json")
    with pytest.MonkeyPatch.context() as mp:  # the notebook's table: the same rows
        mp.setenv(sources.SOURCE_ENV, url)
        again, _ = open_orders(handover)
        same(again.to_pandas())


def test_a_status_rule_on_a_table_is_matched_by_the_texts_found(tmp_path):
    """A status column written as a warehouse has it (padding, case, missing): the padded column
    is trimmed as a CSV's cells are, then the report command finds each text's lower-cased form
    once and hands the texts over; the
    notebook's table matches them exactly, with the rows and amounts of the command's table and
    of the same rows read from a CSV."""
    status = ("CASE order_id % 5 WHEN 0 THEN ' Cancelled' WHEN 1 THEN 'PAID\t' WHEN 2 THEN NULL "
              "WHEN 3 THEN 'refunded' ELSE 'paid' END AS status")  # fmt: skip
    url = table(tmp_path / "c.db", f"*, {status}", rows=300)
    mapping = tmp_path / "m.yaml"
    orders_only = MAPPING.read_text().split("\ntables:")[0] + "\n"
    mapping.write_text(
        orders_only.replace("refunds: reject", "refunds: net")
        + "status:\n  column: status\n  keep: [paid]\n  cancelled: [cancelled]\n"
    )
    m = load_mapping(mapping)
    t, notes = read_orders_in_warehouse(url, m)
    found = notes["status_values"]
    assert sorted(found["keep"]) == ["PAID", "paid"] and found["cancelled"] == ["Cancelled"]
    assert notes["trimmed"] == ["status"]
    csv = tmp_path / "o.csv"
    duckdb.connect(str(tmp_path / "c.db"), read_only=True).execute(
        f"COPY orders TO '{csv}' (HEADER true)"
    )
    want, want_notes = read_client_orders(csv, m)
    handover = save_warehouse(notes, tmp_path / "orders.warehouse.json")
    assert json.loads(handover.read_text())["status_values"] == found  # handed over
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(sources.SOURCE_ENV, url)
        again, _ = open_orders(handover)
        reopened = again.to_pandas()
    cols = ["order_id", "customer_id", "order_date", "amount"]
    got = t.to_pandas()[cols].sort_values("order_id", ignore_index=True)
    pd.testing.assert_frame_equal(got, reopened[cols].sort_values("order_id", ignore_index=True))
    pd.testing.assert_frame_equal(
        got.astype({"order_id": str, "customer_id": str}),
        want[cols]
        .sort_values("order_id", ignore_index=True)
        .astype({"order_id": str, "customer_id": str}),
        check_dtype=False,
    )
    assert notes["refund_rows"] == want_notes["refund_rows"] > 0
    assert len(got) == 300 - 60 - 60  # the missing and the refunded statuses left out


def test_a_clean_table_is_typed_as_the_file_reader_types_it(tmp_path):
    """Equal to the CSV's orders, ids as text (id_type: text) even from a BIGINT column; the
    notebook's hand-over holds the notes only and opens the same table again."""
    url = table(tmp_path / "c.db", rows=400)
    csv = tmp_path / "o.csv"
    pd.read_csv(ORDERS, dtype=str, keep_default_na=False).head(400).to_csv(csv, index=False)
    mapping = load_mapping(MAPPING)
    t, notes = read_orders_in_warehouse(url, mapping)
    want, want_notes = read_client_orders(csv, mapping)
    got = t.to_pandas()
    assert list(got.columns) == list(want.columns) and notes["as_of"] == want_notes["as_of"]
    pd.testing.assert_frame_equal(
        got.sort_values("order_id").reset_index(drop=True),
        want.sort_values("order_id").reset_index(drop=True),
        check_dtype=False,
    )
    handover = save_warehouse(notes, tmp_path / "orders.warehouse.json")
    assert f"duckdb://{tmp_path}/c.db" in handover.read_text()
    with pytest.raises(ValueError, match="RETENTION_LAB_SOURCE"):  # no URL handed over
        open_orders(handover)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(sources.SOURCE_ENV, url)
        again, again_notes = open_orders(handover)
        assert engine.is_table(again) and again_notes["rows"] == notes["rows"] == 400
        assert again.count().to_pyarrow().as_py() == len(want)
        mp.setenv(sources.SOURCE_ENV, url.replace("c.db", "other.db"))  # not the table named
        with pytest.raises(ValueError, match="table 'orders' of duckdb://"):
            open_orders(handover)
    assert json.loads(handover.read_text())["table"] == "orders"


def test_no_orders_left_is_one_message(tmp_path):
    url = table(tmp_path / "c.db", "* REPLACE (TIMESTAMP '2026-03-01' AS order_date)", rows=5)
    raw = MAPPING.read_text().split("\ntables:")[0] + "\n"
    (tmp_path / "m.yaml").write_text(raw.replace('as_of: "2025-12-31"', 'as_of: "2025-12-31"\n'
                                                 "after_as_of: report"))  # fmt: skip
    with pytest.raises(DataValidationError, match="table 'orders': no orders left"):
        read_orders_in_warehouse(url, load_mapping(tmp_path / "m.yaml"))


def test_a_warehouse_tables_customer_tables_share_their_id_strings(tmp_path, monkeypatch):
    """On a warehouse table (text ids, no integer codes) the customer summary, the one pass's
    customers and the net revenues hold the same string object for each id (issue 31: each held
    its own copy, 175 MB more than a file at 842k customers), with the values and frames the
    engine gives without the sharing."""
    table(tmp_path / "w.db", select="* REPLACE ('c-' || customer_id AS customer_id)", rows=3000)
    con = ibis.duckdb.connect(str(tmp_path / "w.db"), read_only=True)
    orders = con.table("orders")

    def tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
        engine.forget(orders)
        return (engine.customer_summary(orders, "2025-12-31"),
                engine.customer_table(engine.purchases(orders)).copy(),
                engine.customer_totals(orders))  # fmt: skip

    monkeypatch.setattr(engine, "_shared_ids", lambda values: values)
    before = tables()
    monkeypatch.undo()
    monkeypatch.setattr(engine, "_SHARED_IDS", [])
    after = tables()
    for a, b in zip(before, after, strict=True):
        (pd.testing.assert_series_equal if isinstance(a, pd.Series) else
         pd.testing.assert_frame_equal)(a, b)  # fmt: skip
    seg, ct, net = (x.index for x in after)
    assert seg.dtype == object and len(seg) > 100
    for other in (ct, net):
        where = seg.get_indexer(other)
        assert (where >= 0).mean() > 0.9
        assert all(other[i] is seg[w] for i, w in enumerate(where) if w >= 0)
    con.disconnect()


def test_a_duckdb_tables_checks_run_within_the_memory_limit_for_its_rows(tmp_path, monkeypatch):
    """The report command's checks of a DuckDB table (engine.warehouse_problems) run with
    DuckDB's limit for the table's rows (engine.memory_limit), not DuckDB's default of 80 % of
    the machine (issue 31: at 100M orders the reader reached 8.0 GB, 5.0 GB within the limit)."""
    url = table(tmp_path / "c.db", rows=300)
    seen = []
    check = engine.warehouse_problems

    def spy(t, *args, **kwargs):
        con = t._find_backend().con
        seen.append(con.execute("SELECT current_setting('memory_limit')").fetchall()[0])
        return check(t, *args, **kwargs)

    monkeypatch.setattr(engine, "warehouse_problems", spy)
    orders_only = tmp_path / "m.yaml"
    orders_only.write_text(MAPPING.read_text().split("\ntables:")[0] + "\n")
    read_orders_in_warehouse(url, load_mapping(orders_only))
    want = duckdb.connect()
    want.execute(f"SET memory_limit = '{engine.memory_limit(300)}'")
    assert seen == [want.execute("SELECT current_setting('memory_limit')").fetchall()[0]]


def test_the_kernel_opens_a_duckdb_table_at_the_ranged_limit(tmp_path, monkeypatch):
    """The notebook's kernel opens a DuckDB file's table with engine.RANGED_MEMORY_PER_ROW bytes
    an order (its large per-customer queries run in ranges of the table's ids,
    engine.customer_ranges), not the report command's engine.MEMORY_PER_ROW."""
    monkeypatch.setattr(engine, "MIN_MEMORY_MB", 64)
    monkeypatch.setattr(engine, "RANGED_MIN_MEMORY_MB", 32)
    monkeypatch.setattr(engine, "RANGED_MEMORY_PER_ROW", 10**6)  # 286 MB at 300 orders
    url = table(tmp_path / "c.db", rows=300)
    _, notes = read_orders_in_warehouse(url, load_mapping(MAPPING))
    handover = save_warehouse(notes, tmp_path / "orders.warehouse.json")
    monkeypatch.setenv(sources.SOURCE_ENV, url)
    t, _ = open_orders(handover)
    ranged = engine.memory_limit(notes["rows"], 10**6, 32)
    assert limit_of(t) == setting(ranged) and ranged != engine.memory_limit(notes["rows"])
    monkeypatch.setattr(engine, "RANGED_MEMORY_PER_ROW", 1)  # then the usual floor (each range
    t, _ = open_orders(handover)  # scans the table again), not the coded hand-over's
    assert limit_of(t) == setting("64MB")


@pytest.mark.parametrize("declared", ["nocase", "enum"])
def test_a_collated_tables_text_is_compared_byte_by_byte(tmp_path, monkeypatch, declared):
    """A DuckDB table whose text columns carry a collation (``COLLATE NOCASE``: 'C-1' equal to
    'c-1' there) or whose ids are an ENUM (ordered by its declared values, here the reverse of
    the ids' own order) gives the CSV's orders and customers, ids that differ in case kept
    apart, in Python's order, and its ranges of ids (engine.customer_ranges, bounds placed in
    Python's order) split the customer summary as the one query does: the table's text is read
    as text compared byte by byte (sources.open_table)."""
    spoil = ("* REPLACE ((CASE WHEN order_id % 3 = 0 THEN 'C-' ELSE 'c-' END || customer_id) "
             "AS customer_id, (CASE WHEN order_id % 2 = 0 THEN upper(channel) ELSE channel END) "
             "AS channel)")  # fmt: skip
    url = table(tmp_path / "c.db", spoil, rows=3000)
    con = duckdb.connect(str(tmp_path / "c.db"))
    if declared == "nocase":
        con.execute("ALTER TABLE orders ALTER customer_id TYPE VARCHAR COLLATE NOCASE")
        con.execute("ALTER TABLE orders ALTER channel TYPE VARCHAR COLLATE NOCASE")
        distinct = "SELECT count(DISTINCT customer_id{}) FROM orders"
        merged, apart = (
            con.execute(distinct.format(c)).fetchone()[0] for c in ("", ' COLLATE "binary"')
        )
        assert merged < apart  # the collation merges ids the CSV keeps apart
    else:
        con.execute("CREATE TYPE ids AS ENUM (SELECT DISTINCT customer_id FROM orders "
                    "ORDER BY customer_id DESC)")  # fmt: skip
        con.execute("ALTER TABLE orders ALTER customer_id TYPE ids")
        first = con.execute("SELECT min(customer_id), max(customer_id::VARCHAR) FROM orders")
        assert len(set(first.fetchone())) == 1  # the ENUM's least id is the text's greatest
    csv = tmp_path / "o.csv"
    con.execute(f"COPY orders TO '{csv}' (HEADER)")
    con.close()
    mapping = load_mapping(MAPPING)
    t, _ = read_orders_in_warehouse(url, mapping)
    want, _ = read_client_orders(csv, mapping)
    pd.testing.assert_frame_equal(
        t.to_pandas().sort_values("order_id").reset_index(drop=True),
        want.sort_values("order_id").reset_index(drop=True),
        check_dtype=False,
    )
    whole = engine.customer_summary(t, "2025-12-31")
    assert set(whole.index) == set(want.customer_id)  # 'C-1' and 'c-1' two customers
    engine.forget()
    limit = engine._memory_limit_bytes(t._find_backend().con)
    monkeypatch.setattr(engine, "WINDOW_BYTES_PER_ROW", limit * 5 // 3000 + 1)  # 5 ranges
    assert len(engine.customer_ranges(t, None)) > 2
    pd.testing.assert_frame_equal(engine.customer_summary(t, "2025-12-31"), whole)
    assert whole.index.is_monotonic_increasing and whole.index.is_unique
    engine.forget()
    t._find_backend().disconnect()


def test_only_text_not_compared_byte_by_byte_is_read_again(tmp_path):
    """sources._compares_bytes: a plain VARCHAR is compared byte by byte; a collation of case,
    of accents or of a language (ICU's 'de'), or an ENUM, is not. A table of plain text is read
    as it is (no query around it: the cast cost 7 % of the report's time at 100M orders), and
    only the columns that need it are cast."""
    db = tmp_path / "c.db"
    con = duckdb.connect(str(db))
    con.execute("CREATE TYPE e AS ENUM ('b', 'a')")
    con.execute("CREATE TABLE t (plain VARCHAR, nocase VARCHAR COLLATE NOCASE, "
                "noaccent VARCHAR COLLATE NOACCENT, de VARCHAR COLLATE de, e e, n BIGINT)")  # fmt: skip
    con.execute("CREATE TABLE p AS SELECT plain, n FROM t")
    con.close()
    backend, t, *_ = sources.open_table(f"duckdb://{db}?table=t")
    sql = ibis.to_sql(backend.table("t"), dialect="duckdb")
    said = {c: sources._compares_bytes(backend, sql, f'"{c}"') for c in
            ("plain", "nocase", "noaccent", "de", "e")}  # fmt: skip
    assert said == {"plain": True, "nocase": False, "noaccent": False, "de": False, "e": False}
    query = t.op().query
    assert 'CAST("nocase" AS VARCHAR) COLLATE "binary" AS "nocase"' in query
    assert 'CAST("plain"' not in query and 'CAST("n"' not in query
    backend.disconnect()
    backend, t, *_ = sources.open_table(f"duckdb://{db}?table=p")
    assert not t.op().find(ibis.expr.operations.SQLQueryResult)  # the table itself
    backend.disconnect()
