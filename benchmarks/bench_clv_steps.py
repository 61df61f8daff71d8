"""Benchmark (issues 31 and 28): notebook 08's steps from the CLV fit on, one process, the CPU time
of each, on a large export: what the CLV arithmetic after the fit, the calibration split and the
first-order attributes cost.

Run (each a whole process; pair two trees A B A B with ``PYTHONPATH=<tree>``)::

    PYTHONPATH=<tree> python benchmarks/bench_clv_steps.py DATA MAPPING [--check FILE]

The orders are validated and opened as the report command hands them to the notebook
(:func:`helpers.report.orders.read_client_orders`, then ``report.open_orders(..., "auto")``: an
Ibis table on DuckDB from 1M orders), the aggregations run as notebook 08's cell 4 (headline,
customer summary, the client's other tables, the economics folded), then each step is timed
(``time.process_time``: this process with DuckDB's threads; and wall time):

``fit`` (``report.fit_clv``), ``covariates`` (``covariates_view.attributes`` + ``compare`` +
``use``), ``uncertainty`` (``covariates_view.clv_interval`` + ``report.holdout_check``),
``scenario`` (``report.dropout_scenario`` + ``scenario_interval``), ``acquisition inputs``
(``acquisition_views.read_inputs``: the first-order attributes again) and ``ltv curves``
(``acquisition_views.ltv_curves``: the model's projection per customer). Recommendations and
plots are not run. With ``--check FILE`` the numbers (the CLV table's total, the scenario and
its interval, the holdout check, the covariate decision) are written to FILE, or compared with
it when it exists (largest relative difference printed).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("mapping")
    ap.add_argument("--check", help="write the numbers here, or compare with them")
    args = ap.parse_args()
    from helpers import report
    from helpers.report import acquisition_views, covariates_view
    from helpers.report.analysis import fold_economics, scenario_interval
    from helpers.report.mapping import load_mapping
    from helpers.report.orders import read_client_orders

    t0 = time.process_time()
    mapping = load_mapping(Path(args.mapping))
    orders, notes = report.open_orders(read_client_orders(Path(args.data), mapping), "auto")
    mapping, as_of = notes["mapping"], notes["as_of"]
    econ = report.client_economics(mapping)
    report.headline(orders, as_of)
    bought = report.purchases(orders)
    seg = report.segment_customers(orders, as_of)
    tables = report.open_tables(orders, notes)
    econ, _ = fold_economics(orders, econ, tables.get("tickets"))
    print(f"read and aggregate: {time.process_time() - t0:.1f} s CPU, {len(seg):,} customers")
    out: dict[str, float | str] = {}

    def step(name: str, fn):  # noqa: ANN001, ANN202
        c, w = time.process_time(), time.perf_counter()
        res = fn()
        print(f"{name:<20} {time.process_time() - c:7.2f} s CPU {time.perf_counter() - w:7.2f} s wall",
              flush=True)  # fmt: skip
        return res

    fit, why = step("fit", lambda: report.fit_clv(orders, seg, econ))
    assert fit is not None, why
    out["clv_total"] = float(fit.table["clv"].sum())

    def covariates():  # noqa: ANN202
        cov = covariates_view.compare(
            orders, seg, fit, covariates_view.attributes(tables, mapping, bought)
        )
        return cov, covariates_view.use(cov, fit, seg, econ)

    cov, used = step("covariates", covariates)
    out["covariates"] = cov.why
    out["clv_total_used"] = float(used.table["clv"].sum())

    def uncertainty():  # noqa: ANN202
        iv = covariates_view.clv_interval(cov, used, seg, econ)
        return iv, report.holdout_check(used, orders, seg)

    iv, check = step("uncertainty", uncertainty)
    out |= {
        "ci_low": float(iv.loc["total", "ci_low"]),
        "ci_high": float(iv.loc["total", "ci_high"]),
    }
    out |= {f"check_{k}": float(v) for k, v in check.items()}

    def scenario():  # noqa: ANN202
        return report.dropout_scenario(used, seg, econ, 0.10), scenario_interval(
            used, seg, econ, 0.10
        )

    scen, scen_iv = step("scenario", scenario)
    out |= {f"scenario_{k}": float(v) for k, v in scen.items()}
    out |= {f"scenario_iv_{k}": float(v) for k, v in scen_iv.items()}
    step("acquisition inputs",
         lambda: acquisition_views.read_inputs(tables, mapping, bought, args.data))  # fmt: skip
    ltv = step("ltv curves", lambda: acquisition_views.ltv_curves(bought, seg, econ, used))
    print(f"total CPU {time.process_time() - t0:.1f} s; load {os.getloadavg()[0]:.1f}")
    del ltv
    if args.check:
        path = Path(args.check)
        if path.exists():
            old = json.loads(path.read_text())
            for k in old:
                if isinstance(old[k], float) and out[k] != old[k]:
                    rel = abs(out[k] - old[k]) / max(abs(old[k]), 1e-300)
                    print(f"  {k}: {old[k]!r} -> {out[k]!r} (relative {rel:.1e})")
            same = all(out[k] == old[k] for k in old if isinstance(old[k], str))
            print(f"against {path}: decisions {'equal' if same else 'DIFFER'}")
        else:
            path.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
