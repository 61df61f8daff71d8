"""Batch runs end to end: `make report` on the bundled data, with changed parameters, and on bad data.

Runs write into a temporary reports folder (RETENTION_LAB_REPORTS), never into reports/.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from helpers import clv, data, paths, run
from tests.collection.conftest import run_cli

pytestmark = pytest.mark.slow


def expected_01(as_of: str) -> dict:
    """Notebook 01's headline figures, computed independently with plain pandas and sets."""
    o = data.load_orders()
    o = o[o["order_date"] < pd.Timestamp(as_of) + pd.Timedelta(days=1)]
    month = o["order_date"].dt.to_period("M")
    last = pd.Period(as_of, "M")
    if pd.Timestamp(as_of).normalize() != last.end_time.normalize():
        last -= 1
    now, before = (
        set(o.loc[month == last, "customer_id"]),
        set(o.loc[month == last - 1, "customer_id"]),
    )
    return {
        "customers": o["customer_id"].nunique(),
        "orders": len(o),
        "revenue_eur": round(o["amount"].sum(), 2),
        "last_period": str(last),
        "last_period_retention": round(len(now & before) / len(before), 4),
    }


def expected_02(as_of: str) -> dict:
    """Notebook 02's cohort figures, computed independently with plain pandas: cohort = month of
    the first order; a cohort counts at age 1 only if its next month has ended by as-of."""
    o = data.load_orders()
    o = o[o["order_date"] < pd.Timestamp(as_of) + pd.Timedelta(days=1)]
    month = o["order_date"].dt.to_period("M")
    first = month.groupby(o["customer_id"]).transform("min")
    last = pd.Period(as_of, "M")
    if pd.Timestamp(as_of).normalize() != last.end_time.normalize():
        last -= 1
    complete = first <= last
    sizes = o[complete].groupby(first[complete])["customer_id"].nunique()
    seen = sizes[sizes.index + 1 <= last]  # cohorts old enough to be seen at age 1
    back = o[(month == first + 1) & first.isin(seen.index)]
    return {
        "cohorts": len(sizes),
        "customers": int(sizes.sum()),
        "retention_age_1": round(back["customer_id"].nunique() / seen.sum(), 4),
    }


def expected_04(as_of: str) -> dict:
    """Notebook 04's historical figures, independently: order margin = amount - (1 - 0.45) x
    (amount + discount) for kept orders, 0 for returned ones; Champions' revenue share is not
    recomputed (it depends on the scoring), but the customer count and margin are."""
    o = data.load_orders()
    o = o[o["order_date"] < pd.Timestamp(as_of) + pd.Timedelta(days=1)]
    margin = (o["amount"] - 0.55 * (o["amount"] + o["discount"])).where(~o["returned"], 0.0)
    return {
        "customers": o["customer_id"].nunique(),
        "historical_clv_total_eur": round(margin.sum(), 0),
    }


def test_make_report_writes_every_notebook(sample_run):
    reports, proc = sample_run
    folder = reports / "e2e"
    assert "index.html" in proc.stdout
    assert (folder / "index.html").exists()
    index = json.loads((folder / "index.json").read_text())
    assert [r["notebook"] for r in index["notebooks"]] == [p.stem for p in run.notebooks()]
    for nb in run.notebooks():
        html = (folder / f"{nb.stem}.html").read_text()
        assert "<img" in html and "import " not in html  # figures in, code out
        assert (folder / nb.name).exists()
        assert json.loads((folder / f"{nb.stem}.metrics.json").read_text())
    assert not [p for p in reports.iterdir() if p.name.startswith(".")]


def test_sample_run_figures_are_right(sample_run):
    reports, _ = sample_run
    metrics = json.loads(
        (reports / "e2e" / "01_retention_and_churn_rates.metrics.json").read_text()
    )
    for key, value in expected_01("2025-12-31").items():
        assert metrics[key] == value, key


def test_sample_run_figures_of_02_and_04_are_right(sample_run):
    folder = sample_run[0] / "e2e"
    m02 = json.loads((folder / "02_cohorts_and_retention_curves.metrics.json").read_text())
    for key, value in expected_02("2025-12-31").items():
        assert m02[key] == value, key
    m04 = json.loads((folder / "04_segmentation_rfm_and_clv.metrics.json").read_text())
    for key, value in expected_04("2025-12-31").items():
        assert m04[key] == value, key
    # the generator's parameters beside each estimate and its interval, as the registry's truth
    # (the BG/NBD fitted on notebook 04's clean window, before the club's last launch; recovery is
    # also tested on data without the planted effects in test_clv)
    truth = data.load_ground_truth()["parameters"]
    for key in ("bgnbd_r", "bgnbd_alpha", "bgnbd_a", "bgnbd_b", "gg_p", "gg_q", "gg_gamma"):
        rec = m04[key]
        assert (
            rec["truth"] == pytest.approx(truth[key])
            and rec["ci_low"] <= rec["estimate"] <= rec["ci_high"]
        ), key
    # 02 records each plan's (alpha, beta) against the registry's truth, the plan's base, hit or miss
    plans = {p["name"]: p for p in truth["plans"]}
    for plan, rec in m02["plans"].items():
        for k in ("alpha", "beta"):
            assert (
                rec[k]["truth"] == plans[plan][k]
                and rec[k]["ci_low"] <= rec[k]["estimate"] <= rec[k]["ci_high"]
            )
        assert (
            rec["derl_new"]["ci_low"] <= rec["derl_new"]["estimate"] <= rec["derl_new"]["ci_high"]
        )
    # the CDNOW fits in 04's metrics are the published values
    for model, params in m04["cdnow"].items():
        for name, value in params.items():
            assert value == pytest.approx(clv.CDNOW_PUBLISHED[model][name], rel=2e-3), (model, name)


