"""The client's tables beside the orders: survey responses, campaign sends with a holdout and
loyalty membership, each optional, each with its own file, columns and formats.

A mapping names them under ``tables`` (paths relative to the mapping file)::

    tables:
      survey:                        # NPS survey export: one row per response
        file: survey_export.csv
        columns: {customer_id: Respondent, date: Submitted, score: Score, comment: Comment}
        date_format: "%d/%m/%Y %H:%M"
      campaigns:                     # campaign tool's send log, with a randomized holdout
        file: sends.csv
        columns: {customer_id: Recipient, campaign: Campaign, send_date: Sent, arm: Group,
                  cost: Cost}
        arms: {sent: [Treatment], holdout: [Control]}
        holdout_share: {birthday: 0.2, winback: 0.5}   # planned; checks the split (SRM)
        actions: {winback: winback}  # the report's actions these campaigns measured (their
                                     # margin per send then decides: roll out, stop, test first)
                                     # survey: themes: my_themes.yaml (comment themes; default:
                                     # the report language's, helpers/report/text/themes/)
      loyalty:                       # membership list: one row per member
        file: members.csv
        columns: {customer_id: Member, join_date: Joined, tier: Tier}
      points:                        # the programme's points ledger (needs loyalty): one row per
        file: points.csv             # movement, earned (+), redeemed or expired (-)
        columns: {customer_id: Member, date: Date, points: Points, type: Type}
        types: {earn: [Earned], redeem: [Redeemed], expire: [Expired]}   # the file's values
        point_value: 0.01            # money per point: the outstanding points' face value
    unmatched_customers: 0.05        # refuse a table when more of its customers match no order

Formats (``date_format``, ``delimiter``, ``decimal``, ``thousands``, ``encoding``, ``sheet``)
default to the table's own defaults (ISO dates, ``,``, ``.``, none, UTF-8, the first sheet), not
to the orders file's. Each table is read by the same readers as the orders
(:func:`helpers.tables.read_table_info`, one error listing every problem with the client's file,
column, lines and an example) and checked against the orders: a survey score that is not a whole
number from 0 to 10, an arm that is neither sent nor holdout, a send date outside the orders'
range, a join date after the as-of day, or more customers matching no order than
``unmatched_customers`` allows; a points movement dated after the as-of day, of a customer who is
not in the loyalty table, of a type the mapping does not name, or redeeming or expiring more
points than the member holds at that moment.

Columns: survey ``customer_id``, ``date``, ``score`` (0-10), optional ``comment``; campaigns
``customer_id``, ``campaign``, ``send_date``, ``arm``, optional ``flow`` (the automated flow
or programme a campaign belongs to: results are then pooled per flow), ``cost`` (per send) and
``discount`` (given with the send's orders), and the key ``holdout_share`` (the planned share of
the holdout, one number or one per campaign or flow: the sample-ratio check); loyalty ``customer_id``, ``join_date``, optional
``tier``; points ``customer_id``, ``date``, ``points`` (signed, or unsigned with a ``type``),
optional ``type`` (earn, redeem or expire; the file's values in ``types``; rows of 0 points of
any other type, such as a tier change, are left out; without a type, a positive row is earned and
a negative one redeemed) and the key ``point_value``; customers ``customer_id``, optional ``acquisition_channel``, ``country`` and any other
attribute known at acquisition (text); marketing_spend ``month``, ``channel``, ``spend`` (>= 0),
optional ``signups`` (:mod:`helpers.report.acquisition_views`). The customer list and the spend file are
not checked against the orders' customers (a list may hold sign-ups who never ordered);
tickets ``customer_id``, ``opened_at`` (one row per support ticket: the cost per ticket of the
mapping's ``economics`` then enters the cost to serve, :func:`helpers.report.analysis.fold_economics`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from helpers import periods
from helpers.tables import Column, DataValidationError, read_table_info
from helpers.tables.schema import column_problem

__all__ = [
    "KINDS",
    "COLUMNS",
    "ARMS",
    "UNMATCHED_DEFAULT",
    "TableSpec",
    "spec_problems",
    "parse_specs",
    "read_extra_tables",
    "schema",
    "CUSTOMER_TABLES",
    "OPEN_TABLES",
    "theme_dictionary",
    "THEMES_FOLDER",
]

#: The dtype of text columns (ids, comments, campaigns, arms, tiers): Arrow strings.
TEXT = pd.StringDtype("pyarrow")

#: The tables a mapping may name beside the orders.
KINDS: tuple[str, ...] = (
    "survey", "campaigns", "loyalty", "customers", "marketing_spend", "points", "tickets",
)  # fmt: skip
#: Tables whose customers are the orders' customers (checked against them); a customer list may
#: hold sign-ups who never ordered, and the spend file has no customers.
CUSTOMER_TABLES: tuple[str, ...] = ("survey", "campaigns", "loyalty", "tickets")

#: Canonical columns of each table (required unless said).
COLUMNS: dict[str, tuple[Column, ...]] = {
    "survey": (
        Column("customer_id", "id"),
        Column("date", "datetime"),
        Column("score", "int", min=0, max=10),
        Column("comment", "text", required=False, nullable=True),
    ),
    "campaigns": (
        Column("customer_id", "id"),
        Column("campaign", "text"),
        Column("send_date", "datetime"),
        Column("arm", "text"),
        Column("flow", "text", required=False, nullable=True),
        Column("cost", "money", required=False, nullable=True),
        Column("discount", "money", required=False, nullable=True),
    ),
    "loyalty": (
        Column("customer_id", "id"),
        Column("join_date", "datetime"),
        Column("tier", "text", required=False, nullable=True),
    ),
    # one row per customer; any other mapped column is an attribute known at acquisition (text)
    "customers": (
        Column("customer_id", "id", unique=True),
        Column("acquisition_channel", "text", required=False, nullable=True),
        Column("country", "text", required=False, nullable=True),
    ),
    # one row per month and channel; sign-ups optional; negative spend refused
    "marketing_spend": (
        Column("month", "datetime"),
        Column("channel", "text"),
        Column("spend", "money"),
        Column("signups", "int", required=False, nullable=True, min=0),
    ),
    # the loyalty programme's points ledger: one row per movement of a member's points
    "points": (
        Column("customer_id", "id"),
        Column("date", "datetime"),
        Column("points", "float"),
        Column("type", "text", required=False, nullable=True),
    ),
    # one row per support ticket (the cost to serve: economics' cost_per_ticket)
    "tickets": (
        Column("customer_id", "id"),
        Column("opened_at", "datetime"),
    ),
}
#: Tables that may map columns of their own beyond :data:`COLUMNS` (kept as text).
OPEN_TABLES: tuple[str, ...] = ("customers",)

#: The two arms of a campaign and the values that mean them when the mapping names none.
ARMS: dict[str, tuple[str, ...]] = {
    "sent": ("sent", "treatment", "treated"),
    "holdout": ("holdout", "control", "hold-out"),
}

#: Largest share of a table's customers that may match no order before the table is refused.
UNMATCHED_DEFAULT = 0.05

_FORMAT_KEYS = ("date_format", "delimiter", "decimal", "thousands", "encoding", "sheet")
_SPEC_KEYS = ("file", "columns", *_FORMAT_KEYS, "arms", "holdout_share", "themes", "actions",
              "types", "point_value")  # fmt: skip
_ONLY_FOR = {"arms": "campaigns", "holdout_share": "campaigns", "themes": "survey",
             "actions": "campaigns", "types": "points", "point_value": "points"}  # fmt: skip
#: The movements of a points ledger and the values that mean them when the mapping names none.
POINT_TYPES: dict[str, tuple[str, ...]] = {
    "earn": ("earn", "earned", "accrual", "accrued", "issued"),
    "redeem": ("redeem", "redeemed", "redemption", "spent", "burn"),
    "expire": ("expire", "expired", "expiry", "expiration", "lapsed"),
}
#: The report's actions a campaign may have measured (``tables.campaigns.actions``).
ACTIONS: tuple[str, ...] = ("winback", "champions", "first_time")

#: The comment-theme dictionaries, one per report language (``<language>.yaml``: theme -> word
#: stems), used when the survey's mapping names no ``themes`` file of its own.
THEMES_FOLDER = Path(__file__).parent / "text" / "themes"


@dataclass(frozen=True)
class TableSpec:
    """How to read one of the client's tables beside the orders (see the module docstring)."""

    kind: str
    file: str
    columns: dict[str, str]
    date_format: str | None = None
    delimiter: str = ","
    decimal: str = "."
    thousands: str | None = None
    encoding: str = "utf-8"
    sheet: str | None = None
    arms: dict[str, tuple[str, ...]] | None = None
    holdout_share: float | dict[str, float] | None = None
    themes: str | None = None
    actions: dict[str, str] | None = None
    types: dict[str, tuple[str, ...]] | None = None
    point_value: float | None = None

    def read_kwargs(self, id_type: str) -> dict[str, Any]:
        """Keyword arguments for :func:`helpers.tables.read_table_info`."""
        return {
            "columns": self.columns, "date_format": self.date_format, "decimal": self.decimal,
            "thousands": self.thousands, "delimiter": self.delimiter, "encoding": self.encoding,
            "sheet": self.sheet, "ids": id_type,
        }  # fmt: skip

    def type_values(self) -> dict[str, str]:
        """The ledger's type values (compared without case) -> 'earn', 'redeem' or 'expire'."""
        types = self.types or POINT_TYPES
        return {str(v).casefold(): t for t, values in types.items() for v in values}

    def arm_values(self) -> dict[str, str]:
        """The file's arm values (compared without case) -> 'sent' or 'holdout'."""
        arms = self.arms or ARMS
        return {str(v).casefold(): arm for arm, values in arms.items() for v in values}


