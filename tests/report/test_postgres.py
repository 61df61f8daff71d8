"""A real PostgreSQL server (Debian's package, started by :mod:`tests.report.pg`): a PostgreSQL table
is checked, given the mapping's rules and aggregated in PostgreSQL (nothing copied out), and the
report from it equals the report from the same data as a CSV file.

Skipped with the reason when no server binary exists, outside CI only (``make postgres`` installs
it; CI runs it before ``make test``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import report
from helpers.report import sources
from helpers.report.mapping import load_mapping
from helpers.report.orders import read_client_orders, read_orders_in_warehouse
from helpers.tables import DataValidationError
from tests.report.clients import orders_only_mapping, raw_orders, second_client
from tests.report.pg import (
    ORDER_TYPES,
    PASSWORD,
    Server,
    load_text_table,
    load_typed_table,
    postgres_server,
)

pytest.importorskip("psycopg")

#: A small company for the report runs: the bundled orders of its first customers.
CUSTOMERS = 800


@pytest.fixture(scope="module")
def server() -> Server:
    with postgres_server() as s:
        yield s


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[pd.DataFrame, Path, Path]:
    """(raw text rows, CSV file, orders-only sample mapping) of the small company."""
    folder = tmp_path_factory.mktemp("small")
    raw = raw_orders()
    ids = pd.Series(raw["customer_id"].unique()[:CUSTOMERS])
    raw = raw[raw["customer_id"].isin(ids)].reset_index(drop=True)
    data = folder / "orders.csv"
    raw.to_csv(data, index=False)
    return raw, data, orders_only_mapping(folder)


def same_orders(url: str, csv: Path, mapping: Path, keys: list[str]) -> dict:
    """The orders read in PostgreSQL equal the CSV's (sorted by `keys`: a table has no row
    order), with the same notes; returns the table's notes."""
    want, want_notes = read_client_orders(csv, load_mapping(mapping))
    t, notes = read_orders_in_warehouse(url, load_mapping(mapping))
    got = t.to_pandas()
    assert list(got.columns) == list(want.columns)
    if "order_id" not in keys:  # the order id is the row's place: in the file, or in the scan
        got, want = got.drop(columns="order_id"), want.drop(columns="order_id")
    got, want = (f.sort_values(keys).reset_index(drop=True) for f in (got, want))
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    for key in ("rows", "as_of", "refund_rows", "refund_amount", "data_note"):
        assert notes[key] == want_notes[key], key
    return notes


def test_a_postgres_table_reads_like_the_csv(server, small, tmp_path):
    raw, csv, mapping = small
    url = load_typed_table(server, "orders", raw)
    assert sources.is_database(url) and sources.describe(url) == "orders"
    notes = same_orders(url, csv, mapping, ["order_id"])
    assert notes["source"] == f"postgres://lab:***@127.0.0.1:{server.port}/postgres"
    assert not any(tmp_path.iterdir())  # nothing copied out


def test_padded_text_in_a_postgres_table_reads_like_the_csv(server, small, tmp_path):
    """Customer ids (text) and channels padded with an ASCII space, a no-break space or an
    ideographic space at either end: PostgreSQL's regular expressions trim them as the CSV's
    readers do (str.strip()), so the same customers and channels as the CSV's, and only the
    padded columns are trimmed (the others read as stored)."""
    raw, _, mapping = small
    raw = raw.head(600).copy()
    pads = np.array([" ", "\u00a0", "\u3000"])[np.arange(len(raw)) % 3]
    front = np.arange(len(raw)) % 2 == 0
    raw["customer_id"] = np.where(front, pads + raw["customer_id"], raw["customer_id"] + pads)
    raw["channel"] = np.where(front, raw["channel"], raw["channel"] + pads)
    csv = tmp_path / "padded.csv"
    raw.to_csv(csv, index=False)
    url = load_typed_table(server, "padded", raw, {**ORDER_TYPES, "customer_id": "text"})
    notes = same_orders(url, csv, mapping, ["order_id"])
    assert notes["trimmed"] == ["customer_id", "channel"]


def test_only_the_mapped_columns_are_read(server, small):
    """The projection runs in PostgreSQL: a column the mapping does not name is never read."""
    raw, _, mapping = small
    url = load_typed_table(server, "wide", raw.head(100).assign(card_number="4111 1111"))
    columns = list(load_mapping(mapping).read_columns().values())
    con, t, source, table = sources.open_table(url, columns)
    try:
        assert list(t.columns) == columns and table == "wide" and PASSWORD not in source
        assert "card_number" not in str(ibis_sql(t))
    finally:
        con.disconnect()


