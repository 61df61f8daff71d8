"""Benchmark (issue 31, point 1): the client report's read stage alone (read, validate, the
mapping's rules, the enough-data check and the hand-over file for the notebook), on the pandas path
(:func:`helpers.report.orders.read_client_orders`: the DuckDB reader's table in pandas, the rules
in pandas) against the engine's (:func:`helpers.report.orders.read_orders_in_engine`: the rules in
DuckDB, the orders streamed to the hand-over file), each in a child process under
``/usr/bin/time -v`` (wall time, maximum resident set), alternately (engine, pandas, engine, …).

Run:  python benchmarks/bench_read.py --data F --mapping M [--pairs 2]
(the 10M-row Polish export: ``bench_report.py --workdir DIR`` writes it; nothing large is committed)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from bench_report import TIME_V, max_rss_mb

ROOT = Path(__file__).resolve().parents[1]

STAGE = textwrap.dedent(
    """
    import sys, time
    from helpers.report import mapping, orders
    data, spec, engine, out = sys.argv[1:5]
    m = mapping.load_mapping(spec)
    t = time.perf_counter()
    o, notes = orders.read_orders(data, m, engine=engine)
    orders.check_enough_data(o, notes["as_of"], m.period, "file")
    orders.save_validated(o, notes, out)
    print(notes["reader"], orders.order_count(o), round(time.perf_counter() - t, 2))
    """
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--mapping", required=True)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args(argv)
    results: dict[str, list[tuple[float, float]]] = {"duckdb": [], "pandas": []}
    with tempfile.TemporaryDirectory(prefix="bench-read-") as tmp:
        for i in range(args.pairs):
            for engine in ("duckdb", "pandas"):
                cmd = [TIME_V, "-v", args.python, "-c", STAGE, args.data, args.mapping, engine,
                       str(Path(tmp) / "orders.arrow")]  # fmt: skip
                start = time.perf_counter()
                run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
                secs = time.perf_counter() - start
                if run.returncode:
                    print(run.stderr)
                    return 1
                peak = max_rss_mb(run.stderr) or float("nan")
                results[engine].append((secs, peak))
                print(f"pair {i + 1} {engine:<7} {run.stdout.strip()}: {secs:.1f} s, "
                      f"max RSS {peak:,.0f} MB", flush=True)  # fmt: skip
    e, p = results["duckdb"], results["pandas"]
    ratios = [a[0] / b[0] for a, b in zip(e, p, strict=True)]
    print(f"engine: median {statistics.median(x[0] for x in e):.1f} s, max RSS "
          f"{max(x[1] for x in e):,.0f} MB; pandas: median {statistics.median(x[0] for x in p):.1f} s, "
          f"max RSS {max(x[1] for x in p):,.0f} MB; paired time ratios engine / pandas "
          f"{', '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
