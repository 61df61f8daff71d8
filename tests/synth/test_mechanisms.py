"""The second edition's mechanisms: each is visible in the data, and a simple estimator recovers
its truth from ground_truth.json / the truth files, on the bundled company and on one generated
with another seed, another size and other effect sizes (through the CLI)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from helpers import data, paths, synth
from helpers.synth.__main__ import main as cli

OTHER = [
    "--seed", "11",
    "--set", "n_customers=3500",
    "--set", "loyalty_rate_uplift=1.8",
    "--set", "loyalty_pilot_countries=('FR','ES')",
    "--set", "goal_gradient_multiplier=2.0",
    "--set", "coupon_uplift=((5,0.1),(10,0.2),(15,0.3))",
    "--set", "winback_uplift=0.06",
    "--set", "detractor_dropout_followup=0.2",
    "--set", "delivery_fix_reduction=0.3",
    "--set", "delivery_fix_date=2024-10-01",
    "--set", "sub_hr_bad_ticket=3.0",
    "--set", "sub_hr_visits_drop=1.5",
    "--set", "nps_response_risk_slope=-1.0",
    "--set", "acquisition_cpa=(('organic_search',5.0),('paid_social',90.0),('referral',20.0),('deal_site',8.0),('marketplace',30.0),('influencer',60.0))",
    "--set", "email_optout_per_email=0.008",
    "--set", "resolution_dropout_extra=(('replacement',0.0),('refund',0.15),('voucher',0.05),('explanation',0.3))",
]  # fmt: skip


@pytest.fixture(scope="module")
def other_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("other_company")
    cli(["--out", str(out), *OTHER])
    return out


@pytest.fixture(scope="module", params=["bundled", "other"])
def company(request, other_dir):
    folder = paths.DATASETS if request.param == "bundled" else other_dir
    tables = data.load_all(folder)
    for name in synth.TRUTH_TABLES:
        tables[name] = synth.read_truth(folder, table=name)
    truth = synth.read_truth(folder)
    return tables, truth


def within(estimate: float, truth: float, se: float, k: float = 3.0) -> bool:
    return abs(estimate - truth) <= k * se


def test_cli_writes_a_company_with_the_overrides(other_dir):
    truth = synth.read_truth(other_dir)
    assert truth["parameters"]["seed"] == 11 and truth["parameters"]["loyalty_rate_uplift"] == 1.8
    assert truth["parameters"]["loyalty_pilot_countries"] == ["FR", "ES"]
    names = {p.stem for p in other_dir.glob("*.csv")}
    assert names == set(synth.TABLES) | set(synth.TRUTH_TABLES)
    with pytest.raises(SystemExit):
        cli(["--out", str(other_dir), "--set", "no_such_field=1"])


def test_bundled_data_stay_small():
    size = sum(p.stat().st_size for p in paths.DATASETS.iterdir() if p.is_file())
    assert size < 12e6


# --- acquisition -------------------------------------------------------------------------------
def test_spend_per_signup_recovers_the_cost_per_acquisition(company):
    tables, truth = company
    spend = tables["marketing_spend"]
    signups = tables["customers"].groupby("acquisition_channel").size()
    g = spend.groupby("channel")
    assert (
        g["signups"].sum().equals(signups.rename_axis("channel").reindex(g["signups"].sum().index))
    )
    sd = truth["parameters"]["acquisition_spend_noise_sd"]
    for ch, cpa in truth["parameters"]["acquisition_cpa"]:
        d = spend[spend["channel"] == ch]
        est = d["spend"].sum() / d["signups"].sum()
        rel_se = sd * np.sqrt((d["signups"] ** 2).sum()) / d["signups"].sum()
        assert within(est, cpa, cpa * rel_se), ch
    cpa = dict(truth["parameters"]["acquisition_cpa"])
    assert cpa["paid_social"] > 4 * cpa["referral"]  # dear vs cheap channels


# --- loyalty -----------------------------------------------------------------------------------
def test_staggered_launch_is_visible(company):
    tables, truth = company
    launch = tables["loyalty_launches"].set_index("country")["launch_date"]
    assert tables["loyalty_launches"]["pilot"].sum() == 2
    joins = (
        tables["loyalty_events"]
        .query("event_type == 'join'")
        .merge(tables["customers"][["customer_id", "country"]])
    )
    assert (joins["event_at"] >= joins["country"].map(launch)).all()
    first = joins.groupby("country")["event_at"].min()
    pilots = launch.index[tables["loyalty_launches"].set_index("country")["pilot"]]
    assert (first[pilots] < first.drop(pilots).min()).all()
    assert (
        truth["realized"]["loyalty"]["naive_rate_ratio"]
        > 1.5 * truth["parameters"]["loyalty_rate_uplift"]
    )


def _cell_rate(orders: pd.DataFrame, cust: pd.DataFrame, lo: str, hi: str) -> tuple[float, float]:
    """Orders per customer-month in [lo, hi), counting each customer's months from the sign-up
    month; the variance of the ratio estimator by customer (linearization)."""
    lo_t, hi_t = pd.Timestamp(lo), pd.Timestamp(hi)
    start = cust["signup_date"].dt.to_period("M").dt.to_timestamp().clip(lower=lo_t)
    months = ((hi_t.year * 12 + hi_t.month) - (start.dt.year * 12 + start.dt.month)).clip(lower=0)
    o = orders[(orders["order_date"] >= lo_t) & (orders["order_date"] < hi_t)]
    n = o.groupby("customer_id").size().reindex(cust["customer_id"], fill_value=0).to_numpy()
    m = months.to_numpy()
    r = n.sum() / m.sum()
    var = ((n - r * m) ** 2).sum() / m.sum() ** 2
    return r, var


def test_difference_in_differences_recovers_the_pilot_effect(company):
    """Pilot vs other countries, 2024 (pilot open) vs 2023 (nobody open): orders per customer-month."""
    tables, truth = company
    cust, orders = tables["customers"], tables["orders"]
    p = truth["parameters"]
    pilot = cust["country"].isin(p["loyalty_pilot_countries"])
    a1, v1 = _cell_rate(orders, cust[pilot], p["loyalty_pilot_launch"], p["loyalty_launch"])
    a0, v0 = _cell_rate(orders, cust[pilot], p["start"], p["loyalty_pilot_launch"])
    b1, w1 = _cell_rate(orders, cust[~pilot], p["loyalty_pilot_launch"], p["loyalty_launch"])
    b0, w0 = _cell_rate(orders, cust[~pilot], p["start"], p["loyalty_pilot_launch"])
    did = (a1 - a0) - (b1 - b0)
    se = np.sqrt(v1 + v0 + w1 + w0)
    t = truth["realized"]["loyalty"]["pilot_att_orders_per_customer_month"]
    assert t > 0
    assert within(did, t, se), (did, t, se)


def test_tier_shares_benefits_and_points(company):
    tables, truth = company
    lt = truth["realized"]["loyalty"]
    if truth["parameters"]["seed"] == synth.SynthConfig().seed:
        assert 0.10 <= lt["share_silver_or_gold"] <= 0.18 and 0.03 <= lt["share_gold"] <= 0.05
    ev = tables["loyalty_events"]
    assert set(ev["event_type"].astype(str)) == {"join", "earn", "redeem", "tier_up", "expire"}
    # breakage: expired / earned, as in the truth; the balance never goes negative
    tot = ev.groupby(ev["event_type"].astype(str))["points"].sum()
    assert -tot["expire"] / tot["earn"] == pytest.approx(lt["breakage_rate"], rel=1e-4)
    bal = ev.sort_values(["customer_id", "event_id"]).groupby("customer_id")["points"].cumsum()
    assert (bal >= 0).all()
    assert (
        int(bal.groupby(ev.sort_values(["customer_id", "event_id"])["customer_id"]).last().sum())
        == lt["outstanding_points"]
    )
    # an expiry comes 12 months after the member's previous earn or redeem
    act = ev[ev["event_type"].isin(["earn", "redeem", "expire"])].sort_values(
        ["customer_id", "event_at"]
    )
    prev = act.groupby("customer_id")["event_at"].shift()
    exp = act["event_type"] == "expire"
    gap = (act.loc[exp, "event_at"] - prev[exp]).dt.total_seconds() / 86400
    assert gap.between(364.99, 366.01).all()


def test_redemption_follows_the_true_propensity(company):
    """Among earning orders that leave 500+ points, the share redeemed matches the mean of the
    members' true propensities."""
    tables, truth = company
    ev = tables["loyalty_events"].sort_values(["customer_id", "event_id"])
    ev = ev.assign(balance=ev.groupby("customer_id")["points"].cumsum())
    nxt = ev.groupby("customer_id")["event_type"].shift(-1).astype(str)
    earn = ev[(ev["event_type"] == "earn") & (ev["balance"] >= truth["parameters"]["redeem_block"])]
    redeemed = (nxt[earn.index] == "redeem").to_numpy()
    rho = (
        tables["truth_customers"]
        .set_index("customer_id")["redeem_propensity"]
        .reindex(earn["customer_id"])
        .to_numpy()
    )
    se = np.sqrt((rho * (1 - rho)).sum()) / len(rho)
    assert len(rho) > 50
    assert within(redeemed.mean(), rho.mean(), se)