def spec_problems(name: str, raw: Any, folder: Path) -> list[str]:
    """Problems of a mapping's ``tables`` block (`name`: the mapping file's name; `folder`: where
    relative paths start)."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return [f"{name}: 'tables' must name tables such as survey, campaigns or loyalty"]
    problems = []
    for kind, spec in raw.items():
        where = f"{name}: 'tables.{kind}'"
        if kind not in KINDS:
            near = difflib.get_close_matches(str(kind), KINDS, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else f"; known tables: {list(KINDS)}"
            problems.append(f"{name}: unknown table '{kind}' in 'tables'{hint}")
            continue
        if not isinstance(spec, dict):
            problems.append(f"{where} must be a block with 'file' and 'columns'")
            continue
        for key in spec:
            if key not in _SPEC_KEYS or _ONLY_FOR.get(key, kind) != kind:
                problems.append(f"{where}: unknown key '{key}'; known keys: {list(_SPEC_KEYS)}")
        file = spec.get("file")
        if not isinstance(file, str) or not file.strip():
            problems.append(f"{where}: 'file' must name the table's file")
        elif not (folder / file).expanduser().is_file():
            problems.append(f"{where}: file '{file}' not found next to the mapping ({folder})")
        cols = spec.get("columns")
        canon = {c.name: c for c in COLUMNS[kind]}
        if not isinstance(cols, dict):
            problems.append(
                f"{where}: 'columns' must map canonical names to the file's columns, "
                f"e.g. {{customer_id: Respondent}}"
            )
            continue
        for c in COLUMNS[kind]:
            if c.required and c.name not in cols:
                problems.append(f"{where}: 'columns' must name the file's column for '{c.name}'")
        for key in cols:
            if key not in canon and kind not in OPEN_TABLES:
                problems.append(
                    f"{where}: unknown column '{key}'; this table's columns: {list(canon)}"
                )
        for key in ("delimiter", "decimal"):
            if key in spec and (not isinstance(spec[key], str) or len(spec[key]) != 1):
                problems.append(f"{where}: '{key}' must be one character, e.g. ',' or ';'")
        acts = spec.get("actions")
        if acts is not None and (not isinstance(acts, dict) or not set(acts) <= set(ACTIONS)):
            problems.append(
                f"{where}: 'actions' must map the report's actions {list(ACTIONS)} to a campaign "
                "or flow that measured them, e.g. {winback: winback-flow}"
            )
        if spec.get("themes") is not None:
            problems += _themes_problems(where, folder / str(spec["themes"]))
        share = spec.get("holdout_share")
        shares = share.values() if isinstance(share, dict) else [share]
        if share is not None and not all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 1 for v in shares
        ):
            problems.append(
                f"{where}: 'holdout_share' must be a share between 0 and 1, or one per campaign "
                "or flow, e.g. 0.2 or {birthday: 0.2, winback: 0.5}"
            )
        types = spec.get("types")
        if types is not None and not (
            isinstance(types, dict) and types and set(types) <= set(POINT_TYPES)
            and all(isinstance(v, list) and v for v in types.values())
        ):  # fmt: skip
            problems.append(
                f"{where}: 'types' must map earn, redeem and expire to the file's values, "
                "e.g. {earn: [Earned], redeem: [Redeemed], expire: [Expired]}"
            )
        value = spec.get("point_value")
        if value is not None and not (
            isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        ):
            problems.append(
                f"{where}: 'point_value' must be the money one point is worth, e.g. 0.01"
            )
        arms = spec.get("arms")
        if arms is not None:
            ok = isinstance(arms, dict) and set(arms) == {"sent", "holdout"}
            ok = ok and all(isinstance(v, list) and v for v in arms.values())
            if not ok:
                problems.append(
                    f"{where}: 'arms' must be {{sent: [values], holdout: [values]}}, "
                    "e.g. {sent: [Treatment], holdout: [Control]}"
                )
            elif {str(v).casefold() for v in arms["sent"]} & {
                str(v).casefold() for v in arms["holdout"]
            }:
                problems.append(f"{where}: 'arms' names a value as both sent and holdout")
    if "points" in raw and "loyalty" not in raw:
        problems.append(
            f"{name}: 'tables.points' needs 'tables.loyalty' (the members whose points it holds)"
        )
    return problems


def _themes_problems(where: str, path: Path) -> list[str]:
    """Problems of a comment-theme dictionary file (theme: [word stems])."""
    import yaml

    if not path.is_file():
        return [f"{where}: themes file '{path.name}' not found ({path})"]
    try:
        themes = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        return [f"{where}: themes file '{path.name}' is not valid YAML ({err})"]
    ok = (
        isinstance(themes, dict)
        and themes
        and all(
            isinstance(v, list) and v and all(isinstance(w, str) and w.strip() for w in v)
            for v in themes.values()
        )
    )
    if not ok:
        return [f"{where}: themes file '{path.name}' must map each theme to a list of words, "
                "e.g. {delivery: [deliver, courier, parcel]}"]  # fmt: skip
    return []


def theme_dictionary(path: str | Path | None, language: str) -> dict[str, tuple[str, ...]]:
    """The comment themes: the consultant's file `path` (checked by the mapping), or the report
    language's dictionary in :data:`THEMES_FOLDER`. Theme -> word stems, lower case."""
    import yaml

    file = Path(path) if path else THEMES_FOLDER / f"{language}.yaml"
    raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    return {str(k): tuple(str(w).lower() for w in v) for k, v in raw.items()}


