"""Benchmark (issues 28 and 31): the bundled report, whole process, from several source trees
alternately -- the paired comparison of "not slower than before" (issue 28: <= 1.10; issue 31:
<= 1.05).

Run:  .venv/bin/python benchmarks/bench_bundled_pairs.py --tree NAME=DIR [--tree NAME=DIR ...]
                                                         [--rounds 5]

Each tree (a checkout or ``git archive`` of a commit, e.g. ``git archive 56f6080 | tar -x -C
/tmp/base56``) runs ``python -m helpers.report --data datasets/orders.csv --mapping
notebooks/08_sample_mapping.yaml`` from its own folder with ``PYTHONPATH=<tree>`` (its own code,
data and sample mapping), one BLAS thread (as the Makefile sets), under ``/usr/bin/time -v``: wall
time, CPU = user + system time of the process and its children (the notebook's kernel included),
and the largest single process's maximum resident set. One warm-up run per tree, then `--rounds`
rounds, each running the trees in the given order (A B C, A B C, ...). The machine's load average
is read before every run. Printed: one line per run, then per tree the medians, and for every
two trees the median (and range) of the per-round ratios of CPU and wall time, later / earlier.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run(tree: Path, python: str, reports: Path) -> dict[str, float]:
    """One report run from `tree` under /usr/bin/time -v: wall, cpu (user + sys), rss_mb, load."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # fmt: skip
    load = os.getloadavg()[0]
    cmd = ["/usr/bin/time", "-v", python, "-m", "helpers.report", "--data", "datasets/orders.csv",
           "--mapping", "notebooks/08_sample_mapping.yaml", "--name", "bench", "--overwrite",
           "--reports-dir", str(reports)]  # fmt: skip
    out = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"the report failed in {tree}:\n{out.stderr[-3000:]}")

    def field(name: str) -> str:
        return re.search(rf"{re.escape(name)}: (.+)", out.stderr).group(1).strip()

    h, m, s = ([0.0] + [float(v) for v in field("Elapsed (wall clock) time (h:mm:ss or m:ss)")
                        .split(":")])[-3:]  # fmt: skip
    return {
        "wall": h * 3600 + m * 60 + s,
        "cpu": float(field("User time (seconds)")) + float(field("System time (seconds)")),
        "rss_mb": float(field("Maximum resident set size (kbytes)")) / 1024,
        "load": load,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--tree", action="append", required=True, help="NAME=DIR; ratios are later / earlier"
    )
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    trees = [(n, Path(d).resolve()) for n, d in (t.split("=", 1) for t in args.tree)]
    results: dict[str, list[dict[str, float]]] = {n: [] for n, _ in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for n, d in trees:  # warm-up: file caches, compiled bytecode
            run(d, args.python, Path(tmp) / n)
        for k in range(args.rounds):
            for n, d in trees:
                r = run(d, args.python, Path(tmp) / n)
                results[n].append(r)
                print(f"round {k + 1} {n:>10}: wall {r['wall']:6.1f} s  cpu {r['cpu']:6.2f} s  "
                      f"max rss {r['rss_mb']:5.0f} MiB  load {r['load']:.1f}", flush=True)  # fmt: skip
    for n, _ in trees:
        rs = results[n]
        print(f"{n:>10}: median wall {statistics.median(r['wall'] for r in rs):6.1f} s, cpu "
              f"{statistics.median(r['cpu'] for r in rs):6.2f} s, max rss "
              f"{max(r['rss_mb'] for r in rs):5.0f} MiB")  # fmt: skip
    for i, (a, _) in enumerate(trees):
        for b, _ in trees[i + 1 :]:
            pairs = list(zip(results[b], results[a], strict=True))
            cpu = [x["cpu"] / y["cpu"] for x, y in pairs]
            wall = [x["wall"] / y["wall"] for x, y in pairs]
            print(f"{b} / {a}: cpu ratio median {statistics.median(cpu):.3f} "
                  f"(range {min(cpu):.3f}-{max(cpu):.3f}), wall ratio median "
                  f"{statistics.median(wall):.3f} (range {min(wall):.3f}-{max(wall):.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
