"""The report command's read stage on a database table, in one process: what the report does before
the notebook starts (issue 31, point 2).

With this tree (``helpers.report.orders.read_orders_in_warehouse``): the table is checked and
given the mapping's rules in its database, and the hand-over holds the notes only. With a tree
from before (``PYTHONPATH`` at a ``git archive`` of an older commit): the mapped columns are
copied into a local Parquet file, read and validated from there, and written to the Arrow
hand-over. Prints the seconds, CPU seconds, peak RSS of this process and the bytes written to the
temporary folders (the copy and the hand-over).

    python benchmarks/bench_warehouse.py --make-db /tmp/engine-bench/data/zamówienia_btyd.csv \\
        /tmp/warehouse-bench/orders.db           # once: bench_report.py's export as a typed table
    python benchmarks/bench_warehouse.py --data 'duckdb:///tmp/warehouse-bench/orders.db?table=zamowienia' \\
        --mapping /tmp/warehouse-bench/sklep_db.yaml

Run each side as a whole process, alternately (A B A B), beside ``/usr/bin/time -v``.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

#: The mapping of the table :func:`make_db` writes (typed: no date format or decimal separator).
MAPPING = """columns:
  customer_id: nr_klienta
  order_date: data
  amount: kwota
  order_id: nr_zamówienia
  channel: kanał
currency: PLN
refunds: net
"""


def make_db(csv: Path, db: Path) -> None:
    """`bench_report.py`'s Polish export (`;`, ``02.01.2023 17:42``, ``1 234,50 zł``, U+2212
    minus or an accounting negative in parentheses, ids with leading zeros) as the typed table
    ``zamowienia`` of the DuckDB file `db`, and its mapping beside it (``sklep_db.yaml``)."""
    import duckdb

    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    con.execute(f"""
        CREATE TABLE zamowienia AS
        SELECT CAST("nr_zamówienia" AS BIGINT) AS "nr_zamówienia", nr_klienta,
               strptime(data, '%d.%m.%Y %H:%M') AS data,
               -- an accounting negative is in parentheses: (19,92 zł) is -19.92
               CAST(replace(regexp_replace(replace(regexp_replace(kwota, '^\\s*\\((.*)\\)\\s*$',
                                                                  '-\\1'), '\u2212', '-'),
                                           '[^0-9,-]', '', 'g'), ',', '.') AS DOUBLE) AS kwota,
               "kanał"
        FROM read_csv('{csv}', delim = ';', all_varchar = true, header = true)""")
    con.close()
    (db.parent / "sklep_db.yaml").write_text(MAPPING, encoding="utf-8")


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--data", help="duckdb:///…?table=… or another database URL")
    what.add_argument("--make-db", nargs=2, metavar=("CSV", "DB"), type=Path,
                      help="write the typed table and its mapping first, then stop")  # fmt: skip
    ap.add_argument("--mapping")
    args = ap.parse_args()
    if args.data and not args.mapping:
        ap.error("--data needs --mapping")
    if args.make_db:
        make_db(*args.make_db)
        return
    from helpers.report import orders, sources
    from helpers.report.mapping import load_mapping

    spec = load_mapping(args.mapping)
    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if hasattr(orders, "read_orders_in_warehouse"):  # this tree: in the database
            side = "in the database"
            table, notes = orders.read_orders_in_warehouse(args.data, spec)
            orders.check_enough_data(table, notes["as_of"], spec.period, "table")
            orders.save_warehouse(notes, tmp / "orders.warehouse.json")
        else:  # a tree from before: the copy
            side = "copied out"
            columns = list(spec.read_columns().values())
            copy = sources.materialize(args.data, tmp, columns)
            table, notes = orders.read_orders(copy, spec, "auto")
            orders.check_enough_data(table, notes["as_of"], spec.period, "table")
            orders.save_validated(table, notes, tmp / "orders.arrow")
        written = folder_bytes(tmp)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{side}: {notes['rows']:,} rows in {wall:.1f} s (CPU {cpu:.1f} s), peak RSS "
        f"{peak:,.0f} MB, written {written / 2**20:,.1f} MB"
    )


if __name__ == "__main__":
    main()
