"""Every planted effect the registry says a notebook estimates is recorded by that notebook, hit or
miss, as ``{"estimate", "ci_low", "ci_high", "truth"}`` with the truth the registry names
(:mod:`helpers.synth.registry`), on the bundled company and on one made with another seed."""

from __future__ import annotations

import math

import pytest

from helpers.synth import read_truth, registry
from tests.collection.conftest import COMPANIES, notebook

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted({m.notebook for c in registry.registry().values() for m in c.metrics})


def test_recorded_follows_dotted_keys():
    assert registry.recorded({"a": {"b": {"estimate": 1}}}, "a.b") == {"estimate": 1}
    assert registry.recorded({"a": 1}, "a.b") is None


@pytest.mark.parametrize("company", COMPANIES)
@pytest.mark.parametrize("nn", NOTEBOOKS)
def test_every_registered_metric_is_recorded_with_its_truth(nn, company, metrics, other_company):
    recorded = metrics(nn, company)
    truth = read_truth(None if company == "bundled" else other_company)
    problems = []
    for m in registry.metrics_for(nn, truth["parameters"]):
        entry = registry.recorded(recorded, m.key)
        if not isinstance(entry, dict) or not {"estimate", "ci_low", "ci_high"} <= set(entry):
            problems.append(f"{m.key}: not recorded as an entry ({entry!r})")
            continue
        if not all(isinstance(entry[k], int | float) for k in ("estimate", "ci_low", "ci_high")):
            problems.append(f"{m.key}: estimate or interval missing ({entry})")
            continue
        want = registry.truth_value(m, truth)
        got = entry.get("truth")
        if got is None or not math.isclose(float(got), want, rel_tol=1e-3, abs_tol=1e-4):
            problems.append(f"{m.key}: truth {got!r}, the registry's ({m.truth}) is {want:.6g}")
    assert not problems, f"{notebook(nn).name} on the {company} company:\n" + "\n".join(problems)
