"""Benchmark (issue 31): notebook 08's covariates and uncertainty stages alone, on a large export.

Run (each a whole process; pair two trees A B A B with ``PYTHONPATH=<tree>``):

    python benchmarks/covariate_stages.py DATA MAPPING WORKDIR prepare
    python benchmarks/covariate_stages.py DATA MAPPING WORKDIR run [NAME]

``prepare`` validates DATA with MAPPING once (the report command's hand-over,
``WORKDIR/orders.arrow``, or ``orders.validated.duckdb`` for the engine's table, and the
client's other tables beside it), runs notebook 08's cells up to
the covariates step (the aggregations and the fit) and pickles what the two stages take
(``WORKDIR/state.pkl``: the customer summary, the CLV fit, the economics, the measured actions).
``run`` opens the hand-over as the notebook does, then runs the notebook's own source of the
covariates step (``covariates_view.compare`` / ``use``) and of the uncertainty step (CLV
intervals, the holdout check, the actions; with the at-risk list before it) and prints, per
stage, the wall and CPU time (``time.process_time``: this process with DuckDB's threads) and the
resident memory before, after and at its peak (sampled every 10 ms). With ``PROF=1`` each stage
runs under cProfile. The results (the covariate comparison, the CLV table, the intervals, the
check, the actions) are pickled to ``WORKDIR/NAME.pkl`` to compare two trees' numbers.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import sys
import threading
import time
from pathlib import Path

import matplotlib
import psutil

matplotlib.use("Agg")
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "08_case_study_client_report.ipynb"


def main(argv: list[str]) -> None:
    data, mapping_path, work, mode = Path(argv[0]), Path(argv[1]), Path(argv[2]), argv[3]
    name = argv[4] if len(argv) > 4 else "result"
    work.mkdir(parents=True, exist_ok=True)
    from helpers.report.orders import ENGINE_HANDOVER_SUFFIX

    # the hand-over: an Arrow file, or for the engine's table a DuckDB file (save_validated's path)
    handover = work / "orders.arrow"
    if not handover.exists() and (work / ("orders" + ENGINE_HANDOVER_SUFFIX)).exists():
        handover = work / ("orders" + ENGINE_HANDOVER_SUFFIX)
    if not handover.exists():
        from helpers.report.mapping import load_mapping
        from helpers.report.orders import (
            read_client_tables,
            read_orders,
            save_tables,
            save_validated,
        )

        spec = load_mapping(mapping_path)
        orders, notes = read_orders(data, spec, "auto")
        if spec.tables:
            notes["tables"] = save_tables(read_client_tables(orders, notes), work)
        handover = save_validated(orders, notes, handover)
    proc, peak = psutil.Process(), [0]

    def sample() -> None:
        while True:
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.01)

    threading.Thread(target=sample, daemon=True).start()
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    codes = [c for c in nb["cells"] if c["cell_type"] == "code"]
    ns: dict = {"__name__": "__main__"}
    params = dict(data_path=str(data), orders_path=str(handover), mapping_path=str(mapping_path),
                  export_dir="")  # fmt: skip
    for c in codes[:2]:  # the parameters and the imports, which open the hand-over
        exec("".join(c["source"]), ns)
        if "parameters" in (c["metadata"].get("tags") or []):
            ns.update(params)
    cell = ast.parse("".join(codes[2]["source"])).body  # aggregate ... uncertainty
    cut = next(i for i, st in enumerate(cell) if "covariates:" in ast.unparse(st))
    state = work / "state.pkl"
    if mode == "prepare":
        exec(compile(ast.Module(cell[:cut], []), "prepare", "exec"), ns)
        keep = ("seg", "clv_fit", "econ", "measured", "AS_OF")
        state.write_bytes(pickle.dumps({k: ns[k] for k in keep}))
        return
    ns.update(pickle.loads(state.read_bytes()))
    from helpers import report

    ns["bought"] = report.purchases(ns["orders"])
    ns["tables"] = report.open_tables(ns["orders"], ns["notes"])
    stages = {"cov": ast.unparse(cell[cut]),
              "unc": "\n".join(ast.unparse(s) for s in cell[cut + 1 : cut + 5])}  # fmt: skip
    print("load average:", os.getloadavg(), flush=True)
    for stage, src in stages.items():
        peak[0] = r0 = proc.memory_info().rss
        t0, c0 = time.perf_counter(), time.process_time()
        if os.environ.get("PROF"):
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.runctx(compile(src, stage, "exec"), ns, ns)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(45)
        else:
            exec(compile(src, stage, "exec"), ns)
        time.sleep(0.03)
        print(f"STAGE {stage}: {time.perf_counter() - t0:6.2f} s wall "
              f"{time.process_time() - c0:6.2f} s cpu rss {r0 / 1e6:.0f} -> "
              f"{proc.memory_info().rss / 1e6:.0f} MB peak {peak[0] / 1e6:.0f} MB "
              f"(+{(peak[0] - r0) / 1e6:.0f})", flush=True)  # fmt: skip
    print("load average:", os.getloadavg(), flush=True)
    cov = ns["cov"]
    out = {k: ns.get(k) for k in ("clv_fit", "clv_iv", "check", "recs", "at_risk")}
    out["cov"] = {k: getattr(cov, k) for k in
                  ("used", "why", "lr", "holdout", "effects", "fit", "levels", "error")}  # fmt: skip
    (work / f"{name}.pkl").write_bytes(pickle.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
