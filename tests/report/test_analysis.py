"""The report's analysis on hand-made cases and the bundled orders: headline, segments, CLV,
formatting, pseudonyms and the CSV exports."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import btyd, clv, cohorts, data, economics, pareto_nbd, report, retention, segments
from helpers.report.mapping import load_mapping
from helpers.report.orders import read_client_orders
from helpers.tables import DataValidationError
from tests.report.clients import (
    ORDERS,
    SAMPLE_MAPPING,
)  # fmt: skip

# --------------------------------------------------------------------------------------------
# report logic on a hand-made case (tests/conftest.py: ten_orders)


def test_headline_by_hand(ten_orders):
    h = report.headline(ten_orders, "2025-03-31")
    assert (h["customers"], h["purchases"], h["revenue"]) == (5, 10, 205.0)
    assert h["repeat_purchase_rate"] == pytest.approx(4 / 5) and h[
        "average_order_value"
    ] == pytest.approx(20.5)
    assert h["zero_value_orders"] == 0
    assert report.headline(ten_orders, "2025-01-31")["customers"] == 3  # as-of cuts the data


def test_zero_value_orders_are_activity(ten_orders):
    """A zero-value order is a purchase worth 0: its customer counts, and it counts as an order
    (today's public export loses 68 customers and 80 orders when only amount > 0 counts)."""
    extra = pd.DataFrame({"order_id": [11, 12], "customer_id": [6, 5], "amount": [0.0, 0.0],
                          "order_date": pd.to_datetime(["2025-03-10", "2025-03-20"])})  # fmt: skip
    h = report.headline(pd.concat([ten_orders, extra], ignore_index=True), "2025-03-31")
    assert (h["customers"], h["purchases"], h["zero_value_orders"]) == (6, 12, 2)
    assert h["revenue"] == 205.0 and h["repeat_purchase_rate"] == pytest.approx(4 / 6 + 1 / 6)


def test_one_order_is_not_enough_data():
    one = pd.DataFrame(
        {"customer_id": ["a"], "order_date": pd.to_datetime(["2024-01-15"]), "amount": [5.0]}
    )
    with pytest.raises(DataValidationError, match="1 purchase"):
        report.check_enough_data(one, "2025-12-31", "Q", "one.csv")


def test_mid_period_as_of_report_tables_agree():
    """As-of mid-quarter: the period table and the cohort table both end at the last complete
    quarter (one rule), and neither reads the partial quarter as churn."""
    orders = data.load_orders()
    per = retention.period_retention(report.purchases(orders), "Q", "2025-11-15")
    counts = cohorts.cohort_table(report.purchases(orders), "Q", "2025-11-15")
    assert str(per.index[-1]) == str(counts.index[-1]) == "2025Q3"


def test_win_back_list_is_ranked_by_expected_value_not_past_spend():
    seg = pd.DataFrame(
        {
            "segment": pd.Categorical(
                ["Champions", "At risk", "Can't lose them", "Lost", "At risk"]
            ),
            "monetary_total": [500.0, 80.0, 300.0, 90.0, 120.0],
            "recency_days": [3, 400, 380, 700, 500],
        },
        index=pd.Index([11, 12, 13, 14, 15], name="customer_id"),
    )
    # without a purchase model: past spend, highest first
    assert report.at_risk_customers(seg).index.tolist() == [13, 15, 12]
    assert report.at_risk_customers(seg, at_risk=("Lost",)).index.tolist() == [14]
    # with one: the big past spender who is probably gone (13) goes last
    clv = pd.DataFrame({"p_alive": [0.9, 0.8, 0.02, 0.5, 0.6], "clv": [90.0, 40.0, 1.0, 5.0, 30.0]},
                       index=seg.index)  # fmt: skip
    assert report.at_risk_customers(seg, clv).index.tolist() == [12, 15, 13]
    # the list's customers as a mask in the summary's order (no look-up of their ids)
    for listed, mask in [
        (report.at_risk_customers(seg), report.at_risk_mask(seg)),
        (report.at_risk_customers(seg, at_risk=("Lost",)), report.at_risk_mask(seg, ("Lost",))),
        (segments.winback_list(seg.astype({"segment": str})), segments.winback_mask(seg)),
    ]:
        np.testing.assert_array_equal(mask, seg.index.isin(listed.index))


def test_segment_customers_and_clv_on_the_bundled_orders():
    orders, notes = read_client_orders(ORDERS, load_mapping(SAMPLE_MAPPING))
    seg = report.segment_customers(orders, notes["as_of"])
    assert len(seg) == orders["customer_id"].nunique() and seg["segment"].notna().all()
    assert seg[["R", "F", "M"]].isin(range(1, 6)).all().all()
    econ = economics.from_mapping(None)
    fit, why = report.fit_clv(orders, seg, econ)
    assert why == "" and fit.table.index.equals(seg.index)
    assert fit.table["p_alive"].between(0, 1).all()
    # the bundled orders follow BG/NBD: the holdout check picks it, near the generator's truth
    assert (
        fit.model == "BG/NBD"
        and fit.check.loc["BG/NBD", "bucket_mae"] < fit.check.loc["MBG/NBD", "bucket_mae"]
    )
    truth = data.load_ground_truth()["parameters"]
    assert fit.purchases.r == pytest.approx(truth["bgnbd_r"], rel=0.25)
    assert fit.purchases.alpha == pytest.approx(truth["bgnbd_alpha"], rel=0.25)
    # the retention scenario is the model's own: lower dropout, more predicted margin
    scen = report.dropout_scenario(fit, seg, econ, 0.10)
    assert scen["mean_dropout_then"] == pytest.approx(0.9 * scen["mean_dropout_now"])
    assert scen["clv_now"] == pytest.approx(fit.table["clv"].sum())
    assert 0 < scen["gain_share"] < 0.2  # a 10 % lower dropout: a few percent more value
    # with a cost per order, the scenario uses the same cost (same answer as a plain re-run)
    costly, _ = report.fit_clv(orders, seg, economics.SAMPLE)
    s2 = report.dropout_scenario(costly, seg, economics.SAMPLE, 0.10)
    assert s2["clv_now"] == pytest.approx(costly.table["clv"].sum()) and 0 < s2["gain_share"] < 0.2


@given(st.integers(0, 2**32 - 1), st.floats(0.0, 0.5))
@settings(max_examples=40, deadline=None)
def test_clv_by_segment_is_the_join_and_group_by_it_replaces(seed, missing):
    """report.clv_by_segment: the figures of ``seg[["segment"]].join(clv).groupby("segment")``,
    bit for bit, customers the CLV table does not score (NaN, still counted) included."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    ids = pd.Index(sorted({f"c{i:05d}" for i in rng.integers(0, 10**5, n)}), name="customer_id")
    names = ["Champions", "At risk", "Hibernating", "Unused"]
    seg = pd.DataFrame(
        {"segment": pd.Categorical(rng.choice(names[:3], len(ids)), categories=names)}, index=ids
    )
    scored = ids[rng.random(len(ids)) >= missing]
    clv_t = pd.DataFrame(
        {"p_alive": rng.random(len(scored)), "clv": rng.gamma(2.0, 50.0, len(scored)),
         "p_purchase_12m": rng.random(len(scored))},
        index=scored,
    )  # fmt: skip
    iv = pd.DataFrame({"clv": 1.0, "ci_low": 0.5, "ci_high": 2.0}, index=names[:3] + ["total"])
    want = (
        seg[["segment"]]
        .join(clv_t)
        .groupby("segment", observed=True)
        .agg(customers=("clv", "size"), mean_clv=("clv", "mean"), total_clv=("clv", "sum"),
             p_purchase_12m=("p_purchase_12m", "mean"))
        .sort_values("total_clv", ascending=False)
        .join(iv[["ci_low", "ci_high"]])
    )  # fmt: skip
    pd.testing.assert_frame_equal(report.clv_by_segment(seg, clv_t, iv), want, check_exact=True)


def test_dropout_scenario_under_the_pareto_nbd():
    """A Pareto/NBD purchase model (the report can choose it): the scenario lowers the chance
    that leaving comes before the next purchase, E[mu / (lambda + mu)], by the cut, by scaling
    every customer's dropout rate, and more margin follows."""
    orders, notes = read_client_orders(ORDERS, load_mapping(SAMPLE_MAPPING))
    seg = report.segment_customers(orders, notes["as_of"])
    econ = economics.from_mapping(None)
    fit, _ = report.fit_clv(orders, seg, econ)
    pf = pareto_nbd.fit_pareto_nbd(seg)
    table = clv.predictive_clv(pf, fit.spend, seg, econ, cost_per_order=econ.shipping_per_order)
    pfit = dataclasses.replace(fit, table=table, model="Pareto/NBD", purchases=pf)
    scen = report.dropout_scenario(pfit, seg, econ, 0.10)
    assert scen["mean_dropout_now"] == pytest.approx(pareto_nbd.leave_before_next_purchase(pf))
    assert scen["mean_dropout_then"] == pytest.approx(0.9 * scen["mean_dropout_now"], rel=1e-9)
    assert scen["clv_now"] == pytest.approx(table["clv"].sum())
    assert 0 < scen["gain_share"] < 0.3


def test_dropout_scenario_under_a_pareto_nbd_whose_customers_almost_never_leave():
    """The Pareto/NBD of customers buying as one Poisson process who do not leave (the 100M-row
    benchmark's uniform orders: r, alpha huge, s tiny): the scenario's dropout factor is still
    found (its bracket was fixed at log c in [-30, 0], where the mean dropout was NaN and the
    report failed) and cuts the mean dropout by exactly the cut."""
    from helpers.report import analysis

    params = {"r": 183348.0256, "alpha": 2867607.228, "s": 9.394678e-05, "beta": 301486.0967}
    pf = btyd.ModelFit("Pareto/NBD", params, 0.0, 10_000_000, "W", None, True)
    mean_p, better = analysis._better_retention(pf, 0.10)
    assert mean_p == pytest.approx(pareto_nbd.leave_before_next_purchase(pf)) and mean_p > 0
    assert pareto_nbd.leave_before_next_purchase(better) == pytest.approx(0.9 * mean_p, rel=1e-9)
    assert better.beta > pf.beta and better.r == pf.r and better.s == pf.s


def test_one_time_buyers_of_a_cdnow_export_are_not_certainly_alive():
    """The CDNOW transactions (lifetimes' data file) as a client export: the holdout check picks
    MBG/NBD, and the RFM segment Lost does not read as certainly alive."""
    from importlib import metadata

    path = metadata.distribution("lifetimes").locate_file("lifetimes/datasets/CDNOW_sample.txt")
    df = pd.read_csv(path, sep=r"\s+", header=None, names=["customer_id", "id2", "date", "qty", "amount"],
                     dtype={"customer_id": str})  # fmt: skip
    df["order_date"] = pd.to_datetime(df["date"].astype(str), format="%Y%m%d")
    as_of = "1998-06-30"
    seg = report.segment_customers(df, as_of)
    assert len(seg) == 2357  # the 8 zero-value orders keep their customers
    fit, why = report.fit_clv(df, seg, economics.from_mapping(None))
    assert fit.model == "MBG/NBD", fit.check
    lost = fit.table.loc[seg["segment"].astype(str).eq("Lost"), "p_alive"]
    assert lost.mean() < 0.6 and lost.max() < 1.0
    # what the report shows (issue 24): the chance of a purchase in the next 12 months, which no
    # segment reads as certain, one-time buyers included
    by_segment = fit.table["p_purchase_12m"].groupby(seg["segment"].astype(str)).max()
    assert (by_segment < 0.999).all(), by_segment
    one_time = fit.table.loc[seg["frequency"].eq(0), "p_purchase_12m"]
    assert one_time.max() < 0.9 and one_time.mean() < 0.5


def test_clv_says_why_not_when_too_few_repeat_buyers(ten_orders):
    seg = report.segment_customers(ten_orders, "2025-03-31")
    fit, why = report.fit_clv(ten_orders, seg, economics.from_mapping(None))
    assert fit is None and "only 4 customers bought more than once" in why and "at least 100" in why


def test_client_grade_formatting():
    f = report.Formatter("EUR")
    assert f.money(1317000.4) == "€1,317,000"
    assert f.pct(0.4567) == "45.7%" and f.num(12345) == "12,345" and f.money(float("nan")) == "–"
    t = f.table(pd.DataFrame({"m": [1.317e6], "s": [0.5]}), money=["m"], pct=["s"])
    assert t.iloc[0].tolist() == ["€1,317,000", "50.0%"]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(min_value=-(10**12), max_value=10**12), min_size=1, max_size=60),
    st.text(min_size=1, max_size=20),
)
def test_pseudonyms_are_stable_distinct_and_salted(ids, salt):
    s = pd.Series(ids)
    p = report.pseudonymize(s, salt)
    assert p.str.fullmatch(r"C-[0-9a-f]{10}").all()
    assert p.equals(report.pseudonymize(s, salt))  # stable within a report
    assert p.nunique() == s.nunique()  # no collisions on small sets
    assert (p.groupby(s).nunique() == 1).all()  # one id, one pseudonym
    assert not p.equals(report.pseudonymize(s, salt + "x"))  # another salt, other pseudonyms


