"""``python -m helpers.report``: the client-report command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from helpers.report import text
from helpers.report.build import ReportError, build_report


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m helpers.report",
        description="Turn a client's transaction export (CSV, .csv.gz, .zip, .xlsx, .parquet) into a retention report (HTML without code, "
        "metrics.json, CSV exports with real ids) in reports/<name>/. The data is validated first; "
        "a failed run leaves nothing behind.",
        epilog="Mapping keys (YAML): columns {customer_id, order_date and amount (or quantity and "
        "unit_price) required; order_id, refunded_amount, ... optional}, rows (orders|order_lines), "
        "date_format, timezone, decimal, thousands, delimiter, encoding, sheet, id_type, currency, "
        "as_of, period (M|Q), pseudonymize, exports (safe|raw), refunds (reject|exclude|net), cancellations, status, "
        "missing_customer, customer_placeholders, economics {gross_margin_rate, shipping_per_order, "
        "...}, language (en|nb|pl|nl|ru). Examples: notebooks/08_sample_mapping.yaml and the README; "
        "details: helpers/report/mapping.py.",
    )  # fmt: skip
    ap.add_argument(
        "--data", required=True,
        help="the client's export: CSV (also .csv.gz, .zip), Excel .xlsx or Parquet; orders or order lines; "
        "or a folder of Parquet files, or a database table: duckdb:///path/client.db?table=orders "
        "(any Ibis connection URL with ?table=)",
    )  # fmt: skip
    ap.add_argument(
        "--mapping", required=True, help="YAML file naming the client's columns and formats"
    )
    ap.add_argument(
        "--name", required=True, help="report name: the folder under the reports folder, e.g. acme"
    )
    ap.add_argument("--client", help="client name shown in the report (default: --name)")
    ap.add_argument(
        "--overwrite", action="store_true", help="replace an earlier report of the same name"
    )
    ap.add_argument(
        "--language",
        choices=sorted(text.LANGUAGES),
        help="language of the report (default: the mapping's `language`, else en)",
    )
    ap.add_argument(
        "--engine", choices=["auto", "duckdb", "pandas", "spark"], default="auto",
        help="what computes the aggregations: the pandas helpers, or DuckDB scanning the "
        "validated table in place (less memory), or a local Spark session (PySpark and Java "
        "needed: make test-spark); auto: DuckDB from 1,000,000 orders",
    )  # fmt: skip
    ap.add_argument(
        "--reports-dir", help="folder holding the reports (default: reports/ in the repository)"
    )
    args = ap.parse_args(argv)
    try:
        folder = build_report(
            args.data,
            args.mapping,
            args.name,
            overwrite=args.overwrite,
            reports_dir=args.reports_dir,
            client=args.client,
            language=args.language,
            engine=args.engine,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Exception as err:
        if _refused(err):
            print(
                "error: the input did not pass validation; no report was written:\n"
                + "\n".join(f"  - {p}" for p in err.problems),
                file=sys.stderr,
            )
            return 2
        said = _environment_error(err)
        if said is None:  # a defect: its traceback
            raise
        print(f"error: {said}; no report was written", file=sys.stderr)
        return 1
    print(f"report '{args.name}' written to {folder}/ ; open {folder / 'report.html'}")
    return 0


def _refused(err: BaseException) -> bool:
    """Whether `err` is the data's or the mapping's :class:`helpers.tables.DataValidationError`
    (imported here: the command does not import the readers when a child process reads)."""
    from helpers.tables import DataValidationError

    return isinstance(err, DataValidationError)


def _environment_error(err: BaseException) -> str | None:
    """What the machine refused, in one line: an operating system's error (a full disk, a folder
    that cannot be written) or DuckDB's failure to read or write its files (its ``IOException``,
    e.g. the hand-over or the spill files on a full disk), with a hint where one helps; None for
    anything else (a defect, whose traceback is then shown)."""
    import errno

    kind = type(err)
    if isinstance(err, OSError):
        where = f": {err.filename}" if err.filename else ""
        said = f"{err.strerror or err}{where}"
    elif kind.__module__.split(".")[0] in ("duckdb", "_duckdb") and kind.__name__ == "IOException":
        said = str(err).splitlines()[0] if str(err) else kind.__name__
    else:
        return None
    full = getattr(err, "errno", None) == errno.ENOSPC or "No space left" in said
    hint = (" (the disk is full: free space there; the validated orders and DuckDB's spill "
            "files are kept in the system's temporary folder while the report runs, TMPDIR "
            "chooses another)") if full else ""  # fmt: skip
    return said + hint