def test_goal_gradient_and_tier_lift_in_gaps_between_orders(company):
    """Within a member (customer fixed effects), the log gap to the next order is shorter by
    log(goal_gradient_multiplier) when the member is within the window of the next tier
    (exponential gaps: E log gap = -log rate - Euler's constant)."""
    tables, truth = company
    p = truth["parameters"]
    ev = tables["loyalty_events"]
    orders = tables["orders"]
    earn = ev[ev["event_type"] == "earn"].sort_values(["customer_id", "event_at"])
    earn = earn.assign(life=earn.groupby("customer_id")["points"].cumsum())
    org = orders[orders["campaign_id"].isna()][["customer_id", "order_date"]].sort_values(
        ["customer_id", "order_date"]
    )
    earn = earn.merge(
        org.rename(columns={"order_date": "event_at"}), on=["customer_id", "event_at"]
    )
    earn = earn.assign(nxt=earn.groupby("customer_id")["event_at"].shift(-1)).dropna(subset=["nxt"])
    thr = np.array([v for _, v in p["tiers"]] + [np.inf])
    tier = np.searchsorted(thr, earn["life"].to_numpy(), side="right") - 1
    near = (thr[tier + 1] - earn["life"].to_numpy()) <= p["goal_gradient_window"]
    y = np.log((earn["nxt"] - earn["event_at"]).dt.total_seconds() / 86400 / 7)
    X = pd.DataFrame(
        {
            "near": near.astype(float),
            "silver": (tier == 1).astype(float),
            "gold": (tier == 2).astype(float),
        }
    )
    g = earn["customer_id"].to_numpy()
    Xd = X - X.groupby(g).transform("mean")
    yd = y - y.groupby(g).transform("mean")
    fit = sm.OLS(yd.to_numpy(), Xd.to_numpy()).fit(cov_type="cluster", cov_kwds={"groups": g})
    b, se = fit.params, fit.bse
    # censoring at the data end shortens observed gaps a little: 3.5 standard errors
    assert within(-b[0], np.log(p["goal_gradient_multiplier"]), se[0], 3.5), (np.exp(-b[0]), se[0])
    assert -b[0] > 0