_MASK = (1 << 64) - 1


def _siphash24(key: bytes, msg: bytes) -> int:
    """SipHash-2-4 written from its specification (J.-P. Aumasson & D. J. Bernstein (2012),
    "SipHash: a fast short-input PRF", INDOCRYPT), in plain Python integers."""

    def rotl(x: int, b: int) -> int:
        return ((x << b) | (x >> (64 - b))) & _MASK

    def rounds(v: list[int], n: int) -> None:
        for _ in range(n):
            v[0] = (v[0] + v[1]) & _MASK
            v[1] = rotl(v[1], 13)
            v[1] ^= v[0]
            v[0] = rotl(v[0], 32)  # noqa: E702
            v[2] = (v[2] + v[3]) & _MASK
            v[3] = rotl(v[3], 16)
            v[3] ^= v[2]  # noqa: E702
            v[0] = (v[0] + v[3]) & _MASK
            v[3] = rotl(v[3], 21)
            v[3] ^= v[0]  # noqa: E702
            v[2] = (v[2] + v[1]) & _MASK
            v[1] = rotl(v[1], 17)
            v[1] ^= v[2]
            v[2] = rotl(v[2], 32)  # noqa: E702

    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:16], "little")
    v = [
        k0 ^ 0x736F6D6570736575,
        k1 ^ 0x646F72616E646F6D,
        k0 ^ 0x6C7967656E657261,
        k1 ^ 0x7465646279746573,
    ]
    tail = len(msg) % 8
    blocks = [int.from_bytes(msg[i : i + 8], "little") for i in range(0, len(msg) - tail, 8)]
    blocks.append(int.from_bytes(msg[len(msg) - tail :], "little") | ((len(msg) & 0xFF) << 56))
    for m in blocks:
        v[3] ^= m
        rounds(v, 2)
        v[0] ^= m
    v[2] ^= 0xFF
    rounds(v, 4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def _pandas_mix(h: int) -> int:
    """The 64-bit finalizer pandas applies after SipHash in ``hash_pandas_object`` (splitmix64's)."""
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & _MASK
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & _MASK
    return h ^ (h >> 31)


def test_siphash_reference_vector():
    """The independent SipHash of the test below, on the paper's test vector (Appendix A: key
    00..0f, message 00..0e -> a129ca6149be45e5)."""
    assert _siphash24(bytes(range(16)), bytes(range(15))) == 0xA129CA6149BE45E5


def test_pseudonym_is_the_documented_keyed_hash():
    """pseudonymize = "C-" + the leading 10 hex digits of SipHash-2-4 (key: the first 16 hex
    characters of SHA-256(salt)) of the id's text, mixed as pandas does: recomputed here from the
    specification, not with pandas."""
    import hashlib

    ids = pd.Series([3505, 7, 42, 1000001])
    key = hashlib.sha256(b"salt").hexdigest()[:16].encode()
    want = [f"C-{_pandas_mix(_siphash24(key, str(i).encode())):016x}"[:12] for i in ids]
    assert report.pseudonymize(ids, "salt").tolist() == want


def test_export_csv_reads_back_as_pandas_to_csv(tmp_path):
    """The client's CSV exports (Arrow's writer) read back exactly as pandas' own writer's file:
    text ids with leading zeros, categories, missing values, whole-second and finer timestamps,
    commas and quotes in text, rounding to 4 decimals."""
    table = pd.DataFrame(
        {
            "first_order": pd.to_datetime(["2024-01-02 13:00:00", "2024-02-03 00:00:00", None]),
            "paid_at": pd.to_datetime(
                ["2024-01-02 13:00:00.5", None, "2024-03-01"], format="ISO8601"
            ),
            "n_orders": [1, 2, 3],
            "clv": [0.123456, np.nan, 1e-7],
            "segment": pd.Categorical(["At risk", "Champions, best", "At risk"]),
            "note": ['say "hi"', None, "ok"],
        },
        index=pd.Index(["007", "C1", "x,y"], name="customer_id"),
    )
    report.export_csv(table, tmp_path / "arrow.csv")
    table.round(4).to_csv(tmp_path / "pandas.csv")
    read = {"dtype": {"customer_id": str}}
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "arrow.csv", **read), pd.read_csv(tmp_path / "pandas.csv", **read)
    )