def ibis_sql(t) -> str:
    import ibis

    return ibis.to_sql(t, dialect="postgres")


def test_a_client_shaped_export_in_postgres_reads_like_its_csv(server, tmp_path):
    """Polish column names, no order id: a typed table with the client's names reads with the
    client's mapping as the same export as a file (the file's day-first dates and comma decimals
    are the warehouse's timestamps and numbers). Stored as text, the dates and amounts are
    refused, one message per column, naming its type."""
    csv, mapping = second_client(tmp_path)
    raw = pd.read_csv(csv, sep=";", dtype=str, keep_default_na=False, encoding="cp1250")
    typed = raw.assign(
        data_zamówienia=pd.to_datetime(raw["data_zamówienia"], format="%d.%m.%Y %H:%M:%S")
        .dt.strftime("%Y-%m-%d %H:%M:%S"),
        kwota=raw["kwota"].str.replace(".", "").str.replace(",", "."),
    )  # fmt: skip
    types = {"nr_klienta": "bigint", "data_zamówienia": "timestamp", "kwota": "numeric"}
    url = load_typed_table(server, "zamowienia", typed, types)
    same_orders(url, csv, mapping, ["order_date", "customer_id", "amount", "channel"])
    url = load_text_table(server, "zamowienia_tekst", raw)
    with pytest.raises(DataValidationError) as err:
        read_orders_in_warehouse(url, load_mapping(mapping))
    source = f"postgres://lab:***@127.0.0.1:{server.port}/postgres, table 'zamowienia_tekst'"
    assert sorted((p.column, p.code) for p in err.value.problems) == [
        ("amount", "wrong_type"),
        ("order_date", "wrong_type"),
    ]
    assert f"{source}, column 'data_zamówienia' (order_date): is of type string" in str(err.value)


def _html_text(path: Path, *names: str) -> str:
    html = path.read_text(encoding="utf-8")
    for name in names:
        html = html.replace(name, "<source>")
    html = re.sub(r"cell-id=[0-9a-f-]+", "cell-id", html)  # random per execution
    return re.sub(r"\s+", " ", html)


@pytest.mark.slow
def test_report_from_postgres_equals_report_from_the_csv(server, small, tmp_path, capsys,
                                                         monkeypatch):  # fmt: skip
    raw, csv, mapping = small
    url = load_typed_table(server, "orders", raw)
    # one pseudonym key for both reports (random per report otherwise), so their HTML compares
    monkeypatch.setattr("helpers.report.build.secrets.token_hex", lambda n=16: "ab" * n)
    root = tmp_path / "reports"
    for name, data in [("csv", str(csv)), ("pg", url)]:
        args = ["--data", data, "--mapping", str(mapping), "--name", name, "--client", "Client"]
        assert report.main([*args, "--reports-dir", str(root)]) == 0, capsys.readouterr().err
    # the password in libpq's PGPASSWORD rather than the URL: out of the process list (`ps`),
    # for the command and the notebook's kernel, which inherits the environment
    bare = server.url(password=None) + "?table=orders"
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    args = ["--data", bare, "--mapping", str(mapping), "--name", "pgenv", "--client", "Client"]
    assert report.main([*args, "--reports-dir", str(root)]) == 0, capsys.readouterr().err
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err
    csv_m, pg_m, env_m = (
        json.loads((root / n / "metrics.json").read_text()) for n in ("csv", "pg", "pgenv")
    )
    assert csv_m == pg_m == env_m
    for export in ("customers.csv", "at_risk_customers.csv"):
        assert (root / "csv" / export).read_bytes() == (root / "pg" / export).read_bytes()
        assert (root / "csv" / export).read_bytes() == (root / "pgenv" / export).read_bytes()
    csv_html = _html_text(root / "csv" / "report.html", str(csv), csv.name)
    pg_html = _html_text(root / "pg" / "report.html", url, sources.redact(url))
    env_html = _html_text(root / "pgenv" / "report.html", bare, sources.redact(bare))
    assert env_html == pg_html
    for name in ("pg", "pgenv"):  # nor in the delivered notebook (its parameters)
        assert PASSWORD not in (root / name / "report.ipynb").read_text(encoding="utf-8")
    assert PASSWORD not in pg_html and PASSWORD not in json.dumps(pg_m)
    if csv_html != pg_html:  # the first lines that differ, not two whole pages
        import difflib

        lines = [h.replace(">", ">\n").splitlines() for h in (csv_html, pg_html)]
        diff = list(difflib.unified_diff(*lines, n=0, lineterm=""))[:12]
        raise AssertionError("the HTML differs:\n" + "\n".join(x[:300] for x in diff))


