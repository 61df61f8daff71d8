"""What the client's survey, campaign and loyalty tables say, measured the way notebooks 05-07
teach: each figure with its interval, each decision on its interval, and the comparisons that
fool clients (the member/non-member gap, respondents taken for all customers) shown as what they
are.

The tables come from :func:`helpers.report.orders.open_tables` (read and checked by
:mod:`helpers.report.extra_tables`); the orders are the report's validated orders, a pandas
DataFrame or the engine's Ibis table: what these sections need from them (the orders in a window
after each answer or send, the history before a send, first orders, the members' orders) is
reduced by the engine (:mod:`helpers.report.engine`: ``orders_after``, ``history_features``,
``first_order_times``, ``orders_of``) and only those small tables come back; a DataFrame runs
through the same expressions on an in-memory DuckDB (issue 31).
Every statistic is the project's one implementation: NPS and its adjusted-Wald interval
(:mod:`helpers.feedback`), differences of proportions, windows after an event and the
sample-ratio check (:mod:`helpers.stats`), the capped money metric and the decision rule
(:mod:`helpers.experiments`), the within-member rate model (:mod:`helpers.loyalty`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from helpers import experiments, feedback, loyalty, periods, stats
from helpers.economics import Economics

__all__ = [
    "REPURCHASE_DAYS",
    "CAMPAIGN_DAYS",
    "MONEY_CAP",
    "survey_by_period",
    "survey_change",
    "repurchase_by_category",
    "respondents_vs_others",
    "comment_themes",
    "campaign_results",
    "loyalty_comparison",
    "points_results",
    "BREAKAGE_MONTHS",
    "measured_actions",
]

#: Days after a survey answer in which a repurchase counts (answers younger than this at the
#: as-of day are left out of the repurchase figures: their window has not ended).
REPURCHASE_DAYS = 180
#: Days after a send in which an order counts for the campaign (notebook 07's window).
CAMPAIGN_DAYS = 30
#: The capped money metric's quantile, declared before any result (notebook 07).
MONEY_CAP = 0.995
#: Smallest answers per period for an NPS to be shown (smaller periods are pooled with the next).
MIN_ANSWERS = 30
#: Months after earning at which breakage is read (notebook 05's horizon; shorter ledgers are
#: read at their oldest points' age).
BREAKAGE_MONTHS = 24
#: Member resamples of the breakage interval (notebook 05's bootstrap).
BREAKAGE_BOOT = 200


def survey_by_period(survey: pd.DataFrame, period: str, as_of: str | pd.Timestamp) -> pd.DataFrame:
    """NPS per complete period (``period``: 'M' or 'Q', :mod:`helpers.periods`) with its standard
    error and the adjusted-Wald 95 % interval (Rocks 2016: :func:`helpers.feedback.nps_interval`),
    in points (-100 to 100). Columns: answers, promoters, detractors, nps, se, ci_low, ci_high.
    Periods with fewer than :data:`MIN_ANSWERS` answers are dropped (their interval is wider
    than the scale's usual moves)."""
    s = periods.up_to(survey, as_of, "date")
    last = periods.last_complete_period(as_of, period)
    code = periods.period_codes(s["date"], period)
    s = s[code <= last].assign(period=code[code <= last])
    cat = stats.nps_category(s["score"])
    g = pd.DataFrame({"period": s["period"].to_numpy(), "cat": np.asarray(cat)})
    counts = pd.crosstab(g["period"], g["cat"]).reindex(
        columns=["detractor", "passive", "promoter"], fill_value=0
    )
    n = counts.sum(axis=1)
    counts = counts[n >= MIN_ANSWERS]
    n = n[n >= MIN_ANSWERS]
    centre, se, lo, hi = feedback.nps_interval(
        counts["promoter"].to_numpy(), counts["detractor"].to_numpy(), n.to_numpy(), "adjusted_wald"
    )
    out = pd.DataFrame(
        {
            "answers": n.to_numpy(), "promoters": counts["promoter"].to_numpy(),
            "detractors": counts["detractor"].to_numpy(), "nps": 100 * centre, "se": 100 * se,
            "ci_low": 100 * lo, "ci_high": 100 * hi,
        },
        index=pd.PeriodIndex(periods.period_index(counts.index, period), name="period"),
    )  # fmt: skip
    return out


def survey_change(survey: pd.DataFrame, period: str, as_of: str | pd.Timestamp) -> dict[str, Any]:
    """The change of NPS between the last two complete periods with answers: difference in
    points, its 95 % interval and p-value (:func:`helpers.feedback.nps_difference`: independent
    waves, se = sqrt(Var_a + Var_b)), and ``moved``: whether the interval excludes 0."""
    s = periods.up_to(survey, as_of, "date")
    last = periods.last_complete_period(as_of, period)
    code = periods.period_codes(s["date"], period)
    ok = sorted(
        c for c, k in pd.Series(code[code <= last]).value_counts().items() if k >= MIN_ANSWERS
    )
    if len(ok) < 2:
        return {}
    a, b = ok[-2], ok[-1]
    d = feedback.nps_difference(s["score"][code == a], s["score"][code == b])
    names = periods.period_index(np.array([a, b]), period)
    return {
        "from": str(names[0]), "to": str(names[1]), "difference": 100 * d["difference"],
        "ci_low": 100 * d["ci_low"], "ci_high": 100 * d["ci_high"], "p_value": d["p_value"],
        "moved": bool(d["ci_low"] > 0 or d["ci_high"] < 0),
    }  # fmt: skip


def _repurchase(events: pd.DataFrame, orders: Any, at: str, as_of) -> pd.DataFrame:
    """`events` whose :data:`REPURCHASE_DAYS` window has ended by `as_of`, with ``bought``: an
    order in that window (:func:`helpers.stats.orders_after`, in the engine:
    :func:`helpers.report.engine.orders_after`)."""
    from helpers.report import engine  # Ibis is imported only when it is used

    end = periods.as_of_end(as_of)
    e = events[events[at] + pd.Timedelta(days=REPURCHASE_DAYS) < end]
    w = engine.orders_after(e, orders, REPURCHASE_DAYS, at=at, as_of=as_of)
    return e.assign(bought=w["converted"].to_numpy())


def repurchase_by_category(
    survey: pd.DataFrame, orders: Any, as_of: str | pd.Timestamp
) -> pd.DataFrame:
    """Share of answers followed by an order within :data:`REPURCHASE_DAYS` days, by NPS
    category, with Wilson 95 % intervals; and each category against the detractors (difference
    with Newcombe's interval, :func:`helpers.stats.proportion_difference`). An association, not
    an effect: the same customers' loyalty drives both the score and the next order."""
    from statsmodels.stats.proportion import proportion_confint

    e = _repurchase(survey, orders, "date", as_of)
    cat = pd.Series(np.asarray(stats.nps_category(e["score"])), index=e.index)
    rows = {}
    base = e["bought"][cat.eq("detractor")].to_numpy(float)
    for name in ("detractor", "passive", "promoter"):
        y = e["bought"][cat.eq(name)].to_numpy(float)
        if len(y) == 0:
            continue
        lo, hi = proportion_confint(y.sum(), len(y), method="wilson")
        row = {"answers": len(y), "share": y.mean(), "ci_low": lo, "ci_high": hi}
        if name != "detractor" and len(base):
            d = stats.proportion_difference(y, base)
            row |= {"vs_detractors": d["estimate"], "vs_low": d["ci_low"], "vs_high": d["ci_high"]}
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("category")


def respondents_vs_others(
    survey: pd.DataFrame, orders: Any, as_of: str | pd.Timestamp
) -> dict[str, float]:
    """The non-response warning (notebook 06): among customers who ordered while the survey ran,
    the share who answered (the response rate), and the repurchase of respondents against the
    others: an order within :data:`REPURCHASE_DAYS` days after each customer's first order in
    the survey's time range. Respondents who buy again more often than the others mean the
    survey hears from the loyal: its NPS speaks for them, not for all customers."""
    from helpers.report import engine  # Ibis is imported only when it is used

    first, last = survey["date"].min(), survey["date"].max()
    ref = engine.first_order_times(orders, as_of, first, last).rename("at").reset_index()
    answered = set(survey["customer_id"].astype(str))
    ref["respondent"] = ref["customer_id"].astype(str).isin(answered)
    e = _repurchase(ref, orders, "at", as_of)
    d = stats.proportion_difference(
        e["bought"][e["respondent"]].to_numpy(float), e["bought"][~e["respondent"]].to_numpy(float)
    )
    return {
        "customers": len(ref), "respondents": int(ref["respondent"].sum()),
        "response_rate": float(ref["respondent"].mean()),
        "repurchase_respondents": d["p_treat"], "repurchase_others": d["p_control"],
        "difference": d["estimate"], "ci_low": d["ci_low"], "ci_high": d["ci_high"],
    }  # fmt: skip


def comment_themes(survey: pd.DataFrame, themes: dict[str, tuple[str, ...]]) -> pd.DataFrame | None:
    """Shares of the comments' themes by a keyword dictionary (:func:`helpers.feedback.keyword_themes`;
    'other' when no stem matches) with Goodman's simultaneous 95 % intervals
    (:func:`helpers.feedback.theme_shares`); None without at least two themes among the
    comments. A dictionary's shares are only as good as its words: read a sample by hand."""
    if "comment" not in survey:
        return None
    comments = survey["comment"].dropna()
    comments = comments[comments.astype(str).str.strip() != ""]
    labels = feedback.keyword_themes(comments.astype(str), themes)
    if labels.dropna().nunique() < 2:
        return None
    return feedback.theme_shares(labels)


def _group_of(sends: pd.DataFrame) -> pd.Series:
    """What a result is reported for: the mapped ``flow`` (an automated flow or programme,
    pooled over its campaigns) when there is one, else the campaign."""
    col = "flow" if "flow" in sends and sends["flow"].notna().all() else "campaign"
    return sends[col].astype(str)


def campaign_results(
    sends: pd.DataFrame,
    orders: Any,
    econ: Economics,
    planned_holdout: dict[str, float] | float | None = None,
) -> pd.DataFrame:
    """Per campaign (or flow): sends in each arm, the sample-ratio check against the planned
    holdout share when given (:func:`helpers.stats.srm_check`), the uplift in conversion
    (an order within :data:`CAMPAIGN_DAYS` days of the send, the send's day included) with
    Newcombe's interval, and the incremental margin per send on the declared capped metric
    (:func:`helpers.experiments.capped_diff` at :data:`MONEY_CAP`: margin of the window's orders
    minus the send's cost and the discount it gave; the window's orders are summed in the
    engine, :func:`helpers.report.engine.orders_after`, and the pre-send covariates come from
    :func:`helpers.report.engine.history_features`), with the decision on its interval
    (:func:`helpers.experiments.decide_on_interval`: keep, stop or inconclusive) and, when
    inconclusive, the sends a test needs to settle it (:func:`helpers.experiments.units_to_settle`).
    A campaign without holdout sends is 'not measurable'; ``holdout_needed`` is then the share
    to hold out next time for an 80 % power at the uplift the measured campaigns show.

    Margin is :func:`helpers.economics.order_margin` with `econ`; the send cost is the mapped
    ``cost`` or ``econ.cost_per_contact``; a mapped ``discount`` costs its goods, (1 - g) x
    discount, when the orders carry no discount column (their amounts are net of it)."""
    from helpers.report import engine  # Ibis is imported only when it is used

    s = sends.reset_index(drop=True)
    as_of = engine.default_as_of(engine.section_table(orders, ["customer_id", "order_date"]))
    # experiments.outcomes_in_window's window ("both": a send dated at midnight of its day)
    w = engine.orders_after(s, orders, CAMPAIGN_DAYS, at="send_date", closed="both",
                            margin=econ, as_of=as_of)  # fmt: skip
    cost = s["cost"].fillna(econ.cost_per_contact) if "cost" in s else econ.cost_per_contact
    offset = np.broadcast_to(np.asarray(cost, dtype=float), len(s))
    money = w["margin"].to_numpy(float)
    if "discount" in s and "discount" not in orders:  # amounts net of it: its goods' cost
        money = money - (1 - econ.gross_margin_rate) * s["discount"].fillna(0.0).to_numpy(float)
    first = engine.first_order_times(orders, as_of)
    customers = first.rename("signup_date").rename_axis("customer_id").reset_index()
    f = engine.history_features(s, orders, "send_date", first, as_of=as_of)
    X = experiments.pre_send_covariates(s, None, customers, "send_date", f).to_numpy(float)
    group = _group_of(s)
    rows = {}
    for name, idx in group.groupby(group, sort=True).groups.items():
        t = (s.loc[idx, "arm"] == "sent").to_numpy()
        n_sent, n_hold = int(t.sum()), int((~t).sum())
        row: dict[str, Any] = {"sent": n_sent, "holdout": n_hold,
                               "holdout_share": n_hold / (n_sent + n_hold)}  # fmt: skip
        share = planned_holdout.get(name) if isinstance(planned_holdout, dict) else planned_holdout
        if share is not None and n_hold:
            srm = stats.srm_check([n_hold, n_sent], [share, 1 - share])
            row |= {"planned_holdout": share, "srm_p": srm["p_value"], "srm": srm["mismatch"]}
        if n_hold == 0 or n_sent == 0:
            row["decision"] = "not_measurable"
            rows[name] = row
            continue
        y = w.loc[idx, "converted"].to_numpy(float)
        raw = stats.proportion_difference(y[t], y[~t])
        conv = experiments.cuped(y, X[idx], t).adjusted
        cap = float(np.quantile(money[idx], MONEY_CAP))
        prof = experiments.cuped(np.minimum(money[idx], cap) - offset[idx] * t, X[idx], t).adjusted
        decision = experiments.decide_on_interval(prof["ci_low"], prof["ci_high"])
        se = (prof["ci_high"] - prof["ci_low"]) / (2 * 1.959964)
        row |= {
            "p_holdout": raw["p_control"], "p_sent": raw["p_treat"],
            "uplift_raw": raw["estimate"], "uplift_raw_low": raw["ci_low"],
            "uplift_raw_high": raw["ci_high"],
            "uplift": conv["estimate"], "uplift_low": conv["ci_low"],
            "uplift_high": conv["ci_high"], "margin_per_send": prof["estimate"],
            "margin_low": prof["ci_low"], "margin_high": prof["ci_high"], "cap": cap,
            "decision": decision,
            "sends_to_settle": experiments.units_to_settle(prof["estimate"], se, len(idx))
            if decision == "inconclusive" else np.nan,
        }  # fmt: skip
        rows[name] = row
    out = pd.DataFrame.from_dict(rows, orient="index").rename_axis("campaign")
    measured = out[out["decision"] != "not_measurable"]
    if len(measured) < len(out) and len(measured):
        p0 = float(measured["p_holdout"].mean())
        up = float(measured["uplift"].clip(lower=0.005).median())
        n = experiments.sample_size_two_proportions(p0 + up, p0)
        sends_per = out.loc[out["decision"] == "not_measurable", "sent"]
        out.loc[sends_per.index, "holdout_needed"] = np.minimum(0.5, n / sends_per.clip(lower=1))
    return out


def measured_actions(
    results: pd.DataFrame | None, actions: dict[str, str] | None
) -> dict[str, dict[str, Any]]:
    """The report's actions whose effect a randomized campaign measured: `actions` maps an
    action of :func:`helpers.report.analysis.recommendations` ('winback', 'champions',
    'first_time') to a campaign or flow of `results` (:func:`campaign_results`); each gets that
    campaign's margin per send with its interval. Campaigns not measurable are left out."""
    out: dict[str, dict[str, Any]] = {}
    if results is None or not actions:
        return out
    for action, name in actions.items():
        if name in results.index and results.loc[name, "decision"] != "not_measurable":
            r = results.loc[name]
            out[action] = {"campaign": name, "estimate": float(r["margin_per_send"]),
                           "ci_low": float(r["margin_low"]), "ci_high": float(r["margin_high"])}  # fmt: skip
    return out


def loyalty_comparison(
    members: pd.DataFrame, orders: Any, as_of: str | pd.Timestamp
) -> dict[str, Any]:
    """The member/non-member gap and the within-member estimate (notebook 05).

    - naive: orders per customer-year of members after joining against non-members (all their
      time): the programme's effect *and* self-selection (keen buyers join);
    - within-member: notebook 05's BG/NBD with a rate multiplier after joining
      (:func:`helpers.loyalty.fit_rate_multipliers` on :func:`helpers.loyalty.order_states`,
      one state after joining): each member compared with themselves before joining, dropout
      included; it needs members with orders before joining and assumes the rate before
      joining would have continued (no change of the customer's own rate at the time).

    Returns ``members``, ``members_with_history``, ``naive_ratio`` and ``uplift`` with
    ``uplift_low``, ``uplift_high`` (95 %, from the Hessian).

    From the orders the engine returns each customer's first order time, the number of all
    orders and the members' orders (the model takes those one by one:
    :func:`helpers.report.engine.orders_of`); the other customers' orders stay there."""
    from helpers.report import engine  # Ibis is imported only when it is used

    end = periods.as_of_end(as_of)
    m = members.assign(customer_id=members["customer_id"].astype(str))
    joins = m.groupby("customer_id")["join_date"].min()
    first = engine.first_order_times(orders, as_of)
    o, total = engine.orders_of(orders, joins.index, as_of)  # members' orders, and the count
    join = o["customer_id"].map(joins)
    after = o[o["order_date"] > join]
    member_years = ((end - joins.reindex(first.index).dropna()) / pd.Timedelta(days=365.25)).sum()
    others = first.index.difference(joins.index)
    other_years = ((end - first.reindex(others)) / pd.Timedelta(days=365.25)).sum()
    n_other = total - len(o)  # the orders of customers who are not members
    naive = (len(after) / member_years) / (n_other / other_years)
    history = (first.reindex(joins.index) < joins).fillna(False)
    events = pd.DataFrame({"customer_id": joins.index, "event_at": joins.to_numpy(),
                           "event_type": "join", "points": 0})  # fmt: skip
    customers = first.rename("signup_date").reset_index()
    o["order_id"] = np.arange(len(o))
    states = loyalty.order_states(o, customers, events, {"Member": 0}, 0, as_of)
    fit = loyalty.fit_rate_multipliers(states, ["Member"])
    low, high = fit.ci["uplift"]
    return {
        "members": len(joins), "members_with_history": int(history.sum()),
        "naive_ratio": float(naive), "uplift": float(fit.params["uplift"]),
        "uplift_low": low, "uplift_high": high,
    }  # fmt: skip


def points_results(
    ledger: pd.DataFrame,
    as_of: str | pd.Timestamp,
    point_value: float | None = None,
    horizon_months: float = BREAKAGE_MONTHS,
    n_boot: int = BREAKAGE_BOOT,
) -> dict[str, Any]:
    """Points outstanding at the as-of day, the redemption and expiry to date and breakage with
    its interval, from a points ledger (:func:`helpers.report.extra_tables.read_extra_tables`:
    ``customer_id``, ``date``, signed ``points``, ``type`` earn / redeem / expire), with
    notebook 05's helpers: :func:`helpers.loyalty.points_ledger` (earned, redeemed, expired,
    outstanding = earned - redeemed - expired, its face value at `point_value`, expired / earned
    so far), :func:`helpers.loyalty.point_fates` (first in, first out: which points were
    redeemed, expired or are open) and :func:`helpers.loyalty.ultimate_breakage` (the
    Aalen-Johansen share of points expired within `horizon_months` of earning, redemption
    competing, open points censored; members resampled for the 95 % interval; and the bounds
    on the share never redeemed, whatever the points still open at that age do later). The
    horizon is shortened to the oldest points' age when the ledger is younger (``months``)."""
    from helpers import loyalty

    ev = pd.DataFrame({
        "event_id": np.arange(len(ledger)), "customer_id": ledger["customer_id"].astype(str),
        "event_at": ledger["date"], "event_type": ledger["type"].astype(str),
        "points": ledger["points"].astype(float),
    })  # fmt: skip
    ev = periods.up_to(ev, as_of, "event_at")
    led = loyalty.points_ledger(ev, point_value or 0.0)
    out: dict[str, Any] = {
        "members": int(ev["customer_id"].nunique()),
        "holders": 0,
        "earned": led["earned"], "redeemed": led["redeemed"], "expired": led["expired"],
        "outstanding": led["outstanding"], "point_value": point_value,
        "outstanding_value": led["liability_face_value"] if point_value else None,
        "breakage_so_far": led["breakage_so_far"], "months": None, "breakage": None,
    }  # fmt: skip
    balance = ev.groupby("customer_id")["points"].sum()
    out["holders"] = int((balance > 0).sum())
    fates = loyalty.point_fates(ev, as_of)
    oldest = float(fates["months"].max()) if len(fates) else 0.0
    if oldest < 1:
        return out
    months = float(min(horizon_months, np.floor(oldest)))
    ult = loyalty.ultimate_breakage(fates, months, n_boot=n_boot, seed=0)
    out["months"] = months
    out["breakage"] = ult
    return out


def _iv(fmt: Any, est: float, low: float, high: float, kind: str = "num", digits: int = 1) -> str:
    """'est (low to high)' in the report's formats: kind 'num' (points), 'pct' or 'money'."""
    f = {"num": lambda v: fmt.num(v, digits), "pct": lambda v: fmt.pct(v, digits),
         "money": lambda v: fmt.money(v, 2), "ratio": lambda v: fmt.num(v, 2)}[kind]  # fmt: skip
    return f"{f(est)} ({f(low)} – {f(high)})"


def show(
    tables: dict[str, pd.DataFrame],
    orders: pd.DataFrame,
    as_of: str | pd.Timestamp,
    period: str,
    econ: Economics,
    T: Any,
    fmt: Any,
    planned_holdout: dict[str, float] | float | None = None,
    themes: dict[str, tuple[str, ...]] | None = None,
    campaigns: pd.DataFrame | None = None,
    truth: dict[str, Any] | None = None,
    point_value: float | None = None,
) -> dict[str, Any]:
    """Display the survey, campaign and loyalty sections for the tables given (each section only
    when its table is mapped; one line saying what is needed when none is) and return their
    figures for ``metrics.json``. `campaigns`: :func:`campaign_results` when already computed.
    `truth`: a generated company's ground truth (:func:`helpers.synth.read_truth`; None for a
    client): the loyalty multiplier is then recorded against the generator's
    ``realized.loyalty.within_member_multiplier`` (:func:`helpers.run.truth_entry`), and the
    points' breakage bounds against ``realized.loyalty.ultimate_breakage``. `point_value`: the
    mapping's money per point (the outstanding points' face value; None: points only)."""
    from IPython.display import display

    T.md("beyond.section")
    if not tables:
        T.md("beyond.none")
        return {}
    out: dict[str, Any] = {}
    if "survey" in tables:
        s = tables["survey"]
        by = survey_by_period(s, period, as_of)
        T.md("survey.section", period=T(f"period.{period}"), answers=fmt.num(len(s)))
        shown = pd.DataFrame({
            T("col.answers"): [fmt.num(v) for v in by["answers"]],
            T("col.nps"): [_iv(fmt, *r) for r in by[["nps", "ci_low", "ci_high"]].to_numpy()],
        }, index=by.index.astype(str).rename(T("col.period")))  # fmt: skip
        display(shown.tail(8))
        change = survey_change(s, period, as_of)
        if change:
            T.md("survey.change", first=change["from"], last=change["to"],
                 change=_iv(fmt, change["difference"], change["ci_low"], change["ci_high"]),
                 verdict=T("survey.moved" if change["moved"] else "survey.noise"))  # fmt: skip
        rep = repurchase_by_category(s, orders, as_of)
        non = respondents_vs_others(s, orders, as_of)
        if {"detractor", "promoter"} <= set(rep.index):
            d, p = rep.loc["detractor"], rep.loc["promoter"]
            T.md("survey.repurchase", days=REPURCHASE_DAYS,
                 detractors=_iv(fmt, d["share"], d["ci_low"], d["ci_high"], "pct", 0),
                 promoters=_iv(fmt, p["share"], p["ci_low"], p["ci_high"], "pct", 0))  # fmt: skip
        loyal = non["ci_low"] > 0
        T.md("survey.nonresponse", rate=fmt.pct(non["response_rate"], 0), days=REPURCHASE_DAYS,
             respondents=fmt.pct(non["repurchase_respondents"], 0),
             others=fmt.pct(non["repurchase_others"], 0),
             difference=_iv(fmt, non["difference"], non["ci_low"], non["ci_high"], "pct", 1),
             verdict=T("survey.loyal_heard" if loyal else "survey.no_sign"))  # fmt: skip
        theme_table = comment_themes(s, themes) if themes else None
        if theme_table is not None:
            T.md("survey.themes", comments=fmt.num(theme_table["n"].sum()), other=T("attr.other"))
            theme_table = theme_table.rename(index={"other": T("attr.other")})
            display(pd.DataFrame({
                T("col.comments"): [fmt.num(v) for v in theme_table["n"]],
                T("col.share"): [_iv(fmt, *r, "pct", 0)
                                 for r in theme_table[["share", "ci_low", "ci_high"]].to_numpy()],
            }, index=theme_table.index.rename(T("col.theme"))))  # fmt: skip
        last = by.iloc[-1] if len(by) else None
        out["survey"] = {
            "answers": len(s), "unmatched_customers": s.attrs.get("unmatched", 0),
            "nps_last": None if last is None else {
                "period": str(by.index[-1]), "estimate": last["nps"],
                "ci_low": last["ci_low"], "ci_high": last["ci_high"]},
            "change": change, "repurchase": rep.reset_index().to_dict("records"),
            "respondents_vs_others": non,
            "themes": None if theme_table is None else theme_table.reset_index().to_dict("records"),
        }  # fmt: skip
    if "campaigns" in tables:
        res = campaigns  # computed once when the actions use them
        if res is None:
            res = campaign_results(tables["campaigns"], orders, econ, planned_holdout)
        T.md("campaigns.section", days=CAMPAIGN_DAYS, cap=fmt.num(100 * MONEY_CAP, 1))
        rows = []
        for name, r in res.iterrows():
            measured = r["decision"] != "not_measurable"
            rows.append({
                T("col.campaign"): name,
                T("col.sends"): f"{fmt.num(r['sent'])} / {fmt.num(r['holdout'])}",
                T("col.uplift"): _iv(fmt, r["uplift"], r["uplift_low"], r["uplift_high"], "pct")
                if measured else "–",
                T("col.margin_per_send"): _iv(fmt, r["margin_per_send"], r["margin_low"],
                                              r["margin_high"], "money") if measured else "–",
                T("col.decision"): T(f"decision.{r['decision']}"),
            })  # fmt: skip
        display(pd.DataFrame(rows).set_index(T("col.campaign")))
        for name, r in res.iterrows():
            if r.get("srm", False) is True:
                T.md("campaigns.srm", campaign=str(name), observed=fmt.pct(r["holdout_share"]),
                     planned=fmt.pct(r["planned_holdout"]), p=fmt.num(r["srm_p"], 4))  # fmt: skip
            if r["decision"] == "not_measurable":
                T.md("campaigns.no_holdout", campaign=str(name),
                     share=fmt.pct(r.get("holdout_needed", 0.1), 0))  # fmt: skip
            elif r["decision"] == "inconclusive":
                T.md("campaigns.settle", campaign=str(name),
                     sends=fmt.num(r["sends_to_settle"]))  # fmt: skip
        out["campaigns"] = res.reset_index().to_dict("records")
    if "loyalty" in tables:
        lc = loyalty_comparison(tables["loyalty"], orders, as_of)
        T.md("loyalty.section", members=fmt.num(lc["members"]),
             naive=fmt.num(lc["naive_ratio"], 1), with_history=fmt.num(lc["members_with_history"]),
             uplift=_iv(fmt, lc["uplift"], lc["uplift_low"], lc["uplift_high"], "ratio"))  # fmt: skip
        T.md("loyalty.average")
        planted = (truth or {}).get("realized", {}).get("loyalty", {})
        planted = planted.get("within_member_multiplier")
        from helpers.run import truth_entry

        # recorded on every client (truth None without the generator's ground truth beside the
        # orders), so that the same orders from a file and from a database give the same metrics
        lo, hi = lc["uplift_low"], lc["uplift_high"]
        lc["within_member_multiplier"] = truth_entry(lc["uplift"], lo, hi, planted)
        if planted is not None:
            T.md("loyalty.truth", truth=fmt.num(planted, 2),
                 verdict=T("loyalty.covers" if lo <= planted <= hi else "loyalty.misses"))  # fmt: skip
        out["loyalty"] = lc
    if "points" in tables:
        out["points"] = _show_points(tables["points"], as_of, point_value, truth, T, fmt)
    return out


def _show_points(
    ledger: pd.DataFrame, as_of: Any, point_value: float | None, truth: dict[str, Any] | None,
    T: Any, fmt: Any,
) -> dict[str, Any]:  # fmt: skip
    """The points paragraph (:func:`points_results`) and its figures for ``metrics.json``; the
    share never redeemed is recorded as ``ultimate_breakage`` (estimate: expired within the
    horizon; interval: the bounds with their sampling error, as notebook 05 records it) against
    a generated company's ``realized.loyalty.ultimate_breakage``."""
    from helpers.run import truth_entry

    r = points_results(ledger, as_of, point_value)
    T.md("points.section", members=fmt.num(r["holders"]), outstanding=fmt.num(r["outstanding"]),
         as_of=fmt.date(as_of), earned=fmt.num(r["earned"]), redeemed=fmt.num(r["redeemed"]),
         expired=fmt.num(r["expired"]), so_far=fmt.pct(r["breakage_so_far"], 1))  # fmt: skip
    if point_value:
        digits = 2 if round(point_value, 2) == point_value else 4  # a cent, or a fraction of one
        per = fmt.money(point_value, digits)
        T.md("points.value", per=per, value=fmt.money(r["outstanding_value"]))
    ult = r["breakage"]
    if ult is None:
        T.md("points.short")
        return r
    T.md("points.breakage", months=fmt.num(r["months"]),
         within=_iv(fmt, ult["estimate"], ult["ci_low"], ult["ci_high"], "pct", 1),
         open=fmt.pct(ult["open"], 0), low=fmt.pct(ult["bound_low"], 1),
         high=fmt.pct(ult["bound_high"], 1))  # fmt: skip
    planted = (truth or {}).get("realized", {}).get("loyalty", {}).get("ultimate_breakage")
    r["ultimate_breakage"] = truth_entry(ult["estimate"], ult["bound_low"], ult["bound_high"],
                                         planted)  # fmt: skip
    if planted is not None:
        inside = ult["bound_low"] <= planted <= ult["bound_high"]
        T.md("points.truth", truth=fmt.pct(planted, 1),
             verdict=T("loyalty.covers" if inside else "loyalty.misses"))  # fmt: skip
    r["breakage"] = {k: float(v) for k, v in ult.items()}
    return r