def test_export_csv_written_in_chunks_is_the_file_written_at_once(tmp_path, monkeypatch):
    """The exports are converted and written a chunk of rows at a time (memory), each chunk's
    text in parts on worker threads (:data:`helpers.report.analysis.CSV_PART`); the file is
    byte for byte the one written at once: a text column missing in the first chunk, a
    timestamp with milliseconds only in the last, a formula-like id in a later chunk, missing
    numbers, categories, a second frame joined on another order of the index."""
    from helpers.report import analysis

    n = 7
    seg = pd.DataFrame(
        {
            "note": [None, None, None, "a,b", None, "=cmd", "x"],
            "seen": pd.to_datetime(
                ["2024-01-02 13:00:00"] * 6 + ["2024-01-02 13:00:00.250"], format="ISO8601"
            ),
            "clv": [0.123456, np.nan, 1.0, 2.5, -3.25, 1e-7, 4.0],
            "segment": pd.Categorical(["At risk", "New", "At risk", "New", "Lost", "New", "New"]),
            "n_orders": np.arange(n),
        },
        index=pd.Index([f"C{i}" for i in range(n - 1)] + ["+1"], name="customer_id"),
    )
    net = pd.Series(np.arange(n) * 1.5, index=seg.index[::-1], name="net_revenue")
    whole = report.export_csv([seg, net], tmp_path / "whole.csv", raw=False)
    monkeypatch.setattr(analysis, "EXPORT_CHUNK", 3)
    parts = report.export_csv([seg, net], tmp_path / "parts.csv", raw=False)
    assert parts.read_bytes() == whole.read_bytes()
    for rows in (1, 2):  # each chunk's text made in parts on the worker threads, in order
        monkeypatch.setattr(analysis, "CSV_PART", rows)
        threads = report.export_csv([seg, net], tmp_path / f"threads{rows}.csv", raw=False)
        assert threads.read_bytes() == whole.read_bytes()
    text = parts.read_text()
    assert "13:00:00.250" in text and "'+1" in text and "'=cmd" in text
    empty = report.export_csv(seg.iloc[:0], tmp_path / "empty.csv", raw=False)
    assert empty.read_text().splitlines() == [
        '"customer_id","note","seen","clv","segment","n_orders"'
    ]