def parse_specs(raw: dict[str, Any] | None, folder: Path) -> dict[str, TableSpec]:
    """The checked ``tables`` block as :class:`TableSpec` by kind, files made absolute."""
    out = {}
    for kind, spec in (raw or {}).items():
        values = {k: spec[k] for k in _FORMAT_KEYS if spec.get(k) is not None}
        values = {k: str(v) for k, v in values.items()}
        arms = spec.get("arms")
        share = spec.get("holdout_share")
        if isinstance(share, dict):
            share = {str(k): float(v) for k, v in share.items()}
        elif share is not None:
            share = float(share)
        themes = spec.get("themes")
        acts = spec.get("actions")
        types = spec.get("types")
        value = spec.get("point_value")
        out[kind] = TableSpec(
            types={k: tuple(str(v) for v in vs) for k, vs in types.items()} if types else None,
            point_value=float(value) if value is not None else None,
            actions={str(k): str(v) for k, v in acts.items()} if acts else None,
            holdout_share=share,
            themes=str((folder / str(themes)).expanduser().absolute()) if themes else None,
            kind=kind,
            file=str((folder / spec["file"]).expanduser().absolute()),
            columns={str(k): str(v) for k, v in spec["columns"].items()},
            arms={k: tuple(str(v) for v in vs) for k, vs in arms.items()} if arms else None,
            **values,
        )
    return out


