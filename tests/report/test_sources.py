"""``--data`` beyond a file: a DuckDB table (read where it is) and a Parquet folder give the report
of the same CSV."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from helpers import paths, report
from helpers.report import sources
from helpers.report.mapping import load_mapping
from helpers.report.orders import read_client_orders, read_orders_in_warehouse
from helpers.report.progress import Stages
from helpers.tables import DataValidationError

ORDERS = paths.DATASETS / "orders.csv"
SAMPLE_MAPPING = paths.NOTEBOOKS / "08_sample_mapping.yaml"


def csv_into_duckdb(db: Path, table: str = "orders") -> str:
    """The bundled CSV as a typed table in a DuckDB file (DuckDB's own types: BIGINT ids,
    TIMESTAMP, DOUBLE amounts, BOOLEAN; the client's own column names); returns the --data URL."""
    con = duckdb.connect(str(db))
    con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv('{ORDERS}')")
    con.close()
    return f"duckdb://{db}?table={table}"  # db is absolute: duckdb:///tmp/…


def csv_into_parquet_folder(folder: Path) -> Path:
    raw = pd.read_csv(ORDERS, dtype=str, keep_default_na=False)
    (folder / "year=2025").mkdir(parents=True)
    half = len(raw) // 2
    raw.iloc[:half].to_parquet(folder / "part-0.parquet", index=False)
    raw.iloc[half:].to_parquet(folder / "year=2025" / "part-1.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def from_csv() -> tuple[pd.DataFrame, dict]:
    return read_client_orders(ORDERS, load_mapping(SAMPLE_MAPPING))


def same_orders(path: Path, from_csv) -> None:
    got, notes = read_client_orders(path, load_mapping(SAMPLE_MAPPING))
    want, want_notes = from_csv
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
    assert notes["rows"] == want_notes["rows"] and notes["as_of"] == want_notes["as_of"]


def test_a_duckdb_table_reads_like_the_csv(tmp_path, from_csv):
    """Read, checked and given the rules in the database: the same orders and notes as the CSV's
    (rows in the database's order), and nothing written beside it."""
    url = csv_into_duckdb(tmp_path / "client.db")
    assert (
        sources.is_location(url) and sources.is_database(url) and sources.describe(url) == "orders"
    )
    t, notes = read_orders_in_warehouse(url, load_mapping(SAMPLE_MAPPING))
    want, want_notes = from_csv
    got = t.to_pandas().sort_values("order_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(
        got, want.sort_values("order_id").reset_index(drop=True), check_dtype=False
    )
    assert got["customer_id"].map(type).eq(str).all()  # id_type: text, as the file's
    for key in ("rows", "as_of", "refund_rows", "refund_amount", "data_note"):
        assert notes[key] == want_notes[key], key
    assert notes["reader"] == "warehouse" and notes["source"] == f"duckdb://{tmp_path}/client.db"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["client.db"]


def test_a_parquet_folder_reads_like_the_csv(tmp_path, from_csv):
    folder = csv_into_parquet_folder(tmp_path / "orders")
    assert sources.is_location(folder) and not sources.is_location(ORDERS)
    assert not sources.is_location(paths.NOTEBOOKS)  # a folder without Parquet files
    out = tmp_path / "out"
    out.mkdir()
    same_orders(sources.materialize(folder, out), from_csv)


@pytest.mark.parametrize(
    "data, fragment",
    [
        ("duckdb://{tmp}/client.db", "name the table"),
        (
            "duckdb://{tmp}/client.db?table=orders&table=sales",
            "names 2 tables ('orders', 'sales'); name one",
        ),
        ("duckdb://{tmp}/client.db?table=sales", "table 'sales': no such table"),
        ("duckdb://{tmp}/nowhere.db?table=orders", "no DuckDB database"),
        # DuckDB itself said "Cannot launch in-memory database in read-only mode!"
        (
            "duckdb://{tmp}/orders.csv?table=orders",
            "orders.csv is not a DuckDB database file; a CSV",
        ),
        ("duckdb://{tmp}/notes.db?table=orders", "notes.db is not a DuckDB database file"),
        ("{tmp}/empty", "is a folder, not a file"),  # the file reader's message (exit code 2)
    ],
)
def test_bad_sources_are_refused_clearly(tmp_path, capsys, data, fragment):
    csv_into_duckdb(tmp_path / "client.db")
    (tmp_path / "empty").mkdir()
    (tmp_path / "orders.csv").write_bytes(ORDERS.read_bytes()[:2000])
    (tmp_path / "notes.db").write_text("not a database, though named like one\n" * 10)
    args = ["--data", data.format(tmp=tmp_path), "--mapping", str(SAMPLE_MAPPING)]
    rc = report.main([*args, "--name", "x", "--reports-dir", str(tmp_path / "reports")])
    err = capsys.readouterr().err
    url_refused = fragment.startswith(("name the table", "names 2 tables"))
    assert rc == (1 if url_refused else 2) and fragment in err, err
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())


@pytest.mark.parametrize("slashes", ["///", "////"])
def test_an_absolute_duckdb_path_with_three_or_four_slashes_is_that_file(tmp_path, slashes):
    """``duckdb:///abs/client.db`` (Ibis' form) and ``duckdb:////abs/client.db`` (SQLAlchemy's)
    both open the file at /abs/client.db; a missing one is named as written, not as a relative
    path under a host."""
    csv_into_duckdb(tmp_path / "client.db")
    url = f"duckdb:{slashes}{str(tmp_path).lstrip('/')}/client.db?table=orders"
    con, t, source, table = sources.open_table(url, ["order_id"])
    try:
        assert int(t.count().to_pyarrow().as_py()) == sum(1 for _ in ORDERS.open()) - 1
        assert table == "orders" and source.endswith(f"{tmp_path}/client.db")
    finally:
        con.disconnect()
    with pytest.raises(DataValidationError) as err:
        sources.open_table(url.replace("client.db", "nowhere.db"))
    assert f"no DuckDB database at {slashes[2:]}{str(tmp_path).lstrip('/')}/nowhere.db" in str(
        err.value.problems
    ), err.value.problems


def _without_truths(value):
    """`value` (metrics.json) without its ``truth_*`` entries."""
    if isinstance(value, dict):
        return {k: _without_truths(v) for k, v in value.items() if not str(k).startswith("truth")}
    if isinstance(value, list):
        return [_without_truths(v) for v in value]
    return value


@pytest.mark.slow
def test_report_from_a_duckdb_table_equals_the_report_from_the_csv(tmp_path, capsys, monkeypatch):
    """The table stays in the database: nothing copies it (no Parquet copy, no Arrow hand-over of
    its rows: the notebook gets the notes and opens the table itself) and the report is the
    CSV's."""
    from helpers.report import build, orders

    url = csv_into_duckdb(tmp_path / "client.db")
    root = tmp_path / "reports"
    rows = sum(1 for _ in ORDERS.open()) - 1
    handed: dict[str, list[str]] = {}
    execute = build.run.execute

    def spy(notebook, out, params, kernel=None, **kwargs):  # what the notebook receives
        folder = Path(params["orders_path"]).parent
        handed[params["client_name"]] = sorted(
            p.name for p in folder.iterdir() if p.name not in ("stages", "metrics.json")
        )
        if params["client_name"] == "db":  # the URL in the kernel's environment
            assert kernel.env[sources.SOURCE_ENV] == url
        return execute(notebook, out, params, kernel=kernel, **kwargs)

    monkeypatch.setattr(build.run, "execute", spy)
    for name, data in [("csv", str(ORDERS)), ("db", url)]:
        if name == "db":  # the copies of the file path must not run
            monkeypatch.setattr(sources, "materialize", None)
            monkeypatch.setattr(orders, "save_validated", None)
        args = ["--data", data, "--mapping", str(SAMPLE_MAPPING), "--name", name]
        assert report.main([*args, "--client", name, "--reports-dir", str(root)]) == 0
        err = capsys.readouterr().err  # the stages, one line each, on standard error
        stages = [line.split(":")[0] for line in err.splitlines()]
        handed_over = ["[report] hand over the validated orders to the notebook"]
        assert stages == [
            "[report] read and validate",
            "[report] read and check survey, campaigns, loyalty, points, customers, "
            "marketing_spend, tickets",
            *(handed_over if name == "csv" else []),  # a table: the notes only, no line
            "  [report] load the validated table",
            "  [report] aggregate",  # the notebook's own stages, as its kernel runs them
            "  [report] definitions",
            "  [report] the client's other tables",  # tickets: in the cost to serve of the fit
            "  [report] fit",
            "  [report] the client's campaigns against their holdouts",
            "  [report] covariates",
            "  [report] uncertainty",
            *["  [report] sections"] * 5,  # LTV curves, second orders, attributes, costs, beyond
            "  [report] write customers.csv and at_risk_customers.csv",
            "[report] analyse (notebook 08)",
            "[report] render HTML",
        ], err
        assert f"read and validate: {rows:,} rows in " in err and " rows/s)" in err
    tables = ["campaigns.arrow", "customers.arrow", "loyalty.arrow", "marketing_spend.arrow",
              "points.arrow", "survey.arrow", "tickets.arrow"]  # fmt: skip
    assert handed == {"csv": sorted(["orders.arrow", *tables]),
                      "db": sorted(["orders.warehouse.json", *tables])}  # fmt: skip
    csv, db = (json.loads((root / n / "metrics.json").read_text()) for n in ("csv", "db"))
    assert csv.pop("client") == "csv" and db.pop("client") == "db"
    # the same report, but for the generator's truths: recorded only beside a generated
    # company's own orders file (datasets/ holds ground_truth.json; a database table has none)
    assert _without_truths(csv) == _without_truths(db)
    for export in ("customers.csv", "at_risk_customers.csv"):
        assert (root / "csv" / export).read_bytes() == (root / "db" / export).read_bytes()


@pytest.mark.slow
def test_report_on_the_engine_equals_the_report_on_the_helpers(tmp_path, capsys):
    """The report's aggregations on DuckDB (``--engine duckdb``: Ibis over the validated table,
    what a 10M-row export gets) and on the pandas helpers give the same report: metrics and
    both CSV exports, to float rounding (sums taken in another order)."""
    root = tmp_path / "reports"
    for engine in ("pandas", "duckdb"):
        args = ["--data", str(ORDERS), "--mapping", str(SAMPLE_MAPPING), "--name", engine]
        assert report.main([*args, "--engine", engine, "--reports-dir", str(root)]) == 0, (
            capsys.readouterr().err
        )
    capsys.readouterr()
    on_pandas, on_engine = (
        json.loads((root / n / "metrics.json").read_text()) for n in ("pandas", "duckdb")
    )
    assert on_pandas.pop("client") == "pandas" and on_engine.pop("client") == "duckdb"
    for key, value in on_pandas.items():
        if isinstance(value, float):
            assert on_engine[key] == pytest.approx(value, rel=1e-6, abs=0.011), key
        else:
            assert on_engine[key] == value, key
    for export in ("customers.csv", "at_risk_customers.csv"):
        read = {"dtype": {"customer_id": str}}
        pd.testing.assert_frame_equal(
            pd.read_csv(root / "duckdb" / export, **read),
            pd.read_csv(root / "pandas" / export, **read),
            check_exact=False,
            rtol=1e-6,
        )


def test_stage_lines():
    assert Stages.line("validate", 10_000_000, 50.0) == (
        "[report] validate: 10,000,000 rows in 50.0 s (200,000 rows/s)"
    )
    assert Stages.line("render HTML", None, 1.26) == "[report] render HTML: 1.3 s"
    # a wait for work done before it on a thread: no rate of billions of rows a second
    assert Stages.line("write", 841_883, 0.0000084) == "[report] write: 841,883 rows in 0.0 s"
    assert Stages.line("write", 841_883, 0.0) == "[report] write: 841,883 rows in 0.0 s"
    lines: list[str] = []
    stage = Stages(lines.append)
    with stage("read", 3):
        pass
    with pytest.raises(KeyError), stage("fails"):  # a failed stage prints nothing
        raise KeyError
    assert [d[:2] for d in stage.done] == [("read", 3)] and lines[0].startswith(
        "[report] read: 3 rows"
    )
