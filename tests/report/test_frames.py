"""helpers.report.frames.align is ``reindex``: the same values, dtypes and index on sorted and
unsorted ids, with missing and extra labels, on every column type the report's frames hold; and
frames.positions is ``get_indexer``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.report.frames import align, positions

IDS = ["007", "07", "10", "7", "9", "A", "K1", "K10", "K2", "K9", "a b", "Zoë", "é", "Ω", "日本"]


def _frame(labels: list[str], seed: int) -> pd.DataFrame:
    """One row per label: every column type the report's per-customer frames hold."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    return pd.DataFrame(
        {
            "n": rng.integers(0, 9, n),
            "x": rng.random(n),
            "flag": rng.random(n) < 0.5,
            "seen": pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 99, n), "D"),
            "segment": pd.Categorical(rng.choice(["At risk", "New"], n)),
            "text": pd.array(rng.choice(["web", "app"], n), dtype="string"),
            "obj": rng.choice(np.array(["u", "v"], dtype=object), n),
            "nullable": pd.array(rng.integers(0, 3, n), dtype="Int64"),
        },
        index=pd.Index(labels, name="customer_id"),
    )


@given(
    st.lists(st.sampled_from(IDS), unique=True),
    st.lists(st.sampled_from(IDS), unique=True),
    st.booleans(),
    st.booleans(),
    st.integers(0, 2**16),
)
@settings(max_examples=300, deadline=None)
def test_align_is_reindex(src, target, sort_src, sort_target, seed):
    if sort_src:
        src = sorted(src)
    if sort_target:
        target = sorted(target)
    df = _frame(src, seed)
    index = pd.Index(target, name="customer_id", dtype=object)
    pd.testing.assert_frame_equal(align(df, index), df.reindex(index))
    for col in df.columns:
        pd.testing.assert_series_equal(align(df[col], index), df[col].reindex(index))


def test_align_merges_sorted_ids_without_hashing(monkeypatch):
    """Sorted, unique ids: the positions come from the merge, not from reindex's hash."""
    df = _frame(sorted(IDS), 1)
    index = pd.Index(sorted([*IDS[3:], "K11", "zz"]), name="customer_id")
    want = df.reindex(index)
    calls = []
    real = pd.Index.get_indexer

    def counting(self, target, *args, **kwargs):
        if self.dtype == object:
            calls.append(len(self))
        return real(self, target, *args, **kwargs)

    monkeypatch.setattr(pd.Index, "get_indexer", counting)
    pd.testing.assert_frame_equal(align(df, index), want)
    assert calls == []  # no look-up of the text labels
    df.reindex(index)
    assert calls == [len(df)]  # which reindex does


def test_align_refuses_repeated_ids_as_reindex_does():
    df = _frame(["A", "A", "B"], 2)
    with pytest.raises(ValueError, match="duplicate"):
        df.reindex(pd.Index(["A", "B"]))
    with pytest.raises(ValueError, match="duplicate"):
        align(df, pd.Index(["A", "B"]))


@given(
    st.lists(st.sampled_from(IDS), unique=True),
    st.lists(st.sampled_from([*IDS, 7, None])),
    st.booleans(),
    st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_positions_are_get_indexer(table, labels, sort_table, sort_labels):
    """Sorted or not, labels repeated, absent, of another type or missing."""
    if sort_table:
        table = sorted(table)
    if sort_labels and all(isinstance(x, str) for x in labels):
        labels = sorted(labels)
    index, wanted = pd.Index(table, dtype=object), pd.Index(labels, dtype=object)
    got = positions(index, wanted)
    assert got.dtype.kind == "i"
    np.testing.assert_array_equal(got, index.get_indexer(wanted))


def _hashed(index: pd.Index) -> bool:
    """Whether pandas built (and keeps) the hash table of all of `index`'s labels."""
    engine = index._cache.get("_engine")
    return bool(engine is not None and engine.is_mapping_populated)


def test_positions_of_unsorted_labels_leave_the_index_unhashed():
    """An audience in no sorted order is found by hashing the audience, not the customer table's
    index: the table of every customer's id stays unbuilt (about 260 MB at 8.4M customers, kept
    as long as the index lives); with a repeated label, hashing the index as before."""
    index = pd.Index([f"C{i:05d}" for i in range(2_000)], dtype=object)
    labels = pd.Index(list(index[::-7]) + ["nobody"], dtype=object)
    got = positions(index, labels)
    assert not _hashed(index)
    np.testing.assert_array_equal(got, index.get_indexer(labels))
    assert _hashed(index)  # (get_indexer does build it)
    again = pd.Index(index.to_numpy().copy(), dtype=object)
    repeated = labels.append(labels[:1])
    np.testing.assert_array_equal(positions(again, repeated), index.get_indexer(repeated))
    assert _hashed(again)


def test_positions_of_a_sorted_subset_merge_without_hashing(monkeypatch):
    index = pd.Index(sorted(IDS))
    subset = index[[1, 4, 5, 9]]
    want = index.get_indexer(subset)
    calls = []
    real = pd.Index.get_indexer
    monkeypatch.setattr(
        pd.Index, "get_indexer", lambda self, *a, **k: calls.append(1) or real(self, *a, **k)
    )
    np.testing.assert_array_equal(positions(index, subset), want)
    assert calls == []
