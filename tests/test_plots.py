"""helpers.plots: the step curve thinned for drawing (step_on_grid). Fast."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import plots


@settings(max_examples=50, deadline=None)
@given(
    jumps=st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=400, unique=True),
    points=st.integers(2, 60),
)
def test_a_step_curve_on_a_grid_reads_the_step_function_at_each_grid_point(jumps, points):
    """plots.step_on_grid: a curve with more rows than `points` becomes `points` rows at evenly
    spaced x from its first jump to its last, each the step function's value there (the last
    jump at or before it); a shorter one is returned as it is."""
    x = np.sort(np.array(jumps))
    curve = pd.DataFrame({"share": np.arange(len(x)) / len(x)}, index=pd.Index(x, name="days"))
    got = plots.step_on_grid(curve, points)
    if len(curve) <= points:
        assert got is curve
        return
    assert len(got) == points and got.index.name == "days"
    assert got.index[0] == x[0] and got.index[-1] == pytest.approx(x[-1])
    for g, v in zip(got.index, got["share"], strict=True):
        assert v == curve["share"][curve.index <= g].iloc[-1]
