"""The sample-company generator: byte-identical output, and data that match its ground truth."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from helpers import data, paths, synth


def digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_bundled_datasets_regenerate_byte_identically(tmp_path):
    tables, truth = synth.generate()
    synth.write(tables, truth, tmp_path)
    bundled = {k: v for k, v in digest(paths.DATASETS).items() if k.endswith((".csv", ".json"))}
    assert digest(tmp_path) == bundled


def test_same_seed_same_tables_other_seed_other_tables():
    small = synth.SynthConfig(n_customers=300)
    a, _ = synth.generate(small)
    b, _ = synth.generate(small)
    c, _ = synth.generate(synth.SynthConfig(n_customers=300, seed=1))
    for name in synth.TABLES:
        pd.testing.assert_frame_equal(a[name], b[name])
    assert not a["orders"]["amount"].equals(c["orders"]["amount"])


def test_read_truth_reads_back_what_the_generator_wrote(tmp_path):
    """The one reader of a company's truth: ground_truth.json as written, and every truth file
    with its values and dtypes (dropout_at a timestamp, to the second)."""
    tables, truth = synth.generate(synth.SynthConfig(n_customers=300, seed=5))
    synth.write(tables, truth, tmp_path)
    assert synth.read_truth(tmp_path) == json.loads(json.dumps(truth))
    for name in synth.TRUTH_TABLES:
        back = synth.read_truth(tmp_path, table=name.removeprefix("truth_"))
        made = tables[name]
        assert list(back.columns) == list(made.columns), name
        for col in made.columns:
            if pd.api.types.is_float_dtype(made[col]):
                np.testing.assert_allclose(back[col], made[col], rtol=1e-5, err_msg=f"{name}.{col}")
            else:
                pd.testing.assert_series_equal(back[col], made[col], check_names=False)
    dropout = synth.read_truth(tmp_path, table="customers")["dropout_at"]
    assert pd.api.types.is_datetime64_any_dtype(dropout) and dropout.notna().any()


def test_read_truth_names_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="one of customers, campaign_sends, coupon_offers"):
        synth.read_truth(table="orders")
    with pytest.raises(FileNotFoundError, match="ground_truth.json"):
        synth.read_truth(tmp_path)
    with pytest.raises(FileNotFoundError, match="truth_customers.csv"):
        synth.read_truth(tmp_path, table="customers")


def test_ground_truth_file_holds_the_parameters():
    truth = synth.read_truth()
    params = truth["parameters"]
    assert params["seed"] == synth.SynthConfig().seed
    assert (params["bgnbd_r"], params["bgnbd_alpha"], params["bgnbd_a"], params["bgnbd_b"]) == (
        0.9,
        8.0,
        0.8,
        3.2,
    )
    assert [(p["name"], p["alpha"], p["beta"]) for p in params["plans"]] == [
        ("Explorer", 0.7, 2.2),
        ("Enthusiast", 1.1, 5.5),
        ("Office", 1.5, 12.0),
    ]


@pytest.fixture(scope="module")
def tables():
    return data.load_all()


def test_first_order_is_placed_at_sign_up(tables):
    first = tables["orders"].groupby("customer_id")["order_date"].min()
    signup = tables["customers"].set_index("customer_id")["signup_date"]
    assert first.index.equals(signup.index)
    assert (first == signup).all()


def test_first_month_churn_matches_sbg_plans(tables):
    """In sBG the share churning after month 1 is alpha / (alpha + beta) (Fader & Hardie 2007);
    the planted channel multipliers leave the other channels' theta ~ Beta(alpha, beta), and the
    hazard multipliers rarely apply in a first month."""
    s = tables["subscriptions"]
    channel = tables["customers"].set_index("customer_id")["acquisition_channel"]
    s = s[~channel.reindex(s["customer_id"]).isin(["referral", "deal_site"]).to_numpy()]
    observed = s[s["start_date"] + pd.DateOffset(months=1) <= pd.Timestamp("2025-12-31")]
    churned_m1 = observed["end_date"] == observed["start_date"] + pd.DateOffset(months=1)
    for plan in synth.SynthConfig().plans:
        mask = observed["plan"] == plan.name
        expected = plan.alpha / (plan.alpha + plan.beta)
        se = np.sqrt(expected * (1 - expected) / mask.sum())
        assert abs(churned_m1[mask].mean() - expected) < 4 * se, plan.name


def test_spend_matches_gamma_gamma_mean(tables):
    cfg = synth.SynthConfig()
    expected = cfg.gg_p * cfg.gg_gamma / (cfg.gg_q - 1)  # E[z] = p * gamma / (q - 1) = 30 EUR
    assert tables["orders"]["amount"].mean() == pytest.approx(expected, rel=0.08)


def test_planted_effects_are_in_the_data(tables):
    truth = synth.read_truth()["realized"]
    p = truth["mean_dropout_p_by_first_nps_category_nonsubscribers"]
    assert p["detractor"] > p["passive"] > p["promoter"]
    assert truth["loyalty_mean_lambda_members_over_nonmembers"] > 1.5  # self-selection
    for kind, c in truth["campaigns"].items():
        assert 0 < c["true_att"] <= 1.2 * c["mean_uplift"], kind
    # discount-prone customers pay larger discounts
    o = tables["orders"]
    prone = o["customer_id"].isin(synth.read_truth()["discount_prone_customer_ids"])
    rate = o["discount"] / (o["amount"] + o["discount"])
    assert rate[prone].mean() > 2 * rate[~prone].mean()


def test_without_planted_effects_no_campaign_orders_and_no_members():
    tables, truth = synth.generate(synth.SynthConfig(n_customers=500, planted_effects=False))
    assert (tables["orders"]["campaign_id"] == "").all()
    assert truth["realized"]["loyalty_members"] == 0
    assert truth["realized"]["sleeping_dogs"] == 0
    assert (
        tables["coupon_offers"]["redeemed_order_id"].isna()
        | (tables["coupon_offers"]["discount_pct"] > 0)
    ).all()


def test_generate_orders_scaled():
    o = synth.generate_orders(20_000, seed=3)
    assert len(o) == 20_000 and o["order_id"].is_unique
    assert o["order_date"].is_monotonic_increasing


def test_nothing_happens_after_the_data_end(tables):
    end = pd.Timestamp(synth.SynthConfig().end) + pd.Timedelta(days=1)
    for name, df in tables.items():
        for col in df.columns[[pd.api.types.is_datetime64_any_dtype(t) for t in df.dtypes]]:
            assert (df[col].dropna() < end).all(), f"{name}.{col}"


def test_service_recovery_is_visible_in_the_data(tables):
    """Tickets fall on orders at random (bar the high-maintenance customers), so comparing what
    follows an order by its ticket's outcome shows the planted effect: a ticket resolved fast and
    well leaves customers about as likely to order again as no ticket (its lasting 0.6 multiplier
    on dropout offsets the resolution type's extra dropout, 0.07 on average); a slow one fewer;
    an unresolved one loses most of them."""
    hm = synth.read_truth()["high_maintenance_customer_ids"]
    o = tables["orders"]
    o = o[o["campaign_id"].isna() & ~o["customer_id"].isin(hm)].sort_values(
        ["customer_id", "order_date"]
    )
    o = o.assign(again=o.groupby("customer_id")["order_date"].shift(-1).notna())
    t = tables["support_tickets"]
    slow = (t["first_response_at"] - t["opened_at"]) >= pd.Timedelta(hours=24)
    t = t.assign(
        outcome=np.select([t["resolved_at"].isna(), slow], ["unresolved", "poorly"], "well")
    )
    o = o.merge(t[["order_id", "outcome"]], on="order_id", how="left").fillna({"outcome": "none"})
    o = o[o["order_date"] < pd.Timestamp("2025-07-01")]  # leave time to order again
    again = o.groupby("outcome")["again"].mean()
    assert again["well"] >= again["none"] - 0.07
    assert again["unresolved"] < again["none"] - 0.2
    assert again["unresolved"] < again["poorly"] < again["none"]


def test_detractors_churn_more_and_loyalty_naive_comparison_overstates(tables):
    nps = tables["nps_responses"]
    nps = nps[nps["surveyed_at"] < pd.Timestamp("2025-07-01")].assign(
        category=pd.cut(nps["score"], [-1, 6, 8, 10], labels=["detractor", "passive", "promoter"])
    )
    orders = tables["orders"][["customer_id", "order_date"]].sort_values("order_date")
    nxt = pd.merge_asof(
        nps.sort_values("surveyed_at"), orders, left_on="surveyed_at", right_on="order_date",
        by="customer_id", direction="forward",
    )  # fmt: skip
    buys_again = (nxt["order_date"] - nxt["surveyed_at"]) <= pd.Timedelta(days=180)
    share = buys_again.groupby(nxt["category"], observed=True).mean()
    assert share["detractor"] < share["passive"] < share["promoter"]
    # loyalty members buy far more often than non-members, much more than the causal 1.15x
    c = tables["customers"].set_index("customer_id")
    weeks = (pd.Timestamp("2026-01-01") - c["signup_date"]).dt.days / 7
    rate = (tables["orders"].groupby("customer_id").size() - 1) / weeks
    naive = rate[c["loyalty_member"]].mean() / rate[~c["loyalty_member"]].mean()
    assert naive > 1.5 * synth.SynthConfig().loyalty_rate_uplift


def test_randomized_campaigns_recover_the_true_effect(tables):
    """Treatment minus control conversion estimates the true effect on the treated."""
    truth = synth.read_truth()["realized"]["campaigns"]
    for kind, g in tables["campaigns"].groupby("campaign_type"):
        conv = g.groupby("group", observed=True)["converted"].agg(["mean", "size"])
        diff = conv.loc["treatment", "mean"] - conv.loc["control", "mean"]
        se = np.sqrt((conv["mean"] * (1 - conv["mean"]) / conv["size"]).sum())
        assert abs(diff - truth[kind]["true_att"]) < 2.5 * se, kind
    assert truth["winback"]["true_att"] > 0.03  # large enough to detect with these samples