def test_start_exports_writes_what_export_csv_writes_with_the_columns_of_the_call(
    tmp_path, monkeypatch
):
    """The exports written in a thread are byte for byte :func:`export_csv`'s files (several
    frames joined, a formula-like id made safe), with the columns the frames had when the
    exports started (a column set afterwards is not written) and the `raw` setting of that
    moment; a clash of names raises in the caller, at once; a failure of the writer is raised by
    ``result()``."""
    seg = pd.DataFrame(
        {"n_orders": [1, 2, 3], "segment": pd.Categorical(["At risk", "New", "At risk"])},
        index=pd.Index(["=1+1", "C2", "-3"], name="customer_id"),
    )
    net = pd.Series([10.123456, -2.0, 0.5], index=seg.index[::-1], name="net_revenue")
    monkeypatch.setenv("RETENTION_LAB_EXPORTS", "safe")
    report.export_csv([seg, net], tmp_path / "now.csv")
    report.export_csv(seg.head(2), tmp_path / "head.csv")
    job = report.start_exports(
        [([seg, net], tmp_path / "later.csv"), (seg.head(2), tmp_path / "head_later.csv")]
    )
    monkeypatch.setenv("RETENTION_LAB_EXPORTS", "raw")  # read when the exports started
    seg["added"] = 1.0  # after the start: not in the file
    assert job.result() == [tmp_path / "later.csv", tmp_path / "head_later.csv"]
    assert (tmp_path / "later.csv").read_bytes() == (tmp_path / "now.csv").read_bytes()
    assert (tmp_path / "head_later.csv").read_bytes() == (tmp_path / "head.csv").read_bytes()
    assert "'=1+1" in (tmp_path / "later.csv").read_text()
    with pytest.raises(ValueError, match="columns overlap"):
        report.start_exports([([seg, seg[["n_orders"]]], tmp_path / "x.csv")])
    assert not (tmp_path / "x.csv").exists()
    # a folder not there yet is made (a papermill run's export_dir); a file in the way fails
    made = report.start_exports([(seg, tmp_path / "new folder" / "y.csv")]).result()
    report.export_csv(seg, tmp_path / "seg.csv")
    assert made[0].read_bytes() == (tmp_path / "seg.csv").read_bytes()
    failing = report.start_exports([(seg, tmp_path / "now.csv" / "y.csv")])
    with pytest.raises(OSError):
        failing.result()