# ------------------------------------------------------------------ bad input: one clear message


def _refused(args: list[str], root: Path, capsys) -> str:
    """Run the report command expecting exit code 2 and nothing written; return its message."""
    rc = report.main([*args, "--name", "x", "--reports-dir", str(root)])
    out, err = capsys.readouterr()
    assert rc == 2, err
    assert PASSWORD not in out + err  # the password never appears
    assert not root.exists() or not any(root.iterdir())  # nothing left behind
    return err


def test_a_table_without_a_mapped_column_is_refused(server, small, tmp_path, capsys):
    raw, _, mapping = small
    url = load_typed_table(server, "no_amount", raw.drop(columns=["amount"]).head(50))
    err = _refused(["--data", url, "--mapping", str(mapping)], tmp_path / "r", capsys)
    source = f"postgres://lab:***@127.0.0.1:{server.port}/postgres"
    assert f"{source}, table 'no_amount', column 'amount': the mapping names this column" in err


def test_a_connection_that_fails_is_refused(server, small, tmp_path, capsys):
    _, _, mapping = small
    wrong = server.url(password="not-" + PASSWORD) + "?table=orders"  # authentication fails
    err = _refused(["--data", wrong, "--mapping", str(mapping)], tmp_path / "r", capsys)
    assert "postgres://lab:***@127.0.0.1" in err and "table 'orders': cannot connect" in err
    assert "not-" not in err  # the wrong password is not shown either
    closed = Server(server.host, 1, server.folder).url() + "?table=orders"  # nothing listens
    err = _refused(["--data", closed, "--mapping", str(mapping)], tmp_path / "r", capsys)
    assert "postgres://lab:***@127.0.0.1:1/postgres, table 'orders': cannot connect" in err


def test_a_table_the_user_cannot_read_is_refused(server, small, tmp_path, capsys):
    raw, _, mapping = small
    load_typed_table(server, "private", raw.head(50))
    with server.connect() as con:
        con.execute("DROP ROLE IF EXISTS guest")
        con.execute(f"CREATE ROLE guest LOGIN PASSWORD '{PASSWORD}'")  # no SELECT on 'private'
    url = server.url(user="guest") + "?table=private"
    err = _refused(["--data", url, "--mapping", str(mapping)], tmp_path / "r", capsys)
    assert "postgres://guest:***@127.0.0.1" in err and "table 'private': cannot be read" in err
    assert "permission denied" in err


def test_redact_removes_every_password():
    assert (
        sources.redact("postgres://u:p%40ss@h:5/db?table=t&sslmode=require")
        == "postgres://u:***@h:5/db?sslmode=require"
    )
    assert sources.redact("duckdb:///tmp/c.db?table=orders") == "duckdb:///tmp/c.db"
    assert "pw" not in sources.redact("postgres://u@h/db?password=pw&table=t")


def test_a_bad_value_inside_the_table_is_refused(server, small, tmp_path, capsys):
    """Found by the checks in PostgreSQL: a count and an example come back, nothing else."""
    raw, _, mapping = small
    bad = raw.head(60).copy()
    bad.loc[[3, 8], "order_date"] = ""  # NULL in the table
    bad.loc[5, "order_id"] = bad.loc[6, "order_id"]
    url = load_typed_table(server, "spoiled", bad)
    err = _refused(["--data", url, "--mapping", str(mapping)], tmp_path / "r", capsys)
    source = f"postgres://lab:***@127.0.0.1:{server.port}/postgres, table 'spoiled'"
    assert f"{source}, column 'order_date': 2 rows are empty (e.g. '')" in err
    dup = bad.loc[5, "order_id"]
    assert f"{source}, column 'order_id': 2 rows are duplicated (1 distinct ids appear more " \
           f"than once) (e.g. '{dup}')" in err  # fmt: skip


