"""Issue 28: the report's acquisition sections (helpers.report.acquisition_views) against what the
generator planted, on the bundled company and on the other company (another seed and other effect
sizes: tests/collection/conftest.py), from notebook 08's metrics.json and, for the discounts the
sample mapping does not map, from a copy of the mapping that maps them.

The cost per acquired customer: the estimate is the spend file's ratio of sums, so it equals the
realized spend / sign-ups exactly; its interval (the months as sampling units) is about the planted
cost per acquisition, of which the months' spend is a noisy draw (lognormal, log-sd 0.15). The
interval is calibrated (94 % per channel over 1000 draws of the spend noise, benchmarks/README.md,
issue 28), so on six channels one miss is expected about one time in four: the bundled company's
influencer channel (47.35 [45.27, 49.42] against 45, a draw 1.96 true standard errors above it) is
such a miss. What is held: every channel within three standard errors of its planted cost, at most
one miss, and the estimate equal to the realized ratio."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import paths, segments
from helpers.report import acquisition_views as acq
from helpers.report.mapping import load_mapping
from helpers.report.orders import read_client_orders
from helpers.synth import read_truth, registry

pytestmark = pytest.mark.slow


def _folder(company: str, other_company: Path) -> Path:
    return paths.DATASETS if company == "bundled" else Path(other_company)


@pytest.mark.parametrize("company", ["bundled", "other"])
def test_cost_per_acquisition_is_the_realized_ratio_and_covers_the_planted_cost(
    metrics, company, other_company
):
    channels = metrics("08", company)["acquisition"]["costs"]["channels"]
    truth = read_truth(_folder(company, other_company))
    realized = truth["realized"]["acquisition"]["cpa_by_channel"]
    planted = dict(truth["parameters"]["acquisition_cpa"])
    assert set(channels) == set(planted)
    misses = []
    for ch, row in channels.items():
        e = row["truth_cpa"]
        assert e["truth"] == pytest.approx(planted[ch])
        assert e["estimate"] == pytest.approx(realized[ch], rel=1e-3)  # spend / sign-ups
        half = (e["ci_high"] - e["ci_low"]) / 2  # t(35) x se
        assert abs(e["estimate"] - e["truth"]) < 1.5 * half, (ch, e)  # within about 3 se
        if not e["ci_low"] <= e["truth"] <= e["ci_high"]:
            misses.append(ch)
    assert len(misses) <= 1, misses


@pytest.mark.parametrize("company", ["bundled", "other"])
def test_the_deal_sites_first_orders_carry_a_discount_more_often(company, other_company, tmp_path):
    """The planted discount-proneness of deal-site customers, with the orders' discount column
    mapped (a copy of the sample mapping): the first-order gap's simultaneous interval covers the
    registry's truth and lies above zero."""
    folder = _folder(company, other_company)
    m = yaml.safe_load((paths.NOTEBOOKS / "08_sample_mapping.yaml").read_text(encoding="utf-8"))
    m["columns"]["discount"] = "discount"
    m["tables"] = {}
    (tmp_path / "map.yaml").write_text(yaml.safe_dump(m), encoding="utf-8")
    o, notes = read_client_orders(folder / "orders.csv", load_mapping(tmp_path / "map.yaml"))
    customers = pd.read_csv(folder / "customers.csv", dtype=str)
    channel = customers.set_index("customer_id")["acquisition_channel"]
    seg = segments.rfm_table(o, notes["as_of"], "W")
    t = acq.attribute_discounts(channel, o, seg)
    truth = registry.discount_truths(read_truth(folder)["parameters"])
    gap = truth["discount_first_order_gap_deal_site"]
    row = t.loc["deal_site"]
    assert row["first_discount_diff_low"] <= gap <= row["first_discount_diff_high"], row
    assert row["first_discount_diff_low"] > 0
    assert (t.drop(index="deal_site")["first_discount_diff_high"] < gap).all()
