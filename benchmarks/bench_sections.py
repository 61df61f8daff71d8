"""Benchmark (issues 28 and 31): notebook 08's acquisition sections on the engine, the orders
reduced by Ibis expressions (this version) against collecting the purchases into pandas first
(``--before DIR``: a folder holding the modules as they were, ``acquisition_views.py`` saved as
``old_acq.py``, e.g. ``git show 8185abe:helpers/report/acquisition_views.py``).

Run, once to validate the export and write the hand-over (as the report command does):

    python benchmarks/bench_sections.py --prepare DATA.csv --mapping MAPPING.yaml --handover F

then each measurement as a whole process (pair them, A B A B, under ``/usr/bin/time -v``):

    python benchmarks/bench_sections.py --handover F [--before DIR]

The process opens the hand-over as notebook 08 does (``report.open_orders(F, "duckdb")``: an
Ibis table DuckDB scans in place), computes the customer summary (``segment_customers``, as
cell 4), then times the sections' cells (24-26) without a purchase model (``fit=None``: the
projection and the dropout fits work on the customer summary and did not change): the mapped
attributes' first-order values (``read_inputs``), the LTV curves by cohort, the second order
(shares, Kaplan-Meier, value by order number), each attribute's second-order rate and
12-month margin (``attribute_value(dropout=False)``) and, when the mapping names a marketing
spend file (``bench_report.py``'s ``*_sekcje.yaml``; prepare the hand-over with it), the cost per
acquisition and payback (``acquisition_costs``, cell 27). It prints the wall and CPU seconds of the
setup and of the sections and the peak resident memory during the sections (VmHWM reset before
them; Linux).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def prepare(data: str, mapping: str, handover: str) -> None:
    from helpers.report.mapping import load_mapping
    from helpers.report.orders import read_client_orders, save_validated

    orders, notes = read_client_orders(data, load_mapping(mapping))
    path = save_validated(orders, notes, handover)  # the engine's table: a DuckDB file beside
    print(f"hand-over written: {path} ({notes['rows']:,} rows); pass it as --handover")


def run(handover: str, before: str | None) -> None:
    from helpers import report

    if before:
        sys.path.insert(0, before)
        import old_acq as acq  # the sections as they were (the purchases collected)
    else:
        from helpers.report import acquisition_views as acq

    w0, c0 = time.perf_counter(), time.process_time()
    orders, notes = report.open_orders(handover, "duckdb")
    as_of = notes["as_of"]
    econ = report.client_economics(notes["mapping"])
    seg = report.segment_customers(orders, as_of)
    bought = report.purchases(orders)
    w1, c1 = time.perf_counter(), time.process_time()
    print(f"setup: {w1 - w0:.1f} s wall, {c1 - c0:.1f} s CPU; {len(seg):,} customers; "
          f"peak so far {_peak_mb():.0f} MB")  # fmt: skip
    _reset_peak()
    sold = acq.pandas_orders(bought) if before else bought
    # the mapping's other tables (a marketing spend file: the costs section) when it names any
    tables = report.open_tables(orders, notes) if notes["mapping"].tables else {}
    more = acq.read_inputs(tables, notes["mapping"], sold, handover)
    ltv = acq.ltv_curves(sold, seg, econ, None)
    sec = acq.second_orders(sold, as_of)
    rates = acq.second_order_rates(sec)
    km = acq.time_to_second_order(sec)
    by_number = acq.value_by_order_number(sold)
    m12 = acq.margin_12(sold, seg, econ)
    attrs = more.attributes if more.attributes is not None else {}
    tables = {c: acq.attribute_value(attrs[c], sec, sold, seg, econ, dropout=False, m12=m12)
              for c in attrs}  # fmt: skip
    costs = (  # cell 27: cost per acquisition, payback (value_by_age per channel)
        acq.acquisition_costs(more.spend, more.channel, seg, sold, econ, ltv.values)
        if more.spend is not None and more.channel is not None
        else None
    )
    w2, c2 = time.perf_counter(), time.process_time()
    print(f"sections: {w2 - w1:.1f} s wall, {c2 - c1:.1f} s CPU, peak {_peak_mb():.0f} MB "
          f"({'before: purchases collected' if before else 'after: reduced in the engine'})")  # fmt: skip
    print(f"check: cohorts {len(ltv.cohorts)}, value_12 of the first "
          f"{ltv.cohorts['value_12'].iloc[0]:.6f}, 90-day share {rates.iloc[-1]['rate']:.6f}, "
          f"KM median {km['median_days']}, order 2 mean {by_number['mean'].iloc[1]:.6f}, "
          f"mean 12-month margin {float(__import__('numpy').nanmean(m12)):.6f}, "
          f"attributes {list(tables)}")  # fmt: skip
    if costs is not None:
        print("check: costs " + ", ".join(f"{k} {v.shape}" for k, v in costs.items()
                                           if hasattr(v, "shape")))  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prepare", metavar="DATA", help="validate DATA and write the hand-over")
    p.add_argument("--mapping", help="the mapping of DATA (with --prepare)")
    p.add_argument(
        "--handover", required=True, help="the validated hand-over (the path --prepare printed)"
    )
    p.add_argument("--before", help="folder with old_acq.py: the sections as they were")
    a = p.parse_args()
    if a.prepare:
        prepare(a.prepare, a.mapping, a.handover)
    else:
        run(a.handover, a.before)


if __name__ == "__main__":
    main()
