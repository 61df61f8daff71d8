"""Shared fixtures and the hypothesis profiles.

Parallel runs: ``make test`` runs on two processes (pytest-xdist, ``--dist loadfile``: the cells
of one notebook, which nbval runs in order in one kernel, and the tests of one file stay in one
process); the collection's notebook runs are made once per test run (tests/collection/conftest.py).

Hypothesis: under CI (``CI`` set) the ``ci`` profile derandomizes (the same examples on every run, so
`make test` passes on every run, not most runs); elsewhere the ``dev`` profile draws fresh examples
and prints the reproduction blob of any failure (``@reproduce_failure``), and the header shows the
seed to pass back with ``--hypothesis-seed``.
"""

from __future__ import annotations

import os

import pandas as pd
import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("dev", print_blob=True, deadline=None)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
settings.load_profile(PROFILE)


def pytest_report_header(config):
    seed = config.getoption("hypothesis_seed", default=None)
    how = "derandomized" if settings.default.derandomize else f"seed {seed or 'random per test'}"
    return f"hypothesis profile: {PROFILE} ({how}; failures print a @reproduce_failure blob)"


@pytest.fixture
def ten_orders() -> pd.DataFrame:
    """10 orders of 5 customers over January-March 2025.

    Active customers: Jan {1, 2, 3}, Feb {1, 2, 4}, Mar {1, 4, 5} (customer 3 orders twice in Jan).
    By hand: Feb S=3, E=3, new=1 (4), retained=2 (1, 2) -> retention 2/3;
             Mar S=3, E=3, new=1 (5), retained=2 (1, 4) -> retention 2/3, reactivated 0.
    Revenue: Jan 1:10, 2:20, 3:5+5; Feb 1:30, 2:10, 4:40; Mar 1:10, 4:50, 5:25.
    NRR Feb = (30 + 10) / (10 + 20 + 10) = 1.0;  GRR Feb = (10 + 10) / 40 = 0.5.
    NRR Mar = (10 + 50) / (30 + 10 + 40) = 0.75; GRR Mar = (10 + 40) / 80 = 0.625.
    """
    rows = [
        (1, 1, "2025-01-05", 10.0),
        (2, 2, "2025-01-10", 20.0),
        (3, 3, "2025-01-15", 5.0),
        (4, 3, "2025-01-20", 5.0),
        (5, 1, "2025-02-03", 30.0),
        (6, 2, "2025-02-14", 10.0),
        (7, 4, "2025-02-20", 40.0),
        (8, 1, "2025-03-01", 10.0),
        (9, 4, "2025-03-12", 50.0),
        (10, 5, "2025-03-31", 25.0),
    ]
    df = pd.DataFrame(rows, columns=["order_id", "customer_id", "order_date", "amount"])
    df["order_date"] = pd.to_datetime(df["order_date"])
    return df
