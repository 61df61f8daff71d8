"""The client report: any client's transaction CSV + a YAML mapping -> a retention report folder.

``python -m helpers.report --data client.csv --mapping client.yaml --name acme`` (what
``make client-report`` calls) validates the file first (every problem at once, nothing written),
then runs ``notebooks/08_case_study_client_report.ipynb`` with papermill in a hidden temporary
folder under the reports folder and moves it to ``reports/acme/`` only when everything succeeded:
``report.html`` (no code), ``report.ipynb`` (executed), ``metrics.json`` (headline figures) and
the CSV exports with the client's real customer ids (``customers.csv``, ``at_risk_customers.csv``).
An existing report of the same name is never replaced unless ``--overwrite`` is given.

The functions below hold the report's own logic; retention per period comes from
:mod:`helpers.retention`, RFM segments from :mod:`helpers.segments`, CLV from :mod:`helpers.clv`.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers import paths

__all__ = [
    "NOTEBOOK",
    "pseudonymize",
    "purchases",
    "customer_summary",
    "check_enough_data",
    "headline",
    "AT_RISK_SEGMENTS",
    "segment_customers",
    "at_risk_customers",
    "fit_clv",
    "build_report",
    "main",
]

NOTEBOOK: Path = paths.NOTEBOOKS / "08_case_study_client_report.ipynb"
_HEX = np.array(list("0123456789abcdef"))


def pseudonymize(ids: pd.Series, salt: str, digits: int = 10) -> pd.Series:
    """Stable pseudonyms ``C-<hex>`` for customer ids: a keyed 64-bit SipHash of the id's text
    (pandas' ``hash_pandas_object`` with a 16-byte key derived from `salt` by SHA-256).

    The same id and salt always give the same pseudonym, so a report is consistent; without the
    salt the ids cannot be recovered by hashing candidate ids. `digits` hex digits (4 bits each)
    are kept (the leading ones of the 16): with 10 digits two of 100,000 customers collide with probability about 0.5 %.
    """
    key = hashlib.sha256(salt.encode()).hexdigest()[:16]
    h = pd.util.hash_pandas_object(ids.astype(str), index=False, hash_key=key).to_numpy(np.uint64)
    shifts = (15 - np.arange(digits, dtype=np.uint64)) * np.uint64(4)  # leading hex digits
    nibbles = ((h[:, None] >> shifts) & np.uint64(15)).astype(np.intp)
    text = np.ascontiguousarray(_HEX[nibbles]).view(f"<U{digits}").ravel()
    return pd.Series(np.char.add("C-", text), index=ids.index, name=ids.name)


def purchases(orders: pd.DataFrame) -> pd.DataFrame:
    """The orders that count as purchases: positive amounts (refund rows only reduce revenue)."""
    return orders.loc[orders["amount"] > 0]


def customer_summary(orders: pd.DataFrame, as_of: str | pd.Timestamp) -> pd.DataFrame:
    """One row per customer (index ``customer_id``) from orders on or before `as_of`.

    Columns: ``first_order``, ``last_order`` (dates of the first and last purchase), ``orders``
    (number of purchases), ``revenue`` (sum of amounts incl. refunds, client currency),
    ``recency_days`` (whole days from the last purchase to `as_of`), ``tenure_days`` (from the
    first purchase to `as_of`) and ``mean_gap_days`` = (last - first) / (orders - 1), the average
    days between purchases (NaN for one-time buyers).
    """
    end = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    o = orders.loc[orders["order_date"] < end]
    p = purchases(o)
    g = p.groupby("customer_id")
    out = pd.DataFrame(
        {
            "first_order": g["order_date"].min(),
            "last_order": g["order_date"].max(),
            "orders": g.size(),
        }
    )
    out["revenue"] = o.groupby("customer_id")["amount"].sum().reindex(out.index)
    day = pd.Timestamp(as_of).normalize()
    out["recency_days"] = (day - out["last_order"].dt.normalize()).dt.days
    out["tenure_days"] = (day - out["first_order"].dt.normalize()).dt.days
    span = (out["last_order"] - out["first_order"]).dt.total_seconds() / 86400
    out["mean_gap_days"] = span / (out["orders"] - 1).where(out["orders"] > 1)
    return out


def check_enough_data(
    orders: pd.DataFrame, as_of: str | pd.Timestamp, period: str, file: str = "the file"
) -> None:
    """Raise :class:`helpers.data.DataValidationError` unless the purchases up to `as_of` span at
    least two complete periods (retention compares one period with the one before)."""
    from helpers.data import DataValidationError

    p = purchases(orders)
    p = p.loc[p["order_date"] < pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)]
    name = {"M": "months", "Q": "quarters"}[period]
    if p.empty:
        raise DataValidationError(
            [f"{file}: no purchases (positive amounts) on or before {pd.Timestamp(as_of).date()}"]
        )
    first = p["order_date"].min().to_period(period)
    complete = pd.period_range(first, pd.Timestamp(as_of), freq=period)
    complete = complete[complete.end_time.normalize() <= pd.Timestamp(as_of).normalize()]
    if len(complete) < 2:
        raise DataValidationError(
            [
                f"{file}: the purchases from {p['order_date'].min().date()} to {pd.Timestamp(as_of).date()} "
                f"cover {len(complete)} complete {name}; retention needs at least 2 "
                + (
                    "(more data, a later as_of, or period: M in the mapping)"
                    if period == "Q"
                    else "(more data or a later as_of)"
                )
            ]
        )


def headline(orders: pd.DataFrame, as_of: str | pd.Timestamp) -> dict[str, Any]:
    """Headline figures: ``customers`` (with at least one purchase), ``purchases``, ``revenue``
    (incl. refunds), ``average_order_value`` (revenue of purchases / purchases),
    ``revenue_per_customer``, ``repeat_purchase_rate`` (share of customers with 2+ purchases),
    ``first_date`` and ``last_date`` of the data."""
    summary = customer_summary(orders, as_of)
    end = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    o = orders.loc[orders["order_date"] < end]
    p = purchases(o)
    return {
        "customers": len(summary),
        "purchases": len(p),
        "revenue": float(o["amount"].sum()),
        "average_order_value": float(p["amount"].mean()),
        "revenue_per_customer": float(o["amount"].sum() / len(summary)),
        "repeat_purchase_rate": float((summary["orders"] >= 2).mean()),
        "first_date": str(o["order_date"].min().date()),
        "last_date": str(o["order_date"].max().date()),
    }


#: The RFM segments (helpers.segments.SEGMENT_RULES) whose customers are valuable but quiet:
#: low recency score (R 1-2) with good frequency and spend (FM 3-5).
AT_RISK_SEGMENTS: tuple[str, ...] = ("Can't lose them", "At risk")


def segment_customers(
    orders: pd.DataFrame, as_of: str | pd.Timestamp, time_unit: str = "W"
) -> pd.DataFrame:
    """RFM table, scores 1-5 and named segments of the customers (purchases only), by
    :func:`helpers.segments.rfm_table`, :func:`~helpers.segments.rfm_scores` and
    :func:`~helpers.segments.assign_segments` (Hughes 1994 RFM; BTYD columns in `time_unit`)."""
    from helpers import segments

    rfm = segments.rfm_table(purchases(orders), as_of, time_unit)
    out = segments.assign_segments(segments.rfm_scores(rfm))
    out.attrs.update(rfm.attrs)
    return out


def at_risk_customers(
    segmented: pd.DataFrame, at_risk: tuple[str, ...] = AT_RISK_SEGMENTS
) -> pd.DataFrame:
    """Valuable customers who have gone quiet, the win-back list: the rows of `segmented`
    (:func:`segment_customers`) in the `at_risk` segments, highest total spend first."""
    out = segmented.loc[segmented["segment"].astype(str).isin(at_risk)]
    return out.sort_values(
        ["monetary_total", "recency_days"], ascending=[False, True], kind="stable"
    )


def fit_clv(
    segmented: pd.DataFrame,
    horizon_months: int = 12,
    monthly_discount_rate: float = 0.01,
    margin: float = 0.30,
    min_repeat_buyers: int = 100,
) -> tuple[pd.DataFrame | None, str]:
    """Predictive CLV per customer if the data allows a fit: (clv table, "") or (None, why not).

    BG/NBD purchases and Gamma-Gamma spend (Fader, Hardie & Lee 2005) by :mod:`helpers.clv`;
    CLV = margin x E[spend] x discounted expected purchases over `horizon_months`. No fit with
    fewer than `min_repeat_buyers` repeat buyers, when an optimizer does not converge, or when the
    Gamma-Gamma mean spend does not exist (q <= 1). The table has p_alive, expected_purchases,
    expected_spend and clv (client currency).
    """
    from helpers import clv

    repeat = segmented.loc[(segmented["frequency"] > 0) & (segmented["monetary_value"] > 0)]
    if len(repeat) < min_repeat_buyers:
        return None, (
            f"only {len(repeat)} customers bought more than once; a purchase and spend model needs "
            f"at least {min_repeat_buyers} repeat buyers, so no lifetime value is predicted"
        )
    try:
        bg = clv.fit_bgnbd(segmented)
        gg = clv.fit_gamma_gamma(repeat)
    except ValueError as err:
        return None, f"the lifetime-value models could not be fitted ({err})"
    values = [*bg.params.values(), *gg.params.values()]
    if not (bg.converged and gg.converged and np.all(np.isfinite(values))):
        return (
            None,
            "the lifetime-value models did not converge on this data, so no value is predicted",
        )
    if gg.q <= 1:
        return (
            None,
            f"the spend model has no finite mean (q = {gg.q:.2f} <= 1): spend is too uneven to predict",
        )
    out = clv.predictive_clv(bg, gg, segmented, horizon_months, monthly_discount_rate, margin)
    out.attrs.update(bgnbd=bg.params, gamma_gamma=gg.params)
    return out, ""


# ---------------------------------------------------------------------------------------------
# the command line: validate, run the notebook in a temporary folder, move it into place


class ReportError(RuntimeError):
    """A report that could not be made; the message says why."""


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def build_report(
    data: str | Path,
    mapping: str | Path,
    name: str,
    *,
    overwrite: bool = False,
    reports_dir: str | Path | None = None,
    client: str | None = None,
) -> Path:
    """Validate `data` with `mapping`, run notebook 08 on it and publish ``<reports_dir>/<name>/``.

    Raises :class:`ReportError` (name taken, notebook failure) or
    :class:`helpers.data.DataValidationError` (bad mapping or data) before anything is written.
    """
    from helpers import run
    from helpers.mapping import load_mapping, read_client_orders

    if not _SAFE_NAME.match(name):
        raise ReportError(
            f"report name {name!r} must be letters, digits, '-', '_' or '.', e.g. 'acme-2025'"
        )
    root = Path(reports_dir).expanduser().resolve() if reports_dir else paths.REPORTS
    target = root / name
    if target.exists() and not overwrite:
        raise ReportError(f"{target} already exists; choose another name or pass --overwrite")
    data, mapping = Path(data).expanduser().resolve(), Path(mapping).expanduser().resolve()
    spec = load_mapping(mapping)
    orders, notes = read_client_orders(data, spec)  # every problem, before any analysis runs
    check_enough_data(orders, notes["as_of"], spec.period, data.name)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=root))
    tmp.chmod(0o755)  # mkdtemp makes it private; the published report is an ordinary folder
    try:
        params = {
            "data_path": str(data), "mapping_path": str(mapping), "client_name": client or name,
            "export_dir": str(tmp), "pseudonym_salt": secrets.token_hex(16),
        }  # fmt: skip
        try:
            run.execute(NOTEBOOK, tmp, params)
        except run.RunError as err:
            raise ReportError(str(err)) from None
        (tmp / NOTEBOOK.name).rename(tmp / "report.ipynb")
        (tmp / f"{NOTEBOOK.stem}.html").rename(tmp / "report.html")
        metrics = tmp / f"{NOTEBOOK.stem}.metrics.json"
        if not metrics.exists():
            raise ReportError(f"{NOTEBOOK.name} did not record its metrics")
        metrics.rename(tmp / "metrics.json")
        try:
            return run.publish(tmp, target, overwrite)
        except run.RunError as err:
            raise ReportError(str(err)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m helpers.report",
        description="Turn a client's transaction CSV into a retention report (HTML without code, "
        "metrics.json, CSV exports with real ids) in reports/<name>/. The data is validated first; "
        "a failed run leaves nothing behind.",
        epilog="Mapping keys (YAML): columns {customer_id, order_date, amount required; order_id, "
        "channel, ... optional}, date_format, decimal, thousands, delimiter, encoding, currency, "
        "as_of, period (M|Q), pseudonymize, refunds (reject|exclude|net). "
        "Example: notebooks/08_sample_mapping.yaml; details: helpers/mapping.py.",
    )  # fmt: skip
    ap.add_argument("--data", required=True, help="the client's transaction CSV file")
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
        "--reports-dir", help="folder holding the reports (default: reports/ in the repository)"
    )
    args = ap.parse_args(argv)
    from helpers.data import DataValidationError

    try:
        folder = build_report(
            args.data,
            args.mapping,
            args.name,
            overwrite=args.overwrite,
            reports_dir=args.reports_dir,
            client=args.client,
        )
    except DataValidationError as err:
        print(
            "error: the input did not pass validation; no report was written:\n"
            + "\n".join(f"  - {p}" for p in err.problems),
            file=sys.stderr,
        )
        return 2
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"report '{args.name}' written to {folder}/ ; open {folder / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
