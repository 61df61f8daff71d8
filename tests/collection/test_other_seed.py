"""Every planted effect a notebook estimates is recovered on a company the notebooks never saw.

One company is generated with another seed and other effect sizes (``python -m helpers.synth
--out DIR --seed N --set field=value``); every notebook with a ``data_dir`` parameter runs on it with
papermill. Each metrics.json entry shaped ``{"estimate", "ci_low", "ci_high", "truth"}`` must

* carry the truth of *that* company (read from its ground_truth.json, not the bundled one: the
  overridden effect sizes differ from the bundled truth), and
* hold its truth inside its interval.

Policy: each notebook reports 95 % intervals; a fixed seed makes the run deterministic, so this is
a regression check of each method on one fresh company, not a coverage estimate (the notebooks'
own tests and the helpers' tests check coverage where it is cheap). The check is family-wise per
notebook: with k intervals, each is widened about its estimate to the Bonferroni level
1 - 0.05 / k (normal quantiles, each side on its own), so that a correct notebook passes on 95 %
of seeds; demanding that all k 95 % intervals cover at once failed a correct notebook 07 (about 8
intervals) on 3 of 9 random seeds, one different interval each time (issue 14's closing note).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from scipy import stats

from helpers import paths, run
from helpers.synth import registry
from tests.collection.conftest import OTHER_SEED

pytestmark = pytest.mark.slow

#: Notebooks whose issues ask for planted effects recovered with intervals.
MUST_RECOVER = ("03", "05", "06", "07")


def entries(metrics: Any, prefix: str = "") -> Iterator[tuple[str, dict]]:
    """Every ``{"estimate", "ci_low", "ci_high", "truth"}`` entry in a (nested) metrics dict."""
    if isinstance(metrics, dict):
        if {"estimate", "ci_low", "ci_high", "truth"} <= set(metrics):
            yield prefix, metrics
            return
        for key, value in metrics.items():
            yield from entries(value, f"{prefix}.{key}" if prefix else str(key))


def family_wise(entry: dict, k: int, level: float = 0.95) -> tuple[float, float]:
    """The entry's 95 % interval widened about its estimate to the Bonferroni level 1 - (1 -
    `level`) / `k` for a family of `k` intervals: each side's distance times z(1 - a / 2k) / z(1 - a / 2)."""
    alpha = 1 - level
    factor = stats.norm.ppf(1 - alpha / (2 * k)) / stats.norm.ppf(1 - alpha / 2) if k > 1 else 1.0
    est, lo, hi = entry["estimate"], entry["ci_low"], entry["ci_high"]
    return est - factor * (est - lo), est + factor * (hi - est)


def test_family_wise_intervals():
    e = {"estimate": 1.0, "ci_low": 0.0, "ci_high": 3.0, "truth": 0}
    assert family_wise(e, 1) == (0.0, 3.0)
    lo, hi = family_wise(e, 8)  # z(1 - 0.05/16) / z(0.975) = 2.734 / 1.960
    assert lo == pytest.approx(1 - 1.3949, abs=1e-3) and hi == pytest.approx(
        1 + 2 * 1.3949, abs=1e-3
    )


def test_entries_finds_nested_truth_entries():
    m = {"a": 1, "b": {"estimate": 1, "ci_low": 0, "ci_high": 2, "truth": 1.5},
         "c": {"d": {"estimate": 1, "ci_low": 0, "ci_high": 2, "truth": 3}}}  # fmt: skip
    assert [k for k, _ in entries(m)] == ["b", "c.d"]


WITH_DATA_DIR = [
    nb for nb in run.notebooks() if "data_dir" in run.params_for(nb, {"data_dir": "x"})
]


@pytest.mark.parametrize("nb", WITH_DATA_DIR, ids=lambda p: p.stem)
def test_planted_effects_are_recovered_on_another_company(nb, other_company, metrics):
    truth_file = json.loads((other_company / "ground_truth.json").read_text())
    bundled = json.loads((paths.DATASETS / "ground_truth.json").read_text())
    assert truth_file != bundled
    recorded = dict(entries(metrics(nb.name[:2], "other")))
    # a method the registry declares biased on these data is recorded, not expected to cover
    found = {k: e for k, e in recorded.items() if k not in registry.BIASED}
    if nb.name[:2] in MUST_RECOVER:
        assert found, f"{nb.name} records no planted effect with its truth"
    missed = {}
    for name, e in found.items():
        lo, hi = family_wise(e, len(found))
        if not lo <= e["truth"] <= hi:
            missed[name] = {**e, "family_wise": [lo, hi]}
    assert not missed, (
        f"{nb.name}: truth outside the family-wise interval ({len(found)} intervals) on seed "
        f"{OTHER_SEED}: {missed}"
    )
