"""The client report: any client's transaction CSV + a YAML mapping -> a retention report folder.

``python -m helpers.report --data client.csv --mapping client.yaml --name acme`` (what
``make client-report`` calls) validates the file first (every problem at once, nothing written),
then runs ``notebooks/08_case_study_client_report.ipynb`` with papermill in a hidden temporary
folder under the reports folder and moves it to ``reports/acme/`` only when everything succeeded:
``report.html`` (no code), ``report.ipynb`` (executed), ``metrics.json`` (headline figures) and
the CSV exports with the client's real customer ids (``customers.csv``, ``at_risk_customers.csv``).
An existing report of the same name is never replaced unless ``--overwrite`` is given.

The package, as the report runs:

- :mod:`~helpers.report.cli` — the command line (``python -m helpers.report``);
- :mod:`~helpers.report.sources` — ``--data`` as a file, a Parquet folder or a database table;
- :mod:`~helpers.report.mapping` — the YAML mapping of the client's columns and formats;
- :mod:`~helpers.report.orders` — the client's file -> the canonical orders table and its data
  note -> the hand-over to the notebook -> the table the analysis takes;
- :mod:`~helpers.report.extra_tables` — the client's survey, campaign and loyalty tables beside
  the orders (optional), read and checked against them;
- :mod:`~helpers.report.beyond_orders` — what those tables say: NPS with its interval, each
  campaign against its holdout, the loyalty programme against members' own history;
- :mod:`~helpers.report.acquisition_views` — what shop owners ask: lifetime value by acquisition
  cohort, the second order, which customers are worth acquiring, what they cost;
- :mod:`~helpers.report.engine` — the heavy aggregations as backend-neutral Ibis expressions;
- :mod:`~helpers.report.analysis` — headline, segments, at-risk list, CLV, scenario (no reading);
- :mod:`~helpers.report.formatting` and :mod:`~helpers.report.text` — the client's language;
- :mod:`~helpers.report.build` — papermill, HTML and publishing; :mod:`~helpers.report.progress`;
  :mod:`~helpers.report.handover` — what the command hands the kernel by its environment;
- :mod:`~helpers.report.exports` — realistic client exports made from the sample company (the
  test corpus), one registered kind per export shape.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Where each name of the package is defined. The package imports none of it itself (PEP 562's
#: module ``__getattr__``): ``python -m helpers.report`` loads only the command's modules (read,
#: check, papermill), not the analysis, models and plots that the notebook's kernel imports
#: (about 1.5 s of CPU and 0.1 GB less in the command's process, which waits while the kernel runs).
_WHERE: dict[str, str] = {
    **dict.fromkeys(["beyond_orders", "extra_tables", "text"], ""),  # submodules
    **dict.fromkeys(
        [
            "AT_RISK_SEGMENTS",
            "ClvFit",
            "at_risk_customers",
            "at_risk_mask",
            "client_economics",
            "clv_by_segment",
            "clv_interval",
            "cohort_table",
            "customer_export",
            "dropout_scenario",
            "export_csv",
            "fit_clv",
            "headline",
            "holdout_check",
            "lifecycle",
            "net_revenue",
            "period_retention",
            "prefetch_actions",
            "prefetch_sections",
            "pseudonym_salt",
            "pseudonymize",
            "purchases",
            "recommendations",
            "release",
            "retention_change",
            "segment_customers",
            "start_exports",
        ],
        "analysis",
    ),
    **dict.fromkeys(["NOTEBOOK", "ReportError", "build_report"], "build"),
    "main": "cli",
    **dict.fromkeys(["Formatter", "note_text"], "formatting"),
    **dict.fromkeys(
        ["ENGINE_MIN_ROWS", "check_enough_data", "open_orders", "open_tables"], "orders"
    ),
    "Reason": "text",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    """``report.<name>``: the submodule, or the name from the submodule that defines it, imported
    on first use (and then kept in the package's namespace)."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_WHERE[name] or name}")
    value = module if not _WHERE[name] else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
