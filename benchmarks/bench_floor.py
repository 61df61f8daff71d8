"""Benchmark (issue 31): the DuckDB work of the client report alone, beside DuckDB's bare read +
aggregate of the same file, paired in one run -- how far the report's 3x target is from what
its own queries take, before any Python of the notebook's (fits, tables, plots, HTML).

Run:  .venv/bin/python benchmarks/bench_floor.py --data F.csv --mapping M.yaml [--pairs 2]

Data: an export and its mapping, as ``bench_report.py --workdir`` writes them (the Polish shop's
CSV: the baseline parses that format only).

Measured, each pair in two child processes, one after the other:

* ``DuckDB SQL``: ``bench_report.py``'s baseline (:data:`bench_report.DUCKDB_SQL`): the file read
  and parsed, the per-customer aggregates and the monthly cohort counts.
* ``report's DuckDB work``: in one process, the report command's own functions, timed call by
  call (the imports before, not timed): the reader (``read_orders_in_engine``: the file parsed,
  checked and given the mapping's rules), the hand-over (``save_validated``: the coded DuckDB
  file the notebook's kernel opens), then on that file, opened as the kernel opens it (its
  memory limit), one after the other with all of DuckDB's threads: the kernel's four largest
  queries, the one pass per customer (``customer_table``), the acquisition cohorts
  (``cohort_table``), the retention per month (``period_retention``) and the net revenue per
  customer (``customer_totals``). In the report the last four run in the kernel's background
  thread beside the fits (one DuckDB thread); the other queries of the report (the summary, the
  margins, the definitions' sample) come on top. The sum is a floor for the report on this file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

from _common import machine
from bench_report import DUCKDB_SQL, run_measured

ROOT = Path(__file__).resolve().parents[1]

FLOOR = textwrap.dedent(
    """
    import json, sys, tempfile, time
    from pathlib import Path
    from helpers.report import engine as eng, orders as O
    from helpers.report.mapping import load_mapping

    data, mapping = Path(sys.argv[1]), load_mapping(sys.argv[2])
    times = {}

    def timed(name, fn):
        start = time.perf_counter()
        out = fn()
        times[name] = time.perf_counter() - start
        return out

    with tempfile.TemporaryDirectory(prefix="bench-floor-") as folder:
        read = timed("reader", lambda: O.read_orders_in_engine(data, mapping))
        if read is None:
            sys.exit("the file needs the pandas reader: no engine path to time")
        orders, notes = read
        path = timed("hand-over", lambda: O.save_validated(orders, notes, Path(folder) / "o.arrow"))
        O.close_orders(orders)
        t, notes = O.open_orders(path, "duckdb")
        as_of, bought = notes["as_of"], eng.purchases(t)
        timed("customer_table", lambda: eng.customer_table(bought))
        timed("cohort_table", lambda: eng.cohort_table(bought, mapping.period, as_of))
        timed("period_retention", lambda: eng.period_retention(bought, "M", as_of))
        timed("customer_totals", lambda: eng.customer_totals(t))
        O.close_orders(t)
    print(json.dumps(times))
    """
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="the export (bench_report.py's Polish CSV)")
    ap.add_argument("--mapping", required=True)
    ap.add_argument("--pairs", type=int, default=2)
    args = ap.parse_args(argv)
    py = sys.executable
    print(machine())
    print(f"data: {args.data} ({Path(args.data).stat().st_size / 1e6:,.0f} MB)")
    ratios = []
    for i in range(args.pairs):
        duck_s, _, err, rc = run_measured([py, "-c", DUCKDB_SQL, args.data])
        if rc:
            print(err[-2000:], file=sys.stderr)
            return rc
        run = subprocess.run(
            [py, "-c", FLOOR, args.data, args.mapping], cwd=ROOT, capture_output=True, text=True
        )
        if run.returncode:
            print(run.stderr[-3000:], file=sys.stderr)
            return run.returncode
        times = json.loads(run.stdout.strip().splitlines()[-1])
        total = sum(times.values())
        ratios.append(total / duck_s)
        parts = ", ".join(f"{k} {v:.2f}" for k, v in times.items())
        print(f"pair {i + 1}: DuckDB SQL {duck_s:.2f} s; the report's DuckDB work {total:.2f} s "
              f"({parts}): {total / duck_s:.2f} x", flush=True)  # fmt: skip
    print(f"the report's DuckDB work / DuckDB SQL: {', '.join(f'{r:.2f}' for r in ratios)} "
          f"(median {statistics.median(ratios):.2f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