# --- campaigns ---------------------------------------------------------------------------------
def test_campaign_itt_matches_the_true_expected_effect(company):
    tables, truth = company
    c = tables["campaigns"]
    for kind, g in c.groupby("campaign_type"):
        conv = g.groupby("group", observed=True)["converted"].agg(["mean", "size"])
        diff = conv.loc["treatment", "mean"] - conv.loc["control", "mean"]
        se = np.sqrt((conv["mean"] * (1 - conv["mean"]) / conv["size"]).sum())
        assert within(diff, truth["realized"]["campaigns"][kind]["true_ate"], se), kind
    assert (c.loc[c["group"] == "control", "send_cost"] == 0).all()
    cost = dict(truth["parameters"]["campaign_cost_per_send"])
    t = c[c["group"] == "treatment"]
    assert (t["send_cost"] == t["medium"].map(cost)).all()


def test_heterogeneous_effects_and_sleeping_dogs(company):
    """Win-back works for discount-prone customers; per-send truth tau ranks the sends; sleeping
    dogs have a negative effect."""
    tables, truth = company
    c = tables["campaigns"].merge(tables["truth_campaign_sends"], on="send_id")
    tc = tables["truth_customers"].set_index("customer_id")
    c["prone"] = tc["discount_prone"].reindex(c["customer_id"]).to_numpy()
    c["dog"] = tc["sleeping_dog"].reindex(c["customer_id"]).to_numpy()
    wb = c[c["campaign_type"] == "winback"]
    for prone, g in wb.groupby("prone"):
        conv = g.groupby("group", observed=True)["converted"].agg(["mean", "size"])
        diff = conv.loc["treatment", "mean"] - conv.loc["control", "mean"]
        se = np.sqrt((conv["mean"] * (1 - conv["mean"]) / conv["size"]).sum())
        assert within(diff, g["tau"].mean(), se), prone
    assert wb.loc[wb["prone"], "tau"].mean() > 2 * wb.loc[~wb["prone"], "tau"].mean()
    assert (c.loc[c["dog"], "tau"] <= 0).all() and (c.loc[c["dog"] & c["alive"], "tau"] < 0).any()
    # cannibalization: more campaign-coupon orders than orders the campaigns caused
    o = tables["orders"]
    caused = int((c["y1"] & ~c["y0"] & (c["group"] == "treatment")).sum())
    assert (o["campaign_id"].notna()).sum() > caused
    assert (o.loc[o["campaign_id"].notna(), "channel"] == "email").all()