@pytest.mark.parametrize("in_seg", [(), ("p_alive",), ("p_alive", "clv")])
def test_the_customers_export_is_the_clv_table_without_the_summarys_columns_not_a_copy(
    tmp_path, in_seg
):
    """report.customer_export gives customers.csv the summary, the net revenue and the CLV
    table but ``p_alive`` and ``clv`` where the summary has them: the file export_csv writes
    from ``clv.drop(columns=...)``, from the table's own columns (no copy of them)."""
    ids = pd.Index(["=1+1", "C2", "-3"], name="customer_id")
    seg = pd.DataFrame({"n_orders": [1, 2, 3], **{c: [0.5, 0.25, 1.0] for c in in_seg}}, index=ids)
    net = pd.Series([10.123456, -2.0, 0.5], index=ids[::-1], name="net_revenue")
    clv = pd.DataFrame({"p_alive": [0.9, 0.1, 0.5], "expected_purchases": [1.5, 0.2, 3.0],
                        "clv": [12.3456789, 0.0, -1.5]}, index=ids)  # fmt: skip
    tables = report.customer_export(seg, net, clv)
    report.export_csv(tables, tmp_path / "got.csv")
    report.export_csv([seg, net, clv.drop(columns=list(in_seg))], tmp_path / "want.csv")
    assert (tmp_path / "got.csv").read_bytes() == (tmp_path / "want.csv").read_bytes()
    kept = tables[-1]
    assert list(kept.columns) == [c for c in clv.columns if c not in in_seg]
    assert all(np.shares_memory(kept[c].to_numpy(), clv[c].to_numpy()) for c in kept.columns)
    assert report.customer_export(seg, net, None) == [seg, net]