def test_side_tables_in_postgres_have_statistics_and_join_as_a_memtable(server, small):
    """A frame joined to the orders in PostgreSQL (engine._side_table) is a temporary table whose
    statistics are taken (its rows known to the planner, unlike Ibis's memtable), and the join
    gives what the memtable's gives; on DuckDB the frame stays a memtable."""
    import ibis

    from helpers.report import engine

    raw, _, _ = small
    url = load_text_table(server, "side_orders", raw[["customer_id", "order_date"]])
    con, t, *_ = sources.open_table(url, ["customer_id", "order_date"])
    try:
        ids = raw["customer_id"].drop_duplicates().iloc[::3].reset_index(drop=True)
        frame = pd.DataFrame({"customer_id": ids, "_i": range(len(ids))})
        side = engine._side_table(t, frame)
        name = side.op().name
        assert name.startswith("retention_lab_side_")
        with server.connect() as pg:
            tuples = pg.execute(
                "SELECT reltuples FROM pg_class WHERE relname = %s", [name]
            ).fetchall()
        assert tuples == [(len(ids),)]  # ANALYZE ran: -1 before it

        def per_customer(other):
            j = t.join(other, "customer_id")
            n = j.group_by("_i").agg(n=j.count()).to_pandas()
            return n.sort_values("_i").reset_index(drop=True)

        got = per_customer(side)
        pd.testing.assert_frame_equal(got, per_customer(ibis.memtable(frame)))
        assert got["n"].sum() == raw["customer_id"].isin(ids).sum()
    finally:
        con.disconnect()
    duck = ibis.duckdb.connect()
    local = duck.create_table("o", raw[["customer_id"]])
    assert isinstance(engine._side_table(local, frame).op(), ibis.expr.operations.InMemoryTable)


def test_month_codes_in_postgres_are_integers_equal_to_pandas(server):
    """engine.period_code in PostgreSQL (EXTRACT gives numeric there: the code casts the year and
    month to integers) equals helpers.periods.period_codes, before 1970 too."""
    import ibis

    from helpers import periods
    from helpers.report import engine

    dates = pd.Series(["1969-12-31 23:59:00", "1970-01-01 00:00:00", "2024-02-29 12:00:00",
                       "2025-12-31 23:59:59", "1900-03-01 00:00:00"])  # fmt: skip
    url = load_typed_table(server, "month_codes", pd.DataFrame({"order_date": dates}),
                           {"order_date": "timestamp"})  # fmt: skip
    con, t, *_ = sources.open_table(url, ["order_date"])
    try:
        for freq in ("M", "Q"):
            code = engine.period_code(t.order_date, freq)
            assert code.type().is_integer()
            sql = ibis.to_sql(t.select(c=code), dialect="postgres")
            assert "CAST(EXTRACT(year FROM" in sql and "CAST(EXTRACT(month FROM" in sql
            got = t.select(d=t.order_date, c=code).order_by("d").to_pandas()
            want = periods.period_codes(pd.to_datetime(got["d"]).to_numpy(), freq)
            assert got["c"].tolist() == list(want), freq
    finally:
        con.disconnect()


def test_a_language_collation_leaves_the_customers_in_pythons_order(server, small):
    """Text ids in a column of a language's collation (ICU's en-x-icu, as a server's
    en_US.UTF-8 database has by default): PostgreSQL sorts 'Ca1' before 'c-1' there, and the
    customer summary came back in that order, not the CSV's (the exports' rows and the
    intervals' resampled customers with it). Read with the "C" collation
    (helpers.report.sources.open_table), the summary is in Python's order of the ids, which are
    the CSV's."""
    from helpers.report import engine

    raw, csv, mapping = small
    prefix = pd.Series(["c-", "C_", "c.", "Ca"])[raw["order_id"].astype(int) % 4].to_numpy()
    raw = raw.assign(customer_id=prefix + raw["customer_id"])
    types = dict(ORDER_TYPES, customer_id='text COLLATE "en-x-icu"')
    url = load_typed_table(server, "icu", raw, types)
    t, _ = read_orders_in_warehouse(url, load_mapping(mapping))
    summary = engine.customer_summary(t, "2025-12-31")
    assert list(summary.index) == sorted(set(raw["customer_id"]))
    engine.forget()
    t._find_backend().disconnect()


def test_an_enum_column_reads_as_its_text(server, small):
    """A text column the mapping reads, declared as an enum (PostgreSQL orders an enum by its
    declared values, here the reverse of the texts' order, and refuses the probes of
    helpers.report.sources._compares_bytes): read as its text, the orders equal the CSV's."""
    raw, csv, mapping = small
    values = sorted({v for v in raw["channel"] if v}, reverse=True)
    with server.connect() as con, con.cursor() as cur:
        cur.execute("DROP TYPE IF EXISTS channel_enum CASCADE")
        cur.execute(
            "CREATE TYPE channel_enum AS ENUM (" + ", ".join(f"'{v}'" for v in values) + ")"
        )
    url = load_typed_table(server, "enum_orders", raw, dict(ORDER_TYPES, channel="channel_enum"))
    con, t, *_ = sources.open_table(url, ["channel", "customer_id"])
    try:  # the enum recast, the integer ids left as they are
        assert 'CAST("channel" AS text) COLLATE "C"' in t.op().query
        assert '"customer_id" AS' not in t.op().query
    finally:
        con.disconnect()
    same_orders(url, csv, mapping, ["order_id"])