def test_pre_period_spend_matches_the_orders(company):
    tables, _ = company
    c, o = tables["campaigns"].sample(200, random_state=1), tables["orders"]
    m = c.merge(o[["customer_id", "order_date", "amount"]], on="customer_id")
    m = m[
        (m["order_date"] >= m["sent_at"] - pd.Timedelta(days=90))
        & (m["order_date"] <= m["sent_at"])
    ]
    pre = m.groupby("send_id")["amount"].sum().reindex(c["send_id"], fill_value=0.0)
    assert np.allclose(pre.to_numpy(), c["pre_spend_90d"].to_numpy(), atol=0.02)


# --- next-purchase coupon ----------------------------------------------------------------------
def test_coupon_arms_recover_the_dose_response(company):
    tables, truth = company
    off, o = tables["coupon_offers"], tables["orders"]
    nxt = o[["customer_id", "order_date", "order_id"]].sort_values("order_date")
    m = off.merge(nxt, on="customer_id")
    m = m[(m["order_date"] > m["offered_at"]) & (m["order_date"] <= m["valid_until"])]
    off = off.assign(converted=off["offer_id"].isin(m["offer_id"]))
    conv = off.groupby("discount_pct")["converted"].agg(["mean", "size"])
    base = conv.loc[0]
    for pct in (5, 10, 15):
        t = truth["realized"]["coupons"][str(pct)]
        diff = conv.loc[pct, "mean"] - base["mean"]
        se = np.sqrt(conv.loc[pct, "mean"] * (1 - conv.loc[pct, "mean"]) / conv.loc[pct, "size"]
                     + base["mean"] * (1 - base["mean"]) / base["size"])  # fmt: skip
        assert within(diff, t["true_conversion_uplift"], se), pct
    ups = [truth["realized"]["coupons"][str(p)]["true_conversion_uplift"] for p in (5, 10, 15)]
    assert ups == sorted(ups) and ups[0] > 0
    # redeemed coupons: the right order, within the validity, at the arm's rate, above the minimum
    r = off.dropna(subset=["redeemed_order_id"]).merge(
        o, left_on="redeemed_order_id", right_on="order_id"
    )
    assert (r["order_date"] <= r["valid_until"]).all() and (r["discount_pct"] > 0).all()
    lst = r["amount"] + r["discount"]
    assert (lst >= r["min_spend"] - 0.02).all()
    assert np.allclose(r["discount"], (lst * r["discount_pct"] / 100).round(2), atol=0.02)


# --- feedback ----------------------------------------------------------------------------------
def test_non_response_bias_and_its_correction(company):
    tables, truth = company
    f = truth["realized"]["feedback"]
    assert f["respondent_nps"] > f["population_nps"] + 5
    nps = tables["nps_responses"]
    prop = (
        tables["truth_customers"]
        .set_index("customer_id")["response_propensity"]
        .reindex(nps["customer_id"])
        .to_numpy()
    )
    w = 1 / prop
    score = nps["score"].to_numpy()
    v = np.where(score >= 9, 100.0, np.where(score <= 6, -100.0, 0.0))
    est = (w * v).sum() / w.sum()
    se = np.sqrt((w**2 * (v - est) ** 2).sum()) / w.sum()
    assert within(est, f["population_nps"], se), (est, f["population_nps"], se)