def test_start_exports_above_its_size_writes_them_in_the_callers_thread(tmp_path, monkeypatch):
    """A table longer than :data:`BACKGROUND_ROWS` is exported before
    :func:`start_exports` returns (at 10M customers the thread saved no time and held memory
    beside the sections): the future is done, the file is there and is :func:`export_csv`'s; a
    failure is raised by ``result()``, as from the thread."""
    from helpers.report import analysis

    seg = pd.DataFrame({"n_orders": [1, 2, 3]}, index=pd.Index(["A", "B", "C"], name="customer_id"))
    report.export_csv(seg, tmp_path / "now.csv")
    monkeypatch.setattr(analysis, "BACKGROUND_ROWS", 2)
    job = report.start_exports([(seg, tmp_path / "later.csv")])
    assert job.done() and job.result() == [tmp_path / "later.csv"]
    assert (tmp_path / "later.csv").read_bytes() == (tmp_path / "now.csv").read_bytes()
    failing = report.start_exports([(seg, tmp_path / "now.csv" / "y.csv")])  # a file in the way
    assert failing.done()
    with pytest.raises(OSError):
        failing.result()


# --------------------------------------------------------------------------------------------
# the holdout comparison of the purchase models on a seeded sample above a stated size (issue 31)


def test_the_comparison_sample_is_everyone_up_to_its_size_and_a_seeded_draw_above():
    cal = pd.DataFrame({"frequency": np.arange(50)}, index=pd.Index(np.arange(50) * 3, name="id"))
    cal.attrs["as_of"] = "2025-12-31"
    assert report.analysis.comparison_sample(cal, 50, 1) is cal  # up to the size: untouched
    a = report.analysis.comparison_sample(cal, 20, 1)
    assert len(a) == 20 and a.index.is_unique and a.index.isin(cal.index).all()
    assert a.index.is_monotonic_increasing and a.attrs == cal.attrs  # the table's order kept
    assert a.index.equals(report.analysis.comparison_sample(cal, 20, 1).index)  # the same draw
    assert not a.index.equals(report.analysis.comparison_sample(cal, 20, 2).index)  # the seed's


def test_fit_clv_compares_the_models_on_the_stated_sample_and_fits_the_choice_on_everyone(
    monkeypatch,
):
    """Below :data:`COMPARE_SAMPLE` customers the comparison runs on the whole calibration period
    (the bundled report as before); with the size lowered below its customers, on exactly that
    seeded sample, while the chosen model's fit and every customer's score stay on everyone."""
    from helpers.report import analysis

    orders, notes = read_client_orders(ORDERS, load_mapping(SAMPLE_MAPPING))
    seg = report.segment_customers(orders, notes["as_of"])
    econ = economics.SAMPLE
    full, _ = report.fit_clv(orders, seg, econ)
    cal_end = pd.Timestamp(notes["as_of"]) - pd.Timedelta(days=round(full.holdout_weeks * 7))
    cal = clv.calibration_holdout(analysis.purchases(orders), cal_end, notes["as_of"], "W")
    # below the size comparison_sample returns the calibration table itself (the test above)
    assert full.calibration_customers == full.compared_on == len(cal) < analysis.COMPARE_SAMPLE

    monkeypatch.setattr(analysis, "COMPARE_SAMPLE", 2_500)  # of 3,414
    sampled, why = report.fit_clv(orders, seg, econ)
    assert why == "" and sampled.compared_on == 2_500
    assert sampled.calibration_customers == len(cal)
    on_sample = analysis.comparison_sample(cal, 2_500, analysis.COMPARE_SEED)
    check, model = clv.compare_purchase_models(on_sample)
    pd.testing.assert_frame_equal(sampled.check, check)
    assert sampled.model == model == full.model
    assert not np.allclose(sampled.check["loglik"], full.check["loglik"])  # a smaller sample
    # the choice only: the final fit and the scores are those of all customers
    assert sampled.purchases.params == full.purchases.params and sampled.purchases.n == len(seg)
    pd.testing.assert_frame_equal(sampled.table, full.table)


# --------------------------------------------------------------------------------------------
# the CLV arithmetic after the fit (issue 31): the scenario's sums, one calibration split


def _scenario_fit(seg: pd.DataFrame, params: tuple[float, ...]) -> report.ClvFit:
    """A ClvFit of the given BG/NBD and the sample's Gamma-Gamma on `seg`, with a covariance."""
    pf = clv.ModelFit("BG/NBD", dict(zip("r alpha a b".split(), params, strict=True)), 0.0,
                      len(seg), "W", np.diag([0.004, 0.006, 0.02, 0.03]), True)  # fmt: skip
    gg = clv.ModelFit("Gamma-Gamma", {"p": 6.25, "q": 3.74, "gamma": 15.44}, 0.0, len(seg),
                      None, np.diag([0.01, 0.02, 0.03]), True)  # fmt: skip
    table = clv.predictive_clv(pf, gg, seg, economics.SAMPLE, cost_per_order=1.5)
    return report.ClvFit(table, "BG/NBD", pd.DataFrame(), pf, gg, 26.0, 1.5)