def test_other_as_of_gives_other_correct_figures(tmp_path, sample_run):
    params = tmp_path / "params.yaml"
    params.write_text('as_of: "2025-06-30"\n01_retention_and_churn_rates:\n  period: "M"\n')
    proc = run_cli(
        tmp_path / "reports", "--name", "mid-2025", "--only", "01", "--params", str(params)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(
        (
            tmp_path / "reports" / "mid-2025" / "01_retention_and_churn_rates.metrics.json"
        ).read_text()
    )
    full = json.loads(
        (sample_run[0] / "e2e" / "01_retention_and_churn_rates.metrics.json").read_text()
    )
    assert metrics["as_of"] == "2025-06-30" and metrics["orders"] < full["orders"]
    for key, value in expected_01("2025-06-30").items():
        assert metrics[key] == value, key


def test_same_name_is_not_overwritten_silently(tmp_path):
    (tmp_path / "reports" / "taken").mkdir(parents=True)
    proc = run_cli(tmp_path / "reports", "--name", "taken", "--only", "01")
    assert proc.returncode == 1 and "already exists" in proc.stderr and "--overwrite" in proc.stderr


def test_unknown_notebook_parameter_is_refused(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("01_retention_and_churn_rates:\n  nonsense: 3\n")
    proc = run_cli(tmp_path / "reports", "--name", "x", "--only", "01", "--params", str(params))
    assert proc.returncode == 1 and "has no parameter(s) ['nonsense']" in proc.stderr


@pytest.mark.parametrize(
    "damage,message",
    [
        ("missing", "orders.csv: file not found"),
        ("negative", "orders.csv, column 'amount': 1 row is negative (line 2;"),
        ("garbage", "orders.csv: required column 'order_id' is missing"),
    ],
)
def test_bad_data_fails_clearly_and_leaves_nothing(tmp_path, damage, message):
    folder = tmp_path / "data"
    shutil.copytree(paths.DATASETS, folder)
    orders = folder / "orders.csv"
    if damage == "missing":
        orders.unlink()
    elif damage == "negative":
        lines = orders.read_text().splitlines()
        first = lines[1].split(",")
        first[3] = "-" + first[3]
        orders.write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
    else:
        orders.write_bytes(b"\x00\x01garbage\nnot a csv\n")
    params = tmp_path / "p.yaml"
    params.write_text(f"data_dir: {folder}\n")
    reports = tmp_path / "reports"
    proc = run_cli(reports, "--name", "bad", "--params", str(params))
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not reports.exists() or not any(reports.iterdir())


# ----------------------------------------------------------------------------- truth entries


def test_truth_entry_rounds_every_value():
    e = run.truth_entry(1.23456, 1.0, 1.5, 1.11119)
    assert e == {"estimate": 1.2346, "ci_low": 1.0, "ci_high": 1.5, "truth": 1.1112}
    assert list(e) == ["estimate", "ci_low", "ci_high", "truth"]
    assert run.truth_entry(1.23456, 1.0, 1.5, 2, digits=2)["estimate"] == 1.23
    assert run.truth_entry(1.23456, 1.0, 1.5, 2, digits=None)["estimate"] == 1.23456


def test_truth_entry_missing_truth_and_generator_base():
    for missing in (None, float("nan")):
        assert run.truth_entry(1.0, 0.5, 2.0, missing)["truth"] is None
    e = run.truth_entry(1.0, 0.5, 2.0, 0.9, key="generator_base")
    assert e == {"estimate": 1.0, "ci_low": 0.5, "ci_high": 2.0, "generator_base": 0.9}
    with pytest.raises(ValueError, match="key"):
        run.truth_entry(1.0, 0.5, 2.0, 0.9, key="planted")


def test_truth_entry_refuses_an_interval_without_its_estimate():
    with pytest.raises(ValueError, match="does not contain"):
        run.truth_entry(3.0, 0.5, 2.0, 1.0)
    with pytest.raises(ValueError, match="does not contain"):
        run.truth_entry(1.0, 2.0, 0.5, 1.0)
    nan = float("nan")
    assert pd.isna(run.truth_entry(1.0, nan, nan, 1.0)["ci_low"])  # no interval: nothing to check


# ----------------------------------------------------------------------------- the runner's imports


def test_metrics_turn_numpy_values_into_json_values():
    import numpy as np

    day = pd.Timestamp("2024-01-02")
    got = run._jsonable({"n": np.int64(3), "x": np.float32(1.5), "gone": np.float64("nan"),
                         "ok": np.bool_(True), "v": [np.int16(2), 0.25], "d": day})  # fmt: skip
    want = {"n": 3, "x": 1.5, "gone": None, "ok": True, "v": [2, 0.25], "d": day.isoformat()}
    assert got == want
    assert [type(v) for v in (got["n"], got["x"], got["ok"])] == [int, float, bool]
    json.dumps(got)


def test_papermill_comes_without_pyarrow_which_stays_importable():
    """papermill imports pyarrow for hdfs:// paths only; the runner imports papermill without it
    (the report command then holds neither pyarrow nor numpy), and pyarrow imports afterwards."""
    import subprocess
    import sys

    probe = (
        "import sys\nfrom helpers import run\npm = run._papermill()\n"
        "print(sorted(m for m in ('pyarrow', 'numpy') if m in sys.modules))\n"
        "import pyarrow\nprint(pm is run._papermill(), pyarrow.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=paths.ROOT)  # fmt: skip
    assert out.stdout.split("\n")[:2] == ["[]", "True pyarrow"]