def test_detractor_follow_up_experiment(company):
    tables, truth = company
    nps, o = tables["nps_responses"], tables["orders"]
    end = pd.Timestamp(truth["parameters"]["end"])
    ex = nps[nps["followup_group"].notna() & (nps["surveyed_at"] <= end - pd.Timedelta(days=180))]
    assert (ex["score"] <= 6).all() and nps.loc[nps["score"] <= 6, "followup_group"].notna().all()
    lag = ex["followup_at"] - ex["surveyed_at"]
    assert (lag.dropna() <= pd.Timedelta(hours=48)).all()
    m = ex.merge(o[["customer_id", "order_date"]], on="customer_id")
    m = m[
        (m["order_date"] > m["surveyed_at"])
        & (m["order_date"] <= m["surveyed_at"] + pd.Timedelta(days=180))
    ]
    ex = ex.assign(again=ex["response_id"].isin(m["response_id"]))
    g = ex.groupby("followup_group")["again"].agg(["mean", "size"])
    diff = g.loc["treatment", "mean"] - g.loc["control", "mean"]
    se = np.sqrt((g["mean"] * (1 - g["mean"]) / g["size"]).sum())
    assert within(diff, truth["realized"]["feedback"]["followup_true_effect_buy_again_180d"], se)


def test_delivery_fix_lowers_delivery_tickets(company):
    tables, truth = company
    p = truth["parameters"]
    tk, o = tables["support_tickets"], tables["orders"]
    assert set(tk["channel"]) == {"email", "chat", "phone"}
    fix = pd.Timestamp(p["delivery_fix_date"])
    tk = tk.merge(o[["order_id", "order_date"]], on="order_id")
    deliv = tk["topic"].isin(["delivery_delay", "damaged_package"])
    before, after = o["order_date"] < fix, o["order_date"] >= fix
    nb, na = (deliv & (tk["order_date"] < fix)).sum(), (deliv & (tk["order_date"] >= fix)).sum()
    ratio = (na / after.sum()) / (nb / before.sum())
    se = ratio * np.sqrt(1 / na + 1 / nb)
    assert within(ratio, 1 - p["delivery_fix_reduction"], se), (ratio, se)
    # delivery-themed comments fall too
    nps = tables["nps_responses"]
    th = nps[nps["theme"].notna()]
    g = th.groupby(th["surveyed_at"] >= fix)["theme"].agg(
        [lambda s: (s == "delivery").sum(), "size"]
    )
    g.columns = ["delivery", "n"]
    ratio = (g.loc[True, "delivery"] / g.loc[True, "n"]) / (
        g.loc[False, "delivery"] / g.loc[False, "n"]
    )
    se = ratio * np.sqrt(1 / g.loc[True, "delivery"] + 1 / g.loc[False, "delivery"])
    assert within(ratio, 1 - p["delivery_fix_reduction"], se), (ratio, se)


def test_resolution_type_changes_repurchase(company):
    tables, truth = company
    tk, o = tables["support_tickets"], tables["orders"]
    hm = truth["high_maintenance_customer_ids"]
    o = o.sort_values(["customer_id", "order_date"])
    o = o.assign(again=o.groupby("customer_id")["order_date"].shift(-1).notna())
    t = tk.merge(o[["order_id", "again", "order_date"]], on="order_id")
    t = t[(t["order_date"] < pd.Timestamp("2025-07-01")) & ~t["customer_id"].isin(hm)]
    g = t.groupby("resolution")["again"].agg(["mean", "size"])
    ref = g.loc["refund"]
    for r, true_ratio in truth["realized"]["feedback"]["repurchase_ratio_vs_refund"].items():
        ratio = g.loc[r, "mean"] / ref["mean"]
        se = ratio * np.sqrt((1 - g.loc[r, "mean"]) / (g.loc[r, "mean"] * g.loc[r, "size"])
                             + (1 - ref["mean"]) / (ref["mean"] * ref["size"]))  # fmt: skip
        assert within(ratio, true_ratio, se), (r, ratio, true_ratio, se)
    assert g.loc["unresolved", "mean"] < g.loc["refund", "mean"]