def read_extra_tables(
    specs: dict[str, TableSpec],
    customers: pd.Index | pd.Series,
    first_order: str | pd.Timestamp,
    as_of: str | pd.Timestamp,
    *,
    id_type: str = "text",
    unmatched: float = UNMATCHED_DEFAULT,
) -> dict[str, pd.DataFrame]:
    """Read and check every table of `specs` against the validated orders: their `customers`
    (ids), the day of the `first_order` and the `as_of` day. Returns the canonical tables by kind (campaign ``arm`` as 'sent'
    or 'holdout'), each with ``attrs``: ``file``, ``customers`` and ``unmatched`` (customers
    matching no order); raises one :class:`DataValidationError` listing every problem of every
    table."""
    problems: list[str] = []
    out: dict[str, pd.DataFrame] = {}
    known = pd.Index(pd.Series(customers).astype(str).unique())
    first = pd.Timestamp(first_order)
    for kind, spec in specs.items():
        try:
            df, info = read_table_info(spec.file, schema(spec), reader="pandas",
                                       keep_unmapped=False, **spec.read_kwargs(id_type))  # fmt: skip
        except DataValidationError as err:
            problems += err.problems
            continue
        if kind in CUSTOMER_TABLES:
            problems += _check(spec, df, info, known, first, as_of, unmatched)
        elif kind == "points":
            ledger = (spec, df, info)
        else:
            df.attrs.update(file=Path(spec.file).name, customers=0, unmatched=0)
        out[kind] = df
    if "points" in out:  # checked against the members once every table is read
        members = out["loyalty"]["customer_id"].astype(str) if "loyalty" in out else None
        found, out["points"] = _check_points(*ledger, members, as_of)
        problems += found
    if problems:
        raise DataValidationError(problems)
    return out