def _scenario_per_customer(fit, seg, econ, cut=0.10, level=0.95):
    """The scenario and its interval as they were computed before (issue 31): every customer's
    CLV under the changed model from predictive_clv, summed, in the same delta method."""
    from scipy import stats

    def gain(pf, gg, s):
        now = clv.predictive_clv(pf, gg, s, econ, cost_per_order=fit.cost_per_order)["clv"].sum()
        b_new = pf.a / ((1 - cut) * pf.a / (pf.a + pf.b)) - pf.a
        better = dataclasses.replace(pf, params={**pf.params, "b": b_new})
        then = clv.predictive_clv(better, gg, s, econ, cost_per_order=fit.cost_per_order)
        return then["clv"].sum() - now

    step = max(1, int(np.ceil(len(seg) / report.analysis.CLV_INTERVAL_SAMPLE)))
    sample = seg.iloc[::step]
    base, h, grads = gain(fit.purchases, fit.spend, sample), 1e-4, []
    for which in ("purchases", "spend"):
        model = getattr(fit, which)
        for key in model.params:
            moved = [dataclasses.replace(model, params={**model.params,
                                                        key: model.params[key] * np.exp(sg * h)})
                     for sg in (1, -1)]  # fmt: skip
            pair = [gain(m, fit.spend, sample) if which == "purchases"
                    else gain(fit.purchases, m, sample) for m in moved]  # fmt: skip
            grads.append((pair[0] - pair[1]) / (2 * h))
    g, n_p = np.asarray(grads), len(fit.purchases.params)
    cov = np.zeros((len(g), len(g)))
    cov[:n_p, :n_p], cov[n_p:, n_p:] = fit.purchases.cov_log, fit.spend.cov_log
    full = gain(fit.purchases, fit.spend, seg)
    se = float(np.sqrt(g @ cov @ g)) / abs(base) * abs(full)
    z = float(stats.norm.ppf(0.5 + level / 2))
    return full, {"gain": full, "ci_low": full - z * se, "ci_high": full + z * se, "se": se}


@pytest.mark.parametrize("sample", ["bundled", "simulated"])
def test_the_scenario_and_its_interval_equal_the_sums_of_every_customers_clv(sample, monkeypatch):
    """dropout_scenario and scenario_interval sum the purchase side once per purchase-model
    parameter set (the spend model's moves reuse it; helpers.clv.discounted_purchases): equal to
    summing every customer's predictive_clv on the horizon-by-horizon path (clv._QMIN out of
    reach) to 1e-9 relative, on the bundled sample and on 12,000 simulated BG/NBD customers,
    the discounted sums' tables taken; the second call for the same fit is the first's
    result."""
    from helpers.report import analysis

    if sample == "bundled":  # 5,000 customers: the tables from 100 customers of a count
        seg = segments.rfm_table(data.load_orders(), "2025-12-31", "W")
        monkeypatch.setattr(clv, "_QMIN", 100)
    else:
        rng = np.random.default_rng(8)
        n = 12_000
        T = rng.uniform(0.1, 160, n)
        x = np.minimum(rng.poisson(rng.gamma(0.9, 1 / 8.0, n) * T),
                       rng.geometric(rng.beta(0.8, 3.2, n)) - 1).astype(float)  # fmt: skip
        seg = pd.DataFrame({"frequency": x, "recency": np.where(x > 0, T * rng.uniform(0.3, 1, n), 0),
                            "T": T, "monetary_value": np.where(x > 0, rng.gamma(3, 10, n), 0.0)})  # fmt: skip
        seg.attrs["time_unit"] = "W"
    fit = _scenario_fit(seg, (0.243, 4.414, 0.793, 2.426))
    x, T = seg["frequency"].to_numpy(float), seg["T"].to_numpy(float)
    disc = economics.SAMPLE.discount_factors()
    assert clv._CumTables(fit.purchases, x, T, np.arange(1, 37.0), disc).qtab.any()
    analysis._SCENARIO.clear()
    scen = report.dropout_scenario(fit, seg, economics.SAMPLE, 0.10)
    iv = report.analysis.scenario_interval(fit, seg, economics.SAMPLE, 0.10)
    assert report.dropout_scenario(fit, seg, economics.SAMPLE, 0.10) == scen  # kept
    analysis._SCENARIO.clear()
    with monkeypatch.context() as m:
        m.setattr(clv, "_QMIN", np.inf)  # every customer horizon by horizon, as before
        old = _scenario_fit(seg, (0.243, 4.414, 0.793, 2.426))
        full, want = _scenario_per_customer(old, seg, economics.SAMPLE)
    np.testing.assert_allclose(fit.table["clv"], old.table["clv"], rtol=1e-9, atol=0)
    assert scen["gain"] == pytest.approx(full, rel=1e-9)
    assert scen["clv_now"] == pytest.approx(old.table["clv"].sum(), rel=1e-9)
    for k in want:
        assert iv[k] == pytest.approx(want[k], rel=1e-9), k


