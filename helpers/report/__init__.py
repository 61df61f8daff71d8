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
- :mod:`~helpers.report.ingest` — read and validate the export into the canonical orders table;
- :mod:`~helpers.report.engine` — the heavy aggregations as backend-neutral Ibis expressions;
- :mod:`~helpers.report.analysis` — headline, segments, at-risk list, CLV, scenario;
- :mod:`~helpers.report.formatting` and :mod:`~helpers.report.text` — the client's language;
- :mod:`~helpers.report.build` — papermill, HTML and publishing; :mod:`~helpers.report.progress`.
"""

from __future__ import annotations

from helpers.report import text
from helpers.report.analysis import (
    AT_RISK_SEGMENTS,
    ENGINE_MIN_ROWS,
    ClvFit,
    Reason,
    at_risk_customers,
    check_enough_data,
    client_economics,
    cohort_table,
    dropout_scenario,
    export_csv,
    fit_clv,
    headline,
    net_revenue,
    open_orders,
    period_retention,
    pseudonymize,
    purchases,
    segment_customers,
)
from helpers.report.build import NOTEBOOK, ReportError, build_report
from helpers.report.cli import main
from helpers.report.formatting import Formatter, note_text

__all__ = [
    "NOTEBOOK",
    "text",
    "pseudonymize",
    "purchases",
    "open_orders",
    "ENGINE_MIN_ROWS",
    "period_retention",
    "cohort_table",
    "net_revenue",
    "export_csv",
    "check_enough_data",
    "headline",
    "AT_RISK_SEGMENTS",
    "segment_customers",
    "at_risk_customers",
    "client_economics",
    "fit_clv",
    "ClvFit",
    "Reason",
    "dropout_scenario",
    "Formatter",
    "note_text",
    "ReportError",
    "build_report",
    "main",
]