# --- subscriptions -----------------------------------------------------------------------------
def test_subscription_hazard_multipliers_recovered_by_a_discrete_time_model(company):
    """A complementary log-log model of monthly churn on plan, log(month), a recent bad ticket and
    an engagement drop recovers the planted hazard ratios."""
    tables, truth = company
    s, tk, eng = tables["subscriptions"], tables["support_tickets"], tables["engagement_monthly"]
    end = pd.Timestamp(truth["parameters"]["end"])
    rows = []
    for k in range(1, 37):
        ms, me = (
            s["start_date"] + pd.DateOffset(months=k - 1),
            s["start_date"] + pd.DateOffset(months=k),
        )
        at_risk = ((s["end_date"].isna() | (s["end_date"] >= me)) & (me <= end)).to_numpy()
        rows.append(s[at_risk].assign(k=k, ms=ms[at_risk], churn=(s["end_date"] == me)[at_risk]))
    pm = pd.concat(rows, ignore_index=True).reset_index()
    bad = tk["resolved_at"].isna() | (
        tk["first_response_at"] - tk["opened_at"] >= pd.Timedelta(hours=24)
    )
    b = tk.loc[bad, ["customer_id", "opened_at"]].sort_values("opened_at")
    pm = pd.merge_asof(pm.sort_values("ms"), b, left_on="ms", right_on="opened_at", by="customer_id",
                       allow_exact_matches=False).sort_values("index")  # fmt: skip
    v = eng.set_index(["customer_id", "month"])["site_visits"]

    def visits(lag: int) -> np.ndarray:
        month = (pm["ms"].dt.to_period("M") - lag).dt.to_timestamp()
        return v.reindex(pd.MultiIndex.from_arrays([pm["customer_id"], month])).to_numpy()

    X = pd.get_dummies(pm["plan"], drop_first=True).astype(float)
    X["bad_ticket"] = ((pm["ms"] - pm["opened_at"]) <= pd.Timedelta(days=60)).astype(float)
    X["visits_drop"] = ((visits(1) == 0) & (visits(2) > 0)).astype(float)
    X["log_month"] = np.log(pm["k"])
    fit = sm.GLM(pm["churn"].astype(float).to_numpy(), sm.add_constant(X),
                 family=sm.families.Binomial(link=sm.families.links.CLogLog())).fit()  # fmt: skip
    p = truth["parameters"]
    assert within(fit.params["bad_ticket"], np.log(p["sub_hr_bad_ticket"]), fit.bse["bad_ticket"])
    assert within(
        fit.params["visits_drop"], np.log(p["sub_hr_visits_drop"]), fit.bse["visits_drop"]
    )


# --- engagement --------------------------------------------------------------------------------
def test_engagement_falls_before_the_latent_dropout(company):
    tables, truth = company
    subscriber = tables["truth_customers"].set_index("customer_id")["theta"].notna()
    eng = tables["engagement_monthly"]
    eng = eng[~subscriber.reindex(eng["customer_id"]).to_numpy()]  # subscribers keep visiting
    d = pd.to_datetime(tables["truth_customers"].set_index("customer_id")["dropout_at"])
    dm = d.reindex(eng["customer_id"]).to_numpy().astype("datetime64[M]")
    rel = (eng["month"].to_numpy().astype("datetime64[M]") - dm).astype(
        float
    )  # months, NaN if alive
    rel = pd.Series(np.where(np.isnat(dm), np.nan, rel), index=eng.index)
    base = eng.loc[(rel <= -6) | rel.isna(), "site_visits"].mean()
    for lag, mult in zip((-3, -2, -1), truth["parameters"]["engagement_decline"], strict=True):
        sel = (rel == lag).to_numpy()
        est = eng.loc[sel, "site_visits"].mean() / base
        se = eng.loc[sel, "site_visits"].std() / np.sqrt(sel.sum()) / base
        assert within(est, mult, se, 4), (lag, est, mult)
    assert eng.loc[(rel >= 1).to_numpy(), "site_visits"].mean() / base < 0.2


def test_opt_outs_rise_with_newsletter_frequency(company):
    tables, truth = company
    p = truth["parameters"]
    eng = tables["engagement_monthly"].merge(
        tables["customers"][["customer_id", "newsletters_per_month"]]
    )
    e = eng[eng["emails_sent"] > 0]
    g = e.groupby("newsletters_per_month")["email_opt_out"].agg(["mean", "size"])
    hz = -np.log(1 - g["mean"])  # monthly hazard = base + per_email x cadence
    slope = (hz.loc[4] - hz.loc[1]) / 3
    se = np.sqrt(g.loc[4, "mean"] / g.loc[4, "size"] + g.loc[1, "mean"] / g.loc[1, "size"]) / 3
    assert within(slope, p["email_optout_per_email"], se), (slope, se)
    oo = tables["customers"].dropna(subset=["email_opt_out_at"])
    assert oo["email_opt_in"].all()
    c = tables["campaigns"].merge(oo[["customer_id", "email_opt_out_at"]])
    assert (c["sent_at"] < c["email_opt_out_at"]).all()  # no sends after opting out