def test_fit_clv_and_the_holdout_check_share_one_calibration_split(monkeypatch):
    """fit_clv's calibration/holdout split (the model comparison) is the one the holdout check
    and the covariate view need (the same cal_end: holdout_weeks = fit_clv's days / 7): kept by
    fit_clv, taken by holdout_refit without splitting again, released by holdout_check, whose
    result equals the one from a split made from scratch."""
    from helpers.report import analysis

    orders, notes = read_client_orders(ORDERS, load_mapping(SAMPLE_MAPPING))
    seg = report.segment_customers(orders, notes["as_of"])
    analysis._SPLIT.clear()
    analysis._HOLDOUT.clear()
    fit, why = report.fit_clv(orders, seg, economics.from_mapping(None))
    assert why == ""
    kept = analysis._SPLIT["last"]
    assert kept[0] is orders and kept[1] is seg and len(kept[3]) == fit.calibration_customers
    real = clv.calibration_holdout
    with monkeypatch.context() as m:
        m.setattr(clv, "calibration_holdout", lambda *a, **k: pytest.fail("split again"))
        cal, _ = analysis.holdout_refit(fit, orders, seg)
        assert cal is kept[3]
        shared = report.holdout_check(fit, orders, seg)
    assert not analysis._SPLIT and not analysis._HOLDOUT  # released
    cal_end = pd.Timestamp(kept[2][0])
    fresh = real(report.purchases(orders), cal_end, notes["as_of"], seg.attrs["time_unit"])
    pd.testing.assert_frame_equal(cal, fresh)
    assert shared == report.holdout_check(fit, orders, seg)  # from scratch


def _uniform_orders(customers: int = 2000, seed: int = 5) -> pd.DataFrame:
    """Orders of steady customers who all buy at one rate, about every 91 days (the gaps
    uniform on 61-121 days) from their first order in 2023-2025 to the end, and never leave
    (the benchmark's uniform orders, small and a little more regular than Poisson, so for any
    seed), amounts uniform on 5-205: the purchase models' likelihood rises to its limit (one
    purchase rate, no dropout) and the spend model's to one mean spend for everyone."""
    rng = np.random.default_rng(seed)
    day, span = 86400, 3 * 365 * 86400
    first = rng.uniform(0, 0.8 * span, customers)
    gaps = rng.uniform(61, 121, (customers, 20)) * day
    gaps[:, 0] = 0.0
    t = first[:, None] + np.cumsum(gaps, axis=1)
    cust, k = np.nonzero(t < span)
    t = t[cust, k]
    return pd.DataFrame({
        "customer_id": [f"K{c:05d}" for c in cust],
        "order_date": pd.Timestamp("2023-01-01") + pd.to_timedelta(np.round(t), unit="s"),
        "amount": np.round(rng.uniform(5, 205, len(cust)), 2),
    })  # fmt: skip


def test_lifetime_values_of_uniform_orders_are_the_limit_models_whatever_the_row_order():
    """Uniform orders: the purchase and spend fits stop at their limits and say so; the report
    still values the customers (a fit at the boundary is a fit: the limit's predictions), with
    finite intervals and a retention scenario worth nothing (nobody leaves); the same values
    when the file's rows come in another order. Before the stop the fits ran to the bounds of
    their parameters, and whether the report had lifetime values turned on the last bits."""
    from helpers.report import analysis

    orders = _uniform_orders()
    seg = report.segment_customers(orders, "2025-12-31")
    econ = economics.from_mapping(None)
    fit, why = report.fit_clv(orders, seg, econ)
    assert why == "" and fit is not None
    assert set(fit.purchases.extra["boundary"]) == {
        "purchase rate without heterogeneity", "no dropout"
    }  # fmt: skip
    assert fit.spend.extra["boundary"] == {"mean spend without heterogeneity": ["q", "gamma"]}
    assert np.isfinite(fit.table["clv"]).all() and fit.table["p_alive"].min() > 0.999
    interval = analysis.clv_interval(fit, seg, econ)
    assert np.isfinite(interval[["ci_low", "ci_high"]].to_numpy()).all()
    assert analysis.dropout_scenario(fit, seg, econ, 0.10)["gain_share"] < 1e-6
    again, _ = report.fit_clv(orders.sample(frac=1.0, random_state=2), seg, econ)
    assert again.model == fit.model and again.purchases.extra == fit.purchases.extra
    np.testing.assert_allclose(again.table["clv"], fit.table["clv"], rtol=1e-6)


@given(
    st.lists(st.one_of(st.none(), st.text(max_size=3), st.integers(0, 9)), max_size=300),
    st.integers(1, 40),
)
@settings(max_examples=200, deadline=None)
def test_an_exports_first_values_are_those_of_the_whole_column(cells, k):
    """The values an export's text column's Arrow type is inferred from: the first k present,
    looked for in growing slices, as dropna().head(k) of the whole column."""
    from helpers.report.analysis import _first_values

    col = pd.Series(cells, dtype=object)
    want = col.dropna().head(k).to_numpy()
    got = _first_values(col, k)
    assert got.tolist() == want.tolist() and got.dtype == want.dtype