def test_large_results_come_from_postgres_in_batches_and_equal_one_fetch(
    server, small, monkeypatch
):
    """engine.to_arrow / engine.to_pandas fetch a PostgreSQL result engine.FETCH_ROWS rows at a
    time (Ibis's default is a million rows as Python tuples at once: 817 MB at 842k customers)
    and give the same table and frame as Ibis's own fetch; DuckDB's results are handed over
    as Arrow, without batches."""
    from ibis.backends.postgres import Backend

    from helpers.report import engine

    raw, _, _ = small
    url = load_typed_table(server, "batched", raw)
    con, t, _, _ = sources.open_table(url, list(raw.columns))
    sizes = []
    batches = Backend.to_pyarrow_batches

    def spy(self, expr, /, **kwargs):
        sizes.append(kwargs.get("chunk_size"))
        return batches(self, expr, **kwargs)

    monkeypatch.setattr(Backend, "to_pyarrow_batches", spy)
    monkeypatch.setattr(engine, "FETCH_ROWS", 97)
    try:
        per = t.group_by("customer_id").agg(n=t.count(), total=t.amount.sum(),
                                            first=t.order_date.min()).order_by("customer_id")  # fmt: skip
        assert engine.to_arrow(per).equals(per.to_pyarrow())
        pd.testing.assert_frame_equal(engine.to_pandas(per), per.to_pandas())
        assert sizes and set(sizes) == {97, None}  # ours in batches, Ibis's own in one
        assert len(per.to_pyarrow_batches(chunk_size=97).read_all().to_batches()) > 1
    finally:
        con.disconnect()
    local = ibis_memtable(raw.head(50))
    sizes.clear()
    assert engine._fetch_kwargs(local) == {}
    assert len(engine.to_pandas(local)) == 50 and not sizes


def ibis_memtable(frame: pd.DataFrame):
    import ibis

    return ibis.memtable(frame)


def test_postgres_samples_the_same_customers_as_duckdb(server, small):
    """engine.sample_customers draws the same customers from the same rows in PostgreSQL and in
    DuckDB (each database's own hash() differs: the 10M PostgreSQL report's lapsed-or-lost window
    was computed on other customers than the CSV's)."""
    import ibis

    from helpers.report import engine

    raw, _, _ = small
    url = load_typed_table(server, "sampled", raw)
    con, t, _, _ = sources.open_table(url, list(raw.columns))
    try:
        got = set(engine.sample_customers(t, 7).customer_id.execute().astype(str))
    finally:
        con.disconnect()
    local = ibis.memtable(raw.assign(customer_id=raw["customer_id"].astype("int64")))
    want = set(engine.sample_customers(local, 7).customer_id.execute().astype(str))
    assert got == want and 0 < len(want) < raw["customer_id"].nunique() / 3


def test_a_side_table_reaches_postgres_as_ibis_would_insert_it(server, small, monkeypatch):
    """engine._side_table fills its temporary table by COPY, engine.FETCH_ROWS rows at a time:
    texts with quotes, tabs, newlines and backslashes, missing values, NaN, times and integers
    come back as the frame holds them (as Ibis's own insert gave them)."""
    import numpy as np

    from helpers.report import engine

    raw, _, _ = small
    url = load_typed_table(server, "sided", raw.head(20))
    con, t, _, _ = sources.open_table(url, list(raw.columns))
    monkeypatch.setattr(engine, "FETCH_ROWS", 3)
    frame = pd.DataFrame({
        "customer_id": ["a", 'b"q', "c\td", "e\nf", "g\\h", "", "ü €"],
        "n": np.arange(7, dtype="int64"),
        "x": [0.1, np.nan, -2.5e-300, 1e300, 3.0, 0.0, -0.0],
        "when": pd.to_datetime(["2024-01-01 10:00:00.123456", None, "1999-12-31 00:00:00", "2024-02-29 00:00:00",
                                "2024-03-01 00:00:00", "2024-03-02 00:00:00", "2024-03-03 00:00:00"], format="ISO8601"),
        "label": ["x", None, "z", "w", None, "v", "u"],
    })  # fmt: skip
    try:
        side = engine._side_table(t, frame)
        got = side.order_by("n").to_pandas()
    finally:
        con.disconnect()
    pd.testing.assert_frame_equal(got, frame, check_dtype=False)