def schema(spec: TableSpec) -> tuple[Column, ...]:
    """The columns `spec` is read with: :data:`COLUMNS` of its kind, plus (for
    :data:`OPEN_TABLES`) every other mapped column as optional text."""
    cols = COLUMNS[spec.kind]
    if spec.kind in OPEN_TABLES:
        known = {c.name for c in cols}
        cols += tuple(Column(c, "text", required=False, nullable=True)
                      for c in spec.columns if c not in known)  # fmt: skip
    return cols


#: The date column of each table.
DATE_COLUMN: dict[str, str] = {"survey": "date", "campaigns": "send_date", "loyalty": "join_date",
                               "points": "date", "tickets": "opened_at"}  # fmt: skip


def _problems(file: str, info: dict[str, Any]) -> tuple[list[str], Callable[..., None]]:
    """An empty list of problems and ``problem(col, code, mask, shown, what)``, which appends one
    message naming the client's `file`, column, lines and an example (``column_problem``). The
    rows' lines in the file (a pass over it) are found at the first problem, not for a clean
    table."""
    unit, labels = info["unit"], info["labels"]
    problems: list[str] = []
    positions: list[Any] = []

    def problem(col: str, code: str, mask: pd.Series, shown: pd.Series, what: str) -> None:
        if not positions:
            positions.append(info["positions"]())
        problems.append(column_problem(file, labels.get(col, col), mask, shown, what,
                                       positions[0], unit, column=col, code=code))  # fmt: skip

    return problems, problem


def _check(spec: TableSpec, df: pd.DataFrame, info: dict[str, Any], known: pd.Index,
           first: pd.Timestamp, as_of: str | pd.Timestamp, unmatched: float) -> list[str]:  # fmt: skip
    """The problems of one table read by :func:`read_extra_tables` (arms mapped in place)."""
    file = Path(spec.file).name
    problems, problem = _problems(file, info)

    day, day_end = periods.as_of_day(as_of), periods.as_of_end(as_of)
    date_col = DATE_COLUMN[spec.kind]
    dates = df[date_col]
    if spec.kind == "campaigns":
        arm = df["arm"].astype(str).str.strip().str.casefold().map(spec.arm_values())
        if arm.isna().any():
            allowed = spec.arms or ARMS
            problem("arm", "unknown_arm", arm.isna(), df["arm"],
                    f"neither sent {list(allowed['sent'])} nor holdout "
                    f"{list(allowed['holdout'])} (name the file's values in 'arms')")  # fmt: skip
        df["arm"] = arm
        outside = (dates < first.normalize()) | (dates >= day_end)
        if outside.any():
            problem(date_col, "outside_orders", outside, dates.dt.strftime("%Y-%m-%d"),
                    f"outside the orders' range ({first.date()} to {day.date()})")  # fmt: skip
    elif (dates >= day_end).any():
        problem(date_col, "after_as_of", dates >= day_end, dates.dt.strftime("%Y-%m-%d"),
                f"after the as-of day {day.date()}")  # fmt: skip
    ids = df["customer_id"].astype(str)
    customers = pd.Index(ids.unique())
    missing = customers.difference(known)
    share = len(missing) / max(len(customers), 1)
    if share > unmatched:
        problem("customer_id", "unmatched", ids.isin(missing), ids,
                f"of customers who match no order: {len(missing):,} of {len(customers):,} "
                f"customers ({share:.0%}; at most {unmatched:.0%} allowed: "
                "'unmatched_customers' in the mapping)")  # fmt: skip
    for col in df.columns[df.dtypes.eq(object)]:  # text in Arrow memory, NA as NA (as the orders)
        df[col] = df[col].astype(TEXT)
    df.attrs.update(file=file, customers=len(customers), unmatched=len(missing))
    return problems


def _check_points(
    spec: TableSpec, df: pd.DataFrame, info: dict[str, Any], members: pd.Series | None,
    as_of: str | pd.Timestamp,
) -> tuple[list[str], pd.DataFrame]:  # fmt: skip
    """The problems of a points ledger and the ledger as the report reads it: rows of 0 points
    of a type not named left out; ``type`` 'earn', 'redeem' or 'expire' (by the mapping's
    ``types``, else by the sign); ``points`` signed (+ earned, - redeemed or expired, whatever
    the file's sign). Refused: a movement after the as-of day, a customer who is not a member
    (`members`: the loyalty table's ids; None when it could not be read), a type the mapping
    does not name, and a redemption or expiry larger than the member's balance at that moment
    (movements in date order, earnings first within the same timestamp)."""
    file = Path(spec.file).name
    problems, problem = _problems(file, info)

    pts = df["points"].astype(float)
    zero = pts.eq(0)
    if "type" in df:
        kind = df["type"].astype(str).str.strip().str.casefold().map(spec.type_values())
        kind = kind.where(df["type"].notna())
    else:  # without a type: the sign says it (an expiry then counts as a redemption)
        kind = pd.Series(pd.NA, index=df.index, dtype=object).where(
            zero, pts.gt(0).map({True: "earn", False: "redeem"})
        )
    unknown = kind.isna() & ~zero
    if unknown.any():
        named = spec.types or POINT_TYPES
        problem("type", "unknown_type", unknown, df["type"].astype(str),
                "of a type the mapping does not name: earn "
                f"{list(named.get('earn', ()))}, redeem {list(named.get('redeem', ()))} or expire "
                f"{list(named.get('expire', ()))} (name the file's values in 'types')")  # fmt: skip
    dates = df["date"]
    day, day_end = periods.as_of_day(as_of), periods.as_of_end(as_of)
    late = dates >= day_end
    if late.any():
        problem("date", "after_as_of", late, dates.dt.strftime("%Y-%m-%d"),
                f"after the as-of day {day.date()}")  # fmt: skip
    ids = df["customer_id"].astype(str)
    if members is not None:
        stranger = ~ids.isin(pd.Index(members.unique()))
        if stranger.any():
            problem("customer_id", "not_a_member", stranger, ids,
                    f"of customers who are not in the loyalty table "
                    f"({ids[stranger].nunique():,} customers)")  # fmt: skip
    signed = pts.abs().where(kind.eq("earn"), -pts.abs())
    keep = kind.notna() & ~zero
    order = pd.DataFrame({"customer_id": ids, "date": dates, "debit": ~kind.eq("earn"),
                          "points": signed})[keep]  # fmt: skip
    order = order.sort_values(["customer_id", "date", "debit"], kind="stable")
    below = order.groupby("customer_id", sort=False)["points"].cumsum() < -1e-9
    first = below[below].groupby(order.loc[below[below].index, "customer_id"]).head(1).index
    short = pd.Series(df.index.isin(first), index=df.index)
    # the balances mean something only once the dates, members and types are right
    if short.any() and not problems:
        problem("points", "more_than_held", short, df["points"].astype(str),
                "redeeming or expiring more points than the member holds at that moment "
                "(the ledger in date order, earnings first; each member's first such row)")  # fmt: skip
    ledger = pd.DataFrame({"customer_id": ids.astype(TEXT), "date": dates,
                           "points": signed, "type": kind.astype(TEXT)})[keep]  # fmt: skip
    ledger = ledger.reset_index(drop=True)
    ledger.attrs.update(file=file, customers=int(ids[keep].nunique()),
                        unmatched=0)  # fmt: skip
    return problems, ledger
